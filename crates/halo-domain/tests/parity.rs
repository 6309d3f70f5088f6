//! Model parity: N ranks (threads backend) against `EnergyModel::evaluate_system` on one.

mod common;

use halo_comm::{threads, CommOptions};
use halo_core::System;
use halo_domain::{evaluate, Domain, Evaluation, ProcGrid, RankOutput};
use halo_model::{EnergyModel, EvalParams, LocalOutput};
use halo_nlist::NeighborList;

/// Largest errors of a multi-rank run against one rank.
#[derive(Debug, Default, Clone, Copy)]
struct Errors {
    energy: f64,
    virial: f64,
    atom_energy: f64,
    force: f64,
    atom_virial: f64,
}

impl Errors {
    fn max(self, o: Errors) -> Errors {
        Errors {
            energy: self.energy.max(o.energy),
            virial: self.virial.max(o.virial),
            atom_energy: self.atom_energy.max(o.atom_energy),
            force: self.force.max(o.force),
            atom_virial: self.atom_virial.max(o.atom_virial),
        }
    }

    fn worst(&self) -> f64 {
        [
            self.energy,
            self.virial,
            self.atom_energy,
            self.force,
            self.atom_virial,
        ]
        .into_iter()
        .fold(0.0, f64::max)
    }
}

fn model(name: &str) -> EnergyModel {
    EnergyModel::load(&common::fixture_dir().join(format!("models/{name}.dp")))
        .unwrap_or_else(|e| panic!("model {name}: {e}"))
}

/// Evaluates `system` on the ranks of `grid`; rank 0's result.
fn run_ranks(model: &EnergyModel, system: &System, grid: ProcGrid) -> Evaluation {
    let params = EvalParams {
        atomic_virial: true,
        ..EvalParams::default()
    };
    let model_types = model.map_types(system).unwrap();
    let rcut = model.rcut();
    let outs = threads::run(grid.nranks(), &CommOptions::default(), |comm| {
        let domain = Domain::build(&comm, system, grid, rcut).unwrap();
        evaluate(&comm, &domain, |inp, ex| {
            let types: Vec<i32> = inp.gids.iter().map(|&g| model_types[g] as i32).collect();
            let list = NeighborList::build(inp.coords, inp.nloc, rcut)?;
            let r = model.evaluate_neighbors(inp.coords, &types, inp.nloc, list, ex, &params)?;
            assert!(r.warning.is_none(), "sel overflow on rank {}", inp.rank);
            let out = r.output;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(RankOutput {
                energy: out.energy,
                atom_energy: out.atom_energy,
                force: out.force,
                virial: out.virial,
                atom_virial: out.atom_virial,
            })
        })
        .unwrap()
    })
    .unwrap();
    // Every rank agrees on the reduced quantities, bit for bit.
    for o in &outs {
        assert_eq!(o.energy.to_bits(), outs[0].energy.to_bits());
        assert_eq!(o.virial, outs[0].virial);
        assert_eq!(o.atoms.is_some(), std::ptr::eq(o, &outs[0]));
    }
    outs.into_iter().next().unwrap()
}

/// Evaluates `system` on the ranks of `grid` and compares every output with `single`.
fn compare(model: &EnergyModel, system: &System, grid: ProcGrid, single: &LocalOutput) -> Errors {
    let out = run_ranks(model, system, grid);
    let atoms = out.atoms.as_ref().unwrap();
    assert_eq!(atoms.atom_virial.len(), system.len());
    Errors {
        energy: (out.energy - single.energy).abs(),
        virial: common::max_abs(out.virial, single.virial),
        atom_energy: common::max_abs(
            atoms.atom_energy.iter().copied(),
            single.atom_energy.iter().copied(),
        ),
        force: common::max_abs(
            atoms.force.iter().flatten().copied(),
            single.force.iter().flatten().copied(),
        ),
        atom_virial: common::max_abs(
            atoms.atom_virial.iter().flatten().copied(),
            single.atom_virial.iter().flatten().copied(),
        ),
    }
}

const GRIDS: [[usize; 3]; 7] = [
    [1, 1, 1],
    [2, 1, 1],
    [3, 1, 1],
    [4, 1, 1],
    [1, 1, 4],
    [2, 2, 1],
    [2, 2, 2],
];

const TOL: f64 = 1e-10;

fn parity(model_name: &str, structures: &[(&str, [usize; 3])], grids: &[[usize; 3]]) -> Errors {
    let m = model(model_name);
    let params = EvalParams {
        atomic_virial: true,
        ..EvalParams::default()
    };
    let mut worst = Errors::default();
    for &(name, reps) in structures {
        let base = common::structure(model_name, name);
        let system = if base.cell.is_some() {
            common::supercell(&base, reps)
        } else {
            base
        };
        let single = m.evaluate_system(&system, &params).unwrap();
        assert!(
            single.warning.is_none(),
            "{model_name} {name}: sel overflow"
        );
        assert_eq!(single.atom_virial.len(), system.len());
        for &dims in grids {
            let e = compare(&m, &system, ProcGrid::new(dims).unwrap(), &single);
            eprintln!(
                "{model_name} {name} ×{reps:?} ({} atoms) on {dims:?}: {e:?}",
                system.len()
            );
            assert!(
                e.worst() <= TOL,
                "{model_name} {name} on {dims:?}: {e:?} exceeds {TOL}"
            );
            worst = worst.max(e);
        }
    }
    eprintln!("{model_name}: worst {worst:?}");
    worst
}

#[test]
fn dpa3_base_matches_one_rank() {
    parity(
        "dpa3_base",
        &[
            ("cubic", [2, 2, 2]),
            ("triclinic", [2, 1, 1]),
            ("slab", [2, 1, 1]),
        ],
        &GRIDS,
    );
}

#[test]
fn dpa3_dynamic_sel_matches_one_rank() {
    parity(
        "dpa3_dpa31_like",
        &[("triclinic", [2, 2, 1]), ("slab", [1, 1, 1])],
        &GRIDS,
    );
}

#[test]
fn se_a_matches_one_rank() {
    parity(
        "se_a_two_side",
        &[
            ("cubic", [2, 2, 2]),
            ("triclinic", [2, 1, 1]),
            ("cluster", [1, 1, 1]),
        ],
        &GRIDS,
    );
}

#[test]
fn thin_cell_split_in_two_matches_one_rank() {
    // 2.45 Å along a, cutoff 4.5–5 Å: each half is a quarter of the cutoff thick.
    parity(
        "se_a_two_side",
        &[("smallcell", [1, 2, 1])],
        &[[2, 1, 1], [2, 1, 2]],
    );
    parity("dpa3_base", &[("smallcell", [1, 1, 1])], &[[2, 1, 1]]);
}

#[test]
fn empty_subdomain_matches_one_rank() {
    // The left half of the cubic cell split in four along x: ranks 2 and 3 own nothing.
    let m = model("dpa3_base");
    let c = common::structure("dpa3_base", "cubic");
    let cell = c.cell.unwrap();
    let keep: Vec<usize> = (0..c.len())
        .filter(|&i| halo_core::cell::wrap_unit(cell.to_frac(c.positions[i])[0]) < 0.5)
        .collect();
    let system = System::new(
        keep.iter().map(|&i| c.positions[i]).collect(),
        keep.iter().map(|&i| c.types[i]).collect(),
        c.type_names.clone(),
        vec![1.0; keep.len()],
        Some(cell),
    )
    .unwrap();
    let params = EvalParams {
        atomic_virial: true,
        ..EvalParams::default()
    };
    let single = m.evaluate_system(&system, &params).unwrap();
    let grid = ProcGrid::new([4, 1, 1]).unwrap();
    let nloc: Vec<usize> = (0..4)
        .map(|r| Domain::decompose(&system, grid, r).unwrap().nloc())
        .collect();
    assert!(nloc[2] == 0 && nloc[3] == 0, "ranks 2, 3 empty: {nloc:?}");
    let e = compare(&m, &system, grid, &single);
    eprintln!("dpa3_base half-empty cubic on [4, 1, 1]: {e:?}");
    assert!(e.worst() <= TOL, "{e:?}");
}

#[test]
fn repeated_runs_are_bit_identical() {
    let m = model("dpa3_base");
    let system = common::supercell(&common::structure("dpa3_base", "triclinic"), [2, 1, 1]);
    let grid = ProcGrid::new([2, 2, 1]).unwrap();
    let a = run_ranks(&m, &system, grid);
    let b = run_ranks(&m, &system, grid);
    assert_eq!(a.energy.to_bits(), b.energy.to_bits());
    assert_eq!(a.virial, b.virial);
    assert_eq!(a.atoms, b.atoms);
}
