//! Describing an address (and a GPU memory fault) in words and as JSON.
//!
//! Everything here writes into caller-provided fixed buffers through
//! `core::fmt`, which formats integers and strings without allocating: the
//! fault handler runs while the process is dying and must not call malloc.

use crate::abi::hsa::FAULT_REASONS;
use crate::core::registry::{Allocation, Busy, Lookup, Memory};
use std::fmt::{self, Write};

/// A fixed-capacity text buffer. Writes past the end are cut, and `cut` is
/// set so the reader knows.
pub struct FixedBuf<const N: usize> {
    bytes: [u8; N],
    len: usize,
    pub cut: bool,
}

impl<const N: usize> Default for FixedBuf<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> FixedBuf<N> {
    pub const fn new() -> Self {
        FixedBuf {
            bytes: [0; N],
            len: 0,
            cut: false,
        }
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
    pub fn as_str(&self) -> &str {
        // Only whole str pieces are ever copied in, but a cut can split a
        // UTF-8 sequence: fall back to the valid prefix.
        match std::str::from_utf8(self.as_bytes()) {
            Ok(s) => s,
            Err(e) => std::str::from_utf8(&self.bytes[..e.valid_up_to()]).unwrap_or(""),
        }
    }
    pub fn clear(&mut self) {
        self.len = 0;
        self.cut = false;
    }
    /// Keeps the first `len` bytes (fewer if that would split a character),
    /// and clears `cut`: room was made on purpose.
    pub fn truncate(&mut self, len: usize) {
        let keep = self.as_str().len().min(len);
        let mut end = keep;
        while !self.as_str().is_char_boundary(end) {
            end -= 1;
        }
        self.len = end;
        self.cut = false;
    }
}

impl<const N: usize> Write for FixedBuf<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = N - self.len;
        let n = s.len().min(room);
        self.bytes[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        if n < s.len() {
            self.cut = true;
        }
        Ok(())
    }
}

/// Milliseconds between two CLOCK_MONOTONIC readings.
fn ms(later_ns: u64, earlier_ns: u64) -> u64 {
    later_ns.saturating_sub(earlier_ns) / 1_000_000
}

/// "hipHostMalloc 4096 bytes at 0x7f00..-0x7f00.. (flags requested 0x0, applied
/// 0x80000000, rewritten by rmcp; device 0; thread 1234)".
pub fn write_allocation(w: &mut impl Write, a: &Allocation) -> fmt::Result {
    write!(
        w,
        "{} of {} bytes at {:#x}-{:#x} (flags requested {:#x}, applied {:#x}, {}; ",
        a.entry.name(),
        a.size,
        a.base,
        a.base.saturating_add(a.size),
        a.requested_flags,
        a.applied_flags,
        if a.rewritten {
            "rewritten by rmcp"
        } else {
            "not rewritten"
        },
    )?;
    match a.memory {
        Memory::HsaPool(node) => write!(w, "HSA pool of node {node}; ")?,
        Memory::Device(d) => write!(w, "device {d}; ")?,
        Memory::Host => w.write_str("host memory; ")?,
    }
    write!(w, "thread {})", a.thread)
}

/// The verdict for `addr`: exactly one of live / freed / unknown.
pub fn write_lookup(
    w: &mut impl Write,
    addr: usize,
    found: Result<Lookup, Busy>,
    now_ns: u64,
) -> fmt::Result {
    match found {
        Ok(Lookup::Live(a)) => {
            write!(w, "address {:#x} is {} bytes into a live allocation: ", addr, addr - a.base)?;
            write_allocation(w, &a)?;
            write!(w, ", allocated {} ms ago", ms(now_ns, a.time_ns))
        }
        Ok(Lookup::Freed(f)) => {
            write!(
                w,
                "address {:#x} is {} bytes into an allocation that was FREED {} ms ago (use after free): ",
                addr,
                addr - f.alloc.base,
                ms(now_ns, f.freed_ns)
            )?;
            write_allocation(w, &f.alloc)?;
            write!(w, ", allocated {} ms before it was freed", ms(f.freed_ns, f.alloc.time_ns))
        }
        Ok(Lookup::Unknown { below, above }) => {
            write!(w, "address {addr:#x} is in no allocation rmcp has seen")?;
            match below {
                Some(b) => {
                    write!(w, "; nearest below ends {} bytes before it: ", addr - b.base.saturating_add(b.size))?;
                    write_allocation(w, &b)?;
                }
                None => w.write_str("; nothing below it")?,
            }
            match above {
                Some(a) => {
                    write!(w, "; nearest above starts {} bytes after it: ", a.base - addr)?;
                    write_allocation(w, &a)
                }
                None => w.write_str("; nothing above it"),
            }
        }
        Err(Busy) => write!(
            w,
            "address {addr:#x}: the allocation registry was locked by another thread (possibly the one that faulted); no attribution possible"
        ),
    }
}

/// "page not present, write to read-only page" from a reason mask.
pub fn write_reasons(w: &mut impl Write, mask: u32) -> fmt::Result {
    let mut first = true;
    for (bit, name) in FAULT_REASONS {
        if mask & bit != 0 {
            if !first {
                w.write_str(", ")?;
            }
            w.write_str(name)?;
            first = false;
        }
    }
    let unknown = FAULT_REASONS.iter().fold(mask, |m, (bit, _)| m & !bit);
    if unknown != 0 {
        if !first {
            w.write_str(", ")?;
        }
        write!(w, "unknown bits {unknown:#x}")?;
    } else if first {
        w.write_str("no reason given")?;
    }
    Ok(())
}

/// Writes `s` with control characters as `\xNN`, so a string from outside
/// (a kernel name, a GPU name, an environment variable) cannot move the
/// terminal's cursor or forge a line of a text report.
pub fn write_escaped(w: &mut impl Write, s: &str) -> fmt::Result {
    let mut rest = s;
    while let Some(i) = rest.find(|c: char| c.is_control()) {
        w.write_str(&rest[..i])?;
        let c = rest[i..].chars().next().unwrap_or('?');
        write!(w, "\\x{:02x}", c as u32)?;
        rest = &rest[i + c.len_utf8()..];
    }
    w.write_str(rest)
}

/// `write_escaped` as a `Display`.
#[derive(Clone, Copy, Debug)]
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_escaped(f, self.0)
    }
}

/// Writes `s` as the inside of a JSON string.
pub fn write_json_str(w: &mut impl Write, s: &str) -> fmt::Result {
    for c in s.chars() {
        match c {
            '"' => w.write_str("\\\"")?,
            '\\' => w.write_str("\\\\")?,
            '\n' => w.write_str("\\n")?,
            c if (c as u32) < 0x20 => write!(w, "\\u{:04x}", c as u32)?,
            c => w.write_char(c)?,
        }
    }
    Ok(())
}

pub fn write_json_allocation(
    w: &mut impl Write,
    a: &Allocation,
    addr: usize,
    now_ns: u64,
    freed_ns: Option<u64>,
) -> fmt::Result {
    write!(
        w,
        "{{\"entry_point\":\"{}\",\"base\":\"{:#x}\",\"size\":{},\"offset\":{},\"requested_flags\":\"{:#x}\",\"applied_flags\":\"{:#x}\",\"rewritten\":{},\"device\":{},\"thread\":{},\"age_ms\":{},\"freed_ms_ago\":",
        a.entry.name(),
        a.base,
        a.size,
        addr as i128 - a.base as i128,
        a.requested_flags,
        a.applied_flags,
        a.rewritten,
        a.memory.number(),
        a.thread,
        ms(now_ns, a.time_ns),
    )?;
    match freed_ns {
        Some(f) => write!(w, "{}}}", ms(now_ns, f)),
        None => w.write_str("null}"),
    }
}

/// The GPU a fault came from, as the HSA runtime names it.
#[derive(Clone, Copy, Debug)]
pub struct FaultGpu<'a> {
    pub name: &'a str,
    pub node: u32,
}

/// Which process faulted: its pid, and the ranks a launcher (torchrun,
/// Slurm scripts) put in RANK / LOCAL_RANK, when set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultProcess {
    pub pid: u32,
    pub rank: Option<u32>,
    pub local_rank: Option<u32>,
}

/// `process 1234 (RANK 3, LOCAL_RANK 1)`; the parenthesis only with ranks.
pub fn write_process(w: &mut impl Write, p: FaultProcess) -> fmt::Result {
    write!(w, "process {}", p.pid)?;
    match (p.rank, p.local_rank) {
        (Some(r), Some(l)) => write!(w, " (RANK {r}, LOCAL_RANK {l})"),
        (Some(r), None) => write!(w, " (RANK {r})"),
        (None, Some(l)) => write!(w, " (LOCAL_RANK {l})"),
        (None, None) => Ok(()),
    }
}

/// RMCP_FAULT_REPORT with `%p` replaced by `pid` and `%%` by `%` (as in
/// LLVM_PROFILE_FILE and core_pattern; any other `%` is kept), then `suffix`,
/// NUL-terminated, into `out` without allocating (the fault handler calls
/// it). Returns the length without the NUL, or None if `out` is too small.
pub fn expand_report_path(
    template: &[u8],
    pid: u32,
    suffix: &[u8],
    out: &mut [u8],
) -> Option<usize> {
    let mut n = 0;
    let mut put = |b: u8, n: &mut usize| -> Option<()> {
        *out.get_mut(*n)? = b;
        *n += 1;
        Some(())
    };
    let mut digits = [0u8; 10];
    let mut nd = 0;
    let mut v = pid;
    loop {
        digits[nd] = b'0' + (v % 10) as u8;
        nd += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let mut i = 0;
    while i < template.len() {
        match (template[i], template.get(i + 1)) {
            (b'%', Some(b'p')) => {
                for d in digits[..nd].iter().rev() {
                    put(*d, &mut n)?;
                }
                i += 2;
            }
            (b'%', Some(b'%')) => {
                put(b'%', &mut n)?;
                i += 2;
            }
            (b, _) => {
                put(b, &mut n)?;
                i += 1;
            }
        }
    }
    for &b in suffix {
        put(b, &mut n)?;
    }
    put(0, &mut n)?;
    Some(n - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::entry::Entry;
    use crate::core::registry::Freed;

    fn a(base: usize, size: usize) -> Allocation {
        Allocation {
            base,
            size,
            entry: Entry::HipHostMalloc,
            requested_flags: 0,
            applied_flags: 0x8000_0000,
            memory: Memory::Host,
            thread: 77,
            time_ns: 1_000_000,
            rewritten: true,
        }
    }

    fn text(addr: usize, l: Result<Lookup, Busy>) -> String {
        let mut b = FixedBuf::<1024>::new();
        write_lookup(&mut b, addr, l, 13_000_000).unwrap();
        b.as_str().to_string()
    }

    #[test]
    fn describes_each_verdict() {
        assert_eq!(
            text(0x1010, Ok(Lookup::Live(a(0x1000, 4096)))),
            "address 0x1010 is 16 bytes into a live allocation: hipHostMalloc of 4096 bytes at 0x1000-0x2000 (flags requested 0x0, applied 0x80000000, rewritten by rmcp; host memory; thread 77), allocated 12 ms ago"
        );
        let freed = text(
            0x1010,
            Ok(Lookup::Freed(Freed {
                alloc: a(0x1000, 4096),
                freed_ns: 3_000_000,
            })),
        );
        assert!(freed.starts_with("address 0x1010 is 16 bytes into an allocation that was FREED 10 ms ago (use after free): hipHostMalloc of 4096 bytes"), "{freed}");
        assert!(freed.ends_with("allocated 2 ms before it was freed"));
        let unknown = text(
            0x3000,
            Ok(Lookup::Unknown {
                below: Some(a(0x1000, 4096)),
                above: Some(a(0x8000, 16)),
            }),
        );
        assert!(unknown.starts_with("address 0x3000 is in no allocation rmcp has seen; nearest below ends 4096 bytes before it: hipHostMalloc of 4096 bytes at 0x1000"), "{unknown}");
        assert!(unknown.contains(
            "nearest above starts 20480 bytes after it: hipHostMalloc of 16 bytes at 0x8000"
        ));
        assert!(text(
            5,
            Ok(Lookup::Unknown {
                below: None,
                above: None
            })
        )
        .ends_with("nothing below it; nothing above it"));
        assert!(text(5, Err(Busy)).contains("locked by another thread"));
    }

    #[test]
    fn fixed_buffers_cut_instead_of_overflowing() {
        let mut b = FixedBuf::<16>::new();
        write_lookup(&mut b, 0x1010, Ok(Lookup::Live(a(0x1000, 1))), 0).unwrap();
        assert!(b.cut);
        assert_eq!(b.as_bytes().len(), 16);
        let mut u = FixedBuf::<4>::new();
        u.write_str("aé€").unwrap();
        assert_eq!(u.as_str(), "aé");
    }

    #[test]
    fn decodes_reason_bits() {
        let mut b = FixedBuf::<256>::new();
        write_reasons(&mut b, 1 | 2).unwrap();
        assert_eq!(b.as_str(), "page not present, write to read-only page");
        b.clear();
        write_reasons(&mut b, 0x100 | 1).unwrap();
        assert_eq!(b.as_str(), "page not present, unknown bits 0x100");
        b.clear();
        write_reasons(&mut b, 0).unwrap();
        assert_eq!(b.as_str(), "no reason given");
    }

    #[test]
    fn names_the_process() {
        let text = |rank, local_rank| {
            let mut b = FixedBuf::<64>::new();
            let p = FaultProcess {
                pid: 99,
                rank,
                local_rank,
            };
            write_process(&mut b, p).unwrap();
            b.as_str().to_string()
        };
        assert_eq!(text(None, None), "process 99");
        assert_eq!(text(Some(3), Some(1)), "process 99 (RANK 3, LOCAL_RANK 1)");
        assert_eq!(text(Some(0), None), "process 99 (RANK 0)");
        assert_eq!(text(None, Some(2)), "process 99 (LOCAL_RANK 2)");
    }

    #[test]
    fn expands_pid_in_report_paths() {
        let exp = |t: &str, pid: u32, suffix: &str| {
            let mut out = [0u8; 64];
            expand_report_path(t.as_bytes(), pid, suffix.as_bytes(), &mut out).map(|n| {
                assert_eq!(out[n], 0, "NUL-terminated");
                String::from_utf8(out[..n].to_vec()).unwrap()
            })
        };
        assert_eq!(
            exp("/r/fault-%p.json", 1234, "").unwrap(),
            "/r/fault-1234.json"
        );
        assert_eq!(exp("/r/%p/%p", 0, "").unwrap(), "/r/0/0");
        assert_eq!(
            exp("/r/100%%-%p", 4294967295, "").unwrap(),
            "/r/100%-4294967295"
        );
        assert_eq!(exp("/r/%d%", 5, "").unwrap(), "/r/%d%", "other % kept");
        assert_eq!(exp("/r/f.json", 42, ".42").unwrap(), "/r/f.json.42");
        assert_eq!(exp("", 1, "").unwrap(), "");
        // 63 bytes + NUL fit in 64; 64 do not.
        assert!(exp(&"x".repeat(63), 1, "").is_some());
        assert!(exp(&"x".repeat(64), 1, "").is_none());
        assert!(exp(&"x".repeat(60), 12345, ".12345").is_none());
    }
}
