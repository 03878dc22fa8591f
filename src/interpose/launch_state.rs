//! The launch state of the process: the per-device rings of recent kernel
//! launches, the kernel-name cache and the launch clock's origin. It sits
//! beside the registry and the statistics (`crate::interpose::process`):
//! the launch hooks write it, the fault report and the C API read it, and
//! none of those imports another.

use crate::core::launches::{self, ClockPair, Launch, NameCache, Ring, Shown, DEVICES, SLOTS};
use crate::core::streams::StreamDevices;
use crate::core::sync::now_ns;
use std::sync::atomic::{AtomicU64, Ordering};

pub static RINGS: [Ring; DEVICES] = [const { Ring::new() }; DEVICES];
pub static NAMES: NameCache = NameCache::new();
/// The device of each stream created through rmcp's hooks (or asked of the
/// runtime at its first launch): where its launches are filed.
pub static STREAMS: StreamDevices = StreamDevices::new();

/// Which path each hipLaunchKernel / hipModuleLaunchKernel call took
/// (feature `test-counters`, for tests/launches.rs; never in releases): the
/// assembly fast path or the Rust slow path. The exit summary
/// (RMCP_LOG=info) prints them.
#[cfg(feature = "test-counters")]
pub static FAST_LAUNCHES: AtomicU64 = AtomicU64::new(0);
#[cfg(feature = "test-counters")]
pub static SLOW_LAUNCHES: AtomicU64 = AtomicU64::new(0);

/// The ring of HIP device `dev` (ordinals past `DEVICES` share rings).
#[inline(always)]
pub fn ring(dev: i32) -> &'static Ring {
    &RINGS[(dev as usize) & launches::layout::DEVICE_MASK]
}

/// (ticks, ns) taken at the first launch a thread records: the origin of the
/// tick-to-time conversion (`crate::core::launches::ns_before`).
static ORIGIN_TICKS: AtomicU64 = AtomicU64::new(0);
static ORIGIN_NS: AtomicU64 = AtomicU64::new(0);

/// The launch clock: the time-stamp counter where there is one (a single
/// instruction), else CLOCK_MONOTONIC.
#[inline(always)]
pub fn ticks() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: rdtsc exists on every x86-64 CPU and has no side effects.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        now_ns()
    }
}

/// Takes the clock's origin if no launch has yet.
pub fn start_clock() {
    if ORIGIN_TICKS.load(Ordering::Relaxed) == 0 {
        ORIGIN_NS.store(now_ns(), Ordering::Relaxed);
        ORIGIN_TICKS.store(ticks(), Ordering::Release);
    }
}

/// The clock pair the report converts ticks with; None before any launch.
pub fn origin() -> Option<ClockPair> {
    let ns = ORIGIN_NS.load(Ordering::Acquire);
    let ticks = ORIGIN_TICKS.load(Ordering::Acquire);
    (ticks != 0).then_some(ClockPair { ticks, ns })
}

pub fn now_pair() -> ClockPair {
    ClockPair {
        ticks: ticks(),
        ns: now_ns(),
    }
}

/// Calls `each(ring, launch)` for every launch the rings hold on HIP device
/// `device` (every device when None), ring by ring, newest first within a
/// ring. Never waits; allocates nothing (`snap` is the caller's).
pub fn for_each_launch(
    device: Option<i32>,
    snap: &mut [Launch; SLOTS],
    each: impl FnMut(&Ring, &Launch),
) {
    launches::visit(&RINGS, device, snap, each)
}

/// `l` as a report shows it: its kernel's name from the cache and how long
/// before `now` it was launched.
pub fn shown(l: &Launch, origin: Option<ClockPair>, now: ClockPair) -> Shown<'static> {
    Shown {
        launch: *l,
        name: NAMES.get(l.handle),
        ns_ago: origin.and_then(|o| launches::ns_before(l.ticks, o, now)),
    }
}
