//! The GPU memory-fault report, as text (stderr) and as JSON
//! (RMCP_FAULT_REPORT), built from one plain struct of facts that the
//! fault handler gathers (`crate::interpose::fault`).
//!
//! The handler runs while the process is dying, so everything here writes
//! into the caller's fixed buffers through `core::fmt`, without allocating.
//! A report is complete whatever the kernel names, or degrades on purpose:
//! when a buffer would overflow, the report is built again with kernel names
//! shortened (each marked with its full length) and then with fewer launches
//! listed (with the count of those left out), so the JSON is always valid
//! and the text always ends with its closing lines.

use crate::core::causes::{self, Causes, Override};
use crate::core::entry::Entry;
use crate::core::fault_outcome::Outcome;
use crate::core::launches::{self, Launcher, Shown, NAME_MAX};
use crate::core::registry::{Busy, Lookup};
use crate::core::report::{self, Escaped, FaultGpu, FaultProcess, FixedBuf};
use std::fmt::{self, Write};

/// Reports written at most per process (ROCm 7 lets a process go on after a
/// fault; later faults are counted, not reported).
pub const MAX_REPORTS_PER_PROCESS: u64 = 8;

/// Bytes of the text report (without the "rmcp: " prefixes). Sixteen
/// launch lines of the longest names the cache keeps fit with room to spare.
pub const TEXT_BYTES: usize = 16 << 10;
/// Bytes of the text report as written to stderr: the text plus a prefix
/// per line (fewer than 40 lines: every outside string is escaped, so only
/// the report's own line breaks remain).
pub const STDERR_BYTES: usize = TEXT_BYTES + 1024;
/// Bytes of the JSON report: the 64 launches a ring holds with the longest
/// names, plus the text, fit.
pub const JSON_BYTES: usize = 96 << 10;

/// Everything a fault report says, gathered by the handler.
#[derive(Clone, Copy, Debug)]
pub struct Facts<'a> {
    pub addr: usize,
    /// HSA_AMD_MEMORY_FAULT_* bits.
    pub reasons: u32,
    pub gpu: FaultGpu<'a>,
    /// The HSA agent's handle.
    pub agent: u64,
    pub process: FaultProcess,
    /// What the registry said about `addr`.
    pub found: Result<Lookup, Busy>,
    /// What the VMM records say, when `addr` is in a VMM reservation.
    pub vmm: Option<crate::core::vmm::VmmPlace>,
    /// CLOCK_MONOTONIC at the report.
    pub now_ns: u64,
    /// What HSA_OVERRIDE_GFX_VERSION (or its per-node form) does to this
    /// GPU, when it matters.
    pub gfx_override: Option<Override<'a>>,
    /// The override came from HSA_OVERRIDE_GFX_VERSION_<node>.
    pub override_per_node: bool,
    pub launches: InFlight<'a>,
    pub json_file: JsonFile<'a>,
    /// What the runtime does with the process next (the last line).
    pub next: Outcome,
}

/// The launches the rings held for the faulting GPU.
#[derive(Clone, Copy, Debug)]
pub struct InFlight<'a> {
    /// The faulting GPU's HIP ordinal; None: not known (all devices listed).
    pub device: Option<i32>,
    /// Launches recorded (and still in the rings) on the device(s).
    pub recorded: usize,
    /// Of those, known to have completed at a synchronisation.
    pub completed: usize,
    /// The others, newest first.
    pub listed: &'a [Shown<'a>],
}

/// Where the JSON report went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JsonFile<'a> {
    /// RMCP_FAULT_REPORT is not set.
    NotRequested,
    /// Created at this path (the JSON is written after the text).
    Created(&'a str),
    /// No file could be created: the last path tried, and why (the error
    /// and its errno), so the line names both.
    NotCreated { path: &'a str, why: &'a str },
}

/// How much of the launch list a report shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Limits {
    /// Bytes of each kernel name.
    name_max: usize,
    /// Launches listed at most.
    launches: usize,
}

/// Launch lines the text shows at most; the JSON report has them all.
pub const TEXT_LAUNCHES: usize = 16;

/// The text's levels, tried in order until the report fits.
const TEXT_LEVELS: [Limits; 5] = [
    Limits {
        name_max: NAME_MAX,
        launches: TEXT_LAUNCHES,
    },
    Limits {
        name_max: 160,
        launches: TEXT_LAUNCHES,
    },
    Limits {
        name_max: 80,
        launches: TEXT_LAUNCHES,
    },
    Limits {
        name_max: 80,
        launches: 4,
    },
    Limits {
        name_max: 0,
        launches: 0,
    },
];

/// The JSON's levels.
const JSON_LEVELS: [Limits; 5] = [
    Limits {
        name_max: NAME_MAX,
        launches: launches::SLOTS * launches::DEVICES,
    },
    Limits {
        name_max: 160,
        launches: launches::SLOTS * launches::DEVICES,
    },
    Limits {
        name_max: 80,
        launches: launches::SLOTS * launches::DEVICES,
    },
    Limits {
        name_max: 80,
        launches: TEXT_LAUNCHES,
    },
    Limits {
        name_max: 0,
        launches: 0,
    },
];

/// Writes the text report (lines without the "rmcp: " prefix, the last one
/// without a line break) into `out`, at the first level that fits. If even
/// the last level does not, the text is cut before its closing lines with a
/// marker, and the closing lines are kept.
pub fn write_text<const N: usize>(out: &mut FixedBuf<N>, f: &Facts) {
    for lim in TEXT_LEVELS {
        out.clear();
        let _ = text(out, f, lim);
        if !out.cut {
            return;
        }
    }
    const MARK: &str = "\n[rmcp cut the report here: its fixed buffer is full]\n";
    let mut tail = Count(0);
    let _ = closing(&mut tail, f);
    out.truncate(N.saturating_sub(tail.0 + MARK.len()));
    let _ = out.write_str(MARK);
    let _ = closing(out, f);
}

/// The text with "rmcp: " before each line and a line break after each,
/// as written to stderr.
pub fn write_prefixed<const N: usize>(out: &mut FixedBuf<N>, text: &str) {
    out.clear();
    for line in text.split('\n') {
        let _ = writeln!(out, "rmcp: {line}");
    }
}

/// Writes the JSON report (schema `rmcp_fault_report` 1; the CLI reads it;
/// fields are only ever added) into `out`, with `text` (the text report) as
/// its `text`, at the first level that fits. If even the last level does
/// not, the text is left out (`"text":null`); the JSON stays valid.
pub fn write_json<const N: usize>(out: &mut FixedBuf<N>, f: &Facts, text: &str) {
    for lim in JSON_LEVELS {
        out.clear();
        let _ = json(out, f, lim, Some(text));
        if !out.cut {
            return;
        }
    }
    out.clear();
    let _ = json(out, f, JSON_LEVELS[JSON_LEVELS.len() - 1], None);
}

/// Counts the bytes written through it.
struct Count(usize);

impl Write for Count {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0 += s.len();
        Ok(())
    }
}

fn causes_of<'a>(f: &Facts<'a>) -> Causes<'a> {
    Causes {
        addr: f.addr,
        node: f.gpu.node,
        gfx_override: f.gfx_override,
        override_per_node: f.override_per_node,
        vmm: f.vmm,
        place: causes::place(f.addr, f.found),
    }
}

/// The sentence after the lookup line: what the verdict means.
fn verdict_sentence(found: Result<Lookup, Busy>) -> &'static str {
    match found {
        Ok(Lookup::Freed(_)) => "the GPU touched memory after it was freed; look for a kernel or copy still using this buffer after its free",
        Ok(Lookup::Unknown { .. }) => "no allocation made through HIP or HSA contains this address (an out-of-bounds index, a stale pointer, or memory from another allocator)",
        _ => "the GPU had no valid page-table entry for this address at the time of the access",
    }
}

fn text(w: &mut impl Write, f: &Facts, lim: Limits) -> fmt::Result {
    write!(
        w,
        "GPU memory fault at address {:#x} on {} (node {}, agent {:#x}) in ",
        f.addr,
        Escaped(f.gpu.name),
        f.gpu.node,
        f.agent
    )?;
    report::write_process(w, f.process)?;
    w.write_str("; reason: ")?;
    report::write_reasons(w, f.reasons)?;
    w.write_char('\n')?;
    report::write_lookup(w, f.addr, f.found, f.now_ns)?;
    w.write_char('\n')?;
    w.write_str(verdict_sentence(f.found))?;
    w.write_char('\n')?;
    causes::write_lines(w, &causes_of(f), "likely cause: ", f.now_ns)?;
    launch_lines(w, &f.launches, lim)?;
    closing(w, f)
}

/// The closing lines: where the JSON went, then what happens next (always
/// the last line).
fn closing(w: &mut impl Write, f: &Facts) -> fmt::Result {
    match f.json_file {
        JsonFile::NotRequested => {}
        JsonFile::Created(path) => writeln!(w, "the report as JSON: {}", Escaped(path))?,
        JsonFile::NotCreated { path, why } => writeln!(
            w,
            "could not create the JSON report {} ({why}); this text is the only copy",
            Escaped(path)
        )?,
    }
    f.next.write_line(w)
}

/// The entry points whose launches rmcp records, from the hook table:
/// "hipLaunchKernel, ... and hipGraphLaunch".
fn write_recorded_entry_points(w: &mut impl Write) -> fmt::Result {
    let mut recorded = Entry::ALL
        .iter()
        .filter(|e| Launcher::of_entry(**e).is_some())
        .peekable();
    let mut first = true;
    while let Some(e) = recorded.next() {
        if !first {
            w.write_str(if recorded.peek().is_some() {
                ", "
            } else {
                " and "
            })?;
        }
        w.write_str(e.name())?;
        first = false;
    }
    Ok(())
}

fn launch_lines(w: &mut impl Write, f: &InFlight, lim: Limits) -> fmt::Result {
    let on = |w: &mut dyn Write| match f.device {
        Some(d) => write!(w, "HIP device {d} (this GPU)"),
        None => w.write_str("any HIP device (rmcp could not tell which device this GPU is)"),
    };
    if f.recorded == 0 {
        w.write_str("kernels in flight: no kernel launch was recorded on ")?;
        on(w)?;
        w.write_str(" (rmcp records ")?;
        write_recorded_entry_points(w)?;
        return w.write_str(")\n");
    }
    if f.listed.is_empty() {
        write!(
            w,
            "kernels in flight: none; all {} launches recorded on ",
            f.recorded
        )?;
        on(w)?;
        return w.write_str(" had completed at a synchronisation before the fault\n");
    }
    w.write_str("kernels launched on ")?;
    on(w)?;
    writeln!(
        w,
        " and not known to have completed, newest first ({} of {} recorded; {} completed at a synchronisation):",
        f.listed.len(),
        f.recorded,
        f.completed
    )?;
    let shown = f.listed.len().min(lim.launches);
    for s in &f.listed[..shown] {
        w.write_str("  ")?;
        launches::write_line(w, s, lim.name_max)?;
        w.write_char('\n')?;
    }
    if f.listed.len() > shown {
        writeln!(
            w,
            "  ... and {} older (all of them in RMCP_FAULT_REPORT)",
            f.listed.len() - shown
        )?;
    }
    Ok(())
}

fn json(w: &mut impl Write, f: &Facts, lim: Limits, text: Option<&str>) -> fmt::Result {
    write!(
        w,
        "{{\"rmcp_fault_report\":1,\"address\":\"{:#x}\",\"reason_mask\":{},\"reasons\":[",
        f.addr, f.reasons
    )?;
    let mut first = true;
    for (bit, name) in crate::abi::hsa::FAULT_REASONS {
        if f.reasons & bit != 0 {
            write!(w, "{}\"{}\"", if first { "" } else { "," }, name)?;
            first = false;
        }
    }
    w.write_str("],\"gpu\":{\"name\":\"")?;
    report::write_json_str(w, f.gpu.name)?;
    write!(w, "\",\"node\":{}}},\"verdict\":", f.gpu.node)?;
    match f.found {
        Ok(Lookup::Live(a)) => {
            w.write_str("\"live\",\"allocation\":")?;
            report::write_json_allocation(w, &a, f.addr, f.now_ns, None)?;
        }
        Ok(Lookup::Freed(fr)) => {
            w.write_str("\"freed\",\"allocation\":")?;
            report::write_json_allocation(w, &fr.alloc, f.addr, f.now_ns, Some(fr.freed_ns))?;
        }
        Ok(Lookup::Unknown { .. }) => w.write_str("\"unknown\",\"allocation\":null")?,
        Err(Busy) => w.write_str("\"busy\",\"allocation\":null")?,
    }
    w.write_char(',')?;
    causes::write_json(w, &causes_of(f), f.now_ns)?;
    let l = &f.launches;
    w.write_str(",\"launches\":{\"device\":")?;
    match l.device {
        Some(d) => write!(w, "{d}")?,
        None => w.write_str("null")?,
    }
    write!(
        w,
        ",\"recorded\":{},\"completed\":{},\"not_completed\":[",
        l.recorded, l.completed
    )?;
    let shown = l.listed.len().min(lim.launches);
    for (i, s) in l.listed[..shown].iter().enumerate() {
        if i > 0 {
            w.write_char(',')?;
        }
        launches::write_json(w, s, lim.name_max)?;
    }
    write!(
        w,
        "],\"not_completed_omitted\":{}}},\"process\":{{\"pid\":{}",
        l.listed.len() - shown,
        f.process.pid
    )?;
    for (key, v) in [
        ("rank", f.process.rank),
        ("local_rank", f.process.local_rank),
    ] {
        match v {
            Some(v) => write!(w, ",\"{key}\":{v}")?,
            None => write!(w, ",\"{key}\":null")?,
        }
    }
    match text {
        Some(t) => {
            w.write_str("},\"text\":\"")?;
            report::write_json_str(w, t)?;
            w.write_char('"')?;
        }
        None => w.write_str("},\"text\":null")?,
    }
    // What the runtime does next: the text's last line, and its kind.
    write!(w, ",\"next\":{{\"id\":\"{}\",\"line\":\"", f.next.id())?;
    let mut line = FixedBuf::<1024>::new();
    let _ = f.next.write_line(&mut line);
    report::write_json_str(w, line.as_str())?;
    w.write_str("\"}}\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::arch::Gfx;
    use crate::core::launches::{KernelName, Launch};
    use crate::core::registry::{Allocation, Freed, Memory};

    fn alloc(base: usize, size: usize) -> Allocation {
        Allocation {
            base,
            size,
            entry: Entry::HipMalloc,
            requested_flags: 0,
            applied_flags: 0,
            memory: Memory::Device(0),
            thread: 77,
            time_ns: 1_000_000,
            rewritten: false,
        }
    }

    fn facts<'a>(found: Result<Lookup, Busy>, addr: usize, listed: &'a [Shown<'a>]) -> Facts<'a> {
        Facts {
            addr,
            reasons: 1,
            gpu: FaultGpu {
                name: "gfx1030",
                node: 1,
            },
            agent: 0xa9e,
            process: FaultProcess {
                pid: 4321,
                rank: Some(3),
                local_rank: None,
            },
            found,
            vmm: None,
            now_ns: 13_000_000,
            gfx_override: None,
            override_per_node: false,
            launches: InFlight {
                device: Some(0),
                recorded: 0,
                completed: 0,
                listed,
            },
            json_file: JsonFile::NotRequested,
            next: Outcome::ContinuesWithIllegalAddress,
        }
    }

    struct Built {
        text: String,
        stderr: String,
        json: serde_json::Value,
        raw_json: String,
    }

    /// Builds both reports in the buffers the fault handler uses (boxed:
    /// they are static there) and parses the JSON.
    fn build(f: &Facts) -> Built {
        let mut t = Box::new(FixedBuf::<TEXT_BYTES>::new());
        let mut o = Box::new(FixedBuf::<STDERR_BYTES>::new());
        let mut j = Box::new(FixedBuf::<JSON_BYTES>::new());
        write_text(&mut t, f);
        write_prefixed(&mut o, t.as_str());
        write_json(&mut j, f, t.as_str());
        assert!(!o.cut, "the prefixed text fits");
        let raw_json = j.as_str().to_string();
        let json = serde_json::from_str(&raw_json)
            .unwrap_or_else(|e| panic!("invalid JSON ({e}): {raw_json}"));
        Built {
            text: t.as_str().to_string(),
            stderr: o.as_str().to_string(),
            json,
            raw_json,
        }
    }

    const CLOSING: &str = crate::core::fault_outcome::CONTINUES;

    #[test]
    fn live_report_names_the_allocation_and_ends_with_what_happens_next() {
        let f = facts(Ok(Lookup::Live(alloc(0x1000, 4096))), 0x1010, &[]);
        let b = build(&f);
        let lines: Vec<&str> = b.text.split('\n').collect();
        assert_eq!(lines[0], "GPU memory fault at address 0x1010 on gfx1030 (node 1, agent 0xa9e) in process 4321 (RANK 3); reason: page not present");
        assert!(lines[1].starts_with("address 0x1010 is 16 bytes into a live allocation: hipMalloc of 4096 bytes at 0x1000-0x2000"), "{}", b.text);
        assert_eq!(
            lines[2],
            "the GPU had no valid page-table entry for this address at the time of the access"
        );
        assert!(
            lines[3]
                .starts_with("likely cause: in bounds: address 0x1010 is 16 bytes into hipMalloc"),
            "{}",
            b.text
        );
        assert!(lines[4].starts_with("likely cause: kernel, firmware and driver problems"));
        assert_eq!(lines[5], "kernels in flight: no kernel launch was recorded on HIP device 0 (this GPU) (rmcp records hipLaunchKernel, hipModuleLaunchKernel, hipExtLaunchKernel, hipExtModuleLaunchKernel, hipLaunchCooperativeKernel, hipGraphLaunch, hipLaunchKernel_spt, hipLaunchCooperativeKernel_spt, hipGraphLaunch_spt, hipModuleLaunchCooperativeKernel, hipLaunchKernelExC, hipDrvLaunchKernelEx, hipLaunchCooperativeKernelMultiDevice, hipExtLaunchMultiKernelMultiDevice and hipModuleLaunchCooperativeKernelMultiDevice)");
        assert_eq!(lines[6], CLOSING);
        assert_eq!(lines.len(), 7);
        assert!(b
            .stderr
            .starts_with("rmcp: GPU memory fault at address 0x1010"));
        assert!(b.stderr.ends_with(&format!("\nrmcp: {CLOSING}\n")));
        assert_eq!(b.json["verdict"], "live");
        assert_eq!(b.json["allocation"]["offset"], 16);
        assert_eq!(b.json["causes"][0]["id"], "in-bounds");
        assert_eq!(b.json["process"]["rank"], 3);
        assert!(b.json["process"]["local_rank"].is_null());
        assert_eq!(b.json["text"], b.text.as_str());
        assert!(b.raw_json.starts_with("{\"rmcp_fault_report\":1,\"address\":\"0x1010\",\"reason_mask\":1,\"reasons\":[\"page not present\"],\"gpu\":{\"name\":\"gfx1030\",\"node\":1},\"verdict\":\"live\",\"allocation\":{\"entry_point\":\"hipMalloc\""), "{}", b.raw_json);
        assert!(b.raw_json.ends_with("}\n"));
    }

    #[test]
    fn freed_report_says_use_after_free() {
        let freed = Freed {
            alloc: alloc(0x1000, 4096),
            freed_ns: 3_000_000,
        };
        let b = build(&facts(Ok(Lookup::Freed(freed)), 0x1010, &[]));
        assert!(b.text.contains("\naddress 0x1010 is 16 bytes into an allocation that was FREED 10 ms ago (use after free): hipMalloc"), "{}", b.text);
        assert!(b.text.contains("\nthe GPU touched memory after it was freed; look for a kernel or copy still using this buffer after its free\n"));
        assert!(b
            .text
            .contains("\nlikely cause: use after free: address 0x1010"));
        assert_eq!(b.json["verdict"], "freed");
        assert_eq!(b.json["allocation"]["freed_ms_ago"], 10);
        assert_eq!(b.json["causes"][0]["id"], "use-after-free");
    }

    #[test]
    fn out_of_bounds_report_names_the_neighbour() {
        let found = Ok(Lookup::Unknown {
            below: Some(alloc(0x1000, 0x1000)),
            above: None,
        });
        let b = build(&facts(found, 0x2040, &[]));
        assert!(b.text.contains("\naddress 0x2040 is in no allocation rmcp has seen; nearest below ends 64 bytes before it: hipMalloc"), "{}", b.text);
        assert!(b
            .text
            .contains("\nno allocation made through HIP or HSA contains this address"));
        assert!(b.text.contains("\nlikely cause: out of bounds: address 0x2040 is 64 bytes past the end of hipMalloc of 4096 bytes at 0x1000-0x2000 (live)\n"), "{}", b.text);
        assert_eq!(b.json["verdict"], "unknown");
        assert!(b.json["allocation"].is_null());
        assert_eq!(b.json["causes"][0]["id"], "out-of-bounds-past-end");
        assert_eq!(b.json["causes"][0]["distance_bytes"], 64);
    }

    #[test]
    fn none_and_busy_reports_say_what_is_not_known() {
        let nothing = Ok(Lookup::Unknown {
            below: None,
            above: None,
        });
        let b = build(&facts(nothing, 0x7000_0000, &[]));
        assert!(b.text.contains("nothing below it; nothing above it\n"));
        assert!(b
            .text
            .contains("\nlikely cause: stray pointer: address 0x70000000"));
        assert_eq!(b.json["causes"][0]["id"], "no-allocation-nearby");
        let busy = build(&facts(Err(Busy), 0x10, &[]));
        assert!(busy
            .text
            .contains("the allocation registry was locked by another thread"));
        assert_eq!(busy.json["verdict"], "busy");
        assert_eq!(busy.json["causes"][0]["id"], "registry-busy");
    }

    #[test]
    fn override_report_puts_the_override_first() {
        let mut f = facts(Ok(Lookup::Live(alloc(0x1000, 64))), 0x1000, &[]);
        f.gfx_override = Some(Override::Mismatch {
            value: "10.3.0",
            runs: Gfx::new(10, 3, 0),
            real: Gfx::new(10, 1, 0),
            target_version: 100100,
        });
        let b = build(&f);
        let first_cause = b
            .text
            .lines()
            .find(|l| l.starts_with("likely cause: "))
            .unwrap();
        assert!(first_cause.starts_with("likely cause: HSA_OVERRIDE_GFX_VERSION=10.3.0 makes ROCm run gfx1030 code on this gfx1010 GPU (node 1;"), "{}", b.text);
        assert_eq!(b.json["causes"][0]["id"], "hsa-override-mismatch");
        assert_eq!(b.json["causes"][1]["id"], "in-bounds");
        // An outside string cannot add lines to the report.
        f.gfx_override = Some(Override::Invalid { value: "x\ny" });
        f.gpu.name = "gfx\u{1b}[2J";
        let b = build(&f);
        assert!(
            b.text.contains("HSA_OVERRIDE_GFX_VERSION='x\\x0ay'"),
            "{}",
            b.text
        );
        assert!(b
            .text
            .starts_with("GPU memory fault at address 0x1000 on gfx\\x1b[2J (node 1"));
        assert_eq!(b.json["gpu"]["name"], "gfx\u{1b}[2J");
        assert_eq!(b.json["causes"][0]["hsa_override_gfx_version"], "x\ny");
    }

    fn launch(seq: u64, name: Option<KernelName<'static>>) -> Shown<'static> {
        Shown {
            launch: Launch {
                seq,
                launcher: Launcher::LaunchKernel as u8,
                device: 0,
                thread: 9,
                handle: 0x5000,
                grid: [64, 1, 1],
                block: [256, 1, 1],
                stream: 0,
                ticks: 0,
            },
            name,
            ns_ago: Some(2_000_000),
        }
    }

    fn name(text: &'static str) -> Option<KernelName<'static>> {
        Some(KernelName {
            text,
            demangled: true,
            full_len: text.len(),
        })
    }

    #[test]
    fn launches_report_lists_the_newest_and_counts_the_rest() {
        let listed: Vec<Shown> = (0..20)
            .rev()
            .map(|s| launch(s, name("vecAdd(float*, int)")))
            .collect();
        let mut f = facts(Ok(Lookup::Live(alloc(0x1000, 64))), 0x1000, &listed);
        f.launches.recorded = 25;
        f.launches.completed = 5;
        f.json_file = JsonFile::Created("/tmp/r/fault-4321.json");
        let b = build(&f);
        let lines: Vec<&str> = b.text.split('\n').collect();
        let head = lines
            .iter()
            .position(|l| l.starts_with("kernels launched on"))
            .unwrap();
        assert_eq!(lines[head], "kernels launched on HIP device 0 (this GPU) and not known to have completed, newest first (20 of 25 recorded; 5 completed at a synchronisation):");
        assert_eq!(lines[head + 1], "  #19 vecAdd(float*, int) via hipLaunchKernel: grid 64x1x1, block 256x1x1, stream 0x0, thread 9, 2 ms before the fault");
        assert!(lines[head + 16].starts_with("  #4 vecAdd"));
        assert_eq!(
            lines[head + 17],
            "  ... and 4 older (all of them in RMCP_FAULT_REPORT)"
        );
        assert_eq!(
            lines[head + 18],
            "the report as JSON: /tmp/r/fault-4321.json"
        );
        assert_eq!(lines[head + 19], CLOSING);
        assert_eq!(lines.len(), head + 20);
        let l = &b.json["launches"];
        assert_eq!(
            (
                l["device"].as_i64(),
                l["recorded"].as_u64(),
                l["completed"].as_u64()
            ),
            (Some(0), Some(25), Some(5))
        );
        assert_eq!(l["not_completed"].as_array().unwrap().len(), 20);
        assert_eq!(l["not_completed_omitted"], 0);
        assert_eq!(l["not_completed"][0]["sequence"], 19);
        assert_eq!(l["not_completed"][0]["kernel"], "vecAdd(float*, int)");
        assert_eq!(l["not_completed"][0]["kernel_shortened"], false);

        // All completed; unknown device; no JSON file.
        let mut f = facts(Ok(Lookup::Live(alloc(0x1000, 64))), 0x1000, &[]);
        f.launches = InFlight {
            device: None,
            recorded: 3,
            completed: 3,
            listed: &[],
        };
        f.json_file = JsonFile::NotCreated {
            path: "/r/missing/fault-4321.json",
            why: "No such file or directory, errno 2",
        };
        let b = build(&f);
        assert!(b.text.contains("\nkernels in flight: none; all 3 launches recorded on any HIP device (rmcp could not tell which device this GPU is) had completed at a synchronisation before the fault\n"), "{}", b.text);
        assert!(b.text.ends_with(&format!("\ncould not create the JSON report /r/missing/fault-4321.json (No such file or directory, errno 2); this text is the only copy\n{CLOSING}")));
        assert!(b.json["launches"]["device"].is_null());
    }

    #[test]
    fn control_bytes_in_kernel_names_are_escaped_in_the_text() {
        let listed = [launch(0, name("evil\n\u{1b}[31mkernel\u{7f}"))];
        let mut f = facts(Ok(Lookup::Live(alloc(0x1000, 64))), 0x1000, &listed);
        f.launches.recorded = 1;
        let b = build(&f);
        assert!(
            b.text
                .contains("  #0 evil\\x0a\\x1b[31mkernel\\x7f via hipLaunchKernel"),
            "{}",
            b.text
        );
        assert!(!b.stderr.contains('\u{1b}'));
        assert_eq!(
            b.json["launches"]["not_completed"][0]["kernel"],
            "evil\n\u{1b}[31mkernel\u{7f}"
        );
    }

    /// A demangled C++ template kernel name of `len` bytes, like PyTorch's.
    fn template_name(len: usize) -> &'static str {
        let mut s = String::from(
            "void at::native::elementwise_kernel<128, 4, at::native::gpu_kernel_impl<",
        );
        while s.len() < len - 2 {
            s.push_str("at::native::Loader<float>, ");
        }
        s.truncate(len - 2);
        s.push_str(">(");
        assert_eq!(s.len(), len);
        Box::leak(s.into_boxed_str())
    }

    /// 64 launches in flight, as a ring holds at most, of one kernel whose
    /// name has `len` bytes (the cache keeps `NAME_MAX - 1` of them).
    fn long_names(len: usize) -> Vec<Shown<'static>> {
        let full = template_name(len);
        let kept = &full[..full.len().min(NAME_MAX - 1)];
        (0..64)
            .rev()
            .map(|s| {
                launch(
                    s,
                    Some(KernelName {
                        text: kept,
                        demangled: true,
                        full_len: len,
                    }),
                )
            })
            .collect()
    }

    #[test]
    fn long_kernel_names_leave_both_reports_complete() {
        for len in [216, 400] {
            let listed = long_names(len);
            let mut f = facts(Ok(Lookup::Live(alloc(0x1000, 64))), 0x1000, &listed);
            f.launches.recorded = 64;
            f.json_file = JsonFile::Created("/r/fault.json");
            let b = build(&f);
            assert!(
                b.text
                    .ends_with(&format!("\nthe report as JSON: /r/fault.json\n{CLOSING}")),
                "{len}: {}",
                b.text
            );
            assert!(b
                .text
                .contains("\n  ... and 48 older (all of them in RMCP_FAULT_REPORT)\n"));
            let l = &b.json["launches"]["not_completed"];
            assert_eq!(l.as_array().unwrap().len(), 64, "{len}: all listed");
            assert_eq!(b.json["launches"]["not_completed_omitted"], 0);
            assert_eq!(b.json["text"], b.text.as_str());
            if len == 216 {
                // Complete: nothing shortened.
                assert!(b
                    .text
                    .contains(&format!("  #63 {} via hipLaunchKernel", template_name(216))));
                assert_eq!(l[0]["kernel"], template_name(216));
                assert_eq!(l[63]["kernel_shortened"], false);
            } else {
                // The cache kept 375 bytes; both reports say so.
                let marked = format!(
                    "{}... (400 bytes, shortened)",
                    &template_name(400)[..NAME_MAX - 1]
                );
                assert!(
                    b.text
                        .contains(&format!("  #63 {marked} via hipLaunchKernel")),
                    "{}",
                    b.text
                );
                assert_eq!(l[0]["kernel"], marked.as_str());
                assert_eq!(l[0]["kernel_shortened"], true);
            }
        }
    }

    #[test]
    fn reports_degrade_on_purpose_when_even_the_large_buffers_are_full() {
        // Names made of quotes double in JSON; control bytes become \xNN in
        // the text and \u00NN in the JSON: the worst the cache can hold.
        let quotes: &'static str = Box::leak("\"".repeat(NAME_MAX - 1).into_boxed_str());
        let controls: &'static str = Box::leak("\u{1}".repeat(NAME_MAX - 1).into_boxed_str());
        for worst in [quotes, controls] {
            let listed: Vec<Shown> = (0..64)
                .rev()
                .map(|s| {
                    launch(
                        s,
                        Some(KernelName {
                            text: worst,
                            demangled: false,
                            full_len: 5000,
                        }),
                    )
                })
                .collect();
            let mut f = facts(
                Ok(Lookup::Unknown {
                    below: Some(alloc(0x1000, 64)),
                    above: Some(alloc(0x9000, 64)),
                }),
                0x5000,
                &listed,
            );
            f.launches.recorded = 64;
            f.gfx_override = Some(Override::Invalid { value: worst });
            f.json_file = JsonFile::Created(worst);
            let b = build(&f);
            assert!(b.text.contains("\nthe report as JSON: "), "{}", b.text);
            assert!(b.text.ends_with(CLOSING), "closing lines kept");
            let l = &b.json["launches"];
            let n = l["not_completed"].as_array().unwrap().len() as u64;
            assert_eq!(
                n + l["not_completed_omitted"].as_u64().unwrap(),
                64,
                "every launch listed or counted"
            );
            assert!(b.raw_json.len() <= JSON_BYTES);
            // Shortened names carry the marker with the full length.
            assert!(b.text.contains("... (5000 bytes, shortened)"), "{}", b.text);
        }
    }

    #[test]
    fn small_buffers_shorten_names_then_list_fewer_launches() {
        let listed = long_names(300);
        let mut f = facts(Ok(Lookup::Live(alloc(0x1000, 64))), 0x1000, &listed);
        f.launches.recorded = 64;
        // 4 KiB: names are shortened to 80 bytes and 4 lines are shown.
        let mut t = FixedBuf::<4096>::new();
        write_text(&mut t, &f);
        assert!(!t.cut);
        let text = t.as_str();
        let head = &template_name(300)[..80];
        assert!(
            text.contains(&format!("  #63 {head}... (300 bytes, shortened) via")),
            "{text}"
        );
        assert!(
            text.contains("\n  ... and 60 older (all of them in RMCP_FAULT_REPORT)\n"),
            "{text}"
        );
        assert!(text.ends_with(CLOSING));
        // A buffer too small for anything keeps the closing line.
        let mut tiny = FixedBuf::<700>::new();
        write_text(&mut tiny, &f);
        assert!(
            tiny.as_str().ends_with(&format!(
                "\n[rmcp cut the report here: its fixed buffer is full]\n{CLOSING}"
            )),
            "{}",
            tiny.as_str()
        );
        // JSON: fewer launches, counted; without the text if need be.
        let mut j = FixedBuf::<16384>::new();
        write_json(&mut j, &f, text);
        let v: serde_json::Value = serde_json::from_str(j.as_str()).unwrap();
        assert_eq!(v["launches"]["not_completed"].as_array().unwrap().len(), 16);
        assert_eq!(v["launches"]["not_completed_omitted"], 48);
        let mut j = FixedBuf::<2048>::new();
        write_json(&mut j, &f, text);
        let v: serde_json::Value = serde_json::from_str(j.as_str()).unwrap();
        assert!(v["text"].is_null());
        assert_eq!(v["launches"]["not_completed_omitted"], 64);
    }
}
