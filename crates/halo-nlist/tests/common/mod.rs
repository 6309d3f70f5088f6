//! Shared test helpers: random structures and an O(N²) all-images brute-force search.
#![allow(dead_code)]

use std::collections::BTreeSet;

use halo_core::Cell;
use halo_nlist::{Extended, NeighborList};
use proptest::prelude::*;

/// A pair `(local i, owner of j, lattice shift of j)`.
pub type Pair = (usize, usize, [i32; 3]);

/// A test structure: positions, an optional cell and a cutoff.
#[derive(Debug, Clone)]
pub struct Case {
    pub positions: Vec<[f64; 3]>,
    pub cell: Option<Cell>,
    pub rcut: f64,
}

fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

/// Every pair within `rcut` over all periodic images, by looping over a generous block of
/// shifts: along periodic axis k, `|n_k| <= rcut / d_k + (fractional spread) + 2`.
pub fn brute_force(positions: &[[f64; 3]], cell: Option<&Cell>, rcut: f64) -> BTreeSet<Pair> {
    let mut bound = [0i32; 3];
    if let Some(c) = cell {
        let h = c.matrix();
        let vol = dot(h[0], cross(h[1], h[2])).abs();
        let frac: Vec<[f64; 3]> = positions.iter().map(|&x| c.to_frac(x)).collect();
        for k in 0..3 {
            if !c.pbc()[k] {
                continue;
            }
            let face = vol
                / dot(
                    cross(h[(k + 1) % 3], h[(k + 2) % 3]),
                    cross(h[(k + 1) % 3], h[(k + 2) % 3]),
                )
                .sqrt();
            let lo = frac.iter().map(|s| s[k]).fold(f64::INFINITY, f64::min);
            let hi = frac.iter().map(|s| s[k]).fold(f64::NEG_INFINITY, f64::max);
            bound[k] = (rcut / face + (hi - lo)).ceil() as i32 + 2;
        }
    }
    let mut out = BTreeSet::new();
    for n0 in -bound[0]..=bound[0] {
        for n1 in -bound[1]..=bound[1] {
            for n2 in -bound[2]..=bound[2] {
                let n = [n0, n1, n2];
                let t = cell.map_or([0.0; 3], |c| c.shift(n));
                for (j, xj) in positions.iter().enumerate() {
                    let p = [xj[0] + t[0], xj[1] + t[1], xj[2] + t[2]];
                    for (i, xi) in positions.iter().enumerate() {
                        if i == j && n == [0; 3] {
                            continue;
                        }
                        let d = [p[0] - xi[0], p[1] - xi[1], p[2] - xi[2]];
                        if (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt() <= rcut {
                            out.insert((i, j, n));
                        }
                    }
                }
            }
        }
    }
    out
}

/// The pairs of a list over an extended system, in the brute-force vocabulary.
pub fn pairs_of(ext: &Extended, nl: &NeighborList) -> Vec<Pair> {
    nl.iter()
        .flat_map(|(i, row)| {
            row.iter()
                .map(move |&e| (i, ext.mapping[e as usize], ext.shifts[e as usize]))
        })
        .collect()
}

/// A random cell: diagonal in `diag`, all six off-diagonal entries in `±skew` (so strongly
/// skewed and often thinner than the cutoff), random periodicity, right-handed and with every
/// face distance at least `min_face`.
pub fn cell_strategy(
    diag: std::ops::Range<f64>,
    skew: f64,
    min_face: f64,
) -> impl Strategy<Value = Cell> {
    (
        prop::array::uniform3(diag),
        prop::array::uniform6(-skew..=skew),
        prop::array::uniform3(any::<bool>()),
    )
        .prop_filter_map("degenerate cell", move |(d, o, pbc)| {
            let h = [[d[0], o[0], o[1]], [o[2], d[1], o[3]], [o[4], o[5], d[2]]];
            let cell = Cell::new(h, pbc).ok()?;
            (cell.face_distances().iter().all(|&f| f >= min_face)).then_some(cell)
        })
}

/// Positions given in fractional coordinates of `cell` (spread beyond `[0, 1)`).
pub fn frac_positions(n: std::ops::Range<usize>) -> impl Strategy<Value = Vec<[f64; 3]>> {
    prop::collection::vec(prop::array::uniform3(-0.4..1.4f64), n)
}

/// Small structures in thin, skewed cells (cutoff up to 4× the thinnest face), or no cell.
pub fn small_case() -> impl Strategy<Value = Case> {
    (
        prop::option::weighted(0.85, cell_strategy(1.0..6.0, 5.0, 0.6)),
        frac_positions(1..10),
        0.3..3.0f64,
    )
        .prop_map(|(cell, frac, rcut)| {
            let positions = match &cell {
                Some(c) => frac.iter().map(|&s| c.to_cart(s)).collect(),
                None => frac.iter().map(|s| s.map(|v| v * 5.0)).collect(),
            };
            Case {
                positions,
                cell,
                rcut,
            }
        })
}

/// Larger structures that span many bins of the cell list.
pub fn large_case() -> impl Strategy<Value = Case> {
    (
        prop::option::weighted(0.85, cell_strategy(8.0..14.0, 5.0, 4.0)),
        frac_positions(40..160),
        0.8..4.0f64,
    )
        .prop_map(|(cell, frac, rcut)| {
            let positions = match &cell {
                Some(c) => frac.iter().map(|&s| c.to_cart(s)).collect(),
                None => frac.iter().map(|s| s.map(|v| v * 12.0)).collect(),
            };
            Case {
                positions,
                cell,
                rcut,
            }
        })
}

/// A deterministic jittered simple-cubic lattice of `side³` atoms at `spacing` in a
/// slightly triclinic periodic cell, in a scrambled atom order.
pub fn jittered_lattice(side: usize, spacing: f64, seed: u64) -> (Vec<[f64; 3]>, Cell) {
    let l = side as f64 * spacing;
    let cell =
        Cell::periodic([[l, 0.0, 0.0], [0.1 * l, l, 0.0], [-0.05 * l, 0.07 * l, l]]).unwrap();
    let mut state = seed;
    let mut next = move || {
        // splitmix64
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut pos = Vec::with_capacity(side * side * side);
    for a in 0..side {
        for b in 0..side {
            for c in 0..side {
                let s = [a, b, c].map(|v| (v as f64 + 0.5) / side as f64);
                let x = cell.to_cart(s);
                pos.push(x.map(|v| v + (next() - 0.5) * 0.6 * spacing));
            }
        }
    }
    for i in (1..pos.len()).rev() {
        let j = (next() * (i + 1) as f64) as usize;
        pos.swap(i, j.min(i));
    }
    (pos, cell)
}
