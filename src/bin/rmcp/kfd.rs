//! GPUs from the KFD topology in sysfs:
//! `<root>/sys/class/kfd/kfd/topology/nodes/<N>/properties` ("key value" lines)
//! and `<N>/name`. Shared by `doctor` and `kernel-params`.

use rmcp::arch::{Gfx, Targets};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Integrated GPUs (APUs) by architecture, as the dGPU/APU column of LLVM's
/// AMDGPU processor table (llvm/docs/AMDGPUUsage.rst) lists them; among the
/// targets: gfx1033 (Van Gogh), gfx1035 (Rembrandt), gfx1036 (Raphael).
const APU_GFX: &[&str] = &[
    "gfx801", "gfx902", "gfx909", "gfx90c", "gfx1033", "gfx1035", "gfx1036", "gfx1103", "gfx1150",
    "gfx1151", "gfx1152",
];

#[derive(Clone, Debug)]
pub struct Gpu {
    pub node: u32,
    /// None when gfx_target_version does not decode.
    pub gfx: Option<Gfx>,
    pub gfx_target_version: u32,
    pub targeted: bool,
    pub integrated: bool,
    /// Which rule decided `integrated` (KFD has no direct flag).
    pub integrated_rule: String,
    pub pci: Option<String>,
    pub vendor_id: Option<u32>,
    pub device_id: Option<u32>,
    /// Contents of `<node>/name` (e.g. "navi21"), if any.
    pub kfd_name: Option<String>,
    pub simd_count: u64,
}

impl Gpu {
    pub fn gfx_name(&self) -> String {
        match self.gfx {
            Some(g) => g.to_string(),
            None => format!("unknown (gfx_target_version {})", self.gfx_target_version),
        }
    }

    /// Short label for messages: "node 1 (gfx1030, 0000:03:00.0)".
    pub fn label(&self) -> String {
        match &self.pci {
            Some(p) => format!("node {} ({}, {})", self.node, self.gfx_name(), p),
            None => format!("node {} ({})", self.node, self.gfx_name()),
        }
    }
}

pub struct Scan {
    pub topology_dir: PathBuf,
    /// False when the topology directory does not exist (no amdgpu/KFD).
    pub present: bool,
    pub gpus: Vec<Gpu>,
    /// Nodes skipped because their files could not be read or parsed.
    pub problems: Vec<String>,
}

/// The target set librmcp will use (RMCP_TARGETS read as the library reads
/// it), and the library's warning when RMCP_TARGETS is not valid.
pub fn targets_from_env() -> (Targets, Option<String>) {
    rmcp::config::read_targets(std::env::var_os(rmcp::config::var::TARGETS).as_deref())
}

pub fn topology_dir(root: &Path) -> PathBuf {
    root.join("sys/class/kfd/kfd/topology/nodes")
}

/// Parses a KFD `properties` file: one "key value" pair per line.
pub fn parse_properties(text: &str) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for line in text.lines() {
        let mut it = line.split_whitespace();
        if let (Some(k), Some(v)) = (it.next(), it.next()) {
            if let Ok(v) = v.parse::<u64>() {
                m.insert(k.to_string(), v);
            }
        }
    }
    m
}

/// Formats KFD's location_id ((bus<<8)|(dev<<3)|fn) with its domain.
pub fn pci_address(domain: u64, location_id: u64) -> String {
    format!(
        "{:04x}:{:02x}:{:02x}.{:x}",
        domain,
        (location_id >> 8) & 0xff,
        (location_id >> 3) & 0x1f,
        location_id & 0x7
    )
}

pub fn scan(root: &Path, targets: &Targets) -> Scan {
    let dir = topology_dir(root);
    let mut out = Scan {
        topology_dir: dir.clone(),
        present: dir.is_dir(),
        gpus: Vec::new(),
        problems: Vec::new(),
    };
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(_) => return out,
    };
    let mut nodes: Vec<(u32, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let n = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((n, e.path()))
        })
        .collect();
    nodes.sort();
    for (node, path) in nodes {
        let text = match std::fs::read_to_string(path.join("properties")) {
            Ok(t) => t,
            Err(e) => {
                out.problems
                    .push(format!("{}: {}", path.join("properties").display(), e));
                continue;
            }
        };
        let p = parse_properties(&text);
        let gtv = p.get("gfx_target_version").copied().unwrap_or(0);
        let simd = p.get("simd_count").copied().unwrap_or(0);
        if gtv == 0 || simd == 0 {
            continue; // CPU node
        }
        let gtv = u32::try_from(gtv).unwrap_or(0);
        let gfx = Gfx::from_target_version(gtv);
        let targeted = gfx.is_some_and(|g| targets.contains(g));
        let name = gfx.map(|g| g.to_string()).unwrap_or_default();
        // KFD has no "integrated" flag, and local_mem_size is 0 on discrete
        // cards too (seen on RX 7900 XTX dumps), so decide by architecture.
        let (integrated, integrated_rule) = if APU_GFX.contains(&name.as_str()) {
            (true, format!("{name} is an APU architecture"))
        } else if gfx.is_some() {
            (false, format!("{name} is not an APU architecture"))
        } else {
            (false, "unknown architecture, assumed discrete".to_string())
        };
        let pci = p
            .get("location_id")
            .map(|l| pci_address(p.get("domain").copied().unwrap_or(0), *l));
        let kfd_name = std::fs::read_to_string(path.join("name"))
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty());
        out.gpus.push(Gpu {
            node,
            gfx,
            gfx_target_version: gtv,
            targeted,
            integrated,
            integrated_rule,
            pci,
            vendor_id: p.get("vendor_id").and_then(|v| u32::try_from(*v).ok()),
            device_id: p.get("device_id").and_then(|v| u32::try_from(*v).ok()),
            kfd_name,
            simd_count: simd,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pci_from_location_id() {
        // bus 0x03, dev 0, fn 0 -> 0x300
        assert_eq!(pci_address(0, 0x300), "0000:03:00.0");
        assert_eq!(pci_address(1, (0x0b << 8) | (2 << 3) | 1), "0001:0b:02.1");
    }

    #[test]
    fn properties_parse() {
        let m = parse_properties(
            "cpu_cores_count 0\nsimd_count 80\nbogus\ngfx_target_version 100300\n",
        );
        assert_eq!(m["simd_count"], 80);
        assert_eq!(m["gfx_target_version"], 100300);
        assert!(!m.contains_key("bogus"));
    }
}
