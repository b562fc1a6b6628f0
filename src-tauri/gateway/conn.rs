//! One connection, from TCP accept to close: the upgrade (Origin checked), the challenge, the
//! `connect` request and its decision, an optional wait for the owner, then requests and events.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::broadcast;
use tokio::time::{sleep_until, timeout_at};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

use super::connect::{self, Access, ConnectParams, Grant, Refusal, VerifiedDevice};
use super::frames;
use super::limits::{CLOSE_TIMEOUT, WAITING_BUDGET};
use super::proxy::{self, ClientAddr, TrustedProxies};
use super::stream::{is_budget_error, LimitedStream, Transport};
use super::Shared;
use crate::events::Event;
use crate::protocol::{Code, Resolution};
use crate::rpc::{self, Caller};

type Ws = WebSocketStream<LimitedStream>;

/// What reading the next message gave.
enum Read {
    Text(String),
    Binary,
    TooBig,
    Closed,
}

async fn read_msg(ws: &mut Ws) -> Read {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => return Read::Text(t.as_str().to_owned()),
            Some(Ok(Message::Binary(_))) => return Read::Binary,
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
            Some(Ok(Message::Close(_))) | None => return Read::Closed,
            Some(Err(WsError::Capacity(_))) => return Read::TooBig,
            Some(Err(WsError::Io(e))) if is_budget_error(&e) => return Read::TooBig,
            Some(Err(_)) => return Read::Closed,
        }
    }
}

async fn send(ws: &mut Ws, text: String) -> bool {
    ws.send(Message::text(text)).await.is_ok()
}

async fn close(ws: &mut Ws, code: CloseCode, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: reason.to_owned().into(),
    };
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, ws.close(Some(frame))).await;
}

/// Sends an error answer and closes with 1008 (policy).
async fn refuse(ws: &mut Ws, id: &Value, code: Code, message: &str, details: Option<Value>) {
    let _ = send(
        ws,
        frames::err(id, frames::error_body(code.as_str(), message, details)),
    )
    .await;
    let reason: String = message.chars().take(100).collect();
    close(ws, CloseCode::Policy, &reason).await;
}

/// Sends a refusal's answer and closes with its code and reason.
async fn refuse_with(ws: &mut Ws, id: &Value, r: Refusal) {
    let mut body = frames::error_body(r.code.as_str(), &r.message, r.details);
    if r.code == Code::RateLimited {
        // Top-level retry hints, where OpenClaw's clients look for them.
        body["retryable"] = true.into();
        if let Some(ms) = body["details"].get("retryAfterMs").cloned() {
            body["retryAfterMs"] = ms;
        }
    }
    let _ = send(ws, frames::err(id, body)).await;
    let reason = r
        .close_reason
        .unwrap_or_else(|| r.message.chars().take(100).collect());
    close(ws, CloseCode::from(r.close), &reason).await;
}

/// An HTTP refusal at the upgrade.
fn http_refusal(status: StatusCode, why: &str) -> ErrorResponse {
    let mut r = ErrorResponse::new(Some(why.into()));
    *r.status_mut() = status;
    r
}

/// What the upgrade request told about the client.
struct Upgraded {
    client: ClientAddr,
    /// A slot counted against the client's address, when the one taken at accept did not
    /// count it (a trusted proxy's connection, or loopback that turned out to be forwarded).
    slot: Option<super::guard::PreauthSlot>,
}

/// Serves one accepted TCP connection until it closes. `reserved`: it holds one of the slots
/// kept for local clients ([`super::Limits::loopback_reserve`]).
pub async fn serve(
    shared: Arc<Shared>,
    tcp: TcpStream,
    peer: SocketAddr,
    accepted: Instant,
    reserved: bool,
) {
    // The handshake's futures (the upgrade, the connect decision, a wait for the owner, the
    // greeting) are large and short-lived, the session's small and long-lived. Each is boxed
    // and everything else is scoped to the block, so an idle connection holds only its
    // session. (A box made inside the awaiting statement would keep the future's full size
    // here as a temporary; hence the separate statements.)
    let session = {
        let handshake = Box::pin(handshake(shared, tcp, peer, accepted, reserved));
        let Some((conn, ws, grant)) = handshake.await else {
            return;
        };
        let greet = Box::pin(conn.greet(ws, grant));
        let Some(session) = greet.await else {
            return;
        };
        Box::pin(session.run())
    };
    session.await;
}

/// From TCP accept to a granted `connect` (at once, or after the owner approved a waiting
/// device). `None` when the connection ended instead: refused, timed out or closed.
async fn handshake(
    shared: Arc<Shared>,
    tcp: TcpStream,
    peer: SocketAddr,
    accepted: Instant,
    reserved: bool,
) -> Option<(Conn, Ws, Grant)> {
    let _ = tcp.set_nodelay(true);
    let settings = shared.settings().await;
    let limits = &shared.limits;
    let exempt_loopback = settings.gateway.rate_limit.exempt_loopback;
    // Settings were validated when written; an entry that does not parse trusts no one.
    let trusted = TrustedProxies::parse(&settings.gateway.trusted_proxies).unwrap_or_default();
    let peer_ip = proxy::canonical(peer.ip());
    let from_proxy = trusted.contains(peer_ip);
    // Counted at accept against the TCP peer, unless the peer is a trusted proxy (its clients
    // are counted one by one once the upgrade names them). Loopback is exempt until its
    // headers say whether it is really local.
    let provisional_exempt = exempt_loopback && peer_ip.is_loopback();
    let mut slot = if from_proxy {
        None
    } else {
        match shared
            .guard
            .enter_preauth(peer_ip, provisional_exempt, limits.max_preauth_per_ip)
        {
            Some(s) => Some(s),
            None => return None, // dropping the stream closes it
        }
    };
    let deadline = tokio::time::Instant::from_std(accepted + limits.handshake_timeout);
    let allowed = &settings.gateway.allowed_origins;
    let mut upgraded: Option<Upgraded> = None;
    // The callback's signature is the library's; its error type is what it is.
    #[allow(clippy::result_large_err)]
    let check_request = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        // Browsers always send Origin; native clients do not. A web page must not reach us.
        if let Some(origin) = req.headers().get("origin") {
            let o = origin.to_str().unwrap_or_default();
            if !allowed.iter().any(|a| a.eq_ignore_ascii_case(o)) {
                return Err(http_refusal(StatusCode::FORBIDDEN, "origin not allowed"));
            }
        }
        let headers = req
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_bytes()));
        let client = proxy::resolve(peer_ip, headers, &trusted);
        if reserved && !client.is_local() {
            // The last slots are for this computer's own CLI and app.
            return Err(http_refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "the gateway is at its connection limit",
            ));
        }
        let exempt = exempt_loopback && client.is_local();
        let counted = from_proxy || (provisional_exempt && !exempt);
        let slot = if counted {
            match shared
                .guard
                .enter_preauth(client.ip, exempt, limits.max_preauth_per_ip)
            {
                Some(s) => Some(s),
                None => {
                    return Err(http_refusal(
                        StatusCode::TOO_MANY_REQUESTS,
                        "too many unauthenticated connections from this address",
                    ))
                }
            }
        } else {
            None
        };
        upgraded = Some(Upgraded { client, slot });
        Ok(resp)
    };
    // TLS first, inside the same deadline: a client that never finishes it is dropped too.
    let transport = match &shared.tls {
        None => Transport::Plain(tcp),
        Some(t) => match timeout_at(deadline, t.acceptor.accept(tcp)).await {
            Ok(Ok(s)) => Transport::Tls(Box::new(s)),
            _ => return None,
        },
    };
    let stream = LimitedStream::new(transport, limits.preauth_bytes);
    let upgrade = tokio_tungstenite::accept_hdr_async_with_config(
        stream,
        check_request,
        Some(limits.ws_config()),
    );
    let mut ws = match timeout_at(deadline, upgrade).await {
        Ok(Ok(ws)) => ws,
        _ => return None,
    };
    let up = upgraded?;
    if up.slot.is_some() {
        slot = up.slot;
    }
    let ip = up.client.ip;
    let exempt = exempt_loopback && up.client.is_local();
    // One connect frame of at most 64 KiB (plus its header) before authentication.
    ws.get_mut().set_budget(Some(limits.max_preauth_frame + 14));
    let nonce = uuid::Uuid::new_v4().to_string();
    if !send(
        &mut ws,
        frames::event(
            "connect.challenge",
            json!({ "nonce": nonce, "ts": shared.service.now_ms() }),
            0,
        ),
    )
    .await
    {
        return None;
    }
    let text = match timeout_at(deadline, read_msg(&mut ws)).await {
        Err(_) => return end(close(&mut ws, CloseCode::Policy, "handshake timeout")).await,
        Ok(Read::Text(t)) => t,
        Ok(Read::TooBig) => {
            return end(close(&mut ws, CloseCode::Size, "connect frame too large")).await
        }
        Ok(Read::Binary) => {
            return end(refuse(
                &mut ws,
                &Value::Null,
                Code::InvalidRequest,
                "the first frame must be a connect request (JSON text)",
                None,
            ))
            .await
        }
        Ok(Read::Closed) => return None,
    };
    // The frame (up to 64 KiB) is not kept: only what was parsed out of it.
    let req = frames::parse_req(&text);
    drop(text);
    let req = match req {
        Ok(r) => r,
        Err((id, msg)) => return end(refuse(&mut ws, &id, Code::InvalidRequest, &msg, None)).await,
    };
    if req.method != "connect" {
        return end(refuse(
            &mut ws,
            &req.id,
            Code::InvalidRequest,
            "the first request must be connect",
            None,
        ))
        .await;
    }
    if let Some(left) = shared.guard.locked_for(ip, exempt) {
        let ms = left.as_millis() as u64;
        let msg = format!(
            "too many failed attempts; try again in {}s",
            ms.div_ceil(1000)
        );
        let mut r = Refusal::rate_limited(msg);
        r.details = Some(json!({ "code": "AUTH_RATE_LIMITED", "retryAfterMs": ms }));
        return end(refuse_with(&mut ws, &req.id, r)).await;
    }
    let params: ConnectParams = match serde_json::from_value(req.params) {
        Ok(p) => p,
        Err(e) => {
            return end(refuse(
                &mut ws,
                &req.id,
                Code::InvalidRequest,
                &format!("invalid connect params: {e}"),
                None,
            ))
            .await
        }
    };
    let protocol = match connect::validate(&params) {
        Ok(v) => v,
        Err(r) => return end(refuse_with(&mut ws, &req.id, r)).await,
    };
    let device = match connect::verify_device(&params, &nonce, shared.service.now_ms()) {
        Ok(d) => d,
        Err(r) => {
            shared
                .guard
                .record_failure(ip, exempt, &settings.gateway.rate_limit);
            return end(refuse_with(&mut ws, &req.id, r)).await;
        }
    };
    // Subscribe before deciding, so an approval that lands at once is not missed.
    let events = params
        .wait_for_approval
        .then(|| shared.service.events().subscribe());
    let remote = ip.to_string();
    let access = decide(&shared, &params, device.as_ref(), &remote).await;
    let conn = Conn {
        shared: shared.clone(),
        id: req.id,
        params,
        device,
        remote,
        ip,
        exempt,
        protocol,
    };
    match access {
        Access::Granted(g) => {
            drop(slot);
            Some((conn, ws, g))
        }
        Access::Refused(r) => end(conn.refuse(&mut ws, r)).await,
        Access::Pending(p) => match events {
            None => {
                end(refuse_with(
                    &mut ws,
                    &conn.id,
                    Refusal::pairing_required(&p),
                ))
                .await
            }
            Some(rx) => {
                conn.wait_for_owner(ws, slot, rx, p.request_id, p.fingerprint, p.expires_at_ms)
                    .await
            }
        },
    }
}

/// Runs the last words of a connection that ends during the handshake.
async fn end<T>(last: impl std::future::Future<Output = ()>) -> Option<T> {
    last.await;
    None
}

async fn decide(
    shared: &Arc<Shared>,
    params: &ConnectParams,
    device: Option<&VerifiedDevice>,
    remote: &str,
) -> Access {
    // Most connects (a paired device's token, the admin token) are settled from memory; the
    // trip to a blocking thread is for the ones that read or write the store.
    if let Some(access) = connect::decide_cached(&shared.service, params, device) {
        return access;
    }
    let (s, p, d, r) = (
        shared.service.clone(),
        params.clone(),
        device.cloned(),
        remote.to_string(),
    );
    tokio::task::spawn_blocking(move || connect::decide(&s, &p, d.as_ref(), &r))
        .await
        .unwrap_or_else(|_| Access::Refused(Refusal::internal()))
}

struct Conn {
    shared: Arc<Shared>,
    id: Value,
    params: ConnectParams,
    device: Option<VerifiedDevice>,
    remote: String,
    ip: IpAddr,
    exempt: bool,
    /// The negotiated protocol version.
    protocol: u32,
}

impl Conn {
    async fn refuse(&self, ws: &mut Ws, r: Refusal) {
        if r.counts {
            let settings = self.shared.settings().await;
            self.shared
                .guard
                .record_failure(self.ip, self.exempt, &settings.gateway.rate_limit);
        }
        refuse_with(ws, &self.id, r).await
    }

    /// `waitForApproval`: the socket stays open until the owner decides or the request expires.
    async fn wait_for_owner(
        self,
        mut ws: Ws,
        slot: Option<super::guard::PreauthSlot>,
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

    /// Sends hello-ok (consuming a setup code once it is sent) and sets up the session.
    async fn greet(self, mut ws: Ws, g: Grant) -> Option<Session> {
        let shared = self.shared;
        let conn_id = shared.next_conn_id();
        let payload = hello_ok(&shared, self.protocol, conn_id, &g);
        if !send(&mut ws, frames::ok(&self.id, payload)).await {
            return None;
        }
        ws.get_mut().set_budget(None);
        let device = g.device_id.as_ref().map(|d| {
            let now = shared.service.now_ms();
            shared.touches.touch(d, &g.role, now);
            (
                shared.registry.register(d, &g.role, conn_id, now),
                g.role.clone(),
            )
        });
        // Sessions of the admin token close when it is rotated.
        let admin = (g.method == connect::AuthMethod::Token).then(|| {
            shared
                .registry
                .register(super::registry::ADMIN_SESSIONS, &g.role, conn_id, 0)
        });
        let events = (g.role == crate::pairing::device::ROLE_OPERATOR
            && rpc::sees_events(&g.scopes))
        .then(|| shared.service.events().subscribe());
        // Only what the session needs is kept: not the connect params, not a new token's text.
        // The audit log gets what the connection proved beside the name its client gave, so
        // no remote client is ever recorded as the window or the CLI on the files.
        let credential = match (g.method, &g.device_id) {
            (connect::AuthMethod::Token, _) | (_, None) => "admin-token".to_string(),
            (_, Some(d)) => format!("device:{}/{}", &d[..d.len().min(16)], g.role),
        };
        let caller = Caller {
            role: g.role.clone(),
            scopes: g.scopes,
            device_id: g.device_id.clone(),
            via: crate::store::audit::actor(
                &crate::sanitize::sanitize(&self.params.client.id),
                &credential,
            ),
            listening: Some(shared.local_addr),
        };
        Some(Session {
            shared,
            ws,
            caller,
            events,
            seq: 1,
            last_rx: Instant::now(),
            device,
            admin,
        })
    }
}

/// The `hello-ok` payload. Protocol 4's is complete for OpenClaw's closed schema (features,
/// snapshot, `auth.method`, `policy.maxBufferedBytes`; no `server.name`); 3's keeps its name.
fn hello_ok(shared: &Shared, protocol: u32, conn_id: u64, g: &Grant) -> Value {
    let limits = &shared.limits;
    let mut auth = json!({ "role": g.role, "scopes": g.scopes, "method": g.method.as_str() });
    if let Some((token, at)) = &g.new_token {
        auth["deviceToken"] = token.clone().into();
        auth["issuedAtMs"] = (*at).into();
    }
    let mut server = json!({ "version": env!("CARGO_PKG_VERSION"), "connId": conn_id.to_string() });
    if protocol < 4 {
        server["name"] = "clawpair".into();
    }
    json!({
        "type": "hello-ok",
        "protocol": protocol,
        "server": server,
        "features": {
            "methods": rpc::method_names(&g.role, protocol),
            "events": crate::events::WIRE_EVENTS,
        },
        "snapshot": {
            "presence": [],
            "health": {},
            "stateVersion": { "presence": 0, "health": 0 },
            "uptimeMs": shared.started.elapsed().as_millis() as u64,
        },
        "auth": auth,
        "policy": {
            "maxPayload": limits.max_message,
            "maxBufferedBytes": limits.max_write_buffer,
            "tickIntervalMs": limits.ping_interval.as_millis() as u64,
        },
    })
}

/// An authenticated connection: requests in, answers and events out.
struct Session {
    shared: Arc<Shared>,
    ws: Ws,
    caller: Caller,
    events: Option<broadcast::Receiver<Event>>,
    seq: u64,
    last_rx: Instant,
    /// A device's registration (how its removal closes this socket) and role.
    device: Option<(super::registry::Registration, String)>,
    /// The admin token's registration (how its rotation closes this socket).
    admin: Option<super::registry::Registration>,
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
    async fn run(mut self) {
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
