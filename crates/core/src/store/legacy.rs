//! Moving an earlier ClawPair's state out of OpenClaw's directory (`$OPENCLAW_STATE_DIR`, else
//! `~/.openclaw`), which OpenClaw 2026.9 migrates into SQLite and empties.
//!
//! Only ClawPair's own files move; anything else in that directory is OpenClaw's and is left
//! alone. Device files OpenClaw already renamed to `*.migrated` are restored; what it deleted
//! (the chat pairing files) is named, with the command that brings it back.
//!
//! Crash-safe and idempotent: each file moves atomically (a rename, or across filesystems a
//! durable copy renamed into place before the source is removed), so it is always whole in one
//! of the two places, and `clawpair.json` moves last: a start that still finds it in the old
//! directory finishes the job, and one that finds it in the new directory has nothing to do.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::audit::{self, AuditEntry};
use super::fs::{ensure_dir, set_mode, sync_dir, FileLock, StoreError, StoreResult, FILE_MODE};
use super::shown_path;
use super::StatePaths;
use crate::clock::Clock;

pub use super::openclaw::OPENCLAW_STORE;
/// The suffix OpenClaw gives the JSON files it imported into its store.
pub const MIGRATED_SUFFIX: &str = ".migrated";
/// The device files, as named in `devices/`.
pub const DEVICE_FILES: [&str; 3] = ["pending.json", "paired.json", "bootstrap.json"];

/// Why the move could not be done (the caller stops: starting on an empty new directory would
/// strand the old state).
#[derive(Debug, thiserror::Error)]
pub enum MoveError {
    #[error("an earlier ClawPair gateway (pid {pid}) still runs on {dir}; stop it and start again, or pass --state-dir {dir} to keep using that directory")]
    GatewayRunning { pid: u32, dir: String },
    #[error("cannot move ClawPair's state from {from} to {to}: {source}; fix that and start again, or pass --state-dir {from} to keep using the old directory")]
    Store {
        from: String,
        to: String,
        source: StoreError,
    },
}

/// What one start moved.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MoveReport {
    pub from: PathBuf,
    pub to: PathBuf,
    /// Files moved, relative to both directories (restored ones included, by their new name).
    pub moved: Vec<String>,
    /// Device files restored from OpenClaw's `*.migrated` copies (by their new name).
    pub restored: Vec<String>,
    /// Files left in the old directory because the new one holds other content under that name.
    pub kept: Vec<String>,
    /// OpenClaw had already migrated this directory (it left `*.migrated` files).
    pub openclaw_migrated: bool,
    /// OpenClaw keeps a store in the old directory (`state/openclaw.sqlite`).
    pub openclaw_store: bool,
    /// Approved senders and paired devices in that store, when it could be read.
    pub openclaw_holds: Option<(usize, usize)>,
}

impl MoveReport {
    /// The lines to show the user: one, unless OpenClaw got there first.
    pub fn notice(&self) -> Vec<String> {
        let from = shown_path(&self.from);
        let to = shown_path(&self.to);
        let mut out = vec![format!(
            "Moved ClawPair's state from {from} to {to} (OpenClaw 2026.9 empties {from})"
        )];
        if !self.restored.is_empty() {
            out.push(format!(
                "Restored {} from the *.migrated copies OpenClaw left in {from}",
                self.restored.join(", ")
            ));
        }
        let holds = match self.openclaw_holds {
            Some((senders, devices)) => format!(
                " ({} and {} there now)",
                count(senders, "approved sender", "approved senders"),
                count(devices, "paired device", "paired devices")
            ),
            None => String::new(),
        };
        if self.openclaw_migrated {
            out.push(format!(
                "Could not be recovered: OpenClaw had already imported ClawPair's chat pairing files and deleted them (credentials/*-pairing.json, *-allowFrom.json); they live on only in {from}/{OPENCLAW_STORE}{holds}: run `clawpair import --from-openclaw {from}` to bring the approved senders back (pending chat requests are lost; those senders get a new code when they write again)"
            ));
        } else if self.openclaw_holds.is_some_and(|(s, d)| s + d > 0) {
            out.push(format!(
                "OpenClaw's store {from}/{OPENCLAW_STORE} has entries of its own{holds}; `clawpair import --from-openclaw {from}` takes them into ClawPair"
            ));
        }
        for k in &self.kept {
            out.push(format!(
                "Left {from}/{k} where it is: {to}/{k} already exists with other content; compare the two"
            ));
        }
        out
    }
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// What to do with one file of the old directory.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Item {
    /// Relative path in the old directory.
    from: String,
    /// Relative path in the new directory.
    to: String,
    /// The store file whose `.lock` guards it (relative), if any.
    lock: Option<String>,
    /// A `*.migrated` copy: merged into an existing file instead of conflicting with it.
    restore: bool,
}

impl Item {
    fn plain(rel: String, lock: Option<String>) -> Item {
        Item {
            to: rel.clone(),
            from: rel,
            lock,
            restore: false,
        }
    }
}

/// How one file ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Done {
    Moved,
    /// Already in the new directory with the same content (a crash after the copy); the old
    /// copy was removed.
    AlreadyThere,
    /// A `*.migrated` copy whose entries were added to the existing file.
    Merged,
    /// The new directory holds other content under that name; left in place.
    Kept,
}

const SETTINGS: &str = "clawpair.json";
const LAST_GOOD_SETTINGS: &str = "clawpair.json.last-good";

/// Whether `dir` holds an earlier ClawPair's state.
pub fn holds_clawpair_state(dir: &Path) -> bool {
    is_regular_file(&dir.join(SETTINGS))
}

fn is_regular_file(p: &Path) -> bool {
    fs::symlink_metadata(p).is_ok_and(|m| m.is_file())
}

/// Regular files of a directory, by name (none when it does not exist).
fn file_names(dir: &Path) -> Vec<String> {
    let Ok(rd) = fs::read_dir(dir) else {
        return vec![];
    };
    let mut v: Vec<String> = rd
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    v.sort();
    v
}

/// `name` without a `.corrupt-<time>` suffix (the store's moved-aside copies).
fn without_corrupt(name: &str) -> &str {
    name.split(".corrupt-").next().unwrap_or(name)
}

/// `<channel>[-<account>]-pairing.json` or `…-allowFrom.json` with names the store accepts
/// (the one rule of [`super::names`]).
fn is_chat_pairing_file(name: &str) -> bool {
    name.strip_suffix("-pairing.json")
        .or_else(|| name.strip_suffix("-allowFrom.json"))
        .is_some_and(super::names::is_channel_file_prefix)
}

/// Whether `name` is `<base>` or `<base>.<n>` (a rotated log).
fn is_log_of(name: &str, base: &str) -> bool {
    match name.strip_prefix(base) {
        Some("") => true,
        Some(rest) => rest
            .strip_prefix('.')
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit())),
        None => false,
    }
}

/// ClawPair's device identity (`clawpair node`), not OpenClaw's (which keeps PEM keys).
fn is_clawpair_identity(path: &Path) -> bool {
    let Ok(Some(bytes)) = super::fs::read_bytes(path) else {
        return false;
    };
    serde_json::from_slice::<super::identity::IdentityFile>(&bytes).is_ok()
}

/// Every ClawPair file of `old`, `clawpair.json` last.
fn plan(old: &Path) -> Vec<Item> {
    let mut items = Vec::new();
    for name in file_names(&old.join("credentials")) {
        let base = without_corrupt(&name);
        if name.starts_with('.') {
            continue;
        }
        if is_chat_pairing_file(base) || base == "telegram-offset.json" {
            let lock = Some(format!("credentials/{base}"));
            items.push(Item::plain(format!("credentials/{name}"), lock));
        }
    }
    let devices = file_names(&old.join("devices"));
    for file in DEVICE_FILES {
        let lock = Some(format!("devices/{file}"));
        for name in &devices {
            if without_corrupt(name) == file {
                items.push(Item::plain(format!("devices/{name}"), lock.clone()));
            }
        }
        let migrated = format!("{file}{MIGRATED_SUFFIX}");
        if devices.contains(&migrated) {
            items.push(Item {
                from: format!("devices/{migrated}"),
                to: format!("devices/{file}"),
                lock: lock.clone(),
                restore: true,
            });
        }
    }
    let identity = old.join("identity/device.json");
    if is_regular_file(&identity) && is_clawpair_identity(&identity) {
        items.push(Item::plain(
            "identity/device.json".into(),
            Some("identity/device.json".into()),
        ));
    }
    for name in file_names(&old.join("logs")) {
        if is_log_of(&name, "audit.jsonl") {
            items.push(Item::plain(
                format!("logs/{name}"),
                Some("logs/audit.jsonl".into()),
            ));
        } else if is_log_of(&name, super::LOG_FILE) {
            items.push(Item::plain(format!("logs/{name}"), None));
        }
    }
    for name in file_names(old) {
        // Moved-aside copies, and the last settings ClawPair wrote (`doctor` offers them).
        if name != SETTINGS && (without_corrupt(&name) == SETTINGS || name == LAST_GOOD_SETTINGS) {
            items.push(Item::plain(name, Some(SETTINGS.into())));
        }
    }
    items.push(Item::plain(SETTINGS.into(), Some(SETTINGS.into())));
    items
}

fn is_cross_device(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EXDEV)
}

fn parent_of(p: &Path) -> &Path {
    p.parent().unwrap_or(Path::new("."))
}

/// Copies `src` to `dst` durably (a `0600` temp file beside `dst`, fsync, rename, fsync the
/// directory), then removes `src`: across filesystems the file is whole in one place or both,
/// never half in either.
pub(crate) fn copy_then_remove(src: &Path, dst: &Path) -> StoreResult<()> {
    let dir = parent_of(dst);
    let name = dst
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let copied = (|| {
        let mut from = File::open(src).map_err(|e| StoreError::io("open", src, e))?;
        let mut to = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .open(&tmp)
            .map_err(|e| StoreError::io("write", dst, e))?;
        io::copy(&mut from, &mut to).map_err(|e| StoreError::io("copy into", dst, e))?;
        to.flush().map_err(|e| StoreError::io("write", dst, e))?;
        to.sync_all().map_err(|e| StoreError::io("sync", dst, e))?;
        fs::rename(&tmp, dst).map_err(|e| StoreError::io("move into place", dst, e))
    })();
    if copied.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    copied?;
    sync_dir(dir)?;
    fs::remove_file(src).map_err(|e| StoreError::io("remove", src, e))?;
    sync_dir(parent_of(src))
}

/// Moves one file whose destination does not exist: a rename on the same filesystem, else
/// [`copy_then_remove`]. The result is `0600`.
fn move_new(src: &Path, dst: &Path) -> StoreResult<()> {
    ensure_dir(parent_of(dst))?;
    match fs::rename(src, dst) {
        Ok(()) => {
            sync_dir(parent_of(dst))?;
            sync_dir(parent_of(src))?;
        }
        Err(e) if is_cross_device(&e) => copy_then_remove(src, dst)?,
        Err(e) => return Err(StoreError::io("move", src, e)),
    }
    set_mode(dst, FILE_MODE)
}

fn remove_durably(p: &Path) -> StoreResult<()> {
    fs::remove_file(p).map_err(|e| StoreError::io("remove", p, e))?;
    sync_dir(parent_of(p))
}

fn read_whole(p: &Path) -> StoreResult<Vec<u8>> {
    fs::read(p).map_err(|e| StoreError::io("read", p, e))
}

/// Adds the entries of a `*.migrated` copy (an object keyed by id) that the existing file lacks.
/// `None` when either side is not a JSON object: then they are not merged.
fn merged(existing: &[u8], restored: &[u8]) -> Option<(Map<String, Value>, usize)> {
    let mut have: Map<String, Value> = serde_json::from_slice(existing).ok()?;
    let old: Map<String, Value> = serde_json::from_slice(restored).ok()?;
    let mut added = 0;
    for (k, v) in old {
        if !have.contains_key(&k) {
            have.insert(k, v);
            added += 1;
        }
    }
    Some((have, added))
}

/// Moves (or restores) one file; the caller holds the locks.
fn apply(item: &Item, old: &Path, new: &Path) -> StoreResult<Done> {
    let src = old.join(&item.from);
    let dst = new.join(&item.to);
    if !is_regular_file(&src) {
        // Moved by an earlier, interrupted start.
        return Ok(Done::AlreadyThere);
    }
    if !dst.exists() {
        move_new(&src, &dst)?;
        return Ok(Done::Moved);
    }
    let here = read_whole(&dst)?;
    let there = read_whole(&src)?;
    if here == there {
        remove_durably(&src)?;
        return Ok(Done::AlreadyThere);
    }
    if item.restore {
        if let Some((value, added)) = merged(&here, &there) {
            if added > 0 {
                super::fs::write_json(&dst, &value)?;
            }
            remove_durably(&src)?;
            return Ok(Done::Merged);
        }
    }
    Ok(Done::Kept)
}

/// Moves an earlier ClawPair's state from `old` (OpenClaw's directory) to `new` (ClawPair's
/// default directory) when `new` has no `clawpair.json` yet and `old` has one. `Ok(None)`: there
/// was nothing to do. Holds `new/clawpair.json`'s lock throughout, so two processes starting at
/// once move the state once; each file is moved under its own `.lock`, as the store writes it.
pub fn move_earlier_state(
    old: &Path,
    new: &Path,
    clock: &dyn Clock,
) -> Result<Option<MoveReport>, MoveError> {
    if same_dir(old, new) || holds_clawpair_state(new) || !holds_clawpair_state(old) {
        return Ok(None);
    }
    let fail = |source: StoreError| MoveError::Store {
        from: shown_path(old),
        to: shown_path(new),
        source,
    };
    let old_paths = StatePaths::new(old);
    if let Some(rec) = crate::store::runrec::read_maybe_running(&old_paths) {
        return Err(MoveError::GatewayRunning {
            pid: rec.pid,
            dir: shown_path(old),
        });
    }
    ensure_dir(new).map_err(fail)?;
    let _whole = FileLock::acquire(&new.join(SETTINGS)).map_err(fail)?;
    // Another process may have finished the move while this one waited for the lock.
    if holds_clawpair_state(new) || !holds_clawpair_state(old) {
        return Ok(None);
    }
    let mut report = MoveReport {
        from: old.to_path_buf(),
        to: new.to_path_buf(),
        openclaw_store: old.join(OPENCLAW_STORE).exists(),
        ..Default::default()
    };
    if report.openclaw_store {
        report.openclaw_holds = super::openclaw::read(&old.join(OPENCLAW_STORE))
            .ok()
            .map(|s| (s.allow.len(), s.paired.len()));
    }
    let items = plan(old);
    report.openclaw_migrated = items.iter().any(|i| i.restore);
    let mut locks_used: Vec<String> = Vec::new();
    for item in &items {
        let (_old_lock, _new_lock) = match &item.lock {
            Some(l) => {
                if !locks_used.contains(l) {
                    locks_used.push(l.clone());
                }
                let old_lock = FileLock::acquire(&old.join(l)).map_err(fail)?;
                // `clawpair.json`'s lock in the new directory is already held (`_whole`).
                let new_lock = if l == SETTINGS {
                    None
                } else {
                    Some(FileLock::acquire(&new.join(l)).map_err(fail)?)
                };
                (Some(old_lock), new_lock)
            }
            None => (None, None),
        };
        match apply(item, old, new).map_err(fail)? {
            Done::Moved | Done::AlreadyThere | Done::Merged => {
                if item.restore {
                    report.restored.push(item.to.clone());
                }
                report.moved.push(item.to.clone());
            }
            Done::Kept => report.kept.push(item.from.clone()),
        }
    }
    tidy(old, &locks_used, &report.moved);
    let entry = AuditEntry::new(
        clock.now_ms(),
        "state.moved",
        "startup",
        audit_details(&report),
    );
    if let Err(e) = audit::append(&StatePaths::new(new).audit_log(), &entry) {
        tracing::warn!("could not write the audit log: {e}");
    }
    Ok(Some(report))
}

fn audit_details(r: &MoveReport) -> Map<String, Value> {
    let mut d = Map::new();
    d.insert("from".into(), r.from.display().to_string().into());
    d.insert("to".into(), r.to.display().to_string().into());
    d.insert("files".into(), r.moved.len().into());
    d.insert("restored".into(), r.restored.clone().into());
    d.insert("kept".into(), r.kept.clone().into());
    d.insert("openclawMigrated".into(), r.openclaw_migrated.into());
    d.insert("openclawStore".into(), r.openclaw_store.into());
    d
}

/// Whether `base`, in the directory `dir` of a state directory, names one of the store's files.
fn is_store_file(dir: &str, base: &str) -> bool {
    match dir {
        "credentials" => is_chat_pairing_file(base) || base == "telegram-offset.json",
        "devices" => DEVICE_FILES.contains(&base),
        "logs" => base == "audit.jsonl",
        "identity" => base == "device.json",
        "" => base == SETTINGS,
        _ => false,
    }
}

/// Removes what ClawPair leaves behind in the old directory once its files are gone: the
/// `.lock` sidecars, a stale gateway record, and the directories it emptied. Best effort.
fn tidy(old: &Path, locks: &[String], moved: &[String]) {
    for l in locks {
        let lock = FileLock::lock_path(&old.join(l));
        let _ = fs::remove_file(lock);
    }
    // Sidecars of ClawPair's files that OpenClaw deleted (it leaves the `.lock` behind).
    for dir in ["", "credentials", "devices", "logs", "identity"] {
        let d = old.join(dir);
        for name in file_names(&d) {
            if let Some(base) = name.strip_suffix(".lock") {
                if is_store_file(dir, base) && !d.join(base).exists() {
                    let _ = fs::remove_file(d.join(&name));
                }
            }
        }
    }
    let mut emptied: Vec<&str> = moved
        .iter()
        .filter_map(|m| m.split_once('/'))
        .map(|(d, _)| d)
        .collect();
    // Not live (checked before the move): a stale record of an earlier gateway.
    let record = StatePaths::new(old).gateway_record();
    if is_regular_file(&record) {
        let _ = fs::remove_file(FileLock::lock_path(&record));
        let _ = fs::remove_file(&record);
        emptied.push("run");
    }
    emptied.dedup();
    for d in emptied {
        // Only an empty directory goes; one with anything of OpenClaw's in it stays.
        let _ = fs::remove_dir(old.join(d));
    }
    let _ = sync_dir(old);
}

fn same_dir(a: &Path, b: &Path) -> bool {
    if a == b {
        return true;
    }
    match (fs::canonicalize(a), fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// `*.migrated` files OpenClaw left in `devices/` of `dir`, by name.
pub fn migrated_leftovers(dir: &Path) -> Vec<String> {
    file_names(&dir.join("devices"))
        .into_iter()
        .filter(|n| n.ends_with(MIGRATED_SUFFIX))
        .collect()
}

/// Restores `devices/*.migrated` in place (for `doctor --fix` on a state directory OpenClaw
/// migrated): each goes back to its name, or its missing entries are added to the file that
/// replaced it. Returns what was restored.
pub fn restore_in_place(dir: &Path) -> StoreResult<Vec<String>> {
    let mut out = Vec::new();
    for file in DEVICE_FILES {
        let rel = format!("devices/{file}");
        let item = Item {
            from: format!("{rel}{MIGRATED_SUFFIX}"),
            to: rel.clone(),
            lock: Some(rel.clone()),
            restore: true,
        };
        if !is_regular_file(&dir.join(&item.from)) {
            continue;
        }
        let _lock = FileLock::acquire(&dir.join(&rel))?;
        match apply(&item, dir, dir)? {
            Done::Kept => {}
            _ => out.push(rel),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn write(p: &Path, text: &str) {
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    #[test]
    fn only_clawpair_files_are_planned_and_settings_go_last() {
        let tmp = tempfile::tempdir().unwrap();
        let old = tmp.path();
        for f in [
            "clawpair.json",
            "openclaw.json",
            "credentials/telegram-allowFrom.json",
            "credentials/telegram-work-allowFrom.json",
            "credentials/telegram-pairing.json",
            "credentials/telegram-offset.json",
            "credentials/oauth.json",
            "credentials/Bad-allowFrom.json",
            "credentials/evil-..-allowFrom.json",
            "credentials/..-pairing.json",
            "credentials/telegram-allowFrom.json.lock",
            "devices/paired.json.migrated",
            "devices/pending.json",
            "devices/other.json",
            "logs/audit.jsonl",
            "logs/audit.jsonl.2",
            "logs/clawpair.log.1",
            "logs/gateway.log",
            "state/openclaw.sqlite",
        ] {
            write(&old.join(f), "{}");
        }
        write(
            &old.join("identity/device.json"),
            r#"{"deviceIdentity":1,"publicKeyPem":"x","privateKeyPem":"y"}"#,
        );
        let items = plan(old);
        let from: Vec<&str> = items.iter().map(|i| i.from.as_str()).collect();
        assert_eq!(
            from,
            vec![
                "credentials/telegram-allowFrom.json",
                "credentials/telegram-offset.json",
                "credentials/telegram-pairing.json",
                "credentials/telegram-work-allowFrom.json",
                "devices/pending.json",
                "devices/paired.json.migrated",
                "logs/audit.jsonl",
                "logs/audit.jsonl.2",
                "logs/clawpair.log.1",
                "clawpair.json",
            ]
        );
        let restore = items.iter().find(|i| i.restore).unwrap();
        assert_eq!(restore.to, "devices/paired.json");
    }

    #[test]
    fn copy_across_filesystems_leaves_one_whole_file() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("a/x.json");
        let dst = tmp.path().join("b/x.json");
        write(&src, "{\"a\":1}");
        fs::create_dir_all(dst.parent().unwrap()).unwrap();
        copy_then_remove(&src, &dst).unwrap();
        assert!(!src.exists());
        assert_eq!(fs::read_to_string(&dst).unwrap(), "{\"a\":1}");
        assert_eq!(super::super::fs::mode_of(&dst).unwrap(), 0o600);
        let leftovers: Vec<_> = fs::read_dir(dst.parent().unwrap())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "no temp file left: {leftovers:?}");
    }

    #[test]
    fn a_migrated_copy_adds_only_missing_entries() {
        let (v, added) = merged(br#"{"a":1,"b":2}"#, br#"{"b":9,"c":3}"#).unwrap();
        assert_eq!(added, 1);
        assert_eq!(v["b"], 2, "the newer file wins");
        assert_eq!(v["c"], 3);
        assert!(merged(b"[]", b"{}").is_none());
    }

    #[test]
    fn nothing_happens_without_an_earlier_clawpair() {
        let tmp = tempfile::tempdir().unwrap();
        let old = tmp.path().join("old");
        let new = tmp.path().join("new");
        write(&old.join("openclaw.json"), "{}");
        write(&old.join("credentials/telegram-allowFrom.json"), "{}");
        let r = move_earlier_state(&old, &new, &ManualClock::new(0)).unwrap();
        assert!(r.is_none());
        assert!(!new.exists());
        assert!(old.join("credentials/telegram-allowFrom.json").exists());
    }

    #[test]
    fn rotated_log_names_are_recognised() {
        assert!(is_log_of("audit.jsonl", "audit.jsonl"));
        assert!(is_log_of("audit.jsonl.3", "audit.jsonl"));
        assert!(!is_log_of("audit.jsonl.x", "audit.jsonl"));
        assert!(!is_log_of("audit.jsonl.", "audit.jsonl"));
        assert!(!is_log_of("audit.jsonlx", "audit.jsonl"));
    }
}
