//! Slice activations that vectorise: a branch-free `exp` (Cephes range reduction and
//! polynomial, ≤ 2 ulp) inlined into simple loops, compiled three times (baseline,
//! AVX2+FMA, AVX-512) and chosen at run time. Used for the activations DeePMD-kit models use (silu, silut/custom_silu,
//! sigmoid, tanh, gelu) by every [`crate::nn::Layer`] and the DPA3 kernels; the others go
//! through [`Activation::apply_grad`].
//!
//! The dispatch by `TypeId` keeps the public `T: Real` bound unchanged.

use crate::{Activation, Real};
use std::any::TypeId;

/// Applies φ to `x` in place; with `d`, also writes φ'.
pub(crate) fn activate<T: Real>(act: Activation, x: &mut [T], d: Option<&mut [T]>) {
    if TypeId::of::<T>() == TypeId::of::<f32>() {
        // SAFETY: `T` is `f32` (identical `TypeId`), so `[T]` and `[f32]` have the same layout
        // and the reborrow keeps the original lifetimes and exclusivity.
        let (x, d) = unsafe {
            (
                &mut *(x as *mut [T] as *mut [f32]),
                d.map(|d| &mut *(d as *mut [T] as *mut [f32])),
            )
        };
        return dispatch_f32(act, x, d);
    }
    if TypeId::of::<T>() == TypeId::of::<f64>() {
        // SAFETY: as above, with `f64`.
        let (x, d) = unsafe {
            (
                &mut *(x as *mut [T] as *mut [f64]),
                d.map(|d| &mut *(d as *mut [T] as *mut [f64])),
            )
        };
        return dispatch_f64(act, x, d);
    }
    generic(act, x, d);
}

fn generic<T: Real>(act: Activation, x: &mut [T], d: Option<&mut [T]>) {
    match d {
        Some(d) => {
            for (v, g) in x.iter_mut().zip(d.iter_mut()) {
                let (a, da) = act.apply_grad(*v);
                *v = a;
                *g = da;
            }
        }
        None => {
            for v in x.iter_mut() {
                *v = act.apply(*v);
            }
        }
    }
}

macro_rules! float_kernels {
    ($t:ty, $mod:ident, $sigmoid:ident) => {
        mod $mod {
            use super::$sigmoid as sigmoid;
            use crate::Activation;

            const BLOCK: usize = 64;

            #[inline(always)]
            pub fn silu(x: &mut [$t], d: Option<&mut [$t]>) {
                match d {
                    Some(d) => {
                        for (v, g) in x.iter_mut().zip(d.iter_mut()) {
                            let xv = *v;
                            let s = sigmoid(xv);
                            *v = xv * s;
                            *g = s + xv * s * (1.0 - s);
                        }
                    }
                    None => {
                        for v in x.iter_mut() {
                            let xv = *v;
                            *v = xv * sigmoid(xv);
                        }
                    }
                }
            }

            #[inline(always)]
            pub fn sigm(x: &mut [$t], d: Option<&mut [$t]>) {
                match d {
                    Some(d) => {
                        for (v, g) in x.iter_mut().zip(d.iter_mut()) {
                            let s = sigmoid(*v);
                            *v = s;
                            *g = s * (1.0 - s);
                        }
                    }
                    None => {
                        for v in x.iter_mut() {
                            *v = sigmoid(*v);
                        }
                    }
                }
            }

            /// `1 − 2/(e^{2x} + 1)`, i.e. `1 − 2σ(−2x)`.
            #[inline(always)]
            fn tanh(x: $t) -> $t {
                1.0 - 2.0 * sigmoid(-2.0 * x)
            }

            #[inline(always)]
            pub fn tanh_s(x: &mut [$t], d: Option<&mut [$t]>) {
                match d {
                    Some(d) => {
                        for (v, g) in x.iter_mut().zip(d.iter_mut()) {
                            let y = tanh(*v);
                            *v = y;
                            *g = 1.0 - y * y;
                        }
                    }
                    None => {
                        for v in x.iter_mut() {
                            *v = tanh(*v);
                        }
                    }
                }
            }

            #[inline(always)]
            pub fn gelu(x: &mut [$t], d: Option<&mut [$t]>) {
                let c = (2.0 / std::f64::consts::PI).sqrt() as $t;
                let a = 0.044715 as $t;
                match d {
                    Some(d) => {
                        for (v, g) in x.iter_mut().zip(d.iter_mut()) {
                            let xv = *v;
                            let t = tanh(c * (xv + a * xv * xv * xv));
                            *v = 0.5 * xv * (1.0 + t);
                            *g = 0.5 * (1.0 + t)
                                + 0.5 * xv * (1.0 - t * t) * c * (1.0 + 3.0 * a * xv * xv);
                        }
                    }
                    None => {
                        for v in x.iter_mut() {
                            let xv = *v;
                            let t = tanh(c * (xv + a * xv * xv * xv));
                            *v = 0.5 * xv * (1.0 + t);
                        }
                    }
                }
            }

            /// Applies `act`, through the kernels above where one exists.
            #[inline(always)]
            pub fn run(act: Activation, x: &mut [$t], d: Option<&mut [$t]>) {
                match act {
                    Activation::Silu => silu(x, d),
                    Activation::Sigmoid => sigm(x, d),
                    Activation::Tanh => tanh_s(x, d),
                    Activation::Gelu => gelu(x, d),
                    Activation::SiluT { threshold, .. } => silut(act, threshold as $t, x, d),
                    _ => super::generic(act, x, d),
                }
            }

            /// silu below the threshold; blocks holding a value at or above it go through the
            /// exact scalar definition.
            #[inline(always)]
            fn silut(act: Activation, thr: $t, x: &mut [$t], mut d: Option<&mut [$t]>) {
                for (b, xb) in x.chunks_mut(BLOCK).enumerate() {
                    let mut hit = false;
                    for v in xb.iter() {
                        hit |= *v >= thr;
                    }
                    let db = d
                        .as_deref_mut()
                        .map(|d| &mut d[b * BLOCK..b * BLOCK + xb.len()]);
                    if hit {
                        super::generic(act, xb, db);
                    } else {
                        silu(xb, db);
                    }
                }
            }
        }
    };
}

/// `exp` for f32: clamp, `x = n ln2 + r`, Cephes `expf` polynomial, scale by `2^n` via bits.
#[inline(always)]
#[allow(clippy::excessive_precision)] // Cephes coefficients, quoted as published.
fn exp_f32(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    // Round to nearest with the 1.5·2^23 trick (no libm call, vectorises).
    let n = (x * std::f32::consts::LOG2_E + 12_582_912.0) - 12_582_912.0;
    let r = x - n * 0.693_359_4 - n * (-2.121_944_4e-4);
    let z = r * r;
    let p = (((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2)
        * r
        + 1.666_666_5e-1)
        * r
        + 5.000_000_1e-1)
        * z
        + r
        + 1.0;
    // 2^n without a (scalar, saturating) float→int cast: n + 127 + 2^23 holds n + 127 in its
    // low mantissa bits, and the shift drops the exponent bits of 2^23.
    let scale = f32::from_bits((n + 8_388_735.0).to_bits() << 23);
    p * scale
}

/// The logistic function for f32: `1 / (1 + exp(−x))`.
#[inline(always)]
fn sigmoid_f32(x: f32) -> f32 {
    1.0 / (1.0 + exp_f32(-x))
}

/// The logistic function for f64 with one division instead of two: with Cephes' rational
/// form `exp(y) = 2^n (q + p) / (q − p)` on the reduced argument, `1 / (1 + exp(y))` is
/// `(q − p) / ((q − p) + (q + p) 2^n)`. Division throughput bounds the vectorised
/// activations of DPA3, so this halves their cost.
#[inline(always)]
#[allow(clippy::excessive_precision)] // Cephes coefficients, quoted as published.
fn sigmoid_f64(x: f64) -> f64 {
    let (n, p, q) = exp_parts_f64(-x);
    let scale = f64::from_bits((n + 4_503_599_627_371_519.0).to_bits() << 52);
    (q - p) / ((q - p) + (q + p) * scale)
}

/// `exp` for f64: Cephes `exp` (rational Padé form on the reduced argument).
#[cfg(test)]
fn exp_f64(x: f64) -> f64 {
    let (n, p, q) = exp_parts_f64(x);
    let e = 1.0 + 2.0 * (p / (q - p));
    let scale = f64::from_bits((n + 4_503_599_627_371_519.0).to_bits() << 52);
    e * scale
}

/// Cephes `exp` split: `exp(x) = 2^n (1 + 2p/(q − p))` with `n` as a float holding an
/// integer, `p`, `q` the Padé numerator and denominator parts on the reduced argument.
#[inline(always)]
#[allow(clippy::excessive_precision)] // Cephes coefficients, quoted as published.
fn exp_parts_f64(x: f64) -> (f64, f64, f64) {
    let x = x.clamp(-708.0, 709.0);
    let n = (x * std::f64::consts::LOG2_E + 6_755_399_441_055_744.0) - 6_755_399_441_055_744.0;
    let r = x - n * 6.931_457_519_531_25e-1 - n * 1.428_606_820_309_417_232_12e-6;
    let xx = r * r;
    let px = r
        * ((1.261_771_930_748_105_908_78e-4 * xx + 3.029_944_077_074_419_613e-2) * xx
            + 9.999_999_999_999_999_999_1e-1);
    let qx = ((3.001_985_051_386_644_550_42e-6 * xx + 2.524_483_403_496_841_041_92e-3) * xx
        + 2.272_655_482_081_550_287_66e-1)
        * xx
        + 2.0;
    (n, px, qx)
}

float_kernels!(f32, k32, sigmoid_f32);
float_kernels!(f64, k64, sigmoid_f64);

macro_rules! dispatch {
    ($name:ident, $avx:ident, $avx512:ident, $t:ty, $k:ident, $silu512:ident) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        fn $avx(act: Activation, x: &mut [$t], d: Option<&mut [$t]>) {
            $k::run(act, x, d);
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f,avx512dq,avx512vl,avx2,fma")]
        fn $avx512(act: Activation, x: &mut [$t], d: Option<&mut [$t]>) {
            match act {
                Activation::Silu => avx512::$silu512(x, d, <$t>::INFINITY, act),
                Activation::SiluT { threshold, .. } => avx512::$silu512(x, d, threshold as $t, act),
                _ => $k::run(act, x, d),
            }
        }

        fn $name(act: Activation, x: &mut [$t], d: Option<&mut [$t]>) {
            #[cfg(target_arch = "x86_64")]
            if std::is_x86_feature_detected!("avx512f")
                && std::is_x86_feature_detected!("avx512dq")
                && std::is_x86_feature_detected!("avx512vl")
            {
                // SAFETY: the CPU supports AVX-512 F/DQ/VL (checked just above), which
                // implies AVX2 and FMA.
                unsafe { $avx512(act, x, d) };
                return;
            }
            #[cfg(target_arch = "x86_64")]
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                // SAFETY: the CPU supports AVX2 and FMA (checked just above).
                unsafe { $avx(act, x, d) };
                return;
            }
            $k::run(act, x, d);
        }
    };
}

dispatch!(
    dispatch_f32,
    dispatch_f32_avx2,
    dispatch_f32_avx512,
    f32,
    k32,
    silu_ps
);
dispatch!(
    dispatch_f64,
    dispatch_f64_avx2,
    dispatch_f64_avx512,
    f64,
    k64,
    silu_pd
);

/// silu with AVX-512 intrinsics: the logistic function's division becomes `rcp14` refined by
/// Newton steps (one for f32, two for f64: 14 → 28 → 56 bits), a fraction of a division's
/// cost, which bounded DPA3's activations. The exponent argument is clamped a little inside
/// the range so the reciprocal stays a normal number; below that σ is under 1e-34 (f32) or
/// 1e-304 (f64) and silu's value differs from the exact one by less than that. silut runs
/// through the same loop: a lane at or above its threshold is rare, so the whole slice goes
/// through one vector pass and only such lanes are recomputed by the scalar definition.
#[cfg(target_arch = "x86_64")]
pub(crate) use avx512::{sigmoid_pd, sigmoid_ps};

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use crate::Activation;
    use std::arch::x86_64::*;

    /// Lanes `i..` of a slice of length `n` that a masked load of `lanes` touches.
    #[inline(always)]
    fn tail_mask(n: usize, i: usize, lanes: usize) -> u16 {
        let k = (n - i).min(lanes);
        ((1u32 << k) - 1) as u16
    }

    /// σ(x) on 8 lanes: Cephes' Padé form of `exp(−x)` (as in `exp_parts_f64`), with the
    /// range reduction in fused multiply-adds and `2^n` applied by `scalef`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::excessive_precision)] // Cephes coefficients, quoted as published.
    pub(crate) fn sigmoid_pd(x: __m512d) -> __m512d {
        let c = _mm512_set1_pd;
        let y = _mm512_min_pd(_mm512_max_pd(_mm512_sub_pd(c(0.0), x), c(-708.0)), c(700.0));
        let n = _mm512_roundscale_pd::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            _mm512_mul_pd(y, c(std::f64::consts::LOG2_E)),
        );
        let r = _mm512_fnmadd_pd(n, c(6.931_457_519_531_25e-1), y);
        let r = _mm512_fnmadd_pd(n, c(1.428_606_820_309_417_232_12e-6), r);
        let xx = _mm512_mul_pd(r, r);
        let px = _mm512_mul_pd(
            r,
            _mm512_fmadd_pd(
                _mm512_fmadd_pd(
                    c(1.261_771_930_748_105_908_78e-4),
                    xx,
                    c(3.029_944_077_074_419_613e-2),
                ),
                xx,
                c(9.999_999_999_999_999_999_1e-1),
            ),
        );
        let qx = _mm512_fmadd_pd(
            _mm512_fmadd_pd(
                _mm512_fmadd_pd(
                    c(3.001_985_051_386_644_550_42e-6),
                    xx,
                    c(2.524_483_403_496_841_041_92e-3),
                ),
                xx,
                c(2.272_655_482_081_550_287_66e-1),
            ),
            xx,
            c(2.0),
        );
        // σ = (q − p) / ((q − p) + (q + p) 2^n)
        let num = _mm512_sub_pd(qx, px);
        let den = _mm512_add_pd(_mm512_scalef_pd(_mm512_add_pd(qx, px), n), num);
        let one = c(1.0);
        let mut rc = _mm512_rcp14_pd(den);
        rc = _mm512_fmadd_pd(rc, _mm512_fnmadd_pd(den, rc, one), rc);
        rc = _mm512_fmadd_pd(rc, _mm512_fnmadd_pd(den, rc, one), rc);
        _mm512_mul_pd(num, rc)
    }

    /// σ(x) on 16 lanes: Cephes' `expf` polynomial of −x (as in `exp_f32`), with the range
    /// reduction in fused multiply-adds and `2^n` applied by `scalef`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::excessive_precision)] // Cephes coefficients, quoted as published.
    pub(crate) fn sigmoid_ps(x: __m512) -> __m512 {
        let c = _mm512_set1_ps;
        let y = _mm512_min_ps(_mm512_max_ps(_mm512_sub_ps(c(0.0), x), c(-87.0)), c(80.0));
        let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            _mm512_mul_ps(y, c(std::f32::consts::LOG2_E)),
        );
        let r = _mm512_fnmadd_ps(n, c(0.693_359_4), y);
        let r = _mm512_fnmadd_ps(n, c(-2.121_944_4e-4), r);
        let z = _mm512_mul_ps(r, r);
        let mut p = _mm512_fmadd_ps(c(1.987_569_1e-4), r, c(1.398_199_9e-3));
        p = _mm512_fmadd_ps(p, r, c(8.333_452e-3));
        p = _mm512_fmadd_ps(p, r, c(4.166_579_6e-2));
        p = _mm512_fmadd_ps(p, r, c(1.666_666_5e-1));
        p = _mm512_fmadd_ps(p, r, c(5.000_000_1e-1));
        p = _mm512_add_ps(_mm512_fmadd_ps(p, z, r), c(1.0));
        let den = _mm512_add_ps(_mm512_scalef_ps(p, n), c(1.0));
        let rc = _mm512_rcp14_ps(den);
        _mm512_fmadd_ps(rc, _mm512_fnmadd_ps(den, rc, c(1.0)), rc)
    }

    macro_rules! silu_kernel {
        ($name:ident, $t:ty, $lanes:expr, $sig:ident, $load:ident, $store:ident, $mul:ident,
         $sub:ident, $fmadd:ident, $set1:ident, $cmp:ident, $storeu:ident, $mask:ty) => {
            /// silu (and its derivative into `d`) on a slice; lanes at or above `thr` (silut's
            /// threshold, or +∞ for silu) get `act`'s exact scalar definition instead.
            #[target_feature(enable = "avx512f")]
            pub(super) fn $name(x: &mut [$t], d: Option<&mut [$t]>, thr: $t, act: Activation) {
                let n = x.len();
                let one = $set1(1.0);
                let vthr = $set1(thr);
                let mut d = d.map(|d| &mut d[..n]);
                // Lanes of the current vector at or above `thr`, kept for the scalar redo.
                let mut orig = [0.0 as $t; $lanes];
                let mut i = 0;
                while i < n {
                    let m = tail_mask(n, i, $lanes) as $mask;
                    // SAFETY: the mask enables only lanes i..min(i + lanes, n), all inside `x`
                    // (and `d`, cut to the same length); disabled lanes are not accessed.
                    let over = unsafe {
                        let v = $load(m, x.as_ptr().add(i));
                        let over = $cmp::<_CMP_GE_OQ>(m, v, vthr);
                        if over != 0 {
                            $storeu(orig.as_mut_ptr(), v);
                        }
                        let sg = $sig(v);
                        let xs = $mul(v, sg);
                        $store(x.as_mut_ptr().add(i), m, xs);
                        if let Some(d) = d.as_deref_mut() {
                            let g = $fmadd(xs, $sub(one, sg), sg);
                            $store(d.as_mut_ptr().add(i), m, g);
                        }
                        over
                    };
                    // Rare: silut's branch above the threshold.
                    let mut bits = over as u32;
                    while bits != 0 {
                        let l = bits.trailing_zeros() as usize;
                        bits &= bits - 1;
                        let (y, dy) = act.apply_grad(orig[l]);
                        x[i + l] = y;
                        if let Some(d) = d.as_deref_mut() {
                            d[i + l] = dy;
                        }
                    }
                    i += $lanes;
                }
            }
        };
    }

    silu_kernel!(
        silu_pd,
        f64,
        8,
        sigmoid_pd,
        _mm512_maskz_loadu_pd,
        _mm512_mask_storeu_pd,
        _mm512_mul_pd,
        _mm512_sub_pd,
        _mm512_fmadd_pd,
        _mm512_set1_pd,
        _mm512_mask_cmp_pd_mask,
        _mm512_storeu_pd,
        u8
    );
    silu_kernel!(
        silu_ps,
        f32,
        16,
        sigmoid_ps,
        _mm512_maskz_loadu_ps,
        _mm512_mask_storeu_ps,
        _mm512_mul_ps,
        _mm512_sub_ps,
        _mm512_fmadd_ps,
        _mm512_set1_ps,
        _mm512_mask_cmp_ps_mask,
        _mm512_storeu_ps,
        u16
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps32(a: f32, b: f32) -> f32 {
        ((a - b) / b.abs().max(f32::MIN_POSITIVE)).abs() / f32::EPSILON
    }

    #[test]
    fn exp_is_accurate() {
        for i in -4000..4000 {
            let x = i as f64 * 0.0217 + 0.001;
            let e64 = exp_f64(x);
            assert!(((e64 - x.exp()) / x.exp()).abs() < 3e-16, "f64 exp({x})");
            let x32 = (x as f32).clamp(-80.0, 80.0);
            assert!(ulps32(exp_f32(x32), x32.exp()) < 3.0, "f32 exp({x32})");
        }
    }

    #[test]
    fn sigmoid_is_accurate() {
        for i in -40000..40000 {
            let x = i as f64 * 0.00217 + 1e-4;
            let want = 1.0 / (1.0 + (-x).exp());
            let got = sigmoid_f64(x);
            assert!(
                ((got - want) / want).abs() < 1e-15,
                "sigmoid({x}): {got} vs {want}"
            );
        }
        assert_eq!(sigmoid_f64(800.0), 1.0);
        assert!(sigmoid_f64(-800.0) < 1e-300);
    }

    type Kernel<T> = Box<dyn Fn(Activation, &mut [T], Option<&mut [T]>)>;

    macro_rules! kernels {
        ($name:ident, $t:ty, $k:ident, $avx:ident, $avx512:ident) => {
            /// Every compiled variant this CPU can run (the dispatcher picks only one).
            fn $name() -> Vec<(&'static str, Kernel<$t>)> {
                let mut v: Vec<(&'static str, Kernel<$t>)> = vec![("baseline", Box::new($k::run))];
                #[cfg(target_arch = "x86_64")]
                {
                    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
                    {
                        // SAFETY: AVX2 and FMA are present (checked just above).
                        v.push(("avx2", Box::new(|a, x, d| unsafe { $avx(a, x, d) })));
                    }
                    if std::is_x86_feature_detected!("avx512f")
                        && std::is_x86_feature_detected!("avx512dq")
                        && std::is_x86_feature_detected!("avx512vl")
                    {
                        // SAFETY: AVX-512 F/DQ/VL are present (checked just above).
                        v.push(("avx512", Box::new(|a, x, d| unsafe { $avx512(a, x, d) })));
                    }
                }
                v
            }
        };
    }
    kernels!(
        kernels_f64,
        f64,
        k64,
        dispatch_f64_avx2,
        dispatch_f64_avx512
    );
    kernels!(
        kernels_f32,
        f32,
        k32,
        dispatch_f32_avx2,
        dispatch_f32_avx512
    );

    #[test]
    fn slices_match_scalar_definitions() {
        let acts = [
            "silu",
            "silut:3.0",
            "custom_silu:10.0",
            "sigmoid",
            "tanh",
            "gelu",
            "relu",
        ];
        // An odd length exercises the vector kernels' tails; the ends reach ±800.
        let mut xs: Vec<f64> = (0..997).map(|i| (i as f64 - 500.0) * 0.037).collect();
        xs.extend([-800.0, -120.0, -90.0, 85.0, 800.0]);
        for name in acts {
            let act = Activation::parse(name).unwrap();
            let want: Vec<(f64, f64)> = xs.iter().map(|&x| act.apply_grad(x)).collect();
            for (kernel, run) in kernels_f64() {
                let mut y = xs.clone();
                let mut d = vec![0.0; xs.len()];
                run(act, &mut y, Some(&mut d));
                let mut y2 = xs.clone();
                run(act, &mut y2, None);
                for (k, (&x, &(a, da))) in xs.iter().zip(&want).enumerate() {
                    let at = format!("{name} f64 {kernel} at {x}");
                    assert!((y[k] - a).abs() < 1e-14 * a.abs().max(1.0), "{at}");
                    assert!((d[k] - da).abs() < 1e-14, "{at} (derivative)");
                    assert_eq!(y[k], y2[k], "{at}: value depends on the derivative");
                }
            }
            for (kernel, run) in kernels_f32() {
                let mut y32: Vec<f32> = xs.iter().map(|&x| x as f32).collect();
                let mut d32 = vec![0.0f32; xs.len()];
                run(act, &mut y32, Some(&mut d32));
                for (k, (&x, &(a, da))) in xs.iter().zip(&want).enumerate() {
                    let at = format!("{name} f32 {kernel} at {x}");
                    assert!((y32[k] as f64 - a).abs() < 1e-6 * a.abs().max(1.0), "{at}");
                    // f32 cancellation in 1 − tanh² is amplified by up to ~10 in gelu'.
                    assert!((d32[k] as f64 - da).abs() < 1e-5, "{at} (derivative)");
                }
            }
        }
    }
}
