//! The gateway inside the app: started from the settings, restarted when the owner changes
//! where it listens (e.g. the one-click "listen on the LAN" fix), stopped cleanly on Quit.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use clawpair_core::events::Event;
use clawpair_core::gateway::{Gateway, Limits, ShutdownHandle};
use clawpair_core::service::Service;

/// What the tray and the window show about the gateway.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayStatus {
    pub listening: bool,
    pub address: Option<String>,
    pub error: Option<String>,
}

struct Running {
    handle: ShutdownHandle,
    task: tokio::task::JoinHandle<()>,
    addr: SocketAddr,
    /// The chat channels that run beside the gateway.
    channels: clawpair_core::channels::Running,
}

impl Running {
    async fn stop(self) {
        let wait = std::time::Duration::from_secs(8);
        let channels = self.channels.stop(wait);
        self.handle.shutdown();
        let _ = tokio::time::timeout(wait, self.task).await;
        for name in channels.await {
            tracing::warn!("the {name} channel did not stop in time");
        }
        tracing::info!("gateway on {} stopped", self.addr);
    }
}

pub struct GatewayCtl {
    service: Arc<Service>,
    running: tokio::sync::Mutex<Option<Running>>,
    status: Mutex<GatewayStatus>,
}

/// Whether a gateway could listen on `addr` while the one on `old` still does: a trial bind,
/// or, where the two would share the port (so the trial meets the running gateway itself), a
/// look for any other program on it.
async fn can_listen(addr: SocketAddr, old: SocketAddr) -> Result<(), String> {
    let overlap = old.port() == addr.port()
        && (old.ip() == addr.ip() || old.ip().is_unspecified() || addr.ip().is_unspecified());
    tokio::task::spawn_blocking(move || {
        if overlap {
            let me = std::process::id();
            match clawpair_core::ports::port_holders(addr)
                .into_iter()
                .find(|h| h.pid != Some(me))
            {
                Some(h) => Err(clawpair_core::ports::in_use(addr, &h)),
                None => Ok(()),
            }
        } else {
            match std::net::TcpListener::bind(addr) {
                Ok(_) => Ok(()),
                Err(e) => Err(held_or(addr, e)),
            }
        }
    })
    .await
    .unwrap_or_else(|_| Err(format!("could not check {addr}")))
}

/// Why binding `addr` failed, naming the program on the port when that is the reason.
async fn why_not(addr: SocketAddr, e: std::io::Error) -> String {
    tokio::task::spawn_blocking(move || held_or(addr, e))
        .await
        .unwrap_or_else(|e| e.to_string())
}

fn held_or(addr: SocketAddr, e: std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::AddrInUse {
        let me = std::process::id();
        if let Some(h) = clawpair_core::ports::port_holders(addr)
            .into_iter()
            .find(|h| h.pid != Some(me))
        {
            return clawpair_core::ports::in_use(addr, &h);
        }
    }
    let said = e.to_string();
    if said.contains(&addr.to_string()) {
        said
    } else {
        format!("cannot listen on {addr}: {said}")
    }
}

/// Where the settings say to listen.
pub fn settings_addr(service: &Service) -> Result<SocketAddr, String> {
    let s = service.settings();
    s.listen_addr().ok_or_else(|| {
        format!(
            "gateway.bind {:?} is not an IP address",
            s.gateway.bind.trim()
        )
    })
}

impl GatewayCtl {
    pub fn new(service: Arc<Service>) -> Self {
        GatewayCtl {
            service,
            running: tokio::sync::Mutex::new(None),
            status: Mutex::new(GatewayStatus::default()),
        }
    }

    pub fn status(&self) -> GatewayStatus {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The address the gateway listens on now.
    pub fn listening(&self) -> Option<SocketAddr> {
        self.status().address.and_then(|a| a.parse().ok())
    }

    fn set_status(&self, st: GatewayStatus) {
        if let Ok(mut s) = self.status.lock() {
            *s = st.clone();
        }
        self.service.events().publish(Event::GatewayStatus {
            listening: st.listening,
            address: st.address,
            error: st.error,
        });
    }

    pub async fn start_from_settings(&self) {
        let service = self.service.clone();
        let addr = tokio::task::spawn_blocking(move || settings_addr(&service))
            .await
            .unwrap_or_else(|_| Err("could not read the settings".into()));
        match addr {
            Ok(addr) => {
                let _ = self.start(addr).await;
            }
            Err(e) => self.set_status(GatewayStatus {
                listening: false,
                address: None,
                error: Some(e),
            }),
        }
    }

    /// (Re)starts the gateway on `addr`. A gateway already listening elsewhere keeps listening
    /// until the new address is known to work: when it does not (a port another program holds,
    /// an address this computer does not have), the old one stays and the reason is returned.
    /// With none running, a failure is shown, not fatal: the window and the CLI keep working on
    /// the files.
    pub async fn start(&self, addr: SocketAddr) -> Result<SocketAddr, String> {
        let mut running = self.running.lock().await;
        let old = running.as_ref().map(|r| r.addr);
        if let Some(old) = old {
            if old == addr {
                return Ok(addr);
            }
            // Checked while the old gateway still serves.
            if let Err(e) = can_listen(addr, old).await {
                tracing::warn!("{e}; the gateway stays on {old}");
                return Err(e);
            }
        }
        if let Some(r) = running.take() {
            r.stop().await;
        }
        if let Err(e) =
            clawpair_core::store::runrec::refuse_if_served_elsewhere(self.service.paths())
        {
            self.set_status(GatewayStatus {
                listening: false,
                address: None,
                error: Some(e.to_string()),
            });
            return Err(e.to_string());
        }
        match self.launch(addr).await {
            Ok(r) => {
                let at = r.addr;
                *running = Some(r);
                Ok(at)
            }
            Err(e) => {
                // Taken between the check and the bind: back where it was.
                if let Some(old) = old {
                    if let Ok(r) = self.launch(old).await {
                        *running = Some(r);
                        return Err(format!("{e}; the gateway stays on {old}"));
                    }
                }
                self.set_status(GatewayStatus {
                    listening: false,
                    address: None,
                    error: Some(e.clone()),
                });
                Err(e)
            }
        }
    }

    /// Binds and runs a gateway on `addr`, with the chat channels beside it.
    async fn launch(&self, addr: SocketAddr) -> Result<Running, String> {
        let gw = match Gateway::bind(self.service.clone(), addr, Limits::default()).await {
            Ok(gw) => gw,
            Err(e) => {
                let said = why_not(addr, e).await;
                tracing::warn!("{said}");
                return Err(said);
            }
        };
        let addr = gw.local_addr();
        let handle = gw.shutdown_handle();
        let task = tokio::spawn(gw.run());
        // The chat channels run beside the gateway; each follows clawpair.json, so enabling
        // one in Settings starts it without a restart.
        let channels = clawpair_core::channels::start_all(&self.service, addr);
        self.set_status(GatewayStatus {
            listening: true,
            address: Some(addr.to_string()),
            error: None,
        });
        Ok(Running {
            handle,
            task,
            addr,
            channels,
        })
    }

    /// Stops the gateway, waiting for its writes to finish.
    pub async fn stop(&self) {
        let mut running = self.running.lock().await;
        if let Some(r) = running.take() {
            r.stop().await;
        }
        self.set_status(GatewayStatus::default());
    }
}
