//! The standard energy model (`deepmd/dpmodel/atomic_model/dp_atomic_model.py`,
//! `model/make_model.py`): descriptor → energy fitting → `out_bias`, with forces and virials.
//!
//! Per local atom `i` of type `t`: `e_i = fitting(D_i) + out_bias[t]` (added in f64), zero
//! for `atom_exclude_types` and for type `-1`; `E = Σ e_i` in f64. `F_e = −∂E/∂x_e` over every
//! extended atom. The per-atom virial is DeePMD-kit's translation-invariant one,
//! `W_e[k][c] = −Σ_l ∂e_l/∂x_{e,k}·(x_e − x_l)_c` (`do_atomic_virial`), and the virial is
//! `Σ_e W_e`, which equals `Σ_e F_e ⊗ x_e` (the correction sums to zero).
//!
//! - se_e2_a: `e_l` depends on `x_e` only through `d_le = x_e − x_l`, so the descriptor's pair
//!   gradients `g = ∂e_l/∂d_le` give `F_e −= g`, `F_l += g` and `W_e −= g ⊗ d_le`, all from
//!   one backward pass.
//! - DPA3: the backward gives `∂E/∂x` only; with [`EvalParams::atomic_virial`] three more
//!   backward passes, seeded with `x_l,c·∂e_l/∂D_l`, give `Σ_l ∂e_l/∂x_e ⊗ x_l`
//!   (DeePMD-kit's `atomic_virial_corr`), so `W_e = −∂E/∂x_e ⊗ x_e + that`.
//!
//! Model-level `pair_exclude_types` is applied to the neighbour list here (excluded entries
//! become `-1` after sorting and truncation, as DeePMD-kit's builder does), and neighbours of
//! type `-1` are dropped, so callers pass the plain [`halo_nlist::NeighborList::to_dense`]
//! layout.

use std::fmt;
use std::path::{Path, PathBuf};

use halo_core::{Exchange, ExchangeError, ExchangeSlot, MappingExchange, RowsMut, System};
use halo_nlist::{NeighborList, NlistError, Sel};
use rayon::prelude::*;
use serde_json::Value;
use thiserror::Error;

use crate::descriptor::dpa3::Dpa3;
use crate::descriptor::se_e2_a::SeA;
use crate::descriptor::DescriptorInput;
use crate::exclude::{AtomExclude, PairExclude};
use crate::fitting::{FitInputs, Fitting};
use crate::import::{Dict, ModelError, ModelFile};
use crate::networks;
use crate::{Precision, Real};

/// Local atoms per parallel task. Fixed, so results do not depend on the thread count.
const CHUNK: usize = 16;
/// Chunks whose pair gradients are held at once before they are scattered in order.
const WAVE_CHUNKS: usize = 64;

/// Keys of the `model` node (`DPAtomicModel.serialize` and constructor arguments).
const MODEL_KEYS: &[&str] = &[
    "@class",
    "type",
    "@version",
    "type_map",
    "atom_exclude_types",
    "pair_exclude_types",
    "rcond",
    "preset_out_bias",
    "data_stat_protect",
    "@variables",
    "descriptor",
    "fitting",
];

/// Evaluation failed: bad inputs, the neighbour list, or the ghost exchange.
#[derive(Debug, Error)]
pub enum EvalError {
    /// The inputs do not fit the model (lengths, types, fparam/aparam, head).
    #[error("invalid input: {0}")]
    Input(String),
    /// Building the extended system or the neighbour list failed.
    #[error(transparent)]
    Nlist(#[from] NlistError),
    /// A ghost exchange failed.
    #[error(transparent)]
    Exchange(#[from] ExchangeError),
}

/// Per-evaluation inputs besides the geometry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EvalParams {
    /// Frame parameters (`numb_fparam` values); `None` uses the model's `default_fparam`.
    pub fparam: Option<Vec<f64>>,
    /// Atomic parameters of the local atoms, `nloc × numb_aparam` row-major.
    pub aparam: Option<Vec<f64>>,
    /// Head (case) index for models with `dim_case_embd > 0`; `None` keeps the file's
    /// `case_embd`. See [`crate::fitting`] for how DeePMD-kit numbers heads.
    pub head: Option<usize>,
    /// Compute per-atom virials (free for se_e2_a; three extra backward passes for DPA3).
    pub atomic_virial: bool,
}

/// What [`EnergyModel::evaluate`] returns, on the extended system.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelOutput {
    /// Total energy of the local atoms (eV).
    pub energy: f64,
    /// Energy of each local atom (`nloc`).
    pub atom_energy: Vec<f64>,
    /// Force on every extended atom (`nall`), not yet folded onto owners (eV/Å).
    pub force: Vec<[f64; 3]>,
    /// Virial, row-major `3k + c` with `k` the force component (eV).
    pub virial: [f64; 9],
    /// Per-atom virial of every extended atom (`nall`), empty unless requested.
    pub atom_virial: Vec<[f64; 9]>,
}

/// What [`EnergyModel::evaluate_neighbors`] returns: the model output and what the `sel`
/// layout had to leave out.
#[derive(Debug, Clone, PartialEq)]
pub struct NeighborOutput {
    /// The model output on the extended system.
    pub output: ModelOutput,
    /// Neighbours within the cutoff left out for lack of `sel` slots.
    pub dropped: usize,
    /// A report naming the worst atoms, if any neighbour was dropped.
    pub warning: Option<String>,
}

/// What [`EnergyModel::evaluate_system`] returns, folded onto the local atoms.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalOutput {
    /// Total energy (eV).
    pub energy: f64,
    /// Energy of each atom.
    pub atom_energy: Vec<f64>,
    /// Force on each atom (eV/Å).
    pub force: Vec<[f64; 3]>,
    /// Virial, row-major `3k + c` (eV).
    pub virial: [f64; 9],
    /// Per-atom virial, empty unless requested.
    pub atom_virial: Vec<[f64; 9]>,
    /// Neighbour-list overflow report, if neighbours were dropped for lack of `sel` slots.
    pub warning: Option<String>,
}

/// A human-readable account of a model, for `halomd inspect`.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSummary {
    /// The model file.
    pub path: PathBuf,
    /// Software that wrote it (`deepmd-kit 3.2.0`), if recorded.
    pub software: Option<String>,
    /// Type names, index = model type.
    pub type_map: Vec<String>,
    /// Descriptor type (`se_e2_a`, `dpa3`).
    pub descriptor: String,
    /// Neighbour cutoff (Å).
    pub rcut: f64,
    /// Neighbour-list layout.
    pub sel: Sel,
    /// Descriptor output width.
    pub dim_descrpt: usize,
    /// Descriptor precision.
    pub descriptor_precision: Precision,
    /// Fitting precision.
    pub fitting_precision: Precision,
    /// Scalar descriptor options as stored (`key = value`).
    pub descriptor_options: Vec<(String, String)>,
    /// Fitting hidden widths.
    pub fitting_neuron: Vec<usize>,
    /// Frame / atomic parameter counts and case-embedding width.
    pub numb_fparam: usize,
    /// Atomic parameters per atom.
    pub numb_aparam: usize,
    /// Number of heads (`dim_case_embd`), 0 for single-head models.
    pub dim_case_embd: usize,
    /// Trainable scalars (network weights, biases, timesteps, residuals).
    pub n_params: usize,
    /// Ghost exchanges per evaluation (forward and reverse).
    pub comm_slots: usize,
}

impl fmt::Display for ModelSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "model         {}", self.path.display())?;
        if let Some(s) = &self.software {
            writeln!(f, "written by    {s}")?;
        }
        writeln!(f, "type map      {}", self.type_map.join(" "))?;
        writeln!(
            f,
            "descriptor    {} ({}), rcut {} Å, dim_out {}",
            self.descriptor, self.descriptor_precision, self.rcut, self.dim_descrpt
        )?;
        match &self.sel {
            Sel::Typed(s) => writeln!(f, "sel           {s:?} (per type)")?,
            Sel::Mixed(n) => writeln!(f, "sel           {n} (mixed types, distance-sorted)")?,
        }
        for (k, v) in &self.descriptor_options {
            writeln!(f, "  {k:<36} {v}")?;
        }
        writeln!(
            f,
            "fitting       ener ({}), neuron {:?}, numb_fparam {}, numb_aparam {}, heads {}",
            self.fitting_precision,
            self.fitting_neuron,
            self.numb_fparam,
            self.numb_aparam,
            self.dim_case_embd
        )?;
        writeln!(f, "parameters    {}", self.n_params)?;
        write!(f, "ghost exchanges per evaluation: {}", self.comm_slots)
    }
}

#[derive(Debug, Clone)]
enum Desc {
    SeA32(SeA<f32>),
    SeA64(SeA<f64>),
    Dpa3F32(Box<Dpa3<f32>>),
    Dpa3F64(Box<Dpa3<f64>>),
}

#[derive(Debug, Clone)]
enum Fit {
    F32(Fitting<f32>),
    F64(Fitting<f64>),
}

/// A loaded DeePMD-kit energy model (`model.type == "standard"`, fitting `ener`).
#[derive(Debug, Clone)]
pub struct EnergyModel {
    summary: ModelSummary,
    type_map: Vec<String>,
    desc: Desc,
    fit: Fit,
    /// `out_bias[0, t, 0]`.
    out_bias: Vec<f64>,
    atom_exclude: AtomExclude,
    pair_exclude: PairExclude,
}

impl EnergyModel {
    /// Sets the bytes of intermediates one evaluation may keep from its forward pass for its
    /// backward instead of recomputing them (DPA3's angle pairs; see
    /// [`crate::descriptor::dpa3::DEFAULT_STORE_BUDGET`]). Results are the same bits for
    /// any budget; se_e2_a keeps nothing.
    pub fn set_store_budget(&mut self, bytes: usize) {
        match &mut self.desc {
            Desc::Dpa3F32(d) => d.set_store_budget(bytes),
            Desc::Dpa3F64(d) => d.set_store_budget(bytes),
            _ => {}
        }
    }

    /// Loads a `.dp`/`.hlo`/`.yaml`/`.yml` model file.
    /// Field errors are reported with the file name in front, so a user with several models
    /// knows which one is at fault.
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        Self::from_file(&ModelFile::open(path)?).map_err(|e| match e {
            ModelError::Field {
                path: field,
                message,
            } => ModelError::File {
                path: path.to_path_buf(),
                message: format!("{field}: {message}"),
            },
            other => other,
        })
    }

    /// Builds the model from a loaded file.
    pub fn from_file(file: &ModelFile) -> Result<Self, ModelError> {
        let root = file.root();
        let m = root.get("model")?;
        let class = m.opt("@class").map(|_| m.str("@class")).transpose()?;
        if let Some(c) = class.filter(|&c| c != "Model") {
            return Err(m.err("@class", format!("expected a `Model`, found `{c}`")));
        }
        let ty = if m.has("type") {
            m.str("type")?
        } else {
            "standard"
        };
        if ty != "standard" {
            return Err(m.err(
                "type",
                format!(
                    "model type `{ty}` is not supported (halomd evaluates `standard` \
                     descriptor + fitting models)"
                ),
            ));
        }
        networks::version(&m, 2, 2)?;
        m.check_keys(MODEL_KEYS)?;
        let type_map = m.str_list("type_map")?;
        let ntypes = type_map.len();
        if ntypes == 0 {
            return Err(m.err("type_map", "is empty"));
        }

        let dd = m.get("descriptor")?;
        let d_prec = Precision::parse(&dd, "precision")?;
        let dtype = dd.str("type")?;
        let desc = match (dtype, d_prec) {
            ("se_e2_a" | "se_a", Precision::F32) => Desc::SeA32(SeA::from_dict(&dd)?),
            ("se_e2_a" | "se_a", Precision::F64) => Desc::SeA64(SeA::from_dict(&dd)?),
            ("dpa3", Precision::F32) => Desc::Dpa3F32(Box::new(Dpa3::from_dict(&dd)?)),
            ("dpa3", Precision::F64) => Desc::Dpa3F64(Box::new(Dpa3::from_dict(&dd)?)),
            (other, _) => {
                return Err(dd.err(
                    "type",
                    format!(
                        "descriptor type `{other}` is not supported (halomd evaluates se_e2_a \
                         and dpa3)"
                    ),
                ))
            }
        };
        let (d_ntypes, dim_out) = match &desc {
            Desc::SeA32(d) => (d.ntypes(), d.dim_out()),
            Desc::SeA64(d) => (d.ntypes(), d.dim_out()),
            Desc::Dpa3F32(d) => (d.ntypes(), d.dim_out()),
            Desc::Dpa3F64(d) => (d.ntypes(), d.dim_out()),
        };
        if d_ntypes != ntypes {
            return Err(dd.err(
                "",
                format!("describes {d_ntypes} types but the model's type_map has {ntypes}"),
            ));
        }

        let fd = m.get("fitting")?;
        let f_prec = Precision::parse(&fd, "precision")?;
        let atom_exclude = AtomExclude::parse(&m, "atom_exclude_types", ntypes)?;
        let mut fit = match f_prec {
            Precision::F32 => Fit::F32(Fitting::from_dict(&fd)?),
            Precision::F64 => Fit::F64(Fitting::from_dict(&fd)?),
        };
        let (f_ntypes, f_dim, mixed) = match &mut fit {
            Fit::F32(f) => {
                f.set_exclude(&atom_exclude.types);
                (f.ntypes, f.dim_descrpt, f.mixed_types)
            }
            Fit::F64(f) => {
                f.set_exclude(&atom_exclude.types);
                (f.ntypes, f.dim_descrpt, f.mixed_types)
            }
        };
        if f_ntypes != ntypes {
            return Err(fd.err("ntypes", format!("is {f_ntypes}, type_map has {ntypes}")));
        }
        if f_dim != dim_out {
            return Err(fd.err(
                "dim_descrpt",
                format!("is {f_dim} but the descriptor's rows have width {dim_out}"),
            ));
        }
        let is_dpa3 = matches!(desc, Desc::Dpa3F32(_) | Desc::Dpa3F64(_));
        if is_dpa3 && !mixed {
            return Err(fd.err("mixed_types", "a dpa3 model needs a mixed_types fitting"));
        }

        let vars = m.get("@variables")?;
        let out_bias = vars.array_shaped("out_bias", &[1, ntypes, 1])?.data.clone();
        let pair_exclude = PairExclude::parse(&m, "pair_exclude_types", ntypes)?;

        let mut model = EnergyModel {
            summary: ModelSummary {
                path: file.path.clone(),
                software: software(&root),
                type_map: type_map.clone(),
                descriptor: if is_dpa3 { "dpa3" } else { "se_e2_a" }.to_string(),
                rcut: 0.0,
                sel: Sel::Mixed(0),
                dim_descrpt: dim_out,
                descriptor_precision: d_prec,
                fitting_precision: f_prec,
                descriptor_options: options(dd.value()),
                fitting_neuron: Vec::new(),
                numb_fparam: 0,
                numb_aparam: 0,
                dim_case_embd: 0,
                n_params: count_params(m.value(), file),
                comm_slots: 0,
            },
            type_map,
            desc,
            fit,
            out_bias,
            atom_exclude,
            pair_exclude,
        };
        model.summary.rcut = model.rcut();
        model.summary.sel = model.nnei_layout();
        model.summary.comm_slots = model.comm_slots().len();
        let (neuron, nf, na, nc) = match &model.fit {
            Fit::F32(f) => (
                f.neuron.clone(),
                f.numb_fparam,
                f.numb_aparam,
                f.dim_case_embd,
            ),
            Fit::F64(f) => (
                f.neuron.clone(),
                f.numb_fparam,
                f.numb_aparam,
                f.dim_case_embd,
            ),
        };
        model.summary.fitting_neuron = neuron;
        model.summary.numb_fparam = nf;
        model.summary.numb_aparam = na;
        model.summary.dim_case_embd = nc;
        Ok(model)
    }

    /// Type names; model type `t` is `type_map()[t]`.
    pub fn type_map(&self) -> &[String] {
        &self.type_map
    }

    /// Neighbour cutoff (Å).
    pub fn rcut(&self) -> f64 {
        match &self.desc {
            Desc::SeA32(d) => d.rcut,
            Desc::SeA64(d) => d.rcut,
            Desc::Dpa3F32(d) => d.rcut(),
            Desc::Dpa3F64(d) => d.rcut(),
        }
    }

    /// The dense neighbour-list layout [`EnergyModel::evaluate`] expects.
    pub fn nnei_layout(&self) -> Sel {
        match &self.desc {
            Desc::SeA32(d) => Sel::Typed(d.sel.clone()),
            Desc::SeA64(d) => Sel::Typed(d.sel.clone()),
            Desc::Dpa3F32(d) => Sel::Mixed(d.nnei()),
            Desc::Dpa3F64(d) => Sel::Mixed(d.nnei()),
        }
    }

    /// The ghost exchanges an evaluation issues (none for se_e2_a; one per layer for DPA3).
    pub fn comm_slots(&self) -> Vec<ExchangeSlot> {
        match &self.desc {
            Desc::SeA32(_) | Desc::SeA64(_) => Vec::new(),
            Desc::Dpa3F32(d) => d.comm_slots(),
            Desc::Dpa3F64(d) => d.comm_slots(),
        }
    }

    /// Frame parameters the model reads.
    pub fn numb_fparam(&self) -> usize {
        self.summary.numb_fparam
    }

    /// Atomic parameters per atom the model reads.
    pub fn numb_aparam(&self) -> usize {
        match &self.fit {
            Fit::F32(f) if f.uses_aparam() => f.numb_aparam,
            Fit::F64(f) if f.uses_aparam() => f.numb_aparam,
            _ => 0,
        }
    }

    /// Summary for display.
    pub fn summary(&self) -> ModelSummary {
        self.summary.clone()
    }

    /// Energy, forces and virials of the local atoms of `input`, whose nlist is in the layout
    /// of [`EnergyModel::nnei_layout`]. Ghost rows are filled through `ex` (DPA3 only).
    pub fn evaluate(
        &self,
        input: &DescriptorInput,
        ex: &mut dyn Exchange,
        params: &EvalParams,
    ) -> Result<ModelOutput, EvalError> {
        self.check_input(input)?;
        let nlist = self.prepare_nlist(input);
        let input = DescriptorInput {
            nlist: &nlist,
            ..*input
        };
        match (&self.desc, &self.fit) {
            (Desc::SeA32(d), Fit::F32(f)) => self.run_se_a(d, f, &input, params),
            (Desc::SeA32(d), Fit::F64(f)) => self.run_se_a(d, f, &input, params),
            (Desc::SeA64(d), Fit::F32(f)) => self.run_se_a(d, f, &input, params),
            (Desc::SeA64(d), Fit::F64(f)) => self.run_se_a(d, f, &input, params),
            (Desc::Dpa3F32(d), Fit::F32(f)) => self.run_dpa3(d, f, &input, ex, params),
            (Desc::Dpa3F32(d), Fit::F64(f)) => self.run_dpa3(d, f, &input, ex, params),
            (Desc::Dpa3F64(d), Fit::F32(f)) => self.run_dpa3(d, f, &input, ex, params),
            (Desc::Dpa3F64(d), Fit::F64(f)) => self.run_dpa3(d, f, &input, ex, params),
        }
    }

    /// Evaluates an extended system from its neighbour list within [`EnergyModel::rcut`]
    /// (rows sorted by distance, as `NeighborList::build` and `within` leave them): the step
    /// every caller shares, one process or one rank of many. `types` holds the model type of
    /// every extended atom, `-1` for atoms left out of the model (LAMMPS `NULL` types), which
    /// leave the list entirely, as DeePMD-kit drops them before its search, so they never
    /// take a `sel` slot. The list is then cut to the `sel` layout.
    pub fn evaluate_neighbors(
        &self,
        coords: &[[f64; 3]],
        types: &[i32],
        nloc: usize,
        list: NeighborList,
        ex: &mut dyn Exchange,
        params: &EvalParams,
    ) -> Result<NeighborOutput, EvalError> {
        let list = if types.iter().any(|&t| t < 0) {
            let keep: Vec<bool> = types.iter().map(|&t| t >= 0).collect();
            list.retain(&keep)?
        } else {
            list
        };
        // A left-out atom's type index is never read once it has left the list.
        let sel_types: Vec<usize> = types.iter().map(|&t| t.max(0) as usize).collect();
        let dense = list.to_dense(&sel_types, &self.nnei_layout())?;
        let input = DescriptorInput {
            coords,
            types,
            nloc,
            nlist: &dense.nlist,
            nnei: dense.width,
        };
        let output = self.evaluate(&input, ex, params)?;
        Ok(NeighborOutput {
            output,
            dropped: dense.overflow.dropped,
            warning: dense.warning(),
        })
    }

    /// Single-process evaluation of a whole system: maps its type names onto the model's,
    /// extends it by periodic images, builds the neighbour list, evaluates, and folds ghost
    /// forces and virials onto their owners.
    pub fn evaluate_system(
        &self,
        system: &System,
        params: &EvalParams,
    ) -> Result<LocalOutput, EvalError> {
        let types = self.map_types(system)?;
        // Wrapped into the cell as DeePMD-kit's `normalize_coord` (and LAMMPS) do. Energies,
        // forces and the virial do not depend on it, but DPA3's per-atom virials do: the ghost
        // copies of a node embedding carry the gradient of their owner's neighbourhood, whose
        // positions enter `x_e − x_l` in the owner's frame.
        let positions: Vec<[f64; 3]> = match &system.cell {
            Some(cell) => system.positions.iter().map(|&x| cell.wrap(x)).collect(),
            None => system.positions.clone(),
        };
        let ext = halo_nlist::extend(&positions, system.cell.as_ref(), self.rcut())?;
        let list = NeighborList::build(&ext.coords, ext.nloc, self.rcut())?;
        let ext_types: Vec<i32> = ext
            .extend_values(&types)?
            .iter()
            .map(|&t| t as i32)
            .collect();
        let mut ex = MappingExchange::new(ext.mapping.clone(), ext.nloc);
        let NeighborOutput {
            output: out,
            warning,
            ..
        } = self.evaluate_neighbors(&ext.coords, &ext_types, ext.nloc, list, &mut ex, params)?;
        let nloc = ext.nloc;
        let mut force: Vec<f64> = out.force.iter().flatten().copied().collect();
        ex.reverse(RowsMut::F64(&mut force), 3)?;
        let force = force[..nloc * 3]
            .chunks_exact(3)
            .map(|c| [c[0], c[1], c[2]])
            .collect();
        let atom_virial = if out.atom_virial.is_empty() {
            Vec::new()
        } else {
            let mut av: Vec<f64> = out.atom_virial.iter().flatten().copied().collect();
            ex.reverse(RowsMut::F64(&mut av), 9)?;
            av[..nloc * 9]
                .chunks_exact(9)
                .map(|c| std::array::from_fn(|k| c[k]))
                .collect()
        };
        Ok(LocalOutput {
            energy: out.energy,
            atom_energy: out.atom_energy,
            force,
            virial: out.virial,
            atom_virial,
            warning,
        })
    }

    /// Model type of each atom, `-1` for atoms whose type name is in `null` (LAMMPS `NULL`
    /// types: outside the model, no energy, zero model force); any other name missing from
    /// the type map is an error.
    pub fn map_types_null(&self, system: &System, null: &[String]) -> Result<Vec<i32>, EvalError> {
        system
            .types
            .iter()
            .enumerate()
            .map(|(i, &t)| {
                let name = system.type_names.get(t).map_or("?", String::as_str);
                if null.iter().any(|n| n == name) {
                    return Ok(-1);
                }
                let m = self.type_map.iter().position(|m| m == name);
                m.map(|m| m as i32).ok_or_else(|| {
                    EvalError::Input(format!(
                        "atom {i} is `{name}`, which is not in the model's type map [{}] \
                         (list it in `--null-types` of eval or `null_types` of a run input to leave such atoms out of the model)",
                        self.type_map.join(", ")
                    ))
                })
            })
            .collect()
    }

    /// Model type of each atom of `system`; an element missing from the type map is an error.
    pub fn map_types(&self, system: &System) -> Result<Vec<usize>, EvalError> {
        let table: Vec<Option<usize>> = system
            .type_names
            .iter()
            .map(|n| self.type_map.iter().position(|m| m == n))
            .collect();
        system
            .types
            .iter()
            .enumerate()
            .map(|(i, &t)| {
                table.get(t).copied().flatten().ok_or_else(|| {
                    EvalError::Input(format!(
                        "atom {i} is `{}`, which is not in the model's type map [{}]",
                        system.type_names.get(t).map_or("?", String::as_str),
                        self.type_map.join(", ")
                    ))
                })
            })
            .collect()
    }

    fn check_input(&self, input: &DescriptorInput) -> Result<(), EvalError> {
        let nall = input.coords.len();
        let width = self.nnei_layout().width();
        let bad = |m: String| Err(EvalError::Input(m));
        if input.types.len() != nall {
            return bad(format!("{} types for {nall} atoms", input.types.len()));
        }
        if input.nloc > nall {
            return bad(format!("nloc = {} exceeds nall = {nall}", input.nloc));
        }
        if input.nnei != width {
            return bad(format!(
                "neighbour list has width {}, the model needs sum(sel) = {width}",
                input.nnei
            ));
        }
        if input.nlist.len() != input.nloc * width {
            return bad(format!(
                "neighbour list has {} entries, expected nloc × {width} = {}",
                input.nlist.len(),
                input.nloc * width
            ));
        }
        if let Some(&j) = input
            .nlist
            .iter()
            .find(|&&j| j < -1 || j as i64 >= nall as i64)
        {
            return bad(format!("neighbour index {j} outside -1..{nall}"));
        }
        let nt = self.type_map.len() as i32;
        if let Some(i) = input.types.iter().position(|&t| t < -1 || t >= nt) {
            return bad(format!(
                "atom {i} has type {} (the model has types 0..{nt}, and -1 for none)",
                input.types[i]
            ));
        }
        if let Some(i) = input
            .coords
            .iter()
            .position(|c| c.iter().any(|v| !v.is_finite()))
        {
            return bad(format!("coordinates of atom {i} are not finite"));
        }
        Ok(())
    }

    /// The nlist with model-level pair exclusions and type `-1` neighbours (and the rows of
    /// type `-1` centres) set to `-1`.
    fn prepare_nlist(&self, input: &DescriptorInput) -> Vec<i32> {
        let mut nlist = input.nlist.to_vec();
        let nnei = input.nnei.max(1);
        for (i, row) in nlist.chunks_exact_mut(nnei).enumerate().take(input.nloc) {
            let Ok(ti) = usize::try_from(input.types[i]) else {
                row.fill(-1);
                continue;
            };
            for j in row.iter_mut().filter(|j| **j >= 0) {
                let tj = usize::try_from(input.types[*j as usize]).ok();
                if tj.is_none() || !self.pair_exclude.keeps(ti, tj) {
                    *j = -1;
                }
            }
        }
        nlist
    }

    fn fit_inputs<Tf: Real>(
        fit: &Fitting<Tf>,
        input: &DescriptorInput,
        params: &EvalParams,
    ) -> Result<FitInputs<Tf>, EvalError> {
        if fit.uses_aparam() {
            let want = input.nloc * fit.numb_aparam;
            match &params.aparam {
                None => {
                    return Err(EvalError::Input(format!(
                        "the model needs aparam ({} per atom)",
                        fit.numb_aparam
                    )))
                }
                Some(a) if a.len() != want => {
                    return Err(EvalError::Input(format!(
                        "aparam has {} values, expected nloc × {} = {want}",
                        a.len(),
                        fit.numb_aparam
                    )))
                }
                _ => {}
            }
        } else if params.aparam.is_some() && fit.numb_aparam == 0 {
            return Err(EvalError::Input("the model takes no aparam".into()));
        }
        FitInputs::new(fit, params.fparam.as_deref(), params.head).map_err(EvalError::Input)
    }

    /// `e_i` from the fitting output: `+ out_bias`, zero for excluded and type `-1` atoms.
    fn finish_energy(&self, types: &[i32], fitted: &mut [f64]) {
        for (e, &t) in fitted.iter_mut().zip(types) {
            *e = match usize::try_from(t) {
                Ok(t) if !self.atom_exclude.excludes(t) => *e + self.out_bias[t],
                _ => 0.0,
            };
        }
    }

    fn run_se_a<Td: Real, Tf: Real>(
        &self,
        desc: &SeA<Td>,
        fit: &Fitting<Tf>,
        input: &DescriptorInput,
        params: &EvalParams,
    ) -> Result<ModelOutput, EvalError> {
        let inputs = Self::fit_inputs(fit, input, params)?;
        let (nloc, nall, nnei) = (input.nloc, input.coords.len(), desc.nnei);
        let (dim, na) = (desc.dim_out(), fit.numb_aparam);
        let aparam = params.aparam.as_deref().filter(|_| fit.uses_aparam());
        let mut atom_energy = vec![0.0; nloc];
        let mut force = vec![[0.0; 3]; nall];
        let mut atom_virial = vec![[0.0; 9]; nall];
        let wave = CHUNK * WAVE_CHUNKS;
        let mut pair_grad = vec![[0.0; 3]; wave.min(nloc) * nnei];
        for w0 in (0..nloc).step_by(wave) {
            let rows = wave.min(nloc - w0);
            let grads = &mut pair_grad[..rows * nnei];
            grads
                .par_chunks_mut(CHUNK * nnei)
                .zip(atom_energy[w0..w0 + rows].par_chunks_mut(CHUNK))
                .enumerate()
                .for_each_init(
                    || SeAChunk::new(desc, fit),
                    |s, (c, (pg, en))| {
                        let first = w0 + c * CHUNK;
                        let n = en.len();
                        desc.forward_chunk(input, first, n, &mut s.sd, &mut s.d);
                        for (y, x) in s.df.iter_mut().zip(&s.d[..n * dim]) {
                            *y = Tf::of(x.f64());
                        }
                        let ap = aparam.map(|a| &a[first * na..(first + n) * na]);
                        let types = &input.types[first..first + n];
                        fit.run_chunk(
                            &s.df[..n * dim],
                            types,
                            ap,
                            &inputs,
                            &mut s.sf,
                            en,
                            Some(&mut s.gf),
                        );
                        for (y, x) in s.gd.iter_mut().zip(&s.gf[..n * dim]) {
                            *y = Td::of(x.f64());
                        }
                        desc.backward_chunk(input, first, n, &mut s.sd, &s.gd, pg);
                    },
                );
            // Scatter in atom and slot order: deterministic for any thread count.
            for (k, pg) in grads.chunks_exact(nnei).enumerate() {
                let i = w0 + k;
                let xi = input.coords[i];
                for (s, g) in pg.iter().enumerate() {
                    let j = input.nlist[i * nnei + s];
                    if j < 0 || *g == [0.0; 3] {
                        continue;
                    }
                    let j = j as usize;
                    let xj = input.coords[j];
                    let d = [xj[0] - xi[0], xj[1] - xi[1], xj[2] - xi[2]];
                    for a in 0..3 {
                        force[j][a] -= g[a];
                        force[i][a] += g[a];
                    }
                    // Always needed: the virial is their sum.
                    for a in 0..3 {
                        for c in 0..3 {
                            atom_virial[j][3 * a + c] -= g[a] * d[c];
                        }
                    }
                }
            }
        }
        self.finish_energy(&input.types[..nloc], &mut atom_energy);
        let mut virial = [0.0; 9];
        for w in &atom_virial {
            for (v, x) in virial.iter_mut().zip(w) {
                *v += x;
            }
        }
        if !params.atomic_virial {
            atom_virial = Vec::new();
        }
        Ok(ModelOutput {
            energy: atom_energy.iter().sum(),
            atom_energy,
            force,
            virial,
            atom_virial,
        })
    }

    fn run_dpa3<Td: Real, Tf: Real>(
        &self,
        desc: &Dpa3<Td>,
        fit: &Fitting<Tf>,
        input: &DescriptorInput,
        ex: &mut dyn Exchange,
        params: &EvalParams,
    ) -> Result<ModelOutput, EvalError> {
        let inputs = Self::fit_inputs(fit, input, params)?;
        let (nloc, nall) = (input.nloc, input.coords.len());
        let (dim, na) = (desc.dim_out(), fit.numb_aparam);
        let aparam = params.aparam.as_deref().filter(|_| fit.uses_aparam());
        let (d, state) = desc.forward(input, ex)?;
        let mut atom_energy = vec![0.0; nloc];
        let mut d_desc = vec![Td::zero(); nloc * dim];
        d_desc
            .par_chunks_mut(CHUNK * dim.max(1))
            .zip(atom_energy.par_chunks_mut(CHUNK))
            .enumerate()
            .for_each_init(
                || {
                    (
                        fit.scratch(CHUNK),
                        vec![Tf::zero(); CHUNK * dim],
                        vec![Tf::zero(); CHUNK * dim],
                    )
                },
                |(sf, df, gf), (c, (gd, en))| {
                    let first = c * CHUNK;
                    let n = en.len();
                    for (y, x) in df.iter_mut().zip(&d[first * dim..(first + n) * dim]) {
                        *y = Tf::of(x.f64());
                    }
                    let ap = aparam.map(|a| &a[first * na..(first + n) * na]);
                    let types = &input.types[first..first + n];
                    fit.run_chunk(
                        &df[..n * dim],
                        types,
                        ap,
                        &inputs,
                        sf,
                        en,
                        Some(&mut gf[..]),
                    );
                    for (y, x) in gd.iter_mut().zip(&gf[..n * dim]) {
                        *y = Td::of(x.f64());
                    }
                },
            );
        self.finish_energy(&input.types[..nloc], &mut atom_energy);
        // Σ_l ∂e_l/∂x_e ⊗ x_l, one backward per coordinate c.
        let mut corr: Vec<[f64; 9]> = Vec::new();
        if params.atomic_virial {
            corr = vec![[0.0; 9]; nall];
            for c in 0..3 {
                let seed: Vec<Td> = d_desc
                    .chunks_exact(dim.max(1))
                    .zip(input.coords)
                    .flat_map(|(g, x)| g.iter().map(move |&v| v * Td::of(x[c])))
                    .collect();
                let gc = desc.backward(input, &state, &seed, ex)?;
                for (w, g) in corr.iter_mut().zip(&gc) {
                    for k in 0..3 {
                        w[3 * k + c] = g[k];
                    }
                }
            }
        }
        let grad = desc.backward(input, &state, &d_desc, ex)?;
        desc.recycle(state);
        let force: Vec<[f64; 3]> = grad.iter().map(|g| [-g[0], -g[1], -g[2]]).collect();
        let mut virial = [0.0; 9];
        for (f, x) in force.iter().zip(input.coords) {
            for k in 0..3 {
                for c in 0..3 {
                    virial[3 * k + c] += f[k] * x[c];
                }
            }
        }
        let atom_virial = if params.atomic_virial {
            force
                .iter()
                .zip(input.coords)
                .zip(&corr)
                .map(|((f, x), w)| std::array::from_fn(|kc| f[kc / 3] * x[kc % 3] + w[kc]))
                .collect()
        } else {
            Vec::new()
        };
        Ok(ModelOutput {
            energy: atom_energy.iter().sum(),
            atom_energy,
            force,
            virial,
            atom_virial,
        })
    }
}

/// Per-task buffers of the se_e2_a pipeline.
struct SeAChunk<Td, Tf> {
    sd: crate::descriptor::se_e2_a::SeAScratch<Td>,
    sf: crate::fitting::FitScratch<Tf>,
    d: Vec<Td>,
    df: Vec<Tf>,
    gf: Vec<Tf>,
    gd: Vec<Td>,
}

impl<Td: Real, Tf: Real> SeAChunk<Td, Tf> {
    fn new(desc: &SeA<Td>, fit: &Fitting<Tf>) -> Self {
        let n = CHUNK * desc.dim_out();
        SeAChunk {
            sd: desc.scratch(CHUNK),
            sf: fit.scratch(CHUNK),
            d: vec![Td::zero(); n],
            df: vec![Tf::zero(); n],
            gf: vec![Tf::zero(); n],
            gd: vec![Td::zero(); n],
        }
    }
}

fn software(root: &Dict) -> Option<String> {
    let s = root.opt("software")?.value().as_str()?.to_string();
    Some(
        match root
            .opt("version")
            .and_then(|v| v.value().as_str().map(str::to_string))
        {
            Some(v) => format!("{s} {v}"),
            None => s,
        },
    )
}

/// Scalar options of a descriptor node (and of nested plain dictionaries such as
/// `repflow_args`), for display.
fn options(v: &Value) -> Vec<(String, String)> {
    const SKIP: &[&str] = &[
        "@class",
        "@version",
        "@variables",
        "type",
        "embeddings",
        "type_embedding",
        "repflow_variable",
        "env_mat",
        "compress",
        "type_map",
        "trainable",
        "seed",
        "spin",
        "sel",
        "rcut",
        "precision",
    ];
    let mut out = Vec::new();
    let Some(map) = v.as_object() else {
        return out;
    };
    for (k, v) in map {
        if SKIP.contains(&k.as_str()) {
            continue;
        }
        match v {
            Value::Object(inner) if !inner.contains_key("@class") => {
                for (k2, v2) in inner {
                    if !v2.is_object() {
                        out.push((format!("{k}.{k2}"), v2.to_string()));
                    }
                }
            }
            Value::Object(_) => {}
            other => out.push((k.clone(), other.to_string())),
        }
    }
    out
}

/// Trainable scalars: the arrays of every `Layer` and DPA3's residual vectors.
fn count_params(v: &Value, file: &ModelFile) -> usize {
    fn size(v: &Value, file: &ModelFile) -> usize {
        match v {
            Value::Object(m) => match m.get("@array").and_then(Value::as_u64) {
                Some(i) => file.arrays.get(i as usize).map_or(0, |a| a.data.len()),
                None => m.values().map(|x| size(x, file)).sum(),
            },
            Value::Array(items) => items.iter().map(|x| size(x, file)).sum(),
            _ => 0,
        }
    }
    match v {
        Value::Object(m) => {
            let mut n = 0;
            if m.get("@class").and_then(Value::as_str) == Some("Layer") {
                if let Some(vars) = m.get("@variables") {
                    n += size(vars, file);
                }
            }
            if let Some(Value::Object(vars)) = m.get("@variables") {
                for key in ["n_residual", "e_residual", "a_residual"] {
                    if let Some(r) = vars.get(key) {
                        n += size(r, file);
                    }
                }
            }
            n + m
                .iter()
                .filter(|(k, _)| k.as_str() != "@variables")
                .map(|(_, x)| count_params(x, file))
                .sum::<usize>()
        }
        Value::Array(items) => items.iter().map(|x| count_params(x, file)).sum(),
        _ => 0,
    }
}
