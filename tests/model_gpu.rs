//! The real HIP 7.2.4 and ROCr 7.2.4 (Debian experimental, unpacked by
//! scripts/setup-rocm.sh into .rocm/exp-root) running here against a modelled
//! GPU, with and without librmcp.so: the KFD allocation flags every entry
//! point reaches the kernel driver with.
//!
//! ROCr 7.2.4 bundles libhsakmt, whose model mode (HSA_MODEL_TOPOLOGY = a KFD
//! sysfs tree, HSA_MODEL_LIB = a model library) replaces the KFD ioctls. Our
//! model (tests/model/model_gpu.c) logs every KFD allocation (address, size,
//! flags) and retires the AQL packets of the queues the runtime creates, so
//! runtime waits return; kernels are not executed. The probe
//! (tests/model/probe.c) calls every row of the README's "What rmcp changes"
//! table and brackets each call with marks in the model's log, so each
//! returned pointer is joined with the KFD allocation made for it.
//!
//! Topologies (tests/model/topologies/, see SOURCES.md): RX 6800 XT (gfx1030)
//! and RX 5700 XT (gfx1010), both targets, run on .rocm/exp-gfx10 (ROCr with
//! the trap-handler ioctl call patched out, see docs/verified-where.md);
//! RX 7900 XT (gfx1100, not a target) on the unpatched ROCr; and a
//! gfx1100 + gfx1030 system, which model mode cannot run (it serves one GPU:
//! `two_gpus_abort_in_model_mode_alike_with_and_without_rmcp`) and which
//! `rmcp doctor` reads.
//!
//! docs/driver-flags.md is generated here; a stale copy fails
//! `driver_flags_table_is_current` (RMCP_BLESS=1 rewrites it).
//!
//! Without .rocm/exp-root every test prints "skipped" and passes, unless CI
//! or RMCP_REQUIRE_REAL_ROCM=1 is set, which makes it fail.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

mod common;

use common::model::{self, throttled, Stack};

use std::collections::{BTreeMap, HashMap};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

const SETUP_HINT: &str = "run scripts/setup-rocm.sh";
const RUN_TIMEOUT: Duration = Duration::from_secs(180);

// ------------------------------------------------------------------ KFD flags

const KFD_FLAGS: &[(u32, &str)] = &[
    (1 << 31, "WRITABLE"),
    (1 << 30, "EXECUTABLE"),
    (1 << 29, "PUBLIC"),
    (1 << 28, "NO_SUBSTITUTE"),
    (1 << 27, "AQL_QUEUE_MEM"),
    (1 << 26, "COHERENT"),
    (1 << 25, "UNCACHED"),
    (1 << 24, "EXT_COHERENT"),
    (1 << 23, "CONTIGUOUS"),
    (1 << 4, "MMIO_REMAP"),
    (1 << 3, "DOORBELL"),
    (1 << 2, "USERPTR"),
    (1 << 1, "GTT"),
    (1 << 0, "VRAM"),
];
const COHERENT: u32 = 1 << 26;
const UNCACHED: u32 = 1 << 25;
const EXT_COHERENT: u32 = 1 << 24;
/// The bits that make an allocation coherent / fine-grained for the driver.
const COHERENCE_BITS: u32 = COHERENT | UNCACHED | EXT_COHERENT;

/// `VRAM|PUBLIC|...` for a KFD flag word, most significant bit first after the
/// memory domain.
fn flag_names(flags: u32) -> String {
    let mut domain = Vec::new();
    let mut attrs = Vec::new();
    let mut rest = flags;
    for &(bit, name) in KFD_FLAGS {
        if flags & bit != 0 {
            rest &= !bit;
            if bit <= 1 << 4 {
                domain.push(name);
            } else {
                attrs.push(name);
            }
        }
    }
    domain.reverse();
    domain.extend(attrs);
    if rest != 0 {
        domain.push("?");
    }
    if domain.is_empty() {
        "0".into()
    } else {
        domain.join("\\|")
    }
}

// ------------------------------------------------------------------ setup

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Says why a test did not run, or fails when CI requires the real runtimes.
fn skip(test: &str, why: &str) {
    common::skip_test(&format!("model_gpu::{test}"), why, SETUP_HINT);
}

/// The stack and the built programs, or None after a skip.
fn env(test: &str) -> Option<(&'static Stack, &'static Built)> {
    static STACK: OnceLock<Result<Stack, String>> = OnceLock::new();
    match STACK.get_or_init(model::stack) {
        Ok(s) => Some((s, built(s))),
        Err(why) => {
            skip(test, why);
            None
        }
    }
}

/// The model library and the probe in its three load modes.
struct Built {
    model_lib: PathBuf,
    probe: PathBuf,
    module: PathBuf,
    host: PathBuf,
    direct: PathBuf,
    /// librccl.so.1: a library named like RCCL making HIP allocations.
    rccl: PathBuf,
    rmcp_dir: PathBuf,
    logs: PathBuf,
}

fn built(s: &Stack) -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = common::target_dir()
            .join("rmcp-fixtures/model_gpu")
            .join(std::process::id().to_string());
        let _ = std::fs::remove_dir_all(&dir);
        let rmcp_dir = dir.join("rmcp");
        let logs = dir.join("logs");
        std::fs::create_dir_all(&rmcp_dir).expect("create fixture dir");
        std::fs::create_dir_all(&logs).expect("create log dir");
        let lib = common::librmcp();
        let _ = std::fs::remove_file(rmcp_dir.join("librmcp.so"));
        std::os::unix::fs::symlink(&lib, rmcp_dir.join("librmcp.so")).expect("symlink librmcp");
        let b = Built {
            model_lib: dir.join("libmodel_gpu.so"),
            probe: dir.join("probe"),
            module: dir.join("libprobe_module.so"),
            host: dir.join("host"),
            direct: dir.join("probe_direct"),
            rccl: dir.join("librccl.so.1"),
            rmcp_dir,
            logs,
        };
        let t = |p: &str| repo().join("tests").join(p);
        let lr = format!("-L{}", b.rmcp_dir.display());
        let hip_owned: Vec<String> =
            [s.hip_include_args(), s.hip_link_args(&["-lhsa-runtime64"])].concat();
        let hip: Vec<&str> = hip_owned.iter().map(String::as_str).collect();
        std::thread::scope(|sc| {
            sc.spawn(|| common::compile_c(&b.model_lib, &[t("model/model_gpu.c")], &["-shared"]));
            sc.spawn(|| common::compile_c(&b.probe, &[t("model/probe.c")], &hip));
            sc.spawn(|| {
                let mut a = vec!["-shared", "-DPROBE_MODULE"];
                a.extend_from_slice(&hip);
                common::compile_c(&b.module, &[t("model/probe.c")], &a)
            });
            sc.spawn(|| common::compile_c(&b.host, &[t("real/host.c")], &["-ldl"]));
            sc.spawn(|| {
                let mut a = vec!["-DROCMLIKE_HIP", "-shared", "-Wl,-soname,librccl.so.1"];
                a.extend_from_slice(&hip[2..]); // the link arguments alone
                common::compile_c(&b.rccl, &[t("programs/rocmlike_lib.c")], &a)
            });
            sc.spawn(|| {
                // Mode (c): librmcp linked before the runtime.
                let mut a = vec!["-Wl,--no-as-needed", &lr, "-lrmcp"];
                a.extend_from_slice(&hip);
                common::compile_c(&b.direct, &[t("model/probe.c")], &a)
            });
        });
        b
    })
}

// ------------------------------------------------------------------ topologies

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Topo {
    Rx6800xt,
    Rx5700xt,
    Rx7900xt,
    Rx7900xtRx6800xt,
}

impl Topo {
    fn dir(self) -> &'static str {
        match self {
            Topo::Rx6800xt => "rx6800xt",
            Topo::Rx5700xt => "rx5700xt",
            Topo::Rx7900xt => "rx7900xt",
            Topo::Rx7900xtRx6800xt => "rx7900xt-rx6800xt",
        }
    }
    fn path(self) -> PathBuf {
        model::topology(self.dir())
    }
    /// gcnArchName per HIP device, as the runtime must report it.
    fn archs(self) -> &'static [&'static str] {
        match self {
            Topo::Rx6800xt => &["gfx1030"],
            Topo::Rx5700xt => &["gfx1010"],
            Topo::Rx7900xt => &["gfx1100"],
            Topo::Rx7900xtRx6800xt => &["gfx1100", "gfx1030"],
        }
    }
    /// Whether rmcp's default targets cover the device.
    fn targeted(arch: &str) -> bool {
        matches!(arch, "gfx1010" | "gfx1030")
    }
    /// A gfx10 node makes ROCr 7.2.4 issue the trap-handler ioctl: use the
    /// patched copy.
    fn needs_gfx10_rocr(self) -> bool {
        self != Topo::Rx7900xt
    }
}

/// How librmcp is (or is not) in the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Load {
    /// The probe executable, no rmcp.
    Plain,
    /// (a) the probe executable with librmcp preloaded by the loader.
    Preload,
    /// The probe as a module opened with dlopen(RTLD_LOCAL), no rmcp.
    ModulePlain,
    /// (b) the same module, librmcp preloaded into the host (the PyTorch case).
    Module,
    /// (c) the probe linked to librmcp before libamdhip64.
    Direct,
}

impl Load {
    fn has_rmcp(self) -> bool {
        matches!(self, Load::Preload | Load::Module | Load::Direct)
    }
    /// The run without rmcp this one is compared with.
    fn baseline(self) -> Load {
        match self {
            Load::Module | Load::ModulePlain => Load::ModulePlain,
            _ => Load::Plain,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    topo: Topo,
    load: Load,
    /// RMCP_MODE (None: not set, for runs without rmcp).
    mode: Option<&'static str>,
    hostregister: bool,
    /// Run gfx10 on the stock ROCr, not the patched copy.
    stock_rocr: bool,
    /// Run on the ROCr built from source whose model mode can fault
    /// (.rocm/exp-fault), not Debian's.
    built_rocr: bool,
    /// HSA_OVERRIDE_GFX_VERSION for the run.
    gfx_override: Option<&'static str>,
    /// HSA_OVERRIDE_GFX_VERSION_<node> for the run: (node, value).
    node_override: Option<(u32, &'static str)>,
}

// ------------------------------------------------------------------ a run

#[derive(Clone, Debug)]
struct CallLine {
    label: String,
    dev: i32,
    entry: String,
    rc: i64,
    ptr: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Event {
    Mark {
        label: String,
        phase: String,
    },
    Alloc {
        node: u32,
        va: u64,
        size: u64,
        flags: u32,
    },
    Free {
        node: u32,
        va: u64,
        size: u64,
        flags: Option<u32>,
    },
    Queue {
        node: u32,
        qtype: u32,
    },
    Packet {
        ptype: u32,
    },
}

/// What reached the driver for one probe call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kfd {
    /// The call returned an error.
    Failed(i64),
    /// The pointer lies in a KFD allocation made during the call.
    Alloc { node: u32, size: u64, flags: u32 },
    /// No KFD allocation during the call: the runtime sub-allocated it from
    /// memory it already had (flags of that memory).
    Sub { flags: u32 },
    /// The pointer is the program's own memory and no KFD allocation holds
    /// it (hipHostRegister: locked through the SVM ioctl, which model mode
    /// accepts without calling the model).
    NoAlloc,
}

impl Kfd {
    fn flags(self) -> Option<u32> {
        match self {
            Kfd::Alloc { flags, .. } | Kfd::Sub { flags } => Some(flags),
            Kfd::Failed(_) | Kfd::NoAlloc => None,
        }
    }
    fn cell(self) -> String {
        match self {
            Kfd::Failed(rc) => format!("(returns {rc})"),
            Kfd::Alloc { flags, .. } => format!("`{}`", flag_names(flags)),
            Kfd::Sub { flags } => format!("(sub-allocated from `{}`)", flag_names(flags)),
            Kfd::NoAlloc => "(no KFD allocation: SVM ioctl, not modelled)".into(),
        }
    }
}

struct ProbeRun {
    key: Key,
    command: String,
    status: ExitStatus,
    stdout: String,
    stderr: String,
    calls: Vec<CallLine>,
    events: Vec<Event>,
    /// label -> KFD result, in call order.
    kfd: Vec<(String, Kfd)>,
    /// (node, size, flags) of every KFD allocation not made for a probe call.
    runtime_allocs: Vec<RuntimeAlloc>,
}

impl std::fmt::Display for ProbeRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:?}\ncommand: {}\nstatus: {:?}\n--- stdout\n{}--- stderr\n{}",
            self.key, self.command, self.status, self.stdout, self.stderr
        )
    }
}

fn num(v: &str) -> Option<u64> {
    match v.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None if v == "(nil)" => Some(0),
        None => v.parse().ok(),
    }
}

/// `word key=value key=value` (the last key may hold spaces when it is `text`).
fn fields(line: &str) -> (String, BTreeMap<String, String>) {
    let (head, rest) = line.split_once(' ').unwrap_or((line, ""));
    let (rest, text) = match rest.find(" text=") {
        Some(i) => (&rest[..i], Some(&rest[i + 6..])),
        None => match rest.strip_prefix("text=") {
            Some(t) => ("", Some(t)),
            None => (rest, None),
        },
    };
    let mut m: BTreeMap<String, String> = rest
        .split_whitespace()
        .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.into(), v.into())))
        .collect();
    if let Some(t) = text {
        m.insert("text".into(), t.into());
    }
    (head.to_string(), m)
}

impl ProbeRun {
    fn lines(&self, word: &str) -> Vec<BTreeMap<String, String>> {
        self.stdout
            .lines()
            .map(fields)
            .filter(|(w, _)| w == word)
            .map(|(_, m)| m)
            .collect()
    }
    fn value(&self, word: &str, key: &str, want: &str, field: &str) -> Option<String> {
        self.lines(word)
            .into_iter()
            .find(|m| m.get(key).map(String::as_str) == Some(want))
            .and_then(|m| m.get(field).cloned())
    }
    fn kfd_of(&self, label: &str) -> Option<Kfd> {
        self.kfd.iter().find(|(l, _)| l == label).map(|(_, k)| *k)
    }
    /// The probe succeeded and HIP reported exactly one GPU, whose
    /// gcnArchName starts with `arch`.
    fn assert_one_gpu_named(&self, arch: &str) {
        assert!(self.status.success(), "{self}");
        let archs = self.archs();
        assert!(
            archs.len() == 1 && archs[0].starts_with(arch),
            "{archs:?}\n{self}"
        );
    }

    fn archs(&self) -> Vec<String> {
        self.lines("device")
            .into_iter()
            .map(|m| m.get("arch").cloned().unwrap_or_default())
            .collect()
    }
    /// rmcp's stats per entry point: (calls, rewritten).
    fn stats(&self) -> BTreeMap<String, (u64, u64)> {
        self.lines("stats")
            .into_iter()
            .map(|m| {
                (
                    m["entry"].clone(),
                    (num(&m["calls"]).unwrap(), num(&m["rewritten"]).unwrap()),
                )
            })
            .collect()
    }
    /// The probe's own calls per entry point.
    fn counts(&self) -> BTreeMap<String, u64> {
        self.lines("count")
            .into_iter()
            .map(|m| (m["entry"].clone(), num(&m["calls"]).unwrap()))
            .collect()
    }
    /// The exit summary rmcp prints at RMCP_LOG=info: entry -> (calls, rewritten).
    fn summary(&self) -> Option<BTreeMap<String, (u64, u64)>> {
        let line = self
            .stderr
            .lines()
            .find(|l| l.starts_with("rmcp: info: summary: calls/rewritten: "))?;
        let body = line
            .trim_start_matches("rmcp: info: summary: calls/rewritten: ")
            // Entries are joined with ", "; the first "; " ends the list
            // (GPU memory faults, devices follow).
            .split("; ")
            .next()?;
        if body == "no calls" {
            return Some(BTreeMap::new());
        }
        Some(
            body.split(", ")
                .filter_map(|part| {
                    let (name, cr) = part.rsplit_once(' ')?;
                    let (c, r) = cr.split_once('/')?;
                    Some((name.to_string(), (c.parse().ok()?, r.parse().ok()?)))
                })
                .collect(),
        )
    }
}

fn parse_events(log: &str) -> Vec<Event> {
    log.lines()
        .filter_map(|l| {
            let (w, m) = fields(l);
            let n = |k: &str| m.get(k).and_then(|v| num(v));
            Some(match w.as_str() {
                "mark" => Event::Mark {
                    label: m.get("label")?.clone(),
                    phase: m.get("phase")?.clone(),
                },
                "alloc" => Event::Alloc {
                    node: n("node")? as u32,
                    va: n("va")?,
                    size: n("size")?,
                    flags: n("flags")? as u32,
                },
                "free" => Event::Free {
                    node: n("node")? as u32,
                    va: n("va")?,
                    size: n("size")?,
                    flags: n("flags").map(|f| f as u32),
                },
                "queue" => Event::Queue {
                    node: n("node")? as u32,
                    qtype: n("type")? as u32,
                },
                "packet" => Event::Packet {
                    ptype: n("type")? as u32,
                },
                _ => return None,
            })
        })
        .collect()
}

/// (KFD node, size, flags) of an allocation the runtime made for itself.
type RuntimeAlloc = (u32, u64, u32);

/// Joins the probe's calls with the model's log.
fn attribute(calls: &[CallLine], events: &[Event]) -> (Vec<(String, Kfd)>, Vec<RuntimeAlloc>) {
    let mut owned = vec![false; events.len()];
    let mut out = Vec::new();
    for c in calls {
        if c.rc != 0 || c.ptr == 0 {
            out.push((c.label.clone(), Kfd::Failed(c.rc)));
            continue;
        }
        let begin = events.iter().position(
            |e| matches!(e, Event::Mark { label, phase } if *label == c.label && phase == "begin"),
        );
        let end = events.iter().position(
            |e| matches!(e, Event::Mark { label, phase } if *label == c.label && phase == "end"),
        );
        let (Some(b), Some(e)) = (begin, end) else {
            panic!("no marks for {} in the model log", c.label);
        };
        let inside = (b..e).find(|&i| {
            matches!(events[i], Event::Alloc { va, size, .. } if va <= c.ptr && c.ptr < va + size)
        });
        let kfd = match inside {
            Some(i) => {
                owned[i] = true;
                let Event::Alloc {
                    node, size, flags, ..
                } = events[i]
                else {
                    unreachable!()
                };
                Kfd::Alloc { node, size, flags }
            }
            None => {
                // The newest earlier allocation that contains the pointer.
                let flags: Option<u32> = events[..b].iter().rev().find_map(|e| match *e {
                    Event::Alloc {
                        va, size, flags, ..
                    } if va <= c.ptr && c.ptr < va + size => Some(flags),
                    _ => None,
                });
                match flags {
                    Some(flags) => Kfd::Sub { flags },
                    None if c.entry == "hipHostRegister" => Kfd::NoAlloc,
                    None => panic!("{}: pointer {:#x} is in no KFD allocation", c.label, c.ptr),
                }
            }
        };
        out.push((c.label.clone(), kfd));
    }
    let mut runtime: Vec<RuntimeAlloc> = events
        .iter()
        .enumerate()
        .filter(|(i, _)| !owned[*i])
        .filter_map(|(_, e)| match *e {
            Event::Alloc {
                node, size, flags, ..
            } => Some((node, size, flags)),
            _ => None,
        })
        .collect();
    runtime.sort();
    (out, runtime)
}

fn run_probe(s: &Stack, b: &Built, key: &Key) -> ProbeRun {
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let log = b.logs.join(format!("model-{n}.log"));
    let _ = std::fs::remove_file(&log);
    let mut libpath = Vec::new();
    if key.built_rocr {
        libpath.push(model::fault_rocr().unwrap_or_else(|e| panic!("{e}")));
    } else if key.topo.needs_gfx10_rocr() && !key.stock_rocr {
        libpath.push(s.gfx10.clone());
    }
    libpath.push(s.libdir.clone());
    if key.load == Load::Direct {
        libpath.push(b.rmcp_dir.clone());
    }
    let mut cmd = Command::new(&s.loader);
    model::clear_runtime_env(&mut cmd);
    cmd.arg("--library-path")
        .arg(std::env::join_paths(&libpath).unwrap());
    if matches!(key.load, Load::Preload | Load::Module) {
        cmd.arg("--preload").arg(b.rmcp_dir.join("librmcp.so"));
    }
    match key.load {
        Load::Plain | Load::Preload => {
            cmd.arg(&b.probe);
        }
        Load::ModulePlain | Load::Module => {
            cmd.arg(&b.host).arg(&b.module);
        }
        Load::Direct => {
            cmd.arg(&b.direct);
        }
    }
    let topology = if key.hostregister {
        without_svm(&key.topo.path(), &b.logs.join(format!("topology-{n}")))
    } else {
        key.topo.path()
    };
    cmd.env("HSA_MODEL_TOPOLOGY", &topology)
        .env("HSA_MODEL_LIB", &b.model_lib)
        .env("RMCP_MODEL_LOG", &log)
        .env("PROBE_RCCL_LIB", &b.rccl)
        // The model serves AQL queues only: copies then run as blit kernels.
        .env("HSA_ENABLE_SDMA", "0")
        // Completion signals without KFD events (ROCr polls them): with
        // interrupt signals, ROCr can see a signal's value reach its target
        // and destroy its event before the model's set_event call, and
        // libhsakmt's model_set_event then aborts ("event_id = N is not
        // allocated"; seen once in about 100 runs). On hardware that
        // interrupt goes to the kernel driver, not to a callback in the process.
        .env("HSA_ENABLE_INTERRUPT", "0")
        .env("RMCP_LOG", "info");
    if let Some(m) = key.mode {
        cmd.env("RMCP_MODE", m);
    }
    if key.hostregister {
        cmd.env("PROBE_WHAT", "hostregister");
    }
    if let Some(v) = key.gfx_override {
        cmd.env("HSA_OVERRIDE_GFX_VERSION", v);
    }
    if let Some((node, v)) = key.node_override {
        cmd.env(format!("HSA_OVERRIDE_GFX_VERSION_{node}"), v);
    }
    let command = format!("{cmd:?}");
    let out = model::output_within(&mut cmd, RUN_TIMEOUT);
    let status = out.status;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    let calls: Vec<CallLine> = stdout
        .lines()
        .map(fields)
        .filter(|(w, _)| w == "call")
        .map(|(_, m)| CallLine {
            label: m["label"].clone(),
            dev: m["dev"].parse().unwrap(),
            entry: m["entry"].clone(),
            rc: m["rc"].parse().unwrap(),
            ptr: num(&m["ptr"]).unwrap_or(0),
        })
        .collect();
    let events = parse_events(&log_text);
    let (kfd, runtime_allocs) = if key.hostregister {
        (Vec::new(), Vec::new())
    } else {
        attribute(&calls, &events)
    };
    ProbeRun {
        key: key.clone(),
        command,
        status,
        stdout,
        stderr,
        calls,
        events,
        kfd,
        runtime_allocs,
    }
}

/// A copy of a topology whose GPU nodes do not report SVMAPISupported
/// (capability bit 27): ROCr then locks host memory with a USERPTR
/// allocation instead of the SVM ioctl.
fn without_svm(src: &std::path::Path, dst: &std::path::Path) -> PathBuf {
    fn copy(src: &std::path::Path, dst: &std::path::Path) {
        std::fs::create_dir_all(dst).unwrap();
        for e in std::fs::read_dir(src).unwrap().flatten() {
            let to = dst.join(e.file_name());
            if e.file_type().unwrap().is_dir() {
                copy(&e.path(), &to);
            } else if e.file_name() == "properties" {
                let text = std::fs::read_to_string(e.path()).unwrap();
                let text: String = text
                    .lines()
                    .map(|l| match l.strip_prefix("capability ") {
                        Some(v) => {
                            format!("capability {}\n", v.parse::<u32>().unwrap() & !(1 << 27))
                        }
                        None => format!("{l}\n"),
                    })
                    .collect();
                std::fs::write(&to, text).unwrap();
            } else {
                std::fs::copy(e.path(), &to).unwrap();
            }
        }
    }
    let _ = std::fs::remove_dir_all(dst);
    copy(src, dst);
    dst.to_path_buf()
}

/// Each scenario runs once per test binary, whichever test asks first.
fn probe(s: &'static Stack, b: &'static Built, key: Key) -> Arc<ProbeRun> {
    type Slot = Arc<OnceLock<Arc<ProbeRun>>>;
    static RUNS: OnceLock<Mutex<HashMap<Key, Slot>>> = OnceLock::new();
    let slot = RUNS
        .get_or_init(Default::default)
        .lock()
        .unwrap()
        .entry(key.clone())
        .or_default()
        .clone();
    slot.get_or_init(|| Arc::new(throttled(|| run_probe(s, b, &key))))
        .clone()
}

fn key(topo: Topo, load: Load, mode: Option<&'static str>) -> Key {
    Key {
        topo,
        load,
        mode,
        hostregister: false,
        stock_rocr: false,
        built_rocr: false,
        gfx_override: None,
        node_override: None,
    }
}

// ------------------------------------------------------------------ expectations

/// Rows rmcp rewrites on a target (README, "What rmcp changes"). Calls made
/// from inside a ROCm library (librccl) are never rewritten.
fn rewritable(label: &str) -> bool {
    if label.starts_with("librccl:") {
        return false;
    }
    let base = label.split('@').next().unwrap();
    let base = base.rsplit(':').next().unwrap();
    matches!(
        base,
        "hipHostMalloc(0)"
            | "hipHostMalloc(Mapped)"
            | "hipHostMalloc(Coherent)"
            | "hipHostMalloc(NumaUser)"
            | "hipHostAlloc(0)"
            | "hipHostAlloc(Mapped)"
            | "hipMemAllocHost"
            | "hipExtHostAlloc(0)"
            | "hipExtMallocWithFlags(Finegrained)"
            | "hipExtMallocWithFlags(Uncached)"
            | "hipMallocManaged(AttachGlobal)"
    ) || (base.starts_with("hsa_pool(gfx")
        && (base.ends_with(",fine)") || base.ends_with(",extfine)")))
}

/// Whether rmcp must rewrite this call in this run.
fn expect_rewrite(run: &ProbeRun, call: &CallLine) -> bool {
    let Some(mode) = run.key.mode.filter(|_| run.key.load.has_rmcp()) else {
        return false;
    };
    if mode == "off" || !rewritable(&call.label) {
        return false;
    }
    if mode == "force" {
        return true;
    }
    let archs = run.key.topo.archs();
    if let Some(agent) = call.label.strip_prefix("hsa_pool(") {
        let arch = agent.split(',').next().unwrap();
        return Topo::targeted(arch);
    }
    let host = call.label.contains("Host") && !call.label.starts_with("hipMemcpy-device");
    if host {
        archs.iter().any(|a| Topo::targeted(a))
    } else {
        Topo::targeted(archs[call.dev as usize])
    }
}

/// The KFD flags rmcp's rewrite must produce from the baseline's.
fn rewritten_flags(base: u32) -> u32 {
    base & !COHERENCE_BITS
}

/// Checks one run with rmcp against its baseline; returns a description of
/// every mismatch.
fn check_against_baseline(run: &ProbeRun, base: &ProbeRun) -> Vec<String> {
    let mut bad = Vec::new();
    let mut err = |m: String| bad.push(m);
    if !run.status.success() || !run.stdout.contains("probe: done") {
        err(format!(
            "the probe did not finish (status {:?})",
            run.status
        ));
        return bad;
    }
    if run.stderr.contains("rmcp: error") || run.stderr.contains("rmcp: warn") {
        err("rmcp printed a warning or an error".into());
    }
    // The devices the runtime reports, which rmcp decides on.
    let archs: Vec<String> = run
        .archs()
        .iter()
        .map(|a| a.split(':').next().unwrap().to_string())
        .collect();
    if archs != run.key.topo.archs() {
        err(format!(
            "devices {archs:?}, expected {:?}",
            run.key.topo.archs()
        ));
    }
    // Same calls, same return codes.
    let rcs = |r: &ProbeRun| {
        r.calls
            .iter()
            .map(|c| (c.label.clone(), c.rc))
            .collect::<Vec<_>>()
    };
    if rcs(run) != rcs(base) {
        err(format!(
            "return codes differ:\n  with:    {:?}\n  without: {:?}",
            rcs(run),
            rcs(base)
        ));
    }
    let memcpy = |r: &ProbeRun| {
        r.lines("memcpy")
            .into_iter()
            .map(|m| (m["label"].clone(), m["rc"].clone()))
            .collect::<Vec<_>>()
    };
    if memcpy(run) != memcpy(base) {
        err(format!(
            "hipMemcpy return codes differ: {:?} vs {:?}",
            memcpy(run),
            memcpy(base)
        ));
    }
    // KFD flags per call.
    for c in &run.calls {
        let (Some(got), Some(want)) = (run.kfd_of(&c.label), base.kfd_of(&c.label)) else {
            err(format!("{}: missing in one run", c.label));
            continue;
        };
        let expected = match (want, expect_rewrite(run, c)) {
            (Kfd::Alloc { node, size, flags }, true) => Kfd::Alloc {
                node,
                size,
                flags: rewritten_flags(flags),
            },
            (Kfd::Sub { flags }, true) => Kfd::Sub {
                flags: rewritten_flags(flags),
            },
            (k, _) => k,
        };
        if got != expected {
            err(format!(
                "{}: KFD {} but expected {} (without rmcp: {})",
                c.label,
                got.cell(),
                expected.cell(),
                want.cell()
            ));
        }
    }
    // The runtime's own allocations: same count, sizes and flags.
    if run.runtime_allocs != base.runtime_allocs {
        err(format!(
            "the runtime's own KFD allocations differ:\n  with:    {:?}\n  without: {:?}",
            run.runtime_allocs, base.runtime_allocs
        ));
    }
    // Every KFD allocation made for a call is freed once, with its flags.
    for (label, k) in &run.kfd {
        if let Kfd::Alloc { .. } = k {
            let c = run.calls.iter().find(|c| &c.label == label).unwrap();
            let va = run
                .events
                .iter()
                .find_map(|e| match *e {
                    Event::Alloc { va, size, .. } if va <= c.ptr && c.ptr < va + size => Some(va),
                    _ => None,
                })
                .unwrap();
            let frees = run
                .events
                .iter()
                .filter(|e| matches!(e, Event::Free { va: v, .. } if *v == va))
                .count();
            if frees != 1 {
                err(format!(
                    "{label}: its KFD allocation at {va:#x} was freed {frees} times"
                ));
            }
        }
    }
    if run.key.load.has_rmcp() {
        bad.extend(check_rmcp_bookkeeping(run));
    }
    bad
}

/// rmcp's own view of the run: stats, exit summary, registry.
fn check_rmcp_bookkeeping(run: &ProbeRun) -> Vec<String> {
    let mut bad = Vec::new();
    let stats = run.stats();
    let counts = run.counts();
    if stats.is_empty() {
        bad.push("rmcp_stats_get was not found or returned nothing".into());
        return bad;
    }
    // Rewrites expected per entry point.
    let mut rewrites: BTreeMap<&str, u64> = BTreeMap::new();
    for c in &run.calls {
        if expect_rewrite(run, c) && (c.rc == 0 || !c.label.starts_with("hipMallocManaged")) {
            *rewrites.entry(c.entry.as_str()).or_default() += 1;
        }
    }
    for (entry, &calls) in &counts {
        let (got_calls, got_rw) = stats.get(entry).copied().unwrap_or((0, 0));
        let want_rw = rewrites.get(entry.as_str()).copied().unwrap_or(0);
        if entry == "hsa_amd_memory_pool_allocate" || entry == "hsa_amd_memory_pool_free" {
            // libamdhip64 allocates through the exported HSA symbol, so rmcp's
            // HSA hooks also see the runtime's own calls (forwarded untouched).
            if got_calls < calls {
                bad.push(format!(
                    "{entry}: rmcp counted {got_calls} calls, the probe made {calls}"
                ));
            }
        } else if got_calls != calls {
            bad.push(format!(
                "{entry}: rmcp counted {got_calls} calls, the probe made {calls} \
                 (a hook re-entered from inside the runtime, or a call missed)"
            ));
        }
        if got_rw != want_rw {
            bad.push(format!(
                "{entry}: rmcp rewrote {got_rw} calls, expected {want_rw}"
            ));
        }
    }
    match run.summary() {
        None => bad.push("no exit summary at RMCP_LOG=info".into()),
        Some(sum) => {
            for (entry, &(c, r)) in &stats {
                let want = if c == 0 { None } else { Some(&(c, r)) };
                if sum.get(entry) != want {
                    bad.push(format!(
                        "exit summary says {entry} {:?}, stats {c}/{r}",
                        sum.get(entry)
                    ));
                }
            }
        }
    }
    // The registry names the right allocation for every live pointer.
    let describes = run.lines("describe");
    for c in run.calls.iter().filter(|c| c.rc == 0 && c.ptr != 0) {
        let Some(d) = describes.iter().find(|m| m["label"] == c.label) else {
            bad.push(format!("{}: no describe line", c.label));
            continue;
        };
        let text = d.get("text").cloned().unwrap_or_default();
        let want_rw = if expect_rewrite(run, c) {
            "rewritten by rmcp"
        } else {
            "not rewritten"
        };
        let ok = d["rc"] == "0"
            && text.contains(&format!("{} bytes into a live allocation", d["off"]))
            && text.contains(&format!("{} of ", c.entry))
            && text.contains(&format!("at {:#x}-", c.ptr))
            && text.contains(want_rw);
        if !ok {
            bad.push(format!("{}: rmcp_describe_address says {text:?}", c.label));
        }
    }
    bad
}

fn assert_clean(what: &str, bad: Vec<String>, run: &ProbeRun) {
    assert!(bad.is_empty(), "{what}:\n  {}\n{run}", bad.join("\n  "));
}

/// Every scenario of one topology against its baseline.
fn check_topology(test: &str, topo: Topo, loads: &[(Load, &'static str)]) {
    let Some((s, b)) = env(test) else { return };
    for load in [Load::Plain, Load::ModulePlain] {
        if loads.iter().any(|(l, _)| l.baseline() == load) {
            let base = probe(s, b, key(topo, load, None));
            assert!(
                base.status.success() && base.stdout.contains("probe: done"),
                "baseline failed\n{base}"
            );
            let archs: Vec<String> = base
                .archs()
                .iter()
                .map(|a| a.split(':').next().unwrap().to_string())
                .collect();
            assert_eq!(archs, topo.archs(), "devices\n{base}");
            assert!(
                base.events
                    .iter()
                    .any(|e| matches!(e, Event::Packet { ptype: 2 })),
                "no kernel-dispatch packet was retired (hipMemcpy runs blit kernels)\n{base}"
            );
            assert!(
                !base
                    .events
                    .iter()
                    .any(|e| matches!(e, Event::Queue { qtype, .. } if *qtype != 2)),
                "a non-AQL queue was registered although HSA_ENABLE_SDMA=0\n{base}"
            );
        }
    }
    let runs: Vec<Arc<ProbeRun>> = std::thread::scope(|sc| {
        let hs: Vec<_> = loads
            .iter()
            .map(|&(load, mode)| sc.spawn(move || probe(s, b, key(topo, load, Some(mode)))))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for run in runs {
        let base = probe(s, b, key(topo, run.key.load.baseline(), None));
        assert_clean(
            &format!("{topo:?} {:?} RMCP_MODE={:?}", run.key.load, run.key.mode),
            check_against_baseline(&run, &base),
            &run,
        );
    }
}

const ALL_LOADS: &[(Load, &str)] = &[
    (Load::Preload, "auto"),
    (Load::Preload, "force"),
    (Load::Preload, "off"),
    (Load::Module, "auto"),
    (Load::Module, "force"),
    (Load::Module, "off"),
    (Load::Direct, "auto"),
    (Load::Direct, "force"),
    (Load::Direct, "off"),
];

const SOME_LOADS: &[(Load, &str)] = &[
    (Load::Preload, "auto"),
    (Load::Preload, "force"),
    (Load::Preload, "off"),
    (Load::Module, "auto"),
    (Load::Direct, "auto"),
];

// ------------------------------------------------------------------ tests

#[test]
fn rx6800xt_gfx1030_all_load_modes_and_rmcp_modes() {
    check_topology(
        "rx6800xt_gfx1030_all_load_modes_and_rmcp_modes",
        Topo::Rx6800xt,
        ALL_LOADS,
    );
}

#[test]
fn rx5700xt_gfx1010() {
    check_topology("rx5700xt_gfx1010", Topo::Rx5700xt, SOME_LOADS);
}

#[test]
fn rx7900xt_gfx1100_untargeted_control() {
    check_topology(
        "rx7900xt_gfx1100_untargeted_control",
        Topo::Rx7900xt,
        SOME_LOADS,
    );
}

/// ROCm's own libraries get exactly what they ask for: RCCL's host flags
/// (hipHostMalloc(Mapped), polled by GPU kernels) allocated from inside a
/// library named like RCCL reach the driver COHERENT under rmcp, in every load
/// mode, while the application's identical call loses COHERENT.
#[test]
fn rccl_like_library_keeps_its_coherent_host_flags() {
    let test = "rccl_like_library_keeps_its_coherent_host_flags";
    let Some((s, b)) = env(test) else { return };
    let base = probe(s, b, key(Topo::Rx6800xt, Load::Plain, None));
    let flags = |r: &ProbeRun, label: &str| {
        r.kfd_of(label)
            .and_then(Kfd::flags)
            .unwrap_or_else(|| panic!("{label}: no KFD allocation\n{r}"))
    };
    assert_ne!(
        flags(&base, "librccl:hipHostMalloc(Mapped)") & COHERENT,
        0,
        "{base}"
    );
    for load in [Load::Preload, Load::Module, Load::Direct] {
        let run = probe(s, b, key(Topo::Rx6800xt, load, Some("auto")));
        assert!(run.status.success(), "{run}");
        assert_eq!(
            flags(&run, "librccl:hipHostMalloc(Mapped)"),
            flags(&base, "librccl:hipHostMalloc(Mapped)"),
            "{load:?}: RCCL's flags must reach the driver as asked\n{run}"
        );
        assert_eq!(
            flags(&run, "hipHostMalloc(Mapped)") & COHERENT,
            0,
            "{load:?}: the application's hipHostMalloc(Mapped) is rewritten\n{run}"
        );
    }
}

/// The rewrite must change what reaches the driver on a target: the rows the
/// README lists lose exactly the coherence bits, and nothing else changes.
#[test]
fn target_rewrites_clear_exactly_the_coherence_bits() {
    let test = "target_rewrites_clear_exactly_the_coherence_bits";
    let Some((s, b)) = env(test) else { return };
    let base = probe(s, b, key(Topo::Rx6800xt, Load::Plain, None));
    let auto = probe(s, b, key(Topo::Rx6800xt, Load::Preload, Some("auto")));
    let mut changed = Vec::new();
    for (label, k) in &base.kfd {
        let (Some(f0), Some(f1)) = (k.flags(), auto.kfd_of(label).and_then(Kfd::flags)) else {
            continue;
        };
        if f0 != f1 {
            assert_eq!(
                f0 ^ f1,
                f0 & COHERENCE_BITS,
                "{label}: {f0:#x} -> {f1:#x}\n{auto}"
            );
            changed.push(label.clone());
        }
    }
    // The PyTorch pinned-memory case and the other coherent host rows reach
    // the driver without COHERENT on a target.
    for must in [
        "hipHostMalloc(0)",
        "hipHostMalloc(Mapped)",
        "hipHostMalloc(Coherent)",
        "hipHostMalloc(NumaUser)",
        "hipHostAlloc(0)",
        "hipHostAlloc(Mapped)",
        "hipMemAllocHost",
        "hipExtMallocWithFlags(Uncached)",
        "hsa_pool(gfx1030,extfine)",
    ] {
        assert!(
            changed.iter().any(|c| c == must),
            "{must} did not change; changed: {changed:?}\n{base}\n{auto}"
        );
    }
}

/// Debian's 7.2.4 neither exports hipExtHostAlloc nor returns it from
/// hipGetProcAddress, so no program can call it there (the probe then skips
/// the row); rmcp's hipGetProcAddress hook does not invent it.
#[test]
fn hip_ext_host_alloc_is_not_reachable_on_7_2_4() {
    let test = "hip_ext_host_alloc_is_not_reachable_on_7_2_4";
    let Some((s, b)) = env(test) else { return };
    for load in [Load::Plain, Load::Preload] {
        let run = probe(
            s,
            b,
            key(Topo::Rx6800xt, load, load.has_rmcp().then_some("auto")),
        );
        assert_eq!(
            run.value("exported", "name", "hipExtHostAlloc", "value")
                .as_deref(),
            Some("0"),
            "{run}"
        );
        assert_eq!(
            run.value("procaddress", "name", "hipExtHostAlloc", "found")
                .as_deref(),
            Some("0"),
            "{run}"
        );
        assert!(
            !run.calls.iter().any(|c| c.entry == "hipExtHostAlloc"),
            "{run}"
        );
    }
}

/// hipHostRegister on a node without SVM support locks user memory with a
/// KFD USERPTR allocation, which libhsakmt 7.2.4's model mode aborts on
/// ("model: userptr not supported"): the same abort with and without rmcp.
/// (With SVM support, as the topologies report, the lock goes through the
/// SVM ioctl and the main probe runs it.)
#[test]
fn host_register_without_svm_aborts_alike_with_and_without_rmcp() {
    let test = "host_register_without_svm_aborts_alike_with_and_without_rmcp";
    let Some((s, b)) = env(test) else { return };
    for load in [Load::Plain, Load::Preload] {
        let k = Key {
            topo: Topo::Rx6800xt,
            load,
            mode: load.has_rmcp().then_some("auto"),
            hostregister: true,
            stock_rocr: false,
            built_rocr: false,
            gfx_override: None,
            node_override: None,
        };
        let run = probe(s, b, k);
        assert_eq!(run.status.signal(), Some(libc::SIGABRT), "{run}");
        assert!(run.stderr.contains("model: userptr not supported"), "{run}");
        assert!(!run.stdout.contains("call label=hipHostRegister"), "{run}");
        assert!(!run.stderr.contains("rmcp: error"), "{run}");
    }
}

/// Why .rocm/exp-gfx10 exists: on a gfx10 node the stock ROCr 7.2.4 issues
/// AMDKFD_IOC_SET_TRAP_HANDLER, which model mode does not implement, and the
/// process aborts before HIP reports a device.
#[test]
fn gfx10_on_stock_rocr_aborts_on_the_trap_handler_ioctl() {
    let test = "gfx10_on_stock_rocr_aborts_on_the_trap_handler_ioctl";
    let Some((s, b)) = env(test) else { return };
    let mut k = key(Topo::Rx6800xt, Load::Plain, None);
    k.stock_rocr = true;
    let run = probe(s, b, k);
    assert_eq!(run.status.signal(), Some(libc::SIGABRT), "{run}");
    assert!(
        run.stderr.contains("model: Unimplemented KFD ioctl"),
        "{run}"
    );
    assert!(!run.stdout.contains("device dev=0"), "{run}");
}

/// The ROCr that tests/model_fault.rs runs (built from upstream source by
/// scripts/setup-rocm.sh, model mode 0.5) serves the probe as Debian's 7.2.4
/// does: on both target topologies, with and without rmcp, every call
/// returns the same code and reaches the driver with the same KFD flags,
/// except the CPU's extended fine-grained pool (no EXT_COHERENT upstream at
/// that commit).
#[test]
fn built_rocr_serves_the_probe_like_debian_7_2_4() {
    let test = "built_rocr_serves_the_probe_like_debian_7_2_4";
    let Some((s, b)) = env(test) else { return };
    if let Err(why) = model::fault_rocr() {
        return skip(test, &why);
    }
    for topo in [Topo::Rx6800xt, Topo::Rx5700xt] {
        for (load, mode) in [(Load::Plain, None), (Load::Preload, Some("auto"))] {
            let debian = probe(s, b, key(topo, load, mode));
            let mut k = key(topo, load, mode);
            k.built_rocr = true;
            let built = probe(s, b, k);
            assert!(debian.status.success(), "{debian}");
            assert!(built.status.success(), "{built}");
            let calls = |r: &ProbeRun| -> Vec<(String, String, i64)> {
                r.calls
                    .iter()
                    .map(|c| (c.label.clone(), c.entry.clone(), c.rc))
                    .collect()
            };
            assert_eq!(calls(&built), calls(&debian), "{built}\n{debian}");
            assert!(!built.kfd.is_empty(), "{built}");
            // One known difference: the upstream snapshot (2025-08) does not
            // yet ask the driver for EXT_COHERENT on the CPU's extended
            // fine-grained pool; Debian's 7.2.4 does. No fault test uses
            // that pool. Every other row is identical.
            let expected: Vec<(String, Kfd)> = debian
                .kfd
                .iter()
                .map(|(label, k)| match (label.as_str(), *k) {
                    ("hsa_pool(cpu,extfine)", Kfd::Alloc { node, size, flags }) => (
                        label.clone(),
                        Kfd::Alloc {
                            node,
                            size,
                            flags: flags & !EXT_COHERENT,
                        },
                    ),
                    _ => (label.clone(), *k),
                })
                .collect();
            assert_eq!(built.kfd, expected, "{built}\n{debian}");
            assert_eq!(built.archs(), debian.archs(), "{built}\n{debian}");
        }
    }
}

/// libhsakmt 7.2.4's model mode serves one GPU only: with two, its second
/// MMIO-remap page trips `assert(!model_mmio_page)` while the runtime opens,
/// before any HIP call, with and without rmcp. Per-device decisions on mixed
/// systems stay proven by the doubles (tests/hip_shim.rs); the two-GPU
/// topology is still read by `rmcp doctor` below.
#[test]
fn two_gpus_abort_in_model_mode_alike_with_and_without_rmcp() {
    let test = "two_gpus_abort_in_model_mode_alike_with_and_without_rmcp";
    let Some((s, b)) = env(test) else { return };
    for (load, mode) in [(Load::Plain, None), (Load::Preload, Some("auto"))] {
        let run = probe(s, b, key(Topo::Rx7900xtRx6800xt, load, mode));
        assert_eq!(run.status.signal(), Some(libc::SIGABRT), "{run}");
        assert!(
            run.stderr
                .contains("model_set_mmio_page: Assertion `!model_mmio_page' failed"),
            "{run}"
        );
        assert!(!run.stdout.contains("devices rc="), "{run}");
        assert!(!run.stderr.contains("rmcp: error"), "{run}");
    }
}

/// The re-entry question, answered from the runtimes' own relocations: a
/// HIP-internal call can only reach a preloaded rmcp hook if libamdhip64
/// calls that exported name through its GOT/PLT. 7.2.4 and 6.4.3 do so for
/// no allocation entry point rmcp hooks (only for the HSA pool functions,
/// which live in another library); 5.2.3's hipMemAllocHost calls hipHostMalloc
/// that way, so there rmcp's hipHostMalloc hook also sees the inner call of a
/// forwarded hipMemAllocHost (counted twice in the statistics; the registry
/// keeps the outer record, and both hooks decide alike, so nothing is
/// rewritten twice). The dynamic check on 7.2.4 is in check_rmcp_bookkeeping.
#[test]
fn runtime_internal_calls_to_hooked_names() {
    let test = "runtime_internal_calls_to_hooked_names";
    const HOOKED: &[&str] = &[
        "hipMalloc",
        "hipFree",
        "hipHostMalloc",
        "hipHostAlloc",
        "hipExtHostAlloc",
        "hipMallocHost",
        "hipMemAllocHost",
        "hipHostFree",
        "hipFreeHost",
        "hipExtMallocWithFlags",
        "hipMallocManaged",
        "hipHostRegister",
        "hipHostUnregister",
        "hipMallocAsync",
        "hipMallocFromPoolAsync",
        "hipFreeAsync",
        "hipGetProcAddress",
        "hsa_amd_memory_pool_allocate",
        "hsa_amd_memory_pool_free",
    ];
    let libs = [
        (
            model::rocm_dir().join("exp-root/usr/lib/x86_64-linux-gnu/libamdhip64.so.7"),
            "7.2.4",
        ),
        (
            model::rocm_dir().join("sid-root/usr/lib/x86_64-linux-gnu/libamdhip64.so.6"),
            "6.4.3",
        ),
        (
            PathBuf::from("/usr/lib/x86_64-linux-gnu/libamdhip64.so.5"),
            "5.2.3",
        ),
    ];
    for (lib, version) in libs {
        if !lib.exists() {
            skip(test, &format!("{} is missing", lib.display()));
            continue;
        }
        let out = Command::new("readelf")
            .args(["-W", "-r"])
            .arg(&lib)
            .output()
            .expect("run readelf");
        assert!(out.status.success(), "readelf -r {}", lib.display());
        let text = String::from_utf8_lossy(&out.stdout);
        let mut found: Vec<&str> = HOOKED
            .iter()
            .copied()
            .filter(|name| {
                text.lines().any(|l| {
                    l.split_whitespace()
                        .nth(4)
                        .is_some_and(|sym| sym.split('@').next() == Some(*name))
                })
            })
            .collect();
        found.sort();
        let want: &[&str] = match version {
            "5.2.3" => &[
                "hipHostMalloc",
                "hsa_amd_memory_pool_allocate",
                "hsa_amd_memory_pool_free",
            ],
            _ => &["hsa_amd_memory_pool_allocate", "hsa_amd_memory_pool_free"],
        };
        assert_eq!(
            found, want,
            "hooked names libamdhip64 {version} calls through its GOT"
        );
    }
}

// ------------------------------------------------------------------ docs/driver-flags.md

fn table_for(s: &'static Stack, b: &'static Built, topo: Topo) -> String {
    let none = probe(s, b, key(topo, Load::Plain, None));
    let auto = probe(s, b, key(topo, Load::Preload, Some("auto")));
    let off = probe(s, b, key(topo, Load::Preload, Some("off")));
    for r in [&none, &auto, &off] {
        assert!(r.status.success(), "{r}");
    }
    let mut t = String::new();
    t.push_str("| entry point (requested flags) | without rmcp | rmcp auto | rmcp off |\n");
    t.push_str("|---|---|---|---|\n");
    for c in &none.calls {
        let cell = |r: &ProbeRun| {
            r.kfd_of(&c.label)
                .map_or("(missing)".to_string(), Kfd::cell)
        };
        let a = cell(&auto);
        let marker = if auto.kfd_of(&c.label) != none.kfd_of(&c.label) {
            " **changed**"
        } else {
            ""
        };
        t.push_str(&format!(
            "| `{}` | {} | {}{} | {} |\n",
            c.label.replace('|', "\\|"),
            cell(&none),
            a,
            marker,
            cell(&off)
        ));
    }
    t
}

fn driver_flags_doc(s: &'static Stack, b: &'static Built) -> String {
    let template = std::fs::read_to_string(repo().join("tests/model/driver-flags.head.md"))
        .expect("tests/model/driver-flags.head.md");
    let mut doc = template;
    for (topo, title) in [
        (Topo::Rx6800xt, "RX 6800 XT (gfx1030, a target)"),
        (Topo::Rx5700xt, "RX 5700 XT (gfx1010, a target)"),
        (
            Topo::Rx7900xt,
            "RX 7900 XT (gfx1100, not a target: the control)",
        ),
    ] {
        doc.push_str(&format!("\n## {title}\n\n"));
        doc.push_str(&table_for(s, b, topo));
    }
    doc
}

#[test]
fn driver_flags_table_is_current() {
    let test = "driver_flags_table_is_current";
    let Some((s, b)) = env(test) else { return };
    let doc = driver_flags_doc(s, b);
    model::check_generated_doc(
        "docs/driver-flags.md",
        &doc,
        "RMCP_BLESS=1 cargo test --all-features --test model_gpu driver_flags_table_is_current",
    );
}

/// The field mistake rmcp doctor warns about, on the real stack: with
/// HSA_OVERRIDE_GFX_VERSION=10.3.0 the real HIP 7.2.4 reports the RX 5700 XT
/// (gfx1010 in the topology) as gfx1030, and `rmcp doctor` on the same tree
/// with the same variable reports the mismatch as an error.
#[test]
fn override_makes_real_hip_report_gfx1030_on_gfx1010_and_doctor_flags_it() {
    let test = "override_makes_real_hip_report_gfx1030_on_gfx1010_and_doctor_flags_it";
    let Some((s, b)) = env(test) else { return };
    let mut k = key(Topo::Rx5700xt, Load::Plain, None);
    k.gfx_override = Some("10.3.0");
    let run = probe(s, b, k);
    run.assert_one_gpu_named("gfx1030");
    let out = doctor_on(Topo::Rx5700xt, &[("HSA_OVERRIDE_GFX_VERSION", "10.3.0")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("[hsa-override-mismatch]") && text.contains("gfx1010"),
        "{text}"
    );
}

/// libhsakmt reads HSA_OVERRIDE_GFX_VERSION_<node> before
/// HSA_OVERRIDE_GFX_VERSION, on the real 7.2.4 stack: with the global
/// override 10.3.0 and HSA_OVERRIDE_GFX_VERSION_1=10.1.0 the RX 5700 XT
/// (node 1) stays gfx1010; with only the per-node 10.3.0 it becomes gfx1030.
/// `rmcp doctor` on the same tree and variables says the same.
#[test]
fn per_node_override_wins_on_the_real_stack_and_in_doctor() {
    let test = "per_node_override_wins_on_the_real_stack_and_in_doctor";
    let Some((s, b)) = env(test) else { return };
    let mut k = key(Topo::Rx5700xt, Load::Plain, None);
    k.gfx_override = Some("10.3.0");
    k.node_override = Some((1, "10.1.0"));
    let run = probe(s, b, k);
    run.assert_one_gpu_named("gfx1010");
    let out = doctor_on(
        Topo::Rx5700xt,
        &[
            ("HSA_OVERRIDE_GFX_VERSION", "10.3.0"),
            ("HSA_OVERRIDE_GFX_VERSION_1", "10.1.0"),
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("[hsa-override-redundant] HSA_OVERRIDE_GFX_VERSION_1=10.1.0")
            && !text.contains("[hsa-override-mismatch]"),
        "{text}"
    );

    let mut k = key(Topo::Rx5700xt, Load::Plain, None);
    k.node_override = Some((1, "10.3.0"));
    let run = probe(s, b, k);
    run.assert_one_gpu_named("gfx1030");
    let out = doctor_on(Topo::Rx5700xt, &[("HSA_OVERRIDE_GFX_VERSION_1", "10.3.0")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("[hsa-override-mismatch] HSA_OVERRIDE_GFX_VERSION_1=10.3.0")
            && text.contains("gfx1010"),
        "{text}"
    );
}

// ------------------------------------------------------------------ rmcp doctor

/// `rmcp doctor --sysfs-root ROOT` with ROOT/sys/class/kfd/kfd/topology
/// linked to the model topology, a clean kernel log and the given variables.
fn doctor_on(topo: Topo, env: &[(&str, &str)]) -> std::process::Output {
    let root = model::sysfs_root(&topo.path(), &format!("doctor-{}", topo.dir()));
    let log = root.join("kernel.log");
    std::fs::write(&log, "").unwrap();
    let out = common::Cli::new(&["doctor", "--python", "none", "--sysfs-root"])
        .arg(&root)
        .arg("--kernel-log")
        .arg(&log)
        .envs(env)
        .output();
    let _ = std::fs::remove_dir_all(&root);
    out
}

/// `rmcp doctor --sysfs-root` on each model topology lists the GPUs the real
/// runtime reports, targeted or not.
#[test]
fn doctor_reads_the_model_topologies() {
    for topo in [
        Topo::Rx6800xt,
        Topo::Rx5700xt,
        Topo::Rx7900xt,
        Topo::Rx7900xtRx6800xt,
    ] {
        let out = doctor_on(topo, &[]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let gpus: Vec<(String, bool)> = text
            .split("\n  node ")
            .skip(1)
            .map(|block| {
                let gfx = block.split_whitespace().nth(1).unwrap_or("").to_string();
                let targeted = block
                    .lines()
                    .take(2)
                    .any(|l| l.trim() == "targeted by rmcp");
                (gfx, targeted)
            })
            .collect();
        let want: Vec<(String, bool)> = topo
            .archs()
            .iter()
            .map(|a| (a.to_string(), Topo::targeted(a)))
            .collect();
        assert_eq!(
            gpus,
            want,
            "{topo:?}\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

// ------------------------------------------------------------------ kernel launches

/// A real code object (bookworm's `hipcc --genco --offload-arch=gfx1030` of
/// tests/model/kernels.hip), loaded by the real HIP 7.2.4 with
/// hipModuleLoadData and launched with hipModuleLaunchKernel on the modelled
/// RX 6800 XT, librmcp.so preloaded: the launch ring holds the three launches
/// (the third, of a kernel already seen, recorded by the assembly fast path) with
/// the names the real runtime resolves (hipKernelNameRef gives the mangled
/// name; rmcp demangles it), newest first, and marks them completed after
/// hipDeviceSynchronize (the model retires the dispatch and barrier packets).
#[test]
fn real_hip_launches_appear_in_the_ring_with_their_names() {
    let test = "real_hip_launches_appear_in_the_ring_with_their_names";
    let Some((s, b)) = env(test) else { return };
    let hipcc = std::path::Path::new("/usr/bin/hipcc");
    if !hipcc.exists() {
        return skip(test, "/usr/bin/hipcc (bookworm) is not installed");
    }
    let dir = b.logs.parent().unwrap().join("launch");
    std::fs::create_dir_all(&dir).unwrap();
    let code_object = dir.join("kernels.co");
    let out = Command::new(hipcc)
        .args(["--genco", "--offload-arch=gfx1030"])
        .arg(repo().join("tests/model/kernels.hip"))
        .arg("-o")
        .arg(&code_object)
        .output()
        .expect("run hipcc");
    assert!(
        out.status.success(),
        "hipcc --genco failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let exe = dir.join("launch");
    let inc = format!("-I{}", s.include.display());
    let rmcp_inc = format!("-I{}", repo().join("include").display());
    let l = format!("-L{}", s.libdir.display());
    let rl = format!("-Wl,-rpath-link,{}", s.libdir.display());
    common::compile_c(
        &exe,
        &[repo().join("tests/model/launch.c")],
        &[
            "-D__HIP_PLATFORM_AMD__",
            &inc,
            &rmcp_inc,
            &l,
            "-lamdhip64",
            "-ldl",
            &rl,
            "-Wl,--allow-shlib-undefined",
        ],
    );
    let log = dir.join("model.log");
    let mut cmd = Command::new(&s.loader);
    model::clear_runtime_env(&mut cmd);
    let libpath = std::env::join_paths([s.gfx10.clone(), s.libdir.clone()]).unwrap();
    cmd.arg("--library-path")
        .arg(libpath)
        .arg("--preload")
        .arg(b.rmcp_dir.join("librmcp.so"))
        .arg(&exe)
        .arg(&code_object)
        .env("HSA_MODEL_TOPOLOGY", Topo::Rx6800xt.path())
        .env("HSA_MODEL_LIB", &b.model_lib)
        .env("RMCP_MODEL_LOG", &log)
        .env("HSA_ENABLE_SDMA", "0")
        .env("HSA_ENABLE_INTERRUPT", "0")
        .stdin(Stdio::null());
    let out = throttled(|| cmd.output().expect("run launch"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report = format!("{cmd:?}\n--- stdout\n{stdout}--- stderr\n{stderr}");
    assert!(out.status.success(), "{report}");
    for call in [
        "hipModuleLoadData",
        "hipModuleGetFunction:fill",
        "hipModuleGetFunction:scale",
        "hipModuleLaunchKernel:fill",
        "hipModuleLaunchKernel:scale",
        "hipModuleLaunchKernel:fill-again",
        "hipDeviceSynchronize",
    ] {
        assert!(
            stdout.contains(&format!("call {call} rc=0\n")),
            "{call}\n{report}"
        );
    }
    let launches = |when: &str| -> Vec<&str> {
        stdout
            .lines()
            .filter(|l| l.starts_with(&format!("launch {when} ")))
            .collect()
    };
    assert_eq!(
        launches("before-sync"),
        vec![
            "launch before-sync seq=2 entry=hipModuleLaunchKernel kernel=fill(int*, unsigned long) demangled=1 grid=3,1,1 block=16,4,1 completed=0",
            "launch before-sync seq=1 entry=hipModuleLaunchKernel kernel=void probe::scale<float>(float*, float) demangled=1 grid=1,2,3 block=32,2,1 completed=0",
            "launch before-sync seq=0 entry=hipModuleLaunchKernel kernel=fill(int*, unsigned long) demangled=1 grid=2,1,1 block=64,1,1 completed=0",
        ],
        "{report}"
    );
    assert!(
        launches("after-sync")
            .iter()
            .all(|l| l.ends_with(" completed=1"))
            && launches("after-sync").len() == 3,
        "{report}"
    );
}

/// The audit mode on the real stack: a hipew-style client (dlopen + dlsym on
/// the runtime's handle, tests/programs/hipew_client.c) calls
/// hipHostMalloc(4096, 0) on the modelled RX 6800 XT. With librmcp.so
/// preloaded alone its lookup bypasses the hook and the buffer reaches the
/// driver coherent; with librmcp-audit.so as well, the same call reaches the
/// driver with COHERENT cleared, and every other allocation (the runtime's
/// own) is the same in both runs.
#[test]
fn dlsym_client_is_rewritten_at_the_driver_only_with_the_audit_mode() {
    let test = "dlsym_client_is_rewritten_at_the_driver_only_with_the_audit_mode";
    let Some((s, b)) = env(test) else { return };
    let client = b.logs.join("hipew_client");
    common::compile_c(
        &client,
        &[repo().join("tests/programs/hipew_client.c")],
        &[],
    );
    let run = |audit: bool| -> (String, String, Vec<(u64, u32)>) {
        let log = b.logs.join(format!("hipew-audit-{audit}.log"));
        let _ = std::fs::remove_file(&log);
        let mut cmd = Command::new(&s.loader);
        model::clear_runtime_env(&mut cmd);
        // gfx1030: the ROCr copy without the trap-handler ioctl first.
        cmd.arg("--library-path")
            .arg(std::env::join_paths([&s.gfx10, &s.libdir]).unwrap());
        if audit {
            cmd.arg("--audit").arg(common::librmcp_audit());
        }
        cmd.arg("--preload")
            .arg(b.rmcp_dir.join("librmcp.so"))
            .arg(&client)
            .args(["libamdhip64.so.7", "libhsa-runtime64.so.1", "hostmalloc:0"])
            .env("HSA_MODEL_TOPOLOGY", Topo::Rx6800xt.path())
            .env("HSA_MODEL_LIB", &b.model_lib)
            .env("RMCP_MODEL_LOG", &log)
            .env("HSA_ENABLE_SDMA", "0")
            .env("HSA_ENABLE_INTERRUPT", "0")
            .env("RMCP_LOG", "info")
            .stdin(Stdio::null());
        let out = throttled(|| cmd.output().expect("run hipew_client on the model"));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "audit={audit}\n{stdout}\n{stderr}");
        let events = parse_events(&std::fs::read_to_string(&log).unwrap_or_default());
        let mut allocs: Vec<(u64, u32)> = events
            .iter()
            .filter_map(|e| match e {
                Event::Alloc { size, flags, .. } => Some((*size, *flags)),
                _ => None,
            })
            .collect();
        allocs.sort_unstable();
        (stdout, stderr, allocs)
    };
    let (out_pre, err_pre, pre) = run(false);
    let (out_aud, err_aud, aud) = run(true);
    assert_eq!(out_pre, "hostmalloc:0 rc=0\n", "{err_pre}");
    assert_eq!(out_aud, out_pre, "{err_aud}");
    // rmcp's exit summary: no hook saw the call without audit; it saw and
    // rewrote it with audit.
    assert!(!err_pre.contains("hipHostMalloc 1/"), "{err_pre}");
    assert!(err_aud.contains("hipHostMalloc 1/1"), "{err_aud}");
    // The driver view: exactly one allocation differs, by COHERENT alone.
    let only = |a: &[(u64, u32)], b: &[(u64, u32)]| -> Vec<(u64, u32)> {
        let mut rest = b.to_vec();
        a.iter()
            .filter(|x| match rest.iter().position(|y| y == *x) {
                Some(i) => {
                    rest.remove(i);
                    false
                }
                None => true,
            })
            .copied()
            .collect()
    };
    let gone = only(&pre, &aud);
    let new = only(&aud, &pre);
    assert_eq!(gone.len(), 1, "preload alone {pre:x?}\nwith audit {aud:x?}");
    assert_eq!(new.len(), 1, "preload alone {pre:x?}\nwith audit {aud:x?}");
    let (size, flags) = gone[0];
    assert_ne!(flags & COHERENT, 0, "{}", flag_names(flags));
    assert_eq!(
        new[0],
        (size, flags & !COHERENT),
        "{} -> {}",
        flag_names(flags),
        flag_names(new[0].1)
    );
}

/// Issue 19 item 5 on the real ROCm 7.2.4: a Python script that reaches HIP
/// through ctypes (dlopen + dlsym) and starts with `rmcp_rocm.preload()`
/// gets its hipHostMalloc(0) to the driver without COHERENT: preload()
/// re-executes the interpreter with librmcp.so and the audit module found
/// beside it. Without librmcp-audit.so beside librmcp.so, preload alone: the
/// call reaches the driver COHERENT, as without rmcp. The interpreter is
/// Debian's python3 run by the 7.2.4 root's loader (the runtime needs its
/// newer glibc), through a wrapper script that is also what preload()
/// re-executes (`sys.executable`).
#[test]
fn python_script_starting_with_preload_is_rewritten_at_the_driver() {
    let test = "python_script_starting_with_preload_is_rewritten_at_the_driver";
    let Some((s, b)) = env(test) else { return };
    let python = PathBuf::from("/usr/bin/python3");
    if !python.is_file() {
        if common::prerequisites_required() {
            panic!("{test}: /usr/bin/python3 is missing");
        }
        skip(test, "/usr/bin/python3 is missing");
        return;
    }
    let dir = b.logs.join("preload-py");
    let _ = std::fs::remove_dir_all(&dir);
    let (with, without) = (dir.join("with"), dir.join("without"));
    for d in [&with, &without] {
        std::fs::create_dir_all(d).unwrap();
        std::os::unix::fs::symlink(common::librmcp(), d.join("librmcp.so")).unwrap();
    }
    std::os::unix::fs::symlink(common::librmcp_audit(), with.join("librmcp-audit.so")).unwrap();
    let wrapper = dir.join("python3");
    let libpath = std::env::join_paths([&s.gfx10, &s.libdir]).unwrap();
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec '{}' --library-path '{}' --argv0 \"$0\" '{}' \"$@\"\n",
            s.loader.display(),
            libpath.to_string_lossy(),
            python.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    // A size no allocation of the runtime's own has: 1 MiB + 28 KiB.
    const SIZE: u64 = (1 << 20) + 7 * 4096;
    let script = dir.join("client.py");
    std::fs::write(
        &script,
        format!(
            "import rmcp_rocm\n\
             rmcp_rocm.preload()\n\
             import ctypes, os\n\
             hip = ctypes.CDLL('libamdhip64.so.7')\n\
             p = ctypes.c_void_p()\n\
             rc = hip.hipHostMalloc(ctypes.byref(p), ctypes.c_size_t({SIZE}), ctypes.c_uint(0))\n\
             print('hipHostMalloc rc=%d audit=%s' % (rc, 'librmcp-audit.so' in os.environ.get('LD_AUDIT', '')), flush=True)\n"
        ),
    )
    .unwrap();
    let run = |lib_dir: &PathBuf| -> (String, Vec<u32>) {
        let log = lib_dir.join("model.log");
        let _ = std::fs::remove_file(&log);
        let mut cmd = Command::new(&wrapper);
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy().into_owned();
            if [
                "LD_", "RMCP_", "HIP_", "HSA_", "AMD_", "ROCR_", "GPU_", "PYTHON",
            ]
            .iter()
            .any(|p| k.starts_with(p))
            {
                cmd.env_remove(&k);
            }
        }
        cmd.arg(&script)
            .env("PYTHONPATH", repo().join("python"))
            .env("RMCP_LIBRARY", lib_dir.join("librmcp.so"))
            .env("HSA_MODEL_TOPOLOGY", Topo::Rx6800xt.path())
            .env("HSA_MODEL_LIB", &b.model_lib)
            .env("RMCP_MODEL_LOG", &log)
            .env("HSA_ENABLE_SDMA", "0")
            .env("HSA_ENABLE_INTERRUPT", "0")
            .stdin(Stdio::null());
        let out = throttled(|| cmd.output().expect("run python on the model"));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stdout}\n{stderr}");
        assert!(!stderr.contains("rmcp"), "{stderr}");
        let events = parse_events(&std::fs::read_to_string(&log).unwrap_or_default());
        let flags = events
            .iter()
            .filter_map(|e| match e {
                Event::Alloc { size, flags, .. } if *size == SIZE => Some(*flags),
                _ => None,
            })
            .collect();
        (stdout, flags)
    };
    let (out, flags) = run(&with);
    assert_eq!(out, "hipHostMalloc rc=0 audit=True\n");
    assert_eq!(flags.len(), 1, "{flags:x?}");
    assert_eq!(flags[0] & COHERENT, 0, "{}", flag_names(flags[0]));
    let (out, alone) = run(&without);
    assert_eq!(out, "hipHostMalloc rc=0 audit=False\n");
    assert_eq!(alone, vec![flags[0] | COHERENT], "{}", flag_names(alone[0]));
}

/// Issue 19 item 2 on the real ROCm 7.2.4: the model GPU cannot serve VMM.
/// The real HIP reports hipDeviceAttributeVirtualMemoryManagementSupported
/// = 0 for it (model mode offers no ROCr virtual-memory API), and
/// hipMemAddressReserve and hipMemCreate return hipErrorOutOfMemory (2), so
/// PyTorch would not use expandable segments there. What can be shown:
/// rmcp's VMM hooks are on the path (each call counted once), forward every
/// call, and change no return code. The VMM bookkeeping itself is shown on
/// the doubles (hsa_fault::a_fault_in_an_expandable_segment_...).
#[test]
fn vmm_is_not_served_by_the_model_and_rmcp_changes_no_answer() {
    let test = "vmm_is_not_served_by_the_model_and_rmcp_changes_no_answer";
    let Some((s, b)) = env(test) else { return };
    let exe = b.logs.join("vmm");
    let inc = format!("-I{}", s.include.display());
    let l = format!("-L{}", s.libdir.display());
    let rl = format!("-Wl,-rpath-link,{}", s.libdir.display());
    common::compile_c(
        &exe,
        &[repo().join("tests/model/vmm.c")],
        &[
            "-D__HIP_PLATFORM_AMD__",
            &inc,
            &l,
            "-lamdhip64",
            &rl,
            "-Wl,--allow-shlib-undefined",
        ],
    );
    let run = |rmcp: bool| -> (String, String) {
        let mut cmd = Command::new(&s.loader);
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy().into_owned();
            if ["LD_", "RMCP_", "HIP_", "HSA_", "AMD_", "ROCR_", "GPU_"]
                .iter()
                .any(|p| k.starts_with(p))
            {
                cmd.env_remove(&k);
            }
        }
        cmd.arg("--library-path")
            .arg(std::env::join_paths([&s.gfx10, &s.libdir]).unwrap());
        if rmcp {
            cmd.arg("--preload").arg(b.rmcp_dir.join("librmcp.so"));
        }
        cmd.arg(&exe)
            .env("HSA_MODEL_TOPOLOGY", Topo::Rx6800xt.path())
            .env("HSA_MODEL_LIB", &b.model_lib)
            .env("RMCP_MODEL_LOG", b.logs.join(format!("vmm-{rmcp}.log")))
            .env("HSA_ENABLE_SDMA", "0")
            .env("HSA_ENABLE_INTERRUPT", "0")
            .env("RMCP_LOG", "info")
            .stdin(Stdio::null());
        let out = throttled(|| cmd.output().expect("run vmm on the model"));
        assert!(out.status.success(), "{out:?}");
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (plain, _) = run(false);
    let (with, err) = run(true);
    assert_eq!(with, plain, "{err}");
    for line in [
        "hipGetDeviceCount rc=0 count=1",
        "hipDeviceGetAttribute(VirtualMemoryManagementSupported) rc=0 value=0",
        "hipMemAddressReserve rc=2",
        "hipMemCreate rc=2",
    ] {
        assert!(plain.lines().any(|l| l == line), "{line}\n{plain}");
    }
    for counted in [
        "hipMemAddressReserve 1/0",
        "hipMemCreate 1/0",
        "hipMemMap 1/0",
        "hipMemSetAccess 1/0",
        "hipMemUnmap 1/0",
        "hipMemRelease 1/0",
        "hipMemAddressFree 1/0",
    ] {
        assert!(err.contains(counted), "{counted}\n{err}");
    }
}
