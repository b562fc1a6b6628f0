//! Logging through `tracing`: always to stderr, and for the long-running processes (the app and
//! the headless gateway) also to `logs/clawpair.log`, rotated at 5 MiB with three old files kept,
//! mode `0600`. `RUST_LOG` is honoured. Nothing secret is ever logged: tokens are not passed to
//! log calls anywhere, and the bot token is stripped from HTTP errors before they are shown.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

pub use crate::store::LOG_FILE;
pub const ROTATE_BYTES: u64 = 5 << 20;
pub const KEEP: usize = 3;

struct Inner {
    path: PathBuf,
    max: u64,
    file: Option<File>,
    size: u64,
}

/// An append-only log file that rotates itself by size.
#[derive(Clone)]
pub struct RotatingFile(Arc<Mutex<Inner>>);

/// Opens the log for appending, never through a symlink planted at its name.
fn open(path: &Path) -> io::Result<(File, u64)> {
    let f = crate::store::fs::open_append_nofollow(path)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot open {}: {e}", path.display())))?;
    let size = f.metadata()?.len();
    Ok((f, size))
}

impl RotatingFile {
    pub fn new(path: PathBuf, max: u64) -> io::Result<Self> {
        if let Some(dir) = path.parent() {
            crate::store::fs::ensure_dir(dir).map_err(|e| io::Error::other(e.to_string()))?;
        }
        let (file, size) = open(&path)?;
        Ok(RotatingFile(Arc::new(Mutex::new(Inner {
            path,
            max,
            file: Some(file),
            size,
        }))))
    }
}

impl Inner {
    fn rotate(&mut self) -> io::Result<()> {
        self.file = None;
        crate::store::fs::rotate(&self.path, KEEP).map_err(|e| io::Error::other(e.to_string()))?;
        let (f, size) = open(&self.path)?;
        self.file = Some(f);
        self.size = size;
        Ok(())
    }
}

/// One write of a log line.
pub struct LineWriter(RotatingFile);

impl Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut inner = self
            .0
             .0
            .lock()
            .map_err(|_| io::Error::other("log lock poisoned"))?;
        if inner.size > 0 && inner.size + buf.len() as u64 > inner.max {
            // A failed rotation must not stop logging: keep appending to the old file.
            let _ = inner.rotate();
        }
        let n = match inner.file.as_mut() {
            Some(f) => f.write(buf)?,
            None => buf.len(),
        };
        inner.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for RotatingFile {
    type Writer = LineWriter;
    fn make_writer(&'a self) -> Self::Writer {
        LineWriter(self.clone())
    }
}

fn filter(default: &str) -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default))
}

/// Logging for one-shot CLI commands: warnings to stderr.
pub fn init_cli() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter("warn"))
        .with_writer(io::stderr)
        .with_target(false)
        .try_init();
}

/// Logging for the app and the gateway: info to stderr and to `<logs>/clawpair.log`.
pub fn init_long_running(logs_dir: Option<&Path>) {
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(io::stderr)
        .with_target(false)
        .with_filter(filter("info"));
    let file = logs_dir
        .and_then(|d| RotatingFile::new(d.join(LOG_FILE), ROTATE_BYTES).ok())
        .map(|w| {
            tracing_subscriber::fmt::layer()
                .with_writer(w)
                .with_ansi(false)
                .with_target(false)
                .with_filter(filter("info"))
        });
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(file)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::fs::rotated;

    #[test]
    fn a_log_file_that_is_a_symlink_is_not_opened() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("clawpair.log");
        let elsewhere = tmp.path().join("elsewhere");
        std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
        let err = RotatingFile::new(path, 100).err().expect("refused");
        assert!(err.to_string().contains("clawpair.log"), "{err}");
        assert!(!elsewhere.exists());
    }

    #[test]
    fn rotates_by_size_and_keeps_three() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("logs/clawpair.log");
        let f = RotatingFile::new(path.clone(), 100).unwrap();
        for i in 0..50 {
            // As tracing does: one formatted line, one write.
            f.make_writer()
                .write_all(format!("line {i:04} of the log\n").as_bytes())
                .unwrap();
        }
        assert!(rotated(&path, 1).exists() && rotated(&path, 3).exists());
        assert!(!rotated(&path, 4).exists());
        assert!(std::fs::metadata(&path).unwrap().len() <= 100);
        assert_eq!(crate::store::fs::mode_of(&path).unwrap(), 0o600);
        assert!(std::fs::read_to_string(&path)
            .unwrap()
            .contains("line 0049"));
    }
}
