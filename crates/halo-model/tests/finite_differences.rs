//! Forces and virials against central finite differences of the energy, for every float64
//! model in the fixtures (Rust only: no reference values involved).

mod common;

use common::references;
use halo_core::{Cell, System};
use halo_model::{EnergyModel, EvalParams};

fn energy(model: &EnergyModel, s: &System, p: &EvalParams) -> f64 {
    model.evaluate_system(s, p).unwrap().energy
}

/// `x (I + ε)` applied to positions and cell rows.
fn strained(s: &System, eps: [[f64; 3]; 3]) -> System {
    let apply = |x: [f64; 3]| -> [f64; 3] {
        std::array::from_fn(|c| {
            (0..3)
                .map(|k| x[k] * (f64::from(u8::from(k == c)) + eps[k][c]))
                .sum()
        })
    };
    let mut t = s.clone();
    t.positions = s.positions.iter().map(|&x| apply(x)).collect();
    t.cell = s.cell.as_ref().map(|c| {
        let h = c.matrix();
        Cell::new([apply(h[0]), apply(h[1]), apply(h[2])], c.pbc()).unwrap()
    });
    t
}

#[test]
fn forces_and_virials_match_finite_differences() {
    let mut seen = Vec::new();
    for r in references() {
        if r.precision != "float64" {
            continue;
        }
        let model = EnergyModel::load(&r.model).unwrap();
        // One periodic and, if present, one open structure per model.
        let picks = r
            .cases
            .iter()
            .filter(|c| c.system.cell.as_ref().is_some_and(|c| c.pbc() == [true; 3]))
            .take(1)
            .chain(r.cases.iter().filter(|c| c.system.cell.is_none()).take(1));
        for c in picks {
            let p = EvalParams {
                fparam: c.fparam.clone(),
                aparam: c.aparam.clone(),
                head: None,
                atomic_virial: false,
            };
            let out = model.evaluate_system(&c.system, &p).unwrap();
            let h = 1e-5;
            let scale = out
                .force
                .iter()
                .flatten()
                .fold(1.0f64, |m, f| m.max(f.abs()));
            // A handful of atoms, all three directions.
            for i in (0..c.system.len()).step_by((c.system.len() / 5).max(1)) {
                for k in 0..3 {
                    let mut sp = c.system.clone();
                    sp.positions[i][k] += h;
                    let mut sm = c.system.clone();
                    sm.positions[i][k] -= h;
                    let fd = -(energy(&model, &sp, &p) - energy(&model, &sm, &p)) / (2.0 * h);
                    let err = (fd - out.force[i][k]).abs();
                    assert!(
                        err <= 1e-6 * scale,
                        "{} {}: atom {i} dir {k}: force {} vs finite difference {fd}",
                        r.name,
                        c.structure,
                        out.force[i][k]
                    );
                }
            }
            if c.system.cell.is_some() {
                // virial[3a + b] = −∂E/∂ε_ba under x → x (I + ε).
                for a in 0..3 {
                    for b in 0..3 {
                        let mut e = [[0.0; 3]; 3];
                        e[b][a] = h;
                        let ep = energy(&model, &strained(&c.system, e), &p);
                        e[b][a] = -h;
                        let em = energy(&model, &strained(&c.system, e), &p);
                        let fd = -(ep - em) / (2.0 * h);
                        let v = out.virial[3 * a + b];
                        assert!(
                            (fd - v).abs() <= 1e-6 * v.abs().max(1.0),
                            "{} {}: virial[{a}][{b}] {v} vs finite difference {fd}",
                            r.name,
                            c.structure
                        );
                    }
                }
            }
            seen.push(format!("{}:{}", r.name, c.structure));
        }
    }
    eprintln!("checked {}", seen.join(", "));
    assert!(
        seen.iter().any(|s| s.starts_with("se_")),
        "no se_e2_a model checked"
    );
}
