//! Runs the conformance checks over MPI and measures ping-pong times.
//!
//! `mpirun --allow-run-as-root --oversubscribe -n 4 target/debug/examples/mpi_smoke`
//! (build with `cargo build -p halo-comm --features mpi --examples`).
//! Exits non-zero on any mismatch.
//!
//! Failure drill: with `MPI_SMOKE_HANG=1`, rank 1 sleeps for twice the
//! timeout instead of joining an all-reduce; rank 0 must then fail with a
//! timeout naming rank 1 (and mpirun must exit non-zero) rather than hang.

use std::process::ExitCode;

use halo_comm::mpi::MpiComm;
use halo_comm::{selftest, Comm, CommExt, CommOptions, Op};

fn main() -> ExitCode {
    let comm = match CommOptions::from_env().and_then(|o| MpiComm::init(&o)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mpi_smoke: {e}");
            return ExitCode::FAILURE;
        }
    };
    if std::env::var_os("MPI_SMOKE_HANG").is_some() {
        return hang_drill(&comm);
    }
    if let Err(e) = selftest::exercise(&comm) {
        eprintln!("mpi_smoke: FAILED: {e}");
        return ExitCode::FAILURE;
    }
    if comm.size() >= 2 {
        for (bytes, iters) in [(8, 20_000), (1 << 20, 200)] {
            match selftest::pingpong(&comm, bytes, iters) {
                Ok(Some(t)) => println!(
                    "mpi ping-pong {bytes:>8} B: {:8.2} us half round trip, {:7.2} GB/s",
                    t.as_secs_f64() * 1e6,
                    bytes as f64 / t.as_secs_f64() / 1e9
                ),
                Ok(None) => {}
                Err(e) => {
                    eprintln!("mpi_smoke: ping-pong failed: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    if comm.rank() == 0 {
        println!("mpi_smoke: {} ranks ok", comm.size());
    }
    ExitCode::SUCCESS
}

fn hang_drill(comm: &MpiComm) -> ExitCode {
    if let Err(e) = comm.barrier() {
        eprintln!("mpi_smoke: drill: {e}");
        return ExitCode::FAILURE;
    }
    if comm.rank() == 1 {
        std::thread::sleep(2 * comm.timeout());
        return ExitCode::SUCCESS;
    }
    match comm.allreduce_one(1u64, Op::Sum) {
        Ok(v) => {
            eprintln!("mpi_smoke: drill: all-reduce returned {v} without rank 1");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mpi_smoke: rank {}: {e}", comm.rank());
            ExitCode::FAILURE
        }
    }
}
