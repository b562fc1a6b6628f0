//! Protocol 4 beside 3, and what OpenClaw 2026.9's clients read on the wire: the negotiated
//! version, a complete hello-ok, `tick` events, pairing-required and auth-failure details,
//! setup-code scopes decided by the owner, and the methods OpenClaw's CLI and node host call.
//! (The same flows against OpenClaw's own clients run in tests/interop.rs.)

use crate::common;

use std::time::Duration;

use clawpair_core::client::{Auth, Client, ConnectOptions, Identity};
use clawpair_core::gateway::Limits;
use common::gw::{self, close_code, raw, recv, refused, rejected, send, TestGateway};
use common::State;
use serde_json::{json, Value};

fn admin_connect(token: &str, min: u32, max: u32) -> Value {
    json!({ "type": "req", "id": "1:abc", "method": "connect", "params": {
        "minProtocol": min, "maxProtocol": max,
        "client": { "id": "gateway-client", "version": "2026.9.6", "platform": "linux", "mode": "backend",
                    "deviceFamily": "Linux", "instanceId": "i-1" },
        "caps": [], "role": "operator", "scopes": ["operator.admin"], "auth": { "token": token },
        "locale": "en", "userAgent": "test"
    }})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_highest_common_version_is_chosen_and_hello_ok_is_complete_for_4() {
    let st = State::new();
    let gw = TestGateway::start(st.path()).await;
    for (min, max, want) in [(4, 4, 4), (3, 4, 4), (3, 3, 3), (1, 3, 3), (4, 9, 4)] {
        let (mut ws, _) = raw(&gw.url).await;
        send(&mut ws, &admin_connect(&gw.token, min, max)).await;
        let res = recv(&mut ws).await.expect("an answer");
        assert_eq!(res["ok"], true, "{min}..{max}: {res}");
        assert_eq!(res["id"], "1:abc");
        let hello = &res["payload"];
        assert_eq!(hello["protocol"], want, "{min}..{max}");
        assert_eq!(hello["auth"]["method"], "token");
        assert_eq!(hello["auth"]["role"], "operator");
        let methods: Vec<&str> = hello["features"]["methods"]
            .as_array()
            .expect("features.methods")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for m in [
            "device.pair.list",
            "device.pair.approve",
            "device.pair.rename",
            "health",
        ] {
            assert!(methods.contains(&m), "{m} in {methods:?}");
        }
        assert!(
            !methods.contains(&"node.event"),
            "node methods are for nodes"
        );
        let events = hello["features"]["events"].as_array().unwrap();
        assert!(events.contains(&json!("tick")) && events.contains(&json!("device.pair.resolved")));
        assert!(hello["snapshot"]["presence"].is_array());
        assert!(hello["snapshot"]["health"].is_object());
        assert!(hello["snapshot"]["uptimeMs"].is_u64());
        assert_eq!(
            hello["snapshot"]["stateVersion"],
            json!({ "presence": 0, "health": 0 })
        );
        assert!(hello["policy"]["maxBufferedBytes"].as_u64().unwrap() > 0);
        assert_eq!(hello["policy"]["tickIntervalMs"], 30_000);
        // OpenClaw's v4 schema is closed and has no server.name; v3 keeps it.
        assert_eq!(hello["server"].get("name").is_some(), want == 3, "{hello}");
        assert!(hello["server"]["connId"].is_string());
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_common_version_is_a_protocol_mismatch_closed_with_1002() {
    let st = State::new();
    let gw = TestGateway::start(st.path()).await;
    for (min, max) in [(5, 5), (1, 2), (4, 3)] {
        let (mut ws, _) = raw(&gw.url).await;
        send(&mut ws, &admin_connect(&gw.token, min, max)).await;
        let res = recv(&mut ws).await.expect("an answer");
        assert_eq!(res["ok"], false);
        let e = &res["error"];
        assert_eq!(e["code"], "INVALID_REQUEST");
        assert_eq!(e["message"], "protocol mismatch");
        assert_eq!(
            e["details"],
            json!({ "code": "PROTOCOL_MISMATCH", "clientMinProtocol": min, "clientMaxProtocol": max,
                    "expectedProtocol": 4, "minimumProbeProtocol": 3 })
        );
        assert_eq!(close_code(&mut ws).await, Some(1002));
    }
    assert!(gw.answers().await);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_get_tick_events_at_the_announced_interval() {
    let st = State::new();
    let limits = Limits {
        ping_interval: Duration::from_millis(300),
        idle_timeout: Duration::from_secs(5),
        ..Limits::default()
    };
    let gw = TestGateway::start_with(st.path(), limits, |_| {}).await;
    let mut op = gw.operator().await;
    assert_eq!(op.hello["policy"]["tickIntervalMs"], 300);
    let tick = op
        .wait_event("tick", Duration::from_secs(3))
        .await
        .unwrap()
        .expect("a tick");
    assert!(tick["ts"].as_i64().unwrap() > 0);
    // Nodes and scope-less sessions hear no event stream, but still get ticks.
    let (phone, token) = gw.paired_phone().await;
    let mut node = Client::connect(&gw.phone(&phone, Auth::DeviceToken(token)), |_, _| {})
        .await
        .expect("node connects");
    assert!(node
        .wait_event("tick", Duration::from_secs(3))
        .await
        .unwrap()
        .is_some());
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairing_required_tells_a_long_lived_client_to_wait_and_retry() {
    let st = State::new();
    let gw = TestGateway::start(st.path()).await;
    let phone = Identity::generate();
    let setup = gw.setup_token();
    let (mut ws, nonce) = raw(&gw.url).await;
    send(
        &mut ws,
        &gw::signed_connect(&phone, &nonce, Auth::BootstrapToken(setup.clone())),
    )
    .await;
    let res = recv(&mut ws).await.unwrap();
    let e = &res["error"];
    assert_eq!(e["code"], "NOT_PAIRED");
    assert!(e["message"]
        .as_str()
        .unwrap()
        .starts_with("pairing required"));
    let d = &e["details"];
    let request_id = d["requestId"].as_str().unwrap().to_string();
    assert_eq!(d["code"], "PAIRING_REQUIRED");
    assert_eq!(d["reason"], "not-paired");
    assert_eq!(d["deviceId"], phone.device_id());
    assert_eq!(d["requestedRole"], "node");
    assert!(d.get("requestedScopes").is_none(), "none asked: {d}");
    assert_eq!(d["recommendedNextStep"], "wait_then_retry");
    assert_eq!(d["retryable"], true);
    assert_eq!(d["pauseReconnect"], false);
    assert_eq!(d["fingerprint"], phone.fingerprint());
    // OpenClaw's CLI reads the request id from the close reason.
    let close = loop {
        match tokio::time::timeout(
            Duration::from_secs(5),
            futures_util::StreamExt::next(&mut ws),
        )
        .await
        .expect("closed")
        {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Close(Some(f)))) => break f,
            Some(Ok(_)) => continue,
            other => panic!("no close frame: {other:?}"),
        }
    };
    assert_eq!(u16::from(close.code), 1008);
    assert!(
        close.reason.contains(&format!("(requestId: {request_id})")),
        "{}",
        close.reason
    );

    // The retry it was told to make finds the same request, and after approval gets in.
    let again = refused(&gw.phone(&phone, Auth::BootstrapToken(setup.clone()))).await;
    assert_eq!(again.details.unwrap()["requestId"], request_id.as_str());
    gw.service.device_approve(&request_id, "test").unwrap();
    let c = Client::connect(&gw.phone(&phone, Auth::BootstrapToken(setup)), |_, _| {})
        .await
        .expect("in after approval");
    assert_eq!(c.hello["auth"]["method"], "bootstrap-token");
    assert_eq!(c.hello["auth"]["deviceToken"].as_str().unwrap().len(), 43);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_failed_credential_says_which_under_auth_failed() {
    let st = State::new();
    let gw = TestGateway::start(st.path()).await;
    let (phone, token) = gw.paired_phone().await;
    let stranger = Identity::generate();
    let cases: Vec<(ConnectOptions, &str, &str)> = vec![
        (
            ConnectOptions::operator(&gw.url, "not-the-token", "cli"),
            "AUTH_TOKEN_MISMATCH",
            "update_auth_credentials",
        ),
        (
            {
                let mut o = ConnectOptions::operator(&gw.url, "", "cli");
                o.auth = Auth::None;
                o
            },
            "AUTH_TOKEN_MISSING",
            "update_auth_configuration",
        ),
        (
            gw.phone(&phone, Auth::DeviceToken("x".repeat(43))),
            "AUTH_DEVICE_TOKEN_MISMATCH",
            "update_auth_credentials",
        ),
        (
            gw.phone(&stranger, Auth::DeviceToken(token.clone())),
            "AUTH_DEVICE_TOKEN_MISMATCH",
            "update_auth_credentials",
        ),
        (
            gw.phone(&stranger, Auth::BootstrapToken("y".repeat(43))),
            "AUTH_BOOTSTRAP_TOKEN_INVALID",
            "update_auth_credentials",
        ),
    ];
    for (opts, code, step) in cases {
        let e = refused(&opts).await;
        assert_eq!(e.code, "AUTH_FAILED", "{code}: {e:?}");
        let d = e.details.expect("details");
        assert_eq!(d["code"], code, "{d}");
        assert_eq!(d["recommendedNextStep"], step, "{d}");
        assert_eq!(d["canRetryWithDeviceToken"], false);
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_setup_code_may_ask_for_admin_and_the_owner_may_grant_the_rest() {
    let st = State::new();
    let gw = TestGateway::start(st.path()).await;
    let phone = Identity::generate();
    let setup = gw.setup_token();
    let asks = |auth: Auth| {
        let mut o = gw.phone(&phone, auth);
        o.role = "operator".into();
        o.client_mode = "backend".into();
        o.scopes = vec!["operator.admin".into(), "operator.read".into()];
        o
    };
    // OpenClaw's GatewayClient asks for operator.admin by default: the request carries it.
    let e = refused(&asks(Auth::BootstrapToken(setup.clone()))).await;
    assert_eq!(e.code, "NOT_PAIRED");
    let d = e.details.unwrap();
    assert_eq!(
        d["requestedScopes"],
        json!(["operator.admin", "operator.read"])
    );
    let request_id = d["requestId"].as_str().unwrap().to_string();
    let list = gw.service.device_list().unwrap();
    assert_eq!(
        list.pending[0].request.scopes,
        vec!["operator.admin".to_string(), "operator.read".into()]
    );

    // "Approve without admin" over the protocol: the device gets the rest…
    let mut op = gw.operator().await;
    let approved = op
        .call(
            "device.pair.approve",
            json!({ "requestId": request_id, "withoutAdmin": true }),
        )
        .await
        .unwrap();
    assert_eq!(approved["device"]["scopes"], json!(["operator.read"]));
    let c = Client::connect(&asks(Auth::BootstrapToken(setup)), |_, _| {})
        .await
        .expect("granted what the owner approved");
    assert_eq!(c.hello["auth"]["scopes"], json!(["operator.read"]));
    let token = c.hello["auth"]["deviceToken"].as_str().unwrap().to_string();
    c.close().await;
    // …and asking for admin again is answered with what was granted, not a new request.
    let c = Client::connect(&asks(Auth::DeviceToken(token)), |_, _| {})
        .await
        .expect("reconnects");
    assert_eq!(c.hello["auth"]["scopes"], json!(["operator.read"]));
    assert!(gw.service.device_list().unwrap().pending.is_empty());
    let rpc = op.call("device.pair.list", json!({})).await.unwrap();
    assert_eq!(
        rpc["paired"][0]["withheldScopes"],
        json!(["operator.admin"])
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scope_no_owner_could_grant_is_refused_with_a_reason() {
    let st = State::new();
    let gw = TestGateway::start(st.path()).await;
    let phone = Identity::generate();
    let mut o = gw.phone(&phone, Auth::BootstrapToken(gw.setup_token()));
    o.scopes = vec!["operator.admin".into()]; // a node never holds operator scopes
    let e = refused(&o).await;
    assert_eq!(e.code, "INVALID_REQUEST");
    assert_eq!(e.details.unwrap()["code"], "AUTH_SCOPE_MISMATCH");
    assert!(e.message.contains("operator.admin"), "{}", e.message);
    assert!(gw.service.device_list().unwrap().pending.is_empty());
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_methods_answer_as_openclaw_cli_reads_them() {
    let st = State::new();
    let gw = TestGateway::start(st.path()).await;
    let (phone, token) = gw.paired_phone().await;
    let mut op = gw.operator().await;

    let list = op.call("device.pair.list", json!({})).await.unwrap();
    let d = &list["paired"][0];
    assert_eq!(d["deviceId"], phone.device_id());
    assert_eq!(d["publicKey"], phone.public_key());
    assert_eq!(d["role"], "node");
    assert_eq!(d["roles"], json!(["node"]));
    assert_eq!(d["clientMode"], "node");
    assert!(d["scopes"].is_array() && d["tokens"][0]["role"] == "node");
    assert!(!list.to_string().contains(&token));

    // rename: a label, shown as the device's name, and an event for OpenClaw's UIs.
    let renamed = op
        .call(
            "device.pair.rename",
            json!({ "deviceId": phone.device_id(), "label": "Kitchen\u{202E} tablet" }),
        )
        .await
        .unwrap();
    assert_eq!(renamed["label"], "Kitchen tablet");
    assert!(op
        .wait_event("device.pair.changed", Duration::from_secs(5))
        .await
        .unwrap()
        .is_some());
    let list = op.call("device.pair.list", json!({})).await.unwrap();
    assert_eq!(list["paired"][0]["operatorLabel"], "Kitchen tablet");
    let e = rejected(
        op.call(
            "device.pair.rename",
            json!({ "deviceId": "nope", "label": "x" }),
        )
        .await,
    );
    assert_eq!(e.code, "NOT_FOUND");
    assert!(e.message.contains("unknown deviceId"), "{}", e.message);
    let e = rejected(
        op.call("device.pair.approve", json!({ "requestId": "nope" }))
            .await,
    );
    assert!(e.message.contains("unknown requestId"), "{}", e.message);

    // rotate tells the owner the token once, with its scopes and how it was delivered.
    let r = op
        .call(
            "device.token.rotate",
            json!({ "deviceId": phone.device_id(), "role": "node" }),
        )
        .await
        .unwrap();
    assert_eq!(r["tokenDelivery"], "in-band");
    assert!(r["scopes"].is_array() && r["token"].as_str().unwrap().len() == 43);

    // OpenClaw's name for a setup code, and health.
    let code = op
        .call(
            "device.pair.setupCode",
            json!({ "publicUrl": "ws://192.168.1.20:18789/" }),
        )
        .await
        .unwrap();
    assert_eq!(code["gatewayUrl"], "ws://192.168.1.20:18789");
    assert!(code["setupCode"].is_string() && code["expiresAtMs"].is_i64());
    assert_eq!(op.call("health", json!({})).await.unwrap()["ok"], true);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_hosts_reports_are_acknowledged_and_operators_methods_refused_to_it() {
    let st = State::new();
    let gw = TestGateway::start(st.path()).await;
    let (phone, token) = gw.paired_phone().await;
    let mut node = Client::connect(&gw.phone(&phone, Auth::DeviceToken(token)), |_, _| {})
        .await
        .unwrap();
    let methods = node.hello["features"]["methods"]
        .as_array()
        .unwrap()
        .clone();
    assert!(methods.contains(&json!("node.event")));
    for m in [
        "node.event",
        "node.runnerInventory.update",
        "node.skills.update",
        "node.pluginTools.update",
    ] {
        let r = node
            .call(m, json!({ "event": "x", "payloadJSON": "{}" }))
            .await
            .unwrap();
        assert_eq!(r["ok"], true, "{m}");
    }
    let e = rejected(node.call("device.pair.list", json!({})).await);
    assert_eq!(e.code, "FORBIDDEN");
    let mut op = gw.operator().await;
    let e = rejected(op.call("node.event", json!({})).await);
    assert_eq!(e.code, "FORBIDDEN");
    gw.stop().await;
}
