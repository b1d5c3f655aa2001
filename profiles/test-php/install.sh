#!/bin/bash
# Bake the site's code into the image's root file system (run by dev/fleet.sh on the root it built
# with debootstrap): the app under /var/www/app, Apache's site and prefork settings, the start script.
# Argument: ROOT.
set -euo pipefail
root=$1
here=$(cd "$(dirname "$0")" && pwd)
install -d -m 755 "$root/var/www/app" "$root/var/www/files"
install -m 644 "$here"/app/*.php "$root/var/www/app/"
install -m 644 "$here/apache-site.conf" "$root/etc/apache2/sites-available/000-default.conf"
install -m 644 "$here/mpm.conf" "$root/etc/apache2/conf-available/qm-site.conf"
ln -sfn ../conf-available/qm-site.conf "$root/etc/apache2/conf-enabled/qm-site.conf"
install -m 755 "$here/start.sh" "$root/usr/local/bin/site-start"
# Apache's own logs to the container's output; no access log (the proxy keeps one)
rm -f "$root/etc/apache2/conf-enabled/other-vhosts-access-log.conf"
ln -sfn /proc/self/fd/2 "$root/var/log/apache2/error.log"
# what a site never reads: translations of the tools' messages, info pages (a smaller image loads faster)
rm -rf "$root/usr/share/locale" "$root/usr/share/info"
