//! Activation functions with their exact derivatives, named as DeePMD-kit names them.

use crate::Real;
use std::fmt;

/// An activation function (`deepmd.dpmodel.utils.network.get_activation_fn`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    /// `tanh`.
    Tanh,
    /// `relu`.
    Relu,
    /// `relu6`.
    Relu6,
    /// Numerically stable `softplus`.
    Softplus,
    /// `sigmoid`.
    Sigmoid,
    /// `silu` = x·σ(x).
    Silu,
    /// `gelu` / `gelu_tf`: the tanh approximation.
    Gelu,
    /// `silut:T` / `custom_silu:T`: silu below the threshold, a tanh tail above it.
    SiluT {
        /// Threshold T.
        threshold: f64,
        /// Slope of the tail, silu'(T).
        slope: f64,
        /// Offset of the tail, silu(T).
        offset: f64,
    },
    /// `none` / `linear`: the identity.
    Linear,
}

fn sigmoid64(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

impl Activation {
    /// Parses a DeePMD-kit activation name (case-insensitive).
    pub fn parse(name: &str) -> Result<Self, String> {
        let lower = name.to_ascii_lowercase();
        Ok(match lower.as_str() {
            "tanh" => Activation::Tanh,
            "relu" => Activation::Relu,
            "relu6" => Activation::Relu6,
            "softplus" => Activation::Softplus,
            "sigmoid" => Activation::Sigmoid,
            "silu" => Activation::Silu,
            "gelu" | "gelu_tf" => Activation::Gelu,
            "none" | "linear" => Activation::Linear,
            s if s.starts_with("silut") || s.starts_with("custom_silu") => {
                let threshold = match s.split_once(':') {
                    None if s == "silut" || s == "custom_silu" => 3.0,
                    Some((_, t)) => t
                        .parse::<f64>()
                        .ok()
                        .filter(|t| t.is_finite())
                        .ok_or_else(|| format!("activation `{name}`: bad threshold `{t}`"))?,
                    None => return Err(format!("unknown activation function `{name}`")),
                };
                let sig = sigmoid64(threshold);
                Activation::SiluT {
                    threshold,
                    slope: sig + threshold * sig * (1.0 - sig),
                    offset: threshold * sig,
                }
            }
            _ => return Err(format!("unknown activation function `{name}`")),
        })
    }

    /// φ(x).
    #[inline]
    pub fn apply<T: Real>(&self, x: T) -> T {
        self.apply_grad(x).0
    }

    /// (φ(x), φ'(x)).
    #[inline]
    pub fn apply_grad<T: Real>(&self, x: T) -> (T, T) {
        let one = T::one();
        let zero = T::zero();
        match *self {
            Activation::Tanh => {
                let y = x.tanh();
                (y, one - y * y)
            }
            Activation::Relu => {
                if x > zero {
                    (x, one)
                } else {
                    (zero, zero)
                }
            }
            Activation::Relu6 => {
                let six = T::of(6.0);
                if x < zero {
                    (zero, zero)
                } else if x > six {
                    (six, zero)
                } else {
                    (x, one)
                }
            }
            Activation::Softplus => {
                // log(1 + e^-|x|) + max(x, 0), as DeePMD-kit's stable form.
                let e = (-x.abs()).exp();
                let y = (one + e).ln() + x.max(zero);
                (y, sigmoid(x))
            }
            Activation::Sigmoid => {
                let s = sigmoid(x);
                (s, s * (one - s))
            }
            Activation::Silu => silu(x),
            Activation::Gelu => {
                let c = T::of((2.0 / std::f64::consts::PI).sqrt());
                let a = T::of(0.044715);
                let half = T::of(0.5);
                let t = (c * (x + a * x * x * x)).tanh();
                let y = half * x * (one + t);
                let dy = half * (one + t)
                    + half * x * (one - t * t) * c * (one + T::of(3.0) * a * x * x);
                (y, dy)
            }
            Activation::SiluT {
                threshold,
                slope,
                offset,
            } => {
                if x < T::of(threshold) {
                    silu(x)
                } else {
                    let s = T::of(slope);
                    let t = (s * (x - T::of(threshold))).tanh();
                    (t + T::of(offset), s * (one - t * t))
                }
            }
            Activation::Linear => (x, one),
        }
    }
}

#[inline]
fn sigmoid<T: Real>(x: T) -> T {
    T::one() / (T::one() + (-x).exp())
}

#[inline]
fn silu<T: Real>(x: T) -> (T, T) {
    let s = sigmoid(x);
    (x * s, s + x * s * (T::one() - s))
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Activation::Tanh => f.write_str("tanh"),
            Activation::Relu => f.write_str("relu"),
            Activation::Relu6 => f.write_str("relu6"),
            Activation::Softplus => f.write_str("softplus"),
            Activation::Sigmoid => f.write_str("sigmoid"),
            Activation::Silu => f.write_str("silu"),
            Activation::Gelu => f.write_str("gelu"),
            Activation::SiluT { threshold, .. } => write!(f, "silut:{threshold}"),
            Activation::Linear => f.write_str("linear"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: [&str; 11] = [
        "tanh",
        "relu",
        "relu6",
        "softplus",
        "sigmoid",
        "silu",
        "gelu",
        "gelu_tf",
        "silut:3.0",
        "custom_silu:10",
        "none",
    ];

    #[test]
    fn derivatives_match_finite_differences() {
        for name in NAMES {
            let act = Activation::parse(name).unwrap();
            for i in -80..=80 {
                let x = i as f64 * 0.1573 + 0.013;
                let h = 1e-6;
                let fd = (act.apply(x + h) - act.apply(x - h)) / (2.0 * h);
                let (_, d) = act.apply_grad(x);
                assert!((fd - d).abs() < 1e-7, "{name} at {x}: fd {fd} vs {d}");
            }
        }
    }

    #[test]
    fn known_values() {
        let silut = Activation::parse("silut:3.0").unwrap();
        // Continuous at the threshold, and the tail saturates at silu(T)+1.
        let below = silut.apply(3.0 - 1e-12);
        let above = silut.apply(3.0f64);
        assert!((below - above).abs() < 1e-10);
        assert!((silut.apply(1e3f64) - (3.0 * sigmoid64(3.0) + 1.0)).abs() < 1e-12);
        assert_eq!(Activation::parse("custom_silu").unwrap(), silut);
        assert!((Activation::parse("softplus").unwrap().apply(0.0f64) - 2f64.ln()).abs() < 1e-15);
        assert!((Activation::Gelu.apply(1.0f64) - 0.841_191_990_607_477_2).abs() < 1e-12);
    }

    #[test]
    fn rejects_unknown() {
        assert!(Activation::parse("swish").unwrap_err().contains("swish"));
        assert!(Activation::parse("silut:abc").is_err());
        assert!(Activation::parse("silutx").is_err());
    }
}
