#!/usr/bin/env bash
# Installs the package make deb built with dpkg -i, checks that Debian's nginx
# accepts a configuration using sticky_session (nginx -t on /etc/nginx with a
# test site in conf.d) and that a session sticks through /usr/sbin/nginx,
# then removes the package: the machine is left as it was found (a package
# that was installed before is reinstalled as it was).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
name=libnginx-mod-http-sticky-session
deb=$(ls build/deb/${name}_*.deb)
site=/etc/nginx/conf.d/sticky-session-package-test.conf
before=$(dpkg-query -W -f='${Status} ${Version}' "$name" 2>/dev/null || true)
[ -e "$site" ] && { echo "deb-test: $site exists, refusing to touch it" >&2; exit 1; }

# No service is started or reloaded by dpkg's triggers meanwhile.
policy=/usr/sbin/policy-rc.d
created_policy=
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    created_policy=1
fi
cleanup() {
    rm -f "$site"
    if [ -z "$before" ] || ! echo "$before" | grep -q 'install ok installed'; then
        dpkg --purge "$name" >/dev/null 2>&1 || true
    fi
    [ -n "$created_policy" ] && rm -f "$policy"
    return 0
}
trap cleanup EXIT

dpkg -i "$deb" >/dev/null
link=/etc/nginx/modules-enabled/50-mod-http-sticky-session.conf
[ -L "$link" ] || { echo "deb-test: $link was not created" >&2; ls -l /etc/nginx/modules-enabled >&2; exit 1; }
echo "deb-test: installed $(dpkg-query -W -f='${Package} ${Version}' "$name"), enabled by $link"

cat > "$site" <<'SITE'
upstream sticky_session_package_test {
    sticky_session name=sid zone=sticky_session_package_test:1m;
    server 127.0.0.1:9;
}
SITE
/usr/sbin/nginx -t -q || { echo "deb-test: nginx -t refused /etc/nginx with sticky_session" >&2; exit 1; }
echo "deb-test: nginx -t accepts /etc/nginx with a sticky_session upstream"
rm -f "$site"

STICKY_NGINX=/usr/sbin/nginx STICKY_MODULE= prove ci/deb-session.t

dpkg --purge "$name" >/dev/null
[ ! -e "$link" ] || { echo "deb-test: $link left behind by removal" >&2; exit 1; }
[ ! -e /usr/lib/nginx/modules/ngx_http_upstream_sticky_session_module.so ] \
    || { echo "deb-test: module left behind by removal" >&2; exit 1; }
echo "deb-test: removed cleanly"
if echo "$before" | grep -q 'install ok installed'; then
    echo "deb-test: the package was installed before; reinstalling this build"
    dpkg -i "$deb" >/dev/null
fi
