//! Findings about the GPUs of the KFD topology, and their JSON.

use super::{Finding, Severity};
use crate::json::{Json, JsonObj};
use crate::kfd::{Gpu, Scan};

/// no-gpu, kfd-unreadable and gpu-targeted.
pub fn check(scan: &Scan, findings: &mut Vec<Finding>) {
    if !scan.present {
        findings.push(Finding::new(
            "no-gpu",
            Severity::Info,
            format!(
                "no KFD topology at {} (amdgpu not loaded, no AMD GPU, or a container without /sys/class/kfd).",
                scan.topology_dir.display()
            ),
            Some("check that the amdgpu driver is loaded (lsmod | grep amdgpu); a container sees the host's /sys/class/kfd".to_string()),
        ));
    } else if scan.gpus.is_empty() {
        findings.push(Finding::new(
            "no-gpu",
            Severity::Info,
            format!(
                "the KFD topology at {} lists no GPU node.",
                scan.topology_dir.display()
            ),
            None,
        ));
    }
    for p in &scan.problems {
        findings.push(Finding::new(
            "kfd-unreadable",
            Severity::Warning,
            format!("could not read {p}"),
            None,
        ));
    }
    for g in &scan.gpus {
        if g.targeted {
            findings.push(Finding::new(
                "gpu-targeted",
                Severity::Info,
                format!(
                    "{} is {} {}: librmcp.so rewrites coherent/fine-grained allocations on it when preloaded.",
                    g.label(),
                    g.gfx.and_then(|x| x.family()).unwrap_or("a target"),
                    if g.integrated { "(integrated)" } else { "(discrete)" }
                ),
                None,
            ));
        }
    }
}

/// The `gpus` array of `rmcp doctor --json`.
pub fn to_json(gpus: &[Gpu]) -> Json {
    Json::Array(
        gpus.iter()
            .map(|g| {
                Json::obj()
                    .with("node", g.node)
                    .with("gfx", g.gfx.map(|x| x.to_string()))
                    .with("gfx_target_version", g.gfx_target_version)
                    .with("family", g.gfx.and_then(|x| x.family()))
                    .with("targeted", g.targeted)
                    .with("integrated", g.integrated)
                    .with("integrated_rule", g.integrated_rule.as_str())
                    .with("pci", g.pci.clone())
                    .with("vendor_id", g.vendor_id)
                    .with("device_id", g.device_id)
                    .with("kfd_name", g.kfd_name.clone())
                    .with("simd_count", g.simd_count)
            })
            .collect(),
    )
}
