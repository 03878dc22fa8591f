//! GPU memory-fault provenance. rmcp registers a system event handler with
//! the HSA runtime; on HSA_AMD_GPU_MEMORY_FAULT_EVENT it says which
//! allocation the faulting address belongs to (live, freed, or none, with
//! neighbours), then returns an error status so the runtime still prints
//! its own message and ends the process as it always does. Nothing here
//! repairs anything: the kernel has already evicted the queues.
//!
//! The handler runs while the process is dying: it allocates nothing, takes
//! no lock it could wait on (the registry is read with try-locks), and
//! writes with write(2).

use crate::abi::{hsa, hsa_agent_t, hsa_amd_event_t, hsa_status_t};
use crate::core::registry::Lookup;
use crate::core::report::{self, FaultGpu, FaultProcess, FixedBuf};
use crate::core::sync::now_ns;
use crate::interpose::process::{self, REGISTRY};
use crate::interpose::symbols::{hsa_fn, hsa_real, hsa_sym, HSA};
use crate::interpose::topology::agent_for_report;
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

/// Registers the fault handler once, if an HSA runtime is already in the
/// process and initialised. Never loads a runtime. Cheap after success.
pub fn ensure_handler() {
    if REGISTERED.load(Ordering::Relaxed) || ATTEMPTS.load(Ordering::Relaxed) >= MAX_ATTEMPTS {
        return;
    }
    let cfg = process::config();
    if !cfg.enabled {
        return;
    }
    ATTEMPTS.fetch_add(1, Ordering::Relaxed);
    if !HSA.is_loaded() || REGISTERING.swap(true, Ordering::AcqRel) {
        return;
    }
    REPORT_PATH.get_or_init(|| {
        cfg.fault_report
            .as_ref()
            .and_then(|p| CString::new(p.as_bytes()).ok())
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
        REGISTERED.store(true, Ordering::Release);
        log::debug!("GPU memory-fault handler registered with the HSA runtime");
    } else {
        // Not initialised yet: try again at a later allocation or hsa_init.
        log::trace!("hsa_amd_register_system_event_handler returned {rc:#x}");
        REGISTERING.store(false, Ordering::Release);
    }
}

pub fn handler_registered() -> bool {
    REGISTERED.load(Ordering::Acquire)
}

/// Static report buffers: the handler must not allocate, and the runtime's
/// event thread may have a small stack. One fault at a time uses them.
struct Buffers {
    body: FixedBuf<4096>,
    out: FixedBuf<6144>,
    json: FixedBuf<8192>,
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

/// Creates the report file for process `pid`: RMCP_FAULT_REPORT with `%p`
/// expanded, or, if that file exists (another process of the same run wrote
/// its report there, or a stale one), `<that>.<pid>`. Never opens an
/// existing file, so no process overwrites another's report. `buf` receives
/// the path. No allocation: called from the fault handler.
fn open_report(template: &[u8], pid: u32, buf: &mut [u8]) -> Option<i32> {
    let mut digits = FixedBuf::<16>::new();
    let _ = write!(digits, ".{pid}");
    for suffix in [&b""[..], digits.as_bytes()] {
        report::expand_report_path(template, pid, suffix, buf)?;
        // SAFETY: buf holds a NUL-terminated path; flags and mode are constants.
        let fd = unsafe {
            libc::open(
                buf.as_ptr().cast(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC,
                0o600,
            )
        };
        if fd >= 0 {
            return Some(fd);
        }
        if std::io::Error::last_os_error().raw_os_error() != Some(libc::EEXIST) {
            return None;
        }
    }
    None
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
    let _ = b.body.write_str("\nthe runtime will now print its own message and end the process; a GPU memory fault cannot be recovered from");
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
        );
        match open_report(path.as_bytes(), process.pid, &mut b.path) {
            Some(fd) => {
                write_fd(fd, b.json.as_bytes());
                // SAFETY: fd was opened by open_report.
                unsafe { libc::close(fd) };
            }
            None => write_fd(
                2,
                b"rmcp: could not create the RMCP_FAULT_REPORT file (nor <file>.<pid>); the JSON report was not written\n",
            ),
        }
    }
    BUSY.store(false, Ordering::Release);
}
