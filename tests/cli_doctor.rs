//! `rmcp doctor` on fixture trees (tests/fixtures/doctor, see SOURCES.md).

mod common;

use common::tempdir;
use serde_json::Value as Json;
use std::path::PathBuf;
use std::process::{Command, Output};

fn fixture(p: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/doctor")
        .join(p)
}

/// Runs doctor with a clean environment plus `env`.
fn doctor(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rmcp"));
    c.arg("doctor").args(args);
    for k in [
        "HSA_OVERRIDE_GFX_VERSION",
        "HIP_HOST_COHERENT",
        "HSA_FORCE_FINE_GRAIN_PCIE",
        "LD_PRELOAD",
        "RMCP_MODE",
        "RMCP_TARGETS",
        "NO_COLOR",
    ] {
        c.env_remove(k);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn doctor_json(root: &str, log: Option<&str>, extra: &[&str], env: &[(&str, &str)]) -> (i32, Json) {
    let root = fixture(root);
    let mut args = vec![
        "--json",
        "--python",
        "none",
        "--sysfs-root",
        root.to_str().unwrap(),
    ];
    let log_path;
    if let Some(l) = log {
        log_path = fixture(l);
        args.push("--kernel-log");
        args.push(log_path.to_str().unwrap());
    }
    args.extend_from_slice(extra);
    let out = doctor(&args, env);
    let text = String::from_utf8(out.stdout).unwrap();
    let v = serde_json::from_str(&text).unwrap_or_else(|_| {
        panic!(
            "not JSON: {text}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap(), v)
}

fn findings(v: &Json) -> Vec<(String, String, String)> {
    v.get("findings")
        .and_then(Json::as_array)
        .unwrap()
        .iter()
        .map(|f| {
            (
                f.get("id").and_then(Json::as_str).unwrap().to_string(),
                f.get("severity")
                    .and_then(Json::as_str)
                    .unwrap()
                    .to_string(),
                f.get("message").and_then(Json::as_str).unwrap().to_string(),
            )
        })
        .collect()
}

fn find<'a>(fs: &'a [(String, String, String)], id: &str) -> Vec<&'a (String, String, String)> {
    fs.iter().filter(|f| f.0 == id).collect()
}

fn gpus(v: &Json) -> &[Json] {
    v.get("gpus").and_then(Json::as_array).unwrap()
}

#[test]
fn rdna1_with_override_is_an_error() {
    let (code, v) = doctor_json(
        "rdna1-rx5700xt",
        Some("logs/rdna1-reset.log"),
        &[],
        &[("HSA_OVERRIDE_GFX_VERSION", "10.3.0")],
    );
    assert_eq!(code, 1);
    assert_eq!(v.get("rmcp_doctor").and_then(Json::as_i64), Some(1));
    let g = gpus(&v);
    assert_eq!(g.len(), 1, "the CPU node 0 is not a GPU");
    let g = &g[0];
    assert_eq!(g.get("node").and_then(Json::as_i64), Some(1));
    assert_eq!(g.get("gfx").and_then(Json::as_str), Some("gfx1010"));
    assert_eq!(g.get("family").and_then(Json::as_str), Some("RDNA1"));
    assert_eq!(g.get("targeted"), Some(&Json::Bool(true)));
    assert_eq!(g.get("integrated"), Some(&Json::Bool(false)));
    assert_eq!(g.get("pci").and_then(Json::as_str), Some("0000:28:00.0"));
    assert_eq!(g.get("vendor_id").and_then(Json::as_i64), Some(0x1002));
    assert_eq!(g.get("device_id").and_then(Json::as_i64), Some(0x731f));
    assert_eq!(g.get("kfd_name").and_then(Json::as_str), Some("navi10"));

    let fs = findings(&v);
    let ov = find(&fs, "hsa-override-mismatch");
    assert_eq!(ov.len(), 1);
    assert_eq!(ov[0].1, "error");
    assert!(
        ov[0].2.contains("gfx1030") && ov[0].2.contains("gfx1010"),
        "{}",
        ov[0].2
    );
    assert!(ov[0]
        .2
        .contains("is meant for internal debugging, not as an official workaround"));

    let unknown = find(&fs, "kernel-param-unknown");
    assert_eq!(unknown.len(), 1);
    assert_eq!(unknown[0].1, "warning");
    assert!(
        unknown[0].2.contains("\"gtt_size\"") && unknown[0].2.contains("did you mean \"gttsize\""),
        "{}",
        unknown[0].2
    );
    assert!(unknown[0].2.contains("amdgpu-tweaks.conf:2"));

    let values = find(&fs, "kernel-param-value");
    assert!(
        values
            .iter()
            .any(|f| f.2.contains("noretry=0: retry faults enabled")),
        "{values:?}"
    );
    assert!(
        values
            .iter()
            .any(|f| f.2.contains("vm_fragment_size=9") && f.2.contains("2M")),
        "{values:?}"
    );

    let resets = find(&fs, "gpu-reset");
    assert_eq!(resets.len(), 1);
    assert_eq!(resets[0].1, "warning");
    assert!(
        resets[0].2.contains("0000:28:00.0") && resets[0].2.contains("1 reset begun"),
        "{}",
        resets[0].2
    );
    assert!(find(&fs, "gpu-vm-fault").is_empty());
    assert_eq!(find(&fs, "rmcp-not-preloaded")[0].1, "info");
    assert_eq!(
        v.get("kernel_log")
            .and_then(|k| k.get("resets"))
            .and_then(Json::as_i64),
        Some(3)
    );
    // the fixture has no live /sys/module/amdgpu/parameters
    assert_eq!(
        v.get("kernel_params")
            .and_then(|k| k.get("names_from"))
            .and_then(Json::as_str),
        Some("builtin-table")
    );
    // errors sort first
    assert_eq!(fs[0].1, "error");
}

#[test]
fn rdna2_faults_and_live_parameters() {
    let (code, v) = doctor_json("rdna2-rx6700xt", Some("logs/rdna2-vm-faults.log"), &[], &[]);
    assert_eq!(code, 0, "no error findings");
    let g = &gpus(&v)[0];
    assert_eq!(g.get("gfx").and_then(Json::as_str), Some("gfx1031"));
    assert_eq!(g.get("pci").and_then(Json::as_str), Some("0000:0b:00.0"));
    assert_eq!(g.get("targeted"), Some(&Json::Bool(true)));
    let fs = findings(&v);
    let faults = find(&fs, "gpu-vm-fault");
    assert_eq!(faults.len(), 2, "{faults:?}");
    assert!(faults.iter().all(|f| f.1 == "warning"));
    let ours = faults
        .iter()
        .find(|f| f.2.contains("node 1 (gfx1031, 0000:0b:00.0)"))
        .unwrap();
    assert!(ours.2.starts_with("2 GPU VM page faults"), "{}", ours.2);
    assert!(ours.2.contains("process python (pid 1796)"));
    assert!(ours.2.contains("0x00007f5279bab000"));
    // rmcp decodes 0x00801031 itself (the kernel lines are missing here)
    assert!(
        ours.2.contains("TCP (0x8)")
            && ours.2.contains("PERMISSION_FAULTS: 0x3")
            && ours.2.contains("MORE_FAULTS: 0x1"),
        "{}",
        ours.2
    );
    let other = faults
        .iter()
        .find(|f| f.2.contains("0000:c6:00.0"))
        .unwrap();
    assert!(other.2.contains("pt_main_thread") && other.2.contains("TCP (0x8)"));

    // cmdline amdgpu.gtt_size against the live parameter list
    let unknown = find(&fs, "kernel-param-unknown");
    assert_eq!(unknown.len(), 1);
    assert!(
        unknown[0].2.contains("kernel command line")
            && unknown[0].2.contains("did you mean \"gttsize\"")
    );
    assert!(unknown[0].2.contains("the running kernel"));
    assert_eq!(
        v.get("kernel_params")
            .and_then(|k| k.get("names_from"))
            .and_then(Json::as_str),
        Some("sysfs")
    );
    let values = find(&fs, "kernel-param-value");
    assert!(values.iter().any(|f| f
        .2
        .contains("mtype_local=1 only matters on GFX 9.4.3 and GFX 12")));
    let details = v
        .get("findings")
        .and_then(Json::as_array)
        .unwrap()
        .iter()
        .find(|f| f.get("id").and_then(Json::as_str) == Some("gpu-vm-fault"))
        .and_then(|f| f.get("details"))
        .and_then(Json::as_array)
        .unwrap();
    assert!(!details.is_empty());
}

#[test]
fn rdna2_override_of_the_same_family_is_a_warning() {
    let (code, v) = doctor_json(
        "rdna2-rx6700xt",
        Some("logs/clean.log"),
        &[],
        &[("HSA_OVERRIDE_GFX_VERSION", "10.3.0")],
    );
    assert_eq!(code, 0);
    let fs = findings(&v);
    let ov = find(&fs, "hsa-override-mismatch");
    assert_eq!(ov.len(), 1);
    assert_eq!(ov[0].1, "warning");
    assert!(find(&fs, "gpu-vm-fault").is_empty() && find(&fs, "gpu-reset").is_empty());
}

#[test]
fn apu_is_integrated_and_preloaded_via_etc() {
    let (code, v) = doctor_json(
        "apu-rembrandt",
        Some("logs/clean.log"),
        &[],
        &[
            ("HIP_HOST_COHERENT", "1"),
            ("HSA_FORCE_FINE_GRAIN_PCIE", "1"),
        ],
    );
    assert_eq!(code, 0);
    let g = &gpus(&v)[0];
    assert_eq!(g.get("gfx").and_then(Json::as_str), Some("gfx1035"));
    assert_eq!(g.get("integrated"), Some(&Json::Bool(true)));
    assert!(g
        .get("integrated_rule")
        .and_then(Json::as_str)
        .unwrap()
        .contains("APU"));
    let fs = findings(&v);
    assert_eq!(find(&fs, "hip-host-coherent")[0].1, "warning");
    assert_eq!(find(&fs, "fine-grain-pcie")[0].1, "warning");
    let pre = find(&fs, "rmcp-preloaded");
    assert_eq!(pre.len(), 1);
    assert!(pre[0].2.contains("ld.so.preload"));
    assert!(find(&fs, "rmcp-not-preloaded").is_empty());
    assert_eq!(
        v.get("environment").and_then(|e| e.get("rmcp_preloaded")),
        Some(&Json::Bool(true))
    );
}

/// The doctor reads each variable as its runtime (and librmcp) does: HIP
/// takes "enable" as off and "yes" as on; ROCr takes only "1"; an empty
/// RMCP_TARGETS is invalid for librmcp, so the doctor says so too.
#[test]
fn variables_are_read_as_the_runtimes_read_them() {
    let (_, v) = doctor_json(
        "rdna2-rx6700xt",
        Some("logs/clean.log"),
        &[],
        &[
            ("HIP_HOST_COHERENT", "enable"),
            ("HSA_FORCE_FINE_GRAIN_PCIE", "true"),
            ("RMCP_TARGETS", ""),
        ],
    );
    let fs = findings(&v);
    assert!(find(&fs, "hip-host-coherent").is_empty(), "{v:?}");
    assert!(find(&fs, "fine-grain-pcie").is_empty(), "{v:?}");
    assert_eq!(find(&fs, "rmcp-targets-invalid").len(), 1, "{v:?}");
    let (_, v) = doctor_json(
        "rdna2-rx6700xt",
        Some("logs/clean.log"),
        &[],
        &[("HIP_HOST_COHERENT", "yes")],
    );
    assert_eq!(find(&findings(&v), "hip-host-coherent").len(), 1);
}

#[test]
fn ld_preload_is_detected() {
    let (_, v) = doctor_json(
        "rdna2-rx6700xt",
        Some("logs/clean.log"),
        &[],
        &[("LD_PRELOAD", "/opt/x/libfoo.so:/usr/local/lib/librmcp.so")],
    );
    let fs = findings(&v);
    assert!(find(&fs, "rmcp-preloaded")[0].2.contains("LD_PRELOAD"));
}

#[test]
fn rdna3_is_not_a_target() {
    let (code, v) = doctor_json(
        "rdna3-rx7900xtx",
        Some("logs/clean.log"),
        &[],
        &[("HIP_HOST_COHERENT", "1")],
    );
    assert_eq!(code, 0);
    let g = &gpus(&v)[0];
    assert_eq!(g.get("gfx").and_then(Json::as_str), Some("gfx1100"));
    assert_eq!(g.get("targeted"), Some(&Json::Bool(false)));
    assert_eq!(
        g.get("integrated"),
        Some(&Json::Bool(false)),
        "local_mem_size 0 must not make it integrated"
    );
    let fs = findings(&v);
    assert!(find(&fs, "hip-host-coherent").is_empty());
    assert!(find(&fs, "rmcp-not-preloaded").is_empty());
    assert!(find(&fs, "kernel-param-value")
        .iter()
        .any(|f| f.2.contains("noretry=1: retry faults disabled")));

    let (code, v) = doctor_json(
        "rdna3-rx7900xtx",
        Some("logs/clean.log"),
        &[],
        &[("HSA_OVERRIDE_GFX_VERSION", "10.3.0")],
    );
    assert_eq!(code, 1);
    assert_eq!(find(&findings(&v), "hsa-override-mismatch")[0].1, "error");
}

#[test]
fn empty_root_has_no_gpu_and_skips_the_live_log() {
    let root = tempdir("empty");
    let out = doctor(
        &[
            "--json",
            "--python",
            "none",
            "--sysfs-root",
            root.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0));
    let v: Json = serde_json::from_str(&String::from_utf8(out.stdout).unwrap()).unwrap();
    assert!(gpus(&v).is_empty());
    let fs = findings(&v);
    assert_eq!(find(&fs, "no-gpu")[0].1, "info");
    assert_eq!(find(&fs, "kernel-log-not-read").len(), 1);
    assert_eq!(
        v.get("kernel_log").and_then(|k| k.get("readable")),
        Some(&Json::Bool(false))
    );
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn missing_explicit_paths_exit_2_with_one_line() {
    let out = doctor(&["--sysfs-root", "/nonexistent/rmcp-root"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("/nonexistent/rmcp-root"));
    assert!(out.stdout.is_empty());

    let root = fixture("rdna2-rx6700xt");
    let out = doctor(
        &[
            "--sysfs-root",
            root.to_str().unwrap(),
            "--kernel-log",
            "/nonexistent/k.log",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1);
    assert!(err.contains("/nonexistent/k.log"));

    let out = doctor(&["--frobnicate"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("--frobnicate"));
}

#[test]
fn human_report_has_the_key_lines_and_no_colour_when_piped() {
    let root = fixture("rdna1-rx5700xt");
    let log = fixture("logs/rdna1-reset.log");
    let out = doctor(
        &[
            "--python",
            "none",
            "--sysfs-root",
            root.to_str().unwrap(),
            "--kernel-log",
            log.to_str().unwrap(),
        ],
        &[("HSA_OVERRIDE_GFX_VERSION", "10.3.0")],
    );
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        !text.contains('\x1b'),
        "no ANSI colour when stdout is not a terminal"
    );
    assert!(
        text.contains("node 1: gfx1010 RDNA1 navi10 0000:28:00.0 discrete"),
        "{text}"
    );
    assert!(text.contains("targeted by rmcp"));
    assert!(text.contains("error   [hsa-override-mismatch]"));
    assert!(text.contains("warning [kernel-param-unknown]"));
    assert!(text.contains("fix: unset HSA_OVERRIDE_GFX_VERSION"));
    assert!(text.contains("1 error(s)"));
    assert!(!text.to_lowercase().contains("fixes the crash"));
}

fn fake_python(tag: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let d = tempdir(tag);
    let p = d.join("python3");
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

#[test]
fn torch_without_the_gpus_arch_is_an_error() {
    let py = fake_python(
        "torch-missing",
        r#"echo '{"torch": "2.4.1+rocm6.1", "hip": "6.1.40091", "cuda": null, "arch_list": ["gfx900", "gfx906", "gfx908", "gfx90a", "gfx1030", "gfx1100"]}'"#,
    );
    let (code, v) = doctor_json(
        "rdna2-rx6700xt",
        Some("logs/clean.log"),
        &["--python", py.to_str().unwrap()],
        &[],
    );
    assert_eq!(code, 1);
    let fs = findings(&v);
    let m = find(&fs, "torch-missing-arch");
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].1, "error");
    assert!(m[0].2.contains("gfx1031") && m[0].2.contains("2.4.1+rocm6.1"));
    let t = v.get("pytorch").unwrap();
    assert_eq!(t.get("hip").and_then(Json::as_str), Some("6.1.40091"));
    assert_eq!(
        t.get("arch_list").and_then(Json::as_array).map(|a| a.len()),
        Some(6)
    );

    let py = fake_python(
        "torch-ok",
        r#"echo '{"torch": "2.4.1", "hip": "6.1", "cuda": null, "arch_list": ["gfx1031:xnack-"]}'"#,
    );
    let (code, v) = doctor_json(
        "rdna2-rx6700xt",
        Some("logs/clean.log"),
        &["--python", py.to_str().unwrap()],
        &[],
    );
    assert_eq!(code, 0);
    assert_eq!(find(&findings(&v), "torch-arch-ok").len(), 1);
}

#[test]
fn torch_absence_and_garbage_are_info() {
    let (code, v) = doctor_json(
        "rdna2-rx6700xt",
        Some("logs/clean.log"),
        &["--python", "/nonexistent/python3"],
        &[],
    );
    assert_eq!(code, 0);
    assert_eq!(find(&findings(&v), "python-not-found")[0].1, "info");

    let py = fake_python(
        "torch-none",
        r#"echo '{"torch": null, "error": "ModuleNotFoundError(\"No module named torch\")"}'"#,
    );
    let (code, v) = doctor_json(
        "rdna2-rx6700xt",
        Some("logs/clean.log"),
        &["--python", py.to_str().unwrap()],
        &[],
    );
    assert_eq!(code, 0);
    assert_eq!(find(&findings(&v), "torch-not-found")[0].1, "info");

    let py = fake_python("torch-garbage", "echo 'Segmentation fault'; exit 139");
    let (code, v) = doctor_json(
        "rdna2-rx6700xt",
        Some("logs/clean.log"),
        &["--python", py.to_str().unwrap()],
        &[],
    );
    assert_eq!(code, 0);
    assert_eq!(find(&findings(&v), "torch-probe-failed")[0].1, "info");

    let py = fake_python(
        "torch-cpu",
        r#"echo '{"torch": "1.13.1", "hip": null, "cuda": null, "arch_list": []}'"#,
    );
    let (code, v) = doctor_json(
        "rdna2-rx6700xt",
        Some("logs/clean.log"),
        &["--python", py.to_str().unwrap()],
        &[],
    );
    assert_eq!(code, 0);
    assert!(find(&findings(&v), "torch-not-rocm")[0]
        .2
        .contains("CPU only"));
}

/// The real probe against a real PyTorch, when one is installed (Debian's
/// python3-torch is a CPU build: no HIP version, no arch list).
#[test]
fn torch_probe_reads_a_real_torch() {
    let py = ["python3", "/usr/bin/python3"].into_iter().find(|py| {
        Command::new(py)
            .args(["-c", "import torch"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    });
    let Some(py) = py else {
        eprintln!("SKIP torch_probe_reads_a_real_torch: no Python with PyTorch");
        return;
    };
    let (code, v) = doctor_json(
        "rdna2-rx6700xt",
        Some("logs/clean.log"),
        &["--python", py],
        &[],
    );
    let t = v.get("pytorch").unwrap();
    assert!(
        t.get("torch").and_then(Json::as_str).is_some(),
        "{}",
        serde_json::to_string_pretty(t).unwrap()
    );
    let fs = findings(&v);
    if t.get("hip").and_then(Json::as_str).is_none() {
        assert_eq!(code, 0);
        assert_eq!(find(&fs, "torch-not-rocm").len(), 1);
    } else {
        assert!(
            !find(&fs, "torch-missing-arch").is_empty()
                || !find(&fs, "torch-arch-ok").is_empty()
                || !find(&fs, "torch-arch-unknown").is_empty()
        );
    }
}

#[test]
fn rmcp_targets_is_honoured() {
    let (_, v) = doctor_json(
        "rdna3-rx7900xtx",
        Some("logs/clean.log"),
        &[],
        &[("RMCP_TARGETS", "gfx1100")],
    );
    assert_eq!(v.get("targets").and_then(Json::as_str), Some("gfx1100"));
    assert_eq!(gpus(&v)[0].get("targeted"), Some(&Json::Bool(true)));
    assert_eq!(find(&findings(&v), "rmcp-not-preloaded").len(), 1);

    let (code, v) = doctor_json(
        "rdna2-rx6700xt",
        Some("logs/clean.log"),
        &[],
        &[("RMCP_TARGETS", "rdna2")],
    );
    assert_eq!(code, 0);
    let fs = findings(&v);
    let bad = find(&fs, "rmcp-targets-invalid");
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].1, "warning");
    assert!(bad[0].2.contains("'rdna2'"));
    assert_eq!(
        v.get("targets").and_then(Json::as_str),
        Some("gfx1010-gfx1013,gfx1030-gfx1036")
    );
    assert_eq!(gpus(&v)[0].get("targeted"), Some(&Json::Bool(true)));
}
