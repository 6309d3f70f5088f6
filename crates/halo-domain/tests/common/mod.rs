//! Shared helpers: reading structures from the DeePMD-kit reference fixtures, supercells.

#![allow(dead_code)]

use halo_core::{Cell, System, Vec3};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The reference fixtures directory (`fixtures/deepmd` in the workspace).
pub fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/deepmd")
}

fn f64s(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(a) => a.iter().flat_map(f64s).collect(),
        Value::Number(n) => vec![n.as_f64().expect("a number")],
        other => panic!("expected numbers, found {other}"),
    }
}

/// The structure named `structure` of reference `name` (`fixtures/deepmd/NAME.json`), with
/// the reference's type map as type names.
pub fn structure(name: &str, structure: &str) -> System {
    let path = fixture_dir().join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("fixture {} unreadable: {e}", path.display()));
    let v: Value = serde_json::from_str(&text).expect("valid JSON");
    let type_map: Vec<String> = v["type_map"]
        .as_array()
        .expect("type_map")
        .iter()
        .map(|s| s.as_str().expect("a name").to_string())
        .collect();
    let case = v["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .find(|c| c["structure"] == structure)
        .unwrap_or_else(|| panic!("{name} has no structure {structure}"));
    let coord: Vec<Vec3> = f64s(&case["coord"])
        .chunks_exact(3)
        .map(|c| [c[0], c[1], c[2]])
        .collect();
    let pbc: Vec<bool> = case["pbc"]
        .as_array()
        .expect("pbc")
        .iter()
        .map(|b| b.as_bool().expect("a bool"))
        .collect();
    let cell = (!case["cell"].is_null()).then(|| {
        let h = f64s(&case["cell"]);
        Cell::new(
            [[h[0], h[1], h[2]], [h[3], h[4], h[5]], [h[6], h[7], h[8]]],
            [pbc[0], pbc[1], pbc[2]],
        )
        .expect("a valid cell")
    });
    let types: Vec<usize> = case["atype"]
        .as_array()
        .expect("atype")
        .iter()
        .map(|t| t.as_u64().expect("a type") as usize)
        .collect();
    let n = coord.len();
    System::new(coord, types, type_map, vec![1.0; n], cell).expect("a valid system")
}

/// The `reps[0] × reps[1] × reps[2]` supercell (repetitions only along periodic axes).
pub fn supercell(s: &System, reps: [usize; 3]) -> System {
    let cell = s.cell.as_ref().expect("a supercell needs a cell");
    let pbc = cell.pbc();
    let reps: [usize; 3] = std::array::from_fn(|k| if pbc[k] { reps[k] } else { 1 });
    let h = cell.matrix();
    let mut pos = Vec::new();
    let mut types = Vec::new();
    for i in 0..reps[0] {
        for j in 0..reps[1] {
            for k in 0..reps[2] {
                let t = cell.shift([i as i32, j as i32, k as i32]);
                for (x, &ty) in s.positions.iter().zip(&s.types) {
                    pos.push([x[0] + t[0], x[1] + t[1], x[2] + t[2]]);
                    types.push(ty);
                }
            }
        }
    }
    let hs: [[f64; 3]; 3] = std::array::from_fn(|a| h[a].map(|v| v * reps[a] as f64));
    let n = pos.len();
    System::new(
        pos,
        types,
        s.type_names.clone(),
        vec![1.0; n],
        Some(Cell::new(hs, pbc).expect("a valid cell")),
    )
    .expect("a valid system")
}

/// Largest absolute difference.
pub fn max_abs(a: impl IntoIterator<Item = f64>, b: impl IntoIterator<Item = f64>) -> f64 {
    a.into_iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}
