//! write → read reproduces frames bit for bit, for random systems and for every fixture.

use std::path::Path;

use halo_core::{elements, Cell, System, Vec3};
use halo_io::extxyz::parse_value;
use halo_io::lammps::{self, AtomStyle};
use halo_io::{read, read_str, write_string, Column, ColumnData, Format, Frame, Value};
use proptest::prelude::*;

/// Debug formatting prints the shortest text that round-trips, so equal strings mean equal
/// bits (signed zeros included).
fn bits(frame: &Frame) -> String {
    format!("{frame:?}")
}

fn round_trip(frame: &Frame, format: Format) -> Frame {
    let text = write_string(std::slice::from_ref(frame), format).unwrap();
    let mut back = read_str(&text, format, "rt").unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(back.len(), 1);
    back.pop().unwrap()
}

const SYMBOLS: [&str; 8] = ["H", "C", "O", "Si", "Fe", "Cu", "Zr", "Au"];

/// Any finite f64, including huge, tiny and subnormal values and signed zeros.
fn any_finite() -> impl Strategy<Value = f64> + Clone {
    prop_oneof![
        3 => -50.0..50.0f64,
        1 => prop::num::f64::NORMAL | prop::num::f64::SUBNORMAL | prop::num::f64::ZERO,
    ]
}

fn vec3(s: impl Strategy<Value = f64> + Clone) -> impl Strategy<Value = Vec3> {
    [s.clone(), s.clone(), s]
}

/// A right-handed triclinic cell: any rows, with handedness fixed by flipping c.
fn triclinic() -> impl Strategy<Value = [[f64; 3]; 3]> {
    [vec3(-8.0..8.0f64), vec3(-8.0..8.0f64), vec3(-8.0..8.0f64)].prop_filter_map(
        "well-conditioned cell",
        |mut h| {
            if halo_core::cell::det(&h) < 0.0 {
                h[2] = h[2].map(|x| -x);
            }
            let ok = Cell::periodic(h).is_ok_and(|c| c.face_distances().iter().all(|&d| d > 0.5));
            ok.then_some(h)
        },
    )
}

/// LAMMPS' restricted triclinic form: lower-triangular with a positive diagonal.
fn lower_triangular() -> impl Strategy<Value = [[f64; 3]; 3]> {
    (vec3(0.5..20.0f64), vec3(-5.0..5.0f64))
        .prop_map(|(d, t)| [[d[0], 0.0, 0.0], [t[0], d[1], 0.0], [t[1], t[2], d[2]]])
}

fn system(
    n: std::ops::Range<usize>,
    cell: impl Strategy<Value = Option<Cell>>,
) -> impl Strategy<Value = System> {
    (
        prop::collection::vec((0..SYMBOLS.len(), vec3(any_finite())), n),
        cell,
    )
        .prop_map(|(atoms, cell)| {
            let symbols: Vec<&str> = atoms.iter().map(|a| SYMBOLS[a.0]).collect();
            let positions = atoms.iter().map(|a| a.1).collect();
            System::from_symbols(&symbols, positions, cell).unwrap()
        })
}

/// Velocities of a realistic size (|v| up to ~1 Å/fs, or exactly zero).
fn velocities(n: usize) -> impl Strategy<Value = Vec<Vec3>> {
    let v = prop_oneof![1 => Just(0.0), 8 => -1.0..1.0f64];
    prop::collection::vec(vec3(v), n)
}

fn info_value() -> impl Strategy<Value = Value> {
    let word = "[a-zA-Z_ \"'=\\\\{}\\[\\],.-]{0,10}".prop_filter("must read back as text", |s| {
        parse_value(s) == Value::Str(s.clone())
    });
    prop_oneof![
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        any_finite().prop_map(Value::Float),
        word.prop_map(Value::Str),
        prop::collection::vec(any::<bool>(), 2..5).prop_map(Value::Bools),
        prop::collection::vec(any::<i64>(), 2..5).prop_map(Value::Ints),
        prop::collection::vec(any_finite(), 2..10).prop_map(Value::Floats),
    ]
}

fn column(n: usize) -> impl Strategy<Value = Column> {
    (1usize..4).prop_flat_map(move |width| {
        let len = n * width;
        prop_oneof![
            prop::collection::vec(any_finite(), len).prop_map(ColumnData::Real),
            prop::collection::vec(any::<i64>(), len).prop_map(ColumnData::Int),
            prop::collection::vec(any::<bool>(), len).prop_map(ColumnData::Bool),
            prop::collection::vec("[a-zA-Z0-9_.+-]{1,6}", len).prop_map(ColumnData::Str),
        ]
        .prop_map(move |data| Column { width, data })
    })
}

/// A frame for extxyz: any cell or none, any pbc, custom masses, charges, info and arrays.
fn xyz_frame() -> impl Strategy<Value = Frame> {
    let cell = prop_oneof![
        1 => Just(None),
        3 => (triclinic(), any::<[bool; 3]>()).prop_map(|(h, p)| Some(Cell::new(h, p).unwrap())),
    ];
    system(0..8, cell).prop_flat_map(|sys| {
        let n = sys.len();
        (
            Just(sys),
            prop::option::of(velocities(n)),
            prop::option::of(prop::collection::vec(any_finite(), n)),
            prop::option::of(prop::collection::vec(0.5..300.0f64, n)),
            prop::collection::vec(("[a-z][a-z0-9_]{0,6}", info_value()), 0..5),
            prop::collection::vec(("[a-z][a-zA-Z0-9_]{0,6}", column(n)), 0..4),
        )
            .prop_map(|(mut sys, vel, charges, masses, info, arrays)| {
                sys.velocities = vel;
                sys.charges = charges;
                if let Some(m) = masses {
                    sys.masses = m;
                }
                let mut f = Frame::new(sys);
                for (k, v) in info {
                    if !["pbc"].contains(&k.as_str()) {
                        f.set_info(&k, v);
                    }
                }
                for (k, c) in arrays {
                    let reserved = ["pos", "masses", "momenta", "vel", "velo", "velocities"];
                    if !reserved.contains(&k.as_str()) {
                        f.set_array(&k, c);
                    }
                }
                f
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn extxyz_round_trips(frames in prop::collection::vec(xyz_frame(), 1..4)) {
        let text = write_string(&frames, Format::ExtXyz).unwrap();
        let back = read_str(&text, Format::ExtXyz, "rt").unwrap_or_else(|e| panic!("{e}\n{text}"));
        prop_assert_eq!(back.len(), frames.len());
        for (mut got, want) in back.into_iter().zip(&frames) {
            // Velocities pass through ASE momenta (v / fs · m, then p / m · fs): not bit-exact,
            // but within a few ulp of each component.
            match (&got.system.velocities, &want.system.velocities) {
                (Some(g), Some(w)) => {
                    for (gv, wv) in g.iter().flatten().zip(w.iter().flatten()) {
                        prop_assert!((gv - wv).abs() <= 3.0 * f64::EPSILON * wv.abs(), "{gv} vs {wv}");
                    }
                }
                (g, w) => prop_assert_eq!(g.is_some(), w.is_some()),
            }
            got.system.velocities.clone_from(&want.system.velocities);
            prop_assert_eq!(bits(&got), bits(want));
        }
    }

    #[test]
    fn lammps_round_trips(
        sys in system(1..10, lower_triangular().prop_map(|h| Some(Cell::periodic(h).unwrap()))),
        vel in any::<bool>(),
        charges in any::<bool>(),
        seed in any::<u64>(),
        origin in prop::option::of((vec3(-30.0..30.0f64), vec3(-30.0..30.0f64))),
        sparse_ids in any::<bool>(),
    ) {
        let n = sys.len();
        let mut rng = seed;
        let mut next = || {
            rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (rng >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let mut sys = sys;
        if vel {
            sys.velocities = Some((0..n).map(|_| [next() * 1e-300, next(), next() * 1e300]).collect());
        }
        if charges {
            sys.charges = Some((0..n).map(|_| next()).collect());
        }
        // Custom per-type masses (LAMMPS stores one mass per type).
        let type_mass: Vec<f64> = sys.type_names.iter().map(|_| 1.0 + next().abs() * 100.0).collect();
        sys.masses = sys.types.iter().map(|&t| type_mass[t]).collect();
        let mut frame = Frame::new(sys);
        if let Some((lo, hi)) = origin {
            // A box read from a data file: lengths are hi − lo, the origin is lo.
            let h = frame.system.cell.unwrap();
            let m = h.matrix();
            let len = [0, 1, 2].map(|k| (lo[k] + 1.0 + hi[k].abs()) - lo[k]);
            let cell = [[len[0], 0.0, 0.0], [m[1][0], len[1], 0.0], [m[2][0], m[2][1], len[2]]];
            frame.system.cell = Some(Cell::periodic(cell).unwrap());
            frame.set_info(lammps::ORIGIN_KEY, Value::Floats(lo.to_vec()));
        }
        if sparse_ids {
            let ids = (0..n as i64).map(|i| 3 * i + 7).collect();
            frame.set_array("id", Column { width: 1, data: ColumnData::Int(ids) });
        }
        let back = round_trip(&frame, Format::LammpsData);
        prop_assert_eq!(bits(&back), bits(&frame));
    }

    #[test]
    fn poscar_round_trips(
        sys in system(1..10, triclinic().prop_map(|h| Some(Cell::periodic(h).unwrap()))),
        vel in any::<bool>(),
        mask in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let n = sys.len();
        let mut sys = sys;
        if vel {
            sys.velocities = Some((0..n).map(|i| [i as f64 * 0.1, -1e-310, seed as f64 * 1e-9]).collect());
        }
        let mut frame = Frame::new(sys);
        if mask {
            let flags = (0..3 * n).map(|k| (seed >> (k % 64)) & 1 == 1).collect();
            frame.set_array("move_mask", Column { width: 3, data: ColumnData::Bool(flags) });
        }
        let back = round_trip(&frame, Format::Poscar);
        prop_assert_eq!(bits(&back), bits(&frame));
    }

    #[test]
    fn lammps_rotates_general_cells(
        h in triclinic(),
        frac in prop::collection::vec(vec3(0.0..1.0f64), 1..6),
    ) {
        let cell = Cell::periodic(h).unwrap();
        let positions: Vec<Vec3> = frac.iter().map(|&s| cell.to_cart(s)).collect();
        let symbols = vec!["Cu"; frac.len()];
        let mut sys = System::from_symbols(&symbols, positions.clone(), Some(cell)).unwrap();
        sys.velocities = Some(positions);
        let back = round_trip(&Frame::new(sys), Format::LammpsData).system;
        let bc = back.cell.unwrap();
        for k in 0..3 {
            prop_assert!((bc.lengths()[k] - cell.lengths()[k]).abs() < 1e-12 * cell.lengths()[k]);
            prop_assert!((bc.angles()[k] - cell.angles()[k]).abs() < 1e-9);
        }
        let m = bc.matrix();
        prop_assert!(m[0][1] == 0.0 && m[0][2] == 0.0 && m[1][2] == 0.0);
        // Same fractional coordinates; velocities rotate like positions.
        let v = back.velocities.unwrap();
        for (i, s) in frac.iter().enumerate() {
            let got = bc.to_frac(back.positions[i]);
            let gv = bc.to_frac(v[i]);
            for k in 0..3 {
                prop_assert!((got[k] - s[k]).abs() < 1e-10, "{got:?} vs {s:?}");
                prop_assert!((gv[k] - s[k]).abs() < 1e-10);
            }
        }
    }
}

/// Reading a fixture, writing it in its own format and reading that gives the same frames.
#[test]
fn fixtures_round_trip_in_their_own_format() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let Some(format) = Format::from_path(&path) else {
            continue;
        };
        let frames = read(&path, Some(format)).unwrap();
        let text = write_string(&frames, format).unwrap();
        let mut back = read_str(&text, format, "rt").unwrap();
        if format == Format::ExtXyz {
            for (b, f) in back.iter_mut().zip(&frames) {
                b.system.velocities.clone_from(&f.system.velocities);
            }
        }
        let want: Vec<String> = frames.iter().map(bits).collect();
        let got: Vec<String> = back.iter().map(bits).collect();
        assert_eq!(got, want, "{}", path.display());
        n += 1;
    }
    assert!(n >= 9, "only {n} fixtures found");
}

/// Converting between formats keeps what both formats hold.
#[test]
fn conversions_keep_the_structure() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let contcar = &read(&dir.join("CONTCAR_sd"), None).unwrap()[0];
    // POSCAR → extxyz → POSCAR keeps positions, cell and selective dynamics exactly.
    let xyz = round_trip(contcar, Format::ExtXyz);
    assert_eq!(xyz.array("move_mask"), contcar.array("move_mask"));
    let mut again = round_trip(&xyz, Format::Poscar);
    again
        .system
        .velocities
        .clone_from(&contcar.system.velocities);
    assert_eq!(bits(&again), bits(contcar));

    // LAMMPS → extxyz → LAMMPS: extxyz keeps the origin and ids as info/arrays.
    let data = &read(&dir.join("charge_tri.data"), None).unwrap()[0];
    let xyz = round_trip(data, Format::ExtXyz);
    assert_eq!(xyz.system.charges, data.system.charges);
    let text = lammps::write_string(&xyz, Some(AtomStyle::Charge)).unwrap();
    let back = lammps::read_str(&text, "rt", None).unwrap();
    assert_eq!(back.system.positions, data.system.positions);
    assert_eq!(back.system.cell, data.system.cell);

    // Masses that are not standard survive extxyz via a masses column.
    let masses: Vec<f64> = data.system.masses.clone();
    assert!(masses
        .iter()
        .zip(&data.system.types)
        .any(|(m, &t)| { elements::mass_of(&data.system.type_names[t]) != Some(*m) }));
    assert_eq!(xyz.system.masses, masses);

    // An explicit atomic style drops charges.
    let text = lammps::write_string(data, Some(AtomStyle::Atomic)).unwrap();
    assert!(text.contains("Atoms # atomic"));
    assert!(lammps::read_str(&text, "rt", None)
        .unwrap()
        .system
        .charges
        .is_none());
}
