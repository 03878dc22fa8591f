#!/usr/bin/env bash
# Builds the Debian package target/debian/rmcp_VERSION-1_amd64.deb:
#   /usr/bin/rmcp, /usr/lib/x86_64-linux-gnu/librmcp.so.0 (DT_SONAME
#   librmcp.so.0) and its librmcp.so link, pkgconfig/rmcp.pc, /usr/include/rmcp.h,
#   README and licenses under /usr/share/doc/rmcp.
# Needs cargo-deb (`cargo install --locked cargo-deb`; scripts/setup.sh does it).
# Its own target dir (target/deb) keeps the soname'd build apart from the
# everyday one, whose librmcp.so has no soname (see build.rs).
# Install the result with: apt install ./target/debian/rmcp_*_amd64.deb
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v cargo-deb >/dev/null || { echo "build-deb: cargo-deb not found; install it with: cargo install --locked cargo-deb" >&2; exit 1; }
export CARGO_TARGET_DIR="$PWD/target/deb"
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
# rmcp.pc for the package's layout, where Cargo.toml's assets name it (a plain
# `cargo deb` stops there, with the directory's name as the hint).
PC_DIR=$CARGO_TARGET_DIR/release/run-scripts-build-deb.sh-not-plain-cargo-deb
mkdir -p "$PC_DIR"
# The loader searches /usr/lib/x86_64-linux-gnu anyway, so no rpath there.
sed -e "s|@PREFIX@|/usr|g" -e "s|@VERSION@|$version|g" \
    -e 's|^libdir=\${prefix}/lib$|libdir=${prefix}/lib/x86_64-linux-gnu|' \
    -e 's| -Wl,-rpath,\${libdir}||' rmcp.pc.in > "$PC_DIR/rmcp.pc"
grep -q '^libdir=${prefix}/lib/x86_64-linux-gnu$' "$PC_DIR/rmcp.pc" || { echo "build-deb: rmcp.pc.in changed: libdir not rewritten" >&2; exit 1; }
if grep -q rpath "$PC_DIR/rmcp.pc"; then echo "build-deb: rmcp.pc.in changed: rpath not removed" >&2; exit 1; fi
RMCP_SONAME=librmcp.so.0 cargo deb --locked --output target/debian "$@"
