#!/usr/bin/env bash
# `make run`: the demo nginx in the foreground; Ctrl-C stops it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
prefix=$root/build/demo
mkdir -p "$prefix/logs"
cat <<'MSG'
sticky_session demo: nginx on http://127.0.0.1:8080 in front of backends on 8081-8083.
Try, in another terminal:

  # 1. A new visitor: the page names its backend and carries a new sid in every link.
  curl -s http://127.0.0.1:8080/ | grep -E 'backend|sid=' | head -3

  # 2. Follow the links: the same session stays on the same backend, every time.
  sid=$(curl -s http://127.0.0.1:8080/ | grep -o 'sid=[0-9a-f]*' | head -1 | cut -d= -f2)
  for i in 1 2 3 4 5 6; do curl -s "http://127.0.0.1:8080/cart?sid=$sid" | grep -o 'backend [0-9]*'; done

  # 3. New visitors spread over the backends (round robin).
  for i in 1 2 3 4 5 6; do curl -s http://127.0.0.1:8080/ | grep -o 'backend [0-9]*'; done

  # 4. The session table fills as you click: sessions per backend, hits, misses.
  curl -s http://127.0.0.1:8080/sticky-status; echo
  curl -s 'http://127.0.0.1:8080/sticky-status?format=prometheus'

Response header X-Sticky-Status says what the module did (NONE, HIT, MISS, ...);
build/demo/logs/access.log shows it per request. Ctrl-C stops the demo.
MSG
exec "$root/build/nginx" -p "$prefix/" -c "$root/nginx-conf/demo.conf" -g 'daemon off;'
