//! Ranks as processes on one machine, sharing a POSIX shared-memory segment.
//!
//! # Bootstrap
//!
//! Every rank calls [`ShmComm::init`] with the same job name and rank
//! count (or [`ShmComm::from_env`], which reads `HALOMD_JOB`, `HALOMD_RANK`
//! and `HALOMD_NRANKS`, as set by [`Job`]). Rank 0 creates
//! `/dev/shm/halomd-<job>` with `O_EXCL`, sizes it, reserves its pages with
//! `fallocate` (so a full `/dev/shm` is a clear error now rather than a
//! `SIGBUS` later), writes its pid into the header and publishes a magic
//! number. The other ranks wait (up to the timeout) for the segment to
//! appear. Each rank claims its slot by writing its pid and process start
//! time, and the last one to attach unlinks the name: from then on nothing
//! is left in `/dev/shm`, however the processes end. Until then, every
//! error path and `Drop` unlink it.
//!
//! A segment whose creator process is dead is a leftover of a crashed run:
//! rank 0 removes it and starts afresh, the other ranks wait for the new one.
//! A segment whose creator is alive belongs to a running job, and rank 0
//! stops with "job name in use".
//!
//! # Layout
//!
//! A header; a 512-byte block per rank (pid, start time, state, barrier
//! epoch, a futex doorbell, and the reason it failed); then, for every
//! ordered pair of distinct ranks, a head/tail counter pair (on separate
//! cache lines) and a byte ring of [`CommOptions::shm_capacity`] bytes.
//!
//! # Messages
//!
//! A message is a 16-byte frame header (tag, marker, length) followed by
//! the payload, written into the sender→receiver ring as a byte stream:
//! the sender copies what fits and publishes the new head (`Release`); the
//! receiver copies out what is there and publishes the new tail. Messages
//! of any size stream through a ring of any size. Frames with another tag
//! than the one asked for are moved to a local queue. Messages to oneself
//! go straight to that queue.
//!
//! # Waiting and failure detection
//!
//! A waiting rank retries for a few microseconds, then sleeps on its
//! doorbell, a futex word that publishers bump (only when the waiter has
//! said it sleeps). Every 10 ms, and on every error path, the waiter checks
//! the peers it waits for: a peer whose process is gone (or a zombie, or a
//! recycled pid with another start time) or that marked itself failed or
//! finished makes the wait fail with [`CommError::PeerLost`]. So a killed
//! rank is noticed within milliseconds, a hung one within the timeout.

mod job;
mod segment;

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::sync::atomic::{fence, Ordering};
use std::time::{Duration, Instant};

pub use job::{unique_job_name, Job, JobReport, RankExit};
pub use segment::{remove_segment, segment_path, MAX_RANKS};

use segment::{process_alive, Segment, State};

use crate::{
    check_rank, env_var, Comm, CommError, CommKind, CommOptions, OpDesc, RankList, RecvBuf, Tag,
    ENV_JOB, ENV_NRANKS, ENV_RANK,
};

/// How often a waiter checks that the peers it waits for are alive.
const LIVENESS_PERIOD: Duration = Duration::from_millis(10);
/// How long a waiter retries in a tight loop, and then with `sched_yield`,
/// before it sleeps on its futex. Kept short: on an oversubscribed machine a
/// spinning waiter takes the core its peer needs (measured on 2 busy
/// cores, a 20 µs spin made 8-byte ping-pongs 3-5x slower than this).
const SPIN: Duration = Duration::from_micros(2);
const YIELD_UNTIL: Duration = Duration::from_micros(10);
/// Bytes of the frame header: tag (u32), marker (u32), length (u64).
const FRAME_HEADER: usize = 16;
/// Written into every frame header, to catch a desynchronised stream.
const FRAME_MARK: u32 = 0x464F_4C48; // "HLOF"

/// A communicator whose ranks are processes sharing memory.
pub struct ShmComm {
    seg: Segment,
    rank: usize,
    timeout: Duration,
    local: RefCell<Local>,
    barrier_epoch: Cell<u64>,
    poisoned: RefCell<Option<String>>,
}

struct Local {
    /// Complete messages per source not yet asked for, in arrival order.
    queues: Vec<VecDeque<(Tag, Vec<u8>)>>,
    /// Where each inbound stream stands.
    partial: Vec<Partial>,
}

/// The state of one inbound stream between frames or inside one.
enum Partial {
    /// Reading a frame header.
    Header { buf: [u8; FRAME_HEADER], got: usize },
    /// Copying the payload of the frame the current call asked for into its buffer.
    Wanted { len: usize, got: usize },
    /// Copying a payload nobody has asked for yet into the local queue.
    Queued { tag: Tag, data: Vec<u8>, got: usize },
}

impl Partial {
    fn header() -> Partial {
        Partial::Header {
            buf: [0; FRAME_HEADER],
            got: 0,
        }
    }
}

/// An outbound message in progress.
struct Tx<'a> {
    dest: usize,
    header: [u8; FRAME_HEADER],
    data: &'a [u8],
    sent: usize,
}

impl<'a> Tx<'a> {
    fn new(dest: usize, tag: Tag, data: &'a [u8]) -> Tx<'a> {
        let mut header = [0u8; FRAME_HEADER];
        header[0..4].copy_from_slice(&tag.value().to_le_bytes());
        header[4..8].copy_from_slice(&FRAME_MARK.to_le_bytes());
        header[8..16].copy_from_slice(&(data.len() as u64).to_le_bytes());
        Tx {
            dest,
            header,
            data,
            sent: 0,
        }
    }

    fn done(&self) -> bool {
        self.sent == FRAME_HEADER + self.data.len()
    }
}

/// What one pass over an inbound stream achieved.
#[derive(Default)]
struct RxPass {
    /// The asked-for message arrived in the caller's buffer (its length).
    received: Option<usize>,
    /// A message with the asked-for tag was completed into the queue.
    queued_wanted: bool,
}

impl ShmComm {
    /// Joins (rank > 0) or creates (rank 0) the job's segment and waits
    /// until all `nranks` ranks have attached.
    pub fn init(
        job: &str,
        rank: usize,
        nranks: usize,
        opts: &CommOptions,
    ) -> Result<ShmComm, CommError> {
        let seg = Segment::bootstrap(job, rank, nranks, opts)?;
        let n = nranks;
        Ok(ShmComm {
            seg,
            rank,
            timeout: opts.timeout,
            local: RefCell::new(Local {
                queues: (0..n).map(|_| VecDeque::new()).collect(),
                partial: (0..n).map(|_| Partial::header()).collect(),
            }),
            barrier_epoch: Cell::new(0),
            poisoned: RefCell::new(None),
        })
    }

    /// [`ShmComm::init`] with the job, rank and count from `HALOMD_JOB`,
    /// `HALOMD_RANK` and `HALOMD_NRANKS`.
    pub fn from_env(opts: &CommOptions) -> Result<ShmComm, CommError> {
        let get = |var: &'static str| -> Result<String, CommError> {
            env_var(var)?.ok_or_else(|| CommError::Env {
                var,
                value: String::new(),
                reason: "not set; the shm backend needs HALOMD_JOB, HALOMD_RANK and \
                         HALOMD_NRANKS (halo_comm::shm::Job sets them)"
                    .into(),
            })
        };
        let num = |var: &'static str| -> Result<usize, CommError> {
            let v = get(var)?;
            v.trim().parse().map_err(|_| CommError::Env {
                var,
                value: v.clone(),
                reason: "expected a non-negative integer".into(),
            })
        };
        let job = get(ENV_JOB)?;
        ShmComm::init(&job, num(ENV_RANK)?, num(ENV_NRANKS)?, opts)
    }

    /// The job name.
    pub fn job(&self) -> &str {
        self.seg.job()
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

    /// Takes the oldest queued message from `src` with `tag`.
    fn take_queued(&self, src: usize, tag: Tag) -> Option<Vec<u8>> {
        let mut local = self.local.borrow_mut();
        let q = &mut local.queues[src];
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

    /// Writes as much of `tx` into its ring as fits; returns whether it wrote anything.
    fn tx_step(&self, tx: &mut Tx<'_>) -> bool {
        let (head, tail) = self.seg.channel(self.rank, tx.dest);
        let h = head.load(Ordering::Relaxed);
        let t = tail.load(Ordering::Acquire);
        let cap = self.seg.capacity();
        let free = cap - (h - t) as usize;
        let total = FRAME_HEADER + tx.data.len();
        // Quarter-ring chunks let the receiver copy out while we copy in.
        let n = free.min(total - tx.sent).min((cap / 4).max(4096));
        if n == 0 {
            return false;
        }
        let ring = self.seg.ring(self.rank, tx.dest);
        let (mut s, end, mut pos) = (tx.sent, tx.sent + n, h);
        if s < FRAME_HEADER {
            let k = end.min(FRAME_HEADER) - s;
            self.seg.ring_write(ring, pos, &tx.header[s..s + k]);
            s += k;
            pos += k as u64;
        }
        if s < end {
            self.seg
                .ring_write(ring, pos, &tx.data[s - FRAME_HEADER..end - FRAME_HEADER]);
        }
        head.store(h + n as u64, Ordering::Release);
        tx.sent = end;
        self.seg.notify(tx.dest);
        true
    }

    /// Reads what has arrived from `src`. With `want`, stops after the first
    /// frame with that tag (delivered into the buffer or queued); without,
    /// drains everything into the queue.
    fn rx_step(
        &self,
        op: OpDesc,
        src: usize,
        mut want: Option<(Tag, &mut dyn RecvBuf)>,
    ) -> Result<RxPass, CommError> {
        let (head, tail) = self.seg.channel(src, self.rank);
        let t0 = tail.load(Ordering::Relaxed);
        let h = head.load(Ordering::Acquire);
        let mut pass = RxPass::default();
        if h == t0 {
            return Ok(pass);
        }
        let ring = self.seg.ring(src, self.rank);
        let mut pos = t0;
        let mut local = self.local.borrow_mut();
        let Local { queues, partial } = &mut *local;
        let st = &mut partial[src];
        while pos < h && pass.received.is_none() && !pass.queued_wanted {
            let avail = (h - pos) as usize;
            match st {
                Partial::Header { buf, got } => {
                    let k = avail.min(FRAME_HEADER - *got);
                    self.seg.ring_read(ring, pos, &mut buf[*got..*got + k]);
                    pos += k as u64;
                    *got += k;
                    if *got < FRAME_HEADER {
                        continue;
                    }
                    let word = |i: usize| u32::from_le_bytes(buf[i..i + 4].try_into().unwrap());
                    let len = u64::from_le_bytes(buf[8..16].try_into().unwrap());
                    let tag = Tag::from_wire(word(0));
                    let (Some(tag), FRAME_MARK, Ok(len)) = (tag, word(4), usize::try_from(len))
                    else {
                        return Err(self.poison(CommError::Usage(format!(
                            "{op}: corrupt frame header in the stream from rank {src} \
                             (were two jobs started with the same name?)"
                        ))));
                    };
                    match &mut want {
                        Some((wt, rb)) if *wt == tag => {
                            if let Err(detail) = rb.set_len_bytes(len) {
                                let op = op.to_string();
                                return Err(self.poison(CommError::Length { op, detail }));
                            }
                            *st = Partial::Wanted { len, got: 0 };
                        }
                        _ => {
                            *st = Partial::Queued {
                                tag,
                                data: vec![0; len],
                                got: 0,
                            }
                        }
                    }
                }
                Partial::Wanted { len, got } => {
                    let Some((_, rb)) = &mut want else {
                        return Err(self.poison(CommError::Usage(format!(
                            "{op}: stream from rank {src} was left inside a message \
                             by an earlier failed call"
                        ))));
                    };
                    let k = avail.min(*len - *got);
                    self.seg
                        .ring_read(ring, pos, &mut rb.bytes_mut()[*got..*got + k]);
                    pos += k as u64;
                    *got += k;
                }
                Partial::Queued { data, got, .. } => {
                    let k = avail.min(data.len() - *got);
                    self.seg.ring_read(ring, pos, &mut data[*got..*got + k]);
                    pos += k as u64;
                    *got += k;
                }
            }
            // A payload may be complete (also right after a header, when empty).
            match st {
                Partial::Wanted { len, got } if got == len => {
                    pass.received = Some(*len);
                    *st = Partial::header();
                }
                Partial::Queued { tag, data, got } if *got == data.len() => {
                    let tag = *tag;
                    pass.queued_wanted = want.as_ref().is_some_and(|(wt, _)| *wt == tag);
                    queues[src].push_back((tag, std::mem::take(data)));
                    *st = Partial::header();
                }
                _ => {}
            }
        }
        if pos != t0 {
            tail.store(pos, Ordering::Release);
            self.seg.notify(src);
        }
        Ok(pass)
    }

    /// Repeats `step` until it reports completion, sleeping on this rank's
    /// futex in between; `step` lists the ranks it still waits for.
    fn block_on(
        &self,
        op: OpDesc,
        mut step: impl FnMut(&mut Vec<usize>) -> Result<bool, CommError>,
    ) -> Result<(), CommError> {
        let doorbell = self.seg.doorbell(self.rank);
        let sleeping = self.seg.sleeping(self.rank);
        let mut waiting = Vec::new();
        let start = Instant::now();
        let deadline = crate::deadline(start, self.timeout);
        let mut next_check = start + LIVENESS_PERIOD;
        loop {
            let seq = doorbell.load(Ordering::Acquire);
            waiting.clear();
            if step(&mut waiting)? {
                return Ok(());
            }
            let now = Instant::now();
            if now - start < SPIN {
                std::hint::spin_loop();
                continue;
            }
            if now - start < YIELD_UNTIL {
                std::thread::yield_now();
                continue;
            }
            if now >= next_check || now >= deadline {
                for &p in &waiting {
                    if let Err(e) = self.check_peer(p, op) {
                        // The peer may have finished its part before leaving.
                        waiting.clear();
                        if step(&mut waiting)? {
                            return Ok(());
                        }
                        return Err(self.poison(e));
                    }
                }
                next_check = now + LIVENESS_PERIOD;
            }
            if now >= deadline {
                return Err(self.poison(CommError::Timeout {
                    op: op.to_string(),
                    peers: RankList(waiting),
                    waited: now - start,
                }));
            }
            // Announce the sleep, then look once more: a publisher either
            // sees the flag and rings, or published before our last look.
            sleeping.store(1, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            waiting.clear();
            let done = step(&mut waiting);
            if !matches!(done, Ok(false)) {
                sleeping.store(0, Ordering::Relaxed);
                return done.map(|_| ());
            }
            self.seg
                .futex_wait(doorbell, seq, next_check.min(deadline) - now);
            sleeping.store(0, Ordering::Relaxed);
        }
    }

    /// Fails if rank `p` can no longer take part.
    fn check_peer(&self, p: usize, op: OpDesc) -> Result<(), CommError> {
        let lost = |rank: usize, detail: String| CommError::PeerLost {
            op: op.to_string(),
            rank,
            detail,
        };
        match self.seg.state(p) {
            State::Attached => {
                let (pid, start) = self.seg.peer_process(p);
                if process_alive(pid, start) {
                    Ok(())
                } else {
                    Err(lost(
                        p,
                        format!("process {pid} of rank {p} has exited or was killed"),
                    ))
                }
            }
            State::Done => Err(lost(
                p,
                format!("rank {p} finished and closed its communicator"),
            )),
            State::Failed => {
                let (blamed, reason) = self.seg.failure(p);
                if blamed == p {
                    Err(lost(p, format!("rank {p} failed: {reason}")))
                } else {
                    Err(lost(blamed, format!("reported by rank {p}: {reason}")))
                }
            }
            State::Empty => Err(lost(p, format!("rank {p} is not attached"))),
        }
    }

    fn push_self(&self, tag: Tag, data: &[u8]) {
        self.local.borrow_mut().queues[self.rank].push_back((tag, data.to_vec()));
    }

    /// Receives from `src`, taking queued messages first.
    fn recv_inner(
        &self,
        op: OpDesc,
        src: usize,
        tag: Tag,
        buf: &mut dyn RecvBuf,
        mut tx: Option<&mut Tx<'_>>,
    ) -> Result<usize, CommError> {
        if let Some(data) = self.take_queued(src, tag) {
            let len = self.deliver(op, &data, buf)?;
            if let Some(tx) = tx {
                self.send_blocking(op, tx)?;
            }
            return Ok(len);
        }
        if src == self.rank {
            return Err(CommError::Usage(format!(
                "{op}: no message to self is queued; send to self before receiving"
            )));
        }
        let mut received = None;
        let mut queued = None;
        self.block_on(op, |waiting| {
            if let Some(tx) = tx.as_deref_mut() {
                if !tx.done() && !self.tx_step(tx) && tx.dest != src {
                    // Take in what the blocked destination sends us, so two
                    // ranks sending to each other both make progress.
                    self.rx_step(op, tx.dest, None)?;
                }
                if !tx.done() {
                    waiting.push(tx.dest);
                }
            }
            if received.is_none() && queued.is_none() {
                let pass = self.rx_step(op, src, Some((tag, &mut *buf)))?;
                if pass.queued_wanted {
                    queued = self.take_queued(src, tag);
                }
                received = pass.received;
                if received.is_none() && queued.is_none() {
                    waiting.push(src);
                }
            }
            Ok(waiting.is_empty())
        })?;
        match (received, queued) {
            (Some(len), _) => Ok(len),
            (None, Some(data)) => self.deliver(op, &data, buf),
            (None, None) => unreachable!("block_on returned before the receive completed"),
        }
    }

    fn send_blocking(&self, op: OpDesc, tx: &mut Tx<'_>) -> Result<(), CommError> {
        self.block_on(op, |waiting| {
            if !tx.done() && !self.tx_step(tx) {
                self.rx_step(op, tx.dest, None)?;
            }
            if !tx.done() {
                waiting.push(tx.dest);
            }
            Ok(tx.done())
        })
    }
}

impl Comm for ShmComm {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.seg.nranks()
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    fn kind(&self) -> CommKind {
        CommKind::Shm
    }

    fn fail(&self, error: &CommError) {
        let reason = error.to_string();
        self.poisoned.borrow_mut().get_or_insert(reason.clone());
        let blamed = error.blamed_rank().unwrap_or(self.rank);
        self.seg.mark_failed(self.rank, blamed, &reason);
    }

    fn barrier(&self) -> Result<(), CommError> {
        self.check_usable()?;
        let epoch = self.barrier_epoch.get() + 1;
        self.barrier_epoch.set(epoch);
        self.seg.set_barrier(self.rank, epoch);
        self.block_on(OpDesc::Barrier, |waiting| {
            waiting.extend((0..self.size()).filter(|&r| self.seg.barrier(r) < epoch));
            Ok(waiting.is_empty())
        })
    }

    fn send_msg(&self, dest: usize, tag: Tag, data: &[u8]) -> Result<(), CommError> {
        check_rank(dest, self.size())?;
        self.check_usable()?;
        if dest == self.rank {
            self.push_self(tag, data);
            return Ok(());
        }
        let mut tx = Tx::new(dest, tag, data);
        self.send_blocking(OpDesc::Send { dest, tag }, &mut tx)
    }

    fn recv_msg(&self, src: usize, tag: Tag, buf: &mut dyn RecvBuf) -> Result<usize, CommError> {
        check_rank(src, self.size())?;
        self.check_usable()?;
        self.recv_inner(OpDesc::Recv { src, tag }, src, tag, buf, None)
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
        check_rank(dest, self.size())?;
        check_rank(src, self.size())?;
        self.check_usable()?;
        let op = OpDesc::SendRecv {
            dest,
            src,
            tag: recv_tag,
        };
        if dest == self.rank {
            self.push_self(send_tag, data);
            return self.recv_inner(op, src, recv_tag, buf, None);
        }
        let mut tx = Tx::new(dest, send_tag, data);
        self.recv_inner(op, src, recv_tag, buf, Some(&mut tx))
    }
}

impl Drop for ShmComm {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.seg.mark_failed(self.rank, self.rank, "panicked");
        } else {
            self.seg.mark_done(self.rank);
        }
    }
}

#[cfg(test)]
mod tests;
