//! The bundled example model (`examples/cu-emt/cu_se_e2_a.dp`, trained by
//! `tools/train_example/`) evaluated by halomd against DeePMD-kit's own numbers for it
//! (`examples/cu-emt/reference.json`, written by `tools/train_example/check.py`).

use halo_core::{Cell, System};
use halo_model::model::{EnergyModel, EvalParams};
use serde_json::Value;
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn floats(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(a) => a.iter().flat_map(floats).collect(),
        v => vec![v.as_f64().unwrap()],
    }
}

#[test]
fn bundled_model_matches_deepmd() {
    let dir = root().join("examples/cu-emt");
    let refs: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap())
            .unwrap();
    let model = EnergyModel::load(&dir.join("cu_se_e2_a.dp")).unwrap();
    let results = &refs["models"]["cu_se_e2_a"]["results"];
    let mut checked = 0;
    for (name, s) in refs["structures"].as_object().unwrap() {
        let x = floats(&s["positions"]);
        let h = floats(&s["cell"]);
        let type_map: Vec<String> = s["type_map"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            .collect();
        let types: Vec<usize> = floats(&s["types"]).iter().map(|&t| t as usize).collect();
        let cell =
            Cell::periodic([[h[0], h[1], h[2]], [h[3], h[4], h[5]], [h[6], h[7], h[8]]]).unwrap();
        let system = System {
            positions: x.chunks(3).map(|c| [c[0], c[1], c[2]]).collect(),
            masses: vec![63.546; types.len()],
            types,
            type_names: type_map,
            velocities: None,
            charges: None,
            cell: Some(cell),
        };
        let out = model
            .evaluate_system(&system, &EvalParams::default())
            .unwrap();
        let r = &results[name.as_str()];
        let n = system.len() as f64;
        let de = (out.energy - r["energy"].as_f64().unwrap()).abs() / n;
        let df = out
            .force
            .iter()
            .flatten()
            .zip(floats(&r["forces"]))
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        let dv = out
            .virial
            .iter()
            .zip(floats(&r["virial"]))
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        println!("{name}: |dE|/N {de:.1e} eV, max|dF| {df:.1e} eV/Å, max|dW| {dv:.1e} eV");
        assert!(de < 1e-10, "{name}: energy per atom differs by {de:e}");
        assert!(df < 1e-9, "{name}: forces differ by {df:e}");
        assert!(dv < 1e-9, "{name}: virial differs by {dv:e}");
        checked += 1;
    }
    assert_eq!(checked, 2);
}
