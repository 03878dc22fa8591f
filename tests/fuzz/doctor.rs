//! Property tests of `rmcp doctor`'s file and log parsers: the override
//! scanner (shell, environment, systemd, compose and .env syntax), the
//! kernel-log scanner (faults, status registers, resets, firmware, MES,
//! taint), the version and taint files, and the bug report.
//!
//! The parsers live in the `rmcp` binary, so each case builds a fixture root
//! in a temporary directory from the seeded `Rng` (mutated lines of the
//! committed fixture logs, override assignments in every syntax with broken
//! values, random bytes, NUL bytes, very long lines, symlink loops,
//! directories where files belong, dangling EnvironmentFile= paths) and runs
//! `rmcp doctor --json --root ROOT --kernel-log LOG --bug-report FILE` on it.
//!
//! Properties:
//! - doctor never crashes: exit status 0 or 1, nothing on stderr but the
//!   bug-report line, stdout is one JSON document of schema 1;
//! - every finding id is one SCHEMA.md documents, every message is one line
//!   under 2000 bytes;
//! - the bug report is written and holds no NUL byte.
//!
//! `RMCP_FUZZ_DOCTOR_CASES=N` runs N cases per seed (default 8).

use super::{seeds, Rng};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The finding ids SCHEMA.md documents (backticked in its id table).
fn documented_ids() -> BTreeSet<String> {
    let schema = std::fs::read_to_string(manifest().join("src/bin/rmcp/doctor/SCHEMA.md")).unwrap();
    let mut ids = BTreeSet::new();
    for line in schema.lines().filter(|l| l.starts_with("| `")) {
        let first = line.split('|').nth(1).unwrap_or("");
        for part in first.split('`').skip(1).step_by(2) {
            ids.insert(part.to_string());
        }
    }
    ids
}

fn fixture_lines() -> Vec<String> {
    let dir = manifest().join("tests/fixtures/doctor/logs");
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        v.extend(
            std::fs::read_to_string(e.path())
                .unwrap()
                .lines()
                .map(str::to_string),
        );
    }
    v.sort();
    v
}

fn mutate(r: &mut Rng, line: &str) -> Vec<u8> {
    let mut b = line.as_bytes().to_vec();
    match r.below(9) {
        0 => b.truncate(r.below(b.len() + 1)),
        1 => {
            for _ in 0..1 + r.below(4) {
                if !b.is_empty() {
                    let i = r.below(b.len());
                    b[i] = *r.pick(b"0123456789abcdefxX:.()[] \t-_");
                }
            }
        }
        2 => b.extend(std::iter::repeat_n(b'9', 40)),
        3 => b.extend((0..r.below(64)).map(|_| r.next() as u8)),
        4 => {
            b = b"amdgpu 0000:0b:00.0: amdgpu: GCVM_L2_PROTECTION_FAULT_STATUS:0xFFFFFFFFFFFFFFFF"
                .to_vec()
        }
        5 => b.extend(std::iter::repeat_n(b'x', 100_000)),
        6 => b = b"CPU: 1 PID: 2 Comm: x Tainted: ".to_vec(),
        _ => {}
    }
    b
}

fn kernel_log(r: &mut Rng, lines: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..r.below(60) {
        let line = lines[r.below(lines.len())].clone();
        out.extend(mutate(r, &line));
        out.push(b'\n');
    }
    if r.chance(15) {
        out.insert(r.below(out.len() + 1), 0);
    }
    out
}

fn assignment(r: &mut Rng) -> String {
    let prefix = r.pick(&[
        "export ",
        "",
        "set -gx ",
        "Environment=",
        "Environment=\"",
        "  - ",
        "    ",
        "unset ",
        "# ",
        "echo $",
        "${",
        "alias x='",
    ]);
    let var = r.pick(&[
        "HSA_OVERRIDE_GFX_VERSION",
        "HSA_OVERRIDE_GFX_VERSION_1",
        "HSA_OVERRIDE_GFX_VERSION_0",
        "HSA_OVERRIDE_GFX_VERSION_99999999999",
        "HSA_OVERRIDE_GFX_VERSION_",
        "HSA_OVERRIDE_GFX_VERSIONS",
    ]);
    let sep = r.pick(&["=", ": ", " ", "=\"", "='", "\": \"", ""]);
    let value = match r.below(8) {
        0 => "10.3.0".to_string(),
        1 => "10.1.0".to_string(),
        2 => String::new(),
        3 => "${X:-10.3.4}".to_string(),
        4 => "${".to_string(),
        5 => "999.999.999".to_string(),
        6 => "1".repeat(r.below(300)),
        _ => String::from_utf8_lossy(
            &(0..r.below(12))
                .map(|_| r.next() as u8)
                .collect::<Vec<u8>>(),
        )
        .into_owned(),
    };
    format!("{prefix}{var}{sep}{value}")
}

fn config_text(r: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..r.below(12) {
        let line = if r.chance(3) {
            "PATH=/usr/bin".to_string()
        } else {
            assignment(r)
        };
        out.extend(line.as_bytes());
        out.push(b'\n');
    }
    if r.chance(12) {
        out.push(0);
    }
    out
}

/// Writes `bytes` at `root/rel`, or puts something awkward there instead.
fn place(r: &mut Rng, root: &Path, rel: &str, bytes: &[u8]) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    match r.below(14) {
        0 => std::os::unix::fs::symlink(&p, &p).unwrap(), // a loop
        1 => std::fs::create_dir_all(&p).unwrap(),
        2 => std::os::unix::fs::symlink("/nonexistent/target", &p).unwrap(),
        _ => std::fs::write(&p, bytes).unwrap(),
    }
}

fn build_case(r: &mut Rng, dir: &Path, lines: &[String]) -> (PathBuf, PathBuf) {
    let root = dir.join("root");
    std::fs::create_dir_all(&root).unwrap();
    let topo = manifest().join(r.pick(&[
        "tests/fixtures/doctor/rdna1-rx5700xt/sys",
        "tests/fixtures/doctor/rdna2-rx6700xt/sys",
        "tests/fixtures/doctor/rdna3-rx7900xtx/sys",
    ]));
    std::os::unix::fs::symlink(topo, root.join("sys")).unwrap();
    for rel in [
        "home/alice/.bashrc",
        "home/alice/.profile",
        "home/alice/.config/environment.d/10.conf",
        "home/alice/.config/fish/conf.d/rocm.fish",
        "etc/environment",
        "etc/profile.d/rocm.sh",
        "etc/systemd/system/ollama.service",
        "etc/systemd/system/ollama.service.d/override.conf",
        "etc/ollama.env",
    ] {
        if r.chance(2) {
            let mut text = config_text(r);
            if rel.ends_with(".service") && r.chance(2) {
                text.extend(b"EnvironmentFile=-/etc/ollama.env\nEnvironmentFile=/etc/loop.env\n");
            }
            place(r, &root, rel, &text);
        }
    }
    if r.chance(3) {
        std::os::unix::fs::symlink(root.join("etc/loop.env"), root.join("etc/loop.env"))
            .unwrap_or(());
    }
    if r.chance(3) {
        // A directory that loops back to its parent.
        let d = root.join("etc/systemd/system/loop.service.d");
        std::fs::create_dir_all(d.parent().unwrap()).unwrap();
        let _ = std::os::unix::fs::symlink("..", &d);
    }
    for (rel, good) in [
        ("proc/sys/kernel/osrelease", "6.18.4-arch1-1"),
        ("proc/sys/kernel/tainted", "12288"),
        ("opt/rocm/.info/version", "7.1.1-38"),
    ] {
        if r.chance(2) {
            let bytes: Vec<u8> = if r.chance(2) {
                good.as_bytes().to_vec()
            } else {
                (0..r.below(40)).map(|_| r.next() as u8).collect()
            };
            place(r, &root, rel, &bytes);
        }
    }
    if r.chance(2) {
        let mut report = b"{\"rmcp_fault_report\":1,\"text\":\"rmcp: fault\\n\"}".to_vec();
        if r.chance(2) {
            report = (0..r.below(200)).map(|_| r.next() as u8).collect();
        }
        place(
            r,
            &root,
            "home/alice/.local/state/rmcp/fault-reports/fault-report-1.json",
            &report,
        );
    }
    let cwd = dir.join("cwd");
    std::fs::create_dir_all(&cwd).unwrap();
    for f in ["compose.yaml", ".env"] {
        if r.chance(2) {
            let text = config_text(r);
            place(r, &cwd, f, &text);
        }
    }
    let log = dir.join("kernel.log");
    std::fs::write(&log, kernel_log(r, lines)).unwrap();
    (root, cwd)
}

fn check(dir: &Path, root: &Path, cwd: &Path, ids: &BTreeSet<String>) -> Result<(), String> {
    let report = dir.join("bug.md");
    let out = Command::new(env!("CARGO_BIN_EXE_rmcp"))
        .args(["doctor", "--json", "--python", "none", "--root"])
        .arg(root)
        .arg("--kernel-log")
        .arg(dir.join("kernel.log"))
        .arg("--bug-report")
        .arg(&report)
        .env_clear()
        .env("HOME", "/home/alice")
        .env("USER", "alice")
        .env("PATH", "/usr/bin:/bin")
        .current_dir(cwd)
        .output()
        .map_err(|e| e.to_string())?;
    let code = out.status.code();
    if !matches!(code, Some(0 | 1)) {
        return Err(format!(
            "exit {code:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.lines().count() != 1 || !stderr.contains("bug report written") {
        return Err(format!("stderr: {stderr}"));
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("stdout is not JSON: {e}"))?;
    if v["rmcp_doctor"] != 1 {
        return Err("no rmcp_doctor 1".into());
    }
    for f in v["findings"].as_array().ok_or("no findings")? {
        let id = f["id"].as_str().unwrap_or("");
        let msg = f["message"].as_str().unwrap_or("");
        if !ids.contains(id) {
            return Err(format!("finding id {id:?} is not in SCHEMA.md"));
        }
        if msg.contains('\n') || msg.len() > 2000 {
            return Err(format!(
                "{id}: message of {} bytes or several lines: {msg:.300}",
                msg.len()
            ));
        }
    }
    let md = std::fs::read(&report).map_err(|e| format!("no bug report: {e}"))?;
    if md.contains(&0) {
        return Err("NUL byte in the bug report".into());
    }
    Ok(())
}

#[test]
fn doctor_survives_random_roots_and_logs() {
    let cases: usize = std::env::var("RMCP_FUZZ_DOCTOR_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    let ids = documented_ids();
    assert!(ids.contains("hsa-override-in-file") && ids.contains("known-regression"));
    let lines = fixture_lines();
    let base = std::env::temp_dir().join(format!("rmcp-fuzz-doctor-{}", std::process::id()));
    let mut total = 0;
    for seed in seeds() {
        let mut r = Rng::new(seed);
        for case in 0..cases {
            let dir = base.join(format!("{seed}-{case}"));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let (root, cwd) = build_case(&mut r, &dir, &lines);
            if let Err(why) = check(&dir, &root, &cwd, &ids) {
                panic!(
                    "seed {seed} case {case}: {why}\n(the case's tree is kept in {})",
                    dir.display()
                );
            }
            let _ = std::fs::remove_dir_all(&dir);
            total += 1;
        }
    }
    let _ = std::fs::remove_dir_all(&base);
    eprintln!("{total} random doctor roots checked");
}
