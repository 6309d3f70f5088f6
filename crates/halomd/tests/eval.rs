//! `halomd eval` / `halomd inspect` end to end against DeePMD-kit reference values.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture(name: &str) -> Value {
    let text = std::fs::read_to_string(root().join("fixtures/deepmd").join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Writes one fixture case as an ASE-style extxyz file.
fn write_case(case: &Value, type_map: &[Value], path: &Path) {
    let coord = case["coord"].as_array().unwrap();
    let mut s = format!("{}\n", coord.len());
    let pbc: Vec<&str> = case["pbc"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| if b.as_bool().unwrap() { "T" } else { "F" })
        .collect();
    if let Some(cell) = case["cell"].as_array() {
        let flat: Vec<String> = cell
            .iter()
            .flat_map(|r| {
                r.as_array()
                    .unwrap()
                    .iter()
                    .map(|x| format!("{}", x.as_f64().unwrap()))
            })
            .collect();
        s += &format!("Lattice=\"{}\" pbc=\"{}\" ", flat.join(" "), pbc.join(" "));
    }
    s += "Properties=species:S:1:pos:R:3\n";
    for (x, t) in coord.iter().zip(case["atype"].as_array().unwrap()) {
        let sym = type_map[t.as_u64().unwrap() as usize].as_str().unwrap();
        let x: Vec<f64> = x
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        s += &format!("{sym} {:?} {:?} {:?}\n", x[0], x[1], x[2]);
    }
    std::fs::write(path, s).unwrap();
}

fn max_abs_diff(a: &Value, b: &Value) -> f64 {
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len());
            x.iter()
                .zip(y)
                .map(|(p, q)| max_abs_diff(p, q))
                .fold(0.0, f64::max)
        }
        _ => (a.as_f64().unwrap() - b.as_f64().unwrap()).abs(),
    }
}

#[test]
fn eval_json_matches_deepmd() {
    let dir = std::env::temp_dir().join(format!("halomd-eval-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["se_a_two_side.json", "dpa3_base.json"] {
        let fx = fixture(name);
        let model = root()
            .join("fixtures/deepmd")
            .join(fx["model"].as_str().unwrap());
        let type_map = fx["type_map"].as_array().unwrap();
        for case in fx["cases"].as_array().unwrap() {
            let xyz = dir.join(format!("{}.xyz", case["structure"].as_str().unwrap()));
            write_case(case, type_map, &xyz);
            let out = Command::new(env!("CARGO_BIN_EXE_halomd"))
                .args(["eval", "--model"])
                .arg(&model)
                .arg(&xyz)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let got: Value = serde_json::from_slice(&out.stdout).unwrap();
            let n = case["coord"].as_array().unwrap().len();
            assert_eq!(got["natoms"], n);
            let tag = format!("{name} {}", case["structure"]);
            let de = (got["energy"].as_f64().unwrap() - case["energy"].as_f64().unwrap()).abs();
            assert!(de / n as f64 <= 1e-10, "{tag}: energy off by {de}");
            for (key, want) in [
                ("atom_energy", "atom_energy"),
                ("forces", "force"),
                ("virial", "virial"),
                ("atom_virial", "atom_virial"),
            ] {
                let d = max_abs_diff(&got[key], &case[want]);
                assert!(d <= 1e-9, "{tag}: {key} off by {d}");
            }
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

fn eval_json(model: &Path, xyz: &Path, extra: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_halomd"))
        .args(["eval", "--model"])
        .arg(model)
        .args(extra)
        .arg(xyz)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn eval_on_several_ranks_matches_one_rank() {
    let dir = std::env::temp_dir().join(format!("halomd-ranks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["dpa3_base.json", "se_a_two_side.json"] {
        let fx = fixture(name);
        let model = root()
            .join("fixtures/deepmd")
            .join(fx["model"].as_str().unwrap());
        let case = &fx["cases"][0];
        let xyz = dir.join("case.xyz");
        write_case(case, fx["type_map"].as_array().unwrap(), &xyz);
        let one = eval_json(&model, &xyz, &[]);
        for grid in ["2x1x1", "1x1x3", "2x2x1", "2x2x2"] {
            let many = eval_json(&model, &xyz, &["--grid", grid]);
            for key in ["energy", "atom_energy", "forces", "virial", "atom_virial"] {
                let d = max_abs_diff(&one[key], &many[key]);
                assert!(d <= 1e-10, "{name} grid {grid}: {key} differs by {d}");
            }
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn inspect_prints_model_facts() {
    let out = Command::new(env!("CARGO_BIN_EXE_halomd"))
        .arg("inspect")
        .arg(root().join("fixtures/deepmd/models/dpa3_base.dp"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let fx = fixture("dpa3_base.json");
    for t in fx["type_map"].as_array().unwrap() {
        assert!(text.contains(t.as_str().unwrap()), "{text}");
    }
    assert!(text.contains("dpa3"), "{text}");
    assert!(text.contains("repflow.node_ebd.layer0"), "{text}");
}

#[test]
fn eval_rejects_bad_models_naming_the_file() {
    let bad = root().join("fixtures/deepmd/bad");
    for entry in std::fs::read_dir(&bad).unwrap() {
        let path = entry.unwrap().path();
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if ext != "dp" && ext != "yaml" {
            continue;
        }
        let out = Command::new(env!("CARGO_BIN_EXE_halomd"))
            .args(["eval", "--model"])
            .arg(&path)
            .arg(root().join("examples/structures/cu256.xyz"))
            .output()
            .unwrap();
        assert!(!out.status.success(), "{} was accepted", path.display());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("halomd: error:"), "{err}");
        let file = path.file_name().unwrap().to_str().unwrap();
        assert!(err.contains(file), "error does not name {file}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}
