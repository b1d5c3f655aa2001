#!/bin/sh
# shellcheck source-path=SCRIPTDIR
# One configuration change of a proxy host as a transaction, under an flock of the proxy directory
# (so changes of different sites never see each other's untested files):
#
#  0. Undo what a transaction cut short (lost connection, killed) left: put back every `*.qm-prev`,
#     delete every file a `*.qm-new` marks as new, drop stale candidates.
#  1. If a guard file is given, its sha256 must still be the expected one (compare-and-swap for
#     read-modify-write callers), else exit 71.
#  2. If every live file already equals its candidate (and no reload is owed): nothing to do.
#  3. Otherwise back up each live file, move each candidate into place (rename: atomic), and run
#     `nginx -t` on the result. If it fails, or nginx reports a server name claimed twice, put
#     every previous file back and exit with nginx's message: an invalid config is never loaded.
#  4. Commit (drop the backups, after noting in .qm-reload-owed that a reload is owed), then reload
#     the running master with SIGHUP and wait until it has started workers on the new config and
#     (WAIT=old) told the old ones to finish what they hold: from then on no new request is routed
#     by the old config. nginx's master tells them 100 ms after starting the new workers, so
#     WAIT=new (return once the new workers run) is for changes that only add capacity, such as a
#     readmitted backend: until the old workers are told, they route as before, which was already
#     safe. With START=yes, a master that is not running is started.
#
# Arguments: DIR NGINX PIDFILE START(yes|no) GUARD_FILE(- for none) GUARD_SHA(or "absent")
# WAIT(old|new), then pairs CANDIDATE LIVE; a candidate of "-" deletes the live file.
# Prints "changed" or "unchanged", and "started" / "reloaded" when it did so.
# Exit statuses (ApplyExit in commands.ts), named below: 70 the lock was held for 60 s, 71 the
# guard file changed, 72 nginx rejected the configuration, 73 the proxy is not set up, 74 the
# reload or start failed, 75 a server name is claimed twice.

d=$1 nginx=$2 pidfile=$3 start=$4 guard=$5 want=$6 wait=$7
shift 7
# ApplyExit in commands.ts (which checks these when it loads this file)
lock_timeout=70 guard_mismatch=71 config_rejected=72 not_set_up=73 reload_failed=74 name_conflict=75
errlog="$d/logs/error.log"
owed="$d/.qm-reload-owed"
ngx() { "$nginx" -p "$d/" -c "$d/nginx.conf" -e "$errlog" "$@"; }

[ -d "$d/sites" ] || { echo "the proxy is not set up on this host (no $d/sites): run ensureProxy" >&2; exit "$not_set_up"; }
exec 9>>"$d/.qm-lock" || exit 1
discard() {
  while [ $# -ge 2 ]; do [ "$1" = - ] || rm -f "$1"; shift 2; done
}
flock -w 60 9 || { discard "$@"; echo "another change to this proxy held its lock for 60 s" >&2; exit "$lock_timeout"; }

for m in "$d"/nginx.conf.qm-prev "$d"/pages/*.qm-prev "$d"/sites/*.qm-prev; do
  [ -e "$m" ] && mv -f "$m" "$(printf '%s' "$m" | sed 's/[.]qm-prev$//')"
done
for m in "$d"/nginx.conf.qm-new "$d"/pages/*.qm-new "$d"/sites/*.qm-new; do
  [ -e "$m" ] && rm -f "$(printf '%s' "$m" | sed 's/[.]qm-new$//')" "$m"
done
find "$d" -maxdepth 2 -name '*.qm-cand-*' -mmin +60 -exec rm -f {} + 2>/dev/null

if [ "$guard" != - ]; then
  if [ -e "$guard" ]; then have=$(sha256sum < "$guard" | cut -d' ' -f1); else have=absent; fi
  [ "$have" = "$want" ] || { discard "$@"; echo "$guard changed since it was read" >&2; exit "$guard_mismatch"; }
fi

same() {
  while [ $# -ge 2 ]; do
    if [ "$1" = - ]; then [ ! -e "$2" ] || return 1; else cmp -s "$1" "$2" || return 1; fi
    shift 2
  done
}
install() {
  while [ $# -ge 2 ]; do
    rm -f "$2.qm-prev" "$2.qm-new"
    if [ -e "$2" ]; then cp -p "$2" "$2.qm-prev" || return 1; else : > "$2.qm-new" || return 1; fi
    if [ "$1" = - ]; then rm -f "$2" || return 1; else mv -f "$1" "$2" || return 1; fi
    shift 2
  done
}
restore() {
  while [ $# -ge 2 ]; do
    if [ -e "$2.qm-prev" ]; then mv -f "$2.qm-prev" "$2"; elif [ -e "$2.qm-new" ]; then rm -f "$2"; fi
    rm -f "$2.qm-new"
    [ "$1" = - ] || rm -f "$1"
    shift 2
  done
}
commit() {
  while [ $# -ge 2 ]; do rm -f "$2.qm-prev" "$2.qm-new"; shift 2; done
}
running() {
  pid=$(cat "$pidfile" 2>/dev/null) || return 1
  case "$pid" in '' | *[!0-9]*) return 1 ;; esac
  kill -0 "$pid" 2>/dev/null || return 1
  [ "$(readlink "/proc/$pid/ns/mnt")" = "$(readlink /proc/self/ns/mnt)" ] || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q '^nginx: master process'
}
log_tail() { tail -n 5 "$errlog" >&2 2>/dev/null; }
# shellcheck source=nginx-workers.sh
. "$(dirname -- "$0")/nginx-workers.sh"
reload() {
  old=" $(workers) "
  kill -HUP "$pid" || return 1
  # every 5 ms (a reload's steps take a few ms each); once the new workers run, the old ones are
  # told no sooner than 100 ms later (nginx's own pause), so that wait is one sleep
  i=0 paused=no
  while [ $i -lt 3000 ]; do
    fresh=no settled=yes
    for w in $(workers); do case "$old" in *" $w "*) ;; *) fresh=yes ;; esac; done
    if [ $fresh = yes ]; then
      [ "$wait" = new ] && return 0
      [ $paused = yes ] || { sleep 0.09; paused=yes; }
      for w in $old; do
        [ -e "/proc/$w" ] || continue
        told "$w" || { settled=no; break; }
      done
      [ $settled = yes ] && return 0
    fi
    sleep 0.005
    i=$((i + 1))
  done
  echo "nginx did not switch to the new configuration within 15 s; its error log ends:" >&2
  log_tail
  return 1
}
launch() {
  # 9>&-: the master must not inherit the lock, or it would hold it for as long as it runs
  ngx < /dev/null > /dev/null 2>> "$errlog" 9>&- || { echo "nginx did not start; its error log ends:" >&2; log_tail; return 1; }
  i=0
  while [ $i -lt 50 ]; do running && return 0; sleep 0.1; i=$((i + 1)); done
  echo "nginx started but wrote no pid file within 5 s; its error log ends:" >&2
  log_tail
  return 1
}

result=unchanged
if same "$@"; then
  discard "$@"
else
  install "$@" || { restore "$@"; echo "could not put the new files in place" >&2; exit 1; }
  [ -e "$d/nginx.conf" ] || { restore "$@"; echo "the proxy is not set up on this host (no $d/nginx.conf): run ensureProxy" >&2; exit "$not_set_up"; }
  if ! out=$(ngx -t -q 2>&1); then restore "$@"; printf '%s\n' "$out" >&2; exit "$config_rejected"; fi
  case "$out" in *"conflicting server name"*) restore "$@"; printf '%s\n' "$out" >&2; exit "$name_conflict" ;; esac
  : > "$owed"
  commit "$@"
  result=changed
fi

if running; then
  if [ -e "$owed" ]; then reload || exit "$reload_failed"; rm -f "$owed"; result="$result reloaded"; fi
elif [ "$start" = yes ]; then
  if [ ! -e "$owed" ]; then
    out=$(ngx -t -q 2>&1) || { printf '%s\n' "$out" >&2; exit "$config_rejected"; }
  fi
  launch || exit "$reload_failed"
  rm -f "$owed"
  result="$result started"
fi
echo "$result"
