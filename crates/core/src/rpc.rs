//! The operator methods of the protocol (§5.5), as one dispatcher over the [`Service`]. The
//! gateway answers sockets with it, and the CLI calls it directly when no gateway runs, so a
//! method means the same thing whichever way it is reached.

use std::net::SocketAddr;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::pairing::authority::{Authority, Beyond};
use crate::pairing::scope::{
    scope_granted, Role, Scope, SCOPE_ADMIN, SCOPE_CHANNEL_INGEST, SCOPE_PAIRING, SCOPE_READ,
};
use crate::protocol::{Code, ErrorCode, Versions};
use crate::sanitize::sanitize;
use crate::service::{InboundDm, Service, ServiceError};

/// An error answer: `{code, message, details?}`.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    pub code: ErrorCode,
    pub message: String,
    pub details: Option<Value>,
}

impl RpcError {
    pub fn new(code: impl Into<ErrorCode>, message: impl Into<String>) -> Self {
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
        m.insert("code".into(), self.code.as_str().into());
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
            ServiceError::InvalidStoredName(_) => Some(json!({ "reason": "invalid-stored-name" })),
            ServiceError::Beyond(b) => Some(beyond_details(b)),
            _ => None,
        };
        RpcError {
            code: e.code().into(),
            message: e.to_string(),
            details,
        }
    }
}

fn beyond_details(b: &Beyond) -> Value {
    let mut d = json!({ "reason": b.reason() });
    if let Some(what) = b.missing() {
        d["missing"] = what.into();
    }
    d
}

/// Who is calling, as established by the handshake (or the owner on this computer).
#[derive(Debug, Clone)]
pub struct Caller {
    pub role: Role,
    pub scopes: Vec<Scope>,
    /// The paired device whose token (or setup code) the session was let in with. `None` for
    /// the owner and for the admin token, whatever device block came with it.
    pub device_id: Option<String>,
    /// The owner: on this computer, or through the admin token (which may ask for any scope
    /// at any time, so the scopes a session of it asked for bound the methods it calls, not
    /// what it may grant).
    pub owner: bool,
    /// For the audit log: `cli`, `gateway`, `window`, `telegram`, …
    pub via: String,
    /// Where the gateway listens, for setup-code URLs derived from the bind address.
    pub listening: Option<SocketAddr>,
}

impl Caller {
    /// The owner acting on this computer (the window, tray, notifications, the CLI on the
    /// files): every scope.
    pub fn owner(via: &str, listening: Option<SocketAddr>) -> Self {
        Caller {
            role: Role::Operator,
            scopes: vec![Scope::admin()],
            device_id: None,
            owner: true,
            via: via.into(),
            listening,
        }
    }

    /// What this caller may grant (the approval ceiling): the owner's whole authority, or a
    /// device's own role and scopes.
    pub fn authority(&self) -> Authority {
        if self.owner {
            return Authority::owner();
        }
        Authority {
            role: self.role,
            scopes: self.scopes.clone(),
            device_id: self.device_id.clone(),
        }
    }
}

/// What a caller must hold to call a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// An operator with this scope (admin holds every scope).
    Scope(&'static str),
    /// A connection of role `node` (the node host's own reports).
    NodeRole,
}

/// What bounds a method beyond the scope it needs: the approval ceiling (see
/// [`crate::pairing::authority`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ceiling {
    /// Nothing more: it grants no device anything.
    None,
    /// It grants a pending request's role and scopes: only within the caller's own, and never
    /// for the caller's own device.
    Grants,
    /// It acts on a paired device (and a rotation hands the caller the new token): the
    /// caller's own device, or one holding nothing the caller lacks.
    Manages,
}

impl Ceiling {
    /// As docs/PROTOCOL.md writes it.
    pub fn in_words(self) -> &'static str {
        match self {
            Ceiling::None => "—",
            Ceiling::Grants => "grants only what the caller holds; not its own request",
            Ceiling::Manages => "a device holding nothing the caller lacks, or its own",
        }
    }
}

type Handler = fn(&Service, &Caller, Value) -> Result<Value, RpcError>;

/// One method of the protocol: its wire name, who may call it, the ceiling on what it may do,
/// the protocol versions it exists in, and what answers it.
pub struct Method {
    pub name: &'static str,
    pub needs: Needs,
    pub ceiling: Ceiling,
    /// Every method so far exists in both versions served; one that protocol 4 adds (or drops)
    /// says so here, and `hello-ok` of a version without it does not list it.
    pub versions: Versions,
    handler: Handler,
}

use Ceiling::{Grants, Manages};

/// Every method the gateway answers: the one policy table. Dispatch, the scope check, the
/// ceiling and `hello-ok.features.methods` all read it (docs/PROTOCOL.md lists the same,
/// checked by a test, and tests/core/authorization.rs calls every method as every kind of caller
/// against it).
#[rustfmt::skip]
pub static METHODS: &[Method] = &[
    m("device.pair.list", Needs::Scope(SCOPE_PAIRING), device_pair_list),
    m("device.pair.approve", Needs::Scope(SCOPE_PAIRING), device_pair_approve).bounded(Grants),
    m("device.pair.reject", Needs::Scope(SCOPE_PAIRING), device_pair_reject),
    m("device.pair.remove", Needs::Scope(SCOPE_PAIRING), device_pair_remove).bounded(Manages),
    m("device.pair.rename", Needs::Scope(SCOPE_PAIRING), device_pair_rename).bounded(Manages),
    // Every device at once, the owner's included: the owner's call.
    m("device.pair.clear", Needs::Scope(SCOPE_ADMIN), device_pair_clear),
    m("device.token.rotate", Needs::Scope(SCOPE_PAIRING), device_token_rotate).bounded(Manages),
    m("device.token.revoke", Needs::Scope(SCOPE_PAIRING), device_token_revoke).bounded(Manages),
    m("device.setup.create", Needs::Scope(SCOPE_PAIRING), device_setup_create),
    // OpenClaw's name for the same (`openclaw devices join-code`), admin only as there.
    m("device.pair.setupCode", Needs::Scope(SCOPE_ADMIN), device_pair_setup_code),
    m("device.setup.cleanup", Needs::Scope(SCOPE_PAIRING), device_setup_cleanup),
    // OpenClaw's node capability approvals. ClawPair approves a node's commands with its
    // device, so none ever waits here: the list is empty and no request id is known.
    m("node.pair.list", Needs::Scope(SCOPE_PAIRING), node_pair_list),
    m("node.pair.approve", Needs::Scope(SCOPE_PAIRING), node_pair_decide),
    m("node.pair.reject", Needs::Scope(SCOPE_PAIRING), node_pair_decide),
    // OpenClaw's exec approvals: ClawPair's gateway runs no agents, so none ever waits here.
    m("exec.approval.list", Needs::Scope(SCOPE_PAIRING), exec_approval_list),
    m("exec.approval.resolve", Needs::Scope(SCOPE_PAIRING), exec_approval_resolve),
    m("pairing.list", Needs::Scope(SCOPE_PAIRING), pairing_list),
    m("pairing.approve", Needs::Scope(SCOPE_PAIRING), pairing_approve),
    m("pairing.reject", Needs::Scope(SCOPE_PAIRING), pairing_reject),
    m("allowlist.list", Needs::Scope(SCOPE_PAIRING), allowlist_list),
    m("allowlist.add", Needs::Scope(SCOPE_PAIRING), allowlist_add),
    m("allowlist.remove", Needs::Scope(SCOPE_PAIRING), allowlist_remove),
    m("audit.tail", Needs::Scope(SCOPE_PAIRING), audit_tail),
    m("channel.inbound", Needs::Scope(SCOPE_CHANNEL_INGEST), channel_inbound),
    m("health", Needs::Scope(SCOPE_READ), health),
    m("gateway.token.rotate", Needs::Scope(SCOPE_ADMIN), gateway_token_rotate),
    // What OpenClaw's node host reports after hello-ok: taken and acknowledged, not kept.
    m("node.event", Needs::NodeRole, node_report),
    m("node.runnerInventory.update", Needs::NodeRole, node_report),
    m("node.skills.update", Needs::NodeRole, node_report),
    m("node.pluginTools.update", Needs::NodeRole, node_report),
];

const fn m(name: &'static str, needs: Needs, handler: Handler) -> Method {
    Method {
        name,
        needs,
        ceiling: Ceiling::None,
        versions: Versions::ALL,
        handler,
    }
}

impl Method {
    const fn bounded(mut self, ceiling: Ceiling) -> Method {
        self.ceiling = ceiling;
        self
    }

    /// Whether `caller` may call it at all (the ceiling is checked against what it acts on).
    pub fn allows(&self, caller: &Caller) -> bool {
        match self.needs {
            Needs::Scope(scope) => {
                caller.role == Role::Operator && scope_granted(&caller.scopes, scope)
            }
            Needs::NodeRole => caller.role == Role::Node,
        }
    }
}

pub fn method(name: &str) -> Option<&'static Method> {
    METHODS.iter().find(|m| m.name == name)
}

/// The methods a connection of `role` speaking `protocol` may call
/// (`hello-ok.features.methods`).
pub fn method_names(role: Role, protocol: u32) -> Vec<&'static str> {
    let node = role == Role::Node;
    METHODS
        .iter()
        .filter(|m| (m.needs == Needs::NodeRole) == node && m.versions.contains(protocol))
        .map(|m| m.name)
        .collect()
}

fn parse<T: DeserializeOwned>(method: &str, params: Value) -> Result<T, RpcError> {
    let params = if params.is_null() {
        Value::Object(Map::new())
    } else {
        params
    };
    serde_json::from_value(params).map_err(|e| {
        RpcError::new(
            Code::InvalidRequest,
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
struct ApproveParams {
    request_id: String,
    /// Approve the request without `operator.admin` (the device gets the rest).
    #[serde(default)]
    without_admin: bool,
}
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeviceIdParams {
    device_id: String,
}
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RenameParams {
    device_id: String,
    label: String,
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
    /// Revoke the live codes made earlier by the same caller (the window's "New code").
    #[serde(default)]
    retire_previous: bool,
}
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct SetupCodeParams {
    #[serde(default)]
    public_url: Option<String>,
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

/// Refuses unknown methods and callers without what the method needs.
fn authorize(caller: &Caller, name: &str) -> Result<&'static Method, RpcError> {
    let Some(method) = method(name) else {
        return Err(RpcError::new(
            Code::InvalidRequest,
            format!("unknown method {:?}", crate::sanitize::sanitize(name)),
        ));
    };
    if method.allows(caller) {
        return Ok(method);
    }
    match method.needs {
        Needs::Scope(scope) => Err(RpcError::new(
            Code::Forbidden,
            format!("{name} needs scope {scope}"),
        )
        .with_details(json!({ "scope": scope }))),
        Needs::NodeRole => Err(RpcError::new(
            Code::Forbidden,
            format!("{name} is for node connections"),
        )),
    }
}

/// Runs one method for `caller`. Unknown methods, missing scopes and bad params are refused
/// with an error; nothing here panics on input.
pub fn call(
    service: &Service,
    caller: &Caller,
    method: &str,
    params: Value,
) -> Result<Value, RpcError> {
    let m = authorize(caller, method)?;
    (m.handler)(service, caller, params)
}

fn answer<T: serde::Serialize>(v: Result<T, ServiceError>) -> Result<Value, RpcError> {
    v.map(|v| json!(v)).map_err(RpcError::from)
}

fn device_pair_list(s: &Service, _: &Caller, _: Value) -> Result<Value, RpcError> {
    answer(s.device_list())
}

fn device_pair_approve(s: &Service, c: &Caller, p: Value) -> Result<Value, RpcError> {
    let p: ApproveParams = parse("device.pair.approve", p)?;
    let withhold = if p.without_admin {
        vec![SCOPE_ADMIN.to_string()]
    } else {
        vec![]
    };
    answer(
        s.device_approve_by(&p.request_id, &withhold, &c.authority(), &c.via)
            .map(|d| json!({ "requestId": p.request_id, "device": d })),
    )
}

fn device_pair_reject(s: &Service, c: &Caller, p: Value) -> Result<Value, RpcError> {
    let p: RequestIdParams = parse("device.pair.reject", p)?;
    answer(
        s.device_reject(&p.request_id, &c.via)
            .map(|r| json!({ "requestId": r.request_id, "deviceId": r.device_id })),
    )
}

fn device_pair_remove(s: &Service, c: &Caller, p: Value) -> Result<Value, RpcError> {
    let p: DeviceIdParams = parse("device.pair.remove", p)?;
    answer(
        s.device_remove_by(&p.device_id, &c.authority(), &c.via)
            .map(|d| json!({ "deviceId": d.device_id })),
    )
}

fn device_pair_rename(s: &Service, c: &Caller, p: Value) -> Result<Value, RpcError> {
    let p: RenameParams = parse("device.pair.rename", p)?;
    answer(
        s.device_rename(&p.device_id, &p.label, &c.authority(), &c.via)
            .map(|label| json!({ "deviceId": p.device_id, "label": label })),
    )
}

fn device_pair_clear(s: &Service, c: &Caller, p: Value) -> Result<Value, RpcError> {
    let p: ClearParams = parse("device.pair.clear", p)?;
    answer(
        s.device_clear(p.pending, &c.via)
            .map(|(removed, rejected)| json!({ "removed": removed, "rejected": rejected })),
    )
}

fn device_token_rotate(s: &Service, c: &Caller, p: Value) -> Result<Value, RpcError> {
    let p: DeviceRoleParams = parse("device.token.rotate", p)?;
    answer(
        s.token_rotate(&p.device_id, &p.role, &c.authority(), &c.via)
            .map(|(token, at, scopes)| {
                // The owner who asked sees the new token once, to hand to the device.
                json!({ "deviceId": p.device_id, "role": p.role, "token": token, "scopes": scopes,
                        "rotatedAtMs": at, "tokenDelivery": "in-band" })
            }),
    )
}

fn device_token_revoke(s: &Service, c: &Caller, p: Value) -> Result<Value, RpcError> {
    let p: DeviceRoleParams = parse("device.token.revoke", p)?;
    answer(
        s.token_revoke(&p.device_id, &p.role, &c.authority(), &c.via)
            .map(|at| json!({ "deviceId": p.device_id, "role": p.role, "revokedAtMs": at })),
    )
}

fn device_setup_create(s: &Service, c: &Caller, p: Value) -> Result<Value, RpcError> {
    let p: SetupParams = parse("device.setup.create", p)?;
    answer(s.setup_create(p.url.as_deref(), c.listening, &c.via, p.retire_previous))
}

fn device_pair_setup_code(s: &Service, c: &Caller, p: Value) -> Result<Value, RpcError> {
    let p: SetupCodeParams = parse("device.pair.setupCode", p)?;
    answer(
        s.setup_create(p.public_url.as_deref(), c.listening, &c.via, false)
            .map(|code| {
                json!({ "setupCode": code.setup_code, "gatewayUrl": code.url, "url": code.url,
                        "auth": "token", "urlSource": if p.public_url.is_some() { "explicit" } else { "gateway" },
                        "expiresAtMs": code.expires_at_ms })
            }),
    )
}

fn device_setup_cleanup(s: &Service, c: &Caller, _: Value) -> Result<Value, RpcError> {
    answer(s.setup_cleanup(&c.via).map(|n| json!({ "removed": n })))
}

fn pairing_list(s: &Service, _: &Caller, p: Value) -> Result<Value, RpcError> {
    let p: ChannelFilter = parse("pairing.list", p)?;
    answer(
        s.dm_list(p.channel.as_deref())
            .map(|r| json!({ "requests": r })),
    )
}

fn pairing_approve(s: &Service, c: &Caller, p: Value) -> Result<Value, RpcError> {
    let p: CodeParams = parse("pairing.approve", p)?;
    answer(s.dm_approve(
        p.channel.as_deref(),
        &p.code,
        p.account_id.as_deref(),
        p.notify,
        &c.via,
    ))
}

fn pairing_reject(s: &Service, c: &Caller, p: Value) -> Result<Value, RpcError> {
    let p: CodeParams = parse("pairing.reject", p)?;
    answer(s.dm_reject(
        p.channel.as_deref(),
        &p.code,
        p.account_id.as_deref(),
        &c.via,
    ))
}

fn allowlist_list(s: &Service, _: &Caller, p: Value) -> Result<Value, RpcError> {
    let p: ChannelFilter = parse("allowlist.list", p)?;
    answer(
        s.allow_list(p.channel.as_deref())
            .map(|e| json!({ "entries": e })),
    )
}

fn allowlist_add(s: &Service, c: &Caller, p: Value) -> Result<Value, RpcError> {
    let p: SenderParams = parse("allowlist.add", p)?;
    answer(
        s.allow_add(&p.channel, p.account_id.as_deref(), &p.sender_id, &c.via)
            .map(|added| json!({ "added": added })),
    )
}

fn allowlist_remove(s: &Service, c: &Caller, p: Value) -> Result<Value, RpcError> {
    let p: SenderParams = parse("allowlist.remove", p)?;
    answer(
        s.allow_remove(&p.channel, p.account_id.as_deref(), &p.sender_id, &c.via)
            .map(|removed| json!({ "removed": removed })),
    )
}

fn audit_tail(s: &Service, _: &Caller, p: Value) -> Result<Value, RpcError> {
    let p: TailParams = parse("audit.tail", p)?;
    answer(s.audit_tail(p.limit).map(|e| json!({ "entries": e })))
}

fn channel_inbound(s: &Service, _: &Caller, p: Value) -> Result<Value, RpcError> {
    let m = InboundDm::from(parse::<InboundParams>("channel.inbound", p)?);
    Ok(decision_json(s.dm_inbound(&m)?))
}

fn health(s: &Service, _: &Caller, _: Value) -> Result<Value, RpcError> {
    Ok(
        json!({ "ok": true, "ts": s.now_ms(), "server": { "name": "clawpair", "version": env!("CARGO_PKG_VERSION") } }),
    )
}

fn gateway_token_rotate(s: &Service, c: &Caller, _: Value) -> Result<Value, RpcError> {
    // The new token is never sent: it is in clawpair.json (0600) for whoever may read it.
    answer(
        s.admin_token_rotate(&c.via)
            .map(|at| json!({ "rotatedAtMs": at })),
    )
}

fn node_pair_list(_: &Service, _: &Caller, _: Value) -> Result<Value, RpcError> {
    Ok(json!({ "pending": [], "paired": [] }))
}

fn node_pair_decide(_: &Service, _: &Caller, params: Value) -> Result<Value, RpcError> {
    let id = params["requestId"].as_str().unwrap_or_default();
    Err(RpcError::new(
        Code::NotFound,
        format!(
            "unknown requestId {}: ClawPair approves a node's commands together with its device",
            sanitize(id)
        ),
    )
    .with_details(json!({ "reason": "unknown" })))
}

fn exec_approval_list(_: &Service, _: &Caller, _: Value) -> Result<Value, RpcError> {
    Ok(json!([]))
}

fn exec_approval_resolve(_: &Service, _: &Caller, params: Value) -> Result<Value, RpcError> {
    let id = params["id"].as_str().unwrap_or_default();
    Err(RpcError::new(
        Code::NotFound,
        format!(
            "unknown approval id {}: ClawPair's gateway runs no agents, so no command waits here",
            sanitize(id)
        ),
    )
    .with_details(json!({ "reason": "unknown" })))
}

fn node_report(_: &Service, _: &Caller, _: Value) -> Result<Value, RpcError> {
    Ok(json!({ "ok": true }))
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
pub fn sees_events<S: AsRef<str>>(scopes: &[S]) -> bool {
    scope_granted(scopes, SCOPE_PAIRING) || scope_granted(scopes, SCOPE_READ)
}

/// Whether an operator with these scopes receives this event.
pub fn event_visible<S: AsRef<str>>(scopes: &[S], event: &crate::events::Event) -> bool {
    scope_granted(scopes, event.required_scope())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{MAX_PROTOCOL, MIN_PROTOCOL};

    fn service() -> (tempfile::TempDir, Service) {
        crate::service::test_service(1_767_323_045_678)
    }

    fn bridge() -> Caller {
        Caller {
            role: Role::Operator,
            scopes: vec![Scope::parse(SCOPE_CHANNEL_INGEST).unwrap()],
            device_id: None,
            owner: false,
            via: "telegram".into(),
            listening: None,
        }
    }

    #[test]
    fn in_memory_answers_match_call_and_leave_disk_work_to_it() {
        let (_tmp, s) = service();
        s.allow_add("telegram", None, "alice", "test").unwrap();
        crate::store::fs::backdate_for_tests(s.paths().root());
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
            scopes: vec![Scope::parse(SCOPE_READ).unwrap()],
            ..bridge()
        };
        let e = call_in_memory(&s, &reader, "channel.inbound", &alice)
            .unwrap()
            .unwrap_err();
        assert_eq!(e.code, "FORBIDDEN");
        assert!(call_in_memory(&s, &bridge(), "pairing.list", &json!({})).is_none());
    }

    #[test]
    fn the_method_table_and_docs_protocol_md_list_the_same_methods() {
        let doc = include_str!("../../../docs/PROTOCOL.md");
        let section = doc
            .split("## Methods after hello-ok")
            .nth(1)
            .and_then(|s| s.split("\n## ").next())
            .expect("a methods section");
        let documented: Vec<(&str, &str)> = section
            .lines()
            .filter_map(|l| {
                let mut cells = l.strip_prefix("| `")?.split(" | ");
                let name = cells.next()?.strip_suffix('`')?;
                Some((name, cells.next()?))
            })
            .collect();
        let names: Vec<&str> = documented.iter().map(|(n, _)| *n).collect();
        let table: Vec<&str> = METHODS.iter().map(|m| m.name).collect();
        assert_eq!(
            names, table,
            "docs/PROTOCOL.md lists the table's methods, in order"
        );
        for (m, (_, needs)) in METHODS.iter().zip(&documented) {
            let want = match m.needs {
                Needs::Scope(s) => format!("`{s}`"),
                Needs::NodeRole => "role `node`".into(),
            };
            assert_eq!(*needs, want, "{}", m.name);
        }
        let ceilings: Vec<&str> = section
            .lines()
            .filter(|l| l.starts_with("| `"))
            .filter_map(|l| l.split(" | ").nth(2))
            .collect();
        for (m, ceiling) in METHODS.iter().zip(&ceilings) {
            assert_eq!(*ceiling, m.ceiling.in_words(), "{}", m.name);
        }
    }

    #[test]
    fn node_methods_are_offered_to_nodes_and_the_rest_to_operators() {
        let ops = method_names(Role::Operator, MAX_PROTOCOL);
        let nodes = method_names(Role::Node, MAX_PROTOCOL);
        assert!(ops.contains(&"device.pair.list") && !ops.contains(&"node.event"));
        assert!(nodes.contains(&"node.event") && !nodes.contains(&"device.pair.list"));
        assert_eq!(ops.len() + nodes.len(), METHODS.len());
    }

    #[test]
    fn every_method_exists_in_both_versions_served_as_the_docs_say() {
        for role in [Role::Operator, Role::Node] {
            assert_eq!(
                method_names(role, MIN_PROTOCOL),
                method_names(role, MAX_PROTOCOL)
            );
        }
        assert!(METHODS.iter().all(|m| m.versions == Versions::ALL));
        let doc = include_str!("../../../docs/PROTOCOL.md");
        assert!(
            doc.contains("Every method exists in protocol 3 and 4"),
            "docs/PROTOCOL.md says which versions the methods exist in"
        );
    }

    #[test]
    fn a_bridge_with_only_channel_ingest_gets_no_events() {
        assert!(!sees_events(&[SCOPE_CHANNEL_INGEST]));
        assert!(sees_events(&[SCOPE_READ]));
        assert!(sees_events(&[SCOPE_PAIRING]));
        assert!(sees_events(&[SCOPE_ADMIN]));
        assert!(sees_events(&["operator.write"]));
    }
}
