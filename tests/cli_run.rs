//! `rmcp run`: environment, exit codes, signals, bad flags and the CPU fallback.
//! librmcp.so is faked with RMCP_LIBRARY pointing at any existing file.

mod common;

use common::tempdir;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A stand-in for librmcp.so (never loaded successfully: ld.so skips it with a warning).
fn fake_lib(dir: &Path) -> PathBuf {
    let p = dir.join("librmcp.so");
    std::fs::write(&p, b"not really a library").unwrap();
    p
}

fn rmcp(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rmcp"));
    c.arg("run").args(args);
    for k in [
        "LD_PRELOAD",
        "RMCP_MODE",
        "RMCP_LOG",
        "RMCP_FAULT_REPORT",
        "HIP_VISIBLE_DEVICES",
        "CUDA_VISIBLE_DEVICES",
        "RMCP_LIBRARY",
    ] {
        c.env_remove(k);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
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
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let line = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        line.trim(),
        format!("{lib_s}:/nonexistent/libother.so|force|debug|unset")
    );

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
  cat "{dir}/report.json" > "$RMCP_FAULT_REPORT"
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
    let mut c = Command::new(env!("CARGO_BIN_EXE_rmcp"));
    c.args(["run", "--", "sh", "-c"])
        .arg(format!("trap 'kill $! 2>/dev/null; echo got-term; exit 3' TERM; touch {}/ready; sleep 30 & wait", d.display()))
        .env("RMCP_LIBRARY", &lib)
        .env_remove("LD_PRELOAD")
        .stdout(std::process::Stdio::piped())
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
