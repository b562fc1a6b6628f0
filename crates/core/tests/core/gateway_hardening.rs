//! The gateway under bad input: oversized and malformed frames, silent sockets, foreign
//! origins, brute force. After each, it still answers its owner.

use crate::common;

use std::time::Duration;

use clawpair_core::client::{Auth, Client, ClientError, ConnectOptions, Identity};
use clawpair_core::gateway::Limits;
use common::gw::{self, connects, TestGateway};
use common::State;
use proptest::prelude::*;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn short_limits() -> Limits {
    Limits {
        handshake_timeout: Duration::from_millis(800),
        ..Limits::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_preauth_frame_is_refused() {
    let st = State::new();
    let gw = TestGateway::start(st.path()).await;
    let (mut raw, _) = gw::raw(&gw.url).await;
    let big = format!(
        "{{\"type\":\"req\",\"id\":\"1\",\"method\":\"connect\",\"params\":{{\"pad\":\"{}\"}}}}",
        "x".repeat(100 * 1024)
    );
    let _ = gw::send_text(&mut raw, big).await;
    let code = gw::close_code(&mut raw).await;
    assert!(matches!(code, Some(1009) | None), "closed with {code:?}");
    assert!(gw.answers().await);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_frame_that_is_not_connect_is_refused_with_1008() {
    let st = State::new();
    let gw = TestGateway::start(st.path()).await;
    for frame in [
        json!({ "type": "req", "id": "1", "method": "pairing.list", "params": {} }).to_string(),
        "not json at all".to_string(),
        "[1,2,3]".to_string(),
        json!({ "type": "event", "event": "x" }).to_string(),
    ] {
        let (mut raw, _) = gw::raw(&gw.url).await;
        gw::send_text(&mut raw, frame.clone()).await;
        let res = gw::recv(&mut raw)
            .await
            .unwrap_or_else(|| panic!("no answer to {frame}"));
        assert_eq!(res["ok"], false);
        assert_eq!(res["error"]["code"], "INVALID_REQUEST");
        assert_eq!(gw::close_code(&mut raw).await, Some(1008), "{frame}");
    }
    assert!(gw.answers().await);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_sockets_are_closed_at_the_deadline() {
    let st = State::new();
    let gw = TestGateway::start_with(st.path(), short_limits(), |_| {}).await;
    // A TCP connection that never upgrades.
    let mut tcp = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf))
        .await
        .expect("closed by the deadline")
        .unwrap_or(0);
    assert_eq!(n, 0, "the gateway said nothing and closed");
    // A WebSocket that never sends connect.
    let (mut raw, _) = gw::raw(&gw.url).await;
    let started = std::time::Instant::now();
    assert_eq!(gw::close_code(&mut raw).await, Some(1008));
    assert!(started.elapsed() < Duration::from_secs(5));
    // One that trickles the upgrade request byte by byte past the deadline.
    let mut slow = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let req = b"GET / HTTP/1.1\r\nHost: x\r\n";
    let mut closed = false;
    for b in req.iter().cycle().take(200) {
        if slow.write_all(&[*b]).await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if !closed {
        let n = tokio::time::timeout(Duration::from_secs(5), slow.read(&mut buf))
            .await
            .expect("closed")
            .unwrap_or(0);
        assert_eq!(n, 0);
    }
    assert!(gw.answers().await);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_origin_is_refused_at_the_upgrade() {
    let st = State::new();
    let gw = TestGateway::start_with(st.path(), Limits::default(), |s| {
        s.gateway.allowed_origins = vec!["tauri://localhost".into()]
    })
    .await;
    let mut opts = ConnectOptions::operator(&gw.url, &gw.token, "browser");
    opts.origin = Some("https://evil.example".into());
    match Client::connect(&opts, |_, _| {}).await {
        Err(ClientError::Connect { reason, .. }) => assert!(reason.contains("403"), "{reason}"),
        Err(e) => panic!("unexpected: {e}"),
        Ok(_) => panic!("a foreign origin got in"),
    }
    opts.origin = Some("tauri://localhost".into());
    connects(&opts).await;
    assert!(gw.answers().await);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brute_forced_tokens_hit_rate_limited_and_others_still_get_in() {
    let st = State::new();
    let gw = TestGateway::start_with(st.path(), Limits::default(), |s| {
        s.gateway.rate_limit.exempt_loopback = false
    })
    .await;
    for i in 0..10 {
        let (mut raw, _) = gw::raw_from("127.0.0.2", gw.addr).await;
        let req = json!({ "type": "req", "id": "c", "method": "connect", "params": {
            "minProtocol": 3, "maxProtocol": 3, "client": { "id": "x", "mode": "cli" }, "role": "operator", "auth": { "token": format!("guess-{i}") } } });
        gw::send(&mut raw, &req).await;
        let res = gw::recv(&mut raw).await.unwrap();
        assert_eq!(res["error"]["code"], "AUTH_FAILED", "attempt {i}: {res}");
        assert_eq!(gw::close_code(&mut raw).await, Some(1008));
    }
    let (mut raw, _) = gw::raw_from("127.0.0.2", gw.addr).await;
    let right = json!({ "type": "req", "id": "c", "method": "connect", "params": {
        "minProtocol": 3, "maxProtocol": 3, "client": { "id": "x", "mode": "cli" }, "role": "operator", "auth": { "token": gw.token } } });
    gw::send(&mut raw, &right).await;
    let res = gw::recv(&mut raw).await.unwrap();
    assert_eq!(
        res["error"]["code"], "RATE_LIMITED",
        "even the right token is refused during the lockout: {res}"
    );
    let retry = res["error"]["details"]["retryAfterMs"].as_u64().unwrap();
    assert!(retry > 290_000 && retry <= 300_000, "{retry}");
    assert!(gw.answers().await, "another address is not locked out");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_connections_are_capped_per_ip() {
    let st = State::new();
    let gw = TestGateway::start_with(st.path(), Limits::default(), |s| {
        s.gateway.rate_limit.exempt_loopback = false
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..32 {
        held.push(gw::raw_from("127.0.0.3", gw.addr).await.0);
    }
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind("127.0.0.3:0".parse().unwrap()).unwrap();
    let tcp = sock.connect(gw.addr).await.unwrap();
    let r = tokio_tungstenite::client_async(format!("ws://{}/", gw.addr), tcp).await;
    assert!(
        r.is_err(),
        "the 33rd unauthenticated connection from one IP is dropped"
    );
    drop(held);
    assert!(gw.answers().await);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_after_hello_get_an_error_and_a_close() {
    let st = State::new();
    let gw = TestGateway::start(st.path()).await;
    let (mut raw, _) = gw::raw(&gw.url).await;
    gw::send(&mut raw, &json!({ "type": "req", "id": "c", "method": "connect", "params": {
        "minProtocol": 3, "maxProtocol": 3, "client": { "id": "x", "mode": "cli" }, "role": "operator", "auth": { "token": gw.token } } })).await;
    assert_eq!(
        gw::recv(&mut raw).await.unwrap()["payload"]["type"],
        "hello-ok"
    );
    gw::send(
        &mut raw,
        &json!({ "type": "req", "id": "2", "method": "pairing.approve", "params": { "code": [] } }),
    )
    .await;
    let res = gw::recv(&mut raw).await.unwrap();
    assert_eq!(
        res["error"]["code"], "INVALID_REQUEST",
        "wrong types: an error, connection kept"
    );
    gw::send_text(&mut raw, "{\"type\":\"req\"".into()).await;
    let res = gw::recv(&mut raw).await.unwrap();
    assert_eq!(res["ok"], false);
    assert_eq!(gw::close_code(&mut raw).await, Some(1008));
    assert!(gw.answers().await);
    gw.stop().await;
}

fn arb_json() -> impl Strategy<Value = Value> {
    const KEYS: &[&str] = &[
        "minProtocol",
        "maxProtocol",
        "client",
        "role",
        "scopes",
        "auth",
        "device",
        "id",
        "token",
        "waitForApproval",
    ];
    // Strings stay under the 64 KiB pre-auth limit, so every frame gets an answer.
    common::arb::json_with_keys(KEYS, 5_000, 3)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn garbage_connect_params_get_an_error_never_a_crash(params in arb_json(), wrap in any::<bool>()) {
        let watch = common::panics::watch("fuzz-connect-params");
        let rt = watch.runtime();
        rt.block_on(async {
            let st = State::new();
            let gw = TestGateway::start(st.path()).await;
            let (mut raw, _) = gw::raw(&gw.url).await;
            let frame = if wrap { json!({ "type": "req", "id": "1", "method": "connect", "params": params }) } else { params };
            gw::send(&mut raw, &frame).await;
            let res = gw::recv(&mut raw).await;
            prop_assert_eq!(watch.count(), 0, "a connection panicked on {}", frame);
            let res = res.expect("an answer");
            prop_assert_eq!(&res["ok"], &Value::Bool(false));
            prop_assert_eq!(gw::close_code(&mut raw).await, Some(1008));
            prop_assert!(gw.answers().await);
            gw.stop().await;
            Ok(())
        })?;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrongly_typed_known_fields_are_refused() {
    let st = State::new();
    let gw = TestGateway::start(st.path()).await;
    let phone = Identity::generate();
    let mutations: Vec<(&str, Value)> = vec![
        ("/params/minProtocol", json!("3")),
        ("/params/maxProtocol", json!(-1)),
        ("/params/client", json!("client")),
        ("/params/role", json!("admin")),
        ("/params/scopes", json!("operator.read")),
        ("/params/device/signedAt", json!("now")),
        ("/params/device/publicKey", json!(12)),
        ("/params/auth", json!([])),
        ("/params/scopes", json!(vec!["x"; 64])),
    ];
    for (ptr, val) in mutations {
        let (mut raw, nonce) = gw::raw(&gw.url).await;
        let mut frame = gw::signed_connect(&phone, &nonce, Auth::BootstrapToken("t".into()));
        *frame.pointer_mut(ptr).unwrap() = val.clone();
        gw::send(&mut raw, &frame).await;
        let res = gw::recv(&mut raw).await.unwrap();
        assert_eq!(
            res["error"]["code"], "INVALID_REQUEST",
            "{ptr} = {val}: {res}"
        );
        assert_eq!(gw::close_code(&mut raw).await, Some(1008));
    }
    assert!(gw.answers().await);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_stops_answering_pings_is_closed() {
    let st = State::new();
    let limits = Limits {
        ping_interval: Duration::from_millis(150),
        idle_timeout: Duration::from_millis(500),
        ..Limits::default()
    };
    let gw = TestGateway::start_with(st.path(), limits, |_| {}).await;
    let (mut raw, _) = gw::raw(&gw.url).await;
    gw::send(&mut raw, &json!({ "type": "req", "id": "c", "method": "connect", "params": {
        "minProtocol": 3, "maxProtocol": 3, "client": { "id": "x", "mode": "cli" }, "role": "operator", "auth": { "token": gw.token } } })).await;
    assert_eq!(
        gw::recv(&mut raw).await.unwrap()["payload"]["type"],
        "hello-ok"
    );
    // Not reading means never answering the gateway's pings.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Closed by then: a 1001 close frame, or a reset if the frame was lost with the unread pings.
    let code = tokio::time::timeout(Duration::from_secs(3), gw::close_code(&mut raw))
        .await
        .expect("the socket was closed");
    assert!(matches!(code, Some(1001) | None), "{code:?}");
    // A peer that keeps reading (and so answers pings) stays connected.
    let mut op = gw.operator().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = op.next_event(Duration::from_millis(1200)).await;
    assert!(
        op.call("pairing.list", json!({})).await.is_ok(),
        "a responsive peer is kept"
    );
    gw.stop().await;
}

// ---------------------------------------------------------------- behind a proxy

/// Sends a connect on a socket opened with `headers` from `src`; returns the answer.
async fn connect_with(gw: &TestGateway, src: &str, headers: &[(&str, &str)], token: &str) -> Value {
    let (mut raw, _) = gw::raw_with_headers(src, gw.addr, headers)
        .await
        .expect("upgrade");
    gw::send(&mut raw, &gw::operator_connect(token)).await;
    gw::recv(&mut raw).await.expect("an answer")
}

/// Ten wrong tokens, then the right one: the answer to the right one.
async fn after_ten_failures(gw: &TestGateway, src: &str, headers: &[(&str, &str)]) -> Value {
    for i in 0..10 {
        let res = connect_with(gw, src, headers, &format!("guess-{i}")).await;
        assert_eq!(res["error"]["code"], "AUTH_FAILED", "attempt {i}: {res}");
    }
    connect_with(gw, src, headers, &gw.token).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_each_client_is_limited_on_its_own_and_shown_by_its_address() {
    let st = State::new();
    let gw = TestGateway::start_with(st.path(), Limits::default(), |s| {
        s.gateway.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    // A proxy on this computer: every client arrives from 127.0.0.1, yet each is itself.
    let res = after_ten_failures(&gw, "127.0.0.1", &[("X-Forwarded-For", "203.0.113.9")]).await;
    assert_eq!(res["error"]["code"], "RATE_LIMITED", "{res}");
    let other = connect_with(
        &gw,
        "127.0.0.1",
        &[("X-Forwarded-For", "198.51.100.20")],
        &gw.token,
    )
    .await;
    assert_eq!(
        other["payload"]["type"], "hello-ok",
        "another client is not locked out: {other}"
    );
    assert!(
        gw.answers().await,
        "the owner, without forwarding headers, still gets in"
    );
    // IPv6 clients count per /64.
    let res = after_ten_failures(
        &gw,
        "127.0.0.1",
        &[("Forwarded", r#"for="[2001:db8:7:7::1]:4711""#)],
    )
    .await;
    assert_eq!(res["error"]["code"], "RATE_LIMITED", "{res}");
    let same_64 = connect_with(
        &gw,
        "127.0.0.1",
        &[("Forwarded", r#"for="[2001:db8:7:7::2]""#)],
        &gw.token,
    )
    .await;
    assert_eq!(same_64["error"]["code"], "RATE_LIMITED", "{same_64}");
    // The owner sees the client's address, not the proxy's.
    let phone = Identity::generate();
    let (mut raw, nonce) = gw::raw_with_headers(
        "127.0.0.1",
        gw.addr,
        &[("Forwarded", r#"for="[2001:db8::5]:4711";proto=https"#)],
    )
    .await
    .unwrap();
    gw::send(
        &mut raw,
        &gw::signed_connect(&phone, &nonce, Auth::BootstrapToken(gw.setup_token())),
    )
    .await;
    let res = gw::recv(&mut raw).await.unwrap();
    assert_eq!(res["error"]["code"], "NOT_PAIRED", "{res}");
    let pending = gw.service.device_list().unwrap().pending;
    assert_eq!(pending[0].request.remote_ip, "2001:db8::5");
    // Unauthenticated connections are capped per client, not per proxy.
    let mut held = Vec::new();
    for _ in 0..32 {
        held.push(
            gw::raw_with_headers("127.0.0.1", gw.addr, &[("X-Forwarded-For", "192.0.2.77")])
                .await
                .unwrap(),
        );
    }
    assert!(
        gw::raw_with_headers("127.0.0.1", gw.addr, &[("X-Forwarded-For", "192.0.2.77")])
            .await
            .is_err(),
        "the 33rd from one client is refused"
    );
    assert!(
        gw::raw_with_headers("127.0.0.1", gw.addr, &[("X-Forwarded-For", "192.0.2.78")])
            .await
            .is_ok()
    );
    drop(held);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_headers_from_an_untrusted_peer_are_ignored_and_never_make_it_local() {
    let st = State::new();
    // No trusted proxies; loopback exempt (the default).
    let gw = TestGateway::start(st.path()).await;
    let res = after_ten_failures(&gw, "127.0.0.2", &[("X-Forwarded-For", "203.0.113.9")]).await;
    assert_eq!(
        res["error"]["code"], "RATE_LIMITED",
        "loopback with forwarding headers is not exempt: {res}"
    );
    // The headers chose nothing: the lockout is the peer's, and another forged client is
    // the same peer.
    let forged = connect_with(
        &gw,
        "127.0.0.2",
        &[("X-Forwarded-For", "198.51.100.1")],
        &gw.token,
    )
    .await;
    assert_eq!(forged["error"]["code"], "RATE_LIMITED", "{forged}");
    let phone = Identity::generate();
    let (mut raw, nonce) =
        gw::raw_with_headers("127.0.0.3", gw.addr, &[("X-Forwarded-For", "8.8.8.8")])
            .await
            .unwrap();
    gw::send(
        &mut raw,
        &gw::signed_connect(&phone, &nonce, Auth::BootstrapToken(gw.setup_token())),
    )
    .await;
    gw::recv(&mut raw).await.unwrap();
    let pending = gw.service.device_list().unwrap().pending;
    assert_eq!(
        pending[0].request.remote_ip, "127.0.0.3",
        "the peer, not the header"
    );
    assert!(
        gw.answers().await,
        "the owner without headers is exempt as before"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_gateway_keeps_slots_for_the_owner_on_this_computer() {
    let st = State::new();
    let limits = Limits {
        max_connections: 3,
        loopback_reserve: 1,
        ..Limits::default()
    };
    let gw = TestGateway::start_with(st.path(), limits, |_| {}).await;
    let _a = gw.operator().await;
    let _b = gw.operator().await;
    // The shared slots are taken. A client through a proxy on this computer may not have the
    // reserve…
    let through_proxy =
        gw::raw_with_headers("127.0.0.1", gw.addr, &[("X-Forwarded-For", "203.0.113.9")]).await;
    assert!(
        through_proxy.is_err(),
        "the reserve is not for forwarded clients"
    );
    // …the owner's CLI or app may.
    let mut owner = None;
    for _ in 0..20 {
        match Client::connect(
            &ConnectOptions::operator(&gw.url, &gw.token, "cli"),
            |_, _| {},
        )
        .await
        {
            Ok(c) => {
                owner = Some(c);
                break;
            }
            // The refused socket's slot comes back as its task ends.
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let mut owner = owner.expect("the owner gets in");
    assert!(owner.call("pairing.list", json!({})).await.is_ok());
    gw.stop().await;
}
