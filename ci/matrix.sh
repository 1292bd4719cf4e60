#!/usr/bin/env bash
# The nginx versions people run: each released nginx in ../shared/nginx-src
# built with this module added by --add-dynamic-module (ci/nginx-version.sh),
# then .t suites run on it. 1.28.3 is the vendored build/nginx.
#   MATRIX_VERSIONS  versions to run (default: all five)
#   MATRIX_SUITES    .t files to run on each (default: every suite in t/)
#   PROVE_JOBS       suites run at once (default 4)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
versions=${MATRIX_VERSIONS:-1.24.0 1.26.3 1.28.3 1.30.4 1.31.4}
suites=${MATRIX_SUITES:-$(ls t/*.t)}
module=ngx_http_upstream_sticky_session_module.so

failed=()
for v in $versions; do
    if [ "$v" = 1.28.3 ]; then
        nginx=$root/build/nginx mod=$root/build/$module
    else
        dir=$(ci/nginx-version.sh "$v")
        nginx=$dir/objs/nginx mod=$dir/objs/$module
    fi
    echo "matrix: nginx $v"
    # shellcheck disable=SC2086
    STICKY_NGINX=$nginx STICKY_MODULE=$mod prove -j"${PROVE_JOBS:-4}" $suites || failed+=("$v")
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "matrix: failed on nginx ${failed[*]}" >&2
    exit 1
fi
echo "matrix: every suite passed on nginx $versions"
