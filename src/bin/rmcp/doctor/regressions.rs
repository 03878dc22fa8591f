//! Known amdgpu / ROCm regressions by version range. The table is data
//! (regressions.tsv, one row per regression, each with its public source),
//! so adding one is adding a line.

use super::{Finding, Severity};
use crate::json::{Json, JsonObj};
use crate::kfd::Gpu;
use rmcp::arch::Targets;

const TABLE: &str = include_str!("regressions.tsv");

#[derive(Debug, PartialEq)]
pub struct Row<'a> {
    pub id: &'a str,
    pub component: &'a str,
    pub first: Vec<u32>,
    pub last: Vec<u32>,
    /// None: every GPU.
    pub gpus: Option<Targets>,
    pub what: &'a str,
    pub workaround: &'a str,
    pub sources: Vec<&'a str>,
}

/// "6.18.4-arch1-1" -> [6, 18, 4]; "7.1.1-38" -> [7, 1, 1]. None when the
/// text does not start with a number.
pub fn version(text: &str) -> Option<Vec<u32>> {
    let head: String = text
        .trim()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let parts: Vec<u32> = head
        .split('.')
        .map_while(|p| p.parse().ok())
        .take(4)
        .collect();
    (!parts.is_empty()).then_some(parts)
}

/// first <= v <= last, comparing only as many parts as each bound has.
pub fn in_range(v: &[u32], first: &[u32], last: &[u32]) -> bool {
    let cut = |b: &[u32]| v.iter().copied().take(b.len()).collect::<Vec<u32>>();
    cut(first).as_slice() >= first && cut(last).as_slice() <= last
}

/// The rows of the table; a malformed row is an error naming its line
/// (a unit test keeps the shipped table valid).
pub fn rows() -> Result<Vec<Row<'static>>, String> {
    parse(TABLE)
}

pub fn parse(table: &str) -> Result<Vec<Row<'_>>, String> {
    let mut out = Vec::new();
    for (n, line) in table.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let c: Vec<&str> = line.split('\t').collect();
        let bad = |why: &str| format!("regressions.tsv line {}: {why}", n + 1);
        if c.len() != 8 {
            return Err(bad(&format!("{} columns, want 8", c.len())));
        }
        if !matches!(c[1], "kernel" | "rocm") {
            return Err(bad("component is not kernel or rocm"));
        }
        let first = version(c[2]).ok_or_else(|| bad("bad first version"))?;
        let last = version(c[3]).ok_or_else(|| bad("bad last version"))?;
        let gpus = match c[4] {
            "*" => None,
            t => Some(Targets::parse(t).map_err(|e| bad(&format!("bad GPU list ({e:?})")))?),
        };
        let sources: Vec<&str> = c[7].split_whitespace().collect();
        if sources.is_empty() || !sources.iter().all(|s| s.starts_with("https://")) {
            return Err(bad("every row needs https:// sources"));
        }
        out.push(Row {
            id: c[0],
            component: c[1],
            first,
            last,
            gpus,
            what: c[5],
            workaround: c[6],
            sources,
        });
    }
    Ok(out)
}

/// The `amdgpu.NAME=VALUE` a workaround text asks for, if any.
pub fn workaround_param(text: &str) -> Option<(&str, &str)> {
    let i = text.find("amdgpu.")? + 7;
    let (name, rest) = text[i..].split_once('=')?;
    let value = rest
        .split(|c: char| c.is_whitespace() || c == ')' || c == ',')
        .next()?;
    (!name.is_empty()
        && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
        && !value.is_empty())
    .then_some((name, value))
}

/// `known-regression` findings for the running kernel and installed ROCm.
/// `param` answers an amdgpu parameter's value (live, else as configured),
/// so a workaround already applied is said to be (and the finding is info).
pub fn check(
    kernel: Option<&str>,
    rocm: Option<&str>,
    gpus: &[Gpu],
    param: &dyn Fn(&str) -> Option<String>,
    findings: &mut Vec<Finding>,
) -> Json {
    let rows = match rows() {
        Ok(r) => r,
        Err(e) => {
            findings.push(Finding::new(
                "regression-table-invalid",
                Severity::Warning,
                e,
                None,
            ));
            return Json::Array(Vec::new());
        }
    };
    let mut hits = Vec::new();
    for r in &rows {
        let (name, text) = match r.component {
            "kernel" => ("kernel", kernel),
            _ => ("ROCm", rocm),
        };
        let Some(text) = text else { continue };
        let Some(v) = version(text) else { continue };
        if !in_range(&v, &r.first, &r.last) {
            continue;
        }
        let affected: Vec<String> = gpus
            .iter()
            .filter(|g| match (&r.gpus, g.gfx) {
                (None, _) => true,
                (Some(t), Some(x)) => t.contains(x),
                (Some(_), None) => false,
            })
            .map(|g| g.label())
            .collect();
        if affected.is_empty() {
            continue;
        }
        let applied = workaround_param(r.workaround)
            .filter(|(n, v)| param(n).is_some_and(|have| have == *v))
            .map(|(n, v)| format!(" The workaround amdgpu.{n}={v} is already set here."));
        let mut f = Finding::new(
            "known-regression",
            if applied.is_some() {
                Severity::Info
            } else {
                Severity::Warning
            },
            format!(
                "{name} {text} is in the range of a known regression ({}, {name} {}-{}): {}; affects {}. Sources: {}{}",
                r.id,
                dotted(&r.first),
                dotted(&r.last),
                r.what,
                affected.join(", "),
                r.sources.join(" "),
                applied.as_deref().unwrap_or("")
            ),
            Some(r.workaround.to_string()),
        );
        let row = Json::obj()
            .with("regression", r.id)
            .with("component", r.component)
            .with("version", text)
            .with("sources", r.sources.clone());
        f.details = Some(row.clone());
        findings.push(f);
        hits.push(row);
    }
    Json::Array(hits)
}

fn dotted(v: &[u32]) -> String {
    v.iter().map(u32::to_string).collect::<Vec<_>>().join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_table_parses_and_every_row_cites_a_source() {
        let rows = rows().unwrap();
        assert!(rows.len() >= 3);
        assert!(rows.iter().all(|r| !r.sources.is_empty()));
        let ids: Vec<&str> = rows.iter().map(|r| r.id).collect();
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), ids.len(), "row ids are stable and unique");
    }

    #[test]
    fn versions_and_ranges() {
        assert_eq!(version("6.18.4-arch1-1"), Some(vec![6, 18, 4]));
        assert_eq!(version("7.1.1-38"), Some(vec![7, 1, 1]));
        assert_eq!(version("arch"), None);
        let (a, b) = (vec![6, 18, 3], vec![7, 0]);
        assert!(in_range(&[6, 18, 4], &a, &b));
        assert!(in_range(&[7, 0, 2], &a, &b));
        assert!(!in_range(&[6, 17, 9], &a, &b));
        assert!(!in_range(&[6, 12, 60], &a, &b));
        assert!(!in_range(&[7, 1, 0], &a, &b));
        assert!(in_range(&[7, 1, 1], &[7, 1, 1], &[7, 1, 1]));
        assert!(in_range(&[7, 1, 5], &[7, 0], &[7, 1]));
    }

    #[test]
    fn workarounds_name_their_parameter() {
        assert_eq!(
            workaround_param("add amdgpu.cwsr_enable=0 to the kernel command line"),
            Some(("cwsr_enable", "0"))
        );
        assert_eq!(workaround_param("boot a 6.12 LTS kernel"), None);
    }

    #[test]
    fn a_bad_row_names_its_line() {
        let e = parse("# c\nx\tkernel\t6\t7\t*\twhat\tfix\n").unwrap_err();
        assert!(e.contains("line 2") && e.contains("7 columns"), "{e}");
        let e = parse("x\tkernel\t6\t7\t*\twhat\tfix\tftp://x\n").unwrap_err();
        assert!(e.contains("https://"), "{e}");
    }
}
