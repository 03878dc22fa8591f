//! The HSA layer: fine-grained pool allocations redirected per agent, ROCm's
//! own allocations untouched, and GPU memory faults attributed to the
//! allocation that contains the address, raised by the HSA test double the
//! way ROCr does (every handler, then its own message, then abort).

mod common;

use common::{Program, Run, Scenario};

const MIXED: &str = "gfx1100,gfx1031";

fn pools_used(r: &Run) -> Vec<String> {
    r.calls_named("hsa_amd_memory_pool_allocate")
        .iter()
        .map(|c| format!("{}:{}", c.get("agent").unwrap(), c.get("pool").unwrap()))
        .collect()
}

fn rmcp_lines(r: &Run) -> Vec<&str> {
    r.stderr
        .lines()
        .filter(|l| l.starts_with("rmcp:"))
        .collect()
}

#[test]
fn fine_grained_pools_on_targeted_agents_are_redirected() {
    let r = Scenario::new(Program::DriverExe)
        .devices(MIXED)
        .preload(true)
        .args([
            "hsa_init",
            "hsa_alloc:0:fine:4096",
            "hsa_alloc:1:fine:4096",
            "hsa_alloc:1:extfine:4096",
            "hsa_alloc:1:coarse:4096",
            "hsa_alloc:0:sysfine:4096",
            "hsa_alloc:0:kernarg:4096",
            "freeall",
        ])
        .run();
    r.assert_success();
    // Agent 1 is gfx1100 (not a target), agent 2 is gfx1031; agent 0 is the CPU.
    assert_eq!(
        pools_used(&r),
        vec![
            "1:fine",
            "2:coarse",
            "2:coarse",
            "2:coarse",
            "0:sysfine",
            "0:kernarg"
        ],
        "{r}"
    );
    assert_eq!(r.calls_named("hsa_amd_memory_pool_free").len(), 6);
}

#[test]
fn allocations_from_rocm_libraries_are_never_redirected() {
    let r = Scenario::new(Program::DriverExe)
        .devices(MIXED)
        .preload(true)
        .args([
            "hsa_init",
            "rocmlike_alloc:1:fine:4096",
            "hsa_alloc:1:fine:4096",
            "freeall",
        ])
        .run();
    r.assert_success();
    assert_eq!(pools_used(&r), vec!["2:fine", "2:coarse"], "{r}");
}

#[test]
fn mode_off_redirects_nothing_and_force_redirects_every_gpu() {
    let off = Scenario::new(Program::DriverExe)
        .devices(MIXED)
        .preload(true)
        .env("RMCP_MODE", "off")
        .args([
            "hsa_init",
            "hsa_alloc:0:fine:64",
            "hsa_alloc:1:fine:64",
            "freeall",
        ])
        .run();
    off.assert_success();
    assert_eq!(pools_used(&off), vec!["1:fine", "2:fine"], "{off}");
    let force = Scenario::new(Program::DriverExe)
        .devices(MIXED)
        .preload(true)
        .env("RMCP_MODE", "force")
        .args([
            "hsa_init",
            "hsa_alloc:0:fine:64",
            "hsa_alloc:0:sysfine:64",
            "freeall",
        ])
        .run();
    force.assert_success();
    assert_eq!(pools_used(&force), vec!["1:coarse", "0:sysfine"], "{force}");
}

/// Runs ops that end in a GPU memory fault raised by the HSA double.
fn fault_run(devices: &str, ops: &[&str], report: Option<&std::path::Path>) -> Run {
    let mut s = Scenario::new(Program::DriverExe)
        .devices(devices)
        .preload(true)
        .args(ops);
    if let Some(p) = report {
        s = s.env("RMCP_FAULT_REPORT", p);
    }
    let r = s.run();
    assert_eq!(
        r.signal(),
        Some(libc::SIGABRT),
        "the runtime still ends the process\n{r}"
    );
    r
}

/// rmcp's report comes first, then the runtime's own message.
fn assert_runtime_message_follows(r: &Run) {
    let ours = r
        .stderr
        .find("rmcp: GPU memory fault")
        .expect("rmcp report");
    let theirs = r
        .stderr
        .find("Memory access fault by GPU node-")
        .expect("runtime message kept");
    assert!(ours < theirs, "{r}");
}

fn fault_address(r: &Run) -> String {
    r.ops()
        .into_iter()
        .find(|o| o.op.starts_with("hsa_fault"))
        .and_then(|o| o.get("addr").map(str::to_string))
        .expect("addr")
}

#[test]
fn fault_inside_a_live_allocation_names_it() {
    let dir = common::tempdir("hsa-fault");
    let report = dir.join("fault.json");
    let r = fault_run(
        "gfx1030",
        &["hsa_init", "hipHostMalloc:4096:0", "hsa_fault:live+16:1"],
        Some(&report),
    );
    assert_runtime_message_follows(&r);
    let addr = fault_address(&r);
    let lines = rmcp_lines(&r);
    assert!(
        lines[0].starts_with(&format!(
            "rmcp: GPU memory fault at address {addr} on gfx1030 (node 1, agent 0x"
        )),
        "{r}"
    );
    assert!(lines[0].ends_with("reason: page not present"), "{r}");
    assert!(
        lines[1].starts_with(&format!("rmcp: address {addr} is 16 bytes into a live allocation: hipHostMalloc of 4096 bytes at 0x")),
        "{r}"
    );
    assert!(
        lines[1].contains(
            "(flags requested 0x0, applied 0x80000000, rewritten by rmcp; host memory; thread "
        ),
        "{r}"
    );
    let json = std::fs::read_to_string(&report).expect("RMCP_FAULT_REPORT written");
    assert!(json.starts_with(&format!("{{\"rmcp_fault_report\":1,\"address\":\"{addr}\",\"reason_mask\":1,\"reasons\":[\"page not present\"],\"gpu\":{{\"name\":\"gfx1030\",\"node\":1}},\"verdict\":\"live\",\"allocation\":{{\"entry_point\":\"hipHostMalloc\"")), "{json}");
    assert!(json.contains("\"size\":4096,\"offset\":16,\"requested_flags\":\"0x0\",\"applied_flags\":\"0x80000000\",\"rewritten\":true"), "{json}");
    assert!(
        json.contains("\"text\":\"GPU memory fault at address"),
        "{json}"
    );
}

/// hipMalloc's record names the thread's current device as rmcp's
/// hipSetDevice hook noted it (0 before any), without asking the runtime.
#[test]
fn a_device_allocation_is_filed_under_the_threads_current_device() {
    for (ops, device) in [
        (
            &["hsa_init", "hipMalloc:65536", "hsa_fault:live+16:1"][..],
            0,
        ),
        (
            &[
                "hsa_init",
                "setdev:1",
                "hipMalloc:65536",
                "hsa_fault:live+16:1:1",
            ][..],
            1,
        ),
    ] {
        let r = fault_run(MIXED, ops, None);
        let lines = rmcp_lines(&r);
        assert!(
            lines[1].contains(&format!("; device {device}; thread ")),
            "{r}"
        );
        if !ops.contains(&"setdev:1") {
            // (rmcp's hipSetDevice hook asks it once for the thread's word.)
            assert!(r.calls_named("hipGetDevice").is_empty(), "{r}");
        }
    }
}

#[test]
fn fault_in_freed_memory_says_use_after_free() {
    let r = fault_run(
        "gfx1030",
        &[
            "hsa_init",
            WARM_UP,
            "hipMalloc:65536",
            "free",
            "hsa_fault:freed+4096:3",
        ],
        None,
    );
    assert_runtime_message_follows(&r);
    let addr = fault_address(&r);
    let lines = rmcp_lines(&r);
    assert!(
        lines[0].ends_with("reason: page not present, write to read-only page"),
        "{r}"
    );
    assert!(
        lines[1].starts_with(&format!(
            "rmcp: address {addr} is 4096 bytes into an allocation that was FREED "
        )),
        "{r}"
    );
    assert!(
        lines[1].contains("ms ago (use after free): hipMalloc of 65536 bytes"),
        "{r}"
    );
    assert!(
        lines[2].contains("the GPU touched memory after it was freed"),
        "{r}"
    );
}

#[test]
fn fault_outside_every_allocation_names_the_neighbours() {
    let r = fault_run(
        "gfx1030",
        &["hsa_init", "hsa_alloc:0:fine:4096", "hsa_fault:0x10:1"],
        None,
    );
    assert_runtime_message_follows(&r);
    let lines = rmcp_lines(&r);
    assert!(lines[1].starts_with("rmcp: address 0x10 is in no allocation rmcp has seen; nothing below it; nearest above starts "), "{r}");
    // The neighbour is the HSA allocation, redirected fine (0x2) -> coarse (0x4).
    assert!(
        lines[1].contains("hsa_amd_memory_pool_allocate of 4096 bytes"),
        "{r}"
    );
    assert!(
        lines[1]
            .contains("flags requested 0x2, applied 0x4, rewritten by rmcp; HSA pool of node 1;"),
        "{r}"
    );
}

#[test]
fn other_handlers_still_run_and_untargeted_gpus_are_reported_too() {
    let r = fault_run(
        "gfx1100",
        &[
            "hsa_init",
            "hsa_handler:4096",
            "hipMalloc:64",
            "hsa_fault:live+0:1",
        ],
        None,
    );
    assert!(
        r.stdout.contains("handler event=0"),
        "the application's own handler ran\n{r}"
    );
    assert!(r.stderr.contains("on gfx1100 (node 1"), "{r}");
    assert!(
        r.stderr
            .contains("is 0 bytes into a live allocation: hipMalloc of 64 bytes"),
        "{r}"
    );
    assert_runtime_message_follows(&r);
}

#[test]
fn fault_report_with_rmcp_off_still_attributes() {
    // RMCP_MODE=off changes no allocation; the registry and report stay on.
    let r = Scenario::new(Program::DriverExe)
        .devices("gfx1030")
        .preload(true)
        .env("RMCP_MODE", "off")
        .args(["hsa_init", "hipHostMalloc:4096:0", "hsa_fault:live+1:1"])
        .run();
    assert_eq!(r.signal(), Some(libc::SIGABRT));
    assert!(
        r.stderr
            .contains("(flags requested 0x0, applied 0x0, not rewritten; host memory"),
        "{r}"
    );
}

fn cause_lines(r: &Run) -> Vec<&str> {
    r.stderr
        .lines()
        .filter(|l| l.starts_with("rmcp: likely cause: "))
        .collect()
}

/// Every "likely cause" line comes before the runtime's own message, and the
/// last one points at `rmcp doctor`.
fn assert_causes_precede_runtime_message(r: &Run) {
    let theirs = r
        .stderr
        .find("Memory access fault by GPU node-")
        .expect("runtime message kept");
    let last = r.stderr.rfind("rmcp: likely cause: ").expect("cause lines");
    assert!(last < theirs, "{r}");
    assert!(
        cause_lines(r)
            .last()
            .unwrap()
            .ends_with("run `rmcp doctor` on this machine"),
        "{r}"
    );
}

fn fixture_root(name: &str) -> String {
    format!(
        "{}/tests/fixtures/doctor/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[test]
fn fault_16_bytes_past_the_end_is_named_out_of_bounds() {
    let dir = common::tempdir("hsa-fault-oob");
    let report = dir.join("fault.json");
    let r = fault_run(
        "gfx1030",
        &["hsa_init", "hipMalloc:4096", "hsa_fault:live+4112:1"],
        Some(&report),
    );
    assert_causes_precede_runtime_message(&r);
    let addr = fault_address(&r);
    let causes = cause_lines(&r);
    assert_eq!(
        causes.len(),
        2,
        "no override line without the override\n{r}"
    );
    assert!(
        causes[0].starts_with(&format!(
            "rmcp: likely cause: out of bounds: address {addr} is 16 bytes past the end of hipMalloc of 4096 bytes at 0x"
        )),
        "{r}"
    );
    let json = std::fs::read_to_string(&report).expect("report");
    assert!(
        json.contains("\"causes\":[{\"id\":\"out-of-bounds-past-end\",\"distance_bytes\":16,\"allocation\":{\"entry_point\":\"hipMalloc\""),
        "{json}"
    );
    assert!(
        json.contains("{\"id\":\"check-doctor\",\"text\":\""),
        "{json}"
    );
}

#[test]
fn fault_just_before_an_allocation_is_named_out_of_bounds() {
    let r = fault_run(
        "gfx1030",
        &["hsa_init", "hipMalloc:4096", "hsa_fault:live-16:1"],
        None,
    );
    let addr = fault_address(&r);
    assert!(
        cause_lines(&r)[0].starts_with(&format!(
            "rmcp: likely cause: out of bounds: address {addr} is 16 bytes before the start of hipMalloc of 4096 bytes"
        )),
        "{r}"
    );
}

#[test]
fn fault_in_freed_memory_names_use_after_free_as_the_cause() {
    let dir = common::tempdir("hsa-fault-uaf");
    let report = dir.join("fault.json");
    let r = fault_run(
        "gfx1030",
        &[
            "hsa_init",
            WARM_UP,
            "hipMalloc:65536",
            "free",
            "hsa_fault:freed+4096:1",
        ],
        Some(&report),
    );
    assert_causes_precede_runtime_message(&r);
    let addr = fault_address(&r);
    let c = cause_lines(&r)[0];
    assert!(
        c.starts_with(&format!(
            "rmcp: likely cause: use after free: address {addr} is 4096 bytes into hipMalloc of 65536 bytes at 0x"
        )) && c.contains(", freed ") && c.ends_with(" ms ago"),
        "{r}"
    );
    let json = std::fs::read_to_string(&report).expect("report");
    assert!(
        json.contains("{\"id\":\"use-after-free\",\"offset\":4096,\"freed_ms_ago\":"),
        "{json}"
    );
}

#[test]
fn fault_far_from_everything_is_in_nothing_rmcp_has_seen() {
    let r = fault_run(
        "gfx1030",
        &["hsa_init", "hipMalloc:4096", "hsa_fault:0x10:1"],
        None,
    );
    assert_causes_precede_runtime_message(&r);
    assert_eq!(
        cause_lines(&r)[0],
        "rmcp: likely cause: stray pointer: address 0x10 is in nothing rmcp has seen and within 1024 KiB of no allocation (a stale or corrupted pointer, or memory from another allocator)",
        "{r}"
    );
}

#[test]
fn override_different_from_the_real_gpu_is_named_first() {
    // A gfx1010 GPU (RX 5700 XT fixture: node 1, gfx_target_version 100100)
    // with the override users set to get gfx1030 builds to load.
    let dir = common::tempdir("hsa-fault-override");
    let report = dir.join("fault.json");
    let r = Scenario::new(Program::DriverExe)
        .devices("gfx1010")
        .preload(true)
        .env("HSA_OVERRIDE_GFX_VERSION", "10.3.0")
        .env("RMCP_SYSFS_ROOT", fixture_root("rdna1-rx5700xt"))
        .env("RMCP_FAULT_REPORT", &report)
        .args(["hsa_init", "hipMalloc:4096", "hsa_fault:live+0:1"])
        .run();
    assert_eq!(r.signal(), Some(libc::SIGABRT), "{r}");
    assert_causes_precede_runtime_message(&r);
    let causes = cause_lines(&r);
    assert_eq!(causes.len(), 3, "{r}");
    assert_eq!(
        causes[0],
        "rmcp: likely cause: HSA_OVERRIDE_GFX_VERSION=10.3.0 makes ROCm run gfx1030 code on this gfx1010 GPU (node 1; KFD gfx_target_version 100100), a different instruction set; unset it and use a build with gfx1010 code objects",
        "{r}"
    );
    assert!(
        causes[1].starts_with("rmcp: likely cause: in bounds: address 0x"),
        "{r}"
    );
    let json = std::fs::read_to_string(&report).expect("report");
    assert!(
        json.contains("\"causes\":[{\"id\":\"hsa-override-mismatch\",\"variable\":\"HSA_OVERRIDE_GFX_VERSION\",\"hsa_override_gfx_version\":\"10.3.0\",\"runs_gfx\":\"gfx1030\",\"real_gfx\":\"gfx1010\",\"gfx_target_version\":100100,"),
        "{json}"
    );

    // The same override on a GPU that really is gfx1031, asked for as 10.3.1: no line.
    let same = Scenario::new(Program::DriverExe)
        .devices("gfx1031")
        .preload(true)
        .env("HSA_OVERRIDE_GFX_VERSION", "10.3.1")
        .env("RMCP_SYSFS_ROOT", fixture_root("rdna2-rx6700xt"))
        .args(["hsa_init", "hipMalloc:4096", "hsa_fault:live+0:1"])
        .run();
    assert!(!same.stderr.contains("HSA_OVERRIDE_GFX_VERSION"), "{same}");
    assert_eq!(cause_lines(&same).len(), 2, "{same}");

    // Without a readable KFD tree rmcp says what the override does and that
    // the real architecture is unknown, instead of guessing.
    let unknown = Scenario::new(Program::DriverExe)
        .devices("gfx1010")
        .preload(true)
        .env("HSA_OVERRIDE_GFX_VERSION", "10.3.0")
        .env("RMCP_SYSFS_ROOT", dir.join("no-such-root"))
        .args(["hsa_init", "hipMalloc:4096", "hsa_fault:live+0:1"])
        .run();
    assert!(
        cause_lines(&unknown)[0].starts_with("rmcp: likely cause: HSA_OVERRIDE_GFX_VERSION=10.3.0 makes ROCm run gfx1030 code on this GPU (node 1), whose real architecture KFD sysfs did not give"),
        "{unknown}"
    );
}

/// Issue 18 item 3: while 15 threads loop hipMalloc/hipFree, the GPU faults
/// inside a live 1 MiB buffer. The registry's shards are often held for a
/// moment by an allocating thread; the report must still name the buffer,
/// in every one of 30 runs (the lookup waits for a busy shard, within a
/// bound, instead of giving up at the first one).
#[test]
fn a_fault_while_15_threads_allocate_still_names_the_allocation() {
    let mut missed = Vec::new();
    for run in 0..30 {
        let r = Scenario::new(Program::DriverExe)
            .devices("gfx1030")
            .preload(true)
            // 15 threads' calls would fill the record; nothing reads it here.
            .env_remove("FAKE_HIP_LOG")
            .args([
                "hsa_init",
                "hipMalloc:1048576",
                "churn:15",
                "sleep_ms:20",
                "hsa_fault:live+4096:1",
            ])
            .run();
        assert_eq!(r.signal(), Some(libc::SIGABRT), "{r}");
        assert!(r.stdout.contains("churn:15 rc=0 started=15"), "{r}");
        if !r
            .stderr
            .contains("is 4096 bytes into a live allocation: hipMalloc of 1048576 bytes")
        {
            missed.push(format!("run {run}:\n{}", r.stderr));
        }
    }
    assert!(
        missed.is_empty(),
        "{} of 30 reports did not name the buffer:\n{}",
        missed.len(),
        missed.join("\n")
    );
}

/// Issue 18 item 12: a program that makes 40 allocations before hsa_init
/// (more than the allocation path's 32 registration attempts) still gets its
/// fault report: hsa_init registers the handler whatever happened before.
#[test]
fn forty_allocations_before_hsa_init_still_get_a_report() {
    let mut ops: Vec<&str> = vec!["hipMalloc:4096"; 40];
    ops.extend(["hsa_init", "hipHostMalloc:4096:0", "hsa_fault:live+16:1"]);
    let r = fault_run("gfx1030", &ops, None);
    assert!(
        r.stderr
            .contains("is 16 bytes into a live allocation: hipHostMalloc of 4096 bytes"),
        "{r}"
    );
    assert_runtime_message_follows(&r);
}

/// Issue 18 item 12: when the runtime refuses the handler after hsa_init,
/// rmcp says so once (not at every hsa_init or allocation).
#[test]
fn a_handler_the_runtime_refuses_is_said_once() {
    let r = Scenario::new(Program::DriverExe)
        .devices("gfx1030")
        .preload(true)
        .env("FAKE_HSA_HANDLER_SLOTS", "0")
        .args([
            "hsa_init",
            "hipMalloc:4096",
            "hsa_init",
            "hipHostMalloc:4096:0",
        ])
        .run();
    r.assert_success();
    let lines: Vec<&str> = rmcp_lines(&r);
    assert_eq!(
        lines,
        vec!["rmcp: warn: could not register the GPU memory-fault handler with the HSA runtime (hsa_amd_register_system_event_handler returned 0x1008); GPU memory faults will not be reported"],
        "{r}"
    );
}

/// Issue 19 item 4 (sglang #33968 / #38967): a fault at an address inside
/// host memory registered with hipHostRegister (the GPU was handed the host
/// pointer) gets a cause line naming the registration and
/// hipHostGetDevicePointer, in the text and in the JSON report.
#[test]
fn a_fault_inside_registered_host_memory_points_at_hip_host_get_device_pointer() {
    let dir = common::tempdir("fault-hostregister");
    let report = dir.join("report.json");
    let r = fault_run(
        "gfx1030",
        &[
            "hsa_init",
            "hipHostRegister:65536:0",
            "hsa_fault:live+0x40:0x1",
        ],
        Some(&report),
    );
    let line = r
        .stderr
        .lines()
        .find(|l| l.contains("host pointer handed to the GPU"))
        .unwrap_or_else(|| panic!("no hipHostRegister cause\n{r}"));
    assert!(
        line.contains("registered with hipHostRegister (65536 bytes at 0x")
            && line.contains("hipHostGetDevicePointer"),
        "{line}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).expect("report")).unwrap();
    let ids: Vec<&str> = json["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "in-bounds",
            "host-pointer-of-registered-memory",
            "check-doctor"
        ],
        "{json}"
    );
    // A fault in other memory gets no such line.
    let r = fault_run(
        "gfx1030",
        &[
            "hsa_init",
            "hipHostMalloc:65536:0",
            "hsa_fault:live+0x40:0x1",
        ],
        None,
    );
    assert!(!r.stderr.contains("host pointer handed to the GPU"), "{r}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 19 item 4: libhsakmt reads HSA_OVERRIDE_GFX_VERSION_<node> before
/// HSA_OVERRIDE_GFX_VERSION (`topology.c`); the fault causes follow the same
/// precedence and name the variable that applies to the faulting node.
#[test]
fn the_per_node_override_is_read_first_as_libhsakmt_does() {
    let run = |env: &[(&str, &str)]| {
        let mut s = Scenario::new(Program::DriverExe)
            .devices("gfx1010")
            .preload(true)
            .env("RMCP_SYSFS_ROOT", fixture_root("rdna1-rx5700xt"));
        for (k, v) in env {
            s = s.env(k, v);
        }
        let r = s
            .args(["hsa_init", "hipMalloc:4096", "hsa_fault:live+0:1"])
            .run();
        assert_eq!(r.signal(), Some(libc::SIGABRT), "{r}");
        r
    };
    // The faulting GPU is node 1: its per-node value wins over the global one.
    let r = run(&[
        ("HSA_OVERRIDE_GFX_VERSION_1", "10.3.0"),
        ("HSA_OVERRIDE_GFX_VERSION", "10.1.0"),
    ]);
    assert!(
        cause_lines(&r)[0].starts_with(
            "rmcp: likely cause: HSA_OVERRIDE_GFX_VERSION_1=10.3.0 makes ROCm run gfx1030 code on this gfx1010 GPU (node 1;"
        ),
        "{r}"
    );
    // A per-node value that names the GPU's own architecture: no override
    // line, although the global one differs (libhsakmt ignores it here).
    let r = run(&[
        ("HSA_OVERRIDE_GFX_VERSION_1", "10.1.0"),
        ("HSA_OVERRIDE_GFX_VERSION", "10.3.0"),
    ]);
    assert!(!r.stderr.contains("makes ROCm run"), "{r}");
    // Another node's value does not apply; the global one does.
    let r = run(&[
        ("HSA_OVERRIDE_GFX_VERSION_2", "10.1.0"),
        ("HSA_OVERRIDE_GFX_VERSION", "10.3.0"),
    ]);
    assert!(
        cause_lines(&r)[0].starts_with(
            "rmcp: likely cause: HSA_OVERRIDE_GFX_VERSION=10.3.0 makes ROCm run gfx1030"
        ),
        "{r}"
    );
}

/// The VMM sequence PyTorch's `expandable_segments` makes for one segment:
/// reserve a large range, then per 2 MiB piece hipMemCreate, hipMemMap at the
/// segment's end, hipMemSetAccess; shrinking unmaps and releases the last
/// piece. (Sizes as in PyTorch's ExpandableSegment: 2 MiB pages.)
const SEGMENT: &[&str] = &[
    "hsa_init",
    "vmm_reserve:67108864",
    "vmm_create:2097152",
    "vmm_map:0:2097152:0",
    "vmm_access:0:2097152",
    "vmm_create:2097152",
    "vmm_map:2097152:2097152:1",
    "vmm_access:2097152:2097152",
    "vmm_create:2097152",
    "vmm_map:4194304:2097152:2",
];

fn vmm_fault(extra: &[&str], at: &str, report: &std::path::Path) -> (Run, serde_json::Value) {
    let fault = format!("hsa_fault:{at}:0x1");
    let ops: Vec<&str> = SEGMENT
        .iter()
        .copied()
        .chain(extra.iter().copied())
        .chain([fault.as_str()])
        .collect();
    let _ = std::fs::remove_file(report);
    let r = fault_run("gfx1030", &ops, Some(report));
    let json = serde_json::from_str(&std::fs::read_to_string(report).expect("report")).unwrap();
    (r, json)
}

/// Issue 19 item 2: a fault inside an expandable segment names the
/// reservation, the mapped handle and the offset; an unmapped (and released)
/// piece, a piece never mapped and a mapping without access are said so.
#[test]
fn a_fault_in_an_expandable_segment_names_reservation_handle_and_offset() {
    let dir = common::tempdir("fault-vmm");
    let report = dir.join("report.json");
    // In the second piece, 0x40 bytes in.
    let (r, json) = vmm_fault(&[], "vmm+0x200040", &report);
    let lines = cause_lines(&r);
    assert!(
        lines[0].contains("is 2097216 bytes into hipMemAddressReserve of 67108864 bytes"),
        "{r}"
    );
    assert!(
        lines[1].starts_with("rmcp: likely cause: VMM memory: address 0x")
            && lines[1].contains("is at offset 64 of physical handle 0x")
            && lines[1]
                .contains("(hipMemCreate, 2097152 bytes, created on device 0), mapped at 0x")
            && lines[1].ends_with("by hipMemMap"),
        "{r}"
    );
    let vmm = &json["causes"][1];
    assert_eq!(vmm["id"], "vmm-mapped", "{json}");
    assert_eq!(vmm["offset"], 64);
    assert_eq!(vmm["mapping_size"], 2097152);
    assert_eq!(vmm["access"], true);
    // Created and mapped, but hipMemSetAccess never called for it.
    let (r, json) = vmm_fault(&[], "vmm+0x400000", &report);
    assert!(
        cause_lines(&r)[1].contains("no hipMemSetAccess granted access to this mapping"),
        "{r}"
    );
    assert_eq!(json["causes"][1]["id"], "vmm-mapped-without-access");
    // The segment shrank: its last piece unmapped and released.
    let (r, json) = vmm_fault(
        &["vmm_unmap:4194304:2097152", "vmm_release:2"],
        "vmm+0x400010",
        &report,
    );
    let line = &cause_lines(&r)[1];
    assert!(
        line.starts_with("rmcp: likely cause: VMM memory unmapped ")
            && line.contains("was at offset 16 of physical handle 0x")
            && line.contains("released by hipMemRelease"),
        "{r}"
    );
    assert_eq!(json["causes"][1]["id"], "vmm-unmapped");
    // Reserved but never mapped.
    let (r, json) = vmm_fault(&[], "vmm+0x1000000", &report);
    assert!(
        cause_lines(&r)[1].starts_with("rmcp: likely cause: VMM memory never mapped"),
        "{r}"
    );
    assert_eq!(json["causes"][1]["id"], "vmm-never-mapped");
    // The whole segment freed: the reservation is reported as freed, and the
    // unmapped piece with it.
    let (r, _) = vmm_fault(
        &[
            "vmm_unmap:0:6291456",
            "vmm_release:0",
            "vmm_release:1",
            "vmm_release:2",
            "vmm_free",
        ],
        "vmm+0x40",
        &report,
    );
    let lines = cause_lines(&r);
    assert!(
        lines[0].starts_with("rmcp: likely cause: use after free: ")
            && lines[0].contains("hipMemAddressReserve of 67108864 bytes"),
        "{r}"
    );
    assert!(lines[1].contains("VMM memory unmapped"), "{r}");
    // Every call reached the runtime once, untouched.
    for f in [
        "hipMemAddressReserve",
        "hipMemCreate",
        "hipMemMap",
        "hipMemSetAccess",
    ] {
        assert!(!r.calls_named(f).is_empty(), "{f}\n{r}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 19 item 2: pitched and 3D allocations are recorded (forwarded
/// untouched), so a fault in one names it.
#[test]
fn a_fault_in_pitched_or_3d_memory_names_the_allocation() {
    for (alloc, size) in [
        ("hipMallocPitch:100:8", 256 * 8),
        ("hipMalloc3D:100:8:2", 256 * 8 * 2),
    ] {
        let r = fault_run(
            "gfx1030",
            &["hsa_init", alloc, "hsa_fault:live+0x100:0x1"],
            None,
        );
        let entry = alloc.split(':').next().unwrap();
        assert!(
            cause_lines(&r)[0].contains(&format!("is 256 bytes into {entry} of {size} bytes")),
            "{r}"
        );
        assert_eq!(r.calls_named(entry).len(), 1, "{r}");
    }
}

/// ROCm 7's HIP runtime gets a HIP allocation's memory from the exported
/// hsa_amd_memory_pool_allocate (and frees it with hsa_amd_memory_pool_free),
/// so rmcp's HSA hooks run inside its HIP hooks; the HIP double does the same
/// with FAKE_HIP_HSA_BACKING. rmcp's HIP hooks start marking their calls
/// once a ROCm library has called the HSA hook, so the first HIP allocation
/// (`WARM_UP`) is recorded the old way: its HSA record, then the HIP record
/// in its place. The faults are handled (FAKE_HSA_FAULT_HANDLED), so one run
/// reports several. Returns the run and its reports' second lines (where the
/// address is), in order.
fn backed_run(backing: &str, ops: &[&str]) -> (Run, Vec<String>) {
    let r = Scenario::new(Program::DriverExe)
        .devices("gfx1030")
        .preload(true)
        .env("FAKE_HIP_HSA_BACKING", backing)
        .env("FAKE_HSA_FAULT_HANDLED", "1")
        .env("RMCP_LOG", "info")
        .args(ops)
        .run();
    assert_eq!(r.status.code(), Some(0), "{r}");
    let lines = rmcp_lines(&r);
    let wheres = lines
        .iter()
        .zip(lines.iter().skip(1))
        .filter(|(l, _)| l.starts_with("rmcp: GPU memory fault at address"))
        .map(|(_, next)| next.to_string())
        .collect();
    (r, wheres)
}

const WARM_UP: &str = "hipMalloc:64";

/// The exit summary's test-counters line: HIP allocations recorded once
/// for their backing HSA allocation.
fn backed_by_hsa(r: &Run) -> Option<u64> {
    r.stderr
        .lines()
        .find_map(|l| {
            l.strip_prefix(
                "rmcp: info: HIP allocations backed by a held HSA allocation (test-counters build): ",
            )
        })
        .and_then(|n| n.parse().ok())
}

/// The HIP allocation's pointer from the driver's output.
fn hip_ptr(r: &Run, op: &str) -> u64 {
    r.ops()
        .iter()
        .find(|o| o.op == op)
        .and_then(|o| o.ptr())
        .unwrap_or_else(|| panic!("no ptr for {op}\n{r}"))
}

/// (a) The HSA allocation that backs a HIP allocation is recorded once, as
/// the HIP allocation: a fault in it names the HIP call and its facts. The
/// exit summary still counts every call of each entry point.
#[test]
fn an_hsa_allocation_backing_a_hip_allocation_is_reported_as_the_hip_one() {
    for (op, named, facts) in [
        (
            "hipMalloc:4096",
            "hipMalloc of 4096 bytes",
            "; device 0; thread ",
        ),
        (
            "hipHostMalloc:4096:0",
            "hipHostMalloc of 4096 bytes",
            "(flags requested 0x0, applied 0x80000000, rewritten by rmcp; host memory; thread ",
        ),
    ] {
        let (r, wheres) = backed_run(
            "1",
            &["hsa_init", WARM_UP, op, "hsa_fault:live+16:1", "free"],
        );
        // The double really allocated through the exported HSA symbol, nested
        // in the HIP call, and freed it the same way; rmcp held that HSA
        // allocation and recorded it once, as the HIP one.
        let ptr = hip_ptr(&r, op);
        let hsa = r.calls_named("hsa_amd_memory_pool_allocate");
        assert_eq!(hsa.len(), 2, "{r}");
        assert_eq!(hsa[1].ptr(), Some(ptr), "{r}");
        assert_eq!(backed_by_hsa(&r), Some(1), "{r}");
        assert_eq!(
            r.calls_named("hsa_amd_memory_pool_free")[0].ptr(),
            Some(ptr),
            "{r}"
        );
        assert_eq!(wheres.len(), 1, "{r}");
        assert!(
            wheres[0].starts_with(&format!(
                "rmcp: address {:#x} is 16 bytes into a live allocation: {named} at {ptr:#x}",
                ptr + 16
            )),
            "{r}"
        );
        assert!(wheres[0].contains(facts), "{r}");
        // Every call of each entry point is still counted.
        let summary = r
            .stderr
            .lines()
            .find(|l| l.starts_with("rmcp: info: summary: "))
            .unwrap_or_else(|| panic!("no exit summary\n{r}"));
        let want: &[&str] = if op.starts_with("hipMalloc") {
            &["hipMalloc 2/0", "hipFree 1/0"]
        } else {
            &["hipMalloc 1/0", "hipHostMalloc 1/1", "hipHostFree 1/0"]
        };
        for w in want {
            assert!(summary.contains(&format!(" {w},")), "{w}\n{r}");
        }
        assert!(
            summary.contains(" hsa_amd_memory_pool_allocate 2/0, hsa_amd_memory_pool_free 1/0;"),
            "{r}"
        );
    }
}

/// (b) An HSA allocation the runtime makes for itself during a HIP call
/// (here a 64-byte kernarg buffer, before or after the one that backs the
/// HIP allocation) is recorded as before, and so is the HIP allocation.
#[test]
fn a_runtime_allocation_made_during_a_hip_call_is_still_recorded() {
    // hsaN: the HSA double's pool allocation N before its last one.
    for (backing, kernarg) in [("extra-before", "hsa1+8"), ("extra-after", "hsa0+8")] {
        let (r, wheres) = backed_run(
            backing,
            &[
                "hsa_init",
                WARM_UP,
                "hipMalloc:4096",
                &format!("hsa_fault:{kernarg}:1"),
                "hsa_fault:live+16:1",
            ],
        );
        let kernargs: Vec<u64> = r
            .calls_named("hsa_amd_memory_pool_allocate")
            .iter()
            .filter(|c| c.get("pool") == Some("kernarg"))
            .filter_map(|c| c.ptr())
            .collect();
        assert_eq!(kernargs.len(), 2, "{backing}\n{r}");
        let kernargs = &kernargs[1..];
        // The backing allocation was held (extra-before), or displaced by
        // the kernarg one and recorded on the spot (extra-after).
        let once = if backing == "extra-before" { 1 } else { 0 };
        assert_eq!(backed_by_hsa(&r).unwrap_or(0), once, "{backing}\n{r}");
        assert_eq!(wheres.len(), 2, "{backing}\n{r}");
        assert!(
            wheres[0].starts_with(&format!(
                "rmcp: address {:#x} is 8 bytes into a live allocation: hsa_amd_memory_pool_allocate of 64 bytes at {:#x}",
                kernargs[0] + 8,
                kernargs[0]
            )),
            "{backing}\n{r}"
        );
        assert!(
            wheres[0].contains("; HSA pool of node 0;"),
            "{backing}\n{r}"
        );
        let ptr = hip_ptr(&r, "hipMalloc:4096");
        assert!(
            wheres[1].starts_with(&format!(
                "rmcp: address {:#x} is 16 bytes into a live allocation: hipMalloc of 4096 bytes at {ptr:#x}",
                ptr + 16
            )),
            "{backing}\n{r}"
        );
    }
}

/// (c) After the HIP free (whose nested HSA free of the same base skips the
/// registry), a fault in the memory says it was freed, and names the HIP call.
#[test]
fn a_fault_after_the_free_of_a_backed_hip_allocation_says_freed() {
    let (r, wheres) = backed_run(
        "1",
        &[
            "hsa_init",
            WARM_UP,
            "hipMalloc:65536",
            "free",
            "hsa_fault:freed+4096:1",
        ],
    );
    let ptr = hip_ptr(&r, "hipMalloc:65536");
    assert_eq!(
        r.calls_named("hsa_amd_memory_pool_free")[0].ptr(),
        Some(ptr),
        "the double freed it through HSA\n{r}"
    );
    assert_eq!(backed_by_hsa(&r), Some(1), "{r}");
    assert_eq!(wheres.len(), 1, "{r}");
    assert!(
        wheres[0].starts_with(&format!(
            "rmcp: address {:#x} is 4096 bytes into an allocation that was FREED ",
            ptr + 4096
        )),
        "{r}"
    );
    assert!(
        wheres[0].contains("ms ago (use after free): hipMalloc of 65536 bytes"),
        "{r}"
    );
}

/// Each thread holds its own: four threads allocating and freeing at once
/// through the HIP double's nested HSA calls get every allocation recorded
/// once, and the exit summary counts every call.
#[test]
fn threads_allocating_at_once_each_record_their_own_backed_allocations() {
    let mut ops = vec!["hsa_init", WARM_UP, "threads:4"];
    for _ in 0..20 {
        ops.extend(["hipMalloc:4096", "free"]);
    }
    let r = Scenario::new(Program::DriverExe)
        .devices("gfx1030")
        .preload(true)
        .env("FAKE_HIP_HSA_BACKING", "1")
        .env("RMCP_LOG", "info")
        .args(&ops)
        .run();
    assert_eq!(r.status.code(), Some(0), "{r}");
    assert_eq!(backed_by_hsa(&r), Some(80), "{r}");
    let summary = r
        .stderr
        .lines()
        .find(|l| l.starts_with("rmcp: info: summary: "))
        .unwrap_or_else(|| panic!("no exit summary\n{r}"));
    for want in [
        " hipMalloc 81/0,",
        " hipFree 80/0,",
        " hsa_amd_memory_pool_allocate 81/0, hsa_amd_memory_pool_free 80/0;",
    ] {
        assert!(summary.contains(want), "{want}\n{r}");
    }
}
