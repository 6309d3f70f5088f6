//! AVX-512 kernels that run a whole angle-pair block in registers (parallel update,
//! silu/silut activations).
//!
//! The portable pipeline of [`super::layer`] runs a block as separate passes: product
//! (`gemm`), the edge terms added, the activation, the angle update, the reduction into the
//! edge message. Each pass moves the block's `nb × (e_dim + a_dim)` values through L1/L2
//! again, and the passes cost more than the product. Here each tile of 2 pair rows × up to 6
//! vectors is multiplied with `k`-broadcast FMAs (`[W1a | W2a]` is small and stays in L1) and
//! finished while it is still in registers: edge terms, σ, silu and silu', silut's rare
//! lanes above the threshold by the scalar definition, the kept rows, the updated angle and
//! the edge message. Kept rows go straight to the line-aligned kept buffers with streamed
//! stores, so the memory writes overlap the arithmetic. The backward is one pass too: per
//! pair the gradients of `p1` and `p2`, the switch gradient and the sums per `j` and per `k`,
//! then one product with `[W1a | W2a]ᵀ` per block. Sums run in a fixed order (pair rows
//! ascending), so results do not depend on the thread count; they differ from the portable
//! path in the last bits (FMA, another summation order of the product).
//!
//! Each of `e_dim` and `a_dim` is padded to whole vectors in the packed weights; the last
//! vector of each is masked in every load and store, so any width works.

use crate::{Activation, Real};
use std::any::TypeId;

/// Vectors per tile row.
const PW_MAX: usize = 6;
/// Pair rows per tile: 12 accumulators, leaving registers for the epilogue's σ chains
/// (4 rows spilled and ran no faster).
const ROWS: usize = 2;

/// Lanes of a 512-bit vector of `T`.
fn lanes<T>() -> usize {
    64 / std::mem::size_of::<T>()
}

/// `n` rounded up to whole vectors of `T`.
fn padded<T>(n: usize) -> usize {
    n.div_ceil(lanes::<T>()) * lanes::<T>()
}

/// `[x1 | x2]` for every row, each part zero-padded to whole vectors (rows of
/// `padded(w1) + padded(w2)`).
pub(crate) fn pack_cols<T: Real>(x1: &[T], w1: usize, x2: &[T], w2: usize) -> Vec<T> {
    let rows = x1
        .len()
        .checked_div(w1)
        .unwrap_or_else(|| x2.len() / w2.max(1));
    let (p1, p2) = (padded::<T>(w1), padded::<T>(w2));
    let mut out = vec![T::zero(); rows * (p1 + p2)];
    for r in 0..rows {
        let o = r * (p1 + p2);
        out[o..o + w1].copy_from_slice(&x1[r * w1..(r + 1) * w1]);
        out[o + p1..o + p1 + w2].copy_from_slice(&x2[r * w2..(r + 1) * w2]);
    }
    out
}

/// Read-only inputs of one pair block's forward.
pub(crate) struct PairFwd<'a, T> {
    pub ed: usize,
    pub ad: usize,
    /// Angle edges of the atom; row `r` of the block is pair `(j0 + r / na, r % na)`.
    pub na: usize,
    pub j0: usize,
    pub j1: usize,
    /// The block's input angles (`nb × a_dim`): the product's left operand, unless `rank1`.
    pub a: &'a [T],
    /// Layer 0: the product is `cos ⊗ v + c` (`cos` per row; `v`, `c` packed like `w12`).
    pub rank1: Option<(&'a [T], &'a [T], &'a [T])>,
    /// `[W1a | W2a]` packed by [`pack_cols`] (`a_dim` rows).
    pub w12: &'a [T],
    /// Per angle edge, `(qa + e_ik)` and `e_ij` rows (`na × (e_dim + a_dim)`).
    pub ek: &'a [T],
    pub ej: &'a [T],
    /// Per angle edge, its angle switch.
    pub sw: &'a [T],
    pub act: Activation,
    /// Angle update `alpha · a + beta ⊙ φ(p2)`.
    pub alpha: T,
    pub beta: &'a [T],
}

/// What one pair block's forward writes (each when given).
pub(crate) struct PairFwdOut<'a, T> {
    /// `φ(p1)`, `φ'(p1)` (`nb × e_dim`), `φ'(p2)` (`nb × a_dim`).
    pub p1: Option<&'a mut [T]>,
    pub p1d: Option<&'a mut [T]>,
    pub p2d: Option<&'a mut [T]>,
    /// Updated angles (`nb × a_dim`).
    pub at: Option<&'a mut [T]>,
    /// Edge message rows `e_dim` wide, row `aidx[j]` for angle edge `j`: set to
    /// `Σ_k sw_j sw_k φ(p1_jk) / sa` for `j0 ≤ j < j1`.
    pub m: Option<(&'a mut [T], &'a [u32], T)>,
    /// Write `p1`, `p1d`, `p2d` and `at` with streamed stores: they are the kept buffers
    /// themselves (written once, read a pass later), every row starting on a cache line.
    pub stream: bool,
}

/// Whether rows of `width` elements from `rows` start on cache lines, as
/// [`PairFwdOut::stream`] requires.
pub(crate) fn line_rows<T>(rows: &[T], width: usize) -> bool {
    (rows.as_ptr() as usize).is_multiple_of(64)
        && (width * std::mem::size_of::<T>()).is_multiple_of(64)
}

/// Runs the block with the fused kernel and returns true, or returns false (and writes
/// nothing) where it does not apply: no AVX-512, an activation other than silu/silut, or a
/// model wider than the tile bookkeeping.
pub(crate) fn pair_forward<T: Real>(x: &PairFwd<T>, out: &mut PairFwdOut<T>) -> bool {
    let thr = match x.act {
        Activation::Silu => f64::INFINITY,
        Activation::SiluT { threshold, .. } => threshold,
        _ => return false,
    };
    #[cfg(target_arch = "x86_64")]
    if crate::isa::level() == crate::isa::Level::Avx512 {
        check(x, out);
        if TypeId::of::<T>() == TypeId::of::<f32>() {
            // SAFETY: `T` is `f32` (same `TypeId`), so the structs have the same layout; the
            // CPU has AVX-512 F/DQ/VL (checked above); `check` validated every length.
            unsafe {
                let (x, out) = (
                    &*(x as *const PairFwd<T> as *const PairFwd<f32>),
                    &mut *(out as *mut PairFwdOut<T> as *mut PairFwdOut<f32>),
                );
                avx512::forward(x, out, thr as f32);
            }
            return true;
        }
        if TypeId::of::<T>() == TypeId::of::<f64>() {
            // SAFETY: as above, with `f64`.
            unsafe {
                let (x, out) = (
                    &*(x as *const PairFwd<T> as *const PairFwd<f64>),
                    &mut *(out as *mut PairFwdOut<T> as *mut PairFwdOut<f64>),
                );
                avx512::forward(x, out, thr);
            }
            return true;
        }
    }
    let _ = (out, thr);
    false
}

/// Panics unless every slice the kernel touches has the length its indexing assumes (the
/// kernel itself reads and writes through unchecked pointers).
fn check<T: Real>(x: &PairFwd<T>, out: &PairFwdOut<T>) {
    let (ed, ad, na) = (x.ed, x.ad, x.na);
    let nb = (x.j1 - x.j0) * na;
    let wp = padded::<T>(ed) + padded::<T>(ad);
    assert!(x.j0 <= x.j1 && x.j1 <= na, "pair block rows");
    assert!(
        x.a.len() >= nb * ad && x.beta.len() >= ad,
        "pair block angles"
    );
    assert!(x.w12.len() >= ad * wp, "packed pair weights");
    if let Some((cos, v, c)) = x.rank1 {
        assert!(
            cos.len() >= nb && v.len() >= wp && c.len() >= wp,
            "rank-one pair terms"
        );
    }
    let wq = ed + ad;
    assert!(x.ek.len() >= na * wq && x.ej.len() >= na * wq && x.sw.len() >= na);
    for (s, w) in [(&out.p1, ed), (&out.p1d, ed), (&out.p2d, ad), (&out.at, ad)] {
        assert!(
            s.as_ref().is_none_or(|s| s.len() >= nb * w),
            "pair block output"
        );
        // Streamed stores fault on an address that is not 64-byte aligned.
        assert!(
            !out.stream || s.as_ref().is_none_or(|s| line_rows(s, w)),
            "streamed pair rows must start on cache lines"
        );
    }
    if let Some((m, aidx, _)) = &out.m {
        assert!(aidx.len() >= na, "angle edge index");
        assert!(
            aidx.iter().all(|&e| (e as usize + 1) * ed <= m.len()),
            "edge message rows"
        );
    }
}

/// Read-only inputs of one pair block's backward.
pub(crate) struct PairBwd<'a, T> {
    pub ed: usize,
    pub ad: usize,
    /// As in [`PairFwd`].
    pub na: usize,
    pub j0: usize,
    pub j1: usize,
    /// The block's `φ(p1)`, `φ'(p1)` (`nb × e_dim`) and `φ'(p2)` (`nb × a_dim`).
    pub p1: &'a [T],
    pub p1d: &'a [T],
    pub p2d: &'a [T],
    /// ∂L/∂ edge message, `e_dim`-wide rows indexed by `aidx`.
    pub gm: &'a [T],
    pub aidx: &'a [u32],
    /// Per angle edge, its angle switch; `sa` = √(angle normaliser).
    pub sw: &'a [T],
    pub sa: T,
    /// The angle update's `alpha` and `beta`.
    pub alpha: T,
    pub beta: &'a [T],
}

/// What one pair block's backward writes.
pub(crate) struct PairBwdOut<'a, T> {
    /// In: ∂L/∂ updated angles; out: their `alpha ·` part (the product with `[W1a | W2a]ᵀ`
    /// is the caller's).
    pub ga: &'a mut [T],
    /// ∂L/∂[p1 | p2] (`nb × (e_dim + a_dim)`).
    pub gp: &'a mut [T],
    /// Summed per k and per j: ∂L/∂(qa + e_ik) and ∂L/∂e_ij (`na × (e_dim + a_dim)`).
    pub gek: &'a mut [T],
    pub gej: &'a mut [T],
    /// Summed per angle edge: ∂L/∂ its angle switch.
    pub gsw: &'a mut [T],
}

/// The backward of [`pair_forward`]'s block in one pass over its rows, or false (nothing
/// written) without AVX-512. Per pair `(j, k)`:
/// `gp1 = gm_j sw_j sw_k / sa ⊙ φ'(p1)`, `gp2 = beta ⊙ ga ⊙ φ'(p2)`, `ga ← alpha ga`, and
/// the switch gradients from `φ(p1)·gm_j`.
pub(crate) fn pair_backward<T: Real>(x: &PairBwd<T>, out: &mut PairBwdOut<T>) -> bool {
    #[cfg(target_arch = "x86_64")]
    if crate::isa::level() == crate::isa::Level::Avx512 {
        check_bwd(x, out);
        if TypeId::of::<T>() == TypeId::of::<f32>() {
            // SAFETY: `T` is `f32` (same `TypeId`), so the structs have the same layout; the
            // CPU has AVX-512 F/DQ/VL (checked above); `check_bwd` validated every length.
            unsafe {
                let (x, out) = (
                    &*(x as *const PairBwd<T> as *const PairBwd<f32>),
                    &mut *(out as *mut PairBwdOut<T> as *mut PairBwdOut<f32>),
                );
                avx512::backward(x, out);
            }
            return true;
        }
        if TypeId::of::<T>() == TypeId::of::<f64>() {
            // SAFETY: as above, with `f64`.
            unsafe {
                let (x, out) = (
                    &*(x as *const PairBwd<T> as *const PairBwd<f64>),
                    &mut *(out as *mut PairBwdOut<T> as *mut PairBwdOut<f64>),
                );
                avx512::backward(x, out);
            }
            return true;
        }
    }
    let _ = out;
    false
}

/// [`check`] for the backward.
fn check_bwd<T: Real>(x: &PairBwd<T>, out: &PairBwdOut<T>) {
    let (ed, ad, na) = (x.ed, x.ad, x.na);
    let wq = ed + ad;
    let nb = (x.j1 - x.j0) * na;
    assert!(x.j0 <= x.j1 && x.j1 <= na, "pair block rows");
    assert!(x.p1.len() >= nb * ed && x.p1d.len() >= nb * ed && x.p2d.len() >= nb * ad);
    assert!(x.aidx.len() >= na && x.sw.len() >= na && x.beta.len() >= ad);
    assert!(
        x.aidx.iter().all(|&e| (e as usize + 1) * ed <= x.gm.len()),
        "gm rows"
    );
    assert!(
        out.ga.len() >= nb * ad && out.gp.len() >= nb * wq,
        "pair gradients"
    );
    assert!(out.gek.len() >= na * wq && out.gej.len() >= na * wq && out.gsw.len() >= na);
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{padded, PairBwd, PairBwdOut, PairFwd, PairFwdOut, PW_MAX, ROWS};
    use crate::Real;
    use std::arch::x86_64::*;

    /// The AVX-512 operations the kernels use, for `f32` (16 lanes) and `f64` (8 lanes).
    /// Every method is a thin wrapper of one intrinsic (or of the `fastact` σ), inlined into
    /// the `#[target_feature]` kernels; masks have one bit per lane.
    pub(super) trait Simd: Real {
        type V: Copy;
        const L: usize;
        unsafe fn vzero() -> Self::V;
        unsafe fn vsplat(x: Self) -> Self::V;
        unsafe fn vld(p: *const Self) -> Self::V;
        unsafe fn vldm(m: u32, p: *const Self) -> Self::V;
        unsafe fn vstm(p: *mut Self, m: u32, v: Self::V);
        unsafe fn vadd(a: Self::V, b: Self::V) -> Self::V;
        unsafe fn vsub(a: Self::V, b: Self::V) -> Self::V;
        unsafe fn vmul(a: Self::V, b: Self::V) -> Self::V;
        /// `a · b + c`.
        unsafe fn vfma(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
        unsafe fn vsigmoid(x: Self::V) -> Self::V;
        /// Lanes of `m` where `x ≥ t`.
        unsafe fn vge(m: u32, x: Self::V, t: Self::V) -> u32;
        /// The sum of the lanes.
        unsafe fn vsum(x: Self::V) -> Self;
        /// Streamed (non-temporal) store to a 64-byte aligned `p`.
        unsafe fn vstream(p: *mut Self, v: Self::V);
    }

    macro_rules! simd_impl {
        ($t:ty, $v:ty, $l:expr, $m:ty, $set1:ident, $zero:ident, $ld:ident, $ldm:ident,
         $stm:ident, $add:ident, $sub:ident, $mul:ident, $fma:ident, $sig:path, $cmp:ident,
         $sum:ident, $stream:ident) => {
            impl Simd for $t {
                type V = $v;
                const L: usize = $l;
                #[inline(always)]
                unsafe fn vzero() -> $v {
                    $zero()
                }
                #[inline(always)]
                unsafe fn vsplat(x: $t) -> $v {
                    $set1(x)
                }
                #[inline(always)]
                unsafe fn vld(p: *const $t) -> $v {
                    $ld(p)
                }
                #[inline(always)]
                unsafe fn vldm(m: u32, p: *const $t) -> $v {
                    $ldm(m as $m, p)
                }
                #[inline(always)]
                unsafe fn vstm(p: *mut $t, m: u32, v: $v) {
                    $stm(p, m as $m, v)
                }
                #[inline(always)]
                unsafe fn vadd(a: $v, b: $v) -> $v {
                    $add(a, b)
                }
                #[inline(always)]
                unsafe fn vsub(a: $v, b: $v) -> $v {
                    $sub(a, b)
                }
                #[inline(always)]
                unsafe fn vmul(a: $v, b: $v) -> $v {
                    $mul(a, b)
                }
                #[inline(always)]
                unsafe fn vfma(a: $v, b: $v, c: $v) -> $v {
                    $fma(a, b, c)
                }
                #[inline(always)]
                unsafe fn vsigmoid(x: $v) -> $v {
                    $sig(x)
                }
                #[inline(always)]
                unsafe fn vge(m: u32, x: $v, t: $v) -> u32 {
                    $cmp::<_CMP_GE_OQ>(m as $m, x, t) as u32
                }
                #[inline(always)]
                unsafe fn vsum(x: $v) -> $t {
                    $sum(x)
                }
                #[inline(always)]
                unsafe fn vstream(p: *mut $t, v: $v) {
                    $stream(p, v)
                }
            }
        };
    }

    simd_impl!(
        f32,
        __m512,
        16,
        u16,
        _mm512_set1_ps,
        _mm512_setzero_ps,
        _mm512_loadu_ps,
        _mm512_maskz_loadu_ps,
        _mm512_mask_storeu_ps,
        _mm512_add_ps,
        _mm512_sub_ps,
        _mm512_mul_ps,
        _mm512_fmadd_ps,
        crate::fastact::sigmoid_ps,
        _mm512_mask_cmp_ps_mask,
        _mm512_reduce_add_ps,
        _mm512_stream_ps
    );
    simd_impl!(
        f64,
        __m512d,
        8,
        u8,
        _mm512_set1_pd,
        _mm512_setzero_pd,
        _mm512_loadu_pd,
        _mm512_maskz_loadu_pd,
        _mm512_mask_storeu_pd,
        _mm512_add_pd,
        _mm512_sub_pd,
        _mm512_mul_pd,
        _mm512_fmadd_pd,
        crate::fastact::sigmoid_pd,
        _mm512_mask_cmp_pd_mask,
        _mm512_reduce_add_pd,
        _mm512_stream_pd
    );

    /// Where vector `v` of a packed row lies in the unpadded data.
    #[derive(Clone, Copy)]
    struct Col {
        /// In the `e_dim` part (else the `a_dim` part).
        first: bool,
        /// Offset in a `[e_dim | a_dim]` row.
        off: usize,
        /// Its live lanes.
        mask: u32,
    }

    #[inline(always)]
    fn col<E: Simd>(ed: usize, ad: usize, v: usize) -> Col {
        let n1 = padded::<E>(ed) / E::L;
        let (first, base, width) = if v < n1 {
            (true, v * E::L, ed)
        } else {
            (false, (v - n1) * E::L, ad)
        };
        let live = (width - base).min(E::L);
        Col {
            first,
            off: if first { base } else { ed + base },
            mask: ((1u64 << live) - 1) as u32,
        }
    }

    /// Constants of one block's epilogue.
    struct Epi<'a, E: Simd> {
        x: &'a PairFwd<'a, E>,
        one: E::V,
        thr: E::V,
        alpha: E::V,
    }

    /// `φ(pre)` and `φ'(pre)` for silu on `N` vectors at once (independent chains that the
    /// core overlaps), with lanes at or above the threshold (silut's tail) redone by the
    /// scalar definition.
    #[inline(always)]
    unsafe fn silu<E: Simd, const N: usize>(
        e: &Epi<E>,
        masks: &[u32; N],
        pre: &[E::V; N],
    ) -> ([E::V; N], [E::V; N]) {
        let mut y = [E::vzero(); N];
        let mut d = [E::vzero(); N];
        for q in 0..N {
            let s = E::vsigmoid(pre[q]);
            y[q] = E::vmul(pre[q], s);
            d[q] = E::vfma(y[q], E::vsub(e.one, s), s);
        }
        let mut any = 0;
        for q in 0..N {
            any |= E::vge(masks[q], pre[q], e.thr);
        }
        if any != 0 {
            for q in 0..N {
                fix_over(e, masks[q], pre[q], &mut y[q], &mut d[q]);
            }
        }
        (y, d)
    }

    /// Silut's lanes at or above the threshold, by the scalar definition (rare).
    #[inline(never)]
    #[target_feature(enable = "avx512f,avx512dq,avx512vl,avx2,fma")]
    unsafe fn fix_over<E: Simd>(e: &Epi<E>, mask: u32, pre: E::V, y: &mut E::V, d: &mut E::V) {
        let mut bits = E::vge(mask, pre, e.thr);
        if bits == 0 {
            return;
        }
        let mut buf = [[<E as num_traits::Zero>::zero(); 16]; 3];
        let [p, yy, dd] = &mut buf;
        let all = ((1u64 << E::L) - 1) as u32;
        E::vstm(p.as_mut_ptr(), all, pre);
        E::vstm(yy.as_mut_ptr(), all, *y);
        E::vstm(dd.as_mut_ptr(), all, *d);
        while bits != 0 {
            let l = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            (yy[l], dd[l]) = e.x.act.apply_grad(p[l]);
        }
        *y = E::vld(yy.as_ptr());
        *d = E::vld(dd.as_ptr());
    }

    /// One tile: pair rows `r0 .. r0 + R`, vectors `v0 .. v0 + PW` of the packed row.
    #[inline(always)]
    unsafe fn tile<E: Simd, const R: usize, const PW: usize>(
        e: &Epi<E>,
        out: &mut PairFwdOut<E>,
        r0: usize,
        v0: usize,
    ) {
        let x = e.x;
        let (ed, ad, na) = (x.ed, x.ad, x.na);
        let wp = padded::<E>(ed) + padded::<E>(ad);
        let mut acc = [[E::vzero(); PW]; R];
        match x.rank1 {
            Some((cos, v, c)) => {
                for r in 0..R {
                    let s = E::vsplat(*cos.as_ptr().add(r0 + r));
                    for q in 0..PW {
                        let o = (v0 + q) * E::L;
                        acc[r][q] =
                            E::vfma(s, E::vld(v.as_ptr().add(o)), E::vld(c.as_ptr().add(o)));
                    }
                }
            }
            None => {
                let ap = x.a.as_ptr().add(r0 * ad);
                let wp0 = x.w12.as_ptr().add(v0 * E::L);
                for k in 0..ad {
                    let mut w = [E::vzero(); PW];
                    for q in 0..PW {
                        w[q] = E::vld(wp0.add(k * wp + q * E::L));
                    }
                    for r in 0..R {
                        let s = E::vsplat(*ap.add(r * ad + k));
                        for q in 0..PW {
                            acc[r][q] = E::vfma(s, w[q], acc[r][q]);
                        }
                    }
                }
            }
        }
        let wq = ed + ad;
        let st = out.stream;
        let mut cols = [col::<E>(ed, ad, v0); PW];
        let mut masks = [0u32; PW];
        for q in 0..PW {
            cols[q] = col::<E>(ed, ad, v0 + q);
            masks[q] = cols[q].mask;
        }
        for r in 0..R {
            let row = r0 + r;
            let jj = x.j0 + row / na;
            let kk = row % na;
            let ekp = x.ek.as_ptr().add(kk * wq);
            let ejp = x.ej.as_ptr().add(jj * wq);
            let mut pre = [E::vzero(); PW];
            for q in 0..PW {
                let c = cols[q];
                let t = E::vadd(
                    E::vldm(c.mask, ekp.add(c.off)),
                    E::vldm(c.mask, ejp.add(c.off)),
                );
                pre[q] = E::vadd(t, acc[r][q]);
            }
            let (y, d) = silu(e, &masks, &pre);
            let f = E::vsplat(*x.sw.as_ptr().add(jj) * *x.sw.as_ptr().add(kk));
            for q in 0..PW {
                let c = cols[q];
                if c.first {
                    let o = row * ed + c.off;
                    if let Some(p1) = out.p1.as_deref_mut() {
                        put(st, p1.as_mut_ptr().add(o), c.mask, y[q]);
                    }
                    if let Some(p1d) = out.p1d.as_deref_mut() {
                        put(st, p1d.as_mut_ptr().add(o), c.mask, d[q]);
                    }
                    if let Some((m, aidx, _)) = out.m.as_mut() {
                        let mp = m
                            .as_mut_ptr()
                            .add(*aidx.as_ptr().add(jj) as usize * ed + c.off);
                        E::vstm(mp, c.mask, E::vfma(f, y[q], E::vldm(c.mask, mp)));
                    }
                } else {
                    let o = row * ad + c.off - ed;
                    if let Some(p2d) = out.p2d.as_deref_mut() {
                        put(st, p2d.as_mut_ptr().add(o), c.mask, d[q]);
                    }
                    if let Some(at) = out.at.as_deref_mut() {
                        let a = E::vldm(c.mask, x.a.as_ptr().add(o));
                        let b = E::vldm(c.mask, x.beta.as_ptr().add(c.off - ed));
                        let v = E::vfma(e.alpha, a, E::vmul(b, y[q]));
                        put(st, at.as_mut_ptr().add(o), c.mask, v);
                    }
                }
            }
        }
    }

    /// Stores `v` at `p`: streamed (every lane live and `p` line-aligned, which `stream`
    /// promises) or masked.
    #[inline(always)]
    unsafe fn put<E: Simd>(stream: bool, p: *mut E, mask: u32, v: E::V) {
        if stream {
            E::vstream(p, v);
        } else {
            E::vstm(p, mask, v);
        }
    }

    /// Tiles of `R` rows at `r0` across the whole packed row.
    #[inline(always)]
    unsafe fn rows<E: Simd, const R: usize>(e: &Epi<E>, out: &mut PairFwdOut<E>, r0: usize) {
        let nv = (padded::<E>(e.x.ed) + padded::<E>(e.x.ad)) / E::L;
        let mut v0 = 0;
        while v0 < nv {
            match (nv - v0).min(PW_MAX) {
                1 => tile::<E, R, 1>(e, out, r0, v0),
                2 => tile::<E, R, 2>(e, out, r0, v0),
                3 => tile::<E, R, 3>(e, out, r0, v0),
                4 => tile::<E, R, 4>(e, out, r0, v0),
                5 => tile::<E, R, 5>(e, out, r0, v0),
                _ => tile::<E, R, PW_MAX>(e, out, r0, v0),
            }
            v0 += PW_MAX;
        }
    }

    /// The fused forward of one pair block.
    ///
    /// # Safety
    /// The CPU has AVX-512 F/DQ/VL; `super::check` accepted `x` and `out`.
    #[target_feature(enable = "avx512f,avx512dq,avx512vl,avx2,fma")]
    pub(super) unsafe fn forward<E: Simd>(x: &PairFwd<E>, out: &mut PairFwdOut<E>, thr: E) {
        let ed = x.ed;
        if let Some((m, aidx, _)) = out.m.as_mut() {
            for jj in x.j0..x.j1 {
                let o = aidx[jj] as usize * ed;
                m[o..o + ed].fill(<E as num_traits::Zero>::zero());
            }
        }
        let e = Epi {
            x,
            one: E::vsplat(<E as num_traits::One>::one()),
            thr: E::vsplat(thr),
            alpha: E::vsplat(x.alpha),
        };
        let nb = (x.j1 - x.j0) * x.na;
        let mut r0 = 0;
        while r0 + ROWS <= nb {
            rows::<E, ROWS>(&e, out, r0);
            r0 += ROWS;
        }
        while r0 < nb {
            rows::<E, 1>(&e, out, r0);
            r0 += 1;
        }
        if let Some((m, aidx, sa)) = out.m.as_mut() {
            for jj in x.j0..x.j1 {
                let o = aidx[jj] as usize * ed;
                for v in &mut m[o..o + ed] {
                    *v = *v / *sa;
                }
            }
        }
        if out.stream {
            // Orders the streamed stores before the task's end (as `stream_copy` does).
            _mm_sfence();
        }
    }

    /// The one-pass backward of one pair block.
    ///
    /// # Safety
    /// The CPU has AVX-512 F/DQ/VL; `super::check_bwd` accepted `x` and `out`.
    #[target_feature(enable = "avx512f,avx512dq,avx512vl,avx2,fma")]
    pub(super) unsafe fn backward<E: Simd>(x: &PairBwd<E>, out: &mut PairBwdOut<E>) {
        let (ed, ad, na) = (x.ed, x.ad, x.na);
        let wq = ed + ad;
        let (n1, n2) = (ed.div_ceil(E::L), ad.div_ceil(E::L));
        let mask = |width: usize, v: usize| ((1u64 << (width - v * E::L).min(E::L)) - 1) as u32;
        let alpha = E::vsplat(x.alpha);
        let gp = out.gp.as_mut_ptr();
        let ga = out.ga.as_mut_ptr();
        let gek = out.gek.as_mut_ptr();
        let gej = out.gej.as_mut_ptr();
        for jj in x.j0..x.j1 {
            let aj = *x.sw.get_unchecked(jj);
            let gmj = x.gm.as_ptr().add(*x.aidx.get_unchecked(jj) as usize * ed);
            let gejr = gej.add(jj * wq);
            let mut gaj = <E as num_traits::Zero>::zero();
            for kk in 0..na {
                let r = (jj - x.j0) * na + kk;
                let ak = *x.sw.get_unchecked(kk);
                let fc = E::vsplat(aj * ak / x.sa);
                let gekr = gek.add(kk * wq);
                let gpr = gp.add(r * wq);
                let mut dot = E::vzero();
                for v in 0..n1 {
                    let (m, o) = (mask(ed, v), v * E::L);
                    let g = E::vldm(m, gmj.add(o));
                    let p1 = E::vldm(m, x.p1.as_ptr().add(r * ed + o));
                    let p1d = E::vldm(m, x.p1d.as_ptr().add(r * ed + o));
                    dot = E::vfma(p1, g, dot);
                    let d = E::vmul(E::vmul(g, fc), p1d);
                    E::vstm(gpr.add(o), m, d);
                    E::vstm(gekr.add(o), m, E::vadd(E::vldm(m, gekr.add(o)), d));
                    E::vstm(gejr.add(o), m, E::vadd(E::vldm(m, gejr.add(o)), d));
                }
                let sjk = E::vsum(dot);
                gaj += ak * sjk;
                *out.gsw.get_unchecked_mut(kk) += aj * sjk / x.sa;
                for v in 0..n2 {
                    let (m, o) = (mask(ad, v), v * E::L);
                    let gar = ga.add(r * ad + o);
                    let a = E::vldm(m, gar);
                    let b = E::vldm(m, x.beta.as_ptr().add(o));
                    let p2d = E::vldm(m, x.p2d.as_ptr().add(r * ad + o));
                    let d = E::vmul(E::vmul(b, a), p2d);
                    E::vstm(gar, m, E::vmul(a, alpha));
                    let o = ed + o;
                    E::vstm(gpr.add(o), m, d);
                    E::vstm(gekr.add(o), m, E::vadd(E::vldm(m, gekr.add(o)), d));
                    E::vstm(gejr.add(o), m, E::vadd(E::vldm(m, gejr.add(o)), d));
                }
            }
            *out.gsw.get_unchecked_mut(jj) += gaj / x.sa;
        }
    }
}
