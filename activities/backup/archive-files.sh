#!/bin/bash
# On the storage host: a tar.gz of SRC (as `<basename>/…`, numeric owners) made into a temporary
# file in DIR, hashed as it is written, flushed, renamed to NAME. tar's exit 1 ("a file changed as
# we read it": the site is live) still leaves a whole archive. Its verbose index counts what went
# in. Arguments: SRC DIR NAME. Prints `SHA BYTES ENTRIES FILES FILEBYTES`; exits 3 if SRC is absent.

set -euo pipefail
# BackupExit in commands.ts (which checks these when it loads this file)
missing=3
src=$1 dir=$2 name=$3
[ -d "$src" ] || { echo "qm: no $src" >&2; exit "$missing"; }
# /srv/qm above the backup root stays 0755 whoever makes it first (nginx reads /srv/qm/proxy on a host that also keeps backups)
root=${dir%/backups/*}
[ "$root" = "$dir" ] || (umask 022; mkdir -p -- "$root")
umask 077
mkdir -p -- "$dir"
tmp=$(mktemp -- "$dir/.$name.partial.XXXXXX")
idx=$(mktemp -- "$dir/.$name.index.XXXXXX")
trap 'rm -f -- "$tmp" "$idx"' EXIT
trap 'exit 143' TERM INT HUP
sum=$( { tar -C "$(dirname -- "$src")" --numeric-owner --warning=no-file-changed -cvvzf - \
          --index-file="$idx" -- "$(basename -- "$src")" || [ $? = 1 ]; } | tee -- "$tmp" | sha256sum)
sync -- "$tmp"
counts=$(awk '{ n++ } /^[-h]/ { f++ } /^-/ { b += $3 } END { print n + 0, f + 0, b + 0 }' "$idx")
mv -f -- "$tmp" "$dir/$name"
for f in "$dir/.$name.partial."*; do [ -e "$f" ] && rm -f -- "$f"; done
sync -- "$dir"
echo "${sum%% *} $(stat -c %s -- "$dir/$name") $counts"
