//! Molecular dynamics for halomd (work in progress).

#![warn(missing_docs)]

pub mod atoms;
pub mod checkpoint;
pub mod dynamics;
pub mod error;
pub mod force;
pub mod input;
pub mod observables;
pub mod output;
pub mod plot;
pub mod progress;
pub mod rng;
pub mod run;
pub mod velocity;

pub use atoms::{Atoms, Potential};
pub use error::MdError;
