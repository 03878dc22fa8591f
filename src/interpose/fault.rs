//! GPU memory-fault provenance. rmcp registers a system event handler with
//! the HSA runtime; on HSA_AMD_GPU_MEMORY_FAULT_EVENT it says which
//! allocation the faulting address belongs to (live, freed, or none, with
//! neighbours) and what the runtime does next, then returns an error status
//! for every event: "not handled", which leaves the decision (abort, or go
//! on) to the runtime and the other handlers (HIP's), exactly as without
//! rmcp. Nothing here repairs anything: the kernel has already evicted the
//! queues.
//!
//! The handler runs while the process is dying: it allocates nothing, waits
//! for no lock without bound (the registry's shards are waited for at most
//! `registry::LOOKUP_PATIENCE_NS` in all; the launch rings are read without
//! waiting), fills static buffers, and writes with write(2). It only
//! gathers facts; the report's words are `crate::core::fault_report`.

use crate::abi::{hsa, hsa_agent_t, hsa_amd_event_t, hsa_status_t};
use crate::core::causes::{self, KfdArchs, NodeOverrides};
use crate::core::fault_outcome::{self, CoreLimit, Hip, SkipAbort};
use crate::core::fault_report::{
    self, Facts, InFlight, JsonFile, JSON_BYTES, STDERR_BYTES, TEXT_BYTES,
};
use crate::core::launches::{Launch, Shown, SLOTS};
use crate::core::report::{FaultGpu, FaultProcess, FixedBuf};
use crate::core::report_path;
use crate::core::sync::now_ns;
use crate::interpose::launch_state;
use crate::interpose::process::{self, write_all, REGISTRY, STATS, VMM};
use crate::interpose::symbols::{hsa_fn, hsa_real, hsa_sym, HIP, HSA};
use crate::interpose::topology::{agent_for_report, gpu_ordinal, topology};
use once_cell::sync::OnceCell;
use std::cell::UnsafeCell;
use std::ffi::{c_void, CString};
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

static REGISTERED: AtomicBool = AtomicBool::new(false);
static REGISTERING: AtomicBool = AtomicBool::new(false);
static ATTEMPTS: AtomicU32 = AtomicU32::new(0);
/// Allocations after which rmcp stops looking for an HSA runtime to
/// register with (a HIP runtime that never opens HSA, like a test double).
const MAX_ATTEMPTS: u32 = 32;

/// RMCP_FAULT_REPORT, converted once ahead of time (no allocation later).
static REPORT_PATH: OnceCell<Option<CString>> = OnceCell::new();
/// RANK and LOCAL_RANK, read once ahead of time (the handler reads no
/// environment). A forked child keeps its parent's, as it keeps its env.
static RANKS: OnceCell<(Option<u32>, Option<u32>)> = OnceCell::new();

/// A rank variable as a number; anything else is left out of the report,
/// with one warning naming the variable, the value and what is accepted.
fn rank_from_env(name: &str) -> Option<u32> {
    let v = std::env::var_os(name)?;
    match v.to_str().and_then(|s| s.trim().parse::<u32>().ok()) {
        Some(n) => Some(n),
        None => {
            log::warn!(
                "{name}={:?} is not a rank (accepted: a non-negative integer); fault reports leave it out",
                v.to_string_lossy()
            );
            None
        }
    }
}

/// The HIP runtime in the process and HIP_SKIP_ABORT_ON_GPU_ERROR, read
/// when the handler is registered (the handler reads no environment and
/// resolves no path); with RLIMIT_CORE at the fault they say what happens
/// next (`core::fault_outcome`).
static HIP_RUNTIME: OnceCell<Hip> = OnceCell::new();
static SKIP_ABORT: OnceCell<SkipAbort> = OnceCell::new();
/// Later faults get one line saying so (its number is MAX_REPORTS_PER_PROCESS).
const MAX_REPORTS: u64 = fault_report::MAX_REPORTS_PER_PROCESS;
const _: () = assert!(MAX_REPORTS == 8);

/// Which HIP is loaded: the major version in its file name, following
/// symbolic links (libamdhip64.so -> libamdhip64.so.7 -> ...so.7.2.70204).
fn hip_runtime(env_path: Option<&std::ffi::OsStr>) -> Hip {
    let Some(path) = HIP.loaded_path(env_path) else {
        return Hip::Absent;
    };
    let base = |p: &[u8]| -> Option<u32> {
        fault_outcome::hip_major_from_file_name(p.rsplit(|&b| b == b'/').next()?)
    };
    if let Some(m) = base(path.as_bytes()) {
        return Hip::Major(m);
    }
    // SAFETY: path is NUL-terminated; realpath allocates the result, freed below.
    let real = unsafe { libc::realpath(path.as_ptr(), std::ptr::null_mut()) };
    if real.is_null() {
        return Hip::Unknown;
    }
    // SAFETY: realpath returned a NUL-terminated string.
    let m = base(unsafe { std::ffi::CStr::from_ptr(real) }.to_bytes());
    // SAFETY: allocated by realpath with malloc.
    unsafe { libc::free(real.cast()) };
    m.map_or(Hip::Unknown, Hip::Major)
}

/// Each KFD node's real architecture, read from sysfs once when the handler
/// is registered: the handler itself opens no file.
static KFD_ARCHS: OnceCell<KfdArchs> = OnceCell::new();
/// HSA_OVERRIDE_GFX_VERSION_<node> for those nodes, read at the same time.
static NODE_OVERRIDES: OnceCell<NodeOverrides> = OnceCell::new();

/// Reads `gfx_target_version` of nodes 0, 1, ... under
/// `<root>/sys/class/kfd/kfd/topology/nodes` (KFD numbers them from 0 with
/// no gaps) until one is missing. Unreadable files leave the node out (the
/// report then says the real architecture is not known). Reads with
/// open/read/close rather than std::fs: the directory functions and io
/// error formatting std would link in are symbols the loader resolves in
/// every process librmcp.so is preloaded into (bench/run.sh, /bin/true).
pub fn read_kfd_archs(root: &std::ffi::OsStr) -> KfdArchs {
    let mut archs = KfdArchs::default();
    let mut buf = [0u8; 4096];
    for node in 0..KfdArchs::MAX_NODES as u32 {
        let mut path = root.as_bytes().to_vec();
        path.extend_from_slice(
            format!("/sys/class/kfd/kfd/topology/nodes/{node}/properties").as_bytes(),
        );
        let Ok(path) = CString::new(path) else {
            break;
        };
        let Some(n) = read_small_file(&path, &mut buf) else {
            break;
        };
        if let Some(v) = std::str::from_utf8(&buf[..n])
            .ok()
            .and_then(causes::gfx_target_version)
        {
            archs.push(node, v);
        }
    }
    archs
}

/// Reads up to `buf.len()` bytes of a file; None if it cannot be opened.
fn read_small_file(path: &std::ffi::CStr, buf: &mut [u8]) -> Option<usize> {
    // SAFETY: path is NUL-terminated; the flags are constants.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return None;
    }
    let mut len = 0;
    while len < buf.len() {
        // SAFETY: the destination is the unfilled rest of `buf`.
        let n = unsafe { libc::read(fd, buf[len..].as_mut_ptr().cast(), buf.len() - len) };
        if n <= 0 {
            break;
        }
        len += n as usize;
    }
    // SAFETY: fd was opened above.
    unsafe { libc::close(fd) };
    Some(len)
}

/// Registers the fault handler once, if an HSA runtime is already in the
/// process and initialised. Never loads a runtime. Cheap after success.
/// Called from the allocation path, which gives up after `MAX_ATTEMPTS`
/// (a HIP runtime that never opens HSA); `register_at_hsa_init` tries again
/// whatever happened here.
pub fn ensure_handler() {
    if REGISTERED.load(Ordering::Relaxed) || ATTEMPTS.load(Ordering::Relaxed) >= MAX_ATTEMPTS {
        return;
    }
    if !process::config().enabled {
        return;
    }
    if ATTEMPTS.fetch_add(1, Ordering::Relaxed) + 1 == MAX_ATTEMPTS {
        log::debug!(
            "no HSA runtime to register the GPU memory-fault handler with after {MAX_ATTEMPTS} allocations; trying again at hsa_init"
        );
    }
    try_register(false);
}

/// hsa_init succeeded: the runtime is initialised, so registration is tried
/// now whatever happened before, and a failure is said once (without the
/// handler no GPU memory fault is reported).
pub fn register_at_hsa_init() {
    if REGISTERED.load(Ordering::Relaxed) || !process::config().enabled {
        return;
    }
    try_register(true);
}

fn try_register(runtime_initialised: bool) {
    static FAILURE_SAID: AtomicBool = AtomicBool::new(false);
    let cfg = process::config();
    if !HSA.is_loaded() || REGISTERING.swap(true, Ordering::AcqRel) {
        return;
    }
    REPORT_PATH.get_or_init(|| {
        cfg.fault_report
            .as_ref()
            .and_then(|p| CString::new(p.as_bytes()).ok())
    });
    KFD_ARCHS.get_or_init(|| {
        read_kfd_archs(
            cfg.sysfs_root
                .as_deref()
                .unwrap_or(std::ffi::OsStr::new("")),
        )
    });
    NODE_OVERRIDES.get_or_init(|| {
        NodeOverrides::read(0..KfdArchs::MAX_NODES as u32, |k| {
            std::env::var_os(k).map(|v| v.to_string_lossy().into_owned())
        })
    });
    RANKS.get_or_init(|| (rank_from_env("RANK"), rank_from_env("LOCAL_RANK")));
    HIP_RUNTIME.get_or_init(|| hip_runtime(cfg.hip_library.as_deref()));
    SKIP_ABORT.get_or_init(|| {
        SkipAbort::from_value(
            std::env::var_os("HIP_SKIP_ABORT_ON_GPU_ERROR")
                .as_deref()
                .map(|v| v.as_bytes()),
        )
    });
    // SAFETY: the prototype of hsa_amd_register_system_event_handler.
    let rc = match unsafe {
        hsa_real::<hsa_fn::hsa_amd_register_system_event_handler>(
            cfg,
            hsa_sym::hsa_amd_register_system_event_handler,
        )
    } {
        // SAFETY: on_system_event matches the handler type and lives forever.
        Some(register) => unsafe { register(Some(on_system_event), std::ptr::null_mut()) },
        None => hsa::STATUS_ERROR,
    };
    if rc == hsa::STATUS_SUCCESS {
        // The map of agents gives the report the faulting GPU's HIP ordinal
        // (whose launches to list) without calling the runtime at fault time.
        topology(cfg);
        REGISTERED.store(true, Ordering::Release);
        log::debug!("GPU memory-fault handler registered with the HSA runtime");
    } else {
        // Before hsa_init the runtime answers NOT_INITIALIZED: that is no
        // failure, only too early.
        let failed = runtime_initialised || rc != hsa::STATUS_ERROR_NOT_INITIALIZED;
        if failed && !FAILURE_SAID.swap(true, Ordering::Relaxed) {
            log::warn!(
                "could not register the GPU memory-fault handler with the HSA runtime (hsa_amd_register_system_event_handler returned {rc:#x}); GPU memory faults will not be reported"
            );
        } else {
            // Not initialised yet: tried again at a later allocation or hsa_init.
            log::trace!("hsa_amd_register_system_event_handler returned {rc:#x}");
        }
        REGISTERING.store(false, Ordering::Release);
    }
}

pub fn handler_registered() -> bool {
    REGISTERED.load(Ordering::Acquire)
}

/// Static report buffers: the handler must not allocate, and the runtime's
/// event thread may have a small stack. One fault at a time uses them.
struct Buffers {
    text: FixedBuf<TEXT_BYTES>,
    stderr: FixedBuf<STDERR_BYTES>,
    json: FixedBuf<JSON_BYTES>,
    /// One ring's copy, and the launches the report lists.
    snap: [Launch; SLOTS],
    listed: [Shown<'static>; SLOTS],
    /// The report file's name: RMCP_FAULT_REPORT with %p expanded and
    /// rmcp's unique suffix (PATH_MAX plus that suffix).
    path: [u8; report_path::PATH_MAX + report_path::SUFFIX_MAX],
    /// Why that file could not be created (strerror and errno).
    why: FixedBuf<160>,
}
struct Shared(UnsafeCell<Buffers>);
// SAFETY: access is serialised by BUSY (try-acquire, never waited on).
unsafe impl Sync for Shared {}
static BUFFERS: Shared = Shared(UnsafeCell::new(Buffers {
    text: FixedBuf::new(),
    stderr: FixedBuf::new(),
    json: FixedBuf::new(),
    snap: [Launch::ZERO; SLOTS],
    listed: [Shown::ZERO; SLOTS],
    path: [0; report_path::PATH_MAX + report_path::SUFFIX_MAX],
    why: FixedBuf::new(),
}));
static BUSY: AtomicBool = AtomicBool::new(false);

unsafe extern "C" fn on_system_event(
    event: *const hsa_amd_event_t,
    _data: *mut c_void,
) -> hsa_status_t {
    // SAFETY: the runtime passes a valid event for the duration of the call.
    if let Some(ev) = unsafe { event.as_ref() } {
        if ev.event_type == hsa::EVENT_GPU_MEMORY_FAULT {
            let fault = ev.memory_fault;
            let _ = std::panic::catch_unwind(|| {
                report_fault(
                    fault.agent,
                    fault.virtual_address as usize,
                    fault.fault_reason_mask,
                )
            });
        }
    }
    // "Not handled", for every event: ROCr prints its message and aborts
    // (after a fault, a HW exception, a free of memory in use) only when no
    // handler returns success, so success from rmcp would hide that message
    // and keep alive a process the runtime was ending.
    hsa::STATUS_ERROR
}

/// The agent's name and node: from the pool map if it was built, else asked
/// of the runtime (a plain getter).
fn describe_agent(agent: hsa_agent_t) -> ([u8; 64], u32) {
    if let Some(a) = agent_for_report(agent.handle) {
        return (a.name, a.node);
    }
    let mut name = [0u8; 64];
    let mut node = 0u32;
    // SAFETY: hsa_fn::hsa_agent_get_info is the symbol's prototype.
    if let Some(get) = unsafe {
        hsa_real::<hsa_fn::hsa_agent_get_info>(process::config(), hsa_sym::hsa_agent_get_info)
    } {
        // SAFETY: NAME writes char[64] into `name`, the node id a uint32
        // into `node`; both live for the calls.
        unsafe {
            get(agent, hsa::AGENT_INFO_NAME, name.as_mut_ptr().cast());
            get(
                agent,
                hsa::AMD_AGENT_INFO_DRIVER_NODE_ID,
                (&mut node as *mut u32).cast(),
            );
        }
    }
    name[63] = 0;
    (name, node)
}

/// Creates the report file for process `pid`: the names
/// `core::report_path::candidate` gives, in order (RMCP_FAULT_REPORT with
/// `%p` expanded, then unique names beside it), never opening an existing
/// file, so no report overwrites another and none is lost because an older
/// one has the name. `buf` receives the path. Ok: the file and the path's
/// length; Err: the length of the path that failed (0: none fitted) and the
/// errno. No allocation: called from the fault handler.
fn open_report(template: &[u8], pid: u32, buf: &mut [u8]) -> Result<(i32, usize), (usize, i32)> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    let unix_ns = (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64);
    let mut last = (0, libc::EEXIST);
    for attempt in 0..report_path::ATTEMPTS {
        let Some(len) = report_path::candidate(template, pid, unix_ns, attempt, buf) else {
            return Err((0, libc::ENAMETOOLONG));
        };
        // SAFETY: buf holds a NUL-terminated path; flags and mode are constants.
        let fd = unsafe {
            libc::open(
                buf.as_ptr().cast(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC,
                0o600,
            )
        };
        if fd >= 0 {
            return Ok((fd, len));
        }
        let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        last = (len, errno);
        if errno != libc::EEXIST {
            break;
        }
    }
    Err(last)
}

/// Gathers the facts of a fault and writes the report (`core::fault_report`)
/// to stderr and, if RMCP_FAULT_REPORT is set, as JSON to a new file there.
/// Called by the event handler.
fn report_fault(agent: hsa_agent_t, addr: usize, reasons: u32) {
    let nth = STATS.record_fault() + 1;
    if nth > MAX_REPORTS {
        if nth == MAX_REPORTS + 1 {
            write_all(
                2,
                b"rmcp: another GPU memory fault; rmcp reports at most 8 per process and stays silent about the rest\n",
            );
        }
        return;
    }
    if BUSY.swap(true, Ordering::Acquire) {
        write_all(
            2,
            b"rmcp: another GPU memory fault is being reported; this one is not attributed\n",
        );
        return;
    }
    // SAFETY: BUSY grants exclusive use of the buffers until released below.
    let b = unsafe { &mut *BUFFERS.0.get() };
    let (name_bytes, node) = describe_agent(agent);
    let len = name_bytes.iter().position(|&c| c == 0).unwrap_or(64);
    let (rank, local_rank) = RANKS.get().copied().unwrap_or((None, None));
    let process = FaultProcess {
        // SAFETY: getpid has no preconditions (and is async-signal-safe).
        pid: unsafe { libc::getpid() } as u32,
        rank,
        local_rank,
    };
    let device = gpu_ordinal(agent.handle);
    let (recorded, completed, listed) = gather_launches(device, &mut b.snap, &mut b.listed);
    let mut json_fd = None;
    b.why.clear();
    let json_file = match REPORT_PATH.get() {
        Some(Some(template)) => match open_report(template.as_bytes(), process.pid, &mut b.path) {
            Ok((fd, len)) => {
                json_fd = Some(fd);
                JsonFile::Created(valid_prefix(&b.path[..len]))
            }
            Err((len, errno)) => {
                let _ = process::write_errno(&mut b.why, errno);
                JsonFile::NotCreated {
                    path: valid_prefix(if len > 0 {
                        &b.path[..len]
                    } else {
                        template.as_bytes()
                    }),
                    why: b.why.as_str(),
                }
            }
        },
        _ => JsonFile::NotRequested,
    };
    let (override_value, override_per_node) = causes::node_override(
        NODE_OVERRIDES.get().and_then(|o| o.get(node)),
        process::config().hsa_override.as_deref(),
    )
    .map_or((None, false), |(v, per_node)| (Some(v), per_node));
    let found = REGISTRY.try_lookup(addr);
    // Inside a VMM reservation: what the handles and mappings say.
    let vmm = causes::in_vmm_reservation(&causes::place(addr, found))
        .then(|| VMM.try_place(addr))
        .flatten();
    let facts = Facts {
        addr,
        reasons,
        gpu: FaultGpu {
            name: valid_prefix(&name_bytes[..len]),
            node,
        },
        agent: agent.handle,
        process,
        found,
        vmm,
        now_ns: now_ns(),
        gfx_override: causes::override_cause(
            override_value,
            KFD_ARCHS.get().and_then(|k| k.get(node)),
        ),
        override_per_node,
        launches: InFlight {
            device,
            recorded,
            completed,
            listed: &b.listed[..listed],
        },
        json_file,
        next: fault_outcome::outcome(
            HIP_RUNTIME.get().copied().unwrap_or(Hip::Unknown),
            core_limit(),
            SKIP_ABORT.get().copied().unwrap_or(SkipAbort::Other),
        ),
    };
    fault_report::write_text(&mut b.text, &facts);
    fault_report::write_prefixed(&mut b.stderr, b.text.as_str());
    write_all(2, b.stderr.as_bytes());
    if let Some(fd) = json_fd {
        fault_report::write_json(&mut b.json, &facts, b.text.as_str());
        write_all(fd, b.json.as_bytes());
        // SAFETY: fd was opened by open_report.
        unsafe { libc::close(fd) };
    }
    BUSY.store(false, Ordering::Release);
}

/// RLIMIT_CORE's soft limit now (getrlimit is async-signal-safe).
fn core_limit() -> CoreLimit {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_CORE, &mut lim) } != 0 {
        return CoreLimit::Unreadable;
    }
    CoreLimit::Bytes(if lim.rlim_cur == libc::RLIM_INFINITY {
        u64::MAX
    } else {
        lim.rlim_cur
    })
}

/// The longest valid UTF-8 prefix of `bytes`.
fn valid_prefix(bytes: &[u8]) -> &str {
    match std::str::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or(""),
    }
}

/// Copies the launches on `device` (every device when None) that are not
/// known to have completed into `listed`, newest first, with their names.
/// Returns how many were recorded, how many of those had completed, and how
/// many were copied. Reads the rings without waiting.
fn gather_launches(
    device: Option<i32>,
    snap: &mut [Launch; SLOTS],
    listed: &mut [Shown<'static>; SLOTS],
) -> (usize, usize, usize) {
    let (origin, now) = (launch_state::origin(), launch_state::now_pair());
    let (mut recorded, mut completed, mut n) = (0, 0, 0);
    launch_state::for_each_launch(device, snap, |ring, l| {
        recorded += 1;
        if ring.completed(l) {
            completed += 1;
        } else if n < SLOTS {
            listed[n] = launch_state::shown(l, origin, now);
            n += 1;
        }
    });
    // Newest first across devices (one device is already in order).
    listed[..n].sort_unstable_by(|a, b| {
        (b.launch.ticks, b.launch.seq).cmp(&(a.launch.ticks, a.launch.seq))
    });
    (recorded, completed, n)
}
