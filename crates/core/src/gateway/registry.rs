//! Live sessions by the credentials they were let in with, so that taking any of them away —
//! rotating the admin token, revoking a role, removing a device — closes every session that
//! used it, whatever else it presented. It also bounds how many sessions one device may hold.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::clock::Millis;

/// The key the sessions authenticated with the admin token are registered under (never a
/// device id, which is 64 hex digits).
pub const ADMIN_SESSIONS: &str = "admin-token";

/// A credential a session used: the admin token, or a device's token for a role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    AdminToken,
    Device { device_id: String, role: String },
}

impl Credential {
    fn key(&self) -> (&str, &str) {
        match self {
            Credential::AdminToken => (ADMIN_SESSIONS, ""),
            Credential::Device { device_id, role } => (device_id, role),
        }
    }
}

/// A session's one kick: fired once, seen by the session before it serves anything more.
#[derive(Default)]
pub struct Kick {
    fired: AtomicBool,
    notify: Notify,
}

impl Kick {
    fn fire(&self) {
        self.fired.store(true, Ordering::SeqCst);
        self.notify.notify_one();
    }
    /// Whether a credential of the session was taken away.
    pub fn fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }
    /// Until a credential of the session is taken away.
    pub async fn wait(&self) {
        if !self.fired() {
            self.notify.notified().await;
        }
    }
}

struct Entry {
    conn_id: u64,
    role: String,
    /// When the connection was let in: a token made later is not the one it showed.
    since_ms: Millis,
    kick: Arc<Kick>,
}

#[derive(Default, Clone)]
pub struct Registry {
    by_key: Arc<Mutex<HashMap<String, Vec<Entry>>>>,
}

/// A session's place in the registry; unregisters it when dropped.
pub struct Registration {
    registry: Registry,
    keys: Vec<String>,
    conn_id: u64,
    pub kick: Arc<Kick>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Ok(mut m) = self.registry.by_key.lock() {
            for key in &self.keys {
                if let Some(v) = m.get_mut(key) {
                    v.retain(|e| e.conn_id != self.conn_id);
                    if v.is_empty() {
                        m.remove(key);
                    }
                }
            }
        }
    }
}

/// A device already holds as many sessions as it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManySessions(pub usize);

impl Registry {
    /// Registers a session under every credential it used, with one kick for all of them.
    /// Refused when a device among them already holds `max_per_device` sessions (the check
    /// and the registration are one step, so racing connects cannot pass it together).
    pub fn register(
        &self,
        conn_id: u64,
        since_ms: Millis,
        credentials: &[Credential],
        max_per_device: usize,
    ) -> Result<Registration, TooManySessions> {
        let kick = Arc::new(Kick::default());
        let mut keys = Vec::with_capacity(credentials.len());
        if let Ok(mut m) = self.by_key.lock() {
            for c in credentials {
                let (key, _) = c.key();
                let held = m.get(key).map_or(0, Vec::len);
                if matches!(c, Credential::Device { .. }) && held >= max_per_device {
                    return Err(TooManySessions(max_per_device));
                }
            }
            for c in credentials {
                let (key, role) = c.key();
                m.entry(key.to_string()).or_default().push(Entry {
                    conn_id,
                    role: role.to_string(),
                    since_ms,
                    kick: kick.clone(),
                });
                keys.push(key.to_string());
            }
        }
        Ok(Registration {
            registry: self.clone(),
            keys,
            conn_id,
            kick,
        })
    }

    /// Closes the sessions that used a device (for one role, or any), or the admin token
    /// (`ADMIN_SESSIONS`). Returns how many.
    pub fn kick(&self, key: &str, role: Option<&str>) -> usize {
        self.kick_where(key, |e| role.is_none_or(|r| r == e.role))
    }

    /// Closes the sessions of one device and role that were let in before `before_ms` (all of
    /// them with `None`). Returns how many.
    pub fn kick_older(&self, device_id: &str, role: &str, before_ms: Option<Millis>) -> usize {
        self.kick_where(device_id, |e| {
            e.role == role && before_ms.is_none_or(|t| e.since_ms < t)
        })
    }

    fn kick_where(&self, key: &str, which: impl Fn(&Entry) -> bool) -> usize {
        let Ok(m) = self.by_key.lock() else {
            return 0;
        };
        let Some(v) = m.get(key) else { return 0 };
        let mut n = 0;
        for e in v.iter().filter(|e| which(e)) {
            e.kick.fire();
            n += 1;
        }
        n
    }

    /// The devices and roles connected now (not the admin token's sessions).
    pub fn sessions(&self) -> BTreeSet<(String, String)> {
        let Ok(m) = self.by_key.lock() else {
            return BTreeSet::new();
        };
        m.iter()
            .filter(|(id, _)| id.as_str() != ADMIN_SESSIONS)
            .flat_map(|(id, v)| v.iter().map(|e| (id.clone(), e.role.clone())))
            .collect()
    }

    /// Sessions registered under a device (or `ADMIN_SESSIONS`).
    pub fn connected(&self, key: &str) -> usize {
        self.by_key
            .lock()
            .map(|m| m.get(key).map_or(0, Vec::len))
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(id: &str, role: &str) -> Credential {
        Credential::Device {
            device_id: id.into(),
            role: role.into(),
        }
    }

    #[tokio::test]
    async fn kick_reaches_matching_connections_and_drop_unregisters() {
        let r = Registry::default();
        let a = r.register(1, 0, &[device("d1", "node")], 8).unwrap();
        let b = r.register(2, 0, &[device("d1", "operator")], 8).unwrap();
        assert_eq!(r.kick("d1", Some("node")), 1);
        tokio::time::timeout(std::time::Duration::from_secs(1), a.kick.wait())
            .await
            .unwrap();
        assert!(a.kick.fired() && !b.kick.fired());
        assert_eq!(r.kick("d1", None), 2);
        drop(a);
        drop(b);
        assert_eq!(r.connected("d1"), 0);
        assert_eq!(r.kick("d1", None), 0);
    }

    #[test]
    fn a_session_is_kicked_by_any_credential_it_used() {
        let r = Registry::default();
        let both = r
            .register(1, 0, &[Credential::AdminToken, device("d1", "operator")], 8)
            .unwrap();
        assert_eq!(r.kick(ADMIN_SESSIONS, None), 1);
        assert!(both.kick.fired(), "the admin token's rotation reaches it");
        let other = r
            .register(2, 0, &[Credential::AdminToken, device("d2", "operator")], 8)
            .unwrap();
        assert_eq!(r.kick("d2", None), 1);
        assert!(other.kick.fired(), "and so does its device's removal");
        drop(both);
        drop(other);
        assert_eq!(r.connected(ADMIN_SESSIONS), 0);
        assert_eq!(r.connected("d1"), 0);
    }

    #[test]
    fn a_device_holds_at_most_its_share_of_sessions() {
        let r = Registry::default();
        let held: Vec<_> = (0..3)
            .map(|i| r.register(i, 0, &[device("d1", "node")], 3).unwrap())
            .collect();
        assert_eq!(
            r.register(9, 0, &[device("d1", "node")], 3).err(),
            Some(TooManySessions(3))
        );
        assert_eq!(r.connected("d1"), 3, "the refused one left nothing");
        // The admin token has no such bound; another device has its own.
        assert!(r.register(10, 0, &[device("d2", "node")], 3).is_ok());
        drop(held);
        assert!(r.register(11, 0, &[device("d1", "node")], 3).is_ok());
    }
}
