//! `run/gateway.json`: where a running gateway listens, so the CLI can find it. Written when
//! the gateway starts listening, removed on clean exit; a record whose pid is gone is stale.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::clock::Millis;
use crate::store::fs::{read_bytes, write_json, StoreResult};
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

/// The record of a gateway that is running now.
pub fn read_live(paths: &StatePaths) -> Option<GatewayRecord> {
    read(paths).filter(|r| pid_alive(r.pid))
}

pub fn write(paths: &StatePaths, rec: &GatewayRecord) -> StoreResult<()> {
    write_json(&paths.gateway_record(), rec)
}

/// Removes the record if it is ours (another gateway may have replaced it).
pub fn remove_if_ours(paths: &StatePaths, pid: u32) {
    if read(paths).is_some_and(|r| r.pid == pid) {
        let _ = std::fs::remove_file(paths.gateway_record());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_only_when_the_pid_exists() {
        let tmp = tempfile::tempdir().unwrap();
        let paths = StatePaths::new(tmp.path());
        let mut rec = GatewayRecord {
            pid: std::process::id(),
            address: "127.0.0.1:1".into(),
            started_at_ms: 0,
            version: String::new(),
        };
        write(&paths, &rec).unwrap();
        assert_eq!(read_live(&paths), Some(rec.clone()));
        rec.pid = i32::MAX as u32 - 7;
        write(&paths, &rec).unwrap();
        assert_eq!(read_live(&paths), None);
        remove_if_ours(&paths, 1);
        assert!(paths.gateway_record().exists());
        remove_if_ours(&paths, rec.pid);
        assert!(!paths.gateway_record().exists());
    }
}
