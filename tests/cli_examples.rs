//! Runs examples/pytorch/train.py on the CPU when a Python with PyTorch is
//! available (`python3`, then Debian's `/usr/bin/python3` from python3-torch);
//! otherwise says why it skipped. Also runs it under `rmcp run` with the real
//! librmcp.so when cargo built it beside the rmcp binary.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn python_with_torch() -> Option<String> {
    for py in ["python3", "/usr/bin/python3"] {
        let ok = Command::new(py)
            .args(["-c", "import torch"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if ok {
            return Some(py.to_string());
        }
    }
    None
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/pytorch/train.py")
}

/// Runs a command with a time limit; returns (exit code, stdout, stderr).
fn run_limited(tag: &str, mut c: Command, limit: Duration) -> (Option<i32>, String, String) {
    // Debian's PyTorch 1.13 ships a oneDNN that uses AMX for bfloat16 without
    // asking the kernel for AMX state first, which dies with SIGILL on CPUs
    // that have AMX. Capping oneDNN's ISA avoids that; it changes nothing else.
    if std::env::var_os("ONEDNN_MAX_CPU_ISA").is_none() {
        c.env("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16");
    }
    let out_path = std::env::temp_dir().join(format!(
        "rmcp-cli-examples-{tag}-{}.out",
        std::process::id()
    ));
    let err_path = out_path.with_extension("err");
    c.stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap());
    let mut child = c.spawn().unwrap();
    let start = Instant::now();
    let code = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st.code();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = std::fs::read_to_string(&out_path).unwrap_or_default();
    let err = std::fs::read_to_string(&err_path).unwrap_or_default();
    let _ = std::fs::remove_file(out_path);
    let _ = std::fs::remove_file(err_path);
    (code, out, err)
}

#[test]
fn train_py_runs_on_cpu() {
    let Some(py) = python_with_torch() else {
        skip("SKIP train_py_runs_on_cpu: no Python with PyTorch (tried python3 and /usr/bin/python3; on Debian: apt-get install python3-torch)");
        return;
    };
    let mut c = Command::new(&py);
    c.arg(script()).args(["--device", "cpu", "--steps", "2"]);
    let (code, out, err) = run_limited("cpu", c, Duration::from_secs(600));
    assert_eq!(code, Some(0), "stdout:\n{out}\nstderr:\n{err}");
    common::assert_train_example_output(&out);
}

#[test]
fn train_py_runs_under_rmcp_run_with_the_real_library() {
    let Some(py) = python_with_torch() else {
        skip("SKIP train_py_runs_under_rmcp_run_with_the_real_library: no Python with PyTorch");
        return;
    };
    let bin = Path::new(env!("CARGO_BIN_EXE_rmcp"));
    let lib = built_librmcp();
    if !lib.is_file() {
        skip(&format!(
            "SKIP train_py_runs_under_rmcp_run_with_the_real_library: {} not built",
            lib.display()
        ));
        return;
    }
    let mut c = Command::new(bin);
    c.args(["run", "--log", "warn", "--"])
        .arg(&py)
        .arg(script())
        .args(["--device", "cpu", "--steps", "2"]);
    c.env("RMCP_LIBRARY", &lib).env_remove("LD_PRELOAD");
    let (code, out, err) = run_limited("rmcp-run", c, Duration::from_secs(600));
    assert_eq!(code, Some(0), "stdout:\n{out}\nstderr:\n{err}");
    common::assert_train_example_output(&out);
}

/// The librmcp.so of this build: beside the rmcp binary after `cargo build`,
/// in deps/ when only `cargo test` built it.
fn built_librmcp() -> PathBuf {
    let dir = Path::new(env!("CARGO_BIN_EXE_rmcp")).parent().unwrap();
    let beside = dir.join("librmcp.so");
    let deps = dir.join("deps/librmcp.so");
    match (
        beside.metadata().and_then(|m| m.modified()),
        deps.metadata().and_then(|m| m.modified()),
    ) {
        (Ok(a), Ok(b)) if b > a => deps,
        (Err(_), Ok(_)) => deps,
        _ => beside,
    }
}

/// Prints why a test did not run; under CI (where scripts/setup.sh installed
/// every prerequisite) a skip is a failure.
fn skip(msg: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{msg} (CI is set: scripts/setup.sh should have provided it)");
    }
    eprintln!("{msg}");
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// examples/cpp through the documented path: install into a prefix, generate
/// rmcp.pc from rmcp.pc.in with sed, configure with CMake + pkg-config, build
/// with hipcc, check the NEEDED order, run (no GPU here: the no-device path).
#[test]
fn cpp_example_builds_with_cmake_and_pkg_config() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let lib = built_librmcp();
    let missing: Vec<&str> = ["hipcc", "cmake", "pkg-config", "sed"]
        .into_iter()
        .filter(|t| !have(t))
        .collect();
    if !missing.is_empty() || !lib.is_file() {
        skip(&format!(
            "SKIP cpp_example_builds_with_cmake_and_pkg_config: needs hipcc, cmake, pkg-config and a built librmcp.so (missing: {:?}{})",
            missing,
            if lib.is_file() { "" } else { ", librmcp.so: run cargo build --lib first" }
        ));
        return;
    }
    let tmp = std::env::temp_dir().join(format!("rmcp-cli-cpp-{}", std::process::id()));
    let prefix = tmp.join("prefix");
    let build = tmp.join("build");
    std::fs::create_dir_all(prefix.join("lib/pkgconfig")).unwrap();
    std::fs::create_dir_all(prefix.join("include")).unwrap();
    std::fs::copy(&lib, prefix.join("lib/librmcp.so")).unwrap();
    std::fs::copy(root.join("include/rmcp.h"), prefix.join("include/rmcp.h")).unwrap();
    let pc = Command::new("sed")
        .arg("-e")
        .arg(format!("s|@PREFIX@|{}|g", prefix.display()))
        .args(["-e", "s|@VERSION@|0.1.0|g"])
        .arg(root.join("rmcp.pc.in"))
        .output()
        .unwrap();
    assert!(pc.status.success());
    std::fs::write(prefix.join("lib/pkgconfig/rmcp.pc"), pc.stdout).unwrap();

    let pkg_path = prefix.join("lib/pkgconfig");
    let cfg = Command::new("cmake")
        .arg("-S")
        .arg(root.join("examples/cpp"))
        .arg("-B")
        .arg(&build)
        .args(["-DCMAKE_CXX_COMPILER=hipcc", "-DRMCP_OFFLOAD_ARCH=gfx1030"])
        .env("PKG_CONFIG_PATH", &pkg_path)
        .output()
        .unwrap();
    assert!(
        cfg.status.success(),
        "cmake configure:\n{}{}",
        String::from_utf8_lossy(&cfg.stdout),
        String::from_utf8_lossy(&cfg.stderr)
    );
    let b = Command::new("cmake")
        .arg("--build")
        .arg(&build)
        .output()
        .unwrap();
    assert!(
        b.status.success(),
        "cmake build:\n{}{}",
        String::from_utf8_lossy(&b.stdout),
        String::from_utf8_lossy(&b.stderr)
    );

    let exe = build.join("rmcp_hip_example");
    let re = Command::new("readelf")
        .arg("-d")
        .arg(&exe)
        .output()
        .unwrap();
    let dynamic = String::from_utf8_lossy(&re.stdout);
    let pos = |name: &str| {
        dynamic
            .find(name)
            .unwrap_or_else(|| panic!("{name} not NEEDED:\n{dynamic}"))
    };
    assert!(
        pos("[librmcp.so]") < pos("[libamdhip64.so"),
        "librmcp must come first:\n{dynamic}"
    );

    let run = Command::new(&exe)
        .env_remove("LD_PRELOAD")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&run.stdout);
    assert_eq!(
        run.status.code(),
        Some(0),
        "{out}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(out.contains("librmcp 0.1.0"), "{out}");
    assert!(
        out.contains("no HIP device") || out.contains("kernel result: correct"),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(tmp);
}
