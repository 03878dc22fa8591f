//! `rmcp doctor`: what is on this machine, what in its configuration is known
//! to cause GPU memory faults on RDNA1/RDNA2, and what the kernel logged.

pub mod bug_report;
pub mod env;
mod gpus;
pub mod input;
pub mod kernel_log;
pub mod overrides;
pub mod params;
pub mod regressions;
pub mod system;
pub mod torch;

use crate::json::{Json, JsonObj};
use crate::kfd;
use rmcp::arch::{code_object_runs_on, generic_target_of, Gfx};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Finding {
    pub id: &'static str,
    pub severity: Severity,
    pub message: String,
    pub fix: Option<String>,
    pub details: Option<Json>,
}

impl Finding {
    pub fn new(
        id: &'static str,
        severity: Severity,
        message: String,
        fix: Option<String>,
    ) -> Finding {
        Finding {
            id,
            severity,
            message: printable(&message),
            fix: fix.map(|f| printable(&f)),
            details: None,
        }
    }

    fn to_json(&self) -> Json {
        let mut j = Json::obj()
            .with("id", self.id)
            .with("severity", self.severity.as_str())
            .with("message", self.message.as_str())
            .with("fix", self.fix.clone());
        if let Some(d) = &self.details {
            j = j.with("details", d.clone());
        }
        j
    }
}

/// `s` with control characters (NUL, escape sequences, newlines from
/// scanned files) shown as U+FFFD: findings quote files and logs, and a
/// terminal or a Markdown file must get one plain line.
pub fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

pub struct Options {
    pub json: bool,
    pub bug_report: Option<PathBuf>,
    pub sysfs_root: Option<PathBuf>,
    pub kernel_log: Option<PathBuf>,
    /// Interpreter for the PyTorch probe; None skips it.
    pub python: Option<String>,
}

/// `rmcp doctor`'s options.
#[derive(Debug, clap::Args)]
#[command(
    args_override_self = true,
    after_help = "exit status: 0 no error findings, 1 at least one error, 2 could not run"
)]
pub struct Args {
    /// Machine-readable report (schema rmcp_doctor 1)
    #[arg(long)]
    pub json: bool,
    /// Read sys/, etc/, proc/, home/ and every other scanned path below DIR
    /// instead of / (the live kernel log is then not read; pass --kernel-log)
    #[arg(long, visible_alias = "root", value_name = "DIR")]
    pub sysfs_root: Option<PathBuf>,
    /// Read the kernel log from FILE instead of journalctl/dmesg
    #[arg(long, value_name = "FILE")]
    pub kernel_log: Option<PathBuf>,
    /// Also write a Markdown bug report for a ROCm/PyTorch issue to FILE
    /// (user name, home directory and host name redacted)
    #[arg(long, value_name = "FILE")]
    pub bug_report: Option<PathBuf>,
    /// Interpreter for the PyTorch check; 'none' skips it
    #[arg(long, value_name = "PATH|none", default_value = "python3")]
    pub python: String,
}

impl Args {
    pub fn options(self) -> Options {
        Options {
            json: self.json,
            bug_report: self.bug_report,
            sysfs_root: self.sysfs_root,
            kernel_log: self.kernel_log,
            python: (self.python != "none").then_some(self.python),
        }
    }
}

/// Reads the live kernel log. Ok((source, text)) or Err(reason).
fn live_kernel_log() -> Result<(String, String), String> {
    let attempts: [(&str, &[&str]); 2] = [
        ("journalctl", &["-k", "-b", "--no-pager", "-q"]),
        ("dmesg", &[]),
    ];
    let mut why = Vec::new();
    for (cmd, args) in attempts {
        match Command::new(cmd)
            .args(args)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
        {
            Ok(o) if o.status.success() && !o.stdout.is_empty() => {
                // The newest LOG_CAP bytes, as for --kernel-log files.
                let cap = input::LOG_CAP as usize;
                let tail = &o.stdout[o.stdout.len().saturating_sub(cap)..];
                let source = if o.stdout.len() > cap {
                    format!(
                        "{cmd} (last {} MiB of {} MiB)",
                        cap >> 20,
                        o.stdout.len() >> 20
                    )
                } else {
                    cmd.to_string()
                };
                return Ok((source, String::from_utf8_lossy(tail).into_owned()));
            }
            Ok(o) => why.push(format!("{cmd} exited with {}", o.status)),
            Err(e) => why.push(format!("{cmd}: {e}")),
        }
    }
    Err(why.join("; "))
}

pub struct Report {
    pub targets: String,
    pub json: Json,
    pub findings: Vec<Finding>,
    pub gpus: Vec<kfd::Gpu>,
    pub root: PathBuf,
    /// (source, text) of the kernel log, when it was read.
    pub log: Option<(String, String)>,
}

/// Runs every check. Err(message) when the report cannot be produced (exit 2).
pub fn collect(o: &Options) -> Result<Report, String> {
    let root = o.sysfs_root.clone().unwrap_or_else(|| PathBuf::from("/"));
    if let Some(r) = &o.sysfs_root {
        if !r.is_dir() {
            return Err(format!("--sysfs-root {}: no such directory", r.display()));
        }
    }
    let mut findings: Vec<Finding> = Vec::new();
    // An explicit log that does not exist is a usage error (exit 2); one
    // that exists but cannot be read as text is a finding.
    let log_text = match &o.kernel_log {
        Some(p) => {
            if let Err(e) = std::fs::symlink_metadata(p) {
                return Err(format!("--kernel-log {}: {}", p.display(), e));
            }
            let shown = format!("--kernel-log {}", p.display());
            match input::read_text(p, &shown, input::LOG_CAP, input::Keep::Tail, &mut findings) {
                input::Text::Ok { text, .. } => Some(Some((format!("file {}", p.display()), text))),
                _ => Some(None),
            }
        }
        None => None,
    };

    let (targets, targets_problem) = kfd::targets_from_env();
    if let Some(p) = targets_problem {
        findings.push(Finding::new(
            "rmcp-targets-invalid",
            Severity::Warning,
            format!("{p}."),
            Some(
                "fix or unset RMCP_TARGETS (e.g. RMCP_TARGETS=gfx1030,gfx1010-gfx1013)".to_string(),
            ),
        ));
    }

    // GPUs
    let scan = kfd::scan(&root, &targets);
    gpus::check(&scan, &mut findings);
    let gfxs: Vec<Gfx> = scan.gpus.iter().filter_map(|g| g.gfx).collect();
    if o.sysfs_root.is_none() && !scan.gpus.is_empty() {
        check_dev_kfd(&mut findings);
    }

    // Environment
    let snapshot = env::EnvSnapshot::from_process();
    let env_json = env::check(&snapshot, &scan.gpus, &root, &mut findings);

    // Overrides in the environment and in the files that set environments
    let places = overrides::Places {
        root: &root,
        home: invoking_home(&root),
        cwd: std::env::current_dir().ok(),
    };
    let from_files = overrides::scan_files(&places, &mut findings);
    let overrides_json = overrides::check(
        &overrides::from_environment(&snapshot.overrides),
        &from_files,
        &scan.gpus,
        &mut findings,
    );

    // amdgpu parameters
    let params = params::check(&root, &gfxs, &mut findings);

    // Kernel log
    let (log_source, log_body) = match log_text {
        Some(Some((s, t))) => (Some(s), Some(t)),
        Some(None) => (None, None),
        None if o.sysfs_root.is_some() => {
            findings.push(Finding::new(
                "kernel-log-not-read",
                Severity::Info,
                "kernel log not read: --sysfs-root was given, and this machine's log does not describe that tree (pass --kernel-log FILE)."
                    .to_string(),
                None,
            ));
            (None, None)
        }
        None => match live_kernel_log() {
            Ok((s, t)) => (Some(s), Some(t)),
            Err(why) => {
                findings.push(Finding::new(
                    "kernel-log-unreadable",
                    Severity::Info,
                    format!("kernel log not readable ({why}); GPU faults and resets could not be checked."),
                    Some("run as root or a member of the systemd-journal/adm group, or pass --kernel-log FILE (e.g. from `sudo dmesg > k.log`)".to_string()),
                ));
                (None, None)
            }
        },
    };
    let log_json = kernel_log::check(
        log_source.as_deref(),
        log_body.as_deref(),
        &scan.gpus,
        &mut findings,
    );

    // Versions, taint and the known regressions they fall into
    let sys = system::read(&root, log_body.as_deref(), &mut findings);
    let system_json = system::check(&sys, &mut findings);
    // A parameter's live value, else the last configured one.
    let param = |name: &str| -> Option<String> {
        let live = params.json.pointer(&format!("/live/{name}"));
        let set = params.json["settings"]
            .as_array()
            .and_then(|a| a.iter().rev().find(|s| s["name"] == name))
            .map(|s| &s["value"]);
        live.or(set).and_then(Json::as_str).map(str::to_string)
    };
    let regressions_json = regressions::check(
        sys.kernel.as_deref(),
        sys.rocm.as_deref(),
        &scan.gpus,
        &param,
        &mut findings,
    );

    // PyTorch
    let torch_json = match &o.python {
        None => Json::Null,
        Some(py) => torch_check(py, &scan.gpus, &mut findings),
    };

    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    let count = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
    let gpus_json = gpus::to_json(&scan.gpus);
    let json = Json::obj()
        .with("rmcp_doctor", 1i64)
        .with("version", env!("CARGO_PKG_VERSION"))
        .with("root", root.display().to_string())
        .with("targets", targets.to_string())
        .with("gpus", gpus_json)
        .with("environment", env_json)
        .with("overrides", overrides_json)
        .with("kernel_params", params.json)
        .with("kernel_log", log_json)
        .with("system", system_json)
        .with("known_regressions", regressions_json)
        .with("pytorch", torch_json)
        .with(
            "findings",
            Json::Array(findings.iter().map(Finding::to_json).collect()),
        )
        .with(
            "summary",
            Json::obj()
                .with("errors", count(Severity::Error))
                .with("warnings", count(Severity::Warning))
                .with("infos", count(Severity::Info)),
        );
    Ok(Report {
        targets: targets.to_string(),
        json,
        findings,
        gpus: scan.gpus,
        root,
        log: log_source.zip(log_body),
    })
}

/// The home directory of the user who runs doctor: under sudo (SUDO_USER
/// set, running as root) that user's home from `<root>/etc/passwd`, since
/// `sudo rmcp doctor` (to read the kernel log) must still check their
/// start-up files; else HOME.
pub fn invoking_home(root: &std::path::Path) -> Option<PathBuf> {
    // SAFETY: geteuid() has no preconditions.
    let as_root = unsafe { libc::geteuid() } == 0;
    if let (true, Ok(user)) = (as_root, std::env::var("SUDO_USER")) {
        let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap_or_default();
        let home = passwd.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 7 && f[0] == user).then(|| PathBuf::from(f[5]))
        });
        if let Some(h) = home.filter(|h| h.is_absolute()) {
            return Some(h);
        }
    }
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .filter(|h| h.is_absolute())
}

/// Can this user open /dev/kfd? (Only for the live system.)
fn check_dev_kfd(findings: &mut Vec<Finding>) {
    let dev = std::path::Path::new("/dev/kfd");
    if !dev.exists() {
        findings.push(Finding::new(
            "kfd-missing",
            Severity::Warning,
            "/dev/kfd does not exist here, so ROCm cannot use the GPUs listed in sysfs."
                .to_string(),
            Some("in a container, pass --device=/dev/kfd --device=/dev/dri".to_string()),
        ));
        return;
    }
    // SAFETY: access() reads a NUL-terminated path.
    let ok = unsafe { libc::access(c"/dev/kfd".as_ptr(), libc::R_OK | libc::W_OK) } == 0;
    if !ok {
        findings.push(Finding::new(
            "kfd-permission",
            Severity::Warning,
            "this user cannot open /dev/kfd for reading and writing, so ROCm sees no GPU.".to_string(),
            Some("add the user to the groups that own /dev/kfd and /dev/dri/renderD* (usually render and video), then log in again".to_string()),
        ));
    }
}

fn torch_check(py: &str, gpus: &[kfd::Gpu], findings: &mut Vec<Finding>) -> Json {
    match torch::run(py, Duration::from_secs(20)) {
        torch::Probe::NoPython(why) => {
            findings.push(Finding::new(
                "python-not-found",
                Severity::Info,
                format!("no Python to check PyTorch with ({why})."),
                None,
            ));
            Json::Null
        }
        torch::Probe::NoTorch { python, error } => {
            findings.push(Finding::new(
                "torch-not-found",
                Severity::Info,
                format!("PyTorch is not importable by {python} ({error})."),
                None,
            ));
            Json::obj().with("python", python).with("torch", Json::Null)
        }
        torch::Probe::Failed { python, why } => {
            findings.push(Finding::new(
                "torch-probe-failed",
                Severity::Info,
                format!("could not query PyTorch via {python}: {why}."),
                None,
            ));
            Json::obj()
                .with("python", python)
                .with("torch", Json::Null)
                .with("error", why)
        }
        torch::Probe::Torch {
            python,
            version,
            hip,
            cuda,
            arch_list,
        } => {
            let j = Json::obj()
                .with("python", python.as_str())
                .with("torch", version.as_str())
                .with("hip", hip.clone())
                .with("cuda", cuda.clone())
                .with("arch_list", arch_list.clone());
            let targeted: Vec<&kfd::Gpu> = gpus.iter().filter(|g| g.gfx.is_some()).collect();
            if hip.is_none() {
                if !targeted.is_empty() {
                    findings.push(Finding::new(
                        "torch-not-rocm",
                        Severity::Info,
                        format!(
                            "PyTorch {version} ({python}) is not a ROCm build ({}); it will not use the AMD GPU.",
                            match &cuda {
                                Some(c) => format!("CUDA {c}"),
                                None => "CPU only".to_string(),
                            }
                        ),
                        Some("install a ROCm build of PyTorch".to_string()),
                    ));
                }
                return j;
            }
            let archs: Vec<String> = arch_list.unwrap_or_default();
            if archs.is_empty() {
                findings.push(Finding::new(
                    "torch-arch-unknown",
                    Severity::Info,
                    format!("PyTorch {version} (HIP {}) did not report the architectures it was built for.", hip.as_deref().unwrap_or("?")),
                    None,
                ));
                return j;
            }
            for g in gpus.iter().filter(|g| g.targeted) {
                let name = g.gfx_name();
                // Exact code objects first, then LLVM's generic ones.
                let carried = g.gfx.and_then(|card| {
                    let mut fits = archs.iter().filter(|a| code_object_runs_on(a, card));
                    let first = fits.next()?;
                    Some(
                        archs
                            .iter()
                            .find(|a| torch::arch_base(a) == name)
                            .unwrap_or(first),
                    )
                });
                if let Some(carried) = carried {
                    let base = torch::arch_base(carried);
                    let how = if base == name {
                        format!("{name} code")
                    } else {
                        format!("{base} code, LLVM's generic target that runs on {name}")
                    };
                    findings.push(Finding::new(
                        "torch-arch-ok",
                        Severity::Info,
                        format!("PyTorch {version} carries {how} for {}.", g.label()),
                        None,
                    ));
                } else {
                    findings.push(Finding::new(
                        "torch-missing-arch",
                        Severity::Error,
                        format!(
                            "PyTorch {version} (HIP {}) has no {name} code objects (it was built for {}), so it cannot run kernels on {} \
                             without HSA_OVERRIDE_GFX_VERSION, which runs another GPU's code there.",
                            hip.as_deref().unwrap_or("?"),
                            archs.join(" "),
                            g.label()
                        ),
                        Some(match g.gfx.and_then(generic_target_of) {
                            Some(generic) => format!(
                                "use a PyTorch build compiled for {name} or {generic} (official ROCm wheels ship no gfx101x code objects; build from source with PYTORCH_ROCM_ARCH={name})"
                            ),
                            None => format!("use a PyTorch build compiled for {name}"),
                        }),
                    ));
                }
            }
            j
        }
    }
}

fn colour_enabled() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

pub fn render_human(r: &Report, colour: bool) -> String {
    let paint = |code: &str, s: &str| {
        if colour {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    };
    let mut out = String::new();
    out.push_str(&paint("1", "rmcp doctor"));
    out.push('\n');
    out.push_str(&format!("targets: {}\n\nGPUs:\n", r.targets));
    if r.gpus.is_empty() {
        out.push_str("  none found\n");
    }
    for g in &r.gpus {
        let ids = match (g.vendor_id, g.device_id) {
            (Some(v), Some(d)) => format!(" [{v:04x}:{d:04x}]"),
            _ => String::new(),
        };
        out.push_str(&format!(
            "  node {}: {} {}{} {} {} ({}){}\n",
            g.node,
            g.gfx_name(),
            g.gfx.and_then(|x| x.family()).unwrap_or(""),
            if g.kfd_name.is_some() {
                format!(" {}", g.kfd_name.as_deref().unwrap_or(""))
            } else {
                String::new()
            },
            g.pci.as_deref().unwrap_or("no PCI address"),
            if g.integrated {
                "integrated"
            } else {
                "discrete"
            },
            g.integrated_rule,
            ids
        ));
        out.push_str(&format!(
            "          {}\n",
            if g.targeted {
                paint("32", "targeted by rmcp")
            } else {
                "not a target (rmcp leaves it alone)".to_string()
            }
        ));
    }
    out.push_str("\nFindings:\n");
    for f in &r.findings {
        let tag = match f.severity {
            Severity::Error => paint("1;31", "error  "),
            Severity::Warning => paint("33", "warning"),
            Severity::Info => paint("36", "info   "),
        };
        out.push_str(&format!("  {tag} [{}] {}\n", f.id, f.message));
        if let Some(fix) = &f.fix {
            out.push_str(&format!("          fix: {fix}\n"));
        }
    }
    let e = r
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let w = r
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Warning)
        .count();
    out.push_str(&format!("\n{e} error(s), {w} warning(s)\n"));
    out
}

/// Entry point; returns the exit code.
pub fn main(args: Args) -> i32 {
    let o = args.options();
    let r = match collect(&o) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rmcp: {e}");
            return 2;
        }
    };
    if o.json {
        println!("{}", crate::json::pretty(&r.json));
    } else {
        print!("{}", render_human(&r, colour_enabled()));
    }
    if let Some(file) = &o.bug_report {
        let inputs = bug_report::Inputs {
            root: &r.root,
            log: r.log.as_ref().map(|(s, t)| (s.as_str(), t.as_str())),
            python_checked: o.python.is_some(),
        };
        match bug_report::write(&r, &inputs, file) {
            Ok(_) => eprintln!(
                "rmcp: bug report written to {} (user name, home directory and host name redacted; the file says where); attach it to your issue",
                file.display()
            ),
            Err(e) => {
                eprintln!("rmcp: {e}");
                return 2;
            }
        }
    }
    if r.findings.iter().any(|f| f.severity == Severity::Error) {
        1
    } else {
        0
    }
}
