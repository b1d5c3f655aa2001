#!/bin/bash
# shellcheck source-path=SCRIPTDIR
# On the storage host: check ARCHIVE's checksum against SHA (exit 4 if it differs, 3 if there is no
# ARCHIVE), extract it into a fresh SCRATCH, print `DIGEST SHA FILES BYTES` (tree-digest.sh) of
# SCRATCH/BASE, remove SCRATCH (also when it fails). Arguments: ARCHIVE SHA SCRATCH BASE.

set -euo pipefail
# BackupExit in commands.ts (which checks these when it loads this file)
missing=3 corrupt=4
archive=$1 sha=$2 scratch=$3 base=$4
# shellcheck source=tree-digest.sh
. "$(dirname -- "$0")/tree-digest.sh"
[ -f "$archive" ] || { echo "qm: no $archive" >&2; exit "$missing"; }
actual=$(sha256sum <"$archive"); actual=${actual%% *}
[ "$actual" = "$sha" ] || { echo "qm: $archive has checksum $actual, the manifest says $sha" >&2; exit "$corrupt"; }
trap 'rm -rf -- "$scratch"' EXIT
rm -rf -- "$scratch"
# shellcheck disable=SC2174  # only SCRATCH itself is private; the scratch root above it is left as it is
mkdir -p -m 0700 -- "$scratch"
tar -C "$scratch" --numeric-owner -xzf "$archive"
[ -d "$scratch/$base" ] || { echo "qm: $archive does not hold $base/" >&2; exit "$corrupt"; }
echo "DIGEST $(digest "$scratch/$base")"
