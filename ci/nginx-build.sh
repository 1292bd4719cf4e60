#!/usr/bin/env bash
# Builds the module through nginx's own build system, the way users build
# modules, on a copy of the vendored nginx source configured exactly like
# build/nginx, then runs .t suites against the result.
#   ci/nginx-build.sh dynamic   ./configure --add-dynamic-module, load_module into build/nginx
#   ci/nginx-build.sh static    ./configure --add-module, a new nginx binary with the module inside
set -euo pipefail
mode=${1:?usage: nginx-build.sh dynamic|static}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# The vendored source lives in the cargo registry, inside the nginx-src crate.
src=$(cargo metadata --format-version 1 2>/dev/null | ci/cargo-json.pl package-dir nginx-src)/nginx
[ -f "$src/auto/configure" ] || { echo "nginx-build: vendored nginx source not found" >&2; exit 1; }

work=$root/build/nginx-$mode
rm -rf "$work"
mkdir -p "$work"
# Copy the pristine source: the vendored build may have left a Makefile behind.
(cd "$src" && tar --exclude=./Makefile --exclude=./objs -cf - .) | (cd "$work" && tar -xf -)

# Same arguments as build/nginx (minus its build dir), so the signatures match.
args=$(build/nginx -V 2>&1 | sed -n 's/^configure arguments: //p' | sed 's/--builddir=[^ ]*//')
cd "$work"
if [ "$mode" = dynamic ]; then
    # shellcheck disable=SC2086
    ./auto/configure $args --add-dynamic-module="$root" >configure.log 2>&1 || { tail -30 configure.log; exit 1; }
    make -j2 -f objs/Makefile modules >make.log 2>&1 || { tail -40 make.log; exit 1; }
    nginx=$root/build/nginx
    module=$work/objs/ngx_http_upstream_sticky_session_module.so
else
    # shellcheck disable=SC2086
    ./auto/configure $args --add-module="$root" >configure.log 2>&1 || { tail -30 configure.log; exit 1; }
    make -j2 -f objs/Makefile >make.log 2>&1 || { tail -40 make.log; exit 1; }
    nginx=$work/objs/nginx
    module=
fi
cd "$root"
echo "nginx-build: $mode module built; running t/routing.t t/split_body.t t/workers.t with it"
STICKY_NGINX=$nginx STICKY_MODULE=$module prove t/routing.t t/split_body.t t/workers.t
