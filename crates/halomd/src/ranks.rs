//! Evaluation over several ranks: each rank owns a subdomain, receives its ghost shell by
//! swaps and exchanges node embeddings layer by layer through `halo-domain`.
//!
//! Three ways to run the ranks, chosen by `--comm`:
//!
//! * `threads`: the ranks are threads of this process; the results come back as values.
//! * `shm`: the process the user started is only a launcher. It checks the inputs, then
//!   starts `--ranks` copies of its own executable with the same arguments plus
//!   `HALOMD_JOB`, `HALOMD_RANK` and `HALOMD_NRANKS`; each copy sees `HALOMD_RANK`, so it
//!   joins the job as that rank instead of launching again. Rank 0 prints the usual output,
//!   which the launcher passes on verbatim; the others print nothing on stdout. The
//!   launcher forwards every rank's stderr and fails, naming the ranks, if any rank fails.
//! * `mpi` (cargo feature `mpi`): under `mpirun`, every process is a rank; rank 0 prints.
//!
//! The caller prints whatever [`evaluate_ranks`] returns, so a process with nothing to
//! print (an shm launcher whose rank 0 already printed, a rank other than 0) ends the
//! process itself with status 0 once its communicator is closed.

use anyhow::{bail, Context, Result};
use halo_comm::{threads, Comm, CommKind, CommOptions};
use halo_core::System;
use halo_domain::{evaluate, Domain, Evaluation, ProcGrid};
use halo_model::model::{EnergyModel, EvalParams, LocalOutput};
use halo_nlist::NeighborList;
use std::sync::Mutex;

/// Evaluates `system` on `nranks` ranks and returns the result gathered in input order, or
/// `None` in a process that has nothing to print: the shm launcher (rank 0 printed already)
/// and process-per-rank ranks other than 0.
pub fn evaluate_ranks(
    model: &EnergyModel,
    system: &System,
    params: &EvalParams,
    nranks: Option<usize>,
    grid: Option<[usize; 3]>,
    comm: &str,
    null_types: &[String],
) -> Result<Option<LocalOutput>> {
    let launch = Launch::new(comm, nranks, grid, "eval")?;
    let model_types = model.map_types_null(system, null_types)?;
    let warnings = Mutex::new(Vec::new());
    let eval = launch.run(system, true, |comm, grid| {
        rank_eval(model, system, &model_types, params, comm, grid, &warnings)
    })?;
    let warnings = take(warnings);
    match eval {
        Some(eval) => to_output(eval, warnings).map(Some),
        None => {
            for w in &warnings {
                eprintln!("halomd: warning: {w}");
            }
            Ok(None)
        }
    }
}

/// How to start the ranks of one job: backend, rank count, grid and communicator options.
pub struct Launch {
    kind: CommKind,
    nranks: Option<usize>,
    grid: Option<[usize; 3]>,
    opts: CommOptions,
    label: &'static str,
}

impl Launch {
    /// Parses `--comm` and reads the communicator options from the environment.
    pub fn new(
        comm: &str,
        nranks: Option<usize>,
        grid: Option<[usize; 3]>,
        label: &'static str,
    ) -> Result<Self> {
        Ok(Launch {
            kind: parse_kind(comm)?,
            nranks,
            grid,
            opts: CommOptions::from_env()?,
            label,
        })
    }

    /// Whether this process is the shm launcher (it starts the ranks and runs none).
    pub fn is_shm_launcher(&self) -> bool {
        self.kind == CommKind::Shm && std::env::var_os(halo_comm::ENV_RANK).is_none()
    }

    /// Runs `f` once per rank and returns rank 0's value in the process that holds rank 0;
    /// `None` in other processes (ranks other than 0, the shm launcher). With `capture` the
    /// shm launcher collects the ranks' output and prints it when they end (rank 0's stdout
    /// verbatim, every stderr line prefixed with its rank); without, the ranks write to the
    /// terminal directly (live progress of long runs).
    pub fn run<T: Send>(
        &self,
        system: &System,
        capture: bool,
        f: impl Fn(&dyn Comm, ProcGrid) -> Result<T> + Sync,
    ) -> Result<Option<T>> {
        match self.kind {
            CommKind::Threads => {
                let grid = self.local_grid(system)?;
                let outs = threads::run(grid.nranks(), &self.opts, |comm| f(&comm, grid))?;
                let mut first = None;
                for out in outs {
                    let out = out?;
                    first.get_or_insert(out);
                }
                first.context("no rank returned a result").map(Some)
            }
            CommKind::Shm => self.shm(self.local_grid(system)?, capture, f),
            CommKind::Mpi => self.mpi(system, f),
        }
    }

    /// The grid when this process decides the rank count (threads, shm): `--ranks`, else the
    /// subdomains of `--grid`, else 1.
    fn local_grid(&self, system: &System) -> Result<ProcGrid> {
        let nranks = self
            .nranks
            .unwrap_or_else(|| self.grid.map_or(1, |g| g.iter().product()));
        resolve_grid(system, nranks, self.grid)
    }

    #[cfg(target_os = "linux")]
    fn shm<T>(
        &self,
        grid: ProcGrid,
        capture: bool,
        f: impl Fn(&dyn Comm, ProcGrid) -> Result<T>,
    ) -> Result<Option<T>> {
        if std::env::var_os(halo_comm::ENV_RANK).is_none() {
            shm_launch(grid.nranks(), &self.opts, self.label, capture)?;
            return Ok(None);
        }
        let comm = halo_comm::shm::ShmComm::from_env(&self.opts).context("joining the shm job")?;
        if comm.size() != grid.nranks() {
            bail!(
                "{}={} but the arguments ask for {} ranks",
                halo_comm::ENV_NRANKS,
                comm.size(),
                grid.nranks()
            );
        }
        let out = f(&comm, grid);
        finish_rank(comm, out)
    }

    #[cfg(not(target_os = "linux"))]
    fn shm<T>(
        &self,
        _grid: ProcGrid,
        _capture: bool,
        _f: impl Fn(&dyn Comm, ProcGrid) -> Result<T>,
    ) -> Result<Option<T>> {
        bail!("--comm shm needs Linux")
    }

    /// `--comm mpi`: this process is one rank of the MPI world.
    #[cfg(feature = "mpi")]
    fn mpi<T>(
        &self,
        system: &System,
        f: impl Fn(&dyn Comm, ProcGrid) -> Result<T>,
    ) -> Result<Option<T>> {
        let comm = halo_comm::mpi::MpiComm::init(&self.opts).context("starting MPI")?;
        let size = comm.size();
        // Without --ranks/--grid, mpirun's process count decides.
        let nranks = self
            .nranks
            .unwrap_or_else(|| self.grid.map_or(size, |g| g.iter().product()));
        if nranks != size {
            bail!(
                "{nranks} ranks were asked for (--ranks/--grid) but the MPI world has {size} \
                 processes (mpirun -n); leave --ranks out to use the world size"
            );
        }
        let grid = resolve_grid(system, nranks, self.grid)?;
        let out = f(&comm, grid);
        finish_rank(comm, out)
    }

    #[cfg(not(feature = "mpi"))]
    fn mpi<T>(
        &self,
        _system: &System,
        _f: impl Fn(&dyn Comm, ProcGrid) -> Result<T>,
    ) -> Result<Option<T>> {
        // `parse_kind` already refused `mpi`; this keeps the match exhaustive.
        bail!("--comm mpi: this halomd was built without `--features mpi`")
    }
}

/// Parses `--comm`, turning "not built in" into advice on how to build it in.
fn parse_kind(comm: &str) -> Result<CommKind> {
    match comm.parse::<CommKind>() {
        Ok(kind) => Ok(kind),
        Err(_) if comm.trim().eq_ignore_ascii_case("mpi") => bail!(
            "--comm mpi: this halomd was built without MPI support; rebuild it with \
             `cargo build --release -p halomd --features mpi` (needs an MPI library, e.g. \
             OpenMPI, and libclang) and start it with `mpirun -n N halomd ... --comm mpi`"
        ),
        Err(e) => Err(e).context("--comm"),
    }
}

/// The processor grid for `nranks` ranks: `--grid` if given (it must have `nranks` cells),
/// else the surface-minimising one.
fn resolve_grid(system: &System, nranks: usize, grid: Option<[usize; 3]>) -> Result<ProcGrid> {
    Ok(match grid {
        Some(g) => {
            let g = ProcGrid::new(g)?;
            if g.nranks() != nranks {
                bail!(
                    "--grid {:?} has {} ranks but --ranks is {nranks}",
                    g.dims(),
                    g.nranks()
                );
            }
            g
        }
        None => ProcGrid::auto(system, nranks)?,
    })
}

/// One rank's part of `halomd eval`: decompose, build the ghost shell, evaluate, fold,
/// reduce, gather.
fn rank_eval(
    model: &EnergyModel,
    system: &System,
    model_types: &[i32],
    params: &EvalParams,
    comm: &dyn Comm,
    grid: ProcGrid,
    warnings: &Mutex<Vec<String>>,
) -> Result<Evaluation> {
    let rcut = model.rcut();
    let domain = Domain::build(comm, system, grid, rcut)?;
    let eval = evaluate(comm, &domain, |inp, ex| {
        let list = NeighborList::build(inp.coords, inp.nloc, rcut)?;
        let (out, (_, warning)) =
            halo_md::force::rank_output(model, model_types, params, list, inp, ex)?;
        if let Some(w) = warning {
            if let Ok(mut all) = warnings.lock() {
                all.push(format!("rank {}: {w}", inp.rank));
            }
        }
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(out)
    })?;
    Ok(eval)
}

/// The collected warnings, whatever a panicking rank left in the mutex.
fn take(warnings: Mutex<Vec<String>>) -> Vec<String> {
    warnings.into_inner().unwrap_or_else(|e| e.into_inner())
}

/// Rank 0's gathered evaluation as the caller's output.
fn to_output(eval: Evaluation, warnings: Vec<String>) -> Result<LocalOutput> {
    let atoms = eval.atoms.context("rank 0 gathered no per-atom results")?;
    Ok(LocalOutput {
        energy: eval.energy,
        atom_energy: atoms.atom_energy,
        force: atoms.force,
        virial: eval.virial,
        atom_virial: atoms.atom_virial,
        warning: (!warnings.is_empty()).then(|| warnings.join("; ")),
    })
}

/// Ends one process-per-rank job: closes the communicator (so peers see this rank finish
/// or fail right away, and MPI is finalised before the process exits), then returns rank
/// 0's value; other ranks return `None`.
#[cfg(any(target_os = "linux", feature = "mpi"))]
fn finish_rank<C: Comm, T>(comm: C, out: Result<T>) -> Result<Option<T>> {
    let rank = comm.rank();
    drop(comm);
    let out = out?;
    Ok((rank == 0).then_some(out))
}

/// How long the shm launcher waits beyond the communicator timeout before it kills ranks.
#[cfg(target_os = "linux")]
const SHM_LAUNCH_MARGIN: std::time::Duration = std::time::Duration::from_secs(30);

/// The shm launcher: runs `nranks` copies of this executable with the same arguments as
/// the ranks of one job and fails, naming the ranks, if any rank fails. With `capture` it
/// passes rank 0's output on and forwards every rank's stderr once they end, and gives up
/// on ranks still running after the communicator timeout plus a margin (an evaluation);
/// without, the ranks own the terminal and may run as long as they like (an MD run: their
/// own communicators time out if a peer hangs). SIGINT and SIGTERM reaching the launcher
/// are passed on to the ranks, which checkpoint and stop; the launcher waits for them.
#[cfg(target_os = "linux")]
fn shm_launch(nranks: usize, opts: &CommOptions, label: &str, capture: bool) -> Result<()> {
    use std::io::Write;

    let exe = std::env::current_exe().context("finding this executable to start the ranks")?;
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let job = halo_comm::shm::Job::spawn_with(
        &halo_comm::shm::unique_job_name(label),
        nranks,
        capture,
        |_rank| {
            let mut cmd = std::process::Command::new(&exe);
            cmd.args(&args);
            cmd
        },
    )
    .with_context(|| format!("starting {nranks} shm ranks"))?;
    let forward = if capture {
        None
    } else {
        crate::signals::forward_to(&job)
    };
    let limit = if capture {
        opts.timeout + SHM_LAUNCH_MARGIN
    } else {
        std::time::Duration::MAX
    };
    let report = job.wait(limit);
    drop(forward);
    {
        let mut err = std::io::stderr().lock();
        for r in &report.ranks {
            for line in r.stderr.lines() {
                let _ = writeln!(err, "[rank {}] {line}", r.rank);
            }
        }
    }
    if !report.success() {
        let failed: Vec<String> = report
            .ranks
            .iter()
            .filter(|r| !r.status.success())
            .map(|r| {
                if r.killed {
                    format!(
                        "rank {} was still running after {:.0?} and was killed (the limit is \
                         HALOMD_COMM_TIMEOUT + {:.0?})",
                        r.rank, limit, SHM_LAUNCH_MARGIN
                    )
                } else {
                    format!("rank {} failed ({})", r.rank, r.status)
                }
            })
            .collect();
        bail!(
            "shm job {} with {nranks} ranks failed: {}",
            report.job,
            failed.join("; ")
        );
    }
    let out = &report.ranks[0].stdout;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
        .context("writing rank 0's output")?;
    Ok(())
}
