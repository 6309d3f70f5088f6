//! The MD loop across ranks: trajectories independent of the rank count, bit-for-bit
//! restarts, and outputs that resume where the checkpoint left them.
//!
//! The model is a DPA3 fixture (message passing: every layer exchanges ghost embeddings
//! between ranks) on 128 H/C/N/O atoms, hot enough that atoms migrate between subdomains
//! and lists are rebuilt many times within the run.

use std::path::{Path, PathBuf};

use halo_comm::{threads, CommOptions};
use halo_core::{Cell, System};
use halo_domain::ProcGrid;
use halo_md::checkpoint::{self, Checkpoint};
use halo_md::input::Input;
use halo_md::run::{run, RunConfig, RunSummary};
use halo_model::model::EnergyModel;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// hcno32 (8.3 Å cube) repeated 2×2×1: 128 atoms in 16.6 × 16.6 × 8.3 Å.
fn structure(dir: &Path) -> PathBuf {
    let frames = halo_io::read(&repo().join("examples/structures/hcno32.xyz"), None).unwrap();
    let s = &frames[0].system;
    let h = *s.cell.unwrap().matrix();
    let mut positions = Vec::new();
    let mut types = Vec::new();
    for (i, j) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
        for (x, &t) in s.positions.iter().zip(&s.types) {
            positions.push(std::array::from_fn(|k| {
                x[k] + f64::from(i) * h[0][k] + f64::from(j) * h[1][k]
            }));
            types.push(t);
        }
    }
    let cell = Cell::periodic([
        [2.0 * h[0][0], 0.0, 0.0],
        [0.0, 2.0 * h[1][1], 0.0],
        [0.0, 0.0, h[2][2]],
    ])
    .unwrap();
    let masses = types
        .iter()
        .map(|&t| s.masses[s.types.iter().position(|&u| u == t).unwrap()]);
    let system = System {
        masses: masses.collect(),
        positions,
        types,
        type_names: s.type_names.clone(),
        velocities: None,
        charges: None,
        cell: Some(cell),
    };
    let path = dir.join("hcno128.xyz");
    let frame = halo_io::Frame {
        system,
        info: Vec::new(),
        arrays: Vec::new(),
    };
    halo_io::write(&path, &[frame], halo_io::Format::ExtXyz).unwrap();
    path
}

fn model() -> EnergyModel {
    EnergyModel::load(&repo().join("fixtures/deepmd/models/dpa3_base.dp")).unwrap()
}

/// An input file in `dir` for `md` (the `[md]` body) with outputs every `every` steps.
fn input(dir: &Path, md: &str, every: u64) -> Input {
    let text = format!(
        "structure = {:?}\nmodel = {:?}\n[md]\n{md}\n[output]\nthermo_every = {every}\n\
         trajectory_every = {every}\ncheckpoint_every = {every}\nprogress = \"never\"\n",
        structure(dir).display().to_string(),
        repo()
            .join("fixtures/deepmd/models/dpa3_base.dp")
            .display()
            .to_string(),
    );
    let path = dir.join("in.toml");
    std::fs::write(&path, &text).unwrap();
    Input::from_file(&path).unwrap()
}

/// Runs `input` on a `dims` grid of thread ranks; rank 0's summary.
fn run_on(
    input: &Input,
    model: &EnergyModel,
    dims: [usize; 3],
    restart: Option<&Checkpoint>,
    steps: Option<u64>,
) -> RunSummary {
    let system = halo_io::read(&input.structure, None)
        .unwrap()
        .remove(0)
        .system;
    let grid = ProcGrid::new(dims).unwrap();
    let cfg = RunConfig {
        input,
        model,
        system: &system,
        restart,
        grid,
        stop: None,
        steps,
    };
    let mut outs = threads::run(grid.nranks(), &CommOptions::default(), |comm| {
        run(&comm, &cfg)
    })
    .unwrap();
    outs.remove(0).unwrap()
}

const HOT_NVE: &str = "ensemble = \"nve\"\ninit_temperature = 1500\ntimestep = 0.25\n\
                       steps = 200\nskin = 0.3\nseed = 7";

#[test]
fn trajectories_agree_for_any_rank_count() {
    let model = model();
    let dir = tempfile::tempdir().unwrap();
    let input = input(dir.path(), HOT_NVE, 1000);
    let one = run_on(&input, &model, [1, 1, 1], None, None);
    let ref_atoms = one.atoms.as_ref().unwrap();
    assert!(one.rebuilds >= 5, "only {} rebuilds", one.rebuilds);
    for dims in [[2, 1, 1], [1, 2, 1], [3, 1, 1], [2, 2, 1]] {
        let many = run_on(&input, &model, dims, None, None);
        assert!(
            many.migrated > 0,
            "{dims:?}: no atom changed rank in {} rebuilds",
            many.rebuilds
        );
        let atoms = many.atoms.as_ref().unwrap();
        let dx = atoms
            .x
            .iter()
            .zip(&ref_atoms.x)
            .flat_map(|(a, b)| (0..3).map(move |k| (a[k] - b[k]).abs()))
            .fold(0.0, f64::max);
        let dv = atoms
            .v
            .iter()
            .zip(&ref_atoms.v)
            .flat_map(|(a, b)| (0..3).map(move |k| (a[k] - b[k]).abs()))
            .fold(0.0, f64::max);
        assert!(dx < 1e-8, "{dims:?}: positions differ by {dx:e} Å");
        assert!(dv < 1e-9, "{dims:?}: velocities differ by {dv:e} Å/fs");
        let de = (many.potential.energy - one.potential.energy).abs();
        assert!(de < 1e-8, "{dims:?}: energies differ by {de:e} eV");
        println!(
            "{dims:?}: {} rebuilds, {} migrations, max |Δx| {dx:.1e} Å",
            many.rebuilds, many.migrated
        );
    }
    // The run really moved: atoms travelled well beyond the skin.
    let system = halo_io::read(&input.structure, None)
        .unwrap()
        .remove(0)
        .system;
    let moved = ref_atoms
        .x
        .iter()
        .zip(&system.positions)
        .map(|(a, b)| ((0..3).map(|k| (a[k] - b[k]).powi(2)).sum::<f64>()).sqrt())
        .fold(0.0, f64::max);
    assert!(moved > 1.0, "atoms moved at most {moved} Å");
}

/// Runs `md` for 2n steps at once and as n + n with a restart in between; everything must
/// agree bit for bit: atoms, cell and the thermo/trajectory files.
fn restart_case(md: &str, dims: [usize; 3], dims_after: [usize; 3]) {
    let model = model();
    let whole = tempfile::tempdir().unwrap();
    let split = tempfile::tempdir().unwrap();
    let n = 30;
    let a = run_on(
        &input(whole.path(), md, 10),
        &model,
        dims,
        None,
        Some(2 * n),
    );
    let input_b = input(split.path(), md, 10);
    let first = run_on(&input_b, &model, dims, None, Some(n));
    assert_eq!(first.last_step, n);
    let ck = checkpoint::read(&split.path().join("run.chk")).unwrap();
    assert_eq!(ck.step, n);
    // A trajectory frame written after the checkpoint (a run killed later) is cut off.
    std::fs::OpenOptions::new()
        .append(true)
        .open(split.path().join("traj.xyz"))
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"128\npartial frame"))
        .unwrap();
    let b = run_on(&input_b, &model, dims_after, Some(&ck), Some(n));
    assert_eq!(b.last_step, 2 * n);
    let (xa, xb) = (a.atoms.unwrap(), b.atoms.unwrap());
    if dims == dims_after {
        assert_eq!(xa, xb, "restart is not bit-identical");
        assert_eq!(a.cell, b.cell);
        for f in ["thermo.csv", "thermo.log", "traj.xyz"] {
            let fa = std::fs::read(whole.path().join(f)).unwrap();
            let fb = std::fs::read(split.path().join(f)).unwrap();
            assert!(fa == fb, "{f} differs after the restart");
        }
    } else {
        let dx =
            xa.x.iter()
                .zip(&xb.x)
                .flat_map(|(p, q)| (0..3).map(move |k| (p[k] - q[k]).abs()))
                .fold(0.0, f64::max);
        assert!(
            dx < 1e-8,
            "restart on other ranks: positions differ by {dx:e}"
        );
    }
}

#[test]
fn langevin_restart_is_bit_identical() {
    restart_case(
        "ensemble = \"nvt\"\ntemperature = 600\ntimestep = 0.25\nsteps = 60\nskin = 0.3",
        [2, 1, 1],
        [2, 1, 1],
    );
}

#[test]
fn nose_hoover_restart_is_bit_identical() {
    restart_case(
        "ensemble = \"nvt\"\nthermostat = \"nose-hoover\"\ntemperature = 600\n\
         timestep = 0.25\nsteps = 60\nskin = 0.3",
        [1, 2, 1],
        [1, 2, 1],
    );
}

#[test]
fn npt_restart_is_bit_identical() {
    restart_case(
        "ensemble = \"npt\"\ntemperature = 600\npressure = 1000\ntimestep = 0.25\n\
         steps = 60\nskin = 0.3\npdamp = 50\nbarostat = \"aniso\"",
        [2, 1, 1],
        [2, 1, 1],
    );
}

#[test]
fn restart_on_another_rank_count_continues_the_run() {
    restart_case(
        "ensemble = \"nvt\"\ntemperature = 600\ntimestep = 0.25\nsteps = 60\nskin = 0.3",
        [2, 1, 1],
        [1, 1, 3],
    );
}
