#!/bin/sh
# shellcheck source-path=SCRIPTDIR
# Wait until the nginx workers told to shut down by earlier reloads have exited (each exits once
# the requests it took before the change are finished), at most LIMIT seconds, polling every 5 ms.
# Arguments: PIDFILE LIMIT. Prints how many are still running: 0 when every request in flight
# finished (or nginx is not running).

pidfile=$1 limit=$2
pid=$(cat "$pidfile" 2>/dev/null) || { echo 0; exit 0; }
case "$pid" in '' | *[!0-9]*) echo 0; exit 0 ;; esac
kill -0 "$pid" 2>/dev/null || { echo 0; exit 0; }
# shellcheck source=nginx-workers.sh
. "$(dirname -- "$0")/nginx-workers.sh"
old() {
  n=0
  for w in $(workers); do told "$w" && n=$((n + 1)); done
  echo $n
}
# the clock in hundredths of a second, with no process started: /proc/uptime is "12345.67 …"
tick() { IFS='. ' read -r s cs _ < /proc/uptime; now=$s$cs; }
tick
end=$((now + limit * 100))
while :; do
  n=$(old)
  tick
  if [ "$n" -eq 0 ] || [ "$now" -ge "$end" ]; then echo "$n"; exit 0; fi
  sleep 0.005
done
