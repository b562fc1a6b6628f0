//! An authenticated connection: requests in, answers and events out, pings and `tick`s, and its
//! end when the socket closes, the credential is revoked or the gateway shuts down.

use std::sync::Arc;
use std::time::Instant;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::wire::{close, refuse, send};
use super::Ws;
use crate::events::Event;
use crate::gateway::frames;
use crate::gateway::Shared;
use crate::protocol::Code;
use crate::rpc::{self, Caller};

/// An authenticated connection: requests in, answers and events out.
pub(super) struct Session {
    pub(super) shared: Arc<Shared>,
    pub(super) ws: Ws,
    pub(super) caller: Caller,
    pub(super) events: Option<broadcast::Receiver<Event>>,
    pub(super) seq: u64,
    pub(super) last_rx: Instant,
    /// A device's registration (how its removal closes this socket) and role.
    pub(super) device: Option<(crate::gateway::registry::Registration, String)>,
    /// The admin token's registration (how its rotation closes this socket).
    pub(super) admin: Option<crate::gateway::registry::Registration>,
}

async fn next_event(
    rx: &mut Option<broadcast::Receiver<Event>>,
) -> Result<Event, broadcast::error::RecvError> {
    match rx {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}

async fn kicked(kick: &Option<Arc<tokio::sync::Notify>>) {
    match kick {
        Some(k) => k.notified().await,
        None => std::future::pending().await,
    }
}

/// What woke a session.
enum Wake {
    Frame(Option<Result<Message, WsError>>),
    /// Boxed: events are large, and this enum is part of every idle connection's state.
    Event(Box<Result<Event, broadcast::error::RecvError>>),
    Ping,
    Kicked,
    Shutdown,
}

impl Session {
    /// Until the socket closes; then records when the device was last seen.
    pub(super) async fn run(mut self) {
        let kick = self
            .device
            .as_ref()
            .map(|(r, _)| r.kick.clone())
            .or_else(|| self.admin.as_ref().map(|r| r.kick.clone()));
        let mut shutdown = self.shared.shutdown.clone();
        let mut ping = tokio::time::interval_at(
            tokio::time::Instant::now() + self.shared.limits.ping_interval,
            self.shared.limits.ping_interval,
        );
        loop {
            let wake = tokio::select! {
                msg = self.ws.next() => Wake::Frame(msg),
                ev = next_event(&mut self.events) => Wake::Event(Box::new(ev)),
                _ = ping.tick() => Wake::Ping,
                _ = kicked(&kick) => Wake::Kicked,
                _ = shutdown.changed() => Wake::Shutdown,
            };
            // Handling is boxed: its future is large and brief, and an idle connection should
            // hold only the small wait above.
            let handled = Box::pin(self.handle(wake));
            if !handled.await {
                break;
            }
        }
        if let Some((registration, role)) = &self.device {
            let now = self.shared.service.now_ms();
            self.shared
                .touches
                .touch(registration.device_id(), role, now);
        }
    }

    /// Acts on what woke the session. Returns false when the connection is over.
    async fn handle(&mut self, wake: Wake) -> bool {
        match wake {
            Wake::Frame(msg) => {
                self.last_rx = Instant::now();
                match msg {
                    Some(Ok(Message::Text(t))) => self.request(t.as_str()).await,
                    Some(Ok(Message::Binary(_))) => {
                        refuse(
                            &mut self.ws,
                            &Value::Null,
                            Code::InvalidRequest,
                            "binary frames are not part of the protocol",
                            None,
                        )
                        .await;
                        false
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => true,
                    Some(Ok(Message::Close(_))) | None => false,
                    Some(Err(WsError::Capacity(_))) => {
                        close(&mut self.ws, CloseCode::Size, "message too large").await;
                        false
                    }
                    Some(Err(_)) => false,
                }
            }
            Wake::Event(ev) => self.event(*ev).await,
            Wake::Ping => {
                if self.last_rx.elapsed() > self.shared.limits.idle_timeout {
                    close(&mut self.ws, CloseCode::Away, "no pong").await;
                    return false;
                }
                // A `tick` event as well as the ping: OpenClaw's clients count only frames
                // they can read, and reconnect after two intervals without one.
                self.seq += 1;
                let tick = frames::event(
                    "tick",
                    json!({ "ts": self.shared.service.now_ms() }),
                    self.seq,
                );
                send(&mut self.ws, tick).await
                    && self.ws.send(Message::Ping(Vec::new().into())).await.is_ok()
            }
            Wake::Kicked => {
                close(
                    &mut self.ws,
                    CloseCode::Policy,
                    "credential revoked: device removed, or its token rotated or revoked",
                )
                .await;
                false
            }
            Wake::Shutdown => {
                close(&mut self.ws, CloseCode::Away, "gateway shutting down").await;
                false
            }
        }
    }

    /// Forwards an event the caller may see. Returns false when the connection is over.
    async fn event(&mut self, ev: Result<Event, broadcast::error::RecvError>) -> bool {
        match ev {
            Ok(e) => {
                if !rpc::event_visible(&self.caller.scopes, &e) {
                    return true;
                }
                self.seq += 1;
                send(&mut self.ws, frames::event(e.name(), e.payload(), self.seq)).await
            }
            Err(broadcast::error::RecvError::Lagged(n)) => {
                self.seq += 1;
                let dropped = json!({ "count": n });
                send(
                    &mut self.ws,
                    frames::event("events.dropped", dropped, self.seq),
                )
                .await
            }
            Err(broadcast::error::RecvError::Closed) => {
                self.events = None;
                true
            }
        }
    }

    /// Answers one request. Returns false when the connection must end.
    async fn request(&mut self, text: &str) -> bool {
        let req = match frames::parse_req(text) {
            Ok(r) => r,
            Err((id, msg)) => {
                refuse(&mut self.ws, &id, Code::InvalidRequest, &msg, None).await;
                return false;
            }
        };
        if req.method == "connect" {
            let e = frames::error_body("INVALID_REQUEST", "already connected", None);
            return send(&mut self.ws, frames::err(&req.id, e)).await;
        }
        if let Some(r) =
            rpc::call_in_memory(&self.shared.service, &self.caller, &req.method, &req.params)
        {
            let frame = match r {
                Ok(v) => frames::ok(&req.id, v),
                Err(e) => frames::err(&req.id, e.to_json()),
            };
            return send(&mut self.ws, frame).await;
        }
        let (s, c, m, p) = (
            self.shared.service.clone(),
            self.caller.clone(),
            req.method.clone(),
            req.params,
        );
        let result = tokio::task::spawn_blocking(move || rpc::call(&s, &c, &m, p)).await;
        let frame = match result {
            Ok(Ok(v)) => frames::ok(&req.id, v),
            Ok(Err(e)) => frames::err(&req.id, e.to_json()),
            Err(_) => frames::err(
                &req.id,
                frames::error_body("UNAVAILABLE", "the request failed inside the gateway", None),
            ),
        };
        send(&mut self.ws, frame).await
    }
}
