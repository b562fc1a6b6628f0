//! A name read from a file is a name, never a path: channel and account names that come from a
//! pairing file, from `channel.inbound` or from the command line are refused (or, in a file,
//! reported) when they do not pass `[a-z0-9][a-z0-9_-]{0,63}`, and nothing is ever created
//! outside `credentials/` because of one. The rest of the same file is still served.

use crate::common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::gw::TestGateway;
use common::{stderr, stdout, State};
use serde_json::{json, Value};

/// Account (and channel) names a file or a caller might carry: each one, unchecked, would
/// leave `credentials/` or name another file than the one meant.
fn bad_names() -> Vec<String> {
    vec![
        "../../../../escape".into(),
        "..".into(),
        "../x".into(),
        "a/b".into(),
        "/abs".into(),
        "a\\b".into(),
        "a\0b".into(),
        "a".repeat(65),
        "Upper".into(),
    ]
}

/// The code of the i-th bad request (all from the pairing alphabet).
fn bad_code(i: usize) -> String {
    format!(
        "CCCCCCC{}",
        ['A', 'B', 'D', 'E', 'F', 'G', 'H', 'J', 'K', 'L'][i]
    )
}

const WORK_CODE: &str = "WWWW2345";
const DEFAULT_CODE: &str = "DDDD2345";

fn now_iso() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// `credentials/evil-pairing.json` as another tool might write it: one request per bad
/// account name, then a request of the `work` account and one of the default account.
fn write_evil_pairing_file(st: &State) {
    let now = now_iso();
    let mut requests: Vec<Value> = bad_names()
        .iter()
        .enumerate()
        .map(|(i, a)| {
            json!({ "id": format!("bad{i}"), "code": bad_code(i), "createdAt": now, "lastSeenAt": now,
                    "meta": { "accountId": a, "username": "mallory" } })
        })
        .collect();
    requests.push(
        json!({ "id": "worker", "code": WORK_CODE, "createdAt": now, "lastSeenAt": now,
                          "meta": { "accountId": "work" } }),
    );
    requests
        .push(json!({ "id": "friend", "code": DEFAULT_CODE, "createdAt": now, "lastSeenAt": now }));
    st.write(
        "credentials/evil-pairing.json",
        &json!({ "version": 1, "requests": requests }).to_string(),
    );
}

fn tree(root: &Path) -> BTreeSet<PathBuf> {
    common::paths_under(root)
}

/// Asserts that what appeared under the temp dir (the state directory's parent) since
/// `before` is only files directly in `credentials/` (and the audit log, which records the
/// actions that were allowed), and that no escape file exists anywhere in it.
fn assert_only_credentials_files_appeared(st: &State, before: &BTreeSet<PathBuf>, what: &str) {
    let cred = st.file("credentials");
    let logs = st.file("logs");
    for p in tree(st.dir.path()).difference(before) {
        let in_credentials = p.parent() == Some(cred.as_path()) && p.is_file();
        let audit = *p == logs
            || (p.parent() == Some(logs.as_path())
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("audit.jsonl")));
        assert!(in_credentials || audit, "{what}: {} appeared", p.display());
    }
    for p in tree(st.dir.path()) {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        assert!(!name.starts_with("escape"), "{what}: {}", p.display());
    }
}

fn list_of(v: &Value) -> Vec<Value> {
    v["requests"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approving_a_request_whose_stored_account_is_a_path_refuses_and_writes_nothing_outside() {
    let st = State::new();
    write_evil_pairing_file(&st);
    let gw = TestGateway::start(st.path()).await;
    let mut owner = gw.operator().await;

    // Listed, every one of them: the bad ones flagged, their names sanitised.
    let listed = list_of(&owner.call("pairing.list", json!({})).await.unwrap());
    assert_eq!(listed.len(), bad_names().len() + 2, "{listed:?}");
    let flagged: Vec<&Value> = listed.iter().filter(|r| r["invalidName"] == true).collect();
    assert_eq!(flagged.len(), bad_names().len());
    for r in &listed {
        let account = r["accountId"].as_str().unwrap();
        assert!(
            !account.contains('\0') && account.chars().count() <= 64,
            "{r}"
        );
        if r["invalidName"] != true {
            assert!(r.get("invalidName").is_none(), "only sent when true: {r}");
        }
    }

    let before = tree(st.dir.path());
    let file_before = st.read("credentials/evil-pairing.json");
    for (i, bad) in bad_names().iter().enumerate() {
        let e = owner
            .call(
                "pairing.approve",
                json!({ "channel": "evil", "code": bad_code(i) }),
            )
            .await
            .unwrap_err();
        let clawpair_core::client::ClientError::Rejected(e) = e else {
            panic!("{bad:?}: {e}")
        };
        assert_eq!(e.code, "INVALID_REQUEST", "{bad:?}: {e:?}");
        assert_eq!(
            e.details,
            Some(json!({ "reason": "invalid-stored-name" })),
            "{bad:?}"
        );
        assert!(
            e.message.contains("credentials/evil-pairing.json")
                && e.message.contains("invalid account name")
                && e.message.contains(&bad_code(i))
                && !e.message.chars().any(char::is_control),
            "{bad:?}: {}",
            e.message
        );
        if i == 0 {
            // The issue's own case: the refusal names the bad name as it is.
            assert!(
                e.message
                    .contains("invalid account name \"../../../../escape\""),
                "{}",
                e.message
            );
        }
        assert_eq!(tree(st.dir.path()), before, "{bad:?} created something");
        assert_eq!(
            st.read("credentials/evil-pairing.json"),
            file_before,
            "{bad:?}: the pairing file changed"
        );
    }

    // The rest of the file is still served.
    let ok = owner
        .call(
            "pairing.approve",
            json!({ "channel": "evil", "code": WORK_CODE }),
        )
        .await
        .unwrap();
    assert_eq!(ok["accountId"], "work");
    let ok = owner
        .call("pairing.approve", json!({ "code": DEFAULT_CODE }))
        .await
        .unwrap();
    assert_eq!(
        (&ok["channel"], &ok["accountId"]),
        (&json!("evil"), &json!("default"))
    );
    assert!(st.file("credentials/evil-work-allowFrom.json").is_file());
    assert!(st.file("credentials/evil-allowFrom.json").is_file());
    assert_only_credentials_files_appeared(&st, &before, "after the good approvals");
    let left = list_of(&owner.call("pairing.list", json!({})).await.unwrap());
    assert_eq!(left.len(), bad_names().len());
    assert!(left.iter().all(|r| r["invalidName"] == true));

    // Rejecting builds no path, so a bad request can be rejected like any other.
    let r = owner
        .call(
            "pairing.reject",
            json!({ "channel": "evil", "code": bad_code(0) }),
        )
        .await
        .unwrap();
    assert_eq!(r["senderId"], "bad0");
    assert_eq!(r["accountId"], "../../../../escape");
    assert_only_credentials_files_appeared(&st, &before, "after a rejection");
    let entries = owner.call("allowlist.list", json!({})).await.unwrap();
    let senders: BTreeSet<&str> = entries["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["senderId"].as_str().unwrap())
        .collect();
    assert_eq!(senders, BTreeSet::from(["worker", "friend"]));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_inbound_with_a_path_for_a_name_is_refused_and_creates_nothing() {
    let st = State::new();
    let gw = TestGateway::start(st.path()).await;
    let mut bridge = gw.operator().await;
    let first = bridge
        .call(
            "channel.inbound",
            json!({ "channel": "telegram", "senderId": "1", "text": "hi" }),
        )
        .await
        .unwrap();
    assert_eq!(first["decision"], "challenge");
    let before = tree(st.dir.path());
    for bad in bad_names() {
        for params in [
            json!({ "channel": bad, "senderId": "2", "text": "hi" }),
            json!({ "channel": "telegram", "accountId": bad, "senderId": "2", "text": "hi" }),
        ] {
            let e = bridge
                .call("channel.inbound", params.clone())
                .await
                .unwrap_err();
            assert_eq!(e.code(), Some("INVALID_REQUEST"), "{params}: {e}");
            assert!(
                e.to_string().contains("invalid channel name")
                    || e.to_string().contains("invalid account name"),
                "{params}: {e}"
            );
            assert_eq!(tree(st.dir.path()), before, "{params} created something");
        }
    }
    // The bridge goes on being served.
    let d = bridge
        .call(
            "channel.inbound",
            json!({ "channel": "telegram", "accountId": "work", "senderId": "2" }),
        )
        .await
        .unwrap();
    assert_eq!(d["decision"], "challenge");
    assert_only_credentials_files_appeared(&st, &before, "after a good message");
    gw.stop().await;
}

#[test]
fn the_cli_refuses_path_like_names_and_creates_nothing() {
    let st = State::new();
    write_evil_pairing_file(&st);
    st.ok(&["pairing", "list"]);
    let before = tree(st.dir.path());
    // NUL cannot be passed in an argument; the protocol and file tests cover it.
    let names: Vec<String> = bad_names()
        .into_iter()
        .filter(|n| !n.contains('\0'))
        .collect();
    for bad in &names {
        let b = bad.as_str();
        for args in [
            vec!["pairing", "approve", b, "ABCD2345"],
            vec!["pairing", "reject", b, "ABCD2345"],
            vec!["pairing", "list", b],
            vec!["pairing", "approve", "evil", WORK_CODE, "--account", b],
            vec!["allowlist", "list", b],
            vec!["allowlist", "add", b, "42"],
            vec!["allowlist", "add", "telegram", "42", "--account", b],
            vec!["allowlist", "remove", b, "42"],
            vec!["allowlist", "remove", "telegram", "42", "--account", b],
        ] {
            // A channel typed with capitals is lowercased (a person's typing), an account is not.
            if b == "Upper" && !args.contains(&"--account") {
                continue;
            }
            let o = st.run(&args);
            assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
            let err = stderr(&o);
            assert!(
                err.contains("invalid channel name") || err.contains("invalid account name"),
                "{args:?}: {err}"
            );
            assert_eq!(tree(st.dir.path()), before, "{args:?} created something");
        }
    }

    // A stored bad name, approved from the command line: refused, the file named.
    let o = st.run(&["pairing", "approve", "evil", &bad_code(0)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("evil-pairing.json")
            && stderr(&o).contains("invalid account name \"../../../../escape\""),
        "{}",
        stderr(&o)
    );
    assert_eq!(tree(st.dir.path()), before);

    // Listed, marked; the good requests still approve.
    let human = st.ok(&["pairing", "list", "evil"]);
    assert!(
        human.contains("../../../../escape (invalid name)") && human.contains("cannot be approved"),
        "{human}"
    );
    st.ok(&["pairing", "approve", "evil", WORK_CODE]);
    st.ok(&["pairing", "approve", "evil", DEFAULT_CODE]);
    assert_only_credentials_files_appeared(&st, &before, "after the good approvals");
    let allowed = st.json(&["allowlist", "list", "--json"]);
    assert_eq!(allowed["entries"].as_array().unwrap().len(), 2, "{allowed}");
}

#[test]
fn doctor_reports_stored_invalid_names_and_fix_removes_only_those_requests() {
    let st = State::new();
    write_evil_pairing_file(&st);
    // Files named like the store's but not with valid names, and a settings key that is not
    // a valid channel name: reported, never read.
    st.write(
        "credentials/Evil-pairing.json",
        r#"{"version":1,"requests":[]}"#,
    );
    st.write(
        "credentials/evil-..-allowFrom.json",
        r#"{"version":1,"allowFrom":["9"]}"#,
    );
    st.ok(&["pairing", "list"]);
    let mut settings: Value = serde_json::from_str(&st.read("clawpair.json")).unwrap();
    settings["channels"] = json!({ "../evil": { "dmPolicy": "open" } });
    st.write("clawpair.json", &settings.to_string());
    let before = tree(st.dir.path());

    let o = st.run(&["doctor"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(
        out.contains("evil-pairing.json")
            && out.contains("request CCCCCCCA from sender bad0 is stored under an invalid account name \"../../../../escape\"")
            && out.contains("cannot be approved"),
        "{out}"
    );
    assert!(
        out.contains("credentials/Evil-pairing.json: invalid channel name \"Evil\"")
            && out.contains("credentials/evil-..-allowFrom.json: invalid account name \"..\""),
        "{out}"
    );
    assert!(
        out.contains("clawpair.json: channels: invalid channel name \"../evil\""),
        "{out}"
    );
    assert!(!out.contains('\0'));
    assert_eq!(
        tree(st.dir.path()),
        before,
        "doctor without --fix changes nothing"
    );

    let o = st.run(&["doctor", "--fix"]);
    let out = stdout(&o);
    assert!(
        out.contains(&format!(
            "removed {} request(s), as if rejected",
            bad_names().len()
        )),
        "{out}"
    );
    // Only the bad requests went; the others are still served.
    let left = st.json(&["pairing", "list", "--json"]);
    let codes: BTreeSet<&str> = left["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, BTreeSet::from([WORK_CODE, DEFAULT_CODE]));
    st.ok(&["pairing", "approve", "evil", WORK_CODE]);
    assert_only_credentials_files_appeared(&st, &before, "after doctor --fix");
    let audit = st.read("logs/audit.jsonl");
    assert!(
        audit.contains("invalid-account-name") && audit.contains("\"via\":\"doctor\""),
        "{audit}"
    );
    // What doctor cannot fix (the file names, the settings key) it keeps reporting.
    let out = stdout(&st.run(&["doctor"]));
    assert!(
        !out.contains("is stored under an invalid account name")
            && out.contains("Evil-pairing.json"),
        "{out}"
    );
}
