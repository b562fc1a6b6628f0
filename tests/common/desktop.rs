//! The real desktop app for the end-to-end tests: tauri-driver (which hands sessions to
//! WebKitWebDriver), the app started under it, and screenshots kept for the docs.

use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::free_port;
use super::webdriver::Session;

pub struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// tauri-driver on `port`, with `set` in its environment and `unset` taken out of it (both
/// reach WebKitWebDriver and the app).
fn tauri_driver(
    port: u16,
    native: u16,
    set: &[(&str, &std::ffi::OsStr)],
    unset: &[&str],
) -> Driver {
    let bin = std::env::var("TAURI_DRIVER").unwrap_or_else(|_| {
        let home = std::env::var("HOME").unwrap_or_default();
        let local = format!("{home}/.cargo/bin/tauri-driver");
        if std::path::Path::new(&local).exists() {
            local
        } else {
            "tauri-driver".into()
        }
    });
    let mut cmd = Command::new(bin);
    for k in unset {
        cmd.env_remove(k);
    }
    let child = cmd
        .envs(set.iter().map(|(k, v)| (*k, *v)))
        .args([
            "--port",
            &port.to_string(),
            "--native-port",
            &native.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start tauri-driver (cargo install tauri-driver --locked --version ^2)");
    let end = Instant::now() + Duration::from_secs(30);
    while ureq::get(&format!("http://127.0.0.1:{port}/status"))
        .call()
        .is_err()
    {
        assert!(Instant::now() < end, "tauri-driver did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Driver(child)
}

/// How the app under test starts: on a state directory, with its window open (`--show`) unless
/// told `--hidden`, and what tauri-driver (so WebKitWebDriver and the app) has in its
/// environment.
pub struct Launch {
    args: Vec<String>,
    set: Vec<(String, OsString)>,
    unset: Vec<String>,
}

impl Launch {
    pub fn on(state: &Path) -> Launch {
        Launch {
            args: vec![
                "--state-dir".into(),
                state.display().to_string(),
                "--show".into(),
            ],
            set: Vec::new(),
            unset: Vec::new(),
        }
    }

    /// Started in the tray only: the session begins once a webview exists.
    pub fn hidden(mut self) -> Launch {
        self.args.retain(|a| a != "--show");
        self.args.push("--hidden".into());
        self
    }

    pub fn arg(mut self, arg: &str) -> Launch {
        self.args.push(arg.into());
        self
    }

    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Launch {
        self.set.push((key.into(), value.as_ref().to_owned()));
        self
    }

    pub fn unset(mut self, key: &str) -> Launch {
        self.unset.push(key.into());
        self
    }

    /// tauri-driver on free ports and a WebDriver session with the app (`crate::CLAWPAIR`).
    /// Blocks until the session exists.
    pub fn start(self) -> App {
        let (dport, nport) = (free_port(), free_port());
        let set: Vec<(&str, &OsStr)> = self
            .set
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_os_str()))
            .collect();
        let unset: Vec<&str> = self.unset.iter().map(String::as_str).collect();
        let driver = tauri_driver(dport, nport, &set, &unset);
        let session = Session::start(
            &format!("http://127.0.0.1:{dport}"),
            crate::CLAWPAIR,
            &self.args,
        );
        App {
            session: Arc::new(session),
            _driver: driver,
        }
    }

    /// `start` from async code, off the runtime's threads.
    pub async fn start_async(self) -> App {
        tokio::task::spawn_blocking(move || self.start())
            .await
            .expect("the app's session started")
    }
}

/// The app under a WebDriver session; the session ends (and the app quits) before its driver
/// stops, even when a test panics.
pub struct App {
    pub session: Arc<Session>,
    _driver: Driver,
}

impl std::ops::Deref for App {
    type Target = Session;
    fn deref(&self) -> &Session {
        &self.session
    }
}

impl App {
    /// Runs blocking WebDriver steps from async code, off the runtime's threads.
    pub async fn ui<T: Send + 'static>(&self, f: impl FnOnce(&Session) -> T + Send + 'static) -> T {
        let s = self.session.clone();
        tokio::task::spawn_blocking(move || f(&s))
            .await
            .expect("a WebDriver step")
    }

    /// Ends the session (the app quits) and waits for it, from async code.
    pub async fn end(self) {
        let s = self.session.clone();
        let _ = tokio::task::spawn_blocking(move || s.close()).await;
    }
}

/// Saves a screenshot where CLAWPAIR_SCREENSHOTS points (docs/screenshots when refreshing docs).
pub fn keep(png: &[u8], name: &str) {
    if let Ok(dir) = std::env::var("CLAWPAIR_SCREENSHOTS") {
        let _ = std::fs::create_dir_all(&dir);
        std::fs::write(std::path::Path::new(&dir).join(name), png).unwrap();
    }
}

/// A headless Wayland compositor (Debian's weston) on a private runtime dir, for as long as
/// it is held.
pub struct Weston {
    child: Child,
    pub runtime_dir: tempfile::TempDir,
    pub socket: String,
}

impl Weston {
    pub fn start() -> Weston {
        let runtime_dir = tempfile::tempdir().expect("runtime dir");
        std::fs::set_permissions(
            runtime_dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        let socket = "wayland-clawpair".to_string();
        let child = Command::new("weston")
            .env("XDG_RUNTIME_DIR", runtime_dir.path())
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            // Pixman draws what clients show (so it can be looked at); --debug lets
            // weston-screenshooter take the compositor's own picture.
            .args([
                "--backend=headless-backend.so",
                "--use-pixman",
                "--debug",
                &format!("--socket={socket}"),
                "--width=1280",
                "--height=1024",
                "--idle-time=0",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start weston (apt-get install weston)");
        let end = Instant::now() + Duration::from_secs(20);
        while !runtime_dir.path().join(&socket).exists() {
            assert!(Instant::now() < end, "weston did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Weston {
            child,
            runtime_dir,
            socket,
        }
    }
}

impl Weston {
    /// What the compositor shows now, as weston-screenshooter saves it (PNG).
    pub fn screenshot(&self) -> Vec<u8> {
        let dir = tempfile::tempdir().expect("screenshot dir");
        let status = Command::new("weston-screenshooter")
            .current_dir(dir.path())
            .env("XDG_RUNTIME_DIR", self.runtime_dir.path())
            .env("WAYLAND_DISPLAY", &self.socket)
            .stdout(Stdio::null())
            .status()
            .expect("run weston-screenshooter");
        assert!(status.success(), "weston-screenshooter failed");
        let shot = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .find(|e| e.file_name().to_string_lossy().ends_with(".png"))
            .expect("a screenshot file");
        std::fs::read(shot.path()).unwrap()
    }
}

impl Drop for Weston {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
