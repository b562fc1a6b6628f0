//! Live device connections by device id, so removing a device or rotating/revoking its token
//! closes its sockets at once.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::clock::Millis;

struct Entry {
    conn_id: u64,
    role: String,
    /// When the connection was let in: a token made later is not the one it showed.
    since_ms: Millis,
    kick: Arc<Notify>,
}

/// The key the sessions authenticated with the admin token are registered under (never a
/// device id, which is 64 hex digits).
pub const ADMIN_SESSIONS: &str = "admin-token";

#[derive(Default, Clone)]
pub struct Registry {
    by_device: Arc<Mutex<HashMap<String, Vec<Entry>>>>,
}

/// Unregisters the connection when dropped.
pub struct Registration {
    registry: Registry,
    device_id: String,
    conn_id: u64,
    pub kick: Arc<Notify>,
}

impl Registration {
    pub fn device_id(&self) -> &str {
        &self.device_id
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Ok(mut m) = self.registry.by_device.lock() {
            if let Some(v) = m.get_mut(&self.device_id) {
                v.retain(|e| e.conn_id != self.conn_id);
                if v.is_empty() {
                    m.remove(&self.device_id);
                }
            }
        }
    }
}

impl Registry {
    pub fn register(
        &self,
        device_id: &str,
        role: &str,
        conn_id: u64,
        since_ms: Millis,
    ) -> Registration {
        let kick = Arc::new(Notify::new());
        if let Ok(mut m) = self.by_device.lock() {
            m.entry(device_id.to_string()).or_default().push(Entry {
                conn_id,
                role: role.to_string(),
                since_ms,
                kick: kick.clone(),
            });
        }
        Registration {
            registry: self.clone(),
            device_id: device_id.to_string(),
            conn_id,
            kick,
        }
    }

    /// Closes the device's connections (of one role, or all). Returns how many.
    pub fn kick(&self, device_id: &str, role: Option<&str>) -> usize {
        let Ok(m) = self.by_device.lock() else {
            return 0;
        };
        let Some(v) = m.get(device_id) else { return 0 };
        let mut n = 0;
        for e in v.iter().filter(|e| role.is_none_or(|r| r == e.role)) {
            e.kick.notify_one();
            n += 1;
        }
        n
    }

    /// The devices and roles connected now (not the admin token's sessions).
    pub fn sessions(&self) -> BTreeSet<(String, String)> {
        let Ok(m) = self.by_device.lock() else {
            return BTreeSet::new();
        };
        m.iter()
            .filter(|(id, _)| id.as_str() != ADMIN_SESSIONS)
            .flat_map(|(id, v)| v.iter().map(|e| (id.clone(), e.role.clone())))
            .collect()
    }

    /// Closes the connections of one device and role that were let in before `before_ms`
    /// (all of them with `None`). Returns how many.
    pub fn kick_older(&self, device_id: &str, role: &str, before_ms: Option<Millis>) -> usize {
        let Ok(m) = self.by_device.lock() else {
            return 0;
        };
        let Some(v) = m.get(device_id) else { return 0 };
        let mut n = 0;
        for e in v
            .iter()
            .filter(|e| e.role == role && before_ms.is_none_or(|t| e.since_ms < t))
        {
            e.kick.notify_one();
            n += 1;
        }
        n
    }

    pub fn connected(&self, device_id: &str) -> usize {
        self.by_device
            .lock()
            .map(|m| m.get(device_id).map_or(0, Vec::len))
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn kick_reaches_matching_connections_and_drop_unregisters() {
        let r = Registry::default();
        let a = r.register("d1", "node", 1, 0);
        let b = r.register("d1", "operator", 2, 0);
        assert_eq!(r.kick("d1", Some("node")), 1);
        tokio::time::timeout(std::time::Duration::from_secs(1), a.kick.notified())
            .await
            .unwrap();
        assert_eq!(r.kick("d1", None), 2);
        drop(a);
        drop(b);
        assert_eq!(r.connected("d1"), 0);
        assert_eq!(r.kick("d1", None), 0);
    }
}
