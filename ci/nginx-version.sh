#!/usr/bin/env bash
# Builds one released nginx from ../shared/nginx-src (checksum verified first)
# and this module against it with nginx's own --add-dynamic-module, the way a
# user builds a module for the nginx they run. Prints the build directory;
# the binary is DIR/objs/nginx, the module DIR/objs/<module>.so.
#   ci/nginx-version.sh 1.30.4 [extra configure arguments, e.g. --with-debug]
set -euo pipefail
version=${1:?usage: nginx-version.sh VERSION [configure args]}
shift
root=$(cd "$(dirname "$0")/.." && pwd)
src=${NGINX_SRC_DIR:-$root/../shared/nginx-src}
tarball=$src/nginx-$version.tar.gz
[ -f "$tarball" ] || { echo "nginx-version: $tarball not found" >&2; exit 1; }

# Only an archive whose checksum is listed and matches is unpacked.
want=$(awk -v f="nginx-$version.tar.gz" '$2 == f { print $1 }' "$src/SHA256SUMS")
got=$(sha256sum "$tarball" | cut -d' ' -f1)
if [ -z "$want" ] || [ "$want" != "$got" ]; then
    echo "nginx-version: checksum mismatch for $tarball (listed '${want:-none}', got $got)" >&2
    exit 1
fi

suffix=$(printf '%s' "$*" | tr -c 'A-Za-z0-9' '_')
work=$root/build/matrix/nginx-$version${suffix:+-$suffix}
stamp=$work/.built-$got
# The module is rebuilt every time (cargo decides what changed); nginx only once.
if [ ! -f "$stamp" ]; then
    rm -rf "$work"
    mkdir -p "$work"
    tar -xzf "$tarball" -C "$work" --strip-components=1
    (
        cd "$work"
        # The modules the .t suites use; --with-compat as distributions build.
        ./auto/configure --with-compat --with-threads --with-http_ssl_module \
            --with-http_v2_module --with-http_realip_module --with-http_sub_module \
            --with-http_stub_status_module "$@" --add-dynamic-module="$root" \
            >configure.log 2>&1 || { tail -30 configure.log >&2; exit 1; }
        make -j2 -f objs/Makefile >make.log 2>&1 || { tail -40 make.log >&2; exit 1; }
    )
    touch "$stamp"
fi
(cd "$work" && make -j2 -f objs/Makefile modules >modules.log 2>&1) \
    || { tail -40 "$work/modules.log" >&2; exit 1; }
echo "$work"
