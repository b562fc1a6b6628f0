//! Giving memory back to the system after large messages. A session's buffers grow to the
//! size of the largest message and are renewed after it, but the allocator keeps the pages
//! they were freed into (glibc returns the top of its heap only), so a gateway that took a
//! few 1 MiB messages would stay that much larger. After such a renewal the gateway asks the
//! allocator to release what is free, once for a burst of them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How long after the first large message of a burst the trim runs.
const TRIM_DELAY: Duration = Duration::from_millis(250);

/// At most one trim waiting at a time.
#[derive(Default)]
pub struct Trimmer {
    due: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
}

impl Trimmer {
    /// Asks for a trim a moment from now, unless one is already waiting. On the runtime.
    pub fn soon(&self) {
        if self.due.swap(true, Ordering::AcqRel) {
            return;
        }
        let (due, done) = (self.due.clone(), self.done.clone());
        tokio::spawn(async move {
            tokio::time::sleep(TRIM_DELAY).await;
            due.store(false, Ordering::Release);
            // It walks the allocator's free lists: not on a worker.
            let _ = tokio::task::spawn_blocking(release_free_memory).await;
            done.fetch_add(1, Ordering::Relaxed);
        });
    }

    /// Trims run so far.
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn release_free_memory() {
    // SAFETY: malloc_trim only releases free memory; it is safe to call from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_free_memory() {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Until `t` has run `n` trims (the trim itself runs on a real blocking thread).
    async fn trims(t: &Trimmer, n: u64) -> u64 {
        for _ in 0..2_000 {
            if t.done() >= n {
                break;
            }
            tokio::task::yield_now().await;
            std::thread::sleep(Duration::from_millis(1));
        }
        t.done()
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_large_messages_costs_one_trim() {
        let t = Trimmer::default();
        for _ in 0..5 {
            t.soon();
        }
        tokio::time::sleep(TRIM_DELAY / 2).await;
        assert_eq!(t.done(), 0, "not before its delay");
        tokio::time::sleep(TRIM_DELAY).await;
        assert_eq!(trims(&t, 1).await, 1);
        // Nothing more comes of the burst; a later large message asks again.
        tokio::time::sleep(TRIM_DELAY * 3).await;
        assert_eq!(t.done(), 1);
        t.soon();
        tokio::time::sleep(TRIM_DELAY * 2).await;
        assert_eq!(trims(&t, 2).await, 2);
    }
}
