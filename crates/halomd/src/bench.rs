//! `halomd bench`: time repeated evaluations of a model on a structure, and report the peak
//! memory of the process — the halomd side of `bench/deepmd_vs_halomd.py`.

use crate::neighbors::read_frame;
use anyhow::{Context, Result};
use halo_model::model::{EnergyModel, EvalParams};
use std::path::PathBuf;
use std::time::Instant;

/// Flags of `halomd bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// DeePMD-kit model file (`.dp` or `.yaml`).
    #[arg(long, short = 'm')]
    model: PathBuf,
    /// Timed evaluations.
    #[arg(long, default_value_t = 5)]
    repeat: usize,
    /// Untimed evaluations first.
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Worker threads (default: RAYON_NUM_THREADS, else all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Also compute per-atom virials.
    #[arg(long)]
    atom_virial: bool,
    /// MiB of intermediates an evaluation may keep instead of recomputing them in the
    /// backward (default: the model's, 1024 for DPA3); 0 recomputes everything.
    #[arg(long)]
    store_mb: Option<usize>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = crate::ReportFormat::Text)]
    format: crate::ReportFormat,
    /// Structure file (extxyz, LAMMPS data, POSCAR/CONTCAR).
    structure: PathBuf,
}

/// Runs `halomd bench`.
pub fn run(args: &BenchArgs) -> Result<()> {
    let mut model = EnergyModel::load(&args.model)?;
    if let Some(mb) = args.store_mb {
        model.set_store_budget(mb << 20);
    }
    let frame = read_frame(&args.structure, None, 0)?;
    let mut pool = rayon::ThreadPoolBuilder::new();
    if let Some(n) = args.threads {
        pool = pool.num_threads(n);
    }
    let pool = pool.build().context("starting the worker threads")?;
    let params = EvalParams {
        atomic_virial: args.atom_virial,
        ..EvalParams::default()
    };
    let eval = || model.evaluate_system(&frame.system, &params);
    let (times, energy) = pool.install(|| -> Result<(Vec<f64>, f64)> {
        let mut energy = 0.0;
        for _ in 0..args.warmup {
            energy = eval()?.energy;
        }
        let mut times = Vec::with_capacity(args.repeat);
        for _ in 0..args.repeat.max(1) {
            let t = Instant::now();
            energy = eval()?.energy;
            times.push(t.elapsed().as_secs_f64());
        }
        Ok((times, energy))
    })?;
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    let natoms = frame.system.len();
    let peak_rss_mb = peak_rss_kib().map(|k| k as f64 / 1024.0);
    let report = serde_json::json!({
        "model": args.model,
        "structure": args.structure,
        "natoms": natoms,
        "threads": pool.current_num_threads(),
        "repeat": times.len(),
        "time_per_eval_s": median,
        "min_s": sorted[0],
        "max_s": sorted[sorted.len() - 1],
        "us_per_atom": median * 1e6 / natoms.max(1) as f64,
        "peak_rss_mb": peak_rss_mb,
        "energy": energy,
    });
    match args.format {
        crate::ReportFormat::Json => println!("{report}"),
        crate::ReportFormat::Text => {
            println!(
                "{natoms} atoms, {} threads: {median:.4} s per evaluation (min {:.4}, max {:.4}, {} runs), {:.1} µs/atom",
                pool.current_num_threads(),
                sorted[0],
                sorted[sorted.len() - 1],
                times.len(),
                median * 1e6 / natoms.max(1) as f64
            );
            if let Some(m) = peak_rss_mb {
                println!(
                    "peak memory {m:.1} MB ({:.3} MB/atom)",
                    m / natoms.max(1) as f64
                );
            }
            println!("energy {energy} eV");
        }
    }
    Ok(())
}

/// Peak resident set size of this process (`VmHWM`, Linux), in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
