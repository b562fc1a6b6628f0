//! `run/gateway.json`: where a running gateway listens, so the CLI can find it and act through
//! it (sending it the admin token). The gateway holds an OS lock on `run/gateway.lock` for as
//! long as it runs, and the record is believed only while that lock is held: after a crash the
//! record is stale whatever process now has its pid, and whoever listens on its port never
//! hears from the CLI. Written when the gateway starts listening, removed on clean exit.
//!
//! The record itself is written and read under its sidecar lock (`gateway.json.lock`), and a
//! starting gateway takes `gateway.lock` and clears an earlier record inside that same lock,
//! so a reader never sees a new gateway's lock beside an old gateway's record.

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::clock::Millis;
use crate::store::fs::{
    ensure_dir, open_lock_file, read_bytes, write_json, FileLock, StoreError, StoreResult,
};
use crate::store::StatePaths;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayRecord {
    pub pid: u32,
    /// The address actually bound, e.g. `127.0.0.1:18789`.
    pub address: String,
    pub started_at_ms: Millis,
    #[serde(default)]
    pub version: String,
    /// With TLS on (`gateway.tls`): the SHA-256 of the certificate the gateway serves (lowercase
    /// hex), which the CLI pins when it connects over `wss://`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_fingerprint: Option<String>,
}

impl GatewayRecord {
    /// The URL to reach this gateway from this computer (loopback for a wildcard bind).
    pub fn local_url(&self) -> Option<String> {
        use std::net::{IpAddr, SocketAddr};
        let a: SocketAddr = self.address.parse().ok()?;
        let ip = match a.ip() {
            ip if !ip.is_unspecified() => ip,
            IpAddr::V4(_) => IpAddr::from([127, 0, 0, 1]),
            IpAddr::V6(_) => IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
        };
        let scheme = if self.tls_fingerprint.is_some() {
            "wss"
        } else {
            "ws"
        };
        Some(format!("{scheme}://{}/", SocketAddr::new(ip, a.port())))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunRecError {
    #[error("another gateway already serves this state directory{}", .running.as_ref().map(|r| format!(" (pid {}, {})", r.pid, r.address)).unwrap_or_default())]
    Busy { running: Option<GatewayRecord> },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Whether a process with this pid exists (signal 0 checks without sending anything).
pub fn pid_alive(pid: u32) -> bool {
    if pid == 0 || pid > i32::MAX as u32 {
        return false;
    }
    // SAFETY: kill with signal 0 only checks for existence and permission.
    let r = unsafe { libc::kill(pid as i32, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// The record as written, live or not (`None` when absent or unreadable).
pub fn read(paths: &StatePaths) -> Option<GatewayRecord> {
    read_at(&paths.gateway_record())
}

fn read_at(path: &Path) -> Option<GatewayRecord> {
    let bytes = read_bytes(path).ok()??;
    serde_json::from_slice(&bytes).ok()
}

/// Opens an existing lock file read-only (a lock needs no write access, so this works on a
/// read-only state directory), never through a symlink. `None` when it does not exist.
fn open_existing(path: &Path) -> Option<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .ok()
}

/// Whether a running gateway holds `run/gateway.lock`.
fn gateway_lock_held(paths: &StatePaths) -> bool {
    let Some(f) = open_existing(&paths.gateway_lock()) else {
        return false;
    };
    match f.try_lock_shared() {
        Ok(()) => {
            let _ = f.unlock();
            false
        }
        Err(TryLockError::WouldBlock) => true,
        Err(TryLockError::Error(_)) => false,
    }
}

/// The record of a gateway that is running now: there is one, and a gateway holds
/// `run/gateway.lock`. `None` otherwise, so the caller acts on the files.
pub fn read_live(paths: &StatePaths) -> Option<GatewayRecord> {
    let _record = FileLock::acquire_shared_existing(&paths.gateway_record()).ok()??;
    if !gateway_lock_held(paths) {
        return None;
    }
    read(paths)
}

/// Refuses ([`RunRecError::Busy`]) when a gateway of another process serves this state
/// directory now, before this process starts one of its own.
pub fn refuse_if_served_elsewhere(paths: &StatePaths) -> Result<(), RunRecError> {
    match read_live(paths) {
        Some(rec) if rec.pid != std::process::id() => Err(RunRecError::Busy { running: Some(rec) }),
        _ => Ok(()),
    }
}

/// The record of a gateway that may be running: its lock is held, or (as a gateway of an
/// earlier version, which held no lock, left it) its pid is alive. For decisions where a wrong
/// "yes" only costs a retry, such as not moving a state directory a gateway may still use;
/// never for where to send the admin token (that is [`read_live`]).
pub fn read_maybe_running(paths: &StatePaths) -> Option<GatewayRecord> {
    let rec = read(paths)?;
    (gateway_lock_held(paths) || pid_alive(rec.pid)).then_some(rec)
}

/// A record that no running gateway stands behind (left by a crash), if there is one.
pub fn stale(paths: &StatePaths) -> Option<GatewayRecord> {
    let rec = read(paths)?;
    (!gateway_lock_held(paths)).then_some(rec)
}

/// Removes a stale record (under its lock, checking again that no gateway holds
/// `run/gateway.lock`). Returns whether one was removed.
pub fn remove_stale(paths: &StatePaths) -> StoreResult<bool> {
    let path = paths.gateway_record();
    let _record = FileLock::acquire(&path)?;
    if gateway_lock_held(paths) || !path.exists() {
        return Ok(false);
    }
    std::fs::remove_file(&path).map_err(|e| StoreError::io("remove", &path, e))?;
    Ok(true)
}

/// A running gateway's hold on `run/gateway.lock`: taken before it listens, released when
/// dropped (and by the OS when the process dies, however it dies).
#[derive(Debug)]
pub struct RunLock {
    file: File,
    paths: StatePaths,
}

impl RunLock {
    /// Takes the lock, or says which gateway holds it. A record found now is stale (no one
    /// held the lock) and is removed.
    pub fn acquire(paths: &StatePaths) -> Result<RunLock, RunRecError> {
        let record = paths.gateway_record();
        let _record = FileLock::acquire(&record)?;
        let path = paths.gateway_lock();
        ensure_dir(&paths.run_dir())?;
        let file = open_lock_file(&path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(RunRecError::Busy {
                    running: read(paths),
                })
            }
            Err(TryLockError::Error(e)) => return Err(StoreError::io("lock", &path, e).into()),
        }
        match std::fs::remove_file(&record) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::io("remove", &record, e).into()),
        }
        Ok(RunLock {
            file,
            paths: paths.clone(),
        })
    }

    /// Writes the record (under its lock).
    pub fn record(&self, rec: &GatewayRecord) -> StoreResult<()> {
        let path = self.paths.gateway_record();
        let _record = FileLock::acquire(&path)?;
        write_json(&path, rec)
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Only the holder of the lock writes the record, so it is ours.
        let path = self.paths.gateway_record();
        if let Ok(_record) = FileLock::acquire(&path) {
            let _ = std::fs::remove_file(&path);
        }
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(pid: u32) -> GatewayRecord {
        GatewayRecord {
            pid,
            address: "127.0.0.1:1".into(),
            started_at_ms: 0,
            version: String::new(),
            tls_fingerprint: None,
        }
    }

    #[test]
    fn the_record_is_believed_only_while_its_gateway_holds_the_lock() {
        let tmp = tempfile::tempdir().unwrap();
        let paths = StatePaths::new(tmp.path());
        // A record left by a crash, naming a pid that is alive (here: ours, as a reused pid
        // would be): not believed, since no gateway holds the lock.
        write_json(&paths.gateway_record(), &record(std::process::id())).unwrap();
        assert_eq!(read_live(&paths), None);
        assert!(stale(&paths).is_some());
        let lock = RunLock::acquire(&paths).unwrap();
        assert!(
            read(&paths).is_none(),
            "a starting gateway clears a stale record"
        );
        assert_eq!(read_live(&paths), None, "no record yet");
        lock.record(&record(std::process::id())).unwrap();
        assert_eq!(read_live(&paths), Some(record(std::process::id())));
        assert!(stale(&paths).is_none());
        assert!(!remove_stale(&paths).unwrap(), "a live record is kept");
        assert!(matches!(
            RunLock::acquire(&paths),
            Err(RunRecError::Busy { running: Some(_) })
        ));
        drop(lock);
        assert!(read(&paths).is_none(), "removed on clean exit");
        assert_eq!(read_live(&paths), None);
    }

    #[test]
    fn doctor_removes_a_stale_record() {
        let tmp = tempfile::tempdir().unwrap();
        let paths = StatePaths::new(tmp.path());
        assert!(!remove_stale(&paths).unwrap());
        write_json(&paths.gateway_record(), &record(std::process::id())).unwrap();
        assert!(remove_stale(&paths).unwrap());
        assert!(read(&paths).is_none());
    }

    #[test]
    fn local_url_uses_loopback_for_a_wildcard_and_wss_with_tls() {
        let mut r = record(1);
        r.address = "0.0.0.0:18789".into();
        assert_eq!(r.local_url().unwrap(), "ws://127.0.0.1:18789/");
        r.tls_fingerprint = Some("ab".repeat(32));
        r.address = "[::]:9".into();
        assert_eq!(r.local_url().unwrap(), "wss://[::1]:9/");
    }
}
