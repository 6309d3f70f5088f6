//! VASP POSCAR/CONTCAR files.
//!
//! Reading accepts what VASP accepts:
//! - a comment line; a scaling factor (one number; negative means "scale to this volume"; or three
//!   positive per-axis factors); three lattice vectors;
//! - a VASP 5 species line (POTCAR labels such as `Fe_pv` or `Na_pv/6a2f546d` become `Fe`,
//!   `Na`), or, VASP 4 style, species taken from the leading words of the comment line;
//! - atom counts, an optional `Selective dynamics` line, then `Direct` or `Cartesian` (only the
//!   first letter counts: `C`/`K` is Cartesian, any other letter direct) and the coordinates;
//! - optionally, after a blank or `Cartesian` line, Cartesian velocities in Å/fs (a CONTCAR's
//!   lattice-velocity block is skipped, and a predictor-corrector block after the velocities is
//!   ignored).
//!
//! POSCAR files are always fully periodic. Types are numbered by first appearance of each
//! species name and masses are standard. Selective-dynamics flags are kept in
//! [`Frame::arrays`] as `move_mask` (`L:3`, true = free to move, the same convention as ASE's
//! extxyz `move_mask`), so they survive conversion to extxyz and back.
//!
//! Writing uses scale `1.0` and Cartesian coordinates at full precision, so positions and cell
//! read back bit for bit. Atom order is kept: each run of consecutive atoms of one species is a
//! block, so interleaved species give repeated names (`H O H` / `1 1 1`), as ASE does by
//! default — sort the atoms first if your POTCAR lists each element once. A cell with
//! non-periodic axes is written anyway (VASP has no such notion) and reads back fully periodic;
//! masses are not stored, so they read back as standard masses.

use halo_core::cell::det;
use halo_core::{elements, Cell, System, Vec3};

use crate::text::{finite3, show, Exact, Lines};
use crate::{Column, ColumnData, Frame, IoError, OUTPUT};

/// Array name for selective-dynamics flags (true = the coordinate may move).
pub const MOVE_MASK: &str = "move_mask";

/// How the scaling line scales the lattice and Cartesian coordinates.
enum Scale {
    Uniform(f64),
    PerAxis([f64; 3]),
}

impl Scale {
    fn apply(&self, x: Vec3) -> Vec3 {
        match *self {
            Scale::Uniform(s) => x.map(|v| v * s),
            Scale::PerAxis(s) => [x[0] * s[0], x[1] * s[1], x[2] * s[2]],
        }
    }
}

/// Reads a POSCAR/CONTCAR text; `name` stands for the file in errors.
pub fn read_str(text: &str, name: &str) -> Result<Frame, IoError> {
    let nlines = text.lines().count();
    let mut lines = Lines::new(text, name);
    let (_, comment) = lines.expect("the comment line")?;

    let (sno, sline) = lines.expect("the scaling factor line")?;
    let nums: Vec<f64> = sline
        .split_whitespace()
        .map_while(|t| t.parse::<f64>().ok())
        .collect();
    let bad_scale = |msg: &str| lines.err(sno, format!("{msg}, found {}", show(sline.trim())));
    if nums.is_empty() || nums.iter().any(|x| !x.is_finite()) {
        return Err(bad_scale("expected a finite scaling factor"));
    }
    let per_axis = nums.len() >= 3;
    if (per_axis && nums[..3].iter().any(|&s| s <= 0.0)) || nums[0] == 0.0 {
        return Err(bad_scale(
            "expected one non-zero scaling factor or three positive ones",
        ));
    }

    let lattice_line = sno + 1;
    let mut raw = [[0.0; 3]; 3];
    for (k, row) in raw.iter_mut().enumerate() {
        let what = format!("lattice vector {}", ["a", "b", "c"][k]);
        let (no, line) = lines.expect(&what)?;
        let toks: Vec<&str> = line.split_whitespace().collect();
        if toks.len() < 3 {
            return Err(lines.err(
                no,
                format!("expected 3 numbers ({what}), found {} columns", toks.len()),
            ));
        }
        *row = finite3(&toks, &what).map_err(|m| lines.err(no, m))?;
    }
    let scale = if per_axis {
        Scale::PerAxis([nums[0], nums[1], nums[2]])
    } else if nums[0] < 0.0 {
        let volume = det(&raw);
        if volume <= 0.0 {
            return Err(lines.err(
                lattice_line,
                format!(
                    "cannot scale to volume {}: the lattice volume is {volume:e}",
                    -nums[0]
                ),
            ));
        }
        Scale::Uniform((-nums[0] / volume).cbrt())
    } else {
        Scale::Uniform(nums[0])
    };
    let h = raw.map(|row| scale.apply(row));
    let cell = Cell::periodic(h).map_err(|e| {
        lines.err(
            lattice_line,
            format!(
                "bad lattice (lines {lattice_line}-{}): {e}",
                lattice_line + 2
            ),
        )
    })?;

    // VASP 5 has a species line before the counts; VASP 4 goes straight to the counts.
    let (no, line) = lines.expect("a species line or the atom counts")?;
    let first = line.split_whitespace().next().unwrap_or("");
    let (species_src, counts_no, counts_line) = if first.parse::<usize>().is_ok() {
        (None, no, line)
    } else if first.is_empty() {
        return Err(lines.err(
            no,
            "expected species names or atom counts, found an empty line",
        ));
    } else {
        let (cno, cline) = lines.expect("the atom counts")?;
        (Some((no, line)), cno, cline)
    };
    let counts: Vec<usize> = counts_line
        .split_whitespace()
        .map_while(|t| t.parse::<usize>().ok())
        .collect();
    if counts.is_empty() {
        return Err(lines.err(
            counts_no,
            format!(
                "expected atom counts per species, found {}",
                show(counts_line.trim())
            ),
        ));
    }
    let species: Vec<String> = match species_src {
        Some((sno, sline)) => {
            let names: Vec<&str> = sline.split_whitespace().collect();
            if names.len() != counts.len() {
                return Err(lines.err(
                    counts_no,
                    format!(
                        "{} counts for {} species names on line {sno}",
                        counts.len(),
                        names.len()
                    ),
                ));
            }
            names
                .iter()
                .map(|n| {
                    element(n).ok_or_else(|| {
                        lines.err(sno, format!("{} is not a chemical element", show(n)))
                    })
                })
                .collect::<Result<_, _>>()?
        }
        None => {
            let names: Option<Vec<String>> = comment
                .split_whitespace()
                .take(counts.len())
                .map(element)
                .collect();
            match names {
                Some(n) if n.len() == counts.len() => n,
                _ => {
                    return Err(lines.err(
                        counts_no,
                        format!(
                            "no species line (VASP 4 format) and the comment line does not start \
                             with {} element symbols; add a species line above the counts",
                            counts.len()
                        ),
                    ))
                }
            }
        }
    };
    let natoms = counts
        .iter()
        .try_fold(0usize, |acc, &c| acc.checked_add(c))
        .filter(|&n| n <= nlines)
        .ok_or_else(|| {
            lines.err(
                counts_no,
                "the atom counts add up to more atoms than the file has lines",
            )
        })?;

    let (mut no, mut line) = lines.expect("`Selective dynamics`, `Direct` or `Cartesian`")?;
    let selective = line.trim_start().starts_with(['s', 'S']);
    if selective {
        (no, line) = lines.expect("`Direct` or `Cartesian`")?;
    }
    let cartesian = match line.trim_start().chars().next() {
        Some('c' | 'C' | 'k' | 'K') => true,
        Some(c) if c.is_alphabetic() => false,
        _ => {
            return Err(lines.err(
                no,
                format!(
                    "expected `Direct` or `Cartesian`, found {}",
                    show(line.trim())
                ),
            ))
        }
    };

    let mut positions = Vec::with_capacity(natoms);
    let mut mask = Vec::new();
    let ncols = if selective { 6 } else { 3 };
    let layout = if selective {
        "x y z and 3 T/F flags"
    } else {
        "x y z"
    };
    for k in 0..natoms {
        let Some((no, line)) = lines.next_line() else {
            return Err(lines.eof(&format!("coordinates of atom {} of {natoms}", k + 1)));
        };
        let toks: Vec<&str> = line.split_whitespace().collect();
        if toks.len() < ncols {
            return Err(lines.err(
                no,
                format!("expected {ncols} columns ({layout}), found {}", toks.len()),
            ));
        }
        let x = finite3(&toks, "the coordinate").map_err(|m| lines.err(no, m))?;
        positions.push(if cartesian {
            scale.apply(x)
        } else {
            cell.to_cart(x)
        });
        if selective {
            for tok in &toks[3..6] {
                mask.push(match *tok {
                    "T" | "t" => true,
                    "F" | "f" => false,
                    _ => {
                        return Err(lines.err(
                            no,
                            format!(
                                "expected a selective-dynamics flag T or F, found {}",
                                show(tok)
                            ),
                        ))
                    }
                });
            }
        }
    }
    let velocities = read_velocities(&mut lines, natoms)?;

    let mut type_names: Vec<String> = Vec::new();
    let mut types = Vec::with_capacity(natoms);
    let mut masses = Vec::with_capacity(natoms);
    for (name, &count) in species.iter().zip(&counts) {
        let t = match type_names.iter().position(|n| n == name) {
            Some(t) => t,
            None => {
                type_names.push(name.clone());
                type_names.len() - 1
            }
        };
        types.extend(std::iter::repeat_n(t, count));
        masses.extend(std::iter::repeat_n(
            elements::mass_of(name).unwrap_or(1.0),
            count,
        ));
    }
    let system = System {
        positions,
        types,
        type_names,
        masses,
        velocities,
        charges: None,
        cell: Some(cell),
    };
    system
        .validate()
        .map_err(|e| lines.err(counts_no, e.to_string()))?;
    let mut frame = Frame::new(system);
    if selective {
        frame.set_array(
            MOVE_MASK,
            Column {
                width: 3,
                data: ColumnData::Bool(mask),
            },
        );
    }
    Ok(frame)
}

/// The element symbol of a species word: `Fe`, `Fe_pv` and `Fe_pv/6a2f` all give `Fe`.
fn element(word: &str) -> Option<String> {
    let sym = word.split(['/', '_']).next()?;
    elements::mass_of(sym).map(|_| sym.to_string())
}

/// The optional velocity block after the coordinates (Cartesian, Å/fs).
fn read_velocities(lines: &mut Lines, natoms: usize) -> Result<Option<Vec<Vec3>>, IoError> {
    let Some((mut no, mut line)) = lines.next_line() else {
        return Ok(None);
    };
    if line.trim_start().starts_with(['l', 'L']) {
        // CONTCAR lattice velocities: an init line, 3 velocities, 3 vectors.
        for _ in 0..7 {
            if lines.next_line().is_none() {
                return Ok(None);
            }
        }
        match lines.next_line() {
            Some(l) => (no, line) = l,
            None => return Ok(None),
        }
    }
    match line.trim_start().chars().next() {
        None | Some('c' | 'C' | 'k' | 'K') => {}
        Some('d' | 'D') => {
            return Err(lines.err(
                no,
                "velocities in direct coordinates (lattice vectors per time step) are not \
                 supported; give them as Cartesian Å/fs",
            ))
        }
        Some(_) => {
            return Err(lines.err(
                no,
                format!(
                    "expected a blank line, `Cartesian` or the end of the file after the \
                     {natoms} coordinates (do the counts match the coordinate lines?), found {}",
                    show(line.trim())
                ),
            ))
        }
    }
    // A line with fewer than three words starts CONTCAR's predictor-corrector block, not velocities.
    let Some((no, line)) = lines.next_line() else {
        return Ok(None);
    };
    if line.split_whitespace().count() < 3 {
        return Ok(None);
    }
    let mut v = Vec::with_capacity(natoms);
    let mut current = Some((no, line));
    for k in 0..natoms {
        let (no, line) = match current.take() {
            Some(l) => l,
            None => match lines.next_line() {
                Some(l) => l,
                None => return Err(lines.eof(&format!("velocity of atom {} of {natoms}", k + 1))),
            },
        };
        let toks: Vec<&str> = line.split_whitespace().collect();
        if toks.len() != 3 {
            return Err(lines.err(
                no,
                format!(
                    "expected 3 columns (vx vy vz in Å/fs), found {}",
                    toks.len()
                ),
            ));
        }
        v.push(finite3(&toks, "the velocity").map_err(|m| lines.err(no, m))?);
    }
    Ok(Some(v))
}

/// Formats one frame as a POSCAR (scale 1, Cartesian, full precision).
pub fn write_string(frame: &Frame) -> Result<String, IoError> {
    write_poscar(frame).map_err(|m| IoError::new(OUTPUT, m))
}

fn write_poscar(frame: &Frame) -> Result<String, String> {
    use std::fmt::Write as _;
    let sys = &frame.system;
    sys.validate().map_err(|e| e.to_string())?;
    let cell = sys
        .cell
        .ok_or("POSCAR files need a cell; this system has none")?;
    let n = sys.len();
    if n == 0 {
        return Err("POSCAR files need at least one atom".into());
    }
    let mut runs: Vec<(&str, usize)> = Vec::new();
    for i in 0..n {
        let name = sys.symbol(i);
        if elements::mass_of(name).is_none() {
            return Err(format!(
                "atom {i} has type name `{name}`, but POSCAR species must be chemical symbols"
            ));
        }
        match runs.last_mut() {
            Some((last, count)) if *last == name => *count += 1,
            _ => runs.push((name, 1)),
        }
    }
    let mask: Option<Vec<[bool; 3]>> = match frame.array(MOVE_MASK) {
        None => None,
        Some(Column {
            width,
            data: ColumnData::Bool(m),
        }) if (*width == 1 || *width == 3) && m.len() == n * width => Some(
            m.chunks_exact(*width)
                .map(|r| {
                    if *width == 3 {
                        [r[0], r[1], r[2]]
                    } else {
                        [r[0]; 3]
                    }
                })
                .collect(),
        ),
        Some(_) => {
            return Err(format!(
                "array `{MOVE_MASK}` must hold 1 or 3 T/F flags per atom"
            ))
        }
    };

    let names: Vec<&str> = runs.iter().map(|r| r.0).collect();
    let counts: Vec<String> = runs.iter().map(|r| r.1.to_string()).collect();
    let mut out = String::new();
    let _ = writeln!(out, "{}\n1.0", names.join(" "));
    for row in cell.matrix() {
        let _ = writeln!(
            out,
            "  {} {} {}",
            Exact(row[0]),
            Exact(row[1]),
            Exact(row[2])
        );
    }
    let _ = writeln!(out, "{}\n{}", names.join(" "), counts.join(" "));
    if mask.is_some() {
        out.push_str("Selective dynamics\n");
    }
    out.push_str("Cartesian\n");
    let flag = |b: bool| if b { "T" } else { "F" };
    for (i, x) in sys.positions.iter().enumerate() {
        let _ = write!(out, "  {} {} {}", Exact(x[0]), Exact(x[1]), Exact(x[2]));
        if let Some(m) = &mask {
            let _ = write!(
                out,
                " {} {} {}",
                flag(m[i][0]),
                flag(m[i][1]),
                flag(m[i][2])
            );
        }
        out.push('\n');
    }
    if let Some(v) = &sys.velocities {
        out.push_str("Cartesian\n");
        for v in v {
            let _ = writeln!(out, "  {} {} {}", Exact(v[0]), Exact(v[1]), Exact(v[2]));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn species_words_reduce_to_elements() {
        assert_eq!(element("Fe").as_deref(), Some("Fe"));
        assert_eq!(element("Fe_pv").as_deref(), Some("Fe"));
        assert_eq!(element("Na_pv/6a2f546d").as_deref(), Some("Na"));
        assert_eq!(element("Xx"), None);
        assert_eq!(element(""), None);
    }
}
