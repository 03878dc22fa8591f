//! Kernels in flight: per device, a ring of the most recent launches, and a
//! cache of kernel names.
//!
//! Writing a launch is on the hottest path of every training loop, so it
//! takes no lock: a launch claims a sequence number with one atomic add on
//! its device's counter and fills the slot that number selects; each slot is
//! a seqlock (odd while being written), so a reader (the fault report, the
//! C API) copies a slot and keeps it only if its sequence number did not
//! change meanwhile. Readers never wait and never block a writer. Two
//! writers meet on one slot only if `SLOTS` newer launches on the same
//! device start while one writer is between its two sequence stores; the
//! reader then sees the newer writer's sequence number and may keep a mix
//! of the two launches (the cost of not locking; not a memory-safety issue:
//! every field is an atomic).
//!
//! Synchronisation: `hipDeviceSynchronize` and `hipStreamSynchronize` note
//! the device's launch counter as it was when they were called; a launch
//! numbered below a note that returned successfully had completed.
//!
//! Names are resolved by the runtime once per kernel, at its first launch
//! (outside the fault handler), and kept in `NameCache`; the report only
//! reads them.

use crate::core::entry::Entry;
use crate::core::report::{write_escaped, write_json_str};
use std::cell::UnsafeCell;
use std::fmt::{self, Write};
use std::sync::atomic::{fence, AtomicU32, AtomicU64, AtomicUsize, Ordering};

/// Rings (devices) kept; device ordinals beyond share ring `dev % DEVICES`
/// (each slot keeps its own device number).
pub const DEVICES: usize = 16;
/// Launches remembered per device (a power of two).
pub const SLOTS: usize = 64;
/// Stream synchronisations remembered per device.
pub const STREAM_SYNCS: usize = 8;

/// What was launched, by which entry point. The numbers are stable (C API).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Launcher {
    LaunchKernel = 1,
    ModuleLaunchKernel = 2,
    ExtLaunchKernel = 3,
    ExtModuleLaunchKernel = 4,
    LaunchCooperativeKernel = 5,
    GraphLaunch = 6,
    LaunchKernelSpt = 7,
    LaunchCooperativeKernelSpt = 8,
    GraphLaunchSpt = 9,
    ModuleLaunchCooperativeKernel = 10,
    LaunchKernelExC = 11,
    DrvLaunchKernelEx = 12,
    LaunchCooperativeKernelMultiDevice = 13,
    ExtLaunchMultiKernelMultiDevice = 14,
    ModuleLaunchCooperativeKernelMultiDevice = 15,
}

impl Launcher {
    pub fn from_u8(v: u8) -> Option<Launcher> {
        Some(match v {
            1 => Launcher::LaunchKernel,
            2 => Launcher::ModuleLaunchKernel,
            3 => Launcher::ExtLaunchKernel,
            4 => Launcher::ExtModuleLaunchKernel,
            5 => Launcher::LaunchCooperativeKernel,
            6 => Launcher::GraphLaunch,
            7 => Launcher::LaunchKernelSpt,
            8 => Launcher::LaunchCooperativeKernelSpt,
            9 => Launcher::GraphLaunchSpt,
            10 => Launcher::ModuleLaunchCooperativeKernel,
            11 => Launcher::LaunchKernelExC,
            12 => Launcher::DrvLaunchKernelEx,
            13 => Launcher::LaunchCooperativeKernelMultiDevice,
            14 => Launcher::ExtLaunchMultiKernelMultiDevice,
            15 => Launcher::ModuleLaunchCooperativeKernelMultiDevice,
            _ => return None,
        })
    }
    pub fn name(self) -> &'static str {
        match self {
            Launcher::LaunchKernel => "hipLaunchKernel",
            Launcher::ModuleLaunchKernel => "hipModuleLaunchKernel",
            Launcher::ExtLaunchKernel => "hipExtLaunchKernel",
            Launcher::ExtModuleLaunchKernel => "hipExtModuleLaunchKernel",
            Launcher::LaunchCooperativeKernel => "hipLaunchCooperativeKernel",
            Launcher::GraphLaunch => "hipGraphLaunch",
            Launcher::LaunchKernelSpt => "hipLaunchKernel_spt",
            Launcher::LaunchCooperativeKernelSpt => "hipLaunchCooperativeKernel_spt",
            Launcher::GraphLaunchSpt => "hipGraphLaunch_spt",
            Launcher::ModuleLaunchCooperativeKernel => "hipModuleLaunchCooperativeKernel",
            Launcher::LaunchKernelExC => "hipLaunchKernelExC",
            Launcher::DrvLaunchKernelEx => "hipDrvLaunchKernelEx",
            Launcher::LaunchCooperativeKernelMultiDevice => "hipLaunchCooperativeKernelMultiDevice",
            Launcher::ExtLaunchMultiKernelMultiDevice => "hipExtLaunchMultiKernelMultiDevice",
            Launcher::ModuleLaunchCooperativeKernelMultiDevice => {
                "hipModuleLaunchCooperativeKernelMultiDevice"
            }
        }
    }
    /// The entry point's name as a C string, for the C API.
    pub fn c_name(self) -> &'static std::ffi::CStr {
        match self {
            Launcher::LaunchKernel => c"hipLaunchKernel",
            Launcher::ModuleLaunchKernel => c"hipModuleLaunchKernel",
            Launcher::ExtLaunchKernel => c"hipExtLaunchKernel",
            Launcher::ExtModuleLaunchKernel => c"hipExtModuleLaunchKernel",
            Launcher::LaunchCooperativeKernel => c"hipLaunchCooperativeKernel",
            Launcher::GraphLaunch => c"hipGraphLaunch",
            Launcher::LaunchKernelSpt => c"hipLaunchKernel_spt",
            Launcher::LaunchCooperativeKernelSpt => c"hipLaunchCooperativeKernel_spt",
            Launcher::GraphLaunchSpt => c"hipGraphLaunch_spt",
            Launcher::ModuleLaunchCooperativeKernel => c"hipModuleLaunchCooperativeKernel",
            Launcher::LaunchKernelExC => c"hipLaunchKernelExC",
            Launcher::DrvLaunchKernelEx => c"hipDrvLaunchKernelEx",
            Launcher::LaunchCooperativeKernelMultiDevice => {
                c"hipLaunchCooperativeKernelMultiDevice"
            }
            Launcher::ExtLaunchMultiKernelMultiDevice => c"hipExtLaunchMultiKernelMultiDevice",
            Launcher::ModuleLaunchCooperativeKernelMultiDevice => {
                c"hipModuleLaunchCooperativeKernelMultiDevice"
            }
        }
    }
    /// The hook table's entry point of each launcher (its name in reports).
    pub const fn entry(self) -> Entry {
        match self {
            Launcher::LaunchKernel => Entry::HipLaunchKernel,
            Launcher::ModuleLaunchKernel => Entry::HipModuleLaunchKernel,
            Launcher::ExtLaunchKernel => Entry::HipExtLaunchKernel,
            Launcher::ExtModuleLaunchKernel => Entry::HipExtModuleLaunchKernel,
            Launcher::LaunchCooperativeKernel => Entry::HipLaunchCooperativeKernel,
            Launcher::GraphLaunch => Entry::HipGraphLaunch,
            Launcher::LaunchKernelSpt => Entry::HipLaunchKernelSpt,
            Launcher::LaunchCooperativeKernelSpt => Entry::HipLaunchCooperativeKernelSpt,
            Launcher::GraphLaunchSpt => Entry::HipGraphLaunchSpt,
            Launcher::ModuleLaunchCooperativeKernel => Entry::HipModuleLaunchCooperativeKernel,
            Launcher::LaunchKernelExC => Entry::HipLaunchKernelExC,
            Launcher::DrvLaunchKernelEx => Entry::HipDrvLaunchKernelEx,
            Launcher::LaunchCooperativeKernelMultiDevice => {
                Entry::HipLaunchCooperativeKernelMultiDevice
            }
            Launcher::ExtLaunchMultiKernelMultiDevice => Entry::HipExtLaunchMultiKernelMultiDevice,
            Launcher::ModuleLaunchCooperativeKernelMultiDevice => {
                Entry::HipModuleLaunchCooperativeKernelMultiDevice
            }
        }
    }
    /// The launcher an entry point of the hook table records, if any.
    pub fn of_entry(e: Entry) -> Option<Launcher> {
        (1..=u8::MAX)
            .map_while(Launcher::from_u8)
            .find(|l| l.entry() == e)
    }
    /// The handle is a `hipFunction_t` (module launches), not a host stub.
    pub fn takes_function(self) -> bool {
        matches!(
            self,
            Launcher::ModuleLaunchKernel
                | Launcher::ExtModuleLaunchKernel
                | Launcher::ModuleLaunchCooperativeKernel
                | Launcher::DrvLaunchKernelEx
                | Launcher::ModuleLaunchCooperativeKernelMultiDevice
        )
    }
    /// The handle is a hipGraphExec_t: it has no kernel name.
    pub fn is_graph(self) -> bool {
        matches!(self, Launcher::GraphLaunch | Launcher::GraphLaunchSpt)
    }
}

/// One launch as recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Launch {
    /// Per-device sequence number (0 = the device's first launch).
    pub seq: u64,
    pub launcher: u8,
    pub device: i32,
    pub thread: u32,
    /// Host stub, hipFunction_t, or hipGraphExec_t.
    pub handle: usize,
    pub grid: [u32; 3],
    pub block: [u32; 3],
    pub stream: usize,
    /// `Clock` ticks at the launch.
    pub ticks: u64,
}

impl Launch {
    pub const ZERO: Launch = Launch {
        seq: 0,
        launcher: 0,
        device: 0,
        thread: 0,
        handle: 0,
        grid: [0; 3],
        block: [0; 3],
        stream: 0,
        ticks: 0,
    };
}

/// One slot: a sequence word and the launch, all atomics.
#[repr(C, align(64))]
struct Slot {
    /// 0: never written; odd: being written; 2*(seq+1): holds launch `seq`.
    seq: AtomicU64,
    /// `who()`: thread | (device + 1) << 32 | launcher << 48
    who: AtomicU64,
    handle: AtomicUsize,
    grid_xy: AtomicU64,
    block_xy: AtomicU64,
    /// grid.z | block.z << 32
    zz: AtomicU64,
    stream: AtomicUsize,
    ticks: AtomicU64,
}

impl Slot {
    const fn new() -> Slot {
        Slot {
            seq: AtomicU64::new(0),
            who: AtomicU64::new(0),
            handle: AtomicUsize::new(0),
            grid_xy: AtomicU64::new(0),
            block_xy: AtomicU64::new(0),
            zz: AtomicU64::new(0),
            stream: AtomicUsize::new(0),
            ticks: AtomicU64::new(0),
        }
    }
}

/// The thread-and-device word the launch path keeps per thread
/// (`thread | (device + 1) << 32`, see `crate::interpose::threads`).
#[inline(always)]
pub const fn thread_word(thread: u32, device: i32) -> u64 {
    thread as u64 | (((device + 1) as u16) as u64) << 32
}

/// A slot's `who` word: the thread word and the entry point.
#[inline(always)]
pub const fn who(thread: u32, device: i32, launcher: Launcher) -> u64 {
    thread_word(thread, device) | (launcher as u64) << 48
}

/// The device of a thread word.
#[inline(always)]
pub const fn word_device(word: u64) -> i32 {
    ((word >> 32) & 0xffff) as i32 - 1
}

#[repr(C, align(64))]
struct Counter(AtomicU64);

/// One device's ring.
pub struct Ring {
    next: Counter,
    /// Launches numbered below this had completed (hipDeviceSynchronize).
    synced_below: AtomicU64,
    /// (stream, launches numbered below had completed on it) pairs, each
    /// guarded like a slot by a sequence word.
    stream_syncs: [(AtomicU64, AtomicUsize, AtomicU64); STREAM_SYNCS],
    next_stream_sync: AtomicU32,
    slots: [Slot; SLOTS],
}

impl Default for Ring {
    fn default() -> Self {
        Self::new()
    }
}

impl Ring {
    pub const fn new() -> Ring {
        Ring {
            next: Counter(AtomicU64::new(0)),
            synced_below: AtomicU64::new(0),
            stream_syncs: [const { (AtomicU64::new(0), AtomicUsize::new(0), AtomicU64::new(0)) };
                STREAM_SYNCS],
            next_stream_sync: AtomicU32::new(0),
            slots: [const { Slot::new() }; SLOTS],
        }
    }

    /// Records a launch. Lock-free; a handful of stores.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub fn record(
        &self,
        launcher: Launcher,
        device: i32,
        thread: u32,
        handle: usize,
        grid: [u32; 3],
        block: [u32; 3],
        stream: usize,
        ticks: u64,
    ) {
        self.record_packed(
            who(thread, device, launcher),
            handle,
            grid[0] as u64 | (grid[1] as u64) << 32,
            block[0] as u64 | (block[1] as u64) << 32,
            grid[2] as u64 | (block[2] as u64) << 32,
            stream,
            ticks,
        )
    }

    /// `record` with the words as the launch path has them: `who` from
    /// `who()`, x|y<<32 of grid and block (how a dim3 arrives in a
    /// register), and grid.z | block.z<<32.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub fn record_packed(
        &self,
        who: u64,
        handle: usize,
        grid_xy: u64,
        block_xy: u64,
        zz: u64,
        stream: usize,
        ticks: u64,
    ) {
        let seq = self.next.0.fetch_add(1, Ordering::Relaxed);
        let slot = &self.slots[(seq as usize) & layout::RING_MASK];
        slot.seq.store(writing(seq), Ordering::Relaxed);
        // The odd sequence number is visible before any field changes.
        fence(Ordering::Release);
        slot.who.store(who, Ordering::Relaxed);
        slot.handle.store(handle, Ordering::Relaxed);
        slot.grid_xy.store(grid_xy, Ordering::Relaxed);
        slot.block_xy.store(block_xy, Ordering::Relaxed);
        slot.zz.store(zz, Ordering::Relaxed);
        slot.stream.store(stream, Ordering::Relaxed);
        slot.ticks.store(ticks, Ordering::Relaxed);
        slot.seq.store(written(seq), Ordering::Release);
    }

    /// The number the next launch will get: notes taken before a
    /// synchronisation call.
    #[inline(always)]
    pub fn mark(&self) -> u64 {
        self.next.0.load(Ordering::Relaxed)
    }

    /// A hipDeviceSynchronize that started at `mark` returned successfully.
    pub fn device_synced(&self, mark: u64) {
        self.synced_below.fetch_max(mark, Ordering::Relaxed);
    }

    /// A hipStreamSynchronize(stream) that started at `mark` succeeded.
    pub fn stream_synced(&self, stream: usize, mark: u64) {
        let i = self.next_stream_sync.fetch_add(1, Ordering::Relaxed) as usize % STREAM_SYNCS;
        let (seq, s, m) = &self.stream_syncs[i];
        let v = seq.load(Ordering::Relaxed);
        seq.store(v | 1, Ordering::Relaxed);
        fence(Ordering::Release);
        s.store(stream, Ordering::Relaxed);
        m.store(mark, Ordering::Relaxed);
        seq.store((v | 1) + 1, Ordering::Release);
    }

    /// Whether launch `l` is known to have completed.
    pub fn completed(&self, l: &Launch) -> bool {
        if l.seq < self.synced_below.load(Ordering::Relaxed) {
            return true;
        }
        self.stream_syncs.iter().any(|(seq, s, m)| {
            let a = seq.load(Ordering::Acquire);
            let (stream, mark) = (s.load(Ordering::Relaxed), m.load(Ordering::Relaxed));
            fence(Ordering::Acquire);
            a & 1 == 0
                && a == seq.load(Ordering::Relaxed)
                && a != 0
                && stream == l.stream
                && l.seq < mark
        })
    }

    /// Copies out the launches the ring holds, newest first, into `out`;
    /// returns how many. Never waits: a slot being written is skipped.
    pub fn snapshot(&self, out: &mut [Launch; SLOTS]) -> usize {
        let mut n = 0;
        let newest = self.next.0.load(Ordering::Acquire);
        for k in 0..SLOTS as u64 {
            let Some(seq) = newest.checked_sub(k + 1) else {
                break;
            };
            let slot = &self.slots[(seq as usize) & layout::RING_MASK];
            let before = slot.seq.load(Ordering::Acquire);
            if before != written(seq) {
                continue;
            }
            let who = slot.who.load(Ordering::Relaxed);
            let gxy = slot.grid_xy.load(Ordering::Relaxed);
            let bxy = slot.block_xy.load(Ordering::Relaxed);
            let zz = slot.zz.load(Ordering::Relaxed);
            let l = Launch {
                seq,
                launcher: (who >> 48) as u8,
                device: ((who >> 32) & 0xffff) as i32 - 1,
                thread: who as u32,
                handle: slot.handle.load(Ordering::Relaxed),
                grid: [gxy as u32, (gxy >> 32) as u32, zz as u32],
                block: [bxy as u32, (bxy >> 32) as u32, (zz >> 32) as u32],
                stream: slot.stream.load(Ordering::Relaxed),
                ticks: slot.ticks.load(Ordering::Relaxed),
            };
            fence(Ordering::Acquire);
            if slot.seq.load(Ordering::Relaxed) != before {
                continue;
            }
            out[n] = l;
            n += 1;
        }
        n
    }
}

/// Calls `each(ring, launch)` for every launch `rings` hold on HIP device
/// `device` (every device when None), ring by ring, newest first within a
/// ring. Device `d` lives in ring `d % rings.len()`, which it may share.
/// Never waits; `snap` is the caller's scratch space.
pub fn visit(
    rings: &[Ring],
    device: Option<i32>,
    snap: &mut [Launch; SLOTS],
    mut each: impl FnMut(&Ring, &Launch),
) {
    for (r, ring) in rings.iter().enumerate() {
        if device.is_some_and(|d| (d as usize) % rings.len() != r) {
            continue;
        }
        let n = ring.snapshot(snap);
        for l in &snap[..n] {
            if device.is_none_or(|d| d == l.device) {
                each(ring, l);
            }
        }
    }
}

/// The numbers the launch hooks' assembly fast paths
/// (`crate::interpose::hooks::launch`) use, each a `const` operand there:
/// they record a launch exactly as `Ring::record_packed` does and check
/// `NameCache::seen` as it does, and the Rust code below uses the same
/// constants, so the two cannot disagree.
pub mod layout {
    use super::*;
    use std::mem::{offset_of, size_of};
    pub const RING_NEXT: usize = offset_of!(Ring, next);
    /// Ring `d` of an array of rings is at `d * RING_SIZE`.
    pub const RING_SIZE: usize = size_of::<Ring>();
    /// The ring of device `d` is `d & DEVICE_MASK` (`DEVICES` rings).
    pub const DEVICE_MASK: usize = DEVICES - 1;
    pub const RING_SLOTS: usize = offset_of!(Ring, slots);
    pub const SLOT_SIZE: usize = size_of::<Slot>();
    /// A slot's offset is `(seq & RING_MASK) << SLOT_SHIFT`.
    pub const SLOT_SHIFT: u32 = SLOT_SIZE.trailing_zeros();
    pub const RING_MASK: usize = SLOTS - 1;
    pub const SEQ: usize = offset_of!(Slot, seq);
    pub const WHO: usize = offset_of!(Slot, who);
    pub const HANDLE: usize = offset_of!(Slot, handle);
    pub const GRID_XY: usize = offset_of!(Slot, grid_xy);
    pub const BLOCK_XY: usize = offset_of!(Slot, block_xy);
    pub const ZZ: usize = offset_of!(Slot, zz);
    pub const STREAM: usize = offset_of!(Slot, stream);
    pub const TICKS: usize = offset_of!(Slot, ticks);
    /// The high half of a u64 field (x86-64 is little-endian).
    pub const HIGH_HALF: usize = size_of::<u32>();
    /// A slot's sequence word is `2 * seq + SEQ_WRITING` while launch `seq`
    /// is written and `2 * seq + SEQ_WRITTEN` once it is.
    pub const SEQ_WRITING: u64 = 1;
    pub const SEQ_WRITTEN: u64 = 2;
    /// The byte of `who` that holds the launcher; the bytes above the
    /// thread word's are 0, so storing the word and then this byte is
    /// storing `who()`.
    pub const LAUNCHER_BYTE: usize = 6;
    pub const NAME_ENTRY_SIZE: usize = size_of::<NameEntry>();
    pub const NAME_KEY: usize = offset_of!(NameEntry, key) + offset_of!(NameCache, entries);
    /// `home()` is `crate::core::hash::top_bits(key, NAME_BITS)`.
    pub const NAME_BITS: u32 = NAMES.trailing_zeros();
    /// The same, as the shift the assembly applies to the product.
    pub const NAME_SHIFT: u32 = 64 - NAME_BITS;

    const _: () = assert!(SLOT_SIZE == 1 << SLOT_SHIFT);
    const _: () = assert!(DEVICES.is_power_of_two() && RING_SIZE < i32::MAX as usize / DEVICES);
    const _: () = assert!(SLOTS.is_power_of_two() && NAMES.is_power_of_two());
    const _: () = assert!(size_of::<AtomicU64>() == 2 * HIGH_HALF);
    const _: () = assert!(
        who(u32::MAX, -2, Launcher::GraphLaunch)
            == thread_word(u32::MAX, -2) | (Launcher::GraphLaunch as u64) << (8 * LAUNCHER_BYTE)
    );
    const _: () = assert!(thread_word(u32::MAX, -2) >> (8 * LAUNCHER_BYTE) == 0);
    const _: () = assert!(writing(7) == 2 * 7 + SEQ_WRITING && written(7) == 2 * 7 + SEQ_WRITTEN);
}

/// A slot's sequence word while launch `seq` is being written (odd).
#[inline(always)]
pub const fn writing(seq: u64) -> u64 {
    2 * seq + 1
}

/// A slot's sequence word once launch `seq` is written (even, non-zero).
#[inline(always)]
pub const fn written(seq: u64) -> u64 {
    2 * seq + 2
}

/// Longest kernel name kept (bytes); longer ones are cut.
pub const NAME_MAX: usize = 376;
/// Kernels whose names are kept.
pub const NAMES: usize = 512;

struct NameEntry {
    /// The handle, 0 when free.
    key: AtomicUsize,
    /// 1 + the bytes of `name` that are valid; 0 until published (an empty
    /// name, when the runtime gave none, is published as 1).
    len: AtomicU32,
    /// The name as the runtime gave it was mangled and demangled here.
    demangled: AtomicU32,
    /// The name's length before the cut at `NAME_MAX - 1` bytes.
    full_len: AtomicU32,
    name: UnsafeCell<[u8; NAME_MAX]>,
}

/// A kernel's name as the cache keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelName<'a> {
    /// The name, cut at `NAME_MAX - 1` bytes (on a character boundary).
    pub text: &'a str,
    /// rmcp demangled it (else it is as the runtime gave it).
    pub demangled: bool,
    /// Its length in bytes before any cut.
    pub full_len: usize,
}

/// Kernel names by handle: filled once per kernel at its first launch
/// (claim the entry, copy the name, publish its length), read without
/// waiting by the report.
pub struct NameCache {
    entries: [NameEntry; NAMES],
}

// SAFETY: an entry's bytes are written once, by the thread whose CAS claimed
// its key, before `len` is published with Release; readers read them only
// after seeing a non-zero `len` with Acquire.
unsafe impl Sync for NameCache {}

/// How many entries past the home slot a name may live.
const PROBES: usize = 4;

#[inline(always)]
fn home(key: usize) -> usize {
    crate::core::hash::top_bits(key as u64, layout::NAME_BITS)
}

impl Default for NameCache {
    fn default() -> Self {
        Self::new()
    }
}

impl NameCache {
    pub const fn new() -> NameCache {
        NameCache {
            entries: [const {
                NameEntry {
                    key: AtomicUsize::new(0),
                    len: AtomicU32::new(0),
                    demangled: AtomicU32::new(0),
                    full_len: AtomicU32::new(0),
                    name: UnsafeCell::new([0; NAME_MAX]),
                }
            }; NAMES],
        }
    }

    /// The launch path's check: true when `key` sits in its home entry
    /// (claimed; the name may still be being copied). A false answer sends
    /// the caller to `insert`, which also finds keys in later entries.
    #[inline(always)]
    pub fn seen(&self, key: usize) -> bool {
        self.entries[home(key)].key.load(Ordering::Relaxed) == key
    }

    /// Adds `key`'s name, computed by `resolve` (called only if the key is
    /// new). `resolve` writes the name and says whether it demangled it.
    /// False when the cache is full around the key.
    pub fn insert(&self, key: usize, resolve: impl FnOnce(&mut NameWriter) -> bool) -> bool {
        if key == 0 {
            return false;
        }
        let h = home(key);
        for p in 0..PROBES {
            let e = &self.entries[(h + p) & (NAMES - 1)];
            match e
                .key
                .compare_exchange(0, key, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    // SAFETY: the CAS made this thread the entry's only writer.
                    let buf = unsafe { &mut *e.name.get() };
                    let mut w = NameWriter {
                        buf,
                        len: 0,
                        full_len: 0,
                    };
                    let demangled = resolve(&mut w);
                    let len = w.len as u32 + 1;
                    e.demangled.store(demangled as u32, Ordering::Relaxed);
                    e.full_len
                        .store(w.full_len.min(u32::MAX as usize) as u32, Ordering::Relaxed);
                    e.len.store(len, Ordering::Release);
                    return true;
                }
                Err(k) if k == key => return true,
                Err(_) => {}
            }
        }
        false
    }

    /// `key`'s name as a NUL-terminated C string (static storage: entries
    /// are never reused), if resolved.
    pub fn get_c(&self, key: usize) -> Option<*const std::ffi::c_char> {
        let n = self.get(key)?;
        (!n.text.is_empty()).then_some(n.text.as_ptr().cast())
    }

    /// `key`'s name, if resolved.
    pub fn get(&self, key: usize) -> Option<KernelName<'_>> {
        if key == 0 {
            return None;
        }
        let h = home(key);
        for p in 0..PROBES {
            let e = &self.entries[(h + p) & (NAMES - 1)];
            if e.key.load(Ordering::Acquire) != key {
                continue;
            }
            let len = e.len.load(Ordering::Acquire) as usize;
            if len == 0 {
                return None;
            }
            let len = len - 1;
            // SAFETY: published with Release after the last write; never
            // written again.
            let bytes = unsafe { &(&*e.name.get())[..len.min(NAME_MAX)] };
            let s = match std::str::from_utf8(bytes) {
                Ok(s) => s,
                Err(err) => std::str::from_utf8(&bytes[..err.valid_up_to()]).unwrap_or(""),
            };
            return Some(KernelName {
                text: s,
                demangled: e.demangled.load(Ordering::Relaxed) != 0,
                full_len: (e.full_len.load(Ordering::Relaxed) as usize).max(s.len()),
            });
        }
        None
    }
}

/// Writes into a name entry, cutting at `NAME_MAX`.
pub struct NameWriter<'a> {
    buf: &'a mut [u8; NAME_MAX],
    len: usize,
    /// Bytes offered, kept or not.
    full_len: usize,
}

impl Write for NameWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.full_len += s.len();
        // The last byte stays 0, so the C API can hand out the bytes as a
        // NUL-terminated string.
        let n = s.len().min(NAME_MAX - 1 - self.len);
        // Cut on a character boundary.
        let n = (0..=n).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// Converts the launch clock to CLOCK_MONOTONIC nanoseconds. The launch
/// path reads the CPU's time-stamp counter (one instruction, where
/// clock_gettime costs ~20); the report maps ticks to time linearly through
/// two (ticks, ns) pairs: one taken when the first launch was recorded, one
/// when the report is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClockPair {
    pub ticks: u64,
    pub ns: u64,
}

/// Nanoseconds between the launch at `ticks` and `now`, given `origin`.
/// None when the pairs cannot be used (no elapsed ticks).
pub fn ns_before(ticks: u64, origin: ClockPair, now: ClockPair) -> Option<u64> {
    let span_ticks = now.ticks.checked_sub(origin.ticks)?;
    if span_ticks == 0 {
        return None;
    }
    let span_ns = now.ns.saturating_sub(origin.ns);
    let ago_ticks = now.ticks.saturating_sub(ticks);
    Some(((ago_ticks as u128 * span_ns as u128) / span_ticks as u128) as u64)
}

/// One launch as the report shows it.
#[derive(Clone, Copy, Debug)]
pub struct Shown<'a> {
    pub launch: Launch,
    /// The kernel's name; None: not resolved.
    pub name: Option<KernelName<'a>>,
    /// Nanoseconds between the launch and the report, if known.
    pub ns_ago: Option<u64>,
}

impl Shown<'_> {
    pub const ZERO: Shown<'static> = Shown {
        launch: Launch::ZERO,
        name: None,
        ns_ago: None,
    };
}

fn launcher_name(l: &Launch) -> &'static str {
    Launcher::from_u8(l.launcher).map_or("?", |x| x.entry().name())
}

/// A kernel name as reports show it: at most `max` of its bytes (cut on a
/// character boundary), then, if anything is missing (cut here or when the
/// name was cached), a marker with its full length.
#[derive(Clone, Copy, Debug)]
pub struct NameShown<'a> {
    pub head: &'a str,
    /// Full length in bytes when shortened.
    pub shortened_from: Option<usize>,
}

pub fn shorten<'a>(n: &KernelName<'a>, max: usize) -> NameShown<'a> {
    let mut end = n.text.len().min(max);
    while !n.text.is_char_boundary(end) {
        end -= 1;
    }
    let head = &n.text[..end];
    NameShown {
        head,
        shortened_from: (n.full_len > head.len()).then_some(n.full_len),
    }
}

impl NameShown<'_> {
    fn write_marker(&self, w: &mut impl Write) -> fmt::Result {
        match self.shortened_from {
            Some(full) => write!(w, "... ({full} bytes, shortened)"),
            None => Ok(()),
        }
    }
}

/// "#12 vecAdd(float*, int) via hipModuleLaunchKernel: grid 64x1x1, block
/// 256x1x1, stream 0x0, thread 4242, 3 ms before the fault", showing at most
/// `name_max` bytes of the name.
pub fn write_line(w: &mut impl Write, s: &Shown, name_max: usize) -> fmt::Result {
    let l = &s.launch;
    write!(w, "#{} ", l.seq)?;
    match (Launcher::from_u8(l.launcher), s.name) {
        (Some(Launcher::GraphLaunch), _) => write!(w, "graph {:#x}", l.handle)?,
        (_, Some(n)) if !n.text.is_empty() => {
            let shown = shorten(&n, name_max);
            write_escaped(w, shown.head)?;
            shown.write_marker(w)?;
            if !n.demangled && n.text.starts_with("_Z") {
                w.write_str(" (mangled: rmcp's demangler does not cover this name)")?;
            }
        }
        _ => write!(w, "kernel {:#x} (name not known to the runtime)", l.handle)?,
    }
    write!(w, " via {}: ", launcher_name(l))?;
    if l.launcher != Launcher::GraphLaunch as u8 {
        write!(
            w,
            "grid {}x{}x{}, block {}x{}x{}, ",
            l.grid[0], l.grid[1], l.grid[2], l.block[0], l.block[1], l.block[2]
        )?;
    }
    write!(w, "stream {:#x}, thread {}", l.stream, l.thread)?;
    match s.ns_ago {
        Some(ns) => write!(w, ", {} ms before the fault", ns / 1_000_000),
        None => Ok(()),
    }
}

/// One launch as a JSON object (stable field names: `sequence`,
/// `entry_point`, `kernel`, `demangled`, `handle`, `grid`, `block`,
/// `stream`, `thread`, `ms_before_fault`, `kernel_shortened`), showing at
/// most `name_max` bytes of the name.
pub fn write_json(w: &mut impl Write, s: &Shown, name_max: usize) -> fmt::Result {
    let l = &s.launch;
    write!(
        w,
        "{{\"sequence\":{},\"entry_point\":\"{}\",\"kernel\":",
        l.seq,
        launcher_name(l)
    )?;
    let mut shortened = false;
    match s.name {
        Some(n) if !n.text.is_empty() => {
            let shown = shorten(&n, name_max);
            shortened = shown.shortened_from.is_some();
            w.write_char('"')?;
            write_json_str(w, shown.head)?;
            shown.write_marker(w)?;
            w.write_char('"')?;
        }
        _ => w.write_str("null")?,
    }
    write!(
        w,
        ",\"demangled\":{},\"handle\":\"{:#x}\",\"grid\":[{},{},{}],\"block\":[{},{},{}],\"stream\":\"{:#x}\",\"thread\":{},\"ms_before_fault\":",
        s.name.is_some_and(|n| n.demangled),
        l.handle,
        l.grid[0],
        l.grid[1],
        l.grid[2],
        l.block[0],
        l.block[1],
        l.block[2],
        l.stream,
        l.thread
    )?;
    match s.ns_ago {
        Some(ns) => write!(w, "{}", ns / 1_000_000)?,
        None => w.write_str("null")?,
    }
    write!(w, ",\"kernel_shortened\":{shortened}}}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn kn(text: &str, demangled: bool) -> KernelName<'_> {
        KernelName {
            text,
            demangled,
            full_len: text.len(),
        }
    }

    fn snap(r: &Ring) -> Vec<Launch> {
        let mut out = [Launch::default(); SLOTS];
        let n = r.snapshot(&mut out);
        out[..n].to_vec()
    }

    #[test]
    fn records_newest_first_and_forgets_the_oldest() {
        let r = Ring::new();
        assert!(snap(&r).is_empty());
        for i in 0..(SLOTS as u64 + 3) {
            r.record(
                Launcher::LaunchKernel,
                1,
                77,
                0x1000 + i as usize,
                [i as u32, 2, 3],
                [256, 1, 1],
                0xabc,
                i,
            );
        }
        let s = snap(&r);
        assert_eq!(s.len(), SLOTS);
        assert_eq!(s[0].seq, SLOTS as u64 + 2);
        assert_eq!(s[0].handle, 0x1000 + SLOTS + 2);
        assert_eq!(s[0].grid, [SLOTS as u32 + 2, 2, 3]);
        assert_eq!(s[0].block, [256, 1, 1]);
        assert_eq!((s[0].device, s[0].thread, s[0].stream), (1, 77, 0xabc));
        assert_eq!(
            Launcher::from_u8(s[0].launcher),
            Some(Launcher::LaunchKernel)
        );
        assert_eq!(s[SLOTS - 1].seq, 3);
    }

    #[test]
    fn synchronisation_marks_what_completed() {
        let r = Ring::new();
        let launch = |stream| {
            r.record(
                Launcher::ModuleLaunchKernel,
                0,
                1,
                9,
                [1; 3],
                [1; 3],
                stream,
                0,
            )
        };
        launch(0xa);
        launch(0xb);
        let m = r.mark();
        launch(0xa);
        r.stream_synced(0xa, m);
        let s = snap(&r);
        // Newest first: the third launch (after the mark) is not known complete;
        // the first was on the synchronised stream; the second on another.
        assert_eq!(
            s.iter().map(|l| r.completed(l)).collect::<Vec<_>>(),
            vec![false, false, true]
        );
        r.device_synced(r.mark());
        assert!(snap(&r).iter().all(|l| r.completed(l)));
    }

    #[test]
    fn concurrent_writers_never_produce_a_torn_slot_that_is_kept() {
        let r = Arc::new(Ring::new());
        let writers: Vec<_> = (0..4u32)
            .map(|t| {
                let r = r.clone();
                std::thread::spawn(move || {
                    for i in 0..20_000u32 {
                        // Every field carries the same value, so a mix shows.
                        let v = t * 1_000_000 + i;
                        r.record(
                            Launcher::LaunchKernel,
                            0,
                            v,
                            v as usize,
                            [v; 3],
                            [v; 3],
                            v as usize,
                            v as u64,
                        );
                    }
                })
            })
            .collect();
        let mut seen = 0;
        while seen < 200 {
            for l in snap(&r) {
                assert!(
                    l.handle == l.thread as usize
                        && l.grid == [l.thread; 3]
                        && l.block == [l.thread; 3]
                        && l.ticks == l.thread as u64,
                    "{l:?}"
                );
                seen += 1;
            }
        }
        writers.into_iter().for_each(|w| w.join().unwrap());
    }

    #[test]
    fn names_are_cached_once_and_cut_when_long() {
        let c = NameCache::new();
        assert!(!c.seen(0x10));
        assert!(c.insert(0x10, |w| {
            w.write_str("vecAdd(float*, int)").unwrap();
            true
        }));
        assert!(c.seen(0x10));
        assert!(c.insert(0x10, |_| panic!("resolved twice")));
        assert_eq!(c.get(0x10), Some(kn("vecAdd(float*, int)", true)));
        assert_eq!(c.get(0x20), None);
        // A kernel the runtime could not name is published empty, once.
        assert!(c.insert(0x28, |_| false));
        assert!(c.seen(0x28));
        assert_eq!(c.get(0x28), Some(kn("", false)));
        assert_eq!(c.get_c(0x28), None);
        let long = "é".repeat(NAME_MAX);
        assert!(c.insert(0x30, |w| {
            w.write_str(&long).unwrap();
            false
        }));
        let n = c.get(0x30).unwrap();
        assert!(!n.demangled);
        assert_eq!(n.text.len(), NAME_MAX - 2);
        assert_eq!(n.full_len, long.len(), "the full length is kept");
        // Keys that share a home entry go to the next ones, up to PROBES.
        let mut same_home = (1..).map(|k| k * 0x40).filter(|&k| home(k) == home(0x40));
        let keys: Vec<usize> = (&mut same_home).take(PROBES + 1).collect();
        for &k in &keys[..PROBES] {
            assert!(c.insert(k, |w| w.write_str("k").is_ok()));
        }
        assert!(!c.insert(keys[PROBES], |_| true), "full around the key");
        assert_eq!(c.get(keys[PROBES - 1]), Some(kn("k", true)));
    }

    #[test]
    fn lines_and_json_name_the_kernel() {
        let l = Launch {
            seq: 12,
            launcher: Launcher::ModuleLaunchKernel as u8,
            device: 1,
            thread: 4242,
            handle: 0x5000,
            grid: [64, 1, 1],
            block: [256, 1, 1],
            stream: 0,
            ticks: 0,
        };
        let mut b = crate::core::report::FixedBuf::<1024>::new();
        let shown = Shown {
            launch: l,
            name: Some(kn("vecAdd(float*, int)", true)),
            ns_ago: Some(3_500_000),
        };
        write_line(&mut b, &shown, NAME_MAX).unwrap();
        assert_eq!(b.as_str(), "#12 vecAdd(float*, int) via hipModuleLaunchKernel: grid 64x1x1, block 256x1x1, stream 0x0, thread 4242, 3 ms before the fault");
        b.clear();
        write_json(&mut b, &shown, NAME_MAX).unwrap();
        assert_eq!(b.as_str(), "{\"sequence\":12,\"entry_point\":\"hipModuleLaunchKernel\",\"kernel\":\"vecAdd(float*, int)\",\"demangled\":true,\"handle\":\"0x5000\",\"grid\":[64,1,1],\"block\":[256,1,1],\"stream\":\"0x0\",\"thread\":4242,\"ms_before_fault\":3,\"kernel_shortened\":false}");
        b.clear();
        write_line(
            &mut b,
            &Shown {
                name: Some(kn("_ZZ4mainE1x", false)),
                ns_ago: None,
                ..shown
            },
            NAME_MAX,
        )
        .unwrap();
        assert!(
            b.as_str().starts_with(
                "#12 _ZZ4mainE1x (mangled: rmcp's demangler does not cover this name) via"
            ),
            "{}",
            b.as_str()
        );
        b.clear();
        let graph = Launch {
            launcher: Launcher::GraphLaunch as u8,
            ..l
        };
        write_line(
            &mut b,
            &Shown {
                launch: graph,
                name: None,
                ns_ago: None,
            },
            NAME_MAX,
        )
        .unwrap();
        assert_eq!(
            b.as_str(),
            "#12 graph 0x5000 via hipGraphLaunch: stream 0x0, thread 4242"
        );
        b.clear();
        write_json(
            &mut b,
            &Shown {
                launch: l,
                name: None,
                ns_ago: None,
            },
            NAME_MAX,
        )
        .unwrap();
        assert!(
            b.as_str().contains("\"kernel\":null,\"demangled\":false,"),
            "{}",
            b.as_str()
        );
    }

    #[test]
    fn ticks_map_to_time_through_two_pairs() {
        let origin = ClockPair {
            ticks: 1000,
            ns: 5_000_000,
        };
        let now = ClockPair {
            ticks: 3000,
            ns: 7_000_000,
        };
        assert_eq!(ns_before(2000, origin, now), Some(1_000_000));
        assert_eq!(ns_before(3000, origin, now), Some(0));
        assert_eq!(ns_before(1, origin, origin), None);
    }
}
