//! Device pairing on disk: `devices/pending.json`, `devices/paired.json` and
//! `devices/bootstrap.json`. Tokens exist here only as SHA-256 hashes; a token's text is
//! returned once, to the caller that minted it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use rand::RngCore;

use super::fs::{read_json, update_json, JsonCache};
use super::{StatePaths, StoreError};
use crate::clock::{Clock, Millis};
use crate::pairing::authority::{Authority, Beyond};
use crate::pairing::device::{
    self, PairedDevice, PairedMap, PendingDevice, PendingMap, QueueFull, Reconciled, TokenRecord,
};
use crate::pairing::setup::{self, BootstrapMap, BootstrapRecord, BootstrapRefusal};
use crate::pairing::token;

#[derive(Debug, thiserror::Error)]
pub enum DeviceStoreError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    QueueFull(#[from] QueueFull),
    #[error("{what} {id} not found ({reason})")]
    NotFound {
        what: &'static str,
        id: String,
        reason: &'static str,
    },
    #[error("device {device} has no approved role {role:?}")]
    UnknownRole { device: String, role: String },
    /// A token for the role exists already: a connect never replaces one (only the owner's
    /// rotation does).
    #[error("device {device} already holds a token for role {role}; present that token")]
    TokenExists { device: String, role: String },
    #[error(transparent)]
    Bootstrap(#[from] BootstrapRefusal),
    /// Beyond what the caller may grant or act on (checked under the file's lock).
    #[error(transparent)]
    Beyond(#[from] Beyond),
}

pub type DeviceResult<T> = Result<T, DeviceStoreError>;

/// How long the device bound to a setup code may still redeem it after the owner approved it.
pub const REDEEM_AFTER_APPROVAL_MS: Millis = 10 * 60_000;

/// What the owner's approval produced.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceApproved {
    pub request: PendingDevice,
    pub device: PairedDevice,
}

/// Remembers why recent request ids went away, to answer `NOT_FOUND` with a reason.
#[derive(Default)]
struct Tombstones {
    order: VecDeque<String>,
    reasons: HashMap<String, &'static str>,
}

impl Tombstones {
    const KEEP: usize = 1024;
    fn add(&mut self, id: &str, reason: &'static str) {
        if self.reasons.insert(id.to_string(), reason).is_none() {
            self.order.push_back(id.to_string());
            if self.order.len() > Self::KEEP {
                if let Some(old) = self.order.pop_front() {
                    self.reasons.remove(&old);
                }
            }
        }
    }
    fn reason(&self, id: &str) -> &'static str {
        self.reasons.get(id).copied().unwrap_or("unknown")
    }
}

/// The device files of one state directory.
pub struct DeviceStore {
    paths: StatePaths,
    clock: Arc<dyn Clock>,
    paired_cache: JsonCache<PairedMap>,
    tombstones: Mutex<Tombstones>,
}

impl DeviceStore {
    pub fn new(paths: StatePaths, clock: Arc<dyn Clock>) -> Self {
        DeviceStore {
            paths,
            clock,
            paired_cache: JsonCache::default(),
            tombstones: Mutex::default(),
        }
    }

    fn bury(&self, ids: impl IntoIterator<Item = (String, &'static str)>) {
        if let Ok(mut t) = self.tombstones.lock() {
            for (id, reason) in ids {
                t.add(&id, reason);
            }
        }
    }

    fn not_found(&self, id: &str) -> DeviceStoreError {
        let reason = self
            .tombstones
            .lock()
            .map(|t| t.reason(id))
            .unwrap_or("unknown");
        DeviceStoreError::NotFound {
            what: "unknown requestId",
            id: crate::sanitize::sanitize(id),
            reason,
        }
    }

    fn update_pending<R>(
        &self,
        ttl_ms: Millis,
        change: impl FnOnce(&mut PendingMap) -> DeviceResult<R>,
    ) -> DeviceResult<(R, Vec<PendingDevice>)> {
        let now = self.clock.now_ms();
        update_json(
            &self.paths.pending_devices(),
            &*self.clock,
            |p: &mut PendingMap| {
                let expired = device::prune_pending(p, now, ttl_ms);
                // Buried before `change` runs, so a lookup of an expired id says "expired".
                self.bury(expired.iter().map(|e| (e.request_id.clone(), "expired")));
                Ok::<_, DeviceStoreError>((change(p)?, expired))
            },
        )
    }

    /// Pending requests, oldest first, and those that just expired.
    pub fn pending(
        &self,
        ttl_ms: Millis,
    ) -> DeviceResult<(Vec<PendingDevice>, Vec<PendingDevice>)> {
        if !self.paths.pending_devices().exists() {
            return Ok((vec![], vec![]));
        }
        let (mut list, expired) =
            match self.update_pending(ttl_ms, |p| Ok(p.values().cloned().collect::<Vec<_>>())) {
                // Listing must work on a read-only or full disk: skip the pruning write then.
                Err(DeviceStoreError::Store(StoreError::Io { .. })) => {
                    let mut p: PendingMap = read_json(&self.paths.pending_devices(), &*self.clock)?;
                    device::prune_pending(&mut p, self.clock.now_ms(), ttl_ms);
                    (p.into_values().collect(), vec![])
                }
                other => other?,
            };
        list.sort_by_key(|r| r.ts);
        Ok((list, expired))
    }

    /// Paired devices (cached until the file changes).
    pub fn paired(&self) -> DeviceResult<Arc<PairedMap>> {
        Ok(self
            .paired_cache
            .get(&self.paths.paired_devices(), &*self.clock)?)
    }

    /// Paired devices from the cache alone: `None` when the file changed since it was last
    /// read, so the caller must use [`DeviceStore::paired`] off the async runtime.
    pub fn paired_cached(&self) -> Option<Arc<PairedMap>> {
        self.paired_cache.peek(&self.paths.paired_devices())
    }

    /// Records a device waiting for approval (refreshing an identical retry in place). With
    /// `setup_code` (a setup code's hash), the code is bound to the device first, under its
    /// lock and inside the pending file's: when it cannot be (another device bound it a moment
    /// earlier, or it was used up or revoked), nothing is recorded.
    pub fn request(
        &self,
        candidate: PendingDevice,
        setup_code: Option<&str>,
        ttl_ms: Millis,
        max_pending: usize,
    ) -> DeviceResult<(Reconciled, Vec<PendingDevice>)> {
        let now = self.clock.now_ms();
        let r = self.update_pending(ttl_ms, |p| {
            let (device_id, key) = (candidate.device_id.clone(), candidate.public_key.clone());
            let rec = device::reconcile_pending(p, candidate, max_pending)?;
            if let Some(code) = setup_code {
                // Lock order: pending, then bootstrap (as everywhere).
                self.update_bootstrap(|b| {
                    let r = b.get_mut(code).ok_or(BootstrapRefusal::Unknown)?;
                    r.check(&device_id, now, REDEEM_AFTER_APPROVAL_MS)?;
                    r.bind(&device_id, &key, now);
                    Ok(())
                })?;
            }
            Ok(rec)
        })?;
        self.bury(
            r.0.superseded
                .iter()
                .map(|s| (s.request_id.clone(), "superseded")),
        );
        Ok(r)
    }

    /// Approves a pending request, less the scopes in `withhold` (see
    /// [`device::approve_withholding`]), when it is within what `by` may grant. Lock order
    /// everywhere: pending → paired → bootstrap.
    pub fn approve(
        &self,
        request_id: &str,
        withhold: &[String],
        by: &Authority,
        ttl_ms: Millis,
    ) -> DeviceResult<(DeviceApproved, Vec<PendingDevice>)> {
        let now = self.clock.now_ms();
        let r = self.update_pending(ttl_ms, |p| {
            let Some(req) = p.get(request_id).cloned() else {
                return Err(self.not_found(request_id));
            };
            let granted: Vec<String> = req
                .scopes
                .iter()
                .filter(|s| !withhold.contains(s))
                .cloned()
                .collect();
            by.may_approve(&req, &granted)?;
            let dev = update_json(
                &self.paths.paired_devices(),
                &*self.clock,
                |m: &mut PairedMap| {
                    Ok::<_, DeviceStoreError>(device::approve_withholding(m, &req, withhold, now))
                },
            )?;
            self.mark_bootstrap_approved(&req.device_id, now)?;
            p.remove(request_id);
            Ok(DeviceApproved {
                request: req,
                device: dev,
            })
        });
        match r {
            Err(DeviceStoreError::NotFound { .. }) => Err(self.not_found(request_id)),
            other => {
                if let Ok((a, _)) = &other {
                    self.bury([(a.request.request_id.clone(), "approved")]);
                }
                other
            }
        }
    }

    pub fn reject(
        &self,
        request_id: &str,
        ttl_ms: Millis,
    ) -> DeviceResult<(PendingDevice, Vec<PendingDevice>)> {
        let r = self.update_pending(ttl_ms, |p| {
            p.remove(request_id)
                .ok_or_else(|| self.not_found(request_id))
        });
        match r {
            Err(DeviceStoreError::NotFound { .. }) => Err(self.not_found(request_id)),
            other => {
                if let Ok((req, _)) = &other {
                    self.bury([(req.request_id.clone(), "rejected")]);
                }
                other
            }
        }
    }

    fn update_paired<R>(
        &self,
        change: impl FnOnce(&mut PairedMap) -> DeviceResult<R>,
    ) -> DeviceResult<R> {
        update_json(&self.paths.paired_devices(), &*self.clock, change)
    }

    /// Forgets a paired device, when `by` may act on it.
    pub fn remove(&self, device_id: &str, by: &Authority) -> DeviceResult<PairedDevice> {
        self.update_paired(|m| {
            by.may_manage(paired_device(m, device_id)?, None)?;
            m.remove(device_id).ok_or_else(|| unknown_device(device_id))
        })
    }

    /// Sets the owner's name for a paired device, when `by` may act on it.
    pub fn rename(
        &self,
        device_id: &str,
        label: &str,
        by: &Authority,
    ) -> DeviceResult<PairedDevice> {
        self.update_paired(|m| {
            let d = paired_device(m, device_id)?;
            by.may_manage(d, None)?;
            d.operator_label = Some(label.to_string());
            Ok(d.clone())
        })
    }

    /// Adds devices paired elsewhere (an import), under the file's lock. A device id already
    /// paired here is left as it is. Returns the devices added and the ids left alone.
    pub fn add_paired(
        &self,
        devices: Vec<PairedDevice>,
    ) -> DeviceResult<(Vec<PairedDevice>, Vec<String>)> {
        if devices.is_empty() {
            return Ok((vec![], vec![]));
        }
        self.update_paired(|m| {
            let (mut added, mut kept) = (Vec::new(), Vec::new());
            for d in devices {
                if m.contains_key(&d.device_id) {
                    kept.push(d.device_id);
                } else {
                    m.insert(d.device_id.clone(), d.clone());
                    added.push(d);
                }
            }
            Ok((added, kept))
        })
    }

    /// Removes every paired device, and with `pending` rejects every pending request too.
    pub fn clear(
        &self,
        pending: bool,
        ttl_ms: Millis,
    ) -> DeviceResult<(Vec<PairedDevice>, Vec<PendingDevice>)> {
        let rejected = if pending {
            let (r, _) = self.update_pending(ttl_ms, |p| {
                Ok(std::mem::take(p).into_values().collect::<Vec<_>>())
            })?;
            self.bury(r.iter().map(|x| (x.request_id.clone(), "rejected")));
            r
        } else {
            vec![]
        };
        let removed = if self.paths.paired_devices().exists() {
            self.update_paired(|m| Ok(std::mem::take(m).into_values().collect()))?
        } else {
            vec![]
        };
        Ok((removed, rejected))
    }

    /// Changes a device's role, when `by` may act on that role of the device.
    fn with_role<R>(
        &self,
        device_id: &str,
        role: &str,
        by: &Authority,
        change: impl FnOnce(&mut PairedDevice) -> R,
    ) -> DeviceResult<R> {
        self.update_paired(|m| {
            let d = device_with_role(m, device_id, role)?;
            by.may_manage(d, Some(role))?;
            Ok(change(d))
        })
    }

    /// Mints a new token for an approved role, replacing any old one, when `by` may act on
    /// it (the token goes to `by`). Returns the token text (shown once) and its record.
    pub fn issue_token(
        &self,
        device_id: &str,
        role: &str,
        by: &Authority,
        rng: &mut impl RngCore,
    ) -> DeviceResult<(String, TokenRecord)> {
        let now = self.clock.now_ms();
        let tok = token::new_token(rng);
        let hash = token::hash_token(&tok);
        let rec = self.with_role(device_id, role, by, |d| {
            let mut rec = device::install_token(d, role, hash, now);
            rec.last_used_at_ms = Some(now);
            d.tokens.insert(role.to_string(), rec.clone());
            d.last_seen_at_ms = Some(now);
            rec
        })?;
        Ok((tok, rec))
    }

    /// Revokes a role's token (when `by` may act on it); the device keeps its record but that
    /// token stops working.
    pub fn revoke(&self, device_id: &str, role: &str, by: &Authority) -> DeviceResult<Millis> {
        let now = self.clock.now_ms();
        self.with_role(device_id, role, by, |d| {
            if let Some(t) = d.tokens.get_mut(role) {
                t.revoked_at_ms.get_or_insert(now);
            }
            now
        })
    }

    /// Records use of a device (last seen, token last used) for a batch of devices at once.
    pub fn touch(&self, seen: &[(String, String, Millis)]) -> DeviceResult<()> {
        if seen.is_empty() || !self.paths.paired_devices().exists() {
            return Ok(());
        }
        self.update_paired(|m| {
            for (device_id, role, at) in seen {
                if let Some(d) = m.get_mut(device_id) {
                    d.last_seen_at_ms = Some(d.last_seen_at_ms.unwrap_or(0).max(*at));
                    if let Some(t) = d.tokens.get_mut(role) {
                        t.last_used_at_ms = Some(t.last_used_at_ms.unwrap_or(0).max(*at));
                    }
                }
            }
            Ok(())
        })
    }

    fn update_bootstrap<R>(
        &self,
        change: impl FnOnce(&mut BootstrapMap) -> DeviceResult<R>,
    ) -> DeviceResult<R> {
        let now = self.clock.now_ms();
        update_json(
            &self.paths.bootstrap(),
            &*self.clock,
            |m: &mut BootstrapMap| {
                setup::prune_bootstrap(m, now, REDEEM_AFTER_APPROVAL_MS);
                change(m)
            },
        )
    }

    fn mark_bootstrap_approved(&self, device_id: &str, now: Millis) -> DeviceResult<()> {
        if !self.paths.bootstrap().exists() {
            return Ok(());
        }
        self.update_bootstrap(|m| {
            for r in m.values_mut() {
                if r.device_id.as_deref() == Some(device_id) && r.consumed_at_ms.is_none() {
                    r.approved_at_ms = Some(now);
                }
            }
            Ok(())
        })
    }

    /// A new setup-code token valid for `ttl_ms`; the text is returned, only the hash stored.
    /// With `retire_previous`, the live codes made earlier from the same place (`via`) that no
    /// approved device is still waiting to redeem are revoked in the same write.
    pub fn bootstrap_create(
        &self,
        url: &str,
        ttl_ms: Millis,
        via: &str,
        retire_previous: bool,
        rng: &mut impl RngCore,
    ) -> DeviceResult<(String, BootstrapRecord, usize)> {
        let now = self.clock.now_ms();
        let tok = token::new_token(rng);
        let rec = BootstrapRecord {
            token_hash: token::hash_token(&tok),
            created_at_ms: now,
            expires_at_ms: now.saturating_add(ttl_ms),
            url: url.to_string(),
            device_id: None,
            public_key: None,
            bound_at_ms: None,
            approved_at_ms: None,
            consumed_at_ms: None,
            revoked_at_ms: None,
            issued_via: via.to_string(),
            extra: Default::default(),
        };
        let stored = rec.clone();
        let retired = self.update_bootstrap(|m| {
            let mut retired = 0;
            if retire_previous {
                for r in m.values_mut() {
                    if r.issued_via == via && r.approved_at_ms.is_none() && r.revoke(now) {
                        retired += 1;
                    }
                }
            }
            m.insert(stored.token_hash.clone(), stored);
            Ok(retired)
        })?;
        Ok((tok, rec, retired))
    }

    /// Checks a presented setup token for this device, without binding it: a code is bound
    /// only once the request it opens has passed every check ([`DeviceStore::bootstrap_bind`]).
    pub fn bootstrap_check(
        &self,
        presented: &str,
        device_id: &str,
    ) -> DeviceResult<BootstrapRecord> {
        let now = self.clock.now_ms();
        let map: BootstrapMap = read_json(&self.paths.bootstrap(), &*self.clock)?;
        let rec = setup::find_bootstrap(&map, presented).ok_or(BootstrapRefusal::Unknown)?;
        rec.check(device_id, now, REDEEM_AFTER_APPROVAL_MS)?;
        Ok(rec.clone())
    }

    /// Mints the first token of an approved role as the device connects. With a setup code,
    /// the code is consumed under the same locks that store the token: a code that cannot be
    /// consumed (revoked, used, expired meanwhile) mints nothing. A role that holds a token
    /// already never gets another one this way.
    pub fn issue_token_on_connect(
        &self,
        device_id: &str,
        role: &str,
        bootstrap_hash: Option<&str>,
        rng: &mut impl RngCore,
    ) -> DeviceResult<(String, TokenRecord)> {
        let now = self.clock.now_ms();
        let tok = token::new_token(rng);
        let hash = token::hash_token(&tok);
        // Lock order: paired, then bootstrap (as an approval takes them).
        let rec = self.update_paired(|m| {
            let d = device_with_role(m, device_id, role)?;
            if d.tokens.contains_key(role) {
                return Err(DeviceStoreError::TokenExists {
                    device: d.device_id.clone(),
                    role: role.to_string(),
                });
            }
            if let Some(code) = bootstrap_hash {
                self.update_bootstrap(|b| {
                    let r = b.get_mut(code).ok_or(BootstrapRefusal::Unknown)?;
                    r.check(device_id, now, REDEEM_AFTER_APPROVAL_MS)?;
                    r.consumed_at_ms = Some(now);
                    Ok(())
                })?;
            }
            let mut rec = device::install_token(d, role, hash, now);
            rec.last_used_at_ms = Some(now);
            d.tokens.insert(role.to_string(), rec.clone());
            d.last_seen_at_ms = Some(now);
            Ok(rec)
        })?;
        Ok((tok, rec))
    }

    /// Revokes every live setup code bound to a device (its request was rejected, or it was
    /// removed). Returns how many.
    pub fn bootstrap_revoke_for_device(&self, device_id: &str) -> DeviceResult<usize> {
        if !self.paths.bootstrap().exists() {
            return Ok(0);
        }
        let now = self.clock.now_ms();
        self.update_bootstrap(|m| {
            let mut n = 0;
            for r in m.values_mut() {
                if r.device_id.as_deref() == Some(device_id) && r.revoke(now) {
                    n += 1;
                }
            }
            Ok(n)
        })
    }

    /// Revokes every setup code not yet used up, bound to a device or not. Returns how many.
    pub fn bootstrap_cleanup(&self) -> DeviceResult<usize> {
        if !self.paths.bootstrap().exists() {
            return Ok(0);
        }
        let now = self.clock.now_ms();
        self.update_bootstrap(|m| {
            let mut n = 0;
            for r in m.values_mut() {
                if r.revoke(now) {
                    n += 1;
                }
            }
            Ok(n)
        })
    }

    /// Drops the pending requests of a device (it was removed). Returns them.
    pub fn forget_requests(
        &self,
        device_id: &str,
        ttl_ms: Millis,
    ) -> DeviceResult<Vec<PendingDevice>> {
        if !self.paths.pending_devices().exists() {
            return Ok(vec![]);
        }
        let (gone, _) = self.update_pending(ttl_ms, |p| {
            let ids: Vec<String> = p
                .iter()
                .filter(|(_, r)| r.device_id == device_id)
                .map(|(k, _)| k.clone())
                .collect();
            Ok(ids.iter().filter_map(|k| p.remove(k)).collect::<Vec<_>>())
        })?;
        self.bury(gone.iter().map(|r| (r.request_id.clone(), "removed")));
        Ok(gone)
    }
}

/// The paired device `device_id`, which must hold `role`.
fn unknown_device(device_id: &str) -> DeviceStoreError {
    DeviceStoreError::NotFound {
        what: "unknown deviceId",
        id: crate::sanitize::sanitize(device_id),
        reason: "unknown",
    }
}

fn paired_device<'a>(m: &'a mut PairedMap, device_id: &str) -> DeviceResult<&'a mut PairedDevice> {
    m.get_mut(device_id)
        .ok_or_else(|| unknown_device(device_id))
}

fn device_with_role<'a>(
    m: &'a mut PairedMap,
    device_id: &str,
    role: &str,
) -> DeviceResult<&'a mut PairedDevice> {
    let d = paired_device(m, device_id)?;
    if !d.roles.iter().any(|r| r == role) {
        return Err(DeviceStoreError::UnknownRole {
            device: d.device_id.clone(),
            role: crate::sanitize::sanitize(role),
        });
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use serde_json::Map;

    const TTL: Millis = 300_000;

    fn req(id: &str, device: &str) -> PendingDevice {
        PendingDevice {
            request_id: id.into(),
            device_id: device.into(),
            public_key: format!("pk-{device}"),
            display_name: "Phone".into(),
            platform: "android".into(),
            device_family: String::new(),
            client_id: "c".into(),
            client_mode: "node".into(),
            role: "node".into(),
            scopes: vec![],
            remote_ip: "192.168.1.9".into(),
            fingerprint: "AAAA-BBBB".into(),
            is_repair: false,
            reason: "not-paired".into(),
            regains: false,
            ts: 0,
            extra: Map::new(),
        }
    }

    fn store() -> (tempfile::TempDir, DeviceStore, ManualClock) {
        let tmp = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(0);
        let s = DeviceStore::new(StatePaths::new(tmp.path()), Arc::new(clock.clone()));
        (tmp, s, clock)
    }

    #[test]
    fn approve_then_token_is_stored_only_as_a_hash() {
        let (tmp, s, _) = store();
        s.request(req("r1", "d1"), None, TTL, 10).unwrap();
        let (a, _) = s.approve("r1", &[], &Authority::owner(), TTL).unwrap();
        assert_eq!(a.device.roles, vec!["node"]);
        let (tok, rec) = s
            .issue_token("d1", "node", &Authority::owner(), &mut rand::rngs::OsRng)
            .unwrap();
        assert!(token::token_matches(&tok, &rec.token_hash));
        let on_disk = std::fs::read_to_string(tmp.path().join("devices/paired.json")).unwrap();
        assert!(!on_disk.contains(&tok), "token text must never be on disk");
        assert!(on_disk.contains(&rec.token_hash));
        assert_eq!(
            crate::store::fs::mode_of(&tmp.path().join("devices/paired.json")).unwrap(),
            0o600
        );
    }

    #[test]
    fn unknown_expired_and_superseded_requests_say_why() {
        let (_tmp, s, clock) = store();
        let reason = |e: DeviceStoreError| match e {
            DeviceStoreError::NotFound { reason, .. } => reason,
            other => panic!("{other}"),
        };
        assert_eq!(
            reason(
                s.approve("nope", &[], &Authority::owner(), TTL)
                    .unwrap_err()
            ),
            "unknown"
        );
        s.request(req("r1", "d1"), None, TTL, 10).unwrap();
        let mut other = req("r2", "d1");
        other.role = "operator".into();
        s.request(other, None, TTL, 10).unwrap();
        assert_eq!(
            reason(s.approve("r1", &[], &Authority::owner(), TTL).unwrap_err()),
            "superseded"
        );
        clock.advance_ms(TTL);
        assert_eq!(reason(s.reject("r2", TTL).unwrap_err()), "expired");
    }

    #[test]
    fn a_setup_code_binds_once_its_request_passes_and_the_owner_can_revoke_it() {
        let (tmp, s, clock) = store();
        let make = |via: &str, retire: bool| {
            s.bootstrap_create(
                "ws://10.0.0.2:18789",
                600_000,
                via,
                retire,
                &mut rand::rngs::OsRng,
            )
            .unwrap()
        };
        let (tok, rec, _) = make("window", true);
        let on_disk = std::fs::read_to_string(tmp.path().join("devices/bootstrap.json")).unwrap();
        assert!(!on_disk.contains(&tok));
        // Checking binds nothing: a second device may still be the first to bind.
        s.bootstrap_check(&tok, "dev-a").unwrap();
        s.bootstrap_check(&tok, "dev-b").unwrap();
        // Recording a request binds the code to its device.
        s.request(req("r-a", "dev-a"), Some(&rec.token_hash), TTL, 10)
            .unwrap();
        let bound_to_other = |r: DeviceResult<_>| {
            matches!(
                r,
                Err(DeviceStoreError::Bootstrap(BootstrapRefusal::BoundToOther))
            )
        };
        assert!(bound_to_other(s.bootstrap_check(&tok, "dev-b").map(|_| ())));
        // The loser of a race for the code leaves no request behind.
        assert!(bound_to_other(
            s.request(req("r-b", "dev-b"), Some(&rec.token_hash), TTL, 10)
                .map(|_| ())
        ));
        let (pending, _) = s.pending(TTL).unwrap();
        assert_eq!(
            pending
                .iter()
                .map(|r| r.device_id.as_str())
                .collect::<Vec<_>>(),
            vec!["dev-a"]
        );
        // A newer code from the same place retires it, bound or not; other places keep theirs.
        let (cli_tok, _, retired) = make("cli", true);
        assert_eq!(retired, 0);
        let (newer, _, retired) = make("window", true);
        assert_eq!(retired, 1);
        let revoked = |t: &str, d: &str| {
            matches!(
                s.bootstrap_check(t, d),
                Err(DeviceStoreError::Bootstrap(BootstrapRefusal::Revoked))
            )
        };
        assert!(revoked(&tok, "dev-a"));
        s.bootstrap_check(&cli_tok, "dev-c").unwrap();
        // Revoking for a device, and "invalidate codes" for every live one.
        let (mine, mine_rec, _) = make("telegram", false);
        s.request(req("r-d", "dev-d"), Some(&mine_rec.token_hash), TTL, 10)
            .unwrap();
        assert_eq!(s.bootstrap_revoke_for_device("dev-d").unwrap(), 1);
        assert!(revoked(&mine, "dev-d"));
        assert_eq!(
            s.bootstrap_cleanup().unwrap(),
            2,
            "the cli code and the newer window code"
        );
        assert!(revoked(&newer, "dev-e") && revoked(&cli_tok, "dev-c"));
        assert!(matches!(
            s.bootstrap_check("never-issued", "dev-a"),
            Err(DeviceStoreError::Bootstrap(BootstrapRefusal::Unknown))
        ));
        clock.advance_ms(1);
    }

    #[test]
    fn a_connect_mints_only_a_roles_first_token_and_consumes_its_code_with_it() {
        let (_tmp, s, _) = store();
        let (tok, rec, _) = s
            .bootstrap_create(
                "ws://10.0.0.2:18789",
                600_000,
                "cli",
                false,
                &mut rand::rngs::OsRng,
            )
            .unwrap();
        s.request(req("r1", "d1"), Some(&rec.token_hash), TTL, 10)
            .unwrap();
        s.approve("r1", &[], &Authority::owner(), TTL).unwrap();
        s.issue_token_on_connect("d1", "node", Some(&rec.token_hash), &mut rand::rngs::OsRng)
            .unwrap();
        assert!(matches!(
            s.bootstrap_check(&tok, "d1"),
            Err(DeviceStoreError::Bootstrap(BootstrapRefusal::Consumed))
        ));
        assert!(matches!(
            s.issue_token_on_connect("d1", "node", None, &mut rand::rngs::OsRng),
            Err(DeviceStoreError::TokenExists { .. })
        ));
    }

    #[test]
    fn revoke_and_rotate_need_an_approved_role() {
        let (_tmp, s, _) = store();
        s.request(req("r1", "d1"), None, TTL, 10).unwrap();
        s.approve("r1", &[], &Authority::owner(), TTL).unwrap();
        assert!(matches!(
            s.revoke("d1", "operator", &Authority::owner()),
            Err(DeviceStoreError::UnknownRole { .. })
        ));
        assert!(matches!(
            s.revoke("zz", "node", &Authority::owner()),
            Err(DeviceStoreError::NotFound { .. })
        ));
        let (t1, _) = s
            .issue_token("d1", "node", &Authority::owner(), &mut rand::rngs::OsRng)
            .unwrap();
        s.revoke("d1", "node", &Authority::owner()).unwrap();
        let d = s.paired().unwrap().get("d1").cloned().unwrap();
        assert_eq!(
            device::check_device_token(&d, "node", &t1),
            device::TokenCheck::Refused
        );
    }
}
