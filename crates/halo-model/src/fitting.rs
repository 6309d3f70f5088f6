//! The energy fitting (`deepmd/dpmodel/fitting/{general_fitting,invar_fitting,ener_fitting}.py`)
//! with its backward to the descriptor.
//!
//! Per local atom `i` of type `t`, in the fitting precision:
//! `x_i = [D_i, (fparam − fparam_avg)·fparam_inv_std, (aparam_i − aparam_avg)·aparam_inv_std,
//! case_embd]`, `e_i = Net(x_i) − [Net(x_i with D_i = 0)] + bias_atom_e[t]`, where `Net` is the
//! single shared net (`mixed_types`, DPA3) or the net of type `t` (se_e2_a), and the bracketed
//! vacuum term applies to the types `atom_ener` lists (to every atom for `mixed_types`).
//! Excluded atom types give `e_i = 0`. DeePMD-kit's atomic model replaces the fitting's own
//! `exclude_types` by the model's `atom_exclude_types` when it is built, so that is what
//! [`Fitting::set_exclude`] receives.
//!
//! Heads (`dim_case_embd > 0`): multi-task training gives the branches, sorted by name,
//! indices 0, 1, …, and sets each branch's `case_embd` to the one-hot vector of its index
//! (`deepmd/pt/train/training.py::get_case_embd_config`, `set_case_embd`). A frozen
//! single-head file stores that vector; [`FitInputs::new`] uses it unless a head index is
//! passed, which replaces it by the one-hot vector of that index (only the case embedding
//! changes: the fitting weights are the file's).

use crate::import::{Dict, ModelError};
use crate::networks::{self, param_count, NetworkCollection, StackBuf};
use crate::{Activation, Real};

/// Keys the energy fitting serializes (plus constructor-only ones).
const KEYS: &[&str] = &[
    "@class",
    "type",
    "@version",
    "var_name",
    "ntypes",
    "dim_descrpt",
    "neuron",
    "resnet_dt",
    "numb_fparam",
    "numb_aparam",
    "dim_case_embd",
    "default_fparam",
    "rcond",
    "activation_function",
    "precision",
    "mixed_types",
    "exclude_types",
    "nets",
    "@variables",
    "type_map",
    "tot_ener_zero",
    "trainable",
    "layer_name",
    "use_aparam_as_mask",
    "spin",
    "dim_out",
    "atom_ener",
    "seed",
];

/// An energy fitting in precision `T`.
#[derive(Debug, Clone)]
pub struct Fitting<T> {
    /// Number of types.
    pub ntypes: usize,
    /// Width of the descriptor rows it reads.
    pub dim_descrpt: usize,
    /// Hidden widths.
    pub neuron: Vec<usize>,
    /// Frame parameters per evaluation.
    pub numb_fparam: usize,
    /// Atomic parameters per atom.
    pub numb_aparam: usize,
    /// Width of the case (head) embedding.
    pub dim_case_embd: usize,
    /// aparam is not fed to the net (pt/dpmodel semantics: it is then ignored).
    pub use_aparam_as_mask: bool,
    /// One shared net (true) or one per type.
    pub mixed_types: bool,
    /// Hidden activation.
    pub activation: Activation,
    /// Whether hidden layers use `idt`.
    pub resnet_dt: bool,
    /// Fallback fparam.
    pub default_fparam: Option<Vec<f64>>,
    /// `atom_ener` as stored.
    pub atom_ener: Vec<Option<f64>>,
    /// Per type: whether the vacuum contribution is subtracted.
    vacuum: Vec<bool>,
    /// Per type: whether the output is zeroed.
    exclude: Vec<bool>,
    nets: NetworkCollection<T>,
    bias_atom_e: Vec<T>,
    fparam_avg: Vec<T>,
    fparam_inv_std: Vec<T>,
    aparam_avg: Vec<T>,
    aparam_inv_std: Vec<T>,
    case_embd: Option<Vec<T>>,
}

impl<T: Real> Fitting<T> {
    /// Parses the `fitting` node (`type` `ener`, @version 1–4).
    pub fn from_dict(d: &Dict) -> Result<Self, ModelError> {
        networks::class(d, "Fitting")?;
        let ty = d.str("type")?;
        if ty != "ener" {
            return Err(d.err(
                "type",
                format!("fitting type `{ty}` is not supported (halomd evaluates `ener` models)"),
            ));
        }
        networks::version(d, 4, 1)?;
        d.check_keys(KEYS)?;
        if d.has("var_name") && d.str("var_name")? != "energy" {
            return Err(d.err("var_name", "expected `energy`"));
        }
        if d.usize_or("dim_out", 1)? != 1 {
            return Err(d.err("dim_out", "an energy fitting has dim_out = 1"));
        }
        if d.bool_or("tot_ener_zero", false)? {
            return Err(d.err(
                "tot_ener_zero",
                "not supported (nor by DeePMD-kit's dpmodel)",
            ));
        }
        for key in ["layer_name", "spin"] {
            if d.has(key) {
                return Err(d.err(key, "not supported"));
            }
        }
        let ntypes = d.usize("ntypes")?;
        let dim_descrpt = d.usize("dim_descrpt")?;
        let neuron = d.usize_list("neuron")?;
        let numb_fparam = d.usize_or("numb_fparam", 0)?;
        let numb_aparam = d.usize_or("numb_aparam", 0)?;
        let dim_case_embd = d.usize_or("dim_case_embd", 0)?;
        let use_aparam_as_mask = d.bool_or("use_aparam_as_mask", false)?;
        let mixed_types = d.bool_or("mixed_types", false)?;
        let default_fparam = if d.has("default_fparam") {
            let v = d.f64_list("default_fparam")?;
            if v.len() != numb_fparam {
                return Err(d.err(
                    "default_fparam",
                    format!("has {} values but numb_fparam = {numb_fparam}", v.len()),
                ));
            }
            Some(v)
        } else {
            None
        };
        let atom_ener = if d.has("atom_ener") {
            d.opt_f64_list("atom_ener")?
        } else {
            Vec::new()
        };
        // InvarFitting: remove_vaccum_contribution = [x is not None …] if any is set.
        let rvc: Option<Vec<bool>> = atom_ener
            .iter()
            .any(Option::is_some)
            .then(|| atom_ener.iter().map(Option::is_some).collect());
        let vacuum = (0..ntypes)
            .map(|t| match &rvc {
                None => false,
                // DeePMD skips type t only when the list covers t and says false.
                Some(v) => mixed_types || v.len() <= t || v[t],
            })
            .collect();

        let in_dim = dim_descrpt
            + numb_fparam
            + if use_aparam_as_mask { 0 } else { numb_aparam }
            + dim_case_embd;
        let nets = NetworkCollection::<T>::parse(&d.get("nets")?, "fitting_network")?;
        let path = format!("{}.nets", d.path());
        let ndim = if mixed_types { 0 } else { 1 };
        if nets.ndim != ndim || nets.ntypes != ntypes {
            return Err(ModelError::field(
                path,
                format!(
                    "expected ndim = {ndim} and ntypes = {ntypes} (mixed_types = {mixed_types}), \
                     found ndim = {} and ntypes = {}",
                    nets.ndim, nets.ntypes
                ),
            ));
        }
        let mut want = neuron.clone();
        want.push(1);
        for (k, net) in nets.networks.iter().enumerate() {
            let net = net.as_ref().ok_or_else(|| {
                ModelError::field(format!("{path}.networks[{k}]"), "missing fitting network")
            })?;
            let widths: Vec<usize> = net.iter().map(|l| l.n_out).collect();
            if net.first().map(|l| l.n_in) != Some(in_dim) || widths != want {
                return Err(ModelError::field(
                    format!("{path}.networks[{k}]"),
                    format!(
                        "expected a fitting net {in_dim} → {want:?} (dim_descrpt {dim_descrpt} + \
                         numb_fparam {numb_fparam} + numb_aparam {numb_aparam} + dim_case_embd \
                         {dim_case_embd}), found {:?} → {widths:?}",
                        net.first().map(|l| l.n_in)
                    ),
                ));
            }
        }

        let vars = d.get("@variables")?;
        let to_t = |a: &crate::import::Array| a.data.iter().map(|&x| T::of(x)).collect::<Vec<T>>();
        let bias_atom_e = to_t(vars.array_shaped("bias_atom_e", &[ntypes, 1])?);
        let stat = |key: &str, n: usize| -> Result<Vec<T>, ModelError> {
            if n == 0 {
                Ok(Vec::new())
            } else {
                Ok(to_t(vars.array_shaped(key, &[n])?))
            }
        };
        let fparam_avg = stat("fparam_avg", numb_fparam)?;
        let fparam_inv_std = stat("fparam_inv_std", numb_fparam)?;
        let aparam_avg = stat("aparam_avg", numb_aparam)?;
        let aparam_inv_std = stat("aparam_inv_std", numb_aparam)?;
        let case_embd = if dim_case_embd > 0 {
            Some(stat("case_embd", dim_case_embd)?)
        } else {
            None
        };
        Ok(Fitting {
            ntypes,
            dim_descrpt,
            neuron,
            numb_fparam,
            numb_aparam,
            dim_case_embd,
            use_aparam_as_mask,
            mixed_types,
            activation: networks::activation(d, "activation_function")?,
            resnet_dt: d.bool_or("resnet_dt", true)?,
            default_fparam,
            atom_ener,
            vacuum,
            exclude: vec![false; ntypes],
            nets,
            bias_atom_e,
            fparam_avg,
            fparam_inv_std,
            aparam_avg,
            aparam_inv_std,
            case_embd,
        })
    }

    /// Sets the excluded atom types (the model's `atom_exclude_types`).
    pub fn set_exclude(&mut self, types: &[usize]) {
        self.exclude = (0..self.ntypes).map(|t| types.contains(&t)).collect();
    }

    /// Number of trainable scalars.
    pub fn param_count(&self) -> usize {
        self.nets
            .networks
            .iter()
            .flatten()
            .map(|n| param_count(n))
            .sum()
    }

    /// Whether the net reads aparam.
    pub fn uses_aparam(&self) -> bool {
        self.numb_aparam > 0 && !self.use_aparam_as_mask
    }

    fn in_dim(&self) -> usize {
        self.dim_descrpt
            + self.numb_fparam
            + if self.uses_aparam() {
                self.numb_aparam
            } else {
                0
            }
            + self.dim_case_embd
    }

    /// Scratch for chunks of up to `rows` atoms.
    pub fn scratch(&self, rows: usize) -> FitScratch<T> {
        FitScratch {
            stacks: self.nets.networks.iter().map(|_| StackBuf::new()).collect(),
            vacuum: StackBuf::new(),
            members: Vec::with_capacity(rows),
            ones: Vec::with_capacity(rows),
            ebuf: Vec::with_capacity(rows),
        }
    }

    /// Writes the input row of one atom (`desc` = `None` for the vacuum input).
    fn fill_row(
        &self,
        x: &mut [T],
        desc: Option<&[T]>,
        aparam: Option<&[f64]>,
        inp: &FitInputs<T>,
    ) {
        let nd = self.dim_descrpt;
        match desc {
            Some(dr) => x[..nd].copy_from_slice(dr),
            None => x[..nd].fill(T::zero()),
        }
        let mut c = nd;
        x[c..c + self.numb_fparam].copy_from_slice(&inp.fparam);
        c += self.numb_fparam;
        if self.uses_aparam() {
            let ap = aparam.unwrap_or(&[]);
            for k in 0..self.numb_aparam {
                x[c + k] = (T::of(ap[k]) - self.aparam_avg[k]) * self.aparam_inv_std[k];
            }
            c += self.numb_aparam;
        }
        x[c..c + self.dim_case_embd].copy_from_slice(&inp.case_embd);
    }

    /// Atomic energies (fitting output, before the model's `out_bias`) of `rows` atoms into
    /// `energy`, and, if `d_desc` is given, `∂e_i/∂D_i` into its rows (`rows × dim_descrpt`).
    /// `aparam` holds `rows × numb_aparam` raw values when the net reads aparam. Atoms of type
    /// `-1` or of an excluded type get `e = 0` and a zero gradient.
    #[allow(clippy::too_many_arguments)]
    pub fn run_chunk(
        &self,
        desc: &[T],
        types: &[i32],
        aparam: Option<&[f64]>,
        inp: &FitInputs<T>,
        scratch: &mut FitScratch<T>,
        energy: &mut [f64],
        mut d_desc: Option<&mut [T]>,
    ) {
        let rows = types.len();
        let (nd, na, ni) = (self.dim_descrpt, self.numb_aparam, self.in_dim());
        energy[..rows].fill(0.0);
        if let Some(dd) = d_desc.as_deref_mut() {
            dd[..rows * nd].fill(T::zero());
        }
        let FitScratch {
            stacks,
            vacuum,
            members,
            ones,
            ebuf,
        } = scratch;
        for (k, stack) in stacks.iter_mut().enumerate() {
            let Some(net) = self.nets.networks[k].as_deref() else {
                continue;
            };
            members.clear();
            members.extend((0..rows).filter(|&r| {
                usize::try_from(types[r])
                    .is_ok_and(|t| !self.exclude[t] && (self.mixed_types || t == k))
            }));
            let n = members.len();
            if n == 0 {
                continue;
            }
            let ap_row = |r: usize| aparam.map(|a| &a[r * na..(r + 1) * na]);
            for (x, &r) in stack.input(net, n).chunks_exact_mut(ni).zip(members.iter()) {
                self.fill_row(x, Some(&desc[r * nd..(r + 1) * nd]), ap_row(r), inp);
            }
            let out = stack.forward(net, n, d_desc.is_some());
            ebuf.clear();
            ebuf.extend_from_slice(out);
            // Vacuum contribution: the same net on the input with D = 0.
            if members.iter().any(|&r| self.vacuum[types[r] as usize]) {
                for (x, &r) in vacuum
                    .input(net, n)
                    .chunks_exact_mut(ni)
                    .zip(members.iter())
                {
                    self.fill_row(x, None, ap_row(r), inp);
                }
                let out0 = vacuum.forward(net, n, false);
                for ((e, &r), &y0) in ebuf.iter_mut().zip(members.iter()).zip(out0) {
                    if self.vacuum[types[r] as usize] {
                        *e -= y0;
                    }
                }
            }
            for (&e, &r) in ebuf.iter().zip(members.iter()) {
                // bias_atom_e is added in the fitting precision, as DeePMD-kit does.
                energy[r] = (e + self.bias_atom_e[types[r] as usize]).f64();
            }
            if let Some(dd) = d_desc.as_deref_mut() {
                ones.clear();
                ones.resize(n, T::one());
                let dx = stack.backward(net, n, ones);
                for (g, &r) in dx.chunks_exact(ni).zip(members.iter()) {
                    dd[r * nd..(r + 1) * nd].copy_from_slice(&g[..nd]);
                }
            }
        }
    }
}

/// Per-evaluation fitting inputs in the fitting precision: normalised fparam and the case
/// embedding.
#[derive(Debug, Clone)]
pub struct FitInputs<T> {
    fparam: Vec<T>,
    case_embd: Vec<T>,
}

impl<T: Real> FitInputs<T> {
    /// Checks and normalises `fparam` (falling back to `default_fparam`) and picks the case
    /// embedding (the stored one, or one-hot of `head`).
    pub fn new(
        fit: &Fitting<T>,
        fparam: Option<&[f64]>,
        head: Option<usize>,
    ) -> Result<Self, String> {
        let raw: Vec<f64> = match (fit.numb_fparam, fparam) {
            (0, None) => Vec::new(),
            (0, Some(_)) => return Err("the model takes no fparam".into()),
            (n, Some(v)) if v.len() == n => v.to_vec(),
            (n, Some(v)) => {
                return Err(format!(
                    "fparam has {} values, the model needs {n}",
                    v.len()
                ))
            }
            (n, None) => fit.default_fparam.clone().ok_or_else(|| {
                format!("the model needs fparam ({n} values) and has no default_fparam")
            })?,
        };
        let fparam = raw
            .iter()
            .enumerate()
            .map(|(k, &v)| (T::of(v) - fit.fparam_avg[k]) * fit.fparam_inv_std[k])
            .collect();
        let case_embd = match (head, &fit.case_embd) {
            (None, Some(c)) => c.clone(),
            (None, None) => Vec::new(),
            (Some(h), Some(_)) if h < fit.dim_case_embd => (0..fit.dim_case_embd)
                .map(|k| if k == h { T::one() } else { T::zero() })
                .collect(),
            (Some(h), Some(_)) => {
                return Err(format!(
                    "head {h} is out of range: the model has {} heads (dim_case_embd)",
                    fit.dim_case_embd
                ))
            }
            (Some(_), None) => return Err("the model has a single head (dim_case_embd = 0)".into()),
        };
        Ok(FitInputs { fparam, case_embd })
    }
}

/// Reusable per-chunk buffers of [`Fitting`].
#[derive(Debug, Clone)]
pub struct FitScratch<T> {
    stacks: Vec<StackBuf<T>>,
    vacuum: StackBuf<T>,
    members: Vec<usize>,
    ones: Vec<T>,
    ebuf: Vec<T>,
}
