//! The append-only audit log, `logs/audit.jsonl`: one JSON object a line, never a secret,
//! rotated at 10 MiB keeping three old files.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::fs::{ensure_dir, rotate, rotated, FileLock, StoreError, StoreResult};
use crate::clock::{iso_from_ms, Millis};

pub const ROTATE_BYTES: u64 = 10 << 20;
pub const KEEP_ROTATED: usize = 3;
/// Longest line `tail` accepts; longer lines (not ours) are skipped.
const MAX_LINE: usize = 64 << 10;

/// One audit record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub ts: String,
    pub ts_ms: Millis,
    /// What happened: `dm.requested`, `dm.approved`, `device.approved`, `store.corrupt`, …
    pub action: String,
    /// Who or what did it: `cli`, `gateway`, `window`, `notification`, `telegram`, …; for a
    /// connection to the gateway, the name its client gave (which proves nothing).
    #[serde(default)]
    pub via: String,
    /// The credential that acted: `local` (this computer's own app or CLI on the files),
    /// `admin-token`, or `device:<id>/<role>` for a paired device's token.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub credential: String,
    #[serde(flatten)]
    pub details: Map<String, Value>,
}

/// Joins a gateway client's self-declared name and the credential its connection proved, as
/// the one `via` string an operation carries to the audit log (see [`AuditEntry::new`]).
pub fn actor(client: &str, credential: &str) -> String {
    format!("{client}@{credential}")
}

impl AuditEntry {
    /// `via` is a name (`window`, `telegram`, …: this computer's own callers) or, from the
    /// gateway, [`actor`]'s `client@credential`; the credential is split off at the last `@`,
    /// so a client calling itself `window@admin-token` is still recorded with what it proved.
    pub fn new(now: Millis, action: &str, via: &str, details: Map<String, Value>) -> Self {
        let (name, credential) = match via.rsplit_once('@') {
            Some((n, c)) => (n, c),
            None => (via, "local"),
        };
        AuditEntry {
            ts: iso_from_ms(now),
            ts_ms: now,
            action: action.into(),
            via: name.into(),
            credential: credential.into(),
            details,
        }
    }
}

/// Appends one entry (under the log's lock, rotating first when the file is full).
pub fn append(path: &Path, entry: &AuditEntry) -> StoreResult<()> {
    append_with_limit(path, entry, ROTATE_BYTES)
}

pub(crate) fn append_with_limit(path: &Path, entry: &AuditEntry, limit: u64) -> StoreResult<()> {
    if let Some(dir) = path.parent() {
        ensure_dir(dir)?;
    }
    let mut line = serde_json::to_vec(entry).map_err(|e| StoreError::Encode {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    line.push(b'\n');
    let _lock = FileLock::acquire(path)?;
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    if size > 0 && size + line.len() as u64 > limit {
        rotate(path, KEEP_ROTATED)?;
    }
    let mut f =
        super::fs::open_append_nofollow(path).map_err(|e| StoreError::io("open", path, e))?;
    // A last line left unfinished (a write cut short by a crash or a full disk, an edit)
    // would run into this entry and hide it from `tail`: finish that line first.
    if ends_unfinished(path)? {
        line.insert(0, b'\n');
    }
    f.write_all(&line)
        .map_err(|e| StoreError::io("append to", path, e))
}

/// Whether the file's last byte is something other than a newline (a line left unfinished).
fn ends_unfinished(path: &Path) -> StoreResult<bool> {
    use std::os::unix::fs::{FileExt, OpenOptionsExt};
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| StoreError::io("open", path, e))?;
    let len = f
        .metadata()
        .map_err(|e| StoreError::io("stat", path, e))?
        .len();
    if len == 0 {
        return Ok(false);
    }
    let mut last = [0u8];
    f.read_exact_at(&mut last, len - 1)
        .map_err(|e| StoreError::io("read", path, e))?;
    Ok(last[0] != b'\n')
}

/// The last `limit` entries, oldest first (current file, then the rotated ones if needed).
/// Lines that do not parse are skipped: the log is for reading, not for decisions.
pub fn tail(path: &Path, limit: usize) -> StoreResult<Vec<AuditEntry>> {
    let mut out: Vec<AuditEntry> = Vec::new();
    let files: Vec<PathBuf> = std::iter::once(path.to_path_buf())
        .chain((1..=KEEP_ROTATED).map(|n| rotated(path, n)))
        .collect();
    for file in files {
        if out.len() >= limit {
            break;
        }
        let f = match std::fs::File::open(&file) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(StoreError::io("open", &file, e)),
        };
        let mut entries: Vec<AuditEntry> = BufReader::new(f)
            .split(b'\n')
            .map_while(Result::ok)
            .filter(|l| l.len() <= MAX_LINE)
            .filter_map(|l| serde_json::from_slice(&l).ok())
            .collect();
        let need = limit - out.len();
        if entries.len() > need {
            entries.drain(..entries.len() - need);
        }
        entries.append(&mut out);
        out = entries;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: i64) -> AuditEntry {
        let mut d = Map::new();
        d.insert("n".into(), Value::from(i));
        AuditEntry::new(i, "test", "unit", d)
    }

    #[test]
    fn appends_and_tails_in_order() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("logs/audit.jsonl");
        for i in 0..5 {
            append(&p, &entry(i)).unwrap();
        }
        let t = tail(&p, 3).unwrap();
        assert_eq!(t.iter().map(|e| e.ts_ms).collect::<Vec<_>>(), vec![2, 3, 4]);
        assert_eq!(crate::store::fs::mode_of(&p).unwrap(), 0o600);
    }

    #[test]
    fn an_entry_appended_after_an_unfinished_line_reads_back() {
        // Found by the audit_log fuzz target (its seed `regression-unfinished-line`): a log
        // whose last line had no newline swallowed the next entry.
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("logs/audit.jsonl");
        append(&p, &entry(1)).unwrap();
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(br#"{"ts":"2026-01-01T00:00:00.000Z","tsMs":2,"act"#)
            .unwrap();
        append(&p, &entry(3)).unwrap();
        let t = tail(&p, 10).unwrap();
        assert_eq!(t.iter().map(|e| e.ts_ms).collect::<Vec<_>>(), vec![1, 3]);
        // A log that is only a fragment, too.
        std::fs::write(&p, b":").unwrap();
        append(&p, &entry(4)).unwrap();
        assert_eq!(tail(&p, 10).unwrap(), vec![entry(4)]);
    }

    #[test]
    fn an_audit_log_that_is_a_symlink_is_not_written_through() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("logs/audit.jsonl");
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        let elsewhere = tmp.path().join("elsewhere");
        std::fs::write(&elsewhere, b"keep\n").unwrap();
        std::os::unix::fs::symlink(&elsewhere, &p).unwrap();
        let err = append(&p, &entry(1)).unwrap_err();
        assert!(err.to_string().contains("audit.jsonl"), "{err}");
        assert_eq!(std::fs::read(&elsewhere).unwrap(), b"keep\n");
    }

    #[test]
    fn rotates_and_keeps_three_old_files() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("audit.jsonl");
        for i in 0..40 {
            append_with_limit(&p, &entry(i), 400).unwrap();
        }
        assert!(rotated(&p, 1).exists() && rotated(&p, 3).exists());
        assert!(!rotated(&p, 4).exists());
        let t = tail(&p, 1000).unwrap();
        assert_eq!(t.last().unwrap().ts_ms, 39);
        let ms: Vec<i64> = t.iter().map(|e| e.ts_ms).collect();
        assert!(
            ms.windows(2).all(|w| w[0] < w[1]),
            "oldest first across files: {ms:?}"
        );
    }
}
