#!/usr/bin/env bash
# Compares object.Analyze (sniff, decompress, count bytes and lines) with
# `gzip -dc FILE | wc -l` on the same generated file, and reports the peak
# memory of our process.
#
#   bench/analyze.sh [SIZE]      SIZE of the uncompressed logs: 512M by default
#                                (bytes, or K/M/G: powers of 1024)
#   RUNS=3                       timed runs of each side; the fastest counts
#   BENCH_ZSTD=1                 also compare with `zstd -dc | wc -l` (if zstd exists)
#   BENCH_BZIP2=0                also compare with `bzip2 -dc | wc -l` (slow to prepare)
#   KEEP=DIR                     keep the generated files in DIR
# (Not ZSTD or BZIP2: bzip2 reads options from $BZIP2.)
set -euo pipefail

size=${1:-512M}
runs=${RUNS:-3}
. "$(dirname "$0")/lib.sh"

(cd "$root" && go build -o "$work/analyze" ./bench/cmd/analyze)

echo "generating $size of log lines (gzip -6) in $work"
"$work/analyze" gen -size "$size" 2>"$work/gen.txt" | gzip -6 >"$work/logs.gz"
read -r want_bytes want_lines <"$work/gen.txt"
echo "uncompressed: $want_bytes bytes, $want_lines lines; gzip file: $(stat -c %s "$work/logs.gz") bytes"
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load: $(cut -d' ' -f1-3 /proc/loadavg)"

# best_of CMD...: runs CMD $runs times, prints the fastest wall time in
# seconds; CMD's stdout of the last run is left in $work/out.
best_of() {
	local best="" t0 t1 t
	for ((i = 0; i < runs; i++)); do
		t0=$(date +%s%N)
		"$@" >"$work/out"
		t1=$(date +%s%N)
		t=$(((t1 - t0) / 1000))
		if [[ -z "$best" || $t -lt $best ]]; then best=$t; fi
	done
	awk -v us="$best" 'BEGIN { printf "%.3f", us / 1e6 }'
}

mibs() { awk -v b="$want_bytes" -v s="$1" 'BEGIN { printf "%.1f", b / s / 1048576 }'; }

compare() { # compare NAME FILE TOOL-PIPELINE
	local name=$1 file=$2 pipeline=$3 base ours base_lines got_bytes got_lines
	base=$(best_of sh -c "$pipeline")
	base_lines=$(tr -d ' ' <"$work/out")
	ours=$(best_of "$work/analyze" "$file")
	echo "$name (best of $runs runs, wall time of the whole command)"
	echo "  baseline  $(printf '%6.3f' "$base") s  $(mibs "$base") MiB/s  $pipeline"
	echo "  ours      $(printf '%6.3f' "$ours") s  $(mibs "$ours") MiB/s  analyze $(basename "$file")"
	echo "  speed ratio (ours / baseline): $(awk -v b="$base" -v o="$ours" 'BEGIN { printf "%.2f", b / o }')x"
	echo "  our last run: $(cat "$work/out")"
	read -r got_bytes got_lines < <(sed -E 's/.* bytes=([0-9]+) lines=([0-9]+).*/\1 \2/' "$work/out")
	if [[ "$got_bytes" != "$want_bytes" || "$got_lines" != "$want_lines" || "$base_lines" != "$want_lines" ]]; then
		echo "  MISMATCH: want $want_bytes bytes and $want_lines lines; baseline counted $base_lines lines" >&2
		exit 1
	fi
}

compare "gzip" "$work/logs.gz" "gzip -dc '$work/logs.gz' | wc -l"

if [[ "${BENCH_ZSTD:-1}" == 1 ]] && command -v zstd >/dev/null; then
	gzip -dc "$work/logs.gz" | zstd -q -3 -T1 -o "$work/logs.zst"
	compare "zstd (-3)" "$work/logs.zst" "zstd -dc '$work/logs.zst' | wc -l"
fi
if [[ "${BENCH_BZIP2:-0}" == 1 ]] && command -v bzip2 >/dev/null; then
	gzip -dc "$work/logs.gz" | bzip2 -9 >"$work/logs.bz2"
	compare "bzip2 (-9)" "$work/logs.bz2" "bzip2 -dc '$work/logs.bz2' | wc -l"
fi
