//! `rmcp doctor --bug-report FILE`: one Markdown file with what ROCm
//! maintainers ask for in GPU-fault issues and what can be read without
//! root or a GPU: the topology as `rocminfo --support` shows it (from KFD
//! sysfs), versions, the relevant kernel-log lines, the HSA_/HIP_/AMD_/
//! PYTORCH_ variables, rmcp's findings and the last fault reports `rmcp run`
//! kept. The user name, home directory and host name are redacted, and the
//! file says what was.

use super::input::{self, Keep, Text};
use super::{Report, Severity};
use crate::json::Json;
use crate::kfd;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Prefixes of the variables that change what ROCm and PyTorch do.
pub const VARIABLE_PREFIXES: &[&str] = &[
    "HSA_", "HIP_", "AMD_", "PYTORCH_", "ROCR_", "ROCM_", "HCC_", "GPU_", "MIOPEN_", "RMCP_",
];
/// Other variables that matter in a GPU bug report.
pub const VARIABLES: &[&str] = &["CUDA_VISIBLE_DEVICES", "LD_PRELOAD", "LD_AUDIT"];

/// Kernel-log lines quoted at most (the newest).
const LOG_LINES: usize = 400;
/// Kept fault reports attached at most (the newest).
const REPORTS: usize = 3;

/// Who and where, to redact: the invoking user, their home, the host.
pub struct Identity {
    pub user: Option<String>,
    pub home: Option<String>,
    pub host: Option<String>,
}

impl Identity {
    /// SUDO_USER first (doctor run through sudo describes the user who
    /// called it), then USER, LOGNAME; their home (see invoking_home); the host name from
    /// `<root>/etc/hostname`, else `<root>/proc/sys/kernel/hostname`.
    pub fn gather(root: &Path) -> Identity {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let user = var("SUDO_USER")
            .or_else(|| var("USER"))
            .or_else(|| var("LOGNAME"));
        let home = super::invoking_home(root)
            .map(|h| h.display().to_string())
            .filter(|h| h.len() > 1);
        let host = ["etc/hostname", "proc/sys/kernel/hostname"]
            .iter()
            .find_map(|rel| {
                let t = std::fs::read_to_string(root.join(rel)).ok()?;
                let h = t.lines().next()?.trim().to_string();
                (!h.is_empty()).then_some(h)
            });
        Identity { user, home, host }
    }
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Replaces `word` where it stands as a word (not inside a longer name).
pub fn replace_word(text: &str, word: &str, with: &str) -> (String, usize) {
    if word.is_empty() {
        return (text.to_string(), 0);
    }
    let mut out = String::with_capacity(text.len());
    let mut n = 0;
    let mut rest = text;
    while let Some(i) = rest.find(word) {
        let before = rest[..i].chars().next_back();
        let after = rest[i + word.len()..].chars().next();
        out.push_str(&rest[..i]);
        if before.is_some_and(is_word) || after.is_some_and(is_word) {
            out.push_str(word);
        } else {
            out.push_str(with);
            n += 1;
        }
        rest = &rest[i + word.len()..];
    }
    out.push_str(rest);
    (out, n)
}

/// The host field of journal lines ("Jan 09 18:55:45 HOST kernel: ...").
fn redact_journal_hosts(text: &str) -> (String, usize) {
    let mut n = 0;
    let lines: Vec<String> = text
        .split('\n')
        .map(|l| {
            let w: Vec<&str> = l.splitn(5, ' ').collect();
            let journal = w.len() == 5
                && w[0].len() == 3
                && w[0].chars().all(|c| c.is_ascii_alphabetic())
                && w[2].len() == 8
                && w[2].chars().filter(|c| *c == ':').count() == 2
                && (w[4].starts_with("kernel:") || w[4].contains('['));
            if journal && w[3] != "<host>" {
                n += 1;
                format!("{} {} {} <host> {}", w[0], w[1], w[2], w[4])
            } else {
                l.to_string()
            }
        })
        .collect();
    (lines.join("\n"), n)
}

/// Redacts `text`; returns it and one sentence per kind of thing redacted.
pub fn redact(text: &str, id: &Identity) -> (String, Vec<String>) {
    let mut t = text.to_string();
    let mut said = Vec::new();
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    if let Some(home) = &id.home {
        let n = t.matches(home.as_str()).count();
        t = t.replace(home.as_str(), "~");
        said.push(format!(
            "the home directory ({n} place{}, written as ~)",
            plural(n)
        ));
    }
    let mut host_n = 0;
    if let Some(host) = &id.host {
        let (r, n) = replace_word(&t, host, "<host>");
        t = r;
        host_n += n;
    }
    let (r, n) = redact_journal_hosts(&t);
    t = r;
    host_n += n;
    said.push(format!(
        "the host name ({host_n} place{}, written as <host>; journal lines' host field included)",
        plural(host_n)
    ));
    match id.user.as_deref() {
        Some("root") => said.push("the user name: not redacted, it is root".to_string()),
        Some(user) => {
            let (r, n) = replace_word(&t, user, "<user>");
            t = r;
            said.push(format!(
                "the user name ({n} place{}, written as <user>)",
                plural(n)
            ));
        }
        None => said.push(
            "the user name: unknown (no SUDO_USER, USER or LOGNAME), not redacted".to_string(),
        ),
    }
    (t, said)
}

/// Kernel-log lines a maintainer needs: faults with their decoded lines,
/// resets, timeouts, firmware, MES/queue failures, oopses and taint, the
/// kernel version.
pub fn relevant_log_lines(log: &str) -> Vec<&str> {
    const MARKS: &[&str] = &[
        "page fault",
        "PROTECTION_FAULT_STATUS",
        "Faulty UTCL2",
        "MORE_FAULTS",
        "WALKER_ERROR",
        "PERMISSION_FAULTS",
        "MAPPING_ERROR",
        "RW:",
        "in page starting at",
        "rocess ",
        "timeout",
        "reset",
        "firmware",
        "MES",
        "queue",
        "Fatal error",
        "failed",
        "*ERROR*",
        "callbacks suppressed",
    ];
    log.lines()
        .filter(|l| {
            l.contains("Linux version")
                || l.contains("Tainted")
                || l.contains("BUG:")
                || l.contains("Oops")
                || ((l.contains("amdgpu") || l.contains("kfd") || l.contains("[drm"))
                    && MARKS.iter().any(|m| l.contains(m)))
        })
        .collect()
}

/// The KFD topology in the layout of `rocminfo`'s agent blocks (the values
/// rocminfo derives from these same sysfs properties).
pub fn topology_text(root: &Path) -> String {
    let dir = kfd::topology_dir(root);
    let mut nodes: Vec<(u32, PathBuf)> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path())))
                .collect()
        })
        .unwrap_or_default();
    nodes.sort();
    if nodes.is_empty() {
        return format!("no KFD topology at {}\n", dir.display());
    }
    let mut out = String::new();
    for (agent, (node, path)) in nodes.iter().enumerate() {
        let p = std::fs::read_to_string(path.join("properties"))
            .map(|t| kfd::parse_properties(&t))
            .unwrap_or_default();
        let get = |k: &str| p.get(k).copied().unwrap_or(0);
        let gpu = get("simd_count") > 0 && get("gfx_target_version") > 0;
        let name = if gpu {
            rmcp::arch::Gfx::from_target_version(
                u32::try_from(get("gfx_target_version")).unwrap_or(0),
            )
            .map_or_else(
                || format!("gfx_target_version {}", get("gfx_target_version")),
                |g| g.to_string(),
            )
        } else {
            "CPU".to_string()
        };
        let kfd_name = std::fs::read_to_string(path.join("name")).unwrap_or_default();
        let _ = writeln!(out, "*******\nAgent {}\n*******", agent + 1);
        let mut row = |k: &str, v: String| {
            let _ = writeln!(out, "  {:<25}{v}", format!("{k}:"));
        };
        row("Name", name);
        if !kfd_name.trim().is_empty() {
            row("KFD name", kfd_name.trim().to_string());
        }
        row("Device Type", if gpu { "GPU" } else { "CPU" }.to_string());
        row("Node", node.to_string());
        if gpu {
            let hex = |v: u64| format!("{v}(0x{v:x})");
            row("Vendor ID", hex(get("vendor_id")));
            row("Chip ID", hex(get("device_id")));
            row("BDFID", get("location_id").to_string());
            row("PCI", kfd::pci_address(get("domain"), get("location_id")));
            let per_cu = get("simd_per_cu").max(1);
            row("Compute Unit", (get("simd_count") / per_cu).to_string());
            row("SIMDs per CU", get("simd_per_cu").to_string());
            let per_engine = get("simd_arrays_per_engine").max(1);
            row(
                "Shader Engines",
                (get("array_count") / per_engine).to_string(),
            );
            row(
                "Shader Arrs. per Eng.",
                get("simd_arrays_per_engine").to_string(),
            );
            row(
                "Max Clock Freq. (MHz)",
                get("max_engine_clk_fcompute").to_string(),
            );
            row("Wavefront Size", hex(get("wave_front_size")));
            row(
                "Max Waves Per CU",
                (get("max_waves_per_simd") * get("simd_per_cu")).to_string(),
            );
            row("Firmware (fw_version)", get("fw_version").to_string());
            row("SDMA firmware", get("sdma_fw_version").to_string());
            row("gfx_target_version", get("gfx_target_version").to_string());
        } else {
            row("Compute Unit", get("cpu_cores_count").to_string());
            row(
                "Max Clock Freq. (MHz)",
                get("max_engine_clk_ccompute").to_string(),
            );
        }
    }
    out
}

/// `PRETTY_NAME` of `<root>/etc/os-release`.
fn os_name(root: &Path) -> Option<String> {
    let t = std::fs::read_to_string(root.join("etc/os-release")).ok()?;
    t.lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
}

/// "2026-12-06 20:30 UTC" from seconds since the epoch.
pub fn utc(secs: u64) -> String {
    let days = (secs / 86400) as i64;
    let (h, m) = ((secs % 86400) / 3600, (secs % 3600) / 60);
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{m:02} UTC")
}

fn fenced(out: &mut String, body: &str) {
    // A fence longer than any run of backticks inside.
    let longest = body.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat((longest + 1).max(3));
    let _ = writeln!(out, "{fence}text\n{}\n{fence}\n", body.trim_end());
}

/// What the bug report needs beyond the Report.
pub struct Inputs<'a> {
    pub root: &'a Path,
    pub log: Option<(&'a str, &'a str)>,
    /// Whether the PyTorch probe ran.
    pub python_checked: bool,
}

/// The report's Markdown, before redaction.
pub fn markdown(r: &Report, inp: &Inputs, env: &[(String, String)], now: u64) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# GPU bug report from `rmcp doctor`\n");
    let _ = writeln!(
        o,
        "Written by rmcp {} on {}. It holds what ROCm maintainers ask for in GPU-fault issues and what can be read without root or a GPU. \
         Attach it to the issue and paste the Findings section into the issue's text.\n",
        env!("CARGO_PKG_VERSION"),
        utc(now)
    );
    let _ = writeln!(o, "REDACTION_NOTE\n");

    let _ = writeln!(o, "## Findings\n");
    let (e, w) = (
        r.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count(),
        r.findings
            .iter()
            .filter(|f| f.severity == Severity::Warning)
            .count(),
    );
    let _ = writeln!(
        o,
        "{e} error(s), {w} warning(s). Targets: `{}`.\n",
        r.targets
    );
    for f in &r.findings {
        let _ = writeln!(o, "- **{}** `{}`: {}", f.severity.as_str(), f.id, f.message);
        if let Some(fix) = &f.fix {
            let _ = writeln!(o, "  - fix: {fix}");
        }
    }
    o.push('\n');

    let _ = writeln!(o, "## Versions\n");
    let s = |p: &str| r.json.pointer(p).and_then(Json::as_str).map(str::to_string);
    let _ = writeln!(
        o,
        "- Kernel: {} (from {})",
        s("/system/kernel").unwrap_or_else(|| "unknown".into()),
        s("/system/kernel_from").unwrap_or_default()
    );
    let _ = writeln!(
        o,
        "- Kernel taint: {}",
        match s("/system/taint") {
            Some(t) if t.is_empty() => "none".to_string(),
            Some(t) => t,
            None => "unknown".to_string(),
        }
    );
    let _ = writeln!(
        o,
        "- ROCm: {}",
        match (s("/system/rocm"), s("/system/rocm_from")) {
            (Some(v), Some(f)) => format!("{v} (from {f})"),
            _ => "not found under /opt/rocm*".to_string(),
        }
    );
    if let Some(osn) = os_name(inp.root) {
        let _ = writeln!(o, "- OS: {osn}");
    }
    let amdgpu = std::fs::read_to_string(inp.root.join("sys/module/amdgpu/version"))
        .ok()
        .map(|v| v.trim().to_string());
    let _ = writeln!(
        o,
        "- amdgpu module: {}",
        amdgpu.unwrap_or_else(|| "in-tree (no /sys/module/amdgpu/version)".to_string())
    );
    for g in &r.gpus {
        let _ = writeln!(
            o,
            "- GPU {}: see Topology for its firmware versions",
            g.label()
        );
    }
    let torch = r.json.get("pytorch").cloned().unwrap_or(Json::Null);
    let _ = writeln!(
        o,
        "- PyTorch: {}",
        match (&torch, inp.python_checked) {
            (_, false) => "not checked (--python none)".to_string(),
            (Json::Null, _) => "no Python found".to_string(),
            (t, _) => match t.get("torch").and_then(Json::as_str) {
                Some(v) => format!(
                    "{v}, HIP {}, arch list {}",
                    t.get("hip").and_then(Json::as_str).unwrap_or("none"),
                    t.get("arch_list")
                        .map_or("unknown".to_string(), |a| a.to_string())
                ),
                None => "not importable".to_string(),
            },
        }
    );
    let _ = writeln!(
        o,
        "- rmcp {}; librmcp.so preloaded here: {}\n",
        env!("CARGO_PKG_VERSION"),
        r.json
            .pointer("/environment/preload_source")
            .and_then(Json::as_str)
            .unwrap_or("no")
    );

    let _ = writeln!(o, "## Topology\n\nAs `rocminfo --support` lists agents, read from KFD sysfs (`/sys/class/kfd/kfd/topology/nodes`); it is not rocminfo's output.\n");
    fenced(&mut o, &topology_text(inp.root));

    let _ = writeln!(o, "## Overrides\n");
    match r
        .json
        .get("overrides")
        .and_then(Json::as_array)
        .filter(|a| !a.is_empty())
    {
        None => {
            let _ = writeln!(o, "No HSA_OVERRIDE_GFX_VERSION (or per-node form) is set in the environment or in the files doctor reads.\n");
        }
        Some(list) => {
            for v in list {
                let place = match (v.get("file").and_then(Json::as_str), v.get("line")) {
                    (Some(f), Some(l)) => format!("{f}:{l}"),
                    _ => "environment".to_string(),
                };
                let effects: Vec<String> = v["effects"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|e| {
                                format!(
                                    "node {} {}: {}",
                                    e["node"],
                                    e["gfx"].as_str().unwrap_or("?"),
                                    e["effect"].as_str().unwrap_or("?")
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let _ = writeln!(
                    o,
                    "- `{}={}` in {place} ({}): {}",
                    v["variable"].as_str().unwrap_or("?"),
                    v["value"].as_str().unwrap_or(""),
                    v["kind"].as_str().unwrap_or(""),
                    if effects.is_empty() {
                        "no GPU here".to_string()
                    } else {
                        effects.join(", ")
                    }
                );
            }
            o.push('\n');
        }
    }

    let _ = writeln!(o, "## Environment\n\nThe variables that change what ROCm, HIP and PyTorch do ({}*, and {}):\n", VARIABLE_PREFIXES.join("*, "), VARIABLES.join(", "));
    let picked: Vec<String> = env
        .iter()
        .filter(|(k, _)| {
            VARIABLE_PREFIXES.iter().any(|p| k.starts_with(p)) || VARIABLES.contains(&k.as_str())
        })
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if picked.is_empty() {
        let _ = writeln!(o, "None is set.\n");
    } else {
        fenced(&mut o, &picked.join("\n"));
    }

    let _ = writeln!(o, "## Kernel log\n");
    match inp.log {
        None => {
            let _ = writeln!(o, "Not read (see the kernel-log findings); `sudo dmesg > kernel.log` and `rmcp doctor --kernel-log kernel.log --bug-report FILE` include it.\n");
        }
        Some((source, body)) => {
            let lines = relevant_log_lines(body);
            let skip = lines.len().saturating_sub(LOG_LINES);
            let _ = writeln!(
                o,
                "The amdgpu/KFD lines about faults, resets, firmware, queues, taint and the kernel version, from {source}{}:\n",
                if skip > 0 { format!(" (the last {LOG_LINES} of {})", lines.len()) } else { String::new() }
            );
            if lines.is_empty() {
                let _ = writeln!(o, "None.\n");
            } else {
                fenced(&mut o, &lines[skip..].join("\n"));
            }
        }
    }

    let _ = writeln!(o, "## Fault reports kept by `rmcp run`\n");
    let dir = kept_dir(inp.root);
    let kept = dir
        .as_deref()
        .map(crate::kept_reports::newest)
        .unwrap_or_default();
    if kept.is_empty() {
        let _ = writeln!(o, "None: `rmcp run` keeps the reports of faulting runs in $XDG_STATE_HOME/rmcp/fault-reports (default ~/.local/state/rmcp/fault-reports), and there are none.\n");
    }
    for (path, when) in kept.iter().take(REPORTS) {
        let secs = when
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let mut notes = Vec::new();
        let body = match input::read_text(path, &name, 256 << 10, Keep::Head, &mut notes) {
            Text::Ok { text } => match crate::run::report_text(text.as_bytes()) {
                Ok(t) => t,
                Err(why) => format!("(unreadable report: {why})"),
            },
            _ => notes
                .first()
                .map_or("(unreadable)".to_string(), |f| f.message.clone()),
        };
        let _ = writeln!(o, "### {name} ({})\n", utc(secs));
        fenced(&mut o, &body);
    }
    if kept.len() > REPORTS {
        let _ = writeln!(
            o,
            "({} older report(s) not included.)\n",
            kept.len() - REPORTS
        );
    }

    let _ = writeln!(
        o,
        "## Not included\n\n\
         - `rocminfo --support` itself: run it and attach its output too.\n\
         - The failing program's HIP log: run it again as `AMD_LOG_LEVEL=4 AMD_SERIALIZE_KERNEL=3 rmcp run -- <program> 2> hip.log` and attach hip.log (it can be large; the last 2000 lines are enough).\n\
         - PyTorch's environment: `python -m torch.utils.collect_env`."
    );
    o
}

/// The kept-reports directory as the machine names it, under the root.
fn kept_dir(root: &Path) -> Option<PathBuf> {
    let xdg = std::env::var_os("XDG_STATE_HOME").map(PathBuf::from);
    let d = crate::kept_reports::dir_for(super::invoking_home(root).as_deref(), xdg.as_deref())?;
    Some(root.join(d.strip_prefix("/").unwrap_or(&d)))
}

/// Writes the redacted report to `file`. Ok(what was redacted) or Err(one line).
pub fn write(r: &Report, inp: &Inputs, file: &Path) -> Result<Vec<String>, String> {
    let mut env: Vec<(String, String)> = std::env::vars_os()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        })
        .collect();
    env.sort();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let text = markdown(r, inp, &env, now);
    let (text, said) = redact(&text, &Identity::gather(inp.root));
    let note = format!("Redacted before writing: {}.", said.join("; "));
    let text = text.replacen("REDACTION_NOTE", &note, 1);
    // Quoted logs and variables may hold control characters; keep lines
    // and tabs only.
    let text: String = text
        .chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect();
    std::fs::write(file, text).map_err(|e| format!("--bug-report {}: {e}", file.display()))?;
    Ok(said)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_replaces_words_not_parts_of_names() {
        let id = Identity {
            user: Some("alice".into()),
            home: Some("/home/alice".into()),
            host: Some("alice-desktop".into()),
        };
        let text = "/home/alice/.bashrc:10 alice malice alice_x alice-desktop\nJan 09 18:55:45 alexpc kernel: amdgpu: x";
        let (t, said) = redact(text, &id);
        assert_eq!(
            t,
            "~/.bashrc:10 <user> malice alice_x <host>\nJan 09 18:55:45 <host> kernel: amdgpu: x"
        );
        assert_eq!(said.len(), 3);
        assert!(
            said[0].contains("1 place,")
                && said[1].contains("2 places")
                && said[2].contains("1 place,"),
            "{said:?}"
        );
        let root = Identity {
            user: Some("root".into()),
            home: None,
            host: None,
        };
        assert_eq!(redact("root=UUID", &root).0, "root=UUID");
    }

    #[test]
    fn dates_are_utc_civil_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc(1_796_588_400), "2026-12-06 20:20 UTC");
    }
}
