//! The TOML input of `halomd run`.
//!
//! The file is parsed with `toml`'s span-keeping document parser ([`DeTable`]) and walked
//! by hand instead of derived with serde, so that every complaint can name the file, the
//! dotted key and the line (`run.toml:7: md.temprature: unknown key; did you mean
//! `temperature`?`), and so that all problems are reported at once instead of one per
//! attempt. Keys that exist but do not apply to the chosen ensemble are errors too: a
//! silently ignored `pressure` under NVT is a wrong simulation, not a style issue.
//!
//! Paths in the file are relative to the file's own directory and come back resolved.
//! The layout, every key, its unit and default are documented in `docs/run-input.md`.

use std::fmt::Display;
use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::error::MdError;
use crate::output::traj::TrajFormat;
use crate::progress::ProgressMode;

pub use crate::dynamics::Couple;

/// Default timestep (fs).
pub const DEFAULT_TIMESTEP: f64 = 1.0;
/// Default thermostat damping time in timesteps.
pub const DEFAULT_TDAMP_STEPS: f64 = 100.0;
/// Default barostat damping time in timesteps.
pub const DEFAULT_PDAMP_STEPS: f64 = 1000.0;
/// Default Nosé–Hoover chain length.
pub const DEFAULT_CHAIN: usize = 3;
/// Default random seed: a fixed value, so that two runs of the same input are identical.
pub const DEFAULT_SEED: u64 = 0;
/// Default neighbour-list skin (Å).
pub const DEFAULT_SKIN: f64 = 1.0;

/// A parsed and validated `halomd run` input file.
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    /// The input file itself (as given).
    pub path: PathBuf,
    /// The starting structure (resolved against the input file's directory).
    pub structure: PathBuf,
    /// The structure's file format when given explicitly (`[structure] format`); `None`
    /// means "guess from the file name" (`halo_io::read(path, None)`).
    pub structure_format: Option<halo_io::Format>,
    /// The model to evaluate.
    pub model: ModelInput,
    /// What to do: dynamics or minimisation.
    pub task: Task,
    /// Which files to write, and how often.
    pub output: OutputInput,
    /// How to spread the run over ranks.
    pub parallel: ParallelInput,
}

/// The `[model]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInput {
    /// The model file (resolved).
    pub path: PathBuf,
    /// Head of a multi-task model.
    pub head: Option<String>,
    /// Element names present in the structure that the model should ignore.
    pub null_types: Vec<String>,
    /// Frame parameters for models that take them.
    pub fparam: Option<Vec<f64>>,
}

/// What the run does.
#[derive(Debug, Clone, PartialEq)]
pub enum Task {
    /// Molecular dynamics (`[md]`).
    Md(MdInput),
    /// Energy minimisation (`[minimize]`).
    Minimize(MinimizeInput),
}

/// The `[md]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct MdInput {
    /// Number of steps to take (≥ 1).
    pub steps: u64,
    /// Timestep (fs, > 0).
    pub timestep: f64,
    /// Ensemble and its parameters.
    pub ensemble: Ensemble,
    /// Seed of the counter-based random numbers (Langevin noise, initial velocities).
    pub seed: u64,
    /// Neighbour-list skin (Å, ≥ 0).
    pub skin: f64,
    /// How to set the initial velocities; see [`MdInput::initial_velocities`].
    pub velocities: InitVelocities,
}

/// How the initial velocities are set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum InitVelocities {
    /// Take them from the structure file (an error if it has none).
    FromStructure,
    /// Draw them from Maxwell–Boltzmann at this temperature (K).
    Temperature(f64),
    /// Start at rest.
    Zero,
    /// Nothing said in the input: resolved by [`MdInput::initial_velocities`] once the
    /// structure is known (structure velocities if present, else Maxwell–Boltzmann at the
    /// ensemble's temperature, else zero).
    Auto,
}

/// The statistical ensemble of an MD run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Ensemble {
    /// Constant energy (velocity Verlet).
    Nve,
    /// Constant temperature with a Langevin thermostat.
    Langevin {
        /// Target temperature (K).
        temperature: f64,
        /// Damping time, 1/friction (fs).
        damping: f64,
    },
    /// Constant temperature with a Nosé–Hoover chain.
    NoseHoover {
        /// Target temperature (K).
        temperature: f64,
        /// Thermostat period (fs).
        tdamp: f64,
        /// Chain length (≥ 1).
        chain: usize,
    },
    /// Constant temperature and pressure (Nosé–Hoover chain thermostat and barostat).
    Npt {
        /// Target temperature (K).
        temperature: f64,
        /// Thermostat period (fs).
        tdamp: f64,
        /// Target pressure (bar).
        pressure: f64,
        /// Barostat period (fs).
        pdamp: f64,
        /// Which cell degrees of freedom move.
        couple: Couple,
        /// Thermostat chain length (≥ 1).
        chain: usize,
    },
}

impl Ensemble {
    /// The target temperature (K), if the ensemble has one.
    pub fn temperature(&self) -> Option<f64> {
        match *self {
            Ensemble::Nve => None,
            Ensemble::Langevin { temperature, .. }
            | Ensemble::NoseHoover { temperature, .. }
            | Ensemble::Npt { temperature, .. } => Some(temperature),
        }
    }
}

impl MdInput {
    /// The initial velocities with [`InitVelocities::Auto`] resolved, given whether the
    /// structure file carries velocities; never returns `Auto`.
    pub fn initial_velocities(&self, structure_has_velocities: bool) -> InitVelocities {
        match self.velocities {
            InitVelocities::Auto if structure_has_velocities => InitVelocities::FromStructure,
            InitVelocities::Auto => match self.ensemble.temperature() {
                Some(t) => InitVelocities::Temperature(t),
                None => InitVelocities::Zero,
            },
            other => other,
        }
    }
}

/// The `[minimize]` section (FIRE).
#[derive(Debug, Clone, PartialEq)]
pub struct MinimizeInput {
    /// Converged when every force component is below this (eV/Å).
    pub fmax: f64,
    /// Maximum number of steps.
    pub steps: u64,
    /// Largest displacement of one atom per step (Å).
    pub maxstep: f64,
    /// Also relax the cell.
    pub cell: bool,
    /// Target pressure for cell relaxation (bar).
    pub pressure: f64,
    /// Neighbour-list skin (Å).
    pub skin: f64,
}

/// The `[output]` section; a `None` path means that output is off.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputInput {
    /// Thermo row every this many steps (and at the first and last step).
    pub thermo_every: u64,
    /// Human-readable thermo log.
    pub thermo: Option<PathBuf>,
    /// Thermo CSV.
    pub thermo_csv: Option<PathBuf>,
    /// Trajectory file.
    pub trajectory: Option<PathBuf>,
    /// Trajectory frame every this many steps.
    pub trajectory_every: u64,
    /// Trajectory format.
    pub trajectory_format: TrajFormat,
    /// Checkpoint file.
    pub checkpoint: Option<PathBuf>,
    /// Checkpoint every this many steps (and at the end).
    pub checkpoint_every: u64,
    /// PNG plot of the thermo data.
    pub plot: Option<PathBuf>,
    /// Progress line on stderr.
    pub progress: ProgressMode,
}

/// The `[parallel]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct ParallelInput {
    /// Number of ranks (`None`: from the command line or the launcher).
    pub ranks: Option<usize>,
    /// Domain grid (`None`: chosen automatically).
    pub grid: Option<[usize; 3]>,
    /// Communicator: `"threads"`, `"shm"` or `"mpi"`.
    pub comm: String,
}

impl Input {
    /// Reads and validates an input file.
    pub fn from_file(path: &Path) -> Result<Input, MdError> {
        let text = std::fs::read_to_string(path).map_err(|e| MdError::io(path, e))?;
        Input::parse(&text, path)
    }

    /// Parses and validates input text; `path` names the file in errors and is the base
    /// of relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<Input, MdError> {
        let mut e = Errors::new(path, text);
        let doc = match DeTable::parse(text) {
            Ok(doc) => doc,
            Err(err) => {
                let line = err.span().map(|s| e.line(s.start));
                let msg = err.message().trim().to_string();
                e.list
                    .push((line, format!("{}:{}{msg}", e.file, line_prefix(line))));
                return Err(e.into_error());
            }
        };
        let base = path.parent().unwrap_or(Path::new("")).to_path_buf();
        let result = parse_root(&mut e, doc.get_ref(), &base, path);
        match result {
            Some(input) if e.list.is_empty() => Ok(input),
            _ => {
                if e.list.is_empty() {
                    e.list.push((None, format!("{}: invalid input", e.file)));
                }
                Err(e.into_error())
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Key tables: the single source of truth for "unknown key" and "belongs in [x]" messages.

const ROOT_KEYS: &[&str] = &["structure", "model", "md", "minimize", "output", "parallel"];
const STRUCTURE_KEYS: &[&str] = &["file", "format"];
const MODEL_KEYS: &[&str] = &["file", "head", "null_types", "fparam"];
const MD_KEYS: &[&str] = &[
    "ensemble",
    "thermostat",
    "timestep",
    "steps",
    "temperature",
    "tdamp",
    "pressure",
    "pdamp",
    "barostat",
    "chain",
    "seed",
    "skin",
    "velocities",
    "init_temperature",
];
const MINIMIZE_KEYS: &[&str] = &["fmax", "steps", "maxstep", "cell", "pressure", "skin"];
const OUTPUT_KEYS: &[&str] = &[
    "thermo_every",
    "thermo",
    "thermo_csv",
    "trajectory",
    "trajectory_every",
    "trajectory_format",
    "checkpoint",
    "checkpoint_every",
    "plot",
    "progress",
];
const PARALLEL_KEYS: &[&str] = &["ranks", "grid", "comm"];

const SECTIONS: &[(&str, &[&str])] = &[
    ("structure", STRUCTURE_KEYS),
    ("model", MODEL_KEYS),
    ("md", MD_KEYS),
    ("minimize", MINIMIZE_KEYS),
    ("output", OUTPUT_KEYS),
    ("parallel", PARALLEL_KEYS),
];

// ---------------------------------------------------------------------------------------
// Error collection.

/// Collected problems, each already formatted as `file:line: key: message`.
struct Errors {
    file: String,
    line_starts: Vec<usize>,
    list: Vec<(Option<usize>, String)>,
}

fn line_prefix(line: Option<usize>) -> String {
    match line {
        Some(l) => format!("{l}: "),
        None => " ".to_string(),
    }
}

impl Errors {
    fn new(path: &Path, text: &str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Errors {
            file: path.display().to_string(),
            line_starts,
            list: Vec::new(),
        }
    }

    /// 1-based line of a byte offset.
    fn line(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&s| s <= offset)
    }

    fn push(&mut self, line: Option<usize>, key: &str, msg: impl Display) {
        let text = format!("{}:{}{key}: {msg}", self.file, line_prefix(line));
        self.list.push((line, text));
    }

    fn into_error(mut self) -> MdError {
        // Top to bottom reads best; problems without a line (missing keys) go last.
        self.list
            .sort_by_key(|(line, _)| line.unwrap_or(usize::MAX));
        let lines: Vec<String> = self.list.into_iter().map(|(_, m)| m).collect();
        MdError::Input(lines.join("\n"))
    }
}

// ---------------------------------------------------------------------------------------
// Sections.

type Val<'i> = Spanned<DeValue<'i>>;

struct Item<'t, 'i> {
    key: &'t str,
    line: usize,
    value: &'t Val<'i>,
    taken: bool,
}

/// One TOML table being consumed key by key; what is left at the end is unknown.
struct Section<'t, 'i> {
    /// Dotted prefix (`""` for the root).
    name: &'static str,
    /// Line of the table header, for "missing key" errors.
    line: Option<usize>,
    items: Vec<Item<'t, 'i>>,
    known: &'static [&'static str],
}

/// A value read from the file with where it came from.
struct Found<T> {
    value: T,
    line: usize,
    key: String,
}

impl<'t, 'i> Section<'t, 'i> {
    fn new(
        e: &Errors,
        name: &'static str,
        line: Option<usize>,
        table: &'t DeTable<'i>,
        known: &'static [&'static str],
    ) -> Self {
        let items = table
            .iter()
            .map(|(k, v)| Item {
                key: k.get_ref().as_ref(),
                line: e.line(k.span().start),
                value: v,
                taken: false,
            })
            .collect();
        Section {
            name,
            line,
            items,
            known,
        }
    }

    fn dotted(&self, key: &str) -> String {
        if self.name.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.name)
        }
    }

    fn has(&self, key: &str) -> bool {
        self.items.iter().any(|i| i.key == key)
    }

    fn line_of(&self, key: &str) -> Option<usize> {
        self.items.iter().find(|i| i.key == key).map(|i| i.line)
    }

    /// Marks `key` as consumed and returns its line and value.
    fn take(&mut self, key: &str) -> Option<(usize, &'t Val<'i>)> {
        let item = self.items.iter_mut().find(|i| i.key == key)?;
        item.taken = true;
        Some((item.line, item.value))
    }

    /// Reads `key` with `conv`; reports a conversion failure and returns `None`.
    fn get<T>(
        &mut self,
        e: &mut Errors,
        key: &str,
        conv: impl FnOnce(&DeValue<'i>) -> Result<T, String>,
    ) -> Option<Found<T>> {
        let (line, value) = self.take(key)?;
        let dotted = self.dotted(key);
        match conv(value.get_ref()) {
            Ok(value) => Some(Found {
                value,
                line,
                key: dotted,
            }),
            Err(msg) => {
                e.push(Some(line), &dotted, msg);
                None
            }
        }
    }

    /// Like [`Section::get`], and reports a missing key.
    fn require<T>(
        &mut self,
        e: &mut Errors,
        key: &str,
        conv: impl FnOnce(&DeValue<'i>) -> Result<T, String>,
    ) -> Option<Found<T>> {
        if !self.has(key) {
            let what = if self.name.is_empty() {
                "missing required key".to_string()
            } else {
                format!("missing required key in [{}]", self.name)
            };
            e.push(self.line, &self.dotted(key), what);
            return None;
        }
        self.get(e, key, conv)
    }

    /// Reports `key` (if present) as not applicable, with `why`.
    fn reject(&mut self, e: &mut Errors, key: &str, why: &str) {
        if let Some((line, _)) = self.take(key) {
            e.push(Some(line), &self.dotted(key), why);
        }
    }

    /// Reports every key that was not consumed.
    fn finish(self, e: &mut Errors) {
        for item in self.items.iter().filter(|i| !i.taken) {
            let dotted = self.dotted(item.key);
            e.push(
                Some(item.line),
                &dotted,
                unknown_key_message(self.name, item.key, self.known),
            );
        }
    }
}

fn unknown_key_message(section: &str, key: &str, known: &[&str]) -> String {
    let here = if section.is_empty() {
        "at the top level".to_string()
    } else {
        format!("in [{section}]")
    };
    // The right name in the wrong table is the likeliest mistake; say where it goes.
    let homes: Vec<String> = SECTIONS
        .iter()
        .filter(|(name, keys)| *name != section && keys.contains(&key))
        .map(|(name, _)| format!("[{name}]"))
        .collect();
    if !homes.is_empty() && !known.contains(&key) {
        return format!(
            "unknown key {here}; `{key}` belongs in {}",
            homes.join(" or ")
        );
    }
    if let Some(s) = suggest(key, known) {
        return format!("unknown key; did you mean `{s}`?");
    }
    format!("unknown key {here} (valid keys: {})", known.join(", "))
}

// ---------------------------------------------------------------------------------------
// Value conversions.

fn describe(v: &DeValue<'_>) -> String {
    match v {
        DeValue::String(s) => format!("string {:?}", s.as_ref()),
        DeValue::Integer(i) => format!("integer {i}"),
        DeValue::Float(f) => format!("float {f}"),
        DeValue::Boolean(b) => format!("boolean {b}"),
        DeValue::Datetime(d) => format!("datetime {d}"),
        DeValue::Array(_) => "an array".to_string(),
        DeValue::Table(_) => "a table".to_string(),
    }
}

fn to_f64(v: &DeValue<'_>) -> Result<f64, String> {
    let x = match v {
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
            .map(|n| n as f64)
            .map_err(|_| format!("integer {i} is out of range"))?,
        DeValue::Float(f) => f
            .as_str()
            .parse::<f64>()
            .map_err(|_| format!("cannot read float {f}"))?,
        other => return Err(format!("expected a number, found {}", describe(other))),
    };
    if x.is_finite() {
        Ok(x)
    } else {
        Err(format!("must be a finite number, found {x}"))
    }
}

/// A non-negative whole number; an integral float such as `1e6` is accepted.
fn to_u64(v: &DeValue<'_>) -> Result<u64, String> {
    match v {
        DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
            Ok(n) if n >= 0 => Ok(n as u64),
            Ok(n) => Err(format!("must not be negative, found {n}")),
            Err(_) => Err(format!("integer {i} is out of range")),
        },
        DeValue::Float(f) => {
            let x: f64 = f.as_str().parse().unwrap_or(f64::NAN);
            // 2^53: beyond it a float no longer names one integer.
            if x.is_finite() && x.fract() == 0.0 && (0.0..=9_007_199_254_740_992.0).contains(&x) {
                Ok(x as u64)
            } else if x < 0.0 {
                Err(format!("must not be negative, found {f}"))
            } else {
                Err(format!("expected a whole number, found float {f}"))
            }
        }
        other => Err(format!(
            "expected a whole number, found {}",
            describe(other)
        )),
    }
}

fn to_usize(v: &DeValue<'_>) -> Result<usize, String> {
    let n = to_u64(v)?;
    usize::try_from(n).map_err(|_| format!("{n} is too large"))
}

fn to_bool(v: &DeValue<'_>) -> Result<bool, String> {
    match v {
        DeValue::Boolean(b) => Ok(*b),
        other => Err(format!("expected true or false, found {}", describe(other))),
    }
}

fn to_string(v: &DeValue<'_>) -> Result<String, String> {
    match v {
        DeValue::String(s) if s.trim().is_empty() => Err("must not be empty".to_string()),
        DeValue::String(s) => Ok(s.to_string()),
        other => Err(format!("expected a string, found {}", describe(other))),
    }
}

/// One of a fixed set of names, with a suggestion for a near miss.
fn to_choice(v: &DeValue<'_>, options: &'static [&'static str]) -> Result<&'static str, String> {
    let s = match v {
        DeValue::String(s) => s.as_ref(),
        other => {
            return Err(format!(
                "expected one of {}, found {}",
                quoted(options),
                describe(other)
            ))
        }
    };
    if let Some(o) = options.iter().find(|o| **o == s) {
        return Ok(o);
    }
    let hint = match suggest(s, options) {
        Some(best) => format!("; did you mean \"{best}\"?"),
        None => String::new(),
    };
    Err(format!(
        "unknown value {s:?}{hint} (expected one of {})",
        quoted(options)
    ))
}

fn quoted(options: &[&str]) -> String {
    let q: Vec<String> = options.iter().map(|o| format!("\"{o}\"")).collect();
    q.join(", ")
}

fn array<'a, 'i>(v: &'a DeValue<'i>, what: &str) -> Result<&'a [Val<'i>], String> {
    match v {
        DeValue::Array(a) => Ok(a),
        other => Err(format!(
            "expected an array of {what}, found {}",
            describe(other)
        )),
    }
}

fn to_string_list(v: &DeValue<'_>) -> Result<Vec<String>, String> {
    array(v, "strings")?
        .iter()
        .enumerate()
        .map(|(k, x)| to_string(x.get_ref()).map_err(|m| format!("element {k}: {m}")))
        .collect()
}

fn to_f64_list(v: &DeValue<'_>) -> Result<Vec<f64>, String> {
    array(v, "numbers")?
        .iter()
        .enumerate()
        .map(|(k, x)| to_f64(x.get_ref()).map_err(|m| format!("element {k}: {m}")))
        .collect()
}

fn to_grid(v: &DeValue<'_>) -> Result<[usize; 3], String> {
    let a = array(v, "three whole numbers")?;
    if a.len() != 3 {
        return Err(format!(
            "expected three numbers [px, py, pz], found {}",
            a.len()
        ));
    }
    let mut grid = [0usize; 3];
    for (k, x) in a.iter().enumerate() {
        grid[k] = to_usize(x.get_ref()).map_err(|m| format!("element {k}: {m}"))?;
        if grid[k] == 0 {
            return Err(format!(
                "every entry must be at least 1, found {grid:?}",
                grid = a
                    .iter()
                    .map(|x| describe(x.get_ref()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    Ok(grid)
}

// ---------------------------------------------------------------------------------------
// Suggestions.

/// Optimal-string-alignment distance (Levenshtein plus adjacent transpositions).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for i in 0..=a.len() {
        d[i * w] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(w) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[(i - 1) * w + j] + 1)
                .min(d[i * w + j - 1] + 1)
                .min(d[(i - 1) * w + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[(i - 2) * w + j - 2] + 1);
            }
            d[i * w + j] = best;
        }
    }
    d[a.len() * w + b.len()]
}

/// The nearest candidate to `input`, if one is near enough to be a plausible typo.
fn suggest<'a>(input: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let lower = input.to_lowercase();
    let limit = (lower.chars().count() / 3).max(2);
    candidates
        .iter()
        .map(|&c| {
            let mut d = edit_distance(&lower, c);
            // A truncated or over-specific name (`lammps` for `lammps-dump`) is a near miss
            // whatever its edit distance.
            if lower.len() >= 3 && (c.starts_with(&lower) || lower.starts_with(c)) {
                d = d.min(1);
            }
            (d, c)
        })
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

// ---------------------------------------------------------------------------------------
// The walk.

fn resolve(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// A sub-table or a bare string (`structure = "a.xyz"` or `[structure] file = "a.xyz"`).
enum TableOrPath<'t, 'i> {
    Path(Found<String>),
    Table(Section<'t, 'i>),
}

fn table_or_path<'t, 'i>(
    e: &mut Errors,
    root: &mut Section<'t, 'i>,
    name: &'static str,
    known: &'static [&'static str],
) -> Option<TableOrPath<'t, 'i>> {
    if !root.has(name) {
        e.push(None, name, "missing required key");
        return None;
    }
    let (line, value) = root.take(name)?;
    match value.get_ref() {
        DeValue::Table(t) => Some(TableOrPath::Table(Section::new(
            e,
            name,
            Some(line),
            t,
            known,
        ))),
        DeValue::String(_) => match to_string(value.get_ref()) {
            Ok(s) => Some(TableOrPath::Path(Found {
                value: s,
                line,
                key: name.to_string(),
            })),
            Err(m) => {
                e.push(Some(line), name, m);
                None
            }
        },
        other => {
            e.push(
                Some(line),
                name,
                format!(
                    "expected a file name or a [{name}] table, found {}",
                    describe(other)
                ),
            );
            None
        }
    }
}

fn sub_table<'t, 'i>(
    e: &mut Errors,
    root: &mut Section<'t, 'i>,
    name: &'static str,
    known: &'static [&'static str],
) -> Option<Section<'t, 'i>> {
    let (line, value) = root.take(name)?;
    match value.get_ref() {
        DeValue::Table(t) => Some(Section::new(e, name, Some(line), t, known)),
        other => {
            e.push(
                Some(line),
                name,
                format!("expected a [{name}] table, found {}", describe(other)),
            );
            None
        }
    }
}

fn parse_root(e: &mut Errors, doc: &DeTable<'_>, base: &Path, path: &Path) -> Option<Input> {
    let mut root = Section::new(e, "", None, doc, ROOT_KEYS);

    let structure = table_or_path(e, &mut root, "structure", STRUCTURE_KEYS);
    let (structure, structure_format) = match structure {
        Some(TableOrPath::Path(p)) => (Some(resolve(base, &p.value)), None),
        Some(TableOrPath::Table(mut s)) => {
            let file = s.require(e, "file", to_string);
            let format = s.get(e, "format", |v| match v {
                DeValue::String(name) => halo_io::Format::from_name(name).ok_or_else(|| {
                    let hint = suggest(name, &["extxyz", "lammps-data", "poscar"])
                        .map(|b| format!("; did you mean \"{b}\"?"))
                        .unwrap_or_default();
                    format!(
                        "unknown structure format {:?}{hint} (expected one of \"extxyz\", \"lammps-data\", \"poscar\")",
                        name.as_ref()
                    )
                }),
                other => Err(format!("expected a format name, found {}", describe(other))),
            });
            s.finish(e);
            (
                file.map(|f| resolve(base, &f.value)),
                format.map(|f| f.value),
            )
        }
        None => (None, None),
    };

    let model = match table_or_path(e, &mut root, "model", MODEL_KEYS) {
        Some(TableOrPath::Path(p)) => Some(ModelInput {
            path: resolve(base, &p.value),
            head: None,
            null_types: Vec::new(),
            fparam: None,
        }),
        Some(TableOrPath::Table(s)) => parse_model(e, s, base),
        None => None,
    };

    let md = sub_table(e, &mut root, "md", MD_KEYS);
    let minimize = sub_table(e, &mut root, "minimize", MINIMIZE_KEYS);
    let task = match (md, minimize) {
        (Some(md), None) => parse_md(e, md).map(Task::Md),
        (None, Some(min)) => parse_minimize(e, min).map(Task::Minimize),
        (Some(md), Some(min)) => {
            e.push(
                min.line,
                "minimize",
                format!(
                    "give either [md] or [minimize], not both ([md] is at line {})",
                    md.line.unwrap_or(0)
                ),
            );
            None
        }
        (None, None) => {
            // A table that failed to be a table was already reported.
            if !root.has("md") && !root.has("minimize") {
                e.push(
                    None,
                    "md",
                    "missing [md] section (or [minimize] for an energy minimisation)",
                );
            }
            None
        }
    };

    let output = match sub_table(e, &mut root, "output", OUTPUT_KEYS) {
        Some(s) => parse_output(e, s, base),
        None => parse_output(e, Section::empty("output", OUTPUT_KEYS), base),
    };
    let parallel = match sub_table(e, &mut root, "parallel", PARALLEL_KEYS) {
        Some(s) => parse_parallel(e, s),
        None => parse_parallel(e, Section::empty("parallel", PARALLEL_KEYS)),
    };
    root.finish(e);

    let structure = structure?;
    let model = model?;
    let output = output?;
    check_output_paths(e, &output, &structure, &model.path);
    Some(Input {
        path: path.to_path_buf(),
        structure,
        structure_format,
        model,
        task: task?,
        output,
        parallel: parallel?,
    })
}

impl Section<'_, '_> {
    /// A number that must be > 0.
    fn positive(&mut self, e: &mut Errors, key: &str, unit: &str) -> Option<f64> {
        let f = self.get(e, key, to_f64);
        positive(e, f, unit)
    }

    /// A count or interval that must be ≥ 1.
    fn count(&mut self, e: &mut Errors, key: &str) -> Option<u64> {
        let f = self.get(e, key, to_u64);
        at_least_one(e, f)
    }

    fn empty(name: &'static str, known: &'static [&'static str]) -> Self {
        Section {
            name,
            line: None,
            items: Vec::new(),
            known,
        }
    }
}

fn parse_model(e: &mut Errors, mut s: Section<'_, '_>, base: &Path) -> Option<ModelInput> {
    let file = s.require(e, "file", to_string);
    let head = s.get(e, "head", to_string);
    let null_types = s.get(e, "null_types", to_string_list);
    let fparam = s.get(e, "fparam", to_f64_list);
    s.finish(e);
    Some(ModelInput {
        path: resolve(base, &file?.value),
        head: head.map(|h| h.value),
        null_types: null_types.map(|n| n.value).unwrap_or_default(),
        fparam: fparam.map(|f| f.value),
    })
}

/// Reports `msg` unless `ok`.
fn check<T>(e: &mut Errors, f: &Found<T>, ok: bool, msg: impl Display) {
    if !ok {
        e.push(Some(f.line), &f.key, msg);
    }
}

fn positive(e: &mut Errors, f: Option<Found<f64>>, unit: &str) -> Option<f64> {
    let f = f?;
    check(
        e,
        &f,
        f.value > 0.0,
        format!("must be > 0 {unit}, found {}", f.value),
    );
    Some(f.value)
}

fn at_least_one(e: &mut Errors, f: Option<Found<u64>>) -> Option<u64> {
    let f = f?;
    check(e, &f, f.value >= 1, "must be at least 1, found 0");
    Some(f.value)
}

fn skin(e: &mut Errors, s: &mut Section<'_, '_>) -> f64 {
    match s.get(e, "skin", to_f64) {
        Some(f) => {
            check(
                e,
                &f,
                f.value >= 0.0,
                format!("must be ≥ 0 Å, found {}", f.value),
            );
            f.value
        }
        None => DEFAULT_SKIN,
    }
}

fn parse_md(e: &mut Errors, mut s: Section<'_, '_>) -> Option<MdInput> {
    let ensemble = s.require(e, "ensemble", |v| to_choice(v, &["nve", "nvt", "npt"]));
    let steps = s.require(e, "steps", to_u64);
    let steps = at_least_one(e, steps);
    let timestep = s.positive(e, "timestep", "fs").unwrap_or(DEFAULT_TIMESTEP);
    let seed = s.get(e, "seed", to_u64).map_or(DEFAULT_SEED, |f| f.value);
    let skin = skin(e, &mut s);

    let velocities = s.get(e, "velocities", |v| to_choice(v, &["structure", "zero"]));
    let init_t = s.positive(e, "init_temperature", "K");
    let velocities = match (velocities, init_t) {
        (Some(v), Some(_)) => {
            e.push(
                Some(v.line),
                &v.key,
                "give either velocities or init_temperature, not both",
            );
            InitVelocities::Auto
        }
        (Some(v), None) if v.value == "structure" => InitVelocities::FromStructure,
        (Some(_), None) => InitVelocities::Zero,
        (None, Some(t)) => InitVelocities::Temperature(t),
        (None, None) => InitVelocities::Auto,
    };

    let ensemble = match ensemble {
        Some(f) => parse_ensemble(e, &mut s, f.value, timestep),
        None => {
            // Do not also complain about every ensemble-specific key.
            for key in MD_KEYS {
                s.take(key);
            }
            None
        }
    };
    s.finish(e);
    Some(MdInput {
        steps: steps?,
        timestep,
        ensemble: ensemble?,
        seed,
        skin,
        velocities,
    })
}

fn parse_ensemble(
    e: &mut Errors,
    s: &mut Section<'_, '_>,
    name: &str,
    timestep: f64,
) -> Option<Ensemble> {
    let thermostat = s.get(e, "thermostat", |v| {
        to_choice(v, &["langevin", "nose-hoover"])
    });
    let tdamp = s
        .positive(e, "tdamp", "fs")
        .unwrap_or(DEFAULT_TDAMP_STEPS * timestep);
    let chain_line = s.line_of("chain");
    let chain = s.count(e, "chain").map(|c| c as usize);
    if name == "nve" {
        s.reject(
            e,
            "temperature",
            "not used with ensemble = \"nve\"; to draw initial velocities use init_temperature",
        );
        for key in [
            "thermostat",
            "tdamp",
            "pressure",
            "pdamp",
            "barostat",
            "chain",
        ] {
            s.reject(e, key, "not used with ensemble = \"nve\"");
        }
        return Some(Ensemble::Nve);
    }

    let temperature = match s.require(e, "temperature", to_f64) {
        Some(f) => {
            check(
                e,
                &f,
                f.value > 0.0,
                format!("must be > 0 K for a thermostat, found {}", f.value),
            );
            Some(f.value)
        }
        None => None,
    };

    if name == "nvt" {
        let why = "only used with ensemble = \"npt\"";
        s.reject(e, "pressure", why);
        s.reject(e, "pdamp", why);
        s.reject(e, "barostat", why);
        let kind = thermostat.as_ref().map_or("langevin", |t| t.value);
        if kind == "langevin" {
            if let Some(line) = chain_line {
                e.push(
                    Some(line),
                    &s.dotted("chain"),
                    "only used by the nose-hoover thermostat (and npt)",
                );
            }
            return Some(Ensemble::Langevin {
                temperature: temperature?,
                damping: tdamp,
            });
        }
        return Some(Ensemble::NoseHoover {
            temperature: temperature?,
            tdamp,
            chain: chain.unwrap_or(DEFAULT_CHAIN),
        });
    }

    // npt
    if let Some(t) = &thermostat {
        check(
            e,
            t,
            t.value == "nose-hoover",
            "npt uses a Nosé–Hoover chain thermostat; only \"nose-hoover\" is allowed here",
        );
    }
    let pressure = s.require(e, "pressure", to_f64).map(|f| f.value);
    let pdamp = s
        .positive(e, "pdamp", "fs")
        .unwrap_or(DEFAULT_PDAMP_STEPS * timestep);
    let couple = s
        .get(e, "barostat", |v| to_choice(v, &["iso", "aniso", "tri"]))
        .map_or(Couple::Iso, |f| match f.value {
            "aniso" => Couple::Aniso,
            "tri" => Couple::Tri,
            _ => Couple::Iso,
        });
    Some(Ensemble::Npt {
        temperature: temperature?,
        tdamp,
        pressure: pressure?,
        pdamp,
        couple,
        chain: chain.unwrap_or(DEFAULT_CHAIN),
    })
}

fn parse_minimize(e: &mut Errors, mut s: Section<'_, '_>) -> Option<MinimizeInput> {
    let fmax = s.positive(e, "fmax", "eV/Å").unwrap_or(0.01);
    let steps = s.count(e, "steps").unwrap_or(1000);
    let maxstep = s.positive(e, "maxstep", "Å").unwrap_or(0.2);
    let cell = s.get(e, "cell", to_bool).is_some_and(|f| f.value);
    let pressure = s.get(e, "pressure", to_f64);
    if let Some(p) = &pressure {
        check(
            e,
            p,
            cell,
            "only used with cell = true (a fixed cell feels no pressure)",
        );
    }
    let skin = skin(e, &mut s);
    s.finish(e);
    Some(MinimizeInput {
        fmax,
        steps,
        maxstep,
        cell,
        pressure: pressure.map_or(0.0, |p| p.value),
        skin,
    })
}

/// An output file: a path, `true` for `name`, `false` for off; absent means `name` if
/// the output is on by default, else off.
fn output_file(
    e: &mut Errors,
    s: &mut Section<'_, '_>,
    key: &str,
    name: &str,
    on_by_default: bool,
    base: &Path,
) -> Option<PathBuf> {
    let got = s.get(e, key, |v| match v {
        DeValue::Boolean(on) => Ok(on.then(|| name.to_string())),
        DeValue::String(_) => to_string(v).map(Some),
        other => Err(format!(
            "expected a file name, true or false, found {}",
            describe(other)
        )),
    });
    let path = match got {
        Some(f) => f.value,
        None => on_by_default.then(|| name.to_string()),
    };
    path.map(|p| resolve(base, &p))
}

fn every(e: &mut Errors, s: &mut Section<'_, '_>, key: &str, default: u64) -> u64 {
    s.count(e, key).unwrap_or(default)
}

fn parse_output(e: &mut Errors, mut s: Section<'_, '_>, base: &Path) -> Option<OutputInput> {
    let thermo_every = every(e, &mut s, "thermo_every", 10);
    let thermo = output_file(e, &mut s, "thermo", "thermo.log", true, base);
    let thermo_csv = output_file(e, &mut s, "thermo_csv", "thermo.csv", true, base);
    let trajectory_line = s.line_of("trajectory");
    let trajectory = output_file(e, &mut s, "trajectory", "traj.xyz", true, base);
    let trajectory_every = every(e, &mut s, "trajectory_every", 100);
    let format = s.get(e, "trajectory_format", |v| {
        to_choice(v, &["extxyz", "lammps-dump"])
    });
    let checkpoint = output_file(e, &mut s, "checkpoint", "run.chk", true, base);
    let checkpoint_every = every(e, &mut s, "checkpoint_every", 1000);
    let plot = output_file(e, &mut s, "plot", "thermo.png", false, base);
    let progress = s
        .get(e, "progress", |v| {
            to_choice(v, &["auto", "always", "never"])
        })
        .map_or(ProgressMode::Auto, |f| match f.value {
            "always" => ProgressMode::Always,
            "never" => ProgressMode::Never,
            _ => ProgressMode::Auto,
        });
    let format_given = s.has("trajectory_format");
    s.finish(e);

    let trajectory_format = match format {
        Some(f) if f.value == "lammps-dump" => TrajFormat::LammpsDump,
        Some(_) => TrajFormat::Extxyz,
        None => match &trajectory {
            Some(p) if !format_given => match TrajFormat::from_path(p) {
                Some(fmt) => fmt,
                None => {
                    e.push(
                        trajectory_line,
                        "output.trajectory",
                        format!(
                            "cannot tell the format of {:?} from its name; name it *.xyz, *.extxyz, \
                             *.lammpstrj or *.dump, or set output.trajectory_format",
                            p.display().to_string()
                        ),
                    );
                    TrajFormat::Extxyz
                }
            },
            _ => TrajFormat::Extxyz,
        },
    };
    Some(OutputInput {
        thermo_every,
        thermo,
        thermo_csv,
        trajectory,
        trajectory_every,
        trajectory_format,
        checkpoint,
        checkpoint_every,
        plot,
        progress,
    })
}

/// Two outputs in one file, or an output over an input, would destroy data.
fn check_output_paths(e: &mut Errors, out: &OutputInput, structure: &Path, model: &Path) {
    let named = [
        ("output.thermo", &out.thermo),
        ("output.thermo_csv", &out.thermo_csv),
        ("output.trajectory", &out.trajectory),
        ("output.checkpoint", &out.checkpoint),
        ("output.plot", &out.plot),
    ];
    for (i, (key, path)) in named.iter().enumerate() {
        let Some(path) = path else { continue };
        if path == structure {
            e.push(
                None,
                key,
                format!("{} would overwrite the structure file", path.display()),
            );
        }
        if path == model {
            e.push(
                None,
                key,
                format!("{} would overwrite the model file", path.display()),
            );
        }
        for (other, other_path) in &named[..i] {
            if other_path.as_ref() == Some(path) {
                e.push(
                    None,
                    key,
                    format!("{} is also used by {other}", path.display()),
                );
            }
        }
    }
}

fn parse_parallel(e: &mut Errors, mut s: Section<'_, '_>) -> Option<ParallelInput> {
    let ranks = s.get(e, "ranks", to_usize);
    if let Some(r) = &ranks {
        check(e, r, r.value >= 1, "must be at least 1, found 0");
    }
    let grid = s.get(e, "grid", to_grid);
    if let (Some(r), Some(g)) = (&ranks, &grid) {
        let product = g.value.iter().product::<usize>();
        check(
            e,
            g,
            product == r.value,
            format!(
                "{}×{}×{} = {product} domains, but parallel.ranks = {}",
                g.value[0], g.value[1], g.value[2], r.value
            ),
        );
    }
    let comm = s
        .get(e, "comm", |v| to_choice(v, &["threads", "shm", "mpi"]))
        .map_or("threads", |f| f.value);
    s.finish(e);
    Some(ParallelInput {
        ranks: ranks.map(|r| r.value),
        grid: grid.map(|g| g.value),
        comm: comm.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_counts_edits_and_transpositions() {
        assert_eq!(edit_distance("temprature", "temperature"), 1);
        assert_eq!(edit_distance("ab", "ba"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn suggestions_need_to_be_close() {
        assert_eq!(suggest("temprature", MD_KEYS), Some("temperature"));
        assert_eq!(
            suggest("lammps", &["extxyz", "lammps-dump"]),
            Some("lammps-dump")
        );
        assert_eq!(suggest("NVT", &["nve", "nvt", "npt"]), Some("nvt"));
        assert_eq!(suggest("zzzzzz", MD_KEYS), None);
    }
}
