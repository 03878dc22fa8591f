//! Fault reports in runs of many processes: each report names its process (pid, and
//! RANK / LOCAL_RANK when a launcher set them), RMCP_FAULT_REPORT expands `%p` to the pid,
//! and no process overwrites another's report file.

mod common;

use common::{tempdir, Program, Run, Scenario};
use std::path::Path;

/// The driver faults inside a live hipHostMalloc block (the HSA double raises the fault
/// and aborts, as ROCr does).
fn fault(report: &Path, env: &[(&str, &str)]) -> Run {
    let mut s = Scenario::new(Program::DriverExe)
        .devices("gfx1030")
        .preload(true)
        .env("RMCP_FAULT_REPORT", report)
        .args(["hsa_init", "hipHostMalloc:4096:0", "hsa_fault:live+16:1"]);
    for (k, v) in env {
        s = s.env(k, v);
    }
    let r = s.run();
    assert_eq!(r.signal(), Some(libc::SIGABRT), "{r}");
    r
}

/// The pid named in the report's first line ("... in process N ...; reason: ...").
fn reported_pid(r: &Run) -> u32 {
    let line = r
        .stderr
        .lines()
        .find(|l| l.starts_with("rmcp: GPU memory fault at address"))
        .unwrap_or_else(|| panic!("no report\n{r}"));
    let rest = line.split(" in process ").nth(1).expect("process named");
    rest.split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|d| d.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {line:?}"))
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn report_names_pid_and_ranks_and_percent_p_expands() {
    let dir = tempdir("fault-pid");
    let r = fault(
        &dir.join("fault-%p.json"),
        &[("RANK", "3"), ("LOCAL_RANK", "1")],
    );
    let pid = reported_pid(&r);
    assert!(
        r.stderr.contains(&format!(
            " in process {pid} (RANK 3, LOCAL_RANK 1); reason: page not present\n"
        )),
        "{r}"
    );
    assert_eq!(files(&dir), vec![format!("fault-{pid}.json")]);
    let json = std::fs::read_to_string(dir.join(format!("fault-{pid}.json"))).unwrap();
    assert!(
        json.contains(&format!(
            ",\"process\":{{\"pid\":{pid},\"rank\":3,\"local_rank\":1}},\"text\":"
        )),
        "{json}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_existing_report_is_never_overwritten() {
    let dir = tempdir("fault-excl");
    let report = dir.join("fault.json");
    std::fs::write(&report, "an earlier process's report\n").unwrap();
    let first = fault(&report, &[]);
    let second = fault(&report, &[]);
    let (p1, p2) = (reported_pid(&first), reported_pid(&second));
    assert_ne!(p1, p2);
    assert_eq!(
        std::fs::read_to_string(&report).unwrap(),
        "an earlier process's report\n"
    );
    let mut expected = vec![
        "fault.json".to_string(),
        format!("fault.json.{p1}"),
        format!("fault.json.{p2}"),
    ];
    expected.sort();
    assert_eq!(files(&dir), expected);
    for p in [p1, p2] {
        let json = std::fs::read_to_string(dir.join(format!("fault.json.{p}"))).unwrap();
        assert!(
            json.contains(&format!(
                "\"process\":{{\"pid\":{p},\"rank\":null,\"local_rank\":null}}"
            )),
            "{json}"
        );
    }
    // No ranks set: the first line names the pid only.
    assert!(
        first
            .stderr
            .contains(&format!(" in process {p1}; reason: ")),
        "{first}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bad_rank_is_named_once_and_left_out() {
    let dir = tempdir("fault-badrank");
    let r = fault(
        &dir.join("f-%p.json"),
        &[("RANK", "first"), ("LOCAL_RANK", "2")],
    );
    let warnings: Vec<&str> = r.stderr.lines().filter(|l| l.contains("RANK=")).collect();
    assert_eq!(
        warnings,
        vec![
            "rmcp: warn: RANK=\"first\" is not a rank (accepted: a non-negative integer); fault reports leave it out"
        ],
        "{r}"
    );
    let pid = reported_pid(&r);
    assert!(
        r.stderr
            .contains(&format!(" in process {pid} (LOCAL_RANK 2); reason: ")),
        "{r}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `rmcp run --on-gpu-fault cpu` gives each process its own report file (RMCP_FAULT_REPORT
/// with %p), prints every report that was written, and re-runs the command once. The
/// command here is a script standing in for a two-worker job in which both workers wrote
/// a report; librmcp.so is stood in for by an empty shared library.
#[test]
fn rmcp_run_prints_every_process_report_and_reruns_once() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempdir("run-reports");
    let lib = common::stand_in_library(&d, "librmcp.so");
    let report = |pid: u32, rank: u32| {
        format!(
            r#"{{"rmcp_fault_report":1,"text":"GPU memory fault at address 0x10 on gfx1030 (node 1, agent 0x1) in process {pid} (RANK {rank}); reason: page not present\n"}}"#
        )
    };
    let script = d.join("job.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n\
             if [ \"$HIP_VISIBLE_DEVICES\" = \"-1\" ]; then echo cpu-run; exit 0; fi\n\
             case \"$RMCP_FAULT_REPORT\" in *%p*) ;; *) echo \"no %p in $RMCP_FAULT_REPORT\" >&2; exit 9;; esac\n\
             dir=$(dirname \"$RMCP_FAULT_REPORT\")\n\
             printf '%s' '{}' > \"$dir/fault-report-111.json\"\n\
             sleep 0.01\n\
             printf '%s' '{}' > \"$dir/fault-report-222.json\"\n\
             exit 1\n",
            report(111, 0),
            report(222, 1)
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let r = Scenario::new(Program::Path(env!("CARGO_BIN_EXE_rmcp").into()))
        .env("RMCP_LIBRARY", &lib)
        .args(["run", "--no-audit", "--on-gpu-fault", "cpu", "--"])
        .arg(&script)
        .run();
    let _ = std::fs::remove_dir_all(&d);
    r.assert_success();
    assert_eq!(r.stdout, "cpu-run\n", "{r}");
    let reports: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("rmcp: report: "))
        .collect();
    assert_eq!(
        reports,
        vec![
            "rmcp: report: GPU memory fault at address 0x10 on gfx1030 (node 1, agent 0x1) in process 111 (RANK 0); reason: page not present",
            "rmcp: report: GPU memory fault at address 0x10 on gfx1030 (node 1, agent 0x1) in process 222 (RANK 1); reason: page not present",
        ],
        "{r}"
    );
    assert_eq!(r.stderr.matches("re-running on CPU").count(), 1, "{r}");
}

/// A process that goes on after its faults (ROCm 7's default: HIP's own handler says the
/// fault is handled; FAKE_HSA_FAULT_HANDLED stands for it): each fault gets its own report
/// and its own JSON file, up to 8; the 9th and later are counted, one line says rmcp stays
/// silent about them; no file is overwritten; every report's last line says the process
/// goes on under HIP 7 or, with the HIP 6 double here, that the runtime aborts (what it
/// would do without HIP 7's handler); the exit summary says how many faults there were.
#[test]
fn a_process_that_goes_on_gets_one_report_per_fault_up_to_eight() {
    let dir = tempdir("fault-many");
    let report = dir.join("fault.json");
    let mut args = vec!["hsa_init", "hipHostMalloc:4096:0"];
    args.extend(std::iter::repeat_n("hsa_fault:live+16:1", 10));
    let r = Scenario::new(Program::DriverExe)
        .devices("gfx1030")
        .preload(true)
        .env("RMCP_FAULT_REPORT", &report)
        .env("FAKE_HSA_FAULT_HANDLED", "1")
        .args(args)
        .run();
    assert_eq!(r.status.code(), Some(0), "{r}");
    let pid = reported_pid(&r);
    assert_eq!(
        r.stderr
            .matches("rmcp: GPU memory fault at address")
            .count(),
        8,
        "{r}"
    );
    assert_eq!(
        r.stderr
            .matches("rmcp: another GPU memory fault; rmcp reports at most 8 per process and stays silent about the rest\n")
            .count(),
        1,
        "{r}"
    );
    // The double's own message (as ROCr's) never came: the fault was handled.
    assert!(
        !r.stderr
            .lines()
            .any(|l| l.starts_with("Memory access fault by GPU")),
        "{r}"
    );
    let mut expected = vec!["fault.json".to_string()];
    expected.extend((2..=8).map(|n| format!("fault.json.{pid}.{n}")));
    expected.sort();
    assert_eq!(files(&dir), expected, "{r}");
    for f in &expected {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(f)).unwrap()).unwrap();
        assert_eq!(v["process"]["pid"], pid, "{f}");
        assert_eq!(v["next"]["id"], "runtime-aborts", "{f}");
    }
    assert!(
        r.stderr.contains("rmcp: next: the runtime will now print its own message (\"Memory access fault by GPU ...\") and abort the process, because HIP 6 has no GPU fault handler of its own to keep the process alive\n"),
        "{r}"
    );
    assert!(
        r.stderr.contains(
            "this process ran on after 10 GPU memory fault(s); rmcp reported the first 8 above"
        ),
        "{r}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
