//! Errors of the domain layer.

use halo_comm::CommError;
use halo_core::ExchangeError;
use thiserror::Error;

/// What can go wrong while decomposing, exchanging or evaluating.
#[derive(Debug, Error)]
pub enum DomainError {
    /// The processor grid does not fit the request (zero extent, wrong rank count).
    #[error("invalid processor grid: {0}")]
    Grid(String),
    /// The system or a per-rank result is malformed.
    #[error("invalid input: {0}")]
    Input(String),
    /// Communication between ranks failed.
    #[error("communication failed: {0}")]
    Comm(#[from] CommError),
    /// A ghost exchange failed.
    #[error(transparent)]
    Exchange(#[from] ExchangeError),
    /// After a migration the ranks together do not hold each global id exactly once.
    #[error("atoms lost across ranks: expected {expected} atoms, found {found} ({detail})")]
    Lost {
        /// Number of atoms the system should have.
        expected: usize,
        /// Number of atoms the ranks hold together.
        found: usize,
        /// What is wrong: missing, duplicated or out-of-range global ids.
        detail: String,
    },
    /// The per-rank evaluation closure failed.
    #[error("evaluation on rank {rank} failed: {source}")]
    Eval {
        /// The failing rank.
        rank: usize,
        /// The closure's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}
