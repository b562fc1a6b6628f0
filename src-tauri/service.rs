//! The core every edge calls: the CLI (on files), the gateway (for sockets and channel
//! bridges) and the tray app. Each operation validates input, changes the store under its lock,
//! writes the audit log, and publishes an [`Event`]. No Tauri, no sockets here.

pub mod watch;

use std::net::SocketAddr;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::clock::{iso_from_ms, Clock, Millis};
use crate::config::{self, Settings};
use crate::events::{DmRequestView, Event, EventBus};
use crate::pairing::device::{PairedDevice, PendingDevice, Reconciled};
use crate::pairing::dm::{self, Decision, DmRequest, Reason, SenderFacts, Upsert};
use crate::pairing::setup::{self, SetupPayload};
use crate::protocol::{Code, DeviceChange, Resolution, SetupChange};
use crate::sanitize::sanitize;
use crate::store::audit::{self, AuditEntry};
use crate::store::devices::{DeviceStore, DeviceStoreError};
use crate::store::dm::{stored_account, DmStore, DmStoreError, IgnoredFile};
use crate::store::fs::JsonCache;
use crate::store::{AccountId, ChannelName, InvalidName, StatePaths, StoreError};

/// Why an operation was refused; each maps to one wire error code.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    Invalid(String),
    #[error("{what} {id} not found ({reason})")]
    NotFound {
        what: &'static str,
        id: String,
        reason: String,
    },
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    QueueFull(String),
    /// A stored request names a channel or account that may not become a path; it stays
    /// listed and unapproved until its file is corrected or it is rejected.
    #[error("{0}")]
    InvalidStoredName(String),
    #[error(transparent)]
    Store(StoreError),
}

impl ServiceError {
    /// The protocol's error code for this refusal.
    pub fn code(&self) -> Code {
        match self {
            ServiceError::Invalid(_) | ServiceError::InvalidStoredName(_) => Code::InvalidRequest,
            ServiceError::NotFound { .. } => Code::NotFound,
            ServiceError::Refused(_) => Code::Forbidden,
            ServiceError::QueueFull(_) => Code::PairingQueueFull,
            ServiceError::Store(_) => Code::Unavailable,
        }
    }
}

pub type ServiceResult<T> = Result<T, ServiceError>;

/// An inbound direct message from a channel bridge.
#[derive(Debug, Clone, Default)]
pub struct InboundDm {
    pub channel: String,
    pub account: Option<String>,
    pub sender: String,
    pub text: Option<String>,
    pub meta: Map<String, Value>,
    pub is_group: bool,
}

/// An allowed sender as listed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AllowView {
    pub channel: String,
    pub account_id: String,
    pub sender_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approved_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approved_via: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_message_at: Option<String>,
}

/// An approved DM request.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DmApproved {
    pub channel: String,
    pub account_id: String,
    pub sender_id: String,
    pub code: String,
}

/// A pending device request as listed (with its expiry).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingDeviceView {
    #[serde(flatten)]
    pub request: PendingDevice,
    /// The name to show: the device's own, else its client id, else its short id.
    pub name: String,
    /// What approving it means, in words ("new device", "asks for more scopes", …).
    pub kind: String,
    /// OpenClaw's list of the roles asked for (one, here).
    pub roles: Vec<String>,
    /// OpenClaw's flag for requests approved without a prompt; never, here.
    pub silent: bool,
    pub expires_at_ms: Millis,
}

/// A role's token as listed: everything but the hash.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenView {
    pub role: String,
    pub scopes: Vec<String>,
    pub created_at_ms: Millis,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotated_at_ms: Option<Millis>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at_ms: Option<Millis>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at_ms: Option<Millis>,
}

/// A paired device as listed: no token material, ever.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PairedDeviceView {
    pub device_id: String,
    /// The name to show: the owner's label, else the device's own name, else its client id,
    /// else its short id.
    pub name: String,
    pub public_key: String,
    pub display_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator_label: Option<String>,
    pub platform: String,
    pub device_family: String,
    pub client_id: String,
    pub client_mode: String,
    /// The first role approved (OpenClaw's `role`); `roles` has them all.
    pub role: String,
    pub roles: Vec<String>,
    /// Every scope approved, as OpenClaw lists it; `approvedScopes` is the same set.
    pub scopes: Vec<String>,
    pub approved_scopes: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub withheld_scopes: Vec<String>,
    /// Not seen for longer than `devices.staleAfterDays` (false when that is off).
    pub stale: bool,
    pub remote_ip: String,
    pub fingerprint: String,
    pub created_at_ms: Millis,
    pub approved_at_ms: Millis,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seen_at_ms: Option<Millis>,
    pub tokens: Vec<TokenView>,
}

impl From<&PairedDevice> for PairedDeviceView {
    fn from(d: &PairedDevice) -> Self {
        PairedDeviceView {
            device_id: d.device_id.clone(),
            name: d.shown_name(),
            public_key: d.public_key.clone(),
            display_name: sanitize(&d.display_name),
            operator_label: d.operator_label.as_deref().map(sanitize),
            platform: sanitize(&d.platform),
            device_family: sanitize(&d.device_family),
            client_id: sanitize(&d.client_id),
            client_mode: sanitize(&d.client_mode),
            role: d.roles.first().cloned().unwrap_or_default(),
            roles: d.roles.clone(),
            scopes: d.approved_scopes.clone(),
            approved_scopes: d.approved_scopes.clone(),
            withheld_scopes: d.withheld_scopes.clone(),
            stale: false,
            remote_ip: sanitize(&d.remote_ip),
            fingerprint: d.fingerprint.clone(),
            created_at_ms: d.created_at_ms,
            approved_at_ms: d.approved_at_ms,
            last_seen_at_ms: d.last_seen_at_ms,
            tokens: d
                .tokens
                .iter()
                .map(|(role, t)| TokenView {
                    role: role.clone(),
                    scopes: t.scopes.clone(),
                    created_at_ms: t.created_at_ms,
                    rotated_at_ms: t.rotated_at_ms,
                    revoked_at_ms: t.revoked_at_ms,
                    last_used_at_ms: t.last_used_at_ms,
                })
                .collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceList {
    pub pending: Vec<PendingDeviceView>,
    pub paired: Vec<PairedDeviceView>,
}

/// A new setup code (shown once: it carries the bootstrap token, so `Debug` hides it).
#[derive(Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SetupCode {
    pub setup_code: String,
    pub url: String,
    pub expires_at_ms: Millis,
}

impl std::fmt::Debug for SetupCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetupCode")
            .field("setup_code", &"<hidden>")
            .field("url", &self.url)
            .field("expires_at_ms", &self.expires_at_ms)
            .finish()
    }
}

/// What a new device connecting asks for (from `connect`), before sanitising.
#[derive(Debug, Clone, Default)]
pub struct DeviceAsk {
    pub device_id: String,
    pub public_key: String,
    pub fingerprint: String,
    pub display_name: String,
    pub platform: String,
    pub device_family: String,
    pub client_id: String,
    pub client_mode: String,
    pub role: String,
    pub scopes: Vec<String>,
    pub remote_ip: String,
    pub reason: String,
    pub is_repair: bool,
    /// The role's token was revoked (approving gives back access the device lost).
    pub regains: bool,
}

/// The core of one state directory.
pub struct Service {
    paths: StatePaths,
    clock: Arc<dyn Clock>,
    settings: JsonCache<Settings>,
    pub dm: DmStore,
    pub devices: DeviceStore,
    events: EventBus,
    /// The state watcher, while anyone holds it ([`Service::watch_state`]).
    watching: std::sync::Mutex<std::sync::Weak<crate::service::watch::StateWatch>>,
}

/// Maps a DM-store error to the service's (and so the wire's) error.
pub fn dm_err(e: DmStoreError) -> ServiceError {
    match e {
        DmStoreError::Store(s) => ServiceError::Store(s),
        DmStoreError::Name(n) => ServiceError::Invalid(n.to_string()),
        DmStoreError::BadSender => ServiceError::Invalid(e.to_string()),
        DmStoreError::StoredName { .. } => ServiceError::InvalidStoredName(e.to_string()),
    }
}

/// Maps a refused name (from a caller) to the service's error.
fn bad_name(e: InvalidName) -> ServiceError {
    ServiceError::Invalid(e.to_string())
}

fn channel_name(channel: &str) -> ServiceResult<ChannelName> {
    ChannelName::parse(channel).map_err(bad_name)
}

/// An account a caller named, if any.
fn account_id(account: Option<&str>) -> ServiceResult<Option<AccountId>> {
    account.map(AccountId::parse).transpose().map_err(bad_name)
}

/// Maps a device-store error to the service's (and so the wire's) error.
pub fn dev_err(e: DeviceStoreError) -> ServiceError {
    match e {
        DeviceStoreError::Store(s) => ServiceError::Store(s),
        DeviceStoreError::QueueFull(q) => ServiceError::QueueFull(q.to_string()),
        DeviceStoreError::NotFound { what, id, reason } => ServiceError::NotFound {
            what,
            id,
            reason: reason.into(),
        },
        DeviceStoreError::UnknownRole { .. } | DeviceStoreError::TokenExists { .. } => {
            ServiceError::Invalid(e.to_string())
        }
        DeviceStoreError::Bootstrap(b) => ServiceError::Refused(b.to_string()),
    }
}

fn obj(pairs: &[(&str, Value)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// Keeps requester metadata small and safe: string values only, sanitised, short keys.
pub fn clean_meta(meta: &Map<String, Value>) -> Map<String, Value> {
    meta.iter()
        .filter(|(k, _)| {
            !k.is_empty()
                && k.len() <= 32
                && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        })
        .filter_map(|(k, v)| {
            let text = match v {
                Value::String(s) => sanitize(s),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => return None,
            };
            (!text.is_empty()).then(|| (k.clone(), Value::String(text)))
        })
        .take(16)
        .collect()
}

fn check_role(role: &str) -> ServiceResult<()> {
    if crate::pairing::device::is_known_role(role) {
        Ok(())
    } else {
        Err(ServiceError::Invalid(format!(
            "unknown role {:?}: use operator or node",
            sanitize(role)
        )))
    }
}

/// The channel and account of an inbound DM (the default account when none), once both names
/// and the sender passed their checks.
fn dm_names(m: &InboundDm) -> ServiceResult<(ChannelName, AccountId)> {
    let channel = channel_name(&m.channel)?;
    let account = AccountId::parse_or_default(m.account.as_deref()).map_err(bad_name)?;
    crate::store::dm::check_sender(&m.sender).map_err(dm_err)?;
    Ok((channel, account))
}

/// What the DM rule needs to know about a sender, from the settings and the stored allowlist.
fn sender_facts(settings: &Settings, m: &InboundDm, in_stored_allowlist: bool) -> SenderFacts {
    let ch = settings.channel(&m.channel);
    let listed = |list: Option<&Vec<String>>| {
        list.is_some_and(|l| l.iter().any(|s| s == &m.sender && s != "*"))
    };
    SenderFacts {
        policy: settings.dm_policy(&m.channel),
        is_group: m.is_group,
        is_owner: listed(ch.map(|c| &c.owners)),
        in_config_allow_from: listed(ch.map(|c| &c.allow_from)),
        in_stored_allowlist,
    }
}

pub use crate::net::lan_addresses;

impl Service {
    /// Opens a state directory, writing default settings on first run. Returns whether this
    /// run created the settings file.
    pub fn open(paths: StatePaths, clock: Arc<dyn Clock>) -> ServiceResult<(Service, bool)> {
        let (_, created) = config::load_or_init(&paths, &*clock).map_err(ServiceError::Store)?;
        let s = Service {
            dm: DmStore::new(paths.clone(), clock.clone()),
            devices: DeviceStore::new(paths.clone(), clock.clone()),
            paths,
            clock,
            settings: JsonCache::default(),
            events: EventBus::default(),
            watching: Default::default(),
        };
        Ok((s, created))
    }

    pub fn paths(&self) -> &StatePaths {
        &self.paths
    }
    pub fn clock(&self) -> &dyn Clock {
        &*self.clock
    }
    pub fn now_ms(&self) -> Millis {
        self.clock.now_ms()
    }
    pub fn events(&self) -> &EventBus {
        &self.events
    }

    /// Publishes what other processes change in the state directory on this service's bus
    /// (see [`watch`]), for as long as the returned handle (or another one) is held:
    /// the gateway and the app share one watch.
    pub fn watch_state(self: &Arc<Self>) -> Result<Arc<crate::service::watch::StateWatch>, String> {
        let mut slot = self
            .watching
            .lock()
            .map_err(|_| "the state watcher's slot is poisoned".to_string())?;
        if let Some(w) = slot.upgrade() {
            return Ok(w);
        }
        let w = Arc::new(crate::service::watch::start(self)?);
        *slot = Arc::downgrade(&w);
        Ok(w)
    }

    /// Current settings (re-read when the file changes). A corrupt file is moved aside and
    /// reported; defaults apply then, with no admin token: fail closed.
    pub fn settings(&self) -> Arc<Settings> {
        match self.settings.get(&self.paths.settings(), &*self.clock) {
            Ok(s) => s,
            Err(e) => {
                self.report(&e);
                Arc::new(Settings::default())
            }
        }
    }

    /// Current settings from the cache alone: `None` when the file changed since it was last
    /// read, so the caller must use [`Service::settings`] off the async runtime.
    pub fn settings_cached(&self) -> Option<Arc<Settings>> {
        self.settings.peek(&self.paths.settings())
    }

    /// Current settings without stalling an async runtime's worker: from memory while the
    /// file is unchanged, else read (and, if corrupt, moved aside) on a blocking thread.
    pub async fn settings_off_thread(self: &Arc<Self>) -> Arc<Settings> {
        if let Some(s) = self.settings_cached() {
            return s;
        }
        let service = self.clone();
        tokio::task::spawn_blocking(move || service.settings())
            .await
            .unwrap_or_default()
    }

    /// Edits settings under the file's lock; the new values must validate.
    pub fn update_settings<R>(
        &self,
        via: &str,
        change: impl FnOnce(&mut Settings) -> Result<R, String>,
    ) -> ServiceResult<R> {
        let r = config::update(&self.paths, &*self.clock, change).map_err(ServiceError::Invalid)?;
        self.audit("settings.changed", via, Map::new());
        self.events.publish(Event::SettingsChanged {});
        Ok(r)
    }

    /// Reports a corrupt state file (already moved aside): logged, audited and published.
    /// Other store errors are left to the caller.
    pub fn report(&self, e: &StoreError) {
        if let StoreError::Corrupt {
            path,
            moved_to,
            reason,
        } = e
        {
            tracing::error!("{e}");
            let file = path.display().to_string();
            let moved = moved_to.display().to_string();
            self.audit(
                "store.corrupt",
                "store",
                obj(&[
                    ("file", file.clone().into()),
                    ("movedTo", moved.clone().into()),
                    ("reason", reason.clone().into()),
                ]),
            );
            self.events.publish(Event::StoreCorrupt {
                file,
                moved_to: moved,
                reason: reason.clone(),
            });
        }
    }

    fn check<T>(&self, r: ServiceResult<T>) -> ServiceResult<T> {
        if let Err(ServiceError::Store(e)) = &r {
            self.report(e);
        }
        r
    }

    /// Appends to the audit log and tells subscribers. Failing to log never undoes the action;
    /// it is reported on stderr.
    pub fn audit(&self, action: &str, via: &str, details: Map<String, Value>) {
        let entry = AuditEntry::new(self.now_ms(), action, via, details);
        if let Err(e) = audit::append(&self.paths.audit_log(), &entry) {
            tracing::warn!("could not write the audit log: {e}");
        }
        self.events.publish(Event::AuditAppended(entry));
    }

    pub fn audit_tail(&self, limit: usize) -> ServiceResult<Vec<AuditEntry>> {
        audit::tail(&self.paths.audit_log(), limit.clamp(1, 10_000)).map_err(ServiceError::Store)
    }

    // ---------------------------------------------------------------- DM pairing

    fn view(&self, channel: &ChannelName, r: &DmRequest, ttl_ms: Millis) -> DmRequestView {
        DmRequestView {
            channel: channel.to_string(),
            account_id: sanitize(r.account()),
            invalid_name: stored_account(r).is_err(),
            id: sanitize(&r.id),
            code: r.code.clone(),
            created_at: r.created_at.clone(),
            last_seen_at: r.last_seen_at.clone(),
            expires_at: r.expires_ms(ttl_ms).map(iso_from_ms).unwrap_or_default(),
            meta: clean_meta(&r.meta),
        }
    }

    fn publish_expired_dm(&self, channel: &ChannelName, expired: &[DmRequest]) {
        for r in expired {
            self.events.publish(Event::PairingResolved {
                channel: channel.to_string(),
                account_id: sanitize(r.account()),
                sender_id: r.id.clone(),
                code: r.code.clone(),
                decision: Resolution::Expired,
                notify: false,
            });
        }
    }

    /// Decides what happens to one inbound DM: allow (published as `chat.message`),
    /// challenge (the reply to send carries a new code), or drop — with a reason.
    pub fn dm_inbound(&self, m: &InboundDm) -> ServiceResult<Decision> {
        let (channel, account) = dm_names(m)?;
        let settings = self.settings();
        let in_stored_allowlist = settings.dm_policy(&m.channel) == dm::DmPolicy::Pairing
            && self.check(
                self.dm
                    .is_allowed(&channel, &account, &m.sender)
                    .map_err(dm_err),
            )?;
        let decision = match dm::gate(sender_facts(&settings, m, in_stored_allowlist)) {
            Some(d) => d,
            None if settings.ui.paused => Decision::Drop(Reason::Paused),
            None => {
                let meta = clean_meta(&m.meta);
                let (outcome, expired) = self.check(
                    self.dm
                        .upsert(
                            &channel,
                            &account,
                            &m.sender,
                            &meta,
                            settings.dm_limits(),
                            &mut rand::rngs::OsRng,
                        )
                        .map_err(dm_err),
                )?;
                self.publish_expired_dm(&channel, &expired);
                match &outcome {
                    Upsert::Created(req) => {
                        self.audit(
                            "dm.requested",
                            &m.channel,
                            obj(&[
                                ("channel", channel.to_string().into()),
                                ("accountId", account.to_string().into()),
                                ("senderId", sanitize(&m.sender).into()),
                                ("code", req.code.clone().into()),
                            ]),
                        );
                        self.events.publish(Event::PairingRequested(self.view(
                            &channel,
                            req,
                            settings.dm_limits().ttl_ms,
                        )));
                    }
                    Upsert::CapReached => {
                        self.audit(
                            "dm.dropped",
                            &m.channel,
                            obj(&[
                                ("channel", channel.to_string().into()),
                                ("accountId", account.to_string().into()),
                                ("senderId", sanitize(&m.sender).into()),
                                ("reason", "pending-cap".into()),
                            ]),
                        );
                        self.events.publish(Event::PairingDropped {
                            channel: channel.to_string(),
                            account_id: account.to_string(),
                            reason: "pending-cap".into(),
                            ts: self.now_ms(),
                        });
                    }
                    Upsert::Existing(_) | Upsert::NoCode => {}
                }
                dm::decide_after_upsert(&m.channel, &m.sender, &outcome)
            }
        };
        Ok(self.dm_decided(m, &account, decision))
    }

    /// [`Service::dm_inbound`] for a sender whom the cached settings and allowlist settle
    /// (allowed, owner, open, disabled, group, not allowlisted): no disk read and no write, so
    /// an async task may call it. `None` when a file must be read or a request written first.
    pub fn dm_inbound_cached(&self, m: &InboundDm) -> Option<ServiceResult<Decision>> {
        let (channel, account) = match dm_names(m) {
            Ok(names) => names,
            Err(e) => return Some(Err(e)),
        };
        let settings = self.settings_cached()?;
        let in_stored_allowlist = settings.dm_policy(&m.channel) == dm::DmPolicy::Pairing
            && self.dm.is_allowed_cached(&channel, &account, &m.sender)?;
        let decision = dm::gate(sender_facts(&settings, m, in_stored_allowlist))?;
        Some(Ok(self.dm_decided(m, &account, decision)))
    }

    /// Publishes an allowed message as `chat.message`.
    fn dm_decided(&self, m: &InboundDm, account: &AccountId, decision: Decision) -> Decision {
        if let Decision::Allow(_) = decision {
            self.events.publish(Event::ChatMessage {
                channel: m.channel.clone(),
                account_id: account.to_string(),
                sender_id: m.sender.clone(),
                text: m.text.clone().unwrap_or_default(),
                meta: clean_meta(&m.meta),
                ts: self.now_ms(),
            });
        }
        decision
    }

    /// The channels settings name, for telling a channel with a dash in its name from a
    /// channel and an account in a file name. A key that is not a valid name is left out: it
    /// never becomes part of a path (`clawpair doctor` reports it).
    fn known_channels(&self) -> Vec<ChannelName> {
        self.settings()
            .channels
            .keys()
            .filter_map(|k| ChannelName::parse(k).ok())
            .collect()
    }

    /// Files in `credentials/` named like the store's whose names do not pass the rule: they
    /// are never read or written (for `clawpair doctor`).
    pub fn dm_ignored_files(&self) -> ServiceResult<Vec<IgnoredFile>> {
        let found = self.dm.discover(&self.known_channels());
        Ok(self.check(found.map_err(ServiceError::Store))?.ignored)
    }

    /// Pending DM requests of one channel, or of every channel. A request whose stored account
    /// is not a valid name is listed with `invalidName`, so the owner can see and reject it.
    pub fn dm_list(&self, channel: Option<&str>) -> ServiceResult<Vec<DmRequestView>> {
        let channels = match channel {
            Some(c) => vec![channel_name(c)?],
            None => {
                self.check(
                    self.dm
                        .discover(&self.known_channels())
                        .map_err(ServiceError::Store),
                )?
                .pairing
            }
        };
        let limits = self.settings().dm_limits();
        let mut out = Vec::new();
        for ch in channels {
            let (live, expired) = self.check(self.dm.list(&ch, limits).map_err(dm_err))?;
            self.publish_expired_dm(&ch, &expired);
            out.extend(live.iter().map(|r| self.view(&ch, r, limits.ttl_ms)));
        }
        Ok(out)
    }

    /// Removes from a channel's pairing file the requests whose stored account is not a valid
    /// name (`clawpair doctor --fix`), each as if it were rejected; the other requests stay.
    /// Returns what was removed.
    pub fn dm_remove_invalid(&self, channel: &str, via: &str) -> ServiceResult<Vec<DmRequestView>> {
        let ch = channel_name(channel)?;
        let ttl = self.settings().dm_limits().ttl_ms;
        let removed = self.check(self.dm.remove_invalid(&ch).map_err(dm_err))?;
        let mut out = Vec::new();
        for r in removed {
            let view = self.view(&ch, &r, ttl);
            self.audit(
                "dm.rejected",
                via,
                obj(&[
                    ("channel", ch.to_string().into()),
                    ("accountId", view.account_id.clone().into()),
                    ("senderId", view.id.clone().into()),
                    ("code", r.code.clone().into()),
                    ("reason", "invalid-account-name".into()),
                ]),
            );
            self.events.publish(Event::PairingResolved {
                channel: ch.to_string(),
                account_id: view.account_id.clone(),
                sender_id: r.id.clone(),
                code: r.code.clone(),
                decision: Resolution::Rejected,
                notify: false,
            });
            out.push(view);
        }
        Ok(out)
    }

    /// The channel to act on when the caller named none: the only one with pending requests.
    pub fn resolve_channel(&self, channel: Option<&str>) -> ServiceResult<ChannelName> {
        if let Some(c) = channel {
            return channel_name(c);
        }
        let mut with_pending: Vec<String> =
            self.dm_list(None)?.into_iter().map(|r| r.channel).collect();
        with_pending.dedup();
        match with_pending.as_slice() {
            [one] => channel_name(one),
            [] => Err(ServiceError::NotFound {
                what: "pending pairing request",
                id: "in any channel".into(),
                reason: "none pending".into(),
            }),
            many => Err(ServiceError::Invalid(format!(
                "several channels have pending requests ({}); name the channel",
                many.join(", ")
            ))),
        }
    }

    /// Approves a DM pairing code: the sender joins the allowlist. With `notify`, channel
    /// bridges send the sender a confirmation (they see it in `pairing.resolved`).
    pub fn dm_approve(
        &self,
        channel: Option<&str>,
        code: &str,
        account: Option<&str>,
        notify: bool,
        via: &str,
    ) -> ServiceResult<DmApproved> {
        let channel = self.resolve_channel(channel)?;
        let code_n = dm::normalize_code(code);
        if !dm::looks_like_code(&code_n) {
            return Err(ServiceError::Invalid(format!(
                "{:?} is not a pairing code (8 characters from A-Z and 2-9, no 0/O/1/I)",
                sanitize(code)
            )));
        }
        let account = account_id(account)?;
        let limits = self.settings().dm_limits();
        let approved = self.check(
            self.dm
                .approve(&channel, &code_n, account.as_ref(), via, limits)
                .map_err(dm_err),
        )?;
        let Some(a) = approved else {
            return Err(ServiceError::NotFound {
                what: "pending pairing request with code",
                id: format!("{code_n} in {channel}"),
                reason: "unknown or expired".into(),
            });
        };
        let out = DmApproved {
            channel: channel.to_string(),
            account_id: a.account.to_string(),
            sender_id: a.request.id.clone(),
            code: a.request.code.clone(),
        };
        self.audit(
            "dm.approved",
            via,
            obj(&[
                ("channel", out.channel.clone().into()),
                ("accountId", out.account_id.clone().into()),
                ("senderId", sanitize(&a.request.id).into()),
                ("code", out.code.clone().into()),
                ("notify", notify.into()),
            ]),
        );
        self.events.publish(Event::PairingResolved {
            channel: out.channel.clone(),
            account_id: out.account_id.clone(),
            sender_id: a.request.id.clone(),
            code: out.code.clone(),
            decision: Resolution::Approved,
            notify,
        });
        self.events.publish(Event::AllowlistChanged {
            channel: out.channel.clone(),
            account_id: out.account_id.clone(),
        });
        Ok(out)
    }

    /// Removes a DM request without allowing the sender (they may ask again later).
    pub fn dm_reject(
        &self,
        channel: Option<&str>,
        code: &str,
        account: Option<&str>,
        via: &str,
    ) -> ServiceResult<DmApproved> {
        let channel = self.resolve_channel(channel)?;
        let code_n = dm::normalize_code(code);
        let account = account_id(account)?;
        let limits = self.settings().dm_limits();
        let Some(r) = self.check(
            self.dm
                .reject(&channel, &code_n, account.as_ref(), limits)
                .map_err(dm_err),
        )?
        else {
            return Err(ServiceError::NotFound {
                what: "pending pairing request with code",
                id: format!("{} in {channel}", sanitize(&code_n)),
                reason: "unknown or expired".into(),
            });
        };
        // The stored account is text from a file, possibly not a valid name: shown sanitised.
        let account_shown = sanitize(r.account());
        self.audit(
            "dm.rejected",
            via,
            obj(&[
                ("channel", channel.to_string().into()),
                ("accountId", account_shown.clone().into()),
                ("senderId", sanitize(&r.id).into()),
                ("code", r.code.clone().into()),
            ]),
        );
        self.events.publish(Event::PairingResolved {
            channel: channel.to_string(),
            account_id: account_shown.clone(),
            sender_id: r.id.clone(),
            code: r.code.clone(),
            decision: Resolution::Rejected,
            notify: false,
        });
        Ok(DmApproved {
            channel: channel.to_string(),
            account_id: account_shown,
            sender_id: r.id.clone(),
            code: r.code,
        })
    }

    /// Allowed senders of one channel (every account), or of every channel.
    pub fn allow_list(&self, channel: Option<&str>) -> ServiceResult<Vec<AllowView>> {
        let only = channel.map(channel_name).transpose()?;
        let mut pairs = self
            .check(
                self.dm
                    .discover(&self.known_channels())
                    .map_err(ServiceError::Store),
            )?
            .allow;
        if let Some(c) = &only {
            pairs.retain(|(ch, _)| ch == c);
        }
        // A scoped default file and the legacy one are the same account: list it once.
        pairs.sort();
        pairs.dedup();
        let mut out = Vec::new();
        for (ch, acct) in pairs {
            for e in self.check(self.dm.allow_entries(&ch, &acct).map_err(dm_err))? {
                out.push(AllowView {
                    channel: e.channel.into(),
                    account_id: e.account.into(),
                    sender_id: e.sender,
                    approved_at: e.details.approved_at,
                    approved_via: e.details.approved_via,
                    label: e.details.label.map(|l| sanitize(&l)),
                    last_message_at: e.details.last_message_at,
                });
            }
        }
        Ok(out)
    }

    pub fn allow_add(
        &self,
        channel: &str,
        account: Option<&str>,
        sender: &str,
        via: &str,
    ) -> ServiceResult<bool> {
        let channel = channel_name(channel)?;
        let account = account_id(account)?.unwrap_or_default();
        let added = self.check(
            self.dm
                .allow_add(&channel, &account, sender, via)
                .map_err(dm_err),
        )?;
        if added {
            self.allowlist_changed("allowlist.added", &channel, &account, sender, via);
        }
        Ok(added)
    }

    pub fn allow_remove(
        &self,
        channel: &str,
        account: Option<&str>,
        sender: &str,
        via: &str,
    ) -> ServiceResult<bool> {
        let channel = channel_name(channel)?;
        let account = account_id(account)?.unwrap_or_default();
        let removed = self.check(
            self.dm
                .allow_remove(&channel, &account, sender)
                .map_err(dm_err),
        )?;
        if removed {
            self.allowlist_changed("allowlist.removed", &channel, &account, sender, via);
        }
        Ok(removed)
    }

    /// Audits a hand edit of an allowlist and tells subscribers.
    fn allowlist_changed(
        &self,
        action: &str,
        channel: &ChannelName,
        account: &AccountId,
        sender: &str,
        via: &str,
    ) {
        self.audit(
            action,
            via,
            obj(&[
                ("channel", channel.to_string().into()),
                ("accountId", account.to_string().into()),
                ("senderId", sanitize(sender).into()),
            ]),
        );
        self.events.publish(Event::AllowlistChanged {
            channel: channel.to_string(),
            account_id: account.to_string(),
        });
    }

    // ---------------------------------------------------------------- devices

    fn publish_expired_devices(&self, expired: &[PendingDevice]) {
        for r in expired {
            self.events.publish(Event::DevicePairResolved {
                request_id: r.request_id.clone(),
                device_id: r.device_id.clone(),
                decision: Resolution::Expired,
                ts: self.now_ms(),
            });
        }
    }

    pub fn device_list(&self) -> ServiceResult<DeviceList> {
        let ttl = self.settings().device_pending_ttl_ms();
        let (pending, expired) = self.check(self.devices.pending(ttl).map_err(dev_err))?;
        self.publish_expired_devices(&expired);
        let paired = self.check(self.devices.paired().map_err(dev_err))?;
        let (now, stale_after) = (self.now_ms(), self.settings().stale_after_ms());
        let mut paired: Vec<PairedDeviceView> = paired
            .values()
            .map(|d| PairedDeviceView {
                stale: stale_after.is_some_and(|t| d.is_stale(now, t)),
                ..PairedDeviceView::from(d)
            })
            .collect();
        paired.sort_by_key(|d| d.approved_at_ms);
        Ok(DeviceList {
            pending: pending
                .into_iter()
                .map(|r| PendingDeviceView {
                    expires_at_ms: r.expires_ms(ttl),
                    name: r.shown_name(),
                    kind: r.kind_in_words().to_string(),
                    roles: vec![r.role.clone()],
                    silent: false,
                    request: r,
                })
                .collect(),
            paired,
        })
    }

    /// Records a device that must wait for the owner. Returns the request and its expiry.
    pub fn device_request(&self, ask: DeviceAsk) -> ServiceResult<(Reconciled, Millis)> {
        let settings = self.settings();
        if settings.ui.paused {
            return Err(ServiceError::Refused(
                "new pairing requests are paused by the owner".into(),
            ));
        }
        let now = self.now_ms();
        let candidate = PendingDevice {
            request_id: uuid::Uuid::new_v4().to_string(),
            device_id: ask.device_id,
            public_key: ask.public_key,
            display_name: sanitize(&ask.display_name),
            platform: sanitize(&ask.platform),
            device_family: sanitize(&ask.device_family),
            client_id: sanitize(&ask.client_id),
            client_mode: sanitize(&ask.client_mode),
            role: ask.role,
            scopes: ask.scopes.iter().map(|s| sanitize(s)).collect(),
            remote_ip: sanitize(&ask.remote_ip),
            fingerprint: ask.fingerprint,
            is_repair: ask.is_repair,
            reason: ask.reason,
            regains: ask.regains,
            ts: now,
            extra: Map::new(),
        };
        let ttl = settings.device_pending_ttl_ms();
        let (rec, expired) = self.check(
            self.devices
                .request(candidate, ttl, settings.devices.max_pending)
                .map_err(dev_err),
        )?;
        self.publish_expired_devices(&expired);
        for s in &rec.superseded {
            self.events.publish(Event::DevicePairResolved {
                request_id: s.request_id.clone(),
                device_id: s.device_id.clone(),
                decision: Resolution::Superseded,
                ts: now,
            });
        }
        if rec.created {
            let r = &rec.request;
            self.audit(
                "device.requested",
                "gateway",
                obj(&[
                    ("requestId", r.request_id.clone().into()),
                    ("deviceId", r.device_id.clone().into()),
                    ("displayName", r.display_name.clone().into()),
                    ("platform", r.platform.clone().into()),
                    ("remoteIp", r.remote_ip.clone().into()),
                    ("fingerprint", r.fingerprint.clone().into()),
                    ("role", r.role.clone().into()),
                    ("reason", r.reason.clone().into()),
                ]),
            );
            self.events.publish(Event::DevicePairRequested(r.clone()));
        }
        let expires = rec.request.expires_ms(ttl);
        Ok((rec, expires))
    }

    pub fn device_approve(&self, request_id: &str, via: &str) -> ServiceResult<PairedDeviceView> {
        self.device_approve_withholding(request_id, &[], via)
    }

    /// Approves a device request without the scopes in `withhold` ("approve without admin"):
    /// the device gets the rest, and its hello-ok says what it was granted.
    pub fn device_approve_withholding(
        &self,
        request_id: &str,
        withhold: &[String],
        via: &str,
    ) -> ServiceResult<PairedDeviceView> {
        let ttl = self.settings().device_pending_ttl_ms();
        let (a, expired) = self.check(
            self.devices
                .approve(request_id.trim(), withhold, ttl)
                .map_err(dev_err),
        )?;
        self.publish_expired_devices(&expired);
        self.audit(
            "device.approved",
            via,
            obj(&[
                ("requestId", a.request.request_id.clone().into()),
                ("deviceId", a.device.device_id.clone().into()),
                ("displayName", a.device.display_name.clone().into()),
                ("fingerprint", a.device.fingerprint.clone().into()),
                ("role", a.request.role.clone().into()),
                ("scopes", a.device.scopes_for_role(&a.request.role).into()),
                ("withheld", withhold.to_vec().into()),
            ]),
        );
        self.events.publish(Event::DevicePairResolved {
            request_id: a.request.request_id.clone(),
            device_id: a.device.device_id.clone(),
            decision: Resolution::Approved,
            ts: self.now_ms(),
        });
        if a.request.is_repair && a.request.reason == "not-paired" {
            // Paired again: the old token of the role is gone; close what still uses it.
            self.device_changed(
                &a.device.device_id,
                DeviceChange::Rotated,
                Some(&a.request.role),
            );
        }
        Ok(PairedDeviceView::from(&a.device))
    }

    pub fn device_reject(&self, request_id: &str, via: &str) -> ServiceResult<PendingDevice> {
        let ttl = self.settings().device_pending_ttl_ms();
        let (r, expired) =
            self.check(self.devices.reject(request_id.trim(), ttl).map_err(dev_err))?;
        self.publish_expired_devices(&expired);
        // The setup code it came from dies with it: the same device cannot open a new request
        // (and a new notification) with it again and again.
        let revoked = self.check(
            self.devices
                .bootstrap_revoke_for_device(&r.device_id)
                .map_err(dev_err),
        )?;
        self.audit(
            "device.rejected",
            via,
            obj(&[
                ("requestId", r.request_id.clone().into()),
                ("deviceId", r.device_id.clone().into()),
                ("fingerprint", r.fingerprint.clone().into()),
                ("setupCodesRevoked", revoked.into()),
            ]),
        );
        self.events.publish(Event::DevicePairResolved {
            request_id: r.request_id.clone(),
            device_id: r.device_id.clone(),
            decision: Resolution::Rejected,
            ts: self.now_ms(),
        });
        Ok(r)
    }

    fn device_changed(&self, device_id: &str, change: DeviceChange, role: Option<&str>) {
        self.events.publish(Event::DeviceChanged {
            device_id: device_id.into(),
            change,
            role: role.map(Into::into),
            ts: self.now_ms(),
        });
    }

    /// Forgets a paired device; its live connections are closed by the gateway at once.
    /// Forgets the device completely: its record and tokens, its pending requests, and any
    /// setup code bound to it.
    pub fn device_remove(&self, device_id: &str, via: &str) -> ServiceResult<PairedDeviceView> {
        let d = self.check(self.devices.remove(device_id.trim()).map_err(dev_err))?;
        let ttl = self.settings().device_pending_ttl_ms();
        let requests = self.check(
            self.devices
                .forget_requests(&d.device_id, ttl)
                .map_err(dev_err),
        )?;
        let codes = self.check(
            self.devices
                .bootstrap_revoke_for_device(&d.device_id)
                .map_err(dev_err),
        )?;
        self.audit(
            "device.removed",
            via,
            obj(&[
                ("deviceId", d.device_id.clone().into()),
                ("fingerprint", d.fingerprint.clone().into()),
                ("requestsDropped", requests.len().into()),
                ("setupCodesRevoked", codes.into()),
            ]),
        );
        for r in requests {
            self.events.publish(Event::DevicePairResolved {
                request_id: r.request_id,
                device_id: r.device_id,
                decision: Resolution::Rejected,
                ts: self.now_ms(),
            });
        }
        self.device_changed(&d.device_id, DeviceChange::Removed, None);
        Ok(PairedDeviceView::from(&d))
    }

    /// Gives a paired device the owner's name for it (at most 64 characters, sanitised).
    pub fn device_rename(&self, device_id: &str, label: &str, via: &str) -> ServiceResult<String> {
        let label = sanitize(label);
        if label.is_empty() {
            return Err(ServiceError::Invalid(
                "a device's name must have 1-64 visible characters".into(),
            ));
        }
        let d = self.check(
            self.devices
                .rename(device_id.trim(), &label)
                .map_err(dev_err),
        )?;
        self.audit(
            "device.renamed",
            via,
            obj(&[
                ("deviceId", d.device_id.clone().into()),
                ("label", label.clone().into()),
            ]),
        );
        self.events.publish(Event::DevicePairChanged {
            device_id: d.device_id.clone(),
            ts: self.now_ms(),
        });
        Ok(label)
    }

    /// Removes every paired device (and with `pending`, rejects every pending request).
    pub fn device_clear(&self, pending: bool, via: &str) -> ServiceResult<(usize, usize)> {
        let ttl = self.settings().device_pending_ttl_ms();
        let (removed, rejected) = self.check(self.devices.clear(pending, ttl).map_err(dev_err))?;
        for d in &removed {
            self.device_changed(&d.device_id, DeviceChange::Removed, None);
        }
        for r in &rejected {
            self.events.publish(Event::DevicePairResolved {
                request_id: r.request_id.clone(),
                device_id: r.device_id.clone(),
                decision: Resolution::Rejected,
                ts: self.now_ms(),
            });
        }
        self.audit(
            "device.cleared",
            via,
            obj(&[
                ("removed", removed.len().into()),
                ("rejected", rejected.len().into()),
            ]),
        );
        Ok((removed.len(), rejected.len()))
    }

    /// A new token for a device's role (the old one stops working and its sockets close).
    /// The token text is returned once and stored only as a hash.
    pub fn token_rotate(
        &self,
        device_id: &str,
        role: &str,
        via: &str,
    ) -> ServiceResult<(String, Millis, Vec<String>)> {
        check_role(role)?;
        let (tok, rec) = self.check(
            self.devices
                .issue_token(device_id.trim(), role, &mut rand::rngs::OsRng)
                .map_err(dev_err),
        )?;
        let at = rec.rotated_at_ms.unwrap_or(rec.created_at_ms);
        self.audit(
            "device.token.rotated",
            via,
            obj(&[("deviceId", device_id.trim().into()), ("role", role.into())]),
        );
        self.device_changed(device_id.trim(), DeviceChange::Rotated, Some(role));
        Ok((tok, at, rec.scopes))
    }

    /// The first token of an approved role, minted when the device connects (the only moment
    /// it can be handed over, since only its hash is kept).
    pub fn token_issue_on_connect(
        &self,
        device_id: &str,
        role: &str,
    ) -> ServiceResult<(String, Millis)> {
        self.token_issue_redeeming(device_id, role, None)
    }

    /// [`Service::token_issue_on_connect`] for a device that came back with its setup code:
    /// the code is consumed with the same write, or nothing is minted.
    pub fn token_issue_redeeming(
        &self,
        device_id: &str,
        role: &str,
        bootstrap_hash: Option<&str>,
    ) -> ServiceResult<(String, Millis)> {
        let (tok, rec) = self.check(
            self.devices
                .issue_token_on_connect(device_id, role, bootstrap_hash, &mut rand::rngs::OsRng)
                .map_err(dev_err),
        )?;
        self.audit(
            "device.token.issued",
            "gateway",
            obj(&[("deviceId", device_id.into()), ("role", role.into())]),
        );
        Ok((tok, rec.rotated_at_ms.unwrap_or(rec.created_at_ms)))
    }

    pub fn token_revoke(&self, device_id: &str, role: &str, via: &str) -> ServiceResult<Millis> {
        check_role(role)?;
        let at = self.check(self.devices.revoke(device_id.trim(), role).map_err(dev_err))?;
        self.audit(
            "device.token.revoked",
            via,
            obj(&[("deviceId", device_id.trim().into()), ("role", role.into())]),
        );
        self.device_changed(device_id.trim(), DeviceChange::Revoked, Some(role));
        Ok(at)
    }

    /// The URL a setup code should carry: explicit, else `gateway.publicUrl`, else derived
    /// from where the gateway listens (refused for loopback-only, with advice).
    pub fn setup_url(
        &self,
        explicit: Option<&str>,
        listening: Option<SocketAddr>,
    ) -> ServiceResult<String> {
        let settings = self.settings();
        let invalid = |e: setup::UrlError| ServiceError::Invalid(e.to_string());
        if let Some(u) = explicit.filter(|u| !u.trim().is_empty()) {
            return setup::check_url(u).map_err(invalid);
        }
        if let Some(u) = settings
            .gateway
            .public_url
            .as_deref()
            .filter(|u| !u.trim().is_empty())
        {
            return setup::check_url(u).map_err(invalid);
        }
        let (bind, port) = match listening {
            Some(a) => (a.ip().to_string(), a.port()),
            None => (settings.gateway.bind.clone(), settings.gateway.port),
        };
        let tls = settings.gateway.tls_on().is_some();
        setup::url_from_bind(&bind, port, &lan_addresses(), tls).map_err(invalid)
    }

    /// The certificate pin a setup code for `url` carries: with `gateway.tls` on, for a
    /// `wss://` URL on the gateway's own port (where it is this gateway that answers). A URL on
    /// another port is a proxy or a tunnel in front, with a certificate of its own: no pin.
    pub fn setup_pin(
        &self,
        url: &str,
        listening: Option<SocketAddr>,
    ) -> ServiceResult<Option<String>> {
        let settings = self.settings();
        let Some(tls) = settings.gateway.tls_on() else {
            return Ok(None);
        };
        let Ok(u) = url::Url::parse(url) else {
            return Ok(None);
        };
        let port = listening.map(|a| a.port()).unwrap_or(settings.gateway.port);
        if u.scheme() != "wss" || u.port_or_known_default() != Some(port) {
            return Ok(None);
        }
        crate::tls::server::certificate_fingerprint(tls, &self.paths)
            .map(Some)
            .map_err(|e| ServiceError::Invalid(e.to_string()))
    }

    /// Issues a setup code: a single-use bootstrap token, valid `devices.setupCodeTtlMinutes`.
    /// With `retire_previous` (the window's "New code", `/pair`), the live codes made earlier
    /// from the same place are revoked, bound to a device or not, unless a device approved
    /// with one is still to redeem it.
    pub fn setup_create(
        &self,
        explicit_url: Option<&str>,
        listening: Option<SocketAddr>,
        via: &str,
        retire_previous: bool,
    ) -> ServiceResult<SetupCode> {
        let url = self.setup_url(explicit_url, listening)?;
        let tls_fingerprint = self.setup_pin(&url, listening)?;
        let ttl = self.settings().setup_code_ttl_ms();
        let (tok, rec, retired) = self.check(
            self.devices
                .bootstrap_create(&url, ttl, via, retire_previous, &mut rand::rngs::OsRng)
                .map_err(dev_err),
        )?;
        let payload = SetupPayload {
            url: url.clone(),
            bootstrap_token: tok,
            expires_at_ms: Some(rec.expires_at_ms),
            tls_fingerprint,
        };
        self.audit(
            "setup.created",
            via,
            obj(&[
                ("url", url.clone().into()),
                ("expiresAtMs", rec.expires_at_ms.into()),
                ("retired", retired.into()),
            ]),
        );
        self.events.publish(Event::SetupChanged {
            change: SetupChange::Created,
            expires_at_ms: Some(rec.expires_at_ms),
        });
        Ok(SetupCode {
            setup_code: setup::encode_setup_code(&payload),
            url,
            expires_at_ms: rec.expires_at_ms,
        })
    }

    /// Replaces the gateway's admin token. The old one is refused from the next connect on;
    /// the gateway closes the sessions that used it (on the event published here).
    pub fn admin_token_rotate(&self, via: &str) -> ServiceResult<Millis> {
        let token = crate::pairing::token::new_token(&mut rand::rngs::OsRng);
        self.update_settings(via, |s| {
            s.gateway.auth.token = token;
            Ok(())
        })?;
        let now = self.now_ms();
        self.audit("gateway.token.rotated", via, Map::new());
        self.events.publish(Event::GatewayTokenRotated { ts: now });
        Ok(now)
    }

    /// Revokes every setup code not used up yet, bound to a device or not.
    pub fn setup_cleanup(&self, via: &str) -> ServiceResult<usize> {
        let n = self.check(self.devices.bootstrap_cleanup().map_err(dev_err))?;
        self.audit("setup.cleanup", via, obj(&[("removed", n.into())]));
        self.events.publish(Event::SetupChanged {
            change: SetupChange::Cleanup,
            expires_at_ms: None,
        });
        Ok(n)
    }

    /// How many paired devices have not been seen for `after_ms` (for the tray).
    pub fn unseen_count(&self, after_ms: Millis) -> usize {
        let now = self.now_ms();
        self.devices
            .paired()
            .map(|m| m.values().filter(|d| d.is_stale(now, after_ms)).count())
            .unwrap_or(0)
    }

    /// With `devices.expireStale`, removes the devices not seen for `staleAfterDays` (audited
    /// as `device.expired`; their sockets close). Returns when the next one would expire.
    fn expire_stale_devices(&self) -> Option<Millis> {
        let settings = self.settings();
        let after = settings.stale_after_ms()?;
        let paired = self.devices.paired().ok()?;
        let now = self.now_ms();
        let mut next = None;
        for d in paired.values() {
            if !settings.devices.expire_stale {
                break;
            }
            if d.is_stale(now, after) {
                let days = settings.devices.stale_after_days.unwrap_or_default();
                if let Err(e) =
                    self.device_remove(&d.device_id, &format!("expiry (not seen for {days} days)"))
                {
                    tracing::warn!("could not expire a stale device: {e}");
                }
            } else {
                let at = d.last_active_ms().saturating_add(after).saturating_add(1);
                next = Some(next.map_or(at, |n: Millis| n.min(at)));
            }
        }
        next
    }

    /// Prunes expired DM and device requests (publishing `expired`), and returns when the next
    /// one will expire, so a caller can sleep exactly until then instead of polling. Stale
    /// devices expire here too, when the owner asked for that.
    pub fn sweep_expired(&self) -> Option<Millis> {
        let mut next: Option<Millis> = self.expire_stale_devices();
        let mut consider = |t: Millis| next = Some(next.map_or(t, |n: Millis| n.min(t)));
        let ttl = self.settings().dm_limits().ttl_ms;
        if let Ok(list) = self.dm_list(None) {
            for r in list {
                if let Some(c) = crate::clock::ms_from_iso(&r.created_at) {
                    consider(c + ttl);
                }
            }
        }
        if let Ok(d) = self.device_list() {
            for p in d.pending {
                consider(p.expires_at_ms);
            }
        }
        next
    }
}

/// A service on a fresh temp state directory and a manual clock, for unit tests.
#[cfg(test)]
pub(crate) fn test_service(now_ms: Millis) -> (tempfile::TempDir, Service) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let clock = Arc::new(crate::clock::ManualClock::new(now_ms));
    let (s, _) = Service::open(StatePaths::new(tmp.path()), clock).expect("open state");
    (tmp, s)
}
