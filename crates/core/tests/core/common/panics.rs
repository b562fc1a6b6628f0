//! Counts panics on the threads of a named runtime. A connection task that panics only drops
//! its socket, which a client cannot tell from a close; the fuzz tests count panics instead.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};

type Watched = Mutex<Vec<(String, Arc<AtomicUsize>)>>;

static WATCHED: Watched = Mutex::new(Vec::new());
static HOOK: Once = Once::new();

/// Panics on threads whose name starts with a prefix, counted from when it was made.
pub struct PanicWatch {
    prefix: String,
    count: Arc<AtomicUsize>,
}

/// Starts counting panics on threads named `prefix…` (one hook for the whole test binary,
/// chained to the default one, so the panic is still printed).
pub fn watch(prefix: &str) -> PanicWatch {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Some(name) = std::thread::current().name() {
                if let Ok(w) = WATCHED.lock() {
                    for (p, c) in w.iter() {
                        if name.starts_with(p.as_str()) {
                            c.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
            }
            previous(info)
        }));
    });
    let count = Arc::new(AtomicUsize::new(0));
    if let Ok(mut w) = WATCHED.lock() {
        w.push((prefix.to_string(), count.clone()));
    }
    PanicWatch {
        prefix: prefix.to_string(),
        count,
    }
}

impl PanicWatch {
    /// Panics seen so far on the watched threads.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// A two-worker runtime whose threads (workers and blocking pool) are watched.
    pub fn runtime(&self) -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(self.prefix.clone())
            .enable_all()
            .build()
            .expect("runtime")
    }
}
