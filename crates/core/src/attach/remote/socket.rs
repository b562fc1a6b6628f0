//! The socket to the attached gateway: connecting as an operator with the admin token (over the
//! transport [`crate::attach::transport`] allows, checked at every attempt), one session with
//! several requests in flight (answers matched by id, events handed on), and reconnecting with
//! backoff while calls made in between fail at once.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use super::{unavailable, Remote, Reply, Status, Target};
use crate::attach::transport::{self, Transport};
use crate::client::{Auth, Client, ClientError, ConnectOptions, Socket};
use crate::protocol::{Code, ErrorCode};
use crate::rpc::RpcError;
use crate::sanitize::sanitize;

/// Connects, serves requests and events until the socket closes, then again with backoff.
/// Ends when the [`Remote`] is dropped.
pub(super) async fn drive(
    remote: std::sync::Weak<Remote>,
    target: Target,
    mut requests: mpsc::Receiver<(String, Value, Reply)>,
) {
    let mut backoff = 1u64;
    // A gateway on this computer: watched while down, tried again soon while starting.
    let port = loopback_port(&target.url);
    loop {
        let Some(r) = remote.upgrade() else { return };
        r.set_status(Status::Connecting {
            url: target.url.clone(),
        });
        drop(r);
        let (reason, answered) = match connect(&target).await {
            Ok((ws, hello)) => {
                backoff = 1;
                match session(&remote, ws, hello, &mut requests).await {
                    Some(reason) => (reason, false),
                    None => return,
                }
            }
            Err(e) => e,
        };
        // A gateway on this computer that did not answer at all (restarting, not ready yet) is
        // tried again within half a second (OpenClaw asks for 500 ms); one that answered with a refusal waits out the backoff,
        // so a wrong token never hammers its limiter.
        let soon = port.is_some() && !answered;
        let wait = if soon {
            SOON
        } else {
            Duration::from_secs(backoff)
        };
        let Some(r) = remote.upgrade() else { return };
        r.set_status(Status::Down {
            url: target.url.clone(),
            reason,
            retry_in_s: wait.as_secs().max(1),
        });
        drop(r);
        // Calls made while detached fail at once instead of waiting for the next attempt. A
        // gateway on this computer that was not listening is watched for in the kernel's
        // tables (nothing is sent to it): once it listens again, the next attempt is now.
        let until = tokio::time::sleep(wait);
        tokio::pin!(until);
        let was_down = port.is_some_and(|p| !listening(p));
        let mut look = tokio::time::interval(WATCH_EVERY);
        loop {
            tokio::select! {
                _ = &mut until => break,
                _ = look.tick(), if was_down => {
                    if port.is_some_and(listening) {
                        break;
                    }
                }
                req = requests.recv() => match req {
                    Some((_, _, reply)) => {
                        let _ = reply.send(Err(unavailable(format!("not attached to OpenClaw at {}", target.url))));
                    }
                    None => return,
                },
            }
        }
        if !soon {
            backoff = (backoff * 2).min(30);
        }
    }
}

/// How often a gateway on this computer that went away is looked for.
const WATCH_EVERY: Duration = Duration::from_millis(250);

/// The longest wait before trying again a gateway on this computer that did not answer.
const SOON: Duration = Duration::from_millis(500);

/// The port of a `ws://`/`wss://` URL on loopback (a gateway on this computer), if it is one.
fn loopback_port(url: &str) -> Option<u16> {
    let u = url::Url::parse(url).ok()?;
    let local = match u.host()? {
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
        url::Host::Domain(d) => d == "localhost",
    };
    local.then(|| u.port_or_known_default()).flatten()
}

/// Whether anything listens on `port` on loopback now, from `/proc/net/tcp{,6}`.
fn listening(port: u16) -> bool {
    let entries = transport::read_tables().unwrap_or_default();
    let to = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    !crate::attach::owner::listeners_for(&entries, to).is_empty()
}

/// Connects as the approval desk: the socket and `hello-ok`, or why not and whether the gateway
/// answered (refused the connect) rather than not being there to answer.
async fn connect(target: &Target) -> Result<(Socket, Value), (String, bool)> {
    // How the token may travel is settled at every attempt, before it is read: the settings
    // file can be edited by hand, and a refusal must send nothing.
    let transport = transport::plan(&target.url, target.tls_pin.as_deref())
        .map_err(|e| (e.to_string(), true))?;
    let token = target.token.read().map_err(|e| (e, true))?;
    // OpenClaw accepts only client ids from its own list: a generic gateway client, as an
    // operator with the powers an approval desk needs.
    let mut opts = ConnectOptions::operator(&target.url, &token, "gateway-client");
    opts.client_mode = "backend".into();
    opts.display_name = Some("ClawPair".into());
    // The approvals ClawPair shows and answers: OpenClaw sends exec and plugin approvals to
    // clients that declare them (and denies one at once when no client takes it).
    opts.caps = vec!["exec-approvals".into(), "plugin-approvals".into()];
    opts.auth = Auth::Token(token);
    opts.tls_pin = transport.pin();
    let connected = match &transport {
        Transport::Tls { .. } => Client::connect(&opts, |_, _| {}).await,
        Transport::Loopback { candidates } => {
            // Who listens is looked at last, just before connecting, to keep the window in
            // which the port could change hands small; the connection made is checked too.
            let stream = transport::connect_loopback(candidates, opts.timeout)
                .await
                .map_err(|e| (e.to_string(), false))?;
            Client::connect_over(&opts, stream, |_, _| {}).await
        }
    };
    match connected {
        Ok(c) => {
            let hello = c.hello.clone();
            Ok((c.into_socket().0, hello))
        }
        // The client's own wording sends the owner for a new setup code; here it is the pin
        // given for this gateway that does not match.
        Err(ClientError::CertificateMismatch { url, expected }) => Err((format!(
            "the gateway at {url} presented a certificate other than the pinned one (SHA-256 {expected}), so the token was not sent: check the fingerprint given with --tls-fingerprint (or in Settings), or whether the gateway's certificate was replaced"
        ), true)),
        // "Starting; retry shortly" (OpenClaw while it starts) is not a refusal.
        Err(ClientError::Rejected(e)) if e.code == Code::Unavailable => {
            Err((e.message, false))
        }
        Err(e @ ClientError::Rejected(_)) => Err((e.to_string(), true)),
        Err(e) => Err((e.to_string(), false)),
    }
}

/// One attached connection. Returns why it ended, or `None` when the `Remote` is gone.
async fn session(
    remote: &std::sync::Weak<Remote>,
    mut ws: Socket,
    hello: Value,
    requests: &mut mpsc::Receiver<(String, Value, Reply)>,
) -> Option<String> {
    let r = remote.upgrade()?;
    r.set_status(Status::Attached {
        url: r.url.clone(),
        version: sanitize(hello["server"]["version"].as_str().unwrap_or("?")),
    });
    drop(r);
    let mut waiting: HashMap<String, Reply> = HashMap::new();
    let mut next = 0u64;
    // What changed while detached is looked at first.
    let catch_up = {
        let remote = remote.clone();
        tokio::spawn(async move {
            if let Some(r) = remote.upgrade() {
                r.relist_devices().await;
                r.relist_nodes().await;
                r.relist_execs().await;
                r.relist.notify_one();
            }
        })
    };
    let ended = loop {
        tokio::select! {
            req = requests.recv() => {
                let Some((method, params, reply)) = req else { break None };
                next += 1;
                let id = format!("cp-{next}");
                let frame = json!({ "type": "req", "id": id, "method": method, "params": params }).to_string();
                if ws.send(Message::text(frame)).await.is_err() {
                    let _ = reply.send(Err(unavailable("the connection to OpenClaw closed")));
                    break Some("the connection closed".to_string());
                }
                waiting.insert(id, reply);
            }
            msg = ws.next() => {
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(f))) => break Some(f.map_or("closed".into(), |f| format!("closed ({} {})", u16::from(f.code), f.reason))),
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => break Some(e.to_string()),
                    None => break Some("the connection closed".into()),
                };
                let Ok(v) = serde_json::from_str::<Value>(text.as_str()) else { continue };
                match v["type"].as_str() {
                    Some("res") => {
                        if let Some(reply) = v["id"].as_str().and_then(|id| waiting.remove(id)) {
                            let answer = if v["ok"] == true {
                                Ok(v["payload"].clone())
                            } else {
                                let e = &v["error"];
                                Err(RpcError {
                                    code: ErrorCode::from_wire(e["code"].as_str().unwrap_or("UNAVAILABLE")),
                                    message: sanitize(e["message"].as_str().unwrap_or("refused")),
                                    details: e.get("details").cloned(),
                                })
                            };
                            let _ = reply.send(answer);
                        }
                    }
                    Some("event") => {
                        let Some(r) = remote.upgrade() else { break None };
                        r.on_event(v["event"].as_str().unwrap_or_default(), &v["payload"]);
                    }
                    _ => {}
                }
            }
        }
    };
    catch_up.abort();
    for (_, reply) in waiting {
        let _ = reply.send(Err(unavailable("the connection to OpenClaw closed")));
    }
    ended
}
