//! The processor grid: which rank owns which slice of the box.

use halo_core::System;

use crate::domain::Frame;
use crate::error::DomainError;

/// Largest number of ranks a grid may have (far beyond one machine; guards overflow).
const MAX_RANKS: usize = 1 << 20;

/// A `px × py × pz` grid of ranks; rank `r` sits at `(r % px, (r / px) % py, r / (px·py))`,
/// x fastest, as LAMMPS numbers its default grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcGrid {
    dims: [usize; 3],
}

impl ProcGrid {
    /// A grid with `dims` ranks along x, y and z; every extent must be at least 1.
    pub fn new(dims: [usize; 3]) -> Result<Self, DomainError> {
        let n = dims
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .filter(|&n| n <= MAX_RANKS);
        if dims.contains(&0) || n.is_none() {
            return Err(DomainError::Grid(format!(
                "{}×{}×{} is not a grid of 1 to {MAX_RANKS} ranks",
                dims[0], dims[1], dims[2]
            )));
        }
        Ok(ProcGrid { dims })
    }

    /// The grid of `nranks` ranks whose subdomains have the least surface for `system`'s box
    /// (the cell along periodic axes, the atoms' bounding box along open ones), as LAMMPS'
    /// `procs2box`: among all factorisations the first with the smallest `Σ p_k / L_k`, `L_k`
    /// the box thickness along axis `k`, iterating `px`, then `py`, ascending.
    pub fn auto(system: &System, nranks: usize) -> Result<Self, DomainError> {
        if nranks == 0 || nranks > MAX_RANKS {
            return Err(DomainError::Grid(format!(
                "{nranks} ranks: a grid needs 1 to {MAX_RANKS}"
            )));
        }
        let (frame, _) = Frame::new(system)?;
        let thick = frame.thickness();
        let mut best: Option<(f64, [usize; 3])> = None;
        for px in (1..=nranks).filter(|p| nranks.is_multiple_of(*p)) {
            let rest = nranks / px;
            for py in (1..=rest).filter(|p| rest.is_multiple_of(*p)) {
                let dims = [px, py, rest / py];
                let cost: f64 = (0..3).map(|k| dims[k] as f64 / thick[k]).sum();
                if best.is_none_or(|(c, _)| cost < c) {
                    best = Some((cost, dims));
                }
            }
        }
        let (_, dims) = best.expect("1 × 1 × n is always a candidate");
        ProcGrid::new(dims)
    }

    /// Ranks along x, y and z.
    pub fn dims(&self) -> [usize; 3] {
        self.dims
    }

    /// Total number of ranks.
    pub fn nranks(&self) -> usize {
        self.dims.iter().product()
    }

    /// Grid position of `rank`.
    pub fn loc(&self, rank: usize) -> [usize; 3] {
        let [px, py, _] = self.dims;
        [rank % px, (rank / px) % py, rank / (px * py)]
    }

    /// Rank at grid position `loc` (each coordinate taken modulo the grid extent).
    pub fn rank_at(&self, loc: [usize; 3]) -> usize {
        let [px, py, pz] = self.dims;
        loc[0] % px + px * (loc[1] % py + py * (loc[2] % pz))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_and_locations_round_trip() {
        let g = ProcGrid::new([2, 3, 4]).unwrap();
        assert_eq!(g.nranks(), 24);
        for r in 0..24 {
            assert_eq!(g.rank_at(g.loc(r)), r);
        }
        assert_eq!(g.loc(1), [1, 0, 0]);
        assert_eq!(g.loc(2), [0, 1, 0]);
        assert_eq!(g.loc(6), [0, 0, 1]);
        assert!(ProcGrid::new([0, 1, 1]).is_err());
        assert!(ProcGrid::new([usize::MAX, 2, 1]).is_err());
    }
}
