//! `halomd`: evaluate DeePMD-kit models and run molecular dynamics on one or many ranks.
//!
//! The binary is thin: each subcommand parses its flags, reads inputs through `halo-io`, calls
//! the library crates and prints a result. All errors are reported with their file/field context
//! and a non-zero exit status; nothing a user types can make it panic.

mod bench;
mod eval;
mod neighbors;
mod ranks;
mod run;
mod signals;

use clap::{Parser, Subcommand, ValueEnum};
use std::process::ExitCode;

/// halomd — machine-learned interatomic potentials and MD, same answer on any rank count.
#[derive(Debug, Parser)]
#[command(name = "halomd", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build the neighbour list of a structure and print its statistics.
    ///
    /// Periodic images are generated as DeePMD-kit does (local atoms, then images within the
    /// cutoff), pruned to those within the cutoff of some local atom. `npairs` counts ordered
    /// pairs (i local, j any atom or image other than i itself) with distance ≤ cutoff.
    Neighbors(neighbors::Args),
    /// Evaluate a DeePMD-kit model on a structure: energy, per-atom energies, forces and
    /// virials (global and per atom), atoms in input order.
    ///
    /// Conventions are DeePMD-kit's: forces in eV/Å, virial = Σ F ⊗ x in eV (row-major 9
    /// components, positive for repulsion), per-atom virials with the translation-invariant
    /// correction.
    Eval(eval::EvalArgs),
    /// Print a model's type map, cutoffs, sel, descriptor options, parameter count, precision
    /// and ghost-exchange manifest.
    Inspect(eval::InspectArgs),
    /// Run molecular dynamics or a minimisation from a TOML input file, on one or many
    /// ranks (`halomd run examples/cu-emt/nvt.toml`).
    Run(run::RunArgs),
    /// Time repeated evaluations of a model on a structure and report the peak memory.
    Bench(bench::BenchArgs),
}

/// Output format of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Human-readable text.
    Text,
    /// One JSON object on standard output.
    Json,
}

/// Every evaluation allocates and frees the same large per-frame buffers (DPA3's angle
/// features are tens of MB). glibc serves such blocks with fresh `mmap`s by default, so each
/// evaluation paid ~10 % of its time in page faults; keeping them in the heap lets the next
/// evaluation (the next MD step) reuse the pages.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tunables; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

fn main() -> ExitCode {
    // Like every Unix filter, end quietly when the reader of our output goes away
    // (`halomd inspect m.dp | head`) instead of panicking on the failed write.
    // SAFETY: resets one signal's disposition before any other thread exists.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    keep_freed_memory();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Neighbors(args) => neighbors::run(&args),
        Command::Eval(args) => eval::eval(&args),
        Command::Inspect(args) => eval::inspect(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Run(args) => run::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("halomd: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
