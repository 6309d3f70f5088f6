//! Rank-to-rank communication for halomd.
//!
//! A [`Comm`] is one rank's handle on a group of `size` ranks. It offers
//! point-to-point messages (byte buffers, or any [`bytemuck::Pod`] slice
//! through [`CommExt`]), the LAMMPS-style swap primitive
//! [`Comm::sendrecv`], a barrier, and a few collectives: broadcast, gather,
//! allgather and sum/min/max all-reduce. Three backends implement it:
//!
//! * [`threads`]: ranks are threads of one process, with a mutex + condvar
//!   mailbox per rank. No set-up; the default.
//! * [`shm`] (Linux): ranks are processes on one machine that map a POSIX
//!   shared-memory segment named after the job. Each ordered rank pair has a
//!   byte ring with head/tail counters; waiters spin briefly and then sleep on
//!   a futex. Bootstrap is `comm_init(rank, nranks)` style, by job name.
//! * `mpi` (cargo feature `mpi`): the system MPI through the `mpi` crate.
//!
//! # Design choices
//!
//! **Every wait is bounded.** Each blocking call gives up after the
//! communicator's timeout ([`CommOptions::timeout`], 60 s by default,
//! `HALOMD_COMM_TIMEOUT` in seconds overrides it) with
//! [`CommError::Timeout`], which names the ranks it was waiting on. The
//! threads and shm backends also notice a dead peer long before that (a
//! panicked thread; a process that exited or was killed) and fail with
//! [`CommError::PeerLost`], naming the lost rank. A failed rank marks itself
//! failed, so a failure spreads to all ranks and nobody hangs.
//!
//! **Errors are fatal.** After a timeout or a lost peer the communicator is
//! poisoned, as with MPI's default error handler: a half-transferred message
//! cannot be resynchronised, so the honest thing is to stop.
//!
//! **Reductions are bit-reproducible.** The collectives are written once, in
//! [`CommExt`], over point-to-point messages, for every backend (MPI's own
//! `MPI_Allreduce` is not used, because its summation order is not
//! specified). An all-reduce gathers the contributions on rank 0, which
//! combines them in rank order, `((x0 + x1) + x2) + …`, and broadcasts the
//! result. The answer is therefore identical, bit for bit, to a serial loop
//! over the ranks, on every backend and whatever the timing. The cost is
//! `O(size)` messages through rank 0, which is fine for the rank counts of
//! one machine and for the small vectors (energies, virials, counts) that
//! MD reduces.
//!
//! **Messages are matched by source and tag, in order.** Tags are `u32`
//! below [`Tag::USER_LIMIT`] (the MPI standard only promises tags up to
//! 32767); the range above it is reserved for the collectives, so user
//! traffic never mixes with them. Messages from one source with one tag
//! arrive in the order they were sent; a message with another tag that
//! arrives first is queued until asked for.
//!
//! **Sends may block.** As with `MPI_Send`, a send may wait until the
//! receiver makes room (the shm backend's rings hold
//! [`CommOptions::shm_capacity`] bytes per rank pair; bigger messages
//! stream through). Exchanges in which every rank sends and receives must
//! use [`Comm::sendrecv`], which makes progress on both directions at once
//! and cannot deadlock, including when sending to itself.
//!
//! # Example
//!
//! ```
//! use halo_comm::{threads, Comm, CommExt, CommOptions, Op};
//!
//! let sums = threads::run(3, &CommOptions::default(), |comm| {
//!     let mut x = [comm.rank() as f64 + 0.5];
//!     comm.allreduce(&mut x, Op::Sum).unwrap();
//!     x[0]
//! })
//! .unwrap();
//! assert_eq!(sums, vec![4.5; 3]);
//! ```

#![warn(missing_docs)]

mod collective;
mod error;
#[cfg(feature = "mpi")]
pub mod mpi;
pub mod selftest;
#[cfg(target_os = "linux")]
pub mod shm;
pub mod threads;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

pub use collective::{CommExt, Op, Reduce};
pub use error::{CommError, RankList};

/// Environment variable with the communicator timeout in seconds.
pub const ENV_TIMEOUT: &str = "HALOMD_COMM_TIMEOUT";
/// Environment variable with the shm ring capacity per rank pair, in bytes.
pub const ENV_SHM_CAPACITY: &str = "HALOMD_SHM_CAPACITY";
/// Environment variable with this process's rank (set by launchers).
pub const ENV_RANK: &str = "HALOMD_RANK";
/// Environment variable with the number of ranks (set by launchers).
pub const ENV_NRANKS: &str = "HALOMD_NRANKS";
/// Environment variable with the shm job name (set by launchers).
pub const ENV_JOB: &str = "HALOMD_JOB";

/// A message tag.
///
/// User tags are below [`Tag::USER_LIMIT`]; make them with [`Tag::new`] (the
/// `u32`-taking methods do it for you). The range above is reserved for the
/// collectives, so a user message can never be mistaken for one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tag(u32);

impl Tag {
    /// User tags must be below this value.
    pub const USER_LIMIT: u32 = 0x7F00;
    /// The largest tag value on the wire (the MPI standard's minimum `MPI_TAG_UB`).
    pub const MAX: u32 = 0x7FFF;

    pub(crate) const BCAST: Tag = Tag(0x7F01);
    pub(crate) const GATHER: Tag = Tag(0x7F02);
    pub(crate) const REDUCE: Tag = Tag(0x7F03);
    pub(crate) const REDUCE_RESULT: Tag = Tag(0x7F04);

    /// A user tag; fails for values at or above [`Tag::USER_LIMIT`].
    pub fn new(tag: u32) -> Result<Tag, CommError> {
        if tag < Self::USER_LIMIT {
            Ok(Tag(tag))
        } else {
            Err(CommError::InvalidTag { tag })
        }
    }

    /// The numeric value.
    pub fn value(self) -> u32 {
        self.0
    }

    /// Rebuilds a tag read off the wire (any value up to [`Tag::MAX`]).
    pub(crate) fn from_wire(v: u32) -> Option<Tag> {
        (v <= Self::MAX).then_some(Tag(v))
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Tag::BCAST => f.write_str("broadcast"),
            Tag::GATHER => f.write_str("gather"),
            Tag::REDUCE => f.write_str("reduce"),
            Tag::REDUCE_RESULT => f.write_str("reduce result"),
            Tag(v) => write!(f, "{v}"),
        }
    }
}

/// A destination for a received message whose length is only known on arrival.
pub trait RecvBuf {
    /// Makes the buffer exactly `len` bytes long, or explains why it cannot.
    fn set_len_bytes(&mut self, len: usize) -> Result<(), String>;
    /// The buffer's bytes (after [`RecvBuf::set_len_bytes`]).
    fn bytes_mut(&mut self) -> &mut [u8];
}

impl RecvBuf for Vec<u8> {
    fn set_len_bytes(&mut self, len: usize) -> Result<(), String> {
        self.resize(len, 0);
        Ok(())
    }
    fn bytes_mut(&mut self) -> &mut [u8] {
        self
    }
}

/// Receives into a `Vec<T>`: the message must hold a whole number of `T`s.
pub struct PodVec<'a, T>(pub &'a mut Vec<T>);

impl<T: bytemuck::Pod> RecvBuf for PodVec<'_, T> {
    fn set_len_bytes(&mut self, len: usize) -> Result<(), String> {
        let size = std::mem::size_of::<T>().max(1);
        if !len.is_multiple_of(size) {
            return Err(format!(
                "message of {len} bytes is not a whole number of {size}-byte elements"
            ));
        }
        self.0.resize(len / size, T::zeroed());
        Ok(())
    }
    fn bytes_mut(&mut self) -> &mut [u8] {
        bytemuck::cast_slice_mut(self.0.as_mut_slice())
    }
}

/// Receives into a fixed slice: the message must have exactly its length.
pub struct PodSlice<'a, T>(pub &'a mut [T]);

impl<T: bytemuck::Pod> RecvBuf for PodSlice<'_, T> {
    fn set_len_bytes(&mut self, len: usize) -> Result<(), String> {
        let want = std::mem::size_of_val(self.0);
        if len != want {
            return Err(format!(
                "expected a message of {want} bytes, got {len} bytes"
            ));
        }
        Ok(())
    }
    fn bytes_mut(&mut self) -> &mut [u8] {
        bytemuck::cast_slice_mut(self.0)
    }
}

/// One rank's handle on a group of communicating ranks.
///
/// Backends implement the `*_msg` methods and [`Comm::barrier`]; users call
/// the `u32`-tag wrappers below and the typed helpers and collectives of
/// [`CommExt`]. A `Comm` is `Send` but not shared between threads: each rank
/// drives its own handle.
pub trait Comm: Send {
    /// This rank, in `0..size`.
    fn rank(&self) -> usize;
    /// The number of ranks.
    fn size(&self) -> usize;
    /// The bound on every blocking wait.
    fn timeout(&self) -> Duration;
    /// The backend behind this communicator.
    fn kind(&self) -> CommKind;
    /// Waits until every rank has entered the barrier.
    fn barrier(&self) -> Result<(), CommError>;
    /// Sends `data` to `dest` (which may be this rank).
    fn send_msg(&self, dest: usize, tag: Tag, data: &[u8]) -> Result<(), CommError>;
    /// Receives the next message from `src` with `tag` into `buf`; returns its length in bytes.
    fn recv_msg(&self, src: usize, tag: Tag, buf: &mut dyn RecvBuf) -> Result<usize, CommError>;
    /// Marks this rank failed (poisoning the communicator) so that peers
    /// waiting on it stop with an error naming it instead of timing out.
    fn fail(&self, error: &CommError);
    /// Sends to `dest` and receives from `src` at the same time; returns the received length.
    ///
    /// The default sends, then receives, which is only deadlock-free for
    /// backends whose sends never wait for the receiver; others override it.
    fn sendrecv_msg(
        &self,
        dest: usize,
        send_tag: Tag,
        data: &[u8],
        src: usize,
        recv_tag: Tag,
        buf: &mut dyn RecvBuf,
    ) -> Result<usize, CommError> {
        self.send_msg(dest, send_tag, data)?;
        self.recv_msg(src, recv_tag, buf)
    }

    /// Sends bytes to `dest` with a user tag.
    fn send(&self, dest: usize, tag: u32, data: &[u8]) -> Result<(), CommError> {
        self.send_msg(dest, Tag::new(tag)?, data)
    }
    /// Receives the next message from `src` with a user tag; `buf` takes its length.
    fn recv(&self, src: usize, tag: u32, buf: &mut Vec<u8>) -> Result<(), CommError> {
        self.recv_msg(src, Tag::new(tag)?, buf).map(|_| ())
    }
    /// Sends `data` to `dest` and receives a message from `src` into `buf`, deadlock-free.
    fn sendrecv(
        &self,
        dest: usize,
        send_tag: u32,
        data: &[u8],
        src: usize,
        recv_tag: u32,
        buf: &mut Vec<u8>,
    ) -> Result<(), CommError> {
        self.sendrecv_msg(
            dest,
            Tag::new(send_tag)?,
            data,
            src,
            Tag::new(recv_tag)?,
            buf,
        )
        .map(|_| ())
    }
}

/// Which backend to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CommKind {
    /// Ranks are threads of one process.
    Threads,
    /// Ranks are processes sharing POSIX shared memory (Linux).
    Shm,
    /// Ranks are MPI processes (cargo feature `mpi`).
    Mpi,
}

impl CommKind {
    /// The name accepted by [`FromStr`].
    pub fn name(self) -> &'static str {
        match self {
            CommKind::Threads => "threads",
            CommKind::Shm => "shm",
            CommKind::Mpi => "mpi",
        }
    }

    /// Fails with a clear message if this build or platform lacks the backend.
    pub fn ensure_available(self) -> Result<(), CommError> {
        match self {
            CommKind::Threads => Ok(()),
            CommKind::Shm if cfg!(target_os = "linux") => Ok(()),
            CommKind::Shm => Err(CommError::Unavailable(
                "the shm backend needs Linux (futexes and /dev/shm)".into(),
            )),
            CommKind::Mpi if cfg!(feature = "mpi") => Ok(()),
            CommKind::Mpi => Err(CommError::Unavailable(
                "the mpi backend was requested, but halo-comm was built without its `mpi` \
                 cargo feature; rebuild with `--features mpi` (needs an MPI library and libclang)"
                    .into(),
            )),
        }
    }
}

impl fmt::Display for CommKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for CommKind {
    type Err = CommError;

    /// Parses `threads`, `shm` or `mpi`, and fails if the backend is not built in.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let kind = match s.trim().to_ascii_lowercase().as_str() {
            "threads" => CommKind::Threads,
            "shm" => CommKind::Shm,
            "mpi" => CommKind::Mpi,
            _ => return Err(CommError::UnknownKind(s.to_string())),
        };
        kind.ensure_available()?;
        Ok(kind)
    }
}

/// Settings shared by the backends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommOptions {
    /// The bound on every blocking wait.
    pub timeout: Duration,
    /// Bytes in each shm ring (one per ordered rank pair); messages of any
    /// size stream through it.
    pub shm_capacity: usize,
}

impl Default for CommOptions {
    fn default() -> Self {
        CommOptions {
            timeout: Duration::from_secs(60),
            shm_capacity: 256 * 1024,
        }
    }
}

impl CommOptions {
    /// The defaults, overridden by `HALOMD_COMM_TIMEOUT` (seconds) and
    /// `HALOMD_SHM_CAPACITY` (bytes, optionally with a `K`/`M`/`G` suffix).
    pub fn from_env() -> Result<Self, CommError> {
        let mut o = CommOptions::default();
        if let Some(v) = env_var(ENV_TIMEOUT)? {
            o.timeout = parse_timeout(&v).map_err(|reason| CommError::Env {
                var: ENV_TIMEOUT,
                value: v.clone(),
                reason,
            })?;
        }
        if let Some(v) = env_var(ENV_SHM_CAPACITY)? {
            o.shm_capacity = parse_bytes(&v).map_err(|reason| CommError::Env {
                var: ENV_SHM_CAPACITY,
                value: v.clone(),
                reason,
            })?;
        }
        Ok(o)
    }

    /// These options with another timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// Reads an environment variable; absent is `None`, non-UTF-8 is an error.
pub(crate) fn env_var(var: &'static str) -> Result<Option<String>, CommError> {
    match std::env::var(var) {
        Ok(v) => Ok(Some(v)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(v)) => Err(CommError::Env {
            var,
            value: v.to_string_lossy().into_owned(),
            reason: "not valid UTF-8".into(),
        }),
    }
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .trim()
        .parse()
        .map_err(|_| "expected a number of seconds, e.g. 60 or 0.5".to_string())?;
    if !(secs > 0.0 && secs <= 1e9) {
        return Err("the timeout must be positive and finite".into());
    }
    Ok(Duration::from_secs_f64(secs))
}

fn parse_bytes(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, 'k' | 'K')) => (&t[..i], 1usize << 10),
        Some((i, 'm' | 'M')) => (&t[..i], 1 << 20),
        Some((i, 'g' | 'G')) => (&t[..i], 1 << 30),
        _ => (t, 1),
    };
    let n: usize = num
        .trim()
        .parse()
        .map_err(|_| "expected a byte count such as 262144, 256K or 4M".to_string())?;
    n.checked_mul(mult)
        .filter(|&b| b > 0)
        .ok_or_else(|| "the capacity must be positive and fit in memory".to_string())
}

/// What a blocking call was doing, rendered only when an error needs it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum OpDesc {
    Send { dest: usize, tag: Tag },
    Recv { src: usize, tag: Tag },
    SendRecv { dest: usize, src: usize, tag: Tag },
    Barrier,
}

impl fmt::Display for OpDesc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            OpDesc::Send { dest, tag } => write!(f, "send to rank {dest} (tag {tag})"),
            OpDesc::Recv { src, tag } => write!(f, "recv from rank {src} (tag {tag})"),
            OpDesc::SendRecv { dest, src, tag } => {
                write!(
                    f,
                    "sendrecv to rank {dest} / from rank {src} (recv tag {tag})"
                )
            }
            OpDesc::Barrier => f.write_str("barrier"),
        }
    }
}

/// `start + timeout`, saturating far in the future for huge timeouts.
pub(crate) fn deadline(start: std::time::Instant, timeout: Duration) -> std::time::Instant {
    start
        .checked_add(timeout)
        .unwrap_or_else(|| start + Duration::from_secs(100 * 365 * 86_400))
}

/// Checks that `rank` is a valid peer of a communicator of `size` ranks.
pub(crate) fn check_rank(rank: usize, size: usize) -> Result<(), CommError> {
    if rank < size {
        Ok(())
    } else {
        Err(CommError::InvalidRank { rank, size })
    }
}

/// Opens this process's communicator for a multi-process backend.
///
/// * `Shm`: [`shm::ShmComm::from_env`] (rank, count and job from the
///   `HALOMD_RANK`, `HALOMD_NRANKS` and `HALOMD_JOB` variables).
/// * `Mpi`: `mpi::MpiComm::init` (needs the `mpi` feature).
/// * `Threads`: a one-rank communicator; several thread ranks are started
///   with [`threads::run`] instead.
pub fn init_process(kind: CommKind, opts: &CommOptions) -> Result<Box<dyn Comm>, CommError> {
    kind.ensure_available()?;
    match kind {
        CommKind::Threads => Ok(Box::new(threads::ThreadsComm::single(opts))),
        #[cfg(target_os = "linux")]
        CommKind::Shm => Ok(Box::new(shm::ShmComm::from_env(opts)?)),
        #[cfg(feature = "mpi")]
        CommKind::Mpi => Ok(Box::new(mpi::MpiComm::init(opts)?)),
        #[allow(unreachable_patterns)]
        other => Err(CommError::Unavailable(format!(
            "backend {other} is not built in"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_parses_and_rejects() {
        assert_eq!("threads".parse::<CommKind>().unwrap(), CommKind::Threads);
        assert_eq!(" SHM ".parse::<CommKind>().unwrap(), CommKind::Shm);
        let err = "tcp".parse::<CommKind>().unwrap_err();
        assert!(err.to_string().contains("\"tcp\""), "{err}");
        let mpi = "mpi".parse::<CommKind>();
        if cfg!(feature = "mpi") {
            assert_eq!(mpi.unwrap(), CommKind::Mpi);
        } else {
            let msg = mpi.unwrap_err().to_string();
            assert!(msg.contains("--features mpi"), "{msg}");
        }
    }

    #[test]
    fn tags_are_range_checked() {
        assert_eq!(Tag::new(0).unwrap().value(), 0);
        assert!(Tag::new(Tag::USER_LIMIT - 1).is_ok());
        let err = Tag::new(Tag::USER_LIMIT).unwrap_err();
        assert!(matches!(err, CommError::InvalidTag { tag } if tag == Tag::USER_LIMIT));
        assert_eq!(Tag::BCAST.to_string(), "broadcast");
        assert!(Tag::from_wire(Tag::MAX + 1).is_none());
    }

    #[test]
    fn env_values_parse() {
        assert_eq!(parse_timeout("2.5").unwrap(), Duration::from_millis(2500));
        assert!(parse_timeout("0").is_err());
        assert!(parse_timeout("-1").is_err());
        assert!(parse_timeout("inf").is_err());
        assert!(parse_timeout("soon").is_err());
        assert_eq!(parse_bytes("4096").unwrap(), 4096);
        assert_eq!(parse_bytes("256K").unwrap(), 256 << 10);
        assert_eq!(parse_bytes("4m").unwrap(), 4 << 20);
        assert!(parse_bytes("0").is_err());
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("99999999999999999999G").is_err());
    }

    #[test]
    fn pod_recv_buffers_check_lengths() {
        let mut v: Vec<f64> = Vec::new();
        let mut b = PodVec(&mut v);
        assert!(b.set_len_bytes(12).is_err());
        b.set_len_bytes(16).unwrap();
        b.bytes_mut().copy_from_slice(&[0u8; 16]);
        assert_eq!(v, vec![0.0, 0.0]);
        let mut a = [1u32; 3];
        let mut s = PodSlice(&mut a);
        assert!(s.set_len_bytes(8).is_err());
        s.set_len_bytes(12).unwrap();
    }
}
