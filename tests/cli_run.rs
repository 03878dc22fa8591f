//! `rmcp run`: environment, exit codes, signals, bad flags and the CPU fallback.
//! librmcp.so is stood in for by an empty shared library (RMCP_LIBRARY), so
//! the programs run exactly as they would without rmcp.

mod common;

use common::{stand_in_library, tempdir, Cli};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A stand-in for librmcp.so: an x86-64 shared library that does nothing.
fn fake_lib(dir: &Path) -> PathBuf {
    stand_in_library(dir, "librmcp.so")
}

/// `rmcp run ARGS` in the clean environment of [`common::Cli`] plus `env`;
/// the fault reports `rmcp run` keeps go to a test directory, not ~.
fn rmcp(args: &[&str], env: &[(&str, &str)]) -> Output {
    run_cli(args)
        .env(
            "XDG_STATE_HOME",
            std::env::temp_dir().join(format!("rmcp-test-state-{}", std::process::id())),
        )
        .envs(env)
        .output()
}

fn run_cli(args: &[&str]) -> Cli {
    Cli::new(&["run"]).args(args)
}

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn preload_is_prepended_and_mode_and_log_are_set() {
    let d = tempdir("env");
    let lib = fake_lib(&d);
    let lib_s = std::fs::canonicalize(&lib)
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let out = rmcp(
        &[
            "--mode",
            "force",
            "--log",
            "debug",
            "--",
            "sh",
            "-c",
            "echo \"$LD_PRELOAD|$RMCP_MODE|$RMCP_LOG|${RMCP_FAULT_REPORT-unset}\"",
        ],
        &[
            ("RMCP_LIBRARY", lib.to_str().unwrap()),
            ("LD_PRELOAD", "/nonexistent/libother.so"),
            ("XDG_STATE_HOME", d.join("state").to_str().unwrap()),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let line = String::from_utf8(out.stdout).unwrap();
    // Fault reports go to the state directory, kept for doctor --bug-report.
    let kept = d.join("state/rmcp/fault-reports");
    assert_eq!(
        line.trim(),
        format!(
            "{lib_s}:/nonexistent/libother.so|force|debug|{}/fault-report-%p.json",
            kept.display()
        )
    );
    assert!(kept.is_dir());

    // no --mode: auto, unless the environment already has one; RMCP_LOG untouched
    let out = rmcp(
        &[
            "--",
            "sh",
            "-c",
            "echo \"$LD_PRELOAD|$RMCP_MODE|${RMCP_LOG-unset}\"",
        ],
        &[("RMCP_LIBRARY", lib.to_str().unwrap())],
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        format!("{lib_s}|auto|unset")
    );
    let out = rmcp(
        &["sh", "-c", "echo $RMCP_MODE"],
        &[
            ("RMCP_LIBRARY", lib.to_str().unwrap()),
            ("RMCP_MODE", "off"),
        ],
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), "off");
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn exit_codes_and_signals_are_passed_on() {
    let d = tempdir("codes");
    let lib = fake_lib(&d);
    let env = [("RMCP_LIBRARY", lib.to_str().unwrap())];
    assert_eq!(
        rmcp(&["--", "sh", "-c", "exit 7"], &env).status.code(),
        Some(7)
    );
    assert_eq!(rmcp(&["--", "true"], &env).status.code(), Some(0));

    let out = rmcp(&["--", "sh", "-c", "kill -ABRT $$"], &env);
    assert_eq!(out.status.code(), Some(134));
    assert!(
        stderr(&out).contains("rmcp: sh was killed by signal 6 (SIGABRT)"),
        "{}",
        stderr(&out)
    );
    let out = rmcp(&["--", "sh", "-c", "kill -SEGV $$"], &env);
    assert_eq!(out.status.code(), Some(139));
    assert!(stderr(&out).contains("signal 11 (SIGSEGV)"));

    let out = rmcp(&["--", "/nonexistent/program"], &env);
    assert_eq!(out.status.code(), Some(127));
    assert!(stderr(&out).contains("cannot run /nonexistent/program"));
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn bad_flags_exit_2_naming_the_value() {
    let d = tempdir("flags");
    let lib = fake_lib(&d);
    let env = [("RMCP_LIBRARY", lib.to_str().unwrap())];
    for (args, needle, accepted) in [
        (
            vec!["--mode", "fast", "--", "true"],
            "'fast'",
            "auto, force, off",
        ),
        (
            vec!["--log", "loud", "--", "true"],
            "'loud'",
            "off, error, warn, info, debug, trace",
        ),
        (
            vec!["--on-gpu-fault", "gpu", "--", "true"],
            "'gpu'",
            "accepted: cpu",
        ),
        (vec!["--frob", "--", "true"], "'--frob'", "accepted"),
        (vec!["--mode", "auto"], "no command", "CMD"),
    ] {
        let out = rmcp(&args, &env);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let e = stderr(&out);
        assert_eq!(e.lines().count(), 1, "{e}");
        assert!(e.contains(needle) && e.contains(accepted), "{e}");
    }
    let out = rmcp(
        &["--", "true"],
        &[("RMCP_LIBRARY", "/nonexistent/librmcp.so")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("/nonexistent/librmcp.so"));
    std::fs::remove_dir_all(d).unwrap();
}

const REPORT: &str = r#"{"rmcp_fault_report":1,"address":"0x7f1234560010","reason_mask":1,"reasons":["page not present"],"gpu":{"name":"gfx1030","node":1},"verdict":"freed","allocation":{"entry_point":"hipHostMalloc","base":"0x7f1234560000","size":4096,"offset":16,"requested_flags":"0x0","applied_flags":"0x80000000","device":0,"thread":1234,"age_ms":12,"freed_ms_ago":3},"text":"rmcp: GPU memory fault at 0x7f1234560010 on gfx1030 (node 1): page not present\nrmcp: 16 bytes into a 4096-byte hipHostMalloc block freed 3 ms ago\n"}"#;

fn faulting_program(d: &Path, report: &str) -> PathBuf {
    std::fs::write(d.join("report.json"), report).unwrap();
    script(
        d,
        "prog.sh",
        &format!(
            r#"echo "$RMCP_FAULT_REPORT" >> "{dir}/paths"
if [ "$HIP_VISIBLE_DEVICES" != "-1" ]; then
  cat "{dir}/report.json" > "$(printf '%s' "$RMCP_FAULT_REPORT" | sed "s/%p/$$/g")"
  kill -ABRT $$
fi
echo "cpu run CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES"
exit 0"#,
            dir = d.display()
        ),
    )
}

#[test]
fn gpu_fault_falls_back_to_cpu() {
    let d = tempdir("fallback");
    let lib = fake_lib(&d);
    let prog = faulting_program(&d, REPORT);
    let out = rmcp(
        &["--on-gpu-fault", "cpu", "--", prog.to_str().unwrap()],
        &[("RMCP_LIBRARY", lib.to_str().unwrap())],
    );
    let e = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{e}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        "cpu run CUDA_VISIBLE_DEVICES=-1"
    );
    assert!(e.contains("was killed by signal 6 (SIGABRT)"), "{e}");
    assert!(
        e.contains("rmcp: 16 bytes into a 4096-byte hipHostMalloc block freed 3 ms ago"),
        "{e}"
    );
    assert!(
        e.contains("re-running on CPU with HIP_VISIBLE_DEVICES=-1"),
        "{e}"
    );
    assert!(e.contains("ROCR_VISIBLE_DEVICES"));
    // the report path was fresh, only given to the first run, and cleaned up
    let paths = std::fs::read_to_string(d.join("paths")).unwrap();
    let lines: Vec<&str> = paths.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(!lines[0].is_empty() && lines[1].is_empty(), "{paths}");
    let p = Path::new(lines[0]);
    assert!(!p.exists() && !p.parent().unwrap().exists());
    std::fs::remove_dir_all(d).unwrap();
}

/// The reports of a faulting run are kept (newest KEEP) in the state
/// directory for `rmcp doctor --bug-report`, with and without the fallback.
#[test]
fn fault_reports_are_kept_for_the_bug_report() {
    let d = tempdir("kept");
    let lib = fake_lib(&d);
    let prog = faulting_program(&d, REPORT);
    let state = d.join("state");
    let env = [
        ("RMCP_LIBRARY", lib.to_str().unwrap()),
        ("XDG_STATE_HOME", state.to_str().unwrap()),
    ];
    let out = rmcp(
        &["--on-gpu-fault", "cpu", "--", prog.to_str().unwrap()],
        &env,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = rmcp(&["--", prog.to_str().unwrap()], &env);
    assert_ne!(out.status.code(), Some(0));
    let kept: Vec<_> = std::fs::read_dir(state.join("rmcp/fault-reports"))
        .unwrap()
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert!(kept.iter().all(|r| r == REPORT));
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn unreadable_report_still_falls_back() {
    let d = tempdir("garbage");
    let lib = fake_lib(&d);
    let prog = faulting_program(&d, "{\"rmcp_fault_report\":1,\"text\":\"cut of");
    let out = rmcp(
        &["--on-gpu-fault=cpu", prog.to_str().unwrap()],
        &[("RMCP_LIBRARY", lib.to_str().unwrap())],
    );
    let e = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{e}");
    assert!(e.contains("unreadable"), "{e}");
    assert!(e.contains("re-running on CPU"));
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn no_report_means_no_rerun() {
    let d = tempdir("noreport");
    let lib = fake_lib(&d);
    let prog = script(
        &d,
        "p.sh",
        &format!("echo ran >> {}/count\nexit 3", d.display()),
    );
    let out = rmcp(
        &["--on-gpu-fault", "cpu", "--", prog.to_str().unwrap()],
        &[("RMCP_LIBRARY", lib.to_str().unwrap())],
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("not re-running"));
    assert_eq!(
        std::fs::read_to_string(d.join("count"))
            .unwrap()
            .lines()
            .count(),
        1
    );

    // success: one run, nothing said
    let prog = script(&d, "ok.sh", "echo fine");
    let out = rmcp(
        &["--on-gpu-fault", "cpu", "--", prog.to_str().unwrap()],
        &[("RMCP_LIBRARY", lib.to_str().unwrap())],
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(!stderr(&out).contains("rmcp:"));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "fine\n");
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn second_run_exit_code_wins() {
    let d = tempdir("second");
    let lib = fake_lib(&d);
    std::fs::write(d.join("report.json"), REPORT).unwrap();
    let prog = script(
        &d,
        "p.sh",
        &format!(
            "if [ \"$HIP_VISIBLE_DEVICES\" != \"-1\" ]; then cat {}/report.json > \"$RMCP_FAULT_REPORT\"; exit 1; fi\nexit 5",
            d.display()
        ),
    );
    let out = rmcp(
        &["--on-gpu-fault", "cpu", "--", prog.to_str().unwrap()],
        &[("RMCP_LIBRARY", lib.to_str().unwrap())],
    );
    assert_eq!(out.status.code(), Some(5));
    assert!(stderr(&out).contains("(exit status 1); re-running on CPU"));
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn sigterm_is_forwarded_to_the_command() {
    let d = tempdir("term");
    let lib = fake_lib(&d);
    let mut c = run_cli(&["--", "sh", "-c"])
        .arg(format!("trap 'kill $! 2>/dev/null; echo got-term; exit 3' TERM; touch {}/ready; sleep 30 & wait", d.display()))
        .env("RMCP_LIBRARY", &lib)
        .into_command();
    c.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = c.spawn().unwrap();
    let start = std::time::Instant::now();
    while !d.join("ready").exists() {
        assert!(start.elapsed().as_secs() < 20, "command did not start");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "got-term");
    assert!(start.elapsed().as_secs() < 20);
    std::fs::remove_dir_all(d).unwrap();
}

/// Issue 18 item 11: an RMCP_LIBRARY that ld.so cannot preload (not ELF,
/// another architecture) is refused with one line and exit status 2, before
/// the command runs; `rmcp --print-library` refuses it too.
#[test]
fn a_library_this_machine_cannot_load_is_refused() {
    let d = tempdir("badlib");
    let junk = d.join("junk.so");
    std::fs::write(&junk, b"not really a library").unwrap();
    let arm = d.join("librmcp-arm.so");
    common::wrong_architecture_copy(&fake_lib(&d), &arm);
    let prog = script(&d, "p.sh", &format!("touch {}/ran", d.display()));
    for (lib, why) in [
        (&junk, "is not an ELF file"),
        (&arm, "is a 64-bit library for "),
    ] {
        let env = [("RMCP_LIBRARY", lib.to_str().unwrap())];
        let out = rmcp(&["--", prog.to_str().unwrap()], &env);
        let e = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{e}");
        assert_eq!(e.lines().count(), 1, "{e}");
        assert!(
            e.starts_with(&format!("rmcp: run: RMCP_LIBRARY={} {why}", lib.display()))
                && e.contains("accepted: librmcp.so built for x86-64 Linux"),
            "{e}"
        );
        assert!(!d.join("ran").exists(), "the command must not run");
        let out = Cli::new(&["--print-library"])
            .env("RMCP_LIBRARY", lib)
            .output();
        let e = stderr(&out);
        assert!(!out.status.success(), "{e}");
        assert!(out.stdout.is_empty());
        assert_eq!(e.lines().count(), 1, "{e}");
        assert!(e.contains(why), "{e}");
    }
    std::fs::remove_dir_all(d).unwrap();
}

/// Issue 18 item 4: with --on-gpu-fault cpu, an RMCP_FAULT_REPORT the user
/// set still receives the GPU run's report (%p expanded, an existing file
/// never overwritten), the output says where, and the CPU run keeps it.
#[test]
fn the_users_report_path_receives_the_gpu_faults_report() {
    let d = tempdir("userreport");
    let lib = fake_lib(&d);
    let prog = faulting_program(&d, REPORT);
    let mine = d.join("mine-%p.json");
    let out = rmcp(
        &["--on-gpu-fault", "cpu", "--", prog.to_str().unwrap()],
        &[
            ("RMCP_LIBRARY", lib.to_str().unwrap()),
            ("RMCP_FAULT_REPORT", mine.to_str().unwrap()),
        ],
    );
    let e = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{e}");
    let kept: Vec<PathBuf> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("mine-")
        })
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}\n{e}");
    assert_eq!(std::fs::read_to_string(&kept[0]).unwrap(), REPORT);
    assert!(
        e.contains(&format!("is in {}\n", kept[0].display())),
        "the output names the file\n{e}"
    );
    // The CPU run is given the user's path (the first run a private one).
    let paths = std::fs::read_to_string(d.join("paths")).unwrap();
    assert_eq!(
        paths.lines().nth(1),
        Some(mine.to_str().unwrap()),
        "{paths}"
    );

    // A fixed name that already exists is kept; the report goes beside it.
    let fixed = d.join("fixed.json");
    std::fs::write(&fixed, "older\n").unwrap();
    let out = rmcp(
        &["--on-gpu-fault", "cpu", "--", prog.to_str().unwrap()],
        &[
            ("RMCP_LIBRARY", lib.to_str().unwrap()),
            ("RMCP_FAULT_REPORT", fixed.to_str().unwrap()),
        ],
    );
    let e = stderr(&out);
    assert_eq!(std::fs::read_to_string(&fixed).unwrap(), "older\n");
    let line = e
        .lines()
        .find(|l| l.contains("is in "))
        .unwrap_or_else(|| panic!("{e}"));
    let beside = PathBuf::from(line.rsplit("is in ").next().unwrap());
    assert!(
        beside
            .to_string_lossy()
            .starts_with(&format!("{}.", fixed.display())),
        "{e}"
    );
    assert_eq!(std::fs::read_to_string(&beside).unwrap(), REPORT);
    std::fs::remove_dir_all(d).unwrap();
}

/// Issue 18 item 13: `rmcp run --on-gpu-fault cpu` inside another one leaves
/// the fallback to the outer one: a command that faults every time runs
/// twice (the GPU run and one CPU run), not four times.
#[test]
fn a_nested_fallback_runs_the_command_twice_not_four_times() {
    let d = tempdir("nested");
    let lib = fake_lib(&d);
    std::fs::write(d.join("report.json"), REPORT).unwrap();
    let prog = script(
        &d,
        "always.sh",
        &format!(
            "echo run >> {dir}/count\ncat {dir}/report.json > \"$(printf '%s' \"$RMCP_FAULT_REPORT\" | sed \"s/%p/$$/g\")\"\nkill -ABRT $$",
            dir = d.display()
        ),
    );
    let bin = env!("CARGO_BIN_EXE_rmcp");
    let out = rmcp(
        &[
            "--on-gpu-fault",
            "cpu",
            "--",
            bin,
            "run",
            "--on-gpu-fault",
            "cpu",
            "--",
            prog.to_str().unwrap(),
        ],
        &[("RMCP_LIBRARY", lib.to_str().unwrap())],
    );
    let e = stderr(&out);
    let runs = std::fs::read_to_string(d.join("count")).unwrap();
    assert_eq!(runs.lines().count(), 2, "{e}");
    assert_eq!(e.matches("re-running on CPU").count(), 1, "{e}");
    assert_eq!(out.status.code(), Some(128 + 6), "{e}");
    std::fs::remove_dir_all(d).unwrap();
}

/// Issue 18 item 14: when no private report directory can be made (a bad
/// TMPDIR), the command still runs, without the fallback, and rmcp says so.
#[test]
fn a_bad_tmpdir_runs_the_command_without_the_fallback() {
    let d = tempdir("tmpdir");
    let lib = fake_lib(&d);
    let out = rmcp(
        &[
            "--on-gpu-fault",
            "cpu",
            "--",
            "sh",
            "-c",
            "echo ran; exit 4",
        ],
        &[
            ("RMCP_LIBRARY", lib.to_str().unwrap()),
            ("TMPDIR", "/nonexistent/tmp"),
        ],
    );
    let e = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{e}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ran\n");
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(
        e.contains("/nonexistent/tmp") && e.contains("without --on-gpu-fault cpu"),
        "{e}"
    );
    std::fs::remove_dir_all(d).unwrap();
}

/// Issue 18 item 6: as PID 1 of a PID namespace (a container's ENTRYPOINT),
/// `rmcp run` reaps the orphans of the command's tree: five double-forked
/// `sleep`s that end while the command runs leave no zombie, and the
/// command's exit status still comes through.
#[test]
fn as_pid_1_it_reaps_orphans_like_an_init() {
    let ok = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "true"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        common::skip_test(
            "as_pid_1_it_reaps_orphans_like_an_init",
            "`unshare --pid --fork --mount-proc` is not permitted here",
            "run as root (util-linux unshare)",
        );
        return;
    }
    let d = tempdir("init");
    let lib = fake_lib(&d);
    // The orphans are re-parented to PID 1; after they end, count zombies.
    let body = r#"for i in 1 2 3 4 5; do (sleep 0.2 &); done
sleep 1.5
n=0
for f in /proc/[0-9]*/stat; do
  read -r l < "$f" 2>/dev/null || continue
  case "${l##*) }" in Z*) n=$((n+1));; esac
done
echo "pid1=$(cut -d' ' -f2 /proc/1/stat) zombies=$n"
exit 7"#;
    let out = Cli::wrapped(
        &["unshare", "--pid", "--fork", "--mount-proc"],
        &["run", "--", "sh", "-c", body],
    )
    .env("RMCP_LIBRARY", &lib)
    .output();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "pid1=(rmcp) zombies=0\n",
        "{}",
        stderr(&out)
    );
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    std::fs::remove_dir_all(d).unwrap();
}
