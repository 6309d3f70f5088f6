//! Reading and validating a serialized DPA3 descriptor (`DescrptDPA3.serialize`, @version ≤ 2)
//! into hyper-parameters and weights in the descriptor precision.
//!
//! Every key DeePMD-kit 3.2 writes is either honoured or rejected with a [`ModelError`] naming
//! it; missing keys take the defaults of `RepFlowArgs` / `DescrptDPA3` / `RepFlowLayer`, as
//! DeePMD's `deserialize` does; unknown keys are rejected (DeePMD would fail on them too).

use crate::import::{Dict, ModelError};
use crate::linalg::Weight;
use crate::networks::{class, parse_embedding_net, parse_layer, version};
use crate::nn::Layer;
use crate::{Activation, Real};
use halo_core::DType;

/// How the residual updates are combined (`update_style`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    /// `u + Σ r_k ⊙ u_k` with learned per-channel `r_k`.
    Residual,
    /// `(u + Σ u_k)/√(K+1)`.
    Avg,
    /// `u + Σ u_k/√K`.
    Incr,
}

/// Where the node/edge inputs of the angle MLPs come from (`a_compress_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compress {
    /// Full node and edge embeddings.
    None,
    /// Their first `n_a` / `e_a` channels.
    Split,
    /// Bias-free linear maps `a_compress_n_linear` / `a_compress_e_linear`.
    Linear,
}

/// Hyper-parameters of a DPA3 descriptor, as they affect the arithmetic.
#[derive(Debug, Clone)]
pub(crate) struct Opts {
    pub ntypes: usize,
    pub n_dim: usize,
    pub e_dim: usize,
    pub a_dim: usize,
    pub nlayers: usize,
    pub e_rcut: f64,
    pub e_rcut_smth: f64,
    pub e_sel: usize,
    pub a_rcut: f64,
    pub a_rcut_smth: f64,
    pub a_sel: usize,
    /// Node channels entering the angle MLPs.
    pub n_a: usize,
    /// Edge channels entering the angle MLPs.
    pub e_a: usize,
    pub compress: Compress,
    /// `n_multi_edge_message`.
    pub heads: usize,
    pub axis: usize,
    pub update_angle: bool,
    pub style: Style,
    pub smooth_edge_update: bool,
    pub edge_init_use_dist: bool,
    pub exp_switch: bool,
    pub sequential: bool,
    pub concat_output_tebd: bool,
    pub act: Activation,
    pub protection: f64,
    /// `exclude[ti * ntypes + tj]`: pair excluded (symmetric).
    pub exclude: Vec<bool>,
    /// Normalisation of edge sums (`e_sel`, or `e_sel / sel_reduce_factor`).
    pub ne_norm: f64,
    /// Normalisation of angle sums (`a_sel`, or `a_sel / sel_reduce_factor`).
    pub na_norm: f64,
    pub dtype: DType,
}

impl Opts {
    /// Width of the fused node-edge-message + edge-self pre-activation (`H·n_dim + e_dim`).
    pub fn w_ne(&self) -> usize {
        self.heads * self.n_dim + self.e_dim
    }
    /// Width of the symmetrised input of `node_sym_linear`.
    pub fn w_sym(&self) -> usize {
        self.axis * (self.e_dim + self.n_dim)
    }
    /// Width of `hg` (3 × (e_dim + n_dim)).
    pub fn w_hg(&self) -> usize {
        3 * (self.e_dim + self.n_dim)
    }
    /// Whether layer `l`'s edge (and angle) outputs are read. Not in the last layer of the
    /// parallel update: its node update reads only the input edges.
    pub fn edge_update(&self, l: usize) -> bool {
        l + 1 < self.nlayers || self.sequential
    }
    /// Whether layer `l`'s updated angles are read: by the next layer's angle block, so not
    /// those of the second-to-last layer of the parallel update (the last has none).
    pub fn angles_read(&self, l: usize) -> bool {
        self.update_angle && l + 1 < self.nlayers && self.edge_update(l + 1)
    }
    /// Width of the fused angle node term (`e_dim + a_dim`), 0 without angle updates.
    pub fn w_qa(&self) -> usize {
        if self.update_angle {
            self.e_dim + self.a_dim
        } else {
            0
        }
    }
}

/// A bias-optional affine map `y = x·W (+ b)` that DeePMD stores as a `Layer` with no activation.
#[derive(Debug, Clone)]
pub(crate) struct Affine<T> {
    pub w: Vec<T>,
    pub b: Option<Vec<T>>,
}

/// Residual coefficients of one update: `out = α·x + Σ_k β_k ⊙ u_k`.
#[derive(Debug, Clone)]
pub(crate) struct Update<T> {
    pub alpha: T,
    /// One per update term, each `dim` wide.
    pub beta: Vec<Vec<T>>,
}

/// Angle-related weights of one layer (present iff `update_angle`).
#[derive(Debug, Clone)]
pub(crate) struct AngleW<T> {
    /// `edge_angle_linear1` rows for the angle, `a_dim × e_dim`.
    pub w1a: Weight<T>,
    /// `angle_self_linear` rows for the angle, `a_dim × a_dim`.
    pub w2a: Weight<T>,
    /// `[w1a | w2a]` packed for the fused pair kernel (see [`super::fused::pack_cols`]).
    pub w12: Vec<T>,
    /// `[w1a | w2a]ᵀ`, `(e_dim + a_dim) × a_dim`: the fused backward's product.
    pub w12t: Vec<T>,
    /// `[linear1 | angle_self]` rows for `e_ik`, `e_a × (e_dim + a_dim)`.
    pub wik: Weight<T>,
    /// `[linear1 | angle_self]` rows for `e_ij`, `e_a × (e_dim + a_dim)`.
    pub wij: Weight<T>,
    /// `[linear1 | angle_self]` rows for the node, `n_a × (e_dim + a_dim)`.
    pub wn: Weight<T>,
    /// `[b1 | b_self]`.
    pub b: Vec<T>,
    /// `edge_angle_linear2`, `e_dim × e_dim`.
    pub w_l2: Weight<T>,
    pub b_l2: Vec<T>,
    /// `a_compress_n_linear`, `n_dim × n_a`.
    pub w_cn: Option<Weight<T>>,
    /// `a_compress_e_linear`, `e_dim × e_a`.
    pub w_ce: Option<Weight<T>>,
}

/// Weights of one RepFlow layer, split along the input blocks DeePMD concatenates.
#[derive(Debug, Clone)]
pub(crate) struct LayerW<T> {
    pub w_self: Weight<T>,
    pub b_self: Vec<T>,
    pub w_sym: Weight<T>,
    pub b_sym: Vec<T>,
    /// `[node_edge | edge_self]` rows for `n_i`, `n_dim × (H·n_dim + e_dim)`.
    pub w_i: Weight<T>,
    /// `[node_edge | edge_self]` rows for `n_j`, `n_dim × (H·n_dim + e_dim)`.
    pub w_j: Weight<T>,
    /// `[b_node_edge | b_edge_self]`.
    pub b_ne: Vec<T>,
    /// `node_edge_linear` rows for `e_ij`, `e_dim × H·n_dim`.
    pub w_ee_n: Weight<T>,
    /// `edge_self_linear` rows for `e_ij`, `e_dim × e_dim`.
    pub w_ee_e: Weight<T>,
    pub angle: Option<AngleW<T>>,
    pub upd_n: Update<T>,
    pub upd_e: Update<T>,
    pub upd_a: Update<T>,
}

/// Everything read from the descriptor node.
#[derive(Debug, Clone)]
pub(crate) struct Parsed<T> {
    pub o: Opts,
    /// `(ntypes + 1) × n_dim`, last row zero (virtual atoms).
    pub tebd: Vec<T>,
    pub edge_embd: Affine<T>,
    pub angle_embd: Affine<T>,
    /// `ntypes × e_sel × 4`.
    pub davg: Vec<T>,
    pub dstd: Vec<T>,
    pub layers: Vec<LayerW<T>>,
}

const DESCRIPTOR_KEYS: &[&str] = &[
    "@class",
    "type",
    "@version",
    "ntypes",
    "repflow_args",
    "concat_output_tebd",
    "activation_function",
    "precision",
    "exclude_types",
    "env_protection",
    "trainable",
    "use_econf_tebd",
    "use_tebd_bias",
    "use_loc_mapping",
    "add_chg_spin_ebd",
    "default_chg_spin",
    "type_map",
    "type_embedding",
    "chg_embedding",
    "spin_embedding",
    "mix_cs_mlp",
    "repflow_variable",
    "seed",
];

const REPFLOW_KEYS: &[&str] = &[
    "n_dim",
    "e_dim",
    "a_dim",
    "nlayers",
    "e_rcut",
    "e_rcut_smth",
    "e_sel",
    "a_rcut",
    "a_rcut_smth",
    "a_sel",
    "a_compress_rate",
    "a_compress_e_rate",
    "a_compress_use_split",
    "n_multi_edge_message",
    "axis_neuron",
    "update_angle",
    "update_style",
    "update_residual",
    "update_residual_init",
    "fix_stat_std",
    "skip_stat",
    "optim_update",
    "smooth_edge_update",
    "edge_init_use_dist",
    "use_exp_switch",
    "use_dynamic_sel",
    "sel_reduce_factor",
    "sequential_update",
];

const LAYER_KEYS: &[&str] = &[
    "@class",
    "@version",
    "e_rcut",
    "e_rcut_smth",
    "e_sel",
    "a_rcut",
    "a_rcut_smth",
    "a_sel",
    "ntypes",
    "n_dim",
    "e_dim",
    "a_dim",
    "a_compress_rate",
    "a_compress_e_rate",
    "a_compress_use_split",
    "n_multi_edge_message",
    "axis_neuron",
    "activation_function",
    "update_angle",
    "update_style",
    "update_residual",
    "update_residual_init",
    "precision",
    "optim_update",
    "smooth_edge_update",
    "use_dynamic_sel",
    "sel_reduce_factor",
    "sequential_update",
    "node_self_mlp",
    "node_sym_linear",
    "node_edge_linear",
    "edge_self_linear",
    "edge_angle_linear1",
    "edge_angle_linear2",
    "angle_self_linear",
    "a_compress_n_linear",
    "a_compress_e_linear",
    "@variables",
    "n_residual",
    "e_residual",
    "a_residual",
    "seed",
    "trainable",
];

/// Rejects keys DeePMD-kit 3.2 does not write at this node.
fn check_keys(d: &Dict, allowed: &[&str]) -> Result<(), ModelError> {
    let map = d
        .value()
        .as_object()
        .ok_or_else(|| ModelError::field(d.path(), "expected a mapping"))?;
    for k in map.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(d.err(
                k,
                "unknown option (not part of a DeePMD-kit 3.2 DPA3 model)",
            ));
        }
    }
    Ok(())
}

/// The precision name DeePMD uses (`PRECISION_DICT`), as a dtype.
pub(crate) fn parse_precision(d: &Dict, key: &str) -> Result<DType, ModelError> {
    let s = if d.has(key) { d.str(key)? } else { "float64" };
    match s.to_ascii_lowercase().as_str() {
        "float64" | "double" | "default" => Ok(DType::F64),
        "float32" | "single" => Ok(DType::F32),
        other => Err(d.err(
            key,
            format!("unsupported precision `{other}` (halomd supports float32 and float64)"),
        )),
    }
}

fn parse_act(d: &Dict, key: &str, default: &str) -> Result<Activation, ModelError> {
    let s = if d.has(key) { d.str(key)? } else { default };
    Activation::parse(s).map_err(|e| d.err(key, e))
}

pub(crate) fn cast<T: Real>(x: &[f64]) -> Vec<T> {
    x.iter().map(|&v| T::of(v)).collect()
}

const LAYER_NODE_KEYS: &[&str] = &[
    "@class",
    "@version",
    "bias",
    "use_timestep",
    "activation_function",
    "resnet",
    "precision",
    "trainable",
    "@variables",
];

/// A `Layer` with its shape and precision checked.
fn parse_checked_layer<T: Real>(
    d: &Dict,
    n_in: usize,
    n_out: usize,
    dtype: DType,
) -> Result<Layer<T>, ModelError> {
    check_keys(d, LAYER_NODE_KEYS)?;
    d.get("@variables")?.array_shaped("w", &[n_in, n_out])?;
    let l = parse_layer::<T>(d)?;
    if parse_precision(d, "precision")? != dtype {
        return Err(d.err(
            "precision",
            "layer precision differs from the descriptor precision (mixed precision is not supported)",
        ));
    }
    Ok(l)
}

/// A `Layer` that must be affine: no activation, no timestep, no effective residual.
fn parse_affine<T: Real>(
    d: &Dict,
    n_in: usize,
    n_out: usize,
    bias: Option<bool>,
    dtype: DType,
) -> Result<Affine<T>, ModelError> {
    let l = parse_checked_layer::<T>(d, n_in, n_out, dtype)?;
    if l.act != Activation::Linear {
        return Err(d.err(
            "activation_function",
            format!(
                "`{}` is not supported here: DPA3 applies its own activation after this layer, \
                 which must be linear",
                l.act
            ),
        ));
    }
    if l.idt.is_some() {
        return Err(d.err(
            "use_timestep",
            "a timestep (idt) is not supported in this DPA3 layer",
        ));
    }
    if l.resnet && (n_out == n_in || n_out == 2 * n_in) {
        return Err(d.err(
            "resnet",
            "a residual connection is not supported in this DPA3 layer",
        ));
    }
    match bias {
        Some(true) if l.b.is_none() => return Err(d.err("bias", "this layer needs a bias")),
        Some(false) if l.b.is_some() => {
            return Err(d.err("bias", "this layer must not have a bias"))
        }
        _ => {}
    }
    Ok(Affine {
        w: l.w.to_vec(),
        b: l.b,
    })
}

/// The type-embedding table `(ntypes + 1) × n_dim` (last row zero), evaluated in `T`.
fn parse_type_embedding<T: Real>(
    d: &Dict,
    ntypes: usize,
    n_dim: usize,
    dtype: DType,
) -> Result<Vec<T>, ModelError> {
    check_keys(
        d,
        &[
            "@class",
            "@version",
            "ntypes",
            "neuron",
            "resnet_dt",
            "precision",
            "activation_function",
            "trainable",
            "padding",
            "use_econf_tebd",
            "use_tebd_bias",
            "type_map",
            "embedding",
        ],
    )?;
    class(d, "TypeEmbedNet")?;
    version(d, 2, 1)?;
    if d.usize("ntypes")? != ntypes {
        return Err(d.err("ntypes", "differs from the descriptor's ntypes"));
    }
    if d.bool_or("use_econf_tebd", false)? {
        return Err(d.err(
            "use_econf_tebd",
            "electronic-configuration type embedding is not supported",
        ));
    }
    if !d.bool_or("padding", false)? {
        return Err(d.err("padding", "DPA3 requires a padded type embedding"));
    }
    let emb = d.get("embedding")?;
    if emb.usize("in_dim")? != ntypes {
        return Err(emb.err("in_dim", "expected ntypes (one-hot type input)"));
    }
    let layers = parse_embedding_net::<T>(&emb)?;
    for (l, ld) in layers.iter().zip(emb.list("layers")?) {
        parse_checked_layer::<T>(&ld, l.n_in, l.n_out, dtype)?;
    }
    let mut width = ntypes;
    let mut x: Vec<T> = (0..ntypes * ntypes)
        .map(|k| {
            if k / ntypes == k % ntypes {
                T::one()
            } else {
                T::zero()
            }
        })
        .collect();
    for l in &layers {
        let mut y = vec![T::zero(); ntypes * l.n_out];
        l.forward(&x, ntypes, &mut y, None);
        x = y;
        width = l.n_out;
    }
    if width != n_dim {
        return Err(emb.err(
            "layers",
            format!("type embedding width {width} != n_dim {n_dim}"),
        ));
    }
    x.extend(std::iter::repeat_n(T::zero(), n_dim));
    Ok(x)
}

/// Reads one residual list (`n_residual` …) of `count` vectors of width `dim`.
fn residuals<T: Real>(
    layer: &Dict,
    key: &str,
    count: usize,
    dim: usize,
) -> Result<Vec<Vec<T>>, ModelError> {
    let holder = layer.opt("@variables").filter(|v| v.has(key));
    let holder = match holder {
        Some(h) => h,
        None => layer.clone(),
    };
    let list = holder.list(key)?;
    if list.len() != count {
        return Err(holder.err(
            key,
            format!("expected {count} residual vectors, found {}", list.len()),
        ));
    }
    let mut out = Vec::with_capacity(count);
    for item in list {
        let arr = item.as_array()?;
        if arr.shape != [dim] {
            return Err(ModelError::field(
                item.path(),
                format!("expected shape [{dim}], found {:?}", arr.shape),
            ));
        }
        if arr.data.iter().any(|x| !x.is_finite()) {
            return Err(ModelError::field(item.path(), "non-finite residual"));
        }
        out.push(cast(&arr.data));
    }
    Ok(out)
}

fn update_for<T: Real>(
    style: Style,
    layer: &Dict,
    key: &str,
    count: usize,
    dim: usize,
) -> Result<Update<T>, ModelError> {
    Ok(match style {
        Style::Residual => Update {
            alpha: T::one(),
            beta: residuals(layer, key, count, dim)?,
        },
        Style::Avg => {
            let s = T::of(1.0 / ((count + 1) as f64).sqrt());
            Update {
                alpha: s,
                beta: vec![vec![s; dim]; count],
            }
        }
        Style::Incr => {
            let s = T::of(if count > 0 {
                1.0 / (count as f64).sqrt()
            } else {
                0.0
            });
            Update {
                alpha: T::one(),
                beta: vec![vec![s; dim]; count],
            }
        }
    })
}

/// Splits rows `[r0, r1)` of a row-major `rows × cols` matrix.
fn rows_of<T: Copy>(w: &[T], cols: usize, r0: usize, r1: usize) -> Vec<T> {
    w[r0 * cols..r1 * cols].to_vec()
}

/// Concatenates two row-major matrices with equal row counts column-wise.
fn hcat<T: Copy>(a: &[T], ca: usize, b: &[T], cb: usize) -> Vec<T> {
    let rows = (a.len() + b.len()) / (ca + cb).max(1);
    let mut out = Vec::with_capacity(rows * (ca + cb));
    for r in 0..rows {
        out.extend_from_slice(&a[r * ca..(r + 1) * ca]);
        out.extend_from_slice(&b[r * cb..(r + 1) * cb]);
    }
    out
}

/// Reads the descriptor node into options and weights of precision `T`. With `strict`, the
/// file's precision must be `T`.
pub(crate) fn parse<T: Real>(d: &Dict, strict: bool) -> Result<Parsed<T>, ModelError> {
    check_keys(d, DESCRIPTOR_KEYS)?;
    class(d, "Descriptor")?;
    let ty = d.str("type")?;
    if ty != "dpa3" {
        return Err(d.err(
            "type",
            format!("expected a `dpa3` descriptor, found `{ty}`"),
        ));
    }
    d.check_version(2, 1)?;
    let dtype = parse_precision(d, "precision")?;
    if strict && dtype != T::DTYPE {
        return Err(d.err(
            "precision",
            format!(
                "model precision is {dtype}, but the descriptor was requested in {}",
                T::DTYPE
            ),
        ));
    }
    let ntypes = d.usize("ntypes")?;
    if ntypes == 0 {
        return Err(d.err("ntypes", "must be positive"));
    }
    if d.bool_or("add_chg_spin_ebd", false)? {
        return Err(d.err(
            "add_chg_spin_ebd",
            "charge/spin frame embedding is not supported by halomd",
        ));
    }
    if d.bool_or("use_econf_tebd", false)? {
        return Err(d.err(
            "use_econf_tebd",
            "electronic-configuration type embedding is not supported by halomd",
        ));
    }
    d.bool_or("use_tebd_bias", false)?;
    d.bool_or("use_loc_mapping", true)?;
    d.bool_or("trainable", true)?;
    if d.has("type_map") {
        let tm = d.str_list("type_map")?;
        if tm.len() != ntypes {
            return Err(d.err(
                "type_map",
                format!("has {} names for ntypes = {ntypes}", tm.len()),
            ));
        }
    }
    let concat_output_tebd = d.bool_or("concat_output_tebd", false)?;
    let act = parse_act(d, "activation_function", "silu")?;
    let protection = d.f64_or("env_protection", 0.0)?;
    if !(protection.is_finite() && protection >= 0.0) {
        return Err(d.err("env_protection", "must be a finite non-negative number"));
    }
    let mut exclude = vec![false; ntypes * ntypes];
    if d.has("exclude_types") {
        for pair in d.list("exclude_types")? {
            let v = pair
                .value()
                .as_array()
                .filter(|a| a.len() == 2)
                .and_then(|a| Some((a[0].as_u64()?, a[1].as_u64()?)))
                .ok_or_else(|| ModelError::field(pair.path(), "expected a pair of type indices"))?;
            let (a, b) = (v.0 as usize, v.1 as usize);
            if a >= ntypes || b >= ntypes {
                return Err(ModelError::field(pair.path(), "type index out of range"));
            }
            exclude[a * ntypes + b] = true;
            exclude[b * ntypes + a] = true;
        }
    }

    let rf = d.get("repflow_args")?;
    check_keys(&rf, REPFLOW_KEYS)?;
    let n_dim = rf.usize_or("n_dim", 128)?;
    let e_dim = rf.usize_or("e_dim", 64)?;
    let a_dim = rf.usize_or("a_dim", 64)?;
    let nlayers = rf.usize_or("nlayers", 6)?;
    let e_rcut = rf.f64_or("e_rcut", 6.0)?;
    let e_rcut_smth = rf.f64_or("e_rcut_smth", 5.0)?;
    let e_sel = rf.usize_or("e_sel", 120)?;
    let a_rcut = rf.f64_or("a_rcut", 4.0)?;
    let a_rcut_smth = rf.f64_or("a_rcut_smth", 3.5)?;
    let a_sel = rf.usize_or("a_sel", 20)?;
    let a_compress_rate = rf.usize_or("a_compress_rate", 0)?;
    let a_compress_e_rate = rf.usize_or("a_compress_e_rate", 1)?;
    let a_compress_use_split = rf.bool_or("a_compress_use_split", false)?;
    let heads = rf.usize_or("n_multi_edge_message", 1)?;
    let axis = rf.usize_or("axis_neuron", 4)?;
    let update_angle = rf.bool_or("update_angle", true)?;
    let style = match if rf.has("update_style") {
        rf.choice("update_style", &["res_residual", "res_avg", "res_incr"])?
    } else {
        "res_residual"
    } {
        "res_avg" => Style::Avg,
        "res_incr" => Style::Incr,
        _ => Style::Residual,
    };
    rf.f64_or("update_residual", 0.1)?;
    if rf.has("update_residual_init") {
        rf.choice("update_residual_init", &["norm", "const"])?;
    }
    rf.f64_or("fix_stat_std", 0.3)?;
    rf.bool_or("skip_stat", false)?;
    rf.bool_or("optim_update", true)?; // mathematically identical either way
    let smooth_edge_update = rf.bool_or("smooth_edge_update", false)?;
    let edge_init_use_dist = rf.bool_or("edge_init_use_dist", false)?;
    let exp_switch = rf.bool_or("use_exp_switch", false)?;
    let dynamic_sel = rf.bool_or("use_dynamic_sel", false)?;
    let sel_reduce_factor = rf.f64_or("sel_reduce_factor", 10.0)?;
    let sequential = rf.bool_or("sequential_update", false)?;

    let pos = |key: &str, v: usize| -> Result<(), ModelError> {
        if v == 0 {
            Err(rf.err(key, "must be positive"))
        } else {
            Ok(())
        }
    };
    pos("n_dim", n_dim)?;
    pos("e_dim", e_dim)?;
    pos("a_dim", a_dim)?;
    pos("e_sel", e_sel)?;
    pos("n_multi_edge_message", heads)?;
    pos("axis_neuron", axis)?;
    if axis > e_dim || axis > n_dim {
        return Err(rf.err("axis_neuron", "must not exceed e_dim and n_dim"));
    }
    for (k, rc, rs) in [
        ("e_rcut", e_rcut, e_rcut_smth),
        ("a_rcut", a_rcut, a_rcut_smth),
    ] {
        if !(rc.is_finite() && rs.is_finite() && rs < rc && rc > 0.0) {
            return Err(rf.err(
                k,
                format!("need a finite cutoff above its smoothing start ({rs} ≥ {rc})"),
            ));
        }
        if exp_switch && rs <= 0.0 {
            return Err(rf.err(k, "the exponential switch needs a positive rcut_smth"));
        }
    }
    if e_rcut < a_rcut {
        return Err(rf.err("a_rcut", "must not exceed e_rcut"));
    }
    if e_sel < a_sel {
        return Err(rf.err("a_sel", "must not exceed e_sel"));
    }
    if dynamic_sel && !smooth_edge_update {
        return Err(rf.err(
            "use_dynamic_sel",
            "requires smooth_edge_update = true (as DeePMD-kit)",
        ));
    }
    if !(sel_reduce_factor.is_finite() && sel_reduce_factor > 0.0) {
        return Err(rf.err("sel_reduce_factor", "must be > 0"));
    }
    if sequential && (style != Style::Residual || !update_angle) {
        return Err(rf.err(
            "sequential_update",
            "requires update_style = res_residual and update_angle = true",
        ));
    }
    let (compress, n_a, e_a) = if a_compress_rate == 0 {
        (Compress::None, n_dim, e_dim)
    } else {
        if (a_dim * a_compress_e_rate) % (2 * a_compress_rate) != 0 {
            return Err(rf.err(
                "a_compress_rate",
                "a_dim · a_compress_e_rate must be divisible by 2 · a_compress_rate",
            ));
        }
        let n_a = a_dim / a_compress_rate;
        let e_a = a_dim / (2 * a_compress_rate) * a_compress_e_rate;
        if a_compress_use_split {
            if n_a > n_dim || e_a > e_dim {
                return Err(rf.err(
                    "a_compress_use_split",
                    "the split widths exceed n_dim or e_dim",
                ));
            }
            (Compress::Split, n_a, e_a)
        } else {
            (Compress::Linear, n_a, e_a)
        }
    };
    let (ne_norm, na_norm) = if dynamic_sel {
        (
            e_sel as f64 / sel_reduce_factor,
            a_sel as f64 / sel_reduce_factor,
        )
    } else {
        (e_sel as f64, a_sel as f64)
    };

    let o = Opts {
        ntypes,
        n_dim,
        e_dim,
        a_dim,
        nlayers,
        e_rcut,
        e_rcut_smth,
        e_sel,
        a_rcut,
        a_rcut_smth,
        a_sel,
        n_a,
        e_a,
        compress,
        heads,
        axis,
        update_angle,
        style,
        smooth_edge_update,
        edge_init_use_dist,
        exp_switch,
        sequential,
        concat_output_tebd,
        act,
        protection,
        exclude,
        ne_norm,
        na_norm,
        dtype,
    };

    let tebd = parse_type_embedding::<T>(&d.get("type_embedding")?, ntypes, n_dim, dtype)?;
    let var = d.get("repflow_variable")?;
    check_keys(
        &var,
        &[
            "edge_embd",
            "angle_embd",
            "repflow_layers",
            "env_mat",
            "@variables",
        ],
    )?;
    let edge_embd = parse_affine::<T>(&var.get("edge_embd")?, 1, e_dim, None, dtype)?;
    let angle_embd = parse_affine::<T>(&var.get("angle_embd")?, 1, a_dim, None, dtype)?;
    let stats = var.get("@variables")?;
    let davg = cast(&stats.array_shaped("davg", &[ntypes, e_sel, 4])?.data);
    let dstd: Vec<T> = cast(&stats.array_shaped("dstd", &[ntypes, e_sel, 4])?.data);
    if dstd.iter().any(|&s| s == T::zero()) {
        return Err(stats.err("dstd", "contains zeros"));
    }
    let ldicts = var.list("repflow_layers")?;
    if ldicts.len() != nlayers {
        return Err(var.err(
            "repflow_layers",
            format!(
                "has {} layers, repflow_args.nlayers = {nlayers}",
                ldicts.len()
            ),
        ));
    }
    let mut layers = Vec::with_capacity(nlayers);
    for ld in &ldicts {
        layers.push(parse_repflow_layer::<T>(
            ld,
            &o,
            &rf,
            a_compress_rate,
            a_compress_e_rate,
            a_compress_use_split,
            sel_reduce_factor,
            dynamic_sel,
        )?);
    }
    Ok(Parsed {
        o,
        tebd,
        edge_embd,
        angle_embd,
        davg,
        dstd,
        layers,
    })
}

/// Checks that a per-layer hyper-parameter equals the block's (DeePMD reads it per layer).
fn same_f64(ld: &Dict, key: &str, want: f64, default: f64) -> Result<(), ModelError> {
    let v = ld.f64_or(key, default)?;
    if (v - want).abs() > 1e-12 * want.abs().max(1.0) {
        return Err(ld.err(key, format!("differs from repflow_args ({v} vs {want}); per-layer hyper-parameters are not supported")));
    }
    Ok(())
}

fn same_usize(ld: &Dict, key: &str, want: usize, default: usize) -> Result<(), ModelError> {
    let v = ld.usize_or(key, default)?;
    if v != want {
        return Err(ld.err(key, format!("differs from repflow_args ({v} vs {want}); per-layer hyper-parameters are not supported")));
    }
    Ok(())
}

fn same_bool(ld: &Dict, key: &str, want: bool, default: bool) -> Result<(), ModelError> {
    let v = ld.bool_or(key, default)?;
    if v != want {
        return Err(ld.err(key, format!("differs from repflow_args ({v} vs {want}); per-layer hyper-parameters are not supported")));
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn parse_repflow_layer<T: Real>(
    ld: &Dict,
    o: &Opts,
    rf: &Dict,
    a_compress_rate: usize,
    a_compress_e_rate: usize,
    a_compress_use_split: bool,
    sel_reduce_factor: f64,
    dynamic_sel: bool,
) -> Result<LayerW<T>, ModelError> {
    check_keys(ld, LAYER_KEYS)?;
    class(ld, "RepFlowLayer")?;
    version(ld, 2, 1)?;
    // Layer-level copies of the hyper-parameters (RepFlowLayer defaults when absent).
    same_f64(ld, "e_rcut", o.e_rcut, f64::NAN).or_else(|e| {
        if ld.has("e_rcut") {
            Err(e)
        } else {
            Ok(())
        }
    })?;
    same_f64(ld, "e_rcut_smth", o.e_rcut_smth, f64::NAN).or_else(|e| {
        if ld.has("e_rcut_smth") {
            Err(e)
        } else {
            Ok(())
        }
    })?;
    same_f64(ld, "a_rcut", o.a_rcut, f64::NAN).or_else(|e| {
        if ld.has("a_rcut") {
            Err(e)
        } else {
            Ok(())
        }
    })?;
    same_f64(ld, "a_rcut_smth", o.a_rcut_smth, f64::NAN).or_else(|e| {
        if ld.has("a_rcut_smth") {
            Err(e)
        } else {
            Ok(())
        }
    })?;
    if ld.has("e_sel") {
        let v = ld.get("e_sel")?;
        let sel: Vec<usize> = match v.value() {
            serde_json::Value::Array(_) => ld.usize_list("e_sel")?,
            _ => vec![ld.usize("e_sel")?],
        };
        if sel != [o.e_sel] {
            return Err(ld.err("e_sel", format!("expected [{}], found {sel:?}", o.e_sel)));
        }
    }
    if ld.has("a_sel") {
        same_usize(ld, "a_sel", o.a_sel, 0)?;
    }
    if ld.has("ntypes") {
        same_usize(ld, "ntypes", o.ntypes, 0)?;
    }
    same_usize(ld, "n_dim", o.n_dim, 128)?;
    same_usize(ld, "e_dim", o.e_dim, 16)?;
    same_usize(ld, "a_dim", o.a_dim, 64)?;
    same_usize(ld, "a_compress_rate", a_compress_rate, 0)?;
    same_usize(ld, "a_compress_e_rate", a_compress_e_rate, 1)?;
    same_bool(ld, "a_compress_use_split", a_compress_use_split, false)?;
    same_usize(ld, "n_multi_edge_message", o.heads, 1)?;
    same_usize(ld, "axis_neuron", o.axis, 4)?;
    same_bool(ld, "update_angle", o.update_angle, true)?;
    same_bool(ld, "smooth_edge_update", o.smooth_edge_update, false)?;
    same_bool(ld, "use_dynamic_sel", dynamic_sel, false)?;
    same_bool(ld, "sequential_update", o.sequential, false)?;
    same_f64(ld, "sel_reduce_factor", sel_reduce_factor, 10.0)?;
    ld.bool_or("optim_update", true)?;
    ld.f64_or("update_residual", 0.1)?;
    if ld.has("update_residual_init") {
        ld.choice("update_residual_init", &["norm", "const"])?;
    }
    let style = if ld.has("update_style") {
        ld.choice("update_style", &["res_residual", "res_avg", "res_incr"])?
    } else {
        "res_residual"
    };
    let want_style = match o.style {
        Style::Residual => "res_residual",
        Style::Avg => "res_avg",
        Style::Incr => "res_incr",
    };
    if style != want_style {
        return Err(ld.err(
            "update_style",
            format!("differs from repflow_args ({style} vs {want_style})"),
        ));
    }
    let lact = parse_act(ld, "activation_function", "silu")?;
    if lact != o.act {
        return Err(ld.err(
            "activation_function",
            format!("differs from the descriptor's ({lact} vs {})", o.act),
        ));
    }
    if parse_precision(ld, "precision")? != o.dtype {
        return Err(ld.err("precision", "differs from the descriptor precision"));
    }
    let _ = rf;

    let (n, e, a, h) = (o.n_dim, o.e_dim, o.a_dim, o.heads);
    let dt = o.dtype;
    let self_mlp = parse_affine::<T>(&ld.get("node_self_mlp")?, n, n, Some(true), dt)?;
    let sym = parse_affine::<T>(&ld.get("node_sym_linear")?, o.w_sym(), n, Some(true), dt)?;
    let ne = parse_affine::<T>(
        &ld.get("node_edge_linear")?,
        2 * n + e,
        h * n,
        Some(true),
        dt,
    )?;
    let es = parse_affine::<T>(&ld.get("edge_self_linear")?, 2 * n + e, e, Some(true), dt)?;
    let w_i = Weight::new(
        n,
        h * n + e,
        hcat(
            &rows_of(&ne.w, h * n, 0, n),
            h * n,
            &rows_of(&es.w, e, 0, n),
            e,
        ),
    );
    let w_j = Weight::new(
        n,
        h * n + e,
        hcat(
            &rows_of(&ne.w, h * n, n, 2 * n),
            h * n,
            &rows_of(&es.w, e, n, 2 * n),
            e,
        ),
    );
    let mut b_ne = ne.b.clone().unwrap_or_default();
    b_ne.extend_from_slice(es.b.as_deref().unwrap_or(&[]));
    let w_ee_n = Weight::new(e, h * n, rows_of(&ne.w, h * n, 2 * n, 2 * n + e));
    let w_ee_e = Weight::new(e, e, rows_of(&es.w, e, 2 * n, 2 * n + e));

    let angle_keys = [
        "edge_angle_linear1",
        "edge_angle_linear2",
        "angle_self_linear",
    ];
    let compress_keys = ["a_compress_n_linear", "a_compress_e_linear"];
    let angle = if o.update_angle {
        let big = a + o.n_a + 2 * o.e_a;
        let l1 = parse_affine::<T>(&ld.get("edge_angle_linear1")?, big, e, Some(true), dt)?;
        let l2 = parse_affine::<T>(&ld.get("edge_angle_linear2")?, e, e, Some(true), dt)?;
        let ls = parse_affine::<T>(&ld.get("angle_self_linear")?, big, a, Some(true), dt)?;
        let (w_cn, w_ce) = if o.compress == Compress::Linear {
            let cn = parse_affine::<T>(&ld.get("a_compress_n_linear")?, n, o.n_a, Some(false), dt)?;
            let ce = parse_affine::<T>(&ld.get("a_compress_e_linear")?, e, o.e_a, Some(false), dt)?;
            (
                Some(Weight::new(n, o.n_a, cn.w)),
                Some(Weight::new(e, o.e_a, ce.w)),
            )
        } else {
            for k in compress_keys {
                if ld.has(k) {
                    return Err(ld.err(k, "present although angle compression is not linear"));
                }
            }
            (None, None)
        };
        let (r_n0, r_n1) = (a, a + o.n_a);
        let (r_k0, r_k1) = (r_n1, r_n1 + o.e_a);
        let (r_j0, r_j1) = (r_k1, r_k1 + o.e_a);
        // `[linear1 | angle_self]` rows r0..r1.
        let rows_pair = |r0, r1| hcat(&rows_of(&l1.w, e, r0, r1), e, &rows_of(&ls.w, a, r0, r1), a);
        let mut b = l1.b.clone().unwrap_or_default();
        b.extend_from_slice(ls.b.as_deref().unwrap_or(&[]));
        let (w1a, w2a) = (rows_of(&l1.w, e, 0, a), rows_of(&ls.w, a, 0, a));
        let (w1a, w2a) = (Weight::new(a, e, w1a), Weight::new(a, a, w2a));
        Some(AngleW {
            w12: super::fused::pack_cols(&w1a, e, &w2a, a),
            w12t: [w1a.t(), w2a.t()].concat(),
            w1a,
            w2a,
            wik: Weight::new(o.e_a, e + a, rows_pair(r_k0, r_k1)),
            wij: Weight::new(o.e_a, e + a, rows_pair(r_j0, r_j1)),
            wn: Weight::new(o.n_a, e + a, rows_pair(r_n0, r_n1)),
            b,
            w_l2: Weight::new(e, e, l2.w),
            b_l2: l2.b.unwrap_or_default(),
            w_cn,
            w_ce,
        })
    } else {
        for k in angle_keys.iter().chain(compress_keys.iter()) {
            if ld.has(k) {
                return Err(ld.err(k, "present although update_angle = false"));
            }
        }
        None
    };
    let n_terms = 2 + h;
    let e_terms = if o.update_angle { 2 } else { 1 };
    let a_terms = usize::from(o.update_angle);
    if o.style != Style::Residual {
        let has_res = ld
            .opt("@variables")
            .map(|v| {
                ["n_residual", "e_residual", "a_residual"].iter().any(|k| {
                    v.value()
                        .get(k)
                        .and_then(|x| x.as_array())
                        .is_some_and(|a| !a.is_empty())
                })
            })
            .unwrap_or(false);
        if has_res {
            return Err(ld.err(
                "@variables",
                "residual vectors present although update_style is not res_residual",
            ));
        }
    }
    let upd_n = update_for::<T>(o.style, ld, "n_residual", n_terms, n)?;
    let upd_e = update_for::<T>(o.style, ld, "e_residual", e_terms, e)?;
    let upd_a = if a_terms > 0 {
        update_for::<T>(o.style, ld, "a_residual", a_terms, a)?
    } else {
        // No angle update: the angle representation is never read again.
        Update {
            alpha: T::one(),
            beta: Vec::new(),
        }
    };
    Ok(LayerW {
        w_self: Weight::new(n, n, self_mlp.w),
        b_self: self_mlp.b.unwrap_or_default(),
        w_sym: Weight::new(o.w_sym(), n, sym.w),
        b_sym: sym.b.unwrap_or_default(),
        w_i,
        w_j,
        b_ne,
        w_ee_n,
        w_ee_e,
        angle,
        upd_n,
        upd_e,
        upd_a,
    })
}
