//! Strong scaling of a model evaluation over thread ranks, and the cost of its exchanges.
//!
//! ```text
//! cargo run --release -p halo-domain --example scaling -- MODEL.dp [NATOMS] [REPS]
//! ```
//!
//! Builds a water box at 1 g/cm³ of about `NATOMS` atoms (default 4000): molecules on a cubic
//! lattice with random orientations (a fixed-seed LCG, so every run sees the same box). The
//! model's type map must name `O` and `H`. It then evaluates the box with the threads backend
//! in three configurations, each rank inside its own rayon pool so ranks never share workers:
//!
//! * 1 rank × 1 rayon thread (the baseline `t1`),
//! * 1 rank × 2 rayon threads,
//! * 2 ranks × 1 rayon thread (`t2`),
//!
//! and prints the median time per evaluation (`REPS` timed evaluations after one warm-up),
//! the parallel efficiency `t1 / (2 · t2)`, and from [`DomainExchange::stats`] the time inside
//! forward/reverse exchanges (waiting on the partner included), their number and the bytes
//! sent per ghost atom and per local atom per layer.

use std::error::Error;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use halo_comm::{threads, Comm, CommOptions};
use halo_core::{Cell, System, Vec3};
use halo_domain::{evaluate_with, Domain, DomainExchange, ExchangeStats, ProcGrid, RankOutput};
use halo_model::{EnergyModel, EvalParams};
use halo_nlist::NeighborList;

type BoxError = Box<dyn Error + Send + Sync>;

/// Volume of one water molecule at 1 g/cm³ (Å³): 18.015 g/mol / (1 g/cm³ · N_A).
const MOLECULE_VOLUME: f64 = 29.915;
/// O–H bond length (Å) and H–O–H angle (degrees) of rigid water.
const OH: f64 = 0.9572;
const HOH_DEG: f64 = 104.52;

/// A periodic water box of `m³` molecules on a cubic lattice with random orientations.
fn water_box(natoms: usize) -> Result<System, BoxError> {
    let m = ((natoms as f64 / 3.0).cbrt().round() as usize).max(1);
    let a = MOLECULE_VOLUME.cbrt();
    let l = a * m as f64;
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let half = HOH_DEG.to_radians() / 2.0;
    let mut positions = Vec::with_capacity(3 * m * m * m);
    let mut symbols = Vec::with_capacity(3 * m * m * m);
    for i in 0..m * m * m {
        let o: Vec3 = [
            (i % m) as f64 * a + 0.5 * a,
            (i / m % m) as f64 * a + 0.5 * a,
            (i / (m * m)) as f64 * a + 0.5 * a,
        ];
        // A random orthonormal frame (u, v): the molecule lies in its plane.
        let u = unit([next() - 0.5, next() - 0.5, next() - 0.5]);
        let r = [next() - 0.5, next() - 0.5, next() - 0.5];
        let d = u[0] * r[0] + u[1] * r[1] + u[2] * r[2];
        let v = unit([r[0] - d * u[0], r[1] - d * u[1], r[2] - d * u[2]]);
        positions.push(o);
        symbols.push("O");
        for sign in [1.0, -1.0] {
            let (c, s) = (OH * half.cos(), sign * OH * half.sin());
            positions.push(std::array::from_fn(|k| o[k] + c * u[k] + s * v[k]));
            symbols.push("H");
        }
    }
    Ok(System::from_symbols(
        &symbols,
        positions,
        Some(Cell::orthorhombic(l, l, l)?),
    )?)
}

/// CPU time consumed by the calling thread: unlike wall time, it does not count the time
/// other processes on a shared machine hold the cores.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec and the clock id is a constant Linux knows.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn unit(x: Vec3) -> Vec3 {
    let n = (x[0] * x[0] + x[1] * x[1] + x[2] * x[2]).sqrt().max(1e-12);
    [x[0] / n, x[1] / n, x[2] / n]
}

/// What one rank measured over the timed repetitions.
#[derive(Debug, Clone)]
struct RankReport {
    nloc: usize,
    nall: usize,
    build: Duration,
    evals: Vec<Duration>,
    /// CPU time of the rank's thread per timed evaluation (its whole work with one rayon
    /// thread; only the calling worker's share with more).
    cpu: Vec<Duration>,
    /// Exchange counters of the last repetition.
    stats: ExchangeStats,
    /// The part of `stats` issued inside the model (the rest is the driver's force fold).
    model_stats: ExchangeStats,
    /// The neighbour list's overflow warning, if `sel` was too small for the box.
    overflow: Option<String>,
    energy: f64,
}

/// Evaluates `system` `warmup + reps` times on `nranks` thread ranks with `nthreads` rayon
/// workers each; the first `warmup` evaluations are not timed.
fn run(
    model: &EnergyModel,
    system: &System,
    nranks: usize,
    nthreads: usize,
    warmup: usize,
    reps: usize,
) -> Result<Vec<RankReport>, BoxError> {
    let grid = ProcGrid::auto(system, nranks)?;
    let model_types = model.map_types(system)?;
    let rcut = model.rcut();
    let slots = model.comm_slots();
    let params = EvalParams::default();
    let (model_types, slots, params) = (&model_types, &slots, &params);
    let outs = threads::run(nranks, &CommOptions::default(), |comm| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(nthreads)
            .build()
            .map_err(|e| -> BoxError { e.into() })?;
        // The communicator moves onto the pool's worker: it is not shared between threads.
        pool.install(move || -> Result<RankReport, BoxError> {
            let t0 = Instant::now();
            let domain = Domain::build(&comm, system, grid, rcut)?;
            let build = t0.elapsed();
            let mut ex = DomainExchange::with_slots(&domain, &comm, slots);
            let mut evals = Vec::with_capacity(reps);
            let mut cpu = Vec::with_capacity(reps);
            let mut stats = ExchangeStats::default();
            let mut energy = 0.0;
            let mut model_stats = ExchangeStats::default();
            let mut overflow = None;
            for rep in 0..warmup + reps {
                comm.barrier()?;
                ex.reset_stats();
                let t = Instant::now();
                let c = thread_cpu();
                let out = evaluate_with(&mut ex, &domain, |inp, ex| {
                    let types: Vec<i32> = inp.gids.iter().map(|&g| model_types[g] as i32).collect();
                    let list = NeighborList::build(inp.coords, inp.nloc, rcut)?;
                    let r =
                        model.evaluate_neighbors(inp.coords, &types, inp.nloc, list, ex, params)?;
                    overflow = r.warning;
                    let out = r.output;
                    model_stats = ex.stats();
                    Ok::<_, BoxError>(RankOutput {
                        energy: out.energy,
                        atom_energy: out.atom_energy,
                        force: out.force,
                        virial: out.virial,
                        atom_virial: out.atom_virial,
                    })
                })?;
                let dt = t.elapsed();
                let dc = thread_cpu().saturating_sub(c);
                if rep >= warmup {
                    evals.push(dt);
                    cpu.push(dc);
                }
                stats = ex.stats();
                energy = out.energy;
            }
            Ok(RankReport {
                nloc: domain.nloc(),
                nall: domain.nall(),
                build,
                evals,
                cpu,
                stats,
                model_stats,
                overflow,
                energy,
            })
        })
    })?;
    outs.into_iter().collect()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The median over repetitions of the slowest rank's time (wall or CPU).
fn slowest(ranks: &[RankReport], f: fn(&RankReport) -> &[Duration]) -> Duration {
    let reps = f(&ranks[0]).len();
    median(
        (0..reps)
            .map(|r| ranks.iter().map(|k| f(k)[r]).max().unwrap_or_default())
            .collect(),
    )
}

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first().map(PathBuf::from) else {
        return Err("usage: scaling MODEL.dp [NATOMS=4000] [REPS=3] [WARMUP=1]".into());
    };
    let natoms: usize = args.get(1).map_or(Ok(4000), |s| s.parse())?;
    let reps: usize = args.get(2).map_or(Ok(3), |s| s.parse())?;
    let warmup: usize = args.get(3).map_or(Ok(1), |s| s.parse())?;
    if reps == 0 {
        return Err("REPS must be at least 1".into());
    }
    let model = EnergyModel::load(&path)?;
    let system = water_box(natoms)?;
    let l = system.cell.as_ref().map_or(0.0, |c| c.lengths()[0]);
    println!(
        "model {} (rcut {} Å, {} exchange slots: {:?})",
        path.display(),
        model.rcut(),
        model.comm_slots().len(),
        model
            .comm_slots()
            .iter()
            .map(|s| format!("{}×{:?}", s.width, s.dtype))
            .collect::<Vec<_>>()
    );
    println!(
        "water box: {} atoms, cube {l:.3} Å, {reps} timed evaluations after {warmup} warm-up",
        system.len()
    );
    println!(
        "wall times are the slowest rank's; CPU times that of the slowest rank's thread (one \
         rayon thread per rank), which a shared machine's load does not inflate"
    );
    let mut t1 = Duration::ZERO;
    let mut c1 = Duration::ZERO;
    let mut e1 = 0.0;
    for (nranks, nthreads) in [(1, 1), (1, 2), (2, 1)] {
        let ranks = run(&model, &system, nranks, nthreads, warmup, reps)?;
        let t = slowest(&ranks, |k| &k.evals);
        let c = slowest(&ranks, |k| &k.cpu);
        println!(
            "\n== {nranks} rank(s) × {nthreads} rayon thread(s): {:.1} ms per evaluation",
            ms(t)
        );
        if (nranks, nthreads) == (1, 1) {
            (t1, c1, e1) = (t, c, ranks[0].energy);
            println!("   CPU {:.1} ms per evaluation", ms(c));
        } else {
            if nthreads == 1 {
                println!(
                    "   CPU {:.1} ms per evaluation; CPU-time efficiency c1/({nranks}·c) = {:.3}",
                    ms(c),
                    c1.as_secs_f64() / (nranks as f64 * c.as_secs_f64())
                );
            }
            println!(
                "   speed-up {:.3}, efficiency t1/({}·t) = {:.3}, |ΔE| vs 1 rank = {:.2e} eV",
                t1.as_secs_f64() / t.as_secs_f64(),
                nranks * nthreads,
                t1.as_secs_f64() / ((nranks * nthreads) as f64 * t.as_secs_f64()),
                (ranks[0].energy - e1).abs()
            );
        }
        for (r, k) in ranks.iter().enumerate() {
            if let Some(w) = &k.overflow {
                println!("   WARNING rank {r}: sel overflow, results depend on the split: {w}");
            }
            let s = &k.stats;
            let m = &k.model_stats;
            let ghosts = k.nall - k.nloc;
            println!(
                "   rank {r}: nloc {} ghosts {ghosts}, domain build {:.1} ms, eval median {:.1} ms",
                k.nloc,
                ms(k.build),
                ms(median(k.evals.clone()))
            );
            println!(
                "     exchanges per evaluation: {} forward ({:.2} ms), {} reverse ({:.2} ms) = \
                 {:.1}% of the evaluation",
                s.forward_calls,
                ms(s.forward_time),
                s.reverse_calls,
                ms(s.reverse_time),
                100.0 * (s.forward_time + s.reverse_time).as_secs_f64()
                    / k.evals.last().map_or(f64::NAN, |d| d.as_secs_f64())
            );
            println!(
                "       of which inside the model: {} forward ({:.2} ms), {} reverse ({:.2} ms)",
                m.forward_calls,
                ms(m.forward_time),
                m.reverse_calls,
                ms(m.reverse_time)
            );
            println!(
                "     bytes sent to other ranks per evaluation: forward {} B, reverse {} B",
                s.forward_bytes, s.reverse_bytes
            );
            if m.forward_bytes > 0 {
                let per_layer = m.forward_bytes as f64 / m.forward_calls.max(1) as f64;
                println!(
                    "     forward, per exchange: {:.0} B = {:.1} B per ghost atom, {:.1} B per \
                     local atom (ghost rows filled per exchange: {})",
                    per_layer,
                    per_layer / ghosts.max(1) as f64,
                    per_layer / k.nloc.max(1) as f64,
                    m.forward_rows / m.forward_calls.max(1)
                );
            }
        }
    }
    Ok(())
}
