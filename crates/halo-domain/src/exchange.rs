//! The multi-rank [`Exchange`]: forward and reverse communication over the swap plan.

use std::ops::AddAssign;
use std::time::{Duration, Instant};

use bytemuck::Pod;
use halo_comm::{Comm, CommExt};
use halo_core::{DType, Exchange, ExchangeError, ExchangeSlot, RowsMut};

use crate::domain::{Domain, Swap};

/// Message tag of forward exchanges.
const TAG_FORWARD: u32 = 7001;
/// Message tag of reverse exchanges.
const TAG_REVERSE: u32 = 7002;
/// Row width the buffers are sized for up front: a per-atom virial.
const DEFAULT_WIDTH: usize = 9;

/// Fills ghost rows from their owners on any rank and folds ghost gradients back, through the
/// swaps of a [`Domain`] (DeePMD-kit's `border_op` and its transpose).
///
/// Send and receive buffers are sized once for the largest swap (and grown, with a quarter
/// headroom, only if a wider row arrives), never per call. All ranks must call
/// [`Exchange::forward`] and [`Exchange::reverse`] the same number of times in the same order.
pub struct DomainExchange<'a> {
    comm: &'a dyn Comm,
    swaps: &'a [Swap],
    rank: usize,
    nloc: usize,
    nall: usize,
    bufs: Buffers,
    stats: ExchangeStats,
}

/// Cumulative counters of one [`DomainExchange`], for benchmarks: calls, bytes sent to other
/// ranks (self-swaps copy in place and count as ghost rows only) and wall time inside
/// [`Exchange::forward`] and [`Exchange::reverse`], waiting on partners included.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExchangeStats {
    /// Number of forward calls.
    pub forward_calls: u64,
    /// Number of reverse calls.
    pub reverse_calls: u64,
    /// Bytes sent to other ranks by forward calls.
    pub forward_bytes: u64,
    /// Bytes sent to other ranks by reverse calls.
    pub reverse_bytes: u64,
    /// Ghost rows filled by forward calls (remote and self-swaps).
    pub forward_rows: u64,
    /// Wall time spent in forward calls.
    pub forward_time: Duration,
    /// Wall time spent in reverse calls.
    pub reverse_time: Duration,
}

impl std::fmt::Debug for DomainExchange<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DomainExchange")
            .field("rank", &self.rank)
            .field("nloc", &self.nloc)
            .field("nall", &self.nall)
            .field("nswap", &self.swaps.len())
            .finish()
    }
}

#[derive(Default)]
struct Buffers {
    send32: Vec<f32>,
    recv32: Vec<f32>,
    send64: Vec<f64>,
    recv64: Vec<f64>,
}

/// An element type with its pair of buffers.
trait Elem: Pod + AddAssign + Default {
    fn bufs(b: &mut Buffers) -> (&mut Vec<Self>, &mut Vec<Self>);
}

impl Elem for f32 {
    fn bufs(b: &mut Buffers) -> (&mut Vec<f32>, &mut Vec<f32>) {
        (&mut b.send32, &mut b.recv32)
    }
}

impl Elem for f64 {
    fn bufs(b: &mut Buffers) -> (&mut Vec<f64>, &mut Vec<f64>) {
        (&mut b.send64, &mut b.recv64)
    }
}

/// Makes room for `n` elements in an empty-able buffer, with a quarter headroom.
fn grow<T>(v: &mut Vec<T>, n: usize) {
    v.clear();
    if v.capacity() < n {
        v.reserve(n + n / 4);
    }
}

fn reserve_pair<T>((send, recv): (&mut Vec<T>, &mut Vec<T>), n: usize) {
    send.reserve(n.saturating_sub(send.len()));
    recv.reserve(n.saturating_sub(recv.len()));
}

impl<'a> DomainExchange<'a> {
    /// The exchange of `domain` (after [`Domain::borders`]) over `comm`, with buffers sized
    /// for f64 rows of width 9.
    pub fn new(domain: &'a Domain, comm: &'a dyn Comm) -> Self {
        let mut ex = DomainExchange {
            comm,
            swaps: domain.swaps(),
            rank: domain.rank(),
            nloc: domain.nloc(),
            nall: domain.nall(),
            bufs: Buffers::default(),
            stats: ExchangeStats::default(),
        };
        ex.reserve(DType::F64, DEFAULT_WIDTH);
        ex
    }

    /// The exchange, with buffers also sized for every slot of a model's comm manifest.
    pub fn with_slots(domain: &'a Domain, comm: &'a dyn Comm, slots: &[ExchangeSlot]) -> Self {
        let mut ex = DomainExchange::new(domain, comm);
        for s in slots {
            ex.reserve(s.dtype, s.width);
        }
        ex
    }

    /// Sizes the buffers for rows of `dtype` and `width` on the largest swap.
    pub fn reserve(&mut self, dtype: DType, width: usize) {
        let rows = self
            .swaps
            .iter()
            .map(|s| s.sendnum().max(s.recvnum))
            .max()
            .unwrap_or(0);
        let n = rows * width;
        match dtype {
            DType::F32 => reserve_pair(f32::bufs(&mut self.bufs), n),
            DType::F64 => reserve_pair(f64::bufs(&mut self.bufs), n),
        }
    }

    /// Cumulative counters since this exchange was made or [`DomainExchange::reset_stats`].
    pub fn stats(&self) -> ExchangeStats {
        self.stats
    }

    /// Zeroes the counters of [`DomainExchange::stats`].
    pub fn reset_stats(&mut self) {
        self.stats = ExchangeStats::default();
    }

    /// The communicator the swaps run over.
    pub fn comm(&self) -> &'a dyn Comm {
        self.comm
    }

    /// Whether this exchange runs `domain`'s current swap plan.
    pub fn belongs_to(&self, domain: &Domain) -> bool {
        std::ptr::eq(self.swaps, domain.swaps())
            && self.nloc == domain.nloc()
            && self.nall == domain.nall()
            && self.rank == domain.rank()
    }

    fn check(&self, len: usize, width: usize) -> Result<(), ExchangeError> {
        if len != self.nall * width {
            return Err(ExchangeError(format!(
                "row buffer has {len} elements, expected {} rows × {width}",
                self.nall
            )));
        }
        Ok(())
    }

    fn forward_t<T: Elem>(&mut self, x: &mut [T], w: usize) -> Result<(), ExchangeError> {
        for s in self.swaps {
            let (send, recv) = T::bufs(&mut self.bufs);
            grow(send, s.sendnum() * w);
            for &i in &s.sendlist {
                send.extend_from_slice(&x[i * w..(i + 1) * w]);
            }
            let dst = &mut x[s.firstrecv * w..(s.firstrecv + s.recvnum) * w];
            if s.sendproc == self.rank {
                // A self-swap (one rank along a periodic axis) sends to itself what it
                // receives: its own periodic images.
                if send.len() != dst.len() {
                    return Err(ExchangeError(format!(
                        "self-swap sends {} rows into a block of {}",
                        send.len() / w.max(1),
                        s.recvnum
                    )));
                }
                dst.copy_from_slice(send);
            } else {
                self.stats.forward_bytes += std::mem::size_of_val(send.as_slice()) as u64;
                grow(recv, dst.len());
                self.comm
                    .sendrecv_slice(s.sendproc, TAG_FORWARD, send, s.recvproc, TAG_FORWARD, recv)
                    .map_err(|e| ExchangeError(format!("forward swap: {e}")))?;
                if recv.len() != dst.len() {
                    return Err(ExchangeError(format!(
                        "forward swap: rank {} sent {} values, expected {} rows × {w}",
                        s.recvproc,
                        recv.len(),
                        s.recvnum
                    )));
                }
                dst.copy_from_slice(recv);
            }
            self.stats.forward_rows += s.recvnum as u64;
        }
        Ok(())
    }

    fn reverse_t<T: Elem>(&mut self, x: &mut [T], w: usize) -> Result<(), ExchangeError> {
        for s in self.swaps.iter().rev() {
            let (head, tail) = x.split_at_mut(s.firstrecv * w);
            let block = &tail[..s.recvnum * w];
            let got: &[T] = if s.sendproc == self.rank {
                block
            } else {
                self.stats.reverse_bytes += std::mem::size_of_val(block) as u64;
                let (_, recv) = T::bufs(&mut self.bufs);
                grow(recv, s.sendnum() * w);
                self.comm
                    .sendrecv_slice(
                        s.recvproc,
                        TAG_REVERSE,
                        block,
                        s.sendproc,
                        TAG_REVERSE,
                        recv,
                    )
                    .map_err(|e| ExchangeError(format!("reverse swap: {e}")))?;
                recv
            };
            if got.len() != s.sendnum() * w {
                return Err(ExchangeError(format!(
                    "reverse swap: got {} values from rank {}, expected {} rows × {w}",
                    got.len(),
                    s.sendproc,
                    s.sendnum()
                )));
            }
            // Rows of `sendlist` precede the swap's ghost block, so they all lie in `head`;
            // the sums run in swap then list order, hence deterministically.
            for (&i, row) in s.sendlist.iter().zip(got.chunks_exact(w)) {
                for (d, &v) in head[i * w..(i + 1) * w].iter_mut().zip(row) {
                    *d += v;
                }
            }
        }
        for v in &mut x[self.nloc * w..] {
            *v = T::default();
        }
        Ok(())
    }
}

impl Exchange for DomainExchange<'_> {
    fn nloc(&self) -> usize {
        self.nloc
    }

    fn nall(&self) -> usize {
        self.nall
    }

    fn forward(&mut self, rows: RowsMut<'_>, width: usize) -> Result<(), ExchangeError> {
        self.check(rows.len(), width)?;
        if width == 0 {
            return Ok(());
        }
        let t0 = Instant::now();
        let r = match rows {
            RowsMut::F32(x) => self.forward_t(x, width),
            RowsMut::F64(x) => self.forward_t(x, width),
        };
        self.stats.forward_calls += 1;
        self.stats.forward_time += t0.elapsed();
        r
    }

    fn reverse(&mut self, rows: RowsMut<'_>, width: usize) -> Result<(), ExchangeError> {
        self.check(rows.len(), width)?;
        if width == 0 {
            return Ok(());
        }
        let t0 = Instant::now();
        let r = match rows {
            RowsMut::F32(x) => self.reverse_t(x, width),
            RowsMut::F64(x) => self.reverse_t(x, width),
        };
        self.stats.reverse_calls += 1;
        self.stats.reverse_time += t0.elapsed();
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use halo_comm::{threads, CommOptions};
    use halo_core::{Cell, System};

    use crate::grid::ProcGrid;

    /// The counters match the swap plan: bytes of remote swaps only, every ghost row filled.
    #[test]
    fn stats_count_remote_bytes_and_ghost_rows() {
        let cell = Cell::orthorhombic(8.0, 8.0, 8.0).unwrap();
        let positions: Vec<[f64; 3]> = (0..64)
            .map(|i| {
                let f = |k: usize| (i / 4usize.pow(k as u32) % 4) as f64 * 2.0 + 0.3;
                [f(0), f(1), f(2)]
            })
            .collect();
        let system = System::from_symbols(&["Ar"; 64], positions, Some(cell)).unwrap();
        let grid = ProcGrid::new([2, 1, 1]).unwrap();
        threads::run(2, &CommOptions::default(), |comm| {
            let d = Domain::build(&comm, &system, grid, 2.5).unwrap();
            let mut ex = DomainExchange::new(&d, &comm);
            assert_eq!(ex.stats(), ExchangeStats::default());
            let mut rows = vec![1.0f64; d.nall() * 3];
            ex.forward(RowsMut::F64(&mut rows), 3).unwrap();
            ex.reverse(RowsMut::F64(&mut rows), 3).unwrap();
            let remote = |n: fn(&Swap) -> usize| -> u64 {
                d.swaps()
                    .iter()
                    .filter(|s| s.sendproc != d.rank())
                    .map(|s| (n(s) * 3 * 8) as u64)
                    .sum()
            };
            let s = ex.stats();
            assert_eq!((s.forward_calls, s.reverse_calls), (1, 1));
            assert_eq!(s.forward_bytes, remote(|s| s.sendnum()));
            assert_eq!(s.reverse_bytes, remote(|s| s.recvnum));
            assert!(s.forward_bytes > 0);
            assert_eq!(s.forward_rows, (d.nall() - d.nloc()) as u64);
            ex.reset_stats();
            assert_eq!(ex.stats(), ExchangeStats::default());
        })
        .unwrap();
    }
}
