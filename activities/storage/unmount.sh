#!/bin/sh
# On an app host: unmount the site's files at MOUNT (a dead mount too: the mount table decides,
# not a stat), lazily if it is busy; then remove the empty mount point, the site directory SITEDIR
# and the LOG. Arguments: MOUNT SITEDIR LOG. Prints `unmounted`, `lazy` or `absent`, then
# `dir removed` or `dir kept` (not empty: files written while it was not mounted).

set -eu
mp=$1 sitedir=$2 log=$3
fm=$(command -v fusermount3 || command -v fusermount || echo fusermount)
mounted() { QM_MP="$mp" awk '$5 == ENVIRON["QM_MP"] { found = 1 } END { exit !found }' /proc/self/mountinfo; }
state=absent
if mounted; then
  if "$fm" -u -- "$mp" 2>/dev/null || umount -- "$mp" 2>/dev/null; then state=unmounted
  else "$fm" -u -z -- "$mp" 2>/dev/null || umount -l -- "$mp"; state=lazy; fi
  # a mount stacked on another: take them all
  while mounted; do "$fm" -u -z -- "$mp" 2>/dev/null || umount -l -- "$mp"; done
fi
echo "$state"
rm -f -- "$log"
if [ ! -e "$mp" ] || rmdir -- "$mp" 2>/dev/null; then
  rmdir -- "$sitedir" 2>/dev/null || true
  echo "dir removed"
else
  echo "dir kept"
fi
