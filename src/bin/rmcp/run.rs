//! `rmcp run`: run a command with librmcp.so preloaded, report how it ended,
//! and optionally re-run it on the CPU after a GPU memory fault.

use crate::json;
use clap::builder::PossibleValuesParser;
use rmcp::config::{self, var};
use std::ffi::OsString;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicI32, Ordering};

const AFTER_HELP: &str = "\
librmcp.so is looked for in $RMCP_LIBRARY, beside the rmcp binary, in ../lib
relative to it (and where the Python wheel and the Debian package put it),
then in the install library directories; `rmcp --print-library` prints the
result. It is put first in LD_PRELOAD; what LD_PRELOAD held before is kept
after it.
librmcp-audit.so (looked for beside librmcp.so, then in the same places as
librmcp.so) is put first in LD_AUDIT: it lets the hooks see programs that
dlopen the runtime and call dlsym on its handle (Python ctypes, hipew-style
loaders).
A RMCP_LIBRARY that is not a shared library for this machine (not ELF,
another architecture) is refused with exit status 2.
With --on-gpu-fault cpu, an RMCP_FAULT_REPORT you set still receives each
report (rmcp says where); an `rmcp run` inside CMD leaves the fallback to
this one, so CMD runs at most twice.
As PID 1 (a container's ENTRYPOINT) rmcp reaps the orphaned processes of
CMD's tree, as an init does.
The exit status is CMD's; when CMD is killed by signal N it is 128+N.";

/// `rmcp run [OPTIONS] [--] CMD [ARGS...]`: options stop at `--` or at the
/// command; everything after belongs to the command.
#[derive(Debug, clap::Args)]
#[command(args_override_self = true, after_help = AFTER_HELP)]
pub struct Args {
    /// RMCP_MODE for the library (default: RMCP_MODE from the environment,
    /// else auto)
    #[arg(long, value_parser = PossibleValuesParser::new(config::MODE_NAMES))]
    pub mode: Option<String>,
    /// RMCP_LOG for the library
    #[arg(long, value_name = "LEVEL", value_parser = PossibleValuesParser::new(config::LOG_LEVEL_NAMES))]
    pub log: Option<String>,
    /// If CMD dies after a GPU memory fault that librmcp.so reported, print
    /// the reports (one per faulting process of CMD's tree) and run CMD once more with HIP_VISIBLE_DEVICES=-1
    /// CUDA_VISIBLE_DEVICES=-1 (no GPU; only for programs that can fall back
    /// to the CPU)
    #[arg(long = "on-gpu-fault", value_name = "cpu", value_parser = ["cpu"])]
    pub on_gpu_fault: Option<String>,
    /// Do not set LD_AUDIT=librmcp-audit.so (LD_PRELOAD only; programs that
    /// dlsym the runtime's handle, such as Python ctypes, then bypass rmcp)
    #[arg(long = "no-audit")]
    pub no_audit: bool,
    /// The command and its arguments
    #[arg(value_name = "CMD", required = true, trailing_var_arg = true)]
    pub command: Vec<OsString>,
}

/// The LD_AUDIT value for the command: librmcp-audit.so (beside `lib`, else
/// where librmcp.so would be looked for) first, then the old entries minus
/// any other librmcp-audit.so. Err names where it looked: the caller then
/// leaves LD_AUDIT alone, because a missing LD_AUDIT entry makes ld.so print
/// an error line in every process.
pub fn audit_value(lib: &Path, old: Option<&str>) -> Result<String, String> {
    const FILE: &str = "librmcp-audit.so";
    let mut places: Vec<PathBuf> = lib.parent().map(|d| d.join(FILE)).into_iter().collect();
    places.extend(crate::locate::candidates_named(FILE));
    let Some(found) = places.iter().find(|p| p.is_file()) else {
        return Err(format!(
            "{FILE} not found (looked in: {})",
            places
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    };
    crate::library_file::check(found).map_err(|why| format!("{} {why}", found.display()))?;
    let audit = std::fs::canonicalize(found).unwrap_or_else(|_| found.clone());
    let audit = audit.to_string_lossy();
    let rest: Vec<&str> = old
        .unwrap_or("")
        .split(':')
        .filter(|e| !e.is_empty() && !e.ends_with(FILE))
        .collect();
    Ok(std::iter::once(&*audit)
        .chain(rest)
        .collect::<Vec<_>>()
        .join(":"))
}

/// `lib` first, then the old entries minus any librmcp.so (two copies of the
/// shim in one process would both install hooks). Returns the new value and
/// the other librmcp.so paths that were dropped.
pub fn prepend_preload(lib: &str, old: Option<&str>) -> (String, Vec<String>) {
    let mut dropped = Vec::new();
    let rest: Vec<&str> = crate::preload::preload_entries(old.unwrap_or(""))
        .filter(|e| {
            let is_rmcp = *e == lib || crate::preload::is_rmcp_lib(e);
            if is_rmcp && *e != lib {
                dropped.push(e.to_string());
            }
            !is_rmcp
        })
        .collect();
    let value = if rest.is_empty() {
        lib.to_string()
    } else {
        format!("{lib}:{}", rest.join(":"))
    };
    (value, dropped)
}

pub fn signal_name(n: i32) -> &'static str {
    const NAMES: [&str; 32] = [
        "",
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    usize::try_from(n)
        .ok()
        .and_then(|i| NAMES.get(i))
        .copied()
        .filter(|s| !s.is_empty())
        .unwrap_or("a real-time signal")
}

/// Describes how the command ended and gives the shell-style exit code.
fn outcome(cmd: &str, st: ExitStatus) -> (i32, Option<String>) {
    if let Some(c) = st.code() {
        return (c, None);
    }
    if let Some(s) = st.signal() {
        let core = if st.core_dumped() {
            " (core dumped)"
        } else {
            ""
        };
        return (
            128 + s,
            Some(format!(
                "rmcp: {cmd} was killed by signal {s} ({}){core}",
                signal_name(s)
            )),
        );
    }
    (1, Some(format!("rmcp: {cmd} ended with {st}")))
}

/// Set in the environment of a command run with `--on-gpu-fault cpu` (to
/// rmcp's pid): an `rmcp run` inside it leaves the fallback to the outer one.
const NESTED: &str = "RMCP_RUN_ON_GPU_FAULT_PID";

/// Pid of the running command, for the forwarding handler (0: none).
static CHILD: AtomicI32 = AtomicI32::new(0);

/// Signals rmcp passes on to the command. SIGTERM matters most: as a
/// container's PID 1, rmcp gets `docker stop`'s SIGTERM, and PID 1 ignores
/// signals it has no handler for.
const FORWARDED: [libc::c_int; 4] = [libc::SIGTERM, libc::SIGHUP, libc::SIGUSR1, libc::SIGUSR2];

extern "C" fn forward(sig: libc::c_int) {
    let pid = CHILD.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

/// Runs the command. Meanwhile rmcp ignores SIGINT/SIGQUIT (as shells and
/// system() do: the terminal delivers them to the command too) and forwards
/// SIGTERM, SIGHUP, SIGUSR1 and SIGUSR2 to it.
fn run_once(cmd: &mut Command, name: &str) -> Result<ExitStatus, (i32, String)> {
    let mut child = cmd.spawn().map_err(|e| {
        let code = if e.kind() == std::io::ErrorKind::NotFound {
            127
        } else {
            126
        };
        (code, format!("rmcp: cannot run {name}: {e}"))
    })?;
    CHILD.store(i32::try_from(child.id()).unwrap_or(0), Ordering::SeqCst);
    // SAFETY: plain signal disposition changes, all restored below; the
    // handler only calls kill().
    let saved = unsafe {
        let ignored = (
            libc::signal(libc::SIGINT, libc::SIG_IGN),
            libc::signal(libc::SIGQUIT, libc::SIG_IGN),
        );
        let mut old: Vec<libc::sigaction> = Vec::new();
        for sig in FORWARDED {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = forward as extern "C" fn(libc::c_int) as libc::sighandler_t;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            let mut prev: libc::sigaction = std::mem::zeroed();
            libc::sigaction(sig, &sa, &mut prev);
            old.push(prev);
        }
        (ignored, old)
    };
    let st = if std::process::id() == 1 {
        wait_as_init(child.id())
    } else {
        child.wait()
    };
    CHILD.store(0, Ordering::SeqCst);
    // SAFETY: restores the dispositions saved above, unchanged.
    unsafe {
        let ((int, quit), old) = saved;
        libc::signal(libc::SIGINT, int);
        libc::signal(libc::SIGQUIT, quit);
        for (sig, prev) in FORWARDED.iter().zip(old.iter()) {
            libc::sigaction(*sig, prev, std::ptr::null_mut());
        }
    }
    st.map_err(|e| (1, format!("rmcp: waiting for {name}: {e}")))
}

/// Waits for `pid` as a container's PID 1 must: every orphan of the
/// command's tree is re-parented to PID 1, and nobody else reaps it, so each
/// one that ends is reaped here (as tini does) until `pid` ends; zombies
/// already waiting then are reaped too.
fn wait_as_init(pid: u32) -> std::io::Result<ExitStatus> {
    let reap = |flags: libc::c_int| -> std::io::Result<(libc::pid_t, libc::c_int)> {
        let mut status = 0;
        loop {
            // SAFETY: status is a valid out-pointer; -1 waits for any child.
            let r = unsafe { libc::waitpid(-1, &mut status, flags) };
            if r < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return if r < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok((r, status))
            };
        }
    };
    let status = loop {
        let (r, status) = reap(0)?;
        if u32::try_from(r).is_ok_and(|r| r == pid) {
            break status;
        }
    };
    while matches!(reap(libc::WNOHANG), Ok((r, _)) if r > 0) {}
    Ok(ExitStatus::from_raw(status))
}

/// A fresh private directory for the fault report (mode 0700).
fn private_dir() -> Result<PathBuf, String> {
    let base = std::env::temp_dir();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    for n in 0..100 {
        let d = base.join(format!("rmcp-{}-{nanos}-{n}", std::process::id()));
        match std::fs::DirBuilder::new().mode(0o700).create(&d) {
            Ok(()) => return Ok(d),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(format!(
                    "cannot create a directory in {}: {e}",
                    base.display()
                ))
            }
        }
    }
    Err(format!(
        "cannot create a fresh directory in {}",
        base.display()
    ))
}

/// The non-empty reports the command's processes wrote into `dir`, oldest
/// first, each with the pid in its file name (`fault-report-<pid>.json`, if
/// there is one); the files and the directory are removed.
fn take_reports(dir: &Path) -> Vec<(Option<u32>, Vec<u8>)> {
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    let t = e
                        .metadata()
                        .and_then(|m| m.modified())
                        .unwrap_or(std::time::UNIX_EPOCH);
                    (t, e.path())
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let reports = files
        .iter()
        .filter_map(|(_, p)| {
            let pid = p
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix("fault-report-")?.strip_suffix(".json"))
                .and_then(|n| n.parse().ok());
            Some((pid, std::fs::read(p).ok().filter(|r| !r.is_empty())?))
        })
        .collect();
    for (_, p) in &files {
        let _ = std::fs::remove_file(p);
    }
    let _ = std::fs::remove_dir(dir);
    reports
}

/// Copies a report of process `pid` to where the user's RMCP_FAULT_REPORT
/// (`value`) asks, as librmcp.so would have written it (rmcp::report_path:
/// `%p` expanded, a directory to a file in it, never over an existing file).
/// Returns the path written, or a line saying why not.
fn keep_report(value: &std::ffi::OsStr, pid: u32, raw: &[u8]) -> Result<PathBuf, String> {
    use rmcp::report_path;
    use std::io::Write;
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    use std::os::unix::fs::OpenOptionsExt;
    let cwd = std::env::current_dir().unwrap_or_default();
    let template = report_path::resolve(
        value.as_bytes(),
        cwd.as_os_str().as_bytes(),
        Path::new(value).is_dir(),
    );
    let unix_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    let mut buf = vec![0u8; template.len() * 10 + report_path::SUFFIX_MAX + 1];
    let mut last = PathBuf::from(OsString::from_vec(template.clone()));
    for attempt in 0..report_path::ATTEMPTS {
        let Some(n) = report_path::candidate(&template, pid, unix_ns, attempt, &mut buf) else {
            break;
        };
        let p = PathBuf::from(OsString::from_vec(buf[..n].to_vec()));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&p)
        {
            Ok(mut f) => {
                return f
                    .write_all(raw)
                    .map(|()| p.clone())
                    .map_err(|e| format!("could not write {}: {e}", p.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = p,
            Err(e) => return Err(format!("could not create {}: {e}", p.display())),
        }
    }
    Err(format!(
        "could not create {}: it and the other names tried beside it exist",
        last.display()
    ))
}

/// The pid a report names (`"process":{"pid":N}`), if it can be read.
fn report_pid(raw: &[u8]) -> Option<u32> {
    let v = json::parse(std::str::from_utf8(raw).ok()?)?;
    u32::try_from(v.get("process")?.get("pid")?.as_u64()?).ok()
}

/// The human text of a fault report, or why it could not be read.
pub fn report_text(raw: &[u8]) -> Result<String, String> {
    let text = std::str::from_utf8(raw).map_err(|_| "not UTF-8".to_string())?;
    let v = json::parse(text).ok_or_else(|| "not valid JSON".to_string())?;
    if let Some(t) = v
        .get("text")
        .and_then(|t| t.as_str())
        .filter(|t| !t.trim().is_empty())
    {
        return Ok(t.to_string());
    }
    // No text: build one line from the fields we know.
    let addr = v.get("address").and_then(|a| a.as_str());
    let reasons: Vec<&str> = v
        .get("reasons")
        .and_then(|r| r.as_array())
        .map(|r| r.iter().filter_map(|x| x.as_str()).collect())
        .unwrap_or_default();
    match addr {
        Some(a) => Ok(format!(
            "GPU memory fault at {a}{}",
            if reasons.is_empty() {
                String::new()
            } else {
                format!(" ({})", reasons.join(", "))
            }
        )),
        None => Err("no \"text\" or \"address\" in it".to_string()),
    }
}

pub fn main(o: Args) -> i32 {
    let lib = match crate::locate::find_library() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("rmcp: run: {e}");
            return 2;
        }
    };
    let lib_s = lib.to_string_lossy().into_owned();
    let name = o.command[0].to_string_lossy().into_owned();
    let old = std::env::var("LD_PRELOAD").ok();
    let (preload, dropped) = prepend_preload(&lib_s, old.as_deref());
    for d in dropped {
        eprintln!(
            "rmcp: LD_PRELOAD already named {d}; using {lib_s} instead (one copy per process)"
        );
    }
    let audit = if o.no_audit {
        None
    } else {
        match audit_value(&lib, std::env::var("LD_AUDIT").ok().as_deref()) {
            Ok(v) => Some(v),
            Err(e) => {
                eprintln!("rmcp: run: {e}; running with LD_PRELOAD only (programs that dlsym the runtime's handle, such as Python ctypes, bypass rmcp)");
                None
            }
        }
    };
    let keep_template = crate::kept_reports::template();
    let build = || {
        let mut c = Command::new(&o.command[0]);
        c.args(&o.command[1..]);
        c.env("LD_PRELOAD", &preload);
        if let Some(a) = &audit {
            c.env("LD_AUDIT", a);
        }
        match &o.mode {
            Some(m) => {
                c.env(var::MODE, m);
            }
            None if std::env::var_os(var::MODE).is_none() => {
                c.env(var::MODE, config::Mode::Auto.name());
            }
            None => {}
        }
        if let Some(l) = &o.log {
            c.env(var::LOG, l);
        }
        c
    };
    // Fault reports are kept for `rmcp doctor --bug-report`, unless the user
    // (or an outer `rmcp run`) chose where they go.
    let keeping = |mut c: Command| {
        if std::env::var_os(var::FAULT_REPORT).is_none() {
            if let Some(t) = &keep_template {
                c.env(var::FAULT_REPORT, t);
            }
        }
        c
    };

    let plain = |mut c: Command| match run_once(&mut c, &name) {
        Ok(st) => {
            let (code, msg) = outcome(&name, st);
            if let Some(m) = msg {
                eprintln!("{m}");
            }
            code
        }
        Err((code, msg)) => {
            eprintln!("{msg}");
            code
        }
    };
    // Under another `rmcp run --on-gpu-fault cpu` (NESTED is set), that one
    // collects the reports and re-runs the whole command once; this one only
    // runs it, or the command would run up to four times.
    if o.on_gpu_fault.is_none() || std::env::var_os(NESTED).is_some() {
        return plain(keeping(build()));
    }

    let dir = match private_dir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("rmcp: run: {e}; running {name} without --on-gpu-fault cpu (no fault report can be collected, so there will be no CPU re-run)");
            return plain(keeping(build()));
        }
    };
    let user_report = std::env::var_os(var::FAULT_REPORT).filter(|v| !v.is_empty());
    let nested = |c: &mut Command| {
        c.env(NESTED, std::process::id().to_string());
    };
    // %p: one file per process of the command's tree (librmcp.so expands it).
    let mut first = build();
    first.env(var::FAULT_REPORT, dir.join("fault-report-%p.json"));
    nested(&mut first);
    let result = run_once(&mut first, &name);
    let raws = take_reports(&dir);
    for (pid, raw) in &raws {
        crate::kept_reports::store(*pid, raw);
    }
    // The user's RMCP_FAULT_REPORT gets each report, as without the fallback.
    let kept: Vec<String> = match &user_report {
        Some(t) => raws
            .iter()
            .map(|(pid, raw)| {
                let pid = pid.or_else(|| report_pid(raw)).unwrap_or(0);
                match keep_report(t, pid, raw) {
                    Ok(p) => format!(
                        "rmcp: the JSON report of process {pid} is in {}",
                        p.display()
                    ),
                    Err(e) => {
                        format!("rmcp: run: {e}; the JSON report of process {pid} was not kept")
                    }
                }
            })
            .collect(),
        None => Vec::new(),
    };
    let st = match result {
        Ok(st) => st,
        Err((code, msg)) => {
            eprintln!("{msg}");
            return code;
        }
    };
    let (code, msg) = outcome(&name, st);
    if let Some(m) = &msg {
        eprintln!("{m}");
    }
    if st.success() {
        kept.iter().for_each(|l| eprintln!("{l}"));
        if !raws.is_empty() {
            // ROCm 7 by default lets a process go on after a fault (HIP calls
            // then fail): this one handled that and ended well.
            eprintln!(
                "rmcp: {name} exited 0 after {} GPU memory fault report(s) from librmcp.so (it handled the error itself); not re-running it on the CPU",
                raws.len()
            );
        }
        return code;
    }
    if raws.is_empty() {
        eprintln!("rmcp: {name} failed without a GPU fault report from librmcp.so; not re-running it on the CPU");
        return code;
    }
    for (_, raw) in &raws {
        match report_text(raw) {
            Ok(t) => {
                // The report's line naming its JSON file names the private
                // file read (and removed) here, not one the user can open.
                for line in t
                    .trim_end()
                    .lines()
                    .filter(|l| !l.starts_with("the report as JSON: "))
                {
                    eprintln!("rmcp: report: {line}");
                }
            }
            Err(why) => eprintln!(
                "rmcp: librmcp.so wrote a GPU fault report ({} bytes) but it is unreadable: {why}",
                raw.len()
            ),
        }
    }
    kept.iter().for_each(|l| eprintln!("{l}"));
    let how = match msg {
        Some(_) => {
            let n = st.signal().unwrap_or(0);
            format!("killed by signal {n}, {}", signal_name(n))
        }
        None => format!("exit status {code}"),
    };
    eprintln!("rmcp: ************************************************************************");
    eprintln!("rmcp: GPU memory fault in {name} ({how}); re-running on CPU with HIP_VISIBLE_DEVICES=-1 CUDA_VISIBLE_DEVICES=-1");
    eprintln!("rmcp: (no GPU is visible in this run; ROCR_VISIBLE_DEVICES is left as it was; this works only if the program can run without a GPU)");
    eprintln!("rmcp: ************************************************************************");
    let mut second = build();
    second
        .env("HIP_VISIBLE_DEVICES", "-1")
        .env("CUDA_VISIBLE_DEVICES", "-1");
    nested(&mut second);
    plain(second)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preload_is_prepended_once() {
        let p = |old: Option<&str>| prepend_preload("/l/librmcp.so", old);
        assert_eq!(p(None), ("/l/librmcp.so".to_string(), vec![]));
        assert_eq!(p(Some("")).0, "/l/librmcp.so");
        assert_eq!(p(Some("/a.so /b.so")).0, "/l/librmcp.so:/a.so:/b.so");
        assert_eq!(
            p(Some("/a.so:/l/librmcp.so")),
            ("/l/librmcp.so:/a.so".to_string(), vec![])
        );
        assert_eq!(
            p(Some("/usr/lib/librmcp.so:/a.so")),
            (
                "/l/librmcp.so:/a.so".to_string(),
                vec!["/usr/lib/librmcp.so".to_string()]
            )
        );
    }

    #[test]
    fn audit_library_is_found_beside_librmcp_and_prepended_once() {
        let d = std::env::temp_dir().join(format!("rmcp-audit-unit-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let lib = d.join("librmcp.so");
        let audit = d.join("librmcp-audit.so");
        // Any shared object for this machine will do: this test (a PIE).
        std::fs::copy(std::env::current_exe().unwrap(), &audit).unwrap();
        let a = std::fs::canonicalize(&audit).unwrap().display().to_string();
        assert_eq!(audit_value(&lib, None).unwrap(), a);
        assert_eq!(
            audit_value(&lib, Some("/x/libother-audit.so:/old/librmcp-audit.so")).unwrap(),
            format!("{a}:/x/libother-audit.so")
        );
        std::fs::write(&audit, b"x").unwrap();
        assert_eq!(
            audit_value(&lib, None).unwrap_err(),
            format!("{} is not an ELF file", audit.display())
        );
        std::fs::remove_file(&audit).unwrap();
        // Not beside librmcp.so: the other candidates (the test binary's dir,
        // install dirs) may or may not hold one; if none does, Err names them.
        if let Err(e) = audit_value(&lib, None) {
            assert!(e.contains(&d.display().to_string()), "{e}");
        }
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn reads_reports_tolerantly() {
        let ok = br#"{"rmcp_fault_report":1,"address":"0x7f00","reasons":["page not present"],"text":"line one\nline two\n"}"#;
        assert_eq!(report_text(ok).unwrap(), "line one\nline two\n");
        let no_text =
            br#"{"rmcp_fault_report":1,"address":"0x7f00","reasons":["page not present"]}"#;
        assert_eq!(
            report_text(no_text).unwrap(),
            "GPU memory fault at 0x7f00 (page not present)"
        );
        assert!(report_text(b"{\"text\": \"cut off").is_err());
        assert!(report_text(b"\xff\xfe").is_err());
        assert!(report_text(b"[]").is_err());
        assert_eq!(signal_name(6), "SIGABRT");
        assert_eq!(signal_name(40), "a real-time signal");
    }
}
