//! Peak memory of a ghost extension + neighbour list build at liquid density.
//!
//! `cargo run --release -p halo-nlist --example nlist_memory -- 1000000 6.0`
//! prints the list size and the process's peak resident set (VmHWM, Linux).

use std::time::Instant;

use halo_nlist::{extend, NeighborList};

#[path = "../benches/common/liquid.rs"]
mod liquid;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args
        .get(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let rcut: f64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(6.0);
    let (pos, cell) = liquid::liquid(n, 42);
    let rss0 = peak_rss_kib();
    let t = Instant::now();
    let ext = extend(&pos, Some(&cell), rcut).expect("extend");
    let t_ext = t.elapsed();
    let nl = NeighborList::build(&ext.coords, ext.nloc, rcut).expect("build");
    let t_all = t.elapsed();
    println!(
        "natoms {} nghost {} npairs {} ({:.1}/atom) list {:.1} MiB",
        ext.nloc,
        ext.nghost(),
        nl.npairs(),
        nl.npairs() as f64 / ext.nloc as f64,
        nl.heap_bytes() as f64 / 1048576.0
    );
    println!(
        "extend {:.3} s, extend+build {:.3} s, threads {}",
        t_ext.as_secs_f64(),
        t_all.as_secs_f64(),
        rayon::current_num_threads()
    );
    println!(
        "peak RSS before build {:.1} MiB, after {:.1} MiB",
        rss0 / 1024.0,
        peak_rss_kib() / 1024.0
    );
}

/// Peak resident set size in KiB from /proc/self/status (0 where unavailable).
fn peak_rss_kib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0.0)
}
