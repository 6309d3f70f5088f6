//! Multi-process tests of the shm backend.
//!
//! This test binary has its own `main` (harness = false): run normally it
//! is the parent and runs the scenarios below; started with
//! `HALO_COMM_TEST_ROLE` set it is one rank of a job, started by the parent
//! through `halo_comm::shm::Job`.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use halo_comm::shm::{segment_path, unique_job_name, Job, JobReport, ShmComm};
use halo_comm::{selftest, Comm, CommExt, CommOptions, Op};

const ROLE: &str = "HALO_COMM_TEST_ROLE";
const READY: &str = "HALO_COMM_TEST_READY";
const SELF_KILL: &str = "HALO_COMM_TEST_SELF_KILL";
/// The communicator timeout of the ranks, unless a scenario sets another.
const TIMEOUT_S: f64 = 5.0;

fn main() -> ExitCode {
    if let Ok(role) = std::env::var(ROLE) {
        return child(&role);
    }
    let start = Instant::now();
    let scenarios: [(&str, fn()); 5] = [
        ("conformance with 2 and 3 processes", conformance),
        (
            "killed rank is named by the survivors",
            killed_rank_is_named,
        ),
        ("self-killed rank mid-exchange", self_killed_rank),
        ("hung rank times out", hung_rank_times_out),
        (
            "stale segment of a crashed start is replaced",
            stale_segment_is_replaced,
        ),
    ];
    for (name, f) in scenarios {
        let t = Instant::now();
        f();
        println!("test {name} ... ok ({:.2} s)", t.elapsed().as_secs_f64());
    }
    println!(
        "\ntest result: ok. {} passed; finished in {:.2} s",
        scenarios.len(),
        start.elapsed().as_secs_f64()
    );
    ExitCode::SUCCESS
}

// ---------------------------------------------------------------- ranks

fn child(role: &str) -> ExitCode {
    let opts = match CommOptions::from_env() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("bad options: {e}");
            return ExitCode::from(2);
        }
    };
    let comm = match ShmComm::from_env(&opts) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("init failed: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match role {
        "exercise" => selftest::exercise(&comm).map_err(|e| e.to_string()),
        "loop" => exchange_forever(&comm),
        "hang" => hang_or_reduce(&comm),
        other => Err(format!("unknown role {other}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rank {}: error: {e}", comm.rank());
            ExitCode::from(3)
        }
    }
}

/// Ring exchanges (some larger than the rings, so they stream) and
/// reductions, until something fails.
fn exchange_forever(comm: &ShmComm) -> Result<(), String> {
    let (me, n) = (comm.rank(), comm.size());
    let ready: Option<PathBuf> = std::env::var_os(READY).map(PathBuf::from);
    let self_kill: Option<u64> = std::env::var(SELF_KILL).ok().and_then(|v| v.parse().ok());
    let data = vec![me as u8; 600_000];
    let mut buf = Vec::new();
    for i in 1u64.. {
        if me == 1 && self_kill == Some(i) {
            // Die between the send and the receive of an exchange.
            comm.send(2 % n, 7, &data).map_err(|e| e.to_string())?;
            let pid = rustix::process::getpid();
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
        comm.sendrecv((me + 1) % n, 7, &data, (me + n - 1) % n, 7, &mut buf)
            .map_err(|e| e.to_string())?;
        let total = comm.allreduce_one(i, Op::Sum).map_err(|e| e.to_string())?;
        if total != i * n as u64 {
            return Err(format!("iteration {i}: sum {total}"));
        }
        if i == 20 && me == 1 {
            if let Some(p) = &ready {
                std::fs::write(p, b"ready").map_err(|e| e.to_string())?;
            }
        }
    }
    Ok(())
}

fn hang_or_reduce(comm: &ShmComm) -> Result<(), String> {
    if comm.rank() == 1 {
        std::thread::sleep(Duration::from_millis(1500));
        return Ok(());
    }
    comm.allreduce_one(1.0f64, Op::Sum)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

// ---------------------------------------------------------------- parent

fn rank_command(role: &str) -> Command {
    let mut c = Command::new(std::env::current_exe().expect("test binary path"));
    c.env(ROLE, role)
        .env("HALOMD_COMM_TIMEOUT", TIMEOUT_S.to_string())
        .env_remove(READY)
        .env_remove(SELF_KILL);
    c
}

fn describe(report: &JobReport) -> String {
    let mut s = format!("job {}:\n", report.job);
    for r in &report.ranks {
        s += &format!(
            "  rank {} status {:?} killed {} after {:.3} s\n    stderr: {}\n",
            r.rank,
            r.status,
            r.killed,
            r.elapsed.as_secs_f64(),
            r.stderr.trim()
        );
    }
    s
}

/// Asserts that nothing of `job` is in /dev/shm (the report's flag says the
/// ranks left nothing; this also catches names the launcher would miss).
fn assert_no_segment(report: &JobReport) {
    if std::env::var_os("HALO_COMM_TEST_VERBOSE").is_some() {
        eprintln!("{}", describe(report));
    }
    assert!(
        !report.leftover_segment,
        "segment left behind\n{}",
        describe(report)
    );
    let left: Vec<String> = std::fs::read_dir("/dev/shm")
        .expect("listing /dev/shm")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(&report.job))
        .collect();
    assert!(left.is_empty(), "left in /dev/shm: {left:?}");
}

fn conformance() {
    for n in [2, 3] {
        let job = Job::spawn(n, |_| rank_command("exercise")).expect("spawn");
        let report = job.wait(Duration::from_secs(30));
        assert!(report.success(), "{}", describe(&report));
        assert_no_segment(&report);
    }
}

fn wait_for_file(p: &Path, limit: Duration) {
    let t = Instant::now();
    while !p.exists() {
        assert!(t.elapsed() < limit, "{} never appeared", p.display());
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The survivors must fail, name rank 1, and do so well within the timeout.
fn assert_survivors_name_rank_1(report: &JobReport, within: Duration) {
    for r in report.ranks.iter().filter(|r| r.rank != 1) {
        assert!(
            !r.killed,
            "rank {} had to be killed\n{}",
            r.rank,
            describe(report)
        );
        assert_eq!(r.status.code(), Some(3), "{}", describe(report));
        assert!(r.stderr.contains("lost rank 1"), "{}", describe(report));
        assert!(
            r.elapsed < within,
            "rank {} took {:?}\n{}",
            r.rank,
            r.elapsed,
            describe(report)
        );
    }
}

fn killed_rank_is_named() {
    let ready = std::env::temp_dir().join(format!("{}.ready", unique_job_name("halo-comm")));
    let mut job = Job::spawn(3, |_| {
        let mut c = rank_command("loop");
        c.env(READY, &ready);
        c
    })
    .expect("spawn");
    wait_for_file(&ready, Duration::from_secs(10));
    let _ = std::fs::remove_file(&ready);
    assert!(
        !segment_path(job.name()).exists(),
        "not unlinked after bootstrap"
    );
    job.kill(1).expect("kill rank 1");
    let report = job.wait(Duration::from_secs_f64(TIMEOUT_S * 2.0));
    assert!(report.ranks[1].killed);
    assert_survivors_name_rank_1(&report, Duration::from_secs_f64(TIMEOUT_S));
    assert_no_segment(&report);
}

fn self_killed_rank() {
    let job = Job::spawn(3, |_| {
        let mut c = rank_command("loop");
        c.env(SELF_KILL, "5");
        c
    })
    .expect("spawn");
    let report = job.wait(Duration::from_secs_f64(TIMEOUT_S * 2.0));
    assert!(!report.ranks[1].status.success(), "{}", describe(&report));
    assert_survivors_name_rank_1(&report, Duration::from_secs_f64(TIMEOUT_S));
    assert_no_segment(&report);
}

fn hung_rank_times_out() {
    let job = Job::spawn(3, |rank| {
        let mut c = rank_command("hang");
        // Rank 2 waits on rank 0, which waits on the hung rank 1; a longer
        // timeout on rank 2 shows that it learns of the failure from rank 0.
        let t = if rank == 2 { "3" } else { "0.5" };
        c.env("HALOMD_COMM_TIMEOUT", t);
        c
    })
    .expect("spawn");
    let report = job.wait(Duration::from_secs(10));
    let r0 = &report.ranks[0];
    assert_eq!(r0.status.code(), Some(3), "{}", describe(&report));
    assert!(r0.stderr.contains("timed out"), "{}", describe(&report));
    assert!(r0.stderr.contains("rank(s) 1"), "{}", describe(&report));
    let r2 = &report.ranks[2];
    assert_eq!(r2.status.code(), Some(3), "{}", describe(&report));
    assert!(r2.stderr.contains("lost rank 1"), "{}", describe(&report));
    for r in [r0, r2] {
        assert!(
            r.elapsed < Duration::from_millis(1400),
            "{}",
            describe(&report)
        );
    }
    assert!(report.ranks[1].status.success(), "{}", describe(&report));
    assert_no_segment(&report);
}

fn stale_segment_is_replaced() {
    let name = unique_job_name("stale");
    // Rank 0 alone creates the segment and waits for rank 1; kill it then.
    let mut lone = rank_command("exercise");
    lone.env("HALOMD_JOB", &name)
        .env("HALOMD_RANK", "0")
        .env("HALOMD_NRANKS", "2")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = lone.spawn().expect("spawn lone rank 0");
    wait_for_file(&segment_path(&name), Duration::from_secs(10));
    child.kill().expect("kill");
    child.wait().expect("reap");
    assert!(
        segment_path(&name).exists(),
        "the crash should leave the segment"
    );
    let job = Job::spawn_named(&name, 2, |_| rank_command("exercise")).expect("spawn");
    let report = job.wait(Duration::from_secs(30));
    assert!(report.success(), "{}", describe(&report));
    assert_no_segment(&report);
}
