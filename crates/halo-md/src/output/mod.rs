//! Run outputs written by rank 0: the thermo log ([`thermo`]) and trajectories ([`traj`]).
//!
//! Every line or frame is formatted into one buffer and written with a single `write_all`
//! followed by a flush, so a crash leaves at most one partial record at the end of a file.
//! Writers report their byte lengths ([`thermo::ThermoLog::outputs`], [`traj::TrajWriter::len`])
//! for checkpoints; a restart truncates each file back to that length and appends, so the
//! outputs of a restarted run equal those of an uninterrupted one (and a partial record written
//! after the checkpoint disappears).

pub mod thermo;
pub mod traj;

pub use thermo::{ThermoLog, ThermoRow};
pub use traj::{TrajFormat, TrajFrame, TrajWriter};

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use crate::MdError;

/// The key under which a checkpoint records the length of the output file `path`.
pub fn output_key(path: &Path) -> String {
    path.display().to_string()
}

/// The length recorded for `path` in a checkpoint's `outputs` list.
///
/// Looks for the exact key first; failing that, for an entry naming the same existing file by
/// another spelling (a relative path taken from another working directory, say).
pub fn recorded_len(outputs: &[(String, u64)], path: &Path) -> Option<u64> {
    let key = output_key(path);
    if let Some((_, len)) = outputs.iter().find(|(k, _)| *k == key) {
        return Some(*len);
    }
    let canon = std::fs::canonicalize(path).ok()?;
    outputs
        .iter()
        .find(|(k, _)| std::fs::canonicalize(k).ok().as_ref() == Some(&canon))
        .map(|(_, len)| *len)
}

/// [`recorded_len`] for an output a restart must resume; `what` names the output in the
/// error a missing record gives.
pub fn resume_len(outputs: &[(String, u64)], path: &Path, what: &str) -> Result<u64, MdError> {
    recorded_len(outputs, path).ok_or_else(|| MdError::Checkpoint {
        path: output_key(path),
        msg: format!(
            "the checkpoint records no length for this {what} (was it added or renamed after \
             the checkpoint was written?); remove it from the input or start a new run"
        ),
    })
}

/// An append-only output file that knows its length.
///
/// Writes go straight to the file (no user-space buffer), one `write_all` per record, so what
/// the length says is what the file holds.
#[derive(Debug)]
pub(crate) struct OutFile {
    file: File,
    path: String,
    len: u64,
}

impl OutFile {
    /// Creates (or truncates) `path`, or, with `resume = Some(len)`, opens the existing file,
    /// cuts it back to `len` bytes and appends after that.
    pub(crate) fn open(path: &Path, resume: Option<u64>) -> Result<Self, MdError> {
        let name = output_key(path);
        let file = match resume {
            None => File::create(path).map_err(|e| MdError::io(path, e))?,
            Some(len) => {
                let mut file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(path)
                    .map_err(|e| {
                        MdError::io(
                            path,
                            std::io::Error::new(
                                e.kind(),
                                format!("cannot reopen this output to resume the run: {e}"),
                            ),
                        )
                    })?;
                let have = file.metadata().map_err(|e| MdError::io(path, e))?.len();
                if have < len {
                    return Err(MdError::io(
                        path,
                        std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            format!(
                                "the checkpoint recorded {len} bytes but the file now has only \
                                 {have}; it was truncated or replaced since the checkpoint"
                            ),
                        ),
                    ));
                }
                file.set_len(len).map_err(|e| MdError::io(path, e))?;
                file.seek(SeekFrom::Start(len))
                    .map_err(|e| MdError::io(path, e))?;
                file
            }
        };
        Ok(OutFile {
            file,
            path: name,
            len: resume.unwrap_or(0),
        })
    }

    /// Appends one record with a single `write_all`, then flushes.
    pub(crate) fn write_record(&mut self, bytes: &[u8]) -> Result<(), MdError> {
        self.file
            .write_all(bytes)
            .and_then(|()| self.file.flush())
            .map_err(|e| MdError::io(&self.path, e))?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Bytes written so far (including what was kept on resume).
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// The path as recorded in checkpoints.
    pub(crate) fn key(&self) -> &str {
        &self.path
    }

    /// Forces the data to disk.
    pub(crate) fn sync(&mut self) -> Result<(), MdError> {
        self.file
            .sync_data()
            .map_err(|e| MdError::io(&self.path, e))
    }
}
