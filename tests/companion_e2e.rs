//! Companion mode end to end: the real app, attached to the real OpenClaw 2026.9.6 gateway,
//! under Xvfb with the stand-in notification server. A device pairing with OpenClaw's setup
//! code raises a notification whose Approve approves it on OpenClaw; a chat-sender request in
//! OpenClaw's store appears in the window and is approved from it; a request approved with
//! `openclaw devices approve` closes ClawPair's notification; a restarted gateway is attached
//! again. Run by scripts/interop.sh (a loopback-only network namespace, then
//! `dbus-run-session … xvfb-run …` inside it).

/// The `clawpair` the app ships, built here as `clawpair-app`.
const CLAWPAIR: &str = env!("CARGO_BIN_EXE_clawpair-app");

mod common;

use std::time::Duration;

use clawpair_devtools::notifyd::Notifyd;
use common::desktop::{keep, Launch};
use common::openclaw::{peer, OpenClawGateway, WAIT};
use common::webdriver::Session;
use common::State;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the real OpenClaw, Xvfb, a D-Bus session and tauri-driver: run by scripts/interop.sh"]
async fn attached_to_openclaw_the_desktop_approves_its_requests() {
    let p = peer();
    let st = State::new();
    let home = st.dir.path().join("oc");
    let state = home.join(".openclaw");
    // A chat sender waits ("dave"), taken in by OpenClaw from its legacy file at start.
    let mut oc = OpenClawGateway::start_with_a_waiting_sender(&p, &home);

    // ClawPair, attached: it finds OpenClaw through OPENCLAW_STATE_DIR, token included.
    st.write(
        "clawpair.json",
        &json!({ "ui": { "notifications": true, "showGuide": false } }).to_string(),
    );
    let notifyd = Notifyd::start()
        .await
        .expect("stand-in notification server");
    let app = Launch::on(st.path())
        .arg("--attach")
        .env("OPENCLAW_STATE_DIR", &state)
        .start_async()
        .await;
    let ui = |f: Box<dyn FnOnce(&Session) -> Value + Send>| app.ui(f);
    let attached = "document.querySelector('#gateway-status .text').textContent.startsWith('Attached to OpenClaw')";
    ui(Box::new(move |s| {
        s.wait_for("#nav-requests", WAIT);
        s.wait_until(attached, WAIT);
        Value::Null
    }))
    .await;

    // The chat-sender request OpenClaw holds is in the window; approving it there approves
    // it on OpenClaw.
    ui(Box::new(|s| {
        s.click("#nav-requests");
        s.wait_for(
            "#dm-list .card[data-channel='telegram'] [data-action='approve-dm']",
            WAIT,
        );
        assert!(s.text("#dm-list").contains("@dave"));
        assert!(
            s.find("#attached-note:not([hidden])").is_some(),
            "what differs is said"
        );
        keep(&s.screenshot(), "attached-requests.png");
        s.click("#dm-list .card[data-channel='telegram'] [data-action='approve-dm']");
        s.wait_none("#dm-list .card", WAIT);
        s.click("#nav-allowlists");
        s.wait_for("tr[data-sender='4242']", WAIT);
        assert!(
            s.text("tr[data-sender='4242']").contains("in OpenClaw"),
            "read-only"
        );
        keep(&s.screenshot(), "attached-allowlists.png");
        Value::Null
    }))
    .await;

    // A device pairs with OpenClaw's own setup code: ClawPair's notification shows its
    // fingerprint, and its Approve approves it on OpenClaw.
    let setup = |p: &common::openclaw::Peer| oc.bootstrap_token(p);
    let phone = |name: &str, bootstrap: String| {
        json!({ "url": oc.url, "stateDir": st.dir.path().join(name), "bootstrapToken": bootstrap,
                "role": "node", "scopes": [], "displayName": name })
    };
    let (lines, _) =
        tokio::task::block_in_place(|| p.client(st.dir.path(), phone("Pixel", setup(&p))));
    let request = lines
        .iter()
        .find_map(|l| l["connectError"]["details"]["requestId"].as_str())
        .unwrap_or_else(|| panic!("{lines:?}"))
        .to_string();
    let n = notifyd.wait_shown("Pixel", WAIT).await.unwrap();
    assert!(n.actions.iter().any(|a| a == "approve"), "{:?}", n.actions);
    let paired_on_openclaw = || oc.has_paired(&p, "Pixel");
    notifyd
        .press_and_wait(n.id, "approve", paired_on_openclaw, WAIT)
        .await
        .expect("approved on OpenClaw from the notification");
    let _ = request;

    // The paired Pixel comes back declaring a command: OpenClaw asks, ClawPair notifies with
    // what it asks to expose, and Approve on the notification approves it on OpenClaw.
    let node = |commands: Value| {
        json!({ "url": oc.url, "stateDir": st.dir.path().join("Pixel"), "token": oc.token,
                "role": "node", "scopes": [], "displayName": "Pixel", "commands": commands })
    };
    let (lines, code) =
        tokio::task::block_in_place(|| p.client(st.dir.path(), node(json!(["screen.snapshot"]))));
    assert_eq!(code, 0, "{lines:?}");
    let n = notifyd.wait_shown("screen.snapshot", WAIT).await.unwrap();
    assert!(n.summary.contains("node"), "{}", n.summary);
    assert!(n.actions.iter().any(|a| a == "approve"), "{:?}", n.actions);
    let nodes_pending = || -> Value {
        let o = tokio::task::block_in_place(|| {
            p.run(
                &home,
                &[
                    "nodes", "pending", "--url", &oc.url, "--token", &oc.token, "--json",
                ],
            )
        });
        serde_json::from_slice(&o.stdout).unwrap_or(Value::Null)
    };
    notifyd
        .press_and_wait(n.id, "approve", || nodes_pending() == json!([]), WAIT)
        .await
        .expect("the node's command approved on OpenClaw from the notification");

    // It asks for a command that runs programs: the notification only offers Review…; the
    // window shows the card with what it would take, and Reject there settles it.
    tokio::task::block_in_place(|| {
        p.client(
            st.dir.path(),
            node(json!(["screen.snapshot", "system.run"])),
        )
    });
    let n = notifyd.wait_shown("system.run", WAIT).await.unwrap();
    assert!(
        n.actions.iter().any(|a| a == "review") && !n.actions.iter().any(|a| a == "approve"),
        "{:?}",
        n.actions
    );
    ui(Box::new(|s| {
        s.click("#nav-requests");
        s.wait_for("#node-list [data-action='reject-node']", WAIT);
        s.says("#node-list", &["system.run"]);
        s.says("#node-list", &["operator.admin"]);
        keep(&s.screenshot(), "attached-node-request.png");
        s.click("#node-list [data-action='reject-node']");
        s.wait_none("#node-list .card", WAIT);
        Value::Null
    }))
    .await;
    notifyd
        .wait_closed(n.id, WAIT)
        .await
        .expect("the notification closes once decided in the window");
    assert_eq!(nodes_pending(), json!([]), "nothing waits in OpenClaw");

    // An agent asks to run a command: the notification shows the command line and where it
    // would run, with Allow once / Always allow / Deny; Allow once is what OpenClaw records.
    let ask = |command: &str| -> String {
        let accepted = tokio::task::block_in_place(|| oc.ask_exec(&p, st.dir.path(), command));
        accepted["id"]
            .as_str()
            .unwrap_or_else(|| panic!("{accepted}"))
            .to_string()
    };
    let status_of = |id: &str| -> String {
        let record = tokio::task::block_in_place(|| oc.approval_record(&p, st.dir.path(), id));
        record["status"].as_str().unwrap_or_default().to_string()
    };
    let id = ask("ls -la /srv");
    let n = notifyd.wait_shown("ls -la /srv", WAIT).await.unwrap();
    assert!(
        n.body.contains("/srv/app") && n.body.contains("agent main"),
        "{}",
        n.body
    );
    for a in ["allow-once", "allow-always", "deny"] {
        assert!(
            n.actions.iter().any(|x| x == a),
            "{a} offered: {:?}",
            n.actions
        );
    }
    notifyd
        .press_and_wait(n.id, "allow-once", || status_of(&id) == "allowed", WAIT)
        .await
        .expect("allowed once from the notification, as OpenClaw records it");

    // Denied from the window: the card names the command and where it would run.
    let id = ask("rm -rf /srv/cache");
    let n = notifyd.wait_shown("rm -rf /srv/cache", WAIT).await.unwrap();
    ui(Box::new(|s| {
        s.click("#nav-requests");
        s.wait_for("#exec-list [data-action='exec-deny']", WAIT);
        s.says("#exec-list", &["rm -rf /srv/cache"]);
        s.says("#exec-list", &["in /srv/app"]);
        keep(&s.screenshot(), "attached-exec-approval.png");
        s.click("#exec-list [data-action='exec-deny']");
        s.wait_none("#exec-list .card", WAIT);
        Value::Null
    }))
    .await;
    notifyd
        .wait_closed(n.id, WAIT)
        .await
        .expect("the notification closes once answered in the window");
    assert_eq!(status_of(&id), "denied", "denied, as OpenClaw records it");

    // A plugin asks before it acts: a notification with its title and words, a card in the
    // same section; allowed once from the notification, as OpenClaw records it.
    let asked =
        tokio::task::block_in_place(|| oc.ask_plugin(&p, st.dir.path(), "Post to the blog"));
    let id = asked["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{asked:?}"))
        .to_string();
    let n = notifyd.wait_shown("Post to the blog", WAIT).await.unwrap();
    assert_eq!(n.summary, "A plugin asks before it acts");
    assert!(
        n.body.contains("Publishes the draft") && n.body.contains("plugin blog"),
        "{}",
        n.body
    );
    ui(Box::new(|s| {
        s.click("#nav-requests");
        s.wait_for("#exec-list [data-action='exec-allow-once']", WAIT);
        s.says(
            "#exec-list",
            &["plugin", "Post to the blog", "Publishes the draft"],
        );
        keep(&s.screenshot(), "attached-plugin-approval.png");
        Value::Null
    }))
    .await;
    notifyd
        .press_and_wait(n.id, "allow-once", || status_of(&id) == "allowed", WAIT)
        .await
        .expect("allowed once from the notification, as OpenClaw records it");

    // Approved with OpenClaw's own CLI: ClawPair's notification closes.
    let (lines, _) =
        tokio::task::block_in_place(|| p.client(st.dir.path(), phone("Tablet", setup(&p))));
    let other = lines
        .iter()
        .find_map(|l| l["connectError"]["details"]["requestId"].as_str())
        .unwrap_or_else(|| panic!("{lines:?}"))
        .to_string();
    let n = notifyd.wait_shown("Tablet", WAIT).await.unwrap();
    tokio::task::block_in_place(|| oc.devices(&p, &["approve", &other]));
    notifyd
        .wait_closed(n.id, WAIT)
        .await
        .expect("closed when settled in OpenClaw");
    ui(Box::new(|s| {
        s.click("#nav-devices");
        s.wait_until(
            "document.querySelectorAll('#devices-table tbody tr').length >= 2",
            WAIT,
        );
        keep(&s.screenshot(), "attached-devices.png");
        Value::Null
    }))
    .await;

    // Pair a phone: the QR carries a setup code from OpenClaw's gateway.
    let shown = ui(Box::new(|s| {
        s.click("#nav-pair");
        s.wait_until(
            "!document.getElementById('pair-code').hidden || !document.getElementById('pair-error').hidden || !document.getElementById('pair-loopback').hidden",
            WAIT,
        );
        s.execute(
            "return { code: document.getElementById('pair-setup-code').textContent, \
                      error: document.getElementById('pair-error').hidden ? '' : document.getElementById('pair-error').textContent, \
                      loopback: !document.getElementById('pair-loopback').hidden };",
        )
    }))
    .await;
    // OpenClaw's gateway listens on loopback here: the window says OpenClaw's reason and
    // takes a URL phones can reach, for which OpenClaw makes the code.
    assert_eq!(shown["loopback"], true, "{shown}");
    let port = oc.url.rsplit(':').next().unwrap().to_string();
    let lan = format!("ws://192.168.1.20:{port}");
    let typed = lan.clone();
    let code = ui(Box::new(move |s| {
        assert!(s.find("#pair-expose-box[hidden]").is_some(), "no 'listen on my network' for OpenClaw's gateway");
        s.type_into("#pair-url", &typed);
        s.click("#pair-url-form button[type=submit]");
        s.wait_until(
            "!document.getElementById('pair-code').hidden || !document.getElementById('pair-error').hidden || document.getElementById('pair-attached-text').textContent.includes('192.168')",
            WAIT,
        );
        s.execute(
            "return { code: document.getElementById('pair-setup-code').textContent, \
                      error: document.getElementById('pair-error').textContent, \
                      said: document.getElementById('pair-attached-text').textContent };",
        )
    }))
    .await;
    let payload =
        clawpair_core::pairing::setup::decode_setup_code(code["code"].as_str().unwrap_or_default())
            .unwrap_or_else(|e| panic!("no setup code shown ({e}): {code}"));
    assert_eq!(payload.url, lan);
    ui(Box::new(|s| {
        keep(&s.screenshot(), "attached-pair-a-phone.png");
        Value::Null
    }))
    .await;

    // OpenClaw restarts: the window says ClawPair is detached, then attached again.
    tokio::task::block_in_place(|| oc.restart(&p));
    ui(Box::new(move |s| {
        s.wait_until(attached, WAIT);
        s.click("#nav-requests");
        s.wait_for("#dm-list", WAIT);
        Value::Null
    }))
    .await;

    // A second OpenClaw gateway, added on the command line while the app runs: the app
    // attaches to both, and a device asking the second is approved there from its
    // notification, which names the gateway.
    let home_b = st.dir.path().join("oc-b");
    let b = tokio::task::block_in_place(|| OpenClawGateway::start(&p, &home_b));
    let added = tokio::task::block_in_place(|| {
        st.run_with_input(
            &[
                "attach",
                "add",
                &b.url,
                "--label",
                "second",
                "--token-stdin",
            ],
            &format!("{}\n", b.token),
        )
    });
    assert!(added.status.success(), "{added:?}");
    ui(Box::new(move |s| {
        s.wait_until(
            "document.querySelector('#gateway-status .text').textContent.startsWith('Attached to 2 OpenClaw gateways')",
            WAIT,
        );
        Value::Null
    }))
    .await;
    tokio::task::block_in_place(|| {
        let spec = json!({ "url": b.url, "stateDir": st.dir.path().join("Chromebook"),
            "bootstrapToken": b.bootstrap_token(&p), "role": "node", "scopes": [], "displayName": "Chromebook" });
        p.client(st.dir.path(), spec)
    });
    let n = notifyd.wait_shown("Chromebook", WAIT).await.unwrap();
    assert!(
        n.body.contains("At second."),
        "the gateway is named: {:?}",
        notifyd.shown()
    );
    ui(Box::new(|s| {
        s.click("#nav-requests");
        // Read where the chip is at each moment: the list can render again between finding
        // the element and reading it, and a replaced element reads as empty.
        s.wait_until(
            "document.querySelector('#device-list .card .gateway-chip')?.innerText === 'second'",
            WAIT,
        );
        keep(&s.screenshot(), "attached-two-gateways-requests.png");
        Value::Null
    }))
    .await;
    let paired_on_second = || b.has_paired(&p, "Chromebook");
    notifyd
        .press_and_wait(n.id, "approve", paired_on_second, WAIT)
        .await
        .expect("approved on the second gateway from the notification");
    ui(Box::new(|s| {
        s.click("#nav-settings");
        s.wait_until(
            "document.getElementById('set-oc-gateways').textContent.includes('second')",
            WAIT,
        );
        // After the view has put the focus on its heading (which scrolls to the top).
        std::thread::sleep(Duration::from_millis(500));
        s.execute("document.getElementById('set-oc-gateways').scrollIntoView({ block: 'center' })");
        keep(&s.screenshot(), "attached-two-gateways.png");
        // ClawPair's own gateway kept running beside them, at a click.
        s.click("#set-oc-own");
        s.wait_until(
            "document.getElementById('set-oc-gateways').textContent.includes(\"ClawPair's own gateway, listening at\")",
            WAIT,
        );
        Value::Null
    }))
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    app.end().await;
}
