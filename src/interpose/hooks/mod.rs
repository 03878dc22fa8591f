//! The exported hooks. Each hook is a thin wrapper: ask the pure policy what
//! to forward, call the real runtime, record the result. Three rules hold for
//! every hook:
//! - no panic crosses the C boundary: a panic while deciding forwards the
//!   original arguments (fail open); a panic while recording is dropped;
//!   anything else a hook does runs inside `boundary`, except in the hot
//!   hooks whose every other step is an atomic load or the forwarded call
//!   (`hip::host_malloc_like`, `hip::free_like`);
//! - a missing real function is never called: the hook returns an error code
//!   and warns once;
//! - no registry lock is held while the real runtime runs, so a runtime that
//!   calls back into a hook cannot deadlock.

mod forward;
pub mod hip;
pub mod hsa;
pub mod launch;
mod nested;
pub mod vmm;

// Every exported hook at one path, `rmcp::hooks::NAME` (tests/real_rocm.rs
// checks each one of `hook_table!` there; the table below finds them here).
pub use hip::*;
pub use hsa::*;
pub use launch::*;
pub use vmm::*;

macro_rules! define_hook_lists {
    (
        hip_hooks { $($hv:ident $hs:ident ($($ha:ty),*) -> $hr:ty;)* }
        hsa_hooks { $($sv:ident $ss:ident ($($sa:ty),*) -> $sr:ty;)* }
        hsa_other_hooks { $($os:ident ($($oa:ty),*) -> $or:ty;)* }
        $($rest:tt)*
    ) => {
        /// Every symbol librmcp.so exports besides the C API (the export
        /// audit in tests/hip_shim.rs holds the library to this list).
        pub const EXPORTED: &[&str] = &[
            $(stringify!($hs),)*
            $(stringify!($ss),)*
            $(stringify!($os),)*
        ];

        /// Our hook for `name`, for hipGetProcAddress: callers that look
        /// functions up must still reach the policy. HIP hooks only.
        pub fn own_hook(name: &[u8]) -> Option<*mut c_void> {
            // Compared as bytes: validating the name as UTF-8 first cost
            // more than the search (bench/run.sh's guard: 228 -> 284).
            let e = Entry::ALL.into_iter().find(|e| e.name().as_bytes() == name)?;
            match e {
                $(Entry::$hv => Some($hs as *mut c_void),)*
                _ => None,
            }
        }

        // Every hook has the prototype its table line gives the real function.
        $(const _: crate::interpose::symbols::hip_fn::$hs = $hs;)*
        $(const _: crate::interpose::symbols::hsa_fn::$ss = $ss;)*
        $(const _: crate::interpose::symbols::hsa_fn::$os = $os;)*
    };
}
hook_table!(define_hook_lists);

use crate::abi::{hipError_t, HIP_ERROR_NOT_INITIALIZED, HIP_SUCCESS};
use crate::core::entry::{hook_table, Entry};
use crate::interpose::process::{self, STATS};
use crate::interpose::symbols::{hip_fn, hip_sym};
use forward::{after, boundary, real};
use std::ffi::{c_char, c_int, c_void, CStr};

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
        let f: hip_fn::hipGetProcAddress = match unsafe { real(entry, hip_sym::hipGetProcAddress) }
        {
            Ok(f) => f,
            Err(rc) => return rc,
        };
        // SAFETY: forwarding the caller's arguments.
        let rc = unsafe { f(symbol, pfn, hip_version, flags, symbol_status) };
        // SAFETY: the runtime's answer to this lookup.
        unsafe { hand_back_own_hook(entry, rc, symbol, pfn) };
        rc
    })
}

/// After a successful lookup of `symbol` by the runtime (hipGetProcAddress,
/// hipGetDriverEntryPoint), puts rmcp's hook in `*pfn` when rmcp hooks that
/// name; counts the call, as rewritten when it did.
///
/// # Safety
/// `symbol` is NULL or NUL-terminated; `pfn` is NULL or the caller's
/// out-pointer, which the runtime wrote when `rc` is success.
unsafe fn hand_back_own_hook(
    entry: Entry,
    rc: hipError_t,
    symbol: *const c_char,
    pfn: *mut *mut c_void,
) {
    let mut replaced = false;
    after(|| {
        if rc == HIP_SUCCESS && !symbol.is_null() && !pfn.is_null() && process::config().enabled {
            // SAFETY: non-NULL, NUL-terminated per the API contract.
            let name = unsafe { CStr::from_ptr(symbol) };
            if let Some(hook) = own_hook(name.to_bytes())
                // SAFETY: pfn is non-NULL and was just written by the runtime.
                .filter(|_| unsafe { !(*pfn).is_null() })
            {
                // SAFETY: as above.
                unsafe { *pfn = hook };
                replaced = true;
            }
        }
        STATS.record(entry, replaced);
    });
}

/// hipGetDriverEntryPoint (ROCm >= 7.1) looks names up in the runtime's own
/// handle too: answered with rmcp's hooks, as hipGetProcAddress is.
///
/// # Safety
/// As the HIP runtime's hipGetDriverEntryPoint.
#[no_mangle]
pub unsafe extern "C" fn hipGetDriverEntryPoint(
    symbol: *const c_char,
    pfn: *mut *mut c_void,
    flags: u64,
    status: *mut c_int,
) -> hipError_t {
    // SAFETY: the caller upholds hipGetDriverEntryPoint's contract.
    unsafe {
        driver_entry_point(
            Entry::HipGetDriverEntryPoint,
            hip_sym::hipGetDriverEntryPoint,
            symbol,
            pfn,
            flags,
            status,
        )
    }
}

/// The per-thread-default-stream form of hipGetDriverEntryPoint.
///
/// # Safety
/// As the HIP runtime's hipGetDriverEntryPoint_spt.
#[no_mangle]
pub unsafe extern "C" fn hipGetDriverEntryPoint_spt(
    symbol: *const c_char,
    pfn: *mut *mut c_void,
    flags: u64,
    status: *mut c_int,
) -> hipError_t {
    // SAFETY: the caller upholds hipGetDriverEntryPoint_spt's contract.
    unsafe {
        driver_entry_point(
            Entry::HipGetDriverEntryPointSpt,
            hip_sym::hipGetDriverEntryPoint_spt,
            symbol,
            pfn,
            flags,
            status,
        )
    }
}

/// # Safety
/// As hipGetDriverEntryPoint; `index` is a symbol with its prototype.
unsafe fn driver_entry_point(
    entry: Entry,
    index: usize,
    symbol: *const c_char,
    pfn: *mut *mut c_void,
    flags: u64,
    status: *mut c_int,
) -> hipError_t {
    boundary(HIP_ERROR_NOT_INITIALIZED, || {
        // SAFETY: both entry points share hipGetDriverEntryPoint's prototype.
        let f: hip_fn::hipGetDriverEntryPoint = match unsafe { real(entry, index) } {
            Ok(f) => f,
            Err(rc) => return rc,
        };
        // SAFETY: forwarding the caller's arguments.
        let rc = unsafe { f(symbol, pfn, flags, status) };
        // SAFETY: the runtime's answer to this lookup.
        unsafe { hand_back_own_hook(entry, rc, symbol, pfn) };
        rc
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
