//! amdgpu VM page faults and GPU resets in the kernel log.
//!
//! The status register layout is GCVM_L2_PROTECTION_FAULT_STATUS from Linux
//! drivers/gpu/drm/amd/include/asic_reg/gc/gc_10_3_0_sh_mask.h:
//! MORE_FAULTS bit 0, WALKER_ERROR bits 1-3, PERMISSION_FAULTS bits 4-7,
//! MAPPING_ERROR bit 8, CID bits 9-17, RW bit 18, ATOMIC bit 19, VMID bits 20-23.
//! The kernel prints these fields itself after the status line; rmcp prefers
//! those lines and decodes the register only when they are missing.

use super::{Finding, Severity};
use crate::json::{Json, JsonObj};
use crate::kfd::Gpu;

/// UTCL2 client ids of the gfx10.3 GC hub, as the kernel names them.
const GFX103_CLIENTS: &[&str] = &[
    "CB/DB",
    "Reserved",
    "GE1",
    "GE2",
    "CPF",
    "CPC",
    "CPG",
    "RLC",
    "TCP",
    "SQC (inst)",
    "SQC (data)",
    "SQG",
    "Reserved",
    "SDMA0",
    "SDMA1",
    "GCR",
    "SDMA2",
    "SDMA3",
];

/// What each UTCL2 client is, in a user's terms.
fn client_role(name: &str) -> &'static str {
    match name {
        "TCP" => "a shader's memory loads/stores, i.e. a kernel",
        "SQC (inst)" => "a shader's instruction fetch (code address)",
        "SQC (data)" | "SQG" => "a shader's scalar loads (kernel arguments, constants)",
        "CPF" | "CPC" | "CPG" => "the command processor reading a queue or its packets",
        "RLC" => "the run-list controller (firmware)",
        "CB/DB" => "the graphics pipeline's colour/depth output",
        "GE1" | "GE2" => "the graphics geometry engine",
        "GCR" => "a cache flush/invalidate request",
        n if n.starts_with("SDMA") => "the SDMA copy engine (a memory copy, not a kernel)",
        _ => "an unnamed client",
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct StatusFields {
    pub more_faults: u32,
    pub walker_error: u32,
    pub permission_faults: u32,
    pub mapping_error: u32,
    pub cid: u32,
    pub rw: u32,
}

pub fn decode_status(s: u32) -> StatusFields {
    StatusFields {
        more_faults: s & 1,
        walker_error: (s >> 1) & 0x7,
        permission_faults: (s >> 4) & 0xf,
        mapping_error: (s >> 8) & 1,
        cid: (s >> 9) & 0x1ff,
        rw: (s >> 18) & 1,
    }
}

/// The status register decoded (gfxhub of gfx10 and later, whose client
/// table Linux's gfxhub_v2_0/v2_1/v3_0 share).
pub fn decoded_json(s: u32) -> Json {
    let f = decode_status(s);
    let client = GFX103_CLIENTS
        .get(f.cid as usize)
        .copied()
        .unwrap_or("unknown");
    Json::obj()
        .with("client", client)
        .with("client_id", f.cid)
        .with("client_role", client_role(client))
        .with("access", if f.rw == 1 { "write" } else { "read" })
        .with("permission_faults", f.permission_faults)
        .with("mapping_error", f.mapping_error)
        .with("walker_error", f.walker_error)
        .with("more_faults", f.more_faults)
        .with("vmid", (s >> 20) & 0xf)
}

#[derive(Clone, Debug, Default)]
pub struct VmFault {
    pub pci: Option<String>,
    pub hub: String,
    pub retry: Option<bool>,
    pub vmid: Option<u32>,
    pub pasid: Option<u32>,
    pub process: Option<String>,
    pub pid: Option<u32>,
    pub address: Option<String>,
    pub status: Option<u32>,
    /// Fields as printed by the kernel (name, value).
    pub printed: Vec<(String, String)>,
    pub client_name: Option<String>,
}

impl VmFault {
    /// The decoded fields: the kernel's own lines when present, else the
    /// register decoded with the gfx10.3 layout.
    pub fn fields(&self) -> Vec<(String, String)> {
        if !self.printed.is_empty() {
            return self.printed.clone();
        }
        match self.status {
            Some(s) => {
                let f = decode_status(s);
                let client = GFX103_CLIENTS
                    .get(f.cid as usize)
                    .copied()
                    .unwrap_or("unknown");
                vec![
                    (
                        "Faulty UTCL2 client ID".into(),
                        format!("{client} (0x{:x}) [decoded by rmcp, gfx10.3 layout]", f.cid),
                    ),
                    ("MORE_FAULTS".into(), format!("0x{:x}", f.more_faults)),
                    ("WALKER_ERROR".into(), format!("0x{:x}", f.walker_error)),
                    (
                        "PERMISSION_FAULTS".into(),
                        format!("0x{:x}", f.permission_faults),
                    ),
                    ("MAPPING_ERROR".into(), format!("0x{:x}", f.mapping_error)),
                    ("RW".into(), format!("0x{:x}", f.rw)),
                ]
            }
            None => Vec::new(),
        }
    }

    /// The status, when the GC hub's layout applies (not for mmhub faults).
    pub fn gfx_hub_status(&self) -> Option<u32> {
        self.status.filter(|_| !self.hub.starts_with("mmhub"))
    }

    /// "client TCP (...), read, PERMISSION_FAULTS 0x3, ..." for messages.
    pub fn summary(&self) -> Option<String> {
        let s = self.gfx_hub_status()?;
        let f = decode_status(s);
        let client = GFX103_CLIENTS
            .get(f.cid as usize)
            .copied()
            .unwrap_or("unknown");
        Some(format!(
            "client {client}: {}; a {}; PERMISSION_FAULTS 0x{:x}, MAPPING_ERROR {}, WALKER_ERROR {}; MORE_FAULTS {}",
            client_role(client),
            if f.rw == 1 { "write" } else { "read" },
            f.permission_faults,
            f.mapping_error,
            f.walker_error,
            if f.more_faults == 1 { "1: more faults followed that the kernel did not log" } else { "0" }
        ))
    }

    pub fn to_json(&self) -> Json {
        let fields = Json::Object(
            self.fields()
                .into_iter()
                .map(|(k, v)| (k.to_string(), Json::String(v)))
                .collect(),
        );
        Json::obj()
            .with("pci", self.pci.clone())
            .with("hub", self.hub.as_str())
            .with("retry", self.retry)
            .with("vmid", self.vmid)
            .with("pasid", self.pasid)
            .with("process", self.process.clone())
            .with("pid", self.pid)
            .with("address", self.address.clone())
            .with("status", self.status.map(|s| format!("0x{s:08x}")))
            .with("fields", fields)
            .with("decoded", self.gfx_hub_status().map(decoded_json))
    }
}

#[derive(Clone, Debug, Default)]
pub struct Reset {
    pub pci: Option<String>,
    pub line: String,
}

#[derive(Default)]
pub struct LogScan {
    pub faults: Vec<VmFault>,
    /// Ring timeouts, reset begin/succeeded/failed lines, in order.
    pub resets: Vec<Reset>,
    /// "Direct firmware load for amdgpu/X failed" and "Failed to load
    /// firmware" lines.
    pub firmware: Vec<Reset>,
    /// Failed GPU initialisation ("Fatal error during GPU init", "sw_init of
    /// IP block <...> failed", "amdgpu_device_ip_init failed").
    pub init_failed: Vec<Reset>,
    /// MES (the RDNA3+ firmware scheduler) and queue removal failures.
    pub queue_failures: Vec<Reset>,
}

/// Lines of a failed MES command or queue removal (amdgpu's own texts).
const QUEUE_FAILURE_TEXTS: &[&str] = &[
    "MES failed to respond",
    "MES failed to response",
    "failed to remove hardware queue",
    "MES might be in unrecoverable state",
    "failed to unmap legacy queue",
    "Queue preemption time out",
    "Failed to evict process queues",
];

/// Strips the "[  12.3] ", "[Tue Jul 15 19:00:37 2025] " or
/// "Aug 23 23:38:11 host kernel: " prefix.
fn strip_prefix(line: &str) -> &str {
    let mut l = line.trim_end();
    if let Some(i) = l.find(" kernel: ") {
        l = &l[i + 9..];
    }
    let t = l.trim_start();
    if t.starts_with('[') {
        if let Some(end) = t.find(']') {
            let inside = &t[1..end];
            // timestamps: digits, dots, spaces, ':' or a date; not "[gfxhub]"
            if inside
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit() || c == ' ' || c == '+')
                || inside.split_whitespace().count() >= 4
            {
                return t[end + 1..].trim_start();
            }
        }
    }
    t
}

/// Finds a PCI address "dddd:bb:dd.f" in the line.
fn find_pci(line: &str) -> Option<String> {
    let b = line.as_bytes();
    if b.len() < 12 {
        return None;
    }
    for i in 0..=b.len() - 12 {
        let w = &b[i..i + 12];
        let hex = |r: std::ops::Range<usize>| w[r].iter().all(|c| c.is_ascii_hexdigit());
        if hex(0..4)
            && w[4] == b':'
            && hex(5..7)
            && w[7] == b':'
            && hex(8..10)
            && w[10] == b'.'
            && w[11].is_ascii_digit()
        {
            return Some(String::from_utf8_lossy(w).to_lowercase());
        }
    }
    None
}

fn num_after(line: &str, key: &str) -> Option<u32> {
    let i = line.find(key)? + key.len();
    let digits: String = line[i..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

/// "process NAME pid N" (any capitalisation of "process").
fn process_of(line: &str) -> Option<(String, Option<u32>)> {
    let lower = line.to_ascii_lowercase();
    let i = lower.find("process ")? + 8;
    let rest = &line[i..];
    let name_end = rest.find(" pid ")?;
    let name: String = rest[..name_end].trim().chars().take(64).collect();
    let pid = num_after(&rest[name_end..], " pid ");
    Some((name, pid))
}

pub fn scan(text: &str) -> LogScan {
    let mut out = LogScan::default();
    // index into out.faults of the last fault per PCI address (None key = no address)
    let mut current: Vec<(Option<String>, usize)> = Vec::new();
    for raw in text.lines() {
        let line = strip_prefix(raw);
        let pci = find_pci(line);
        let cur_idx = current.iter().find(|(p, _)| *p == pci).map(|(_, i)| *i);

        if let Some(pf) = line.find("page fault (src_id:") {
            let head = &line[..pf];
            let hub = head
                .rfind('[')
                .and_then(|s| {
                    head[s + 1..]
                        .find(']')
                        .map(|e| head[s + 1..s + 1 + e].chars().take(32).collect())
                })
                .unwrap_or_default();
            let retry = if head.contains("no-retry") {
                Some(false)
            } else if head.contains("retry") {
                Some(true)
            } else {
                None
            };
            let mut f = VmFault {
                pci: pci.clone(),
                hub,
                retry,
                vmid: num_after(line, "vmid:"),
                pasid: num_after(line, "pasid:"),
                ..Default::default()
            };
            if let Some((p, pid)) = process_of(&line[pf..]) {
                f.process = Some(p);
                f.pid = pid;
            }
            out.faults.push(f);
            let idx = out.faults.len() - 1;
            current.retain(|(p, _)| *p != pci);
            current.push((pci, idx));
            continue;
        }
        if let Some(idx) = cur_idx {
            let f = &mut out.faults[idx];
            if let Some(i) = line.find("page starting at address ") {
                let addr: String = line[i + 25..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric())
                    .take(40)
                    .collect();
                f.address = Some(addr);
                continue;
            }
            if let Some(i) = line.find("L2_PROTECTION_FAULT_STATUS:") {
                let v = line[i + 27..]
                    .trim()
                    .trim_start_matches("0x")
                    .trim_start_matches("0X");
                let hex: String = v.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
                f.status = u32::from_str_radix(&hex, 16).ok();
                continue;
            }
            if f.process.is_none() && line.to_ascii_lowercase().contains("process ") {
                if let Some((p, pid)) = process_of(line) {
                    f.process = Some(p);
                    f.pid = pid;
                    continue;
                }
            }
            for key in [
                "Faulty UTCL2 client ID",
                "MORE_FAULTS",
                "WALKER_ERROR",
                "PERMISSION_FAULTS",
                "MAPPING_ERROR",
                "RW",
            ] {
                let pat = format!("{key}:");
                if let Some(i) = line.find(&pat) {
                    // "RW:" must be its own word (not the tail of another name)
                    if i > 0 && line.as_bytes()[i - 1].is_ascii_alphanumeric() {
                        continue;
                    }
                    let v: String = line[i + pat.len()..].trim().chars().take(80).collect();
                    if key == "Faulty UTCL2 client ID" {
                        f.client_name = Some(v.clone());
                    }
                    f.printed.push((key.to_string(), v));
                    break;
                }
            }
        }
        let keep = |v: &mut Vec<Reset>| {
            v.push(Reset {
                pci: pci.clone(),
                line: line.to_string(),
            })
        };
        if line.contains("amdgpu")
            && (line.contains("Direct firmware load for amdgpu/")
                || (line.contains("Failed to load firmware") && line.contains("amdgpu/")))
        {
            keep(&mut out.firmware);
            continue;
        }
        if line.contains("Fatal error during GPU init")
            || line.contains("amdgpu_device_ip_init failed")
            || (line.contains("sw_init of IP block") && line.contains("failed"))
        {
            keep(&mut out.init_failed);
            continue;
        }
        if QUEUE_FAILURE_TEXTS.iter().any(|t| line.contains(t)) {
            keep(&mut out.queue_failures);
            continue;
        }
        let lower = line.to_ascii_lowercase();
        let is_reset = lower.contains("amdgpu")
            && (lower.contains("gpu reset begin")
                || (lower.contains("gpu reset")
                    && (lower.contains("succeeded") || lower.contains("failed")))
                || (lower.contains("ring ") && lower.contains(" timeout")));
        if is_reset {
            out.resets.push(Reset {
                pci,
                line: line.to_string(),
            });
        }
    }
    out
}

/// The kernel-log findings (gpu-vm-fault per device and process,
/// gpu-reset, kernel-log-clean) and the `kernel_log` JSON. `log_body` is
/// None when the log could not be read.
pub fn check(
    log_source: Option<&str>,
    log_body: Option<&str>,
    gpus: &[Gpu],
    findings: &mut Vec<Finding>,
) -> Json {
    let mut log_json = Json::obj()
        .with("source", log_source)
        .with("readable", log_body.is_some());
    if let Some(body) = log_body {
        let ls = scan(body);
        log_json = log_json
            .with("vm_faults", ls.faults.len())
            .with("resets", ls.resets.len())
            .with("firmware_failures", ls.firmware.len())
            .with("init_failures", ls.init_failed.len())
            .with("queue_failures", ls.queue_failures.len());
        lines_finding(
            "firmware-load-failed",
            Severity::Warning,
            &ls.firmware,
            "firmware load failure",
            "amdgpu could not load a firmware file it asked for; depending on the file the GPU runs without that feature or fails to initialise (see gpu-init-failed)",
            "install the distribution's current firmware package (linux-firmware / firmware-amd-graphics) and rebuild the initramfs; a kernel newer than its firmware asks for files that do not exist yet",
            findings,
        );
        lines_finding(
            "gpu-init-failed",
            Severity::Error,
            &ls.init_failed,
            "GPU initialisation failure",
            "amdgpu gave up initialising the GPU, so KFD and ROCm cannot use it",
            "the lines before it name the IP block and the firmware that failed; fix that first",
            findings,
        );
        lines_finding(
            "mes-queue-failure",
            Severity::Warning,
            &ls.queue_failures,
            "MES/queue removal failure",
            "The GPU's scheduler firmware did not complete a queue removal or preemption, which usually ends in a GPU reset; reports link it to compute wave save/restore",
            "include these lines in bug reports; amdgpu.cwsr_enable=0 on the kernel command line is the workaround reported in https://github.com/ROCm/legacy-rocm-build/issues/6658",
            findings,
        );
        // one finding per (device, process)
        let mut groups: Vec<(Option<String>, Option<String>, Vec<&VmFault>)> = Vec::new();
        for f in &ls.faults {
            match groups
                .iter_mut()
                .find(|(p, pr, _)| *p == f.pci && *pr == f.process)
            {
                Some(g) => g.2.push(f),
                None => groups.push((f.pci.clone(), f.process.clone(), vec![f])),
            }
        }
        for (pci, process, faults) in &groups {
            let first = faults[0];
            let gpu = gpus.iter().find(|g| g.pci.is_some() && g.pci == *pci);
            let who = match gpu {
                Some(g) => g.label(),
                None => match pci {
                    Some(p) => format!("{p} (not in this KFD topology)"),
                    None => "an amdgpu device".to_string(),
                },
            };
            let proc_text = match (process, first.pid) {
                (Some(p), Some(pid)) => format!(" in process {p} (pid {pid})"),
                (Some(p), None) => format!(" in process {p}"),
                _ => String::new(),
            };
            let mut msg = format!(
                "{} GPU VM page fault{} on {who}{proc_text}",
                faults.len(),
                if faults.len() == 1 { "" } else { "s" }
            );
            if let Some(a) = &first.address {
                msg.push_str(&format!("; first at page {a}"));
            }
            if let Some(s) = first.status {
                msg.push_str(&format!("; status 0x{s:08x}"));
            }
            let fields = first.fields();
            if !fields.is_empty() {
                let f: Vec<String> = fields.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                msg.push_str(&format!(" ({})", f.join(", ")));
            }
            if let Some(sum) = first.summary() {
                msg.push_str(&format!(". Decoded: {sum}"));
            }
            msg.push_str(". The GPU accessed an address its page tables do not map, or map without the access it needed: typically freed or never-mapped memory, or code built for another GPU.");
            let fix = if gpu.is_some_and(|g| g.targeted) {
                "rerun under `rmcp run --` to get the allocation behind the faulting address, and check the hsa-override/torch findings"
            } else {
                "check the hsa-override/torch findings; rerun under `rmcp run --` for an allocation report"
            };
            let mut fnd = Finding::new(
                "gpu-vm-fault",
                Severity::Warning,
                msg,
                Some(fix.to_string()),
            );
            fnd.details = Some(Json::Array(
                faults.iter().take(8).map(|f| f.to_json()).collect(),
            ));
            findings.push(fnd);
        }
        if ls.faults.is_empty()
            && ls.resets.is_empty()
            && ls.firmware.is_empty()
            && ls.init_failed.is_empty()
            && ls.queue_failures.is_empty()
        {
            findings.push(Finding::new(
                "kernel-log-clean",
                Severity::Info,
                format!(
                    "kernel log ({}): no amdgpu VM page faults, GPU resets, firmware or queue failures.",
                    log_source.unwrap_or("?")
                ),
                None,
            ));
        }
        if !ls.resets.is_empty() {
            let mut pcis: Vec<String> = ls.resets.iter().filter_map(|r| r.pci.clone()).collect();
            pcis.dedup();
            let begins = ls
                .resets
                .iter()
                .filter(|r| r.line.to_ascii_lowercase().contains("reset begin"))
                .count();
            let mut fnd = Finding::new(
                "gpu-reset",
                Severity::Warning,
                format!(
                    "the kernel log shows {} GPU reset/ring-timeout line{} ({} reset{} begun) on {}; first: \"{}\"",
                    ls.resets.len(),
                    if ls.resets.len() == 1 { "" } else { "s" },
                    begins,
                    if begins == 1 { "" } else { "s" },
                    if pcis.is_empty() { "an amdgpu device".to_string() } else { pcis.join(", ") },
                    clip(&ls.resets[0].line)
                ),
                Some("a GPU reset ends the work of every program using that GPU; the log lines just before it usually show what hung or faulted".to_string()),
            );
            fnd.details = Some(Json::Array(
                ls.resets
                    .iter()
                    .take(16)
                    .map(|r| Json::String(r.line.clone()))
                    .collect(),
            ));
            findings.push(fnd);
        }
    }
    log_json
}

/// A log line as quoted in a message: at most 300 characters.
fn clip(line: &str) -> String {
    match line.char_indices().nth(300) {
        Some((i, _)) => format!("{}...", &line[..i]),
        None => line.to_string(),
    }
}

/// One finding for a kind of line, naming the devices, the count and the
/// first line; `details` keeps up to 16 lines.
fn lines_finding(
    id: &'static str,
    severity: Severity,
    lines: &[Reset],
    what: &str,
    meaning: &str,
    fix: &str,
    findings: &mut Vec<Finding>,
) {
    if lines.is_empty() {
        return;
    }
    let mut pcis: Vec<String> = lines.iter().filter_map(|r| r.pci.clone()).collect();
    pcis.sort();
    pcis.dedup();
    let mut f = Finding::new(
        id,
        severity,
        format!(
            "{} {what} line{} in the kernel log on {}; first: \"{}\". {meaning}.",
            lines.len(),
            if lines.len() == 1 { "" } else { "s" },
            if pcis.is_empty() {
                "an amdgpu device".to_string()
            } else {
                pcis.join(", ")
            },
            clip(&lines[0].line)
        ),
        Some(fix.to_string()),
    );
    f.details = Some(Json::Array(
        lines
            .iter()
            .take(16)
            .map(|r| Json::String(r.line.clone()))
            .collect(),
    ));
    findings.push(f);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every fixture fault the kernel printed decoded lines for: rmcp's
    /// decoding of the status register says the same.
    #[test]
    fn rmcp_decoding_agrees_with_the_kernels_lines() {
        let logs = [
            include_str!("../../../../tests/fixtures/doctor/logs/sdma-fault.log"),
            include_str!("../../../../tests/fixtures/doctor/logs/rdna2-vm-faults.log"),
            "[1] amdgpu 0000:2b:00.0: amdgpu: [gfxhub] page fault (src_id:0 ring:153 vmid:0 pasid:0, for process  pid 0 thread  pid 0)
[1] amdgpu 0000:2b:00.0: amdgpu: GCVM_L2_PROTECTION_FAULT_STATUS:0x00000B32
[1] amdgpu 0000:2b:00.0: amdgpu:          Faulty UTCL2 client ID: CPC (0x5)
[1] amdgpu 0000:2b:00.0: amdgpu:          MORE_FAULTS: 0x0
[1] amdgpu 0000:2b:00.0: amdgpu:          WALKER_ERROR: 0x1
[1] amdgpu 0000:2b:00.0: amdgpu:          PERMISSION_FAULTS: 0x3
[1] amdgpu 0000:2b:00.0: amdgpu:          MAPPING_ERROR: 0x1
[1] amdgpu 0000:2b:00.0: amdgpu:          RW: 0x0",
        ];
        let mut checked = 0;
        for log in logs {
            for f in scan(log).faults {
                let (Some(status), false) = (f.status, f.printed.is_empty()) else {
                    continue;
                };
                let d = decode_status(status);
                let client = GFX103_CLIENTS[d.cid as usize];
                for (k, v) in &f.printed {
                    let want = match k.as_str() {
                        "Faulty UTCL2 client ID" => format!("{client} (0x{:x})", d.cid),
                        "MORE_FAULTS" => format!("0x{:x}", d.more_faults),
                        "WALKER_ERROR" => format!("0x{:x}", d.walker_error),
                        "PERMISSION_FAULTS" => format!("0x{:x}", d.permission_faults),
                        "MAPPING_ERROR" => format!("0x{:x}", d.mapping_error),
                        "RW" => format!("0x{:x}", d.rw),
                        _ => continue,
                    };
                    assert_eq!(v, &want, "0x{status:08x} {k}");
                    checked += 1;
                }
            }
        }
        assert!(checked >= 12, "{checked}");
    }

    #[test]
    fn decodes_the_common_status() {
        // 0x00801031: TCP (8), MORE_FAULTS 1, PERMISSION_FAULTS 3, read, VMID 8
        let f = decode_status(0x0080_1031);
        assert_eq!(
            f,
            StatusFields {
                more_faults: 1,
                walker_error: 0,
                permission_faults: 3,
                mapping_error: 0,
                cid: 8,
                rw: 0
            }
        );
        // 0x00841051: write (RW bit 18), PERMISSION_FAULTS 5
        let f = decode_status(0x0084_1051);
        assert_eq!((f.rw, f.permission_faults, f.cid), (1, 5, 8));
        // 0x00800932: CPF (4), WALKER_ERROR 1, MAPPING_ERROR 1
        let f = decode_status(0x0080_0932);
        assert_eq!(
            (f.cid, f.walker_error, f.mapping_error, f.permission_faults),
            (4, 1, 1, 3)
        );
    }

    #[test]
    fn newer_kernel_format_and_foreign_timeouts() {
        let log = "\
[ 1008.330834] amdgpu 0000:c2:00.0: amdgpu: [gfxhub] page fault (src_id:0 ring:24 vmid:8 pasid:32773)
[ 1008.330841] amdgpu 0000:c2:00.0: amdgpu:  Process python pid 5578 thread python pid 5578
[ 1008.330842] amdgpu 0000:c2:00.0: amdgpu:   in page starting at address 0x00007f5e85f94000 from client 10
[ 1008.330844] amdgpu 0000:c2:00.0: amdgpu: GCVM_L2_PROTECTION_FAULT_STATUS:0x00801031
[ 1008.330845] amdgpu 0000:c2:00.0: amdgpu: \t Faulty UTCL2 client ID: TCP (0x8)
[ 2237.944235] [drm:amdgpu_job_timedout [amdgpu]] *ERROR* ring sdma0 timeout, signaled seq=16060, emitted seq=16062
[ 2240.000000] nvme nvme0: I/O 12 QID 3 timeout, aborting
[ 2241.000000] usb 1-1: ring 3 timeout waiting
";
        let s = scan(log);
        assert_eq!(s.faults.len(), 1);
        let f = &s.faults[0];
        assert_eq!((f.process.as_deref(), f.pid), (Some("python"), Some(5578)));
        assert_eq!(f.address.as_deref(), Some("0x00007f5e85f94000"));
        assert_eq!(f.client_name.as_deref(), Some("TCP (0x8)"));
        assert_eq!(s.resets.len(), 1, "only the amdgpu ring timeout counts");
        assert_eq!(s.resets[0].pci, None);
    }

    #[test]
    fn parses_the_three_prefix_styles() {
        let log = "\
[  629.844077] amdgpu 0000:0b:00.0: amdgpu: [gfxhub] page fault (src_id:0 ring:24 vmid:8 pasid:32770, for process python pid 1796 thread python pid 1796)
[  629.844087] amdgpu 0000:0b:00.0: amdgpu:   in page starting at address 0x00007f5279bab000 from client 0x1b (UTCL2)
[Tue Jul 15 19:00:37 2025] amdgpu 0000:c5:00.0: amdgpu: [gfxhub] page fault (src_id:0 ring:24 vmid:8 pasid:32769)
[Tue Jul 15 19:00:37 2025] amdgpu 0000:c5:00.0: amdgpu:  in process python3 pid 2699 thread python3 pid 2699)
[Tue Jul 15 19:00:37 2025] amdgpu 0000:c5:00.0: amdgpu: GCVM_L2_PROTECTION_FAULT_STATUS:0x00801031
[Tue Jul 15 19:00:37 2025] amdgpu 0000:c5:00.0: amdgpu: \t Faulty UTCL2 client ID: TCP (0x8)
[Tue Jul 15 19:00:37 2025] amdgpu 0000:c5:00.0: amdgpu: \t RW: 0x0
Aug 23 23:38:11 host kernel: amdgpu 0000:74:00.0: amdgpu: [gfxhub0] no-retry page fault (src_id:0 ring:40 vmid:8 pasid:32771)
Dec 31 11:05:53 host kernel: amdgpu 0000:07:00.0: amdgpu: GPU reset begin!
";
        let s = scan(log);
        assert_eq!(s.faults.len(), 3);
        assert_eq!(s.faults[0].pci.as_deref(), Some("0000:0b:00.0"));
        assert_eq!(s.faults[0].process.as_deref(), Some("python"));
        assert_eq!(s.faults[0].pid, Some(1796));
        assert_eq!(s.faults[0].address.as_deref(), Some("0x00007f5279bab000"));
        assert_eq!(s.faults[1].process.as_deref(), Some("python3"));
        assert_eq!(s.faults[1].status, Some(0x00801031));
        assert_eq!(s.faults[1].client_name.as_deref(), Some("TCP (0x8)"));
        assert_eq!(s.faults[1].printed.len(), 2);
        assert_eq!(s.faults[2].retry, Some(false));
        assert_eq!(s.faults[2].hub, "gfxhub0");
        assert_eq!(s.resets.len(), 1);
    }
}
