//! The audit mode (LD_AUDIT=librmcp-audit.so beside LD_PRELOAD=librmcp.so), as real
//! processes against the test doubles and the real ROCm 6.4.3 / 7.2.4 runtimes.
//!
//! Clients that dlopen the runtime and dlsym its handle (Python ctypes, hipew-style C
//! loaders) bypass a preloaded librmcp.so; with the audit module their lookups of hooked
//! names bind to librmcp's hooks. ROCm's own libraries, librmcp's own lookups and other
//! namespaces are left alone; processes that never touch HIP stay silent.

mod common;

use common::{fixtures, librmcp, librmcp_audit, Program, Run, Scenario};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const PYTHON: &str = "/usr/bin/python3";
const NON_COHERENT: u64 = 0x8000_0000;

fn python() -> &'static str {
    assert!(
        Path::new(PYTHON).is_file(),
        "{PYTHON} is missing (scripts/setup.sh installs python3)"
    );
    PYTHON
}

fn ctypes_script() -> PathBuf {
    common::manifest_dir().join("tests/programs/ctypes_client.py")
}

/// tests/programs/hipew_client.c, built once into the fixture dir (it links no runtime).
fn hipew_client() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        let out = fixtures().dir.join("hipew_client");
        common::compile_c(
            &out,
            &[common::manifest_dir().join("tests/programs/hipew_client.c")],
            &["-ldl"],
        );
        out
    })
}

fn rmcp_exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_rmcp"))
}

/// The ctypes client on the doubles with one targeted GPU, under `rmcp run RUN_ARGS --`.
fn ctypes_under_rmcp_run(run_args: &[&str]) -> Run {
    let mut args: Vec<String> = vec!["run".into()];
    args.extend(run_args.iter().map(|s| s.to_string()));
    args.extend([
        "--".into(),
        python().into(),
        ctypes_script().display().to_string(),
        "libamdhip64.so.6".into(),
        "libhsa-runtime64.so.1".into(),
    ]);
    Scenario::new(Program::Path(rmcp_exe()))
        .devices("gfx1030")
        .env("RMCP_LIBRARY", librmcp())
        .env("RMCP_LOG", "info")
        .args(args)
        .run()
}

/// (hipHostMalloc flags, hipExtMallocWithFlags flags, HSA pool) as the doubles received them.
fn received(r: &Run) -> (u64, u64, String) {
    let one = |f: &str| {
        let c = r.calls_named(f);
        assert_eq!(c.len(), 1, "exactly one {f} must reach the runtime\n{r}");
        c[0].clone()
    };
    (
        one("hipHostMalloc").flags().unwrap(),
        one("hipExtMallocWithFlags").flags().unwrap(),
        one("hsa_amd_memory_pool_allocate")
            .get("pool")
            .unwrap()
            .to_string(),
    )
}

fn assert_ctypes_ran(r: &Run) {
    r.assert_success();
    for op in [
        "hipHostMalloc",
        "hipExtMallocWithFlags",
        "hsa_init",
        "hsa_amd_memory_pool_allocate",
    ] {
        assert_eq!(r.op(op).rc(), "0", "{op}\n{r}");
    }
}

#[test]
fn ctypes_client_is_rewritten_under_rmcp_run() {
    let r = ctypes_under_rmcp_run(&[]);
    assert_ctypes_ran(&r);
    assert_eq!(
        received(&r),
        (NON_COHERENT, 0, "coarse".to_string()),
        "rmcp run (audit on by default) must rewrite calls made through ctypes handles\n{r}"
    );
    assert!(
        r.stderr.contains(
            "hipHostMalloc 1/1, hipExtMallocWithFlags 1/1, hsa_amd_memory_pool_allocate 1/1"
        ),
        "{r}"
    );
}

#[test]
fn ctypes_client_is_untouched_with_mode_off() {
    let r = ctypes_under_rmcp_run(&["--mode", "off"]);
    assert_ctypes_ran(&r);
    assert_eq!(received(&r), (0, 1, "fine".to_string()), "{r}");
    // The hooks still saw the calls (registry and reports stay on in mode off).
    assert!(
        r.stderr.contains(
            "hipHostMalloc 1/0, hipExtMallocWithFlags 1/0, hsa_amd_memory_pool_allocate 1/0"
        ),
        "{r}"
    );
}

/// The gap the audit mode closes: with LD_PRELOAD alone, ctypes calls never reach rmcp.
#[test]
fn ctypes_client_bypasses_preload_alone() {
    let r = ctypes_under_rmcp_run(&["--no-audit"]);
    assert_ctypes_ran(&r);
    assert_eq!(received(&r), (0, 1, "fine".to_string()), "{r}");
    assert!(
        !r.stderr.contains("hipHostMalloc"),
        "no hook may have seen the calls without the audit module\n{r}"
    );
}

/// The hipew-style client with LD_PRELOAD + LD_AUDIT set by hand.
fn hipew(ops: &[&str], audit: bool) -> Run {
    let mut s = Scenario::new(Program::Path(hipew_client().to_path_buf()))
        .devices("gfx1030")
        .preload(true)
        .env("RMCP_MODE", "auto")
        .arg("libamdhip64.so.6")
        .arg("libhsa-runtime64.so.1")
        .args(ops);
    if audit {
        s = s.env("LD_AUDIT", librmcp_audit());
    }
    s.run()
}

#[test]
fn hipew_client_table_is_rewritten_and_rocm_library_is_not() {
    let ops = [
        "hostmalloc:0",
        "extmalloc:1",
        "poolfine",
        "procaddr:0",
        "default:0",
        "rocmlike:0",
    ];
    let r = hipew(&ops, true);
    r.assert_success();
    for op in ops {
        assert_eq!(r.op(op).rc(), "0", "{op}\n{r}");
    }
    let host: Vec<u64> = r.flags_of("hipHostMalloc");
    // In call order: the table's hipHostMalloc, the function hipGetProcAddress returned
    // (the table's hipGetProcAddress is rmcp's hook), dlsym(RTLD_DEFAULT) (the preload), and
    // the lookup made from inside librocblas.so.4, which must reach the runtime unchanged.
    assert_eq!(
        host,
        vec![NON_COHERENT, NON_COHERENT, NON_COHERENT, 0],
        "flags hipHostMalloc received\n{r}"
    );
    assert_eq!(
        r.calls_named("hipExtMallocWithFlags")[0].flags(),
        Some(0),
        "{r}"
    );
    assert_eq!(
        r.calls_named("hsa_amd_memory_pool_allocate")[0].get("pool"),
        Some("coarse"),
        "{r}"
    );
    assert!(r.stderr.is_empty(), "nothing to say at RMCP_LOG=warn\n{r}");

    // The same client with LD_PRELOAD alone: only dlsym(RTLD_DEFAULT) reaches rmcp.
    let r = hipew(&ops, false);
    r.assert_success();
    let host: Vec<u64> = r.flags_of("hipHostMalloc");
    assert_eq!(host, vec![0, 0, NON_COHERENT, 0], "{r}");
    assert_eq!(
        r.calls_named("hipExtMallocWithFlags")[0].flags(),
        Some(1),
        "{r}"
    );
}

/// librmcp finds the real functions with dlsym on the runtime's handle. Were the audit
/// module to redirect those lookups too, every forward would reach librmcp itself: the
/// hook would answer 801 (its recursion guard) and the runtime would see no call.
#[test]
fn librmcp_own_lookups_reach_the_runtime() {
    let r = hipew(&["hostmalloc:0", "extmalloc:1"], true);
    r.assert_success();
    assert_eq!(r.op("hostmalloc:0").rc(), "0", "{r}");
    assert_eq!(r.op("extmalloc:1").rc(), "0", "{r}");
    assert_eq!(r.calls_named("hipHostMalloc").len(), 1, "{r}");
    assert_eq!(r.calls_named("hipExtMallocWithFlags").len(), 1, "{r}");
    assert!(!r.stderr.contains("801"), "{r}");
}

/// A ROCm library's own calls keep their pool under the audit mode (the HSA hook's
/// caller check), exactly as with LD_PRELOAD alone.
#[test]
fn rocm_library_pool_allocation_is_not_redirected() {
    let r = Scenario::new(Program::DriverExe)
        .devices("gfx1030")
        .preload(true)
        .env("LD_AUDIT", librmcp_audit())
        .args([
            "hsa_init",
            "rocmlike_alloc:0:fine:4096",
            "hsa_alloc:0:fine:4096",
        ])
        .run();
    r.assert_success();
    let pools: Vec<&str> = r
        .calls_named("hsa_amd_memory_pool_allocate")
        .iter()
        .map(|c| c.get("pool").unwrap())
        .collect();
    assert_eq!(
        pools,
        vec!["fine", "coarse"],
        "ROCm library, then the app\n{r}"
    );
}

/// The module's ROCm rule is src/core/policy.rs's: same list file, same boundaries.
#[test]
fn audit_rocm_rule_matches_policy() {
    // SAFETY: librmcp-audit.so has no constructors and no dependencies.
    let lib = unsafe { libloading::Library::new(librmcp_audit()) }.expect("load audit module");
    let is_rocm: libloading::Symbol<unsafe extern "C" fn(*const std::ffi::c_char) -> i32> =
        // SAFETY: the symbol's C prototype is `int rmcp_audit_is_rocm(const char *)`.
        unsafe { lib.get(b"rmcp_audit_is_rocm\0") }.expect("rmcp_audit_is_rocm");
    let rocmlike = fixtures().rocmlike.display().to_string();
    let paths = [
        "/usr/lib/x86_64-linux-gnu/libamdhip64.so.6",
        "/v/site-packages/torch/lib/libamdhip64.so",
        "/w/libamdhip64-3f2a1b.so",
        "/usr/lib/libhsa-runtime64.so.1.18.0",
        "/opt/rocm-6.2.0/lib/libanything.so",
        "/opt/rocm/llvm/lib/libLLVM.so",
        "libMIOpen.so.1",
        "/x/librccl.so.1",
        "/x/libhiprtc.so.6",
        "/x/libamd_comgr.so.3",
        "/x/libhipblaslt.so.0",
        &rocmlike,
        "",
        "/usr/lib/librmcp.so",
        "/tmp/app",
        "/usr/lib/x86_64-linux-gnu/libc.so.6",
        "/x/libamdhip64fake.so",
        "/x/librocblasx.so",
        "/v/_ctypes.cpython-311-x86_64-linux-gnu.so",
        "/home/rocm/libamdhip64wrapper.so",
    ];
    let mut rocm = 0;
    for p in paths {
        let c = std::ffi::CString::new(p).unwrap();
        // SAFETY: a NUL-terminated string that outlives the call.
        let audit = unsafe { is_rocm(c.as_ptr()) } != 0;
        assert_eq!(audit, rmcp::policy::is_rocm_library(p.as_bytes()), "{p}");
        rocm += audit as usize;
    }
    assert_eq!(rocm, 12, "the first 12 paths are ROCm");
}

/// Processes that never use HIP print nothing and exit as before under preload + audit.
#[test]
fn inert_processes_stay_silent() {
    for (prog, args) in [
        ("/bin/true", vec![]),
        (python(), vec!["-c", "pass"]),
        ("/bin/sh", vec!["-c", "echo hi"]),
    ] {
        for log in ["warn", "debug"] {
            let r = Scenario::new(Program::Path(prog.into()))
                .preload(true)
                .env("LD_AUDIT", librmcp_audit())
                .env("RMCP_LOG", log)
                .args(&args)
                .run();
            r.assert_success();
            assert_eq!(r.stderr, "", "{prog} at RMCP_LOG={log}\n{r}");
            let expected = if prog == "/bin/sh" { "hi\n" } else { "" };
            assert_eq!(r.stdout, expected, "{r}");
        }
    }
    // And through rmcp run, which sets both variables itself.
    let r = Scenario::new(Program::Path(rmcp_exe()))
        .env("RMCP_LIBRARY", librmcp())
        .args(["run", "--", "/bin/sh", "-c", "echo \"$LD_AUDIT\""])
        .run();
    r.assert_success();
    assert!(r.stdout.trim().ends_with("/librmcp-audit.so"), "{r}");
    assert_eq!(r.stderr, "", "{r}");
}

/// What a wrong LD_AUDIT path does (why rmcp run only sets one that exists): ld.so prints
/// an error line in the process and in every child, and runs the program anyway.
#[test]
fn wrong_audit_path_prints_a_loader_error_and_rmcp_run_avoids_it() {
    let r = Scenario::new(Program::Path("/bin/sh".into()))
        .env("LD_AUDIT", "/nonexistent/librmcp-audit.so")
        .args(["-c", "/bin/true; echo done"])
        .run();
    r.assert_success();
    assert_eq!(r.stdout, "done\n", "{r}");
    let errors = r
        .stderr
        .lines()
        .filter(|l| l.contains("/nonexistent/librmcp-audit.so") && l.contains("audit interface"))
        .count();
    assert_eq!(errors, 2, "one line from sh, one from its child\n{r}");

    // rmcp run installed in a directory without the audit module: one line of its own,
    // no LD_AUDIT, no loader error.
    let d = common::tempdir("no-audit-install");
    std::fs::copy(rmcp_exe(), d.join("rmcp")).unwrap();
    std::fs::copy(librmcp(), d.join("librmcp.so")).unwrap();
    let r = Scenario::new(Program::Path(d.join("rmcp")))
        .args(["run", "--", "/bin/sh", "-c", "echo \"[${LD_AUDIT-unset}]\""])
        .run();
    let _ = std::fs::remove_dir_all(&d);
    r.assert_success();
    if r.stdout.trim() != "[unset]" {
        // An installed copy (/usr/lib...) was found instead: nothing more to check here.
        assert!(r.stdout.contains("librmcp-audit.so"), "{r}");
        return;
    }
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{r}");
    assert!(
        lines[0].starts_with("rmcp: run: librmcp-audit.so not found")
            && lines[0].contains("LD_PRELOAD only"),
        "{r}"
    );
}

// ---------------------------------------------------------------- real runtimes

fn rocm_dir() -> PathBuf {
    std::env::var_os("RMCP_ROCM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| common::manifest_dir().join(".rocm"))
}

/// The hipew client on a real runtime through that root's own loader
/// (`ld.so --library-path … [--audit LIB] --preload librmcp.so PROG`), with
/// RMCP_MODE=force (no GPU: the runtime refuses every call, but the hook's statistics show
/// which calls went through rmcp) and RMCP_LOG=info.
fn real(root: &Path, hip: &str, audit: bool) -> std::process::Output {
    let lib = root.join("usr/lib/x86_64-linux-gnu");
    let mut c = Command::new(root.join("usr/lib64/ld-linux-x86-64.so.2"));
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if ["LD_", "RMCP_", "HIP_", "HSA_", "AMD_", "ROCR_"]
            .iter()
            .any(|p| k.starts_with(p))
        {
            c.env_remove(&k);
        }
    }
    c.arg("--library-path").arg(&lib);
    if audit {
        c.arg("--audit").arg(librmcp_audit());
    }
    c.arg("--preload")
        .arg(librmcp())
        .arg(hipew_client())
        .args([hip, "libhsa-runtime64.so.1"])
        .args(["hostmalloc:0", "extmalloc:1", "poolraw", "procaddr:0"])
        .env("RMCP_MODE", "force")
        .env("RMCP_LOG", "info");
    c.output().expect("run the real runtime's loader")
}

#[test]
fn hipew_client_on_real_runtimes_goes_through_the_hooks() {
    for (tag, root, hip) in [
        ("6.4.3", rocm_dir().join("sid-root"), "libamdhip64.so.6"),
        ("7.2.4", rocm_dir().join("exp-root"), "libamdhip64.so.7"),
    ] {
        if !root.join("usr/lib/x86_64-linux-gnu").join(hip).exists() {
            assert!(
                !common::prerequisites_required(),
                "ROCm {tag} is missing under {} (run scripts/setup-rocm.sh)",
                root.display()
            );
            eprintln!("audit: skipped ROCm {tag}: run scripts/setup-rocm.sh");
            continue;
        }
        let plain = real(&root, hip, false);
        let audited = real(&root, hip, true);
        let out = |o: &std::process::Output| String::from_utf8_lossy(&o.stdout).into_owned();
        let err = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).into_owned();
        // Same program output and exit status: no GPU, so the runtime answers 100 / 0x100B.
        assert_eq!(out(&plain), out(&audited), "ROCm {tag}\n{}", err(&audited));
        assert_eq!(plain.status.code(), audited.status.code(), "ROCm {tag}");
        assert!(
            out(&audited).starts_with("hostmalloc:0 rc=100\nextmalloc:1 rc=100\n"),
            "ROCm {tag}: {}",
            out(&audited)
        );
        // The audit run went through the hooks (forced rewrites counted); the preload-only
        // run did not see the table's calls at all.
        assert!(
            err(&audited).contains(
                "hipHostMalloc 1/1, hipExtMallocWithFlags 1/1, hipGetProcAddress 1/0, \
                 hsa_amd_memory_pool_allocate 1/0"
            ),
            "ROCm {tag}\n{}",
            err(&audited)
        );
        assert!(
            !err(&plain).contains("hipHostMalloc"),
            "ROCm {tag}\n{}",
            err(&plain)
        );
        assert!(!err(&audited).contains("rmcp: error"), "{}", err(&audited));
    }
}

/// clinfo, ocl-icd and ROCm 6.4.3's OpenCL runtime from sid (scripts/setup-rocm.sh unpacks
/// them into .rocm/sid-clients): a real program that reaches ROCm through dlopen (the ICD
/// loader opens libamdocl64.so, which calls HSA). Through sid's loader, plain and with
/// `--audit librmcp-audit.so --preload librmcp.so`: the same output and exit status.
#[test]
fn clinfo_on_sid_is_the_same_with_the_audit_mode() {
    let sid = rocm_dir().join("sid-root");
    let clients = rocm_dir().join("sid-clients");
    let clinfo = clients.join("usr/bin/clinfo");
    if !clinfo.exists() || !sid.join("usr/lib64/ld-linux-x86-64.so.2").exists() {
        assert!(
            !common::prerequisites_required(),
            "{} is missing (run scripts/setup-rocm.sh)",
            clinfo.display()
        );
        eprintln!("audit: skipped clinfo: run scripts/setup-rocm.sh");
        return;
    }
    let run = |shim: bool| {
        let mut c = Command::new(sid.join("usr/lib64/ld-linux-x86-64.so.2"));
        c.env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("OCL_ICD_VENDORS", clients.join("etc/OpenCL/vendors"))
            .arg("--library-path")
            .arg(format!(
                "{}:{}",
                clients.join("usr/lib/x86_64-linux-gnu").display(),
                sid.join("usr/lib/x86_64-linux-gnu").display()
            ));
        if shim {
            c.arg("--audit")
                .arg(librmcp_audit())
                .arg("--preload")
                .arg(librmcp());
        }
        c.arg(&clinfo).output().expect("run clinfo")
    };
    let plain = run(false);
    let audited = run(true);
    let text = |o: &std::process::Output| {
        format!(
            "status {:?}\n--- stdout\n{}--- stderr\n{}",
            o.status.code(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    assert!(
        String::from_utf8_lossy(&plain.stdout).contains("AMD Accelerated Parallel Processing"),
        "the ROCm OpenCL platform must load\n{}",
        text(&plain)
    );
    assert_eq!(text(&plain), text(&audited));
}
