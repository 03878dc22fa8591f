//! The registry of live allocations and a bounded ring of recently freed
//! ones, so a faulting address can be attributed.
//!
//! Live allocations are spread over `SHARDS` shards chosen by a hash of the
//! base address, each behind its own lock, so allocating threads rarely meet
//! on the same lock. A shard keeps its newest allocations in a small array
//! (`RECENT` slots) and the older ones in an ordered map keyed by base:
//! an allocation freed soon after it was made (the common pattern) costs a
//! few compares instead of a B-tree insert and remove; one that lives longer
//! moves into the map when the array is full. Lookups by containing address
//! visit every shard (O(SHARDS * (RECENT + log n))). The fault path uses
//! `try_` variants that never block, because the thread that faulted may
//! hold a lock.

use crate::core::entry::Entry;
use crate::core::sync::{now_ns, SpinGuard, SpinLock};
use std::collections::BTreeMap;

/// One allocation as the application asked for it and as rmcp forwarded it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Allocation {
    pub base: usize,
    pub size: usize,
    pub entry: Entry,
    /// The flags word that carries the coherence request, as the
    /// application asked: the call's flags for HIP; for `Memory::HsaPool`,
    /// the GLOBAL_FLAGS of the pool it asked for (HSA puts coherence on the
    /// pool, not on the call).
    pub requested_flags: u32,
    /// The same word as rmcp forwarded it.
    pub applied_flags: u32,
    /// Whose memory it is.
    pub memory: Memory,
    /// Kernel thread id of the allocating thread.
    pub thread: u32,
    /// CLOCK_MONOTONIC nanoseconds at allocation.
    pub time_ns: u64,
    /// rmcp changed the request (flags, pool, or coarse-grain advice).
    pub rewritten: bool,
}

impl Allocation {
    /// An unused slot.
    pub const EMPTY: Allocation = Allocation {
        base: 0,
        size: 0,
        entry: Entry::HipMalloc,
        requested_flags: 0,
        applied_flags: 0,
        memory: Memory::Host,
        thread: 0,
        time_ns: 0,
        rewritten: false,
    };

    pub fn contains(&self, addr: usize) -> bool {
        addr >= self.base && addr - self.base < self.size.max(1)
    }
}

/// Whose memory an allocation is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Memory {
    /// Host memory, or device memory whose device the runtime could not name.
    Host,
    /// Memory of the HIP device with this ordinal (>= 0).
    Device(i32),
    /// From a pool of the HSA agent with this KFD node (0 = CPU); -1 when
    /// the pool was not in rmcp's map of the topology.
    HsaPool(i32),
}

impl Memory {
    /// A HIP device ordinal as reported by hipGetDevice; negative: unknown.
    pub fn hip_device(ordinal: i32) -> Memory {
        if ordinal >= 0 {
            Memory::Device(ordinal)
        } else {
            Memory::Host
        }
    }

    /// The number the C API and the JSON report carry as `device`: the HIP
    /// ordinal, the HSA node, or -1 for host memory.
    pub fn number(self) -> i32 {
        match self {
            Memory::Host => -1,
            Memory::Device(d) | Memory::HsaPool(d) => d,
        }
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
/// How long the fault path's lookup waits for shard locks, in all: 1 s
/// (the clock is CLOCK_MONOTONIC_COARSE, so up to one tick more). A holder
/// is normally done within a microsecond; this much is reached only when it
/// never lets go, or stays descheduled behind many runnable threads: with
/// 15 threads allocating on 2 cores at a load average of 20, tests/hsa_fault.rs
/// still missed the allocation in 1 run of 30 with 20 ms, and with 200 ms.
pub const LOOKUP_PATIENCE_NS: u64 = 1_000_000_000;
/// Frees remembered per shard (a ring under the shard's lock).
pub const FREED_PER_SHARD: usize = 16;
/// Frees remembered in all.
pub const FREED_SLOTS: usize = SHARDS * FREED_PER_SHARD;
/// Newest live allocations per shard kept outside the ordered map.
pub const RECENT: usize = 8;

/// One shard's live allocations and its last frees. Invariant: a base is in
/// `recent` or in `older`, never in both, and at most once.
struct Live {
    recent: [Allocation; RECENT],
    recent_len: usize,
    older: BTreeMap<usize, Allocation>,
    /// Ring of the shard's last frees; a base of 0 marks an empty slot.
    freed: [Freed; FREED_PER_SHARD],
    next_freed: usize,
}

impl Live {
    const fn new() -> Live {
        Live {
            recent: [Allocation::EMPTY; RECENT],
            recent_len: 0,
            older: BTreeMap::new(),
            freed: [Freed {
                alloc: Allocation::EMPTY,
                freed_ns: 0,
            }; FREED_PER_SHARD],
            next_freed: 0,
        }
    }

    #[inline]
    fn remember_freed(&mut self, alloc: Allocation, freed_ns: u64) {
        self.freed[self.next_freed] = Freed { alloc, freed_ns };
        self.next_freed = (self.next_freed + 1) % FREED_PER_SHARD;
    }

    /// Removes the live allocation at `base` straight into the freed ring
    /// (one copy, nothing returned). False if there was none.
    #[inline]
    fn take(&mut self, base: usize, freed_ns: u64) -> bool {
        if let Some(i) = self.position(base) {
            // (Masked, not bounds-checked: next_freed < FREED_PER_SHARD.)
            self.freed[self.next_freed % FREED_PER_SHARD] = Freed {
                alloc: self.recent[i],
                freed_ns,
            };
            self.next_freed = (self.next_freed + 1) % FREED_PER_SHARD;
            self.recent_len -= 1;
            if i != self.recent_len {
                self.recent[i] = self.recent[self.recent_len];
            }
            return true;
        }
        if self.older.is_empty() {
            return false;
        }
        match self.older.remove(&base) {
            Some(a) => {
                self.remember_freed(a, freed_ns);
                true
            }
            None => false,
        }
    }

    /// Undoes `take`: the newest remembered free at `base` becomes live again.
    fn untake(&mut self, base: usize) -> bool {
        for k in 1..=FREED_PER_SHARD {
            let j = (self.next_freed + FREED_PER_SHARD - k) % FREED_PER_SHARD;
            if self.freed[j].alloc.base == base {
                let a = self.freed[j].alloc;
                self.freed[j].alloc.base = 0;
                self.insert(a);
                return true;
            }
        }
        false
    }

    /// The newest remembered free containing `addr`.
    fn freed_containing(&self, addr: usize) -> Option<Freed> {
        self.freed
            .iter()
            .filter(|f| f.alloc.base != 0 && f.alloc.contains(addr))
            .fold(None, |n: Option<Freed>, f| match n {
                Some(n) if n.freed_ns > f.freed_ns => Some(n),
                _ => Some(*f),
            })
    }

    #[inline]
    fn recent(&self) -> &[Allocation] {
        &self.recent[..self.recent_len]
    }

    #[inline]
    fn position(&self, base: usize) -> Option<usize> {
        self.recent().iter().position(|a| a.base == base)
    }

    #[inline]
    fn take_recent(&mut self, i: usize) -> Allocation {
        let a = self.recent[i];
        self.recent_len -= 1;
        if i != self.recent_len {
            self.recent[i] = self.recent[self.recent_len];
        }
        a
    }

    #[inline]
    fn insert(&mut self, a: Allocation) {
        if let Some(i) = self.position(a.base) {
            self.recent[i] = a;
            return;
        }
        if !self.older.is_empty() {
            // A copy of the base: `a` itself is not address-taken, so the
            // fast path writes it to its slot straight from registers.
            let base = a.base;
            self.older.remove(&base);
        }
        if self.recent_len == RECENT {
            // Full: the one in slot 0 (the oldest or close to it) moves to
            // the ordered map.
            let old = self.take_recent(0);
            self.older.insert(old.base, old);
        }
        self.recent[self.recent_len] = a;
        self.recent_len += 1;
    }

    #[cfg(test)]
    fn remove(&mut self, base: usize) -> Option<Allocation> {
        match self.position(base) {
            Some(i) => Some(self.take_recent(i)),
            None if self.older.is_empty() => None,
            None => self.older.remove(&base),
        }
    }

    fn get(&self, base: usize) -> Option<Allocation> {
        match self.position(base) {
            Some(i) => Some(self.recent[i]),
            None => self.older.get(&base).copied(),
        }
    }

    fn len(&self) -> usize {
        self.recent_len + self.older.len()
    }

    /// The live allocation with the greatest base <= addr and the one with
    /// the least base > addr.
    fn around(&self, addr: usize) -> (Option<Allocation>, Option<Allocation>) {
        let mut below = self.older.range(..=addr).next_back().map(|(_, a)| *a);
        let mut above = self
            .older
            .range(addr.saturating_add(1)..)
            .next()
            .map(|(_, a)| *a);
        for a in self.recent() {
            if a.base <= addr {
                if below.is_none_or(|b| a.base > b.base) {
                    below = Some(*a);
                }
            } else if above.is_none_or(|b| a.base < b.base) {
                above = Some(*a);
            }
        }
        (below, above)
    }
}

type Shard = SpinLock<Live>;

pub struct Registry {
    shards: [Shard; SHARDS],
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

#[inline]
fn shard_of(base: usize) -> usize {
    // The multiplicative hash mixes every bit of the base into the top
    // ones, so neighbouring allocations land in different shards; their
    // zero low bits (at least 256-byte alignment) need no shift first.
    crate::core::hash::top_bits(base as u64, SHARDS.trailing_zeros())
}

impl Registry {
    pub const fn new() -> Registry {
        Registry {
            shards: [const { SpinLock::new(Live::new()) }; SHARDS],
        }
    }

    /// Records a live allocation; a record with the same base is replaced
    /// (the runtime reused the address without our seeing the free).
    #[inline]
    pub fn insert(&self, a: Allocation) {
        if a.base == 0 {
            return;
        }
        self.shards[shard_of(a.base)].lock().insert(a);
    }

    /// Removes the allocation starting at `base` and remembers it as freed
    /// (its shard remembers its last `FREED_PER_SHARD` frees). The hooks use
    /// `take`, which copies nothing out; this is for the tests.
    #[cfg(test)]
    pub fn remove(&self, base: usize, now_ns: u64) -> Option<Allocation> {
        let mut live = self.shards[shard_of(base)].lock();
        let a = live.remove(base)?;
        live.remember_freed(a, now_ns);
        Some(a)
    }

    /// `remove` for the hooks: the record goes straight to the freed ring
    /// and nothing is copied out. True if `base` was live.
    #[inline]
    pub fn take(&self, base: usize, now_ns: u64) -> bool {
        self.shards[shard_of(base)].lock().take(base, now_ns)
    }

    /// Undoes the last `take` of `base` (its free failed): the record is
    /// live again and no longer remembered as freed.
    pub fn untake(&self, base: usize) -> bool {
        self.shards[shard_of(base)].lock().untake(base)
    }

    pub fn get(&self, base: usize) -> Option<Allocation> {
        self.shards[shard_of(base)].lock().get(base)
    }

    pub fn live_count(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }

    /// Blocking lookup, for the C API.
    pub fn lookup(&self, addr: usize) -> Lookup {
        self.lookup_with(addr, |m| Some(m.lock()))
            .expect("blocking lookup cannot be busy")
    }

    /// Bounded lookup, for the fault handler: a shard whose lock another
    /// thread holds (an allocating thread, typically for well under a
    /// microsecond) is waited for, yielding the CPU, but only until
    /// `LOOKUP_PATIENCE_NS` have passed since the lookup began; the holder
    /// may also be a thread that will never let go. So the lookup takes at
    /// most that long plus one short spin per shard. A shard still busy then
    /// is skipped: an allocation containing `addr` found in the others is
    /// still the answer; otherwise `Err(Busy)`, and the caller says the
    /// answer is incomplete.
    pub fn try_lookup(&self, addr: usize) -> Result<Lookup, Busy> {
        let deadline = now_ns().saturating_add(LOOKUP_PATIENCE_NS);
        self.lookup_with(addr, |m| m.try_lock_while(|| now_ns() < deadline))
    }

    fn lookup_with<'a>(
        &'a self,
        addr: usize,
        lock_shard: impl Fn(&'a Shard) -> Option<SpinGuard<'a, Live>>,
    ) -> Result<Lookup, Busy> {
        let mut below: Option<Allocation> = None;
        let mut above: Option<Allocation> = None;
        let mut containing: Option<Allocation> = None;
        let mut newest: Option<Freed> = None;
        let mut busy = false;
        for shard in &self.shards {
            let Some(live) = lock_shard(shard) else {
                busy = true;
                continue;
            };
            if let Some(f) = live.freed_containing(addr) {
                if newest.is_none_or(|n| f.freed_ns >= n.freed_ns) {
                    newest = Some(f);
                }
            }
            let (shard_below, shard_above) = live.around(addr);
            if let Some(a) = shard_below {
                if a.contains(addr) {
                    // Prefer the newest if ranges overlap (a registered range
                    // inside an allocation).
                    if containing.is_none_or(|c| a.time_ns >= c.time_ns) {
                        containing = Some(a);
                    }
                } else if below.is_none_or(|b| a.base > b.base) {
                    below = Some(a);
                }
            }
            if let Some(a) = shard_above {
                if above.is_none_or(|b| a.base < b.base) {
                    above = Some(a);
                }
            }
        }
        if let Some(a) = containing {
            return Ok(Lookup::Live(a));
        }
        if busy {
            return Err(Busy);
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
            s.lock_and_keep();
        }
    }

    /// # Safety
    /// Only after `lock_all_for_fork` on this thread (or its fork child).
    pub unsafe fn unlock_all_after_fork(&self) {
        for s in &self.shards {
            // SAFETY: locked by lock_all_for_fork; the guard was forgotten.
            unsafe { s.force_unlock() };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbouring_allocations_spread_over_the_shards() {
        // 256-byte, 4 KiB and 2 MiB steps: each run of 64 fills most shards.
        for step in [256usize, 4096, 2 << 20] {
            let mut seen = [false; SHARDS];
            for k in 0..SHARDS {
                seen[shard_of(0x7f00_0000_0000 + k * step)] = true;
            }
            let used = seen.iter().filter(|s| **s).count();
            assert!(used > SHARDS / 2, "step {step}: {used} shards");
        }
    }

    fn alloc(base: usize, size: usize, t: u64) -> Allocation {
        Allocation {
            base,
            size,
            entry: Entry::HipHostMalloc,
            requested_flags: 0,
            applied_flags: 0x8000_0000,
            memory: Memory::Device(0),
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
    fn untake_undoes_a_failed_free() {
        let r = Registry::new();
        r.insert(alloc(0x10000, 0x1000, 1));
        assert!(r.take(0x10000, 5));
        assert!(!r.take(0x10000, 6));
        assert!(matches!(r.lookup(0x10010), Lookup::Freed(f) if f.freed_ns == 5));
        assert!(r.untake(0x10000));
        assert_eq!(r.lookup(0x10010), Lookup::Live(alloc(0x10000, 0x1000, 1)));
        assert!(!r.untake(0x10000));
        // From the ordered map too.
        let same: Vec<usize> = (1..100_000usize)
            .map(|i| i * 0x100)
            .filter(|b| shard_of(*b) == shard_of(0x100))
            .take(RECENT + 1)
            .collect();
        for (t, b) in same.iter().enumerate() {
            r.insert(alloc(*b, 0x10, t as u64));
        }
        assert!(r.take(same[0], 9));
        assert_eq!(r.get(same[0]), None);
        assert!(r.untake(same[0]));
        assert_eq!(r.get(same[0]), Some(alloc(same[0], 0x10, 0)));
    }

    #[test]
    fn the_freed_ring_is_bounded() {
        // Each shard remembers its last FREED_PER_SHARD frees: in a shard
        // that saw ten more, the oldest ten are forgotten.
        let r = Registry::new();
        let same_shard: Vec<usize> = (1..1_000_000usize)
            .map(|i| 0x100000 + i * 0x1000)
            .filter(|b| shard_of(*b) == shard_of(0x101000))
            .take(FREED_PER_SHARD + 10)
            .collect();
        for (i, b) in same_shard.iter().enumerate() {
            r.insert(alloc(*b, 0x100, i as u64));
            r.remove(*b, i as u64);
        }
        for (i, b) in same_shard.iter().enumerate() {
            let remembered = matches!(r.lookup(*b), Lookup::Freed(_));
            assert_eq!(remembered, i >= 10, "{i}");
        }
        // In all, at most FREED_SLOTS frees are remembered.
        let r = Registry::new();
        for i in 0..(FREED_SLOTS * 3) {
            r.insert(alloc(0x100000 + i * 0x1000, 0x100, i as u64));
            r.remove(0x100000 + i * 0x1000, i as u64);
        }
        let remembered = (0..(FREED_SLOTS * 3))
            .filter(|i| matches!(r.lookup(0x100000 + i * 0x1000), Lookup::Freed(_)))
            .count();
        assert!(
            remembered <= FREED_SLOTS && remembered > FREED_SLOTS / 2,
            "{remembered}"
        );
        // The newest free is always remembered.
        assert!(matches!(
            r.lookup(0x100000 + (FREED_SLOTS * 3 - 1) * 0x1000),
            Lookup::Freed(_)
        ));
    }

    #[test]
    fn try_lookup_reports_busy_instead_of_blocking() {
        let r = Registry::new();
        r.insert(alloc(0x10000, 0x1000, 1));
        let guard = r.shards[shard_of(0x10000)].lock();
        let t = std::time::Instant::now();
        assert_eq!(r.try_lookup(0x10000), Err(Busy));
        // Bounded: the patience plus one coarse clock tick, with slack for
        // a loaded machine (not a timing test: only that it does return).
        assert!(t.elapsed() < std::time::Duration::from_secs(5));
        drop(guard);
        assert!(matches!(r.try_lookup(0x10000), Ok(Lookup::Live(_))));
    }

    /// Issue 18 item 3: a shard held for a moment by another thread (an
    /// allocation in progress) is waited for instead of giving up at once.
    #[test]
    fn try_lookup_waits_for_a_shard_held_for_a_moment() {
        let r = std::sync::Arc::new(Registry::new());
        r.insert(alloc(0x10000, 0x1000, 1));
        let held = std::sync::Arc::new(std::sync::Barrier::new(2));
        let holder = {
            let (r, held) = (r.clone(), held.clone());
            std::thread::spawn(move || {
                let guard = r.shards[shard_of(0x10000)].lock();
                held.wait();
                std::thread::sleep(std::time::Duration::from_millis(2));
                drop(guard);
            })
        };
        held.wait();
        assert_eq!(
            r.try_lookup(0x10010),
            Ok(Lookup::Live(alloc(0x10000, 0x1000, 1)))
        );
        holder.join().unwrap();
    }

    /// A shard that stays busy does not hide an answer the others hold.
    #[test]
    fn a_busy_shard_does_not_hide_a_containing_allocation() {
        let r = Registry::new();
        r.insert(alloc(0x10000, 0x1000, 1));
        let other = (0..SHARDS).find(|&s| s != shard_of(0x10000)).unwrap();
        let _guard = r.shards[other].lock();
        assert_eq!(
            r.try_lookup(0x10010),
            Ok(Lookup::Live(alloc(0x10000, 0x1000, 1)))
        );
        assert_eq!(r.try_lookup(0x90000), Err(Busy));
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
    fn many_allocations_spill_into_the_ordered_map_and_stay_exact() {
        let r = Registry::new();
        let n = SHARDS * RECENT * 4;
        for i in 0..n {
            r.insert(alloc(0x100000 + i * 0x1000, 0x800, i as u64));
        }
        assert_eq!(r.live_count(), n);
        for i in (0..n).step_by(7) {
            let base = 0x100000 + i * 0x1000;
            assert_eq!(r.get(base), Some(alloc(base, 0x800, i as u64)));
            assert_eq!(
                r.lookup(base + 0x7ff),
                Lookup::Live(alloc(base, 0x800, i as u64))
            );
            assert_eq!(
                r.lookup(base + 0x900),
                Lookup::Unknown {
                    below: Some(alloc(base, 0x800, i as u64)),
                    above: (i + 1 < n).then(|| alloc(base + 0x1000, 0x800, i as u64 + 1)),
                }
            );
        }
        // Remove every other one, oldest and newest alike.
        for i in (0..n).step_by(2) {
            let base = 0x100000 + i * 0x1000;
            assert!(r.remove(base, 1).is_some());
            assert!(r.remove(base, 2).is_none());
        }
        assert_eq!(r.live_count(), n / 2);
        for i in 0..n {
            let base = 0x100000 + i * 0x1000;
            assert_eq!(r.get(base).is_some(), i % 2 == 1, "{i}");
        }
    }

    #[test]
    fn a_reused_base_replaces_the_old_record_wherever_it_is() {
        let r = Registry::new();
        // Fill one shard's recent slots so the first record moves to the map.
        let mut same_shard: Vec<usize> = (1..100_000usize)
            .map(|i| i * 0x100)
            .filter(|b| shard_of(*b) == shard_of(0x100))
            .take(RECENT + 1)
            .collect();
        for (t, b) in same_shard.iter().enumerate() {
            r.insert(alloc(*b, 0x10, t as u64));
        }
        let first = same_shard.remove(0);
        r.insert(alloc(first, 0x20, 99));
        assert_eq!(r.live_count(), RECENT + 1);
        assert_eq!(r.get(first), Some(alloc(first, 0x20, 99)));
        assert!(r.remove(first, 5).is_some());
        assert_eq!(r.get(first), None);
        assert!(matches!(r.lookup(first), Lookup::Freed(_)));
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
