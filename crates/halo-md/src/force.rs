//! Model forces on one rank's subdomain, with a Verlet-skin neighbour list.
//!
//! At a rebuild the list is built on the extended system with `rcut + skin`; every step
//! after that only re-filters it to `rcut` with the current coordinates and re-sorts each
//! row by distance ([`NeighborList::within`]), which is what the model's dense `nlist`
//! needs. The evaluation itself is the same per-rank closure `halomd eval` runs, so a step
//! of MD and an evaluation of the same configuration give the same numbers.

use halo_comm::Comm;
use halo_domain::{evaluate_local, Domain, DomainExchange, LocalEvaluation, RankInput, RankOutput};
use halo_model::model::{EnergyModel, EvalParams};
use halo_nlist::NeighborList;

use crate::error::MdError;

/// A model bound to the atoms of one run, evaluating forces on a [`Domain`].
pub struct ModelForces<'a> {
    model: &'a EnergyModel,
    model_types: &'a [i32],
    params: EvalParams,
    rcut: f64,
    skin: f64,
    list: Option<NeighborList>,
    dropped: usize,
}

impl std::fmt::Debug for ModelForces<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelForces")
            .field("rcut", &self.rcut)
            .field("skin", &self.skin)
            .field("dropped", &self.dropped)
            .finish_non_exhaustive()
    }
}

/// One evaluation: global energy and virial, forces on the local atoms, and the
/// neighbour-list overflow report of this rank if `sel` dropped neighbours.
#[derive(Debug, Clone)]
pub struct StepForces {
    /// Totals and local per-atom results.
    pub eval: LocalEvaluation,
    /// Why neighbours were dropped on this rank, if they were.
    pub warning: Option<String>,
}

impl<'a> ModelForces<'a> {
    /// `model_types[gid]` is the model type of every atom of the system (`-1`: left out of
    /// the model, as LAMMPS `NULL` types); `skin` (Å) pads the list cutoff.
    pub fn new(
        model: &'a EnergyModel,
        model_types: &'a [i32],
        params: EvalParams,
        skin: f64,
    ) -> Result<Self, MdError> {
        if !(skin.is_finite() && skin >= 0.0) {
            return Err(MdError::Input(format!(
                "skin must be finite and non-negative, got {skin}"
            )));
        }
        Ok(ModelForces {
            model,
            model_types,
            params,
            rcut: model.rcut(),
            skin,
            list: None,
            dropped: 0,
        })
    }

    /// The model cutoff (Å).
    pub fn rcut(&self) -> f64 {
        self.rcut
    }

    /// The Verlet skin (Å).
    pub fn skin(&self) -> f64 {
        self.skin
    }

    /// The cutoff of the ghost shell and of the skin list: `rcut + skin`.
    pub fn list_cutoff(&self) -> f64 {
        self.rcut + self.skin
    }

    /// Neighbours dropped for lack of `sel` slots on this rank, summed over all evaluations.
    pub fn dropped(&self) -> usize {
        self.dropped
    }

    /// Builds the skin list on the domain's current extended coordinates (after
    /// [`Domain::borders`] with [`ModelForces::list_cutoff`]).
    pub fn rebuild(&mut self, domain: &Domain) -> Result<(), MdError> {
        let list = NeighborList::build(domain.coords(), domain.nloc(), self.list_cutoff())
            .map_err(|e| MdError::Model(format!("neighbour list: {e}")))?;
        self.list = Some(list);
        Ok(())
    }

    /// Evaluates the model on the domain's current coordinates (collective).
    pub fn compute(&mut self, comm: &dyn Comm, domain: &Domain) -> Result<StepForces, MdError> {
        let list = self
            .list
            .as_ref()
            .ok_or_else(|| MdError::Model("forces asked for before a neighbour list".into()))?;
        if list.nall() != domain.nall() {
            return Err(MdError::Model(format!(
                "neighbour list is for {} extended atoms, the domain has {}; rebuild it",
                list.nall(),
                domain.nall()
            )));
        }
        let (model, model_types, params, rcut) =
            (self.model, self.model_types, &self.params, self.rcut);
        let mut warning = None;
        let mut dropped = 0;
        let mut ex = DomainExchange::with_slots(domain, comm, &model.comm_slots());
        let eval = evaluate_local(&mut ex, domain, |inp, ex| {
            let near = list.within(inp.coords, rcut)?;
            let (out, overflow) = rank_output(model, model_types, params, near, inp, ex)?;
            (dropped, warning) = overflow;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(out)
        })?;
        self.dropped += dropped;
        Ok(StepForces { eval, warning })
    }
}

/// Neighbours dropped for lack of `sel` slots on one rank, and the report naming them.
pub type Overflow = (usize, Option<String>);

/// One rank's model evaluation on its extended system, given the neighbour list within the
/// model cutoff (rows sorted by distance): [`EnergyModel::evaluate_neighbors`] with the
/// types looked up by global id, as the domain driver wants it. Shared by `halomd eval` and
/// MD.
pub fn rank_output(
    model: &EnergyModel,
    model_types: &[i32],
    params: &EvalParams,
    near: NeighborList,
    inp: &RankInput<'_>,
    ex: &mut DomainExchange<'_>,
) -> Result<(RankOutput, Overflow), Box<dyn std::error::Error + Send + Sync>> {
    let types: Vec<i32> = inp.gids.iter().map(|&g| model_types[g]).collect();
    let r = model.evaluate_neighbors(inp.coords, &types, inp.nloc, near, ex, params)?;
    let out = r.output;
    Ok((
        RankOutput {
            energy: out.energy,
            atom_energy: out.atom_energy,
            force: out.force,
            virial: out.virial,
            atom_virial: out.atom_virial,
        },
        (r.dropped, r.warning),
    ))
}
