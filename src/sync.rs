//! Small concurrency helpers for code that runs inside hooks: a run-once
//! gate that tolerates re-entry, the calling thread's id, and a clock.
//!
//! `std::sync::Once` and `OnceCell` deadlock or panic when the initialiser
//! re-enters them on the same thread, which a hook can do (a runtime's
//! constructor calling back into a hook while rmcp is loading it).

use std::cell::Cell;
use std::sync::atomic::{AtomicU32, Ordering};

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

/// Forget the cached thread id (fork child).
pub fn forget_thread_id() {
    TID.with(|t| t.set(0));
}

/// CLOCK_MONOTONIC in nanoseconds.
#[inline]
pub fn now_ns() -> u64 {
    // Not zero-initialised: this runs twice per allocation and free.
    let mut ts = std::mem::MaybeUninit::<libc::timespec>::uninit();
    // SAFETY: ts is a valid out-pointer.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, ts.as_mut_ptr()) } != 0 {
        return 0;
    }
    // SAFETY: clock_gettime succeeded, so it filled ts in.
    let ts = unsafe { ts.assume_init() };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
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
    fn thread_ids_differ_between_threads() {
        let here = thread_id();
        let there = std::thread::spawn(thread_id).join().unwrap();
        assert_ne!(here, there);
        assert_eq!(here, thread_id());
    }
}
