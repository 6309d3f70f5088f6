//! `halomd run`: molecular dynamics or a minimisation from a TOML input file.

use crate::ranks::Launch;
use anyhow::{Context, Result};
use halo_core::System;
use halo_md::checkpoint::{self, Checkpoint};
use halo_md::input::{Input, Task};
use halo_md::run::{RunConfig, RunSummary};
use halo_model::model::EnergyModel;
use std::path::PathBuf;

/// Flags of `halomd run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Input file (TOML; every key is described in docs/run-input.md).
    input: PathBuf,
    /// Continue from this checkpoint (same positions, velocities, thermostat state and
    /// random stream; bit-for-bit on the same rank count).
    #[arg(long)]
    restart: Option<PathBuf>,
    /// Number of steps to run (overrides the input's `steps`).
    #[arg(long)]
    steps: Option<u64>,
    /// Number of ranks (overrides `[parallel] ranks`).
    #[arg(long)]
    ranks: Option<usize>,
    /// Processor grid `AxBxC` (overrides `[parallel] grid`).
    #[arg(long, value_parser = crate::eval::parse_grid)]
    grid: Option<[usize; 3]>,
    /// Communication backend: threads, shm or mpi (overrides `[parallel] comm`).
    #[arg(long)]
    comm: Option<String>,
}

/// Runs `halomd run`.
pub fn run(args: &RunArgs) -> Result<()> {
    let input = Input::from_file(&args.input)?;
    let restart = match &args.restart {
        Some(p) => Some(checkpoint::read(p)?),
        None => None,
    };
    let system = match &restart {
        Some(ck) => system_from_checkpoint(ck)?,
        None => {
            let frames = halo_io::read(&input.structure, input.structure_format)?;
            frames
                .into_iter()
                .last()
                .with_context(|| format!("{}: no frame", input.structure.display()))?
                .system
        }
    };
    let par = &input.parallel;
    let grid = args.grid.or(par.grid);
    // Unset stays unset: the launcher defaults to the grid's size or 1, and under MPI to
    // the world size.
    let nranks = args.ranks.or(par.ranks);
    let comm = args.comm.clone().unwrap_or_else(|| par.comm.clone());
    let launch = Launch::new(&comm, nranks, grid, "run")?;
    if launch.is_shm_launcher() {
        launch.run(&system, false, |_, _| Ok(()))?;
        return Ok(());
    }
    let model = EnergyModel::load(&input.model.path)?;
    let stop = crate::signals::stop_flag()?;
    let summary = launch.run(&system, false, |comm, grid| {
        if comm.rank() == 0 {
            eprintln!(
                "{}",
                banner(&input, &model, &system, grid.dims(), restart.as_ref())
            );
        }
        let cfg = RunConfig {
            input: &input,
            model: &model,
            system: &system,
            restart: restart.as_ref(),
            grid,
            stop: Some(&stop),
            steps: args.steps,
        };
        Ok(halo_md::run::run(comm, &cfg)?)
    })?;
    if let Some(s) = summary {
        eprintln!("{}", report(&input, &s));
        if s.interrupted {
            // A batch script must not mistake a cut-short run for a finished one.
            anyhow::bail!(
                "interrupted by a signal at step {}{}",
                s.last_step,
                match &input.output.checkpoint {
                    Some(ck) => format!(
                        "; continue with `halomd run {} --restart {}`",
                        args.input.display(),
                        ck.display()
                    ),
                    None => "; no checkpoint is configured, so the run cannot be continued".into(),
                }
            );
        }
    }
    Ok(())
}

/// The structure a checkpoint holds (positions as saved, wrapped).
fn system_from_checkpoint(ck: &Checkpoint) -> Result<System> {
    let s = System {
        positions: ck.x.clone(),
        types: ck.types.clone(),
        type_names: ck.type_names.clone(),
        masses: ck.mass.clone(),
        velocities: Some(ck.v.clone()),
        charges: None,
        cell: ck.cell,
    };
    s.validate().context("checkpoint")?;
    Ok(s)
}

/// What is about to run, on stderr.
fn banner(
    input: &Input,
    model: &EnergyModel,
    system: &System,
    grid: [usize; 3],
    restart: Option<&Checkpoint>,
) -> String {
    let task = match &input.task {
        Task::Md(md) => format!(
            "MD {:?}, {} steps of {} fs",
            md.ensemble, md.steps, md.timestep
        ),
        Task::Minimize(m) => format!("FIRE minimisation to fmax {} eV/Å", m.fmax),
    };
    let from = restart.map_or(String::new(), |ck| {
        format!(", restart from step {}", ck.step)
    });
    format!(
        "halomd run: {} atoms, model {} (rcut {} Å), {task}, {} rank(s) on a {}x{}x{} grid{from}",
        system.len(),
        input.model.path.display(),
        model.rcut(),
        grid.iter().product::<usize>(),
        grid[0],
        grid[1],
        grid[2]
    )
}

/// How the run went, on stderr.
fn report(input: &Input, s: &RunSummary) -> String {
    let steps = s.last_step - s.first_step;
    let mut lines = vec![format!(
        "done: steps {}..{} in {:.2} s ({:.1} steps/s), {} rebuilds; final PE {:.6} eV, T {:.2} K",
        s.first_step,
        s.last_step,
        s.wall,
        steps as f64 / s.wall.max(1e-9),
        s.rebuilds,
        s.potential.energy,
        s.thermo.temperature
    )];
    if let Task::Md(md) = &input.task {
        let ns_day = steps as f64 * md.timestep * 1e-6 / (s.wall.max(1e-9) / 86400.0);
        lines.push(format!("performance: {ns_day:.3} ns/day"));
    }
    if let Task::Minimize(_) = &input.task {
        lines.push(if s.converged {
            "minimisation converged".into()
        } else {
            "minimisation did NOT converge within the step limit".into()
        });
    }
    if s.dropped > 0 {
        lines.push(format!(
            "warning: {} neighbours were dropped for lack of sel slots over the run; \
             increase sel in the model",
            s.dropped
        ));
    }
    lines.join("\n")
}
