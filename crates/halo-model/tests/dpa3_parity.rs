//! DPA3 descriptor parity against DeePMD-kit 3.2 (`deepmd.dpmodel` `DescrptDPA3.call`) on the
//! fixtures of `tools/dpa3_check/make_desc_refs.py`: same extended coordinates, types and
//! neighbour list, ghost rows filled through a `MappingExchange`.

mod dpa3_common;
use dpa3_common::*;

/// Max |Δ| and max |ref| over all descriptor entries of a fixture, evaluated in `T`.
fn compare<T: halo_model::Real>(fx: &Fixture) -> (f64, f64) {
    let model = fx.dpa3::<T>();
    let (mut worst, mut scale) = (0.0f64, 0.0f64);
    for fr in &fx.frames {
        assert_eq!(model.dim_out(), fr.dim_out, "{}: dim_out", fx.variant);
        let mut ex = fr.exchange();
        let (d, _) = model.forward(&fr.input(), &mut ex).unwrap();
        assert_eq!(d.len(), fr.descriptor.len());
        for (k, (a, b)) in d.iter().zip(&fr.descriptor).enumerate() {
            let diff = (a.f64() - b).abs();
            assert!(
                diff.is_finite(),
                "{} {}: entry {k} not finite",
                fx.variant,
                fr.name
            );
            worst = worst.max(diff);
            scale = scale.max(b.abs());
        }
    }
    (worst, scale)
}

#[test]
fn descriptor_matches_deepmd() {
    let fixtures = load_all();
    let mut report = Vec::new();
    for fx in &fixtures {
        let (worst, scale) = if fx.precision == "float32" {
            let (w, s) = compare::<f32>(fx);
            assert!(
                w <= 2e-5 * s.max(1.0),
                "{} (f32): max |Δ| = {w:e} (scale {s})",
                fx.variant
            );
            (w, s)
        } else {
            let (w, s) = compare::<f64>(fx);
            assert!(
                w <= 1e-12 * s.max(1.0),
                "{}: max |Δ| = {w:e} (scale {s})",
                fx.variant
            );
            (w, s)
        };
        report.push(format!(
            "{:>28} {:>8}: max |Δ| {worst:.2e} (max |D| {scale:.2})",
            fx.variant, fx.precision
        ));
    }
    println!("{}", report.join("\n"));
}

#[test]
fn float32_model_in_float64_is_close() {
    // The float32 fixture evaluated in f64: differences are f32 rounding only.
    let fx = load(&data_dir().join("float32.json"));
    let (w, s) = compare::<f64>(&fx);
    assert!(w <= 1e-4 * s.max(1.0), "max |Δ| = {w:e}");
}
