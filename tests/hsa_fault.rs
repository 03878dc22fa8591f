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

#[test]
fn fault_in_freed_memory_says_use_after_free() {
    let r = fault_run(
        "gfx1030",
        &[
            "hsa_init",
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
