//! The connection to an OpenClaw gateway ClawPair is attached to: one operator socket, kept
//! open (reconnecting with backoff when the gateway restarts), with several requests in
//! flight, and OpenClaw's events turned into ClawPair's own on the app's event stream, so the
//! notifications, the tray and the window work the same on OpenClaw's requests.
//!
//! Chat-sender requests have no event in OpenClaw's protocol: they are listed
//! (`channels.pairing.list`) when something may have changed — at (re)connect, when OpenClaw's
//! database changes on this computer (a file watch on its `state/` directory), and every
//! minute as a safety net (every 10 s when the gateway is on another computer).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Map, Value};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio_tungstenite::tungstenite::Message;

use crate::client::{Auth, Client, ConnectOptions, Socket};
use crate::clock::Millis;
use crate::events::{DmRequestView, Event, EventBus};
use crate::pairing::device::{decode_public_key, fingerprint_for, PendingDevice};
use crate::protocol::{Code, ErrorCode, Resolution};
use crate::rpc::RpcError;
use crate::sanitize::sanitize;

/// What ClawPair attaches to: the gateway's URL, and where its token comes from.
#[derive(Clone)]
pub struct Target {
    pub url: String,
    pub token: TokenSource,
    /// OpenClaw's state directory, when the gateway runs on this computer (for the database
    /// watch and the read-only allowlists).
    pub local_state: Option<PathBuf>,
}

/// The admin token, read when connecting (OpenClaw's own config stays the only copy).
#[derive(Clone)]
pub enum TokenSource {
    /// `gateway.auth.token` in OpenClaw's config, read again at each connect.
    OpenClawConfig { state_dir: PathBuf, config: PathBuf },
    /// Typed by the owner into ClawPair's settings (`0600`).
    Given(String),
}

impl TokenSource {
    fn read(&self) -> Result<String, String> {
        match self {
            TokenSource::Given(t) => Ok(t.clone()),
            TokenSource::OpenClawConfig { state_dir, config } => {
                super::discover::at(state_dir, config)
                    .and_then(|i| i.token().map(String::from))
                    .map_err(|e| e.to_string())
            }
        }
    }
}

/// Where the attachment stands, for the tray and the window.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum Status {
    Connecting {
        url: String,
    },
    Attached {
        url: String,
        version: String,
    },
    Down {
        url: String,
        reason: String,
        retry_in_s: u64,
    },
}

impl Status {
    /// One line for the tray.
    pub fn line(&self) -> String {
        match self {
            Status::Connecting { url } => format!("Attaching to OpenClaw at {url}…"),
            Status::Attached { url, .. } => format!("Attached to OpenClaw at {url}"),
            Status::Down {
                url,
                reason,
                retry_in_s,
            } => {
                format!("Not attached to OpenClaw at {url}: {reason} (retrying in {retry_in_s}s)")
            }
        }
    }
}

type Reply = oneshot::Sender<Result<Value, RpcError>>;

/// The attached gateway. Cheap to share; its task ends when the last handle is dropped.
pub struct Remote {
    url: String,
    local_state: Option<PathBuf>,
    requests: mpsc::Sender<(String, Value, Reply)>,
    status: Mutex<Status>,
    events: EventBus,
    /// Chat-sender requests last listed, by OpenClaw's request id, with their account.
    dm_known: Mutex<HashMap<String, DmRequestView>>,
    /// Device requests last seen pending.
    devices_known: Mutex<HashSet<String>>,
    relist: Arc<Notify>,
}

fn unavailable(why: impl Into<String>) -> RpcError {
    RpcError::new(Code::Unavailable, why)
}

/// A refusal for what OpenClaw's protocol does not offer, with what to do instead.
fn unsupported(what: &str) -> RpcError {
    RpcError::new(Code::Unsupported, what.to_string())
}

impl Remote {
    /// Starts attaching; returns at once (the status says how it goes).
    pub fn spawn(target: Target, events: EventBus) -> Arc<Remote> {
        let (tx, rx) = mpsc::channel(64);
        let remote = Arc::new(Remote {
            url: target.url.clone(),
            local_state: target.local_state.clone(),
            requests: tx,
            status: Mutex::new(Status::Connecting {
                url: target.url.clone(),
            }),
            events,
            dm_known: Mutex::default(),
            devices_known: Mutex::default(),
            relist: Arc::new(Notify::new()),
        });
        tokio::spawn(drive(Arc::downgrade(&remote), target, rx));
        tokio::spawn(follow_dm_requests(Arc::downgrade(&remote)));
        remote
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn status(&self) -> Status {
        self.status
            .lock()
            .map(|s| s.clone())
            .unwrap_or(Status::Connecting {
                url: self.url.clone(),
            })
    }

    fn set_status(&self, s: Status) {
        if let Ok(mut cur) = self.status.lock() {
            if *cur == s {
                return;
            }
            *cur = s.clone();
        }
        self.events.publish(Event::AttachStatus {
            line: s.line(),
            attached: matches!(s, Status::Attached { .. }),
        });
    }

    /// Calls one of OpenClaw's methods on the attached gateway.
    pub async fn call_raw(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        let (tx, rx) = oneshot::channel();
        self.requests
            .send((method.to_string(), params, tx))
            .await
            .map_err(|_| unavailable("the attachment to OpenClaw has stopped"))?;
        match tokio::time::timeout(Duration::from_secs(30), rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(unavailable(format!(
                "the connection to OpenClaw at {} closed before it answered",
                self.url
            ))),
            Err(_) => Err(unavailable(format!(
                "OpenClaw at {} did not answer in 30 s",
                self.url
            ))),
        }
    }

    /// Answers one of ClawPair's own methods (the ones the window, the tray and the
    /// notifications use) on OpenClaw's data. `None`: not something OpenClaw's gateway holds
    /// (settings, the activity log): ClawPair answers it itself.
    pub async fn call(&self, method: &str, params: Value) -> Option<Result<Value, RpcError>> {
        let p = |k: &str| params.get(k).cloned().unwrap_or(Value::Null);
        Some(match method {
            "device.pair.list" => self.device_list().await,
            "device.pair.approve" => {
                if params["withoutAdmin"] == true {
                    return Some(Err(unsupported(
                        "OpenClaw approves what the device asked for; to give it less, reject \
                         the request and let the device ask again with fewer scopes",
                    )));
                }
                self.call_raw(method, json!({ "requestId": p("requestId") })).await
            }
            "device.pair.reject" => self.call_raw(method, json!({ "requestId": p("requestId") })).await,
            "device.pair.remove" => self.call_raw(method, json!({ "deviceId": p("deviceId") })).await,
            "device.pair.rename" => {
                self.call_raw(method, json!({ "deviceId": p("deviceId"), "label": p("label") })).await
            }
            "device.token.rotate" | "device.token.revoke" => {
                self.call_raw(method, json!({ "deviceId": p("deviceId"), "role": p("role") })).await
            }
            "device.setup.create" => {
                let mut q = Map::new();
                if let Some(u) = params["url"].as_str().filter(|u| !u.is_empty()) {
                    q.insert("publicUrl".into(), u.into());
                }
                self.call_raw("device.pair.setupCode", Value::Object(q))
                    .await
                    .map(|v| {
                        json!({ "setupCode": v["setupCode"], "url": v["gatewayUrl"], "expiresAtMs": v["expiresAtMs"] })
                    })
            }
            "device.setup.cleanup" => Err(unsupported(
                "OpenClaw's protocol has no way to invalidate its setup codes; they expire on their own",
            )),
            "device.pair.clear" => Err(unsupported(
                "OpenClaw's protocol removes devices one at a time: remove them from the list",
            )),
            "pairing.list" => self.dm_list(params["channel"].as_str()).await.map(|r| json!({ "requests": r })),
            "pairing.approve" | "pairing.reject" => {
                let id = params["code"].as_str().unwrap_or_default().to_string();
                let known = self.dm_known.lock().ok().and_then(|m| m.get(&id).cloned());
                let Some(r) = known else {
                    return Some(Err(RpcError::new(Code::NotFound, format!("unknown request {}", sanitize(&id)))
                        .with_details(json!({ "reason": "unknown" }))));
                };
                let mut q = json!({ "channel": r.channel, "accountId": r.account_id, "requestId": id });
                let approve = method == "pairing.approve";
                if approve && params["notify"] == true {
                    q["notify"] = true.into();
                }
                let m = if approve { "channels.pairing.approve" } else { "channels.pairing.dismiss" };
                let answer = self.call_raw(m, q).await;
                if answer.is_ok() {
                    self.settled_dm(&r, if approve { Resolution::Approved } else { Resolution::Rejected });
                }
                answer.map(|v| json!({ "channel": r.channel, "accountId": r.account_id, "senderId": v["senderId"], "code": id }))
            }
            "allowlist.list" => self.allow_list(params["channel"].as_str()),
            "allowlist.add" | "allowlist.remove" => Err(unsupported(
                "OpenClaw's protocol does not change allowlists: add senders by approving their \
                 requests, or with openclaw config set channels.<channel>.allowFrom",
            )),
            _ => return None,
        })
    }

    /// `device.pair.list` in ClawPair's shape (fingerprints, names, what each request means).
    async fn device_list(&self) -> Result<Value, RpcError> {
        let v = self.call_raw("device.pair.list", json!({})).await?;
        let pending: Vec<Value> = v["pending"]
            .as_array()
            .map(|a| a.iter().filter_map(pending_view).collect())
            .unwrap_or_default();
        let paired: Vec<Value> = v["paired"]
            .as_array()
            .map(|a| a.iter().map(paired_view).collect())
            .unwrap_or_default();
        Ok(json!({ "pending": pending, "paired": paired }))
    }

    async fn dm_list(&self, channel: Option<&str>) -> Result<Vec<DmRequestView>, RpcError> {
        let mut q = Map::new();
        if let Some(c) = channel {
            q.insert("channel".into(), c.into());
        }
        let v = self
            .call_raw("channels.pairing.list", Value::Object(q))
            .await?;
        Ok(v["requests"]
            .as_array()
            .map(|a| a.iter().filter_map(dm_view).collect())
            .unwrap_or_default())
    }

    fn settled_dm(&self, r: &DmRequestView, decision: Resolution) {
        if let Ok(mut m) = self.dm_known.lock() {
            m.remove(&r.code);
        }
        self.events.publish(Event::PairingResolved {
            channel: r.channel.clone(),
            account_id: r.account_id.clone(),
            sender_id: r.id.clone(),
            code: r.code.clone(),
            decision,
            notify: false,
        });
    }

    /// Approved senders, read (read-only) from OpenClaw's database when it is on this
    /// computer: OpenClaw's protocol has no way to list them.
    fn allow_list(&self, channel: Option<&str>) -> Result<Value, RpcError> {
        let Some(dir) = &self.local_state else {
            return Err(unsupported(
                "OpenClaw's protocol does not list approved senders; ClawPair shows them when OpenClaw runs on this computer",
            ));
        };
        let store = crate::store::openclaw::read(&crate::store::openclaw::store_path(dir))
            .map_err(|e| unavailable(e.to_string()))?;
        let entries: Vec<Value> = store
            .allow
            .iter()
            .filter(|r| channel.is_none_or(|c| r.channel_key == c))
            .map(|r| {
                json!({
                    "channel": sanitize(&r.channel_key),
                    "accountId": sanitize(r.account_id.as_deref().unwrap_or("default")),
                    "senderId": sanitize(&r.entry),
                    "readOnly": true,
                    "removeWith": "remove it from OpenClaw's Control UI, or revoke it there; OpenClaw's protocol cannot remove approved senders",
                })
            })
            .collect();
        Ok(json!({ "entries": entries }))
    }

    /// Lists OpenClaw's chat-sender requests and announces what changed since the last look.
    async fn relist_dm(&self) {
        let Ok(now) = self.dm_list(None).await else {
            return;
        };
        let (new, gone) = {
            let Ok(mut known) = self.dm_known.lock() else {
                return;
            };
            let ids: HashSet<String> = now.iter().map(|r| r.code.clone()).collect();
            let gone: Vec<DmRequestView> = known
                .iter()
                .filter(|(k, _)| !ids.contains(*k))
                .map(|(_, v)| v.clone())
                .collect();
            let new: Vec<DmRequestView> = now
                .iter()
                .filter(|r| !known.contains_key(&r.code))
                .cloned()
                .collect();
            *known = now.into_iter().map(|r| (r.code.clone(), r)).collect();
            (new, gone)
        };
        for r in gone {
            self.events.publish(Event::PairingResolved {
                channel: r.channel,
                account_id: r.account_id,
                sender_id: r.id,
                code: r.code,
                decision: Resolution::Resolved,
                notify: false,
            });
        }
        for r in new {
            self.events.publish(Event::PairingRequested(r));
        }
    }

    /// At (re)connect: device requests made or settled while detached are announced too.
    async fn relist_devices(&self) {
        let Ok(v) = self.call_raw("device.pair.list", json!({})).await else {
            return;
        };
        let pending: Vec<PendingDevice> = v["pending"]
            .as_array()
            .map(|a| a.iter().filter_map(pending_device).collect())
            .unwrap_or_default();
        let ids: HashSet<String> = pending.iter().map(|r| r.request_id.clone()).collect();
        let gone: Vec<String> = match self.devices_known.lock() {
            Ok(mut known) => {
                let gone = known.difference(&ids).cloned().collect();
                for r in &pending {
                    if known.insert(r.request_id.clone()) {
                        self.events.publish(Event::DevicePairRequested(r.clone()));
                    }
                }
                known.retain(|k| ids.contains(k));
                gone
            }
            Err(_) => return,
        };
        for request_id in gone {
            self.events.publish(Event::DevicePairResolved {
                request_id,
                device_id: String::new(),
                decision: Resolution::Resolved,
                ts: 0,
            });
        }
    }

    /// OpenClaw's events, as ClawPair's.
    fn on_event(&self, name: &str, payload: &Value) {
        match name {
            "device.pair.requested" => {
                if let Some(r) = pending_device(payload) {
                    if let Ok(mut k) = self.devices_known.lock() {
                        k.insert(r.request_id.clone());
                    }
                    self.events.publish(Event::DevicePairRequested(r));
                }
            }
            "device.pair.resolved" => {
                let request_id = payload["requestId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                if let Ok(mut k) = self.devices_known.lock() {
                    k.remove(&request_id);
                }
                self.events.publish(Event::DevicePairResolved {
                    request_id,
                    device_id: payload["deviceId"].as_str().unwrap_or_default().to_string(),
                    decision: payload["decision"]
                        .as_str()
                        .and_then(Resolution::from_wire)
                        .unwrap_or(Resolution::Resolved),
                    ts: payload["ts"].as_i64().unwrap_or_default(),
                });
            }
            "device.pair.changed" => self.events.publish(Event::DevicePairChanged {
                device_id: payload["deviceId"].as_str().unwrap_or_default().to_string(),
                ts: 0,
            }),
            _ => {}
        }
    }
}

/// A pending device request of OpenClaw's, as ClawPair keeps one (fingerprint computed from
/// the key; names sanitised).
fn pending_device(v: &Value) -> Option<PendingDevice> {
    let s = |k: &str| sanitize(v[k].as_str().unwrap_or_default());
    let key = decode_public_key(v["publicKey"].as_str()?).ok()?;
    let is_repair = v["isRepair"].as_bool().unwrap_or(false);
    Some(PendingDevice {
        request_id: v["requestId"].as_str()?.to_string(),
        device_id: v["deviceId"].as_str()?.to_string(),
        public_key: v["publicKey"].as_str()?.to_string(),
        display_name: s("displayName"),
        platform: s("platform"),
        device_family: s("deviceFamily"),
        client_id: s("clientId"),
        client_mode: s("clientMode"),
        role: v["role"].as_str().unwrap_or("operator").to_string(),
        scopes: v["scopes"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x.as_str().map(sanitize)).collect())
            .unwrap_or_default(),
        remote_ip: s("remoteIp"),
        fingerprint: fingerprint_for(&key),
        is_repair,
        reason: if is_repair {
            "role-upgrade"
        } else {
            "not-paired"
        }
        .into(),
        regains: false,
        ts: v["ts"].as_i64().unwrap_or_default(),
        extra: Map::new(),
    })
}

/// How long OpenClaw keeps a device request, for the window's countdown.
const OPENCLAW_PENDING_TTL_MS: Millis = 5 * 60_000;

fn pending_view(v: &Value) -> Option<Value> {
    let r = pending_device(v)?;
    let mut out = serde_json::to_value(&r).ok()?;
    out["name"] = r.shown_name().into();
    out["kind"] = r.kind_in_words().into();
    out["roles"] = json!([r.role]);
    out["silent"] = false.into();
    out["expiresAtMs"] = (r.ts + OPENCLAW_PENDING_TTL_MS).into();
    Some(out)
}

fn paired_view(v: &Value) -> Value {
    let mut out = v.clone();
    let s = |k: &str| sanitize(v[k].as_str().unwrap_or_default());
    let name = [s("operatorLabel"), s("displayName"), s("clientId")]
        .into_iter()
        .find(|n| !n.is_empty())
        .unwrap_or_else(|| s("deviceId").chars().take(12).collect());
    out["name"] = name.into();
    if let Some(key) = v["publicKey"]
        .as_str()
        .and_then(|k| decode_public_key(k).ok())
    {
        out["fingerprint"] = fingerprint_for(&key).into();
    }
    if out.get("approvedScopes").is_none() {
        out["approvedScopes"] = v["scopes"].clone();
    }
    out["stale"] = false.into();
    out
}

/// A chat-sender request of OpenClaw's, as ClawPair shows one. OpenClaw names requests by an
/// id, not the code the sender got: the id stands in the code's place.
fn dm_view(v: &Value) -> Option<DmRequestView> {
    let s = |k: &str| sanitize(v[k].as_str().unwrap_or_default());
    let meta = v["metadata"]
        .as_object()
        .map(crate::service::clean_meta)
        .unwrap_or_default();
    Some(DmRequestView {
        channel: s("channel"),
        account_id: s("accountId"),
        id: s("senderId"),
        code: v["requestId"].as_str()?.to_string(),
        created_at: s("createdAt"),
        last_seen_at: s("lastSeenAt"),
        expires_at: s("expiresAt"),
        meta,
        invalid_name: false,
    })
}

/// Connects, serves requests and events until the socket closes, then again with backoff.
/// Ends when the [`Remote`] is dropped.
async fn drive(
    remote: std::sync::Weak<Remote>,
    target: Target,
    mut requests: mpsc::Receiver<(String, Value, Reply)>,
) {
    let mut backoff = 1u64;
    loop {
        let Some(r) = remote.upgrade() else { return };
        r.set_status(Status::Connecting {
            url: target.url.clone(),
        });
        drop(r);
        let reason = match connect(&target).await {
            Ok((ws, hello)) => {
                backoff = 1;
                match session(&remote, ws, hello, &mut requests).await {
                    Some(reason) => reason,
                    None => return,
                }
            }
            Err(e) => e,
        };
        let Some(r) = remote.upgrade() else { return };
        r.set_status(Status::Down {
            url: target.url.clone(),
            reason,
            retry_in_s: backoff,
        });
        drop(r);
        // Calls made while detached fail at once instead of waiting for the next attempt.
        let until = tokio::time::sleep(Duration::from_secs(backoff));
        tokio::pin!(until);
        loop {
            tokio::select! {
                _ = &mut until => break,
                req = requests.recv() => match req {
                    Some((_, _, reply)) => {
                        let _ = reply.send(Err(unavailable(format!("not attached to OpenClaw at {}", target.url))));
                    }
                    None => return,
                },
            }
        }
        backoff = (backoff * 2).min(30);
    }
}

async fn connect(target: &Target) -> Result<(Socket, Value), String> {
    let token = target.token.read()?;
    // OpenClaw accepts only client ids from its own list: a generic gateway client, as an
    // operator with the powers an approval desk needs.
    let mut opts = ConnectOptions::operator(&target.url, &token, "gateway-client");
    opts.client_mode = "backend".into();
    opts.display_name = Some("ClawPair".into());
    opts.auth = Auth::Token(token);
    match Client::connect(&opts, |_, _| {}).await {
        Ok(c) => {
            let hello = c.hello.clone();
            Ok((c.into_socket().0, hello))
        }
        Err(e) => Err(e.to_string()),
    }
}

/// One attached connection. Returns why it ended, or `None` when the `Remote` is gone.
async fn session(
    remote: &std::sync::Weak<Remote>,
    mut ws: Socket,
    hello: Value,
    requests: &mut mpsc::Receiver<(String, Value, Reply)>,
) -> Option<String> {
    let r = remote.upgrade()?;
    r.set_status(Status::Attached {
        url: r.url.clone(),
        version: sanitize(hello["server"]["version"].as_str().unwrap_or("?")),
    });
    drop(r);
    let mut waiting: HashMap<String, Reply> = HashMap::new();
    let mut next = 0u64;
    // What changed while detached is looked at first.
    let catch_up = {
        let remote = remote.clone();
        tokio::spawn(async move {
            if let Some(r) = remote.upgrade() {
                r.relist_devices().await;
                r.relist.notify_one();
            }
        })
    };
    let ended = loop {
        tokio::select! {
            req = requests.recv() => {
                let Some((method, params, reply)) = req else { break None };
                next += 1;
                let id = format!("cp-{next}");
                let frame = json!({ "type": "req", "id": id, "method": method, "params": params }).to_string();
                if ws.send(Message::text(frame)).await.is_err() {
                    let _ = reply.send(Err(unavailable("the connection to OpenClaw closed")));
                    break Some("the connection closed".to_string());
                }
                waiting.insert(id, reply);
            }
            msg = ws.next() => {
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(f))) => break Some(f.map_or("closed".into(), |f| format!("closed ({} {})", u16::from(f.code), f.reason))),
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => break Some(e.to_string()),
                    None => break Some("the connection closed".into()),
                };
                let Ok(v) = serde_json::from_str::<Value>(text.as_str()) else { continue };
                match v["type"].as_str() {
                    Some("res") => {
                        if let Some(reply) = v["id"].as_str().and_then(|id| waiting.remove(id)) {
                            let answer = if v["ok"] == true {
                                Ok(v["payload"].clone())
                            } else {
                                let e = &v["error"];
                                Err(RpcError {
                                    code: ErrorCode::from_wire(e["code"].as_str().unwrap_or("UNAVAILABLE")),
                                    message: sanitize(e["message"].as_str().unwrap_or("refused")),
                                    details: e.get("details").cloned(),
                                })
                            };
                            let _ = reply.send(answer);
                        }
                    }
                    Some("event") => {
                        let Some(r) = remote.upgrade() else { break None };
                        r.on_event(v["event"].as_str().unwrap_or_default(), &v["payload"]);
                    }
                    _ => {}
                }
            }
        }
    };
    catch_up.abort();
    for (_, reply) in waiting {
        let _ = reply.send(Err(unavailable("the connection to OpenClaw closed")));
    }
    ended
}

/// Keeps the chat-sender requests current: on a nudge (a reconnect, a change in OpenClaw's
/// database on this computer) and on a modest timer.
async fn follow_dm_requests(remote: std::sync::Weak<Remote>) {
    let (local, every) = match remote.upgrade() {
        Some(r) => {
            let local = r.local_state.clone();
            let every = if local.is_some() { 60 } else { 10 };
            (local, Duration::from_secs(every))
        }
        None => return,
    };
    // The watch lives as long as this task; its events only nudge.
    let _watch = local.and_then(|dir| watch_database(&dir, remote.clone()));
    loop {
        // Held only while listing, so dropping the last handle ends this task.
        let nudge = {
            let Some(r) = remote.upgrade() else { return };
            if matches!(r.status(), Status::Attached { .. }) {
                r.relist_dm().await;
            }
            r.relist.clone()
        };
        tokio::select! {
            _ = nudge.notified() => {
                // Let a burst of writes settle before listing.
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            _ = tokio::time::sleep(every) => {}
        }
        if remote.strong_count() == 0 {
            return;
        }
    }
}

/// Watches OpenClaw's `state/` directory (its SQLite database and write-ahead log): a change
/// there may be a new chat-sender request.
fn watch_database(
    dir: &std::path::Path,
    remote: std::sync::Weak<Remote>,
) -> Option<notify::RecommendedWatcher> {
    use notify::Watcher;
    let state = dir.join("state");
    let mut w = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
        if let (Ok(ev), Some(r)) = (ev, remote.upgrade()) {
            if ev.kind.is_modify() || ev.kind.is_create() {
                r.relist.notify_one();
            }
        }
    })
    .map_err(|e| tracing::warn!("cannot watch OpenClaw's database: {e}"))
    .ok()?;
    w.watch(&state, notify::RecursiveMode::NonRecursive)
        .map_err(|e| tracing::warn!("cannot watch {}: {e}", state.display()))
        .ok()?;
    Some(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openclaws_device_requests_read_as_clawpairs() {
        let id = crate::client::Identity::generate();
        let v = json!({ "requestId": "r1", "deviceId": id.device_id(), "publicKey": id.public_key(),
                        "displayName": "Pixel\u{202E}9", "platform": "android", "clientId": "openclaw-android",
                        "clientMode": "node", "role": "node", "roles": ["node"], "scopes": [], "silent": false,
                        "isRepair": false, "ts": 1000 });
        let r = pending_device(&v).unwrap();
        assert_eq!(r.fingerprint, id.fingerprint());
        assert_eq!(r.display_name, "Pixel9");
        let view = pending_view(&v).unwrap();
        assert_eq!(view["expiresAtMs"], 1000 + OPENCLAW_PENDING_TTL_MS);
        assert_eq!(view["kind"], "new device");
        assert!(pending_device(
            &json!({ "requestId": "r", "deviceId": "d", "publicKey": "not a key" })
        )
        .is_none());

        let d = dm_view(&json!({ "requestId": "telegram:ABCD2345", "channel": "telegram", "accountId": "default",
                                 "senderId": "42", "metadata": { "username": "dave" }, "createdAt": "x" }))
            .unwrap();
        assert_eq!(
            (d.code.as_str(), d.id.as_str()),
            ("telegram:ABCD2345", "42")
        );
        assert_eq!(d.meta["username"], "dave");
    }
}
