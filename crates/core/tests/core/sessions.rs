//! Sessions are bound to every credential they used and bounded once authenticated: rotating the
//! admin token closes a session that also sent a device key; a client that stops reading cannot
//! hold its session past a kick, nor get one more request served; one device holds at most its
//! share of sessions, and one address too; a large frame's buffers are given back without losing
//! what the client sent after it. Real gateway on loopback, real sockets.

use crate::common;

use std::time::{Duration, Instant};

use clawpair_core::client::{Client, ConnectOptions, Identity};
use clawpair_core::gateway::Limits;
use clawpair_core::pairing::authority::Authority;
use common::gw::{self, connects, refused, TestGateway};
use common::State;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

/// A device paired by the owner through a setup code; its options with its token.
async fn paired(gw: &TestGateway, role: &str, scopes: &[&str]) -> ConnectOptions {
    gw.pair_device(role, scopes).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_the_admin_token_closes_a_session_that_also_sent_a_device_key() {
    let st = State::new();
    let gw = TestGateway::start(st.path()).await;
    let mut opts = gw.operator_options("thief");
    opts.identity = Some(Identity::generate());
    let mut c = Client::connect(&opts, |_, _| {})
        .await
        .expect("admin token + key");
    c.call("device.pair.list", json!({})).await.expect("admin");
    gw.service.admin_token_rotate("test").unwrap();
    let why = c.closed(Duration::from_secs(5)).await.expect("closed");
    assert!(why.unwrap_or_default().contains("credential revoked"));
    let e = refused(&opts).await;
    assert_eq!(e.code, "AUTH_FAILED");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_admin_token_written_by_another_process_closes_the_old_tokens_sessions() {
    let st = State::new();
    // No run record: the CLI rotates the token in the files, as another process.
    let gw = TestGateway::start_unrecorded(st.path()).await;
    let mut opts = gw.operator_options("thief");
    opts.identity = Some(Identity::generate());
    let mut c = Client::connect(&opts, |_, _| {})
        .await
        .expect("admin token + key");
    let out = gw::cli(st.path(), &["token", "rotate"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let why = c.closed(Duration::from_secs(10)).await.expect("closed");
    assert!(why.unwrap_or_default().contains("credential revoked"));
    // The new token's sessions stay.
    let token = gw.service.settings().gateway.auth.token.clone();
    let mut fresh = Client::connect(
        &ConnectOptions::operator(&gw.url, &token, "owner"),
        |_, _| {},
    )
    .await
    .expect("the new token");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    fresh.call("health", json!({})).await.expect("still open");
    gw.stop().await;
}

/// Paired devices as an import adds them, in one write: enough to make `device.pair.list`
/// answers of about a megabyte.
fn many_devices(gw: &TestGateway, n: usize) {
    let devices = (0..n)
        .map(|i| {
            let id = Identity::generate();
            serde_json::from_value(json!({
                "deviceId": id.device_id(), "publicKey": id.public_key(),
                "displayName": format!("{i:04} {}", "a long display name for a big answer ".repeat(2)),
                "platform": "android", "roles": ["node"], "createdAtMs": 1, "approvedAtMs": 1,
            }))
            .unwrap()
        })
        .collect();
    gw.service.devices.add_paired(devices).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_loses_its_session_at_the_kick_and_nothing_more_is_served() {
    let st = State::new();
    let gw = TestGateway::start(st.path()).await;
    many_devices(&gw, 2_000);
    let opts = paired(&gw, "operator", &["operator.pairing"]).await;
    let c = Client::connect(&opts, |_, _| {})
        .await
        .expect("pairing device");
    let (mut ws, _) = c.into_socket();
    // Answers of ~1 MB each, never read: the gateway's writes stall.
    for i in 0..12 {
        let req = json!({ "type": "req", "id": format!("l{i}"), "method": "device.pair.list", "params": {} });
        ws.feed(Message::text(req.to_string())).await.unwrap();
    }
    ws.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let device_id = opts.identity.as_ref().unwrap().device_id();
    gw.service
        .token_revoke(&device_id, "operator", &Authority::owner(), "test")
        .unwrap();
    let revoked = Instant::now();
    // One more request, after the revocation: it must not be served.
    let late = json!({ "type": "req", "id": "late", "method": "allowlist.add",
                       "params": { "channel": "telegram", "senderId": "after-revoke" } });
    let _ = tokio::time::timeout(
        Duration::from_secs(2),
        ws.send(Message::text(late.to_string())),
    )
    .await;
    // Still not reading: the gateway must drop the session on its own (a write to a socket
    // it dropped fails), not wait for this client to read again.
    let mut dropped = false;
    while revoked.elapsed() < Duration::from_secs(8) {
        let ping = ws.send(Message::Ping(Vec::new().into()));
        if !matches!(
            tokio::time::timeout(Duration::from_millis(200), ping).await,
            Ok(Ok(()))
        ) {
            dropped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(dropped, "the stalled session outlived its kick");
    // Whatever made it out before, never the late request's answer.
    let mut answered = Vec::new();
    while let Ok(Some(Ok(Message::Text(t)))) =
        tokio::time::timeout(Duration::from_secs(2), ws.next()).await
    {
        let v: Value = serde_json::from_str(t.as_str()).unwrap_or_default();
        answered.push(v["id"].as_str().unwrap_or_default().to_string());
    }
    assert!(!answered.contains(&"late".to_string()), "{answered:?}");
    let allowed = gw.service.allow_list(Some("telegram")).unwrap();
    assert!(
        allowed.iter().all(|a| a.sender_id != "after-revoke"),
        "nothing served after the kick"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_device_holds_at_most_eight_sessions() {
    let st = State::new();
    let gw = TestGateway::start(st.path()).await;
    let opts = paired(&gw, "node", &[]).await;
    let mut held = Vec::new();
    for _ in 0..Limits::default().max_sessions_per_device {
        held.push(
            Client::connect(&opts, |_, _| {})
                .await
                .expect("within the bound"),
        );
    }
    let e = refused(&opts).await;
    assert_eq!(e.code, "RATE_LIMITED", "{e:?}");
    assert_eq!(e.details.clone().unwrap()["code"], "TOO_MANY_SESSIONS");
    assert!(
        e.message.contains("this device already holds 8 sessions"),
        "{}",
        e.message
    );
    // Others are not affected: the admin token and another device.
    gw.operator().await.close().await;
    let other = paired(&gw, "node", &[]).await;
    connects(&other).await;
    // A session closed makes room again.
    held.pop().unwrap().close().await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match Client::connect(&opts, |_, _| {}).await {
            Ok(c) => {
                c.close().await;
                break;
            }
            Err(e) if Instant::now() < deadline => {
                assert_eq!(e.code(), Some("RATE_LIMITED"));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("no room after a close: {e}"),
        }
    }
    for c in held {
        c.close().await;
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_holds_at_most_its_share_of_sessions() {
    let st = State::new();
    let limits = Limits {
        max_sessions_per_ip: 3,
        ..Limits::default()
    };
    let gw = TestGateway::start_with(st.path(), limits, |s| {
        s.gateway.rate_limit.exempt_loopback = false;
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let (mut ws, _) = gw::raw_from("127.0.0.2", gw.addr).await;
        gw::send(&mut ws, &gw::operator_connect(&gw.token)).await;
        let hello = gw::recv(&mut ws).await.unwrap();
        assert_eq!(hello["ok"], true, "{hello}");
        held.push(ws);
    }
    let (mut ws, _) = gw::raw_from("127.0.0.2", gw.addr).await;
    gw::send(&mut ws, &gw::operator_connect(&gw.token)).await;
    let refused = gw::recv(&mut ws).await.unwrap();
    assert_eq!(refused["error"]["code"], "RATE_LIMITED", "{refused}");
    assert_eq!(refused["error"]["details"]["code"], "TOO_MANY_SESSIONS");
    assert!(refused["error"]["message"]
        .as_str()
        .unwrap()
        .contains("this address"));
    let (mut ws, _) = gw::raw_from("127.0.0.3", gw.addr).await;
    gw::send(&mut ws, &gw::operator_connect(&gw.token)).await;
    assert_eq!(
        gw::recv(&mut ws).await.unwrap()["ok"],
        true,
        "another address"
    );
    drop(held);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_large_frame_the_session_keeps_every_request_sent_behind_it() {
    let st = State::new();
    let gw = TestGateway::start(st.path()).await;
    let opts = paired(&gw, "node", &[]).await;
    let c = Client::connect(&opts, |_, _| {}).await.expect("node");
    let (mut ws, _) = c.into_socket();
    let big = "x".repeat(1_000_000);
    for round in 0..3 {
        // The large frame and two small ones behind it, in one write.
        let frames = [
            json!({ "type": "req", "id": format!("big{round}"), "method": "node.event", "params": { "blob": big } }),
            json!({ "type": "req", "id": format!("a{round}"), "method": "node.event", "params": {} }),
            json!({ "type": "req", "id": format!("b{round}"), "method": "node.skills.update", "params": {} }),
        ];
        for f in &frames {
            ws.feed(Message::text(f.to_string())).await.unwrap();
        }
        ws.flush().await.unwrap();
        for want in [
            format!("big{round}"),
            format!("a{round}"),
            format!("b{round}"),
        ] {
            let v = gw::next_answer(&mut ws).await;
            assert_eq!(v["id"], want.as_str(), "{v}");
            assert_eq!(v["ok"], true, "{v}");
        }
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_message_in_fragments_with_pings_between_them_arrives_whole() {
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    let st = State::new();
    let gw = TestGateway::start(st.path()).await;
    let opts = paired(&gw, "node", &[]).await;
    let c = Client::connect(&opts, |_, _| {}).await.expect("node");
    let (mut ws, _) = c.into_socket();
    let text = json!({ "type": "req", "id": "frag", "method": "node.event",
                       "params": { "blob": "y".repeat(200_000) } })
    .to_string();
    let (first, rest) = text.as_bytes().split_at(100_000);
    let (second, third) = rest.split_at(50_000);
    let frame = |bytes: &[u8], op, fin| {
        Message::Frame(Frame::message(bytes.to_vec(), OpCode::Data(op), fin))
    };
    ws.send(frame(first, Data::Text, false)).await.unwrap();
    // Between the fragments: a ping, and time for the session to go round its loop.
    ws.send(Message::Ping(Vec::new().into())).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    ws.send(frame(second, Data::Continue, false)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    ws.send(frame(third, Data::Continue, true)).await.unwrap();
    let answer = gw::next_answer(&mut ws).await;
    assert_eq!(answer["id"], "frag", "{answer}");
    assert_eq!(answer["ok"], true, "{answer}");
    gw.stop().await;
}
