//! Evaluation across ranks, generic over the per-rank model call.

use halo_comm::{Comm, CommExt, Op};
use halo_core::{Exchange, RowsMut, Vec3};

use crate::domain::Domain;
use crate::error::DomainError;
use crate::exchange::DomainExchange;

/// Values per atom in the gather to rank 0: global id, energy, force (3), virial (9).
const GATHERED: usize = 14;

/// What the per-rank closure of [`evaluate`] sees: this rank's extended system.
#[derive(Debug, Clone, Copy)]
pub struct RankInput<'a> {
    /// This rank.
    pub rank: usize,
    /// Number of local atoms (the first rows).
    pub nloc: usize,
    /// Coordinates of local then ghost atoms (Å).
    pub coords: &'a [Vec3],
    /// System type of every extended atom.
    pub types: &'a [usize],
    /// Global id of every extended atom.
    pub gids: &'a [usize],
}

/// What the per-rank closure returns, on the extended system (ghost rows not yet folded).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RankOutput {
    /// Energy of the local atoms (eV).
    pub energy: f64,
    /// Energy of each local atom (`nloc`).
    pub atom_energy: Vec<f64>,
    /// Force on every extended atom (`nall`).
    pub force: Vec<Vec3>,
    /// This rank's virial contribution, row-major (eV).
    pub virial: [f64; 9],
    /// Per-atom virial of every extended atom (`nall`), or empty if not computed.
    pub atom_virial: Vec<[f64; 9]>,
}

/// Per-atom results of the whole system in input (global id) order.
#[derive(Debug, Clone, PartialEq)]
pub struct PerAtom {
    /// Energy of each atom (eV).
    pub atom_energy: Vec<f64>,
    /// Force on each atom (eV/Å).
    pub force: Vec<Vec3>,
    /// Per-atom virial, empty if no rank computed one.
    pub atom_virial: Vec<[f64; 9]>,
}

/// The result of [`evaluate`] on one rank.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Total energy, summed over ranks in rank order (eV).
    pub energy: f64,
    /// Total virial, summed over ranks in rank order (eV).
    pub virial: [f64; 9],
    /// Per-atom results, on rank 0 only.
    pub atoms: Option<PerAtom>,
    /// This rank's local forces after folding ghosts (`nloc`, local order).
    pub local_force: Vec<Vec3>,
}

/// Evaluates a model over the ranks of `comm` (collective).
///
/// `eval` runs once per rank on its extended system and may call the [`DomainExchange`] it
/// is given any number of times, the same on every rank. The driver then folds ghost forces
/// and per-atom virials onto their owners with reverse exchanges (widths 3 and 9),
/// all-reduces energy and virial (rank order, so bit-reproducible) and gathers per-atom
/// results on rank 0 in global-id order. A failing closure returns its error on that rank;
/// the others then fail in their next communication.
pub fn evaluate<F, E>(comm: &dyn Comm, domain: &Domain, eval: F) -> Result<Evaluation, DomainError>
where
    F: FnMut(&RankInput<'_>, &mut DomainExchange<'_>) -> Result<RankOutput, E>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut ex = DomainExchange::new(domain, comm);
    evaluate_with(&mut ex, domain, eval)
}

/// [`evaluate`] with an exchange the caller keeps between evaluations (say, MD steps between
/// neighbour-list rebuilds), so its buffers are allocated once; `ex` must be `domain`'s.
pub fn evaluate_with<F, E>(
    ex: &mut DomainExchange<'_>,
    domain: &Domain,
    eval: F,
) -> Result<Evaluation, DomainError>
where
    F: FnMut(&RankInput<'_>, &mut DomainExchange<'_>) -> Result<RankOutput, E>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let local = evaluate_local(ex, domain, eval)?;
    let comm = ex.comm();
    let nloc = domain.nloc();
    let mut packed = Vec::with_capacity(nloc * GATHERED);
    for i in 0..nloc {
        packed.push(domain.gids()[i] as f64);
        packed.push(local.atom_energy[i]);
        packed.extend_from_slice(&local.force[i]);
        packed.extend_from_slice(local.atom_virial.get(i).unwrap_or(&[0.0; 9]));
    }
    let atoms = match comm.gather(0, &packed)? {
        None => None,
        Some(parts) => Some(assemble(
            &parts,
            domain.natoms(),
            !local.atom_virial.is_empty(),
        )?),
    };
    Ok(Evaluation {
        energy: local.energy,
        virial: local.virial,
        atoms,
        local_force: local.force,
    })
}

/// The result of [`evaluate_local`] on one rank: global totals and this rank's own atoms.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalEvaluation {
    /// Total energy, summed over ranks in rank order (eV).
    pub energy: f64,
    /// Total virial, summed over ranks in rank order (eV).
    pub virial: [f64; 9],
    /// Energy of each local atom (`nloc`, local order).
    pub atom_energy: Vec<f64>,
    /// Force on each local atom after folding ghosts (`nloc`, local order).
    pub force: Vec<Vec3>,
    /// Per-atom virial of each local atom after folding ghosts; empty if no rank computed one.
    pub atom_virial: Vec<[f64; 9]>,
}

/// [`evaluate_with`] without the gather on rank 0: what an MD step needs (forces on the
/// atoms a rank owns, global energy and virial) at O(nloc) cost per rank.
pub fn evaluate_local<F, E>(
    ex: &mut DomainExchange<'_>,
    domain: &Domain,
    mut eval: F,
) -> Result<LocalEvaluation, DomainError>
where
    F: FnMut(&RankInput<'_>, &mut DomainExchange<'_>) -> Result<RankOutput, E>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if !ex.belongs_to(domain) {
        return Err(DomainError::Input(
            "the exchange was built for another domain".into(),
        ));
    }
    let comm = ex.comm();
    let rank = comm.rank();
    let (nloc, nall) = (domain.nloc(), domain.nall());
    let input = RankInput {
        rank,
        nloc,
        coords: domain.coords(),
        types: domain.types(),
        gids: domain.gids(),
    };
    let out = eval(&input, ex).map_err(|e| DomainError::Eval {
        rank,
        source: e.into(),
    })?;
    let bad = |what: &str, got: usize, want: usize| {
        DomainError::Input(format!(
            "rank {rank}: evaluation returned {got} {what}, expected {want}"
        ))
    };
    if out.atom_energy.len() != nloc {
        return Err(bad("atom energies", out.atom_energy.len(), nloc));
    }
    if out.force.len() != nall {
        return Err(bad("forces", out.force.len(), nall));
    }
    if !out.atom_virial.is_empty() && out.atom_virial.len() != nall {
        return Err(bad("atom virials", out.atom_virial.len(), nall));
    }
    let mut force: Vec<f64> = out.force.iter().flatten().copied().collect();
    ex.reverse(RowsMut::F64(&mut force), 3)?;
    // Whether any rank computed per-atom virials decides, for all, whether to fold them: a
    // rank with no atoms may return none even when they were asked for.
    let mut totals = [0.0; 11];
    totals[0] = out.energy;
    totals[1..10].copy_from_slice(&out.virial);
    totals[10] = f64::from(u8::from(!out.atom_virial.is_empty()));
    comm.allreduce_f64(&mut totals, Op::Sum)?;
    let with_av = totals[10] > 0.0;
    let atom_virial = if with_av {
        let mut av: Vec<f64> = if out.atom_virial.is_empty() {
            vec![0.0; nall * 9]
        } else {
            out.atom_virial.iter().flatten().copied().collect()
        };
        ex.reverse(RowsMut::F64(&mut av), 9)?;
        av[..nloc * 9]
            .chunks_exact(9)
            .map(|c| std::array::from_fn(|k| c[k]))
            .collect()
    } else {
        Vec::new()
    };
    Ok(LocalEvaluation {
        energy: totals[0],
        virial: std::array::from_fn(|k| totals[1 + k]),
        atom_energy: out.atom_energy,
        force: force[..nloc * 3]
            .chunks_exact(3)
            .map(|c| [c[0], c[1], c[2]])
            .collect(),
        atom_virial,
    })
}

/// Places gathered per-atom records by global id; every atom must come exactly once.
fn assemble(parts: &[Vec<f64>], natoms: usize, with_av: bool) -> Result<PerAtom, DomainError> {
    let mut seen = vec![false; natoms];
    let mut atom_energy = vec![0.0; natoms];
    let mut force = vec![[0.0; 3]; natoms];
    let mut atom_virial = vec![[0.0; 9]; if with_av { natoms } else { 0 }];
    for (r, part) in parts.iter().enumerate() {
        if part.len() % GATHERED != 0 {
            return Err(DomainError::Input(format!(
                "rank {r} gathered {} values, not a multiple of {GATHERED}",
                part.len()
            )));
        }
        for rec in part.chunks_exact(GATHERED) {
            let g = rec[0] as usize;
            if g >= natoms || seen[g] {
                return Err(DomainError::Input(format!(
                    "rank {r} reported atom {g}, which is out of range or owned twice"
                )));
            }
            seen[g] = true;
            atom_energy[g] = rec[1];
            force[g] = [rec[2], rec[3], rec[4]];
            if with_av {
                atom_virial[g] = std::array::from_fn(|k| rec[5 + k]);
            }
        }
    }
    if let Some(g) = seen.iter().position(|&s| !s) {
        return Err(DomainError::Input(format!("no rank owns atom {g}")));
    }
    Ok(PerAtom {
        atom_energy,
        force,
        atom_virial,
    })
}
