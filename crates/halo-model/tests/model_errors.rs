//! Unreadable or unsupported model files give errors that name the file or the field and say
//! what is wrong. Derived from a valid fixture model by editing its tree or its bytes.

mod common;

use common::{fixture_dir, references};
use halo_model::import::{ModelError, ModelFile};
use halo_model::EnergyModel;
use serde_json::{json, Value};
use std::path::PathBuf;

fn se_a_model() -> PathBuf {
    references()
        .into_iter()
        .find(|r| r.descriptor == "se_e2_a" && r.precision == "float64")
        .expect("a float64 se_e2_a fixture")
        .model
}

/// Loads the fixture, applies `edit` to its tree and returns the model error text.
fn error_after(edit: impl FnOnce(&mut Value)) -> String {
    let mut file = ModelFile::open(&se_a_model()).unwrap();
    edit(&mut file.tree);
    match EnergyModel::from_file(&file) {
        Ok(_) => panic!("edited model was accepted"),
        Err(e) => e.to_string(),
    }
}

fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("halo-model-{}-{name}", std::process::id()))
}

/// An edit of the model tree.
type Edit = fn(&mut Value);

#[test]
fn unsupported_versions_types_and_options() {
    let cases: Vec<(&str, Edit)> = vec![
        (
            "model.@version: version 3 is not supported (halomd reads versions 2 to 2)",
            |t| t["model"]["@version"] = json!(3),
        ),
        (
            "model.descriptor.@version: version 4 is not supported (halomd reads versions 1 to 3)",
            |t| t["model"]["descriptor"]["@version"] = json!(4),
        ),
        (
            "model.fitting.@version: version 5 is not supported (halomd reads versions 1 to 4)",
            |t| t["model"]["fitting"]["@version"] = json!(5),
        ),
        (
            "model.descriptor.embeddings.networks[0].layers[1].@version: version 3 is not \
             supported (halomd reads versions 1 to 2)",
            |t| {
                t["model"]["descriptor"]["embeddings"]["networks"][0]["layers"][1]["@version"] =
                    json!(3)
            },
        ),
        (
            "model.descriptor.type: descriptor type `se_atten` is not supported (halomd \
             evaluates se_e2_a and dpa3)",
            |t| t["model"]["descriptor"]["type"] = json!("se_atten"),
        ),
        (
            "model.fitting.type: fitting type `dipole` is not supported (halomd evaluates `ener` \
             models)",
            |t| t["model"]["fitting"]["type"] = json!("dipole"),
        ),
        ("model.type: model type `zbl` is not supported", |t| {
            t["model"]["type"] = json!("zbl")
        }),
        ("model.descriptor.frobnicate: unknown option", |t| {
            t["model"]["descriptor"]["frobnicate"] = json!(true)
        }),
        (
            "model.descriptor.precision: unsupported precision `float16`",
            |t| t["model"]["descriptor"]["precision"] = json!("float16"),
        ),
        (
            "model.descriptor.embeddings.networks[0].layers[0].activation_function: unknown \
             activation function `swish`",
            |t| {
                t["model"]["descriptor"]["embeddings"]["networks"][0]["layers"][0]
                    ["activation_function"] = json!("swish")
            },
        ),
        ("model.fitting.nets: missing key", |t| {
            t["model"]["fitting"]
                .as_object_mut()
                .unwrap()
                .remove("nets");
        }),
        (
            "model.descriptor.spin: spin models are not supported",
            |t| t["model"]["descriptor"]["spin"] = json!({"use_spin": [true]}),
        ),
        (
            "model.fitting.nets: expected ndim = 1 and ntypes = 5",
            |t| t["model"]["fitting"]["ntypes"] = json!(5),
        ),
        ("model.descriptor.rcut_smth: must be below rcut", |t| {
            t["model"]["descriptor"]["rcut_smth"] = json!(99.0)
        }),
    ];
    for (want, edit) in cases {
        let e = error_after(edit);
        assert!(e.starts_with(want), "expected `{want}…`, got `{e}`");
    }
}

#[test]
fn wrong_shapes_are_named() {
    // Point davg at the fitting's bias_atom_e array ([ntypes, 1]).
    let file = ModelFile::open(&se_a_model()).unwrap();
    let d = &file.tree["model"]["descriptor"];
    let ntypes = d["sel"].as_array().unwrap().len();
    let nnei: u64 = d["sel"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_u64().unwrap())
        .sum();
    let e = error_after(|t| {
        let bias = t["model"]["fitting"]["@variables"]["bias_atom_e"].clone();
        t["model"]["descriptor"]["@variables"]["davg"] = bias;
    });
    let want = format!(
        "model.descriptor.@variables.davg: expected shape [{ntypes}, {nnei}, 4], found [{ntypes}, 1]"
    );
    assert!(e.starts_with(&want), "{e}");
    // A fitting layer whose input width does not chain.
    let e = error_after(|t| {
        let w0 =
            t["model"]["fitting"]["nets"]["networks"][0]["layers"][0]["@variables"]["w"].clone();
        t["model"]["fitting"]["nets"]["networks"][0]["layers"][1]["@variables"]["w"] = w0;
    });
    assert!(
        e.contains("model.fitting.nets.networks[0].layers[1]"),
        "{e}"
    );
}

#[test]
fn unreadable_containers() {
    let good = std::fs::read(se_a_model()).unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "truncated.dp",
            good[..good.len() / 2].to_vec(),
            "not a readable HDF5 model file",
        ),
        (
            "garbage.dp",
            b"definitely not hdf5".repeat(50),
            "not a readable HDF5 model file",
        ),
        (
            "model.pth",
            good.clone(),
            "unsupported model file type `.pth`",
        ),
        (
            "broken.yaml",
            b"model: [unclosed".to_vec(),
            "not a valid YAML model file",
        ),
    ];
    for (name, bytes, want) in cases {
        let path = temp_path(name);
        std::fs::write(&path, &bytes).unwrap();
        let e = EnergyModel::load(&path).unwrap_err();
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(e, ModelError::File { .. }), "{name}: {e:?}");
        let text = e.to_string();
        assert!(
            text.starts_with(&path.display().to_string()),
            "{name}: {text}"
        );
        assert!(text.contains(want), "{name}: expected `{want}` in `{text}`");
    }
    let missing = fixture_dir().join("models/no-such-model.dp");
    let e = EnergyModel::load(&missing).unwrap_err().to_string();
    assert!(e.contains("cannot read"), "{e}");
}

/// Every malformed file in `fixtures/deepmd/bad` (listed in its `expected.json`) is rejected
/// with an error naming the offending field (`path`, when the fixture gives one) and the
/// problem.
#[test]
fn bad_fixtures_give_their_errors() {
    let dir = fixture_dir().join("bad");
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let what = |file: &str| -> &str {
        match file {
            "truncated.dp" => "not a readable HDF5 model file: truncated",
            "missing_key.yaml" => ": missing key",
            "wrong_shape.yaml" => ": expected shape [8, 8], found [7, 8]",
            "unknown_activation.yaml" => ": unknown activation function `mish`",
            "future_version.yaml" => ": version 3 is not supported (halomd reads versions 1 to 2)",
            other => panic!("no expectation for bad fixture `{other}`: add one"),
        }
    };
    let entries = expected.as_array().unwrap();
    assert!(!entries.is_empty());
    for entry in entries {
        let file = entry["file"].as_str().unwrap();
        let e = EnergyModel::load(&dir.join(file))
            .err()
            .unwrap_or_else(|| panic!("{file} was accepted"))
            .to_string();
        assert!(e.contains(what(file)), "{file}: `{e}`");
        if let Some(path) = entry["path"].as_str() {
            let located = format!("{}: {path}:", dir.join(file).display());
            assert!(
                e.starts_with(&located),
                "{file}: `{e}` should start with `{located}`"
            );
        }
    }
}
