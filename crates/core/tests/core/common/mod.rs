//! Helpers shared by the integration tests (the core's, and through tests/common the app's): a
//! temp state directory and the real CLI binary (`crate::CLAWPAIR`, which each test binary names).
#![allow(dead_code)]

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A state directory inside a fresh temp dir; ClawPair itself creates it on first use.
pub struct State {
    pub dir: tempfile::TempDir,
    state: PathBuf,
}

impl State {
    pub fn new() -> State {
        let dir = tempfile::tempdir().expect("temp dir");
        let state = dir.path().join("state");
        State { dir, state }
    }
    pub fn path(&self) -> &Path {
        &self.state
    }
    /// ClawPair's service on this state dir, opened as the app and the gateway open it.
    pub fn service(&self) -> clawpair_core::service::Service {
        clawpair_core::service::Service::open(
            clawpair_core::store::StatePaths::new(self.path()),
            std::sync::Arc::new(clawpair_core::clock::SystemClock),
        )
        .expect("open the state dir")
        .0
    }
    /// Edits the settings as the owner would, before anything runs on this state dir.
    pub fn settings(&self, edit: impl FnOnce(&mut clawpair_core::config::Settings)) {
        self.service()
            .update_settings("test", |s| {
                edit(s);
                Ok(())
            })
            .expect("settings saved");
    }
    pub fn file(&self, rel: &str) -> PathBuf {
        self.state.join(rel)
    }
    /// `clawpair --state-dir <dir> args…` as a child process.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(crate::CLAWPAIR);
        c.arg("--state-dir")
            .arg(self.path())
            .args(args)
            .env_remove("OPENCLAW_STATE_DIR")
            .env_remove("CLAWPAIR_STATE_DIR")
            .env("RUST_LOG", "warn");
        c
    }
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run clawpair")
    }
    /// [`State::run`] with `input` on its standard input (a secret never on the command line).
    pub fn run_with_input(&self, args: &[&str], input: &str) -> Output {
        use std::io::Write as _;
        let mut child = self
            .cmd(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run clawpair");
        let mut stdin = child.stdin.take().expect("its standard input");
        stdin.write_all(input.as_bytes()).expect("written");
        drop(stdin);
        child.wait_with_output().expect("clawpair ended")
    }
    /// Runs and insists on exit 0; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "clawpair {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&o.stderr),
            String::from_utf8_lossy(&o.stdout)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.ok(args);
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("clawpair {args:?} printed no JSON ({e}): {out}"))
    }
    pub fn write(&self, rel: &str, text: &str) {
        let p = self.file(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.file(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }
    /// Every file under the state dir, with its bytes.
    pub fn all_files(&self) -> Vec<(PathBuf, Vec<u8>)> {
        files_under(self.path())
    }
    /// Asserts `secret` appears in no file of the state dir.
    pub fn assert_nowhere_on_disk(&self, secret: &str) {
        for (p, b) in self.all_files() {
            assert!(
                !String::from_utf8_lossy(&b).contains(secret),
                "secret found in {}",
                p.display()
            );
        }
    }
}

/// A fresh home directory for runs without `--state-dir`: ClawPair's default directory and
/// `~/.openclaw` both lie under it, so no test ever touches a real one.
pub struct Home {
    pub dir: tempfile::TempDir,
}

impl Home {
    pub fn new() -> Home {
        Home {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    /// ClawPair's default state directory under this home (Linux).
    pub fn default_state(&self) -> PathBuf {
        self.path().join(".local/share/clawpair")
    }
    /// OpenClaw's default directory under this home.
    pub fn openclaw(&self) -> PathBuf {
        self.path().join(".openclaw")
    }
    /// `clawpair args…` with this home and none of the state-directory variables set.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(crate::CLAWPAIR);
        c.args(args)
            .env("HOME", self.path())
            .env_remove("XDG_DATA_HOME")
            .env_remove("OPENCLAW_STATE_DIR")
            .env_remove("CLAWPAIR_STATE_DIR")
            .env("RUST_LOG", "warn");
        c
    }
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run clawpair")
    }
}

/// Every file under `dir`, with its bytes.
pub fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    {
        fn walk(d: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
            let Ok(rd) = std::fs::read_dir(d) else {
                return;
            };
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else if let Ok(b) = std::fs::read(&p) {
                    out.push((p, b));
                }
            }
        }
        let mut v = Vec::new();
        walk(dir, &mut v);
        v
    }
}

/// Every path (files and directories) under `dir`, symlinks not followed: a snapshot to show
/// that nothing appeared where it must not.
pub fn paths_under(dir: &Path) -> std::collections::BTreeSet<PathBuf> {
    fn walk(d: &Path, out: &mut std::collections::BTreeSet<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(d) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            out.insert(p.clone());
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(&p, out);
            }
        }
    }
    let mut out = std::collections::BTreeSet::new();
    walk(dir, &mut out);
    out
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

pub mod arb;
pub mod gw;
pub mod openclaw;
pub mod panics;

/// Holds the store's lock on `file` from another process (`flock(1)`, the same OS lock the
/// store takes on `<file>.lock`) until dropped.
pub struct HeldLock(std::process::Child);

impl HeldLock {
    pub fn on(file: &std::path::Path) -> HeldLock {
        let lock = clawpair_core::store::fs::FileLock::lock_path(file);
        // `--close`: only flock itself holds the lock (not the shell it runs), so it is
        // released the moment flock exits, when the shell's `cat` sees its stdin close.
        let mut child = std::process::Command::new("flock")
            .args(["--exclusive", "--close"])
            .arg(&lock)
            .args(["-c", "echo held; exec cat"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("flock (util-linux)");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "held", "flock took {}", lock.display());
        HeldLock(child)
    }
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}

/// A loopback port free right now (the OS picked it; another program may take it later).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a loopback port")
        .local_addr()
        .expect("its address")
        .port()
}
