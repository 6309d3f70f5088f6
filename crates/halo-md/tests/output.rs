//! Tests of the run outputs: thermo logs, trajectories, the progress line and the PNG plot.

use std::path::Path;

use halo_core::{Cell, Vec3};
use halo_md::output::thermo::{read_csv, CSV_HEADER};
use halo_md::output::traj::{format_frame, LammpsBox};
use halo_md::output::{recorded_len, ThermoLog, ThermoRow, TrajFormat, TrajFrame, TrajWriter};
use halo_md::plot;
use halo_md::progress::{format_duration, format_line, Progress, ProgressMode, Snapshot};

fn row(step: u64) -> ThermoRow {
    let s = step as f64;
    ThermoRow {
        step,
        time: 0.5 * s,
        pe: -1234.5 + 0.1 * s,
        ke: 3.25 - 0.1 * s,
        temperature: 300.0 + s,
        pressure: -12.5 * s,
        volume: Some(1000.0 + s),
        conserved: -1231.25 + 1e-7 * s,
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

// ---------------------------------------------------------------- thermo

#[test]
fn thermo_text_and_csv_content() {
    let dir = tempfile::tempdir().unwrap();
    let (txt, csv) = (dir.path().join("thermo.log"), dir.path().join("thermo.csv"));
    let mut log = ThermoLog::create(Some(&txt), Some(&csv), None).unwrap();
    for s in 0..3 {
        log.write(&row(s)).unwrap();
    }
    let text = read(&txt);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.len(),
        2 + 3,
        "two header lines then one line per row:\n{text}"
    );
    for (name, unit) in [
        ("Step", ""),
        ("Time", "fs"),
        ("PotEng", "eV"),
        ("Temp", "K"),
        ("Press", "bar"),
        ("Volume", "A^3"),
        ("Conserved", "eV"),
    ] {
        assert!(lines[0].contains(name), "header lacks {name}: {}", lines[0]);
        assert!(
            lines[1].contains(unit),
            "unit line lacks {unit}: {}",
            lines[1]
        );
    }
    assert!(lines[0].starts_with('#') && lines[1].starts_with('#'));
    // Step 2: pe = -1234.3, T = 302, etotal = -1234.3 + 3.05 = -1231.25.
    let fields: Vec<&str> = lines[4].split_whitespace().collect();
    assert_eq!(fields[0], "2");
    assert_eq!(fields[1], "1.000");
    assert_eq!(fields[2], "-1234.30000000");
    assert_eq!(fields[4], "302.000");
    assert_eq!(fields[5], "-25.000");
    assert_eq!(fields[6], "1002.0000");
    assert_eq!(fields[7], "-1231.25000000");
    // Fixed width: every data line equally long.
    assert!(lines[2..].iter().all(|l| l.len() == lines[2].len()));

    let csv_text = read(&csv);
    let clines: Vec<&str> = csv_text.lines().collect();
    assert_eq!(clines[0], CSV_HEADER);
    assert_eq!(
        CSV_HEADER,
        "step,time_fs,pe_eV,ke_eV,temperature_K,pressure_bar,volume_A3,conserved_eV"
    );
    assert_eq!(clines.len(), 4);
    assert_eq!(clines[1].split(',').count(), 8);
    assert!(clines[3].starts_with("2,1e0,"), "{}", clines[3]);
}

#[test]
fn thermo_text_log_without_cell_has_no_volume_column() {
    let dir = tempfile::tempdir().unwrap();
    let txt = dir.path().join("t.log");
    let mut log = ThermoLog::create(Some(&txt), None, None).unwrap();
    let r = ThermoRow {
        volume: None,
        ..row(4)
    };
    log.write(&r).unwrap();
    let text = read(&txt);
    assert!(!text.contains("Volume"), "{text}");
    let fields: Vec<&str> = text.lines().nth(2).unwrap().split_whitespace().collect();
    assert_eq!(fields.len(), 8, "{fields:?}");
    assert_eq!(fields[0], "4");
    assert_eq!(
        log.outputs(),
        [(txt.display().to_string(), text.len() as u64)]
    );
}

#[test]
fn thermo_csv_round_trips_bits() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("t.csv");
    let awkward = [
        ThermoRow {
            step: 0,
            time: 0.0,
            pe: 0.1 + 0.2,
            ke: 1e-300,
            temperature: f64::MIN_POSITIVE,
            pressure: -1.7976931348623157e308,
            volume: None,
            conserved: -123456.78901234567,
        },
        ThermoRow {
            step: u64::MAX,
            time: 1.0 / 3.0,
            pe: -0.0,
            ke: 5e-324,
            temperature: 2.0f64.sqrt(),
            pressure: 1e22,
            volume: Some(std::f64::consts::PI * 1e3),
            conserved: 9007199254740993.0,
        },
    ];
    let mut log = ThermoLog::create(None, Some(&csv), None).unwrap();
    for r in &awkward {
        log.write(r).unwrap();
    }
    let back = read_csv(&csv).unwrap();
    assert_eq!(back.len(), 2);
    for (a, b) in awkward.iter().zip(&back) {
        let bits = |r: &ThermoRow| {
            [r.time, r.pe, r.ke, r.temperature, r.pressure, r.conserved].map(f64::to_bits)
        };
        assert_eq!(a.step, b.step);
        assert_eq!(bits(a), bits(b));
        assert_eq!(a.volume.map(f64::to_bits), b.volume.map(f64::to_bits));
    }
}

#[test]
fn read_csv_errors_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("bad.csv");
    std::fs::write(
        &csv,
        format!("{CSV_HEADER}\n1,2,3,4,5,6,7,8\n2,2,x,4,5,6,7,8\n"),
    )
    .unwrap();
    let msg = read_csv(&csv).unwrap_err().to_string();
    assert!(msg.contains("bad.csv:3"), "{msg}");
    assert!(msg.contains("pe_eV") && msg.contains("`x`"), "{msg}");

    std::fs::write(&csv, format!("{CSV_HEADER}\n1,2,3\n")).unwrap();
    let msg = read_csv(&csv).unwrap_err().to_string();
    assert!(msg.contains("bad.csv:2") && msg.contains("8"), "{msg}");

    std::fs::write(&csv, "step,time\n").unwrap();
    let msg = read_csv(&csv).unwrap_err().to_string();
    assert!(msg.contains("bad.csv:1") && msg.contains("header"), "{msg}");

    let msg = read_csv(&dir.path().join("missing.csv"))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("missing.csv"), "{msg}");
}

#[test]
fn thermo_resume_truncates_to_recorded_length() {
    let dir = tempfile::tempdir().unwrap();
    let (txt, csv) = (dir.path().join("a.log"), dir.path().join("a.csv"));
    let mut log = ThermoLog::create(Some(&txt), Some(&csv), None).unwrap();
    for s in 0..5 {
        log.write(&row(s)).unwrap();
    }
    log.sync().unwrap();
    let record = log.outputs();
    assert_eq!(record.len(), 2);
    assert_eq!(record[0].1, std::fs::metadata(&txt).unwrap().len());
    assert_eq!(record[1].1, std::fs::metadata(&csv).unwrap().len());
    // Rows written after the checkpoint, then a crash mid-line.
    for s in 5..8 {
        log.write(&row(s)).unwrap();
    }
    drop(log);
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(&csv).unwrap();
        f.write_all(b"8,4e0,-12").unwrap();
    }

    // Resume and write different rows 5 and 6.
    let redo = |s: u64| ThermoRow {
        temperature: 1.0 + s as f64,
        ..row(s)
    };
    let mut log = ThermoLog::create(Some(&txt), Some(&csv), Some(&record)).unwrap();
    assert_eq!(log.outputs(), record);
    log.write(&redo(5)).unwrap();
    log.write(&redo(6)).unwrap();
    drop(log);

    // Reference: an uninterrupted log of the same rows.
    let (rtxt, rcsv) = (dir.path().join("r.log"), dir.path().join("r.csv"));
    let mut reference = ThermoLog::create(Some(&rtxt), Some(&rcsv), None).unwrap();
    for s in 0..5 {
        reference.write(&row(s)).unwrap();
    }
    reference.write(&redo(5)).unwrap();
    reference.write(&redo(6)).unwrap();
    drop(reference);
    assert_eq!(read(&txt), read(&rtxt));
    assert_eq!(read(&csv), read(&rcsv));
    assert_eq!(read(&csv).matches("step,").count(), 1, "one header only");
    let rows = read_csv(&csv).unwrap();
    assert_eq!(
        rows.iter().map(|r| r.step).collect::<Vec<_>>(),
        [0, 1, 2, 3, 4, 5, 6]
    );
    assert_eq!(rows[6].temperature, 7.0);
}

#[test]
fn thermo_resume_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("gone.csv");
    let record = vec![(csv.display().to_string(), 100u64)];
    // The file is missing.
    let msg = ThermoLog::create(None, Some(&csv), Some(&record))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("gone.csv") && msg.contains("resume"), "{msg}");
    // The file is shorter than recorded.
    std::fs::write(&csv, "short\n").unwrap();
    let msg = ThermoLog::create(None, Some(&csv), Some(&record))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("100 bytes") && msg.contains("only 6"), "{msg}");
    assert_eq!(
        read(&csv),
        "short\n",
        "a failed resume must not modify the file"
    );
    // The checkpoint does not know the file.
    let other = dir.path().join("new.csv");
    std::fs::write(&other, "x").unwrap();
    let msg = ThermoLog::create(None, Some(&other), Some(&record))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("new.csv") && msg.contains("no length"),
        "{msg}"
    );
}

#[test]
fn recorded_len_matches_other_spellings_of_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("x.csv");
    std::fs::write(&f, "abc").unwrap();
    let odd = dir.path().join(".").join("x.csv");
    let outputs = vec![("elsewhere".to_string(), 1), (odd.display().to_string(), 3)];
    assert_eq!(recorded_len(&outputs, &f), Some(3));
    assert_eq!(recorded_len(&outputs, &dir.path().join("y.csv")), None);
}

// ---------------------------------------------------------------- trajectories

/// A general (not lower-triangular) right-handed cell: a triclinic cell turned by a rotation.
fn rotated_cell() -> Cell {
    let base = [[5.0, 0.0, 0.0], [1.2, 4.5, 0.0], [-0.7, 0.9, 6.1]];
    let (c, s) = (0.6f64.cos(), 0.6f64.sin());
    let (c2, s2) = (1.1f64.cos(), 1.1f64.sin());
    // Rotation about z, then about x.
    let rz = [[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]];
    let rx = [[1.0, 0.0, 0.0], [0.0, c2, s2], [0.0, -s2, c2]];
    let h = base.map(|r| mat_vec_row(mat_vec_row(r, &rz), &rx));
    Cell::periodic(h).unwrap()
}

fn mat_vec_row(v: Vec3, m: &[Vec3; 3]) -> Vec3 {
    let mut out = [0.0; 3];
    for (k, o) in out.iter_mut().enumerate() {
        *o = v[0] * m[0][k] + v[1] * m[1][k] + v[2] * m[2][k];
    }
    out
}

struct Atoms {
    names: Vec<String>,
    types: Vec<usize>,
    x: Vec<Vec3>,
    v: Vec<Vec3>,
    f: Vec<Vec3>,
}

fn atoms(shift: f64) -> Atoms {
    Atoms {
        names: vec!["O".into(), "H".into()],
        types: vec![0, 1, 1, 0, 1],
        x: vec![
            [0.1 + shift, 0.2, 0.3],
            [1.0 / 3.0, 2.5, -0.75],
            [3.1, 1e-9, 4.4],
            [-2.0, 5.5, 1.25 + shift],
            [0.0, 0.0, 7.0],
        ],
        v: vec![
            [0.01, -0.02, 0.003],
            [0.1, 0.0, -0.05],
            [-0.07, 0.02, 0.0],
            [0.004, 0.005, -0.006],
            [1.0 / 7.0, -0.03, 0.02],
        ],
        f: vec![
            [1.5, -0.25, 0.125],
            [-0.1, 0.2, 0.3],
            [0.0, 0.0, -1.0],
            [2.0 / 3.0, 0.5, 0.25],
            [-3.0, 1.0, 1e-5],
        ],
    }
}

fn frame<'a>(a: &'a Atoms, cell: Option<&'a Cell>, step: u64) -> TrajFrame<'a> {
    TrajFrame {
        step,
        time: 0.5 * step as f64,
        cell,
        type_names: &a.names,
        types: &a.types,
        positions: &a.x,
        velocities: Some(&a.v),
        forces: Some(&a.f),
        energy: Some(-42.125 - step as f64),
    }
}

#[test]
fn traj_format_names_and_extensions() {
    assert_eq!(
        TrajFormat::from_path(Path::new("a/b.xyz")),
        Some(TrajFormat::Extxyz)
    );
    assert_eq!(
        TrajFormat::from_path(Path::new("b.EXTXYZ")),
        Some(TrajFormat::Extxyz)
    );
    assert_eq!(
        TrajFormat::from_path(Path::new("t.lammpstrj")),
        Some(TrajFormat::LammpsDump)
    );
    assert_eq!(
        TrajFormat::from_path(Path::new("t.dump")),
        Some(TrajFormat::LammpsDump)
    );
    assert_eq!(TrajFormat::from_path(Path::new("t.txt")), None);
    assert_eq!(TrajFormat::from_path(Path::new("noext")), None);
    assert_eq!("extxyz".parse::<TrajFormat>(), Ok(TrajFormat::Extxyz));
    assert_eq!(
        "lammps-dump".parse::<TrajFormat>(),
        Ok(TrajFormat::LammpsDump)
    );
    assert!("xyz"
        .parse::<TrajFormat>()
        .unwrap_err()
        .contains("lammps-dump"));
    for f in [TrajFormat::Extxyz, TrajFormat::LammpsDump] {
        assert_eq!(f.to_string().parse::<TrajFormat>(), Ok(f));
    }
}

#[test]
fn extxyz_frames_read_back_with_halo_io() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("traj.xyz");
    let cell = rotated_cell();
    let (a0, a1) = (atoms(0.0), atoms(0.125));
    let mut w = TrajWriter::create(&path, TrajFormat::Extxyz, None).unwrap();
    w.write(&frame(&a0, Some(&cell), 0)).unwrap();
    w.write(&frame(&a1, Some(&cell), 10)).unwrap();
    assert_eq!(w.len(), std::fs::metadata(&path).unwrap().len());
    drop(w);

    let frames = halo_io::read(&path, None).unwrap();
    assert_eq!(frames.len(), 2);
    for (fr, (a, step)) in frames.iter().zip([(&a0, 0u64), (&a1, 10)]) {
        let sys = &fr.system;
        let names: Vec<&str> = a.types.iter().map(|&t| a.names[t].as_str()).collect();
        let back: Vec<&str> = (0..sys.len()).map(|i| sys.symbol(i)).collect();
        assert_eq!(back, names);
        // Positions, cell and forces are written with shortest round-trip text: exact.
        assert_eq!(sys.positions, a.x);
        assert_eq!(sys.cell.unwrap().matrix(), cell.matrix());
        assert_eq!(sys.cell.unwrap().pbc(), [true; 3]);
        assert_eq!(fr.forces().unwrap(), a.f);
        assert_eq!(fr.energy(), Some(-42.125 - step as f64));
        assert_eq!(fr.info("step").and_then(|v| v.as_f64()), Some(step as f64));
        assert_eq!(
            fr.info("time").and_then(|v| v.as_f64()),
            Some(0.5 * step as f64)
        );
        // Velocities pass through ASE momenta: equal to a few ulp.
        let v = sys.velocities.as_ref().unwrap();
        for (got, want) in v.iter().flatten().zip(a.v.iter().flatten()) {
            assert!(
                (got - want).abs() <= 4.0 * f64::EPSILON * want.abs(),
                "{got} vs {want}"
            );
        }
    }
}

#[test]
fn extxyz_without_cell_and_with_unknown_symbols() {
    let a = atoms(0.0);
    let text = format_frame(
        &TrajFrame {
            velocities: None,
            forces: None,
            energy: None,
            ..frame(&a, None, 3)
        },
        TrajFormat::Extxyz,
    )
    .unwrap();
    assert!(
        !text.contains("Lattice") && text.contains("pbc=\"F F F\""),
        "{text}"
    );
    assert!(text.contains("Properties=species:S:1:pos:R:3 "), "{text}");
    let frames = halo_io::read_str(&text, halo_io::Format::ExtXyz, "mem").unwrap();
    assert!(frames[0].system.cell.is_none());
    assert_eq!(frames[0].system.positions, a.x);

    // A type name that is not an element: velocities go to a `vel` column in Å/fs.
    let names = vec!["O".to_string(), "Xx".to_string()];
    let text = format_frame(
        &TrajFrame {
            type_names: &names,
            ..frame(&a, None, 3)
        },
        TrajFormat::Extxyz,
    )
    .unwrap();
    assert!(text.contains(":vel:R:3"), "{text}");
    let line = text.lines().nth(3).unwrap();
    let cols: Vec<f64> = line
        .split_whitespace()
        .skip(4)
        .take(3)
        .map(|t| t.parse().unwrap())
        .collect();
    assert_eq!(cols, a.v[1]);
}

#[test]
fn traj_resume_truncates_and_appends() {
    let dir = tempfile::tempdir().unwrap();
    for format in [TrajFormat::Extxyz, TrajFormat::LammpsDump] {
        let path = dir.path().join(format!("t.{format}"));
        let cell = rotated_cell();
        let a = atoms(0.0);
        let b = atoms(0.5);
        let mut w = TrajWriter::create(&path, format, None).unwrap();
        w.write(&frame(&a, Some(&cell), 0)).unwrap();
        w.write(&frame(&a, Some(&cell), 5)).unwrap();
        w.sync().unwrap();
        let (key, len) = w.output();
        assert_eq!(key, path.display().to_string());
        w.write(&frame(&a, Some(&cell), 10)).unwrap();
        drop(w);
        let mut w = TrajWriter::create(&path, format, Some(len)).unwrap();
        assert_eq!(w.len(), len);
        w.write(&frame(&b, Some(&cell), 10)).unwrap();
        drop(w);
        let expected = [
            format_frame(&frame(&a, Some(&cell), 0), format).unwrap(),
            format_frame(&frame(&a, Some(&cell), 5), format).unwrap(),
            format_frame(&frame(&b, Some(&cell), 10), format).unwrap(),
        ]
        .concat();
        assert_eq!(read(&path), expected);

        let missing = dir.path().join("none.xyz");
        let msg = TrajWriter::create(&missing, format, Some(3))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("none.xyz"), "{msg}");
    }
}

#[test]
fn frame_validation_rejects_inconsistent_arrays() {
    let a = atoms(0.0);
    let short = &a.v[..3];
    let err = format_frame(
        &TrajFrame {
            velocities: Some(short),
            ..frame(&a, None, 0)
        },
        TrajFormat::LammpsDump,
    )
    .unwrap_err();
    assert!(err.contains("velocities"), "{err}");
    let bad_types = vec![0, 1, 2, 0, 1];
    let err = format_frame(
        &TrajFrame {
            types: &bad_types,
            ..frame(&a, None, 0)
        },
        TrajFormat::Extxyz,
    )
    .unwrap_err();
    assert!(err.contains("type index 2"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.xyz");
    let mut w = TrajWriter::create(&path, TrajFormat::Extxyz, None).unwrap();
    let msg = w
        .write(&TrajFrame {
            types: &bad_types,
            ..frame(&a, None, 7)
        })
        .unwrap_err()
        .to_string();
    assert!(msg.contains("step 7"), "{msg}");
    assert_eq!(w.len(), 0);
}

/// A LAMMPS dump frame parsed independently of the writer.
struct Dump {
    time: f64,
    step: u64,
    header: String,
    bounds: Vec<Vec<f64>>,
    columns: Vec<String>,
    rows: Vec<Vec<String>>,
}

fn parse_dump(text: &str) -> Vec<Dump> {
    let mut lines = text.lines();
    let mut out = Vec::new();
    while let Some(l) = lines.next() {
        assert_eq!(l, "ITEM: TIME");
        let time = lines.next().unwrap().parse().unwrap();
        assert_eq!(lines.next().unwrap(), "ITEM: TIMESTEP");
        let step = lines.next().unwrap().parse().unwrap();
        assert_eq!(lines.next().unwrap(), "ITEM: NUMBER OF ATOMS");
        let n: usize = lines.next().unwrap().parse().unwrap();
        let header = lines.next().unwrap().to_string();
        assert!(header.starts_with("ITEM: BOX BOUNDS"));
        let bounds = (0..3)
            .map(|_| {
                lines
                    .next()
                    .unwrap()
                    .split_whitespace()
                    .map(|t| t.parse().unwrap())
                    .collect()
            })
            .collect();
        let atoms_line = lines.next().unwrap();
        let columns: Vec<String> = atoms_line
            .strip_prefix("ITEM: ATOMS ")
            .unwrap()
            .split_whitespace()
            .map(String::from)
            .collect();
        let rows = (0..n)
            .map(|_| {
                lines
                    .next()
                    .unwrap()
                    .split_whitespace()
                    .map(String::from)
                    .collect()
            })
            .collect();
        out.push(Dump {
            time,
            step,
            header,
            bounds,
            columns,
            rows,
        });
    }
    out
}

impl Dump {
    /// The box matrix (rows a, b, c) from the bounding-box lines, as LAMMPS documents them.
    fn matrix(&self) -> [Vec3; 3] {
        let b = &self.bounds;
        if self.header.contains("xy xz yz") {
            let (xy, xz, yz) = (b[0][2], b[1][2], b[2][2]);
            let xlo = b[0][0] - [0.0, xy, xz, xy + xz].into_iter().fold(0.0, f64::min);
            let xhi = b[0][1] - [0.0, xy, xz, xy + xz].into_iter().fold(0.0, f64::max);
            let ylo = b[1][0] - 0f64.min(yz);
            let yhi = b[1][1] - 0f64.max(yz);
            let (zlo, zhi) = (b[2][0], b[2][1]);
            [
                [xhi - xlo, 0.0, 0.0],
                [xy, yhi - ylo, 0.0],
                [xz, yz, zhi - zlo],
            ]
        } else {
            [
                [b[0][1] - b[0][0], 0.0, 0.0],
                [0.0, b[1][1] - b[1][0], 0.0],
                [0.0, 0.0, b[2][1] - b[2][0]],
            ]
        }
    }

    fn vec3(&self, names: [&str; 3]) -> Vec<Vec3> {
        let idx = names.map(|n| self.columns.iter().position(|c| c == n).unwrap());
        self.rows
            .iter()
            .map(|r| idx.map(|k| r[k].parse::<f64>().unwrap()))
            .collect()
    }

    fn column(&self, name: &str) -> Vec<String> {
        let k = self.columns.iter().position(|c| c == name).unwrap();
        self.rows.iter().map(|r| r[k].clone()).collect()
    }
}

fn dist(a: Vec3, b: Vec3) -> f64 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt()
}

fn dotp(a: Vec3, b: Vec3) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

/// Fractional coordinates by solving `x = s · H` with Cramer's rule.
fn frac(x: Vec3, h: &[Vec3; 3]) -> Vec3 {
    let det = |m: [Vec3; 3]| {
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
            - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    };
    // Columns of Hᵀ are the lattice vectors: solve Hᵀ sᵀ = xᵀ.
    let ht = [
        [h[0][0], h[1][0], h[2][0]],
        [h[0][1], h[1][1], h[2][1]],
        [h[0][2], h[1][2], h[2][2]],
    ];
    let d = det(ht);
    let mut s = [0.0; 3];
    for (k, sk) in s.iter_mut().enumerate() {
        let mut m = ht;
        for r in 0..3 {
            m[r][k] = x[r];
        }
        *sk = det(m) / d;
    }
    s
}

#[test]
fn lammps_dump_triclinic_preserves_geometry() {
    let cell = rotated_cell();
    let a = atoms(0.0);
    let text = format_frame(&frame(&a, Some(&cell), 40), TrajFormat::LammpsDump).unwrap();
    let dumps = parse_dump(&text);
    assert_eq!(dumps.len(), 1);
    let d = &dumps[0];
    assert_eq!(d.step, 40);
    assert!((d.time - 0.020).abs() < 1e-15, "time in ps: {}", d.time);
    assert_eq!(d.header, "ITEM: BOX BOUNDS xy xz yz pp pp pp");
    assert_eq!(
        d.columns,
        ["id", "type", "element", "xu", "yu", "zu", "vx", "vy", "vz", "fx", "fy", "fz"]
    );
    assert_eq!(d.column("id"), ["1", "2", "3", "4", "5"]);
    assert_eq!(d.column("type"), ["1", "2", "2", "1", "2"]);
    assert_eq!(d.column("element"), ["O", "H", "H", "O", "H"]);

    // The dump's box has the cell's lengths and angles (it is the same cell, rotated).
    let h = cell.matrix();
    let hd = d.matrix();
    for i in 0..3 {
        for j in 0..3 {
            let (want, got) = (dotp(h[i], h[j]), dotp(hd[i], hd[j]));
            assert!(
                (want - got).abs() < 1e-12 * 40.0,
                "metric {i}{j}: {want} vs {got}"
            );
        }
    }
    // Fractional coordinates in the dump's box equal those in the original cell.
    let x = d.vec3(["xu", "yu", "zu"]);
    for (xd, x0) in x.iter().zip(&a.x) {
        let (s_dump, s_orig) = (frac(*xd, &hd), frac(*x0, h));
        for k in 0..3 {
            assert!(
                (s_dump[k] - s_orig[k]).abs() < 1e-13,
                "{s_dump:?} vs {s_orig:?}"
            );
        }
    }
    // Interatomic distances are unchanged.
    for i in 0..x.len() {
        for j in 0..i {
            let (want, got) = (dist(a.x[i], a.x[j]), dist(x[i], x[j]));
            assert!(
                (want - got).abs() < 1e-13 * want.max(1.0),
                "{want} vs {got}"
            );
        }
    }
    // Velocities (Å/ps) and forces rotate with the positions: inner products with the
    // positions, and with each other, are preserved.
    let v = d.vec3(["vx", "vy", "vz"]);
    let f = d.vec3(["fx", "fy", "fz"]);
    for i in 0..x.len() {
        let vd = v[i].map(|c| c / 1000.0);
        let checks = [
            (dotp(a.v[i], a.x[i]), dotp(vd, x[i])),
            (dotp(a.f[i], a.x[i]), dotp(f[i], x[i])),
            (dotp(a.v[i], a.f[i]), dotp(vd, f[i])),
            (dotp(a.v[i], a.v[i]), dotp(vd, vd)),
        ];
        for (want, got) in checks {
            assert!((want - got).abs() < 1e-13, "{want} vs {got}");
        }
    }
}

#[test]
fn lammps_dump_restricted_and_orthogonal_cells_are_written_unrotated() {
    let a = atoms(0.0);
    // Orthogonal: plain bounds, coordinates exactly as given.
    let ortho = Cell::new(
        [[10.0, 0.0, 0.0], [0.0, 11.5, 0.0], [0.0, 0.0, 12.25]],
        [true, true, false],
    )
    .unwrap();
    let text = format_frame(&frame(&a, Some(&ortho), 1), TrajFormat::LammpsDump).unwrap();
    let d = &parse_dump(&text)[0];
    assert_eq!(d.header, "ITEM: BOX BOUNDS pp pp ff");
    assert_eq!(
        d.bounds,
        [vec![0.0, 10.0], vec![0.0, 11.5], vec![0.0, 12.25]]
    );
    assert_eq!(d.vec3(["xu", "yu", "zu"]), a.x);
    // Velocities: Å/fs × 1000, done on the decimal text, so exact.
    let v = d.vec3(["vx", "vy", "vz"]);
    assert_eq!(v[0], [10.0, -20.0, 3.0]);
    assert_eq!(v[4][0], "142.85714285714286".parse::<f64>().unwrap());

    // Already restricted triclinic: tilts as given, bounds per LAMMPS' convention.
    let tri = Cell::periodic([[5.0, 0.0, 0.0], [-1.5, 4.0, 0.0], [2.0, -0.5, 6.0]]).unwrap();
    let b = LammpsBox::from_cell(&tri);
    assert!(b.rotation.is_none());
    assert_eq!(b.lengths, [5.0, 4.0, 6.0]);
    assert_eq!(b.tilts, [-1.5, 2.0, -0.5]);
    let text = format_frame(&frame(&a, Some(&tri), 1), TrajFormat::LammpsDump).unwrap();
    let d = &parse_dump(&text)[0];
    // xlo_bound = min(0, xy, xz, xy+xz) = -1.5; xhi_bound = 5 + max(0, xy, xz, xy+xz) = 7.
    assert_eq!(d.bounds[0], [-1.5, 7.0, -1.5]);
    assert_eq!(d.bounds[1], [-0.5, 4.0, 2.0]);
    assert_eq!(d.bounds[2], [0.0, 6.0, -0.5]);
    assert_eq!(d.matrix(), *tri.matrix());
    assert_eq!(d.vec3(["xu", "yu", "zu"]), a.x);

    // No cell: the atoms' bounding box, non-periodic.
    let text = format_frame(&frame(&a, None, 1), TrajFormat::LammpsDump).unwrap();
    let d = &parse_dump(&text)[0];
    assert_eq!(d.header, "ITEM: BOX BOUNDS ff ff ff");
    assert_eq!(
        d.bounds,
        [vec![-2.0, 3.1], vec![0.0, 5.5], vec![-0.75, 7.0]]
    );
}

// ---------------------------------------------------------------- progress

#[test]
fn progress_line_formatting() {
    let snap = Snapshot {
        step: 500,
        total: 1000,
        steps_per_s: Some(100.0),
        dt_fs: 1.0,
        temperature: Some(300.04),
        pe: Some(-1234.56789),
    };
    // 100 steps/s × 1 fs = 100 fs/s = 8.64e6 fs/day = 8.64 ns/day; 500 steps left = 5 s.
    assert_eq!(
        format_line(&snap),
        "step 500/1000 (50.0%) | 100.0 steps/s | 8.640 ns/day | ETA 0:00:05 | T 300.0 K | PE -1234.5679 eV"
    );
    let early = Snapshot {
        step: 1,
        total: 3,
        steps_per_s: None,
        dt_fs: 2.0,
        temperature: None,
        pe: None,
    };
    assert_eq!(
        format_line(&early),
        "step 1/3 (33.3%) | -- steps/s | ETA --:--:--"
    );
    // Minimisation (dt = 0): no ns/day.
    let min = Snapshot {
        dt_fs: 0.0,
        steps_per_s: Some(2.5),
        ..snap
    };
    let line = format_line(&min);
    assert!(
        !line.contains("ns/day") && line.contains("2.500 steps/s"),
        "{line}"
    );
    assert!(line.contains("ETA 0:03:20"), "{line}");
    assert_eq!(format_duration(3661.0), "1:01:01");
    assert_eq!(format_duration(90061.0), "1d 01:01:01");
    assert_eq!(format_duration(f64::INFINITY), "--:--:--");
}

#[test]
fn progress_modes_and_rate() {
    assert_eq!("auto".parse::<ProgressMode>(), Ok(ProgressMode::Auto));
    assert_eq!("always".parse::<ProgressMode>(), Ok(ProgressMode::Always));
    assert_eq!("never".parse::<ProgressMode>(), Ok(ProgressMode::Never));
    assert!("sometimes".parse::<ProgressMode>().is_err());

    let mut p = Progress::new(ProgressMode::Always, 100, 10, 0.5);
    assert_eq!(p.snapshot().step, 10);
    p.update(11, None);
    assert_eq!(
        p.snapshot().steps_per_s,
        None,
        "no rate from the first step alone"
    );
    std::thread::sleep(std::time::Duration::from_millis(20));
    p.update(
        12,
        Some(&ThermoRow {
            temperature: 77.0,
            pe: -5.0,
            ..ThermoRow::default()
        }),
    );
    let s = p.snapshot();
    assert_eq!((s.step, s.temperature, s.pe), (12, Some(77.0), Some(-5.0)));
    let rate = s.steps_per_s.unwrap();
    assert!(
        rate > 0.0 && rate < 1.0 / 0.019,
        "one step in ≥ 20 ms: {rate}"
    );
    p.finish();

    let mut quiet = Progress::new(ProgressMode::Never, 10, 0, 1.0);
    quiet.update(1, None);
    quiet.finish();
}

// ---------------------------------------------------------------- plot

fn decode(path: &Path) -> (usize, usize, Vec<u8>) {
    let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    let mut reader = png::Decoder::new(file).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb);
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    buf.truncate(info.buffer_size());
    (info.width as usize, info.height as usize, buf)
}

fn pixel(img: &(usize, usize, Vec<u8>), x: usize, y: usize) -> [u8; 3] {
    let i = 3 * (y * img.0 + x);
    [img.2[i], img.2[i + 1], img.2[i + 2]]
}

#[test]
fn plot_png_has_curves_where_expected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("thermo.png");
    // Constant temperature; potential energy rising linearly.
    let rows: Vec<ThermoRow> = (0..200)
        .map(|s| ThermoRow {
            step: s,
            time: s as f64 * 2.0,
            pe: -100.0 + 0.01 * s as f64,
            ke: 5.0 + (s as f64 * 0.3).sin(),
            temperature: 300.0,
            pressure: 1.0,
            volume: None,
            conserved: -95.0,
        })
        .collect();
    plot::thermo_png(&rows, &path).unwrap();
    let img = decode(&path);
    assert_eq!((img.0, img.1), (plot::WIDTH, plot::HEIGHT));
    assert_eq!((img.0, img.1), (900, 600));

    // Temperature: exactly one row of the panel is (almost) all curve colour, in its middle.
    let tp = plot::TEMPERATURE_PANEL;
    let full_rows: Vec<usize> = (tp.y0..=tp.y1)
        .filter(|&y| {
            let n = (tp.x0..=tp.x1)
                .filter(|&x| pixel(&img, x, y) == plot::TEMPERATURE_COLOR)
                .count();
            n >= (tp.x1 - tp.x0) * 95 / 100
        })
        .collect();
    assert_eq!(full_rows.len(), 1, "{full_rows:?}");
    let mid = (tp.y0 + tp.y1) / 2;
    assert!(full_rows[0].abs_diff(mid) <= 1, "{} vs {mid}", full_rows[0]);
    // No temperature colour in the energy panel.
    let ep = plot::ENERGY_PANEL;
    let stray = (ep.y0..=ep.y1)
        .flat_map(|y| (ep.x0..=ep.x1).map(move |x| (x, y)))
        .filter(|&(x, y)| pixel(&img, x, y) == plot::TEMPERATURE_COLOR)
        .count();
    assert_eq!(stray, 0);

    // PE rises steadily from bottom-left to top-right of the energy panel (other curves
    // may cover it in a few columns where they cross).
    let pe_top: Vec<usize> = (ep.x0 + 1..ep.x1)
        .filter_map(|x| (ep.y0..=ep.y1).find(|&y| pixel(&img, x, y) == plot::PE_COLOR))
        .collect();
    assert!(pe_top.len() > (ep.x1 - ep.x0) * 8 / 10, "{}", pe_top.len());
    assert!(pe_top.windows(2).all(|w| w[1] <= w[0]), "{pe_top:?}");
    assert!(pe_top[0] > pe_top[pe_top.len() - 1] + (ep.y1 - ep.y0) / 2);
    // KE and the conserved line are drawn too.
    for c in [plot::KE_COLOR, plot::CONSERVED_COLOR] {
        let n = (ep.y0..=ep.y1)
            .flat_map(|y| (ep.x0..=ep.x1).map(move |x| (x, y)))
            .filter(|&(x, y)| pixel(&img, x, y) == c)
            .count();
        assert!(n > (ep.x1 - ep.x0) / 2, "{c:?}: {n} pixels");
    }
    // Labels: dark pixels left of the panels (tick labels) and below (axis title).
    let dark = |x0: usize, x1: usize, y0: usize, y1: usize| {
        (y0..y1)
            .flat_map(|y| (x0..x1).map(move |x| (x, y)))
            .filter(|&(x, y)| pixel(&img, x, y) == [0, 0, 0])
            .count()
    };
    assert!(dark(0, tp.x0 - 6, tp.y0, tp.y1) > 50);
    assert!(dark(tp.x0, tp.x1, tp.y1 + 6, plot::HEIGHT) > 100);
    // The write was atomic: nothing but the PNG in the directory.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["thermo.png"]);
}

#[test]
fn plot_handles_degenerate_input() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.png");
    for rows in [
        vec![],
        vec![row(0)],
        vec![
            row(0),
            ThermoRow {
                temperature: f64::NAN,
                ..row(1)
            },
            row(2),
        ],
    ] {
        plot::thermo_png(&rows, &path).unwrap();
        let img = decode(&path);
        assert_eq!((img.0, img.1), (900, 600));
    }
    let msg = plot::thermo_png(&[row(0)], &dir.path().join("no/such/dir.png"))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("dir.png"), "{msg}");
}

#[test]
fn tick_labels_are_readable() {
    let (ticks, step) = plot::nice_ticks(0.0, 1.0, 5);
    assert_eq!(step, 0.2);
    assert_eq!(ticks.len(), 6);
    assert_eq!(plot::tick_label(ticks[3], step), "0.6");
    assert_eq!(plot::tick_label(300.0, 0.5), "300.0");
    assert_eq!(plot::tick_label(-2e-7, 1e-7), "-2e-7");
    assert_eq!(plot::tick_label(1e-20, 0.1), "0.0");
}
