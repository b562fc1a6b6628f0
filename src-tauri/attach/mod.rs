//! Companion mode: ClawPair as the approval desk of an OpenClaw gateway that already runs.
//! It runs no gateway of its own then and never writes OpenClaw's files; it talks to OpenClaw
//! over its protocol only ([`remote`]), as an operator, after finding it ([`discover`]).
//!
//! [`Backend`] is what the window, the tray and the notifications call: ClawPair's own core,
//! or the attached gateway for what lives there.

pub mod discover;
pub mod remote;

use std::sync::Arc;

use serde_json::Value;

use crate::rpc::{self, Caller, RpcError};
use crate::service::Service;

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

    /// One of ClawPair's methods for the owner at this computer (`via` says where: `window`,
    /// `notification`, `tray`). File work runs off the async runtime's workers.
    pub async fn call(&self, via: &str, method: &str, params: Value) -> Result<Value, RpcError> {
        if let Backend::Attached { service, remote } = self {
            if let Some(answer) = remote.call(method, params.clone()).await {
                // Decisions taken here on OpenClaw's data are in ClawPair's activity log too.
                if answer.is_ok() && !method.ends_with(".list") {
                    let mut details = serde_json::Map::new();
                    details.insert("method".into(), method.into());
                    details.insert("gateway".into(), remote.url().into());
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
        let (s, m, via) = (self.service().clone(), method.to_string(), via.to_string());
        tokio::task::spawn_blocking(move || rpc::call(&s, &Caller::owner(&via, None), &m, params))
            .await
            .unwrap_or_else(|_| {
                Err(RpcError::new(
                    "UNAVAILABLE",
                    "the request failed inside ClawPair",
                ))
            })
    }
}
