//! The greeting after a granted `connect`: the session's bounds (per device, per address), its
//! registration under every credential it used (so that taking any away closes it), the
//! `hello-ok` payload for the negotiated protocol, the event subscription, and the caller the
//! audit log records.

use std::time::Instant;

use serde::Serialize;
use serde_json::value::RawValue;

use super::handshake::{end, Conn};
use super::session::Session;
use super::wire::{refuse_with, send};
use super::Ws;
use crate::gateway::connect::{AuthMethod, Grant, Refusal};
use crate::gateway::frames;
use crate::gateway::limits::LARGE_FRAME;
use crate::gateway::registry::{Credential, TooManySessions};
use crate::pairing::scope::Role;
use crate::rpc::{self, Caller};

impl Conn {
    /// Binds the session to every credential it used and to its bounds (sessions per device
    /// and per address), then sends hello-ok (consuming a setup code once it is sent).
    pub(super) async fn greet(self, mut ws: Ws, g: Grant) -> Option<Session> {
        let shared = self.shared.clone();
        let limits = &shared.limits;
        let Some(address) =
            shared
                .guard
                .enter_session(self.ip, self.exempt, limits.max_sessions_per_ip)
        else {
            let r = Refusal::too_many_sessions("this address", limits.max_sessions_per_ip as usize);
            return end(refuse_with(&mut ws, &self.id, r)).await;
        };
        let conn_id = shared.next_conn_id();
        let now = shared.service.now_ms();
        // The admin token, and the device key that came with it (if any): taking either away
        // ends the session.
        let mut credentials = Vec::with_capacity(2);
        if g.method == AuthMethod::Token {
            credentials.push(Credential::AdminToken);
        }
        if let Some(d) = &g.device_id {
            credentials.push(Credential::Device {
                device_id: d.clone(),
                role: g.role.as_str().to_string(),
            });
        }
        let registration = match shared.registry.register(
            conn_id,
            now,
            &credentials,
            limits.max_sessions_per_device,
        ) {
            Ok(r) => r,
            Err(TooManySessions(max)) => {
                let r = Refusal::too_many_sessions("this device", max);
                return end(refuse_with(&mut ws, &self.id, r)).await;
            }
        };
        let uptime_ms = shared.started.elapsed().as_millis() as u64;
        let features = shared.hello_features.get(g.role, self.protocol);
        let payload = hello_ok(
            &shared.limits,
            features,
            uptime_ms,
            self.protocol,
            conn_id,
            &g,
        );
        if !send(&mut ws, frames::ok_with(&self.id, &payload)).await {
            return None;
        }
        ws.get_mut().set_budget(None);
        let ws_large = ws.get_mut().take_large(LARGE_FRAME);
        let seen = g.device_id.as_ref().map(|d| {
            shared.touches.touch(d, g.role.as_str(), now);
            (d.clone(), g.role.as_str().to_string())
        });
        let events = (g.role == Role::Operator && rpc::sees_events(&g.scopes))
            .then(|| shared.service.events().subscribe());
        // Only what the session needs is kept: not the connect params, not a new token's text.
        // The audit log gets what the connection proved beside the name its client gave, so
        // no remote client is ever recorded as the window or the CLI on the files.
        let credential = match (g.method, &g.device_id) {
            (AuthMethod::Token, _) | (_, None) => "admin-token".to_string(),
            (_, Some(d)) => format!("device:{}/{}", &d[..d.len().min(16)], g.role),
        };
        let caller = Caller {
            role: g.role,
            scopes: g.scopes,
            // The device speaks for itself only when its own token (or setup code) let it in;
            // with the admin token, the key beside it is just a key.
            device_id: g.device_id.filter(|_| g.method != AuthMethod::Token),
            owner: g.method == AuthMethod::Token,
            via: crate::store::audit::actor(
                &crate::sanitize::sanitize(&self.params.client.id),
                &credential,
            ),
            listening: Some(shared.local_addr),
        };
        Some(Session {
            kick: registration.kick.clone(),
            shared,
            ws,
            caller,
            events,
            seq: 1,
            last_rx: Instant::now(),
            seen,
            // The handshake's buffers go once hello-ok is out: the write buffer keeps the
            // size of hello-ok (and the read buffer that of a large connect) for as long as
            // the connection lives, where an idle session needs neither.
            renew_due: true,
            trim_due: ws_large,
            _registration: registration,
            _address: address,
        })
    }
}

/// The `hello-ok` payload. Protocol 4's is complete for OpenClaw's closed schema (features,
/// snapshot, `auth.method`, `policy.maxBufferedBytes`; no `server.name`); 3's keeps its name.
/// Written straight to the frame from what it borrows (no intermediate JSON value), fields in
/// the order a JSON object of them prints.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HelloOk<'a> {
    auth: HelloAuth<'a>,
    features: FeaturesOut<'a>,
    policy: Policy,
    protocol: u32,
    server: Server,
    snapshot: Snapshot,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HelloAuth<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    device_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    issued_at_ms: Option<crate::clock::Millis>,
    method: &'static str,
    role: Role,
    scopes: &'a [crate::pairing::scope::Scope],
}

#[derive(Serialize)]
struct Features {
    events: &'static [&'static str],
    methods: Vec<&'static str>,
}

impl Features {
    fn of(role: Role, protocol: u32) -> Features {
        Features {
            events: crate::events::WIRE_EVENTS,
            methods: rpc::method_names(role, protocol),
        }
    }
}

/// `hello-ok.features`: as printed once for the process, or listed now.
#[derive(Serialize)]
#[serde(untagged)]
enum FeaturesOut<'a> {
    Printed(&'a RawValue),
    Listed(Features),
}

/// `hello-ok.features` for every role and protocol version, printed once for the process:
/// the same hundred method and event names go to every connection of a kind, and escaping
/// them each time was a tenth of an operator's connect.
pub struct HelloFeatures {
    printed: Vec<(Role, u32, Box<RawValue>)>,
}

impl HelloFeatures {
    pub fn new() -> HelloFeatures {
        let mut printed = Vec::new();
        for role in [Role::Operator, Role::Node] {
            for protocol in crate::protocol::MIN_PROTOCOL..=crate::protocol::MAX_PROTOCOL {
                // Names and a list of them always print; a failure would only mean listing
                // them for each connection instead.
                if let Ok(raw) = serde_json::value::to_raw_value(&Features::of(role, protocol)) {
                    printed.push((role, protocol, raw));
                }
            }
        }
        HelloFeatures { printed }
    }

    fn get(&self, role: Role, protocol: u32) -> FeaturesOut<'_> {
        self.printed
            .iter()
            .find(|(r, p, _)| *r == role && *p == protocol)
            .map_or_else(
                || FeaturesOut::Listed(Features::of(role, protocol)),
                |(_, _, raw)| FeaturesOut::Printed(raw),
            )
    }
}

impl Default for HelloFeatures {
    fn default() -> Self {
        HelloFeatures::new()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Policy {
    max_buffered_bytes: usize,
    max_payload: usize,
    tick_interval_ms: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Server {
    conn_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'static str>,
    version: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Snapshot {
    health: Empty,
    presence: [u8; 0],
    state_version: StateVersion,
    uptime_ms: u64,
}

#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
struct StateVersion {
    health: u64,
    presence: u64,
}

fn hello_ok<'a>(
    limits: &crate::gateway::Limits,
    features: FeaturesOut<'a>,
    uptime_ms: u64,
    protocol: u32,
    conn_id: u64,
    g: &'a Grant,
) -> HelloOk<'a> {
    HelloOk {
        auth: HelloAuth {
            device_token: g.new_token.as_ref().map(|(t, _)| t.as_str()),
            issued_at_ms: g.new_token.as_ref().map(|(_, at)| *at),
            method: g.method.as_str(),
            role: g.role,
            scopes: &g.scopes,
        },
        features,
        policy: Policy {
            max_buffered_bytes: limits.max_write_buffer,
            max_payload: limits.max_message,
            tick_interval_ms: limits.ping_interval.as_millis() as u64,
        },
        protocol,
        server: Server {
            conn_id: conn_id.to_string(),
            name: (protocol < 4).then_some("clawpair"),
            version: env!("CARGO_PKG_VERSION"),
        },
        snapshot: Snapshot {
            health: Empty {},
            presence: [],
            state_version: StateVersion {
                health: 0,
                presence: 0,
            },
            uptime_ms,
        },
        kind: "hello-ok",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::connect::AuthMethod;
    use serde_json::json;

    /// The typed hello-ok prints exactly what the object it stands for prints.
    #[test]
    fn hello_ok_prints_the_object_it_stands_for() {
        let limits = crate::gateway::Limits::default();
        for (protocol, new_token) in [(4, Some(("tok".to_string(), 17))), (3, None)] {
            let g = Grant {
                role: Role::Node,
                scopes: vec![],
                method: AuthMethod::BootstrapToken,
                device_id: Some("d1".into()),
                new_token: new_token.clone(),
            };
            let mut auth = json!({ "role": "node", "scopes": [], "method": "bootstrap-token" });
            if let Some((t, at)) = &new_token {
                auth["deviceToken"] = t.clone().into();
                auth["issuedAtMs"] = (*at).into();
            }
            let mut server = json!({ "version": env!("CARGO_PKG_VERSION"), "connId": "5" });
            if protocol < 4 {
                server["name"] = "clawpair".into();
            }
            let expected = json!({
                "type": "hello-ok",
                "protocol": protocol,
                "server": server,
                "features": {
                    "methods": rpc::method_names(Role::Node, protocol),
                    "events": crate::events::WIRE_EVENTS,
                },
                "snapshot": {
                    "presence": [],
                    "health": {},
                    "stateVersion": { "presence": 0, "health": 0 },
                    "uptimeMs": 99,
                },
                "auth": auth,
                "policy": {
                    "maxPayload": limits.max_message,
                    "maxBufferedBytes": limits.max_write_buffer,
                    "tickIntervalMs": limits.ping_interval.as_millis() as u64,
                },
            });
            let id = json!("c1");
            let expected = frames::ok(&id, expected);
            let printed = HelloFeatures::new();
            let features = printed.get(g.role, protocol);
            assert!(matches!(features, FeaturesOut::Printed(_)));
            assert_eq!(
                frames::ok_with(&id, &hello_ok(&limits, features, 99, protocol, 5, &g)),
                expected
            );
            let listed = FeaturesOut::Listed(Features::of(g.role, protocol));
            assert_eq!(
                frames::ok_with(&id, &hello_ok(&limits, listed, 99, protocol, 5, &g)),
                expected
            );
        }
    }
}
