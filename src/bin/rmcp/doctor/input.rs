//! Reading the files doctor scans without ever failing on them: a missing
//! file is silent, anything else that goes wrong (permissions, symlink
//! loops, directories where a file was expected, binary content, sizes
//! beyond the cap) becomes one `input-*` finding naming the file and why.

use super::{Finding, Severity};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Start-up files, unit files and compose files: the first MiB is plenty.
pub const CONFIG_CAP: u64 = 1 << 20;
/// Kernel logs: the last 32 MiB (the newest lines matter most).
pub const LOG_CAP: u64 = 32 << 20;
/// Entries read from one scanned directory.
pub const DIR_CAP: usize = 4096;

pub enum Text {
    /// The text, or the kept part of it (an `input-capped` finding says so).
    Ok {
        text: String,
    },
    Missing,
    /// Could not be read, or is not text; the reason is already a finding.
    Skipped,
}

/// Which end of a file too large to read whole is kept.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    Head,
    Tail,
}

/// Reads `path` (a real path; `shown` is how messages name it) as text.
pub fn read_text(
    path: &Path,
    shown: &str,
    cap: u64,
    keep: Keep,
    findings: &mut Vec<Finding>,
) -> Text {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // A dangling symlink is "not found" too; a loop is not.
            return Text::Missing;
        }
        Err(e) => {
            findings.push(unreadable(shown, &e.to_string()));
            return Text::Skipped;
        }
    };
    let len = match f.metadata() {
        Ok(m) if m.is_dir() => {
            findings.push(unreadable(shown, "is a directory, not a file"));
            return Text::Skipped;
        }
        Ok(m) => m.len(),
        Err(e) => {
            findings.push(unreadable(shown, &e.to_string()));
            return Text::Skipped;
        }
    };
    let capped = len > cap;
    if capped && keep == Keep::Tail {
        if let Err(e) = f.seek(SeekFrom::Start(len - cap)) {
            findings.push(unreadable(shown, &e.to_string()));
            return Text::Skipped;
        }
    }
    let mut bytes = Vec::new();
    // take(): /proc files and pipes report length 0 yet have content.
    if let Err(e) = f.by_ref().take(cap).read_to_end(&mut bytes) {
        findings.push(unreadable(shown, &e.to_string()));
        return Text::Skipped;
    }
    let capped = capped || (bytes.len() as u64 == cap && f.read(&mut [0u8; 1]).unwrap_or(0) > 0);
    if looks_binary(&bytes) {
        findings.push(Finding::new(
            "input-not-text",
            Severity::Info,
            format!("{shown} is not a text file (it holds NUL bytes); it was not scanned."),
            None,
        ));
        return Text::Skipped;
    }
    if capped {
        findings.push(Finding::new(
            "input-capped",
            Severity::Info,
            format!(
                "{shown} is larger than {}; only its {} {} were scanned.",
                size(cap),
                if keep == Keep::Tail { "last" } else { "first" },
                size(cap)
            ),
            None,
        ));
    }
    Text::Ok {
        text: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// NUL bytes in the first 64 KiB: what `grep` and `git` take as binary.
pub fn looks_binary(bytes: &[u8]) -> bool {
    bytes.iter().take(64 << 10).any(|&b| b == 0)
}

/// The entries of a directory, sorted; missing directories give none,
/// unreadable ones a finding. At most DIR_CAP entries.
pub fn list_dir(dir: &Path, shown: &str, findings: &mut Vec<Finding>) -> Vec<PathBuf> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
            findings.push(unreadable(shown, "is not a directory"));
            return Vec::new();
        }
        Err(e) => {
            findings.push(unreadable(shown, &e.to_string()));
            return Vec::new();
        }
    };
    let mut out: Vec<PathBuf> = rd.flatten().map(|e| e.path()).take(DIR_CAP + 1).collect();
    if out.len() > DIR_CAP {
        out.truncate(DIR_CAP);
        findings.push(Finding::new(
            "input-capped",
            Severity::Info,
            format!("{shown} has more than {DIR_CAP} entries; only {DIR_CAP} were scanned."),
            None,
        ));
    }
    out.sort();
    out
}

fn size(n: u64) -> String {
    if n >= 1 << 20 {
        format!("{} MiB", n >> 20)
    } else {
        format!("{n} bytes")
    }
}

fn unreadable(shown: &str, why: &str) -> Finding {
    Finding::new(
        "input-unreadable",
        Severity::Info,
        format!("could not read {shown}: {why}; it was skipped."),
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("rmcp-input-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn loops_binaries_directories_and_caps_are_one_finding_each() {
        let d = tmp("mixed");
        std::os::unix::fs::symlink(d.join("b"), d.join("a")).unwrap();
        std::os::unix::fs::symlink(d.join("a"), d.join("b")).unwrap();
        std::fs::write(d.join("bin"), b"\x7fELF\0\0\x01").unwrap();
        std::fs::write(d.join("big"), "x\n".repeat(2048)).unwrap();
        std::fs::create_dir(d.join("dir")).unwrap();
        let mut f = Vec::new();
        assert!(matches!(
            read_text(&d.join("a"), "a", 100, Keep::Head, &mut f),
            Text::Skipped
        ));
        assert!(matches!(
            read_text(&d.join("bin"), "bin", 100, Keep::Head, &mut f),
            Text::Skipped
        ));
        assert!(matches!(
            read_text(&d.join("dir"), "dir", 100, Keep::Head, &mut f),
            Text::Skipped
        ));
        assert!(matches!(
            read_text(&d.join("none"), "none", 100, Keep::Head, &mut f),
            Text::Missing
        ));
        match read_text(&d.join("big"), "big", 1 << 10, Keep::Tail, &mut f) {
            Text::Ok { text } => assert_eq!(text.len(), 1 << 10),
            _ => panic!("big file not read"),
        }
        let ids: Vec<&str> = f.iter().map(|x| x.id).collect();
        assert_eq!(
            ids,
            [
                "input-unreadable",
                "input-not-text",
                "input-unreadable",
                "input-capped"
            ]
        );
        assert!(f[0].message.contains("symbolic links"), "{}", f[0].message);
        assert!(f.iter().all(|x| !x.message.contains('\n')));
        std::fs::remove_dir_all(d).unwrap();
    }
}
