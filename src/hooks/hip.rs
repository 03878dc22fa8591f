//! HIP allocation hooks. Prototypes match ROCm's hip_runtime_api.h
//! (checked against the real 5.2.3 and 6.4.3 headers by tests/real_rocm.rs).
#![allow(non_snake_case)]

use super::{boundary, decide, forward_free, record_alloc, Decision};
use crate::abi::{
    hipError_t, hipMemPool_t, hipStream_t, HIP_ERROR_NOT_INITIALIZED, HIP_ERROR_NOT_SUPPORTED,
    HIP_MEM_ADVISE_SET_COARSE_GRAIN, HIP_SUCCESS,
};
use crate::config::Config;
use crate::devices;
use crate::entry::Entry;
use crate::policy;
use crate::shim::{self, hip_sym, HIP, STATS};
use std::ffi::{c_char, c_int, c_uint, c_void, CStr};

type MallocFn = unsafe extern "C" fn(*mut *mut c_void, usize) -> hipError_t;
type FlagsMallocFn = unsafe extern "C" fn(*mut *mut c_void, usize, c_uint) -> hipError_t;
type FreeFn = unsafe extern "C" fn(*mut c_void) -> hipError_t;
type HostRegisterFn = unsafe extern "C" fn(*mut c_void, usize, c_uint) -> hipError_t;
type MallocAsyncFn = unsafe extern "C" fn(*mut *mut c_void, usize, hipStream_t) -> hipError_t;
type MallocFromPoolAsyncFn =
    unsafe extern "C" fn(*mut *mut c_void, usize, hipMemPool_t, hipStream_t) -> hipError_t;
type FreeAsyncFn = unsafe extern "C" fn(*mut c_void, hipStream_t) -> hipError_t;
type MemAdviseFn = unsafe extern "C" fn(*const c_void, usize, c_int, c_int) -> hipError_t;
type GetProcAddressFn =
    unsafe extern "C" fn(*const c_char, *mut *mut c_void, c_int, u64, *mut c_int) -> hipError_t;

/// The real function `index` as type `F`, or the error code to return when
/// it is missing (warned once per entry point). Never panics: once the
/// symbol is resolved this is one atomic load; the first call per symbol
/// (runtime discovery, set-up, warnings) runs behind its own panic boundary.
///
/// # Safety
/// `F` must be the C prototype of the runtime symbol `index`.
#[inline(always)]
unsafe fn real<F: Copy>(entry: Entry, index: usize) -> Result<F, hipError_t> {
    debug_assert_eq!(std::mem::size_of::<F>(), std::mem::size_of::<usize>());
    let p = match shim::hip_cached(index) {
        Some(Some(p)) => p,
        _ => real_slow(entry, index)?,
    };
    // SAFETY: the caller guarantees F is the symbol's function type.
    Ok(unsafe { std::mem::transmute_copy::<usize, F>(&p) })
}

#[cold]
#[inline(never)]
fn real_slow(entry: Entry, index: usize) -> Result<usize, hipError_t> {
    boundary(Err(HIP_ERROR_NOT_INITIALIZED), || match shim::hip(index) {
        Some(p) => Ok(p),
        None if HIP.handle(shim::config().hip_library.as_deref()).is_some() => {
            shim::warn_once(
                entry,
                format_args!(
                    "{} is not in this HIP runtime; returning hipErrorNotSupported",
                    entry.name()
                ),
            );
            Err(HIP_ERROR_NOT_SUPPORTED)
        }
        None => {
            shim::warn_once(
                entry,
                format_args!(
                    "{} was called but no HIP runtime was found (searched loaded objects, RTLD_NEXT, RMCP_HIP_LIBRARY, libamdhip64.so.7/.6/.5); returning hipErrorNotInitialized",
                    entry.name()
                ),
            );
            Err(HIP_ERROR_NOT_INITIALIZED)
        }
    })
}

/// Requests the runtime will refuse or answer without memory (NULL
/// out-pointer, zero size) are forwarded unchanged, so the caller gets the
/// runtime's own answer to exactly what it asked.
fn rewritable(ptr: *mut *mut c_void, size: usize) -> bool {
    !ptr.is_null() && size != 0
}

/// Whether rewriting applies to host memory (any visible device a target).
#[inline]
fn host_applies(cfg: &Config) -> bool {
    match cfg.mode {
        crate::config::Mode::Off => false,
        crate::config::Mode::Force => true,
        crate::config::Mode::Auto => devices::any_target(),
    }
}

/// Whether rewriting applies to the current device; also returns it.
fn device_applies(cfg: &Config) -> (bool, i32) {
    let dev = devices::current_device().unwrap_or(-1);
    let hit = match cfg.mode {
        crate::config::Mode::Off => false,
        crate::config::Mode::Force => true,
        crate::config::Mode::Auto => dev >= 0 && devices::is_target(dev),
    };
    (hit, dev)
}

/// The current device for the record, without deciding anything.
fn record_device() -> i32 {
    decide(|_| devices::current_device().unwrap_or(-1)).unwrap_or(-1)
}

/// hipHostMalloc and hipExtHostAlloc share one rule and one shape. Cannot
/// panic, so the hooks need no outer `boundary` (a frame on the hottest
/// path): the decision and the record have their own, `real` never panics,
/// and the rest is the forwarded call.
#[inline(always)]
unsafe fn host_malloc_like(
    entry: Entry,
    index: usize,
    ptr: *mut *mut c_void,
    size: usize,
    flags: c_uint,
) -> hipError_t {
    let d = decide(|cfg| {
        let rw = if rewritable(ptr, size) && host_applies(cfg) {
            policy::rewrite_host_malloc(flags, cfg.host_coherent_env)
        } else {
            None
        };
        Decision::from_rewrite(flags, rw)
    })
    .unwrap_or(Decision::unchanged(flags));
    // SAFETY: both symbols have the hipHostMalloc prototype.
    let f: FlagsMallocFn = match unsafe { real(entry, index) } {
        Ok(f) => f,
        Err(rc) => return rc,
    };
    // SAFETY: forwarding the caller's arguments to the real function.
    let rc = unsafe { f(ptr, size, d.flags) };
    // SAFETY: ptr is the caller's out-pointer, read only on success.
    unsafe { record_alloc(entry, rc == HIP_SUCCESS, ptr, size, flags, d, -1) };
    rc
}

/// # Safety
/// As the HIP runtime's hipHostMalloc.
#[no_mangle]
pub unsafe extern "C" fn hipHostMalloc(
    ptr: *mut *mut c_void,
    size: usize,
    flags: c_uint,
) -> hipError_t {
    // SAFETY: the caller upholds hipHostMalloc's contract. No `boundary`:
    // see `host_malloc_like`.
    unsafe { host_malloc_like(Entry::HipHostMalloc, hip_sym::HOST_MALLOC, ptr, size, flags) }
}

/// # Safety
/// As the HIP runtime's hipExtHostAlloc (ROCm >= 6.3).
#[no_mangle]
pub unsafe extern "C" fn hipExtHostAlloc(
    ptr: *mut *mut c_void,
    size: usize,
    flags: c_uint,
) -> hipError_t {
    // SAFETY: the caller upholds hipExtHostAlloc's contract. No `boundary`:
    // see `host_malloc_like`.
    unsafe {
        host_malloc_like(
            Entry::HipExtHostAlloc,
            hip_sym::EXT_HOST_ALLOC,
            ptr,
            size,
            flags,
        )
    }
}

/// hipHostAlloc accepts no NonCoherent flag, so a rewritten request goes to
/// hipHostMalloc instead (same memory, freed by hipHostFree/hipFreeHost).
///
/// # Safety
/// As the HIP runtime's hipHostAlloc.
#[no_mangle]
pub unsafe extern "C" fn hipHostAlloc(
    ptr: *mut *mut c_void,
    size: usize,
    flags: c_uint,
) -> hipError_t {
    boundary(HIP_ERROR_NOT_INITIALIZED, || {
        let entry = Entry::HipHostAlloc;
        let d = decide(|cfg| {
            let rw = if rewritable(ptr, size) && host_applies(cfg) {
                policy::rewrite_host_alloc(flags, cfg.host_coherent_env)
            } else {
                None
            };
            Decision::from_rewrite(flags, rw)
        })
        .unwrap_or(Decision::unchanged(flags));
        let index = if d.rewritten {
            hip_sym::HOST_MALLOC
        } else {
            hip_sym::HOST_ALLOC
        };
        // SAFETY: hipHostAlloc and hipHostMalloc share this prototype.
        let f: FlagsMallocFn = match unsafe { real(entry, index) } {
            Ok(f) => f,
            Err(rc) => return rc,
        };
        // SAFETY: forwarding the caller's arguments.
        let rc = unsafe { f(ptr, size, d.flags) };
        // SAFETY: out-pointer read only on success.
        unsafe { record_alloc(entry, rc == HIP_SUCCESS, ptr, size, flags, d, -1) };
        rc
    })
}

/// hipMemAllocHost is the runtime's hipHostMalloc(ptr, size, 0), made
/// inside the runtime where a hipHostMalloc hook cannot see it; on targets
/// rmcp calls hipHostMalloc(ptr, size, NonCoherent) instead.
///
/// # Safety
/// As the HIP runtime's hipMemAllocHost.
#[no_mangle]
pub unsafe extern "C" fn hipMemAllocHost(ptr: *mut *mut c_void, size: usize) -> hipError_t {
    boundary(HIP_ERROR_NOT_INITIALIZED, || {
        let entry = Entry::HipMemAllocHost;
        let rewrite = rewritable(ptr, size) && decide(host_applies).unwrap_or(false);
        let rc = if rewrite {
            // SAFETY: hipHostMalloc's prototype.
            let f: FlagsMallocFn = match unsafe { real(entry, hip_sym::HOST_MALLOC) } {
                Ok(f) => f,
                Err(rc) => return rc,
            };
            // SAFETY: forwarding the caller's out-pointer and size.
            unsafe { f(ptr, size, policy::MEM_ALLOC_HOST_REWRITE) }
        } else {
            // SAFETY: hipMemAllocHost's prototype.
            let f: MallocFn = match unsafe { real(entry, hip_sym::MEM_ALLOC_HOST) } {
                Ok(f) => f,
                Err(rc) => return rc,
            };
            // SAFETY: forwarding the caller's arguments.
            unsafe { f(ptr, size) }
        };
        let d = if rewrite {
            Decision {
                flags: policy::MEM_ALLOC_HOST_REWRITE,
                rewritten: true,
            }
        } else {
            Decision::unchanged(0)
        };
        // SAFETY: out-pointer read only on success.
        unsafe { record_alloc(entry, rc == HIP_SUCCESS, ptr, size, 0, d, -1) };
        rc
    })
}

/// hipExtMallocWithFlags: Finegrained and Uncached become Default on a
/// target current device.
///
/// # Safety
/// As the HIP runtime's hipExtMallocWithFlags.
#[no_mangle]
pub unsafe extern "C" fn hipExtMallocWithFlags(
    ptr: *mut *mut c_void,
    size: usize,
    flags: c_uint,
) -> hipError_t {
    boundary(HIP_ERROR_NOT_INITIALIZED, || {
        let entry = Entry::HipExtMallocWithFlags;
        let (d, dev) = decide(|cfg| {
            let (hit, dev) = device_applies(cfg);
            let rw = if hit && rewritable(ptr, size) {
                policy::rewrite_ext_malloc(flags)
            } else {
                None
            };
            (Decision::from_rewrite(flags, rw), dev)
        })
        .unwrap_or((Decision::unchanged(flags), -1));
        // SAFETY: hipExtMallocWithFlags' prototype.
        let f: FlagsMallocFn = match unsafe { real(entry, hip_sym::EXT_MALLOC_WITH_FLAGS) } {
            Ok(f) => f,
            Err(rc) => return rc,
        };
        // SAFETY: forwarding the caller's arguments.
        let rc = unsafe { f(ptr, size, d.flags) };
        // SAFETY: out-pointer read only on success.
        unsafe { record_alloc(entry, rc == HIP_SUCCESS, ptr, size, flags, d, dev) };
        rc
    })
}

/// hipMallocManaged: forwarded unchanged, then advised coarse-grained with
/// hipMemAdvise(SetCoarseGrain) on a target device. A refused advice is
/// reported, not turned into a failure.
///
/// # Safety
/// As the HIP runtime's hipMallocManaged.
#[no_mangle]
pub unsafe extern "C" fn hipMallocManaged(
    ptr: *mut *mut c_void,
    size: usize,
    flags: c_uint,
) -> hipError_t {
    boundary(HIP_ERROR_NOT_INITIALIZED, || {
        let entry = Entry::HipMallocManaged;
        let (advise, dev) = decide(device_applies).unwrap_or((false, -1));
        // SAFETY: hipMallocManaged's prototype.
        let f: FlagsMallocFn = match unsafe { real(entry, hip_sym::MALLOC_MANAGED) } {
            Ok(f) => f,
            Err(rc) => return rc,
        };
        // SAFETY: forwarding the caller's arguments.
        let rc = unsafe { f(ptr, size, flags) };
        let mut d = Decision::unchanged(flags);
        if rc == HIP_SUCCESS && advise && !ptr.is_null() {
            // SAFETY: success: the runtime wrote *ptr.
            let base = unsafe { *ptr };
            // SAFETY: hipMemAdvise's prototype.
            match unsafe { real::<MemAdviseFn>(entry, hip_sym::MEM_ADVISE) } {
                Ok(advise) => {
                    // SAFETY: advising the range the runtime just returned.
                    let arc = unsafe { advise(base, size, HIP_MEM_ADVISE_SET_COARSE_GRAIN, dev) };
                    if arc == HIP_SUCCESS {
                        d.rewritten = true;
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
        unsafe { record_alloc(entry, rc == HIP_SUCCESS, ptr, size, flags, d, dev) };
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
    let rc = call(f);
    let dev = if rc == HIP_SUCCESS { device() } else { -1 };
    // SAFETY: out-pointer read only on success.
    unsafe {
        record_alloc(
            entry,
            rc == HIP_SUCCESS,
            ptr,
            size,
            0,
            Decision::unchanged(0),
            dev,
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
            hip_sym::MALLOC,
            ptr,
            size,
            record_device,
            |f: MallocFn| f(ptr, size),
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
            hip_sym::MALLOC_HOST,
            ptr,
            size,
            || -1,
            |f: MallocFn| f(ptr, size),
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
            hip_sym::MALLOC_ASYNC,
            ptr,
            size,
            record_device,
            |f: MallocAsyncFn| f(ptr, size, stream),
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
            hip_sym::MALLOC_FROM_POOL_ASYNC,
            ptr,
            size,
            record_device,
            |f: MallocFromPoolAsyncFn| f(ptr, size, pool, stream),
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
        // SAFETY: hipHostRegister's prototype.
        let f: HostRegisterFn = match unsafe { real(entry, hip_sym::HOST_REGISTER) } {
            Ok(f) => f,
            Err(rc) => return rc,
        };
        // SAFETY: forwarding the caller's arguments.
        let rc = unsafe { f(host_ptr, size, flags) };
        super::after(|| {
            STATS.record(entry, false);
            if rc == HIP_SUCCESS && shim::config().enabled {
                super::record_range(
                    entry,
                    host_ptr as usize,
                    size,
                    flags,
                    Decision::unchanged(flags),
                    -1,
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
    let f: FreeFn = match unsafe { real(entry, index) } {
        Ok(f) => f,
        Err(rc) => return rc,
    };
    // SAFETY: forwarding the caller's pointer.
    forward_free(entry, ptr, |rc| rc == HIP_SUCCESS, || unsafe { f(ptr) })
}

/// # Safety
/// As the HIP runtime's hipFree.
#[no_mangle]
pub unsafe extern "C" fn hipFree(ptr: *mut c_void) -> hipError_t {
    free_like(Entry::HipFree, hip_sym::FREE, ptr)
}

/// # Safety
/// As the HIP runtime's hipHostFree.
#[no_mangle]
pub unsafe extern "C" fn hipHostFree(ptr: *mut c_void) -> hipError_t {
    free_like(Entry::HipHostFree, hip_sym::HOST_FREE, ptr)
}

/// # Safety
/// As the HIP runtime's hipFreeHost.
#[no_mangle]
pub unsafe extern "C" fn hipFreeHost(ptr: *mut c_void) -> hipError_t {
    free_like(Entry::HipFreeHost, hip_sym::FREE_HOST, ptr)
}

/// # Safety
/// As the HIP runtime's hipHostUnregister.
#[no_mangle]
pub unsafe extern "C" fn hipHostUnregister(host_ptr: *mut c_void) -> hipError_t {
    free_like(Entry::HipHostUnregister, hip_sym::HOST_UNREGISTER, host_ptr)
}

/// # Safety
/// As the HIP runtime's hipFreeAsync.
#[no_mangle]
pub unsafe extern "C" fn hipFreeAsync(ptr: *mut c_void, stream: hipStream_t) -> hipError_t {
    boundary(HIP_ERROR_NOT_INITIALIZED, || {
        let entry = Entry::HipFreeAsync;
        // SAFETY: hipFreeAsync's prototype.
        let f: FreeAsyncFn = match unsafe { real(entry, hip_sym::FREE_ASYNC) } {
            Ok(f) => f,
            Err(rc) => return rc,
        };
        // SAFETY: forwarding the caller's arguments.
        forward_free(
            entry,
            ptr,
            |rc| rc == HIP_SUCCESS,
            || unsafe { f(ptr, stream) },
        )
    })
}

/// Our hook for `name`, for hipGetProcAddress: callers that look functions
/// up must still reach the policy.
pub fn own_hook(name: &[u8]) -> Option<*mut c_void> {
    let e = Entry::from_name(std::str::from_utf8(name).ok()?)?;
    let f: *mut c_void = match e {
        Entry::HipMalloc => hipMalloc as *mut c_void,
        Entry::HipFree => hipFree as *mut c_void,
        Entry::HipHostMalloc => hipHostMalloc as *mut c_void,
        Entry::HipHostAlloc => hipHostAlloc as *mut c_void,
        Entry::HipExtHostAlloc => hipExtHostAlloc as *mut c_void,
        Entry::HipMallocHost => hipMallocHost as *mut c_void,
        Entry::HipMemAllocHost => hipMemAllocHost as *mut c_void,
        Entry::HipHostFree => hipHostFree as *mut c_void,
        Entry::HipFreeHost => hipFreeHost as *mut c_void,
        Entry::HipExtMallocWithFlags => hipExtMallocWithFlags as *mut c_void,
        Entry::HipMallocManaged => hipMallocManaged as *mut c_void,
        Entry::HipHostRegister => hipHostRegister as *mut c_void,
        Entry::HipHostUnregister => hipHostUnregister as *mut c_void,
        Entry::HipMallocAsync => hipMallocAsync as *mut c_void,
        Entry::HipMallocFromPoolAsync => hipMallocFromPoolAsync as *mut c_void,
        Entry::HipFreeAsync => hipFreeAsync as *mut c_void,
        Entry::HipGetProcAddress => hipGetProcAddress as *mut c_void,
        Entry::HsaMemoryPoolAllocate | Entry::HsaMemoryPoolFree => return None,
    };
    Some(f)
}

/// hipGetProcAddress dlsym()s the runtime's own symbol, which would bypass
/// the hooks: forwarded, then our hook is handed back for every name rmcp
/// hooks.
///
/// # Safety
/// As the HIP runtime's hipGetProcAddress (ROCm >= 6.1).
#[no_mangle]
pub unsafe extern "C" fn hipGetProcAddress(
    symbol: *const c_char,
    pfn: *mut *mut c_void,
    hip_version: c_int,
    flags: u64,
    symbol_status: *mut c_int,
) -> hipError_t {
    boundary(HIP_ERROR_NOT_INITIALIZED, || {
        let entry = Entry::HipGetProcAddress;
        // SAFETY: hipGetProcAddress's prototype.
        let f: GetProcAddressFn = match unsafe { real(entry, hip_sym::GET_PROC_ADDRESS) } {
            Ok(f) => f,
            Err(rc) => return rc,
        };
        // SAFETY: forwarding the caller's arguments.
        let rc = unsafe { f(symbol, pfn, hip_version, flags, symbol_status) };
        let mut replaced = false;
        super::after(|| {
            if rc == HIP_SUCCESS && !symbol.is_null() && !pfn.is_null() && shim::config().enabled {
                // SAFETY: non-NULL, NUL-terminated per the API contract.
                let name = unsafe { CStr::from_ptr(symbol) };
                // SAFETY: pfn is non-NULL and was just written by the runtime.
                if let Some(hook) =
                    own_hook(name.to_bytes()).filter(|_| unsafe { !(*pfn).is_null() })
                {
                    // SAFETY: as above.
                    unsafe { *pfn = hook };
                    replaced = true;
                }
            }
            STATS.record(entry, replaced);
        });
        rc
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::host;

    #[test]
    fn every_hip_entry_point_has_a_hook_for_get_proc_address() {
        for e in Entry::ALL {
            let hooked = own_hook(e.name().as_bytes());
            assert_eq!(
                hooked.is_some(),
                e.name().starts_with("hip"),
                "{}",
                e.name()
            );
        }
        assert!(own_hook(b"hipMemcpy").is_none());
        assert!(own_hook(b"\xff").is_none());
        assert_eq!(
            own_hook(b"hipHostMalloc"),
            Some(hipHostMalloc as *mut c_void)
        );
    }

    #[test]
    fn host_flag_constant_is_the_non_coherent_bit() {
        assert_eq!(policy::MEM_ALLOC_HOST_REWRITE, host::NON_COHERENT);
    }
}
