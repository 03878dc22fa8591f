//! The kernel and ROCm versions and the kernel's taint flags, read from
//! `<root>/proc/sys/kernel/{osrelease,tainted}` and
//! `<root>/opt/rocm*/.info/version` (the kernel log's "Linux version" and
//! "Tainted:" lines when those files are absent).

use super::input::{self, Keep, Text};
use super::{Finding, Severity};
use crate::json::{Json, JsonObj};
use std::path::Path;

/// Taint bits (Linux Documentation/admin-guide/tainted-kernels.rst):
/// (bit, letter, meaning).
pub const TAINT_FLAGS: &[(u32, char, &str)] = &[
    (0, 'P', "proprietary module loaded"),
    (1, 'F', "module force-loaded"),
    (2, 'S', "kernel running on an out-of-specification system"),
    (3, 'R', "module force-unloaded"),
    (4, 'M', "machine check exception"),
    (5, 'B', "bad page referenced"),
    (6, 'U', "taint requested by user space"),
    (7, 'D', "kernel died recently (oops or BUG)"),
    (8, 'A', "ACPI table overridden"),
    (9, 'W', "kernel issued a warning"),
    (10, 'C', "staging driver loaded"),
    (11, 'I', "platform firmware bug worked around"),
    (12, 'O', "out-of-tree module loaded (e.g. amdgpu-dkms)"),
    (13, 'E', "unsigned module loaded"),
    (14, 'L', "soft lockup occurred"),
    (15, 'K', "kernel live-patched"),
    (16, 'X', "auxiliary taint"),
    (17, 'T', "built with struct randomisation"),
    (18, 'N', "in-kernel test run"),
];

pub struct System {
    pub kernel: Option<String>,
    pub kernel_from: &'static str,
    pub rocm: Option<String>,
    pub rocm_from: Option<String>,
    /// Taint letters, e.g. "OE"; None when unknown, "" when untainted.
    pub taint: Option<String>,
    pub taint_from: &'static str,
}

fn first_line(root: &Path, rel: &str, findings: &mut Vec<Finding>) -> Option<String> {
    let shown = format!("/{rel}");
    match input::read_text(&root.join(rel), &shown, 4096, Keep::Head, findings) {
        Text::Ok { text } => text
            .lines()
            .next()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty()),
        _ => None,
    }
}

/// Taint letters of a `/proc/sys/kernel/tainted` value.
pub fn taint_letters(value: u64) -> String {
    TAINT_FLAGS
        .iter()
        .filter(|(bit, _, _)| value & (1u64 << bit) != 0)
        .map(|(_, c, _)| *c)
        .collect()
}

/// The letters of the last "Tainted: G        W  OE      6.2.16-..." in
/// the log ("Not tainted" gives "").
pub fn taint_from_log(log: &str) -> Option<String> {
    let mut last = None;
    for line in log.lines() {
        if line.contains("Not tainted") {
            last = Some(String::new());
        } else if let Some(i) = line.find("Tainted: ") {
            // Flags are single letters separated by blanks, up to the version.
            let letters: String = line[i + 9..]
                .split_whitespace()
                .take_while(|w| w.len() == 1 || w.chars().all(|c| c.is_ascii_uppercase()))
                .flat_map(str::chars)
                .filter(|c| c.is_ascii_uppercase() && *c != 'G')
                .collect();
            last = Some(letters);
        }
    }
    last
}

/// "Linux version 6.18.4-arch1-1 (...)" from the log.
fn kernel_from_log(log: &str) -> Option<String> {
    log.lines().find_map(|l| {
        let i = l.find("Linux version ")?;
        l[i + 14..].split_whitespace().next().map(str::to_string)
    })
}

pub fn read(root: &Path, log: Option<&str>, findings: &mut Vec<Finding>) -> System {
    let (kernel, kernel_from) = match first_line(root, "proc/sys/kernel/osrelease", findings) {
        Some(k) => (Some(k), "/proc/sys/kernel/osrelease"),
        None => match log.and_then(kernel_from_log) {
            Some(k) => (Some(k), "kernel log"),
            None => (None, "unknown"),
        },
    };
    let mut rocm = None;
    let mut rocm_from = None;
    let mut dirs = vec!["opt/rocm".to_string()];
    let mut versioned: Vec<String> = input::list_dir(&root.join("opt"), "/opt", findings)
        .into_iter()
        .filter_map(|p| p.file_name()?.to_str().map(str::to_string))
        .filter(|n| n.starts_with("rocm-"))
        .map(|n| format!("opt/{n}"))
        .collect();
    versioned.sort_by_key(|d| std::cmp::Reverse(super::regressions::version(&d[9..])));
    dirs.extend(versioned);
    for d in dirs {
        let rel = format!("{d}/.info/version");
        if let Some(v) = first_line(root, &rel, findings) {
            rocm = Some(v);
            rocm_from = Some(format!("/{rel}"));
            break;
        }
    }
    let (taint, taint_from) = match first_line(root, "proc/sys/kernel/tainted", findings)
        .and_then(|t| t.parse::<u64>().ok())
    {
        Some(v) => (Some(taint_letters(v)), "/proc/sys/kernel/tainted"),
        None => match log.and_then(taint_from_log) {
            Some(t) => (Some(t), "kernel log"),
            None => (None, "unknown"),
        },
    };
    System {
        kernel,
        kernel_from,
        rocm,
        rocm_from,
        taint,
        taint_from,
    }
}

/// `kernel-tainted`: warning for flags that matter to a GPU bug report
/// (D, W, O, P, E), info for the others.
pub fn check(s: &System, findings: &mut Vec<Finding>) -> Json {
    if let Some(t) = s.taint.as_deref().filter(|t| !t.is_empty()) {
        let named: Vec<String> = t
            .chars()
            .map(|c| {
                let what = TAINT_FLAGS
                    .iter()
                    .find(|(_, l, _)| *l == c)
                    .map_or("unknown flag", |(_, _, w)| w);
                format!("{c} ({what})")
            })
            .collect();
        let serious = t.chars().any(|c| "DWOPE".contains(c));
        findings.push(Finding::new(
            "kernel-tainted",
            if serious { Severity::Warning } else { Severity::Info },
            format!(
                "the kernel is tainted ({}): {}. Maintainers ask about out-of-tree drivers (amdgpu-dkms) and earlier oopses and warnings, whose state can explain GPU faults.",
                s.taint_from,
                named.join(", ")
            ),
            serious.then(|| "include this in bug reports; reproduce on an untainted boot (without out-of-tree modules, after a reboot) when you can".to_string()),
        ));
    }
    Json::obj()
        .with("kernel", s.kernel.clone())
        .with("kernel_from", s.kernel_from)
        .with("rocm", s.rocm.clone())
        .with("rocm_from", s.rocm_from.clone())
        .with("taint", s.taint.clone())
        .with("taint_from", s.taint_from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taint_bits_and_log_lines() {
        assert_eq!(taint_letters(0), "");
        assert_eq!(taint_letters((1 << 12) | (1 << 13)), "OE");
        assert_eq!(taint_letters(1 << 9), "W");
        // legacy-rocm-build #2198
        let log = "[  110.623568] CPU: 19 PID: 1639 Comm: rocm-bandwidth- Tainted: G        W          6.2.16-060216-generic #202305171336";
        assert_eq!(taint_from_log(log).as_deref(), Some("W"));
        assert_eq!(
            taint_from_log("CPU: 3 PID: 1 Comm: x Tainted: P           OE      6.8.0 #1")
                .as_deref(),
            Some("POE")
        );
        assert_eq!(
            taint_from_log("CPU: 0 PID: 1 Comm: swapper/0 Not tainted 6.12.9 #1").as_deref(),
            Some("")
        );
        assert_eq!(taint_from_log("nothing"), None);
    }
}
