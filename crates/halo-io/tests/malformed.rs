//! Malformed input gives an error naming the file, the line and what was expected.

use halo_io::{read, read_str, Format};

/// Asserts that `text` fails to parse at `line` with a message containing every `needle`.
#[track_caller]
fn fails(format: Format, text: &str, line: usize, needles: &[&str]) {
    let e = match read_str(text, format, "bad.file") {
        Ok(frames) => panic!("parsed into {} frame(s):\n{text}", frames.len()),
        Err(e) => e,
    };
    assert_eq!(e.line, Some(line), "{e}");
    let shown = e.to_string();
    assert!(shown.starts_with(&format!("bad.file:{line}: ")), "{shown}");
    for needle in needles {
        assert!(e.message.contains(needle), "`{needle}` not in: {shown}");
    }
}

/// `base` with 1-based line `no` replaced (or removed, for `None`).
fn with_line(base: &str, no: usize, new: Option<&str>) -> String {
    let mut lines: Vec<&str> = base.lines().collect();
    match new {
        Some(l) => lines[no - 1] = l,
        None => {
            lines.remove(no - 1);
        }
    }
    lines.join("\n") + "\n"
}

const XYZ: &str = r#"2
Lattice="4.0 0.0 0.0 0.0 4.0 0.0 0.0 0.0 4.0" Properties=species:S:1:pos:R:3 pbc="T T T"
H 0.0 0.0 0.0
O 1.0 0.0 0.0
"#;

#[test]
fn extxyz_errors_name_the_line() {
    use Format::ExtXyz as F;
    assert_eq!(read_str(XYZ, F, "ok").unwrap().len(), 1);
    fails(
        F,
        &with_line(XYZ, 4, None),
        4,
        &["end of file", "atom line 2 of 2"],
    );
    fails(F, "2\n", 2, &["end of file", "comment line"]);
    fails(
        F,
        &with_line(XYZ, 4, Some("O 1.0 0.0")),
        4,
        &["expected 4 columns", "found 3"],
    );
    fails(
        F,
        &with_line(XYZ, 4, Some("O 1.0 0.0 0.0 7")),
        4,
        &["expected 4 columns", "found 5"],
    );
    fails(
        F,
        &with_line(XYZ, 4, Some("O NaN 0.0 0.0")),
        4,
        &["pos", "finite", "`NaN`"],
    );
    fails(F, &with_line(XYZ, 3, Some("H 0.0 inf 0.0")), 3, &["finite"]);
    fails(
        F,
        &with_line(XYZ, 3, Some("H 0.0 x 0.0")),
        3,
        &["real number", "`x`"],
    );
    fails(
        F,
        &with_line(XYZ, 3, Some("Xx 0.0 0.0 0.0")),
        3,
        &["unknown chemical symbol `Xx`"],
    );
    fails(
        F,
        &with_line(XYZ, 1, Some("two")),
        1,
        &["number of atoms", "`two`"],
    );

    let singular = XYZ.replace("0.0 0.0 4.0\"", "0.0 0.0 0.0\"");
    fails(F, &singular, 2, &["Lattice", "singular"]);
    let left = XYZ.replace("0.0 0.0 4.0\"", "0.0 0.0 -4.0\"");
    fails(F, &left, 2, &["Lattice", "left-handed"]);
    let short = XYZ.replace("0.0 0.0 4.0\"", "0.0 4.0\"");
    fails(F, &short, 2, &["Lattice", "9 numbers", "found 8"]);
    let nan = XYZ.replace("0.0 0.0 4.0\"", "0.0 0.0 nan\"");
    fails(F, &nan, 2, &["Lattice", "finite"]);

    let no_lattice = with_line(XYZ, 2, Some("Properties=species:S:1:pos:R:3 pbc=\"T F F\""));
    fails(F, &no_lattice, 2, &["periodic", "no Lattice"]);
    let props = with_line(XYZ, 2, Some("Properties=species:S:1:pos:R:2"));
    fails(F, &props, 2, &["pos:R:3", "found pos:R:2"]);
    let quote = with_line(XYZ, 2, Some("Properties=species:S:1:pos:R:3 a=\"open"));
    fails(F, &quote, 2, &["unterminated"]);
    let pbc = XYZ.replace("pbc=\"T T T\"", "pbc=\"T T\"");
    fails(F, &pbc, 2, &["pbc", "three flags"]);
    let mass = with_line(XYZ, 2, Some("Properties=species:S:1:pos:R:3:masses:R:1"));
    let mass = with_line(
        &with_line(&mass, 3, Some("H 0 0 0 1.0")),
        4,
        Some("O 1 0 0 -2"),
    );
    fails(F, &mass, 4, &["mass", "positive"]);

    // An error in a later frame names that frame's line.
    let two = format!("{XYZ}{}", with_line(XYZ, 3, Some("H 0.0 0.0")));
    fails(F, &two, 7, &["expected 4 columns"]);
}

const DATA: &str = "LAMMPS data
      
2 atoms
1 atom types
0.0 4.0 xlo xhi
0.0 4.0 ylo yhi
0.0 4.0 zlo zhi

Masses

1 1.008 # H

Atoms # atomic

1 1 0.0 0.0 0.0
2 1 1.0 0.0 0.0
";

#[test]
fn lammps_errors_name_the_line() {
    use Format::LammpsData as F;
    assert_eq!(read_str(DATA, F, "ok").unwrap()[0].system.len(), 2);
    fails(
        F,
        &with_line(DATA, 16, None),
        16,
        &["end of file", "line 2 of 2 of the Atoms section"],
    );
    fails(F, "", 1, &["end of file", "title"]);
    fails(
        F,
        &with_line(DATA, 16, Some("2 1 1.0 0.0")),
        16,
        &[
            "expected 5 or 8 columns (id type x y z [ix iy iz])",
            "atomic",
            "found 4",
        ],
    );
    fails(
        F,
        &with_line(DATA, 16, Some("2 1 nan 0.0 0.0")),
        16,
        &["position", "finite"],
    );
    fails(
        F,
        &with_line(DATA, 5, Some("4.0 0.0 xlo xhi")),
        5,
        &["bad box", "left-handed"],
    );
    fails(
        F,
        &with_line(DATA, 5, Some("0.0 0.0 xlo xhi")),
        5,
        &["bad box", "singular"],
    );
    fails(
        F,
        &with_line(DATA, 5, Some("0.0 inf xlo xhi")),
        5,
        &["finite"],
    );
    fails(
        F,
        &with_line(DATA, 5, Some("0.0 xlo xhi")),
        5,
        &["needs 2 value(s), found 1"],
    );
    fails(
        F,
        &with_line(DATA, 16, Some("2 3 1.0 0.0 0.0")),
        16,
        &["atom type in 1..=1", "`3`"],
    );
    fails(
        F,
        &with_line(DATA, 16, Some("1 1 1.0 0.0 0.0")),
        16,
        &["atom id 1 appears twice"],
    );
    fails(
        F,
        &with_line(DATA, 16, Some("0 1 1.0 0.0 0.0")),
        16,
        &["positive atom id"],
    );
    fails(
        F,
        &with_line(DATA, 16, Some("2 1 1.0 0.0 0.0 0 1.5 0")),
        16,
        &["image flag"],
    );
    fails(
        F,
        &with_line(DATA, 13, Some("Atoms # full")),
        13,
        &["`full` is not supported"],
    );
    fails(
        F,
        &with_line(DATA, 4, Some("1 atom kinds")),
        4,
        &["header line", "`1 atom kinds`"],
    );
    fails(
        F,
        &with_line(DATA, 3, Some("3 atoms")),
        17,
        &["end of file", "line 3 of 3"],
    );
    fails(
        F,
        &with_line(DATA, 3, Some("1 atoms")),
        16,
        &["section keyword", "`2 1 1.0 0.0 0.0`"],
    );
    fails(
        F,
        &with_line(DATA, 3, Some("100 atoms")),
        3,
        &["100 atoms declared", "only 16 lines"],
    );
    fails(
        F,
        &with_line(DATA, 11, Some("1 -1.0")),
        11,
        &["mass", "positive"],
    );
    fails(
        F,
        &with_line(DATA, 11, Some("1")),
        11,
        &["expected 2 columns (type mass), found 1"],
    );

    let no_masses = DATA.replace("Masses\n\n1 1.008 # H\n", "");
    let e = read_str(&no_masses, F, "x").unwrap_err();
    assert!(
        e.message
            .contains("type 1 has no entry in a Masses section"),
        "{e}"
    );
    assert_eq!(e.line, Some(10), "{e}");

    let vel = format!("{DATA}\nVelocities\n\n1 0 0 0\n3 0 0 0\n");
    fails(F, &vel, 21, &["atom id 3", "not in Atoms"]);
    let vel = format!("{DATA}\nVelocities\n\n1 0 0 0\n2 0 0\n");
    fails(F, &vel, 21, &["expected 4 columns (id vx vy vz), found 3"]);
    let vel = format!("{DATA}\nVelocities\n\n1 0 0 0\n1 0 0 0\n");
    fails(F, &vel, 21, &["second velocity for atom id 1"]);
    let twice = format!("{DATA}\nMasses\n\n1 1.0\n");
    fails(F, &twice, 18, &["second `Masses` section"]);
    let general = with_line(DATA, 5, Some("4.0 0.0 0.0 avec"));
    fails(F, &general, 5, &["general triclinic"]);
}

const POSCAR: &str = "H2 molecule in a box
1.0
4.0 0.0 0.0
0.0 4.0 0.0
0.0 0.0 4.0
H
2
Direct
0.0 0.0 0.0
0.5 0.5 0.5
";

#[test]
fn poscar_errors_name_the_line() {
    use Format::Poscar as F;
    assert_eq!(read_str(POSCAR, F, "ok").unwrap()[0].system.len(), 2);
    fails(
        F,
        &with_line(POSCAR, 10, None),
        10,
        &["end of file", "coordinates of atom 2 of 2"],
    );
    fails(F, "", 1, &["end of file", "comment line"]);
    fails(
        F,
        "c\n1.0\n1 0 0\n0 1 0\n",
        5,
        &["end of file", "lattice vector c"],
    );
    fails(
        F,
        &with_line(POSCAR, 10, Some("0.5 0.5")),
        10,
        &["expected 3 columns (x y z), found 2"],
    );
    fails(
        F,
        &with_line(POSCAR, 10, Some("0.5 NaN 0.5")),
        10,
        &["finite", "`NaN`"],
    );
    fails(
        F,
        &with_line(POSCAR, 4, Some("0.0 4.0")),
        4,
        &["expected 3 numbers (lattice vector b)"],
    );
    fails(
        F,
        &with_line(POSCAR, 5, Some("0.0 0.0 0.0")),
        3,
        &["bad lattice (lines 3-5)", "singular"],
    );
    fails(
        F,
        &with_line(POSCAR, 5, Some("0.0 0.0 -4.0")),
        3,
        &["bad lattice", "left-handed"],
    );
    fails(
        F,
        &with_line(POSCAR, 5, Some("0.0 0.0 inf")),
        5,
        &["finite"],
    );
    fails(
        F,
        &with_line(POSCAR, 2, Some("scale")),
        2,
        &["scaling factor", "`scale`"],
    );
    fails(F, &with_line(POSCAR, 2, Some("0")), 2, &["non-zero"]);
    fails(
        F,
        &with_line(POSCAR, 6, Some("Xx")),
        6,
        &["`Xx` is not a chemical element"],
    );
    fails(
        F,
        &with_line(POSCAR, 7, Some("1 1")),
        7,
        &["2 counts for 1 species names on line 6"],
    );
    fails(
        F,
        &with_line(POSCAR, 7, Some("two")),
        7,
        &["atom counts", "`two`"],
    );
    fails(
        F,
        &with_line(POSCAR, 7, Some("1")),
        10,
        &["blank line", "counts"],
    );
    fails(
        F,
        &with_line(POSCAR, 8, Some("0.0 0.0 0.0")),
        8,
        &["`Direct` or `Cartesian`"],
    );
    let sd = with_line(POSCAR, 8, Some("Selective dynamics\nDirect"));
    fails(F, &sd, 10, &["6 columns (x y z and 3 T/F flags), found 3"]);
    let sd = sd.replace("0.0 0.0 0.0\n", "0.0 0.0 0.0 T T X\n");
    fails(F, &sd, 10, &["flag T or F", "`X`"]);
    // VASP 4: species from the comment, or an error naming the counts line.
    let vasp4 = with_line(&with_line(POSCAR, 6, None), 1, Some("H"));
    assert_eq!(
        read_str(&vasp4, F, "ok").unwrap()[0].system.type_names,
        ["H"]
    );
    fails(
        F,
        &with_line(POSCAR, 6, None),
        6,
        &["no species line", "1 element symbols"],
    );
    let vel = format!("{POSCAR}\n0.1 0.2 0.3\n");
    fails(F, &vel, 13, &["end of file", "velocity of atom 2 of 2"]);
    let vel = format!("{POSCAR}\n0.1 0.2 0.3\n0.1 0.2\n");
    fails(F, &vel, 13, &["expected 3 columns (vx vy vz"]);
    let vel = format!("{POSCAR}Direct\n0.1 0.2 0.3\n0.1 0.2 0.3\n");
    fails(F, &vel, 11, &["direct coordinates", "not supported"]);
}

#[test]
fn read_reports_file_problems() {
    let dir = std::env::temp_dir().join(format!("halo-io-malformed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    let bad_utf8 = dir.join("bad.xyz");
    std::fs::write(&bad_utf8, b"1\ncomment\nH 0 0 \xff\xfe 0\n").unwrap();
    let e = read(&bad_utf8, None).unwrap_err();
    assert_eq!(e.line, Some(3), "{e}");
    assert!(e.to_string().contains("bad.xyz:3: not valid UTF-8"), "{e}");

    let e = read(&dir.join("missing.xyz"), None).unwrap_err();
    assert!(e.to_string().contains("missing.xyz"), "{e}");
    assert_eq!(e.line, None);

    let e = read(&dir.join("structure.txt"), None).unwrap_err();
    assert!(e.message.contains("cannot tell the file format"), "{e}");

    // Errors from read() carry the real path.
    let trunc = dir.join("POSCAR");
    std::fs::write(&trunc, "c\n1.0\n").unwrap();
    let e = read(&trunc, None).unwrap_err();
    assert_eq!(e.path, trunc);
    assert_eq!(e.line, Some(3));
    std::fs::remove_dir_all(&dir).unwrap();
}
