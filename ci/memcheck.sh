#!/usr/bin/env bash
# make memcheck: .t suites with every nginx process (master, workers, nginx -t)
# under valgrind's memcheck; fails on any memcheck error.
#   MEMCHECK_TESTS   suites to run (default: a set covering every code path
#                    of the module: balancer, filters, inflater, sources,
#                    status, state file, failover)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=$root/build/memcheck
rm -rf "$out"
mkdir -p "$out"
wrapper=$out/nginx
cat > "$wrapper" <<WRAP
#!/bin/sh
exec valgrind --tool=memcheck --trace-children=yes --child-silent-after-fork=no \\
    --track-origins=yes --error-limit=no --num-callers=30 \\
    --suppressions="$root/ci/memcheck.supp" \\
    --log-file="$out/vg.%p.log" "$root/build/nginx" "\$@"
WRAP
chmod +x "$wrapper"
tests=${MEMCHECK_TESTS:-t/routing.t t/split_body.t t/headers.t t/sources.t t/php_app.t t/failover.t t/status.t t/durability.t t/strict.t}
echo "memcheck: running $tests under valgrind (slow)"
STICKY_NGINX=$wrapper STICKY_SLOW=1 prove $tests || { echo "memcheck: a suite failed under valgrind" >&2; exit 1; }

errors=0
for log in "$out"/vg.*.log; do
    n=$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$log" | tail -1)
    if [ -n "$n" ] && [ "$n" -gt 0 ]; then
        errors=$((errors + n))
        echo "memcheck: $n errors in $log" >&2
        grep -m 20 -A 12 '^==[0-9]*== [A-Z]' "$log" >&2 || true
    fi
done
logs=$(ls "$out"/vg.*.log | wc -l)
echo "memcheck: $logs nginx processes checked, $errors errors"
[ "$errors" -eq 0 ]
