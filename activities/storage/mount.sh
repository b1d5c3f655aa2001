#!/bin/sh
# On an app host: the site's files mounted at MOUNT from SOURCE (USER@HOST:PATH, as the mount
# table names it) by the sshfs command SSHFS_ARGV… "Mounted" is `mountpoint -q` (which stats the
# path, so it is also "alive"); the mount table says from where. Outcomes:
# - mounted alive from SOURCE: prints `unchanged`;
# - mounted from something else: exit 75 (never replaced silently);
# - in the mount table but not answering (its sshfs died): detached lazily, mounted again
#   (`remounted`);
# - not mounted: the directory must be empty (files written there would be hidden by the mount
#   and lost to the other app hosts: exit 76, unless ASIDE is given: then the directory is moved
#   to ASIDE/files-<time>, where containers still bound to it keep writing, and `set aside <path>`
#   is printed), then sshfs, in a session of its own (it outlives this command) with its output
#   in LOG, and `mounted`.
# Arguments: MOUNT SOURCE LOG ASIDE SSHFS_ARGV… (ASIDE empty: refuse a directory that holds files)

set -eu
mp=$1 source=$2 log=$3 aside=$4
shift 4
# StorageExit in commands.ts (which checks these when it loads this file)
other_mount=75 not_empty=76
fm=$(command -v fusermount3 || command -v fusermount || echo fusermount)
cur=$(QM_MP="$mp" awk '$5 == ENVIRON["QM_MP"] { for (i = 7; i < NF; i++) if ($i == "-") { c = $(i + 1) " " $(i + 2); break } } END { print c }' /proc/self/mountinfo)
action=mounted
if mountpoint -q -- "$mp"; then
  if [ "$cur" = "fuse.sshfs $source" ]; then echo unchanged; exit 0; fi
  echo "$mp is a mount of ${cur:-something else}, not of $source: unmount it first" >&2
  exit "$other_mount"
elif [ -n "$cur" ]; then
  "$fm" -u -z -- "$mp" 2>/dev/null || umount -l -- "$mp"
  action=remounted
fi
mkdir -p -- "$mp"
if [ -n "$(ls -A -- "$mp")" ]; then
  if [ -z "$aside" ]; then
    echo "$mp holds files while not mounted (written on this host only?): move them to the storage host, then mount" >&2
    exit "$not_empty"
  fi
  (umask 077 && mkdir -p -- "$aside")
  dest="$aside/files-$(date -u +%Y%m%dT%H%M%SZ)-$$"
  mv -T -- "$mp" "$dest"
  mkdir -p -- "$mp"
  echo "set aside $dest"
fi
mkdir -p -- "$(dirname -- "$log")"
if ! setsid "$@" </dev/null >/dev/null 2>"$log"; then cat -- "$log" >&2; exit 1; fi
if ! mountpoint -q -- "$mp"; then echo "sshfs succeeded but $mp is not mounted" >&2; cat -- "$log" >&2; exit 1; fi
echo "$action"
