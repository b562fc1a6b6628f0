//! The real app, end to end, under Xvfb: driven through tauri-driver and WebKitWebDriver, with a
//! stand-in notification server on a private D-Bus session bus. Run by scripts/test.sh as
//! `dbus-run-session -- env NO_AT_BRIDGE=1 xvfb-run -a cargo test --test gui_e2e -- --ignored`.
#![cfg(feature = "gui")]

mod common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clawpair::client::{Auth, Client, ConnectOptions, Identity};
use clawpair::devtools::notifyd::Notifyd;
use common::webdriver::Session;
use common::State;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tauri_driver(port: u16, native: u16) -> Driver {
    let bin = std::env::var("TAURI_DRIVER").unwrap_or_else(|_| {
        let home = std::env::var("HOME").unwrap_or_default();
        let local = format!("{home}/.cargo/bin/tauri-driver");
        if std::path::Path::new(&local).exists() {
            local
        } else {
            "tauri-driver".into()
        }
    });
    let child = Command::new(bin)
        .args([
            "--port",
            &port.to_string(),
            "--native-port",
            &native.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start tauri-driver (cargo install tauri-driver --locked --version ^2)");
    let end = Instant::now() + WAIT;
    while ureq::get(&format!("http://127.0.0.1:{port}/status"))
        .call()
        .is_err()
    {
        assert!(Instant::now() < end, "tauri-driver did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Driver(child)
}

fn wait_file(path: &std::path::Path, pred: impl Fn(&str) -> bool, what: &str) {
    let end = Instant::now() + WAIT;
    loop {
        if let Ok(t) = std::fs::read_to_string(path) {
            if pred(&t) {
                return;
            }
        }
        assert!(
            Instant::now() < end,
            "{what}: {} not as expected",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Saves a screenshot where CLAWPAIR_SCREENSHOTS points (docs/screenshots when refreshing docs).
fn keep(png: &[u8], name: &str) {
    if let Ok(dir) = std::env::var("CLAWPAIR_SCREENSHOTS") {
        let _ = std::fs::create_dir_all(&dir);
        std::fs::write(std::path::Path::new(&dir).join(name), png).unwrap();
    }
}

/// The text of the QR code in a screenshot, if one can be read.
fn try_decode_qr(png: &[u8]) -> Option<String> {
    let img = image::load_from_memory(png).ok()?.to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(img);
    let grids = prepared.detect_grids();
    grids.first()?.decode().ok().map(|(_, text)| text)
}

async fn inbound(bridge: &mut Client, sender: &str, name: &str) -> Value {
    bridge
        .call("channel.inbound", json!({ "channel": "telegram", "senderId": sender, "text": "hello", "meta": { "username": name } }))
        .await
        .expect("inbound")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Xvfb, a D-Bus session and tauri-driver: run by scripts/test.sh"]
async fn owner_approves_from_notifications_and_pairs_a_phone_from_the_window() {
    let st = State::new();
    let port = free_port();
    st.write(
        "clawpair.json",
        &json!({ "gateway": { "bind": "127.0.0.1", "port": port }, "ui": { "notifications": true, "showGuide": false } }).to_string(),
    );
    st.ok(&["doctor", "--fix"]); // settings completed (admin token) and modes tightened
    let settings: Value = serde_json::from_str(&st.read("clawpair.json")).unwrap();
    let token = settings["gateway"]["auth"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    let notifyd = Notifyd::start()
        .await
        .expect("stand-in notification server");
    // Start at login writes here (inherited by tauri-driver, WebKitWebDriver and the app).
    let xdg = st.dir.path().join("xdg-config");
    std::env::set_var("XDG_CONFIG_HOME", &xdg);

    let (dport, nport) = (free_port(), free_port());
    let _driver = tauri_driver(dport, nport);
    let app = env!("CARGO_BIN_EXE_clawpair").to_string();
    let state_dir = st.path().display().to_string();
    let session = tokio::task::spawn_blocking(move || {
        Session::start(
            &format!("http://127.0.0.1:{dport}"),
            &app,
            &["--state-dir".into(), state_dir, "--show".into()],
        )
    })
    .await
    .unwrap();
    let s = std::sync::Arc::new(session);
    let ui = |f: Box<dyn FnOnce(&Session) -> Value + Send>| {
        let s = s.clone();
        async move { tokio::task::spawn_blocking(move || f(&s)).await.unwrap() }
    };

    // The window is up and its gateway listens where the settings say.
    ui(Box::new(|s| {
        s.wait_for("#nav-requests", WAIT);
        s.wait_until(
            "document.querySelector('#gateway-status .text').textContent.includes('Gateway on')",
            WAIT,
        );
        Value::Null
    }))
    .await;
    let url = format!("ws://127.0.0.1:{port}/");
    let mut bridge = Client::connect(
        &ConnectOptions::operator(&url, &token, "test-bridge"),
        |_, _| {},
    )
    .await
    .expect("bridge connects");

    // A DM arrives → a notification → Approve → the sender is in the allowlist file and the window.
    let d = inbound(&mut bridge, "4242", "alice").await;
    assert_eq!(d["decision"], "challenge");
    let n = notifyd.wait_shown("alice", WAIT).await.unwrap();
    assert_eq!(n.summary, "Pairing request · telegram");
    assert!(n.body.contains(d["code"].as_str().unwrap()), "{}", n.body);
    assert!(
        n.actions.windows(2).any(|w| w == ["approve", "Approve"])
            && n.actions.windows(2).any(|w| w == ["reject", "Reject"]),
        "{:?}",
        n.actions
    );
    ui(Box::new(|s| {
        s.wait_until(
            "document.querySelectorAll('#dm-list .card').length === 1",
            WAIT,
        );
        Value::Null
    }))
    .await;
    let allow_file = st.file("credentials/telegram-allowFrom.json");
    notifyd
        .press_and_wait(
            n.id,
            "approve",
            || std::fs::read_to_string(&allow_file).is_ok_and(|t| t.contains("\"4242\"")),
            WAIT,
        )
        .await
        .unwrap();
    wait_file(
        &st.file("credentials/telegram-allowFrom.json"),
        |t| t.contains("\"4242\""),
        "approved sender",
    );
    ui(Box::new(|s| {
        s.wait_until(
            "document.querySelectorAll('#dm-list .card').length === 0",
            WAIT,
        );
        s.click("#nav-allowlists");
        s.wait_for("tr[data-sender='4242']", WAIT);
        assert!(
            s.text("tr[data-sender='4242']").contains("notification"),
            "approved via the notification"
        );
        keep(&s.screenshot(), "allowlists.png");
        Value::Null
    }))
    .await;

    // Reject on another → the request is gone.
    let d = inbound(&mut bridge, "4343", "mallory").await;
    let n = notifyd.wait_shown("mallory", WAIT).await.unwrap();
    let code = d["code"].as_str().unwrap().to_string();
    let pairing_file = st.file("credentials/telegram-pairing.json");
    notifyd
        .press_and_wait(
            n.id,
            "reject",
            || std::fs::read_to_string(&pairing_file).is_ok_and(|t| !t.contains(&code)),
            WAIT,
        )
        .await
        .unwrap();
    wait_file(
        &st.file("credentials/telegram-pairing.json"),
        |t| !t.contains(&code),
        "rejected request removed",
    );
    assert!(!st
        .read("credentials/telegram-allowFrom.json")
        .contains("4343"));

    // Approved by the CLI → its notification is closed.
    let d = inbound(&mut bridge, "4444", "carol").await;
    let n = notifyd.wait_shown("carol", WAIT).await.unwrap();
    let o = common::gw::cli(
        st.path(),
        &[
            "pairing",
            "approve",
            "telegram",
            d["code"].as_str().unwrap(),
        ],
    )
    .await;
    assert!(o.status.success(), "{}", common::stderr(&o));
    notifyd.wait_closed(n.id, WAIT).await.unwrap();

    // One sender stays waiting, so the Requests page shows both kinds below.
    inbound(&mut bridge, "4545", "dave").await;
    notifyd.wait_shown("dave", WAIT).await.unwrap();

    // Pair a phone: loopback explained with a fix; a URL given; the QR decodes; a device
    // connects with it; its notification shows the fingerprint; Approve; it gets its token.
    ui(Box::new(|s| {
        s.click("#nav-pair");
        s.wait_for("#pair-loopback", WAIT);
        assert!(s.text("#pair-loopback").contains("127.0.0.1"));
        keep(&s.screenshot(), "pair-loopback.png");
        Value::Null
    }))
    .await;
    let typed = url.clone();
    let png = ui(Box::new(move |s| {
        s.type_into("#pair-url", &typed);
        s.click("#pair-url-form button[type=submit]");
        s.wait_for("#pair-qr", WAIT);
        s.wait_until("document.getElementById('pair-qr').complete && document.getElementById('pair-qr').naturalWidth > 0", WAIT);
        // The first frame after the image loads may not be painted yet: look until it reads.
        let mut png = Vec::new();
        for _ in 0..25 {
            png = s.screenshot();
            if let Some(text) = try_decode_qr(&png) {
                keep(&png, "pair-a-phone.png");
                return json!({ "qr": text, "shown": s.text("#pair-setup-code") });
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let kept = std::env::temp_dir().join("clawpair-e2e-no-qr.png");
        let _ = std::fs::write(&kept, &png);
        panic!("no QR code could be read from the window (last screenshot: {})", kept.display());
    }))
    .await;
    let setup = png["qr"].as_str().unwrap().to_string();
    assert_eq!(
        png["shown"].as_str().unwrap(),
        setup,
        "the QR holds the setup code shown beside it"
    );
    let payload =
        clawpair::pairing::setup::decode_setup_code(&setup).expect("the QR holds a setup code");
    assert_eq!(payload.url, url.trim_end_matches('/'));

    let phone = Identity::generate();
    let mut opts = ConnectOptions::node(
        &url,
        phone.clone(),
        Auth::BootstrapToken(payload.bootstrap_token.clone()),
    );
    opts.display_name = Some("Test Pixel".into());
    opts.platform = "android".into();
    opts.wait_for_approval = true;
    let waiting = tokio::spawn(async move { Client::connect(&opts, |_, _| {}).await });
    let n = notifyd
        .wait_shown(&phone.fingerprint(), WAIT)
        .await
        .unwrap();
    assert!(n.body.contains("Test Pixel"), "{}", n.body);
    ui(Box::new(|s| {
        s.click("#nav-requests");
        s.wait_until("document.querySelectorAll('#device-list .card').length === 1 && document.querySelectorAll('#dm-list .card').length === 1", WAIT);
        keep(&s.screenshot(), "requests.png");
        Value::Null
    }))
    .await;
    let paired_file = st.file("devices/paired.json");
    let device = phone.device_id();
    notifyd
        .press_and_wait(
            n.id,
            "approve",
            || std::fs::read_to_string(&paired_file).is_ok_and(|t| t.contains(&device)),
            WAIT,
        )
        .await
        .unwrap();
    let c = tokio::time::timeout(WAIT, waiting)
        .await
        .expect("phone answered")
        .unwrap()
        .expect("hello-ok");
    assert!(
        c.hello["auth"]["deviceToken"].as_str().is_some(),
        "the phone got its token"
    );

    // A device asking for full access (OpenClaw's clients ask for operator.admin by default):
    // its notification offers Review…, not Approve; Review opens the Requests view, where the
    // owner approves it without admin; its hello-ok reports what was granted.
    let code: Value = serde_json::from_slice(
        &common::gw::cli(st.path(), &["qr", "--url", &url, "--json"])
            .await
            .stdout,
    )
    .expect("qr --json");
    let admin_setup =
        clawpair::pairing::setup::decode_setup_code(code["setupCode"].as_str().unwrap())
            .unwrap()
            .bootstrap_token;
    let laptop = Identity::generate();
    let mut opts = ConnectOptions::node(&url, laptop.clone(), Auth::BootstrapToken(admin_setup));
    opts.display_name = Some("Ops laptop".into());
    opts.role = "operator".into();
    opts.client_mode = "backend".into();
    opts.scopes = vec!["operator.admin".into(), "operator.read".into()];
    opts.wait_for_approval = true;
    let waiting = tokio::spawn(async move { Client::connect(&opts, |_, _| {}).await });
    let n = notifyd
        .wait_shown(&laptop.fingerprint(), WAIT)
        .await
        .unwrap();
    assert!(
        n.actions.windows(2).any(|w| w == ["review", "Review…"])
            && !n.actions.iter().any(|a| a == "approve"),
        "full access is not one click: {:?}",
        n.actions
    );
    assert!(n.body.contains("operator.admin"), "{}", n.body);
    ui(Box::new(|s| {
        s.click("#nav-activity");
        s.wait_for("#view-activity:not([hidden])", WAIT);
        Value::Null
    }))
    .await;
    notifyd.press(n.id, "review").await.unwrap();
    let request = "#device-list [data-action='approve-device-limited']";
    ui(Box::new(move |s| {
        s.wait_for("#view-requests:not([hidden])", WAIT);
        s.wait_for(request, WAIT);
        assert!(s
            .find("#device-list [data-action='approve-device-full']")
            .is_some());
        assert!(s
            .find("#device-list [data-action='approve-device']")
            .is_none());
        s.click(request);
        Value::Null
    }))
    .await;
    let c = tokio::time::timeout(WAIT, waiting)
        .await
        .expect("laptop answered")
        .unwrap()
        .expect("hello-ok");
    assert_eq!(c.hello["auth"]["scopes"], json!(["operator.read"]));

    let device_id = phone.device_id();
    let fp = phone.fingerprint();
    ui(Box::new(move |s| {
        s.click("#nav-devices");
        let row = format!("tr[data-device='{device_id}']");
        s.wait_for(&row, WAIT);
        assert!(s.text(&row).contains(&fp));
        keep(&s.screenshot(), "devices.png");
        s.click("#nav-activity");
        s.wait_until(
            "document.querySelectorAll('#activity-list tbody tr').length > 3",
            WAIT,
        );
        keep(&s.screenshot(), "activity.png");
        // Readable at 800×600: nothing wider than the window on the busiest pages.
        s.set_window_size(800, 600);
        for page in [
            "#nav-requests",
            "#nav-devices",
            "#nav-activity",
            "#nav-pair",
        ] {
            s.click(page);
            s.wait_until(
                "document.documentElement.scrollWidth <= window.innerWidth + 1",
                WAIT,
            );
        }
        s.set_window_size(1000, 700);
        s.click("#nav-settings");
        s.wait_until("document.getElementById('set-port').value !== ''", WAIT);
        keep(&s.screenshot(), "settings.png");
        s.click("#set-autostart");
        s.click("#settings-form button[type=submit]");
        Value::Null
    }))
    .await;
    wait_file(
        &xdg.join("autostart/clawpair.desktop"),
        |t| t.contains("--hidden"),
        "start at login entry",
    );

    // A second launch only brings the running one forward, and exits.
    let mut second = Command::new(env!("CARGO_BIN_EXE_clawpair"))
        .arg("--state-dir")
        .arg(st.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("second launch");
    let end = Instant::now() + WAIT;
    let status = loop {
        if let Some(st) = second.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > end {
            let _ = second.kill();
            panic!("a second launch kept running instead of handing over to the first");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success());
    ui(Box::new(|s| {
        s.wait_for("#view-settings", WAIT);
        Value::Null
    }))
    .await;
    if let Ok(s) = std::sync::Arc::try_unwrap(s) {
        tokio::task::spawn_blocking(move || s.end()).await.unwrap();
    }
}

#[test]
#[ignore = "needs Xvfb, a D-Bus session and tauri-driver: run by scripts/test.sh"]
fn first_run_opens_on_the_guide_and_never_again() {
    let st = State::new();
    assert!(!st.file("clawpair.json").exists(), "an empty state dir");
    let app = env!("CARGO_BIN_EXE_clawpair").to_string();
    let args = vec![
        "--state-dir".to_string(),
        st.path().display().to_string(),
        "--show".into(),
    ];
    for run in 0..2 {
        let (dport, nport) = (free_port(), free_port());
        let _driver = tauri_driver(dport, nport);
        let s = Session::start(&format!("http://127.0.0.1:{dport}"), &app, &args);
        if run == 0 {
            s.wait_for("#view-guide", WAIT);
            let text = s.text("#view-guide");
            for words in [
                "What it guards",
                "secret",
                "Approve",
                "Pair a phone",
                "loopback",
                "Telegram",
            ] {
                assert!(text.contains(words), "the guide explains {words:?}: {text}");
            }
            assert!(
                text.contains(&st.path().display().to_string()),
                "the guide names the state dir"
            );
            keep(&s.screenshot(), "first-run.png");
            s.click("#guide-done");
            s.wait_for("#view-requests", WAIT);
            assert!(st.file("clawpair.json").exists());
        } else {
            s.wait_for("#view-requests", WAIT);
            assert!(
                !s.displayed(&s.find("#view-guide").unwrap()),
                "the guide shows only once"
            );
        }
        s.end();
        wait_app_gone(&st);
    }
}

/// Waits until no app serves this state dir any more (its run record is removed on exit).
fn wait_app_gone(st: &State) {
    let end = Instant::now() + WAIT;
    while st.file("run/gateway.json").exists() {
        if let Ok(t) = std::fs::read_to_string(st.file("run/gateway.json")) {
            let pid = serde_json::from_str::<Value>(&t)
                .ok()
                .and_then(|v| v["pid"].as_u64())
                .unwrap_or(0);
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                return;
            }
        }
        assert!(
            Instant::now() < end,
            "the app did not exit after the session ended"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
