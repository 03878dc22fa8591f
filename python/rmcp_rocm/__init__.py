"""rmcp for Python programs: where the wheel's librmcp.so is, and a way to
load it from inside a script whose launch command cannot change.

    import rmcp_rocm
    rmcp_rocm.preload()      # first lines of train.py, before importing torch

preload() re-executes the interpreter once, with the same arguments, with
librmcp.so first in LD_PRELOAD and, when librmcp-audit.so lies beside it,
that audit module first in LD_AUDIT (as `rmcp run` does: it extends the hooks
to bindings that reach HIP through dlopen/dlsym, ctypes and Cython alike); in the re-executed process (or in one started
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
  - `python3 -c CODE` on Python < 3.10 (no sys.orig_argv to rebuild it from);
  - a script that cannot be read a second time: one read from a pipe
    (`python3 <(cat s.py)`, `cat s.py | python3 /dev/stdin`), a FIFO, or a
    file deleted or moved away since the interpreter started.
When preload() returns False it leaves os.environ as it found it, so child
processes are not handed a half-done LD_PRELOAD.
Everything done before preload() in the script runs twice; side effects there
(files written, output printed) happen twice too.
"""

import os
import re
import stat
import sys

__all__ = ["library_path", "is_loaded", "preload"]

_NAME = re.compile(r"librmcp\.so(\.[0-9]+)*$")
# A symbol only librmcp exports (include/rmcp.h): how is_loaded() knows the
# library whatever its file is called.
_SYMBOL = "rmcp_version"
# Set by preload() just before it re-executes: who re-executed (see _self_id)
# and what LD_PRELOAD held before (absent: it was unset), so the re-executed
# process can tell it is that process and undo the change if loading failed.
_MARK = "RMCP_ROCM_REEXEC"
_SAVED = "RMCP_ROCM_SAVED_LD_PRELOAD"
_SAVED_AUDIT = "RMCP_ROCM_SAVED_LD_AUDIT"
_AUDIT = "librmcp-audit.so"


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
    """True when librmcp is loaded into this process's global symbol scope
    (preloaded, in /etc/ld.so.preload, or linked), whatever its file name:
    the process exports librmcp's rmcp_version."""
    try:
        import ctypes

        return hasattr(ctypes.CDLL(None), _SYMBOL)
    except (ImportError, OSError):
        return False


def _self_id():
    """This process across an exec, and no other: the pid namespace, the pid
    in it and the start time (exec keeps all three; a child, or a pid 1 in
    another namespace, differs in at least one)."""
    try:
        ns = os.readlink("/proc/self/ns/pid")
    except OSError:
        ns = "?"
    try:
        with open("/proc/self/stat", "rb") as f:
            # Field 22, counted after the ")" that ends the command name.
            start = f.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError, UnicodeDecodeError):
        start = "?"
    return f"{ns}:{os.getpid()}:{start}"


def _script_unreadable(path):
    """Why the script at `path` cannot be read again by a new interpreter,
    or None (a regular file, or a directory/zip application)."""
    try:
        st = os.stat(path)
    except OSError as e:
        return f"the script {path!r} can no longer be opened ({e.strerror})"
    if stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode):
        return None
    return (f"the script {path!r} is not a regular file (a pipe, FIFO or "
            "device): its text cannot be read a second time")


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
    if argv0 == "-c":
        if not hasattr(sys, "orig_argv"):
            return "python -c on Python < 3.10 cannot be re-executed (no sys.orig_argv)"
        return None
    return _script_unreadable(argv0)


def _preload_value(lib, old):
    rest = [e for e in re.split(r"[:\s]+", old or "") if e and not _is_rmcp(e)]
    return ":".join([lib] + rest)


def _audit_beside(lib):
    """librmcp-audit.so beside `lib` (as given, then where its symlinks lead),
    or None."""
    for d in (os.path.dirname(lib), os.path.dirname(os.path.realpath(lib))):
        p = os.path.join(d, _AUDIT)
        if os.path.isfile(p):
            return p
    return None


def _audit_value(audit, old):
    rest = [e for e in (old or "").split(":") if e and os.path.basename(e) != _AUDIT]
    return ":".join([audit] + rest)


def _restore(saved, saved_audit=None):
    """Puts LD_PRELOAD back as it was before preload() changed it, and
    LD_AUDIT when preload() changed it too (`saved_audit`: "=" + the old
    value, or "" when it was unset; None: not changed)."""
    if saved is None:
        os.environ.pop("LD_PRELOAD", None)
    else:
        os.environ["LD_PRELOAD"] = saved
    if saved_audit == "":
        os.environ.pop("LD_AUDIT", None)
    elif saved_audit is not None:
        os.environ["LD_AUDIT"] = saved_audit[1:]
    os.environ.pop(_MARK, None)
    os.environ.pop(_SAVED, None)
    os.environ.pop(_SAVED_AUDIT, None)


def preload(library=None):
    """Make sure librmcp.so is loaded in this Python process.

    Returns True when it already is. Otherwise re-executes the interpreter
    with it in LD_PRELOAD (does not return), or, where that cannot work,
    prints why on stderr and returns False with os.environ unchanged.
    `library` defaults to $RMCP_LIBRARY, then the wheel's copy
    (library_path())."""
    mark = os.environ.pop(_MARK, None)
    saved = os.environ.pop(_SAVED, None)
    saved_audit = os.environ.pop(_SAVED_AUDIT, None)
    reexecuted = mark is not None and mark == _self_id()
    if is_loaded():
        return True
    if reexecuted:
        tried = os.environ.get("LD_PRELOAD", "")
        _restore(saved, saved_audit)
        _say(f"librmcp.so is still not loaded after re-executing with LD_PRELOAD={tried!r} "
             "(the dynamic loader refused it, see its message above, or that file "
             "is not librmcp); continuing without it, LD_PRELOAD restored")
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
    old = os.environ.get("LD_PRELOAD")
    old_audit = os.environ.get("LD_AUDIT")
    audit = _audit_beside(lib)
    # Without it (a librmcp.so copied alone), preload alone, as `rmcp run
    # --no-audit` does.
    if audit is not None:
        os.environ["LD_AUDIT"] = _audit_value(os.path.abspath(audit), old_audit)
        os.environ[_SAVED_AUDIT] = "" if old_audit is None else "=" + old_audit
    os.environ["LD_PRELOAD"] = _preload_value(lib, old)
    os.environ[_MARK] = _self_id()
    if old is not None:
        os.environ[_SAVED] = old
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execv(sys.executable, [sys.executable] + args)
    except OSError as e:
        _restore(old, os.environ.get(_SAVED_AUDIT))
        _say(f"re-executing {sys.executable} failed ({e}); continuing without librmcp.so")
        return False
