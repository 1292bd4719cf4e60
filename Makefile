# sticky_session: `make` builds, `make run` starts the demo, `make test` runs every check.

DEBIAN_PACKAGES := libclang-dev libpcre2-dev libssl-dev zlib1g-dev gcc make perl pkg-config curl

.PHONY: all build deps run test unit prove dynamic static bench-core clean

all: build

# Debian packages the build and tests need, installed when missing.
deps:
	@ci/deps.sh $(DEBIAN_PACKAGES)

# build/nginx (vendored 1.28) and build/ngx_http_upstream_sticky_session_module.so
build: deps
	ci/build.sh

run: build
	ci/demo.sh

# Everything CI runs: unit tests, the .t suites, and the module built by
# nginx's own build system as a dynamic module.
test: build unit prove dynamic

unit:
	cargo test --no-default-features

prove: build
	prove -r t/

dynamic: build
	ci/nginx-build.sh dynamic

static: build
	ci/nginx-build.sh static

# Micro-benchmarks of the pure core (scanner GB/s, table ns/op, extraction ns).
bench-core:
	cargo bench --no-default-features --bench core

clean:
	cargo clean
	rm -rf build
