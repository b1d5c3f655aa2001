#!/bin/bash
# On the storage host: archive (if ARCHIVE is not empty) and remove a site's files directory.
# Arguments: DIR ARCHIVE KEEP (KEEP not empty: archive only, keep the files).
# The archive is made only if there is none of that name yet: written to a temporary file,
# flushed, then linked into place (create-if-absent), so a retry after it was made (and the files
# perhaps half removed) keeps the whole archive instead of overwriting it with what is left.
# Archives are root-only. Prints `archive created|existing|none`, then `sha <hex> <bytes>` if there
# is an archive, then `files removed|kept|absent`.

set -euo pipefail
dir=$1 archive=${2-} keep=${3-}
if [ -n "$archive" ]; then
  if [ -e "$archive" ]; then
    echo "archive existing"
  elif [ -d "$dir" ]; then
    adir=$(dirname -- "$archive")
    (umask 022; mkdir -p -- "$(dirname -- "$adir")")
    # shellcheck disable=SC2174  # its parent was made just above, with its own mode
    mkdir -p -m 0700 -- "$adir"
    tmp="$archive.tmp.$$"
    trap 'rm -f -- "$tmp"' EXIT
    # exit 1 is "a file changed as we read it" (a live site): the archive is still whole
    (umask 077; tar -C "$(dirname -- "$dir")" --numeric-owner --warning=no-file-changed       -czf "$tmp" -- "$(basename -- "$dir")") || [ $? = 1 ]
    sync -- "$tmp"
    ln -- "$tmp" "$archive"
    sync -- "$adir"
    echo "archive created"
  else
    echo "archive none"
  fi
  if [ -e "$archive" ]; then
    sum=$(sha256sum <"$archive")
    echo "sha ${sum%% *} $(stat -c %s -- "$archive")"
  fi
fi
if [ -n "$keep" ]; then [ -d "$dir" ] && echo "files kept" || echo "files absent"
elif [ -d "$dir" ]; then rm -rf -- "$dir"; echo "files removed"
else echo "files absent"; fi
