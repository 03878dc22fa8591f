//! Where librmcp.so is, for `rmcp run` and `rmcp --print-library`, in each
//! layout rmcp is installed in:
//!
//! - a cargo build: `target/*/rmcp` with `librmcp.so` beside it;
//! - a prefix install: `PREFIX/bin/rmcp`, `PREFIX/lib/librmcp.so`;
//! - the Python wheel (venv, `pip install --user`, system pip):
//!   `X/bin/rmcp`, `X/lib/pythonV/{site,dist}-packages/rmcp_rocm/librmcp.so`;
//! - the Debian package: `/usr/bin/rmcp`,
//!   `/usr/lib/x86_64-linux-gnu/librmcp.so` -> `librmcp.so.0`;
//! - then the usual library directories.
//!
//! `RMCP_LIBRARY` overrides all of these. `run` and `--print-library` both
//! use [`find_library`]; this module depends on no other of the CLI's.

use std::path::{Path, PathBuf};

/// The Python package of the wheel (python/rmcp_rocm).
const WHEEL_PACKAGE: &str = "rmcp_rocm";
const MULTIARCH: &str = "x86_64-linux-gnu";

/// Candidate paths, in the order they are tried, for an rmcp binary at `exe`.
pub fn candidates(exe: Option<&Path>) -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Some(dir) = exe.and_then(Path::parent) {
        v.push(dir.join("librmcp.so"));
        let prefix = dir.join("..");
        let lib = prefix.join("lib");
        v.push(lib.join("librmcp.so"));
        // The wheel puts rmcp in X/bin and the library in X/lib/pythonV/...;
        // V is whatever Python the wheel was installed with.
        for py in python_dirs(&lib) {
            for sp in ["site-packages", "dist-packages"] {
                v.push(py.join(sp).join(WHEEL_PACKAGE).join("librmcp.so"));
            }
        }
        v.push(lib.join(MULTIARCH).join("librmcp.so"));
        v.push(lib.join(MULTIARCH).join("librmcp.so.0"));
    }
    if let Some(d) = option_env!("RMCP_INSTALL_LIBDIR") {
        v.push(Path::new(d).join("librmcp.so"));
    }
    for d in [
        "/usr/local/lib",
        "/usr/lib",
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib64",
    ] {
        v.push(Path::new(d).join("librmcp.so"));
        v.push(Path::new(d).join("librmcp.so.0"));
    }
    v
}

/// `lib/python3.*` directories, sorted so the order is stable.
fn python_dirs(lib: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(lib)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("python3"))
        .map(|e| e.path())
        .collect();
    dirs.sort();
    dirs
}

/// True for a path or name whose file is librmcp: `librmcp.so` or the
/// packaged `librmcp.so.0` (`.so.0.1`...), not backups like `librmcp.so.bak`.
pub fn is_rmcp_file_name(entry: &str) -> bool {
    let name = entry.rsplit('/').next().unwrap_or(entry);
    match name.strip_prefix("librmcp.so") {
        Some("") => true,
        Some(rest) => rest.strip_prefix('.').is_some_and(|v| {
            !v.is_empty()
                && v.split('.')
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        }),
        None => false,
    }
}

/// Where librmcp.so is looked for, in order (RMCP_LIBRARY is handled first).
fn installed_candidates() -> Vec<PathBuf> {
    candidates(std::env::current_exe().ok().as_deref())
}

/// The directories librmcp.so is looked for in, with `file` instead.
pub fn candidates_named(file: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = Vec::new();
    for c in installed_candidates() {
        if let Some(p) = c.parent().map(|d| d.join(file)) {
            if !v.contains(&p) {
                v.push(p);
            }
        }
    }
    v
}

/// librmcp.so: `RMCP_LIBRARY` if set, else the first existing candidate.
pub fn find_library() -> Result<PathBuf, String> {
    const ACCEPTED: &str = "accepted: librmcp.so built for x86-64 Linux";
    if let Some(p) = std::env::var_os("RMCP_LIBRARY").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        if !p.is_file() {
            return Err(format!("RMCP_LIBRARY={} is not a file", p.display()));
        }
        crate::library_file::check(&p)
            .map_err(|why| format!("RMCP_LIBRARY={} {why} ({ACCEPTED})", p.display()))?;
        return Ok(std::fs::canonicalize(&p).unwrap_or(p));
    }
    let c = installed_candidates();
    for p in &c {
        if p.is_file() {
            crate::library_file::check(p).map_err(|why| {
                format!("{} {why} ({ACCEPTED}; or set RMCP_LIBRARY)", p.display())
            })?;
            return Ok(std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()));
        }
    }
    Err(format!(
        "librmcp.so not found (looked in: {}); set RMCP_LIBRARY=/path/to/librmcp.so",
        c.iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// `rmcp --print-library`: the path `rmcp run` would preload, on stdout
/// (for `LD_PRELOAD=$(rmcp --print-library) python3 train.py`).
pub fn print_library() -> i32 {
    match find_library() {
        Ok(p) => {
            println!("{}", p.display());
            0
        }
        Err(e) => {
            eprintln!("rmcp: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("rmcp-locate-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("bin")).unwrap();
        d
    }

    fn first_existing(exe: &Path) -> Option<PathBuf> {
        candidates(Some(exe)).into_iter().find(|p| p.is_file())
    }

    #[test]
    fn venv_layout_finds_the_wheel_copy() {
        let d = tree("venv");
        let pkg = d.join("lib/python3.11/site-packages/rmcp_rocm");
        std::fs::create_dir_all(&pkg).unwrap();
        std::fs::write(pkg.join("librmcp.so"), b"").unwrap();
        let found = first_existing(&d.join("bin/rmcp")).unwrap();
        assert_eq!(
            std::fs::canonicalize(found).unwrap(),
            std::fs::canonicalize(pkg.join("librmcp.so")).unwrap()
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn debian_layout_finds_the_multiarch_copy() {
        let d = tree("deb");
        let lib = d.join("lib/x86_64-linux-gnu");
        std::fs::create_dir_all(&lib).unwrap();
        std::fs::write(lib.join("librmcp.so.0"), b"").unwrap();
        let found = first_existing(&d.join("bin/rmcp")).unwrap();
        assert!(
            found.ends_with("lib/x86_64-linux-gnu/librmcp.so.0"),
            "{}",
            found.display()
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn beside_the_binary_comes_first() {
        let d = tree("beside");
        std::fs::write(d.join("bin/librmcp.so"), b"").unwrap();
        let pkg = d.join("lib/python3.11/site-packages/rmcp_rocm");
        std::fs::create_dir_all(&pkg).unwrap();
        std::fs::write(pkg.join("librmcp.so"), b"").unwrap();
        assert_eq!(
            first_existing(&d.join("bin/rmcp")).unwrap(),
            d.join("bin/librmcp.so")
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn recognises_packaged_names_only() {
        for ok in [
            "librmcp.so",
            "/usr/lib/librmcp.so",
            "/usr/lib/x86_64-linux-gnu/librmcp.so.0",
            "librmcp.so.0.1",
        ] {
            assert!(is_rmcp_file_name(ok), "{ok}");
        }
        for bad in [
            "/usr/lib/librmcp.so.bak",
            "notlibrmcp.so.1",
            "librmcp.so.",
            "librmcp.so.0.",
            "librmcp.sox",
            "/x/librmcp.so/y",
        ] {
            assert!(!is_rmcp_file_name(bad), "{bad}");
        }
    }
}
