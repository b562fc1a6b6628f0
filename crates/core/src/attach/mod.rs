//! Companion mode: ClawPair as the approval desk of an OpenClaw gateway that already runs.
//! It runs no gateway of its own then and never writes OpenClaw's files; it talks to OpenClaw
//! over its protocol only ([`remote`]), as an operator, after finding it ([`discover`]).
//!
//! [`Backend`] is what the window, the tray and the notifications call: ClawPair's own core,
//! or the attached gateway for what lives there.
//!
//! OpenClaw's admin token never travels in clear over a network ([`transport`]): `wss://` with
//! a pinned certificate to any gateway not on loopback, plain `ws://` only to a loopback socket
//! this user or root owns ([`owner`]).

pub mod discover;
pub mod owner;
pub mod remote;
pub mod transport;

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use serde_json::Value;

use crate::owner::{Answer, OwnerRequest};
use crate::rpc::{self, Caller, RpcError};
use crate::service::Service;

/// The backend the desktop uses now (it changes when the owner attaches or detaches).
pub type SharedBackend = Arc<RwLock<Backend>>;

/// A copy of the current backend, to use without holding the lock.
pub fn current(b: &SharedBackend) -> Backend {
    match b.read() {
        Ok(g) => g.clone(),
        Err(p) => p.into_inner().clone(),
    }
}

/// What to attach to, from the settings (or `--attach URL`) and the OpenClaw installation
/// found on this computer. The token stays where it is: typed into ClawPair's settings, or
/// OpenClaw's own config, read at each connect. How it may travel is checked at each connect
/// too ([`transport::plan`]), so a refusal shows as the attachment's status.
pub fn target(
    settings: &crate::config::AttachSettings,
    url_override: Option<&str>,
) -> Result<remote::Target, String> {
    let found = discover::find();
    let url = url_override
        .filter(|u| !u.trim().is_empty())
        .map(|u| u.trim().to_string())
        .or_else(|| settings.url.clone().filter(|u| !u.trim().is_empty()))
        .or_else(|| found.as_ref().ok().map(|i| i.url.clone()))
        .ok_or_else(|| match &found {
            Err(e) => format!("{e}; give the gateway's URL to attach to it"),
            Ok(_) => "no gateway URL to attach to".to_string(),
        })?;
    let parsed =
        url::Url::parse(&url).map_err(|_| format!("{url:?} is not a ws:// or wss:// URL"))?;
    if !matches!(parsed.scheme(), "ws" | "wss") {
        return Err(format!("{url:?} is not a ws:// or wss:// URL"));
    }
    let loopback = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    let local = found.as_ref().ok().filter(|_| loopback);
    let token = match (&settings.token, &found) {
        (Some(t), _) if !t.trim().is_empty() => remote::TokenSource::Given(t.trim().to_string()),
        (_, Ok(i)) => remote::TokenSource::OpenClawConfig {
            state_dir: i.state_dir.clone(),
            config: i.config.clone(),
        },
        (_, Err(e)) => return Err(format!("{e}; type the gateway's token in Settings")),
    };
    Ok(remote::Target {
        url,
        token,
        tls_pin: settings
            .tls_fingerprint
            .clone()
            .filter(|p| !p.trim().is_empty()),
        local_state: local.map(|i| i.state_dir.clone()),
    })
}

/// Where the desktop's requests go.
#[derive(Clone)]
pub enum Backend {
    /// ClawPair's own gateway and files.
    Local(Arc<Service>),
    /// An OpenClaw gateway; ClawPair's own service keeps only its settings and activity log.
    Attached {
        service: Arc<Service>,
        remote: Arc<remote::Remote>,
    },
}

impl Backend {
    pub fn service(&self) -> &Arc<Service> {
        match self {
            Backend::Local(s) => s,
            Backend::Attached { service, .. } => service,
        }
    }

    pub fn remote(&self) -> Option<&Arc<remote::Remote>> {
        match self {
            Backend::Local(_) => None,
            Backend::Attached { remote, .. } => Some(remote),
        }
    }

    /// One of the owner's actions, its answer read as the type the action answers
    /// ([`OwnerRequest::answer_kind`]).
    pub async fn ask<A: Answer>(&self, via: &str, req: &OwnerRequest) -> Result<A, RpcError> {
        A::read(req, self.call(via, None, req).await?)
    }

    /// One of the owner's actions at this computer (`via` says where: `window`,
    /// `notification`, `tray`; `listening`: where ClawPair's own gateway listens, for setup
    /// URLs). File work runs off the async runtime's workers.
    pub async fn call(
        &self,
        via: &str,
        listening: Option<SocketAddr>,
        req: &OwnerRequest,
    ) -> Result<Value, RpcError> {
        if let Backend::Attached { service, remote } = self {
            if let Some(answer) = remote.answer(req).await {
                // Decisions taken here on OpenClaw's data are in ClawPair's activity log too.
                if answer.is_ok() && !req.reads_only() {
                    let mut details = serde_json::Map::new();
                    details.insert("method".into(), req.method().into());
                    details.insert("gateway".into(), remote.url().into());
                    // What was decided (ids, decisions; an owner action carries no secret).
                    details.insert("params".into(), req.params());
                    let s = service.clone();
                    let via = via.to_string();
                    let _ = tokio::task::spawn_blocking(move || {
                        s.audit("openclaw.call", &via, details)
                    })
                    .await;
                }
                return answer;
            }
        }
        let (s, via) = (self.service().clone(), via.to_string());
        let (m, params) = (req.method(), req.params());
        let own = tokio::task::spawn_blocking(move || {
            rpc::call(&s, &Caller::owner(&via, listening), m, params)
        })
        .await
        .unwrap_or_else(|_| {
            Err(RpcError::new(
                crate::protocol::Code::Unavailable,
                "the request failed inside ClawPair",
            ))
        })?;
        match (self, req) {
            // Attached, the activity has OpenClaw's decided approvals in it too (decided from
            // ClawPair or anywhere else); without them when OpenClaw cannot be asked.
            (Backend::Attached { remote, .. }, OwnerRequest::AuditTail { limit }) => {
                match remote.decided_approvals(*limit).await {
                    Ok(theirs) => Ok(with_entries(own, theirs, *limit)),
                    Err(_) => Ok(own),
                }
            }
            _ => Ok(own),
        }
    }
}

/// An `audit.tail` answer with `more` entries merged in, in time order, the last `limit` kept.
fn with_entries(
    mut answer: Value,
    more: Vec<crate::store::audit::AuditEntry>,
    limit: usize,
) -> Value {
    let mut all: Vec<crate::store::audit::AuditEntry> =
        serde_json::from_value(answer["entries"].take()).unwrap_or_default();
    all.extend(more);
    all.sort_by_key(|e| e.ts_ms);
    let skip = all.len().saturating_sub(limit);
    answer["entries"] = serde_json::to_value(&all[skip..]).unwrap_or_default();
    answer
}
