#!/usr/bin/env bash
# Measures `palleto run --drain` end to end against a hand-written pipeline
# (bench/cmd/pipebench loop: 8 goroutines, each ReceiveMessage 10 → GetObject,
# gunzip, count, write the result by rename → DeleteMessageBatch) on the same
# objects: N real .gz files of a few KiB, one S3 notification each, served by
# the project's embedded SQS and S3 (package local; BACKEND=fauxqs: fauxqs and
# gofakes3), each behind a proxy that adds a round trip to every request.
# Everything listens on 127.0.0.1 only.
#
#   bench/pipeline.sh
#   RUNS=3                 rounds; each runs every side once, on a fresh queue
#   N=1000                 objects (and messages) per run
#   LATENCIES="0 10ms 50ms" round trips added by the proxies
#   SIDES="loop;palleto"   what runs, separated by ';': "loop", or "palleto"
#                          followed by extra flags of palleto run
#                          (e.g. "loop;palleto;palleto --fetchers 16"); {admin}
#                          in them is a free 127.0.0.1 address, and a side that
#                          starts with "page" holds the dashboard there open in
#                          a headless Chromium ("page palleto --admin-listen {admin}")
#   BASE=loop              the side the others are compared with; any other
#                          adds a table by round (how noisy the ratios are)
#   ORDER=fixed            or rotate: round r starts with side r (mod the
#                          sides), so that no side always runs first
#   BACKEND=local         or fauxqs (needs Node.js)
#   CA_BUNDLE=FILE         palleto reads this CA bundle (AWS_CA_BUNDLE), as on a
#                          machine that sets one; by default both sides run with
#                          no AWS or PALLETO setting of the shell (bench/lib.sh),
#                          and the loop reads none in any case
#   KEEP=DIR               keep the binaries, the JSON lines and the logs in DIR
#   OUTPUTS=keep           or remove: a run's result files are kept until the script
#                          ends (in its work directory), or removed as soon as they
#                          are checked (for a disk short of room: N files of 4 KiB
#                          per run). On ext4 without a journal (as on our machines)
#                          the kernel skips the inodes freed in the last minute
#                          when it creates a file, one by one, so that after each
#                          removal every run pays for the last runs' removals in
#                          each result file it creates: at 0 ms that is 40% of the
#                          CPU per object of both sides, and it varies from run to
#                          run with what was removed when. A deployment's results
#                          stay, so "keep" measures what it pays.
#                          After each run, sync(1) writes back what it left unsynced.
#
# Prints one line per run, then a Markdown table of medians with ratios to
# the loop of the same round trip (pipebench report). Wall time is from the
# start of the command to its exit; CPU time and peak RSS come from the
# child's rusage; requests are counted by the proxies; every result file is
# checked, and a run with a missing or wrong one does not count. The last
# columns split the wall time: the time to the first result file (the fixed
# cost of starting up) and the pace from the first result to the last (the
# steady rate), from the result files' modification times.
set -euo pipefail

runs=${RUNS:-3}
n=${N:-1000}
latencies=${LATENCIES:-0 10ms 50ms}
sides=${SIDES:-loop;palleto}
backend=${BACKEND:-local}
. "$(dirname "$0")/lib.sh"

(cd "$root" && go build -o "$work/palleto" ./cmd/palleto && go build -o "$work/pipebench" ./bench/cmd/pipebench)
bench_aws
pb=$work/pipebench
results=$work/results.jsonl
: >"$results"
IFS=';' read -r -a side_list <<<"$sides"

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "backend: $backend; N=$n objects, runs: $runs, sides: $sides"
q=0
for lat in $latencies; do
	be=$work/backend-$lat
	PALLETO_FAUXQS_DIR="$root/bench/fauxqs" start "$be" "$pb" backend -backend "$backend" -latency "$lat"
	backend_pid=$started
	"$pb" objects -s3 "$(field direct_s3 "$be")" -bucket bench -n "$n"
	export AWS_ENDPOINT_URL_SQS=$(field sqs "$be") AWS_ENDPOINT_URL_S3=$(field s3 "$be")
	for ((r = 1; r <= runs; r++)); do
		for ((i = 0; i < ${#side_list[@]}; i++)); do
			j=$i
			if [[ ${ORDER:-fixed} == rotate ]]; then
				j=$(((i + r - 1) % ${#side_list[@]}))
			fi
			side=${side_list[$j]}
			q=$((q + 1))
			url=$("$pb" notify -sqs "$(field direct_sqs "$be")" -queue "bench-$q" -bucket bench -n "$n")
			out=$work/out-$q
			rm -rf "$out"
			read -r -a words <<<"$side"
			page=()
			if [[ ${words[0]} == page ]]; then
				page=(-page)
				words=("${words[@]:1}")
			fi
			if [[ ${words[0]} == loop ]]; then
				cmd=("$pb" loop -queue-url "$url" -out "$out" -n "$n")
			else
				cmd=("$work/palleto" run --queue-url "$url" --out "$out" --drain "${words[@]:1}")
			fi
			res=$("$pb" exec ${page[@]+"${page[@]}"} -latency "$lat" -side "$side" -round "$r" -n "$n" -stats "$(field stats "$be")" -out "$out" -- "${cmd[@]}" 2>"$work/run-$q.log")
			echo "$res" >>"$results"
			echo "$lat $side round $r: $res"
			if [[ ${OUTPUTS:-keep} == remove ]]; then
				rm -rf "$out"
			fi
			# Write back what the run left unsynced (the loop syncs nothing), so that the
			# next run does not pay for it in its own syncs.
			sync
		done
	done
	stop "$backend_pid"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
"$pb" report -base "${BASE:-loop}" "$results"
