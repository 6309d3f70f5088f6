//! `halomd neighbors`: neighbour-list statistics of a structure.

use crate::ReportFormat;
use anyhow::{bail, Context, Result};
use halo_io::Format;
use std::path::PathBuf;

/// Flags of `halomd neighbors`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Cutoff radius in Å.
    #[arg(long, short = 'c', allow_negative_numbers = true)]
    cutoff: f64,
    /// Verlet skin in Å: the list is built with cutoff + skin (reported as npairs_skin).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    skin: f64,
    /// File format (extxyz, lammps-data, poscar); guessed from the file name if omitted.
    #[arg(long = "input-format", value_name = "FORMAT")]
    input_format: Option<String>,
    /// Frame of a multi-frame extxyz file (0-based; negative counts from the end).
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    frame: i64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    format: ReportFormat,
    /// Print the per-atom neighbour counts too (text format; JSON always has them).
    #[arg(long)]
    per_atom: bool,
    /// Structure file (extxyz, LAMMPS data, POSCAR/CONTCAR).
    structure: PathBuf,
}

/// Reads one frame of a structure file, with the format from a flag or the file name.
pub fn read_frame(
    path: &std::path::Path,
    format: Option<&str>,
    frame: i64,
) -> Result<halo_io::Frame> {
    let format = match format {
        Some(name) => Some(Format::from_name(name).with_context(|| {
            format!("unknown input format `{name}` (expected extxyz, lammps-data or poscar)")
        })?),
        None => None,
    };
    let mut frames = halo_io::read(path, format)?;
    let n = frames.len() as i64;
    let idx = if frame < 0 { n + frame } else { frame };
    if idx < 0 || idx >= n {
        bail!(
            "{}: frame {frame} does not exist (the file has {n} frame{})",
            path.display(),
            if n == 1 { "" } else { "s" }
        );
    }
    Ok(frames.swap_remove(idx as usize))
}

/// Runs the subcommand.
pub fn run(args: &Args) -> Result<()> {
    let frame = read_frame(&args.structure, args.input_format.as_deref(), args.frame)?;
    let system = &frame.system;
    let ext = halo_nlist::extend(
        &system.positions,
        system.cell.as_ref(),
        args.cutoff + args.skin,
    )
    .with_context(|| format!("{}: building ghost atoms", args.structure.display()))?;
    let outer = halo_nlist::NeighborList::build(&ext.coords, ext.nloc, args.cutoff + args.skin)?;
    let inner = outer.within(&ext.coords, args.cutoff)?;
    let per_atom: Vec<usize> = (0..inner.nloc()).map(|i| inner.count(i)).collect();
    let natoms = system.len();
    match args.format {
        ReportFormat::Json => {
            let out = serde_json::json!({
                "natoms": natoms,
                "nghost": ext.nghost(),
                "cutoff": args.cutoff,
                "skin": args.skin,
                "npairs": inner.npairs(),
                "npairs_skin": outer.npairs(),
                "max_neighbors": inner.max_neighbors(),
                "neighbors_per_atom": per_atom,
            });
            println!("{out}");
        }
        ReportFormat::Text => {
            println!("structure       {}", args.structure.display());
            println!("natoms          {natoms}");
            println!("pbc             {:?}", system.pbc());
            println!("nghost          {}", ext.nghost());
            println!("cutoff          {} Å (skin {} Å)", args.cutoff, args.skin);
            println!("npairs          {}", inner.npairs());
            println!("npairs_skin     {}", outer.npairs());
            println!("max_neighbors   {}", inner.max_neighbors());
            let mean = if natoms == 0 {
                0.0
            } else {
                inner.npairs() as f64 / natoms as f64
            };
            println!("mean_neighbors  {mean:.3}");
            if args.per_atom {
                for (i, c) in per_atom.iter().enumerate() {
                    println!("{i} {c}");
                }
            }
        }
    }
    Ok(())
}
