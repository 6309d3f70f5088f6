//! `halomd run` as a user runs it: signals, kills and restarts of the real binary, on the
//! threads and shm backends.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// An NVT input in `dir` on the bundled 32-atom H/C/N/O box with a DPA3 fixture model,
/// writing every output every `every` steps.
fn write_input(dir: &Path, steps: u64, every: u64, comm: &str) -> PathBuf {
    let text = format!(
        "structure = {:?}\nmodel = {:?}\n\
         [md]\nensemble = \"nvt\"\ntemperature = 400\ntimestep = 0.25\nsteps = {steps}\nskin = 0.5\n\
         [output]\nthermo_every = {every}\ntrajectory_every = {every}\ncheckpoint_every = {every}\n\
         [parallel]\nranks = 2\ncomm = \"{comm}\"\n",
        root().join("examples/structures/hcno32.xyz").display().to_string(),
        root()
            .join("fixtures/deepmd/models/dpa3_base.dp")
            .display()
            .to_string(),
    );
    let path = dir.join("run.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn halomd(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_halomd"));
    c.args(args).env("HALOMD_COMM_TIMEOUT", "30");
    c
}

/// Starts a run in the background.
fn spawn(input: &Path) -> Child {
    halomd(&["run", input.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until the thermo CSV has at least `rows` data rows.
fn wait_rows(dir: &Path, rows: usize) {
    let start = Instant::now();
    loop {
        let n = std::fs::read_to_string(dir.join("thermo.csv"))
            .map(|t| t.lines().count().saturating_sub(1))
            .unwrap_or(0);
        if n >= rows {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the run never wrote {rows} rows"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on our own child, not yet reaped; no memory is involved.
    let rc = unsafe { libc::kill(child.id() as i32, sig) };
    assert_eq!(rc, 0);
}

/// Continues the run of `input` from `dir/run.chk` for `steps` steps; it must succeed.
fn restart(input: &Path, dir: &Path, steps: u64) {
    let st = halomd(&[
        "run",
        input.to_str().unwrap(),
        "--restart",
        dir.join("run.chk").to_str().unwrap(),
        "--steps",
        &steps.to_string(),
    ])
    .output()
    .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
}

/// Every frame of the trajectory parses, and their steps are `0, every, 2·every, …`.
fn frames(dir: &Path) -> Vec<u64> {
    let frames = halo_io::read(&dir.join("traj.xyz"), None).expect("trajectory must parse");
    frames
        .iter()
        .map(|f| {
            let step = f
                .info
                .iter()
                .find(|(k, _)| k == "step")
                .expect("step")
                .1
                .clone();
            match step {
                halo_io::Value::Int(i) => i as u64,
                other => panic!("step is {other:?}"),
            }
        })
        .collect()
}

fn thermo_steps(dir: &Path) -> Vec<u64> {
    std::fs::read_to_string(dir.join("thermo.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect()
}

/// SIGTERM: the run finishes its step, writes a checkpoint and whole files, exits non-zero
/// naming the restart command; the restart completes the run.
fn sigterm_then_restart(comm: &str) {
    let dir = tempfile::tempdir().unwrap();
    let input = write_input(dir.path(), 1_000_000, 5, comm);
    let child = spawn(&input);
    wait_rows(dir.path(), 4);
    signal(&child, libc::SIGTERM);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "an interrupted run must fail: {err}");
    assert!(err.contains("--restart"), "no restart advice: {err}");
    let ck = halo_md::checkpoint::read(&dir.path().join("run.chk")).unwrap();
    let steps = thermo_steps(dir.path());
    assert_eq!(
        *steps.last().unwrap(),
        ck.step,
        "thermo and checkpoint disagree"
    );
    // Frames keep their cadence; the last one is the last multiple of 5 before the stop.
    let f = frames(dir.path());
    assert_eq!(*f.last().unwrap(), ck.step / 5 * 5);
    // Continue for 10 more steps.
    let target = ck.step + 10;
    restart(&input, dir.path(), 10);
    // Thermo rows: the cadence, plus the rows where each run ended.
    let expect: Vec<u64> = (0..=target)
        .filter(|s| s % 5 == 0 || *s == ck.step || *s == target)
        .collect();
    assert_eq!(
        thermo_steps(dir.path()),
        expect,
        "thermo rows after the restart"
    );
    let expect: Vec<u64> = (0..=target).filter(|s| s % 5 == 0).collect();
    assert_eq!(frames(dir.path()), expect, "frames after the restart");
}

#[test]
fn sigterm_checkpoints_and_restart_completes_threads() {
    sigterm_then_restart("threads");
}

#[cfg(target_os = "linux")]
#[test]
fn sigterm_checkpoints_and_restart_completes_shm() {
    sigterm_then_restart("shm");
}

/// SIGKILL at arbitrary moments: the checkpoint is always whole (atomic rename), and the
/// restart cuts any partial trajectory frame or thermo line written after it.
#[test]
fn sigkill_never_leaves_a_torn_checkpoint() {
    for delay_ms in [0u64, 7, 23, 41] {
        let dir = tempfile::tempdir().unwrap();
        let input = write_input(dir.path(), 1_000_000, 1, "threads");
        let mut child = spawn(&input);
        wait_rows(dir.path(), 3);
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap();
        child.wait().unwrap();
        let ck = halo_md::checkpoint::read(&dir.path().join("run.chk"))
            .expect("the checkpoint must be readable after SIGKILL");
        // Restart and run 3 more steps; every file must then be whole and consistent.
        restart(&input, dir.path(), 3);
        let expect: Vec<u64> = (0..=ck.step + 3).collect();
        assert_eq!(
            thermo_steps(dir.path()),
            expect,
            "killed after {delay_ms} ms"
        );
        assert_eq!(frames(dir.path()), expect, "killed after {delay_ms} ms");
    }
}

#[test]
fn bad_input_names_file_line_and_suggestion() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_input(dir.path(), 10, 5, "threads");
    let text = std::fs::read_to_string(&input)
        .unwrap()
        .replace("temperature = 400", "temprature = 400");
    std::fs::write(&input, text).unwrap();
    let out = halomd(&["run", input.to_str().unwrap()]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("run.toml:5"), "{err}");
    assert!(err.contains("did you mean `temperature`"), "{err}");
}
