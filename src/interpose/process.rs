//! Process-wide state of the loaded library: the configuration, the
//! registry and stats, and the one-time set-up (logger, panic message, fork
//! handlers, exit summary). Nothing runs at load time: a process that never
//! calls a hook never reads the environment, prints or loads anything.

use crate::core::config::{shown, shown_path, Config};
use crate::core::entry::Entry;
use crate::core::fault_report::MAX_REPORTS_PER_PROCESS;
use crate::core::registry::Registry;
use crate::core::stats::Stats;
use crate::interpose::symbols::{HIP, HSA};
use once_cell::sync::OnceCell;
use std::sync::atomic::{AtomicBool, Ordering};

pub static REGISTRY: Registry = Registry::new();
/// VMM handles and mappings (the reserved ranges are in `REGISTRY`).
pub static VMM: crate::core::vmm::Vmm = crate::core::vmm::Vmm::new();
pub static STATS: Stats = Stats::new();
/// HSA allocations that backed a HIP allocation and were recorded once, as
/// it (feature `test-counters`, for tests/hsa_fault.rs; never in releases).
#[cfg(feature = "test-counters")]
pub static BACKED_BY_HSA: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

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
    let (mut cfg, problems) = Config::from_process_env(is_secure());
    if !cfg.enabled {
        return cfg;
    }
    log::set_max_level(cfg.log_level.to_filter());
    let _ = log::set_logger(&STDERR_LOGGER);
    for p in &problems {
        log::warn!("{p}");
    }
    settle_report_path(&mut cfg);
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

/// "No such file or directory, errno 2" for `errno`, without allocating
/// (the fault handler uses it too).
pub fn write_errno(w: &mut impl std::fmt::Write, errno: i32) -> std::fmt::Result {
    let mut buf = [0u8; 128];
    // SAFETY: buf is writable for its length; the XSI strerror_r (libc binds
    // __xpg_strerror_r) writes a NUL-terminated message into it.
    let rc = unsafe { libc::strerror_r(errno, buf.as_mut_ptr().cast(), buf.len()) };
    let text = (rc == 0)
        .then(|| std::ffi::CStr::from_bytes_until_nul(&buf).ok())
        .flatten()
        .and_then(|c| c.to_str().ok());
    match text {
        Some(t) => write!(w, "{t}, errno {errno}"),
        None => write!(w, "errno {errno}"),
    }
}

fn errno() -> i32 {
    // SAFETY: __errno_location returns this thread's errno slot.
    unsafe { *libc::__errno_location() }
}

/// RMCP_FAULT_REPORT resolved once, now (`core::report_path`: relative to
/// today's working directory, a directory to a file in it), and checked: a
/// directory rmcp cannot create files in, or a path too long for its unique
/// names, is said now, naming the path and the error, not after a fault.
/// Uses libc rather than std::fs (see `fault::read_kfd_archs`).
fn settle_report_path(cfg: &mut Config) {
    use crate::core::report_path::{self, PATH_MAX, SUFFIX_MAX};
    use std::ffi::CString;
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let Some(value) = cfg.fault_report.take() else {
        return;
    };
    let Ok(c_value) = CString::new(value.as_bytes()) else {
        cfg.fault_report = Some(value);
        return;
    };
    let relative = !value.as_bytes().starts_with(b"/");
    let mut cwd_buf = [0u8; PATH_MAX];
    let mut cwd: &[u8] = b"";
    if relative {
        // SAFETY: cwd_buf is writable for its length; getcwd NUL-terminates on success.
        if unsafe { libc::getcwd(cwd_buf.as_mut_ptr().cast(), cwd_buf.len()) }.is_null() {
            log::warn!(
                "{}='{}' is relative and the working directory cannot be read ({}); it is resolved at fault time",
                crate::core::config::var::FAULT_REPORT,
                shown(&value),
                Errno(errno())
            );
            cfg.fault_report = Some(value);
            return;
        }
        let n = cwd_buf.iter().position(|&b| b == 0).unwrap_or(0);
        cwd = &cwd_buf[..n];
    }
    // SAFETY: an all-zero stat is a valid out-buffer; c_value is NUL-terminated.
    let is_dir = unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        libc::stat(c_value.as_ptr(), &mut st) == 0 && st.st_mode & libc::S_IFMT == libc::S_IFDIR
    };
    let template = report_path::resolve(value.as_bytes(), cwd, is_dir);
    let var = crate::core::config::var::FAULT_REPORT;
    let mut first = vec![0u8; PATH_MAX];
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() } as u32;
    match report_path::candidate(&template, pid, 0, 0, &mut first) {
        Some(n) if n + SUFFIX_MAX < PATH_MAX => {
            let dir = report_path::directory(&first[..n]);
            let c_dir = CString::new(dir).unwrap_or_default();
            // SAFETY: c_dir is NUL-terminated; the mode bits are constants.
            if unsafe { libc::access(c_dir.as_ptr(), libc::W_OK | libc::X_OK) } != 0 {
                log::warn!(
                    "{var}='{}': rmcp cannot create files in {} ({}); unless that changes, a GPU fault report goes to stderr only",
                    shown_path(&value),
                    shown_path(std::ffi::OsStr::from_bytes(dir)),
                    Errno(errno())
                );
            }
        }
        _ => log::warn!(
            "{var}='{}' makes report paths longer than {} bytes with rmcp's unique suffix ({}); a GPU fault report goes to stderr only",
            shown(&value),
            PATH_MAX - 1,
            Errno(libc::ENAMETOOLONG)
        ),
    }
    if is_dir || value.as_bytes().ends_with(b"/") {
        log::debug!(
            "{var} names a directory: fault reports are written as {}",
            String::from_utf8_lossy(&template)
        );
    }
    cfg.fault_report = Some(std::ffi::OsString::from_vec(template));
}

/// An errno, displayed by `write_errno`.
struct Errno(i32);
impl std::fmt::Display for Errno {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write_errno(f, self.0)
    }
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
    VMM.lock_for_fork();
}

extern "C" fn after_fork_in_parent() {
    // SAFETY: locked by before_fork on this thread.
    unsafe {
        VMM.unlock_after_fork();
        REGISTRY.unlock_all_after_fork();
    }
}

extern "C" fn after_fork_in_child() {
    // SAFETY: locked by before_fork in the parent thread that became us.
    unsafe {
        VMM.unlock_after_fork();
        REGISTRY.unlock_all_after_fork();
    }
    crate::core::sync::forget_thread_id();
    crate::interpose::threads::after_fork_in_child();
    HIP.after_fork_in_child();
    HSA.after_fork_in_child();
    crate::interpose::devices::after_fork_in_child();
}

extern "C" fn at_exit() {
    // Never let a panic escape into the C runtime's exit path.
    let _ = std::panic::catch_unwind(|| {
        // An abort after a fault never gets here: a process that does ran on
        // after its faults (ROCm 7's default), and says so once more.
        let faults = STATS.faults();
        let reported = faults.min(MAX_REPORTS_PER_PROCESS);
        if faults > 0 {
            log::warn!(
                "this process ran on after {faults} GPU memory fault(s); rmcp reported {} above",
                if reported == faults {
                    "each".to_string()
                } else {
                    format!("the first {reported}")
                }
            );
        }
        if log::log_enabled!(log::Level::Info) {
            log::info!(
                "summary: calls/rewritten: {}; {}{}",
                STATS.summary(),
                crate::interpose::devices::summary(),
                if faults > 0 {
                    format!("; GPU memory faults: {faults}")
                } else {
                    String::new()
                }
            );
            #[cfg(feature = "test-counters")]
            {
                use crate::interpose::launch_state::{FAST_LAUNCHES, SLOW_LAUNCHES};
                let fast = FAST_LAUNCHES.load(Ordering::Relaxed);
                let slow = SLOW_LAUNCHES.load(Ordering::Relaxed);
                if fast + slow > 0 {
                    log::info!("launch paths (test-counters build): {fast} fast, {slow} slow");
                }
                let backed = BACKED_BY_HSA.load(Ordering::Relaxed);
                if backed > 0 {
                    log::info!("HIP allocations backed by a held HSA allocation (test-counters build): {backed}");
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
