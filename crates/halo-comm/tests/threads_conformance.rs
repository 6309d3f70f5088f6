//! The conformance checks and determinism of the threads backend.

use std::time::Duration;

use halo_comm::{init_process, selftest, threads, Comm, CommExt, CommKind, CommOptions, Op};

fn opts() -> CommOptions {
    CommOptions::default().with_timeout(Duration::from_secs(20))
}

#[test]
fn conformance_on_1_to_4_thread_ranks() {
    for n in 1..=4 {
        let results = threads::run(n, &opts(), |c| {
            selftest::exercise(&c).map_err(|e| e.to_string())
        })
        .unwrap();
        for r in results {
            r.unwrap();
        }
    }
}

#[test]
fn reductions_are_bit_identical_whatever_the_timing() {
    let n = 4;
    let inputs: Vec<Vec<f64>> = (0..n).map(selftest::reduction_input).collect();
    // Serial sum in rank order with the plain operator.
    let want: Vec<u64> = (0..inputs[0].len())
        .map(|i| {
            inputs[1..]
                .iter()
                .fold(inputs[0][i], |a, x| a + x[i])
                .to_bits()
        })
        .collect();
    for trial in 0..6u64 {
        let out = threads::run(n, &opts(), |c| {
            // Let the ranks arrive in a different order each trial.
            let delay = (trial * 7 + c.rank() as u64 * 13) % 5;
            std::thread::sleep(Duration::from_millis(delay));
            let mut x = inputs[c.rank()].clone();
            c.allreduce_f64(&mut x, Op::Sum).unwrap();
            x.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        })
        .unwrap();
        for bits in out {
            assert_eq!(bits, want, "trial {trial}");
        }
    }
    // And the order matters for these inputs, so the test can fail.
    let reversed: Vec<u64> = (0..inputs[0].len())
        .map(|i| {
            inputs[..n - 1]
                .iter()
                .rev()
                .fold(inputs[n - 1][i], |a, x| a + x[i])
                .to_bits()
        })
        .collect();
    assert_ne!(reversed, want);
}

#[test]
fn init_process_gives_a_single_thread_rank() {
    let c = init_process(CommKind::Threads, &opts()).unwrap();
    assert_eq!((c.rank(), c.size(), c.kind()), (0, 1, CommKind::Threads));
    assert_eq!(c.allreduce_one(2.5f64, Op::Max).unwrap(), 2.5);
}
