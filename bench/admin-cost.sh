#!/usr/bin/env bash
# Measures what the admin listener costs `palleto run --drain`: bench/pipeline.sh
# on the same generated objects (N, one S3 notification each, a fresh queue per
# run, the embedded SQS and S3 on 127.0.0.1), three sides per round, one after
# the other, each round starting with the next side (ORDER=rotate):
#
#   palleto                              no admin listener
#   palleto --admin-listen {admin}       the admin listener on 127.0.0.1, nothing attached
#   page palleto --admin-listen {admin}  the same, with the dashboard open in a headless
#                                        Chromium for the whole run (started before the
#                                        run, the page loaded as soon as the listener
#                                        takes connections; it polls once a second)
#
#   bench/admin-cost.sh
#   RUNS=3 N=1000 LATENCIES=0 BACKEND=local KEEP=DIR   as bench/pipeline.sh
#
# Prints the runs, the medians with ratios to the side without an admin
# listener, and each round's objects/s with its ratio to that side's of the
# same round (the spread says how noisy the figures are), and the snapshots
# each page polled. Needs Chromium (apt-get install chromium, or set
# PALLETO_CHROMIUM). The browser runs on the same machine, so the last side's
# cost includes its rendering.
set -euo pipefail
export SIDES="palleto;palleto --admin-listen {admin};page palleto --admin-listen {admin}"
export BASE=palleto ORDER=rotate
export LATENCIES=${LATENCIES:-0}
exec "$(dirname "$0")/pipeline.sh"
