//! Build time of ghost extension + neighbour list at liquid density (0.1 atoms/Å³, a
//! jittered simple-cubic lattice in scrambled atom order), rcut 6 Å (≈ 89 neighbours/atom).
//!
//! `cargo bench -p halo-nlist` — set `RAYON_NUM_THREADS=1` for per-core numbers. The item
//! counter is the number of pairs, so divan's throughput column reads pairs/s.

use divan::counter::ItemsCount;
use divan::Bencher;
use halo_core::Cell;
use halo_nlist::{extend, NeighborList};

#[path = "common/liquid.rs"]
mod liquid;

const RCUT: f64 = 6.0;
const SEED: u64 = 0x1234_5678_9abc_def0;

fn main() {
    divan::main();
}

fn npairs(pos: &[[f64; 3]], cell: &Cell) -> usize {
    let ext = extend(pos, Some(cell), RCUT).unwrap();
    NeighborList::build(&ext.coords, ext.nloc, RCUT)
        .unwrap()
        .npairs()
}

/// Ghost extension and list, as a fresh MD step would do.
fn extend_and_build(bencher: Bencher, n: usize) {
    let (pos, cell) = liquid::liquid(n, SEED);
    let pairs = npairs(&pos, &cell);
    bencher.counter(ItemsCount::new(pairs)).bench(|| {
        let ext = extend(divan::black_box(&pos), Some(&cell), RCUT).unwrap();
        NeighborList::build(&ext.coords, ext.nloc, RCUT).unwrap()
    });
}

/// The cell-list search alone, on a pre-extended system (what domain decomposition calls).
fn build_only(bencher: Bencher, n: usize) {
    let (pos, cell) = liquid::liquid(n, SEED);
    let ext = extend(&pos, Some(&cell), RCUT).unwrap();
    let pairs = npairs(&pos, &cell);
    bencher
        .counter(ItemsCount::new(pairs))
        .bench(|| NeighborList::build(divan::black_box(&ext.coords), ext.nloc, RCUT).unwrap());
}

#[divan::bench(args = [10_000, 100_000], sample_count = 10)]
fn full(bencher: Bencher, n: usize) {
    extend_and_build(bencher, n);
}

#[divan::bench(args = [1_000_000], sample_count = 3, sample_size = 1)]
fn full_1m(bencher: Bencher, n: usize) {
    extend_and_build(bencher, n);
}

#[divan::bench(args = [10_000, 100_000], sample_count = 10)]
fn search(bencher: Bencher, n: usize) {
    build_only(bencher, n);
}

#[divan::bench(args = [1_000_000], sample_count = 3, sample_size = 1)]
fn search_1m(bencher: Bencher, n: usize) {
    build_only(bencher, n);
}
