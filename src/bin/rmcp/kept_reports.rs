//! Where `rmcp run` keeps the fault reports librmcp.so writes, so that
//! `rmcp doctor --bug-report` can attach the last ones:
//! `$XDG_STATE_HOME/rmcp/fault-reports/` (default `~/.local/state/...`),
//! one `fault-report-<pid>.json` per faulting process, the newest KEEP kept.

use std::path::{Path, PathBuf};

/// Reports kept; older ones are removed when a new run starts.
pub const KEEP: usize = 10;

/// The directory for a user whose home is `home` and XDG_STATE_HOME `xdg`
/// (an empty or relative XDG_STATE_HOME is ignored, as the spec says).
pub fn dir_for(home: Option<&Path>, xdg: Option<&Path>) -> Option<PathBuf> {
    let state = match xdg.filter(|x| x.is_absolute()) {
        Some(x) => x.to_path_buf(),
        None => home.filter(|h| h.is_absolute())?.join(".local/state"),
    };
    Some(state.join("rmcp/fault-reports"))
}

/// This user's directory (from HOME and XDG_STATE_HOME).
pub fn dir() -> Option<PathBuf> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let xdg = std::env::var_os("XDG_STATE_HOME").map(PathBuf::from);
    dir_for(home.as_deref(), xdg.as_deref())
}

/// Creates the directory (mode 0700), removes all but the newest KEEP-1
/// reports and returns the RMCP_FAULT_REPORT template for a run. None when
/// the directory cannot be made (the run then keeps nothing).
pub fn template() -> Option<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let d = dir()?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&d)
        .ok()?;
    for (p, _) in newest(&d).into_iter().skip(KEEP - 1) {
        let _ = std::fs::remove_file(p);
    }
    Some(d.join("fault-report-%p.json"))
}

/// Keeps a copy of the report of process `pid` (the --on-gpu-fault path,
/// whose reports go to a private directory first).
pub fn store(pid: Option<u32>, raw: &[u8]) {
    let Some(t) = template() else { return };
    let name = format!("fault-report-{}.json", pid.unwrap_or(0));
    let _ = std::fs::write(t.with_file_name(name), raw);
}

/// The reports in `dir`, newest first.
pub fn newest(dir: &Path) -> Vec<(PathBuf, std::time::SystemTime)> {
    let mut v: Vec<(PathBuf, std::time::SystemTime)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| {
                    e.file_name()
                        .to_str()
                        .is_some_and(|n| n.starts_with("fault-report-") && n.ends_with(".json"))
                })
                .filter_map(|e| {
                    let m = e.metadata().ok().filter(|m| m.is_file())?;
                    Some((e.path(), m.modified().unwrap_or(std::time::UNIX_EPOCH)))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_dir_follows_xdg_then_home() {
        let h = Path::new("/home/alice");
        assert_eq!(
            dir_for(Some(h), None).unwrap(),
            Path::new("/home/alice/.local/state/rmcp/fault-reports")
        );
        assert_eq!(
            dir_for(Some(h), Some(Path::new("/var/state"))).unwrap(),
            Path::new("/var/state/rmcp/fault-reports")
        );
        assert_eq!(
            dir_for(Some(h), Some(Path::new("rel"))).unwrap(),
            Path::new("/home/alice/.local/state/rmcp/fault-reports")
        );
        assert_eq!(dir_for(None, None), None);
    }
}
