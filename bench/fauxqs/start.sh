#!/bin/sh
# Starts fauxqs on 127.0.0.1 for benchmarks: start.sh [PORT]
# (0 or none: a free port). Prints the base URL on stdout when ready.
# Installs the pinned dependencies on first use.
set -eu
cd "$(dirname "$0")"

# npm writes node_modules/.package-lock.json last, so its presence means a
# complete install. Concurrent first starts (parallel test packages) take
# turns, and only the first installs.
if [ ! -f node_modules/.package-lock.json ]; then
	if command -v flock >/dev/null 2>&1; then
		exec 9>.npm-ci.lock
		flock 9
	fi
	if [ ! -f node_modules/.package-lock.json ]; then
		npm ci --silent --no-audit --no-fund >&2
	fi
fi
exec node server.mjs "$@"
