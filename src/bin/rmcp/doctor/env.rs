//! Environment checks: HSA_OVERRIDE_GFX_VERSION, HIP_HOST_COHERENT,
//! HSA_FORCE_FINE_GRAIN_PCIE and whether librmcp.so is preloaded.

use super::overrides::applying;
use super::{Finding, Severity};
use crate::json::{Json, JsonObj};
use crate::kfd::Gpu;
use crate::preload::{is_rmcp_lib, preload_entries};
use rmcp::arch::{override_var_node, Gfx};
use rmcp::config::{env_flag_is_set, parse_mode, rocr_flag_is_set, Mode};
use std::ffi::OsStr;
use std::path::Path;

pub struct EnvSnapshot {
    pub hsa_override: Option<String>,
    /// Every HSA_OVERRIDE_GFX_VERSION and HSA_OVERRIDE_GFX_VERSION_<node>.
    pub overrides: Vec<(String, String)>,
    pub hip_host_coherent: Option<String>,
    pub fine_grain_pcie: Option<String>,
    pub ld_preload: Option<String>,
    pub rmcp_mode: Option<String>,
}

impl EnvSnapshot {
    pub fn from_process() -> EnvSnapshot {
        let get = |k: &str| std::env::var_os(k).map(|v| v.to_string_lossy().into_owned());
        let mut overrides: Vec<(String, String)> = std::env::vars_os()
            .filter_map(|(k, v)| {
                let k = k.into_string().ok()?;
                override_var_node(&k)?;
                Some((k, v.to_string_lossy().into_owned()))
            })
            .collect();
        overrides.sort();
        EnvSnapshot {
            hsa_override: get("HSA_OVERRIDE_GFX_VERSION"),
            overrides,
            hip_host_coherent: get("HIP_HOST_COHERENT"),
            fine_grain_pcie: get("HSA_FORCE_FINE_GRAIN_PCIE"),
            ld_preload: get("LD_PRELOAD"),
            rmcp_mode: get("RMCP_MODE"),
        }
    }
}

pub fn check(env: &EnvSnapshot, gpus: &[Gpu], root: &Path, findings: &mut Vec<Finding>) -> Json {
    let targeted: Vec<&Gpu> = gpus.iter().filter(|g| g.targeted).collect();

    // HSA_OVERRIDE_GFX_VERSION_<node>, else HSA_OVERRIDE_GFX_VERSION, per
    // GPU, as libhsakmt reads them.
    let lookup = |k: &str| {
        env.overrides
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    };
    let mut invalid_reported: Vec<String> = Vec::new();
    for g in gpus {
        let Some((var, ov)) = applying(g.node, lookup) else {
            continue;
        };
        let Some(card) = g.gfx else { continue };
        match Gfx::from_override(ov) {
            None => {
                if invalid_reported.contains(&var) {
                    continue;
                }
                invalid_reported.push(var.clone());
                findings.push(Finding::new(
                    "hsa-override-invalid",
                    Severity::Warning,
                    format!("{var}={ov} is not of the form MAJOR.MINOR.STEPPING (e.g. 10.3.0); libhsakmt rejects it and ROCm then finds no GPU."),
                    Some(format!("unset {var}")),
                ))
            }
            Some(o) => {
                if card == o {
                    findings.push(Finding::new(
                        "hsa-override-redundant",
                        Severity::Info,
                        format!(
                            "{var}={ov} names {o}, which is what {} already is; it changes nothing there.",
                            g.label()
                        ),
                        Some(format!("unset {var}")),
                    ));
                } else if card.major == o.major && card.minor == o.minor {
                    findings.push(Finding::new(
                        "hsa-override-mismatch",
                        Severity::Warning,
                        format!(
                            "{var}={ov} makes ROCm treat {} as {o}: it loads {o} code objects on {card} hardware. \
                             The two are in the same family, which is why this often works, but AMD says the override \
                             \"is meant for internal debugging, not as an official workaround\".",
                            g.label()
                        ),
                        Some(format!("use a build that ships {card} code objects and unset {var}")),
                    ));
                } else {
                    findings.push(Finding::new(
                        "hsa-override-mismatch",
                        Severity::Error,
                        format!(
                            "{var}={ov} makes ROCm treat {} as {o}: it runs {o} code on {card} hardware, \
                             a different instruction set. Expect \"invalid device function\", aperture violations and memory \
                             access faults. AMD says the override \"is meant for internal debugging, not as an official workaround\".",
                            g.label()
                        ),
                        Some(format!(
                            "unset {var} and use a PyTorch/ROCm build compiled for {card} (official PyTorch ROCm wheels ship no gfx101x code objects)"
                        )),
                    ));
                }
            }
        }
    }

    // Variables that force coherent (fine-grained) memory.
    if !targeted.is_empty() {
        let names: Vec<String> = targeted.iter().map(|g| g.label()).collect();
        // Each variable read as its runtime reads it (rmcp::config).
        if let Some(v) = env
            .hip_host_coherent
            .as_deref()
            .filter(|v| env_flag_is_set(OsStr::new(v)))
        {
            findings.push(Finding::new(
                "hip-host-coherent",
                Severity::Warning,
                format!(
                    "HIP_HOST_COHERENT={v} makes every hipHostMalloc without hipHostMallocNonCoherent return coherent \
                     (fine-grained) memory, the kind rmcp exists to avoid on {}.",
                    names.join(", ")
                ),
                Some("unset HIP_HOST_COHERENT".to_string()),
            ));
        }
        if let Some(v) = env
            .fine_grain_pcie
            .as_deref()
            .filter(|v| rocr_flag_is_set(OsStr::new(v)))
        {
            findings.push(Finding::new(
                "fine-grain-pcie",
                Severity::Warning,
                format!(
                    "HSA_FORCE_FINE_GRAIN_PCIE={v} forces fine-grained (coherent) access over PCIe on {}.",
                    names.join(", ")
                ),
                Some("unset HSA_FORCE_FINE_GRAIN_PCIE".to_string()),
            ));
        }
    }

    // Is librmcp.so preloaded?
    let mut source: Option<String> = None;
    if let Some(lp) = env.ld_preload.as_deref() {
        if let Some(e) = preload_entries(lp).find(|e| is_rmcp_lib(e)) {
            source = Some(format!("LD_PRELOAD ({e})"));
        }
    }
    let etc_preload = root.join("etc/ld.so.preload");
    if source.is_none() {
        if let Ok(text) = std::fs::read_to_string(&etc_preload) {
            let hit = text
                .lines()
                .map(|l| l.split('#').next().unwrap_or(""))
                .flat_map(preload_entries)
                .find(|e| is_rmcp_lib(e))
                .map(str::to_string);
            if let Some(e) = hit {
                source = Some(format!("{} ({e})", etc_preload.display()));
            }
        }
    }
    let mode_off = env
        .rmcp_mode
        .as_deref()
        .is_some_and(|m| parse_mode(OsStr::new(m)) == Some(Mode::Off));
    if !targeted.is_empty() {
        match (&source, mode_off) {
            (None, _) => findings.push(Finding::new(
                "rmcp-not-preloaded",
                Severity::Info,
                "librmcp.so is not preloaded in this environment (LD_PRELOAD, /etc/ld.so.preload), so allocations are not rewritten here."
                    .to_string(),
                Some("run your program as: rmcp run -- python3 train.py".to_string()),
            )),
            (Some(s), true) => findings.push(Finding::new(
                "rmcp-mode-off",
                Severity::Info,
                format!("librmcp.so is preloaded via {s}, but RMCP_MODE=off: it rewrites nothing."),
                None,
            )),
            (Some(s), false) => findings.push(Finding::new(
                "rmcp-preloaded",
                Severity::Info,
                format!("librmcp.so is preloaded via {s}."),
                None,
            )),
        }
    }

    Json::obj()
        .with("HSA_OVERRIDE_GFX_VERSION", env.hsa_override.clone())
        .with("HIP_HOST_COHERENT", env.hip_host_coherent.clone())
        .with("HSA_FORCE_FINE_GRAIN_PCIE", env.fine_grain_pcie.clone())
        .with("LD_PRELOAD", env.ld_preload.clone())
        .with("RMCP_MODE", env.rmcp_mode.clone())
        .with("rmcp_preloaded", source.is_some())
        .with("preload_source", source)
}
