//! Which HIP devices are targets, decided once per device from the
//! architecture the runtime reports (gcnArchName in hipDeviceProp_t).
//!
//! Each device is probed at most once, by whichever thread gets there first;
//! the answer is cached in an atomic the hot path reads.

use crate::abi::{props, HIP_SUCCESS};
use crate::core::config::Config;
use crate::core::sync::{InitOnce, SpinLock};
use crate::interpose::symbols::{self, hip_fn, hip_sym};
use std::ffi::c_int;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU8, Ordering};

/// Devices beyond this ordinal are treated as non-targets.
pub const MAX_DEVICES: usize = 64;

const UNKNOWN: u8 = 0;
const TARGET: u8 = 1;
const NOT_TARGET: u8 = 2;
/// The properties could not be read: treated as not a target.
const UNREADABLE: u8 = 3;

static STATE: [AtomicU8; MAX_DEVICES] = [const { AtomicU8::new(UNKNOWN) }; MAX_DEVICES];
static PROBE: [InitOnce; MAX_DEVICES] = [const { InitOnce::new() }; MAX_DEVICES];
/// Arch names as reported, for messages and the exit summary.
static NAMES: [SpinLock<[u8; 64]>; MAX_DEVICES] = [const { SpinLock::new([0; 64]) }; MAX_DEVICES];

static ALL_PROBED: InitOnce = InitOnce::new();
static ANY_TARGET: AtomicBool = AtomicBool::new(false);
static COUNT: AtomicI32 = AtomicI32::new(-1);

/// The buffer handed to hipGetDeviceProperties*: larger than either layout,
/// so a runtime never writes past it.
#[repr(C, align(16))]
struct PropsBuffer([u8; props::PROPS_BUFFER_BYTES]);

/// The calling thread's current device, or None if the runtime cannot say.
pub fn current_device(cfg: &Config) -> Option<i32> {
    let f = symbols::hip(cfg, hip_sym::hipGetDevice)?;
    let mut dev: c_int = -1;
    // SAFETY: f is the runtime's hipGetDevice(int*); dev is a valid out-pointer.
    let rc = unsafe { std::mem::transmute::<usize, hip_fn::hipGetDevice>(f)(&mut dev) };
    (rc == HIP_SUCCESS && dev >= 0).then_some(dev)
}

/// The device count, or 0 when the runtime has none or cannot say.
pub fn device_count(cfg: &Config) -> i32 {
    let c = COUNT.load(Ordering::Acquire);
    if c >= 0 {
        return c;
    }
    let n = symbols::hip(cfg, hip_sym::hipGetDeviceCount)
        .map(|f| {
            let mut n: c_int = 0;
            // SAFETY: f is hipGetDeviceCount(int*); n is a valid out-pointer.
            let rc = unsafe { std::mem::transmute::<usize, hip_fn::hipGetDeviceCount>(f)(&mut n) };
            if rc == HIP_SUCCESS {
                n.max(0)
            } else {
                0
            }
        })
        .unwrap_or(0);
    COUNT.store(n, Ordering::Release);
    n
}

/// Whether `dev` is a target under the configured target set.
pub fn is_target(cfg: &Config, dev: i32) -> bool {
    let Ok(i) = usize::try_from(dev) else {
        return false;
    };
    if i >= MAX_DEVICES {
        return false;
    }
    let s = STATE[i].load(Ordering::Acquire);
    if s != UNKNOWN {
        return s == TARGET;
    }
    PROBE[i].call(|| probe(cfg, i));
    STATE[i].load(Ordering::Acquire) == TARGET
}

/// Whether any visible device is a target (decides host allocations).
#[inline]
pub fn any_target(cfg: &Config) -> bool {
    if ALL_PROBED.is_done() {
        return ANY_TARGET.load(Ordering::Acquire);
    }
    ALL_PROBED.call(|| {
        let n = device_count(cfg);
        // Probe every device (no short-circuit): the summary names them all.
        let any = (0..n)
            .map(|d| is_target(cfg, d))
            .fold(false, |any, t| any | t);
        ANY_TARGET.store(any, Ordering::Release);
    });
    ANY_TARGET.load(Ordering::Acquire)
}

fn probe(cfg: &Config, i: usize) {
    let targets = &cfg.targets;
    let state = match read_arch(cfg, i as c_int) {
        Some((name, len)) => {
            let arch = std::str::from_utf8(&name[..len]).unwrap_or("");
            *NAMES[i].lock() = name;
            let hit = targets.contains_name(arch);
            log::debug!(
                "device {i}: {arch} is {}a target",
                if hit { "" } else { "not " }
            );
            if hit {
                TARGET
            } else {
                NOT_TARGET
            }
        }
        None => {
            log::debug!("device {i}: properties not readable; not a target");
            UNREADABLE
        }
    };
    STATE[i].store(state, Ordering::Release);
}

/// Reads gcnArchName, preferring the ROCm 6 layout when the runtime has it.
fn read_arch(cfg: &Config, dev: c_int) -> Option<([u8; 64], usize)> {
    let (f, offset) = match symbols::hip(cfg, hip_sym::hipGetDevicePropertiesR0600) {
        Some(f) => (f, props::R0600_GCN_ARCH_NAME),
        None => (
            symbols::hip(cfg, hip_sym::hipGetDeviceProperties)?,
            props::R0000_GCN_ARCH_NAME,
        ),
    };
    let mut buf = Box::new(PropsBuffer([0; props::PROPS_BUFFER_BYTES]));
    // SAFETY: f is hipGetDeviceProperties(R0600)(prop*, int); the buffer is
    // larger than either layout (792 / 1472 bytes) and suitably aligned.
    let rc = unsafe {
        std::mem::transmute::<usize, hip_fn::hipGetDeviceProperties>(f)(
            buf.0.as_mut_ptr().cast(),
            dev,
        )
    };
    if rc != HIP_SUCCESS {
        return None;
    }
    let field = &buf.0[offset..offset + props::GCN_ARCH_NAME_LEN];
    let len = field
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(field.len())
        .min(64);
    let mut name = [0u8; 64];
    name[..len].copy_from_slice(&field[..len]);
    Some((name, len))
}

/// The arch name of a probed device.
pub fn arch_name(dev: usize) -> Option<String> {
    if dev >= MAX_DEVICES || STATE[dev].load(Ordering::Acquire) == UNKNOWN {
        return None;
    }
    let name = *NAMES[dev].lock();
    let len = name.iter().position(|&b| b == 0).unwrap_or(64);
    Some(String::from_utf8_lossy(&name[..len]).into_owned())
}

/// "devices targeted: 0 (gfx1030); not targeted: 1 (gfx1100)" over the
/// devices probed so far.
pub fn summary() -> String {
    let mut targeted = Vec::new();
    let mut other = Vec::new();
    for (i, s) in STATE.iter().enumerate() {
        let label = || format!("{i} ({})", arch_name(i).unwrap_or_default());
        match s.load(Ordering::Acquire) {
            TARGET => targeted.push(label()),
            NOT_TARGET | UNREADABLE => other.push(label()),
            _ => {}
        }
    }
    let list = |v: &Vec<String>| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(", ")
        }
    };
    format!(
        "devices targeted: {}; not targeted: {}",
        list(&targeted),
        list(&other)
    )
}

/// Fork child: probes interrupted by fork start again.
pub fn after_fork_in_child() {
    PROBE.iter().for_each(InitOnce::reset_if_running);
    ALL_PROBED.reset_if_running();
}
