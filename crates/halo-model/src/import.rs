//! Reading DeePMD-kit's portable model files into one tree, and typed, path-aware access to it.
//!
//! `.dp` (HDF5) and `.yaml` files hold the same dictionary (`deepmd.dpmodel.utils.serialization`):
//! nested maps whose `@variables` leaves are arrays. After loading, every array is moved into
//! [`ModelFile::arrays`] and its place in the tree holds `{"@array": index}`, so the tree stays
//! a plain `serde_json::Value` and arrays keep their dtype and shape.
//!
//! Every accessor on [`Dict`] knows its dotted path from the root, so an error reads like
//! `model.descriptor.repflow_variable.repflow_layers[2].node_self_mlp.@variables.w: expected
//! shape [16, 16], found [16, 8]` — never a silently different model.

use halo_core::DType;
use serde_json::Value;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// A model file could not be read or describes something halomd does not support.
#[derive(Debug, Error)]
pub enum ModelError {
    /// Reading or decoding the file failed.
    #[error("{path}: {message}")]
    File {
        /// The model file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A key, value, shape, option or version in the tree is missing or unsupported.
    #[error("{path}: {message}")]
    Field {
        /// Dotted path of the offending field.
        path: String,
        /// What is wrong.
        message: String,
    },
}

impl ModelError {
    /// A field error at `path`.
    pub fn field(path: impl Into<String>, message: impl Into<String>) -> Self {
        ModelError::Field {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// A numeric array from the model file, kept with its stored dtype (f32 data is exact in f64).
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    /// Stored element type.
    pub dtype: DType,
    /// Shape (empty for a scalar).
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub data: Vec<f64>,
}

/// A loaded model file: the tree with arrays replaced by `{"@array": i}` references.
#[derive(Debug, Clone)]
pub struct ModelFile {
    /// Where it came from (for messages).
    pub path: PathBuf,
    /// The dictionary tree.
    pub tree: Value,
    /// Arrays referenced from the tree.
    pub arrays: Vec<Array>,
}

impl ModelFile {
    /// The root as a [`Dict`] with path `""`.
    pub fn root(&self) -> Dict<'_> {
        Dict {
            file: self,
            value: &self.tree,
            path: String::new(),
        }
    }

    /// Loads a model file, choosing the container by suffix as DeePMD-kit does: `.dp`/`.hlo`
    /// are HDF5, `.yaml`/`.yml` are YAML.
    pub fn open(path: &Path) -> Result<Self, ModelError> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("dp" | "hlo") => Self::from_hdf5_file(path),
            Some("yaml" | "yml") => Self::from_yaml_file(path),
            other => Err(ModelError::File {
                path: path.to_path_buf(),
                message: format!(
                    "unsupported model file type {} (halomd reads DeePMD-kit's portable .dp, \
                     .hlo, .yaml and .yml files; convert others with \
                     `dp convert-backend MODEL model.dp`)",
                    other.map_or("(no extension)".to_string(), |e| format!("`.{e}`"))
                ),
            }),
        }
    }

    /// Loads a `.dp`/`.hlo` HDF5 file: the root attribute `json` holds the tree, and every
    /// leaf under an `@variables` key names a root dataset (`/variable_NNNN`).
    pub fn from_hdf5_file(path: &Path) -> Result<Self, ModelError> {
        let bytes = std::fs::read(path).map_err(|e| ModelError::File {
            path: path.to_path_buf(),
            message: format!("cannot read: {e}"),
        })?;
        Self::from_hdf5_bytes(bytes, path)
    }

    /// Loads an HDF5 model file already in memory (`path` is only for messages).
    pub fn from_hdf5_bytes(bytes: Vec<u8>, path: &Path) -> Result<Self, ModelError> {
        let file_err = |message: String| ModelError::File {
            path: path.to_path_buf(),
            message,
        };
        let len = bytes.len() as u64;
        let h5 = hdf5_reader::Hdf5File::from_vec(bytes).map_err(|e| {
            file_err(format!(
                "not a readable HDF5 model file (truncated or corrupt?): {e}"
            ))
        })?;
        // The superblock records where the file ends; a shorter file lost its tail.
        let sb = h5.superblock();
        let eof = sb.base_address.saturating_add(sb.eof_address);
        if eof > len {
            return Err(file_err(format!(
                "not a readable HDF5 model file: truncated (the HDF5 superblock says it ends \
                 at byte {eof}, the file has {len} bytes)"
            )));
        }
        let json = h5
            .root_group()
            .and_then(|g| g.attribute("json"))
            .and_then(|a| a.read_string())
            .map_err(|e| {
                file_err(format!(
                    "HDF5 file has no readable root attribute `json` \
                     (not a DeePMD-kit model file?): {e}"
                ))
            })?;
        let mut tree: Value = serde_json::from_str(&json)
            .map_err(|e| file_err(format!("root attribute `json` is not valid JSON: {e}")))?;
        let mut file = ModelFile {
            path: path.to_path_buf(),
            tree: Value::Null,
            arrays: Vec::new(),
        };
        let mut load = |name: &str, at: &str| -> Result<Array, ModelError> {
            let ds = h5.dataset(name).map_err(|e| {
                ModelError::field(at, format!("dataset `{name}` cannot be read: {e}"))
            })?;
            read_dataset(&ds).map_err(|m| ModelError::field(at, format!("dataset `{name}`: {m}")))
        };
        resolve_datasets(&mut tree, false, "", &mut file.arrays, &mut load)?;
        file.tree = tree;
        Ok(file)
    }

    /// Loads a `.yaml`/`.yml` file from disk.
    pub fn from_yaml_file(path: &Path) -> Result<Self, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::File {
            path: path.to_path_buf(),
            message: format!("cannot read: {e}"),
        })?;
        Self::from_yaml_str(&text, path)
    }

    /// Loads a `.yaml`/`.yml` file (arrays inline as `{"@class": "np.ndarray", …}` nodes).
    pub fn from_yaml_str(text: &str, path: &Path) -> Result<Self, ModelError> {
        let tree: Value = serde_yaml_ng::from_str(text).map_err(|e| ModelError::File {
            path: path.to_path_buf(),
            message: format!("not a valid YAML model file: {e}"),
        })?;
        let mut file = ModelFile {
            path: path.to_path_buf(),
            tree: Value::Null,
            arrays: Vec::new(),
        };
        let mut tree = tree;
        extract_inline_arrays(&mut tree, &mut file.arrays, "")?;
        file.tree = tree;
        Ok(file)
    }
}

/// Replaces every dataset path under an `@variables` key by an `{"@array": i}` ref, walking
/// the tree as DeePMD-kit's `traverse_model_dict` does.
fn resolve_datasets(
    v: &mut Value,
    is_variable: bool,
    path: &str,
    out: &mut Vec<Array>,
    load: &mut dyn FnMut(&str, &str) -> Result<Array, ModelError>,
) -> Result<(), ModelError> {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                let var = is_variable || k == "@variables";
                resolve_datasets(child, var, &join(path, k), out, load)?;
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter_mut().enumerate() {
                resolve_datasets(child, is_variable, &format!("{path}[{i}]"), out, load)?;
            }
        }
        Value::Null => {}
        Value::String(name) if is_variable => {
            let arr = load(name, path)?;
            out.push(arr);
            *v = serde_json::json!({ "@array": out.len() - 1 });
        }
        other if is_variable => {
            return Err(ModelError::field(
                path,
                format!("expected a dataset path, found {}", brief(other)),
            ))
        }
        _ => {}
    }
    Ok(())
}

/// Reads a float32/float64 dataset of any rank (scalars have rank 0).
fn read_dataset(ds: &hdf5_reader::Dataset) -> Result<Array, String> {
    use hdf5_reader::Datatype;
    let shape: Vec<usize> = ds
        .shape()
        .iter()
        .map(|&n| usize::try_from(n).map_err(|_| format!("dimension {n} is too large")))
        .collect::<Result<_, _>>()?;
    let n = shape
        .iter()
        .try_fold(1usize, |a, &b| a.checked_mul(b))
        .ok_or("too many elements")?;
    let (dtype, data) = match ds.dtype() {
        Datatype::FloatingPoint { size: 4, .. } => {
            let mut buf = vec![0f32; n];
            ds.read_into(&mut buf).map_err(|e| e.to_string())?;
            (DType::F32, buf.into_iter().map(f64::from).collect())
        }
        Datatype::FloatingPoint { size: 8, .. } => {
            let mut buf = vec![0f64; n];
            ds.read_into(&mut buf).map_err(|e| e.to_string())?;
            (DType::F64, buf)
        }
        other => {
            return Err(format!(
                "unsupported element type {other:?} (expected float32 or float64)"
            ))
        }
    };
    Ok(Array { dtype, shape, data })
}

/// Replaces every `{"@is_variable": true, "dtype", "value"}` node by an `{"@array": i}` ref.
fn extract_inline_arrays(
    v: &mut Value,
    out: &mut Vec<Array>,
    path: &str,
) -> Result<(), ModelError> {
    match v {
        Value::Object(map) => {
            if map.get("@is_variable").and_then(Value::as_bool) == Some(true) {
                let arr = inline_array(map, path)?;
                out.push(arr);
                *v = serde_json::json!({ "@array": out.len() - 1 });
                return Ok(());
            }
            for (k, child) in map.iter_mut() {
                extract_inline_arrays(child, out, &join(path, k))?;
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter_mut().enumerate() {
                extract_inline_arrays(child, out, &format!("{path}[{i}]"))?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn inline_array(map: &serde_json::Map<String, Value>, path: &str) -> Result<Array, ModelError> {
    let dtype = match map.get("dtype").and_then(Value::as_str) {
        Some("float64") => DType::F64,
        Some("float32") => DType::F32,
        Some(other) => {
            return Err(ModelError::field(
                format!("{path}.dtype"),
                format!("unsupported array dtype `{other}` (expected float32 or float64)"),
            ))
        }
        None => return Err(ModelError::field(path, "array node has no `dtype`")),
    };
    let value = map
        .get("value")
        .ok_or_else(|| ModelError::field(path, "array node has no `value`"))?;
    let mut shape = Vec::new();
    let mut data = Vec::new();
    flatten(value, 0, &mut shape, &mut data, path)?;
    Ok(Array { dtype, shape, data })
}

/// Flattens nested lists, checking that they are rectangular.
fn flatten(
    v: &Value,
    depth: usize,
    shape: &mut Vec<usize>,
    data: &mut Vec<f64>,
    path: &str,
) -> Result<(), ModelError> {
    match v {
        Value::Array(items) => {
            if shape.len() == depth {
                shape.push(items.len());
            } else if shape.get(depth) != Some(&items.len()) {
                return Err(ModelError::field(path, "array value is not rectangular"));
            }
            for item in items {
                flatten(item, depth + 1, shape, data, path)?;
            }
            Ok(())
        }
        Value::Number(n) => {
            if shape.len() != depth {
                return Err(ModelError::field(path, "array value is not rectangular"));
            }
            data.push(n.as_f64().unwrap_or(f64::NAN));
            Ok(())
        }
        // Non-finite numbers are written by numpy as .nan/.inf strings in YAML.
        Value::String(s) => match s.to_ascii_lowercase().trim_start_matches(['+', '.']) {
            "nan" | "inf" => Err(ModelError::field(path, "array holds a non-finite value")),
            _ => Err(ModelError::field(
                path,
                format!("array holds a non-number `{s}`"),
            )),
        },
        _ => Err(ModelError::field(path, "array holds a non-number")),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// A node of the model tree with its path, for typed access with clear errors.
#[derive(Debug, Clone)]
pub struct Dict<'a> {
    file: &'a ModelFile,
    value: &'a Value,
    path: String,
}

impl<'a> Dict<'a> {
    /// Dotted path of this node from the root.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The raw JSON value.
    pub fn value(&self) -> &'a Value {
        self.value
    }

    /// An error located at `key` below this node.
    pub fn err(&self, key: &str, message: impl Into<String>) -> ModelError {
        ModelError::field(join(&self.path, key), message)
    }

    fn child(&self, key: &str, value: &'a Value) -> Dict<'a> {
        Dict {
            file: self.file,
            value,
            path: join(&self.path, key),
        }
    }

    /// The child `key`, or an error if missing.
    pub fn get(&self, key: &str) -> Result<Dict<'a>, ModelError> {
        match self.value.get(key) {
            Some(v) => Ok(self.child(key, v)),
            None => Err(self.err(key, "missing key")),
        }
    }

    /// The child `key` if present and not null.
    pub fn opt(&self, key: &str) -> Option<Dict<'a>> {
        self.value
            .get(key)
            .filter(|v| !v.is_null())
            .map(|v| self.child(key, v))
    }

    /// True if `key` is present and not null.
    pub fn has(&self, key: &str) -> bool {
        self.opt(key).is_some()
    }

    /// A number.
    pub fn f64(&self, key: &str) -> Result<f64, ModelError> {
        let v = self.get(key)?;
        v.value
            .as_f64()
            .ok_or_else(|| self.err(key, format!("expected a number, found {}", brief(v.value))))
    }

    /// A number, or `default` if absent or null.
    pub fn f64_or(&self, key: &str, default: f64) -> Result<f64, ModelError> {
        if self.has(key) {
            self.f64(key)
        } else {
            Ok(default)
        }
    }

    /// A non-negative integer.
    pub fn usize(&self, key: &str) -> Result<usize, ModelError> {
        let v = self.get(key)?;
        as_usize(v.value).ok_or_else(|| {
            self.err(
                key,
                format!("expected a non-negative integer, found {}", brief(v.value)),
            )
        })
    }

    /// A non-negative integer, or `default` if absent or null.
    pub fn usize_or(&self, key: &str, default: usize) -> Result<usize, ModelError> {
        if self.has(key) {
            self.usize(key)
        } else {
            Ok(default)
        }
    }

    /// A boolean.
    pub fn bool(&self, key: &str) -> Result<bool, ModelError> {
        let v = self.get(key)?;
        v.value.as_bool().ok_or_else(|| {
            self.err(
                key,
                format!("expected true/false, found {}", brief(v.value)),
            )
        })
    }

    /// A boolean, or `default` if absent or null.
    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool, ModelError> {
        if self.has(key) {
            self.bool(key)
        } else {
            Ok(default)
        }
    }

    /// A string.
    pub fn str(&self, key: &str) -> Result<&'a str, ModelError> {
        let v = self.get(key)?;
        v.value
            .as_str()
            .ok_or_else(|| self.err(key, format!("expected a string, found {}", brief(v.value))))
    }

    /// A list of child nodes.
    pub fn list(&self, key: &str) -> Result<Vec<Dict<'a>>, ModelError> {
        let v = self.get(key)?;
        let items = v
            .value
            .as_array()
            .ok_or_else(|| self.err(key, format!("expected a list, found {}", brief(v.value))))?;
        Ok(items
            .iter()
            .enumerate()
            .map(|(i, item)| Dict {
                file: self.file,
                value: item,
                path: format!("{}[{i}]", v.path),
            })
            .collect())
    }

    /// A list of non-negative integers.
    pub fn usize_list(&self, key: &str) -> Result<Vec<usize>, ModelError> {
        self.list(key)?
            .iter()
            .map(|d| {
                as_usize(d.value).ok_or_else(|| {
                    ModelError::field(d.path.clone(), "expected a non-negative integer")
                })
            })
            .collect()
    }

    /// A list of strings.
    pub fn str_list(&self, key: &str) -> Result<Vec<String>, ModelError> {
        self.list(key)?
            .iter()
            .map(|d| {
                d.value
                    .as_str()
                    .map(str::to_string)
                    .ok_or_else(|| ModelError::field(d.path.clone(), "expected a string"))
            })
            .collect()
    }

    /// The array stored at `key`.
    pub fn array(&self, key: &str) -> Result<&'a Array, ModelError> {
        let v = self.get(key)?;
        v.value
            .get("@array")
            .and_then(as_usize)
            .and_then(|i| self.file.arrays.get(i))
            .ok_or_else(|| self.err(key, format!("expected an array, found {}", brief(v.value))))
    }

    /// The array this node itself holds (an item of a list of arrays, e.g. DPA3 residuals).
    pub fn as_array(&self) -> Result<&'a Array, ModelError> {
        self.value
            .get("@array")
            .and_then(as_usize)
            .and_then(|i| self.file.arrays.get(i))
            .ok_or_else(|| {
                ModelError::field(
                    self.path.clone(),
                    format!("expected an array, found {}", brief(self.value)),
                )
            })
    }

    /// The array at `key`, checked to have exactly `shape`.
    pub fn array_shaped(&self, key: &str, shape: &[usize]) -> Result<&'a Array, ModelError> {
        let a = self.array(key)?;
        if a.shape != shape {
            return Err(self.err(
                key,
                format!("expected shape {shape:?}, found {:?}", a.shape),
            ));
        }
        if let Some(i) = a.data.iter().position(|x| !x.is_finite()) {
            return Err(self.err(key, format!("element {i} is not finite")));
        }
        Ok(a)
    }

    /// The array at `key` if present and not null, checked to have `shape`.
    pub fn opt_array_shaped(
        &self,
        key: &str,
        shape: &[usize],
    ) -> Result<Option<&'a Array>, ModelError> {
        if self.has(key) {
            self.array_shaped(key, shape).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Checks `@version` lies in `min..=max` (DeePMD's `check_version_compatibility`).
    pub fn check_version(&self, max: i64, min: i64) -> Result<i64, ModelError> {
        let v = self.get("@version")?;
        let ver = v
            .value
            .as_i64()
            .ok_or_else(|| self.err("@version", "expected an integer"))?;
        if ver < min || ver > max {
            return Err(self.err(
                "@version",
                format!("version {ver} is not supported (halomd reads versions {min} to {max})"),
            ));
        }
        Ok(ver)
    }

    /// Rejects keys not in `known`, as DeePMD-kit's `cls(**data)` would: an unknown option
    /// usually means the file comes from a newer DeePMD-kit and may change the model.
    pub fn check_keys(&self, known: &[&str]) -> Result<(), ModelError> {
        if let Some(map) = self.value.as_object() {
            if let Some(k) = map.keys().find(|k| !known.contains(&k.as_str())) {
                return Err(self.err(
                    k,
                    "unknown option (not written by DeePMD-kit 3.2; is the file from a newer \
                     version?)",
                ));
            }
            Ok(())
        } else {
            Err(ModelError::field(
                self.path.clone(),
                format!("expected a dictionary, found {}", brief(self.value)),
            ))
        }
    }

    /// A list of numbers.
    pub fn f64_list(&self, key: &str) -> Result<Vec<f64>, ModelError> {
        self.list(key)?
            .iter()
            .map(|d| {
                d.value
                    .as_f64()
                    .ok_or_else(|| ModelError::field(d.path.clone(), "expected a number"))
            })
            .collect()
    }

    /// A list of numbers or nulls.
    pub fn opt_f64_list(&self, key: &str) -> Result<Vec<Option<f64>>, ModelError> {
        self.list(key)?
            .iter()
            .map(|d| match d.value {
                Value::Null => Ok(None),
                v => v
                    .as_f64()
                    .map(Some)
                    .ok_or_else(|| ModelError::field(d.path.clone(), "expected a number or null")),
            })
            .collect()
    }

    /// Checks that a string option is one of `allowed`, naming them otherwise.
    pub fn choice(&self, key: &str, allowed: &[&str]) -> Result<&'a str, ModelError> {
        let s = self.str(key)?;
        if allowed.contains(&s) {
            Ok(s)
        } else {
            Err(self.err(
                key,
                format!(
                    "unsupported value `{s}` (supported: {})",
                    allowed.join(", ")
                ),
            ))
        }
    }
}

fn as_usize(v: &Value) -> Option<usize> {
    v.as_u64()
        .or_else(|| {
            v.as_f64()
                .filter(|x| x.fract() == 0.0 && *x >= 0.0)
                .map(|x| x as u64)
        })
        .and_then(|x| usize::try_from(x).ok())
}

fn brief(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 40 {
        format!(
            "{}…",
            &s[..s.char_indices().nth(40).map_or(s.len(), |(i, _)| i)]
        )
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = r#"
model:
  "@version": 2
  rcut: 4.5
  sel: [10, 20]
  type_map: [O, H]
  "@variables":
    w:
      "@class": np.ndarray
      "@is_variable": true
      "@version": 1
      dtype: float32
      value: [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
"#;

    #[test]
    fn yaml_tree_and_paths() {
        let f = ModelFile::from_yaml_str(YAML, Path::new("m.yaml")).unwrap();
        let m = f.root().get("model").unwrap();
        assert_eq!(m.check_version(2, 1).unwrap(), 2);
        assert_eq!(m.f64("rcut").unwrap(), 4.5);
        assert_eq!(m.usize_list("sel").unwrap(), vec![10, 20]);
        assert_eq!(m.str_list("type_map").unwrap(), vec!["O", "H"]);
        let vars = m.get("@variables").unwrap();
        let w = vars.array_shaped("w", &[3, 2]).unwrap();
        assert_eq!(w.dtype, DType::F32);
        assert_eq!(w.data[5], 6.0);
        let e = vars.array_shaped("w", &[2, 3]).unwrap_err().to_string();
        assert_eq!(e, "model.@variables.w: expected shape [2, 3], found [3, 2]");
        let e = m.check_version(1, 1).unwrap_err().to_string();
        assert!(
            e.starts_with("model.@version: version 2 is not supported"),
            "{e}"
        );
        let e = m.f64("rcut_smth").unwrap_err().to_string();
        assert_eq!(e, "model.rcut_smth: missing key");
        let e = m.usize("rcut").unwrap_err().to_string();
        assert!(e.contains("non-negative integer"), "{e}");
    }

    #[test]
    fn ragged_arrays_are_rejected() {
        let bad = YAML.replace("[5.0, 6.0]", "[5.0]");
        let e = ModelFile::from_yaml_str(&bad, Path::new("m.yaml")).unwrap_err();
        assert!(e.to_string().contains("not rectangular"), "{e}");
    }
}
