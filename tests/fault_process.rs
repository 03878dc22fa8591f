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
    // The later reports are beside it, under unique names (pid and time).
    let names = files(&dir);
    assert_eq!(names.len(), 3, "{names:?}");
    for p in [p1, p2] {
        let name = names
            .iter()
            .find(|n| n.starts_with(&format!("fault.json.{p}-")))
            .unwrap_or_else(|| panic!("no report of {p}: {names:?}"));
        let json = std::fs::read_to_string(dir.join(name)).unwrap();
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
    // The first under the name asked for, the others beside it under unique
    // names (pid and time).
    let names = files(&dir);
    assert_eq!(names.len(), 8, "{names:?}\n{r}");
    assert!(names.contains(&"fault.json".to_string()), "{names:?}");
    assert!(
        names
            .iter()
            .all(|n| n == "fault.json" || n.starts_with(&format!("fault.json.{pid}-"))),
        "{names:?}"
    );
    for f in &names {
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

/// The fault run of `fault`, started in `cwd`, with more ops before the fault.
fn fault_in(cwd: &Path, report: &std::ffi::OsStr, before_fault: &[&str]) -> Run {
    let mut args = vec!["hipMalloc:4096", "hsa_init"];
    args.extend_from_slice(before_fault);
    args.extend(["hipHostMalloc:4096:0", "hsa_fault:live+16:1"]);
    let r = Scenario::new(Program::DriverExe)
        .devices("gfx1030")
        .preload(true)
        .current_dir(cwd)
        .env("RMCP_FAULT_REPORT", report)
        .args(args)
        .run();
    assert_eq!(r.signal(), Some(libc::SIGABRT), "{r}");
    r
}

/// Issue 18 item 7: a relative RMCP_FAULT_REPORT is resolved against the
/// working directory rmcp started in, not the one the program moved to.
#[test]
fn a_relative_report_path_is_resolved_at_start() {
    let d = tempdir("fault-relative");
    let (start, later) = (d.join("start"), d.join("later"));
    std::fs::create_dir_all(&start).unwrap();
    std::fs::create_dir_all(&later).unwrap();
    let chdir = format!("chdir:{}", later.display());
    let r = fault_in(&start, "rel-%p.json".as_ref(), &[&chdir]);
    let pid = reported_pid(&r);
    assert_eq!(files(&start), vec![format!("rel-{pid}.json")], "{r}");
    assert!(files(&later).is_empty(), "{r}");
    assert!(
        r.stderr
            .contains(&format!("{}/rel-{pid}.json", start.display())),
        "the report says where the JSON is\n{r}"
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// Issue 18 item 7: a report path rmcp cannot use is said at start, naming
/// the directory and the error; at the fault the line names the path and
/// the error again. A directory as the path (or one ending in '/') gets the
/// report inside it, never a silent `<dir>.<pid>`.
#[test]
fn an_unusable_report_path_is_named_at_start_and_at_the_fault() {
    let d = tempdir("fault-unusable");
    let missing = d.join("missing/f-%p.json");
    let r = fault_in(&d, missing.as_os_str(), &[]);
    let pid = reported_pid(&r);
    let start = r
        .stderr
        .lines()
        .position(|l| {
            l.starts_with("rmcp: warn: RMCP_FAULT_REPORT=")
                && l.contains(&format!("cannot create files in {}/missing ", d.display()))
                && l.contains("(No such file or directory, errno 2)")
        })
        .unwrap_or_else(|| panic!("no warning at start\n{r}"));
    let at_fault = r
        .stderr
        .lines()
        .position(|l| {
            l.contains(&format!("{}/missing/f-{pid}.json", d.display()))
                && l.contains("No such file or directory, errno 2")
        })
        .unwrap_or_else(|| panic!("no failure line naming the path and errno\n{r}"));
    assert!(start < at_fault, "{r}");
    assert_eq!(files(&d), Vec::<String>::new(), "{r}");

    // A path too long for a file name: said at start, and at the fault.
    // (4080 bytes: under the 4096 RMCP_FAULT_REPORT accepts.)
    let long = d.join("x".repeat(4080 - d.as_os_str().len() - 1));
    let r = fault_in(&d, long.as_os_str(), &[]);
    assert_eq!(
        r.stderr.matches("File name too long, errno 36").count(),
        2,
        "{r}"
    );

    // A directory, with and without the trailing '/'.
    for (tag, slash) in [("adir", ""), ("bdir", "/")] {
        let dir = d.join(tag);
        std::fs::create_dir_all(&dir).unwrap();
        let r = fault_in(&d, format!("{}{slash}", dir.display()).as_ref(), &[]);
        let pid = reported_pid(&r);
        assert_eq!(files(&dir), vec![format!("rmcp-fault-{pid}.json")], "{r}");
        assert!(
            !files(&d).iter().any(|f| f.starts_with(&format!("{tag}."))),
            "{r}"
        );
    }
    let _ = std::fs::remove_dir_all(&d);
}

/// Issue 18 item 5: in a PID namespace the program is pid 1 every time a
/// container restarts. Three runs with the same RMCP_FAULT_REPORT keep
/// three reports: the first under the name asked for, the others beside it
/// under unique names (pid and time), none overwritten.
#[test]
fn restarts_as_pid_1_never_lose_a_report() {
    let ok = std::process::Command::new("unshare")
        .args(["--pid", "--fork", "true"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        common::skip_test(
            "restarts_as_pid_1_never_lose_a_report",
            "`unshare --pid --fork` is not permitted here",
            "run as root (util-linux unshare)",
        );
        return;
    }
    let d = tempdir("fault-pid1");
    let report = d.join("fault-%p.json");
    let fx = common::fixtures();
    for run in 0..3 {
        let r = Scenario::new(Program::Path("unshare".into()))
            .devices("gfx1030")
            .lib_dir(&fx.dir)
            .env("RMCP_FAULT_REPORT", &report)
            .args(["--pid", "--fork", "env"])
            .arg(format!("LD_PRELOAD={}", common::librmcp().display()))
            .arg(Program::DriverExe.path())
            .args(["hsa_init", "hipHostMalloc:4096:0", "hsa_fault:live+16:1"])
            .run();
        assert!(
            r.stderr.contains(" in process 1; reason: "),
            "run {run}: pid 1\n{r}"
        );
        let names = files(&d);
        assert_eq!(names.len(), run + 1, "run {run}: {names:?}\n{r}");
    }
    let names = files(&d);
    assert!(names.contains(&"fault-1.json".to_string()), "{names:?}");
    for n in &names {
        let json = std::fs::read_to_string(d.join(n)).unwrap();
        assert!(json.contains("\"process\":{\"pid\":1,"), "{n}: {json}");
        assert!(
            n == "fault-1.json" || n.starts_with("fault-1.json.1-"),
            "{names:?}"
        );
    }
    let _ = std::fs::remove_dir_all(&d);
}

/// What held (issue 18): a report file name that is a symlink is never
/// followed: the target is untouched and the report goes beside the link.
#[test]
fn a_symlink_at_the_report_path_is_never_followed() {
    let d = tempdir("fault-symlink");
    let target = d.join("target.txt");
    std::fs::write(&target, "not yours\n").unwrap();
    std::os::unix::fs::symlink(&target, d.join("fault.json")).unwrap();
    std::os::unix::fs::symlink(d.join("dangling"), d.join("dangling.json")).unwrap();
    for link in ["fault.json", "dangling.json"] {
        let r = fault(&d.join(link), &[]);
        let pid = reported_pid(&r);
        assert!(
            files(&d)
                .iter()
                .any(|n| n.starts_with(&format!("{link}.{pid}-"))),
            "{:?}\n{r}",
            files(&d)
        );
    }
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "not yours\n");
    assert!(!d.join("dangling").exists());
    let _ = std::fs::remove_dir_all(&d);
}
