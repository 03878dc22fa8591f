//! HIP's virtual memory management (VMM) as rmcp records it: physical
//! allocations (hipMemCreate handles), where they are mapped inside reserved
//! address ranges (hipMemMap), whether access was granted (hipMemSetAccess),
//! and what was unmapped or released. PyTorch's `expandable_segments` and
//! llama.cpp's VMM pool grow one reserved range by mapping handles into it;
//! a fault inside such a range is explained by the mapping it hit, or by the
//! absence of one.
//!
//! The reserved ranges themselves are ordinary registry records
//! (`Entry::HipMemAddressReserve`), so a fault report finds them like any
//! allocation; this module answers the next question: which handle, at what
//! offset, or which unmapped or released piece. Pure code: the hooks feed it
//! and the fault handler reads it with `try_` calls that never wait.

use crate::core::sync::{SpinGuard, SpinLock};
use std::fmt::{self, Write};

/// A physical allocation made by hipMemCreate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handle {
    /// The opaque hipMemGenericAllocationHandle_t value.
    pub id: usize,
    pub size: usize,
    /// The current device when it was created (-1: unknown).
    pub device: i32,
    pub created_ns: u64,
    /// When hipMemRelease returned success.
    pub released_ns: Option<u64>,
}

/// A handle mapped at `va` (hipMemMap(va, size, offset, handle)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub va: usize,
    pub size: usize,
    /// Offset into the handle where the mapping starts.
    pub offset: usize,
    pub handle: usize,
    pub mapped_ns: u64,
    /// hipMemSetAccess covered the whole mapping with success.
    pub access: bool,
    /// When hipMemUnmap removed it.
    pub unmapped_ns: Option<u64>,
}

impl Mapping {
    pub fn contains(&self, addr: usize) -> bool {
        addr >= self.va && addr - self.va < self.size
    }
}

/// Unmapped mappings and released handles remembered for reports.
pub const GONE_KEPT: usize = 256;

/// What the VMM records say about an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmmPlace {
    /// Inside a live mapping: `offset` bytes into `handle` (from its start).
    Mapped {
        mapping: Mapping,
        handle: Option<Handle>,
        offset: usize,
    },
    /// Inside a range that was mapped and has been unmapped since (the
    /// newest such mapping), and no live mapping covers it.
    Unmapped {
        mapping: Mapping,
        handle: Option<Handle>,
        offset: usize,
    },
    /// No mapping covers it, and none did.
    NeverMapped,
}

impl VmmPlace {
    /// The stable id of the cause line, as in the JSON report.
    pub fn id(&self) -> &'static str {
        match self {
            VmmPlace::Mapped { mapping, .. } if !mapping.access => "vmm-mapped-without-access",
            VmmPlace::Mapped { .. } => "vmm-mapped",
            VmmPlace::Unmapped { .. } => "vmm-unmapped",
            VmmPlace::NeverMapped => "vmm-never-mapped",
        }
    }
}

fn ms(later_ns: u64, earlier_ns: u64) -> u64 {
    later_ns.saturating_sub(earlier_ns) / 1_000_000
}

fn write_handle(w: &mut impl Write, id: usize, h: Option<&Handle>, now_ns: u64) -> fmt::Result {
    write!(w, "physical handle {id:#x}")?;
    if let Some(h) = h {
        write!(w, " (hipMemCreate, {} bytes", h.size)?;
        if h.device >= 0 {
            write!(w, ", created on device {}", h.device)?;
        }
        w.write_char(')')?;
        if let Some(r) = h.released_ns {
            write!(w, ", released by hipMemRelease {} ms ago", ms(now_ns, r))?;
        }
    }
    Ok(())
}

/// The VMM line of a fault inside a reserved range (without the prefix).
pub fn write_place(w: &mut impl Write, addr: usize, p: &VmmPlace, now_ns: u64) -> fmt::Result {
    match p {
        VmmPlace::Mapped {
            mapping,
            handle,
            offset,
        } => {
            write!(w, "VMM memory: address {addr:#x} is at offset {offset} of ")?;
            write_handle(w, mapping.handle, handle.as_ref(), now_ns)?;
            write!(
                w,
                ", mapped at {:#x}-{:#x} by hipMemMap",
                mapping.va,
                mapping.va.saturating_add(mapping.size)
            )?;
            if !mapping.access {
                w.write_str("; no hipMemSetAccess granted access to this mapping, so every GPU access to it faults")?;
            }
            Ok(())
        }
        VmmPlace::Unmapped {
            mapping,
            handle,
            offset,
        } => {
            write!(
                w,
                "VMM memory unmapped {} ms ago: address {addr:#x} was at offset {offset} of ",
                ms(now_ns, mapping.unmapped_ns.unwrap_or(now_ns))
            )?;
            write_handle(w, mapping.handle, handle.as_ref(), now_ns)?;
            write!(
                w,
                ", mapped at {:#x}-{:#x} until hipMemUnmap; something still used the range after it shrank",
                mapping.va,
                mapping.va.saturating_add(mapping.size)
            )
        }
        VmmPlace::NeverMapped => write!(
            w,
            "VMM memory never mapped: address {addr:#x} is reserved address space (hipMemAddressReserve) that no hipMemMap has backed with physical memory"
        ),
    }
}

/// The JSON fields of the VMM cause (after `"id"`), without braces:
/// `handle`, `handle_size`, `device`, `offset`, `mapping_start`,
/// `mapping_size`, `access`, `unmapped_ms_ago`, `released_ms_ago` as they
/// apply.
pub fn write_json_fields(w: &mut impl Write, p: &VmmPlace, now_ns: u64) -> fmt::Result {
    let (mapping, handle, offset) = match p {
        VmmPlace::Mapped {
            mapping,
            handle,
            offset,
        }
        | VmmPlace::Unmapped {
            mapping,
            handle,
            offset,
        } => (mapping, handle, offset),
        VmmPlace::NeverMapped => return Ok(()),
    };
    write!(
        w,
        "\"handle\":\"{:#x}\",\"offset\":{offset},\"mapping_start\":\"{:#x}\",\"mapping_size\":{},\"access\":{},",
        mapping.handle, mapping.va, mapping.size, mapping.access
    )?;
    if let Some(u) = mapping.unmapped_ns {
        write!(w, "\"unmapped_ms_ago\":{},", ms(now_ns, u))?;
    }
    if let Some(h) = handle {
        write!(w, "\"handle_size\":{},\"device\":{},", h.size, h.device)?;
        if let Some(r) = h.released_ns {
            write!(w, "\"released_ms_ago\":{},", ms(now_ns, r))?;
        }
    }
    Ok(())
}

#[derive(Default)]
struct State {
    handles: Vec<Handle>,
    mappings: Vec<Mapping>,
    /// Released handles and unmapped mappings, newest last, at most
    /// `GONE_KEPT` of each.
    released: Vec<Handle>,
    unmapped: Vec<Mapping>,
}

/// The VMM records of a process.
pub struct Vmm {
    state: SpinLock<State>,
}

impl Default for Vmm {
    fn default() -> Self {
        Vmm::new()
    }
}

impl Vmm {
    pub const fn new() -> Vmm {
        Vmm {
            state: SpinLock::new(State {
                handles: Vec::new(),
                mappings: Vec::new(),
                released: Vec::new(),
                unmapped: Vec::new(),
            }),
        }
    }

    /// hipMemCreate succeeded. A reused handle value replaces the old record.
    pub fn created(&self, id: usize, size: usize, device: i32, now_ns: u64) {
        let mut s = self.state.lock();
        s.handles.retain(|h| h.id != id);
        s.handles.push(Handle {
            id,
            size,
            device,
            created_ns: now_ns,
            released_ns: None,
        });
    }

    /// hipMemRelease succeeded. Its mappings stay (HIP keeps the memory
    /// until they are unmapped); the report says the handle was released.
    pub fn released(&self, id: usize, now_ns: u64) {
        let mut s = self.state.lock();
        if let Some(i) = s.handles.iter().position(|h| h.id == id) {
            let mut h = s.handles.remove(i);
            h.released_ns = Some(now_ns);
            keep(&mut s.released, h);
        }
    }

    /// hipMemMap succeeded.
    pub fn mapped(&self, va: usize, size: usize, offset: usize, handle: usize, now_ns: u64) {
        let mut s = self.state.lock();
        s.mappings.retain(|m| m.va != va);
        s.mappings.push(Mapping {
            va,
            size,
            offset,
            handle,
            mapped_ns: now_ns,
            access: false,
            unmapped_ns: None,
        });
    }

    /// hipMemSetAccess succeeded over [va, va + size): the mappings it
    /// covers entirely are accessible.
    pub fn access_set(&self, va: usize, size: usize) {
        let mut s = self.state.lock();
        let end = va.saturating_add(size);
        for m in s.mappings.iter_mut() {
            if m.va >= va && m.va.saturating_add(m.size) <= end {
                m.access = true;
            }
        }
    }

    /// hipMemUnmap succeeded over [va, va + size): every mapping inside it
    /// moves to the unmapped records.
    pub fn unmapped(&self, va: usize, size: usize, now_ns: u64) {
        let mut s = self.state.lock();
        let end = va.saturating_add(size);
        let mut i = 0;
        while i < s.mappings.len() {
            let m = s.mappings[i];
            if m.va >= va && m.va < end {
                s.mappings.swap_remove(i);
                keep(
                    &mut s.unmapped,
                    Mapping {
                        unmapped_ns: Some(now_ns),
                        ..m
                    },
                );
            } else {
                i += 1;
            }
        }
    }

    /// The live mappings and handles, for tests and the C API.
    pub fn live(&self) -> (usize, usize) {
        let s = self.state.lock();
        (s.mappings.len(), s.handles.len())
    }

    /// What the records say about `addr`; None when the lock is held (the
    /// fault handler must not wait).
    pub fn try_place(&self, addr: usize) -> Option<VmmPlace> {
        self.state.try_lock().map(|s| place_in(&s, addr))
    }

    /// Blocking form, for the C API and tests.
    pub fn place(&self, addr: usize) -> VmmPlace {
        place_in(&self.state.lock(), addr)
    }

    /// Fork safety, as the registry's.
    pub fn lock_for_fork(&self) {
        self.state.lock_and_keep();
    }

    /// # Safety
    /// Only after `lock_for_fork` on this thread (or its fork child).
    pub unsafe fn unlock_after_fork(&self) {
        // SAFETY: locked by lock_for_fork; the guard was forgotten.
        unsafe { self.state.force_unlock() };
    }
}

fn keep<T>(ring: &mut Vec<T>, item: T) {
    if ring.len() == GONE_KEPT {
        ring.remove(0);
    }
    ring.push(item);
}

fn handle_of(s: &SpinGuard<'_, State>, id: usize) -> Option<Handle> {
    s.handles
        .iter()
        .chain(s.released.iter().rev())
        .find(|h| h.id == id)
        .copied()
}

fn place_in(s: &SpinGuard<'_, State>, addr: usize) -> VmmPlace {
    let at = |m: &Mapping| m.offset.saturating_add(addr - m.va);
    if let Some(m) = s.mappings.iter().find(|m| m.contains(addr)) {
        return VmmPlace::Mapped {
            mapping: *m,
            handle: handle_of(s, m.handle),
            offset: at(m),
        };
    }
    match s.unmapped.iter().rev().find(|m| m.contains(addr)) {
        Some(m) => VmmPlace::Unmapped {
            mapping: *m,
            handle: handle_of(s, m.handle),
            offset: at(m),
        },
        None => VmmPlace::NeverMapped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB2: usize = 2 << 20;

    /// An expandable segment as PyTorch grows it: one large reservation,
    /// 2 MiB handles mapped one after another, access set on each.
    fn segment(v: &Vmm, base: usize, pieces: usize) {
        for i in 0..pieces {
            let h = 0x1000 + i;
            v.created(h, MB2, 0, i as u64);
            v.mapped(base + i * MB2, MB2, 0, h, i as u64);
            v.access_set(base + i * MB2, MB2);
        }
    }

    #[test]
    fn a_mapped_address_names_its_handle_and_offset() {
        let v = Vmm::new();
        segment(&v, 0x7000_0000_0000, 3);
        assert_eq!(v.live(), (3, 3));
        match v.place(0x7000_0000_0000 + MB2 + 0x40) {
            VmmPlace::Mapped {
                mapping,
                handle,
                offset,
            } => {
                assert_eq!(mapping.handle, 0x1001);
                assert!(mapping.access);
                assert_eq!(offset, 0x40);
                assert_eq!(handle.unwrap().size, MB2);
            }
            other => panic!("{other:?}"),
        }
        // Past the last piece: never mapped.
        assert_eq!(v.place(0x7000_0000_0000 + 3 * MB2), VmmPlace::NeverMapped);
    }

    #[test]
    fn a_mapping_at_an_offset_into_its_handle_counts_from_the_handle() {
        let v = Vmm::new();
        v.created(7, 4 * MB2, 1, 0);
        v.mapped(0x10_0000_0000, MB2, 2 * MB2, 7, 0);
        assert!(matches!(
            v.place(0x10_0000_0010),
            VmmPlace::Mapped { offset, mapping, .. } if offset == 2 * MB2 + 0x10 && !mapping.access
        ));
    }

    #[test]
    fn unmapped_and_released_pieces_are_remembered() {
        let v = Vmm::new();
        segment(&v, 0x7000_0000_0000, 2);
        // The segment shrinks: its second piece is unmapped, then released.
        v.unmapped(0x7000_0000_0000 + MB2, MB2, 50);
        v.released(0x1001, 60);
        assert_eq!(v.live(), (1, 1));
        match v.place(0x7000_0000_0000 + MB2 + 8) {
            VmmPlace::Unmapped {
                mapping,
                handle,
                offset,
            } => {
                assert_eq!(mapping.unmapped_ns, Some(50));
                assert_eq!(handle.unwrap().released_ns, Some(60));
                assert_eq!(offset, 8);
            }
            other => panic!("{other:?}"),
        }
        // Mapped again (another handle): the live mapping wins.
        v.created(0x2000, MB2, 0, 70);
        v.mapped(0x7000_0000_0000 + MB2, MB2, 0, 0x2000, 70);
        assert!(matches!(
            v.place(0x7000_0000_0000 + MB2 + 8),
            VmmPlace::Mapped { mapping, .. } if mapping.handle == 0x2000
        ));
        // Unmapping the whole range takes every mapping inside it.
        v.unmapped(0x7000_0000_0000, 2 * MB2, 80);
        assert_eq!(v.live().0, 0);
    }

    #[test]
    fn each_place_has_a_line_that_names_what_happened() {
        let v = Vmm::new();
        v.created(0xabc, MB2, 0, 0);
        v.mapped(0x10_0000_0000, MB2, 0, 0xabc, 0);
        let line = |addr: usize| {
            let mut s = String::new();
            write_place(&mut s, addr, &v.place(addr), 5_000_000).unwrap();
            s
        };
        assert_eq!(
            line(0x10_0000_0040),
            "VMM memory: address 0x1000000040 is at offset 64 of physical handle 0xabc (hipMemCreate, 2097152 bytes, created on device 0), mapped at 0x1000000000-0x1000200000 by hipMemMap; no hipMemSetAccess granted access to this mapping, so every GPU access to it faults"
        );
        assert_eq!(v.place(0x10_0000_0040).id(), "vmm-mapped-without-access");
        v.access_set(0x10_0000_0000, MB2);
        assert!(line(0x10_0000_0040).ends_with("by hipMemMap"));
        v.unmapped(0x10_0000_0000, MB2, 1_000_000);
        v.released(0xabc, 2_000_000);
        assert_eq!(
            line(0x10_0000_0040),
            "VMM memory unmapped 4 ms ago: address 0x1000000040 was at offset 64 of physical handle 0xabc (hipMemCreate, 2097152 bytes, created on device 0), released by hipMemRelease 3 ms ago, mapped at 0x1000000000-0x1000200000 until hipMemUnmap; something still used the range after it shrank"
        );
        let mut j = String::from("{");
        write_json_fields(&mut j, &v.place(0x10_0000_0040), 5_000_000).unwrap();
        j.push_str("\"id\":\"x\"}");
        let parsed: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(parsed["unmapped_ms_ago"], 4);
        assert_eq!(parsed["released_ms_ago"], 3);
        assert_eq!(parsed["handle"], "0xabc");
        assert!(line(0x20_0000_0000).starts_with("VMM memory never mapped"));
    }

    #[test]
    fn the_gone_records_are_bounded_and_try_place_never_waits() {
        let v = Vmm::new();
        for i in 0..(GONE_KEPT + 10) {
            v.created(i + 1, 4096, 0, 0);
            v.mapped(0x1000 * (i + 1), 4096, 0, i + 1, 0);
            v.unmapped(0x1000 * (i + 1), 4096, 1);
            v.released(i + 1, 2);
        }
        assert_eq!(v.place(0x1000), VmmPlace::NeverMapped);
        assert!(matches!(
            v.place(0x1000 * (GONE_KEPT + 10)),
            VmmPlace::Unmapped { .. }
        ));
        let guard = v.state.lock();
        assert_eq!(v.try_place(0x1000), None);
        drop(guard);
        assert!(v.try_place(0x1000).is_some());
    }
}
