//! Checkpoints: documented layout, bit-exact round trips, and clean failures on every kind
//! of damage; atomic replacement on disk.

use std::path::Path;

use halo_core::Cell;
use halo_md::checkpoint::{self, Checkpoint, MAGIC, VERSION};
use halo_md::MdError;
use proptest::prelude::*;

/// A small checkpoint with a triclinic, partly periodic cell.
fn small() -> Checkpoint {
    Checkpoint {
        step: 1234,
        time: 617.0,
        seed: 99,
        cell: Some(
            Cell::new(
                [[10.0, 0.0, 0.0], [1.5, 9.0, 0.0], [-0.5, 0.25, 11.0]],
                [true, true, false],
            )
            .unwrap(),
        ),
        type_names: vec!["Cu".into(), "O".into()],
        types: vec![0, 1, 0],
        mass: vec![63.546, 15.999, 63.546],
        x: vec![[0.1, 0.2, 0.3], [1.0, -2.0, 3.5], [9.9, 8.8, 7.7]],
        v: vec![[1e-3, -2e-3, 0.0], [-0.0, 5e-2, 1e-300], [0.01, 0.02, 0.03]],
        image: vec![[0, 0, 0], [-1, 2, 0], [i32::MAX, i32::MIN, 7]],
        integrator: "nose-hoover".into(),
        integrator_state: vec![0.5, -1.25, 3.0e10],
        outputs: vec![("thermo.log".into(), 4096), ("traj.xyz".into(), 1 << 40)],
        nranks: 4,
        model: "/models/cu.dp".into(),
    }
}

fn msg(r: Result<Checkpoint, String>) -> String {
    match r {
        Ok(ck) => panic!("damaged checkpoint accepted: {ck:?}"),
        Err(m) => m,
    }
}

/// Bitwise CRC-32 (IEEE, reflected, polynomial 0xEDB88320): an independent reference.
fn crc32_reference(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn reference_crc_matches_the_standard_check_value() {
    assert_eq!(crc32_reference(b"123456789"), 0xCBF4_3926);
}

#[test]
fn bytes_follow_the_documented_layout() {
    let ck = Checkpoint {
        step: 7,
        time: 3.5,
        seed: 1,
        cell: None,
        type_names: vec!["H".into()],
        types: vec![0],
        mass: vec![1.008],
        x: vec![[1.0, 2.0, 3.0]],
        v: vec![[-1.0, 0.5, 0.25]],
        image: vec![[1, -1, 0]],
        integrator: "nve".into(),
        integrator_state: vec![],
        outputs: vec![("t.log".into(), 10)],
        nranks: 2,
        model: "m".into(),
    };
    let mut p = Vec::new();
    let u64le = |p: &mut Vec<u8>, x: u64| p.extend_from_slice(&x.to_le_bytes());
    let f64le = |p: &mut Vec<u8>, x: f64| p.extend_from_slice(&x.to_le_bytes());
    u64le(&mut p, 7);
    f64le(&mut p, 3.5);
    u64le(&mut p, 1);
    u64le(&mut p, 2);
    u64le(&mut p, 1);
    p.extend_from_slice(b"m");
    u64le(&mut p, 3);
    p.extend_from_slice(b"nve");
    p.push(0); // no cell
    u64le(&mut p, 1);
    u64le(&mut p, 1);
    p.extend_from_slice(b"H");
    u64le(&mut p, 1); // natoms
    u64le(&mut p, 0); // type
    f64le(&mut p, 1.008);
    for x in [1.0, 2.0, 3.0, -1.0, 0.5, 0.25] {
        f64le(&mut p, x);
    }
    for i in [1i32, -1, 0] {
        p.extend_from_slice(&i.to_le_bytes());
    }
    u64le(&mut p, 0); // integrator state
    u64le(&mut p, 1);
    u64le(&mut p, 5);
    p.extend_from_slice(b"t.log");
    u64le(&mut p, 10);
    let mut expected = b"HALOMDCK".to_vec();
    expected.extend_from_slice(&1u32.to_le_bytes());
    u64le(&mut expected, p.len() as u64);
    expected.extend_from_slice(&p);
    let crc = crc32_reference(&expected);
    expected.extend_from_slice(&crc.to_le_bytes());

    assert_eq!(ck.to_bytes().unwrap(), expected);
    assert_eq!(Checkpoint::from_bytes(&expected).unwrap(), ck);
    assert_eq!(MAGIC, b"HALOMDCK");
    assert_eq!(VERSION, 1);
}

#[test]
fn small_checkpoint_round_trips_through_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.chk");
    let ck = small();
    checkpoint::write_atomic(&path, &ck).unwrap();
    let back = checkpoint::read(&path).unwrap();
    assert_eq!(back, ck);
    // PartialEq calls -0.0 and 0.0 equal; the bytes do not.
    assert_eq!(back.v[1][0].to_bits(), (-0.0f64).to_bits());
    assert_eq!(back.to_bytes().unwrap(), std::fs::read(&path).unwrap());
    assert_eq!(back.natoms(), 3);
}

#[test]
fn every_truncation_fails_cleanly() {
    let bytes = small().to_bytes().unwrap();
    for len in 0..bytes.len() {
        let m = msg(Checkpoint::from_bytes(&bytes[..len]));
        assert!(m.contains("truncated"), "length {len}: {m}");
    }
    // Through the file API too, with the path in the error.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.chk");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    match checkpoint::read(&path) {
        Err(MdError::Checkpoint { path: p, msg }) => {
            assert!(p.ends_with("cut.chk"), "{p}");
            assert!(msg.contains("truncated"), "{msg}");
        }
        other => panic!("expected a checkpoint error, got {other:?}"),
    }
}

#[test]
fn every_flipped_bit_is_caught() {
    let bytes = small().to_bytes().unwrap();
    let n = bytes.len();
    for i in 0..n {
        for bit in [0u8, 3, 7] {
            let mut bad = bytes.clone();
            bad[i] ^= 1 << bit;
            let m = msg(Checkpoint::from_bytes(&bad));
            let expected = match i {
                0..=7 => "bad magic",
                8..=11 => "format version",
                12..=19 => "", // the length: truncated or trailing bytes, either way named
                _ => "checksum mismatch",
            };
            assert!(m.contains(expected), "byte {i} bit {bit}: {m}");
        }
    }
}

#[test]
fn a_wrong_version_is_named() {
    let mut bytes = small().to_bytes().unwrap();
    bytes[8..12].copy_from_slice(&2u32.to_le_bytes());
    assert_eq!(
        msg(Checkpoint::from_bytes(&bytes)),
        "format version 2, but this halomd reads version 1"
    );
    let m = msg(Checkpoint::from_bytes(b"GARBAGE!and more bytes here"));
    assert_eq!(m, "not a halomd checkpoint (bad magic bytes)");
}

#[test]
fn trailing_bytes_are_rejected() {
    let mut bytes = small().to_bytes().unwrap();
    bytes.extend_from_slice(&[0, 0, 0]);
    let m = msg(Checkpoint::from_bytes(&bytes));
    assert!(m.contains("3 unexpected bytes after the end"), "{m}");
}

/// Rewrites the payload and fixes up the length and checksum, as a buggy writer would.
fn reseal(payload: &[u8]) -> Vec<u8> {
    let mut out = b"HALOMDCK".to_vec();
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(payload);
    let crc = crc32_reference(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

#[test]
fn huge_counts_with_a_valid_checksum_fail_without_allocating() {
    let bytes = small().to_bytes().unwrap();
    let payload = &bytes[20..bytes.len() - 4];
    // Offset of the model path length: step, time, seed, nranks.
    let mut p = payload.to_vec();
    p[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
    let m = msg(Checkpoint::from_bytes(&reseal(&p)));
    assert!(
        m.starts_with("model path: count 18446744073709551615"),
        "{m}"
    );

    // The atom count: find it after the type names and make it enormous.
    let ck = small();
    let natoms_at =
        32 + 8 + ck.model.len() + 8 + ck.integrator.len() + 1 + 72 + 3 + 8 + (8 + 2) + (8 + 1);
    assert_eq!(
        u64::from_le_bytes(p[natoms_at..natoms_at + 8].try_into().unwrap()),
        3,
        "layout offset in this test is wrong"
    );
    let mut p = payload.to_vec();
    p[natoms_at..natoms_at + 8].copy_from_slice(&(1u64 << 60).to_le_bytes());
    let m = msg(Checkpoint::from_bytes(&reseal(&p)));
    assert!(
        m.starts_with("atom count: count 1152921504606846976"),
        "{m}"
    );

    // A type index beyond the type names.
    let mut p = payload.to_vec();
    p[natoms_at + 8..natoms_at + 16].copy_from_slice(&5u64.to_le_bytes());
    let m = msg(Checkpoint::from_bytes(&reseal(&p)));
    assert_eq!(m, "atom 0 has type 5, but there are 2 type names");

    // A singular cell.
    let mut p = payload.to_vec();
    let cell_at = 32 + 8 + ck.model.len() + 8 + ck.integrator.len() + 1;
    for k in 0..9 {
        p[cell_at + 8 * k..cell_at + 8 * k + 8].copy_from_slice(&0f64.to_le_bytes());
    }
    let m = msg(Checkpoint::from_bytes(&reseal(&p)));
    assert!(m.starts_with("cell: "), "{m}");

    // A flag byte that is neither 0 nor 1.
    let mut p = payload.to_vec();
    p[cell_at - 1] = 7;
    let m = msg(Checkpoint::from_bytes(&reseal(&p)));
    assert_eq!(m, "cell flag: flag byte 7, expected 0 or 1");

    // Extra bytes inside the payload.
    let mut p = payload.to_vec();
    p.push(0);
    let m = msg(Checkpoint::from_bytes(&reseal(&p)));
    assert_eq!(m, "1 unexplained bytes at the end of the payload");
}

#[test]
fn inconsistent_checkpoints_are_refused_at_write_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.chk");
    let mut ck = small();
    ck.v.pop();
    match checkpoint::write_atomic(&path, &ck) {
        Err(MdError::Checkpoint { msg, .. }) => {
            assert!(msg.contains("v has 2 entries for 3 atoms"), "{msg}")
        }
        other => panic!("expected a checkpoint error, got {other:?}"),
    }
    assert!(!path.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn a_missing_file_is_a_checkpoint_error() {
    match checkpoint::read(Path::new("/nonexistent/dir/run.chk")) {
        Err(MdError::Checkpoint { path, msg }) => {
            assert_eq!(path, "/nonexistent/dir/run.chk");
            assert!(msg.starts_with("cannot read: "), "{msg}");
        }
        other => panic!("expected a checkpoint error, got {other:?}"),
    }
}

fn dir_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_crash_before_rename_leaves_the_old_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.chk");
    let old = small();
    checkpoint::write_atomic(&path, &old).unwrap();
    assert_eq!(dir_names(dir.path()), ["run.chk"]);

    let mut new = small();
    new.step += 1000;
    let staged = checkpoint::stage(&path, &new.to_bytes().unwrap()).unwrap();
    let temp = staged.temp().to_path_buf();
    assert_eq!(
        temp.file_name().unwrap().to_string_lossy(),
        format!(".run.chk.tmp.{}", std::process::id())
    );
    assert_eq!(temp.parent(), path.parent());
    // The process "dies" here: no commit, and no destructor runs either.
    std::mem::forget(staged);
    assert!(temp.exists());
    assert_eq!(checkpoint::read(&path).unwrap(), old);

    // The next run writes over the stale temporary file and leaves nothing behind.
    checkpoint::write_atomic(&path, &new).unwrap();
    assert_eq!(checkpoint::read(&path).unwrap(), new);
    assert_eq!(dir_names(dir.path()), ["run.chk"]);
}

#[test]
fn an_abandoned_stage_removes_its_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.bin");
    std::fs::write(&path, b"old").unwrap();
    let staged = checkpoint::stage(&path, b"new contents").unwrap();
    assert_eq!(dir_names(dir.path()).len(), 2);
    drop(staged);
    assert_eq!(dir_names(dir.path()), ["out.bin"]);
    assert_eq!(std::fs::read(&path).unwrap(), b"old");

    checkpoint::write_atomic_bytes(&path, b"new contents").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"new contents");
    assert_eq!(dir_names(dir.path()), ["out.bin"]);
}

#[test]
fn write_errors_name_the_file_and_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no_such_dir").join("run.chk");
    match checkpoint::write_atomic(&path, &small()) {
        Err(MdError::Io { path: p, .. }) => assert!(p.contains(".run.chk.tmp."), "{p}"),
        other => panic!("expected an I/O error, got {other:?}"),
    }
    assert_eq!(dir_names(dir.path()), Vec::<String>::new());
}

fn no_nan() -> impl Strategy<Value = f64> {
    any::<f64>().prop_filter("NaN has no equality", |x| !x.is_nan())
}

fn vec3() -> impl Strategy<Value = [f64; 3]> {
    [no_nan(), no_nan(), no_nan()]
}

prop_compose! {
    fn arb_cell()(
        d in [1.0f64..100.0, 1.0f64..100.0, 1.0f64..100.0],
        off in [-0.4f64..0.4, -0.4f64..0.4, -0.4f64..0.4],
        pbc in [any::<bool>(), any::<bool>(), any::<bool>()],
    ) -> Cell {
        // Lower-triangular with a dominant diagonal: always a valid right-handed cell.
        let h = [
            [d[0], 0.0, 0.0],
            [off[0] * d[0], d[1], 0.0],
            [off[1] * d[0], off[2] * d[1], d[2]],
        ];
        Cell::new(h, pbc).unwrap()
    }
}

prop_compose! {
    fn arb_checkpoint()(n in 0usize..12, ntypes in 1usize..4)(
        step in any::<u64>(),
        time in no_nan(),
        seed in any::<u64>(),
        cell in proptest::option::of(arb_cell()),
        type_names in proptest::collection::vec("[A-Z][a-z]?|ü", ntypes),
        types in proptest::collection::vec(0..ntypes, n),
        mass in proptest::collection::vec(no_nan(), n),
        x in proptest::collection::vec(vec3(), n),
        v in proptest::collection::vec(vec3(), n),
        image in proptest::collection::vec([any::<i32>(), any::<i32>(), any::<i32>()], n),
        integrator in "[a-z-]{0,12}",
        integrator_state in proptest::collection::vec(no_nan(), 0..20),
        outputs in proptest::collection::vec(("[a-z/._ é]{0,16}", any::<u64>()), 0..4),
        nranks in 1usize..1000,
        model in ".{0,20}",
    ) -> Checkpoint {
        Checkpoint {
            step, time, seed, cell, type_names, types, mass, x, v, image, integrator,
            integrator_state, outputs, nranks, model,
        }
    }
}

proptest! {
    #[test]
    fn round_trip_is_bit_exact(ck in arb_checkpoint()) {
        let bytes = ck.to_bytes().unwrap();
        let back = Checkpoint::from_bytes(&bytes).unwrap();
        prop_assert_eq!(&back, &ck);
        // Equal bytes after re-encoding means equal bits for every float (−0.0 included).
        prop_assert_eq!(back.to_bytes().unwrap(), bytes);
    }

    #[test]
    fn random_damage_never_panics(ck in arb_checkpoint(), pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = ck.to_bytes().unwrap();
        let i = pos.index(bytes.len());
        let changed = bytes[i] != byte;
        bytes[i] = byte;
        let result = Checkpoint::from_bytes(&bytes);
        prop_assert_eq!(result.is_err(), changed);
    }
}
