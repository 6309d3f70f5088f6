//! The MD loop of one rank: integrate, migrate and rebuild when the skin says so, evaluate
//! the model, write outputs and checkpoints.
//!
//! Every rank runs [`run`] with the same [`RunConfig`]; the loop never branches on the rank
//! count, only rank 0 touches files. The order of one step `n`:
//!
//! 1. `pre_force` of the integrator (kicks, drifts, thermostat; NPT may change the cell);
//! 2. a rebuild if any rank's atoms moved more than half the skin (or the cell deformed as
//!    much), and always on a checkpoint step: wrap positions into the cell (counting image
//!    flags), migrate atoms to the ranks that own their positions, build the ghost shell and
//!    the skin list; otherwise only a forward refresh of ghost positions;
//! 3. the model evaluation (forces on owned atoms, global energy and virial);
//! 4. `post_force`; then thermo, trajectory and checkpoint when due.
//!
//! Restarts are bit-for-bit because a checkpoint is always taken on a rebuild step: the
//! restarted run rebuilds from the same wrapped positions, which gives the same subdomains,
//! ghost order and neighbour lists, hence the same forces, bit for bit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use halo_comm::{Comm, CommExt, Op};
use halo_core::{Cell, System, Vec3};
use halo_domain::{Domain, LocalAtoms, ProcGrid};
use halo_model::model::{EnergyModel, EvalParams};
use halo_nlist::RebuildCheck;

use crate::atoms::{Atoms, Potential};
use crate::checkpoint::{self, Checkpoint};
use crate::dynamics::{
    Ctx, Fire, FireParams, Integrator, Langevin, NoseHooverChain, Npt, NptParams, Nve,
};
use crate::error::MdError;
use crate::force::ModelForces;
use crate::input::{Ensemble, InitVelocities, Input, Task};
use crate::observables;
use crate::output::thermo::{ThermoLog, ThermoRow};
use crate::output::traj::{TrajFrame, TrajWriter};
use crate::progress::Progress;
use crate::velocity;

/// Values that travel with an atom when it migrates (besides gid, type and position): mass,
/// velocity, image flags.
const PAYLOAD: usize = 7;

/// Values per atom gathered for a checkpoint or a frame: gid, type, mass, x, v, f, image.
const GATHERED: usize = 15;

/// Everything a rank needs to run; the same on every rank.
pub struct RunConfig<'a> {
    /// The parsed input file.
    pub input: &'a Input,
    /// The model.
    pub model: &'a EnergyModel,
    /// The starting structure (for a restart: built from the checkpoint).
    pub system: &'a System,
    /// The checkpoint to continue from, if any.
    pub restart: Option<&'a Checkpoint>,
    /// The processor grid (its rank count must equal the communicator's).
    pub grid: ProcGrid,
    /// Set (by a signal handler) to stop at the end of the current step with a checkpoint.
    pub stop: Option<&'a AtomicBool>,
    /// Number of steps to run instead of the input's (tests, `--steps`).
    pub steps: Option<u64>,
}

/// How a run ended, on every rank; `atoms` only on rank 0.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// The first step of this run (0, or the checkpoint's step).
    pub first_step: u64,
    /// The last step completed.
    pub last_step: u64,
    /// Whether a signal stopped the run early.
    pub interrupted: bool,
    /// Whether a minimisation converged (always false for MD).
    pub converged: bool,
    /// Neighbour-list rebuilds (with migration) during the run, after the initial one.
    pub rebuilds: u64,
    /// Atoms that changed rank at those rebuilds, summed over the run.
    pub migrated: u64,
    /// Wall time of the stepping loop (s).
    pub wall: f64,
    /// Final potential energy and virial.
    pub potential: Potential,
    /// The last thermo values.
    pub thermo: ThermoRow,
    /// Neighbours dropped for lack of `sel` slots, summed over ranks and steps.
    pub dropped: u64,
    /// Final state of all atoms in gid order (rank 0 only): positions are unwrapped.
    pub atoms: Option<Atoms>,
    /// The cell at the end.
    pub cell: Option<Cell>,
}

/// Runs the input's MD or minimisation on this rank (collective over `comm`).
pub fn run(comm: &dyn Comm, cfg: &RunConfig<'_>) -> Result<RunSummary, MdError> {
    Runner::new(comm, cfg)?.run()
}

/// What the loop needs to know about the task.
struct Plan {
    steps: u64,
    dt: f64,
    skin: f64,
    seed: u64,
}

struct Runner<'a> {
    comm: &'a dyn Comm,
    cfg: &'a RunConfig<'a>,
    plan: Plan,
    natoms: usize,
    type_names: Vec<String>,
    grid: ProcGrid,
    model_types: Vec<i32>,
}

/// Files only rank 0 writes.
struct Writers {
    thermo: Option<ThermoLog>,
    traj: Option<TrajWriter>,
    /// Thermo rows for the plot, kept only when it is asked for and there is no CSV to read
    /// them back from.
    rows: Option<Vec<ThermoRow>>,
}

impl<'a> Runner<'a> {
    fn new(comm: &'a dyn Comm, cfg: &'a RunConfig<'a>) -> Result<Self, MdError> {
        let input = cfg.input;
        let plan = match &input.task {
            Task::Md(md) => Plan {
                steps: md.steps,
                dt: md.timestep,
                skin: md.skin,
                seed: md.seed,
            },
            Task::Minimize(m) => Plan {
                steps: m.steps,
                dt: 1.0,
                skin: m.skin,
                seed: 0,
            },
        };
        let plan = Plan {
            steps: cfg.steps.unwrap_or(plan.steps),
            ..plan
        };
        if comm.size() != cfg.grid.nranks() {
            return Err(MdError::Input(format!(
                "the grid {:?} has {} ranks but the communicator {}",
                cfg.grid.dims(),
                cfg.grid.nranks(),
                comm.size()
            )));
        }
        let null: Vec<String> = input.model.null_types.clone();
        let model_types = cfg
            .model
            .map_types_null(cfg.system, &null)
            .map_err(|e| MdError::Model(e.to_string()))?;
        Ok(Runner {
            comm,
            cfg,
            plan,
            natoms: cfg.system.len(),
            type_names: cfg.system.type_names.clone(),
            grid: cfg.grid,
            model_types,
        })
    }

    fn run(self) -> Result<RunSummary, MdError> {
        let comm = self.comm;
        let cfg = self.cfg;
        let rank0 = comm.rank() == 0;
        let out = &cfg.input.output;
        let params = EvalParams {
            fparam: cfg.input.model.fparam.clone(),
            head: None,
            ..EvalParams::default()
        };
        let params = self.with_head(params)?;
        let mut forces = ModelForces::new(cfg.model, &self.model_types, params, self.plan.skin)?;

        // Initial state: rank 0 holds every atom; the first migration spreads them.
        let (first_step, mut time, mut cell, atoms) = self.initial_state();
        let mut integrator = self.integrator()?;
        let (mut domain, mut atoms, _) = self.rebuild(&cell, atoms, &mut forces)?;
        let mut check = RebuildCheck::new(forces.rcut(), forces.skin(), &atoms.x, cell.as_ref());
        let mut pot = self.evaluate(&mut forces, &domain, &mut atoms)?;
        {
            let mut ctx = self.ctx(&mut atoms, &mut cell, first_step);
            match cfg.restart {
                Some(ck) => integrator.set_state(&ck.integrator_state)?,
                None => self.init_velocities(&mut ctx)?,
            }
            // After `set_state`: `setup` keeps the restored state and only derives what
            // depends on the forces at the start (NPT's virial).
            integrator.setup(&mut ctx, &pot)?;
        }

        let mut writers = if rank0 {
            Some(self.open_writers()?)
        } else {
            None
        };
        let every = |n: u64| n > 0;
        let thermo_due =
            |step: u64| every(out.thermo_every) && step.is_multiple_of(out.thermo_every);
        let traj_due = |step: u64| {
            out.trajectory.is_some()
                && every(out.trajectory_every)
                && step.is_multiple_of(out.trajectory_every)
        };
        let last_step = first_step + self.plan.steps;
        let ck_due = |step: u64| {
            out.checkpoint.is_some()
                && ((every(out.checkpoint_every) && step.is_multiple_of(out.checkpoint_every))
                    || step == last_step)
        };
        let mut row = self.thermo(&atoms, &cell, &pot, integrator.as_ref(), first_step, time)?;
        if cfg.restart.is_none() {
            let all = self.gather_if(traj_due(first_step), &atoms)?;
            self.write_step(
                &mut writers,
                first_step,
                &row,
                &cell,
                &pot,
                thermo_due(first_step) || first_step == last_step,
                all.as_ref(),
            )?;
        }
        // A minimisation has no physical time step, so no ns/day.
        let progress_dt = match cfg.input.task {
            Task::Md(_) => self.plan.dt,
            Task::Minimize(_) => 0.0,
        };
        let mut progress =
            rank0.then(|| Progress::new(out.progress, self.plan.steps, first_step, progress_dt));
        let start = Instant::now();
        let mut rebuilds = 0u64;
        let mut migrated = 0u64;
        let mut interrupted = false;
        let mut converged = false;
        let mut step = first_step;
        while step < last_step {
            step += 1;
            time += self.plan.dt;
            integrator.pre_force(&mut self.ctx(&mut atoms, &mut cell, step))?;
            let local = u8::from(check.needs_rebuild(&atoms.x, cell.as_ref()));
            let mut flag = [f64::from(local)];
            comm.allreduce_f64(&mut flag, Op::Max)?;
            if flag[0] > 0.0 || ck_due(step) {
                let arrived;
                (domain, atoms, arrived) = self.rebuild(&cell, atoms, &mut forces)?;
                migrated += arrived;
                check = RebuildCheck::new(forces.rcut(), forces.skin(), &atoms.x, cell.as_ref());
                rebuilds += 1;
            } else {
                match &cell {
                    Some(c) => domain.refresh_cell(comm, &atoms.x, c)?,
                    None => domain.refresh(comm, &atoms.x)?,
                }
            }
            pot = self.evaluate(&mut forces, &domain, &mut atoms)?;
            integrator.post_force(&mut self.ctx(&mut atoms, &mut cell, step), &pot)?;
            converged = integrator.converged();
            let stop_local = cfg.stop.is_some_and(|s| s.load(Ordering::Relaxed));
            let mut flag = [f64::from(u8::from(stop_local))];
            comm.allreduce_f64(&mut flag, Op::Max)?;
            interrupted = flag[0] > 0.0;
            let end = interrupted || converged || step == last_step;
            let thermo_now = thermo_due(step) || end;
            if thermo_now {
                row = self.thermo(&atoms, &cell, &pot, integrator.as_ref(), step, time)?;
            }
            let frame = traj_due(step);
            let save = ck_due(step) || (interrupted && out.checkpoint.is_some());
            // One gather serves the frame and the checkpoint of the same step.
            let all = self.gather_if(frame || save, &atoms)?;
            self.write_step(
                &mut writers,
                step,
                &row,
                &cell,
                &pot,
                thermo_now,
                all.as_ref().filter(|_| frame),
            )?;
            if save {
                self.checkpoint(&mut writers, step, time, all, &cell, integrator.as_ref())?;
            }
            if let Some(p) = progress.as_mut() {
                p.update(step, thermo_now.then_some(&row));
            }
            if end {
                break;
            }
        }
        if let Some(p) = progress.as_mut() {
            p.finish();
        }
        let wall = start.elapsed().as_secs_f64();
        if let Some(w) = writers.as_mut() {
            self.finish_writers(w)?;
        }
        let mut counts = [forces.dropped() as u64, migrated];
        comm.allreduce_u64(&mut counts, Op::Sum)?;
        let gathered = self.gather(&atoms, &cell)?;
        Ok(RunSummary {
            first_step,
            last_step: step,
            interrupted,
            converged,
            rebuilds,
            wall,
            potential: pot,
            thermo: row,
            dropped: counts[0],
            migrated: counts[1],
            atoms: gathered,
            cell,
        })
    }

    /// What the integrator may touch at `step`.
    fn ctx<'b>(&'b self, atoms: &'b mut Atoms, cell: &'b mut Option<Cell>, step: u64) -> Ctx<'b> {
        Ctx {
            comm: self.comm,
            atoms,
            cell,
            natoms: self.natoms,
            dt: self.plan.dt,
            step,
        }
    }

    /// `model.head` as the index of a head of a multi-task model.
    fn with_head(&self, mut params: EvalParams) -> Result<EvalParams, MdError> {
        if let Some(h) = &self.cfg.input.model.head {
            params.head = Some(h.trim().parse::<usize>().map_err(|_| {
                MdError::Input(format!(
                    "{}: model.head: `{h}` is not a head index (0, 1, …; see `halomd inspect`)",
                    self.cfg.input.path.display()
                ))
            })?);
        }
        Ok(params)
    }

    /// Step, time, cell and atoms to start from; every atom on rank 0, wrapped.
    fn initial_state(&self) -> (u64, f64, Option<Cell>, Atoms) {
        let rank0 = self.comm.rank() == 0;
        let mut atoms = Atoms::default();
        let (step, time, cell) = match self.cfg.restart {
            Some(ck) => {
                if rank0 {
                    atoms = Atoms {
                        gid: (0..ck.x.len()).collect(),
                        types: ck.types.clone(),
                        mass: ck.mass.clone(),
                        x: ck.x.clone(),
                        v: ck.v.clone(),
                        f: vec![[0.0; 3]; ck.x.len()],
                        image: ck.image.clone(),
                    };
                }
                (ck.step, ck.time, ck.cell)
            }
            None => {
                let s = self.cfg.system;
                if rank0 {
                    let n = s.len();
                    atoms = Atoms {
                        gid: (0..n).collect(),
                        types: s.types.clone(),
                        mass: s.masses.clone(),
                        x: s.positions.clone(),
                        v: s.velocities.clone().unwrap_or_else(|| vec![[0.0; 3]; n]),
                        f: vec![[0.0; 3]; n],
                        image: vec![[0; 3]; n],
                    };
                }
                (0, 0.0, s.cell)
            }
        };
        (step, time, cell, atoms)
    }

    /// The integrator the input asks for.
    fn integrator(&self) -> Result<Box<dyn Integrator>, MdError> {
        Ok(match &self.cfg.input.task {
            Task::Md(md) => match &md.ensemble {
                Ensemble::Nve => Box::new(Nve::new()),
                Ensemble::Langevin {
                    temperature,
                    damping,
                } => Box::new(Langevin::new(*temperature, *damping, md.seed)?),
                Ensemble::NoseHoover {
                    temperature,
                    tdamp,
                    chain,
                } => Box::new(NoseHooverChain::new(*temperature, *tdamp, *chain)?),
                Ensemble::Npt {
                    temperature,
                    tdamp,
                    pressure,
                    pdamp,
                    couple,
                    chain,
                } => Box::new(Npt::new(NptParams {
                    temperature: *temperature,
                    tdamp: *tdamp,
                    pressure_bar: *pressure,
                    pdamp: *pdamp,
                    couple: *couple,
                    chain: *chain,
                })?),
            },
            Task::Minimize(m) => Box::new(Fire::new(FireParams::new(
                m.fmax, m.maxstep, m.cell, m.pressure,
            ))?),
        })
    }

    /// Initial velocities of a fresh run.
    fn init_velocities(&self, ctx: &mut Ctx<'_>) -> Result<(), MdError> {
        let init = match &self.cfg.input.task {
            Task::Md(md) => md.initial_velocities(self.cfg.system.velocities.is_some()),
            Task::Minimize(_) => InitVelocities::Zero,
        };
        match init {
            InitVelocities::FromStructure if self.cfg.system.velocities.is_none() => {
                Err(MdError::Input(format!(
                    "{}: md.velocities = \"structure\" but {} has no velocities",
                    self.cfg.input.path.display(),
                    self.cfg.input.structure.display()
                )))
            }
            InitVelocities::FromStructure | InitVelocities::Auto => Ok(()),
            InitVelocities::Zero => {
                for v in ctx.atoms.v.iter_mut() {
                    *v = [0.0; 3];
                }
                Ok(())
            }
            InitVelocities::Temperature(t) => {
                velocity::maxwell_boltzmann(ctx.comm, ctx.atoms, self.natoms, t, self.plan.seed)
            }
        }
    }

    /// Wraps positions into the cell (counting images), migrates atoms to their owners and
    /// builds the ghost shell and the skin list (collective). Also returns how many atoms
    /// arrived from other ranks.
    fn rebuild(
        &self,
        cell: &Option<Cell>,
        mut atoms: Atoms,
        forces: &mut ModelForces<'_>,
    ) -> Result<(Domain, Atoms, u64), MdError> {
        let before = atoms.gid.clone();
        if let Some(c) = cell {
            wrap(c, &mut atoms);
        }
        let n = atoms.len();
        let mut payload = Vec::with_capacity(n * PAYLOAD);
        for i in 0..n {
            let v = atoms.v[i];
            let im = atoms.image[i];
            payload.extend_from_slice(&[
                atoms.mass[i],
                v[0],
                v[1],
                v[2],
                f64::from(im[0]),
                f64::from(im[1]),
                f64::from(im[2]),
            ]);
        }
        let local = LocalAtoms {
            gids: atoms.gid,
            types: atoms.types,
            positions: atoms.x,
            payload,
            width: PAYLOAD,
        };
        let (mut domain, local) =
            Domain::migrate(self.comm, self.grid, cell.as_ref(), self.natoms, local)?;
        domain.borders(self.comm, forces.list_cutoff())?;
        forces.rebuild(&domain)?;
        let n = local.gids.len();
        let p = &local.payload;
        let atoms = Atoms {
            mass: (0..n).map(|i| p[i * PAYLOAD]).collect(),
            v: (0..n)
                .map(|i| [p[i * PAYLOAD + 1], p[i * PAYLOAD + 2], p[i * PAYLOAD + 3]])
                .collect(),
            image: (0..n)
                .map(|i| std::array::from_fn(|k| p[i * PAYLOAD + 4 + k] as i32))
                .collect(),
            f: vec![[0.0; 3]; n],
            gid: local.gids,
            types: local.types,
            x: local.positions,
        };
        // Both lists are sorted by gid.
        let arrived = atoms
            .gid
            .iter()
            .filter(|g| before.binary_search(g).is_err())
            .count() as u64;
        Ok((domain, atoms, arrived))
    }

    /// Forces on the local atoms (into `atoms.f`) and the global energy and virial.
    fn evaluate(
        &self,
        forces: &mut ModelForces<'_>,
        domain: &Domain,
        atoms: &mut Atoms,
    ) -> Result<Potential, MdError> {
        let out = forces.compute(self.comm, domain)?;
        if let Some(w) = out.warning {
            // Truncation is never silent; the count is in the summary as well.
            eprintln!("halomd: warning: rank {}: {w}", self.comm.rank());
        }
        atoms.f = out.eval.force;
        Ok(Potential {
            energy: out.eval.energy,
            virial: out.eval.virial,
        })
    }

    /// The thermo row at `step` (collective).
    fn thermo(
        &self,
        atoms: &Atoms,
        cell: &Option<Cell>,
        pot: &Potential,
        integrator: &dyn Integrator,
        step: u64,
        time: f64,
    ) -> Result<ThermoRow, MdError> {
        let kin = observables::kinetic_tensor(self.comm, atoms)?;
        // Trace of Σ m v⊗v is twice the kinetic energy.
        let ke = 0.5 * (kin[0] + kin[4] + kin[8]);
        let ndof = integrator.ndof(self.natoms);
        let temperature = observables::temperature(ke, ndof);
        let volume = cell
            .as_ref()
            .filter(|c| c.pbc() == [true; 3])
            .map(Cell::volume);
        let pressure = volume.map_or(0.0, |v| observables::pressure_bar(&kin, &pot.virial, v));
        Ok(ThermoRow {
            step,
            time,
            pe: pot.energy,
            ke,
            temperature,
            pressure,
            volume,
            conserved: pot.energy + ke + integrator.conserved_extra(),
        })
    }

    fn open_writers(&self) -> Result<Writers, MdError> {
        let out = &self.cfg.input.output;
        let resume = self.cfg.restart.map(|ck| ck.outputs.as_slice());
        let thermo = if out.thermo.is_some() || out.thermo_csv.is_some() {
            Some(ThermoLog::create(
                out.thermo.as_deref(),
                out.thermo_csv.as_deref(),
                resume,
            )?)
        } else {
            None
        };
        let traj = match &out.trajectory {
            Some(p) => {
                let len = match resume {
                    Some(r) => Some(crate::output::resume_len(r, p, "trajectory")?),
                    None => None,
                };
                Some(TrajWriter::create(p, out.trajectory_format, len)?)
            }
            None => None,
        };
        Ok(Writers {
            thermo,
            traj,
            rows: (out.plot.is_some() && out.thermo_csv.is_none()).then(Vec::new),
        })
    }

    /// Writes the thermo row of `step` if `thermo`, and a trajectory frame of `frame` (every
    /// atom as [`gather_raw`] leaves it on rank 0) if given.
    #[allow(clippy::too_many_arguments)]
    fn write_step(
        &self,
        writers: &mut Option<Writers>,
        step: u64,
        row: &ThermoRow,
        cell: &Option<Cell>,
        pot: &Potential,
        thermo: bool,
        frame: Option<&Atoms>,
    ) -> Result<(), MdError> {
        if thermo {
            if let Some(w) = writers.as_mut() {
                if let Some(t) = w.thermo.as_mut() {
                    t.write(row)?;
                }
                if let Some(rows) = w.rows.as_mut() {
                    rows.push(*row);
                }
            }
        }
        if let (Some(w), Some(all)) = (writers.as_mut(), frame) {
            if let Some(t) = w.traj.as_mut() {
                t.write(&TrajFrame {
                    step,
                    time: row.time,
                    cell: cell.as_ref(),
                    type_names: &self.type_names,
                    types: &all.types,
                    positions: &unwrapped(all, cell),
                    velocities: Some(&all.v),
                    forces: Some(&all.f),
                    energy: Some(pot.energy),
                })?;
            }
        }
        Ok(())
    }

    /// Writes a checkpoint of `step` on rank 0 from every atom as [`gather_raw`] left them:
    /// wrapped, the very bits this run holds, which is what a restart must start from.
    fn checkpoint(
        &self,
        writers: &mut Option<Writers>,
        step: u64,
        time: f64,
        all: Option<Atoms>,
        cell: &Option<Cell>,
        integrator: &dyn Integrator,
    ) -> Result<(), MdError> {
        let (Some(w), Some(all)) = (writers.as_mut(), all) else {
            return Ok(());
        };
        let Some(path) = &self.cfg.input.output.checkpoint else {
            return Ok(());
        };
        let mut outputs = Vec::new();
        if let Some(t) = w.thermo.as_mut() {
            t.sync()?;
            outputs.extend(t.outputs());
        }
        if let Some(t) = w.traj.as_mut() {
            t.sync()?;
            outputs.push(t.output());
        }
        let ck = Checkpoint {
            step,
            time,
            seed: self.plan.seed,
            cell: *cell,
            type_names: self.type_names.clone(),
            types: all.types,
            mass: all.mass,
            x: all.x,
            v: all.v,
            image: all.image,
            integrator: integrator.name().to_string(),
            integrator_state: integrator.state(),
            outputs,
            nranks: self.comm.size(),
            model: self.cfg.input.model.path.display().to_string(),
        };
        checkpoint::write_atomic(path, &ck)
    }

    fn finish_writers(&self, w: &mut Writers) -> Result<(), MdError> {
        if let Some(t) = w.thermo.as_mut() {
            t.sync()?;
        }
        if let Some(t) = w.traj.as_mut() {
            t.sync()?;
        }
        if let Some(png) = &self.cfg.input.output.plot {
            let rows = match (&self.cfg.input.output.thermo_csv, w.rows.take()) {
                (Some(csv), _) => crate::output::thermo::read_csv(csv)?,
                (None, rows) => rows.unwrap_or_default(),
            };
            crate::plot::thermo_png(&rows, png)?;
        }
        Ok(())
    }

    /// [`gather_raw`] when `due` (collective: every rank passes the same `due`).
    fn gather_if(&self, due: bool, atoms: &Atoms) -> Result<Option<Atoms>, MdError> {
        if due {
            gather_raw(self.comm, atoms, self.natoms)
        } else {
            Ok(None)
        }
    }

    /// All atoms on rank 0 in gid order with unwrapped positions.
    fn gather(&self, atoms: &Atoms, cell: &Option<Cell>) -> Result<Option<Atoms>, MdError> {
        Ok(gather_raw(self.comm, atoms, self.natoms)?.map(|mut all| {
            all.x = unwrapped(&all, cell);
            all
        }))
    }
}

/// Unwrapped positions `x + image · H` (the positions themselves without a cell).
fn unwrapped(all: &Atoms, cell: &Option<Cell>) -> Vec<Vec3> {
    match cell {
        Some(c) => all
            .x
            .iter()
            .zip(&all.image)
            .map(|(x, n)| {
                let t = c.shift(*n);
                [x[0] + t[0], x[1] + t[1], x[2] + t[2]]
            })
            .collect(),
        None => all.x.clone(),
    }
}

/// Moves every atom into the cell along periodic axes, counting the lattice vectors taken
/// off in `image`. An atom already inside is left untouched (its bits do not change), so
/// wrapping twice is wrapping once.
pub fn wrap(cell: &Cell, atoms: &mut Atoms) {
    let pbc = cell.pbc();
    for (x, im) in atoms.x.iter_mut().zip(atoms.image.iter_mut()) {
        let s = cell.to_frac(*x);
        let n: [i32; 3] = std::array::from_fn(|k| if pbc[k] { s[k].floor() as i32 } else { 0 });
        if n != [0; 3] {
            let t = cell.shift(n);
            *x = [x[0] - t[0], x[1] - t[1], x[2] - t[2]];
            for k in 0..3 {
                im[k] += n[k];
            }
        }
    }
}

/// Every rank's atoms on rank 0 in gid order (positions as held).
fn gather_raw(comm: &dyn Comm, atoms: &Atoms, natoms: usize) -> Result<Option<Atoms>, MdError> {
    let mut packed = Vec::with_capacity(atoms.len() * GATHERED);
    for i in 0..atoms.len() {
        packed.push(atoms.gid[i] as f64);
        packed.push(atoms.types[i] as f64);
        packed.push(atoms.mass[i]);
        packed.extend_from_slice(&atoms.x[i]);
        packed.extend_from_slice(&atoms.v[i]);
        packed.extend_from_slice(&atoms.f[i]);
        packed.extend(atoms.image[i].iter().map(|&n| f64::from(n)));
    }
    let Some(parts) = comm.gather(0, &packed)? else {
        return Ok(None);
    };
    let mut all = Atoms {
        gid: (0..natoms).collect(),
        types: vec![0; natoms],
        mass: vec![0.0; natoms],
        x: vec![[0.0; 3]; natoms],
        v: vec![[0.0; 3]; natoms],
        f: vec![[0.0; 3]; natoms],
        image: vec![[0; 3]; natoms],
    };
    let mut seen = vec![false; natoms];
    for rec in parts.iter().flat_map(|p| p.chunks_exact(GATHERED)) {
        let g = rec[0] as usize;
        if g >= natoms || seen[g] {
            return Err(MdError::Model(format!(
                "atom {g} gathered twice or out of range"
            )));
        }
        seen[g] = true;
        all.types[g] = rec[1] as usize;
        all.mass[g] = rec[2];
        all.x[g] = [rec[3], rec[4], rec[5]];
        all.v[g] = [rec[6], rec[7], rec[8]];
        all.f[g] = [rec[9], rec[10], rec[11]];
        all.image[g] = [rec[12] as i32, rec[13] as i32, rec[14] as i32];
    }
    if let Some(g) = seen.iter().position(|s| !s) {
        return Err(MdError::Model(format!("atom {g} is on no rank")));
    }
    Ok(Some(all))
}
