//! The error type of the neighbour-list crate.

use thiserror::Error;

/// Why a ghost extension, neighbour list or dense layout could not be built.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum NlistError {
    /// The cutoff radius is zero, negative or not finite.
    #[error("neighbour list: cutoff must be positive and finite, got {0}")]
    BadCutoff(f64),
    /// The Verlet skin is negative or not finite.
    #[error("neighbour list: skin must be non-negative and finite, got {0}")]
    BadSkin(f64),
    /// A coordinate is NaN or infinite.
    #[error("neighbour list: position of atom {atom} is not finite ({pos:?})")]
    NonFinite {
        /// Atom index (0-based).
        atom: usize,
        /// The offending position.
        pos: [f64; 3],
    },
    /// More local atoms were requested than coordinates given.
    #[error("neighbour list: nloc = {nloc} exceeds the number of coordinates ({nall})")]
    NlocTooLarge {
        /// Number of local atoms requested.
        nloc: usize,
        /// Number of coordinates given.
        nall: usize,
    },
    /// The index type of the list cannot address this many atoms.
    #[error("neighbour list: {n} atoms exceed the supported maximum of {max}")]
    TooManyAtoms {
        /// Number of atoms given.
        n: usize,
        /// Largest supported count.
        max: usize,
    },
    /// A per-atom array has the wrong length.
    #[error("neighbour list: `{what}` has {got} entries, expected {expected}")]
    LengthMismatch {
        /// Name of the array.
        what: &'static str,
        /// Its length.
        got: usize,
        /// The expected length.
        expected: usize,
    },
    /// An atom type has no section in a type-distinguished `sel`.
    #[error("neighbour list: atom {atom} has type {ty} but sel has only {ntypes} type sections")]
    TypeOutOfRange {
        /// Extended-atom index.
        atom: usize,
        /// Its type.
        ty: usize,
        /// Number of sections in `sel`.
        ntypes: usize,
    },
    /// Ghost coordinates cannot be refreshed without a cell.
    #[error(
        "neighbour list: the extended system has {nghost} periodic images but no cell was given"
    )]
    MissingCell {
        /// Number of ghost atoms.
        nghost: usize,
    },
    /// The positions span so many periodic images that enumerating them is unreasonable.
    #[error(
        "ghost extension: about {candidates:e} periodic images to examine; the positions span \
         {span:?} cells along a, b, c; wrap them into the cell first (Cell::wrap)"
    )]
    TooManyImages {
        /// Estimated number of candidate images.
        candidates: f64,
        /// Extent of the positions in fractional coordinates.
        span: [f64; 3],
    },
    /// A filtered view asked for a larger cutoff than the list was built with.
    #[error("neighbour list: requested cutoff {requested} exceeds the list's cutoff {built}")]
    CutoffTooLarge {
        /// Cutoff requested.
        requested: f64,
        /// Cutoff the list was built with.
        built: f64,
    },
}

/// Validates a cutoff radius.
pub(crate) fn check_cutoff(rcut: f64) -> Result<(), NlistError> {
    if rcut.is_finite() && rcut > 0.0 {
        Ok(())
    } else {
        Err(NlistError::BadCutoff(rcut))
    }
}

/// Validates a Verlet skin.
pub(crate) fn check_skin(skin: f64) -> Result<(), NlistError> {
    if skin.is_finite() && skin >= 0.0 {
        Ok(())
    } else {
        Err(NlistError::BadSkin(skin))
    }
}

/// Validates that every coordinate is finite.
pub(crate) fn check_positions(positions: &[[f64; 3]]) -> Result<(), NlistError> {
    match positions
        .iter()
        .position(|p| !p.iter().all(|x| x.is_finite()))
    {
        Some(atom) => Err(NlistError::NonFinite {
            atom,
            pos: positions[atom],
        }),
        None => Ok(()),
    }
}

/// Largest atom count the `u32` neighbour indices can address.
pub(crate) const MAX_ATOMS: usize = u32::MAX as usize;

/// Validates that `n` atoms can be indexed by the list.
pub(crate) fn check_count(n: usize) -> Result<(), NlistError> {
    if n <= MAX_ATOMS {
        Ok(())
    } else {
        Err(NlistError::TooManyAtoms { n, max: MAX_ATOMS })
    }
}
