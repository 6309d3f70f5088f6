//! `halomd eval` and `halomd inspect`: one evaluation of a DeePMD-kit model, or its summary.

use crate::neighbors::read_frame;
use anyhow::{bail, Context, Result};
use halo_io::{Column, Format, Value};
use halo_model::model::{EnergyModel, EvalParams, LocalOutput};
use std::path::PathBuf;

/// Output format of `halomd eval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EvalFormat {
    /// One JSON object: energy, atom_energy, forces, virial, atom_virial, natoms.
    Json,
    /// The structure as extxyz with `energy`, `virial` and per-atom `forces`, `energies`,
    /// `virials` (ASE names).
    Extxyz,
}

/// Flags of `halomd eval`.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// DeePMD-kit model file (`.dp` HDF5 or `.yaml`).
    #[arg(long, short = 'm')]
    model: PathBuf,
    /// Head (case) index of a multi-task model with `dim_case_embd > 0`.
    #[arg(long)]
    head: Option<usize>,
    /// Frame parameters, comma-separated (default: the frame's `fparam` info, else the model's
    /// `default_fparam`).
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    fparam: Option<Vec<f64>>,
    /// Atomic parameters, comma-separated: `numb_aparam` values for every atom, or
    /// `natoms × numb_aparam` (default: the frame's `aparam` column).
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    aparam: Option<Vec<f64>>,
    /// Number of ranks (subdomains); 1 runs the same swap code with self-swaps only.
    /// Defaults to the subdomains of --grid, else 1 (under mpirun: the world size).
    #[arg(long)]
    ranks: Option<usize>,
    /// Processor grid `AxBxC` (default: chosen from the cell to minimise surface).
    #[arg(long, value_parser = parse_grid)]
    grid: Option<[usize; 3]>,
    /// Communication backend between ranks: `threads` (ranks are threads of this process),
    /// `shm` (ranks are processes sharing POSIX shared memory; launched for you) or `mpi`
    /// (run under `mpirun -n N`; needs a build with `--features mpi`).
    #[arg(long, default_value = "threads")]
    comm: String,
    /// Type names left out of the model, like LAMMPS `NULL` in `pair_coeff` (comma-separated):
    /// such atoms get no energy and zero force, and are nobody's neighbour.
    #[arg(long, value_delimiter = ',')]
    null_types: Vec<String>,
    /// Skip the per-atom virial (saves backward passes for DPA3).
    #[arg(long)]
    no_atom_virial: bool,
    /// File format of the structure; guessed from the file name if omitted.
    #[arg(long = "input-format", value_name = "FORMAT")]
    input_format: Option<String>,
    /// Frame of a multi-frame extxyz file (0-based; negative counts from the end).
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    frame: i64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = EvalFormat::Json)]
    format: EvalFormat,
    /// Structure file (extxyz, LAMMPS data, POSCAR/CONTCAR).
    structure: PathBuf,
}

/// Flags of `halomd inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// DeePMD-kit model file (`.dp` HDF5 or `.yaml`).
    model: PathBuf,
}

/// Runs `halomd inspect`.
pub fn inspect(args: &InspectArgs) -> Result<()> {
    let model = EnergyModel::load(&args.model)?;
    println!("{}", model.summary());
    let slots = model.comm_slots();
    if !slots.is_empty() {
        println!("comm manifest (per ghost atom):");
        for s in &slots {
            let dir = match (s.forward, s.reverse) {
                (true, true) => "forward+reverse",
                (true, false) => "forward",
                (false, true) => "reverse",
                (false, false) => "none",
            };
            println!(
                "  {:<28}{} × {:<5}{:>7} B  {dir}",
                s.name,
                s.dtype,
                s.width,
                s.width * s.dtype.size()
            );
        }
    }
    Ok(())
}

/// Runs `halomd eval`.
pub fn eval(args: &EvalArgs) -> Result<()> {
    let model = EnergyModel::load(&args.model)?;
    let mut frame = read_frame(&args.structure, args.input_format.as_deref(), args.frame)?;
    let natoms = frame.system.len();
    let params = EvalParams {
        fparam: args.fparam.clone().or_else(|| match frame.info("fparam") {
            Some(Value::Floats(v)) => Some(v.clone()),
            Some(v) => v.as_f64().map(|x| vec![x]),
            None => None,
        }),
        aparam: aparam(args, &frame, natoms, model.numb_aparam())?,
        head: args.head,
        atomic_virial: !args.no_atom_virial,
    };
    // One rank is the same swap-based code with self-swaps only, not a separate path.
    let Some(out) = crate::ranks::evaluate_ranks(
        &model,
        &frame.system,
        &params,
        args.ranks,
        args.grid,
        &args.comm,
        &args.null_types,
    )
    .with_context(|| {
        format!(
            "evaluating {} on {}",
            args.model.display(),
            args.structure.display()
        )
    })?
    else {
        // Another process (rank 0 of an shm job, or of mpirun) printed the result.
        return Ok(());
    };
    if let Some(w) = &out.warning {
        eprintln!("halomd: warning: {w}");
    }
    match args.format {
        EvalFormat::Json => println!("{}", to_json(&out, natoms)),
        EvalFormat::Extxyz => {
            frame.set_info("energy", Value::Float(out.energy));
            frame.set_info("virial", Value::Floats(out.virial.to_vec()));
            frame.set_array("forces", Column::vec3(&out.force));
            frame.set_array("energies", Column::real(1, out.atom_energy.clone()));
            if !out.atom_virial.is_empty() {
                let flat = out.atom_virial.iter().flatten().copied().collect();
                frame.set_array("virials", Column::real(9, flat));
            }
            print!("{}", halo_io::write_string(&[frame], Format::ExtXyz)?);
        }
    }
    Ok(())
}

/// Parses `AxBxC` into three positive counts.
pub(crate) fn parse_grid(s: &str) -> Result<[usize; 3], String> {
    let parts: Vec<&str> = s.split(['x', 'X']).collect();
    let dims: Vec<usize> = parts
        .iter()
        .filter_map(|p| p.trim().parse::<usize>().ok().filter(|&n| n > 0))
        .collect();
    match dims.as_slice() {
        [a, b, c] if parts.len() == 3 => Ok([*a, *b, *c]),
        _ => Err(format!(
            "`{s}` is not a grid like 2x2x1 (three positive counts)"
        )),
    }
}

fn aparam(
    args: &EvalArgs,
    frame: &halo_io::Frame,
    natoms: usize,
    numb_aparam: usize,
) -> Result<Option<Vec<f64>>> {
    let given = match &args.aparam {
        Some(v) => v.clone(),
        None => match frame.array("aparam").map(|c| &c.data) {
            Some(halo_io::ColumnData::Real(v)) => v.clone(),
            Some(_) => bail!("{}: column `aparam` must be real", args.structure.display()),
            None => return Ok(None),
        },
    };
    if numb_aparam > 0 && given.len() == numb_aparam {
        return Ok(Some(given.repeat(natoms)));
    }
    if given.len() != natoms * numb_aparam {
        bail!(
            "aparam has {} values; the model needs {numb_aparam} per atom ({} for {natoms} atoms)",
            given.len(),
            natoms * numb_aparam
        );
    }
    Ok(Some(given))
}

/// The JSON document of `halomd eval` (atoms in input order).
pub fn to_json(out: &LocalOutput, natoms: usize) -> serde_json::Value {
    serde_json::json!({
        "natoms": natoms,
        "energy": out.energy,
        "atom_energy": out.atom_energy,
        "forces": out.force,
        "virial": out.virial,
        "atom_virial": out.atom_virial,
    })
}
