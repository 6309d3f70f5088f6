//! The atoms one rank owns and the global results of a force evaluation.

use halo_core::Vec3;

/// The atoms one rank owns, sorted by global id (so every per-rank loop, and every
/// reduction built on it, runs in a fixed order).
///
/// Positions are wrapped into the cell at neighbour-list rebuilds; `image` counts the
/// lattice vectors taken off, so the unwrapped position is `x + image · H`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Atoms {
    /// Global id: the atom's index in the input structure.
    pub gid: Vec<usize>,
    /// Type: index into the structure's type names.
    pub types: Vec<usize>,
    /// Mass (amu).
    pub mass: Vec<f64>,
    /// Position (Å).
    pub x: Vec<Vec3>,
    /// Velocity (Å/fs).
    pub v: Vec<Vec3>,
    /// Force at `x` (eV/Å).
    pub f: Vec<Vec3>,
    /// Periodic image count of each atom.
    pub image: Vec<[i32; 3]>,
}

impl Atoms {
    /// Number of atoms this rank owns.
    pub fn len(&self) -> usize {
        self.gid.len()
    }

    /// Whether this rank owns no atom.
    pub fn is_empty(&self) -> bool {
        self.gid.is_empty()
    }
}

/// Global results of one force evaluation (already reduced over ranks).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Potential {
    /// Potential energy of the whole system (eV).
    pub energy: f64,
    /// Virial of the whole system, `Σ x ⊗ F` as DeePMD-kit defines it, row-major (eV).
    pub virial: [f64; 9],
}
