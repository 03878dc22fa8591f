//! GPU architecture names (`gfx1030`, `gfx90a:sramecc+:xnack-`) and the set of
//! architectures rmcp treats as targets. Pure code: no I/O.
//!
//! A name is "gfx" + major (decimal) + minor (one hex digit) + stepping (one hex
//! digit), the same encoding KFD uses for `gfx_target_version`
//! (major*10000 + minor*100 + stepping).

use std::fmt;

/// One GPU instruction-set architecture, e.g. gfx1030 = (10, 3, 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Gfx {
    pub major: u32,
    pub minor: u32,
    pub stepping: u32,
}

impl Gfx {
    pub const fn new(major: u32, minor: u32, stepping: u32) -> Gfx {
        Gfx {
            major,
            minor,
            stepping,
        }
    }

    /// Parses "gfx1030", "GFX1030" or "gfx90a:sramecc+:xnack-" (target features
    /// after ':' are ignored). Returns None for anything else.
    pub fn parse(name: &str) -> Option<Gfx> {
        let name = name.trim();
        let base = name.split(':').next()?;
        let digits = base
            .get(..3)
            .filter(|p| p.eq_ignore_ascii_case("gfx"))
            .map(|_| &base[3..])?;
        // major: 1 or 2 decimal digits; then exactly two hex digits.
        if digits.len() < 3 || digits.len() > 4 || !digits.is_ascii() {
            return None;
        }
        let (major, rest) = digits.split_at(digits.len() - 2);
        if !major.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let mut hex = rest.chars().map(|c| c.to_digit(16));
        let minor = hex.next()??;
        let stepping = hex.next()??;
        let major: u32 = major.parse().ok()?;
        if major == 0 {
            return None;
        }
        Some(Gfx::new(major, minor, stepping))
    }

    /// Decodes KFD's decimal `gfx_target_version` (100300 -> gfx1030).
    pub fn from_target_version(v: u32) -> Option<Gfx> {
        let major = v / 10000;
        let minor = (v / 100) % 100;
        let stepping = v % 100;
        if major == 0 || minor > 15 || stepping > 15 {
            return None;
        }
        Some(Gfx::new(major, minor, stepping))
    }

    /// Parses the value format of HSA_OVERRIDE_GFX_VERSION ("10.3.0").
    pub fn from_override(v: &str) -> Option<Gfx> {
        let mut it = v.trim().split('.');
        let major = it.next()?.parse().ok()?;
        let minor = it.next()?.parse().ok()?;
        let stepping = it.next()?.parse().ok()?;
        if it.next().is_some() || major == 0 || minor > 15 || stepping > 15 {
            return None;
        }
        Some(Gfx::new(major, minor, stepping))
    }

    /// RDNA generation for the consumer families rmcp targets, if any.
    pub fn family(&self) -> Option<&'static str> {
        match (self.major, self.minor) {
            (10, 1) => Some("RDNA1"),
            (10, 3) => Some("RDNA2"),
            (11, _) => Some("RDNA3"),
            (12, _) => Some("RDNA4"),
            _ => None,
        }
    }
}

impl fmt::Display for Gfx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "gfx{}{:x}{:x}", self.major, self.minor, self.stepping)
    }
}

/// The variable libhsakmt reads for every GPU node; `<OVERRIDE_VAR>_<node>`
/// (the per-node form) is read first (libhsakmt `topology.c`).
pub const OVERRIDE_VAR: &str = "HSA_OVERRIDE_GFX_VERSION";

/// Which override variable `name` is: `Some(None)` for
/// HSA_OVERRIDE_GFX_VERSION, `Some(Some(n))` for the per-node
/// HSA_OVERRIDE_GFX_VERSION_<n> (decimal KFD node number), None otherwise.
pub fn override_var_node(name: &str) -> Option<Option<u32>> {
    let rest = name.strip_prefix(OVERRIDE_VAR)?;
    if rest.is_empty() {
        return Some(None);
    }
    let digits = rest.strip_prefix('_')?;
    if digits.is_empty() || digits.len() > 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().map(Some)
}

/// LLVM's generic processors (llvm/docs/AMDGPUUsage.rst, "Generic processor
/// code objects"): code built for one runs on each listed architecture.
pub const GENERIC_TARGETS: &[(&str, &[&str])] = &[
    (
        "gfx9-generic",
        &["gfx900", "gfx902", "gfx904", "gfx906", "gfx909", "gfx90c"],
    ),
    ("gfx9-4-generic", &["gfx940", "gfx941", "gfx942", "gfx950"]),
    (
        "gfx10-1-generic",
        &["gfx1010", "gfx1011", "gfx1012", "gfx1013"],
    ),
    (
        "gfx10-3-generic",
        &[
            "gfx1030", "gfx1031", "gfx1032", "gfx1033", "gfx1034", "gfx1035", "gfx1036",
        ],
    ),
    (
        "gfx11-generic",
        &[
            "gfx1100", "gfx1101", "gfx1102", "gfx1103", "gfx1150", "gfx1151", "gfx1152", "gfx1153",
        ],
    ),
    ("gfx12-generic", &["gfx1200", "gfx1201"]),
];

/// Does a code object built for `target` ("gfx1031", "gfx1031:xnack-",
/// "gfx10-3-generic") run on `gpu`? Exact names match themselves; a generic
/// name matches every architecture of its family.
pub fn code_object_runs_on(target: &str, gpu: Gfx) -> bool {
    let base = target.trim().split(':').next().unwrap_or("");
    if let Some(g) = Gfx::parse(base) {
        return g == gpu;
    }
    let name = gpu.to_string();
    GENERIC_TARGETS.iter().any(|(generic, members)| {
        base.eq_ignore_ascii_case(generic) && members.contains(&name.as_str())
    })
}

/// The generic processor whose family includes `gpu`, if any.
pub fn generic_target_of(gpu: Gfx) -> Option<&'static str> {
    let name = gpu.to_string();
    GENERIC_TARGETS
        .iter()
        .find(|(_, members)| members.contains(&name.as_str()))
        .map(|(g, _)| *g)
}

/// An inclusive range of architectures; a single name is a range of one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GfxRange {
    pub first: Gfx,
    pub last: Gfx,
}

impl GfxRange {
    pub fn contains(&self, g: Gfx) -> bool {
        self.first <= g && g <= self.last
    }
}

/// The set of architectures whose allocations rmcp rewrites.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Targets {
    ranges: Vec<GfxRange>,
}

/// RDNA1 (gfx1010-gfx1013) and RDNA2 (gfx1030-gfx1036): the default targets.
pub const DEFAULT_TARGETS_TEXT: &str = "gfx1010-gfx1013,gfx1030-gfx1036";

impl Default for Targets {
    fn default() -> Targets {
        Targets {
            ranges: vec![
                GfxRange {
                    first: Gfx::new(10, 1, 0),
                    last: Gfx::new(10, 1, 3),
                },
                GfxRange {
                    first: Gfx::new(10, 3, 0),
                    last: Gfx::new(10, 3, 6),
                },
            ],
        }
    }
}

/// The first thing wrong in a targets list, borrowing from the text so a
/// message can quote (and shorten) each piece on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadTargets<'a> {
    EmptyItem,
    /// `name` is not a gfx name; `item` is the list item it is part of.
    NotAName {
        name: &'a str,
        item: &'a str,
    },
    /// A range whose end comes before its start.
    Backwards(&'a str),
}

impl Targets {
    /// Parses a comma-separated list of names and inclusive ranges,
    /// e.g. "gfx1030,gfx1010-gfx1013". Whitespace around items is allowed.
    /// The error names the first bad item.
    pub fn parse(text: &str) -> Result<Targets, BadTargets<'_>> {
        let mut ranges = Vec::new();
        for item in text.split(',') {
            let item = item.trim();
            if item.is_empty() {
                return Err(BadTargets::EmptyItem);
            }
            // An item with target features ("gfx90a:xnack-") is one name:
            // features may end in '-'. Range ends carry no features.
            let range_split = if item.contains(':') {
                None
            } else {
                item.split_once('-')
            };
            let bad = |name| BadTargets::NotAName { name, item };
            let range = match range_split {
                Some((a, b)) => {
                    let first = Gfx::parse(a).ok_or_else(|| bad(a.trim()))?;
                    let last = Gfx::parse(b).ok_or_else(|| bad(b.trim()))?;
                    if last < first {
                        return Err(BadTargets::Backwards(item));
                    }
                    GfxRange { first, last }
                }
                None => {
                    let g = Gfx::parse(item).ok_or_else(|| bad(item))?;
                    GfxRange { first: g, last: g }
                }
            };
            ranges.push(range);
        }
        Ok(Targets { ranges })
    }

    pub fn contains(&self, g: Gfx) -> bool {
        self.ranges.iter().any(|r| r.contains(g))
    }

    /// True when `arch_name` (as a runtime reports it) parses and is a target.
    pub fn contains_name(&self, arch_name: &str) -> bool {
        Gfx::parse(arch_name).is_some_and(|g| self.contains(g))
    }
}

impl fmt::Display for Targets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if r.first == r.last {
                write!(f, "{}", r.first)?;
            } else {
                write!(f, "{}-{}", r.first, r.last)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn override_variable_names() {
        assert_eq!(override_var_node("HSA_OVERRIDE_GFX_VERSION"), Some(None));
        assert_eq!(
            override_var_node("HSA_OVERRIDE_GFX_VERSION_12"),
            Some(Some(12))
        );
        for bad in [
            "HSA_OVERRIDE_GFX_VERSION_",
            "HSA_OVERRIDE_GFX_VERSION_x",
            "HSA_OVERRIDE_GFX_VERSIONS",
            "HSA_OVERRIDE",
        ] {
            assert_eq!(override_var_node(bad), None, "{bad}");
        }
    }

    #[test]
    fn generic_code_objects_run_on_their_family_only() {
        let g1031 = Gfx::new(10, 3, 1);
        let g1010 = Gfx::new(10, 1, 0);
        assert!(code_object_runs_on("gfx10-3-generic", g1031));
        assert!(!code_object_runs_on("gfx10-3-generic", g1010));
        assert!(code_object_runs_on("gfx10-1-generic", g1010));
        assert!(code_object_runs_on("gfx1031:xnack-", g1031));
        assert!(!code_object_runs_on("gfx1030", g1031));
        assert!(!code_object_runs_on("sm_86", g1031));
        assert_eq!(
            generic_target_of(Gfx::new(10, 1, 3)),
            Some("gfx10-1-generic")
        );
        assert_eq!(
            generic_target_of(Gfx::new(10, 3, 6)),
            Some("gfx10-3-generic")
        );
    }

    #[test]
    fn parses_names_with_features_and_case() {
        assert_eq!(Gfx::parse("gfx1030"), Some(Gfx::new(10, 3, 0)));
        assert_eq!(Gfx::parse("GFX1031"), Some(Gfx::new(10, 3, 1)));
        assert_eq!(
            Gfx::parse("gfx90a:sramecc+:xnack-"),
            Some(Gfx::new(9, 0, 10))
        );
        assert_eq!(Gfx::parse("gfx942"), Some(Gfx::new(9, 4, 2)));
        assert_eq!(Gfx::parse(" gfx1100 "), Some(Gfx::new(11, 0, 0)));
        for bad in [
            "",
            "gfx",
            "gfx1",
            "gfx10",
            "gfx10300",
            "gfxz030",
            "gfx10g0",
            "1030",
            "gfx0a0",
            "gfx-130",
            "gfx１030",
        ] {
            assert_eq!(Gfx::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn names_round_trip_through_display() {
        for n in [
            "gfx1010", "gfx1036", "gfx90a", "gfx942", "gfx1100", "gfx1201", "gfx803",
        ] {
            assert_eq!(Gfx::parse(n).unwrap().to_string(), n);
        }
    }

    #[test]
    fn decodes_kfd_target_versions() {
        assert_eq!(
            Gfx::from_target_version(100300).unwrap().to_string(),
            "gfx1030"
        );
        assert_eq!(
            Gfx::from_target_version(90010).unwrap().to_string(),
            "gfx90a"
        );
        assert_eq!(
            Gfx::from_target_version(90402).unwrap().to_string(),
            "gfx942"
        );
        assert_eq!(
            Gfx::from_target_version(100100).unwrap().to_string(),
            "gfx1010"
        );
        assert_eq!(Gfx::from_target_version(0), None);
        assert_eq!(Gfx::from_target_version(101600), None);
    }

    #[test]
    fn decodes_override_values() {
        assert_eq!(Gfx::from_override("10.3.0").unwrap().to_string(), "gfx1030");
        assert_eq!(Gfx::from_override("9.0.10").unwrap().to_string(), "gfx90a");
        assert_eq!(Gfx::from_override("10.3"), None);
        assert_eq!(Gfx::from_override("ten"), None);
    }

    #[test]
    fn default_targets_are_exactly_rdna1_and_rdna2() {
        let t = Targets::default();
        let inside = [
            "gfx1010", "gfx1011", "gfx1012", "gfx1013", "gfx1030", "gfx1031", "gfx1032", "gfx1033",
            "gfx1034", "gfx1035", "gfx1036",
        ];
        for n in inside {
            assert!(t.contains_name(n), "{n}");
        }
        for n in [
            "gfx1014", "gfx1020", "gfx1037", "gfx1100", "gfx90a", "gfx906", "gfx1201", "garbage",
        ] {
            assert!(!t.contains_name(n), "{n}");
        }
        assert_eq!(Targets::parse(DEFAULT_TARGETS_TEXT).unwrap(), t);
        assert_eq!(t.to_string(), DEFAULT_TARGETS_TEXT);
    }

    #[test]
    fn parses_lists_and_ranges() {
        let t = Targets::parse(" gfx1100 , gfx1030-gfx1031").unwrap();
        assert!(t.contains_name("gfx1100"));
        assert!(t.contains_name("gfx1031"));
        assert!(!t.contains_name("gfx1032"));
        assert!(Targets::parse("").is_err());
        assert!(Targets::parse("gfx1030,").is_err());
        assert_eq!(Targets::parse("gfx1030,"), Err(BadTargets::EmptyItem));
        assert_eq!(
            Targets::parse("gfx1030, rdna2").unwrap_err(),
            BadTargets::NotAName {
                name: "rdna2",
                item: "rdna2"
            }
        );
        assert_eq!(
            Targets::parse("gfx1030-x").unwrap_err(),
            BadTargets::NotAName {
                name: "x",
                item: "gfx1030-x"
            }
        );
        assert_eq!(
            Targets::parse("gfx1031-gfx1030").unwrap_err(),
            BadTargets::Backwards("gfx1031-gfx1030")
        );
        // Feature suffixes are ignored, including ones ending in '-'.
        let t = Targets::parse("gfx90a:xnack-,gfx1030:xnack+").unwrap();
        assert!(t.contains_name("gfx90a") && t.contains_name("gfx1030"));
    }
}
