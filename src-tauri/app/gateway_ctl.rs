//! The gateway inside the app: started from the settings, restarted when the owner changes
//! where it listens (e.g. the one-click "listen on the LAN" fix), stopped cleanly on Quit.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::events::Event;
use crate::gateway::{Gateway, Limits, ShutdownHandle};
use crate::service::Service;

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
    /// Stops the chat channels that run beside the gateway.
    stop_channels: tokio::sync::watch::Sender<bool>,
    telegram: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn stop(self) {
        let _ = self.stop_channels.send(true);
        self.handle.shutdown();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(8), self.task).await;
        let _ = tokio::time::timeout(std::time::Duration::from_secs(8), self.telegram).await;
        tracing::info!("gateway on {} stopped", self.addr);
    }
}

pub struct GatewayCtl {
    service: Arc<Service>,
    running: tokio::sync::Mutex<Option<Running>>,
    status: Mutex<GatewayStatus>,
}

/// Where the settings say to listen.
pub fn settings_addr(service: &Service) -> Result<SocketAddr, String> {
    let s = service.settings();
    let host = s.gateway.bind.trim();
    let ip = crate::net::bind_ip(host)
        .ok_or_else(|| format!("gateway.bind {host:?} is not an IP address"))?;
    Ok(SocketAddr::new(ip, s.gateway.port))
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
            Ok(addr) => self.start(addr).await,
            Err(e) => self.set_status(GatewayStatus {
                listening: false,
                address: None,
                error: Some(e),
            }),
        }
    }

    /// (Re)starts the gateway on `addr`. A failure (port taken, say) is shown, not fatal: the
    /// window and the CLI keep working on the files.
    pub async fn start(&self, addr: SocketAddr) {
        let mut running = self.running.lock().await;
        if let Some(r) = running.take() {
            r.stop().await;
        }
        if let Err(e) = crate::store::runrec::refuse_if_served_elsewhere(self.service.paths()) {
            return self.set_status(GatewayStatus {
                listening: false,
                address: None,
                error: Some(e.to_string()),
            });
        }
        match Gateway::bind(self.service.clone(), addr, Limits::default()).await {
            Ok(gw) => {
                let addr = gw.local_addr();
                let handle = gw.shutdown_handle();
                let task = tokio::spawn(gw.run());
                // The Telegram bot runs beside the gateway; it follows clawpair.json, so enabling
                // it in Settings starts it without a restart.
                let (stop_channels, stopped) = tokio::sync::watch::channel(false);
                let telegram =
                    crate::channels::telegram::spawn(self.service.clone(), addr, stopped);
                *running = Some(Running {
                    handle,
                    task,
                    addr,
                    stop_channels,
                    telegram,
                });
                self.set_status(GatewayStatus {
                    listening: true,
                    address: Some(addr.to_string()),
                    error: None,
                });
            }
            Err(e) => {
                tracing::warn!("{e}");
                self.set_status(GatewayStatus {
                    listening: false,
                    address: None,
                    error: Some(e.to_string()),
                });
            }
        }
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
