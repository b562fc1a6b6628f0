//! The CLI binary on the files: DM pairing, allowlists, devices, setup codes, audit, doctor,
//! exit codes and refusals.

use crate::common;

use common::{mode, stderr, stdout, State};
use serde_json::Value;

/// A pairing file as OpenClaw writes it: version 1, ISO times with milliseconds and `Z`.
fn openclaw_pairing_file(created: &str) -> String {
    format!(
        r#"{{
  "version": 1,
  "requests": [
    {{
      "id": "123456789",
      "code": "ABCD2345",
      "createdAt": "{created}",
      "lastSeenAt": "{created}",
      "meta": {{
        "accountId": "default",
        "username": "alice"
      }}
    }},
    {{
      "id": "555",
      "code": "WXYZ6789",
      "createdAt": "2020-01-01T00:00:00.000Z",
      "lastSeenAt": "2020-01-01T00:00:00.000Z",
      "meta": {{
        "accountId": "default"
      }}
    }}
  ]
}}
"#
    )
}

fn now_iso() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[test]
fn openclaw_files_are_listed_approved_and_written_back_in_the_same_shapes() {
    let st = State::new();
    let created = now_iso();
    st.write(
        "credentials/telegram-pairing.json",
        &openclaw_pairing_file(&created),
    );
    let v = st.json(&["pairing", "list", "telegram", "--json"]);
    let reqs = v["requests"].as_array().unwrap();
    assert_eq!(reqs.len(), 1, "the expired request is hidden: {v}");
    assert_eq!(reqs[0]["code"], "ABCD2345");
    assert_eq!(reqs[0]["meta"]["username"], "alice");
    // ...and pruned from the file, which keeps OpenClaw's shape.
    let file: Value = serde_json::from_str(&st.read("credentials/telegram-pairing.json")).unwrap();
    assert_eq!(file["version"], 1);
    assert_eq!(file["requests"].as_array().unwrap().len(), 1);
    assert_eq!(file["requests"][0]["createdAt"], created.as_str());

    let human = st.ok(&["pairing", "list"]);
    assert!(
        human.contains("Pairing requests (1)")
            && human.contains("ABCD2345")
            && human.contains("alice"),
        "{human}"
    );

    let out = st.ok(&["pairing", "approve", "telegram", " abcd2345 "]);
    assert_eq!(out.trim(), "Approved telegram sender 123456789.");
    let allow: Value =
        serde_json::from_str(&st.read("credentials/telegram-allowFrom.json")).unwrap();
    assert_eq!(allow["version"], 1);
    assert_eq!(allow["allowFrom"], serde_json::json!(["123456789"]));
    assert_eq!(allow["details"]["123456789"]["approvedVia"], "cli");
    assert!(allow["details"]["123456789"]["approvedAt"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    let file: Value = serde_json::from_str(&st.read("credentials/telegram-pairing.json")).unwrap();
    assert_eq!(file, serde_json::json!({"version": 1, "requests": []}));
    assert_eq!(mode(&st.file("credentials/telegram-allowFrom.json")), 0o600);
}

#[test]
fn approve_without_channel_works_when_one_channel_has_requests() {
    let st = State::new();
    st.write(
        "credentials/telegram-pairing.json",
        &openclaw_pairing_file(&now_iso()),
    );
    st.ok(&["pairing", "approve", "ABCD2345"]);
    let list = st.json(&["allowlist", "list", "telegram", "--json"]);
    assert_eq!(list["entries"][0]["senderId"], "123456789");
}

#[test]
fn unknown_code_is_refused_with_exit_1_and_a_reason() {
    let st = State::new();
    st.write(
        "credentials/telegram-pairing.json",
        &openclaw_pairing_file(&now_iso()),
    );
    let o = st.run(&["pairing", "approve", "telegram", "ZZZZ2222"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("code ZZZZ2222 on telegram: no sender waits with it"),
        "{}",
        stderr(&o)
    );
    let o = st.run(&["pairing", "approve", "telegram", "not-a-code"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("not a pairing code"), "{}", stderr(&o));
    assert!(!st.file("credentials/telegram-allowFrom.json").exists());
}

#[test]
fn reject_removes_the_request_without_allowing() {
    let st = State::new();
    st.write(
        "credentials/telegram-pairing.json",
        &openclaw_pairing_file(&now_iso()),
    );
    st.ok(&["pairing", "reject", "telegram", "ABCD2345"]);
    assert!(st.json(&["pairing", "list", "--json"])["requests"]
        .as_array()
        .unwrap()
        .is_empty());
    assert!(st.json(&["allowlist", "list", "--json"])["entries"]
        .as_array()
        .unwrap()
        .is_empty());
}

#[test]
fn usage_errors_exit_2() {
    let st = State::new();
    assert_eq!(st.run(&["pairing", "approve"]).status.code(), Some(2));
    assert_eq!(st.run(&["no-such-command"]).status.code(), Some(2));
    assert_eq!(
        st.run(&["pairing", "approve", "a", "b", "c"]).status.code(),
        Some(2)
    );
}

#[test]
fn allowlist_add_list_remove_and_default_account_merge() {
    let st = State::new();
    st.write(
        "credentials/telegram-default-allowFrom.json",
        r#"{"version":1,"allowFrom":["42"]}"#,
    );
    st.ok(&["allowlist", "add", "telegram", "7"]);
    st.ok(&["allowlist", "add", "telegram", "8", "--account", "work"]);
    let v = st.json(&["allowlist", "list", "--json"]);
    let got: Vec<(String, String)> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["accountId"].as_str().unwrap().to_string(),
                e["senderId"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(got.contains(&("default".into(), "7".into())));
    assert!(got.contains(&("default".into(), "42".into())));
    assert!(got.contains(&("work".into(), "8".into())));
    assert!(st.file("credentials/telegram-work-allowFrom.json").exists());
    st.ok(&["allowlist", "remove", "telegram", "42"]);
    let o = st.run(&["allowlist", "remove", "telegram", "42"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "removing an absent sender is refused"
    );
    let text = st.ok(&["allowlist", "list", "telegram"]);
    assert!(
        text.starts_with("CHANNEL") && !text.contains(" 42 "),
        "{text}"
    );
}

#[test]
fn path_like_names_are_refused_and_nothing_is_written_outside() {
    let st = State::new();
    st.ok(&["doctor"]);
    let outside = st.dir.path().to_path_buf();
    let before: Vec<_> = std::fs::read_dir(&outside)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    // (`Telegram` is not among them: a channel typed with capitals is lowercased.)
    for bad in ["../evil", "a/b", "/etc", ".hidden", "x..y/z"] {
        let o = st.run(&["allowlist", "add", bad, "1"]);
        assert_eq!(o.status.code(), Some(1), "{bad}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("invalid channel name"),
            "{}",
            stderr(&o)
        );
        let o = st.run(&["pairing", "list", bad]);
        assert_eq!(o.status.code(), Some(1));
    }
    let o = st.run(&["allowlist", "add", "telegram", "1", "--account", "../../x"]);
    assert_eq!(o.status.code(), Some(1));
    let after: Vec<_> = std::fs::read_dir(&outside)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        before.len(),
        after.len(),
        "nothing new beside the state dir"
    );
    assert!(
        !st.file("credentials").exists()
            || std::fs::read_dir(st.file("credentials"))
                .unwrap()
                .next()
                .is_none()
    );
}

#[test]
fn corrupt_allowlist_is_moved_aside_reported_and_admits_nobody() {
    let st = State::new();
    let garbage = "{\"version\":1,\"allowFrom\":[\"1\",";
    st.write("credentials/telegram-allowFrom.json", garbage);
    let o = st.run(&["allowlist", "list", "telegram"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("telegram-allowFrom.json is corrupt") && err.contains("moved aside"),
        "{err}"
    );
    let aside: Vec<_> = std::fs::read_dir(st.file("credentials"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1);
    assert_eq!(
        std::fs::read_to_string(aside[0].path()).unwrap(),
        garbage,
        "content preserved"
    );
    // Fail closed: the allowlist is now empty, not "whatever parsed".
    assert!(st.json(&["allowlist", "list", "--json"])["entries"]
        .as_array()
        .unwrap()
        .is_empty());
    let audit = st.json(&["audit", "--json"]);
    assert!(audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["action"] == "store.corrupt"));
    // doctor reports the moved-aside file.
    let o = st.run(&["doctor"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("corrupt"), "{}", stdout(&o));
}

#[test]
fn corrupt_pairing_file_refuses_approval_and_keeps_content() {
    let st = State::new();
    st.write("credentials/telegram-pairing.json", "not json");
    let o = st.run(&["pairing", "approve", "telegram", "ABCD2345"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("corrupt"));
    assert!(
        !st.file("credentials/telegram-allowFrom.json").exists(),
        "nobody admitted"
    );
}

#[test]
fn setup_code_json_and_token_never_on_disk() {
    let st = State::new();
    let v = st.json(&["qr", "--url", "ws://192.168.1.50:18789/", "--json"]);
    let code = v["setupCode"].as_str().unwrap();
    // OpenClaw's canonical form: no trailing slash for the root path.
    assert_eq!(v["url"], "ws://192.168.1.50:18789");
    let p = clawpair_core::pairing::setup::decode_setup_code(code).unwrap();
    assert_eq!(p.bootstrap_token.len(), 43);
    assert_eq!(p.expires_at_ms, v["expiresAtMs"].as_i64());
    st.assert_nowhere_on_disk(&p.bootstrap_token);
    assert!(!st.ok(&["audit", "--json"]).contains(&p.bootstrap_token));
    let only = st.ok(&[
        "qr",
        "--url",
        "ws://192.168.1.50:18789/",
        "--setup-code-only",
    ]);
    assert!(clawpair_core::pairing::setup::decode_setup_code(only.trim()).is_ok());
}

#[test]
fn qr_png_is_written_0600_and_decodes() {
    let st = State::new();
    let png = st.file("qr.png");
    let out = st.ok(&[
        "qr",
        "--url",
        "ws://10.0.0.8:18789/",
        "--png",
        png.to_str().unwrap(),
    ]);
    assert!(out.contains("Setup code: "), "{out}");
    assert_eq!(mode(&png), 0o600);
    let img = image_luma(&png);
    let mut prepared = rqrr::PreparedImage::prepare(img);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1);
    let (_, text) = grids[0].decode().unwrap();
    let line = out
        .lines()
        .find_map(|l| l.strip_prefix("Setup code: "))
        .unwrap();
    assert_eq!(text, line.trim());
}

fn image_luma(p: &std::path::Path) -> image::GrayImage {
    image::open(p).unwrap().to_luma8()
}

#[test]
fn qr_for_a_loopback_gateway_is_refused_with_advice() {
    let st = State::new();
    let o = st.run(&["qr"]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("127.0.0.1 only") && e.contains("--url"), "{e}");
    let o = st.run(&["qr", "--url", "ws://example.com/"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("wss://"), "{}", stderr(&o));
}

#[test]
fn devices_approve_without_id_only_previews() {
    let st = State::new();
    let o = st.run(&["devices", "approve"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no device is waiting"));
    st.write(
        "devices/pending.json",
        &format!(
            r#"{{"r-1":{{"requestId":"r-1","deviceId":"d1","publicKey":"pk","displayName":"Pixel","platform":"android","role":"node","scopes":[],"remoteIp":"192.168.1.3","fingerprint":"ABCD-EFGH","ts":{}}}}}"#,
            chrono::Utc::now().timestamp_millis()
        ),
    );
    let o = st.run(&["devices", "approve", "--latest"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("clawpair devices approve r-1") && stdout(&o).contains("ABCD-EFGH"),
        "{}",
        stdout(&o)
    );
    assert!(
        !st.file("devices/paired.json").exists(),
        "preview approves nothing"
    );
    let out = st.ok(&["devices", "approve", "r-1"]);
    assert!(out.contains("Approved Pixel"), "{out}");
    let list = st.json(&["devices", "list", "--json"]);
    assert_eq!(list["paired"][0]["deviceId"], "d1");
    assert!(list["pending"].as_array().unwrap().is_empty());
    let o = st.run(&["devices", "approve", "r-1"]);
    assert_eq!(o.status.code(), Some(1));
    // (This process cannot know it was approved by another: the id is simply unknown here.)
    assert!(
        stderr(&o).contains("unknown requestId r-1: no device request has this id"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn device_tokens_are_shown_once_and_never_stored_or_listed() {
    let st = State::new();
    st.write(
        "devices/pending.json",
        &format!(
            r#"{{"r-1":{{"requestId":"r-1","deviceId":"d1","publicKey":"pk","role":"node","fingerprint":"ABCD-EFGH","ts":{}}}}}"#,
            chrono::Utc::now().timestamp_millis()
        ),
    );
    st.ok(&["devices", "approve", "r-1"]);
    let v = st.json(&[
        "devices", "rotate", "--device", "d1", "--role", "node", "--json",
    ]);
    let token = v["token"].as_str().unwrap().to_string();
    assert_eq!(token.len(), 43);
    st.assert_nowhere_on_disk(&token);
    for args in [
        &["devices", "list", "--json"][..],
        &["devices", "list"],
        &["audit", "--json"],
        &["audit"],
    ] {
        assert!(!st.ok(args).contains(&token), "{args:?} printed the token");
    }
    let out = st.ok(&["devices", "revoke", "--device", "d1", "--role", "node"]);
    assert!(out.contains("Revoked"));
    let o = st.run(&["devices", "revoke", "--device", "d1", "--role", "admin"]);
    assert_eq!(o.status.code(), Some(2), "not a role: a usage error");
    let o = st.run(&["devices", "clear"]);
    assert_eq!(o.status.code(), Some(1), "clear needs --yes");
    assert!(stderr(&o).contains("--yes"));
    st.ok(&["devices", "clear", "--yes"]);
    assert!(st.json(&["devices", "list", "--json"])["paired"]
        .as_array()
        .unwrap()
        .is_empty());
}

#[test]
fn requester_text_is_sanitised_before_printing() {
    let st = State::new();
    let evil_name = "Mallory\u{202E}gnp.exe\u{200B}\u{1b}[31m";
    st.write(
        "credentials/telegram-pairing.json",
        &serde_json::json!({"version":1,"requests":[{"id":"9","code":"ABCD2345","createdAt":now_iso(),"lastSeenAt":now_iso(),"meta":{"accountId":"default","username":evil_name}}]})
            .to_string(),
    );
    let out = st.ok(&["pairing", "list"]);
    assert!(
        !out.contains('\u{202E}') && !out.contains('\u{200B}') && !out.contains('\u{1b}'),
        "{out:?}"
    );
    assert!(out.contains("Mallorygnp.exe"), "{out}");
    let v = st.json(&["pairing", "list", "--json"]);
    assert_eq!(v["requests"][0]["meta"]["username"], "Mallorygnp.exe[31m");
}

#[test]
fn doctor_reports_and_fixes_loose_permissions_and_stale_entries() {
    use std::os::unix::fs::PermissionsExt;
    let st = State::new();
    st.ok(&["allowlist", "add", "telegram", "1"]);
    st.write(
        "credentials/telegram-pairing.json",
        &openclaw_pairing_file(&now_iso()),
    );
    let f = st.file("credentials/telegram-allowFrom.json");
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(
        st.file("credentials"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let o = st.run(&["doctor"]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains("is 644, should be 600") && out.contains("is 755, should be 700"),
        "{out}"
    );
    assert!(out.contains("1 expired pending requests"), "{out}");
    let o = st.run(&["doctor", "--fix"]);
    assert!(o.status.success(), "{}", stdout(&o));
    assert_eq!(mode(&f), 0o600);
    assert_eq!(mode(&st.file("credentials")), 0o700);
    assert!(st.run(&["doctor"]).status.success());
}

#[test]
fn state_dir_comes_from_the_environment_when_no_flag() {
    let st = State::new();
    let home = common::Home::new();
    let o = home
        .cmd(&["allowlist", "add", "telegram", "5"])
        .env("CLAWPAIR_STATE_DIR", st.dir.path().join("from-env"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let dir = st.dir.path().join("from-env");
    assert!(dir.join("credentials/telegram-allowFrom.json").exists());
    assert!(dir.join("clawpair.json").exists());
    assert_eq!(mode(&dir), 0o700);
}

#[test]
fn version_and_shell_completions() {
    let st = State::new();
    assert_eq!(
        st.ok(&["--version"]).trim(),
        format!("clawpair {}", env!("CARGO_PKG_VERSION"))
    );
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef clawpair"),
        ("fish", "complete -c clawpair"),
    ] {
        let out = st.ok(&["completions", shell]);
        assert!(
            out.contains(marker),
            "{shell}: {}",
            &out[..out.len().min(200)]
        );
        assert!(
            out.contains("pairing") && out.contains("devices"),
            "{shell} completes subcommands"
        );
    }
    assert_eq!(st.run(&["completions", "tcsh"]).status.code(), Some(2));
}

#[test]
fn gateway_logs_to_a_private_file_and_never_logs_secrets() {
    let st = State::new();
    st.ok(&["doctor"]);
    let gw = st
        .cmd(&["gateway", "--port", "0"])
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let end = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !st.file("run/gateway.json").exists() {
        assert!(std::time::Instant::now() < end, "gateway did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let code = st.json(&["qr", "--url", "ws://10.0.0.9:18789/", "--json"])["setupCode"]
        .as_str()
        .unwrap()
        .to_string();
    let token = clawpair_core::pairing::setup::decode_setup_code(&code)
        .unwrap()
        .bootstrap_token;
    st.ok(&["pairing", "list"]);
    std::process::Command::new("kill")
        .arg("-TERM")
        .arg(gw.id().to_string())
        .status()
        .unwrap();
    let out = gw.wait_with_output().unwrap();
    assert!(out.status.success());
    let log = st.read("logs/clawpair.log");
    assert!(log.contains("gateway listening on"), "{log}");
    assert_eq!(mode(&st.file("logs/clawpair.log")), 0o600);
    let settings: Value = serde_json::from_str(&st.read("clawpair.json")).unwrap();
    let admin = settings["gateway"]["auth"]["token"].as_str().unwrap();
    for secret in [admin, token.as_str()] {
        assert!(
            !log.contains(secret) && !stderr(&out).contains(secret),
            "a secret was logged"
        );
    }
    assert!(
        !st.file("run/gateway.json").exists(),
        "the run record is removed on a clean exit"
    );
}

#[test]
fn a_stale_or_unreachable_gateway_record_falls_back_to_the_files() {
    let st = State::new();
    st.ok(&["doctor"]);
    // A record left by a crashed gateway (its pid is gone): used silently as "no gateway".
    st.write(
        "run/gateway.json",
        r#"{"pid":2147483600,"address":"127.0.0.1:9","startedAtMs":0}"#,
    );
    let o = st.run(&["allowlist", "add", "telegram", "1"]);
    assert!(
        o.status.success() && stderr(&o).is_empty(),
        "{}",
        stderr(&o)
    );
    // A live pid is not enough: no gateway holds run/gateway.lock, so the record is stale.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    st.write(
        "run/gateway.json",
        &format!(
            r#"{{"pid":{},"address":"{closed}","startedAtMs":0}}"#,
            std::process::id()
        ),
    );
    let o = st.run(&["allowlist", "add", "telegram", "3"]);
    assert!(
        o.status.success() && stderr(&o).is_empty(),
        "{}",
        stderr(&o)
    );
    st.ok(&["allowlist", "remove", "telegram", "3"]);
    // A gateway that holds the lock (here: this test) but does not answer: a warning, then
    // the files.
    st.write("run/gateway.json.lock", "");
    let held = std::fs::File::create(st.file("run/gateway.lock")).unwrap();
    held.lock().unwrap();
    let o = st.run(&["allowlist", "add", "telegram", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("did not answer") && stderr(&o).contains("files directly"),
        "{}",
        stderr(&o)
    );
    let v = st.json(&["allowlist", "list", "telegram", "--json"]);
    assert_eq!(v["entries"].as_array().unwrap().len(), 2);
}

#[test]
fn what_a_person_types_is_understood_and_each_refusal_says_what_to_do() {
    let st = State::new();
    // A channel typed with capitals is the channel.
    st.ok(&["allowlist", "add", "Telegram", "42"]);
    let v = st.json(&["allowlist", "list", "TELEGRAM", "--json"]);
    assert_eq!(v["entries"][0]["channel"], "telegram", "{v}");
    assert_eq!(v["entries"][0]["senderId"], "42");
    // An id that names nothing, and a code when nobody waits: what happened, where to look.
    let o = st.run(&["devices", "approve", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("unknown requestId nope: no device request has this id")
            && stderr(&o).contains("clawpair devices list"),
        "{}",
        stderr(&o)
    );
    let o = st.run(&["pairing", "approve", "ABCD2345"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("no chat sender is waiting for a decision"),
        "{}",
        stderr(&o)
    );
    // The scheme as typed, not as converted.
    let o = st.run(&["qr", "--url", "http://203.0.113.5:18789/"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("unencrypted (http://)") && stderr(&o).contains("wss://"),
        "{}",
        stderr(&o)
    );
    // Help names every argument.
    let help = st.ok(&["allowlist", "add", "--help"]);
    for said in [
        "<CHANNEL>  The channel",
        "<SENDER>   The sender's id",
        "--json",
        "Print JSON",
    ] {
        assert!(help.contains(said), "{said}: {help}");
    }
}

/// `doctor` with no gateway running names the program holding the configured port, so the
/// owner knows why the gateway cannot start and what to stop.
#[test]
fn doctor_names_the_program_holding_the_gateways_port() {
    let st = State::new();
    st.ok(&["doctor"]);
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let mut v: serde_json::Value = serde_json::from_str(&st.read("clawpair.json")).unwrap();
    v["gateway"]["port"] = port.into();
    st.write("clawpair.json", &serde_json::to_string_pretty(&v).unwrap());
    let o = st.run(&["doctor"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(
        out.contains(&format!("port {port} is in use by"))
            && out.contains(&format!("(pid {})", std::process::id())),
        "the test process holds it: {out}"
    );
    assert!(out.contains("choose another port"), "{out}");
    drop(held);
    st.ok(&["doctor"]);
}

/// A setup code that cannot work is still made (a gateway may start before the phone scans),
/// but the CLI says why on stderr: an address that is not this computer's, loopback, and no
/// gateway running. stdout keeps the code alone for scripts.
#[test]
fn qr_warns_when_the_code_cannot_reach_this_gateway() {
    let st = State::new();
    let o = st.run(&[
        "qr",
        "--url",
        "ws://192.168.77.77:18789/",
        "--setup-code-only",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("warning: 192.168.77.77 is not an address of this computer"),
        "{err}"
    );
    assert!(err.contains("warning: no gateway is running here"), "{err}");
    assert_eq!(
        stdout(&o).lines().count(),
        1,
        "the code alone: {}",
        stdout(&o)
    );
    let v = st.json(&["qr", "--url", "ws://127.0.0.1:18789/", "--json"]);
    let w: Vec<String> = v["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap().to_string())
        .collect();
    assert!(
        w.iter().any(|w| w.contains("is this computer only")),
        "{w:?}"
    );
}

/// `clawpair audit` reads as sentences, with names and where each decision was made; the
/// record stays whole under `--json`. Settings changes say what changed, never a secret.
#[test]
fn audit_reads_as_sentences_and_json_keeps_the_record() {
    let st = State::new();
    st.ok(&["allowlist", "add", "telegram", "4242"]);
    let service = st.service();
    let token = service.settings().gateway.auth.token.clone();
    service
        .update_settings("window", |s| {
            s.gateway.port = 18790;
            s.gateway.auth.token = "x".repeat(43);
            Ok(())
        })
        .unwrap();
    let out = st.ok(&["audit"]);
    assert!(
        out.contains("You allowed Telegram sender 4242 on the command line."),
        "{out}"
    );
    assert!(
        out.contains("You changed the settings in the window: gateway.auth.token: replaced; gateway.port: 18789 → 18790."),
        "{out}"
    );
    assert!(
        !out.contains(&token) && !out.contains(&"x".repeat(43)),
        "{out}"
    );
    let v = st.json(&["audit", "--json"]);
    let last = v["entries"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["action"], "settings.changed", "{last}");
    assert_eq!(last["via"], "window");
}
