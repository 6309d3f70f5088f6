//! Shared helpers for the model tests: reading DeePMD-kit reference fixtures.

#![allow(dead_code)]

use halo_core::{Cell, System};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The reference fixtures directory (`fixtures/deepmd` in the workspace); the environment
/// variable `HALO_DEEPMD_FIXTURES` points elsewhere.
pub fn fixture_dir() -> PathBuf {
    match std::env::var_os("HALO_DEEPMD_FIXTURES") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/deepmd"),
    }
}

/// One reference evaluation.
#[derive(Debug, Clone)]
pub struct Case {
    pub structure: String,
    pub system: System,
    pub fparam: Option<Vec<f64>>,
    pub aparam: Option<Vec<f64>>,
    pub energy: f64,
    pub atom_energy: Vec<f64>,
    /// Forces and virials; `None` for the energy-only references (DeePMD-kit's PyTorch
    /// backend cannot differentiate `atom_ener` models).
    pub force: Option<Vec<[f64; 3]>>,
    pub virial: Option<[f64; 9]>,
    pub atom_virial: Option<Vec<[f64; 9]>>,
    /// Whether some atom has more neighbours within the cutoff than `sel` allows (`None` if
    /// the reference does not say).
    pub sel_binding: Option<bool>,
}

/// A reference file: its model and cases.
#[derive(Debug, Clone)]
pub struct Reference {
    pub name: String,
    pub descriptor: String,
    pub precision: String,
    pub model: PathBuf,
    pub model_yaml: Option<PathBuf>,
    pub head: Option<usize>,
    /// The training-input `model` section it was built from (`options.config`).
    pub config: Value,
    pub cases: Vec<Case>,
}

fn f64s(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(a) => a.iter().flat_map(f64s).collect(),
        Value::Number(n) => vec![n.as_f64().unwrap()],
        other => panic!("expected numbers, found {other}"),
    }
}

fn rows<const N: usize>(v: &Value) -> Vec<[f64; N]> {
    f64s(v)
        .chunks_exact(N)
        .map(|c| std::array::from_fn(|k| c[k]))
        .collect()
}

/// Every `NAME.json` reference in the fixtures directory (sorted by name; `index.json` is the
/// directory's table of contents).
pub fn references() -> Vec<Reference> {
    let dir = fixture_dir();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reference fixtures missing at {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .filter(|p| p.file_name().is_some_and(|n| n != "index.json"))
        .collect();
    paths.sort();
    paths.iter().map(|p| read_reference(&dir, p)).collect()
}

fn read_reference(dir: &Path, path: &Path) -> Reference {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let type_map: Vec<String> = v["type_map"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    let cases = v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let coord = rows::<3>(&c["coord"]);
            let pbc: Vec<bool> = c["pbc"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b.as_bool().unwrap())
                .collect();
            let cell = if c["cell"].is_null() {
                None
            } else {
                let h = rows::<3>(&c["cell"]);
                Some(Cell::new([h[0], h[1], h[2]], [pbc[0], pbc[1], pbc[2]]).unwrap())
            };
            let types: Vec<usize> = c["atype"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_u64().unwrap() as usize)
                .collect();
            let n = coord.len();
            let system = System::new(coord, types, type_map.clone(), vec![1.0; n], cell).unwrap();
            let opt = |k: &str| (!c[k].is_null()).then(|| f64s(&c[k]));
            Case {
                structure: c["structure"].as_str().unwrap().to_string(),
                system,
                fparam: opt("fparam"),
                aparam: opt("aparam"),
                energy: c["energy"].as_f64().unwrap(),
                atom_energy: f64s(&c["atom_energy"]),
                force: (!c["force"].is_null()).then(|| rows::<3>(&c["force"])),
                virial: (!c["virial"].is_null()).then(|| rows::<9>(&c["virial"])[0]),
                atom_virial: (!c["atom_virial"].is_null()).then(|| rows::<9>(&c["atom_virial"])),
                sel_binding: c["neighbors"]["sel_binding"]
                    .as_bool()
                    .or_else(|| c["neighbors"]["e_sel_binding"].as_bool()),
            }
        })
        .collect();
    Reference {
        name: v["name"].as_str().unwrap().to_string(),
        descriptor: v["descriptor"].as_str().unwrap().to_string(),
        precision: v["precision"].as_str().unwrap().to_string(),
        model: dir.join(v["model"].as_str().unwrap()),
        model_yaml: v["model_yaml"].as_str().map(|p| dir.join(p)),
        head: v["head"].as_u64().map(|h| h as usize),
        config: v["options"]["config"].clone(),
        cases,
    }
}

/// Largest absolute difference.
pub fn max_abs(a: impl IntoIterator<Item = f64>, b: impl IntoIterator<Item = f64>) -> f64 {
    a.into_iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// Largest absolute value.
pub fn max_norm(a: impl IntoIterator<Item = f64>) -> f64 {
    a.into_iter().map(f64::abs).fold(0.0, f64::max)
}
