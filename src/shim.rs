//! Process-wide state of the loaded shim: configuration, the real runtimes,
//! the registry and stats, and the one-time setup (logger, panic message,
//! fork handlers, exit summary). Nothing runs at load time: a process that
//! never calls a hook never reads the environment, prints or loads anything.

use crate::config::Config;
use crate::entry::{c_str, hook_table, Entry};
use crate::registry::Registry;
use crate::runtime::Runtime;
use crate::stats::Stats;
use once_cell::sync::OnceCell;
use std::ffi::CStr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

pub static REGISTRY: Registry = Registry::new();
pub static STATS: Stats = Stats::new();

macro_rules! define_symbols {
    (
        hip_hooks { $($hv:ident $hs:ident ($($ha:ty),*) -> $hr:ty;)* }
        hsa_hooks { $($sv:ident $ss:ident ($($sa:ty),*) -> $sr:ty;)* }
        hsa_other_hooks { $($os:ident ($($oa:ty),*) -> $or:ty;)* }
        hip_calls { $($cs:ident ($($ca:ty),*) -> $cr:ty;)* }
        hsa_calls { $($ds:ident ($($da:ty),*) -> $dr:ty;)* }
    ) => {
        /// Indices into the HIP runtime's symbol table, named after the
        /// symbol: the hooks' real functions, then the ones rmcp only calls.
        #[allow(non_upper_case_globals)]
        pub mod hip_sym {
            #[allow(non_camel_case_types, dead_code)]
            enum I { $($hs,)* $($cs,)* Count }
            $(pub const $hs: usize = I::$hs as usize;)*
            $(pub const $cs: usize = I::$cs as usize;)*
            pub const COUNT: usize = I::Count as usize;
        }

        /// Indices into the HSA runtime's symbol table, as `hip_sym`.
        #[allow(non_upper_case_globals)]
        pub mod hsa_sym {
            #[allow(non_camel_case_types, dead_code)]
            enum I { $($ss,)* $($os,)* $($ds,)* Count }
            $(pub const $ss: usize = I::$ss as usize;)*
            $(pub const $os: usize = I::$os as usize;)*
            $(pub const $ds: usize = I::$ds as usize;)*
            pub const COUNT: usize = I::Count as usize;
        }

        /// The real HIP functions' types, named after the symbol.
        #[allow(non_camel_case_types, dead_code)]
        pub mod hip_fn {
            use crate::abi::*;
            use std::ffi::*;
            $(pub type $hs = unsafe extern "C" fn($($ha),*) -> $hr;)*
            $(pub type $cs = unsafe extern "C" fn($($ca),*) -> $cr;)*
        }

        /// The real HSA functions' types, named after the symbol.
        #[allow(non_camel_case_types, dead_code)]
        pub mod hsa_fn {
            use crate::abi::*;
            use std::ffi::*;
            $(pub type $ss = unsafe extern "C" fn($($sa),*) -> $sr;)*
            $(pub type $os = unsafe extern "C" fn($($oa),*) -> $or;)*
            $(pub type $ds = unsafe extern "C" fn($($da),*) -> $dr;)*
        }

        static HIP_NAMES: [&CStr; hip_sym::COUNT] = [
            $(c_str(concat!(stringify!($hs), "\0")),)*
            $(c_str(concat!(stringify!($cs), "\0")),)*
        ];
        static HSA_NAMES: [&CStr; hsa_sym::COUNT] = [
            $(c_str(concat!(stringify!($ss), "\0")),)*
            $(c_str(concat!(stringify!($os), "\0")),)*
            $(c_str(concat!(stringify!($ds), "\0")),)*
        ];
    };
}
hook_table!(define_symbols);

// A HIP entry point's index is its symbol's index: hooks pass `Entry`
// values where a symbol is meant (`policy::Forward::target`).
const _: () = assert!(hip_sym::hipMalloc == Entry::HipMalloc as usize);
const _: () = assert!(hip_sym::hipGetProcAddress == Entry::HipGetProcAddress as usize);
const _: () = assert!(hip_sym::hipGetDevice == Entry::HIP_COUNT);

static HIP_SLOTS: [AtomicUsize; hip_sym::COUNT] = [const { AtomicUsize::new(0) }; hip_sym::COUNT];
static HSA_SLOTS: [AtomicUsize; hsa_sym::COUNT] = [const { AtomicUsize::new(0) }; hsa_sym::COUNT];

pub static HIP: Runtime = Runtime::new(
    "HIP",
    b"libamdhip64",
    &[
        c"libamdhip64.so.7",
        c"libamdhip64.so.6",
        c"libamdhip64.so.5",
        c"libamdhip64.so",
    ],
    c"hipMalloc",
    &HIP_NAMES,
    &HIP_SLOTS,
);

pub static HSA: Runtime = Runtime::new(
    "HSA",
    b"libhsa-runtime64",
    &[c"libhsa-runtime64.so.1", c"libhsa-runtime64.so"],
    c"hsa_init",
    &HSA_NAMES,
    &HSA_SLOTS,
);

static CONFIG: OnceCell<Config> = OnceCell::new();

/// The configuration, set up on first use.
#[inline]
pub fn config() -> &'static Config {
    CONFIG.get_or_init(setup)
}

/// The address of real HIP function `index` (a `hip_sym` constant) once it
/// has been resolved: `Some(None)` when it is missing, `None` when not
/// looked up yet. The hooks' fast path: one load.
#[inline(always)]
pub fn hip_cached(index: usize) -> Option<Option<usize>> {
    Runtime::cached(&HIP_SLOTS[index])
}

/// The address of a real HIP function, or None.
#[inline]
pub fn hip(index: usize) -> Option<usize> {
    match hip_cached(index) {
        Some(p) => p,
        None => HIP.sym(index, config().hip_library.as_deref()),
    }
}

/// The address of a real HSA function, or None.
#[inline]
pub fn hsa(index: usize) -> Option<usize> {
    match HSA.cached_sym(index) {
        Some(p) => p,
        None => HSA.sym(index, config().hsa_library.as_deref()),
    }
}

/// The real HSA function `index` as `F`, or None when the runtime or the
/// function is missing.
///
/// # Safety
/// `F` must be the C prototype of symbol `index` (an `hsa_fn` type).
#[inline]
pub(crate) unsafe fn hsa_real<F: Copy>(index: usize) -> Option<F> {
    debug_assert_eq!(std::mem::size_of::<F>(), std::mem::size_of::<usize>());
    // SAFETY: the caller guarantees F is the symbol's function type.
    hsa(index).map(|p| unsafe { std::mem::transmute_copy::<usize, F>(&p) })
}

fn is_secure() -> bool {
    // SAFETY: getauxval has no preconditions.
    unsafe { libc::getauxval(libc::AT_SECURE) != 0 }
}

fn setup() -> Config {
    let (cfg, problems) = Config::from_process_env(is_secure());
    if !cfg.enabled {
        return cfg;
    }
    log::set_max_level(cfg.log_level.to_filter());
    let _ = log::set_logger(&STDERR_LOGGER);
    for p in &problems {
        log::warn!("{p}");
    }
    // A panic inside rmcp is caught at the hook boundary and the call is
    // forwarded unchanged; say so on one line instead of std's message.
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| info.payload().downcast_ref::<String>().map(|s| s.as_str()))
            .unwrap_or("?");
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        log::error!("internal error{at}: {msg}; the call was forwarded unchanged");
    }));
    // SAFETY: the handlers are plain extern "C" functions that only touch
    // statics designed for this (see `Registry::lock_all_for_fork`).
    unsafe {
        libc::pthread_atfork(
            Some(before_fork),
            Some(after_fork_in_parent),
            Some(after_fork_in_child),
        );
        libc::atexit(at_exit);
    }
    log::debug!(
        "librmcp {} active: mode {}, targets {}",
        env!("CARGO_PKG_VERSION"),
        cfg.mode.name(),
        cfg.targets
    );
    cfg
}

/// Writes each record as one `rmcp: <level>: <message>` line with a single
/// write(2), so lines from threads never interleave. (env_logger would do,
/// but its filter machinery costs every process start more than rmcp's
/// whole budget has room for; see docs/performance.md.)
struct StderrLogger;
static STDERR_LOGGER: StderrLogger = StderrLogger;

impl log::Log for StderrLogger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::max_level()
    }
    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = format!(
            "rmcp: {}: {}\n",
            record.level().as_str().to_ascii_lowercase(),
            record.args()
        );
        let mut rest = line.as_bytes();
        while !rest.is_empty() {
            // SAFETY: rest is a valid readable slice; fd 2 may be closed, in
            // which case write fails and the line is dropped.
            let n = unsafe { libc::write(2, rest.as_ptr().cast(), rest.len()) };
            if n <= 0 {
                break;
            }
            rest = &rest[n as usize..];
        }
    }
    fn flush(&self) {}
}

extern "C" fn before_fork() {
    REGISTRY.lock_all_for_fork();
}

extern "C" fn after_fork_in_parent() {
    // SAFETY: locked by before_fork on this thread.
    unsafe { REGISTRY.unlock_all_after_fork() };
}

extern "C" fn after_fork_in_child() {
    // SAFETY: locked by before_fork in the parent thread that became us.
    unsafe { REGISTRY.unlock_all_after_fork() };
    crate::sync::forget_thread_id();
    HIP.after_fork_in_child();
    HSA.after_fork_in_child();
    crate::devices::after_fork_in_child();
}

extern "C" fn at_exit() {
    // Never let a panic escape into the C runtime's exit path.
    let _ = std::panic::catch_unwind(|| {
        if log::log_enabled!(log::Level::Info) {
            log::info!(
                "summary: calls/rewritten: {}; {}",
                STATS.summary(),
                crate::devices::summary()
            );
        }
    });
}

/// Logs `message` at warn level the first time `entry` reaches it.
pub fn warn_once(entry: Entry, message: std::fmt::Arguments) {
    static WARNED: [AtomicBool; Entry::COUNT] = [const { AtomicBool::new(false) }; Entry::COUNT];
    if !WARNED[entry.index()].swap(true, Ordering::Relaxed) {
        log::warn!("{message}");
    }
}
