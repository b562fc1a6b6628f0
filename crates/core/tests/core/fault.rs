//! Fault tolerance: the gateway killed with -9 in the middle of approvals, connections that
//! never finish their handshake, garbage frames and setup codes, many connections at once, and
//! a state directory on a full or read-only disk. Whatever happens, no acknowledged decision is
//! lost, no file is left half-written, and the owner still gets in.

use crate::common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use clawpair_core::client::{Auth, Client, ClientError, ConnectOptions, Identity};
use clawpair_core::gateway::Limits;
use clawpair_core::service::{DeviceAsk, Service};
use common::gw::{self, TestGateway};
use common::{panics, stderr, State};
use futures_util::{SinkExt, StreamExt};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;
use tokio_tungstenite::tungstenite::Message;

// ---------------------------------------------------------------- helpers

/// `clawpair gateway` as a child process on a free port; killed when dropped.
struct GatewayProcess {
    child: Child,
    addr: SocketAddr,
}

impl GatewayProcess {
    fn start(state: &Path) -> GatewayProcess {
        let child = Command::new(crate::CLAWPAIR)
            .arg("--state-dir")
            .arg(state)
            .args(["gateway", "--port", "0"])
            .env_remove("OPENCLAW_STATE_DIR")
            .env_remove("CLAWPAIR_STATE_DIR")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the gateway");
        // Owned at once, so it is killed and reaped whatever happens next.
        let mut gw = GatewayProcess {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let pid = gw.child.id();
        let record = state.join("run/gateway.json");
        let until = Instant::now() + Duration::from_secs(15);
        loop {
            let rec: Option<Value> = std::fs::read_to_string(&record)
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok());
            if let Some(rec) = rec.filter(|r| r["pid"] == pid) {
                gw.addr = rec["address"].as_str().unwrap().parse().unwrap();
                return gw;
            }
            assert!(Instant::now() < until, "the gateway did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn url(&self) -> String {
        format!("ws://{}/", self.addr)
    }

    fn kill_9(&mut self) {
        // SAFETY: a signal to our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn admin_token(state: &Path) -> String {
    let text = std::fs::read_to_string(state.join("clawpair.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    v["gateway"]["auth"]["token"].as_str().unwrap().to_string()
}

/// Every file under `dir` whose name ends with `suffix`.
fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    common::files_under(dir)
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect()
}

fn allow_from(state: &Path, channel: &str) -> Vec<String> {
    let p = state.join(format!("credentials/{channel}-allowFrom.json"));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
    v["allowFrom"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// Pairs a `node` device through the service (request, approval, token) and returns its
/// identity and token.
fn pair_device(service: &Service) -> (Identity, String) {
    let id = Identity::generate();
    let ask = DeviceAsk {
        device_id: id.device_id(),
        public_key: id.public_key(),
        fingerprint: id.fingerprint(),
        display_name: "phone".into(),
        role: "node".into(),
        reason: "not-paired".into(),
        ..Default::default()
    };
    let (rec, _) = service.device_request(ask).unwrap();
    service
        .device_approve(&rec.request.request_id, "test")
        .unwrap();
    let (token, _) = service
        .token_issue_on_connect(&id.device_id(), "node")
        .unwrap();
    (id, token)
}

// ---------------------------------------------------------------- kill -9

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_approvals_loses_no_acknowledged_approval() {
    let st = State::new();
    st.ok(&["allowlist", "list"]); // creates the state directory and settings
    let mut gw = GatewayProcess::start(st.path());
    let token = admin_token(st.path());
    let url = gw.url();

    // Four clients approve as fast as they can, each on its own channel; every approval that
    // got an ok answer is recorded.
    let mut clients = Vec::new();
    for c in 0..4 {
        let (url, token) = (url.clone(), token.clone());
        clients.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            let channel = format!("fault{c}");
            let opts = ConnectOptions::operator(&url, &token, "approver");
            let Ok(mut op) = Client::connect(&opts, |_, _| {}).await else {
                return (channel, acked);
            };
            for i in 0.. {
                let sender = format!("s{c}-{i}");
                let asked = op
                    .call(
                        "channel.inbound",
                        json!({ "channel": channel, "senderId": sender }),
                    )
                    .await;
                let Ok(d) = asked else { break };
                let code = d["code"].as_str().unwrap_or_default().to_string();
                match op
                    .call(
                        "pairing.approve",
                        json!({ "channel": channel, "code": code }),
                    )
                    .await
                {
                    Ok(a) => {
                        assert_eq!(a["senderId"], sender.as_str());
                        acked.push(sender);
                    }
                    Err(_) => break,
                }
            }
            (channel, acked)
        }));
    }
    // Let them get going, then kill at a moment nobody chose.
    let jitter = 300 + rand_ms(700);
    tokio::time::sleep(Duration::from_millis(jitter)).await;
    gw.kill_9();
    let mut acked = Vec::new();
    for c in clients {
        acked.push(c.await.unwrap());
    }
    let total: usize = acked.iter().map(|(_, a)| a.len()).sum();
    assert!(total > 0, "no approval was acknowledged before the kill");

    // Restarted on the same state directory (the stale run record must not stop it).
    let gw = GatewayProcess::start(st.path());
    for p in files_ending(st.path(), ".json") {
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(
            serde_json::from_str::<Value>(&text).is_ok(),
            "{} does not parse after kill -9:\n{text}",
            p.display()
        );
    }
    for p in files_ending(st.path(), ".jsonl") {
        for line in std::fs::read_to_string(&p).unwrap().lines() {
            assert!(
                serde_json::from_str::<Value>(line).is_ok(),
                "{}: a torn line {line:?}",
                p.display()
            );
        }
    }
    let mut op = Client::connect(
        &ConnectOptions::operator(&gw.url(), &token, "check"),
        |_, _| {},
    )
    .await
    .expect("the restarted gateway answers");
    for (channel, senders) in &acked {
        if senders.is_empty() {
            continue;
        }
        let on_disk = allow_from(st.path(), channel);
        let listed = op
            .call("allowlist.list", json!({ "channel": channel }))
            .await
            .unwrap();
        for s in senders {
            assert!(on_disk.contains(s), "acknowledged {s} missing in {channel}");
            assert!(
                listed["entries"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|e| e["senderId"] == s.as_str()),
                "the restarted gateway does not list {s}"
            );
        }
    }
    eprintln!("kill -9 after {jitter} ms: {total} acknowledged approvals, all kept");
}

/// A random number of milliseconds below `max`: the kill moment is nobody's choice.
/// After a crash the record names a port anyone may take and a pid the OS may give to any
/// process. The CLI believes a record only while its gateway holds `run/gateway.lock`, so the
/// admin token never goes to whoever took the port; `doctor --fix` clears the record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_crash_the_cli_never_sends_the_admin_token_to_whoever_took_the_port() {
    let st = State::new();
    st.ok(&["allowlist", "list"]);
    let mut gw = GatewayProcess::start(st.path());
    let addr = gw.addr;
    gw.kill_9();
    let token = admin_token(st.path());
    // A stranger on the port, speaking just enough of the protocol to be sent a connect.
    let squatter = tokio::net::TcpListener::bind(addr)
        .await
        .expect("take the port");
    let heard = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let ears = heard.clone();
    let listening = tokio::spawn(async move {
        while let Ok((tcp, _)) = squatter.accept().await {
            ears.lock().unwrap().push("a connection".into());
            let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                continue;
            };
            let challenge = json!({ "type": "event", "event": "connect.challenge",
                "payload": { "nonce": "n", "ts": 0 }, "seq": 0 });
            let _ = ws.send(Message::text(challenge.to_string())).await;
            if let Some(Ok(Message::Text(t))) = ws.next().await {
                ears.lock().unwrap().push(t.as_str().to_owned());
            }
        }
    });
    // The recorded pid now belongs to a live process (this test), as a reused pid would.
    let record = st.file("run/gateway.json");
    let mut rec: Value = serde_json::from_str(&std::fs::read_to_string(&record).unwrap()).unwrap();
    rec["pid"] = std::process::id().into();
    std::fs::write(&record, rec.to_string()).unwrap();

    let o = gw::cli(st.path(), &["pairing", "list", "--json"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let doctor = gw::cli(st.path(), &["doctor"]).await;
    let report = common::stdout(&doctor);
    assert!(
        report.contains("run/gateway.json") && report.contains("stale"),
        "{report}"
    );
    gw::cli(st.path(), &["doctor", "--fix"]).await;
    assert!(!record.exists(), "doctor --fix removed the stale record");
    listening.abort();
    let heard = heard.lock().unwrap().clone();
    assert!(
        heard.iter().all(|h| !h.contains(&token)),
        "the token reached the port's new owner"
    );
    assert!(heard.is_empty(), "the CLI did not even connect: {heard:?}");
}

fn rand_ms(max: u64) -> u64 {
    rand::random::<u64>() % max
}

// ---------------------------------------------------------------- silent connections

/// 300 TCP connections that never upgrade and 200 WebSockets that never send `connect`, from
/// 20 loopback source addresses (25 each, under the per-IP cap of 32) with `exemptLoopback`
/// off, so the per-IP accounting is exercised, not bypassed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_are_closed_at_the_deadline_and_the_owner_still_gets_in() {
    let st = State::new();
    let deadline = Duration::from_millis(2_500);
    let limits = Limits {
        handshake_timeout: deadline,
        ..Limits::default()
    };
    let gw = TestGateway::start_with(st.path(), limits, |s| {
        s.gateway.rate_limit.exempt_loopback = false
    })
    .await;
    let addr = gw.addr;
    let opened = Instant::now();
    let tcp = futures_util::future::join_all((0..300).map(|i| async move {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        let src = format!("127.0.0.{}", 10 + i / 25);
        sock.bind(format!("{src}:0").parse().unwrap()).unwrap();
        sock.connect(addr).await.expect("tcp connect")
    }))
    .await;
    let ws = futures_util::future::join_all((0..200).map(|i| async move {
        gw::raw_from(&format!("127.0.0.{}", 30 + i / 25), addr)
            .await
            .0
    }))
    .await;

    // The owner, meanwhile, connects and is answered at once.
    let asked = Instant::now();
    let mut op = gw.operator().await;
    op.call("pairing.list", json!({})).await.unwrap();
    let took = asked.elapsed();
    assert!(took < Duration::from_secs(2), "owner answered in {took:?}");
    assert!(
        opened.elapsed() < deadline,
        "the owner was checked while all 500 were still pending"
    );

    // Every one is closed by the deadline, and not long before it.
    let closed = futures_util::future::join_all(tcp.into_iter().map(|mut t| async move {
        let mut buf = [0u8; 16];
        let n = tokio::time::timeout(deadline * 3, t.read(&mut buf))
            .await
            .expect("closed by the deadline")
            .unwrap_or(0);
        assert_eq!(
            n, 0,
            "the gateway says nothing to a client that never upgrades"
        );
    }));
    let closed_ws = futures_util::future::join_all(ws.into_iter().map(|mut w| async move {
        let code = tokio::time::timeout(deadline * 3, gw::close_code(&mut w))
            .await
            .expect("closed by the deadline");
        assert_eq!(code, Some(1008), "a silent WebSocket is closed with 1008");
        opened.elapsed()
    }));
    let (_, times) = tokio::join!(closed, closed_ws);
    let earliest = times.iter().min().unwrap();
    assert!(
        *earliest >= deadline - Duration::from_millis(300),
        "closed at {earliest:?}, before the {deadline:?} deadline"
    );

    // Their per-IP slots were given back: the same addresses can connect again.
    for src in ["127.0.0.10", "127.0.0.37"] {
        let (mut again, _) = gw::raw_from(src, addr).await;
        let _ = again.close(None).await;
    }
    assert!(gw.answers().await);
    op.close().await;
    gw.stop().await;
}

// ---------------------------------------------------------------- garbage frames

fn arb_json() -> impl Strategy<Value = Value> {
    const KEYS: &[&str] = &[
        "url",
        "bootstrapToken",
        "expiresAtMs",
        "channel",
        "senderId",
        "code",
        "requestId",
        "deviceId",
        "role",
        "limit",
    ];
    common::arb::json_with_keys(KEYS, 200_000, 4)
}

/// Numbers JSON allows but Rust types do not hold.
fn huge_number() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("1e999999".to_string()),
        Just("-1e999999".to_string()),
        Just("123456789012345678901234567890123456789".to_string()),
        Just("-0".to_string()),
        "[0-9]{1,400}".prop_map(String::from),
    ]
}

/// What a client might send: anything.
#[derive(Debug, Clone)]
enum Frame {
    Text(String),
    Binary(Vec<u8>),
}

fn arb_frame() -> impl Strategy<Value = Frame> {
    let methods = prop_oneof![
        Just("connect".to_string()),
        Just("channel.inbound".into()),
        Just("pairing.approve".into()),
        Just("pairing.list".into()),
        Just("device.pair.approve".into()),
        Just("device.token.rotate".into()),
        Just("device.setup.create".into()),
        Just("allowlist.add".into()),
        Just("audit.tail".into()),
        ".{0,20}".prop_map(String::from),
    ];
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300).prop_map(Frame::Binary),
        any::<String>().prop_map(Frame::Text),
        arb_json().prop_map(|v| Frame::Text(v.to_string())),
        (methods, arb_json(), arb_json()).prop_map(|(m, id, p)| Frame::Text(
            json!({ "type": "req", "id": id, "method": m, "params": p }).to_string()
        )),
        huge_number().prop_map(|n| Frame::Text(format!(
            r#"{{"type":"req","id":{n},"method":"audit.tail","params":{{"limit":{n}}}}}"#
        ))),
        // A device proof whose `signedAt` is anywhere in i64 (the skew check must not
        // overflow); the id matches the key, so the check is reached.
        prop_oneof![Just(i64::MIN), Just(i64::MAX), any::<i64>()].prop_map(|at| {
            let id = Identity::from_seed([9; 32]);
            Frame::Text(gw::connect_signed_at(&id, "n", "n", at, "t").to_string())
        }),
        // Deep nesting: a recursive parser must refuse it, not overflow its stack.
        (1usize..30_000, any::<bool>()).prop_map(|(n, obj)| Frame::Text(if obj {
            format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n))
        } else {
            format!("{}{}", "[".repeat(n), "]".repeat(n))
        })),
    ]
}

async fn send_frame(ws: &mut gw::Raw, f: &Frame) -> bool {
    let m = match f {
        Frame::Text(t) => Message::text(t.clone()),
        Frame::Binary(b) => Message::binary(b.clone()),
    };
    ws.send(m).await.is_ok()
}

/// Reads what the gateway says until it closes or goes quiet: (answers, closed).
async fn read_until_quiet(ws: &mut gw::Raw) -> (Vec<Value>, bool) {
    let mut answers = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_millis(1_500), ws.next()).await {
            Err(_) => return (answers, false),
            Ok(Some(Ok(Message::Text(t)))) => {
                let v: Value = serde_json::from_str(t.as_str()).expect("the gateway sends JSON");
                answers.push(v);
            }
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => {
                return (answers, true)
            }
            Ok(Some(Ok(_))) => {}
        }
    }
}

fn connect_frame(token: &str) -> Value {
    json!({ "type": "req", "id": "c", "method": "connect", "params": {
        "minProtocol": 3, "maxProtocol": 3, "client": { "id": "fuzz", "mode": "cli" },
        "role": "operator", "auth": { "token": token } } })
}

/// The fuzz tests count panics: a connection task that panics drops its socket, which reads
/// like a close, so without the count a crash would pass.
#[test]
fn a_panic_that_only_drops_a_socket_is_seen_by_the_fuzz_tests() {
    let watch = panics::watch("fuzz-self-check");
    let rt = watch.runtime();
    let task =
        rt.block_on(async { tokio::spawn(async { panic!("a connection task panics") }).await });
    assert!(task.is_err());
    assert_eq!(watch.count(), 1);
}

#[test]
fn any_first_frame_gets_an_error_and_a_close_never_a_crash() {
    let watch = panics::watch("fuzz-first-frame");
    let rt = watch.runtime();
    let st = State::new();
    let gw = rt.block_on(TestGateway::start(st.path()));
    let mut runner = TestRunner::new(Config {
        cases: 96,
        ..Config::default()
    });
    runner
        .run(&arb_frame(), |frame| {
            rt.block_on(async {
                // Counted per case, so shrinking looks for the frame that panics.
                let before = watch.count();
                let (mut raw, _) = gw::raw(&gw.url).await;
                send_frame(&mut raw, &frame).await;
                let (answers, closed) = read_until_quiet(&mut raw).await;
                prop_assert_eq!(
                    watch.count(),
                    before,
                    "a connection panicked on {:?}",
                    frame
                );
                prop_assert!(closed, "still open after {frame:?}");
                for a in &answers {
                    prop_assert_eq!(&a["ok"], &Value::Bool(false), "{:?}", a);
                }
                Ok(())
            })
        })
        .unwrap();
    rt.block_on(async {
        assert!(gw.answers().await, "the gateway answers after the fuzzing");
        gw.stop().await;
    });
}

#[test]
fn any_frame_after_hello_is_answered_or_closed_never_a_crash() {
    let watch = panics::watch("fuzz-after-hello");
    let rt = watch.runtime();
    let st = State::new();
    let gw = rt.block_on(TestGateway::start(st.path()));
    let probe = tokio::sync::Mutex::new(rt.block_on(gw.operator()));
    let mut runner = TestRunner::new(Config {
        cases: 96,
        ..Config::default()
    });
    runner
        .run(&prop::collection::vec(arb_frame(), 1..4), |frames| {
            rt.block_on(async {
                let before = watch.count();
                let (mut raw, _) = gw::raw(&gw.url).await;
                gw::send(&mut raw, &connect_frame(&gw.token)).await;
                let hello = gw::recv(&mut raw).await.expect("hello");
                prop_assert_eq!(&hello["payload"]["type"], "hello-ok");
                for f in &frames {
                    if !send_frame(&mut raw, f).await {
                        break;
                    }
                    let (answers, closed) = read_until_quiet_or_answer(&mut raw).await;
                    prop_assert_eq!(watch.count(), before, "a connection panicked on {:?}", f);
                    // A well-formed request gets an answer and the socket stays; anything
                    // else gets an error and a close. Either way, never silence.
                    prop_assert!(
                        closed || !answers.is_empty(),
                        "neither answered nor closed after {f:?}"
                    );
                    if closed {
                        break;
                    }
                }
                // The gateway still answers its owner after each case.
                let answered = probe.lock().await.call("pairing.list", json!({})).await;
                prop_assert!(answered.is_ok(), "{:?}", answered.err());
                Ok(())
            })
        })
        .unwrap();
    rt.block_on(async {
        assert!(gw.answers().await);
        gw.stop().await;
    });
}

/// Like [`read_until_quiet`], but returns as soon as a response (not an event) arrives.
async fn read_until_quiet_or_answer(ws: &mut gw::Raw) -> (Vec<Value>, bool) {
    let mut answers = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Err(_) => return (answers, false),
            Ok(Some(Ok(Message::Text(t)))) => {
                let v: Value = serde_json::from_str(t.as_str()).expect("the gateway sends JSON");
                let is_res = v["type"] == "res";
                answers.push(v);
                if is_res {
                    return (answers, false);
                }
            }
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => {
                return (answers, true)
            }
            Ok(Some(Ok(_))) => {}
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_setup_code_text_decodes_or_is_refused(code in any::<String>()) {
        let _ = clawpair_core::pairing::setup::decode_setup_code(&code);
    }

    #[test]
    fn base64_of_any_json_decodes_only_to_what_it_holds(
        v in arb_json(),
        url_safe in any::<bool>(),
        pad in any::<bool>(),
    ) {
        use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
        let text = v.to_string();
        let engine = match (url_safe, pad) {
            (true, false) => &URL_SAFE_NO_PAD,
            (true, true) => &URL_SAFE,
            (false, true) => &STANDARD,
            (false, false) => &STANDARD_NO_PAD,
        };
        for code in [engine.encode(&text), text.clone()] {
            match clawpair_core::pairing::setup::decode_setup_code(&code) {
                Ok(p) => {
                    // serde also reads a struct from a JSON array, positionally; either way the
                    // payload is exactly what the code held.
                    let (url, token) = match &v {
                        Value::Array(a) => (&a[0], &a[1]),
                        _ => (&v["url"], &v["bootstrapToken"]),
                    };
                    prop_assert_eq!(Some(p.url.as_str()), url.as_str());
                    prop_assert_eq!(Some(p.bootstrap_token.as_str()), token.as_str());
                    prop_assert!(!p.bootstrap_token.trim().is_empty());
                }
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
        }
    }

    #[test]
    fn base64_of_any_bytes_is_refused_with_a_reason(bytes in prop::collection::vec(any::<u8>(), 0..4000)) {
        let code = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes);
        if let Err(e) = clawpair_core::pairing::setup::decode_setup_code(&code) {
            prop_assert!(!e.to_string().is_empty());
        }
    }
}

// ---------------------------------------------------------------- many connections

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_authenticated_connections_and_the_gateway_still_answers_promptly() {
    let st = State::new();
    let gw = TestGateway::start(st.path()).await;
    // Eight sessions each at most (`Limits::max_sessions_per_device`).
    let devices: Vec<(Identity, String)> = (0..64).map(|_| pair_device(&gw.service)).collect();
    gw.service
        .allow_add("telegram", None, "alice", "test")
        .unwrap();
    let gate = Arc::new(tokio::sync::Semaphore::new(64));
    let held = futures_util::future::join_all((0..500).map(|i| {
        let (id, token) = devices[i % devices.len()].clone();
        let opts = gw.phone(&id, Auth::DeviceToken(token));
        let gate = gate.clone();
        async move {
            let _permit = gate.acquire().await.unwrap();
            Client::connect(&opts, |_, _| {}).await
        }
    }))
    .await;
    let mut held: Vec<Client> = held
        .into_iter()
        .map(|c| c.expect("every device connects"))
        .collect();
    assert_eq!(held.len(), 500);

    // With all 500 held, the owner and a channel bridge are answered promptly.
    let mut op = gw.operator().await;
    let mut slowest = Duration::ZERO;
    for i in 0..50 {
        let t0 = Instant::now();
        if i % 2 == 0 {
            op.call("pairing.list", json!({})).await.unwrap();
        } else {
            let d = op
                .call(
                    "channel.inbound",
                    json!({ "channel": "telegram", "senderId": "alice" }),
                )
                .await
                .unwrap();
            assert_eq!(d["decision"], "allow");
        }
        slowest = slowest.max(t0.elapsed());
    }
    assert!(
        slowest < Duration::from_secs(1),
        "slowest answer {slowest:?}"
    );

    // And every held connection is alive: each is answered (a node may not list pairings).
    let answers = futures_util::future::join_all(
        held.iter_mut()
            .map(|c| async move { c.call("pairing.list", json!({})).await }),
    )
    .await;
    for a in answers {
        match a {
            Err(ClientError::Rejected(e)) => assert_eq!(e.code, "FORBIDDEN"),
            other => panic!("a held connection answered {other:?}"),
        }
    }
    for c in held {
        c.close().await;
    }
    gw.stop().await;
}

// ---------------------------------------------------------------- full and read-only disks

/// A small tmpfs mounted over a directory, unmounted when dropped; `None` where mounting is
/// not permitted (not root, or in a container without the capability).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).ok()?;
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(dir.to_path_buf()))
    }
    fn read_only(&self) -> bool {
        Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// `chattr +i` on every directory and file under `dir` (root cannot write through it, unlike
/// through a mode of 0500), undone when dropped.
struct Immutable(PathBuf);

impl Immutable {
    fn set(dir: &Path) -> Option<Immutable> {
        let ok = Command::new("chattr")
            .args(["-R", "+i"])
            .arg(dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Immutable(dir.to_path_buf()))
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr")
            .args(["-R", "-i"])
            .arg(&self.0)
            .status();
    }
}

fn temp_files(dir: &Path) -> Vec<PathBuf> {
    files_ending(dir, ".tmp")
}

/// Fills the filesystem holding `dir` until a write fails.
fn fill(dir: &Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(dir.join("filler")).unwrap();
    let block = vec![0u8; 64 * 1024];
    while f.write_all(&block).is_ok() {}
    let _ = f.sync_all();
}

#[test]
fn a_full_disk_refuses_the_write_names_the_file_and_keeps_the_old_content() {
    let st = State::new();
    let mount = Tmpfs::mount(st.path(), "1m");
    st.ok(&["allowlist", "add", "telegram", "alice"]);
    let before = std::fs::read(st.file("credentials/telegram-allowFrom.json")).unwrap();
    let (o, why) = match &mount {
        Some(_) => {
            fill(st.path());
            (
                st.run(&["allowlist", "add", "telegram", "bob"]),
                "No space left on device",
            )
        }
        None => {
            // No mount here: the same refusal from the kernel through RLIMIT_FSIZE (with
            // SIGXFSZ ignored, a write past the limit fails with EFBIG instead of killing).
            eprintln!("tmpfs mount not permitted; simulating a full disk with RLIMIT_FSIZE");
            let mut cmd = st.cmd(&["allowlist", "add", "telegram", "bob"]);
            // SAFETY: only async-signal-safe calls between fork and exec.
            unsafe {
                use std::os::unix::process::CommandExt;
                cmd.pre_exec(|| {
                    let lim = libc::rlimit {
                        rlim_cur: 64,
                        rlim_max: 64,
                    };
                    libc::setrlimit(libc::RLIMIT_FSIZE, &lim);
                    libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                    Ok(())
                });
            }
            (cmd.output().unwrap(), "File too large")
        }
    };
    assert_eq!(o.status.code(), Some(1), "refused: {}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("telegram-allowFrom.json") && err.contains(why),
        "the error names the file and the cause: {err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert_eq!(
        std::fs::read(st.file("credentials/telegram-allowFrom.json")).unwrap(),
        before,
        "the previous content is intact"
    );
    assert_eq!(
        temp_files(st.path()),
        Vec::<PathBuf>::new(),
        "no stray temp file"
    );
    if mount.is_some() {
        // Space again: the same command now works.
        std::fs::remove_file(st.path().join("filler")).unwrap();
        st.ok(&["allowlist", "add", "telegram", "bob"]);
        assert_eq!(
            allow_from(st.path(), "telegram"),
            vec!["alice".to_string(), "bob".into()]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_state_dir_refuses_writes_with_the_file_named_and_keeps_answering() {
    let st = State::new();
    let mount = Tmpfs::mount(st.path(), "4m");
    let gw = TestGateway::start(st.path()).await;
    gw.service
        .allow_add("telegram", None, "alice", "test")
        .unwrap();
    // A pending request on each side, so the listings below have files to read.
    let pending_dm = gw
        .service
        .dm_inbound(&clawpair_core::service::InboundDm {
            channel: "telegram".into(),
            sender: "dave".into(),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(pending_dm.kind(), "challenge");
    let phone = clawpair_core::client::Identity::generate();
    gw.service
        .device_request(clawpair_core::service::DeviceAsk {
            device_id: phone.device_id(),
            public_key: phone.public_key(),
            fingerprint: phone.fingerprint(),
            role: "node".into(),
            reason: "not-paired".into(),
            ..Default::default()
        })
        .unwrap();
    let mut op = gw.operator().await;
    let before = std::fs::read(st.file("credentials/telegram-allowFrom.json")).unwrap();

    // Read-only: a read-only remount where mounting works, else immutable files and dirs.
    let mut _immutable = None;
    let how = match &mount {
        Some(m) if m.read_only() => "read-only mount",
        _ => match Immutable::set(st.path()) {
            Some(i) => {
                _immutable = Some(i);
                "chattr +i"
            }
            None => {
                eprintln!(
                    "SKIPPED: cannot make a directory read-only for root here (no mount, no chattr)"
                );
                gw.stop().await;
                return;
            }
        },
    };

    // Through the gateway: UNAVAILABLE, naming the file; the connection stays.
    let e = match op
        .call(
            "allowlist.add",
            json!({ "channel": "telegram", "senderId": "bob" }),
        )
        .await
    {
        Err(ClientError::Rejected(e)) => e,
        other => panic!("{how}: allowlist.add answered {other:?}"),
    };
    assert_eq!(e.code, "UNAVAILABLE", "{how}: {e:?}");
    assert!(
        e.message.contains("telegram-allowFrom.json"),
        "{how}: the error names the file: {}",
        e.message
    );
    // Through the CLI: exit 1 and one line naming the file.
    let o = gw::cli(st.path(), &["allowlist", "add", "telegram", "carol"]).await;
    assert_eq!(o.status.code(), Some(1), "{how}: {}", stderr(&o));
    assert!(
        stderr(&o).contains("telegram-allowFrom.json"),
        "{how}: {}",
        stderr(&o)
    );
    // Nothing half-written, and reads and decisions still work.
    assert_eq!(
        std::fs::read(st.file("credentials/telegram-allowFrom.json")).unwrap(),
        before
    );
    assert_eq!(temp_files(st.path()), Vec::<PathBuf>::new());
    let listed = op
        .call("allowlist.list", json!({ "channel": "telegram" }))
        .await
        .unwrap();
    assert_eq!(listed["entries"].as_array().unwrap().len(), 1, "{listed}");
    // Listing prunes expired entries when it can write; on a read-only disk it still lists.
    let dms = op
        .call("pairing.list", json!({}))
        .await
        .expect("pairing.list on a read-only dir");
    assert_eq!(dms["requests"].as_array().unwrap().len(), 1, "{dms}");
    let devices = op
        .call("device.pair.list", json!({}))
        .await
        .expect("device.pair.list on a read-only dir");
    assert_eq!(devices["pending"].as_array().unwrap().len(), 1, "{devices}");
    let d = op
        .call(
            "channel.inbound",
            json!({ "channel": "telegram", "senderId": "alice" }),
        )
        .await
        .unwrap();
    assert_eq!(d["decision"], "allow");
    assert!(gw.answers().await);
    eprintln!("read-only state dir by {how}: writes refused, reads answered");
    op.close().await;
    gw.stop().await;
}
