#!/usr/bin/env bash
# Measures the sqs source in a flow pipeline (bench/cmd/sqsdrain -mode flow)
# against a hand-written receive-handle-delete loop (-mode loop), both
# draining a queue of an SQS stand-in behind a proxy that adds a round trip to
# every request (bench/cmd/sqsproxy). Everything listens on 127.0.0.1 only.
#
#   bench/sqs.sh
#   BACKEND=local   the SQS stand-in: local (the embedded SQS of package local,
#                   Go only), fauxqs (Node.js), or both ("local fauxqs"): each
#                   is measured in turn, and the flow side's rates are compared
#   RUNS=3          rounds; each runs loop then flow on fresh queues, for each work
#   N=20000         messages per run without work
#   N_WORK=4000     messages per run with work (8 handlers × 20 ms: about 10 s)
#   WORK="0 20ms"   time each handler spends on a message
#   K=8             handlers on both sides
#   LATENCY=10ms    added to every request by the proxy; 0 connects the
#                   clients to the stand-in directly (no proxy, no proxy figures)
#   IDLE=1          also watch the source against an empty queue (60 s) and with
#                   nothing demanded (30 s); 0 skips them
#   FLOW_ARGS=      extra sqsdrain flags for the flow side (-max-demand 20 …)
#   KEEP=DIR        keep the binaries, the JSON lines and the logs in DIR
#
# Prints the machine and its load, one line per run, then a Markdown table with
# the ratios and the goals (sqsdrain report). Needs Go; fauxqs also needs
# Node.js (it is installed by bench/fauxqs/start.sh on first use).
#
# The stand-ins compared, with no added latency and no handler work:
#   BACKEND="local fauxqs" LATENCY=0 WORK=0 IDLE=0 bench/sqs.sh
set -euo pipefail

runs=${RUNS:-3}
n=${N:-20000}
n_work=${N_WORK:-4000}
works=${WORK:-0 20ms}
k=${K:-8}
latency=${LATENCY:-10ms}
idle=${IDLE:-1}
flow_args=${FLOW_ARGS:-}
backends=${BACKEND:-local}
. "$(dirname "$0")/lib.sh"

(cd "$root" && go build -o "$work/sqsdrain" ./bench/cmd/sqsdrain && go build -o "$work/sqsproxy" ./bench/cmd/sqsproxy)

# bench BACKEND: measures on one stand-in; the JSON lines go to
# $work/results-BACKEND.jsonl.
bench() {
	local backend=$1
	# sqsproxy starts the stand-in (fauxqs: internal/fauxqs, 127.0.0.1, its own
	# process group; local: in the proxy's process) and prints {"endpoint",
	# "target", "stats"} once both are ready.
	local proxy=$work/proxy-$backend
	PALLETO_FAUXQS_DIR="$root/bench/fauxqs" start "$proxy" "$work/sqsproxy" "-$backend" -latency "$latency"
	local proxy_pid=$started
	local endpoint stats stats_args=()
	endpoint=$(field endpoint "$proxy")
	stats=$(field stats "$proxy")
	[[ -n "$endpoint" && -n "$stats" ]] || { echo "sqsproxy printed: $(head -n1 "$proxy")" >&2; exit 1; }
	if [[ $latency == 0 || $latency == 0s ]]; then
		endpoint=$(field target "$proxy") # nothing to add: no proxy in between
	else
		stats_args=(-stats "$stats")
	fi

	bench_aws
	export AWS_ENDPOINT_URL=$endpoint

	# The proxy and the stand-in share the machine with both sides: their CPU
	# time is printed with each run. The embedded SQS runs in the proxy's
	# process, fauxqs in a child of it.
	local fauxqs_pid=""
	[[ $backend == fauxqs ]] && fauxqs_pid=$(pgrep -P "$proxy_pid" | head -n1 || true)

	echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load: $(cut -d' ' -f1-3 /proc/loadavg)"
	if [[ $backend == fauxqs ]]; then
		echo "fauxqs $(cd "$root/bench/fauxqs" && node -p 'require("./node_modules/fauxqs/package.json").version') behind sqsproxy (+$latency a request); K=$k; runs: $runs"
	else
		echo "embedded SQS (package local) behind sqsproxy (+$latency a request), in the proxy's process; K=$k; runs: $runs"
	fi
	local results=$work/results-$backend.jsonl
	: >"$results"
	for ((r = 1; r <= runs; r++)); do
		for w in $works; do
			count=$n
			[[ $w != 0 ]] && count=$n_work
			if [[ $w != 0 ]]; then
				# What the handlers allow with no queue, on the machine as loaded now.
				out=$("$work/sqsdrain" -mode ceiling -n $((count / 2)) -work "$w" -concurrency "$k")
				echo "$out" >>"$results"
				echo "run $r work $w ceiling: $(sed -E 's/.*"msgs_per_s":([0-9]+)[^,]*.*/\1/' <<<"$out") msgs/s"
			fi
			for mode in loop flow; do
				q=$((q + 1))
				queue=bench-$$-$q
				"$work/sqsdrain" -mode seed -queue "$queue" -n "$count" >/dev/null
				extra=()
				[[ $mode == flow ]] && extra=($flow_args)
				p0=$(cpu_ms "$proxy_pid")
				f0=$(cpu_ms "${fauxqs_pid:-0}")
				out=$("$work/sqsdrain" -mode "$mode" -queue "$queue" -n "$count" -work "$w" -concurrency "$k" "${stats_args[@]}" "${extra[@]}")
				p1=$(cpu_ms "$proxy_pid")
				f1=$(cpu_ms "${fauxqs_pid:-0}")
				echo "$out" >>"$results"
				echo "run $r work $w $mode: $(sed -E 's/.*"msgs_per_s":([0-9]+)[^,]*.*/\1/' <<<"$out") msgs/s; proxy CPU $((p1 - p0)) ms, fauxqs CPU $((f1 - f0)) ms; load $(cut -d' ' -f1 /proc/loadavg)"
			done
		done
	done

	if [[ $idle == 1 ]]; then
		echo "watching the source against an empty queue for 60 s, then with nothing demanded for 30 s"
		"$work/sqsdrain" -mode empty -queue "bench-$$-empty" -concurrency "$k" "${stats_args[@]}" -for 60s $flow_args >>"$results"
		"$work/sqsdrain" -mode idle -queue "bench-$$-idle" -seed -n 200 -concurrency "$k" "${stats_args[@]}" -for 30s $flow_args >>"$results"
	fi
	stop "$proxy_pid"
	echo
	"$work/sqsdrain" report "$results"
	echo
}

ticks=$(getconf CLK_TCK)
cpu_ms() { # PID: user+system CPU time in ms
	awk -v t="$ticks" '{ print int(($14 + $15) * 1000 / t) }' "/proc/$1/stat" 2>/dev/null || echo 0
}

q=0
for b in $backends; do
	case $b in
	local | fauxqs) bench "$b" ;;
	*) echo "BACKEND: unknown stand-in $b (local or fauxqs)" >&2; exit 2 ;;
	esac
done

median() { sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) printf "%.0f\n", a[(NR + 1) / 2]; else printf "%.0f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
# With both stand-ins: the flow side's median rate on each, and their ratio.
if [[ $backends == *local* && $backends == *fauxqs* ]]; then
	l=$(grep '"mode":"flow"' "$work/results-local.jsonl" | sed -E 's/.*"msgs_per_s":([0-9.]+).*/\1/' | median)
	f=$(grep '"mode":"flow"' "$work/results-fauxqs.jsonl" | sed -E 's/.*"msgs_per_s":([0-9.]+).*/\1/' | median)
	echo "flow side, median msgs/s over all its runs: local $l, fauxqs $f; local/fauxqs = $(awk -v l="$l" -v f="$f" 'BEGIN { if (f > 0) printf "%.2f", l / f; else print "n/a" }') (goal: at least 2)"
fi
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
