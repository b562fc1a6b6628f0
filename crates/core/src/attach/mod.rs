//! Companion mode: ClawPair as the approval desk of an OpenClaw gateway that already runs.
//! It runs no gateway of its own then and never writes OpenClaw's files; it talks to OpenClaw
//! over its protocol only ([`remote`]), as an operator, after finding it ([`discover`]).
//!
//! [`Backend`] is what the window, the tray and the notifications call: ClawPair's own core,
//! or the attached gateway for what lives there.
//!
//! OpenClaw's admin token never travels in clear over a network ([`transport`]): `wss://` with
//! a pinned certificate to any gateway not on loopback, plain `ws://` only to a loopback socket
//! this user or root owns ([`owner`]).

pub mod discover;
pub mod owner;
pub mod remote;
pub mod transport;

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use serde_json::Value;

use crate::owner::{Answer, OwnerRequest};
use crate::rpc::{self, Caller, RpcError};
use crate::service::Service;

/// The backend the desktop uses now (it changes when the owner attaches or detaches).
pub type SharedBackend = Arc<RwLock<Backend>>;

/// A copy of the current backend, to use without holding the lock.
pub fn current(b: &SharedBackend) -> Backend {
    match b.read() {
        Ok(g) => g.clone(),
        Err(p) => p.into_inner().clone(),
    }
}

/// What to attach to, from the settings (or `--attach URL`) and the OpenClaw installation
/// found on this computer. The token stays where it is: typed into ClawPair's settings, or
/// OpenClaw's own config, read at each connect. How it may travel is checked at each connect
/// too ([`transport::plan`]), so a refusal shows as the attachment's status.
pub fn target(
    settings: &crate::config::AttachSettings,
    url_override: Option<&str>,
) -> Result<remote::Target, String> {
    let found = discover::find();
    let url = url_override
        .filter(|u| !u.trim().is_empty())
        .map(|u| u.trim().to_string())
        .or_else(|| settings.url.clone().filter(|u| !u.trim().is_empty()))
        .or_else(|| found.as_ref().ok().map(|i| i.url.clone()))
        .ok_or_else(|| match &found {
            Err(e) => format!("{e}; give the gateway's URL to attach to it"),
            Ok(_) => "no gateway URL to attach to".to_string(),
        })?;
    let parsed = ws_url(&url)?;
    let loopback = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    // The installation found here is this gateway only when it listens where the URL points.
    let port = parsed.port_or_known_default();
    let local = found
        .as_ref()
        .ok()
        .filter(|i| loopback && url::Url::parse(&i.url).ok().and_then(|u| u.port()) == port);
    let token = match (&settings.token, &found) {
        (Some(t), _) if !t.trim().is_empty() => remote::TokenSource::Given(t.trim().to_string()),
        (_, Ok(i)) => remote::TokenSource::OpenClawConfig {
            state_dir: i.state_dir.clone(),
            config: i.config.clone(),
        },
        (_, Err(e)) => return Err(format!("{e}; type the gateway's token in Settings")),
    };
    Ok(remote::Target {
        label: if local.is_some() {
            THIS_COMPUTER.to_string()
        } else {
            default_label(&url)
        },
        url,
        token,
        tls_pin: settings
            .tls_fingerprint
            .clone()
            .filter(|p| !p.trim().is_empty()),
        local_state: local.map(|i| i.state_dir.clone()),
    })
}

/// The name of the OpenClaw installation found on this computer, where several are attached.
pub const THIS_COMPUTER: &str = "this computer";

fn ws_url(url: &str) -> Result<url::Url, String> {
    url::Url::parse(url)
        .ok()
        .filter(|u| matches!(u.scheme(), "ws" | "wss") && u.host().is_some())
        .ok_or_else(|| format!("{url:?} is not a ws:// or wss:// URL"))
}

/// A gateway's name when the owner gave it none: its host and port (`10.0.0.5:18789`).
pub fn default_label(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => match (u.host_str(), u.port_or_known_default()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            _ => url.to_string(),
        },
        Err(_) => url.to_string(),
    }
}

/// A gateway the settings name that cannot be attached to, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Unattached {
    pub label: String,
    /// Its URL, for one of `attach.gateways` (the owner may remove it).
    pub listed: Option<String>,
    pub why: String,
}

/// Everything to attach to: the gateway [`target`] names (a URL given, or the OpenClaw found
/// on this computer) and each of `attach.gateways`, in that order. Beside them, each gateway
/// that cannot be attached to, named, with why (nothing is left out silently, except the
/// installation on this computer when there is none and other gateways are listed).
pub fn targets(
    settings: &crate::config::AttachSettings,
    url_override: Option<&str>,
) -> (Vec<remote::Target>, Vec<Unattached>) {
    let (mut ok, mut problems) = (Vec::new(), Vec::new());
    let named = url_override.is_some_and(|u| !u.trim().is_empty())
        || settings
            .url
            .as_deref()
            .is_some_and(|u| !u.trim().is_empty());
    match target(settings, url_override) {
        Ok(t) => ok.push(t),
        Err(why) if named || settings.gateways.is_empty() => problems.push(Unattached {
            label: settings
                .url
                .as_deref()
                .map_or_else(|| THIS_COMPUTER.to_string(), default_label),
            listed: None,
            why,
        }),
        Err(_) => {}
    }
    for g in &settings.gateways {
        let why = match extra_target(g) {
            Ok(t) if ok.iter().any(|o: &remote::Target| o.url == t.url) => {
                format!("{} is listed twice", t.url)
            }
            Ok(t) => {
                ok.push(t);
                continue;
            }
            Err(e) => e,
        };
        problems.push(Unattached {
            label: gateway_label(g),
            listed: Some(g.url.clone()),
            why,
        });
    }
    (ok, problems)
}

fn gateway_label(g: &crate::config::AttachGateway) -> String {
    g.label
        .clone()
        .filter(|l| !l.trim().is_empty())
        .unwrap_or_else(|| default_label(&g.url))
}

/// One of `attach.gateways`: its own URL, token and pin (no OpenClaw config is read for it).
fn extra_target(g: &crate::config::AttachGateway) -> Result<remote::Target, String> {
    let url = g.url.trim().to_string();
    ws_url(&url)?;
    let token = g
        .token
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| format!("no token for {url}: remove it and add it again with its token"))?;
    Ok(remote::Target {
        label: gateway_label(g),
        url,
        token: remote::TokenSource::Given(token.to_string()),
        tls_pin: g.tls_fingerprint.clone().filter(|p| !p.trim().is_empty()),
        local_state: None,
    })
}

/// Adds a gateway to `attach.gateways`, refused with the reason when it cannot work: not a
/// `ws://`/`wss://` URL, a URL the token may not travel to ([`transport::check`]), no token,
/// or a URL or name already listed. The pin is kept in its normal form.
pub fn add_gateway(
    settings: &mut crate::config::AttachSettings,
    mut g: crate::config::AttachGateway,
) -> Result<(), String> {
    g.url = g.url.trim().to_string();
    ws_url(&g.url)?;
    g.tls_fingerprint =
        transport::check(Some(&g.url), g.tls_fingerprint.as_deref()).map_err(|e| e.to_string())?;
    g.token = g
        .token
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty());
    if g.token.is_none() {
        return Err(format!(
            "a token is needed for {}: OpenClaw's gateway.auth.token on that computer",
            g.url
        ));
    }
    g.label = g
        .label
        .map(|l| crate::sanitize::sanitize(l.trim()))
        .filter(|l| !l.is_empty());
    let label = gateway_label(&g);
    if settings.url.as_deref().map(str::trim) == Some(g.url.as_str()) {
        return Err(format!(
            "{} is already the gateway ClawPair attaches to",
            g.url
        ));
    }
    for other in &settings.gateways {
        if other.url.trim() == g.url {
            return Err(format!("{} is already listed", g.url));
        }
        if gateway_label(other) == label {
            return Err(format!(
                "another gateway is already named {label:?}: give this one another name"
            ));
        }
    }
    if label == THIS_COMPUTER {
        return Err(format!(
            "{THIS_COMPUTER:?} names the OpenClaw found here: give another name"
        ));
    }
    settings.gateways.push(g);
    Ok(())
}

/// Takes a gateway off `attach.gateways`, named by its URL or its name.
pub fn remove_gateway(
    settings: &mut crate::config::AttachSettings,
    which: &str,
) -> Result<crate::config::AttachGateway, String> {
    let which = which.trim();
    let at = settings
        .gateways
        .iter()
        .position(|g| g.url.trim() == which || gateway_label(g) == which)
        .ok_or_else(|| {
            format!(
                "no gateway {:?} is listed (see clawpair attach list)",
                crate::sanitize::sanitize(which)
            )
        })?;
    Ok(settings.gateways.remove(at))
}

/// Where the desktop's requests go.
#[derive(Clone)]
pub enum Backend {
    /// ClawPair's own gateway and files.
    Local(Arc<Service>),
    /// OpenClaw gateways, one or several; ClawPair's own service keeps its settings and
    /// activity log, and, with `own`, its own gateway's requests and devices beside theirs.
    Attached {
        service: Arc<Service>,
        remotes: Vec<Arc<remote::Remote>>,
        own: bool,
    },
}

/// The name of ClawPair's own gateway where it runs beside attached ones.
pub const OWN_GATEWAY: &str = "ClawPair";

impl Backend {
    pub fn service(&self) -> &Arc<Service> {
        match self {
            Backend::Local(s) => s,
            Backend::Attached { service, .. } => service,
        }
    }

    /// The attached gateways (none when ClawPair runs its own).
    pub fn remotes(&self) -> &[Arc<remote::Remote>] {
        match self {
            Backend::Local(_) => &[],
            Backend::Attached { remotes, .. } => remotes,
        }
    }

    pub fn is_attached(&self) -> bool {
        matches!(self, Backend::Attached { .. })
    }

    /// Whether ClawPair's own gateway's requests are in the queue beside attached ones.
    pub fn with_own(&self) -> bool {
        matches!(self, Backend::Attached { own: true, .. })
    }

    /// How many gateways the queue holds requests of.
    fn sources(&self) -> usize {
        match self {
            Backend::Local(_) => 1,
            Backend::Attached { remotes, own, .. } => remotes.len() + usize::from(*own),
        }
    }

    /// The name of the gateway a pending request or approval is at, where the queue holds
    /// several gateways' (for its notification); `None` with one gateway.
    pub fn gateway_of(&self, id: &str) -> Option<String> {
        if self.sources() < 2 {
            return None;
        }
        match self.remotes().iter().find(|r| r.knows(id)) {
            Some(r) => Some(r.label().to_string()),
            None => self.with_own().then(|| OWN_GATEWAY.to_string()),
        }
    }

    /// Where the attachment stands, in one line: the one gateway's status, or how many of
    /// several are attached and what is wrong with the others.
    pub fn status_line(&self) -> Option<String> {
        let remotes = self.remotes();
        match remotes {
            [] => None,
            [one] => Some(one.status().line()),
            all => {
                let down: Vec<String> = all
                    .iter()
                    .filter(|r| !matches!(r.status(), remote::Status::Attached { .. }))
                    .map(|r| r.label().to_string())
                    .collect();
                Some(if down.is_empty() {
                    format!("Attached to {} OpenClaw gateways", all.len())
                } else {
                    format!(
                        "Attached to {} of {} OpenClaw gateways (not to {})",
                        all.len() - down.len(),
                        all.len(),
                        down.join(", ")
                    )
                })
            }
        }
    }

    /// One of the owner's actions, its answer read as the type the action answers
    /// ([`OwnerRequest::answer_kind`]).
    pub async fn ask<A: Answer>(&self, via: &str, req: &OwnerRequest) -> Result<A, RpcError> {
        A::read(req, self.call(via, None, req).await?)
    }

    /// One of the owner's actions at this computer (`via` says where: `window`,
    /// `notification`, `tray`; `listening`: where ClawPair's own gateway listens, for setup
    /// URLs). File work runs off the async runtime's workers.
    pub async fn call(
        &self,
        via: &str,
        listening: Option<SocketAddr>,
        req: &OwnerRequest,
    ) -> Result<Value, RpcError> {
        self.call_at(None, via, listening, req).await
    }

    /// [`Backend::call`] on the attached gateway named `gateway` (its label), where the
    /// request alone does not say which (a device paired with several, a setup code).
    pub async fn call_at(
        &self,
        gateway: Option<&str>,
        via: &str,
        listening: Option<SocketAddr>,
        req: &OwnerRequest,
    ) -> Result<Value, RpcError> {
        if let Backend::Attached {
            service,
            remotes,
            own,
        } = self
        {
            if let Some(answer) = self
                .attached(remotes, *own, gateway, listening, via, req)
                .await
            {
                // Decisions taken here on OpenClaw's data are in ClawPair's activity log too.
                if let Ok((Some(remote), _)) = &answer {
                    if !req.reads_only() {
                        let mut details = serde_json::Map::new();
                        details.insert("method".into(), req.method().into());
                        details.insert("gateway".into(), remote.url().into());
                        // What was decided (ids, decisions; an owner action carries no secret).
                        details.insert("params".into(), req.params());
                        let s = service.clone();
                        let via = via.to_string();
                        let _ = tokio::task::spawn_blocking(move || {
                            s.audit("openclaw.call", &via, details)
                        })
                        .await;
                    }
                }
                return answer.map(|(_, v)| v);
            }
        }
        let own = self.own_call(via, listening, req).await?;
        match req {
            // Attached, the activity has OpenClaw's decided approvals in it too (decided from
            // ClawPair or anywhere else); without a gateway's when it cannot be asked.
            OwnerRequest::AuditTail { limit } if self.is_attached() => {
                let asked = self.remotes().iter().map(|r| r.decided_approvals(*limit));
                let theirs = futures_util::future::join_all(asked).await;
                Ok(with_entries(
                    own,
                    theirs.into_iter().flatten().flatten().collect(),
                    *limit,
                ))
            }
            _ => Ok(own),
        }
    }

    /// One of the owner's actions on ClawPair's own service (off the async runtime's workers).
    async fn own_call(
        &self,
        via: &str,
        listening: Option<SocketAddr>,
        req: &OwnerRequest,
    ) -> Result<Value, RpcError> {
        let (s, via) = (self.service().clone(), via.to_string());
        let (m, params) = (req.method(), req.params());
        tokio::task::spawn_blocking(move || {
            rpc::call(&s, &Caller::owner(&via, listening), m, params)
        })
        .await
        .unwrap_or_else(|_| {
            Err(RpcError::new(
                crate::protocol::Code::Unavailable,
                "the request failed inside ClawPair",
            ))
        })
    }

    /// An action on the attached gateways (and ClawPair's own, with `own`): a list from each
    /// of them in one, each item with its gateway's name where there are several; a decision
    /// on the one gateway that holds what it names. With the attached gateway that decided
    /// (for the activity log; `None` for ClawPair's own); `None` for what ClawPair keeps
    /// itself alone (its activity log, its admin token).
    #[allow(clippy::type_complexity)]
    async fn attached(
        &self,
        remotes: &[Arc<remote::Remote>],
        own: bool,
        gateway: Option<&str>,
        listening: Option<SocketAddr>,
        via: &str,
        req: &OwnerRequest,
    ) -> Option<Result<(Option<Arc<remote::Remote>>, Value), RpcError>> {
        if let ([one], false) = (remotes, own) {
            let answer = one.answer(req).await?;
            return Some(answer.map(|v| (Some(one.clone()), v)));
        }
        // ClawPair's own, for what only it keeps; or named; or where no attached gateway
        // holds what a decision names.
        let ours = || async {
            let answer = self.own_call(via, listening, req).await;
            Some(answer.map(|v| (None, labelled(v, OWN_GATEWAY))))
        };
        // What OpenClaw's protocol cannot do (allowlist edits, invalidating setup codes,
        // clearing devices) is ClawPair's own gateway's to do.
        let only_ours = matches!(
            req,
            OwnerRequest::AllowAdd { .. }
                | OwnerRequest::AllowRemove { .. }
                | OwnerRequest::SetupCleanup {}
                | OwnerRequest::DeviceClear { .. }
        );
        if own && (gateway == Some(OWN_GATEWAY) || (gateway.is_none() && only_ours)) {
            return ours().await;
        }
        if let Some(name) = gateway {
            let Some(r) = remotes
                .iter()
                .find(|r| r.label() == name || r.url() == name)
            else {
                return Some(Err(RpcError::new(
                    crate::protocol::Code::NotFound,
                    format!(
                        "no attached gateway is named {:?}",
                        crate::sanitize::sanitize(name)
                    ),
                )));
            };
            let answer = r.answer(req).await?;
            return Some(answer.map(|v| (Some(r.clone()), labelled(v, r.label()))));
        }
        if req.reads_only() {
            let asked = remotes.iter().map(|r| async move {
                r.answer(req)
                    .await
                    .map(|a| a.map(|v| labelled(v, r.label())))
            });
            let mut answers: Vec<_> = futures_util::future::join_all(asked)
                .await
                .into_iter()
                .collect::<Option<_>>()?;
            if own {
                let theirs = self.own_call(via, listening, req).await;
                answers.insert(0, theirs.map(|v| labelled(v, OWN_GATEWAY)));
            }
            return Some(merged(answers).map(|v| (None, v)));
        }
        match route(remotes, req).await {
            Ok(r) => {
                let answer = r.answer(req).await?;
                Some(answer.map(|v| (Some(r.clone()), v)))
            }
            Err(e) if own && e.code == "NOT_FOUND" => ours().await,
            Err(e) => Some(Err(e)),
        }
    }
}

/// The one attached gateway a decision belongs to: the one that holds the request it names,
/// the one the device named is paired with, or, for a setup code, the first attached.
async fn route<'a>(
    remotes: &'a [Arc<remote::Remote>],
    req: &OwnerRequest,
) -> Result<&'a Arc<remote::Remote>, RpcError> {
    use crate::protocol::Code;
    let not_found = |what: String| RpcError::new(Code::NotFound, what);
    match req {
        OwnerRequest::DeviceApprove { request_id, .. }
        | OwnerRequest::DeviceReject { request_id }
        | OwnerRequest::NodeApprove { request_id }
        | OwnerRequest::NodeReject { request_id }
        | OwnerRequest::ExecResolve { id: request_id, .. }
        | OwnerRequest::DmApprove {
            code: request_id, ..
        }
        | OwnerRequest::DmReject {
            code: request_id, ..
        } => remotes.iter().find(|r| r.knows(request_id)).ok_or_else(|| {
            not_found(format!(
                "no attached gateway has a pending request {}",
                crate::sanitize::sanitize(request_id)
            ))
            .with_details(serde_json::json!({ "reason": "unknown" }))
        }),
        OwnerRequest::DeviceRemove { device_id }
        | OwnerRequest::DeviceRename { device_id, .. }
        | OwnerRequest::TokenRotate { device_id, .. }
        | OwnerRequest::TokenRevoke { device_id, .. } => {
            let lists = remotes.iter().map(|r| async move {
                let has = r
                    .answer(&OwnerRequest::DeviceList {})
                    .await
                    .and_then(Result::ok)
                    .and_then(|v| serde_json::from_value::<crate::service::DeviceList>(v).ok())
                    .is_some_and(|l| l.paired.iter().any(|d| &d.device_id == device_id));
                has.then_some(r)
            });
            let holders: Vec<&Arc<remote::Remote>> = futures_util::future::join_all(lists)
                .await
                .into_iter()
                .flatten()
                .collect();
            match holders.as_slice() {
                [one] => Ok(*one),
                [] => Err(not_found(format!(
                    "no attached gateway has a paired device {}",
                    crate::sanitize::sanitize(device_id)
                ))),
                several => Err(RpcError::new(
                    Code::InvalidRequest,
                    format!(
                        "the device is paired with {}: say which gateway",
                        several
                            .iter()
                            .map(|r| r.label())
                            .collect::<Vec<_>>()
                            .join(" and ")
                    ),
                )),
            }
        }
        _ => Ok(remotes
            .iter()
            .find(|r| matches!(r.status(), remote::Status::Attached { .. }))
            .unwrap_or(&remotes[0])),
    }
}

/// Each item of a list answer (an array, or the arrays in an object) with the name of the
/// gateway it came from, as `gateway`.
fn labelled(mut v: Value, label: &str) -> Value {
    fn each(list: &mut Value, label: &str) {
        for item in list.as_array_mut().into_iter().flatten() {
            if let Some(o) = item.as_object_mut() {
                o.insert("gateway".into(), label.into());
            }
        }
    }
    match &mut v {
        Value::Array(_) => each(&mut v, label),
        Value::Object(o) => o.values_mut().for_each(|x| each(x, label)),
        _ => {}
    }
    v
}

/// Several gateways' answers to one list as one: their arrays joined (at the top, or under
/// each key), anything else as the first gave it. A gateway that could not answer is left
/// out (its status says why); when none could, the first one's error.
fn merged(answers: Vec<Result<Value, RpcError>>) -> Result<Value, RpcError> {
    let mut first_error = None;
    let mut out: Option<Value> = None;
    for a in answers {
        let v = match a {
            Ok(v) => v,
            Err(e) => {
                first_error.get_or_insert(e);
                continue;
            }
        };
        match (&mut out, v) {
            (None, v) => out = Some(v),
            (Some(Value::Array(all)), Value::Array(more)) => all.extend(more),
            (Some(Value::Object(all)), Value::Object(more)) => {
                for (k, x) in more {
                    match (all.get_mut(&k), x) {
                        (Some(Value::Array(a)), Value::Array(b)) => a.extend(b),
                        (None, x) => {
                            all.insert(k, x);
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    match (out, first_error) {
        (Some(v), _) => Ok(v),
        (None, Some(e)) => Err(e),
        (None, None) => Ok(Value::Null),
    }
}

/// An `audit.tail` answer with `more` entries merged in, in time order, the last `limit` kept.
fn with_entries(
    mut answer: Value,
    more: Vec<crate::store::audit::AuditEntry>,
    limit: usize,
) -> Value {
    let mut all: Vec<crate::store::audit::AuditEntry> =
        serde_json::from_value(answer["entries"].take()).unwrap_or_default();
    all.extend(more);
    all.sort_by_key(|e| e.ts_ms);
    let skip = all.len().saturating_sub(limit);
    answer["entries"] = serde_json::to_value(&all[skip..]).unwrap_or_default();
    answer
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AttachGateway, AttachSettings};
    use serde_json::json;

    fn gw(url: &str, token: Option<&str>, pin: Option<&str>, label: Option<&str>) -> AttachGateway {
        AttachGateway {
            url: url.into(),
            token: token.map(String::from),
            tls_fingerprint: pin.map(String::from),
            label: label.map(String::from),
            ..Default::default()
        }
    }

    const PIN: &str = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89";

    #[test]
    fn a_gateway_is_added_only_when_its_token_may_travel_and_it_is_not_listed() {
        let mut a = AttachSettings {
            url: Some("ws://127.0.0.1:18789".into()),
            ..Default::default()
        };
        let refused = |a: &mut AttachSettings, g: AttachGateway| add_gateway(a, g).unwrap_err();
        assert!(
            refused(&mut a, gw("http://10.0.0.5", Some("t"), None, None)).contains("not a ws://")
        );
        assert!(
            refused(&mut a, gw("ws://10.0.0.5:18789", Some("t"), None, None)).contains("10.0.0.5")
        );
        assert!(
            refused(&mut a, gw("wss://10.0.0.5:18789", Some("t"), None, None)).contains("10.0.0.5")
        );
        assert!(
            refused(&mut a, gw("wss://10.0.0.5:18789", None, Some(PIN), None)).contains("token")
        );
        assert!(refused(
            &mut a,
            gw("wss://10.0.0.5:18789", Some("  "), Some(PIN), None)
        )
        .contains("token"));
        assert!(
            refused(&mut a, gw(" ws://127.0.0.1:18789 ", Some("t"), None, None))
                .contains("already")
        );
        assert!(a.gateways.is_empty(), "nothing refused was kept");

        add_gateway(
            &mut a,
            gw(
                " wss://10.0.0.5:18789 ",
                Some(" t1 "),
                Some(PIN),
                Some(" home "),
            ),
        )
        .unwrap();
        let g = &a.gateways[0];
        assert_eq!(g.url, "wss://10.0.0.5:18789");
        assert_eq!(g.token.as_deref(), Some("t1"));
        assert_eq!(g.label.as_deref(), Some("home"));
        assert_eq!(
            g.tls_fingerprint,
            transport::check(Some(&g.url), Some(PIN)).unwrap(),
            "the pin in its normal form"
        );
        assert!(refused(
            &mut a,
            gw("wss://10.0.0.5:18789", Some("t"), Some(PIN), None)
        )
        .contains("already listed"));
        assert!(refused(
            &mut a,
            gw("ws://127.0.0.1:18790", Some("t"), None, Some("home"))
        )
        .contains("named"));
        assert!(refused(
            &mut a,
            gw("ws://127.0.0.1:18790", Some("t"), None, Some(THIS_COMPUTER))
        )
        .contains("another name"));
        add_gateway(&mut a, gw("ws://127.0.0.1:18790", Some("t2"), None, None)).unwrap();
        assert_eq!(a.gateways.len(), 2);

        // Removed by name or by URL; an unknown one is refused, naming it.
        assert!(remove_gateway(&mut a, "nowhere")
            .unwrap_err()
            .contains("nowhere"));
        assert_eq!(
            remove_gateway(&mut a, "home").unwrap().url,
            "wss://10.0.0.5:18789"
        );
        assert_eq!(
            remove_gateway(&mut a, "ws://127.0.0.1:18790")
                .unwrap()
                .token
                .as_deref(),
            Some("t2")
        );
        assert!(a.gateways.is_empty());
    }

    #[test]
    fn every_listed_gateway_is_a_target_with_its_name_or_a_problem_with_why() {
        // Not on loopback, so the same whether OpenClaw is installed here or not.
        let a = AttachSettings {
            enabled: true,
            url: Some("wss://10.0.0.9:18789".into()),
            token: Some("t0".into()),
            tls_fingerprint: Some(PIN.into()),
            gateways: vec![
                gw("wss://10.0.0.5:18789", Some("t1"), Some(PIN), Some("home")),
                gw("ws://127.0.0.1:18790", Some("t2"), None, None),
                gw("wss://10.0.0.6:18789", None, Some(PIN), None),
                gw("wss://10.0.0.9:18789", Some("t3"), Some(PIN), None),
            ],
            own_gateway: false,
        };
        let (ok, problems) = targets(&a, None);
        let names: Vec<(&str, &str)> = ok
            .iter()
            .map(|t| (t.label.as_str(), t.url.as_str()))
            .collect();
        assert_eq!(
            names,
            vec![
                ("10.0.0.9:18789", "wss://10.0.0.9:18789"),
                ("home", "wss://10.0.0.5:18789"),
                ("127.0.0.1:18790", "ws://127.0.0.1:18790"),
            ]
        );
        assert!(ok[1].tls_pin.is_some() && ok[1].local_state.is_none());
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!(problems[0].label, "10.0.0.6:18789");
        assert!(problems[0].why.contains("no token"));
        assert!(problems[1].why.contains("twice"));
    }

    #[test]
    fn lists_from_several_gateways_are_one_with_each_item_named_by_its_gateway() {
        let a = labelled(
            json!({ "pending": [{ "requestId": "r1" }], "paired": [] }),
            "home",
        );
        let b = labelled(
            json!({ "pending": [{ "requestId": "r2" }], "paired": [{ "deviceId": "d" }] }),
            "work",
        );
        let m = merged(vec![
            Ok(a),
            Err(RpcError::new(crate::protocol::Code::Unavailable, "down")),
            Ok(b),
        ])
        .unwrap();
        assert_eq!(
            m,
            json!({ "pending": [{ "requestId": "r1", "gateway": "home" }, { "requestId": "r2", "gateway": "work" }],
                    "paired": [{ "deviceId": "d", "gateway": "work" }] })
        );
        let arrays = merged(vec![
            Ok(labelled(json!([{ "id": "x" }]), "home")),
            Ok(json!([{ "id": "y" }])),
        ])
        .unwrap();
        assert_eq!(
            arrays,
            json!([{ "id": "x", "gateway": "home" }, { "id": "y" }])
        );
        let down = merged(vec![
            Err(RpcError::new(
                crate::protocol::Code::Unavailable,
                "first down",
            )),
            Err(RpcError::new(
                crate::protocol::Code::Unavailable,
                "second down",
            )),
        ])
        .unwrap_err();
        assert_eq!(down.message, "first down");
    }

    #[test]
    fn a_gateway_without_a_name_is_named_by_its_host_and_port() {
        assert_eq!(default_label("wss://gw.example:443/x"), "gw.example:443");
        assert_eq!(default_label("wss://gw.example/x"), "gw.example:443");
        assert_eq!(default_label("ws://[::1]:18789"), "[::1]:18789");
        assert_eq!(default_label("not a url"), "not a url");
    }
}
