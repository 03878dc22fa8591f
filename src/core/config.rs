//! Configuration from environment variables. Pure: the environment is passed
//! in as a lookup function, so every rule is unit-tested and fuzzed.
//!
//! Every invalid value yields one message naming the variable, the bad value
//! and what is accepted, and the safe default is used instead.

use crate::core::arch::{Targets, DEFAULT_TARGETS_TEXT};
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

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
    pub fn name(self) -> &'static str {
        match self {
            Mode::Auto => "auto",
            Mode::Force => "force",
            Mode::Off => "off",
        }
    }
}

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
    let bytes = value.as_bytes();
    let cut = &bytes[..bytes.len().min(SHOWN_VALUE_MAX)];
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
    if bytes.len() > SHOWN_VALUE_MAX {
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
    match v.to_str()?.trim().to_ascii_lowercase().as_str() {
        "auto" => Some(Mode::Auto),
        "force" => Some(Mode::Force),
        "off" => Some(Mode::Off),
        _ => None,
    }
}

fn parse_level(v: &OsStr) -> Option<LogLevel> {
    match v.to_str()?.trim().to_ascii_lowercase().as_str() {
        "off" => Some(LogLevel::Off),
        "error" => Some(LogLevel::Error),
        "warn" | "warning" => Some(LogLevel::Warn),
        "info" => Some(LogLevel::Info),
        "debug" => Some(LogLevel::Debug),
        "trace" => Some(LogLevel::Trace),
        _ => None,
    }
}

/// RMCP_ROCM_CALLERS: true for "include", false for "leave"; None for
/// anything else.
fn parse_rocm_callers(v: &OsStr) -> Option<bool> {
    match v.to_str()?.trim().to_ascii_lowercase().as_str() {
        "leave" => Some(false),
        "include" => Some(true),
        _ => None,
    }
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
    let problem = match v.to_str().map(Targets::parse) {
        Some(Ok(t)) => return (t, None),
        Some(Err(why)) => format!(
            "RMCP_TARGETS='{}' is not valid ({} is not a gfx name; accepted: comma-separated names and ranges such as gfx1030,gfx1010-gfx1013); using {DEFAULT_TARGETS_TEXT}",
            shown(v),
            shown(OsStr::new(&why))
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
        if let Some(v) = get("RMCP_MODE") {
            match parse_mode(&v) {
                Some(m) => cfg.mode = m,
                None => problems.push(invalid("RMCP_MODE", &v, "auto, force, off", "auto")),
            }
        }
        let (targets, problem) = read_targets(get("RMCP_TARGETS").as_deref());
        cfg.targets = targets;
        problems.extend(problem);
        if let Some(v) = get("RMCP_LOG") {
            match parse_level(&v) {
                Some(l) => cfg.log_level = l,
                None => problems.push(invalid(
                    "RMCP_LOG",
                    &v,
                    "off, error, warn, info, debug, trace",
                    "warn",
                )),
            }
        }
        if let Some(v) = get("RMCP_ROCM_CALLERS") {
            match parse_rocm_callers(&v) {
                Some(include) => cfg.include_rocm_callers = include,
                None => problems.push(invalid("RMCP_ROCM_CALLERS", &v, "leave, include", "leave")),
            }
        }
        for (var, slot) in [
            ("RMCP_HIP_LIBRARY", &mut cfg.hip_library),
            ("RMCP_HSA_LIBRARY", &mut cfg.hsa_library),
            ("RMCP_FAULT_REPORT", &mut cfg.fault_report),
            ("RMCP_SYSFS_ROOT", &mut cfg.sysfs_root),
        ] {
            if let Some(v) = get(var) {
                match parse_path(&v) {
                    Ok(p) => *slot = Some(p),
                    Err(why) => problems.push(format!(
                        "{var}='{}' is not valid ({why}; accepted: a file path); ignoring it",
                        shown(&v)
                    )),
                }
            }
        }
        cfg.host_coherent_env = get("HIP_HOST_COHERENT").is_some_and(|v| env_flag_is_set(&v));
        cfg.hsa_override = get("HSA_OVERRIDE_GFX_VERSION")
            .filter(|v| !v.is_empty())
            .map(|v| v.to_string_lossy().chars().take(SHOWN_VALUE_MAX).collect());
        #[cfg(feature = "fault-injection")]
        {
            cfg.test_panic = get("RMCP_TEST_PANIC").is_some_and(|v| v == "policy");
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
