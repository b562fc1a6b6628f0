//! Desktop notifications (freedesktop D-Bus, through notify-rust): one per new DM request and
//! per new device request, with Approve and Reject buttons that act directly and a body click
//! that opens the window. A device asking for `operator.admin` gets *Review…* instead of
//! Approve: full access is never one click on a notification. A notification is closed when its request is resolved anywhere else.
//! Waiting for a click never blocks the runtime; without a notification server the app goes on.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use notify_rust::{Notification, NotificationHandle, NotificationResponse, Timeout};
use serde::Serialize;
use tauri::{AppHandle, Runtime};

use clawpair_core::approval::{ApprovalKind, ExecDecision, PendingExec};
use clawpair_core::events::{DmRequestView, Event, Resolution};
use clawpair_core::owner::{DmRequests, NodeList, OwnerRequest};
use clawpair_core::pairing::device::{PendingDevice, SCOPE_ADMIN};
use clawpair_core::pairing::node::PendingNode;
use clawpair_core::sanitize::{escape_markup, sanitize};
use clawpair_core::service::{DeviceList, Service};

/// Whether notifications work, for the window.
#[derive(Default)]
pub struct NotifyStatus {
    unavailable: AtomicBool,
    last_error: Mutex<Option<String>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NotifySnapshot {
    pub available: bool,
    pub error: Option<String>,
}

impl NotifyStatus {
    pub fn snapshot(&self) -> NotifySnapshot {
        NotifySnapshot {
            available: !self.unavailable.load(Ordering::Relaxed),
            error: self.last_error.lock().ok().and_then(|e| e.clone()),
        }
    }
    /// Records a failure; logs it only the first time.
    fn failed(&self, e: String) {
        if !self.unavailable.swap(true, Ordering::Relaxed) {
            tracing::warn!("desktop notifications are unavailable ({e}); the window and tray still show every request");
        }
        if let Ok(mut l) = self.last_error.lock() {
            *l = Some(e);
        }
    }
    fn worked(&self) {
        self.unavailable.store(false, Ordering::Relaxed);
    }
}

/// What a notification is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subject {
    Dm {
        channel: String,
        code: String,
    },
    Device {
        request_id: String,
    },
    /// A node asks to expose new capabilities or commands (an attached OpenClaw's).
    Node {
        request_id: String,
    },
    /// An agent asks to run a command (an attached OpenClaw's exec approval).
    Exec {
        id: String,
    },
    /// ClawPair's own gateway could not start (or stopped): one note, replaced by the next.
    Gateway,
}

impl Subject {
    /// The id of the request or approval it is about (a chat sender's: its code).
    fn request_id(&self) -> Option<&str> {
        match self {
            Subject::Dm { code, .. } => Some(code),
            Subject::Device { request_id } | Subject::Node { request_id } => Some(request_id),
            Subject::Exec { id } => Some(id),
            Subject::Gateway => None,
        }
    }
}

/// The text of a notification for a DM request.
pub fn dm_text(r: &DmRequestView) -> (String, String) {
    let who = r.who();
    (
        format!("Pairing request · {}", r.channel),
        escape_markup(&format!(
            "{who} wants to talk to your agent.\nCode {}",
            r.code
        )),
    )
}

/// The text of a notification for a device request.
pub fn device_text(r: &PendingDevice) -> (String, String) {
    let mut parts = vec![r.shown_name()];
    if !r.platform.is_empty() {
        parts.push(sanitize(&r.platform));
    }
    if !r.remote_ip.is_empty() {
        parts.push(sanitize(&r.remote_ip));
    }
    let what = if r.is_repair {
        format!("A paired device {}", r.kind_in_words())
    } else {
        "A new device wants to pair".to_string()
    };
    let mut body = format!("{}\nFingerprint {}", parts.join(" · "), r.fingerprint);
    if needs_review(r) {
        body.push_str("\nAsks for full access (operator.admin): review it in ClawPair");
    } else if r.scopes.is_empty() {
        body.push_str(&format!("\nAs {}", r.role));
    } else {
        body.push_str(&format!("\nAs {} with {}", r.role, r.scopes.join(", ")));
    }
    // Notification servers may render markup in a body: a requester's `<b>` stays text.
    (what, escape_markup(&body))
}

/// The text of a notification for a node's capability request: who, and all it asks to expose.
pub fn node_text(r: &PendingNode) -> (String, String) {
    let mut parts = vec![r.name()];
    if !r.platform.is_empty() {
        parts.push(r.platform.clone());
    }
    let mut body = format!("{}\nAsks to expose {}", parts.join(" · "), r.asks());
    if r.needs_admin() {
        body.push_str("\nApproving it takes full access (operator.admin): review it in ClawPair");
    }
    (
        "A node asks for new commands".to_string(),
        escape_markup(&body),
    )
}

/// The text of a notification for an exec approval: the command line, then where and for whom
/// it would run, then the gateway's warnings.
pub fn exec_text(r: &PendingExec) -> (String, String) {
    let mut body = r.command.clone();
    if !r.description.is_empty() {
        body.push('\n');
        body.push_str(&r.description);
    }
    let context = r.context();
    if !context.is_empty() {
        body.push('\n');
        body.push_str(&context);
    }
    for w in &r.warnings {
        body.push_str("\n⚠ ");
        body.push_str(w);
    }
    let summary = match r.kind {
        ApprovalKind::Exec => "An agent asks to run a command",
        ApprovalKind::Plugin if r.severity == "critical" => {
            "A plugin asks before it acts (critical)"
        }
        ApprovalKind::Plugin => "A plugin asks before it acts",
    };
    (summary.to_string(), escape_markup(&body))
}

/// Whether a device request must be reviewed in the window rather than approved from the
/// notification: it asks for `operator.admin`.
pub fn needs_review(r: &PendingDevice) -> bool {
    r.scopes.iter().any(|s| s == SCOPE_ADMIN)
}

/// A shown notification.
struct Shown {
    id: u32,
    handle: Arc<NotificationHandle>,
    /// For a device's request: the device, whose next request replaces this notification.
    device: Option<String>,
}

/// How long the notification of a request that was replaced (or rejected: OpenClaw reports a
/// replaced request so) stays for the device's new request to take its place.
const REPLACE_GRACE: Duration = Duration::from_secs(2);

/// Everything the notifier shares between its tasks.
struct Notifier<R: Runtime> {
    app: AppHandle<R>,
    service: Arc<Service>,
    /// Where the buttons act: ClawPair's core, or the OpenClaw gateway it is attached to.
    backend: clawpair_core::attach::SharedBackend,
    status: Arc<NotifyStatus>,
    shown: Mutex<HashMap<Subject, Shown>>,
    /// Clicks on ids not in `shown` yet: the server may send one before `Notify`'s answer
    /// reaches this process. Taken when the id is recorded; guarded by `shown`'s lock (taken
    /// first), so a click is either seen as shown or left here, never lost in between.
    early: Mutex<Vec<EarlyClick>>,
}

/// A click that came before its notification's id was known here.
struct EarlyClick {
    id: u32,
    action: String,
    at: std::time::Instant,
}

/// How many early clicks are kept, and for how long: a click waits for its id to be recorded,
/// which takes a moment, not a minute.
const EARLY_CLICKS: usize = 16;
const EARLY_CLICK_LIFE: Duration = Duration::from_secs(30);

fn response_to(action: String) -> NotificationResponse {
    if action == "default" {
        NotificationResponse::Default
    } else {
        NotificationResponse::Action(action)
    }
}

/// Starts the notifier: it follows the event stream for as long as the app runs, and listens
/// for clicks from the start.
pub fn spawn<R: Runtime>(
    app: AppHandle<R>,
    backend: clawpair_core::attach::SharedBackend,
    status: Arc<NotifyStatus>,
) {
    let service = clawpair_core::attach::current(&backend).service().clone();
    let mut rx = service.events().subscribe();
    let n = Arc::new(Notifier {
        app,
        service,
        backend,
        status,
        shown: Mutex::default(),
        early: Mutex::default(),
    });
    tauri::async_runtime::spawn(listen_for_clicks(n.clone()));
    tauri::async_runtime::spawn(async move {
        loop {
            let e = match rx.recv().await {
                Ok(e) => e,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    // Missed events may have settled requests: close what is no longer pending.
                    close_settled(&n).await;
                    continue;
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            };
            match e {
                Event::PairingRequested(r) => {
                    let (summary, body) = dm_text(&r);
                    let subject = Subject::Dm {
                        channel: r.channel.clone(),
                        code: r.code.clone(),
                    };
                    show(
                        &n,
                        subject,
                        summary,
                        body,
                        Buttons::Approve,
                        Duration::from_secs(3600),
                        None,
                    );
                }
                Event::DevicePairRequested(r) => {
                    let (summary, body) = device_text(&r);
                    let subject = Subject::Device {
                        request_id: r.request_id.clone(),
                    };
                    let buttons = if needs_review(&r) {
                        Buttons::Review
                    } else {
                        Buttons::Approve
                    };
                    show(
                        &n,
                        subject,
                        summary,
                        body,
                        buttons,
                        Duration::from_secs(600),
                        Some(r.device_id.clone()),
                    );
                }
                Event::NodePairRequested(r) => {
                    let (summary, body) = node_text(&r);
                    let buttons = if r.needs_admin() {
                        Buttons::Review
                    } else {
                        Buttons::Approve
                    };
                    // A node's request waits until decided: the notification stays as long.
                    show(
                        &n,
                        Subject::Node {
                            request_id: r.request_id.clone(),
                        },
                        summary,
                        body,
                        buttons,
                        Duration::from_secs(24 * 3600),
                        None,
                    );
                }
                Event::NodePairResolved { request_id, .. } => {
                    close(&n, &Subject::Node { request_id })
                }
                Event::ExecApprovalRequested(r) => {
                    let (summary, body) = exec_text(&r);
                    // Until it expires at the gateway (a decision after that is refused there).
                    let life = r.expires_at_ms - n.service.now_ms();
                    let life = Duration::from_millis(life.clamp(60_000, 24 * 3_600_000) as u64);
                    show(
                        &n,
                        Subject::Exec { id: r.id.clone() },
                        summary,
                        body,
                        Buttons::Exec {
                            always: r.allows(ExecDecision::AllowAlways),
                        },
                        life,
                        None,
                    );
                }
                Event::ExecApprovalResolved { id, .. } => close(&n, &Subject::Exec { id }),
                Event::PairingResolved { channel, code, .. } => {
                    close(&n, &Subject::Dm { channel, code })
                }
                Event::DevicePairResolved {
                    request_id,
                    decision,
                    ..
                } => {
                    let subject = Subject::Device { request_id };
                    if matches!(decision, Resolution::Superseded | Resolution::Rejected) {
                        // The device may be asking again: its new request takes this
                        // notification's place rather than closing it and opening another.
                        close_unless_replaced(&n, subject);
                    } else {
                        close(&n, &subject);
                    }
                }
                Event::GatewayStatus {
                    listening: false,
                    error: Some(e),
                    ..
                } => {
                    close(&n, &Subject::Gateway);
                    show(
                        &n,
                        Subject::Gateway,
                        "ClawPair's gateway is not running".into(),
                        escape_markup(&format!(
                            "{e}. Nothing can pair until it runs: open ClawPair to retry or change the port."
                        )),
                        Buttons::OpenOnly,
                        Duration::from_secs(3600),
                        None,
                    );
                }
                Event::GatewayStatus {
                    listening: true, ..
                } => close(&n, &Subject::Gateway),
                _ => {}
            }
        }
    });
}

/// Takes a notification off the list; true for the one caller that gets it, so a click seen
/// by both listeners is acted on once.
fn claim<R: Runtime>(
    n: &Notifier<R>,
    subject: &Subject,
    id: u32,
) -> Option<Arc<NotificationHandle>> {
    let mut m = n.shown.lock().ok()?;
    if m.get(subject).is_some_and(|s| s.id == id) {
        m.remove(subject).map(|s| s.handle)
    } else {
        None
    }
}

/// Closes the notifications of requests that are no longer pending, as the backend lists them.
async fn close_settled<R: Runtime>(n: &Notifier<R>) {
    let backend = clawpair_core::attach::current(&n.backend);
    let devices = backend.ask::<DeviceList>("notification", &OwnerRequest::DeviceList {});
    let dms = backend.ask::<DmRequests>("notification", &OwnerRequest::DmList { channel: None });
    let nodes = backend.ask::<NodeList>("notification", &OwnerRequest::NodeList {});
    let execs = backend.ask::<Vec<PendingExec>>("notification", &OwnerRequest::ExecList {});
    let (Ok(devices), Ok(dms), Ok(nodes), Ok(execs)) = tokio::join!(devices, dms, nodes, execs)
    else {
        return;
    };
    let pending: Vec<Subject> = (devices.pending.into_iter())
        .map(|r| Subject::Device {
            request_id: r.request.request_id,
        })
        .chain(execs.into_iter().map(|r| Subject::Exec { id: r.id }))
        .chain(nodes.pending.into_iter().map(|r| Subject::Node {
            request_id: r.request_id,
        }))
        .chain(dms.requests.into_iter().map(|r| Subject::Dm {
            channel: r.channel,
            code: r.code,
        }))
        .collect();
    let settled: Vec<Subject> = match n.shown.lock() {
        Ok(m) => m
            .keys()
            .filter(|k| **k != Subject::Gateway && !pending.contains(k))
            .cloned()
            .collect(),
        Err(_) => return,
    };
    for s in settled {
        close(n, &s);
    }
}

/// Closes the notification of a request settled elsewhere (or acted on).
fn close<R: Runtime>(n: &Notifier<R>, subject: &Subject) {
    let handle = n
        .shown
        .lock()
        .ok()
        .and_then(|mut m| m.remove(subject))
        .map(|s| s.handle);
    if let Some(h) = handle {
        tauri::async_runtime::spawn(async move { h.close_async().await });
    }
}

/// Takes the notification shown for another request of `device`, if any, for the new one to
/// replace. The request it was for is no longer the one to decide, so its waiter finds
/// nothing to act on.
fn take_for_device<R: Runtime>(n: &Notifier<R>, device: &str, subject: &Subject) -> Option<Shown> {
    let mut m = n.shown.lock().ok()?;
    let old = m
        .iter()
        .find(|(k, s)| {
            *k != subject
                && matches!(k, Subject::Device { .. })
                && s.device.as_deref() == Some(device)
        })
        .map(|(k, _)| k.clone())?;
    m.remove(&old)
}

/// Closes a device request's notification after [`REPLACE_GRACE`], unless the device's new
/// request has taken its place by then.
fn close_unless_replaced<R: Runtime>(n: &Arc<Notifier<R>>, subject: Subject) {
    let Some(id) = n
        .shown
        .lock()
        .ok()
        .and_then(|m| m.get(&subject).map(|s| s.id))
    else {
        return;
    };
    let n = n.clone();
    tauri::async_runtime::spawn(async move {
        tokio::time::sleep(REPLACE_GRACE).await;
        if let Some(h) = claim(&n, &subject, id) {
            h.close_async().await;
        }
    });
}

/// Listens for clicks on every notification from the moment the app starts. notify-rust's own
/// wait subscribes only after `Notify` returned; this listener has subscribed long before, so a
/// click that comes at once is not missed. (Servers that send a click only to the connection
/// that showed the notification are covered by notify-rust's wait.)
async fn listen_for_clicks<R: Runtime>(n: Arc<Notifier<R>>) {
    use futures_util::StreamExt;
    let Ok(conn) = zbus::Connection::session().await else {
        return;
    };
    let rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .interface("org.freedesktop.Notifications")
        .and_then(|b| b.member("ActionInvoked"))
        .map(|b| b.build());
    let Ok(rule) = rule else { return };
    let Ok(mut stream) = zbus::MessageStream::for_match_rule(rule, &conn, None).await else {
        return;
    };
    while let Some(Ok(msg)) = stream.next().await {
        let Ok((id, action)) = msg.body().deserialize::<(u32, String)>() else {
            continue;
        };
        let subject = {
            let Ok(shown) = n.shown.lock() else { continue };
            let subject = shown
                .iter()
                .find(|(_, s)| s.id == id)
                .map(|(k, _)| k.clone());
            if subject.is_none() {
                if let Ok(mut early) = n.early.lock() {
                    early.retain(|c| c.at.elapsed() < EARLY_CLICK_LIFE);
                    if early.len() == EARLY_CLICKS {
                        early.remove(0);
                    }
                    early.push(EarlyClick {
                        id,
                        action: action.clone(),
                        at: std::time::Instant::now(),
                    });
                }
            }
            subject
        };
        if let Some(subject) = subject {
            respond(&n, subject, id, response_to(action)).await;
        }
    }
}

/// The buttons a notification offers besides opening the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Buttons {
    Approve,
    /// An admin-level ask: decided in the window only.
    Review,
    /// Nothing to decide, only to look at.
    OpenOnly,
    /// An exec approval: Allow once, Always allow (where the gateway offers it), Deny.
    Exec {
        always: bool,
    },
}

/// Shows a notification for `subject`. For a device's request (`device`), one still shown
/// for another request of the same device is replaced in place: the device asked again and
/// got a new request id, and the owner decides the request shown, never the one before.
#[allow(clippy::too_many_arguments)]
fn show<R: Runtime>(
    n: &Arc<Notifier<R>>,
    subject: Subject,
    summary: String,
    body: String,
    buttons: Buttons,
    life: Duration,
    device: Option<String>,
) {
    let n = n.clone();
    tauri::async_runtime::spawn(async move {
        if !n.service.settings_off_thread().await.ui.notifications {
            return;
        }
        // Announced again (a gateway attached afresh lists what waits): it is on screen already.
        if n.shown.lock().is_ok_and(|m| m.contains_key(&subject)) {
            return;
        }
        // Several gateways attached: which one asks (and a device's requests replace each
        // other only at the same gateway).
        let gateway = subject
            .request_id()
            .and_then(|id| clawpair_core::attach::current(&n.backend).gateway_of(id));
        let (body, device) = match &gateway {
            Some(g) => (
                format!("{}\n{body}", escape_markup(&format!("At {g}."))),
                device.map(|d| format!("{g}/{d}")),
            ),
            None => (body, device),
        };
        // A server that shows no buttons (dunst and others): the notification says so, and
        // ClawPair's own small window asks instead.
        let asks_here =
            buttons != Buttons::OpenOnly && !super::approval::server_shows_buttons().await;
        let body = if asks_here {
            format!("{body}\nApprove or reject it in the ClawPair window that opened.")
        } else {
            body
        };
        let mut note = Notification::new();
        note.appname("ClawPair")
            .summary(&summary)
            .body(&body)
            .icon("clawpair");
        match buttons {
            _ if asks_here => {}
            Buttons::Approve => {
                note.action("approve", "Approve").action("reject", "Reject");
            }
            Buttons::Review => {
                note.action("review", "Review…").action("reject", "Reject");
            }
            Buttons::Exec { always } => {
                note.action("allow-once", ExecDecision::AllowOnce.label());
                if always {
                    note.action("allow-always", ExecDecision::AllowAlways.label());
                }
                note.action("deny", ExecDecision::Deny.label());
            }
            Buttons::OpenOnly => {}
        }
        if asks_here {
            super::approval::open(&n.app);
        }
        let replaced = device
            .as_deref()
            .and_then(|d| take_for_device(&n, d, &subject));
        if let Some(old) = &replaced {
            note.id(old.id);
        }
        let shown = note
            .action("default", "Open ClawPair")
            .timeout(Timeout::Never)
            .show_async()
            .await;
        let handle = match shown {
            Ok(h) => Arc::new(h),
            Err(e) => return n.status.failed(e.to_string()),
        };
        n.status.worked();
        let id = handle.id();
        // A server that did not replace it in place: the one before is closed.
        if let Some(old) = replaced.filter(|old| old.id != id) {
            old.handle.close_async().await;
        }
        let early = match n.shown.lock() {
            Ok(mut m) => {
                m.insert(
                    subject.clone(),
                    Shown {
                        id,
                        handle: handle.clone(),
                        device,
                    },
                );
                n.early.lock().ok().and_then(|mut e| {
                    let i = e.iter().position(|c| c.id == id)?;
                    Some(e.remove(i).action)
                })
            }
            Err(_) => None,
        };
        // Clicked before this process knew the id: acted on now.
        if let Some(action) = early {
            return respond(&n, subject, id, response_to(action)).await;
        }
        let mut response: Option<NotificationResponse> = None;
        // Ends on a click, on close (by us or the user), or when the request cannot be pending
        // any more, so no waiter outlives its request.
        let _ = tokio::time::timeout(
            life,
            handle.wait_for_action_async(|r| response = Some(r.clone())),
        )
        .await;
        match response {
            Some(r) => respond(&n, subject, id, r).await,
            None => {
                claim(&n, &subject, id);
            }
        }
    });
}

/// Acts on a click once: Approve and Reject act directly, the body opens the window.
async fn respond<R: Runtime>(
    n: &Notifier<R>,
    subject: Subject,
    id: u32,
    response: NotificationResponse,
) {
    let Some(handle) = claim(n, &subject, id) else {
        return;
    };
    match response {
        NotificationResponse::Action(a) if a == "approve" || a == "reject" => {
            // The server may keep it on screen after a click: it is done, close it.
            handle.close_async().await;
            let approve = a == "approve";
            let backend = clawpair_core::attach::current(&n.backend);
            if let Err(e) = act(&backend, &subject, approve).await {
                tracing::warn!(
                    "could not {} from the notification: {e}",
                    if approve { "approve" } else { "reject" }
                );
                super::show_window(&n.app, Some("requests"));
            }
        }
        NotificationResponse::Action(a) if ExecDecision::from_wire(&a).is_some() => {
            handle.close_async().await;
            let (Subject::Exec { id }, Some(decision)) = (&subject, ExecDecision::from_wire(&a))
            else {
                return;
            };
            let backend = clawpair_core::attach::current(&n.backend);
            let req = OwnerRequest::ExecResolve {
                id: id.clone(),
                decision,
            };
            if let Err(e) = backend.call("notification", None, &req).await {
                tracing::warn!(
                    "could not answer the exec approval from the notification: {}",
                    e.message
                );
                super::show_window(&n.app, Some("requests"));
            }
        }
        NotificationResponse::Action(a) if a == "review" => {
            handle.close_async().await;
            super::show_window(&n.app, Some("requests"));
        }
        NotificationResponse::Default if subject == Subject::Gateway => {
            super::show_window(&n.app, Some("settings"))
        }
        NotificationResponse::Default => super::show_window(&n.app, Some("requests")),
        _ => {}
    }
}

/// What the buttons do: the same calls as the window (on ClawPair's core or the attached
/// OpenClaw gateway), audited as `notification`.
async fn act(
    backend: &clawpair_core::attach::Backend,
    subject: &Subject,
    approve: bool,
) -> Result<(), String> {
    let call = |req: OwnerRequest| async move {
        backend
            .call("notification", None, &req)
            .await
            .map(|_| ())
            .map_err(|e| e.message)
    };
    match (subject, approve) {
        (Subject::Dm { channel, code }, true) => {
            call(OwnerRequest::DmApprove {
                channel: Some(channel.clone()),
                code: code.clone(),
                account_id: None,
                notify: false,
            })
            .await
        }
        (Subject::Dm { channel, code }, false) => {
            call(OwnerRequest::DmReject {
                channel: Some(channel.clone()),
                code: code.clone(),
                account_id: None,
            })
            .await
        }
        (Subject::Device { request_id }, true) => {
            // Whatever the server sent back, full access is decided in the window.
            let list = backend
                .ask::<DeviceList>("notification", &OwnerRequest::DeviceList {})
                .await
                .map_err(|e| e.message)?;
            let admin = list.pending.iter().any(|r| {
                r.request.request_id == *request_id
                    && r.request.scopes.iter().any(|x| x == SCOPE_ADMIN)
            });
            if admin {
                return Err("the device asks for operator.admin: review it in the window".into());
            }
            call(OwnerRequest::DeviceApprove {
                request_id: request_id.clone(),
                without_admin: false,
            })
            .await
        }
        (Subject::Device { request_id }, false) => {
            call(OwnerRequest::DeviceReject {
                request_id: request_id.clone(),
            })
            .await
        }
        (Subject::Node { request_id }, true) => {
            // As for devices: an ask that takes full access is decided in the window only.
            let list = backend
                .ask::<NodeList>("notification", &OwnerRequest::NodeList {})
                .await
                .map_err(|e| e.message)?;
            let admin = list.pending.iter().any(|r| {
                r.request_id == *request_id
                    && r.required_approve_scopes.iter().any(|x| x == SCOPE_ADMIN)
            });
            if admin {
                return Err(
                    "the node's commands take operator.admin: review it in the window".into(),
                );
            }
            call(OwnerRequest::NodeApprove {
                request_id: request_id.clone(),
            })
            .await
        }
        (Subject::Node { request_id }, false) => {
            call(OwnerRequest::NodeReject {
                request_id: request_id.clone(),
            })
            .await
        }
        (Subject::Exec { id }, _) => {
            // Approve / Reject never answer an exec approval: its own buttons do.
            Err(format!(
                "exec approval {id} takes Allow once, Always allow or Deny"
            ))
        }
        (Subject::Gateway, _) => Err("nothing to approve or reject".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Map};

    #[test]
    fn texts_are_sanitised_and_name_the_code_and_fingerprint() {
        let mut meta = Map::new();
        meta.insert("username".into(), json!("eve\u{202E}lyn"));
        let r = DmRequestView {
            channel: "telegram".into(),
            account_id: "default".into(),
            invalid_name: false,
            id: "42".into(),
            code: "ABCD2345".into(),
            created_at: String::new(),
            last_seen_at: String::new(),
            expires_at: String::new(),
            meta,
        };
        let (s, b) = dm_text(&r);
        assert_eq!(s, "Pairing request · telegram");
        let mut tricky = r.clone();
        tricky
            .meta
            .insert("username".into(), json!("<a href='x'>me</a> & co"));
        let (_, body) = dm_text(&tricky);
        assert!(
            body.contains("&lt;a href='x'&gt;me&lt;/a&gt; &amp; co"),
            "{body}"
        );
        assert!(
            b.contains("evelyn (42)") && b.contains("Code ABCD2345"),
            "{b}"
        );
    }
}
