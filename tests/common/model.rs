//! The real ROCm 7.2.4 stack on the modelled GPU (tests/model), shared by
//! tests/model_gpu.rs and tests/model_fault.rs: where scripts/setup-rocm.sh
//! unpacked and built the runtimes, the model topologies, a clean runtime
//! environment for a child, and a limit on how many model processes run at once.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// Where scripts/setup-rocm.sh put the runtimes (RMCP_ROCM_DIR, else .rocm).
pub fn rocm_dir() -> PathBuf {
    std::env::var_os("RMCP_ROCM_DIR")
        .map_or_else(|| super::manifest_dir().join(".rocm"), PathBuf::from)
}

/// ROCm 7.2.4 as unpacked by scripts/setup-rocm.sh.
pub struct Stack {
    pub include: PathBuf,
    pub libdir: PathBuf,
    pub loader: PathBuf,
    /// Holds the patched libhsa-runtime64.so.1 for gfx10 topologies.
    pub gfx10: PathBuf,
}

impl Stack {
    /// Compiler arguments for a C program that includes HIP 7.2.4's headers.
    pub fn hip_include_args(&self) -> Vec<String> {
        vec![
            "-D__HIP_PLATFORM_AMD__".into(),
            format!("-I{}", self.include.display()),
        ]
    }

    /// Linker arguments for a program or library that calls HIP 7.2.4 (and
    /// the ROCm libraries in `more`, as `-l` arguments).
    pub fn hip_link_args(&self, more: &[&str]) -> Vec<String> {
        let mut a = vec![format!("-L{}", self.libdir.display()), "-lamdhip64".into()];
        a.extend(more.iter().map(|m| m.to_string()));
        a.extend([
            "-ldl".into(),
            format!("-Wl,-rpath-link,{}", self.libdir.display()),
            // The 7.2.4 libraries need sid's glibc, which they get at run
            // time from exp-root's loader; bookworm's linker can't see it.
            "-Wl,--allow-shlib-undefined".into(),
        ]);
        a
    }
}

/// The stack, or which file of it is missing.
pub fn stack() -> Result<Stack, String> {
    let root = rocm_dir().join("exp-root");
    let s = Stack {
        include: root.join("usr/include"),
        libdir: root.join("usr/lib/x86_64-linux-gnu"),
        loader: root.join("usr/lib64/ld-linux-x86-64.so.2"),
        gfx10: rocm_dir().join("exp-gfx10"),
    };
    for p in [
        s.include.join("hip/hip_runtime_api.h"),
        s.include.join("hsa/hsa_ext_amd.h"),
        s.libdir.join("libamdhip64.so.7"),
        s.libdir.join("libamdhip64.so"),
        s.libdir.join("libhsa-runtime64.so"),
        s.loader.clone(),
        s.gfx10.join("libhsa-runtime64.so.1"),
    ] {
        if !p.exists() {
            return Err(format!("ROCm 7.2.4 file {} is missing", p.display()));
        }
    }
    Ok(s)
}

/// The directory of the ROCr built from source whose model mode can raise
/// memory faults (scripts/setup-rocm.sh, step 4), or which file is missing.
pub fn fault_rocr() -> Result<PathBuf, String> {
    let dir = rocm_dir().join("exp-fault");
    for f in ["libhsa-runtime64.so.1", "librocr_ais_stubs.so"] {
        if !dir.join(f).exists() {
            return Err(format!(
                "faulting ROCr file {} is missing",
                dir.join(f).display()
            ));
        }
    }
    Ok(dir)
}

/// A model topology under tests/model/topologies.
pub fn topology(name: &str) -> PathBuf {
    super::manifest_dir()
        .join("tests/model/topologies")
        .join(name)
}

/// A directory ROOT with ROOT/sys/class/kfd/kfd/topology linked to
/// `topology`: what RMCP_SYSFS_ROOT and `rmcp doctor --sysfs-root` read.
pub fn sysfs_root(topology: &Path, tag: &str) -> PathBuf {
    let root = super::tempdir(tag);
    let kfd = root.join("sys/class/kfd/kfd");
    std::fs::create_dir_all(&kfd).unwrap();
    std::os::unix::fs::symlink(topology, kfd.join("topology")).unwrap();
    root
}

/// Variable prefixes a model run must not inherit from the test's own
/// environment (loader, rmcp, HIP and HSA settings).
const RUNTIME_ENV_PREFIXES: &[&str] = &[
    "LD_", "RMCP_", "HIP_", "HSA_", "AMD_", "ROCR_", "GPU_", "PROBE_",
];

/// Removes every inherited variable with one of RUNTIME_ENV_PREFIXES.
pub fn clear_runtime_env(cmd: &mut Command) {
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if RUNTIME_ENV_PREFIXES.iter().any(|p| k.starts_with(p)) {
            cmd.env_remove(&k);
        }
    }
}

/// At most this many model processes at once. ROCr 7.2.4 in model mode
/// reaches 0.2 to 4 GB of resident memory per process while it starts (an
/// anonymous mapping that grows during initialisation, with and without
/// rmcp alike; measured with /usr/bin/time -v), and CI has 2 cores.
pub const MAX_PARALLEL_RUNS: usize = 2;

/// Runs `f` once fewer than MAX_PARALLEL_RUNS others are running.
pub fn throttled<R>(f: impl FnOnce() -> R) -> R {
    static SLOTS: (Mutex<usize>, Condvar) = (Mutex::new(0), Condvar::new());
    let mut busy = SLOTS.0.lock().unwrap();
    while *busy >= MAX_PARALLEL_RUNS {
        busy = SLOTS.1.wait(busy).unwrap();
    }
    *busy += 1;
    drop(busy);
    struct Release;
    impl Drop for Release {
        fn drop(&mut self) {
            *SLOTS.0.lock().unwrap() -= 1;
            SLOTS.1.notify_one();
        }
    }
    let _release = Release;
    f()
}

/// Runs `cmd` (stdin from /dev/null, output captured) in a process group of
/// its own; past `timeout` the whole group is killed and the test panics with
/// what the command had printed.
pub fn output_within(cmd: &mut Command, timeout: Duration) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let command = format!("{cmd:?}");
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {command}: {e}"));
    let pgid = child.id() as libc::pid_t;
    let mut out_pipe = child.stdout.take().unwrap();
    let mut err_pipe = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out_pipe.read_to_end(&mut v);
        v
    });
    let err_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err_pipe.read_to_end(&mut v);
        v
    });
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if start.elapsed() > timeout {
            // SAFETY: plain syscall on the process group we created.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
            let _ = child.wait();
            let out = String::from_utf8_lossy(&out_t.join().unwrap()).into_owned();
            let err = String::from_utf8_lossy(&err_t.join().unwrap()).into_owned();
            panic!("timed out after {timeout:?}: {command}\n--- stdout\n{out}--- stderr\n{err}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: out_t.join().unwrap(),
        stderr: err_t.join().unwrap(),
    }
}

/// A document generated by a test: with RMCP_BLESS=1 writes `doc` to
/// `rel_path` (under the crate root); otherwise panics when the committed copy
/// differs, showing the first differing lines and the command that regenerates it.
pub fn check_generated_doc(rel_path: &str, doc: &str, regenerate: &str) {
    let path = super::manifest_dir().join(rel_path);
    if std::env::var("RMCP_BLESS").is_ok_and(|v| v == "1") {
        std::fs::write(&path, doc).unwrap_or_else(|e| panic!("write {rel_path}: {e}"));
        return;
    }
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    if current != doc {
        let diff: Vec<String> = doc
            .lines()
            .zip(current.lines().chain(std::iter::repeat("")))
            .filter(|(a, b)| a != b)
            .take(10)
            .map(|(a, b)| format!("  generated: {a}\n  committed: {b}"))
            .collect();
        panic!(
            "{rel_path} is stale; regenerate it with `{regenerate}`\n{}",
            diff.join("\n")
        );
    }
}
