//! Writes the seed corpus (`fuzz/seeds/<target>/`) with ClawPair's own code: the files as the
//! stores write them, the frames as the client sends them (signed for the fixed challenge and
//! time the targets use), the setup codes as the gateway issues them. OpenClaw's captured
//! frames and hand-written oddities (`fuzz/seeds/*/openclaw-*`, `fuzz/seeds/*/regression-*`) are not
//! made here and are left as they are.
//!
//!     cd fuzz && cargo run --example make_seeds

use std::fs;
use std::path::{Path, PathBuf};

use clawpair_core::client::{connect_params, Auth, ConnectOptions, Identity, IdentityFile};
use clawpair_core::config::{self, Settings};
use clawpair_core::gateway::connect;
use clawpair_core::pairing::authority::Authority;
use clawpair_core::pairing::device::{PendingDevice, SignedFields};
use clawpair_core::pairing::dm::DmLimits;
use clawpair_core::pairing::setup::{encode_setup_code, BootstrapRecord, SetupPayload};
use clawpair_core::pairing::token::hash_token;
use clawpair_core::store::audit::{self, AuditEntry};
use clawpair_core::store::devices::DeviceStore;
use clawpair_core::store::dm::DmStore;
use clawpair_core::store::runrec::GatewayRecord;
use clawpair_core::store::{fs as sfs, AccountId, ChannelName, StatePaths};
use clawpair_fuzz::{candidate, clock, rng, CHALLENGE_NONCE, CHANNEL, DEVICE_SEED, NOW};
use serde_json::{json, Map, Value};

/// The bootstrap token the `devices_bootstrap` target presents.
const PRESENTED: &str = "fuzz-setup-token";

fn seeds_dir(target: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("seeds")
        .join(target);
    fs::create_dir_all(&d).unwrap();
    d
}

fn seed(target: &str, name: &str, bytes: &[u8]) {
    fs::write(seeds_dir(target).join(name), bytes).unwrap();
}

fn state() -> (tempfile::TempDir, StatePaths) {
    let d = tempfile::tempdir().unwrap();
    let p = StatePaths::new(d.path());
    (d, p)
}

/// `connect` params for `opts`, signed for the targets' challenge at the targets' time.
fn signed_connect(opts: &ConnectOptions, id: &Identity) -> Value {
    let mut params = connect_params(opts, CHALLENGE_NONCE);
    let token = match &opts.auth {
        Auth::Token(t) | Auth::DeviceToken(t) | Auth::BootstrapToken(t) => t.clone(),
        Auth::None => String::new(),
    };
    let device_id = id.device_id();
    let scopes = opts.scopes.join(",");
    let fields = SignedFields {
        device_id: &device_id,
        client_id: &opts.client_id,
        client_mode: &opts.client_mode,
        role: &opts.role,
        scopes: &scopes,
        signed_at: NOW,
        token: &token,
        nonce: CHALLENGE_NONCE,
        platform: &opts.platform,
        device_family: &opts.device_family,
    };
    params["device"]["signedAt"] = NOW.into();
    params["device"]["signature"] = id.sign(&fields).into();
    params
}

/// The signed seeds must pass the gateway's checks at the targets' challenge and time, or the
/// `first_frame` target never reaches a verified device.
fn check_verifies(params: &Value) {
    let p = connect::parse(params.clone()).unwrap();
    connect::validate(&p).unwrap();
    assert!(matches!(
        connect::verify_device(&p, CHALLENGE_NONCE, NOW),
        Ok(Some(_))
    ));
}

fn frame(id: &str, params: Value) -> Vec<u8> {
    json!({ "type": "req", "id": id, "method": "connect", "params": params })
        .to_string()
        .into_bytes()
}

fn first_frame() {
    let t = "first_frame";
    let phone = Identity::from_seed(DEVICE_SEED);
    let url = "ws://192.168.1.20:18789";
    let mut node = ConnectOptions::node(url, phone.clone(), Auth::BootstrapToken("A".repeat(43)));
    node.platform = "linux".into();
    node.display_name = Some("fuzz phone".into());
    node.wait_for_approval = true;
    check_verifies(&signed_connect(&node, &phone));
    seed(
        t,
        "clawpair-node-setup-code",
        &frame("1", signed_connect(&node, &phone)),
    );
    let mut stored = node.clone();
    stored.auth = Auth::DeviceToken("B".repeat(43));
    stored.wait_for_approval = false;
    seed(
        t,
        "clawpair-node-device-token",
        &frame("2", signed_connect(&stored, &phone)),
    );
    let mut op = ConnectOptions::node(url, phone.clone(), Auth::DeviceToken("C".repeat(43)));
    op.role = "operator".into();
    op.scopes = vec!["operator.read".into(), "operator.pairing".into()];
    op.client_mode = "ui".into();
    check_verifies(&signed_connect(&stored, &phone));
    check_verifies(&signed_connect(&op, &phone));
    seed(
        t,
        "clawpair-operator-device",
        &frame("3", signed_connect(&op, &phone)),
    );
    let mut admin = ConnectOptions::operator(url, &"D".repeat(43), "clawpair-cli");
    admin.platform = "linux".into();
    seed(
        t,
        "clawpair-cli-admin-token",
        &frame("4", connect_params(&admin, CHALLENGE_NONCE)),
    );
    seed(
        t,
        "not-connect",
        br#"{"type":"req","id":"5","method":"device.pair.list","params":{}}"#,
    );
}

fn setup_code() {
    let t = "setup_code";
    let lan = SetupPayload {
        url: "ws://192.168.1.20:18789".into(),
        bootstrap_token: "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5".into(),
        expires_at_ms: Some(NOW + 600_000),
        tls_fingerprint: None,
    };
    seed(t, "lan-ws", encode_setup_code(&lan).as_bytes());
    let tls = SetupPayload {
        url: "wss://gateway.example.net:18789".into(),
        tls_fingerprint: Some("0a".repeat(32)),
        ..lan.clone()
    };
    seed(t, "wss-pinned", encode_setup_code(&tls).as_bytes());
    seed(
        t,
        "raw-json-colon-pin",
        format!(
            r#"{{"url":"wss://[fd00::1]:9/gw","bootstrapToken":"t","tlsFingerprint":"sha256:{}"}}"#,
            vec!["AB"; 32].join(":")
        )
        .as_bytes(),
    );
    let padded = base64_standard(&serde_json::to_vec(&lan).unwrap());
    seed(t, "standard-base64-padded", padded.as_bytes());
    seed(
        t,
        "https-local-name",
        encode_setup_code(&SetupPayload {
            url: "https://myhost.local:18789/".into(),
            expires_at_ms: None,
            ..lan
        })
        .as_bytes(),
    );
}

fn base64_standard(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn pending_device(seed_byte: u8, role: &str, scopes: &[&str], ts: i64) -> PendingDevice {
    let id = Identity::from_seed([seed_byte; 32]);
    let mut c = candidate();
    let mut v = serde_json::to_value(&c).unwrap();
    v["requestId"] = format!("00000000-0000-4000-8000-0000000000{seed_byte:02x}").into();
    v["deviceId"] = id.device_id().into();
    v["publicKey"] = id.public_key().into();
    v["fingerprint"] = id.fingerprint().into();
    v["role"] = role.into();
    v["scopes"] = json!(scopes);
    v["ts"] = ts.into();
    c = serde_json::from_value(v).unwrap();
    c
}

fn devices() {
    let (_d, paths) = state();
    let store = DeviceStore::new(paths.clone(), clock());
    let ttl = Settings::default().device_pending_ttl_ms();
    store.request(candidate(), None, ttl, 16).unwrap();
    seed(
        "devices_pending",
        "one-node",
        &fs::read(paths.pending_devices()).unwrap(),
    );
    store
        .request(
            pending_device(
                2,
                "operator",
                &["operator.read", "operator.pairing"],
                NOW - 1000,
            ),
            None,
            ttl,
            16,
        )
        .unwrap();
    store
        .request(
            pending_device(3, "operator", &["operator.admin"], NOW - 2000),
            None,
            ttl,
            16,
        )
        .unwrap();
    seed(
        "devices_pending",
        "three-requests",
        &fs::read(paths.pending_devices()).unwrap(),
    );

    // Approved, connected (a token minted), one role revoked.
    let (list, _) = store.pending(ttl).unwrap();
    let owner = Authority::owner();
    for r in &list {
        store.approve(&r.request_id, &[], &owner, ttl).unwrap();
    }
    let phone = Identity::from_seed(DEVICE_SEED);
    store
        .issue_token_on_connect(&phone.device_id(), "node", None, &mut rng())
        .unwrap();
    let op = Identity::from_seed([2; 32]);
    store
        .issue_token_on_connect(&op.device_id(), "operator", None, &mut rng())
        .unwrap();
    seed(
        "devices_paired",
        "three-paired-two-tokens",
        &fs::read(paths.paired_devices()).unwrap(),
    );
    store.revoke(&op.device_id(), "operator", &owner).unwrap();
    store
        .rename(&phone.device_id(), "kitchen tablet", &owner)
        .unwrap();
    store
        .remove(&Identity::from_seed([3; 32]).device_id(), &owner)
        .unwrap();
    seed(
        "devices_paired",
        "renamed-and-revoked",
        &fs::read(paths.paired_devices()).unwrap(),
    );

    // Setup codes: one the target presents, live; others bound, approved, used, revoked.
    let (_d, paths) = state();
    let store = DeviceStore::new(paths.clone(), clock());
    store
        .bootstrap_create(
            "ws://192.168.1.20:18789",
            600_000,
            "window",
            false,
            &mut rng(),
        )
        .unwrap();
    let mut map: Map<String, Value> =
        serde_json::from_slice(&fs::read(paths.bootstrap()).unwrap()).unwrap();
    let record = |token: &str, f: &dyn Fn(&mut BootstrapRecord)| {
        let mut r = BootstrapRecord {
            token_hash: hash_token(token),
            created_at_ms: NOW - 60_000,
            expires_at_ms: NOW + 540_000,
            url: "ws://192.168.1.20:18789".into(),
            device_id: None,
            public_key: None,
            bound_at_ms: None,
            approved_at_ms: None,
            consumed_at_ms: None,
            revoked_at_ms: None,
            issued_via: "cli".into(),
            extra: Map::new(),
        };
        f(&mut r);
        (r.token_hash.clone(), serde_json::to_value(r).unwrap())
    };
    let (k, v) = record(PRESENTED, &|_| {});
    map.insert(k, v);
    sfs::write_json(&paths.bootstrap(), &map).unwrap();
    seed(
        "devices_bootstrap",
        "live-code",
        &fs::read(paths.bootstrap()).unwrap(),
    );
    // The code the target presents is accepted from this seed.
    store
        .bootstrap_check(PRESENTED, &candidate().device_id)
        .unwrap();
    let phone = candidate();
    let (k, v) = record(PRESENTED, &|r| {
        r.device_id = Some(phone.device_id.clone());
        r.public_key = Some(phone.public_key.clone());
        r.bound_at_ms = Some(NOW - 30_000);
        r.approved_at_ms = Some(NOW - 10_000);
    });
    map.insert(k, v);
    let (k, v) = record("used", &|r| r.consumed_at_ms = Some(NOW - 5_000));
    map.insert(k, v);
    let (k, v) = record("revoked", &|r| {
        r.revoked_at_ms = Some(NOW - 5_000);
        r.issued_via = "telegram".into();
    });
    map.insert(k, v);
    sfs::write_json(&paths.bootstrap(), &map).unwrap();
    seed(
        "devices_bootstrap",
        "bound-used-revoked",
        &fs::read(paths.bootstrap()).unwrap(),
    );
}

fn dm() {
    let (_d, paths) = state();
    let store = DmStore::new(paths.clone(), clock());
    let tg = ChannelName::parse(CHANNEL).unwrap();
    let limits = DmLimits::default();
    let mut meta = Map::new();
    meta.insert("username".into(), json!("alice"));
    meta.insert("name".into(), json!("Alice"));
    store
        .upsert(
            &tg,
            &AccountId::default_account(),
            "1001",
            &meta,
            limits,
            &mut rng(),
        )
        .unwrap();
    let mut meta = Map::new();
    meta.insert("accountId".into(), json!("work"));
    store
        .upsert(
            &tg,
            &AccountId::parse("work").unwrap(),
            "1002",
            &meta,
            limits,
            &mut rng(),
        )
        .unwrap();
    seed(
        "dm_pairing",
        "two-requests",
        &fs::read(paths.pairing_file(&tg)).unwrap(),
    );
    // A request naming an account that is a path: listed, never approved into a file.
    let mut f: Value = serde_json::from_slice(&fs::read(paths.pairing_file(&tg)).unwrap()).unwrap();
    f["requests"][1]["meta"]["accountId"] = "../../escape".into();
    seed(
        "dm_pairing",
        "account-is-a-path",
        &serde_json::to_vec_pretty(&f).unwrap(),
    );

    let (list, _) = store.list(&tg, limits).unwrap();
    store
        .approve(&tg, &list[0].code, None, "telegram", limits)
        .unwrap();
    store
        .allow_add(&tg, &AccountId::default_account(), "2002", "cli")
        .unwrap();
    store
        .touch_last_message(&tg, &AccountId::default_account(), "2002", NOW)
        .unwrap();
    seed(
        "dm_allow_from",
        "approved-and-added",
        &fs::read(paths.allow_file(&tg, &AccountId::default_account())).unwrap(),
    );
}

fn settings() {
    let (_d, paths) = state();
    let c = clock();
    config::load_or_init(&paths, &*c).unwrap();
    // The same token every time the seeds are made (a first run mints a random one).
    config::update(&paths, &*c, |s| {
        s.gateway.auth.token = "fuzz-seed-admin-token-0123456789abcdefghijk".into();
        Ok(())
    })
    .unwrap();
    seed(
        "settings",
        "first-run",
        &fs::read(paths.settings()).unwrap(),
    );
    config::update(&paths, &*c, |s| {
        s.gateway.bind = "0.0.0.0".into();
        s.gateway.public_url = Some("wss://gateway.example.net:18789".into());
        s.gateway.trusted_proxies = vec!["127.0.0.1".into(), "10.0.0.0/8".into()];
        s.gateway.tls =
            Some(serde_json::from_value(json!({ "enabled": true, "selfSigned": true })).unwrap());
        s.channels.insert(
            CHANNEL.into(),
            serde_json::from_value(json!({
                "enabled": true,
                "dmPolicy": "pairing",
                "botToken": "123456:ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghi",
                "owners": ["1001"],
            }))
            .unwrap(),
        );
        s.devices.stale_after_days = Some(30);
        Ok(())
    })
    .unwrap();
    seed(
        "settings",
        "lan-tls-telegram",
        &fs::read(paths.settings()).unwrap(),
    );
}

fn audit_log() {
    let (_d, paths) = state();
    let log = paths.audit_log();
    let mut details = Map::new();
    details.insert("channel".into(), json!(CHANNEL));
    details.insert("sender".into(), json!("1001"));
    audit::append(
        &log,
        &AuditEntry::new(NOW - 3000, "dm.requested", "telegram", details.clone()),
    )
    .unwrap();
    audit::append(
        &log,
        &AuditEntry::new(NOW - 2000, "dm.approved", "window", details),
    )
    .unwrap();
    let mut details = Map::new();
    details.insert("deviceId".into(), json!(candidate().device_id));
    details.insert("role".into(), json!("node"));
    audit::append(
        &log,
        &AuditEntry::new(
            NOW - 1000,
            "device.approved",
            &audit::actor("clawpair-cli", "admin-token"),
            details,
        ),
    )
    .unwrap();
    seed("audit_log", "three-entries", &fs::read(&log).unwrap());
}

fn gateway_record() {
    let (_d, paths) = state();
    let rec = GatewayRecord {
        pid: 4242,
        address: "0.0.0.0:18789".into(),
        started_at_ms: NOW,
        version: env!("CARGO_PKG_VERSION").into(),
        tls_fingerprint: None,
    };
    sfs::write_json(&paths.gateway_record(), &rec).unwrap();
    seed(
        "gateway_record",
        "plain",
        &fs::read(paths.gateway_record()).unwrap(),
    );
    let rec = GatewayRecord {
        address: "[::1]:18790".into(),
        tls_fingerprint: Some("ab".repeat(32)),
        ..rec
    };
    sfs::write_json(&paths.gateway_record(), &rec).unwrap();
    seed(
        "gateway_record",
        "tls-ipv6",
        &fs::read(paths.gateway_record()).unwrap(),
    );
}

fn identity_file() {
    let (_d, paths) = state();
    let path = paths.identity_dir().join("device.json");
    let id = Identity::from_seed(DEVICE_SEED);
    let mut f = IdentityFile::new(&id, NOW);
    f.save(&path).unwrap();
    seed("identity_file", "new", &fs::read(&path).unwrap());
    f.gateway_url = Some("wss://192.168.1.20:18789".into());
    f.gateway_tls_fingerprint = Some("0a".repeat(32));
    f.tokens.insert(
        "node".into(),
        serde_json::from_value(json!({ "token": "E".repeat(43), "scopes": [] })).unwrap(),
    );
    f.save(&path).unwrap();
    seed("identity_file", "paired", &fs::read(&path).unwrap());
}

fn openclaw() {
    let t = "openclaw_config";
    seed(
        t,
        "json5",
        b"// OpenClaw writes JSON5\n{\n  gateway: {\n    port: 18999,\n    bind: 'lan',\n    auth: { mode: 'token', token: 'tok-123', },\n  },\n}\n",
    );
    seed(
        t,
        "tls-secret-ref",
        br#"{"gateway":{"auth":{"token":{"source":"env","id":"X"}},"tls":{"enabled":true},"port":443}}"#,
    );

    let t = "openclaw_store";
    let phone = Identity::from_seed(DEVICE_SEED);
    let tokens = json!({ "node": { "token": "F".repeat(43), "role": "node", "scopes": [], "createdAtMs": NOW - 60_000, "lastUsedAtMs": NOW - 1_000 } });
    let row = |id: &Identity, name: &str, tokens: &Value| {
        json!([
            id.device_id(),
            id.public_key(),
            name,
            null,
            "android",
            "phone",
            "openclaw-android",
            "node",
            "node",
            "[\"node\"]",
            "[]",
            "[]",
            "192.168.1.9",
            tokens.to_string(),
            "setup-code",
            NOW - 120_000,
            NOW - 110_000,
            NOW - 1_000
        ])
    };
    seed(
        t,
        "one-device-two-senders",
        &serde_json::to_vec_pretty(&json!({
            "userVersion": 18,
            "allow": [
                ["telegram", "default", "1001", 0, NOW - 5_000],
                ["telegram", "work", "1002", 1, NOW - 4_000],
            ],
            "paired": [row(&phone, "Pixel", &tokens)],
        }))
        .unwrap(),
    );
    let op = Identity::from_seed([2; 32]);
    let op_tokens = json!({ "operator": { "tokenHash": "ab".repeat(32), "scopes": ["operator.read", "operator.admin"] }, "ghost": { "token": "x" } });
    seed(
        t,
        "odd-rows",
        &serde_json::to_vec_pretty(&json!({
            "userVersion": 17,
            "allow": [
                ["telegram", null, "*", 0, null],
                ["../etc", "default", "1003", "2", "1767323045678"],
                ["discord", "", "user with space", 3.5, 1],
            ],
            "paired": [
                row(&op, "Laptop\u{202e}", &op_tokens),
                [phone.device_id(), "not-a-key", null, null, null, null, null, null, "admin", "{}", "[1,2]", null, null, "[]", null, "x", -5, null],
            ],
        }))
        .unwrap(),
    );
}

fn main() {
    first_frame();
    setup_code();
    devices();
    dm();
    settings();
    audit_log();
    gateway_record();
    identity_file();
    openclaw();
    println!(
        "seeds written under {}",
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("seeds")
            .display()
    );
}
