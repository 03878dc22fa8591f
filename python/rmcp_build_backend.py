"""PEP 517 build backend of rmcp's wheel: maturin, plus librmcp.so.

maturin's "bin" bindings package the crate's rmcp binary but not the
librmcp.so cdylib of the same crate. build_wheel here first builds that
library with cargo (release, without RMCP_SONAME: nothing links against the
wheel's copy, it is only preloaded) and copies it to python/rmcp_rocm/,
which pyproject.toml's [tool.maturin] include puts into the wheel. It also
passes pyproject's `compatibility` (the manylinux tag) on to maturin, whose
PEP 517 hook would otherwise tag the wheel plain linux_x86_64. Every other
hook is maturin's own.

RMCP_WHEEL_GLIBC=2.31 (say) builds both files against that glibc with zig
(PyPI ziglang and cargo-zigbuild, which pip then puts into the build
environment) and tags the wheel manylinux_2_31: for Ubuntu 20.04.
"""

import json
import os
import re
import shutil
import subprocess
import sys

import maturin

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_PACKAGE_DIR = os.path.join(_ROOT, "python", "rmcp_rocm")
# librmcp.so, and the LD_AUDIT module that `rmcp run` puts beside it.
_LIBRARIES = ("librmcp.so", "librmcp-audit.so")

build_sdist = maturin.build_sdist
get_requires_for_build_sdist = maturin.get_requires_for_build_sdist
prepare_metadata_for_build_wheel = maturin.prepare_metadata_for_build_wheel
if hasattr(maturin, "get_requires_for_build_editable"):
    get_requires_for_build_editable = maturin.get_requires_for_build_editable
if hasattr(maturin, "prepare_metadata_for_build_editable"):
    prepare_metadata_for_build_editable = maturin.prepare_metadata_for_build_editable


_TRIPLE = "x86_64-unknown-linux-gnu"


def _glibc():
    """The glibc version asked for with RMCP_WHEEL_GLIBC, or None."""
    v = os.environ.get("RMCP_WHEEL_GLIBC", "")
    if not v:
        return None
    if not re.fullmatch(r"2\.[0-9]+", v):
        raise SystemExit(f"rmcp_build_backend: RMCP_WHEEL_GLIBC={v!r} is not accepted: "
                         "use a glibc version such as 2.31, or leave it unset")
    return v


def get_requires_for_build_wheel(config_settings=None):
    reqs = list(maturin.get_requires_for_build_wheel(config_settings))
    if _glibc():
        reqs += ["ziglang", "cargo-zigbuild"]
    return reqs


def _build_library():
    cargo = os.environ.get("CARGO", "cargo")
    env = dict(os.environ)
    env.pop("RMCP_SONAME", None)
    glibc = _glibc()
    if glibc:
        cmd = [cargo, "zigbuild", "--release", "--locked", "--lib", "--target", f"{_TRIPLE}.{glibc}"]
        sub = os.path.join(_TRIPLE, "release")
    else:
        cmd = [cargo, "build", "--release", "--locked", "--lib"]
        sub = "release"
    # cargo's progress goes to stderr; keep stdout for pip.
    subprocess.run(cmd, cwd=_ROOT, env=env, check=True, stdout=sys.stderr)
    meta = subprocess.run([cargo, "metadata", "--format-version", "1", "--no-deps"],
                          cwd=_ROOT, env=env, check=True, capture_output=True, text=True)
    for name in _LIBRARIES:
        built = os.path.join(json.loads(meta.stdout)["target_directory"], sub, name)
        dest = os.path.join(_PACKAGE_DIR, name)
        shutil.copyfile(built, dest)
        print(f"rmcp_build_backend: {built} -> {dest}", file=sys.stderr)


def _with_compatibility(config_settings):
    args = maturin.get_maturin_pep517_args(config_settings)
    glibc = _glibc()
    if glibc:
        settings = dict(config_settings or {})
        settings["maturin.build-args"] = ["--zig", "--target", _TRIPLE, "--compatibility",
                                          "manylinux_" + glibc.replace(".", "_")] + args
        return settings
    if "--compatibility" in args or "--manylinux" in args:
        return config_settings
    with open(os.path.join(_ROOT, "pyproject.toml"), encoding="utf-8") as f:
        m = re.search(r'^compatibility\s*=\s*"manylinux_([0-9]+)_([0-9]+)"', f.read(), re.M)
    if not m:
        return config_settings
    tag = (int(m.group(1)), int(m.group(2)))
    # Built on an older glibc (e.g. `pip install .` on Ubuntu 20.04), the
    # files need no more than that glibc, and a manylinux_2_34 tag would make
    # pip refuse the wheel there: tag it with the build machine's version.
    host = re.fullmatch(r"glibc ([0-9]+)\.([0-9]+).*", os.confstr("CS_GNU_LIBC_VERSION") or "")
    if host and (int(host.group(1)), int(host.group(2))) < tag:
        tag = (int(host.group(1)), int(host.group(2)))
    settings = dict(config_settings or {})
    settings["maturin.build-args"] = ["--compatibility", f"manylinux_{tag[0]}_{tag[1]}"] + args
    return settings


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    _build_library()
    return maturin.build_wheel(wheel_directory, _with_compatibility(config_settings), metadata_directory)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    _build_library()
    return maturin.build_editable(wheel_directory, config_settings, metadata_directory)
