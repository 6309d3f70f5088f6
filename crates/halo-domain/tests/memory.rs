//! Memory per rank is O(local + ghost atoms), not O(total atoms): the same 8-rank grid on a
//! liquid-density box at two sizes, 8× apart in atom count.
//!
//! What is measured is the [`Domain`] each rank keeps ([`Domain::heap_bytes`]). The input
//! `System` is shared here (and read whole by every process on the shm/MPI backends), and
//! `Domain::decompose` holds transient O(total) arrays while it places the atoms; neither is
//! part of what a rank keeps between rebuilds.

use halo_comm::{threads, CommOptions};
use halo_core::{Cell, System, Vec3};
use halo_domain::{Domain, ProcGrid};

/// Atoms per Å³ of liquid water (3 atoms × 0.0334 molecules / Å³).
const DENSITY: f64 = 0.1003;

/// Cutoff of the ghost shell (Å), a typical DPA3/se_e2_a `rcut`.
const RCUT: f64 = 6.0;

/// Bytes of per-atom data a domain must hold: coords, base and fractional positions (3 × 24),
/// shift (12), global id and type (8 + 8).
const PER_ATOM: usize = 3 * 24 + 12 + 8 + 8;

/// A cubic periodic box of `n` atoms at liquid density, two types, deterministic
/// pseudo-random positions (a 64-bit LCG, so no dependency and the same box every run).
fn liquid_box(n: usize) -> System {
    let l = (n as f64 / DENSITY).cbrt();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let positions: Vec<Vec3> = (0..n)
        .map(|_| [next() * l, next() * l, next() * l])
        .collect();
    let symbols: Vec<&str> = (0..n).map(|i| if i % 3 == 0 { "O" } else { "H" }).collect();
    System::from_symbols(
        &symbols,
        positions,
        Some(Cell::orthorhombic(l, l, l).unwrap()),
    )
    .unwrap()
}

/// Per rank: (nloc, nall, heap bytes, bytes of sendlists in use).
fn footprints(system: &System, grid: ProcGrid) -> Vec<(usize, usize, usize, usize)> {
    threads::run(grid.nranks(), &CommOptions::default(), |comm| {
        let d = Domain::build(&comm, system, grid, RCUT).unwrap();
        let sent: usize = d.swaps().iter().map(|s| s.sendnum()).sum();
        (d.nloc(), d.nall(), d.heap_bytes(), sent * 8)
    })
    .unwrap()
}

#[test]
fn per_rank_memory_follows_local_plus_ghost_atoms() {
    let grid = ProcGrid::new([2, 2, 2]).unwrap();
    let (small_n, large_n) = (32_000, 256_000);
    let small = footprints(&liquid_box(small_n), grid);
    let large = footprints(&liquid_box(large_n), grid);
    for (n, ranks) in [(small_n, &small), (large_n, &large)] {
        assert_eq!(ranks.iter().map(|r| r.0).sum::<usize>(), n);
        for &(nloc, nall, bytes, sendlists) in ranks.iter() {
            eprintln!(
                "natoms {n:7} nloc {nloc:6} nall {nall:6} heap {bytes:9} B = {:.1} B/atom",
                bytes as f64 / nall as f64
            );
            // The arrays in use are the floor; growth by doubling at most twice that.
            let used = nall * PER_ATOM + sendlists;
            assert!(bytes >= used, "{bytes} B below the {used} B in use");
            assert!(bytes <= 2 * used + 4096, "{bytes} B for {used} B in use");
            // A constant per extended atom, whatever the total (sendlists are at most one
            // entry per ghost of a neighbour, which is about as many as this rank's).
            assert!(
                bytes <= 300 * nall,
                "{bytes} B for {nall} local+ghost atoms"
            );
        }
    }
    let mean = |r: &[(usize, usize, usize, usize)],
                f: fn(&(usize, usize, usize, usize)) -> usize| {
        r.iter().map(f).sum::<usize>() as f64 / r.len() as f64
    };
    let atoms_ratio = large_n as f64 / small_n as f64;
    let nall_ratio = mean(&large, |r| r.1) / mean(&small, |r| r.1);
    let used_ratio =
        mean(&large, |r| r.1 * PER_ATOM + r.3) / mean(&small, |r| r.1 * PER_ATOM + r.3);
    let heap_ratio = mean(&large, |r| r.2) / mean(&small, |r| r.2);
    eprintln!(
        "ratios large/small: atoms {atoms_ratio:.2}, nall {nall_ratio:.2}, \
         bytes in use {used_ratio:.2}, heap {heap_ratio:.2}"
    );
    // The ghost shell is a smaller share of the larger subdomains, so nall grows clearly
    // slower than the total: the test separates the two hypotheses.
    assert!(nall_ratio < 0.8 * atoms_ratio, "nall ratio {nall_ratio}");
    // The bytes in use follow local + ghost atoms, and the allocated bytes stay within the
    // doubling slack of them, well below the total-atom ratio.
    assert!(
        (used_ratio / nall_ratio - 1.0).abs() < 0.2,
        "bytes in use grow {used_ratio:.2}×, nall {nall_ratio:.2}×"
    );
    assert!(
        heap_ratio > 0.5 * nall_ratio && heap_ratio < 1.2 * nall_ratio,
        "heap grows {heap_ratio:.2}×, nall {nall_ratio:.2}×"
    );
    assert!(
        heap_ratio < 0.8 * atoms_ratio,
        "heap grows {heap_ratio:.2}× like the total"
    );
}
