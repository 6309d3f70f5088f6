//! Summary numbers of a neighbour search, as `halomd neighbors` prints them.

use halo_core::{Cell, Vec3};

use crate::error::{check_cutoff, check_skin, NlistError};
use crate::ghost::extend;
use crate::list::NeighborList;

/// Counts describing the neighbourhood of a structure.
#[derive(Debug, Clone, PartialEq)]
pub struct NeighborStats {
    /// Number of (local) atoms.
    pub natoms: usize,
    /// Ghost atoms kept for `cutoff + skin` (after pruning).
    pub nghost: usize,
    /// The cutoff (Å).
    pub cutoff: f64,
    /// The skin (Å).
    pub skin: f64,
    /// Ordered pairs `(i, j)` — `i` local, `j` any atom or image other than `i` itself —
    /// with distance `<= cutoff`.
    pub npairs: usize,
    /// The same within `cutoff + skin` (the size of a Verlet list).
    pub npairs_skin: usize,
    /// Largest number of neighbours within `cutoff` of one atom.
    pub max_neighbors: usize,
    /// `npairs / natoms` (0 for no atoms).
    pub neighbors_per_atom: f64,
}

/// Extends, builds with `cutoff + skin` and counts; `skin = 0` gives the plain list.
pub fn neighbor_stats(
    positions: &[Vec3],
    cell: Option<&Cell>,
    cutoff: f64,
    skin: f64,
) -> Result<NeighborStats, NlistError> {
    check_cutoff(cutoff)?;
    check_skin(skin)?;
    let ext = extend(positions, cell, cutoff + skin)?;
    let outer = NeighborList::build(&ext.coords, ext.nloc, cutoff + skin)?;
    let inner = outer.within(&ext.coords, cutoff)?;
    let natoms = positions.len();
    Ok(NeighborStats {
        natoms,
        nghost: ext.nghost(),
        cutoff,
        skin,
        npairs: inner.npairs(),
        npairs_skin: outer.npairs(),
        max_neighbors: inner.max_neighbors(),
        neighbors_per_atom: if natoms == 0 {
            0.0
        } else {
            inner.npairs() as f64 / natoms as f64
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_cubic_shells() {
        // Simple cubic, a = 2 Å, 3×3×3 supercell: 6 neighbours at 2 Å, 12 at 2.83 Å.
        let cell = Cell::orthorhombic(6.0, 6.0, 6.0).unwrap();
        let mut pos = Vec::new();
        for i in 0..3 {
            for j in 0..3 {
                for k in 0..3 {
                    pos.push([2.0 * i as f64, 2.0 * j as f64, 2.0 * k as f64]);
                }
            }
        }
        let s = neighbor_stats(&pos, Some(&cell), 2.5, 0.5).unwrap();
        assert_eq!(s.natoms, 27);
        assert_eq!(s.npairs, 27 * 6);
        assert_eq!(s.npairs_skin, 27 * 18);
        assert_eq!(s.max_neighbors, 6);
        assert_eq!(s.neighbors_per_atom, 6.0);
        // Images on the grid {-2, …, 6}³ within 3 Å of the atoms in [0, 4]³: one layer on
        // each side except the 8 corners, which are 2√3 Å away.
        assert_eq!(s.nghost, 5 * 5 * 5 - 27 - 8);
        assert!(neighbor_stats(&pos, None, 1.0, f64::NAN).is_err());
    }
}
