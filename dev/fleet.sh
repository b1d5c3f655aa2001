#!/usr/bin/env bash
# Quartermaster's development fleet (the test bed): real hosts on one machine (needs root).
#
# Each host hN has its own network namespace (address $SUBNET.(10+N)), its own mount and UTS
# namespaces (private /run, /srv, /root, /etc/docker; hostname hostN), and runs its own sshd
# (key-only), its own dockerd (socket /run/docker.sock, reachable only through SSH) and its own
# mariadbd (socket /run/mysqld/mysqld.sock). The hosts hang off a bridge that lives in a "switch"
# namespace, so a dockerd's FORWARD policy in the root namespace never drops host-to-host traffic.
#
#   fleet.sh up            bring the fleet up (idempotent: starts only what is missing)
#   fleet.sh down          stop everything by PID and delete the namespaces (idempotent)
#   fleet.sh status        one line per host and daemon
#   fleet.sh cut N|heal N  take host N off the network / put it back
#   fleet.sh stop N sshd|docker|mariadb     stop one daemon of host N (sshd: its sessions too)
#   fleet.sh start N sshd|docker|mariadb    start it again
#   fleet.sh reboot N      stop and start sshd and dockerd of host N (what a patch reboot looks like)
#   fleet.sh exec N CMD..  run a command inside host N's namespaces
#   fleet.sh rekey N       give host N a new host key (sshd restarts; the inventory keeps the old pin)
#   fleet.sh restore-key N put back the host key host N had before 'rekey' (sshd restarts)
#   fleet.sh layout NAME ROLES..  write inventory-NAME.json: the hosts with other roles, one word
#                          per host ("proxy,db app,cache -" ...); makes hosts past the bed's own
#   fleet.sh php-image N.. load the PHP site's image into hosts N.. (built once per machine)
#
# Settings (environment): QM_TESTBED_DIR (/tmp/qm-testbed), QM_TESTBED_HOSTS (3),
# QM_TESTBED_SUBNET (10.77.0, a /24 of this machine's own), QM_TESTBED_PREFIX (qm: names of
# namespaces, links and cgroups), QM_IMAGE_CACHE (/var/cache/quartermaster/images: images built
# once per machine). The bed writes $QM_TESTBED_DIR/inventory.json (the fleet inventory the
# platform reads), the client key and known_hosts under $QM_TESTBED_DIR/keys, and
# $QM_TESTBED_DIR/fleet.sh, a link to this script: how a worker started for the bed reboots one of
# its hosts (activities/host/reboot.ts) without knowing where the project's dev/ is.
set -euo pipefail

DIR=${QM_TESTBED_DIR:-/tmp/qm-testbed}
N=${QM_TESTBED_HOSTS:-3}
SUBNET=${QM_TESTBED_SUBNET:-10.77.0}
PFX=${QM_TESTBED_PREFIX:-qm}
SW=$PFX-sw

log() { printf '[fleet] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

addr() { echo "$SUBNET.$((10 + $1))"; }
hdir() { echo "$DIR/hosts/h$1"; }
# alive PIDFILE: the process it names runs and is the daemon the file belongs to (after a machine
# restart a stale file's PID may belong to anything).
alive() {
  local pid comm
  pid=$(cat "$1" 2>/dev/null) && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
  case "$1" in
    */holder.pid) [ "$comm" = sleep ] ;;
    */sshd.pid) [ "$comm" = sshd ] ;;
    */docker/pid) [ "$comm" = dockerd ] ;;
    */mysqld.pid) [ "$comm" = mariadbd ] ;;
    *) true ;;
  esac
}
holder() { cat "$(hdir "$1")/holder.pid"; }
in_host() { local i=$1; shift; nsenter -t "$(holder "$i")" -n -m -u "$@"; }
wait_for() { # wait_for TRIES CMD...: poll every 0.1 s
  local n=$1; shift
  for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}
wait_gone() { for _ in $(seq 150); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done; return 1; }
# shellcheck disable=SC2015  # die on any failed test, which is what A && B || C does here
check_host() { [[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -ge 1 ] && [ "$1" -le "$(hosts_made)" ] || die "no host '$1' (1..$(hosts_made))"; }

require() {
  [ "$(id -u)" = 0 ] || die "the test bed needs root (network and mount namespaces)"
  local missing=()
  for c in ip nsenter unshare sshd ssh-keygen dockerd docker mariadbd mariadb-install-db busybox flock; do
    command -v "$c" >/dev/null 2>&1 || [ -x "/usr/sbin/$c" ] || missing+=("$c")
  done
  [ ${#missing[@]} = 0 ] || die "missing commands: ${missing[*]} (install: apt-get install openssh-server docker.io mariadb-server iproute2 busybox-static util-linux)"
}

# ---------------------------------------------------------------- network
net_up() {
  ip netns list | grep -qw "$SW" && return 0
  ip netns add "$SW"
  ip -n "$SW" link set lo up
  ip -n "$SW" link add br0 type bridge
  ip -n "$SW" link set br0 up
  ip link add "$PFX-root" type veth peer name sw-root netns "$SW"
  ip -n "$SW" link set sw-root master br0 up
  ip addr add "$SUBNET.1/24" dev "$PFX-root"
  ip link set "$PFX-root" up
}

host_net_up() {
  local i=$1 ns=$PFX-h$1
  ip netns list | grep -qw "$ns" && return 0
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  ip link add "$PFX-sw$i" type veth peer name eth0 netns "$ns"
  ip link set "$PFX-sw$i" netns "$SW"
  ip -n "$SW" link set "$PFX-sw$i" master br0 up
  ip -n "$ns" addr add "$(addr "$i")/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" route add default via "$SUBNET.1"
}

# ---------------------------------------------------------------- namespaces holder
host_holder_up() {
  local i=$1 H; H=$(hdir "$1")
  alive "$H/holder.pid" && return 0
  rm -f "$H/run/.ready"
  mkdir -p "$H/run/sshd" "$H/run/mysqld" "$H/srv" "$H/etc/docker" "$H/root" "$H/logs"
  chown mysql:mysql "$H/run/mysqld"
  # The holder owns the host's mount and UTS namespaces; every daemon enters them with nsenter.
  # dockerd needs a sysfs of this netns and the cgroup v1 controllers mounted ("Devices cgroup
  # isn't mounted" otherwise); /root is a clean home (the machine's .bashrc is slow).
  nsenter --net="/run/netns/$PFX-h$i" unshare --mount --uts --propagation private sh -c "
    set -e
    hostname host$i
    mount -t sysfs sysfs /sys
    mount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup
    for c in cpu cpuacct cpuset memory devices freezer blkio pids; do
      mkdir /sys/fs/cgroup/\$c; mount -t cgroup -o \$c cgroup /sys/fs/cgroup/\$c
    done
    mkdir /sys/fs/cgroup/systemd; mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd
    mkdir /sys/fs/cgroup/unified; mount -t cgroup2 cgroup2 /sys/fs/cgroup/unified
    mount --bind '$H/run' /run
    mount --bind '$H/srv' /srv
    mount --bind '$H/root' /root
    mount --bind '$H/etc/docker' /etc/docker
    touch /run/.ready
    exec sleep infinity" </dev/null >"$H/logs/holder.log" 2>&1 9>&- &
  echo $! >"$H/holder.pid"
  wait_for 100 test -e "$H/run/.ready" || die "host$i: namespaces did not come up (see $H/logs/holder.log)"
}

# ---------------------------------------------------------------- sshd
sshd_config() {
  local i=$1 H; H=$(hdir "$1")
  [ -f "$H/etc/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -C "host$i" -f "$H/etc/ssh_host_ed25519_key"
  # The orchestrator's key is authorized on every host through one shared file; each host's private
  # /root/.ssh/authorized_keys is read too (a storage host authorizes the app hosts' sshfs keys there).
  cat >"$H/etc/sshd_config" <<EOC
Port 22
ListenAddress $(addr "$i")
HostKey $H/etc/ssh_host_ed25519_key
PidFile /run/sshd.pid
AuthorizedKeysFile $DIR/keys/authorized_keys .ssh/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
MaxStartups 100:30:200
MaxSessions 200
AllowStreamLocalForwarding yes
AllowTcpForwarding yes
Subsystem sftp internal-sftp
LogLevel VERBOSE
EOC
}

sshd_start() {
  local i=$1 H; H=$(hdir "$1")
  alive "$H/run/sshd.pid" && return 0
  sshd_config "$i"
  in_host "$i" /usr/sbin/sshd -f "$H/etc/sshd_config" -E "$H/logs/sshd.log" 9>&-
  wait_for 100 alive "$H/run/sshd.pid" || die "host$i: sshd did not start (see $H/logs/sshd.log)"
}

# Stop the listener and every session it forked (what a crash or a restart of sshd looks like to a client).
sshd_stop() {
  local i=$1 H mns pids=(); H=$(hdir "$1")
  alive "$H/holder.pid" || return 0
  mns=$(readlink "/proc/$(holder "$i")/ns/mnt")
  for d in /proc/[0-9]*; do
    [ "$(cat "$d/comm" 2>/dev/null)" = sshd ] && [ "$(readlink "$d/ns/mnt" 2>/dev/null)" = "$mns" ] && pids+=("${d#/proc/}")
  done
  [ ${#pids[@]} = 0 ] || kill -KILL "${pids[@]}" 2>/dev/null || true
  for p in "${pids[@]}"; do wait_gone "$p" || true; done
  rm -f "$H/run/sshd.pid"
}

# A changed host key (a reinstalled host, or an impostor): the original is kept for restore_key.
rekey() {
  local i=$1 H; H=$(hdir "$1")
  if [ ! -f "$H/etc/ssh_host_ed25519_key.orig" ]; then
    cp -p "$H/etc/ssh_host_ed25519_key" "$H/etc/ssh_host_ed25519_key.orig"
    cp -p "$H/etc/ssh_host_ed25519_key.pub" "$H/etc/ssh_host_ed25519_key.pub.orig"
  fi
  rm -f "$H/etc/ssh_host_ed25519_key" "$H/etc/ssh_host_ed25519_key.pub"
  ssh-keygen -q -t ed25519 -N '' -C "host$i-rekeyed" -f "$H/etc/ssh_host_ed25519_key"
  sshd_stop "$i"; sshd_start "$i"
}

restore_key() {
  local i=$1 H; H=$(hdir "$1")
  [ -f "$H/etc/ssh_host_ed25519_key.orig" ] || return 0
  mv "$H/etc/ssh_host_ed25519_key.orig" "$H/etc/ssh_host_ed25519_key"
  mv "$H/etc/ssh_host_ed25519_key.pub.orig" "$H/etc/ssh_host_ed25519_key.pub"
  sshd_stop "$i"; sshd_start "$i"
}

# ---------------------------------------------------------------- dockerd
docker_start() {
  local i=$1 H; H=$(hdir "$1")
  alive "$H/docker/pid" && return 0
  mkdir -p "$H/docker/data" "$H/docker/exec"
  echo '{}' >"$H/docker/daemon.json"
  in_host "$i" dockerd --config-file "$H/docker/daemon.json" \
    --data-root "$H/docker/data" --exec-root "$H/docker/exec" --pidfile "$H/docker/pid" \
    -H unix:///run/docker.sock --cgroup-parent "/$PFX-h$i" --shutdown-timeout 3 \
    </dev/null >>"$H/logs/dockerd.log" 2>&1 9>&- &
  wait_for 300 docker -H "unix://$H/run/docker.sock" version || die "host$i: dockerd did not answer (see $H/logs/dockerd.log)"
}

docker_stop() {
  local H p; H=$(hdir "$1")
  alive "$H/docker/pid" || return 0
  p=$(cat "$H/docker/pid"); kill -TERM "$p"; wait_gone "$p" || kill -KILL "$p" 2>/dev/null || true
}

# ---------------------------------------------------------------- mariadbd
# One initialised data directory, copied for each host (install-db takes seconds; a copy does not).
mariadb_template() {
  [ -d "$DIR/mysql-template/mysql" ] && return 0
  rm -rf "$DIR/mysql-template"; mkdir -p "$DIR/mysql-template"; chown mysql:mysql "$DIR/mysql-template"
  mariadb-install-db --no-defaults --user=mysql --datadir="$DIR/mysql-template" --skip-test-db \
    --auth-root-authentication-method=socket >"$DIR/logs/mariadb-install.log" 2>&1
}

mariadb_start() {
  local i=$1 H; H=$(hdir "$1")
  alive "$H/run/mysqld/mysqld.pid" && return 0
  [ -d "$H/mysql/mysql" ] || { rm -rf "$H/mysql"; cp -a "$DIR/mysql-template" "$H/mysql"; }
  chown mysql:mysql "$H/mysql" "$H/run/mysqld"
  cat >"$H/etc/my.cnf" <<EOC
[mysqld]
user=mysql
datadir=$H/mysql
socket=/run/mysqld/mysqld.sock
pid-file=/run/mysqld/mysqld.pid
bind-address=$(addr "$i")
port=3306
log-error=$H/mysql/error.log
innodb_buffer_pool_size=128M
innodb_log_file_size=64M
innodb_flush_log_at_trx_commit=2
skip-name-resolve
EOC
  in_host "$i" mariadbd --defaults-file="$H/etc/my.cnf" </dev/null >/dev/null 2>&1 9>&- &
  wait_for 300 in_host "$i" mariadb-admin --socket=/run/mysqld/mysqld.sock ping ||
    die "host$i: mariadbd did not start (see $H/mysql/error.log)"
}

mariadb_stop() {
  local H p; H=$(hdir "$1")
  alive "$H/run/mysqld/mysqld.pid" || return 0
  p=$(cat "$H/run/mysqld/mysqld.pid"); kill -TERM "$p"; wait_gone "$p" || kill -KILL "$p" 2>/dev/null || true
}

# ---------------------------------------------------------------- images
# No registry is reachable: the app image is a busybox-static rootfs, imported on host1's engine,
# saved once, and loaded into each engine.
images_load() {
  local i=$1 H sock; H=$(hdir "$1"); sock="unix://$H/run/docker.sock"
  docker -H "$sock" image inspect local/busybox:1 >/dev/null 2>&1 && return 0
  if [ ! -f "$DIR/images/busybox.tar" ]; then
    local root="$DIR/images/busybox-root"
    rm -rf "$root"; mkdir -p "$root/bin" "$root/www" "$root/tmp" "$root/etc"
    cp "$(command -v busybox)" "$root/bin/busybox"
    for a in sh ls cat echo httpd sleep nc wget date mkdir rm cp mv tar gzip sha256sum env true false kill ps grep sed test; do
      ln -sf busybox "$root/bin/$a"
    done
    echo ok >"$root/www/index.html"
    echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
    tar -C "$root" -c . | docker -H "$sock" import -c 'CMD ["/bin/sh"]' - local/busybox:1 >/dev/null
    docker -H "$sock" save -o "$DIR/images/busybox.tar.tmp" local/busybox:1
    mv "$DIR/images/busybox.tar.tmp" "$DIR/images/busybox.tar"
    return 0
  fi
  docker -H "$sock" load -q -i "$DIR/images/busybox.tar" >/dev/null
}

# The PHP site's image (profiles/test-php.yaml): Debian's Apache, mod_php and php-mysql, installed by
# debootstrap from Debian's mirror, with the site's code (profiles/test-php/) baked in. Built once
# per machine: the root file system is cached in $CACHE keyed by the package list, the image (root
# plus code) keyed by that and the code, so a new bed only loads it; a changed code only rebuilds
# the image from the cached root (seconds), a changed package list the root (a minute or two).
CACHE=${QM_IMAGE_CACHE:-/var/cache/quartermaster/images}
PHP_SUITE=bookworm
PHP_PKGS=apache2,libapache2-mod-php,php-mysql,php-cli
PHP_IMAGE=local/php-site:1
SRC=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)

php_keys() { # prints ROOT_KEY IMAGE_KEY
  local root code
  root=$(printf '%s %s recipe-1\n' "$PHP_SUITE" "$PHP_PKGS" | sha256sum | cut -c1-16)
  code=$(cd "$SRC/profiles/test-php" && find . -type f | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-16)
  echo "$root $(printf '%s %s\n' "$root" "$code" | sha256sum | cut -c1-16)"
}

# php_image_build HOST: make $CACHE/php-site-<key>.tar (building what is missing on HOST's engine).
# Under a lock on the cache: beds of the same machine share it, and the first builds.
php_image_build() {
  local i=$1 sock rootkey key root tar tmp
  sock="unix://$(hdir "$i")/run/docker.sock"
  read -r rootkey key < <(php_keys)
  tar=$CACHE/php-site-$key.tar
  [ -f "$tar" ] && return 0
  mkdir -p "$CACHE"
  exec 8>"$CACHE/.php.lock"; flock -w 900 8 || die "another build holds $CACHE/.php.lock"
  if [ ! -f "$tar" ]; then
    root=$CACHE/php-root-$rootkey.tar
    if [ ! -f "$root" ]; then
      command -v debootstrap >/dev/null || die "debootstrap is missing (apt-get install debootstrap; .ci/setup installs it)"
      log "building the PHP site's root file system ($PHP_PKGS, Debian $PHP_SUITE): once per machine"
      tmp=$(mktemp -d "$CACHE/.root.XXXXXX")
      debootstrap --variant=minbase --include="$PHP_PKGS" "$PHP_SUITE" "$tmp/root" \
        "${QM_DEBIAN_MIRROR:-http://deb.debian.org/debian}" >"$CACHE/debootstrap.log" 2>&1 ||
        { rm -rf "$tmp"; die "debootstrap failed (see $CACHE/debootstrap.log)"; }
      rm -rf "$tmp/root/var/cache/apt/archives/"*.deb "$tmp/root/var/lib/apt/lists/"* "$tmp/root/usr/share/doc" "$tmp/root/usr/share/man"
      tar -C "$tmp/root" -cf "$tmp/root.tar" . || { rm -rf "$tmp"; die "cannot write the root's tarball in $CACHE"; }
      mv "$tmp/root.tar" "$root"
      rm -rf "$tmp"
    fi
    log "building $PHP_IMAGE from the cached root and profiles/test-php"
    tmp=$(mktemp -d "$CACHE/.image.XXXXXX")
    { mkdir "$tmp/root" && tar -C "$tmp/root" -xf "$root" && bash "$SRC/profiles/test-php/install.sh" "$tmp/root" &&
      tar -C "$tmp/root" -c . | docker -H "$sock" import -c 'CMD ["/usr/local/bin/site-start"]' \
        -c "LABEL qm.image.key=$key" - "$PHP_IMAGE" >/dev/null &&
      docker -H "$sock" save -o "$tmp/image.tar" "$PHP_IMAGE"; } ||
      { rm -rf "$tmp"; die "building $PHP_IMAGE failed (profiles/test-php/install.sh, or host$i's engine)"; }
    mv "$tmp/image.tar" "$tar"
    rm -rf "$tmp"
    # the images of other code than this one's are not needed any more
    find "$CACHE" -maxdepth 1 -name 'php-site-*.tar' ! -name "php-site-$key.tar" -mmin +60 -delete
  fi
  exec 8>&-
}

# php_image_load N: host N's engine has the PHP site's image of today's packages and code.
php_image_load() {
  local i=$1 sock key
  sock="unix://$(hdir "$i")/run/docker.sock"
  read -r _ key < <(php_keys)
  have() { [ "$(docker -H "$sock" image inspect -f '{{index .Config.Labels "qm.image.key"}}' "$PHP_IMAGE" 2>/dev/null)" = "$key" ]; }
  have && return 0
  php_image_build "$i"
  have || docker -H "$sock" load -q -i "$CACHE/php-site-$key.tar" >/dev/null
}

# ---------------------------------------------------------------- inventory
# The roles of host N in the bed's own inventory: host1 fronts the fleet (proxy, git, storage), the
# others run the sites' app containers ('layout' writes other inventories of the same hosts).
default_roles() { if [ "$1" = 1 ]; then echo proxy,db,storage,git; else echo app,cache,db; fi; }

# inventory_write FILE ROLES...: the inventory of the hosts whose ROLES word is not '-' (word N:
# host N's roles, comma-separated).
inventory_write() {
  local file=$1 i=0 r roles first=1; shift
  {
    echo '{'
    # The hosts share this machine's root filesystem (only /run, /srv, /root and /etc/docker are
    # their own), so a real patch (apt-get upgrade) would upgrade the machine itself: a patch roll
    # that names no patchCommand runs this harmless one here (docs/patch-rolls.md).
    echo '  "defaults": { "user": "root", "port": 22, "dockerSocket": "/run/docker.sock",'
    echo '    "patchCommand": ["echo", "demo fleet: nothing patched (its hosts share this machine'"'"'s root filesystem)"] },'
    echo '  "hosts": ['
    for r in "$@"; do
      i=$((i + 1))
      [ "$r" = - ] && continue
      roles=\"${r//,/\", \"}\"
      [ $first = 1 ] || echo '    ,'
      first=0
      printf '    { "name": "host%s", "address": "%s", "roles": [%s], "labels": { "testbed": "%s" },\n' \
        "$i" "$(addr "$i")" "$roles" "$PFX"
      printf '      "hostKeys": ["%s"] }\n' "$(ssh-keygen -lf "$(hdir "$i")/etc/ssh_host_ed25519_key.pub" -E sha256 | awk '{print $2}')"
    done
    echo '  ]'
    echo '}'
  } >"$file.tmp"
  mv "$file.tmp" "$file"
  for i in $(seq "$(hosts_made)"); do
    echo "$(addr "$i") $(cut -d' ' -f1,2 "$(hdir "$i")/etc/ssh_host_ed25519_key.pub")"
  done >"$DIR/keys/known_hosts"
}

# The number of hosts made in this bed: N, or more when a layout added some (see 'layout').
hosts_made() {
  local i=$N
  while [ -d "$(hdir $((i + 1)))" ]; do i=$((i + 1)); done
  echo "$i"
}

# ---------------------------------------------------------------- verbs
up() {
  local t0 i roles=(); t0=$(now)
  require
  mkdir -p "$DIR/keys" "$DIR/logs" "$DIR/images"
  [ -f "$DIR/keys/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C quartermaster -f "$DIR/keys/id_ed25519"
  cp "$DIR/keys/id_ed25519.pub" "$DIR/keys/authorized_keys"
  net_up
  hosts_up 1 "$N"
  for i in $(seq "$N"); do roles+=("$(default_roles "$i")"); done
  inventory_write "$DIR/inventory.json" "${roles[@]}"
  link_self
  log "up: $N hosts at $(addr 1)..$(addr "$N") in $(since "$t0") s (inventory: $DIR/inventory.json)"
}

# hosts_up FIRST LAST: hosts FIRST..LAST with their namespaces, sshd, dockerd, mariadbd and the
# busybox image (each started only if missing)
hosts_up() {
  local i pids=()
  for i in $(seq "$1" "$2"); do
    mkdir -p "$(hdir "$i")/etc"
    host_net_up "$i"
    host_holder_up "$i"
    sshd_start "$i"
  done
  mariadb_template
  # dockerd and mariadbd of all hosts start in parallel (each waits for its own readiness)
  for i in $(seq "$1" "$2"); do (docker_start "$i") & pids+=($!); done
  for i in $(seq "$1" "$2"); do (mariadb_start "$i") & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p" || die "a daemon failed to start (see $DIR/hosts/h*/logs)"; done
  images_load "$1" # the first makes the image's tarball if there is none yet
  pids=()
  for i in $(seq $(($1 + 1)) "$2"); do (images_load "$i") & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p" || die "loading images failed"; done
}

# layout NAME ROLES...: another inventory of this bed's hosts, $DIR/inventory-NAME.json, with
# other roles (word N: host N's roles, comma-separated, or '-' to leave it out). Hosts past the
# bed's own N are made and started first; 'down' stops them too. The bed's inventory.json, which
# every other test and a worker's test-bed reboot read, stays as it is.
layout() {
  local name=$1 r; shift
  [[ "$name" =~ ^[a-z0-9-]+$ ]] || die "layout name '$name': lowercase letters, digits and dashes"
  [ $# -ge 1 ] || die "usage: fleet.sh layout NAME ROLES... (one word per host)"
  for r in "$@"; do [[ "$r" =~ ^(-|[a-z]+(,[a-z]+)*)$ ]] || die "roles '$r': comma-separated roles, or -"; done
  is_up || die "the bed is not up: fleet.sh up first"
  [ $# -le "$N" ] || hosts_up $((N + 1)) $#
  inventory_write "$DIR/inventory-$name.json" "$@"
  echo "$DIR/inventory-$name.json"
}

down() {
  local t0 i H hp mns p left; t0=$(now)
  [ -d "$DIR/hosts" ] || { net_down; return 0; }
  # phase 1: stop the daemons of every host in parallel, by PID
  local made; made=$(hosts_made)
  for i in $(seq "$made"); do (mariadb_stop "$i"; docker_stop "$i"; sshd_stop "$i") & done
  wait
  # phase 2: anything left in a host's mount namespace or cgroups, then the holder and the netns
  for i in $(seq "$made"); do
    H=$(hdir "$i")
    if alive "$H/holder.pid"; then
      hp=$(holder "$i"); mns=$(readlink "/proc/$hp/ns/mnt")
      # again until none is left: a master killed while it reloaded may have forked workers the
      # pass had already gone by (they would live on, orphaned, holding the namespace)
      for _ in 1 2 3 4 5; do
        left=0
        for d in /proc/[0-9]*; do
          p=${d#/proc/}
          [ "$p" != "$hp" ] && [ "$(readlink "$d/ns/mnt" 2>/dev/null)" = "$mns" ] && { log "host$i: killing leftover $p $(tr '\0' ' ' <"$d/cmdline" | head -c 80)"; kill -KILL "$p" 2>/dev/null || true; left=1; }
        done
        [ $left = 0 ] && break
        sleep 0.1
      done
      kill -TERM "$hp" 2>/dev/null || true; wait_gone "$hp" || true
    fi
    for c in /sys/fs/cgroup/*/"$PFX-h$i"; do
      [ -d "$c" ] || continue
      # shellcheck disable=SC2038  # xargs reads the pids in the files, not file names
      find "$c" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
      find "$c" -depth -type d -exec rmdir {} + 2>/dev/null || true
    done
    ip netns del "$PFX-h$i" 2>/dev/null || true
    # docker's overlay mounts live in the holder's namespace and die with it; the data stays for a fast next 'up'
  done
  net_down
  log "down in $(since "$t0") s"
}

net_down() {
  ip netns del "$SW" 2>/dev/null || true
  ip link del "$PFX-root" 2>/dev/null || true
}

status() {
  local i H
  for i in $(seq "$(hosts_made)"); do
    H=$(hdir "$i")
    printf 'host%s %s holder=%s sshd=%s docker=%s mariadb=%s\n' "$i" "$(addr "$i")" \
      "$(alive "$H/holder.pid" && echo up || echo down)" "$(alive "$H/run/sshd.pid" && echo up || echo down)" \
      "$(alive "$H/docker/pid" && echo up || echo down)" "$(alive "$H/run/mysqld/mysqld.pid" && echo up || echo down)"
  done
}

# Exit 0 when every host answers: used by the jest setup to reuse a bed that is up.
is_up() {
  local i H
  [ -f "$DIR/inventory.json" ] || return 1
  for i in $(seq "$N"); do
    H=$(hdir "$i")
    alive "$H/holder.pid" && alive "$H/run/sshd.pid" && alive "$H/docker/pid" && alive "$H/run/mysqld/mysqld.pid" || return 1
  done
}

# $DIR/fleet.sh -> this script: written by 'up', and by 'is-up' for a bed that is taken into use
# again (the jest setup, the benches); replaced atomically, and only when it points elsewhere (a
# reboot may be reading it meanwhile)
link_self() {
  local self; self=$(readlink -f "${BASH_SOURCE[0]}")
  [ "$(readlink "$DIR/fleet.sh" 2>/dev/null)" = "$self" ] && return 0
  ln -sfn "$self" "$DIR/.fleet.sh.$$" && mv -Tf "$DIR/.fleet.sh.$$" "$DIR/fleet.sh"
}

cmd=${1:-}
shift || true
mkdir -p "$DIR"
case "$cmd" in
  up | down | layout)
    exec 9>"$DIR/.lock"; flock -w 300 9 || die "another fleet.sh holds $DIR/.lock"
    "$cmd" "$@" ;;
  php-image)
    [ $# -ge 1 ] || die "usage: fleet.sh php-image N..."
    for i in "$@"; do check_host "$i"; done
    php_image_load "$1"
    pids=()
    for i in "${@:2}"; do (php_image_load "$i") & pids+=($!); done
    for p in "${pids[@]}"; do wait "$p" || die "loading the PHP site's image failed"; done ;;
  status) status ;;
  is-up) is_up && link_self ;;
  cut) check_host "$1"; ip -n "$SW" link set "$PFX-sw$1" down ;;
  heal) check_host "$1"; ip -n "$SW" link set "$PFX-sw$1" up ;;
  stop | start)
    check_host "$1"
    case "${2:-}" in
      sshd | docker | mariadb) "${2}_$cmd" "$1" ;;
      *) die "usage: fleet.sh $cmd N sshd|docker|mariadb" ;;
    esac ;;
  reboot) check_host "$1"; sshd_stop "$1"; docker_stop "$1"; docker_start "$1"; sshd_start "$1" ;;
  exec) check_host "$1"; i=$1; shift; in_host "$i" "$@" ;;
  rekey) check_host "$1"; rekey "$1" ;;
  restore-key) check_host "$1"; restore_key "$1" ;;
  *) sed -n '2,30p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; [ -z "$cmd" ] || exit 2 ;;
esac
