//! `rmcp run` end to end with the real librmcp.so and the runtime doubles:
//! the launcher preloads the shim, the shim writes the fault report when the
//! HSA double raises a GPU memory fault, and `--on-gpu-fault cpu` reads it and
//! runs the command again with the GPUs hidden.

mod common;

use common::{librmcp, Program, Scenario};

fn rmcp_bin() -> Program {
    Program::Path(env!("CARGO_BIN_EXE_rmcp").into())
}

/// A command that faults on the GPU unless HIP_VISIBLE_DEVICES hides the
/// GPUs, in which case it stands for the CPU run of a training script.
fn faulting_unless_hidden() -> String {
    let driver = Program::DriverExe.path();
    format!(
        "if [ \"$HIP_VISIBLE_DEVICES\" = -1 ]; then echo cpu run; exit 0; fi; exec {} hsa_init hipHostMalloc:4096:0 hsa_fault:live+64:1",
        driver.display()
    )
}

#[test]
fn run_preloads_the_shim_and_passes_the_exit_code_through() {
    let driver = Program::DriverExe.path();
    let r = Scenario::new(rmcp_bin())
        .devices("gfx1030")
        .env("RMCP_LIBRARY", librmcp())
        .args(["run", "--log", "info", "--"])
        .arg(&driver)
        .args([
            "hipHostMalloc:4096:0",
            "free",
            "hipHostMalloc:64:0xc0000000",
        ])
        .run();
    // The driver exits 1 because the last op was refused by the runtime.
    assert_eq!(r.status.code(), Some(1), "{r}");
    let flags: Vec<u64> = r.flags_of("hipHostMalloc");
    assert_eq!(flags, vec![0x8000_0000, 0xc000_0000], "{r}");
    assert!(
        r.stderr
            .contains("rmcp: info: summary: calls/rewritten: hipHostMalloc 2/1"),
        "{r}"
    );
}

#[test]
fn gpu_fault_is_reported_then_the_command_reruns_on_cpu() {
    let r = Scenario::new(rmcp_bin())
        .devices("gfx1030")
        .env("RMCP_LIBRARY", librmcp())
        .args(["run", "--on-gpu-fault", "cpu", "--", "sh", "-c"])
        .arg(faulting_unless_hidden())
        .run();
    assert_eq!(r.status.code(), Some(0), "the CPU run's exit code\n{r}");
    assert!(r.stdout.contains("cpu run"), "{r}");
    // The shim's live report, then the runtime's message, then the launcher
    // repeating the report and saying what it does next.
    let shim = r.stderr.find("rmcp: address ").expect("shim report");
    let runtime = r
        .stderr
        .find("Memory access fault by GPU node-1")
        .expect("runtime message");
    assert!(shim < runtime, "{r}");
    assert!(
        r.stderr
            .contains("is 64 bytes into a live allocation: hipHostMalloc of 4096 bytes"),
        "{r}"
    );
    assert!(r.stderr.contains("HIP_VISIBLE_DEVICES=-1"), "{r}");
    // The hipHostMalloc of the GPU run was rewritten (the CPU run makes none).
    let flags: Vec<u64> = r.flags_of("hipHostMalloc");
    assert_eq!(flags, vec![0x8000_0000], "{r}");
}

#[test]
fn without_the_fallback_a_gpu_fault_ends_like_a_shell_reports_it() {
    let r = Scenario::new(rmcp_bin())
        .devices("gfx1030")
        .env("RMCP_LIBRARY", librmcp())
        .args(["run", "--", "sh", "-c"])
        .arg(faulting_unless_hidden())
        .run();
    assert_eq!(r.status.code(), Some(128 + libc::SIGABRT), "{r}");
    assert!(!r.stdout.contains("cpu run"), "{r}");
    assert!(r.stderr.contains("rmcp: address "), "{r}");
}

/// Issue 18 item 4, with the real library: `--on-gpu-fault cpu` no longer
/// swallows the user's RMCP_FAULT_REPORT. The GPU fault's JSON (written by
/// librmcp.so into rmcp's private directory) is copied to the user's path
/// with %p expanded, and the output names the file.
#[test]
fn the_users_report_path_keeps_the_gpu_faults_json() {
    let d = common::tempdir("e2e-user-report");
    let r = Scenario::new(rmcp_bin())
        .devices("gfx1030")
        .env("RMCP_LIBRARY", librmcp())
        .env("RMCP_FAULT_REPORT", d.join("fault-%p.json"))
        .args(["run", "--on-gpu-fault", "cpu", "--", "sh", "-c"])
        .arg(faulting_unless_hidden())
        .run();
    assert_eq!(r.status.code(), Some(0), "{r}");
    let files: Vec<std::path::PathBuf> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}\n{r}");
    let json = std::fs::read_to_string(&files[0]).unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    let pid = v["process"]["pid"].as_u64().expect("pid");
    assert_eq!(files[0], d.join(format!("fault-{pid}.json")));
    assert_eq!(v["verdict"], "live", "{json}");
    assert!(
        r.stderr.contains(&format!(
            "rmcp: the JSON report of process {pid} is in {}\n",
            files[0].display()
        )),
        "{r}"
    );
    let _ = std::fs::remove_dir_all(&d);
}
