//! SIGINT/SIGTERM: a run stops at the end of the step with a checkpoint instead of dying.

use anyhow::{Context, Result};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A flag that SIGINT and SIGTERM set. A second signal while the flag is set ends the
/// process at once (the usual "press Ctrl-C twice" escape).
pub fn stop_flag() -> Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // Registered first, so it sees the flag as the previous signal left it.
        signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&flag))
            .context("installing the signal handler")?;
        signal_hook::flag::register(sig, Arc::clone(&flag))
            .context("installing the signal handler")?;
    }
    Ok(flag)
}

/// Keeps the shm launcher alive through SIGINT/SIGTERM and passes SIGTERM on to the ranks
/// (SIGINT from a terminal reaches them directly: they share its process group). Stops
/// when dropped.
#[cfg(target_os = "linux")]
pub struct Forwarder {
    done: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Starts forwarding to the ranks of `job`.
#[cfg(target_os = "linux")]
pub fn forward_to(job: &halo_comm::shm::Job) -> Option<Forwarder> {
    let pids: Vec<i32> = (0..usize::MAX)
        .map_while(|r| job.pid(r))
        .filter_map(|p| i32::try_from(p).ok())
        .collect();
    let int = Arc::new(AtomicBool::new(false));
    let term = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, Arc::clone(&int)).ok()?;
    signal_hook::flag::register(signal_hook::consts::SIGTERM, Arc::clone(&term)).ok()?;
    let done = Arc::new(AtomicBool::new(false));
    let stop = Arc::clone(&done);
    let thread = std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            if term.swap(false, Ordering::Relaxed) {
                for &pid in &pids {
                    // SAFETY: kill(2) touches no memory; the pids are this launcher's
                    // children, signalled only while the launcher waits for them.
                    unsafe {
                        libc::kill(pid, libc::SIGTERM);
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    Some(Forwarder {
        done,
        thread: Some(thread),
    })
}

#[cfg(target_os = "linux")]
impl Drop for Forwarder {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
