//! HSA hooks: hsa_amd_memory_pool_allocate / _free, and hsa_init (to
//! register the fault handler as soon as the runtime is open).
//!
//! Coherence belongs to the pool in HSA. On a targeted GPU agent, an
//! allocation from a fine-grained pool made by application code is sent to
//! the same agent's coarse-grained pool. Allocations made by the ROCm
//! libraries themselves are never touched: the HIP runtime allocates
//! signals and kernel arguments through this symbol and needs them
//! fine-grained. The exported symbol is a trampoline that passes the
//! caller's address on (`super::forward::hook_with_caller`), as the HIP allocation
//! hooks' are.
#![allow(non_snake_case)]

use super::forward::{
    after, boundary, caller_is_rocm, decide, ensure_fault_handler, forward_free, hook_with_caller,
    record_held, record_range,
};
use super::nested;
use crate::abi::{hsa, hsa_amd_memory_pool_t, hsa_status_t};
use crate::core::backing::Held;
use crate::core::entry::Entry;
use crate::core::policy::{self, Forward};
use crate::core::registry::Memory;
use crate::interpose::fault;
use crate::interpose::process::{self, STATS};
use crate::interpose::symbols::{hsa_cached, hsa_fn, hsa_real, hsa_sym};
use crate::interpose::topology::topology;
use std::ffi::c_void;

/// The real function `index` as `F`, or the status to return when the HSA
/// runtime or the function is missing (warned once per entry point). Once
/// the symbol is resolved, one load (`hsa_cached`: neither the
/// configuration nor the runtime's slot table is asked).
///
/// # Safety
/// `F` must be the C prototype of symbol `index`.
#[inline(always)]
unsafe fn real<F: Copy>(entry: Entry, index: usize) -> Result<F, hsa_status_t> {
    debug_assert_eq!(std::mem::size_of::<F>(), std::mem::size_of::<usize>());
    match hsa_cached(index) {
        // SAFETY: the caller guarantees F is the symbol's function type.
        Some(Some(p)) => Ok(unsafe { std::mem::transmute_copy::<usize, F>(&p) }),
        // SAFETY: as above.
        _ => unsafe { real_slow(entry, index) },
    }
}

/// `real` before the symbol is resolved, or when it is missing.
///
/// # Safety
/// As `real`.
#[cold]
#[inline(never)]
unsafe fn real_slow<F: Copy>(entry: Entry, index: usize) -> Result<F, hsa_status_t> {
    // SAFETY: the caller guarantees F is the symbol's function type.
    match unsafe { hsa_real::<F>(process::config(), index) } {
        Some(f) => Ok(f),
        None => {
            process::warn_once(
                entry,
                format_args!("{} was called but no HSA runtime was found", entry.name()),
            );
            Err(hsa::STATUS_ERROR_NOT_INITIALIZED)
        }
    }
}

/// The Rust side of the trampoline: the exported symbol's arguments plus
/// the address it was called from.
extern "C" fn pool_allocate_from(
    pool: hsa_amd_memory_pool_t,
    size: usize,
    flags: u32,
    ptr: *mut *mut c_void,
    caller: usize,
) -> hsa_status_t {
    boundary(hsa::STATUS_ERROR, || {
        let entry = Entry::HsaMemoryPoolAllocate;
        // SAFETY: hsa_amd_memory_pool_allocate's prototype.
        let f: hsa_fn::hsa_amd_memory_pool_allocate =
            match unsafe { real(entry, hsa_sym::hsa_amd_memory_pool_allocate) } {
                Ok(f) => f,
                Err(rc) => return rc,
            };
        let nest = nested::active();
        if let Some(nest) = nest.filter(|n| n.allocating() && caller_is_rocm(caller)) {
            // The HIP runtime allocating for the HIP allocation whose hook
            // is in its real call on this thread: never rewritten (ROCm's
            // own call), and held for that hook to record (`core::backing`).
            // SAFETY: forwarding the caller's arguments.
            let rc = unsafe { f(pool, size, flags, ptr) };
            after(|| {
                STATS.record(entry, false);
                // (`active`: rmcp is enabled.)
                if rc == hsa::STATUS_SUCCESS && !ptr.is_null() {
                    // SAFETY: success: the runtime wrote *ptr.
                    let base = unsafe { *ptr } as usize;
                    if base != 0 && size != 0 {
                        record_held(nest.hold(Held {
                            base,
                            size,
                            pool: pool.handle,
                        }));
                    }
                }
                ensure_fault_handler();
            });
            return rc;
        }
        // Until a ROCm library has been seen calling this hook (`nest` is
        // None), the caller is asked here, once, for the policy and for
        // `note_caller` alike; after that only the policy asks, and only
        // when the call would be rewritten.
        let by_rocm = nest.is_none().then(|| caller_is_rocm(caller));
        // The decision, the pool's requested GLOBAL_FLAGS and its agent's
        // node; None when the pool is not in the map (forwarded unchanged).
        let plan = decide(|cfg| {
            let info = *topology(cfg)?.pool(pool.handle)?;
            let fwd = policy::hsa_pool(
                cfg.mode,
                policy::Pool {
                    handle: info.pool,
                    kind: info.kind,
                    coarse_sibling: info.coarse_sibling.map(|s| (s, info.coarse_sibling_flags)),
                    agent_target: info.agent_target,
                },
                || by_rocm.unwrap_or_else(|| caller_is_rocm(caller)),
            );
            Some((fwd, info.kind.global_flags, info.agent_node as i32))
        })
        .flatten();
        let (fwd, requested, node) = plan.unwrap_or((Forward::unchanged(pool.handle, 0), 0, -1));
        // SAFETY: forwarding the caller's arguments to the decided pool.
        let rc = unsafe {
            f(
                hsa_amd_memory_pool_t { handle: fwd.target },
                size,
                flags,
                ptr,
            )
        };
        after(|| {
            STATS.record(entry, fwd.rewritten);
            if rc == hsa::STATUS_SUCCESS && !ptr.is_null() && process::config().enabled {
                // SAFETY: success: the runtime wrote *ptr.
                let base = unsafe { *ptr } as usize;
                record_range(
                    entry,
                    base,
                    size,
                    requested,
                    fwd.flags,
                    fwd.rewritten,
                    Memory::HsaPool(node),
                );
            }
            if let Some(by_rocm) = by_rocm {
                // Only while enabled, so that `active` implies it.
                nested::note_caller(|| by_rocm && process::config().enabled);
            }
            ensure_fault_handler();
        });
        rc
    })
}

hook_with_caller! {
    /// hsa_amd_memory_pool_allocate, exported: a trampoline that hands its
    /// return address to `pool_allocate_from`.
    ///
    /// # Safety
    /// As the HSA runtime's hsa_amd_memory_pool_allocate.
    fn hsa_amd_memory_pool_allocate(
        pool: hsa_amd_memory_pool_t,
        size: usize,
        flags: u32,
        ptr: *mut *mut c_void
    ) -> hsa_status_t => pool_allocate_from, x86: "r8", arm: "x4"
}

/// # Safety
/// As the HSA runtime's hsa_amd_memory_pool_free.
#[no_mangle]
pub unsafe extern "C" fn hsa_amd_memory_pool_free(ptr: *mut c_void) -> hsa_status_t {
    boundary(hsa::STATUS_ERROR, || {
        let entry = Entry::HsaMemoryPoolFree;
        // SAFETY: hsa_amd_memory_pool_free's prototype.
        let f: hsa_fn::hsa_amd_memory_pool_free =
            match unsafe { real(entry, hsa_sym::hsa_amd_memory_pool_free) } {
                Ok(f) => f,
                Err(rc) => return rc,
            };
        if nested::active().is_some_and(|n| n.freed_by_hip(ptr as usize)) {
            // Inside the HIP free of the same base, whose hook took the
            // record at this base already: counted, forwarded.
            after(|| STATS.record(entry, false));
            // SAFETY: forwarding the caller's pointer.
            return unsafe { f(ptr) };
        }
        // SAFETY: forwarding the caller's pointer.
        forward_free(
            entry,
            ptr,
            |rc| rc == hsa::STATUS_SUCCESS,
            || unsafe { f(ptr) },
        )
    })
}

/// hsa_init, forwarded; on success rmcp registers its fault handler (if it
/// is not yet registered, whatever happened at earlier allocations).
///
/// # Safety
/// As the HSA runtime's hsa_init.
#[no_mangle]
pub unsafe extern "C" fn hsa_init() -> hsa_status_t {
    boundary(hsa::STATUS_ERROR, || {
        // SAFETY: hsa_init's prototype.
        // Not an entry point: no warning of its own when missing.
        let Some(f) =
            (unsafe { hsa_real::<hsa_fn::hsa_init>(process::config(), hsa_sym::hsa_init) })
        else {
            return hsa::STATUS_ERROR_NOT_INITIALIZED;
        };
        // SAFETY: no arguments.
        let rc = unsafe { f() };
        if rc == hsa::STATUS_SUCCESS {
            after(fault::register_at_hsa_init);
        }
        rc
    })
}
