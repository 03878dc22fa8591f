//! Registry cost with many live allocations: insert, lookup (hit and miss)
//! and remove, at 1K, 10K, 100K and 1M live allocations.
//!
//! `cargo bench --bench registry` prints a Markdown table (nanoseconds per
//! operation, best of 3 runs) and whether lookup grows like log n: from 1K to
//! 1M live allocations log2 n doubles, a linear scan would grow 1000x. With
//! RMCP_BENCH_OUT set, the verdict is also written there for bench/run.sh.

use rmcp::entry::Entry;
use rmcp::registry::{Allocation, Lookup, Memory, Registry};
use std::hint::black_box;
use std::time::Instant;

/// xorshift64*: deterministic addresses without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn alloc(base: usize, i: u64) -> Allocation {
    Allocation {
        base,
        size: 4096,
        entry: Entry::HipHostMalloc,
        requested_flags: 0,
        applied_flags: 0x8000_0000,
        memory: Memory::Device(0),
        thread: 1,
        time_ns: i + 1,
        rewritten: true,
    }
}

/// n distinct 64 KiB-spaced bases in a shuffled order.
fn bases(n: usize, seed: u64) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).map(|i| 0x7f00_0000_0000 + i * 0x10000).collect();
    let mut rng = Rng(seed);
    for i in (1..v.len()).rev() {
        let j = (rng.next() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
    v
}

struct Row {
    n: usize,
    insert: f64,
    hit: f64,
    miss: f64,
    remove: f64,
}

fn ns_per(start: Instant, ops: usize) -> f64 {
    start.elapsed().as_nanos() as f64 / ops as f64
}

fn measure(n: usize) -> Row {
    let probes = 20_000.min(n * 4);
    let mut best = Row {
        n,
        insert: f64::MAX,
        hit: f64::MAX,
        miss: f64::MAX,
        remove: f64::MAX,
    };
    for round in 0..3 {
        let r = Box::new(Registry::new());
        let b = bases(n, 0x9E37_79B9 + round);
        let t = Instant::now();
        for (i, &base) in b.iter().enumerate() {
            r.insert(alloc(base, i as u64));
        }
        best.insert = best.insert.min(ns_per(t, n));
        assert_eq!(r.live_count(), n);

        let mut rng = Rng(7 + round);
        let hits: Vec<usize> = (0..probes)
            .map(|_| b[(rng.next() % n as u64) as usize] + (rng.next() % 4096) as usize)
            .collect();
        let t = Instant::now();
        for &a in &hits {
            let l = r.lookup(black_box(a));
            debug_assert!(matches!(l, Lookup::Live(_)));
            black_box(l);
        }
        best.hit = best.hit.min(ns_per(t, probes));
        assert!(matches!(r.lookup(hits[0]), Lookup::Live(_)));

        // Between allocations: Unknown, with both neighbours found.
        let misses: Vec<usize> = hits.iter().map(|a| (a & !0xffff) + 0x8000).collect();
        let t = Instant::now();
        for &a in &misses {
            black_box(r.lookup(black_box(a)));
        }
        best.miss = best.miss.min(ns_per(t, probes));
        assert!(matches!(r.lookup(misses[0]), Lookup::Unknown { .. }));

        let t = Instant::now();
        for &base in &b {
            // What the free hooks call.
            black_box(r.take(base, 1));
        }
        best.remove = best.remove.min(ns_per(t, n));
        assert_eq!(r.live_count(), 0);
    }
    best
}

fn main() {
    // `cargo bench` passes --bench; a filter argument is not supported.
    let rows: Vec<Row> = [1_000, 10_000, 100_000, 1_000_000]
        .into_iter()
        .map(measure)
        .collect();
    println!(
        "| live allocations | insert ns | lookup (inside) ns | lookup (between) ns | remove ns |"
    );
    println!("|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {:.0} | {:.0} | {:.0} | {:.0} |",
            r.n, r.insert, r.hit, r.miss, r.remove
        );
    }
    let first = &rows[0];
    let last = &rows[rows.len() - 1];
    let growth = last.hit.max(last.miss) / first.hit.max(first.miss);
    let log_growth = (last.n as f64).log2() / (first.n as f64).log2();
    let linear_growth = last.n as f64 / first.n as f64;
    // O(log n) with cache misses on top: allow 4x the log ratio; a scan
    // would be 1000x.
    let ok = growth <= 4.0 * log_growth;
    println!();
    println!(
        "lookup time from {} to {} live allocations: x{growth:.1} (log2 n grows x{log_growth:.1}, n grows x{linear_growth:.0}); O(log n): {}",
        first.n,
        last.n,
        if ok { "yes" } else { "NO" }
    );
    if let Some(dir) = std::env::var_os("RMCP_BENCH_OUT") {
        let _ = std::fs::write(
            std::path::Path::new(&dir).join("registry-lookup-verdict"),
            format!("x{growth:.1}-from-1K-to-1M {}\n", ok as u8),
        );
    }
}
