#!/usr/bin/env bash
# make deb: libnginx-mod-http-sticky-session_<version>_<arch>.deb for
# Debian's own nginx, packaged the way Debian packages its nginx modules
# (dh_nginx records the exact nginx-abi dependency, installs the load file in
# /usr/share/nginx/modules-available and enables it), then checked by lintian.
# The packaging files live in ci/deb/ and are assembled in build/deb/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
ci/deps.sh nginx nginx-dev debhelper dpkg-dev fakeroot lintian

module=$(ci/debian.sh build | tail -n 1)
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
name=libnginx-mod-http-sticky-session
out=$root/build/deb
src=$out/$name-$version
rm -rf "$out"
mkdir -p "$src/debian/source"
cp "$module" README.md "$src/"
cp ci/deb/control ci/deb/rules ci/deb/copyright ci/deb/docs ci/deb/mod-http-sticky-session.conf \
    "ci/deb/$name.nginx" "$src/debian/"
echo "3.0 (native)" > "$src/debian/source/format"
cat > "$src/debian/changelog" <<CHANGES
$name ($version) unstable; urgency=medium

  * Built from the sticky_session repository at $(git rev-parse --short HEAD 2>/dev/null || echo unknown).

 -- sticky_session developers <sticky-session@example.org>  $(date -R)
CHANGES

(cd "$src" && dpkg-buildpackage -b -us -uc >"$out/build.log" 2>&1) \
    || { tail -40 "$out/build.log"; exit 1; }
deb=$(ls "$out"/${name}_"$version"_*.deb)
lintian --fail-on error --suppress-tags-from-file /dev/null "$deb" | tee "$out/lintian.log"
echo "deb: $deb"
