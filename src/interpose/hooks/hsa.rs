//! HSA hooks: hsa_amd_memory_pool_allocate / _free, and hsa_init (to
//! register the fault handler as soon as the runtime is open).
//!
//! Coherence belongs to the pool in HSA. On a targeted GPU agent, an
//! allocation from a fine-grained pool made by application code is sent to
//! the same agent's coarse-grained pool. Allocations made by the ROCm
//! libraries themselves are never touched: the HIP runtime allocates
//! signals and kernel arguments through this symbol and needs them
//! fine-grained. Knowing the caller needs the return address, which Rust
//! cannot read, so the exported symbol is a two-instruction naked
//! trampoline that passes it on as an extra argument. (A C trampoline would
//! not do: a cdylib's version script hides symbols that come from C.)
#![allow(non_snake_case)]

use super::forward::{after, boundary, decide, ensure_fault_handler, forward_free, record_range};
use crate::abi::{hsa, hsa_amd_memory_pool_t, hsa_status_t};
use crate::core::entry::Entry;
use crate::core::policy::{self, Forward};
use crate::core::registry::Memory;
use crate::interpose::fault;
use crate::interpose::process::{self, STATS};
use crate::interpose::symbols::{hsa_fn, hsa_real, hsa_sym};
use crate::interpose::topology::topology;
use std::ffi::c_void;
use std::sync::atomic::{AtomicU64, Ordering};

/// The real function `index` as `F`, or the status to return when the HSA
/// runtime or the function is missing (warned once per entry point).
///
/// # Safety
/// `F` must be the C prototype of symbol `index`.
unsafe fn real<F: Copy>(entry: Entry, index: usize) -> Result<F, hsa_status_t> {
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

/// Whether the code at `caller` belongs to a ROCm library. Cached in a small
/// direct-mapped table: the answer for an address never changes while the
/// library stays loaded, and dladdr takes the loader lock.
pub fn caller_is_rocm(caller: usize) -> bool {
    const SLOTS: usize = 64;
    // Each slot holds (caller << 1 | verdict); 0 means empty. User-space
    // addresses on x86-64 and aarch64 fit in 48 bits.
    static CACHE: [AtomicU64; SLOTS] = [const { AtomicU64::new(0) }; SLOTS];
    let slot = &CACHE[(caller.wrapping_mul(0x9E37_79B9) >> 7) % SLOTS];
    let cached = slot.load(Ordering::Relaxed);
    if cached != 0 && (cached >> 1) as usize == caller {
        return cached & 1 == 1;
    }
    let verdict = crate::interpose::runtime::object_of(caller)
        .is_some_and(|path| policy::is_rocm_library(path.to_bytes()));
    slot.store(((caller as u64) << 1) | verdict as u64, Ordering::Relaxed);
    verdict
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
                || caller_is_rocm(caller),
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
            ensure_fault_handler();
        });
        rc
    })
}

/// hsa_amd_memory_pool_allocate, exported: passes its return address to
/// `pool_allocate_from` as a fifth argument and tail-jumps there, so the
/// stack is untouched and `pool_allocate_from` returns straight to the
/// caller.
///
/// # Safety
/// As the HSA runtime's hsa_amd_memory_pool_allocate.
#[cfg(target_arch = "x86_64")]
#[unsafe(naked)]
#[no_mangle]
pub unsafe extern "C" fn hsa_amd_memory_pool_allocate(
    pool: hsa_amd_memory_pool_t,
    size: usize,
    flags: u32,
    ptr: *mut *mut c_void,
) -> hsa_status_t {
    // SysV: pool in rdi, size rsi, flags edx, ptr rcx; the 5th argument goes
    // in r8. At entry [rsp] holds the return address.
    core::arch::naked_asm!("mov r8, [rsp]", "jmp {target}", target = sym pool_allocate_from)
}

/// See the x86_64 version; AAPCS64 keeps the return address in x30.
///
/// # Safety
/// As the HSA runtime's hsa_amd_memory_pool_allocate.
#[cfg(target_arch = "aarch64")]
#[unsafe(naked)]
#[no_mangle]
pub unsafe extern "C" fn hsa_amd_memory_pool_allocate(
    pool: hsa_amd_memory_pool_t,
    size: usize,
    flags: u32,
    ptr: *mut *mut c_void,
) -> hsa_status_t {
    core::arch::naked_asm!("mov x4, x30", "b {target}", target = sym pool_allocate_from)
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
        // SAFETY: forwarding the caller's pointer.
        forward_free(
            entry,
            ptr,
            |rc| rc == hsa::STATUS_SUCCESS,
            || unsafe { f(ptr) },
        )
    })
}

/// hsa_init, forwarded; on success rmcp registers its fault handler.
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
            after(fault::ensure_handler);
        }
        rc
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_cache_answers_consistently() {
        let here = caller_cache_answers_consistently as fn() as usize;
        assert!(!caller_is_rocm(here));
        assert!(!caller_is_rocm(here)); // cached
        assert!(!caller_is_rocm(1));
    }
}
