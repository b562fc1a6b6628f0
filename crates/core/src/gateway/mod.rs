//! The WebSocket gateway (SPEC §5): phones, the CLI, channel bridges and the tray app connect
//! here. A library component: the headless `clawpair gateway` and the tray app both run it.

mod conn;
pub mod connect;
pub mod frames;
pub mod guard;
pub mod limits;
pub mod proxy;
pub mod registry;
pub mod stream;
pub mod trim;

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{watch, Notify, Semaphore};

pub use limits::Limits;

use crate::clock::Millis;
use crate::events::Event;
use crate::protocol::DeviceChange;
use crate::service::Service;
use crate::store::runrec::{self, GatewayRecord, RunLock};

/// Device use (last seen, token last used) collected in memory and written in batches, so a
/// handshake never waits for a disk write.
#[derive(Default)]
pub struct Touches {
    map: Mutex<HashMap<(String, String), Millis>>,
    notify: Notify,
}

impl Touches {
    pub fn touch(&self, device: &str, role: &str, at: Millis) {
        if let Ok(mut m) = self.map.lock() {
            m.insert((device.to_string(), role.to_string()), at);
        }
        self.notify.notify_one();
    }
    fn take(&self) -> Vec<(String, String, Millis)> {
        self.map
            .lock()
            .map(|mut m| m.drain().map(|((d, r), t)| (d, r, t)).collect())
            .unwrap_or_default()
    }
}

/// State shared by every connection.
pub struct Shared {
    pub service: Arc<Service>,
    pub limits: Limits,
    pub guard: guard::Guard,
    pub registry: registry::Registry,
    pub touches: Touches,
    /// Gives freed memory back to the system after large messages.
    pub trimmer: trim::Trimmer,
    /// Device keys already seen to sign, decoded once for the whole process.
    pub known_keys: crate::pairing::keys::KnownKeys,
    /// `hello-ok.features` for each role and protocol, printed once.
    pub hello_features: conn::HelloFeatures,
    next_conn: AtomicU64,
    pub local_addr: SocketAddr,
    /// With `gateway.tls`: what connections are accepted with, and the certificate's SHA-256.
    pub tls: Option<crate::tls::server::ServerTls>,
    pub shutdown: watch::Receiver<bool>,
    /// When the gateway started (`hello-ok.snapshot.uptimeMs`).
    pub started: std::time::Instant,
}

impl Shared {
    fn next_conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Current settings (see [`Service::settings_off_thread`]).
    pub async fn settings(&self) -> Arc<crate::config::Settings> {
        self.service.settings_off_thread().await
    }
}

/// Stops a running gateway.
#[derive(Clone)]
pub struct ShutdownHandle(Arc<watch::Sender<bool>>);

impl ShutdownHandle {
    pub fn shutdown(&self) {
        let _ = self.0.send(true);
    }
}

/// A bound gateway, ready to run.
pub struct Gateway {
    shared: Arc<Shared>,
    listener: TcpListener,
    shutdown_tx: Arc<watch::Sender<bool>>,
    /// The hold on `run/gateway.lock` that makes `run/gateway.json` believable; `None` when
    /// no record is kept.
    run_lock: Option<RunLock>,
}

/// Lets the process hold as many sockets as the hard limit allows (10,000 idle phones need
/// more than the usual soft limit of 1,024).
pub fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit on a local struct; failure leaves the limit as it was.
    unsafe {
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 && r.rlim_cur < r.rlim_max {
            r.rlim_cur = r.rlim_max.min(1 << 20);
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}

/// A listening socket with our accept backlog (tokio's `bind` uses 128), and without Nagle's
/// delay: on Linux the connections it accepts inherit that, which saves each one a system call
/// ([`set_nodelay`]).
fn listen(addr: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// Frames go out as they are written (no Nagle delay): set on an accepted connection where it
/// does not come from the listening socket.
pub(crate) fn set_nodelay(tcp: &tokio::net::TcpStream) {
    if !cfg!(target_os = "linux") {
        let _ = tcp.set_nodelay(true);
    }
}

impl Gateway {
    /// Binds the listening socket, holding `run/gateway.lock` first (so a second gateway for
    /// the same state directory is refused). Nothing is served until [`Gateway::run`].
    pub async fn bind(
        service: Arc<Service>,
        addr: SocketAddr,
        limits: Limits,
    ) -> io::Result<Gateway> {
        raise_fd_limit();
        let run_lock = RunLock::acquire(service.paths()).map_err(|e| match e {
            runrec::RunRecError::Busy { .. } => {
                io::Error::new(io::ErrorKind::AddrInUse, e.to_string())
            }
            other => io::Error::other(other.to_string()),
        })?;
        let server_tls = match service.settings().gateway.tls_on() {
            Some(t) => Some(
                crate::tls::server::load(t, service.paths())
                    .map_err(|e| io::Error::other(e.to_string()))?,
            ),
            None => None,
        };
        let listener = listen(addr, limits.accept_backlog)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
        let local_addr = listener.local_addr()?;
        let (tx, rx) = watch::channel(false);
        let guard = guard::Guard::new(limits.max_tracked_addresses);
        let known_keys = crate::pairing::keys::KnownKeys::new(limits.max_known_keys);
        let shared = Arc::new(Shared {
            service,
            limits,
            guard,
            registry: registry::Registry::default(),
            touches: Touches::default(),
            trimmer: trim::Trimmer::default(),
            known_keys,
            hello_features: conn::HelloFeatures::new(),
            next_conn: AtomicU64::new(0),
            local_addr,
            tls: server_tls,
            shutdown: rx,
            started: std::time::Instant::now(),
        });
        Ok(Gateway {
            shared,
            listener,
            shutdown_tx: Arc::new(tx),
            run_lock: Some(run_lock),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// With TLS on, the SHA-256 of the certificate served (what setup codes pin).
    pub fn tls_fingerprint(&self) -> Option<&str> {
        self.shared.tls.as_ref().map(|t| t.fingerprint.as_str())
    }

    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(self.shutdown_tx.clone())
    }

    /// Whether to write `run/gateway.json` and hold `run/gateway.lock` (on by default).
    pub fn with_run_record(mut self, on: bool) -> Self {
        if !on {
            self.run_lock = None;
        }
        self
    }

    /// Serves until shut down; then closes every connection (1001), writes what is pending,
    /// and removes the run record.
    pub async fn run(self) {
        let shared = self.shared.clone();
        let service = shared.service.clone();
        if let Some(lock) = &self.run_lock {
            let rec = GatewayRecord {
                pid: std::process::id(),
                address: shared.local_addr.to_string(),
                started_at_ms: service.now_ms(),
                version: env!("CARGO_PKG_VERSION").into(),
                tls_fingerprint: shared.tls.as_ref().map(|t| t.fingerprint.clone()),
            };
            if let Err(e) = lock.record(&rec) {
                tracing::warn!("could not record the running gateway: {e}");
            }
        }
        service.events().publish(Event::GatewayStatus {
            listening: true,
            address: Some(shared.local_addr.to_string()),
            error: None,
        });
        match &shared.tls {
            Some(t) => tracing::info!(
                "gateway listening on wss://{}/ (certificate SHA-256 {})",
                shared.local_addr,
                t.fingerprint
            ),
            None => tracing::info!("gateway listening on ws://{}/", shared.local_addr),
        }
        let registry = shared.registry.clone();
        let _kicks = service.events().on_publish(move |e| kick_for(&registry, e));
        let background = [
            tokio::spawn(flush_touches(shared.clone())),
            tokio::spawn(sweep_expired(shared.clone())),
        ];
        // Approvals and removals another process writes reach this gateway's sockets too.
        let _watch = service
            .watch_state()
            .map_err(|e| tracing::warn!("{e}; changes other processes make are not seen"))
            .ok();
        let reserve = shared
            .limits
            .loopback_reserve
            .min(shared.limits.max_connections);
        let slots = Arc::new(Semaphore::new(shared.limits.max_connections - reserve));
        let local_slots = Arc::new(Semaphore::new(reserve));
        let mut shutdown = shared.shutdown.clone();
        loop {
            tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok((tcp, peer)) => {
                        let at = Instant::now();
                        // When the shared slots are gone, a loopback peer may take one kept
                        // for local clients; its upgrade must then show no forwarding headers.
                        let permit = match slots.clone().try_acquire_owned() {
                            Ok(p) => Some((p, false)),
                            Err(_) if proxy::canonical(peer.ip()).is_loopback() => {
                                local_slots.clone().try_acquire_owned().ok().map(|p| (p, true))
                            }
                            Err(_) => None,
                        };
                        let Some((permit, reserved)) = permit else {
                            drop(tcp); // at capacity: refuse fast
                            continue;
                        };
                        let s = shared.clone();
                        tokio::spawn(async move {
                            conn::serve(s, tcp, peer, at, reserved).await;
                            drop(permit);
                        });
                    }
                    Err(e) => {
                        // Out of file descriptors or similar: back off instead of spinning.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                _ = shutdown.changed() => break,
            }
        }
        drop(self.listener);
        // Connections see the shutdown and close; wait for them a little.
        let (all, local) = (
            (shared.limits.max_connections - reserve) as u32,
            reserve as u32,
        );
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            let _ = slots.acquire_many(all).await;
            let _ = local_slots.acquire_many(local).await;
        })
        .await;
        for b in background {
            b.abort();
        }
        let s = shared.clone();
        let _ =
            tokio::task::spawn_blocking(move || s.service.devices.touch(&s.touches.take())).await;
        // Removes the record, then releases the lock.
        drop(self.run_lock);
        service.events().publish(Event::GatewayStatus {
            listening: false,
            address: None,
            error: None,
        });
    }
}

/// Closes the sessions that depend on a credential the moment it is taken away: a device's
/// token rotated or revoked (its sessions of that role), a device removed (all its sessions),
/// the admin token rotated (every session that presented it, whatever else it presented).
/// Run as an event hook, so the sessions are marked before the change's answer goes out.
fn kick_for(registry: &registry::Registry, e: &Event) {
    match e {
        // Sessions let in after the rotation presented the new token.
        Event::GatewayTokenRotated { ts } => {
            registry.kick_older(registry::ADMIN_SESSIONS, "", Some(ts.saturating_add(1)));
        }
        Event::DeviceChanged {
            device_id,
            change,
            role,
            ..
        } => {
            let role = if *change == DeviceChange::Removed {
                None
            } else {
                role.as_deref()
            };
            registry.kick(device_id, role);
        }
        _ => {}
    }
}

/// How long after a device's first use the gateway writes it down (with every use that came
/// in between): one write of paired.json for a burst of connects.
pub const LAST_SEEN_DELAY: Duration = Duration::from_secs(2);

/// Writes collected device use [`LAST_SEEN_DELAY`] after the first touch; idle when idle.
async fn flush_touches(shared: Arc<Shared>) {
    loop {
        shared.touches.notify.notified().await;
        tokio::time::sleep(LAST_SEEN_DELAY).await;
        let batch = shared.touches.take();
        let s = shared.clone();
        let r = tokio::task::spawn_blocking(move || s.service.devices.touch(&batch)).await;
        if let Ok(Err(e)) = r {
            tracing::warn!("could not record device use: {e}");
        }
    }
}

/// Publishes `expired` for requests as they expire, sleeping until the next expiry. A new
/// request can only bring that moment forward (to its own expiry), so it costs no rescan of the
/// store; a rescan happens when something expires, or when events were missed. No timer runs
/// when nothing is pending.
async fn sweep_expired(shared: Arc<Shared>) {
    let mut rx = shared.service.events().subscribe();
    let sweep = || {
        let s = shared.clone();
        async move {
            tokio::task::spawn_blocking(move || s.service.sweep_expired())
                .await
                .ok()
                .flatten()
        }
    };
    let mut next = sweep().await;
    let due = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(due);
    let deadline = |at: Millis| {
        let ms = (at - shared.service.now_ms()).max(0) as u64 + 50;
        tokio::time::Instant::now() + Duration::from_millis(ms)
    };
    if let Some(at) = next {
        due.as_mut().reset(deadline(at));
    }
    loop {
        let earlier = tokio::select! {
            _ = &mut due, if next.is_some() => {
                next = sweep().await;
                next
            }
            ev = rx.recv() => match ev {
                Ok(Event::PairingRequested(r)) => crate::clock::ms_from_iso(&r.expires_at)
                    .filter(|at| next.is_none_or(|n| *at < n)),
                Ok(Event::DevicePairRequested(r)) => {
                    let at = r.expires_ms(shared.settings().await.device_pending_ttl_ms());
                    next.is_none_or(|n| at < n).then_some(at)
                }
                // Settings may have turned stale-device expiry on, or changed its limit.
                Ok(Event::SettingsChanged {}) => {
                    next = sweep().await;
                    next
                }
                Ok(_) => None,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    next = sweep().await;
                    next
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
        };
        if let Some(at) = earlier {
            next = Some(at);
            due.as_mut().reset(deadline(at));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taking_a_credential_away_kicks_what_used_it_and_nothing_else() {
        let r = registry::Registry::default();
        let node = registry::Credential::Device {
            device_id: "d1".into(),
            role: "node".into(),
        };
        let operator = registry::Credential::Device {
            device_id: "d1".into(),
            role: "operator".into(),
        };
        let a = r.register(1, 0, std::slice::from_ref(&node), 8).unwrap();
        let b = r.register(2, 0, &[operator], 8).unwrap();
        let admin = r
            .register(3, 0, &[registry::Credential::AdminToken], 8)
            .unwrap();
        let changed = |change, role: Option<&str>| Event::DeviceChanged {
            device_id: "d1".into(),
            change,
            role: role.map(Into::into),
            ts: 0,
        };
        kick_for(&r, &changed(DeviceChange::Revoked, Some("node")));
        assert!(a.kick.fired() && !b.kick.fired() && !admin.kick.fired());
        kick_for(&r, &changed(DeviceChange::Removed, Some("node")));
        assert!(b.kick.fired(), "a removal closes every role");
        kick_for(&r, &Event::GatewayTokenRotated { ts: 0 });
        assert!(admin.kick.fired());
    }

    #[tokio::test]
    async fn accepted_connections_go_without_nagle_delay() {
        for addr in ["127.0.0.1:0", "[::1]:0"] {
            let Ok(listener) = listen(addr.parse().unwrap(), 16) else {
                continue; // no IPv6 loopback here
            };
            let _client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
                .await
                .unwrap();
            let (tcp, _) = listener.accept().await.unwrap();
            set_nodelay(&tcp);
            assert!(tcp.nodelay().unwrap(), "{addr}");
        }
    }
}
