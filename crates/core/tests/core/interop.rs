//! ClawPair against the real OpenClaw 2026.9.6 (from npm): OpenClaw's own GatewayClient, its
//! `openclaw devices` CLI and its node host pair with and manage `clawpair gateway`; ClawPair's
//! client pairs with `openclaw gateway run`; `openclaw doctor` beside ClawPair's state leaves
//! it alone; `clawpair import --from-openclaw` reads a store OpenClaw wrote, and a device paired
//! there keeps working here. Run by scripts/interop.sh, inside a loopback-only network
//! namespace with a private /tmp (OpenClaw looks up internet hosts when it starts).

use crate::common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::openclaw::{peer, text, OpenClawGateway, Peer, Proc, WAIT};
use common::State;
use serde_json::{json, Value};

/// `clawpair gateway` as a child process on a free port, with its admin token and URL.
struct ClawGateway {
    _proc: Proc,
    url: String,
    token: String,
}

fn clawpair(state: &Path) -> Command {
    let mut c = Command::new(crate::CLAWPAIR);
    c.arg("--state-dir")
        .arg(state)
        .env_remove("OPENCLAW_STATE_DIR")
        .env_remove("CLAWPAIR_STATE_DIR")
        .env("RUST_LOG", "warn");
    c
}

fn ok(mut c: Command) -> String {
    let o = c.output().expect("run");
    assert!(
        o.status.success(),
        "{c:?} failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn cp(state: &Path, args: &[&str]) -> String {
    let mut c = clawpair(state);
    c.args(args);
    ok(c)
}

impl ClawGateway {
    fn start(st: &State) -> ClawGateway {
        let mut c = clawpair(st.path());
        c.args(["gateway", "--port", "0"]);
        let mut proc = Proc::spawn(c, st.dir.path().join("gateway.log"));
        let record = st.file("run/gateway.json");
        let end = Instant::now() + WAIT;
        let address = loop {
            if let Some(a) = std::fs::read_to_string(&record)
                .ok()
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                .and_then(|v| v["address"].as_str().map(String::from))
            {
                break a;
            }
            assert!(
                proc.alive() && Instant::now() < end,
                "gateway did not start:\n{}",
                proc.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let settings: Value = serde_json::from_str(&st.read("clawpair.json")).unwrap();
        ClawGateway {
            _proc: proc,
            url: format!("ws://{address}"),
            token: settings["gateway"]["auth"]["token"]
                .as_str()
                .unwrap()
                .to_string(),
        }
    }

    /// A new setup code (through the running gateway) and its bootstrap token.
    fn setup_code(&self, st: &State) -> (String, String) {
        let v: Value =
            serde_json::from_str(&cp(st.path(), &["qr", "--url", &self.url, "--json"])).unwrap();
        let code = v["setupCode"].as_str().unwrap().to_string();
        let token = clawpair_core::pairing::setup::decode_setup_code(&code)
            .unwrap()
            .bootstrap_token;
        (code, token)
    }
}

fn pending(st: &State) -> Vec<Value> {
    let v: Value = serde_json::from_str(&cp(st.path(), &["devices", "list", "--json"])).unwrap();
    v["pending"].as_array().cloned().unwrap_or_default()
}

fn paired(st: &State) -> Vec<Value> {
    let v: Value = serde_json::from_str(&cp(st.path(), &["devices", "list", "--json"])).unwrap();
    v["paired"].as_array().cloned().unwrap_or_default()
}

fn hello(lines: &[Value]) -> &Value {
    lines
        .iter()
        .find_map(|l| l.get("hello"))
        .unwrap_or_else(|| panic!("no hello-ok: {lines:?}"))
}

fn connect_error(lines: &[Value]) -> &Value {
    lines
        .iter()
        .find_map(|l| l.get("connectError"))
        .unwrap_or_else(|| panic!("no connect error: {lines:?}"))
}

/// `openclaw devices … --url … --token …` against a gateway.
fn oc_devices(p: &Peer, home: &Path, gw: &ClawGateway, args: &[&str]) -> Output {
    let mut all = vec!["devices"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--url", &gw.url, "--token", &gw.token]);
    p.run(home, &all)
}

#[test]
#[ignore = "needs the real OpenClaw in a loopback-only namespace: run by scripts/interop.sh"]
fn openclaws_gateway_client_connects_with_the_admin_token_and_lists_devices() {
    let p = peer();
    let st = State::new();
    let gw = ClawGateway::start(&st);
    let (lines, code) = p.client(
        st.dir.path(),
        json!({ "url": gw.url, "stateDir": st.dir.path().join("op"), "token": gw.token, "noDevice": true,
                "calls": [{ "method": "device.pair.list" }, { "method": "health" }] }),
    );
    assert_eq!(code, 0, "{lines:?}");
    let h = hello(&lines);
    assert_eq!(h["protocol"], 4);
    assert_eq!(h["auth"]["role"], "operator");
    let results: Vec<&Value> = lines.iter().filter_map(|l| l.get("result")).collect();
    assert_eq!(
        results[0]["payload"],
        json!({ "pending": [], "paired": [] })
    );
    assert_eq!(results[1]["payload"]["ok"], true);
}

#[test]
#[ignore = "needs the real OpenClaw in a loopback-only namespace: run by scripts/interop.sh"]
fn openclaw_devices_pair_from_a_clawpair_setup_code_approved_by_either_cli() {
    let p = peer();
    let st = State::new();
    let gw = ClawGateway::start(&st);
    for approver in ["clawpair", "openclaw"] {
        let phone = st.dir.path().join(format!("phone-{approver}"));
        let (_, bootstrap) = gw.setup_code(&st);
        // OpenClaw's client asks for operator.admin by default: the request says so.
        let spec = json!({ "url": gw.url, "stateDir": phone, "bootstrapToken": bootstrap, "displayName": approver });
        let (lines, _) = p.client(st.dir.path(), spec.clone());
        let e = connect_error(&lines);
        assert_eq!(e["code"], "NOT_PAIRED", "{e}");
        let request_id = e["details"]["requestId"].as_str().unwrap().to_string();
        let req = pending(&st)
            .into_iter()
            .find(|r| r["requestId"] == request_id.as_str())
            .expect("the request is listed");
        assert_eq!(req["scopes"], json!(["operator.admin"]));
        if approver == "clawpair" {
            cp(st.path(), &["devices", "approve", &request_id]);
        } else {
            let o = oc_devices(&p, st.dir.path(), &gw, &["approve", &request_id]);
            assert!(
                o.status.success() && text(&o).contains("Approved"),
                "{}",
                text(&o)
            );
        }
        // Back with the setup code: a device token, which OpenClaw's client stores…
        let (lines, code) = p.client(st.dir.path(), spec);
        assert_eq!(code, 0, "{lines:?}");
        let h = hello(&lines);
        assert_eq!(h["auth"]["method"], "bootstrap-token");
        let token = h["auth"]["deviceToken"]
            .as_str()
            .expect("a device token")
            .to_string();
        assert!(!std::fs::read_to_string(st.file("devices/paired.json"))
            .unwrap()
            .contains(&token));
        // …and reconnects with, on its own.
        let (lines, code) = p.client(
            st.dir.path(),
            json!({ "url": gw.url, "stateDir": phone, "calls": [{ "method": "device.pair.list" }] }),
        );
        assert_eq!(code, 0, "{lines:?}");
        assert_eq!(hello(&lines)["auth"]["method"], "device-token");
    }
    assert_eq!(paired(&st).len(), 2);
}

#[test]
#[ignore = "needs the real OpenClaw in a loopback-only namespace: run by scripts/interop.sh"]
fn openclaws_devices_cli_lists_rejects_renames_rotates_revokes_and_removes() {
    let p = peer();
    let st = State::new();
    let gw = ClawGateway::start(&st);
    let home = st.dir.path();

    // A request, seen by `openclaw devices list`, rejected by `openclaw devices reject`.
    let (_, bootstrap) = gw.setup_code(&st);
    let (lines, _) = p.client(
        home,
        json!({ "url": gw.url, "stateDir": home.join("stranger"), "bootstrapToken": bootstrap }),
    );
    let request_id = connect_error(&lines)["details"]["requestId"]
        .as_str()
        .unwrap()
        .to_string();
    let o = oc_devices(&p, home, &gw, &["list", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let listed: Value = serde_json::from_slice(&o.stdout).expect("devices list --json");
    assert_eq!(listed["pending"][0]["requestId"], request_id.as_str());
    let o = oc_devices(&p, home, &gw, &["reject", &request_id]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(pending(&st).is_empty());

    // A paired device, managed by OpenClaw's CLI.
    let (_, bootstrap) = gw.setup_code(&st);
    let phone = home.join("phone");
    let spec = json!({ "url": gw.url, "stateDir": phone, "bootstrapToken": bootstrap, "role": "node", "scopes": [] });
    let (lines, _) = p.client(home, spec.clone());
    let request_id = connect_error(&lines)["details"]["requestId"]
        .as_str()
        .unwrap()
        .to_string();
    cp(st.path(), &["devices", "approve", &request_id]);
    let (lines, code) = p.client(home, spec);
    assert_eq!(code, 0, "{lines:?}");
    let device = paired(&st)[0]["deviceId"].as_str().unwrap().to_string();

    let o = oc_devices(&p, home, &gw, &["list"]);
    assert!(
        text(&o).contains("node"),
        "the table shows the role: {}",
        text(&o)
    );
    let o = oc_devices(
        &p,
        home,
        &gw,
        &["rename", "--device", &device, "--name", "Kitchen tablet"],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(paired(&st)[0]["operatorLabel"], "Kitchen tablet");
    let o = oc_devices(
        &p,
        home,
        &gw,
        &["rotate", "--device", &device, "--role", "node"],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(paired(&st)[0]["tokens"][0]["rotatedAtMs"].is_i64());
    // The device's old token is dead: OpenClaw's client is told so.
    let (lines, _) = p.client(
        home,
        json!({ "url": gw.url, "stateDir": phone, "role": "node", "scopes": [] }),
    );
    assert_eq!(
        connect_error(&lines)["details"]["code"],
        "AUTH_DEVICE_TOKEN_MISMATCH"
    );
    let o = oc_devices(
        &p,
        home,
        &gw,
        &["revoke", "--device", &device, "--role", "node"],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(paired(&st)[0]["tokens"][0]["revokedAtMs"].is_i64());
    let o = oc_devices(&p, home, &gw, &["remove", &device]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(paired(&st).is_empty());
    // An id that is not there: OpenClaw's CLI says so and fails.
    let o = oc_devices(&p, home, &gw, &["approve", "no-such-request"]);
    assert!(!o.status.success());
}

#[test]
#[ignore = "needs the real OpenClaw in a loopback-only namespace: run by scripts/interop.sh"]
fn openclaws_node_host_pairs_and_stays_connected_past_75_seconds() {
    let p = peer();
    let st = State::new();
    let gw = ClawGateway::start(&st);
    let (code, _) = gw.setup_code(&st);
    let home = st.dir.path().join("node-host");
    std::fs::create_dir_all(&home).unwrap();
    let node = Proc::spawn(
        p.openclaw(
            &home,
            &[
                "node",
                "run",
                "--pair",
                &code,
                "--display-name",
                "Build box",
            ],
        ),
        st.dir.path().join("node-host.log"),
    );
    let mut node = node;
    // It connects, is told to wait, and retries the same request until approved.
    let end = Instant::now() + WAIT;
    let request = loop {
        if let Some(r) = pending(&st).into_iter().next() {
            break r;
        }
        assert!(
            node.alive() && Instant::now() < end,
            "no request:\n{}",
            node.log()
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(request["role"], "node");
    assert_eq!(request["displayName"], "Build box");
    std::thread::sleep(Duration::from_secs(3));
    assert!(!node.log().contains("reconnect paused"), "{}", node.log());
    cp(
        st.path(),
        &["devices", "approve", request["requestId"].as_str().unwrap()],
    );
    node.wait_log("gateway connected", WAIT);
    // Idle for longer than OpenClaw's tick watchdog (2 × 30 s) and its node reports (60 s).
    let connected_at = node.log().len();
    std::thread::sleep(Duration::from_secs(80));
    assert!(node.alive());
    let since = node.log()[connected_at..].to_string();
    assert!(
        !since.contains("closed") && !since.contains("unknown method"),
        "{since}"
    );
    let d = &paired(&st)[0];
    assert_eq!(d["roles"], json!(["node"]));
    assert_eq!(d["displayName"], "Build box");
}

#[test]
#[ignore = "needs the real OpenClaw in a loopback-only namespace: run by scripts/interop.sh"]
fn clawpairs_client_pairs_with_openclaws_gateway_and_keeps_working_after_an_import() {
    let p = peer();
    let st = State::new();
    let home = st.dir.path().join("oc");
    let oc = OpenClawGateway::start(&p, &home);
    let code = oc.setup_code(&p);

    // `clawpair node pair` with OpenClaw's setup code: it waits (retrying, since OpenClaw has
    // no waitForApproval) until `openclaw devices approve`.
    let identity = st.dir.path().join("laptop.json");
    let mut c = clawpair(&st.dir.path().join("laptop-state"));
    c.args([
        "node",
        "pair",
        &code,
        "--name",
        "ClawPair laptop",
        "--identity",
    ])
    .arg(&identity);
    let mut pairing = Proc::spawn(c, st.dir.path().join("node-pair.log"));
    pairing.wait_log("Waiting for the owner", WAIT);
    let listed = oc.devices(&p, &["list"]);
    let req = listed["pending"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["displayName"] == "ClawPair laptop")
        .unwrap_or_else(|| panic!("OpenClaw lists the request: {listed}"))
        .clone();
    assert_eq!(req["clientId"], "gateway-client");
    oc.devices(&p, &["approve", req["requestId"].as_str().unwrap()]);
    pairing.wait_log("Paired as node", WAIT);
    let o = clawpair(&st.dir.path().join("laptop-state"))
        .args(["node", "connect", "--identity"])
        .arg(&identity)
        .output()
        .unwrap();
    assert!(text(&o).contains("Connected to"), "{}", text(&o));

    // The store OpenClaw wrote, imported into a fresh ClawPair: the same device, with the
    // token OpenClaw gave it, connects to ClawPair's gateway.
    let imported = cp(
        st.path(),
        &[
            "import",
            "--from-openclaw",
            &home.join(".openclaw").display().to_string(),
            "--json",
        ],
    );
    let report: Value = serde_json::from_str(&imported).unwrap();
    assert!(
        !imported.contains(&read_token(&identity)),
        "no token in the report"
    );
    assert_eq!(
        report["devices"].as_array().map(Vec::len),
        Some(1),
        "{report}"
    );
    let gw = ClawGateway::start(&st);
    let mut file: Value =
        serde_json::from_str(&std::fs::read_to_string(&identity).unwrap()).unwrap();
    file["gatewayUrl"] = gw.url.clone().into();
    let moved = st.dir.path().join("laptop-here.json");
    std::fs::write(&moved, file.to_string()).unwrap();
    let o = clawpair(&st.dir.path().join("laptop-state"))
        .args(["node", "connect", "--identity"])
        .arg(&moved)
        .output()
        .unwrap();
    assert!(text(&o).contains("Connected to"), "{}", text(&o));
}

fn read_token(identity: &Path) -> String {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(identity).unwrap()).unwrap();
    v["tokens"]["node"]["token"].as_str().unwrap().to_string()
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let mut bytes = Vec::new();
                std::fs::File::open(&path)
                    .unwrap()
                    .read_to_end(&mut bytes)
                    .unwrap();
                out.push((path, bytes));
            }
        }
    }
    out.sort();
    out
}

#[test]
#[ignore = "needs the real OpenClaw in a loopback-only namespace: run by scripts/interop.sh"]
fn openclaw_doctor_beside_clawpair_leaves_clawpairs_state_intact() {
    let p = peer();
    let st = State::new();
    let home = st.dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    // ClawPair in its default place under this home, with something in every file.
    let ours = |args: &[&str]| {
        let mut c = Command::new(crate::CLAWPAIR);
        c.args(args)
            .env("HOME", &home)
            .env_remove("XDG_DATA_HOME")
            .env_remove("CLAWPAIR_STATE_DIR")
            .env_remove("OPENCLAW_STATE_DIR");
        ok(c)
    };
    ours(&["allowlist", "add", "telegram", "111111"]);
    ours(&[
        "allowlist",
        "add",
        "telegram",
        "222222",
        "--account",
        "work",
    ]);
    ours(&["qr", "--url", "ws://192.168.1.20:18789", "--json"]);
    let dir = home.join(".local/share/clawpair");
    assert!(dir.join("clawpair.json").exists());
    let before = snapshot(&dir);

    // OpenClaw's doctor (which imports and deletes JSON pairing files in its own directory).
    let o = p.run(&home, &["doctor", "--non-interactive"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        snapshot(&dir),
        before,
        "OpenClaw's doctor changed nothing of ClawPair's"
    );
    let listed = ours(&["allowlist", "list", "--json"]);
    assert!(
        listed.contains("111111") && listed.contains("222222"),
        "{listed}"
    );
}

/// Waits for an event on the bus that `pick` accepts.
async fn wait_for<T>(
    rx: &mut tokio::sync::broadcast::Receiver<clawpair_core::events::Event>,
    what: &str,
    mut pick: impl FnMut(&clawpair_core::events::Event) -> Option<T>,
) -> T {
    let end = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(end, rx.recv()).await {
            Ok(Ok(e)) => {
                if let Some(t) = pick(&e) {
                    return t;
                }
            }
            Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(e)) => panic!("event stream ended waiting for {what}: {e}"),
            Err(_) => panic!("no {what} within {WAIT:?}"),
        }
    }
}

/// An owner action on the attached gateway, its answer checked against the kind the action
/// declares (what the tray, notifications and CLI read it as).
async fn checked(
    backend: &clawpair_core::attach::Backend,
    via: &str,
    req: &clawpair_core::owner::OwnerRequest,
) -> Result<Value, clawpair_core::rpc::RpcError> {
    let v = backend.call(via, None, req).await?;
    if let Err(e) = req.answer_kind().check(&v) {
        panic!(
            "OpenClaw's answer to {} does not read as {:?}: {e}\n{v:#}",
            req.method(),
            req.answer_kind()
        );
    }
    Ok(v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the real OpenClaw in a loopback-only namespace: run by scripts/interop.sh"]
async fn attached_to_openclaws_gateway_clawpair_is_its_approval_desk() {
    use clawpair_core::approval::ExecDecision;
    use clawpair_core::attach::remote::{Remote, Status, Target, TokenSource};
    use clawpair_core::attach::{discover, Backend};
    use clawpair_core::events::Event;
    use clawpair_core::owner::OwnerRequest;

    let p = peer();
    let st = State::new();
    let home = st.dir.path().join("oc");
    let state = home.join(".openclaw");
    // A chat sender waits ("dave"), taken in by OpenClaw from its legacy file at start.
    let mut oc = OpenClawGateway::start_with_a_waiting_sender(&p, &home);

    // ClawPair finds the installation and its token where OpenClaw keeps them.
    std::env::set_var("OPENCLAW_STATE_DIR", &state);
    let found = discover::find().expect("OpenClaw is installed");
    assert_eq!(found.url, oc.url);
    let service = st.service();
    let service = std::sync::Arc::new(service);
    let mut rx = service.events().subscribe();
    let remote = Remote::spawn(
        Target {
            url: found.url.clone(),
            token: TokenSource::OpenClawConfig {
                state_dir: found.state_dir.clone(),
                config: found.config.clone(),
            },
            // Plain ws:// on loopback: OpenClaw's listener belongs to this user, as checked.
            tls_pin: None,
            local_state: Some(state.clone()),
            label: clawpair_core::attach::THIS_COMPUTER.into(),
        },
        service.events().clone(),
    );
    let backend = Backend::Attached {
        service: service.clone(),
        remotes: vec![remote.clone()],
        own: false,
    };
    let end = tokio::time::Instant::now() + WAIT;
    while !matches!(remote.status(), Status::Attached { .. }) {
        assert!(
            tokio::time::Instant::now() < end,
            "not attached: {:?}",
            remote.status()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The chat-sender request is announced (it has no event in OpenClaw's protocol) and is
    // approved from ClawPair.
    let dm = wait_for(&mut rx, "the chat-sender request", |e| match e {
        Event::PairingRequested(r) if r.id == "4242" => Some(r.clone()),
        _ => None,
    })
    .await;
    assert_eq!(dm.meta["username"], "dave");
    checked(
        &backend,
        "notification",
        &OwnerRequest::DmApprove {
            channel: Some("telegram".into()),
            code: dm.code.clone(),
            account_id: None,
            notify: false,
        },
    )
    .await
    .expect("approved on OpenClaw");
    let listed = checked(&backend, "window", &OwnerRequest::DmList { channel: None })
        .await
        .unwrap();
    assert_eq!(
        listed["requests"],
        json!([]),
        "gone from OpenClaw's requests"
    );
    let allowed = checked(
        &backend,
        "window",
        &OwnerRequest::AllowList { channel: None },
    )
    .await
    .unwrap();
    assert!(
        allowed["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["senderId"] == "4242" && e["readOnly"] == true),
        "{allowed}"
    );

    // A device pairs with OpenClaw's own setup code: its request is announced; approving it
    // from ClawPair approves it on OpenClaw.
    let setup = || oc.bootstrap_token(&p);
    let phone_spec = |name: &str, bootstrap: String| {
        json!({ "url": oc.url, "stateDir": st.dir.path().join(name), "bootstrapToken": bootstrap,
                "role": "node", "scopes": [], "displayName": name })
    };
    let spec = phone_spec("phone-a", setup());
    let (lines, _) = tokio::task::block_in_place(|| p.client(st.dir.path(), spec.clone()));
    assert_eq!(connect_error(&lines)["code"], "NOT_PAIRED", "{lines:?}");
    let req = wait_for(&mut rx, "the device request", |e| match e {
        Event::DevicePairRequested(r) if r.display_name == "phone-a" => Some(r.clone()),
        _ => None,
    })
    .await;
    let pending = checked(&backend, "window", &OwnerRequest::DeviceList {})
        .await
        .unwrap();
    assert_eq!(
        pending["pending"][0]["fingerprint"],
        req.fingerprint.as_str()
    );
    let refused = checked(
        &backend,
        "window",
        &OwnerRequest::DeviceApprove {
            request_id: req.request_id.clone(),
            without_admin: true,
        },
    )
    .await
    .unwrap_err();
    assert_eq!(refused.code, "UNSUPPORTED", "said honestly: {refused:?}");
    checked(
        &backend,
        "notification",
        &OwnerRequest::DeviceApprove {
            request_id: req.request_id.clone(),
            without_admin: false,
        },
    )
    .await
    .expect("approved");
    let decision = wait_for(&mut rx, "resolved", |e| match e {
        Event::DevicePairResolved {
            request_id,
            decision,
            ..
        } if *request_id == req.request_id => Some(*decision),
        _ => None,
    })
    .await;
    assert_eq!(decision, "approved");
    let listed = oc.devices(&p, &["list"]);
    assert!(
        listed["paired"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["deviceId"] == req.device_id.as_str()),
        "OpenClaw lists it paired: {listed}"
    );

    // The paired node comes back declaring a command that runs programs: OpenClaw holds it
    // back and asks; ClawPair hears what it asks to expose and who may approve it, and
    // decides the one request it was shown, by its id.
    let node_spec = |commands: Value| {
        json!({ "url": oc.url, "stateDir": st.dir.path().join("phone-a"), "token": oc.token,
                "role": "node", "scopes": [], "displayName": "phone-a",
                "caps": ["system"], "commands": commands })
    };
    let (lines, code) =
        tokio::task::block_in_place(|| p.client(st.dir.path(), node_spec(json!(["system.run"]))));
    assert_eq!(code, 0, "the paired node connects: {lines:?}");
    let asked = wait_for(&mut rx, "the node's capability request", |e| match e {
        Event::NodePairRequested(r) if r.node_id == req.device_id => Some(r.clone()),
        _ => None,
    })
    .await;
    assert_eq!(asked.commands, ["system.run"], "{asked:?}");
    assert!(asked.needs_admin(), "system.run takes admin: {asked:?}");
    let nodes = checked(&backend, "window", &OwnerRequest::NodeList {})
        .await
        .unwrap();
    assert_eq!(nodes["pending"][0]["requestId"], asked.request_id.as_str());
    checked(
        &backend,
        "window",
        &OwnerRequest::NodeApprove {
            request_id: asked.request_id.clone(),
        },
    )
    .await
    .expect("approved on OpenClaw");
    let decision = wait_for(&mut rx, "the node request resolved", |e| match e {
        Event::NodePairResolved {
            request_id,
            decision,
            ..
        } if *request_id == asked.request_id => Some(*decision),
        _ => None,
    })
    .await;
    assert_eq!(decision, "approved");
    let o = p.run(
        &home,
        &[
            "nodes", "pending", "--url", &oc.url, "--token", &oc.token, "--json",
        ],
    );
    let still: Value = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
    assert_eq!(still, json!([]), "nothing waits in OpenClaw: {}", text(&o));
    let nodes = checked(&backend, "window", &OwnerRequest::NodeList {})
        .await
        .unwrap();
    assert!(
        nodes["paired"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["nodeId"] == req.device_id.as_str()
                && n["commands"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|c| c == "system.run")),
        "OpenClaw lists the node with its command: {nodes}"
    );
    // Wider again, and rejected: the request is gone and the command stays withheld.
    tokio::task::block_in_place(|| {
        p.client(
            st.dir.path(),
            node_spec(json!(["system.run", "system.which"])),
        )
    });
    let wider = wait_for(&mut rx, "the wider request", |e| match e {
        Event::NodePairRequested(r) if r.request_id != asked.request_id => Some(r.clone()),
        _ => None,
    })
    .await;
    checked(
        &backend,
        "window",
        &OwnerRequest::NodeReject {
            request_id: wider.request_id.clone(),
        },
    )
    .await
    .expect("rejected on OpenClaw");
    let nodes = checked(&backend, "window", &OwnerRequest::NodeList {})
        .await
        .unwrap();
    assert_eq!(nodes["pending"], json!([]), "{nodes}");

    // Approved with OpenClaw's own CLI instead: ClawPair hears it settled.
    let (lines, _) =
        tokio::task::block_in_place(|| p.client(st.dir.path(), phone_spec("phone-b", setup())));
    let other = connect_error(&lines)["details"]["requestId"]
        .as_str()
        .unwrap()
        .to_string();
    wait_for(&mut rx, "the second request", |e| {
        matches!(e, Event::DevicePairRequested(r) if r.request_id == other).then_some(())
    })
    .await;
    tokio::task::block_in_place(|| oc.devices(&p, &["approve", &other]));
    wait_for(&mut rx, "resolved elsewhere", |e| {
        matches!(e, Event::DevicePairResolved { request_id, .. } if *request_id == other)
            .then_some(())
    })
    .await;

    // An agent asks to run a command (over OpenClaw's protocol, as its runtime does): ClawPair
    // hears it with its command line, where and for whom, and the decisions OpenClaw allows;
    // the owner's answer, for that id only, is what OpenClaw records.
    let ask = |command: &str| {
        let accepted = tokio::task::block_in_place(|| oc.ask_exec(&p, st.dir.path(), command));
        assert_eq!(accepted["status"], "accepted", "{accepted:?}");
        assert_ne!(
            accepted["deliveryRoute"], "none",
            "ClawPair is the route: {accepted:?}"
        );
        accepted["id"].as_str().unwrap().to_string()
    };
    let decided =
        |id: &str| tokio::task::block_in_place(|| oc.approval_record(&p, st.dir.path(), id));
    for (command, decision, status) in [
        ("ls -la /srv", ExecDecision::AllowOnce, "allowed"),
        ("rm -rf /srv/cache", ExecDecision::Deny, "denied"),
    ] {
        let id = ask(command);
        let asked = wait_for(&mut rx, "the exec approval", |e| match e {
            Event::ExecApprovalRequested(r) if r.id == id => Some(r.clone()),
            _ => None,
        })
        .await;
        assert_eq!(asked.command, command);
        assert_eq!(
            asked.context(),
            "in /srv/app · on the gateway · agent main · session agent:main:main"
        );
        assert!(asked.allows(ExecDecision::AllowOnce) && asked.allows(ExecDecision::Deny));
        let listed = checked(&backend, "window", &OwnerRequest::ExecList {})
            .await
            .unwrap();
        assert_eq!(listed[0]["id"], id.as_str(), "{listed}");
        checked(
            &backend,
            "notification",
            &OwnerRequest::ExecResolve {
                id: id.clone(),
                decision,
            },
        )
        .await
        .expect("answered on OpenClaw");
        wait_for(&mut rx, "the exec approval resolved", |e| {
            matches!(e, Event::ExecApprovalResolved { id: i, .. } if *i == id).then_some(())
        })
        .await;
        let record = decided(&id);
        assert_eq!(record["status"], status, "{record}");
        assert_eq!(record["decision"], decision.as_str(), "{record}");
    }
    // A plugin asks before it acts: shown beside the commands, with its title and words, and
    // answered through OpenClaw's plugin approvals.
    let accepted =
        tokio::task::block_in_place(|| oc.ask_plugin(&p, st.dir.path(), "Post to the blog"));
    let id = accepted["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{accepted:?}"))
        .to_string();
    let asked = wait_for(&mut rx, "the plugin's approval", |e| match e {
        Event::ExecApprovalRequested(r) if r.id == id => Some(r.clone()),
        _ => None,
    })
    .await;
    assert_eq!(asked.kind, clawpair_core::approval::ApprovalKind::Plugin);
    assert_eq!(
        (asked.command.as_str(), asked.description.as_str()),
        ("Post to the blog", "Publishes the draft as it is")
    );
    let listed = checked(&backend, "window", &OwnerRequest::ExecList {})
        .await
        .unwrap();
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == id.as_str() && r["kind"] == "plugin"),
        "{listed}"
    );
    checked(
        &backend,
        "notification",
        &OwnerRequest::ExecResolve {
            id: id.clone(),
            decision: ExecDecision::AllowOnce,
        },
    )
    .await
    .expect("answered on OpenClaw");
    let record = decided(&id);
    assert_eq!(record["status"], "allowed", "{record}");

    // Answered twice, the second answer is OpenClaw's to refuse: first answer wins.
    let id = ask("uptime");
    wait_for(&mut rx, "the third approval", |e| {
        matches!(e, Event::ExecApprovalRequested(r) if r.id == id).then_some(())
    })
    .await;
    let deny = OwnerRequest::ExecResolve {
        id: id.clone(),
        decision: ExecDecision::Deny,
    };
    checked(&backend, "window", &deny)
        .await
        .expect("first answer");
    let again = OwnerRequest::ExecResolve {
        id: id.clone(),
        decision: ExecDecision::AllowOnce,
    };
    assert!(
        checked(&backend, "window", &again).await.is_err(),
        "the second is refused"
    );
    assert_eq!(decided(&id)["status"], "denied");
    // The Activity has OpenClaw's own record of it, beside ClawPair's of the call.
    let activity = checked(&backend, "window", &OwnerRequest::AuditTail { limit: 50 })
        .await
        .expect("the activity");
    let theirs: Vec<&Value> = activity["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "openclaw.approval")
        .collect();
    assert!(
        theirs
            .iter()
            .any(|e| e["id"] == id.as_str() && e["status"] == "denied" && e["what"] == "uptime"),
        "{activity:#}"
    );
    assert!(
        activity["entries"]
            .as_array()
            .unwrap()
            .windows(2)
            .all(|w| w[0]["tsMs"].as_i64() <= w[1]["tsMs"].as_i64()),
        "in time order"
    );

    // OpenClaw restarts: ClawPair says so, and attaches again on its own within 2 s of
    // OpenClaw being ready again (it watches the port rather than waiting out a backoff).
    let mut seen = service.events().subscribe();
    let back = tokio::spawn(async move {
        wait_for(&mut seen, "detached", |e| {
            matches!(
                e,
                Event::AttachStatus {
                    attached: false,
                    ..
                }
            )
            .then_some(())
        })
        .await;
        wait_for(&mut seen, "attached again", |e| {
            matches!(e, Event::AttachStatus { attached: true, .. }).then_some(())
        })
        .await;
        Instant::now()
    });
    let mut trace = service.events().subscribe();
    let t0 = Instant::now();
    tokio::spawn(async move {
        while let Ok(e) = trace.recv().await {
            if let Event::AttachStatus { line, .. } = e {
                eprintln!("{:?} {line}", t0.elapsed());
            }
        }
    });
    tokio::task::block_in_place(|| oc.restart(&p));
    let ready = Instant::now();
    eprintln!("{:?} ready", t0.elapsed());
    let attached = back.await.expect("attached again");
    let lag = attached.saturating_duration_since(ready);
    eprintln!("re-attached {lag:?} after OpenClaw was ready again");
    assert!(
        lag <= Duration::from_secs(2),
        "re-attached only after {lag:?}"
    );
    checked(&backend, "window", &OwnerRequest::DeviceList {})
        .await
        .expect("answers again");
    // Nothing of OpenClaw's was written by ClawPair: its config is as the test wrote it.
    assert!(std::fs::read_to_string(state.join("openclaw.json"))
        .unwrap()
        .contains("interop-not-a-real-token"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the real OpenClaw in a loopback-only namespace: run by scripts/interop.sh"]
async fn two_openclaw_gateways_at_once_each_request_decided_at_its_own() {
    use clawpair_core::attach::{remote::Remote, Backend};
    use clawpair_core::events::Event;
    use clawpair_core::owner::OwnerRequest;

    let p = peer();
    let st = State::new();
    let (home_a, home_b) = (st.dir.path().join("oc-a"), st.dir.path().join("oc-b"));
    let (a, b) = tokio::task::block_in_place(|| {
        std::thread::scope(|s| {
            let a = s.spawn(|| OpenClawGateway::start(&p, &home_a));
            let b = s.spawn(|| OpenClawGateway::start(&p, &home_b));
            (a.join().unwrap(), b.join().unwrap())
        })
    });

    // The first gateway is the one ClawPair attaches to; the second is added on the command
    // line, its token read from standard input and never printed.
    st.settings(|s| {
        s.attach.enabled = true;
        s.attach.url = Some(a.url.clone());
        s.attach.token = Some(a.token.clone());
    });
    let add = |args: &[&str], token: &str| {
        let mut all = vec!["attach", "add", "--token-stdin"];
        all.extend_from_slice(args);
        st.run_with_input(&all, &format!("{token}\n"))
    };
    let refused = add(&[&b.url], "");
    assert!(!refused.status.success(), "no token on standard input");
    assert!(text(&refused).contains("no token"), "{}", text(&refused));
    let added = add(&[&b.url, "--label", "second"], &b.token);
    assert!(added.status.success(), "{}", text(&added));
    let listed = cp(st.path(), &["attach", "list", "--json"]);
    assert!(
        !listed.contains(&b.token),
        "the token is never printed: {listed}"
    );
    let listed: Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed["gateways"][1]["label"], "second");
    assert_eq!(listed["gateways"][1]["tokenSet"], true);
    let shown = cp(st.path(), &["attach", "list"]);
    assert!(
        shown.contains("second") && !shown.contains(&b.token),
        "{shown}"
    );

    let service = std::sync::Arc::new(st.service());
    let mut rx = service.events().subscribe();
    let (targets, problems) = clawpair_core::attach::targets(&service.settings().attach, None);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(targets.len(), 2);
    let backend = Backend::Attached {
        service: service.clone(),
        remotes: targets
            .into_iter()
            .map(|t| Remote::spawn(t, service.events().clone()))
            .collect(),
        own: true,
    };
    let end = tokio::time::Instant::now() + WAIT;
    while backend.status_line().as_deref() != Some("Attached to 2 OpenClaw gateways") {
        assert!(
            tokio::time::Instant::now() < end,
            "not attached to both: {:?}",
            backend.status_line()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let first = backend.remotes()[0].label().to_string();

    // A phone asks each gateway; the requests reach one queue, each named by its gateway.
    for (gw, name) in [(&a, "phone-a"), (&b, "phone-b")] {
        let spec = json!({ "url": gw.url, "stateDir": st.dir.path().join(name),
            "bootstrapToken": gw.bootstrap_token(&p), "role": "node", "scopes": [], "displayName": name });
        let (lines, _) = tokio::task::block_in_place(|| p.client(st.dir.path(), spec));
        assert_eq!(connect_error(&lines)["code"], "NOT_PAIRED", "{lines:?}");
    }
    let mut asked = std::collections::BTreeMap::new();
    while asked.len() < 2 {
        let r = wait_for(&mut rx, "the two device requests", |e| match e {
            Event::DevicePairRequested(r) => Some(r.clone()),
            _ => None,
        })
        .await;
        asked.insert(r.display_name.clone(), r);
    }
    let (ra, rb) = (&asked["phone-a"], &asked["phone-b"]);
    assert_eq!(backend.gateway_of(&ra.request_id), Some(first.clone()));
    assert_eq!(
        backend.gateway_of(&rb.request_id).as_deref(),
        Some("second")
    );
    let queue = checked(&backend, "window", &OwnerRequest::DeviceList {})
        .await
        .unwrap();
    let queued: Vec<(String, String)> = queue["pending"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["displayName"].as_str().unwrap().to_string(),
                r["gateway"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        queued,
        [
            ("phone-a".to_string(), first.clone()),
            ("phone-b".to_string(), "second".to_string())
        ]
    );

    // ClawPair's own gateway is kept beside them: a chat sender asking it is in the same
    // queue, named by it, and approved there.
    let code = match service
        .dm_inbound(&clawpair_core::service::InboundDm {
            channel: "telegram".into(),
            sender: "77".into(),
            ..Default::default()
        })
        .unwrap()
    {
        clawpair_core::pairing::dm::Decision::Challenge { code, .. } => code,
        other => panic!("{other:?}"),
    };
    assert_eq!(backend.gateway_of(&code).as_deref(), Some("ClawPair"));
    let dms = checked(&backend, "window", &OwnerRequest::DmList { channel: None })
        .await
        .unwrap();
    assert!(
        dms["requests"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["code"] == code.as_str() && r["gateway"] == "ClawPair"),
        "{dms}"
    );
    checked(
        &backend,
        "window",
        &OwnerRequest::DmApprove {
            channel: Some("telegram".into()),
            code: code.clone(),
            account_id: None,
            notify: false,
        },
    )
    .await
    .expect("approved at ClawPair's own gateway");
    assert!(service
        .dm
        .is_allowed(
            &clawpair_core::store::ChannelName::from_static("telegram"),
            &clawpair_core::store::AccountId::DEFAULT,
            "77"
        )
        .unwrap());
    // An allowlist edit, which OpenClaw's protocol has no way to make, is ClawPair's own.
    let removed = checked(
        &backend,
        "window",
        &OwnerRequest::AllowRemove {
            channel: "telegram".into(),
            sender_id: "77".into(),
            account_id: None,
        },
    )
    .await
    .expect("removed at ClawPair's own gateway");
    assert_eq!(removed["removed"], true, "{removed}");

    // Approving the second gateway's request approves it there, and only there.
    checked(
        &backend,
        "notification",
        &OwnerRequest::DeviceApprove {
            request_id: rb.request_id.clone(),
            without_admin: false,
        },
    )
    .await
    .expect("approved at the second gateway");
    let paired_at = |gw: &OpenClawGateway, device: &str| {
        gw.devices(&p, &["list"])["paired"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["deviceId"] == device)
    };
    let pending_at = |gw: &OpenClawGateway, request: &str| {
        gw.devices(&p, &["list"])["pending"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["requestId"] == request)
    };
    tokio::task::block_in_place(|| {
        assert!(paired_at(&b, &rb.device_id), "paired at the second");
        assert!(!paired_at(&a, &rb.device_id), "not at the first");
        assert!(
            pending_at(&a, &ra.request_id),
            "the first's request still waits"
        );
    });

    // A request no gateway holds is refused, naming it; the first's is rejected there.
    let unknown = checked(
        &backend,
        "window",
        &OwnerRequest::DeviceReject {
            request_id: "no-such-request".into(),
        },
    )
    .await
    .unwrap_err();
    assert_eq!(unknown.code, "NOT_FOUND", "{unknown:?}");
    checked(
        &backend,
        "window",
        &OwnerRequest::DeviceReject {
            request_id: ra.request_id.clone(),
        },
    )
    .await
    .expect("rejected at the first gateway");
    tokio::task::block_in_place(|| assert!(!pending_at(&a, &ra.request_id)));

    // The second gateway stops: the first still answers, and the line says which is down.
    drop(b);
    let end = tokio::time::Instant::now() + WAIT;
    loop {
        let line = backend.status_line().unwrap_or_default();
        if line.starts_with("Attached to 1 of 2 OpenClaw gateways (not to second") {
            break;
        }
        assert!(tokio::time::Instant::now() < end, "{line}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let still = checked(&backend, "window", &OwnerRequest::DeviceList {})
        .await
        .expect("the first gateway still lists");
    assert!(still["pending"].as_array().unwrap().is_empty(), "{still}");
}
