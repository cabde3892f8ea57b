#!/bin/sh
# Rebuilds the compressed fixtures from lines.txt with the reference tools,
# so that the tests check this package against other implementations than
# the ones it uses itself. Run from this directory.
set -eu
gzip -9 -n -c lines.txt > lines.gz
zstd -q -19 --check -c lines.txt > lines.zst
bzip2 -1 -c lines.txt > lines.bz2            # 100k blocks: several blocks
printf 'first\nsecond\nno newline at the end' | bzip2 -c > noeol.bz2
printf '' | bzip2 -c > empty.bz2
