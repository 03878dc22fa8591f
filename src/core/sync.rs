//! Small concurrency helpers for code that runs inside hooks: a run-once
//! gate that tolerates re-entry, a fork-safe spin lock, the calling thread's
//! id, and a clock.
//!
//! `std::sync::Once` and `OnceCell` deadlock or panic when the initialiser
//! re-enters them on the same thread, which a hook can do (a runtime's
//! constructor calling back into a hook while rmcp is loading it).

use std::cell::{Cell, UnsafeCell};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

const NEW: u32 = 0;
const RUNNING: u32 = 1;
const DONE: u32 = 2;

/// Runs an initialiser once across threads. Other threads wait for it; the
/// thread running it gets `false` if it re-enters, instead of a deadlock.
pub struct InitOnce {
    state: AtomicU32,
    owner: AtomicU32,
}

impl Default for InitOnce {
    fn default() -> Self {
        Self::new()
    }
}

impl InitOnce {
    pub const fn new() -> InitOnce {
        InitOnce {
            state: AtomicU32::new(NEW),
            owner: AtomicU32::new(0),
        }
    }

    #[inline]
    pub fn is_done(&self) -> bool {
        self.state.load(Ordering::Acquire) == DONE
    }

    /// Runs `f` unless it ran already. Returns true when initialisation is
    /// complete, false when called re-entrantly from inside `f`.
    pub fn call(&self, f: impl FnOnce()) -> bool {
        if self.is_done() {
            return true;
        }
        let me = thread_id();
        loop {
            match self
                .state
                .compare_exchange(NEW, RUNNING, Ordering::Acquire, Ordering::Acquire)
            {
                Ok(_) => {
                    self.owner.store(me, Ordering::Relaxed);
                    // Marks the gate done even if `f` unwinds, so waiters
                    // never spin forever.
                    struct Finish<'a>(&'a InitOnce);
                    impl Drop for Finish<'_> {
                        fn drop(&mut self) {
                            self.0.owner.store(0, Ordering::Relaxed);
                            self.0.state.store(DONE, Ordering::Release);
                        }
                    }
                    let _finish = Finish(self);
                    f();
                    return true;
                }
                Err(DONE) => return true,
                Err(_) => {
                    if self.owner.load(Ordering::Relaxed) == me {
                        return false;
                    }
                    std::thread::yield_now();
                }
            }
        }
    }

    /// In a fork child: an initialiser that was running in another thread of
    /// the parent will never finish here, so start over.
    pub fn reset_if_running(&self) {
        if self.state.load(Ordering::Relaxed) == RUNNING {
            self.owner.store(0, Ordering::Relaxed);
            self.state.store(NEW, Ordering::Release);
        }
    }
}

/// A lock for very short critical sections that stays correct across
/// fork(): its whole state is one flag, which the fork child can simply
/// clear (`force_unlock`). parking_lot's mutexes keep waiters in a global
/// table: a fork taken while a thread of the parent was parked on one copies
/// that waiter into the child, and a fair unlock there can hand the lock to
/// a thread that does not exist (the robustness suite's fork test hung that
/// way). Waiters spin briefly, then yield.
pub struct SpinLock<T> {
    locked: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the flag gives one thread at a time access to the value, which is
// only ever reached through a guard.
unsafe impl<T: Send> Sync for SpinLock<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for SpinLock<T> {}

pub struct SpinGuard<'a, T> {
    lock: &'a SpinLock<T>,
}

impl<T> SpinLock<T> {
    pub const fn new(value: T) -> SpinLock<T> {
        SpinLock {
            locked: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    #[inline]
    pub fn lock(&self) -> SpinGuard<'_, T> {
        if self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_contended();
        }
        SpinGuard { lock: self }
    }

    #[cold]
    #[inline(never)]
    fn lock_contended(&self) {
        let mut spins = 0u32;
        loop {
            while self.locked.load(Ordering::Relaxed) {
                if spins < 100 {
                    spins += 1;
                    std::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
            }
            if self
                .locked
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
        }
    }

    /// The lock if it is free right now, without waiting (the fault path).
    #[inline]
    pub fn try_lock(&self) -> Option<SpinGuard<'_, T>> {
        self.locked
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| SpinGuard { lock: self })
    }

    /// The lock, waiting for it (spinning briefly, then yielding the CPU to
    /// the holder) only while `patient()` says so: bounded waiting for the
    /// fault path, where the holder may never let go.
    pub fn try_lock_while(&self, mut patient: impl FnMut() -> bool) -> Option<SpinGuard<'_, T>> {
        let mut spins = 0u32;
        loop {
            if let Some(g) = self.try_lock() {
                return Some(g);
            }
            if spins < 100 {
                spins += 1;
                std::hint::spin_loop();
                continue;
            }
            if !patient() {
                return None;
            }
            std::thread::yield_now();
        }
    }

    /// Takes the lock and keeps it (before fork).
    pub fn lock_and_keep(&self) {
        std::mem::forget(self.lock());
    }

    /// # Safety
    /// Only for a lock taken by `lock_and_keep` on this thread, or, in a
    /// fork child, by the parent thread that became this one.
    pub unsafe fn force_unlock(&self) {
        self.locked.store(false, Ordering::Release);
    }
}

impl<T> std::ops::Deref for SpinGuard<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the lock.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> std::ops::DerefMut for SpinGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard holds the lock.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for SpinGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.lock.locked.store(false, Ordering::Release);
    }
}

thread_local! {
    static TID: Cell<u32> = const { Cell::new(0) };
}

/// The kernel thread id of the caller, cached per thread. After fork the
/// child's first thread has a new id, so the cache is dropped then.
#[inline]
pub fn thread_id() -> u32 {
    TID.with(|t| {
        let v = t.get();
        if v != 0 {
            return v;
        }
        // SAFETY: gettid has no preconditions.
        let id = unsafe { libc::gettid() } as u32;
        t.set(id);
        id
    })
}

/// In a fork child: forget the cached thread id, and the clock measurement
/// a thread of the parent may have been making.
pub fn after_fork_in_child() {
    TID.with(|t| t.set(0));
    MEASURING.store(false, Ordering::Relaxed);
}

/// CLOCK_MONOTONIC in nanoseconds, read by clock_gettime.
#[inline]
fn clock_ns() -> u64 {
    // Not zero-initialised: the timespec is always written on success.
    let mut ts = std::mem::MaybeUninit::<libc::timespec>::uninit();
    // SAFETY: ts is a valid out-pointer.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, ts.as_mut_ptr()) } != 0 {
        return 0;
    }
    // SAFETY: clock_gettime succeeded, so it filled ts in.
    let ts = unsafe { ts.assume_init() };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The time-stamp counter mapping of `now_ns`: nanoseconds =
/// `BASE_NS + (ticks - BASE_TICKS) * RATE >> 32`. BASE_* are set once; until
/// `NEXT_TICKS` (0 until RATE is first measured, stored after it) the
/// mapping is used; past it the next call measures RATE again, over the
/// whole span since the base, and doubles the interval.
static BASE_TICKS: AtomicU64 = AtomicU64::new(0);
static BASE_NS: AtomicU64 = AtomicU64::new(0);
static RATE: AtomicU64 = AtomicU64::new(0);
static NEXT_TICKS: AtomicU64 = AtomicU64::new(0);
static MEASURING: AtomicBool = AtomicBool::new(false);
/// The shortest span RATE is measured over (about 40 ms at 3 GHz).
const MIN_SPAN_TICKS: u64 = 1 << 27;

/// CLOCK_MONOTONIC in nanoseconds, for the registry's "allocated / freed N
/// ms ago" (two reads per allocation and free). Where there is a time-stamp
/// counter, this is the counter (one instruction) mapped linearly through a
/// rate measured against clock_gettime, which is called only while the rate
/// is being measured and then at doubling intervals: a clock_gettime costs
/// about 55 instructions even in the vDSO. Agrees with clock_gettime at
/// each measurement, and between them within the counter's drift (parts
/// per million). Not inlined: the hooks' panic-boundary closures that call
/// it then stay small enough to be inlined themselves.
#[inline(never)]
pub fn now_ns() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: rdtsc exists on every x86-64 CPU and has no side effects.
        let t = unsafe { core::arch::x86_64::_rdtsc() };
        // NEXT_TICKS is 0 until RATE is set (Release after it).
        if t < NEXT_TICKS.load(Ordering::Acquire) {
            // A counter behind the base (another socket's) maps to the base.
            let ticks = t.saturating_sub(BASE_TICKS.load(Ordering::Relaxed));
            let ns = (ticks as u128 * RATE.load(Ordering::Relaxed) as u128) >> 32;
            return BASE_NS.load(Ordering::Relaxed) + ns as u64;
        }
        measure(t)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        clock_ns()
    }
}

/// `now_ns` when the mapping cannot be used: clock_gettime, and the base or
/// a new rate when this thread is the only one measuring (another one
/// measuring, or a counter behind the base, leave them as they are).
#[cold]
#[inline(never)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
fn measure(t: u64) -> u64 {
    let ns = clock_ns();
    if ns == 0
        || MEASURING
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
    {
        return ns;
    }
    let base = BASE_TICKS.load(Ordering::Relaxed);
    if base == 0 {
        BASE_NS.store(ns, Ordering::Relaxed);
        BASE_TICKS.store(t, Ordering::Relaxed);
    } else if t > base && t - base >= MIN_SPAN_TICKS {
        let span_ns = ns.saturating_sub(BASE_NS.load(Ordering::Relaxed));
        let rate = ((span_ns as u128) << 32) / (t - base) as u128;
        if rate > 0 && rate <= u64::MAX as u128 {
            RATE.store(rate as u64, Ordering::Relaxed);
            NEXT_TICKS.store(t.saturating_add(t - base), Ordering::Release);
        }
    }
    MEASURING.store(false, Ordering::Release);
    ns
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    #[test]
    fn the_mapped_clock_follows_clock_gettime() {
        // Long enough for the rate to be measured and used.
        let start = std::time::Instant::now();
        let mut last = now_ns();
        while start.elapsed() < std::time::Duration::from_millis(300) {
            let n = now_ns();
            let c = clock_ns();
            // Within 1 ms of clock_gettime (plus the time between the reads).
            assert!(n.abs_diff(c) < 1_000_000, "mapped {n}, clock {c}");
            assert!(n + 1_000_000 >= last, "went back: {last} -> {n}");
            last = n;
            std::thread::sleep(std::time::Duration::from_millis(7));
        }
        #[cfg(target_arch = "x86_64")]
        assert_ne!(
            NEXT_TICKS.load(Ordering::Relaxed),
            0,
            "the rate was measured"
        );
    }

    #[test]
    fn runs_once_across_racing_threads() {
        let once = Arc::new(InitOnce::new());
        let runs = Arc::new(AtomicUsize::new(0));
        let ts: Vec<_> = (0..16)
            .map(|_| {
                let (once, runs) = (once.clone(), runs.clone());
                std::thread::spawn(move || {
                    assert!(once.call(|| {
                        std::thread::sleep(std::time::Duration::from_millis(20));
                        runs.fetch_add(1, Ordering::SeqCst);
                    }));
                    // Everyone returns only after the initialiser finished.
                    assert_eq!(runs.load(Ordering::SeqCst), 1);
                })
            })
            .collect();
        ts.into_iter().for_each(|t| t.join().unwrap());
    }

    #[test]
    fn reentry_returns_false_instead_of_deadlocking() {
        let once = InitOnce::new();
        let mut inner = None;
        assert!(once.call(|| inner = Some(once.call(|| unreachable!()))));
        assert_eq!(inner, Some(false));
        assert!(once.is_done());
    }

    #[test]
    fn a_panicking_initialiser_still_completes_the_gate() {
        let once = InitOnce::new();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            once.call(|| panic!("boom"))
        }));
        assert!(r.is_err());
        assert!(once.is_done());
    }

    #[test]
    fn spin_lock_excludes_and_can_be_reset() {
        let lock = Arc::new(SpinLock::new(0u64));
        let ts: Vec<_> = (0..8)
            .map(|_| {
                let lock = lock.clone();
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        *lock.lock() += 1;
                    }
                })
            })
            .collect();
        ts.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(*lock.lock(), 80_000);
        let g = lock.try_lock().unwrap();
        assert!(lock.try_lock().is_none());
        drop(g);
        lock.lock_and_keep();
        assert!(lock.try_lock().is_none());
        // SAFETY: taken just above on this thread.
        unsafe { lock.force_unlock() };
        assert!(lock.try_lock().is_some());
    }

    #[test]
    fn thread_ids_differ_between_threads() {
        let here = thread_id();
        let there = std::thread::spawn(thread_id).join().unwrap();
        assert_ne!(here, there);
        assert_eq!(here, thread_id());
    }
}
