//! Verlet skin: build once with `rcut + skin`, reuse until atoms (or the cell) moved too far.

use halo_core::{Cell, Vec3};
use rayon::prelude::*;

use crate::error::{check_cutoff, check_positions, check_skin, NlistError};
use crate::ghost::{extend, Extended};
use crate::list::NeighborList;

/// The rebuild criterion alone: positions and cell at the last build, compared with the
/// current ones. Usable by anyone who builds lists themselves (e.g. domain decomposition).
///
/// A pair `(i, j + n·H)` changes its separation by at most `|Δx_i| + |Δx_j| + |n·ΔH|`
/// since the build. A list built with `rcut + skin` therefore still holds every pair within
/// `rcut` while `2·max|Δx| + max|n·ΔH| <= skin`, the maximum over the shifts `n` a pair within
/// `rcut` can have now. With a fixed cell this is the classic "some atom moved more than
/// skin/2". When the cell changes (NPT), `|n_k| <= rcut / d_k + span_k` (face distance `d_k`,
/// fractional extent `span_k` of the current positions) bounds the shifts, and
/// `Σ_k N_k |ΔH_k|` bounds `|n·ΔH|`, so a deforming cell eats into the skin and triggers a
/// rebuild earlier; a change of periodicity, of cell presence or of the atom count always
/// triggers one. Displacements are measured on the positions exactly as given: unwrapped
/// positions give true displacements; wrapping an atom between builds counts as a jump.
#[derive(Debug, Clone, PartialEq)]
pub struct RebuildCheck {
    rcut: f64,
    skin: f64,
    reference: Vec<Vec3>,
    cell: Option<Cell>,
}

impl RebuildCheck {
    /// Records the state of a build done with cutoff `rcut + skin`.
    pub fn new(rcut: f64, skin: f64, positions: &[Vec3], cell: Option<&Cell>) -> Self {
        RebuildCheck {
            rcut,
            skin,
            reference: positions.to_vec(),
            cell: cell.copied(),
        }
    }

    /// Largest displacement of any atom since the build (Å); infinite if the count changed.
    pub fn max_displacement(&self, positions: &[Vec3]) -> f64 {
        if positions.len() != self.reference.len() {
            return f64::INFINITY;
        }
        positions
            .par_iter()
            .zip(&self.reference)
            .map(|(p, r)| {
                let d = [p[0] - r[0], p[1] - r[1], p[2] - r[2]];
                d[0] * d[0] + d[1] * d[1] + d[2] * d[2]
            })
            .reduce(|| 0.0, f64::max)
            .sqrt()
    }

    /// Bound on how much the cell change since the build moved any relevant image relative
    /// to its owner (Å); infinite if periodicity or cell presence changed.
    pub fn cell_displacement(&self, positions: &[Vec3], cell: Option<&Cell>) -> f64 {
        let (old, new) = match (&self.cell, cell) {
            (None, None) => return 0.0,
            (Some(o), Some(n)) if o.pbc() == n.pbc() => (o, n),
            _ => return f64::INFINITY,
        };
        if old.matrix() == new.matrix() {
            return 0.0;
        }
        let pbc = new.pbc();
        let mut smin = [f64::INFINITY; 3];
        let mut smax = [f64::NEG_INFINITY; 3];
        for &x in positions {
            let s = new.to_frac(x);
            for k in 0..3 {
                smin[k] = smin[k].min(s[k]);
                smax[k] = smax[k].max(s[k]);
            }
        }
        let face = new.face_distances();
        let (h0, h1) = (old.matrix(), new.matrix());
        (0..3)
            .filter(|&k| pbc[k] && !positions.is_empty())
            .map(|k| {
                let nmax = (self.rcut / face[k] + (smax[k] - smin[k]) + 1e-9).floor();
                let dh = [
                    h1[k][0] - h0[k][0],
                    h1[k][1] - h0[k][1],
                    h1[k][2] - h0[k][2],
                ];
                nmax * (dh[0] * dh[0] + dh[1] * dh[1] + dh[2] * dh[2]).sqrt()
            })
            .sum()
    }

    /// True when the list built at the recorded state may miss a pair within `rcut` now.
    pub fn needs_rebuild(&self, positions: &[Vec3], cell: Option<&Cell>) -> bool {
        let budget = self.skin - self.cell_displacement(positions, cell);
        // Not `2·d > budget` with a NaN-prone subtraction: an infinite term means rebuild.
        !(budget >= 0.0 && 2.0 * self.max_displacement(positions) <= budget)
    }
}

/// A self-maintaining neighbour list for MD: ghost extension and list built with
/// `rcut + skin`, rebuilt only when [`RebuildCheck`] says so, ghosts refreshed otherwise.
///
/// Each step call [`Verlet::update`] with the new positions and cell, then hand the model
/// [`Verlet::extended`] and [`Verlet::within`] (neighbours within `rcut`, sorted by current
/// distance).
#[derive(Debug, Clone)]
pub struct Verlet {
    rcut: f64,
    skin: f64,
    check: RebuildCheck,
    ext: Extended,
    list: NeighborList,
    builds: usize,
}

impl Verlet {
    /// Builds the extended system and the list for the first time.
    pub fn new(
        rcut: f64,
        skin: f64,
        positions: &[Vec3],
        cell: Option<&Cell>,
    ) -> Result<Self, NlistError> {
        check_cutoff(rcut)?;
        check_skin(skin)?;
        let (ext, list, check) = Self::fresh(rcut, skin, positions, cell)?;
        Ok(Verlet {
            rcut,
            skin,
            check,
            ext,
            list,
            builds: 1,
        })
    }

    fn fresh(
        rcut: f64,
        skin: f64,
        positions: &[Vec3],
        cell: Option<&Cell>,
    ) -> Result<(Extended, NeighborList, RebuildCheck), NlistError> {
        let ext = extend(positions, cell, rcut + skin)?;
        let list = NeighborList::build(&ext.coords, ext.nloc, rcut + skin)?;
        Ok((ext, list, RebuildCheck::new(rcut, skin, positions, cell)))
    }

    /// Whether the next [`Verlet::update`] with these inputs will rebuild.
    pub fn needs_rebuild(&self, positions: &[Vec3], cell: Option<&Cell>) -> bool {
        self.check.needs_rebuild(positions, cell)
    }

    /// Brings the extended system up to date: a full rebuild if needed, otherwise a refresh
    /// of the coordinates (ghost = owner + shift · H). Returns whether it rebuilt.
    pub fn update(&mut self, positions: &[Vec3], cell: Option<&Cell>) -> Result<bool, NlistError> {
        check_positions(positions)?;
        if self.check.needs_rebuild(positions, cell) {
            let (ext, list, check) = Self::fresh(self.rcut, self.skin, positions, cell)?;
            (self.ext, self.list, self.check) = (ext, list, check);
            self.builds += 1;
            Ok(true)
        } else {
            self.ext.refresh(positions, cell)?;
            Ok(false)
        }
    }

    /// The model cutoff (Å).
    pub fn rcut(&self) -> f64 {
        self.rcut
    }

    /// The skin (Å).
    pub fn skin(&self) -> f64 {
        self.skin
    }

    /// The extended system at the current positions.
    pub fn extended(&self) -> &Extended {
        &self.ext
    }

    /// The list within `rcut + skin`, ordered by distance at the last build.
    pub fn list(&self) -> &NeighborList {
        &self.list
    }

    /// Neighbours within `rcut` at the current coordinates, sorted by current distance.
    pub fn within(&self) -> Result<NeighborList, NlistError> {
        self.list.within(&self.ext.coords, self.rcut)
    }

    /// How many times the list was built (1 after [`Verlet::new`]).
    pub fn builds(&self) -> usize {
        self.builds
    }

    /// The rebuild criterion in use.
    pub fn check(&self) -> &RebuildCheck {
        &self.check
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rebuilds_only_past_half_the_skin() {
        let pos = vec![[0.0; 3], [1.0, 0.0, 0.0]];
        let check = RebuildCheck::new(3.0, 1.0, &pos, None);
        assert!(!check.needs_rebuild(&pos, None));
        assert!(!check.needs_rebuild(&[[0.5, 0.0, 0.0], [1.0, 0.0, 0.0]], None));
        assert!(check.needs_rebuild(&[[0.0, 0.0, 0.0], [1.0, 0.0, 0.5000001]], None));
        assert!(check.needs_rebuild(&pos[..1], None));
        let cell = Cell::orthorhombic(10.0, 10.0, 10.0).unwrap();
        assert!(check.needs_rebuild(&pos, Some(&cell)));
    }

    #[test]
    fn cell_change_eats_into_the_skin() {
        let cell = Cell::orthorhombic(10.0, 10.0, 10.0).unwrap();
        let pos = vec![[1.0, 1.0, 1.0], [9.0, 9.0, 9.0]];
        let check = RebuildCheck::new(3.0, 1.0, &pos, Some(&cell));
        // Span 0.8 + rcut/d 0.3 → |n_k| <= 1 per axis.
        let grown = Cell::orthorhombic(10.2, 10.0, 10.0).unwrap();
        let d = check.cell_displacement(&pos, Some(&grown));
        assert!((d - 0.2).abs() < 1e-12, "{d}");
        assert!(!check.needs_rebuild(&pos, Some(&grown)));
        let moved = vec![[1.0, 1.0, 1.0], [9.0, 9.0, 9.41]];
        assert!(!check.needs_rebuild(&moved, Some(&cell)));
        assert!(check.needs_rebuild(&moved, Some(&grown)));
        let open = cell.with_pbc([true, true, false]);
        assert!(check.needs_rebuild(&pos, Some(&open)));
    }

    #[test]
    fn verlet_updates_and_rebuilds() {
        let cell = Cell::orthorhombic(4.0, 4.0, 4.0).unwrap();
        let mut pos = vec![[0.5, 0.5, 0.5], [2.0, 2.0, 2.0], [3.6, 0.4, 2.0]];
        let mut v = Verlet::new(2.0, 0.6, &pos, Some(&cell)).unwrap();
        assert_eq!(v.builds(), 1);
        pos[1][0] += 0.29;
        assert!(!v.update(&pos, Some(&cell)).unwrap());
        assert_eq!(v.extended().coords[1], pos[1]);
        pos[1][0] += 0.02;
        assert!(v.update(&pos, Some(&cell)).unwrap());
        assert_eq!(v.builds(), 2);
        let w = v.within().unwrap();
        let fresh = extend(&pos, Some(&cell), 2.0).unwrap();
        let direct = NeighborList::build(&fresh.coords, 3, 2.0).unwrap();
        assert_eq!(w.npairs(), direct.npairs());
        assert!(Verlet::new(2.0, -0.1, &pos, None).is_err());
    }
}
