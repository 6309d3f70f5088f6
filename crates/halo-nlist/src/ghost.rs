//! Ghost extension: local atoms followed by the periodic images within the cutoff.

use halo_core::{Cell, Vec3};
use rayon::prelude::*;

use crate::error::{check_count, check_cutoff, check_positions, NlistError};
use crate::grid::Grid;
use crate::list::squared_bounds;

/// Fractional slack on the per-atom image ranges; extra candidates fail the exact test.
const FRAC_SLACK: f64 = 1e-9;

/// Upper bound on candidate images examined before giving up with
/// [`NlistError::TooManyImages`].
const MAX_CANDIDATES: f64 = 4e9;

/// Owners handled per parallel task.
const CHUNK: usize = 1024;

/// A system extended by periodic images: `nloc` local atoms, then the ghosts.
///
/// For every atom `e`, `coords[e] = positions[mapping[e]] + shifts[e] · H`. Local atoms have
/// `mapping[i] = i` and a zero shift. Ghosts are ordered by shift — by `|n|²`, then `n`
/// lexicographically — and within one shift by owner index.
#[derive(Debug, Clone, PartialEq)]
pub struct Extended {
    /// Coordinates of all `nall` atoms (Å).
    pub coords: Vec<Vec3>,
    /// Local owner of every atom.
    pub mapping: Vec<usize>,
    /// Lattice translation of every atom relative to its owner, in cell vectors.
    pub shifts: Vec<[i32; 3]>,
    /// Number of local atoms (the first `nloc` entries).
    pub nloc: usize,
}

impl Extended {
    /// The system without images: every atom local.
    pub fn local_only(positions: &[Vec3]) -> Self {
        Extended {
            coords: positions.to_vec(),
            mapping: (0..positions.len()).collect(),
            shifts: vec![[0; 3]; positions.len()],
            nloc: positions.len(),
        }
    }

    /// Total number of atoms, local and ghost.
    pub fn nall(&self) -> usize {
        self.coords.len()
    }

    /// Number of ghost atoms.
    pub fn nghost(&self) -> usize {
        self.coords.len() - self.nloc
    }

    /// Per-atom data of the local atoms carried over to every extended atom (e.g. types).
    pub fn extend_values<T: Clone>(&self, local: &[T]) -> Result<Vec<T>, NlistError> {
        if local.len() != self.nloc {
            return Err(NlistError::LengthMismatch {
                what: "local values",
                got: local.len(),
                expected: self.nloc,
            });
        }
        Ok(self.mapping.iter().map(|&m| local[m].clone()).collect())
    }

    /// Sums per-atom vectors of the extended system onto the owners (e.g. forces on ghosts
    /// back to local atoms). The sum runs in extended-index order, so it is deterministic.
    pub fn fold_to_local(&self, values: &[Vec3]) -> Result<Vec<Vec3>, NlistError> {
        if values.len() != self.nall() {
            return Err(NlistError::LengthMismatch {
                what: "extended values",
                got: values.len(),
                expected: self.nall(),
            });
        }
        let mut out = values[..self.nloc].to_vec();
        for (v, &m) in values[self.nloc..].iter().zip(&self.mapping[self.nloc..]) {
            for k in 0..3 {
                out[m][k] += v[k];
            }
        }
        Ok(out)
    }

    /// Recomputes all coordinates from the owners' new positions and the (possibly changed)
    /// cell, keeping the atom set: ghost = owner + shift · H with the current `H`. This is the
    /// per-step update between Verlet rebuilds; with unchanged inputs it reproduces the
    /// coordinates of [`extend`] bit for bit.
    pub fn refresh(&mut self, positions: &[Vec3], cell: Option<&Cell>) -> Result<(), NlistError> {
        if positions.len() != self.nloc {
            return Err(NlistError::LengthMismatch {
                what: "positions",
                got: positions.len(),
                expected: self.nloc,
            });
        }
        check_positions(positions)?;
        self.coords[..self.nloc].copy_from_slice(positions);
        if self.nghost() == 0 {
            return Ok(());
        }
        let cell = cell.ok_or(NlistError::MissingCell {
            nghost: self.nghost(),
        })?;
        let nloc = self.nloc;
        self.coords[nloc..]
            .par_iter_mut()
            .zip(&self.mapping[nloc..])
            .zip(&self.shifts[nloc..])
            .for_each(|((c, &m), &n)| *c = image(positions[m], cell, n));
        Ok(())
    }
}

/// Position of the image of `x` translated by `n · H`.
#[inline]
fn image(x: Vec3, cell: &Cell, n: [i32; 3]) -> Vec3 {
    let t = cell.shift(n);
    [x[0] + t[0], x[1] + t[1], x[2] + t[2]]
}

/// Sort key of a ghost: shift by `|n|²` then lexicographically, then owner.
type GhostKey = (i64, [i32; 3], u32);

fn ghost_key(n: [i32; 3], owner: u32) -> GhostKey {
    let norm2 = n.iter().map(|&v| i64::from(v) * i64::from(v)).sum();
    (norm2, n, owner)
}

/// Extends `positions` by every periodic image that lies within `rcut` of at least one
/// local atom (`sqrt(d²) <= rcut`, the test of [`crate::NeighborList::build`]).
///
/// Local coordinates are kept as given, not wrapped; atoms outside the cell are fine, but
/// every local atom gets its own periodic neighbourhood, so positions spread over many cells
/// make many ghosts. Along a periodic axis `k` the images of atom `j` that can matter are
/// those whose fractional coordinate lies within `rcut / face_distance_k` of the fractional
/// range of the local atoms — possibly several periods when the cell is thinner than the
/// cutoff. Each candidate is then tested exactly against the local atoms with a cell list,
/// so unlike DeePMD-kit's `extend_coord_with_ghosts` no image without a neighbour is kept.
/// With no cell, or no periodic axis, the result has no ghosts.
pub fn extend(positions: &[Vec3], cell: Option<&Cell>, rcut: f64) -> Result<Extended, NlistError> {
    check_cutoff(rcut)?;
    check_positions(positions)?;
    check_count(positions.len())?;
    let cell = match cell {
        Some(c) if c.any_periodic() && !positions.is_empty() => c,
        _ => return Ok(Extended::local_only(positions)),
    };
    let pbc = cell.pbc();
    let frac: Vec<Vec3> = positions.par_iter().map(|&x| cell.to_frac(x)).collect();
    let mut smin = [f64::INFINITY; 3];
    let mut smax = [f64::NEG_INFINITY; 3];
    for s in &frac {
        for k in 0..3 {
            smin[k] = smin[k].min(s[k]);
            smax[k] = smax[k].max(s[k]);
        }
    }
    let face = cell.face_distances();
    let reach: Vec3 = std::array::from_fn(|k| if pbc[k] { rcut / face[k] } else { 0.0 });
    let span: Vec3 = std::array::from_fn(|k| smax[k] - smin[k]);
    let per_atom: f64 = (0..3)
        .map(|k| {
            if pbc[k] {
                span[k] + 2.0 * reach[k] + 2.0
            } else {
                1.0
            }
        })
        .product();
    let candidates = per_atom * positions.len() as f64;
    if candidates > MAX_CANDIDATES {
        return Err(NlistError::TooManyImages { candidates, span });
    }

    let grid = Grid::new(positions, rcut, 2 * positions.len());
    let (sure, maybe) = squared_bounds(rcut);
    let near_local = |p: Vec3| {
        let mut found = false;
        grid.for_each_range(p, rcut, |s, e| {
            found = (s..e).any(|k| {
                let q = [grid.xyz[0][k], grid.xyz[1][k], grid.xyz[2][k]];
                let d = [p[0] - q[0], p[1] - q[1], p[2] - q[2]];
                let d2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2];
                d2 <= maybe && (d2 <= sure || d2.sqrt() <= rcut)
            });
            !found
        });
        found
    };
    let owners: Vec<usize> = (0..positions.len()).collect();
    let mut ghosts: Vec<(Vec3, GhostKey)> = owners
        .par_chunks(CHUNK)
        .flat_map_iter(|chunk| {
            let mut found = Vec::new();
            for &j in chunk {
                let s = frac[j];
                let range: [(i32, i32); 3] = std::array::from_fn(|k| {
                    if pbc[k] {
                        let lo = (smin[k] - s[k] - reach[k] - FRAC_SLACK).ceil() as i32;
                        let hi = (smax[k] - s[k] + reach[k] + FRAC_SLACK).floor() as i32;
                        (lo, hi)
                    } else {
                        (0, 0)
                    }
                });
                for n0 in range[0].0..=range[0].1 {
                    for n1 in range[1].0..=range[1].1 {
                        for n2 in range[2].0..=range[2].1 {
                            let n = [n0, n1, n2];
                            if n == [0; 3] {
                                continue;
                            }
                            let p = image(positions[j], cell, n);
                            if near_local(p) {
                                found.push((p, ghost_key(n, j as u32)));
                            }
                        }
                    }
                }
            }
            found
        })
        .collect();
    // Keys are unique (one per owner and shift), so the unstable sort is deterministic.
    ghosts.par_sort_unstable_by_key(|g| g.1);

    let nloc = positions.len();
    let nall = nloc + ghosts.len();
    check_count(nall)?;
    let mut coords = Vec::with_capacity(nall);
    let mut mapping = Vec::with_capacity(nall);
    let mut shifts = Vec::with_capacity(nall);
    coords.extend_from_slice(positions);
    mapping.extend(0..nloc);
    shifts.resize(nloc, [0; 3]);
    for (p, (_, n, owner)) in ghosts {
        coords.push(p);
        mapping.push(owner as usize);
        shifts.push(n);
    }
    Ok(Extended {
        coords,
        mapping,
        shifts,
        nloc,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_cell_or_no_pbc_means_no_ghosts() {
        let pos = vec![[0.0; 3], [1.0, 2.0, 3.0]];
        let e = extend(&pos, None, 5.0).unwrap();
        assert_eq!((e.nloc, e.nall(), e.nghost()), (2, 2, 0));
        assert_eq!(e.mapping, vec![0, 1]);
        let cell = Cell::orthorhombic(2.0, 2.0, 2.0)
            .unwrap()
            .with_pbc([false; 3]);
        assert_eq!(extend(&pos, Some(&cell), 5.0).unwrap().nghost(), 0);
    }

    #[test]
    fn single_atom_in_a_thin_cell_sees_several_images() {
        // Cubic cell of 1 Å, cutoff 2.5 Å: images with |n| <= 2.5 are kept, i.e. all shifts
        // in [-2, 2]³ with n0² + n1² + n2² <= 6.25 except n = 0.
        let cell = Cell::orthorhombic(1.0, 1.0, 1.0).unwrap();
        let e = extend(&[[0.5, 0.5, 0.5]], Some(&cell), 2.5).unwrap();
        let mut expected = 0;
        for a in -2i32..=2 {
            for b in -2i32..=2 {
                for c in -2i32..=2 {
                    let r2 = a * a + b * b + c * c;
                    if r2 > 0 && r2 <= 6 {
                        expected += 1;
                    }
                }
            }
        }
        assert_eq!(e.nghost(), expected);
        // Ordered by |n|² first: the six face neighbours come first.
        assert!(e.shifts[1..7]
            .iter()
            .all(|n| n.iter().map(|v| v * v).sum::<i32>() == 1));
        assert_eq!(e.shifts[1], [-1, 0, 0]);
    }

    #[test]
    fn refresh_follows_owners_and_cell() {
        let cell = Cell::orthorhombic(3.0, 3.0, 3.0).unwrap();
        let pos = vec![[0.2, 0.3, 0.1], [2.8, 1.5, 2.9]];
        let mut e = extend(&pos, Some(&cell), 1.5).unwrap();
        // Only the (−1, 0, −1) image of atom 1 (1.28 Å from atom 0) and its mirror remain.
        assert_eq!(e.shifts[2..], [[-1, 0, -1], [1, 0, 1]]);
        let fresh = e.clone();
        e.refresh(&pos, Some(&cell)).unwrap();
        assert_eq!(e, fresh);
        let moved = vec![[0.25, 0.3, 0.1], [2.8, 1.4, 2.9]];
        let big = Cell::orthorhombic(3.1, 3.0, 3.0).unwrap();
        e.refresh(&moved, Some(&big)).unwrap();
        for g in 0..e.nall() {
            let n = e.shifts[g];
            let o = moved[e.mapping[g]];
            let want = [
                o[0] + 3.1 * n[0] as f64,
                o[1] + 3.0 * n[1] as f64,
                o[2] + 3.0 * n[2] as f64,
            ];
            assert_eq!(e.coords[g], want);
        }
        assert!(matches!(
            e.refresh(&moved, None),
            Err(NlistError::MissingCell { .. })
        ));
        assert!(e.refresh(&moved[..1], Some(&cell)).is_err());
    }

    #[test]
    fn values_extend_and_fold() {
        let cell = Cell::orthorhombic(2.0, 2.0, 2.0).unwrap();
        let e = extend(&[[0.1, 1.0, 1.0], [1.9, 1.0, 1.0]], Some(&cell), 0.5).unwrap();
        // Atom 0's image at x = 2.1 is 0.2 Å from atom 1, atom 1's at −0.1 is 0.2 Å from 0.
        assert_eq!(e.nghost(), 2);
        assert_eq!(
            e.extend_values(&["a", "b"]).unwrap(),
            vec!["a", "b", "b", "a"]
        );
        let f = e
            .fold_to_local(&[[1.0; 3], [2.0; 3], [10.0; 3], [20.0; 3]])
            .unwrap();
        assert_eq!(f, vec![[21.0; 3], [12.0; 3]]);
        assert!(e.extend_values(&[1]).is_err());
    }

    #[test]
    fn refuses_absurd_spreads() {
        let cell = Cell::orthorhombic(1.0, 1.0, 1.0).unwrap();
        let pos = vec![[0.0; 3], [1e5, 1e5, 1e5]];
        assert!(matches!(
            extend(&pos, Some(&cell), 1.0),
            Err(NlistError::TooManyImages { .. })
        ));
    }
}
