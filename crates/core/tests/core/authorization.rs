//! Consent only the owner can give: the approval ceiling (a device never approves its own
//! request, nor grants a role or scope it lacks, nor acts on a device holding more than it),
//! scopes as a closed vocabulary, bridges paired as devices, setup codes raced for — and every
//! method called as every kind of caller against a live gateway, checked against the policy
//! table. Real gateway on loopback, real Ed25519 keys.

use crate::common;

use std::time::Duration;

use clawpair_core::client::{Auth, Client, ClientError, ConnectOptions, Identity};
use clawpair_core::rpc::{Needs, METHODS};
use common::gw::{detail, refused, rejected, TestGateway};
use common::State;
use serde_json::{json, Value};

fn device(
    gw: &TestGateway,
    id: &Identity,
    auth: Auth,
    role: &str,
    scopes: &[&str],
) -> ConnectOptions {
    gw.device(id, auth, role, scopes)
}

async fn connect(
    gw: &TestGateway,
    id: &Identity,
    token: &str,
    role: &str,
    scopes: &[&str],
) -> Client {
    Client::connect(
        &device(gw, id, Auth::DeviceToken(token.into()), role, scopes),
        |_, _| {},
    )
    .await
    .expect("paired device connects")
}

use common::gw::request_id as request_of;

fn pending_ids(gw: &TestGateway) -> Vec<String> {
    gw.service
        .device_list()
        .unwrap()
        .pending
        .iter()
        .map(|p| p.request.request_id.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_never_approves_its_own_upgrade_and_grants_only_what_it_holds() {
    let st = State::new();
    let gw = TestGateway::start(st.path()).await;
    let (p, p_token) = gw.paired("operator", &["operator.pairing"]).await;
    let mut p_session = connect(&gw, &p, &p_token, "operator", &["operator.pairing"]).await;

    // It asks for admin, then for read: two upgrade requests of its own.
    for (scope, reason) in [
        ("operator.admin", "scope-upgrade"),
        ("operator.read", "scope-upgrade"),
    ] {
        let opts = device(
            &gw,
            &p,
            Auth::DeviceToken(p_token.clone()),
            "operator",
            &[scope],
        );
        let e = refused(&opts).await;
        assert_eq!(detail(&e, "reason"), reason);
        let request = detail(&e, "requestId").as_str().unwrap().to_string();
        let e = rejected(
            p_session
                .call("device.pair.approve", json!({ "requestId": request }))
                .await,
        );
        assert_eq!(e.code, "FORBIDDEN", "{e:?}");
        assert_eq!(detail(&e, "reason"), "own-request", "{e:?}");
        assert!(e.message.contains("own request"), "{}", e.message);
        assert_eq!(
            pending_ids(&gw),
            vec![request.clone()],
            "still the owner's to decide"
        );
        // Still refused on its next connect: nothing was granted.
        let e = refused(&opts).await;
        assert_eq!(e.code, "NOT_PAIRED");
    }
    let e = rejected(p_session.call("gateway.token.rotate", json!({})).await);
    assert_eq!(e.code, "FORBIDDEN");

    // Another pairing-only device may not grant what it lacks either…
    let (q, q_token) = gw.paired("operator", &["operator.pairing"]).await;
    let mut q_session = connect(&gw, &q, &q_token, "operator", &["operator.pairing"]).await;
    let wants_admin = request_of(&device(
        &gw,
        &p,
        Auth::DeviceToken(p_token.clone()),
        "operator",
        &["operator.admin"],
    ))
    .await;
    let e = rejected(
        q_session
            .call("device.pair.approve", json!({ "requestId": wants_admin }))
            .await,
    );
    assert_eq!(detail(&e, "reason"), "scope-beyond-caller", "{e:?}");
    assert_eq!(detail(&e, "missing"), "operator.admin");
    // …but it may approve it without admin, which grants only what it holds.
    q_session
        .call(
            "device.pair.approve",
            json!({ "requestId": wants_admin, "withoutAdmin": true }),
        )
        .await
        .expect("within the ceiling");
    let c = connect(&gw, &p, &p_token, "operator", &["operator.admin"]).await;
    assert_eq!(
        c.hello["auth"]["scopes"],
        json!([]),
        "admin withheld: {}",
        c.hello
    );
    c.close().await;

    // A phone (role node) needs admin to approve; another operator within Q's scopes does not.
    let (_, node_request) = gw.device_request("node", &[]).await;
    let e = rejected(
        q_session
            .call("device.pair.approve", json!({ "requestId": node_request }))
            .await,
    );
    assert_eq!(detail(&e, "reason"), "role-beyond-caller", "{e:?}");
    let (_, desk_request) = gw.device_request("operator", &["operator.pairing"]).await;
    q_session
        .call("device.pair.approve", json!({ "requestId": desk_request }))
        .await
        .expect("a peer with Q's own scopes");

    // The owner's admin device: Q may neither rotate its token (that would hand Q admin) nor
    // revoke, rename or remove it; its own token it may rotate.
    let (admin_dev, _) = gw.paired("operator", &["operator.admin"]).await;
    for (method, params) in [
        (
            "device.token.rotate",
            json!({ "deviceId": admin_dev.device_id(), "role": "operator" }),
        ),
        (
            "device.token.revoke",
            json!({ "deviceId": admin_dev.device_id(), "role": "operator" }),
        ),
        (
            "device.pair.rename",
            json!({ "deviceId": admin_dev.device_id(), "label": "old phone" }),
        ),
        (
            "device.pair.remove",
            json!({ "deviceId": admin_dev.device_id() }),
        ),
    ] {
        let e = rejected(q_session.call(method, params).await);
        assert_eq!(e.code, "FORBIDDEN", "{method}: {e:?}");
        assert_eq!(detail(&e, "reason"), "device-beyond-caller", "{method}");
    }
    let list = gw.service.device_list().unwrap();
    let still = list
        .paired
        .iter()
        .find(|d| d.device_id == admin_dev.device_id())
        .expect("kept");
    assert!(still.operator_label.is_none(), "not renamed");
    let rotated = q_session
        .call(
            "device.token.rotate",
            json!({ "deviceId": q.device_id(), "role": "operator" }),
        )
        .await
        .expect("its own token");
    assert!(rotated["token"].is_string());

    // What it could not do, the owner can.
    gw.service
        .device_approve(&pending_ids(&gw)[0], "test")
        .unwrap();
    p_session.close().await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_cannot_give_itself_back_a_role_the_owner_revoked() {
    let st = State::new();
    let gw = TestGateway::start(st.path()).await;
    let (p, operator_token) = gw.paired("operator", &["operator.pairing"]).await;
    // The same device is a node too (approved by the owner), then the owner revokes the node.
    let as_node = device(
        &gw,
        &p,
        Auth::DeviceToken(operator_token.clone()),
        "node",
        &[],
    );
    let node_request = request_of(&as_node).await;
    gw.service.device_approve(&node_request, "test").unwrap();
    let c = connect(&gw, &p, &operator_token, "node", &[]).await;
    c.close().await;
    gw.revoke(&p, "node");
    let regain = request_of(&as_node).await;
    let mut s = connect(&gw, &p, &operator_token, "operator", &["operator.pairing"]).await;
    let e = rejected(
        s.call("device.pair.approve", json!({ "requestId": regain }))
            .await,
    );
    assert_eq!(detail(&e, "reason"), "own-request", "{e:?}");
    let e = refused(&as_node).await;
    assert_eq!(e.code, "NOT_PAIRED", "the revoke stands: {e:?}");
    s.close().await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_bridge_paired_as_a_device_reconnects_with_its_token() {
    let st = State::new();
    let gw = TestGateway::start(st.path()).await;
    let (bridge, token) = gw.paired("operator", &["channel.ingest"]).await;
    for _ in 0..2 {
        let mut c = connect(&gw, &bridge, &token, "operator", &["channel.ingest"]).await;
        assert_eq!(
            c.hello["auth"]["scopes"],
            json!(["channel.ingest"]),
            "{}",
            c.hello
        );
        let d = c
            .call(
                "channel.inbound",
                json!({ "channel": "telegram", "senderId": "42" }),
            )
            .await
            .expect("a bridge's call");
        assert!(d["decision"].is_string(), "{d}");
        c.close().await;
    }
    assert!(pending_ids(&gw).is_empty(), "no upgrade request was opened");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_scope_cannot_come_back_in_another_spelling() {
    let st = State::new();
    let gw = TestGateway::start(st.path()).await;
    let id = Identity::generate();
    let opts = device(
        &gw,
        &id,
        Auth::BootstrapToken(gw.setup_token()),
        "operator",
        &["operator.pairing", "operator.admin"],
    );
    let request = request_of(&opts).await;
    gw.service
        .device_approve_by(
            &request,
            &["operator.admin".to_string()],
            &clawpair_core::pairing::authority::Authority::owner(),
            "test",
        )
        .unwrap();
    let c = Client::connect(&opts, |_, _| {})
        .await
        .expect("approved without admin");
    let token = c.hello["auth"]["deviceToken"].as_str().unwrap().to_string();
    assert_eq!(c.hello["auth"]["scopes"], json!(["operator.pairing"]));
    c.close().await;
    let before = std::fs::read(st.file("devices/paired.json")).unwrap();
    for spelling in [
        "operator.admin ",
        " operator.admin",
        "operator.admin\u{200B}",
        "operator.\u{00AD}admin",
        "Operator.Admin",
        "operator.admin\u{FE0F}",
    ] {
        let e = refused(&device(
            &gw,
            &id,
            Auth::DeviceToken(token.clone()),
            "operator",
            &["operator.pairing", spelling],
        ))
        .await;
        assert_eq!(e.code, "INVALID_REQUEST", "{spelling:?}: {e:?}");
        assert_eq!(detail(&e, "code"), "INVALID_SCOPES", "{spelling:?}");
        assert!(
            e.message.contains("a-z, 0-9"),
            "{spelling:?}: {}",
            e.message
        );
    }
    assert!(
        pending_ids(&gw).is_empty(),
        "no request the owner would see as operator.admin"
    );
    assert_eq!(
        std::fs::read(st.file("devices/paired.json")).unwrap(),
        before
    );
    // Asked for in its own spelling, the declined scope is left out, not asked of the owner.
    let c = connect(
        &gw,
        &id,
        &token,
        "operator",
        &["operator.pairing", "operator.admin"],
    )
    .await;
    assert_eq!(c.hello["auth"]["scopes"], json!(["operator.pairing"]));
    c.close().await;
    assert!(pending_ids(&gw).is_empty());
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_racing_for_one_setup_code_leave_one_request() {
    let st = State::new();
    let gw = TestGateway::start(st.path()).await;
    for round in 0..5 {
        let code = gw.setup_token();
        let ids: Vec<Identity> = (0..6).map(|_| Identity::generate()).collect();
        let attempts = ids.iter().map(|id| {
            let opts = device(&gw, id, Auth::BootstrapToken(code.clone()), "node", &[]);
            async move { Client::connect(&opts, |_, _| {}).await }
        });
        let results = futures_util::future::join_all(attempts).await;
        let mut waiting = 0;
        for r in results {
            let e = rejected(r.map(|c| c.hello));
            match e.code.as_str() {
                "NOT_PAIRED" => waiting += 1,
                "AUTH_FAILED" => assert_eq!(detail(&e, "code"), "AUTH_BOOTSTRAP_TOKEN_INVALID"),
                other => panic!("round {round}: unexpected {other}: {e:?}"),
            }
        }
        assert_eq!(waiting, 1, "round {round}: one device won the code");
        let list = gw.service.device_list().unwrap();
        assert_eq!(
            list.pending.len(),
            1,
            "round {round}: one request, the winner's"
        );
        gw.service
            .device_reject(&list.pending[0].request.request_id, "test")
            .unwrap();
    }
    gw.stop().await;
}

/// The kinds of caller the model knows, each with what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    AdminToken,
    AdminDevice,
    PairingDevice,
    ReadDevice,
    NodeDevice,
    BridgeDevice,
    /// A device let in by its setup code (the first connect after the owner approved it).
    BootstrapSession,
    /// A device still waiting for the owner (`waitForApproval`).
    Waiting,
}

impl Kind {
    /// Role and scopes, as the test reads the model (independently of the gateway's code).
    fn holds(self) -> (&'static str, &'static [&'static str]) {
        match self {
            Kind::AdminToken | Kind::AdminDevice => ("operator", &["operator.admin"]),
            Kind::PairingDevice | Kind::BootstrapSession => ("operator", &["operator.pairing"]),
            Kind::ReadDevice => ("operator", &["operator.read"]),
            Kind::NodeDevice => ("node", &[]),
            Kind::BridgeDevice => ("operator", &["channel.ingest"]),
            Kind::Waiting => ("operator", &[]),
        }
    }
    /// Whether the policy table lets it call `needs`.
    fn may(self, needs: Needs) -> bool {
        if self == Kind::Waiting {
            return false;
        }
        let (role, held) = self.holds();
        match needs {
            Needs::NodeRole => role == "node",
            Needs::Scope(s) => {
                role == "operator"
                    && held.iter().any(|h| {
                        *h == s
                            || *h == "operator.admin"
                            || (*h == "operator.write" && s == "operator.read")
                    })
            }
        }
    }
}

/// Params for each method that an allowed caller's call can take without changing what the
/// next calls see, and the answer an allowed caller gets.
fn probe(method: &str) -> (Value, &'static str) {
    let unknown = "0".repeat(64);
    match method {
        "device.pair.list"
        | "device.setup.cleanup"
        | "pairing.list"
        | "allowlist.list"
        | "node.pair.list"
        | "exec.approval.list"
        | "health" => (json!({}), "ok"),
        "exec.approval.resolve" => (
            json!({ "id": "no-such-approval", "decision": "deny" }),
            "NOT_FOUND",
        ),
        // None ever waits on ClawPair's own gateway (a node's commands come with its device).
        "node.pair.approve" | "node.pair.reject" => {
            (json!({ "requestId": "no-such-request" }), "NOT_FOUND")
        }
        "device.pair.approve" | "device.pair.reject" => {
            (json!({ "requestId": "no-such-request" }), "NOT_FOUND")
        }
        "device.pair.remove" => (json!({ "deviceId": unknown }), "NOT_FOUND"),
        "device.pair.rename" => (json!({ "deviceId": unknown, "label": "x" }), "NOT_FOUND"),
        "device.pair.clear" => (json!({ "pending": "not a boolean" }), "INVALID_REQUEST"),
        "device.token.rotate" | "device.token.revoke" => {
            (json!({ "deviceId": unknown, "role": "node" }), "NOT_FOUND")
        }
        "device.setup.create" => (json!({ "url": "ws://127.0.0.1:9/" }), "ok"),
        "device.pair.setupCode" => (json!({ "publicUrl": "ws://127.0.0.1:9/" }), "ok"),
        "pairing.approve" | "pairing.reject" => (
            json!({ "channel": "telegram", "code": "ABCD2345" }),
            "NOT_FOUND",
        ),
        "allowlist.add" | "allowlist.remove" => {
            (json!({ "channel": "probe", "senderId": "probe" }), "ok")
        }
        "audit.tail" => (json!({ "limit": 1 }), "ok"),
        "channel.inbound" => (json!({ "channel": "probe", "senderId": "probe" }), "ok"),
        "gateway.token.rotate" => (json!({}), "ok"),
        m if m.starts_with("node.") => (json!({}), "ok"),
        other => panic!("a method without a row in this test: {other} (add one)"),
    }
}

/// One caller of a kind, connected.
async fn caller(gw: &TestGateway, kind: Kind, paired: &Paired) -> Client {
    let (role, scopes) = kind.holds();
    match kind {
        Kind::AdminToken => {
            let token = gw.service.settings().gateway.auth.token.clone();
            let opts = ConnectOptions::operator(&gw.url, &token, "probe");
            Client::connect(&opts, |_, _| {})
                .await
                .expect("admin token")
        }
        Kind::AdminDevice => connect(gw, &paired.admin.0, &paired.admin.1, role, scopes).await,
        Kind::PairingDevice => {
            connect(gw, &paired.pairing.0, &paired.pairing.1, role, scopes).await
        }
        Kind::ReadDevice => connect(gw, &paired.read.0, &paired.read.1, role, scopes).await,
        Kind::NodeDevice => connect(gw, &paired.node.0, &paired.node.1, role, scopes).await,
        Kind::BridgeDevice => connect(gw, &paired.bridge.0, &paired.bridge.1, role, scopes).await,
        Kind::BootstrapSession => {
            let id = Identity::generate();
            let opts = device(
                gw,
                &id,
                Auth::BootstrapToken(gw.setup_token()),
                role,
                scopes,
            );
            let request = request_of(&opts).await;
            gw.service.device_approve(&request, "test").unwrap();
            let c = Client::connect(&opts, |_, _| {})
                .await
                .expect("bootstrap session");
            assert_eq!(c.hello["auth"]["method"], "bootstrap-token");
            c
        }
        Kind::Waiting => unreachable!("waiting sessions are opened raw"),
    }
}

struct Paired {
    admin: (Identity, String),
    pairing: (Identity, String),
    read: (Identity, String),
    node: (Identity, String),
    bridge: (Identity, String),
}

/// A device waiting for the owner sends `method`: what comes back.
async fn call_while_waiting(gw: &TestGateway, method: &str, params: Value) -> Value {
    use common::gw::{raw, recv, send};
    let id = Identity::generate();
    let mut opts = device(
        gw,
        &id,
        Auth::BootstrapToken(gw.setup_token()),
        "operator",
        &[],
    );
    opts.wait_for_approval = true;
    let (mut ws, nonce) = raw(&gw.url).await;
    let params_json = clawpair_core::client::connect_params(&opts, &nonce);
    send(
        &mut ws,
        &json!({ "type": "req", "id": "c", "method": "connect", "params": params_json }),
    )
    .await;
    let pending = recv(&mut ws).await.expect("device.pair.pending");
    assert_eq!(pending["event"], "device.pair.pending", "{pending}");
    send(
        &mut ws,
        &json!({ "type": "req", "id": "m", "method": method, "params": params }),
    )
    .await;
    let answer = recv(&mut ws).await.expect("an answer");
    assert!(recv(&mut ws).await.is_none(), "then the socket closes");
    // Its request goes, so the queue has room for the next one.
    let request = pending["payload"]["requestId"].as_str().unwrap();
    gw.service.device_reject(request, "test").unwrap();
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_method_as_every_kind_of_caller_follows_the_policy_table() {
    let st = State::new();
    let gw = TestGateway::start(st.path()).await;
    let paired = Paired {
        admin: gw.paired("operator", &["operator.admin"]).await,
        pairing: gw.paired("operator", &["operator.pairing"]).await,
        read: gw.paired("operator", &["operator.read"]).await,
        node: gw.paired("node", &[]).await,
        bridge: gw.paired("operator", &["channel.ingest"]).await,
    };
    // The rotation of the admin token ends the sessions that used it: it goes last.
    let mut methods: Vec<_> = METHODS.iter().collect();
    methods.sort_by_key(|m| m.name == "gateway.token.rotate");
    let mut failures = Vec::new();
    let kinds = [
        Kind::AdminToken,
        Kind::AdminDevice,
        Kind::PairingDevice,
        Kind::ReadDevice,
        Kind::NodeDevice,
        Kind::BridgeDevice,
        Kind::BootstrapSession,
        Kind::Waiting,
    ];
    for kind in kinds {
        let mut session = match kind {
            Kind::Waiting => None,
            k => Some(caller(&gw, k, &paired).await),
        };
        for m in &methods {
            let (params, allowed_answer) = probe(m.name);
            let may = kind.may(m.needs);
            let got = match session.as_mut() {
                Some(c) => match c.call(m.name, params).await {
                    Ok(_) => "ok".to_string(),
                    Err(ClientError::Rejected(e)) => e.code.as_str().to_string(),
                    Err(other) => format!("{other}"),
                },
                None => {
                    let a = call_while_waiting(&gw, m.name, params).await;
                    if a["ok"] == true {
                        "ok".into()
                    } else {
                        a["error"]["code"].as_str().unwrap_or("?").to_string()
                    }
                }
            };
            let want = match (kind, may) {
                (Kind::Waiting, _) => "INVALID_REQUEST",
                (_, true) => allowed_answer,
                (_, false) => "FORBIDDEN",
            };
            if got != want {
                failures.push(format!(
                    "{:<28} as {kind:?}: got {got}, the table says {want}",
                    m.name
                ));
            }
        }
        if let Some(c) = session {
            c.close().await;
        }
    }
    assert!(
        failures.is_empty(),
        "{} rows differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    tokio::time::sleep(Duration::from_millis(10)).await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_token_is_the_owners_whatever_scopes_its_session_asked_for() {
    let st = State::new();
    let gw = TestGateway::start(st.path()).await;
    // As OpenClaw's `openclaw devices … --token` connects: the admin token, least privilege.
    let mut opts = gw.operator_options("cli");
    opts.scopes = vec!["operator.pairing".into()];
    opts.identity = Some(Identity::generate());
    let mut owner = Client::connect(&opts, |_, _| {})
        .await
        .expect("admin token");
    let (phone, _) = gw.paired("node", &[]).await;
    owner
        .call(
            "device.pair.rename",
            json!({ "deviceId": phone.device_id(), "label": "Kitchen" }),
        )
        .await
        .expect("rename a node");
    owner
        .call(
            "device.token.rotate",
            json!({ "deviceId": phone.device_id(), "role": "node" }),
        )
        .await
        .expect("rotate a node's token");
    let (_, request) = gw.device_request("operator", &["operator.admin"]).await;
    owner
        .call("device.pair.approve", json!({ "requestId": request }))
        .await
        .expect("approve admin");
    // The methods it may call are still those its scopes allow.
    let e = rejected(owner.call("gateway.token.rotate", json!({})).await);
    assert_eq!(e.code, "FORBIDDEN");
    owner.close().await;
    gw.stop().await;
}
