//! `clawpair.json` is the owner's: a typo in it is never moved aside or replaced by defaults.
//! Every command refuses to start, naming the file, the line, the column and the mistake;
//! `doctor` only reports, and offers back the last settings ClawPair wrote; a gateway that is
//! running keeps the settings it had. The real binary as a child process.

use crate::common;

use std::time::Duration;

use clawpair_core::client::{Client, ConnectOptions};
use common::gw::TestGateway;
use common::State;
use serde_json::Value;

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Whatever lies in the state directory's top level, by name.
fn top_level(st: &State) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(st.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A state directory with settings worth keeping: an admin token and a Telegram bot.
fn configured(st: &State) -> (String, String) {
    st.ok(&["doctor"]);
    let mut v: Value = serde_json::from_str(&st.read("clawpair.json")).unwrap();
    v["channels"]["telegram"] =
        serde_json::json!({ "enabled": true, "botToken": "123456:ABCdef_ghi-JKL" });
    st.write("clawpair.json", &serde_json::to_string_pretty(&v).unwrap());
    // A command that writes the settings, so ClawPair keeps them as the last good ones.
    st.ok(&["token", "rotate"]);
    let text = st.read("clawpair.json");
    let v: Value = serde_json::from_str(&text).unwrap();
    (
        text,
        v["gateway"]["auth"]["token"].as_str().unwrap().to_string(),
    )
}

/// The settings with the port turned into a string, as a hand edit might.
fn typo(text: &str) -> String {
    let broken = text.replacen("\"port\": 18789", "\"port\": \"18789x\"", 1);
    assert_ne!(broken, text, "the port is in the file");
    broken
}

#[test]
fn a_typo_stops_every_command_with_where_it_is_and_nothing_is_replaced() {
    let st = State::new();
    let (good, _) = configured(&st);
    let broken = typo(&good);
    st.write("clawpair.json", &broken);
    let before = top_level(&st);
    let line = broken.lines().position(|l| l.contains("18789x")).unwrap() + 1;
    for args in [
        &["pairing", "list"][..],
        &["devices", "list"],
        &["allowlist", "add", "telegram", "42"],
        &["gateway", "--port", "0"],
        &["qr", "--url", "ws://192.168.1.2:18789/"],
    ] {
        let o = st.run(args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(
            e.contains("clawpair.json has a mistake at line")
                && e.contains(&format!("line {line}, column"))
                && e.contains("invalid type: string \"18789x\", expected u16")
                && e.contains("Nothing was changed"),
            "{args:?}: {e}"
        );
        assert_eq!(
            st.read("clawpair.json"),
            broken,
            "{args:?} changed the file"
        );
        assert_eq!(top_level(&st), before, "{args:?} moved or wrote something");
    }
    // `doctor` reports, with and without --fix, and offers the last settings back.
    for args in [&["doctor"][..], &["doctor", "--fix"]] {
        let o = st.run(args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert!(
            stdout(&o).contains(&format!("line {line}, column")),
            "{}",
            stdout(&o)
        );
        assert!(
            stderr(&o).contains("clawpair doctor --restore-settings"),
            "{}",
            stderr(&o)
        );
        assert_eq!(st.read("clawpair.json"), broken);
        assert_eq!(top_level(&st), before);
    }
}

#[test]
fn doctor_restores_the_last_settings_clawpair_wrote_and_keeps_the_broken_file() {
    let st = State::new();
    let (good, token) = configured(&st);
    assert_eq!(st.read("clawpair.json.last-good"), good);
    assert_eq!(
        std::fs::metadata(st.file("clawpair.json.last-good"))
            .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
            .unwrap(),
        0o600
    );
    let broken = typo(&good);
    st.write("clawpair.json", &broken);
    let o = st.run(&["doctor", "--restore-settings"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("put back the settings"),
        "{}",
        stdout(&o)
    );
    assert_eq!(
        st.read("clawpair.json"),
        good,
        "the bot and the token are back"
    );
    let kept: Vec<String> = top_level(&st)
        .into_iter()
        .filter(|n| n.starts_with("clawpair.json.invalid-"))
        .collect();
    assert_eq!(kept.len(), 1, "the owner's broken file is kept");
    assert_eq!(st.read(&kept[0]), broken);
    let v: Value = serde_json::from_str(&st.read("clawpair.json")).unwrap();
    assert_eq!(v["gateway"]["auth"]["token"], token.as_str());
    st.ok(&["pairing", "list"]);
    // Nothing to restore once it parses.
    let o = st.run(&["doctor", "--restore-settings"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("nothing to restore"), "{}", stderr(&o));
}

#[test]
fn without_earlier_settings_doctor_says_to_correct_the_file_by_hand() {
    let st = State::new();
    st.write("clawpair.json", "{ \"gateway\": { \"port\": 1, }");
    let o = st.run(&["doctor", "--restore-settings"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("no earlier settings were kept") && stderr(&o).contains("correct"),
        "{}",
        stderr(&o)
    );
    assert_eq!(st.read("clawpair.json"), "{ \"gateway\": { \"port\": 1, }");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_gateway_keeps_its_settings_when_an_edit_breaks_the_file() {
    let st = State::new();
    let gw = TestGateway::start(st.path()).await;
    let good = st.read("clawpair.json");
    let broken = typo(&good);
    st.write("clawpair.json", &broken);
    // Give the state watcher a moment to see the edit.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(gw.service.settings().gateway.auth.token, gw.token);
    let mut c = Client::connect(
        &ConnectOptions::operator(&gw.url, &gw.token, "owner"),
        |_, _| {},
    )
    .await
    .expect("the admin token still works");
    c.call("pairing.list", serde_json::json!({})).await.unwrap();
    let e = gw
        .service
        .update_settings("test", |s| {
            s.pairing.max_pending = 2;
            Ok(())
        })
        .unwrap_err();
    assert!(e.to_string().contains("has a mistake at line"), "{e}");
    assert_eq!(st.read("clawpair.json"), broken, "nothing written over it");
    c.close().await;
    gw.stop().await;
}

/// Numbers ClawPair does not know, however large, are written back exactly as they were read:
/// a settings file ClawPair rewrites (a token minted, a setting changed) keeps the owner's
/// other values. (The fuzzer found a 33-digit number that came back one step off.)
#[test]
fn unknown_numbers_survive_a_rewrite_exactly() {
    use clawpair_core::clock::SystemClock;
    use clawpair_core::config;
    use clawpair_core::store::StatePaths;

    let st = State::new();
    st.write(
        "clawpair.json",
        r#"{ "gateway": { "port": 18789, "setupCodeTtlMinutes": 110333333333333333333333333333333 },
             "ui": { "someFutureLimit": 10333333333333333333333333333333, "ratio": 0.30000000000000004 } }"#,
    );
    let paths = StatePaths::new(st.path().to_path_buf());
    let (loaded, _) = config::load_or_init(&paths, &SystemClock).expect("loads");
    let again = config::read(&paths, &SystemClock).expect("reads back");
    assert_eq!(again, loaded, "what was written reads back the same");
    let v: Value = serde_json::from_str(&st.read("clawpair.json")).unwrap();
    let first: Value = serde_json::from_str("110333333333333333333333333333333").unwrap();
    assert_eq!(v["gateway"]["setupCodeTtlMinutes"], first);
    assert_eq!(v["ui"]["ratio"].as_f64(), Some(0.30000000000000004));
}
