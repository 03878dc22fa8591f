//! `rmcp run` over a multi-process training job: torchrun (Debian's python3-torch, CPU,
//! gloo) starting examples/pytorch/ddp.py with two ranks, each with two forked DataLoader
//! workers. Every process must have librmcp.so loaded and stay silent; a GPU memory fault
//! in one rank (raised by the HSA double, loaded with ctypes in that rank only) must give
//! that rank's report, named by its pid and ranks, and no other.
//!
//! Debian bookworm's torchrun (PyTorch 1.13 on Python 3.11) crashes with its default
//! `--redirects 0 --tee 0` (Python 3.11 no longer iterates the zero member of an IntFlag,
//! so torchrun's `Std.from_str("0")` returns None). `--redirects 2 --tee 2` avoids that:
//! the workers' stderr goes to a log file and is echoed with a `[defaultN]:` prefix.

mod common;

use common::{fixtures, librmcp, manifest_dir, tempdir, Program, Run, Scenario};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const PYTHON: &str = "/usr/bin/python3";
const TORCHRUN: &str = "/usr/bin/torchrun";

/// True when Debian's torchrun and torch are there; otherwise says why (a failure under CI,
/// where scripts/setup.sh installs python3-torch).
fn have_torchrun(test: &str) -> bool {
    let torch = Command::new(PYTHON)
        .args(["-c", "import torch.distributed.run"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if torch && Path::new(TORCHRUN).is_file() {
        return true;
    }
    let msg = format!(
        "SKIP {test}: needs {TORCHRUN} and {PYTHON} with torch.distributed (Debian: apt-get install python3-torch)"
    );
    if std::env::var_os("CI").is_some() {
        panic!("{msg} (CI is set: scripts/setup.sh should have installed it)");
    }
    eprintln!("{msg}");
    false
}

/// `rmcp run [run_args] -- torchrun --standalone --nproc_per_node=2 ... SCRIPT` at the
/// default log level, with torchrun's log files in `logs`.
fn torchrun(run_args: &[&str], script: &Path, logs: &Path, env: &[(&str, &Path)]) -> Run {
    // `torchrun --standalone` (1.13) puts its rendezvous store on port 29400:
    // two at once in this binary, and the second joins the first's job or
    // fails with "Address already in use". One at a time.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut s = Scenario::new(Program::Path(env!("CARGO_BIN_EXE_rmcp").into()))
        .env("RMCP_LIBRARY", librmcp())
        // Only the ctypes code of the faulting rank finds the doubles, by full path.
        .env_remove("LD_LIBRARY_PATH")
        .env("OMP_NUM_THREADS", "1")
        .env("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16")
        .arg("run")
        .args(run_args)
        .args(["--", TORCHRUN, "--standalone", "--nproc_per_node=2"])
        .args(["--redirects", "2", "--tee", "2", "--log_dir"])
        .arg(logs)
        .arg(script)
        .timeout(Duration::from_secs(300));
    for (k, v) in env {
        s = s.env(k, v);
    }
    s.run()
}

fn ddp_py() -> PathBuf {
    manifest_dir().join("examples/pytorch/ddp.py")
}

fn ddp_fault_py() -> PathBuf {
    manifest_dir().join("tests/programs/ddp_fault.py")
}

/// The pids in "rank N/2 (...): pid P, ..." lines, in rank order; asserts each rank has
/// librmcp.so and librmcp-audit.so loaded and LD_AUDIT set.
fn rank_pids(r: &Run) -> Vec<u32> {
    let mut v: Vec<(u32, u32)> = Vec::new();
    for line in r.stdout.lines().filter(|l| l.contains("/2 (LOCAL_RANK ")) {
        let rank: u32 = line["rank ".len()..line.find('/').unwrap()]
            .parse()
            .unwrap();
        assert!(
            line.starts_with(&format!(
                "rank {rank}/2 (LOCAL_RANK {rank}, gloo, cpu): pid "
            )) && line.ends_with(", librmcp.so loaded, LD_AUDIT set, librmcp-audit.so loaded"),
            "{line}\n{r}"
        );
        v.push((rank, pid_in(line)));
    }
    v.sort();
    v.into_iter().map(|(_, p)| p).collect()
}

/// The number after "pid " in `line`.
fn pid_in(line: &str) -> u32 {
    let rest = line
        .split("pid ")
        .nth(1)
        .unwrap_or_else(|| panic!("no pid in {line:?}"));
    rest.split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|d| d.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {line:?}"))
}

/// stderr without torchrun's `[defaultN]:` prefixes.
fn plain_stderr(r: &Run) -> String {
    r.stderr
        .lines()
        .map(|l| match l.strip_prefix("[default") {
            Some(rest) => rest.split_once("]:").map_or(l, |(_, t)| t),
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_torchrun_worker_has_librmcp_and_stays_silent() {
    if !have_torchrun("every_torchrun_worker_has_librmcp_and_stays_silent") {
        return;
    }
    let logs = tempdir("ddp-logs");
    let r = torchrun(&[], &ddp_py(), &logs, &[]);
    let _ = std::fs::remove_dir_all(&logs);
    r.assert_success();
    assert_eq!(r.stdout.lines().filter(|l| *l == "ok").count(), 1, "{r}");
    let ranks = rank_pids(&r);
    assert_eq!(ranks.len(), 2, "one line per rank\n{r}");
    assert_ne!(ranks[0], ranks[1], "{r}");
    // Two forked DataLoader workers per rank (persistent_workers: started once).
    let workers: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| l.contains(" dataloader worker "))
        .collect();
    assert_eq!(workers.len(), 4, "{r}");
    for w in &workers {
        assert!(
            w.ends_with(", librmcp.so loaded, LD_AUDIT set, librmcp-audit.so loaded"),
            "{w}\n{r}"
        );
        assert!(
            !ranks.contains(&pid_in(w)),
            "a worker is its own process\n{r}"
        );
    }
    // At the default log level no process of the job prints anything of rmcp's.
    let err = plain_stderr(&r);
    assert!(!err.contains("rmcp"), "{r}");
}

/// Rank 1 faults (the doubles, via ctypes, after one training step). `rmcp run
/// --on-gpu-fault cpu` prints rank 1's report only, then runs the whole job again once
/// with the GPUs hidden, which then trains to the end.
#[test]
fn a_fault_in_one_rank_is_reported_for_that_rank_and_the_job_reruns_once() {
    if !have_torchrun("a_fault_in_one_rank_is_reported_for_that_rank_and_the_job_reruns_once") {
        return;
    }
    let f = fixtures();
    let logs = tempdir("ddp-fault-logs");
    let r = torchrun(
        &["--on-gpu-fault", "cpu"],
        &ddp_fault_py(),
        &logs,
        &[
            ("FAKE_DOUBLES_DIR", &f.dir),
            ("FAKE_FAULT_RANK", Path::new("1")),
            ("FAKE_HIP_DEVICES", Path::new("gfx1030")),
        ],
    );
    let _ = std::fs::remove_dir_all(&logs);
    assert_eq!(r.status.code(), Some(0), "the CPU run's exit code\n{r}");
    let faulting = r
        .stdout
        .lines()
        .find(|l| l.starts_with("rank 1: pid ") && l.contains(" faults at 0x"))
        .unwrap_or_else(|| panic!("rank 1 did not fault\n{r}"));
    let pid = pid_in(faulting);
    // The first run's ranks, then the CPU re-run's.
    let ranks = rank_pids(&r);
    assert_eq!(ranks.len(), 4, "{r}");
    assert!(ranks.contains(&pid), "{r}");
    let reports: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("rmcp: report: GPU memory fault at address "))
        .collect();
    assert_eq!(reports.len(), 1, "one report: rank 0 wrote none\n{r}");
    assert!(
        reports[0].contains(&format!(
            " in process {pid} (RANK 1, LOCAL_RANK 1); reason: page not present"
        )),
        "{r}"
    );
    assert!(
        r.stderr.contains("rmcp: report: address 0x")
            && r.stderr
                .contains("is 64 bytes into a live allocation: hipHostMalloc of 4096 bytes"),
        "{r}"
    );
    assert_eq!(r.stderr.matches("re-running on CPU").count(), 1, "{r}");
    // The re-run (HIP_VISIBLE_DEVICES=-1) trained to the end; the first run did not.
    assert_eq!(r.stdout.lines().filter(|l| *l == "ok").count(), 1, "{r}");
    // ctypes looked hipHostMalloc up on the double's handle; the audit mode sent it
    // through librmcp's hook, which rewrote the flags.
    let flags: Vec<u64> = r.flags_of("hipHostMalloc");
    assert_eq!(flags, vec![0x8000_0000], "{r}");
}

/// Without `rmcp run`'s fallback, RMCP_FAULT_REPORT with `%p` leaves exactly one file:
/// the faulting rank's, named by its pid.
#[test]
fn only_the_faulting_rank_writes_a_report_file() {
    if !have_torchrun("only_the_faulting_rank_writes_a_report_file") {
        return;
    }
    let f = fixtures();
    let logs = tempdir("ddp-report-logs");
    let reports = tempdir("ddp-reports");
    let pattern = reports.join("fault-%p.json");
    let r = torchrun(
        &[],
        &ddp_fault_py(),
        &logs,
        &[
            ("FAKE_DOUBLES_DIR", &f.dir),
            ("FAKE_FAULT_RANK", Path::new("1")),
            ("FAKE_HIP_DEVICES", Path::new("gfx1030")),
            ("RMCP_FAULT_REPORT", &pattern),
        ],
    );
    let _ = std::fs::remove_dir_all(&logs);
    let files: Vec<String> = std::fs::read_dir(&reports)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let pid = r
        .stdout
        .lines()
        .find(|l| l.starts_with("rank 1: pid "))
        .map(pid_in)
        .unwrap_or_else(|| panic!("rank 1 did not fault\n{r}"));
    let json = std::fs::read_to_string(reports.join(format!("fault-{pid}.json")));
    let _ = std::fs::remove_dir_all(&reports);
    // torchrun exits 1 when a worker fails.
    assert_eq!(r.status.code(), Some(1), "{r}");
    assert_eq!(files, vec![format!("fault-{pid}.json")], "{r}");
    let json = json.unwrap();
    assert!(
        json.contains(&format!(
            "\"process\":{{\"pid\":{pid},\"rank\":1,\"local_rank\":1}}"
        )),
        "{json}"
    );
    // The live report went to the rank's stderr, through torchrun's tee.
    assert!(
        plain_stderr(&r).contains("rmcp: GPU memory fault at address 0x")
            && r.stderr.contains("[default1]:rmcp: GPU memory fault"),
        "{r}"
    );
    assert!(!r.stderr.contains("[default0]:rmcp"), "{r}");
}
