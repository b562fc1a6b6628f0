//! The real desktop app for the end-to-end tests: tauri-driver (which hands sessions to
//! WebKitWebDriver) and screenshots kept for the docs.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts tauri-driver; `env` reaches WebKitWebDriver and the app it starts.
pub fn tauri_driver(port: u16, native: u16, env: &[(&str, &std::path::Path)]) -> Driver {
    let set: Vec<(&str, &std::ffi::OsStr)> = env.iter().map(|(k, v)| (*k, v.as_os_str())).collect();
    tauri_driver_with(port, native, &set, &[])
}

/// tauri-driver with `set` in its environment and `unset` taken out of it (both reach
/// WebKitWebDriver and the app).
pub fn tauri_driver_with(
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
