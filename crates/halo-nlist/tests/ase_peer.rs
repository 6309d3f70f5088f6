//! Per-atom neighbour counts agree exactly with `ase.neighborlist.neighbor_list`, from the
//! fixture written by `tools/gen_nlist_fixture.py`.

use halo_core::Cell;
use halo_nlist::{extend, NeighborList};
use serde_json::Value;

fn vec3s(v: &Value) -> Vec<[f64; 3]> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let r = r.as_array().unwrap();
            [0, 1, 2].map(|k| r[k].as_f64().unwrap())
        })
        .collect()
}

#[test]
fn counts_match_ase() {
    let text = include_str!("data/ase_neighbors.json");
    let fixture: Value = serde_json::from_str(text).unwrap();
    let structures = fixture["structures"].as_array().unwrap();
    assert_eq!(structures.len(), 5);
    for s in structures {
        let name = s["name"].as_str().unwrap();
        let rcut = s["cutoff"].as_f64().unwrap();
        let positions = vec3s(&s["positions"]);
        let pbc: Vec<bool> = s["pbc"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b.as_bool().unwrap())
            .collect();
        let cell = (!s["cell"].is_null()).then(|| {
            Cell::new(
                vec3s(&s["cell"]).try_into().unwrap(),
                [pbc[0], pbc[1], pbc[2]],
            )
            .unwrap()
        });
        let ext = extend(&positions, cell.as_ref(), rcut).unwrap();
        let nl = NeighborList::build(&ext.coords, ext.nloc, rcut).unwrap();

        let counts: Vec<usize> = s["counts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_u64().unwrap() as usize)
            .collect();
        let ours: Vec<usize> = (0..nl.nloc()).map(|i| nl.count(i)).collect();
        assert_eq!(ours, counts, "{name}: per-atom counts");
        assert_eq!(nl.npairs() as u64, s["npairs"].as_u64().unwrap(), "{name}");

        for (i, want) in s["dist_sum"].as_array().unwrap().iter().enumerate() {
            let q = ext.coords[i];
            let sum: f64 = nl
                .neighbors(i)
                .iter()
                .map(|&e| {
                    let p = ext.coords[e as usize];
                    (0..3).map(|k| (p[k] - q[k]).powi(2)).sum::<f64>().sqrt()
                })
                .sum();
            let want = want.as_f64().unwrap();
            assert!(
                (sum - want).abs() < 1e-7 * (1.0 + want),
                "{name} atom {i}: {sum} vs {want}"
            );
        }
    }
}
