//! Property tests ("fuzzing") of the environment parsers: `Config::from_lookup`,
//! `Targets::parse`, `Gfx::parse`, `env_flag_is_set`; and, in `doctor.rs`,
//! of `rmcp doctor`'s override, kernel-log, version and taint parsers.
//!
//! No dependency: a seeded xorshift generator builds inputs from a grammar of
//! near-valid pieces (names, ranges, separators, case, whitespace), random
//! bytes (invalid UTF-8, control characters) and very long values. The seeds
//! are in `tests/fuzz/seeds` (one u64 per line), and hand-picked inputs that
//! once mattered are in `tests/fuzz/corpus/*.txt` (one `VAR=value` per line,
//! with `\n`, `\t`, `\\` and `\xHH` escapes, and `*N` at the end to repeat
//! the value N times); both are run on every `cargo
//! test`. `RMCP_FUZZ_CASES=N` runs N cases per seed (default 3000) and
//! `RMCP_FUZZ_SEED=S` adds one seed, for longer runs. A failure prints the
//! seed and the input, escaped: add it to a corpus file.
//!
//! Why a hand-written generator and not proptest: (1) a failure is kept as
//! the literal input (`VAR=value`, escaped) in the corpus, which stays valid
//! when the generator changes; proptest persists failures as seeds of its
//! strategies, which replay a different input once a strategy is edited;
//! (2) every run, local or CI, tests the same committed seeds, and a longer
//! hunt is one variable (`RMCP_FUZZ_SEED`, `RMCP_FUZZ_CASES`); (3) what
//! proptest adds, shrinking, matters little here: each value is a few
//! grammar pieces or a bounded run of bytes, and the report names the
//! variable that broke the property. The generator is the 25 lines of `Rng`
//! plus the grammar, which a proptest strategy would have to restate.
//!
//! Properties, each against an independent oracle written here:
//! - nothing panics, for any input;
//! - each invalid variable yields exactly one message, which names it, is
//!   one line of printable text under 400 bytes, and the setting keeps its
//!   default; valid variables yield no message and take effect;
//! - an AT_SECURE lookup yields the disabled config and no message;
//! - valid architecture names and target lists round-trip through Display.

mod doctor;

use rmcp::arch::{Gfx, Targets};
use rmcp::config::{env_flag_is_set, Config, LogLevel, Mode, RMCP_VARIABLES, ROCM_VARIABLES};
use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15 | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
}

/// Every variable the library reads, from its own vocabulary (rmcp::config).
fn vars() -> impl Iterator<Item = &'static &'static str> {
    RMCP_VARIABLES.iter().chain(ROCM_VARIABLES)
}

// ---------------------------------------------------------------------------
// generators
// ---------------------------------------------------------------------------

fn random_bytes(r: &mut Rng, max: usize) -> Vec<u8> {
    let n = r.below(max + 1);
    (0..n)
        .map(|_| match r.below(6) {
            // NUL cannot be in an environment value.
            0 => 1 + r.below(255) as u8,
            1 => *r.pick(b"\n\r\t\x1b\x7f "),
            2 => *r.pick(b"gfxGFX0123456789abcdef-,:+ "),
            3 => 0x80 + r.below(0x80) as u8,
            _ => 0x20 + r.below(0x5f) as u8,
        })
        .collect()
}

fn gfx_name(r: &mut Rng) -> String {
    let majors = if r.chance(4) { 99 } else { 12 };
    let g = Gfx::new(
        1 + r.below(majors) as u32,
        r.below(16) as u32,
        r.below(16) as u32,
    );
    let mut s = g.to_string();
    if r.chance(5) {
        s = s.to_ascii_uppercase();
    }
    if r.chance(6) {
        s.push_str(r.pick::<&str>(&[":sramecc+:xnack-", ":xnack+", ":"]));
    }
    s
}

/// Near-valid: items of names and ranges, occasionally broken.
fn targets_text(r: &mut Rng) -> String {
    let most = if r.chance(20) { 400 } else { 5 };
    let n = 1 + r.below(most);
    let mut items = Vec::new();
    for _ in 0..n {
        let mut item = if r.chance(3) {
            format!("{}-{}", gfx_name(r), gfx_name(r))
        } else {
            gfx_name(r)
        };
        if r.chance(4) {
            item = format!("{}{item}{}", r.pick(&["", " ", "\t"]), r.pick(&["", " "]));
        }
        if r.chance(25) {
            item = r
                .pick(&[
                    "",
                    "rdna2",
                    "gfx",
                    "gfx10300",
                    "gfx1030-",
                    "-gfx1030",
                    "gfx1036-gfx1030",
                    "gfx1030--gfx1031",
                    "gfx１030",
                    "navi21",
                ])
                .to_string();
        }
        items.push(item);
    }
    items.join(*r.pick(&[",", ",", ",", ", ", ";"]))
}

fn value_for(r: &mut Rng, var: &str) -> OsString {
    let text: Option<String> = match r.below(10) {
        0 => Some(String::new()),
        1 => Some("x".repeat(1 + r.below(10_000))),
        2 | 3 => None,
        _ => Some(match var {
            "RMCP_MODE" => r
                .pick(&[
                    "auto", "force", "off", " FORCE ", "Off", "fast", "on", "auto\n",
                ])
                .to_string(),
            "RMCP_LOG" => r
                .pick(&[
                    "off", "error", "warn", "warning", "info", "debug", "trace", "TRACE ",
                    "verbose", "4",
                ])
                .to_string(),
            "RMCP_TARGETS" => targets_text(r),
            "HIP_HOST_COHERENT" => r
                .pick(&[
                    "1",
                    "0",
                    "true",
                    "yes",
                    "on",
                    "no",
                    "",
                    "-3",
                    " 2 ",
                    "99999999999999999999",
                ])
                .to_string(),
            _ => r
                .pick(&[
                    "/opt/rocm/lib/libamdhip64.so",
                    "libm.so.6",
                    "/tmp/report.json",
                    "a",
                ])
                .to_string(),
        }),
    };
    match text {
        Some(t) => OsString::from(t),
        None => OsString::from_vec(random_bytes(r, 80)),
    }
}

// ---------------------------------------------------------------------------
// oracles (written independently of src/)
// ---------------------------------------------------------------------------

fn oracle_gfx(s: &str) -> Option<Gfx> {
    let s = s.trim();
    let base = s.split(':').next().unwrap_or("");
    let b = base.as_bytes();
    if b.len() < 6 || b.len() > 7 || !b[..3].eq_ignore_ascii_case(b"gfx") {
        return None;
    }
    let rest = &b[3..];
    let (major, tail) = rest.split_at(rest.len() - 2);
    if !major.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let major: u32 = std::str::from_utf8(major).ok()?.parse().ok()?;
    let hex = |c: u8| (c as char).to_digit(16);
    let (minor, stepping) = (hex(tail[0])?, hex(tail[1])?);
    (major > 0).then(|| Gfx::new(major, minor, stepping))
}

fn oracle_targets_ok(s: &str) -> bool {
    s.split(',').all(|item| {
        let item = item.trim();
        !item.is_empty()
            // With target features (':') an item is one name; else a-b is a range.
            && match if item.contains(':') { None } else { item.split_once('-') } {
                Some((a, b)) => {
                    matches!((oracle_gfx(a), oracle_gfx(b)), (Some(x), Some(y)) if x <= y)
                }
                None => oracle_gfx(item).is_some(),
            }
    })
}

fn lower_trim(v: &OsStr) -> Option<String> {
    v.to_str().map(|s| s.trim().to_ascii_lowercase())
}

fn oracle_mode(v: &OsStr) -> Option<Mode> {
    match lower_trim(v)?.as_str() {
        "auto" => Some(Mode::Auto),
        "force" => Some(Mode::Force),
        "off" => Some(Mode::Off),
        _ => None,
    }
}

fn oracle_level(v: &OsStr) -> Option<LogLevel> {
    match lower_trim(v)?.as_str() {
        "off" => Some(LogLevel::Off),
        "error" => Some(LogLevel::Error),
        "warn" | "warning" => Some(LogLevel::Warn),
        "info" => Some(LogLevel::Info),
        "debug" => Some(LogLevel::Debug),
        "trace" => Some(LogLevel::Trace),
        _ => None,
    }
}

fn oracle_path_ok(v: &OsStr) -> bool {
    !v.is_empty() && v.len() <= 4096
}

/// A report path with a `%` that is neither `%p` nor `%%` (kept as written,
/// with a warning).
fn oracle_unknown_percent(v: &OsStr) -> bool {
    let mut bytes = v.as_bytes().iter();
    while let Some(&b) = bytes.next() {
        if b == b'%' && !matches!(bytes.next(), Some(b'p' | b'%')) {
            return true;
        }
    }
    false
}

// ---------------------------------------------------------------------------
// the property
// ---------------------------------------------------------------------------

fn escape(v: &OsStr) -> String {
    let mut s = String::new();
    for &b in v.as_bytes() {
        match b {
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(b as char),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    if s.len() > 300 {
        format!("{}... ({} bytes)", &s[..300], v.len())
    } else {
        s
    }
}

fn describe(env: &BTreeMap<&str, OsString>) -> String {
    env.iter()
        .map(|(k, v)| format!("{k}={}", escape(v)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Checks every property for one environment; Err(explanation) on failure.
fn check(env: &BTreeMap<&str, OsString>) -> Result<(), String> {
    let get = |k: &str| env.get(k).cloned();
    let (cfg, problems) = std::panic::catch_unwind(|| Config::from_lookup(get, false))
        .map_err(|_| "Config::from_lookup panicked".to_string())?;

    // Which variables are invalid, by the oracles.
    let mut invalid: Vec<&str> = Vec::new();
    let mut expect = Config::default();
    for (&k, v) in env {
        match k {
            "RMCP_MODE" => match oracle_mode(v) {
                Some(m) => expect.mode = m,
                None => invalid.push(k),
            },
            "RMCP_LOG" => match oracle_level(v) {
                Some(l) => expect.log_level = l,
                None => invalid.push(k),
            },
            "RMCP_TARGETS" => match v.to_str().filter(|s| oracle_targets_ok(s)) {
                Some(s) => {
                    expect.targets = Targets::parse(s)
                        .map_err(|e| format!("oracle accepts, parse refuses: {e:?}"))?
                }
                None => invalid.push(k),
            },
            "RMCP_HIP_LIBRARY" | "RMCP_HSA_LIBRARY" | "RMCP_FAULT_REPORT" | "RMCP_SYSFS_ROOT" => {
                if oracle_path_ok(v) {
                    let slot = match k {
                        "RMCP_HIP_LIBRARY" => &mut expect.hip_library,
                        "RMCP_HSA_LIBRARY" => &mut expect.hsa_library,
                        "RMCP_SYSFS_ROOT" => &mut expect.sysfs_root,
                        _ => &mut expect.fault_report,
                    };
                    *slot = Some(v.clone());
                    if k == "RMCP_FAULT_REPORT" && oracle_unknown_percent(v) {
                        invalid.push(k);
                    }
                } else {
                    invalid.push(k);
                }
            }
            "RMCP_ROCM_CALLERS" => match v.to_str().map(|s| s.trim().to_ascii_lowercase()) {
                Some(s) if s == "include" => expect.include_rocm_callers = true,
                Some(s) if s == "leave" => expect.include_rocm_callers = false,
                _ => invalid.push(k),
            },
            "HIP_HOST_COHERENT" => expect.host_coherent_env = env_flag_is_set(v),
            // Kept as given (lossy UTF-8, at most 48 characters) for the report.
            "HSA_OVERRIDE_GFX_VERSION" => {
                expect.hsa_override =
                    (!v.is_empty()).then(|| v.to_string_lossy().chars().take(48).collect())
            }
            "RMCP_TEST_PANIC" => {
                expect.test_panic = cfg!(feature = "fault-injection") && v == "policy"
            }
            other => return Err(format!("the oracle does not know {other}")),
        }
    }
    if cfg != expect {
        return Err(format!("config {cfg:?}\nexpected {expect:?}"));
    }
    if problems.len() != invalid.len() {
        return Err(format!(
            "{} messages for {} invalid variables {invalid:?}: {problems:#?}",
            problems.len(),
            invalid.len()
        ));
    }
    let mut named: Vec<&str> = Vec::new();
    for msg in &problems {
        let var = vars()
            .find(|v| msg.starts_with(&format!("{v}='")))
            .ok_or_else(|| format!("message does not start by naming a variable: {msg:?}"))?;
        named.push(var);
        if msg.len() >= 400 || msg.chars().any(|c| c.is_control()) {
            return Err(format!("message not one short printable line: {msg:?}"));
        }
        let kept =
            msg.contains(", which is not expanded (") && msg.ends_with("; it is kept as written");
        if !kept
            && !(msg.contains(" is not valid (")
                && (msg.contains("; using ") || msg.contains("; ignoring it")))
        {
            return Err(format!("message does not say what happens: {msg:?}"));
        }
    }
    named.sort();
    invalid.sort();
    if named != invalid {
        return Err(format!(
            "messages name {named:?}, invalid are {invalid:?}: {problems:#?}"
        ));
    }

    // AT_SECURE: disabled, silent, whatever the environment says.
    let (secure, p) = Config::from_lookup(|k| env.get(k).cloned(), true);
    if secure.enabled || secure.mode != Mode::Off || !p.is_empty() {
        return Err(format!("secure config not inert: {secure:?} {p:?}"));
    }
    Ok(())
}

fn check_round_trips(r: &mut Rng) -> Result<(), String> {
    let g = Gfx::new(
        1 + r.below(99) as u32,
        r.below(16) as u32,
        r.below(16) as u32,
    );
    if Gfx::parse(&g.to_string()) != Some(g) {
        return Err(format!("{g} does not round-trip"));
    }
    let text = targets_text(r);
    let parsed = Targets::parse(&text);
    if parsed.is_ok() != oracle_targets_ok(&text) {
        return Err(format!(
            "Targets::parse({text:?}) = {parsed:?}, oracle disagrees"
        ));
    }
    if let Ok(t) = parsed {
        let shown = t.to_string();
        if Targets::parse(&shown).as_ref() != Ok(&t) {
            return Err(format!("{text:?} -> {shown:?} does not round-trip"));
        }
    }
    // Arbitrary text: never panics, and agrees with the oracle.
    let junk = String::from_utf8_lossy(&random_bytes(r, 24)).into_owned();
    for s in [junk.as_str(), text.as_str()] {
        if Gfx::parse(s) != oracle_gfx(s) {
            return Err(format!(
                "Gfx::parse({s:?}) = {:?}, oracle {:?}",
                Gfx::parse(s),
                oracle_gfx(s)
            ));
        }
    }
    Ok(())
}

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz")
}

fn seeds() -> Vec<u64> {
    let text = std::fs::read_to_string(fuzz_dir().join("seeds")).expect("tests/fuzz/seeds");
    let mut v: Vec<u64> = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(|l| l.parse().unwrap_or_else(|_| panic!("bad seed line {l:?}")))
        .collect();
    if let Some(s) = std::env::var("RMCP_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        v.push(s);
    }
    assert!(!v.is_empty());
    v
}

#[test]
fn random_environments_satisfy_every_property() {
    let cases: usize = std::env::var("RMCP_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000);
    let mut total = 0;
    for seed in seeds() {
        let mut r = Rng::new(seed);
        for case in 0..cases {
            let mut env = BTreeMap::new();
            for &var in vars() {
                if r.chance(2) {
                    env.insert(var, value_for(&mut r, var));
                }
            }
            if let Err(why) = check(&env) {
                panic!(
                    "seed {seed} case {case}: {why}\n--- input (add to tests/fuzz/corpus/)\n{}",
                    describe(&env)
                );
            }
            if let Err(why) = check_round_trips(&mut r) {
                panic!("seed {seed} case {case}: {why}");
            }
            total += 1;
        }
    }
    eprintln!("{total} random environments checked");
}

fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            match b[i + 1] {
                b'n' => out.push(b'\n'),
                b't' => out.push(b'\t'),
                b'\\' => out.push(b'\\'),
                b'x' if i + 3 < b.len() => {
                    let h = std::str::from_utf8(&b[i + 2..i + 4]).unwrap();
                    out.push(u8::from_str_radix(h, 16).expect("\\xHH"));
                    i += 4;
                    continue;
                }
                c => panic!("unknown escape \\{}", c as char),
            }
            i += 2;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

#[test]
fn the_corpus_satisfies_every_property() {
    let mut files: Vec<_> = std::fs::read_dir(fuzz_dir().join("corpus"))
        .expect("tests/fuzz/corpus")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    let mut n = 0;
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for (i, line) in text.lines().enumerate() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let (var, value) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("{}:{}: not VAR=value", f.display(), i + 1));
            let var = vars()
                .find(|v| **v == var)
                .unwrap_or_else(|| panic!("{}:{}: unknown variable {var}", f.display(), i + 1));
            let mut value = unescape(value);
            // A value ending in `*N` (N decimal) stands for the rest repeated
            // N times, to keep long values short in the corpus.
            if let Some(pos) = value.iter().rposition(|&c| c == b'*') {
                if let Ok(count) = std::str::from_utf8(&value[pos + 1..])
                    .unwrap_or("")
                    .parse::<usize>()
                {
                    value = value[..pos].repeat(count);
                }
            }
            let env = BTreeMap::from([(*var, OsString::from_vec(value))]);
            if let Err(why) = check(&env) {
                panic!("{}:{}: {why}\n{}", f.display(), i + 1, describe(&env));
            }
            if let Some(s) = env[var].to_str() {
                assert_eq!(Gfx::parse(s), oracle_gfx(s), "{}:{}", f.display(), i + 1);
                assert_eq!(
                    Targets::parse(s).is_ok(),
                    oracle_targets_ok(s),
                    "{}:{}",
                    f.display(),
                    i + 1
                );
            }
            n += 1;
        }
    }
    eprintln!("{n} corpus entries checked");
}
