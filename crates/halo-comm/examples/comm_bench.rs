//! Ping-pong latency and bandwidth of the threads and shm backends.
//!
//! `cargo run --release -p halo-comm --example comm_bench`
//!
//! The shm numbers come from two real processes: the example starts two
//! copies of itself through `halo_comm::shm::Job`.

use std::process::{Command, ExitCode};
use std::time::Duration;

use halo_comm::shm::{Job, ShmComm};
use halo_comm::{selftest, threads, CommOptions};

const ROLE: &str = "HALO_COMM_BENCH_ROLE";
const CASES: [(usize, usize); 4] = [(8, 50_000), (4096, 20_000), (1 << 20, 500), (8 << 20, 50)];

fn report(backend: &str, bytes: usize, t: Duration) {
    println!(
        "{backend:>7} ping-pong {bytes:>8} B: {:9.2} us half round trip, {:7.2} GB/s",
        t.as_secs_f64() * 1e6,
        bytes as f64 / t.as_secs_f64() / 1e9
    );
}

fn main() -> ExitCode {
    let opts = match CommOptions::from_env() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    if std::env::var_os(ROLE).is_some() {
        // One rank of the shm job.
        let run = || -> Result<(), String> {
            let comm = ShmComm::from_env(&opts).map_err(|e| e.to_string())?;
            for (bytes, iters) in CASES {
                if let Some(t) =
                    selftest::pingpong(&comm, bytes, iters).map_err(|e| e.to_string())?
                {
                    report("shm", bytes, t);
                }
            }
            Ok(())
        };
        return match run() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        };
    }
    let res = threads::run(2, &opts, |comm| -> Result<(), String> {
        for (bytes, iters) in CASES {
            if let Some(t) = selftest::pingpong(&comm, bytes, iters).map_err(|e| e.to_string())? {
                report("threads", bytes, t);
            }
        }
        Ok(())
    });
    match res {
        Ok(v) if v.iter().all(|r| r.is_ok()) => {}
        other => {
            eprintln!("threads bench failed: {other:?}");
            return ExitCode::FAILURE;
        }
    }
    let exe = std::env::current_exe().expect("own path");
    let job = match Job::spawn(2, |_| {
        let mut c = Command::new(&exe);
        c.env(ROLE, "1");
        c
    }) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let rep = job.wait(Duration::from_secs(120));
    for r in &rep.ranks {
        print!("{}", r.stdout);
        eprint!("{}", r.stderr);
    }
    if rep.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
