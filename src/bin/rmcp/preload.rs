//! LD_PRELOAD and /etc/ld.so.preload lists, split as the dynamic loader
//! splits them: one reader for `doctor` (is librmcp.so preloaded?) and
//! `run` (put it first).

/// Entries of a preload list (LD_PRELOAD allows ':' and whitespace).
pub fn preload_entries(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| c == ':' || c.is_whitespace())
        .filter(|e| !e.is_empty())
}

/// An entry naming librmcp.so (by path or bare name, `.so` or the packaged
/// `.so.0`).
pub fn is_rmcp_lib(entry: &str) -> bool {
    crate::locate::is_rmcp_file_name(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_library_paths() {
        assert!(is_rmcp_lib("/usr/lib/librmcp.so"));
        assert!(is_rmcp_lib("librmcp.so"));
        assert!(!is_rmcp_lib("/usr/lib/librmcp.so.bak"));
        assert!(!is_rmcp_lib("/usr/lib/notlibrmcp.so.1"));
        assert_eq!(preload_entries("a.so:b.so  c.so").count(), 3);
    }
}
