//! Chat-sender requests and allowlists on the attached gateway: listing OpenClaw's requests and
//! announcing what changed (at reconnect, on a change in its database, on a timer), the events
//! of a settled request, and the approved senders read from OpenClaw's database.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{json, Map, Value};

use super::views::dm_view;
use super::{unavailable, unsupported, Remote, Status};
use crate::events::{DmRequestView, Event};
use crate::protocol::Resolution;
use crate::rpc::RpcError;
use crate::sanitize::sanitize;
use crate::service::AllowView;

impl Remote {
    pub(super) async fn dm_list(
        &self,
        channel: Option<&str>,
    ) -> Result<Vec<DmRequestView>, RpcError> {
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

    pub(super) fn settled_dm(&self, r: &DmRequestView, decision: Resolution) {
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
    pub(super) fn allow_list(&self, channel: Option<&str>) -> Result<Value, RpcError> {
        let Some(dir) = &self.local_state else {
            return Err(unsupported(
                "OpenClaw's protocol does not list approved senders; ClawPair shows them when OpenClaw runs on this computer",
            ));
        };
        let store = crate::store::openclaw::read(&crate::store::openclaw::store_path(dir))
            .map_err(|e| unavailable(e.to_string()))?;
        let entries: Vec<AllowView> = store
            .allow
            .iter()
            .filter(|r| channel.is_none_or(|c| r.channel_key == c))
            .map(|r| AllowView {
                channel: sanitize(&r.channel_key),
                account_id: sanitize(r.account_id.as_deref().unwrap_or("default")),
                sender_id: sanitize(&r.entry),
                approved_at: None,
                approved_via: None,
                label: None,
                last_message_at: None,
                read_only: true,
                remove_with: Some(
                    "remove it from OpenClaw's Control UI, or revoke it there; OpenClaw's \
                     protocol cannot remove approved senders"
                        .into(),
                ),
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
}

/// Keeps the chat-sender requests current: on a nudge (a reconnect, a change in OpenClaw's
/// database on this computer) and on a modest timer.
pub(super) async fn follow_dm_requests(remote: std::sync::Weak<Remote>) {
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
