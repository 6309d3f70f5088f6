//! Native evaluation of DeePMD-kit models: import, network blocks, descriptors, fitting and the
//! energy/force/virial outputs.
//!
//! Design:
//! - No autodiff framework. Every block has a forward and its exact, hand-written backward kept
//!   side by side (see [`nn::Layer`]); each backward is checked against finite differences.
//! - Precision follows the model file: blocks are generic over [`Real`] (`f32` or `f64`) and
//!   cast where DeePMD-kit casts.
//! - Ghost-atom rows reach a descriptor only through [`halo_core::Exchange`]; nothing here knows
//!   how many ranks exist.
//! - Dense products go through [`linalg::matmul`] (the `gemm` crate) on caller-owned buffers.

pub mod activation;
pub mod descriptor;
pub mod import;
pub mod linalg;
pub mod nn;
pub mod real;

pub use activation::Activation;
pub use real::Real;
