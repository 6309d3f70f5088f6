//! Evaluation gives the same bits with 1 and 4 rayon threads (chunks are fixed-size and every
//! sum runs in a fixed order), on a supercell large enough for several chunks and waves.

mod common;

use common::references;
use halo_core::{Cell, System};
use halo_model::{EnergyModel, EvalParams, LocalOutput};

/// `n × n × n` copies of a periodic system.
fn supercell(s: &System, n: usize) -> System {
    let cell = s.cell.as_ref().unwrap();
    let h = *cell.matrix();
    let mut positions = Vec::new();
    let mut types = Vec::new();
    for a in 0..n {
        for b in 0..n {
            for c in 0..n {
                let t = cell.shift([a as i32, b as i32, c as i32]);
                for (x, &ty) in s.positions.iter().zip(&s.types) {
                    positions.push([x[0] + t[0], x[1] + t[1], x[2] + t[2]]);
                    types.push(ty);
                }
            }
        }
    }
    let k = n as f64;
    let big = h.map(|r| r.map(|v| v * k));
    let m = positions.len();
    System::new(
        positions,
        types,
        s.type_names.clone(),
        vec![1.0; m],
        Some(Cell::new(big, cell.pbc()).unwrap()),
    )
    .unwrap()
}

fn bits(o: &LocalOutput) -> Vec<u64> {
    std::iter::once(o.energy)
        .chain(o.atom_energy.iter().copied())
        .chain(o.force.iter().flatten().copied())
        .chain(o.virial)
        .chain(o.atom_virial.iter().flatten().copied())
        .map(f64::to_bits)
        .collect()
}

#[test]
fn bit_identical_for_1_and_4_threads() {
    let mut done = Vec::new();
    for descriptor in ["se_e2_a", "dpa3"] {
        let Some(r) = references()
            .into_iter()
            .find(|r| r.descriptor == descriptor && r.cases.iter().any(|c| c.structure == "cubic"))
        else {
            panic!("no {descriptor} reference with a cubic structure");
        };
        let c = r.cases.iter().find(|c| c.structure == "cubic").unwrap();
        let model = EnergyModel::load(&r.model).unwrap();
        let reps = if descriptor == "se_e2_a" { 4 } else { 2 };
        let system = supercell(&c.system, reps);
        let n = system.len();
        let params = EvalParams {
            fparam: c.fparam.clone(),
            aparam: c.aparam.as_ref().map(|a| a.repeat(reps * reps * reps)),
            head: None,
            atomic_virial: true,
        };
        let run = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| model.evaluate_system(&system, &params).unwrap())
        };
        let one = run(1);
        let four = run(4);
        assert_eq!(one.force.len(), n);
        assert!(
            bits(&one) == bits(&four),
            "{}: results differ between 1 and 4 threads",
            r.name
        );
        // Copies of one cell: the energy is extensive.
        let per_cell = one.energy / (reps * reps * reps) as f64;
        assert!(
            (per_cell - c.energy).abs() < 1e-8 * c.energy.abs().max(1.0),
            "{}",
            r.name
        );
        done.push(format!("{} ({n} atoms)", r.name));
    }
    eprintln!("bit-identical: {}", done.join(", "));
}

/// DPA3 keeps edge-MLP and angle-pair intermediates for the backward while they fit its
/// store budget and recomputes them otherwise; both, and a repeated evaluation that reuses
/// the previous one's pooled buffers, must give the same bits, for every DPA3 variant
/// (sequential and parallel updates, layer-0 outer products, compressions).
#[test]
fn dpa3_kept_and_recomputed_intermediates_give_the_same_bits() {
    let mut done = 0;
    for r in references().into_iter().filter(|r| r.descriptor == "dpa3") {
        let c = &r.cases[0];
        let params = EvalParams {
            fparam: c.fparam.clone(),
            aparam: c.aparam.clone(),
            head: None,
            atomic_virial: true,
        };
        let mut model = EnergyModel::load(&r.model).unwrap();
        model.set_store_budget(0);
        let recomputed = model.evaluate_system(&c.system, &params).unwrap();
        model.set_store_budget(usize::MAX);
        let kept = model.evaluate_system(&c.system, &params).unwrap();
        let again = model.evaluate_system(&c.system, &params).unwrap();
        assert!(
            bits(&recomputed) == bits(&kept),
            "{}: kept and recomputed pairs differ",
            r.name
        );
        assert!(
            bits(&kept) == bits(&again),
            "{}: a second evaluation differs",
            r.name
        );
        done += 1;
    }
    assert!(done >= 12, "only {done} DPA3 references");
}
