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
    let bin = std::env::var("TAURI_DRIVER").unwrap_or_else(|_| {
        let home = std::env::var("HOME").unwrap_or_default();
        let local = format!("{home}/.cargo/bin/tauri-driver");
        if std::path::Path::new(&local).exists() {
            local
        } else {
            "tauri-driver".into()
        }
    });
    let child = Command::new(bin)
        .envs(env.iter().map(|(k, v)| (*k, *v)))
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
