#!/bin/sh
# The candidates of a proxy change written from stdin, then apply-change.sh, in one command (one
# round trip instead of two). Arguments:
#   N CAND1 LEN1 … CANDN LENN LIMIT PIDFILE IN_FLIGHT APPLY_SCRIPT APPLY_ARGS…
# The candidates' contents come one after another on stdin, each read to its exact length (dd,
# full blocks: nothing of the next one is consumed); a missing directory exits 73 (not set up).
# APPLY_SCRIPT (the text of apply-change.sh) then runs with APPLY_ARGS. With a LIMIT (seconds; "-"
# for none, and then PIDFILE and IN_FLIGHT are "-" too), once the change is applied and its lock
# released, IN_FLIGHT (the text of in-flight.sh) waits for the requests in flight and prints their
# count on the last line.

set -u
# ApplyExit.NotSetUp in commands.ts (which checks it when it loads this file)
not_set_up=73
n=$1; shift
umask 022
while [ "$n" -gt 0 ]; do
  c=$1 len=$2; shift 2; n=$((n - 1))
  [ -d "$(dirname -- "$c")" ] || { echo "the proxy is not set up on this host: run ensureProxy" >&2; exit "$not_set_up"; }
  if [ "$len" -eq 0 ]; then : > "$c" || exit 1
  else dd iflag=fullblock bs="$len" count=1 status=none > "$c" || exit 1; fi
  [ "$(wc -c < "$c")" -eq "$len" ] || { echo "$c: stdin ended early" >&2; exit 1; }
done
limit=$1 pidfile=$2 inflight=$3 script=$4; shift 4
[ "$limit" = - ] && exec sh -c "$script" "$@"
sh -c "$script" "$@" || exit
exec sh -c "$inflight" qm-proxy-in-flight "$pidfile" "$limit"
