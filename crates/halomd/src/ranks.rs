//! Evaluation over several ranks: each rank owns a subdomain, receives its ghost shell by
//! swaps and exchanges node embeddings layer by layer through `halo-domain`.

use anyhow::{bail, Context, Result};
use halo_comm::{threads, Comm, CommKind, CommOptions};
use halo_core::System;
use halo_domain::{evaluate, Domain, ProcGrid, RankOutput};
use halo_model::descriptor::DescriptorInput;
use halo_model::model::{EnergyModel, EvalParams, LocalOutput};
use halo_nlist::NeighborList;
use std::sync::Mutex;

/// Evaluates `system` on `nranks` ranks and returns the result gathered in input order.
pub fn evaluate_ranks(
    model: &EnergyModel,
    system: &System,
    params: &EvalParams,
    nranks: usize,
    grid: Option<[usize; 3]>,
    comm: &str,
) -> Result<LocalOutput> {
    let kind: CommKind = comm.parse()?;
    let grid = match grid {
        Some(g) => {
            let g = ProcGrid::new(g)?;
            if g.nranks() != nranks {
                bail!(
                    "--grid {:?} has {} ranks but --ranks is {nranks}",
                    g.dims(),
                    g.nranks()
                );
            }
            g
        }
        None => ProcGrid::auto(system, nranks)?,
    };
    let model_types = model.map_types(system)?;
    match kind {
        CommKind::Threads => {}
        other => bail!("--comm {other:?} is not wired into `halomd eval` yet; use --comm threads"),
    }
    let warnings = Mutex::new(Vec::new());
    let outs = threads::run(grid.nranks(), &CommOptions::from_env()?, |comm| {
        rank_eval(&comm, model, system, &model_types, params, grid, &warnings)
    })?;
    let mut first = None;
    for out in outs {
        let out = out?;
        first.get_or_insert(out);
    }
    let eval = first.context("no rank returned a result")?;
    let atoms = eval.atoms.context("rank 0 gathered no per-atom results")?;
    let warning = warnings
        .into_inner()
        .ok()
        .and_then(|w| (!w.is_empty()).then(|| w.join("; ")));
    Ok(LocalOutput {
        energy: eval.energy,
        atom_energy: atoms.atom_energy,
        force: atoms.force,
        virial: eval.virial,
        atom_virial: atoms.atom_virial,
        warning,
    })
}

/// One rank's part: decompose, build the ghost shell, evaluate, fold, reduce, gather.
fn rank_eval(
    comm: &dyn Comm,
    model: &EnergyModel,
    system: &System,
    model_types: &[usize],
    params: &EvalParams,
    grid: ProcGrid,
    warnings: &Mutex<Vec<String>>,
) -> Result<halo_domain::Evaluation> {
    let rcut = model.rcut();
    let sel = model.nnei_layout();
    let domain = Domain::build(comm, system, grid, rcut)?;
    let eval = evaluate(comm, &domain, |inp, ex| {
        let types: Vec<usize> = inp.gids.iter().map(|&g| model_types[g]).collect();
        let list = NeighborList::build(inp.coords, inp.nloc, rcut)?;
        let dense = list.to_dense(&types, &sel)?;
        if let Some(w) = dense.warning() {
            if let Ok(mut all) = warnings.lock() {
                all.push(format!("rank {}: {w}", inp.rank));
            }
        }
        let types_i32: Vec<i32> = types.iter().map(|&t| t as i32).collect();
        let input = DescriptorInput {
            coords: inp.coords,
            types: &types_i32,
            nloc: inp.nloc,
            nlist: &dense.nlist,
            nnei: dense.width,
        };
        let out = model.evaluate(&input, ex, params)?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(RankOutput {
            energy: out.energy,
            atom_energy: out.atom_energy,
            force: out.force,
            virial: out.virial,
            atom_virial: out.atom_virial,
        })
    })?;
    Ok(eval)
}
