//! `clawpair import --from-openclaw`: an OpenClaw 2026.9 store (`state/openclaw.sqlite`, STRICT
//! tables, WAL, held open as OpenClaw's gateway holds it) made here with rusqlite, imported by
//! the real CLI binary; the imported phone then connects to a real gateway with the token it
//! already had. Tokens never show up in output or files.

use crate::common;

use std::path::{Path, PathBuf};

use clawpair_core::client::{Auth, Client, ClientError, Identity};
use common::gw::TestGateway;
use common::{stderr, stdout, State};
use rusqlite::{params, Connection};
use serde_json::{json, Value};

const SCHEMA: &str = "
CREATE TABLE channel_pairing_allow_entries (
  channel_key TEXT NOT NULL,
  account_id TEXT NOT NULL,
  entry TEXT NOT NULL,
  sort_order INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (channel_key, account_id, entry)
) STRICT;
CREATE TABLE channel_pairing_requests (
  channel_key TEXT NOT NULL,
  account_id TEXT NOT NULL,
  request_id TEXT NOT NULL,
  code TEXT NOT NULL,
  created_at TEXT NOT NULL,
  last_seen_at TEXT NOT NULL,
  meta_json TEXT,
  PRIMARY KEY (channel_key, account_id, request_id)
) STRICT;
CREATE TABLE device_pairing_paired (
  device_id TEXT NOT NULL PRIMARY KEY,
  public_key TEXT NOT NULL,
  display_name TEXT,
  operator_label TEXT,
  platform TEXT,
  device_family TEXT,
  client_id TEXT,
  client_mode TEXT,
  browser_origin TEXT,
  role TEXT,
  roles_json TEXT,
  scopes_json TEXT,
  approved_scopes_json TEXT,
  remote_ip TEXT,
  tokens_json TEXT,
  approved_via TEXT,
  node_surface_json TEXT,
  pending_node_surface_json TEXT,
  created_at_ms INTEGER NOT NULL,
  approved_at_ms INTEGER NOT NULL,
  last_seen_at_ms INTEGER,
  last_seen_reason TEXT
) STRICT;
";

/// An OpenClaw state directory with an empty store of schema version 18, in WAL mode. The
/// connection stays open (as OpenClaw's gateway keeps it) for as long as the caller holds it.
fn openclaw_dir(root: &Path) -> (PathBuf, Connection) {
    let dir = root.join("openclaw");
    std::fs::create_dir_all(dir.join("state")).unwrap();
    let db = Connection::open(dir.join("state/openclaw.sqlite")).unwrap();
    db.pragma_update(None, "journal_mode", "WAL").unwrap();
    db.execute_batch(SCHEMA).unwrap();
    db.pragma_update(None, "user_version", 18).unwrap();
    (dir, db)
}

fn allow(db: &Connection, channel: &str, account: &str, entry: &str, order: i64) {
    db.execute(
        "INSERT INTO channel_pairing_allow_entries VALUES (?1, ?2, ?3, ?4, ?5)",
        params![channel, account, entry, order, 1_767_323_045_678i64],
    )
    .unwrap();
}

/// A paired device as OpenClaw 2026.9 stores it: the token in plaintext in `tokens_json`.
fn paired(db: &Connection, device_id: &str, public_key: &str, name: &str, token: &str) {
    let tokens = json!({ "node": { "token": token, "role": "node", "scopes": [], "createdAtMs": 1_767_323_000_000i64, "lastUsedAtMs": 1_767_323_040_000i64 } });
    db.execute(
        "INSERT INTO device_pairing_paired (device_id, public_key, display_name, platform, device_family, client_id, client_mode, role, roles_json, scopes_json, approved_scopes_json, remote_ip, tokens_json, approved_via, created_at_ms, approved_at_ms, last_seen_at_ms)
         VALUES (?1, ?2, ?3, 'android', 'phone', 'openclaw-android', 'node', 'node', '[\"node\"]', '[]', '[]', '192.168.1.9', ?4, 'setup-code', 1767323000000, 1767323001000, 1767323040000)",
        params![device_id, public_key, name, tokens.to_string()],
    )
    .unwrap();
}

fn import(st: &State, dir: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["import", "--from-openclaw", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    st.run(&args)
}

fn reasons(report: &Value) -> Vec<(String, String)> {
    report["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["what"].as_str().unwrap().to_string(),
                s["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_takes_allowlists_and_devices_and_the_phone_keeps_its_token() {
    let st = State::new();
    let (dir, db) = openclaw_dir(st.dir.path());
    allow(&db, "telegram", "default", "111", 0);
    allow(&db, "telegram", "default", "222", 1);
    allow(&db, "telegram", "work", "333", 0);
    allow(&db, "discord", "default", "444", 0);
    allow(&db, "Tele Gram", "default", "555", 0);
    allow(&db, "telegram", "../work", "666", 0);
    allow(&db, "telegram", "default", "*", 2);
    let phone = Identity::generate();
    let phone_token = "oc-plaintext-device-token-of-the-phone-0001";
    paired(
        &db,
        &phone.device_id(),
        &phone.public_key(),
        "Pixel 8",
        phone_token,
    );
    let stranger = Identity::generate();
    let other = Identity::generate();
    paired(
        &db,
        &stranger.device_id(),
        &other.public_key(),
        "Mismatch",
        "oc-token-mismatch-0002",
    );
    paired(
        &db,
        &"ab".repeat(32),
        "not-a-key",
        "Broken",
        "oc-token-broken-0003",
    );
    // Written after the switch to WAL, and held open: what a running gateway looks like.
    assert!(dir.join("state/openclaw.sqlite-wal").exists());

    let o = import(&st, &dir, &["--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(report["schemaVersion"], 18);
    assert_eq!(report["dryRun"], false);
    let senders: Vec<String> = report["senders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            format!(
                "{}/{}/{}",
                s["channel"].as_str().unwrap(),
                s["accountId"].as_str().unwrap(),
                s["senderId"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        senders,
        vec![
            "discord/default/444",
            "telegram/default/111",
            "telegram/default/222",
            "telegram/work/333"
        ]
    );
    assert_eq!(report["devices"].as_array().unwrap().len(), 1, "{report}");
    assert_eq!(report["devices"][0]["deviceId"], phone.device_id().as_str());
    assert_eq!(
        report["devices"][0]["fingerprint"],
        phone.fingerprint().as_str()
    );
    assert_eq!(report["devices"][0]["tokenRoles"], json!(["node"]));
    let skipped = reasons(&report);
    let reason_of = |what: &str| {
        skipped
            .iter()
            .find(|(w, _)| w == what)
            .map(|(_, r)| r.clone())
            .unwrap_or_else(|| panic!("{what} not skipped: {skipped:?}"))
    };
    assert!(reason_of("Tele Gram/default/555").contains("invalid channel name"));
    assert!(reason_of("telegram/../work/666").contains("invalid account name"));
    assert!(reason_of("telegram/default/*").contains("never stored"));
    assert!(reason_of(&stranger.device_id()).contains("not the SHA-256 of its public key"));
    assert!(reason_of(&"ab".repeat(32)).contains("public_key"));

    // Only hashes on disk, never a token in the output.
    for secret in [
        phone_token,
        "oc-token-mismatch-0002",
        "oc-token-broken-0003",
    ] {
        st.assert_nowhere_on_disk(secret);
        assert!(!stdout(&o).contains(secret) && !stderr(&o).contains(secret));
    }
    let paired_file = st.read("devices/paired.json");
    assert!(paired_file.contains(&clawpair_core::pairing::token::hash_token(phone_token)));
    let audit = st.read("logs/audit.jsonl");
    assert!(
        audit.contains("\"summary\":\"imported from OpenClaw\""),
        "{audit}"
    );
    let allowed = st.json(&["allowlist", "list", "--json"]);
    assert_eq!(allowed["entries"].as_array().unwrap().len(), 4, "{allowed}");
    assert_eq!(allowed["entries"][1]["approvedVia"], "openclaw-import");

    // The phone connects to ClawPair with the token OpenClaw gave it; a wrong one is refused.
    let gw = TestGateway::start(st.path()).await;
    let c = Client::connect(
        &gw.phone(&phone, Auth::DeviceToken(phone_token.into())),
        |_, _| {},
    )
    .await
    .expect("the imported phone connects with its existing token");
    assert_eq!(c.hello["auth"]["role"], "node");
    assert!(
        c.hello["auth"].get("deviceToken").is_none(),
        "no new token was needed"
    );
    drop(c);
    match Client::connect(
        &gw.phone(&phone, Auth::DeviceToken("oc-wrong-token".into())),
        |_, _| {},
    )
    .await
    {
        Err(ClientError::Rejected(r)) => assert_eq!(r.code, "AUTH_FAILED"),
        other => panic!(
            "a wrong token must be refused: {:?}",
            other.map(|c| c.hello)
        ),
    }
    gw.stop().await;

    // A second import takes nothing twice and overwrites nothing.
    let before = st.read("devices/paired.json");
    let o = import(&st, &dir, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("Imported 0 approved senders"), "{out}");
    assert!(out.contains("Imported 0 paired devices"), "{out}");
    assert!(
        out.contains(&format!(
            "device {}: already paired in ClawPair (left as it is)",
            phone.device_id()
        )),
        "{out}"
    );
    assert!(
        out.contains("allowlist telegram/default/111: already allowed in ClawPair"),
        "{out}"
    );
    assert!(!out.contains(phone_token));
    assert_eq!(st.read("devices/paired.json"), before);
    drop(db);
}

#[test]
fn import_skips_every_path_like_name_and_creates_nothing_outside_credentials() {
    let st = State::new();
    let (dir, db) = openclaw_dir(st.dir.path());
    let long = "a".repeat(65);
    let bad = [
        "../../../../escape",
        "..",
        "a/b",
        "/abs",
        "a\\b",
        "a\0b",
        long.as_str(),
        "Upper",
    ];
    for (i, b) in bad.iter().enumerate() {
        allow(&db, b, "default", &format!("c{i}"), 0);
        allow(&db, "telegram", b, &format!("a{i}"), 0);
    }
    allow(&db, "telegram", "work", "ok", 0);
    st.ok(&["allowlist", "list"]);
    let before = common::paths_under(st.dir.path());

    let o = import(&st, &dir, &["--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(report["senders"].as_array().unwrap().len(), 1, "{report}");
    assert_eq!(report["senders"][0]["accountId"], "work");
    let skipped = reasons(&report);
    assert_eq!(skipped.len(), 2 * bad.len(), "{skipped:?}");
    assert!(skipped.iter().all(|(what, reason)| {
        !what.contains('\0')
            && (reason.contains("invalid channel name") || reason.contains("invalid account name"))
    }));
    let cred = st.file("credentials");
    for p in common::paths_under(st.dir.path()).difference(&before) {
        let logs = st.file("logs");
        let audit_log = *p == logs || p.parent() == Some(logs.as_path());
        assert!(
            *p == cred || (p.parent() == Some(cred.as_path()) && p.is_file()) || audit_log,
            "{} appeared",
            p.display()
        );
    }
    assert!(st
        .file("credentials/telegram-work-allowFrom.json")
        .is_file());
    drop(db);
}

#[test]
fn import_dry_run_reports_and_writes_nothing() {
    let st = State::new();
    let (dir, db) = openclaw_dir(st.dir.path());
    allow(&db, "telegram", "default", "111", 0);
    let phone = Identity::generate();
    paired(
        &db,
        &phone.device_id(),
        &phone.public_key(),
        "Pixel",
        "oc-dry-run-token-0004",
    );
    let o = import(&st, &dir, &["--dry-run"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("Would import 1 approved sender"), "{out}");
    assert!(out.contains("Would import 1 paired device"), "{out}");
    assert!(
        out.contains("Pixel") && out.contains(&phone.fingerprint()),
        "{out}"
    );
    assert!(out.contains("Nothing was written (--dry-run)."), "{out}");
    assert!(!st.file("devices/paired.json").exists());
    assert!(!st.file("credentials/telegram-allowFrom.json").exists());
    st.assert_nowhere_on_disk("oc-dry-run-token-0004");
    drop(db);
}

#[test]
fn import_defaults_to_openclaws_directory_from_the_environment() {
    let st = State::new();
    let (dir, db) = openclaw_dir(st.dir.path());
    allow(&db, "telegram", "default", "9", 0);
    drop(db);
    let o = st
        .cmd(&["import", "--from-openclaw", "--json"])
        .env("OPENCLAW_STATE_DIR", &dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["senders"][0]["senderId"], "9", "{v}");
    assert!(v["source"]
        .as_str()
        .unwrap()
        .ends_with("state/openclaw.sqlite"));
    // Nothing was written to OpenClaw's directory: no new files beside the database.
    let names: Vec<String> = std::fs::read_dir(dir.join("state"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["openclaw.sqlite"], "{names:?}");
}

#[test]
fn import_refuses_a_missing_or_foreign_store_in_one_line() {
    let st = State::new();
    let missing = st.dir.path().join("nowhere");
    let o = import(&st, &missing, &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("nowhere/state/openclaw.sqlite does not exist"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    let foreign = st.dir.path().join("foreign");
    std::fs::create_dir_all(foreign.join("state")).unwrap();
    let db = Connection::open(foreign.join("state/openclaw.sqlite")).unwrap();
    db.execute_batch("CREATE TABLE notes (body TEXT); PRAGMA user_version = 3;")
        .unwrap();
    drop(db);
    let o = import(&st, &foreign, &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("is not an OpenClaw store: it has no table channel_pairing_allow_entries (PRAGMA user_version is 3)"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    let junk = st.dir.path().join("junk.sqlite");
    std::fs::write(
        &junk,
        "this is not a database, only some text that is long enough",
    )
    .unwrap();
    let o = import(&st, &junk, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("cannot read") && stderr(&o).contains("junk.sqlite"),
        "{}",
        stderr(&o)
    );
}
