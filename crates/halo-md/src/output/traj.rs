//! Trajectory writers: extended XYZ (ASE dialect) and LAMMPS text dumps.
//!
//! Each frame is formatted into one `String` and appended with a single `write_all`, then
//! flushed; [`TrajWriter::len`] is the byte length a checkpoint records, and
//! [`TrajWriter::create`] with `resume = Some(len)` cuts the file back to it and appends.
//!
//! Floats are written with Rust's shortest round-trip formatting (`{:?}`), so readers get back
//! the exact `f64` bits wherever no unit conversion is involved.
//!
//! **extxyz** (readable by `ase.io.read` and [`halo_io`]): the comment line holds
//! `Lattice="ax ay az bx by bz cx cy cz"` (omitted without a cell),
//! `Properties=species:S:1:pos:R:3[:momenta:R:3][:forces:R:3]`, `energy=` (eV, if known),
//! `step=`, `time=` (fs) and `pbc="T T T"`. Velocities are stored as ASE `momenta`
//! (amu·Å per ASE time unit) computed with each element's *standard* mass, the mass that both
//! ASE and halo-io assume when no `masses` column is present: so `atoms.get_velocities()` and
//! halo-io's `System::velocities` (Å/fs) both recover the run's velocities (within a few ulp),
//! whatever masses the run used. If a type name is not a chemical symbol, velocities are
//! written as a `vel:R:3` column in Å/fs instead (which halo-io reads; ASE keeps it as an
//! array). Forces are eV/Å.
//!
//! **LAMMPS dump** (`metal` units, as `dump custom` writes it): `ITEM: TIME` (ps),
//! `ITEM: TIMESTEP`, `ITEM: NUMBER OF ATOMS`, `ITEM: BOX BOUNDS` and
//! `ITEM: ATOMS id type element xu yu zu [vx vy vz] [fx fy fz]` with `id = gid + 1`,
//! (unwrapped coordinates: the MD loop writes positions plus image flags times the cell),
//! `type = type index + 1`, velocities in Å/ps and forces in eV/Å. LAMMPS boxes are restricted
//! triclinic (`a` along x, `b` in the xy plane), so a general cell is rotated into that frame,
//! and positions, velocities and forces with it: the dump's box and coordinates describe the same
//! structure up to a rigid rotation. A cell already in that form is written without rotation.
//! Without a cell the box is the atoms' bounding box with `ff` boundaries.

use std::fmt::Write as _;
use std::path::Path;
use std::str::FromStr;

use halo_core::cell::{cross, dot, norm};
use halo_core::{elements, Cell, Vec3};

use super::OutFile;
use crate::MdError;

/// Trajectory file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrajFormat {
    /// Extended XYZ (ASE dialect).
    Extxyz,
    /// LAMMPS text dump.
    LammpsDump,
}

impl TrajFormat {
    /// The format implied by a file's extension (`.xyz`/`.extxyz`, `.lammpstrj`/`.dump`).
    pub fn from_path(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "xyz" | "extxyz" => Some(TrajFormat::Extxyz),
            "lammpstrj" | "dump" => Some(TrajFormat::LammpsDump),
            _ => None,
        }
    }

    /// The name used in input files.
    pub fn name(self) -> &'static str {
        match self {
            TrajFormat::Extxyz => "extxyz",
            TrajFormat::LammpsDump => "lammps-dump",
        }
    }
}

impl FromStr for TrajFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "extxyz" => Ok(TrajFormat::Extxyz),
            "lammps-dump" => Ok(TrajFormat::LammpsDump),
            other => Err(format!(
                "unknown trajectory format {other:?} (expected \"extxyz\" or \"lammps-dump\")"
            )),
        }
    }
}

impl std::fmt::Display for TrajFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One trajectory frame: every atom, in gid order (metal units).
#[derive(Debug, Clone, Copy)]
pub struct TrajFrame<'a> {
    /// Step number.
    pub step: u64,
    /// Simulated time (fs).
    pub time: f64,
    /// The cell, if the system has one.
    pub cell: Option<&'a Cell>,
    /// Type names (chemical symbols for extxyz), indexed by `types`.
    pub type_names: &'a [String],
    /// Type index of each atom.
    pub types: &'a [usize],
    /// Positions (Å).
    pub positions: &'a [Vec3],
    /// Velocities (Å/fs), if they are to be written.
    pub velocities: Option<&'a [Vec3]>,
    /// Forces (eV/Å), if they are to be written.
    pub forces: Option<&'a [Vec3]>,
    /// Potential energy (eV), if known.
    pub energy: Option<f64>,
}

impl TrajFrame<'_> {
    /// Checks that every per-atom array has one entry per atom and every type has a name.
    pub fn validate(&self) -> Result<(), String> {
        let n = self.positions.len();
        if self.types.len() != n {
            return Err(format!("{} types for {n} positions", self.types.len()));
        }
        for (what, arr) in [("velocities", self.velocities), ("forces", self.forces)] {
            if let Some(a) = arr {
                if a.len() != n {
                    return Err(format!("{} {what} for {n} positions", a.len()));
                }
            }
        }
        if let Some(&t) = self.types.iter().find(|&&t| t >= self.type_names.len()) {
            return Err(format!(
                "type index {t} but only {} type names",
                self.type_names.len()
            ));
        }
        if let Some(name) = self
            .type_names
            .iter()
            .find(|s| s.is_empty() || s.chars().any(char::is_whitespace))
        {
            return Err(format!("type name {name:?} is empty or has whitespace"));
        }
        Ok(())
    }
}

/// Appends frames to a trajectory file.
#[derive(Debug)]
pub struct TrajWriter {
    file: OutFile,
    format: TrajFormat,
}

impl TrajWriter {
    /// Creates (truncates) `path`, or with `resume = Some(len)` (the length a checkpoint
    /// recorded) cuts the existing file back to `len` bytes and appends; a missing or shorter
    /// file on resume is an error.
    pub fn create(path: &Path, format: TrajFormat, resume: Option<u64>) -> Result<Self, MdError> {
        Ok(TrajWriter {
            file: OutFile::open(path, resume)?,
            format,
        })
    }

    /// Appends one frame (one `write_all`, then a flush).
    pub fn write(&mut self, frame: &TrajFrame<'_>) -> Result<(), MdError> {
        let text = format_frame(frame, self.format).map_err(|msg| {
            MdError::io(
                self.file.key(),
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("trajectory frame at step {}: {msg}", frame.step),
                ),
            )
        })?;
        self.file.write_record(text.as_bytes())
    }

    /// Bytes written so far, as a checkpoint records it.
    pub fn len(&self) -> u64 {
        self.file.len()
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The path, as the key of a checkpoint's `outputs` entry.
    pub fn key(&self) -> &str {
        self.file.key()
    }

    /// The `(path, length)` entry for a checkpoint's `outputs` list.
    pub fn output(&self) -> (String, u64) {
        (self.key().to_string(), self.len())
    }

    /// The file format.
    pub fn format(&self) -> TrajFormat {
        self.format
    }

    /// Forces the file to disk (at checkpoints).
    pub fn sync(&mut self) -> Result<(), MdError> {
        self.file.sync()
    }
}

/// Formats one frame as text in `format`.
pub fn format_frame(frame: &TrajFrame<'_>, format: TrajFormat) -> Result<String, String> {
    frame.validate()?;
    Ok(match format {
        TrajFormat::Extxyz => extxyz_frame(frame),
        TrajFormat::LammpsDump => lammps_frame(frame),
    })
}

/// Shortest round-trip text of a float.
struct R(f64);

impl std::fmt::Display for R {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.0, f)
    }
}

/// `x · 10^shift` rounded once: the exponent is moved in the decimal text and parsed back, so
/// the result is the correctly rounded scaled value (a product would round twice); written in
/// the shortest text that reads back as that value.
fn scaled(x: f64, shift: i32) -> String {
    let text = format!("{x:e}");
    let value = match text.split_once('e') {
        Some((mantissa, exp)) if x.is_finite() => exp
            .parse::<i32>()
            .ok()
            .and_then(|e| format!("{mantissa}e{}", e + shift).parse::<f64>().ok()),
        _ => None,
    };
    R(value.unwrap_or(x * 10f64.powi(shift))).to_string()
}

fn extxyz_frame(fr: &TrajFrame<'_>) -> String {
    let n = fr.positions.len();
    let std_mass: Option<Vec<f64>> = fr.type_names.iter().map(|s| elements::mass_of(s)).collect();
    let mut out = String::with_capacity(96 * (n + 2));
    let _ = writeln!(out, "{n}");
    if let Some(cell) = fr.cell {
        let h = cell.matrix();
        let flat: Vec<String> = h.iter().flatten().map(|&x| R(x).to_string()).collect();
        let _ = write!(out, "Lattice=\"{}\" ", flat.join(" "));
    }
    out.push_str("Properties=species:S:1:pos:R:3");
    if fr.velocities.is_some() {
        out.push_str(if std_mass.is_some() {
            ":momenta:R:3"
        } else {
            ":vel:R:3"
        });
    }
    if fr.forces.is_some() {
        out.push_str(":forces:R:3");
    }
    if let Some(e) = fr.energy {
        let _ = write!(out, " energy={}", R(e));
    }
    let _ = write!(out, " step={} time={}", fr.step, R(fr.time));
    let pbc = fr.cell.map(Cell::pbc).unwrap_or([false; 3]);
    let tf = |b: bool| if b { "T" } else { "F" };
    let _ = writeln!(out, " pbc=\"{} {} {}\"", tf(pbc[0]), tf(pbc[1]), tf(pbc[2]));
    for i in 0..n {
        let t = fr.types[i];
        let _ = write!(out, "{:<2}", fr.type_names[t]);
        for x in fr.positions[i] {
            let _ = write!(out, " {:>22}", R(x));
        }
        if let Some(v) = fr.velocities {
            for vk in v[i] {
                let value = match &std_mass {
                    Some(m) => vk / halo_io::extxyz::ASE_FS * m[t],
                    None => vk,
                };
                let _ = write!(out, " {:>22}", R(value));
            }
        }
        if let Some(f) = fr.forces {
            for fk in f[i] {
                let _ = write!(out, " {:>22}", R(fk));
            }
        }
        out.push('\n');
    }
    out
}

/// A cell in LAMMPS' restricted triclinic form and the rotation into it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LammpsBox {
    /// Edge lengths along the axes: `lx`, `ly`, `lz` (Å).
    pub lengths: Vec3,
    /// Tilt factors `xy`, `xz`, `yz` (Å).
    pub tilts: Vec3,
    /// Rotation (columns are the new x, y, z axes in the old frame), or `None` when the cell is
    /// already in restricted form and coordinates are written unchanged.
    pub rotation: Option<[Vec3; 3]>,
}

impl LammpsBox {
    /// The restricted triclinic form of `cell`: `a' = (lx,0,0)`, `b' = (xy,ly,0)`,
    /// `c' = (xz,yz,lz)` with the same lengths and angles.
    pub fn from_cell(cell: &Cell) -> LammpsBox {
        let [a, b, c] = *cell.matrix();
        if a[1] == 0.0 && a[2] == 0.0 && b[2] == 0.0 {
            // Already restricted (a right-handed Cell has a[0], b[1], c[2] > 0 then).
            return LammpsBox {
                lengths: [a[0], b[1], c[2]],
                tilts: [b[0], c[0], c[1]],
                rotation: None,
            };
        }
        // Gram-Schmidt: x along a, y in the ab plane, z = x × y (right-handed, like the cell).
        let e1 = unit(a);
        let b_perp = sub(b, scale(e1, dot(b, e1)));
        let e2 = unit(b_perp);
        let e3 = cross(e1, e2);
        LammpsBox {
            lengths: [dot(a, e1), dot(b, e2), dot(c, e3)],
            tilts: [dot(b, e1), dot(c, e1), dot(c, e2)],
            rotation: Some([e1, e2, e3]),
        }
    }

    /// A vector expressed in the box's frame.
    pub fn rotate(&self, v: Vec3) -> Vec3 {
        match &self.rotation {
            None => v,
            Some([e1, e2, e3]) => [dot(v, *e1), dot(v, *e2), dot(v, *e3)],
        }
    }

    /// The box's lattice vectors as rows (origin at 0).
    pub fn matrix(&self) -> [Vec3; 3] {
        let [lx, ly, lz] = self.lengths;
        let [xy, xz, yz] = self.tilts;
        [[lx, 0.0, 0.0], [xy, ly, 0.0], [xz, yz, lz]]
    }

    /// The three `ITEM: BOX BOUNDS` lines of a triclinic box (bounding-box convention of
    /// LAMMPS dumps: `xlo_bound xhi_bound xy`, `ylo_bound yhi_bound xz`, `zlo_bound zhi_bound yz`).
    pub fn bounds_lines(&self) -> String {
        let [lx, ly, lz] = self.lengths;
        let [xy, xz, yz] = self.tilts;
        let xlo = 0f64.min(xy).min(xz).min(xy + xz);
        let xhi = lx + 0f64.max(xy).max(xz).max(xy + xz);
        let ylo = 0f64.min(yz);
        let yhi = ly + 0f64.max(yz);
        format!(
            "{} {} {}\n{} {} {}\n{} {} {}\n",
            R(xlo),
            R(xhi),
            R(xy),
            R(ylo),
            R(yhi),
            R(xz),
            R(0.0),
            R(lz),
            R(yz)
        )
    }
}

fn unit(v: Vec3) -> Vec3 {
    scale(v, 1.0 / norm(v))
}

fn scale(v: Vec3, s: f64) -> Vec3 {
    [v[0] * s, v[1] * s, v[2] * s]
}

fn sub(a: Vec3, b: Vec3) -> Vec3 {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

fn lammps_frame(fr: &TrajFrame<'_>) -> String {
    let n = fr.positions.len();
    let mut out = String::with_capacity(110 * (n + 10));
    let _ = write!(
        out,
        "ITEM: TIME\n{}\nITEM: TIMESTEP\n{}\nITEM: NUMBER OF ATOMS\n{n}\n",
        scaled(fr.time, -3),
        fr.step
    );
    let bc = |p: bool| if p { "pp" } else { "ff" };
    let lbox = fr.cell.map(LammpsBox::from_cell);
    match (fr.cell, &lbox) {
        (Some(cell), Some(b)) => {
            let p = cell.pbc();
            let (p0, p1, p2) = (bc(p[0]), bc(p[1]), bc(p[2]));
            if b.tilts == [0.0; 3] {
                let [lx, ly, lz] = b.lengths;
                let _ = write!(
                    out,
                    "ITEM: BOX BOUNDS {p0} {p1} {p2}\n0.0 {}\n0.0 {}\n0.0 {}\n",
                    R(lx),
                    R(ly),
                    R(lz)
                );
            } else {
                let _ = writeln!(out, "ITEM: BOX BOUNDS xy xz yz {p0} {p1} {p2}");
                out.push_str(&b.bounds_lines());
            }
        }
        _ => {
            // No cell: the atoms' bounding box, non-periodic.
            let mut lo = [0.0f64; 3];
            let mut hi = [0.0f64; 3];
            for (k, (l, h)) in lo.iter_mut().zip(hi.iter_mut()).enumerate() {
                let it = fr.positions.iter().map(|p| p[k]);
                *l = it.clone().fold(f64::INFINITY, f64::min);
                *h = it.fold(f64::NEG_INFINITY, f64::max);
                if n == 0 {
                    (*l, *h) = (0.0, 0.0);
                }
            }
            out.push_str("ITEM: BOX BOUNDS ff ff ff\n");
            for k in 0..3 {
                let _ = writeln!(out, "{} {}", R(lo[k]), R(hi[k]));
            }
        }
    }
    out.push_str("ITEM: ATOMS id type element xu yu zu");
    if fr.velocities.is_some() {
        out.push_str(" vx vy vz");
    }
    if fr.forces.is_some() {
        out.push_str(" fx fy fz");
    }
    out.push('\n');
    let rot = |v: Vec3| match &lbox {
        Some(b) => b.rotate(v),
        None => v,
    };
    for i in 0..n {
        let t = fr.types[i];
        let _ = write!(out, "{} {} {}", i + 1, t + 1, fr.type_names[t]);
        for x in rot(fr.positions[i]) {
            let _ = write!(out, " {}", R(x));
        }
        if let Some(v) = fr.velocities {
            // Å/fs → Å/ps (metal units).
            for vk in rot(v[i]) {
                let _ = write!(out, " {}", scaled(vk, 3));
            }
        }
        if let Some(f) = fr.forces {
            for fk in rot(f[i]) {
                let _ = write!(out, " {}", R(fk));
            }
        }
        out.push('\n');
    }
    out
}
