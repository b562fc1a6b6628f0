//! DM pairing through the gateway, as a channel bridge sees it: `channel.inbound` decisions,
//! events to the owner, approvals and removals by the CLI through the running gateway.

use crate::common;

use std::time::Duration;

use clawpair_core::client::Client;
use clawpair_core::pairing::dm::DmPolicy;
use common::gw::{cli, TestGateway};
use common::{stderr, State};
use serde_json::{json, Value};

async fn inbound(bridge: &mut Client, sender: &str, text: &str) -> Value {
    bridge
        .call(
            "channel.inbound",
            json!({ "channel": "telegram", "senderId": sender, "text": text }),
        )
        .await
        .expect("decision")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stranger_is_challenged_once_then_approved_and_allowed() {
    let st = State::new();
    let gw = TestGateway::start(st.path()).await;
    let mut owner = gw.operator().await;
    let mut bridge = gw.operator().await;

    let d = bridge
        .call("channel.inbound", json!({ "channel": "telegram", "senderId": "1001", "text": "hi", "meta": { "username": "ali\u{202E}ce\u{200B}", "firstName": "Al\u{0007}ice" } }))
        .await
        .unwrap();
    assert_eq!(d["decision"], "challenge");
    assert_eq!(d["reason"], "pairing-required");
    let code = d["code"].as_str().unwrap().to_string();
    let reply = d["reply"].as_str().unwrap();
    assert!(
        reply.contains("1001")
            && reply.contains(&code)
            && reply.contains(&format!("clawpair pairing approve telegram {code}")),
        "{reply}"
    );

    // The owner is told, with the requester's text sanitised.
    let ev = owner
        .wait_event("pairing.requested", Duration::from_secs(5))
        .await
        .unwrap()
        .expect("pairing.requested");
    assert_eq!(ev["code"], code.as_str());
    assert_eq!(ev["meta"]["username"], "alice");
    assert_eq!(ev["meta"]["firstName"], "Alice");

    // A second message gets no second reply.
    let d = inbound(&mut bridge, "1001", "hello?").await;
    assert_eq!(d, json!({ "decision": "drop", "reason": "pending" }));

    // The owner approves with the CLI (through the gateway) and the sender is let through.
    let o = cli(
        st.path(),
        &["pairing", "approve", "telegram", &code.to_lowercase()],
    )
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let ev = owner
        .wait_event("pairing.resolved", Duration::from_secs(5))
        .await
        .unwrap()
        .expect("pairing.resolved");
    assert_eq!(ev["decision"], "approved");
    assert_eq!(ev["senderId"], "1001");
    let d = inbound(&mut bridge, "1001", "now?").await;
    assert_eq!(d, json!({ "decision": "allow", "reason": "allowlisted" }));
    let msg = owner
        .wait_event("chat.message", Duration::from_secs(5))
        .await
        .unwrap()
        .expect("chat.message");
    assert_eq!(msg["text"], "now?");
    assert_eq!(msg["senderId"], "1001");

    // Removed from the allowlist: challenged again with a new code.
    let o = cli(st.path(), &["allowlist", "remove", "telegram", "1001"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let d = inbound(&mut bridge, "1001", "still there?").await;
    assert_eq!(d["decision"], "challenge");
    assert_ne!(d["code"], code.as_str());
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_three_strangers_wait_per_account() {
    let st = State::new();
    let gw = TestGateway::start(st.path()).await;
    let mut owner = gw.operator().await;
    let mut bridge = gw.operator().await;
    for s in ["a", "b", "c"] {
        assert_eq!(inbound(&mut bridge, s, "hi").await["decision"], "challenge");
    }
    let d = inbound(&mut bridge, "d", "hi").await;
    assert_eq!(d, json!({ "decision": "drop", "reason": "pending-cap" }));
    let ev = owner
        .wait_event("pairing.dropped", Duration::from_secs(5))
        .await
        .unwrap()
        .expect("drop is counted");
    assert_eq!(ev["reason"], "pending-cap");
    let list = owner
        .call("pairing.list", json!({ "channel": "telegram" }))
        .await
        .unwrap();
    assert_eq!(list["requests"].as_array().unwrap().len(), 3);
    // Another account has its own three.
    let d = bridge
        .call(
            "channel.inbound",
            json!({ "channel": "telegram", "accountId": "work", "senderId": "d" }),
        )
        .await
        .unwrap();
    assert_eq!(d["decision"], "challenge");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_four_policies_and_group_chats() {
    let st = State::new();
    let gw = TestGateway::start_with(st.path(), Default::default(), |s| {
        s.channels.insert(
            "telegram".into(),
            clawpair_core::config::ChannelSettings {
                allow_from: vec!["friend".into()],
                owners: vec!["me".into()],
                ..Default::default()
            },
        );
    })
    .await;
    let mut bridge = gw.operator().await;
    let set = |p: DmPolicy| {
        gw.service
            .update_settings("test", move |s| {
                s.channels.get_mut("telegram").unwrap().dm_policy = Some(p);
                Ok(())
            })
            .unwrap()
    };
    assert_eq!(inbound(&mut bridge, "me", "x").await["reason"], "owner");
    assert_eq!(
        inbound(&mut bridge, "friend", "x").await["decision"],
        "allow"
    );
    set(DmPolicy::Disabled);
    assert_eq!(
        inbound(&mut bridge, "friend", "x").await,
        json!({ "decision": "drop", "reason": "disabled" })
    );
    set(DmPolicy::Open);
    assert_eq!(
        inbound(&mut bridge, "anyone", "x").await,
        json!({ "decision": "allow", "reason": "open" })
    );
    set(DmPolicy::Allowlist);
    assert_eq!(
        inbound(&mut bridge, "anyone", "x").await,
        json!({ "decision": "drop", "reason": "not-allowlisted" })
    );
    assert_eq!(
        inbound(&mut bridge, "friend", "x").await["decision"],
        "allow"
    );
    // Under allowlist, stored approvals are ignored.
    gw.service
        .allow_add("telegram", None, "stored", "test")
        .unwrap();
    assert_eq!(
        inbound(&mut bridge, "stored", "x").await["decision"],
        "drop"
    );
    set(DmPolicy::Pairing);
    assert_eq!(
        inbound(&mut bridge, "stored", "x").await["decision"],
        "allow"
    );
    let d = bridge
        .call(
            "channel.inbound",
            json!({ "channel": "telegram", "senderId": "stranger", "chatType": "group" }),
        )
        .await
        .unwrap();
    assert_eq!(d, json!({ "decision": "drop", "reason": "group" }));
    assert!(
        gw.service.dm_list(Some("telegram")).unwrap().is_empty(),
        "groups never create requests"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridges_need_the_ingest_scope_and_bad_input_is_refused() {
    let st = State::new();
    let gw = TestGateway::start(st.path()).await;
    let mut opts = clawpair_core::client::ConnectOptions::operator(&gw.url, &gw.token, "reader");
    opts.scopes = vec!["operator.read".into()];
    let mut reader = Client::connect(&opts, |_, _| {}).await.unwrap();
    let e = reader
        .call(
            "channel.inbound",
            json!({ "channel": "telegram", "senderId": "1" }),
        )
        .await
        .err()
        .unwrap();
    assert_eq!(e.code(), Some("FORBIDDEN"));
    let e = reader.call("pairing.list", json!({})).await.err().unwrap();
    assert_eq!(e.code(), Some("FORBIDDEN"));
    let mut bridge = gw.operator().await;
    for bad in [
        json!({ "channel": "../x", "senderId": "1" }),
        json!({ "channel": "telegram", "senderId": "" }),
        json!({ "channel": "telegram", "senderId": "*" }),
        json!({ "channel": "telegram", "senderId": 5 }),
        json!({ "channel": "telegram" }),
        json!({ "channel": "telegram", "senderId": "1", "accountId": "A/B" }),
    ] {
        let e = bridge
            .call("channel.inbound", bad.clone())
            .await
            .err()
            .unwrap_or_else(|| panic!("{bad} accepted"));
        assert_eq!(e.code(), Some("INVALID_REQUEST"), "{bad}");
    }
    assert!(gw.answers().await);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_made_on_the_files_by_another_process_are_seen_without_a_restart() {
    let st = State::new();
    let gw = TestGateway::start(st.path()).await;
    let mut bridge = gw.operator().await;
    assert_eq!(
        inbound(&mut bridge, "500", "hi").await["decision"],
        "challenge"
    );
    // Another process (a script, an old tool) writes the allowlist directly.
    st.write(
        "credentials/telegram-allowFrom.json",
        r#"{"version":1,"allowFrom":["500","501"]}"#,
    );
    assert_eq!(
        inbound(&mut bridge, "501", "hi").await,
        json!({ "decision": "allow", "reason": "allowlisted" })
    );
    assert_eq!(inbound(&mut bridge, "500", "hi").await["decision"], "allow");
    // ...and takes someone off it again.
    st.write(
        "credentials/telegram-allowFrom.json",
        r#"{"version":1,"allowFrom":["500"]}"#,
    );
    assert_eq!(
        inbound(&mut bridge, "501", "hi").await["decision"],
        "challenge"
    );
    // A policy edited in clawpair.json applies at once too.
    let mut settings: Value = serde_json::from_str(&st.read("clawpair.json")).unwrap();
    settings["channels"] = json!({ "telegram": { "dmPolicy": "disabled" } });
    st.write("clawpair.json", &settings.to_string());
    assert_eq!(
        inbound(&mut bridge, "500", "hi").await["reason"],
        "disabled"
    );
    gw.stop().await;
}

#[test]
fn codes_expire_an_hour_after_creation_on_a_fake_clock() {
    use clawpair_core::clock::ManualClock;
    use clawpair_core::service::{InboundDm, Service};
    use std::sync::Arc;
    let st = State::new();
    let clock = ManualClock::new(1_800_000_000_000);
    let (svc, _) = Service::open(
        clawpair_core::store::StatePaths::new(st.path()),
        Arc::new(clock.clone()),
    )
    .unwrap();
    let dm = |sender: &str| {
        svc.dm_inbound(&InboundDm {
            channel: "telegram".into(),
            sender: sender.into(),
            ..Default::default()
        })
        .unwrap()
    };
    let first = dm("7");
    assert_eq!(first.kind(), "challenge");
    clock.advance_ms(59 * 60_000);
    assert_eq!(
        dm("7").reason().as_str(),
        "pending",
        "still pending after 59 minutes"
    );
    assert_eq!(svc.dm_list(Some("telegram")).unwrap().len(), 1);
    clock.advance_ms(60_000);
    assert!(
        svc.dm_list(Some("telegram")).unwrap().is_empty(),
        "expired and pruned at 60 minutes"
    );
    let again = dm("7");
    assert_eq!(again.kind(), "challenge", "a new code after expiry");
    assert_ne!(format!("{again:?}"), format!("{first:?}"));
}
