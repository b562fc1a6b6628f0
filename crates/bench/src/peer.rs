//! OpenClaw, the gateway users would otherwise run, as the other contender of `--peer
//! openclaw`: found where scripts/openclaw-peer.sh installed it, its gateway started on a fresh
//! home in a process group of its own, its CLI run as whole processes. Only ever inside a
//! loopback-only network namespace (scripts/bench-openclaw.sh): OpenClaw looks up internet
//! hosts when it starts, and nothing here may leave the machine.

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use clawpair_devtools::openclaw::Install;

use crate::proc::Server;

/// An installed OpenClaw (clawpair_devtools::openclaw: its layout and its sandbox).
pub struct OpenClaw {
    install: Install,
    pub version: String,
}

impl OpenClaw {
    /// `home` (or `$CLAWPAIR_OPENCLAW_HOME`, or scripts/openclaw-peer.sh's default) holds Node
    /// and OpenClaw as that script installs them.
    pub fn find(home: Option<&Path>) -> Result<OpenClaw, String> {
        let home = home
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("CLAWPAIR_OPENCLAW_HOME").map(PathBuf::from))
            .or_else(|| {
                directories::BaseDirs::new().map(|d| d.cache_dir().join("clawpair/openclaw-peer"))
            })
            .ok_or("no home directory to look for OpenClaw in; pass --openclaw-home")?;
        let install = Install::at(&home).map_err(|e| {
            format!("{e}, and scripts/bench-openclaw.sh runs this benchmark with it")
        })?;
        let version = install.version()?;
        Ok(OpenClaw { install, version })
    }

    /// `openclaw ARGS…` with `home` as its home and `home/.openclaw` as its state directory,
    /// told not to update, advertise or fetch anything.
    pub fn command(&self, home: &Path, args: &[&str]) -> Command {
        let mut c = self.install.command(home, args);
        c.stdin(Stdio::null());
        c
    }

    /// Writes a fresh home's config (token auth; loopback devices wait for the owner, as
    /// ClawPair's do) and starts `openclaw gateway run` on `port`, logging to `home/gateway.log`.
    /// Returns at once: the caller times how long it takes to answer.
    pub fn start_gateway(&self, home: &Path, port: u16, token: &str) -> Result<Server, String> {
        let state = home.join(".openclaw");
        for d in [&state, &home.join("tmp")] {
            std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        let config = serde_json::json!({ "gateway": {
            "port": port,
            "auth": { "mode": "token", "token": token },
            "nodes": { "pairing": { "autoApproveLocal": false } } } });
        let file = state.join("openclaw.json");
        std::fs::write(&file, config.to_string())
            .map_err(|e| format!("{}: {e}", file.display()))?;
        let log = home.join("gateway.log");
        let out = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let port_arg = port.to_string();
        let child = self
            .command(
                home,
                &[
                    "gateway",
                    "run",
                    "--port",
                    &port_arg,
                    "--bind",
                    "loopback",
                    "--auth",
                    "token",
                    "--token",
                    token,
                    "--allow-unconfigured",
                ],
            )
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start OpenClaw's gateway: {e}"))?;
        Ok(Server::group_leader(
            SocketAddr::from(([127, 0, 0, 1], port)),
            child,
        ))
    }
}

/// Refuses to run OpenClaw anywhere but a namespace whose only network link is `lo`.
pub fn check_loopback_only() -> Result<(), String> {
    clawpair_devtools::openclaw::check_loopback_only()
        .map_err(|e| format!("--peer openclaw: {e}: use scripts/bench-openclaw.sh"))
}

/// A free loopback port (bound and released; the gateway takes it a moment later).
pub fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free loopback port: {e}"))
}
