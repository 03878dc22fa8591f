//! Kernels in flight: the launch hooks forward every launch unchanged
//! (dim3 by value included), record it per device, and the fault report
//! lists the launches on the faulting GPU that were not synchronised,
//! newest first, with the names the runtime gives, demangled.

mod common;

use common::{Program, Run, Scenario};

fn rmcp_lines(r: &Run) -> Vec<&str> {
    r.stderr
        .lines()
        .filter(|l| l.starts_with("rmcp:"))
        .collect()
}

/// Two devices, two streams on device 1, launches through every hooked
/// entry point, synchronisations in between, then a fault on GPU 1.
const TWO_DEVICES: &[&str] = &[
    "hsa_init",
    "kernel:0:_Z6vecAddPfPKfS1_i",
    "kernel:1:_ZN2ns6kernelIfLj256EEEvPT_S2_i",
    "modfunc:2:_Z4fillPim",
    "stream:1",
    // device 0: one launch on the null stream, one on stream 1
    "launch:kernel:0:64:256:0",
    "launch:module:2:4:64:1",
    "setdev:1",
    "stream:2",
    "stream:3",
    // device 1
    "launch:kernel:0:128x2:64:2", // #0, completed by devsync
    "launch:ext:1:4:4:3",         // #1, completed by devsync
    "devsync",
    "launch:coop:1:16:16:2",           // #2 stream 2: not synchronised
    "launch:extmodule:2:10x1x1:128:3", // #3 stream 3: completed by streamsync:3
    "launch:graph:3:1:1:3",            // #4 stream 3: completed
    "streamsync:3",
    "launch:module:2:7x1x1:32:3", // #5 stream 3, after the sync: not known
    "setdev:0",
    "launch:kernel:1:1:1:0", // device 0 again
    "hipMalloc:4096",
    "hsa_fault:live+0:1:1",
];

fn fault_run(devices: &str, ops: &[&str], report: &std::path::Path) -> Run {
    let r = Scenario::new(Program::DriverExe)
        .devices(devices)
        .preload(true)
        .env("RMCP_FAULT_REPORT", report)
        .args(ops)
        .run();
    assert_eq!(r.signal(), Some(libc::SIGABRT), "{r}");
    r
}

#[test]
fn fault_lists_the_unsynchronised_launches_of_the_faulting_gpu_newest_first() {
    let dir = common::tempdir("launches-two");
    let report = dir.join("fault.json");
    let r = fault_run("gfx1030,gfx1031", TWO_DEVICES, &report);
    let stream = |n: usize| {
        r.ops()
            .into_iter()
            .find(|o| o.op == format!("stream:{n}"))
            .and_then(|o| o.get("stream").map(str::to_string))
            .unwrap()
    };
    let (s2, s3) = (stream(2), stream(3));
    let lines = rmcp_lines(&r);
    let head = lines
        .iter()
        .position(|l| l.starts_with("rmcp: kernels launched on"))
        .unwrap_or_else(|| panic!("no launch list\n{r}"));
    assert_eq!(
        lines[head],
        "rmcp: kernels launched on HIP device 1 (this GPU) and not known to have completed, newest first (2 of 6 recorded; 4 completed at a synchronisation):",
        "{r}"
    );
    assert!(
        lines[head + 1].starts_with(&format!(
            "rmcp:   #5 fill(int*, unsigned long) via hipModuleLaunchKernel: grid 7x1x1, block 32x1x1, stream {s3}, thread "
        )),
        "{r}"
    );
    assert!(
        lines[head + 2].starts_with(&format!(
            "rmcp:   #2 void ns::kernel<float, 256u>(float*, float*, int) via hipLaunchCooperativeKernel: grid 16x1x1, block 16x1x1, stream {s2}, thread "
        )),
        "{r}"
    );
    assert!(lines[head + 2].ends_with(" ms before the fault"), "{r}");
    // Only device 1's launches, and the list ends before the closing lines.
    assert_eq!(
        lines[head + 3],
        format!("rmcp: the report as JSON: {}", report.display()),
        "{r}"
    );
    assert!(
        lines[head + 4].starts_with("rmcp: next: the runtime will now print"),
        "{r}"
    );
    // The list comes before the runtime's own message.
    let list_at = r.stderr.find("rmcp: kernels launched on").unwrap();
    assert!(list_at < r.stderr.find("Memory access fault by GPU").unwrap());

    let json = std::fs::read_to_string(&report).expect("report");
    assert!(
        json.contains("\"launches\":{\"device\":1,\"recorded\":6,\"completed\":4,\"not_completed\":[{\"sequence\":5,\"entry_point\":\"hipModuleLaunchKernel\",\"kernel\":\"fill(int*, unsigned long)\",\"demangled\":true,"),
        "{json}"
    );
    assert!(
        json.contains(&format!(
            "\"grid\":[16,1,1],\"block\":[16,1,1],\"stream\":\"{s2}\",\"thread\":"
        )),
        "{json}"
    );

    // Every launch reached the runtime unchanged: dim3 by value, the
    // global size of hipExtModuleLaunchKernel, the stream.
    let calls: Vec<String> = [
        "hipLaunchKernel",
        "hipExtLaunchKernel",
        "hipLaunchCooperativeKernel",
        "hipModuleLaunchKernel",
        "hipExtModuleLaunchKernel",
    ]
    .iter()
    .flat_map(|n| r.calls_named(n))
    .map(|c| {
        format!(
            "{} {}/{} {}",
            c.func,
            c.get("grid").unwrap(),
            c.get("block").unwrap(),
            c.get("dev").unwrap()
        )
    })
    .collect();
    for want in [
        "hipLaunchKernel 64,1,1/256,1,1 0",
        "hipLaunchKernel 128,2,1/64,1,1 1",
        "hipExtLaunchKernel 4,1,1/4,1,1 1",
        "hipLaunchCooperativeKernel 16,1,1/16,1,1 1",
        "hipModuleLaunchKernel 4,1,1/64,1,1 0",
        "hipModuleLaunchKernel 7,1,1/32,1,1 1",
        "hipExtModuleLaunchKernel 1280,1,1/128,1,1 1",
    ] {
        assert!(calls.iter().any(|c| c == want), "{want} not in {calls:?}");
    }
    assert_eq!(r.calls_named("hipGraphLaunch").len(), 1);
    // Each kernel's name was asked for once, at its first launch.
    assert_eq!(r.calls_named("hipKernelNameRefByPtr").len(), 2, "{r}");
    assert_eq!(r.calls_named("hipKernelNameRef").len(), 1, "{r}");
}

#[test]
fn all_synchronised_and_nothing_launched_are_said_plainly() {
    let dir = common::tempdir("launches-none");
    let report = dir.join("fault.json");
    let synced = fault_run(
        "gfx1030",
        &[
            "hsa_init",
            "kernel:0:_Z6vecAddPfPKfS1_i",
            "launch:kernel:0:1:1:0",
            "devsync",
            "hipMalloc:64",
            "hsa_fault:live+0:1",
        ],
        &report,
    );
    assert!(
        synced.stderr.contains("rmcp: kernels in flight: none; all 1 launches recorded on HIP device 0 (this GPU) had completed at a synchronisation before the fault\n"),
        "{synced}"
    );
    let none = fault_run(
        "gfx1030",
        &["hsa_init", "hipMalloc:64", "hsa_fault:live+0:1"],
        &report,
    );
    assert!(
        none.stderr.contains(
            "rmcp: kernels in flight: no kernel launch was recorded on HIP device 0 (this GPU)"
        ),
        "{none}"
    );
}

#[test]
fn refused_launches_are_listed_without_a_name_and_missing_entry_points_say_so() {
    let dir = common::tempdir("launches-fail");
    let report = dir.join("fault.json");
    // Stub 5 was never registered: the runtime refuses the launch (98).
    // rmcp records a launch before forwarding it (so that the forward is a
    // jump), so the refused launch is listed, with no name.
    let r = fault_run(
        "gfx1030",
        &[
            "hsa_init",
            "launch:kernel:5:1:1:0",
            "hipMalloc:64",
            "hsa_fault:live+0:1",
        ],
        &report,
    );
    assert!(r.stdout.contains("launch:kernel:5:1:1:0 rc=98"), "{r}");
    assert!(
        r.stderr.contains(" (name not known to the runtime) via hipLaunchKernel: grid 1x1x1, block 1x1x1, stream 0x0, thread "),
        "{r}"
    );

    // ROCm 5.2.3 has no hipExtModuleLaunchKernel: the hook answers 801 and warns once.
    let r5 = Scenario::new(Program::DriverExe5)
        .devices("gfx1030")
        .preload(true)
        .args([
            "modfunc:0:_Z4fillPim",
            "launch:extmodule:0:1:1:0",
            "launch:extmodule:0:1:1:0",
            "launch:module:0:1:1:0",
        ])
        .run();
    assert!(
        r5.stdout.contains("launch:extmodule:0:1:1:0 rc=801"),
        "{r5}"
    );
    assert!(r5.stdout.contains("launch:module:0:1:1:0 rc=0"), "{r5}");
    assert_eq!(
        r5.stderr
            .matches("hipExtModuleLaunchKernel is not in this HIP runtime")
            .count(),
        1,
        "{r5}"
    );
}

#[test]
fn launches_from_many_threads_are_all_recorded() {
    // 4 threads x 8 launches on device 0: 32 recorded, none lost or torn.
    let dir = common::tempdir("launches-threads");
    let report = dir.join("fault.json");
    let mut ops = vec!["hsa_init", "kernel:0:_Z6vecAddPfPKfS1_i", "threads:4"];
    ops.extend(std::iter::repeat_n("launch:kernel:0:3x5x7:32x2x1:0", 8));
    let r = Scenario::new(Program::DriverExe)
        .devices("gfx1030")
        .preload(true)
        .env("RMCP_FAULT_REPORT", &report)
        .args(&ops)
        .run();
    r.assert_success();
    // Every launch reached the runtime with its exact dims.
    let calls = r.calls_named("hipLaunchKernel");
    assert_eq!(calls.len(), 32, "{r}");
    assert!(calls
        .iter()
        .all(|c| c.get("grid") == Some("3,5,7") && c.get("block") == Some("32,2,1")));
    // Threads racing on the first launch of a kernel resolve its name once.
    assert_eq!(r.calls_named("hipKernelNameRefByPtr").len(), 1, "{r}");
}

#[test]
fn repeated_launches_take_the_fast_path_and_are_recorded_exactly() {
    // The first launch of a kernel resolves its name (slow path); the next
    // ones are recorded by hipLaunchKernel's assembly fast path. All must
    // show the exact dims, stream and order.
    let dir = common::tempdir("launches-fast");
    let report = dir.join("fault.json");
    let r = fault_run(
        "gfx1030",
        &[
            "hsa_init",
            "kernel:0:_Z6vecAddPfPKfS1_i",
            "stream:1",
            "launch:kernel:0:1:1:0",
            "launch:kernel:0:65535x3x2:1024x1x1:1",
            "launch:kernel:0:7x1x1:64x4x4:0",
            "hipMalloc:64",
            "hsa_fault:live+0:1",
        ],
        &report,
    );
    let s1 = r
        .ops()
        .into_iter()
        .find(|o| o.op == "stream:1")
        .and_then(|o| o.get("stream").map(str::to_string))
        .unwrap();
    let lines = rmcp_lines(&r);
    let head = lines
        .iter()
        .position(|l| l.starts_with("rmcp: kernels launched on"))
        .unwrap_or_else(|| panic!("{r}"));
    let name = "vecAdd(float*, float const*, float const*, int)";
    for (i, (seq, dims, stream)) in [
        (2, "grid 7x1x1, block 64x4x4", "0x0".to_string()),
        (1, "grid 65535x3x2, block 1024x1x1", s1),
        (0, "grid 1x1x1, block 1x1x1", "0x0".to_string()),
    ]
    .into_iter()
    .enumerate()
    {
        assert!(
            lines[head + 1 + i].starts_with(&format!(
                "rmcp:   #{seq} {name} via hipLaunchKernel: {dims}, stream {stream}, thread "
            )),
            "{r}"
        );
    }
    assert_eq!(r.calls_named("hipKernelNameRefByPtr").len(), 1, "{r}");
}

/// `void at::native::elementwise_kernel<L, ..., L>(int, float*)` with `n`
/// template arguments `L` = `at::native::Loader<float>`: mangled with
/// substitutions (S3_) so that the runtime double's 255-byte names hold
/// it, and its demangled spelling (as c++filt writes it).
fn template_kernel(n: usize) -> (String, String) {
    let mangled = format!(
        "_ZN2at6native18elementwise_kernelINS0_6LoaderIfEE{}EEviPf",
        "S3_".repeat(n - 1)
    );
    let args = vec!["at::native::Loader<float>"; n].join(", ");
    let demangled = format!("void at::native::elementwise_kernel<{args} >(int, float*)");
    (mangled, demangled)
}

#[test]
fn long_kernel_names_leave_both_fault_reports_complete() {
    // 64 launches in flight (what a ring holds) of a PyTorch-like template
    // kernel with a demangled name of 211 and of 400 bytes. The cache keeps
    // 375 bytes of a name: the longer one is shown shortened, with a marker.
    for (n, len) in [(6, 211), (13, 400)] {
        let (mangled, demangled) = template_kernel(n);
        assert_eq!(demangled.len(), len);
        let dir = common::tempdir("launches-long-names");
        let report = dir.join("fault.json");
        let kernel = format!("kernel:0:{mangled}");
        let mut ops = vec!["hsa_init", kernel.as_str()];
        ops.extend(std::iter::repeat_n("launch:kernel:0:1:1:0", 64));
        ops.extend(["hipMalloc:4096", "hsa_fault:live+0:1"]);
        let r = fault_run("gfx1030", &ops, &report);
        let shown = if len < 375 {
            demangled.clone()
        } else {
            format!("{}... ({len} bytes, shortened)", &demangled[..375])
        };

        let lines = rmcp_lines(&r);
        let head = lines
            .iter()
            .position(|l| l.starts_with("rmcp: kernels launched on"))
            .unwrap_or_else(|| panic!("no launch list\n{r}"));
        assert!(
            lines[head].ends_with("(64 of 64 recorded; 0 completed at a synchronisation):"),
            "{r}"
        );
        for (i, seq) in (48..64).rev().enumerate() {
            assert!(
                lines[head + 1 + i].starts_with(&format!(
                    "rmcp:   #{seq} {shown} via hipLaunchKernel: grid 1x1x1"
                )),
                "{len}: line {i}\n{r}"
            );
        }
        // The text ends with its closing lines.
        assert_eq!(
            lines[head + 17],
            "rmcp:   ... and 48 older (all of them in RMCP_FAULT_REPORT)",
            "{r}"
        );
        assert_eq!(
            lines[head + 18],
            format!("rmcp: the report as JSON: {}", report.display()),
            "{r}"
        );
        assert!(
            lines[head + 19].starts_with("rmcp: next: the runtime will now print its own message"),
            "{r}"
        );
        assert_eq!(lines.len(), head + 20, "{r}");

        // The JSON is valid and lists all 64 launches with the same name.
        let text = std::fs::read_to_string(&report).expect("report");
        let json: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{len}: not valid JSON ({e}), {} bytes", text.len()));
        let listed = json["launches"]["not_completed"].as_array().unwrap();
        assert_eq!(listed.len(), 64, "{len}");
        assert_eq!(json["launches"]["not_completed_omitted"], 0);
        assert!(
            listed.iter().all(|l| l["kernel"] == shown.as_str()),
            "{len}: {text}"
        );
        assert!(listed.iter().all(|l| l["kernel_shortened"] == (len >= 375)));
        // Only the first launch asked the runtime for the name.
        assert_eq!(r.calls_named("hipKernelNameRefByPtr").len(), 1, "{r}");
    }
}

/// The assembly fast paths of hipLaunchKernel and hipModuleLaunchKernel
/// really run: with the `test-counters` build, N launches of K kernels take
/// the slow path exactly once per kernel (its name is resolved then) and
/// the fast path every other time, and every launch is recorded exactly.
#[cfg(feature = "test-counters")]
#[test]
fn each_kernel_takes_the_slow_path_once_and_the_fast_path_after() {
    let dir = common::tempdir("launches-paths");
    let report = dir.join("fault.json");
    let mut ops = vec![
        "hsa_init",
        "kernel:0:_Z6vecAddPfPKfS1_i",
        "kernel:1:_Z4fillPim",
        "modfunc:2:_Z5scalePfi",
        "stream:1",
    ];
    // Interleaved, so each launch follows one of another kernel.
    for _ in 0..20 {
        ops.extend([
            "launch:kernel:0:4x2x1:64:0",
            "launch:kernel:1:8:32:1",
            "launch:module:2:16x1x2:128x2x1:1",
        ]);
    }
    let r = Scenario::new(Program::DriverExe)
        .devices("gfx1030")
        .preload(true)
        .env("RMCP_LOG", "info")
        .env("RMCP_FAULT_REPORT", &report)
        .args(&ops)
        .run();
    r.assert_success();
    assert!(
        r.stderr
            .contains("rmcp: info: launch paths (test-counters build): 57 fast, 3 slow\n"),
        "{r}"
    );
    assert_eq!(r.calls_named("hipLaunchKernel").len(), 40, "{r}");
    assert_eq!(r.calls_named("hipModuleLaunchKernel").len(), 20, "{r}");

    // The same launches, recorded: the fault report lists the newest 60
    // (one ring holds 64) with their exact dimensions and streams.
    ops.extend(["hipMalloc:64", "hsa_fault:live+0:1"]);
    let r = fault_run("gfx1030", &ops, &report);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let listed = json["launches"]["not_completed"].as_array().unwrap();
    assert_eq!(listed.len(), 60, "{r}");
    for (i, l) in listed.iter().enumerate() {
        let (entry, kernel, grid, block) = match i % 3 {
            0 => (
                "hipModuleLaunchKernel",
                "scale(float*, int)",
                [16, 1, 2],
                [128, 2, 1],
            ),
            1 => (
                "hipLaunchKernel",
                "fill(int*, unsigned long)",
                [8, 1, 1],
                [32, 1, 1],
            ),
            _ => (
                "hipLaunchKernel",
                "vecAdd(float*, float const*, float const*, int)",
                [4, 2, 1],
                [64, 1, 1],
            ),
        };
        assert_eq!(l["sequence"], 59 - i, "{l}");
        assert_eq!(l["entry_point"], entry, "{l}");
        assert_eq!(l["kernel"], kernel, "{l}");
        assert_eq!(l["grid"], serde_json::json!(grid), "{l}");
        assert_eq!(l["block"], serde_json::json!(block), "{l}");
    }
}

/// Issue 19 item 3: the per-thread-default-stream launches
/// (hipLaunchKernel_spt, hipLaunchCooperativeKernel_spt, hipGraphLaunch_spt),
/// hipModuleLaunchCooperativeKernel and hipStreamSynchronize_spt feed the
/// same ring: each launch is listed under its own entry point, and a launch
/// completed by hipStreamSynchronize_spt is not.
#[test]
fn spt_and_cooperative_module_launches_feed_the_ring() {
    let dir = common::tempdir("launches-spt");
    let report = dir.join("fault.json");
    let r = fault_run(
        "gfx1030",
        &[
            "hsa_init",
            "kernel:0:_Z6vecAddPfPKfS1_i",
            "modfunc:2:_Z4fillPim",
            "stream:1",
            "launch:kernel_spt:0:8:64:0",
            "launch:coop_spt:0:2:32:0",
            "launch:modcoop:2:3:16:0",
            "launch:graph_spt:3:1:1:1",
            "streamsync_spt:1",
            "hipMalloc:64",
            "hsa_fault:live+0:1",
        ],
        &report,
    );
    let lines = rmcp_lines(&r);
    let head = lines
        .iter()
        .position(|l| l.starts_with("rmcp: kernels launched on"))
        .unwrap_or_else(|| panic!("no launch list\n{r}"));
    assert!(
        lines[head].contains("(3 of 4 recorded; 1 completed at a synchronisation)"),
        "{r}"
    );
    assert!(
        lines[head + 1].starts_with(
            "rmcp:   #2 fill(int*, unsigned long) via hipModuleLaunchCooperativeKernel: grid 3x1x1, block 16x1x1"
        ),
        "{r}"
    );
    assert!(
        lines[head + 2].starts_with(
            "rmcp:   #1 vecAdd(float*, float const*, float const*, int) via hipLaunchCooperativeKernel_spt: grid 2x1x1"
        ),
        "{r}"
    );
    assert!(
        lines[head + 3].starts_with(
            "rmcp:   #0 vecAdd(float*, float const*, float const*, int) via hipLaunchKernel_spt: grid 8x1x1, block 64x1x1"
        ),
        "{r}"
    );
    // Every launch reached the runtime unchanged.
    for f in [
        "hipLaunchKernel_spt",
        "hipLaunchCooperativeKernel_spt",
        "hipModuleLaunchCooperativeKernel",
        "hipGraphLaunch_spt",
        "hipStreamSynchronize_spt",
    ] {
        assert_eq!(r.calls_named(f).len(), 1, "{f}\n{r}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 19 item 3: hipLaunchKernelExC and hipDrvLaunchKernelEx feed the
/// ring with the dimensions and stream of their config, and each launch of
/// a multi-device call is filed under its stream's device (noted when the
/// stream was created), not the launching thread's.
#[test]
fn extensible_and_multi_device_launches_feed_their_devices_rings() {
    let dir = common::tempdir("launches-multi");
    let report = dir.join("fault.json");
    let ops = |gpu: &'static str| -> Vec<String> {
        [
            "hsa_init",
            "kernel:0:_Z6vecAddPfPKfS1_i",
            "modfunc:2:_Z4fillPim",
            "stream:1", // on device 0
            "setdev:1",
            "stream:2", // on device 1
            "setdev:0",
            "launch:exc:0:5:64:1",
            "launch:drvex:2:6:32:1",
            "multilaunch:coop:0:1:2",
            "multilaunch:ext:0:1:2",
            "multilaunch:modcoop:2:1:2",
            "hipMalloc:64",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([format!("hsa_fault:live+0:1:{gpu}")])
        .collect()
    };
    let listed = |gpu: &'static str| -> Vec<String> {
        let ops = ops(gpu);
        let ops: Vec<&str> = ops.iter().map(String::as_str).collect();
        let r = fault_run("gfx1030,gfx1031", &ops, &report);
        let lines = rmcp_lines(&r);
        let head = lines
            .iter()
            .position(|l| l.starts_with("rmcp: kernels launched on"))
            .unwrap_or_else(|| panic!("no launch list\n{r}"));
        lines[head + 1..]
            .iter()
            .take_while(|l| l.starts_with("rmcp:   #"))
            .map(|l| {
                l.split(" via ")
                    .nth(1)
                    .and_then(|v| v.split(':').next())
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    // The faulting GPU 0 (thread's device, stream 1): the config launches
    // and one launch of each multi-device call, newest first.
    assert_eq!(
        listed("0"),
        [
            "hipModuleLaunchCooperativeKernelMultiDevice",
            "hipExtLaunchMultiKernelMultiDevice",
            "hipLaunchCooperativeKernelMultiDevice",
            "hipDrvLaunchKernelEx",
            "hipLaunchKernelExC",
        ]
    );
    // GPU 1: only the multi-device launches on stream 2, although the
    // launching thread's current device was 0.
    assert_eq!(
        listed("1"),
        [
            "hipModuleLaunchCooperativeKernelMultiDevice",
            "hipExtLaunchMultiKernelMultiDevice",
            "hipLaunchCooperativeKernelMultiDevice",
        ]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// One fault run on two GPUs (gfx1030, gfx1031): the run and the launches
/// its JSON report lists as not completed on the faulting GPU, as
/// (x of the grid, stream) pairs, newest first.
fn listed_on_fault(name: &str, ops: &[&str]) -> (Run, Vec<(u64, String)>) {
    let dir = common::tempdir(name);
    let report = dir.join("fault.json");
    let r = fault_run("gfx1030,gfx1031", ops, &report);
    let text = std::fs::read_to_string(&report).unwrap_or_else(|e| panic!("report: {e}\n{r}"));
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let listed = json["launches"]["not_completed"]
        .as_array()
        .unwrap_or_else(|| panic!("{text}"))
        .iter()
        .map(|l| {
            (
                l["grid"][0].as_u64().unwrap(),
                l["stream"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    (r, listed)
}

/// The handle the driver printed for its op `op` (`stream=0x...`).
fn stream_of(r: &Run, op: &str) -> String {
    r.ops()
        .into_iter()
        .find(|o| o.op == op)
        .and_then(|o| o.get("stream").map(str::to_string))
        .unwrap_or_else(|| panic!("no {op}\n{r}"))
}

/// Issue 19 item 3: `hipSetDevice(1); create s; hipSetDevice(0); launch on
/// s` files the launch under device 1, on the assembly fast path too (the
/// second launch of each kernel), so a fault on GPU 1 lists it in flight
/// and a fault on GPU 0 does not; launches on the null stream,
/// hipStreamLegacy and hipStreamPerThread stay under the thread's current
/// device 0. A hipStreamSynchronize of s completes s's launches on device 1.
#[test]
fn a_launch_is_filed_under_its_streams_device_not_the_threads() {
    let ops = |gpu: &'static str| {
        vec![
            "hsa_init",
            "kernel:0:_Z6vecAddPfPKfS1_i",
            "modfunc:2:_Z4fillPim",
            "setdev:1",
            "stream:1",
            "setdev:0",
            "launch:kernel:0:1:64:1",
            "launch:kernel:0:2:64:1",
            "launch:module:2:3:32:1",
            "launch:module:2:4:32:1",
            "launch:kernel:0:5:64:0",
            "launch:kernel:0:6:64:legacy",
            "launch:kernel:0:7:64:spt",
            "hipMalloc:64",
            gpu,
        ]
    };
    let (r, on1) = listed_on_fault("launches-stream-dev1", &ops("hsa_fault:live+0:1:1"));
    let s1 = stream_of(&r, "stream:1");
    assert_eq!(
        on1,
        [4, 3, 2, 1].map(|g| (g, s1.clone())),
        "GPU 1 lists exactly the launches on stream 1\n{r}"
    );
    assert!(
        r.stderr
            .contains("rmcp: kernels launched on HIP device 1 (this GPU) and not known to have completed, newest first (4 of 4 recorded; 0 completed"),
        "{r}"
    );
    let (_, on0) = listed_on_fault("launches-stream-dev0", &ops("hsa_fault:live+0:1:0"));
    assert_eq!(
        on0,
        [(7, "0x2".into()), (6, "0x1".into()), (5, "0x0".into())],
        "GPU 0 lists the null-stream and special-handle launches only"
    );

    // A synchronisation of stream 1 (current device still 0) completes its
    // launches on device 1.
    let mut synced = ops("hsa_fault:live+0:1:1");
    synced.insert(synced.len() - 2, "streamsync:1");
    let (r, on1) = listed_on_fault("launches-stream-sync", &synced);
    assert!(on1.is_empty(), "{on1:?}\n{r}");
    assert!(
        r.stderr.contains("rmcp: kernels in flight: none; all 4 launches recorded on HIP device 1 (this GPU) had completed at a synchronisation before the fault\n"),
        "{r}"
    );
}

/// The launches on the stream above take the assembly fast path after the
/// first launch of each kernel (whose name is resolved then): the stream's
/// device is found without leaving it.
#[cfg(feature = "test-counters")]
#[test]
fn launches_on_a_stream_of_another_device_take_the_fast_path() {
    let r = Scenario::new(Program::DriverExe)
        .devices("gfx1030,gfx1031")
        .preload(true)
        .env("RMCP_LOG", "info")
        .args([
            "kernel:0:_Z6vecAddPfPKfS1_i",
            "modfunc:2:_Z4fillPim",
            "setdev:1",
            "stream:1",
            "setdev:0",
            "launch:kernel:0:1:64:1",
            "launch:kernel:0:2:64:1",
            "launch:module:2:3:32:1",
            "launch:module:2:4:32:1",
            "launch:kernel:0:5:64:0",
            "launch:kernel:0:6:64:spt",
        ])
        .run();
    r.assert_success();
    assert!(
        r.stderr
            .contains("rmcp: info: launch paths (test-counters build): 4 fast, 2 slow\n"),
        "{r}"
    );
}

/// A stream destroyed, and a new one the runtime hands out at the same
/// address on another device: the new stream's launches go under the new
/// device. Twice: once created behind rmcp's back (from the runtime's own
/// handle: only hipStreamDestroy's forgetting the old stream makes rmcp ask
/// the runtime), once through hipStreamCreateWithFlags (the creation hook
/// replaces the entry). The first stream comes from
/// hipStreamCreateWithPriority.
#[test]
fn a_new_stream_at_a_destroyed_streams_address_is_filed_under_its_own_device() {
    let ops = |gpu: &'static str| {
        vec![
            "hsa_init",
            "kernel:0:_Z6vecAddPfPKfS1_i",
            "setdev:1",
            "stream:1:priority",
            "launch:kernel:0:1:64:1",
            "launch:kernel:0:2:64:1",
            "streamdestroy:1",
            "setdev:0",
            "stream:2:direct",
            "setdev:1",
            "launch:kernel:0:3:64:2",
            "launch:kernel:0:4:64:2",
            "streamdestroy:2",
            "stream:3:flags",
            "setdev:0",
            "launch:kernel:0:5:64:3",
            "hipMalloc:64",
            gpu,
        ]
    };
    let streams = |r: &Run| {
        let s = [
            stream_of(r, "stream:1:priority"),
            stream_of(r, "stream:2:direct"),
            stream_of(r, "stream:3:flags"),
        ];
        assert!(
            s[0] == s[1] && s[1] == s[2],
            "the double hands out the destroyed address again\n{r}"
        );
        s[0].clone()
    };
    let (r, on0) = listed_on_fault("launches-reuse-dev0", &ops("hsa_fault:live+0:1:0"));
    let s = streams(&r);
    assert_eq!(on0, [4, 3].map(|g| (g, s.clone())), "{r}");
    let (r, on1) = listed_on_fault("launches-reuse-dev1", &ops("hsa_fault:live+0:1:1"));
    let s = streams(&r);
    assert_eq!(on1, [5, 2, 1].map(|g| (g, s.clone())), "{r}");
    assert_eq!(r.calls_named("hipStreamDestroy").len(), 2, "{r}");
    assert_eq!(r.calls_named("hipStreamCreateWithPriority").len(), 1, "{r}");
    assert_eq!(r.calls_named("hipStreamCreateWithFlags").len(), 1, "{r}");
}

/// Another thread than the creator (whose current device is 0, where HIP
/// starts every thread) launches on a stream created on device 1 with
/// hipExtStreamCreateWithCUMask: filed under device 1; its null-stream
/// launch under device 0. A stream created behind rmcp's back (from the
/// runtime's own handle) is asked of the runtime once, at its first launch.
#[test]
fn another_threads_launches_and_unseen_streams_follow_the_stream() {
    let ops = |gpu: &'static str| {
        vec![
            "hsa_init",
            "kernel:0:_Z6vecAddPfPKfS1_i",
            "setdev:1",
            "stream:1:cumask",
            "stream:2:direct",
            "setdev:0",
            "threads:1",
            "launch:kernel:0:1:64:1",
            "launch:kernel:0:2:64:0",
            "launch:kernel:0:3:64:2",
            "launch:kernel:0:4:64:2",
            "hipMalloc:64",
            gpu,
        ]
    };
    let (r, on1) = listed_on_fault("launches-thread-dev1", &ops("hsa_fault:live+0:1:1"));
    let (s1, s2) = (
        stream_of(&r, "stream:1:cumask"),
        stream_of(&r, "stream:2:direct"),
    );
    assert_eq!(
        on1,
        [(4, s2.clone()), (3, s2.clone()), (1, s1.clone())],
        "{r}"
    );
    // The unseen stream was asked about once; the ones rmcp saw created
    // were asked at creation (the runtime has hipStreamGetDevice).
    let asked: Vec<_> = r
        .calls_named("hipStreamGetDevice")
        .into_iter()
        .filter(|c| c.get("stream") == Some(s2.as_str()))
        .collect();
    assert_eq!(asked.len(), 1, "{r}");
    let (_, on0) = listed_on_fault("launches-thread-dev0", &ops("hsa_fault:live+0:1:0"));
    assert_eq!(on0, [(2, "0x0".to_string())]);
}
