//! Configuration from environment variables. Pure: the environment is passed
//! in as a lookup function, so every rule is unit-tested and fuzzed.
//!
//! Every invalid value yields one message naming the variable, the bad value
//! and what is accepted, and the safe default is used instead.

use crate::core::arch::{BadTargets, Targets, DEFAULT_TARGETS_TEXT};
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

/// The names of the environment variables rmcp reads: the one vocabulary
/// that the configuration, the CLI (`rmcp run`, `rmcp doctor`) and the tests
/// use.
pub mod var {
    pub const MODE: &str = "RMCP_MODE";
    pub const TARGETS: &str = "RMCP_TARGETS";
    pub const LOG: &str = "RMCP_LOG";
    pub const HIP_LIBRARY: &str = "RMCP_HIP_LIBRARY";
    pub const HSA_LIBRARY: &str = "RMCP_HSA_LIBRARY";
    pub const FAULT_REPORT: &str = "RMCP_FAULT_REPORT";
    pub const SYSFS_ROOT: &str = "RMCP_SYSFS_ROOT";
    pub const ROCM_CALLERS: &str = "RMCP_ROCM_CALLERS";
    /// Read only by builds with the `fault-injection` feature.
    pub const TEST_PANIC: &str = "RMCP_TEST_PANIC";
    /// ROCm's own variables, read as the runtimes read them.
    pub const HIP_HOST_COHERENT: &str = "HIP_HOST_COHERENT";
    pub const HSA_OVERRIDE_GFX_VERSION: &str = "HSA_OVERRIDE_GFX_VERSION";
}

/// Every `RMCP_*` variable librmcp.so reads (the CLI's `RMCP_LIBRARY`, which
/// says where librmcp.so is, is not read by the library).
pub const RMCP_VARIABLES: &[&str] = &[
    var::MODE,
    var::TARGETS,
    var::LOG,
    var::HIP_LIBRARY,
    var::HSA_LIBRARY,
    var::FAULT_REPORT,
    var::SYSFS_ROOT,
    var::ROCM_CALLERS,
    var::TEST_PANIC,
];

/// The ROCm variables librmcp.so reads besides its own.
pub const ROCM_VARIABLES: &[&str] = &[var::HIP_HOST_COHERENT, var::HSA_OVERRIDE_GFX_VERSION];

/// What rmcp does to allocations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Rewrite on target devices only (default).
    Auto,
    /// Rewrite on every device.
    Force,
    /// Forward everything untouched; the registry and stats stay on.
    Off,
}

impl Mode {
    /// Every mode, in the order of [`MODE_NAMES`].
    pub const ALL: [Mode; 3] = [Mode::Auto, Mode::Force, Mode::Off];

    pub fn name(self) -> &'static str {
        MODE_NAMES[self as usize]
    }
}

/// The values RMCP_MODE (and `rmcp run --mode`) accepts.
pub const MODE_NAMES: [&str; 3] = ["auto", "force", "off"];

/// The values RMCP_LOG (and `rmcp run --log`) accepts; "warning" is also
/// read as "warn".
pub const LOG_LEVEL_NAMES: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// Log verbosity, mirroring `log::LevelFilter` without tying the pure
/// config to the logger.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Off,
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    /// Every level, in the order of [`LOG_LEVEL_NAMES`].
    pub const ALL: [LogLevel; 6] = [
        LogLevel::Off,
        LogLevel::Error,
        LogLevel::Warn,
        LogLevel::Info,
        LogLevel::Debug,
        LogLevel::Trace,
    ];

    pub fn to_filter(self) -> log::LevelFilter {
        match self {
            LogLevel::Off => log::LevelFilter::Off,
            LogLevel::Error => log::LevelFilter::Error,
            LogLevel::Warn => log::LevelFilter::Warn,
            LogLevel::Info => log::LevelFilter::Info,
            LogLevel::Debug => log::LevelFilter::Debug,
            LogLevel::Trace => log::LevelFilter::Trace,
        }
    }
}

/// Everything the shim reads from the environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub mode: Mode,
    pub targets: Targets,
    pub log_level: LogLevel,
    /// RMCP_HIP_LIBRARY: runtime to load when the process has none loaded.
    pub hip_library: Option<OsString>,
    /// RMCP_HSA_LIBRARY: the same for the HSA runtime.
    pub hsa_library: Option<OsString>,
    /// RMCP_FAULT_REPORT: where to write the JSON fault report.
    pub fault_report: Option<OsString>,
    /// HIP_HOST_COHERENT as the HIP runtime reads it: it makes flagless host
    /// allocations coherent, so the policy has to know it.
    pub host_coherent_env: bool,
    /// RMCP_ROCM_CALLERS=include: rewrite HIP allocations that ROCm's own
    /// libraries (RCCL, MIOpen, ...) make too. Off by default: they may need
    /// the fine-grained memory they ask for (RCCL's flags). For experiments.
    pub include_rocm_callers: bool,
    /// HSA_OVERRIDE_GFX_VERSION as ROCm reads it (the fault report compares
    /// it with the GPU's real architecture). Kept as given; parsed when used.
    pub hsa_override: Option<String>,
    /// RMCP_SYSFS_ROOT: the directory under which `sys/class/kfd` is read
    /// (tests point it at a fixture tree); default "/".
    pub sysfs_root: Option<OsString>,
    /// False in AT_SECURE (setuid-like) processes: rmcp then only forwards.
    pub enabled: bool,
    /// Test-only: make the policy path panic (feature `fault-injection`).
    pub test_panic: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            mode: Mode::Auto,
            targets: Targets::default(),
            log_level: LogLevel::Warn,
            hip_library: None,
            hsa_library: None,
            fault_report: None,
            host_coherent_env: false,
            include_rocm_callers: false,
            hsa_override: None,
            sysfs_root: None,
            enabled: true,
            test_panic: false,
        }
    }
}

/// The longest value echoed back in a message; longer ones are cut.
const SHOWN_VALUE_MAX: usize = 48;
/// Paths longer than this are refused (PATH_MAX on Linux).
const PATH_MAX: usize = 4096;

/// Renders a value for a message: lossy UTF-8, control characters escaped,
/// long values cut with their length noted.
pub fn shown(value: &OsStr) -> String {
    shown_upto(value, SHOWN_VALUE_MAX)
}

/// A path for a message that must name it: as `shown`, but cut only past
/// PATH_MAX.
pub fn shown_path(value: &OsStr) -> String {
    shown_upto(value, PATH_MAX)
}

fn shown_upto(value: &OsStr, max: usize) -> String {
    let bytes = value.as_bytes();
    let cut = &bytes[..bytes.len().min(max)];
    let mut s: String = String::from_utf8_lossy(cut)
        .chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect();
    if bytes.len() > max {
        s.push_str(&format!("... ({} bytes)", bytes.len()));
    }
    s
}

fn invalid(var: &str, value: &OsStr, accepted: &str, default: &str) -> String {
    format!(
        "{var}='{}' is not valid (accepted: {accepted}); using {default}",
        shown(value)
    )
}

/// RMCP_MODE as librmcp reads it; None for a value it does not accept.
pub fn parse_mode(v: &OsStr) -> Option<Mode> {
    let s = v.to_str()?.trim().to_ascii_lowercase();
    let i = MODE_NAMES.iter().position(|n| *n == s)?;
    Some(Mode::ALL[i])
}

fn parse_level(v: &OsStr) -> Option<LogLevel> {
    let s = v.to_str()?.trim().to_ascii_lowercase();
    let s = if s == "warning" { "warn" } else { &s };
    let i = LOG_LEVEL_NAMES.iter().position(|n| *n == s)?;
    Some(LogLevel::ALL[i])
}

/// RMCP_ROCM_CALLERS's values: index 0 ("leave", the default) leaves calls
/// from ROCm's own libraries untouched, 1 ("include") rewrites them too.
pub const ROCM_CALLERS_NAMES: [&str; 2] = ["leave", "include"];

/// RMCP_ROCM_CALLERS: true for "include", false for "leave"; None for
/// anything else.
pub fn parse_rocm_callers(v: &OsStr) -> Option<bool> {
    let v = v.to_str()?.trim().to_ascii_lowercase();
    ROCM_CALLERS_NAMES
        .iter()
        .position(|n| *n == v)
        .map(|i| i == 1)
}

fn parse_path(v: &OsStr) -> Result<OsString, &'static str> {
    if v.is_empty() {
        Err("it is empty")
    } else if v.len() > PATH_MAX {
        Err("it is longer than 4096 bytes")
    } else {
        Ok(v.to_os_string())
    }
}

/// The first `%` sequence of a report path that is not `%p` or `%%` (the
/// only two RMCP_FAULT_REPORT expands; others are kept as written), read
/// left to right as the expansion reads it: `%x`, or `%` at the end.
fn unknown_percent(template: &[u8]) -> Option<String> {
    let mut i = 0;
    while i < template.len() {
        if template[i] == b'%' {
            match template.get(i + 1) {
                Some(b'p') | Some(b'%') => i += 2,
                Some(_) => {
                    let c = String::from_utf8_lossy(&template[i + 1..]);
                    return Some(format!("%{}", c.chars().next().unwrap_or('?')));
                }
                None => return Some("%".to_string()),
            }
        } else {
            i += 1;
        }
    }
    None
}

/// HIP's reading of a boolean environment flag (HIP_HOST_COHERENT):
/// "1"/"true"/"yes"/"on" or any nonzero number turn it on.
pub fn env_flag_is_set(v: &OsStr) -> bool {
    let Some(s) = v.to_str() else { return false };
    let s = s.trim().to_ascii_lowercase();
    matches!(s.as_str(), "true" | "yes" | "on") || s.parse::<i64>().is_ok_and(|n| n != 0)
}

/// ROCr's reading of its boolean variables (HSA_FORCE_FINE_GRAIN_PCIE and
/// the like): on only when the value is exactly "1"
/// (ROCR-Runtime core/util/flag.h: `fine_grain_pcie_ = (var == "1")`).
pub fn rocr_flag_is_set(v: &OsStr) -> bool {
    v.as_encoded_bytes() == b"1"
}

/// RMCP_TARGETS as librmcp reads it (`None`: unset): the targets to use
/// and, when the value is not valid, the warning librmcp prints. `rmcp
/// doctor` and `rmcp kernel-params` use the same reading, so they say what
/// the library will do.
pub fn read_targets(v: Option<&OsStr>) -> (Targets, Option<String>) {
    let Some(v) = v else {
        return (Targets::default(), None);
    };
    // Each piece is shortened on its own, so every size quoted is that
    // piece's own.
    let q = |s: &str| shown(OsStr::new(s));
    let problem = match v.to_str().map(Targets::parse) {
        Some(Ok(t)) => return (t, None),
        Some(Err(bad)) => format!(
            "RMCP_TARGETS='{}' is not valid ({}; accepted: comma-separated names and ranges such as gfx1030,gfx1010-gfx1013); using {DEFAULT_TARGETS_TEXT}",
            shown(v),
            match bad {
                BadTargets::EmptyItem => "an empty item".to_string(),
                BadTargets::NotAName { name, item } if name == item => {
                    format!("'{}' is not a gfx name", q(name))
                }
                BadTargets::NotAName { name, item } => {
                    format!("'{}' in '{}' is not a gfx name", q(name), q(item))
                }
                BadTargets::Backwards(item) => format!("'{}' is a range that runs backwards", q(item)),
            }
        ),
        None => invalid(
            "RMCP_TARGETS",
            v,
            "comma-separated names and ranges such as gfx1030,gfx1010-gfx1013",
            DEFAULT_TARGETS_TEXT,
        ),
    };
    (Targets::default(), Some(problem))
}

impl Config {
    /// Builds the configuration. `get` looks a variable up; `secure` is true
    /// in AT_SECURE processes, where no RMCP_* variable is trusted and rmcp
    /// only forwards. Returns the config and one message per invalid value.
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<OsString>,
        secure: bool,
    ) -> (Config, Vec<String>) {
        let mut cfg = Config::default();
        let mut problems = Vec::new();
        if secure {
            cfg.enabled = false;
            cfg.mode = Mode::Off;
            cfg.log_level = LogLevel::Off;
            return (cfg, problems);
        }
        if let Some(v) = get(var::MODE) {
            match parse_mode(&v) {
                Some(m) => cfg.mode = m,
                None => problems.push(invalid(
                    var::MODE,
                    &v,
                    &MODE_NAMES.join(", "),
                    Mode::Auto.name(),
                )),
            }
        }
        let (targets, problem) = read_targets(get(var::TARGETS).as_deref());
        cfg.targets = targets;
        problems.extend(problem);
        if let Some(v) = get(var::LOG) {
            match parse_level(&v) {
                Some(l) => cfg.log_level = l,
                None => problems.push(invalid(
                    var::LOG,
                    &v,
                    &LOG_LEVEL_NAMES.join(", "),
                    LOG_LEVEL_NAMES[LogLevel::Warn as usize],
                )),
            }
        }
        if let Some(v) = get(var::ROCM_CALLERS) {
            match parse_rocm_callers(&v) {
                Some(include) => cfg.include_rocm_callers = include,
                None => problems.push(invalid(
                    var::ROCM_CALLERS,
                    &v,
                    &ROCM_CALLERS_NAMES.join(", "),
                    ROCM_CALLERS_NAMES[0],
                )),
            }
        }
        for (var, slot) in [
            (var::HIP_LIBRARY, &mut cfg.hip_library),
            (var::HSA_LIBRARY, &mut cfg.hsa_library),
            (var::FAULT_REPORT, &mut cfg.fault_report),
            (var::SYSFS_ROOT, &mut cfg.sysfs_root),
        ] {
            if let Some(v) = get(var) {
                match parse_path(&v) {
                    Ok(p) => {
                        if var == var::FAULT_REPORT {
                            if let Some(seq) = unknown_percent(p.as_bytes()) {
                                problems.push(format!(
                                    "{var}='{}' contains '{}', which is not expanded (accepted: %p for the process id, %% for a %); it is kept as written",
                                    shown(&p),
                                    shown(OsStr::new(&seq))
                                ));
                            }
                        }
                        *slot = Some(p)
                    }
                    Err(why) => problems.push(format!(
                        "{var}='{}' is not valid ({why}; accepted: a file path); ignoring it",
                        shown(&v)
                    )),
                }
            }
        }
        cfg.host_coherent_env = get(var::HIP_HOST_COHERENT).is_some_and(|v| env_flag_is_set(&v));
        cfg.hsa_override = get(var::HSA_OVERRIDE_GFX_VERSION)
            .filter(|v| !v.is_empty())
            .map(|v| v.to_string_lossy().chars().take(SHOWN_VALUE_MAX).collect());
        #[cfg(feature = "fault-injection")]
        {
            cfg.test_panic = get(var::TEST_PANIC).is_some_and(|v| v == "policy");
        }
        (cfg, problems)
    }

    /// Reads the real process environment.
    pub fn from_process_env(secure: bool) -> (Config, Vec<String>) {
        Config::from_lookup(|k| std::env::var_os(k), secure)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::arch::Gfx;
    use std::collections::HashMap;

    fn cfg(vars: &[(&str, &str)]) -> (Config, Vec<String>) {
        let map: HashMap<String, OsString> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned(), false)
    }

    #[test]
    fn reads_the_override_and_the_sysfs_root() {
        let (c, p) = cfg(&[
            ("HSA_OVERRIDE_GFX_VERSION", "10.3.0"),
            ("RMCP_SYSFS_ROOT", "/fixtures/rx5700"),
        ]);
        assert!(p.is_empty());
        assert_eq!(c.hsa_override.as_deref(), Some("10.3.0"));
        assert_eq!(
            c.sysfs_root.as_deref(),
            Some(OsStr::new("/fixtures/rx5700"))
        );
        assert_eq!(
            cfg(&[("HSA_OVERRIDE_GFX_VERSION", "")]).0.hsa_override,
            None
        );
        let (c, p) = cfg(&[("RMCP_SYSFS_ROOT", "")]);
        assert_eq!(c.sysfs_root, None);
        assert!(p[0].starts_with("RMCP_SYSFS_ROOT='' is not valid"), "{p:?}");
    }

    #[test]
    fn reads_exactly_the_listed_variables() {
        let asked = std::cell::RefCell::new(Vec::new());
        Config::from_lookup(
            |k| {
                asked.borrow_mut().push(k.to_string());
                None
            },
            false,
        );
        let mut asked = asked.into_inner();
        let mut listed: Vec<String> = RMCP_VARIABLES
            .iter()
            .chain(ROCM_VARIABLES)
            .map(|v| v.to_string())
            .filter(|v| cfg!(feature = "fault-injection") || v != var::TEST_PANIC)
            .collect();
        asked.sort();
        listed.sort();
        assert_eq!(asked, listed);
    }

    #[test]
    fn names_and_values_agree() {
        for m in Mode::ALL {
            assert_eq!(parse_mode(OsStr::new(m.name())), Some(m));
        }
        for (l, n) in LogLevel::ALL.iter().zip(LOG_LEVEL_NAMES) {
            assert_eq!(parse_level(OsStr::new(n)), Some(*l));
        }
    }

    #[test]
    fn defaults_when_nothing_is_set() {
        let (c, p) = cfg(&[]);
        assert_eq!(c, Config::default());
        assert!(p.is_empty());
        assert_eq!(c.mode, Mode::Auto);
        assert_eq!(c.log_level, LogLevel::Warn);
    }

    #[test]
    fn accepts_every_documented_value() {
        for (v, m) in [
            ("auto", Mode::Auto),
            ("FORCE", Mode::Force),
            (" off ", Mode::Off),
        ] {
            let (c, p) = cfg(&[("RMCP_MODE", v)]);
            assert_eq!(c.mode, m);
            assert!(p.is_empty());
        }
        for (v, l) in [
            ("off", LogLevel::Off),
            ("error", LogLevel::Error),
            ("warn", LogLevel::Warn),
            ("info", LogLevel::Info),
            ("debug", LogLevel::Debug),
            ("trace", LogLevel::Trace),
        ] {
            assert_eq!(cfg(&[("RMCP_LOG", v)]).0.log_level, l);
        }
        let (c, p) = cfg(&[
            ("RMCP_TARGETS", "gfx1100,gfx1030-gfx1031"),
            ("RMCP_HIP_LIBRARY", "/x/libamdhip64.so.6"),
        ]);
        assert!(p.is_empty());
        assert!(c.targets.contains(Gfx::new(11, 0, 0)));
        assert!(!c.targets.contains(Gfx::new(10, 1, 0)));
        assert_eq!(
            c.hip_library.as_deref(),
            Some(OsStr::new("/x/libamdhip64.so.6"))
        );
    }

    #[test]
    fn bad_values_get_one_message_each_and_the_default() {
        let (c, p) = cfg(&[
            ("RMCP_MODE", "fast"),
            ("RMCP_LOG", "loud"),
            ("RMCP_TARGETS", "rdna2"),
            ("RMCP_HIP_LIBRARY", ""),
        ]);
        assert_eq!(c.mode, Mode::Auto);
        assert_eq!(c.log_level, LogLevel::Warn);
        assert_eq!(c.targets, Targets::default());
        assert_eq!(c.hip_library, None);
        assert_eq!(p.len(), 4, "{p:?}");
        assert_eq!(
            p[0],
            "RMCP_MODE='fast' is not valid (accepted: auto, force, off); using auto"
        );
        assert!(
            p[1].starts_with("RMCP_TARGETS='rdna2' is not valid ('rdna2' is not a gfx name"),
            "{}",
            p[1]
        );
        assert!(p[1].ends_with("using gfx1010-gfx1013,gfx1030-gfx1036"));
        assert_eq!(p[2], "RMCP_LOG='loud' is not valid (accepted: off, error, warn, info, debug, trace); using warn");
        assert!(p[3].starts_with("RMCP_HIP_LIBRARY='' is not valid (it is empty"));
        assert!(p.iter().all(|m| !m.contains('\n')));
    }

    /// Issue 18 item 15: each size a message quotes is the size of the
    /// piece it quotes (a 130 KB value was quoted as 130002 bytes).
    #[test]
    fn a_long_targets_value_quotes_its_own_size() {
        let long = "a".repeat(130_000);
        let (_, p) = cfg(&[("RMCP_TARGETS", &long)]);
        let head = "a".repeat(SHOWN_VALUE_MAX);
        assert_eq!(
            p,
            vec![format!("RMCP_TARGETS='{head}... (130000 bytes)' is not valid ('{head}... (130000 bytes)' is not a gfx name; accepted: comma-separated names and ranges such as gfx1030,gfx1010-gfx1013); using gfx1010-gfx1013,gfx1030-gfx1036")]
        );
        let range = format!("gfx1030-{long}");
        let (_, p) = cfg(&[("RMCP_TARGETS", &range)]);
        assert!(
            p[0].contains(&format!("('{head}... (130000 bytes)' in 'gfx1030-")),
            "{}",
            p[0]
        );
        assert!(
            p[0].contains("... (130008 bytes)' is not a gfx name"),
            "{}",
            p[0]
        );
        let (_, p) = cfg(&[("RMCP_TARGETS", "gfx1031-gfx1030")]);
        assert!(
            p[0].contains("('gfx1031-gfx1030' is a range that runs backwards;"),
            "{}",
            p[0]
        );
    }

    /// Issue 18 item 15: RMCP_FAULT_REPORT expands %p and %% only; any other
    /// % sequence is kept, and said so once.
    #[test]
    fn an_unknown_percent_in_the_report_path_is_named() {
        for (path, seq) in [
            ("/r/fault-%d.json", Some("%d")),
            ("/r/100%", Some("%")),
            ("/r/%%d-%p-%t", Some("%t")),
            ("/r/%%p-%p.json", None),
            ("/r/plain.json", None),
        ] {
            let (c, p) = cfg(&[("RMCP_FAULT_REPORT", path)]);
            assert_eq!(c.fault_report.as_deref(), Some(OsStr::new(path)));
            match seq {
                Some(seq) => assert_eq!(
                    p,
                    vec![format!("RMCP_FAULT_REPORT='{path}' contains '{seq}', which is not expanded (accepted: %p for the process id, %% for a %); it is kept as written")]
                ),
                None => assert!(p.is_empty(), "{path}: {p:?}"),
            }
        }
    }

    #[test]
    fn empty_and_long_values_are_reported_shortly() {
        let long = "x".repeat(100_000);
        let (c, p) = cfg(&[
            ("RMCP_MODE", ""),
            ("RMCP_TARGETS", &long),
            ("RMCP_FAULT_REPORT", &long),
        ]);
        assert_eq!(c.mode, Mode::Auto);
        assert_eq!(c.fault_report, None);
        assert_eq!(p.len(), 3);
        assert!(p.iter().all(|m| m.len() < 400), "{p:?}");
        assert!(p[1].contains("(100000 bytes)"));
    }

    #[test]
    fn control_characters_and_non_utf8_are_escaped() {
        let (_, p) = cfg(&[("RMCP_MODE", "a\nb\x1b")]);
        assert_eq!(p.len(), 1);
        assert!(!p[0].contains('\n') && !p[0].contains('\x1b'), "{}", p[0]);
        let bad = OsString::from(std::ffi::OsStr::from_bytes(b"\xff\xfe"));
        let (c, p) = Config::from_lookup(|k| (k == "RMCP_LOG").then(|| bad.clone()), false);
        assert_eq!(c.log_level, LogLevel::Warn);
        assert_eq!(p.len(), 1);
    }

    #[test]
    fn secure_processes_ignore_the_environment() {
        let (c, p) = Config::from_lookup(|_| Some(OsString::from("force")), true);
        assert!(!c.enabled);
        assert_eq!(c.mode, Mode::Off);
        assert_eq!(c.log_level, LogLevel::Off);
        assert!(p.is_empty());
    }

    #[test]
    fn rocr_flags_are_on_only_for_1_and_targets_read_once() {
        assert!(rocr_flag_is_set(OsStr::new("1")));
        for v in ["true", "yes", " 1", "2", ""] {
            assert!(!rocr_flag_is_set(OsStr::new(v)), "{v}");
        }
        assert!(!env_flag_is_set(OsStr::new("enable")));
        assert_eq!(read_targets(None), (Targets::default(), None));
        let (t, why) = read_targets(Some(OsStr::new("")));
        assert_eq!(t, Targets::default());
        assert!(why.unwrap().starts_with("RMCP_TARGETS='' is not valid"));
        let (t, why) = read_targets(Some(OsStr::new("gfx1100")));
        assert!(t.contains_name("gfx1100") && why.is_none());
    }

    #[test]
    fn rocm_callers_are_left_alone_unless_included() {
        assert!(!cfg(&[]).0.include_rocm_callers);
        for (v, include) in [("include", true), (" Include ", true), ("leave", false)] {
            let (c, p) = cfg(&[("RMCP_ROCM_CALLERS", v)]);
            assert_eq!(c.include_rocm_callers, include, "{v}");
            assert!(p.is_empty());
        }
        let (c, p) = cfg(&[("RMCP_ROCM_CALLERS", "1")]);
        assert!(!c.include_rocm_callers);
        assert_eq!(
            p,
            ["RMCP_ROCM_CALLERS='1' is not valid (accepted: leave, include); using leave"]
        );
    }

    #[test]
    fn host_coherent_env_follows_hip_reading() {
        for (v, on) in [
            ("1", true),
            ("true", true),
            ("YES", true),
            ("2", true),
            ("0", false),
            ("", false),
            ("no", false),
        ] {
            assert_eq!(
                cfg(&[("HIP_HOST_COHERENT", v)]).0.host_coherent_env,
                on,
                "{v}"
            );
        }
    }
}
