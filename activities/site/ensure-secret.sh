#!/bin/bash
# On the DB host: keep the password on stdin as FILE unless FILE already holds one, then print
# FILE. Arguments: ROOT DIR FILE (the secrets root, the site's directory in it, the password file).
# Created atomically and only if absent: written to a temporary file (0600 from the start, by
# umask), flushed, then hard-linked into place, which fails if the file appeared meanwhile; so two
# runs at once still agree on one password, and a crash leaves either no file or a whole one. The
# directories are 0700; the parent of ROOT is left as it is (created 0755 if missing).
set -eu
root=$1 dir=$2 file=$3
umask 022
mkdir -p -- "$root"
chmod 0700 -- "$root"
umask 077
mkdir -p -- "$dir"
chmod 0700 -- "$dir"
if [ -e "$file" ]; then
  cat >/dev/null
else
  tmp="$file.tmp.$$"
  trap 'rm -f -- "$tmp"' EXIT
  cat >"$tmp"
  sync -- "$tmp"
  ln -- "$tmp" "$file" 2>/dev/null || [ -e "$file" ]
  sync -- "$dir"
fi
chmod 0600 -- "$file"
cat -- "$file"
