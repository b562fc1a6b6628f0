//! The operator methods of the protocol (§5.5), as one dispatcher over the [`Service`]. The
//! gateway answers sockets with it, and the CLI calls it directly when no gateway runs, so a
//! method means the same thing whichever way it is reached.

use std::net::SocketAddr;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::pairing::device::{scope_granted, SCOPE_ADMIN, SCOPE_CHANNEL_INGEST, SCOPE_PAIRING};
use crate::service::{InboundDm, Service, ServiceError};

/// An error answer: `{code, message, details?}`.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    pub code: String,
    pub message: String,
    pub details: Option<Value>,
}

impl RpcError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        RpcError {
            code: code.into(),
            message: message.into(),
            details: None,
        }
    }
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("code".into(), self.code.clone().into());
        m.insert("message".into(), self.message.clone().into());
        if let Some(d) = &self.details {
            m.insert("details".into(), d.clone());
        }
        Value::Object(m)
    }
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<ServiceError> for RpcError {
    fn from(e: ServiceError) -> Self {
        let details = match &e {
            ServiceError::NotFound { reason, .. } => Some(json!({ "reason": reason })),
            _ => None,
        };
        RpcError {
            code: e.code().into(),
            message: e.to_string(),
            details,
        }
    }
}

/// Who is calling, as established by the handshake.
#[derive(Debug, Clone)]
pub struct Caller {
    pub scopes: Vec<String>,
    /// For the audit log: `cli`, `gateway`, `window`, `telegram`, …
    pub via: String,
    /// Where the gateway listens, for setup-code URLs derived from the bind address.
    pub listening: Option<SocketAddr>,
}

impl Caller {
    /// The owner acting locally (CLI on files, the tray app): every scope.
    pub fn owner(via: &str, listening: Option<SocketAddr>) -> Self {
        Caller {
            scopes: vec![SCOPE_ADMIN.into()],
            via: via.into(),
            listening,
        }
    }
}

/// Every method this dispatcher answers, with the scope it needs.
pub const METHODS: &[(&str, &str)] = &[
    ("device.pair.list", SCOPE_PAIRING),
    ("device.pair.approve", SCOPE_PAIRING),
    ("device.pair.reject", SCOPE_PAIRING),
    ("device.pair.remove", SCOPE_PAIRING),
    ("device.pair.clear", SCOPE_PAIRING),
    ("device.token.rotate", SCOPE_PAIRING),
    ("device.token.revoke", SCOPE_PAIRING),
    ("device.setup.create", SCOPE_PAIRING),
    ("device.setup.cleanup", SCOPE_PAIRING),
    ("pairing.list", SCOPE_PAIRING),
    ("pairing.approve", SCOPE_PAIRING),
    ("pairing.reject", SCOPE_PAIRING),
    ("allowlist.list", SCOPE_PAIRING),
    ("allowlist.add", SCOPE_PAIRING),
    ("allowlist.remove", SCOPE_PAIRING),
    ("audit.tail", SCOPE_PAIRING),
    ("channel.inbound", SCOPE_CHANNEL_INGEST),
];

pub fn required_scope(method: &str) -> Option<&'static str> {
    METHODS.iter().find(|(m, _)| *m == method).map(|(_, s)| *s)
}

fn parse<T: DeserializeOwned>(method: &str, params: Value) -> Result<T, RpcError> {
    let params = if params.is_null() {
        Value::Object(Map::new())
    } else {
        params
    };
    serde_json::from_value(params).map_err(|e| {
        RpcError::new(
            "INVALID_REQUEST",
            format!("invalid params for {method}: {e}"),
        )
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestIdParams {
    request_id: String,
}
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeviceIdParams {
    device_id: String,
}
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeviceRoleParams {
    device_id: String,
    role: String,
}
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClearParams {
    #[serde(default)]
    pending: bool,
}
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct SetupParams {
    #[serde(default)]
    url: Option<String>,
}
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ChannelFilter {
    #[serde(default)]
    channel: Option<String>,
}
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CodeParams {
    #[serde(default)]
    channel: Option<String>,
    code: String,
    #[serde(default)]
    account_id: Option<String>,
    #[serde(default)]
    notify: bool,
}
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SenderParams {
    channel: String,
    sender_id: String,
    #[serde(default)]
    account_id: Option<String>,
}
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TailParams {
    #[serde(default = "default_limit")]
    limit: usize,
}
fn default_limit() -> usize {
    50
}
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InboundParams {
    channel: String,
    #[serde(default)]
    account_id: Option<String>,
    sender_id: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    meta: Option<Map<String, Value>>,
    #[serde(default)]
    chat_type: Option<String>,
}

/// Runs one method for `caller`. Unknown methods, missing scopes and bad params are refused
/// with an error; nothing here panics on input.
pub fn call(
    service: &Service,
    caller: &Caller,
    method: &str,
    params: Value,
) -> Result<Value, RpcError> {
    let Some(scope) = required_scope(method) else {
        return Err(RpcError::new(
            "INVALID_REQUEST",
            format!("unknown method {:?}", crate::sanitize::sanitize(method)),
        ));
    };
    if !scope_granted(&caller.scopes, scope) {
        return Err(
            RpcError::new("FORBIDDEN", format!("{method} needs scope {scope}"))
                .with_details(json!({ "scope": scope })),
        );
    }
    let via = caller.via.as_str();
    let to_value = |v: Result<Value, ServiceError>| v.map_err(RpcError::from);
    match method {
        "device.pair.list" => to_value(service.device_list().map(|l| json!(l))),
        "device.pair.approve" => {
            let p: RequestIdParams = parse(method, params)?;
            to_value(
                service
                    .device_approve(&p.request_id, via)
                    .map(|d| json!({ "requestId": p.request_id, "device": d })),
            )
        }
        "device.pair.reject" => {
            let p: RequestIdParams = parse(method, params)?;
            to_value(
                service
                    .device_reject(&p.request_id, via)
                    .map(|r| json!({ "requestId": r.request_id, "deviceId": r.device_id })),
            )
        }
        "device.pair.remove" => {
            let p: DeviceIdParams = parse(method, params)?;
            to_value(
                service
                    .device_remove(&p.device_id, via)
                    .map(|d| json!({ "deviceId": d.device_id })),
            )
        }
        "device.pair.clear" => {
            let p: ClearParams = parse(method, params)?;
            to_value(
                service
                    .device_clear(p.pending, via)
                    .map(|(removed, rejected)| json!({ "removed": removed, "rejected": rejected })),
            )
        }
        "device.token.rotate" => {
            let p: DeviceRoleParams = parse(method, params)?;
            to_value(service.token_rotate(&p.device_id, &p.role, via).map(|(token, at)| {
                json!({ "deviceId": p.device_id, "role": p.role, "token": token, "rotatedAtMs": at })
            }))
        }
        "device.token.revoke" => {
            let p: DeviceRoleParams = parse(method, params)?;
            to_value(
                service.token_revoke(&p.device_id, &p.role, via).map(
                    |at| json!({ "deviceId": p.device_id, "role": p.role, "revokedAtMs": at }),
                ),
            )
        }
        "device.setup.create" => {
            let p: SetupParams = parse(method, params)?;
            to_value(
                service
                    .setup_create(p.url.as_deref(), caller.listening, via)
                    .map(|c| json!(c)),
            )
        }
        "device.setup.cleanup" => {
            to_value(service.setup_cleanup(via).map(|n| json!({ "removed": n })))
        }
        "pairing.list" => {
            let p: ChannelFilter = parse(method, params)?;
            to_value(
                service
                    .dm_list(p.channel.as_deref())
                    .map(|r| json!({ "requests": r })),
            )
        }
        "pairing.approve" => {
            let p: CodeParams = parse(method, params)?;
            to_value(
                service
                    .dm_approve(
                        p.channel.as_deref(),
                        &p.code,
                        p.account_id.as_deref(),
                        p.notify,
                        via,
                    )
                    .map(|a| json!(a)),
            )
        }
        "pairing.reject" => {
            let p: CodeParams = parse(method, params)?;
            to_value(
                service
                    .dm_reject(p.channel.as_deref(), &p.code, p.account_id.as_deref(), via)
                    .map(|a| json!(a)),
            )
        }
        "allowlist.list" => {
            let p: ChannelFilter = parse(method, params)?;
            to_value(
                service
                    .allow_list(p.channel.as_deref())
                    .map(|e| json!({ "entries": e })),
            )
        }
        "allowlist.add" => {
            let p: SenderParams = parse(method, params)?;
            to_value(
                service
                    .allow_add(&p.channel, p.account_id.as_deref(), &p.sender_id, via)
                    .map(|added| json!({ "added": added })),
            )
        }
        "allowlist.remove" => {
            let p: SenderParams = parse(method, params)?;
            to_value(
                service
                    .allow_remove(&p.channel, p.account_id.as_deref(), &p.sender_id, via)
                    .map(|removed| json!({ "removed": removed })),
            )
        }
        "audit.tail" => {
            let p: TailParams = parse(method, params)?;
            to_value(service.audit_tail(p.limit).map(|e| json!({ "entries": e })))
        }
        "channel.inbound" => {
            let p: InboundParams = parse(method, params)?;
            let m = InboundDm {
                channel: p.channel,
                account: p.account_id,
                sender: p.sender_id,
                text: p.text,
                meta: p.meta.unwrap_or_default(),
                is_group: p
                    .chat_type
                    .as_deref()
                    .is_some_and(|t| t != "direct" && t != "private" && t != "dm"),
            };
            let d = service.dm_inbound(&m)?;
            let mut out = json!({ "decision": d.kind(), "reason": d.reason().as_str() });
            if let crate::pairing::dm::Decision::Challenge { code, reply, .. } = d {
                out["code"] = code.into();
                out["reply"] = reply.into();
            }
            Ok(out)
        }
        _ => Err(RpcError::new(
            "INVALID_REQUEST",
            format!("unknown method {method:?}"),
        )),
    }
}

/// Whether an operator with these scopes receives this event.
pub fn event_visible(scopes: &[String], event: &crate::events::Event) -> bool {
    scope_granted(scopes, event.required_scope())
}
