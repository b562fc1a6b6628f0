//! The headless gateway tells its owner what waits and what was decided: each new device and
//! chat sender with the exact command that approves it, which works as printed; and `devices
//! approve` takes the fingerprint the phone shows, or a unique start of the request id, and
//! refuses an ambiguous one. The real binary as a child process, a real phone on loopback.

use crate::common;

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clawpair_core::client::{Auth, Client, ClientError, ConnectOptions, Identity};
use common::State;
use serde_json::json;

/// `clawpair gateway --port 0` with its standard output read line by line.
struct Headless {
    child: Child,
    lines: mpsc::Receiver<String>,
    url: String,
}

impl Headless {
    fn start(st: &State) -> Headless {
        let mut child = st
            .cmd(&["gateway", "--port", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the gateway");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut h = Headless {
            child,
            lines,
            url: String::new(),
        };
        let first = h.until(|l| l.contains("listening on"));
        let addr = first
            .split("ws://")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .expect("an address")
            .to_string();
        h.url = format!("ws://{addr}/");
        h
    }

    /// Lines until one matches; returns it with what followed it in the same announcement.
    fn until(&mut self, want: impl Fn(&str) -> bool) -> String {
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            let left = end.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .expect("the gateway printed it in time");
            if want(&line) {
                let mut block = line;
                while let Ok(next) = self.lines.recv_timeout(Duration::from_millis(200)) {
                    if !next.starts_with("  ") {
                        break;
                    }
                    block.push('\n');
                    block.push_str(&next);
                }
                return block;
            }
        }
    }
}

impl Drop for Headless {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// The command after `label` in an announcement, run as printed.
fn run_printed(block: &str, label: &str) -> std::process::Output {
    let line = block
        .lines()
        .find_map(|l| l.split_once(label).map(|(_, cmd)| cmd.trim().to_string()))
        .unwrap_or_else(|| panic!("no {label:?} in {block}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words[0], "clawpair", "{line}");
    Command::new(crate::CLAWPAIR)
        .args(&words[1..])
        .env("RUST_LOG", "warn")
        .output()
        .expect("run the printed command")
}

async fn phone_waits(url: &str, st: &State) -> Identity {
    let code = st.json(&["qr", "--url", url, "--json"])["setupCode"]
        .as_str()
        .unwrap()
        .to_string();
    let token = clawpair_core::pairing::setup::decode_setup_code(&code)
        .unwrap()
        .bootstrap_token;
    let id = Identity::generate();
    let mut o = ConnectOptions::node(url, id.clone(), Auth::BootstrapToken(token));
    o.display_name = Some("Kitchen tablet".into());
    match Client::connect(&o, |_, _| {}).await {
        Err(ClientError::Rejected(e)) => assert_eq!(e.code, "NOT_PAIRED"),
        other => panic!("expected NOT_PAIRED, got {:?}", other.map(|c| c.hello)),
    }
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_headless_gateway_prints_each_request_with_the_command_that_approves_it() {
    let st = State::new();
    let mut gw = Headless::start(&st);
    let state = st.path().display().to_string();

    // A device: its name, fingerprint and the exact command, which works as printed.
    let phone = phone_waits(&gw.url, &st).await;
    let block = gw.until(|l| l.starts_with("Device waiting"));
    assert!(block.contains("Kitchen tablet"), "{block}");
    assert!(block.contains(&phone.fingerprint()), "{block}");
    assert!(
        block.contains(&format!("clawpair --state-dir {state} devices approve ")),
        "{block}"
    );
    let o = run_printed(&block, "then approve:");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let done = gw.until(|l| l.starts_with("Device "));
    assert!(
        done.contains(&phone.fingerprint()) && done.ends_with("approved."),
        "{done}"
    );

    // A chat sender, through a bridge with the admin token.
    let settings: serde_json::Value = serde_json::from_str(&st.read("clawpair.json")).unwrap();
    let admin = settings["gateway"]["auth"]["token"].as_str().unwrap();
    let mut bridge = Client::connect(
        &ConnectOptions::operator(&gw.url, admin, "bridge"),
        |_, _| {},
    )
    .await
    .unwrap();
    bridge
        .call(
            "channel.inbound",
            json!({ "channel": "telegram", "senderId": "4242", "meta": { "username": "dave" } }),
        )
        .await
        .unwrap();
    let block = gw.until(|l| l.starts_with("Chat sender waiting"));
    assert!(block.contains("dave (4242), code "), "{block}");
    let o = run_printed(&block, "Approve:");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let done = gw.until(|l| l.starts_with("Chat sender 4242"));
    assert!(done.contains("approved"), "{done}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_approve_takes_the_fingerprint_or_a_unique_start_of_the_id() {
    let st = State::new();
    let gw = Headless::start(&st);
    let first = phone_waits(&gw.url, &st).await;
    let second = phone_waits(&gw.url, &st).await;
    let pending = st.json(&["devices", "list", "--json"])["pending"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(pending.len(), 2);
    // The fingerprint as the phone shows it, in any case.
    let by_fp = st.run(&["devices", "approve", &first.fingerprint().to_lowercase()]);
    assert!(
        by_fp.status.success(),
        "{}",
        String::from_utf8_lossy(&by_fp.stderr)
    );
    assert!(String::from_utf8_lossy(&by_fp.stdout).contains(&first.fingerprint()));
    // A start of the id shared by nothing else.
    let id = pending
        .iter()
        .find(|r| r["fingerprint"] == second.fingerprint().as_str())
        .unwrap()["requestId"]
        .as_str()
        .unwrap()
        .to_string();
    let unknown = st.run(&["devices", "approve", "zzzz"]);
    assert_eq!(unknown.status.code(), Some(1), "nothing named zzzz");
    let by_prefix = st.run(&["devices", "approve", &id[..8]]);
    assert!(
        by_prefix.status.success(),
        "{}",
        String::from_utf8_lossy(&by_prefix.stderr)
    );
    assert!(st.json(&["devices", "list", "--json"])["pending"]
        .as_array()
        .unwrap()
        .is_empty());
}
