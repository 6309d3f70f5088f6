//! The hand-written DPA3 backward against central finite differences, for every option variant
//! of the DeePMD fixtures (float64): L = Σ c ⊙ D with fixed pseudo-random c, ∂L/∂x of every
//! extended atom (ghost coordinates are independent inputs; the exchange only copies node rows).

mod dpa3_common;
use dpa3_common::*;
use halo_model::descriptor::dpa3::Dpa3;

/// Deterministic pseudo-random numbers in [-1, 1).
fn lcg(seed: u64, n: usize) -> Vec<f64> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect()
}

fn loss(model: &Dpa3<f64>, fr: &Frame, coords: &[[f64; 3]], c: &[f64]) -> f64 {
    let mut input = fr.input();
    input.coords = coords;
    let (d, _) = model.forward(&input, &mut fr.exchange()).unwrap();
    d.iter().zip(c).map(|(a, b)| a * b).sum()
}

/// Returns (max |analytic − fd|, max |analytic|) over all extended coordinates.
fn check_frame(model: &Dpa3<f64>, fr: &Frame, seed: u64) -> (f64, f64) {
    let c = lcg(seed, fr.nloc * model.dim_out());
    let mut ex = fr.exchange();
    let (_, state) = model.forward(&fr.input(), &mut ex).unwrap();
    let grad = model.backward(&fr.input(), &state, &c, &mut ex).unwrap();
    assert_eq!(grad.len(), fr.coords.len());
    // Translation invariance: the descriptor depends on differences only.
    let mut sum = [0.0f64; 3];
    for g in &grad {
        for x in 0..3 {
            sum[x] += g[x];
        }
    }
    let gmax = grad.iter().flatten().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(
        sum.iter().all(|s| s.abs() <= 1e-12 * gmax.max(1.0)),
        "Σ grad = {sum:?}"
    );

    let h = 1e-5;
    let mut worst = 0.0f64;
    let mut coords = fr.coords.clone();
    for a in 0..fr.coords.len() {
        for x in 0..3 {
            let x0 = coords[a][x];
            coords[a][x] = x0 + h;
            let lp = loss(model, fr, &coords, &c);
            coords[a][x] = x0 - h;
            let lm = loss(model, fr, &coords, &c);
            coords[a][x] = x0;
            let fd = (lp - lm) / (2.0 * h);
            worst = worst.max((fd - grad[a][x]).abs());
        }
    }
    (worst, gmax)
}

#[test]
fn backward_matches_finite_differences_for_all_variants() {
    let mut report = Vec::new();
    for (k, fx) in load_all().iter().enumerate() {
        // float32 fixtures are differentiated in float64 (same graph, weights cast).
        let model = fx.dpa3::<f64>();
        for (f, fr) in fx.frames.iter().enumerate() {
            let (worst, gmax) = check_frame(&model, fr, (k * 10 + f) as u64);
            assert!(
                gmax > 1e-3,
                "{} {}: gradient vanishes ({gmax})",
                fx.variant,
                fr.name
            );
            assert!(
                worst <= 1e-7 * gmax.max(1.0),
                "{} {}: max |Δ| {worst:e} vs max |g| {gmax}",
                fx.variant,
                fr.name
            );
            report.push(format!(
                "{:>28} {:>8}: max |g − fd| {worst:.1e} (max |g| {gmax:.2})",
                fx.variant, fr.name
            ));
        }
    }
    println!("{}", report.join("\n"));
}

#[test]
fn single_layer_models_match_finite_differences() {
    // With one layer, layer 0 (rank-one angle input) is also the last layer (no edge or angle
    // output in the parallel update): both shortcuts at once.
    for name in ["default.json", "sequential.json"] {
        let fx = load_edited(&data_dir().join(name), |t| {
            let d = &mut t["descriptor"];
            d["repflow_args"]["nlayers"] = 1.into();
            d["repflow_variable"]["repflow_layers"]
                .as_array_mut()
                .unwrap()
                .truncate(1);
        });
        let model = fx.dpa3::<f64>();
        assert_eq!(model.nlayers(), 1);
        for (f, fr) in fx.frames.iter().enumerate() {
            let (worst, gmax) = check_frame(&model, fr, 500 + f as u64);
            assert!(gmax > 1e-3, "{name} {}: gradient vanishes", fr.name);
            assert!(
                worst <= 1e-7 * gmax.max(1.0),
                "{name} {}: max |Δ| {worst:e} vs max |g| {gmax}",
                fr.name
            );
        }
    }
}

#[test]
fn float32_gradients_track_float64() {
    // The float32 path (f32 coordinates differences, f32 arithmetic) against the f64 gradient
    // of the same model.
    let fx = load(&data_dir().join("float32.json"));
    let m32 = fx.dpa3::<f32>();
    let m64 = fx.dpa3::<f64>();
    for (f, fr) in fx.frames.iter().enumerate() {
        let c = lcg(f as u64 + 99, fr.nloc * m64.dim_out());
        let c32: Vec<f32> = c.iter().map(|&v| v as f32).collect();
        let mut ex = fr.exchange();
        let (_, s64) = m64.forward(&fr.input(), &mut ex).unwrap();
        let g64 = m64.backward(&fr.input(), &s64, &c, &mut ex).unwrap();
        let (_, s32) = m32.forward(&fr.input(), &mut ex).unwrap();
        let g32 = m32.backward(&fr.input(), &s32, &c32, &mut ex).unwrap();
        let gmax = g64.iter().flatten().fold(0.0f64, |m, v| m.max(v.abs()));
        let worst = g64
            .iter()
            .flatten()
            .zip(g32.iter().flatten())
            .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
        assert!(
            worst <= 1e-4 * gmax.max(1.0),
            "{}: {worst:e} vs {gmax}",
            fr.name
        );
    }
}
