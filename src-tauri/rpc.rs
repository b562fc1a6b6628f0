//! The operator methods of the protocol (§5.5), as one dispatcher over the [`Service`]. The
//! gateway answers sockets with it, and the CLI calls it directly when no gateway runs, so a
//! method means the same thing whichever way it is reached.

use std::net::SocketAddr;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::pairing::device::{
    scope_granted, SCOPE_ADMIN, SCOPE_CHANNEL_INGEST, SCOPE_PAIRING, SCOPE_READ,
};
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

/// Refuses unknown methods and callers without the method's scope.
fn authorize(caller: &Caller, method: &str) -> Result<(), RpcError> {
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
    Ok(())
}

/// Runs one method for `caller`. Unknown methods, missing scopes and bad params are refused
/// with an error; nothing here panics on input.
pub fn call(
    service: &Service,
    caller: &Caller,
    method: &str,
    params: Value,
) -> Result<Value, RpcError> {
    authorize(caller, method)?;
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
            let m = InboundDm::from(parse::<InboundParams>(method, params)?);
            Ok(decision_json(service.dm_inbound(&m)?))
        }
        _ => Err(RpcError::new(
            "INVALID_REQUEST",
            format!("unknown method {method:?}"),
        )),
    }
}

impl From<InboundParams> for InboundDm {
    fn from(p: InboundParams) -> Self {
        InboundDm {
            channel: p.channel,
            account: p.account_id,
            sender: p.sender_id,
            text: p.text,
            meta: p.meta.unwrap_or_default(),
            is_group: p
                .chat_type
                .as_deref()
                .is_some_and(|t| t != "direct" && t != "private" && t != "dm"),
        }
    }
}

fn decision_json(d: crate::pairing::dm::Decision) -> Value {
    let mut out = json!({ "decision": d.kind(), "reason": d.reason().as_str() });
    if let crate::pairing::dm::Decision::Challenge { code, reply, .. } = d {
        out["code"] = code.into();
        out["reply"] = reply.into();
    }
    out
}

/// Answers a request from memory when that needs no disk read and no write — today
/// `channel.inbound` for a sender the cached settings and allowlist settle (the hot path of a
/// channel bridge) — so the gateway can answer it without a trip to a blocking thread.
/// `None`: use [`call`] off the async runtime. Same answers as `call`, by construction.
pub fn call_in_memory(
    service: &Service,
    caller: &Caller,
    method: &str,
    params: &Value,
) -> Option<Result<Value, RpcError>> {
    if method != "channel.inbound" {
        return None;
    }
    if let Err(e) = authorize(caller, method) {
        return Some(Err(e));
    }
    let m = match InboundParams::deserialize(params) {
        Ok(p) => InboundDm::from(p),
        // `call` words the error; it costs nothing to let it.
        Err(_) => return None,
    };
    let d = service.dm_inbound_cached(&m)?;
    Some(d.map(decision_json).map_err(RpcError::from))
}

/// Whether an operator with these scopes receives any event at all (a channel bridge with
/// only `channel.ingest` does not, so it need not listen).
pub fn sees_events(scopes: &[String]) -> bool {
    scope_granted(scopes, SCOPE_PAIRING) || scope_granted(scopes, SCOPE_READ)
}

/// Whether an operator with these scopes receives this event.
pub fn event_visible(scopes: &[String], event: &crate::events::Event) -> bool {
    scope_granted(scopes, event.required_scope())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service() -> (tempfile::TempDir, Service) {
        crate::service::test_service(1_767_323_045_678)
    }

    fn bridge() -> Caller {
        Caller {
            scopes: vec![SCOPE_CHANNEL_INGEST.into()],
            via: "telegram".into(),
            listening: None,
        }
    }

    #[test]
    fn in_memory_answers_match_call_and_leave_disk_work_to_it() {
        let (_tmp, s) = service();
        s.allow_add("telegram", None, "alice", "test").unwrap();
        let alice = json!({ "channel": "telegram", "senderId": "alice", "text": "hi" });
        assert!(
            call_in_memory(&s, &bridge(), "channel.inbound", &alice).is_none(),
            "nothing cached yet: the allowlist must be read first"
        );
        let slow = call(&s, &bridge(), "channel.inbound", alice.clone()).unwrap();
        let fast = call_in_memory(&s, &bridge(), "channel.inbound", &alice)
            .expect("cached now")
            .unwrap();
        assert_eq!(fast, slow);
        assert_eq!(fast["decision"], "allow");

        let stranger = json!({ "channel": "telegram", "senderId": "mallory" });
        assert!(
            call_in_memory(&s, &bridge(), "channel.inbound", &stranger).is_none(),
            "a challenge writes a request: not from memory"
        );
        assert_eq!(
            call(&s, &bridge(), "channel.inbound", stranger).unwrap()["decision"],
            "challenge"
        );

        let group = json!({ "channel": "telegram", "senderId": "bob", "chatType": "group" });
        assert_eq!(
            call_in_memory(&s, &bridge(), "channel.inbound", &group)
                .unwrap()
                .unwrap(),
            call(&s, &bridge(), "channel.inbound", group).unwrap()
        );

        let bad = json!({ "channel": "../x", "senderId": "alice" });
        let fast = call_in_memory(&s, &bridge(), "channel.inbound", &bad).unwrap();
        assert_eq!(fast, call(&s, &bridge(), "channel.inbound", bad));
        assert_eq!(fast.unwrap_err().code, "INVALID_REQUEST");

        let reader = Caller {
            scopes: vec![SCOPE_READ.into()],
            ..bridge()
        };
        let e = call_in_memory(&s, &reader, "channel.inbound", &alice)
            .unwrap()
            .unwrap_err();
        assert_eq!(e.code, "FORBIDDEN");
        assert!(call_in_memory(&s, &bridge(), "pairing.list", &json!({})).is_none());
    }

    #[test]
    fn a_bridge_with_only_channel_ingest_gets_no_events() {
        assert!(!sees_events(&[SCOPE_CHANNEL_INGEST.to_string()]));
        assert!(sees_events(&[SCOPE_READ.to_string()]));
        assert!(sees_events(&[SCOPE_PAIRING.to_string()]));
        assert!(sees_events(&[SCOPE_ADMIN.to_string()]));
        assert!(sees_events(&["operator.write".to_string()]));
    }
}
