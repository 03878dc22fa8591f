//! The launch hooks' per-thread word (thread id and current HIP device),
//! found without a call: a thread-local costs a call to `__tls_get_addr`
//! from a shared library (about 15 instructions, and a call that makes the
//! hook save every register), a launch has 60 to spend in all. So each
//! thread claims a slot of a small table, indexed by a hash of its thread
//! pointer (x86-64: `%fs:0`, which the TLS ABI defines as the thread
//! pointer itself; one instruction). Only the owning thread writes its
//! slot's word; other threads only claim free slots. A thread whose home
//! slot another live thread owns keeps its word in a thread-local instead
//! (the slow path). The slot is freed by a thread-local destructor when the
//! thread exits (a new thread may get the same thread pointer), and all of
//! them in a fork child (the parent's other threads are gone).
//!
//! The word: thread id | (device + 1) << 32. 0 means unknown.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

const SLOTS: usize = 256;

#[repr(C, align(32))]
pub(crate) struct Slot {
    /// The owning thread's thread pointer; 0 when free.
    key: AtomicUsize,
    word: AtomicU64,
    /// A value derived from the word that the caller wants at hand (the
    /// launch hooks keep the address of the device's ring here).
    aux: AtomicUsize,
}

pub(crate) static TABLE: [Slot; SLOTS] = [const {
    Slot {
        key: AtomicUsize::new(0),
        word: AtomicU64::new(0),
        aux: AtomicUsize::new(0),
    }
}; SLOTS];

/// The calling thread's thread pointer, or 0 where rmcp does not read it.
#[inline(always)]
fn thread_pointer() -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        let tp: usize;
        // SAFETY: on x86-64 Linux %fs:0 holds the thread pointer (TLS ABI);
        // a plain load with no side effects.
        unsafe {
            core::arch::asm!("mov {}, fs:[0]", out(reg) tp, options(nostack, readonly, preserves_flags))
        };
        tp
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        0
    }
}

/// The numbers the launch hooks' assembly fast paths
/// (`crate::interpose::hooks::launch`) use, each a `const` operand there:
/// a thread's slot is at `TABLE + (top_bits(tp, TABLE_BITS) << SLOT_SHIFT)`,
/// with its key, word and aux at these offsets. `home` uses the same.
pub(crate) mod layout {
    use super::{Slot, SLOTS};
    use std::mem::{offset_of, size_of};
    pub(crate) const SLOT_SHIFT: u32 = size_of::<Slot>().trailing_zeros();
    pub(crate) const TABLE_BITS: u32 = SLOTS.trailing_zeros();
    /// The shift the assembly applies to `tp * FIBONACCI`.
    pub(crate) const TABLE_SHIFT: u32 = 64 - TABLE_BITS;
    pub(crate) const KEY: usize = offset_of!(Slot, key);
    pub(crate) const WORD: usize = offset_of!(Slot, word);
    pub(crate) const AUX: usize = offset_of!(Slot, aux);
    const _: () = assert!(size_of::<Slot>() == 1 << SLOT_SHIFT && SLOTS == 1 << TABLE_BITS);
}

#[inline(always)]
fn home(tp: usize) -> &'static Slot {
    &TABLE[crate::core::hash::top_bits(tp as u64, layout::TABLE_BITS)]
}

/// The calling thread's word and aux when it owns its home slot: the
/// launch path.
#[inline(always)]
pub fn word() -> Option<(u64, usize)> {
    let tp = thread_pointer();
    let s = home(tp);
    // Only this thread stores `tp` into a slot, so a match is ours, and its
    // word is what this thread last stored. (A free slot's key is 0; a
    // thread pointer of 0 means "not read here", and the callers' slow path
    // handles it, so it must not match a free slot.)
    if (cfg!(target_arch = "x86_64") || tp != 0) && s.key.load(Ordering::Relaxed) == tp {
        Some((
            s.word.load(Ordering::Relaxed),
            s.aux.load(Ordering::Relaxed),
        ))
    } else {
        None
    }
}

thread_local! {
    /// The word when the home slot belongs to another thread.
    static WORD: Cell<u64> = const { Cell::new(0) };
    /// Frees the slot when the thread exits.
    static GUARD: Guard = const { Guard };
}

struct Guard;

impl Drop for Guard {
    fn drop(&mut self) {
        let tp = thread_pointer();
        let s = home(tp);
        if tp != 0 && s.key.load(Ordering::Relaxed) == tp {
            s.word.store(0, Ordering::Relaxed);
            s.key.store(0, Ordering::Release);
        }
    }
}

/// The calling thread's word from the slow path's thread-local (0 if none).
pub fn slow_word() -> u64 {
    WORD.with(|w| w.get())
}

/// The calling thread's current HIP device as rmcp noted it (its
/// hipSetDevice hook, or the thread's first launch, which asks the runtime
/// once), without a call into the runtime. A thread with nothing noted is on
/// device 0: HIP starts every thread there, and another thread's
/// hipSetDevice does not move it. (A device chosen by means no hook sees,
/// such as the deprecated hipCtxSetCurrent, is not followed.)
#[inline(always)]
pub fn current_device() -> i32 {
    let w = match word() {
        Some((w, _)) => w,
        None => slow_word(),
    };
    if w == 0 {
        0
    } else {
        crate::core::launches::word_device(w)
    }
}

/// Sets the calling thread's word (and its aux), claiming its home slot if
/// it is free.
pub fn set_word(word: u64, aux: usize) {
    WORD.with(|w| w.set(word));
    let tp = thread_pointer();
    if tp == 0 {
        return;
    }
    let s = home(tp);
    let owned = s.key.load(Ordering::Relaxed) == tp
        || (s
            .key
            .compare_exchange(0, tp, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
            && {
                // The destructor that frees the slot; if the thread is
                // already tearing down its thread-locals, give it back.
                if GUARD.try_with(|_| ()).is_err() {
                    s.key.store(0, Ordering::Release);
                    false
                } else {
                    true
                }
            });
    if owned {
        s.word.store(word, Ordering::Relaxed);
        s.aux.store(aux, Ordering::Relaxed);
    }
}

/// In a fork child: the forking thread has a new id and the parent's other
/// threads are gone, so every slot and the thread-local are cleared.
pub fn after_fork_in_child() {
    WORD.with(|w| w.set(0));
    for s in &TABLE {
        s.word.store(0, Ordering::Relaxed);
        s.aux.store(0, Ordering::Relaxed);
        s.key.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_current_device_is_the_threads_own_and_starts_at_0() {
        use crate::core::launches::thread_word;
        std::thread::spawn(|| {
            assert_eq!(current_device(), 0, "nothing noted: HIP's device 0");
            set_word(thread_word(7, 3), 0);
            assert_eq!(current_device(), 3);
            std::thread::spawn(|| assert_eq!(current_device(), 0, "not another thread's"))
                .join()
                .unwrap();
            set_word(thread_word(7, 0), 0);
            assert_eq!(current_device(), 0);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn each_thread_sees_its_own_word_and_frees_its_slot() {
        set_word(0x1_0000_0007, 5);
        assert_eq!(slow_word(), 0x1_0000_0007);
        let here = word();
        assert!(here.is_none() || here == Some((0x1_0000_0007, 5)));
        let words: Vec<Option<u64>> = (0..8u64)
            .map(|i| {
                std::thread::spawn(move || {
                    assert_eq!(word(), None, "a new thread owns nothing");
                    set_word(100 + i, i as usize);
                    (slow_word() == 100 + i).then(|| word().map_or(100 + i, |(w, _)| w))
                })
                .join()
                .unwrap()
            })
            .collect();
        assert!(words
            .iter()
            .enumerate()
            .all(|(i, w)| *w == Some(100 + i as u64)));
        // Exited threads gave their slots back.
        let owned = TABLE
            .iter()
            .filter(|s| s.key.load(Ordering::Relaxed) != 0)
            .count();
        assert!(owned <= 1 + 8, "{owned}");
    }
}
