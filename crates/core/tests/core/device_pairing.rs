//! Device pairing over real sockets with real Ed25519 keys: the phone journeys, signature
//! failures, setup-code binding, and token revocation that closes live sockets.

use crate::common;

use std::time::Duration;

use clawpair_core::client::{Auth, Client, ClientError, Identity};
use common::gw::{self, cli, connects, refused, rejected, TestGateway};
use common::{stderr, stdout, State};
use serde_json::Value;

/// Builds a connect frame for a challenge nonce.
type MakeConnect<'a> = Box<dyn Fn(&str) -> Value + 'a>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_journey_not_paired_then_cli_approve_then_token_then_reconnect() {
    let st = State::new();
    let gw = TestGateway::start(st.path()).await;
    let mut op = gw.operator().await;
    let phone = Identity::generate();
    let setup = gw.setup_token();

    // First contact: refused with NOT_PAIRED and a request id, socket closed with 1008.
    let (mut raw, nonce) = gw::raw(&gw.url).await;
    gw::send(
        &mut raw,
        &gw::signed_connect(&phone, &nonce, Auth::BootstrapToken(setup.clone())),
    )
    .await;
    let res = gw::recv(&mut raw).await.unwrap();
    assert_eq!(res["ok"], false);
    assert_eq!(res["error"]["code"], "NOT_PAIRED");
    assert_eq!(
        res["error"]["message"],
        "pairing required: device is not approved yet"
    );
    assert_eq!(res["error"]["details"]["code"], "PAIRING_REQUIRED");
    assert_eq!(res["error"]["details"]["reason"], "not-paired");
    let request_id = res["error"]["details"]["requestId"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(gw::close_code(&mut raw).await, Some(1008));

    // The owner's side sees the request with the phone's fingerprint.
    let ev = op
        .wait_event("device.pair.requested", Duration::from_secs(5))
        .await
        .unwrap()
        .expect("requested event");
    assert_eq!(ev["requestId"], request_id.as_str());
    assert_eq!(ev["fingerprint"], phone.fingerprint().as_str());
    assert_eq!(ev["deviceId"], phone.device_id().as_str());

    // The CLI binary approves through the running gateway (the operator sees it resolved).
    let o = cli(st.path(), &["devices", "approve", &request_id]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains(&phone.fingerprint()));
    let ev = op
        .wait_event("device.pair.resolved", Duration::from_secs(5))
        .await
        .unwrap()
        .expect("resolved event");
    assert_eq!(ev["decision"], "approved");

    // The phone comes back with its setup code and gets a device token, once.
    let c = Client::connect(
        &gw.phone(&phone, Auth::BootstrapToken(setup.clone())),
        |_, _| {},
    )
    .await
    .expect("hello-ok");
    assert_eq!(c.hello["type"], "hello-ok");
    assert_eq!(c.hello["protocol"], 4, "ClawPair's client offers 3..4");
    let token = c.hello["auth"]["deviceToken"]
        .as_str()
        .expect("device token")
        .to_string();
    assert_eq!(token.len(), 43);
    c.close().await;
    st.assert_nowhere_on_disk(&token);

    // It reconnects with the token; no new token is shown.
    let c = Client::connect(
        &gw.phone(&phone, Auth::DeviceToken(token.clone())),
        |_, _| {},
    )
    .await
    .expect("reconnect");
    assert!(c.hello["auth"].get("deviceToken").is_none());
    c.close().await;

    // The setup code was consumed.
    let e = refused(&gw.phone(&phone, Auth::BootstrapToken(setup))).await;
    assert_eq!(e.code, "AUTH_FAILED");
    assert!(e.message.contains("already used"), "{}", e.message);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_phone_is_answered_on_the_same_socket_when_the_cli_approves() {
    let st = State::new();
    let gw = TestGateway::start(st.path()).await;
    let mut op = gw.operator().await;
    let phone = Identity::generate();
    let mut opts = gw.phone(&phone, Auth::BootstrapToken(gw.setup_token()));
    opts.wait_for_approval = true;
    let waiting = tokio::spawn(async move {
        let mut pending = None;
        let r = Client::connect(&opts, |name, p| {
            if name == "device.pair.pending" {
                pending = Some(p.clone());
            }
        })
        .await;
        (r, pending)
    });
    let ev = op
        .wait_event("device.pair.requested", Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    let rid = ev["requestId"].as_str().unwrap().to_string();
    let o = cli(st.path(), &["devices", "approve", &rid]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let (r, pending) = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .unwrap()
        .unwrap();
    let pending = pending.expect("device.pair.pending event");
    assert_eq!(pending["requestId"], rid.as_str());
    assert_eq!(pending["fingerprint"], phone.fingerprint().as_str());
    assert!(pending["expiresAtMs"].as_i64().unwrap() > gw::now_ms());
    let c = r.expect("hello-ok after approval");
    assert!(c.hello["auth"]["deviceToken"].as_str().is_some());
    let list = gw.service.device_list().unwrap();
    assert_eq!(list.paired.len(), 1);
    assert!(list.paired[0].last_seen_at_ms.is_some() || list.paired[0].tokens[0].created_at_ms > 0);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_phone_is_told_when_the_owner_rejects() {
    let st = State::new();
    let gw = TestGateway::start(st.path()).await;
    let mut op = gw.operator().await;
    let phone = Identity::generate();
    let mut opts = gw.phone(&phone, Auth::BootstrapToken(gw.setup_token()));
    opts.wait_for_approval = true;
    let waiting = tokio::spawn(async move { Client::connect(&opts, |_, _| {}).await });
    let ev = op
        .wait_event("device.pair.requested", Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    let o = cli(
        st.path(),
        &["devices", "reject", ev["requestId"].as_str().unwrap()],
    )
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let r = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rejected(r.map(|c| c.hello)).code, "PAIRING_REJECTED");
    assert!(gw.service.device_list().unwrap().paired.is_empty());
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_signature_failure_has_its_code_and_closes_1008() {
    let st = State::new();
    let gw = TestGateway::start(st.path()).await;
    let phone = Identity::generate();
    let other = Identity::generate();
    let setup = gw.setup_token();
    let cases: Vec<(&str, MakeConnect)> = vec![
        (
            "DEVICE_AUTH_SIGNATURE",
            Box::new(|n: &str| {
                let mut v = gw::connect_signed_at(&phone, n, n, gw::now_ms(), &setup);
                v["params"]["device"]["signature"] = other.sign(&Default::default()).into();
                v
            }),
        ),
        (
            "DEVICE_AUTH_STALE",
            Box::new(|n: &str| {
                gw::connect_signed_at(&phone, n, n, gw::now_ms() - 3 * 60_000, &setup)
            }),
        ),
        // At the ends of i64 the skew check must say stale, not overflow (a pre-auth panic).
        (
            "DEVICE_AUTH_STALE",
            Box::new(|n: &str| gw::connect_signed_at(&phone, n, n, i64::MIN, &setup)),
        ),
        (
            "DEVICE_AUTH_STALE",
            Box::new(|n: &str| gw::connect_signed_at(&phone, n, n, i64::MAX, &setup)),
        ),
        (
            "DEVICE_AUTH_NONCE_MISMATCH",
            Box::new(|_n: &str| {
                gw::connect_signed_at(
                    &phone,
                    "not-the-nonce",
                    "not-the-nonce",
                    gw::now_ms(),
                    &setup,
                )
            }),
        ),
        (
            "DEVICE_AUTH_ID_MISMATCH",
            Box::new(|n: &str| {
                let mut v = gw::connect_signed_at(&phone, n, n, gw::now_ms(), &setup);
                v["params"]["device"]["id"] = other.device_id().into();
                v
            }),
        ),
    ];
    for (code, make) in cases {
        let (mut raw, nonce) = gw::raw(&gw.url).await;
        gw::send(&mut raw, &make(&nonce)).await;
        let res = gw::recv(&mut raw)
            .await
            .unwrap_or_else(|| panic!("{code}: no answer"));
        assert_eq!(res["error"]["code"], "INVALID_REQUEST", "{code}: {res}");
        assert_eq!(res["error"]["details"]["code"], code, "{res}");
        assert_eq!(gw::close_code(&mut raw).await, Some(1008), "{code}");
    }
    // None of them created a request or bound the setup code.
    assert!(gw.service.device_list().unwrap().pending.is_empty());
    assert!(gw.answers().await);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_token_is_refused_for_a_second_device_and_once_consumed() {
    let st = State::new();
    let gw = TestGateway::start(st.path()).await;
    let a = Identity::generate();
    let b = Identity::generate();
    let setup = gw.setup_token();
    let e = refused(&gw.phone(&a, Auth::BootstrapToken(setup.clone()))).await;
    assert_eq!(e.code, "NOT_PAIRED");
    let e = refused(&gw.phone(&b, Auth::BootstrapToken(setup.clone()))).await;
    assert_eq!(e.code, "AUTH_FAILED");
    assert!(e.message.contains("another device"), "{}", e.message);
    let rid = gw.service.device_list().unwrap().pending[0]
        .request
        .request_id
        .clone();
    gw.service.device_approve(&rid, "test").unwrap();
    connects(&gw.phone(&a, Auth::BootstrapToken(setup.clone()))).await;
    let e = refused(&gw.phone(&a, Auth::BootstrapToken(setup))).await;
    assert_eq!(e.code, "AUTH_FAILED");
    gw.stop().await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_rotate_and_remove_close_live_sockets_within_a_second() {
    let st = State::new();
    let gw = TestGateway::start(st.path()).await;
    for action in ["revoke", "rotate", "remove"] {
        let (phone, token) = gw.paired_phone().await;
        let mut live = Client::connect(
            &gw.phone(&phone, Auth::DeviceToken(token.clone())),
            |_, _| {},
        )
        .await
        .unwrap();
        let id = phone.device_id();
        let args: Vec<&str> = match action {
            "remove" => vec!["devices", "remove", &id],
            a => vec!["devices", a, "--device", &id, "--role", "node"],
        };
        let o = cli(st.path(), &args).await;
        assert!(o.status.success(), "{action}: {}", stderr(&o));
        let closed = live
            .closed(Duration::from_secs(1))
            .await
            .unwrap_or_else(|e| panic!("{action}: socket still open after 1s ({e})"));
        assert!(closed.unwrap_or_default().starts_with("1008"), "{action}");
        let e = refused(&gw.phone(&phone, Auth::DeviceToken(token))).await;
        assert_eq!(e.code, "AUTH_FAILED", "{action}: the old token is dead");
        if action == "rotate" {
            let v: Value = serde_json::from_str(&stdout(
                &cli(
                    st.path(),
                    &[
                        "devices", "rotate", "--device", &id, "--role", "node", "--json",
                    ],
                )
                .await,
            ))
            .unwrap();
            let fresh = v["token"].as_str().unwrap();
            connects(&gw.phone(&phone, Auth::DeviceToken(fresh.into()))).await;
        }
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_survives_a_restart() {
    let st = State::new();
    let gw = TestGateway::start(st.path()).await;
    let (phone, token) = gw.paired_phone().await;
    gw.revoke(&phone, "node");
    gw.stop().await;
    let gw = TestGateway::start(st.path()).await;
    let e = refused(&gw.phone(&phone, Auth::DeviceToken(token))).await;
    assert_eq!(e.code, "AUTH_FAILED");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_to_a_new_role_needs_the_owner_again() {
    let st = State::new();
    let gw = TestGateway::start(st.path()).await;
    let (phone, token) = gw.paired_phone().await;
    let mut opts = gw.phone(&phone, Auth::DeviceToken(token));
    opts.role = "operator".into();
    opts.scopes = vec!["operator.read".into()];
    let e = refused(&opts).await;
    assert_eq!(e.code, "NOT_PAIRED");
    assert_eq!(e.details.as_ref().unwrap()["reason"], "role-upgrade");
    let rid = e.details.unwrap()["requestId"]
        .as_str()
        .unwrap()
        .to_string();
    gw.service.device_approve(&rid, "test").unwrap();
    let c = Client::connect(&opts, |_, _| {})
        .await
        .expect("operator role after approval");
    assert!(
        c.hello["auth"]["deviceToken"].as_str().is_some(),
        "a token for the new role"
    );
    assert_eq!(c.hello["auth"]["role"], "operator");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_request_ids_answer_not_found_with_a_reason() {
    let st = State::new();
    let gw = TestGateway::start(st.path()).await;
    let mut op = gw.operator().await;
    let e = op
        .call(
            "device.pair.approve",
            serde_json::json!({ "requestId": "nope" }),
        )
        .await;
    let e = rejected(e);
    assert_eq!(e.code, "NOT_FOUND");
    assert_eq!(e.details.unwrap()["reason"], "unknown");
    let e = rejected(
        op.call("device.pair.approve", serde_json::json!({ "requestId": 5 }))
            .await,
    );
    assert_eq!(e.code, "INVALID_REQUEST");
    let e = rejected(op.call("no.such.method", serde_json::json!({})).await);
    assert_eq!(e.code, "INVALID_REQUEST");
    // Listing never shows token material.
    let (_phone, token) = gw.paired_phone().await;
    let list = op
        .call("device.pair.list", serde_json::json!({}))
        .await
        .unwrap()
        .to_string();
    assert!(
        !list.contains(&token) && !list.contains("tokenHash"),
        "{list}"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_client_speaks_tls_to_a_wss_gateway() {
    // The gateway here speaks plain ws://, so a wss:// connect must fail in the TLS handshake:
    // proof that the client really attempts TLS for wss:// setup codes.
    let st = State::new();
    let gw = TestGateway::start(st.path()).await;
    let url = format!("wss://{}/", gw.addr);
    let phone = Identity::generate();
    let e = Client::connect(
        &clawpair_core::client::ConnectOptions::node(&url, phone, Auth::DeviceToken("t".into())),
        |_, _| {},
    )
    .await
    .err()
    .expect("no TLS on the other side");
    let msg = e.to_string();
    assert!(matches!(e, ClientError::Connect { .. }), "{msg}");
    assert!(
        !msg.to_lowercase().contains("not supported") && !msg.contains("TLS support"),
        "TLS is built in: {msg}"
    );
    assert!(gw.answers().await);
    gw.stop().await;
}

/// A gateway serving `wss://` with its own self-signed certificate.
async fn tls_gateway(st: &State) -> TestGateway {
    TestGateway::start_with(st.path(), clawpair_core::gateway::Limits::default(), |s| {
        s.gateway.tls = Some(clawpair_core::config::TlsSettings {
            self_signed: true,
            ..Default::default()
        });
    })
    .await
}

fn node_cmd(args: &[&str]) -> std::process::Command {
    let mut c = std::process::Command::new(crate::CLAWPAIR);
    c.args(args)
        .env_remove("OPENCLAW_STATE_DIR")
        .env_remove("CLAWPAIR_STATE_DIR")
        .env("RUST_LOG", "warn");
    c
}

/// `clawpair node pair` against a gateway with a self-signed certificate: the setup code
/// carries the certificate's SHA-256, the device pins it for pairing and for every reconnect,
/// and a gateway with another certificate is refused before the setup code's token is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_pairs_over_wss_pinning_the_self_signed_certificate_and_refuses_another() {
    let st = State::new();
    let gw = tls_gateway(&st).await;
    let fp = gw.tls_fingerprint.clone().expect("TLS on");
    assert!(gw.url.starts_with("wss://"), "{}", gw.url);
    let url = format!("wss://127.0.0.1:{}", gw.addr.port());
    let code = gw
        .service
        .setup_create(Some(&url), Some(gw.addr), "test", false)
        .unwrap();
    let payload = clawpair_core::pairing::setup::decode_setup_code(&code.setup_code).unwrap();
    assert_eq!(payload.tls_fingerprint.as_deref(), Some(fp.as_str()));
    // The certificate was made once, private, in the state directory.
    assert_eq!(common::mode(&st.file("tls/key.pem")), 0o600);
    assert_eq!(common::mode(&st.file("tls")), 0o700);

    let device = tempfile::tempdir().unwrap();
    let identity = device.path().join("device.json");
    let identity_arg = identity.to_str().unwrap().to_string();
    let pairing = node_cmd(&[
        "node",
        "pair",
        &code.setup_code,
        "--identity",
        &identity_arg,
    ])
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let request_id = {
        let mut found = None;
        for _ in 0..100 {
            if let Some(p) = gw.service.device_list().unwrap().pending.first() {
                found = Some(p.request.request_id.clone());
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        found.expect("the device asked over wss://")
    };
    // The owner's CLI reaches the TLS gateway too (the run record names the certificate).
    let o = cli(st.path(), &["devices", "approve", &request_id]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let out = tokio::task::spawn_blocking(move || pairing.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains(&fp), "{}", stdout(&out));
    let approved = clawpair_core::store::audit::tail(&st.file("logs/audit.jsonl"), 100).unwrap();
    let via = approved
        .iter()
        .find(|e| e.action == "device.approved")
        .expect("approval audited");
    assert_eq!(
        via.credential, "admin-token",
        "the CLI acted through the gateway: {via:?}"
    );
    let file: Value = serde_json::from_str(&std::fs::read_to_string(&identity).unwrap()).unwrap();
    assert_eq!(file["gatewayTlsFingerprint"], fp.as_str());
    let again = node_cmd(&["node", "connect", "--identity", &identity_arg])
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", stderr(&again));

    // Another gateway, another self-signed certificate, where the device expects the first.
    let st2 = State::new();
    let other = tls_gateway(&st2).await;
    assert_ne!(other.tls_fingerprint, gw.tls_fingerprint);
    let mut moved = file.clone();
    moved["gatewayUrl"] = format!("wss://127.0.0.1:{}", other.addr.port()).into();
    std::fs::write(&identity, moved.to_string()).unwrap();
    let refused = node_cmd(&["node", "connect", "--identity", &identity_arg])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("other than the pinned one"),
        "{}",
        stderr(&refused)
    );
    // A setup code pinned to the first gateway, pointed at the second: refused in the TLS
    // handshake, so the second never sees the setup code's token.
    let code = gw
        .service
        .setup_create(Some(&url), Some(gw.addr), "test", false)
        .unwrap();
    let mut p = clawpair_core::pairing::setup::decode_setup_code(&code.setup_code).unwrap();
    p.url = format!("wss://127.0.0.1:{}", other.addr.port());
    let redirected = clawpair_core::pairing::setup::encode_setup_code(&p);
    let fresh = device.path().join("fresh.json");
    let o = node_cmd(&[
        "node",
        "pair",
        &redirected,
        "--identity",
        fresh.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("other than the pinned one"),
        "{}",
        stderr(&o)
    );
    assert!(other.service.device_list().unwrap().pending.is_empty());
    // The library client says the same.
    let mut opts = other.phone(
        &Identity::generate(),
        Auth::BootstrapToken(p.bootstrap_token),
    );
    opts.tls_pin = Some(fp.clone());
    let e = Client::connect(&opts, |_, _| {})
        .await
        .err()
        .expect("refused");
    assert!(matches!(e, ClientError::CertificateMismatch { .. }), "{e}");
    assert!(other.answers().await && gw.answers().await);
    other.stop().await;
    gw.stop().await;
}
