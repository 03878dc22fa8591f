//! HSA_OVERRIDE_GFX_VERSION and its per-node form wherever they are set:
//! the environment, the user's shell start-up files, /etc/environment,
//! /etc/profile.d, environment.d, systemd units and drop-ins, and compose /
//! .env files of the current directory. Tools set it behind the user's back
//! (installers append `export` lines, service files carry `Environment=`),
//! so doctor names each place and says what the value does on each GPU.

use super::input::{self, Keep, Text};
use super::{Finding, Severity};
use crate::json::{Json, JsonObj};
use crate::kfd::Gpu;
use rmcp::arch::{override_var_node, Gfx, OVERRIDE_VAR};
use rmcp::causes::node_override;
use std::path::{Path, PathBuf};

/// One assignment of an override variable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    /// HSA_OVERRIDE_GFX_VERSION or HSA_OVERRIDE_GFX_VERSION_<node>.
    pub var: String,
    /// The per-node form's node.
    pub node: Option<u32>,
    pub value: String,
}

/// Where an assignment was found.
#[derive(Clone, Debug)]
pub struct Setting {
    pub a: Assignment,
    /// None: this process's environment.
    pub file: Option<PathBuf>,
    pub line: usize,
    /// What kind of file, and so who reads it.
    pub kind: &'static str,
}

impl Setting {
    pub fn place(&self) -> String {
        match &self.file {
            Some(p) => format!("{}:{}", p.display(), self.line),
            None => "the environment".to_string(),
        }
    }
}

/// Finds the assignments of override variables on one line of a shell
/// script, environment file, systemd unit, compose file or .env file:
/// `export V=x`, `V="x"`, `set -gx V x` (fish), `Environment="V=x" ...`,
/// `- V=x` and `V: "x"` (compose). Uses (`$V`, `${V}`), `unset V` and
/// comments are not assignments.
pub fn parse_line(line: &str) -> Vec<Assignment> {
    let t = line.trim_start();
    if t.starts_with('#') || t.starts_with(';') || t.starts_with("//") {
        return Vec::new();
    }
    let fish_set = t.starts_with("set ")
        && t.split_whitespace()
            .any(|w| w.starts_with('-') && w.contains('x'));
    let mut out = Vec::new();
    let b = line.as_bytes();
    let mut from = 0;
    while let Some(i) = line[from..].find(OVERRIDE_VAR).map(|i| i + from) {
        from = i + OVERRIDE_VAR.len();
        // Part of a longer name, or a use ($V, ${V}).
        if i > 0 && (b[i - 1].is_ascii_alphanumeric() || matches!(b[i - 1], b'_' | b'$' | b'{')) {
            continue;
        }
        let mut end = from;
        if b.get(end) == Some(&b'_') {
            let digits = b[end + 1..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            if digits == 0 {
                continue;
            }
            end += 1 + digits;
        }
        if b.get(end)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
        {
            continue;
        }
        let var = &line[i..end];
        let Some(node) = override_var_node(var) else {
            continue;
        };
        if line[..i].trim_end().ends_with("unset") {
            continue;
        }
        // The separator: '=' (shell, env files, systemd, compose lists),
        // ':' (compose maps; a closing quote may come first), or blanks
        // after fish's `set -x`.
        let mut j = end;
        while matches!(b.get(j), Some(b'"' | b'\'')) {
            j += 1;
        }
        let k = j + b[j..]
            .iter()
            .take_while(|c| **c == b' ' || **c == b'\t')
            .count();
        let value_start = match b.get(k) {
            Some(b'=') if k == j => k + 1,
            Some(b':') => k + 1,
            // ~/.pam_environment: `VAR DEFAULT=value` / `VAR OVERRIDE=value`
            Some(_) if k > j && line[k..].starts_with("DEFAULT=") => k + 8,
            Some(_) if k > j && line[k..].starts_with("OVERRIDE=") => k + 9,
            Some(_) if fish_set && k > j => k,
            _ => continue,
        };
        let mut rest = line[value_start..]
            .trim_start()
            .trim_start_matches(['"', '\'']);
        // Compose's ${VAR:-default} / ${VAR-default}: the default is what
        // runs when VAR is unset.
        if let Some(inner) = rest.strip_prefix("${") {
            let inner = inner.split('}').next().unwrap_or("");
            rest = inner.split_once('-').map_or("", |(_, d)| d);
        }
        let value: String = rest
            .chars()
            .take_while(|c| {
                !c.is_whitespace() && !matches!(c, '"' | '\'' | ';' | '#' | ')' | '`' | ',')
            })
            // Any longer value is invalid anyway; messages stay short.
            .take(64)
            .collect();
        from = value_start;
        out.push(Assignment {
            var: var.to_string(),
            node,
            value,
        });
    }
    out
}

/// The variable and value that apply to KFD node `node`, by libhsakmt's
/// precedence as rmcp::causes::node_override states it (the per-node form
/// first, even when invalid).
pub fn applying<'a>(
    node: u32,
    lookup: impl Fn(&str) -> Option<&'a str>,
) -> Option<(String, &'a str)> {
    let per_node = format!("{OVERRIDE_VAR}_{node}");
    let (value, is_per_node) = node_override(lookup(&per_node), lookup(OVERRIDE_VAR))?;
    Some((
        if is_per_node {
            per_node
        } else {
            OVERRIDE_VAR.to_string()
        },
        value,
    ))
}

/// What one value does on one GPU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Names the GPU's own ISA: no change.
    Harmless,
    /// Another ISA of the same major.minor family.
    SameFamily(Gfx),
    /// A different instruction set.
    WrongIsa(Gfx),
    /// Not MAJOR.MINOR.STEPPING: libhsakmt stops reading the topology.
    Invalid,
    /// A per-node variable for this node is read first.
    Shadowed(String),
}

impl Effect {
    pub fn of(card: Gfx, value: &str) -> Effect {
        match Gfx::from_override(value) {
            None => Effect::Invalid,
            Some(o) if o == card => Effect::Harmless,
            Some(o) if o.major == card.major && o.minor == card.minor => Effect::SameFamily(o),
            Some(o) => Effect::WrongIsa(o),
        }
    }

    pub fn severity(&self) -> Severity {
        match self {
            Effect::WrongIsa(_) => Severity::Error,
            Effect::SameFamily(_) | Effect::Invalid => Severity::Warning,
            Effect::Harmless | Effect::Shadowed(_) => Severity::Info,
        }
    }

    pub fn id(&self) -> &'static str {
        match self {
            Effect::Harmless => "harmless",
            Effect::SameFamily(_) => "same-family",
            Effect::WrongIsa(_) => "wrong-isa",
            Effect::Invalid => "invalid",
            Effect::Shadowed(_) => "shadowed",
        }
    }

    pub fn describe(&self, gpu: &Gpu, card: Gfx) -> String {
        let who = gpu.label();
        match self {
            Effect::Harmless => format!("{who}: names its own ISA, harmless"),
            Effect::SameFamily(o) => format!(
                "{who}: loads {o} code on {card} hardware, same family ({}), usually works but is unsupported",
                card.family().unwrap_or("same major.minor")
            ),
            Effect::WrongIsa(o) => format!(
                "{who}: runs {o} code on {card} hardware, a different instruction set (wrong code: expect invalid device function and memory access faults)"
            ),
            Effect::Invalid => format!(
                "{who}: not MAJOR.MINOR.STEPPING, so libhsakmt rejects it and ROCm finds no GPU"
            ),
            Effect::Shadowed(by) => format!("{who}: not used, {by} wins there"),
        }
    }
}

/// Where scanned paths live: `root` prefixes every machine path (the
/// fixture trees of the tests), `home` is the invoking user's home as the
/// machine names it, `cwd` the current directory (a real path).
pub struct Places<'a> {
    pub root: &'a Path,
    pub home: Option<PathBuf>,
    pub cwd: Option<PathBuf>,
}

impl Places<'_> {
    fn real(&self, machine: &Path) -> PathBuf {
        self.root.join(machine.strip_prefix("/").unwrap_or(machine))
    }
}

const SHELL_FILES: &[&str] = &[
    ".profile",
    ".bash_profile",
    ".bash_login",
    ".bashrc",
    ".bash_aliases",
    ".zshenv",
    ".zprofile",
    ".zshrc",
    ".zlogin",
    ".config/fish/config.fish",
    ".pam_environment",
];
const SYSTEM_SHELL_FILES: &[&str] = &[
    "/etc/profile",
    "/etc/bash.bashrc",
    "/etc/zsh/zshenv",
    "/etc/zsh/zshrc",
];
const SYSTEMD_DIRS: &[&str] = &[
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
    "/etc/systemd/user",
    "/usr/lib/systemd/user",
];
const COMPOSE_FILES: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
    "compose.override.yaml",
    "compose.override.yml",
    "docker-compose.override.yaml",
    "docker-compose.override.yml",
    ".env",
];

/// Every file-borne assignment, in a stable order.
pub fn scan_files(p: &Places, findings: &mut Vec<Finding>) -> Vec<Setting> {
    let mut out = Vec::new();
    let scan = |machine: PathBuf,
                real: PathBuf,
                kind: &'static str,
                out: &mut Vec<Setting>,
                f: &mut Vec<Finding>| { scan_file(&machine, &real, kind, out, f) };
    if let Some(home) = &p.home {
        for f in SHELL_FILES {
            let m = home.join(f);
            scan(
                m.clone(),
                p.real(&m),
                "shell start-up file",
                &mut out,
                findings,
            );
        }
        for dir in [".config/fish/conf.d", ".config/environment.d"] {
            let m = home.join(dir);
            let kind = if dir.ends_with("environment.d") {
                "environment.d file"
            } else {
                "shell start-up file"
            };
            for real in input::list_dir(&p.real(&m), &m.display().to_string(), findings) {
                let name = real.file_name().unwrap_or_default();
                scan(m.join(name), real, kind, &mut out, findings);
            }
        }
        let user_units = home.join(".config/systemd/user");
        scan_systemd_dir(p, &user_units, &mut out, findings);
    }
    scan(
        PathBuf::from("/etc/environment"),
        p.real(Path::new("/etc/environment")),
        "read by PAM at every login",
        &mut out,
        findings,
    );
    for f in SYSTEM_SHELL_FILES {
        scan(
            PathBuf::from(f),
            p.real(Path::new(f)),
            "system shell start-up file",
            &mut out,
            findings,
        );
    }
    for dir in [
        "/etc/profile.d",
        "/etc/environment.d",
        "/usr/lib/environment.d",
    ] {
        let m = PathBuf::from(dir);
        let kind = if dir.ends_with("profile.d") {
            "profile.d script"
        } else {
            "environment.d file"
        };
        for real in input::list_dir(&p.real(&m), dir, findings) {
            let name = real.file_name().unwrap_or_default();
            scan(m.join(name), real, kind, &mut out, findings);
        }
    }
    for dir in SYSTEMD_DIRS {
        scan_systemd_dir(p, Path::new(dir), &mut out, findings);
    }
    if let Some(cwd) = &p.cwd {
        for f in COMPOSE_FILES {
            let kind = if *f == ".env" {
                "compose .env file"
            } else {
                "compose file"
            };
            scan(cwd.join(f), cwd.join(f), kind, &mut out, findings);
        }
    }
    out
}

/// Units (`*.service`) and drop-ins (`*.d/*.conf`) of one systemd unit
/// directory, and the EnvironmentFile= files they name.
fn scan_systemd_dir(p: &Places, dir: &Path, out: &mut Vec<Setting>, findings: &mut Vec<Finding>) {
    for real in input::list_dir(&p.real(dir), &dir.display().to_string(), findings) {
        let name = real
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let machine = dir.join(&name);
        if name.ends_with(".d") && real.is_dir() {
            for conf in input::list_dir(&real, &machine.display().to_string(), findings) {
                let cname = conf
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                if cname.ends_with(".conf") {
                    scan_unit(
                        p,
                        &machine.join(&cname),
                        &conf,
                        "systemd drop-in",
                        out,
                        findings,
                    );
                }
            }
        } else if name.ends_with(".service") {
            scan_unit(p, &machine, &real, "systemd unit", out, findings);
        }
    }
}

fn scan_unit(
    p: &Places,
    machine: &Path,
    real: &Path,
    kind: &'static str,
    out: &mut Vec<Setting>,
    findings: &mut Vec<Finding>,
) {
    let Some(text) = read(machine, real, findings) else {
        return;
    };
    collect(machine, &text, kind, out);
    for line in text.lines() {
        let Some(v) = line.trim().strip_prefix("EnvironmentFile=") else {
            continue;
        };
        let file = v.trim().trim_start_matches('-').trim_matches('"');
        if file.starts_with('/') && !file.contains('%') {
            let m = PathBuf::from(file);
            scan_file(
                &m,
                &p.real(&m),
                "EnvironmentFile of a systemd unit",
                out,
                findings,
            );
        }
    }
}

fn read(machine: &Path, real: &Path, findings: &mut Vec<Finding>) -> Option<String> {
    match input::read_text(
        real,
        &machine.display().to_string(),
        input::CONFIG_CAP,
        Keep::Head,
        findings,
    ) {
        Text::Ok { text, .. } => Some(text),
        _ => None,
    }
}

fn scan_file(
    machine: &Path,
    real: &Path,
    kind: &'static str,
    out: &mut Vec<Setting>,
    findings: &mut Vec<Finding>,
) {
    if let Some(text) = read(machine, real, findings) {
        collect(machine, &text, kind, out);
    }
}

fn collect(machine: &Path, text: &str, kind: &'static str, out: &mut Vec<Setting>) {
    if !text.contains(OVERRIDE_VAR) {
        return;
    }
    for (n, line) in text.lines().enumerate() {
        for a in parse_line(line) {
            out.push(Setting {
                a,
                file: Some(machine.to_path_buf()),
                line: n + 1,
                kind,
            });
        }
    }
}

/// The override variables of this process's environment.
pub fn from_environment(vars: &[(String, String)]) -> Vec<Setting> {
    vars.iter()
        .filter_map(|(k, v)| {
            let node = override_var_node(k)?;
            Some(Setting {
                a: Assignment {
                    var: k.clone(),
                    node,
                    value: v.clone(),
                },
                file: None,
                line: 0,
                kind: "environment of this process",
            })
        })
        .collect()
}

/// The effect of `s` on each GPU, with libhsakmt's precedence applied among
/// the settings of the same place (`peers`: same file, or the environment).
pub fn effects<'g>(
    s: &Setting,
    peers: &[&Setting],
    gpus: &'g [Gpu],
) -> Vec<(&'g Gpu, Gfx, Effect)> {
    let mut out = Vec::new();
    for g in gpus {
        let Some(card) = g.gfx else { continue };
        if s.a.node.is_some_and(|n| n != g.node) {
            continue;
        }
        let lookup = |name: &str| {
            peers
                .iter()
                .rev()
                .find(|p| p.a.var == name)
                .map(|p| p.a.value.as_str())
        };
        let later = peers
            .iter()
            .rev()
            .find(|p| p.a.var == s.a.var && p.line > s.line);
        let effect = match applying(g.node, lookup) {
            _ if later.is_some() => Effect::Shadowed(format!(
                "the same variable set again at line {}",
                later.map_or(0, |p| p.line)
            )),
            Some((var, _)) if var != s.a.var => {
                let by = peers
                    .iter()
                    .rev()
                    .find(|p| p.a.var == var)
                    .map(|p| match &p.file {
                        Some(_) => format!("{var} (line {}, read first by libhsakmt)", p.line),
                        None => format!("{var} (read first by libhsakmt)"),
                    });
                Effect::Shadowed(by.unwrap_or(var))
            }
            _ => Effect::of(card, &s.a.value),
        };
        out.push((g, card, effect));
    }
    out
}

/// `hsa-override-in-file` findings (one per file assignment) and
/// `hsa-override-unused-node` for per-node variables naming a node without
/// a GPU; returns the `overrides` JSON of every setting, environment first.
pub fn check(
    env: &[Setting],
    files: &[Setting],
    gpus: &[Gpu],
    findings: &mut Vec<Finding>,
) -> Json {
    let mut all = Vec::new();
    let env_peers: Vec<&Setting> = env.iter().collect();
    for s in env {
        all.push(to_json(s, &effects(s, &env_peers, gpus)));
        unused_node(s, gpus, findings);
    }
    for s in files {
        let peers: Vec<&Setting> = files.iter().filter(|o| o.file == s.file).collect();
        let eff = effects(s, &peers, gpus);
        all.push(to_json(s, &eff));
        if unused_node(s, gpus, findings) {
            continue;
        }
        let severity = eff
            .iter()
            .map(|(_, _, e)| e.severity())
            .max()
            .unwrap_or(Severity::Info);
        let what = if eff.is_empty() {
            "no GPU of this topology to judge it against".to_string()
        } else {
            eff.iter()
                .map(|(g, c, e)| e.describe(g, *c))
                .collect::<Vec<_>>()
                .join("; ")
        };
        let fix = match severity {
            Severity::Info => None,
            _ => Some(format!(
                "delete that line (or set it only where it is needed, per GPU with {OVERRIDE_VAR}_<node>), then start a new login shell or restart the service"
            )),
        };
        findings.push(Finding::new(
            "hsa-override-in-file",
            severity,
            format!(
                "{} ({}) sets {}={}: {what}.",
                s.place(),
                s.kind,
                s.a.var,
                s.a.value
            ),
            fix,
        ));
    }
    Json::Array(all)
}

/// A per-node variable for a node that is not a GPU here. True when reported.
fn unused_node(s: &Setting, gpus: &[Gpu], findings: &mut Vec<Finding>) -> bool {
    let Some(n) = s.a.node else { return false };
    if gpus.iter().any(|g| g.node == n) {
        return false;
    }
    findings.push(Finding::new(
        "hsa-override-unused-node",
        Severity::Info,
        format!(
            "{} sets {}={}, but node {n} is not a GPU in this KFD topology, so it changes nothing here.",
            s.place(),
            s.a.var,
            s.a.value
        ),
        None,
    ));
    true
}

fn to_json(s: &Setting, eff: &[(&Gpu, Gfx, Effect)]) -> Json {
    Json::obj()
        .with("variable", s.a.var.as_str())
        .with("value", s.a.value.as_str())
        .with("node", s.a.node)
        .with(
            "source",
            if s.file.is_some() {
                "file"
            } else {
                "environment"
            },
        )
        .with("file", s.file.as_ref().map(|p| p.display().to_string()))
        .with("line", (s.line > 0).then_some(s.line))
        .with("kind", s.kind)
        .with(
            "effects",
            Json::Array(
                eff.iter()
                    .map(|(g, c, e)| {
                        let runs = match e {
                            Effect::SameFamily(o) | Effect::WrongIsa(o) => Some(o.to_string()),
                            _ => None,
                        };
                        Json::obj()
                            .with("node", g.node)
                            .with("gfx", c.to_string())
                            .with("effect", e.id())
                            .with("runs", runs)
                    })
                    .collect(),
            ),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &str) -> Option<(String, String)> {
        let v = parse_line(line);
        assert!(v.len() <= 1, "{line}: {v:?}");
        v.into_iter().next().map(|a| (a.var, a.value))
    }

    #[test]
    fn every_syntax_that_sets_it() {
        let want = Some(("HSA_OVERRIDE_GFX_VERSION".to_string(), "10.3.0".to_string()));
        for line in [
            "export HSA_OVERRIDE_GFX_VERSION=10.3.0",
            "export HSA_OVERRIDE_GFX_VERSION=\"10.3.0\"  # for my RX 5700",
            "HSA_OVERRIDE_GFX_VERSION='10.3.0'",
            "set -gx HSA_OVERRIDE_GFX_VERSION 10.3.0",
            "Environment=\"HSA_OVERRIDE_GFX_VERSION=10.3.0\"",
            "Environment=HSA_OVERRIDE_GFX_VERSION=10.3.0",
            "      - HSA_OVERRIDE_GFX_VERSION=10.3.0",
            "      - \"HSA_OVERRIDE_GFX_VERSION=10.3.0\"",
            "      HSA_OVERRIDE_GFX_VERSION: \"10.3.0\"",
            "      HSA_OVERRIDE_GFX_VERSION: 10.3.0",
            "      \"HSA_OVERRIDE_GFX_VERSION\": \"10.3.0\"",
            "alias sd='HSA_OVERRIDE_GFX_VERSION=10.3.0 python3 launch.py'",
            "      - HSA_OVERRIDE_GFX_VERSION=${GFX_OVERRIDE:-10.3.0}",
            "HSA_OVERRIDE_GFX_VERSION DEFAULT=10.3.0",
            "HSA_OVERRIDE_GFX_VERSION\tOVERRIDE=\"10.3.0\"",
        ] {
            assert_eq!(one(line), want, "{line}");
        }
        assert_eq!(
            one("export HSA_OVERRIDE_GFX_VERSION_1=10.1.0"),
            Some((
                "HSA_OVERRIDE_GFX_VERSION_1".to_string(),
                "10.1.0".to_string()
            ))
        );
        let two = parse_line(
            "Environment=\"HSA_OVERRIDE_GFX_VERSION=10.3.0\" \"HSA_OVERRIDE_GFX_VERSION_2=11.0.0\"",
        );
        assert_eq!(two.len(), 2);
        assert_eq!((two[1].node, two[1].value.as_str()), (Some(2), "11.0.0"));
    }

    #[test]
    fn uses_comments_and_other_names_are_not_assignments() {
        for line in [
            "# export HSA_OVERRIDE_GFX_VERSION=10.3.0",
            "; Environment=HSA_OVERRIDE_GFX_VERSION=10.3.0",
            "echo $HSA_OVERRIDE_GFX_VERSION",
            "echo ${HSA_OVERRIDE_GFX_VERSION}",
            "unset HSA_OVERRIDE_GFX_VERSION",
            "export MY_HSA_OVERRIDE_GFX_VERSION=10.3.0",
            "export HSA_OVERRIDE_GFX_VERSIONS=10.3.0",
            "export HSA_OVERRIDE_GFX_VERSION_=10.3.0",
            "HSA_OVERRIDE_GFX_VERSION",
            "",
        ] {
            assert_eq!(one(line), None, "{line}");
        }
    }

    #[test]
    fn the_per_node_variable_is_read_first() {
        let env = [
            ("HSA_OVERRIDE_GFX_VERSION", "10.3.0"),
            ("HSA_OVERRIDE_GFX_VERSION_2", "10.1.0"),
        ];
        let look = |k: &str| env.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
        assert_eq!(
            applying(2, look),
            Some(("HSA_OVERRIDE_GFX_VERSION_2".to_string(), "10.1.0"))
        );
        assert_eq!(
            applying(1, look),
            Some(("HSA_OVERRIDE_GFX_VERSION".to_string(), "10.3.0"))
        );
        assert_eq!(applying(1, |_| None), None);
    }

    #[test]
    fn effects_follow_the_card() {
        let g1010 = Gfx::new(10, 1, 0);
        let g1031 = Gfx::new(10, 3, 1);
        assert_eq!(
            Effect::of(g1010, "10.3.0"),
            Effect::WrongIsa(Gfx::new(10, 3, 0))
        );
        assert_eq!(
            Effect::of(g1031, "10.3.0"),
            Effect::SameFamily(Gfx::new(10, 3, 0))
        );
        assert_eq!(Effect::of(Gfx::new(10, 3, 0), "10.3.0"), Effect::Harmless);
        assert_eq!(Effect::of(g1031, "gfx1030"), Effect::Invalid);
        assert_eq!(Effect::of(g1031, ""), Effect::Invalid);
        // rocmate's table: RX 5500 (gfx1012) as gfx1034
        assert_eq!(
            Effect::of(Gfx::new(10, 1, 2), "10.3.4"),
            Effect::WrongIsa(Gfx::new(10, 3, 4))
        );
    }
}
