//! HIP allocation hooks. Prototypes match ROCm's hip_runtime_api.h
//! (checked against the real 5.2.3, 6.4.3 and 7.2.4 headers by tests/real_rocm.rs).
#![allow(non_snake_case)]

use super::forward::{
    after, boundary, caller_is_rocm, decide, forward_free, hook_with_caller, real, real_or_return,
    record_alloc, record_range, rules, settle_held, written,
};
use super::nested;
use crate::abi::{
    hipError_t, hipMemPool_t, hipStream_t, HIP_ERROR_NOT_INITIALIZED,
    HIP_MEM_ADVISE_SET_COARSE_GRAIN, HIP_SUCCESS,
};
use crate::core::config::Config;
use crate::core::entry::Entry;
use crate::core::policy::{self, Called, Forward, Rules};
use crate::core::registry::Memory;
use crate::interpose::devices;
use crate::interpose::process::{self, STATS};
use crate::interpose::symbols::{hip_fn, hip_sym};
use crate::interpose::threads;
use std::ffi::{c_uint, c_void};

/// hipHostMalloc's prototype, which hipHostAlloc and hipExtHostAlloc share
/// (a rewritten hipHostAlloc call goes to hipHostMalloc).
type FlagsMallocFn = hip_fn::hipHostMalloc;

/// Requests the runtime will refuse or answer without memory (NULL
/// out-pointer, zero size) are forwarded unchanged, so the caller gets the
/// runtime's own answer to exactly what it asked.
fn has_memory(ptr: *mut *mut c_void, size: usize) -> bool {
    !ptr.is_null() && size != 0
}

/// The current device and whether it is a target (asked by the policy only
/// when it matters).
fn current_device(cfg: &Config) -> i32 {
    devices::current_device(cfg).unwrap_or(-1)
}
fn is_target(cfg: &Config, dev: i32) -> bool {
    dev >= 0 && devices::is_target(cfg, dev)
}

/// The device a record is filed under: the thread's current device as the
/// hooks noted it (`threads::current_device`). Asking the runtime's
/// hipGetDevice instead cost 288 instructions per hipMalloc on ROCm 7.2.4.
fn record_device() -> i32 {
    threads::current_device()
}

/// Calls real function `index` (the decision's target, one with
/// hipHostMalloc's prototype) with the caller's out-pointer and size and
/// the decided flags, and records the result.
///
/// # Safety
/// As hipHostMalloc; symbol `index` has hipHostMalloc's prototype.
// Inlined into each hook: the arguments stay in registers.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn forward_flags_malloc<T>(
    entry: Entry,
    index: usize,
    fwd: Forward<T>,
    ptr: *mut *mut c_void,
    size: usize,
    requested: u32,
    memory: Memory,
    decided: bool,
) -> hipError_t {
    // SAFETY: the caller guarantees the target's prototype.
    let f: FlagsMallocFn = match unsafe { real(entry, index) } {
        Ok(f) => f,
        Err(rc) => return rc,
    };
    // SAFETY: forwarding the caller's arguments with the decided flags.
    let rc = unsafe { alloc_into(ptr, size, || f(ptr, size, fwd.flags)) };
    // SAFETY: ptr is the caller's out-pointer, read only on success.
    unsafe {
        record_alloc(
            entry,
            rc == HIP_SUCCESS,
            ptr,
            size,
            requested,
            &fwd,
            memory,
            decided,
        )
    };
    rc
}

/// `call`, a HIP allocation's real call that writes to `out`, through
/// `nested::hip_alloc`: an HSA allocation the runtime made meanwhile is
/// recorded unless it backs the result (`core::backing`).
///
/// # Safety
/// `out` is NULL or the caller's out-pointer, which `call` writes on success.
#[inline(always)]
unsafe fn alloc_into(
    out: *mut *mut c_void,
    size: usize,
    call: impl FnOnce() -> hipError_t,
) -> hipError_t {
    nested::hip_alloc(call, |&rc, held| {
        // SAFETY: as this function's contract.
        settle_held(held, unsafe { written(rc == HIP_SUCCESS, out) }, size)
    })
}

/// The three host-memory hooks share one shape: decide, forward to
/// `rewritten_to` when the policy rewrote the call and to the entry point
/// itself otherwise, record. Cannot panic, so the hooks need no outer
/// `boundary` (a frame on the hottest path): the decision and the record
/// have their own, `real` never panics, and the rest is the forwarded call.
#[inline(always)]
unsafe fn host_malloc_like(
    entry: Entry,
    rewritten_to: usize,
    rule: impl FnOnce(u32, bool, Rules, &Config, usize) -> Forward<Called>,
    ptr: *mut *mut c_void,
    size: usize,
    flags: c_uint,
    caller: usize,
) -> hipError_t {
    // Asked outside `decide`, so the panic boundary's closure stays small
    // enough to be inlined (asked inside, lazily, the pair cost 40 more).
    let decision = decide(|cfg| rule(flags, has_memory(ptr, size), rules(cfg), cfg, caller));
    let decided = decision.is_some();
    let fwd = decision.unwrap_or(Forward::unchanged(Called, flags));
    let index = if fwd.rewritten {
        rewritten_to
    } else {
        entry.index()
    };
    // SAFETY: the three entry points have hipHostMalloc's prototype.
    unsafe { forward_flags_malloc(entry, index, fwd, ptr, size, flags, Memory::Host, decided) }
}

/// `policy::host_malloc` for a call from `caller`; the caller is looked up
/// only when the rest of the policy would rewrite.
#[inline(always)]
fn host_malloc_rule(
    flags: u32,
    has_memory: bool,
    rules: Rules,
    cfg: &Config,
    caller: usize,
) -> Forward<Called> {
    policy::host_malloc(
        flags,
        has_memory,
        rules,
        || devices::any_target(cfg),
        || caller_is_rocm(caller),
    )
}

hook_with_caller! {
    /// hipHostMalloc: a trampoline to `host_malloc_from` (the caller rule
    /// needs the return address).
    ///
    /// # Safety
    /// As the HIP runtime's hipHostMalloc.
    fn hipHostMalloc(ptr: *mut *mut c_void, size: usize, flags: c_uint) -> hipError_t
        => host_malloc_from, x86: "rcx", arm: "x3"
}

/// hipHostMalloc called from `caller`.
unsafe extern "C" fn host_malloc_from(
    ptr: *mut *mut c_void,
    size: usize,
    flags: c_uint,
    caller: usize,
) -> hipError_t {
    // SAFETY: the caller upholds hipHostMalloc's contract. No `boundary`:
    // see `host_malloc_like`.
    unsafe {
        host_malloc_like(
            Entry::HipHostMalloc,
            hip_sym::hipHostMalloc,
            host_malloc_rule,
            ptr,
            size,
            flags,
            caller,
        )
    }
}

hook_with_caller! {
    /// # Safety
    /// As the HIP runtime's hipExtHostAlloc (ROCm >= 6.3).
    fn hipExtHostAlloc(ptr: *mut *mut c_void, size: usize, flags: c_uint) -> hipError_t
        => ext_host_alloc_from, x86: "rcx", arm: "x3"
}

/// hipExtHostAlloc called from `caller`.
unsafe extern "C" fn ext_host_alloc_from(
    ptr: *mut *mut c_void,
    size: usize,
    flags: c_uint,
    caller: usize,
) -> hipError_t {
    // SAFETY: the caller upholds hipExtHostAlloc's contract. No `boundary`:
    // see `host_malloc_like`.
    unsafe {
        host_malloc_like(
            Entry::HipExtHostAlloc,
            hip_sym::hipExtHostAlloc,
            // A closure of its own: each hook's panic boundary then has one
            // caller, and the compiler inlines it (shared with
            // hipHostMalloc, it stayed a call: +37 instructions per pair).
            |flags, has_memory, rules, cfg, caller| {
                host_malloc_rule(flags, has_memory, rules, cfg, caller)
            },
            ptr,
            size,
            flags,
            caller,
        )
    }
}

hook_with_caller! {
    /// hipHostAlloc: see `policy::host_alloc` for where a rewritten call goes.
    ///
    /// # Safety
    /// As the HIP runtime's hipHostAlloc.
    fn hipHostAlloc(ptr: *mut *mut c_void, size: usize, flags: c_uint) -> hipError_t
        => host_alloc_from, x86: "rcx", arm: "x3"
}

/// hipHostAlloc called from `caller`.
unsafe extern "C" fn host_alloc_from(
    ptr: *mut *mut c_void,
    size: usize,
    flags: c_uint,
    caller: usize,
) -> hipError_t {
    // No `boundary`, as in `host_malloc_like`. The decision leaves its
    // panic boundary as flags and `rewritten` only (8 bytes, in a register;
    // the whole `Forward<Entry>` cost 19 instructions per call): the
    // policy's target is hipHostMalloc exactly when it rewrote the call
    // (`policy::host_alloc`, unit-tested there).
    // SAFETY: the caller upholds hipHostAlloc's contract.
    unsafe {
        host_malloc_like(
            Entry::HipHostAlloc,
            hip_sym::hipHostMalloc,
            |flags, has_memory, rules, cfg, caller| {
                let f = policy::host_alloc(
                    flags,
                    has_memory,
                    rules,
                    || devices::any_target(cfg),
                    || caller_is_rocm(caller),
                );
                Forward {
                    target: Called,
                    flags: f.flags,
                    rewritten: f.rewritten,
                }
            },
            ptr,
            size,
            flags,
            caller,
        )
    }
}

hook_with_caller! {
    /// hipMemAllocHost: see `policy::mem_alloc_host`.
    ///
    /// # Safety
    /// As the HIP runtime's hipMemAllocHost.
    fn hipMemAllocHost(ptr: *mut *mut c_void, size: usize) -> hipError_t
        => mem_alloc_host_from, x86: "rdx", arm: "x2"
}

/// hipMemAllocHost called from `caller`.
unsafe extern "C" fn mem_alloc_host_from(
    ptr: *mut *mut c_void,
    size: usize,
    caller: usize,
) -> hipError_t {
    boundary(HIP_ERROR_NOT_INITIALIZED, || {
        let entry = Entry::HipMemAllocHost;
        let decision = decide(|cfg| {
            policy::mem_alloc_host(
                has_memory(ptr, size),
                rules(cfg),
                || devices::any_target(cfg),
                || caller_is_rocm(caller),
            )
        });
        let decided = decision.is_some();
        let fwd = decision.unwrap_or(Forward::unchanged(entry, 0));
        let rc = if fwd.target == Entry::HipHostMalloc {
            // SAFETY: hipHostMalloc's prototype.
            let f: FlagsMallocFn = match unsafe { real(entry, fwd.target.index()) } {
                Ok(f) => f,
                Err(rc) => return rc,
            };
            // SAFETY: forwarding the caller's out-pointer and size.
            unsafe { alloc_into(ptr, size, || f(ptr, size, fwd.flags)) }
        } else {
            // SAFETY: hipMemAllocHost's prototype.
            let f: hip_fn::hipMemAllocHost = match unsafe { real(entry, hip_sym::hipMemAllocHost) }
            {
                Ok(f) => f,
                Err(rc) => return rc,
            };
            // SAFETY: forwarding the caller's arguments.
            unsafe { alloc_into(ptr, size, || f(ptr, size)) }
        };
        // SAFETY: out-pointer read only on success.
        unsafe {
            record_alloc(
                entry,
                rc == HIP_SUCCESS,
                ptr,
                size,
                0,
                &fwd,
                Memory::Host,
                decided,
            )
        };
        rc
    })
}

hook_with_caller! {
    /// hipExtMallocWithFlags: see `policy::ext_malloc`.
    ///
    /// # Safety
    /// As the HIP runtime's hipExtMallocWithFlags.
    fn hipExtMallocWithFlags(ptr: *mut *mut c_void, size: usize, flags: c_uint) -> hipError_t
        => ext_malloc_from, x86: "rcx", arm: "x3"
}

/// hipExtMallocWithFlags called from `caller`.
unsafe extern "C" fn ext_malloc_from(
    ptr: *mut *mut c_void,
    size: usize,
    flags: c_uint,
    caller: usize,
) -> hipError_t {
    boundary(HIP_ERROR_NOT_INITIALIZED, || {
        let entry = Entry::HipExtMallocWithFlags;
        let decision = decide(|cfg| {
            let dev = current_device(cfg);
            let fwd = policy::ext_malloc(
                flags,
                has_memory(ptr, size),
                rules(cfg),
                || is_target(cfg, dev),
                || caller_is_rocm(caller),
            );
            (fwd, dev)
        });
        let decided = decision.is_some();
        let (fwd, dev) = decision.unwrap_or((Forward::unchanged(Called, flags), -1));
        // SAFETY: hipExtMallocWithFlags has hipHostMalloc's prototype.
        unsafe {
            forward_flags_malloc(
                entry,
                hip_sym::hipExtMallocWithFlags,
                fwd,
                ptr,
                size,
                flags,
                Memory::hip_device(dev),
                decided,
            )
        }
    })
}

hook_with_caller! {
    /// hipMallocManaged: forwarded unchanged, then advised coarse-grained
    /// with hipMemAdvise(SetCoarseGrain) on a target device. A refused
    /// advice is reported, not turned into a failure.
    ///
    /// # Safety
    /// As the HIP runtime's hipMallocManaged.
    fn hipMallocManaged(ptr: *mut *mut c_void, size: usize, flags: c_uint) -> hipError_t
        => malloc_managed_from, x86: "rcx", arm: "x3"
}

/// hipMallocManaged called from `caller`.
unsafe extern "C" fn malloc_managed_from(
    ptr: *mut *mut c_void,
    size: usize,
    flags: c_uint,
    caller: usize,
) -> hipError_t {
    boundary(HIP_ERROR_NOT_INITIALIZED, || {
        let entry = Entry::HipMallocManaged;
        let decision = decide(|cfg| {
            let dev = current_device(cfg);
            let advise = policy::advise_managed_coarse(
                rules(cfg),
                || is_target(cfg, dev),
                || caller_is_rocm(caller),
            );
            (advise, dev)
        });
        let decided = decision.is_some();
        let (advise, dev) = decision.unwrap_or((false, -1));
        // SAFETY: hipMallocManaged's prototype.
        let f: hip_fn::hipMallocManaged = match unsafe { real(entry, hip_sym::hipMallocManaged) } {
            Ok(f) => f,
            Err(rc) => return rc,
        };
        // SAFETY: forwarding the caller's arguments.
        let rc = unsafe { alloc_into(ptr, size, || f(ptr, size, flags)) };
        let mut fwd = Forward::unchanged(Called, flags);
        if rc == HIP_SUCCESS && advise && !ptr.is_null() {
            // SAFETY: success: the runtime wrote *ptr.
            let base = unsafe { *ptr };
            // SAFETY: hipMemAdvise's prototype.
            match unsafe { real::<hip_fn::hipMemAdvise>(entry, hip_sym::hipMemAdvise) } {
                Ok(advise) => {
                    // SAFETY: advising the range the runtime just returned.
                    let arc = unsafe { advise(base, size, HIP_MEM_ADVISE_SET_COARSE_GRAIN, dev) };
                    if arc == HIP_SUCCESS {
                        fwd.rewritten = true;
                    } else {
                        log::warn!(
                            "hipMemAdvise(SetCoarseGrain) on a {size}-byte managed allocation on device {dev} returned {arc}; it stays fine-grained"
                        );
                    }
                }
                Err(_) => log::warn!(
                    "hipMemAdvise is missing; managed memory on device {dev} stays fine-grained"
                ),
            }
        }
        // SAFETY: out-pointer read only on success.
        unsafe {
            record_alloc(
                entry,
                rc == HIP_SUCCESS,
                ptr,
                size,
                flags,
                &fwd,
                Memory::hip_device(dev),
                decided,
            )
        };
        rc
    })
}

/// Forwards an allocation rmcp never rewrites, and records it.
unsafe fn forward_plain<F: Copy>(
    entry: Entry,
    index: usize,
    ptr: *mut *mut c_void,
    size: usize,
    device: impl FnOnce() -> i32,
    call: impl FnOnce(F) -> hipError_t,
) -> hipError_t {
    // SAFETY: the caller passes the F matching `index`.
    let f: F = match unsafe { real(entry, index) } {
        Ok(f) => f,
        Err(rc) => return rc,
    };
    // SAFETY: ptr is the caller's out-pointer, written by `call` on success.
    let rc = unsafe { alloc_into(ptr, size, || call(f)) };
    let dev = if rc == HIP_SUCCESS { device() } else { -1 };
    // SAFETY: out-pointer read only on success.
    unsafe {
        record_alloc(
            entry,
            rc == HIP_SUCCESS,
            ptr,
            size,
            0,
            &Forward::unchanged(Called, 0),
            Memory::hip_device(dev),
            false,
        )
    };
    rc
}

/// # Safety
/// As the HIP runtime's hipMalloc.
#[no_mangle]
pub unsafe extern "C" fn hipMalloc(ptr: *mut *mut c_void, size: usize) -> hipError_t {
    boundary(HIP_ERROR_NOT_INITIALIZED, || unsafe {
        // SAFETY: hipMalloc's prototype; forwarding the caller's arguments.
        forward_plain(
            Entry::HipMalloc,
            hip_sym::hipMalloc,
            ptr,
            size,
            record_device,
            |f: hip_fn::hipMalloc| f(ptr, size),
        )
    })
}

/// # Safety
/// As the HIP runtime's hipMallocHost (deprecated; already coarse-grained).
#[no_mangle]
pub unsafe extern "C" fn hipMallocHost(ptr: *mut *mut c_void, size: usize) -> hipError_t {
    boundary(HIP_ERROR_NOT_INITIALIZED, || unsafe {
        // SAFETY: hipMallocHost's prototype; forwarding the caller's arguments.
        forward_plain(
            Entry::HipMallocHost,
            hip_sym::hipMallocHost,
            ptr,
            size,
            || -1,
            |f: hip_fn::hipMallocHost| f(ptr, size),
        )
    })
}

/// # Safety
/// As the HIP runtime's hipMallocAsync.
#[no_mangle]
pub unsafe extern "C" fn hipMallocAsync(
    ptr: *mut *mut c_void,
    size: usize,
    stream: hipStream_t,
) -> hipError_t {
    boundary(HIP_ERROR_NOT_INITIALIZED, || unsafe {
        // SAFETY: hipMallocAsync's prototype; forwarding the caller's arguments.
        forward_plain(
            Entry::HipMallocAsync,
            hip_sym::hipMallocAsync,
            ptr,
            size,
            record_device,
            |f: hip_fn::hipMallocAsync| f(ptr, size, stream),
        )
    })
}

/// # Safety
/// As the HIP runtime's hipMallocFromPoolAsync.
#[no_mangle]
pub unsafe extern "C" fn hipMallocFromPoolAsync(
    ptr: *mut *mut c_void,
    size: usize,
    pool: hipMemPool_t,
    stream: hipStream_t,
) -> hipError_t {
    boundary(HIP_ERROR_NOT_INITIALIZED, || unsafe {
        // SAFETY: hipMallocFromPoolAsync's prototype; forwarding the arguments.
        forward_plain(
            Entry::HipMallocFromPoolAsync,
            hip_sym::hipMallocFromPoolAsync,
            ptr,
            size,
            record_device,
            |f: hip_fn::hipMallocFromPoolAsync| f(ptr, size, pool, stream),
        )
    })
}

/// hipHostRegister always pins into the fine-grained system pool and honours
/// no coarse flag: forwarded untouched, recorded.
///
/// # Safety
/// As the HIP runtime's hipHostRegister.
#[no_mangle]
pub unsafe extern "C" fn hipHostRegister(
    host_ptr: *mut c_void,
    size: usize,
    flags: c_uint,
) -> hipError_t {
    boundary(HIP_ERROR_NOT_INITIALIZED, || {
        let entry = Entry::HipHostRegister;
        let f = real_or_return!(entry, hipHostRegister);
        // SAFETY: forwarding the caller's arguments.
        let rc = unsafe { f(host_ptr, size, flags) };
        after(|| {
            STATS.record(entry, false);
            if rc == HIP_SUCCESS && process::config().enabled {
                record_range(
                    entry,
                    host_ptr as usize,
                    size,
                    flags,
                    flags,
                    false,
                    Memory::Host,
                );
            }
        });
        rc
    })
}

/// Forwards one of the single-pointer free functions. Cannot panic (see
/// `host_malloc_like`), so its hooks have no outer `boundary`.
#[inline(always)]
fn free_like(entry: Entry, index: usize, ptr: *mut c_void) -> hipError_t {
    // SAFETY: every caller's symbol has the hipFree prototype.
    let f: hip_fn::hipFree = match unsafe { real(entry, index) } {
        Ok(f) => f,
        Err(rc) => return rc,
    };
    // SAFETY: forwarding the caller's pointer.
    forward_free(
        entry,
        ptr,
        |rc| rc == HIP_SUCCESS,
        || nested::hip_free(ptr as usize, || unsafe { f(ptr) }),
    )
}

/// # Safety
/// As the HIP runtime's hipFree.
#[no_mangle]
pub unsafe extern "C" fn hipFree(ptr: *mut c_void) -> hipError_t {
    free_like(Entry::HipFree, hip_sym::hipFree, ptr)
}

/// # Safety
/// As the HIP runtime's hipHostFree.
#[no_mangle]
pub unsafe extern "C" fn hipHostFree(ptr: *mut c_void) -> hipError_t {
    free_like(Entry::HipHostFree, hip_sym::hipHostFree, ptr)
}

/// # Safety
/// As the HIP runtime's hipFreeHost.
#[no_mangle]
pub unsafe extern "C" fn hipFreeHost(ptr: *mut c_void) -> hipError_t {
    free_like(Entry::HipFreeHost, hip_sym::hipFreeHost, ptr)
}

/// # Safety
/// As the HIP runtime's hipHostUnregister.
#[no_mangle]
pub unsafe extern "C" fn hipHostUnregister(host_ptr: *mut c_void) -> hipError_t {
    free_like(
        Entry::HipHostUnregister,
        hip_sym::hipHostUnregister,
        host_ptr,
    )
}

/// # Safety
/// As the HIP runtime's hipFreeAsync.
#[no_mangle]
pub unsafe extern "C" fn hipFreeAsync(ptr: *mut c_void, stream: hipStream_t) -> hipError_t {
    boundary(HIP_ERROR_NOT_INITIALIZED, || {
        let entry = Entry::HipFreeAsync;
        let f = real_or_return!(entry, hipFreeAsync);
        // SAFETY: forwarding the caller's arguments.
        forward_free(
            entry,
            ptr,
            |rc| rc == HIP_SUCCESS,
            || nested::hip_free(ptr as usize, || unsafe { f(ptr, stream) }),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::host;

    #[test]
    fn host_flag_constant_is_the_non_coherent_bit() {
        assert_eq!(policy::MEM_ALLOC_HOST_REWRITE, host::NON_COHERENT);
    }
}
