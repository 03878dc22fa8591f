//! Which HIP device each stream belongs to, so that a launch on a stream is
//! filed under that stream's device rather than the launching thread's
//! current device (a stream created on device 1 may be used while the
//! thread's current device is 0: PyTorch's side streams, or another thread
//! launching on it).
//!
//! The launch path reads this table once per launch on an explicit stream,
//! so it is a fixed array of single-word entries, read and written with
//! plain atomics: no lock, no allocation. An entry is `stream << 16 |
//! device`: the stream handle (a heap address, below 2^48 on x86-64 and
//! AArch64 Linux user space) in the top 48 bits and the device ordinal in
//! the low 16. One word, so a reader never sees a key with another key's
//! device. Entry 0 is free; no stored entry is 0, because the null stream
//! and HIP's special handles (`SPECIAL_MAX`) are never stored.
//!
//! A stream lives in its home entry (`top_bits(stream)`, where the launch
//! hooks' assembly looks) or one of the `PROBES - 1` entries after it.
//! Inserting replaces every entry of the same stream (a stream destroyed
//! behind rmcp's back and a new one at its address must not keep the old
//! device); removing clears them all. Lookups never stop at a free entry,
//! so removal leaves no hole that hides a later entry.

use std::sync::atomic::{AtomicU64, Ordering};

/// Entries (a power of two): PyTorch keeps up to 64 pooled streams per
/// device, so 8 GPUs' pools fill an eighth of it.
pub const ENTRIES: usize = 4096;
/// How many entries from its home a stream may live.
pub const PROBES: usize = 8;
/// Handles at or below this are HIP's special streams, never stored: 0 the
/// null stream, 1 `hipStreamLegacy`, 2 `hipStreamPerThread`
/// (hip_runtime_api.h of ROCm 6.4.3 and 7.2.4). A launch on them runs on the
/// thread's current device.
pub const SPECIAL_MAX: usize = 2;

/// The numbers the launch hooks' assembly fast paths use (`const`
/// operands there): the home entry is at `top_bits(stream, BITS) *
/// ENTRY_SIZE`, and `(stream << KEY_SHIFT) ^ entry` is the device when it
/// is at most `DEVICE_MAX`.
pub mod layout {
    use super::*;
    pub const BITS: u32 = ENTRIES.trailing_zeros();
    /// The shift the assembly applies to `stream * FIBONACCI`.
    pub const SHIFT: u32 = 64 - BITS;
    pub const ENTRY_SIZE: usize = std::mem::size_of::<AtomicU64>();
    pub const KEY_SHIFT: u32 = 16;
    pub const DEVICE_MAX: u64 = (1 << KEY_SHIFT) - 1;
    const _: () = assert!(ENTRIES.is_power_of_two() && ENTRY_SIZE == 8);
    const _: () = assert!(std::mem::size_of::<StreamDevices>() == ENTRIES * ENTRY_SIZE);
}

/// The table. `#[repr(transparent)]`: the assembly indexes it as an array.
#[repr(transparent)]
pub struct StreamDevices {
    entries: [AtomicU64; ENTRIES],
}

impl Default for StreamDevices {
    fn default() -> Self {
        Self::new()
    }
}

#[inline(always)]
fn home(stream: usize) -> usize {
    crate::core::hash::top_bits(stream as u64, layout::BITS)
}

/// The entry for `stream` on `device`, if the pair can be stored.
#[inline(always)]
fn entry(stream: usize, device: i32) -> Option<u64> {
    let storable = stream > SPECIAL_MAX
        && (stream as u64) >> (64 - layout::KEY_SHIFT) == 0
        && (0..=layout::DEVICE_MAX as i32).contains(&device);
    storable.then_some((stream as u64) << layout::KEY_SHIFT | device as u64)
}

/// The device in `e` when it is `stream`'s entry.
#[inline(always)]
fn device_in(e: u64, stream: usize) -> Option<i32> {
    let d = ((stream as u64) << layout::KEY_SHIFT) ^ e;
    (d <= layout::DEVICE_MAX).then_some(d as i32)
}

impl StreamDevices {
    pub const fn new() -> StreamDevices {
        StreamDevices {
            entries: [const { AtomicU64::new(0) }; ENTRIES],
        }
    }

    fn around(&self, stream: usize) -> impl Iterator<Item = &AtomicU64> {
        let h = home(stream);
        (0..PROBES).map(move |p| &self.entries[(h + p) & (ENTRIES - 1)])
    }

    /// The device noted for `stream`, if any (special handles: None).
    #[inline]
    pub fn get(&self, stream: usize) -> Option<i32> {
        if stream <= SPECIAL_MAX || (stream as u64) >> (64 - layout::KEY_SHIFT) != 0 {
            return None;
        }
        self.around(stream)
            .find_map(|e| device_in(e.load(Ordering::Relaxed), stream))
    }

    /// Notes that `stream` is on `device`, replacing what was noted for it.
    /// False when it cannot be kept: a special or out-of-range handle or
    /// device, or every entry around its home taken by other streams.
    pub fn insert(&self, stream: usize, device: i32) -> bool {
        let Some(new) = entry(stream, device) else {
            return false;
        };
        let mut kept = false;
        for e in self.around(stream) {
            let cur = e.load(Ordering::Relaxed);
            if device_in(cur, stream).is_some() {
                // Ours (maybe stale): replaced. A concurrent replacement of
                // the same stream leaves one of the two answers.
                kept |= e
                    .compare_exchange(cur, new, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok();
            }
        }
        if kept {
            return true;
        }
        self.around(stream).any(|e| {
            e.compare_exchange(0, new, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        })
    }

    /// Forgets `stream` (it was destroyed: a later stream may get its
    /// address).
    pub fn remove(&self, stream: usize) {
        if entry(stream, 0).is_none() {
            return;
        }
        for e in self.around(stream) {
            let cur = e.load(Ordering::Relaxed);
            if device_in(cur, stream).is_some() {
                let _ = e.compare_exchange(cur, 0, Ordering::Relaxed, Ordering::Relaxed);
            }
        }
    }

    /// Whether `stream` sits in its home entry, where the launch hooks'
    /// assembly finds it (tests: the fast path's contract).
    pub fn at_home(&self, stream: usize) -> bool {
        stream > SPECIAL_MAX
            && device_in(self.entries[home(stream)].load(Ordering::Relaxed), stream).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_keeps_its_device_until_removed_and_a_new_one_at_its_address_replaces_it() {
        let t = StreamDevices::new();
        let s = 0x5555_0000_1230usize;
        assert_eq!(t.get(s), None);
        assert!(t.insert(s, 1));
        assert_eq!(t.get(s), Some(1));
        assert!(t.at_home(s));
        assert!(t.insert(s, 0), "replaced in place");
        assert_eq!(t.get(s), Some(0));
        t.remove(s);
        assert_eq!(t.get(s), None);
        assert!(t.insert(s, 3));
        assert_eq!(t.get(s), Some(3));
        assert_eq!(t.get(s + 16), None, "another stream");
    }

    #[test]
    fn special_handles_odd_values_and_out_of_range_devices_are_not_kept() {
        let t = StreamDevices::new();
        for s in 0..=SPECIAL_MAX {
            assert!(!t.insert(s, 1));
            assert_eq!(t.get(s), None);
            assert!(!t.at_home(s));
        }
        assert!(!t.insert(1 << 48, 1), "not a user-space address");
        assert_eq!(t.get(1 << 48), None);
        assert!(!t.insert(0x1000, -1));
        assert!(!t.insert(0x1000, 1 << 16));
        assert!(t.insert(0x1000, 0xffff));
        assert_eq!(t.get(0x1000), Some(0xffff));
        // Device 0 is a real entry: the entry word is not 0.
        assert!(t.insert(0x2000, 0));
        assert_eq!(t.get(0x2000), Some(0));
    }

    #[test]
    fn streams_sharing_a_home_probe_on_and_removal_leaves_no_hole() {
        let t = StreamDevices::new();
        let h = home(0x7000_0000);
        let same: Vec<usize> = (1..)
            .map(|k| 0x7000_0000 + k * 16)
            .filter(|&s| home(s) == h)
            .take(PROBES + 1)
            .collect();
        for (i, &s) in same[..PROBES].iter().enumerate() {
            assert!(t.insert(s, i as i32));
        }
        assert!(!t.insert(same[PROBES], 9), "full around its home");
        assert!(t.at_home(same[0]) && !t.at_home(same[1]));
        // Removing the first leaves the others reachable.
        t.remove(same[0]);
        for (i, &s) in same[1..PROBES].iter().enumerate() {
            assert_eq!(t.get(s), Some(i as i32 + 1));
        }
        assert!(t.insert(same[PROBES], 9), "the freed entry is reused");
        assert_eq!(t.get(same[PROBES]), Some(9));
    }

    #[test]
    fn concurrent_streams_sharing_homes_never_read_anothers_device() {
        // 4 threads, each with its own streams that all share one home
        // entry with the others', insert, read and remove them in a loop:
        // a stream reads its own device or nothing, never another's.
        let t = std::sync::Arc::new(StreamDevices::new());
        let h = home(0x9000_0000);
        let same: Vec<usize> = (1..)
            .map(|k| 0x9000_0000 + k * 16)
            .filter(|&s| home(s) == h)
            .take(PROBES)
            .collect();
        let threads: Vec<_> = (0..4)
            .map(|i| {
                let t = t.clone();
                let mine = [same[2 * i], same[2 * i + 1]];
                std::thread::spawn(move || {
                    for n in 0..20_000 {
                        let s = mine[n % 2];
                        let dev = (i * 10 + n % 2) as i32;
                        assert!(t.insert(s, dev), "room for every stream");
                        assert_eq!(t.get(s), Some(dev));
                        t.remove(s);
                        assert_eq!(t.get(s), None);
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|j| j.join().unwrap());
        assert!(same.iter().all(|&s| t.get(s).is_none()));
    }

    #[test]
    fn the_assembly_formula_finds_the_home_entry() {
        // What the launch fast path computes, in Rust: index, then
        // (stream << KEY_SHIFT) ^ entry <= DEVICE_MAX.
        let t = StreamDevices::new();
        let s = 0x7f12_3456_7890usize;
        t.insert(s, 5);
        let i = (s as u64).wrapping_mul(crate::core::hash::FIBONACCI) >> layout::SHIFT;
        let e = t.entries[i as usize].load(Ordering::Relaxed);
        assert_eq!(((s as u64) << layout::KEY_SHIFT) ^ e, 5);
        // A free entry (0) never reads as a device: the key alone is above
        // DEVICE_MAX for every storable stream.
        let free = 0;
        assert!(((s as u64 + 16) << layout::KEY_SHIFT) ^ free > layout::DEVICE_MAX);
        assert!(((SPECIAL_MAX as u64 + 1) << layout::KEY_SHIFT) > layout::DEVICE_MAX);
    }
}
