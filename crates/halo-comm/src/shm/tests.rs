//! In-process checks of the shm protocol: ranks are threads here (so the
//! liveness checks see one live process); real multi-process runs, kills
//! and hangs are in `tests/shm_procs.rs`.

use std::time::{Duration, Instant};

use super::*;
use crate::selftest;

fn opts(timeout_ms: u64, capacity: usize) -> CommOptions {
    CommOptions {
        timeout: Duration::from_millis(timeout_ms),
        shm_capacity: capacity,
    }
}

/// Runs `f` on `n` thread ranks that each open the same shm job.
fn with_ranks<R: Send>(
    n: usize,
    o: &CommOptions,
    f: impl Fn(ShmComm) -> R + Sync,
) -> Vec<Result<R, CommError>> {
    let job = unique_job_name("unit");
    let out = std::thread::scope(|s| {
        let hs: Vec<_> = (0..n)
            .map(|r| {
                let (job, f) = (&job, &f);
                s.spawn(move || ShmComm::init(job, r, n, o).map(f))
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(!segment_path(&job).exists(), "segment of {job} left behind");
    out
}

#[test]
fn conformance_in_process() {
    for n in [1, 2, 3] {
        // A small ring makes the large messages wrap many times.
        for r in with_ranks(n, &opts(20_000, 4096), |c| selftest::exercise(&c)) {
            r.unwrap().unwrap();
        }
    }
}

#[test]
fn symmetric_blocking_sends_do_not_deadlock() {
    // Both ranks send a message far larger than the ring before receiving:
    // a blocked sender drains what its destination sends it.
    let out = with_ranks(2, &opts(10_000, 4096), |c| {
        let other = 1 - c.rank();
        let data = vec![c.rank() as u8 + 1; 100_000];
        c.send(other, 9, &data)?;
        let mut buf = Vec::new();
        c.recv(other, 9, &mut buf)?;
        Ok::<_, CommError>(buf == vec![other as u8 + 1; 100_000])
    });
    for r in out {
        assert!(r.unwrap().unwrap());
    }
}

#[test]
fn bounds_are_checked() {
    let o = opts(200, 4096);
    let err = ShmComm::init("bounds", 2, 2, &o).err().unwrap();
    assert!(
        matches!(err, CommError::InvalidRank { rank: 2, size: 2 }),
        "{err}"
    );
    let err = ShmComm::init("bounds", 0, 0, &o).err().unwrap();
    assert!(
        matches!(err, CommError::InvalidSize { nranks: 0, .. }),
        "{err}"
    );
    let err = ShmComm::init("bounds", 0, MAX_RANKS + 1, &o).err().unwrap();
    assert!(matches!(err, CommError::InvalidSize { .. }), "{err}");
    let err = ShmComm::init("bad/name", 0, 2, &o).err().unwrap();
    assert!(err.to_string().contains("job names"), "{err}");
    assert!(!segment_path("bounds").exists());
}

#[test]
fn missing_rank_times_out_naming_it_and_cleans_up() {
    let job = unique_job_name("missing");
    let start = Instant::now();
    let err = ShmComm::init(&job, 0, 3, &opts(300, 4096)).err().unwrap();
    assert!(start.elapsed() < Duration::from_secs(2));
    let msg = err.to_string();
    assert!(msg.contains("rank(s) 1, 2 did not attach"), "{msg}");
    assert!(!segment_path(&job).exists());
}

#[test]
fn live_job_name_is_refused_and_mismatched_counts_are_reported() {
    let job = unique_job_name("inuse");
    std::thread::scope(|s| {
        let first = s.spawn(|| ShmComm::init(&job, 0, 2, &opts(5_000, 4096)));
        while !segment_path(&job).exists() {
            std::thread::sleep(Duration::from_millis(1));
        }
        // Same name, live creator: refused without touching the live job.
        let err = ShmComm::init(&job, 0, 2, &opts(1_000, 4096)).err().unwrap();
        assert!(err.to_string().contains("job name in use"), "{err}");
        // Another rank count than the creator's: refused.
        let err = ShmComm::init(&job, 1, 3, &opts(1_000, 4096)).err().unwrap();
        assert!(err.to_string().contains("for 2 ranks"), "{err}");
        let second = ShmComm::init(&job, 1, 2, &opts(5_000, 4096)).unwrap();
        let first = first.join().unwrap().unwrap();
        assert_eq!((first.size(), second.size()), (2, 2));
    });
    assert!(!segment_path(&job).exists());
}

#[test]
fn dropped_peer_is_reported_as_lost() {
    let out = with_ranks(2, &opts(10_000, 4096), |c| {
        if c.rank() == 1 {
            return None;
        }
        let start = Instant::now();
        let err = c.recv(1, 0, &mut Vec::new()).unwrap_err();
        Some((err, start.elapsed()))
    });
    let (err, waited) = out[0].as_ref().unwrap().as_ref().unwrap();
    assert!(matches!(err, CommError::PeerLost { rank: 1, .. }), "{err}");
    assert!(err.to_string().contains("closed its communicator"), "{err}");
    assert!(*waited < Duration::from_secs(2), "{waited:?}");
}

#[test]
fn hung_peer_times_out_and_failure_cascades() {
    let out = with_ranks(3, &opts(300, 4096), |c| {
        let start = Instant::now();
        let r = match c.rank() {
            0 => c.recv(1, 0, &mut Vec::new()),
            1 => {
                std::thread::sleep(Duration::from_millis(800));
                Ok(())
            }
            _ => c.recv(0, 0, &mut Vec::new()),
        };
        (r, start.elapsed())
    });
    let (r0, t0) = out[0].as_ref().unwrap();
    let e0 = r0.as_ref().unwrap_err();
    assert!(
        matches!(e0, CommError::Timeout { peers, .. } if peers.0 == vec![1]),
        "{e0}"
    );
    assert!(
        *t0 >= Duration::from_millis(300) && *t0 < Duration::from_millis(700),
        "{t0:?}"
    );
    // Rank 2 waited on rank 0, which failed because of rank 1: it names rank 1
    // and learns it right after rank 0 gives up, not after its own timeout.
    let (r2, _) = out[2].as_ref().unwrap();
    let e2 = r2.as_ref().unwrap_err();
    assert!(
        matches!(
            e2,
            CommError::PeerLost { rank: 1, .. } | CommError::Timeout { .. }
        ),
        "{e2}"
    );
    assert!(e2.to_string().contains("rank 1") || e2.to_string().contains("rank(s) 0"));
}

#[test]
fn wrong_length_is_an_error_not_a_panic() {
    let out = with_ranks(2, &opts(2_000, 4096), |c| {
        if c.rank() == 0 {
            c.send(1, 0, &[1, 2, 3]).map(|_| None)
        } else {
            let mut v: Vec<f64> = Vec::new();
            Ok(Some(
                crate::CommExt::recv_vec(&c, 0, 0, &mut v).unwrap_err(),
            ))
        }
    });
    let err = out[1].as_ref().unwrap().as_ref().unwrap().as_ref().unwrap();
    assert!(matches!(err, CommError::Length { .. }), "{err}");
    assert!(err.to_string().contains("3 bytes"), "{err}");
}
