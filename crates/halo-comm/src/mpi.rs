//! Ranks as MPI processes, over the system MPI (cargo feature `mpi`).
//!
//! Start the program with `mpirun -n N prog` (as root in containers, add
//! `--allow-run-as-root --oversubscribe`) and call [`MpiComm::init`] once.
//! The world communicator is used as is; dropping the `MpiComm` finalises
//! MPI.
//!
//! Messages use `MPI_Isend` and `MPI_Improbe`/`MPI_Mrecv`, so a receive
//! learns the message length before it copies. Waits poll the request or
//! probe until the timeout, which gives the bounded waits of the other
//! backends:
//!
//! * a receive (nothing in flight yet) or a barrier that times out returns
//!   [`CommError::Timeout`];
//! * a *send* that times out cannot be abandoned, because MPI may still
//!   read the caller's buffer and sends cannot be cancelled portably; the
//!   rank then prints the error and calls `MPI_Abort`, and `mpirun` ends
//!   the job.
//!
//! MPI cannot tell which rank died, so this backend has no
//! [`CommError::PeerLost`]: with the default `MPI_ERRORS_ARE_FATAL`
//! handler, `mpirun` (OpenMPI or MPICH) tears the job down when a rank
//! dies, and otherwise the survivors time out. Messages to oneself never
//! enter MPI (they are queued locally), and the collectives are the
//! deterministic ones of [`crate::CommExt`], not `MPI_Allreduce`.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use mpi::environment::{Threading, Universe};
use mpi::point_to_point::{Message, Status};
use mpi::traits::*;

use crate::{check_rank, Comm, CommError, CommKind, CommOptions, OpDesc, RankList, RecvBuf, Tag};

/// One MPI rank's communicator over `MPI_COMM_WORLD`.
pub struct MpiComm {
    universe: Universe,
    rank: usize,
    size: usize,
    timeout: Duration,
    self_queue: RefCell<VecDeque<(Tag, Vec<u8>)>>,
    poisoned: RefCell<Option<String>>,
}

/// Polls with a short spin, then yielding, then with sleeps growing to 1 ms
/// (MPI progresses only inside MPI calls, so a waiter must keep polling).
struct Backoff {
    start: Instant,
    pause: Duration,
}

impl Backoff {
    fn new() -> Backoff {
        Backoff {
            start: Instant::now(),
            pause: Duration::from_micros(20),
        }
    }

    fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    fn snooze(&mut self) {
        let e = self.start.elapsed();
        if e < Duration::from_micros(100) {
            std::hint::spin_loop();
        } else if e < Duration::from_millis(5) {
            std::thread::yield_now();
        } else {
            std::thread::sleep(self.pause);
            self.pause = (self.pause * 2).min(Duration::from_millis(1));
        }
    }
}

fn mpi_tag(tag: Tag) -> mpi::Tag {
    // Tags are at most Tag::MAX (0x7FFF), the MPI standard's minimum MPI_TAG_UB.
    tag.value() as mpi::Tag
}

impl MpiComm {
    /// Initialises MPI (thread level `MPI_THREAD_SERIALIZED`) and wraps the world.
    pub fn init(opts: &CommOptions) -> Result<MpiComm, CommError> {
        let (universe, level) =
            mpi::initialize_with_threading(Threading::Serialized).ok_or_else(|| {
                CommError::Mpi("MPI was already initialised; create one MpiComm per process".into())
            })?;
        // Serialized lets the communicator move to another thread (it is
        // `Send`), as long as one thread at a time uses it (it is not `Sync`).
        if level < Threading::Serialized {
            return Err(CommError::Mpi(format!(
                "the MPI library only provides thread level {level:?}; \
                 halo-comm needs MPI_THREAD_SERIALIZED"
            )));
        }
        let world = universe.world();
        Ok(MpiComm {
            rank: world.rank() as usize,
            size: world.size() as usize,
            universe,
            timeout: opts.timeout,
            self_queue: RefCell::new(VecDeque::new()),
            poisoned: RefCell::new(None),
        })
    }

    fn check_usable(&self) -> Result<(), CommError> {
        match &*self.poisoned.borrow() {
            Some(msg) => Err(CommError::Poisoned(msg.clone())),
            None => Ok(()),
        }
    }

    fn poison(&self, err: CommError) -> CommError {
        if !err.is_argument_error() {
            self.fail(&err);
        }
        err
    }

    fn check_len(&self, op: OpDesc, len: usize) -> Result<(), CommError> {
        if len > i32::MAX as usize {
            return Err(CommError::Usage(format!(
                "{op}: message of {len} bytes exceeds the MPI count limit of {} bytes",
                i32::MAX
            )));
        }
        Ok(())
    }

    /// A send that outlived the timeout: MPI may still read the buffer, so
    /// the only safe way out is to end the job.
    fn abort_send(&self, op: OpDesc, peer: usize, waited: Duration) -> ! {
        let err = CommError::Timeout {
            op: op.to_string(),
            peers: RankList(vec![peer]),
            waited,
        };
        eprintln!(
            "halo-comm rank {}: {err}; aborting the MPI job because an MPI send \
             cannot be abandoned",
            self.rank
        );
        self.universe.world().abort(1)
    }

    fn take_self(&self, tag: Tag) -> Option<Vec<u8>> {
        let mut q = self.self_queue.borrow_mut();
        let i = q.iter().position(|(t, _)| *t == tag)?;
        q.remove(i).map(|(_, d)| d)
    }

    fn deliver(&self, op: OpDesc, data: &[u8], buf: &mut dyn RecvBuf) -> Result<usize, CommError> {
        if let Err(detail) = buf.set_len_bytes(data.len()) {
            let op = op.to_string();
            return Err(self.poison(CommError::Length { op, detail }));
        }
        buf.bytes_mut().copy_from_slice(data);
        Ok(data.len())
    }

    /// Receives a probed message into `buf` (or drops it if `buf` refuses its length).
    fn receive_matched(
        &self,
        op: OpDesc,
        msg: Message,
        status: Status,
        buf: &mut dyn RecvBuf,
    ) -> Result<usize, CommError> {
        let len = status.count(u8::equivalent_datatype()) as usize;
        if let Err(detail) = buf.set_len_bytes(len) {
            // A matched message must be received; take it and drop it.
            let mut scratch = vec![0u8; len];
            msg.matched_receive_into(&mut scratch[..]);
            let op = op.to_string();
            return Err(self.poison(CommError::Length { op, detail }));
        }
        msg.matched_receive_into(buf.bytes_mut());
        Ok(len)
    }

    fn self_recv(&self, op: OpDesc, tag: Tag, buf: &mut dyn RecvBuf) -> Result<usize, CommError> {
        match self.take_self(tag) {
            Some(d) => self.deliver(op, &d, buf),
            None => Err(CommError::Usage(format!(
                "{op}: no message to self is queued; send to self before receiving"
            ))),
        }
    }
}

impl Comm for MpiComm {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.size
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    fn kind(&self) -> CommKind {
        CommKind::Mpi
    }

    fn fail(&self, error: &CommError) {
        self.poisoned
            .borrow_mut()
            .get_or_insert_with(|| error.to_string());
    }

    fn barrier(&self) -> Result<(), CommError> {
        self.check_usable()?;
        let world = self.universe.world();
        let mut req = world.immediate_barrier();
        let mut b = Backoff::new();
        loop {
            match req.test() {
                Ok(_) => return Ok(()),
                Err(r) => req = r,
            }
            if b.elapsed() >= self.timeout {
                // No buffer is involved, so the request can be left behind.
                std::mem::forget(req);
                let others = (0..self.size).filter(|&r| r != self.rank).collect();
                return Err(self.poison(CommError::Timeout {
                    op: "barrier (MPI cannot tell which ranks are missing)".into(),
                    peers: RankList(others),
                    waited: b.elapsed(),
                }));
            }
            b.snooze();
        }
    }

    fn send_msg(&self, dest: usize, tag: Tag, data: &[u8]) -> Result<(), CommError> {
        check_rank(dest, self.size)?;
        self.check_usable()?;
        let op = OpDesc::Send { dest, tag };
        self.check_len(op, data.len())?;
        if dest == self.rank {
            self.self_queue.borrow_mut().push_back((tag, data.to_vec()));
            return Ok(());
        }
        let world = self.universe.world();
        let peer = world.process_at_rank(dest as i32);
        mpi::request::scope(|scope| {
            let mut req = peer.immediate_send_with_tag(scope, data, mpi_tag(tag));
            let mut b = Backoff::new();
            loop {
                match req.test() {
                    Ok(_) => return Ok(()),
                    Err(r) => req = r,
                }
                if b.elapsed() >= self.timeout {
                    self.abort_send(op, dest, b.elapsed());
                }
                b.snooze();
            }
        })
    }

    fn recv_msg(&self, src: usize, tag: Tag, buf: &mut dyn RecvBuf) -> Result<usize, CommError> {
        check_rank(src, self.size)?;
        self.check_usable()?;
        let op = OpDesc::Recv { src, tag };
        if src == self.rank {
            return self.self_recv(op, tag, buf);
        }
        let world = self.universe.world();
        let peer = world.process_at_rank(src as i32);
        let mut b = Backoff::new();
        loop {
            if let Some((msg, status)) = peer.immediate_matched_probe_with_tag(mpi_tag(tag)) {
                return self.receive_matched(op, msg, status, buf);
            }
            if b.elapsed() >= self.timeout {
                return Err(self.poison(CommError::Timeout {
                    op: op.to_string(),
                    peers: RankList(vec![src]),
                    waited: b.elapsed(),
                }));
            }
            b.snooze();
        }
    }

    fn sendrecv_msg(
        &self,
        dest: usize,
        send_tag: Tag,
        data: &[u8],
        src: usize,
        recv_tag: Tag,
        buf: &mut dyn RecvBuf,
    ) -> Result<usize, CommError> {
        check_rank(dest, self.size)?;
        check_rank(src, self.size)?;
        self.check_usable()?;
        let op = OpDesc::SendRecv {
            dest,
            src,
            tag: recv_tag,
        };
        self.check_len(op, data.len())?;
        if dest == self.rank {
            self.self_queue
                .borrow_mut()
                .push_back((send_tag, data.to_vec()));
            return self.recv_msg(src, recv_tag, buf);
        }
        if src == self.rank {
            self.send_msg(dest, send_tag, data)?;
            return self.self_recv(op, recv_tag, buf);
        }
        let world = self.universe.world();
        let to = world.process_at_rank(dest as i32);
        let from = world.process_at_rank(src as i32);
        mpi::request::scope(|scope| {
            let mut send = Some(to.immediate_send_with_tag(scope, data, mpi_tag(send_tag)));
            let mut received: Option<Result<usize, CommError>> = None;
            let mut b = Backoff::new();
            loop {
                if let Some(r) = send.take() {
                    if let Err(r) = r.test() {
                        send = Some(r);
                    }
                }
                if received.is_none() {
                    if let Some((msg, st)) =
                        from.immediate_matched_probe_with_tag(mpi_tag(recv_tag))
                    {
                        received = Some(self.receive_matched(op, msg, st, &mut *buf));
                    }
                }
                if send.is_none() {
                    if let Some(r) = received.take() {
                        return r;
                    }
                }
                if b.elapsed() >= self.timeout {
                    if send.is_some() {
                        self.abort_send(op, dest, b.elapsed());
                    }
                    return Err(self.poison(CommError::Timeout {
                        op: op.to_string(),
                        peers: RankList(vec![src]),
                        waited: b.elapsed(),
                    }));
                }
                b.snooze();
            }
        })
    }
}
