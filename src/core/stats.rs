//! Per-entry-point counters: calls seen and calls rewritten. Relaxed atomics:
//! they are statistics, not synchronisation.

use crate::core::entry::Entry;
use std::sync::atomic::{AtomicU64, Ordering};

pub struct Stats {
    calls: [AtomicU64; Entry::COUNT],
    rewritten: [AtomicU64; Entry::COUNT],
    /// GPU memory faults that reached rmcp's handler.
    faults: AtomicU64,
}

impl Default for Stats {
    fn default() -> Self {
        Self::new()
    }
}

impl Stats {
    pub const fn new() -> Stats {
        Stats {
            calls: [const { AtomicU64::new(0) }; Entry::COUNT],
            rewritten: [const { AtomicU64::new(0) }; Entry::COUNT],
            faults: AtomicU64::new(0),
        }
    }

    /// Counts one GPU memory fault; returns how many there were before it.
    pub fn record_fault(&self) -> u64 {
        self.faults.fetch_add(1, Ordering::Relaxed)
    }

    /// GPU memory faults counted so far.
    pub fn faults(&self) -> u64 {
        self.faults.load(Ordering::Relaxed)
    }

    pub fn record(&self, entry: Entry, rewritten: bool) {
        self.calls[entry.index()].fetch_add(1, Ordering::Relaxed);
        if rewritten {
            self.rewritten[entry.index()].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// (calls, rewritten) for one entry point.
    pub fn get(&self, entry: Entry) -> (u64, u64) {
        (
            self.calls[entry.index()].load(Ordering::Relaxed),
            self.rewritten[entry.index()].load(Ordering::Relaxed),
        )
    }

    /// "hipHostMalloc 3/2, hipFree 3/0": calls/rewritten of every entry point
    /// that was called, in table order; "no calls" when none was.
    pub fn summary(&self) -> String {
        let parts: Vec<String> = Entry::ALL
            .iter()
            .filter_map(|&e| {
                let (c, r) = self.get(e);
                (c > 0).then(|| format!("{} {c}/{r}", e.name()))
            })
            .collect();
        if parts.is_empty() {
            "no calls".to_string()
        } else {
            parts.join(", ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_calls_and_rewrites_per_entry_point() {
        let s = Stats::new();
        assert_eq!(s.summary(), "no calls");
        s.record(Entry::HipHostMalloc, true);
        s.record(Entry::HipHostMalloc, false);
        s.record(Entry::HipFree, false);
        assert_eq!(s.get(Entry::HipHostMalloc), (2, 1));
        assert_eq!(s.get(Entry::HipMalloc), (0, 0));
        assert_eq!(s.summary(), "hipFree 1/0, hipHostMalloc 2/1");
    }
}
