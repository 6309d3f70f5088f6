//! The error type for invalid cells and systems.

use thiserror::Error;

/// What is wrong with a cell or a system passed to a constructor.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum CoreError {
    /// The cell matrix has a non-finite entry.
    #[error("cell: entry ({row},{col}) is not finite ({value})")]
    NonFiniteCell {
        /// Lattice vector index (0 = a).
        row: usize,
        /// Cartesian component.
        col: usize,
        /// The offending value.
        value: f64,
    },
    /// The lattice vectors are (nearly) linearly dependent.
    #[error("cell: lattice vectors are singular (volume {volume:e} Å³)")]
    SingularCell {
        /// The signed volume found.
        volume: f64,
    },
    /// The lattice vectors form a left-handed set.
    #[error("cell: lattice vectors a, b, c are left-handed (volume {volume:e} Å³); swap two vectors or flip one")]
    LeftHandedCell {
        /// The signed (negative) volume found.
        volume: f64,
    },
    /// A per-atom array has the wrong length.
    #[error("system: `{field}` has {got} entries, expected {expected} (one per atom)")]
    LengthMismatch {
        /// Name of the per-atom field.
        field: &'static str,
        /// Its length.
        got: usize,
        /// The number of atoms.
        expected: usize,
    },
    /// A per-atom value is not finite.
    #[error("system: `{field}` of atom {atom} is not finite")]
    NonFinite {
        /// Name of the per-atom field.
        field: &'static str,
        /// Atom index (0-based).
        atom: usize,
    },
    /// A mass is negative or zero.
    #[error("system: mass of atom {atom} is {mass}, must be positive")]
    BadMass {
        /// Atom index (0-based).
        atom: usize,
        /// The mass given.
        mass: f64,
    },
    /// An atom's type index is outside the type-name table.
    #[error("system: atom {atom} has type {ty} but only {ntypes} type names are given")]
    BadType {
        /// Atom index (0-based).
        atom: usize,
        /// The type index given.
        ty: usize,
        /// Number of type names.
        ntypes: usize,
    },
    /// Any other invalid value, with the field it belongs to.
    #[error("{field}: {reason}")]
    Invalid {
        /// Field or quantity name.
        field: String,
        /// What is wrong.
        reason: String,
    },
}
