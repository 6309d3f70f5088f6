//! The cell list: points binned on a regular grid over their axis-aligned bounding box.
//!
//! Bins are laid out x-fastest, so the bins of one (y, z) row that a sphere touches are
//! contiguous in the sorted point arrays and a query visits at most one range per row. Per
//! row the x extent is cut to the sphere's chord, and rows whose (y, z) slab misses the sphere
//! are skipped, so the examined volume stays within a few times the sphere's.

use halo_core::Vec3;

/// Points sorted into bins; queries enumerate contiguous index ranges of candidates.
#[derive(Debug, Clone)]
pub(crate) struct Grid {
    lo: Vec3,
    width: Vec3,
    inv_width: Vec3,
    dims: [usize; 3],
    /// `start[b]..start[b + 1]` are the sorted slots of bin `b`.
    start: Vec<u32>,
    /// Original index of the point in each sorted slot.
    pub idx: Vec<u32>,
    /// Coordinates of the point in each sorted slot, one array per axis (a copy, for locality
    /// and so the distance kernel vectorises).
    pub xyz: [Vec<f64>; 3],
    /// Absolute slack that makes range and gap computations conservative under rounding.
    eps: f64,
}

impl Grid {
    /// Bins `points` with bins at least `width` wide, using at most about `max_bins` bins
    /// (wider bins where the bounding box is sparse). Points must be finite.
    pub fn new(points: &[Vec3], width: f64, max_bins: usize) -> Grid {
        let (lo, hi) = bounding_box(points);
        let extent = [hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]];
        let max_bins = max_bins.max(1) as f64;
        let mut target = width;
        let dims = loop {
            let dims = extent.map(|e| (e / target).floor().clamp(1.0, 1e9));
            let total = dims[0] * dims[1] * dims[2];
            if total <= max_bins {
                break dims.map(|d| d as usize);
            }
            // Grow the bins just enough; the loop ends once every axis has one bin.
            target *= (total / max_bins).cbrt().max(1.0 + 1e-6);
        };
        let mut widths = [0.0; 3];
        for k in 0..3 {
            widths[k] = if extent[k] > 0.0 {
                extent[k] / dims[k] as f64
            } else {
                width
            };
        }
        let scale = lo
            .iter()
            .chain(hi.iter())
            .fold(0.0f64, |m, x| m.max(x.abs()));
        let mut grid = Grid {
            lo,
            width: widths,
            inv_width: widths.map(|w| 1.0 / w),
            dims,
            start: Vec::new(),
            idx: Vec::new(),
            xyz: [Vec::new(), Vec::new(), Vec::new()],
            eps: 1e-10 * (1.0 + scale + width),
        };
        grid.fill(points);
        grid
    }

    /// Counting sort of the points into their bins; stable, so a bin lists its points in
    /// index order.
    fn fill(&mut self, points: &[Vec3]) {
        let nbins = self.dims[0] * self.dims[1] * self.dims[2];
        let bins: Vec<u32> = points.iter().map(|&p| self.bin_of(p) as u32).collect();
        let mut start = vec![0u32; nbins + 1];
        for &b in &bins {
            start[b as usize + 1] += 1;
        }
        for b in 0..nbins {
            start[b + 1] += start[b];
        }
        let mut next: Vec<u32> = start[..nbins].to_vec();
        let mut idx = vec![0u32; points.len()];
        let mut xyz = [
            vec![0.0; points.len()],
            vec![0.0; points.len()],
            vec![0.0; points.len()],
        ];
        for (i, (&b, &p)) in bins.iter().zip(points).enumerate() {
            let slot = &mut next[b as usize];
            let at = *slot as usize;
            idx[at] = i as u32;
            for k in 0..3 {
                xyz[k][at] = p[k];
            }
            *slot += 1;
        }
        self.start = start;
        self.idx = idx;
        self.xyz = xyz;
    }

    fn bin_of(&self, p: Vec3) -> usize {
        let mut c = [0usize; 3];
        for k in 0..3 {
            // Non-negative inside the bounding box; the cast saturates and truncates.
            let f = (p[k] - self.lo[k]) * self.inv_width[k];
            c[k] = (f as usize).min(self.dims[k] - 1);
        }
        c[0] + self.dims[0] * (c[1] + self.dims[1] * c[2])
    }

    /// Bin range `[a, b]` along axis `k` touched by `[x - r, x + r]`, or `None` if outside.
    #[inline]
    fn span(&self, x: f64, r: f64, k: usize) -> Option<(usize, usize)> {
        // Casts truncate like `floor` for the non-negative values they see here, without a
        // libm call on targets lacking a rounding instruction.
        let a = (x - r - self.lo[k]) * self.inv_width[k];
        let b = (x + r - self.lo[k]) * self.inv_width[k];
        if b < 0.0 || a >= self.dims[k] as f64 {
            None
        } else {
            Some((a.max(0.0) as usize, (b as usize).min(self.dims[k] - 1)))
        }
    }

    /// A lower bound on the distance along axis `k` from `x` to the points of bin `b`.
    #[inline]
    fn gap(&self, x: f64, b: usize, k: usize) -> f64 {
        let left = self.lo[k] + b as f64 * self.width[k];
        let right = left + self.width[k];
        let g = if x < left {
            left - x
        } else if x > right {
            x - right
        } else {
            0.0
        };
        (g - self.eps).max(0.0)
    }

    /// Calls `visit(start, end)` for every range of sorted slots that may hold a point within
    /// distance `r` of `q` (a superset; callers test distances exactly). Stops early when
    /// `visit` returns `false`.
    #[inline]
    pub fn for_each_range(&self, q: Vec3, r: f64, mut visit: impl FnMut(usize, usize) -> bool) {
        let r = r + self.eps;
        let r2 = r * r;
        let Some((z0, z1)) = self.span(q[2], r, 2) else {
            return;
        };
        for bz in z0..=z1 {
            let gz = self.gap(q[2], bz, 2);
            let rem_z = r2 - gz * gz;
            if rem_z < 0.0 {
                continue;
            }
            let Some((y0, y1)) = self.span(q[1], rem_z.sqrt(), 1) else {
                continue;
            };
            for by in y0..=y1 {
                let gy = self.gap(q[1], by, 1);
                let rem = rem_z - gy * gy;
                if rem < 0.0 {
                    continue;
                }
                let Some((x0, x1)) = self.span(q[0], rem.sqrt(), 0) else {
                    continue;
                };
                let row = self.dims[0] * (by + self.dims[1] * bz);
                let s = self.start[row + x0] as usize;
                let e = self.start[row + x1 + 1] as usize;
                if s < e && !visit(s, e) {
                    return;
                }
            }
        }
    }
}

/// Component-wise minimum and maximum; the origin for an empty set.
fn bounding_box(points: &[Vec3]) -> (Vec3, Vec3) {
    if points.is_empty() {
        return ([0.0; 3], [0.0; 3]);
    }
    let mut lo = [f64::INFINITY; 3];
    let mut hi = [f64::NEG_INFINITY; 3];
    for p in points {
        for k in 0..3 {
            lo[k] = lo[k].min(p[k]);
            hi[k] = hi[k].max(p[k]);
        }
    }
    (lo, hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidates(g: &Grid, q: Vec3, r: f64) -> Vec<u32> {
        let mut out = Vec::new();
        g.for_each_range(q, r, |s, e| {
            out.extend_from_slice(&g.idx[s..e]);
            true
        });
        out.sort_unstable();
        out
    }

    #[test]
    fn queries_cover_all_points_within_radius() {
        // A deterministic scatter over an elongated box, with a point far off the grid.
        let mut pts: Vec<Vec3> = (0..500)
            .map(|i| {
                let t = i as f64;
                [
                    (t * 0.731).sin() * 20.0,
                    (t * 1.37).cos() * 3.0,
                    (t * 0.17).sin() * 9.0,
                ]
            })
            .collect();
        pts.push([1e4, 0.0, 0.0]);
        for (width, max_bins) in [(1.0, 10_000), (0.5, 50), (3.0, 1)] {
            let g = Grid::new(&pts, width, max_bins);
            assert!(g.dims.iter().product::<usize>() <= max_bins.max(1));
            for (qi, q) in pts.iter().enumerate().step_by(7) {
                let r = 0.5 + (qi % 5) as f64;
                let got = candidates(&g, *q, r);
                for (j, p) in pts.iter().enumerate() {
                    let d2: f64 = (0..3).map(|k| (p[k] - q[k]).powi(2)).sum();
                    if d2.sqrt() <= r {
                        assert!(
                            got.binary_search(&(j as u32)).is_ok(),
                            "missed {j} from {qi}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn query_outside_the_box_finds_nothing_far_away() {
        let pts = vec![[0.0; 3], [1.0, 1.0, 1.0]];
        let g = Grid::new(&pts, 0.5, 100);
        assert!(candidates(&g, [10.0, 0.0, 0.0], 2.0).is_empty());
        assert_eq!(candidates(&g, [-1.0, 0.0, 0.0], 1.0), vec![0]);
    }
}
