//! DPA3 (DeePMD-kit 3.2 `dpa3` / "repflows") with an exact hand-written backward.
//!
//! Design:
//! - **Only real work.** The frame is turned into a graph of real edges (non-padded,
//!   non-excluded, both ends in the model) and, per centre atom, real angle pairs (angle edges =
//!   real edges among the first `a_sel` slots within `a_rcut`, all `(j, k)` pairs including
//!   `j = k`). DeePMD-kit's normalisation constants still count the padded slots
//!   (`e_sel`, `a_sel`, or `/ sel_reduce_factor` with dynamic selection). Work whose result
//!   nobody reads is not done either: in the parallel update the last layer's edge and angle
//!   outputs are dead (only its node embedding is the descriptor), and layer 0's angle input
//!   is rank one per pair (`cos·w + b`), so its angle products are outer products.
//! - **Fused per centre atom.** A chunk of 16 centres is one rayon task; inside
//!   it every atom's edges and angles are processed together in scratch buffers (no
//!   allocation in the loops). Node terms of the concatenated MLPs are applied once per atom,
//!   neighbour terms once per extended atom (`P = n_ext · W_j`), as DeePMD's `optim_update`.
//!   Chunks are fixed-size, so results are bit-identical for any thread count.
//! - **Ghost rows via [`halo_core::Exchange`].** Before layer l the node embedding's ghost rows
//!   are filled by `forward`; in the backward the gradient w.r.t. every extended row of layer
//!   l (l ≥ 1) is gathered, then folded into owners by `reverse`. Layer 0's node gradient has
//!   no coordinate dependence (type embedding), so its reverse exchange is never issued.
//! - **Angle pairs in cache-sized blocks.** An atom's `na × na` pairs are processed in blocks
//!   of whole `j` rows (~128 pairs): product, activation and reduction into the edge message
//!   in the forward, and the pairs' gradients in the backward, run on data that stays in the
//!   core's caches. The kernels are compiled for AVX2 and AVX-512 too and picked at run time
//!   (`isa.rs`), with identical bits. On AVX-512 CPUs a block of the parallel update runs
//!   through `fused.rs` instead: the forward (silu/silut) and the backward each in one pass
//!   over the block's rows, in registers (other bits, same tolerances).
//! - **Backward = (recompute or read back) + reverse, per layer.** The forward keeps the
//!   layer inputs (node rows and their neighbour terms for all extended atoms, edge and angle
//!   features of layers ≥ 1) and a few per-atom and per-edge vectors. Within a store budget
//!   (default 900 MiB; see [`Dpa3::set_store_budget`]) it also keeps, first, each layer's
//!   edge-MLP intermediates (φ' of the edge self MLP, the node–edge message and its φ':
//!   `e_dim + 2 H·n_dim` values per edge) and then the angle pairs' `p1`, `φ'(p1)`,
//!   `φ'(p2)` (`2 e_dim + a_dim` values per pair, the bulk of the work), last layers first.
//!   The backward recomputes everything else, the edge MLPs and pairs of layers beyond the
//!   budget, in scratch right before differentiating them. Kept or
//!   recomputed, the bits are the same. Large per-evaluation buffers come from a pool that
//!   outlives the evaluation, so MD steps do not page-fault them in again. Neighbour
//!   contributions are scattered through a reverse edge list (owner-computes, no atomics,
//!   deterministic order).
//! - **Precision.** Everything runs in the model precision `T`; extended coordinates are cast
//!   to `T` before forming `r_j − r_i`, as DeePMD-kit's `cast_precision`. Coordinate gradients
//!   are summed per atom in `f64`.

// The kernels index several arrays with one counter, mirroring the formulas.
#![allow(clippy::needless_range_loop)]

mod config;
mod fused;
mod geometry;
mod layer;
mod util;

use crate::descriptor::DescriptorInput;
use crate::import::{Dict, ModelError};
use crate::isa::multiversion;
use crate::linalg::{matmul, Op};
use crate::Real;
use config::{Opts, Parsed};
use geometry::{GeoGrad, Graph};
use halo_core::{Exchange, ExchangeError, ExchangeSlot};
use layer::{GradChunk, LayerCtx, LayerSave, ScratchPool};
use rayon::prelude::*;
use util::{chunk_bounds, split_rows, uniform_bounds, ABuf, BufPool, CHUNK, ROW_CHUNK};

/// A DPA3 descriptor ready to evaluate in precision `T`.
#[derive(Debug, Clone)]
pub struct Dpa3<T: Real> {
    p: Parsed<T>,
    /// See [`Dpa3::set_store_budget`].
    store_budget: usize,
    /// Kept pairs and layer outputs of earlier evaluations, reused by the next one.
    pool: BufPool<T>,
}

/// Default store budget of one DPA3 evaluation: 900 MiB. At liquid-water density with
/// DPA3's usual sizes it holds every layer's edge intermediates up to about 1400 atoms in
/// f32 (700 in f64) and, at 192 atoms, every layer's angle pairs in f32 and three layers'
/// in f64. Sized so halomd's peak stays under a tenth of DeePMD-kit's TorchScript model on
/// the same frame (1.08 GB against ≥ 12.3 GB at 192 atoms in f64).
pub const DEFAULT_STORE_BUDGET: usize = 900 << 20;

/// Per layer, whether its save keeps its edge and its angle-pair intermediates.
struct Kept {
    edges: Vec<bool>,
    pairs: Vec<bool>,
}

/// What [`Dpa3::forward`] keeps for [`Dpa3::backward`].
#[derive(Debug, Clone)]
pub struct Dpa3State<T> {
    graph: Graph<T>,
    /// Node embedding entering layer l, all extended rows (`nall × n_dim`), l = 0..L.
    nodes: Vec<Vec<T>>,
    /// Their neighbour terms `node · W_j` (`nall × (H·n_dim + e_dim)`), l = 0..L.
    pms: Vec<Vec<T>>,
    /// Edge features entering layer l = 1..L (`n_edges × e_dim`), at index l − 1.
    edges: Vec<ABuf<T>>,
    /// Angle features entering layer l = 1..L (`n_pairs × a_dim`), at index l − 1; empty
    /// for a layer that keeps its angle pairs (its backward does not read them).
    angles: Vec<ABuf<T>>,
    saves: Vec<LayerSave<T>>,
    /// Per-thread kernel buffers, reused by every layer of the forward and the backward.
    scratch: ScratchPool<T>,
}

impl<T> Dpa3State<T> {
    /// Heap bytes held (for memory accounting).
    pub fn bytes(&self) -> usize {
        let t = std::mem::size_of::<T>();
        self.graph.bytes()
            + self.nodes.iter().map(|v| v.len() * t).sum::<usize>()
            + self.pms.iter().map(|v| v.len() * t).sum::<usize>()
            + self.edges.iter().map(|v| v.len() * t).sum::<usize>()
            + self.angles.iter().map(|v| v.len() * t).sum::<usize>()
            + self.saves.iter().map(LayerSave::bytes).sum::<usize>()
    }

    /// Number of real edges in the frame.
    pub fn n_edges(&self) -> usize {
        self.graph.edge_j.len()
    }

    /// Number of real angle pairs (j, k) in the frame.
    pub fn n_angle_pairs(&self) -> usize {
        self.graph.pair_off.last().copied().unwrap_or(0)
    }
}

fn input_err(msg: impl Into<String>) -> ExchangeError {
    ExchangeError(format!("invalid DPA3 descriptor input: {}", msg.into()))
}

impl<T: Real> Dpa3<T> {
    /// Reads a `model.descriptor` node of type `dpa3` (@version ≤ 2) whose precision is `T`.
    pub fn from_dict(d: &Dict) -> Result<Self, ModelError> {
        Ok(Dpa3 {
            p: config::parse(d, true)?,
            store_budget: DEFAULT_STORE_BUDGET,
            pool: BufPool::new(),
        })
    }

    /// Like [`Dpa3::from_dict`] but evaluates in `T` whatever the file's precision (weights
    /// are cast); for testing a float32 model in float64.
    pub fn from_dict_any_precision(d: &Dict) -> Result<Self, ModelError> {
        Ok(Dpa3 {
            p: config::parse(d, false)?,
            store_budget: DEFAULT_STORE_BUDGET,
            pool: BufPool::new(),
        })
    }

    /// Width of a descriptor row: `n_dim`, plus `n_dim` with `concat_output_tebd`.
    pub fn dim_out(&self) -> usize {
        let n = self.p.o.n_dim;
        if self.p.o.concat_output_tebd {
            2 * n
        } else {
            n
        }
    }

    /// Neighbour cutoff (`e_rcut`, Å).
    pub fn rcut(&self) -> f64 {
        self.p.o.e_rcut
    }

    /// Width of the distance-sorted, mixed-type neighbour list the caller must supply (`e_sel`).
    pub fn nnei(&self) -> usize {
        self.p.o.e_sel
    }

    /// Number of atom types.
    pub fn ntypes(&self) -> usize {
        self.p.o.ntypes
    }

    /// Number of RepFlow layers.
    pub fn nlayers(&self) -> usize {
        self.p.o.nlayers
    }

    /// Node embedding width (`n_dim`).
    pub fn n_dim(&self) -> usize {
        self.p.o.n_dim
    }

    /// The ghost exchanges this descriptor issues: the node embedding before each layer.
    pub fn comm_slots(&self) -> Vec<ExchangeSlot> {
        (0..self.p.o.nlayers)
            .map(|l| ExchangeSlot {
                name: format!("repflow.node_ebd.layer{l}"),
                dtype: T::DTYPE,
                width: self.p.o.n_dim,
                forward: true,
                reverse: true,
            })
            .collect()
    }

    fn check_input(&self, input: &DescriptorInput, ex: &dyn Exchange) -> Result<(), ExchangeError> {
        let nall = input.coords.len();
        let nloc = input.nloc;
        if input.types.len() != nall {
            return Err(input_err(format!(
                "{} types for {nall} coordinates",
                input.types.len()
            )));
        }
        if nloc > nall {
            return Err(input_err(format!("nloc {nloc} > nall {nall}")));
        }
        if input.nnei != self.p.o.e_sel {
            return Err(input_err(format!(
                "neighbour list width {} (DPA3 needs e_sel = {})",
                input.nnei, self.p.o.e_sel
            )));
        }
        if input.nlist.len() != nloc * input.nnei {
            return Err(input_err(format!(
                "neighbour list has {} entries, expected nloc × nnei = {}",
                input.nlist.len(),
                nloc * input.nnei
            )));
        }
        if let Some(&j) = input
            .nlist
            .iter()
            .find(|&&j| j < -1 || j as i64 >= nall as i64)
        {
            return Err(input_err(format!("neighbour index {j} outside -1..{nall}")));
        }
        let nt = self.p.o.ntypes as i32;
        if let Some(&t) = input.types.iter().find(|&&t| t < -1 || t >= nt) {
            return Err(input_err(format!("atom type {t} outside -1..{nt}")));
        }
        if ex.nloc() != nloc || ex.nall() != nall {
            return Err(input_err(format!(
                "exchange covers {}/{} rows, input has nloc {nloc}, nall {nall}",
                ex.nloc(),
                ex.nall()
            )));
        }
        Ok(())
    }

    /// Which layers keep their edge intermediates and which their angle-pair intermediates
    /// for the backward, within the store budget. Edges first: per byte they spare the most
    /// recomputation (a layer's edge MLPs cost about half of its pairs' products at a
    /// quarter of the bytes). Then pairs, the last layers first (layer 0's pairs are the
    /// cheapest to recompute: its angle products are outer products). Sequential mode
    /// recomputes its edges (the message reads the updated edges there).
    fn kept_layers(&self, n_pairs: usize, n_edges: usize) -> Kept {
        let o = &self.p.o;
        let sz = std::mem::size_of::<T>();
        let hn = o.heads * o.n_dim;
        let mut kept = Kept {
            edges: vec![false; o.nlayers],
            pairs: vec![false; o.nlayers],
        };
        let mut left = self.store_budget;
        for l in (0..o.nlayers).rev() {
            let wy = if o.edge_update(l) { o.e_dim } else { 0 };
            let bytes = n_edges * (wy + 2 * hn) * sz;
            if !o.sequential && bytes <= left {
                kept.edges[l] = true;
                left -= bytes;
            }
        }
        let per_layer = n_pairs * (2 * o.e_dim + o.a_dim) * sz;
        for l in (0..o.nlayers).rev() {
            let angle_block = self.p.layers[l].angle.is_some() && o.edge_update(l);
            if angle_block && per_layer <= left {
                kept.pairs[l] = true;
                left -= per_layer;
            }
        }
        kept
    }

    /// Sets how many bytes of angle-pair intermediates an evaluation may keep from its
    /// forward for its backward instead of recomputing them (default
    /// [`DEFAULT_STORE_BUDGET`]); the results are the same bits either way.
    pub fn set_store_budget(&mut self, bytes: usize) {
        self.store_budget = bytes;
    }

    /// `P = node · W_j` for all extended rows.
    fn neighbour_terms(&self, l: usize, node: &[T], nall: usize) -> Vec<T> {
        let o = &self.p.o;
        let n = o.n_dim;
        let w = o.w_ne();
        let wj = &self.p.layers[l].w_j;
        let mut pm = vec![T::zero(); nall * w];
        pm.par_chunks_mut(ROW_CHUNK * w)
            .enumerate()
            .for_each(|(c, out)| {
                let rows = out.len() / w;
                let r0 = c * ROW_CHUNK;
                matmul(
                    rows,
                    w,
                    n,
                    &node[r0 * n..(r0 + rows) * n],
                    Op::N,
                    wj,
                    Op::N,
                    out,
                    T::zero(),
                );
            });
        pm
    }

    /// Computes the descriptor (`nloc × dim_out`, row-major) and what the backward needs.
    pub fn forward(
        &self,
        input: &DescriptorInput,
        ex: &mut dyn Exchange,
    ) -> Result<(Vec<T>, Dpa3State<T>), ExchangeError> {
        self.check_input(input, ex)?;
        let p = &self.p;
        let o = &p.o;
        let (n, ed, ad) = (o.n_dim, o.e_dim, o.a_dim);
        let hn = o.heads * n;
        let nall = input.coords.len();
        let nloc = input.nloc;
        let coords: Vec<[T; 3]> = input
            .coords
            .iter()
            .map(|c| [T::of(c[0]), T::of(c[1]), T::of(c[2])])
            .collect();
        let graph = geometry::build(o, &p.davg, &p.dstd, &coords, input.types, nloc, input.nlist);
        let n_edges = graph.edge_j.len();
        let n_pairs = graph.pair_off[nloc];
        let eb = chunk_bounds(&graph.edge_off);
        let pb = chunk_bounds(&graph.pair_off);
        let ab = uniform_bounds(nloc, CHUNK);

        // Layer-0 node embedding: φ(tebd[type]); the padding row for type −1.
        let mut node0 = vec![T::zero(); nall * n];
        for i in 0..nloc {
            let t = input.types[i];
            let t = if t < 0 { o.ntypes } else { t as usize };
            for c in 0..n {
                node0[i * n + c] = o.act.apply(p.tebd[t * n + c]);
            }
        }
        let mut nodes: Vec<Vec<T>> = Vec::with_capacity(o.nlayers);
        let mut pms: Vec<Vec<T>> = Vec::with_capacity(o.nlayers);
        let mut edges: Vec<ABuf<T>> = Vec::new();
        let mut angles: Vec<ABuf<T>> = Vec::new();
        let mut saves: Vec<LayerSave<T>> = Vec::with_capacity(o.nlayers);
        let mut cur = node0;
        let mut desc_rows = Vec::new();
        let scratch = ScratchPool::new(graph.max_ne, graph.max_na);
        let kept = self.kept_layers(n_pairs, n_edges);
        for l in 0..o.nlayers {
            ex.forward(T::rows_mut(&mut cur), n)?;
            let pm = self.neighbour_terms(l, &cur, nall);
            let last = l + 1 == o.nlayers;
            let mut next = vec![T::zero(); if last { nloc * n } else { nall * n }];
            // Every row of these is written by the layer (pooled, so not zeroed).
            let pool = &self.pool;
            let mut e_next = pool.take_dirty(if last { 0 } else { n_edges * ed });
            let mut a_next = pool.take_dirty(if o.angles_read(l) { n_pairs * ad } else { 0 });
            let angle_block = p.layers[l].angle.is_some() && o.edge_update(l);
            let z4_rows = if angle_block { n_edges * ed } else { 0 };
            let mut save = LayerSave {
                dact1: vec![T::zero(); nloc * n],
                dact2: vec![T::zero(); nloc * n],
                q: vec![T::zero(); nloc * o.w_ne()],
                qa: vec![T::zero(); nloc * o.w_qa()],
                hg: vec![T::zero(); nloc * o.w_hg()],
                z4d: vec![T::zero(); z4_rows],
                z4: vec![T::zero(); if o.sequential { z4_rows } else { 0 }],
                p1: pool.take_dirty(if kept.pairs[l] { n_pairs * ed } else { 0 }),
                p1d: pool.take_dirty(if kept.pairs[l] { n_pairs * ed } else { 0 }),
                p2d: pool.take_dirty(if kept.pairs[l] { n_pairs * ad } else { 0 }),
                yd: pool.take_dirty(if kept.edges[l] && o.edge_update(l) {
                    n_edges * ed
                } else {
                    0
                }),
                z3: pool.take_dirty(if kept.edges[l] { n_edges * hn } else { 0 }),
                z3d: pool.take_dirty(if kept.edges[l] { n_edges * hn } else { 0 }),
            };
            {
                let cx = LayerCtx::new(
                    o,
                    p,
                    l,
                    &graph,
                    &cur,
                    &pm,
                    (l > 0).then(|| edges[l - 1].as_slice()),
                    (l > 0 && o.angles_read(l - 1)).then(|| angles[l - 1].as_slice()),
                );
                let e_parts: Vec<Option<&mut [T]>> = if last {
                    (0..ab.len() - 1).map(|_| None).collect()
                } else {
                    split_rows(&mut e_next, &eb, ed)
                        .into_iter()
                        .map(Some)
                        .collect()
                };
                let a_parts: Vec<Option<&mut [T]>> = if a_next.is_empty() {
                    (0..ab.len() - 1).map(|_| None).collect()
                } else {
                    split_rows(&mut a_next, &pb, ad)
                        .into_iter()
                        .map(Some)
                        .collect()
                };
                let tasks: Vec<_> = split_rows(&mut next[..nloc * n], &ab, n)
                    .into_iter()
                    .zip(save.chunks(o, &ab, &eb, &pb))
                    .zip(e_parts)
                    .zip(a_parts)
                    .enumerate()
                    .collect();
                tasks
                    .into_par_iter()
                    .for_each(|(c, (((nn, save), eo), ao))| {
                        scratch.with(o, |s| layer::forward_chunk(&cx, c, nn, save, eo, ao, s));
                    });
            }
            // A layer that keeps its pairs never reads its input angles again.
            if kept.pairs[l] && l > 0 && o.update_angle {
                pool.give(std::mem::take(&mut angles[l - 1]));
            }
            saves.push(save);
            nodes.push(cur);
            pms.push(pm);
            if !last {
                edges.push(e_next);
                if o.update_angle {
                    angles.push(a_next);
                }
            }
            if last {
                desc_rows = next;
                cur = Vec::new();
            } else {
                cur = next;
            }
        }
        let _ = cur;

        let dim = self.dim_out();
        let desc = if o.concat_output_tebd {
            let mut d = vec![T::zero(); nloc * dim];
            for i in 0..nloc {
                d[i * dim..i * dim + n].copy_from_slice(&desc_rows[i * n..(i + 1) * n]);
                let t = input.types[i];
                let t = if t < 0 { o.ntypes } else { t as usize };
                d[i * dim + n..(i + 1) * dim].copy_from_slice(&p.tebd[t * n..(t + 1) * n]);
            }
            d
        } else {
            desc_rows
        };
        let state = Dpa3State {
            graph,
            nodes,
            pms,
            edges,
            angles,
            saves,
            scratch,
        };
        Ok((desc, state))
    }

    /// Given `d_desc` = ∂L/∂D (`nloc × dim_out`), returns ∂L/∂x of every extended atom.
    pub fn backward(
        &self,
        input: &DescriptorInput,
        state: &Dpa3State<T>,
        d_desc: &[T],
        ex: &mut dyn Exchange,
    ) -> Result<Vec<[f64; 3]>, ExchangeError> {
        self.check_input(input, ex)?;
        let p = &self.p;
        let o = &p.o;
        let (n, ed, ad) = (o.n_dim, o.e_dim, o.a_dim);
        let w = o.w_ne();
        let nall = input.coords.len();
        let nloc = input.nloc;
        let dim = self.dim_out();
        if d_desc.len() != nloc * dim {
            return Err(input_err(format!(
                "descriptor gradient has {} entries, expected {}",
                d_desc.len(),
                nloc * dim
            )));
        }
        let graph = &state.graph;
        if graph.nall != nall || graph.nloc != nloc {
            return Err(input_err("state does not belong to this input"));
        }
        let n_edges = graph.edge_j.len();
        let n_pairs = graph.pair_off[nloc];
        let eb = chunk_bounds(&graph.edge_off);
        let pb = chunk_bounds(&graph.pair_off);
        let ab = uniform_bounds(nloc, CHUNK);

        let mut gnext = vec![T::zero(); nloc * n];
        for i in 0..nloc {
            gnext[i * n..(i + 1) * n].copy_from_slice(&d_desc[i * dim..i * dim + n]);
        }
        let pool = &self.pool;
        let mut ge = pool.take_zeroed(n_edges * ed);
        let mut ga = pool.take_zeroed(if o.update_angle { n_pairs * ad } else { 0 });
        let mut gg = vec![GeoGrad::<T>::default(); n_edges];
        let mut dp = pool.take_zeroed(n_edges * w);
        let mut gn_dir = vec![T::zero(); nloc * n];
        let mut ghg_n = vec![T::zero(); nloc * 3 * n];
        let mut gn_ext = vec![T::zero(); nall * n];
        for l in (0..o.nlayers).rev() {
            let node = &state.nodes[l];
            let pm = &state.pms[l];
            {
                let mut cx = LayerCtx::new(
                    o,
                    p,
                    l,
                    graph,
                    node,
                    pm,
                    (l > 0).then(|| state.edges[l - 1].as_slice()),
                    (l > 0 && o.angles_read(l - 1)).then(|| state.angles[l - 1].as_slice()),
                );
                cx.pairs_kept = !state.saves[l].p1.is_empty();
                cx.edges_kept = !state.saves[l].z3.is_empty();
                let ga_parts: Vec<&mut [T]> = if o.update_angle {
                    split_rows(&mut ga, &pb, ad)
                } else {
                    (0..ab.len() - 1).map(|_| &mut [][..]).collect()
                };
                let tasks: Vec<_> = split_rows(&mut ge, &eb, ed)
                    .into_iter()
                    .zip(ga_parts)
                    .zip(split_rows(&mut gg, &eb, 1))
                    .zip(split_rows(&mut dp, &eb, w))
                    .zip(split_rows(&mut gn_dir, &ab, n))
                    .zip(split_rows(&mut ghg_n, &ab, 3 * n))
                    .enumerate()
                    .collect();
                let save = &state.saves[l];
                let gnext = &gnext;
                let scratch = &state.scratch;
                tasks
                    .into_par_iter()
                    .for_each(|(c, (((((ge, ga), gg), dp), gn_dir), ghg_n))| {
                        let io = GradChunk {
                            ge,
                            ga,
                            gg,
                            dp,
                            gn_dir,
                            ghg_n,
                        };
                        scratch.with(o, |s| {
                            layer::backward_chunk(&cx, c, save, gnext, io, l == 0, s)
                        });
                    });
            }
            if l > 0 {
                self.gather_node_grad(l, graph, &dp, &gn_dir, &ghg_n, &mut gn_ext);
                ex.reverse(T::rows_mut(&mut gn_ext), n)?;
                gnext.copy_from_slice(&gn_ext[..nloc * n]);
            }
        }
        let grad = self.position_gradients(graph, &gg);
        for v in [ge, ga, dp] {
            self.pool.give(v);
        }
        Ok(grad)
    }

    /// Returns a finished evaluation's large buffers to the descriptor's pool, for the next
    /// evaluation to reuse instead of page-faulting in fresh ones (dropping `state` is fine
    /// too, just slower for the next one).
    pub fn recycle(&self, state: Dpa3State<T>) {
        for v in state.edges.into_iter().chain(state.angles) {
            self.pool.give(v);
        }
        for s in state.saves {
            for v in [s.p1, s.p1d, s.p2d, s.yd, s.z3, s.z3d] {
                self.pool.give(v);
            }
        }
    }

    /// ∂L/∂n_ext of layer l for every extended row: own terms (local rows) plus, through the
    /// reverse edge list, every edge that read the row as a neighbour.
    fn gather_node_grad(
        &self,
        l: usize,
        graph: &Graph<T>,
        dp: &[T],
        gn_dir: &[T],
        ghg_n: &[T],
        gn_ext: &mut [T],
    ) {
        let o = &self.p.o;
        let n = o.n_dim;
        let w = o.w_ne();
        let wj = self.p.layers[l].w_j.t();
        gn_ext
            .par_chunks_mut(ROW_CHUNK * n)
            .enumerate()
            .for_each_init(
                || {
                    (
                        vec![T::zero(); ROW_CHUNK * w],
                        vec![T::zero(); ROW_CHUNK * n],
                    )
                },
                |(acc_p, acc_n), (c, out)| {
                    gather_rows(o, graph, wj, dp, gn_dir, ghg_n, c, out, acc_p, acc_n);
                },
            );
    }

    /// Chains the per-edge geometry gradients to the positions of both ends, in `f64`.
    fn position_gradients(&self, graph: &Graph<T>, gg: &[GeoGrad<T>]) -> Vec<[f64; 3]> {
        let p = &self.p;
        let o = &p.o;
        let n_edges = graph.edge_j.len();
        let mut gd = vec![[0.0f64; 3]; n_edges];
        let eb = chunk_bounds(&graph.edge_off);
        split_rows(&mut gd, &eb, 1)
            .into_par_iter()
            .enumerate()
            .for_each(|(c, out)| {
                let e0 = eb[c];
                for (k, slot) in out.iter_mut().enumerate() {
                    let e = e0 + k;
                    // Real edges only exist for centres of a model type.
                    let ti = graph.centre_type[graph.edge_i[e] as usize] as usize;
                    let (avg, std) =
                        geometry::edge_stats(o, &p.davg, &p.dstd, ti, graph.edge_slot[e] as usize);
                    let g = geometry::edge_backward(o, &graph.geo[e], &gg[e], avg, std);
                    *slot = [g[0].f64(), g[1].f64(), g[2].f64()];
                }
            });
        let nall = graph.nall;
        let nloc = graph.nloc;
        let mut out = vec![[0.0f64; 3]; nall];
        out.par_chunks_mut(ROW_CHUNK)
            .enumerate()
            .for_each(|(c, rows)| {
                for (r, dst) in rows.iter_mut().enumerate() {
                    let t = c * ROW_CHUNK + r;
                    let mut acc = [0.0f64; 3];
                    for &e in &graph.rev_edge[graph.rev_off[t]..graph.rev_off[t + 1]] {
                        let g = gd[e as usize];
                        for x in 0..3 {
                            acc[x] += g[x];
                        }
                    }
                    if t < nloc {
                        for g in &gd[graph.edge_off[t]..graph.edge_off[t + 1]] {
                            for x in 0..3 {
                                acc[x] -= g[x];
                            }
                        }
                    }
                    *dst = acc;
                }
            });
        out
    }
}

multiversion!(
    /// Rows `c·ROW_CHUNK ..` of ∂L/∂n_ext (see [`Dpa3::gather_node_grad`]) into `out`; `wj`
    /// is `W_jᵀ`.
    fn gather_rows<T: Real>(
        o: &Opts,
        graph: &Graph<T>,
        wj: &[T],
        dp: &[T],
        gn_dir: &[T],
        ghg_n: &[T],
        c: usize,
        out: &mut [T],
        acc_p: &mut [T],
        acc_n: &mut [T],
    ) => gather_rows_impl
);

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn gather_rows_impl<T: Real>(
    o: &Opts,
    graph: &Graph<T>,
    wj: &[T],
    dp: &[T],
    gn_dir: &[T],
    ghg_n: &[T],
    c: usize,
    out: &mut [T],
    acc_p: &mut [T],
    acc_n: &mut [T],
) {
    let n = o.n_dim;
    let w = o.w_ne();
    let inv = T::of(1.0 / o.ne_norm.sqrt());
    let nloc = graph.nloc;
    let rows = out.len() / n;
    let t0 = c * ROW_CHUNK;
    let acc_p = &mut acc_p[..rows * w];
    let acc_n = &mut acc_n[..rows * n];
    acc_p.fill(T::zero());
    acc_n.fill(T::zero());
    for r in 0..rows {
        let t = t0 + r;
        let rev = &graph.rev_edge[graph.rev_off[t]..graph.rev_off[t + 1]];
        for (x, &e) in rev.iter().enumerate() {
            let e = e as usize;
            // The edges of a row are scattered over `dp`: fetch the next one's row early.
            if let Some(&nx) = rev.get(x + 1) {
                prefetch(&dp[nx as usize * w..(nx as usize + 1) * w]);
            }
            let src = &dp[e * w..(e + 1) * w];
            let dst = &mut acc_p[r * w..(r + 1) * w];
            for k in 0..w {
                dst[k] += src[k];
            }
            let gk = &graph.geo[e];
            let coef = gk.sw * inv;
            let i = graph.edge_i[e] as usize;
            let gh = &ghg_n[i * 3 * n..(i + 1) * 3 * n];
            let dst = &mut acc_n[r * n..(r + 1) * n];
            for k in 0..n {
                dst[k] +=
                    coef * (gk.h2[0] * gh[k] + gk.h2[1] * gh[n + k] + gk.h2[2] * gh[2 * n + k]);
            }
        }
    }
    for r in 0..rows {
        let t = t0 + r;
        let row = &mut out[r * n..(r + 1) * n];
        if t < nloc {
            row.copy_from_slice(&gn_dir[t * n..(t + 1) * n]);
        } else {
            row.fill(T::zero());
        }
        for k in 0..n {
            row[k] += acc_n[r * n + k];
        }
    }
    matmul(rows, n, w, acc_p, Op::N, wj, Op::N, out, T::one());
}

/// Asks the CPU to bring `v`'s cache lines in (a hint: no effect on results).
#[inline(always)]
fn prefetch<T>(v: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let p = v.as_ptr().cast::<i8>();
        for off in (0..std::mem::size_of_val(v)).step_by(64) {
            // SAFETY: a prefetch never faults and never changes memory; the address is
            // within `v`.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.add(off)) };
        }
    }
}
