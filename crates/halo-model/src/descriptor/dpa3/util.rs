//! Chunking and element-wise helpers shared by the DPA3 kernels.

use crate::{Activation, Real};
use std::sync::Mutex;

/// Centre atoms per parallel task. Fixed (never derived from the thread count), so every
/// product and sum sees the same operands in the same order however many threads run.
pub(crate) const CHUNK: usize = 16;

/// Extended atoms per task in the whole-frame node passes.
pub(crate) const ROW_CHUNK: usize = 64;

/// Number of `CHUNK`-sized tasks over `n` atoms.
pub(crate) fn n_chunks(n: usize, chunk: usize) -> usize {
    n.div_ceil(chunk)
}

/// Row bounds of every atom chunk in a per-atom CSR offset array (`off.len() = nloc + 1`).
pub(crate) fn chunk_bounds(off: &[usize]) -> Vec<usize> {
    let nloc = off.len() - 1;
    let nch = n_chunks(nloc, CHUNK);
    (0..=nch).map(|c| off[(c * CHUNK).min(nloc)]).collect()
}

/// Bounds `0, CHUNK·w, 2·CHUNK·w …` of plain per-atom rows.
pub(crate) fn uniform_bounds(n: usize, chunk: usize) -> Vec<usize> {
    let nch = n_chunks(n, chunk);
    (0..=nch).map(|c| (c * chunk).min(n)).collect()
}

/// Splits `buf` (rows of `width`) into consecutive mutable pieces at the row `bounds`.
pub(crate) fn split_rows<'a, T>(
    mut buf: &'a mut [T],
    bounds: &[usize],
    width: usize,
) -> Vec<&'a mut [T]> {
    let mut out = Vec::with_capacity(bounds.len().saturating_sub(1));
    for w in bounds.windows(2) {
        let (head, tail) = buf.split_at_mut((w[1] - w[0]) * width);
        out.push(head);
        buf = tail;
    }
    out
}

/// Applies φ in place; with `d`, also writes φ'.
#[inline(always)]
pub(crate) fn activate<T: Real>(act: Activation, x: &mut [T], d: Option<&mut [T]>) {
    crate::fastact::activate(act, x, d);
}

/// Writes `bias` into every row of `y` (`rows × bias.len()`).
#[inline(always)]
pub(crate) fn fill_rows<T: Copy>(y: &mut [T], bias: &[T], rows: usize) {
    let w = bias.len();
    for r in 0..rows {
        y[r * w..(r + 1) * w].copy_from_slice(bias);
    }
}

/// `dst = (a + dst) + b`, element-wise.
#[inline(always)]
pub(crate) fn add_around<T: Real>(dst: &mut [T], a: &[T], b: &[T]) {
    for ((d, &x), &y) in dst.iter_mut().zip(a).zip(b) {
        *d = (x + *d) + y;
    }
}

/// `dst = (a + b) + dst`, element-wise.
#[inline(always)]
pub(crate) fn add2_before<T: Real>(dst: &mut [T], a: &[T], b: &[T]) {
    for ((d, &x), &y) in dst.iter_mut().zip(a).zip(b) {
        *d = (x + y) + *d;
    }
}

/// `dst += f · src`.
#[inline(always)]
pub(crate) fn axpy<T: Real>(dst: &mut [T], f: T, src: &[T]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d += f * s;
    }
}

/// `dst += src`.
#[inline(always)]
pub(crate) fn add_assign<T: Real>(dst: &mut [T], src: &[T]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d += s;
    }
}

/// `Σ x·y` with sixteen interleaved partial sums (one AVX-512 register of f32, two of f64)
/// added up in a fixed tree, so it vectorises without a serial chain of additions and is
/// deterministic.
#[inline(always)]
pub(crate) fn vdot<T: Real>(x: &[T], y: &[T]) -> T {
    const L: usize = 16;
    let n = x.len().min(y.len());
    let (x, y) = (&x[..n], &y[..n]);
    let mut acc = [T::zero(); L];
    let xc = x.chunks_exact(L);
    let yc = y.chunks_exact(L);
    let (xr, yr) = (xc.remainder(), yc.remainder());
    for (a, b) in xc.zip(yc) {
        for l in 0..L {
            acc[l] += a[l] * b[l];
        }
    }
    let mut width = L;
    while width > 1 {
        width /= 2;
        for l in 0..width {
            let hi = acc[l + width];
            acc[l] += hi;
        }
    }
    let mut s = acc[0];
    for (a, b) in xr.iter().zip(yr) {
        s += *a * *b;
    }
    s
}

/// Large per-evaluation buffers kept between the evaluations of one descriptor. An MD run
/// evaluates a frame of the same size every step, and glibc unmaps blocks above its largest
/// mmap threshold (32 MiB) on free, so without reuse every step page-faults its biggest
/// buffers in again and the kernel zeroes them.
pub(crate) struct BufPool<T> {
    free: Mutex<Vec<Vec<T>>>,
}

/// Buffers a [`BufPool`] holds at most (one evaluation's kept angle pairs and layer outputs).
const POOL_MAX: usize = 64;

impl<T: Real> BufPool<T> {
    /// An empty pool.
    pub fn new() -> Self {
        BufPool {
            free: Mutex::new(Vec::new()),
        }
    }

    /// A buffer of `len` elements with unspecified (finite, stale) contents, for buffers
    /// whose every element is written before it is read. Debug builds fill it with NaN so
    /// a read of an unwritten element shows in the results.
    pub fn take_dirty(&self, len: usize) -> Vec<T> {
        if len == 0 {
            return Vec::new();
        }
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        let best = (0..free.len())
            .filter(|&i| free[i].capacity() >= len)
            .min_by_key(|&i| free[i].capacity());
        let mut v = match best {
            Some(i) => free.swap_remove(i),
            None => return vec![T::zero(); len],
        };
        drop(free);
        if v.len() >= len {
            v.truncate(len);
        } else {
            v.resize(len, T::zero());
        }
        if cfg!(debug_assertions) {
            v.fill(T::of(f64::NAN));
        }
        v
    }

    /// A zeroed buffer of `len` elements.
    pub fn take_zeroed(&self, len: usize) -> Vec<T> {
        let mut v = self.take_dirty(len);
        v.fill(T::zero());
        v
    }

    /// Keeps `v` for a later [`BufPool::take_dirty`].
    pub fn give(&self, v: Vec<T>) {
        if v.capacity() == 0 {
            return;
        }
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        if free.len() < POOL_MAX {
            free.push(v);
        }
    }
}

impl<T> Clone for BufPool<T> {
    /// A fresh, empty pool (pooled buffers hold no state worth copying).
    fn clone(&self) -> Self {
        BufPool {
            free: Mutex::new(Vec::new()),
        }
    }
}

impl<T> std::fmt::Debug for BufPool<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.free.lock().map(|v| v.len()).unwrap_or(0);
        write!(f, "BufPool({n} free)")
    }
}
