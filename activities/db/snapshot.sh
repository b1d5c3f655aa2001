#!/bin/bash
# On the DB host: a snapshot of one database, DIR/NAME.sql.gz with its checksum DIR/NAME.sql.gz.sha256.
# Arguments: DIR NAME LEVEL DUMP_ARGV… (the mysqldump command; LEVEL: gzip's).
# If the snapshot exists and matches its .sha256, report it and stop (a retry after success must
# not replace the snapshot with a later state). Otherwise dump into a temporary file in the same
# directory, fsync, record its checksum, and rename both into place: a reader sees the whole
# snapshot or none. Prints `existing|created SHA256 BYTES`.
set -euo pipefail
dir=$1 name=$2 level=$3; shift 3
file=$name.sql.gz
if [ -f "$dir/$file" ] && [ -f "$dir/$file.sha256" ] && (cd "$dir" && sha256sum --status -c -- "$file.sha256"); then
  echo "existing $(cut -d' ' -f1 "$dir/$file.sha256") $(stat -c %s "$dir/$file")"
  exit 0
fi
# shellcheck disable=SC2174  # SNAPSHOT_ROOT above it stays as it is (made with the umask)
mkdir -p -m 700 "$dir"
tmp=$(mktemp "$dir/.$file.XXXXXX")
trap 'rm -f "$tmp" "$tmp.sha256"' EXIT
"$@" | gzip -c "-$level" >"$tmp"
sum=$(sha256sum <"$tmp" | cut -d' ' -f1)
printf '%s  %s\n' "$sum" "$file" >"$tmp.sha256"
sync -- "$tmp" "$tmp.sha256"
mv -f -- "$tmp" "$dir/$file"
mv -f -- "$tmp.sha256" "$dir/$file.sha256"
sync -- "$dir"
echo "created $sum $(stat -c %s "$dir/$file")"
