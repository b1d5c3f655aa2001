#!/bin/sh
# The patch guard on a host: the patch command ARGV… run once per host per roll, its state in DIR
# (a roll's directory under /srv/qm/patch-roll; roll directories older than 60 days are pruned).
# Arguments: DIR ARGV…
# - `flock` on DIR/lock: a retry that arrives while an earlier attempt still runs (its worker died
#   and its SSH session with it, but the command went on) waits for that attempt to end;
# - DIR/done (written only after the command exited 0): a retry after success runs nothing and
#   says `already-done`;
# - the command's stdin is /dev/null and its output goes to DIR/output.log (on the host, for ops),
#   so a lost SSH session neither blocks it nor kills it with SIGPIPE;
# - the last line is `QM-PATCH ran rc=N` or `QM-PATCH already-done`, after a tail of the log.
# Exits with the command's status; 96-98 when the guard itself failed (its directory, lock, marker).
set -u
# PATCH_STATE_DIR and KEEP_DAYS in commands.ts (which checks these when it loads this file)
state_dir=/srv/qm/patch-roll keep_days=60
dir=$1; shift
mkdir -p "$dir" || exit 96
find "$state_dir" -mindepth 1 -maxdepth 1 -type d -mtime +"$keep_days" -exec rm -rf {} + 2>/dev/null
exec 9>>"$dir/lock"
flock 9 || exit 97
if [ -e "$dir/done" ]; then echo "QM-PATCH already-done"; exit 0; fi
echo "=== $(date -u +%Y-%m-%dT%H:%M:%SZ) $*" >>"$dir/output.log"
DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=a "$@" </dev/null >>"$dir/output.log" 2>&1 9>&-
rc=$?
if [ "$rc" -eq 0 ]; then date -u +%Y-%m-%dT%H:%M:%SZ >"$dir/done.tmp" && mv -f "$dir/done.tmp" "$dir/done" || exit 98; fi
tail -c 1500 "$dir/output.log"
echo
echo "QM-PATCH ran rc=$rc"
exit "$rc"
