//! The thermo log: one row of global observables every `thermo_every` steps.
//!
//! Two forms, either or both:
//! - a fixed-width text log for people, LAMMPS-style, whose header names every column with its
//!   unit (written with the first row, so a log resumed at a non-empty length gets no second
//!   header);
//! - a CSV for programs, header
//!   `step,time_fs,pe_eV,ke_eV,temperature_K,pressure_bar,volume_A3,conserved_eV`, floats in
//!   Rust's shortest round-trip scientific form (`{:e}`), so [`read_csv`] gives back the exact
//!   bits; a missing volume (no cell) is an empty field.

use std::path::Path;

use super::{output_key, resume_len, OutFile};
use crate::MdError;

/// The CSV header line (without the newline).
pub const CSV_HEADER: &str =
    "step,time_fs,pe_eV,ke_eV,temperature_K,pressure_bar,volume_A3,conserved_eV";

/// One thermo record: global observables at one step (metal units).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ThermoRow {
    /// Step number (0 is the initial state).
    pub step: u64,
    /// Simulated time (fs).
    pub time: f64,
    /// Potential energy (eV).
    pub pe: f64,
    /// Kinetic energy (eV).
    pub ke: f64,
    /// Temperature (K).
    pub temperature: f64,
    /// Scalar pressure (bar).
    pub pressure: f64,
    /// Cell volume (Å³); `None` without a cell.
    pub volume: Option<f64>,
    /// Conserved quantity of the integrator: `pe + ke +` thermostat/barostat terms (eV).
    pub conserved: f64,
}

impl ThermoRow {
    /// Total energy `pe + ke` (eV).
    pub fn etotal(&self) -> f64 {
        self.pe + self.ke
    }
}

/// Writes thermo rows to a text log and/or a CSV file.
#[derive(Debug)]
pub struct ThermoLog {
    text: Option<OutFile>,
    csv: Option<OutFile>,
    /// Whether the text log shows a volume column (decided by the first row it holds).
    text_volume: Option<bool>,
}

impl ThermoLog {
    /// Opens the logs; with `resume` (a checkpoint's `outputs` list), each existing file is cut
    /// back to its recorded length and appended to.
    ///
    /// On resume, a file that does not exist, is shorter than recorded, or has no entry in the
    /// list is an error: continuing would silently lose or duplicate rows.
    pub fn create(
        text: Option<&Path>,
        csv: Option<&Path>,
        resume: Option<&[(String, u64)]>,
    ) -> Result<Self, MdError> {
        let open = |path: &Path| -> Result<OutFile, MdError> {
            let len = match resume {
                None => None,
                Some(outputs) => Some(resume_len(outputs, path, "thermo output")?),
            };
            OutFile::open(path, len)
        };
        let text = text.map(open).transpose()?;
        let mut csv = csv.map(open).transpose()?;
        if let Some(f) = csv.as_mut() {
            if f.len() == 0 {
                f.write_record(format!("{CSV_HEADER}\n").as_bytes())?;
            }
        }
        Ok(ThermoLog {
            text,
            csv,
            text_volume: None,
        })
    }

    /// Appends one row to every log.
    pub fn write(&mut self, row: &ThermoRow) -> Result<(), MdError> {
        if let Some(f) = self.text.as_mut() {
            let mut line = String::new();
            let volume = match self.text_volume {
                Some(v) => v,
                None => {
                    let v = row.volume.is_some();
                    if f.len() == 0 {
                        line.push_str(&text_header(v));
                    }
                    self.text_volume = Some(v);
                    v
                }
            };
            line.push_str(&text_line(row, volume));
            f.write_record(line.as_bytes())?;
        }
        if let Some(f) = self.csv.as_mut() {
            f.write_record(csv_line(row).as_bytes())?;
        }
        Ok(())
    }

    /// The current byte length of every log, keyed by path, for a checkpoint.
    pub fn outputs(&self) -> Vec<(String, u64)> {
        [&self.text, &self.csv]
            .into_iter()
            .flatten()
            .map(|f| (f.key().to_string(), f.len()))
            .collect()
    }

    /// Forces the logs to disk (at checkpoints, so the recorded lengths exist on disk).
    pub fn sync(&mut self) -> Result<(), MdError> {
        for f in [&mut self.text, &mut self.csv].into_iter().flatten() {
            f.sync()?;
        }
        Ok(())
    }
}

/// The two header lines of the text log (column names, then units).
pub fn text_header(volume: bool) -> String {
    let mut names = format!(
        "#{:>11} {:>12} {:>18} {:>16} {:>10} {:>13}",
        "Step", "Time", "PotEng", "KinEng", "Temp", "Press"
    );
    let mut units = format!(
        "#{:>11} {:>12} {:>18} {:>16} {:>10} {:>13}",
        "", "fs", "eV", "eV", "K", "bar"
    );
    if volume {
        names.push_str(&format!(" {:>14}", "Volume"));
        units.push_str(&format!(" {:>14}", "A^3"));
    }
    names.push_str(&format!(" {:>18} {:>18}\n", "TotEng", "Conserved"));
    units.push_str(&format!(" {:>18} {:>18}\n", "eV", "eV"));
    names + &units
}

/// One row of the text log, newline included; `volume` says whether the log has that column.
pub fn text_line(row: &ThermoRow, volume: bool) -> String {
    let mut s = format!(
        " {:>11} {:>12.3} {:>18.8} {:>16.8} {:>10.3} {:>13.3}",
        row.step, row.time, row.pe, row.ke, row.temperature, row.pressure
    );
    if volume {
        match row.volume {
            Some(v) => s.push_str(&format!(" {v:>14.4}")),
            None => s.push_str(&format!(" {:>14}", "-")),
        }
    }
    s.push_str(&format!(
        " {:>18.8} {:>18.8}\n",
        row.etotal(),
        row.conserved
    ));
    s
}

/// One CSV row, newline included, every float exact (`{:e}` is Rust's shortest round trip).
pub fn csv_line(row: &ThermoRow) -> String {
    let volume = row.volume.map(|v| format!("{v:e}")).unwrap_or_default();
    format!(
        "{},{:e},{:e},{:e},{:e},{:e},{},{:e}\n",
        row.step, row.time, row.pe, row.ke, row.temperature, row.pressure, volume, row.conserved
    )
}

/// Reads a thermo CSV written by [`ThermoLog`]; errors name `file:line`.
pub fn read_csv(path: &Path) -> Result<Vec<ThermoRow>, MdError> {
    let text = std::fs::read_to_string(path).map_err(|e| MdError::io(path, e))?;
    parse_csv(&text, &output_key(path))
}

/// Parses thermo CSV text; `name` stands for the file in errors.
pub fn parse_csv(text: &str, name: &str) -> Result<Vec<ThermoRow>, MdError> {
    let err = |line: usize, msg: String| MdError::Io {
        path: format!("{name}:{line}"),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, msg),
    };
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    match lines.next() {
        Some((_, h)) if h.trim() == CSV_HEADER => {}
        Some((no, h)) => {
            return Err(err(
                no,
                format!("expected the header `{CSV_HEADER}`, found `{}`", h.trim()),
            ))
        }
        None => return Err(err(1, "empty file, expected a thermo CSV header".into())),
    }
    let mut rows = Vec::new();
    for (no, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != 8 {
            return Err(err(
                no,
                format!("expected 8 comma-separated fields, found {}", fields.len()),
            ));
        }
        let real = |k: usize| -> Result<f64, MdError> {
            fields[k].parse::<f64>().map_err(|_| {
                err(
                    no,
                    format!(
                        "column {} ({}): expected a number, found `{}`",
                        k + 1,
                        CSV_HEADER.split(',').nth(k).unwrap_or("?"),
                        fields[k]
                    ),
                )
            })
        };
        let step = fields[0].parse::<u64>().map_err(|_| {
            err(
                no,
                format!(
                    "column 1 (step): expected a non-negative integer, found `{}`",
                    fields[0]
                ),
            )
        })?;
        rows.push(ThermoRow {
            step,
            time: real(1)?,
            pe: real(2)?,
            ke: real(3)?,
            temperature: real(4)?,
            pressure: real(5)?,
            volume: if fields[6].is_empty() {
                None
            } else {
                Some(real(6)?)
            },
            conserved: real(7)?,
        });
    }
    Ok(rows)
}
