//! Safe file primitives for the state directory: `0700` dirs, `0600` files, atomic durable
//! writes, cross-process locks on sidecar `.lock` files, and JSON reads that never treat a
//! corrupt file as empty without moving it aside first.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::clock::{file_stamp, Clock};

pub const DIR_MODE: u32 = 0o700;
pub const FILE_MODE: u32 = 0o600;
/// The largest state file read; anything bigger is refused rather than loaded into memory.
pub const MAX_STATE_FILE_BYTES: u64 = 16 << 20;
/// How long a reader waits before looking again at a file that did not parse. Not at all in
/// fuzz builds (cargo-fuzz sets `cfg(fuzzing)`): nothing rewrites a fuzz input meanwhile, and
/// the wait would hold the store-file targets to a few inputs a second.
const SETTLE: Duration = if cfg!(fuzzing) {
    Duration::ZERO
} else {
    Duration::from_millis(150)
};
/// How long a writer waits for another process's lock before giving up with an error.
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is corrupt ({reason}); it was moved aside to {} and nothing was admitted from it", path.display(), moved_to.display())]
    Corrupt {
        path: PathBuf,
        moved_to: PathBuf,
        reason: String,
    },
    #[error("{} is {size} bytes, more than the {MAX_STATE_FILE_BYTES}-byte limit; refusing to load it", path.display())]
    TooLarge { path: PathBuf, size: u64 },
    #[error("timed out after {}s waiting for the lock on {} (another clawpair process is writing)", LOCK_TIMEOUT.as_secs(), path.display())]
    LockTimeout { path: PathBuf },
    #[error("cannot encode {}: {reason}", path.display())]
    Encode { path: PathBuf, reason: String },
    /// `reason` says what is wrong and the command that fixes it.
    #[error("refusing to use {}: {reason}", path.display())]
    Untrusted { path: PathBuf, reason: String },
    /// A file the owner edits ([`OWNER_EDITED`]) that does not parse: left exactly as it is.
    #[error("{} has a mistake at line {line}, column {column}: {reason}. Nothing was changed: correct it, or run `clawpair doctor` for the last settings ClawPair wrote", path.display())]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        reason: String,
    },
}

impl StoreError {
    pub fn io(op: &'static str, path: &Path, source: std::io::Error) -> Self {
        StoreError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Creates `dir` (and parents) with mode `0700`, whatever the umask. Existing directories keep
/// their mode: `doctor` reports and fixes loose ones.
pub fn ensure_dir(dir: &Path) -> StoreResult<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut missing = Vec::new();
    let mut cur = Some(dir);
    while let Some(p) = cur {
        if p.as_os_str().is_empty() || p.exists() {
            break;
        }
        missing.push(p.to_path_buf());
        cur = p.parent();
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .map_err(|e| StoreError::io("create directory", dir, e))?;
    for p in missing {
        fs::set_permissions(&p, fs::Permissions::from_mode(DIR_MODE))
            .map_err(|e| StoreError::io("set permissions on", &p, e))?;
    }
    Ok(())
}

/// Why `path` (the state directory or `clawpair.json`) cannot be trusted, as ssh refuses a
/// `~/.ssh` another user could write: owned by someone other than this user (or root), or
/// writable by group or others. The error carries the command that fixes it. Symlinks are
/// followed: what counts is the directory or file that is used.
pub fn check_trusted(path: &Path) -> StoreResult<()> {
    let m = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StoreError::io("stat", path, e)),
    };
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let shown = path.display();
    let untrusted = |what: String, fix: String| StoreError::Untrusted {
        path: path.to_path_buf(),
        reason: format!("{what}, so another user could change what ClawPair trusts; fix: {fix}"),
    };
    if m.uid() != me && m.uid() != 0 {
        return Err(untrusted(
            format!("it is owned by uid {}, not by you (uid {me})", m.uid()),
            format!(
                "`chown {me} {shown}` if it is yours, else use a state directory of your own (--state-dir or ${})",
                super::STATE_DIR_ENV
            ),
        ));
    }
    let mode = m.permissions().mode() & 0o7777;
    if mode & 0o022 != 0 {
        let (want, what) = if m.is_dir() {
            (DIR_MODE, "directory")
        } else {
            (FILE_MODE, "file")
        };
        return Err(untrusted(
            format!("the {what} is writable by group or others (mode {mode:o})"),
            format!("`chmod {want:o} {shown}`"),
        ));
    }
    Ok(())
}

/// Opens a file for appending (created `0600` if missing) without following a symlink: a
/// link planted at a log's name must not make ClawPair write somewhere else.
pub fn open_append_nofollow(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Makes a directory's entries (a rename, a new or removed file) durable.
pub fn sync_dir(dir: &Path) -> StoreResult<()> {
    let d = File::open(dir).map_err(|e| StoreError::io("open directory", dir, e))?;
    d.sync_all()
        .map_err(|e| StoreError::io("sync directory", dir, e))
}

/// The `n`th older copy of a size-rotated file: `path` with `.n` appended.
pub fn rotated(path: &Path, n: usize) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// Rotates a log by one: `path.1` … `path.{keep - 1}` move up a number (the oldest, `.keep`,
/// is replaced) and `path` becomes `path.1`. The caller starts a new `path` and holds whatever
/// lock keeps writers out meanwhile.
pub fn rotate(path: &Path, keep: usize) -> StoreResult<()> {
    for n in (1..keep).rev() {
        let from = rotated(path, n);
        if from.exists() {
            fs::rename(&from, rotated(path, n + 1))
                .map_err(|e| StoreError::io("rotate", &from, e))?;
        }
    }
    fs::rename(path, rotated(path, 1)).map_err(|e| StoreError::io("rotate", path, e))
}

/// Replaces `path` with `bytes` so that a crash at any moment leaves either the old or the new
/// content: a `0600` temp file in the same directory, fsync, rename, fsync the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> StoreResult<()> {
    let dir = parent_of(path);
    ensure_dir(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    // Errors name the file being written, not the temp file (which is removed on failure):
    // "cannot write …/telegram-allowFrom.json: No space left on device".
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .open(&tmp)
            .map_err(|e| StoreError::io("write", path, e))?;
        // The umask may have narrowed or (never) widened the mode; make it exact.
        f.set_permissions(fs::Permissions::from_mode(FILE_MODE))
            .map_err(|e| StoreError::io("set permissions on", path, e))?;
        f.write_all(bytes)
            .map_err(|e| StoreError::io("write", path, e))?;
        f.sync_all().map_err(|e| StoreError::io("sync", path, e))?;
        fs::rename(&tmp, path).map_err(|e| StoreError::io("replace", path, e))?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Serialises as 2-space-indented JSON with a trailing newline and writes atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> StoreResult<()> {
    let bytes = to_json_bytes(path, value)?;
    write_atomic(path, &bytes)
}

fn to_json_bytes<T: Serialize>(path: &Path, value: &T) -> StoreResult<Vec<u8>> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| StoreError::Encode {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// An exclusive OS lock on `<file>.lock`, released when dropped (or when the process dies, so a
/// crash never leaves a stale lock). Locks are per open file, so threads of one process exclude
/// each other too.
#[derive(Debug)]
pub struct FileLock {
    file: File,
}

impl FileLock {
    pub fn lock_path(target: &Path) -> PathBuf {
        let mut name = target
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        name.push(".lock");
        target.with_file_name(name)
    }

    /// Waits (with short sleeps, up to [`LOCK_TIMEOUT`]) for the lock that guards `target`.
    pub fn acquire(target: &Path) -> StoreResult<FileLock> {
        let path = Self::lock_path(target);
        ensure_dir(parent_of(&path))?;
        let file = open_lock_file(&path)?;
        wait_for_lock(&path, || file.try_lock())?;
        Ok(FileLock { file })
    }
}

/// Opens (creating, `0600`) a file that is only ever locked, never through a symlink: a link
/// at the lock's name would make this create (or lock) a file anywhere the user can write.
pub fn open_lock_file(path: &Path) -> StoreResult<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| StoreError::io("open lock file", path, e))
}

/// Retries `try_lock` with short, growing sleeps until it succeeds or [`LOCK_TIMEOUT`] passes.
fn wait_for_lock(path: &Path, try_lock: impl Fn() -> Result<(), TryLockError>) -> StoreResult<()> {
    let start = Instant::now();
    let mut wait = Duration::from_micros(200);
    loop {
        match try_lock() {
            Ok(()) => return Ok(()),
            Err(TryLockError::WouldBlock) => {
                if start.elapsed() > LOCK_TIMEOUT {
                    return Err(StoreError::LockTimeout {
                        path: path.to_path_buf(),
                    });
                }
                std::thread::sleep(wait);
                wait = (wait * 2).min(Duration::from_millis(20));
            }
            Err(TryLockError::Error(e)) => return Err(StoreError::io("lock", path, e)),
        }
    }
}

impl FileLock {
    /// A shared lock on the existing `<target>.lock`, for readers: opened read-only (a lock
    /// needs no write access) and never through a symlink. `Ok(None)` when there is no lock
    /// file, so no writer ever ran.
    pub fn acquire_shared_existing(target: &Path) -> StoreResult<Option<FileLock>> {
        let path = Self::lock_path(target);
        let file = match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::io("open lock file", &path, e)),
        };
        wait_for_lock(&path, || file.try_lock_shared())?;
        Ok(Some(FileLock { file }))
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// Reads a whole state file, refusing anything larger than [`MAX_STATE_FILE_BYTES`].
/// `Ok(None)` when the file does not exist.
pub fn read_bytes(path: &Path) -> StoreResult<Option<Vec<u8>>> {
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StoreError::io("open", path, e)),
    };
    let size = f
        .metadata()
        .map_err(|e| StoreError::io("stat", path, e))?
        .len();
    if size > MAX_STATE_FILE_BYTES {
        return Err(StoreError::TooLarge {
            path: path.to_path_buf(),
            size,
        });
    }
    let mut buf = Vec::with_capacity(size as usize);
    f.take(MAX_STATE_FILE_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| StoreError::io("read", path, e))?;
    Ok(Some(buf))
}

/// The files the owner edits by hand (`clawpair.json`). One that does not parse is never
/// moved aside nor replaced by defaults: reading it fails with [`StoreError::Invalid`] (the
/// line, the column, what is wrong), and whoever read it refuses to go on. Every other state
/// file is ClawPair's own, and a corrupt one is moved aside.
pub const OWNER_EDITED: &[&str] = &["clawpair.json"];

pub fn owner_edited(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| OWNER_EDITED.contains(&n))
}

/// A parse error of an owner-edited file, with where it is and what it is.
fn invalid(path: &Path, e: &serde_json::Error) -> StoreError {
    let text = e.to_string();
    // serde_json ends its message with " at line L column C": said once, in the fields.
    let reason = text
        .rsplit_once(" at line ")
        .map_or(text.as_str(), |(what, _)| what)
        .to_string();
    StoreError::Invalid {
        path: path.to_path_buf(),
        line: e.line(),
        column: e.column(),
        reason,
    }
}

/// Moves a file that does not parse to `<file>.corrupt-<timestamp>` so its content is kept.
pub fn move_aside(path: &Path, clock: &dyn Clock) -> StoreResult<PathBuf> {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(format!(".corrupt-{}", file_stamp(clock.now_ms())));
    let mut target = path.with_file_name(&name);
    let mut n = 1;
    while target.exists() {
        let mut alt = name.clone();
        alt.push(format!("-{n}"));
        target = path.with_file_name(alt);
        n += 1;
    }
    fs::rename(path, &target).map_err(|e| StoreError::io("move aside", path, e))?;
    let _ = sync_dir(parent_of(path));
    Ok(target)
}

/// Parses a JSON state file. Missing → `T::default()`. Unparseable → moved aside and
/// [`StoreError::Corrupt`], so the caller reports it and goes on fail-closed.
pub fn read_json<T: DeserializeOwned + Default>(path: &Path, clock: &dyn Clock) -> StoreResult<T> {
    let Some(bytes) = read_bytes(path)? else {
        return Ok(T::default());
    };
    parse_or_move_aside(path, &bytes, clock)
}

fn parse_or_move_aside<T: DeserializeOwned + Default>(
    path: &Path,
    bytes: &[u8],
    clock: &dyn Clock,
) -> StoreResult<T> {
    let e = match serde_json::from_slice::<T>(bytes) {
        Ok(v) => return Ok(v),
        Err(e) => e,
    };
    // An editor or script that rewrites the file in place (truncate, then write) can be caught
    // half-way. Look again before calling the file corrupt.
    std::thread::sleep(SETTLE);
    let e = match read_bytes(path)? {
        None => return Ok(T::default()),
        Some(again) if again != bytes => match serde_json::from_slice::<T>(&again) {
            Ok(v) => return Ok(v),
            Err(e) => e,
        },
        Some(_) => e,
    };
    if owner_edited(path) {
        return Err(invalid(path, &e));
    }
    let moved_to = move_aside(path, clock)?;
    Err(StoreError::Corrupt {
        path: path.to_path_buf(),
        moved_to,
        reason: e.to_string(),
    })
}

/// Read-modify-write under the file's lock. `change` edits the value and returns a result; the
/// file is rewritten only when the serialised value differs from what was read. If `change`
/// fails, nothing is written.
pub fn update_json<T, R, E>(
    path: &Path,
    clock: &dyn Clock,
    change: impl FnOnce(&mut T) -> Result<R, E>,
) -> Result<R, E>
where
    T: DeserializeOwned + Serialize + Default,
    E: From<StoreError>,
{
    let _lock = FileLock::acquire(path)?;
    let before = read_bytes(path)?;
    let mut value: T = match &before {
        Some(b) => parse_or_move_aside(path, b, clock)?,
        None => T::default(),
    };
    let out = change(&mut value)?;
    let after = to_json_bytes(path, &value)?;
    let unchanged = match &before {
        Some(b) => b.as_slice() == after.as_slice(),
        // Reading a file that does not exist must not create an empty one.
        None => after == to_json_bytes(path, &T::default())?,
    };
    if !unchanged {
        write_atomic(path, &after)?;
    }
    Ok(out)
}

/// Identity of a file's current content: a rename gives a new inode, an edit a new mtime/size.
/// Not enough on its own: an edit within one tick of the filesystem's clock that keeps the
/// size (and a reused inode) leaves it the same; see [`FileId::racy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId {
    ino: u64,
    dev: u64,
    mtime_ns: i128,
    size: u64,
}

/// How long after its mtime a file may still change without its mtime changing: a few
/// kernel ticks where timestamps have sub-second parts, two seconds where they have none
/// (filesystems that keep whole seconds, or two like FAT).
const FINE_TICK_NS: i128 = 50_000_000;
const COARSE_TICK_NS: i128 = 2_000_000_000;

impl FileId {
    /// Whether a change made after `seen_at_ns` could still carry this same mtime: the file
    /// was looked at within one timestamp tick of its last change (or its mtime is in the
    /// future). Such an entry is checked against the content, as git does with racily clean
    /// index entries.
    fn racy(&self, seen_at_ns: i128) -> bool {
        let tick = if self.mtime_ns % 1_000_000_000 == 0 {
            COARSE_TICK_NS
        } else {
            FINE_TICK_NS
        };
        seen_at_ns - self.mtime_ns < tick
    }
}

fn now_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

fn file_id(path: &Path) -> StoreResult<Option<FileId>> {
    match fs::metadata(path) {
        Ok(m) => Ok(Some(FileId {
            ino: m.ino(),
            dev: m.dev(),
            mtime_ns: m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128,
            size: m.size(),
        })),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StoreError::io("stat", path, e)),
    }
}

/// A parsed file and what it was parsed from.
struct CacheEntry<T> {
    id: Option<FileId>,
    /// SHA-256 of the bytes parsed, to check a racy entry against.
    digest: [u8; 32],
    /// Read within a tick of its mtime: a same-size edit in that tick would keep the id.
    racy: bool,
    value: Arc<T>,
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

/// Parsed files kept in memory until the file on disk changes (by us or by another process), so
/// hot paths cost one `stat` instead of a parse.
pub struct JsonCache<T> {
    entries: Mutex<HashMap<PathBuf, CacheEntry<T>>>,
}

impl<T> Default for JsonCache<T> {
    fn default() -> Self {
        JsonCache {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<T: DeserializeOwned + Default> JsonCache<T> {
    pub fn get(&self, path: &Path, clock: &dyn Clock) -> StoreResult<Arc<T>> {
        // Take the time and the id before reading: a write racing with us then only causes a
        // re-read, and an entry read within a tick of its mtime is marked racy.
        let seen_at = now_ns();
        let id = file_id(path)?;
        let mut known = None;
        if let Ok(map) = self.entries.lock() {
            if let Some(e) = map.get(path) {
                if e.id == id {
                    if !e.racy {
                        return Ok(e.value.clone());
                    }
                    known = Some((e.digest, e.value.clone()));
                }
            }
        }
        let (digest, value) = match id {
            None => (digest(b""), Arc::new(T::default())),
            Some(_) => match read_bytes(path)? {
                None => (digest(b""), Arc::new(T::default())),
                Some(bytes) => {
                    let d = digest(&bytes);
                    match known {
                        // A racy entry whose content did not change: keep the parsed value.
                        Some((kd, v)) if kd == d => (d, v),
                        _ => (d, Arc::new(parse_or_move_aside(path, &bytes, clock)?)),
                    }
                }
            },
        };
        let racy = id.is_some_and(|i| i.racy(seen_at));
        if let Ok(mut map) = self.entries.lock() {
            map.insert(
                path.to_path_buf(),
                CacheEntry {
                    id,
                    digest,
                    racy,
                    value: value.clone(),
                },
            );
        }
        Ok(value)
    }

    /// The value last read from `path`, whatever the file holds now (a settings file that an
    /// edit broke keeps the settings it held before).
    pub fn last(&self, path: &Path) -> Option<Arc<T>> {
        self.entries.lock().ok()?.get(path).map(|e| e.value.clone())
    }

    /// The cached value if the file has not changed since it was read, at the cost of one
    /// `stat`; `None` when it would have to be read (or the `stat` failed, or the entry is
    /// racy and must be checked against the content). Lets an async task decide from memory
    /// and leave reading to a blocking thread.
    pub fn peek(&self, path: &Path) -> Option<Arc<T>> {
        let id = file_id(path).ok()?;
        let map = self.entries.lock().ok()?;
        match map.get(path) {
            Some(e) if e.id == id && !e.racy => Some(e.value.clone()),
            _ => None,
        }
    }
}

/// Mode bits of a path (permission part only).
pub fn mode_of(path: &Path) -> StoreResult<u32> {
    fs::symlink_metadata(path)
        .map(|m| m.permissions().mode() & 0o7777)
        .map_err(|e| StoreError::io("stat", path, e))
}

pub fn set_mode(path: &Path, mode: u32) -> StoreResult<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| StoreError::io("set permissions on", path, e))
}

/// Sets the mtime of every file under `dir` a second back, as if it had been written a while
/// ago: the cache then trusts what it reads at once instead of checking it again (see
/// [`FileId::racy`]). For tests of the in-memory paths.
#[cfg(test)]
pub fn backdate_for_tests(dir: &Path) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            backdate_for_tests(&p);
        } else if let Ok(f) = File::options().write(true).open(&p) {
            let then = std::time::SystemTime::now() - Duration::from_secs(1);
            let _ = f.set_modified(then);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[derive(serde::Serialize, serde::Deserialize, Default, Debug, PartialEq)]
    struct Doc {
        items: Vec<u32>,
    }

    #[test]
    fn atomic_write_creates_0600_file_in_0700_dirs_under_permissive_umask() {
        let tmp = tempfile::tempdir().unwrap();
        let old = unsafe { libc::umask(0) };
        let path = tmp.path().join("a/b/c.json");
        write_json(&path, &Doc { items: vec![1] }).unwrap();
        unsafe { libc::umask(old) };
        assert_eq!(mode_of(&path).unwrap(), 0o600);
        assert_eq!(mode_of(&tmp.path().join("a")).unwrap(), 0o700);
        assert_eq!(mode_of(&tmp.path().join("a/b")).unwrap(), 0o700);
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.ends_with("}\n"), "trailing newline: {text:?}");
    }

    #[test]
    fn corrupt_file_is_moved_aside_with_its_content_and_reported() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("x.json");
        fs::write(&path, b"{\"items\": [1, 2,").unwrap();
        let clock = ManualClock::new(1_767_323_045_678);
        let err = read_json::<Doc>(&path, &clock).unwrap_err();
        let StoreError::Corrupt { moved_to, .. } = &err else {
            panic!("{err}")
        };
        assert_eq!(fs::read(moved_to).unwrap(), b"{\"items\": [1, 2,");
        assert!(!path.exists());
        assert!(err.to_string().contains("moved aside"), "{err}");
        // After it was moved aside the store starts empty: nothing admitted.
        assert_eq!(read_json::<Doc>(&path, &clock).unwrap(), Doc::default());
    }

    #[test]
    fn update_writes_only_on_change_and_not_on_error() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("x.json");
        let clock = ManualClock::new(0);
        update_json(&path, &clock, |d: &mut Doc| {
            d.items.push(7);
            Ok::<_, StoreError>(())
        })
        .unwrap();
        let before = fs::metadata(&path).unwrap().ino();
        update_json(&path, &clock, |_d: &mut Doc| Ok::<_, StoreError>(())).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().ino(),
            before,
            "unchanged value is not rewritten"
        );
        let r: Result<(), StoreError> = update_json(&path, &clock, |d: &mut Doc| {
            d.items.clear();
            Err(StoreError::LockTimeout {
                path: PathBuf::from("x"),
            })
        });
        assert!(r.is_err());
        assert_eq!(read_json::<Doc>(&path, &clock).unwrap().items, vec![7]);
    }

    #[test]
    fn cache_sees_changes_made_by_others() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("x.json");
        let clock = ManualClock::new(0);
        let cache = JsonCache::<Doc>::default();
        assert!(cache.get(&path, &clock).unwrap().items.is_empty());
        write_json(&path, &Doc { items: vec![3] }).unwrap();
        assert_eq!(cache.get(&path, &clock).unwrap().items, vec![3]);
        write_json(&path, &Doc { items: vec![4] }).unwrap();
        assert_eq!(cache.get(&path, &clock).unwrap().items, vec![4]);
    }

    #[test]
    fn a_file_caught_half_rewritten_in_place_is_read_again_not_moved_aside() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("x.json");
        std::fs::write(&path, b"").unwrap();
        let writer = {
            let path = path.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(40));
                std::fs::write(&path, b"{\"items\": [9]}").unwrap();
            })
        };
        let doc: Doc = read_json(&path, &ManualClock::new(0)).unwrap();
        writer.join().unwrap();
        assert_eq!(doc.items, vec![9]);
        assert!(path.exists(), "not moved aside");
    }

    #[test]
    fn peek_answers_only_from_an_unchanged_cache() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("x.json");
        let clock = ManualClock::new(0);
        let cache = JsonCache::<Doc>::default();
        write_json(&path, &Doc { items: vec![1] }).unwrap();
        backdate_for_tests(tmp.path());
        assert!(
            cache.peek(&path).is_none(),
            "never read: nothing to answer from"
        );
        cache.get(&path, &clock).unwrap();
        assert_eq!(cache.peek(&path).unwrap().items, vec![1]);
        write_json(&path, &Doc { items: vec![2] }).unwrap();
        assert!(
            cache.peek(&path).is_none(),
            "changed on disk: must be read again"
        );
        backdate_for_tests(tmp.path());
        assert_eq!(cache.get(&path, &clock).unwrap().items, vec![2]);
        assert_eq!(cache.peek(&path).unwrap().items, vec![2]);
    }

    #[test]
    fn a_same_size_edit_within_one_mtime_tick_is_noticed() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("x.json");
        let clock = ManualClock::new(0);
        let cache = JsonCache::<Doc>::default();
        write_json(&path, &Doc { items: vec![1] }).unwrap();
        // Read within one tick of the file's mtime, whatever the machine's load: an mtime a
        // little ahead of the clock is racy too.
        let mtime = std::time::SystemTime::now() + Duration::from_secs(5);
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        assert_eq!(cache.get(&path, &clock).unwrap().items, vec![1]);
        // Edited in place (same inode), same size, and the same mtime: what a second write
        // within one tick of the filesystem's clock looks like.
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        (&f).write_all(
            &fs::read(&path)
                .unwrap()
                .iter()
                .map(|b| if *b == b'1' { b'2' } else { *b })
                .collect::<Vec<_>>(),
        )
        .unwrap();
        f.set_modified(mtime).unwrap();
        drop(f);
        assert_eq!(
            cache.peek(&path).map(|d| d.items.clone()),
            None,
            "a racy entry is not trusted"
        );
        assert_eq!(cache.get(&path, &clock).unwrap().items, vec![2]);
    }

    #[test]
    fn a_lock_file_that_is_a_symlink_is_refused_and_its_target_untouched() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("x.json");
        let elsewhere = tmp.path().join("elsewhere");
        std::os::unix::fs::symlink(&elsewhere, FileLock::lock_path(&target)).unwrap();
        let err = FileLock::acquire(&target).unwrap_err();
        assert!(err.to_string().contains("x.json.lock"), "{err}");
        assert!(!elsewhere.exists(), "nothing created through the link");
    }

    #[test]
    fn untrusted_state_paths_are_refused_with_the_fix() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state");
        ensure_dir(&dir).unwrap();
        check_trusted(&dir).unwrap();
        set_mode(&dir, 0o770).unwrap();
        let err = check_trusted(&dir).unwrap_err().to_string();
        assert!(
            err.contains("writable by group or others") && err.contains("chmod 700"),
            "{err}"
        );
        set_mode(&dir, 0o700).unwrap();
        let file = dir.join("clawpair.json");
        write_atomic(&file, b"{}").unwrap();
        set_mode(&file, 0o666).unwrap();
        let err = check_trusted(&file).unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
        set_mode(&file, 0o600).unwrap();
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            std::os::unix::fs::chown(&dir, Some(65534), None).unwrap();
            let err = check_trusted(&dir).unwrap_err().to_string();
            assert!(
                err.contains("owned by uid 65534") && err.contains("chown"),
                "{err}"
            );
        }
    }

    #[test]
    fn oversized_file_is_refused_not_loaded() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("big.json");
        let f = File::create(&path).unwrap();
        f.set_len(MAX_STATE_FILE_BYTES + 1).unwrap();
        let err = read_json::<Doc>(&path, &ManualClock::new(0)).unwrap_err();
        assert!(matches!(err, StoreError::TooLarge { .. }), "{err}");
        assert!(path.exists(), "an oversized file is left where it is");
    }
}
