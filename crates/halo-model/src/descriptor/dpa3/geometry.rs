//! The DPA3 graph of one frame: real edges (centre i, neighbour slot s → extended atom j) and,
//! per centre, its angle edges; the environment-matrix quantities of every edge and their
//! exact backward (`dpmodel/utils/env_mat.py`, `DescrptBlockRepflows.call`).
//!
//! Only real entries are kept: padded slots, neighbours outside the model (type −1), excluded
//! type pairs and virtual centres produce no edge, exactly the entries DeePMD-kit masks out.
//! Slot numbers are kept because the normalisation `davg/dstd[t_i, slot]` is per slot.

use super::config::Opts;
use super::util::{chunk_bounds, split_rows, CHUNK};
use crate::Real;
use rayon::prelude::*;

/// Environment quantities of one edge, in the descriptor precision.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Geo<T> {
    /// `r_j − r_i` formed from coordinates already cast to `T`.
    pub d: [T; 3],
    /// `|d|`.
    pub r: T,
    /// Edge switch `sw(r)` (e_rcut_smth, e_rcut).
    pub sw: T,
    /// Normalised `sw·d/(r+p)²` rows (`h2`).
    pub h2: [T; 3],
    /// Edge-embedding input: normalised `sw/(r+p)`, or `r` with `edge_init_use_dist`.
    pub ein: T,
    /// Angle switch (a_rcut_smth, a_rcut); 0 for edges outside the angle set.
    pub asw: T,
}

/// Gradient of a scalar w.r.t. the per-edge environment quantities.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct GeoGrad<T> {
    pub ein: T,
    pub h2: [T; 3],
    pub sw: T,
    pub asw: T,
    /// w.r.t. the unit vector `u = d/(r + 1e-6)` of an angle edge.
    pub u: [T; 3],
}

/// Graph topology and geometry of one frame.
#[derive(Debug, Clone)]
pub(crate) struct Graph<T> {
    pub nloc: usize,
    pub nall: usize,
    /// Edges of centre i are `edge_off[i]..edge_off[i+1]`, in slot order.
    pub edge_off: Vec<usize>,
    /// Angle edges of centre i are `aidx[ang_off[i]..ang_off[i+1]]` (centre-local edge numbers).
    pub ang_off: Vec<usize>,
    /// Angle pairs (j, k) of centre i are rows `pair_off[i]..pair_off[i+1]` (j-major).
    pub pair_off: Vec<usize>,
    pub edge_j: Vec<u32>,
    pub edge_i: Vec<u32>,
    pub edge_slot: Vec<u32>,
    /// Model type of each centre (0 for virtual centres, which have no edges).
    pub centre_type: Vec<u32>,
    pub geo: Vec<Geo<T>>,
    pub aidx: Vec<u32>,
    /// Edges pointing at extended atom t: `rev_edge[rev_off[t]..rev_off[t+1]]`, ascending.
    pub rev_off: Vec<usize>,
    pub rev_edge: Vec<u32>,
    pub max_ne: usize,
    pub max_na: usize,
}

impl<T> Graph<T> {
    /// Heap bytes held.
    pub fn bytes(&self) -> usize {
        let us = std::mem::size_of::<usize>();
        (self.edge_off.len() + self.ang_off.len() + self.pair_off.len() + self.rev_off.len()) * us
            + (self.edge_j.len()
                + self.edge_i.len()
                + self.edge_slot.len()
                + self.centre_type.len()
                + self.aidx.len()
                + self.rev_edge.len())
                * 4
            + self.geo.len() * std::mem::size_of::<Geo<T>>()
    }
}

/// The smooth switch and its derivative in `r`, in `T` as DeePMD evaluates it.
#[inline]
pub(crate) fn switch<T: Real>(r: T, rs: f64, rc: f64, exp: bool) -> (T, T) {
    if exp {
        // compute_exp_sw: exp(-exp(a (clip(r, 0, rc) - rs))), a = 20/rs.
        let (d, inside) = if r < T::zero() {
            (T::zero(), false)
        } else if r > T::of(rc) {
            (T::of(rc), false)
        } else {
            (r, true)
        };
        let a = T::of(20.0 / rs);
        let inner = (a * (d - T::of(rs))).exp();
        let sw = (-inner).exp();
        let dsw = if inside { -sw * inner * a } else { T::zero() };
        (sw, dsw)
    } else {
        // compute_smooth_weight: u = (clip(r, rs, rc) - rs)/(rc - rs); u³(-6u² + 15u - 10) + 1.
        let (d, inside) = if r < T::of(rs) {
            (T::of(rs), false)
        } else if r > T::of(rc) {
            (T::of(rc), false)
        } else {
            (r, true)
        };
        let u = (d - T::of(rs)) / T::of(rc - rs);
        let u2 = u * u;
        let sw = u2 * u * (T::of(-6.0) * u2 + T::of(15.0) * u - T::of(10.0)) + T::one();
        let dsw = if inside {
            let um1 = u - T::one();
            T::of(-30.0) * u2 * um1 * um1 / T::of(rc - rs)
        } else {
            T::zero()
        };
        (sw, dsw)
    }
}

/// Normalisation statistics of one slot row: `davg`/`dstd` `[t, slot, 0..4]`.
#[inline]
fn stats<'a, T>(v: &'a [T], o: &Opts, t: usize, slot: usize) -> &'a [T] {
    let k = (t * o.e_sel + slot) * 4;
    &v[k..k + 4]
}

/// Whether slot `s` of centre `i` is a real edge, and its neighbour.
#[inline]
fn real_neighbour(o: &Opts, types: &[i32], ti: i32, nlist_row: &[i32], s: usize) -> Option<usize> {
    let j = nlist_row[s];
    if j < 0 || ti < 0 {
        return None;
    }
    let j = j as usize;
    let tj = types[j];
    if tj < 0 || o.exclude[ti as usize * o.ntypes + tj as usize] {
        return None;
    }
    Some(j)
}

#[inline]
fn diff<T: Real>(c: &[[T; 3]], i: usize, j: usize) -> [T; 3] {
    [c[j][0] - c[i][0], c[j][1] - c[i][1], c[j][2] - c[i][2]]
}

#[inline]
fn norm<T: Real>(d: &[T; 3]) -> T {
    (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt()
}

/// Builds the graph. `coords` are the extended coordinates already cast to `T`; `nlist` is
/// `nloc × e_sel` (validated by the caller: indices `< nall`).
pub(crate) fn build<T: Real>(
    o: &Opts,
    davg: &[T],
    dstd: &[T],
    coords: &[[T; 3]],
    types: &[i32],
    nloc: usize,
    nlist: &[i32],
) -> Graph<T> {
    let nall = coords.len();
    let e_sel = o.e_sel;
    // Pass 1: per-centre counts of edges and angle edges.
    let mut counts = vec![(0usize, 0usize); nloc];
    counts
        .par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(c, out)| {
            for (k, cnt) in out.iter_mut().enumerate() {
                let i = c * CHUNK + k;
                let row = &nlist[i * e_sel..(i + 1) * e_sel];
                let (mut ne, mut na) = (0, 0);
                for s in 0..e_sel {
                    if let Some(j) = real_neighbour(o, types, types[i], row, s) {
                        ne += 1;
                        if o.update_angle
                            && s < o.a_sel
                            && norm(&diff(coords, i, j)) < T::of(o.a_rcut)
                        {
                            na += 1;
                        }
                    }
                }
                *cnt = (ne, na);
            }
        });
    let mut edge_off = vec![0usize; nloc + 1];
    let mut ang_off = vec![0usize; nloc + 1];
    let mut pair_off = vec![0usize; nloc + 1];
    let (mut max_ne, mut max_na) = (0, 0);
    for (i, &(ne, na)) in counts.iter().enumerate() {
        edge_off[i + 1] = edge_off[i] + ne;
        ang_off[i + 1] = ang_off[i] + na;
        pair_off[i + 1] = pair_off[i] + na * na;
        max_ne = max_ne.max(ne);
        max_na = max_na.max(na);
    }
    let n_edges = edge_off[nloc];
    let mut edge_j = vec![0u32; n_edges];
    let mut edge_i = vec![0u32; n_edges];
    let mut edge_slot = vec![0u32; n_edges];
    let mut geo = vec![Geo::<T>::default(); n_edges];
    let mut aidx = vec![0u32; ang_off[nloc]];

    // Pass 2: fill, chunk by chunk (each chunk owns a contiguous range of edges).
    let eb = chunk_bounds(&edge_off);
    let ab = chunk_bounds(&ang_off);
    let pieces = split_rows(&mut edge_j, &eb, 1)
        .into_iter()
        .zip(split_rows(&mut edge_i, &eb, 1))
        .zip(split_rows(&mut edge_slot, &eb, 1))
        .zip(split_rows(&mut geo, &eb, 1))
        .zip(split_rows(&mut aidx, &ab, 1))
        .collect::<Vec<_>>();
    let p = T::of(o.protection);
    pieces
        .into_par_iter()
        .enumerate()
        .for_each(|(c, ((((ej, ei), es), eg), ax))| {
            let (mut e, mut a) = (0usize, 0usize);
            let i0 = c * CHUNK;
            let i1 = (i0 + CHUNK).min(nloc);
            for i in i0..i1 {
                let row = &nlist[i * e_sel..(i + 1) * e_sel];
                let ti = types[i];
                let mut local = 0u32;
                for s in 0..e_sel {
                    let Some(j) = real_neighbour(o, types, ti, row, s) else {
                        continue;
                    };
                    let d = diff(coords, i, j);
                    let r = norm(&d);
                    let (sw, _) = switch(r, o.e_rcut_smth, o.e_rcut, o.exp_switch);
                    let st_avg = stats(davg, o, ti as usize, s);
                    let st_std = stats(dstd, o, ti as usize, s);
                    let rp = r + p;
                    let t0 = T::one() / rp;
                    let rp2 = rp * rp;
                    let mut h2 = [T::zero(); 3];
                    for x in 0..3 {
                        h2[x] = ((d[x] / rp2) * sw - st_avg[x + 1]) / st_std[x + 1];
                    }
                    let ein = if o.edge_init_use_dist {
                        r
                    } else {
                        (t0 * sw - st_avg[0]) / st_std[0]
                    };
                    let in_angle = o.update_angle && s < o.a_sel && r < T::of(o.a_rcut);
                    let asw = if in_angle {
                        switch(r, o.a_rcut_smth, o.a_rcut, o.exp_switch).0
                    } else {
                        T::zero()
                    };
                    ej[e] = j as u32;
                    ei[e] = i as u32;
                    es[e] = s as u32;
                    eg[e] = Geo {
                        d,
                        r,
                        sw,
                        h2,
                        ein,
                        asw,
                    };
                    if in_angle {
                        ax[a] = local;
                        a += 1;
                    }
                    e += 1;
                    local += 1;
                }
            }
        });

    // Reverse list by counting sort (ascending edge ids per target).
    let mut rev_off = vec![0usize; nall + 1];
    for &j in &edge_j {
        rev_off[j as usize + 1] += 1;
    }
    for t in 0..nall {
        rev_off[t + 1] += rev_off[t];
    }
    let mut fill = rev_off.clone();
    let mut rev_edge = vec![0u32; n_edges];
    for (e, &j) in edge_j.iter().enumerate() {
        rev_edge[fill[j as usize]] = e as u32;
        fill[j as usize] += 1;
    }
    Graph {
        nloc,
        nall,
        edge_off,
        ang_off,
        pair_off,
        edge_j,
        edge_i,
        edge_slot,
        centre_type: types[..nloc].iter().map(|&t| t.max(0) as u32).collect(),
        geo,
        aidx,
        rev_off,
        rev_edge,
        max_ne,
        max_na,
    }
}

/// Unit vectors `d/(|d| + 1e-6)` of a centre's angle edges, into `u` (`na × 3`).
#[inline(always)]
pub(crate) fn unit_vectors<T: Real>(geo: &[Geo<T>], aidx: &[u32], u: &mut [[T; 3]]) {
    let eps = T::of(1e-6);
    for (k, &e) in aidx.iter().enumerate() {
        let g = &geo[e as usize];
        let den = g.r + eps;
        u[k] = [g.d[0] / den, g.d[1] / den, g.d[2] / den];
    }
}

/// `angle_input[j][k] = (u_j·u_k)(1 − 1e-6)/√π` for all angle pairs (j-major), into `cos`.
#[inline(always)]
pub(crate) fn angle_inputs<T: Real>(u: &[[T; 3]], cos: &mut [T]) {
    let na = u.len();
    let c = T::of(1.0 - 1e-6);
    let sp = T::of(std::f64::consts::PI.sqrt());
    for j in 0..na {
        for k in 0..na {
            let dot = u[j][0] * u[k][0] + u[j][1] * u[k][1] + u[j][2] * u[k][2];
            cos[j * na + k] = (dot * c) / sp;
        }
    }
}

/// Backward of [`angle_inputs`]: `gcos` (na × na) into `GeoGrad::u` of the angle edges.
#[inline(always)]
pub(crate) fn angle_inputs_backward<T: Real>(
    u: &[[T; 3]],
    gcos: &[T],
    aidx: &[u32],
    gg: &mut [GeoGrad<T>],
) {
    let na = u.len();
    let c = T::of(1.0 - 1e-6) / T::of(std::f64::consts::PI.sqrt());
    for j in 0..na {
        let mut acc = [T::zero(); 3];
        for k in 0..na {
            // d(u_j·u_k) reaches u_j from both (j,k) and (k,j); j = k counts twice, as it should.
            let g = (gcos[j * na + k] + gcos[k * na + j]) * c;
            for x in 0..3 {
                acc[x] += g * u[k][x];
            }
        }
        let t = &mut gg[aidx[j] as usize].u;
        for x in 0..3 {
            t[x] += acc[x];
        }
    }
}

/// Chain rule from the environment quantities of one edge to `∂/∂d` (`d = r_j − r_i`).
pub(crate) fn edge_backward<T: Real>(
    o: &Opts,
    g: &Geo<T>,
    gg: &GeoGrad<T>,
    st_avg: &[T],
    st_std: &[T],
) -> [T; 3] {
    let _ = st_avg;
    let p = T::of(o.protection);
    let (sw, dsw) = switch(g.r, o.e_rcut_smth, o.e_rcut, o.exp_switch);
    let rp = g.r + p;
    let rp2 = rp * rp;
    let mut g_sw = gg.sw;
    let mut g_r = T::zero();
    let mut g_d = [T::zero(); 3];
    // ein
    if o.edge_init_use_dist {
        g_r += gg.ein;
    } else {
        let gq = gg.ein / st_std[0];
        let t0 = T::one() / rp;
        g_sw += gq * t0;
        g_r -= gq * sw / rp2;
    }
    // h2_x = (d_x/rp² · sw − avg)/std
    for x in 0..3 {
        let gq = gg.h2[x] / st_std[x + 1];
        g_sw += gq * g.d[x] / rp2;
        let gt = gq * sw;
        g_d[x] += gt / rp2;
        g_r -= T::of(2.0) * gt * g.d[x] / (rp2 * rp);
    }
    g_r += g_sw * dsw;
    if gg.asw != T::zero() {
        let (_, dasw) = switch(g.r, o.a_rcut_smth, o.a_rcut, o.exp_switch);
        g_r += gg.asw * dasw;
    }
    // u = d/(r + ε)
    if gg.u != [T::zero(); 3] {
        let den = g.r + T::of(1e-6);
        let gu_d = gg.u[0] * g.d[0] + gg.u[1] * g.d[1] + gg.u[2] * g.d[2];
        for x in 0..3 {
            g_d[x] += gg.u[x] / den;
        }
        g_r -= gu_d / (den * den);
    }
    for x in 0..3 {
        g_d[x] += g_r * g.d[x] / g.r;
    }
    g_d
}

/// `davg`/`dstd` rows of an edge.
pub(crate) fn edge_stats<'a, T>(
    o: &Opts,
    davg: &'a [T],
    dstd: &'a [T],
    ti: usize,
    slot: usize,
) -> (&'a [T], &'a [T]) {
    (stats(davg, o, ti, slot), stats(dstd, o, ti, slot))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switch_derivatives_match_finite_differences() {
        for exp in [false, true] {
            for i in 0..200 {
                let r = 0.05 + i as f64 * 0.031;
                let h = 1e-6;
                let (_, d) = switch(r, 3.5, 5.0, exp);
                let fd =
                    (switch(r + h, 3.5, 5.0, exp).0 - switch(r - h, 3.5, 5.0, exp).0) / (2.0 * h);
                assert!((fd - d).abs() < 1e-7, "exp={exp} r={r}: {fd} vs {d}");
            }
        }
        // Polynomial switch: 1 inside rs, 0 beyond rc.
        assert_eq!(switch(1.0f64, 3.5, 5.0, false).0, 1.0);
        assert_eq!(switch(5.5f64, 3.5, 5.0, false).0, 0.0);
    }
}
