//! The `se_e2_a` descriptor (`deepmd/dpmodel/descriptor/se_e2_a.py::DescrptSeA`) with its
//! exact backward.
//!
//! For centre atom `i` of type `ti` and its typed neighbour list of `nnei = Σ sel` slots:
//! 1. `R̂_s = (R(x_j − x_i) − davg[ti, s]) / dstd[ti, s]`, zeroed for excluded type pairs;
//!    empty slots have `R = 0`, so their rows are `−davg/dstd` (not zero: they contribute).
//! 2. For each section `t`: `G = EmbNet_{t or (ti, t)}(R̂[:, 0])`, `gr += Gᵀ·R̂`.
//! 3. `gr /= nnei`; `D[g·axis + a] = Σ_c gr[g, c]·gr[a, c]` for `a < axis_neuron`.
//!
//! Every centre atom is independent, so the model runs forward and backward per atom, in
//! chunks whose per-atom saved state lives in a [`SeAScratch`] reused across chunks. The
//! backward yields `∂e/∂d` per neighbour slot: the pair gradients from which forces and the
//! per-atom virial follow without any cross-atom state.

use super::env_mat::{env_row, env_row_backward, Switch};
use super::DescriptorInput;
use crate::exclude::PairExclude;
use crate::import::{Dict, ModelError};
use crate::linalg::{matmul, Op};
use crate::networks::{self, param_count, NetworkCollection, StackBuf};
use crate::{Activation, Real};

/// Keys `DescrptSeA.serialize` writes (plus constructor-only ones).
const KEYS: &[&str] = &[
    "@class",
    "type",
    "@version",
    "rcut",
    "rcut_smth",
    "sel",
    "neuron",
    "axis_neuron",
    "resnet_dt",
    "trainable",
    "type_one_side",
    "exclude_types",
    "env_protection",
    "set_davg_zero",
    "activation_function",
    "precision",
    "spin",
    "env_mat",
    "embeddings",
    "@variables",
    "type_map",
    "compress",
    "ntypes",
    "seed",
];

/// An `se_e2_a` descriptor in precision `T`.
#[derive(Debug, Clone)]
pub struct SeA<T> {
    /// Cutoff radius.
    pub rcut: f64,
    /// Where the switch starts.
    pub rcut_smth: f64,
    /// Slots per neighbour type.
    pub sel: Vec<usize>,
    /// Section starts: `sec[t]..sec[t + 1]` are the type-`t` slots.
    sec: Vec<usize>,
    /// `Σ sel`.
    pub nnei: usize,
    /// Embedding-net widths.
    pub neuron: Vec<usize>,
    /// Columns of `gr` kept on the right of the product (`M2`).
    pub axis_neuron: usize,
    /// Whether the embedding nets use `idt` time steps.
    pub resnet_dt: bool,
    /// One net per neighbour type (true) or per (centre, neighbour) pair (false).
    pub type_one_side: bool,
    /// Excluded type pairs.
    pub exclude: PairExclude,
    /// `env_protection`.
    pub env_protection: f64,
    /// Embedding activation.
    pub activation: Activation,
    /// Whether the file carried a compression table (ignored: the nets are exact).
    pub compressed: bool,
    /// Type names, if the descriptor stores them.
    pub type_map: Option<Vec<String>>,
    switch: Switch,
    /// `davg`, `[ntypes, nnei, 4]`.
    davg: Vec<T>,
    /// `dstd`, `[ntypes, nnei, 4]` (divided by, as DeePMD-kit does, not multiplied).
    dstd: Vec<T>,
    embeddings: NetworkCollection<T>,
}

impl<T: Real> SeA<T> {
    /// Parses the `descriptor` node of a model (`type` `se_e2_a`/`se_a`, @version 1–3).
    pub fn from_dict(d: &Dict) -> Result<Self, ModelError> {
        networks::class(d, "Descriptor")?;
        d.choice("type", &["se_e2_a", "se_a"])?;
        networks::version(d, 3, 1)?;
        d.check_keys(KEYS)?;
        if d.has("spin") {
            return Err(d.err("spin", "spin models are not supported"));
        }
        let rcut = d.f64("rcut")?;
        let rcut_smth = d.f64("rcut_smth")?;
        if !(rcut > 0.0 && rcut.is_finite()) {
            return Err(d.err("rcut", format!("must be positive, found {rcut}")));
        }
        if rcut_smth.is_nan() || rcut_smth >= rcut {
            return Err(d.err(
                "rcut_smth",
                format!("must be below rcut = {rcut}, found {rcut_smth}"),
            ));
        }
        let sel = d.usize_list("sel")?;
        let ntypes = sel.len();
        let nnei: usize = sel.iter().sum();
        if ntypes == 0 || nnei == 0 {
            return Err(d.err("sel", "needs at least one type and one neighbour slot"));
        }
        let mut sec = vec![0];
        for &s in &sel {
            sec.push(sec.last().unwrap_or(&0) + s);
        }
        let neuron = d.usize_list("neuron")?;
        let ng = *neuron
            .last()
            .ok_or_else(|| d.err("neuron", "needs at least one layer"))?;
        let axis_neuron = d.usize("axis_neuron")?;
        if axis_neuron == 0 || axis_neuron > ng {
            return Err(d.err(
                "axis_neuron",
                format!("must lie in 1..={ng} (the last embedding width), found {axis_neuron}"),
            ));
        }
        let type_one_side = d.bool_or("type_one_side", true)?;
        let env_protection = d.f64_or("env_protection", 0.0)?;
        let activation = networks::activation(d, "activation_function")?;
        let type_map = if d.has("type_map") {
            let tm = d.str_list("type_map")?;
            if tm.len() != ntypes {
                return Err(d.err(
                    "type_map",
                    format!("has {} names but sel has {ntypes} types", tm.len()),
                ));
            }
            Some(tm)
        } else {
            None
        };
        let embeddings = NetworkCollection::<T>::parse(&d.get("embeddings")?, "embedding_network")?;
        let ndim = if type_one_side { 1 } else { 2 };
        let path = format!("{}.embeddings", d.path());
        if embeddings.ndim != ndim || embeddings.ntypes != ntypes {
            return Err(ModelError::field(
                path,
                format!(
                    "expected ndim = {ndim} and ntypes = {ntypes} (type_one_side = \
                     {type_one_side}, {ntypes} types in sel), found ndim = {} and ntypes = {}",
                    embeddings.ndim, embeddings.ntypes
                ),
            ));
        }
        for (k, net) in embeddings.networks.iter().enumerate() {
            let net = net.as_ref().ok_or_else(|| {
                ModelError::field(format!("{path}.networks[{k}]"), "missing embedding network")
            })?;
            let widths: Vec<usize> = net.iter().map(|l| l.n_out).collect();
            if net.first().map(|l| l.n_in) != Some(1) || widths != neuron {
                return Err(ModelError::field(
                    format!("{path}.networks[{k}]"),
                    format!("expected an embedding net 1 → {neuron:?}, found widths {widths:?}"),
                ));
            }
        }
        let vars = d.get("@variables")?;
        let davg = vars.array_shaped("davg", &[ntypes, nnei, 4])?;
        let dstd = vars.array_shaped("dstd", &[ntypes, nnei, 4])?;
        if let Some(i) = dstd.data.iter().position(|&x| x == 0.0) {
            return Err(vars.err("dstd", format!("element {i} is zero")));
        }
        Ok(SeA {
            rcut,
            rcut_smth,
            sel,
            sec,
            nnei,
            neuron,
            axis_neuron,
            resnet_dt: d.bool_or("resnet_dt", false)?,
            type_one_side,
            exclude: PairExclude::parse(d, "exclude_types", ntypes)?,
            env_protection,
            activation,
            compressed: d.has("compress"),
            type_map,
            switch: Switch::Poly {
                rs: rcut_smth,
                rc: rcut,
            },
            davg: davg.data.iter().map(|&x| T::of(x)).collect(),
            dstd: dstd.data.iter().map(|&x| T::of(x)).collect(),
            embeddings,
        })
    }

    /// Number of types.
    pub fn ntypes(&self) -> usize {
        self.sel.len()
    }

    /// Width of a descriptor row: `neuron[-1]·axis_neuron`.
    pub fn dim_out(&self) -> usize {
        self.ng() * self.axis_neuron
    }

    fn ng(&self) -> usize {
        *self.neuron.last().unwrap_or(&0)
    }

    /// Number of trainable scalars (embedding nets; statistics excluded).
    pub fn param_count(&self) -> usize {
        self.embeddings
            .networks
            .iter()
            .flatten()
            .map(|n| param_count(n))
            .sum()
    }

    fn net(&self, ti: usize, t: usize) -> &[crate::nn::Layer<T>] {
        let net = if self.type_one_side {
            self.embeddings.get(&[t])
        } else {
            self.embeddings.get(&[ti, t])
        };
        // Presence of every net is checked at load.
        net.unwrap_or(&[])
    }

    /// Scratch for chunks of up to `rows` atoms.
    pub fn scratch(&self, rows: usize) -> SeAScratch<T> {
        SeAScratch {
            atoms: (0..rows)
                .map(|_| AtomState {
                    ti: None,
                    rr: vec![T::zero(); self.nnei * 4],
                    gr: vec![T::zero(); self.ng() * 4],
                    stacks: (0..self.ntypes()).map(|_| StackBuf::new()).collect(),
                })
                .collect(),
            dgr: vec![T::zero(); self.ng() * 4],
            dg: Vec::new(),
            drr: vec![T::zero(); self.nnei * 4],
        }
    }

    /// The pair vector `x_j − x_i` in `T` (coordinates cast first, as DeePMD-kit does) and the
    /// neighbour type, for a slot holding a real neighbour.
    #[inline]
    fn pair(input: &DescriptorInput, i: usize, j: i32) -> Option<([T; 3], usize)> {
        let j = usize::try_from(j).ok()?;
        let tj = usize::try_from(input.types[j]).ok()?;
        let (xi, xj) = (input.coords[i], input.coords[j]);
        Some((
            [
                T::of(xj[0]) - T::of(xi[0]),
                T::of(xj[1]) - T::of(xi[1]),
                T::of(xj[2]) - T::of(xi[2]),
            ],
            tj,
        ))
    }

    /// Descriptor rows of local atoms `first..first + rows` into `out` (`rows × dim_out`),
    /// keeping in `scratch` what [`SeA::backward_chunk`] needs. Atoms of type `-1` get a zero
    /// row. `input.nlist` must already be in this descriptor's typed layout.
    pub fn forward_chunk(
        &self,
        input: &DescriptorInput,
        first: usize,
        rows: usize,
        scratch: &mut SeAScratch<T>,
        out: &mut [T],
    ) {
        let (nnei, ng, axis) = (self.nnei, self.ng(), self.axis_neuron);
        let protection = T::of(self.env_protection);
        let inv_nnei = T::one() / T::of(nnei as f64);
        for (k, st) in scratch.atoms[..rows].iter_mut().enumerate() {
            let i = first + k;
            let d_out = &mut out[k * ng * axis..(k + 1) * ng * axis];
            st.ti = usize::try_from(input.types[i]).ok();
            let Some(ti) = st.ti else {
                d_out.fill(T::zero());
                continue;
            };
            // 1. Normalised, exclusion-masked environment rows.
            let row = &input.nlist[i * nnei..(i + 1) * nnei];
            let stat = ti * nnei * 4;
            for (s, &j) in row.iter().enumerate() {
                let pair = Self::pair(input, i, j);
                let env = pair.map_or([T::zero(); 4], |(d, _)| {
                    env_row(d, &self.switch, protection)
                });
                let keep = self.exclude.keeps(ti, pair.map(|p| p.1));
                let rr = &mut st.rr[s * 4..s * 4 + 4];
                for c in 0..4 {
                    let z = stat + s * 4 + c;
                    rr[c] = if keep {
                        (env[c] - self.davg[z]) / self.dstd[z]
                    } else {
                        T::zero()
                    };
                }
            }
            // 2. Embedding per section, gr = Σ_sections Gᵀ·R̂.
            st.gr.fill(T::zero());
            for t in 0..self.ntypes() {
                let (s0, n) = (self.sec[t], self.sel[t]);
                if n == 0 {
                    continue;
                }
                let net = self.net(ti, t);
                let stack = &mut st.stacks[t];
                for (x, r) in stack
                    .input(net, n)
                    .iter_mut()
                    .zip(st.rr[s0 * 4..].chunks_exact(4))
                {
                    *x = r[0];
                }
                let g = stack.forward(net, n, true);
                matmul(
                    ng,
                    4,
                    n,
                    g,
                    Op::T,
                    &st.rr[s0 * 4..],
                    Op::N,
                    &mut st.gr,
                    T::one(),
                );
            }
            // 3. gr /= nnei; D = gr·gr[:axis]ᵀ, g-major.
            for v in st.gr.iter_mut() {
                *v *= inv_nnei;
            }
            matmul(ng, axis, 4, &st.gr, Op::N, &st.gr, Op::T, d_out, T::zero());
        }
    }

    /// Backward of [`SeA::forward_chunk`] for the same atoms: from `d_desc = ∂L/∂D`
    /// (`rows × dim_out`) writes `∂L/∂(x_j − x_i)` for every slot into `pair_grad`
    /// (`rows × nnei`, zero for empty or excluded slots and for type `-1` atoms).
    pub fn backward_chunk(
        &self,
        input: &DescriptorInput,
        first: usize,
        rows: usize,
        scratch: &mut SeAScratch<T>,
        d_desc: &[T],
        pair_grad: &mut [[f64; 3]],
    ) {
        let (nnei, ng, axis) = (self.nnei, self.ng(), self.axis_neuron);
        let protection = T::of(self.env_protection);
        let inv_nnei = T::one() / T::of(nnei as f64);
        let SeAScratch {
            atoms,
            dgr,
            dg,
            drr,
        } = scratch;
        for (k, st) in atoms[..rows].iter_mut().enumerate() {
            let i = first + k;
            let pg = &mut pair_grad[k * nnei..(k + 1) * nnei];
            pg.fill([0.0; 3]);
            let Some(ti) = st.ti else { continue };
            let dd = &d_desc[k * ng * axis..(k + 1) * ng * axis];
            // D = gr·gr[:axis]ᵀ ⇒ ∂gr = dD·gr[:axis] + (dD)ᵀ·gr placed on the first axis rows.
            matmul(ng, 4, axis, dd, Op::N, &st.gr, Op::N, dgr, T::zero());
            matmul(
                axis,
                4,
                ng,
                dd,
                Op::T,
                &st.gr,
                Op::N,
                &mut dgr[..axis * 4],
                T::one(),
            );
            for v in dgr.iter_mut() {
                *v *= inv_nnei;
            }
            // Through gr += Gᵀ·R̂ and the embedding nets to ∂R̂.
            for t in 0..self.ntypes() {
                let (s0, n) = (self.sec[t], self.sel[t]);
                if n == 0 {
                    continue;
                }
                let net = self.net(ti, t);
                let stack = &mut st.stacks[t];
                let g = stack.output(net, n);
                let drr_t = &mut drr[s0 * 4..(s0 + n) * 4];
                matmul(n, 4, ng, g, Op::N, dgr, Op::N, drr_t, T::zero());
                if dg.len() < n * ng {
                    dg.resize(n * ng, T::zero());
                }
                matmul(
                    n,
                    ng,
                    4,
                    &st.rr[s0 * 4..],
                    Op::N,
                    dgr,
                    Op::T,
                    &mut dg[..n * ng],
                    T::zero(),
                );
                let ds = stack.backward(net, n, &dg[..n * ng]);
                for (r, &v) in drr_t.chunks_exact_mut(4).zip(ds) {
                    r[0] += v;
                }
            }
            // Through the normalisation and the env-mat row to the pair vector.
            let row = &input.nlist[i * nnei..(i + 1) * nnei];
            let stat = ti * nnei * 4;
            for (s, &j) in row.iter().enumerate() {
                let Some((d, tj)) = Self::pair(input, i, j) else {
                    continue;
                };
                if !self.exclude.keeps(ti, Some(tj)) {
                    continue;
                }
                let mut denv = [T::zero(); 4];
                for c in 0..4 {
                    denv[c] = drr[s * 4 + c] / self.dstd[stat + s * 4 + c];
                }
                let g = env_row_backward(d, denv, &self.switch, protection);
                pg[s] = [g[0].f64(), g[1].f64(), g[2].f64()];
            }
        }
    }
}

/// What the backward of one atom needs from its forward.
#[derive(Debug, Clone)]
struct AtomState<T> {
    /// Centre type, `None` for a type `-1` atom.
    ti: Option<usize>,
    /// `R̂`, `nnei × 4`.
    rr: Vec<T>,
    /// `gr / nnei`, `ng × 4`.
    gr: Vec<T>,
    /// The embedding stack of every section.
    stacks: Vec<StackBuf<T>>,
}

/// Reusable per-chunk buffers of [`SeA`].
#[derive(Debug, Clone)]
pub struct SeAScratch<T> {
    atoms: Vec<AtomState<T>>,
    dgr: Vec<T>,
    dg: Vec<T>,
    drr: Vec<T>,
}
