# sticky_session: `make` builds, `make run` starts the demo, `make test` runs every check.

DEBIAN_PACKAGES := libclang-dev libpcre2-dev libssl-dev zlib1g-dev gcc g++ make perl pkg-config curl dnsmasq-base openssl redis-server redis-sentinel redis-tools brotli zstd php-cgi

# .t suites run at once: they mostly wait on sockets and timers (a full run
# uses a quarter of two cores), so four at a time halve the wall clock.
export PROVE_JOBS ?= 4

.PHONY: all build deps run test unit prove dynamic static capi header header-check debian bench bench-sync bench-core matrix matrix-smoke deb deb-test fuzz fuzz-smoke chaos chaos-smoke memcheck clean

all: build

# Debian packages the build and tests need, installed when missing.
deps:
	@ci/deps.sh $(DEBIAN_PACKAGES)

# build/nginx (vendored 1.28) and build/ngx_http_upstream_sticky_session_module.so
build: deps
	ci/build.sh

run: build
	ci/demo.sh

# Everything CI runs: unit tests, the .t suites on the vendored nginx, the
# module built by nginx's own build system (dynamic), against Debian's nginx,
# the C API example and the header freshness check.
test: build unit prove matrix-smoke dynamic static debian deb-test capi header-check fuzz-smoke chaos-smoke

unit:
	cargo test --no-default-features

prove: build
	prove -j$(PROVE_JOBS) -r t/

dynamic: build
	ci/nginx-build.sh dynamic

static: build
	ci/nginx-build.sh static

# Every nginx version in ../shared/nginx-src (1.24, 1.26, 1.30, 1.31) and the
# vendored 1.28, each with the module built by nginx's --add-dynamic-module:
# matrix runs every .t suite on each; matrix-smoke (in make test) the suites
# that cover routing, split bodies, failover, status, reload, keep-alive and
# configuration on the versions prove does not already run.
matrix: build
	ci/matrix.sh

matrix-smoke: build
	MATRIX_VERSIONS="1.24.0 1.26.3 1.30.4 1.31.4" \
	MATRIX_SUITES="t/routing.t t/split_body.t t/failover.t t/status.t t/durability.t t/keepalive.t t/config.t t/headers.t t/strict_resolve.t t/drain.t" \
		ci/matrix.sh

# libnginx-mod-http-sticky-session_<version>_amd64.deb for Debian's nginx,
# checked by lintian; deb-test installs it, checks a session sticks through
# /usr/sbin/nginx, and removes it again.
deb: deps
	ci/deb.sh

deb-test: deb
	ci/deb-test.sh

# Debian's own nginx 1.22 (apt-get install nginx nginx-dev): the module built
# against /usr/share/nginx/src with Debian's flags, the .t suites run on /usr/sbin/nginx.
debian: deps
	ci/debian.sh

# The C API: the core built without nginx as a static library, and a C
# program compiled against include/sticky_session.h that checks real results.
capi: deps
	cargo build --release --no-default-features --lib --target-dir target/capi
	mkdir -p build
	cc -std=c99 -Wall -Wextra -Werror -Iinclude ci/capi_example.c \
		target/capi/release/libsticky_session.a -lpthread -ldl -lm -o build/capi_example
	build/capi_example

HEADER_GEN := ci/header/target/release/sticky_session_header

$(HEADER_GEN): ci/header/src/main.rs ci/header/Cargo.toml
	cargo build --release --manifest-path ci/header/Cargo.toml

# Regenerates include/sticky_session.h from src/ffi/c.rs (cbindgen).
header: $(HEADER_GEN)
	$(HEADER_GEN) . include/sticky_session.h

# Fails when include/sticky_session.h is not what src/ffi/c.rs generates.
header-check: $(HEADER_GEN)
	mkdir -p build
	$(HEADER_GEN) . build/sticky_session.h
	@diff -u include/sticky_session.h build/sticky_session.h \
		|| { echo "include/sticky_session.h is stale: run make header" >&2; exit 1; }

# Instructions per proxied request (callgrind) and req/s, p99 (wrk) against
# round robin, hash and sub_filter; prints a table and RATIO lines.
bench: build
	@ci/deps.sh wrk valgrind
	perl ci/bench.pl

# Sync through Redis: propagation delay between two nginx, publish rate,
# Redis memory per session (the hit path with sync on is a row of bench).
bench-sync: build
	@ci/deps.sh wrk
	perl ci/bench-sync.pl

# Coverage-guided fuzzing (libFuzzer), FUZZ_SECONDS per target (default 60);
# corpora kept in ci/fuzz/corpus. fuzz-smoke: 5 s per target, run by make test.
fuzz: deps
	ci/fuzz.sh

fuzz-smoke: deps
	FUZZ_SECONDS=5 ci/fuzz.sh

# Faults under load through 4 workers: killed workers, reloads, a killed
# backend, random-id floods, a zone filled 10x. chaos-smoke: smaller counts.
chaos: build
	perl ci/chaos.pl

chaos-smoke: build
	CHAOS_KILLS=40 CHAOS_RELOAD_SECONDS=5 CHAOS_BACKEND_CYCLES=2 CHAOS_FLOOD=500 perl ci/chaos.pl

# The .t suites with every nginx process under valgrind memcheck.
memcheck: build
	@ci/deps.sh valgrind
	ci/memcheck.sh

# Micro-benchmarks of the pure core (scanner GB/s, table ns/op, extraction ns).
bench-core:
	cargo bench --no-default-features --bench core

clean:
	cargo clean
	rm -rf build
