//! What another process writes to the state directory reaches a running gateway at once: the
//! CLI acting on the files (no gateway answered it) or an edit by hand answers a phone waiting
//! with `waitForApproval`, closes a removed or revoked device's sockets, and reaches every
//! operator as the same events an in-process change publishes, once. Real gateway on loopback,
//! the real CLI binary as the other process.

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use clawpair_core::client::{Auth, Client, ClientError, Identity};
use common::gw::{cli, TestGateway};
use common::{stderr, State};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(5);

async fn request_id(op: &mut Client) -> String {
    let ev = op
        .wait_event("device.pair.requested", WAIT)
        .await
        .unwrap()
        .expect("device.pair.requested");
    ev["requestId"].as_str().unwrap().to_string()
}

/// Runs the CLI, which finds no gateway to talk to and writes the files itself.
async fn on_the_files(st: &State, args: &[&str]) {
    let o = cli(st.path(), args).await;
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    let audit = st.read("logs/audit.jsonl");
    let last: Value = serde_json::from_str(audit.lines().last().unwrap()).unwrap();
    assert_eq!(last["credential"], "local", "acted on the files: {last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_waiting_for_approval_is_let_in_when_the_cli_approves_on_the_files() {
    let st = State::new();
    let gw = TestGateway::start_unrecorded(st.path()).await;
    let mut op = gw.operator().await;
    let phone = Identity::generate();
    let mut opts = gw.phone(&phone, Auth::BootstrapToken(gw.setup_token()));
    opts.wait_for_approval = true;
    let waiting = tokio::spawn(async move { Client::connect(&opts, |_, _| {}).await });
    let rid = request_id(&mut op).await;

    on_the_files(&st, &["devices", "approve", &rid]).await;
    let written = Instant::now();
    let c = tokio::time::timeout(WAIT, waiting)
        .await
        .expect("the waiting phone is answered")
        .unwrap()
        .expect("and let in");
    eprintln!("phone let in {:?} after the CLI wrote", written.elapsed());
    assert!(c.hello["auth"]["deviceToken"].is_string());

    // Operators hear of it once, as if the gateway had approved it itself.
    let ev = op
        .wait_event("device.pair.resolved", WAIT)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (ev["requestId"].as_str(), ev["decision"].as_str()),
        (Some(rid.as_str()), Some("approved"))
    );
    assert_eq!(
        op.wait_event("device.pair.resolved", Duration::from_secs(1))
            .await
            .unwrap(),
        None
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejection_on_the_files_refuses_the_waiting_phone() {
    let st = State::new();
    let gw = TestGateway::start_unrecorded(st.path()).await;
    let mut op = gw.operator().await;
    let mut opts = gw.phone(
        &Identity::generate(),
        Auth::BootstrapToken(gw.setup_token()),
    );
    opts.wait_for_approval = true;
    let waiting = tokio::spawn(async move { Client::connect(&opts, |_, _| {}).await });
    let rid = request_id(&mut op).await;
    on_the_files(&st, &["devices", "reject", &rid]).await;
    let r = tokio::time::timeout(WAIT, waiting)
        .await
        .expect("answered")
        .unwrap();
    match r {
        Err(ClientError::Rejected(e)) => assert_eq!(e.code, "PAIRING_REJECTED"),
        other => panic!(
            "expected PAIRING_REJECTED, got {:?}",
            other.map(|c| c.hello)
        ),
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_or_revoking_a_device_on_the_files_closes_its_live_connection() {
    let st = State::new();
    let gw = TestGateway::start_unrecorded(st.path()).await;
    let (a, a_token) = gw.paired_phone().await;
    let (b, b_token) = gw.paired_phone().await;
    let mut a_live = Client::connect(&gw.phone(&a, Auth::DeviceToken(a_token.clone())), |_, _| {})
        .await
        .unwrap();
    let mut b_live = Client::connect(&gw.phone(&b, Auth::DeviceToken(b_token.clone())), |_, _| {})
        .await
        .unwrap();

    on_the_files(&st, &["devices", "remove", &a.device_id()]).await;
    a_live
        .closed(WAIT)
        .await
        .expect("the removed device's socket is closed");
    assert_eq!(gw.service.device_list().unwrap().paired.len(), 1);

    on_the_files(
        &st,
        &[
            "devices",
            "revoke",
            "--device",
            &b.device_id(),
            "--role",
            "node",
        ],
    )
    .await;
    b_live
        .closed(WAIT)
        .await
        .expect("the revoked role's socket is closed");
    // Neither gets back in with what it had.
    assert!(
        Client::connect(&gw.phone(&a, Auth::DeviceToken(a_token)), |_, _| {})
            .await
            .is_err()
    );
    assert!(
        Client::connect(&gw.phone(&b, Auth::DeviceToken(b_token)), |_, _| {})
            .await
            .is_err()
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dm_decisions_and_hand_edits_on_the_files_reach_operators() {
    let st = State::new();
    let gw = TestGateway::start_unrecorded(st.path()).await;
    let mut bridge = gw.operator().await;
    let mut op = gw.operator().await;
    let d = bridge
        .call(
            "channel.inbound",
            json!({ "channel": "telegram", "senderId": "777", "text": "hi" }),
        )
        .await
        .unwrap();
    assert_eq!(d["decision"], "challenge");
    op.wait_event("pairing.requested", WAIT)
        .await
        .unwrap()
        .expect("pairing.requested");

    on_the_files(
        &st,
        &[
            "pairing",
            "approve",
            "telegram",
            d["code"].as_str().unwrap(),
        ],
    )
    .await;
    let ev = op
        .wait_event("pairing.resolved", WAIT)
        .await
        .unwrap()
        .expect("pairing.resolved");
    assert_eq!(
        (ev["senderId"].as_str(), ev["decision"].as_str()),
        (Some("777"), Some("approved"))
    );

    // An editor saves the allowlist with one more sender.
    let file = st.file("credentials/telegram-allowFrom.json");
    let mut list: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    list["allowFrom"].as_array_mut().unwrap().push("888".into());
    std::fs::write(&file, serde_json::to_vec_pretty(&list).unwrap()).unwrap();
    let ev = op
        .wait_event("allowlist.changed", WAIT)
        .await
        .unwrap()
        .expect("allowlist.changed");
    assert_eq!(ev["channel"], "telegram");
    let d = bridge
        .call(
            "channel.inbound",
            json!({ "channel": "telegram", "senderId": "888", "text": "hi" }),
        )
        .await
        .unwrap();
    assert_eq!(d["decision"], "allow");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateways_own_changes_are_published_once() {
    let st = State::new();
    let gw = TestGateway::start_unrecorded(st.path()).await;
    let mut op = gw.operator().await;
    let first = Client::connect(
        &gw.phone(
            &Identity::generate(),
            Auth::BootstrapToken(gw.setup_token()),
        ),
        |_, _| {},
    )
    .await;
    assert!(first.is_err());
    let rid = request_id(&mut op).await;
    gw.service.device_approve(&rid, "test").unwrap();
    gw.service
        .allow_add("telegram", None, "555", "test")
        .unwrap();
    let mut resolved = 0;
    let mut allow = 0;
    // Long enough for the watcher to have read the files the gateway wrote.
    while let Some((name, _)) = op.next_event(Duration::from_millis(1500)).await.unwrap() {
        resolved += usize::from(name == "device.pair.resolved");
        allow += usize::from(name == "allowlist.changed");
    }
    assert_eq!((resolved, allow), (1, 1));
    gw.stop().await;
}

#[test]
fn audit_follow_prints_what_another_process_does() {
    let st = State::new();
    st.ok(&["allowlist", "add", "telegram", "100"]);
    let mut follow = st
        .cmd(&["audit", "--follow", "--json", "--limit", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(follow.stdout.take().unwrap()).lines();
    let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["action"], "allowlist.added", "{first}");
    // The follower is watching now; another process appends.
    std::thread::sleep(Duration::from_millis(300));
    st.ok(&["allowlist", "add", "telegram", "101"]);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(lines.next().and_then(Result::ok));
    });
    let next = rx
        .recv_timeout(WAIT)
        .expect("the new entry is printed")
        .unwrap();
    let _ = follow.kill();
    let _ = follow.wait();
    let e: Value = serde_json::from_str(&next).unwrap();
    assert_eq!(e["action"], "allowlist.added");
    assert!(next.contains("101"), "{next}");
}
