//! halo-io reads the files ASE wrote (tools/gen_io_fixtures.py) the way ASE reads them back.

use std::path::{Path, PathBuf};

use halo_io::{read, ColumnData, Format, Frame, Value};
use serde_json::Value as Json;

const TOL: f64 = 1e-12;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn reference() -> Json {
    let text =
        std::fs::read_to_string(data("ase_read.json")).expect("run tools/gen_io_fixtures.py");
    serde_json::from_str(&text).unwrap()
}

fn floats(j: &Json) -> Vec<f64> {
    match j {
        Json::Array(v) => v.iter().flat_map(floats).collect(),
        Json::Number(x) => vec![x.as_f64().unwrap()],
        other => panic!("expected numbers, found {other}"),
    }
}

fn close(what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= TOL * w.abs().max(1.0),
            "{what}[{k}]: halo-io {g}, ASE {w}"
        );
    }
}

/// Compares one frame with ASE's reading of it; `skip_vel` lists atoms whose velocities ASE
/// changed (it zeroes the velocities of atoms fixed by selective dynamics).
fn compare(file: &str, frame: &Frame, ase: &Json, skip_vel: &[usize]) {
    let s = &frame.system;
    let symbols: Vec<&str> = (0..s.len()).map(|i| s.symbol(i)).collect();
    let want: Vec<&str> = ase["symbols"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(symbols, want, "{file}: symbols");
    let pos: Vec<f64> = s.positions.iter().flatten().copied().collect();
    close(
        &format!("{file}: positions"),
        &pos,
        &floats(&ase["positions"]),
    );
    // LAMMPS metal masses are g/mol, which ASE converts to amu (a factor 1 − 2.6e-10 with its
    // CODATA 2014 constants); halo-io takes the number as amu so that masses round-trip exactly.
    let mass_tol = if file.ends_with(".data") { 1e-9 } else { TOL };
    for (i, (m, w)) in s.masses.iter().zip(floats(&ase["masses"])).enumerate() {
        assert!(
            (m - w).abs() <= mass_tol * w,
            "{file}: mass {i}: halo-io {m}, ASE {w}"
        );
    }
    let pbc: Vec<bool> = ase["pbc"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_bool().unwrap())
        .collect();
    assert_eq!(s.pbc().to_vec(), pbc, "{file}: pbc");
    match (&s.cell, &ase["cell"]) {
        (None, Json::Null) => {}
        (Some(c), cell) => {
            let h: Vec<f64> = c.matrix().iter().flatten().copied().collect();
            close(&format!("{file}: cell"), &h, &floats(cell));
        }
        (None, cell) => panic!("{file}: no cell, ASE has {cell}"),
    }
    match (&s.velocities, &ase["velocities"]) {
        (None, Json::Null) => {}
        (Some(v), vel) => {
            let want = floats(vel);
            for (i, vi) in v.iter().enumerate().filter(|(i, _)| !skip_vel.contains(i)) {
                close(
                    &format!("{file}: velocity {i}"),
                    vi,
                    &want[3 * i..3 * i + 3],
                );
            }
        }
        (None, vel) => panic!("{file}: no velocities, ASE has {vel}"),
    }
    match (&s.charges, &ase["charges"]) {
        (None, Json::Null) => {}
        (Some(q), want) => close(&format!("{file}: charges"), q, &floats(want)),
        (None, want) => panic!("{file}: no charges, ASE has {want}"),
    }
    match (frame.energy(), &ase["energy"]) {
        (None, Json::Null) => {}
        (Some(e), want) => close(&format!("{file}: energy"), &[e], &floats(want)),
        (None, want) => panic!("{file}: no energy, ASE has {want}"),
    }
    match (frame.forces(), &ase["forces"]) {
        (None, Json::Null) => {}
        (Some(f), want) => {
            let f: Vec<f64> = f.into_iter().flatten().collect();
            close(&format!("{file}: forces"), &f, &floats(want));
        }
        (None, want) => panic!("{file}: no forces, ASE has {want}"),
    }
}

#[test]
fn every_fixture_matches_ase() {
    let reference = reference();
    let files = reference.as_object().unwrap();
    let mut checked = 0;
    for (file, frames) in files.iter().filter(|(k, _)| k.as_str() != "ase_version") {
        let ours = read(&data(file), Some(format_of(file))).unwrap_or_else(|e| panic!("{e}"));
        let frames = frames.as_array().unwrap();
        assert_eq!(ours.len(), frames.len(), "{file}: frame count");
        // ASE zeroes velocities of atoms that selective dynamics fixes in any direction.
        let skip: &[usize] = if file == "CONTCAR_sd" { &[0, 2] } else { &[] };
        for (frame, ase) in ours.iter().zip(frames) {
            compare(file, frame, ase, skip);
            checked += 1;
        }
    }
    assert_eq!(checked, 11, "frames compared");
}

fn format_of(file: &str) -> Format {
    Format::from_path(Path::new(file)).unwrap_or_else(|| panic!("no format for {file}"))
}

#[test]
fn extxyz_extras_survive() {
    let frames = read(&data("multi.xyz"), None).unwrap();
    for (k, f) in frames.iter().enumerate() {
        assert_eq!(f.info("config_type"), Some(&Value::Str("bulk".into())));
        assert_eq!(f.info("step"), Some(&Value::Int(k as i64)));
        match f.info("stress") {
            Some(Value::Floats(v)) => assert_eq!(v.len(), 9),
            other => panic!("stress: {other:?}"),
        }
        // momenta became velocities; forces stay an array.
        assert!(f.array("momenta").is_none());
        assert_eq!(f.arrays.len(), 1);
    }
    let tri = &read(&data("triclinic.xyz"), None).unwrap()[0];
    assert_eq!(
        tri.array("tag").unwrap().data,
        ColumnData::Int(vec![3, 1, 4, 1, 5])
    );
    let labels: Vec<String> = "abcde".chars().map(String::from).collect();
    assert_eq!(tri.array("label").unwrap().data, ColumnData::Str(labels));
}

#[test]
fn contcar_selective_dynamics_and_velocities() {
    let f = &read(&data("CONTCAR_sd"), None).unwrap()[0];
    let mask = f.array("move_mask").expect("selective dynamics flags");
    assert_eq!(mask.width, 3);
    let t = true;
    let want = [[!t, !t, !t], [t, t, t], [t, !t, t], [t, t, t]].concat();
    assert_eq!(mask.data, ColumnData::Bool(want));
    // The file's own velocities, including those of fixed atoms (ASE zeroes these).
    let v = f.system.velocities.as_ref().unwrap();
    assert_eq!(v[0], [0.12345678e-2, -0.23456789e-2, 0.34567890e-3]);
    assert_eq!(v[3], [0.4e-2, 0.5e-2, -0.6e-2]);
    assert_eq!(f.system.type_names, ["Si", "C"]);
}

#[test]
fn lammps_type_names_and_styles() {
    let f = &read(&data("charge_tri.data"), None).unwrap()[0];
    assert_eq!(f.system.type_names, ["Cl", "Na"]);
    assert!(f.system.charges.is_some());
    let f = &read(&data("atomic_tri.data"), None).unwrap()[0];
    assert_eq!(f.system.type_names, ["Al", "Ni"]);
    assert!(f.system.charges.is_none());
    // ASE writes metal velocities in Å/ps; the third atom's vz is 0.20665521653550548 Å/ps,
    // and reading it is exact: the f64 nearest to that decimal times 10⁻³.
    let v = f.system.velocities.as_ref().unwrap();
    assert_eq!(Ok(v[2][2]), "0.20665521653550548e-3".parse::<f64>());
}
