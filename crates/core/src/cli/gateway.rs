//! `clawpair gateway`: the headless gateway, until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::sync::Arc;

use super::{CliError, CliResult};
use crate::clock::SystemClock;
use crate::gateway::{Gateway, Limits};
use crate::service::Service;
use crate::store::StatePaths;

/// Where to listen: flags over settings.
pub fn listen_addr(
    service: &Service,
    bind: Option<&str>,
    port: Option<u16>,
) -> Result<SocketAddr, CliError> {
    let settings = service.settings();
    let host = bind.unwrap_or(&settings.gateway.bind);
    let ip = crate::net::bind_ip(host).ok_or_else(|| {
        CliError::usage(format!(
            "--bind {:?} is not an IP address (e.g. 127.0.0.1 or 0.0.0.0)",
            host.trim()
        ))
    })?;
    Ok(SocketAddr::new(ip, port.unwrap_or(settings.gateway.port)))
}

pub fn run(
    state_dir: Option<&std::path::Path>,
    bind: Option<String>,
    port: Option<u16>,
) -> CliResult {
    let dir = crate::config::resolve_state_dir(state_dir)
        .map_err(|e| CliError::refused(e.to_string()))?;
    let (service, _) = Service::open(StatePaths::new(dir), Arc::new(SystemClock))
        .map_err(|e| CliError::refused(e.to_string()))?;
    let service = Arc::new(service);
    let addr = listen_addr(&service, bind.as_deref(), port)?;
    crate::store::runrec::refuse_if_served_elsewhere(service.paths())
        .map_err(|e| CliError::refused(e.to_string()))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::refused(format!("cannot start the runtime: {e}")))?;
    rt.block_on(async move {
        let gw = Gateway::bind(service.clone(), addr, Limits::default()).await.map_err(|e| CliError::refused(e.to_string()))?;
        let handle = gw.shutdown_handle();
        match gw.tls_fingerprint() {
            Some(fp) => println!("ClawPair gateway listening on wss://{}/ (pid {}; certificate SHA-256 {fp})", gw.local_addr(), std::process::id()),
            None => println!("ClawPair gateway listening on ws://{}/ (pid {})", gw.local_addr(), std::process::id()),
        }
        if gw.local_addr().ip().is_loopback() {
            println!("Only this computer can connect. To pair a phone, bind to the LAN: clawpair gateway --bind 0.0.0.0");
        }
        // What the owner must decide, and each decision, where a server's owner looks.
        let mut announcer = super::announce::Announcer::new(state_dir);
        let mut events = service.events().subscribe();
        tokio::spawn(async move {
            use tokio::sync::broadcast::error::RecvError;
            loop {
                match events.recv().await {
                    Ok(e) => {
                        if let Some(line) = announcer.line(&e) {
                            println!("{line}");
                        }
                    }
                    Err(RecvError::Lagged(n)) => println!("({n} events were missed; clawpair devices list and clawpair pairing list show what waits)"),
                    Err(RecvError::Closed) => return,
                }
            }
        });
        // Every built-in channel, as the app starts them: each follows clawpair.json itself.
        let settings = service.settings();
        for line in crate::channels::CHANNELS
            .iter()
            .filter_map(|c| c.describe(&settings))
        {
            println!("{line}");
        }
        let channels = crate::channels::start_all(&service, gw.local_addr());
        tokio::spawn(async move {
            wait_for_signal().await;
            handle.shutdown();
        });
        gw.run().await;
        for name in channels.stop(CHANNEL_STOP_WAIT).await {
            eprintln!("warning: the {name} channel did not stop in time");
        }
        println!("Gateway stopped.");
        Ok(())
    })
}

/// How long a channel may take to finish what it is sending once the gateway stopped.
const CHANNEL_STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut i), Ok(mut t)) => {
            tokio::select! {
                _ = i.recv() => {}
                _ = t.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
