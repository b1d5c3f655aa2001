#!/bin/sh
# On an app host: how the sites' shared files look, from the host and from inside the containers.
# Arguments, any number of each, in any order:
#   M MOUNT        prints `M <MOUNT> yes` when MOUNT is an sshfs mount that answers, else `… no`
#                  (a dead sshfs fails `mountpoint`'s stat, so it is `no`);
#   P PID TARGET   prints `P <PID> <TARGET> <fstype>`: the file system the process PID (a container's
#                  first process) sees at TARGET, `-` when nothing is mounted there or PID is gone.
# A container started while its host's mount was missing sees the host's empty directory at TARGET
# (ext4, …), not fuse.sshfs: it must restart to see the files every app server shares.
# Read-only.
set -eu
fstype_at() { # fstype_at MOUNTINFO TARGET: the file system of the last mount at TARGET, or -
  if [ -r "$1" ]; then
    QM_T="$2" awk '$5 == ENVIRON["QM_T"] { for (i = 7; i < NF; i++) if ($i == "-") { c = $(i + 1); break } } END { print (c == "" ? "-" : c) }' "$1"
  else
    echo -
  fi
}
while [ "$#" -gt 0 ]; do
  case "$1" in
    M)
      if mountpoint -q -- "$2" 2>/dev/null && [ "$(fstype_at /proc/self/mountinfo "$2")" = fuse.sshfs ]; then
        echo "M $2 yes"
      else
        echo "M $2 no"
      fi
      shift 2
      ;;
    P)
      echo "P $2 $3 $(fstype_at "/proc/$2/mountinfo" "$3")"
      shift 3
      ;;
    *)
      echo "unknown argument: $1" >&2
      exit 2
      ;;
  esac
done
