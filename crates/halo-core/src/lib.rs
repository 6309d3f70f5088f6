//! Core vocabulary of halomd: physical units, the simulation [`Cell`], the atomic [`System`],
//! chemical element data, the error type shared by the structural crates, and the [`Exchange`]
//! seam through which a model receives ghost-atom rows without knowing about ranks.
//!
//! Design notes:
//! - Units are metal-style and match DeePMD-kit and ASE: energies in eV, lengths in Å, time in
//!   fs, masses in amu. Conversions live in [`units`] as named constants, never as inline
//!   literals elsewhere.
//! - A [`Cell`] stores its lattice vectors as *rows* (`a`, `b`, `c`), as DeePMD-kit's `box`
//!   and ASE's `atoms.cell` do, so a Cartesian position is `x = s · H` for fractional `s`.
//! - Every constructor validates its input and returns a [`CoreError`] naming the offending
//!   field; nothing downstream re-checks finiteness or shapes.

pub mod cell;
pub mod elements;
pub mod error;
pub mod exchange;
pub mod system;
pub mod units;

pub use cell::Cell;
pub use error::CoreError;
pub use exchange::{DType, Exchange, ExchangeError, ExchangeSlot, MappingExchange, RowsMut};
pub use system::System;

/// A 3-vector of `f64`, the layout used for positions, velocities and forces throughout.
pub type Vec3 = [f64; 3];
/// A 3×3 matrix stored row-major as three rows.
pub type Mat3 = [[f64; 3]; 3];
