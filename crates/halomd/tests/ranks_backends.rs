//! `halomd eval --comm shm`: the launcher starts one process per rank, and the result is the
//! one of `--comm threads`; failures end cleanly and leave nothing in `/dev/shm`.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn model() -> PathBuf {
    root().join("fixtures/deepmd/models/dpa3_base.dp")
}

/// A scratch directory unique to this test process and `name`.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("halomd-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Case 0 of `fixtures/deepmd/dpa3_base.json` (32 H/C/N/O atoms), copied to `path`.
fn write_case0(path: &Path) {
    std::fs::copy(root().join("examples/structures/hcno32.xyz"), path).unwrap();
}

/// `/dev/shm` entries of halo-comm jobs started by the process `pid` (job names embed it).
fn segments_of(pid: u32) -> Vec<String> {
    let tag = format!("-{pid}-");
    std::fs::read_dir("/dev/shm")
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("halomd-") && n.contains(&tag))
        .collect()
}

/// Runs `halomd eval` and returns its output and process id.
fn halomd_eval(model: &Path, args: &[&str], xyz: &Path, env: &[(&str, &str)]) -> (Output, u32) {
    let child = Command::new(env!("CARGO_BIN_EXE_halomd"))
        .args(["eval", "--model"])
        .arg(model)
        .args(args)
        .arg(xyz)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    (child.wait_with_output().unwrap(), pid)
}

fn eval_json(args: &[&str], xyz: &Path) -> Value {
    let (out, pid) = halomd_eval(&model(), args, xyz, &[]);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(segments_of(pid), Vec::<String>::new(), "{args:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn max_abs_diff(a: &Value, b: &Value) -> f64 {
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len());
            x.iter()
                .zip(y)
                .map(|(p, q)| max_abs_diff(p, q))
                .fold(0.0, f64::max)
        }
        _ => (a.as_f64().unwrap() - b.as_f64().unwrap()).abs(),
    }
}

const KEYS: [&str; 5] = ["energy", "atom_energy", "forces", "virial", "atom_virial"];

#[test]
fn shm_ranks_match_threads() {
    let dir = scratch("shm-eval");
    let xyz = dir.join("case0.xyz");
    write_case0(&xyz);
    let one = eval_json(&[], &xyz);
    assert_eq!(one["natoms"], 32);
    for n in ["2", "3"] {
        let threads = eval_json(&["--comm", "threads", "--ranks", n], &xyz);
        let shm = eval_json(&["--comm", "shm", "--ranks", n], &xyz);
        let keys: Vec<&String> = shm.as_object().unwrap().keys().collect();
        let want: Vec<&String> = threads.as_object().unwrap().keys().collect();
        assert_eq!(keys, want, "{n} ranks: the documents differ in shape");
        assert_eq!(shm["natoms"], 32);
        for key in KEYS {
            let d = max_abs_diff(&shm[key], &threads[key]);
            assert!(
                d <= 1e-10,
                "{n} ranks: shm {key} differs from threads by {d}"
            );
            let d = max_abs_diff(&shm[key], &one[key]);
            assert!(
                d <= 1e-10,
                "{n} ranks: shm {key} differs from 1 rank by {d}"
            );
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn shm_extxyz_output_is_rank_zeros_alone() {
    let dir = scratch("shm-xyz");
    let xyz = dir.join("case0.xyz");
    write_case0(&xyz);
    let run = |comm: &str| {
        let (out, _) = halomd_eval(
            &model(),
            &["--comm", comm, "--ranks", "2", "--format", "extxyz"],
            &xyz,
            &[],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let threads = run("threads");
    let shm = run("shm");
    // One frame (so no other rank printed), with the same lines as the threads backend.
    assert_eq!(shm.lines().next(), Some("32"), "{shm}");
    assert_eq!(shm.lines().count(), 34, "{shm}");
    assert_eq!(shm.lines().nth(1), threads.lines().nth(1));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn shm_with_a_bad_model_fails_cleanly() {
    let dir = scratch("shm-bad");
    let xyz = dir.join("case0.xyz");
    write_case0(&xyz);
    let missing = dir.join("no-such-model.dp");
    let (out, pid) = halomd_eval(&missing, &["--comm", "shm", "--ranks", "2"], &xyz, &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("halomd: error:"), "{err}");
    assert!(err.contains("no-such-model.dp"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(out.stdout.is_empty());
    assert_eq!(segments_of(pid), Vec::<String>::new());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn shm_rank_without_peers_times_out_cleanly() {
    // A process that is told it is rank 0 of 2 joins the job instead of launching; its
    // peer never comes, so it must stop after the timeout, name rank 1, and unlink the
    // segment it created.
    let dir = scratch("shm-orphan");
    let xyz = dir.join("case0.xyz");
    write_case0(&xyz);
    let job = format!("test-orphan-{}", std::process::id());
    let start = std::time::Instant::now();
    let (out, _) = halomd_eval(
        &model(),
        &["--comm", "shm", "--ranks", "2"],
        &xyz,
        &[
            ("HALOMD_JOB", &job),
            ("HALOMD_RANK", "0"),
            ("HALOMD_NRANKS", "2"),
            ("HALOMD_COMM_TIMEOUT", "1"),
        ],
    );
    assert!(!out.status.success());
    assert!(
        start.elapsed().as_secs_f64() < 30.0,
        "{:?}",
        start.elapsed()
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("halomd: error:"), "{err}");
    assert!(err.contains("rank 1") || err.contains("rank(s) 1"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(out.stdout.is_empty());
    assert!(!Path::new(&format!("/dev/shm/halomd-{job}")).exists());
    std::fs::remove_dir_all(&dir).ok();
}

/// The process id of `rank` among the children of the launcher `parent`, once it exists.
fn find_rank(parent: u32, rank: usize) -> Option<u32> {
    let want = format!("HALOMD_RANK={rank}");
    for entry in std::fs::read_dir("/proc").ok()?.filter_map(|e| e.ok()) {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // The parent pid is the second field after the parenthesised command name.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid != Some(parent) {
            continue;
        }
        let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        if env.split(|&b| b == 0).any(|v| v == want.as_bytes()) {
            return Some(pid);
        }
    }
    None
}

#[test]
fn shm_launcher_reports_a_killed_rank() {
    let dir = scratch("shm-kill");
    let xyz = dir.join("case0.xyz");
    write_case0(&xyz);
    let child = Command::new(env!("CARGO_BIN_EXE_halomd"))
        .args(["eval", "--comm", "shm", "--ranks", "3", "--model"])
        .arg(model())
        .arg(&xyz)
        // Bounds the wait of the other ranks if rank 1 dies before it attaches.
        .env("HALOMD_COMM_TIMEOUT", "2")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let launcher = child.id();
    let start = std::time::Instant::now();
    let rank1 = loop {
        // Killed at first sight: it has yet to load the model, so the job cannot be done.
        if let Some(pid) = find_rank(launcher, 1) {
            break pid;
        }
        assert!(start.elapsed().as_secs() < 30, "rank 1 never started");
        std::thread::sleep(std::time::Duration::from_millis(1));
    };
    let killed = Command::new("kill")
        .args(["-KILL", &rank1.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("rank 1 failed (signal: 9"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(out.stdout.is_empty());
    assert_eq!(segments_of(launcher), Vec::<String>::new());
    std::fs::remove_dir_all(&dir).ok();
}
