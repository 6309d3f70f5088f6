//! Shared helpers of the DPA3 tests: reading the descriptor fixtures written by
//! `tools/dpa3_check/make_desc_refs.py` (DeePMD-kit 3.2 `DescrptDPA3.call` outputs).
#![allow(dead_code)]

use halo_model::descriptor::dpa3::Dpa3;
use halo_model::descriptor::DescriptorInput;
use halo_model::import::ModelFile;
use halo_model::Real;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// One structure of a fixture with DeePMD's extended inputs and descriptor.
pub struct Frame {
    pub name: String,
    pub nloc: usize,
    pub coords: Vec<[f64; 3]>,
    pub types: Vec<i32>,
    pub mapping: Vec<usize>,
    pub nlist: Vec<i32>,
    pub nnei: usize,
    pub dim_out: usize,
    pub descriptor: Vec<f64>,
}

impl Frame {
    pub fn input(&self) -> DescriptorInput<'_> {
        DescriptorInput {
            coords: &self.coords,
            types: &self.types,
            nloc: self.nloc,
            nlist: &self.nlist,
            nnei: self.nnei,
        }
    }

    pub fn exchange(&self) -> halo_core::MappingExchange {
        halo_core::MappingExchange::new(self.mapping.clone(), self.nloc)
    }
}

/// One option variant: its model file and frames.
pub struct Fixture {
    pub variant: String,
    pub precision: String,
    pub model: ModelFile,
    pub frames: Vec<Frame>,
}

impl Fixture {
    pub fn dpa3<T: Real>(&self) -> Dpa3<T> {
        let root = self.model.root();
        let d = root.get("descriptor").unwrap();
        Dpa3::<T>::from_dict_any_precision(&d).unwrap_or_else(|e| panic!("{}: {e}", self.variant))
    }
}

pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/dpa3_desc")
}

fn ints(v: &Value) -> Vec<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// All fixtures, sorted by variant name.
pub fn load_all() -> Vec<Fixture> {
    let dir = data_dir();
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    names.sort();
    assert!(names.len() >= 12, "expected ≥ 12 DPA3 fixtures in {dir:?}");
    names.iter().map(|p| load(p)).collect()
}

pub fn load(path: &Path) -> Fixture {
    load_with(path, |p| ModelFile::from_yaml_file(p).unwrap())
}

/// A fixture whose model tree is changed by `edit` before it is read.
pub fn load_edited(path: &Path, edit: impl FnOnce(&mut Value)) -> Fixture {
    load_with(path, |p| edited_model(p, edit))
}

/// The YAML model at `path` after `edit` of its tree.
pub fn edited_model(path: &Path, edit: impl FnOnce(&mut Value)) -> ModelFile {
    let mut tree: Value = serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    edit(&mut tree);
    let text = serde_json::to_string(&tree).unwrap();
    ModelFile::from_yaml_str(&text, path).unwrap()
}

fn load_with(path: &Path, model: impl FnOnce(&Path) -> ModelFile) -> Fixture {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let model = model(&path.with_file_name(v["model"].as_str().unwrap()));
    let frames = v["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let c = floats(&f["coord_ext"]);
            Frame {
                name: f["name"].as_str().unwrap().to_string(),
                nloc: f["nloc"].as_u64().unwrap() as usize,
                coords: c.chunks(3).map(|x| [x[0], x[1], x[2]]).collect(),
                types: ints(&f["atype_ext"]).iter().map(|&t| t as i32).collect(),
                mapping: ints(&f["mapping"]).iter().map(|&t| t as usize).collect(),
                nlist: ints(&f["nlist"]).iter().map(|&t| t as i32).collect(),
                nnei: f["nnei"].as_u64().unwrap() as usize,
                dim_out: f["dim_out"].as_u64().unwrap() as usize,
                descriptor: floats(&f["descriptor"]),
            }
        })
        .collect();
    Fixture {
        variant: v["variant"].as_str().unwrap().to_string(),
        precision: v["precision"].as_str().unwrap().to_string(),
        model,
        frames,
    }
}
