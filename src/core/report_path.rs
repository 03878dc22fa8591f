//! Where the JSON fault report goes. RMCP_FAULT_REPORT is resolved once,
//! when rmcp sets up: a relative path against the working directory of that
//! moment (a later `chdir` of the program does not move it), and a directory
//! (or a path ending in '/') to a file inside it. At fault time each process
//! tries the names `candidate` gives, in order, and never opens an existing
//! file: a report is never lost because an older one has the name.

use crate::core::report::{expand_report_path, FixedBuf};
use std::fmt::Write;

/// The file name used inside a directory named by RMCP_FAULT_REPORT.
pub const IN_DIRECTORY: &str = "rmcp-fault-%p.json";
/// Names tried before giving up (only reached if every one exists).
pub const ATTEMPTS: u32 = 16;
/// Bytes the longest suffix adds: ".<pid>-<unix ns>-<attempt>".
pub const SUFFIX_MAX: usize = 1 + 10 + 1 + 20 + 1 + 10;
/// The longest path open(2) takes, with its NUL (PATH_MAX).
pub const PATH_MAX: usize = 4096;

/// RMCP_FAULT_REPORT's `value` made absolute against `cwd`; when it names a
/// directory (`is_dir`, or a trailing '/'), `IN_DIRECTORY` inside it.
pub fn resolve(value: &[u8], cwd: &[u8], is_dir: bool) -> Vec<u8> {
    let mut t = Vec::with_capacity(cwd.len() + value.len() + IN_DIRECTORY.len() + 2);
    if !value.starts_with(b"/") {
        t.extend_from_slice(cwd);
        if !t.ends_with(b"/") {
            t.push(b'/');
        }
    }
    t.extend_from_slice(value);
    if is_dir || value.ends_with(b"/") {
        if !t.ends_with(b"/") {
            t.push(b'/');
        }
        t.extend_from_slice(IN_DIRECTORY.as_bytes());
    }
    t
}

/// The directory a path's file is in: everything before its last '/' ("/"
/// for a file at the root, "." for a bare name).
pub fn directory(path: &[u8]) -> &[u8] {
    match path.iter().rposition(|&b| b == b'/') {
        Some(0) => b"/",
        Some(i) => &path[..i],
        None => b".",
    }
}

/// Name number `attempt` for process `pid` at `unix_ns` (CLOCK_REALTIME),
/// NUL-terminated, into `out`: 0 is the template with `%p` expanded; then
/// `<that>.<pid>-<unix_ns>`, then `<that>.<pid>-<unix_ns>-<attempt>`. The
/// time keeps names apart across restarts of a container, where the
/// process is pid 1 every time; the count within one clock reading.
/// Returns the length without the NUL; None if `out` is too small. No
/// allocation: the fault handler calls it.
pub fn candidate(
    template: &[u8],
    pid: u32,
    unix_ns: u64,
    attempt: u32,
    out: &mut [u8],
) -> Option<usize> {
    let mut suffix = FixedBuf::<48>::new();
    if attempt > 0 {
        let _ = write!(suffix, ".{pid}-{unix_ns}");
        if attempt > 1 {
            let _ = write!(suffix, "-{attempt}");
        }
    }
    expand_report_path(template, pid, suffix.as_bytes(), out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(t: &str, pid: u32, ns: u64, attempt: u32) -> String {
        let mut out = [0u8; 128];
        let n = candidate(t.as_bytes(), pid, ns, attempt, &mut out).unwrap();
        assert_eq!(out[n], 0);
        String::from_utf8(out[..n].to_vec()).unwrap()
    }

    #[test]
    fn relative_paths_and_directories_are_resolved() {
        let r = |v: &str, cwd: &str, dir: bool| {
            String::from_utf8(resolve(v.as_bytes(), cwd.as_bytes(), dir)).unwrap()
        };
        assert_eq!(r("/r/f-%p.json", "/work", false), "/r/f-%p.json");
        assert_eq!(r("f.json", "/work", false), "/work/f.json");
        assert_eq!(r("out/f.json", "/", false), "/out/f.json");
        assert_eq!(
            r("reports", "/work", true),
            "/work/reports/rmcp-fault-%p.json"
        );
        assert_eq!(r("/r/", "/work", false), "/r/rmcp-fault-%p.json");
        assert_eq!(r("/r", "/work", true), "/r/rmcp-fault-%p.json");
    }

    #[test]
    fn directory_of_a_path() {
        assert_eq!(directory(b"/r/f.json"), b"/r");
        assert_eq!(directory(b"/f.json"), b"/");
        assert_eq!(directory(b"f.json"), b".");
        assert_eq!(directory(b"/a/b/"), b"/a/b");
    }

    /// Issue 18 item 5: every name after the first carries the pid and the
    /// time, so a pid-1 process of a restarted container never meets the
    /// names of the runs before it, and the attempts never repeat a name.
    #[test]
    fn names_after_the_first_are_unique() {
        assert_eq!(name("/r/fault-%p.json", 1, 7, 0), "/r/fault-1.json");
        assert_eq!(
            name("/r/fault-%p.json", 1, 1_765_000_000_123_456_789, 1),
            "/r/fault-1.json.1-1765000000123456789"
        );
        assert_eq!(name("/r/fault.json", 1, 5, 2), "/r/fault.json.1-5-2");
        let mut seen = std::collections::HashSet::new();
        for run_ns in [100, 200, 300] {
            for attempt in 0..ATTEMPTS {
                let n = name("/r/fault-%p.json", 1, run_ns, attempt);
                assert!(seen.insert(n) || attempt == 0);
            }
        }
        // The longest suffix fits in SUFFIX_MAX.
        let long = name("/r", u32::MAX, u64::MAX, u32::MAX);
        assert_eq!(long.len() - "/r".len(), SUFFIX_MAX);
    }
}
