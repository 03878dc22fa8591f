//! `rmcp doctor` on fixture trees (tests/fixtures/doctor, see SOURCES.md).

mod common;

use common::{tempdir, Cli, CliRun};
use serde_json::Value as Json;
use std::path::PathBuf;
use std::process::Command;

fn fixture(p: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/doctor")
        .join(p)
}

/// `rmcp doctor ARGS` through common's clean-environment runner, plus
/// `env`, HOME=/home/alice (the user's files come from `<root>/home/alice`)
/// and, unless `env` holds a `CWD` entry (a fixture directory),
/// projects/plain as the current directory.
fn doctor(args: &[&str], env: &[(&str, &str)]) -> CliRun {
    let mut c = Cli::new(&["doctor"])
        .args(args)
        .env("HOME", "/home/alice")
        .current_dir(fixture("projects/plain"));
    for (k, v) in env {
        c = if *k == "CWD" {
            c.current_dir(fixture(v))
        } else {
            c.env(k, v)
        };
    }
    c.run()
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
    (out.code, out.json())
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
                match f.get("fix").and_then(Json::as_str) {
                    Some(fix) => format!("{} fix: {fix}", f["message"].as_str().unwrap()),
                    None => f["message"].as_str().unwrap().to_string(),
                },
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
    assert_eq!(out.code, (0));
    let v = out.json();
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
    assert_eq!(out.code, (2));
    let err = &out.stderr;
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
    assert_eq!(out.code, (2));
    let err = &out.stderr;
    assert_eq!(err.lines().count(), 1);
    assert!(err.contains("/nonexistent/k.log"));

    let out = doctor(&["--frobnicate"], &[]);
    assert_eq!(out.code, (2));
    assert!(out.stderr.contains("--frobnicate"));
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
    assert_eq!(out.code, (1));
    let text = &out.stdout;
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

/// One run of `rmcp doctor --json` on a fixture and what its findings must
/// show. Most behaviour is a row here; tests of their own remain only for
/// what a row cannot say (JSON fields, exit 2, the human layout).
struct Case {
    name: &'static str,
    root: &'static str,
    log: Option<&'static str>,
    /// Environment; `("CWD", dir)` runs doctor in fixture directory `dir`.
    env: &'static [(&'static str, &'static str)],
    /// Body of a fake `python3` answering the PyTorch probe, or an absolute
    /// path used as the interpreter; None: --python none.
    python: Option<&'static str>,
    exit: i32,
    /// (id, severity, texts): some finding with that id and severity
    /// contains every text in its message or fix.
    expect: &'static [(&'static str, &'static str, &'static [&'static str])],
    /// Ids no finding may have.
    absent: &'static [&'static str],
    /// (JSON pointer, expected value as JSON text); "finding:ID/rest" points
    /// inside the first finding with that id.
    json: &'static [(&'static str, &'static str)],
}

const TORCH_ROCM61: &str = r#"echo '{"torch": "2.4.1+rocm6.1", "hip": "6.1.40091", "cuda": null, "arch_list": ["gfx900", "gfx906", "gfx908", "gfx90a", "gfx1030", "gfx1100"]}'"#;
const TORCH_GENERIC: &str = r#"echo '{"torch": "2.9.0+rocm7.1", "hip": "7.1.25424", "cuda": null, "arch_list": ["gfx10-1-generic", "gfx10-3-generic", "gfx11-generic"]}'"#;
const TORCH_GENERIC_RDNA2_ONLY: &str = r#"echo '{"torch": "2.9.0+rocm7.1", "hip": "7.1.25424", "cuda": null, "arch_list": ["gfx10-3-generic"]}'"#;

const CASES: &[Case] = &[
    Case {
        name: "an override of the same family is a warning",
        root: "rdna2-rx6700xt",
        log: Some("logs/clean.log"),
        env: &[("HSA_OVERRIDE_GFX_VERSION", "10.3.0")],
        python: None,
        exit: 0,
        expect: &[("hsa-override-mismatch", "warning", &["gfx1030", "gfx1031"])],
        absent: &["gpu-vm-fault", "gpu-reset"],
        json: &[],
    },
    Case {
        name: "the per-node override is read before the global one (libhsakmt topology.c)",
        root: "rdna1-rx5700xt",
        log: Some("logs/clean.log"),
        env: &[
            ("HSA_OVERRIDE_GFX_VERSION", "10.3.0"),
            ("HSA_OVERRIDE_GFX_VERSION_1", "10.1.0"),
        ],
        python: None,
        exit: 0,
        expect: &[(
            "hsa-override-redundant",
            "info",
            &["HSA_OVERRIDE_GFX_VERSION_1=10.1.0"],
        )],
        absent: &["hsa-override-mismatch"],
        json: &[
            ("/overrides/0/variable", r#""HSA_OVERRIDE_GFX_VERSION""#),
            ("/overrides/0/effects/0/effect", r#""shadowed""#),
        ],
    },
    Case {
        name: "a per-node override for another node leaves this GPU to the global one",
        root: "rdna1-rx5700xt",
        log: Some("logs/clean.log"),
        env: &[
            ("HSA_OVERRIDE_GFX_VERSION", "10.3.0"),
            ("HSA_OVERRIDE_GFX_VERSION_2", "10.1.0"),
        ],
        python: None,
        exit: 1,
        expect: &[
            (
                "hsa-override-mismatch",
                "error",
                &["HSA_OVERRIDE_GFX_VERSION=10.3.0", "gfx1010"],
            ),
            ("hsa-override-unused-node", "info", &["node 2 is not a GPU"]),
        ],
        absent: &[],
        json: &[],
    },
    Case {
        name: "an invalid per-node override stops libhsakmt",
        root: "rdna2-rx6700xt",
        log: Some("logs/clean.log"),
        env: &[("HSA_OVERRIDE_GFX_VERSION_1", "gfx1030")],
        python: None,
        exit: 0,
        expect: &[(
            "hsa-override-invalid",
            "warning",
            &[
                "HSA_OVERRIDE_GFX_VERSION_1=gfx1030",
                "ROCm then finds no GPU",
            ],
        )],
        absent: &["hsa-override-mismatch"],
        json: &[],
    },
    Case {
        name: "overrides in ~/.bashrc, environment.d and a systemd drop-in, each by file and line",
        root: "rdna1-overrides",
        log: Some("logs/clean.log"),
        env: &[],
        python: None,
        exit: 1,
        expect: &[
            (
                "hsa-override-in-file",
                "error",
                &[
                    "/home/alice/.bashrc:10",
                    "shell start-up file",
                    "runs gfx1030 code on gfx1010 hardware",
                ],
            ),
            (
                "hsa-override-in-file",
                "error",
                &[
                    "/etc/systemd/system/ollama.service.d/override.conf:2",
                    "systemd drop-in",
                ],
            ),
            (
                "hsa-override-in-file",
                "info",
                &[
                    "60-rocm.conf:1",
                    "HSA_OVERRIDE_GFX_VERSION_1 (line 2, read first by libhsakmt) wins",
                ],
            ),
            (
                "hsa-override-in-file",
                "info",
                &["60-rocm.conf:2", "names its own ISA, harmless"],
            ),
        ],
        absent: &["hsa-override-mismatch", "input-unreadable"],
        json: &[
            ("/overrides/0/file", r#""/home/alice/.bashrc""#),
            ("/overrides/0/line", "10"),
            ("/overrides/0/effects/0/effect", r#""wrong-isa""#),
        ],
    },
    Case {
        name: "compose and .env files of the current directory",
        root: "rdna2-rx6700xt",
        log: Some("logs/clean.log"),
        env: &[("CWD", "projects/comfyui-rocm")],
        python: None,
        exit: 0,
        expect: &[
            (
                "hsa-override-in-file",
                "warning",
                &[
                    "compose.yaml:12",
                    "compose file",
                    "loads gfx1030 code on gfx1031 hardware, same family",
                ],
            ),
            (
                "hsa-override-in-file",
                "warning",
                &[".env:2", "compose .env file"],
            ),
        ],
        absent: &[],
        json: &[],
    },
    Case {
        name: "a fixture with no override files reports none",
        root: "rdna2-rx6700xt",
        log: Some("logs/clean.log"),
        env: &[],
        python: None,
        exit: 0,
        expect: &[],
        absent: &[
            "hsa-override-in-file",
            "hsa-override-mismatch",
            "input-unreadable",
        ],
        json: &[("/overrides", "[]")],
    },
    Case {
        name: "firmware that failed to load, and the failed GPU init that followed",
        root: "rdna2-rx6700xt",
        log: Some("logs/firmware-missing.log"),
        env: &[],
        python: None,
        exit: 1,
        expect: &[
            ("firmware-load-failed", "warning", &["4 firmware load failure lines", "amdgpu/vega20_ta.bin", "0000:01:00.0, 0000:19:00.0"]),
            ("gpu-init-failed", "error", &["sw_init of IP block <gmc_v8_0> failed", "KFD and ROCm cannot use it"]),
        ],
        absent: &["kernel-log-clean"],
        json: &[("/kernel_log/firmware_failures", "4"), ("/kernel_log/init_failures", "3")],
    },
    Case {
        name: "MES queue removal failure before a reset",
        root: "rdna2-rx6700xt",
        log: Some("logs/mes-remove-queue.log"),
        env: &[],
        python: None,
        exit: 0,
        expect: &[
            ("mes-queue-failure", "warning", &["MES failed to respond to msg=REMOVE_QUEUE", "cwsr_enable=0"]),
            ("gpu-reset", "warning", &["0000:c5:00.0"]),
        ],
        absent: &[],
        json: &[("/kernel_log/queue_failures", "2")],
    },
    Case {
        name: "an SDMA0 fault decoded: client, write, permission bits, more faults",
        root: "rdna2-rx6700xt",
        log: Some("logs/sdma-fault.log"),
        env: &[],
        python: None,
        exit: 0,
        expect: &[("gpu-vm-fault", "warning", &[
            "status 0x00841b5b",
            "client SDMA0: the SDMA copy engine (a memory copy, not a kernel); a write; PERMISSION_FAULTS 0x5, MAPPING_ERROR 1, WALKER_ERROR 5; MORE_FAULTS 1",
        ])],
        absent: &[],
        json: &[
            ("finding:gpu-vm-fault/details/0/decoded/client", r#""SDMA0""#),
            ("finding:gpu-vm-fault/details/0/decoded/access", r#""write""#),
            ("finding:gpu-vm-fault/details/0/decoded/permission_faults", "5"),
            ("finding:gpu-vm-fault/details/0/decoded/more_faults", "1"),
        ],
    },
    Case {
        name: "a tainted kernel from an oops line of the log",
        root: "rdna2-rx6700xt",
        log: Some("logs/taint-oops.log"),
        env: &[],
        python: None,
        exit: 0,
        expect: &[("kernel-tainted", "warning", &["(kernel log): W (kernel issued a warning)"])],
        absent: &[],
        json: &[("/system/taint", r#""W""#)],
    },
    Case {
        name: "kernel 6.18.4, ROCm 7.1.1, out-of-tree modules: three known regressions and the taint",
        root: "rdna2-kernel-6.18",
        log: Some("logs/amdgpu-204.log"),
        env: &[],
        python: None,
        exit: 0,
        expect: &[
            ("known-regression", "warning", &["kernel 6.18.4-arch1-1", "sdma-page-fault-6.18", "https://github.com/ROCm/amdgpu/issues/204"]),
            ("known-regression", "warning", &["ROCm 7.1.1-38", "cwsr-illegal-address-rocm7", "https://github.com/YanWenKun/ComfyUI-Docker/issues/157"]),
            ("known-regression", "warning", &["comgr-gfx1030-crash-7.1.1", "https://github.com/ggml-org/llama.cpp/issues/27275"]),
            ("kernel-tainted", "warning", &["/proc/sys/kernel/tainted", "O (out-of-tree module loaded", "E (unsigned module loaded)"]),
            ("gpu-vm-fault", "warning", &["process python (pid 91762)"]),
        ],
        absent: &[],
        json: &[("/system/kernel", r#""6.18.4-arch1-1""#), ("/system/rocm", r#""7.1.1-38""#), ("/known_regressions/0/regression", r#""sdma-page-fault-6.18""#)],
    },
    Case {
        name: "ROCm 7.0 with amdgpu.cwsr_enable=0 already set: the regression is info and says so",
        root: "rdna2-rocm7-cwsr-off",
        log: Some("logs/clean.log"),
        env: &[],
        python: None,
        exit: 0,
        expect: &[(
            "known-regression",
            "info",
            &["ROCm 7.0.2-56", "cwsr-illegal-address-rocm7", "The workaround amdgpu.cwsr_enable=0 is already set here."],
        )],
        absent: &["kernel-tainted"],
        json: &[("/known_regressions/0/regression", r#""cwsr-illegal-address-rocm7""#)],
    },
    Case {
        name: "kernel 6.1 from the log's Linux version line: no regression, no taint",
        root: "rdna2-rx6700xt",
        log: Some("logs/clean.log"),
        env: &[],
        python: None,
        exit: 0,
        expect: &[("kernel-log-clean", "info", &[])],
        absent: &["known-regression", "kernel-tainted", "firmware-load-failed", "mes-queue-failure"],
        json: &[("/system/kernel", r#""6.1.0-18-amd64""#), ("/system/kernel_from", r#""kernel log""#), ("/known_regressions", "[]")],
    },
    Case {
        name: "HIP takes 'enable' as off, ROCr takes only '1', an empty RMCP_TARGETS is invalid",
        root: "rdna2-rx6700xt",
        log: Some("logs/clean.log"),
        env: &[
            ("HIP_HOST_COHERENT", "enable"),
            ("HSA_FORCE_FINE_GRAIN_PCIE", "true"),
            ("RMCP_TARGETS", ""),
        ],
        python: None,
        exit: 0,
        expect: &[("rmcp-targets-invalid", "warning", &[])],
        absent: &["hip-host-coherent", "fine-grain-pcie"],
        json: &[],
    },
    Case {
        name: "HIP takes 'yes' as on",
        root: "rdna2-rx6700xt",
        log: Some("logs/clean.log"),
        env: &[("HIP_HOST_COHERENT", "yes")],
        python: None,
        exit: 0,
        expect: &[("hip-host-coherent", "warning", &[])],
        absent: &[],
        json: &[],
    },
    Case {
        name: "LD_PRELOAD naming librmcp.so",
        root: "rdna2-rx6700xt",
        log: Some("logs/clean.log"),
        env: &[("LD_PRELOAD", "/opt/x/libfoo.so:/usr/local/lib/librmcp.so")],
        python: None,
        exit: 0,
        expect: &[("rmcp-preloaded", "info", &["LD_PRELOAD"])],
        absent: &["rmcp-not-preloaded"],
        json: &[],
    },
    Case {
        name: "RDNA3 is not a target: coherent variables and preload are not its business",
        root: "rdna3-rx7900xtx",
        log: Some("logs/clean.log"),
        env: &[("HIP_HOST_COHERENT", "1")],
        python: None,
        exit: 0,
        expect: &[(
            "kernel-param-value",
            "info",
            &["noretry=1: retry faults disabled"],
        )],
        absent: &["hip-host-coherent", "rmcp-not-preloaded"],
        json: &[
            ("/gpus/0/gfx", r#""gfx1100""#),
            ("/gpus/0/targeted", "false"),
            ("/gpus/0/integrated", "false"),
        ],
    },
    Case {
        name: "an RDNA2 override on RDNA3 is an error",
        root: "rdna3-rx7900xtx",
        log: Some("logs/clean.log"),
        env: &[("HSA_OVERRIDE_GFX_VERSION", "10.3.0")],
        python: None,
        exit: 1,
        expect: &[("hsa-override-mismatch", "error", &[])],
        absent: &[],
        json: &[],
    },
    Case {
        name: "RMCP_TARGETS=gfx1100 targets RDNA3",
        root: "rdna3-rx7900xtx",
        log: Some("logs/clean.log"),
        env: &[("RMCP_TARGETS", "gfx1100")],
        python: None,
        exit: 0,
        expect: &[("rmcp-not-preloaded", "info", &[])],
        absent: &[],
        json: &[("/targets", r#""gfx1100""#), ("/gpus/0/targeted", "true")],
    },
    Case {
        name: "an invalid RMCP_TARGETS falls back to the default set",
        root: "rdna2-rx6700xt",
        log: Some("logs/clean.log"),
        env: &[("RMCP_TARGETS", "rdna2")],
        python: None,
        exit: 0,
        expect: &[("rmcp-targets-invalid", "warning", &["'rdna2'"])],
        absent: &[],
        json: &[
            ("/targets", r#""gfx1010-gfx1013,gfx1030-gfx1036""#),
            ("/gpus/0/targeted", "true"),
        ],
    },
    Case {
        name: "PyTorch without the GPU's code objects",
        root: "rdna2-rx6700xt",
        log: Some("logs/clean.log"),
        env: &[],
        python: Some(TORCH_ROCM61),
        exit: 1,
        expect: &[("torch-missing-arch", "error", &["gfx1031", "2.4.1+rocm6.1"])],
        absent: &["torch-arch-ok"],
        json: &[("/pytorch/hip", r#""6.1.40091""#)],
    },
    Case {
        name: "PyTorch with the exact architecture",
        root: "rdna2-rx6700xt",
        log: Some("logs/clean.log"),
        env: &[],
        python: Some(
            r#"echo '{"torch": "2.4.1", "hip": "6.1", "cuda": null, "arch_list": ["gfx1031:xnack-"]}'"#,
        ),
        exit: 0,
        expect: &[("torch-arch-ok", "info", &["carries gfx1031 code"])],
        absent: &["torch-missing-arch"],
        json: &[],
    },
    Case {
        name: "a generic-only build runs on RDNA2 (gfx10-3-generic covers gfx1031)",
        root: "rdna2-rx6700xt",
        log: Some("logs/clean.log"),
        env: &[],
        python: Some(TORCH_GENERIC),
        exit: 0,
        expect: &[(
            "torch-arch-ok",
            "info",
            &["gfx10-3-generic code, LLVM's generic target that runs on gfx1031"],
        )],
        absent: &["torch-missing-arch"],
        json: &[],
    },
    Case {
        name: "a generic-only build runs on RDNA1 (gfx10-1-generic covers gfx1010)",
        root: "rdna1-rx5700xt",
        log: Some("logs/clean.log"),
        env: &[],
        python: Some(TORCH_GENERIC),
        exit: 0,
        expect: &[("torch-arch-ok", "info", &["gfx10-1-generic"])],
        absent: &["torch-missing-arch"],
        json: &[],
    },
    Case {
        name: "gfx10-3-generic does not cover RDNA1",
        root: "rdna1-rx5700xt",
        log: Some("logs/clean.log"),
        env: &[],
        python: Some(TORCH_GENERIC_RDNA2_ONLY),
        exit: 1,
        expect: &[(
            "torch-missing-arch",
            "error",
            &["gfx1010", "gfx10-3-generic"],
        )],
        absent: &["torch-arch-ok"],
        json: &[],
    },
    Case {
        name: "no interpreter",
        root: "rdna2-rx6700xt",
        log: Some("logs/clean.log"),
        env: &[],
        python: Some("/nonexistent/python3"),
        exit: 0,
        expect: &[("python-not-found", "info", &[])],
        absent: &[],
        json: &[],
    },
    Case {
        name: "torch not importable",
        root: "rdna2-rx6700xt",
        log: Some("logs/clean.log"),
        env: &[],
        python: Some(
            r#"echo '{"torch": null, "error": "ModuleNotFoundError(\"No module named torch\")"}'"#,
        ),
        exit: 0,
        expect: &[("torch-not-found", "info", &[])],
        absent: &[],
        json: &[],
    },
    Case {
        name: "a crashing probe",
        root: "rdna2-rx6700xt",
        log: Some("logs/clean.log"),
        env: &[],
        python: Some("echo 'Segmentation fault'; exit 139"),
        exit: 0,
        expect: &[("torch-probe-failed", "info", &[])],
        absent: &[],
        json: &[],
    },
    Case {
        name: "a CPU build of PyTorch",
        root: "rdna2-rx6700xt",
        log: Some("logs/clean.log"),
        env: &[],
        python: Some(r#"echo '{"torch": "1.13.1", "hip": null, "cuda": null, "arch_list": []}'"#),
        exit: 0,
        expect: &[("torch-not-rocm", "info", &["CPU only"])],
        absent: &[],
        json: &[],
    },
];

fn run_case(c: &Case) -> Result<(), String> {
    let py = c
        .python
        .filter(|b| !b.starts_with('/'))
        .map(|body| fake_python("case", body));
    let py = py.or_else(|| c.python.map(PathBuf::from));
    let py_arg = py
        .as_ref()
        .map_or("none".to_string(), |p| p.display().to_string());
    let (code, v) = doctor_json(c.root, c.log, &["--python", &py_arg], c.env);
    let fs = findings(&v);
    let mut problems = Vec::new();
    if code != c.exit {
        problems.push(format!("exit {code}, want {}", c.exit));
    }
    for (id, sev, texts) in c.expect {
        let hit = fs
            .iter()
            .any(|f| f.0 == *id && f.1 == *sev && texts.iter().all(|t| f.2.contains(t)));
        if !hit {
            problems.push(format!("no {sev} {id} containing {texts:?}"));
        }
    }
    for id in c.absent {
        if !find(&fs, id).is_empty() {
            problems.push(format!("unexpected {id}: {:?}", find(&fs, id)));
        }
    }
    for (ptr, want) in c.json {
        let want: Json = serde_json::from_str(want).unwrap();
        // "finding:ID/rest": `rest` inside the first finding with that id.
        let got = match ptr.strip_prefix("finding:") {
            Some(rest) => {
                let (id, rest) = rest.split_once('/').unwrap();
                v["findings"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|f| f["id"] == id)
                    .and_then(|f| f.pointer(&format!("/{rest}")))
            }
            None => v.pointer(ptr),
        };
        if got != Some(&want) {
            problems.push(format!("{ptr} is {got:?}, want {want}"));
        }
    }
    if let Some(p) = py.filter(|p| p.exists()) {
        let _ = std::fs::remove_dir_all(p.parent().unwrap());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}: {}\n  findings: {fs:?}",
            c.name,
            problems.join("; ")
        ))
    }
}

#[test]
fn every_case_of_the_table() {
    let failures: Vec<String> = CASES.iter().filter_map(|c| run_case(c).err()).collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

/// `--bug-report FILE` on the RDNA1 fixture with overrides in ~/.bashrc and a
/// systemd drop-in, a journal-format kernel log and a fault report kept by
/// `rmcp run`: every section is there, and the user name, home directory
/// and host name are not.
#[test]
fn bug_report_has_what_maintainers_ask_for_and_redacts_the_user() {
    let out_dir = tempdir("bug-report");
    let file = out_dir.join("report.md");
    let root = fixture("rdna1-overrides");
    let log = fixture("logs/amdgpu-204.log");
    let run = doctor(
        &[
            "--python",
            "none",
            "--root",
            root.to_str().unwrap(),
            "--kernel-log",
            log.to_str().unwrap(),
            "--bug-report",
            file.to_str().unwrap(),
        ],
        &[
            ("USER", "alice"),
            ("AMD_LOG_LEVEL", "4"),
            ("PYTORCH_HIP_ALLOC_CONF", "expandable_segments:True"),
            ("HIP_CACHE_DIR", "/home/alice/.cache/hip"),
            ("MIOPEN_USER_DB_PATH", "/srv/alice/alice-desktop/miopen"),
            ("UNRELATED_SECRET", "alice-token"),
        ],
    );
    assert_eq!(run.code, 1, "{run}");
    assert!(run.stderr.contains("bug report written to"), "{run}");
    let md = std::fs::read_to_string(&file).unwrap();
    for want in [
        "# GPU bug report from `rmcp doctor`",
        "## Findings",
        "**error** `hsa-override-in-file`: ~/.bashrc:10 (shell start-up file) sets HSA_OVERRIDE_GFX_VERSION=10.3.0",
        "/etc/systemd/system/ollama.service.d/override.conf:2 (systemd drop-in)",
        "## Versions",
        "- Kernel: 6.1.0-18-amd64 (from /proc/sys/kernel/osrelease)",
        "- Kernel taint: none",
        "- OS: Debian GNU/Linux 12 (bookworm)",
        "## Topology",
        "  Name:                    gfx1010",
        "  Chip ID:                 29471(0x731f)",
        "  Firmware (fw_version):   160",
        "## Overrides",
        "`HSA_OVERRIDE_GFX_VERSION=10.3.0` in ~/.bashrc:10 (shell start-up file): node 1 gfx1010: wrong-isa",
        "## Environment",
        "AMD_LOG_LEVEL=4",
        "PYTORCH_HIP_ALLOC_CONF=expandable_segments:True",
        "HIP_CACHE_DIR=~/.cache/hip",
        "MIOPEN_USER_DB_PATH=/srv/<user>/<host>/miopen",
        "## Kernel log",
        "Jan 09 18:55:45 <host> kernel: amdgpu 0000:0b:00.0: amdgpu: [gfxhub] page fault (src_id:0 ring:24 vmid:8 pasid:32792)",
        "## Fault reports kept by `rmcp run`",
        "### fault-report-4242.json",
        "rmcp: 16 bytes into a 4096-byte hipHostMalloc block freed 3 ms ago",
        "rmcp: program: ~/venv/bin/python3 ~/sd/train.py",
        "## Not included",
        "AMD_SERIALIZE_KERNEL=3",
    ] {
        assert!(md.contains(want), "missing {want:?} in\n{md}");
    }
    // What was redacted, said without repeating it.
    assert!(
        md.contains("Redacted before writing: the home directory (")
            && md.contains("the host name (3 places, written as <host>")
            && md.contains("the user name (1 place, written as <user>)"),
        "{md}"
    );
    for secret in ["alice", "/home/", "alexpc", "UNRELATED_SECRET"] {
        assert!(!md.contains(secret), "{secret:?} left in\n{md}");
    }
    std::fs::remove_dir_all(out_dir).unwrap();
}

#[test]
fn bug_report_to_an_unwritable_place_is_one_line_and_exit_2() {
    let root = fixture("rdna2-rx6700xt");
    let run = doctor(
        &[
            "--python",
            "none",
            "--root",
            root.to_str().unwrap(),
            "--bug-report",
            "/nonexistent/dir/report.md",
        ],
        &[],
    );
    assert_eq!(run.code, 2, "{run}");
    let last = run.stderr.lines().last().unwrap_or("");
    assert!(
        last.starts_with("rmcp: --bug-report /nonexistent/dir/report.md: "),
        "{run}"
    );
}

/// The finding ids SCHEMA.md's tables document.
fn documented_ids() -> Vec<String> {
    let schema =
        std::fs::read_to_string(common::manifest_dir().join("src/bin/rmcp/doctor/SCHEMA.md"))
            .unwrap();
    schema
        .lines()
        .filter(|l| l.starts_with("| `"))
        .flat_map(|l| {
            let first = l.split('|').nth(1).unwrap_or("").to_string();
            first
                .split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Every id the doctor's code can emit (the first string after each
/// `Finding::new(` / `lines_finding(`) is documented in SCHEMA.md, and
/// every top-level key of `--json` is in its layout.
#[test]
fn schema_documents_every_finding_id_and_key() {
    let ids = documented_ids();
    let mut missing = Vec::new();
    let mut seen = 0;
    let dirs = ["src/bin/rmcp/doctor", "src/bin/rmcp"];
    for d in dirs {
        for e in std::fs::read_dir(common::manifest_dir().join(d))
            .unwrap()
            .flatten()
        {
            if e.path().extension().is_none_or(|x| x != "rs") {
                continue;
            }
            let src = std::fs::read_to_string(e.path()).unwrap();
            for marker in ["Finding::new(", "lines_finding("] {
                for (i, _) in src.match_indices(marker) {
                    let rest = &src[i + marker.len()..];
                    let Some(q) = rest.find('"') else { continue };
                    // only a literal that is the first argument
                    if !rest[..q].trim().is_empty() {
                        continue;
                    }
                    let id = rest[q + 1..].split('"').next().unwrap();
                    seen += 1;
                    if !ids.iter().any(|d| d == id) {
                        missing.push(format!("{}: {id}", e.path().display()));
                    }
                }
            }
        }
    }
    assert!(seen >= 40, "only {seen} ids found in the sources");
    assert!(missing.is_empty(), "not in SCHEMA.md: {missing:?}");

    let schema =
        std::fs::read_to_string(common::manifest_dir().join("src/bin/rmcp/doctor/SCHEMA.md"))
            .unwrap();
    let (_, v) = doctor_json("rdna2-kernel-6.18", Some("logs/amdgpu-204.log"), &[], &[]);
    for key in v.as_object().unwrap().keys() {
        assert!(
            schema.contains(&format!("\"{key}\":")),
            "top-level key {key} not in SCHEMA.md"
        );
    }
}

/// `sudo rmcp doctor` (run to read the kernel log) still checks the start-up
/// files of the user who called sudo: SUDO_USER's home from etc/passwd, not
/// root's HOME. Without root, SUDO_USER is not trusted and HOME is used.
#[test]
fn under_sudo_the_callers_files_are_checked() {
    let (code, v) = doctor_json(
        "rdna1-overrides",
        Some("logs/clean.log"),
        &[],
        &[("SUDO_USER", "alice"), ("HOME", "/root")],
    );
    let fs = findings(&v);
    let bashrc = fs
        .iter()
        .any(|f| f.0 == "hsa-override-in-file" && f.2.contains("/home/alice/.bashrc:10"));
    // SAFETY: geteuid() has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        assert!(bashrc, "{fs:?}");
        assert_eq!(code, 1);
    } else {
        assert!(!bashrc, "{fs:?}");
    }
}
