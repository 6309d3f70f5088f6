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
/// added up in a fixed tree, then the tail in order: deterministic, and no serial chain of
/// additions. LLVM's vectoriser splits the portable loop into two-lane pieces, so AVX-512
/// CPUs run the same sums, in the same order, written with intrinsics.
#[inline(always)]
pub(crate) fn vdot<T: Real>(x: &[T], y: &[T]) -> T {
    let n = x.len().min(y.len());
    let (x, y) = (&x[..n], &y[..n]);
    #[cfg(target_arch = "x86_64")]
    if crate::isa::level() == crate::isa::Level::Avx512 {
        use std::any::TypeId;
        if TypeId::of::<T>() == TypeId::of::<f32>() {
            // SAFETY: `T` is `f32` (same `TypeId`), so the slices have the same layout; the
            // CPU has AVX-512 F/DQ/VL (checked just above).
            let s = unsafe {
                vdot512::ps(
                    &*(x as *const [T] as *const [f32]),
                    &*(y as *const [T] as *const [f32]),
                )
            };
            return T::of(s as f64);
        }
        if TypeId::of::<T>() == TypeId::of::<f64>() {
            // SAFETY: as above, with `f64`.
            let s = unsafe {
                vdot512::pd(
                    &*(x as *const [T] as *const [f64]),
                    &*(y as *const [T] as *const [f64]),
                )
            };
            return T::of(s);
        }
    }
    vdot_portable(x, y)
}

/// [`vdot`] in portable Rust.
#[inline(always)]
fn vdot_portable<T: Real>(x: &[T], y: &[T]) -> T {
    const L: usize = 16;
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

/// [`vdot`]'s sums with AVX-512 intrinsics (multiply, then add: no FMA, same bits).
#[cfg(target_arch = "x86_64")]
mod vdot512 {
    use std::arch::x86_64::*;

    /// f32: lanes `l` hold the partial sums of elements `≡ l (mod 16)`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512dq,avx512vl")]
    pub(super) fn ps(x: &[f32], y: &[f32]) -> f32 {
        let n = x.len().min(y.len());
        let full = n / 16 * 16;
        let mut acc = _mm512_setzero_ps();
        let mut i = 0;
        while i < full {
            // SAFETY: i + 16 ≤ full ≤ len of both slices.
            let (a, b) = unsafe {
                (
                    _mm512_loadu_ps(x.as_ptr().add(i)),
                    _mm512_loadu_ps(y.as_ptr().add(i)),
                )
            };
            acc = _mm512_add_ps(acc, _mm512_mul_ps(a, b));
            i += 16;
        }
        // Tree: l += l + 8, then l + 4, l + 2, l + 1.
        let h8 = _mm256_add_ps(
            _mm512_castps512_ps256(acc),
            _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(acc))),
        );
        let h4 = _mm_add_ps(_mm256_castps256_ps128(h8), _mm256_extractf128_ps::<1>(h8));
        let h2 = _mm_add_ps(h4, _mm_movehl_ps(h4, h4));
        let h1 = _mm_add_ss(h2, _mm_movehdup_ps(h2));
        let mut s = _mm_cvtss_f32(h1);
        for (a, b) in x[full..n].iter().zip(&y[full..n]) {
            s += *a * *b;
        }
        s
    }

    /// f64: two registers hold partial sums `0..8` and `8..16`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512dq,avx512vl")]
    pub(super) fn pd(x: &[f64], y: &[f64]) -> f64 {
        let n = x.len().min(y.len());
        let full = n / 16 * 16;
        let (mut lo, mut hi) = (_mm512_setzero_pd(), _mm512_setzero_pd());
        let mut i = 0;
        while i < full {
            // SAFETY: i + 16 ≤ full ≤ len of both slices.
            unsafe {
                let p = x.as_ptr().add(i);
                let q = y.as_ptr().add(i);
                lo = _mm512_add_pd(lo, _mm512_mul_pd(_mm512_loadu_pd(p), _mm512_loadu_pd(q)));
                hi = _mm512_add_pd(
                    hi,
                    _mm512_mul_pd(_mm512_loadu_pd(p.add(8)), _mm512_loadu_pd(q.add(8))),
                );
            }
            i += 16;
        }
        let h8 = _mm512_add_pd(lo, hi);
        let h4 = _mm256_add_pd(_mm512_castpd512_pd256(h8), _mm512_extractf64x4_pd::<1>(h8));
        let h2 = _mm_add_pd(_mm256_castpd256_pd128(h4), _mm256_extractf128_pd::<1>(h4));
        let h1 = _mm_add_sd(h2, _mm_unpackhi_pd(h2, h2));
        let mut s = _mm_cvtsd_f64(h1);
        for (a, b) in x[full..n].iter().zip(&y[full..n]) {
            s += *a * *b;
        }
        s
    }
}

/// `dst.copy_from_slice(src)` with non-temporal stores: for the kept intermediates and
/// layer outputs, written once per pass and read back only a layer or a whole pass later.
/// Ordinary stores first read every line they miss (read-for-ownership), so streaming
/// `n_pairs × (e_dim + …)` values out of a block that lives in cache cost twice the
/// memory traffic; on our 2-core CI VM, streamed stores write 13–16 GB/s against 3–4 GB/s.
/// The bytes written are the same.
pub(crate) fn stream_copy<T: Copy>(dst: &mut [T], src: &[T]) {
    assert_eq!(dst.len(), src.len(), "stream_copy: length mismatch");
    #[cfg(target_arch = "x86_64")]
    {
        let bytes = std::mem::size_of_val(dst);
        let d = dst.as_mut_ptr().cast::<u8>();
        let s = src.as_ptr().cast::<u8>();
        // SAFETY: `dst` and `src` are distinct borrows of `bytes` bytes each (the borrow
        // rules forbid overlap); the CPU has AVX-512 F where `stream512` is called.
        unsafe {
            if crate::isa::level() == crate::isa::Level::Avx512 {
                stream512(d, s, bytes);
            } else {
                stream128(d, s, bytes);
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    dst.copy_from_slice(src);
}

/// [`stream_copy`] with 16-byte streamed stores (SSE2, part of x86-64).
///
/// # Safety
/// `d` and `s` are valid for `bytes` bytes and do not overlap.
#[cfg(target_arch = "x86_64")]
unsafe fn stream128(d: *mut u8, s: *const u8, bytes: usize) {
    use std::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_sfence, _mm_stream_si128};
    let head = d.align_offset(16).min(bytes);
    let body = (bytes - head) / 16 * 16;
    // SAFETY: every access stays within `0..bytes`; the streamed stores are 16-byte aligned
    // (`head` aligns `d`), as `_mm_stream_si128` requires. The fence orders them before any
    // later store or synchronisation, so other threads see the bytes once they see the
    // task's end.
    unsafe {
        std::ptr::copy_nonoverlapping(s, d, head);
        let mut i = head;
        while i < head + body {
            let v = _mm_loadu_si128(s.add(i).cast::<__m128i>());
            _mm_stream_si128(d.add(i).cast::<__m128i>(), v);
            i += 16;
        }
        std::ptr::copy_nonoverlapping(s.add(i), d.add(i), bytes - i);
        _mm_sfence();
    }
}

/// [`stream_copy`] with whole-line (64-byte) streamed stores: one store per line instead of
/// four, so the write-combining buffer always sends full lines.
///
/// # Safety
/// `d` and `s` are valid for `bytes` bytes and do not overlap; the CPU has AVX-512 F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn stream512(d: *mut u8, s: *const u8, bytes: usize) {
    use std::arch::x86_64::{__m512i, _mm512_loadu_si512, _mm512_stream_si512, _mm_sfence};
    let head = d.align_offset(64).min(bytes);
    let body = (bytes - head) / 64 * 64;
    // SAFETY: as in `stream128`, with 64-byte alignment for `_mm512_stream_si512`.
    unsafe {
        std::ptr::copy_nonoverlapping(s, d, head);
        let mut i = head;
        while i < head + body {
            let v = _mm512_loadu_si512(s.add(i).cast::<__m512i>());
            _mm512_stream_si512(d.add(i).cast::<__m512i>(), v);
            i += 64;
        }
        std::ptr::copy_nonoverlapping(s.add(i), d.add(i), bytes - i);
        _mm_sfence();
    }
}

/// A buffer whose first element lies on a 64-byte (cache-line) boundary, so that rows of
/// whole lines can be written with streamed stores; it derefs to its `len` elements. The
/// backing vector is fully initialised once and never shrinks, so re-using it for another
/// length (see [`BufPool`]) writes nothing.
#[derive(Default)]
pub(crate) struct ABuf<T> {
    v: Vec<T>,
    off: usize,
    len: usize,
}

impl<T: Clone> ABuf<T> {
    /// `len` copies of `x`.
    fn filled(x: T, len: usize) -> Self {
        if len == 0 {
            return ABuf {
                v: Vec::new(),
                off: 0,
                len: 0,
            };
        }
        let pad = 64 / std::mem::size_of::<T>().max(1);
        let v = vec![x; len + pad];
        // For f32/f64 a 64-byte boundary is at most 15/7 elements in.
        let off = v.as_ptr().align_offset(64);
        let off = if off <= pad { off } else { 0 };
        ABuf { v, off, len }
    }

    /// Elements it can hold without reallocating.
    fn capacity(&self) -> usize {
        self.v.len().saturating_sub(self.off)
    }

    /// Its elements as a slice.
    pub fn as_slice(&self) -> &[T] {
        self
    }
}

impl<T: Real> ABuf<T> {
    /// `len` zeros.
    pub fn zeroed(len: usize) -> Self {
        Self::filled(T::zero(), len)
    }
}

impl<T> std::ops::Deref for ABuf<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.v[self.off..self.off + self.len]
    }
}

impl<T> std::ops::DerefMut for ABuf<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.v[self.off..self.off + self.len]
    }
}

impl<T: Clone> Clone for ABuf<T> {
    /// A copy that is itself line-aligned (a cloned `Vec` may not be).
    fn clone(&self) -> Self {
        match self.first() {
            Some(x) => {
                let mut c = ABuf::filled(x.clone(), self.len);
                c.clone_from_slice(self);
                c
            }
            None => ABuf {
                v: Vec::new(),
                off: 0,
                len: 0,
            },
        }
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for ABuf<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ABuf({} elements)", self.len)
    }
}

/// Large per-evaluation buffers kept between the evaluations of one descriptor. An MD run
/// evaluates a frame of the same size every step, and glibc unmaps blocks above its largest
/// mmap threshold (32 MiB) on free, so without reuse every step page-faults its biggest
/// buffers in again and the kernel zeroes them.
pub(crate) struct BufPool<T> {
    free: Mutex<Vec<ABuf<T>>>,
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
    pub fn take_dirty(&self, len: usize) -> ABuf<T> {
        if len == 0 {
            return ABuf::default();
        }
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        let best = (0..free.len())
            .filter(|&i| free[i].capacity() >= len)
            .min_by_key(|&i| free[i].capacity());
        let mut v = match best {
            Some(i) => free.swap_remove(i),
            None => return ABuf::zeroed(len),
        };
        drop(free);
        v.len = len;
        if cfg!(debug_assertions) {
            v.fill(T::of(f64::NAN));
        }
        v
    }

    /// A zeroed buffer of `len` elements.
    pub fn take_zeroed(&self, len: usize) -> ABuf<T> {
        let mut v = self.take_dirty(len);
        v.fill(T::zero());
        v
    }

    /// Keeps `v` for a later [`BufPool::take_dirty`].
    pub fn give(&self, v: ABuf<T>) {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The intrinsic and portable sums agree bit for bit (the kernels run on either).
    #[test]
    fn vdot_variants_give_the_same_bits() {
        for n in [0usize, 1, 7, 16, 33, 64, 100] {
            let x: Vec<f64> = (0..n).map(|i| (i as f64 * 0.731).sin() * 1e3).collect();
            let y: Vec<f64> = (0..n).map(|i| (i as f64 * 1.37).cos()).collect();
            assert_eq!(
                vdot(&x, &y).to_bits(),
                vdot_portable(&x, &y).to_bits(),
                "f64 n={n}"
            );
            let (x32, y32): (Vec<f32>, Vec<f32>) = x
                .iter()
                .zip(&y)
                .map(|(&a, &b)| (a as f32, b as f32))
                .unzip();
            assert_eq!(
                vdot(&x32, &y32).to_bits(),
                vdot_portable(&x32, &y32).to_bits(),
                "f32 n={n}"
            );
            let want: f64 = x.iter().zip(&y).map(|(a, b)| a * b).sum();
            assert!((vdot(&x, &y) - want).abs() <= 1e-9 * want.abs().max(1.0));
        }
    }

    /// Streamed copies write exactly `src` into `dst`, whatever the alignment of either
    /// and the length (head, streamed body and tail), and nothing around them.
    /// One of the streamed copies under test.
    type Copy32 = fn(&mut [f32], &[f32]);

    #[test]
    fn stream_copy_writes_exactly_the_slice() {
        // Both widths of streamed stores, wherever the CPU runs them.
        #[cfg(target_arch = "x86_64")]
        let avx512 = crate::isa::level() == crate::isa::Level::Avx512;
        #[cfg(target_arch = "x86_64")]
        let copies: Vec<Copy32> = vec![
            stream_copy,
            // SAFETY: the test passes slices of equal length from distinct vectors.
            |d, s| unsafe { stream128(d.as_mut_ptr().cast(), s.as_ptr().cast(), 4 * s.len()) },
        ];
        #[cfg(not(target_arch = "x86_64"))]
        let copies: Vec<Copy32> = vec![stream_copy];
        let src: Vec<f32> = (0..300).map(|i| i as f32 * 0.5 + 1.0).collect();
        for copy in copies {
            for d0 in 0..20 {
                for s0 in 0..3 {
                    for n in [0usize, 1, 3, 4, 5, 15, 16, 17, 31, 32, 33, 63, 64, 65, 200] {
                        let mut dst = vec![-7.0f32; 300];
                        copy(&mut dst[d0..d0 + n], &src[s0..s0 + n]);
                        assert_eq!(&dst[d0..d0 + n], &src[s0..s0 + n], "d0={d0} s0={s0} n={n}");
                        assert!(dst[..d0].iter().chain(&dst[d0 + n..]).all(|&v| v == -7.0));
                    }
                }
            }
        }
        #[cfg(target_arch = "x86_64")]
        eprintln!("stream_copy checked with 16-byte stores and, on AVX-512: {avx512}, 64-byte");
        let src: Vec<f64> = (0..70).map(|i| i as f64 - 0.25).collect();
        let mut dst = vec![0.0f64; 71];
        stream_copy(&mut dst[1..], &src);
        assert_eq!(&dst[1..], &src[..]);
    }
}
