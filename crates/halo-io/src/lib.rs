//! Structure file I/O for halomd: extended XYZ (the ASE dialect), LAMMPS data files and VASP
//! POSCAR/CONTCAR.
//!
//! Every reader turns text into [`Frame`]s — a validated [`halo_core::System`] plus whatever else
//! the file carried (extxyz comment-line values in [`Frame::info`], extra per-atom columns in
//! [`Frame::arrays`]) — and every writer turns frames back into text. [`read()`] and [`write()`] pick
//! the format from the file name ([`Format::from_path`]) unless told; the [`extxyz`], [`lammps`]
//! and [`poscar`] modules expose the format-specific knobs.
//!
//! Design notes:
//! - **Errors name the place.** Every parse error is an [`IoError`] whose `Display` reads
//!   `path:line: what was expected, what was found`. A file that ends early names the line where
//!   the missing content was expected. No input, however malformed, panics; a proptest feeds
//!   arbitrary bytes to all three readers.
//! - **Round trips are lossless in f64.** Floats are written with Rust's shortest round-trip
//!   formatting, so `read(write(frame))` reproduces positions, cells, velocities (except extxyz,
//!   see below), masses, charges and every extra column bit for bit. Unit conversions that are
//!   powers of ten (LAMMPS `metal` velocities in Å/ps) are done on the decimal text, not by
//!   multiplying, so they stay exact too.
//! - **Units are halomd's**: Å, amu, e, and velocities in Å/fs. LAMMPS data files are read and
//!   written in `metal` units (velocities Å/ps); POSCAR velocities are Å/fs, as in VASP; extxyz
//!   velocities are written as ASE `momenta` (amu·Å per ASE time unit) so that `ase.io.read` sees
//!   them. That conversion is not a power of ten, so extxyz velocities round-trip to within
//!   3 ulp rather than bit for bit.
//! - **What a format cannot hold is dropped on write, never invented on read.** LAMMPS data and
//!   POSCAR have no per-frame info or force columns, so writing a frame to them keeps only what
//!   they can store; the format modules document exactly what that is.

pub mod extxyz;
pub mod lammps;
pub mod poscar;
mod text;

use std::fmt;
use std::path::{Path, PathBuf};

use halo_core::{System, Vec3};

/// The structure file formats halomd reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Extended XYZ as written by ASE (`Lattice=`, `Properties=`, `pbc=`); may hold many frames.
    ExtXyz,
    /// A LAMMPS data file (`atomic` or `charge` atom style, `metal` units); one frame.
    LammpsData,
    /// A VASP POSCAR/CONTCAR file; one frame.
    Poscar,
}

impl Format {
    /// Guesses the format from a file name: `*.xyz`/`*.extxyz` → extxyz;
    /// `*.data`/`*.lmp`/`*.lammps` and names starting with `data.` → LAMMPS data;
    /// `POSCAR*`/`CONTCAR*`/`*.vasp`/`*.poscar` → POSCAR; anything else → `None`.
    pub fn from_path(path: &Path) -> Option<Format> {
        let name = path.file_name()?.to_str()?.to_ascii_lowercase();
        let ext = name.rsplit_once('.').map(|(_, e)| e);
        match ext {
            Some("xyz" | "extxyz") => return Some(Format::ExtXyz),
            Some("data" | "lmp" | "lammps") => return Some(Format::LammpsData),
            Some("vasp" | "poscar") => return Some(Format::Poscar),
            _ => {}
        }
        if name.starts_with("data.") {
            Some(Format::LammpsData)
        } else if name.starts_with("poscar") || name.starts_with("contcar") {
            Some(Format::Poscar)
        } else {
            None
        }
    }

    /// Parses a format name as given on a command line: `extxyz`/`xyz`,
    /// `lammps-data`/`lammps`, `poscar`/`vasp` (case-insensitive).
    pub fn from_name(name: &str) -> Option<Format> {
        match name.to_ascii_lowercase().as_str() {
            "extxyz" | "xyz" => Some(Format::ExtXyz),
            "lammps-data" | "lammps" => Some(Format::LammpsData),
            "poscar" | "vasp" => Some(Format::Poscar),
            _ => None,
        }
    }

    /// The canonical name, as accepted by [`Format::from_name`].
    pub fn name(self) -> &'static str {
        match self {
            Format::ExtXyz => "extxyz",
            Format::LammpsData => "lammps-data",
            Format::Poscar => "poscar",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A value from an extxyz comment line (`key=value`), typed the way ASE types it.
///
/// ASE decides the type from the text alone: all-integer tokens are integers, else all-float
/// tokens are floats, else all-`T`/`F` tokens are booleans, else the value is a string. A
/// [`Value::Str`] that looks like a number therefore reads back as a number, and a one-element
/// vector reads back as a scalar; every other value round-trips exactly.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `T`/`F` (or a bare key, which means true).
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A real number.
    Float(f64),
    /// Free text.
    Str(String),
    /// Several booleans, e.g. `"T T F"`.
    Bools(Vec<bool>),
    /// Several integers, e.g. `"1 2 3"`.
    Ints(Vec<i64>),
    /// Several reals, e.g. `stress="…9 values…"`.
    Floats(Vec<f64>),
}

impl Value {
    /// The value as a real number, if it is a scalar integer or float.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::Float(x) => Some(x),
            Value::Int(i) => Some(i as f64),
            _ => None,
        }
    }
}

/// A per-atom array: `width` values per atom, stored atom after atom.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Values per atom (3 for vectors such as forces).
    pub width: usize,
    /// The values, `natoms × width` of them.
    pub data: ColumnData,
}

/// The typed storage of a [`Column`] (extxyz types `R`, `I`, `L`, `S`).
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnData {
    /// Reals (`R`).
    Real(Vec<f64>),
    /// Integers (`I`).
    Int(Vec<i64>),
    /// Booleans (`L`).
    Bool(Vec<bool>),
    /// Strings without whitespace (`S`).
    Str(Vec<String>),
}

impl Column {
    /// A real column of `width` values per atom.
    pub fn real(width: usize, data: Vec<f64>) -> Column {
        Column {
            width,
            data: ColumnData::Real(data),
        }
    }

    /// A real column of 3-vectors (forces and the like).
    pub fn vec3(rows: &[Vec3]) -> Column {
        Column::real(3, rows.iter().flatten().copied().collect())
    }

    /// Number of stored values (`natoms × width` when consistent).
    pub fn len(&self) -> usize {
        match &self.data {
            ColumnData::Real(v) => v.len(),
            ColumnData::Int(v) => v.len(),
            ColumnData::Bool(v) => v.len(),
            ColumnData::Str(v) => v.len(),
        }
    }

    /// True if the column holds no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The extxyz type letter: `R`, `I`, `L` or `S`.
    pub fn type_letter(&self) -> char {
        match self.data {
            ColumnData::Real(_) => 'R',
            ColumnData::Int(_) => 'I',
            ColumnData::Bool(_) => 'L',
            ColumnData::Str(_) => 'S',
        }
    }

    /// The rows as 3-vectors, if this is a real column of width 3.
    pub fn as_vec3(&self) -> Option<Vec<Vec3>> {
        match &self.data {
            ColumnData::Real(v) if self.width == 3 => {
                Some(v.chunks_exact(3).map(|r| [r[0], r[1], r[2]]).collect())
            }
            _ => None,
        }
    }
}

/// One structure: the atoms plus whatever else the file said about them.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// Positions, types, masses, velocities, charges and cell.
    pub system: System,
    /// Per-frame values other than the cell and periodicity (extxyz comment line, in order;
    /// e.g. `energy`, `stress`, `config_type`). LAMMPS reading stores a non-zero box origin as
    /// `lammps_origin`.
    pub info: Vec<(String, Value)>,
    /// Per-atom columns other than species, positions, velocities, masses and charges, in file
    /// order (e.g. `forces`; POSCAR selective-dynamics flags as `move_mask`; LAMMPS atom ids
    /// other than `1..=N` as `id`).
    pub arrays: Vec<(String, Column)>,
}

impl Frame {
    /// A frame holding only `system`.
    pub fn new(system: System) -> Frame {
        Frame {
            system,
            info: Vec::new(),
            arrays: Vec::new(),
        }
    }

    /// The info value stored under `key`.
    pub fn info(&self, key: &str) -> Option<&Value> {
        self.info.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Sets (or replaces) the info value under `key`.
    pub fn set_info(&mut self, key: &str, value: Value) {
        match self.info.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.info.push((key.to_string(), value)),
        }
    }

    /// The per-atom column stored under `name`.
    pub fn array(&self, name: &str) -> Option<&Column> {
        self.arrays.iter().find(|(k, _)| k == name).map(|(_, c)| c)
    }

    /// Sets (or replaces) the per-atom column under `name`.
    pub fn set_array(&mut self, name: &str, column: Column) {
        match self.arrays.iter_mut().find(|(k, _)| k == name) {
            Some(slot) => slot.1 = column,
            None => self.arrays.push((name.to_string(), column)),
        }
    }

    /// The `energy` info value (eV), as ASE stores a calculator's energy.
    pub fn energy(&self) -> Option<f64> {
        self.info("energy").and_then(Value::as_f64)
    }

    /// The `forces` column (eV/Å) as 3-vectors, as ASE stores a calculator's forces.
    pub fn forces(&self) -> Option<Vec<Vec3>> {
        self.array("forces").and_then(Column::as_vec3)
    }
}

/// A read or write failure, naming the file and (for parse errors) the 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct IoError {
    /// The file (or the name given to [`read_str`]).
    pub path: PathBuf,
    /// The 1-based line the problem is on, if it is on one.
    pub line: Option<usize>,
    /// What was expected and what was found.
    pub message: String,
}

impl IoError {
    /// An error about `path` as a whole.
    pub fn new(path: impl Into<PathBuf>, message: impl Into<String>) -> IoError {
        IoError {
            path: path.into(),
            line: None,
            message: message.into(),
        }
    }

    /// An error at 1-based `line` of `path`.
    pub fn at(path: impl Into<PathBuf>, line: usize, message: impl Into<String>) -> IoError {
        IoError {
            path: path.into(),
            line: Some(line),
            message: message.into(),
        }
    }
}

/// The path used in errors from [`write_string`], which has no file.
const OUTPUT: &str = "<output>";

/// Reads all frames of a structure file; `format: None` guesses it from the file name.
pub fn read(path: &Path, format: Option<Format>) -> Result<Vec<Frame>, IoError> {
    let format = match format.or_else(|| Format::from_path(path)) {
        Some(f) => f,
        None => {
            return Err(IoError::new(
                path,
                "cannot tell the file format from the name; \
                 name it *.xyz, *.data or POSCAR, or give the format (extxyz, lammps-data, poscar)",
            ))
        }
    };
    let bytes = std::fs::read(path).map_err(|e| IoError::new(path, e.to_string()))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = good.iter().filter(|&&b| b == b'\n').count() + 1;
        IoError::at(path, line, "not valid UTF-8 text")
    })?;
    read_str(&text, format, &path.to_string_lossy()).map_err(|e| IoError {
        path: path.to_path_buf(),
        ..e
    })
}

/// Reads all frames from text; `name` stands for the file in error messages.
pub fn read_str(text: &str, format: Format, name: &str) -> Result<Vec<Frame>, IoError> {
    match format {
        Format::ExtXyz => extxyz::read_str(text, name),
        Format::LammpsData => lammps::read_str(text, name, None).map(|f| vec![f]),
        Format::Poscar => poscar::read_str(text, name).map(|f| vec![f]),
    }
}

/// Writes frames to a file (LAMMPS data and POSCAR take exactly one frame).
pub fn write(path: &Path, frames: &[Frame], format: Format) -> Result<(), IoError> {
    let text = write_string(frames, format).map_err(|e| IoError {
        path: path.to_path_buf(),
        ..e
    })?;
    std::fs::write(path, text).map_err(|e| IoError::new(path, e.to_string()))
}

/// Formats frames as text (LAMMPS data and POSCAR take exactly one frame).
pub fn write_string(frames: &[Frame], format: Format) -> Result<String, IoError> {
    let single = || match frames {
        [frame] => Ok(frame),
        _ => Err(IoError::new(
            OUTPUT,
            format!(
                "{format} files hold exactly one frame, got {}",
                frames.len()
            ),
        )),
    };
    match format {
        Format::ExtXyz => extxyz::write_string(frames),
        Format::LammpsData => lammps::write_string(single()?, None),
        Format::Poscar => poscar::write_string(single()?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_from_paths() {
        let f = |p: &str| Format::from_path(Path::new(p));
        assert_eq!(f("a/b/traj.xyz"), Some(Format::ExtXyz));
        assert_eq!(f("x.EXTXYZ"), Some(Format::ExtXyz));
        assert_eq!(f("water.data"), Some(Format::LammpsData));
        assert_eq!(f("in.lmp"), Some(Format::LammpsData));
        assert_eq!(f("w.lammps"), Some(Format::LammpsData));
        assert_eq!(f("data.water"), Some(Format::LammpsData));
        assert_eq!(f("POSCAR"), Some(Format::Poscar));
        assert_eq!(f("run/CONTCAR_12"), Some(Format::Poscar));
        assert_eq!(f("si.vasp"), Some(Format::Poscar));
        assert_eq!(f("si.poscar"), Some(Format::Poscar));
        assert_eq!(f("notes.txt"), None);
        assert_eq!(f("README"), None);
        for fmt in [Format::ExtXyz, Format::LammpsData, Format::Poscar] {
            assert_eq!(Format::from_name(fmt.name()), Some(fmt));
        }
        assert_eq!(Format::from_name("XYZ"), Some(Format::ExtXyz));
        assert_eq!(Format::from_name("lammps"), Some(Format::LammpsData));
        assert_eq!(Format::from_name("vasp"), Some(Format::Poscar));
        assert_eq!(Format::from_name("pdb"), None);
    }

    #[test]
    fn error_display_names_file_and_line() {
        let e = IoError::at("a.xyz", 7, "expected 4 columns, found 3");
        assert_eq!(e.to_string(), "a.xyz:7: expected 4 columns, found 3");
        let e = IoError::new("b.data", "no such file");
        assert_eq!(e.to_string(), "b.data: no such file");
    }

    #[test]
    fn single_frame_formats_reject_many() {
        let s = System::from_symbols(
            &["H"],
            vec![[0.0; 3]],
            Some(halo_core::Cell::orthorhombic(3.0, 3.0, 3.0).unwrap()),
        )
        .unwrap();
        let frames = vec![Frame::new(s.clone()), Frame::new(s)];
        for fmt in [Format::LammpsData, Format::Poscar] {
            let e = write_string(&frames, fmt).unwrap_err();
            assert!(e.message.contains("exactly one frame, got 2"), "{e}");
            let e = write_string(&[], fmt).unwrap_err();
            assert!(e.message.contains("got 0"), "{e}");
        }
        assert!(write_string(&frames, Format::ExtXyz).is_ok());
    }
}
