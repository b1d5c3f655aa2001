# shellcheck shell=bash
# A fragment, not a script: the function `digest DIR`, included (as text, by
# activities/ssh/remoteScript.ts) where verify-files.sh, restore-files.sh and commands.ts's
# DIGEST_SCRIPT name it. It prints `SHA FILES BYTES` of the tree DIR: SHA a digest of every
# entry's type, mode, owner, path (and size and link target, except for directories, whose sizes
# depend on their history) and every regular file's content hash, sorted bytewise; FILES the
# regular files, BYTES their size (hard links once). Two trees with the same digest hold the same
# files with the same contents and modes.

digest() (
  cd -- "$1" || exit
  { find . -mindepth 1 -type d -printf 'd %m %U:%G %p\n'
    find . -mindepth 1 ! -type d -printf '%y %m %U:%G %s %p -> %l\n'
    find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum
  } | LC_ALL=C sort | sha256sum | cut -d' ' -f1 | tr '\n' ' '
  find . -type f | wc -l | tr '\n' ' '
  find . -type f -printf '%i %s\n' | LC_ALL=C sort -u -k1,1 | awk '{ s += $2 } END { print s + 0 }'
)
