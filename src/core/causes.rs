//! The likely causes of a GPU memory fault that can be named without a GPU:
//! an HSA_OVERRIDE_GFX_VERSION that differs from the GPU's real
//! architecture, where the address fell relative to the allocations rmcp
//! knows, and (always) a pointer to `rmcp doctor` for kernel and firmware
//! causes. Pure code: the facts are gathered ahead of time (the override at
//! configuration, the real architectures from KFD sysfs when the fault
//! handler is registered) and the fault handler only formats them, into
//! fixed buffers through `core::fmt`, without allocating.

use crate::arch::Gfx;
use crate::entry::Entry;
use crate::registry::{Allocation, Busy, Lookup};
use crate::report::{write_json_allocation, write_json_str, Escaped};
use std::fmt::{self, Write};

/// An address this close to an allocation (before its start or past its
/// end) is called out of bounds of it; farther away it is "in nothing".
/// GPU out-of-bounds accesses are usually a few elements or rows past a
/// buffer; 1 MiB covers a stray row of a large tensor without claiming a
/// neighbour for a wild pointer.
pub const NEARBY_BYTES: usize = 1 << 20;

/// Reads `gfx_target_version` from the text of a KFD topology node's
/// `properties` file ("key value" lines). None if absent or not a number.
pub fn gfx_target_version(properties: &str) -> Option<u32> {
    properties.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        (it.next()? == "gfx_target_version")
            .then(|| it.next()?.parse().ok())
            .flatten()
    })
}

/// The KFD nodes' real architectures, read once from sysfs: (node,
/// gfx_target_version) pairs, at most `MAX_NODES`.
#[derive(Clone, Copy, Debug)]
pub struct KfdArchs {
    nodes: [(u32, u32); KfdArchs::MAX_NODES],
    len: usize,
}

impl Default for KfdArchs {
    fn default() -> Self {
        KfdArchs {
            nodes: [(0, 0); KfdArchs::MAX_NODES],
            len: 0,
        }
    }
}

impl KfdArchs {
    pub const MAX_NODES: usize = 64;

    pub fn push(&mut self, node: u32, target_version: u32) {
        if self.len < Self::MAX_NODES {
            self.nodes[self.len] = (node, target_version);
            self.len += 1;
        }
    }

    /// The node's gfx_target_version, if sysfs had one.
    pub fn get(&self, node: u32) -> Option<u32> {
        self.nodes[..self.len]
            .iter()
            .find(|(n, _)| *n == node)
            .map(|(_, v)| *v)
    }
}

/// HSA_OVERRIDE_GFX_VERSION_<node> values, read for nodes 0 to
/// `KfdArchs::MAX_NODES - 1` when the fault handler is registered (the
/// handler reads no environment).
#[derive(Clone, Debug, Default)]
pub struct NodeOverrides {
    set: Vec<(u32, String)>,
}

impl NodeOverrides {
    /// Reads HSA_OVERRIDE_GFX_VERSION_<node> for each of `nodes` through
    /// `lookup` (the environment). Values are kept as given, cut at 48
    /// characters like the global variable's.
    pub fn read(nodes: impl Iterator<Item = u32>, lookup: impl Fn(&str) -> Option<String>) -> Self {
        let set = nodes
            .filter_map(|n| {
                let v = lookup(&format!("{}_{n}", crate::arch::OVERRIDE_VAR))?;
                Some((n, v.chars().take(48).collect()))
            })
            .collect();
        NodeOverrides { set }
    }

    pub fn get(&self, node: u32) -> Option<&str> {
        self.set
            .iter()
            .find(|(n, _)| *n == node)
            .map(|(_, v)| v.as_str())
    }
}

/// The override that applies to `node`, with libhsakmt's precedence
/// (`topology.c`): HSA_OVERRIDE_GFX_VERSION_<node> when it is set, even to
/// an invalid value, else HSA_OVERRIDE_GFX_VERSION. Returns the value and
/// whether it is the per-node form.
pub fn node_override<'a>(
    per_node: Option<&'a str>,
    global: Option<&'a str>,
) -> Option<(&'a str, bool)> {
    per_node.map(|v| (v, true)).or(global.map(|v| (v, false)))
}

/// The override variable's name as the report writes it.
pub struct OverrideVar {
    pub node: u32,
    pub per_node: bool,
}

impl fmt::Display for OverrideVar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(crate::arch::OVERRIDE_VAR)?;
        if self.per_node {
            write!(f, "_{}", self.node)?;
        }
        Ok(())
    }
}

/// What HSA_OVERRIDE_GFX_VERSION does to the faulting GPU, when it matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Override<'a> {
    /// Set, valid, and different from the GPU's real architecture.
    Mismatch {
        value: &'a str,
        runs: Gfx,
        real: Gfx,
        target_version: u32,
    },
    /// Set and valid, but KFD sysfs gave no real architecture to compare.
    RealUnknown { value: &'a str, runs: Gfx },
    /// Set to something ROCm cannot parse.
    Invalid { value: &'a str },
}

/// None when the override is unset or names the GPU's own architecture.
pub fn override_cause(value: Option<&str>, target_version: Option<u32>) -> Option<Override<'_>> {
    let value = value?;
    let Some(runs) = Gfx::from_override(value) else {
        return Some(Override::Invalid { value });
    };
    match target_version.and_then(Gfx::from_target_version) {
        Some(real) if real == runs => None,
        Some(real) => Some(Override::Mismatch {
            value,
            runs,
            real,
            target_version: target_version.unwrap_or(0),
        }),
        None => Some(Override::RealUnknown { value, runs }),
    }
}

/// Where the faulting address fell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// Inside a live allocation: not an indexing error on that buffer.
    InLive { offset: usize, alloc: Allocation },
    /// `bytes` past the end of a live allocation (0 = the first byte after it).
    PastEnd { bytes: usize, alloc: Allocation },
    /// `bytes` before the start of a live allocation.
    BeforeStart { bytes: usize, alloc: Allocation },
    /// Inside an allocation freed `freed_ns` (CLOCK_MONOTONIC) ago.
    Freed {
        offset: usize,
        alloc: Allocation,
        freed_ns: u64,
    },
    /// No allocation contains it or is within `NEARBY_BYTES`.
    Nothing,
    /// The registry could not be read without waiting.
    Unknown,
}

/// Classifies `addr` from the registry's answer. Past-the-end wins over
/// before-the-start at equal distance (reading past a buffer is the common
/// bug).
pub fn place(addr: usize, found: Result<Lookup, Busy>) -> Place {
    match found {
        Ok(Lookup::Live(a)) => Place::InLive {
            offset: addr - a.base,
            alloc: a,
        },
        Ok(Lookup::Freed(f)) => Place::Freed {
            offset: addr - f.alloc.base,
            alloc: f.alloc,
            freed_ns: f.freed_ns,
        },
        Ok(Lookup::Unknown { below, above }) => {
            let past = below.map(|b| (addr - b.base.saturating_add(b.size), b));
            let before = above.map(|a| (a.base - addr, a));
            match (past, before) {
                (Some((p, b)), Some((q, _))) if p <= q && p < NEARBY_BYTES => {
                    Place::PastEnd { bytes: p, alloc: b }
                }
                (Some((p, b)), None) if p < NEARBY_BYTES => Place::PastEnd { bytes: p, alloc: b },
                (_, Some((q, a))) if q <= NEARBY_BYTES => Place::BeforeStart { bytes: q, alloc: a },
                _ => Place::Nothing,
            }
        }
        Err(Busy) => Place::Unknown,
    }
}

fn ms(later_ns: u64, earlier_ns: u64) -> u64 {
    later_ns.saturating_sub(earlier_ns) / 1_000_000
}

fn short_alloc(w: &mut impl Write, a: &Allocation) -> fmt::Result {
    write!(
        w,
        "{} of {} bytes at {:#x}-{:#x}",
        a.entry.name(),
        a.size,
        a.base,
        a.base.saturating_add(a.size)
    )
}

/// The override line (without the "rmcp: likely cause: " prefix). `per_node`:
/// the value came from HSA_OVERRIDE_GFX_VERSION_<node>.
pub fn write_override(w: &mut impl Write, o: &Override, node: u32, per_node: bool) -> fmt::Result {
    let var = OverrideVar { node, per_node };
    match *o {
        Override::Mismatch {
            value,
            runs,
            real,
            target_version,
        } => write!(
            w,
            "{var}={} makes ROCm run {runs} code on this {real} GPU (node {node}; KFD gfx_target_version {target_version}), a different instruction set; unset it and use a build with {real} code objects",
            Escaped(value)
        ),
        Override::RealUnknown { value, runs } => write!(
            w,
            "{var}={} makes ROCm run {runs} code on this GPU (node {node}), whose real architecture KFD sysfs did not give; if it is not {runs}, unset the override",
            Escaped(value)
        ),
        Override::Invalid { value } => write!(
            w,
            "{var}='{}' is set but is not MAJOR.MINOR.STEPPING (e.g. 10.3.0); unset it",
            Escaped(value)
        ),
    }
}

/// The address line (without the prefix).
pub fn write_place(w: &mut impl Write, addr: usize, p: &Place, now_ns: u64) -> fmt::Result {
    match p {
        Place::InLive { offset, alloc } => {
            write!(w, "in bounds: address {addr:#x} is {offset} bytes into ")?;
            short_alloc(w, alloc)?;
            w.write_str(", a live allocation, so the access was not past either end of it")
        }
        Place::PastEnd { bytes, alloc } => {
            write!(w, "out of bounds: address {addr:#x} is {bytes} bytes past the end of ")?;
            short_alloc(w, alloc)?;
            w.write_str(" (live)")
        }
        Place::BeforeStart { bytes, alloc } => {
            write!(w, "out of bounds: address {addr:#x} is {bytes} bytes before the start of ")?;
            short_alloc(w, alloc)?;
            w.write_str(" (live)")
        }
        Place::Freed {
            offset,
            alloc,
            freed_ns,
        } => {
            write!(w, "use after free: address {addr:#x} is {offset} bytes into ")?;
            short_alloc(w, alloc)?;
            write!(w, ", freed {} ms ago", ms(now_ns, *freed_ns))
        }
        Place::Nothing => write!(
            w,
            "stray pointer: address {addr:#x} is in nothing rmcp has seen and within {} KiB of no allocation (a stale or corrupted pointer, or memory from another allocator)",
            NEARBY_BYTES / 1024
        ),
        Place::Unknown => w.write_str(
            "where the address fell is not known: the allocation registry was locked by another thread",
        ),
    }
}

/// The registration a faulting address lies in, when the place is inside
/// host memory registered with hipHostRegister: the GPU then accessed the
/// host pointer itself. HIP maps registered pages at a device address that
/// can differ from the host address (ROCm 7.2: sglang #33968, #38967), so a
/// kernel handed the host pointer faults exactly there.
pub fn host_registration(p: &Place) -> Option<&Allocation> {
    match p {
        Place::InLive { alloc, .. } if alloc.entry == Entry::HipHostRegister => Some(alloc),
        _ => None,
    }
}

/// The hipHostRegister line (without the prefix).
pub fn write_host_registration(w: &mut impl Write, addr: usize, a: &Allocation) -> fmt::Result {
    write!(
        w,
        "host pointer handed to the GPU: address {addr:#x} is in host memory registered with hipHostRegister ({} bytes at {:#x}-{:#x}); HIP can map registered memory at a different device address, so pass kernels the pointer hipHostGetDevicePointer returns for it, not the host pointer",
        a.size,
        a.base,
        a.base.saturating_add(a.size)
    )
}

/// Whether the VMM records are worth asking about `p`: the address is inside
/// a reserved range, live or freed.
pub fn in_vmm_reservation(p: &Place) -> bool {
    matches!(
        p,
        Place::InLive { alloc, .. } | Place::Freed { alloc, .. }
            if alloc.entry == Entry::HipMemAddressReserve
    )
}

/// The cause id of the hipHostRegister line.
pub const HOST_REGISTRATION_ID: &str = "host-pointer-of-registered-memory";

/// The last line: what rmcp cannot see from inside the process.
pub const DOCTOR_LINE: &str = "kernel, firmware and driver problems (amdgpu VM faults, resets, parameters) and builds without code for this GPU are not visible from inside the process: run `rmcp doctor` on this machine";

/// The stable id of each cause, as in the JSON report's `causes[].id`.
pub fn place_id(p: &Place) -> &'static str {
    match p {
        Place::InLive { .. } => "in-bounds",
        Place::PastEnd { .. } => "out-of-bounds-past-end",
        Place::BeforeStart { .. } => "out-of-bounds-before-start",
        Place::Freed { .. } => "use-after-free",
        Place::Nothing => "no-allocation-nearby",
        Place::Unknown => "registry-busy",
    }
}

pub fn override_id(o: &Override) -> &'static str {
    match o {
        Override::Mismatch { .. } => "hsa-override-mismatch",
        Override::RealUnknown { .. } => "hsa-override-set",
        Override::Invalid { .. } => "hsa-override-invalid",
    }
}

/// Everything the cause lines need.
#[derive(Clone, Copy, Debug)]
pub struct Causes<'a> {
    pub addr: usize,
    pub node: u32,
    pub gfx_override: Option<Override<'a>>,
    /// The override came from HSA_OVERRIDE_GFX_VERSION_<node>.
    pub override_per_node: bool,
    /// When the address is inside a VMM reservation (hipMemAddressReserve):
    /// what the VMM records say about it.
    pub vmm: Option<crate::core::vmm::VmmPlace>,
    pub place: Place,
}

/// Writes one line per cause, each starting with `prefix`.
pub fn write_lines(w: &mut impl Write, c: &Causes, prefix: &str, now_ns: u64) -> fmt::Result {
    if let Some(o) = &c.gfx_override {
        w.write_str(prefix)?;
        write_override(w, o, c.node, c.override_per_node)?;
        w.write_char('\n')?;
    }
    w.write_str(prefix)?;
    write_place(w, c.addr, &c.place, now_ns)?;
    w.write_char('\n')?;
    if let Some(a) = host_registration(&c.place) {
        w.write_str(prefix)?;
        write_host_registration(w, c.addr, a)?;
        w.write_char('\n')?;
    }
    if let Some(v) = &c.vmm {
        w.write_str(prefix)?;
        crate::core::vmm::write_place(w, c.addr, v, now_ns)?;
        w.write_char('\n')?;
    }
    w.write_str(prefix)?;
    w.write_str(DOCTOR_LINE)?;
    w.write_char('\n')
}

/// `"causes":[...]` for the JSON report. Field names are stable: `id`,
/// `text`, and per id: `variable` (HSA_OVERRIDE_GFX_VERSION or its per-node
/// form), `hsa_override_gfx_version`, `runs_gfx`, `real_gfx`,
/// `gfx_target_version`, `distance_bytes`, `offset`, `freed_ms_ago`,
/// `allocation`.
pub fn write_json(w: &mut impl Write, c: &Causes, now_ns: u64) -> fmt::Result {
    w.write_str("\"causes\":[")?;
    if let Some(o) = &c.gfx_override {
        write!(
            w,
            "{{\"id\":\"{}\",\"variable\":\"{}\",",
            override_id(o),
            OverrideVar {
                node: c.node,
                per_node: c.override_per_node
            }
        )?;
        match *o {
            Override::Mismatch {
                value,
                runs,
                real,
                target_version,
            } => {
                w.write_str("\"hsa_override_gfx_version\":\"")?;
                write_json_str(w, value)?;
                write!(w, "\",\"runs_gfx\":\"{runs}\",\"real_gfx\":\"{real}\",\"gfx_target_version\":{target_version},")?;
            }
            Override::RealUnknown { value, runs } => {
                w.write_str("\"hsa_override_gfx_version\":\"")?;
                write_json_str(w, value)?;
                write!(w, "\",\"runs_gfx\":\"{runs}\",\"real_gfx\":null,")?;
            }
            Override::Invalid { value } => {
                w.write_str("\"hsa_override_gfx_version\":\"")?;
                write_json_str(w, value)?;
                w.write_str("\",")?;
            }
        }
        w.write_str("\"text\":\"")?;
        let mut t = JsonText(w);
        write_override(&mut t, o, c.node, c.override_per_node)?;
        w.write_str("\"},")?;
    }
    write!(w, "{{\"id\":\"{}\",", place_id(&c.place))?;
    match &c.place {
        Place::PastEnd { bytes, alloc } | Place::BeforeStart { bytes, alloc } => {
            write!(w, "\"distance_bytes\":{bytes},\"allocation\":")?;
            write_json_allocation(w, alloc, c.addr, now_ns, None)?;
            w.write_char(',')?;
        }
        Place::InLive { offset, alloc } => {
            write!(w, "\"offset\":{offset},\"allocation\":")?;
            write_json_allocation(w, alloc, c.addr, now_ns, None)?;
            w.write_char(',')?;
        }
        Place::Freed {
            offset,
            alloc,
            freed_ns,
        } => {
            write!(
                w,
                "\"offset\":{offset},\"freed_ms_ago\":{},\"allocation\":",
                ms(now_ns, *freed_ns)
            )?;
            write_json_allocation(w, alloc, c.addr, now_ns, Some(*freed_ns))?;
            w.write_char(',')?;
        }
        Place::Nothing | Place::Unknown => {}
    }
    w.write_str("\"text\":\"")?;
    write_place(&mut JsonText(w), c.addr, &c.place, now_ns)?;
    w.write_str("\"},")?;
    if let Some(a) = host_registration(&c.place) {
        write!(w, "{{\"id\":\"{HOST_REGISTRATION_ID}\",\"allocation\":")?;
        write_json_allocation(w, a, c.addr, now_ns, None)?;
        w.write_str(",\"text\":\"")?;
        write_host_registration(&mut JsonText(w), c.addr, a)?;
        w.write_str("\"},")?;
    }
    if let Some(v) = &c.vmm {
        write!(w, "{{\"id\":\"{}\",", v.id())?;
        crate::core::vmm::write_json_fields(w, v, now_ns)?;
        w.write_str("\"text\":\"")?;
        crate::core::vmm::write_place(&mut JsonText(w), c.addr, v, now_ns)?;
        w.write_str("\"},")?;
    }
    w.write_str("{\"id\":\"check-doctor\",\"text\":\"")?;
    write_json_str(w, DOCTOR_LINE)?;
    w.write_str("\"}]")
}

/// Escapes whatever is written through it as the inside of a JSON string.
struct JsonText<'w, W: Write>(&'w mut W);

impl<W: Write> Write for JsonText<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        write_json_str(self.0, s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{Freed, Memory};
    use crate::report::FixedBuf;

    fn a(base: usize, size: usize) -> Allocation {
        Allocation {
            base,
            size,
            entry: Entry::HipMalloc,
            requested_flags: 0,
            applied_flags: 0,
            memory: Memory::Device(0),
            thread: 7,
            time_ns: 0,
            rewritten: false,
        }
    }

    fn unknown(below: Option<Allocation>, above: Option<Allocation>) -> Result<Lookup, Busy> {
        Ok(Lookup::Unknown { below, above })
    }

    #[test]
    fn reads_gfx_target_version_from_kfd_properties() {
        let p = "cpu_cores_count 0\nsimd_count 80\ngfx_target_version 100100\nvendor_id 4098\n";
        assert_eq!(gfx_target_version(p), Some(100100));
        assert_eq!(gfx_target_version("gfx_target_version x\n"), None);
        assert_eq!(gfx_target_version("gfx_target_versions 1\n"), None);
        assert_eq!(gfx_target_version(""), None);
        let mut k = KfdArchs::default();
        k.push(0, 0);
        k.push(1, 100100);
        assert_eq!(k.get(1), Some(100100));
        assert_eq!(k.get(2), None);
    }

    #[test]
    fn override_is_a_cause_only_when_it_differs_from_the_real_gpu() {
        assert_eq!(override_cause(None, Some(100100)), None);
        assert_eq!(override_cause(Some("10.3.0"), Some(100300)), None);
        assert_eq!(
            override_cause(Some("10.3.0"), Some(100100)),
            Some(Override::Mismatch {
                value: "10.3.0",
                runs: Gfx::new(10, 3, 0),
                real: Gfx::new(10, 1, 0),
                target_version: 100100
            })
        );
        assert_eq!(
            override_cause(Some("10.3.0"), None),
            Some(Override::RealUnknown {
                value: "10.3.0",
                runs: Gfx::new(10, 3, 0)
            })
        );
        assert_eq!(
            override_cause(Some("gfx1030"), Some(100100)),
            Some(Override::Invalid { value: "gfx1030" })
        );
        let mut b = FixedBuf::<512>::new();
        write_override(
            &mut b,
            &override_cause(Some("10.3.0"), Some(100100)).unwrap(),
            1,
            false,
        )
        .unwrap();
        assert!(
            b.as_str().starts_with(
                "HSA_OVERRIDE_GFX_VERSION=10.3.0 makes ROCm run gfx1030 code on this gfx1010 GPU (node 1; KFD gfx_target_version 100100)"
            ),
            "{}",
            b.as_str()
        );
    }

    #[test]
    fn places_the_address_relative_to_the_nearest_allocation() {
        let buf = a(0x10000, 4096);
        assert_eq!(
            place(0x10000 + 4096 + 16, unknown(Some(buf), None)),
            Place::PastEnd {
                bytes: 16,
                alloc: buf
            }
        );
        assert_eq!(
            place(0x10000 - 16, unknown(None, Some(buf))),
            Place::BeforeStart {
                bytes: 16,
                alloc: buf
            }
        );
        // Between two: the nearer one, past-the-end on a tie.
        let hi = a(0x20000, 64);
        assert_eq!(
            place(0x20000 - 8, unknown(Some(buf), Some(hi))),
            Place::BeforeStart {
                bytes: 8,
                alloc: hi
            }
        );
        assert_eq!(
            place(0x11000 + 8, unknown(Some(buf), Some(a(0x11000 + 16, 8)))),
            Place::PastEnd {
                bytes: 8,
                alloc: buf
            }
        );
        // Far from everything.
        assert_eq!(
            place(0x10, unknown(None, Some(a(0x7f00_0000_0000, 64)))),
            Place::Nothing
        );
        assert_eq!(
            place(0x10000 + 4096 + NEARBY_BYTES, unknown(Some(buf), None)),
            Place::Nothing
        );
        assert_eq!(place(1, unknown(None, None)), Place::Nothing);
        assert_eq!(
            place(0x10010, Ok(Lookup::Live(buf))),
            Place::InLive {
                offset: 16,
                alloc: buf
            }
        );
        assert_eq!(
            place(
                0x10010,
                Ok(Lookup::Freed(Freed {
                    alloc: buf,
                    freed_ns: 5
                }))
            ),
            Place::Freed {
                offset: 16,
                alloc: buf,
                freed_ns: 5
            }
        );
        assert_eq!(place(1, Err(Busy)), Place::Unknown);
    }

    #[test]
    fn lines_and_json_say_the_same() {
        let buf = a(0x10000, 4096);
        let c = Causes {
            addr: 0x11010,
            node: 1,
            gfx_override: override_cause(Some("10.3.0"), Some(100100)),
            override_per_node: false,
            vmm: None,
            place: Place::PastEnd {
                bytes: 16,
                alloc: buf,
            },
        };
        let mut b = FixedBuf::<2048>::new();
        write_lines(&mut b, &c, "rmcp: likely cause: ", 0).unwrap();
        let lines: Vec<&str> = b.as_str().lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("rmcp: likely cause: HSA_OVERRIDE_GFX_VERSION=10.3.0 makes ROCm run gfx1030 code on this gfx1010 GPU"));
        assert_eq!(lines[1], "rmcp: likely cause: out of bounds: address 0x11010 is 16 bytes past the end of hipMalloc of 4096 bytes at 0x10000-0x11000 (live)");
        assert!(lines[2].contains("run `rmcp doctor`"));
        let mut j = FixedBuf::<4096>::new();
        write_json(&mut j, &c, 0).unwrap();
        let s = j.as_str();
        assert!(s.starts_with("\"causes\":[{\"id\":\"hsa-override-mismatch\",\"variable\":\"HSA_OVERRIDE_GFX_VERSION\",\"hsa_override_gfx_version\":\"10.3.0\",\"runs_gfx\":\"gfx1030\",\"real_gfx\":\"gfx1010\",\"gfx_target_version\":100100,\"text\":\"HSA_OVERRIDE_GFX_VERSION=10.3.0 makes"), "{s}");
        assert!(s.contains("{\"id\":\"out-of-bounds-past-end\",\"distance_bytes\":16,\"allocation\":{\"entry_point\":\"hipMalloc\""), "{s}");
        assert!(s.ends_with("run `rmcp doctor` on this machine\"}]"), "{s}");
        // Quotes in the override value stay valid JSON.
        let q = Causes {
            gfx_override: override_cause(Some("1\"0"), None),
            place: Place::Nothing,
            ..c
        };
        j.clear();
        write_json(&mut j, &q, 0).unwrap();
        assert!(
            j.as_str()
                .contains("\"hsa_override_gfx_version\":\"1\\\"0\""),
            "{}",
            j.as_str()
        );
        assert!(
            j.as_str()
                .contains("HSA_OVERRIDE_GFX_VERSION='1\\\"0' is set"),
            "{}",
            j.as_str()
        );
    }
}

#[cfg(test)]
mod host_register_tests {
    use super::*;
    use crate::registry::Memory;
    use crate::report::FixedBuf;

    #[test]
    fn a_fault_inside_registered_host_memory_names_the_registration() {
        let reg = Allocation {
            base: 0x7f00_0000_0000,
            size: 1 << 20,
            entry: Entry::HipHostRegister,
            requested_flags: 0,
            applied_flags: 0,
            memory: Memory::Host,
            thread: 1,
            time_ns: 0,
            rewritten: false,
        };
        let addr = reg.base + 0x40;
        let c = Causes {
            addr,
            node: 1,
            gfx_override: None,
            override_per_node: false,
            vmm: None,
            place: place(addr, Ok(Lookup::Live(reg))),
        };
        let mut b = FixedBuf::<2048>::new();
        write_lines(&mut b, &c, "likely cause: ", 0).unwrap();
        let lines: Vec<&str> = b.as_str().lines().collect();
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(lines[0].starts_with("likely cause: in bounds: address 0x7f0000000040 is 64 bytes into hipHostRegister of 1048576 bytes"), "{}", lines[0]);
        assert_eq!(
            lines[1],
            "likely cause: host pointer handed to the GPU: address 0x7f0000000040 is in host memory registered with hipHostRegister (1048576 bytes at 0x7f0000000000-0x7f0000100000); HIP can map registered memory at a different device address, so pass kernels the pointer hipHostGetDevicePointer returns for it, not the host pointer"
        );
        let mut j = FixedBuf::<4096>::new();
        write_json(&mut j, &c, 0).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&format!("{{{}}}", j.as_str())).expect("valid JSON");
        let causes = v["causes"].as_array().unwrap();
        assert_eq!(causes.len(), 3);
        assert_eq!(causes[1]["id"], HOST_REGISTRATION_ID);
        assert_eq!(causes[1]["allocation"]["entry_point"], "hipHostRegister");
        assert!(causes[1]["text"]
            .as_str()
            .unwrap()
            .contains("hipHostGetDevicePointer"));
        // Other memory, or outside the range: no such line.
        for p in [
            Place::InLive {
                offset: 0,
                alloc: Allocation {
                    entry: Entry::HipHostMalloc,
                    ..reg
                },
            },
            Place::PastEnd {
                bytes: 8,
                alloc: reg,
            },
        ] {
            assert_eq!(host_registration(&p), None);
        }
    }
}

#[cfg(test)]
mod node_override_tests {
    use super::*;
    use crate::report::FixedBuf;

    #[test]
    fn the_per_node_override_wins_as_in_libhsakmt() {
        let env = |k: &str| match k {
            "HSA_OVERRIDE_GFX_VERSION_1" => Some("10.3.0".to_string()),
            "HSA_OVERRIDE_GFX_VERSION_2" => Some("".to_string()),
            _ => None,
        };
        let per = NodeOverrides::read(0..4, env);
        assert_eq!(per.get(1), Some("10.3.0"));
        assert_eq!(per.get(2), Some(""));
        assert_eq!(per.get(0), None);
        // Per node first, even over a global value; else the global one.
        assert_eq!(
            node_override(per.get(1), Some("11.0.0")),
            Some(("10.3.0", true))
        );
        assert_eq!(
            node_override(per.get(0), Some("11.0.0")),
            Some(("11.0.0", false))
        );
        assert_eq!(node_override(per.get(0), None), None);
        // An empty per-node value is set: libhsakmt rejects it as invalid.
        let (v, per_node) = node_override(per.get(2), Some("10.3.0")).unwrap();
        assert_eq!(
            override_cause(Some(v), Some(100100)),
            Some(Override::Invalid { value: "" })
        );
        assert!(per_node);

        let c = Causes {
            addr: 0x1000,
            node: 1,
            gfx_override: override_cause(Some("10.3.0"), Some(100100)),
            override_per_node: true,
            vmm: None,
            place: Place::Nothing,
        };
        let mut b = FixedBuf::<2048>::new();
        write_lines(&mut b, &c, "", 0).unwrap();
        assert!(
            b.as_str().starts_with(
                "HSA_OVERRIDE_GFX_VERSION_1=10.3.0 makes ROCm run gfx1030 code on this gfx1010 GPU (node 1;"
            ),
            "{}",
            b.as_str()
        );
        let mut j = FixedBuf::<4096>::new();
        write_json(&mut j, &c, 0).unwrap();
        let v: serde_json::Value = serde_json::from_str(&format!("{{{}}}", j.as_str())).unwrap();
        assert_eq!(v["causes"][0]["variable"], "HSA_OVERRIDE_GFX_VERSION_1");
        assert_eq!(v["causes"][0]["hsa_override_gfx_version"], "10.3.0");
    }
}
