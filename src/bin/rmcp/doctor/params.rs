//! amdgpu module parameters: the live values in
//! `<root>/sys/module/amdgpu/parameters/`, `options amdgpu k=v` lines in
//! `<root>/etc/modprobe.d/*.conf` and `amdgpu.k=v` in `<root>/proc/cmdline`.

use super::{Finding, Severity};
use crate::json::{Json, JsonObj};
use rmcp::arch::Gfx;
use std::path::Path;

/// amdgpu parameter names (from Linux drivers/gpu/drm/amd/amdgpu/amdgpu_drv.c
/// and amdkfd). Used only when the running kernel's
/// /sys/module/amdgpu/parameters/ is not available; that directory is the
/// authoritative list when it exists.
pub const KNOWN_PARAMS: &[&str] = &[
    "abmlevel",
    "agp",
    "aspm",
    "async_gfx_ring",
    "audio",
    "backlight",
    "bad_page_threshold",
    "bapm",
    "benchmark",
    "cg_mask",
    "cik_support",
    "compute_multipipe",
    "cwsr_enable",
    "damageclips",
    "dc",
    "dcdebugmask",
    "dcfeaturemask",
    "debug_evictions",
    "debug_largebar",
    "debug_mask",
    "deep_color",
    "disable_cu",
    "discovery",
    "disp_priority",
    "dpm",
    "emu_mode",
    "enforce_isolation",
    "exp_hw_support",
    "force_asic_type",
    "forcelongtraining",
    "freesync_video",
    "fw_load_type",
    "gartsize",
    "gpu_recovery",
    "gttsize",
    "halt_if_hws_hang",
    "hw_i2c",
    "hws_gws_support",
    "hws_max_conc_proc",
    "ignore_crat",
    "ip_block_mask",
    "job_hang_limit",
    "lbpw",
    "lockup_timeout",
    "max_num_of_queues_per_device",
    "mcbp",
    "mes",
    "mes_kiq",
    "mes_log_enable",
    "moverate",
    "msi",
    "mtype_local",
    "no_queue_eviction_on_vm_fault",
    "no_system_mem_limit",
    "noretry",
    "num_kcq",
    "pcie_gen2",
    "pcie_gen_cap",
    "pcie_lane_cap",
    "pg_mask",
    "ppfeaturemask",
    "queue_preemption_timeout_ms",
    "ras_enable",
    "ras_mask",
    "reset_method",
    "runpm",
    "sched_hw_submission",
    "sched_jobs",
    "sched_policy",
    "sdma_phase_quantum",
    "seamless",
    "send_sigterm",
    "sg_display",
    "si_support",
    "smu_memory_pool_size",
    "smu_pptable_id",
    "test",
    "timeout_fatal_disable",
    "timeout_period",
    "tmz",
    "uni_mes",
    "use_xgmi_p2p",
    "user_partt_mode",
    "vcnfw_log",
    "virtual_display",
    "vis_vramlimit",
    "visualconfirm",
    "vm_block_size",
    "vm_debug",
    "vm_fault_stop",
    "vm_fragment_size",
    "vm_size",
    "vm_update_mode",
    "vramlimit",
];

/// Names people write that do not exist, with the real one.
const MISSPELLINGS: &[(&str, &str)] = &[
    ("gtt_size", "gttsize"),
    ("vram_limit", "vramlimit"),
    ("no_retry", "noretry"),
];

#[derive(Clone, Debug)]
pub struct ParamSetting {
    pub name: String,
    pub value: String,
    /// "sysfs", "<file>:<line>" or "kernel command line".
    pub source: String,
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The closest known name, if any is plausibly meant.
pub fn suggest(name: &str, known: &[String]) -> Option<String> {
    if let Some((_, real)) = MISSPELLINGS.iter().find(|(bad, _)| *bad == name) {
        return Some(real.to_string());
    }
    let squashed = name.replace(['_', '-'], "");
    if let Some(k) = known.iter().find(|k| k.replace('_', "") == squashed) {
        return Some(k.clone());
    }
    known
        .iter()
        .map(|k| (levenshtein(name, k), k))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, k)| k.clone())
}

/// Parses `options amdgpu a=1 b=2` lines of one modprobe.d file.
pub fn parse_modprobe(text: &str, file: &str) -> Vec<ParamSetting> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        if words.next() != Some("options") || words.next() != Some("amdgpu") {
            continue;
        }
        for w in words {
            let (k, v) = w.split_once('=').unwrap_or((w, ""));
            out.push(ParamSetting {
                name: k.to_string(),
                value: v.to_string(),
                source: format!("{}:{}", file, i + 1),
            });
        }
    }
    out
}

/// Parses `amdgpu.k=v` words of a kernel command line.
pub fn parse_cmdline(text: &str) -> Vec<ParamSetting> {
    text.split_whitespace()
        .filter_map(|w| w.strip_prefix("amdgpu."))
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            ParamSetting {
                name: k.to_string(),
                value: v.to_string(),
                source: "kernel command line".to_string(),
            }
        })
        .collect()
}

/// What a value means, for the parameters relevant to these faults.
/// Returns (severity, explanation); None when rmcp has nothing to say.
pub fn explain(name: &str, value: &str, gpus: &[Gfx]) -> Option<(Severity, String)> {
    let v = value.trim();
    let int = v.parse::<i64>().ok();
    let bad = |what: &str| {
        Some((
            Severity::Warning,
            format!("{name}={v} is not a valid value: {what}"),
        ))
    };
    match name {
        "noretry" => match int {
            Some(0) => Some((Severity::Info, "noretry=0: retry faults enabled (the GPU retries a translation that misses instead of faulting at once). \
                Its effect on \"Page not present\" faults on RDNA1/RDNA2 is not established.".to_string())),
            Some(1) => Some((Severity::Info, "noretry=1: retry faults disabled; a translation miss is reported at once. RDNA2 already defaults to no-retry.".to_string())),
            Some(-1) => Some((Severity::Info, "noretry=-1: auto (the default; RDNA2 already defaults to no-retry).".to_string())),
            _ => bad("expected -1 (auto), 0 (retry enabled) or 1 (retry disabled)"),
        },
        "gttsize" => match int {
            Some(-1) => Some((Severity::Info, "gttsize=-1: automatic GTT size (the default).".to_string())),
            Some(n) if n > 0 => Some((Severity::Info, format!("gttsize={n}: GTT (system memory the GPU can map) limited to {n} MiB."))),
            _ => bad("expected a size in MiB or -1 (auto)"),
        },
        "vm_fragment_size" => match int {
            Some(-1) => Some((Severity::Info, "vm_fragment_size=-1: automatic (the default).".to_string())),
            Some(n @ 4..=9) => Some((Severity::Info, format!(
                "vm_fragment_size={n}: page-table fragments of 2^{n} 4K pages = {} KiB (4 = 64K, maximum 9 = 2M).",
                4u64 << n
            ))),
            _ => bad("expected -1 (auto) or a fragment size in bits from 4 (64K) to 9 (2M)"),
        },
        "mtype_local" => {
            let relevant = gpus.iter().any(|g| (g.major == 9 && g.minor == 4 && g.stepping >= 3) || g.major == 12);
            if relevant {
                Some((Severity::Info, format!("mtype_local={v}: memory type for local memory on GFX 9.4.3 and GFX 12.")))
            } else {
                Some((Severity::Info, format!(
                    "mtype_local={v} only matters on GFX 9.4.3 and GFX 12; it has no effect on the GPUs found here."
                )))
            }
        }
        "vm_size" => match int {
            Some(-1) => Some((Severity::Info, "vm_size=-1: automatic GPU virtual address space size (the default).".to_string())),
            Some(n) if n > 0 => Some((Severity::Info, format!("vm_size={n}: GPU virtual address space of {n} GiB."))),
            _ => bad("expected a size in GiB or -1 (auto)"),
        },
        "vm_update_mode" => match int {
            Some(-1) | Some(0) | Some(1) | Some(2) | Some(3) => Some((Severity::Info, format!(
                "vm_update_mode={v}: who writes GPU page tables (-1 auto, 0 SDMA, 1 CPU for compute, 2 CPU for graphics, 3 CPU for both)."
            ))),
            _ => bad("expected -1, 0, 1, 2 or 3"),
        },
        "vm_fault_stop" => match int {
            Some(0) => Some((Severity::Info, "vm_fault_stop=0: the GPU does not stop on a VM fault (the default).".to_string())),
            Some(1) | Some(2) => Some((Severity::Info, format!("vm_fault_stop={v}: debugging aid that halts the GPU on a VM fault (1 first fault, 2 always)."))),
            _ => bad("expected 0, 1 or 2"),
        },
        _ => None,
    }
}

pub struct ParamsReport {
    pub json: Json,
}

pub fn check(root: &Path, gfxs: &[Gfx], findings: &mut Vec<Finding>) -> ParamsReport {
    let sysfs = root.join("sys/module/amdgpu/parameters");
    let live: Option<Vec<String>> = std::fs::read_dir(&sysfs).ok().map(|rd| {
        let mut v: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .collect();
        v.sort();
        v
    });
    let known: Vec<String> = match &live {
        Some(v) => v.clone(),
        None => KNOWN_PARAMS.iter().map(|s| s.to_string()).collect(),
    };
    let list_source = if live.is_some() {
        format!("{} (the running kernel)", sysfs.display())
    } else {
        "rmcp's table of amdgpu parameters (the running kernel's /sys/module/amdgpu/parameters was not available)".to_string()
    };

    let mut settings: Vec<ParamSetting> = Vec::new();
    let modprobe = root.join("etc/modprobe.d");
    if let Ok(rd) = std::fs::read_dir(&modprobe) {
        let mut files: Vec<_> = rd
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "conf"))
            .collect();
        files.sort();
        for f in files {
            if let Ok(text) = std::fs::read_to_string(&f) {
                settings.extend(parse_modprobe(&text, &f.display().to_string()));
            }
        }
    }
    if let Ok(text) = std::fs::read_to_string(root.join("proc/cmdline")) {
        settings.extend(parse_cmdline(&text));
    }

    for s in &settings {
        if !known.contains(&s.name) {
            let sugg = suggest(&s.name, &known);
            let mut msg = format!(
                "{}: amdgpu has no parameter named \"{}\" (checked against {list_source})",
                s.source, s.name
            );
            if let Some(ref k) = sugg {
                msg.push_str(&format!("; did you mean \"{k}\"?"));
            }
            msg.push_str(" The kernel ignores it and logs \"unknown parameter\".");
            let fix = match sugg {
                Some(k) => format!(
                    "replace {}={} with {}={} in {}",
                    s.name, s.value, k, s.value, s.source
                ),
                None => format!("remove {} from {}", s.name, s.source),
            };
            findings.push(Finding::new(
                "kernel-param-unknown",
                Severity::Warning,
                msg,
                Some(fix),
            ));
        } else if let Some((sev, text)) = explain(&s.name, &s.value, gfxs) {
            findings.push(Finding::new(
                "kernel-param-value",
                sev,
                format!("{}: {text}", s.source),
                None,
            ));
        }
    }

    // Effective values of the interesting parameters, when readable.
    let mut live_values = Json::obj();
    if live.is_some() {
        for name in [
            "noretry",
            "gttsize",
            "vm_fragment_size",
            "vm_size",
            "vm_update_mode",
            "mtype_local",
            "gpu_recovery",
        ] {
            if let Ok(v) = std::fs::read_to_string(sysfs.join(name)) {
                live_values = live_values.with(name, v.trim());
            }
        }
    }
    let json = Json::obj()
        .with(
            "names_from",
            if live.is_some() {
                "sysfs"
            } else {
                "builtin-table"
            },
        )
        .with(
            "settings",
            Json::Array(
                settings
                    .iter()
                    .map(|s| {
                        Json::obj()
                            .with("name", s.name.as_str())
                            .with("value", s.value.as_str())
                            .with("source", s.source.as_str())
                            .with("known", known.contains(&s.name))
                    })
                    .collect(),
            ),
        )
        .with("live", live_values);
    ParamsReport { json }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_real_names() {
        let known: Vec<String> = KNOWN_PARAMS.iter().map(|s| s.to_string()).collect();
        assert_eq!(suggest("gtt_size", &known).as_deref(), Some("gttsize"));
        assert_eq!(
            suggest("vm_fragmentsize", &known).as_deref(),
            Some("vm_fragment_size")
        );
        assert_eq!(suggest("noretri", &known).as_deref(), Some("noretry"));
        assert_eq!(suggest("completely_unrelated_thing", &known), None);
    }

    #[test]
    fn parses_sources() {
        let s = parse_modprobe(
            "# c\noptions amdgpu noretry=0 gtt_size=8192 # tail\noptions snd x=1\n",
            "f.conf",
        );
        assert_eq!(s.len(), 2);
        assert_eq!(
            (
                s[0].name.as_str(),
                s[0].value.as_str(),
                s[0].source.as_str()
            ),
            ("noretry", "0", "f.conf:2")
        );
        let c = parse_cmdline(
            "BOOT_IMAGE=/vmlinuz ro amdgpu.ppfeaturemask=0xffffffff quiet amdgpu.noretry=1",
        );
        assert_eq!(c.len(), 2);
        assert_eq!(c[1].value, "1");
    }

    #[test]
    fn explains_values_honestly() {
        let (_, t) = explain("noretry", "0", &[]).unwrap();
        assert!(t.contains("retry faults enabled"));
        let (_, t) = explain("vm_fragment_size", "9", &[]).unwrap();
        assert!(t.contains("2048 KiB"));
        let (s, _) = explain("vm_fragment_size", "12", &[]).unwrap();
        assert_eq!(s, Severity::Warning);
        let (_, t) = explain("mtype_local", "1", &[Gfx::new(10, 3, 0)]).unwrap();
        assert!(t.contains("no effect"));
    }
}
