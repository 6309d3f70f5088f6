//! Descriptors: from the extended neighbourhood of each local atom to a per-atom feature row.

pub mod dpa3;
pub mod env_mat;
pub mod se_e2_a;

/// What every descriptor reads: extended atoms (local first, then ghosts) and a DeePMD-layout
/// neighbour list over the local atoms.
#[derive(Debug, Clone, Copy)]
pub struct DescriptorInput<'a> {
    /// Cartesian coordinates of all `nall` extended atoms (Å).
    pub coords: &'a [[f64; 3]],
    /// Model type of each extended atom; `-1` marks atoms outside the model (NULL types).
    pub types: &'a [i32],
    /// Number of local atoms (the first `nloc` rows).
    pub nloc: usize,
    /// Neighbour indices into the extended atoms, `nloc × nnei` row-major, `-1` padded, in the
    /// layout the descriptor asked for (typed sections or one distance-sorted section).
    pub nlist: &'a [i32],
    /// Row width of `nlist`.
    pub nnei: usize,
}
