// Starts fauxqs bound to 127.0.0.1 only (its own CLI listens on every
// interface). The port comes from the first argument or FAUXQS_PORT; 0 or
// none picks a free one. Prints the base URL on stdout, alone on its line,
// once the server accepts connections; logs go to stderr.
//
// Queue URLs are built from the request's Host header, so they point back at
// whatever address the client used.
import { buildApp } from "fauxqs";

const arg = process.argv[2] ?? process.env.FAUXQS_PORT ?? "0";
const port = Number(arg);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`fauxqs: bad port ${JSON.stringify(arg)}`);
  process.exit(2);
}

// Request logs would cost more than the requests themselves in a benchmark.
const logger = process.env.FAUXQS_LOGGER === "true";
const app = buildApp({ logger, defaultRegion: process.env.FAUXQS_DEFAULT_REGION ?? "us-east-1" });

let url;
try {
  url = await app.listen({ port, host: "127.0.0.1" });
} catch (err) {
  console.error(`fauxqs: listen on 127.0.0.1:${port}: ${err.message}`);
  process.exit(1);
}
console.log(url);

let closing = false;
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => {
    if (closing) process.exit(1);
    closing = true;
    app.close().then(() => process.exit(0), () => process.exit(1));
  });
}
