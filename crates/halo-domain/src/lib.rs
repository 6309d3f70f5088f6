//! Spatial domain decomposition for halomd: one subdomain per rank, ghosts through
//! LAMMPS-style swaps, and the multi-rank [`Exchange`](halo_core::Exchange).
//!
//! The pieces, in the order a run uses them:
//!
//! 1. [`ProcGrid`] is a `px × py × pz` grid of ranks (x fastest, as LAMMPS numbers them),
//!    given or chosen by [`ProcGrid::auto`], which minimises the subdomain surface as LAMMPS'
//!    `procs2box` does.
//! 2. [`Domain::decompose`] splits the system in fractional coordinates, so triclinic cells
//!    need no special case: along a periodic axis the box is `[0, 1)` of the wrapped
//!    fractional coordinate, along an open axis the bounding box of the atoms. Each rank owns
//!    the atoms whose coordinate falls in its slice of every axis; local atoms keep global-id
//!    order.
//! 3. [`Domain::borders`] builds the ghost atoms with the swaps of LAMMPS `CommBrick::borders`:
//!    per dimension, in x, y, z order, `need` levels of two swaps (to the lower, then to the
//!    upper neighbour). Level 0 sends local atoms and ghosts from earlier dimensions that lie
//!    within the cutoff of the face; level `l > 0` forwards the ghosts received in level
//!    `l − 1` of the same direction, which is how subdomains thinner than the cutoff are
//!    served. Distances to a face are fractional distances times the perpendicular face
//!    distance, so the ghost set is a superset of every image within the cutoff. Ghosts of
//!    one swap are stored contiguously after the previous ones. A swap whose partner is this
//!    rank (one rank along a periodic axis) is a local copy with the periodic shift, so one
//!    rank runs the same code as many.
//! 4. [`DomainExchange`] implements [`halo_core::Exchange`] over that swap plan: forward copies
//!    owner rows into the ghost block of each swap in order; reverse walks the swaps backwards
//!    and adds ghost rows into `rows[sendlist]`, then zeroes the ghosts (the transpose of
//!    forward, as DeePMD-kit's `border_op` backward).
//! 5. [`Domain::migrate`] is the MD alternative to step 2: atoms held anywhere are moved to
//!    their owners (see *Migration* below).
//! 6. [`evaluate`] drives a model on every rank without knowing it: a closure evaluates the
//!    rank's extended system; the driver folds ghost forces and per-atom virials to owners,
//!    all-reduces energy and virial in rank order and gathers per-atom results on rank 0 in
//!    global-id order.
//!
//! # Migration: molecular dynamics across ranks
//!
//! In a run the system is never whole on one rank. [`Domain::migrate`] (collective) takes
//! whatever atoms each rank holds, as [`LocalAtoms`] (global id, type, position and a
//! caller-defined payload of `width` values per atom: velocities, masses, image flags…),
//! and moves each to the rank whose subdomain holds its position, the way LAMMPS
//! `Comm::exchange` does: per dimension x, y, z, atoms of a wrong slice go one rank towards
//! it (the shorter way round on a periodic axis), both neighbours' atoms are received, and
//! hops repeat until an all-reduce finds no misplaced atom along that axis. So atoms may move
//! any distance between rebuilds, the grid may change, and any start works (everything on
//! rank 0 after reading a checkpoint, another rank count's owners after a restart). Atoms
//! travel as `u64` words, so positions and payload arrive bit for bit; positions are never
//! re-wrapped (the integrator wraps them; a coordinate outside `[0, 1)` along a periodic
//! axis is placed by its wrapped value only). Open axes span the global bounding box,
//! found by all-reduce. Afterwards the ranks check together that they hold each id of
//! `0..natoms` exactly once, else every rank fails with [`DomainError::Lost`]; malformed
//! input on one rank fails every rank with [`DomainError::Input`], so nobody is left
//! waiting.
//!
//! The domain returned has local atoms in global-id order and no ghosts; [`Domain::borders`]
//! adds them. With positions `cell.wrap(p)`, migrate + borders yields exactly, bit for bit,
//! the owners, ghosts (global id, shift) and coordinates of [`Domain::build`] on the system
//! with positions `p`, so the MD path and the single-shot evaluation path agree.
//!
//! Between rebuilds, [`Domain::refresh`] moves owners and their ghosts along the swap plan;
//! [`Domain::refresh_cell`] does the same under a new cell (NPT), rebuilding every ghost as
//! `owner + shift · H_new` and keeping the subdomains' fractional slices.
//!
//! # Example
//!
//! ```
//! use halo_comm::{threads, CommOptions};
//! use halo_core::{Cell, Exchange, RowsMut, System};
//! use halo_domain::{Domain, DomainExchange, ProcGrid};
//!
//! let cell = Cell::orthorhombic(6.0, 6.0, 6.0).unwrap();
//! let system = System::from_symbols(
//!     &["O", "H", "H"],
//!     vec![[0.5, 0.5, 0.5], [1.4, 0.6, 0.5], [4.0, 3.0, 5.5]],
//!     Some(cell),
//! )
//! .unwrap();
//! let grid = ProcGrid::new([2, 1, 1]).unwrap();
//! let nghosts = threads::run(2, &CommOptions::default(), |comm| {
//!     let domain = Domain::build(&comm, &system, grid, 2.0).unwrap();
//!     // Fill every ghost row with its owner's global id.
//!     let mut rows: Vec<f64> = domain.gids()[..domain.nloc()].iter().map(|&g| g as f64).collect();
//!     rows.resize(domain.nall(), -1.0);
//!     DomainExchange::new(&domain, &comm).forward(RowsMut::F64(&mut rows), 1).unwrap();
//!     assert!(rows.iter().zip(domain.gids()).all(|(&r, &g)| r == g as f64));
//!     domain.nall() - domain.nloc()
//! })
//! .unwrap();
//! assert!(nghosts.iter().all(|&n| n > 0));
//! ```
//!
//! Ghost coordinates are `wrapped owner position + shift · H`, computed from the owner's
//! position and an integer shift that travels with the ghost, so they are bit-identical to
//! the single-rank images of [`halo_nlist::extend`].

#![warn(missing_docs)]

mod domain;
mod error;
mod eval;
mod exchange;
mod grid;
mod migrate;

pub use domain::{Domain, Swap};
pub use error::DomainError;
pub use eval::{
    evaluate, evaluate_local, evaluate_with, Evaluation, LocalEvaluation, PerAtom, RankInput,
    RankOutput,
};
pub use exchange::{DomainExchange, ExchangeStats};
pub use grid::ProcGrid;
pub use migrate::LocalAtoms;
