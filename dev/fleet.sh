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
#
# Settings (environment): QM_TESTBED_DIR (/tmp/qm-testbed), QM_TESTBED_HOSTS (3),
# QM_TESTBED_SUBNET (10.77.0, a /24 of this machine's own), QM_TESTBED_PREFIX (qm: names of
# namespaces, links and cgroups). The bed writes $QM_TESTBED_DIR/inventory.json (the fleet
# inventory the platform reads), the client key and known_hosts under $QM_TESTBED_DIR/keys, and
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
check_host() { [[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -ge 1 ] && [ "$1" -le "$N" ] || die "no host '$1' (1..$N)"; }

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

# ---------------------------------------------------------------- inventory
inventory_write() {
  local i roles first=1
  {
    echo '{'
    # The hosts share this machine's root filesystem (only /run, /srv, /root and /etc/docker are
    # their own), so a real patch (apt-get upgrade) would upgrade the machine itself: a patch roll
    # that names no patchCommand runs this harmless one here (docs/patch-rolls.md).
    echo '  "defaults": { "user": "root", "port": 22, "dockerSocket": "/run/docker.sock",'
    echo '    "patchCommand": ["echo", "demo fleet: nothing patched (its hosts share this machine'"'"'s root filesystem)"] },'
    echo '  "hosts": ['
    for i in $(seq "$N"); do
      # host1 fronts the fleet (proxy, git, storage); the others run the sites' app containers.
      if [ "$i" = 1 ]; then roles='"proxy", "db", "storage", "git"'; else roles='"app", "cache", "db"'; fi
      [ $first = 1 ] || echo '    ,'
      first=0
      printf '    { "name": "host%s", "address": "%s", "roles": [%s], "labels": { "testbed": "%s" },\n' \
        "$i" "$(addr "$i")" "$roles" "$PFX"
      printf '      "hostKeys": ["%s"] }\n' "$(ssh-keygen -lf "$(hdir "$i")/etc/ssh_host_ed25519_key.pub" -E sha256 | awk '{print $2}')"
    done
    echo '  ]'
    echo '}'
  } >"$DIR/inventory.json.tmp"
  mv "$DIR/inventory.json.tmp" "$DIR/inventory.json"
  for i in $(seq "$N"); do
    echo "$(addr "$i") $(cut -d' ' -f1,2 "$(hdir "$i")/etc/ssh_host_ed25519_key.pub")"
  done >"$DIR/keys/known_hosts"
}

# ---------------------------------------------------------------- verbs
up() {
  local t0 i; t0=$(now)
  require
  mkdir -p "$DIR/keys" "$DIR/logs" "$DIR/images"
  [ -f "$DIR/keys/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C quartermaster -f "$DIR/keys/id_ed25519"
  cp "$DIR/keys/id_ed25519.pub" "$DIR/keys/authorized_keys"
  net_up
  for i in $(seq "$N"); do
    mkdir -p "$(hdir "$i")/etc"
    host_net_up "$i"
    host_holder_up "$i"
    sshd_start "$i"
  done
  inventory_write
  mariadb_template
  # dockerd and mariadbd of all hosts start in parallel (each waits for its own readiness)
  local pids=()
  for i in $(seq "$N"); do (docker_start "$i") & pids+=($!); done
  for i in $(seq "$N"); do (mariadb_start "$i") & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p" || die "a daemon failed to start (see $DIR/hosts/h*/logs)"; done
  images_load 1
  pids=()
  for i in $(seq 2 "$N"); do (images_load "$i") & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p" || die "loading images failed"; done
  link_self
  log "up: $N hosts at $(addr 1)..$(addr "$N") in $(since "$t0") s (inventory: $DIR/inventory.json)"
}

down() {
  local t0 i H hp mns p left; t0=$(now)
  [ -d "$DIR/hosts" ] || { net_down; return 0; }
  # phase 1: stop the daemons of every host in parallel, by PID
  for i in $(seq "$N"); do (mariadb_stop "$i"; docker_stop "$i"; sshd_stop "$i") & done
  wait
  # phase 2: anything left in a host's mount namespace or cgroups, then the holder and the netns
  for i in $(seq "$N"); do
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
  for i in $(seq "$N"); do
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
  up | down)
    exec 9>"$DIR/.lock"; flock -w 300 9 || die "another fleet.sh holds $DIR/.lock"
    "$cmd" ;;
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
  *) sed -n '2,26p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; [ -z "$cmd" ] || exit 2 ;;
esac
