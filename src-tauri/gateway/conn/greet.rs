//! The greeting after a granted `connect`: the `hello-ok` payload for the negotiated protocol,
//! and the session it opens (registrations that let a removal or rotation close it, the event
//! subscription, the caller the audit log records).

use std::time::Instant;

use serde_json::{json, Value};

use super::handshake::Conn;
use super::session::Session;
use super::wire::send;
use super::Ws;
use crate::gateway::connect::{self, Grant};
use crate::gateway::frames;
use crate::gateway::Shared;
use crate::rpc::{self, Caller};

impl Conn {
    /// Sends hello-ok (consuming a setup code once it is sent) and sets up the session.
    pub(super) async fn greet(self, mut ws: Ws, g: Grant) -> Option<Session> {
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
            shared.registry.register(
                crate::gateway::registry::ADMIN_SESSIONS,
                &g.role,
                conn_id,
                0,
            )
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
