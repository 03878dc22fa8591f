//! The registry of live allocations and a bounded ring of recently freed
//! ones, so a faulting address can be attributed.
//!
//! Live allocations are spread over `SHARDS` ordered maps keyed by base
//! address, each behind its own lock, so allocating threads rarely meet on
//! the same lock. Lookups by containing address visit every shard
//! (O(SHARDS * log n)). The fault path uses `try_` variants that never block,
//! because the thread that faulted may hold a lock.

use crate::entry::Entry;
use parking_lot::{const_mutex, Mutex};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

/// One allocation as the application asked for it and as rmcp forwarded it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Allocation {
    pub base: usize,
    pub size: usize,
    pub entry: Entry,
    pub requested_flags: u32,
    pub applied_flags: u32,
    /// HIP device ordinal, or -1 for host memory / unknown. For HSA pool
    /// allocations: the KFD node of the pool's agent (0 = CPU).
    pub device: i32,
    /// Kernel thread id of the allocating thread.
    pub thread: u32,
    /// CLOCK_MONOTONIC nanoseconds at allocation.
    pub time_ns: u64,
    /// rmcp changed the request (flags, pool, or coarse-grain advice).
    pub rewritten: bool,
}

impl Allocation {
    pub fn contains(&self, addr: usize) -> bool {
        addr >= self.base && addr - self.base < self.size.max(1)
    }
}

/// A freed allocation and when it was freed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Freed {
    pub alloc: Allocation,
    pub freed_ns: u64,
}

/// What the registry knows about an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    Live(Allocation),
    Freed(Freed),
    /// No known allocation contains it; the nearest live ones around it.
    Unknown {
        below: Option<Allocation>,
        above: Option<Allocation>,
    },
}

/// A lock was held (by a thread that may have crashed): the answer is
/// incomplete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Busy;

pub const SHARDS: usize = 64;
pub const FREED_SLOTS: usize = 1024;

type Shard = Mutex<BTreeMap<usize, Allocation>>;

pub struct Registry {
    shards: [Shard; SHARDS],
    freed: [Mutex<Option<Freed>>; FREED_SLOTS],
    next_freed: AtomicUsize,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

fn shard_of(base: usize) -> usize {
    // Allocations are at least 256-byte aligned; mix the page number so
    // neighbouring allocations land in different shards.
    ((base as u64 >> 8).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - 6)) as usize
}

impl Registry {
    pub const fn new() -> Registry {
        Registry {
            shards: [const { const_mutex(BTreeMap::new()) }; SHARDS],
            freed: [const { const_mutex(None) }; FREED_SLOTS],
            next_freed: AtomicUsize::new(0),
        }
    }

    /// Records a live allocation; a record with the same base is replaced
    /// (the runtime reused the address without our seeing the free).
    pub fn insert(&self, a: Allocation) {
        if a.base == 0 {
            return;
        }
        self.shards[shard_of(a.base)].lock().insert(a.base, a);
    }

    /// Removes the allocation starting at `base` and remembers it as freed.
    pub fn remove(&self, base: usize, now_ns: u64) -> Option<Allocation> {
        let a = self.shards[shard_of(base)].lock().remove(&base)?;
        let slot = self.next_freed.fetch_add(1, Ordering::Relaxed) % FREED_SLOTS;
        *self.freed[slot].lock() = Some(Freed {
            alloc: a,
            freed_ns: now_ns,
        });
        Some(a)
    }

    /// Puts back an allocation whose free failed, and forgets it as freed.
    pub fn restore(&self, a: Allocation) {
        for slot in &self.freed {
            let mut s = slot.lock();
            if s.is_some_and(|f| f.alloc == a) {
                *s = None;
            }
        }
        self.insert(a);
    }

    pub fn get(&self, base: usize) -> Option<Allocation> {
        self.shards[shard_of(base)].lock().get(&base).copied()
    }

    pub fn live_count(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }

    /// Blocking lookup, for the C API.
    pub fn lookup(&self, addr: usize) -> Lookup {
        self.lookup_with(addr, |m| Some(m.lock()), |m| Some(m.lock()))
            .expect("blocking lookup cannot be busy")
    }

    /// Non-blocking lookup, for the fault handler. `Err(Busy)` when a lock
    /// could not be taken at once; the caller says the answer is incomplete.
    pub fn try_lookup(&self, addr: usize) -> Result<Lookup, Busy> {
        self.lookup_with(addr, |m| m.try_lock(), |m| m.try_lock())
    }

    fn lookup_with<'a>(
        &'a self,
        addr: usize,
        lock_shard: impl Fn(
            &'a Shard,
        ) -> Option<parking_lot::MutexGuard<'a, BTreeMap<usize, Allocation>>>,
        lock_slot: impl Fn(
            &'a Mutex<Option<Freed>>,
        ) -> Option<parking_lot::MutexGuard<'a, Option<Freed>>>,
    ) -> Result<Lookup, Busy> {
        let mut below: Option<Allocation> = None;
        let mut above: Option<Allocation> = None;
        let mut containing: Option<Allocation> = None;
        for shard in &self.shards {
            let map = lock_shard(shard).ok_or(Busy)?;
            if let Some((_, a)) = map.range(..=addr).next_back() {
                if a.contains(addr) {
                    // Prefer the newest if ranges overlap (a registered range
                    // inside an allocation).
                    if containing.is_none_or(|c| a.time_ns >= c.time_ns) {
                        containing = Some(*a);
                    }
                } else if below.is_none_or(|b| a.base > b.base) {
                    below = Some(*a);
                }
            }
            if let Some((_, a)) = map.range(addr.saturating_add(1)..).next() {
                if above.is_none_or(|b| a.base < b.base) {
                    above = Some(*a);
                }
            }
        }
        if let Some(a) = containing {
            return Ok(Lookup::Live(a));
        }
        let mut newest: Option<Freed> = None;
        for slot in &self.freed {
            let s = lock_slot(slot).ok_or(Busy)?;
            if let Some(f) = *s {
                if f.alloc.contains(addr) && newest.is_none_or(|n| f.freed_ns >= n.freed_ns) {
                    newest = Some(f);
                }
            }
        }
        Ok(match newest {
            Some(f) => Lookup::Freed(f),
            None => Lookup::Unknown { below, above },
        })
    }

    /// Fork safety (pthread_atfork): take every lock before fork so no lock
    /// is copied into the child in a held state, release them after.
    pub fn lock_all_for_fork(&self) {
        for s in &self.shards {
            std::mem::forget(s.lock());
        }
        for s in &self.freed {
            std::mem::forget(s.lock());
        }
    }

    /// # Safety
    /// Only after `lock_all_for_fork` on this thread (or its fork child).
    pub unsafe fn unlock_all_after_fork(&self) {
        for s in &self.freed {
            // SAFETY: locked by lock_all_for_fork; the guard was forgotten.
            unsafe { s.force_unlock() };
        }
        for s in &self.shards {
            // SAFETY: as above.
            unsafe { s.force_unlock() };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alloc(base: usize, size: usize, t: u64) -> Allocation {
        Allocation {
            base,
            size,
            entry: Entry::HipHostMalloc,
            requested_flags: 0,
            applied_flags: 0x8000_0000,
            device: 0,
            thread: 1,
            time_ns: t,
            rewritten: true,
        }
    }

    #[test]
    fn finds_the_live_allocation_containing_an_address() {
        let r = Registry::new();
        r.insert(alloc(0x10000, 0x1000, 1));
        r.insert(alloc(0x20000, 0x100, 2));
        assert_eq!(r.lookup(0x10000), Lookup::Live(alloc(0x10000, 0x1000, 1)));
        assert_eq!(r.lookup(0x10fff), Lookup::Live(alloc(0x10000, 0x1000, 1)));
        assert_eq!(r.lookup(0x200ff), Lookup::Live(alloc(0x20000, 0x100, 2)));
        assert_eq!(r.live_count(), 2);
    }

    #[test]
    fn reports_neighbours_when_nothing_contains_the_address() {
        let r = Registry::new();
        r.insert(alloc(0x10000, 0x1000, 1));
        r.insert(alloc(0x20000, 0x100, 2));
        r.insert(alloc(0x90000, 0x100, 3));
        assert_eq!(
            r.lookup(0x11000),
            Lookup::Unknown {
                below: Some(alloc(0x10000, 0x1000, 1)),
                above: Some(alloc(0x20000, 0x100, 2))
            }
        );
        assert_eq!(
            r.lookup(0x100),
            Lookup::Unknown {
                below: None,
                above: Some(alloc(0x10000, 0x1000, 1))
            }
        );
        assert_eq!(
            r.lookup(0xA0000),
            Lookup::Unknown {
                below: Some(alloc(0x90000, 0x100, 3)),
                above: None
            }
        );
        assert_eq!(
            Registry::new().lookup(5),
            Lookup::Unknown {
                below: None,
                above: None
            }
        );
    }

    #[test]
    fn freed_allocations_are_remembered_until_reused() {
        let r = Registry::new();
        r.insert(alloc(0x10000, 0x1000, 1));
        assert_eq!(r.remove(0x10000, 50), Some(alloc(0x10000, 0x1000, 1)));
        assert_eq!(r.remove(0x10000, 60), None);
        assert_eq!(
            r.lookup(0x10010),
            Lookup::Freed(Freed {
                alloc: alloc(0x10000, 0x1000, 1),
                freed_ns: 50
            })
        );
        // Address reused: the live allocation wins.
        r.insert(alloc(0x10000, 0x10, 70));
        assert_eq!(r.lookup(0x10008), Lookup::Live(alloc(0x10000, 0x10, 70)));
        // Outside the new, smaller allocation: the old freed one explains it.
        assert!(matches!(r.lookup(0x10100), Lookup::Freed(_)));
    }

    #[test]
    fn restore_undoes_a_failed_free() {
        let r = Registry::new();
        r.insert(alloc(0x10000, 0x1000, 1));
        let a = r.remove(0x10000, 5).unwrap();
        r.restore(a);
        assert_eq!(r.lookup(0x10000), Lookup::Live(a));
        r.remove(0x10000, 6);
        assert!(matches!(r.lookup(0x10000), Lookup::Freed(f) if f.freed_ns == 6));
    }

    #[test]
    fn the_freed_ring_is_bounded() {
        let r = Registry::new();
        for i in 0..(FREED_SLOTS + 10) {
            r.insert(alloc(0x100000 + i * 0x1000, 0x100, i as u64));
            r.remove(0x100000 + i * 0x1000, i as u64);
        }
        // The oldest ten were overwritten.
        assert!(matches!(r.lookup(0x100000), Lookup::Unknown { .. }));
        assert!(matches!(
            r.lookup(0x100000 + (FREED_SLOTS + 9) * 0x1000),
            Lookup::Freed(_)
        ));
    }

    #[test]
    fn try_lookup_reports_busy_instead_of_blocking() {
        let r = Registry::new();
        r.insert(alloc(0x10000, 0x1000, 1));
        let guard = r.shards[shard_of(0x10000)].lock();
        assert_eq!(r.try_lookup(0x10000), Err(Busy));
        drop(guard);
        assert!(matches!(r.try_lookup(0x10000), Ok(Lookup::Live(_))));
    }

    #[test]
    fn zero_base_is_ignored_and_many_threads_can_insert() {
        let r = std::sync::Arc::new(Registry::new());
        r.insert(alloc(0, 10, 0));
        assert_eq!(r.live_count(), 0);
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let r = r.clone();
                std::thread::spawn(move || {
                    for i in 0..1000 {
                        r.insert(alloc((t * 1000 + i + 1) * 0x1000, 0x100, 0));
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(r.live_count(), 8000);
    }

    #[test]
    fn fork_lock_cycle_leaves_registry_usable() {
        let r = Registry::new();
        r.lock_all_for_fork();
        assert_eq!(r.try_lookup(1), Err(Busy));
        // SAFETY: locked just above on this thread.
        unsafe { r.unlock_all_after_fork() };
        r.insert(alloc(0x1000, 1, 0));
        assert_eq!(r.live_count(), 1);
    }
}
