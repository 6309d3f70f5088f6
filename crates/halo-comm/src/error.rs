//! The error type shared by every backend.

use std::fmt;
use std::time::Duration;

/// A list of ranks, displayed as `1, 3, 4`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RankList(pub Vec<usize>);

impl fmt::Display for RankList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

/// Everything that can go wrong in a communicator.
///
/// Errors raised after an operation has started (timeouts, lost peers, bad
/// message lengths) are fatal for the communicator, as with MPI's default
/// error handler: later calls return [`CommError::Poisoned`] and the peers
/// learn that this rank failed, so a failure spreads to every rank quickly
/// instead of leaving some of them waiting for the full timeout.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommError {
    /// A blocking wait ran past the communicator's timeout.
    #[error(
        "{op} timed out after {:.1} s waiting for rank(s) {peers} \
         (raise HALOMD_COMM_TIMEOUT if the peers are merely slow)",
        waited.as_secs_f64()
    )]
    Timeout {
        /// The operation, with its peer and tag, e.g. `recv from rank 1 (tag 3)`.
        op: String,
        /// The ranks still waited on when the time ran out.
        peers: RankList,
        /// How long the operation waited.
        waited: Duration,
    },
    /// A peer is known to be dead, or has failed or left the communicator.
    #[error("{op}: lost rank {rank}: {detail}")]
    PeerLost {
        /// The operation that noticed the loss.
        op: String,
        /// The rank that was lost first (the root cause, when a failure cascades).
        rank: usize,
        /// What was observed.
        detail: String,
    },
    /// A rank of a [`crate::threads::run`] group panicked.
    #[error("rank {rank} panicked: {message}")]
    RankPanicked {
        /// The rank whose closure panicked.
        rank: usize,
        /// The panic payload, when it was a string.
        message: String,
    },
    /// A rank argument is outside `0..size`.
    #[error("invalid rank {rank} for a communicator of {size} rank(s)")]
    InvalidRank {
        /// The offending rank.
        rank: usize,
        /// The communicator size.
        size: usize,
    },
    /// A rank count is zero or above a backend's limit.
    #[error("invalid rank count {nranks}: the {backend} backend supports 1 to {max} ranks")]
    InvalidSize {
        /// The requested count.
        nranks: usize,
        /// The largest count the backend supports.
        max: usize,
        /// The backend name.
        backend: &'static str,
    },
    /// A message tag outside the user range.
    #[error("invalid tag {tag}: user tags must be below {limit}", limit = crate::Tag::USER_LIMIT)]
    InvalidTag {
        /// The offending tag.
        tag: u32,
    },
    /// A message does not have the length the receiver needs.
    #[error("{op}: {detail}")]
    Length {
        /// The operation, with its peer and tag.
        op: String,
        /// What was expected and what arrived.
        detail: String,
    },
    /// A call that can never succeed, such as receiving from oneself
    /// a message that was not sent first.
    #[error("{0}")]
    Usage(String),
    /// The communicator failed earlier and cannot be used any more.
    #[error("communicator unusable after an earlier error: {0}")]
    Poisoned(String),
    /// Setting up a multi-process communicator failed.
    #[error("bootstrap of job {job:?} failed: {message}")]
    Bootstrap {
        /// The job name.
        job: String,
        /// What went wrong.
        message: String,
    },
    /// An operating-system call failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An environment variable has a value that cannot be used.
    #[error("invalid {var}={value:?}: {reason}")]
    Env {
        /// The variable name.
        var: &'static str,
        /// Its value.
        value: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A communicator kind name that is not `threads`, `shm` or `mpi`.
    #[error("unknown communicator kind {0:?}; expected threads, shm or mpi")]
    UnknownKind(String),
    /// A backend that this build or platform does not have.
    #[error("{0}")]
    Unavailable(String),
    /// The MPI library reported a problem.
    #[error("MPI: {0}")]
    Mpi(String),
}

impl CommError {
    /// The rank to blame for this error, if it names one: the lost rank, or
    /// the first rank a timeout waited on.
    pub fn blamed_rank(&self) -> Option<usize> {
        match self {
            CommError::Timeout { peers, .. } => peers.0.first().copied(),
            CommError::PeerLost { rank, .. } | CommError::RankPanicked { rank, .. } => Some(*rank),
            _ => None,
        }
    }

    /// Whether the error came from checking the arguments, before anything
    /// was sent or received (such errors leave the communicator usable).
    pub fn is_argument_error(&self) -> bool {
        matches!(
            self,
            CommError::InvalidRank { .. }
                | CommError::InvalidTag { .. }
                | CommError::InvalidSize { .. }
                | CommError::Usage(_)
        )
    }
}
