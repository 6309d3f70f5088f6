//! Errors of an MD run.

use thiserror::Error;

/// Everything that can stop an MD run, with enough context to act on.
#[derive(Debug, Error)]
pub enum MdError {
    /// The input file or a value in it is invalid (the message names the file and key).
    #[error("{0}")]
    Input(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        source: std::io::Error,
    },
    /// A checkpoint is unreadable, truncated, corrupt or does not fit this run.
    #[error("checkpoint {path}: {msg}")]
    Checkpoint {
        /// The checkpoint file.
        path: String,
        /// What is wrong with it.
        msg: String,
    },
    /// The simulation became unphysical (non-finite values, a collapsed cell, ...).
    #[error("step {step}: {msg}")]
    Unstable {
        /// The step at which it was detected.
        step: u64,
        /// What happened.
        msg: String,
    },
    /// Rank-to-rank communication failed.
    #[error(transparent)]
    Comm(#[from] halo_comm::CommError),
    /// Decomposition, migration or ghost exchange failed.
    #[error(transparent)]
    Domain(#[from] halo_domain::DomainError),
    /// The model evaluation failed.
    #[error("model: {0}")]
    Model(String),
}

impl MdError {
    /// An I/O error on `path`.
    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        MdError::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }
}
