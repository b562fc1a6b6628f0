//! OpenClaw's own store, `<dir>/state/openclaw.sqlite`, read and never written: the approved
//! chat senders (`channel_pairing_allow_entries`) and the paired devices
//! (`device_pairing_paired`), as plain rows. Nothing is created beside it either: a store no
//! one has open (no `-wal` file) is read as an immutable file, so SQLite makes no `-wal` or
//! `-shm` of its own; one that OpenClaw's gateway has open in WAL mode is read through a
//! read-only connection that sees the gateway's latest commits.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, ErrorCode, OpenFlags};

/// OpenClaw's SQLite store, relative to its state directory.
pub const OPENCLAW_STORE: &str = "state/openclaw.sqlite";
/// The table of approved chat senders.
pub const ALLOW_TABLE: &str = "channel_pairing_allow_entries";
/// The table of paired devices.
pub const PAIRED_TABLE: &str = "device_pairing_paired";
/// How long a read waits for OpenClaw's gateway to finish a checkpoint or recovery.
const BUSY_WAIT: Duration = Duration::from_secs(5);

const ALLOW_COLUMNS: &[(&str, bool)] = &[
    ("channel_key", true),
    ("account_id", false),
    ("entry", true),
    ("sort_order", false),
    ("updated_at", false),
];

const PAIRED_COLUMNS: &[(&str, bool)] = &[
    ("device_id", true),
    ("public_key", true),
    ("display_name", false),
    ("operator_label", false),
    ("platform", false),
    ("device_family", false),
    ("client_id", false),
    ("client_mode", false),
    ("role", false),
    ("roles_json", false),
    ("scopes_json", false),
    ("approved_scopes_json", false),
    ("remote_ip", false),
    ("tokens_json", false),
    ("approved_via", false),
    ("created_at_ms", false),
    ("approved_at_ms", false),
    ("last_seen_at_ms", false),
];

/// Why OpenClaw's store could not be read. Never carries a row's content.
#[derive(Debug, thiserror::Error)]
pub enum OpenClawStoreError {
    #[error("{} does not exist: no OpenClaw store there", path.display())]
    Missing { path: PathBuf },
    #[error("cannot read {} as an SQLite database: {reason}", path.display())]
    NotSqlite { path: PathBuf, reason: String },
    #[error("{} is not an OpenClaw store: it has no table {table} (PRAGMA user_version is {version})", path.display())]
    NotOpenClaw {
        path: PathBuf,
        table: &'static str,
        version: i64,
    },
    #[error("{}: table {table} has no column {column} (PRAGMA user_version is {version}); this OpenClaw store's layout is not one ClawPair reads", path.display())]
    MissingColumn {
        path: PathBuf,
        table: &'static str,
        column: &'static str,
        version: i64,
    },
    #[error("cannot read table {table} of {}: {reason}", path.display())]
    Query {
        path: PathBuf,
        table: &'static str,
        reason: String,
    },
}

/// One approved sender of a channel account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowRow {
    pub channel_key: String,
    pub account_id: Option<String>,
    pub entry: String,
    pub sort_order: i64,
    pub updated_at: Option<i64>,
}

/// One paired device. `tokens_json` holds OpenClaw's device tokens in plaintext: it is never
/// shown (`Debug` leaves it out).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct PairedRow {
    pub device_id: String,
    pub public_key: String,
    pub display_name: Option<String>,
    pub operator_label: Option<String>,
    pub platform: Option<String>,
    pub device_family: Option<String>,
    pub client_id: Option<String>,
    pub client_mode: Option<String>,
    pub role: Option<String>,
    pub roles_json: Option<String>,
    pub scopes_json: Option<String>,
    pub approved_scopes_json: Option<String>,
    pub remote_ip: Option<String>,
    pub tokens_json: Option<String>,
    pub approved_via: Option<String>,
    pub created_at_ms: Option<i64>,
    pub approved_at_ms: Option<i64>,
    pub last_seen_at_ms: Option<i64>,
}

impl fmt::Debug for PairedRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PairedRow")
            .field("device_id", &self.device_id)
            .field("display_name", &self.display_name)
            .field("role", &self.role)
            .field(
                "tokens_json",
                &self.tokens_json.as_ref().map(|_| "<hidden>"),
            )
            .finish_non_exhaustive()
    }
}

/// What was read, in one consistent snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenClawStore {
    pub path: PathBuf,
    /// `PRAGMA user_version`: OpenClaw's schema version (18 for 2026.9).
    pub schema_version: i64,
    pub allow: Vec<AllowRow>,
    pub paired: Vec<PairedRow>,
    /// Set when a live `-wal` file could not be used (a read-only directory): the latest
    /// writes of a running OpenClaw may not have been seen.
    pub wal_skipped: bool,
}

/// The database of an OpenClaw state directory (`DIR/state/openclaw.sqlite`), or `dir` itself
/// when it names a file.
pub fn store_path(dir: &Path) -> PathBuf {
    if dir.is_file() {
        dir.to_path_buf()
    } else {
        dir.join(OPENCLAW_STORE)
    }
}

fn open(path: &Path, immutable: bool) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    // A URI, so the path's `?`, `#` and `%` cannot be read as parameters.
    let mut uri = url::Url::from_file_path(&abs)
        .map(|u| u.to_string())
        .unwrap_or_else(|_| format!("file:{}", abs.display()));
    uri.push_str(if immutable {
        "?mode=ro&immutable=1"
    } else {
        "?mode=ro"
    });
    let conn = Connection::open_with_flags(uri, flags)?;
    conn.busy_timeout(BUSY_WAIT)?;
    Ok(conn)
}

/// `<db>-wal` or `<db>-shm`.
fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

fn text(v: ValueRef<'_>) -> Option<String> {
    match v {
        ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Integer(i) => Some(i.to_string()),
        ValueRef::Real(r) => Some(r.to_string()),
        ValueRef::Null | ValueRef::Blob(_) => None,
    }
}

fn int(v: ValueRef<'_>) -> Option<i64> {
    match v {
        ValueRef::Integer(i) => Some(i),
        ValueRef::Real(r) if r.is_finite() => Some(r as i64),
        ValueRef::Text(t) => std::str::from_utf8(t).ok()?.trim().parse().ok(),
        _ => None,
    }
}

/// A failure that a read-only directory explains: SQLite could not create the WAL index.
fn needs_immutable(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::CannotOpen) | Some(ErrorCode::ReadOnly)
    )
}

struct Reader<'a> {
    path: &'a Path,
    conn: Connection,
    version: i64,
}

impl Reader<'_> {
    fn columns(&self, table: &'static str) -> Result<BTreeSet<String>, OpenClawStoreError> {
        let q = |e: rusqlite::Error| self.query_err(table, e);
        let mut stmt = self
            .conn
            .prepare(&format!("PRAGMA table_info({table})"))
            .map_err(q)?;
        let names = stmt
            .query_map([], |r| r.get::<_, String>(1))
            .map_err(q)?
            .collect::<Result<BTreeSet<_>, _>>()
            .map_err(q)?;
        Ok(names)
    }

    fn query_err(&self, table: &'static str, e: rusqlite::Error) -> OpenClawStoreError {
        OpenClawStoreError::Query {
            path: self.path.to_path_buf(),
            table,
            reason: e.to_string(),
        }
    }

    /// `SELECT` of the wanted columns in order; an optional one the table lacks reads as NULL.
    fn select(
        &self,
        table: &'static str,
        wanted: &[(&'static str, bool)],
        order: &str,
    ) -> Result<String, OpenClawStoreError> {
        let have = self.columns(table)?;
        let mut cols = Vec::new();
        for (name, required) in wanted {
            if have.contains(*name) {
                cols.push(format!("\"{name}\""));
            } else if *required {
                return Err(OpenClawStoreError::MissingColumn {
                    path: self.path.to_path_buf(),
                    table,
                    column: name,
                    version: self.version,
                });
            } else {
                cols.push(format!("NULL AS \"{name}\""));
            }
        }
        Ok(format!(
            "SELECT {} FROM {table} ORDER BY {order}",
            cols.join(", ")
        ))
    }

    fn allow(&self) -> Result<Vec<AllowRow>, OpenClawStoreError> {
        let sql = self.select(
            ALLOW_TABLE,
            ALLOW_COLUMNS,
            "channel_key, account_id, sort_order, entry",
        )?;
        let q = |e: rusqlite::Error| self.query_err(ALLOW_TABLE, e);
        let mut stmt = self.conn.prepare(&sql).map_err(q)?;
        let rows = stmt
            .query_map([], |r| {
                Ok(AllowRow {
                    channel_key: text(r.get_ref(0)?).unwrap_or_default(),
                    account_id: text(r.get_ref(1)?),
                    entry: text(r.get_ref(2)?).unwrap_or_default(),
                    sort_order: int(r.get_ref(3)?).unwrap_or(0),
                    updated_at: int(r.get_ref(4)?),
                })
            })
            .map_err(q)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(q)?;
        Ok(rows)
    }

    fn paired(&self) -> Result<Vec<PairedRow>, OpenClawStoreError> {
        let sql = self.select(PAIRED_TABLE, PAIRED_COLUMNS, "device_id")?;
        let q = |e: rusqlite::Error| self.query_err(PAIRED_TABLE, e);
        let mut stmt = self.conn.prepare(&sql).map_err(q)?;
        let rows = stmt
            .query_map([], |r| {
                let t = |i: usize| r.get_ref(i).map(text);
                let n = |i: usize| r.get_ref(i).map(int);
                Ok(PairedRow {
                    device_id: t(0)?.unwrap_or_default(),
                    public_key: t(1)?.unwrap_or_default(),
                    display_name: t(2)?,
                    operator_label: t(3)?,
                    platform: t(4)?,
                    device_family: t(5)?,
                    client_id: t(6)?,
                    client_mode: t(7)?,
                    role: t(8)?,
                    roles_json: t(9)?,
                    scopes_json: t(10)?,
                    approved_scopes_json: t(11)?,
                    remote_ip: t(12)?,
                    tokens_json: t(13)?,
                    approved_via: t(14)?,
                    created_at_ms: n(15)?,
                    approved_at_ms: n(16)?,
                    last_seen_at_ms: n(17)?,
                })
            })
            .map_err(q)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(q)?;
        Ok(rows)
    }
}

fn not_sqlite(path: &Path, e: &rusqlite::Error) -> OpenClawStoreError {
    OpenClawStoreError::NotSqlite {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// The schema version and table names, which is also the first read (where a WAL index that
/// cannot be created shows up).
fn survey(conn: &Connection) -> rusqlite::Result<(i64, BTreeSet<String>)> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let mut stmt = conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table'")?;
    let tables = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<BTreeSet<_>, _>>()?;
    Ok((version, tables))
}

/// Reads the approved senders and paired devices of the OpenClaw store at `path`.
pub fn read(path: &Path) -> Result<OpenClawStore, OpenClawStoreError> {
    if !path.is_file() {
        return Err(OpenClawStoreError::Missing {
            path: path.to_path_buf(),
        });
    }
    // A `-wal` file exists while some connection has the database open (or after a crash).
    let live = sidecar(path, "-wal").exists();
    let mut wal_skipped = false;
    let mut conn = open(path, !live).map_err(|e| not_sqlite(path, &e))?;
    let (version, tables) = match survey(&conn) {
        Ok(s) => s,
        Err(e) if live && needs_immutable(&e) => {
            // SQLite could not map the WAL index (a read-only directory): read the main file.
            wal_skipped = true;
            conn = open(path, true).map_err(|e| not_sqlite(path, &e))?;
            survey(&conn).map_err(|e| not_sqlite(path, &e))?
        }
        Err(e) => return Err(not_sqlite(path, &e)),
    };
    for table in [ALLOW_TABLE, PAIRED_TABLE] {
        if !tables.contains(table) {
            return Err(OpenClawStoreError::NotOpenClaw {
                path: path.to_path_buf(),
                table,
                version,
            });
        }
    }
    let reader = Reader {
        path,
        conn,
        version,
    };
    // One read transaction: both tables from the same moment, whatever the gateway writes.
    reader
        .conn
        .execute_batch("BEGIN DEFERRED")
        .map_err(|e| reader.query_err(ALLOW_TABLE, e))?;
    let allow = reader.allow()?;
    let paired = reader.paired()?;
    let _ = reader.conn.execute_batch("COMMIT");
    Ok(OpenClawStore {
        path: path.to_path_buf(),
        schema_version: version,
        allow,
        paired,
        wal_skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_that_is_not_sqlite_is_refused_by_name() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("openclaw.sqlite");
        std::fs::write(&p, b"not a database at all, just some text here").unwrap();
        let e = read(&p).unwrap_err();
        assert!(matches!(e, OpenClawStoreError::NotSqlite { .. }), "{e}");
        assert!(e.to_string().contains("openclaw.sqlite"), "{e}");
    }

    #[test]
    fn a_database_without_the_tables_names_its_version() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("x.sqlite");
        let c = Connection::open(&p).unwrap();
        c.execute_batch("PRAGMA user_version = 7; CREATE TABLE t (a INTEGER);")
            .unwrap();
        drop(c);
        let e = read(&p).unwrap_err();
        assert!(
            matches!(e, OpenClawStoreError::NotOpenClaw { version: 7, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("user_version is 7"), "{e}");
    }

    #[test]
    fn debug_never_shows_the_tokens() {
        let row = PairedRow {
            device_id: "d".into(),
            tokens_json: Some(r#"{"node":{"token":"plain-secret"}}"#.into()),
            ..Default::default()
        };
        assert!(!format!("{row:?}").contains("plain-secret"));
    }
}
