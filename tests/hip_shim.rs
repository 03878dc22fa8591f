//! The HIP shim end to end: real processes under the real dynamic loader,
//! against the C test doubles of libamdhip64 / libhsa-runtime64, in the three
//! ways users load librmcp.so. Each assertion is on what the runtime double
//! recorded (the flags each call arrived with) or what the user sees.

mod common;

use common::{librmcp, Program, Run, Scenario};
use std::process::Command;

const NON_COHERENT: u64 = 0x8000_0000;
const RDNA2: &str = "gfx1030";
const RDNA3: &str = "gfx1100";

fn run(program: Program, devices: &str, ops: &[&str]) -> Run {
    Scenario::new(program)
        .devices(devices)
        .preload(true)
        .args(ops)
        .run()
}

/// stderr lines that rmcp printed.
fn rmcp_lines(r: &Run) -> Vec<&str> {
    r.stderr
        .lines()
        .filter(|l| l.starts_with("rmcp:"))
        .collect()
}

const HOST_OPS: &[&str] = &[
    "hipHostMalloc:4096:0",
    "hipHostMalloc:4096:0x2",
    "hipHostMalloc:4096:0x40000000",
    "hipHostMalloc:4096:0x1",
    "hipHostMalloc:4096:0x80000000",
    "freeall",
];

#[test]
fn targeted_device_gets_non_coherent_host_memory() {
    let r = run(Program::DriverExe, RDNA2, HOST_OPS);
    r.assert_success();
    // flags 0 (PyTorch pin_memory), Mapped, Coherent: rewritten; Portable alone
    // is already non-coherent; NonCoherent stays.
    assert_eq!(
        r.flags_of("hipHostMalloc"),
        vec![
            NON_COHERENT,
            NON_COHERENT | 0x2,
            NON_COHERENT,
            0x1,
            NON_COHERENT
        ],
        "{r}"
    );
    assert!(rmcp_lines(&r).is_empty(), "{r}");
}

#[test]
fn untargeted_device_is_left_alone() {
    let r = run(Program::DriverExe, RDNA3, HOST_OPS);
    r.assert_success();
    assert_eq!(
        r.flags_of("hipHostMalloc"),
        vec![0, 0x2, 0x4000_0000, 0x1, NON_COHERENT],
        "{r}"
    );
}

#[test]
fn every_host_entry_point_follows_the_policy() {
    let r = run(
        Program::DriverExe,
        RDNA2,
        &[
            "hipHostAlloc:4096:0",
            "hipHostAlloc:4096:0x4",
            "hipExtHostAlloc:4096:0",
            "hipMemAllocHost:4096",
            "hipMallocHost:4096",
            "freeall",
        ],
    );
    r.assert_success();
    // hipHostAlloc cannot take NonCoherent: the coherent request became a
    // hipHostMalloc; WriteCombined alone is not coherent and stays.
    assert_eq!(r.flags_of("hipHostAlloc"), vec![0x4], "{r}");
    // hipHostAlloc(0) and hipMemAllocHost went to hipHostMalloc(NonCoherent).
    assert_eq!(
        r.flags_of("hipHostMalloc"),
        vec![NON_COHERENT, NON_COHERENT],
        "{r}"
    );
    assert_eq!(r.flags_of("hipExtHostAlloc"), vec![NON_COHERENT], "{r}");
    assert!(r.calls_named("hipMemAllocHost").is_empty(), "{r}");
    assert_eq!(r.calls_named("hipMallocHost").len(), 1);
}

#[test]
fn device_allocations_follow_the_current_device() {
    let r = run(
        Program::DriverExe,
        &format!("{RDNA3},{RDNA2}"),
        &[
            "hipHostMalloc:64:0",
            "setdev:0",
            "hipExtMallocWithFlags:64:1",
            "hipMallocManaged:64:1",
            "setdev:1",
            "hipExtMallocWithFlags:64:1",
            "hipExtMallocWithFlags:64:3",
            "hipExtMallocWithFlags:8:2",
            "hipExtMallocWithFlags:64:4",
            "hipMallocManaged:64:1",
            "hipMalloc:64",
            "freeall",
        ],
    );
    r.assert_success();
    // Host memory: rewritten because one visible device is a target.
    assert_eq!(r.flags_of("hipHostMalloc"), vec![NON_COHERENT]);
    // Device 0 (gfx1100) untouched; device 1 (gfx1030): Finegrained and
    // Uncached become Default, SignalMemory and Contiguous stay.
    assert_eq!(
        r.flags_of("hipExtMallocWithFlags"),
        vec![1, 0, 0, 2, 4],
        "{r}"
    );
    let advice = r.calls_named("hipMemAdvise");
    assert_eq!(
        advice.len(),
        1,
        "only the target device's managed memory is advised\n{r}"
    );
    assert_eq!(advice[0].get("advice"), Some("100"));
    assert_eq!(advice[0].get("device"), Some("1"));
    let managed = r.calls_named("hipMallocManaged");
    assert_eq!(advice[0].ptr(), managed[1].ptr());
}

#[test]
fn refused_managed_advice_is_reported_not_failed() {
    let r = Scenario::new(Program::DriverExe)
        .devices(RDNA2)
        .preload(true)
        .env("FAKE_HIP_ADVISE_FAIL", "1")
        .args(["hipMallocManaged:4096:1", "freeall"])
        .run();
    r.assert_success();
    assert_eq!(r.op("hipMallocManaged:4096:1").rc(), "0");
    let lines = rmcp_lines(&r);
    assert_eq!(lines.len(), 1, "{r}");
    assert!(
        lines[0].starts_with("rmcp: warn: hipMemAdvise(SetCoarseGrain)")
            && lines[0].contains("returned 801"),
        "{r}"
    );
}

#[test]
fn modes_off_and_force() {
    let off = Scenario::new(Program::DriverExe)
        .devices(RDNA2)
        .preload(true)
        .env("RMCP_MODE", "off")
        .args([
            "hipHostMalloc:64:0",
            "hipExtMallocWithFlags:64:1",
            "hipMallocManaged:64:1",
            "freeall",
        ])
        .run();
    off.assert_success();
    assert_eq!(off.flags_of("hipHostMalloc"), vec![0]);
    assert_eq!(off.flags_of("hipExtMallocWithFlags"), vec![1]);
    assert!(off.calls_named("hipMemAdvise").is_empty());

    let force = Scenario::new(Program::DriverExe)
        .devices(RDNA3)
        .preload(true)
        .env("RMCP_MODE", "force")
        .args([
            "hipHostMalloc:64:0",
            "hipExtMallocWithFlags:64:1",
            "hipMallocManaged:64:1",
            "freeall",
        ])
        .run();
    force.assert_success();
    assert_eq!(force.flags_of("hipHostMalloc"), vec![NON_COHERENT]);
    assert_eq!(force.flags_of("hipExtMallocWithFlags"), vec![0]);
    assert_eq!(force.calls_named("hipMemAdvise").len(), 1);
}

#[test]
fn rmcp_targets_overrides_the_default_set() {
    let r = Scenario::new(Program::DriverExe)
        .devices(&format!("{RDNA2},{RDNA3}"))
        .preload(true)
        .env("RMCP_TARGETS", "gfx1100-gfx1101")
        .args([
            "setdev:0",
            "hipExtMallocWithFlags:64:1",
            "setdev:1",
            "hipExtMallocWithFlags:64:1",
            "freeall",
        ])
        .run();
    r.assert_success();
    assert_eq!(r.flags_of("hipExtMallocWithFlags"), vec![1, 0], "{r}");
}

#[test]
fn hip_host_coherent_makes_flagged_requests_coherent_so_they_are_rewritten() {
    let r = Scenario::new(Program::DriverExe)
        .devices(RDNA2)
        .preload(true)
        .env("HIP_HOST_COHERENT", "1")
        .args(["hipHostMalloc:64:0x1", "hipHostMalloc:64:0x4", "freeall"])
        .run();
    r.assert_success();
    assert_eq!(
        r.flags_of("hipHostMalloc"),
        vec![NON_COHERENT | 1, NON_COHERENT | 4]
    );
}

#[test]
fn invalid_requests_reach_the_runtime_unchanged() {
    let r = run(
        Program::DriverExe,
        RDNA2,
        &[
            "hipHostMalloc:64:0xc0000000",
            "hipHostMalloc:64:0x10",
            "hipHostMalloc:64:0:null",
            "hipHostMalloc:0:0",
            "hipExtMallocWithFlags:64:9",
            "hipHostAlloc:64:0x80000000",
        ],
    );
    assert_eq!(
        r.flags_of("hipHostMalloc"),
        vec![0xc000_0000, 0x10, 0, 0],
        "{r}"
    );
    assert_eq!(r.op("hipHostMalloc:64:0xc0000000").rc(), "1");
    assert_eq!(r.op("hipHostMalloc:64:0:null").rc(), "1");
    assert_eq!(r.op("hipHostMalloc:0:0").rc(), "0");
    assert_eq!(r.flags_of("hipExtMallocWithFlags"), vec![9]);
    assert_eq!(r.op("hipExtMallocWithFlags:64:9").rc(), "1");
    assert_eq!(r.flags_of("hipHostAlloc"), vec![NON_COHERENT]);
    assert_eq!(r.op("hipHostAlloc:64:0x80000000").rc(), "1");
    assert!(rmcp_lines(&r).is_empty(), "{r}");
}

#[test]
fn dlopen_rtld_local_module_is_covered() {
    // CPython imports torch with dlopen(RTLD_LOCAL): dlsym(RTLD_NEXT) finds no
    // runtime, but the already-loaded copy is found by its name.
    let r = Scenario::new(Program::DlopenHost)
        .devices(RDNA2)
        .preload(true)
        .env("RMCP_LOG", "debug")
        .args([
            "hipHostMalloc:4096:0",
            "hipExtMallocWithFlags:64:1",
            "freeall",
        ])
        .run();
    r.assert_success();
    assert_eq!(r.flags_of("hipHostMalloc"), vec![NON_COHERENT], "{r}");
    assert_eq!(r.flags_of("hipExtMallocWithFlags"), vec![0], "{r}");
    assert!(
        r.stderr.contains("HIP runtime: ")
            && r.stderr.contains("libamdhip64.so.6 (found already loaded)"),
        "{r}"
    );
}

#[test]
fn linked_directly_without_preload() {
    let r = Scenario::new(Program::DriverDirect)
        .devices(RDNA2)
        .args([
            "print_rmcp",
            "hipHostMalloc:4096:0",
            "hipMallocManaged:64:1",
            "freeall",
        ])
        .run();
    r.assert_success();
    assert_eq!(
        r.op("print_rmcp").get("rmcp_version"),
        Some(env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(r.flags_of("hipHostMalloc"), vec![NON_COHERENT], "{r}");
    assert_eq!(r.calls_named("hipMemAdvise").len(), 1, "{r}");
}

#[test]
fn rocm5_runtime_old_property_layout_and_missing_symbols() {
    for program in [Program::DriverExe5, Program::DlopenHost5] {
        let r = run(
            program.clone(),
            RDNA2,
            &[
                "hipHostMalloc:64:0",
                "hipExtHostAlloc:64:0",
                "hipExtHostAlloc:64:0",
                "freeall",
            ],
        );
        // The arch came from the R0000 layout (no R0600 symbol in 5.x).
        assert_eq!(
            r.flags_of("hipHostMalloc"),
            vec![NON_COHERENT],
            "{program:?}\n{r}"
        );
        assert_eq!(r.calls_named("hipGetDeviceProperties").len(), 1, "{r}");
        // The preloaded hook exists; the runtime's function does not: 801,
        // and one warning however often it is called.
        let ext: Vec<_> = r
            .ops()
            .into_iter()
            .filter(|o| o.op == "hipExtHostAlloc:64:0")
            .collect();
        assert!(ext.iter().all(|o| o.rc() == "801"), "{r}");
        let lines = rmcp_lines(&r);
        assert_eq!(lines, vec!["rmcp: warn: hipExtHostAlloc is not in this HIP runtime; returning hipErrorNotSupported"], "{r}");
    }
}

#[test]
fn rocm6_reads_the_r0600_layout() {
    let r = run(
        Program::DriverExe,
        "gfx1031",
        &["hipHostMalloc:64:0", "freeall"],
    );
    assert_eq!(r.flags_of("hipHostMalloc"), vec![NON_COHERENT]);
    assert_eq!(r.calls_named("hipGetDevicePropertiesR0600").len(), 1, "{r}");
    assert!(r.calls_named("hipGetDeviceProperties").is_empty(), "{r}");
}

#[test]
fn get_proc_address_hands_back_the_hook() {
    let r = run(
        Program::DriverExe,
        RDNA2,
        &[
            "procaddr:hipHostMalloc:64:0",
            "procaddr:hipExtMallocWithFlags:64:1",
            "dlsym:hipHostMalloc:64:0",
        ],
    );
    r.assert_success();
    // Through hipGetProcAddress: the policy applies.
    // Through dlsym on the runtime's own handle: bypassed (a documented limit).
    assert_eq!(r.flags_of("hipHostMalloc"), vec![NON_COHERENT, 0], "{r}");
    assert_eq!(r.flags_of("hipExtMallocWithFlags"), vec![0], "{r}");
}

#[test]
fn many_threads_race_the_first_call_and_initialise_once() {
    let r = Scenario::new(Program::DriverExe)
        .devices(&format!("{RDNA2},{RDNA3}"))
        .preload(true)
        .env("RMCP_LOG", "debug")
        .args([
            "threads:16",
            "hipHostMalloc:4096:0",
            "hipExtMallocWithFlags:64:1",
            "free",
            "free",
        ])
        .run();
    r.assert_success();
    assert_eq!(r.flags_of("hipHostMalloc"), vec![NON_COHERENT; 16], "{r}");
    assert_eq!(r.flags_of("hipExtMallocWithFlags"), vec![0; 16], "{r}");
    // Each device's properties were read exactly once.
    let props = r.calls_named("hipGetDevicePropertiesR0600");
    assert_eq!(props.len(), 2, "{r}");
    assert_eq!(r.stderr.matches("librmcp 0.1.0 active").count(), 1, "{r}");
    assert_eq!(r.stderr.matches("HIP runtime: ").count(), 1, "{r}");
}

#[test]
fn forked_child_is_covered() {
    let r = run(
        Program::DriverExe,
        RDNA2,
        &[
            "hipHostMalloc:64:0",
            "fork",
            "hipHostMalloc:64:0",
            "hipExtMallocWithFlags:64:1",
            "freeall",
        ],
    );
    r.assert_success();
    assert_eq!(r.op("fork").get("child"), Some("0"), "{r}");
    assert_eq!(
        r.flags_of("hipHostMalloc"),
        vec![NON_COHERENT, NON_COHERENT],
        "{r}"
    );
    assert_eq!(r.flags_of("hipExtMallocWithFlags"), vec![0], "{r}");
}

#[test]
fn hook_called_from_another_library_constructor() {
    // libctor_early's constructor calls hipHostMalloc before main and before
    // rmcp has done anything: lazy initialisation handles it.
    let r = Scenario::new(Program::CtorExe)
        .devices(RDNA2)
        .preload(true)
        .args(["hipHostMalloc:64:0"])
        .run();
    r.assert_success();
    assert!(r.stderr.contains("ctor rc=0"), "{r}");
    assert_eq!(
        r.flags_of("hipHostMalloc"),
        vec![NON_COHERENT, NON_COHERENT],
        "{r}"
    );
}

#[test]
fn bad_environment_values_get_one_line_each_and_safe_defaults() {
    let r = Scenario::new(Program::DriverExe)
        .devices(RDNA2)
        .preload(true)
        .env("RMCP_MODE", "fast")
        .env("RMCP_TARGETS", "navi21")
        .env("RMCP_LOG", "verbose")
        .args(["hipHostMalloc:64:0", "freeall"])
        .run();
    r.assert_success();
    assert_eq!(
        rmcp_lines(&r),
        vec![
            "rmcp: warn: RMCP_MODE='fast' is not valid (accepted: auto, force, off); using auto",
            "rmcp: warn: RMCP_TARGETS='navi21' is not valid ('navi21' is not a gfx name; accepted: comma-separated names and ranges such as gfx1030,gfx1010-gfx1013); using gfx1010-gfx1013,gfx1030-gfx1036",
            "rmcp: warn: RMCP_LOG='verbose' is not valid (accepted: off, error, warn, info, debug, trace); using warn",
        ],
        "{r}"
    );
    // The defaults apply: auto mode, default targets.
    assert_eq!(r.flags_of("hipHostMalloc"), vec![NON_COHERENT]);
}

#[test]
fn exit_summary_at_info_level() {
    let r = Scenario::new(Program::DriverExe)
        .devices(&format!("{RDNA2},{RDNA3}"))
        .preload(true)
        .env("RMCP_LOG", "info")
        .args([
            "hipHostMalloc:64:0",
            "hipHostMalloc:64:0x80000000",
            "hipMalloc:64",
            "freeall",
        ])
        .run();
    r.assert_success();
    assert_eq!(
        rmcp_lines(&r),
        vec!["rmcp: info: summary: calls/rewritten: hipMalloc 1/0, hipFree 1/0, hipHostMalloc 2/1, hipHostFree 2/0; GPU memory faults: 0; devices targeted: 0 (gfx1030); not targeted: 1 (gfx1100)"],
        "{r}"
    );
}

#[test]
fn rmcp_hip_library_names_the_runtime_when_none_is_loaded() {
    // A program linked to librmcp only: the runtime comes from RMCP_HIP_LIBRARY.
    let fx = common::fixtures();
    let exe = fx.dir.join("no_runtime");
    if !exe.exists() {
        common::compile_c(
            &exe,
            &[common::manifest_dir().join("tests/c/no_runtime.c")],
            &[
                "-L",
                librmcp().parent().unwrap().to_str().unwrap(),
                "-lrmcp",
            ],
        );
    }
    let lib_dir = librmcp().parent().unwrap().to_path_buf();
    let ok = Scenario::new(Program::Path(exe.clone()))
        .devices(RDNA2)
        .lib_dir(&lib_dir)
        .env("RMCP_HIP_LIBRARY", fx.dir.join("libamdhip64.so.6"))
        .run();
    assert!(ok.success(), "{ok}");
    assert_eq!(ok.flags_of("hipHostMalloc"), vec![NON_COHERENT], "{ok}");

    // Naming librmcp itself must not make every forward call the hook again.
    let itself = Scenario::new(Program::Path(exe.clone()))
        .devices(RDNA2)
        .lib_dir(&lib_dir)
        .env("RMCP_HIP_LIBRARY", librmcp())
        .run();
    assert_eq!(itself.status.code(), Some(1), "{itself}");
    assert!(itself.stdout.contains("hipHostMalloc rc=801"), "{itself}");
    assert_eq!(
        rmcp_lines(&itself),
        vec![
            "rmcp: warn: hipHostMalloc is not in this HIP runtime; returning hipErrorNotSupported"
        ],
        "{itself}"
    );

    let missing = Scenario::new(Program::Path(exe))
        .devices(RDNA2)
        .lib_dir(&lib_dir)
        .env("RMCP_HIP_LIBRARY", "/nonexistent/libamdhip64.so.6")
        .run();
    let lines = rmcp_lines(&missing);
    assert!(
        lines.first().is_some_and(|l| l.starts_with("rmcp: warn: could not load the HIP runtime named by the environment (/nonexistent/libamdhip64.so.6)")),
        "{missing}"
    );
}

#[test]
fn inert_processes_print_and_load_nothing() {
    let lib = librmcp();
    for argv in [
        vec!["/bin/true"],
        vec!["python3", "-c", "pass"],
        vec!["cat", "/proc/self/maps"],
    ] {
        let out = Command::new(argv[0])
            .args(&argv[1..])
            .env("LD_PRELOAD", &lib)
            .env("RMCP_LOG", "trace")
            .env("RMCP_MODE", "garbage")
            .output()
            .unwrap();
        assert!(out.status.success(), "{argv:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), "", "{argv:?}");
        if argv[0] == "cat" {
            let maps = String::from_utf8_lossy(&out.stdout);
            assert!(maps.contains("librmcp.so"), "the shim was loaded");
            assert!(
                !maps.contains("libamdhip64") && !maps.contains("libhsa-runtime64"),
                "{maps}"
            );
        }
    }
}

#[test]
fn exports_only_hooks_and_the_c_api() {
    let out = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(librmcp())
        .output()
        .expect("nm");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut names: Vec<&str> = text
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 3 && "TWDBRV".contains(f[1])).then_some(f[2])
        })
        .collect();
    names.sort();
    // The hooks come from the one hook table (src/core/entry.rs); the C API is
    // spelled out, as include/rmcp.h is.
    let mut expected: Vec<&str> = rmcp::hooks::EXPORTED.to_vec();
    assert!(
        expected.contains(&"hipHostMalloc") && expected.contains(&"hsa_init"),
        "{expected:?}"
    );
    expected.extend([
        "rmcp_describe_address",
        "rmcp_entry_point_count",
        "rmcp_entry_point_name",
        "rmcp_lookup",
        "rmcp_recent_launches",
        "rmcp_stats_get",
        "rmcp_version",
    ]);
    expected.sort();
    assert_eq!(names, expected);
    // Unversioned: a versioned definition would not bind hip_4.2 references.
    assert!(!text.contains('@'), "{text}");
}

/// The rewriting entry points, each as the application calls them and as
/// librccl.so.1 (a library named like RCCL, `tests/programs/rocmlike_lib.c`)
/// calls them from its own code: RCCL's host flags (hipHostMalloc(Mapped))
/// and cross-GPU flags (hipExtMallocWithFlags(Finegrained)) and the others.
const ROCM_CALLER_OPS: &[&str] = &[
    "rccl:hipHostMalloc:4096:0x2",
    "rccl:hipHostAlloc:4096:0",
    "rccl:hipExtHostAlloc:4096:0",
    "rccl:hipMemAllocHost:4096",
    "rccl:hipExtMallocWithFlags:64:1",
    "rccl:hipMallocManaged:64:1",
    "hipHostMalloc:4096:0x2",
    "hipHostAlloc:4096:0",
    "hipExtHostAlloc:4096:0",
    "hipMemAllocHost:4096",
    "hipExtMallocWithFlags:64:1",
    "hipMallocManaged:64:1",
    "freeall",
];

/// What the runtime double received for `ROCM_CALLER_OPS`:
/// (hipHostMalloc flags, hipHostAlloc flags, hipExtHostAlloc flags,
/// hipMemAllocHost calls, hipExtMallocWithFlags flags, hipMemAdvise calls).
fn received(r: &Run) -> (Vec<u64>, Vec<u64>, Vec<u64>, usize, Vec<u64>, usize) {
    (
        r.flags_of("hipHostMalloc"),
        r.flags_of("hipHostAlloc"),
        r.flags_of("hipExtHostAlloc"),
        r.calls_named("hipMemAllocHost").len(),
        r.flags_of("hipExtMallocWithFlags"),
        r.calls_named("hipMemAdvise").len(),
    )
}

#[test]
fn rocm_libraries_get_exactly_what_they_ask_for() {
    for program in [
        Program::DriverExe,
        Program::DlopenHost,
        Program::DriverDirect,
    ] {
        let r = run(program.clone(), RDNA2, ROCM_CALLER_OPS);
        r.assert_success();
        assert!(
            r.ops().iter().all(|o| o.rc() == "0"),
            "{program:?}: a call failed\n{r}"
        );
        // librccl.so.1's calls arrive as it made them; the application's
        // identical calls are rewritten (hipHostAlloc and hipMemAllocHost
        // become hipHostMalloc(NonCoherent), managed memory is advised).
        assert_eq!(
            received(&r),
            (
                vec![0x2, NON_COHERENT | 0x2, NON_COHERENT, NON_COHERENT],
                vec![0],
                vec![0, NON_COHERENT],
                1,
                vec![1, 0],
                1,
            ),
            "{program:?}\n{r}"
        );
        assert!(rmcp_lines(&r).is_empty(), "{r}");
    }
}

#[test]
fn rocm_callers_include_switch_rewrites_them_too() {
    let r = Scenario::new(Program::DriverExe)
        .devices(RDNA2)
        .preload(true)
        .env("RMCP_ROCM_CALLERS", "include")
        .args(ROCM_CALLER_OPS)
        .run();
    r.assert_success();
    assert_eq!(
        received(&r),
        (
            vec![NON_COHERENT | 0x2, NON_COHERENT, NON_COHERENT]
                .into_iter()
                .chain([NON_COHERENT | 0x2, NON_COHERENT, NON_COHERENT])
                .collect(),
            vec![],
            vec![NON_COHERENT, NON_COHERENT],
            0,
            vec![0, 0],
            2,
        ),
        "{r}"
    );
    // Without rmcp both callers get the same, unchanged.
    let plain = Scenario::new(Program::DriverExe)
        .devices(RDNA2)
        .args(ROCM_CALLER_OPS)
        .run();
    plain.assert_success();
    assert_eq!(
        received(&plain),
        (vec![0x2, 0x2], vec![0, 0], vec![0, 0], 2, vec![1, 1], 0),
        "{plain}"
    );
}

/// Issue 19 item 5: a program whose every HIP call is one rmcp hooks
/// (`tests/programs/hooked_only.c`), linked `-lrmcp -lamdhip64` with the
/// toolchain's default flags, loses libamdhip64 from its NEEDED entries
/// (`--as-needed`); rmcp finds the runtime through the program's RUNPATH,
/// and the calls work and are rewritten. Linked with rmcp.pc's flags, the
/// runtime stays needed.
#[test]
fn directly_linked_program_finds_its_runtime_through_its_runpath() {
    let f = common::fixtures();
    let dir = common::tempdir("hooked-only");
    let rmcp_dir = dir.join("rmcp");
    std::fs::create_dir_all(&rmcp_dir).unwrap();
    std::os::unix::fs::symlink(librmcp(), rmcp_dir.join("librmcp.so")).unwrap();
    let src = [common::manifest_dir().join("tests/programs/hooked_only.c")];
    let (lr, l6) = (
        format!("-L{}", rmcp_dir.display()),
        format!("-L{}", f.dir.display()),
    );
    let rpath = format!("-Wl,-rpath,{}:{}", f.dir.display(), rmcp_dir.display());
    let needed = |exe: &std::path::Path| -> String {
        let o = Command::new("readelf").arg("-d").arg(exe).output().unwrap();
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| l.contains("(NEEDED)"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    // Default flags.
    let plain = dir.join("hooked_only");
    common::compile_c(&plain, &src, &[&lr, "-lrmcp", &l6, "-lamdhip64", &rpath]);
    let n = needed(&plain);
    assert!(n.contains("[librmcp.so]"), "{n}");
    assert!(
        !n.contains("libamdhip64"),
        "the toolchain kept libamdhip64 needed: the case under test needs --as-needed\n{n}"
    );
    let log = dir.join("hip.log");
    let o = Command::new(&plain)
        .env_remove("LD_LIBRARY_PATH")
        .env_remove("LD_PRELOAD")
        .env("FAKE_HIP_DEVICES", RDNA2)
        .env("FAKE_HIP_LOG", &log)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{out}{err}");
    assert!(out.contains("hipHostMalloc rc=0"), "{out}");
    assert!(!err.contains("rmcp:"), "{err}");
    let record = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        record.contains("hipHostMalloc size=4096 flags=0x80000000"),
        "{record}"
    );
    assert!(record.contains("hipLaunchKernel "), "{record}");
    // rmcp.pc's flags: the runtime stays needed.
    let pc = std::fs::read_to_string(common::manifest_dir().join("rmcp.pc.in")).unwrap();
    let libs = pc
        .lines()
        .find_map(|l| l.strip_prefix("Libs: "))
        .expect("Libs line")
        .replace("${libdir}", &rmcp_dir.display().to_string());
    let mut args: Vec<&str> = libs.split_whitespace().collect();
    args.extend([l6.as_str(), "-lamdhip64", rpath.as_str()]);
    let with_pc = dir.join("hooked_only_pc");
    common::compile_c(&with_pc, &src, &args);
    let n = needed(&with_pc);
    assert!(n.contains("libamdhip64"), "{n}");
    assert!(
        n.find("[librmcp.so]") < n.find("libamdhip64"),
        "librmcp first:\n{n}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
