//! The owner's decisions stick: a revoked role stays refused whatever else the device presents,
//! a rejected or invalidated setup code opens nothing again, a new code retires the previous
//! one, and a connect never mints a token a role already has. Real gateway on loopback, real
//! Ed25519 keys.

use crate::common;

use std::time::Duration;

use clawpair_core::client::{Auth, Client, ConnectOptions, Identity};
use common::gw::{connects, detail, refused, TestGateway};
use common::State;
use serde_json::json;

fn as_role(gw: &TestGateway, id: &Identity, auth: Auth, role: &str) -> ConnectOptions {
    let mut o = gw.phone(id, auth);
    o.role = role.into();
    if role == "operator" {
        o.client_mode = "backend".into();
        o.scopes = vec!["operator.read".into()];
    }
    o
}

/// Connects with a setup code, has the owner approve the request, and returns the token.
async fn pair_role(gw: &TestGateway, id: &Identity, role: &str) -> String {
    let code = gw.setup_token();
    let e = refused(&as_role(gw, id, Auth::BootstrapToken(code.clone()), role)).await;
    assert_eq!(e.code, "NOT_PAIRED", "{e:?}");
    let request = detail(&e, "requestId");
    gw.service
        .device_approve(request.as_str().unwrap(), "test")
        .unwrap();
    token_from(&as_role(gw, id, Auth::BootstrapToken(code), role)).await
}

/// Connects, must be let in with a new device token: the token.
async fn token_from(opts: &ConnectOptions) -> String {
    let c = Client::connect(opts, |_, _| {}).await.expect("let in");
    let token = c.hello["auth"]["deviceToken"]
        .as_str()
        .expect("a new token")
        .to_string();
    c.close().await;
    token
}

/// The operator role for a device paired as a node, asked for with the node's token and
/// approved by the owner as an upgrade: its first operator token.
async fn add_operator(gw: &TestGateway, id: &Identity, node: &str) -> String {
    let as_operator = as_role(gw, id, Auth::DeviceToken(node.into()), "operator");
    let e = refused(&as_operator).await;
    assert_eq!(detail(&e, "reason"), "role-upgrade");
    gw.service
        .device_approve(detail(&e, "requestId").as_str().unwrap(), "test")
        .unwrap();
    token_from(&as_operator).await
}

fn pending_count(gw: &TestGateway) -> usize {
    gw.service.device_list().unwrap().pending.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_role_is_not_handed_back_for_another_roles_token() {
    let st = State::new();
    let gw = TestGateway::start(st.path()).await;
    let phone = Identity::generate();
    let node = pair_role(&gw, &phone, "node").await;
    // The operator role, approved as an upgrade: its first token comes on connect.
    let operator = add_operator(&gw, &phone, &node).await;

    // The owner revokes the operator token.
    gw.revoke(&phone, "operator");
    let e = refused(&as_role(
        &gw,
        &phone,
        Auth::DeviceToken(operator),
        "operator",
    ))
    .await;
    assert_eq!(e.code, "AUTH_FAILED");
    // Presenting the node token for the operator role: no new token, a request the owner
    // sees as getting back access it lost.
    let e = refused(&as_role(
        &gw,
        &phone,
        Auth::DeviceToken(node.clone()),
        "operator",
    ))
    .await;
    assert_eq!(e.code, "NOT_PAIRED", "{e:?}");
    assert_eq!(detail(&e, "reason"), "role-upgrade");
    let list = gw.service.device_list().unwrap();
    let req = &list.pending[0].request;
    assert!(req.regains, "{req:?}");
    assert_eq!(req.kind_in_words(), "asks to get back access it lost");
    // The node role is untouched.
    connects(&gw.phone(&phone, Auth::DeviceToken(node.clone()))).await;
    // Once the owner approves, the device gets a new operator token.
    gw.service.device_approve(&req.request_id, "test").unwrap();
    let c = Client::connect(
        &as_role(&gw, &phone, Auth::DeviceToken(node), "operator"),
        |_, _| {},
    )
    .await
    .expect("approved again");
    assert!(c.hello["auth"]["deviceToken"].is_string());
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_device_does_not_come_back_through_a_fresh_setup_code() {
    let st = State::new();
    let gw = TestGateway::start(st.path()).await;
    let phone = Identity::generate();
    pair_role(&gw, &phone, "node").await;
    gw.revoke(&phone, "node");
    let e = refused(&gw.phone(&phone, Auth::BootstrapToken(gw.setup_token()))).await;
    assert_eq!(e.code, "NOT_PAIRED", "a request, not a token: {e:?}");
    assert!(gw.service.device_list().unwrap().pending[0].request.regains);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_never_replaces_a_token_the_owner_rotated() {
    let st = State::new();
    let gw = TestGateway::start(st.path()).await;
    let phone = Identity::generate();
    let node = pair_role(&gw, &phone, "node").await;
    add_operator(&gw, &phone, &node).await;
    // The owner rotates the operator token and keeps the new one to hand over.
    let rotated = gw.rotate(&phone, "operator");
    let e = refused(&as_role(&gw, &phone, Auth::DeviceToken(node), "operator")).await;
    assert_eq!(e.code, "AUTH_FAILED");
    assert_eq!(detail(&e, "code"), "AUTH_DEVICE_TOKEN_MISMATCH");
    Client::connect(
        &as_role(&gw, &phone, Auth::DeviceToken(rotated), "operator"),
        |_, _| {},
    )
    .await
    .expect("the owner's rotated token is the one that works");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairing_again_with_a_new_code_needs_the_owner_and_retires_the_old_token() {
    let st = State::new();
    let gw = TestGateway::start(st.path()).await;
    let phone = Identity::generate();
    let old = pair_role(&gw, &phone, "node").await;
    let code = gw.setup_token();
    let e = refused(&gw.phone(&phone, Auth::BootstrapToken(code.clone()))).await;
    assert_eq!(e.code, "NOT_PAIRED");
    let req = gw.service.device_list().unwrap().pending[0].request.clone();
    assert!(req.is_repair && req.reason == "not-paired", "{req:?}");
    assert!(req.kind_in_words().starts_with("asks to pair again"));
    gw.service.device_approve(&req.request_id, "test").unwrap();
    let c = Client::connect(&gw.phone(&phone, Auth::BootstrapToken(code)), |_, _| {})
        .await
        .expect("paired again");
    assert!(c.hello["auth"]["deviceToken"]
        .as_str()
        .is_some_and(|t| t != old));
    let e = refused(&gw.phone(&phone, Auth::DeviceToken(old))).await;
    assert_eq!(e.code, "AUTH_FAILED");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_request_revokes_the_code_it_came_from() {
    let st = State::new();
    let gw = TestGateway::start(st.path()).await;
    let mut op = gw.operator().await;
    let stranger = Identity::generate();
    let code = gw.setup_token();
    let opts = gw.phone(&stranger, Auth::BootstrapToken(code));
    let e = refused(&opts).await;
    let request = detail(&e, "requestId");
    op.wait_event("device.pair.requested", Duration::from_secs(5))
        .await
        .unwrap()
        .expect("the first request is announced");
    op.call("device.pair.reject", json!({ "requestId": request }))
        .await
        .unwrap();
    for _ in 0..3 {
        let e = refused(&opts).await;
        assert_eq!(e.code, "AUTH_FAILED");
        assert_eq!(detail(&e, "code"), "AUTH_BOOTSTRAP_TOKEN_INVALID");
        assert!(e.message.contains("revoked"), "{}", e.message);
    }
    assert_eq!(pending_count(&gw), 0);
    // No new request was announced either.
    while let Some((name, _)) = op.next_event(Duration::from_millis(200)).await.unwrap() {
        assert_ne!(name, "device.pair.requested");
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidating_codes_revokes_the_ones_a_stranger_has_bound() {
    let st = State::new();
    let gw = TestGateway::start(st.path()).await;
    let stranger = Identity::generate();
    let bound = gw.setup_token();
    let unused = gw.setup_token();
    refused(&gw.phone(&stranger, Auth::BootstrapToken(bound.clone()))).await;
    let mut op = gw.operator().await;
    let r = op.call("device.setup.cleanup", json!({})).await.unwrap();
    assert_eq!(r["removed"], 2);
    for code in [bound, unused] {
        let e = refused(&gw.phone(&stranger, Auth::BootstrapToken(code))).await;
        assert_eq!(detail(&e, "code"), "AUTH_BOOTSTRAP_TOKEN_INVALID");
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_code_from_the_window_retires_the_previous_one() {
    let st = State::new();
    let gw = TestGateway::start(st.path()).await;
    let mut window = Client::connect(
        &ConnectOptions::operator(&gw.url, &gw.token, "window"),
        |_, _| {},
    )
    .await
    .unwrap();
    let code = |v: serde_json::Value| {
        clawpair_core::pairing::setup::decode_setup_code(v["setupCode"].as_str().unwrap())
            .unwrap()
            .bootstrap_token
    };
    let new = json!({ "url": gw.url, "retirePrevious": true });
    let first = code(
        window
            .call("device.setup.create", new.clone())
            .await
            .unwrap(),
    );
    let second = code(window.call("device.setup.create", new).await.unwrap());
    // One kept on purpose (a script making several codes).
    let kept = code(
        window
            .call("device.setup.create", json!({ "url": gw.url }))
            .await
            .unwrap(),
    );
    let phone = Identity::generate();
    let e = refused(&gw.phone(&phone, Auth::BootstrapToken(first))).await;
    assert_eq!(detail(&e, "code"), "AUTH_BOOTSTRAP_TOKEN_INVALID");
    for live in [second, kept] {
        let e = refused(&gw.phone(&Identity::generate(), Auth::BootstrapToken(live))).await;
        assert_eq!(e.code, "NOT_PAIRED", "{e:?}");
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_is_bound_only_when_its_request_is_recorded() {
    let st = State::new();
    let gw = TestGateway::start(st.path()).await;
    let code = gw.setup_token();
    gw.service
        .update_settings("test", |s| {
            s.ui.paused = true;
            Ok(())
        })
        .unwrap();
    let first = Identity::generate();
    let e = refused(&gw.phone(&first, Auth::BootstrapToken(code.clone()))).await;
    assert_eq!(e.code, "FORBIDDEN", "paused: {e:?}");
    gw.service
        .update_settings("test", |s| {
            s.ui.paused = false;
            Ok(())
        })
        .unwrap();
    // The refused device did not take the code: the owner's phone still can.
    let owner = Identity::generate();
    let e = refused(&gw.phone(&owner, Auth::BootstrapToken(code.clone()))).await;
    assert_eq!(e.code, "NOT_PAIRED");
    let e = refused(&gw.phone(&first, Auth::BootstrapToken(code))).await;
    assert_eq!(
        detail(&e, "code"),
        "AUTH_BOOTSTRAP_TOKEN_INVALID",
        "bound to the owner's phone now"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_device_forgets_its_requests_and_codes() {
    let st = State::new();
    let gw = TestGateway::start(st.path()).await;
    let phone = Identity::generate();
    let node = pair_role(&gw, &phone, "node").await;
    // It asks for the operator role with a new code, then the owner removes the device.
    let code = gw.setup_token();
    refused(&as_role(
        &gw,
        &phone,
        Auth::BootstrapToken(code.clone()),
        "operator",
    ))
    .await;
    assert_eq!(pending_count(&gw), 1);
    gw.service
        .device_remove(&phone.device_id(), "test")
        .unwrap();
    assert_eq!(pending_count(&gw), 0, "its request went with it");
    let e = refused(&gw.phone(&phone, Auth::DeviceToken(node))).await;
    assert_eq!(detail(&e, "code"), "AUTH_DEVICE_TOKEN_MISMATCH");
    let e = refused(&as_role(
        &gw,
        &phone,
        Auth::BootstrapToken(code),
        "operator",
    ))
    .await;
    assert_eq!(
        detail(&e, "code"),
        "AUTH_BOOTSTRAP_TOKEN_INVALID",
        "its code went too"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_names_the_credential_and_no_client_passes_for_the_window() {
    let st = State::new();
    let gw = TestGateway::start(st.path()).await;
    // A gateway client calling itself "window" (or worse) with the admin token.
    for name in ["window", "window@local"] {
        let mut c = Client::connect(
            &ConnectOptions::operator(&gw.url, &gw.token, name),
            |_, _| {},
        )
        .await
        .unwrap();
        c.call(
            "allowlist.add",
            json!({ "channel": "telegram", "senderId": format!("s-{}", name.len()) }),
        )
        .await
        .unwrap();
    }
    // A paired device with pairing powers acting with its own token.
    let laptop = Identity::generate();
    let code = gw.setup_token();
    let mut o = as_role(&gw, &laptop, Auth::BootstrapToken(code.clone()), "operator");
    o.scopes = vec!["operator.pairing".into()];
    let e = refused(&o).await;
    gw.service
        .device_approve(detail(&e, "requestId").as_str().unwrap(), "test")
        .unwrap();
    let mut dev = Client::connect(&o, |_, _| {})
        .await
        .expect("paired operator");
    dev.call(
        "allowlist.add",
        json!({ "channel": "telegram", "senderId": "s-dev" }),
    )
    .await
    .unwrap();
    // And the owner in the window itself (in process).
    gw.service
        .allow_add("telegram", None, "s-owner", "window")
        .unwrap();

    let entries = gw.service.audit_tail(100).unwrap();
    let added: Vec<_> = entries
        .iter()
        .filter(|e| e.action == "allowlist.added")
        .map(|e| (e.via.as_str(), e.credential.as_str()))
        .collect();
    let short = &laptop.device_id()[..16];
    assert_eq!(
        added,
        vec![
            ("window", "admin-token"),
            ("window@local", "admin-token"),
            (
                "gateway-client",
                format!("device:{short}/operator").as_str()
            ),
            ("window", "local"),
        ]
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_the_admin_token_closes_its_sessions_and_refuses_the_old_one() {
    let st = State::new();
    let gw = TestGateway::start(st.path()).await;
    let phone = Identity::generate();
    let node = pair_role(&gw, &phone, "node").await;
    let mut op = gw.operator().await;
    let mut bridge_opts = ConnectOptions::operator(&gw.url, &gw.token, "bridge");
    bridge_opts.scopes = vec!["channel.ingest".into()];
    let mut bridge = Client::connect(&bridge_opts, |_, _| {}).await.unwrap();
    let mut device = Client::connect(&gw.phone(&phone, Auth::DeviceToken(node)), |_, _| {})
        .await
        .unwrap();

    // The CLI, through the running gateway (with the token it is about to replace).
    let o = common::gw::cli(st.path(), &["token", "rotate"]).await;
    assert!(o.status.success(), "{}", common::stderr(&o));
    assert!(common::stdout(&o).contains("Rotated"));
    for c in [&mut op, &mut bridge] {
        let reason = c.closed(Duration::from_secs(5)).await.expect("closed");
        assert!(
            reason.as_deref().is_some_and(|r| r.starts_with("1008")),
            "{reason:?}"
        );
    }
    let e = refused(&ConnectOptions::operator(&gw.url, &gw.token, "cli")).await;
    assert_eq!(detail(&e, "code"), "AUTH_TOKEN_MISMATCH");
    let settings: serde_json::Value = serde_json::from_str(&st.read("clawpair.json")).unwrap();
    let new = settings["gateway"]["auth"]["token"].as_str().unwrap();
    assert_ne!(new, gw.token);
    assert!(
        !common::stdout(&o).contains(new),
        "the new token is never printed"
    );
    Client::connect(&ConnectOptions::operator(&gw.url, new, "cli"), |_, _| {})
        .await
        .expect("the new token works");
    // A device's session has nothing to do with the admin token.
    device
        .call("node.event", json!({}))
        .await
        .expect("the device's session is still up");
    let audit = gw.service.audit_tail(10).unwrap();
    let rotated = audit
        .iter()
        .find(|e| e.action == "gateway.token.rotated")
        .expect("audited");
    assert_eq!(
        (rotated.via.as_str(), rotated.credential.as_str()),
        ("cli", "admin-token")
    );
    gw.stop().await;
}

#[test]
fn a_device_not_seen_for_the_set_days_is_flagged_and_removed_when_asked() {
    use clawpair_core::clock::ManualClock;
    use clawpair_core::service::{DeviceAsk, Service};
    use std::sync::Arc;
    const DAY: i64 = 24 * 3_600_000;
    let st = State::new();
    let clock = ManualClock::new(1_767_323_045_678);
    let (s, _) = Service::open(
        clawpair_core::store::StatePaths::new(st.path()),
        Arc::new(clock.clone()),
    )
    .unwrap();
    let pair = |id: &Identity| {
        let (rec, _) = s
            .device_request(DeviceAsk {
                device_id: id.device_id(),
                public_key: id.public_key(),
                fingerprint: id.fingerprint(),
                role: "node".into(),
                reason: "not-paired".into(),
                ..Default::default()
            })
            .unwrap();
        s.device_approve(&rec.request.request_id, "test").unwrap();
    };
    let (old, recent) = (Identity::generate(), Identity::generate());
    pair(&old);
    clock.advance_ms(20 * DAY);
    pair(&recent);
    clock.advance_ms(11 * DAY);
    // Off by default: nothing is flagged, but the tray's 30-day count sees the old one.
    assert!(s.device_list().unwrap().paired.iter().all(|d| !d.stale));
    assert_eq!(s.unseen_count(30 * DAY), 1);
    s.update_settings("test", |c| {
        c.devices.stale_after_days = Some(30);
        Ok(())
    })
    .unwrap();
    let stale: Vec<String> = s
        .device_list()
        .unwrap()
        .paired
        .into_iter()
        .filter(|d| d.stale)
        .map(|d| d.device_id)
        .collect();
    assert_eq!(stale, vec![old.device_id()]);
    s.sweep_expired();
    assert_eq!(
        s.device_list().unwrap().paired.len(),
        2,
        "flagged, not removed"
    );
    // Asked to expire them: the stale one goes, the recent one stays until its own time.
    s.update_settings("test", |c| {
        c.devices.expire_stale = true;
        Ok(())
    })
    .unwrap();
    let next = s.sweep_expired().expect("the next expiry is scheduled");
    let left: Vec<String> = s
        .device_list()
        .unwrap()
        .paired
        .into_iter()
        .map(|d| d.device_id)
        .collect();
    assert_eq!(left, vec![recent.device_id()]);
    assert_eq!(next, 1_767_323_045_678 + 50 * DAY + 1);
    let audit = s.audit_tail(20).unwrap();
    assert!(audit
        .iter()
        .any(|e| e.action == "device.removed" && e.via.starts_with("expiry")));
    // Bad values are refused with the reason.
    let e = s
        .update_settings("test", |c| {
            c.devices.stale_after_days = Some(0);
            Ok(())
        })
        .unwrap_err();
    assert!(
        e.to_string().contains("flagged after 1 to 3650 days"),
        "{e}"
    );
}
