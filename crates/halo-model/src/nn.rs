//! The affine layer of DeePMD-kit (`NativeLayer`) with its exact backward.
//!
//! `y = r(x) + idt ⊙ φ(x·W + b)` where `r(x)` is `x` when `n_out == n_in`, `[x, x]` when
//! `n_out == 2·n_in` (only if `resnet`), else nothing. Rows are atoms, edges or angles;
//! callers own every buffer.

use crate::linalg::{matmul, Op, Weight};
use crate::{Activation, Real};

pub use crate::networks::{parse_embedding_net, parse_fitting_net, parse_layer};

/// One affine layer with activation, optional timestep (`idt`) and residual.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer<T> {
    /// Weights, `n_in × n_out` row-major (with their transpose, for the backward).
    pub w: Weight<T>,
    /// Bias, `n_out`.
    pub b: Option<Vec<T>>,
    /// Timestep scale, `n_out` (`resnet_dt`).
    pub idt: Option<Vec<T>>,
    /// Input width.
    pub n_in: usize,
    /// Output width.
    pub n_out: usize,
    /// Activation φ.
    pub act: Activation,
    /// Whether the residual `r(x)` is added.
    pub resnet: bool,
}

impl<T: Real> Layer<T> {
    /// Computes `rows` outputs into `y` (`rows × n_out`). If `dact` is given it receives
    /// `idt ⊙ φ'(z)`, which [`Layer::backward`] needs.
    pub fn forward(&self, x: &[T], rows: usize, y: &mut [T], dact: Option<&mut [T]>) {
        let (ni, no) = (self.n_in, self.n_out);
        let y = &mut y[..rows * no];
        match &self.b {
            Some(b) => {
                for row in y.chunks_exact_mut(no) {
                    row.copy_from_slice(b);
                }
                matmul(rows, no, ni, x, Op::N, &self.w, Op::N, y, T::one());
            }
            None => matmul(rows, no, ni, x, Op::N, &self.w, Op::N, y, T::zero()),
        }
        // Activation over the whole block at once, so the vectorised kernels see long runs.
        let dact = dact.map(|d| &mut d[..rows * no]);
        match dact {
            Some(da) => {
                crate::fastact::activate(self.act, y, Some(&mut *da));
                if let Some(idt) = &self.idt {
                    for (yr, dr) in y.chunks_exact_mut(no).zip(da.chunks_exact_mut(no)) {
                        for ((v, d), &t) in yr.iter_mut().zip(dr.iter_mut()).zip(idt) {
                            *v *= t;
                            *d *= t;
                        }
                    }
                }
            }
            None => {
                crate::fastact::activate(self.act, y, None);
                if let Some(idt) = &self.idt {
                    for yr in y.chunks_exact_mut(no) {
                        yr.iter_mut().zip(idt).for_each(|(v, &t)| *v *= t);
                    }
                }
            }
        }
        if self.resnet && (no == ni || no == 2 * ni) {
            for (yr, xr) in y.chunks_exact_mut(no).zip(x.chunks_exact(ni.max(1))) {
                let (lo, hi) = yr.split_at_mut(ni);
                lo.iter_mut().zip(xr).for_each(|(y, &x)| *y += x);
                hi.iter_mut().zip(xr).for_each(|(y, &x)| *y += x);
            }
        }
    }

    /// Given `dy = ∂L/∂y` (`rows × n_out`) and the `dact` saved by forward, writes
    /// `∂L/∂x` into `dx` (`rows × n_in`, overwritten). `g` is scratch of `rows × n_out`.
    pub fn backward(&self, dy: &[T], rows: usize, dact: &[T], dx: &mut [T], g: &mut [T]) {
        let (ni, no) = (self.n_in, self.n_out);
        let g = &mut g[..rows * no];
        for ((g, &d), &a) in g.iter_mut().zip(&dy[..rows * no]).zip(&dact[..rows * no]) {
            *g = d * a;
        }
        matmul(rows, ni, no, g, Op::N, self.w.t(), Op::N, dx, T::zero());
        if self.resnet && (no == ni || no == 2 * ni) {
            for r in 0..rows {
                let dxr = &mut dx[r * ni..(r + 1) * ni];
                let dyr = &dy[r * no..(r + 1) * no];
                dxr.iter_mut().zip(dyr).for_each(|(x, &y)| *x += y);
                if no == 2 * ni {
                    dxr.iter_mut().zip(&dyr[ni..]).for_each(|(x, &y)| *x += y);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(ni: usize, no: usize, act: &str, resnet: bool, dt: bool) -> Layer<f64> {
        let w = (0..ni * no)
            .map(|i| ((i as f64) * 0.61).sin() * 0.7)
            .collect();
        Layer {
            w: Weight::new(ni, no, w),
            b: Some((0..no).map(|i| (i as f64 * 1.3).cos() * 0.2).collect()),
            idt: dt.then(|| (0..no).map(|i| 0.1 + 0.05 * i as f64).collect()),
            n_in: ni,
            n_out: no,
            act: Activation::parse(act).unwrap(),
            resnet,
        }
    }

    /// L = Σ c ⊙ y with fixed weights c; compares ∂L/∂x with central differences.
    fn check(l: &Layer<f64>) {
        let rows = 3;
        let x: Vec<f64> = (0..rows * l.n_in)
            .map(|i| (i as f64 * 0.29).cos())
            .collect();
        let c: Vec<f64> = (0..rows * l.n_out)
            .map(|i| (i as f64 * 0.47).sin())
            .collect();
        let loss = |x: &[f64]| {
            let mut y = vec![0.0; rows * l.n_out];
            l.forward(x, rows, &mut y, None);
            y.iter().zip(&c).map(|(a, b)| a * b).sum::<f64>()
        };
        let mut y = vec![0.0; rows * l.n_out];
        let mut dact = vec![0.0; rows * l.n_out];
        l.forward(&x, rows, &mut y, Some(&mut dact));
        let mut dx = vec![0.0; rows * l.n_in];
        let mut g = vec![0.0; rows * l.n_out];
        l.backward(&c, rows, &dact, &mut dx, &mut g);
        for i in 0..x.len() {
            let h = 1e-6;
            let mut xp = x.clone();
            xp[i] += h;
            let mut xm = x.clone();
            xm[i] -= h;
            let fd = (loss(&xp) - loss(&xm)) / (2.0 * h);
            assert!((fd - dx[i]).abs() < 1e-8, "dx[{i}]: fd {fd} vs {}", dx[i]);
        }
    }

    #[test]
    fn backward_matches_finite_differences() {
        check(&layer(4, 4, "tanh", true, true));
        check(&layer(4, 8, "silu", true, false));
        check(&layer(4, 8, "gelu", true, true));
        check(&layer(5, 3, "silut:1.0", true, false));
        check(&layer(6, 1, "none", false, false));
    }

    #[test]
    fn residual_rules() {
        let l = Layer::<f64> {
            w: Weight::new(2, 4, vec![0.0; 2 * 4]),
            b: None,
            idt: None,
            n_in: 2,
            n_out: 4,
            act: Activation::Tanh,
            resnet: true,
        };
        let mut y = vec![9.0; 4];
        l.forward(&[1.0, 2.0], 1, &mut y, None);
        assert_eq!(y, vec![1.0, 2.0, 1.0, 2.0]);
    }
}
