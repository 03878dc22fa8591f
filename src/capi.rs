//! The C API declared in include/rmcp.h (generated from this file by
//! cbindgen; `tests/c_api.rs` checks the committed header is current).
//!
//! Every function is safe to call from any thread at any time, never
//! aborts (a panic becomes `RMCP_ERR_PANIC`), checks pointers for NULL, and
//! writes its out-parameters only when it returns `RMCP_OK`.

use crate::core::entry::Entry;
use crate::core::launches::{self, Launch, Launcher, SLOTS};
use crate::core::registry::{Allocation, Lookup};
use crate::core::report::{self, FixedBuf};
use crate::core::sync::now_ns;
use crate::interpose::launch_state::{self, NAMES};
use crate::interpose::process::{REGISTRY, STATS};
use std::ffi::{c_char, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Result codes of the rmcp C API.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum rmcp_result {
    /// Success; out-parameters were written.
    RMCP_OK = 0,
    /// A required pointer argument was NULL.
    RMCP_ERR_NULL_ARGUMENT = 1,
    /// The entry-point name is not one rmcp hooks.
    RMCP_ERR_UNKNOWN_ENTRY_POINT = 2,
    /// The buffer is too small; `*needed_out` says how many bytes to pass.
    RMCP_ERR_BUFFER_TOO_SMALL = 3,
    /// rmcp hit an internal error; nothing was written.
    RMCP_ERR_PANIC = 4,
    /// An argument is out of range (see the function's documentation).
    RMCP_ERR_INVALID_ARGUMENT = 5,
}

/// What rmcp knows about an address.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum rmcp_address_state {
    /// No allocation rmcp has seen contains the address.
    RMCP_ADDRESS_UNKNOWN = 0,
    /// A live allocation contains it.
    RMCP_ADDRESS_LIVE = 1,
    /// A recently freed allocation contained it (use after free).
    RMCP_ADDRESS_FREED = 2,
}

/// One allocation as rmcp recorded it.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct rmcp_allocation {
    /// First byte of the allocation.
    pub base: usize,
    /// Size in bytes as requested.
    pub size: usize,
    /// Entry point that made it ("hipHostMalloc"); static storage, never free it.
    pub entry_point: *const c_char,
    /// Flags (or pool flags for HSA) the application asked for.
    pub requested_flags: u32,
    /// Flags (or pool flags) rmcp forwarded to the runtime.
    pub applied_flags: u32,
    /// 1 when rmcp changed the request, else 0.
    pub rewritten: i32,
    /// HIP device ordinal, or -1 for host memory; for
    /// hsa_amd_memory_pool_allocate, the KFD node of the pool's agent.
    pub device: i32,
    /// Kernel thread id of the allocating thread.
    pub thread: u32,
    /// Nanoseconds since the allocation was made.
    pub age_ns: u64,
    /// Nanoseconds since it was freed; 0 for a live allocation.
    pub freed_ns_ago: u64,
}

fn guarded(f: impl FnOnce() -> rmcp_result) -> rmcp_result {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(rmcp_result::RMCP_ERR_PANIC)
}

/// The version of librmcp, e.g. "0.1.0".
///
/// Returns a static NUL-terminated string: never free it. Thread-safe.
#[no_mangle]
pub extern "C" fn rmcp_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The number of entry points rmcp hooks (the valid indexes of
/// `rmcp_entry_point_name`). Thread-safe.
#[no_mangle]
pub extern "C" fn rmcp_entry_point_count() -> usize {
    Entry::COUNT
}

/// The name of hooked entry point `index` ("hipHostMalloc"), or NULL when
/// `index >= rmcp_entry_point_count()`.
///
/// Returns static storage: never free it. Thread-safe.
#[no_mangle]
pub extern "C" fn rmcp_entry_point_name(index: usize) -> *const c_char {
    Entry::from_index(index).map_or(std::ptr::null(), |e| e.c_name().as_ptr())
}

/// Calls seen and calls rewritten so far for the entry point named
/// `entry_point` (a NUL-terminated name such as "hipHostMalloc").
///
/// Writes `*calls_out` and `*rewritten_out` only on `RMCP_OK`. The counters
/// are updated concurrently, so the two values may be from slightly
/// different moments. The kernel-launch, synchronisation, hipSetDevice and
/// stream creation and destruction hooks keep no counters (their path
/// touches no counter shared between threads): for them both values stay 0;
/// `rmcp_recent_launches` lists launches. Thread-safe; the caller keeps
/// ownership of every pointer.
///
/// # Safety
/// `entry_point` must be NULL or a NUL-terminated string; the out-pointers
/// must be NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn rmcp_stats_get(
    entry_point: *const c_char,
    calls_out: *mut u64,
    rewritten_out: *mut u64,
) -> rmcp_result {
    guarded(|| {
        if entry_point.is_null() || calls_out.is_null() || rewritten_out.is_null() {
            return rmcp_result::RMCP_ERR_NULL_ARGUMENT;
        }
        // SAFETY: non-NULL and NUL-terminated per the contract.
        let name = unsafe { CStr::from_ptr(entry_point) };
        let Some(e) = name.to_str().ok().and_then(Entry::from_name) else {
            return rmcp_result::RMCP_ERR_UNKNOWN_ENTRY_POINT;
        };
        let (calls, rewritten) = STATS.get(e);
        // SAFETY: non-NULL and writable per the contract.
        unsafe {
            *calls_out = calls;
            *rewritten_out = rewritten;
        }
        rmcp_result::RMCP_OK
    })
}

fn to_c(a: &Allocation, now: u64, freed_ns: Option<u64>) -> rmcp_allocation {
    rmcp_allocation {
        base: a.base,
        size: a.size,
        entry_point: a.entry.c_name().as_ptr(),
        requested_flags: a.requested_flags,
        applied_flags: a.applied_flags,
        rewritten: a.rewritten as i32,
        device: a.memory.number(),
        thread: a.thread,
        age_ns: now.saturating_sub(a.time_ns),
        freed_ns_ago: freed_ns.map_or(0, |f| now.saturating_sub(f)),
    }
}

/// Looks up which allocation contains `address`.
///
/// On `RMCP_OK`, `*state_out` says whether the address is in a live
/// allocation, a recently freed one, or none, and `*allocation_out` is
/// filled for the first two (left untouched for RMCP_ADDRESS_UNKNOWN).
/// `address` itself is never dereferenced. Thread-safe; may briefly wait for
/// threads that are allocating.
///
/// # Safety
/// The out-pointers must be NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn rmcp_lookup(
    address: *const c_void,
    state_out: *mut rmcp_address_state,
    allocation_out: *mut rmcp_allocation,
) -> rmcp_result {
    guarded(|| {
        if state_out.is_null() || allocation_out.is_null() {
            return rmcp_result::RMCP_ERR_NULL_ARGUMENT;
        }
        let now = now_ns();
        let (state, alloc) = match REGISTRY.lookup(address as usize) {
            Lookup::Live(a) => (
                rmcp_address_state::RMCP_ADDRESS_LIVE,
                Some(to_c(&a, now, None)),
            ),
            Lookup::Freed(f) => (
                rmcp_address_state::RMCP_ADDRESS_FREED,
                Some(to_c(&f.alloc, now, Some(f.freed_ns))),
            ),
            Lookup::Unknown { .. } => (rmcp_address_state::RMCP_ADDRESS_UNKNOWN, None),
        };
        // SAFETY: non-NULL and writable per the contract.
        unsafe {
            *state_out = state;
            if let Some(a) = alloc {
                *allocation_out = a;
            }
        }
        rmcp_result::RMCP_OK
    })
}

/// Writes a one-line English description of `address` (which allocation
/// contains it, or that one was freed, or the nearest neighbours) into
/// `buf` as a NUL-terminated string: the same words as a GPU fault report.
///
/// `*needed_out` (if not NULL) always receives the size the full text needs,
/// NUL included. Returns `RMCP_ERR_BUFFER_TOO_SMALL` and writes nothing to
/// `buf` when `len` is smaller than that. Thread-safe.
///
/// # Safety
/// `buf` must be NULL or writable for `len` bytes; `needed_out` NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn rmcp_describe_address(
    address: *const c_void,
    buf: *mut c_char,
    len: usize,
    needed_out: *mut usize,
) -> rmcp_result {
    guarded(|| {
        let mut text = Box::new(FixedBuf::<2048>::new());
        let addr = address as usize;
        let _ = report::write_lookup(&mut *text, addr, Ok(REGISTRY.lookup(addr)), now_ns());
        let bytes = text.as_str().as_bytes();
        let needed = bytes.len() + 1;
        if !needed_out.is_null() {
            // SAFETY: non-NULL and writable per the contract.
            unsafe { *needed_out = needed };
        }
        if buf.is_null() {
            return rmcp_result::RMCP_ERR_NULL_ARGUMENT;
        }
        if len < needed {
            return rmcp_result::RMCP_ERR_BUFFER_TOO_SMALL;
        }
        // SAFETY: buf is writable for len >= needed bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf.cast::<u8>(), bytes.len());
            *buf.add(bytes.len()) = 0;
        }
        rmcp_result::RMCP_OK
    })
}

/// One recorded kernel launch.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct rmcp_launch {
    /// The device's launch number (0 = its first launch rmcp recorded).
    pub sequence: u64,
    /// HIP device ordinal: the device of the launch's stream (for the null
    /// stream, hipStreamLegacy and hipStreamPerThread, the launching
    /// thread's current device).
    pub device: i32,
    /// Kernel thread id of the launching thread.
    pub thread: u32,
    /// Entry point ("hipLaunchKernel"); static storage, never free it.
    pub entry_point: *const c_char,
    /// The host stub, hipFunction_t or hipGraphExec_t that was launched.
    pub handle: *const c_void,
    /// The kernel's name (demangled when rmcp could), or NULL when the
    /// runtime gave none (and for graphs); valid until the process ends.
    pub kernel_name: *const c_char,
    /// Grid in blocks, and block in threads (0 for graphs).
    pub grid: [u32; 3],
    pub block: [u32; 3],
    /// The stream (NULL: the null stream).
    pub stream: *const c_void,
    /// Nanoseconds since the launch; 0 when not known.
    pub age_ns: u64,
    /// 1 when a hipDeviceSynchronize or hipStreamSynchronize that started
    /// after the launch returned successfully; 0: not known to have completed.
    pub completed: i32,
    /// 1 when rmcp demangled `kernel_name`, 0 when it is as the runtime gave it.
    pub name_demangled: i32,
}

/// The most recent kernel launches rmcp recorded on HIP device `device`
/// (-1: every device), newest first (per device, for -1), including
/// completed ones (see `completed`).
///
/// Writes at most `capacity` entries to `buf` and their number to
/// `*count_out`, only on `RMCP_OK`. `buf` may be NULL when `capacity` is 0
/// (`*count_out` is then 0). rmcp keeps the last 64 launches per device.
/// Returns `RMCP_ERR_INVALID_ARGUMENT` for a device below -1. Thread-safe;
/// never waits for launching threads.
///
/// # Safety
/// `buf` must be NULL or writable for `capacity` entries; `count_out` NULL
/// or writable.
#[no_mangle]
pub unsafe extern "C" fn rmcp_recent_launches(
    device: i32,
    buf: *mut rmcp_launch,
    capacity: usize,
    count_out: *mut usize,
) -> rmcp_result {
    guarded(|| {
        if count_out.is_null() || (buf.is_null() && capacity > 0) {
            return rmcp_result::RMCP_ERR_NULL_ARGUMENT;
        }
        if device < -1 {
            return rmcp_result::RMCP_ERR_INVALID_ARGUMENT;
        }
        let origin = launch_state::origin();
        let now = launch_state::now_pair();
        let mut snap = Box::new([Launch::ZERO; SLOTS]);
        let mut out: Vec<rmcp_launch> = Vec::new();
        let device = (device >= 0).then_some(device);
        launch_state::for_each_launch(device, &mut snap, |ring, l| {
            let launcher = Launcher::from_u8(l.launcher);
            out.push(rmcp_launch {
                sequence: l.seq,
                device: l.device,
                thread: l.thread,
                entry_point: launcher.map_or(c"?".as_ptr(), |x| x.c_name().as_ptr()),
                handle: l.handle as *const c_void,
                kernel_name: if launcher.is_some_and(Launcher::is_graph) {
                    std::ptr::null()
                } else {
                    NAMES.get_c(l.handle).unwrap_or(std::ptr::null())
                },
                grid: l.grid,
                block: l.block,
                stream: l.stream as *const c_void,
                age_ns: origin
                    .and_then(|o| launches::ns_before(l.ticks, o, now))
                    .unwrap_or(0),
                completed: ring.completed(l) as i32,
                name_demangled: NAMES.get(l.handle).is_some_and(|n| n.demangled) as i32,
            });
        });
        let n = out.len().min(capacity);
        // SAFETY: buf is writable for capacity >= n entries (non-NULL when n > 0);
        // count_out is non-NULL and writable.
        unsafe {
            if n > 0 {
                std::ptr::copy_nonoverlapping(out.as_ptr(), buf, n);
            }
            *count_out = n;
        }
        rmcp_result::RMCP_OK
    })
}
