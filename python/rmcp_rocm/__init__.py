"""rmcp for Python programs: where the wheel's librmcp.so is, and a way to
load it from inside a script whose launch command cannot change.

    import rmcp_rocm
    rmcp_rocm.preload()      # first lines of train.py, before importing torch

preload() re-executes the interpreter once, with the same arguments, with
librmcp.so first in LD_PRELOAD; in the re-executed process (or in one started
by `rmcp run` or with LD_PRELOAD already) it sees the library loaded and
returns True at once. The dynamic loader reads LD_PRELOAD only when a process
starts, which is why a re-exec is needed at all.

Re-executing cannot work, and preload() does not try it (it prints one line
and returns False), in:
  - an interactive interpreter (`python3`, `python3 -i`) and programs read
    from standard input (`python3 - < script.py`): the input is gone;
  - a Jupyter/IPython kernel (notebook): the kernel's parent would lose its
    connection. Start the kernel itself under rmcp instead, e.g. a kernel spec
    whose argv begins with "rmcp", "run", "--";
  - `python3 -c CODE` on Python < 3.10 (no sys.orig_argv to rebuild it from).
Everything done before preload() in the script runs twice; side effects there
(files written, output printed) happen twice too.
"""

import os
import re
import sys

__all__ = ["library_path", "is_loaded", "preload"]

_NAME = re.compile(r"librmcp\.so(\.[0-9]+)*$")
# Holds the pid of a process that preload() re-executed: exec keeps the pid,
# so a match means "this process was already re-executed once" and stops a
# loop when the loader refused the library; children have other pids.
_MARK = "RMCP_ROCM_REEXEC_PID"


def _say(msg):
    print(f"rmcp_rocm: {msg}", file=sys.stderr, flush=True)


def library_path():
    """Path of the librmcp.so installed with this package (the wheel's copy).

    Raises FileNotFoundError naming the path when it is missing (a source
    checkout where pip has not built it)."""
    p = os.path.join(os.path.dirname(os.path.abspath(__file__)), "librmcp.so")
    if not os.path.isfile(p):
        raise FileNotFoundError(
            f"{p} does not exist; install the package with pip (pip install .) "
            "or set RMCP_LIBRARY=/path/to/librmcp.so"
        )
    return p


def _is_rmcp(path):
    return bool(_NAME.search(os.path.basename(path)))


def is_loaded():
    """True when a librmcp.so (librmcp.so.N) is mapped into this process."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as f:
            for line in f:
                parts = line.split(None, 5)
                if len(parts) == 6 and _is_rmcp(parts[5].strip()):
                    return True
    except OSError:
        pass
    return False


def _why_not_reexec():
    """A reason re-executing cannot reproduce this interpreter, or None."""
    ipython = sys.modules.get("IPython")
    get_ipython = getattr(ipython, "get_ipython", None)
    if "ipykernel" in sys.modules or (get_ipython is not None and get_ipython() is not None):
        return "running in a Jupyter/IPython kernel or shell"
    if hasattr(sys, "ps1") or sys.flags.interactive:
        return "running in an interactive interpreter"
    if getattr(sys, "frozen", False) or not sys.executable:
        return "the interpreter executable is unknown (frozen application)"
    argv0 = sys.argv[0] if sys.argv else ""
    if argv0 in ("", "-"):
        return "the program was read from standard input"
    if argv0 == "-c" and not hasattr(sys, "orig_argv"):
        return "python -c on Python < 3.10 cannot be re-executed (no sys.orig_argv)"
    return None


def _preload_value(lib, old):
    rest = [e for e in re.split(r"[:\s]+", old or "") if e and not _is_rmcp(e)]
    return ":".join([lib] + rest)


def preload(library=None):
    """Make sure librmcp.so is loaded in this Python process.

    Returns True when it already is. Otherwise re-executes the interpreter
    with it in LD_PRELOAD (does not return), or, where that cannot work,
    prints why on stderr and returns False. `library` defaults to
    $RMCP_LIBRARY, then the wheel's copy (library_path())."""
    if is_loaded():
        return True
    if os.environ.get(_MARK) == str(os.getpid()):
        _say("librmcp.so is still not loaded after re-executing with LD_PRELOAD "
             f"({os.environ.get('LD_PRELOAD', '')!r}); continuing without it "
             "(see the loader's message above)")
        return False
    why = _why_not_reexec()
    if why:
        _say(f"not re-executing: {why}. librmcp.so is not loaded; start this "
             "process with `rmcp run -- ...` or LD_PRELOAD=$(rmcp --print-library)")
        return False
    try:
        lib = library or os.environ.get("RMCP_LIBRARY") or library_path()
    except FileNotFoundError as e:
        _say(f"{e}; continuing without librmcp.so")
        return False
    if not os.path.isfile(lib):
        _say(f"{lib} is not a file; continuing without librmcp.so")
        return False
    lib = os.path.abspath(lib)
    args = list(sys.orig_argv[1:]) if hasattr(sys, "orig_argv") else list(sys.argv)
    os.environ["LD_PRELOAD"] = _preload_value(lib, os.environ.get("LD_PRELOAD"))
    os.environ[_MARK] = str(os.getpid())
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execv(sys.executable, [sys.executable] + args)
    except OSError as e:
        _say(f"re-executing {sys.executable} failed ({e}); continuing without librmcp.so")
        return False
