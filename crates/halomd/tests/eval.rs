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

fn max_abs(v: &Value) -> f64 {
    match v {
        Value::Array(x) => x.iter().map(max_abs).fold(0.0, f64::max),
        _ => v.as_f64().unwrap().abs(),
    }
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
            let got = eval_json(&model, &xyz, &[]);
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

/// Writes `coords`/`symbols` in a periodic `cell` as extxyz.
fn write_xyz(path: &Path, cell: [[f64; 3]; 3], symbols: &[String], coords: &[[f64; 3]]) {
    let flat: Vec<String> = cell.iter().flatten().map(|x| format!("{x:?}")).collect();
    let mut s = format!(
        "{}\nLattice=\"{}\" pbc=\"T T T\" Properties=species:S:1:pos:R:3\n",
        coords.len(),
        flat.join(" ")
    );
    for (sym, x) in symbols.iter().zip(coords) {
        s += &format!("{sym} {:?} {:?} {:?}\n", x[0], x[1], x[2]);
    }
    std::fs::write(path, s).unwrap();
}

#[test]
fn null_types_are_left_out_of_the_model_on_any_rank_count() {
    // The fixture's cubic cell doubled along a: model atoms in the first half, argon (not in
    // the type map) filling the second half and straddling the boundary between the halves,
    // so on a 2x1x1 grid one rank owns only argon.
    let fx = fixture("dpa3_base.json");
    let model = root()
        .join("fixtures/deepmd")
        .join(fx["model"].as_str().unwrap());
    let type_map: Vec<String> = fx["type_map"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    let case = &fx["cases"][0];
    let c: Vec<[f64; 3]> = case["cell"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| std::array::from_fn(|k| r[k].as_f64().unwrap()))
        .collect();
    assert!(c[0][1] == 0.0 && c[0][2] == 0.0 && c[1][0] == 0.0 && c[2][0] == 0.0);
    let (lx, ly, lz) = (c[0][0], c[1][1], c[2][2]);
    let wrap = |x: f64, l: f64| x - (x / l).floor() * l;
    let mut coords: Vec<[f64; 3]> = Vec::new();
    let mut symbols: Vec<String> = Vec::new();
    for (x, t) in case["coord"]
        .as_array()
        .unwrap()
        .iter()
        .zip(case["atype"].as_array().unwrap())
    {
        let x: Vec<f64> = x
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        coords.push([wrap(x[0], lx), wrap(x[1], ly), wrap(x[2], lz)]);
        symbols.push(type_map[t.as_u64().unwrap() as usize].clone());
    }
    let cell = [[2.0 * lx, 0.0, 0.0], [0.0, ly, 0.0], [0.0, 0.0, lz]];
    let dir = std::env::temp_dir().join(format!("halomd-null-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bare = dir.join("bare.xyz");
    write_xyz(&bare, cell, &symbols, &coords);
    let reference = eval_json(&model, &bare, &[]);
    let nreal = coords.len();
    for i in 0..4 {
        for j in 0..3 {
            for k in 0..3 {
                let f = [
                    0.08 + 0.23 * i as f64,
                    (j as f64 + 0.5) / 3.0,
                    (k as f64 + 0.3) / 3.0,
                ];
                coords.push([lx * (1.0 + f[0]), ly * f[1], lz * f[2]]);
                symbols.push("Ar".to_string());
            }
        }
    }
    // Two argon atoms right next to model atoms, across the subdomain boundary.
    coords.push([lx - 0.4, coords[0][1], coords[0][2]]);
    coords.push([0.3, coords[1][1] + 0.7, coords[1][2]]);
    symbols.extend(["Ar".to_string(), "Ar".to_string()]);
    let with_ar = dir.join("with_ar.xyz");
    write_xyz(&with_ar, cell, &symbols, &coords);

    let out = Command::new(env!("CARGO_BIN_EXE_halomd"))
        .args(["eval", "--model"])
        .arg(&model)
        .arg(&with_ar)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--null-types"));

    for grid in ["1x1x1", "2x1x1", "4x1x1", "2x2x1"] {
        let got = eval_json(&model, &with_ar, &["--null-types", "Ar", "--grid", grid]);
        let de = (got["energy"].as_f64().unwrap() - reference["energy"].as_f64().unwrap()).abs();
        assert!(de <= 1e-10, "grid {grid}: energy differs by {de}");
        for key in ["atom_energy", "forces", "atom_virial"] {
            let all = got[key].as_array().unwrap();
            let real = Value::Array(all[..nreal].to_vec());
            let d = max_abs_diff(&real, &reference[key]);
            assert!(d <= 1e-10, "grid {grid}: {key} differs by {d}");
            let zero = all[nreal..].iter().map(max_abs).fold(0.0, f64::max);
            assert_eq!(zero, 0.0, "grid {grid}: argon has non-zero {key}");
        }
        let d = max_abs_diff(&got["virial"], &reference["virial"]);
        assert!(d <= 1e-10, "grid {grid}: virial differs by {d}");
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
