//! Parity with DeePMD-kit 3.2.0 for every reference in `fixtures/deepmd`: energy, atom
//! energies, forces, virial and per-atom virials, from the `.dp` (and `.yaml`) files, through
//! the whole single-process path (`EnergyModel::evaluate_system`).
//!
//! Tolerances: float64 models |ΔE|/N ≤ 1e-10 and ≤ 1e-9 absolute for everything else;
//! float32 models ≤ 1e-5 relative to the largest reference magnitude of each quantity (and to
//! the magnitude of the energy per atom for the energies).
//!
//! The references for `update_style` `res_avg`/`res_incr` come from the PyTorch model run
//! eagerly (DeePMD-kit 3.2.0 cannot freeze them); they are compared like the others.

mod common;

use common::{max_abs, max_norm, references, Case};
use halo_model::{EnergyModel, EvalParams, LocalOutput};

struct Errors {
    energy_per_atom: f64,
    atom_energy: f64,
    force: f64,
    virial: f64,
    atom_virial: f64,
}

fn errors(out: &LocalOutput, c: &Case, relative: bool) -> Errors {
    let n = c.atom_energy.len() as f64;
    let scale = |r: f64| if relative { r.max(1.0) } else { 1.0 };
    // Energy-only references (no derivatives in DeePMD-kit) leave the rest at zero error.
    let rel = |ours: Vec<f64>, theirs: Option<Vec<f64>>| match theirs {
        Some(t) => max_abs(ours, t.iter().copied()) / scale(max_norm(t)),
        None => 0.0,
    };
    Errors {
        energy_per_atom: (out.energy - c.energy).abs() / n / scale(c.energy.abs() / n),
        atom_energy: rel(out.atom_energy.clone(), Some(c.atom_energy.clone())),
        force: rel(
            out.force.iter().flatten().copied().collect(),
            c.force
                .as_ref()
                .map(|f| f.iter().flatten().copied().collect()),
        ),
        virial: rel(out.virial.to_vec(), c.virial.map(|v| v.to_vec())),
        atom_virial: rel(
            out.atom_virial.iter().flatten().copied().collect(),
            c.atom_virial
                .as_ref()
                .map(|f| f.iter().flatten().copied().collect()),
        ),
    }
}

#[test]
fn se_e2_a_matches_deepmd() {
    check("se_e2_a");
}

#[test]
fn dpa3_matches_deepmd() {
    check("dpa3");
}

fn check(descriptor: &str) {
    let refs: Vec<_> = references()
        .into_iter()
        .filter(|r| r.descriptor == descriptor)
        .collect();
    assert!(
        !refs.is_empty(),
        "no {descriptor} references in the fixtures"
    );
    for r in &refs {
        let f32_model = r.precision != "float64";
        let mut files = vec![r.model.clone()];
        files.extend(r.model_yaml.clone());
        for file in &files {
            let model = EnergyModel::load(file).unwrap_or_else(|e| panic!("{e}"));
            let mut worst = [0.0f64; 5];
            for c in &r.cases {
                let params = EvalParams {
                    fparam: c.fparam.clone(),
                    aparam: c.aparam.clone(),
                    head: None,
                    atomic_virial: true,
                };
                let out = model.evaluate_system(&c.system, &params).unwrap();
                assert_eq!(out.force.len(), c.atom_energy.len());
                if let Some(binding) = c.sel_binding {
                    assert_eq!(
                        out.warning.is_some(),
                        binding,
                        "{}: {:?}",
                        c.structure,
                        out.warning
                    );
                }
                assert_eq!(out.atom_virial.len(), c.atom_energy.len());
                let e = errors(&out, c, f32_model);
                let tag = format!("{} {} [{}]", r.name, c.structure, file.display());
                let errs = [
                    e.energy_per_atom,
                    e.atom_energy,
                    e.force,
                    e.virial,
                    e.atom_virial,
                ];
                for (w, x) in worst.iter_mut().zip(errs) {
                    *w = w.max(x);
                }
                let (te, tx) = if f32_model {
                    (1e-5, 1e-5)
                } else {
                    (1e-10, 1e-9)
                };
                assert!(
                    e.energy_per_atom <= te,
                    "{tag}: |ΔE|/N = {:e}",
                    e.energy_per_atom
                );
                assert!(
                    e.atom_energy <= tx,
                    "{tag}: atom energy error {:e}",
                    e.atom_energy
                );
                assert!(e.force <= tx, "{tag}: force error {:e}", e.force);
                assert!(e.virial <= tx, "{tag}: virial error {:e}", e.virial);
                assert!(
                    e.atom_virial <= tx,
                    "{tag}: atom virial error {:e}",
                    e.atom_virial
                );
            }
            if let Some(h) = r.head {
                // The file stores case_embd = one-hot(head); choosing that head changes nothing,
                // choosing another one changes the energy.
                let c = &r.cases[0];
                let mut params = EvalParams {
                    fparam: c.fparam.clone(),
                    aparam: c.aparam.clone(),
                    head: None,
                    atomic_virial: false,
                };
                let stored = model.evaluate_system(&c.system, &params).unwrap();
                params.head = Some(h);
                let same = model.evaluate_system(&c.system, &params).unwrap();
                assert_eq!(same.energy.to_bits(), stored.energy.to_bits(), "{}", r.name);
                params.head = Some(if h == 0 { 1 } else { 0 });
                let other = model.evaluate_system(&c.system, &params).unwrap();
                assert!((other.energy - stored.energy).abs() > 1e-6, "{}", r.name);
            }
            eprintln!(
                "{:<24} {:<5} {}: max |ΔE|/N {:.2e}, atom_energy {:.2e}, force {:.2e}, \
                 virial {:.2e}, atom_virial {:.2e}{}",
                r.name,
                file.extension().unwrap().to_string_lossy(),
                r.precision,
                worst[0],
                worst[1],
                worst[2],
                worst[3],
                worst[4],
                match (f32_model, r.cases[0].force.is_some()) {
                    (true, _) => " (relative)",
                    (false, false) => " (energy only)",
                    _ => "",
                }
            );
        }
    }
}
