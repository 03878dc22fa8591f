//! Self-test of the HIP/HSA test doubles and the driver programs, without librmcp.
//! If these fail, every rmcp integration test built on them is meaningless.

mod common;

use common::{fixtures, Call, Program, Run, Scenario};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

fn driver(devices: &str, args: &[&str]) -> Run {
    Scenario::new(Program::DriverExe)
        .devices(devices)
        .args(args)
        .run()
}

fn tool_output(tool: &str, args: &[&str], lib: &Path) -> String {
    let out = Command::new(tool)
        .args(args)
        .arg(lib)
        .output()
        .unwrap_or_else(|e| panic!("run {tool}: {e}"));
    assert!(
        out.status.success(),
        "{tool} {args:?} {} failed",
        lib.display()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `name@@version` / `name@version` of every defined dynamic symbol.
fn dynamic_symbols(lib: &Path) -> BTreeSet<String> {
    tool_output("nm", &["-D", "--defined-only"], lib)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2).map(str::to_string))
        .collect()
}

/// (version, name) pairs as `objdump -T` shows them (binutils 2.40 prints
/// "... hip_4.2     hipMalloc"; older versions print the same columns).
fn objdump_versions(lib: &Path) -> BTreeSet<(String, String)> {
    tool_output("objdump", &["-T"], lib)
        .lines()
        .filter(|l| l.contains(" DF "))
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            let n = cols.len();
            (n >= 2).then(|| (cols[n - 2].to_string(), cols[n - 1].to_string()))
        })
        .collect()
}

fn soname(lib: &Path) -> String {
    tool_output("objdump", &["-p"], lib)
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("SONAME")
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_default()
}

#[test]
fn hip6_symbol_versions() {
    let f = fixtures();
    assert_eq!(soname(&f.hip6), "libamdhip64.so.6");
    let syms = dynamic_symbols(&f.hip6);
    for s in [
        "hipMalloc@@hip_4.2",
        "hipFree@@hip_4.2",
        "hipHostMalloc@@hip_4.2",
        "hipHostAlloc@@hip_4.2",
        "hipHostFree@@hip_4.2",
        "hipFreeHost@@hip_4.2",
        "hipMallocHost@@hip_4.2",
        "hipMemAllocHost@@hip_4.2",
        "hipExtMallocWithFlags@@hip_4.2",
        "hipMallocManaged@@hip_4.2",
        "hipMemAdvise@@hip_4.2",
        "hipHostRegister@@hip_4.2",
        "hipHostUnregister@@hip_4.2",
        "hipGetDevice@@hip_4.2",
        "hipSetDevice@@hip_4.2",
        "hipGetDeviceCount@@hip_4.2",
        "hipGetDeviceProperties@@hip_4.2",
        "hipDeviceGetPCIBusId@@hip_4.2",
        "hipRuntimeGetVersion@@hip_4.2",
        "hipGetErrorString@@hip_4.2",
        "hipStreamCreate@@hip_4.2",
        "hipStreamCreateWithFlags@@hip_4.2",
        "hipStreamCreateWithPriority@@hip_4.2",
        "hipExtStreamCreateWithCUMask@@hip_4.2",
        "hipStreamDestroy@@hip_4.2",
        "hipMallocAsync@@hip_5.1",
        "hipMallocFromPoolAsync@@hip_5.1",
        "hipFreeAsync@@hip_5.1",
        "hipGetDevicePropertiesR0600@@hip_6.0",
        "hipGetProcAddress@@hip_6.1",
        "hipExtHostAlloc@@hip_6.3",
    ] {
        assert!(syms.contains(s), "{s} missing from {syms:?}");
    }
    // Nothing internal leaks out, and everything exported is versioned.
    for s in &syms {
        assert!(
            s.contains("@@hip_") || s.starts_with("hip_"),
            "unexpected export {s}"
        );
    }
    let od = objdump_versions(&f.hip6);
    assert!(
        od.contains(&("hip_4.2".into(), "hipMalloc".into())),
        "{od:?}"
    );
    assert!(
        od.contains(&("hip_6.3".into(), "hipExtHostAlloc".into())),
        "{od:?}"
    );
}

#[test]
fn hip5_lacks_newer_symbols() {
    let f = fixtures();
    assert_eq!(soname(&f.hip5), "libamdhip64.so.5");
    let syms = dynamic_symbols(&f.hip5);
    assert!(syms.contains("hipMalloc@@hip_4.2"));
    assert!(syms.contains("hipMallocAsync@@hip_5.1"));
    for s in &syms {
        assert!(
            !s.contains("R0600") && !s.contains("GetProcAddress") && !s.contains("ExtHostAlloc"),
            "5.x double exports {s}"
        );
        assert!(!s.contains("hip_6"), "5.x double has version {s}");
    }
    let run = Scenario::new(Program::DriverExe5)
        .devices("gfx1030")
        .args([
            "hipExtHostAlloc:64:0",
            "procaddr:hipMalloc:64",
            "hipHostMalloc:64:0",
            "free",
        ])
        .run();
    assert_eq!(run.op("hipExtHostAlloc:64:0").rc(), "missing", "{run}");
    assert_eq!(run.op("procaddr:hipMalloc:64").rc(), "missing", "{run}");
    assert_eq!(run.op("hipHostMalloc:64:0").rc(), "0", "{run}");
    let probe = Scenario::new(Program::PropsProbe5).devices("gfx1030").run();
    assert!(
        probe
            .stdout
            .contains("hipGetDevicePropertiesR0600 rc=missing"),
        "{probe}"
    );
    assert!(
        probe
            .stdout
            .contains("hipGetDeviceProperties rc=0 changed=792 extent=792"),
        "{probe}"
    );
    // mode (b) with the 5.x module
    let run = Scenario::new(Program::DlopenHost5)
        .devices("gfx1030")
        .args(["hipExtHostAlloc:64:0", "hipMalloc:64", "free"])
        .run();
    assert_eq!(run.op("hipExtHostAlloc:64:0").rc(), "missing", "{run}");
    assert_eq!(run.op("hipMalloc:64").rc(), "0", "{run}");
}

#[test]
fn hsa_symbol_versions() {
    let f = fixtures();
    assert_eq!(soname(&f.hsa), "libhsa-runtime64.so.1");
    let syms = dynamic_symbols(&f.hsa);
    for s in [
        "hsa_init",
        "hsa_shut_down",
        "hsa_iterate_agents",
        "hsa_agent_get_info",
        "hsa_amd_agent_iterate_memory_pools",
        "hsa_amd_memory_pool_get_info",
        "hsa_amd_memory_pool_allocate",
        "hsa_amd_memory_pool_free",
        "hsa_amd_register_system_event_handler",
        "hsa_status_string",
    ] {
        assert!(
            syms.contains(&format!("{s}@@ROCR_1")),
            "{s}@@ROCR_1 missing: {syms:?}"
        );
    }
}

#[test]
fn property_layouts_are_written_whole() {
    let run = Scenario::new(Program::PropsProbe)
        .devices("gfx1030,gfx90a:sramecc+:xnack-,gfx1035@igpu")
        .arg("1")
        .run();
    run.assert_success();
    assert!(
        run.stdout.contains(
            "hipGetDeviceProperties rc=0 changed=792 extent=792 name=Fake gfx90a \
             arch=gfx90a:sramecc+:xnack- integrated=0"
        ),
        "{run}"
    );
    assert!(
        run.stdout.contains(
            "hipGetDevicePropertiesR0600 rc=0 changed=1472 extent=1472 name=Fake gfx90a \
             arch=gfx90a:sramecc+:xnack- integrated=0"
        ),
        "{run}"
    );
    let run = Scenario::new(Program::PropsProbe)
        .devices("gfx1030,gfx90a:sramecc+:xnack-,gfx1035@igpu")
        .arg("2")
        .run();
    assert!(
        run.stdout
            .contains("changed=792 extent=792 name=Fake gfx1035 arch=gfx1035 integrated=1"),
        "{run}"
    );
    assert!(
        run.stdout
            .contains("changed=1472 extent=1472 name=Fake gfx1035 arch=gfx1035 integrated=1"),
        "{run}"
    );
    // invalid device: nothing written
    let run = Scenario::new(Program::PropsProbe)
        .devices("gfx1030")
        .arg("1")
        .run();
    assert!(
        run.stdout
            .contains("hipGetDeviceProperties rc=101 changed=0"),
        "{run}"
    );
    assert!(
        run.stdout
            .contains("hipGetDevicePropertiesR0600 rc=101 changed=0"),
        "{run}"
    );
    let props = driver("gfx1031,gfx1036@igpu", &["props:1", "props:0"]);
    let p = props.op("props:1");
    assert_eq!(
        (
            p.rc(),
            p.get("arch"),
            p.get("integrated"),
            p.get("arch0600"),
            p.get("integrated0600")
        ),
        ("0", Some("gfx1036"), Some("1"), Some("gfx1036"), Some("1")),
        "{props}"
    );
    assert_eq!(props.op("props:0").get("integrated0600"), Some("0"));
}

#[test]
fn device_env_parsing() {
    let run = driver(
        "",
        &[
            "count",
            "hipMalloc:64",
            "hipHostMalloc:64:0",
            "setdev:0",
            "getdev",
        ],
    );
    assert_eq!(run.op("count").rc(), "100", "{run}");
    assert_eq!(run.op("count").get("count"), Some("0"));
    assert_eq!(run.op("hipMalloc:64").rc(), "100");
    assert_eq!(
        run.op("hipHostMalloc:64:0").rc(),
        "0",
        "host allocations need no device"
    );
    assert_eq!(run.op("setdev:0").rc(), "101");
    assert_eq!(run.op("getdev").rc(), "100");

    // unset is the same as empty
    let run = Scenario::new(Program::DriverExe).args(["count"]).run();
    assert_eq!(run.op("count").rc(), "100", "{run}");

    let run = driver(
        "gfx1030,gfx1100,gfx90a:sramecc+:xnack-",
        &[
            "count",
            "setdev:2",
            "getdev",
            "hipMalloc:64",
            "setdev:3",
            "pcibusid:2",
            "threads:2",
            "getdev",
        ],
    );
    assert_eq!(run.op("count").get("count"), Some("3"), "{run}");
    assert_eq!(run.op("setdev:2").rc(), "0");
    assert_eq!(
        run.op("getdev").get("dev"),
        Some("2"),
        "current device of the main thread"
    );
    assert_eq!(run.op("setdev:3").rc(), "101");
    assert_eq!(run.op("pcibusid:2").get("busid"), Some("0000:05:00.0"));
    assert_eq!(run.calls_named("hipMalloc")[0].dev(), Some(2));
    // the current device is per thread: new threads start at 0
    let thread_devs: Vec<_> = run
        .ops()
        .into_iter()
        .filter(|o| o.op == "getdev")
        .map(|o| o.get("dev").unwrap().to_string())
        .collect();
    assert_eq!(thread_devs, ["2", "0", "0"], "{run}");
}

#[test]
fn validation_like_the_runtime() {
    let run = driver(
        "gfx1030",
        &[
            "hipHostMalloc:64:0:null",
            "hipHostMalloc:0:0",
            "hipHostMalloc:64:0xc0000000",
            "hipHostMalloc:64:0x80000000",
            "hipExtHostAlloc:64:0xc0000000",
            "hipHostAlloc:64:0x7",
            "hipHostAlloc:64:0x40000000",
            "hipExtMallocWithFlags:64:5",
            "hipExtMallocWithFlags:64:2",
            "hipExtMallocWithFlags:8:2",
            "hipExtMallocWithFlags:64:3",
            "hipMallocManaged:64:0",
            "hipMallocManaged:64:3",
            "hipMallocManaged:64:1",
            "hipMalloc:0",
            "hipMalloc:64:null",
        ],
    );
    let expect = [
        ("hipHostMalloc:64:0:null", "1"),
        ("hipHostMalloc:0:0", "0"),
        ("hipHostMalloc:64:0xc0000000", "1"),
        ("hipHostMalloc:64:0x80000000", "0"),
        ("hipExtHostAlloc:64:0xc0000000", "1"),
        ("hipHostAlloc:64:0x7", "0"),
        ("hipHostAlloc:64:0x40000000", "1"),
        ("hipExtMallocWithFlags:64:5", "1"),
        ("hipExtMallocWithFlags:64:2", "1"),
        ("hipExtMallocWithFlags:8:2", "0"),
        ("hipExtMallocWithFlags:64:3", "0"),
        ("hipMallocManaged:64:0", "1"),
        ("hipMallocManaged:64:3", "1"),
        ("hipMallocManaged:64:1", "0"),
        ("hipMalloc:0", "0"),
        ("hipMalloc:64:null", "1"),
    ];
    for (op, rc) in expect {
        assert_eq!(run.op(op).rc(), rc, "{op}\n{run}");
    }
    assert_eq!(run.op("hipHostMalloc:0:0").ptr(), Some(0));
    assert_eq!(run.op("hipMalloc:0").ptr(), Some(0));

    // no devices: device allocations fail with hipErrorNoDevice
    let run = driver(
        "",
        &[
            "hipMalloc:64",
            "hipExtMallocWithFlags:64:0",
            "hipMallocManaged:64:1",
            "hipMallocAsync:64",
            "hipMallocFromPoolAsync:64",
        ],
    );
    for o in run.ops() {
        assert_eq!(o.rc(), "100", "{run}");
    }

    // frees: unknown / double free, registration
    let run = driver(
        "gfx1030",
        &[
            "hipMalloc:64",
            "free",
            "hipHostRegister:4096:0",
            "free",
            "hipMallocManaged:4096:1",
            "advise:100:0",
            "advise:100:7",
            "hipMalloc:64",
            "advise:100:0",
        ],
    );
    assert!(
        run.ops()
            .iter()
            .all(|o| o.op.starts_with("advise") || o.rc() == "0"),
        "{run}"
    );
    let frees = run.calls_named("hipFree");
    assert_eq!(frees[0].rc(), Some(0));
    assert_eq!(run.calls_named("hipHostUnregister")[0].rc(), Some(0));
    assert_eq!(run.op("advise:100:0").rc(), "0", "{run}");
    assert_eq!(run.op("advise:100:7").rc(), "101", "{run}");
    let advises = run.calls_named("hipMemAdvise");
    assert_eq!(
        advises[2].rc(),
        Some(1),
        "advice on non-managed memory: {run}"
    );
    assert_eq!(
        (advises[0].get("advice"), advises[0].get("device")),
        (Some("100"), Some("0"))
    );

    let run = Scenario::new(Program::DriverExe)
        .devices("gfx1030")
        .env("FAKE_HIP_ADVISE_FAIL", "1")
        .args(["hipMallocManaged:4096:1", "advise:100:0"])
        .run();
    assert_eq!(run.op("advise:100:0").rc(), "801", "{run}");
}

#[test]
fn double_free_and_unregistered() {
    let run = driver(
        "gfx1030",
        &[
            "hipMalloc:64",
            "free",
            "refree:hipFree",
            "refree:hipHostFree",
            "hipHostRegister:4096:0",
            "hipHostRegister:4096:0",
            "free",
            "refree:hipHostUnregister",
            "hsa_init",
            "hsa_alloc:0:coarse:64",
            "hsa_free",
            "refree:hsa_amd_memory_pool_free",
        ],
    );
    assert_eq!(run.op("free").rc(), "0", "{run}");
    assert_eq!(run.op("refree:hipFree").rc(), "1", "{run}");
    assert_eq!(run.op("refree:hipHostFree").rc(), "1", "{run}");
    assert_eq!(run.op("refree:hipHostUnregister").rc(), "713", "{run}");
    assert_eq!(
        run.op("refree:hsa_amd_memory_pool_free").rc(),
        "4097",
        "{run}"
    );
    // hipFree of a registered range is not a runtime allocation
    let run = driver(
        "gfx1030",
        &["hipHostRegister:4096:0", "free", "refree:hipFree"],
    );
    assert_eq!(run.op("refree:hipFree").rc(), "1", "{run}");
    // hipFree(NULL) succeeds
    let run = driver("gfx1030", &["hipMalloc:0", "free"]);
    assert_eq!(
        run.op("free").rc(),
        "empty",
        "size 0 gives NULL, nothing to free: {run}"
    );
}

#[test]
fn record_format() {
    let run = driver(
        "gfx1030",
        &[
            "hipHostMalloc:4096:0x80000000",
            "free",
            "hipMemAllocHost:100",
            "hipExtMallocWithFlags:64:1",
            "freeall",
            "procaddr:hipMalloc:32",
            "free",
        ],
    );
    run.assert_success();
    let line_re = |l: &str| {
        let mut it = l.split(' ');
        let f = it.next().unwrap();
        assert!(
            f.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "bad func in {l:?}"
        );
        for kv in it {
            let (k, v) = kv
                .split_once('=')
                .unwrap_or_else(|| panic!("bad field {kv:?} in {l:?}"));
            assert!(!k.is_empty() && !v.is_empty(), "{l:?}");
            match k {
                "flags" | "ptr" => assert!(
                    v.starts_with("0x") && u64::from_str_radix(&v[2..], 16).is_ok(),
                    "{l:?}"
                ),
                "size" | "dev" | "rc" => assert!(v.parse::<i64>().is_ok(), "{l:?}"),
                _ => {}
            }
        }
    };
    for l in run.log.lines() {
        line_re(l);
    }
    let hm = run.calls_named("hipHostMalloc");
    assert_eq!(
        hm.len(),
        1,
        "hipMemAllocHost must not go through hipHostMalloc: {run}"
    );
    let c = hm[0];
    assert_eq!(
        (c.size(), c.flags(), c.dev(), c.rc()),
        (Some(4096), Some(0x8000_0000), Some(0), Some(0))
    );
    let keys: Vec<_> = run
        .log
        .lines()
        .next()
        .unwrap()
        .split(' ')
        .map(|kv| kv.split('=').next().unwrap())
        .collect();
    assert_eq!(
        keys,
        ["hipHostMalloc", "size", "flags", "dev", "ptr", "rc", "pool"]
    );
    assert_eq!(run.calls_named("hipHostFree")[0].ptr(), c.ptr());
    let mah = run.calls_named("hipMemAllocHost")[0];
    assert_eq!(mah.flags(), None, "no flags argument, no flags key");
    assert_eq!(run.calls_named("hipExtMallocWithFlags")[0].flags(), Some(1));
    let gpa = run.calls_named("hipGetProcAddress")[0];
    assert_eq!(gpa.get("symbol"), Some("hipMalloc"));
    assert_eq!(
        run.calls[0],
        Call::parse(run.log.lines().next().unwrap()).unwrap()
    );
}

#[test]
fn get_proc_address_returns_the_runtimes_own_function() {
    let f = fixtures();
    let run = Scenario::new(Program::DriverExe)
        .devices("gfx1030")
        .preload_path(&f.interposer)
        .args([
            "hipHostMalloc:111:0",
            "procaddr:hipHostMalloc:222:0",
            "dlsym:hipHostMalloc:333:0",
            "hipMemAllocHost:444",
            "procaddr:hipNoSuchThing:1",
            "procaddr:malloc:1",
            "freeall",
        ])
        .run();
    // the preloaded definition sees only the plain call
    assert!(
        run.stderr.contains("interposed hipHostMalloc size=111"),
        "{run}"
    );
    assert!(!run.stderr.contains("size=222"), "{run}");
    assert!(!run.stderr.contains("size=333"), "{run}");
    assert!(!run.stderr.contains("size=444"), "{run}");
    let sizes: Vec<_> = run
        .calls_named("hipHostMalloc")
        .iter()
        .map(|c| c.size().unwrap())
        .collect();
    assert_eq!(sizes, [111, 222, 333]);
    assert_eq!(run.op("procaddr:hipHostMalloc:222:0").rc(), "0");
    let gpa = run.calls_named("hipGetProcAddress");
    assert_eq!(gpa[1].get("symbol"), Some("hipNoSuchThing"));
    assert_eq!(gpa[1].rc(), Some(500));
    assert_eq!(run.op("procaddr:hipNoSuchThing:1").rc(), "500");
    // only the runtime's own API, not its dependencies' symbols
    assert_eq!(run.op("procaddr:malloc:1").rc(), "500", "{run}");
    // the function returned lies in the double, not in the interposer
    let fn_addr = run
        .op("procaddr:hipHostMalloc:222:0")
        .get("fn")
        .unwrap()
        .to_string();
    assert_eq!(gpa[0].get("ptr"), Some(fn_addr.as_str()));
    assert_eq!(
        run.op("dlsym:hipHostMalloc:333:0").get("fn"),
        Some(fn_addr.as_str())
    );
}

#[test]
fn hsa_agents_and_pools() {
    let run = driver(
        "gfx1030:xnack-,gfx1035@igpu",
        &[
            "hsa_alloc:0:fine:64",
            "hsa_init",
            "hsa_agents",
            "hsa_alloc:0:coarse:4096",
            "hsa_alloc:0:fine:4096",
            "hsa_alloc:1:extfine:4096",
            "hsa_alloc:0:sysfine:100",
            "hsa_alloc:0:kernarg:100",
            "hsa_alloc:0:syscoarse:100",
            "hsa_alloc:2:fine:64",
            "rocmlike_alloc:1:coarse:64",
            "hsa_free",
            "freeall",
            "hsa_shut_down",
            "hsa_alloc:0:fine:64",
        ],
    );
    let ops = run.ops();
    assert_eq!(
        ops[0].rc(),
        "4107",
        "before hsa_init: NOT_INITIALIZED\n{run}"
    );
    assert_eq!(
        ops.last().unwrap().rc(),
        "4107",
        "after the last shut_down\n{run}"
    );
    assert_eq!(
        run.op("hsa_agents").get("agents"),
        Some("Fake_CPU/0/0/0x0,gfx1030/1/1/0x300,gfx1035/1/2/0x400"),
        "{run}"
    );
    assert_eq!(run.op("hsa_alloc:2:fine:64").rc(), "nopool");
    let allocs: Vec<(String, String, u64)> = run
        .calls_named("hsa_amd_memory_pool_allocate")
        .iter()
        .map(|c| {
            (
                c.get("agent").unwrap().into(),
                c.get("pool").unwrap().into(),
                c.size().unwrap(),
            )
        })
        .collect();
    let want: Vec<(String, String, u64)> = [
        ("1", "coarse", 4096),
        ("1", "fine", 4096),
        ("2", "extfine", 4096),
        ("0", "sysfine", 100),
        ("0", "kernarg", 100),
        ("0", "syscoarse", 100),
        ("2", "coarse", 64),
    ]
    .iter()
    .map(|(a, p, s)| (a.to_string(), p.to_string(), *s))
    .collect();
    assert_eq!(allocs, want, "{run}");
    for c in run.calls_named("hsa_amd_memory_pool_allocate") {
        assert_eq!((c.rc(), c.flags()), (Some(0), Some(0)));
        assert_eq!(c.ptr().unwrap() % 4096, 0);
    }
    let frees = run.calls_named("hsa_amd_memory_pool_free");
    assert_eq!(frees.len(), 7);
    assert!(frees.iter().all(|c| c.rc() == Some(0)), "{run}");
    assert_eq!(run.op("hsa_init").rc(), "0");
}

#[test]
fn hsa_fault_aborts_with_rocr_message() {
    let run = driver(
        "gfx1030",
        &["hsa_init", "hipMalloc:4096", "hsa_fault:live+16:1"],
    );
    assert_eq!(run.signal(), Some(libc::SIGABRT), "{run}");
    let p = run.op("hipMalloc:4096").ptr().unwrap();
    assert_eq!(
        run.op("hsa_fault:live+16:1").get("addr"),
        Some(format!("{:#x}", p + 16).as_str())
    );
    let expect = format!(
        "on address {:#x}. Reason: Page not present or supervisor privilege.",
        p + 16
    );
    assert!(
        run.stderr
            .contains("Memory access fault by GPU node-1 (Agent handle: 0x"),
        "{run}"
    );
    assert!(run.stderr.contains(&expect), "{run}");

    // handlers: all are called in order; a SUCCESS return silences the message and, as
    // in ROCr, the process goes on (fake_hsa_raise_memory_fault returns)
    let run = driver(
        "gfx1030,gfx1031",
        &[
            "hsa_init",
            "hsa_handler:0x1000",
            "hsa_handler:0",
            "hipHostMalloc:64:0",
            "free",
            "hsa_fault:freed+0x20:0x3",
        ],
    );
    assert_eq!(run.signal(), None, "{run}");
    assert!(
        run.stdout.contains("hsa_fault:freed+0x20:0x3 rc=returned"),
        "{run}"
    );
    let handlers: Vec<_> = run
        .ops()
        .into_iter()
        .filter(|o| o.op == "handler")
        .collect();
    assert_eq!(handlers.len(), 2, "{run}");
    assert_eq!(handlers[0].get("rc"), Some("4096"));
    assert_eq!(handlers[1].get("rc"), Some("0"));
    let freed = run.op("free").ptr().unwrap();
    assert_eq!(
        handlers[0].get("address"),
        Some(format!("{:#x}", freed + 0x20).as_str())
    );
    assert_eq!(handlers[0].get("reason"), Some("0x3"));
    assert_eq!(handlers[0].get("event"), Some("0"));
    assert!(!run.stderr.contains("Memory access fault"), "{run}");

    let run = driver(
        "gfx1030",
        &["hsa_init", "hsa_handler:0x1000", "hsa_fault:0xdead000:0"],
    );
    assert_eq!(run.signal(), Some(libc::SIGABRT), "{run}");
    assert!(
        run.stderr
            .contains("on address 0xdead000. Reason: Unknown."),
        "{run}"
    );
    let agent = run.ops().into_iter().find(|o| o.op == "handler").unwrap();
    assert!(
        run.stderr
            .contains(&format!("(Agent handle: {})", agent.get("agent").unwrap())),
        "{run}"
    );
}

#[test]
fn threads_record_every_call() {
    let run = driver(
        "gfx1030",
        &[
            "threads:8",
            "hipHostMalloc:4096:0",
            "hipMalloc:64",
            "free",
            "free",
        ],
    );
    run.assert_success();
    assert_eq!(run.calls_named("hipHostMalloc").len(), 8, "{run}");
    assert_eq!(run.calls_named("hipMalloc").len(), 8);
    assert_eq!(run.calls_named("hipFree").len(), 8);
    assert_eq!(run.calls_named("hipHostFree").len(), 8);
    assert_eq!(run.calls.len(), 32, "{run}");
    assert!(
        run.calls
            .iter()
            .all(|c| c.rc() == Some(0) && c.ptr().unwrap_or(0) != 0),
        "{run}"
    );
    // 8 threads x 4 ops + the threads line
    assert_eq!(run.stdout.lines().count(), 33);

    // heavier: lines must never interleave
    let mut args = vec!["threads:16".to_string()];
    for _ in 0..50 {
        args.push("hipHostMalloc:100:0x80000000".into());
        args.push("free".into());
    }
    let run = Scenario::new(Program::DriverExe)
        .devices("gfx1030")
        .args(&args)
        .run();
    run.assert_success();
    assert_eq!(run.calls.len(), 16 * 100, "{run}");
    assert!(
        run.calls
            .iter()
            .all(|c| c.fields.len() == 6 || c.fields.len() == 3),
        "{run}"
    );
}

#[test]
fn fork_child_runs_the_rest() {
    let run = driver(
        "gfx1030",
        &["hipMalloc:64", "fork", "hipHostMalloc:32:0", "free", "free"],
    );
    run.assert_success();
    assert_eq!(run.op("fork").get("child"), Some("0"), "{run}");
    let parent_ptr = run.op("hipMalloc:64").ptr().unwrap();
    // the child freed its copy of the parent's allocation, in its own address space
    assert_eq!(run.calls_named("hipFree")[0].ptr(), Some(parent_ptr));
    assert_eq!(run.calls_named("hipHostMalloc").len(), 1);
}

#[test]
fn dlopen_host_runs_the_module() {
    let run = Scenario::new(Program::DlopenHost)
        .devices("gfx1030")
        .args([
            "hipHostMalloc:64:0",
            "hipExtHostAlloc:64:0",
            "procaddr:hipMalloc:8",
            "hsa_init",
            "hsa_alloc:0:fine:64",
            "freeall",
        ])
        .run();
    run.assert_success();
    assert_eq!(run.calls_named("hipExtHostAlloc").len(), 1, "{run}");
    assert_eq!(
        run.calls_named("hsa_amd_memory_pool_allocate").len(),
        1,
        "{run}"
    );
}

#[test]
fn constructor_calls_reach_the_runtime() {
    let run = Scenario::new(Program::CtorExe)
        .devices("gfx1030")
        .args(["hipMalloc:8", "free"])
        .run();
    run.assert_success();
    assert!(run.stderr.contains("ctor rc=0"), "{run}");
    assert_eq!(run.calls[0].func, "hipHostMalloc", "{run}");
    assert_eq!(run.calls[0].flags(), Some(0));
    assert_eq!(run.calls[1].func, "hipHostFree");
}

#[test]
fn rocm5_driver_and_async_paths() {
    let run = Scenario::new(Program::DriverExe5)
        .devices("gfx1010")
        .args([
            "hipMallocAsync:64",
            "hipMallocFromPoolAsync:64",
            "hipMallocHost:64",
            "free",
            "free",
            "free",
        ])
        .run();
    run.assert_success();
    assert_eq!(run.calls_named("hipFreeAsync").len(), 2, "{run}");
    assert_eq!(run.calls_named("hipFreeHost").len(), 1, "{run}");
}

/// Mode (b) reproduces the loader behaviour rmcp must cope with: a preloaded definition
/// still interposes the module's calls, but its dlsym(RTLD_NEXT) finds nothing because the
/// runtime sits in the module's local scope.
#[test]
fn dlopen_local_hides_runtime_from_rtld_next() {
    let f = fixtures();
    let run = Scenario::new(Program::DlopenHost)
        .devices("gfx1030")
        .preload_path(&f.interposer)
        .args(["hipHostMalloc:64:0"])
        .run();
    assert!(
        run.stderr.contains("interposed hipHostMalloc size=64"),
        "{run}"
    );
    assert_eq!(
        run.op("hipHostMalloc:64:0").rc(),
        "500",
        "RTLD_NEXT must be NULL: {run}"
    );
    assert!(run.calls_named("hipHostMalloc").is_empty(), "{run}");

    // Linked directly, RTLD_NEXT finds the runtime.
    let run = Scenario::new(Program::DriverExe)
        .devices("gfx1030")
        .preload_path(&f.interposer)
        .args(["hipHostMalloc:64:0"])
        .run();
    assert_eq!(run.op("hipHostMalloc:64:0").rc(), "0", "{run}");
    assert_eq!(run.calls_named("hipHostMalloc").len(), 1, "{run}");
}

#[test]
#[should_panic(expected = "timed out")]
fn runner_kills_hung_programs() {
    Scenario::new(Program::DriverExe)
        .args(["fork", "sleep_ms:20000"])
        .timeout(std::time::Duration::from_millis(300))
        .run();
}

/// `pool=` names the memory the real runtime would hand out (clr's rules in
/// hipamd/src/hip_memory.cpp).
#[test]
fn record_names_the_resulting_pool() {
    let ops = [
        "hipHostMalloc:64:0",
        "hipHostMalloc:64:0x1",
        "hipHostMalloc:64:0x80000000",
        "hipHostMalloc:64:0x80000002",
        "hipHostMalloc:64:0xa0000000",
        "hipHostMalloc:64:0x40000000",
        "hipHostAlloc:64:0x4",
        "hipMemAllocHost:64",
        "hipMallocHost:64",
        "hipExtMallocWithFlags:64:0",
        "hipExtMallocWithFlags:64:1",
        "hipExtMallocWithFlags:8:2",
        "hipExtMallocWithFlags:64:3",
        "hipExtMallocWithFlags:64:4",
        "hipMallocManaged:64:1",
        "hipMalloc:64",
        "hipMallocAsync:64",
        "hipHostRegister:64:0",
    ];
    let pools = |run: &Run| -> Vec<String> {
        run.calls
            .iter()
            .filter_map(|c| c.get("pool").map(str::to_string))
            .collect()
    };
    let run = driver("gfx1030", &ops);
    run.assert_success();
    assert_eq!(
        pools(&run),
        [
            "sysfine",
            "syscoarse",
            "syscoarse",
            "sysfine",
            "sysfine",
            "sysfine",
            "syscoarse",
            "sysfine",
            "syscoarse",
            "coarse",
            "fine",
            "fine",
            "extfine",
            "coarse",
            "fine",
            "coarse",
            "coarse",
            "sysfine"
        ],
        "{run}"
    );
    // HIP_HOST_COHERENT makes host memory coherent unless NonCoherent is given.
    let run = Scenario::new(Program::DriverExe)
        .devices("gfx1030")
        .env("HIP_HOST_COHERENT", "1")
        .args([
            "hipHostMalloc:64:0x1",
            "hipHostMalloc:64:0x80000000",
            "hipHostAlloc:64:0x4",
        ])
        .run();
    assert_eq!(pools(&run), ["sysfine", "syscoarse", "sysfine"], "{run}");
}

/// Mode (c) builds and links once the public header exists. Only the harness is checked
/// here (the program runs, rmcp_version answers, calls reach the double); what rmcp does
/// to the calls is for rmcp's own tests.
#[test]
fn driver_direct_links_librmcp_first() {
    if !common::rmcp_header_exists() {
        eprintln!("include/rmcp.h does not exist yet: mode (c) not built");
        return;
    }
    let run = Scenario::new(Program::DriverDirect)
        .devices("gfx1100")
        .args(["print_rmcp", "hipMalloc:64", "free"])
        .run();
    run.assert_success();
    let v = run.op("print_rmcp");
    assert!(
        v.get("rmcp_version").is_some_and(|v| !v.is_empty()),
        "{run}"
    );
    assert_eq!(run.calls_named("hipMalloc").len(), 1, "{run}");
    let needed = tool_output("readelf", &["-d"], &Program::DriverDirect.path());
    let first = needed
        .lines()
        .find(|l| l.contains("(NEEDED)"))
        .unwrap_or_default();
    assert!(
        first.contains("[librmcp.so]"),
        "librmcp.so must be the first NEEDED: {needed}"
    );
}

/// The property functions write the whole struct, so a caller passing a buffer sized for
/// the wrong layout is caught by valgrind.
#[test]
fn too_small_property_buffer_is_caught_by_valgrind() {
    if !common::valgrind_available() {
        eprintln!("valgrind not installed: skipped");
        return;
    }
    let ok = Scenario::new(Program::PropsProbe)
        .devices("gfx1030")
        .args(["0", "1472"])
        .valgrind(true)
        .run();
    assert_eq!(ok.status.code(), Some(0), "{ok}");
    let bad = Scenario::new(Program::PropsProbe)
        .devices("gfx1030")
        .args(["0", "792"])
        .valgrind(true)
        .run();
    // 99 = valgrind's error exit; the overrun can also wreck valgrind's own heap
    // bookkeeping, so any failure with the report is accepted.
    assert!(!bad.success(), "{bad}");
    assert!(bad.stderr.contains("Invalid write"), "{bad}");
    assert!(bad.stderr.contains("hipGetDevicePropertiesR0600"), "{bad}");
}
