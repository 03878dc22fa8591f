//! What the HIP hook on this thread is doing while its real call runs, so
//! the HSA hooks that call reaches do not record the same memory twice
//! (`crate::core::backing`): a HIP allocation hook marks the thread as
//! allocating, and an HSA pool allocation a ROCm library makes meanwhile is
//! held in the thread's slot instead of taking a registry lock and the
//! clock; a HIP free marks the base it frees, and the HSA free of that base
//! inside it skips the registry (the HIP hook already took the one record a
//! base can have).
//!
//! Until a ROCm library has called the HSA allocation hook (ROCm 6 and 7's
//! HIP runtime does while it starts), no HIP hook marks its calls: a
//! runtime that never allocates through the exported HSA symbol pays one
//! load per hook, not a thread-local lookup.
//!
//! The state is a zero-initialised thread-local without a destructor (on
//! x86-64 an initial-exec one, `here`): no allocation, no lock, no
//! registration at thread exit. A hook reached from
//! inside another's real call restores the outer state when it returns
//! (and records what was held, so nothing is lost). A fork child's thread
//! is the forking one, which returns through the same hooks, so there is
//! nothing to reset.

use crate::core::backing::Held;
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once a ROCm library has called rmcp's HSA allocation hook.
static ROCM_CALLS_HSA: AtomicBool = AtomicBool::new(false);

/// In the HSA allocation hook, while `active` is None: notes a call made by
/// a ROCm library while rmcp is enabled (`by_rocm()`), which makes the HIP
/// hooks mark their calls from then on (so `active` implies enabled).
#[inline(always)]
pub(super) fn note_caller(by_rocm: impl FnOnce() -> bool) {
    if by_rocm() {
        ROCM_CALLS_HSA.store(true, Ordering::Relaxed);
    }
}

/// This thread's state, once a ROCm library has called the HSA hooks.
#[inline(always)]
pub(super) fn active() -> Option<&'static Nest> {
    ROCM_CALLS_HSA.load(Ordering::Relaxed).then(here)
}

const IDLE: usize = 0;
const ALLOCATING: usize = usize::MAX;

/// All zero is the idle state with nothing held: the x86-64 copy of each
/// thread's state starts as zero bytes (`.tbss`).
#[repr(C)]
pub(super) struct Nest {
    /// IDLE, ALLOCATING, or the base a HIP free is freeing.
    doing: Cell<usize>,
    /// The held allocation (`held_size == 0`: none).
    held_base: Cell<usize>,
    held_size: Cell<usize>,
    held_pool: Cell<u64>,
}

const _: () = assert!(IDLE == 0);

/// This thread's state, as a reference that stays valid across the real
/// call. On x86-64 it is an initial-exec thread-local defined in assembly,
/// as `crate::core::sync`'s thread id is: three instructions, where a
/// `thread_local!` in a shared library costs a call to `__tls_get_addr` in
/// each hook (four per hipMalloc+hipFree pair on ROCm 7, about 12
/// instructions each, and the registers the call makes the hook save).
#[inline(always)]
pub(super) fn here() -> &'static Nest {
    state::here()
}

#[cfg(target_arch = "x86_64")]
mod state {
    use crate::interpose::hooks::nested::Nest;

    crate::core::sync::initial_exec_tls!("rmcp_nest_tls", Nest);

    #[inline(always)]
    pub(super) fn here() -> &'static Nest {
        let p: *const Nest;
        // SAFETY: the thread pointer (%fs:0, the TLS ABI) plus
        // rmcp_nest_tls's offset from it (the loader fills the GOT slot) is
        // this thread's copy, which lives as long as the thread; no side
        // effects, so the compiler may reuse one lookup within a hook.
        unsafe {
            std::arch::asm!(
                "mov {p}, qword ptr [rip + rmcp_nest_tls@GOTTPOFF]",
                "add {p}, qword ptr fs:[0]",
                p = out(reg) p,
                options(pure, readonly, nostack),
            )
        };
        // SAFETY: the thread pointer plus an offset inside the thread's TLS
        // is never 0 (telling the compiler saves a test per hook).
        unsafe { std::hint::assert_unchecked(!p.is_null()) };
        // SAFETY: the copy is size_of::<Nest>() zero bytes, aligned, a valid
        // idle Nest; the reference never leaves this thread (Nest is !Sync).
        unsafe { &*p }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod state {
    use crate::interpose::hooks::nested::{Nest, IDLE};
    use std::cell::Cell;

    thread_local! {
        static NEST: Nest = const {
            Nest {
                doing: Cell::new(IDLE),
                held_base: Cell::new(0),
                held_size: Cell::new(0),
                held_pool: Cell::new(0),
            }
        };
    }

    #[inline(always)]
    pub(super) fn here() -> &'static Nest {
        // SAFETY: a thread-local without a destructor lives as long as its
        // thread, and the reference never leaves this thread (Nest is !Sync).
        NEST.with(|n| unsafe { &*(n as *const Nest) })
    }
}

/// Runs `call`, a HIP allocation hook's real call, with this thread marked
/// as allocating once `active`; then, if an HSA allocation was held
/// meanwhile, `settle(&result, held)` (which records it unless it backs the
/// HIP result). Before `active`, just `call`.
#[inline(always)]
pub(super) fn hip_alloc<R>(call: impl FnOnce() -> R, settle: impl FnOnce(&R, Held)) -> R {
    match active() {
        Some(n) => {
            let (r, held) = n.hip_alloc(call);
            if held.is_some() {
                settle(&r, held);
            }
            r
        }
        None => call(),
    }
}

/// `Nest::hip_free` on this thread, once `active`; otherwise just `call`.
#[inline(always)]
pub(super) fn hip_free<R>(base: usize, call: impl FnOnce() -> R) -> R {
    match active() {
        Some(n) => n.hip_free(base, call),
        None => call(),
    }
}

impl Nest {
    /// Runs `call`, a HIP allocation hook's real call, with this thread
    /// marked as allocating; returns its result and the HSA allocation held
    /// meanwhile (`Held::NONE` if none), which the caller records unless it
    /// backs the HIP result.
    #[inline(always)]
    pub(super) fn hip_alloc<R>(&self, call: impl FnOnce() -> R) -> (R, Held) {
        let outer = self.doing.replace(ALLOCATING);
        let r = call();
        self.doing.set(outer);
        (r, self.take_held())
    }

    /// Runs `call`, a HIP free hook's real call of `base`, with this thread
    /// marked as freeing it.
    #[inline(always)]
    pub(super) fn hip_free<R>(&self, base: usize, call: impl FnOnce() -> R) -> R {
        let doing = if base == ALLOCATING { IDLE } else { base };
        let outer = self.doing.replace(doing);
        let r = call();
        self.doing.set(outer);
        r
    }

    /// Whether a HIP allocation hook on this thread is in its real call.
    #[inline(always)]
    pub(super) fn allocating(&self) -> bool {
        self.doing.get() == ALLOCATING
    }

    /// In the HSA allocation hook, when `allocating`: holds `h` for the HIP
    /// hook. Returns the allocation held before it, which the caller records
    /// now (one slot: the first is recorded when a second arrives), or
    /// `Held::NONE`.
    #[inline(always)]
    pub(super) fn hold(&self, h: Held) -> Held {
        let before = self.take_held();
        self.held_base.set(h.base);
        self.held_pool.set(h.pool);
        self.held_size.set(h.size);
        before
    }

    #[inline(always)]
    fn take_held(&self) -> Held {
        match self.held_size.replace(0) {
            0 => Held::NONE,
            size => Held {
                base: self.held_base.get(),
                size,
                pool: self.held_pool.get(),
            },
        }
    }

    /// In the HSA free hook: whether this thread is inside a HIP free of
    /// `base` (whose hook already took the record at `base`).
    #[inline(always)]
    pub(super) fn freed_by_hip(&self, base: usize) -> bool {
        base != IDLE && self.doing.get() == base
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(base: usize) -> Held {
        Held {
            base,
            size: 0x100,
            pool: 7,
        }
    }

    #[test]
    fn only_a_hip_allocation_marks_the_thread_allocating() {
        let n = here();
        assert!(!n.allocating());
        let (inside, kept) = n.hip_alloc(|| n.allocating());
        assert!(inside);
        assert_eq!(kept, Held::NONE, "nothing was held");
        assert!(!n.hip_free(0x10, || n.allocating()));
        assert!(!n.allocating());
    }

    #[test]
    fn the_held_allocation_goes_to_the_hip_hook_and_a_second_displaces_it() {
        let n = here();
        let (now, kept) = n.hip_alloc(|| n.hold(held(1)));
        assert_eq!((now, kept), (Held::NONE, held(1)));
        let ((a, b), kept) = n.hip_alloc(|| (n.hold(held(1)), n.hold(held(2))));
        assert_eq!((a, b, kept), (Held::NONE, held(1), held(2)));
        assert_eq!(n.hip_alloc(|| ()).1, Held::NONE, "taken, not left behind");
    }

    #[test]
    fn a_free_marks_its_base_only_while_it_runs() {
        let n = here();
        assert!(n.hip_free(0x40, || n.freed_by_hip(0x40) && !n.freed_by_hip(0x80)));
        assert!(!n.freed_by_hip(0x40));
        assert!(!n.hip_free(0, || n.freed_by_hip(0)), "hipFree(NULL)");
        assert!(!n.hip_free(ALLOCATING, || n.allocating()));
    }

    #[test]
    fn scopes_nest_and_restore_the_outer_state() {
        let n = here();
        let (inner_free, _) = n.hip_alloc(|| {
            let freed = n.hip_free(7, || n.freed_by_hip(7) && !n.allocating());
            assert!(n.allocating(), "the outer allocation again");
            freed
        });
        assert!(inner_free);
        assert!(n.hip_free(5, || {
            let _ = n.hip_alloc(|| ());
            n.freed_by_hip(5)
        }));
    }

    #[test]
    fn hip_calls_are_marked_once_rocm_has_called_the_hsa_hook() {
        // (Other tests in this process may have set the flag already.)
        note_caller(|| false);
        if !ROCM_CALLS_HSA.load(Ordering::Relaxed) {
            assert!(active().is_none());
            assert!(
                !hip_alloc(|| here().allocating(), |_, _| ()),
                "not marked yet"
            );
        }
        note_caller(|| true);
        assert!(active().is_some());
        assert!(hip_alloc(|| here().allocating(), |_, _| ()));
        let mut settled = None;
        hip_alloc(
            || assert_eq!(here().hold(held(4)), Held::NONE),
            |_, h| settled = Some(h),
        );
        assert_eq!(settled, Some(held(4)), "the held allocation is settled");
        hip_alloc(|| (), |_, _| panic!("nothing held, nothing to settle"));
        assert!(hip_free(0x20, || here().freed_by_hip(0x20)));
    }

    #[test]
    fn each_thread_has_its_own_state() {
        let n = here();
        n.hip_free(3, || {
            assert!(n.freed_by_hip(3));
            assert!(!std::thread::spawn(|| here().freed_by_hip(3))
                .join()
                .unwrap());
        });
    }
}
