//! A small launcher: start one process per rank and collect how they ended.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::segment::{remove_segment, segment_path};
use crate::{CommError, ENV_JOB, ENV_NRANKS, ENV_RANK};

/// A job name that no other live job uses: prefix, pid, time and a counter.
pub fn unique_job_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let k = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{nanos}-{k}", std::process::id())
}

/// The processes of one shm job, started by [`Job::spawn`].
///
/// Dropping a `Job` kills and reaps ranks still running and removes a
/// leftover segment, so a failing test leaves neither zombies nor files.
pub struct Job {
    name: String,
    ranks: Vec<RankProc>,
}

struct RankProc {
    child: Child,
    status: Option<ExitStatus>,
    killed: bool,
    ended: Option<Instant>,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Option<JoinHandle<Vec<u8>>>,
}

/// How one rank's process ended.
#[derive(Debug)]
pub struct RankExit {
    /// The rank.
    pub rank: usize,
    /// Its exit status.
    pub status: ExitStatus,
    /// Whether the launcher killed it (by [`Job::kill`] or at the time limit).
    pub killed: bool,
    /// Time from the start of [`Job::wait`] until it was seen to end.
    pub elapsed: Duration,
    /// What it wrote to stdout.
    pub stdout: String,
    /// What it wrote to stderr.
    pub stderr: String,
}

/// How a whole job ended.
#[derive(Debug)]
pub struct JobReport {
    /// The job name.
    pub job: String,
    /// One entry per rank, in rank order.
    pub ranks: Vec<RankExit>,
    /// Whether a segment was still in `/dev/shm` after all ranks ended
    /// (the launcher removed it; the ranks should have).
    pub leftover_segment: bool,
}

impl JobReport {
    /// Whether every rank exited with status 0.
    pub fn success(&self) -> bool {
        self.ranks.iter().all(|r| r.status.success())
    }
}

fn read_all(mut r: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = r.read_to_end(&mut v);
        v
    })
}

impl Job {
    /// Starts `nranks` processes under a fresh job name; `command(rank)`
    /// builds each (the launcher adds `HALOMD_JOB`, `HALOMD_RANK`,
    /// `HALOMD_NRANKS` and captures stdout and stderr).
    pub fn spawn(nranks: usize, command: impl FnMut(usize) -> Command) -> Result<Job, CommError> {
        Job::spawn_named(&unique_job_name("job"), nranks, command)
    }

    /// Like [`Job::spawn`] with a given job name.
    pub fn spawn_named(
        job: &str,
        nranks: usize,
        command: impl FnMut(usize) -> Command,
    ) -> Result<Job, CommError> {
        Job::spawn_with(job, nranks, true, command)
    }

    /// Like [`Job::spawn_named`]; with `capture` false the ranks write straight to this
    /// process's stdout and stderr (live output of long runs) and the report's are empty.
    pub fn spawn_with(
        job: &str,
        nranks: usize,
        capture: bool,
        mut command: impl FnMut(usize) -> Command,
    ) -> Result<Job, CommError> {
        let mut j = Job {
            name: job.to_string(),
            ranks: Vec::with_capacity(nranks),
        };
        for rank in 0..nranks {
            let mut cmd = command(rank);
            cmd.env(ENV_JOB, job)
                .env(ENV_RANK, rank.to_string())
                .env(ENV_NRANKS, nranks.to_string())
                .stdin(Stdio::null());
            if capture {
                cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
            } else {
                cmd.stdout(Stdio::inherit()).stderr(Stdio::inherit());
            }
            // On failure `j` is dropped, which kills the ranks already started.
            let mut child = cmd.spawn().map_err(|source| CommError::Io {
                context: format!("starting rank {rank} of job {job:?}"),
                source,
            })?;
            let stdout = child.stdout.take().map(read_all);
            let stderr = child.stderr.take().map(read_all);
            j.ranks.push(RankProc {
                child,
                status: None,
                killed: false,
                ended: None,
                stdout,
                stderr,
            });
        }
        Ok(j)
    }

    /// The job name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The process id of `rank`.
    pub fn pid(&self, rank: usize) -> Option<u32> {
        self.ranks.get(rank).map(|r| r.child.id())
    }

    /// Kills `rank` with `SIGKILL` (it is reaped later, by [`Job::wait`]).
    pub fn kill(&mut self, rank: usize) -> Result<(), CommError> {
        let size = self.ranks.len();
        let r = self
            .ranks
            .get_mut(rank)
            .ok_or(CommError::InvalidRank { rank, size })?;
        r.killed = true;
        r.child.kill().map_err(|source| CommError::Io {
            context: format!("killing rank {rank}"),
            source,
        })
    }

    /// Waits for every rank; ranks still running after `limit` are killed.
    pub fn wait(mut self, limit: Duration) -> JobReport {
        let start = Instant::now();
        loop {
            let mut running = false;
            for r in &mut self.ranks {
                if r.status.is_none() {
                    match r.child.try_wait() {
                        Ok(Some(st)) => {
                            r.status = Some(st);
                            r.ended = Some(Instant::now());
                        }
                        Ok(None) => running = true,
                        Err(_) => running = true,
                    }
                }
            }
            if !running {
                break;
            }
            if start.elapsed() >= limit {
                self.kill_remaining();
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let ranks = std::mem::take(&mut self.ranks)
            .into_iter()
            .enumerate()
            .map(|(rank, mut r)| {
                let status = match r.status {
                    Some(s) => s,
                    None => r.child.wait().expect("waiting for a killed child"),
                };
                let text = |h: Option<JoinHandle<Vec<u8>>>| {
                    h.and_then(|h| h.join().ok())
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_default()
                };
                RankExit {
                    rank,
                    status,
                    killed: r.killed,
                    elapsed: r.ended.unwrap_or_else(Instant::now) - start,
                    stdout: text(r.stdout.take()),
                    stderr: text(r.stderr.take()),
                }
            })
            .collect();
        let leftover_segment = segment_path(&self.name).exists();
        let _ = remove_segment(&self.name);
        JobReport {
            job: self.name.clone(),
            ranks,
            leftover_segment,
        }
    }

    fn kill_remaining(&mut self) {
        for r in &mut self.ranks {
            if r.status.is_none() {
                r.killed = true;
                let _ = r.child.kill();
                r.status = r.child.wait().ok();
                r.ended = Some(Instant::now());
            }
        }
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        self.kill_remaining();
        let _ = remove_segment(&self.name);
    }
}
