//! Typed messages and the collectives, written once over point-to-point
//! messages so that every backend gives the same bits.

use std::fmt;

use bytemuck::Pod;

use crate::{Comm, CommError, PodSlice, PodVec, Tag};

/// A reduction operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// Sum (integers wrap on overflow).
    Sum,
    /// Minimum (for floats, NaN wins: a NaN anywhere gives NaN).
    Min,
    /// Maximum (for floats, NaN wins).
    Max,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Sum => "sum",
            Op::Min => "min",
            Op::Max => "max",
        })
    }
}

/// An element type that all-reduce can combine.
pub trait Reduce: Pod {
    /// Combines `acc` (ranks before) with `x` (the next rank's value).
    fn combine(acc: Self, x: Self, op: Op) -> Self;
}

macro_rules! reduce_float {
    ($($t:ty),*) => {$(
        impl Reduce for $t {
            fn combine(acc: Self, x: Self, op: Op) -> Self {
                // NaN propagates so that a blown-up rank is never hidden by a
                // healthy one's value.
                match op {
                    Op::Sum => acc + x,
                    _ if acc.is_nan() => acc,
                    _ if x.is_nan() => x,
                    Op::Min => if x < acc { x } else { acc },
                    Op::Max => if x > acc { x } else { acc },
                }
            }
        }
    )*};
}
reduce_float!(f32, f64);

macro_rules! reduce_int {
    ($($t:ty),*) => {$(
        impl Reduce for $t {
            fn combine(acc: Self, x: Self, op: Op) -> Self {
                match op {
                    Op::Sum => acc.wrapping_add(x),
                    Op::Min => acc.min(x),
                    Op::Max => acc.max(x),
                }
            }
        }
    )*};
}
reduce_int!(i32, i64, u32, u64, usize);

fn length_error(op: String, detail: String) -> CommError {
    CommError::Length { op, detail }
}

/// Typed point-to-point helpers and the collectives, for every [`Comm`].
///
/// All ranks must call a collective in the same order with the same `root`,
/// `op` and (for all-reduce) length, as in MPI.
pub trait CommExt: Comm {
    /// Sends a slice of plain-old-data values.
    fn send_slice<T: Pod>(&self, dest: usize, tag: u32, data: &[T]) -> Result<(), CommError> {
        self.send(dest, tag, bytemuck::cast_slice(data))
    }

    /// Receives a message of `T`s into `out`, which takes its length.
    fn recv_vec<T: Pod>(&self, src: usize, tag: u32, out: &mut Vec<T>) -> Result<(), CommError> {
        self.recv_msg(src, Tag::new(tag)?, &mut PodVec(out))
            .map(|_| ())
    }

    /// Sends `data` to `dest` and receives `T`s from `src` into `out`, deadlock-free.
    fn sendrecv_slice<T: Pod>(
        &self,
        dest: usize,
        send_tag: u32,
        data: &[T],
        src: usize,
        recv_tag: u32,
        out: &mut Vec<T>,
    ) -> Result<(), CommError> {
        let (st, rt) = (Tag::new(send_tag)?, Tag::new(recv_tag)?);
        self.sendrecv_msg(
            dest,
            st,
            bytemuck::cast_slice(data),
            src,
            rt,
            &mut PodVec(out),
        )
        .map(|_| ())
    }

    /// Copies `data` on `root` into `data` on every rank (all lengths become root's).
    fn broadcast<T: Pod>(&self, root: usize, data: &mut Vec<T>) -> Result<(), CommError> {
        crate::check_rank(root, self.size())?;
        if self.rank() == root {
            for r in (0..self.size()).filter(|&r| r != root) {
                self.send_msg(r, Tag::BCAST, bytemuck::cast_slice(data))?;
            }
            Ok(())
        } else {
            self.recv_msg(root, Tag::BCAST, &mut PodVec(data))
                .map(|_| ())
        }
    }

    /// Collects every rank's `data` on `root`, in rank order; `None` elsewhere.
    fn gather<T: Pod>(&self, root: usize, data: &[T]) -> Result<Option<Vec<Vec<T>>>, CommError> {
        crate::check_rank(root, self.size())?;
        if self.rank() != root {
            self.send_msg(root, Tag::GATHER, bytemuck::cast_slice(data))?;
            return Ok(None);
        }
        let mut all = Vec::with_capacity(self.size());
        for r in 0..self.size() {
            if r == root {
                all.push(data.to_vec());
            } else {
                let mut v = Vec::new();
                self.recv_msg(r, Tag::GATHER, &mut PodVec(&mut v))?;
                all.push(v);
            }
        }
        Ok(Some(all))
    }

    /// Collects every rank's `data` on every rank, in rank order.
    fn allgather<T: Pod>(&self, data: &[T]) -> Result<Vec<Vec<T>>, CommError> {
        // Rank 0 packs the parts behind a table of lengths and broadcasts
        // one message, which keeps the message count at 2 (size - 1).
        let parts = self.gather(0, data)?;
        let mut packed: Vec<u64> = Vec::new();
        if let Some(parts) = &parts {
            packed.extend(parts.iter().map(|p| p.len() as u64));
        }
        let mut lens = packed;
        self.broadcast(0, &mut lens)?;
        let mut flat: Vec<T> = parts.map(|p| p.concat()).unwrap_or_default();
        self.broadcast(0, &mut flat)?;
        let total: u64 = lens.iter().sum();
        if lens.len() != self.size() || total != flat.len() as u64 {
            return Err(self.failed(length_error(
                "allgather".into(),
                format!(
                    "rank 0 sent {} lengths summing to {total} for {} ranks and {} elements",
                    lens.len(),
                    self.size(),
                    flat.len()
                ),
            )));
        }
        let mut out = Vec::with_capacity(lens.len());
        let mut at = 0usize;
        for &l in &lens {
            let l = l as usize;
            out.push(flat[at..at + l].to_vec());
            at += l;
        }
        Ok(out)
    }

    /// Combines `data` element-wise over all ranks, in rank order, on every rank.
    ///
    /// The result equals a serial loop `acc = x0; acc = op(acc, x1); …` bit
    /// for bit, whatever the backend or timing.
    fn allreduce<T: Reduce>(&self, data: &mut [T], op: Op) -> Result<(), CommError> {
        let n = self.size();
        if n == 1 {
            return Ok(());
        }
        if self.rank() != 0 {
            self.send_msg(0, Tag::REDUCE, bytemuck::cast_slice(data))?;
            return self
                .recv_msg(0, Tag::REDUCE_RESULT, &mut PodSlice(data))
                .map(|_| ());
        }
        let mut tmp: Vec<T> = Vec::with_capacity(data.len());
        for r in 1..n {
            self.recv_msg(r, Tag::REDUCE, &mut PodVec(&mut tmp))?;
            if tmp.len() != data.len() {
                return Err(self.failed(length_error(
                    format!("allreduce ({op}) on rank 0"),
                    format!(
                        "rank {r} contributed {} elements, rank 0 has {}",
                        tmp.len(),
                        data.len()
                    ),
                )));
            }
            for (a, &x) in data.iter_mut().zip(&tmp) {
                *a = T::combine(*a, x, op);
            }
        }
        for r in 1..n {
            self.send_msg(r, Tag::REDUCE_RESULT, bytemuck::cast_slice(data))?;
        }
        Ok(())
    }

    /// Poisons the communicator with `err` (see [`Comm::fail`]) and returns it.
    fn failed(&self, err: CommError) -> CommError {
        self.fail(&err);
        err
    }

    /// All-reduce of one value.
    fn allreduce_one<T: Reduce>(&self, x: T, op: Op) -> Result<T, CommError> {
        let mut v = [x];
        self.allreduce(&mut v, op)?;
        Ok(v[0])
    }

    /// All-reduce of `f64`s.
    fn allreduce_f64(&self, data: &mut [f64], op: Op) -> Result<(), CommError> {
        self.allreduce(data, op)
    }

    /// All-reduce of `i64`s.
    fn allreduce_i64(&self, data: &mut [i64], op: Op) -> Result<(), CommError> {
        self.allreduce(data, op)
    }

    /// All-reduce of `u64`s.
    fn allreduce_u64(&self, data: &mut [u64], op: Op) -> Result<(), CommError> {
        self.allreduce(data, op)
    }
}

impl<C: Comm + ?Sized> CommExt for C {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_min_max_propagate_nan() {
        assert!(f64::combine(1.0, f64::NAN, Op::Min).is_nan());
        assert!(f64::combine(f64::NAN, 1.0, Op::Max).is_nan());
        assert_eq!(f64::combine(1.0, -2.0, Op::Min), -2.0);
        assert_eq!(f32::combine(1.0, -2.0, Op::Max), 1.0);
        assert_eq!(i64::combine(i64::MAX, 1, Op::Sum), i64::MIN);
        assert_eq!(u32::combine(3, 7, Op::Min), 3);
    }
}
