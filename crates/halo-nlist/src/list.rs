//! The neighbour list proper: a CSR over local atoms, each row sorted by distance.

use halo_core::Vec3;
use rayon::prelude::*;

use crate::error::{check_count, check_cutoff, check_positions, NlistError};
use crate::grid::Grid;

/// Bins per cutoff length. Narrower bins examine fewer candidates (≈ 460, 226 and 176 per
/// atom for 1, 2 and 3 bins per cutoff in a liquid with 89 neighbours) but visit more, shorter
/// bin rows, whose loop exits cost branch mispredictions; 1.25–1.5 measured best (instruction
/// and misprediction counts under cachegrind, and `cargo bench -p halo-nlist`).
const BINS_PER_CUTOFF: f64 = 1.5;

/// Local atoms handled per parallel task. Fixed, so the work split never depends on the
/// thread count (the output does not either way: every row is computed independently).
const CHUNK: usize = 512;

/// Bounds on `d²` around `rcut²`: below the first `sqrt(d²) <= rcut` surely holds, above the
/// second it surely fails; only between them is the square root (the test DeePMD-kit applies
/// to its distances) taken. The 1e-12 margins dwarf the few-ulp rounding of `rcut * rcut`.
pub(crate) fn squared_bounds(rcut: f64) -> (f64, f64) {
    let r2 = rcut * rcut;
    (r2 * (1.0 - 1e-12), r2 * (1.0 + 1e-12))
}

/// Full neighbour lists of the first `nloc` atoms of an extended system (local atoms first,
/// then ghosts), as compressed sparse rows.
///
/// Row `i` holds the indices `j` (into the extended coordinates) with
/// `sqrt(|x_j − x_i|²) <= rcut` and `j ≠ i`, sorted by distance, ties by index. Images of
/// atom `i` itself are neighbours like any other atom. Indices are `u32` to halve the memory
/// of the dominant array (≈ 0.36 GB for 10⁶ atoms with 90 neighbours each).
#[derive(Debug, Clone, PartialEq)]
pub struct NeighborList {
    rcut: f64,
    nloc: usize,
    nall: usize,
    offsets: Vec<usize>,
    indices: Vec<u32>,
}

impl NeighborList {
    /// Searches all of `coords` for the neighbours of `coords[..nloc]` within `rcut`, with a
    /// cell list over the bounding box of `coords` (O(N), no cell needed: periodicity must
    /// already be expressed by ghost atoms, e.g. from [`crate::extend`]).
    pub fn build(coords: &[Vec3], nloc: usize, rcut: f64) -> Result<Self, NlistError> {
        check_cutoff(rcut)?;
        check_positions(coords)?;
        check_count(coords.len())?;
        let nall = coords.len();
        if nloc > nall {
            return Err(NlistError::NlocTooLarge { nloc, nall });
        }
        let grid = Grid::new(coords, rcut / BINS_PER_CUTOFF, 2 * nall);
        // Visit local atoms in bin order so consecutive queries touch the same bins.
        let order: Vec<u32> = grid
            .idx
            .iter()
            .copied()
            .filter(|&j| (j as usize) < nloc)
            .collect();
        let maybe = squared_bounds(rcut).1;
        let [xs, ys, zs] = &grid.xyz;
        let (offsets, indices) = collect_rows(nloc, &order, rcut, |i, scratch| {
            let q = coords[i];
            let mut d2 = [0.0f64; BLOCK];
            grid.for_each_range(q, rcut, |mut s, e| {
                while s < e {
                    let end = (s + BLOCK).min(e);
                    let d2 = &mut d2[..end - s];
                    // Plain loop over equal-length slices: the compiler vectorises it.
                    for (((d, &x), &y), &z) in d2
                        .iter_mut()
                        .zip(&xs[s..end])
                        .zip(&ys[s..end])
                        .zip(&zs[s..end])
                    {
                        let (dx, dy, dz) = (x - q[0], y - q[1], z - q[2]);
                        *d = dx * dx + dy * dy + dz * dz;
                    }
                    // Branch-free compaction: write every candidate, advance past kept ones.
                    // The exact test and dropping `i` itself wait for the sorted row.
                    let mut n = scratch.len();
                    scratch.resize(n + d2.len(), (0.0, 0));
                    for (&d, &j) in d2.iter().zip(&grid.idx[s..end]) {
                        scratch[n] = (d, j);
                        n += usize::from(d <= maybe);
                    }
                    scratch.truncate(n);
                    s = end;
                }
                true
            });
        });
        Ok(NeighborList {
            rcut,
            nloc,
            nall,
            offsets,
            indices,
        })
    }

    /// The list restricted to `rcut` (≤ the build cutoff) and re-sorted by the distances in
    /// `coords` — the current coordinates of the same extended system. This is what a model
    /// needs each MD step from a list built with a Verlet skin.
    pub fn within(&self, coords: &[Vec3], rcut: f64) -> Result<NeighborList, NlistError> {
        check_cutoff(rcut)?;
        if rcut > self.rcut {
            return Err(NlistError::CutoffTooLarge {
                requested: rcut,
                built: self.rcut,
            });
        }
        if coords.len() != self.nall {
            return Err(NlistError::LengthMismatch {
                what: "coords",
                got: coords.len(),
                expected: self.nall,
            });
        }
        check_positions(coords)?;
        let order: Vec<u32> = (0..self.nloc as u32).collect();
        let maybe = squared_bounds(rcut).1;
        let (offsets, indices) = collect_rows(self.nloc, &order, rcut, |i, scratch| {
            let q = coords[i];
            for &j in self.neighbors(i) {
                let p = coords[j as usize];
                let d = [p[0] - q[0], p[1] - q[1], p[2] - q[2]];
                let d2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2];
                if d2 <= maybe {
                    scratch.push((d2, j));
                }
            }
        });
        Ok(NeighborList {
            rcut,
            nloc: self.nloc,
            nall: self.nall,
            offsets,
            indices,
        })
    }

    /// The list without the atoms for which `keep` is false: they vanish as neighbours and
    /// their own rows become empty, keeping the order of the rest. This is how atoms outside
    /// the model (LAMMPS `NULL` types) are removed, as DeePMD-kit removes them before its
    /// neighbour search, so they never take a `sel` slot.
    pub fn retain(&self, keep: &[bool]) -> Result<NeighborList, NlistError> {
        if keep.len() != self.nall {
            return Err(NlistError::LengthMismatch {
                what: "keep",
                got: keep.len(),
                expected: self.nall,
            });
        }
        let mut offsets = Vec::with_capacity(self.nloc + 1);
        let mut indices = Vec::with_capacity(self.indices.len());
        offsets.push(0);
        for i in 0..self.nloc {
            if keep[i] {
                indices.extend(self.neighbors(i).iter().filter(|&&j| keep[j as usize]));
            }
            offsets.push(indices.len());
        }
        Ok(NeighborList {
            rcut: self.rcut,
            nloc: self.nloc,
            nall: self.nall,
            offsets,
            indices,
        })
    }

    /// The cutoff the list was built with (Å).
    pub fn rcut(&self) -> f64 {
        self.rcut
    }

    /// Number of local atoms (rows).
    pub fn nloc(&self) -> usize {
        self.nloc
    }

    /// Number of extended atoms the indices refer to.
    pub fn nall(&self) -> usize {
        self.nall
    }

    /// Neighbours of local atom `i`, nearest first. Panics if `i >= nloc`.
    pub fn neighbors(&self, i: usize) -> &[u32] {
        &self.indices[self.offsets[i]..self.offsets[i + 1]]
    }

    /// Number of neighbours of local atom `i`.
    pub fn count(&self, i: usize) -> usize {
        self.offsets[i + 1] - self.offsets[i]
    }

    /// Total number of (ordered) pairs.
    pub fn npairs(&self) -> usize {
        self.indices.len()
    }

    /// The largest row length.
    pub fn max_neighbors(&self) -> usize {
        (0..self.nloc).map(|i| self.count(i)).max().unwrap_or(0)
    }

    /// Row offsets: row `i` is `indices()[offsets()[i]..offsets()[i + 1]]`.
    pub fn offsets(&self) -> &[usize] {
        &self.offsets
    }

    /// All neighbour indices, row after row.
    pub fn indices(&self) -> &[u32] {
        &self.indices
    }

    /// Iterates over `(i, neighbours of i)`.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &[u32])> + '_ {
        (0..self.nloc).map(move |i| (i, self.neighbors(i)))
    }

    /// Bytes held by the list's arrays.
    pub fn heap_bytes(&self) -> usize {
        self.offsets.capacity() * std::mem::size_of::<usize>()
            + self.indices.capacity() * std::mem::size_of::<u32>()
    }
}

/// A neighbour candidate: `d²` (distance `d` once the row is finished) and extended index.
type Candidate = (f64, u32);

/// Candidates examined per pass of the distance kernel.
const BLOCK: usize = 64;

/// Runs of at most this many candidates are insertion-sorted.
const SMALL_RUN: usize = 16;

/// Distance buckets of the row sort; about one neighbour each in a typical row.
const NBUCKETS: usize = 128;

/// Reusable buffers of the row sort.
#[derive(Default)]
struct SortBuffers {
    buckets: Vec<u8>,
    out: Vec<Candidate>,
}

/// Orders candidates by `(d, index)`.
fn exact_less(a: &Candidate, b: &Candidate) -> bool {
    a.0 < b.0 || (a.0 == b.0 && a.1 < b.1)
}

fn insertion_sort(run: &mut [Candidate]) {
    for k in 1..run.len() {
        let mut m = k;
        while m > 0 && exact_less(&run[m], &run[m - 1]) {
            run.swap(m, m - 1);
            m -= 1;
        }
    }
}

/// Turns a row of candidates with `d² <= maybe` into the final row: distances
/// `d = sqrt(d²)` (DeePMD-kit's `rr`, bit for bit on the same coordinates), sorted by
/// `(d, index)`, `d <= rcut` only, without atom `i` itself.
///
/// The sort is a bucket sort on `(d / rcut)³`, which spreads a uniform neighbourhood evenly
/// over the buckets, then one insertion pass that only moves entries within their bucket
/// (the bucket is monotone in `d`). That is linear for the ~90-neighbour rows of a liquid
/// and several times faster than a comparison sort; a row with a crowded bucket (e.g. a
/// perfect lattice's shell) falls back to the comparison sort.
fn finish_row(row: &mut Vec<Candidate>, i: u32, rcut: f64, buf: &mut SortBuffers) {
    for c in row.iter_mut() {
        c.0 = c.0.sqrt();
    }
    sort_by_distance(row, rcut, buf);
    while row.last().is_some_and(|c| c.0 > rcut) {
        row.pop();
    }
    // `i` is at distance exactly 0, so among the first entries (if it was a candidate).
    if let Some(at) = row.iter().take_while(|c| c.0 == 0.0).position(|c| c.1 == i) {
        row.remove(at);
    }
}

fn sort_by_distance(row: &mut Vec<Candidate>, rcut: f64, buf: &mut SortBuffers) {
    if row.len() <= SMALL_RUN {
        insertion_sort(row);
        return;
    }
    let inv = 1.0 / rcut;
    let top = (NBUCKETS - 1) as f64;
    buf.buckets.clear();
    buf.buckets.extend(row.iter().map(|c| {
        let t = (c.0 * inv).min(1.0);
        (t * t * t * NBUCKETS as f64).min(top) as u8
    }));
    let mut start = [0u32; NBUCKETS + 1];
    for &b in &buf.buckets {
        start[b as usize + 1] += 1;
    }
    let mut crowded = false;
    for b in 0..NBUCKETS {
        crowded |= start[b + 1] as usize > SMALL_RUN;
        start[b + 1] += start[b];
    }
    if crowded {
        row.sort_unstable_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
        return;
    }
    buf.out.clear();
    buf.out.resize(row.len(), (0.0, 0));
    for (c, &b) in row.iter().zip(&buf.buckets) {
        let at = &mut start[b as usize];
        buf.out[*at as usize] = *c;
        *at += 1;
    }
    insertion_sort(&mut buf.out);
    std::mem::swap(row, &mut buf.out);
}

/// Runs `row(i, scratch)` for every atom of `order` in parallel, each filling `scratch` with
/// candidates, and assembles the sorted rows as a CSR in atom-index order.
///
/// Chunks of `order` produce their rows into private buffers, which are then copied into
/// place; the peak is twice the index array, with no second distance pass.
fn collect_rows<F>(nloc: usize, order: &[u32], rcut: f64, row: F) -> (Vec<usize>, Vec<u32>)
where
    F: Fn(usize, &mut Vec<Candidate>) + Sync,
{
    debug_assert_eq!(order.len(), nloc);
    let parts: Vec<(Vec<u32>, Vec<u32>)> = order
        .par_chunks(CHUNK)
        .map(|chunk| {
            let mut scratch = Vec::new();
            let mut buffers = SortBuffers::default();
            let mut counts = Vec::with_capacity(chunk.len());
            let mut data = Vec::new();
            for &i in chunk {
                scratch.clear();
                row(i as usize, &mut scratch);
                finish_row(&mut scratch, i, rcut, &mut buffers);
                counts.push(scratch.len() as u32);
                data.extend(scratch.iter().map(|c| c.1));
            }
            data.shrink_to_fit();
            (counts, data)
        })
        .collect();

    let mut len = vec![0usize; nloc];
    for (chunk, (counts, _)) in order.chunks(CHUNK).zip(&parts) {
        for (&i, &c) in chunk.iter().zip(counts) {
            len[i as usize] = c as usize;
        }
    }
    let mut offsets = Vec::with_capacity(nloc + 1);
    let mut total = 0usize;
    offsets.push(0);
    for &l in &len {
        total += l;
        offsets.push(total);
    }
    drop(len);

    let mut indices = vec![0u32; total];
    let mut slots: Vec<&mut [u32]> = Vec::with_capacity(nloc);
    let mut rest = indices.as_mut_slice();
    for i in 0..nloc {
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(offsets[i + 1] - offsets[i]);
        slots.push(head);
        rest = tail;
    }
    let mut in_order: Vec<&mut [u32]> = order
        .iter()
        .map(|&i| std::mem::take(&mut slots[i as usize]))
        .collect();
    drop(slots);
    in_order
        .par_chunks_mut(CHUNK)
        .zip(parts.into_par_iter())
        .for_each(|(dst, (_, data))| {
            let mut at = 0;
            for d in dst.iter_mut() {
                let n = d.len();
                d.copy_from_slice(&data[at..at + n]);
                at += n;
            }
        });
    drop(in_order);
    (offsets, indices)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundary_distance_is_inclusive_like_deepmd() {
        // DeePMD-kit masks `rr > rcut`, so a neighbour exactly at the cutoff is kept.
        let coords = [[0.0; 3], [1.5, 0.0, 0.0], [0.0, 1.5000000000000002, 0.0]];
        let nl = NeighborList::build(&coords, 1, 1.5).unwrap();
        assert_eq!(nl.neighbors(0), &[1]);
    }

    #[test]
    fn rows_sorted_by_distance_then_index_and_self_excluded() {
        let coords = [
            [0.0; 3],
            [0.0, 0.0, 1.0],
            [1.0, 0.0, 0.0],
            [0.0; 3],
            [0.5, 0.0, 0.0],
        ];
        let nl = NeighborList::build(&coords, 2, 1.2).unwrap();
        assert_eq!(nl.neighbors(0), &[3, 4, 1, 2]);
        // Atom 1 sits 1 Å from the two coincident atoms 0 and 3 and ≈1.118 Å from atom 4.
        assert_eq!(nl.neighbors(1), &[0, 3, 4]);
        assert_eq!(nl.npairs(), 7);
        assert_eq!(nl.max_neighbors(), 4);
    }

    #[test]
    fn rejects_bad_input() {
        let c = [[0.0; 3], [1.0, f64::NAN, 0.0]];
        assert!(matches!(
            NeighborList::build(&c, 1, 1.0),
            Err(NlistError::NonFinite { atom: 1, .. })
        ));
        let c = [[0.0; 3]];
        assert!(matches!(
            NeighborList::build(&c, 2, 1.0),
            Err(NlistError::NlocTooLarge { nloc: 2, nall: 1 })
        ));
        assert!(NeighborList::build(&c, 1, 0.0).is_err());
        assert!(NeighborList::build(&c, 1, f64::INFINITY).is_err());
        let nl = NeighborList::build(&c, 1, 1.0).unwrap();
        assert!(matches!(
            nl.within(&c, 2.0),
            Err(NlistError::CutoffTooLarge { .. })
        ));
        assert!(nl.within(&[], 0.5).is_err());
    }

    #[test]
    fn within_filters_and_resorts() {
        let mut coords = vec![[0.0; 3], [1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 2.5]];
        let nl = NeighborList::build(&coords, 1, 3.0).unwrap();
        assert_eq!(nl.neighbors(0), &[1, 2, 3]);
        coords[3] = [0.0, 0.0, 0.9];
        coords[1] = [2.2, 0.0, 0.0];
        let w = nl.within(&coords, 2.1).unwrap();
        assert_eq!(w.neighbors(0), &[3, 2]);
        assert_eq!(w.rcut(), 2.1);
    }

    #[test]
    fn retain_drops_atoms_everywhere() {
        let coords = [[0.0; 3], [1.0, 0.0, 0.0], [0.0, 0.5, 0.0], [0.0, 0.0, 1.5]];
        let nl = NeighborList::build(&coords, 2, 2.0).unwrap();
        assert_eq!(nl.neighbors(0), &[2, 1, 3]);
        let kept = nl.retain(&[true, false, false, true]).unwrap();
        assert_eq!(kept.neighbors(0), &[3]);
        assert!(kept.neighbors(1).is_empty());
        assert_eq!(kept.npairs(), 1);
        assert!(nl.retain(&[true]).is_err());
    }

    #[test]
    fn empty_inputs() {
        let nl = NeighborList::build(&[], 0, 1.0).unwrap();
        assert_eq!((nl.nloc(), nl.npairs(), nl.max_neighbors()), (0, 0, 0));
        let nl = NeighborList::build(&[[0.0; 3]], 0, 1.0).unwrap();
        assert_eq!(nl.offsets(), &[0]);
    }
}
