//! LAMMPS data files (`read_data`/`write_data`) in `metal` units, atom styles `atomic` and
//! `charge`.
//!
//! Reading:
//! - Header: `N atoms`, `M atom types`, `xlo xhi`, `ylo yhi`, `zlo zhi` (LAMMPS' default
//!   `-0.5 0.5` when absent) and optional `xy xz yz` tilts. Other LAMMPS header counts (bonds, …)
//!   are accepted and their sections skipped. General triclinic boxes (`avec`, …) are rejected.
//! - The cell is `a = (xhi−xlo, 0, 0)`, `b = (xy, yhi−ylo, 0)`, `c = (xz, yz, zhi−zlo)` and is
//!   always fully periodic: a data file does not record boundary conditions (those live in the
//!   input script), so set `cell.with_pbc(...)` yourself for slabs or wires.
//! - Positions keep LAMMPS' absolute coordinates; a non-zero `(xlo, ylo, zlo)` is kept in
//!   [`Frame::info`] as `lammps_origin` so writing restores the box. Image flags are applied:
//!   positions come back unwrapped.
//! - `Atoms` lines are `id type x y z [ix iy iz]` (`atomic`) or `id type q x y z [ix iy iz]`
//!   (`charge`). The style is the one passed in, else the `Atoms # style` comment, else guessed
//!   from the column count (5/8 atomic, 6/9 charge). Atoms are sorted by id; ids other than
//!   `1..=N` are kept in [`Frame::arrays`] as `id` (and written back from there, so keep them
//!   ascending if atom order matters).
//! - Type names come from `Atom Type Labels`, else a one-word comment on the `Masses` line
//!   (`1 1.008 # H`, as ASE and halomd write), else the element whose standard mass is within
//!   0.1 amu, else the type number (`"1"`, `"2"`, …).
//! - `Velocities` are Å/ps (`metal`) and become Å/fs by moving the decimal exponent, exactly.
//!
//! Writing emits the same layout (masses with `# name` comments, velocities in Å/ps). The cell
//! must be lower-triangular with positive diagonal for LAMMPS; any other cell is rotated into
//! that frame and **positions and velocities are rotated with it** (fractional coordinates are
//! unchanged). Only the system, `lammps_origin` and the `id` array are written; other info and
//! arrays have no place in a data file.

use halo_core::cell::{cross, det, dot, norm, vec_mat};
use halo_core::{elements, Cell, Mat3, System, Vec3};

use crate::text::{finite, finite3, fmt_scaled, parse_scaled, show, Exact, Lines};
use crate::{Column, ColumnData, Frame, IoError, Value, OUTPUT};

/// The `Atoms` section layouts supported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtomStyle {
    /// `id type x y z`.
    Atomic,
    /// `id type q x y z`.
    Charge,
}

impl AtomStyle {
    /// The LAMMPS name of the style.
    pub fn name(self) -> &'static str {
        match self {
            AtomStyle::Atomic => "atomic",
            AtomStyle::Charge => "charge",
        }
    }

    /// The column layout, for messages.
    fn layout(self) -> &'static str {
        match self {
            AtomStyle::Atomic => "5 or 8 columns (id type x y z [ix iy iz])",
            AtomStyle::Charge => "6 or 9 columns (id type q x y z [ix iy iz])",
        }
    }

    /// Columns before x, and the column count without image flags.
    fn shape(self) -> (usize, usize) {
        match self {
            AtomStyle::Atomic => (2, 5),
            AtomStyle::Charge => (3, 6),
        }
    }
}

/// LAMMPS velocities are Å/ps in `metal` units; halomd's are Å/fs (a factor 10³).
const PS_EXPONENT: i32 = 3;

/// Info key holding a non-zero `(xlo, ylo, zlo)`.
pub const ORIGIN_KEY: &str = "lammps_origin";

/// Every section keyword a LAMMPS data file may contain.
const SECTIONS: [&str; 30] = [
    "Atoms",
    "Velocities",
    "Masses",
    "Ellipsoids",
    "Lines",
    "Triangles",
    "Bodies",
    "Bonds",
    "Angles",
    "Dihedrals",
    "Impropers",
    "Pair Coeffs",
    "PairIJ Coeffs",
    "Bond Coeffs",
    "Angle Coeffs",
    "Dihedral Coeffs",
    "Improper Coeffs",
    "BondBond Coeffs",
    "BondAngle Coeffs",
    "MiddleBondTorsion Coeffs",
    "EndBondTorsion Coeffs",
    "AngleTorsion Coeffs",
    "AngleAngleTorsion Coeffs",
    "BondBond13 Coeffs",
    "AngleAngle Coeffs",
    "Atom Type Labels",
    "Bond Type Labels",
    "Angle Type Labels",
    "Dihedral Type Labels",
    "Improper Type Labels",
];

/// Header keywords that are valid LAMMPS but carry nothing halomd uses.
const IGNORED_HEADERS: [&str; 17] = [
    "bonds",
    "angles",
    "dihedrals",
    "impropers",
    "bond types",
    "angle types",
    "dihedral types",
    "improper types",
    "extra bond per atom",
    "extra angle per atom",
    "extra dihedral per atom",
    "extra improper per atom",
    "extra special per atom",
    "ellipsoids",
    "lines",
    "triangles",
    "bodies",
];

/// A non-blank line with its comment split off.
#[derive(Clone, Copy)]
struct Entry<'a> {
    no: usize,
    data: &'a str,
    comment: &'a str,
}

fn next_entry<'a>(lines: &mut Lines<'a>) -> Option<Entry<'a>> {
    while let Some((no, line)) = lines.next_line() {
        let (data, comment) = line.split_once('#').unwrap_or((line, ""));
        if !data.trim().is_empty() {
            return Some(Entry {
                no,
                data: data.trim(),
                comment: comment.trim(),
            });
        }
    }
    None
}

fn section_name(data: &str) -> Option<&'static str> {
    // Data lines start with a number; only keywords start with a letter.
    if !data.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    let words: Vec<&str> = data.split_whitespace().collect();
    SECTIONS
        .iter()
        .find(|s| s.split(' ').eq(words.iter().copied()))
        .copied()
}

/// One parsed `Atoms` line.
struct AtomLine {
    no: usize,
    id: i64,
    ty: usize,
    q: f64,
    x: Vec3,
    image: [i32; 3],
}

/// Reads a LAMMPS data file; `style: None` takes it from the `Atoms # style` comment or the
/// column count.
pub fn read_str(text: &str, name: &str, style: Option<AtomStyle>) -> Result<Frame, IoError> {
    let nlines = text.lines().count();
    let mut lines = Lines::new(text, name);
    lines.expect("the title line of a LAMMPS data file")?;

    let mut natoms = 0usize;
    let mut ntypes = 0usize;
    let mut bounds = [[-0.5, 0.5]; 3];
    let mut tilt = [0.0; 3];
    let mut box_line = None;
    let mut counts_line = 1;
    let mut section = None;
    while let Some(e) = next_entry(&mut lines) {
        if section_name(e.data).is_some() {
            section = Some(e);
            break;
        }
        let toks: Vec<&str> = e.data.split_whitespace().collect();
        let nvals = toks
            .iter()
            .position(|t| t.parse::<f64>().is_err())
            .unwrap_or(toks.len());
        let key = toks[nvals..].join(" ");
        let vals = &toks[..nvals];
        let want = |n: usize| {
            if vals.len() == n {
                Ok(())
            } else {
                Err(lines.err(
                    e.no,
                    format!("`{key}` needs {n} value(s), found {}", vals.len()),
                ))
            }
        };
        let count = |what: &str| {
            want(1)?;
            let n = vals[0].parse::<usize>().map_err(|_| {
                lines.err(
                    e.no,
                    format!("expected a count of {what}, found {}", show(vals[0])),
                )
            })?;
            // Counts size the sections below; more than the file has lines cannot be right.
            if n > nlines {
                return Err(lines.err(
                    e.no,
                    format!("{n} {what} declared, but the file has only {nlines} lines"),
                ));
            }
            Ok(n)
        };
        let reals = |n: usize| -> Result<Vec<f64>, IoError> {
            want(n)?;
            vals.iter()
                .map(|t| finite(t, &format!("`{key}`")).map_err(|m| lines.err(e.no, m)))
                .collect()
        };
        match key.as_str() {
            "atoms" => {
                natoms = count("atoms")?;
                counts_line = e.no;
            }
            "atom types" => ntypes = count("atom types")?,
            "xlo xhi" | "ylo yhi" | "zlo zhi" => {
                let v = reals(2)?;
                let axis = usize::from(key.as_bytes()[0] - b'x');
                bounds[axis] = [v[0], v[1]];
                box_line.get_or_insert(e.no);
            }
            "xy xz yz" => {
                let v = reals(3)?;
                tilt = [v[0], v[1], v[2]];
                box_line.get_or_insert(e.no);
            }
            "avec" | "bvec" | "cvec" | "abc origin" => {
                return Err(lines.err(
                    e.no,
                    "general triclinic boxes (avec/bvec/cvec) are not supported; \
                     write the data file with a restricted triclinic box",
                ))
            }
            k if IGNORED_HEADERS.contains(&k) => {}
            _ => {
                return Err(lines.err(
                    e.no,
                    format!(
                        "expected a header line such as `3 atoms` or `0.0 5.0 xlo xhi`, found {}",
                        show(e.data)
                    ),
                ))
            }
        }
    }

    let mut masses: Vec<Option<(f64, &str)>> = vec![None; ntypes];
    let mut labels: Vec<Option<String>> = vec![None; ntypes];
    let mut atoms: Option<(usize, AtomStyle, Vec<AtomLine>)> = None;
    let mut velocities: Option<Vec<(usize, i64, Vec3)>> = None;
    let mut seen: Vec<&str> = Vec::new();
    while let Some(head) = section {
        let name = section_name(head.data).unwrap_or("");
        if seen.contains(&name) {
            return Err(lines.err(head.no, format!("second `{name}` section")));
        }
        seen.push(name);
        let count = match name {
            "Masses" | "Atom Type Labels" => ntypes,
            "Atoms" | "Velocities" => natoms,
            _ => {
                // A section halomd does not use: skip to the next section keyword.
                section = None;
                while let Some(e) = next_entry(&mut lines) {
                    if section_name(e.data).is_some() {
                        section = Some(e);
                        break;
                    }
                }
                continue;
            }
        };
        let mut body = Vec::with_capacity(count);
        for k in 0..count {
            let what = || format!("line {} of {count} of the {name} section", k + 1);
            let e = next_entry(&mut lines).ok_or_else(|| lines.eof(&what()))?;
            if section_name(e.data).is_some() {
                return Err(lines.err(
                    e.no,
                    format!("expected {}, found the section {}", what(), show(e.data)),
                ));
            }
            body.push(e);
        }
        match name {
            "Masses" => {
                for e in body {
                    let toks: Vec<&str> = e.data.split_whitespace().collect();
                    if toks.len() != 2 {
                        return Err(lines.err(
                            e.no,
                            format!("expected 2 columns (type mass), found {}", toks.len()),
                        ));
                    }
                    let t = type_index(toks[0], ntypes, &labels).map_err(|m| lines.err(e.no, m))?;
                    let m = finite(toks[1], "the mass").map_err(|m| lines.err(e.no, m))?;
                    if m <= 0.0 {
                        return Err(
                            lines.err(e.no, format!("mass {} must be positive", show(toks[1])))
                        );
                    }
                    if masses[t].replace((m, e.comment)).is_some() {
                        return Err(lines.err(e.no, format!("second mass for type {}", t + 1)));
                    }
                }
            }
            "Atom Type Labels" => {
                for e in body {
                    let toks: Vec<&str> = e.data.split_whitespace().collect();
                    let t = match toks[..] {
                        [t, _] => t.parse::<usize>().ok().filter(|t| (1..=ntypes).contains(t)),
                        _ => None,
                    };
                    match t {
                        Some(t) => labels[t - 1] = Some(toks[1].to_string()),
                        None => {
                            return Err(lines.err(
                                e.no,
                                format!(
                                    "expected `type label` with type in 1..={ntypes}, found {}",
                                    show(e.data)
                                ),
                            ))
                        }
                    }
                }
            }
            "Atoms" => {
                let commented =
                    style_from_comment(head.comment).map_err(|m| lines.err(head.no, m))?;
                let style = match (style.or(commented), body.first()) {
                    (Some(s), _) => s,
                    (None, Some(e)) => guess_style(e).map_err(|m| lines.err(e.no, m))?,
                    (None, None) => AtomStyle::Atomic,
                };
                let parsed = body
                    .iter()
                    .map(|e| parse_atom(e, style, ntypes, &labels).map_err(|m| lines.err(e.no, m)))
                    .collect::<Result<Vec<_>, _>>()?;
                atoms = Some((head.no, style, parsed));
            }
            _ => {
                let parsed = body
                    .iter()
                    .map(|e| {
                        let toks: Vec<&str> = e.data.split_whitespace().collect();
                        if toks.len() != 4 {
                            return Err(lines.err(
                                e.no,
                                format!("expected 4 columns (id vx vy vz), found {}", toks.len()),
                            ));
                        }
                        let id = toks[0].parse::<i64>().map_err(|_| {
                            lines.err(
                                e.no,
                                format!("expected an atom id, found {}", show(toks[0])),
                            )
                        })?;
                        let mut v = [0.0; 3];
                        for (vk, tok) in v.iter_mut().zip(&toks[1..]) {
                            *vk = parse_scaled(tok, -PS_EXPONENT, "the velocity")
                                .map_err(|m| lines.err(e.no, m))?;
                        }
                        Ok((e.no, id, v))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                velocities = Some(parsed);
            }
        }
        section = match next_entry(&mut lines) {
            Some(e) if section_name(e.data).is_some() => Some(e),
            Some(e) => {
                return Err(lines.err(
                    e.no,
                    format!(
                        "expected a section keyword such as `Velocities`, found {}; \
                         does the header declare the right number of atoms/types?",
                        show(e.data)
                    ),
                ))
            }
            None => None,
        };
    }

    let (atoms_line, style, mut atoms) = match atoms {
        Some(a) => a,
        None if natoms == 0 => (counts_line, AtomStyle::Atomic, Vec::new()),
        None => return Err(lines.eof(&format!("an Atoms section with {natoms} atoms"))),
    };
    atoms.sort_by_key(|a| a.id);
    if let Some(w) = atoms.windows(2).find(|w| w[0].id == w[1].id) {
        return Err(lines.err(w[1].no, format!("atom id {} appears twice", w[1].id)));
    }

    let h = [
        [bounds[0][1] - bounds[0][0], 0.0, 0.0],
        [tilt[0], bounds[1][1] - bounds[1][0], 0.0],
        [tilt[1], tilt[2], bounds[2][1] - bounds[2][0]],
    ];
    let cell =
        Cell::periodic(h).map_err(|e| lines.err(box_line.unwrap_or(1), format!("bad box: {e}")))?;

    // Per-type names and masses.
    let mut type_names = Vec::with_capacity(ntypes);
    let mut type_masses = Vec::with_capacity(ntypes);
    for t in 0..ntypes {
        let mass = masses[t].map(|(m, _)| m);
        let comment = masses[t].map(|(_, c)| c).unwrap_or("");
        let name = labels[t]
            .clone()
            .or_else(|| {
                let mut words = comment.split_whitespace();
                match (words.next(), words.next()) {
                    (Some(w), None) => Some(w.to_string()),
                    _ => None,
                }
            })
            .or_else(|| {
                mass.and_then(|m| elements::symbol_from_mass(m, 0.1))
                    .map(str::to_string)
            })
            .unwrap_or_else(|| (t + 1).to_string());
        type_masses.push(mass.or_else(|| elements::mass_of(&name)));
        type_names.push(name);
    }
    let mut system = System {
        positions: Vec::with_capacity(atoms.len()),
        types: Vec::with_capacity(atoms.len()),
        type_names,
        masses: Vec::with_capacity(atoms.len()),
        velocities: None,
        charges: None,
        cell: Some(cell),
    };
    let mut charges = Vec::with_capacity(atoms.len());
    for a in &atoms {
        let mass = type_masses[a.ty].ok_or_else(|| {
            lines.err(
                atoms_line,
                format!("atom type {} has no entry in a Masses section", a.ty + 1),
            )
        })?;
        let x = if a.image == [0; 3] {
            a.x
        } else {
            let s = cell.shift(a.image);
            [a.x[0] + s[0], a.x[1] + s[1], a.x[2] + s[2]]
        };
        system.positions.push(x);
        system.types.push(a.ty);
        system.masses.push(mass);
        charges.push(a.q);
    }
    if style == AtomStyle::Charge {
        system.charges = Some(charges);
    }
    if let Some(vel) = velocities {
        let mut v: Vec<Option<Vec3>> = vec![None; atoms.len()];
        for (no, id, vi) in vel {
            let i = atoms.binary_search_by_key(&id, |a| a.id).map_err(|_| {
                lines.err(
                    no,
                    format!("velocity for atom id {id}, which is not in Atoms"),
                )
            })?;
            if v[i].replace(vi).is_some() {
                return Err(lines.err(no, format!("second velocity for atom id {id}")));
            }
        }
        // Every id was found and none twice, and there are as many lines as atoms.
        system.velocities = Some(v.into_iter().map(|x| x.unwrap_or([0.0; 3])).collect());
    }
    system
        .validate()
        .map_err(|e| lines.err(atoms_line, e.to_string()))?;

    let mut frame = Frame::new(system);
    let origin = [bounds[0][0], bounds[1][0], bounds[2][0]];
    if origin != [0.0; 3] {
        frame.set_info(ORIGIN_KEY, Value::Floats(origin.to_vec()));
    }
    if atoms.iter().zip(1..).any(|(a, k)| a.id != k) {
        let ids = atoms.iter().map(|a| a.id).collect();
        frame.set_array(
            "id",
            Column {
                width: 1,
                data: ColumnData::Int(ids),
            },
        );
    }
    Ok(frame)
}

/// The style named by an `Atoms # style` comment, if the comment is a single word.
fn style_from_comment(comment: &str) -> Result<Option<AtomStyle>, String> {
    let mut words = comment.split_whitespace();
    match (words.next(), words.next()) {
        (Some("atomic"), None) => Ok(Some(AtomStyle::Atomic)),
        (Some("charge"), None) => Ok(Some(AtomStyle::Charge)),
        (Some(other), None) => Err(format!(
            "atom style {} is not supported (use atomic or charge)",
            show(other)
        )),
        _ => Ok(None),
    }
}

/// Zero-based type index of a numeric type or a type label.
fn type_index(tok: &str, ntypes: usize, labels: &[Option<String>]) -> Result<usize, String> {
    if let Ok(t) = tok.parse::<usize>() {
        if (1..=ntypes).contains(&t) {
            return Ok(t - 1);
        }
    } else if let Some(t) = labels.iter().position(|l| l.as_deref() == Some(tok)) {
        return Ok(t);
    }
    Err(format!(
        "expected an atom type in 1..={ntypes}, found {}",
        show(tok)
    ))
}

/// The style implied by the column count of the first `Atoms` line.
fn guess_style(e: &Entry) -> Result<AtomStyle, String> {
    match e.data.split_whitespace().count() {
        5 | 8 => Ok(AtomStyle::Atomic),
        6 | 9 => Ok(AtomStyle::Charge),
        n => Err(format!(
            "cannot tell the atom style from {n} columns; \
             expected 5/8 (atomic) or 6/9 (charge), or write `Atoms # atomic`"
        )),
    }
}

fn parse_atom(
    e: &Entry,
    style: AtomStyle,
    ntypes: usize,
    labels: &[Option<String>],
) -> Result<AtomLine, String> {
    let toks: Vec<&str> = e.data.split_whitespace().collect();
    let (xcol, ncols) = style.shape();
    if toks.len() != ncols && toks.len() != ncols + 3 {
        return Err(format!(
            "expected {} for atom style {}, found {}",
            style.layout(),
            style.name(),
            toks.len()
        ));
    }
    let id = match toks[0].parse::<i64>() {
        Ok(id) if id > 0 => id,
        _ => {
            return Err(format!(
                "expected a positive atom id, found {}",
                show(toks[0])
            ))
        }
    };
    let ty = type_index(toks[1], ntypes, labels)?;
    let q = match style {
        AtomStyle::Charge => finite(toks[2], "the charge")?,
        AtomStyle::Atomic => f64::NAN,
    };
    let x = finite3(&toks[xcol..xcol + 3], "the position")?;
    let mut image = [0; 3];
    if toks.len() == ncols + 3 {
        for (n, tok) in image.iter_mut().zip(&toks[ncols..]) {
            *n = tok
                .parse::<i32>()
                .map_err(|_| format!("expected an integer image flag, found {}", show(tok)))?;
        }
    }
    Ok(AtomLine {
        no: e.no,
        id,
        ty,
        q,
        x,
        image,
    })
}

/// Formats one frame as a LAMMPS data file; `style: None` writes `charge` when the system has
/// charges and `atomic` otherwise.
pub fn write_string(frame: &Frame, style: Option<AtomStyle>) -> Result<String, IoError> {
    write_data(frame, style).map_err(|m| IoError::new(OUTPUT, m))
}

fn write_data(frame: &Frame, style: Option<AtomStyle>) -> Result<String, String> {
    use std::fmt::Write as _;
    let sys = &frame.system;
    sys.validate().map_err(|e| e.to_string())?;
    let cell = sys
        .cell
        .ok_or("LAMMPS data files need a cell; this system has none")?;
    let style = style.unwrap_or(if sys.charges.is_some() {
        AtomStyle::Charge
    } else {
        AtomStyle::Atomic
    });
    let n = sys.len();

    let mut type_masses: Vec<Option<f64>> = vec![None; sys.type_names.len()];
    for (i, (&t, &m)) in sys.types.iter().zip(&sys.masses).enumerate() {
        match type_masses[t] {
            Some(prev) if prev.to_bits() != m.to_bits() => {
                return Err(format!(
                    "atom {i} of type `{}` has mass {m}, another has {prev}; \
                     LAMMPS data files hold one mass per type",
                    sys.type_names[t]
                ))
            }
            _ => type_masses[t] = Some(m),
        }
    }
    for (name, m) in sys.type_names.iter().zip(&mut type_masses) {
        if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c == '#') {
            return Err(format!(
                "type name {} cannot be written as a comment word",
                show(name)
            ));
        }
        if m.is_none() {
            *m = elements::mass_of(name);
        }
        if m.is_none() {
            return Err(format!(
                "type `{name}` has no atoms and no standard mass to write"
            ));
        }
    }

    let origin = match frame.info(ORIGIN_KEY) {
        None => [0.0; 3],
        Some(Value::Floats(o)) if o.len() == 3 && o.iter().all(|x| x.is_finite()) => {
            [o[0], o[1], o[2]]
        }
        Some(_) => return Err(format!("info `{ORIGIN_KEY}` must be three finite reals")),
    };
    let ids = atom_ids(frame, n)?;

    let (h, rot) = lammps_frame(cell.matrix());
    let rotate = |x: Vec3| rot.as_ref().map_or(x, |r| vec_mat(x, r));

    let mut out = String::new();
    let _ = writeln!(
        out,
        "LAMMPS data file written by halomd (units metal, atom_style {})\n",
        style.name()
    );
    let _ = writeln!(out, "{n} atoms\n{} atom types\n", sys.type_names.len());
    for (axis, label) in ["xlo xhi", "ylo yhi", "zlo zhi"].iter().enumerate() {
        let lo = origin[axis];
        let _ = writeln!(out, "{} {} {label}", Exact(lo), Exact(lo + h[axis][axis]));
    }
    let tilt = [h[1][0], h[2][0], h[2][1]];
    if tilt.iter().any(|t| t.to_bits() != 0) {
        let _ = writeln!(
            out,
            "{} {} {} xy xz yz",
            Exact(tilt[0]),
            Exact(tilt[1]),
            Exact(tilt[2])
        );
    }
    out.push_str("\nMasses\n\n");
    for (t, (name, m)) in sys.type_names.iter().zip(&type_masses).enumerate() {
        let _ = writeln!(out, "{} {} # {name}", t + 1, Exact(m.unwrap_or(1.0)));
    }
    let _ = writeln!(out, "\nAtoms # {}\n", style.name());
    for i in 0..n {
        let _ = write!(out, "{} {}", ids[i], sys.types[i] + 1);
        if style == AtomStyle::Charge {
            let q = sys.charges.as_ref().map_or(0.0, |q| q[i]);
            let _ = write!(out, " {}", Exact(q));
        }
        let x = rotate(sys.positions[i]);
        let _ = writeln!(out, " {} {} {}", Exact(x[0]), Exact(x[1]), Exact(x[2]));
    }
    if let Some(v) = &sys.velocities {
        out.push_str("\nVelocities\n\n");
        for i in 0..n {
            let v = rotate(v[i]).map(|vk| fmt_scaled(vk, PS_EXPONENT));
            let _ = writeln!(out, "{} {} {} {}", ids[i], v[0], v[1], v[2]);
        }
    }
    Ok(out)
}

/// Atom ids from the `id` array (as a LAMMPS read stores them), else `1..=n`.
fn atom_ids(frame: &Frame, n: usize) -> Result<Vec<i64>, String> {
    let Some(col) = frame.array("id") else {
        return Ok((1..).take(n).collect());
    };
    if let (1, ColumnData::Int(ids)) = (col.width, &col.data) {
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if ids.len() == n && sorted.len() == n && sorted.first().is_none_or(|&id| id > 0) {
            return Ok(ids.clone());
        }
    }
    Err("array `id` must hold one distinct positive integer per atom".into())
}

/// The LAMMPS (lower-triangular, positive-diagonal) form of `h`, and the rotation taking
/// Cartesian vectors into it (`None` when `h` already has that form, so nothing is touched).
fn lammps_frame(h: &Mat3) -> (Mat3, Option<Mat3>) {
    let [a, b, c] = *h;
    if a[1] == 0.0 && a[2] == 0.0 && b[2] == 0.0 && a[0] > 0.0 && b[1] > 0.0 && c[2] > 0.0 {
        return (*h, None);
    }
    let ax = norm(a);
    let ahat = a.map(|x| x / ax);
    let bx = dot(b, ahat);
    let by = norm(cross(a, b)) / ax;
    let cx = dot(c, ahat);
    let cy = (dot(b, c) - bx * cx) / by;
    let cz = det(h) / (ax * by);
    let lower = [[ax, 0.0, 0.0], [bx, by, 0.0], [cx, cy, cz]];
    // x' = s·H' = x·H⁻¹·H', so the rotation is H⁻¹·H'.
    let inv = Cell::periodic(*h)
        .map(|c| *c.inverse())
        .unwrap_or([[0.0; 3]; 3]);
    let mut rot = [[0.0; 3]; 3];
    for (i, row) in rot.iter_mut().enumerate() {
        *row = vec_mat(inv[i], &lower);
    }
    (lower, Some(rot))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_gives_lower_triangular_frame() {
        let h = [[3.0, 1.0, 0.5], [0.2, 4.0, -0.3], [0.4, 0.7, 5.0]];
        let (l, rot) = lammps_frame(&h);
        let rot = rot.unwrap();
        assert_eq!([l[0][1], l[0][2], l[1][2]], [0.0; 3]);
        for k in 0..3 {
            let r = vec_mat(h[k], &rot);
            for j in 0..3 {
                assert!((r[j] - l[k][j]).abs() < 1e-12, "{r:?} vs {:?}", l[k]);
            }
            assert!((norm(h[k]) - norm(l[k])).abs() < 1e-12);
        }
        assert!((det(&h) - det(&l)).abs() < 1e-10);
        let lower = [[3.0, 0.0, 0.0], [1.0, 4.0, 0.0], [0.5, -0.3, 5.0]];
        assert!(lammps_frame(&lower).1.is_none());
    }

    #[test]
    fn styles_from_comments() {
        assert_eq!(style_from_comment("atomic"), Ok(Some(AtomStyle::Atomic)));
        assert_eq!(style_from_comment(" charge "), Ok(Some(AtomStyle::Charge)));
        assert_eq!(style_from_comment(""), Ok(None));
        assert_eq!(style_from_comment("written by me"), Ok(None));
        assert!(style_from_comment("full").unwrap_err().contains("full"));
    }

    #[test]
    fn section_names_ignore_spacing() {
        assert_eq!(section_name("Atom   Type Labels"), Some("Atom Type Labels"));
        assert_eq!(section_name("Atoms"), Some("Atoms"));
        assert_eq!(section_name("Atomsx"), None);
    }
}
