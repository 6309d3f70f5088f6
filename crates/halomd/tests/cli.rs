//! End-to-end tests of the `halomd` binary.

use std::path::PathBuf;
use std::process::Command;

fn halomd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_halomd"))
}

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/structures")
        .join(name)
}

#[test]
fn neighbors_json_counts_fcc_shells() {
    // fcc Cu (a = 3.61 Å, rattled by 0.05 Å): 12 neighbours within 3 Å, 78 within 6 Å
    // (shells 12 + 6 + 24 + 12 + 24 up to 5.71 Å; the sixth shell is at 6.25 Å).
    for (cutoff, per_atom) in [("3.0", 12), ("6.0", 78)] {
        let out = halomd()
            .args(["neighbors", "--cutoff", cutoff, "--format", "json"])
            .arg(example("cu256.xyz"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["natoms"], 256);
        assert_eq!(v["npairs"], 256 * per_atom);
        assert_eq!(v["max_neighbors"], per_atom);
        let counts = v["neighbors_per_atom"].as_array().unwrap();
        assert_eq!(counts.len(), 256);
        assert!(counts.iter().all(|c| c == per_atom));
        assert!(v["nghost"].as_u64().unwrap() > 0);
    }
}

#[test]
fn neighbors_reports_bad_input_clearly() {
    let dir = std::env::temp_dir().join(format!("halomd-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.xyz");
    std::fs::write(
        &bad,
        "2\nLattice=\"5 0 0 0 5 0 0 0 5\" Properties=species:S:1:pos:R:3\nCu 0 0 0\nCu 1 nan 0\n",
    )
    .unwrap();
    let out = halomd()
        .args(["neighbors", "-c", "3"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.xyz:4"), "{err}");

    let out = halomd()
        .args(["neighbors", "-c", "-1"])
        .arg(example("cu256.xyz"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cutoff"));

    let out = halomd()
        .args(["neighbors", "-c", "3", "--frame", "5"])
        .arg(example("cu256.xyz"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("frame 5 does not exist"));

    let unknown = dir.join("structure.weird");
    std::fs::write(&unknown, "x").unwrap();
    let out = halomd()
        .args(["neighbors", "-c", "3"])
        .arg(&unknown)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("structure.weird"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn help_lists_subcommands_and_flags() {
    let out = halomd().arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("neighbors"));
    let out = halomd().args(["neighbors", "--help"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--cutoff",
        "--skin",
        "--format",
        "--input-format",
        "--frame",
    ] {
        assert!(text.contains(flag), "missing {flag} in help");
    }
}
