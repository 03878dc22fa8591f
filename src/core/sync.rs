//! Small concurrency helpers for code that runs inside hooks: a run-once
//! gate that tolerates re-entry, a fork-safe spin lock, the calling thread's
//! id, and a clock.
//!
//! `std::sync::Once` and `OnceCell` deadlock or panic when the initialiser
//! re-enters them on the same thread, which a hook can do (a runtime's
//! constructor calling back into a hook while rmcp is loading it).

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

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

/// The kernel thread id of the caller, cached per thread. After fork the
/// child's first thread has a new id, so the cache is dropped then.
#[inline]
pub fn thread_id() -> u32 {
    let v = tid_cache::get();
    if v != 0 {
        return v;
    }
    // SAFETY: gettid has no preconditions.
    let id = unsafe { libc::gettid() } as u32;
    tid_cache::set(id);
    id
}

/// Forget the cached thread id (fork child).
pub fn forget_thread_id() {
    tid_cache::set(0);
}

/// Defines `$name`, a zero-initialised thread-local of type `$ty` in `.tbss`,
/// hidden (not exported), for code that reaches it through the initial-exec
/// TLS model (`mov reg, [rip + $name@GOTTPOFF]`, then `fs:[reg]`): a
/// `thread_local!` in a shared library takes the general dynamic model, a
/// call to `__tls_get_addr` per access. Initial-exec needs the library's TLS
/// in the static TLS block: always so when librmcp.so is preloaded or
/// linked; a later dlopen takes it from glibc's static TLS surplus (README,
/// Limits). x86-64 only; `$ty`'s all-zero bytes must be a valid value.
#[cfg(target_arch = "x86_64")]
macro_rules! initial_exec_tls {
    ($name:literal, $ty:ty) => {
        const _: () = assert!(std::mem::align_of::<$ty>() <= 8);
        std::arch::global_asm!(
            ".pushsection .tbss,\"awT\",@nobits",
            ".p2align {align}",
            concat!(".globl ", $name),
            concat!(".hidden ", $name),
            concat!(".type ", $name, ",@object"),
            concat!(".size ", $name, ",{size}"),
            concat!($name, ":"),
            ".zero {size}",
            ".popsection",
            size = const std::mem::size_of::<$ty>(),
            align = const std::mem::align_of::<$ty>().trailing_zeros(),
        );
    };
}
#[cfg(target_arch = "x86_64")]
pub(crate) use initial_exec_tls;

/// The per-thread cache of the thread id. On x86-64 it is a 4-byte
/// [`initial_exec_tls`] read in two instructions, where a `thread_local!`
/// would cost a `__tls_get_addr` call on every allocation (about 14
/// instructions, bench/run.sh).
#[cfg(target_arch = "x86_64")]
mod tid_cache {
    crate::core::sync::initial_exec_tls!("rmcp_tid_tls", u32);

    #[inline(always)]
    pub(super) fn get() -> u32 {
        let v: u32;
        // SAFETY: reads this thread's copy of rmcp_tid_tls at its TLS offset
        // (the loader fills the GOT slot); no side effects.
        unsafe {
            std::arch::asm!(
                "mov {p}, qword ptr [rip + rmcp_tid_tls@GOTTPOFF]",
                "mov {v:e}, dword ptr fs:[{p}]",
                p = out(reg) _,
                v = out(reg) v,
                options(nostack, readonly, preserves_flags),
            )
        };
        v
    }

    #[inline(always)]
    pub(super) fn set(v: u32) {
        // SAFETY: writes this thread's copy of rmcp_tid_tls, which only
        // this module reads.
        unsafe {
            std::arch::asm!(
                "mov {p}, qword ptr [rip + rmcp_tid_tls@GOTTPOFF]",
                "mov dword ptr fs:[{p}], {v:e}",
                p = out(reg) _,
                v = in(reg) v,
                options(nostack, preserves_flags),
            )
        };
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod tid_cache {
    use std::cell::Cell;

    thread_local! {
        static TID: Cell<u32> = const { Cell::new(0) };
    }

    #[inline]
    pub(super) fn get() -> u32 {
        TID.with(|t| t.get())
    }

    #[inline]
    pub(super) fn set(v: u32) {
        TID.with(|t| t.set(v));
    }
}

/// CLOCK_MONOTONIC_COARSE in nanoseconds.
#[inline]
pub fn now_ns() -> u64 {
    // Not zero-initialised: this runs twice per allocation and free. The
    // coarse clock (one tick, 1-4 ms) is plenty for "allocated N ms ago" and
    // costs the vDSO about half of the precise one. The time-stamp counter
    // mapped through a measured rate was tried (issue 17): about 55 fewer
    // counted instructions per call on ROCm 7.2.4, but a virtual machine may
    // trap rdtsc: here it took 97-100 ns a read against 32-49 ns for this
    // call, and the wall-clock ratio of table 3 of bench/run.sh doubled.
    let mut ts = std::mem::MaybeUninit::<libc::timespec>::uninit();
    // SAFETY: ts is a valid out-pointer.
    if unsafe { clock::gettime(libc::CLOCK_MONOTONIC_COARSE, ts.as_mut_ptr()) } != 0 {
        return 0;
    }
    // SAFETY: clock_gettime succeeded, so it filled ts in.
    let ts = unsafe { ts.assume_init() };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Makes `now_ns` call the vDSO's clock_gettime directly from now on, if
/// glibc lists the vDSO (as "linux-vdso.so.1") and it has one: libc's
/// wrapper adds about 11 instructions to each call (22 per allocation and
/// free) to reach the same function. Looks only once; takes the loader
/// lock, so it is called where rmcp holds no lock of its own (a hook's
/// first lookup of a runtime symbol), never from `now_ns`, which the fault
/// handler calls too.
pub fn use_vdso_clock() {
    static LOOKED: AtomicBool = AtomicBool::new(false);
    if !LOOKED.swap(true, Ordering::Relaxed) {
        clock::find_vdso();
    }
}

mod clock {
    use std::sync::atomic::{AtomicPtr, Ordering};

    type GettimeFn = unsafe extern "C" fn(libc::clockid_t, *mut libc::timespec) -> libc::c_int;

    /// libc's clock_gettime, or the vDSO's once found: one indirect call
    /// either way, as the call through libc's GOT entry was (so nothing is
    /// added where there is no vDSO, such as under valgrind).
    static GETTIME: AtomicPtr<()> = AtomicPtr::new(libc::clock_gettime as *mut ());

    /// # Safety
    /// As clock_gettime: `ts` is a valid out-pointer.
    #[inline(always)]
    pub(super) unsafe fn gettime(clock: libc::clockid_t, ts: *mut libc::timespec) -> libc::c_int {
        let f = GETTIME.load(Ordering::Relaxed);
        // SAFETY: only ever libc's clock_gettime or the vDSO's
        // __vdso_clock_gettime, which has its prototype.
        let f = unsafe { std::mem::transmute::<*mut (), GettimeFn>(f) };
        // SAFETY: the caller's out-pointer.
        unsafe { f(clock, ts) }
    }

    pub(super) fn find_vdso() {
        // SAFETY: RTLD_NOLOAD only looks the object up, loading nothing;
        // the handle is kept for the process's life (the vDSO is never
        // unmapped), so there is no dlclose.
        let h = unsafe {
            libc::dlopen(
                c"linux-vdso.so.1".as_ptr(),
                libc::RTLD_LAZY | libc::RTLD_NOLOAD,
            )
        };
        if h.is_null() {
            return;
        }
        // SAFETY: a valid handle and a NUL-terminated name.
        let p = unsafe { libc::dlsym(h, c"__vdso_clock_gettime".as_ptr()) };
        if !p.is_null() {
            GETTIME.store(p.cast(), Ordering::Relaxed);
        }
    }

    #[cfg(test)]
    pub(super) fn from_vdso() -> bool {
        GETTIME.load(Ordering::Relaxed) != libc::clock_gettime as *mut ()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

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
    fn the_coarse_clock_moves_forward_from_the_vdso_or_libc() {
        let mut libc_ts = std::mem::MaybeUninit::<libc::timespec>::uninit();
        use_vdso_clock();
        let first = now_ns();
        assert!(first > 0);
        // SAFETY: a valid out-pointer.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, libc_ts.as_mut_ptr()) };
        assert_eq!(rc, 0);
        // SAFETY: filled in on success.
        let libc_ts = unsafe { libc_ts.assume_init() };
        let libc_ns = libc_ts.tv_sec as u64 * 1_000_000_000 + libc_ts.tv_nsec as u64;
        let second = now_ns();
        assert!(
            first <= libc_ns && libc_ns <= second,
            "{first} {libc_ns} {second}"
        );
        if cfg!(all(target_os = "linux", target_env = "gnu")) {
            assert!(
                clock::from_vdso(),
                "glibc lists the vDSO as linux-vdso.so.1"
            );
        }
    }

    #[test]
    fn thread_ids_differ_between_threads() {
        let here = thread_id();
        let there = std::thread::spawn(thread_id).join().unwrap();
        assert_ne!(here, there);
        assert_eq!(here, thread_id());
    }
}
