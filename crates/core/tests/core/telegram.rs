//! The Telegram channel against a stand-in Bot API on loopback that speaks Telegram's real
//! request and response shapes (JSON, forms, multipart uploads, long polls, 429 flood control):
//! pairing replies, approval confirmations, owner `/pair` commands, restarts, and the bot
//! token kept out of every file, log line, event and CLI output.

use crate::common;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use clawpair_core::channels::telegram::{self, commands};
use clawpair_core::client::{Auth, Client, ClientError, Identity};
use clawpair_core::config::{ChannelSettings, Settings};
use clawpair_core::events::Event;
use clawpair_core::pairing::dm::{Decision, APPROVED_REPLY};
use clawpair_core::pairing::setup::decode_setup_code;
use clawpair_core::service::{InboundDm, Service};
use common::gw::{cli, TestGateway};
use common::{files_under, mode, stderr, stdout, State};
use serde_json::{json, Value};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

const TOKEN: &str = "123456:AAF-stand_in_SECRET_token_not_real";
const TOKEN_SECRET: &str = "AAF-stand_in_SECRET_token_not_real";
const OWNER: i64 = 42;
const STRANGER: i64 = 1001;
/// The longest any step may take on a loaded machine before the test fails.
const WAIT: Duration = Duration::from_secs(30);

use clawpair_devtools::botapi::{self, Failure, FakeBotApi};

/// Everything the process logs (tracing), captured for the token check.
fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = buf.clone();
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || Capture(sink.clone()))
            .try_init();
        buf
    })
    .clone()
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A gateway on loopback, the stand-in Bot API, and the adapter between them.
struct Harness {
    st: State,
    fake: Arc<FakeBotApi>,
    gw: TestGateway,
    stop: Option<watch::Sender<bool>>,
    bot: Option<JoinHandle<()>>,
    events: Arc<Mutex<Vec<String>>>,
    outputs: Vec<String>,
    token: String,
}

impl Harness {
    /// Telegram enabled with `token`, `OWNER` as the owner, the fake as `apiBase`.
    async fn new(token: &str, edit: impl FnOnce(&mut Settings)) -> Harness {
        captured_logs();
        let st = State::new();
        let fake = FakeBotApi::start(TOKEN).await;
        let base = fake.base_url();
        let bot_token = token.to_string();
        let gw = TestGateway::start_with(st.path(), Default::default(), |s| {
            s.channels.insert(
                "telegram".into(),
                ChannelSettings {
                    enabled: Some(true),
                    bot_token: Some(bot_token),
                    api_base: Some(base),
                    owners: vec![OWNER.to_string()],
                    ..Default::default()
                },
            );
            edit(s);
        })
        .await;
        let events = Arc::new(Mutex::new(Vec::new()));
        let mut rx = gw.service.events().subscribe();
        let sink = events.clone();
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(e) => sink
                        .lock()
                        .unwrap()
                        .push(serde_json::to_string(&e).unwrap()),
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        Harness {
            st,
            fake,
            gw,
            stop: None,
            bot: None,
            events,
            outputs: Vec::new(),
            token: token.to_string(),
        }
    }

    /// The usual setup, with the adapter running.
    async fn start() -> Harness {
        let mut h = Harness::new(TOKEN, |_| {}).await;
        h.start_bot();
        h
    }

    /// Setup codes need a URL a phone can reach; the test gateway is on loopback.
    fn set_public_url(&self) {
        let url = self.gw.url.clone();
        self.gw
            .service
            .update_settings("test", move |s| {
                s.gateway.public_url = Some(url);
                Ok(())
            })
            .unwrap();
    }

    fn start_bot(&mut self) {
        let (tx, rx) = watch::channel(false);
        self.stop = Some(tx);
        self.bot = Some(telegram::spawn(self.gw.service.clone(), self.gw.addr, rx));
    }

    async fn stop_bot(&mut self) {
        if let Some(tx) = self.stop.take() {
            tx.send(true).unwrap();
        }
        if let Some(task) = self.bot.take() {
            tokio::time::timeout(WAIT, task)
                .await
                .expect("the adapter stops")
                .unwrap();
        }
    }

    fn service(&self) -> &Service {
        &self.gw.service
    }

    /// The CLI binary against this state dir (and so through the running gateway).
    async fn cli(&mut self, args: &[&str]) -> std::process::Output {
        let o = cli(self.st.path(), args).await;
        self.outputs.push(stdout(&o));
        self.outputs.push(stderr(&o));
        o
    }

    /// An owner's private message; waits for `n` more answers and returns them.
    async fn owner_says(&self, text: &str, n: usize) -> Vec<botapi::Call> {
        let before = self.fake.sent_to(OWNER).len();
        let id = self.fake.private_text(OWNER, "owner", text);
        let all = self.fake.wait_sent_to(OWNER, before + n).await;
        self.fake.handled(id).await;
        let now = self.fake.sent_to(OWNER);
        assert_eq!(
            now.len(),
            before + n,
            "{text}: expected {n} answer(s), got {:#?}",
            &now[before..]
        );
        all[before..].to_vec()
    }

    /// Stops everything and checks that the bot token went nowhere it should not.
    async fn finish(mut self) {
        self.stop_bot().await;
        let secrets = [self.token.clone(), secret_half(&self.token)];
        let mut places: Vec<(String, String)> = Vec::new();
        for (p, bytes) in files_under(self.st.path()) {
            // The settings, and the copy of them kept for `doctor` (both 0600).
            if p.file_name()
                .is_some_and(|n| n == "clawpair.json" || n == "clawpair.json.last-good")
            {
                continue;
            }
            places.push((
                p.display().to_string(),
                String::from_utf8_lossy(&bytes).into_owned(),
            ));
        }
        for (i, o) in self.outputs.iter().enumerate() {
            places.push((format!("CLI output #{i}"), o.clone()));
        }
        for e in self.events.lock().unwrap().iter() {
            places.push(("an event".into(), e.clone()));
        }
        let logs = String::from_utf8_lossy(&captured_logs().lock().unwrap()).into_owned();
        assert!(
            logs.contains("Telegram channel"),
            "the adapter's log is captured"
        );
        places.push(("the log".into(), logs));
        for (where_, text) in &places {
            for s in &secrets {
                assert!(
                    !text.contains(s.as_str()),
                    "the bot token leaked into {where_}: {text}"
                );
            }
        }
        assert!(
            std::fs::read_to_string(self.st.file("clawpair.json"))
                .unwrap()
                .contains(&self.token),
            "the token is kept in clawpair.json"
        );
        self.gw.stop().await;
    }
}

fn secret_half(token: &str) -> String {
    token
        .split_once(':')
        .map(|(_, s)| s.to_string())
        .unwrap_or_default()
}

/// Waits on the event bus for an event `pick` accepts.
async fn wait_event<T>(
    rx: &mut broadcast::Receiver<Event>,
    what: &str,
    mut pick: impl FnMut(&Event) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Ok(e)) => {
                if let Some(t) = pick(&e) {
                    return t;
                }
            }
            Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(e)) => panic!("event stream ended waiting for {what}: {e}"),
            Err(_) => panic!("timed out waiting for {what}"),
        }
    }
}

fn channel_status(e: &Event) -> Option<(bool, Option<String>)> {
    match e {
        Event::ChannelStatus {
            channel,
            connected,
            error,
            ..
        } if channel == "telegram" => Some((*connected, error.clone())),
        _ => None,
    }
}

fn bootstrap_records(st: &State) -> usize {
    match std::fs::read_to_string(st.file("devices/bootstrap.json")) {
        Ok(t) => {
            let v: Value = serde_json::from_str(&t).unwrap();
            v.as_object().map_or(0, |m| m.len())
        }
        Err(_) => 0,
    }
}

fn request_id_of(e: ClientError) -> String {
    match e {
        ClientError::Rejected(r) => {
            assert_eq!(r.code, "NOT_PAIRED", "{}", r.message);
            r.details.unwrap()["requestId"]
                .as_str()
                .unwrap()
                .to_string()
        }
        other => panic!("expected NOT_PAIRED, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stranger_gets_one_reply_then_a_confirmation_after_a_429_and_is_let_through() {
    let mut h = Harness::start().await;
    let mut op = h.gw.operator().await;

    let first = h
        .fake
        .private_text(STRANGER, "str\u{202E}anger\u{200B}", "hi");
    let reply = h.fake.wait_sent_to(STRANGER, 1).await.remove(0);
    let pending = h.service().dm_list(Some("telegram")).unwrap();
    assert_eq!(pending.len(), 1);
    let code = pending[0].code.clone();
    assert_eq!(pending[0].id, STRANGER.to_string());
    assert_eq!(pending[0].meta["username"], "stranger");
    assert_eq!(pending[0].meta["chatId"], STRANGER.to_string());
    assert_eq!(reply.content_type, "application/json");
    assert_eq!(reply.str("parse_mode"), "HTML");
    let text = reply.text();
    assert!(text.contains(&STRANGER.to_string()), "{text}");
    assert!(text.contains(&format!("<code>{code}</code>")), "{text}");
    assert!(
        text.contains(&format!(
            "<code>clawpair pairing approve telegram {code}</code>"
        )),
        "{text}"
    );
    h.fake.handled(first).await;

    // Writing again: same request, no second reply.
    let second = h.fake.private_text(STRANGER, "stranger", "hello?");
    h.fake.handled(second).await;
    assert_eq!(h.fake.sent_to(STRANGER).len(), 1);
    assert_eq!(h.service().dm_list(Some("telegram")).unwrap().len(), 1);

    // The owner approves with the CLI, through the gateway; Telegram throttles the first try.
    h.fake.fail_next("sendMessage", Failure::TooManyRequests(1));
    let o = h
        .cli(&["pairing", "approve", "telegram", &code, "--notify"])
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("no gateway"), "{}", stderr(&o));
    let sent = h.fake.wait_sent_to(STRANGER, 2).await;
    assert_eq!(sent[1].text(), APPROVED_REPLY);
    let throttled: Vec<botapi::Call> = h
        .fake
        .calls()
        .into_iter()
        .filter(|c| c.method == "sendMessage" && c.status == 429)
        .collect();
    assert_eq!(throttled.len(), 1);
    assert_eq!(throttled[0].text(), APPROVED_REPLY);
    assert!(
        sent[1].at.duration_since(throttled[0].at) >= Duration::from_secs(1),
        "the retry waited retry_after"
    );

    // The next message goes through to the agent.
    let third = h.fake.private_text(STRANGER, "stranger", "now?");
    let msg = op
        .wait_event("chat.message", WAIT)
        .await
        .unwrap()
        .expect("chat.message");
    assert_eq!(msg["channel"], "telegram");
    assert_eq!(msg["senderId"], STRANGER.to_string());
    assert_eq!(msg["text"], "now?");
    assert_eq!(msg["meta"]["username"], "stranger");
    h.fake.handled(third).await;
    assert_eq!(h.fake.sent_to(STRANGER).len(), 2);
    let audit = h.st.read("logs/audit.jsonl");
    assert!(audit.contains("\"dm.notified\""), "{audit}");
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_messages_get_nothing_and_create_no_request() {
    let h = Harness::start().await;
    h.fake
        .group_text(-100_200_300, "supergroup", STRANGER, "hello bot");
    h.fake.group_text(-555, "group", 2002, "anyone?");
    let last = h.fake.group_text(-555, "group", OWNER, "/pair");
    h.fake.handled(last).await;
    assert!(
        h.fake.calls().iter().all(|c| !c.is_send()),
        "{:#?}",
        h.fake.calls()
    );
    assert!(h.service().dm_list(Some("telegram")).unwrap().is_empty());
    assert_eq!(bootstrap_records(&h.st), 0);
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_owner_pair_commands_are_refused_and_never_carry_a_setup_code() {
    let h = Harness::start().await;
    h.set_public_url();
    let cmds = [
        "/pair",
        "/pair qr",
        "/pair pending",
        "/pair approve",
        "/pair cleanup",
    ];
    let mut last = 0;
    for c in cmds {
        last = h.fake.private_text(STRANGER, "stranger", c);
    }
    let sent = h.fake.wait_sent_to(STRANGER, 1).await;
    h.fake.handled(last).await;
    // Refused once: the rest of the hour's commands get nothing, not even a refusal.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(h.fake.sent_to(STRANGER).len(), 1);
    for m in &sent {
        assert_eq!(m.method, "sendMessage");
        assert_eq!(m.text(), commands::REFUSED);
        assert!(decode_setup_code(&m.text()).is_err());
    }
    assert!(h.fake.calls().iter().all(|c| c.method != "sendPhoto"));
    assert_eq!(bootstrap_records(&h.st), 0);
    let audit = h.st.read("logs/audit.jsonl");
    assert_eq!(audit.matches("\"pair.command.refused\"").count(), 1);
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_flooding_pair_while_telegram_throttles_never_delays_the_owner() {
    let h = Harness::start().await;
    h.set_public_url();
    // Telegram throttles the first refusal for half a minute.
    h.fake
        .fail_next("sendMessage", Failure::TooManyRequests(30));
    let mut last = 0;
    for _ in 0..50 {
        last = h.fake.private_text(STRANGER, "stranger", "/pair");
    }
    h.fake.handled(last).await;
    // The owner is answered at once, while the stranger's refusal waits out the 429.
    let started = std::time::Instant::now();
    let answer = h.owner_says("/pair pending", 1).await.remove(0).text();
    assert_eq!(answer, commands::NONE_WAITING);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the owner waited {:?} behind a throttled send",
        started.elapsed()
    );
    let to_stranger = h
        .fake
        .calls()
        .into_iter()
        .filter(|c| c.int("chat_id") == Some(STRANGER))
        .count();
    assert!(
        to_stranger <= 1,
        "one refusal at most, tried once so far: {to_stranger}"
    );
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owner_pair_gives_a_setup_code_a_device_uses_then_pending_and_approve_pair_it() {
    let mut h = Harness::start().await;
    h.set_public_url();
    let mut op = h.gw.operator().await;

    let two = h.owner_says("/pair", 2).await;
    let steps = two[0].text();
    assert!(steps.contains("expires in 10 minutes"), "{steps}");
    assert!(
        steps.contains("/pair cleanup") && steps.contains("works once"),
        "{steps}"
    );
    let code = two[1].text();
    assert_eq!(code.trim(), code, "the second message is the code alone");
    let payload = decode_setup_code(&code).expect("a setup code");
    assert_eq!(payload.url, h.gw.url.trim_end_matches('/'));

    // A computer pairs with it through the real CLI, as a phone would.
    let phone = State::new();
    let phone_dir = phone.path().to_path_buf();
    let code_for_node = code.clone();
    let node = tokio::spawn(async move {
        cli(
            &phone_dir,
            &["node", "pair", &code_for_node, "--name", "Test Laptop"],
        )
        .await
    });
    let ev = op
        .wait_event("device.pair.requested", WAIT)
        .await
        .unwrap()
        .expect("device.pair.requested");
    let request_id = ev["requestId"].as_str().unwrap().to_string();
    let fingerprint = ev["fingerprint"].as_str().unwrap().to_string();

    let list = h.owner_says("/pair pending", 1).await.remove(0);
    assert_eq!(list.str("parse_mode"), "HTML");
    let text = list.text();
    for want in ["Test Laptop", "127.0.0.1", &fingerprint, &request_id] {
        assert!(text.contains(want), "{want} missing from {text}");
    }

    let done = h.owner_says("/pair approve", 1).await.remove(0).text();
    assert!(done.contains("Paired <b>Test Laptop</b>"), "{done}");
    assert!(done.contains(&fingerprint), "{done}");

    let o = tokio::time::timeout(WAIT, node).await.unwrap().unwrap();
    let out = stdout(&o);
    h.outputs.push(out.clone());
    h.outputs.push(stderr(&o));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        out.contains("Paired as node") && out.contains(&fingerprint),
        "{out}"
    );
    let identity: Value = serde_json::from_str(&phone.read("identity/device.json")).unwrap();
    assert_eq!(
        identity["tokens"]["node"]["token"].as_str().unwrap().len(),
        43
    );
    let devices = h.service().device_list().unwrap();
    assert!(devices.pending.is_empty());
    assert_eq!(devices.paired.len(), 1);
    assert_eq!(devices.paired[0].fingerprint, fingerprint);
    assert!(h
        .st
        .read("logs/audit.jsonl")
        .contains("\"via\":\"telegram\""));
    assert_eq!(
        h.owner_says("/pair pending", 1).await[0].text(),
        commands::NONE_WAITING
    );
    h.finish().await;
}

fn decode_qr(png: &[u8]) -> String {
    let img = image::load_from_memory_with_format(png, image::ImageFormat::Png)
        .expect("a PNG")
        .to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(img);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1);
    grids[0].decode().expect("a readable QR code").1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pair_qr_sends_a_png_of_a_working_code_and_approve_reject_cleanup_act_on_requests() {
    let h = Harness::start().await;
    h.set_public_url();

    let photo = h.owner_says("/pair qr", 1).await.remove(0);
    assert_eq!(photo.method, "sendPhoto");
    assert_eq!(photo.content_type, "multipart/form-data");
    assert!(photo.str("caption").contains("expires in 10 minutes"));
    let file = &photo.files[0];
    assert_eq!(file.field, "photo");
    assert_eq!(file.content_type.as_deref(), Some("image/png"));
    assert!(file.file_name.as_deref().unwrap().ends_with(".png"));
    let payload = decode_setup_code(&decode_qr(&file.bytes)).expect("the QR holds a setup code");
    assert_eq!(payload.url, h.gw.url.trim_end_matches('/'));

    // The code from the photo works: the phone presenting it gets a pairing request.
    let phone1 = Identity::generate();
    let first = request_id_of(
        Client::connect(
            &h.gw
                .phone(&phone1, Auth::BootstrapToken(payload.bootstrap_token)),
            |_, _| {},
        )
        .await
        .err()
        .expect("not paired yet"),
    );
    let code = h.owner_says("/pair", 2).await.remove(1).text();
    let phone2 = Identity::generate();
    let second = request_id_of(
        Client::connect(
            &h.gw.phone(
                &phone2,
                Auth::BootstrapToken(decode_setup_code(&code).unwrap().bootstrap_token),
            ),
            |_, _| {},
        )
        .await
        .err()
        .expect("not paired yet"),
    );

    // Two waiting: approve needs an id.
    let ask = h.owner_says("/pair approve", 1).await.remove(0).text();
    assert!(ask.starts_with("2 devices are waiting"), "{ask}");
    assert!(ask.contains(&first) && ask.contains(&second), "{ask}");
    assert_eq!(h.service().device_list().unwrap().pending.len(), 2);

    let no = h
        .owner_says(&format!("/pair reject {first}"), 1)
        .await
        .remove(0)
        .text();
    assert!(
        no.starts_with("Rejected") && no.contains(&phone1.fingerprint()),
        "{no}"
    );
    let yes = h
        .owner_says(&format!("/pair approve {second}"), 1)
        .await
        .remove(0)
        .text();
    assert!(yes.contains(&phone2.fingerprint()), "{yes}");
    // A paired device asking for more is approved only by its id, even when it is the only
    // request; rejecting it revokes the code it came with.
    let mut more = h.gw.phone(
        &phone2,
        Auth::BootstrapToken(decode_setup_code(&code).unwrap().bootstrap_token),
    );
    more.role = "operator".into();
    more.client_mode = "backend".into();
    let upgrade = request_id_of(
        Client::connect(&more, |_, _| {})
            .await
            .err()
            .expect("an upgrade request"),
    );
    let said = h.owner_says("/pair approve", 1).await.remove(0).text();
    assert!(
        said.starts_with("The only request is from a device already paired")
            && said.contains(&upgrade)
            && said.contains("asks for a new role"),
        "{said}"
    );
    h.owner_says(&format!("/pair reject {upgrade}"), 1).await;
    let gone = h
        .owner_says(&format!("/pair approve {first}"), 1)
        .await
        .remove(0)
        .text();
    assert!(
        gone.starts_with("Could not approve") && gone.contains("it was rejected already"),
        "{gone}"
    );
    assert_eq!(
        h.owner_says("/pair reject", 1).await[0].text(),
        commands::REJECT_NEEDS_ID
    );

    // Cleanup revokes every code not used up, bound to a device or not (here only the unused
    // one is left: the others were retired by a newer /pair or revoked with a rejection).
    let unused = h.owner_says("/pair", 2).await.remove(1).text();
    let cleaned = h.owner_says("/pair cleanup", 1).await.remove(0).text();
    assert_eq!(cleaned, "Invalidated 1 setup code not used yet.");
    let refused = Client::connect(
        &h.gw.phone(
            &Identity::generate(),
            Auth::BootstrapToken(decode_setup_code(&unused).unwrap().bootstrap_token),
        ),
        |_, _| {},
    )
    .await
    .err()
    .unwrap();
    assert_eq!(refused.code(), Some("AUTH_FAILED"));
    let help = h.owner_says("/pair what", 1).await.remove(0).text();
    assert!(help.contains("/pair pending"), "{help}");
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pair_on_a_loopback_only_gateway_answers_how_to_expose_it() {
    let h = Harness::start().await;
    let answer = h.owner_says("/pair", 1).await.remove(0).text();
    assert!(
        answer.contains("127.0.0.1 only") && answer.contains("gateway.publicUrl"),
        "{answer}"
    );
    let answer = h.owner_says("/pair qr", 1).await.remove(0);
    assert_eq!(answer.method, "sendMessage");
    assert!(answer.text().contains("127.0.0.1 only"));
    assert_eq!(bootstrap_records(&h.st), 0);
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_adapter_handles_no_update_twice() {
    let mut h = Harness::start().await;
    h.set_public_url();
    let dm = h.fake.private_text(STRANGER, "stranger", "hi");
    h.fake.wait_sent_to(STRANGER, 1).await;
    h.fake.handled(dm).await;
    h.owner_says("/pair", 2).await;
    let last = h
        .fake
        .calls()
        .iter()
        .filter_map(|c| c.int("offset"))
        .max()
        .unwrap();

    h.stop_bot().await;
    let offset_file = h.st.file("credentials/telegram-offset.json");
    let stored: Value =
        serde_json::from_str(&std::fs::read_to_string(&offset_file).unwrap()).unwrap();
    assert_eq!(stored["offset"], last);
    assert_eq!(stored["botId"], "123456");
    assert_eq!(mode(&offset_file), 0o600);

    // The stand-in never forgets updates: only the stored offset keeps them from coming back.
    let calls_before = h.fake.calls().len();
    h.start_bot();
    let other = h.fake.private_text(2002, "other", "hello");
    h.fake.wait_sent_to(2002, 1).await;
    h.fake.handled(other).await;
    let first_poll = h.fake.calls()[calls_before..]
        .iter()
        .find(|c| c.method == "getUpdates")
        .cloned()
        .unwrap();
    assert_eq!(first_poll.int("offset"), Some(last));
    assert_eq!(h.fake.sent_to(STRANGER).len(), 1);
    assert_eq!(h.fake.sent_to(OWNER).len(), 2);
    assert_eq!(bootstrap_records(&h.st), 1);
    assert_eq!(h.service().dm_list(Some("telegram")).unwrap().len(), 2);
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_shows_in_the_status_without_the_token_and_polling_recovers() {
    let mut h = Harness::new(TOKEN, |_| {}).await;
    let mut rx = h.service().events().subscribe();
    h.fake.fail_next("getUpdates", Failure::DropConnection);
    h.start_bot();
    let error = wait_event(&mut rx, "an error status", |e| match channel_status(e) {
        Some((false, Some(err))) => Some(err),
        _ => None,
    })
    .await;
    assert!(
        error.starts_with("cannot reach the Telegram Bot API"),
        "{error}"
    );
    assert!(
        !error.contains(TOKEN_SECRET) && !error.contains("/bot"),
        "{error}"
    );
    wait_event(&mut rx, "connected again", |e| {
        (channel_status(e) == Some((true, None))).then_some(())
    })
    .await;
    let dm = h.fake.private_text(STRANGER, "stranger", "hi");
    h.fake.wait_sent_to(STRANGER, 1).await;
    h.fake.handled(dm).await;
    h.stop_bot().await;
    wait_event(&mut rx, "disconnected on stop", |e| {
        (channel_status(e) == Some((false, None))).then_some(())
    })
    .await;
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_is_reported_without_being_shown() {
    let wrong = "654321:WRONG_token_for_the_stand_in_api";
    let mut h = Harness::new(wrong, |_| {}).await;
    let mut rx = h.service().events().subscribe();
    h.start_bot();
    let error = wait_event(&mut rx, "an error status", |e| match channel_status(e) {
        Some((false, Some(err))) => Some(err),
        _ => None,
    })
    .await;
    assert!(error.contains("refused the bot token"), "{error}");
    assert!(!error.contains(&secret_half(wrong)), "{error}");
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_the_channel_stops_polling_and_enabling_it_resumes() {
    let h = Harness::start().await;
    let mut rx = h.service().events().subscribe();
    let dm = h.fake.private_text(STRANGER, "stranger", "hi");
    h.fake.handled(dm).await;
    let set = |on: bool| {
        h.service()
            .update_settings("test", move |s: &mut Settings| {
                s.channels.get_mut("telegram").unwrap().enabled = Some(on);
                Ok(())
            })
            .unwrap()
    };
    set(false);
    wait_event(&mut rx, "disconnected", |e| {
        (channel_status(e) == Some((false, None))).then_some(())
    })
    .await;
    let later = h.fake.private_text(2002, "other", "hello");
    set(true);
    h.fake.wait_sent_to(2002, 1).await;
    h.fake.handled(later).await;
    h.finish().await;
}

#[test]
fn approving_with_notify_and_no_gateway_warns_that_nobody_tells_the_sender() {
    let st = State::new();
    let service = st.service();
    let mut codes = Vec::new();
    for sender in ["1001", "1002"] {
        let d = service
            .dm_inbound(&InboundDm {
                channel: "telegram".into(),
                sender: sender.into(),
                ..Default::default()
            })
            .unwrap();
        let Decision::Challenge { code, .. } = d else {
            panic!("{d:?}")
        };
        codes.push(code);
    }
    let o = st.run(&["pairing", "approve", "telegram", &codes[0], "--notify"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no gateway is running"),
        "{}",
        stderr(&o)
    );
    let o = st.run(&["pairing", "approve", "telegram", &codes[1]]);
    assert!(o.status.success());
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
}

#[test]
fn the_multipart_reader_of_the_stand_in_really_parses_bodies() {
    let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"chat_id\"\r\n\r\n42\r\n--XyZ\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n\x89PNG\r\n\x1a\n\r\n--XyZ--\r\n";
    let (fields, files) =
        botapi::parse_multipart("multipart/form-data; boundary=XyZ", body).unwrap();
    assert_eq!(fields["chat_id"], json!("42"));
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].bytes, b"\x89PNG\r\n\x1a\n");
    assert!(botapi::parse_multipart("multipart/form-data", body).is_err());
}

/// Turns the bot on in the settings, talking to `fake`, with OWNER as its owner.
fn enable_bot(service: &Service, fake: &FakeBotApi) {
    let base = fake.base_url();
    service
        .update_settings("test", move |s: &mut Settings| {
            s.channels.insert(
                "telegram".into(),
                ChannelSettings {
                    enabled: Some(true),
                    bot_token: Some(TOKEN.into()),
                    api_base: Some(base),
                    owners: vec![OWNER.to_string()],
                    ..Default::default()
                },
            );
            Ok(())
        })
        .unwrap();
}

/// The headless gateway starts its channels through the same registry as the app, and each
/// follows clawpair.json: a bot enabled after the gateway started answers without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_headless_gateway_starts_a_bot_enabled_while_it_runs() {
    let st = State::new();
    let fake = FakeBotApi::start(TOKEN).await;
    let mut cmd = st.cmd(&["gateway", "--port", "0"]);
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().expect("start the gateway");
    let pid = child.id() as libc::pid_t;
    let end = std::time::Instant::now() + WAIT;
    while !st.file("run/gateway.json").exists() {
        assert!(std::time::Instant::now() < end, "the gateway did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let service = st.service();
    enable_bot(&service, &fake);
    let dm = fake.private_text(STRANGER, "stranger", "hi");
    let reply = fake.wait_sent_to(STRANGER, 1).await.remove(0);
    assert!(reply.text().contains("clawpair pairing approve telegram"));
    fake.handled(dm).await;
    // SAFETY: signalling our own child process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let out = tokio::time::timeout(
        WAIT,
        tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()),
    )
    .await
    .expect("the gateway stops")
    .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !stdout(&out).contains("Telegram channel on"),
        "off at start"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_headless_gateway_runs_the_bot_and_stops_it_on_sigterm() {
    let st = State::new();
    let fake = FakeBotApi::start(TOKEN).await;
    let service = st.service();
    enable_bot(&service, &fake);
    drop(service);
    let mut cmd = st.cmd(&["gateway", "--port", "0"]);
    cmd.env("RUST_LOG", "trace")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().expect("start the gateway");
    let pid = child.id() as libc::pid_t;
    let dm = fake.private_text(STRANGER, "stranger", "hi");
    let reply = fake.wait_sent_to(STRANGER, 1).await.remove(0);
    assert!(reply.text().contains("clawpair pairing approve telegram"));
    fake.handled(dm).await;
    // SAFETY: signalling our own child process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let out = tokio::time::timeout(
        WAIT,
        tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()),
    )
    .await
    .expect("the gateway stops")
    .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let (o, e) = (stdout(&out), stderr(&out));
    assert!(o.contains("Telegram channel on (1 owner(s)"), "{o}");
    assert!(o.contains("Gateway stopped."), "{o}");
    assert!(
        e.contains("Telegram channel connected"),
        "its log is on stderr: {e}"
    );
    for text in [&o, &e] {
        assert!(!text.contains(TOKEN_SECRET), "the token leaked: {text}");
    }
    for (p, bytes) in files_under(st.path()) {
        if !p.ends_with("clawpair.json") && !p.ends_with("clawpair.json.last-good") {
            assert!(
                !String::from_utf8_lossy(&bytes).contains(TOKEN_SECRET),
                "{}",
                p.display()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approving_with_notify_and_no_bot_set_up_warns_that_nobody_tells_the_sender() {
    let st = State::new();
    let gw = common::gw::TestGateway::start(st.path()).await;
    let d = gw
        .service
        .dm_inbound(&InboundDm {
            channel: "telegram".into(),
            sender: "1003".into(),
            ..Default::default()
        })
        .unwrap();
    let Decision::Challenge { code, .. } = d else {
        panic!("{d:?}")
    };
    let o = common::gw::cli(
        st.path(),
        &["pairing", "approve", "telegram", &code, "--notify"],
    )
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no Telegram bot is set up"),
        "{}",
        stderr(&o)
    );
    gw.stop().await;
}
