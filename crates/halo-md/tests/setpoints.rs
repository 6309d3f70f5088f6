//! Thermostats and barostats reach their set-points with the bundled Cu model (trained
//! with DeePMD-kit on EMT data, `tools/train_example/`): 108-atom fcc copper, 2 fs steps.

use std::path::{Path, PathBuf};

use halo_comm::{threads, CommOptions};
use halo_domain::ProcGrid;
use halo_md::input::Input;
use halo_md::output::thermo::{read_csv, ThermoRow};
use halo_md::run::{run, RunConfig};
use halo_model::model::EnergyModel;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// 3×3×3 conventional fcc cells at the lattice constant of the bundled 256-atom cell.
fn cu108(dir: &Path) -> PathBuf {
    let cu256 = halo_io::read(&repo().join("examples/cu-emt/cu256.xyz"), None).unwrap();
    let a = cu256[0].system.cell.unwrap().lengths()[0] / 4.0;
    let mut text = format!(
        "108\nLattice=\"{l} 0 0 0 {l} 0 0 0 {l}\" pbc=\"T T T\" Properties=species:S:1:pos:R:3\n",
        l = 3.0 * a
    );
    for i in 0..3 {
        for j in 0..3 {
            for k in 0..3 {
                for b in [
                    [0.0, 0.0, 0.0],
                    [0.5, 0.5, 0.0],
                    [0.5, 0.0, 0.5],
                    [0.0, 0.5, 0.5],
                ] {
                    let x = [i as f64 + b[0], j as f64 + b[1], k as f64 + b[2]].map(|u| u * a);
                    text += &format!("Cu {} {} {}\n", x[0], x[1], x[2]);
                }
            }
        }
    }
    let path = dir.join("cu108.xyz");
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs `md` on two thread ranks and returns the thermo rows after `skip` steps.
fn thermo(md: &str, skip: u64) -> Vec<ThermoRow> {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "structure = {:?}\nmodel = {:?}\n[md]\n{md}\n[output]\nthermo_every = 1\n\
         trajectory = false\ncheckpoint = false\nthermo = false\nprogress = \"never\"\n",
        cu108(dir.path()).display().to_string(),
        repo()
            .join("examples/cu-emt/cu_se_e2_a.dp")
            .display()
            .to_string()
    );
    let path = dir.path().join("in.toml");
    std::fs::write(&path, text).unwrap();
    let input = Input::from_file(&path).unwrap();
    let model = EnergyModel::load(&input.model.path).unwrap();
    let system = halo_io::read(&input.structure, None)
        .unwrap()
        .remove(0)
        .system;
    let grid = ProcGrid::new([2, 1, 1]).unwrap();
    let cfg = RunConfig {
        input: &input,
        model: &model,
        system: &system,
        restart: None,
        grid,
        stop: None,
        steps: None,
    };
    threads::run(2, &CommOptions::default(), |comm| run(&comm, &cfg))
        .unwrap()
        .into_iter()
        .for_each(|r| assert!(r.is_ok(), "{r:?}"));
    let rows = read_csv(&dir.path().join("thermo.csv")).unwrap();
    rows.into_iter().filter(|r| r.step >= skip).collect()
}

/// Mean and its standard error from 10 block averages (the blocks are much longer than
/// the correlation time, so they are close to independent).
fn mean_err(x: &[f64]) -> (f64, f64) {
    let nb = 10;
    let len = x.len() / nb;
    let blocks: Vec<f64> = (0..nb)
        .map(|b| x[b * len..(b + 1) * len].iter().sum::<f64>() / len as f64)
        .collect();
    let mean = blocks.iter().sum::<f64>() / nb as f64;
    let var = blocks.iter().map(|b| (b - mean).powi(2)).sum::<f64>() / (nb - 1) as f64;
    (mean, (var / nb as f64).sqrt())
}

fn check_temperature(md: &str, target: f64) {
    let rows = thermo(md, 500);
    let t: Vec<f64> = rows.iter().map(|r| r.temperature).collect();
    let (mean, err) = mean_err(&t);
    println!("{md}: <T> = {mean:.2} ± {err:.2} K (target {target})");
    assert!(
        (mean - target).abs() < 0.02 * target,
        "<T> = {mean} ± {err} K, target {target}"
    );
    assert!(
        (mean - target).abs() < 4.0 * err + 1.0,
        "<T> = {mean} ± {err}"
    );
}

#[test]
fn langevin_reaches_its_temperature() {
    check_temperature(
        "ensemble = \"nvt\"\ntemperature = 500\ntimestep = 2\nsteps = 3000\ntdamp = 100\nseed = 3",
        500.0,
    );
}

#[test]
fn nose_hoover_reaches_its_temperature() {
    check_temperature(
        "ensemble = \"nvt\"\nthermostat = \"nose-hoover\"\ntemperature = 500\ntimestep = 2\n\
         steps = 3000\ntdamp = 100\nseed = 3",
        500.0,
    );
}

#[test]
fn npt_reaches_its_pressure_and_temperature() {
    let target = 10_000.0;
    let rows = thermo(
        "ensemble = \"npt\"\ntemperature = 500\npressure = 10000\ntimestep = 2\nsteps = 4000\n\
         tdamp = 100\npdamp = 500\nseed = 5",
        1000,
    );
    let p: Vec<f64> = rows.iter().map(|r| r.pressure).collect();
    let (mean, err) = mean_err(&p);
    let t: Vec<f64> = rows.iter().map(|r| r.temperature).collect();
    let (tm, terr) = mean_err(&t);
    let v: Vec<f64> = rows.iter().map(|r| r.volume.unwrap()).collect();
    let (vm, verr) = mean_err(&v);
    println!("NPT: <P> = {mean:.0} ± {err:.0} bar, <T> = {tm:.1} ± {terr:.1} K, <V> = {vm:.2} ± {verr:.2}");
    assert!(
        (mean - target).abs() < 4.0 * err + 50.0,
        "<P> = {mean} ± {err} bar, target {target}"
    );
    assert!((tm - 500.0).abs() < 10.0, "<T> = {tm} ± {terr}");
    // The cell did respond: at 500 K and 1 GPa the volume is not the starting one.
    assert!((vm - v[0]).abs() > 0.0);
}

#[test]
fn nve_conserves_energy() {
    // 2 ps; the 10 ps measurement is `halomd run examples/cu-emt/nve.toml` followed by
    // `python3 tools/nve_drift.py examples/cu-emt/nve.csv`.
    let rows = thermo(
        "ensemble = \"nve\"\ninit_temperature = 600\ntimestep = 2\nsteps = 1000\nseed = 9",
        0,
    );
    let n = 108.0;
    let t: Vec<f64> = rows.iter().map(|r| r.time * 1e-3).collect();
    let e: Vec<f64> = rows.iter().map(|r| r.conserved).collect();
    let (tm, em) = (
        t.iter().sum::<f64>() / t.len() as f64,
        e.iter().sum::<f64>() / e.len() as f64,
    );
    let slope = t
        .iter()
        .zip(&e)
        .map(|(a, b)| (a - tm) * (b - em))
        .sum::<f64>()
        / t.iter().map(|a| (a - tm).powi(2)).sum::<f64>();
    let excursion = e.iter().map(|x| (x - e[0]).abs()).fold(0.0, f64::max);
    println!(
        "NVE: drift {:.2e} eV/atom/ps, max |E - E0| {:.2e} eV/atom",
        slope / n,
        excursion / n
    );
    assert!((slope / n).abs() < 1e-5, "drift {} eV/atom/ps", slope / n);
    assert!(excursion / n < 1e-3, "excursion {} eV/atom", excursion / n);
    // The run was not trivially at rest: equipartition takes the 600 K start to ~300 K.
    let tmean = rows.iter().map(|r| r.temperature).sum::<f64>() / rows.len() as f64;
    assert!(tmean > 250.0 && tmean < 350.0, "<T> = {tmean} K");
}
