#!/bin/sh
# The app container's command: the base schema (if absent), then Apache in the foreground. A stop
# (SIGTERM from the engine) becomes Apache's graceful stop: requests in flight finish.
set -e
php /var/www/app/cli.php install
# shellcheck source=/dev/null
. /etc/apache2/envvars
mkdir -p "$APACHE_RUN_DIR" "$APACHE_LOCK_DIR" "$APACHE_LOG_DIR"
/usr/sbin/apache2 -D FOREGROUND &
pid=$!
trap 'kill -WINCH $pid' TERM
trap 'kill -TERM $pid' INT
# wait returns when a trapped signal arrives: wait again until Apache has exited
while kill -0 "$pid" 2>/dev/null; do wait "$pid" || true; done
