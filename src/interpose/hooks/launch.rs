//! Kernel-launch hooks: always forwarded unchanged; a successful launch is
//! recorded in its device's ring (`crate::core::launches`), which the fault
//! report and `rmcp_recent_launches` read.
//!
//! These run once per kernel, millions of times in a training job, so the
//! path after the forwarded call is kept to atomics and plain stores: no
//! lock, no allocation, no call into the runtime except the first time a
//! kernel is seen (its name is resolved then, see `resolve_name`), and no
//! `catch_unwind` frame (nothing on it can panic: indices are masked). The
//! device is the calling thread's current device, tracked by the
//! hipSetDevice hook in a thread-local together with the thread id, so a
//! launch asks the runtime nothing. Limit: a launch on a stream created on
//! another device is filed under the thread's current device.
#![allow(non_snake_case)]

use super::after;
use super::hip::real;
use crate::abi::{
    dim3, hipError_t, hipEvent_t, hipFunction_t, hipGraphExec_t, hipStream_t, HIP_SUCCESS,
};
use crate::core::demangle::demangle;
use crate::core::entry::Entry;
use crate::core::launches::{ClockPair, Launcher, NameCache, Ring, DEVICES};
use crate::core::sync::{launch_ctx, now_ns, set_launch_ctx};
use crate::interpose::devices;
use crate::interpose::process;
use crate::interpose::symbols::{self, hip_fn, hip_sym};
use std::ffi::{c_int, c_uint, c_void, CStr};
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

pub static RINGS: [Ring; DEVICES] = [const { Ring::new() }; DEVICES];
pub static NAMES: NameCache = NameCache::new();

/// The ring of HIP device `dev` (ordinals past `DEVICES` share rings).
#[inline(always)]
pub fn ring(dev: i32) -> &'static Ring {
    &RINGS[(dev as usize) & (DEVICES - 1)]
}

/// (ticks, ns) taken at the first launch a thread records: the origin of the
/// tick-to-time conversion (`crate::core::launches::ns_before`).
static ORIGIN_TICKS: AtomicU64 = AtomicU64::new(0);
static ORIGIN_NS: AtomicU64 = AtomicU64::new(0);

/// The launch clock: the time-stamp counter where there is one (a single
/// instruction), else CLOCK_MONOTONIC_COARSE.
#[inline(always)]
pub fn ticks() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: rdtsc exists on every x86-64 CPU and has no side effects.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        now_ns()
    }
}

/// The clock pair the report converts ticks with; None before any launch.
pub fn origin() -> Option<ClockPair> {
    let ns = ORIGIN_NS.load(Ordering::Acquire);
    let ticks = ORIGIN_TICKS.load(Ordering::Acquire);
    (ticks != 0).then_some(ClockPair { ticks, ns })
}

pub fn now_pair() -> ClockPair {
    ClockPair {
        ticks: ticks(),
        ns: now_ns(),
    }
}

/// The calling thread's id and current HIP device.
#[inline(always)]
fn ctx() -> (u32, i32) {
    let v = launch_ctx();
    if v != 0 {
        return (v as u32, ((v >> 32) as i32) - 1);
    }
    ctx_slow()
}

#[cold]
#[inline(never)]
fn ctx_slow() -> (u32, i32) {
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() } as u32;
    let mut dev = 0;
    after(|| dev = devices::current_device(process::config()).unwrap_or(0));
    set_ctx(tid, dev);
    if ORIGIN_TICKS.load(Ordering::Relaxed) == 0 {
        ORIGIN_NS.store(now_ns(), Ordering::Relaxed);
        ORIGIN_TICKS.store(ticks(), Ordering::Release);
    }
    (tid, dev)
}

fn set_ctx(tid: u32, dev: i32) {
    set_launch_ctx(tid as u64 | ((dev as i64 + 1) as u64) << 32);
}

/// Records a successful launch.
#[inline(always)]
fn record(l: Launcher, handle: usize, grid: [u32; 3], block: [u32; 3], stream: hipStream_t) {
    if !process::config().enabled {
        return;
    }
    let (tid, dev) = ctx();
    ring(dev).record(l, dev, tid, handle, grid, block, stream as usize, ticks());
    if l != Launcher::GraphLaunch && !NAMES.seen(handle) {
        resolve_name(l, handle, stream);
    }
}

/// First launch of a kernel: ask the runtime for its name (hipKernelNameRef
/// for a hipFunction_t, hipKernelNameRefByPtr for a host stub), demangle it,
/// and keep it. Done here, in the launching thread, because the fault
/// handler must not call into HIP: it runs on the HSA runtime's event
/// thread while an application thread may hold HIP's locks.
#[cold]
#[inline(never)]
fn resolve_name(l: Launcher, handle: usize, stream: hipStream_t) {
    after(|| {
        NAMES.insert(handle, |w| {
            let cfg = process::config();
            let p = if l.takes_function() {
                symbols::hip(cfg, hip_sym::hipKernelNameRef).map(|f| {
                    // SAFETY: hipKernelNameRef(hipFunction_t); the runtime
                    // just accepted this function for a launch.
                    unsafe {
                        std::mem::transmute::<usize, hip_fn::hipKernelNameRef>(f)(
                            handle as hipFunction_t,
                        )
                    }
                })
            } else {
                symbols::hip(cfg, hip_sym::hipKernelNameRefByPtr).map(|f| {
                    // SAFETY: hipKernelNameRefByPtr(host stub, stream); the
                    // runtime just launched this stub on this stream.
                    unsafe {
                        std::mem::transmute::<usize, hip_fn::hipKernelNameRefByPtr>(f)(
                            handle as *const c_void,
                            stream,
                        )
                    }
                })
            };
            let Some(p) = p.filter(|p| !p.is_null()) else {
                return false;
            };
            // SAFETY: the runtime returns a NUL-terminated name it owns.
            let raw = unsafe { CStr::from_ptr(p) }.to_string_lossy();
            match demangle(&raw) {
                Some(d) => {
                    let _ = w.write_str(&d);
                    true
                }
                None => {
                    let _ = w.write_str(&raw);
                    false
                }
            }
        });
    });
}

/// # Safety
/// As the HIP runtime's hipLaunchKernel.
#[no_mangle]
pub unsafe extern "C" fn hipLaunchKernel(
    function: *const c_void,
    grid: dim3,
    block: dim3,
    args: *mut *mut c_void,
    shared: usize,
    stream: hipStream_t,
) -> hipError_t {
    // SAFETY: hipLaunchKernel's prototype.
    let f: hip_fn::hipLaunchKernel =
        match unsafe { real(Entry::HipLaunchKernel, hip_sym::hipLaunchKernel) } {
            Ok(f) => f,
            Err(rc) => return rc,
        };
    // SAFETY: forwarding the caller's arguments.
    let rc = unsafe { f(function, grid, block, args, shared, stream) };
    if rc == HIP_SUCCESS {
        record(
            Launcher::LaunchKernel,
            function as usize,
            [grid.x, grid.y, grid.z],
            [block.x, block.y, block.z],
            stream,
        );
    }
    rc
}

/// # Safety
/// As the HIP runtime's hipModuleLaunchKernel.
#[no_mangle]
pub unsafe extern "C" fn hipModuleLaunchKernel(
    function: hipFunction_t,
    gx: c_uint,
    gy: c_uint,
    gz: c_uint,
    bx: c_uint,
    by: c_uint,
    bz: c_uint,
    shared: c_uint,
    stream: hipStream_t,
    params: *mut *mut c_void,
    extra: *mut *mut c_void,
) -> hipError_t {
    // SAFETY: hipModuleLaunchKernel's prototype.
    let f: hip_fn::hipModuleLaunchKernel =
        match unsafe { real(Entry::HipModuleLaunchKernel, hip_sym::hipModuleLaunchKernel) } {
            Ok(f) => f,
            Err(rc) => return rc,
        };
    // SAFETY: forwarding the caller's arguments.
    let rc = unsafe {
        f(
            function, gx, gy, gz, bx, by, bz, shared, stream, params, extra,
        )
    };
    if rc == HIP_SUCCESS {
        record(
            Launcher::ModuleLaunchKernel,
            function as usize,
            [gx, gy, gz],
            [bx, by, bz],
            stream,
        );
    }
    rc
}

/// # Safety
/// As the HIP runtime's hipExtLaunchKernel.
#[no_mangle]
pub unsafe extern "C" fn hipExtLaunchKernel(
    function: *const c_void,
    grid: dim3,
    block: dim3,
    args: *mut *mut c_void,
    shared: usize,
    stream: hipStream_t,
    start: hipEvent_t,
    stop: hipEvent_t,
    flags: c_int,
) -> hipError_t {
    // SAFETY: hipExtLaunchKernel's prototype.
    let f: hip_fn::hipExtLaunchKernel =
        match unsafe { real(Entry::HipExtLaunchKernel, hip_sym::hipExtLaunchKernel) } {
            Ok(f) => f,
            Err(rc) => return rc,
        };
    // SAFETY: forwarding the caller's arguments.
    let rc = unsafe {
        f(
            function, grid, block, args, shared, stream, start, stop, flags,
        )
    };
    if rc == HIP_SUCCESS {
        record(
            Launcher::ExtLaunchKernel,
            function as usize,
            [grid.x, grid.y, grid.z],
            [block.x, block.y, block.z],
            stream,
        );
    }
    rc
}

/// hipExtModuleLaunchKernel takes the global work size (grid x block), not
/// the grid: the ring stores the grid in blocks, like the other launches.
///
/// # Safety
/// As the HIP runtime's hipExtModuleLaunchKernel.
#[no_mangle]
pub unsafe extern "C" fn hipExtModuleLaunchKernel(
    function: hipFunction_t,
    gwx: u32,
    gwy: u32,
    gwz: u32,
    bx: u32,
    by: u32,
    bz: u32,
    shared: usize,
    stream: hipStream_t,
    params: *mut *mut c_void,
    extra: *mut *mut c_void,
    start: hipEvent_t,
    stop: hipEvent_t,
    flags: u32,
) -> hipError_t {
    // SAFETY: hipExtModuleLaunchKernel's prototype.
    let f: hip_fn::hipExtModuleLaunchKernel = match unsafe {
        real(
            Entry::HipExtModuleLaunchKernel,
            hip_sym::hipExtModuleLaunchKernel,
        )
    } {
        Ok(f) => f,
        Err(rc) => return rc,
    };
    // SAFETY: forwarding the caller's arguments.
    let rc = unsafe {
        f(
            function, gwx, gwy, gwz, bx, by, bz, shared, stream, params, extra, start, stop, flags,
        )
    };
    if rc == HIP_SUCCESS {
        let blocks = |w: u32, b: u32| if b == 0 { w } else { w.div_ceil(b) };
        record(
            Launcher::ExtModuleLaunchKernel,
            function as usize,
            [blocks(gwx, bx), blocks(gwy, by), blocks(gwz, bz)],
            [bx, by, bz],
            stream,
        );
    }
    rc
}

/// # Safety
/// As the HIP runtime's hipLaunchCooperativeKernel.
#[no_mangle]
pub unsafe extern "C" fn hipLaunchCooperativeKernel(
    function: *const c_void,
    grid: dim3,
    block: dim3,
    args: *mut *mut c_void,
    shared: c_uint,
    stream: hipStream_t,
) -> hipError_t {
    // SAFETY: hipLaunchCooperativeKernel's prototype.
    let f: hip_fn::hipLaunchCooperativeKernel = match unsafe {
        real(
            Entry::HipLaunchCooperativeKernel,
            hip_sym::hipLaunchCooperativeKernel,
        )
    } {
        Ok(f) => f,
        Err(rc) => return rc,
    };
    // SAFETY: forwarding the caller's arguments.
    let rc = unsafe { f(function, grid, block, args, shared, stream) };
    if rc == HIP_SUCCESS {
        record(
            Launcher::LaunchCooperativeKernel,
            function as usize,
            [grid.x, grid.y, grid.z],
            [block.x, block.y, block.z],
            stream,
        );
    }
    rc
}

/// A graph launch is recorded with the graph's handle; its kernels are not
/// listed one by one.
///
/// # Safety
/// As the HIP runtime's hipGraphLaunch.
#[no_mangle]
pub unsafe extern "C" fn hipGraphLaunch(graph: hipGraphExec_t, stream: hipStream_t) -> hipError_t {
    // SAFETY: hipGraphLaunch's prototype.
    let f: hip_fn::hipGraphLaunch =
        match unsafe { real(Entry::HipGraphLaunch, hip_sym::hipGraphLaunch) } {
            Ok(f) => f,
            Err(rc) => return rc,
        };
    // SAFETY: forwarding the caller's arguments.
    let rc = unsafe { f(graph, stream) };
    if rc == HIP_SUCCESS {
        record(
            Launcher::GraphLaunch,
            graph as usize,
            [0; 3],
            [0; 3],
            stream,
        );
    }
    rc
}

/// hipSetDevice, forwarded; on success the thread's current device is
/// noted, so launches need not ask the runtime.
///
/// # Safety
/// As the HIP runtime's hipSetDevice.
#[no_mangle]
pub unsafe extern "C" fn hipSetDevice(device: c_int) -> hipError_t {
    // SAFETY: hipSetDevice's prototype.
    let f: hip_fn::hipSetDevice = match unsafe { real(Entry::HipSetDevice, hip_sym::hipSetDevice) }
    {
        Ok(f) => f,
        Err(rc) => return rc,
    };
    // SAFETY: forwarding the caller's argument.
    let rc = unsafe { f(device) };
    if rc == HIP_SUCCESS && process::config().enabled {
        let (tid, _) = ctx();
        set_ctx(tid, device);
    }
    rc
}

/// hipDeviceSynchronize, forwarded; on success every launch the device had
/// before the call is marked completed.
///
/// # Safety
/// As the HIP runtime's hipDeviceSynchronize.
#[no_mangle]
pub unsafe extern "C" fn hipDeviceSynchronize() -> hipError_t {
    // SAFETY: hipDeviceSynchronize's prototype.
    let f: hip_fn::hipDeviceSynchronize =
        match unsafe { real(Entry::HipDeviceSynchronize, hip_sym::hipDeviceSynchronize) } {
            Ok(f) => f,
            Err(rc) => return rc,
        };
    if !process::config().enabled {
        // SAFETY: no arguments.
        return unsafe { f() };
    }
    let r = ring(ctx().1);
    let mark = r.mark();
    // SAFETY: no arguments.
    let rc = unsafe { f() };
    if rc == HIP_SUCCESS {
        r.device_synced(mark);
    }
    rc
}

/// hipStreamSynchronize, forwarded; on success the launches on that stream
/// before the call are marked completed.
///
/// # Safety
/// As the HIP runtime's hipStreamSynchronize.
#[no_mangle]
pub unsafe extern "C" fn hipStreamSynchronize(stream: hipStream_t) -> hipError_t {
    // SAFETY: hipStreamSynchronize's prototype.
    let f: hip_fn::hipStreamSynchronize =
        match unsafe { real(Entry::HipStreamSynchronize, hip_sym::hipStreamSynchronize) } {
            Ok(f) => f,
            Err(rc) => return rc,
        };
    if !process::config().enabled {
        // SAFETY: forwarding the caller's stream.
        return unsafe { f(stream) };
    }
    let r = ring(ctx().1);
    let mark = r.mark();
    // SAFETY: forwarding the caller's stream.
    let rc = unsafe { f(stream) };
    if rc == HIP_SUCCESS {
        r.stream_synced(stream as usize, mark);
    }
    rc
}
