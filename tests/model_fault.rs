//! Real GPU memory faults inside AMD's real HIP and ROCr 7.2.4, on the
//! modelled GPU, with and without rmcp.
//!
//! The ROCr here is built from upstream source by scripts/setup-rocm.sh
//! (.rocm/exp-fault, model mode interface 0.5 from
//! tests/model/hsakmt-model-memory-fault.patch); HIP and everything else is
//! Debian experimental's 7.2.4 (.rocm/exp-root). The model
//! (tests/model/model_gpu.c) raises a "page not present" fault when a kernel
//! dispatch is given a pointer that no live allocation covers, and stops
//! that queue; libhsakmt hands the fault to ROCr through the process's memory
//! event exactly as the KFD does; from there on every line of code that runs
//! is the shipped runtime's: ROCr's VM-fault handler, the system-event
//! handlers (HIP's and rmcp's), HIP's error state.
//!
//! The programs are tests/model/fault.c (linked to HIP, or with
//! -DFAULT_DLSYM a dlopen+dlsym client) and tests/programs/hip_fault.py
//! (ctypes), launching train::axpy<float> from a code object that bookworm's
//! `hipcc --genco` builds for gfx1030 and gfx1010.
//!
//! Runs use interrupt signals (ROCr's default): ROCr only listens for memory
//! faults when it waits on KFD events (HSA_ENABLE_INTERRUPT=0 would make the
//! fault reach nobody).
//!
//! docs/fault-flow.md is generated here; a stale copy fails
//! `fault_flow_table_is_current` (RMCP_BLESS=1 rewrites it).
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

mod common;

use common::model::{self, throttled, Stack};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::OnceLock;
use std::time::Duration;

const SETUP_HINT: &str = "run scripts/setup-rocm.sh";
/// fault.c ends itself with SIGALRM when one call takes over 60 s.
const RUN_TIMEOUT: Duration = Duration::from_secs(150);
const BUFFER_BYTES: u64 = 64 << 20;
const KERNEL: &str = "void train::axpy<float>(float*, float const*, unsigned long)";

fn repo() -> PathBuf {
    common::manifest_dir()
}

fn skip(test: &str, why: &str) {
    common::skip_test(&format!("model_fault::{test}"), why, SETUP_HINT);
}

/// The programs, the model and the code object, built once per test binary.
struct Built {
    dir: PathBuf,
    model_lib: PathBuf,
    fault: PathBuf,
    fault_dlsym: PathBuf,
    code_object: PathBuf,
    rocr: PathBuf,
}

fn env(test: &str) -> Option<(&'static Stack, &'static Built)> {
    static STACK: OnceLock<Result<(Stack, PathBuf), String>> = OnceLock::new();
    let found = STACK.get_or_init(|| {
        let s = model::stack()?;
        let rocr = model::fault_rocr()?;
        if !Path::new("/usr/bin/hipcc").exists() {
            return Err("/usr/bin/hipcc (bookworm) is not installed".into());
        }
        Ok((s, rocr))
    });
    match found {
        Ok((s, rocr)) => Some((s, built(s, rocr))),
        Err(why) => {
            skip(test, why);
            None
        }
    }
}

fn built(s: &Stack, rocr: &Path) -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = common::target_dir()
            .join("rmcp-fixtures/model_fault")
            .join(std::process::id().to_string());
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create fixture dir");
        let b = Built {
            model_lib: dir.join("libmodel_gpu.so"),
            fault: dir.join("fault"),
            fault_dlsym: dir.join("fault_dlsym"),
            code_object: dir.join("fault_kernels.co"),
            rocr: rocr.to_path_buf(),
            dir,
        };
        let t = |p: &str| repo().join("tests").join(p);
        let include = s.hip_include_args();
        let hip_owned: Vec<String> = [include.clone(), s.hip_link_args(&[])].concat();
        let dlsym_owned: Vec<String> = [
            vec!["-DFAULT_DLSYM".to_string()],
            include,
            vec!["-ldl".to_string()],
        ]
        .concat();
        let hip: Vec<&str> = hip_owned.iter().map(String::as_str).collect();
        let dlsym: Vec<&str> = dlsym_owned.iter().map(String::as_str).collect();
        std::thread::scope(|sc| {
            sc.spawn(|| common::compile_c(&b.model_lib, &[t("model/model_gpu.c")], &["-shared"]));
            sc.spawn(|| common::compile_c(&b.fault, &[t("model/fault.c")], &hip));
            sc.spawn(|| common::compile_c(&b.fault_dlsym, &[t("model/fault.c")], &dlsym));
            sc.spawn(|| {
                let out = Command::new("/usr/bin/hipcc")
                    .args([
                        "--genco",
                        "--offload-arch=gfx1030",
                        "--offload-arch=gfx1010",
                    ])
                    .arg(t("model/fault_kernels.hip"))
                    .arg("-o")
                    .arg(&b.code_object)
                    .output()
                    .expect("run hipcc");
                assert!(
                    out.status.success(),
                    "hipcc --genco failed:\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            });
        });
        b
    })
}

// ------------------------------------------------------------------ one run

/// What runs, and how.
#[derive(Clone, Debug)]
struct Setup {
    topology: &'static str,
    /// fault.c's case: past-end, after-free, wild, none.
    case: &'static str,
    /// A second faulting launch after the first fault.
    twice: bool,
    /// fault.c's `stream-on-1` or `device-behind-rmcp` (streams of HIP
    /// device 1 on a two-GPU machine).
    stream_case: Option<&'static str>,
    rmcp: bool,
    /// librmcp-audit.so as well (LD_AUDIT), and the dlsym build of fault.c.
    audit_dlsym: bool,
    /// The dlsym build of fault.c without the audit library.
    dlsym_only: bool,
    /// RLIMIT_CORE's soft limit for the process.
    core: u64,
    skip_abort: Option<&'static str>,
    gfx_override: Option<&'static str>,
    /// AMD_LOG_LEVEL=1: HIP logs its own fault handler.
    hip_log: bool,
}

fn setup(case: &'static str, rmcp: bool) -> Setup {
    Setup {
        topology: "rx6800xt",
        case,
        twice: false,
        stream_case: None,
        rmcp,
        audit_dlsym: false,
        dlsym_only: false,
        core: 0,
        skip_abort: None,
        gfx_override: None,
        hip_log: false,
    }
}

struct FaultRun {
    setup: Setup,
    command: String,
    status: ExitStatus,
    stdout: String,
    stderr: String,
    model_log: String,
    /// RMCP_FAULT_REPORT files (name, contents), sorted by name.
    reports: Vec<(String, String)>,
}

impl std::fmt::Display for FaultRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:?}\ncommand: {}\nstatus: {:?}\n--- stdout\n{}--- stderr\n{}--- model faults\n{}",
            self.setup,
            self.command,
            self.status,
            self.stdout,
            self.stderr,
            self.model_log
                .lines()
                .filter(|l| l.starts_with("fault "))
                .collect::<Vec<_>>()
                .join("\n")
        )
    }
}

impl FaultRun {
    /// `call WHAT rc=N name=NAME` -> (N, NAME).
    fn call(&self, what: &str) -> Option<(i64, String)> {
        self.stdout.lines().find_map(|l| {
            let rest = l.strip_prefix(&format!("call {what} rc="))?;
            let (rc, name) = rest.split_once(" name=")?;
            Some((rc.parse().ok()?, name.to_string()))
        })
    }
    /// Every call line, in order. In a run that aborted, without the
    /// faulting launch's own line: the fault arrives on ROCr's event thread
    /// while the launch returns, so the abort may come before that line is
    /// printed or after (a race in the program, with or without rmcp).
    fn calls(&self) -> Vec<&str> {
        let aborted = self.status.signal() == Some(libc::SIGABRT);
        self.stdout
            .lines()
            .filter(|l| l.starts_with("call "))
            .filter(|l| !(aborted && l.starts_with("call hipModuleLaunchKernel rc=")))
            .collect()
    }
    /// The address fault.c passed to the kernel.
    fn target(&self) -> u64 {
        self.stdout
            .lines()
            .find_map(|l| l.strip_prefix("target 0x"))
            .and_then(|v| u64::from_str_radix(v, 16).ok())
            .unwrap_or_else(|| panic!("no target line\n{self}"))
    }
    /// `buffers a=0x.. b=0x..`: the two buffer addresses.
    fn buffers(&self) -> (u64, u64) {
        let line = self
            .stdout
            .lines()
            .find(|l| l.starts_with("buffers "))
            .unwrap_or_else(|| panic!("no buffers line\n{self}"));
        let get = |k: &str| {
            line.split(' ')
                .find_map(|w| w.strip_prefix(k))
                .and_then(|v| u64::from_str_radix(v.trim_start_matches("0x"), 16).ok())
                .unwrap()
        };
        (get("a="), get("b="))
    }
    /// Addresses the model raised faults at.
    fn model_faults(&self) -> Vec<u64> {
        self.model_log
            .lines()
            .filter(|l| l.starts_with("fault "))
            .filter_map(|l| l.split(' ').find_map(|w| w.strip_prefix("va=0x")))
            .filter_map(|v| u64::from_str_radix(v, 16).ok())
            .collect()
    }
    fn rmcp_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter_map(|l| l.strip_prefix("rmcp: "))
            .collect()
    }
    /// The runtime's own stderr lines (not rmcp's, not the model's), with
    /// addresses and handles replaced by placeholders.
    fn runtime_lines(&self) -> Vec<String> {
        self.stderr
            .lines()
            .filter(|l| !l.starts_with("rmcp: ") && !l.trim().is_empty())
            .filter(|l| !l.starts_with("Warning: Resource leak detected by SharedSignalPool"))
            .map(normalise)
            .collect()
    }
    /// "exit 0", "exit 1", "SIGABRT" ...
    fn outcome(&self) -> String {
        outcome(self.status)
    }
    fn json_reports(&self) -> Vec<serde_json::Value> {
        self.reports
            .iter()
            .map(|(name, text)| {
                serde_json::from_str(text)
                    .unwrap_or_else(|e| panic!("{name} is not JSON ({e}): {text}\n{self}"))
            })
            .collect()
    }
}

fn outcome(st: ExitStatus) -> String {
    match (st.code(), st.signal()) {
        (Some(c), _) => format!("exit {c}"),
        (None, Some(libc::SIGABRT)) => "SIGABRT".into(),
        (None, Some(libc::SIGALRM)) => "SIGALRM (a call hung for 60 s)".into(),
        (None, Some(n)) => format!("signal {n}"),
        _ => "?".into(),
    }
}

/// Hex numbers of 6 digits or more become `0x…`: addresses and handles
/// differ from run to run.
fn normalise(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(i) = rest.find("0x") {
        out.push_str(&rest[..i]);
        let tail = &rest[i + 2..];
        let n = tail.chars().take_while(|c| c.is_ascii_hexdigit()).count();
        if n >= 6 {
            out.push_str("0x…");
        } else {
            out.push_str(&rest[i..i + 2 + n]);
        }
        rest = &tail[n..];
    }
    out.push_str(rest);
    out
}

fn run_fault(s: &Stack, b: &Built, setup: &Setup) -> FaultRun {
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // Each run in a directory of its own: the working directory of a core
    // dump, the model log, the JSON reports.
    let dir = b.dir.join(format!("run-{n}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("model.log");
    let topology = model::topology(setup.topology);
    let mut cmd = Command::new(&s.loader);
    model::clear_runtime_env(&mut cmd);
    cmd.current_dir(&dir)
        .arg("--library-path")
        .arg(std::env::join_paths([&b.rocr, &s.libdir]).unwrap());
    if setup.audit_dlsym {
        cmd.arg("--audit").arg(common::librmcp_audit());
    }
    if setup.rmcp {
        cmd.arg("--preload").arg(common::librmcp());
    }
    let exe = if setup.audit_dlsym || setup.dlsym_only {
        &b.fault_dlsym
    } else {
        &b.fault
    };
    cmd.arg(exe).arg(&b.code_object).arg(setup.case);
    if setup.twice {
        cmd.arg("twice");
    }
    if let Some(c) = setup.stream_case {
        cmd.arg(c);
    }
    cmd.env("HSA_MODEL_TOPOLOGY", &topology)
        .env("HSA_MODEL_LIB", &b.model_lib)
        .env("RMCP_MODEL_LOG", &log)
        // The model serves AQL queues only: copies then run as blit kernels.
        .env("HSA_ENABLE_SDMA", "0")
        .env(
            "RMCP_SYSFS_ROOT",
            model::sysfs_root(&topology, "fault-sysfs"),
        )
        .env("RMCP_FAULT_REPORT", dir.join("report-%p.json"));
    if let Some(v) = setup.skip_abort {
        cmd.env("HIP_SKIP_ABORT_ON_GPU_ERROR", v);
    }
    if let Some(v) = setup.gfx_override {
        cmd.env("HSA_OVERRIDE_GFX_VERSION", v);
    }
    if setup.hip_log {
        cmd.env("AMD_LOG_LEVEL", "1");
    }
    let core = setup.core;
    // SAFETY: getrlimit/setrlimit are async-signal-safe; nothing else runs
    // between fork and exec here.
    unsafe {
        cmd.pre_exec(move || {
            let mut lim = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            if libc::getrlimit(libc::RLIMIT_CORE, &mut lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            lim.rlim_cur = core;
            if lim.rlim_max != libc::RLIM_INFINITY && lim.rlim_max < core {
                lim.rlim_max = core;
            }
            if libc::setrlimit(libc::RLIMIT_CORE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let command = format!("{cmd:?}");
    let out = throttled(|| model::output_within(&mut cmd, RUN_TIMEOUT));
    let mut reports: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("report-"))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read_to_string(e.path()).unwrap(),
            )
        })
        .collect();
    reports.sort();
    let run = FaultRun {
        setup: setup.clone(),
        command,
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        model_log: std::fs::read_to_string(&log).unwrap_or_default(),
        reports,
    };
    // A core file of a model-mode process is gigabytes (sparse): never keep one.
    let _ = std::fs::remove_dir_all(&dir);
    run
}

/// Runs `setup` with and without rmcp and checks that rmcp changed nothing
/// the program or the user can observe of the runtime: exit status or
/// signal, every HIP call's result, the runtime's own messages, and the
/// fault the model raised.
fn with_and_without_rmcp(s: &Stack, b: &Built, setup: &Setup) -> (FaultRun, FaultRun) {
    let mut off = setup.clone();
    off.rmcp = false;
    let mut on = setup.clone();
    on.rmcp = true;
    let (without, with) = std::thread::scope(|sc| {
        let a = sc.spawn(|| run_fault(s, b, &off));
        let c = sc.spawn(|| run_fault(s, b, &on));
        (a.join().unwrap(), c.join().unwrap())
    });
    assert_eq!(with.outcome(), without.outcome(), "{with}\n{without}");
    assert_eq!(with.calls(), without.calls(), "{with}\n{without}");
    assert_eq!(
        with.runtime_lines(),
        without.runtime_lines(),
        "{with}\n{without}"
    );
    assert_eq!(
        with.model_faults().len(),
        without.model_faults().len(),
        "{with}\n{without}"
    );
    assert!(without.rmcp_lines().is_empty(), "{without}");
    assert!(without.reports.is_empty(), "{without}");
    (without, with)
}

/// The default settings (RLIMIT_CORE 0, HIP_SKIP_ABORT_ON_GPU_ERROR unset):
/// HIP's handler says the fault is handled, ROCr neither prints nor aborts,
/// and every HIP call from the next synchronisation on returns
/// hipErrorIllegalAddress; the program decides how it ends (fault.c exits 0).
fn assert_continues_with_illegal_address(run: &FaultRun) {
    assert_eq!(run.outcome(), "exit 0", "{run}");
    for what in [
        "hipDeviceSynchronize",
        "hipGetLastError",
        "hipGetLastError:again",
        "hipMalloc:after",
        "hipDeviceSynchronize:again",
    ] {
        assert_eq!(
            run.call(what),
            Some((700, "hipErrorIllegalAddress".into())),
            "{what}\n{run}"
        );
    }
    assert!(run.runtime_lines().is_empty(), "{run}");
}

/// The text report's lines (without "rmcp: ") and its one JSON report.
fn report(run: &FaultRun) -> (String, serde_json::Value) {
    let text = run.rmcp_lines().join("\n");
    let json = run.json_reports();
    assert_eq!(json.len(), 1, "{run}");
    let j = json.into_iter().next().unwrap();
    assert_eq!(j["rmcp_fault_report"], 1, "{j}");
    assert_eq!(
        j["next"]["line"].as_str(),
        next_line(run),
        "the JSON's next.line is the text's"
    );
    (text, j)
}

/// The report's line saying what the runtime does next.
fn next_line(run: &FaultRun) -> Option<&str> {
    run.rmcp_lines()
        .into_iter()
        .find(|l| l.starts_with("next: "))
}

const CONTINUES: &str = "next: the process goes on (HIP 7's default: core dumps off, HIP_SKIP_ABORT_ON_GPU_ERROR not 0); the runtime prints nothing more, the program gets hipErrorIllegalAddress at its next synchronisation and every HIP call after that fails the same way (PyTorch raises torch.AcceleratorError); the work queued on this GPU is lost";
const ABORTS: &str =
    "next: the runtime will now print its own message (\"Memory access fault by GPU ...\") and abort the process, because ";

/// rmcp said what the runtime then did: the process went on (and rmcp's
/// exit summary says it ran on after the fault) or ROCr aborted it.
fn assert_next_line_came_true(run: &FaultRun) {
    let line = next_line(run).unwrap_or_else(|| panic!("no next: line\n{run}"));
    let j = &run.json_reports()[0];
    match run.outcome().as_str() {
        "exit 0" => {
            assert_eq!(line, CONTINUES, "{run}");
            assert_eq!(
                j["next"]["id"], "continues-hip-error-illegal-address",
                "{j}"
            );
            assert!(
                run.stderr.contains(
                    "rmcp: warn: this process ran on after 1 GPU memory fault(s); rmcp reported each above\n"
                ),
                "{run}"
            );
        }
        "SIGABRT" => {
            assert!(line.starts_with(ABORTS), "{run}");
            assert_eq!(j["next"]["id"], "runtime-aborts", "{j}");
            let core = run.setup.core != 0;
            let skip_off = run.setup.skip_abort == Some("0");
            assert!(
                (core && line.contains("core dumps are enabled (RLIMIT_CORE 1 bytes, not 0)"))
                    || (!core && skip_off && line.contains("HIP_SKIP_ABORT_ON_GPU_ERROR=0")),
                "{run}"
            );
            // rmcp's report comes before the runtime's own message.
            assert!(
                run.stderr.find("rmcp: next: ").unwrap()
                    < run.stderr.find("\nMemory access fault by GPU").unwrap(),
                "{run}"
            );
        }
        other => panic!("unexpected outcome {other}\n{run}"),
    }
}

fn assert_kernel_in_flight(text: &str, j: &serde_json::Value, run: &FaultRun) {
    // The warm-up launch completed at its synchronisation; the faulting one
    // (sequence 1) did not.
    assert!(
        text.contains("not known to have completed, newest first (1 of 2 recorded; 1 completed at a synchronisation):")
            && text.contains(&format!(
                "  #1 {KERNEL} via hipModuleLaunchKernel: grid 1x1x1, block 64x1x1"
            )),
        "{run}"
    );
    let l = &j["launches"]["not_completed"][0];
    assert_eq!(l["kernel"], KERNEL, "{j}");
}

// ------------------------------------------------------------------ cases

/// (a) A kernel writes 16 bytes past the end of a 64 MiB hipMalloc buffer.
#[test]
fn write_past_the_end_of_a_hip_malloc_buffer() {
    let test = "write_past_the_end_of_a_hip_malloc_buffer";
    let Some((s, b)) = env(test) else { return };
    let (without, with) = with_and_without_rmcp(s, b, &setup("past-end", true));
    assert_continues_with_illegal_address(&without);
    assert_next_line_came_true(&with);
    let (a, _) = with.buffers();
    assert_eq!(with.target(), a + BUFFER_BYTES + 16, "{with}");
    assert_eq!(with.model_faults(), vec![with.target()], "{with}");
    let (text, j) = report(&with);
    assert!(
        text.contains(&format!(
            "GPU memory fault at address {:#x} on gfx1030 (node 1,",
            with.target()
        )),
        "{with}"
    );
    assert!(text.contains("reason: page not present"), "{with}");
    assert!(
        text.contains(&format!(
            "likely cause: out of bounds: address {:#x} is 16 bytes past the end of hipMalloc of {BUFFER_BYTES} bytes at {a:#x}-{:#x} (live)",
            with.target(),
            a + BUFFER_BYTES
        )),
        "{with}"
    );
    assert_kernel_in_flight(&text, &j, &with);
    assert_eq!(j["address"], format!("{:#x}", with.target()), "{j}");
    assert_eq!(j["verdict"], "unknown", "{j}");
    let cause = &j["causes"][0];
    assert_eq!(cause["id"], "out-of-bounds-past-end", "{j}");
    assert_eq!(cause["distance_bytes"], 16, "{j}");
    assert_eq!(cause["allocation"]["entry_point"], "hipMalloc", "{j}");
    assert_eq!(cause["allocation"]["size"], BUFFER_BYTES, "{j}");
}

/// (b) A kernel is launched on a 64 MiB buffer after hipFree returned it
/// to the driver.
#[test]
fn use_after_hip_free() {
    let test = "use_after_hip_free";
    let Some((s, b)) = env(test) else { return };
    let (without, with) = with_and_without_rmcp(s, b, &setup("after-free", true));
    assert_continues_with_illegal_address(&without);
    let (_, freed) = with.buffers();
    assert_eq!(with.target(), freed, "{with}");
    assert_eq!(with.model_faults(), vec![freed], "{with}");
    assert_eq!(
        with.call("hipFree:b"),
        Some((0, "hipSuccess".into())),
        "{with}"
    );
    let (text, j) = report(&with);
    assert!(
        text.contains(&format!(
            "address {freed:#x} is 0 bytes into an allocation that was FREED "
        )) && text.contains(" ms ago (use after free): hipMalloc of 67108864 bytes"),
        "{with}"
    );
    assert_kernel_in_flight(&text, &j, &with);
    assert_eq!(j["verdict"], "freed", "{j}");
    assert_eq!(j["allocation"]["size"], BUFFER_BYTES, "{j}");
    assert!(j["allocation"]["freed_ms_ago"].is_u64(), "{j}");
}

/// (c) A kernel is given an address no allocation is near.
#[test]
fn wild_pointer() {
    let test = "wild_pointer";
    let Some((s, b)) = env(test) else { return };
    let (without, with) = with_and_without_rmcp(s, b, &setup("wild", true));
    assert_continues_with_illegal_address(&without);
    assert_eq!(with.target(), 0x3e00001000, "{with}");
    assert_eq!(with.model_faults(), vec![0x3e00001000], "{with}");
    let (text, j) = report(&with);
    assert!(
        text.contains(
            "address 0x3e00001000 is in no allocation rmcp has seen; nearest below ends "
        ),
        "{with}"
    );
    assert!(text.contains("; nothing above it"), "{with}");
    assert_kernel_in_flight(&text, &j, &with);
    assert_eq!(j["verdict"], "unknown", "{j}");
    assert!(j["allocation"].is_null(), "{j}");
}

/// Issue 19 item 3 on the real stack, two RX 6800 XT (HIP devices 0 and 1;
/// the model checks the kernel arguments of dispatches on its first GPU
/// only, whose allocations hold the runtime's kernel-argument memory, so
/// the kernels run on device 0).
///
/// First, what HIP 7.2.4 does with a launch on a stream of another device
/// than the current one (`create s on 0; hipSetDevice(1); launch on s`):
/// it refuses the launch (hipErrorInvalidHandle, 400: clr checks the
/// stream's device against the current device), with and without rmcp, so
/// no kernel runs and nothing faults.
///
/// Then a launch HIP accepts on a stream whose device differs from the
/// device rmcp's hooks saw set: the thread's device is set to 1 through the
/// hooked hipSetDevice and to 0 through the runtime's own (dlsym on its
/// handle), the stream created on device 0 through the hooked
/// hipStreamCreate. The fault comes from node 1, and its report lists the
/// faulting launch in flight on device 0 with the stream's handle: filed
/// under the stream's device, not the device rmcp last saw set (1, where
/// the warm-up launch on the null stream is filed).
#[test]
fn a_fault_lists_the_launch_on_a_stream_of_the_faulting_gpu() {
    let test = "a_fault_lists_the_launch_on_a_stream_of_the_faulting_gpu";
    let Some((s, b)) = env(test) else { return };
    let mut refused = setup("wild", true);
    refused.topology = "rx6800xt-x2";
    refused.stream_case = Some("stream-of-0-from-1");
    let mut behind = refused.clone();
    behind.stream_case = Some("device-behind-rmcp");
    let (without, with) = with_and_without_rmcp(s, b, &refused);
    for run in [&without, &with] {
        for what in ["hipStreamCreate", "hipSetDevice:1"] {
            assert_eq!(
                run.call(what),
                Some((0, "hipSuccess".into())),
                "{what}\n{run}"
            );
        }
        assert_eq!(
            run.call("hipModuleLaunchKernel"),
            Some((400, "hipErrorInvalidHandle".into())),
            "HIP 7.2.4 refuses a launch on another device's stream\n{run}"
        );
        assert!(run.model_faults().is_empty(), "{run}");
    }

    let with = run_fault(s, b, &behind);
    for what in [
        "hipSetDevice:1",
        "hipSetDevice:0:runtime",
        "hipStreamCreate",
    ] {
        assert_eq!(
            with.call(what),
            Some((0, "hipSuccess".into())),
            "{what}\n{with}"
        );
    }
    assert_eq!(
        with.call("hipDeviceSynchronize"),
        Some((700, "hipErrorIllegalAddress".into())),
        "the stream's synchronisation sees the fault\n{with}"
    );
    assert_eq!(with.model_faults(), vec![0x3e00001000], "{with}");
    let stream = with
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("stream "))
        .unwrap_or_else(|| panic!("no stream line\n{with}"))
        .to_string();
    let (text, j) = report(&with);
    assert!(
        text.contains("GPU memory fault at address 0x3e00001000 on gfx1030 (node 1,"),
        "{with}"
    );
    assert!(
        text.contains("kernels launched on HIP device 0 (this GPU) and not known to have completed, newest first (1 of 1 recorded; 0 completed at a synchronisation):"),
        "{with}"
    );
    assert!(
        text.contains(&format!(
            "  #0 {KERNEL} via hipModuleLaunchKernel: grid 1x1x1, block 64x1x1, stream {stream}, thread "
        )),
        "{with}"
    );
    assert_eq!(j["launches"]["device"], 0, "{j}");
    let l = &j["launches"]["not_completed"][0];
    assert_eq!(l["kernel"], KERNEL, "{j}");
    assert_eq!(l["stream"], stream.as_str(), "{j}");
}

/// The model faults on nothing a kernel is legitimately given: the same
/// program with a covered pointer runs to the end with every call
/// succeeding, and rmcp prints nothing.
#[test]
fn covered_pointer_raises_no_fault() {
    let test = "covered_pointer_raises_no_fault";
    let Some((s, b)) = env(test) else { return };
    let (without, with) = with_and_without_rmcp(s, b, &setup("none", true));
    for run in [&without, &with] {
        assert_eq!(run.outcome(), "exit 0", "{run}");
        assert!(run.model_faults().is_empty(), "{run}");
        assert!(
            run.calls()
                .iter()
                .all(|l| l.contains(" rc=0 name=hipSuccess")),
            "{run}"
        );
    }
    assert!(with.reports.is_empty(), "{with}");
    assert!(!with.stderr.contains("GPU memory fault"), "{with}");
}

/// (d) The RX 5700 XT (gfx1010) with HSA_OVERRIDE_GFX_VERSION=10.3.0: HIP
/// runs the code object's gfx1030 code on it, the kernel faults, and rmcp
/// names the override as a likely cause next to the out-of-bounds write.
/// Without the variable the same program runs the gfx1010 code and the
/// report names no override.
#[test]
fn rx5700xt_with_hsa_override_gfx_version() {
    let test = "rx5700xt_with_hsa_override_gfx_version";
    let Some((s, b)) = env(test) else { return };
    let mut over = setup("past-end", true);
    over.topology = "rx5700xt";
    over.gfx_override = Some("10.3.0");
    let (without, with) = with_and_without_rmcp(s, b, &over);
    assert_continues_with_illegal_address(&without);
    let (text, j) = report(&with);
    assert!(text.contains(" on gfx1030 (node 1,"), "{with}");
    assert!(
        text.contains("likely cause: HSA_OVERRIDE_GFX_VERSION=10.3.0 makes ROCm run gfx1030 code on this gfx1010 GPU (node 1;"),
        "{with}"
    );
    assert!(
        text.contains("16 bytes past the end of hipMalloc"),
        "{with}"
    );
    assert_kernel_in_flight(&text, &j, &with);
    let ids: Vec<&str> = j["causes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert!(
        ids.contains(&"hsa-override-mismatch") && ids.contains(&"out-of-bounds-past-end"),
        "{j}"
    );

    let mut plain = setup("past-end", true);
    plain.topology = "rx5700xt";
    let run = run_fault(s, b, &plain);
    assert_continues_with_illegal_address(&run);
    let (text, _) = report(&run);
    assert!(text.contains(" on gfx1010 (node 1,"), "{run}");
    assert!(!text.contains("HSA_OVERRIDE_GFX_VERSION"), "{run}");
}

/// (e) Two processes fault at once with the same RMCP_FAULT_REPORT file
/// name (no %p): each prints its own report with its own pid, and each
/// JSON report lands in a file of its own (the second one beside it at
/// <file>.<pid>-<unix time in ns>);
/// neither is overwritten.
#[test]
fn two_processes_fault_and_keep_their_own_reports() {
    let test = "two_processes_fault_and_keep_their_own_reports";
    let Some((s, b)) = env(test) else { return };
    let dir = common::tempdir("two-faults");
    let report_file = dir.join("fault.json");
    let spawn = |case: &'static str| {
        let mut cmd = Command::new(&s.loader);
        model::clear_runtime_env(&mut cmd);
        let topology = model::topology("rx6800xt");
        cmd.arg("--library-path")
            .arg(std::env::join_paths([&b.rocr, &s.libdir]).unwrap())
            .arg("--preload")
            .arg(common::librmcp())
            .arg(&b.fault)
            .arg(&b.code_object)
            .arg(case)
            .env("HSA_MODEL_TOPOLOGY", &topology)
            .env("HSA_MODEL_LIB", &b.model_lib)
            .env("HSA_ENABLE_SDMA", "0")
            .env("RMCP_SYSFS_ROOT", model::sysfs_root(&topology, "two-sysfs"))
            .env("RMCP_FAULT_REPORT", &report_file);
        cmd
    };
    // Both at once, outside the throttle (it would serialise them).
    let (r1, r2) = std::thread::scope(|sc| {
        let a = sc.spawn(|| model::output_within(&mut spawn("past-end"), RUN_TIMEOUT));
        let c = sc.spawn(|| model::output_within(&mut spawn("wild"), RUN_TIMEOUT));
        (a.join().unwrap(), c.join().unwrap())
    });
    let mut pids = Vec::new();
    for (out, addr_part) in [(&r1, "16 bytes past the end"), (&r2, "0x3e00001000")] {
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(outcome(out.status), "exit 0", "{err}");
        assert!(err.contains(addr_part), "{err}");
        let pid: u32 = err
            .lines()
            .find_map(|l| l.split(") in process ").nth(1))
            .and_then(|t| t.split(';').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no pid in\n{err}"));
        pids.push(pid);
    }
    assert_ne!(pids[0], pids[1]);
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files.len(), 2, "{files:?}");
    assert_eq!(files[0], "fault.json", "{files:?}");
    assert!(
        pids.iter()
            .any(|p| files[1].starts_with(&format!("fault.json.{p}-"))),
        "{files:?} {pids:?}"
    );
    let mut seen: Vec<u64> = files
        .iter()
        .map(|f| {
            let v: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(dir.join(f)).unwrap()).unwrap();
            v["process"]["pid"].as_u64().unwrap()
        })
        .collect();
    seen.sort_unstable();
    let mut want: Vec<u64> = pids.iter().map(|&p| p as u64).collect();
    want.sort_unstable();
    assert_eq!(seen, want);
    let _ = std::fs::remove_dir_all(&dir);
}

/// (f) A dlopen+dlsym client (fault.c built with -DFAULT_DLSYM) faults.
/// With librmcp.so preloaded alone, rmcp's hooks never saw its hipMalloc
/// or its launch: the report finds no allocation and no kernel. With
/// librmcp-audit.so as well, the report has both, as for a linked program.
/// The runtime behaves the same in all three runs.
#[test]
fn dlsym_client_fault_is_attributed_with_the_audit_mode() {
    let test = "dlsym_client_fault_is_attributed_with_the_audit_mode";
    let Some((s, b)) = env(test) else { return };
    let mut audit = setup("past-end", true);
    audit.audit_dlsym = true;
    let (without, with) = with_and_without_rmcp(s, b, &audit);
    assert_continues_with_illegal_address(&without);
    let (text, j) = report(&with);
    assert!(
        text.contains("is 16 bytes past the end of hipMalloc of 67108864 bytes"),
        "{with}"
    );
    assert_kernel_in_flight(&text, &j, &with);

    let mut preload_only = setup("past-end", true);
    preload_only.dlsym_only = true;
    let run = run_fault(s, b, &preload_only);
    assert_continues_with_illegal_address(&run);
    let (text, _) = report(&run);
    assert!(
        !text.contains("past the end of hipMalloc of 67108864"),
        "{run}"
    );
    assert!(!text.contains(KERNEL), "{run}");
}

// ------------------------------------------------------------------ fault flow

/// One cell: the result of a call, or "not reached".
fn call_cell(run: &FaultRun, what: &str) -> String {
    match run.call(what) {
        Some((0, _)) => "hipSuccess".into(),
        Some((rc, name)) => format!("{name} ({rc})"),
        None => "not reached".into(),
    }
}

/// Runs every setting with and without rmcp and writes the table.
fn fault_flow_doc(s: &Stack, b: &Built) -> String {
    let mut doc = std::fs::read_to_string(repo().join("tests/model/fault-flow.head.md"))
        .expect("tests/model/fault-flow.head.md");
    doc.push_str(
        "\n| RLIMIT_CORE | HIP_SKIP_ABORT_ON_GPU_ERROR | The process | The runtime's own message | hipDeviceSynchronize | hipGetLastError (twice) | hipMalloc after | Second faulting launch, then hipDeviceSynchronize | rmcp's `next:` line |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    let settings: Vec<(u64, Option<&'static str>)> = [0u64, 1]
        .into_iter()
        .flat_map(|core| [None, Some("0"), Some("1")].map(|v| (core, v)))
        .collect();
    let runs: Vec<(FaultRun, FaultRun)> = std::thread::scope(|sc| {
        let handles: Vec<_> = settings
            .iter()
            .map(|&(core, skip)| {
                sc.spawn(move || {
                    let mut st = setup("past-end", true);
                    st.twice = true;
                    st.core = core;
                    st.skip_abort = skip;
                    with_and_without_rmcp(s, b, &st)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for ((core, skip), (without, with)) in settings.iter().zip(&runs) {
        let process = match without.outcome().as_str() {
            "exit 0" => "continues; exits 0".to_string(),
            "SIGABRT" => "aborted (SIGABRT) in the fault handler".to_string(),
            other => other.to_string(),
        };
        let message = match without.runtime_lines() {
            l if l.is_empty() => "(none)".to_string(),
            l => l
                .iter()
                .map(|x| format!("`{x}`"))
                .collect::<Vec<_>>()
                .join("<br>"),
        };
        assert_next_line_came_true(with);
        let last = next_line(with).map_or("(no report)".to_string(), |l| format!("\"{l}\""));
        doc.push_str(&format!(
            "| {} | {} | {} | {} | {} | {}, {} | {} | {}, then {} | {} |\n",
            if *core == 0 { "0" } else { "1 byte (non-zero)" },
            skip.map_or("unset".to_string(), |v| format!("`{v}`")),
            process,
            message,
            call_cell(without, "hipDeviceSynchronize"),
            call_cell(without, "hipGetLastError"),
            call_cell(without, "hipGetLastError:again"),
            call_cell(without, "hipMalloc:after"),
            call_cell(without, "hipModuleLaunchKernel:second"),
            call_cell(without, "hipDeviceSynchronize:second"),
            last,
        ));
        // One fault reached the model and one report came out of rmcp,
        // whatever happened next.
        assert_eq!(without.model_faults().len(), 1, "{without}");
        assert_eq!(with.json_reports().len(), 1, "{with}");
    }

    // The order, in an aborting run with HIP's log on: HIP's handler ran (it
    // logs "Memory Fault Error"), and rmcp's report, written with write(2)
    // before its handler returns, precedes ROCr's message. Where HIP's log
    // line lands in stderr is not its call order (it is buffered: it came
    // before and after ROCr's message in different runs), so it is not used.
    let mut st = setup("past-end", true);
    st.skip_abort = Some("0");
    st.hip_log = true;
    let logged = run_fault(s, b, &st);
    assert_eq!(logged.outcome(), "SIGABRT", "{logged}");
    assert!(logged.stderr.contains("Memory Fault Error"), "{logged}");
    let report_at = logged.stderr.find("rmcp: GPU memory fault at address");
    let rocr_at = logged.stderr.find("Memory access fault by GPU node-");
    assert!(
        matches!((report_at, rocr_at), (Some(r), Some(m)) if r < m),
        "{logged}"
    );
    doc.push_str("\n## Who runs when\n\n");
    doc.push_str(
        "ROCr's event thread receives the fault and calls every registered system-event handler, in the order they were registered, then, only if none of them returned success, prints its message and aborts. rmcp registers its handler from its `hsa_init` hook, which HIP's initialisation calls before HIP registers its own, so rmcp's handler runs first (read in the code; HIP's log is buffered, so stderr cannot show the order of the two). What the runs show: with `HIP_SKIP_ABORT_ON_GPU_ERROR=0` and `AMD_LOG_LEVEL=1`, HIP's handler ran (it logged `Memory Fault Error`) and rmcp's report came before ROCr's message, in every aborting run.\n\n\
         So rmcp's report is written before the runtime decides, and rmcp cannot ask HIP: what rmcp says comes next is its reading of the same two settings HIP reads. rmcp returns \"not handled\" (an error status) for every event, which changes nothing: ROCr aborts only when no handler returns success, and HIP's answer alone decides that.\n\n\
"
    );
    doc.push_str(
        "## A second fault\n\n\
         In every run that continued, the second launch was refused by HIP itself (`hipErrorIllegalAddress`): after a fault HIP fails every call, so no second kernel reaches the GPU through HIP, and the model raised one fault per process. ROCr 7.2.4 also stops listening for memory faults after the first one (its VM-fault handler returns `false`, which removes it from the event thread's list; read in the source, not provoked here).\n",
    );
    doc
}

/// docs/fault-flow.md is what the runs above produce.
#[test]
fn fault_flow_table_is_current() {
    let test = "fault_flow_table_is_current";
    let Some((s, b)) = env(test) else { return };
    let doc = fault_flow_doc(s, b);
    model::check_generated_doc(
        "docs/fault-flow.md",
        &doc,
        "RMCP_BLESS=1 cargo test --all-features --test model_fault fault_flow_table_is_current",
    );
}

// ------------------------------------------------------------------ rmcp run --on-gpu-fault cpu

/// `rmcp run --on-gpu-fault cpu -- <7.2.4 loader> --library-path ... ARGS`
/// on the faulting model with `env`; returns (exit code, stdout, stderr).
fn rmcp_run_cpu(
    s: &Stack,
    b: &Built,
    args: &[&std::ffi::OsStr],
    env: &[(&str, &str)],
) -> (i32, String, String) {
    let state = common::tempdir("run-cpu-state");
    let topology = model::topology("rx6800xt");
    let mut cmd = common::Cli::new(&["run", "--on-gpu-fault", "cpu", "--"]).into_command();
    model::clear_runtime_env(&mut cmd);
    cmd.current_dir(&state)
        .arg(&s.loader)
        .arg("--library-path")
        .arg(std::env::join_paths([&b.rocr, &s.libdir]).unwrap())
        .args(args)
        .env("RMCP_LIBRARY", common::librmcp())
        .env("XDG_STATE_HOME", &state)
        .env("HSA_MODEL_TOPOLOGY", &topology)
        .env("HSA_MODEL_LIB", &b.model_lib)
        .env("HSA_ENABLE_SDMA", "0")
        .env(
            "RMCP_SYSFS_ROOT",
            model::sysfs_root(&topology, "run-cpu-sysfs"),
        )
        .envs(env.iter().copied());
    let out = throttled(|| model::output_within(&mut cmd, RUN_TIMEOUT));
    let _ = std::fs::remove_dir_all(&state);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const RERUN: &str = "re-running on CPU with HIP_VISIBLE_DEVICES=-1 CUDA_VISIBLE_DEVICES=-1";

/// The program aborts in the fault handler (HIP_SKIP_ABORT_ON_GPU_ERROR=0):
/// rmcp run shows the report it collected and runs the program again with
/// no GPU visible, where HIP finds no device.
#[test]
fn rmcp_run_on_gpu_fault_cpu_after_an_abort() {
    let test = "rmcp_run_on_gpu_fault_cpu_after_an_abort";
    let Some((s, b)) = env(test) else { return };
    let (code, out, err) = rmcp_run_cpu(
        s,
        b,
        &[
            b.fault.as_os_str(),
            b.code_object.as_os_str(),
            "past-end".as_ref(),
        ],
        &[("HIP_SKIP_ABORT_ON_GPU_ERROR", "0")],
    );
    let report = format!("exit {code}\n--- stdout\n{out}--- stderr\n{err}");
    assert!(
        err.contains("Memory access fault by GPU node-1"),
        "{report}"
    );
    assert!(
        err.contains("rmcp: report: GPU memory fault at address ")
            && err.contains("(killed by signal 6, SIGABRT); ")
            && err.contains(RERUN),
        "{report}"
    );
    // First run: the device; second run: none.
    assert!(
        out.contains("call hipModuleLoadData rc=0 name=hipSuccess\n"),
        "{report}"
    );
    assert!(
        out.contains("call hipModuleLoadData rc=100 name=hipErrorNoDevice\n"),
        "{report}"
    );
    assert_eq!(code, 0, "{report}");
}

/// A Python program that calls HIP through ctypes raises on
/// hipErrorIllegalAddress and exits 1 (ROCm 7's default: the process
/// continues after the fault): rmcp run sees the report its audit library
/// let librmcp.so write, and re-runs the program with no GPU; there the
/// program fails again (it has no CPU path), and rmcp run exits with its status.
#[test]
fn rmcp_run_on_gpu_fault_cpu_after_illegal_address_in_python() {
    let test = "rmcp_run_on_gpu_fault_cpu_after_illegal_address_in_python";
    let Some((s, b)) = env(test) else { return };
    let script = repo().join("tests/programs/hip_fault.py");
    let (code, _out, err) = rmcp_run_cpu(
        s,
        b,
        &[
            "/usr/bin/python3".as_ref(),
            script.as_os_str(),
            b.code_object.as_os_str(),
        ],
        &[],
    );
    let report = format!("exit {code}\n--- stderr\n{err}");
    assert!(
        err.contains("RuntimeError: hipDeviceSynchronize failed: hipErrorIllegalAddress (700)"),
        "{report}"
    );
    assert!(
        err.contains("16 bytes past the end of hipMalloc of 67108864 bytes"),
        "{report}"
    );
    assert!(
        err.contains("(exit status 1); ") && err.contains(RERUN),
        "{report}"
    );
    assert!(
        err.contains("RuntimeError: hipModuleLoadData failed: hipErrorNoDevice (100)"),
        "{report}"
    );
    assert_eq!(code, 1, "{report}");
}

/// The Python program catches the error and exits 0: rmcp run re-runs
/// nothing and says why.
#[test]
fn rmcp_run_on_gpu_fault_cpu_when_the_program_handles_the_error() {
    let test = "rmcp_run_on_gpu_fault_cpu_when_the_program_handles_the_error";
    let Some((s, b)) = env(test) else { return };
    let script = repo().join("tests/programs/hip_fault.py");
    let (code, out, err) = rmcp_run_cpu(
        s,
        b,
        &[
            "/usr/bin/python3".as_ref(),
            script.as_os_str(),
            b.code_object.as_os_str(),
            "--catch".as_ref(),
        ],
        &[],
    );
    let report = format!("exit {code}\n--- stdout\n{out}--- stderr\n{err}");
    assert!(
        out.contains("caught: hipDeviceSynchronize failed: hipErrorIllegalAddress (700)"),
        "{report}"
    );
    assert!(
        err.contains("exited 0 after 1 GPU memory fault report(s) from librmcp.so (it handled the error itself); not re-running it on the CPU"),
        "{report}"
    );
    assert!(!err.contains(RERUN), "{report}");
    assert_eq!(out.matches("caught: ").count(), 1, "{report}");
    assert_eq!(code, 0, "{report}");
}
