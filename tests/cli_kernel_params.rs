//! `rmcp kernel-params`: content, --write into a temporary root, refusing to
//! replace a foreign file, --force.

mod common;

use common::{tempdir, Cli, CliRun};
use std::path::{Path, PathBuf};

const MARKER_START: &str = "# rmcp-managed:";

fn fixture(p: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/doctor")
        .join(p)
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

fn kp(args: &[&str]) -> CliRun {
    Cli::new(&["kernel-params"]).args(args).run()
}

fn out(o: &CliRun) -> &str {
    &o.stdout
}

#[test]
fn prints_an_all_commented_snippet() {
    let root = fixture("rdna2-rx6700xt");
    let o = kp(&["--root", root.to_str().unwrap()]);
    assert_eq!(o.code, 0);
    let s = out(&o);
    assert!(s.starts_with(MARKER_START), "{s}");
    assert!(s.contains("node 1: gfx1031 (RDNA2, discrete) at 0000:0b:00.0"));
    assert!(s.contains("# options amdgpu noretry=0"));
    assert!(s.contains("# options amdgpu gttsize=-1"));
    assert!(s.contains("not established"));
    assert!(s.contains("0 = retry faults enabled, 1 = retry disabled, -1 = auto"));
    for line in s.lines() {
        assert!(
            line.is_empty() || line.starts_with('#'),
            "active line: {line}"
        );
    }
    assert!(!s.contains("gtt_size=") && !s.to_lowercase().contains("fixes"));
    assert!(
        !root.join("etc/modprobe.d/amdgpu-rmcp.conf").exists(),
        "printing writes nothing"
    );
    assert!(o.stderr.contains("--write"));

    let apu = kp(&["--root", fixture("apu-rembrandt").to_str().unwrap()]);
    assert!(out(&apu).contains("(RDNA2, integrated)") && out(&apu).contains("Integrated GPUs"));
}

#[test]
fn no_targeted_gpu_writes_nothing() {
    let root = tempdir("rdna3");
    copy_tree(&fixture("rdna3-rx7900xtx"), &root);
    let o = kp(&["--root", root.to_str().unwrap(), "--write"]);
    assert_eq!(o.code, 0);
    assert!(out(&o).contains("no targeted GPU") && out(&o).contains("nothing written"));
    assert!(!root.join("etc/modprobe.d").exists());
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn writes_replaces_its_own_and_refuses_foreign_files() {
    let root = tempdir("write");
    copy_tree(&fixture("rdna1-rx5700xt"), &root);
    let conf = root.join("etc/modprobe.d/amdgpu-rmcp.conf");
    let r = root.to_str().unwrap();

    let o = kp(&["--root", r, "--write"]);
    assert_eq!(o.code, 0, "{o}");
    let first = std::fs::read_to_string(&conf).unwrap();
    assert!(first.starts_with(MARKER_START));
    assert!(first.contains("gfx1010 (RDNA1, discrete) at 0000:28:00.0"));
    // the user's other file is untouched
    assert!(
        std::fs::read_to_string(root.join("etc/modprobe.d/amdgpu-tweaks.conf"))
            .unwrap()
            .contains("gtt_size=8192")
    );

    // ours: replaced without --force
    assert_eq!(kp(&["--root", r, "--write"]).code, 0);
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), first);

    // foreign: refused, left as it was
    std::fs::write(&conf, "options amdgpu noretry=1\n").unwrap();
    let o = kp(&["--root", r, "--write"]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("refusing to replace"));
    assert_eq!(
        std::fs::read_to_string(&conf).unwrap(),
        "options amdgpu noretry=1\n"
    );

    // --force replaces it
    let o = kp(&["--root", r, "--write", "--force"]);
    assert_eq!(o.code, 0);
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), first);

    // no temporary files left behind
    let names: Vec<String> = std::fs::read_dir(root.join("etc/modprobe.d"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn bad_arguments_exit_2() {
    assert_eq!(kp(&["--force"]).code, 2);
    assert_eq!(kp(&["--bogus"]).code, 2);
    let o = kp(&["--root", "/nonexistent/rmcp-root"]);
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("/nonexistent/rmcp-root"));
}
