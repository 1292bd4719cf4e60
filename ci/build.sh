#!/usr/bin/env bash
# Builds the module as a cdylib together with the vendored nginx it is built
# against, and leaves both at fixed paths: build/nginx and
# build/ngx_http_upstream_sticky_session_module.so.
set -euo pipefail
cd "$(dirname "$0")/.."

# nginx-sys's vendored configure, plus sub_filter (make bench compares the
# learner with it, a native C body filter) and stub_status.
export NGX_CONFIGURE_ARGS="${NGX_CONFIGURE_ARGS:---with-http_sub_module --with-http_stub_status_module}"
# The vendored nginx is built by nginx-sys's build script, in its OUT_DIR.
found=$(cargo build --release --lib --message-format=json-render-diagnostics "$@" \
    | ci/cargo-json.pl artifacts)
out_dir=$(printf '%s\n' "$found" | sed -n 1p)
lib=$(printf '%s\n' "$found" | sed -n 2p)

if [ -z "$out_dir" ] || [ ! -x "$out_dir/objs/nginx" ] || [ -z "$lib" ]; then
    echo "build.sh: could not find the built nginx or module in cargo's output" >&2
    exit 1
fi

mkdir -p build
cp "$out_dir/objs/nginx" build/nginx.new && mv build/nginx.new build/nginx
cp "$lib" build/ngx_http_upstream_sticky_session_module.so.new
mv build/ngx_http_upstream_sticky_session_module.so.new build/ngx_http_upstream_sticky_session_module.so
echo "built build/nginx ($(build/nginx -v 2>&1 | sed 's/.*: //')) and build/ngx_http_upstream_sticky_session_module.so"
