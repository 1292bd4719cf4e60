#!/usr/bin/env bash
# Debian's own nginx (1.22 on Debian 12): installs nginx and nginx-dev if
# missing (without starting a service), builds the module with
# ./configure --add-dynamic-module on a copy of /usr/share/nginx/src using
# Debian's own configure flags, loads it into /usr/sbin/nginx and runs the
# .t suites there.  `ci/debian.sh build` only builds, and prints the module.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

ci/deps.sh nginx nginx-dev

work=$root/build/debian
# Configured once per nginx-dev version; the module is rebuilt every time
# (cargo decides what changed).
stamp=$work/.configured-$(dpkg-query -W -f='${Version}' nginx-dev)
if [ ! -f "$stamp" ]; then
    rm -rf "$work"
    mkdir -p "$work"
    cp -a /usr/share/nginx/src/. "$work/"
    # shellcheck disable=SC1091
    (cd "$work" && . ./conf_flags && ./configure "${NGX_CONF_FLAGS[@]}" --add-dynamic-module="$root" \
        >configure.log 2>&1) || { tail -30 "$work/configure.log"; exit 1; }
    touch "$stamp"
fi
(cd "$work" && make -j2 -f objs/Makefile modules >make.log 2>&1) || { tail -40 "$work/make.log"; exit 1; }
module=$work/objs/ngx_http_upstream_sticky_session_module.so
[ "${1:-}" = build ] && { echo "$module"; exit 0; }

version=$(/usr/sbin/nginx -v 2>&1 | sed 's/.*nginx\///')
echo "debian: module built against Debian's nginx $version; running t/ with /usr/sbin/nginx"
STICKY_NGINX=/usr/sbin/nginx STICKY_MODULE=$module prove -j"${PROVE_JOBS:-4}" ${DEBIAN_TESTS:-t/}
