//! A conformance check that every backend must pass.
//!
//! [`exercise`] runs every [`Comm`] method on a live communicator and
//! compares the results with values each rank computes on its own (every
//! rank's input is a known function of its rank), so it needs no reference
//! data. The threads, shm and MPI tests all call it, and a binary can run it
//! to check a machine's set-up (`mpirun -n 4 mpi_smoke`).

use crate::{Comm, CommError, CommExt, Op, Reduce, Tag};

/// Bytes in the large-message test (8 MiB: larger than the shm rings, so
/// it streams).
pub const LARGE_BYTES: usize = 8 << 20;

/// A failed check, naming the rank and what differed.
#[derive(Debug, thiserror::Error)]
pub enum SelfTestError {
    /// A result differed from the expected one.
    #[error("rank {rank}: {check}: {detail}")]
    Mismatch {
        /// The rank that saw the difference.
        rank: usize,
        /// The check.
        check: &'static str,
        /// Expected and received values.
        detail: String,
    },
    /// The communicator returned an error.
    #[error("rank {rank}: {check}: {source}")]
    Comm {
        /// The rank that got the error.
        rank: usize,
        /// The check.
        check: &'static str,
        /// The error.
        #[source]
        source: CommError,
    },
}

struct Checker<'a> {
    comm: &'a dyn Comm,
}

impl Checker<'_> {
    fn ok<T>(&self, check: &'static str, r: Result<T, CommError>) -> Result<T, SelfTestError> {
        r.map_err(|source| SelfTestError::Comm {
            rank: self.comm.rank(),
            check,
            source,
        })
    }

    fn eq<T: PartialEq + std::fmt::Debug>(
        &self,
        check: &'static str,
        got: &T,
        want: &T,
    ) -> Result<(), SelfTestError> {
        if got == want {
            return Ok(());
        }
        let mut g = format!("{got:?}");
        let mut w = format!("{want:?}");
        g.truncate(200);
        w.truncate(200);
        Err(SelfTestError::Mismatch {
            rank: self.comm.rank(),
            check,
            detail: format!("got {g}, expected {w}"),
        })
    }
}

/// The f64 vector that rank `r` contributes to the reduction checks: values
/// of very different magnitudes and signs, so that any change of summation
/// order changes the bits.
pub fn reduction_input(r: usize) -> Vec<f64> {
    let s = if r.is_multiple_of(2) { 1.0 } else { -1.0 };
    let x = r as f64;
    vec![
        s * 1e16 + x,
        0.1 * (x + 1.0),
        s * (x + 1.0).sqrt() * 1e-8,
        -(x * 7.25) + 3.0,
        f64::from_bits(0x3FF0_0000_0000_0001 + r as u64),
        1e300 * s,
        -0.0,
    ]
}

/// `acc = x0; acc = op(acc, x1); …` over ranks `0..n`, the reference for all-reduce.
pub fn serial_reduce<T: Reduce>(inputs: &[Vec<T>], op: Op) -> Vec<T> {
    let mut acc = inputs[0].clone();
    for x in &inputs[1..] {
        for (a, &b) in acc.iter_mut().zip(x) {
            *a = T::combine(*a, b, op);
        }
    }
    acc
}

/// The serial rank-order reduction written with the plain operators (an
/// independent reference for [`Reduce::combine`] on NaN-free input).
fn reference_f64(inputs: &[Vec<f64>], op: Op) -> Vec<f64> {
    (0..inputs[0].len())
        .map(|i| {
            let mut acc = inputs[0][i];
            for x in &inputs[1..] {
                acc = match op {
                    Op::Sum => acc + x[i],
                    Op::Min => acc.min(x[i]),
                    Op::Max => acc.max(x[i]),
                };
            }
            acc
        })
        .collect()
}

fn pattern(src: usize, len: usize, salt: u64) -> Vec<u8> {
    // A cheap per-byte hash so that shifted or misrouted bytes show up.
    (0..len)
        .map(|i| {
            let v = (i as u64)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .wrapping_add((src as u64) << 32)
                .wrapping_add(salt);
            (v >> 29) as u8
        })
        .collect()
}

/// Runs the conformance checks; every rank of the group must call it.
pub fn exercise(comm: &dyn Comm) -> Result<(), SelfTestError> {
    let c = Checker { comm };
    let n = comm.size();
    let me = comm.rank();
    c.eq("rank < size", &(me < n), &true)?;
    let next = (me + 1) % n;
    let prev = (me + n - 1) % n;

    for _ in 0..3 {
        c.ok("barrier", comm.barrier())?;
    }

    // Ring exchange of bytes, typed values and an empty message.
    let mut buf = Vec::new();
    c.ok(
        "ring sendrecv",
        comm.sendrecv(next, 1, &pattern(me, 1000 + me, 1), prev, 1, &mut buf),
    )?;
    c.eq("ring sendrecv", &buf, &pattern(prev, 1000 + prev, 1))?;
    let mut f = Vec::new();
    let mine: Vec<f64> = (0..17)
        .map(|i| me as f64 * 100.0 + i as f64 / 3.0)
        .collect();
    c.ok(
        "typed ring",
        comm.sendrecv_slice(next, 2, &mine, prev, 2, &mut f),
    )?;
    let want: Vec<f64> = (0..17)
        .map(|i| prev as f64 * 100.0 + i as f64 / 3.0)
        .collect();
    c.eq("typed ring", &f, &want)?;
    buf.push(1);
    c.ok(
        "empty message",
        comm.sendrecv(next, 3, &[], prev, 3, &mut buf),
    )?;
    c.eq("empty message", &buf.len(), &0)?;

    // Send to self.
    c.ok(
        "self sendrecv",
        comm.sendrecv(me, 4, &pattern(me, 77, 4), me, 4, &mut buf),
    )?;
    c.eq("self sendrecv", &buf, &pattern(me, 77, 4))?;

    // A message larger than any ring, in both directions at once.
    c.ok(
        "large sendrecv",
        comm.sendrecv(next, 5, &pattern(me, LARGE_BYTES, 5), prev, 5, &mut buf),
    )?;
    c.eq("large sendrecv length", &buf.len(), &LARGE_BYTES)?;
    if buf != pattern(prev, LARGE_BYTES, 5) {
        c.eq("large sendrecv content", &"differs", &"equal")?;
    }

    // Plain send/recv, with tags received in the opposite order they were sent.
    if n > 1 {
        if me == 0 {
            for r in 1..n {
                c.ok("send tag 10", comm.send_slice(r, 10, &[r as u32, 10]))?;
                c.ok("send tag 11", comm.send_slice(r, 11, &[r as u32, 11]))?;
            }
            for r in 1..n {
                let mut v: Vec<u64> = Vec::new();
                c.ok("reply", comm.recv_vec(r, 12, &mut v))?;
                c.eq("reply", &v, &vec![r as u64 * 3])?;
            }
        } else {
            let mut v: Vec<u32> = Vec::new();
            c.ok("recv tag 11", comm.recv_vec(0, 11, &mut v))?;
            c.eq("recv tag 11", &v, &vec![me as u32, 11])?;
            c.ok("recv tag 10", comm.recv_vec(0, 10, &mut v))?;
            c.eq("recv tag 10", &v, &vec![me as u32, 10])?;
            c.ok("reply", comm.send_slice(0, 12, &[me as u64 * 3]))?;
        }
    }

    // All-reduce, bit for bit against the serial rank-order loop.
    let inputs: Vec<Vec<f64>> = (0..n).map(reduction_input).collect();
    for op in [Op::Sum, Op::Min, Op::Max] {
        let mut x = inputs[me].clone();
        c.ok("allreduce f64", comm.allreduce_f64(&mut x, op))?;
        let want = reference_f64(&inputs, op);
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        c.eq("allreduce f64 bits", &bits(&x), &bits(&want))?;
    }
    let fin: Vec<Vec<f32>> = (0..n)
        .map(|r| vec![r as f32 * 0.1, 1e8 - r as f32])
        .collect();
    let mut xf = fin[me].clone();
    c.ok("allreduce f32", comm.allreduce(&mut xf, Op::Sum))?;
    c.eq("allreduce f32", &xf, &serial_reduce(&fin, Op::Sum))?;
    let iin: Vec<Vec<i64>> = (0..n)
        .map(|r| vec![r as i64 - 2, i64::MAX - r as i64])
        .collect();
    for op in [Op::Sum, Op::Min, Op::Max] {
        let mut xi = iin[me].clone();
        c.ok("allreduce i64", comm.allreduce_i64(&mut xi, op))?;
        c.eq("allreduce i64", &xi, &serial_reduce(&iin, op))?;
    }
    let total = c.ok("allreduce u64", comm.allreduce_one(me as u64 + 1, Op::Sum))?;
    c.eq("allreduce u64", &total, &(n as u64 * (n as u64 + 1) / 2))?;
    let max = c.ok("allreduce u32", comm.allreduce_one(me as u32, Op::Max))?;
    c.eq("allreduce u32", &max, &(n as u32 - 1))?;
    let mut nan = vec![if me == n - 1 { f64::NAN } else { me as f64 }];
    c.ok("allreduce NaN", comm.allreduce_f64(&mut nan, Op::Min))?;
    c.eq("allreduce min propagates NaN", &nan[0].is_nan(), &true)?;

    // Broadcast from the last and the first rank.
    for root in [n - 1, 0] {
        let mut v: Vec<i32> = if me == root {
            vec![root as i32, -5, 7]
        } else {
            vec![99; me]
        };
        c.ok("broadcast", comm.broadcast(root, &mut v))?;
        c.eq("broadcast", &v, &vec![root as i32, -5, 7])?;
    }

    // Gather and allgather with a different length on every rank.
    let part: Vec<u16> = (0..=me as u16).map(|i| i * 10 + me as u16).collect();
    let expect: Vec<Vec<u16>> = (0..n as u16)
        .map(|r| (0..=r).map(|i| i * 10 + r).collect())
        .collect();
    let g = c.ok("gather", comm.gather(0, &part))?;
    c.eq("gather", &g, &(me == 0).then(|| expect.clone()))?;
    let ag = c.ok("allgather", comm.allgather(&part))?;
    c.eq("allgather", &ag, &expect)?;

    // Argument errors are reported and leave the communicator usable.
    let bad = comm.send(n, 0, &[]);
    c.eq(
        "invalid rank",
        &matches!(bad, Err(CommError::InvalidRank { .. })),
        &true,
    )?;
    let bad = comm.send(next, Tag::USER_LIMIT, &[]);
    c.eq(
        "invalid tag",
        &matches!(bad, Err(CommError::InvalidTag { .. })),
        &true,
    )?;

    c.ok("final barrier", comm.barrier())?;
    Ok(())
}

/// Half the mean round-trip time of `bytes`-byte messages between ranks 0
/// and 1 (`iters` round trips after a few warm-up ones); `Some` on rank 0,
/// `None` elsewhere. Other ranks only take part in the closing barrier.
pub fn pingpong(
    comm: &dyn Comm,
    bytes: usize,
    iters: usize,
) -> Result<Option<std::time::Duration>, CommError> {
    let msg = vec![0x5Au8; bytes];
    let mut buf = Vec::with_capacity(bytes);
    comm.barrier()?;
    let mut t = std::time::Instant::now();
    let warm = (iters / 10).max(2);
    for i in 0..warm + iters {
        if i == warm {
            t = std::time::Instant::now();
        }
        match comm.rank() {
            0 => {
                comm.send(1, 20, &msg)?;
                comm.recv(1, 21, &mut buf)?;
            }
            1 => {
                comm.recv(0, 20, &mut buf)?;
                comm.send(0, 21, &buf)?;
            }
            _ => break,
        }
    }
    let half = t.elapsed() / (2 * iters.max(1) as u32);
    comm.barrier()?;
    Ok((comm.rank() == 0).then_some(half))
}
