//! A seeded liquid-density test system shared by the benchmark and the memory example.

use halo_core::Cell;

/// Number density of the test liquid (atoms/Å³), that of the atoms of liquid water:
/// ≈ 89 neighbours within 6 Å.
pub const DENSITY: f64 = 0.1;

/// Exactly `n` atoms at [`DENSITY`]: a jittered simple-cubic lattice on the most cube-like
/// `a × b × c = n` grid, in a periodic orthorhombic cell, atom order scrambled (as after a
/// long MD run) so that memory order carries no spatial locality.
pub fn liquid(n: usize, seed: u64) -> (Vec<[f64; 3]>, Cell) {
    let dims = cube_like_factors(n);
    let a = (1.0 / DENSITY).cbrt();
    let cell = Cell::orthorhombic(dims[0] as f64 * a, dims[1] as f64 * a, dims[2] as f64 * a)
        .expect("positive lengths");
    let mut state = seed;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut pos = Vec::with_capacity(n);
    for i in 0..dims[0] {
        for j in 0..dims[1] {
            for k in 0..dims[2] {
                pos.push([i, j, k].map(|v| (v as f64 + 0.2 + 0.6 * next()) * a));
            }
        }
    }
    for i in (1..pos.len()).rev() {
        let j = ((next() * (i + 1) as f64) as usize).min(i);
        pos.swap(i, j);
    }
    (pos, cell)
}

/// `[a, b, c]` with `a·b·c = n` and the smallest `max/min`.
fn cube_like_factors(n: usize) -> [usize; 3] {
    let mut best = [1, 1, n];
    for a in 1..=n {
        if a * a * a > n {
            break;
        }
        if !n.is_multiple_of(a) {
            continue;
        }
        let m = n / a;
        for b in a..=m {
            if b * b > m {
                break;
            }
            if m.is_multiple_of(b) {
                let c = m / b;
                if c * best[0] < best[2] * a {
                    best = [a, b, c];
                }
            }
        }
    }
    best
}
