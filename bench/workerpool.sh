#!/usr/bin/env bash
# Worker pool figures for docs/benchmarks.md ("Worker pool"): durable vs in-memory enqueues
# (jobs.BenchmarkEnqueue), and webhook calls/s and webhook → job start latency against a
# no-op webhook baseline (bench/cmd/poolbench). Every figure is printed with its baseline
# from the same run; run it on an otherwise idle machine.
#
#	bench/workerpool.sh [runs]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}

echo "== go test -run XXX -bench Enqueue -benchtime 2s -count $runs ./jobs"
go test -run XXX -bench Enqueue -benchtime 2s -count "$runs" ./jobs | grep -E '^Benchmark'

go build -o /tmp/poolbench.$$ ./bench/cmd/poolbench
trap 'rm -f /tmp/poolbench.$$' EXIT
for i in $(seq "$runs"); do
	echo "== poolbench -calls 20000 -conns 64 -samples 2000 (run $i)"
	/tmp/poolbench.$$ -calls 20000 -conns 64 -samples 2000
done
