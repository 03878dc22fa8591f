#!/usr/bin/env bash
# One-time setup of a Debian bookworm machine (as root, or with sudo) for
# building and testing rmcp, then a build. Idempotent.
#
#   - build and test tools: a C compiler, binutils (nm, objdump), valgrind,
#     pkg-config, cmake, Python 3 with Debian's CPU PyTorch (the example);
#   - the real ROCm runtimes the tests prove the ABI against
#     (scripts/setup-rocm.sh: bookworm's 5.2.3 installed, sid's 6.4.3
#     unpacked into .rocm/ with its own loader) and libclang for bindgen;
#   - cbindgen, which checks that include/rmcp.h matches src/capi.rs;
#   - packaging (tests/packaging.rs): cargo-deb, buildah and a debootstrap
#     tarball of bookworm (.cache/rootfs, the container base image and the
#     throw-away root the .deb is installed into), python3-venv, and a tools
#     venv (.cache/tools) with maturin and kubernetes-validate;
#   - then `cargo build --all-features --all-targets` and a release build.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# debootstrap and chroot live in /usr/sbin, which some PATHs lack.
export PATH="$PATH:/usr/sbin:/sbin"

SUDO=()
[ "$(id -u)" -eq 0 ] || SUDO=(sudo)
export DEBIAN_FRONTEND=noninteractive

PKGS=(build-essential binutils valgrind pkg-config cmake python3 python3-torch
      libamdhip64-dev libhsa-runtime-dev hipcc rocminfo libclang-dev
      python3-venv dpkg-dev buildah debootstrap)
missing=()
for p in "${PKGS[@]}"; do
    [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" = "install ok installed" ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}" >&2
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# bookworm's ROCm is installed above; this unpacks sid's ROCm 6.4.3.
bash scripts/setup-rocm.sh

CBINDGEN_VERSION=0.29.4
if ! cbindgen --version 2>/dev/null | grep -q "$CBINDGEN_VERSION"; then
    echo "setup: installing cbindgen $CBINDGEN_VERSION" >&2
    cargo install --locked --quiet cbindgen --version "$CBINDGEN_VERSION"
fi

CARGO_DEB_VERSION=3.8.0
if ! cargo-deb --version 2>/dev/null | grep -q "$CARGO_DEB_VERSION"; then
    echo "setup: installing cargo-deb $CARGO_DEB_VERSION" >&2
    cargo install --locked --quiet cargo-deb --version "$CARGO_DEB_VERSION"
fi

# Tools for the packaging tests, from PyPI, in a venv of Debian's Python.
TOOLS=.cache/tools
if ! "$TOOLS/bin/python3" -c 'import maturin, kubernetes_validate' 2>/dev/null; then
    echo "setup: creating $TOOLS (maturin, kubernetes-validate)" >&2
    rm -rf "$TOOLS"
    /usr/bin/python3 -m venv "$TOOLS"
    "$TOOLS/bin/pip" install --quiet --disable-pip-version-check maturin==1.16.0 kubernetes-validate==1.37.0
fi

# A minimal bookworm root made from Debian's packages (about 2.5 minutes
# once; cached): the base of the container test and the root the .deb is
# installed into. No image registry is needed.
ROOTFS_TAR=.cache/rootfs/bookworm-minbase.tar
if [ ! -s "$ROOTFS_TAR" ]; then
    echo "setup: debootstrap --variant=minbase bookworm -> $ROOTFS_TAR" >&2
    mkdir -p .cache/rootfs
    tmp=$(mktemp -d .cache/rootfs/debootstrap.XXXXXX)
    "${SUDO[@]}" debootstrap --variant=minbase bookworm "$tmp/root" http://deb.debian.org/debian >/dev/null
    "${SUDO[@]}" tar -C "$tmp/root" -cf "$ROOTFS_TAR.part" .
    mv "$ROOTFS_TAR.part" "$ROOTFS_TAR"
    "${SUDO[@]}" rm -rf "$tmp"
fi

cargo build --all-features --all-targets
cargo build --release
echo "setup: done; run the tests with: cargo test --all-features" >&2
