//! Format features on hand-written inputs, with expected values worked out by hand.

use halo_core::{Cell, System};
use halo_io::lammps::{self, AtomStyle};
use halo_io::{read_str, write_string, Column, ColumnData, Format, Frame, Value};

fn one(text: &str, format: Format) -> Frame {
    let mut frames = read_str(text, format, "t").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(frames.len(), 1);
    frames.pop().unwrap()
}

#[test]
fn extxyz_dialect() {
    let text = "2\n\
        Lattice=\"2 0 0 0 3 0 0 0 4\" Properties=species:S:1:pos:R:3:vel:R:3:Z:I:1 \
        is_bulk note = 'a b' energy=-1.5 n=3\n\
        SI 0 0 0 0.5 0 0 14\n\
        o 1 1 1 0 0 -0.25 8\n\
        \n\
        1\n\
        Properties=Z:I:1:pos:R:3\n\
        26 0.5 0.5 0.5\n\n";
    let frames = read_str(text, Format::ExtXyz, "t").unwrap();
    assert_eq!(frames.len(), 2);
    let f = &frames[0];
    let s = &f.system;
    assert_eq!(s.type_names, ["Si", "O"]);
    assert_eq!(s.pbc(), [true; 3], "Lattice without pbc is periodic");
    assert_eq!(
        s.cell.unwrap().matrix(),
        &[[2.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 4.0]]
    );
    assert_eq!(
        s.velocities.as_deref(),
        Some(&[[0.5, 0.0, 0.0], [0.0, 0.0, -0.25]][..])
    );
    assert_eq!(s.masses, [28.085, 15.999]);
    assert_eq!(f.info("is_bulk"), Some(&Value::Bool(true)));
    assert_eq!(f.info("note"), Some(&Value::Str("a b".into())));
    assert_eq!(f.energy(), Some(-1.5));
    assert_eq!(f.info("n"), Some(&Value::Int(3)));
    // With a species column, Z is just another array.
    assert_eq!(f.array("Z").unwrap().data, ColumnData::Int(vec![14, 8]));
    // Second frame: atomic numbers give the species; no Lattice means no cell.
    let g = &frames[1].system;
    assert_eq!(g.type_names, ["Fe"]);
    assert!(g.cell.is_none());
    assert!(frames[1].arrays.is_empty());
}

#[test]
fn extxyz_momenta_become_velocities() {
    // p = m v / fs: an H atom (1.008 amu) at 0.01 Å/fs has momentum 1.008·0.01/fs.
    let p = 1.008 * 0.01 / halo_io::extxyz::ASE_FS;
    let text = format!("1\nProperties=species:S:1:pos:R:3:momenta:R:3\nH 0 0 0 {p} 0 0\n");
    let v = one(&text, Format::ExtXyz).system.velocities.unwrap();
    assert!((v[0][0] - 0.01).abs() < 1e-15, "{}", v[0][0]);
}

#[test]
fn lammps_features() {
    let text = "# comment-only title
  4 atoms # counts may carry comments
  2 atom types
  1 bonds
  -1.0 9.0 xlo xhi
  0.0 10.0 ylo yhi
  0.0 10.0 zlo zhi

Pair Coeffs # skipped

1 1.0 1.0
2 1.0 1.0

Masses

1 15.999
2 1234.5

Atoms

3 2 0.5 1.0 2.0 3.0
1 1 -0.5 1.0 1.0 1.0 1 0 -1
4 1 0.0 2.0 2.0 2.0
2 2 0.0 3.0 3.0 3.0 0 0 0

Velocities

2 1000 0 0
1 0 -2.5e3 0
3 0 0 1
4 0 0 0

Bonds

1 1 1 2
";
    let f = one(text, Format::LammpsData);
    let s = &f.system;
    // Sorted by id; the charge style follows from 6/9 columns.
    assert_eq!(s.charges.as_deref(), Some(&[-0.5, 0.0, 0.5, 0.0][..]));
    // Names: 15.999 is oxygen; 1234.5 matches no element, so the type number.
    assert_eq!(s.type_names, ["O", "2"]);
    assert_eq!(s.types, [0, 1, 1, 0]);
    assert_eq!(s.masses, [15.999, 1234.5, 1234.5, 15.999]);
    // Image flags (1, 0, -1) with a 10 Å cube unwrap (1, 1, 1) to (11, 1, -9).
    assert_eq!(s.positions[0], [11.0, 1.0, -9.0]);
    assert_eq!(s.positions[2], [1.0, 2.0, 3.0]);
    // Å/ps → Å/fs.
    let v = s.velocities.as_ref().unwrap();
    assert_eq!(v[0], [0.0, -2.5, 0.0]);
    assert_eq!(v[1], [1.0, 0.0, 0.0]);
    assert_eq!(v[2], [0.0, 0.0, 0.001]);
    assert_eq!(
        f.info(lammps::ORIGIN_KEY),
        Some(&Value::Floats(vec![-1.0, 0.0, 0.0]))
    );
    assert!(f.array("id").is_none(), "ids 1..=4 need no array");
    assert_eq!(s.pbc(), [true; 3]);

    // Written back: same system, origin restored.
    let again = one(&lammps::write_string(&f, None).unwrap(), Format::LammpsData);
    assert_eq!(again, f);
}

#[test]
fn lammps_type_labels_and_explicit_style() {
    let text = "labels

2 atoms
2 atom types
0 5 xlo xhi
0 5 ylo yhi
0 5 zlo zhi
1.0 0.5 -0.5 xy xz yz

Atom Type Labels

1 Ow
2 Hw

Masses

Ow 15.999
Hw 1.008

Atoms # atomic

10 Hw 1 1 1
20 1 2 2 2
";
    let f = one(text, Format::LammpsData);
    assert_eq!(f.system.type_names, ["Ow", "Hw"]);
    assert_eq!(f.system.types, [1, 0]);
    let h = f.system.cell.unwrap();
    assert_eq!(
        h.matrix(),
        &[[5.0, 0.0, 0.0], [1.0, 5.0, 0.0], [0.5, -0.5, 5.0]]
    );
    assert_eq!(f.array("id").unwrap().data, ColumnData::Int(vec![10, 20]));
    // An explicit style wins over guessing: 5 columns are not the charge style.
    let e = lammps::read_str(
        &text.replace("Atoms # atomic", "Atoms"),
        "t",
        Some(AtomStyle::Charge),
    )
    .unwrap_err();
    assert!(e.message.contains("6 or 9 columns"), "{e}");
    let back = one(&lammps::write_string(&f, None).unwrap(), Format::LammpsData);
    assert_eq!(back, f);
}

#[test]
fn poscar_scaling_and_species() {
    // Negative scale = target volume: a unit cube scaled to 8 Å³ is a 2 Å cube, and
    // Cartesian coordinates scale with it; `Fe_pv` is iron.
    let text = "cube\n-8\n1 0 0\n0 1 0\n0 0 1\nFe_pv\n1\nkartesian\n0.5 0.25 0\n";
    let s = one(text, Format::Poscar).system;
    assert_eq!(
        s.cell.unwrap().matrix(),
        &[[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 2.0]]
    );
    assert_eq!(s.positions[0], [1.0, 0.5, 0.0]);
    assert_eq!(s.type_names, ["Fe"]);

    // Three scale factors scale x, y, z; VASP 4 takes species from the comment; species
    // blocks may repeat.
    let text =
        "Ga As Ga\n2 3 4\n1 0 0\n0 1 0\n0 0 1\n1 1 1\nDirect\n0.5 0.5 0.5\n0 0 0\n0.25 0 0\n";
    let s = one(text, Format::Poscar).system;
    assert_eq!(
        s.cell.unwrap().matrix(),
        &[[2.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 4.0]]
    );
    assert_eq!(s.positions[0], [1.0, 1.5, 2.0]);
    assert_eq!(s.type_names, ["Ga", "As"]);
    assert_eq!(s.types, [0, 1, 0]);

    // A CONTCAR lattice-velocity block is skipped on the way to the atom velocities.
    let text = "x\n1\n3 0 0\n0 3 0\n0 0 3\nH\n1\nDirect\n0 0 0\n\
                Lattice velocities and vectors\n1\n0 0 0\n0 0 0\n0 0 0\n3 0 0\n0 3 0\n0 0 3\n\
                \n0.1 0.2 0.3\n";
    let s = one(text, Format::Poscar).system;
    assert_eq!(s.velocities.unwrap(), [[0.1, 0.2, 0.3]]);
}

#[test]
fn writers_refuse_what_formats_cannot_hold() {
    let cube = Cell::orthorhombic(4.0, 4.0, 4.0).unwrap();
    let water = System::from_symbols(&["O", "H", "H"], vec![[0.0; 3]; 3], Some(cube)).unwrap();
    let err = |f: &Frame, fmt: Format| {
        write_string(std::slice::from_ref(f), fmt)
            .unwrap_err()
            .message
    };

    let mut free = Frame::new(water.clone());
    free.system.cell = None;
    assert!(err(&free, Format::LammpsData).contains("need a cell"));
    assert!(err(&free, Format::Poscar).contains("need a cell"));
    assert!(write_string(&[free], Format::ExtXyz).is_ok());

    let mut named = Frame::new(water.clone());
    named.system.type_names[0] = "Ow".into();
    assert!(err(&named, Format::ExtXyz).contains("chemical symbols"));
    assert!(err(&named, Format::Poscar).contains("chemical symbols"));
    assert!(write_string(std::slice::from_ref(&named), Format::LammpsData).is_ok());

    let mut heavy = Frame::new(water.clone());
    heavy.system.masses[2] = 2.014;
    assert!(err(&heavy, Format::LammpsData).contains("one mass per type"));

    let mut reserved = Frame::new(water.clone());
    reserved.set_array("pos", Column::vec3(&[[0.0; 3]; 3]));
    assert!(err(&reserved, Format::ExtXyz).contains("reserved"));
    let mut short = Frame::new(water.clone());
    short.set_array("forces", Column::vec3(&[[0.0; 3]; 2]));
    assert!(err(&short, Format::ExtXyz).contains("6 values, expected 3 atoms × width 3"));
    let mut info = Frame::new(water.clone());
    info.set_info("pbc", Value::Bool(true));
    assert!(err(&info, Format::ExtXyz).contains("reserved"));
    info.info.clear();
    info.set_info("note", Value::Str("two\nlines".into()));
    assert!(err(&info, Format::ExtXyz).contains("line break"));

    let mut mask = Frame::new(water);
    mask.set_array("move_mask", Column::real(1, vec![1.0; 3]));
    assert!(err(&mask, Format::Poscar).contains("move_mask"));
}
