//! `rmcp_rocm.preload()` and `is_loaded()` (python/rmcp_rocm) under hostile
//! launches: scripts that cannot be read twice, libraries the loader refuses,
//! a failing exec, a library under another file name, and a child that is
//! pid 1 of another PID namespace. Runs the source tree's package with
//! Debian's python3 and the cargo-built librmcp.so (no wheel needed).

mod common;

use common::{librmcp, stand_in_library, tempdir, wrong_architecture_copy};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The script: prints `top` (to count executions), calls preload(), then
/// prints what it returned and what os.environ holds, and runs a child
/// process whose stderr shows any loader error the environment causes.
fn script(dir: &Path, name: &str, before: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(
        &p,
        format!(
            "import os, subprocess, sys\n\
             print('top', file=sys.stderr, flush=True)\n\
             {before}\n\
             import rmcp_rocm\n\
             r = rmcp_rocm.preload()\n\
             child = subprocess.run(['/bin/true'], stderr=subprocess.PIPE).stderr.decode()\n\
             print('after', r, repr(os.environ.get('LD_PRELOAD')), \
             sorted(k for k in os.environ if k.startswith('RMCP_ROCM')), repr(child), flush=True)\n"
        ),
    )
    .unwrap();
    p
}

fn python(dir: &Path, shell: &str, lib: Option<&Path>) -> Output {
    let mut c = Command::new("bash");
    c.args(["-c", shell])
        .current_dir(dir)
        .env("PYTHONPATH", common::manifest_dir().join("python"))
        .env_remove("LD_PRELOAD")
        .env_remove("LD_AUDIT")
        .env_remove("RMCP_LIBRARY")
        .env_remove("RMCP_ROCM_REEXEC")
        .env_remove("RMCP_ROCM_SAVED_LD_PRELOAD");
    if let Some(l) = lib {
        c.env("RMCP_LIBRARY", l);
    }
    c.output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn stderr_lines(o: &Output, prefix: &str) -> usize {
    String::from_utf8_lossy(&o.stderr)
        .lines()
        .filter(|l| l.starts_with(prefix))
        .count()
}

/// Issue 18 item 2: a script read from a pipe, a FIFO or deleted before
/// preload() is not re-executed (the new interpreter would read nothing,
/// hang, or fail to open it): one line, False, and the rest of the script runs.
#[test]
fn scripts_that_cannot_be_read_again_are_not_re_executed() {
    let d = tempdir("py-unreadable");
    let lib = librmcp();
    script(&d, "s.py", "");
    script(&d, "gone.py", "os.unlink(__file__)");
    for (what, shell) in [
        ("process substitution", "python3 <(cat s.py)"),
        ("pipe to /dev/stdin", "cat s.py | python3 /dev/stdin"),
        (
            "FIFO",
            "mkfifo f.py && { cat s.py > f.py & } && timeout 30 python3 f.py",
        ),
        ("deleted script", "python3 gone.py"),
    ] {
        let o = python(&d, shell, Some(&lib));
        let out = String::from_utf8_lossy(&o.stdout);
        assert_eq!(o.status.code(), Some(0), "{what}: {}", text(&o));
        assert!(
            out.starts_with("after False None [] ''"),
            "{what}: {}",
            text(&o)
        );
        assert_eq!(stderr_lines(&o, "top"), 1, "{what}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        let lines: Vec<&str> = err
            .lines()
            .filter(|l| l.starts_with("rmcp_rocm:"))
            .collect();
        assert_eq!(lines.len(), 1, "{what}: {}", text(&o));
        assert!(
            lines[0].starts_with("rmcp_rocm: not re-executing: the script ")
                && (lines[0].contains("not a regular file")
                    || lines[0].contains("can no longer be opened")),
            "{what}: {}",
            text(&o)
        );
        let _ = std::fs::remove_file(d.join("f.py"));
    }
    // A regular script is still re-executed once and finds the library.
    let o = python(&d, "python3 s.py", Some(&lib));
    assert!(
        String::from_utf8_lossy(&o.stdout).starts_with("after True '"),
        "{}",
        text(&o)
    );
    assert_eq!(stderr_lines(&o, "top"), 2, "{}", text(&o));
    let _ = std::fs::remove_dir_all(&d);
}

/// Issue 18 item 8: when preload() fails (the loader refuses the library:
/// not ELF, another architecture; or exec fails) it returns False with
/// LD_PRELOAD and its own variables as they were, so children run clean.
#[test]
fn a_failed_preload_leaves_the_environment_as_it_was() {
    let d = tempdir("py-restore");
    let junk = d.join("junk.so");
    std::fs::write(&junk, b"not a library").unwrap();
    let arm = d.join("librmcp-arm.so");
    wrong_architecture_copy(&librmcp(), &arm);
    let other = stand_in_library(&d, "libother.so");
    script(&d, "s.py", "");
    for (what, lib) in [("not ELF", &junk), ("wrong architecture", &arm)] {
        for (old, shown) in [
            (None, "None".to_string()),
            (Some(&other), format!("'{}'", other.display())),
        ] {
            let shell = match old {
                Some(o) => format!("LD_PRELOAD={} python3 s.py", o.display()),
                None => "python3 s.py".to_string(),
            };
            let o = python(&d, &shell, Some(lib));
            let out = String::from_utf8_lossy(&o.stdout);
            assert_eq!(o.status.code(), Some(0), "{what}: {}", text(&o));
            assert!(
                out.starts_with(&format!("after False {shown} [] ''")),
                "{what}, LD_PRELOAD {shown}: {}",
                text(&o)
            );
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(
                err.contains("rmcp_rocm: librmcp.so is still not loaded after re-executing")
                    && err.contains("LD_PRELOAD restored"),
                "{what}: {}",
                text(&o)
            );
        }
    }
    // exec itself fails.
    script(&d, "noexec.py", "sys.executable = '/nonexistent/python3'");
    let o = python(&d, "python3 noexec.py", Some(&librmcp()));
    assert!(
        String::from_utf8_lossy(&o.stdout).starts_with("after False None [] ''"),
        "{}",
        text(&o)
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("failed"),
        "{}",
        text(&o)
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// Issue 18 item 9: is_loaded() knows librmcp by its exported symbol, not
/// by its file name: `librmcp-0.1.0.so` (which `rmcp run` accepts) counts,
/// an unrelated library named librmcp.so does not.
#[test]
fn is_loaded_knows_the_library_by_what_it_exports() {
    let d = tempdir("py-symbol");
    let versioned = d.join("librmcp-0.1.0.so");
    std::fs::copy(librmcp(), &versioned).unwrap();
    let imposter = stand_in_library(&d, "librmcp.so");
    let probe = "python3 -c 'import rmcp_rocm; print(rmcp_rocm.is_loaded())'";
    let o = python(
        &d,
        &format!("LD_PRELOAD={} {probe}", versioned.display()),
        None,
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout), "True\n", "{}", text(&o));
    let o = python(
        &d,
        &format!("LD_PRELOAD={} {probe}", imposter.display()),
        None,
    );
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "False\n",
        "{}",
        text(&o)
    );
    // preload() with RMCP_LIBRARY naming the versioned file: one re-exec, True.
    script(&d, "s.py", "");
    let o = python(&d, "python3 s.py", Some(&versioned));
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .starts_with(&format!("after True '{}' [] ''", versioned.display())),
        "{}",
        text(&o)
    );
    assert_eq!(stderr_lines(&o, "top"), 2, "{}", text(&o));
    assert_eq!(stderr_lines(&o, "rmcp_rocm:"), 0, "{}", text(&o));
    let _ = std::fs::remove_dir_all(&d);
}

/// Issue 18 item 10: a process that preload() re-executed as pid 1 of a PID
/// namespace starts a child that is pid 1 of another namespace, without
/// LD_PRELOAD. The child's own preload() must not take the parent's re-exec
/// for its own: it re-executes and loads the library.
#[test]
fn a_pid_1_child_in_another_namespace_is_not_taken_for_its_re_executed_parent() {
    let ok = Command::new("unshare")
        .args(["--pid", "--fork", "true"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        common::skip_test(
            "a_pid_1_child_in_another_namespace_is_not_taken_for_its_re_executed_parent",
            "`unshare --pid --fork` is not permitted here",
            "run as root (util-linux unshare)",
        );
        return;
    }
    let d = tempdir("py-pidns");
    script(&d, "inner.py", "");
    std::fs::write(
        d.join("outer.py"),
        "import os, subprocess, sys\n\
         import rmcp_rocm\n\
         assert os.getpid() == 1, os.getpid()\n\
         print('outer', rmcp_rocm.preload(), flush=True)\n\
         env = {k: v for k, v in os.environ.items() if k != 'LD_PRELOAD'}\n\
         subprocess.run(['unshare', '--pid', '--fork', sys.executable, 'inner.py'], env=env, check=True)\n",
    )
    .unwrap();
    let o = python(
        &d,
        "unshare --pid --fork python3 outer.py",
        Some(&librmcp()),
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.starts_with("outer True\n"), "{}", text(&o));
    assert!(
        out.lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("after True '")),
        "{}",
        text(&o)
    );
    assert_eq!(stderr_lines(&o, "rmcp_rocm:"), 0, "{}", text(&o));
    let _ = std::fs::remove_dir_all(&d);
}

/// Issue 19 item 5: a script that reaches HIP through ctypes (dlopen + dlsym,
/// as Python bindings do) and starts with preload() gets what `rmcp run`
/// gives it: preload() also sets the audit module found beside librmcp.so,
/// so its hipHostMalloc(4096, 0) reaches the runtime double as NonCoherent.
/// Without librmcp-audit.so beside the library, preload alone: the call
/// bypasses the hook.
#[test]
fn preload_sets_the_audit_module_for_dlsym_callers() {
    let f = common::fixtures();
    let d = tempdir("py-audit");
    let with = d.join("with");
    let without = d.join("without");
    for dir in [&with, &without] {
        std::fs::create_dir_all(dir).unwrap();
        std::os::unix::fs::symlink(librmcp(), dir.join("librmcp.so")).unwrap();
    }
    std::os::unix::fs::symlink(common::librmcp_audit(), with.join("librmcp-audit.so")).unwrap();
    std::fs::write(
        d.join("client.py"),
        "import rmcp_rocm\n\
         rmcp_rocm.preload()\n\
         import ctypes, os, sys\n\
         hip = ctypes.CDLL(sys.argv[1])\n\
         p = ctypes.c_void_p()\n\
         rc = hip.hipHostMalloc(ctypes.byref(p), ctypes.c_size_t(4096), ctypes.c_uint(0))\n\
         print('rc', rc, os.path.basename(os.environ.get('LD_AUDIT', '-')), flush=True)\n",
    )
    .unwrap();
    let run = |dir: &Path| -> (String, String) {
        let log = dir.join("hip.log");
        let o = Command::new("bash")
            .args(["-c", "python3 client.py \"$HIP\""])
            .current_dir(&d)
            .env("PYTHONPATH", common::manifest_dir().join("python"))
            .env("HIP", &f.hip6)
            .env("RMCP_LIBRARY", dir.join("librmcp.so"))
            .env("FAKE_HIP_DEVICES", "gfx1030")
            .env("FAKE_HIP_LOG", &log)
            .env_remove("LD_PRELOAD")
            .env_remove("LD_AUDIT")
            .env_remove("RMCP_ROCM_REEXEC")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        assert_eq!(stderr_lines(&o, "rmcp"), 0, "{}", text(&o));
        let record = std::fs::read_to_string(&log).unwrap_or_default();
        let flags = record
            .lines()
            .find(|l| l.starts_with("hipHostMalloc "))
            .and_then(|l| l.split_whitespace().find(|w| w.starts_with("flags=")))
            .unwrap_or_else(|| panic!("no hipHostMalloc in the record\n{record}\n{}", text(&o)))
            .to_string();
        (String::from_utf8_lossy(&o.stdout).into_owned(), flags)
    };
    assert_eq!(
        run(&with),
        ("rc 0 librmcp-audit.so\n".into(), "flags=0x80000000".into())
    );
    assert_eq!(run(&without), ("rc 0 -\n".into(), "flags=0x0".into()));
    let _ = std::fs::remove_dir_all(&d);
}
