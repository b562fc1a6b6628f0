//! From TCP accept to the `connect` decision: the per-address slot, TLS, the upgrade (Origin and
//! forwarded headers checked), the challenge, the first frame's parsing and checks, and the
//! decision itself (from memory, or on a blocking thread when it touches the store).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::time::timeout_at;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::wire::{close, http_refusal, read_msg, refuse, refuse_with, send, Read};
use super::Ws;
use crate::gateway::connect::{self, Access, ConnectParams, Grant, Refusal, VerifiedDevice};
use crate::gateway::frames;
use crate::gateway::proxy::{self, ClientAddr, TrustedProxies};
use crate::gateway::stream::{LimitedStream, Transport};
use crate::gateway::Shared;
use crate::protocol::Code;

/// What the upgrade request told about the client.
struct Upgraded {
    client: ClientAddr,
    /// A slot counted against the client's address, when the one taken at accept did not
    /// count it (a trusted proxy's connection, or loopback that turned out to be forwarded).
    slot: Option<crate::gateway::guard::PreauthSlot>,
}

/// From TCP accept to a granted `connect` (at once, or after the owner approved a waiting
/// device). `None` when the connection ended instead: refused, timed out or closed.
pub(super) async fn handshake(
    shared: Arc<Shared>,
    tcp: TcpStream,
    peer: SocketAddr,
    accepted: Instant,
    reserved: bool,
) -> Option<(Conn, Ws, Grant)> {
    crate::gateway::set_nodelay(&tcp);
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
    // From the thread's CSPRNG (seeded and reseeded from the system's), without a system call
    // per connection.
    let nonce = uuid::Builder::from_random_bytes(rand::random())
        .into_uuid()
        .to_string();
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
    let params = match connect::parse(req.params) {
        Ok(p) => p,
        Err(r) => return end(refuse_with(&mut ws, &req.id, r)).await,
    };
    let protocol = match connect::validate(&params) {
        Ok(v) => v,
        Err(r) => return end(refuse_with(&mut ws, &req.id, r)).await,
    };
    let now = shared.service.now_ms();
    let device = match connect::verify_device_known(&params, &nonce, now, &shared.known_keys) {
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
pub(super) async fn end<T>(last: impl std::future::Future<Output = ()>) -> Option<T> {
    last.await;
    None
}

pub(super) async fn decide(
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

pub(super) struct Conn {
    pub(super) shared: Arc<Shared>,
    pub(super) id: Value,
    pub(super) params: ConnectParams,
    pub(super) device: Option<VerifiedDevice>,
    pub(super) remote: String,
    pub(super) ip: IpAddr,
    pub(super) exempt: bool,
    /// The negotiated protocol version.
    pub(super) protocol: u32,
}

impl Conn {
    pub(super) async fn refuse(&self, ws: &mut Ws, r: Refusal) {
        if r.counts {
            let settings = self.shared.settings().await;
            self.shared
                .guard
                .record_failure(self.ip, self.exempt, &settings.gateway.rate_limit);
        }
        refuse_with(ws, &self.id, r).await
    }
}
