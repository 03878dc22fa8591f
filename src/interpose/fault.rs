//! GPU memory-fault provenance. rmcp registers a system event handler with
//! the HSA runtime; on HSA_AMD_GPU_MEMORY_FAULT_EVENT it says which
//! allocation the faulting address belongs to (live, freed, or none, with
//! neighbours), then returns an error status so the runtime still prints
//! its own message and ends the process as it always does. Nothing here
//! repairs anything: the kernel has already evicted the queues.
//!
//! The handler runs while the process is dying: it allocates nothing, waits
//! for no lock without bound (the registry's shards are waited for at most
//! `registry::LOOKUP_PATIENCE_NS` in all), and writes with write(2).

use crate::abi::{hsa, hsa_agent_t, hsa_amd_event_t, hsa_status_t};
use crate::core::causes::{self, Causes, KfdArchs, NodeOverrides};
use crate::core::launches::{self as launches, Launch, Shown, DEVICES, SLOTS};
use crate::core::registry::Lookup;
use crate::core::report::{self, FaultGpu, FaultProcess, FixedBuf};
use crate::core::report_path;
use crate::core::sync::now_ns;
use crate::interpose::hooks::launch::{self as launch_hooks, NAMES};
use crate::interpose::process::{self, REGISTRY};
use crate::interpose::symbols::{hsa_fn, hsa_real, hsa_sym, HSA};
use crate::interpose::topology::{agent_for_report, gpu_ordinal, topology};
use once_cell::sync::OnceCell;
use std::cell::UnsafeCell;
use std::ffi::{c_void, CString};
use std::fmt::Write;
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
    body: FixedBuf<8192>,
    out: FixedBuf<10240>,
    json: FixedBuf<32768>,
    /// One ring's copy, and the launches the report lists.
    snap: [Launch; SLOTS],
    listed: [Launch; SLOTS],
    /// RMCP_FAULT_REPORT with %p expanded (PATH_MAX plus ".<pid>").
    path: [u8; 4096 + 12],
}
struct Shared(UnsafeCell<Buffers>);
// SAFETY: access is serialised by BUSY (try-acquire, never waited on).
unsafe impl Sync for Shared {}
static BUFFERS: Shared = Shared(UnsafeCell::new(Buffers {
    body: FixedBuf::new(),
    out: FixedBuf::new(),
    json: FixedBuf::new(),
    snap: [Launch::ZERO; SLOTS],
    listed: [Launch::ZERO; SLOTS],
    path: [0; 4096 + 12],
}));
static BUSY: AtomicBool = AtomicBool::new(false);

fn write_fd(fd: i32, bytes: &[u8]) {
    let mut rest = bytes;
    while !rest.is_empty() {
        // SAFETY: rest is a valid readable slice.
        let n = unsafe { libc::write(fd, rest.as_ptr().cast(), rest.len()) };
        if n <= 0 {
            if n < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return;
        }
        rest = &rest[n as usize..];
    }
}

unsafe extern "C" fn on_system_event(
    event: *const hsa_amd_event_t,
    _data: *mut c_void,
) -> hsa_status_t {
    if event.is_null() {
        return hsa::STATUS_SUCCESS;
    }
    // SAFETY: the runtime passes a valid event for the duration of the call.
    let ev = unsafe { &*event };
    if ev.event_type != hsa::EVENT_GPU_MEMORY_FAULT {
        return hsa::STATUS_SUCCESS;
    }
    let fault = ev.memory_fault;
    let _ = std::panic::catch_unwind(|| {
        report_fault(
            fault.agent,
            fault.virtual_address as usize,
            fault.fault_reason_mask,
        )
    });
    // An error status keeps the runtime's own message; it aborts either way.
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

/// Writes the report to stderr and, if configured, as JSON to the report
/// file. Public for the C API's tests; called by the event handler.
pub fn report_fault(agent: hsa_agent_t, addr: usize, reasons: u32) {
    if BUSY.swap(true, Ordering::Acquire) {
        write_fd(
            2,
            b"rmcp: another GPU memory fault is being reported; this one is not attributed\n",
        );
        return;
    }
    // SAFETY: BUSY grants exclusive use of the buffers until released below.
    let b = unsafe { &mut *BUFFERS.0.get() };
    b.body.clear();
    b.out.clear();
    b.json.clear();
    let (name_bytes, node) = describe_agent(agent);
    let len = name_bytes.iter().position(|&c| c == 0).unwrap_or(64);
    let name = std::str::from_utf8(&name_bytes[..len]).unwrap_or("?");
    let now = now_ns();
    let found = REGISTRY.try_lookup(addr);
    let (rank, local_rank) = RANKS.get().copied().unwrap_or((None, None));
    let process = FaultProcess {
        // SAFETY: getpid has no preconditions (and is async-signal-safe).
        pid: unsafe { libc::getpid() } as u32,
        rank,
        local_rank,
    };

    let _ = write!(
        b.body,
        "GPU memory fault at address {addr:#x} on {name} (node {node}, agent {:#x}) in ",
        agent.handle
    );
    let _ = report::write_process(&mut b.body, process);
    let _ = b.body.write_str("; reason: ");
    let _ = report::write_reasons(&mut b.body, reasons);
    let _ = b.body.write_char('\n');
    let _ = report::write_lookup(&mut b.body, addr, found, now);
    let _ = b.body.write_char('\n');
    let _ = b.body.write_str(match found {
        Ok(Lookup::Freed(_)) => "the GPU touched memory after it was freed; look for a kernel or copy still using this buffer after its free",
        Ok(Lookup::Unknown { .. }) => "no allocation made through HIP or HSA contains this address (an out-of-bounds index, a stale pointer, or memory from another allocator)",
        _ => "the GPU had no valid page-table entry for this address at the time of the access",
    });
    let _ = b.body.write_char('\n');
    let (override_value, override_per_node) = causes::node_override(
        NODE_OVERRIDES.get().and_then(|o| o.get(node)),
        process::config().hsa_override.as_deref(),
    )
    .map_or((None, false), |(v, per_node)| (Some(v), per_node));
    let cause = Causes {
        addr,
        node,
        gfx_override: causes::override_cause(
            override_value,
            KFD_ARCHS.get().and_then(|k| k.get(node)),
        ),
        override_per_node,
        place: causes::place(addr, found),
    };
    let _ = causes::write_lines(&mut b.body, &cause, "likely cause: ", now);
    let device = gpu_ordinal(agent.handle);
    let found_launches = gather_launches(device, &mut b.snap, &mut b.listed);
    let origin = launch_hooks::origin();
    let now_pair = launch_hooks::now_pair();
    let shown = |l: &Launch| Shown {
        launch: *l,
        name: NAMES.get(l.handle),
        ns_ago: origin.and_then(|o| launches::ns_before(l.ticks, o, now_pair)),
    };
    let listed = &b.listed[..found_launches.listed];
    let _ = write_launch_lines(&mut b.body, device, &found_launches, listed, &shown);
    let _ = b.body.write_str("the runtime will now print its own message and end the process; a GPU memory fault cannot be recovered from");
    for line in b.body.as_str().split('\n') {
        let _ = writeln!(b.out, "rmcp: {line}");
    }
    write_fd(2, b.out.as_bytes());

    if let Some(Some(path)) = REPORT_PATH.get() {
        let _ = report::write_fault_json(
            &mut b.json,
            addr,
            reasons,
            FaultGpu { name, node },
            process,
            found,
            now,
            b.body.as_str(),
            |w| {
                causes::write_json(w, &cause, now)?;
                w.write_str(",\"launches\":{\"device\":")?;
                match device {
                    Some(d) => write!(w, "{d}")?,
                    None => w.write_str("null")?,
                }
                write!(
                    w,
                    ",\"recorded\":{},\"completed\":{},\"not_completed\":[",
                    found_launches.recorded, found_launches.completed
                )?;
                for (i, l) in listed.iter().enumerate() {
                    if i > 0 {
                        w.write_char(',')?;
                    }
                    launches::write_json(w, &shown(l))?;
                }
                w.write_str("]},")
            },
        );
        match open_report(path.as_bytes(), process.pid, &mut b.path) {
            Ok((fd, len)) => {
                write_fd(fd, b.json.as_bytes());
                // SAFETY: fd was opened by open_report.
                unsafe { libc::close(fd) };
                b.out.clear();
                let _ = b.out.write_str("rmcp: the report as JSON: ");
                let _ = write_lossy(&mut b.out, &b.path[..len]);
                let _ = b.out.write_char('\n');
                write_fd(2, b.out.as_bytes());
            }
            Err((len, errno)) => {
                b.out.clear();
                let tried = if len > 0 {
                    &b.path[..len]
                } else {
                    path.as_bytes()
                };
                let _ = b.out.write_str("rmcp: could not create the JSON report ");
                let _ = write_lossy(&mut b.out, tried);
                let _ = b.out.write_str(" (");
                let _ = process::write_errno(&mut b.out, errno);
                let _ = b.out.write_str("); the report above is the only copy\n");
                write_fd(2, b.out.as_bytes());
            }
        }
    }
    BUSY.store(false, Ordering::Release);
}

/// `bytes` as text, invalid UTF-8 as U+FFFD, without allocating.
fn write_lossy(w: &mut impl Write, bytes: &[u8]) -> std::fmt::Result {
    for chunk in bytes.utf8_chunks() {
        w.write_str(chunk.valid())?;
        if !chunk.invalid().is_empty() {
            w.write_char(char::REPLACEMENT_CHARACTER)?;
        }
    }
    Ok(())
}

/// What the ring(s) held for the faulting GPU.
struct Found {
    /// Launches recorded (and still in the ring) on the device(s).
    recorded: usize,
    /// Of those, known to have completed at a synchronisation.
    completed: usize,
    /// Not known to have completed: copied to `listed`, newest first.
    listed: usize,
}

/// Copies the launches on `device` (every device when None) that are not
/// known to have completed into `listed`, newest first. Reads the rings
/// without waiting.
fn gather_launches(
    device: Option<i32>,
    snap: &mut [Launch; SLOTS],
    listed: &mut [Launch; SLOTS],
) -> Found {
    let mut f = Found {
        recorded: 0,
        completed: 0,
        listed: 0,
    };
    for (r, ring) in launch_hooks::RINGS.iter().enumerate() {
        if device.is_some_and(|d| (d as usize) & (DEVICES - 1) != r) {
            continue;
        }
        let n = ring.snapshot(snap);
        for l in &snap[..n] {
            if device.is_some_and(|d| d != l.device) {
                continue;
            }
            f.recorded += 1;
            if ring.completed(l) {
                f.completed += 1;
            } else if f.listed < SLOTS {
                listed[f.listed] = *l;
                f.listed += 1;
            }
        }
    }
    // Newest first across devices (one device is already in order).
    listed[..f.listed].sort_unstable_by(|a, b| b.ticks.cmp(&a.ticks).then(b.seq.cmp(&a.seq)));
    f
}

/// Lines the text report shows at most; the JSON report has them all.
const LISTED_LINES: usize = 16;

fn write_launch_lines<'a>(
    w: &mut impl Write,
    device: Option<i32>,
    f: &Found,
    listed: &[Launch],
    shown: &impl Fn(&Launch) -> Shown<'a>,
) -> std::fmt::Result {
    let on = |w: &mut dyn Write| match device {
        Some(d) => write!(w, "HIP device {d} (this GPU)"),
        None => w.write_str("any HIP device (rmcp could not tell which device this GPU is)"),
    };
    if f.recorded == 0 {
        w.write_str("kernels in flight: no kernel launch was recorded on ")?;
        on(w)?;
        return w.write_str(" (rmcp records hipLaunchKernel, hipModuleLaunchKernel, hipExtLaunchKernel, hipExtModuleLaunchKernel, hipLaunchCooperativeKernel and hipGraphLaunch)\n");
    }
    if listed.is_empty() {
        write!(
            w,
            "kernels in flight: none; all {} launches recorded on ",
            f.recorded
        )?;
        on(w)?;
        return w.write_str(" had completed at a synchronisation before the fault\n");
    }
    w.write_str("kernels launched on ")?;
    on(w)?;
    writeln!(
        w,
        " and not known to have completed, newest first ({} of {} recorded; {} completed at a synchronisation):",
        listed.len(),
        f.recorded,
        f.completed
    )?;
    for l in listed.iter().take(LISTED_LINES) {
        w.write_str("  ")?;
        launches::write_line(w, &shown(l))?;
        w.write_char('\n')?;
    }
    if listed.len() > LISTED_LINES {
        writeln!(
            w,
            "  ... and {} older (all of them in RMCP_FAULT_REPORT)",
            listed.len() - LISTED_LINES
        )?;
    }
    Ok(())
}
