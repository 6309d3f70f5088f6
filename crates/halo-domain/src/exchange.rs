//! The multi-rank [`Exchange`]: forward and reverse communication over the swap plan.

use std::ops::AddAssign;

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
        match rows {
            RowsMut::F32(x) => self.forward_t(x, width),
            RowsMut::F64(x) => self.forward_t(x, width),
        }
    }

    fn reverse(&mut self, rows: RowsMut<'_>, width: usize) -> Result<(), ExchangeError> {
        self.check(rows.len(), width)?;
        if width == 0 {
            return Ok(());
        }
        match rows {
            RowsMut::F32(x) => self.reverse_t(x, width),
            RowsMut::F64(x) => self.reverse_t(x, width),
        }
    }
}
