#!/bin/sh
# On the Git host: a bare repository at REPO if there is none, made aside and renamed into place
# (a repository that exists is complete; if another run got there first, it wins), with OWNER (if
# not empty: the site whose provisioning made it) as its `qm.createdBy`, which removeRepoArgv's
# script checks before it removes anything. Arguments: REPO OWNER. Prints `created` or `existing`;
# exits 3 if REPO is something else.
set -eu
repo=$1 owner=$2
is_repo() { [ -f "$repo/HEAD" ] && [ -d "$repo/objects" ]; }
if is_repo; then echo existing; exit 0; fi
umask 022
mkdir -p -- "$(dirname -- "$repo")"
# a directory left by an older, interrupted init: empty, it goes; anything else is not ours to touch
if [ -d "$repo" ] && [ -z "$(ls -A -- "$repo")" ]; then rmdir -- "$repo" 2>/dev/null || true; fi
if [ -e "$repo" ] && ! is_repo; then echo "$repo exists and is not a Git repository" >&2; exit 3; fi
tmp="$repo.qm-tmp.$$"
trap 'rm -rf -- "$tmp"' EXIT
git init --quiet --bare -- "$tmp"
if [ -n "$owner" ]; then git -C "$tmp" config qm.createdBy "$owner"; fi
# rename into place: a repository that exists is complete; if another run got there first, it wins
if mv -T -- "$tmp" "$repo" 2>/dev/null; then echo created; exit 0; fi
if is_repo; then echo existing; exit 0; fi
echo "could not create $repo" >&2
exit 3
