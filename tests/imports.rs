//! The library's modules depend on each other one way: no two modules of
//! src/ (the library: src/bin is the CLI) use each other, directly or
//! through others. The graph is read from the source: every `crate::a::b`,
//! `super::x` and child-module path outside `#[cfg(test)]` code, per file.
//! `cargo test --test imports -- --nocapture` prints it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The module path of a library source file: src/core/report.rs ->
/// "core::report", src/interpose/hooks/mod.rs -> "interpose::hooks".
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    if parts == ["lib"] {
        return "crate".into();
    }
    parts.join("::")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            if p.file_name().unwrap() != "bin" {
                rust_files(&p, out);
            }
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The file's code without comments and without its test module.
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Paths starting at `start` in `code`: "crate::core::report::FixedBuf" and
/// "crate::report::{self, X}" give the segments after `start`.
fn paths_after<'a>(code: &'a str, start: &str) -> Vec<Vec<&'a str>> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find(start) {
        let before = rest[..i].chars().next_back();
        rest = &rest[i + start.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let path: Vec<&str> = rest
            .split("::")
            .map_while(|seg| {
                let end = seg
                    .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .unwrap_or(seg.len());
                (end > 0).then(|| &seg[..end])
            })
            .collect();
        out.push(path);
    }
    out
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeMap<String, PathBuf> = files
        .iter()
        .map(|f| (module_of(&src, f), f.clone()))
        .collect();
    // lib.rs re-exports some modules at the crate root.
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let mut alias: BTreeMap<String, String> = BTreeMap::new();
    for line in code(&lib).lines() {
        let Some(rest) = line.trim().strip_prefix("pub use crate::") else {
            continue;
        };
        let rest = rest.trim_end_matches(';');
        if let Some((base, list)) = rest.split_once("::{") {
            for m in list.trim_end_matches('}').split(',') {
                let m = m.trim();
                alias.insert(m.to_string(), format!("{base}::{m}"));
            }
        } else if let Some((_, last)) = rest.rsplit_once("::") {
            alias.insert(last.to_string(), rest.to_string());
        }
    }
    // The longest known module that `segments` start with.
    let resolve = |segments: &[&str]| -> Option<String> {
        let mut segs: Vec<String> = segments.iter().map(|s| s.to_string()).collect();
        if let Some(full) = segs.first().and_then(|s| alias.get(s)) {
            let mut v: Vec<String> = full.split("::").map(str::to_string).collect();
            v.extend(segs.drain(1..));
            segs = v;
        }
        (1..=segs.len())
            .rev()
            .map(|n| segs[..n].join("::"))
            .find(|m| modules.contains_key(m))
    };
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (m, file) in &modules {
        let code = code(&std::fs::read_to_string(file).unwrap());
        let edges = g.entry(m.clone()).or_default();
        let mut targets: Vec<Option<String>> = paths_after(&code, "crate::")
            .iter()
            .map(|p| resolve(p))
            .collect();
        let parent = m.rsplit_once("::").map_or("", |(p, _)| p);
        // (`super::*` is an inline module's glob of its own file.)
        for p in paths_after(&code, "super::")
            .into_iter()
            .filter(|p| !p.is_empty())
        {
            let mut full: Vec<&str> = parent.split("::").filter(|s| !s.is_empty()).collect();
            full.extend(p);
            targets.push(resolve(&full));
        }
        // Child modules named by a relative path ("hip::*", "forward::{..}").
        for child in modules
            .keys()
            .filter_map(|c| c.strip_prefix(&format!("{m}::")))
        {
            if !child.contains("::") && !paths_after(&code, &format!("{child}::")).is_empty() {
                targets.push(Some(format!("{m}::{child}")));
            }
        }
        for t in targets.into_iter().flatten() {
            if &t != m && t != "crate" {
                edges.insert(t);
            }
        }
    }
    g
}

/// A cycle through `from`, if any (depth-first).
fn cycle(g: &BTreeMap<String, BTreeSet<String>>, from: &str) -> Option<Vec<String>> {
    fn walk(
        g: &BTreeMap<String, BTreeSet<String>>,
        at: &str,
        goal: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        for next in g.get(at).into_iter().flatten() {
            if next == goal {
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(g, next, goal, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![from.to_string()];
    walk(g, from, from, &mut path, &mut BTreeSet::new()).then_some(path)
}

#[test]
fn no_module_of_the_library_uses_one_that_uses_it() {
    let g = graph();
    for (m, uses) in &g {
        let list: Vec<&str> = uses.iter().map(String::as_str).collect();
        println!("{m} -> {}", list.join(", "));
    }
    // The reader itself: known edges must be found.
    assert!(
        g["interpose::fault"].contains("core::fault_report"),
        "{g:?}"
    );
    assert!(
        g["interpose::hooks"].contains("interpose::hooks::hip"),
        "{g:?}"
    );
    assert!(
        g["interpose::hooks::hip"].contains("interpose::hooks::forward"),
        "{g:?}"
    );
    assert!(g["core::causes"].contains("core::report"), "{g:?}");
    let cycles: Vec<String> = g
        .keys()
        .filter_map(|m| cycle(&g, m))
        .map(|c| c.join(" -> "))
        .collect();
    assert!(
        cycles.is_empty(),
        "modules that use each other:\n{}",
        cycles.join("\n")
    );
}
