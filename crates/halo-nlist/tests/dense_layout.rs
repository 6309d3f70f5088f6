//! The dense layout against a literal transcription of DeePMD-kit's `build_neighbor_list` +
//! `nlist_distinguish_types` (all-pairs distances, sort, drop self, keep `sum(sel)`, mask
//! `r > rcut`, split by type), and the overflow account against direct counts.

mod common;

use common::{small_case, Case};
use halo_nlist::{extend, NeighborList, Sel};
use proptest::prelude::*;

/// DeePMD-kit's construction on the extended system, one row per local atom.
fn deepmd_rows(
    coords: &[[f64; 3]],
    types: &[usize],
    nloc: usize,
    rcut: f64,
    sel: &Sel,
) -> Vec<Vec<i32>> {
    let nsel = sel.width();
    (0..nloc)
        .map(|i| {
            let mut rr: Vec<(f64, usize)> = (0..coords.len())
                .filter(|&j| j != i)
                .map(|j| {
                    let d: Vec<f64> = (0..3).map(|k| coords[j][k] - coords[i][k]).collect();
                    ((d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt(), j)
                })
                .collect();
            rr.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap().then(a.1.cmp(&b.1)));
            let mut nlist: Vec<i32> = rr
                .iter()
                .take(nsel)
                .map(|&(r, j)| if r > rcut { -1 } else { j as i32 })
                .collect();
            nlist.resize(nsel, -1);
            match sel {
                Sel::Mixed(_) => nlist,
                Sel::Typed(s) => s
                    .iter()
                    .enumerate()
                    .flat_map(|(t, &st)| {
                        let mut sec: Vec<i32> = nlist
                            .iter()
                            .copied()
                            .filter(|&j| j >= 0 && types[j as usize] == t)
                            .collect();
                        sec.resize(st, -1);
                        sec.truncate(st);
                        sec
                    })
                    .collect(),
            }
        })
        .collect()
}

fn sel_strategy() -> impl Strategy<Value = Sel> {
    prop_oneof![
        (0usize..20).prop_map(Sel::Mixed),
        prop::collection::vec(0usize..8, 1..4).prop_map(Sel::Typed),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn dense_matches_deepmd_construction(
        case in small_case(),
        sel in sel_strategy(),
        type_seed in prop::collection::vec(0usize..1000, 10),
    ) {
        let Case { positions, cell, rcut } = case;
        let ext = extend(&positions, cell.as_ref(), rcut).unwrap();
        let nl = NeighborList::build(&ext.coords, ext.nloc, rcut).unwrap();
        let ntypes = sel.sections().len().max(1);
        let local: Vec<usize> = (0..ext.nloc).map(|i| type_seed[i] % ntypes).collect();
        let types = ext.extend_values(&local).unwrap();
        let dense = nl.to_dense(&types, &sel).unwrap();

        let want = deepmd_rows(&ext.coords, &types, ext.nloc, rcut, &sel);
        prop_assert_eq!(dense.width, sel.width());
        for (i, row) in want.iter().enumerate() {
            prop_assert_eq!(dense.row(i), &row[..], "row {}", i);
        }

        // Overflow account, counted directly.
        let mut dropped = 0;
        for (i, row) in want.iter().enumerate() {
            let kept = row.iter().filter(|&&j| j >= 0).count();
            dropped += nl.count(i) - kept;
        }
        prop_assert_eq!(dense.overflow.dropped, dropped);
        for (t, sec) in dense.overflow.sections.iter().enumerate() {
            let count = |i: usize| match &sel {
                Sel::Mixed(_) => nl.count(i),
                Sel::Typed(_) => nl.neighbors(i).iter().filter(|&&j| types[j as usize] == t).count(),
            };
            let over: Vec<usize> = (0..ext.nloc).filter(|&i| count(i) > sec.sel).collect();
            prop_assert_eq!(sec.atoms_over, over.len());
            let worst = over.iter().map(|&i| (count(i), std::cmp::Reverse(i))).max();
            prop_assert_eq!(sec.worst, worst.map(|(c, std::cmp::Reverse(i))| (i, c)));
        }
        prop_assert_eq!(dense.warning().is_some(), dropped > 0);
        if let (Some(w), Some((atom, _))) = (dense.warning(), dense.overflow.sections.iter().find_map(|s| s.worst)) {
            prop_assert!(w.contains(&format!("local atom {atom} ")), "{}", w);
        }
    }
}
