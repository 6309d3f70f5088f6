//! Ranks as threads of one process.
//!
//! [`run`] starts one scoped thread per rank and hands each a
//! [`ThreadsComm`]. Each rank owns a mailbox (a queue behind a mutex, with a
//! condvar); a send appends to the destination's mailbox and never blocks,
//! a receive takes the first queued message with the wanted source and tag.
//! A shared status table records which ranks are running, finished or
//! failed (a panicking rank is marked failed while it unwinds), so a rank
//! waiting on a dead peer wakes up with [`CommError::PeerLost`] at once.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::{check_rank, Comm, CommError, CommKind, CommOptions, OpDesc, RankList, RecvBuf, Tag};

/// The most ranks [`run`] starts.
pub const MAX_RANKS: usize = 4096;

/// One thread rank's communicator.
pub struct ThreadsComm {
    rank: usize,
    shared: Arc<Shared>,
    timeout: Duration,
    barrier_epoch: Cell<u64>,
    poisoned: RefCell<Option<String>>,
}

struct Shared {
    boxes: Vec<Mailbox>,
    status: Mutex<Status>,
    status_cv: Condvar,
}

#[derive(Default)]
struct Mailbox {
    queue: Mutex<VecDeque<Envelope>>,
    cv: Condvar,
}

struct Envelope {
    src: usize,
    tag: Tag,
    data: Vec<u8>,
}

struct Status {
    ranks: Vec<RankState>,
    barrier: Vec<u64>,
}

#[derive(Clone)]
enum RankState {
    Running,
    Done,
    Failed { blamed: usize, reason: String },
}

/// Locks a mutex, ignoring poisoning: no code panics while holding these
/// locks, and a panicking rank must not take the others down with it.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn new(n: usize) -> Shared {
        Shared {
            boxes: (0..n).map(|_| Mailbox::default()).collect(),
            status: Mutex::new(Status {
                ranks: vec![RankState::Running; n],
                barrier: vec![0; n],
            }),
            status_cv: Condvar::new(),
        }
    }

    fn set_state(&self, rank: usize, state: RankState) {
        {
            let mut st = lock(&self.status);
            if matches!(st.ranks[rank], RankState::Failed { .. }) {
                return;
            }
            st.ranks[rank] = state;
        }
        // Taking each mailbox lock before notifying orders this after any
        // waiter's check-then-wait, so no waiter misses the change.
        self.status_cv.notify_all();
        for b in &self.boxes {
            drop(lock(&b.queue));
            b.cv.notify_all();
        }
    }

    /// The error for waiting on `peer`, if it can no longer answer.
    fn peer_gone(&self, st: &Status, peer: usize, op: OpDesc) -> Option<CommError> {
        let (rank, detail) = match &st.ranks[peer] {
            RankState::Running => return None,
            RankState::Done => (
                peer,
                format!("rank {peer} finished and closed its communicator"),
            ),
            RankState::Failed { blamed, reason } if *blamed == peer => {
                (peer, format!("rank {peer} failed: {reason}"))
            }
            RankState::Failed { blamed, reason } => {
                (*blamed, format!("reported by rank {peer}: {reason}"))
            }
        };
        Some(CommError::PeerLost {
            op: op.to_string(),
            rank,
            detail,
        })
    }
}

/// Runs `f` on `n` thread ranks and returns their results in rank order.
///
/// If a rank panics, the ranks waiting on it fail with
/// [`CommError::PeerLost`], and `run` returns [`CommError::RankPanicked`]
/// for the lowest panicked rank once all threads have ended.
pub fn run<R, F>(n: usize, opts: &CommOptions, f: F) -> Result<Vec<R>, CommError>
where
    R: Send,
    F: Fn(ThreadsComm) -> R + Sync,
{
    if n == 0 || n > MAX_RANKS {
        return Err(CommError::InvalidSize {
            nranks: n,
            max: MAX_RANKS,
            backend: "threads",
        });
    }
    let shared = Arc::new(Shared::new(n));
    let joined: Vec<Result<std::thread::Result<R>, std::io::Error>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|rank| {
                let comm = ThreadsComm::new(rank, Arc::clone(&shared), opts.timeout);
                let f = &f;
                // A failed spawn drops `comm`, which marks the rank finished,
                // so the others fail fast instead of waiting for it.
                std::thread::Builder::new()
                    .name(format!("rank {rank}"))
                    .spawn_scoped(s, move || f(comm))
            })
            .collect();
        handles.into_iter().map(|h| h.map(|h| h.join())).collect()
    });
    let mut out = Vec::with_capacity(n);
    let mut first_err = None;
    for (rank, j) in joined.into_iter().enumerate() {
        match j {
            Ok(Ok(r)) => out.push(r),
            Ok(Err(payload)) => {
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "non-string panic payload".into());
                first_err.get_or_insert(CommError::RankPanicked { rank, message });
            }
            Err(source) => {
                first_err.get_or_insert(CommError::Io {
                    context: format!("spawning the thread of rank {rank}"),
                    source,
                });
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

impl ThreadsComm {
    fn new(rank: usize, shared: Arc<Shared>, timeout: Duration) -> ThreadsComm {
        ThreadsComm {
            rank,
            shared,
            timeout,
            barrier_epoch: Cell::new(0),
            poisoned: RefCell::new(None),
        }
    }

    /// A communicator of one rank (every collective is then a copy).
    pub fn single(opts: &CommOptions) -> ThreadsComm {
        ThreadsComm::new(0, Arc::new(Shared::new(1)), opts.timeout)
    }

    fn check_usable(&self) -> Result<(), CommError> {
        match &*self.poisoned.borrow() {
            Some(msg) => Err(CommError::Poisoned(msg.clone())),
            None => Ok(()),
        }
    }

    /// Poisons the communicator with `err` unless it is a mere argument error.
    fn poison(&self, err: CommError) -> CommError {
        if !err.is_argument_error() {
            self.fail(&err);
        }
        err
    }

    fn timeout_error(&self, op: OpDesc, peers: Vec<usize>, start: Instant) -> CommError {
        CommError::Timeout {
            op: op.to_string(),
            peers: RankList(peers),
            waited: start.elapsed(),
        }
    }
}

impl Comm for ThreadsComm {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.shared.boxes.len()
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    fn kind(&self) -> CommKind {
        CommKind::Threads
    }

    fn fail(&self, error: &CommError) {
        let reason = error.to_string();
        self.poisoned.borrow_mut().get_or_insert(reason.clone());
        let blamed = error.blamed_rank().unwrap_or(self.rank);
        self.shared
            .set_state(self.rank, RankState::Failed { blamed, reason });
    }

    fn barrier(&self) -> Result<(), CommError> {
        self.check_usable()?;
        let epoch = self.barrier_epoch.get() + 1;
        self.barrier_epoch.set(epoch);
        let start = Instant::now();
        let deadline = crate::deadline(start, self.timeout);
        let mut st = lock(&self.shared.status);
        st.barrier[self.rank] = epoch;
        self.shared.status_cv.notify_all();
        loop {
            let missing: Vec<usize> = (0..self.size())
                .filter(|&r| st.barrier[r] < epoch)
                .collect();
            if missing.is_empty() {
                return Ok(());
            }
            if let Some(e) = missing
                .iter()
                .find_map(|&r| self.shared.peer_gone(&st, r, OpDesc::Barrier))
            {
                drop(st);
                return Err(self.poison(e));
            }
            let now = Instant::now();
            if now >= deadline {
                drop(st);
                let e = self.timeout_error(OpDesc::Barrier, missing, start);
                return Err(self.poison(e));
            }
            st = self
                .shared
                .status_cv
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn send_msg(&self, dest: usize, tag: Tag, data: &[u8]) -> Result<(), CommError> {
        check_rank(dest, self.size())?;
        self.check_usable()?;
        let mb = &self.shared.boxes[dest];
        lock(&mb.queue).push_back(Envelope {
            src: self.rank,
            tag,
            data: data.to_vec(),
        });
        mb.cv.notify_all();
        Ok(())
    }

    fn recv_msg(&self, src: usize, tag: Tag, buf: &mut dyn RecvBuf) -> Result<usize, CommError> {
        check_rank(src, self.size())?;
        self.check_usable()?;
        let op = OpDesc::Recv { src, tag };
        let start = Instant::now();
        let deadline = crate::deadline(start, self.timeout);
        let mb = &self.shared.boxes[self.rank];
        let mut q = lock(&mb.queue);
        let env = loop {
            if let Some(i) = q.iter().position(|e| e.src == src && e.tag == tag) {
                break q.remove(i).expect("index from position is in range");
            }
            if src == self.rank {
                return Err(CommError::Usage(format!(
                    "{op}: no message to self is queued; send to self before receiving"
                )));
            }
            let gone = self.shared.peer_gone(&lock(&self.shared.status), src, op);
            if let Some(e) = gone {
                drop(q);
                return Err(self.poison(e));
            }
            let now = Instant::now();
            if now >= deadline {
                drop(q);
                return Err(self.poison(self.timeout_error(op, vec![src], start)));
            }
            q = mb
                .cv
                .wait_timeout(q, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        };
        drop(q);
        let len = env.data.len();
        if let Err(detail) = buf.set_len_bytes(len) {
            let op = op.to_string();
            return Err(self.poison(CommError::Length { op, detail }));
        }
        buf.bytes_mut().copy_from_slice(&env.data);
        Ok(len)
    }
}

impl Drop for ThreadsComm {
    fn drop(&mut self) {
        let state = if std::thread::panicking() {
            RankState::Failed {
                blamed: self.rank,
                reason: "panicked".into(),
            }
        } else {
            RankState::Done
        };
        self.shared.set_state(self.rank, state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CommExt;

    fn opts(ms: u64) -> CommOptions {
        CommOptions::default().with_timeout(Duration::from_millis(ms))
    }

    #[test]
    fn rank_counts_are_bounded() {
        let err = run(0, &opts(100), |_| ()).unwrap_err();
        assert!(
            matches!(err, CommError::InvalidSize { nranks: 0, .. }),
            "{err}"
        );
        let err = run(MAX_RANKS + 1, &opts(100), |_| ()).unwrap_err();
        assert!(matches!(err, CommError::InvalidSize { .. }), "{err}");
    }

    #[test]
    fn panicking_rank_is_reported_and_does_not_hang_others() {
        let start = Instant::now();
        let err = run(3, &opts(10_000), |comm| {
            if comm.rank() == 1 {
                panic!("deliberate test panic");
            }
            let mut buf = Vec::new();
            comm.recv(1, 0, &mut buf)
        })
        .unwrap_err();
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
        match err {
            CommError::RankPanicked { rank, message } => {
                assert_eq!(rank, 1);
                assert!(message.contains("deliberate"), "{message}");
            }
            other => panic!("unexpected error {other}"),
        }
    }

    #[test]
    fn waiters_on_a_panicked_rank_get_peer_lost() {
        let results = std::sync::Mutex::new(Vec::new());
        let _ = run(3, &opts(10_000), |comm| {
            if comm.rank() == 1 {
                panic!("deliberate test panic");
            }
            // Rank 2 waits on rank 0, which waits on rank 1: the loss must
            // cascade and still name rank 1.
            let mut buf = Vec::new();
            let r = if comm.rank() == 0 {
                comm.recv(1, 0, &mut buf)
            } else {
                comm.recv(0, 0, &mut buf)
            };
            lock(&results).push((comm.rank(), r));
        });
        let results = results.into_inner().unwrap();
        assert_eq!(results.len(), 2);
        for (rank, r) in results {
            match r {
                Err(CommError::PeerLost { rank: lost, .. }) => {
                    assert_eq!(lost, 1, "seen by {rank}")
                }
                other => panic!("rank {rank}: unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn hung_peer_times_out_naming_it() {
        let out = run(2, &opts(200), |comm| {
            if comm.rank() == 1 {
                std::thread::sleep(Duration::from_millis(600));
                return None;
            }
            let start = Instant::now();
            Some((comm.barrier(), start.elapsed()))
        })
        .unwrap();
        let (r, waited) = out[0].as_ref().unwrap();
        let err = r.as_ref().unwrap_err();
        assert!(
            matches!(err, CommError::Timeout { peers, .. } if peers.0 == vec![1]),
            "{err}"
        );
        assert!(err.to_string().contains("rank(s) 1"), "{err}");
        assert!(*waited >= Duration::from_millis(200) && *waited < Duration::from_millis(550));
    }

    #[test]
    fn errors_poison_and_argument_errors_do_not() {
        let out = run(2, &opts(100), |comm| {
            let bad_rank = comm.send(7, 0, &[]).unwrap_err();
            let bad_tag = comm.send(0, Tag::USER_LIMIT, &[]).unwrap_err();
            let self_recv = comm.recv(comm.rank(), 3, &mut Vec::new()).unwrap_err();
            // Still usable after argument errors:
            let sum = comm.allreduce_one(1u64, crate::Op::Sum).unwrap();
            (bad_rank, bad_tag, self_recv, sum)
        })
        .unwrap();
        for (bad_rank, bad_tag, self_recv, sum) in out {
            assert!(matches!(
                bad_rank,
                CommError::InvalidRank { rank: 7, size: 2 }
            ));
            assert!(matches!(bad_tag, CommError::InvalidTag { .. }));
            assert!(matches!(self_recv, CommError::Usage(_)), "{self_recv}");
            assert_eq!(sum, 2);
        }
        let out = run(2, &opts(100), |comm| {
            if comm.rank() == 0 {
                let first = comm.recv(1, 0, &mut Vec::new()).unwrap_err();
                let second = comm.barrier().unwrap_err();
                Some((first, second))
            } else {
                std::thread::sleep(Duration::from_millis(300));
                None
            }
        })
        .unwrap();
        let (first, second) = out[0].as_ref().unwrap();
        assert!(matches!(first, CommError::Timeout { .. }), "{first}");
        assert!(matches!(second, CommError::Poisoned(_)), "{second}");
    }

    #[test]
    fn huge_timeouts_do_not_overflow() {
        let o = CommOptions::default().with_timeout(Duration::MAX);
        let out = run(2, &o, |comm| {
            comm.barrier().unwrap();
            comm.allreduce_one(comm.rank() as u64, crate::Op::Max)
                .unwrap()
        })
        .unwrap();
        assert_eq!(out, vec![1, 1]);
    }

    #[test]
    fn single_rank_collectives_are_copies() {
        let c = ThreadsComm::single(&CommOptions::default());
        let mut v = vec![1.5f64, -2.0];
        c.allreduce(&mut v, crate::Op::Sum).unwrap();
        assert_eq!(v, vec![1.5, -2.0]);
        let g = c.gather(0, &[3u32]).unwrap().unwrap();
        assert_eq!(g, vec![vec![3]]);
        c.barrier().unwrap();
    }
}
