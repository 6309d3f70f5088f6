//! The shared-memory segment: layout, bootstrap, liveness and raw access.

use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use memmap2::{MmapOptions, MmapRaw};
use rustix::fs::{FallocateFlags, Mode};
use rustix::io::Errno;
use rustix::shm;
use rustix::thread::futex;

use crate::{CommError, CommOptions, RankList};

/// The most ranks the shm backend supports.
pub const MAX_RANKS: usize = 256;

const MAGIC: u64 = u64::from_le_bytes(*b"HALOSHM1");
const VERSION: u32 = 1;
const PAGE: usize = 4096;
const NAME_PREFIX: &str = "halomd-";

// Header fields (byte offsets).
const HEADER_BYTES: usize = 256;
const H_MAGIC: usize = 0;
const H_VERSION: usize = 8;
const H_NRANKS: usize = 12;
const H_CAPACITY: usize = 16;
const H_SIZE: usize = 24;
const H_CREATOR_PID: usize = 32;
const H_ATTACHED: usize = 36;
const H_CREATOR_START: usize = 40;

// Rank block fields; the doorbell, written by every publisher, has its own
// cache line.
const RANK_BLOCK: usize = 512;
const R_PID: usize = 0;
const R_STATE: usize = 4;
const R_START: usize = 8;
const R_BARRIER: usize = 16;
const R_BLAMED: usize = 24;
const R_REASON_LEN: usize = 28;
const R_DOORBELL: usize = 64;
const R_SLEEPING: usize = 68;
const R_REASON: usize = 128;
const REASON_MAX: usize = RANK_BLOCK - R_REASON;

// Channel block: head and tail on separate cache lines.
const CHANNEL_BLOCK: usize = 128;
const C_HEAD: usize = 0;
const C_TAIL: usize = 64;

/// A rank slot's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    Empty = 0,
    Attached = 1,
    Done = 2,
    Failed = 3,
}

/// Where everything lives in a segment for `n` ranks and ring capacity `cap`.
#[derive(Clone, Copy, Debug)]
struct Layout {
    n: usize,
    cap: usize,
    ranks: usize,
    channels: usize,
    rings: usize,
    size: usize,
}

impl Layout {
    fn new(n: usize, cap: usize) -> Option<Layout> {
        let pairs = n.checked_mul(n - 1)?;
        let ranks = HEADER_BYTES;
        let channels = ranks.checked_add(n.checked_mul(RANK_BLOCK)?)?;
        let rings = round_up(
            channels.checked_add(pairs.checked_mul(CHANNEL_BLOCK)?)?,
            PAGE,
        )?;
        let size = rings.checked_add(pairs.checked_mul(cap)?)?;
        (size <= isize::MAX as usize).then_some(Layout {
            n,
            cap,
            ranks,
            channels,
            rings,
            size,
        })
    }

    fn rank(&self, r: usize) -> usize {
        assert!(r < self.n);
        self.ranks + r * RANK_BLOCK
    }

    /// The index of the ordered pair `src → dst` (`src != dst`).
    fn pair(&self, src: usize, dst: usize) -> usize {
        assert!(src < self.n && dst < self.n && src != dst);
        src * (self.n - 1) + if dst < src { dst } else { dst - 1 }
    }
}

fn round_up(x: usize, to: usize) -> Option<usize> {
    x.checked_add(to - 1).map(|v| v / to * to)
}

/// The path of a job's segment (it exists only while the job bootstraps).
pub fn segment_path(job: &str) -> PathBuf {
    PathBuf::from(format!("/dev/shm/{NAME_PREFIX}{job}"))
}

fn shm_name(job: &str) -> String {
    format!("/{NAME_PREFIX}{job}")
}

fn bootstrap_error(job: &str, message: impl Into<String>) -> CommError {
    CommError::Bootstrap {
        job: job.to_string(),
        message: message.into(),
    }
}

fn check_job_name(job: &str) -> Result<(), CommError> {
    let ok = !job.is_empty()
        && job.len() <= 200
        && job
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && !job.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(bootstrap_error(
            job,
            "job names must be 1 to 200 characters of A-Z, a-z, 0-9, '.', '_', '-', \
             not starting with '.'",
        ))
    }
}

/// Removes a job's segment if one is left; returns whether there was one.
///
/// Only for a job known to be over (a launcher after its ranks exited).
pub fn remove_segment(job: &str) -> Result<bool, CommError> {
    check_job_name(job)?;
    match shm::unlink(shm_name(job).as_str()) {
        Ok(()) => Ok(true),
        Err(Errno::NOENT) => Ok(false),
        Err(e) => Err(CommError::Io {
            context: format!("removing {}", segment_path(job).display()),
            source: e.into(),
        }),
    }
}

/// This process's id and start time (in clock ticks since boot, 0 if unknown).
fn this_process() -> (u32, u64) {
    let pid = std::process::id();
    let start = std::fs::read("/proc/self/stat")
        .ok()
        .and_then(|b| parse_stat(&b))
        .map_or(0, |(_, s)| s);
    (pid, start)
}

/// The state letter and start time from a `/proc/<pid>/stat` line.
fn parse_stat(b: &[u8]) -> Option<(u8, u64)> {
    // The command name may contain spaces and parentheses; it ends at the last ')'.
    let close = b.iter().rposition(|&c| c == b')')?;
    let rest = std::str::from_utf8(&b[close + 1..]).ok()?;
    let mut fields = rest.split_ascii_whitespace();
    let state = *fields.next()?.as_bytes().first()?;
    // Field 22 of the line; the state was field 3.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// Whether process `pid`, started at `start` (0: unknown), still runs.
///
/// Zombies count as dead (a killed rank stays a zombie until its parent
/// reaps it), and so does a recycled pid with another start time.
pub(crate) fn process_alive(pid: u32, start: u64) -> bool {
    if pid == 0 {
        return false;
    }
    match std::fs::read(format!("/proc/{pid}/stat")) {
        Ok(b) => match parse_stat(&b) {
            Some((state, s)) => !matches!(state, b'Z' | b'X' | b'x') && (start == 0 || s == start),
            None => true,
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(_) => match rustix::process::Pid::from_raw(pid as i32) {
            Some(p) => !matches!(rustix::process::test_kill_process(p), Err(Errno::SRCH)),
            None => false,
        },
    }
}

/// A mapped segment and this rank's view of it.
pub(crate) struct Segment {
    job: String,
    name: String,
    fd: OwnedFd,
    map: MmapRaw,
    lay: Layout,
    /// The name may still refer to our segment, and removing it is ours to do.
    unlink_pending: bool,
    /// Peers' pids and start times, read once all ranks attached.
    peers: Vec<(u32, u64)>,
}

impl Segment {
    fn new(job: &str, fd: OwnedFd, map: MmapRaw, lay: Layout) -> Segment {
        Segment {
            job: job.to_string(),
            name: shm_name(job),
            fd,
            map,
            lay,
            unlink_pending: false,
            peers: Vec::new(),
        }
    }

    /// Creates or attaches to the segment of `job` and waits for all ranks.
    pub(crate) fn bootstrap(
        job: &str,
        rank: usize,
        nranks: usize,
        opts: &CommOptions,
    ) -> Result<Segment, CommError> {
        check_job_name(job)?;
        if nranks == 0 || nranks > MAX_RANKS {
            return Err(CommError::InvalidSize {
                nranks,
                max: MAX_RANKS,
                backend: "shm",
            });
        }
        crate::check_rank(rank, nranks)?;
        let start = Instant::now();
        let deadline = crate::deadline(start, opts.timeout);
        let me = this_process();
        let mut seg = if rank == 0 {
            Segment::create(job, nranks, opts.shm_capacity, me, deadline)?
        } else {
            Segment::attach(job, nranks, deadline)?
        };
        seg.join(rank, me, start, deadline)?;
        Ok(seg)
    }

    fn create(
        job: &str,
        n: usize,
        capacity: usize,
        me: (u32, u64),
        deadline: Instant,
    ) -> Result<Segment, CommError> {
        let cap = round_up(capacity.max(PAGE), PAGE)
            .filter(|&c| c <= 1 << 40)
            .ok_or_else(|| bootstrap_error(job, format!("shm capacity {capacity} is too large")))?;
        let lay = Layout::new(n, cap).ok_or_else(|| {
            bootstrap_error(
                job,
                format!("a segment for {n} ranks of {cap} bytes is too large"),
            )
        })?;
        let name = shm_name(job);
        let flags = shm::OFlags::CREATE | shm::OFlags::EXCL | shm::OFlags::RDWR;
        let mut unknown_since: Option<Instant> = None;
        let fd = loop {
            match shm::open(name.as_str(), flags, Mode::from_bits_truncate(0o600)) {
                Ok(fd) => break fd,
                Err(Errno::EXIST) => {}
                Err(e) => return Err(io_error(job, "creating the segment", e)),
            }
            match inspect_existing(&name) {
                Existing::Gone => continue,
                Existing::Live(pid) => {
                    return Err(bootstrap_error(
                        job,
                        format!(
                            "job name in use: {} belongs to running process {pid}; \
                             pick another job name",
                            segment_path(job).display()
                        ),
                    ))
                }
                Existing::Stale => {
                    // A crashed run's leftover: remove and try again.
                    let _ = shm::unlink(name.as_str());
                    continue;
                }
                Existing::Unknown => {
                    // Another creator between open and writing its pid;
                    // give it a moment, then treat the segment as stale.
                    let since = *unknown_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > Duration::from_secs(1) || Instant::now() >= deadline {
                        let _ = shm::unlink(name.as_str());
                        unknown_since = None;
                    } else {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
            }
        };
        // From here on the name is ours: `Drop` unlinks it on every error path.
        let grow = rustix::fs::ftruncate(&fd, lay.size as u64);
        let map = match grow
            .map_err(std::io::Error::from)
            .and_then(|()| MmapOptions::new().len(lay.size).map_raw(&fd))
        {
            Ok(m) => m,
            Err(e) => {
                let _ = shm::unlink(name.as_str());
                return Err(CommError::Io {
                    context: format!("job {job:?}: sizing and mapping the segment"),
                    source: e,
                });
            }
        };
        let mut seg = Segment::new(job, fd, map, lay);
        seg.unlink_pending = true;
        seg.u64(H_CREATOR_START).store(me.1, Ordering::Relaxed);
        seg.u32(H_CREATOR_PID).store(me.0, Ordering::Release);
        match rustix::fs::fallocate(&seg.fd, FallocateFlags::empty(), 0, lay.size as u64) {
            Ok(()) | Err(Errno::OPNOTSUPP) => {}
            Err(e) => {
                return Err(bootstrap_error(
                    job,
                    format!(
                        "cannot reserve {} bytes in /dev/shm for {n} ranks ({e}); lower \
                         HALOMD_SHM_CAPACITY (now {cap} bytes per rank pair) or enlarge /dev/shm",
                        lay.size
                    ),
                ))
            }
        }
        seg.u32(H_VERSION).store(VERSION, Ordering::Relaxed);
        seg.u32(H_NRANKS).store(n as u32, Ordering::Relaxed);
        seg.u64(H_CAPACITY).store(cap as u64, Ordering::Relaxed);
        seg.u64(H_SIZE).store(lay.size as u64, Ordering::Relaxed);
        seg.u64(H_MAGIC).store(MAGIC, Ordering::Release);
        Ok(seg)
    }

    fn attach(job: &str, n: usize, deadline: Instant) -> Result<Segment, CommError> {
        let name = shm_name(job);
        let mut last_issue = "it does not exist yet".to_string();
        loop {
            if Instant::now() >= deadline {
                return Err(bootstrap_error(
                    job,
                    format!(
                        "no usable segment {} appeared in time ({last_issue}); is rank 0 running?",
                        segment_path(job).display()
                    ),
                ));
            }
            match try_attach(job, &name, n) {
                Ok(Some(seg)) => return Ok(seg),
                Ok(None) => {}
                Err(AttachIssue::Retry(why)) => last_issue = why,
                Err(AttachIssue::Fatal(e)) => return Err(e),
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Claims slot `rank`, then waits until every rank has attached.
    fn join(
        &mut self,
        rank: usize,
        me: (u32, u64),
        start: Instant,
        deadline: Instant,
    ) -> Result<(), CommError> {
        let n = self.lay.n;
        let b = self.lay.rank(rank);
        if let Err(other) =
            self.u32(b + R_PID)
                .compare_exchange(0, me.0, Ordering::AcqRel, Ordering::Acquire)
        {
            return Err(bootstrap_error(
                &self.job,
                format!(
                    "rank {rank} is already attached by process {other} \
                     (was rank {rank} started twice, or does another job use this name?)"
                ),
            ));
        }
        // Attached to the job: cleaning up the name is now also our duty.
        self.unlink_pending = true;
        self.u64(b + R_START).store(me.1, Ordering::Relaxed);
        self.u32(b + R_STATE)
            .store(State::Attached as u32, Ordering::Release);
        if self.u32(H_ATTACHED).fetch_add(1, Ordering::AcqRel) as usize + 1 == n {
            self.unlink_now();
        }
        let mut pause = Duration::from_micros(100);
        // A rank counts once it has attached; a fast one may even have
        // finished already by the time a slow one looks.
        while self.u32(H_ATTACHED).load(Ordering::Acquire) as usize != n {
            let mut missing = Vec::new();
            for r in 0..n {
                match self.state(r) {
                    State::Empty => missing.push(r),
                    State::Attached => {
                        let (pid, st) = self.peer_process_raw(r);
                        if !process_alive(pid, st) {
                            return Err(self.fail_bootstrap(
                                rank,
                                r,
                                format!("rank {r} (process {pid}) died during start-up"),
                            ));
                        }
                    }
                    State::Done | State::Failed => {
                        return Err(self.fail_bootstrap(
                            rank,
                            r,
                            format!("rank {r} left during start-up"),
                        ))
                    }
                }
            }
            if Instant::now() >= deadline {
                let msg = format!(
                    "rank(s) {} did not attach within {:.1} s",
                    RankList(missing.clone()),
                    start.elapsed().as_secs_f64()
                );
                return Err(self.fail_bootstrap(
                    rank,
                    missing.first().copied().unwrap_or(rank),
                    msg,
                ));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(5));
        }
        // Everyone is in, so the last one to attach has removed the name.
        self.unlink_pending = false;
        self.peers = (0..n).map(|r| self.peer_process_raw(r)).collect();
        Ok(())
    }

    fn fail_bootstrap(&self, rank: usize, blamed: usize, message: String) -> CommError {
        self.mark_failed(rank, blamed, &message);
        bootstrap_error(&self.job, message)
    }

    fn unlink_now(&mut self) {
        if self.unlink_pending {
            self.unlink_pending = false;
            unlink_if_same(&self.name, &self.fd);
        }
    }

    pub(crate) fn job(&self) -> &str {
        &self.job
    }

    pub(crate) fn nranks(&self) -> usize {
        self.lay.n
    }

    pub(crate) fn capacity(&self) -> usize {
        self.lay.cap
    }

    fn check(&self, off: usize, len: usize) -> *mut u8 {
        assert!(
            off.checked_add(len).is_some_and(|e| e <= self.map.len()),
            "shm access out of bounds"
        );
        // SAFETY: `off + len` is within the mapping (checked above), so the
        // offset pointer stays inside the same allocation.
        unsafe { self.map.as_mut_ptr().add(off) }
    }

    fn u32(&self, off: usize) -> &AtomicU32 {
        assert_eq!(off % 4, 0);
        let p = self.check(off, 4);
        // SAFETY: in bounds (checked) and 4-aligned (the mapping is
        // page-aligned and `off` is a multiple of 4). The mapping lives as
        // long as `self`, which the reference borrows. Every process touches
        // these bytes only through atomics, and any bit pattern is a valid
        // AtomicU32.
        unsafe { &*p.cast::<AtomicU32>() }
    }

    fn u64(&self, off: usize) -> &AtomicU64 {
        assert_eq!(off % 8, 0);
        let p = self.check(off, 8);
        // SAFETY: as for `u32`, with 8-byte alignment.
        unsafe { &*p.cast::<AtomicU64>() }
    }

    fn u8(&self, off: usize) -> &AtomicU8 {
        let p = self.check(off, 1);
        // SAFETY: as for `u32`; bytes need no alignment.
        unsafe { &*p.cast::<AtomicU8>() }
    }

    pub(crate) fn state(&self, r: usize) -> State {
        match self.u32(self.lay.rank(r) + R_STATE).load(Ordering::Acquire) {
            0 => State::Empty,
            1 => State::Attached,
            2 => State::Done,
            _ => State::Failed,
        }
    }

    fn peer_process_raw(&self, r: usize) -> (u32, u64) {
        let b = self.lay.rank(r);
        (
            self.u32(b + R_PID).load(Ordering::Acquire),
            self.u64(b + R_START).load(Ordering::Relaxed),
        )
    }

    /// Rank `r`'s pid and start time, as read at the end of the bootstrap.
    pub(crate) fn peer_process(&self, r: usize) -> (u32, u64) {
        self.peers[r]
    }

    /// Who rank `r` blamed for its failure, and why.
    pub(crate) fn failure(&self, r: usize) -> (usize, String) {
        let b = self.lay.rank(r);
        let blamed = self.u32(b + R_BLAMED).load(Ordering::Relaxed) as usize;
        let len = (self.u32(b + R_REASON_LEN).load(Ordering::Relaxed) as usize).min(REASON_MAX);
        let bytes: Vec<u8> = (0..len)
            .map(|i| self.u8(b + R_REASON + i).load(Ordering::Relaxed))
            .collect();
        (
            blamed.min(self.lay.n - 1),
            String::from_utf8_lossy(&bytes).into_owned(),
        )
    }

    /// Records that rank `r` failed because of `blamed`, and wakes everyone.
    pub(crate) fn mark_failed(&self, r: usize, blamed: usize, reason: &str) {
        let b = self.lay.rank(r);
        let state = self.u32(b + R_STATE);
        if state.load(Ordering::Relaxed) == State::Failed as u32 {
            return;
        }
        let mut len = reason.len().min(REASON_MAX);
        while !reason.is_char_boundary(len) {
            len -= 1;
        }
        for (i, &c) in reason.as_bytes()[..len].iter().enumerate() {
            self.u8(b + R_REASON + i).store(c, Ordering::Relaxed);
        }
        self.u32(b + R_REASON_LEN)
            .store(len as u32, Ordering::Relaxed);
        self.u32(b + R_BLAMED)
            .store(blamed as u32, Ordering::Relaxed);
        // Release publishes the reason together with the state.
        state.store(State::Failed as u32, Ordering::Release);
        self.notify_all();
    }

    /// Records that rank `r` closed its communicator normally.
    pub(crate) fn mark_done(&self, r: usize) {
        let state = self.u32(self.lay.rank(r) + R_STATE);
        if state.load(Ordering::Relaxed) == State::Attached as u32 {
            state.store(State::Done as u32, Ordering::Release);
            self.notify_all();
        }
    }

    pub(crate) fn barrier(&self, r: usize) -> u64 {
        self.u64(self.lay.rank(r) + R_BARRIER)
            .load(Ordering::Acquire)
    }

    pub(crate) fn set_barrier(&self, r: usize, epoch: u64) {
        self.u64(self.lay.rank(r) + R_BARRIER)
            .store(epoch, Ordering::Release);
        self.notify_all();
    }

    pub(crate) fn doorbell(&self, r: usize) -> &AtomicU32 {
        self.u32(self.lay.rank(r) + R_DOORBELL)
    }

    pub(crate) fn sleeping(&self, r: usize) -> &AtomicU32 {
        self.u32(self.lay.rank(r) + R_SLEEPING)
    }

    /// Wakes rank `r` if it sleeps on its doorbell.
    pub(crate) fn notify(&self, r: usize) {
        // Pairs with the waiter's store-fence-recheck: either it sees what we
        // published, or we see its flag.
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.sleeping(r).load(Ordering::Relaxed) != 0 {
            let bell = self.doorbell(r);
            bell.fetch_add(1, Ordering::Release);
            // Not PRIVATE: the waiter is usually another process.
            let _ = futex::wake(bell, futex::Flags::empty(), i32::MAX as u32);
        }
    }

    fn notify_all(&self) {
        for r in 0..self.lay.n {
            self.notify(r);
        }
    }

    /// Sleeps while `bell` still holds `seen`, for at most `d`.
    pub(crate) fn futex_wait(&self, bell: &AtomicU32, seen: u32, d: Duration) {
        let ts = futex::Timespec {
            tv_sec: d.as_secs() as _,
            tv_nsec: d.subsec_nanos() as _,
        };
        // Timeouts, spurious wake-ups and a changed value all just mean
        // "look again", which the caller does.
        let _ = futex::wait(bell, futex::Flags::empty(), seen, Some(&ts));
    }

    /// The (head, tail) counters of the ring `src → dst`.
    pub(crate) fn channel(&self, src: usize, dst: usize) -> (&AtomicU64, &AtomicU64) {
        let c = self.lay.channels + self.lay.pair(src, dst) * CHANNEL_BLOCK;
        (self.u64(c + C_HEAD), self.u64(c + C_TAIL))
    }

    /// The byte offset of the ring `src → dst`.
    pub(crate) fn ring(&self, src: usize, dst: usize) -> usize {
        self.lay.rings + self.lay.pair(src, dst) * self.lay.cap
    }

    /// Copies `data` into the ring at `ring` from stream position `pos`.
    ///
    /// The caller owns those ring bytes under the head/tail protocol: the
    /// reader has released them and will not read them before the caller
    /// publishes a head past them.
    pub(crate) fn ring_write(&self, ring: usize, pos: u64, data: &[u8]) {
        let cap = self.lay.cap;
        assert!(data.len() <= cap);
        let at = (pos % cap as u64) as usize;
        let first = data.len().min(cap - at);
        let dst = self.check(ring + at, first);
        let wrap = self.check(ring, data.len() - first);
        // SAFETY: both ranges are inside the mapping (checked), do not
        // overlap `data` (a private buffer), and no other process accesses
        // these ring bytes until we publish them (the protocol above).
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), dst, first);
            std::ptr::copy_nonoverlapping(data.as_ptr().add(first), wrap, data.len() - first);
        }
    }

    /// Copies ring bytes from stream position `pos` into `out`.
    ///
    /// The caller owns those bytes: the writer published them (the caller
    /// loaded the head with `Acquire`) and will not overwrite them before the
    /// caller publishes a tail past them.
    pub(crate) fn ring_read(&self, ring: usize, pos: u64, out: &mut [u8]) {
        let cap = self.lay.cap;
        assert!(out.len() <= cap);
        let at = (pos % cap as u64) as usize;
        let first = out.len().min(cap - at);
        let src = self.check(ring + at, first);
        let wrap = self.check(ring, out.len() - first);
        // SAFETY: as for `ring_write`, with the roles of the two sides swapped.
        unsafe {
            std::ptr::copy_nonoverlapping(src, out.as_mut_ptr(), first);
            std::ptr::copy_nonoverlapping(wrap, out.as_mut_ptr().add(first), out.len() - first);
        }
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        self.unlink_now();
    }
}

/// Unlinks `name` if it still refers to the segment open as `fd`.
fn unlink_if_same(name: &str, fd: &OwnedFd) {
    let Ok(ours) = rustix::fs::fstat(fd) else {
        return;
    };
    let Ok(cur) = shm::open(name, shm::OFlags::RDONLY, Mode::empty()) else {
        return;
    };
    match rustix::fs::fstat(&cur) {
        Ok(st) if st.st_ino == ours.st_ino && st.st_dev == ours.st_dev => {
            let _ = shm::unlink(name);
        }
        _ => {}
    }
}

fn io_error(job: &str, what: &str, e: Errno) -> CommError {
    CommError::Io {
        context: format!("job {job:?}: {what} {}", segment_path(job).display()),
        source: e.into(),
    }
}

enum Existing {
    /// Vanished while we looked.
    Gone,
    /// Initialised, and its creator runs.
    Live(u32),
    /// Left behind by a creator that died.
    Stale,
    /// Its creator has not written its pid yet (or died before doing so).
    Unknown,
}

/// What an existing segment of that name is.
fn inspect_existing(name: &str) -> Existing {
    let fd = match shm::open(name, shm::OFlags::RDONLY, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Existing::Gone,
        Err(_) => return Existing::Unknown,
    };
    let Ok(st) = rustix::fs::fstat(&fd) else {
        return Existing::Unknown;
    };
    if (st.st_size as usize) < HEADER_BYTES {
        return Existing::Unknown;
    }
    let Ok(map) = MmapOptions::new().len(HEADER_BYTES).map_raw_read_only(&fd) else {
        return Existing::Unknown;
    };
    let read32 = |off: usize| {
        // SAFETY: `off + 4 <= HEADER_BYTES`, the mapped length; the page
        // is aligned; the creator writes these bytes only atomically.
        unsafe { (*map.as_ptr().add(off).cast::<AtomicU32>()).load(Ordering::Acquire) }
    };
    let read64 = |off: usize| {
        // SAFETY: as above, for 8 bytes at an 8-aligned offset.
        unsafe { (*map.as_ptr().add(off).cast::<AtomicU64>()).load(Ordering::Acquire) }
    };
    let pid = read32(H_CREATOR_PID);
    if pid == 0 {
        return Existing::Unknown;
    }
    if process_alive(pid, read64(H_CREATOR_START)) {
        Existing::Live(pid)
    } else {
        Existing::Stale
    }
}

enum AttachIssue {
    Retry(String),
    Fatal(CommError),
}

/// One attempt to open and validate the job's segment as a rank > 0.
fn try_attach(job: &str, name: &str, n: usize) -> Result<Option<Segment>, AttachIssue> {
    let retry = |s: String| Err(AttachIssue::Retry(s));
    let fd = match shm::open(name, shm::OFlags::RDWR, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return retry("it does not exist yet".into()),
        Err(e) => return Err(AttachIssue::Fatal(io_error(job, "opening", e))),
    };
    let size = match rustix::fs::fstat(&fd) {
        Ok(st) => st.st_size as usize,
        Err(e) => return Err(AttachIssue::Fatal(io_error(job, "inspecting", e))),
    };
    if size < HEADER_BYTES {
        return retry("rank 0 is still creating it".into());
    }
    let map = MmapOptions::new().len(size).map_raw(&fd).map_err(|e| {
        AttachIssue::Fatal(CommError::Io {
            context: format!("job {job:?}: mapping {}", segment_path(job).display()),
            source: e,
        })
    })?;
    let mut seg = Segment::new(job, fd, map, Layout::new(1, PAGE).expect("tiny layout"));
    let creator = (
        seg.u32(H_CREATOR_PID).load(Ordering::Acquire),
        seg.u64(H_CREATOR_START).load(Ordering::Relaxed),
    );
    if seg.u64(H_MAGIC).load(Ordering::Acquire) != MAGIC {
        if creator.0 != 0 && !process_alive(creator.0, creator.1) {
            return retry("a leftover of a crashed run is waiting to be replaced by rank 0".into());
        }
        return retry("rank 0 is still initialising it".into());
    }
    if !process_alive(creator.0, creator.1) {
        return retry("a leftover of a crashed run is waiting to be replaced by rank 0".into());
    }
    let version = seg.u32(H_VERSION).load(Ordering::Relaxed);
    let their_n = seg.u32(H_NRANKS).load(Ordering::Relaxed) as usize;
    let cap = seg.u64(H_CAPACITY).load(Ordering::Relaxed) as usize;
    let their_size = seg.u64(H_SIZE).load(Ordering::Relaxed) as usize;
    let fatal = |m: String| Err(AttachIssue::Fatal(bootstrap_error(job, m)));
    if version != VERSION {
        return fatal(format!(
            "segment version {version}, this build speaks version {VERSION} \
             (are all ranks the same binary?)"
        ));
    }
    if their_n != n {
        return fatal(format!(
            "rank 0 (process {}) created the job for {their_n} ranks, \
             but this rank was started with nranks = {n}",
            creator.0
        ));
    }
    match Layout::new(n, cap) {
        Some(lay) if lay.size == their_size && lay.size <= size => {
            seg.lay = lay;
            Ok(Some(seg))
        }
        _ => fatal(format!(
            "inconsistent segment header (capacity {cap}, size {their_size}, file {size})"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_parse() {
        let line = b"1234 (a (weird) name) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 99887 20";
        assert_eq!(parse_stat(line), Some((b'S', 99887)));
        assert_eq!(parse_stat(b"garbage"), None);
        let (pid, start) = this_process();
        assert!(process_alive(pid, start));
        assert!(
            !process_alive(pid, start + 1),
            "a recycled pid must not count"
        );
        assert!(!process_alive(0, 0));
    }

    #[test]
    fn zombies_count_as_dead() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        // Not reaped yet: the process is a zombie once it has exited.
        let t = Instant::now();
        while process_alive(pid, 0) && t.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(1));
        }
        let dead = !process_alive(pid, 0);
        child.wait().unwrap();
        assert!(dead, "exited, unreaped process {pid} still looked alive");
        assert!(!process_alive(pid, 0));
    }

    #[test]
    fn layout_is_aligned_and_disjoint() {
        let lay = Layout::new(3, 8192).unwrap();
        assert_eq!(lay.rings % PAGE, 0);
        assert_eq!(lay.size, lay.rings + 6 * 8192);
        let mut pairs: Vec<usize> = (0..3)
            .flat_map(|s| (0..3).filter(move |&d| d != s).map(move |d| (s, d)))
            .map(|(s, d)| lay.pair(s, d))
            .collect();
        pairs.sort();
        assert_eq!(pairs, (0..6).collect::<Vec<_>>());
        assert!(Layout::new(1, PAGE).is_some());
        assert!(Layout::new(usize::MAX / 2, PAGE).is_none());
    }

    #[test]
    fn job_names_are_checked() {
        assert!(check_job_name("run-1.a_b").is_ok());
        for bad in ["", ".hidden", "a/b", "sp ace", &"x".repeat(201)] {
            assert!(check_job_name(bad).is_err(), "{bad:?}");
        }
    }
}
