#!/bin/bash
# shellcheck source-path=SCRIPTDIR
# On the storage host: make FILES exactly the tree in ARCHIVE. The checksum is checked against SHA
# first (exit 4 if it differs, 3 if there is no ARCHIVE: nothing touched), the archive extracted
# into STAGING beside FILES, then FILES swapped for it (two renames; the old tree removed after).
# Safe twice: a run cut short anywhere is finished by the next, which ends with the same tree.
# Arguments: ARCHIVE SHA FILES STAGING. Prints `DIGEST SHA FILES BYTES` (tree-digest.sh) of the
# restored FILES.

set -euo pipefail
# BackupExit in commands.ts (which checks these when it loads this file)
missing=3 corrupt=4
archive=$1 sha=$2 files=$3 staging=$4
# shellcheck source=tree-digest.sh
. "$(dirname -- "$0")/tree-digest.sh"
base=$(basename -- "$files")
[ -f "$archive" ] || { echo "qm: no $archive" >&2; exit "$missing"; }
actual=$(sha256sum <"$archive"); actual=${actual%% *}
[ "$actual" = "$sha" ] || { echo "qm: $archive has checksum $actual, the manifest says $sha" >&2; exit "$corrupt"; }
rm -rf -- "$staging"
# shellcheck disable=SC2174  # only STAGING itself is private; FILES_ROOT above it is left as it is
mkdir -p -m 0700 -- "$staging"
tar -C "$staging" --numeric-owner -xzf "$archive"
[ -d "$staging/$base" ] || { echo "qm: $archive does not hold $base/" >&2; exit "$corrupt"; }
if [ -e "$files" ]; then rm -rf -- "$staging/old"; mv -- "$files" "$staging/old"; fi
mv -- "$staging/$base" "$files"
rm -rf -- "$staging"
sync -- "$(dirname -- "$files")"
echo "DIGEST $(digest "$files")"
