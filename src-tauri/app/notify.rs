//! Desktop notifications (freedesktop D-Bus, through notify-rust): one per new DM request and
//! per new device request, with Approve and Reject buttons that act directly and a body click
//! that opens the window. A notification is closed when its request is resolved anywhere else.
//! Waiting for a click never blocks the runtime; without a notification server the app goes on.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use notify_rust::{Notification, NotificationHandle, NotificationResponse, Timeout};
use serde::Serialize;
use tauri::{AppHandle, Runtime};

use crate::events::{DmRequestView, Event};
use crate::pairing::device::PendingDevice;
use crate::sanitize::sanitize;
use crate::service::Service;

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
    Dm { channel: String, code: String },
    Device { request_id: String },
}

/// The text of a notification for a DM request.
pub fn dm_text(r: &DmRequestView) -> (String, String) {
    let name = ["username", "name", "firstName"]
        .iter()
        .find_map(|k| r.meta.get(*k).and_then(|v| v.as_str()).map(sanitize))
        .filter(|n| !n.is_empty());
    let who = match name {
        Some(n) => format!("{n} ({})", sanitize(&r.id)),
        None => sanitize(&r.id),
    };
    (
        format!("Pairing request · {}", r.channel),
        format!("{who} wants to talk to your agent.\nCode {}", r.code),
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
        "A paired device asks for more access"
    } else {
        "A new device wants to pair"
    };
    (
        what.to_string(),
        format!("{}\nFingerprint {}", parts.join(" · "), r.fingerprint),
    )
}

type Open = Arc<Mutex<HashMap<Subject, Arc<NotificationHandle>>>>;

/// Starts the notifier: it follows the event stream for as long as the app runs.
pub fn spawn<R: Runtime>(app: AppHandle<R>, service: Arc<Service>, status: Arc<NotifyStatus>) {
    let open: Open = Arc::default();
    let mut rx = service.events().subscribe();
    tauri::async_runtime::spawn(async move {
        loop {
            let e = match rx.recv().await {
                Ok(e) => e,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
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
                        &app,
                        &service,
                        &status,
                        &open,
                        subject,
                        summary,
                        body,
                        Duration::from_secs(3600),
                    );
                }
                Event::DevicePairRequested(r) => {
                    let (summary, body) = device_text(&r);
                    let subject = Subject::Device {
                        request_id: r.request_id.clone(),
                    };
                    show(
                        &app,
                        &service,
                        &status,
                        &open,
                        subject,
                        summary,
                        body,
                        Duration::from_secs(600),
                    );
                }
                Event::PairingResolved { channel, code, .. } => {
                    close(&open, &Subject::Dm { channel, code })
                }
                Event::DevicePairResolved { request_id, .. } => {
                    close(&open, &Subject::Device { request_id })
                }
                _ => {}
            }
        }
    });
}

fn close(open: &Open, subject: &Subject) {
    let handle = open.lock().ok().and_then(|mut m| m.remove(subject));
    if let Some(h) = handle {
        tauri::async_runtime::spawn(async move { h.close_async().await });
    }
}

#[allow(clippy::too_many_arguments)]
fn show<R: Runtime>(
    app: &AppHandle<R>,
    service: &Arc<Service>,
    status: &Arc<NotifyStatus>,
    open: &Open,
    subject: Subject,
    summary: String,
    body: String,
    life: Duration,
) {
    if !service.settings().ui.notifications {
        return;
    }
    let (app, service, status, open) = (app.clone(), service.clone(), status.clone(), open.clone());
    tauri::async_runtime::spawn(async move {
        let shown = Notification::new()
            .appname("ClawPair")
            .summary(&summary)
            .body(&body)
            .icon("clawpair")
            .action("approve", "Approve")
            .action("reject", "Reject")
            .action("default", "Open ClawPair")
            .timeout(Timeout::Never)
            .show_async()
            .await;
        let handle = match shown {
            Ok(h) => Arc::new(h),
            Err(e) => return status.failed(e.to_string()),
        };
        status.worked();
        if let Ok(mut m) = open.lock() {
            m.insert(subject.clone(), handle.clone());
        }
        let mut response: Option<NotificationResponse> = None;
        // Ends on a click, on close (by us or the user), or when the request cannot be pending
        // any more, so no waiter outlives its request.
        let _ = tokio::time::timeout(
            life,
            handle.wait_for_action_async(|r| response = Some(r.clone())),
        )
        .await;
        if let Ok(mut m) = open.lock() {
            if m.get(&subject).is_some_and(|h| Arc::ptr_eq(h, &handle)) {
                m.remove(&subject);
            }
        }
        match response {
            Some(NotificationResponse::Action(a)) if a == "approve" || a == "reject" => {
                let approve = a == "approve";
                let s = service.clone();
                let subj = subject.clone();
                let result =
                    tauri::async_runtime::spawn_blocking(move || act(&s, &subj, approve)).await;
                if let Ok(Err(e)) = result {
                    tracing::warn!(
                        "could not {} from the notification: {e}",
                        if approve { "approve" } else { "reject" }
                    );
                    super::show_window(&app, Some("requests"));
                }
            }
            Some(NotificationResponse::Default) => super::show_window(&app, Some("requests")),
            _ => {}
        }
    });
}

/// What the buttons do: the same calls as the window, audited as `notification`.
fn act(service: &Service, subject: &Subject, approve: bool) -> Result<(), String> {
    let via = "notification";
    let r = match (subject, approve) {
        (Subject::Dm { channel, code }, true) => service
            .dm_approve(Some(channel), code, None, false, via)
            .map(|_| ()),
        (Subject::Dm { channel, code }, false) => service
            .dm_reject(Some(channel), code, None, via)
            .map(|_| ()),
        (Subject::Device { request_id }, true) => {
            service.device_approve(request_id, via).map(|_| ())
        }
        (Subject::Device { request_id }, false) => {
            service.device_reject(request_id, via).map(|_| ())
        }
    };
    r.map_err(|e| e.to_string())
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
            id: "42".into(),
            code: "ABCD2345".into(),
            created_at: String::new(),
            last_seen_at: String::new(),
            expires_at: String::new(),
            meta,
        };
        let (s, b) = dm_text(&r);
        assert_eq!(s, "Pairing request · telegram");
        assert!(
            b.contains("evelyn (42)") && b.contains("Code ABCD2345"),
            "{b}"
        );
    }
}
