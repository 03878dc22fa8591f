#!/usr/bin/env bash
# The README's first command. On a fresh Debian bookworm machine (as root, or
# a user with sudo) it:
#   1. installs what is missing with apt-get: a C toolchain, python3 with
#      venv, and Debian's CPU build of PyTorch (python3-torch);
#   2. installs Rust with rustup when cargo is missing or older than 1.88
#      (bookworm's own rustc is 1.63);
#   3. picks a Python that can import torch (Debian's /usr/bin/python3 first:
#      a pyenv or conda `python3` earlier on PATH often has no torch);
#   4. builds the wheel and installs it into a virtual environment, .venv
#      (the `rmcp` command and librmcp.so);
#   5. runs examples/pytorch/train.py on the CPU under `rmcp run`, so it works
#      without a GPU.
# Each step says what it does on stderr. Idempotent: a second run reuses what
# the first installed (the venv is made afresh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { echo "quickstart: $*" >&2; }
SUDO=()
[ "$(id -u)" -eq 0 ] || SUDO=(sudo)
export DEBIAN_FRONTEND=noninteractive

PKGS=(build-essential ca-certificates curl python3 python3-venv python3-torch)
missing=()
for p in "${PKGS[@]}"; do
    [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" = "install ok installed" ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "1/5 installing ${missing[*]} (apt-get)"
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    say "1/5 apt packages present: ${PKGS[*]}"
fi

export PATH="$HOME/.cargo/bin:$PATH"
rust_ok() {
    local v
    v=$(cargo --version 2>/dev/null | sed -n 's/^cargo 1\.\([0-9]*\).*/\1/p')
    [ -n "$v" ] && [ "$v" -ge 88 ]
}
if rust_ok; then
    say "2/5 Rust present: $(cargo --version)"
else
    say "2/5 installing Rust with rustup (https://sh.rustup.rs, minimal profile) into $HOME/.cargo"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --no-modify-path >/dev/null
    rust_ok || { say "cargo >= 1.88 still not found after rustup"; exit 1; }
fi

PY=
for c in /usr/bin/python3 "$(command -v python3 || true)"; do
    if [ -n "$c" ] && [ -x "$c" ] && "$c" -c 'import torch, venv, ensurepip' 2>/dev/null; then
        PY=$c
        break
    fi
done
[ -n "$PY" ] || { say "no python3 here can import torch and venv (tried /usr/bin/python3 and python3 on PATH)"; exit 1; }
say "3/5 using $PY ($("$PY" -c 'import sys, torch; print("Python", sys.version.split()[0] + ", torch", torch.__version__)'))"

say "4/5 building the wheel and installing it into .venv (pip install .; a release build, a few minutes the first time)"
"$PY" -m venv --clear --system-site-packages .venv
.venv/bin/pip install --quiet --disable-pip-version-check .

say "5/5 running: .venv/bin/rmcp run -- .venv/bin/python3 examples/pytorch/train.py --device cpu --steps 2"
exec .venv/bin/rmcp run -- .venv/bin/python3 examples/pytorch/train.py --device cpu --steps 2
