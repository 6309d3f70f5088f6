//! The cell-list search over the extended system finds exactly the pairs of an O(N²)
//! all-images brute force, for random triclinic cells (skewed, thinner than the cutoff),
//! mixed periodicity and no cell.

mod common;

use std::collections::BTreeSet;

use common::{brute_force, large_case, pairs_of, small_case, Case};
use halo_nlist::{extend, NeighborList};
use proptest::prelude::*;

fn check(case: &Case) -> Result<(), TestCaseError> {
    let Case {
        positions,
        cell,
        rcut,
    } = case;
    let ext = extend(positions, cell.as_ref(), *rcut).unwrap();
    let nl = NeighborList::build(&ext.coords, ext.nloc, *rcut).unwrap();

    // Local atoms untouched, ghosts where their owner and shift say.
    prop_assert_eq!(&ext.coords[..ext.nloc], &positions[..]);
    for e in ext.nloc..ext.nall() {
        let c = cell.as_ref().expect("ghosts need a cell");
        let o = positions[ext.mapping[e]];
        let t = c.shift(ext.shifts[e]);
        prop_assert_eq!(ext.coords[e], [o[0] + t[0], o[1] + t[1], o[2] + t[2]]);
        prop_assert!(ext.shifts[e] != [0; 3]);
    }

    let got = pairs_of(&ext, &nl);
    let got_set: BTreeSet<_> = got.iter().copied().collect();
    prop_assert_eq!(got_set.len(), got.len(), "duplicate pairs");
    let want = brute_force(positions, cell.as_ref(), *rcut);
    prop_assert_eq!(&got_set, &want);

    // Pruning: the ghosts are exactly the images that are somebody's neighbour.
    let ghosts: BTreeSet<_> = (ext.nloc..ext.nall())
        .map(|e| (ext.mapping[e], ext.shifts[e]))
        .collect();
    prop_assert_eq!(ghosts.len(), ext.nghost());
    let needed: BTreeSet<_> = want
        .iter()
        .filter(|p| p.2 != [0; 3])
        .map(|p| (p.1, p.2))
        .collect();
    prop_assert_eq!(ghosts, needed);

    // Rows nearest first, ties by index.
    for (i, row) in nl.iter() {
        let key = |e: u32| {
            let (p, q) = (ext.coords[e as usize], ext.coords[i]);
            let d = [p[0] - q[0], p[1] - q[1], p[2] - q[2]];
            ((d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt(), e)
        };
        for w in row.windows(2) {
            prop_assert!(key(w[0]) < key(w[1]));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn small_thin_and_skewed_cells_match_brute_force(case in small_case()) {
        check(&case)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    #[test]
    fn larger_systems_match_brute_force(case in large_case()) {
        check(&case)?;
    }
}

#[test]
fn sparse_clusters_far_apart_without_cell() {
    // A huge bounding box with few atoms: the bin count must stay bounded and the result
    // exact.
    let mut positions = Vec::new();
    for c in 0..4 {
        for k in 0..5 {
            let o = c as f64 * 1e4;
            positions.push([o + k as f64 * 0.7, o - 0.3 * k as f64, 2.0 * o]);
        }
    }
    let case = Case {
        positions,
        cell: None,
        rcut: 1.5,
    };
    check(&case).unwrap();
}

#[test]
fn very_thin_cell_needs_many_layers() {
    // Face distance 0.25 Å against a 2 Å cutoff: eight image layers each way along c.
    let cell = halo_core::Cell::new(
        [[3.0, 0.0, 0.0], [0.4, 3.1, 0.0], [1.9, -2.2, 0.25]],
        [true, true, true],
    )
    .unwrap();
    let positions = vec![
        cell.to_cart([0.1, 0.2, 0.3]),
        cell.to_cart([0.7, 0.9, 0.5]),
        cell.to_cart([1.3, -0.2, 2.5]),
    ];
    let case = Case {
        positions,
        cell: Some(cell),
        rcut: 2.0,
    };
    check(&case).unwrap();
    let ext = extend(&case.positions, case.cell.as_ref(), 2.0).unwrap();
    assert!(ext.shifts.iter().any(|n| n[2].abs() >= 8));
}
