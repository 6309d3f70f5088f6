//! The dense layout agrees entry by entry with DeePMD-kit's own `nlist` (typed and mixed),
//! from the fixture written by `tools/gen_nlist_fixture.py`. Extended indices differ between
//! the two ghost orders, so entries are compared as (owner, lattice shift).

use halo_core::Cell;
use halo_nlist::{extend, NeighborList, Sel};
use serde_json::Value;

fn vec3s(v: &Value) -> Vec<[f64; 3]> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| [0, 1, 2].map(|k| r[k].as_f64().unwrap()))
        .collect()
}

fn usizes(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}

/// DeePMD-kit's rows as `Some((owner, shift))` or `None` for `-1`.
type Entry = Option<(usize, [i32; 3])>;

fn deepmd_rows(v: &Value) -> Vec<Vec<Entry>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    e.as_array().map(|a| {
                        let x: Vec<i64> = a.iter().map(|v| v.as_i64().unwrap()).collect();
                        (x[0] as usize, [x[1] as i32, x[2] as i32, x[3] as i32])
                    })
                })
                .collect()
        })
        .collect()
}

#[test]
fn dense_layout_matches_deepmd() {
    let fixture: Value = serde_json::from_str(include_str!("data/deepmd_nlist.json")).unwrap();
    let cases = fixture["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 2);
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let rcut = c["cutoff"].as_f64().unwrap();
        let positions = vec3s(&c["positions"]);
        let cell = (!c["cell"].is_null())
            .then(|| Cell::periodic(vec3s(&c["cell"]).try_into().unwrap()).unwrap());
        let types = usizes(&c["types"]);
        let ext = extend(&positions, cell.as_ref(), rcut).unwrap();
        let nl = NeighborList::build(&ext.coords, ext.nloc, rcut).unwrap();
        let ext_types = ext.extend_values(&types).unwrap();

        let sels = [
            ("typed", Sel::Typed(usizes(&c["sel"]))),
            (
                "mixed",
                Sel::Mixed(c["mixed_sel"].as_u64().unwrap() as usize),
            ),
        ];
        for (key, sel) in sels {
            let dense = nl.to_dense(&ext_types, &sel).unwrap();
            let want = deepmd_rows(&c[key]);
            assert!(
                dense.overflow.dropped > 0,
                "{name}/{key}: the fixture should exercise truncation"
            );
            for (i, row) in want.iter().enumerate() {
                let ours: Vec<Entry> = dense
                    .row(i)
                    .iter()
                    .map(|&e| (e >= 0).then(|| (ext.mapping[e as usize], ext.shifts[e as usize])))
                    .collect();
                assert_eq!(&ours, row, "{name}/{key}: row {i}");
            }
        }
    }
}
