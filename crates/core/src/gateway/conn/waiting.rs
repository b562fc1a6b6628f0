//! `waitForApproval`: a device the owner has not approved yet keeps its socket open, told
//! `device.pair.pending`, until the owner approves or rejects it, the request expires or is
//! superseded, or the gateway shuts down.

use serde_json::json;
use tokio::sync::broadcast;
use tokio::time::sleep_until;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::handshake::{decide, end, Conn};
use super::wire::{close, read_msg, refuse, send, Read};
use super::Ws;
use crate::events::Event;
use crate::gateway::connect::{Access, Grant};
use crate::gateway::frames;
use crate::gateway::limits::WAITING_BUDGET;
use crate::protocol::{Code, Resolution};

impl Conn {
    /// `waitForApproval`: the socket stays open until the owner decides or the request expires.
    pub(super) async fn wait_for_owner(
        self,
        mut ws: Ws,
        slot: Option<crate::gateway::guard::PreauthSlot>,
        mut rx: broadcast::Receiver<Event>,
        mut request_id: String,
        fingerprint: String,
        mut expires_at_ms: i64,
    ) -> Option<(Conn, Ws, Grant)> {
        // While waiting the client has nothing to say beyond pings.
        ws.get_mut().set_budget(Some(WAITING_BUDGET));
        let pending = json!({ "requestId": request_id, "fingerprint": fingerprint, "expiresAtMs": expires_at_ms });
        if !send(&mut ws, frames::event("device.pair.pending", pending, 1)).await {
            return None;
        }
        let mut shutdown = self.shared.shutdown.clone();
        loop {
            let left = (expires_at_ms - self.shared.service.now_ms()).max(0) as u64;
            let expiry = tokio::time::Instant::now() + std::time::Duration::from_millis(left);
            let recheck = tokio::select! {
                ev = rx.recv() => match ev {
                    Ok(Event::DevicePairResolved { request_id: rid, decision, .. }) if rid == request_id => match decision {
                        Resolution::Approved => true,
                        Resolution::Rejected => return end(refuse(&mut ws, &self.id, Code::PairingRejected, "the owner rejected this device", None)).await,
                        Resolution::Expired => return end(refuse(&mut ws, &self.id, Code::PairingExpired, "the pairing request expired", None)).await,
                        _ => return end(refuse(&mut ws, &self.id, Code::NotPaired, "this pairing request was replaced by a newer one",
                            Some(json!({ "code": "PAIRING_REQUIRED", "reason": "superseded", "requestId": request_id })))).await,
                    },
                    Ok(_) => false,
                    // Missed events: look at the store instead.
                    Err(broadcast::error::RecvError::Lagged(_)) => true,
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                _ = sleep_until(expiry) => {
                    if matches!(decide(&self.shared, &self.params, self.device.as_ref(), &self.remote).await, Access::Granted(_)) {
                        true
                    } else {
                        return end(refuse(&mut ws, &self.id, Code::PairingExpired, "the pairing request expired", None)).await;
                    }
                }
                msg = read_msg(&mut ws) => match msg {
                    Read::Closed => return None,
                    Read::TooBig => return end(close(&mut ws, CloseCode::Size, "too much data while waiting")).await,
                    _ => return end(refuse(&mut ws, &self.id, Code::InvalidRequest, "wait for the owner's decision before sending requests", None)).await,
                },
                _ = shutdown.changed() => return end(close(&mut ws, CloseCode::Away, "gateway shutting down")).await,
            };
            if !recheck {
                continue;
            }
            match decide(
                &self.shared,
                &self.params,
                self.device.as_ref(),
                &self.remote,
            )
            .await
            {
                Access::Granted(g) => {
                    // Authenticated: no longer counts against the address.
                    drop(slot);
                    return Some((self, ws, g));
                }
                Access::Pending(p) => {
                    request_id = p.request_id;
                    expires_at_ms = p.expires_at_ms;
                }
                Access::Refused(r) => return end(self.refuse(&mut ws, r)).await,
            }
        }
    }
}
