//! The floating-point element type a network block runs in.

use halo_core::{DType, RowsMut};
use std::fmt::Debug;
use std::iter::Sum;
use std::ops::{AddAssign, MulAssign, SubAssign};

/// `f32` or `f64`: the precision of a descriptor or fitting network, as the model file says.
pub trait Real:
    num_traits::Float
    + Default
    + Debug
    + Send
    + Sync
    + AddAssign
    + SubAssign
    + MulAssign
    + Sum
    + 'static
{
    /// The matching exchange dtype.
    const DTYPE: DType;
    /// Converts from `f64` (rounding for `f32`).
    fn of(x: f64) -> Self;
    /// Converts to `f64` (exact).
    fn f64(self) -> f64;
    /// Wraps a slice as exchangeable rows.
    fn rows_mut(x: &mut [Self]) -> RowsMut<'_>;
}

impl Real for f64 {
    const DTYPE: DType = DType::F64;
    fn of(x: f64) -> Self {
        x
    }
    fn f64(self) -> f64 {
        self
    }
    fn rows_mut(x: &mut [Self]) -> RowsMut<'_> {
        RowsMut::F64(x)
    }
}

impl Real for f32 {
    const DTYPE: DType = DType::F32;
    fn of(x: f64) -> Self {
        x as f32
    }
    fn f64(self) -> f64 {
        self as f64
    }
    fn rows_mut(x: &mut [Self]) -> RowsMut<'_> {
        RowsMut::F32(x)
    }
}

/// The precision a model component runs in, as its `precision` field says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// float32.
    F32,
    /// float64.
    F64,
}

impl Precision {
    /// Reads `d[key]` (`float32`/`single`, `float64`/`double`/`default`; case-insensitive).
    pub fn parse(d: &crate::import::Dict, key: &str) -> Result<Self, crate::import::ModelError> {
        let s = d.str(key)?;
        match s.to_ascii_lowercase().as_str() {
            "float32" | "single" => Ok(Precision::F32),
            "float64" | "double" | "default" => Ok(Precision::F64),
            _ => Err(d.err(
                key,
                format!("unsupported precision `{s}` (halomd runs float32 and float64 models)"),
            )),
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Precision::F32 => "float32",
            Precision::F64 => "float64",
        })
    }
}
