#!/usr/bin/env bash
# Measures what transient SQS faults cost the sqs source: bench/cmd/sqsdrain -mode flow drains
# queues of one fauxqs through two proxies (bench/cmd/sqsproxy) that both add a round trip,
# one of them also answering a fraction of the requests with 500 InternalFailure or
# RequestThrottled. Each round drains a fresh queue through each proxy, so the fault case is
# compared with the fault-free one of the same round. Everything listens on 127.0.0.1 only.
#
#   bench/sqs-faults.sh
#   RUNS=3          rounds
#   N=3000          messages per run
#   K=8             handlers
#   LATENCY=10ms    added to every request by both proxies
#   ERRORS=0.025    fraction answered 500 by the faulty proxy
#   THROTTLE=0.025  fraction answered RequestThrottled by the faulty proxy
#   KEEP=DIR        keep the binaries and the logs in DIR
#
# Prints one line per run (msgs/s; requests per message as the proxy saw them, failed
# attempts included), then the medians and their ratio. Needs Go and Node.js.
set -euo pipefail

runs=${RUNS:-3}
n=${N:-3000}
k=${K:-8}
latency=${LATENCY:-10ms}
errors=${ERRORS:-0.025}
throttle=${THROTTLE:-0.025}
. "$(dirname "$0")/lib.sh"

(cd "$root" && go build -o "$work/sqsdrain" ./bench/cmd/sqsdrain && go build -o "$work/sqsproxy" ./bench/cmd/sqsproxy)

PALLETO_FAUXQS_DIR="$root/bench/fauxqs" start "$work/clean" "$work/sqsproxy" -fauxqs -latency "$latency"
start "$work/faulty" "$work/sqsproxy" -target "$(field target "$work/clean")" -latency "$latency" -error500 "$errors" -throttle "$throttle"

bench_aws

echo "machine: $(nproc) CPUs, load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "fauxqs behind sqsproxy (+$latency a request); faults: $errors 500s, $throttle throttling; K=$k; N=$n; runs: $runs"
q=0
for ((r = 1; r <= runs; r++)); do
	for c in clean faulty; do
		q=$((q + 1))
		queue=faults-$$-$q
		AWS_ENDPOINT_URL=$(field endpoint "$work/clean") "$work/sqsdrain" -mode seed -queue "$queue" -n "$n" >/dev/null
		out=$(AWS_ENDPOINT_URL=$(field endpoint "$work/$c") "$work/sqsdrain" -mode flow -queue "$queue" -n "$n" -concurrency "$k" -stats "$(field stats "$work/$c")")
		echo "$c $out" >>"$work/results"
		echo "run $r $c: $(python3 -c '
import json, sys
d = json.loads(sys.argv[1]); p = d["proxy"]["requests"]
print("%d msgs/s, %.3f requests/msg, %d deleted" % (d["msgs_per_s"], sum(p.values()) / d["n"], d["deleted"]))' "$out")"
	done
done
python3 - "$work/results" <<'PY'
import json, statistics, sys
rate, req = {}, {}
for line in open(sys.argv[1]):
    c, js = line.split(" ", 1)
    d = json.loads(js)
    rate.setdefault(c, []).append(d["msgs_per_s"])
    req.setdefault(c, []).append(sum(d["proxy"]["requests"].values()) / d["n"])
m = {c: statistics.median(v) for c, v in rate.items()}
for c in ("clean", "faulty"):
    print("median %-6s %6.0f msgs/s, %.3f requests/msg" % (c, m[c], statistics.median(req[c])))
print("faulty/clean: %.2f (goal >= 0.70; requests/msg <= 0.22)" % (m["faulty"] / m["clean"]))
PY
