//! An authenticated connection: requests in, answers and events out, pings and `tick`s, and its
//! end when the socket closes, a credential it used is taken away or the gateway shuts down.
//! A kick is looked at before anything else, and every write has a deadline, so a client that
//! stops reading holds its session no longer than that. After a large message the session's
//! WebSocket buffers are given back.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::wire::{close, refuse, send};
use super::Ws;
use crate::events::Event;
use crate::gateway::frames;
use crate::gateway::guard::AddressSlot;
use crate::gateway::limits::LARGE_FRAME;
use crate::gateway::registry::{Kick, Registration};
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
    /// Fired when a credential the session used is taken away.
    pub(super) kick: Arc<Kick>,
    /// The device and role to record as last seen when the session ends.
    pub(super) seen: Option<(String, String)>,
    /// A message larger than [`LARGE_FRAME`] went in or out: the buffers are renewed at the
    /// next chance.
    pub(super) renew_due: bool,
    /// A large message's buffers are to be given back to the system once renewed.
    pub(super) trim_due: bool,
    /// Its place under every credential it used; unregistered when the session ends.
    pub(super) _registration: Registration,
    /// Its slot among its address's sessions.
    pub(super) _address: AddressSlot,
}

async fn next_event(
    rx: &mut Option<broadcast::Receiver<Event>>,
) -> Result<Event, broadcast::error::RecvError> {
    match rx {
        Some(r) => r.recv().await,
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
    /// Until the socket closes; then records when the device was last seen. Boxed: an async
    /// fn keeps a by-value `self` twice (the argument and its binding), which for 1,000
    /// idle connections is most of their memory.
    pub(super) async fn run(mut self: Box<Self>) {
        let mut shutdown = self.shared.shutdown.clone();
        let interval = self.shared.limits.ping_interval;
        let first = first_keepalive(self.shared.started, Instant::now(), interval);
        let mut ping = tokio::time::interval_at(first.into(), interval);
        loop {
            // After a large message in or out, once what it left is written out (a pong owed
            // goes with any write) and nothing of the client's is half read.
            if self.renew_due && self.ws.get_ref().at_boundary() {
                // Boxed: renewing is rare and its future would size every idle wait.
                self.ws = Box::pin(renew(self.ws, &self.shared)).await;
                self.renew_due = false;
                if std::mem::take(&mut self.trim_due) {
                    self.shared.trimmer.soon();
                }
            }
            // Biased: a kick (or shutdown) is seen before one more request is served.
            let wake = tokio::select! {
                biased;
                _ = self.kick.wait() => Wake::Kicked,
                _ = shutdown.changed() => Wake::Shutdown,
                msg = self.ws.next() => Wake::Frame(msg),
                ev = next_event(&mut self.events) => Wake::Event(Box::new(ev)),
                _ = ping.tick() => Wake::Ping,
            };
            // Handling is boxed: its future is large and brief, and an idle connection should
            // hold only the small wait above.
            let handled = Box::pin(self.handle(wake));
            if !handled.await {
                break;
            }
        }
        if let Some((device, role)) = &self.seen {
            let now = self.shared.service.now_ms();
            self.shared.touches.touch(device, role, now);
        }
    }

    /// After a message larger than [`LARGE_FRAME`] (`large`), the buffers are renewed at the
    /// next chance and the memory they held given back.
    fn large(&mut self, large: bool) {
        self.renew_due |= large;
        self.trim_due |= large;
    }

    /// Sends one frame within the write deadline. A write that cannot go out is abandoned the
    /// moment a kick comes (a client that stopped reading holds nothing past it); one that
    /// can goes out first, so the answer to a caller's own rotation still reaches it. Returns
    /// false when the connection is over.
    async fn send(&mut self, text: String) -> bool {
        self.large(text.len() > LARGE_FRAME);
        let deadline = self.shared.limits.write_timeout;
        let (kick, ws) = (&self.kick, &mut self.ws);
        tokio::select! {
            biased;
            sent = tokio::time::timeout(deadline, send(ws, text)) => sent == Ok(true),
            _ = kick.wait() => false,
        }
    }

    /// Acts on what woke the session. Returns false when the connection is over.
    async fn handle(&mut self, wake: Wake) -> bool {
        match wake {
            Wake::Frame(msg) => {
                self.last_rx = Instant::now();
                match msg {
                    // Read before the kick landed, looked at after: not served.
                    Some(Ok(_)) if self.kick.fired() => self.close_kicked().await,
                    // Its answer goes out before the next chance to renew.
                    Some(Ok(Message::Text(t))) => {
                        let large = self.ws.get_mut().take_large(LARGE_FRAME);
                        self.large(large);
                        self.request(t.as_str()).await
                    }
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
                // Both in one write: an idle connection's only wake-up costs one system call.
                let deadline = self.shared.limits.write_timeout;
                let (kick, ws) = (&self.kick, &mut self.ws);
                let both = async {
                    ws.feed(Message::text(tick)).await?;
                    ws.feed(Message::Ping(Vec::new().into())).await?;
                    ws.flush().await
                };
                tokio::select! {
                    biased;
                    sent = tokio::time::timeout(deadline, both) => matches!(sent, Ok(Ok(()))),
                    _ = kick.wait() => false,
                }
            }
            Wake::Kicked => self.close_kicked().await,
            Wake::Shutdown => {
                close(&mut self.ws, CloseCode::Away, "gateway shutting down").await;
                false
            }
        }
    }

    /// Closes the session of a credential taken away. Returns false (the connection is over).
    async fn close_kicked(&mut self) -> bool {
        let why = "credential revoked: the admin token rotated, or the device removed, or its token rotated or revoked";
        close(&mut self.ws, CloseCode::Policy, why).await;
        false
    }

    /// Forwards an event the caller may see. Returns false when the connection is over.
    async fn event(&mut self, ev: Result<Event, broadcast::error::RecvError>) -> bool {
        match ev {
            Ok(e) => {
                if !rpc::event_visible(&self.caller.scopes, &e) {
                    return true;
                }
                self.seq += 1;
                self.send(frames::event(e.name(), e.payload(), self.seq))
                    .await
            }
            Err(broadcast::error::RecvError::Lagged(n)) => {
                self.seq += 1;
                let dropped = json!({ "count": n });
                self.send(frames::event("events.dropped", dropped, self.seq))
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
            return self.send(frames::err(&req.id, e)).await;
        }
        if let Some(r) =
            rpc::call_in_memory(&self.shared.service, &self.caller, &req.method, &req.params)
        {
            let frame = match r {
                Ok(v) => frames::ok(&req.id, v),
                Err(e) => frames::err(&req.id, e.to_json()),
            };
            return self.send(frame).await;
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
        self.send(frame).await
    }
}

/// The grid keepalives fall on, counted from the gateway's start (a tenth of the interval when
/// that is shorter).
const KEEPALIVE_GRID: Duration = Duration::from_secs(1);

/// When a session's first keepalive is due: one interval from `now`, put off to the next whole
/// [`KEEPALIVE_GRID`] since `started`. Sessions that connected within the same second then
/// tick together, in one wake-up of the runtime instead of one each (a tick up to a second
/// late changes nothing for a client that allows two intervals).
fn first_keepalive(started: Instant, now: Instant, interval: Duration) -> Instant {
    let due = now.saturating_duration_since(started) + interval;
    let grid = KEEPALIVE_GRID.min(interval / 10).as_nanos().max(1);
    let slots = due.as_nanos().div_ceil(grid);
    let aligned = u64::try_from(slots * grid).map_or(due, Duration::from_nanos);
    started + aligned
}

/// The same connection over fresh WebSocket buffers: the library's grow for a large message
/// and are never given back. Only called at a frame boundary, where they hold nothing (see
/// [`crate::gateway::stream`]); what the client sent ahead waits in the stream.
async fn renew(ws: Ws, shared: &Shared) -> Ws {
    let stream = ws.into_inner();
    tokio_tungstenite::WebSocketStream::from_raw_socket(
        stream,
        tokio_tungstenite::tungstenite::protocol::Role::Server,
        Some(shared.limits.ws_config()),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of the future an async fn taking `A` returns.
    fn future_size<A, F: std::future::Future>(_: fn(A) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    #[test]
    fn keepalives_of_sessions_that_connected_close_together_fall_on_one_moment() {
        let started = Instant::now();
        let interval = Duration::from_secs(30);
        let at = |ms: u64| first_keepalive(started, started + Duration::from_millis(ms), interval);
        // Within one second of each other: the same moment, one interval and at most a
        // second after each.
        assert_eq!(at(5_001), at(5_999));
        assert_eq!(at(5_001), started + Duration::from_secs(36));
        // On the grid already: exactly one interval.
        assert_eq!(at(7_000), started + Duration::from_secs(37));
        // Never earlier than one interval, never more than a second later.
        for ms in [0, 1, 999, 1_000, 123_456] {
            let now = started + Duration::from_millis(ms);
            let first = first_keepalive(started, now, interval);
            assert!(first >= now + interval && first < now + interval + KEEPALIVE_GRID);
        }
        // A short interval (tests use them) is late by a tenth of itself at most.
        let short = Duration::from_millis(200);
        let now = started + Duration::from_millis(1_234);
        let first = first_keepalive(started, now, short);
        assert!(first >= now + short && first < now + short + short / 10);
    }

    #[test]
    fn an_idle_session_holds_its_state_once_and_no_rare_future() {
        // What an idle connection holds is the session (boxed) plus the future waiting in
        // `run`. Taking `self` by value would keep it twice, and an unboxed renewal would size
        // every wait to its own 1,000 bytes: 2,480 bytes in all, where this is a few hundred.
        let waiting = future_size(Session::run);
        assert!(waiting <= 512, "Session::run's future is {waiting} bytes");
        let session = std::mem::size_of::<Session>();
        assert!(session <= 768, "Session is {session} bytes");
    }
}
