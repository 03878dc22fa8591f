//! What every hook does around the forwarded call: run the policy behind a
//! panic boundary, know the caller (`hook_with_caller`, `caller_is_rocm`),
//! find the real function, record the result, put a freed record back if
//! the runtime refuses the free. The hook modules (`hip`,
//! `hsa`, `launch`) use these; this module uses none of them.

use crate::abi::{hipError_t, HIP_ERROR_NOT_INITIALIZED, HIP_ERROR_NOT_SUPPORTED};
use crate::core::backing::Held;
use crate::core::config::Config;
use crate::core::entry::Entry;
use crate::core::policy::{Forward, Rules};
use crate::core::registry::{Allocation, Memory};
use crate::core::sync::{now_ns, thread_id};
use crate::interpose::process::{self, REGISTRY, STATS};
use crate::interpose::symbols::{self, HIP};
use crate::interpose::topology::topology;
use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};

/// The policy's view of the configuration.
#[inline(always)]
pub(super) fn rules(cfg: &Config) -> Rules {
    Rules {
        mode: cfg.mode,
        host_coherent_env: cfg.host_coherent_env,
        include_rocm_callers: cfg.include_rocm_callers,
    }
}

/// Defines an exported hook as a two-instruction naked trampoline that
/// passes its return address (the caller) to `$target` as one more
/// argument and tail-jumps there: the stack is untouched and `$target`
/// returns straight to the caller. Knowing the caller needs the return
/// address, which Rust cannot read; a C trampoline would not do (a cdylib's
/// version script hides symbols that come from C). `$x86` and `$arm` name
/// the register of the extra argument (SysV / AAPCS64: the argument after
/// the hook's own).
macro_rules! hook_with_caller {
    (
        $(#[$meta:meta])*
        fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty => $target:path, x86: $x86:literal, arm: $arm:literal
    ) => {
        $(#[$meta])*
        #[cfg(all(target_arch = "x86_64", not(rmcp_no_caller_check)))]
        #[unsafe(naked)]
        #[no_mangle]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> $ret {
            // At entry [rsp] holds the return address.
            core::arch::naked_asm!(concat!("mov ", $x86, ", [rsp]"), "jmp {target}", target = sym $target)
        }

        $(#[$meta])*
        #[cfg(all(target_arch = "aarch64", not(rmcp_no_caller_check)))]
        #[unsafe(naked)]
        #[no_mangle]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> $ret {
            // AAPCS64 keeps the return address in x30.
            core::arch::naked_asm!(concat!("mov ", $arm, ", x30"), "b {target}", target = sym $target)
        }

        // The build bench/run.sh measures the caller check against: the
        // hook without trampoline and without the check.
        $(#[$meta])*
        #[cfg(rmcp_no_caller_check)]
        #[no_mangle]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> $ret {
            // SAFETY: the hook's own contract, passed on.
            #[allow(unused_unsafe)]
            unsafe {
                $target($($arg,)* 0)
            }
        }
    };
}
pub(super) use hook_with_caller;

/// Whether the code at `caller` belongs to a ROCm library
/// (`policy::is_rocm_library`). Cached in a small direct-mapped table: the
/// answer for an address never changes while the library stays loaded, and
/// dladdr takes the loader lock. A slot holds the caller itself when it is
/// application code (the common case: a shift, a mask, one compare with
/// memory) and its complement when it is a ROCm library; 0 is empty.
#[inline(always)]
pub(super) fn caller_is_rocm(caller: usize) -> bool {
    if cfg!(rmcp_no_caller_check) {
        // Opaque, not a constant: with a constant `false` the compiler
        // proves that `nested::note_caller` never stores and deletes the
        // nesting bookkeeping from every hook, and the measured difference
        // would include it. Costs the comparison build about 2 instructions
        // per call, so the measured check reads that much low.
        return std::hint::black_box(false);
    }
    // Direct-mapped by address bits 3..9 (a mask, no multiply): distinct
    // call sites rarely share them.
    let slot = &CALLERS[(caller >> 3) % CALLER_SLOTS];
    let cached = slot.load(Ordering::Relaxed);
    if cached == caller {
        return false;
    }
    if cached == !caller {
        return true;
    }
    caller_is_rocm_slow(slot, caller)
}

const CALLER_SLOTS: usize = 64;
static CALLERS: [AtomicUsize; CALLER_SLOTS] = [const { AtomicUsize::new(0) }; CALLER_SLOTS];

#[cold]
#[inline(never)]
fn caller_is_rocm_slow(slot: &AtomicUsize, caller: usize) -> bool {
    // Unknown (a panic while asking the loader): the application's call.
    let verdict = boundary(false, || {
        crate::interpose::runtime::object_of(caller)
            .is_some_and(|path| crate::core::policy::is_rocm_library(path.to_bytes()))
    });
    slot.store(if verdict { !caller } else { caller }, Ordering::Relaxed);
    verdict
}

/// Runs the policy for a call. Returns `None` (forward unchanged) when rmcp
/// is disabled (AT_SECURE) or the policy panicked.
#[inline(always)]
pub(super) fn decide<T>(f: impl FnOnce(&Config) -> T) -> Option<T> {
    catch_unwind(AssertUnwindSafe(|| {
        let cfg = process::config();
        if !cfg.enabled {
            return None;
        }
        #[cfg(feature = "fault-injection")]
        if cfg.test_panic {
            panic!("RMCP_TEST_PANIC=policy");
        }
        Some(f(cfg))
    }))
    .ok()
    .flatten()
}

/// Runs bookkeeping after the real call; a panic here is dropped (the panic
/// hook has already said so) so the caller still gets the runtime's answer.
#[inline(always)]
pub(super) fn after(f: impl FnOnce()) {
    let _ = catch_unwind(AssertUnwindSafe(f));
}

/// The outermost boundary of a hook: a panic that escaped everything else
/// (symbol resolution, say) becomes `on_panic` instead of an abort.
#[inline(always)]
pub(super) fn boundary<R>(on_panic: R, f: impl FnOnce() -> R) -> R {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(on_panic)
}

/// Records a successful allocation of `size` bytes written to `*out`,
/// requested with flags `requested` and forwarded as `fwd`. `decided`:
/// the hook's `decide` ran its policy, so rmcp is known to be enabled (one
/// configuration test fewer); false: asked here.
///
/// # Safety
/// `out` is the caller's out-pointer; it is only read when the runtime
/// reported success, when it is valid.
// Inlined into each hook: the arguments stay in registers.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(super) unsafe fn record_alloc<T>(
    entry: Entry,
    ok: bool,
    out: *mut *mut c_void,
    size: usize,
    requested: u32,
    fwd: &Forward<T>,
    memory: Memory,
    decided: bool,
) {
    let (applied, rewritten) = (fwd.flags, fwd.rewritten);
    after(|| {
        STATS.record(entry, rewritten);
        if !ok || out.is_null() || !(decided || process::config().enabled) {
            return;
        }
        // SAFETY: non-NULL out-pointer the runtime just wrote on success.
        let base = unsafe { *out } as usize;
        record_range(entry, base, size, requested, applied, rewritten, memory);
        // The HIP runtime opens HSA on its first call, possibly without
        // going through hsa_init's exported symbol.
        ensure_fault_handler();
    })
}

/// `fault::ensure_handler` from the allocation path, until calling it can no
/// longer do anything: once the handler is registered, or after more calls
/// than `ensure_handler` makes attempts (it stops looking for an HSA runtime
/// after 32; the `hsa_init` hook registers it whatever happened here). Saves a call per
/// allocation for the rest of the process.
#[inline(always)]
pub(super) fn ensure_fault_handler() {
    if !FAULT_HANDLER_SETTLED.load(Ordering::Relaxed) {
        ensure_fault_handler_slow();
    }
}

static FAULT_HANDLER_SETTLED: AtomicBool = AtomicBool::new(false);

#[cold]
#[inline(never)]
fn ensure_fault_handler_slow() {
    static CALLS: AtomicU32 = AtomicU32::new(0);
    crate::interpose::fault::ensure_handler();
    if crate::interpose::fault::handler_registered() || CALLS.fetch_add(1, Ordering::Relaxed) >= 64
    {
        FAULT_HANDLER_SETTLED.store(true, Ordering::Relaxed);
    }
}

/// Records a successful allocation whose address is already known.
#[inline]
pub(super) fn record_range(
    entry: Entry,
    base: usize,
    size: usize,
    requested: u32,
    applied: u32,
    rewritten: bool,
    memory: Memory,
) {
    if base == 0 || size == 0 {
        return;
    }
    REGISTRY.insert(Allocation {
        base,
        size,
        entry,
        requested_flags: requested,
        applied_flags: applied,
        memory,
        thread: thread_id(),
        time_ns: now_ns(),
        rewritten,
    });
}

/// After a HIP allocation's real call, with the HSA allocation `held`
/// meanwhile (`nested`): recorded unless it backs the HIP result
/// `[base, base + size)` (`base` 0: the call failed), which is then its one
/// record (`core::backing`).
#[inline(always)]
pub(super) fn settle_held(held: Held, base: usize, size: usize) {
    if held.backs(base, size) {
        #[cfg(feature = "test-counters")]
        process::BACKED_BY_HSA.fetch_add(1, Ordering::Relaxed);
    } else {
        record_held(held);
    }
}

/// The allocation a call wrote to `out` (0 if it failed or `out` is NULL).
///
/// # Safety
/// `out` is NULL or the caller's out-pointer, which the runtime wrote when
/// `ok`.
#[inline(always)]
pub(super) unsafe fn written(ok: bool, out: *mut *mut c_void) -> usize {
    if ok && !out.is_null() {
        // SAFETY: non-NULL out-pointer the runtime just wrote on success.
        unsafe { *out as usize }
    } else {
        0
    }
}

/// Records an HSA pool allocation its hook held back (`nested`), if any,
/// as the hook would have: a ROCm library's allocation, forwarded
/// unchanged, with its pool's GLOBAL_FLAGS and node. A panic is dropped.
#[inline(always)]
pub(super) fn record_held(h: Held) {
    if h.is_some() {
        record_held_now(h);
    }
}

#[cold]
#[inline(never)]
fn record_held_now(h: Held) {
    after(|| record_held_facts(h));
}

fn record_held_facts(h: Held) {
    let (flags, node) = decide(|cfg| {
        let info = topology(cfg)?.pool(h.pool)?;
        Some((info.kind.global_flags, info.agent_node as i32))
    })
    .flatten()
    .unwrap_or((0, -1));
    record_range(
        Entry::HsaMemoryPoolAllocate,
        h.base,
        h.size,
        flags,
        flags,
        false,
        Memory::HsaPool(node),
    );
}

/// Forwards a free: the record leaves the registry before the real free (so
/// a racing allocation that reuses the address is not removed by mistake)
/// and comes back if the runtime refuses the free.
#[inline(always)]
pub(super) fn forward_free(
    entry: Entry,
    ptr: *mut c_void,
    succeeded: impl Fn(i32) -> bool,
    real: impl FnOnce() -> i32,
) -> i32 {
    let mut removed = false;
    after(|| {
        STATS.record(entry, false);
        // No test of `config().enabled`: with rmcp disabled nothing was
        // recorded, so there is nothing to take.
        if !ptr.is_null() {
            removed = REGISTRY.take(ptr as usize, now_ns());
        }
    });
    let rc = real();
    if removed && !succeeded(rc) {
        after(|| {
            REGISTRY.untake(ptr as usize);
        });
    }
    rc
}

/// The real function `index` as type `F`, or the error code to return when
/// it is missing (warned once per entry point). Never panics: once the
/// symbol is resolved this is one atomic load; the first call per symbol
/// (runtime discovery, set-up, warnings) runs behind its own panic boundary.
///
/// # Safety
/// `F` must be the C prototype of the runtime symbol `index`.
#[inline(always)]
pub(super) unsafe fn real<F: Copy>(entry: Entry, index: usize) -> Result<F, hipError_t> {
    debug_assert_eq!(std::mem::size_of::<F>(), std::mem::size_of::<usize>());
    let p = match symbols::hip_cached(index) {
        Some(Some(p)) => p,
        _ => real_slow(entry, index)?,
    };
    // SAFETY: the caller guarantees F is the symbol's function type.
    Ok(unsafe { std::mem::transmute_copy::<usize, F>(&p) })
}

/// In a hook (or its closure): the real `$sym`, typed by its prototype
/// `hip_fn::$sym`, or return the error code `real` gives for `$entry`.
/// Naming the symbol once keeps its index and its type from disagreeing.
macro_rules! real_or_return {
    ($entry:expr, $sym:ident) => {
        // SAFETY: hip_fn::$sym is the C prototype of the runtime symbol hip_sym::$sym.
        match unsafe {
            super::forward::real::<$crate::interpose::symbols::hip_fn::$sym>(
                $entry,
                $crate::interpose::symbols::hip_sym::$sym,
            )
        } {
            Ok(f) => f,
            Err(rc) => return rc,
        }
    };
}
pub(super) use real_or_return;

#[cold]
#[inline(never)]
fn real_slow(entry: Entry, index: usize) -> Result<usize, hipError_t> {
    boundary(Err(HIP_ERROR_NOT_INITIALIZED), || {
        let cfg = process::config();
        match symbols::hip(cfg, index) {
            Some(p) => Ok(p),
            None if HIP.handle(cfg.hip_library.as_deref()).is_some() => {
                process::warn_once(
                    entry,
                    format_args!(
                        "{} is not in this HIP runtime; returning hipErrorNotSupported",
                        entry.name()
                    ),
                );
                Err(HIP_ERROR_NOT_SUPPORTED)
            }
            None => {
                process::warn_once(
                    entry,
                    format_args!(
                        "{} was called but no HIP runtime was found (searched loaded objects, RTLD_NEXT, RMCP_HIP_LIBRARY, the program's library search path and the default one for libamdhip64.so.7/.6/.5); returning hipErrorNotInitialized",
                        entry.name()
                    ),
                );
                Err(HIP_ERROR_NOT_INITIALIZED)
            }
        }
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
        assert!(!caller_is_rocm(0));
    }
}
