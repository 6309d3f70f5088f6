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
use halo_domain::{evaluate, Domain, Evaluation, ProcGrid, RankOutput};
use halo_model::descriptor::DescriptorInput;
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
    let kind = parse_kind(comm)?;
    let opts = CommOptions::from_env()?;
    let model_types = model.map_types_null(system, null_types)?;
    let job = Job {
        model,
        system,
        model_types: &model_types,
        params,
    };
    match kind {
        CommKind::Threads => job.threads(
            resolve_grid(system, default_ranks(nranks, grid), grid)?,
            &opts,
        ),
        CommKind::Shm => job.shm(
            resolve_grid(system, default_ranks(nranks, grid), grid)?,
            &opts,
        ),
        CommKind::Mpi => job.mpi(nranks, grid, &opts),
    }
}

/// Ranks when `--ranks` is not given: the subdomains of `--grid`, else 1.
fn default_ranks(nranks: Option<usize>, grid: Option<[usize; 3]>) -> usize {
    nranks.unwrap_or_else(|| grid.map_or(1, |g| g.iter().product()))
}

/// Parses `--comm`, turning "not built in" into advice on how to build it in.
fn parse_kind(comm: &str) -> Result<CommKind> {
    match comm.parse::<CommKind>() {
        Ok(kind) => Ok(kind),
        Err(_) if comm.trim().eq_ignore_ascii_case("mpi") => bail!(
            "--comm mpi: this halomd was built without MPI support; rebuild it with \
             `cargo build --release -p halomd --features mpi` (needs an MPI library, e.g. \
             OpenMPI, and libclang) and start it with `mpirun -n N halomd eval --comm mpi ...`"
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

/// The inputs every rank shares.
struct Job<'a> {
    model: &'a EnergyModel,
    system: &'a System,
    model_types: &'a [i32],
    params: &'a EvalParams,
}

impl Job<'_> {
    /// All ranks as threads of this process.
    fn threads(&self, grid: ProcGrid, opts: &CommOptions) -> Result<Option<LocalOutput>> {
        let warnings = Mutex::new(Vec::new());
        let outs = threads::run(grid.nranks(), opts, |comm| {
            self.rank_eval(&comm, grid, &warnings)
        })?;
        let mut first = None;
        for out in outs {
            let out = out?;
            first.get_or_insert(out);
        }
        let eval = first.context("no rank returned a result")?;
        to_output(eval, take(warnings)).map(Some)
    }

    /// `--comm shm`: launch the ranks, or, in a launched process, be one.
    #[cfg(target_os = "linux")]
    fn shm(&self, grid: ProcGrid, opts: &CommOptions) -> Result<Option<LocalOutput>> {
        if std::env::var_os(halo_comm::ENV_RANK).is_none() {
            return shm_launch(grid.nranks(), opts);
        }
        let comm = halo_comm::shm::ShmComm::from_env(opts).context("joining the shm job")?;
        if comm.size() != grid.nranks() {
            bail!(
                "{}={} but the arguments ask for {} ranks",
                halo_comm::ENV_NRANKS,
                comm.size(),
                grid.nranks()
            );
        }
        let warnings = Mutex::new(Vec::new());
        let eval = self.rank_eval(&comm, grid, &warnings);
        finish_rank(comm, eval, warnings)
    }

    #[cfg(not(target_os = "linux"))]
    fn shm(&self, _grid: ProcGrid, _opts: &CommOptions) -> Result<Option<LocalOutput>> {
        bail!("--comm shm needs Linux")
    }

    /// `--comm mpi`: this process is one rank of the MPI world.
    #[cfg(feature = "mpi")]
    fn mpi(
        &self,
        nranks: Option<usize>,
        grid: Option<[usize; 3]>,
        opts: &CommOptions,
    ) -> Result<Option<LocalOutput>> {
        let comm = halo_comm::mpi::MpiComm::init(opts).context("starting MPI")?;
        let size = comm.size();
        // Without --ranks/--grid, mpirun's process count decides.
        let nranks = nranks.unwrap_or_else(|| grid.map_or(size, |g| g.iter().product()));
        if nranks != size {
            bail!(
                "{nranks} ranks were asked for (--ranks/--grid) but the MPI world has {size} \
                 processes (mpirun -n); leave --ranks out to use the world size"
            );
        }
        let grid = resolve_grid(self.system, nranks, grid)?;
        let warnings = Mutex::new(Vec::new());
        let eval = self.rank_eval(&comm, grid, &warnings);
        finish_rank(comm, eval, warnings)
    }

    #[cfg(not(feature = "mpi"))]
    fn mpi(
        &self,
        _nranks: Option<usize>,
        _grid: Option<[usize; 3]>,
        _opts: &CommOptions,
    ) -> Result<Option<LocalOutput>> {
        // `parse_kind` already refused `mpi`; this keeps the match exhaustive.
        bail!("--comm mpi: this halomd was built without `--features mpi`")
    }

    /// One rank's part: decompose, build the ghost shell, evaluate, fold, reduce, gather.
    fn rank_eval(
        &self,
        comm: &dyn Comm,
        grid: ProcGrid,
        warnings: &Mutex<Vec<String>>,
    ) -> Result<Evaluation> {
        let model = self.model;
        let rcut = model.rcut();
        let sel = model.nnei_layout();
        let domain = Domain::build(comm, self.system, grid, rcut)?;
        let eval = evaluate(comm, &domain, |inp, ex| {
            let types_i32: Vec<i32> = inp.gids.iter().map(|&g| self.model_types[g]).collect();
            let list = NeighborList::build(inp.coords, inp.nloc, rcut)?;
            // NULL-type atoms leave the list entirely, as DeePMD-kit drops them before its
            // search, so they never take a sel slot; their type index is then never read.
            let list = if types_i32.iter().any(|&t| t < 0) {
                let keep: Vec<bool> = types_i32.iter().map(|&t| t >= 0).collect();
                list.retain(&keep)?
            } else {
                list
            };
            let types: Vec<usize> = types_i32.iter().map(|&t| t.max(0) as usize).collect();
            let dense = list.to_dense(&types, &sel)?;
            if let Some(w) = dense.warning() {
                if let Ok(mut all) = warnings.lock() {
                    all.push(format!("rank {}: {w}", inp.rank));
                }
            }
            let input = DescriptorInput {
                coords: inp.coords,
                types: &types_i32,
                nloc: inp.nloc,
                nlist: &dense.nlist,
                nnei: dense.width,
            };
            let out = model.evaluate(&input, ex, self.params)?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(RankOutput {
                energy: out.energy,
                atom_energy: out.atom_energy,
                force: out.force,
                virial: out.virial,
                atom_virial: out.atom_virial,
            })
        })?;
        Ok(eval)
    }
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

/// Ends one process-per-rank evaluation: closes the communicator, then returns rank 0's
/// result to be printed; another rank reports its warnings on stderr and returns `None`.
#[cfg(any(target_os = "linux", feature = "mpi"))]
fn finish_rank<C: Comm>(
    comm: C,
    eval: Result<Evaluation>,
    warnings: Mutex<Vec<String>>,
) -> Result<Option<LocalOutput>> {
    let rank = comm.rank();
    // Closed before anything else, so peers see this rank finish (or fail) right away,
    // and MPI is finalised before the process exits.
    drop(comm);
    let eval = eval?;
    let warnings = take(warnings);
    if rank != 0 {
        for w in &warnings {
            eprintln!("halomd: warning: {w}");
        }
        return Ok(None);
    }
    to_output(eval, warnings).map(Some)
}

/// How long the shm launcher waits beyond the communicator timeout before it kills ranks.
#[cfg(target_os = "linux")]
const SHM_LAUNCH_MARGIN: std::time::Duration = std::time::Duration::from_secs(30);

/// The shm launcher: runs `nranks` copies of this executable with the same arguments as
/// the ranks of one job, passes rank 0's output on and forwards every rank's stderr.
/// Returns an error naming the failed ranks, and otherwise `None` (rank 0 has printed the
/// result, so there is nothing left for the caller to print).
#[cfg(target_os = "linux")]
fn shm_launch(nranks: usize, opts: &CommOptions) -> Result<Option<LocalOutput>> {
    use std::io::Write;

    let exe = std::env::current_exe().context("finding this executable to start the ranks")?;
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let job = halo_comm::shm::Job::spawn_named(
        &halo_comm::shm::unique_job_name("eval"),
        nranks,
        |_rank| {
            let mut cmd = std::process::Command::new(&exe);
            cmd.args(&args);
            cmd
        },
    )
    .with_context(|| format!("starting {nranks} shm ranks"))?;
    let limit = opts.timeout + SHM_LAUNCH_MARGIN;
    let report = job.wait(limit);
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
    Ok(None)
}
