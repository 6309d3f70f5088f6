//! Native evaluation of DeePMD-kit models: import, network blocks, descriptors, fitting and the
//! energy/force/virial outputs.
//!
//! Layout, from file to forces:
//! - [`import`]: `.dp`/`.hlo` (HDF5, pure Rust) and `.yaml` model files into one tree with
//!   path-aware, typed access ([`import::Dict`]); every error names its field.
//! - [`networks`]: DeePMD-kit's `Layer`/`EmbeddingNetwork`/`FittingNetwork`/
//!   `NetworkCollection` into [`nn::Layer`] stacks, run on reusable buffers.
//! - [`descriptor`]: `se_e2_a` and `dpa3`, each with its backward.
//! - [`fitting`]: the energy fitting and its backward to the descriptor.
//! - [`model`]: [`EnergyModel`], which ties them together, applies the model-level statistics
//!   and exclusions, and turns descriptor gradients into forces and (per-atom) virials.
//!
//! Design:
//! - No autodiff framework. Every block has a forward and its exact, hand-written backward kept
//!   side by side (see [`nn::Layer`]); each backward is checked against finite differences,
//!   and the whole model against DeePMD-kit's own outputs (`tests/parity.rs`).
//! - Precision follows the model file: descriptor and fitting are each generic over [`Real`]
//!   (`f32` or `f64`) and cast where DeePMD-kit casts; `out_bias` and energy sums are f64.
//! - Ghost-atom rows reach a descriptor only through [`halo_core::Exchange`]; nothing here knows
//!   how many ranks exist.
//! - Work is split over local atoms in fixed-size chunks (rayon) and every reduction runs in a
//!   fixed order, so results are bit-identical for any thread count.
//! - Dense products go through [`linalg::matmul`] (the `gemm` crate) on caller-owned buffers.

pub mod activation;
pub mod descriptor;
pub mod exclude;
mod fastact;
pub mod fitting;
pub mod import;
mod isa;
pub mod linalg;
pub mod model;
pub mod networks;
pub mod nn;
pub mod real;

pub use activation::Activation;
pub use model::{EnergyModel, EvalError, EvalParams, LocalOutput, ModelOutput, ModelSummary};
pub use real::{Precision, Real};
