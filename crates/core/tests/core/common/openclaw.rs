//! The real OpenClaw (installed by scripts/openclaw-peer.sh) for the tests that run against it:
//! its CLI, its gateway and its own GatewayClient, each in its own process group, only inside a
//! loopback-only network namespace (scripts/interop.sh).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use clawpair_devtools::openclaw::{check_loopback_only, Install};
use serde_json::{json, Value};

/// OpenClaw is heavy (a Node process per client and command, ~1 GB for its gateway): on a
/// small, busy machine its steps take tens of seconds.
pub const WAIT: Duration = Duration::from_secs(120);

/// The OpenClaw that scripts/openclaw-peer.sh installed.
pub struct Peer(Install);

pub fn peer() -> Peer {
    assert_sandboxed();
    let home = PathBuf::from(std::env::var_os("CLAWPAIR_OPENCLAW_HOME").expect(
        "CLAWPAIR_OPENCLAW_HOME is not set: run scripts/interop.sh, which installs OpenClaw",
    ));
    Peer(Install::at(&home).unwrap_or_else(|e| panic!("{e}")))
}

/// OpenClaw must never reach the internet from here: only `lo` may exist.
pub fn assert_sandboxed() {
    if let Err(e) = check_loopback_only() {
        panic!("{e}: the interop tests run in one (scripts/interop.sh)");
    }
}

impl Peer {
    /// `openclaw …` with `home` as its home and `home/.openclaw` as its state directory.
    pub fn openclaw(&self, home: &Path, args: &[&str]) -> Command {
        self.0.command(home, args)
    }

    pub fn run(&self, home: &Path, args: &[&str]) -> Output {
        self.openclaw(home, args).output().expect("run openclaw")
    }

    /// Runs OpenClaw's GatewayClient (`clawpair_devtools::openclaw::GATEWAY_CLIENT`) with `spec`; returns
    /// its lines and exit code. A first connect from a new state directory creates OpenClaw's
    /// SQLite store between the challenge and the connect frame; on a busy machine that can
    /// outlast the 10 s handshake deadline, so a connect that never sent its frame is tried
    /// again (nothing reached the gateway, so nothing is repeated).
    pub fn client(&self, home: &Path, spec: Value) -> (Vec<Value>, i32) {
        let mut attempt = 0;
        loop {
            let (lines, code) = self.client_once(home, &spec);
            let timed_out = lines.iter().any(|l| {
                l["connectError"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("handshake timeout"))
            });
            attempt += 1;
            if !timed_out || attempt == 3 {
                return (lines, code);
            }
        }
    }

    pub fn client_once(&self, home: &Path, spec: &Value) -> (Vec<Value>, i32) {
        let script = clawpair_devtools::openclaw::GATEWAY_CLIENT;
        let mut c = Command::new(&self.0.node);
        c.arg(script)
            .arg(spec.to_string())
            .env("CLAWPAIR_OPENCLAW_PKG", &self.0.pkg);
        self.0.sandbox(&mut c, home);
        let o = c.output().expect("run the gateway client");
        let lines = String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        (lines, o.status.code().unwrap_or(-1))
    }
}

/// A child process in its own process group, killed with its children when dropped.
pub struct Proc {
    child: Child,
    pub log: PathBuf,
}

impl Proc {
    pub fn spawn(mut c: Command, log: PathBuf) -> Proc {
        let out = std::fs::File::create(&log).unwrap();
        c.stdout(out.try_clone().unwrap())
            .stderr(out)
            .stdin(Stdio::null())
            .process_group(0);
        Proc {
            child: c.spawn().expect("spawn"),
            log,
        }
    }
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_none()
    }
    pub fn wait_log(&mut self, needle: &str, wait: Duration) {
        let end = Instant::now() + wait;
        while !self.log().contains(needle) {
            assert!(self.alive(), "exited before {needle:?}:\n{}", self.log());
            assert!(
                Instant::now() < end,
                "no {needle:?} within {wait:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let pg = self.child.id() as i32;
        // SAFETY: signals to a process group this test created.
        unsafe {
            libc::kill(-pg, libc::SIGTERM);
        }
        let end = Instant::now() + Duration::from_secs(5);
        while self.alive() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(100));
        }
        unsafe {
            libc::kill(-pg, libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

/// `openclaw gateway run` on a free port, loopback devices not approved silently.
pub struct OpenClawGateway {
    proc: Option<Proc>,
    pub url: String,
    pub token: String,
    pub home: PathBuf,
}

impl OpenClawGateway {
    /// A fresh setup code from OpenClaw's own `openclaw qr` for this gateway.
    pub fn setup_code(&self, p: &Peer) -> String {
        let o = p.run(
            &self.home,
            &[
                "qr",
                "--setup-code-only",
                "--url",
                &self.url,
                "--token",
                &self.token,
            ],
        );
        assert!(o.status.success(), "{}", text(&o));
        String::from_utf8_lossy(&o.stdout)
            .trim()
            .lines()
            .last()
            .expect("openclaw qr printed a code")
            .to_string()
    }

    /// The bootstrap token inside a fresh setup code of OpenClaw's.
    pub fn bootstrap_token(&self, p: &Peer) -> String {
        clawpair_core::pairing::setup::decode_setup_code(&self.setup_code(p))
            .expect("OpenClaw's setup code decodes")
            .bootstrap_token
    }

    /// A gateway with a Telegram account it considers configured (it cannot reach Telegram
    /// from here, and need not) and one chat sender waiting: "dave" (id 4242, code DAVE2345),
    /// taken in from its legacy pairing file when it starts.
    pub fn start_with_a_waiting_sender(p: &Peer, home: &Path) -> OpenClawGateway {
        let credentials = home.join(".openclaw/credentials");
        std::fs::create_dir_all(&credentials).unwrap();
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        std::fs::write(
            credentials.join("telegram-pairing.json"),
            json!({ "version": 1, "requests": [{ "id": "4242", "code": "DAVE2345", "createdAt": now,
                    "lastSeenAt": now, "meta": { "username": "dave", "accountId": "default" } }] })
            .to_string(),
        )
        .unwrap();
        Self::start_with(
            p,
            home,
            json!({ "channels": { "telegram": { "enabled": true,
                "botToken": "123456:interop-not-a-real-token", "dmPolicy": "pairing" } } }),
        )
    }

    pub fn start(p: &Peer, home: &Path) -> OpenClawGateway {
        Self::start_with(p, home, json!({}))
    }

    /// With more of OpenClaw's config (`channels`, …) merged in. The port and the token are
    /// in the config too, where an installation keeps them (and ClawPair finds them).
    pub fn start_with(p: &Peer, home: &Path, extra: Value) -> OpenClawGateway {
        let state = home.join(".openclaw");
        std::fs::create_dir_all(&state).unwrap();
        let port = super::free_port().to_string();
        let token = "interop-token-0123456789abcdef".to_string();
        let mut config = json!({ "gateway": {
            "port": port.parse::<u16>().unwrap(),
            "auth": { "mode": "token", "token": token },
            "nodes": { "pairing": { "autoApproveLocal": false } } } });
        if let (Some(c), Some(e)) = (config.as_object_mut(), extra.as_object()) {
            c.extend(e.clone());
        }
        std::fs::write(state.join("openclaw.json"), config.to_string()).unwrap();
        let proc = Self::run(p, home, &port, &token);
        OpenClawGateway {
            proc: Some(proc),
            url: format!("ws://127.0.0.1:{port}"),
            token,
            home: home.to_path_buf(),
        }
    }

    pub fn run(p: &Peer, home: &Path, port: &str, token: &str) -> Proc {
        let mut proc = Proc::spawn(
            p.openclaw(
                home,
                &[
                    "gateway",
                    "run",
                    "--port",
                    port,
                    "--bind",
                    "loopback",
                    "--auth",
                    "token",
                    "--token",
                    token,
                    "--allow-unconfigured",
                ],
            ),
            home.join("openclaw-gateway.log"),
        );
        proc.wait_log("[gateway] ready", Duration::from_secs(180));
        proc
    }

    /// Stops the gateway and starts it again on the same port.
    pub fn restart(&mut self, p: &Peer) {
        let port = self.url.rsplit(':').next().unwrap().to_string();
        self.proc = None; // stopped (its whole process group) before the new one starts
        self.proc = Some(Self::run(p, &self.home, &port, &self.token));
    }

    /// An agent's exec approval asked over OpenClaw's protocol (`exec.approval.request`,
    /// two-phase, as its runtime does): `command` in /srv/app on the gateway, for agent `main`.
    /// Returns OpenClaw's answer (`{status: "accepted", id, deliveryRoute, …}` when an
    /// approver is connected). `dir` holds the asking client's state.
    pub fn ask_exec(&self, p: &Peer, dir: &Path, command: &str) -> Value {
        self.ask(
            p,
            dir,
            "exec.approval.request",
            json!({
            "command": command, "commandArgv": command.split(' ').collect::<Vec<_>>(),
            "cwd": "/srv/app", "host": "gateway", "agentId": "main",
            "sessionKey": "agent:main:main", "timeoutMs": 120000, "twoPhase": true }),
        )
    }

    /// A plugin's approval asked over OpenClaw's protocol (`plugin.approval.request`, two-phase):
    /// `title` for plugin `blog`'s tool `post`, for agent `main`. Returns OpenClaw's answer.
    pub fn ask_plugin(&self, p: &Peer, dir: &Path, title: &str) -> Value {
        self.ask(
            p,
            dir,
            "plugin.approval.request",
            json!({
            "title": title, "description": "Publishes the draft as it is", "pluginId": "blog",
            "toolName": "post", "severity": "warning", "agentId": "main",
            "timeoutMs": 120000, "twoPhase": true }),
        )
    }

    /// One call with the gateway's token and no device, as an agent's runtime makes it: the
    /// answer's payload.
    fn ask(&self, p: &Peer, dir: &Path, method: &str, params: Value) -> Value {
        let spec = json!({ "url": self.url, "stateDir": dir.join("agent"), "token": self.token,
            "noDevice": true, "calls": [{ "method": method, "params": params }] });
        let (lines, code) = p.client(dir, spec);
        assert_eq!(code, 0, "{lines:?}");
        lines
            .iter()
            .find_map(|l| l["result"]["payload"].as_object().cloned())
            .map(Value::Object)
            .unwrap_or_else(|| panic!("{lines:?}"))
    }

    /// What OpenClaw recorded for approval `id` (`approval.history`), or null.
    pub fn approval_record(&self, p: &Peer, dir: &Path, id: &str) -> Value {
        let spec = json!({ "url": self.url, "stateDir": dir.join("agent"), "token": self.token,
            "noDevice": true, "calls": [{ "method": "approval.history", "params": {} }] });
        let (lines, _) = p.client(dir, spec);
        lines
            .iter()
            .find_map(|l| l["result"]["payload"]["items"].as_array().cloned())
            .and_then(|a| a.into_iter().find(|i| i["id"] == id))
            .unwrap_or(Value::Null)
    }

    /// Whether OpenClaw's own CLI lists a device named `name` as paired here (false when it
    /// cannot say).
    pub fn has_paired(&self, p: &Peer, name: &str) -> bool {
        let o = p.run(
            &self.home,
            &[
                "devices",
                "list",
                "--url",
                &self.url,
                "--token",
                &self.token,
                "--json",
            ],
        );
        let v: Value = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
        v["paired"]
            .as_array()
            .is_some_and(|a| a.iter().any(|d| d["displayName"] == name))
    }

    pub fn devices(&self, p: &Peer, args: &[&str]) -> Value {
        let mut all = vec!["devices"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--url", &self.url, "--token", &self.token, "--json"]);
        let o = p.run(&self.home, &all);
        assert!(o.status.success(), "{}", text(&o));
        serde_json::from_slice(&o.stdout).unwrap_or(Value::Null)
    }
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
