#!/bin/sh
# Stop the proxy's nginx if it runs: SIGQUIT lets the workers finish their requests; after GRACE
# seconds it is terminated. Arguments: PIDFILE GRACE. Prints "stopped", or "not running" (success
# too: no master, or the pid file names a process that is not our nginx).

pidfile=$1 grace=$2
pid=$(cat "$pidfile" 2>/dev/null) || { echo "not running"; exit 0; }
case "$pid" in '' | *[!0-9]*) echo "not running"; exit 0 ;; esac
if ! kill -0 "$pid" 2>/dev/null || [ "$(readlink "/proc/$pid/ns/mnt")" != "$(readlink /proc/self/ns/mnt)" ] ||
  ! tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q '^nginx: master process'; then
  rm -f "$pidfile"; echo "not running"; exit 0
fi
kill -QUIT "$pid"
i=0
while kill -0 "$pid" 2>/dev/null; do
  [ $i -ge $((grace * 10)) ] && { kill -TERM "$pid"; sleep 1; break; }
  sleep 0.1
  i=$((i + 1))
done
rm -f "$pidfile"
echo stopped
