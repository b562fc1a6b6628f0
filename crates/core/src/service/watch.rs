//! Changes another process makes to the state directory, as events on this process's bus.
//!
//! The CLI acting on the files (when no gateway answered it), a second tool, or an edit by
//! hand: a moment after the write, the bus carries the events an in-process change would have
//! published, so a phone waiting with `waitForApproval` is answered, notifications close, the
//! tray and the window update, and a removed or revoked device's sockets close.
//!
//! A watcher thread (inotify here, FSEvents or ReadDirectoryChangesW elsewhere, through the
//! `notify` crate) wakes on writes to the state files, waits for the burst to settle, reads
//! again only what the changed files hold ([`Snapshot::refresh`]: one channel's requests, the
//! devices, the settings) and compares it with what it read last ([`Snapshot::changes`]). A change this process made itself was
//! published when it was made; its copy from the files is
//! dropped by [`EventBus::publish_unless_recent`](crate::events::EventBus::publish_unless_recent).
//!
//! What it read last is kept up to date with this process's own changes as they are published
//! ([`Snapshot::own`]): a request made here and decided by the CLI a few milliseconds later, in
//! one burst of writes, is still a request that was decided, not one that never was.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use notify::Watcher;

use crate::clock::Millis;
use crate::events::{DmRequestView, Event, HookGuard};
use crate::pairing::device::PendingDevice;
use crate::protocol::{DeviceChange, Resolution};
use crate::service::{PairedDeviceView, Service};
use crate::store::ChannelName;
use serde_json::Value;

/// How long the files must be quiet before they are read: one approval writes two or three.
const SETTLE: Duration = Duration::from_millis(60);
/// A burst of writes is read at least this often, however long it lasts.
const MAX_SETTLE: Duration = Duration::from_millis(400);

/// Directories whose files change at once when something happens, with a filter for the
/// names that matter (not locks, temp files or files moved aside).
pub struct DirWatch {
    _watcher: notify::RecommendedWatcher,
}

impl DirWatch {
    /// Watches `dirs` (each on its own, not their subdirectories); every change to a file in
    /// them for which `wanted` holds sends its path on the returned channel. A directory that
    /// does not exist yet is created first (`0700`).
    pub fn new(
        dirs: &[PathBuf],
        wanted: fn(&Path) -> bool,
    ) -> Result<(DirWatch, mpsc::Receiver<PathBuf>), String> {
        let (tx, rx) = mpsc::channel();
        let mut w = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
            let Ok(ev) = ev else { return };
            if matches!(ev.kind, notify::EventKind::Access(_)) {
                return;
            }
            for p in ev.paths.into_iter().filter(|p| wanted(p)) {
                let _ = tx.send(p);
            }
        })
        .map_err(|e| format!("cannot watch the state directory: {e}"))?;
        for d in dirs {
            crate::store::fs::ensure_dir(d).map_err(|e| e.to_string())?;
            w.watch(d, notify::RecursiveMode::NonRecursive)
                .map_err(|e| format!("cannot watch {}: {e}", d.display()))?;
        }
        Ok((DirWatch { _watcher: w }, rx))
    }
}

/// Waits for the next change, then for the burst it starts to settle; returns the files that
/// changed in it. `None` once the watch is gone.
pub fn next_burst(rx: &mpsc::Receiver<PathBuf>) -> Option<BTreeSet<PathBuf>> {
    let mut changed = BTreeSet::from([rx.recv().ok()?]);
    let started = Instant::now();
    while started.elapsed() < MAX_SETTLE {
        match rx.recv_timeout(SETTLE) {
            Ok(p) => {
                changed.insert(p);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => break,
            Err(mpsc::RecvTimeoutError::Disconnected) => return None,
        }
    }
    Some(changed)
}

/// The state files whose changes other processes make (settings, devices, DM requests and
/// allowlists).
fn is_state_file(p: &Path) -> bool {
    let Some(name) = p.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    !name.starts_with('.') && name.ends_with(".json")
}

/// The watch on a service's state directory; stops when the last holder drops it.
pub struct StateWatch {
    _dirs: DirWatch,
    _own: HookGuard,
}

/// Changes this process published since the watcher last looked (at most [`OWN_MAX`]; past
/// that the next look reads everything again).
#[derive(Default)]
struct OwnChanges {
    events: Vec<Event>,
    overflowed: bool,
}

const OWN_MAX: usize = 4096;

thread_local! {
    /// Set on the watcher's own thread: what it publishes came from the files already.
    static ON_WATCHER: Cell<bool> = const { Cell::new(false) };
}

/// Starts watching `service`'s state directory, publishing what other processes change on its
/// bus. Holders share one watch per service ([`Service::watch_state`] keeps it).
pub fn start(service: &Arc<Service>) -> Result<StateWatch, String> {
    let p = service.paths();
    let dirs = [p.root().to_path_buf(), p.devices_dir(), p.credentials_dir()];
    let (dirs, rx) = DirWatch::new(&dirs, is_state_file)?;
    let own = Arc::new(Mutex::new(OwnChanges::default()));
    let hook = service.events().on_publish({
        let own = own.clone();
        move |e| {
            if ON_WATCHER.with(Cell::get) || !Snapshot::follows(e) {
                return;
            }
            if let Ok(mut o) = own.lock() {
                if o.events.len() < OWN_MAX {
                    o.events.push(e.clone());
                } else {
                    o.overflowed = true;
                }
            }
        }
    });
    let weak = Arc::downgrade(service);
    std::thread::Builder::new()
        .name("state-watch".into())
        .spawn(move || follow(rx, weak, own))
        .map_err(|e| format!("cannot start the state watcher: {e}"))?;
    Ok(StateWatch {
        _dirs: dirs,
        _own: hook,
    })
}

fn follow(rx: mpsc::Receiver<PathBuf>, service: Weak<Service>, own: Arc<Mutex<OwnChanges>>) {
    ON_WATCHER.with(|w| w.set(true));
    let mut seen = match service.upgrade() {
        Some(s) => Snapshot::read(&s).unwrap_or_default(),
        None => return,
    };
    // Only once the burst settles: this process publishes its own changes just after writing
    // them, and a look taken sooner would publish the copy first, as news.
    while let Some(changed) = next_burst(&rx) {
        if !look(&service, &mut seen, &changed, &own) {
            return;
        }
    }
}

/// Takes what this process published since the last call.
fn drain(own: &Mutex<OwnChanges>) -> OwnChanges {
    own.lock()
        .map(|mut o| std::mem::take(&mut *o))
        .unwrap_or_default()
}

/// Reads again what `changed` holds and publishes what differs from `seen`. False once the
/// service is gone.
fn look(
    service: &Weak<Service>,
    seen: &mut Snapshot,
    changed: &BTreeSet<PathBuf>,
    own: &Mutex<OwnChanges>,
) -> bool {
    let Some(s) = service.upgrade() else {
        return false;
    };
    let ttl = s.settings().device_pending_ttl_ms();
    // This process's changes made before the files are read: part of what was known.
    let before = drain(own);
    let synced = seen.own(&before.events, ttl);
    let read = if before.overflowed {
        Snapshot::read(&s)
    } else {
        seen.refresh(&s, changed)
    };
    match read {
        Ok(mut now) => {
            // Those published while the files were being read may or may not be in what was
            // read: taken as known on both sides, so they are news on neither.
            let during = drain(own);
            let late = seen.own(&during.events, ttl);
            let _ = now.own(&during.events, ttl);
            seen.sync(&now, &synced, true);
            seen.sync(&now, &late, false);
            for ev in seen.changes(&now, s.now_ms()) {
                s.events().publish_unless_recent(ev);
            }
            *seen = now;
        }
        // Kept as it was: the next change reads again.
        Err(e) => tracing::warn!("state watcher could not read the store: {e}"),
    }
    true
}

/// What this process's own changes say to copy from what the files hold, once read.
#[derive(Debug, Default)]
struct Synced {
    /// Devices approved or changed here.
    devices: BTreeSet<String>,
    /// Allowlists changed here.
    allow: BTreeSet<(String, String)>,
    settings: bool,
}

/// One device as far as changes to it matter.
#[derive(Debug, Clone, PartialEq, Default)]
struct DeviceSeen {
    label: Option<String>,
    roles: BTreeSet<String>,
    scopes: BTreeSet<String>,
    approved_at_ms: Millis,
    /// Role → (when its token was made or last rotated, whether it is live).
    tokens: BTreeMap<String, (Millis, bool)>,
}

impl From<&PairedDeviceView> for DeviceSeen {
    fn from(d: &PairedDeviceView) -> Self {
        DeviceSeen {
            label: d.operator_label.clone(),
            roles: d.roles.iter().cloned().collect(),
            scopes: d.approved_scopes.iter().cloned().collect(),
            approved_at_ms: d.approved_at_ms,
            tokens: d
                .tokens
                .iter()
                .map(|t| {
                    let made = t.rotated_at_ms.unwrap_or(t.created_at_ms);
                    (t.role.clone(), (made, t.revoked_at_ms.is_none()))
                })
                .collect(),
        }
    }
}

/// `(channel, account, code)` of a DM request.
type DmKey = (String, String, String);

/// What the store held when last read, as far as events go.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    /// Live requests by id, with their expiry.
    pending: BTreeMap<String, (PendingDevice, Millis)>,
    paired: BTreeMap<String, DeviceSeen>,
    dm: BTreeMap<DmKey, DmRequestView>,
    allow: BTreeMap<(String, String), BTreeSet<String>>,
    settings: serde_json::Value,
}

impl Snapshot {
    pub fn read(s: &Service) -> Result<Snapshot, String> {
        let devices = s.device_list().map_err(|e| e.to_string())?;
        let dm = s.dm_list(None).map_err(|e| e.to_string())?;
        let allow = s.allow_list(None).map_err(|e| e.to_string())?;
        let mut snap = Snapshot {
            pending: devices
                .pending
                .into_iter()
                .map(|p| (p.request.request_id.clone(), (p.request, p.expires_at_ms)))
                .collect(),
            paired: devices
                .paired
                .iter()
                .map(|d| (d.device_id.clone(), DeviceSeen::from(d)))
                .collect(),
            dm: dm
                .into_iter()
                .map(|r| ((r.channel.clone(), r.account_id.clone(), r.code.clone()), r))
                .collect(),
            allow: BTreeMap::new(),
            settings: serde_json::to_value(&*s.settings()).unwrap_or_default(),
        };
        for a in allow {
            snap.allow
                .entry((a.channel, a.account_id))
                .or_default()
                .insert(a.sender_id);
        }
        Ok(snap)
    }

    /// `self` with what `changed` files hold read again: only the channels, devices or
    /// settings those files are, so a gateway with thousands of channels does not re-read them
    /// all for every write (its own writes wake the watch too). A file it cannot place is
    /// read with everything.
    pub fn refresh(&self, s: &Service, changed: &BTreeSet<PathBuf>) -> Result<Snapshot, String> {
        let p = s.paths();
        let (devices_dir, credentials_dir) = (p.devices_dir(), p.credentials_dir());
        let mut next = self.clone();
        let mut devices = false;
        let mut settings = false;
        let mut pairing = BTreeSet::new();
        let mut allow = BTreeSet::new();
        for file in changed {
            let dir = file.parent().unwrap_or(Path::new(""));
            let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if dir == devices_dir {
                devices = true;
            } else if dir == credentials_dir {
                if let Some(ch) = name.strip_suffix("-pairing.json") {
                    pairing.insert(ch.to_string());
                } else if let Some(prefix) = name.strip_suffix("-allowFrom.json") {
                    // `<channel>-allowFrom.json` or `<channel>-<account>-allowFrom.json`, and a
                    // channel's name may hold dashes: both readings are looked at.
                    allow.insert(prefix.to_string());
                    if let Some((ch, _)) = prefix.split_once('-') {
                        allow.insert(ch.to_string());
                    }
                }
                // Other files there (offsets, locks) are not part of the snapshot.
            } else if file.as_path() == p.settings() {
                settings = true;
            } else {
                return Snapshot::read(s);
            }
        }
        if devices {
            let d = s.device_list().map_err(|e| e.to_string())?;
            next.pending = d
                .pending
                .into_iter()
                .map(|p| (p.request.request_id.clone(), (p.request, p.expires_at_ms)))
                .collect();
            next.paired = d
                .paired
                .iter()
                .map(|d| (d.device_id.clone(), DeviceSeen::from(d)))
                .collect();
        }
        for ch in pairing.iter().filter(|c| ChannelName::parse(c).is_ok()) {
            next.dm.retain(|k, _| &k.0 != ch);
            for r in s.dm_list(Some(ch)).map_err(|e| e.to_string())? {
                next.dm
                    .insert((r.channel.clone(), r.account_id.clone(), r.code.clone()), r);
            }
        }
        for ch in allow.iter().filter(|c| ChannelName::parse(c).is_ok()) {
            next.allow.retain(|k, _| &k.0 != ch);
            for a in s.allow_list(Some(ch)).map_err(|e| e.to_string())? {
                next.allow
                    .entry((a.channel, a.account_id))
                    .or_default()
                    .insert(a.sender_id);
            }
        }
        if settings {
            next.settings = serde_json::to_value(&*s.settings()).unwrap_or_default();
        }
        Ok(next)
    }

    /// Whether [`Snapshot::own`] takes account of `e`.
    fn follows(e: &Event) -> bool {
        matches!(
            e,
            Event::DevicePairRequested(_)
                | Event::DevicePairResolved { .. }
                | Event::DevicePairChanged { .. }
                | Event::DeviceChanged { .. }
                | Event::PairingRequested(_)
                | Event::PairingResolved { .. }
                | Event::AllowlistChanged { .. }
                | Event::SettingsChanged {}
        )
    }

    /// Takes in the changes this process made (`events`, as published): the requests they
    /// open or close directly; what else they touched is returned, to copy from the files.
    fn own(&mut self, events: &[Event], ttl_ms: Millis) -> Synced {
        let mut synced = Synced::default();
        for e in events {
            match e {
                Event::DevicePairRequested(r) => {
                    self.pending
                        .insert(r.request_id.clone(), (r.clone(), r.expires_ms(ttl_ms)));
                }
                Event::DevicePairResolved {
                    request_id,
                    device_id,
                    decision,
                    ..
                } => {
                    self.pending.remove(request_id);
                    if *decision == Resolution::Approved {
                        synced.devices.insert(device_id.clone());
                    }
                }
                Event::DeviceChanged {
                    device_id,
                    change: DeviceChange::Removed,
                    ..
                } => {
                    self.paired.remove(device_id);
                    synced.devices.remove(device_id);
                }
                Event::DeviceChanged { device_id, .. }
                | Event::DevicePairChanged { device_id, .. } => {
                    synced.devices.insert(device_id.clone());
                }
                Event::PairingRequested(r) => {
                    self.dm.insert(
                        (r.channel.clone(), r.account_id.clone(), r.code.clone()),
                        r.clone(),
                    );
                }
                Event::PairingResolved {
                    channel,
                    account_id,
                    code,
                    ..
                } => {
                    self.dm
                        .remove(&(channel.clone(), account_id.clone(), code.clone()));
                    synced.allow.insert((channel.clone(), account_id.clone()));
                }
                Event::AllowlistChanged {
                    channel,
                    account_id,
                } => {
                    synced.allow.insert((channel.clone(), account_id.clone()));
                }
                Event::SettingsChanged {} => synced.settings = true,
                _ => {}
            }
        }
        synced
    }

    /// Copies from `now` what this process's own changes touched. A device changed here that
    /// the files no longer hold was removed by another process since: when `before_read`, it
    /// is kept (so the removal is news); otherwise it may have been written after the read.
    fn sync(&mut self, now: &Snapshot, synced: &Synced, before_read: bool) {
        for id in &synced.devices {
            match now.paired.get(id) {
                Some(d) => {
                    self.paired.insert(id.clone(), d.clone());
                }
                None if before_read => {
                    self.paired.entry(id.clone()).or_default();
                }
                None => {
                    self.paired.remove(id);
                }
            }
        }
        for k in &synced.allow {
            match now.allow.get(k) {
                Some(l) => self.allow.insert(k.clone(), l.clone()),
                None => self.allow.remove(k),
            };
        }
        if synced.settings {
            self.settings = now.settings.clone();
        }
    }

    /// The events that turn `self` into `now`. Requests that vanished because they expired
    /// are left to the expiry sweep, which publishes those.
    pub fn changes(&self, now: &Snapshot, now_ms: Millis) -> Vec<Event> {
        let mut out = Vec::new();
        self.device_changes(now, now_ms, &mut out);
        self.dm_changes(now, now_ms, &mut out);
        if self.settings != now.settings {
            out.push(Event::SettingsChanged {});
            // A new admin token written by another process (or by hand) ends the sessions
            // that used the old one, as a rotation here does.
            let token = |s: &Value| s.pointer("/gateway/auth/token").cloned();
            if token(&self.settings) != token(&now.settings) && token(&self.settings).is_some() {
                out.push(Event::GatewayTokenRotated { ts: now_ms });
            }
        }
        out
    }

    fn device_changes(&self, now: &Snapshot, now_ms: Millis, out: &mut Vec<Event>) {
        for (id, (r, _)) in &now.pending {
            if !self.pending.contains_key(id) {
                out.push(Event::DevicePairRequested(r.clone()));
            }
        }
        let mut approved_devices = BTreeSet::new();
        for (id, (r, expires_at)) in &self.pending {
            if now.pending.contains_key(id) || *expires_at <= now_ms {
                continue;
            }
            let replaced = now
                .pending
                .values()
                .any(|(n, _)| n.device_id == r.device_id && n.role == r.role);
            let before = self.paired.get(&r.device_id);
            let approved = now.paired.get(&r.device_id).is_some_and(|d| {
                d.roles.contains(&r.role)
                    && before.is_none_or(|b| {
                        b.approved_at_ms != d.approved_at_ms || b.scopes != d.scopes
                    })
            });
            let decision = if approved {
                approved_devices.insert(r.device_id.clone());
                Resolution::Approved
            } else if replaced {
                Resolution::Superseded
            } else {
                Resolution::Rejected
            };
            out.push(Event::DevicePairResolved {
                request_id: id.clone(),
                device_id: r.device_id.clone(),
                decision,
                ts: now_ms,
            });
        }
        let changed =
            |device_id: &str, change: DeviceChange, role: Option<&str>| Event::DeviceChanged {
                device_id: device_id.into(),
                change,
                role: role.map(Into::into),
                ts: now_ms,
            };
        for (id, before) in &self.paired {
            let Some(after) = now.paired.get(id) else {
                out.push(changed(id, DeviceChange::Removed, None));
                continue;
            };
            for (role, (made, live)) in &before.tokens {
                match after.tokens.get(role) {
                    Some((m, true)) if *live && m != made => {
                        out.push(changed(id, DeviceChange::Rotated, Some(role)))
                    }
                    Some((_, false)) | None if *live => {
                        out.push(changed(id, DeviceChange::Revoked, Some(role)))
                    }
                    _ => {}
                }
            }
            for role in before.roles.difference(&after.roles) {
                if !before.tokens.get(role).is_some_and(|(_, live)| *live) {
                    out.push(changed(id, DeviceChange::Revoked, Some(role)));
                }
            }
            if before.label != after.label {
                out.push(Event::DevicePairChanged {
                    device_id: id.clone(),
                    ts: now_ms,
                });
            }
        }
        // A device that appeared with no request approved for it (written by hand, imported).
        for id in now.paired.keys() {
            if !self.paired.contains_key(id) && !approved_devices.contains(id) {
                out.push(Event::DevicePairChanged {
                    device_id: id.clone(),
                    ts: now_ms,
                });
            }
        }
    }

    fn dm_changes(&self, now: &Snapshot, now_ms: Millis, out: &mut Vec<Event>) {
        for (k, r) in &now.dm {
            if !self.dm.contains_key(k) {
                out.push(Event::PairingRequested(r.clone()));
            }
        }
        for ((channel, account, code), r) in &self.dm {
            let key = (channel.clone(), account.clone(), code.clone());
            let expired = crate::clock::ms_from_iso(&r.expires_at).is_some_and(|at| at <= now_ms);
            if now.dm.contains_key(&key) || expired {
                continue;
            }
            let allowed = now
                .allow
                .get(&(channel.clone(), account.clone()))
                .is_some_and(|l| l.contains(&r.id));
            out.push(Event::PairingResolved {
                channel: channel.clone(),
                account_id: account.clone(),
                sender_id: r.id.clone(),
                code: code.clone(),
                decision: if allowed {
                    Resolution::Approved
                } else {
                    Resolution::Rejected
                },
                notify: false,
            });
        }
        let accounts: BTreeSet<_> = self.allow.keys().chain(now.allow.keys()).collect();
        for k in accounts {
            if self.allow.get(k) != now.allow.get(k) {
                out.push(Event::AllowlistChanged {
                    channel: k.0.clone(),
                    account_id: k.1.clone(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::service::InboundDm;
    use crate::store::{AccountId, StatePaths};

    #[test]
    fn a_refresh_of_the_changed_files_reads_what_a_full_read_does() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = Service::open(
            StatePaths::new(dir.path().join("state")),
            Arc::new(SystemClock),
        )
        .unwrap();
        let inbound = |channel: &str, sender: &str| {
            s.dm_inbound(&InboundDm {
                channel: channel.into(),
                account: None,
                sender: sender.into(),
                text: None,
                meta: Default::default(),
                is_group: false,
            })
            .unwrap()
        };
        inbound("alpha", "a1");
        inbound("beta-x", "b1");
        let before = Snapshot::read(&s).unwrap();
        assert_eq!(before.dm.len(), 2);
        inbound("alpha", "a2");
        s.allow_add("gamma", Some("work"), "g9", "test").unwrap();
        let p = s.paths();
        let changed = BTreeSet::from([
            p.pairing_file(&ChannelName::parse("alpha").unwrap()),
            p.allow_file(
                &ChannelName::parse("gamma").unwrap(),
                &AccountId::parse("work").unwrap(),
            ),
        ]);
        let refreshed = before.refresh(&s, &changed).unwrap();
        let full = Snapshot::read(&s).unwrap();
        let now = s.now_ms();
        assert!(refreshed.changes(&full, now).is_empty());
        assert!(full.changes(&refreshed, now).is_empty());
        assert_eq!(refreshed.dm.len(), 3, "the untouched channel is kept");
        let seen = before.changes(&refreshed, now);
        assert!(seen
            .iter()
            .any(|e| matches!(e, Event::PairingRequested(r) if r.id == "a2")));
        assert!(seen.iter().any(|e| matches!(
            e,
            Event::AllowlistChanged { channel, account_id } if channel == "gamma" && account_id == "work"
        )));
        // A file the watch cannot place is read with everything.
        let odd = BTreeSet::from([p.root().join("other.json")]);
        assert!(before
            .refresh(&s, &odd)
            .unwrap()
            .changes(&full, now)
            .is_empty());
    }

    fn request(id: &str, device: &str, role: &str) -> PendingDevice {
        serde_json::from_value(serde_json::json!({
            "requestId": id, "deviceId": device, "publicKey": "k", "role": role,
            "fingerprint": "f", "ts": 0,
        }))
        .unwrap()
    }

    fn dm(code: &str, sender: &str, expires_at: &str) -> DmRequestView {
        DmRequestView {
            channel: "telegram".into(),
            account_id: "default".into(),
            invalid_name: false,
            id: sender.into(),
            code: code.into(),
            created_at: String::new(),
            last_seen_at: String::new(),
            expires_at: expires_at.into(),
            meta: Default::default(),
        }
    }

    fn decisions(events: &[Event]) -> Vec<(String, String)> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::DevicePairResolved {
                    request_id,
                    decision,
                    ..
                } => Some((request_id.clone(), decision.to_string())),
                Event::DeviceChanged {
                    device_id,
                    change,
                    role,
                    ..
                } => Some((
                    format!("{device_id}/{}", role.as_deref().unwrap_or("")),
                    change.to_string(),
                )),
                Event::PairingResolved { code, decision, .. } => {
                    Some((code.clone(), decision.to_string()))
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn requests_that_vanish_read_as_the_owners_decisions() {
        let mut before = Snapshot::default();
        for (id, device) in [("r1", "d1"), ("r2", "d2"), ("r3", "d3"), ("r4", "d4")] {
            before
                .pending
                .insert(id.into(), (request(id, device, "node"), 1_000));
        }
        let mut after = Snapshot::default();
        // d1 paired as asked; d2 gone without pairing; d3 asked again; r4 expired (the sweep's).
        after.paired.insert(
            "d1".into(),
            DeviceSeen {
                roles: ["node".to_string()].into(),
                approved_at_ms: 500,
                ..Default::default()
            },
        );
        after
            .pending
            .insert("r5".into(), (request("r5", "d3", "node"), 2_000));
        let events = before.changes(&after, 900);
        let mut got = decisions(&events);
        got.sort();
        assert_eq!(
            got,
            [
                ("r1".to_string(), "approved".to_string()),
                ("r2".into(), "rejected".into()),
                ("r3".into(), "superseded".into()),
                ("r4".into(), "rejected".into()),
            ]
        );
        assert!(events
            .iter()
            .any(|e| matches!(e, Event::DevicePairRequested(r) if r.request_id == "r5")));
        // Once r4 is past its expiry, its vanishing is the sweep's to announce.
        assert!(!decisions(&before.changes(&after, 1_000))
            .iter()
            .any(|(id, _)| id == "r4"));
        // Nothing changed, nothing published.
        assert!(after.changes(&after.clone(), 900).is_empty());
    }

    #[test]
    fn removed_revoked_and_rotated_devices_are_told_apart() {
        let seen = |tokens: &[(&str, Millis, bool)]| DeviceSeen {
            roles: tokens.iter().map(|t| t.0.to_string()).collect(),
            tokens: tokens
                .iter()
                .map(|(r, m, live)| (r.to_string(), (*m, *live)))
                .collect(),
            ..Default::default()
        };
        let mut before = Snapshot::default();
        before
            .paired
            .insert("gone".into(), seen(&[("node", 1, true)]));
        before.paired.insert(
            "kept".into(),
            seen(&[("node", 1, true), ("operator", 1, true)]),
        );
        let mut after = Snapshot::default();
        after.paired.insert(
            "kept".into(),
            seen(&[("node", 2, true), ("operator", 1, false)]),
        );
        let mut got = decisions(&before.changes(&after, 10));
        got.sort();
        assert_eq!(
            got,
            [
                ("gone/".to_string(), "removed".to_string()),
                ("kept/node".into(), "rotated".into()),
                ("kept/operator".into(), "revoked".into()),
            ]
        );
    }

    #[test]
    fn dm_requests_resolve_by_whether_the_sender_was_allowed() {
        let later = "2999-01-01T00:00:00.000Z";
        let mut before = Snapshot::default();
        before.dm.insert(
            ("telegram".into(), "default".into(), "AAAA2222".into()),
            dm("AAAA2222", "1", later),
        );
        before.dm.insert(
            ("telegram".into(), "default".into(), "BBBB3333".into()),
            dm("BBBB3333", "2", later),
        );
        let mut after = Snapshot::default();
        after.allow.insert(
            ("telegram".into(), "default".into()),
            ["1".to_string()].into(),
        );
        let events = before.changes(&after, 0);
        let mut got = decisions(&events);
        got.sort();
        assert_eq!(
            got,
            [
                ("AAAA2222".to_string(), "approved".to_string()),
                ("BBBB3333".into(), "rejected".into()),
            ]
        );
        assert!(events
            .iter()
            .any(|e| matches!(e, Event::AllowlistChanged { .. })));
    }
}
