#!/bin/bash
# On an app host: its storage KEY, generated (ed25519, no passphrase, 0600) if absent, under a lock
# so two mounts at once make one key; a missing .pub is derived from the private key, which is
# never replaced once it exists. Arguments: KEY COMMENT. Prints `created` or `existing`, then the
# public key line.

set -eu
key=$1 comment=$2
umask 077
mkdir -p -- "$(dirname -- "$key")"
exec 9>"$key.qm-lock"
flock -w 30 9
state=existing
if [ ! -s "$key" ]; then
  rm -f -- "$key" "$key.pub"
  ssh-keygen -q -t ed25519 -N '' -C "$comment" -f "$key" </dev/null >/dev/null
  state=created
elif [ ! -s "$key.pub" ]; then
  ssh-keygen -y -f "$key" >"$key.pub.qm-tmp"
  mv -f -- "$key.pub.qm-tmp" "$key.pub"
fi
echo "$state"
cat -- "$key.pub"
