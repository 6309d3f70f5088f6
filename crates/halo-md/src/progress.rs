//! The progress line on stderr.
//!
//! On a terminal (or with [`ProgressMode::Always`]) one line is rewritten in place with `\r`
//! at most a few times a second; on a pipe or file ([`ProgressMode::Auto`]) a plain line is
//! printed at most every [`PLAIN_INTERVAL`], and once at the end, so logs stay short. The rate
//! is measured from the first [`Progress::update`] on, so the set-up cost of the first step
//! (model loading, first neighbour list) does not drag the estimate down. The text itself comes
//! from the pure function [`format_line`].

use std::io::{IsTerminal, Write};
use std::str::FromStr;
use std::time::{Duration, Instant};

use crate::output::ThermoRow;

/// How often a terminal line is redrawn.
pub const TTY_INTERVAL: Duration = Duration::from_millis(200);
/// How often a plain (non-terminal) line is printed.
pub const PLAIN_INTERVAL: Duration = Duration::from_secs(10);

/// When to show the live progress line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ProgressMode {
    /// A rewritten line on a terminal, occasional plain lines otherwise.
    #[default]
    Auto,
    /// Always the rewritten line, even when stderr is not a terminal.
    Always,
    /// No progress output.
    Never,
}

impl FromStr for ProgressMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(ProgressMode::Auto),
            "always" => Ok(ProgressMode::Always),
            "never" => Ok(ProgressMode::Never),
            other => Err(format!(
                "unknown progress mode {other:?} (expected \"auto\", \"always\" or \"never\")"
            )),
        }
    }
}

/// Everything one progress line shows.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Snapshot {
    /// The step just completed.
    pub step: u64,
    /// The last step of the run.
    pub total: u64,
    /// Measured steps per second of wall time, if known yet.
    pub steps_per_s: Option<f64>,
    /// Time step (fs); 0 for a minimisation (then no ns/day is shown).
    pub dt_fs: f64,
    /// Latest temperature (K), if a thermo row was computed.
    pub temperature: Option<f64>,
    /// Latest potential energy (eV), if a thermo row was computed.
    pub pe: Option<f64>,
}

/// Formats a duration in seconds as `H:MM:SS` (or `Dd HH:MM:SS` beyond a day).
pub fn format_duration(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "--:--:--".into();
    }
    let s = secs.round() as u64;
    let (d, h, m, s) = (s / 86_400, (s / 3600) % 24, (s / 60) % 60, s % 60);
    if d > 0 {
        format!("{d}d {h:02}:{m:02}:{s:02}")
    } else {
        format!("{h}:{m:02}:{s:02}")
    }
}

/// The progress text for `snap` (no `\r` or newline):
/// `step 500/1000 (50.0%) | 123.4 steps/s | 10.66 ns/day | ETA 0:00:04 | T 300.0 K | PE -1234.5678 eV`.
pub fn format_line(snap: &Snapshot) -> String {
    let pct = if snap.total > 0 {
        100.0 * snap.step as f64 / snap.total as f64
    } else {
        100.0
    };
    let mut s = format!("step {}/{} ({pct:.1}%)", snap.step, snap.total);
    match snap.steps_per_s {
        Some(rate) if rate.is_finite() && rate > 0.0 => {
            s.push_str(&format!(" | {} steps/s", sig3(rate)));
            if snap.dt_fs > 0.0 {
                // steps/s · fs/step · s/day · ns/fs
                let ns_day = rate * snap.dt_fs * 86_400.0 * 1e-6;
                s.push_str(&format!(" | {} ns/day", sig3(ns_day)));
            }
            let left = snap.total.saturating_sub(snap.step) as f64 / rate;
            s.push_str(&format!(" | ETA {}", format_duration(left)));
        }
        _ => s.push_str(" | -- steps/s | ETA --:--:--"),
    }
    if let Some(t) = snap.temperature {
        s.push_str(&format!(" | T {t:.1} K"));
    }
    if let Some(pe) = snap.pe {
        s.push_str(&format!(" | PE {pe:.4} eV"));
    }
    s
}

/// A rate with about three significant digits (`1234`, `123.4`, `12.34`, `1.234`, `0.0123`).
fn sig3(x: f64) -> String {
    let a = x.abs();
    if a >= 1000.0 {
        format!("{x:.0}")
    } else if a >= 100.0 {
        format!("{x:.1}")
    } else if a >= 10.0 {
        format!("{x:.2}")
    } else if a >= 1.0 {
        format!("{x:.3}")
    } else {
        format!("{x:.3e}")
    }
}

/// The live progress display of one run (rank 0 only).
#[derive(Debug)]
pub struct Progress {
    style: Style,
    total: u64,
    dt_fs: f64,
    /// Wall clock and step of the first update: the rate is measured from there.
    start: Option<(Instant, u64)>,
    last_print: Option<Instant>,
    last: Snapshot,
    /// Length of the last terminal line, to blank what a shorter line leaves behind.
    drawn: usize,
    /// The step shown by the last line printed.
    printed_step: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Style {
    Off,
    Rewrite,
    Plain,
}

impl Progress {
    /// A progress display for a run ending at step `total_steps` and starting after
    /// `first_step` (0, or the checkpoint's step on a restart); `dt_fs` is 0 for minimisation.
    pub fn new(mode: ProgressMode, total_steps: u64, first_step: u64, dt_fs: f64) -> Self {
        let style = match mode {
            ProgressMode::Never => Style::Off,
            ProgressMode::Always => Style::Rewrite,
            ProgressMode::Auto if std::io::stderr().is_terminal() => Style::Rewrite,
            ProgressMode::Auto => Style::Plain,
        };
        Progress {
            style,
            total: total_steps,
            dt_fs,
            start: None,
            last_print: None,
            last: Snapshot {
                step: first_step,
                total: total_steps,
                dt_fs,
                ..Snapshot::default()
            },
            drawn: 0,
            printed_step: None,
        }
    }

    /// Records that `step` is done; `row` is the latest thermo row if one was just computed.
    /// Prints when the display interval has passed.
    pub fn update(&mut self, step: u64, row: Option<&ThermoRow>) {
        if self.style == Style::Off {
            return;
        }
        let now = Instant::now();
        self.record(step, row, now);
        let interval = match self.style {
            Style::Rewrite => TTY_INTERVAL,
            _ => PLAIN_INTERVAL,
        };
        let due = match self.last_print {
            None => self.style == Style::Rewrite,
            Some(t) => now.duration_since(t) >= interval,
        };
        if due {
            self.print(now, false);
        }
    }

    /// Prints the final state (and ends the terminal line).
    pub fn finish(&mut self) {
        let repeat = self.printed_step == Some(self.last.step);
        match self.style {
            Style::Off => {}
            // A plain line for this step is already in the log.
            Style::Plain if repeat => {}
            _ => self.print(Instant::now(), true),
        }
    }

    /// The current snapshot (what the next line would show).
    pub fn snapshot(&self) -> Snapshot {
        self.last
    }

    fn record(&mut self, step: u64, row: Option<&ThermoRow>, now: Instant) {
        let (t0, s0) = *self.start.get_or_insert((now, step));
        let elapsed = now.duration_since(t0).as_secs_f64();
        self.last.step = step;
        self.last.total = self.total;
        self.last.dt_fs = self.dt_fs;
        if step > s0 && elapsed > 0.0 {
            self.last.steps_per_s = Some((step - s0) as f64 / elapsed);
        }
        if let Some(r) = row {
            self.last.temperature = Some(r.temperature);
            self.last.pe = Some(r.pe);
        }
    }

    fn print(&mut self, now: Instant, last: bool) {
        let line = format_line(&self.last);
        let text = match self.style {
            Style::Rewrite => {
                let pad = self.drawn.saturating_sub(line.len());
                self.drawn = line.len();
                format!(
                    "\r{line}{}{}",
                    " ".repeat(pad),
                    if last { "\n" } else { "" }
                )
            }
            _ => format!("{line}\n"),
        };
        // Progress is best-effort: a closed stderr must not stop the run.
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(text.as_bytes());
        let _ = err.flush();
        self.last_print = Some(now);
        self.printed_step = Some(self.last.step);
    }
}
