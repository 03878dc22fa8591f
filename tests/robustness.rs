//! Robustness: librmcp.so is preloaded into every process of a training job,
//! so it must never be the thing that crashes, hangs or garbles one. Each
//! test is a real process under the real dynamic loader against the C test
//! doubles (tests/double/), asserting on what reached the runtime and what
//! the user saw.
//!
//! The list, and where each item is proven:
//! - fork, then allocate in the child: `hip_shim::forked_child_is_covered`;
//!   here, forks taken while other threads are inside the hooks;
//! - another library's constructor calling a hook before rmcp initialised:
//!   `hip_shim::hook_called_from_another_library_constructor`;
//! - dlclose and dlopen again of a module that uses the runtime: here;
//! - a process with no HIP runtime at all: here;
//! - a runtime without the newer symbols (5.x-like double):
//!   `hip_shim::rocm5_runtime_old_property_layout_and_missing_symbols`;
//! - 16 threads racing the first call:
//!   `hip_shim::many_threads_race_the_first_call_and_initialise_once`;
//! - a panic injected in the policy path fails open: here (feature
//!   `fault-injection`, so `cargo test --all-features`);
//! - every RMCP_* variable given garbage, empty and very long values: here
//!   (the unit and property tests cover the parser itself);
//! - an AT_SECURE (setuid) process, where rmcp does nothing: here.

mod common;

use common::{compile_c, fixtures, librmcp, manifest_dir, Call, Program, Run, Scenario};
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

const NON_COHERENT: u64 = 0x8000_0000;
const RDNA2: &str = "gfx1030";

fn rmcp_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.starts_with("rmcp:")).collect()
}

/// The pool each recorded HSA allocation used.
fn hsa_pools(r: &Run) -> Vec<String> {
    r.calls_named("hsa_amd_memory_pool_allocate")
        .iter()
        .map(|c| c.get("pool").unwrap_or("?").to_string())
        .collect()
}

fn tests_dir(rel: &str) -> PathBuf {
    manifest_dir().join("tests").join(rel)
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A fresh directory under the system temp dir, readable by every user.
fn world_readable_tempdir(tag: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "rmcp-robustness-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
    d
}

// ---------------------------------------------------------------------------
// fork while other threads are inside the hooks
// ---------------------------------------------------------------------------

#[test]
fn forks_taken_while_other_threads_allocate_leave_a_working_child() {
    // Each of 6 threads allocates and then forks while the others are
    // still inside hooks (holding registry shard locks, resolving the
    // runtime on the first call): the atfork handlers must hand every child
    // unlocked state. A deadlock shows as the timeout.
    for round in 0..3 {
        let r = Scenario::new(Program::DriverExe)
            .devices(RDNA2)
            .preload(true)
            .timeout(Duration::from_secs(60))
            .args([
                "threads:6",
                "hipHostMalloc:4096:0",
                "hipExtMallocWithFlags:64:1",
                "fork",
                "hipHostMalloc:4096:0",
                "hipMalloc:64",
                "hipExtMallocWithFlags:64:3",
                "freeall",
            ])
            .run();
        r.assert_success();
        let children: Vec<_> = r
            .ops()
            .into_iter()
            .filter(|o| o.op == "fork")
            .map(|o| o.get("child").unwrap_or("?").to_string())
            .collect();
        assert_eq!(children, vec!["0"; 6], "round {round}\n{r}");
        // 6 parents + 6 children, every one rewritten.
        assert_eq!(
            r.flags_of("hipHostMalloc"),
            vec![NON_COHERENT; 12],
            "round {round}\n{r}"
        );
        assert_eq!(
            r.flags_of("hipExtMallocWithFlags"),
            vec![0; 12],
            "round {round}\n{r}"
        );
        assert!(rmcp_lines(&r.stderr).is_empty(), "{r}");
    }
}

// ---------------------------------------------------------------------------
// dlclose and dlopen again
// ---------------------------------------------------------------------------

fn reopen_host() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        let exe = fixtures().dir.join("reopen_host");
        compile_c(&exe, &[tests_dir("programs/reopen_host.c")], &["-ldl"]);
        exe
    })
}

#[test]
fn a_module_closed_and_opened_again_is_still_covered() {
    let ops = [
        "hipHostMalloc:4096:0",
        "hipExtMallocWithFlags:64:1",
        "hipMallocManaged:64:1",
        "freeall",
    ];
    let r = Scenario::new(Program::Path(reopen_host().to_path_buf()))
        .devices(RDNA2)
        .preload(true)
        .env("RMCP_LOG", "info")
        .args(ops)
        .run();
    r.assert_success();
    for line in ["round 1 rc=0", "closed rc=0", "round 2 rc=0"] {
        assert!(r.stdout.contains(line), "{line}\n{r}");
    }
    // Both rounds rewritten: the runtime rmcp resolved in round 1 stays
    // mapped (rmcp holds a reference) and still answers in round 2.
    assert_eq!(r.flags_of("hipHostMalloc"), vec![NON_COHERENT; 2], "{r}");
    assert_eq!(r.flags_of("hipExtMallocWithFlags"), vec![0, 0], "{r}");
    assert_eq!(r.calls_named("hipMemAdvise").len(), 2, "{r}");
    // Only the exit summary, which counts both rounds.
    assert_eq!(
        rmcp_lines(&r.stderr),
        vec!["rmcp: info: summary: calls/rewritten: hipFree 4/0, hipHostMalloc 2/2, hipHostFree 2/0, hipExtMallocWithFlags 2/2, hipMallocManaged 2/2; GPU memory faults: 0; devices targeted: 0 (gfx1030); not targeted: none"],
        "{r}"
    );

    // Without rmcp the same program asks for (and gets) coherent memory.
    let plain = Scenario::new(Program::Path(reopen_host().to_path_buf()))
        .devices(RDNA2)
        .args(ops)
        .run();
    plain.assert_success();
    assert_eq!(plain.flags_of("hipHostMalloc"), vec![0, 0], "{plain}");
}

// ---------------------------------------------------------------------------
// no HIP runtime at all
// ---------------------------------------------------------------------------

/// tests/c/no_runtime.c: calls hipHostMalloc, linked to librmcp only.
fn no_runtime_exe() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        let exe = fixtures().dir.join("no_runtime_robustness");
        let lib_dir = librmcp().parent().unwrap().to_path_buf();
        compile_c(
            &exe,
            &[tests_dir("c/no_runtime.c")],
            &["-L", s(&lib_dir), "-lrmcp"],
        );
        exe
    })
}

/// Runs the no-runtime program with only librmcp's directory on the library
/// path (not the doubles'), and a clean environment.
fn run_without_doubles(extra_env: &[(&str, &OsStr)]) -> std::process::Output {
    let lib_dir = librmcp().parent().unwrap().to_path_buf();
    let mut cmd = Command::new(no_runtime_exe());
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("LD_LIBRARY_PATH", &lib_dir)
        .env("FAKE_HIP_DEVICES", RDNA2);
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    cmd.output().expect("run no_runtime")
}

fn system_has_a_hip_runtime() -> bool {
    Command::new("/sbin/ldconfig")
        .arg("-p")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("libamdhip64.so"))
        .unwrap_or(false)
}

#[test]
fn a_process_with_no_hip_runtime_gets_an_error_code_not_a_crash() {
    let out = run_without_doubles(&[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let ctx = format!("status {:?}\n{stdout}\n{stderr}", out.status);
    assert_eq!(out.status.signal(), None, "{ctx}");
    let rc: i64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("hipHostMalloc rc="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no hipHostMalloc line\n{ctx}"));
    let lines = rmcp_lines(&stderr);
    if system_has_a_hip_runtime() {
        // rmcp's last resort loads the system's runtime by its soname (this
        // machine and CI have Debian's ROCm 5.2.3): with no GPU it answers
        // with its own error code. Either way nothing crashed.
        assert!(lines.len() <= 1, "{ctx}");
        assert!(out.status.code() == Some(0) || out.status.code() == Some(1));
        eprintln!("system HIP runtime present: hipHostMalloc returned {rc}");
    } else {
        assert_eq!(rc, 3, "hipErrorNotInitialized\n{ctx}");
        assert_eq!(lines.len(), 1, "{ctx}");
        assert!(
            lines[0].contains("hipHostMalloc was called but no HIP runtime was found"),
            "{ctx}"
        );
    }
}

#[test]
fn a_library_that_is_not_a_hip_runtime_is_refused_cleanly() {
    // RMCP_HIP_LIBRARY is tried before the default sonames, so this case is
    // the same on every machine: the library loads but has no HIP symbols.
    let libm = ["/lib/x86_64-linux-gnu/libm.so.6", "/usr/lib64/libm.so.6"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("libm.so.6");
    let out = run_without_doubles(&[("RMCP_HIP_LIBRARY", OsStr::new(libm))]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("hipHostMalloc rc=801"),
        "{stdout}\n{stderr}"
    );
    assert_eq!(
        rmcp_lines(&stderr),
        vec![
            "rmcp: warn: hipHostMalloc is not in this HIP runtime; returning hipErrorNotSupported"
        ],
        "{stderr}"
    );
}

// ---------------------------------------------------------------------------
// a panic in the policy path
// ---------------------------------------------------------------------------

#[cfg(feature = "fault-injection")]
#[test]
fn a_panic_in_the_policy_fails_open_and_forwards_the_original_call() {
    let r = Scenario::new(Program::DriverExe)
        .devices(RDNA2)
        .preload(true)
        .env("RMCP_TEST_PANIC", "policy")
        .args(["hipHostMalloc:4096:0", "freeall"])
        .run();
    r.assert_success();
    assert_eq!(r.flags_of("hipHostMalloc"), vec![0], "{r}");
    let lines = rmcp_lines(&r.stderr);
    assert_eq!(lines.len(), 1, "{r}");
    assert!(
        lines[0].starts_with("rmcp: error: internal error at src/interpose/hooks/forward.rs:")
            && lines[0].ends_with("RMCP_TEST_PANIC=policy; the call was forwarded unchanged"),
        "{r}"
    );
    // Nothing else of the panic reaches the user (no std message, no
    // backtrace note).
    assert!(!r.stderr.contains("panicked"), "{r}");

    // Every entry point with a policy decision, HSA included.
    let r = Scenario::new(Program::DriverExe)
        .devices(RDNA2)
        .preload(true)
        .env("RMCP_TEST_PANIC", "policy")
        .args([
            "hipHostMalloc:64:0",
            "hipHostAlloc:64:0",
            "hipExtHostAlloc:64:0",
            "hipMemAllocHost:64",
            "hipExtMallocWithFlags:64:1",
            "hipMallocManaged:64:1",
            "hipMalloc:64",
            "hsa_init",
            "hsa_alloc:0:fine:4096",
            "hsa_free",
            "freeall",
        ])
        .run();
    r.assert_success();
    assert_eq!(r.flags_of("hipHostMalloc"), vec![0], "{r}");
    assert_eq!(r.flags_of("hipHostAlloc"), vec![0], "{r}");
    assert_eq!(r.flags_of("hipExtHostAlloc"), vec![0], "{r}");
    assert_eq!(r.calls_named("hipMemAllocHost").len(), 1, "{r}");
    assert_eq!(r.flags_of("hipExtMallocWithFlags"), vec![1], "{r}");
    assert!(r.calls_named("hipMemAdvise").is_empty(), "{r}");
    assert_eq!(hsa_pools(&r), vec!["fine"], "{r}");
    let lines = rmcp_lines(&r.stderr);
    assert!(!lines.is_empty(), "{r}");
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("rmcp: error: internal error at ")),
        "{r}"
    );
}

// ---------------------------------------------------------------------------
// every RMCP_* variable: garbage, empty, very long
// ---------------------------------------------------------------------------

/// Every RMCP_* variable the library reads, from its own vocabulary
/// (RMCP_TEST_PANIC only in fault-injection builds; any value but "policy"
/// must do nothing).
const VARIABLES: &[&str] = rmcp::config::RMCP_VARIABLES;

const OPS: &[&str] = &[
    "hipHostMalloc:4096:0",
    "hipExtMallocWithFlags:64:1",
    "hsa_init",
    "hsa_alloc:0:fine:4096",
    "hsa_free",
    "freeall",
];

fn run_with_all(value: &OsStr) -> Run {
    let mut sc = Scenario::new(Program::DriverExe)
        .devices(RDNA2)
        .preload(true);
    for v in VARIABLES {
        sc = sc.env(v, value);
    }
    sc.args(OPS).run()
}

/// The defaults still apply: rewritten host memory, Finegrained made
/// Default, the fine-grained pool redirected to the coarse one.
fn assert_defaults_applied(r: &Run) {
    r.assert_success();
    assert_eq!(r.flags_of("hipHostMalloc"), vec![NON_COHERENT], "{r}");
    assert_eq!(r.flags_of("hipExtMallocWithFlags"), vec![0], "{r}");
    assert_eq!(hsa_pools(r), vec!["coarse"], "{r}");
}

/// Each message names one variable, is one short line of printable text,
/// and the variables named are exactly `expected`, once each.
fn assert_one_line_each(r: &Run, expected: &[&str]) {
    let lines = rmcp_lines(&r.stderr);
    let mut named: Vec<&str> = Vec::new();
    for l in &lines {
        assert!(l.len() < 400, "long message: {l}");
        assert!(
            l.starts_with("rmcp: warn: RMCP_")
                && (l.contains(" is not valid (") || l.contains(", which is not expanded (")),
            "{l}\n{r}"
        );
        assert!(!l.chars().any(|c| c.is_control()), "{l:?}");
        let var = VARIABLES
            .iter()
            .find(|v| l.starts_with(&format!("rmcp: warn: {v}=")))
            .unwrap_or_else(|| panic!("names no variable: {l}"));
        named.push(var);
    }
    // Every stderr line is one of those (nothing spilled onto a new line).
    assert_eq!(r.stderr.lines().count(), lines.len(), "{r}");
    named.sort();
    let mut expected = expected.to_vec();
    expected.sort();
    assert_eq!(named, expected, "{r}");
}

#[test]
fn garbage_in_every_variable_gets_one_line_each_and_the_defaults() {
    // Invalid UTF-8, an escape sequence, a newline, format directives and a
    // shell fragment: printed escaped, on one line each.
    let garbage = OsStr::from_bytes(b"\xff\xfe\x1b[31mred\n%s%n$(reboot)\t\x7f");
    let r = run_with_all(garbage);
    assert_defaults_applied(&r);
    // The path variables accept any non-empty name: RMCP_HIP_LIBRARY and
    // RMCP_HSA_LIBRARY are not needed (the runtimes are loaded),
    // RMCP_SYSFS_ROOT is read only for the fault report's GPU facts, and
    // RMCP_FAULT_REPORT is kept, with one line naming its '%s' (only %p and
    // %% are expanded).
    assert_one_line_each(
        &r,
        &[
            "RMCP_MODE",
            "RMCP_TARGETS",
            "RMCP_LOG",
            "RMCP_FAULT_REPORT",
            "RMCP_ROCM_CALLERS",
        ],
    );
    assert!(
        r.stderr.contains("contains '%s', which is not expanded"),
        "{r}"
    );
}

#[test]
fn empty_values_in_every_variable_get_one_line_each_and_the_defaults() {
    let r = run_with_all(OsStr::new(""));
    assert_defaults_applied(&r);
    assert_one_line_each(
        &r,
        &[
            "RMCP_MODE",
            "RMCP_TARGETS",
            "RMCP_LOG",
            "RMCP_HIP_LIBRARY",
            "RMCP_HSA_LIBRARY",
            "RMCP_FAULT_REPORT",
            "RMCP_SYSFS_ROOT",
            "RMCP_ROCM_CALLERS",
        ],
    );
}

#[test]
fn very_long_values_in_every_variable_get_one_short_line_each() {
    // 100,000 bytes: under Linux's 128 KiB limit for one environment string.
    let long = OsString::from("g".repeat(100_000));
    let r = run_with_all(&long);
    assert_defaults_applied(&r);
    assert_one_line_each(
        &r,
        &[
            "RMCP_MODE",
            "RMCP_TARGETS",
            "RMCP_LOG",
            "RMCP_HIP_LIBRARY",
            "RMCP_HSA_LIBRARY",
            "RMCP_FAULT_REPORT",
            "RMCP_SYSFS_ROOT",
            "RMCP_ROCM_CALLERS",
        ],
    );
    assert!(r.stderr.contains("(100000 bytes)"), "{r}");

    // A long but valid target list is accepted silently.
    let many = vec!["gfx1100-gfx1101"; 5000].join(",") + ",gfx1030";
    let r = Scenario::new(Program::DriverExe)
        .devices(RDNA2)
        .preload(true)
        .env("RMCP_TARGETS", &many)
        .args(OPS)
        .run();
    assert_defaults_applied(&r);
    assert!(rmcp_lines(&r.stderr).is_empty(), "{r}");
}

// ---------------------------------------------------------------------------
// AT_SECURE
// ---------------------------------------------------------------------------

/// Why the setuid test cannot run here, if it cannot.
fn setuid_unavailable() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root: cannot make a setuid-root program".into());
    }
    if !Path::new("/usr/bin/setpriv").exists() {
        return Some("setpriv (util-linux) is missing".into());
    }
    None
}

/// A driver linked to librmcp and the doubles (copied to a world-readable
/// directory, found through RUNPATH since LD_LIBRARY_PATH is ignored in
/// secure mode), made setuid root. Returns (dir, executable).
fn build_setuid_driver() -> (PathBuf, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let fx = fixtures();
    let dir = world_readable_tempdir("setuid");
    for (from, name) in [
        (librmcp(), "librmcp.so"),
        (fx.hip6.clone(), "libamdhip64.so.6"),
        (fx.hsa.clone(), "libhsa-runtime64.so.1"),
    ] {
        std::fs::copy(&from, dir.join(name)).unwrap();
        std::fs::set_permissions(dir.join(name), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::os::unix::fs::symlink("libamdhip64.so.6", dir.join("libamdhip64.so")).unwrap();
    std::os::unix::fs::symlink("libhsa-runtime64.so.1", dir.join("libhsa-runtime64.so")).unwrap();
    let exe = dir.join("secure_driver");
    let l = format!("-L{}", s(&dir));
    let rpath = format!("-Wl,-rpath,{}", s(&dir));
    compile_c(
        &exe,
        &[
            tests_dir("programs/driver.c"),
            tests_dir("programs/secure_main.c"),
        ],
        &[
            "-Wl,--no-as-needed",
            &l,
            &rpath,
            "-lrmcp",
            "-lamdhip64",
            "-lhsa-runtime64",
            "-ldl",
        ],
    );
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o4755)).unwrap();
    (dir, exe)
}

#[test]
fn a_setuid_process_is_forwarded_untouched_and_silent() {
    if let Some(why) = setuid_unavailable() {
        eprintln!("SKIPPED a_setuid_process_is_forwarded_untouched_and_silent: {why}");
        return;
    }
    let (dir, exe) = build_setuid_driver();
    let log = dir.join("record.log");
    let ops = [
        "hipHostMalloc:4096:0",
        "hipExtMallocWithFlags:64:1",
        "hipMallocManaged:64:1",
        "hsa_init",
        "hsa_alloc:0:fine:4096",
        "hsa_free",
        "freeall",
    ];
    let run = |as_user: bool| {
        let mut cmd = if as_user {
            let mut c = Command::new("/usr/bin/setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let _ = std::fs::remove_file(&log);
        cmd.args(ops)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("FAKE_HIP_DEVICES", RDNA2)
            .env("FAKE_HIP_LOG", &log)
            // Everything that would make rmcp act or talk, all ignored.
            .env("RMCP_MODE", "force")
            .env("RMCP_LOG", "trace")
            .env("RMCP_TARGETS", "garbage")
            .env("RMCP_FAULT_REPORT", dir.join("report.json"));
        if as_user {
            // Would make every decision panic, were rmcp listening.
            cmd.env("RMCP_TEST_PANIC", "policy");
        }
        let out = cmd.output().expect("run the setuid driver");
        let record = std::fs::read_to_string(&log).unwrap_or_default();
        let calls: Vec<Call> = record.lines().filter_map(Call::parse).collect();
        (out, record, calls)
    };

    // As the setuid program's owner (not secure) rmcp is active, which
    // proves the program is linked to it.
    let (out, record, calls) = run(false);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.starts_with("at_secure=0\n"), "{stdout}");
    let host: Vec<_> = calls.iter().filter(|c| c.func == "hipHostMalloc").collect();
    assert_eq!(host[0].flags(), Some(NON_COHERENT), "{record}\n{stderr}");

    // As nobody: the kernel marks the process AT_SECURE.
    let (out, record, calls) = run(true);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let ctx = format!(
        "status {:?}\n{stdout}\n--- stderr\n{stderr}\n--- record\n{record}",
        out.status
    );
    if !stdout.starts_with("at_secure=1\n") {
        eprintln!(
            "SKIPPED a_setuid_process_is_forwarded_untouched_and_silent: the setuid program did not run with AT_SECURE=1 (nosuid mount?)\n{ctx}"
        );
        return;
    }
    assert!(out.status.success(), "{ctx}");
    let flags = |f: &str| -> Vec<u64> {
        calls
            .iter()
            .filter(|c| c.func == f)
            .map(|c| c.flags().unwrap())
            .collect()
    };
    assert_eq!(flags("hipHostMalloc"), vec![0], "{ctx}");
    assert_eq!(flags("hipExtMallocWithFlags"), vec![1], "{ctx}");
    assert!(!calls.iter().any(|c| c.func == "hipMemAdvise"), "{ctx}");
    let pools: Vec<_> = calls
        .iter()
        .filter(|c| c.func == "hsa_amd_memory_pool_allocate")
        .map(|c| c.get("pool").unwrap_or("?").to_string())
        .collect();
    assert_eq!(pools, vec!["fine"], "{ctx}");
    // Silent: not a byte on stderr, and no report file.
    assert_eq!(stderr, "", "{ctx}");
    assert!(!dir.join("report.json").exists());
    let _ = std::fs::remove_dir_all(&dir);
}
