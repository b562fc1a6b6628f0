//! The core every edge calls: the CLI (on files), the gateway (for sockets and channel
//! bridges) and the tray app. Each operation validates input, changes the store under its lock,
//! writes the audit log, and publishes an [`Event`]. No Tauri, no sockets here.
//!
//! Where each operation lives: [`dm`] (chat senders: inbound messages, requests, allowlists),
//! [`devices`] (device requests, approval, tokens, removal), [`setup`] (setup codes, the admin
//! token), [`views`] (what callers are shown), [`watch`] (changes other processes make); this
//! file holds the service itself, its errors, settings, audit and the expiry sweep.

pub mod activity;
mod devices;
mod dm;
mod setup;
mod views;
pub mod watch;

pub use devices::DeviceAsk;
pub use dm::InboundDm;
pub use setup::setup_warnings;
pub use views::{
    AllowView, DeviceList, DmApproved, PairedDeviceView, PendingDeviceView, SetupCode, TokenView,
};

use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::clock::{iso_from_ms, Clock, Millis};
use crate::config::{self, Settings};
use crate::events::{DmRequestView, Event, EventBus};
use crate::pairing::device::{PairedDevice, PendingDevice, Reconciled};
use crate::pairing::dm::{self as dm_rules, Decision, DmRequest, Reason, SenderFacts, Upsert};
use crate::pairing::setup::{self as setup_codes, SetupPayload};
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
    #[error("{}", not_found_in_words(what, id, reason))]
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
    /// A setup code that cannot be used (unknown, used up, expired, another device's,
    /// revoked).
    #[error(transparent)]
    SetupCode(crate::pairing::setup::BootstrapRefusal),
    /// Beyond what the caller may grant or act on (the approval ceiling).
    #[error(transparent)]
    Beyond(crate::pairing::authority::Beyond),
    #[error(transparent)]
    Store(StoreError),
}

impl ServiceError {
    /// The protocol's error code for this refusal.
    pub fn code(&self) -> Code {
        match self {
            ServiceError::Invalid(_) | ServiceError::InvalidStoredName(_) => Code::InvalidRequest,
            ServiceError::NotFound { .. } => Code::NotFound,
            ServiceError::Refused(_) | ServiceError::SetupCode(_) | ServiceError::Beyond(_) => {
                Code::Forbidden
            }
            ServiceError::QueueFull(_) => Code::PairingQueueFull,
            ServiceError::Store(_) => Code::Unavailable,
        }
    }
}

pub type ServiceResult<T> = Result<T, ServiceError>;

/// A `NOT_FOUND` as a person reads it: what was looked for, why it is not there (as far as
/// the store knows) and where to look instead. `what` leads, as OpenClaw's CLI matches on
/// "unknown requestId".
fn not_found_in_words(what: &str, id: &str, reason: &str) -> String {
    let why = match (what, reason) {
        (_, "approved") => "it was approved already".to_string(),
        (_, "rejected") => "it was rejected already".to_string(),
        (_, "expired") => {
            "it expired before anyone decided; the device asks again when it reconnects".into()
        }
        (_, "superseded") => {
            "the same device sent a newer request, which replaced it (clawpair devices list)".into()
        }
        ("unknown deviceId", _) => {
            "no paired device has this id (clawpair devices list shows them)".into()
        }
        ("unknown requestId", _) => {
            "no device request has this id (clawpair devices list shows those waiting)".into()
        }
        (_, "none pending") => {
            "no chat sender is waiting for a decision (a code approved already waits no more)"
                .into()
        }
        (_, "unknown or expired") => "no sender waits with it: it was approved or rejected \
             already, or it expired (clawpair pairing list shows who waits)"
            .into(),
        (_, other) => other.to_string(),
    };
    if id.is_empty() {
        format!("{what}: {why}")
    } else {
        format!("{what} {id}: {why}")
    }
}

/// Settings as read, and the digest of the admin token they hold.
type AdminDigest = (Arc<Settings>, Option<[u8; 32]>);

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
    /// The last mistake found in the settings file, said once rather than at every read.
    settings_mistake: std::sync::Mutex<Option<String>>,
    /// The admin token's digest for the settings last asked about ([`Service::admin_digest`]).
    admin_digest: std::sync::Mutex<Option<AdminDigest>>,
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
        DeviceStoreError::Bootstrap(b) => ServiceError::SetupCode(b),
        DeviceStoreError::Beyond(b) => ServiceError::Beyond(b),
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
            settings_mistake: Default::default(),
            admin_digest: Default::default(),
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

    /// Current settings (re-read when the file changes). When an edit leaves the file
    /// unreadable, the settings it held before stay in force (the file is left as it is, the
    /// mistake logged, and every write refused until it is corrected); with none read before,
    /// defaults with no admin token: fail closed.
    pub fn settings(&self) -> Arc<Settings> {
        let path = self.paths.settings();
        match self.settings.get(&path, &*self.clock) {
            Ok(s) => s,
            Err(e) => {
                self.report(&e);
                if matches!(e, StoreError::Invalid { .. }) {
                    let said = e.to_string();
                    if let Ok(mut last) = self.settings_mistake.lock() {
                        if last.as_deref() != Some(said.as_str()) {
                            tracing::error!("{said}; the settings read before stay in force");
                            *last = Some(said);
                        }
                    }
                }
                self.settings
                    .last(&path)
                    .unwrap_or_else(|| Arc::new(Settings::default()))
            }
        }
    }

    /// Current settings from the cache alone: `None` when the file changed since it was last
    /// read, so the caller must use [`Service::settings`] off the async runtime.
    pub fn settings_cached(&self) -> Option<Arc<Settings>> {
        self.settings.peek(&self.paths.settings())
    }

    /// The SHA-256 of `settings`' admin token (`None` when it is empty), worked out once per
    /// settings read rather than once per connect that presents a token.
    pub fn admin_digest(&self, settings: &Arc<Settings>) -> Option<[u8; 32]> {
        let digest = || crate::pairing::token::secret_digest(&settings.gateway.auth.token);
        let Ok(mut last) = self.admin_digest.lock() else {
            return digest();
        };
        match &*last {
            Some((seen, d)) if Arc::ptr_eq(seen, settings) => *d,
            _ => {
                let d = digest();
                *last = Some((settings.clone(), d));
                d
            }
        }
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
        let before = serde_json::to_value(&*self.settings()).unwrap_or_default();
        let r = config::update(&self.paths, &*self.clock, change).map_err(ServiceError::Invalid)?;
        let after = serde_json::to_value(&*self.settings()).unwrap_or_default();
        let mut details = Map::new();
        details.insert(
            "changed".into(),
            activity::settings_changes(&before, &after).into(),
        );
        self.audit("settings.changed", via, details);
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
}

impl Service {
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

#[cfg(test)]
mod words {
    use super::*;

    #[test]
    fn not_found_says_what_happened_and_where_to_look() {
        let e = |what, id: &str, reason: &str| {
            ServiceError::NotFound {
                what,
                id: id.into(),
                reason: reason.into(),
            }
            .to_string()
        };
        assert_eq!(
            e("unknown requestId", "nope", "unknown"),
            "unknown requestId nope: no device request has this id (clawpair devices list shows those waiting)"
        );
        assert_eq!(
            e("unknown requestId", "r1", "approved"),
            "unknown requestId r1: it was approved already"
        );
        assert!(e("nothing to decide", "", "none pending")
            .starts_with("nothing to decide: no chat sender"));
        assert!(!e("code", "ABCD2345 on telegram", "unknown or expired").contains("not found"));
    }
}
