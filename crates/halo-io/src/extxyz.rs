//! Extended XYZ in the dialect ASE reads and writes (`ase.io.write(..., format="extxyz")`).
//!
//! A frame is a count line, a comment line of `key=value` pairs and one line per atom:
//!
//! ```text
//! 2
//! Lattice="4.0 0.0 0.0 0.0 4.0 0.0 0.0 0.0 4.0" Properties=species:S:1:pos:R:3:forces:R:3 energy=-3.2 pbc="T T T"
//! H 0.0 0.0 0.0 0.1 0.0 0.0
//! O 1.0 0.0 0.0 -0.1 0.0 0.0
//! ```
//!
//! Reading follows ASE:
//! - `Lattice="ax ay az bx by bz cx cy cz"` gives the cell rows; `pbc` defaults to `T T T` when a
//!   lattice is given. Without `Lattice` there is no cell and every `pbc` flag must be `F`.
//! - `Properties` defaults to `species:S:1:pos:R:3`. Species are chemical symbols (ASE
//!   capitalises them: `SI` → `Si`), or atomic numbers in a `Z:I:1` column when there is no
//!   species column. Types are numbered in order of first appearance; masses are standard unless
//!   a `masses:R:1` column gives them.
//! - Velocities come from a `vel`, `velo` or `velocities` column (Å/fs), or from ASE's
//!   `momenta` column (amu·Å per ASE time unit), converted with `v = p / m · fs`. Charges come
//!   from ASE's `initial_charges:R:1` column.
//! - Every other column goes to [`Frame::arrays`] and every other comment-line value to
//!   [`Frame::info`], typed as ASE types them (see [`Value`]).
//!
//! Writing produces what `ase.io.read` reads back: velocities as `momenta`, charges as
//! `initial_charges`, a `masses` column only when some mass is not the element's standard mass,
//! then the frame's arrays and info in order. Reals are written with the shortest text that
//! parses back to the same bits; velocities pass through the momenta conversion and so come
//! back within 3 ulp per component.

use halo_core::{elements, Cell, System, Vec3};

use crate::text::{finite, show, Exact, Lines};
use crate::{Column, ColumnData, Frame, IoError, Value, OUTPUT};

/// ASE's unit of time is `1/ASE_FS` fs: `ase.units.fs` (CODATA 2014, as ASE defines it).
pub const ASE_FS: f64 = 0.09822694788464063;

/// Column names halomd maps onto [`System`] fields; an array of that name cannot be written.
const RESERVED_ARRAYS: [&str; 8] = [
    "species",
    "pos",
    "masses",
    "initial_charges",
    "momenta",
    "vel",
    "velo",
    "velocities",
];
/// Comment-line keys that describe the cell and columns rather than the frame.
const RESERVED_INFO: [&str; 3] = ["Lattice", "Properties", "pbc"];

/// Reads every frame of an extxyz text; `name` stands for the file in errors.
pub fn read_str(text: &str, name: &str) -> Result<Vec<Frame>, IoError> {
    let mut lines = Lines::new(text, name);
    let mut frames = Vec::new();
    while let Some((no, line)) = lines.next_line() {
        if line.trim().is_empty() {
            continue;
        }
        let natoms = line.trim().parse::<usize>().map_err(|_| {
            lines.err(
                no,
                format!(
                    "expected the number of atoms of a frame, found {}",
                    show(line.trim())
                ),
            )
        })?;
        frames.push(read_frame(&mut lines, natoms)?);
    }
    Ok(frames)
}

/// What a column means to halomd.
#[derive(Clone, Copy, PartialEq)]
enum Role {
    Species,
    Numbers,
    Pos,
    Masses,
    Charges,
    Vel,
    Momenta,
    Other,
}

/// One `name:TYPE:width` entry of `Properties`.
struct Prop {
    name: String,
    kind: char,
    width: usize,
    role: Role,
}

fn read_frame(lines: &mut Lines, natoms: usize) -> Result<Frame, IoError> {
    let what = format!("the comment line of a frame with {natoms} atoms");
    let (cno, comment) = lines.expect(&what)?;
    let name = lines.name;
    let at = |msg: String| IoError::at(name, cno, msg);

    let mut lattice = None;
    let mut pbc = None;
    let mut props_text = None;
    let mut info: Vec<(String, Value)> = Vec::new();
    for (key, raw) in parse_comment(comment).map_err(at)? {
        match key.as_str() {
            "Lattice" => lattice = Some(parse_lattice(&raw).map_err(at)?),
            "pbc" => pbc = Some(parse_pbc(&raw).map_err(at)?),
            "Properties" => props_text = Some(raw),
            _ => {
                let value = parse_value(&raw);
                match info.iter_mut().find(|(k, _)| *k == key) {
                    // ASE keeps the last of repeated keys.
                    Some(slot) => slot.1 = value,
                    None => info.push((key, value)),
                }
            }
        }
    }
    let props =
        parse_properties(props_text.as_deref().unwrap_or("species:S:1:pos:R:3")).map_err(at)?;
    let cell = match (lattice, pbc) {
        (Some(h), pbc) => Some(
            Cell::new(h, pbc.unwrap_or([true; 3])).map_err(|e| at(format!("bad Lattice: {e}")))?,
        ),
        (None, Some(p)) if p.iter().any(|&x| x) => {
            return Err(at(format!(
                "pbc=\"{}\" has periodic axes but there is no Lattice",
                fmt_bools(&p)
            )))
        }
        (None, _) => None,
    };

    let ncols = props
        .iter()
        .try_fold(0usize, |n, p| n.checked_add(p.width))
        .ok_or_else(|| at("Properties: column counts overflow".into()))?;
    let layout = props
        .iter()
        .map(|p| format!("{}:{}:{}", p.name, p.kind, p.width))
        .collect::<Vec<_>>()
        .join(" ");
    let mut data: Vec<ColumnData> = props
        .iter()
        // No reserving by the count line: the file may be arbitrary bytes.
        .map(|p| match p.kind {
            'R' => ColumnData::Real(Vec::new()),
            'I' => ColumnData::Int(Vec::new()),
            'L' => ColumnData::Bool(Vec::new()),
            _ => ColumnData::Str(Vec::new()),
        })
        .collect();
    for atom in 0..natoms {
        let Some((no, line)) = lines.next_line() else {
            return Err(lines.eof(&format!("atom line {} of {natoms} ({layout})", atom + 1)));
        };
        let toks: Vec<&str> = line.split_whitespace().collect();
        if toks.len() != ncols {
            return Err(lines.err(
                no,
                format!("expected {ncols} columns ({layout}), found {}", toks.len()),
            ));
        }
        let mut toks = toks.into_iter();
        for (p, col) in props.iter().zip(&mut data) {
            for tok in toks.by_ref().take(p.width) {
                parse_cell(p, tok, col).map_err(|m| lines.err(no, m))?;
            }
        }
    }

    build_frame(props, data, cell, info, natoms).map_err(at)
}

/// Parses one token of column `p` into `col`, checking what halomd needs of its role.
fn parse_cell(p: &Prop, tok: &str, col: &mut ColumnData) -> Result<(), String> {
    let bad = |what: &str| format!("column `{}`: expected {what}, found {}", p.name, show(tok));
    match col {
        ColumnData::Real(v) => {
            let x = tok.parse::<f64>().map_err(|_| bad("a real number"))?;
            if p.role != Role::Other && !x.is_finite() {
                return Err(bad("a finite number"));
            }
            if p.role == Role::Masses && x <= 0.0 {
                return Err(format!("mass {} must be positive", show(tok)));
            }
            v.push(x);
        }
        ColumnData::Int(v) => {
            let i = tok.parse::<i64>().map_err(|_| bad("an integer"))?;
            if p.role == Role::Numbers && elements::symbol_of(i.max(0) as usize).is_none() {
                return Err(format!("{} is not an atomic number", show(tok)));
            }
            v.push(i);
        }
        ColumnData::Bool(v) => v.push(parse_bool(tok).ok_or_else(|| bad("T or F"))?),
        ColumnData::Str(v) => {
            if p.role == Role::Species {
                let sym = capitalize(tok);
                if elements::mass_of(&sym).is_none() {
                    return Err(format!(
                        "unknown chemical symbol {} (expected an element such as `Si`)",
                        show(tok)
                    ));
                }
                v.push(sym);
            } else {
                v.push(tok.to_string());
            }
        }
    }
    Ok(())
}

/// Assembles the system from the parsed columns; leftover columns become arrays.
fn build_frame(
    props: Vec<Prop>,
    data: Vec<ColumnData>,
    cell: Option<Cell>,
    info: Vec<(String, Value)>,
    natoms: usize,
) -> Result<Frame, String> {
    let mut symbols: Vec<String> = Vec::new();
    let mut positions: Vec<Vec3> = Vec::new();
    let mut masses = None;
    let mut charges = None;
    let mut vel = None;
    let mut momenta = None;
    let mut arrays = Vec::new();
    for (p, col) in props.into_iter().zip(data) {
        match (p.role, col) {
            (Role::Species, ColumnData::Str(s)) => symbols = s,
            (Role::Numbers, ColumnData::Int(z)) => {
                symbols = z
                    .iter()
                    .map(|&z| elements::symbol_of(z as usize).unwrap_or("X").to_string())
                    .collect()
            }
            (Role::Pos, ColumnData::Real(x)) => positions = rows3(&x),
            (Role::Masses, ColumnData::Real(m)) => masses = Some(m),
            (Role::Charges, ColumnData::Real(q)) => charges = Some(q),
            (Role::Vel, ColumnData::Real(v)) => vel = Some(rows3(&v)),
            (Role::Momenta, ColumnData::Real(v)) => momenta = Some(rows3(&v)),
            (_, data) => arrays.push((
                p.name,
                Column {
                    width: p.width,
                    data,
                },
            )),
        }
    }
    let mut type_names: Vec<String> = Vec::new();
    let mut types = Vec::with_capacity(natoms);
    for sym in &symbols {
        let t = match type_names.iter().position(|n| n == sym) {
            Some(t) => t,
            None => {
                type_names.push(sym.clone());
                type_names.len() - 1
            }
        };
        types.push(t);
    }
    let masses = masses.unwrap_or_else(|| {
        symbols
            .iter()
            .map(|s| elements::mass_of(s).unwrap_or(f64::NAN))
            .collect()
    });
    let velocities = vel.or_else(|| {
        momenta.map(|p| {
            p.iter()
                .zip(&masses)
                .map(|(p, &m)| p.map(|pk| pk / m * ASE_FS))
                .collect()
        })
    });
    let system = System {
        positions,
        types,
        type_names,
        masses,
        velocities,
        charges,
        cell,
    };
    system.validate().map_err(|e| e.to_string())?;
    Ok(Frame {
        system,
        info,
        arrays,
    })
}

fn rows3(flat: &[f64]) -> Vec<Vec3> {
    flat.chunks_exact(3).map(|r| [r[0], r[1], r[2]]).collect()
}

/// ASE's `str.capitalize()` on a symbol: first letter upper, the rest lower.
fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first
            .to_uppercase()
            .chain(c.flat_map(char::to_lowercase))
            .collect(),
        None => String::new(),
    }
}

fn parse_bool(tok: &str) -> Option<bool> {
    match tok {
        "T" | "True" | "true" | "TRUE" => Some(true),
        "F" | "False" | "false" | "FALSE" => Some(false),
        _ => None,
    }
}

/// Splits a comment-line value the way ASE does before typing it: on whitespace and commas.
fn value_tokens(raw: &str) -> Vec<&str> {
    raw.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|t| !t.is_empty())
        .collect()
}

/// Types a comment-line value as ASE does: integers, else reals, else booleans, else text.
pub fn parse_value(raw: &str) -> Value {
    let toks = value_tokens(raw);
    if toks.is_empty() {
        return Value::Str(raw.to_string());
    }
    let one = toks.len() == 1;
    if let Some(v) = toks
        .iter()
        .map(|t| t.parse::<i64>().ok())
        .collect::<Option<Vec<_>>>()
    {
        return if one {
            Value::Int(v[0])
        } else {
            Value::Ints(v)
        };
    }
    if let Some(v) = toks
        .iter()
        .map(|t| t.parse::<f64>().ok())
        .collect::<Option<Vec<_>>>()
    {
        return if one {
            Value::Float(v[0])
        } else {
            Value::Floats(v)
        };
    }
    if let Some(v) = toks
        .iter()
        .map(|t| parse_bool(t))
        .collect::<Option<Vec<_>>>()
    {
        return if one {
            Value::Bool(v[0])
        } else {
            Value::Bools(v)
        };
    }
    Value::Str(raw.to_string())
}

fn parse_lattice(raw: &str) -> Result<[[f64; 3]; 3], String> {
    let toks = value_tokens(raw);
    if toks.len() != 9 {
        return Err(format!(
            "Lattice: expected 9 numbers (ax ay az bx by bz cx cy cz), found {} values",
            toks.len()
        ));
    }
    let mut h = [[0.0; 3]; 3];
    for (k, tok) in toks.iter().enumerate() {
        h[k / 3][k % 3] = finite(tok, "Lattice")?;
    }
    Ok(h)
}

fn parse_pbc(raw: &str) -> Result<[bool; 3], String> {
    let flags = value_tokens(raw)
        .iter()
        .map(|t| parse_bool(t))
        .collect::<Option<Vec<_>>>();
    match flags.as_deref() {
        Some(&[p]) => Ok([p; 3]),
        Some(&[a, b, c]) => Ok([a, b, c]),
        _ => Err(format!(
            "pbc: expected three flags such as \"T T F\", found {}",
            show(raw)
        )),
    }
}

fn parse_properties(text: &str) -> Result<Vec<Prop>, String> {
    let fields: Vec<&str> = text.split(':').collect();
    if !fields.len().is_multiple_of(3) {
        return Err(format!(
            "Properties: expected name:type:count triples, found {}",
            show(text)
        ));
    }
    let mut props: Vec<Prop> = Vec::new();
    for f in fields.chunks_exact(3) {
        let (name, kind, width) = (f[0], f[1], f[2]);
        let kind = match kind {
            "R" | "I" | "L" | "S" => kind.chars().next().unwrap_or('S'),
            _ => {
                return Err(format!(
                    "Properties: column `{name}` has type {}, expected R, I, L or S",
                    show(kind)
                ))
            }
        };
        let width = match width.parse::<usize>() {
            Ok(w) if w > 0 => w,
            _ => {
                return Err(format!(
                    "Properties: column `{name}` has count {}, expected a positive integer",
                    show(width)
                ))
            }
        };
        if name.is_empty() || props.iter().any(|p| p.name == name) {
            return Err(format!(
                "Properties: column name {} is empty or repeated",
                show(name)
            ));
        }
        props.push(Prop {
            name: name.to_string(),
            kind,
            width,
            role: Role::Other,
        });
    }
    assign_roles(&mut props)?;
    Ok(props)
}

/// Decides which columns feed the system, and checks their type and width.
fn assign_roles(props: &mut [Prop]) -> Result<(), String> {
    let has_species = props.iter().any(|p| p.name == "species");
    let mut velocity: Option<&str> = None;
    for p in props.iter_mut() {
        let (role, kind, width) = match p.name.as_str() {
            "species" => (Role::Species, 'S', 1),
            "Z" if !has_species => (Role::Numbers, 'I', 1),
            "pos" => (Role::Pos, 'R', 3),
            "masses" => (Role::Masses, 'R', 1),
            "initial_charges" => (Role::Charges, 'R', 1),
            "vel" | "velo" | "velocities" => (Role::Vel, 'R', 3),
            "momenta" => (Role::Momenta, 'R', 3),
            _ => continue,
        };
        if (p.kind, p.width) != (kind, width) {
            return Err(format!(
                "Properties: column `{}` must be {}:{kind}:{width}, found {}:{}:{}",
                p.name, p.name, p.name, p.kind, p.width
            ));
        }
        if matches!(role, Role::Vel | Role::Momenta) {
            if let Some(first) = velocity {
                return Err(format!(
                    "Properties: both `{first}` and `{}` give velocities; keep one",
                    p.name
                ));
            }
            velocity = Some(match role {
                Role::Vel => "vel",
                _ => "momenta",
            });
        }
        p.role = role;
    }
    if !props
        .iter()
        .any(|p| matches!(p.role, Role::Species | Role::Numbers))
    {
        return Err("Properties: no `species:S:1` (or `Z:I:1`) column".into());
    }
    if !props.iter().any(|p| p.role == Role::Pos) {
        return Err("Properties: no `pos:R:3` column".into());
    }
    Ok(())
}

/// Splits a comment line into keys and raw (unquoted, unescaped) values, as ASE's
/// `key_val_str_to_dict` does; a bare key means `T`.
fn parse_comment(line: &str) -> Result<Vec<(String, String)>, String> {
    // Each entry is a key followed by `=`-separated value parts.
    let mut pairs: Vec<Vec<String>> = Vec::new();
    let mut current: Vec<String> = vec![String::new()];
    // Whether the current part has begun (a quoted empty string counts as begun).
    let mut begun = false;
    let mut close: Option<char> = None;
    let mut escaped = false;
    for ch in line.trim().chars() {
        let part = current.last_mut().expect("current always has a part");
        if escaped {
            part.push(ch);
            escaped = false;
        } else if ch == '\\' {
            escaped = true;
            begun = true;
        } else if let Some(c) = close {
            if ch == c {
                close = None;
            } else {
                part.push(ch);
            }
        } else if let Some(c) = closing_delimiter(ch) {
            close = Some(c);
            begun = true;
        } else if ch.is_whitespace() {
            if begun {
                pairs.push(std::mem::replace(&mut current, vec![String::new()]));
                begun = false;
            }
        } else if ch == '=' {
            if !begun && current.len() == 1 {
                // `key = value`: the `=` continues the previous pair.
                match pairs.pop() {
                    Some(prev) => current = prev,
                    None => return Err("comment line: `=` without a key".into()),
                }
            }
            current.push(String::new());
            begun = false;
        } else {
            part.push(ch);
            begun = true;
        }
    }
    if let Some(c) = close {
        return Err(format!("comment line: unterminated quote, expected `{c}`"));
    }
    if begun || current.len() > 1 {
        pairs.push(current);
    }
    pairs
        .into_iter()
        .map(|mut parts| {
            let key = parts.remove(0);
            if key.is_empty() {
                return Err("comment line: empty key before `=`".to_string());
            }
            let value = if parts.is_empty() {
                "T".to_string()
            } else {
                parts.join("=")
            };
            Ok((key, value))
        })
        .collect()
}

fn closing_delimiter(open: char) -> Option<char> {
    match open {
        '"' => Some('"'),
        '\'' => Some('\''),
        '{' => Some('}'),
        '[' => Some(']'),
        _ => None,
    }
}

/// Formats frames as extxyz text.
pub fn write_string(frames: &[Frame]) -> Result<String, IoError> {
    let mut out = String::new();
    for (i, frame) in frames.iter().enumerate() {
        write_frame(&mut out, frame).map_err(|m| {
            let m = if frames.len() > 1 {
                format!("frame {i}: {m}")
            } else {
                m
            };
            IoError::new(OUTPUT, m)
        })?;
    }
    Ok(out)
}

fn write_frame(out: &mut String, frame: &Frame) -> Result<(), String> {
    use std::fmt::Write as _;
    let sys = &frame.system;
    sys.validate().map_err(|e| e.to_string())?;
    let n = sys.len();
    for (i, &t) in sys.types.iter().enumerate() {
        let name = &sys.type_names[t];
        if elements::mass_of(name).is_none() {
            return Err(format!(
                "atom {i} has type name `{name}`, but extxyz species must be chemical symbols"
            ));
        }
    }
    let write_masses = (0..n).any(|i| {
        elements::mass_of(sys.symbol(i)).map(f64::to_bits) != Some(sys.masses[i].to_bits())
    });
    for (key, value) in &frame.info {
        if key.is_empty() || RESERVED_INFO.contains(&key.as_str()) {
            return Err(format!("info key `{key}` is empty or reserved"));
        }
        let empty_list = match value {
            Value::Bools(v) => v.is_empty(),
            Value::Ints(v) => v.is_empty(),
            Value::Floats(v) => v.is_empty(),
            _ => false,
        };
        if empty_list {
            return Err(format!(
                "info `{key}` is an empty list, which extxyz cannot hold"
            ));
        }
    }
    for (name, col) in &frame.arrays {
        check_array(name, col, n)?;
    }

    let mut props = String::from("species:S:1:pos:R:3");
    if write_masses {
        props.push_str(":masses:R:1");
    }
    if sys.charges.is_some() {
        props.push_str(":initial_charges:R:1");
    }
    if sys.velocities.is_some() {
        props.push_str(":momenta:R:3");
    }
    for (name, col) in &frame.arrays {
        let _ = write!(props, ":{name}:{}:{}", col.type_letter(), col.width);
    }

    let _ = writeln!(out, "{n}");
    if let Some(cell) = &sys.cell {
        let h = cell.matrix();
        let flat: Vec<String> = h.iter().flatten().map(|&x| Exact(x).to_string()).collect();
        let _ = write!(out, "Lattice=\"{}\" ", flat.join(" "));
    }
    let _ = write!(out, "Properties={props}");
    for (key, value) in &frame.info {
        let _ = write!(out, " {}={}", quote(key)?, fmt_value(value)?);
    }
    let _ = writeln!(out, " pbc=\"{}\"", fmt_bools(&sys.pbc()));

    for i in 0..n {
        let _ = write!(out, "{:<2}", sys.symbol(i));
        sys.positions[i].iter().for_each(|&x| push_real(out, x));
        if write_masses {
            push_real(out, sys.masses[i]);
        }
        if let Some(q) = &sys.charges {
            push_real(out, q[i]);
        }
        if let Some(v) = &sys.velocities {
            for vk in v[i] {
                let p = vk / ASE_FS * sys.masses[i];
                if !p.is_finite() {
                    return Err(format!("velocity of atom {i} overflows as ASE momentum"));
                }
                push_real(out, p);
            }
        }
        for (_, col) in &frame.arrays {
            let row = i * col.width..(i + 1) * col.width;
            match &col.data {
                ColumnData::Real(v) => v[row].iter().for_each(|&x| push_real(out, x)),
                ColumnData::Int(v) => v[row].iter().for_each(|x| {
                    let _ = write!(out, " {x:>8}");
                }),
                ColumnData::Bool(v) => v[row]
                    .iter()
                    .for_each(|&b| out.push_str(if b { " T" } else { " F" })),
                ColumnData::Str(v) => v[row].iter().for_each(|s| {
                    out.push(' ');
                    out.push_str(s);
                }),
            }
        }
        out.push('\n');
    }
    Ok(())
}

/// Appends a real, right-aligned so columns line up in the common case.
fn push_real(out: &mut String, x: f64) {
    use std::fmt::Write as _;
    let _ = write!(out, " {:>20}", Exact(x));
}

fn check_array(name: &str, col: &Column, n: usize) -> Result<(), String> {
    let plain = !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, ':' | '"' | '\'' | '=' | '\\'));
    if !plain || RESERVED_ARRAYS.contains(&name) {
        return Err(format!(
            "array name `{name}` is reserved or not a plain word (allowed: anything but {})",
            RESERVED_ARRAYS.join(", ")
        ));
    }
    if col.width == 0 || col.len() != n * col.width {
        return Err(format!(
            "array `{name}` has {} values, expected {n} atoms × width {}",
            col.len(),
            col.width
        ));
    }
    if let ColumnData::Str(v) = &col.data {
        if let Some(s) = v
            .iter()
            .find(|s| s.is_empty() || s.contains(char::is_whitespace))
        {
            return Err(format!(
                "array `{name}` holds {}, but S columns need non-empty words",
                show(s)
            ));
        }
    }
    Ok(())
}

fn fmt_bools(b: &[bool]) -> String {
    let v: Vec<&str> = b.iter().map(|&x| if x { "T" } else { "F" }).collect();
    v.join(" ")
}

fn fmt_value(value: &Value) -> Result<String, String> {
    let join = |v: Vec<String>| format!("\"{}\"", v.join(" "));
    Ok(match value {
        Value::Bool(b) => fmt_bools(&[*b]),
        Value::Int(i) => i.to_string(),
        Value::Float(x) => Exact(*x).to_string(),
        Value::Str(s) => quote(s)?,
        Value::Bools(v) => format!("\"{}\"", fmt_bools(v)),
        Value::Ints(v) => join(v.iter().map(i64::to_string).collect()),
        Value::Floats(v) => join(v.iter().map(|&x| Exact(x).to_string()).collect()),
    })
}

/// Quotes a key or string value when ASE's parser would otherwise split or unescape it.
fn quote(s: &str) -> Result<String, String> {
    if s.contains(['\n', '\r']) {
        return Err(format!("{} contains a line break", show(s)));
    }
    let special = |c: char| c.is_whitespace() || "\"'{}[]=\\".contains(c);
    if !s.is_empty() && !s.contains(special) {
        return Ok(s.to_string());
    }
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(line: &str) -> Vec<(String, String)> {
        parse_comment(line).unwrap()
    }

    #[test]
    fn comment_lines_split_like_ase() {
        let got = kv(
            r#"Lattice="1 0 0 0 1 0 0 0 1" Properties=species:S:1:pos:R:3 flag a = 5 s='x y' e=\"q b={1,2}"#,
        );
        let want = [
            ("Lattice", "1 0 0 0 1 0 0 0 1"),
            ("Properties", "species:S:1:pos:R:3"),
            ("flag", "T"),
            ("a", "5"),
            ("s", "x y"),
            ("e", "\"q"),
            ("b", "1,2"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(got, want);
        assert_eq!(kv("k=a=b"), vec![("k".into(), "a=b".into())]);
        assert_eq!(kv(r#"k="" j=1"#)[0], ("k".into(), String::new()));
        assert!(parse_comment("k=\"open")
            .unwrap_err()
            .contains("unterminated"));
        assert!(parse_comment("=5").is_err());
        assert!(kv("   ").is_empty());
    }

    #[test]
    fn values_are_typed_like_ase() {
        assert_eq!(parse_value("-3"), Value::Int(-3));
        assert_eq!(parse_value("1.0"), Value::Float(1.0));
        assert_eq!(parse_value("1e-7"), Value::Float(1e-7));
        assert_eq!(parse_value("1 2 3"), Value::Ints(vec![1, 2, 3]));
        assert_eq!(parse_value("1,2.5"), Value::Floats(vec![1.0, 2.5]));
        assert_eq!(parse_value("T"), Value::Bool(true));
        assert_eq!(
            parse_value("T F false"),
            Value::Bools(vec![true, false, false])
        );
        assert_eq!(parse_value("bulk"), Value::Str("bulk".into()));
        assert_eq!(parse_value("1 x"), Value::Str("1 x".into()));
    }

    #[test]
    fn values_round_trip_through_text() {
        let values = [
            Value::Bool(false),
            Value::Int(-42),
            Value::Float(0.1),
            Value::Float(1e16),
            Value::Float(-0.0),
            Value::Str("two words".into()),
            Value::Str("a\"b\\c='d'".into()),
            Value::Str(String::new()),
            Value::Bools(vec![true, false]),
            Value::Ints(vec![1, -2]),
            Value::Floats(vec![1.0, 1.0 / 3.0, -2e-300]),
        ];
        for v in values {
            let line = format!("k={}", fmt_value(&v).unwrap());
            let parsed = kv(&line);
            assert_eq!(parsed.len(), 1, "{line}");
            assert_eq!(parse_value(&parsed[0].1), v, "{line}");
        }
        assert!(quote("a\nb").is_err());
    }

    #[test]
    fn properties_are_checked() {
        assert!(parse_properties("species:S:1:pos:R:3:forces:R:3").is_ok());
        let e = |s: &str| parse_properties(s).err().unwrap();
        assert!(e("species:S:1:pos:R").contains("triples"));
        assert!(e("species:S:1:pos:X:3").contains("R, I, L or S"));
        assert!(e("species:S:1:pos:R:0").contains("positive"));
        assert!(e("species:S:1:pos:R:2").contains("pos:R:3"));
        assert!(e("species:S:1:pos:R:3:pos:R:3").contains("repeated"));
        assert!(e("pos:R:3").contains("species"));
        assert!(e("species:S:1").contains("pos"));
        assert!(e("species:S:1:pos:R:3:vel:R:3:momenta:R:3").contains("keep one"));
        let z = parse_properties("Z:I:1:pos:R:3").unwrap();
        assert!(z[0].role == Role::Numbers);
        let z = parse_properties("species:S:1:pos:R:3:Z:I:1").unwrap();
        assert!(z[2].role == Role::Other);
    }

    #[test]
    fn capitalizes_symbols() {
        assert_eq!(capitalize("SI"), "Si");
        assert_eq!(capitalize("h"), "H");
        assert_eq!(capitalize(""), "");
    }
}
