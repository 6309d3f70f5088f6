//! One row of DeePMD-kit's environment matrix (`deepmd/dpmodel/utils/env_mat.py`) and its
//! exact derivative with respect to the pair vector.
//!
//! For `d = x_j − x_i`, `r = |d|`, `q = r + p` (`p` = `env_protection`) and the switch `w(r)`:
//! `R = w·[1/q, d/q²]`. Padded slots (no neighbour) are the zero row; normalisation by
//! `davg`/`dstd` is the caller's.

use crate::Real;

/// Which smooth switch a descriptor uses.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Switch {
    /// `compute_smooth_weight`: `u³(−6u² + 15u − 10) + 1` with `u = clip((r−rs)/(rc−rs), 0, 1)`.
    Poly {
        /// `rcut_smth`.
        rs: f64,
        /// `rcut`.
        rc: f64,
    },
    /// `compute_exp_sw`: `exp(−exp(20/rs·(clip(r, 0, rc) − rs)))`.
    Exp {
        /// `rcut_smth`.
        rs: f64,
        /// `rcut`.
        rc: f64,
    },
}

impl Switch {
    /// `(w(r), dw/dr)`, evaluated in `T` with the same operation order as DeePMD-kit.
    #[inline]
    pub fn eval<T: Real>(&self, r: T) -> (T, T) {
        match *self {
            Switch::Poly { rs, rc } => {
                let (lo, hi) = (T::of(rs), T::of(rc));
                let width = T::of(rc - rs);
                let inside = r >= lo && r <= hi;
                let d = if r < lo {
                    lo
                } else if r > hi {
                    hi
                } else {
                    r
                };
                let u = (d - lo) / width;
                let u2 = u * u;
                let w = u2 * u * (T::of(-6.0) * u2 + T::of(15.0) * u - T::of(10.0)) + T::one();
                let dw = if inside {
                    let um1 = u - T::one();
                    T::of(-30.0) * u2 * um1 * um1 / width
                } else {
                    T::zero()
                };
                (w, dw)
            }
            Switch::Exp { rs, rc } => {
                let hi = T::of(rc);
                let a = T::of(20.0 / rs);
                let inside = r >= T::zero() && r <= hi;
                let d = if r < T::zero() {
                    T::zero()
                } else if r > hi {
                    hi
                } else {
                    r
                };
                let e = (a * (d - T::of(rs))).exp();
                let w = (-e).exp();
                let dw = if inside { -w * e * a } else { T::zero() };
                (w, dw)
            }
        }
    }
}

/// The environment-matrix row of pair vector `d` (a real neighbour).
#[inline]
pub fn env_row<T: Real>(d: [T; 3], sw: &Switch, protection: T) -> [T; 4] {
    let r = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
    let q = r + protection;
    let (w, _) = sw.eval(r);
    let t0 = T::one() / q;
    let q2 = q * q;
    [t0 * w, d[0] / q2 * w, d[1] / q2 * w, d[2] / q2 * w]
}

/// Backward of [`env_row`]: from `∂L/∂R` returns `∂L/∂d`.
#[inline]
pub fn env_row_backward<T: Real>(d: [T; 3], denv: [T; 4], sw: &Switch, protection: T) -> [T; 3] {
    let r = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
    let q = r + protection;
    let (w, dw) = sw.eval(r);
    let q2 = q * q;
    let q3 = q2 * q;
    // ∂R0/∂r = w'/q − w/q²;  ∂R_k/∂d_m = w·δ_km/q² + d_k·(w'/q² − 2w/q³)·d_m/r.
    let dot = denv[1] * d[0] + denv[2] * d[1] + denv[3] * d[2];
    let radial = (denv[0] * (dw / q - w / q2) + dot * (dw / q2 - T::of(2.0) * w / q3)) / r;
    let tang = w / q2;
    [
        radial * d[0] + denv[1] * tang,
        radial * d[1] + denv[2] * tang,
        radial * d[2] + denv[3] * tang,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switch_values_and_derivatives() {
        let poly = Switch::Poly { rs: 0.5, rc: 4.0 };
        let exp = Switch::Exp { rs: 4.4, rc: 5.0 };
        assert_eq!(poly.eval(0.3f64), (1.0, 0.0));
        assert_eq!(poly.eval(4.0f64).0, 0.0);
        assert_eq!(poly.eval(5.0f64), (0.0, 0.0));
        // u = 0.5 ⇒ w = 0.125·(−1.5 + 7.5 − 10) + 1 = 0.5.
        assert!((poly.eval(2.25f64).0 - 0.5).abs() < 1e-15);
        assert!((exp.eval(4.4f64).0 - (-1f64).exp()).abs() < 1e-15);
        for sw in [poly, exp] {
            for i in 1..60 {
                let r = i as f64 * 0.09;
                let h = 1e-6;
                let fd = (sw.eval(r + h).0 - sw.eval(r - h).0) / (2.0 * h);
                assert!((fd - sw.eval(r).1).abs() < 1e-7, "{sw:?} at {r}");
            }
        }
    }

    #[test]
    fn env_row_backward_matches_finite_differences() {
        let sw = Switch::Poly { rs: 0.5, rc: 3.0 };
        let denv = [0.7, -1.1, 0.4, 2.0];
        for (d, p) in [
            ([1.2, -0.4, 0.9], 0.0),
            ([0.3, 0.2, -0.1], 0.05),
            ([2.0, 1.0, 1.2], 0.0),
        ] {
            let g = env_row_backward(d, denv, &sw, p);
            for m in 0..3 {
                let h = 1e-6;
                let mut dp = d;
                dp[m] += h;
                let mut dm = d;
                dm[m] -= h;
                let f = |x: [f64; 3]| {
                    let r = env_row(x, &sw, p);
                    (0..4).map(|c| r[c] * denv[c]).sum::<f64>()
                };
                let fd = (f(dp) - f(dm)) / (2.0 * h);
                assert!((fd - g[m]).abs() < 1e-7, "d {d:?} m {m}: {fd} vs {}", g[m]);
            }
        }
    }
}
