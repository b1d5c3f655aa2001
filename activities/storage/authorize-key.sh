#!/bin/bash
# On the storage host: put LINE in the authorized keys FILE, replacing any other line for the same
# key BLOB (so a key authorized earlier with other options ends up with ours), under a lock; every
# other line is kept as it was. The new file is written beside the old one and renamed over it.
# Arguments: FILE BLOB LINE. Prints `unchanged` or `added`.

set -eu
file=$1 blob=$2 line=$3
umask 077
mkdir -p -- "$(dirname -- "$file")"
exec 9>"$file.qm-lock"
flock -w 30 9
touch -- "$file"
if grep -qxF -- "$line" "$file"; then echo unchanged; exit 0; fi
tmp="$file.qm-tmp.$$"
trap 'rm -f -- "$tmp"' EXIT
{ grep -vF -- " $blob" "$file" || [ $? = 1 ]; } >"$tmp"
printf '%s\n' "$line" >>"$tmp"
chmod 0600 -- "$tmp"
sync -- "$tmp"
mv -f -- "$tmp" "$file"
echo added
