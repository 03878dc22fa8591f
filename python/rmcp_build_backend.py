"""PEP 517 build backend of rmcp's wheel: maturin, plus librmcp.so.

maturin's "bin" bindings package the crate's rmcp binary but not the
librmcp.so cdylib of the same crate. build_wheel here first builds that
library with cargo (release, without RMCP_SONAME: nothing links against the
wheel's copy, it is only preloaded) and copies it to python/rmcp_rocm/,
which pyproject.toml's [tool.maturin] include puts into the wheel. It also
passes pyproject's `compatibility` (the manylinux tag) on to maturin, whose
PEP 517 hook would otherwise tag the wheel plain linux_x86_64. Every other
hook is maturin's own.
"""

import json
import os
import re
import shutil
import subprocess
import sys

import maturin

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_DEST = os.path.join(_ROOT, "python", "rmcp_rocm", "librmcp.so")

build_sdist = maturin.build_sdist
get_requires_for_build_wheel = maturin.get_requires_for_build_wheel
get_requires_for_build_sdist = maturin.get_requires_for_build_sdist
prepare_metadata_for_build_wheel = maturin.prepare_metadata_for_build_wheel
if hasattr(maturin, "get_requires_for_build_editable"):
    get_requires_for_build_editable = maturin.get_requires_for_build_editable
if hasattr(maturin, "prepare_metadata_for_build_editable"):
    prepare_metadata_for_build_editable = maturin.prepare_metadata_for_build_editable


def _build_library():
    cargo = os.environ.get("CARGO", "cargo")
    env = dict(os.environ)
    env.pop("RMCP_SONAME", None)
    # cargo's progress goes to stderr; keep stdout for pip.
    subprocess.run([cargo, "build", "--release", "--locked", "--lib"],
                   cwd=_ROOT, env=env, check=True, stdout=sys.stderr)
    meta = subprocess.run([cargo, "metadata", "--format-version", "1", "--no-deps"],
                          cwd=_ROOT, env=env, check=True, capture_output=True, text=True)
    built = os.path.join(json.loads(meta.stdout)["target_directory"], "release", "librmcp.so")
    shutil.copyfile(built, _DEST)
    print(f"rmcp_build_backend: {built} -> {_DEST}", file=sys.stderr)


def _with_compatibility(config_settings):
    args = maturin.get_maturin_pep517_args(config_settings)
    if "--compatibility" in args or "--manylinux" in args:
        return config_settings
    with open(os.path.join(_ROOT, "pyproject.toml"), encoding="utf-8") as f:
        m = re.search(r'^compatibility\s*=\s*"([^"]+)"', f.read(), re.M)
    if not m:
        return config_settings
    settings = dict(config_settings or {})
    settings["maturin.build-args"] = ["--compatibility", m.group(1)] + args
    return settings


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    _build_library()
    return maturin.build_wheel(wheel_directory, _with_compatibility(config_settings), metadata_directory)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    _build_library()
    return maturin.build_editable(wheel_directory, config_settings, metadata_directory)
