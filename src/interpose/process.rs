//! Process-wide state of the loaded library: the configuration, the
//! registry and stats, and the one-time set-up (logger, panic message, fork
//! handlers, exit summary). Nothing runs at load time: a process that never
//! calls a hook never reads the environment, prints or loads anything.

use crate::core::config::Config;
use crate::core::entry::Entry;
use crate::core::registry::Registry;
use crate::core::stats::Stats;
use crate::interpose::symbols::{HIP, HSA};
use once_cell::sync::OnceCell;
use std::sync::atomic::{AtomicBool, Ordering};

pub static REGISTRY: Registry = Registry::new();
pub static STATS: Stats = Stats::new();

static CONFIG: OnceCell<Config> = OnceCell::new();

/// The configuration, set up on first use.
#[inline]
pub fn config() -> &'static Config {
    CONFIG.get_or_init(setup)
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
        write_all(2, line.as_bytes());
    }
    fn flush(&self) {}
}

/// Writes all of `bytes` to `fd` with write(2), again after a signal
/// interrupts it; gives up on any other error (fd 2 may be closed: the
/// bytes are then dropped). The one write loop of the library: the logger
/// and the fault report (which must not allocate or lock) use it.
pub fn write_all(fd: i32, bytes: &[u8]) {
    let mut rest = bytes;
    while !rest.is_empty() {
        // SAFETY: rest is a valid readable slice.
        let n = unsafe { libc::write(fd, rest.as_ptr().cast(), rest.len()) };
        if n < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        if n <= 0 {
            return;
        }
        rest = &rest[n as usize..];
    }
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
    crate::core::sync::forget_thread_id();
    crate::interpose::threads::after_fork_in_child();
    HIP.after_fork_in_child();
    HSA.after_fork_in_child();
    crate::interpose::devices::after_fork_in_child();
}

extern "C" fn at_exit() {
    // Never let a panic escape into the C runtime's exit path.
    let _ = std::panic::catch_unwind(|| {
        if log::log_enabled!(log::Level::Info) {
            log::info!(
                "summary: calls/rewritten: {}; {}",
                STATS.summary(),
                crate::interpose::devices::summary()
            );
            #[cfg(feature = "test-counters")]
            {
                use crate::interpose::launch_state::{FAST_LAUNCHES, SLOW_LAUNCHES};
                let fast = FAST_LAUNCHES.load(Ordering::Relaxed);
                let slow = SLOW_LAUNCHES.load(Ordering::Relaxed);
                if fast + slow > 0 {
                    log::info!("launch paths (test-counters build): {fast} fast, {slow} slow");
                }
            }
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
