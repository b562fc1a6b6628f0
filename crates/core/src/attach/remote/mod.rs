//! The connection to an OpenClaw gateway ClawPair is attached to: one operator socket, kept
//! open (reconnecting with backoff when the gateway restarts), with several requests in
//! flight, and OpenClaw's events turned into ClawPair's own on the app's event stream, so the
//! notifications, the tray and the window work the same on OpenClaw's requests.
//!
//! Chat-sender requests have no event in OpenClaw's protocol: they are listed
//! (`channels.pairing.list`) when something may have changed — at (re)connect, when OpenClaw's
//! database changes on this computer (a file watch on its `state/` directory), and every
//! minute as a safety net (every 10 s when the gateway is on another computer).
//!
//! Here: what is attached to, its status and the [`Remote`] handle with its raw calls;
//! `socket.rs` the connection (reconnects, requests in flight, answers and events), `calls.rs`
//! ClawPair's methods answered on OpenClaw's, `events.rs` OpenClaw's device events as
//! ClawPair's, `dm.rs` the chat-sender requests and allowlists (listing, the database watch),
//! `views.rs` OpenClaw's records in ClawPair's shapes.

mod calls;
mod dm;
mod events;
mod execs;
pub mod history;
mod nodes;
mod socket;
mod views;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{mpsc, oneshot, Notify};

use self::dm::follow_dm_requests;
use self::socket::drive;
use crate::events::{DmRequestView, Event, EventBus};
use crate::protocol::Code;
use crate::rpc::RpcError;

/// What ClawPair attaches to: the gateway's URL, and where its token comes from.
#[derive(Clone)]
pub struct Target {
    pub url: String,
    pub token: TokenSource,
    /// The SHA-256 of the gateway's certificate, for `wss://` (`attach.tlsFingerprint`);
    /// required for any gateway not on loopback ([`crate::attach::transport::plan`]).
    pub tls_pin: Option<String>,
    /// OpenClaw's state directory, when the gateway runs on this computer (for the database
    /// watch and the read-only allowlists).
    pub local_state: Option<PathBuf>,
    /// The gateway's name where several are attached: the owner's label, else where it is
    /// ([`crate::attach::default_label`]).
    pub label: String,
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
    label: String,
    local_state: Option<PathBuf>,
    requests: mpsc::Sender<(String, Value, Reply)>,
    status: Mutex<Status>,
    events: EventBus,
    /// Chat-sender requests last listed, by OpenClaw's request id, with their account.
    dm_known: Mutex<HashMap<String, DmRequestView>>,
    /// Device requests last seen pending.
    devices_known: Known,
    /// Node capability requests last seen pending.
    nodes_known: Known,
    /// Exec approvals last seen pending.
    execs_known: Known,
    relist: Arc<Notify>,
}

/// The ids of one kind of request last seen pending at OpenClaw, so each is announced once
/// when asked and once when settled, however many ways (event, answer, relist) it is heard of.
#[derive(Default)]
struct Known(Mutex<HashSet<String>>);

impl Known {
    /// Takes in a request heard of; true when it is new.
    fn heard(&self, id: &str) -> bool {
        self.0
            .lock()
            .map(|mut k| k.insert(id.to_string()))
            .unwrap_or(false)
    }

    fn has(&self, id: &str) -> bool {
        self.0.lock().is_ok_and(|k| k.contains(id))
    }

    /// Lets go of a settled request; true when it was pending here.
    fn settled(&self, id: &str) -> bool {
        self.0.lock().map(|mut k| k.remove(id)).unwrap_or(false)
    }

    /// At (re)connect, against what OpenClaw lists as pending now: the ids not heard of before
    /// (taken in), and those pending here that OpenClaw no longer lists (left for the caller
    /// to settle).
    fn relist(&self, now: &[String]) -> (Vec<String>, Vec<String>) {
        let Ok(mut known) = self.0.lock() else {
            return (Vec::new(), Vec::new());
        };
        let gone = known.iter().filter(|k| !now.contains(k)).cloned().collect();
        let new = now
            .iter()
            .filter(|id| known.insert((*id).clone()))
            .cloned()
            .collect();
        (new, gone)
    }
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
            label: target.label.clone(),
            local_state: target.local_state.clone(),
            requests: tx,
            status: Mutex::new(Status::Connecting {
                url: target.url.clone(),
            }),
            events,
            dm_known: Mutex::default(),
            devices_known: Known::default(),
            nodes_known: Known::default(),
            execs_known: Known::default(),
            relist: Arc::new(Notify::new()),
        });
        tokio::spawn(drive(Arc::downgrade(&remote), target, rx));
        tokio::spawn(follow_dm_requests(Arc::downgrade(&remote)));
        remote
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Its name in lists and notifications where several gateways are attached.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Whether `id` names a request or approval pending here as last heard: a device's or a
    /// node's request id, an approval's id, a chat sender's request id. Ids are OpenClaw's
    /// random ones, so at most one attached gateway knows a given id.
    pub fn knows(&self, id: &str) -> bool {
        [&self.devices_known, &self.nodes_known, &self.execs_known]
            .iter()
            .any(|k| k.has(id))
            || self.dm_known.lock().is_ok_and(|m| m.contains_key(id))
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
}

#[cfg(test)]
mod known_tests {
    use super::Known;

    #[test]
    fn each_request_is_new_once_and_settled_once_however_it_is_heard_of() {
        let k = Known::default();
        assert!(k.heard("a"));
        assert!(
            !k.heard("a"),
            "the event and the relist name the same request"
        );
        let (new, gone) = k.relist(&["a".into(), "b".into()]);
        assert_eq!((new, gone), (vec!["b".to_string()], vec![]));
        let (new, gone) = k.relist(&["b".into()]);
        assert_eq!((new, gone), (vec![], vec!["a".to_string()]));
        assert!(k.settled("a"));
        assert!(!k.settled("a"), "settled once");
        assert!(k.settled("b"));
    }
}
