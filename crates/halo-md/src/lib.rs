//! Molecular dynamics for halomd: the loop behind `halomd run`, on any number of ranks.
//!
//! The pieces, from the outside in:
//!
//! - [`input`] parses and validates the TOML input (every complaint names file, line and
//!   dotted key, with the nearest valid name for a misspelling).
//! - [`run::run`] is the loop every rank executes. Each rank owns the atoms of its subdomain
//!   ([`Atoms`], sorted by global id); at a rebuild (skin criterion, or a checkpoint step) it
//!   wraps positions into the cell, migrates atoms through `halo_domain::Domain::migrate`,
//!   rebuilds the ghost shell and the Verlet-skin list ([`force::ModelForces`]); between
//!   rebuilds it only refreshes ghost positions. The model sees its ghosts through
//!   `halo_domain`'s `Exchange`, so it never knows the rank count.
//! - [`dynamics`] holds the integrators behind one [`dynamics::Integrator`] trait split around
//!   the force call: velocity Verlet, Langevin BAOAB, Nosé–Hoover chains, MTK NPT and FIRE.
//!   Global quantities are summed per rank in gid order and then over ranks in rank order, and
//!   the random numbers ([`rng`]) are a hash of (seed, stream, step, atom id): a run does not
//!   depend on how atoms are spread over ranks beyond rounding, and is bit-reproducible for a
//!   given rank count.
//! - [`output`], [`progress`] and [`plot`] write the thermo log/CSV, trajectories, the
//!   progress line and a PNG, on rank 0 only; [`checkpoint`] writes atomic checkpoints.
//!
//! Restarts are bit-for-bit on the same rank count because checkpoints are only taken on
//! rebuild steps: a restart rebuilds from the same wrapped positions and gets the same
//! subdomains, ghost order and neighbour lists, hence the same forces.

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
