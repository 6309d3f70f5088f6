//! Bit-identical output for 1 and 4 rayon threads.

mod common;

use common::jittered_lattice;
use halo_nlist::{extend, neighbor_stats, NeighborList, Sel};

#[test]
fn same_bits_for_any_thread_count() {
    let (pos, cell) = jittered_lattice(14, 2.2, 7);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let ext = extend(&pos, Some(&cell), 5.0).unwrap();
            let nl = NeighborList::build(&ext.coords, ext.nloc, 5.0).unwrap();
            let within = nl.within(&ext.coords, 4.0).unwrap();
            let local: Vec<usize> = (0..pos.len()).map(|i| i % 3).collect();
            let types = ext.extend_values(&local).unwrap();
            let dense = within
                .to_dense(&types, &Sel::Typed(vec![10, 6, 8]))
                .unwrap();
            let stats = neighbor_stats(&pos, Some(&cell), 4.0, 1.0).unwrap();
            (ext, nl, within, dense, stats)
        })
    };
    let one = run(1);
    let four = run(4);
    assert!(one.0.nghost() > 0 && one.1.npairs() > 0 && one.3.overflow.dropped > 0);
    assert_eq!(one.0, four.0);
    assert_eq!(one.1, four.1);
    assert_eq!(one.2, four.2);
    assert_eq!(one.3, four.3);
    assert_eq!(one.4, four.4);
}
