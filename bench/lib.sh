# What the benchmark scripts share. Each sources it first:
#
#   . "$(dirname "$0")/lib.sh"
#
# It sets root (the repository) and work (KEEP=DIR, made if missing and kept,
# or a new temporary directory, removed on exit), and stops on exit every
# helper started with start.

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [[ -n "${KEEP:-}" ]]; then
	work=$KEEP
	mkdir -p "$work"
else
	work=$(mktemp -d)
fi
helpers=()

# stop PID: stops a helper and waits for it to end.
stop() {
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

bench_exit() {
	local p
	for p in ${helpers[@]+"${helpers[@]}"}; do
		stop "$p"
	done
	if [[ -z "${KEEP:-}" ]]; then
		rm -rf "$work"
	fi
}
trap bench_exit EXIT

# start OUT CMD [ARGS...]: starts a helper in the background, its standard
# output in OUT and its standard error in OUT.log, and waits for the line it
# prints once ready (its addresses, as JSON); if it ends first, prints its log
# and exits. Its pid is then in started; it is stopped on exit.
start() {
	local out=$1
	shift
	: >"$out"
	"$@" >"$out" 2>"$out.log" &
	started=$!
	helpers+=("$started")
	for _ in $(seq 1 600); do
		[[ -s "$out" ]] && return
		if ! kill -0 "$started" 2>/dev/null; then
			echo "$(basename "$1") failed:" >&2
			cat "$out.log" >&2
			exit 1
		fi
		sleep 0.2
	done
	echo "$(basename "$1") did not start in 2 minutes" >&2
	exit 1
}

# bench_aws: the AWS settings of what a script runs, and only these: test
# credentials, a region, no instance metadata. Every AWS_* and PALLETO_*
# variable of the shell is dropped and the shared files (~/.aws) are not read,
# so that the machine's own settings (a profile, a CA bundle, a credential
# process, a PALLETO_FETCHERS) do not change what is measured. CA_BUNDLE=FILE
# sets AWS_CA_BUNDLE, to measure what reading a CA bundle costs. The script
# then exports the endpoints.
bench_aws() {
	local v
	for v in $(compgen -e); do
		if [[ $v == AWS_* || $v == PALLETO_* ]]; then
			unset "$v"
		fi
	done
	export AWS_CONFIG_FILE=$work/no-aws-config AWS_SHARED_CREDENTIALS_FILE=$work/no-aws-credentials
	export AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_EC2_METADATA_DISABLED=true
	if [[ -n "${CA_BUNDLE:-}" ]]; then
		export AWS_CA_BUNDLE=$CA_BUNDLE
	fi
}

# field NAME FILE: the string field NAME of the JSON line a helper printed in FILE.
field() {
	sed -E "s/.*\"$1\":\"([^\"]*)\".*/\1/" <(head -n1 "$2")
}
