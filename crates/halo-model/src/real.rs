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
