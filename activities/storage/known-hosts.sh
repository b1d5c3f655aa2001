#!/bin/bash
# On an app host: make the known_hosts lines of host NAME in FILE exactly the ones on stdin (other
# hosts' lines are kept), under a lock, by writing a new file and renaming it over the old.
# Arguments: FILE NAME. Prints `unchanged` or `changed`.

set -eu
file=$1
export QM_NAME="$2"
umask 077
mkdir -p -- "$(dirname -- "$file")"
exec 9>"$file.qm-lock"
flock -w 30 9
touch -- "$file"
new=$(cat)
cur=$(awk '$1 == ENVIRON["QM_NAME"]' "$file")
if [ "$cur" = "$new" ]; then echo unchanged; exit 0; fi
tmp="$file.qm-tmp.$$"
trap 'rm -f -- "$tmp"' EXIT
{ awk '$1 != ENVIRON["QM_NAME"]' "$file"; printf '%s\n' "$new"; } >"$tmp"
chmod 0600 -- "$tmp"
sync -- "$tmp"
mv -f -- "$tmp" "$file"
echo changed
