//! One RepFlow layer for a chunk of centre atoms: forward, and backward with an in-place
//! recomputation of the layer's per-atom intermediates (`RepFlowLayer.call`, parallel and
//! sequential modes).
//!
//! Work is per centre atom i, over its real edges (rows of `ne × ·` blocks) and its real angle
//! pairs (rows of `na² × ·` blocks, j-major, the diagonal included); every concatenated linear
//! layer of DeePMD is applied as a sum of per-block products (`optim_update`), so node terms are
//! computed once per atom and neighbour terms once per extended atom (`P = n_ext · W_j`).

use super::config::{Affine, AngleW, Compress, LayerW, Opts, Parsed};
use super::fused::{self, PairBwd, PairBwdOut, PairFwd, PairFwdOut};
use super::geometry::{self, Geo, GeoGrad, Graph};
use super::util::{
    activate, add2_before, add_around, add_assign, axpy, fill_rows, split_rows, stream_copy, vdot,
    ABuf, CHUNK,
};
use crate::isa::multiversion;
use crate::linalg::{matmul, Op};
use crate::Real;
use std::sync::Mutex;

/// Read-only data of one layer evaluation.
pub(crate) struct LayerCtx<'a, T> {
    pub o: &'a Opts,
    pub lw: &'a LayerW<T>,
    pub par: &'a Parsed<T>,
    pub g: &'a Graph<T>,
    /// Node embedding of all extended atoms, `nall × n_dim` (ghost rows filled).
    pub node: &'a [T],
    /// `node · W_j` for all extended atoms, `nall × (H·n_dim + e_dim)`.
    pub pm: &'a [T],
    /// Layer input edges, `n_edges × e_dim`; `None` for layer 0 (built from geometry).
    pub e_in: Option<&'a [T]>,
    /// Layer input angles, `n_pairs × a_dim`; `None` for layer 0.
    pub a_in: Option<&'a [T]>,
    /// Whether the layer's edge (and angle) outputs are used. Not in the last layer of the
    /// parallel update: its node update reads only the input edges, so the edge-self and
    /// angle blocks are dead there.
    pub edge_update: bool,
    /// Layer 0's angle products as outer products (see [`A0Proj`]).
    pub a0: Option<A0Proj<T>>,
    /// Whether the layer's save keeps its angle pairs (then the backward's recomputation
    /// skips everything that only feeds them).
    pub pairs_kept: bool,
    /// Whether the layer's save keeps its edge-level intermediates (φ' of the edge self MLP,
    /// the node–edge message and its φ'); then the backward recomputes no edge MLP.
    pub edges_kept: bool,
}

impl<'a, T: Real> LayerCtx<'a, T> {
    /// Context of layer `l`; `e_in`/`a_in` are the stored inputs of layers ≥ 1.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        o: &'a Opts,
        par: &'a Parsed<T>,
        l: usize,
        g: &'a Graph<T>,
        node: &'a [T],
        pm: &'a [T],
        e_in: Option<&'a [T]>,
        a_in: Option<&'a [T]>,
    ) -> Self {
        let lw = &par.layers[l];
        let a0 = match (&lw.angle, l) {
            (Some(aw), 0) => Some(A0Proj::new(o, &par.angle_embd, aw)),
            _ => None,
        };
        LayerCtx {
            o,
            lw,
            par,
            g,
            node,
            pm,
            e_in,
            a_in,
            edge_update: o.edge_update(l),
            a0,
            pairs_kept: false,
            edges_kept: false,
        }
    }
}

/// Layer 0's angle input is rank one per pair, `a⁰ = cos·w + b`, so its products with the
/// angle weights are outer products: `a⁰·W = cos ⊗ (w·W) + b·W`, and in the backward
/// `(g·Wᵀ)·w = g·(w·W)`. This removes the layer's `n_pairs × a_dim × (a_dim + e_dim)`
/// products in the forward, the recomputation and the backward.
pub(crate) struct A0Proj<T> {
    /// `w·W1a` and `b·W1a` (`e_dim`).
    v1: Vec<T>,
    c1: Vec<T>,
    /// `w·W2a` and `b·W2a` (`a_dim`).
    v2: Vec<T>,
    c2: Vec<T>,
    /// `[v1 | v2]` and `[c1 | c2]` packed for the fused pair kernel.
    v12: Vec<T>,
    c12: Vec<T>,
}

impl<T: Real> A0Proj<T> {
    fn new(o: &Opts, ae: &Affine<T>, aw: &AngleW<T>) -> Self {
        let (ed, ad) = (o.e_dim, o.a_dim);
        let zero = vec![T::zero(); ad];
        let b = ae.b.as_deref().unwrap_or(&zero);
        let proj = |x: &[T], wm: &[T], width: usize| {
            let mut v = vec![T::zero(); width];
            matmul(1, width, ad, x, Op::N, wm, Op::N, &mut v, T::zero());
            v
        };
        let (v1, c1) = (proj(&ae.w, &aw.w1a, ed), proj(b, &aw.w1a, ed));
        let (v2, c2) = (proj(&ae.w, &aw.w2a, ad), proj(b, &aw.w2a, ad));
        A0Proj {
            v12: fused::pack_cols(&v1, ed, &v2, ad),
            c12: fused::pack_cols(&c1, ed, &c2, ad),
            v1,
            c1,
            v2,
            c2,
        }
    }
}

/// `out[r, c] = x[r]·w[c] (+ b[c])` for the rows of `out` (width `w.len()`).
#[inline(always)]
fn affine_rows<T: Real>(x: impl Iterator<Item = T>, w: &[T], b: Option<&[T]>, out: &mut [T]) {
    for (row, xr) in out.chunks_exact_mut(w.len()).zip(x) {
        match b {
            Some(b) => {
                for ((d, &wc), &bc) in row.iter_mut().zip(w).zip(b) {
                    *d = xr * wc + bc;
                }
            }
            None => {
                for (d, &wc) in row.iter_mut().zip(w) {
                    *d = xr * wc + T::zero();
                }
            }
        }
    }
}

/// Per-atom values a layer's forward saves for its backward (`nloc` rows each).
#[derive(Debug, Clone, Default)]
pub(crate) struct LayerSave<T> {
    /// φ' of the node self MLP, `nloc × n_dim`.
    pub dact1: Vec<T>,
    /// φ' of the symmetrisation MLP, `nloc × n_dim`.
    pub dact2: Vec<T>,
    /// `n_i · W_i + b`, `nloc × (H·n_dim + e_dim)`.
    pub q: Vec<T>,
    /// `nA_i · W_n + b` of the angle MLPs, `nloc × (e_dim + a_dim)`.
    pub qa: Vec<T>,
    /// `hg` = `[Σ h2ᵀ e sw; Σ h2ᵀ n_j sw]/√Ne`, `nloc × 3(e_dim + n_dim)`.
    pub hg: Vec<T>,
    /// φ' of the angle → edge MLP, `n_edges × e_dim` (empty when the layer has no angle
    /// block or its edge outputs are unused); keeping it lets the backward recompute the
    /// angle pairs block by block.
    pub z4d: Vec<T>,
    /// That MLP's output, kept in sequential mode only (the node message reads the
    /// updated edges there).
    pub z4: Vec<T>,
    /// The angle pairs' `p1`, φ'(p1) and φ'(p2), `n_pairs × e_dim/e_dim/a_dim`, when the
    /// layer is within the evaluation's store budget; the backward then reads them instead
    /// of recomputing the pairs (empty otherwise).
    pub p1: ABuf<T>,
    pub p1d: ABuf<T>,
    pub p2d: ABuf<T>,
    /// φ' of the edge self MLP (`n_edges × e_dim`, when the layer updates edges), the
    /// node–edge message and its φ' (`n_edges × H·n_dim`), when the layer is within the
    /// store budget (empty otherwise).
    pub yd: ABuf<T>,
    pub z3: ABuf<T>,
    pub z3d: ABuf<T>,
}

impl<T> LayerSave<T> {
    /// Heap bytes held.
    pub fn bytes(&self) -> usize {
        (self.dact1.len()
            + self.dact2.len()
            + self.q.len()
            + self.qa.len()
            + self.hg.len()
            + self.z4d.len()
            + self.z4.len()
            + self.p1.len()
            + self.p1d.len()
            + self.p2d.len()
            + self.yd.len()
            + self.z3.len()
            + self.z3d.len())
            * std::mem::size_of::<T>()
    }
}

impl<T> LayerSave<T> {
    /// Its rows cut at the atom-chunk bounds `ab` (edge rows at `eb`, pair rows at `pb`).
    pub fn chunks(
        &mut self,
        o: &Opts,
        ab: &[usize],
        eb: &[usize],
        pb: &[usize],
    ) -> Vec<SaveChunk<'_, T>> {
        let n = o.n_dim;
        // Edge and pair rows are empty when the layer keeps none.
        let wid = |v: &[T], w: usize| if v.is_empty() { 0 } else { w };
        let (wd, wz) = (wid(&self.z4d, o.e_dim), wid(&self.z4, o.e_dim));
        let (w1, w2) = (wid(&self.p1, o.e_dim), wid(&self.p2d, o.a_dim));
        let pairs = split_rows(&mut self.p1, pb, w1)
            .into_iter()
            .zip(split_rows(&mut self.p1d, pb, w1))
            .zip(split_rows(&mut self.p2d, pb, w2));
        let (wy, w3) = (wid(&self.yd, o.e_dim), wid(&self.z3, o.heads * n));
        let kept_edges = split_rows(&mut self.yd, eb, wy)
            .into_iter()
            .zip(split_rows(&mut self.z3, eb, w3))
            .zip(split_rows(&mut self.z3d, eb, w3));
        split_rows(&mut self.dact1, ab, n)
            .into_iter()
            .zip(split_rows(&mut self.dact2, ab, n))
            .zip(split_rows(&mut self.q, ab, o.w_ne()))
            .zip(split_rows(&mut self.qa, ab, o.w_qa()))
            .zip(split_rows(&mut self.hg, ab, o.w_hg()))
            .zip(split_rows(&mut self.z4d, eb, wd))
            .zip(split_rows(&mut self.z4, eb, wz))
            .zip(pairs)
            .zip(kept_edges)
            .map(
                |(
                    (((((((dact1, dact2), q), qa), hg), z4d), z4), ((p1, p1d), p2d)),
                    ((yd, z3), z3d),
                )| SaveChunk {
                    dact1,
                    dact2,
                    q,
                    qa,
                    hg,
                    z4d,
                    z4,
                    p1,
                    p1d,
                    p2d,
                    yd,
                    z3,
                    z3d,
                },
            )
            .collect()
    }
}

/// Mutable chunk views of a [`LayerSave`].
pub(crate) struct SaveChunk<'a, T> {
    pub dact1: &'a mut [T],
    pub dact2: &'a mut [T],
    pub q: &'a mut [T],
    pub qa: &'a mut [T],
    pub hg: &'a mut [T],
    /// The chunk's edge rows of [`LayerSave::z4d`] and [`LayerSave::z4`] (may be empty).
    pub z4d: &'a mut [T],
    pub z4: &'a mut [T],
    /// The chunk's pair rows of [`LayerSave::p1`], `p1d` and `p2d` (may be empty).
    pub p1: &'a mut [T],
    pub p1d: &'a mut [T],
    pub p2d: &'a mut [T],
    /// The chunk's edge rows of [`LayerSave::yd`], `z3` and `z3d` (may be empty).
    pub yd: &'a mut [T],
    pub z3: &'a mut [T],
    pub z3d: &'a mut [T],
}

/// An atom's edge-level intermediates, rows of [`LayerSave::yd`], `z3` and `z3d`: written
/// by the forward (`S = &mut [T]`), read by the backward (`S = &[T]`).
struct EdgeRows<S> {
    yd: S,
    z3: S,
    z3d: S,
}

/// Reusable buffers of one task (sized for the largest atom of the frame).
pub(crate) struct Scratch<T> {
    // layer-0 inputs
    e0: Vec<T>,
    e0d: Vec<T>,
    u: Vec<[T; 3]>,
    cos: Vec<T>,
    a0: Vec<T>,
    // forward intermediates
    y: Vec<T>,
    yd: Vec<T>,
    e1: Vec<T>,
    eg: Vec<T>,
    ea: Vec<T>,
    ek: Vec<T>,
    ej: Vec<T>,
    /// Angle switch per angle edge.
    swa: Vec<T>,
    // angle-pair block intermediates (`block_rows` rows)
    p2: Vec<T>,
    p2d: Vec<T>,
    p1: Vec<T>,
    p1d: Vec<T>,
    at: Vec<T>,
    m: Vec<T>,
    z4: Vec<T>,
    z4d: Vec<T>,
    z3: Vec<T>,
    z3d: Vec<T>,
    e_tmp: Vec<T>,
    is_ang: Vec<bool>,
    // backward
    gz3: Vec<T>,
    gnode: Vec<T>,
    gnew: Vec<T>,
    g1: Vec<T>,
    gv1: Vec<T>,
    gv2: Vec<T>,
    gm: Vec<T>,
    gp1: Vec<T>,
    gp2: Vec<T>,
    /// `[gp1 | gp2]` rows of the fused backward.
    gp: Vec<T>,
    /// Angle-switch gradients per angle edge of the fused backward.
    gsw: Vec<T>,
    gat: Vec<T>,
    gek: Vec<T>,
    gej: Vec<T>,
    gea: Vec<T>,
    geg: Vec<T>,
    gy: Vec<T>,
    gcos: Vec<T>,
    // chunk level
    c_na: Vec<T>,
    c_t: Vec<T>,
    c_sym: Vec<T>,
    c_u3: Vec<T>,
    c_gq: Vec<T>,
    c_gqa: Vec<T>,
    c_gna: Vec<T>,
    c_ghg: Vec<T>,
    c_gz: Vec<T>,
    t_u3: Vec<T>,
    t_hg: Vec<T>,
}

impl<T: Real> Scratch<T> {
    /// Buffers for atoms of up to `max_ne` edges and `max_na` angle edges.
    pub fn new(o: &Opts, max_ne: usize, max_na: usize) -> Self {
        let (n, ed, ad) = (o.n_dim, o.e_dim, o.a_dim);
        let hn = o.heads * n;
        let w = hn + ed;
        let wq = ed + ad;
        let np = max_na * max_na;
        let nb = block_rows(max_na);
        let ne = max_ne;
        let na = max_na;
        let z = |k: usize| vec![T::zero(); k];
        Scratch {
            e0: z(ne * ed),
            e0d: z(ne * ed),
            u: vec![[T::zero(); 3]; na],
            cos: z(np),
            a0: z(np * ad),
            y: z(ne * ed),
            yd: z(ne * ed),
            e1: z(ne * ed),
            eg: z(na * ed),
            ea: z(na * o.e_a),
            ek: z(na * wq),
            ej: z(na * wq),
            swa: z(na),
            p2: z(nb * ad),
            p2d: z(nb * ad),
            p1: z(nb * ed),
            p1d: z(nb * ed),
            at: z(nb * ad),
            m: z(ne * ed),
            z4: z(ne * ed),
            z4d: z(ne * ed),
            z3: z(ne * hn),
            z3d: z(ne * hn),
            e_tmp: z(ne * ed),
            is_ang: vec![false; ne],
            gz3: z(ne * hn),
            gnode: z(ne * ed),
            gnew: z(ne * ed),
            g1: z(ne * ed),
            gv1: z(ne * ed),
            gv2: z(ne * ed),
            gm: z(ne * ed),
            gp1: z(nb * ed),
            gp2: z(nb * ad),
            gp: z(nb * wq),
            gsw: z(na),
            gat: z(nb * ad),
            gek: z(na * wq),
            gej: z(na * wq),
            gea: z(na * o.e_a),
            geg: z(na * ed),
            gy: z(ne * ed),
            gcos: z(np),
            c_na: z(CHUNK * o.n_a),
            c_t: z(CHUNK * n),
            c_sym: z(CHUNK * o.w_sym()),
            c_u3: z(CHUNK * hn),
            c_gq: z(CHUNK * w),
            c_gqa: z(CHUNK * wq),
            c_gna: z(CHUNK * o.n_a),
            c_ghg: z(CHUNK * o.w_hg()),
            c_gz: z(CHUNK * n),
            t_u3: z(hn),
            t_hg: z(o.w_hg()),
        }
    }
}

/// One [`Scratch`] per worker thread, made on first use and kept for the whole frame (every
/// layer, forward and backward): rayon calls a `for_each_init` initialiser once per split,
/// which allocated and zeroed the ~4 MB of buffers up to 8 times per layer and pass.
pub(crate) struct ScratchPool<T> {
    slots: Vec<Mutex<Option<Scratch<T>>>>,
    max_ne: usize,
    max_na: usize,
}

impl<T> ScratchPool<T> {
    /// An empty pool for the current rayon pool's threads and atoms of up to `max_ne` edges
    /// and `max_na` angle edges.
    pub fn new(max_ne: usize, max_na: usize) -> Self {
        ScratchPool {
            slots: (0..rayon::current_num_threads().max(1))
                .map(|_| Mutex::new(None))
                .collect(),
            max_ne,
            max_na,
        }
    }
}

impl<T: Real> ScratchPool<T> {
    /// Runs `f` with the calling worker's scratch. Every buffer is written before it is
    /// read within an atom, so which scratch a task gets never changes its results.
    pub fn with<R>(&self, o: &Opts, f: impl FnOnce(&mut Scratch<T>) -> R) -> R {
        let i = rayon::current_thread_index().unwrap_or(0) % self.slots.len();
        let mut slot = self.slots[i].lock().unwrap_or_else(|e| e.into_inner());
        f(slot.get_or_insert_with(|| Scratch::new(o, self.max_ne, self.max_na)))
    }
}

impl<T> Clone for ScratchPool<T> {
    /// A fresh, empty pool of the same shape (scratch holds no state worth copying).
    fn clone(&self) -> Self {
        Self::new(self.max_ne, self.max_na)
    }
}

impl<T> std::fmt::Debug for ScratchPool<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ScratchPool({} slots)", self.slots.len())
    }
}

/// One centre atom's slice of the graph.
struct Atom<'a, T> {
    ne: usize,
    na: usize,
    /// Global id of its first edge.
    e0: usize,
    /// Global row of its first angle pair.
    p0: usize,
    ej: &'a [u32],
    geo: &'a [Geo<T>],
    aidx: &'a [u32],
}

/// Edge rows of an atom whose angle → edge message can be non-zero. With
/// `smooth_edge_update` an edge outside the angle list gets a zero message, and the
/// distance-sorted list puts the `na` angle edges first, so only those rows need the
/// message products; otherwise (or if the angle edges are not a prefix) all `ne`.
#[inline(always)]
fn message_rows<T>(o: &Opts, at: &Atom<T>) -> usize {
    let prefix = at.aidx.iter().enumerate().all(|(k, &e)| e as usize == k);
    if o.smooth_edge_update && prefix {
        at.na
    } else {
        at.ne
    }
}

/// Angle pairs per block, about: whole rows `j` of an atom's `na × na` pair matrix, so that a
/// block's product, activation, reduction and their backward work on data that stays in the
/// core's caches instead of streaming `na² × (a_dim + e_dim)` intermediates through memory.
const BLOCK_PAIRS: usize = 128;

/// Rows `j` per block for an atom with `na` angle edges.
#[inline(always)]
fn block_j(na: usize) -> usize {
    (BLOCK_PAIRS / na.max(1)).max(1)
}

/// Pair rows of the largest block of atoms with up to `max_na` angle edges.
fn block_rows(max_na: usize) -> usize {
    BLOCK_PAIRS.max(max_na)
}

#[inline(always)]
fn atom<'a, T>(g: &'a Graph<T>, i: usize) -> Atom<'a, T> {
    let (e0, e1) = (g.edge_off[i], g.edge_off[i + 1]);
    let (a0, a1) = (g.ang_off[i], g.ang_off[i + 1]);
    Atom {
        ne: e1 - e0,
        na: a1 - a0,
        e0,
        p0: g.pair_off[i],
        ej: &g.edge_j[e0..e1],
        geo: &g.geo[e0..e1],
        aidx: &g.aidx[a0..a1],
    }
}

/// Layer-0 inputs of one atom from its geometry: `e⁰ = φ(ein·w + b)` (no φ with
/// `edge_init_use_dist`) and `a⁰ = cos·w (+ b)`.
#[inline(always)]
fn initial_inputs<T: Real>(
    cx: &LayerCtx<T>,
    at: &Atom<T>,
    s: &mut Scratch<T>,
    grad: bool,
    need_a0: bool,
) {
    let o = cx.o;
    let ed = o.e_dim;
    let ee = &cx.par.edge_embd;
    affine_rows(
        at.geo.iter().map(|g| g.ein),
        &ee.w,
        ee.b.as_deref(),
        &mut s.e0[..at.ne * ed],
    );
    if !o.edge_init_use_dist {
        activate(
            o.act,
            &mut s.e0[..at.ne * ed],
            grad.then_some(&mut s.e0d[..at.ne * ed]),
        );
    }
    if o.update_angle {
        let na = at.na;
        let ad = o.a_dim;
        geometry::unit_vectors(at.geo, at.aidx, &mut s.u[..na]);
        geometry::angle_inputs(&s.u[..na], &mut s.cos[..na * na]);
        let ae = &cx.par.angle_embd;
        affine_rows(
            s.cos[..na * na].iter().copied(),
            &ae.w,
            ae.b.as_deref(),
            &mut s.a0[..if need_a0 { na * na * ad } else { 0 }],
        );
    }
}

/// Symmetrised features `grrg` of both blocks from `hg`, into `out` (`axis·(e_dim + n_dim)`).
#[inline(always)]
fn grrg<T: Real>(o: &Opts, hg: &[T], out: &mut [T]) {
    let three = T::of(3.0);
    let mut off = 0;
    for (base, width) in [(0, o.e_dim), (3 * o.e_dim, o.n_dim)] {
        let h = &hg[base..base + 3 * width];
        for a in 0..o.axis {
            for c in 0..width {
                let v =
                    h[a] * h[c] + h[width + a] * h[width + c] + h[2 * width + a] * h[2 * width + c];
                out[off + a * width + c] = v / three;
            }
        }
        off += o.axis * width;
    }
}

/// Backward of [`grrg`]: `gsym` → `ghg` (overwritten).
#[inline(always)]
fn grrg_backward<T: Real>(o: &Opts, hg: &[T], gsym: &[T], ghg: &mut [T]) {
    let three = T::of(3.0);
    ghg.fill(T::zero());
    let mut off = 0;
    for (base, width) in [(0, o.e_dim), (3 * o.e_dim, o.n_dim)] {
        let h = &hg[base..base + 3 * width];
        let gh = &mut ghg[base..base + 3 * width];
        for a in 0..o.axis {
            for c in 0..width {
                let g = gsym[off + a * width + c] / three;
                for x in 0..3 {
                    gh[x * width + c] += g * h[x * width + a];
                    gh[x * width + a] += g * h[x * width + c];
                }
            }
        }
        off += o.axis * width;
    }
}

/// Forward of one atom: the updated edges into `s.e_tmp`, z4 and φ'(z4) into `s.z4`/`s.z4d`,
/// the updated angles into `a_dst` (when given), the message `u3` and `hg`.
///
/// With `grad` it is the recomputation before [`atom_backward`]: it leaves the edge-level
/// intermediates in `s` and skips the angle pairs (the backward recomputes them block by
/// block) and z4 (which must then already be in `s.z4`/`s.z4d`, from the layer's save).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn atom_eval<T: Real>(
    cx: &LayerCtx<T>,
    at: &Atom<T>,
    q: &[T],
    qa: &[T],
    u3: &mut [T],
    hg: &mut [T],
    a_dst: Option<&mut [T]>,
    keep: Option<PairRows<&mut [T]>>,
    mut keep_edges: Option<EdgeRows<&mut [T]>>,
    s: &mut Scratch<T>,
    grad: bool,
) {
    let o = cx.o;
    let lw = cx.lw;
    let (n, ed, ad) = (o.n_dim, o.e_dim, o.a_dim);
    let hn = o.heads * n;
    let w = hn + ed;
    let wq = ed + ad;
    let (ne, na) = (at.ne, at.na);
    let np = na * na;
    let act = o.act;
    if cx.e_in.is_none() {
        initial_inputs(cx, at, s, grad, !grad || !cx.pairs_kept);
    }
    let Scratch {
        e0,
        a0,
        cos,
        y,
        yd,
        e1,
        eg,
        ea,
        ek,
        ej,
        swa,
        p2,
        p2d,
        p1,
        p1d,
        at: at_blk,
        m,
        z4,
        z4d,
        z3,
        z3d,
        e_tmp,
        is_ang,
        ..
    } = s;
    let e: &[T] = match cx.e_in {
        Some(buf) => &buf[at.e0 * ed..(at.e0 + ne) * ed],
        None => &e0[..ne * ed],
    };
    // Only the forward reads the input angles (a layer with kept pairs drops them).
    let a: &[T] = match (grad, cx.a_in) {
        (true, _) => &[],
        (false, Some(buf)) => &buf[at.p0 * ad..(at.p0 + np) * ad],
        (false, None) => &a0[..np * ad],
    };

    // A backward whose layer kept its edge intermediates recomputes no edge MLP.
    let recompute_edges = !(grad && cx.edges_kept);
    // Kept edge rows are built in the scratch and streamed out (see `stream_copy`).
    let derivs = grad || keep_edges.is_some();
    let e_out = &mut e_tmp[..ne * ed];
    if cx.edge_update {
        // Edge self: y = (n_i W + b) + e W + n_j W.
        let y = &mut y[..ne * ed];
        if recompute_edges {
            matmul(ne, ed, ed, e, Op::N, &lw.w_ee_e, Op::N, y, T::zero());
            for (row, &j) in y.chunks_exact_mut(ed).zip(at.ej) {
                let j = j as usize;
                add_around(row, &q[hn..w], &cx.pm[j * w + hn..(j + 1) * w]);
            }
            activate(act, y, derivs.then_some(&mut yd[..ne * ed]));
            if let Some(k) = keep_edges.as_mut() {
                stream_copy(k.yd, &yd[..ne * ed]);
            }
        }
        let y: &[T] = y;

        // Sequential mode applies the edge-self update before the angle block.
        if o.sequential {
            let s0 = &lw.upd_e.beta[0];
            for ((dst, er), yr) in e1[..ne * ed]
                .chunks_exact_mut(ed)
                .zip(e.chunks_exact(ed))
                .zip(y.chunks_exact(ed))
            {
                for (((d, &ev), &yv), &sv) in dst.iter_mut().zip(er).zip(yr).zip(s0) {
                    *d = ev + sv * yv;
                }
            }
        }
        let eref: &[T] = if o.sequential { &e1[..ne * ed] } else { e };

        if let Some(aw) = &lw.angle {
            let e_a = o.e_a;
            is_ang[..ne].fill(false);
            for &el in at.aidx {
                is_ang[el as usize] = true;
            }
            // The angle-edge terms feed only the pairs, which a backward with kept pairs
            // does not recompute.
            if !grad || !cx.pairs_kept {
                for (kk, &el) in at.aidx.iter().enumerate() {
                    let el = el as usize;
                    let row = &eref[el * ed..(el + 1) * ed];
                    match o.compress {
                        Compress::None | Compress::Split => {
                            ea[kk * e_a..(kk + 1) * e_a].copy_from_slice(&row[..e_a])
                        }
                        Compress::Linear => eg[kk * ed..(kk + 1) * ed].copy_from_slice(row),
                    }
                }
                if o.compress == Compress::Linear {
                    let wce = aw.w_ce.as_deref().unwrap_or(&[]);
                    matmul(na, e_a, ed, eg, Op::N, wce, Op::N, ea, T::zero());
                }
                matmul(na, wq, e_a, ea, Op::N, &aw.wik, Op::N, ek, T::zero());
                matmul(na, wq, e_a, ea, Op::N, &aw.wij, Op::N, ej, T::zero());

                // e_ik rows with the node term folded in: (qa + e_ik), the first sum of
                // DeePMD's order.
                for row in ek[..na * wq].chunks_exact_mut(wq) {
                    for (v, &b) in row.iter_mut().zip(qa) {
                        *v = b + *v;
                    }
                }
            }
            // In the backward the pair blocks are recomputed next to their gradients
            // (`atom_backward`), and z4 is read from the layer's save.
            if !grad {
                let m = &mut m[..ne * ed];
                if o.smooth_edge_update {
                    m.fill(T::zero());
                } else {
                    m.copy_from_slice(eref);
                }
                let sa = T::of(o.na_norm.sqrt());
                for (d, &el) in swa.iter_mut().zip(at.aidx) {
                    *d = at.geo[el as usize].asw;
                }
                let bj = block_j(na);
                let mut a_dst = a_dst;
                let mut keep = keep;
                for j0 in (0..na).step_by(bj) {
                    let j1 = (j0 + bj).min(na);
                    let (r0, r1) = (j0 * na, j1 * na);
                    let nb = r1 - r0;
                    let keep_at = a_dst.is_some() || o.sequential;
                    let blk = PairBlock {
                        j0,
                        j1,
                        a: &a[r0 * ad..r1 * ad],
                        cos: &cos[r0..r1],
                        sw: swa,
                    };
                    let kept = keep.is_some();
                    // Line-aligned kept rows are written in place, streamed, by the fused
                    // kernel; otherwise the block is built in cache and streamed out.
                    let direct = keep.as_ref().is_none_or(|k| {
                        fused::line_rows(&k.p1[r0 * ed..], ed)
                            && fused::line_rows(&k.p1d[r0 * ed..], ed)
                            && fused::line_rows(&k.p2d[r0 * ad..], ad)
                    }) && a_dst
                        .as_ref()
                        .is_none_or(|d| fused::line_rows(&d[r0 * ad..], ad));
                    let (o1, o1d, o2d) = match keep.as_mut() {
                        Some(k) if direct => (
                            &mut k.p1[r0 * ed..r1 * ed],
                            &mut k.p1d[r0 * ed..r1 * ed],
                            &mut k.p2d[r0 * ad..r1 * ad],
                        ),
                        _ => (&mut p1[..nb * ed], &mut p1d[..nb * ed], &mut p2d[..nb * ad]),
                    };
                    let out = PairFwdOut {
                        p1: kept.then_some(o1),
                        p1d: kept.then_some(o1d),
                        p2d: kept.then_some(o2d),
                        at: match a_dst.as_deref_mut() {
                            Some(d) if direct => Some(&mut d[r0 * ad..r1 * ad]),
                            Some(_) => Some(&mut at_blk[..nb * ad]),
                            None => None,
                        },
                        m: Some((&mut *m, at.aidx, sa)),
                        stream: direct,
                    };
                    let fused = fused_block(cx, aw, na, &blk, ek, ej, swa, out);
                    if !fused {
                        angle_block_forward(
                            cx,
                            aw,
                            na,
                            &blk,
                            ek,
                            ej,
                            &mut p2[..nb * ad],
                            kept.then(|| &mut p2d[..nb * ad]),
                            keep_at.then(|| &mut at_blk[..nb * ad]),
                            &mut p1[..nb * ed],
                            kept.then(|| &mut p1d[..nb * ed]),
                        );
                    }
                    let p1: &[T] = &p1[..nb * ed];
                    // The block is built in cache and streamed out (see `stream_copy`).
                    if let Some(k) = keep.as_mut().filter(|_| !(fused && direct)) {
                        stream_copy(&mut k.p1[r0 * ed..r1 * ed], p1);
                        stream_copy(&mut k.p1d[r0 * ed..r1 * ed], &p1d[..nb * ed]);
                        stream_copy(&mut k.p2d[r0 * ad..r1 * ad], &p2d[..nb * ad]);
                    }
                    if let Some(dst) = a_dst.as_deref_mut().filter(|_| !(fused && direct)) {
                        stream_copy(&mut dst[r0 * ad..r1 * ad], &at_blk[..nb * ad]);
                    }
                    // Edge ← angle: pre1 reduced over k with a_sw_j a_sw_k / √Na (the fused
                    // kernel did this in registers).
                    for jj in (j0..j1).filter(|_| !fused) {
                        let el = at.aidx[jj] as usize;
                        let aj = at.geo[el].asw;
                        let row = &mut m[el * ed..(el + 1) * ed];
                        row.fill(T::zero());
                        let rows = &p1[(jj - j0) * na * ed..(jj - j0 + 1) * na * ed];
                        for (kk, src) in rows.chunks_exact(ed).enumerate() {
                            let f = aj * at.geo[at.aidx[kk] as usize].asw;
                            axpy(row, f, src);
                        }
                        for v in row.iter_mut() {
                            *v = *v / sa;
                        }
                    }
                }
                // Rows past `mr` have a zero message: φ(b) and φ'(b), computed once.
                let mr = message_rows(o, at);
                let z4 = &mut z4[..ne * ed];
                let z4d = &mut z4d[..ne * ed];
                let live = (mr + usize::from(mr < ne)) * ed;
                fill_rows(&mut z4[..live], &aw.b_l2, live / ed);
                matmul(mr, ed, ed, m, Op::N, &aw.w_l2, Op::N, z4, T::one());
                activate(act, &mut z4[..live], Some(&mut z4d[..live]));
                for k in mr + 1..ne {
                    z4.copy_within(mr * ed..live, k * ed);
                    z4d.copy_within(mr * ed..live, k * ed);
                }
            }
            // The backward reads the output edges only in sequential mode.
            let ue = &lw.upd_e;
            for (((dst, er), yr), zr) in e_out
                .chunks_exact_mut(ed)
                .zip(eref.chunks_exact(ed))
                .zip(y.chunks_exact(ed))
                .zip(z4[..ne * ed].chunks_exact(ed))
                .take(if grad && !o.sequential { 0 } else { ne })
            {
                if o.sequential {
                    for (((d, &ev), &zv), &b1) in dst.iter_mut().zip(er).zip(zr).zip(&ue.beta[1]) {
                        *d = ev + b1 * zv;
                    }
                } else {
                    for (((((d, &ev), &yv), &zv), &b0), &b1) in dst
                        .iter_mut()
                        .zip(er)
                        .zip(yr)
                        .zip(zr)
                        .zip(&ue.beta[0])
                        .zip(&ue.beta[1])
                    {
                        *d = (ue.alpha * ev + b0 * yv) + b1 * zv;
                    }
                }
            }
        } else {
            let ue = &lw.upd_e;
            for ((dst, er), yr) in e_out
                .chunks_exact_mut(ed)
                .zip(e.chunks_exact(ed))
                .zip(y.chunks_exact(ed))
                .take(if grad && !o.sequential { 0 } else { ne })
            {
                for (((d, &ev), &yv), &b0) in dst.iter_mut().zip(er).zip(yr).zip(&ue.beta[0]) {
                    *d = ue.alpha * ev + b0 * yv;
                }
            }
        }
    }
    let e_out: &[T] = e_out;
    let enode: &[T] = if o.sequential { e_out } else { e };

    if !recompute_edges {
        return;
    }
    // Node–edge message: Σ_j φ((n_i W + b) + e W + n_j W)·sw / Ne.
    let z3 = &mut z3[..ne * hn];
    matmul(ne, hn, ed, enode, Op::N, &lw.w_ee_n, Op::N, z3, T::zero());
    for (row, &j) in z3.chunks_exact_mut(hn).zip(at.ej) {
        let j = j as usize;
        add_around(row, &q[..hn], &cx.pm[j * w..j * w + hn]);
    }
    activate(act, z3, derivs.then_some(&mut z3d[..ne * hn]));
    if let Some(k) = keep_edges {
        stream_copy(k.z3, z3);
        stream_copy(k.z3d, &z3d[..ne * hn]);
    }
    let z3: &[T] = z3;
    if grad {
        // The backward has u3's gradient already and hg saved from the forward.
        return;
    }
    u3.fill(T::zero());
    for (row, gk) in z3.chunks_exact(hn).zip(at.geo) {
        axpy(u3, gk.sw, row);
    }
    let nn = T::of(o.ne_norm);
    for v in u3.iter_mut() {
        *v = *v / nn;
    }

    // hg of edges and neighbour nodes.
    hg.fill(T::zero());
    let (hge, hgn) = hg.split_at_mut(3 * ed);
    for k in 0..ne {
        let gk = &at.geo[k];
        let j = at.ej[k] as usize;
        let er = &enode[k * ed..(k + 1) * ed];
        let nr = &cx.node[j * n..(j + 1) * n];
        for x in 0..3 {
            let hx = gk.h2[x];
            for (d, &v) in hge[x * ed..(x + 1) * ed].iter_mut().zip(er) {
                *d += hx * (v * gk.sw);
            }
            for (d, &v) in hgn[x * n..(x + 1) * n].iter_mut().zip(nr) {
                *d += hx * (v * gk.sw);
            }
        }
    }
    let inv = T::of(1.0 / o.ne_norm.sqrt());
    for v in hg.iter_mut() {
        *v *= inv;
    }
}

/// Pair rows `j0·na .. j1·na` of one atom's angle block and their inputs.
struct PairBlock<'a, T> {
    j0: usize,
    j1: usize,
    /// The block's rows of the layer's input angles (`nb × a_dim`).
    a: &'a [T],
    /// The block's rows of cos θ (read in layer 0 only).
    cos: &'a [T],
    /// The atom's angle switch per angle edge.
    sw: &'a [T],
}

/// [`angle_block_forward`] (and the edge-message reduction, into `out.m`) by the fused
/// kernel where it applies (parallel update, silu/silut, AVX-512); false otherwise, with
/// nothing written. `sw` holds the angle edges' switches.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn fused_block<T: Real>(
    cx: &LayerCtx<T>,
    aw: &AngleW<T>,
    na: usize,
    b: &PairBlock<T>,
    ek: &[T],
    ej: &[T],
    sw: &[T],
    mut out: PairFwdOut<T>,
) -> bool {
    let o = cx.o;
    if o.sequential {
        return false;
    }
    let ua = &cx.lw.upd_a;
    let x = PairFwd {
        ed: o.e_dim,
        ad: o.a_dim,
        na,
        j0: b.j0,
        j1: b.j1,
        a: b.a,
        rank1: cx.a0.as_ref().map(|pj| (b.cos, &pj.v12[..], &pj.c12[..])),
        w12: &aw.w12,
        ek,
        ej,
        sw,
        act: o.act,
        alpha: ua.alpha,
        beta: &ua.beta[0],
    };
    fused::pair_forward(&x, &mut out)
}

/// Forward of one pair block: the angle-self activation into `p2` (φ' into `p2d`), the
/// updated angles into `at` (when given; sequential mode needs them for `p1`), and the
/// edge-message activation into `p1` (φ' into `p1d`). `ek`/`ej` are the atom's angle-edge
/// terms (`na × (e_dim + a_dim)`, the node term folded into `ek`).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn angle_block_forward<T: Real>(
    cx: &LayerCtx<T>,
    aw: &AngleW<T>,
    na: usize,
    b: &PairBlock<T>,
    ek: &[T],
    ej: &[T],
    p2: &mut [T],
    p2d: Option<&mut [T]>,
    at: Option<&mut [T]>,
    p1: &mut [T],
    p1d: Option<&mut [T]>,
) {
    let o = cx.o;
    let (ed, ad) = (o.e_dim, o.a_dim);
    let wq = ed + ad;
    let nb = b.cos.len();
    // Angle self: pre2 = ((qa + e_ik) + e_ij) + a W.
    match &cx.a0 {
        Some(pj) => affine_rows(b.cos.iter().copied(), &pj.v2, Some(&pj.c2), p2),
        None => matmul(nb, ad, ad, b.a, Op::N, &aw.w2a, Op::N, p2, T::zero()),
    }
    for (jj, rows) in (b.j0..b.j1).zip(p2.chunks_exact_mut((na * ad).max(1))) {
        let ejr = &ej[jj * wq + ed..(jj + 1) * wq];
        for (kk, row) in rows.chunks_exact_mut(ad).enumerate() {
            add2_before(row, &ek[kk * wq + ed..(kk + 1) * wq], ejr);
        }
    }
    activate(o.act, p2, p2d);
    let a_for1: &[T] = match at {
        Some(at) => {
            let ua = &cx.lw.upd_a;
            for ((dst, ar), wr) in at
                .chunks_exact_mut(ad)
                .zip(b.a.chunks_exact(ad))
                .zip(p2.chunks_exact(ad))
            {
                for (((d, &av), &wv), &bv) in dst.iter_mut().zip(ar).zip(wr).zip(&ua.beta[0]) {
                    *d = ua.alpha * av + bv * wv;
                }
            }
            if o.sequential {
                at
            } else {
                b.a
            }
        }
        None => b.a,
    };
    // Edge ← angle: pre1 = ((qa + e_ik) + e_ij) + a W.
    match (&cx.a0, o.sequential) {
        (Some(pj), false) => affine_rows(b.cos.iter().copied(), &pj.v1, Some(&pj.c1), p1),
        _ => matmul(nb, ed, ad, a_for1, Op::N, &aw.w1a, Op::N, p1, T::zero()),
    }
    for (jj, rows) in (b.j0..b.j1).zip(p1.chunks_exact_mut((na * ed).max(1))) {
        let ejr = &ej[jj * wq..jj * wq + ed];
        for (kk, row) in rows.chunks_exact_mut(ed).enumerate() {
            add2_before(row, &ek[kk * wq..kk * wq + ed], ejr);
        }
    }
    activate(o.act, p1, p1d);
}

/// Pair intermediates `p1`, φ'(p1), φ'(p2): an atom's kept rows of [`LayerSave::p1`],
/// `p1d`, `p2d` written by the forward (`S = &mut [T]`), or what [`angle_block_backward`]
/// reads (`S = &[T]`: a block's recomputed rows or its kept ones).
struct PairRows<S> {
    p1: S,
    p1d: S,
    p2d: S,
}

/// Block-sized gradient buffers of [`angle_block_backward`].
struct BlockGrad<'a, T> {
    gp1: &'a mut [T],
    gp2: &'a mut [T],
    gat: &'a mut [T],
    /// The fused backward's `[gp1 | gp2]` rows and per-angle-edge switch gradients.
    gp: &'a mut [T],
    gsw: &'a mut [T],
}

/// Backward of one pair block. `gm` = ∂L/∂m of the atom's edges; `ga` (the block's rows of
/// ∂L/∂ output angles) becomes ∂L/∂ input angles, or in layer 0 `gcos` receives ∂L/∂cos; the
/// pre-activation gradients are summed into `gek` (per k) and `gej` (per j), the
/// angle-switch gradients into `gg`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn angle_block_backward<T: Real>(
    cx: &LayerCtx<T>,
    aw: &AngleW<T>,
    at: &Atom<T>,
    b: &PairBlock<T>,
    gm: &[T],
    f: PairRows<&[T]>,
    g: BlockGrad<T>,
    ga: &mut [T],
    gcos: &mut [T],
    gek: &mut [T],
    gej: &mut [T],
    gg: &mut [GeoGrad<T>],
) {
    let o = cx.o;
    let (ed, ad) = (o.e_dim, o.a_dim);
    let wq = ed + ad;
    let na = at.na;
    let nb = b.cos.len();
    let BlockGrad {
        gp1,
        gp2,
        gat,
        gp,
        gsw,
    } = g;
    let sa = T::of(o.na_norm.sqrt());
    if !o.sequential {
        let ua = &cx.lw.upd_a;
        let x = PairBwd {
            ed,
            ad,
            na,
            j0: b.j0,
            j1: b.j1,
            p1: f.p1,
            p1d: f.p1d,
            p2d: f.p2d,
            gm,
            aidx: at.aidx,
            sw: b.sw,
            sa,
            alpha: ua.alpha,
            beta: &ua.beta[0],
        };
        let mut out = PairBwdOut {
            ga: &mut *ga,
            gp: &mut *gp,
            gek: &mut *gek,
            gej: &mut *gej,
            gsw,
        };
        if fused::pair_backward(&x, &mut out) {
            match &cx.a0 {
                // Layer 0: only ∂L/∂cos = (∂L/∂a⁰)·w is needed (see `A0Proj`).
                Some(pj) => {
                    let w = &cx.par.angle_embd.w;
                    for (r, gc) in gcos.iter_mut().enumerate() {
                        let g = &gp[r * wq..(r + 1) * wq];
                        *gc = vdot(&ga[r * ad..(r + 1) * ad], w)
                            + vdot(&g[ed..], &pj.v2)
                            + vdot(&g[..ed], &pj.v1);
                    }
                }
                None => matmul(nb, ad, wq, gp, Op::N, &aw.w12t, Op::N, ga, T::one()),
            }
            return;
        }
    }
    for jj in b.j0..b.j1 {
        let elj = at.aidx[jj] as usize;
        let aj = at.geo[elj].asw;
        let gmj = &gm[elj * ed..(elj + 1) * ed];
        let mut gaj = T::zero();
        for kk in 0..na {
            let elk = at.aidx[kk] as usize;
            let ak = at.geo[elk].asw;
            let fc = aj * ak / sa;
            let r = ((jj - b.j0) * na + kk) * ed;
            for ((g, &gmv), &d) in gp1[r..r + ed].iter_mut().zip(gmj).zip(&f.p1d[r..r + ed]) {
                *g = gmv * fc * d;
            }
            let sjk = vdot(&f.p1[r..r + ed], gmj);
            gaj += ak * sjk;
            gg[elk].asw += aj * sjk / sa;
        }
        gg[elj].asw += gaj / sa;
    }
    for (jj, rows) in (b.j0..b.j1).zip(gp1.chunks_exact((na * ed).max(1))) {
        let gj = &mut gej[jj * wq..jj * wq + ed];
        for (kk, row) in rows.chunks_exact(ed).enumerate() {
            add_assign(&mut gek[kk * wq..kk * wq + ed], row);
            add_assign(gj, row);
        }
    }
    // Angle self.
    let ua = &cx.lw.upd_a;
    if o.sequential {
        gat.copy_from_slice(ga);
        matmul(nb, ad, ed, gp1, Op::N, aw.w1a.t(), Op::N, gat, T::one());
        for ((gr, ar), dr) in gp2
            .chunks_exact_mut(ad)
            .zip(gat.chunks_exact(ad))
            .zip(f.p2d.chunks_exact(ad))
        {
            for (((g, &a), &d), &bv) in gr.iter_mut().zip(ar).zip(dr).zip(&ua.beta[0]) {
                *g = (bv * a) * d;
            }
        }
        ga.copy_from_slice(gat);
    } else {
        for ((gr, ar), dr) in gp2
            .chunks_exact_mut(ad)
            .zip(ga.chunks_exact_mut(ad))
            .zip(f.p2d.chunks_exact(ad))
        {
            for (((g, a), &d), &bv) in gr.iter_mut().zip(ar.iter_mut()).zip(dr).zip(&ua.beta[0]) {
                *g = (bv * *a) * d;
                *a *= ua.alpha;
            }
        }
        if cx.a0.is_none() {
            matmul(nb, ad, ed, gp1, Op::N, aw.w1a.t(), Op::N, ga, T::one());
        }
    }
    match &cx.a0 {
        // Layer 0: only ∂L/∂cos = (∂L/∂a⁰)·w is needed (see `A0Proj`).
        Some(pj) => {
            let w = &cx.par.angle_embd.w;
            for (r, gc) in gcos.iter_mut().enumerate() {
                let mut g =
                    vdot(&ga[r * ad..(r + 1) * ad], w) + vdot(&gp2[r * ad..(r + 1) * ad], &pj.v2);
                if !o.sequential {
                    g += vdot(&gp1[r * ed..(r + 1) * ed], &pj.v1);
                }
                *gc = g;
            }
        }
        None => matmul(nb, ad, ad, gp2, Op::N, aw.w2a.t(), Op::N, ga, T::one()),
    }
    for (jj, rows) in (b.j0..b.j1).zip(gp2.chunks_exact((na * ad).max(1))) {
        let gj = &mut gej[jj * wq + ed..(jj + 1) * wq];
        for (kk, row) in rows.chunks_exact(ad).enumerate() {
            add_assign(&mut gek[kk * wq + ed..(kk + 1) * wq], row);
            add_assign(gj, row);
        }
    }
}

/// Backward of one atom after [`atom_eval`] with `grad`. `ge`/`ga` hold ∂L/∂(edges, angles)
/// of the layer output and are overwritten with those of the layer input; `dp` receives
/// ∂L/∂(pre-activations) per edge (`[node–edge | edge-self]`), `gq` their sum, `gqa` the sum
/// over angle pairs; geometry gradients are added to `gg`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn atom_backward<T: Real>(
    cx: &LayerCtx<T>,
    at: &Atom<T>,
    gu3: &[T],
    ghg: &[T],
    ge: &mut [T],
    ga: &mut [T],
    dp: &mut [T],
    gq: &mut [T],
    gqa: &mut [T],
    gg: &mut [GeoGrad<T>],
    kept: Option<PairRows<&[T]>>,
    kept_edges: Option<EdgeRows<&[T]>>,
    s: &mut Scratch<T>,
) {
    let o = cx.o;
    let lw = cx.lw;
    let (n, ed, ad) = (o.n_dim, o.e_dim, o.a_dim);
    let hn = o.heads * n;
    let w = hn + ed;
    let wq = ed + ad;
    let (ne, na) = (at.ne, at.na);
    let np = na * na;
    let Scratch {
        e0,
        a0,
        cos,
        ek,
        ej,
        swa,
        yd,
        p2,
        p2d,
        p1,
        p1d,
        at: at_blk,
        z4d,
        z3,
        z3d,
        e_tmp,
        is_ang,
        gz3,
        gnode,
        gnew,
        g1,
        gv1,
        gv2,
        gm,
        gp1,
        gp2,
        gp,
        gsw,
        gat,
        gek,
        gej,
        gea,
        geg,
        gy,
        gcos,
        ..
    } = s;
    // The layer's kept edge intermediates, or those `atom_eval` just recomputed.
    let edges = kept_edges.unwrap_or(EdgeRows {
        yd: &yd[..],
        z3: &z3[..],
        z3d: &z3d[..],
    });
    let e: &[T] = match cx.e_in {
        Some(buf) => &buf[at.e0 * ed..(at.e0 + ne) * ed],
        None => &e0[..ne * ed],
    };
    let e_out: &[T] = &e_tmp[..ne * ed];
    let enode: &[T] = if o.sequential { e_out } else { e };

    // Node–edge message.
    let nn = T::of(o.ne_norm);
    let gz3 = &mut gz3[..ne * hn];
    for (((gr, ar), dr), (gk, ggk)) in gz3
        .chunks_exact_mut(hn)
        .zip(edges.z3.chunks_exact(hn))
        .zip(edges.z3d.chunks_exact(hn))
        .zip(at.geo.iter().zip(gg.iter_mut()))
    {
        let f = gk.sw / nn;
        for ((g, &u), &d) in gr.iter_mut().zip(gu3).zip(dr) {
            *g = (u * f) * d;
        }
        ggk.sw += vdot(ar, gu3) / nn;
    }
    let gnode = &mut gnode[..ne * ed];
    matmul(
        ne,
        ed,
        hn,
        gz3,
        Op::N,
        lw.w_ee_n.t(),
        Op::N,
        gnode,
        T::zero(),
    );

    // Symmetrisation: edge part into gnode, geometry, and (in the frame gather) neighbours.
    let inv = T::of(1.0 / o.ne_norm.sqrt());
    let (ghe, ghn) = ghg.split_at(3 * ed);
    for k in 0..ne {
        let gk = &at.geo[k];
        let j = at.ej[k] as usize;
        let coef = gk.sw * inv;
        let er = &enode[k * ed..(k + 1) * ed];
        let nr = &cx.node[j * n..(j + 1) * n];
        let row = &mut gnode[k * ed..(k + 1) * ed];
        for x in 0..3 {
            axpy(row, coef * gk.h2[x], &ghe[x * ed..(x + 1) * ed]);
        }
        for x in 0..3 {
            let t = vdot(&ghe[x * ed..(x + 1) * ed], er) + vdot(&ghn[x * n..(x + 1) * n], nr);
            gg[k].h2[x] += coef * t;
            gg[k].sw += inv * gk.h2[x] * t;
        }
    }

    let ge = &mut ge[..ne * ed];
    let gy = &mut gy[..ne * ed];
    if cx.edge_update {
        // Edge update.
        let ue = &lw.upd_e;
        let gnew = &mut gnew[..ne * ed];
        let g1 = &mut g1[..ne * ed];
        let gv1 = &mut gv1[..ne * ed];
        let gv2 = &mut gv2[..ne * ed];
        if o.sequential {
            for (((gt_o, g1r), gr), gn) in gv2
                .chunks_exact_mut(ed)
                .zip(g1.chunks_exact_mut(ed))
                .zip(ge.chunks_exact(ed))
                .zip(gnode.chunks_exact(ed))
            {
                for ((((v2, v1), &a), &b), &b1) in gt_o
                    .iter_mut()
                    .zip(g1r.iter_mut())
                    .zip(gr)
                    .zip(gn)
                    .zip(&ue.beta[1])
                {
                    let gt = a + b;
                    *v2 = b1 * gt;
                    *v1 = gt;
                }
            }
        } else {
            let angle = lw.angle.is_some();
            for ((((nw, v1), v2), gr), gn) in gnew
                .chunks_exact_mut(ed)
                .zip(gv1.chunks_exact_mut(ed))
                .zip(gv2.chunks_exact_mut(ed))
                .zip(ge.chunks_exact(ed))
                .zip(gnode.chunks_exact(ed))
            {
                for ((((w, g1), &g), &n), &b0) in nw
                    .iter_mut()
                    .zip(v1.iter_mut())
                    .zip(gr)
                    .zip(gn)
                    .zip(&ue.beta[0])
                {
                    *w = ue.alpha * g + n;
                    *g1 = b0 * g;
                }
                if angle {
                    for ((g2, &g), &b1) in v2.iter_mut().zip(gr).zip(&ue.beta[1]) {
                        *g2 = b1 * g;
                    }
                }
            }
        }
        // Gradient w.r.t. the edges the angle block read (e1 in sequential mode, else e).
        let gref: &mut [T] = if o.sequential { &mut *g1 } else { &mut *gnew };

        if let Some(aw) = &lw.angle {
            let e_a = o.e_a;
            // Only the pairs read gm in smooth mode (see `message_rows`).
            let mr = message_rows(o, at);
            let gz4 = &mut gv2[..mr * ed];
            for (g, &d) in gz4.iter_mut().zip(&z4d[..mr * ed]) {
                *g *= d;
            }
            let gm = &mut gm[..ne * ed];
            matmul(mr, ed, ed, gz4, Op::N, aw.w_l2.t(), Op::N, gm, T::zero());
            if !o.smooth_edge_update {
                for k in 0..ne {
                    if !is_ang[k] {
                        add_assign(&mut gref[k * ed..(k + 1) * ed], &gm[k * ed..(k + 1) * ed]);
                    }
                }
            }
            let gek = &mut gek[..na * wq];
            let gej = &mut gej[..na * wq];
            gek.fill(T::zero());
            gej.fill(T::zero());
            gqa.fill(T::zero());
            // Read only to recompute the pairs (a layer with kept pairs drops them).
            let a: &[T] = match (&kept, cx.a_in) {
                (Some(_), _) => &[],
                (None, Some(buf)) => &buf[at.p0 * ad..(at.p0 + np) * ad],
                (None, None) => &a0[..np * ad],
            };
            for (d, &el) in swa.iter_mut().zip(at.aidx) {
                *d = at.geo[el as usize].asw;
            }
            gsw[..na].fill(T::zero());
            let bj = block_j(na);
            for j0 in (0..na).step_by(bj) {
                let j1 = (j0 + bj).min(na);
                let (r0, r1) = (j0 * na, j1 * na);
                let nb = r1 - r0;
                let blk = PairBlock {
                    j0,
                    j1,
                    a: if kept.is_some() {
                        &[]
                    } else {
                        &a[r0 * ad..r1 * ad]
                    },
                    cos: &cos[r0..r1],
                    sw: swa,
                };
                let fwd = match &kept {
                    Some(k) => PairRows {
                        p1: &k.p1[r0 * ed..r1 * ed],
                        p1d: &k.p1d[r0 * ed..r1 * ed],
                        p2d: &k.p2d[r0 * ad..r1 * ad],
                    },
                    None => {
                        let fused = fused_block(
                            cx,
                            aw,
                            na,
                            &blk,
                            ek,
                            ej,
                            swa,
                            PairFwdOut {
                                p1: Some(&mut p1[..nb * ed]),
                                p1d: Some(&mut p1d[..nb * ed]),
                                p2d: Some(&mut p2d[..nb * ad]),
                                at: None,
                                m: None,
                                stream: false,
                            },
                        );
                        if !fused {
                            angle_block_forward(
                                cx,
                                aw,
                                na,
                                &blk,
                                ek,
                                ej,
                                &mut p2[..nb * ad],
                                Some(&mut p2d[..nb * ad]),
                                o.sequential.then(|| &mut at_blk[..nb * ad]),
                                &mut p1[..nb * ed],
                                Some(&mut p1d[..nb * ed]),
                            );
                        }
                        PairRows {
                            p1: &p1[..nb * ed],
                            p1d: &p1d[..nb * ed],
                            p2d: &p2d[..nb * ad],
                        }
                    }
                };
                let bufs = BlockGrad {
                    gp1: &mut gp1[..nb * ed],
                    gp2: &mut gp2[..nb * ad],
                    gat: &mut gat[..nb * ad],
                    gp: &mut gp[..nb * wq],
                    gsw: &mut gsw[..na],
                };
                angle_block_backward(
                    cx,
                    aw,
                    at,
                    &blk,
                    gm,
                    fwd,
                    bufs,
                    &mut ga[r0 * ad..r1 * ad],
                    &mut gcos[r0..r1],
                    gek,
                    gej,
                    gg,
                );
            }
            for (&g, &el) in gsw.iter().zip(at.aidx) {
                gg[el as usize].asw += g;
            }
            // The node term sees every pair: Σ_jk = Σ_k (Σ_j).
            for row in gek.chunks_exact(wq) {
                add_assign(gqa, row);
            }
            // Angle-edge inputs.
            let gea = &mut gea[..na * e_a];
            matmul(na, e_a, wq, gek, Op::N, aw.wik.t(), Op::N, gea, T::zero());
            matmul(na, e_a, wq, gej, Op::N, aw.wij.t(), Op::N, gea, T::one());
            match o.compress {
                Compress::None | Compress::Split => {
                    for jj in 0..na {
                        let el = at.aidx[jj] as usize;
                        add_assign(
                            &mut gref[el * ed..el * ed + e_a],
                            &gea[jj * e_a..(jj + 1) * e_a],
                        );
                    }
                }
                Compress::Linear => {
                    let wce = aw.w_ce.as_ref().map_or(&[][..], |w| w.t());
                    let geg = &mut geg[..na * ed];
                    matmul(na, ed, e_a, gea, Op::N, wce, Op::N, geg, T::zero());
                    for jj in 0..na {
                        let el = at.aidx[jj] as usize;
                        add_assign(
                            &mut gref[el * ed..(el + 1) * ed],
                            &geg[jj * ed..(jj + 1) * ed],
                        );
                    }
                }
            }
        }

        // Edge self.
        let yd = &edges.yd[..ne * ed];
        if o.sequential {
            for ((gr, g1r), dr) in gy
                .chunks_exact_mut(ed)
                .zip(g1.chunks_exact(ed))
                .zip(yd.chunks_exact(ed))
            {
                for (((g, &a), &d), &s0) in gr.iter_mut().zip(g1r).zip(dr).zip(&ue.beta[0]) {
                    *g = (s0 * a) * d;
                }
            }
            gnew.copy_from_slice(g1);
        } else {
            for ((g, &a), &d) in gy.iter_mut().zip(gv1.iter()).zip(yd) {
                *g = a * d;
            }
        }
        matmul(ne, ed, ed, gy, Op::N, lw.w_ee_e.t(), Op::N, gnew, T::one());
        ge.copy_from_slice(gnew);
    } else {
        // Nothing read this layer's edge or angle outputs: only the node terms carry gradient.
        ge.copy_from_slice(gnode);
        ga.fill(T::zero());
        gcos[..np].fill(T::zero());
        gy.fill(T::zero());
        gqa.fill(T::zero());
    }

    gq.fill(T::zero());
    for k in 0..ne {
        let row = &mut dp[k * w..(k + 1) * w];
        row[..hn].copy_from_slice(&gz3[k * hn..(k + 1) * hn]);
        row[hn..].copy_from_slice(&gy[k * ed..(k + 1) * ed]);
        add_assign(gq, row);
    }
    if lw.angle.is_none() {
        gqa.fill(T::zero());
    }
}

/// Layer-0 tail of one atom: ∂L/∂e⁰ and ∂L/∂cos (left in `s.gcos` by [`atom_backward`])
/// into geometry gradients.
#[inline(always)]
fn initial_backward<T: Real>(
    cx: &LayerCtx<T>,
    at: &Atom<T>,
    ge: &[T],
    gg: &mut [GeoGrad<T>],
    s: &mut Scratch<T>,
) {
    let o = cx.o;
    let ed = o.e_dim;
    let ee = &cx.par.edge_embd;
    for k in 0..at.ne {
        let mut acc = T::zero();
        for c in 0..ed {
            let d = if o.edge_init_use_dist {
                T::one()
            } else {
                s.e0d[k * ed + c]
            };
            acc += ge[k * ed + c] * d * ee.w[c];
        }
        gg[k].ein += acc;
    }
    if o.update_angle {
        let na = at.na;
        geometry::angle_inputs_backward(&s.u[..na], &s.gcos[..na * na], at.aidx, gg);
    }
}

/// Node input of the angle MLPs for the chunk rows `nc` (`m × n_dim`), into `s.c_na`.
#[inline(always)]
fn node_for_angle<T: Real>(o: &Opts, lw: &LayerW<T>, nc: &[T], m: usize, out: &mut [T]) {
    let (n, n_a) = (o.n_dim, o.n_a);
    match o.compress {
        Compress::None | Compress::Split => {
            for k in 0..m {
                out[k * n_a..(k + 1) * n_a].copy_from_slice(&nc[k * n..k * n + n_a]);
            }
        }
        Compress::Linear => {
            let wcn = lw
                .angle
                .as_ref()
                .and_then(|a| a.w_cn.as_deref())
                .unwrap_or(&[]);
            matmul(m, n_a, n, nc, Op::N, wcn, Op::N, out, T::zero());
        }
    }
}

multiversion!(
    /// Forward of chunk `c`: writes the next node rows (`m × n_dim`), the saved per-atom
    /// values, and (when given) the chunk's output edges and angles.
    pub(crate) fn forward_chunk<T: Real>(
        cx: &LayerCtx<T>,
        c: usize,
        n_next: &mut [T],
        save: SaveChunk<T>,
        e_out: Option<&mut [T]>,
        a_out: Option<&mut [T]>,
        s: &mut Scratch<T>,
    ) => forward_chunk_impl
);

#[inline(always)]
fn forward_chunk_impl<T: Real>(
    cx: &LayerCtx<T>,
    c: usize,
    n_next: &mut [T],
    save: SaveChunk<T>,
    mut e_out: Option<&mut [T]>,
    mut a_out: Option<&mut [T]>,
    s: &mut Scratch<T>,
) {
    let o = cx.o;
    let lw = cx.lw;
    let g = cx.g;
    let (n, ed, ad) = (o.n_dim, o.e_dim, o.a_dim);
    let hn = o.heads * n;
    let w = hn + ed;
    let wq = o.w_qa();
    let i0 = c * CHUNK;
    let i1 = (i0 + CHUNK).min(g.nloc);
    let m = i1 - i0;
    let nc = &cx.node[i0 * n..i1 * n];

    // Node self MLP.
    let u1 = &mut s.c_t[..m * n];
    fill_rows(u1, &lw.b_self, m);
    matmul(m, n, n, nc, Op::N, &lw.w_self, Op::N, u1, T::one());
    activate(o.act, u1, Some(&mut save.dact1[..m * n]));
    // Node part of the edge MLPs.
    fill_rows(save.q, &lw.b_ne, m);
    matmul(m, w, n, nc, Op::N, &lw.w_i, Op::N, save.q, T::one());
    if let Some(aw) = &lw.angle {
        node_for_angle(o, lw, nc, m, &mut s.c_na);
        fill_rows(save.qa, &aw.b, m);
        matmul(
            m,
            wq,
            o.n_a,
            &s.c_na,
            Op::N,
            &aw.wn,
            Op::N,
            save.qa,
            T::one(),
        );
    }

    // Per atom.
    let e_base = g.edge_off[i0];
    let p_base = g.pair_off[i0];
    let mut u3 = std::mem::take(&mut s.c_u3);
    let mut sym = std::mem::take(&mut s.c_sym);
    for k in 0..m {
        let i = i0 + k;
        let at = atom(g, i);
        let qa = if wq > 0 {
            &save.qa[k * wq..(k + 1) * wq]
        } else {
            &[][..]
        };
        let hg = &mut save.hg[k * o.w_hg()..(k + 1) * o.w_hg()];
        let np = at.na * at.na;
        let pr = at.p0 - p_base..at.p0 - p_base + np;
        let keep = (!save.p1.is_empty()).then(|| PairRows {
            p1: &mut save.p1[pr.start * ed..pr.end * ed],
            p1d: &mut save.p1d[pr.start * ed..pr.end * ed],
            p2d: &mut save.p2d[pr.start * ad..pr.end * ad],
        });
        let off = at.e0 - e_base;
        let wy = if save.yd.is_empty() { 0 } else { ed };
        let keep_edges = (!save.z3.is_empty()).then(|| EdgeRows {
            yd: &mut save.yd[off * wy..(off + at.ne) * wy],
            z3: &mut save.z3[off * hn..(off + at.ne) * hn],
            z3d: &mut save.z3d[off * hn..(off + at.ne) * hn],
        });
        atom_eval(
            cx,
            &at,
            &save.q[k * w..(k + 1) * w],
            qa,
            &mut u3[k * hn..(k + 1) * hn],
            hg,
            a_out
                .as_deref_mut()
                .map(|ao| &mut ao[pr.start * ad..pr.end * ad]),
            keep,
            keep_edges,
            s,
            false,
        );
        grrg(o, hg, &mut sym[k * o.w_sym()..(k + 1) * o.w_sym()]);
        let rows = off * ed..(off + at.ne) * ed;
        if let Some(eo) = e_out.as_deref_mut() {
            eo[rows.clone()].copy_from_slice(&s.e_tmp[..at.ne * ed]);
        }
        if !save.z4d.is_empty() {
            save.z4d[rows.clone()].copy_from_slice(&s.z4d[..at.ne * ed]);
        }
        if !save.z4.is_empty() {
            save.z4[rows].copy_from_slice(&s.z4[..at.ne * ed]);
        }
    }

    // Symmetrisation MLP and the node update.
    let u2 = &mut n_next[..m * n];
    fill_rows(u2, &lw.b_sym, m);
    matmul(m, n, o.w_sym(), &sym, Op::N, &lw.w_sym, Op::N, u2, T::one());
    activate(o.act, u2, Some(&mut save.dact2[..m * n]));
    let un = &lw.upd_n;
    let u1 = &s.c_t[..m * n];
    for k in 0..m {
        for ch in 0..n {
            let idx = k * n + ch;
            let mut v = un.alpha * nc[idx] + un.beta[0][ch] * u1[idx];
            v += un.beta[1][ch] * u2[idx];
            for h in 0..o.heads {
                v += un.beta[2 + h][ch] * u3[k * hn + h * n + ch];
            }
            u2[idx] = v;
        }
    }
    s.c_u3 = u3;
    s.c_sym = sym;
}

/// Gradient buffers of one chunk in the backward pass.
pub(crate) struct GradChunk<'a, T> {
    /// ∂L/∂ layer-output edges in, ∂L/∂ layer-input edges out (chunk edges × e_dim).
    pub ge: &'a mut [T],
    /// Same for angles (chunk pairs × a_dim).
    pub ga: &'a mut [T],
    pub gg: &'a mut [GeoGrad<T>],
    /// Per-edge ∂L/∂(n_j W_j), chunk edges × (H·n_dim + e_dim).
    pub dp: &'a mut [T],
    /// ∂L/∂n_i from the atom's own terms, `m × n_dim`.
    pub gn_dir: &'a mut [T],
    /// Node block of ∂L/∂hg per atom, `m × 3·n_dim`.
    pub ghg_n: &'a mut [T],
}

multiversion!(
    /// Backward of chunk `c` given `gnext` = ∂L/∂(layer-output node rows of the chunk).
    pub(crate) fn backward_chunk<T: Real>(
        cx: &LayerCtx<T>,
        c: usize,
        save: &LayerSave<T>,
        gnext: &[T],
        io: GradChunk<T>,
        first: bool,
        s: &mut Scratch<T>,
    ) => backward_chunk_impl
);

#[inline(always)]
fn backward_chunk_impl<T: Real>(
    cx: &LayerCtx<T>,
    c: usize,
    save: &LayerSave<T>,
    gnext: &[T],
    io: GradChunk<T>,
    first: bool,
    s: &mut Scratch<T>,
) {
    let o = cx.o;
    let lw = cx.lw;
    let g = cx.g;
    let (n, ed, ad) = (o.n_dim, o.e_dim, o.a_dim);
    let hn = o.heads * n;
    let w = hn + ed;
    let wq = o.w_qa();
    let whg = o.w_hg();
    let wsym = o.w_sym();
    let i0 = c * CHUNK;
    let i1 = (i0 + CHUNK).min(g.nloc);
    let m = i1 - i0;
    let gnext = &gnext[i0 * n..i1 * n];
    let un = &lw.upd_n;

    // Self MLP: gn_dir = α g + (β0 g ⊙ φ') W_selfᵀ.
    let gz = &mut s.c_gz[..m * n];
    for idx in 0..m * n {
        gz[idx] = un.beta[0][idx % n] * gnext[idx] * save.dact1[i0 * n + idx];
        io.gn_dir[idx] = un.alpha * gnext[idx];
    }
    matmul(
        m,
        n,
        n,
        gz,
        Op::N,
        lw.w_self.t(),
        Op::N,
        io.gn_dir,
        T::one(),
    );
    // Symmetrisation MLP: gsym = (β1 g ⊙ φ') W_symᵀ.
    for idx in 0..m * n {
        gz[idx] = un.beta[1][idx % n] * gnext[idx] * save.dact2[i0 * n + idx];
    }
    let gsym = &mut s.c_sym[..m * wsym];
    matmul(m, wsym, n, gz, Op::N, lw.w_sym.t(), Op::N, gsym, T::zero());
    for k in 0..m {
        let i = i0 + k;
        grrg_backward(
            o,
            &save.hg[i * whg..(i + 1) * whg],
            &gsym[k * wsym..(k + 1) * wsym],
            &mut s.c_ghg[k * whg..(k + 1) * whg],
        );
        for h in 0..o.heads {
            for ch in 0..n {
                s.c_u3[k * hn + h * n + ch] = un.beta[2 + h][ch] * gnext[k * n + ch];
            }
        }
    }

    let e_base = g.edge_off[i0];
    let p_base = g.pair_off[i0];
    let mut gq = std::mem::take(&mut s.c_gq);
    let mut gqa = std::mem::take(&mut s.c_gqa);
    let ghg_all = std::mem::take(&mut s.c_ghg);
    let gu3_all = std::mem::take(&mut s.c_u3);
    for k in 0..m {
        let i = i0 + k;
        let at = atom(g, i);
        let qa = if wq > 0 {
            &save.qa[i * wq..(i + 1) * wq]
        } else {
            &[][..]
        };
        // Recompute this atom's intermediates (its u3 and hg are not needed again).
        let rows = at.e0 * ed..(at.e0 + at.ne) * ed;
        if !save.z4d.is_empty() {
            s.z4d[..at.ne * ed].copy_from_slice(&save.z4d[rows.clone()]);
        }
        if !save.z4.is_empty() {
            s.z4[..at.ne * ed].copy_from_slice(&save.z4[rows]);
        }
        let mut t_u3 = std::mem::take(&mut s.t_u3);
        let mut t_hg = std::mem::take(&mut s.t_hg);
        atom_eval(
            cx,
            &at,
            &save.q[i * w..(i + 1) * w],
            qa,
            &mut t_u3,
            &mut t_hg,
            None,
            None,
            None,
            s,
            true,
        );
        s.t_u3 = t_u3;
        s.t_hg = t_hg;
        let eo = (at.e0 - e_base) * ed;
        let po = (at.p0 - p_base) * ad;
        let np = at.na * at.na;
        let eg0 = at.e0 - e_base;
        let pr = at.p0..at.p0 + np;
        let kept = (!save.p1.is_empty()).then(|| PairRows {
            p1: &save.p1[pr.start * ed..pr.end * ed],
            p1d: &save.p1d[pr.start * ed..pr.end * ed],
            p2d: &save.p2d[pr.start * ad..pr.end * ad],
        });
        let er = at.e0..at.e0 + at.ne;
        let wy = if save.yd.is_empty() { 0 } else { ed };
        let kept_edges = cx.edges_kept.then(|| EdgeRows {
            yd: &save.yd[er.start * wy..er.end * wy],
            z3: &save.z3[er.start * hn..er.end * hn],
            z3d: &save.z3d[er.start * hn..er.end * hn],
        });
        atom_backward(
            cx,
            &at,
            &gu3_all[k * hn..(k + 1) * hn],
            &ghg_all[k * whg..(k + 1) * whg],
            &mut io.ge[eo..eo + at.ne * ed],
            &mut io.ga[po..po + np * ad],
            &mut io.dp[eg0 * w..(eg0 + at.ne) * w],
            &mut gq[k * w..(k + 1) * w],
            &mut gqa[k * wq..(k + 1) * wq],
            &mut io.gg[eg0..eg0 + at.ne],
            kept,
            kept_edges,
            s,
        );
        io.ghg_n[k * 3 * n..(k + 1) * 3 * n]
            .copy_from_slice(&ghg_all[k * whg + 3 * ed..(k + 1) * whg]);
        if first {
            initial_backward(
                cx,
                &at,
                &io.ge[eo..eo + at.ne * ed],
                &mut io.gg[eg0..eg0 + at.ne],
                s,
            );
        }
    }
    // Node parts of the edge and angle MLPs.
    matmul(m, n, w, &gq, Op::N, lw.w_i.t(), Op::N, io.gn_dir, T::one());
    if let Some(aw) = &lw.angle {
        let n_a = o.n_a;
        let gna = &mut s.c_gna[..m * n_a];
        matmul(m, n_a, wq, &gqa, Op::N, aw.wn.t(), Op::N, gna, T::zero());
        match o.compress {
            Compress::None | Compress::Split => {
                for k in 0..m {
                    for ch in 0..n_a {
                        io.gn_dir[k * n + ch] += gna[k * n_a + ch];
                    }
                }
            }
            Compress::Linear => {
                let wcn = aw.w_cn.as_ref().map_or(&[][..], |w| w.t());
                matmul(m, n, n_a, gna, Op::N, wcn, Op::N, io.gn_dir, T::one());
            }
        }
    }
    s.c_gq = gq;
    s.c_gqa = gqa;
    s.c_ghg = ghg_all;
    s.c_u3 = gu3_all;
}
