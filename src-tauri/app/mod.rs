//! The desktop tray app: the only place that touches Tauri. It runs the gateway
//! inside its own process (one tokio runtime shared with Tauri), forwards the core's events to
//! the window and to notifications, and offers every decision one click away.

pub mod approval;
pub mod autostart;
pub mod commands;
pub mod gateway_ctl;
pub mod notify;
pub mod problem;
pub mod tray;

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::json;
use tauri::{AppHandle, Emitter, Manager, Runtime, WebviewWindowBuilder};

use clawpair_core::attach::Unattached;
use clawpair_core::clock::SystemClock;
use clawpair_core::events::Event;
use clawpair_core::owner::OwnerRequest;
use clawpair_core::service::Service;
use clawpair_core::store::StatePaths;

pub use gateway_ctl::GatewayCtl;

/// How the app was started.
#[derive(Debug, Clone, Default)]
pub struct AppArgs {
    pub state_dir: Option<PathBuf>,
    /// Tray only.
    pub hidden: bool,
    /// Open the window at start (tests drive it through WebDriver, which needs the first webview).
    pub show: bool,
    /// `--attach [URL]`: be the approval desk of an OpenClaw gateway (empty: the one OpenClaw's
    /// config on this computer names).
    pub attach: Option<String>,
    /// `--tls-fingerprint SHA256`: the attached gateway's certificate, pinned.
    pub tls_fingerprint: Option<String>,
}

/// What the window's commands work with.
pub struct AppState {
    pub service: Arc<Service>,
    /// ClawPair's own core, or the OpenClaw gateway it is attached to.
    pub backend: clawpair_core::attach::SharedBackend,
    pub gateway: Arc<GatewayCtl>,
    /// The settings file did not exist before this run: the window opens on the guide.
    pub first_run: bool,
    pub notifier: Arc<notify::NotifyStatus>,
    /// The last `channel.status` of each chat channel (Telegram's connected / last error).
    pub channels: ChannelStatuses,
    /// Switches between ClawPair's own gateway and the attached ones as the settings say.
    pub attach: Arc<AttachCtl>,
}

/// Chat channel → its last status (`{connected, error}`), for the window and the tray.
pub type ChannelStatuses =
    Arc<std::sync::Mutex<std::collections::BTreeMap<String, serde_json::Value>>>;

/// The window's label (from `tauri.conf.json`).
pub const MAIN_WINDOW: &str = "main";
/// The one event name the window listens to; the payload says which core event it was.
pub const UI_EVENT: &str = "clawpair://event";

/// Shows the main window (creating it from the config on first use) and focuses it; with
/// `section`, tells the page which view to open.
pub fn show_window<R: Runtime>(app: &AppHandle<R>, section: Option<&str>) {
    let window = match app.get_webview_window(MAIN_WINDOW) {
        Some(w) => Some(w),
        None => app
            .config()
            .app
            .windows
            .iter()
            .find(|w| w.label == MAIN_WINDOW)
            .and_then(|conf| WebviewWindowBuilder::from_config(app, conf).ok())
            .and_then(|b| b.build().ok()),
    };
    if let Some(w) = window {
        let _ = w.show();
        let _ = w.unminimize();
        let _ = w.set_focus();
        if let Some(s) = section {
            let _ = app.emit_to(MAIN_WINDOW, "clawpair://navigate", s);
        }
    }
}

/// Forwards every core event to the window (no polling anywhere), remembering each chat
/// channel's last status on the way.
pub fn forward_events<R: Runtime>(
    app: AppHandle<R>,
    service: Arc<Service>,
    channels: ChannelStatuses,
) {
    let mut rx = service.events().subscribe();
    tauri::async_runtime::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(e) => {
                    if let Event::ChannelStatus {
                        channel,
                        connected,
                        error,
                        ..
                    } = &e
                    {
                        if let Ok(mut m) = channels.lock() {
                            m.insert(
                                channel.clone(),
                                json!({ "connected": connected, "error": error }),
                            );
                        }
                    }
                    let _ = app.emit(
                        UI_EVENT,
                        json!({ "event": e.name(), "payload": e.payload() }),
                    );
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    let _ = app.emit(
                        UI_EVENT,
                        json!({ "event": "events.dropped", "payload": {} }),
                    );
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    });
}

/// Registers the app's commands and state on any runtime (the real one or Tauri's mock).
pub fn build_app<R: Runtime>(builder: tauri::Builder<R>, state: AppState) -> tauri::Builder<R> {
    builder
        .manage(state)
        .invoke_handler(tauri::generate_handler![
            commands::app_info,
            commands::app_status,
            commands::list_requests,
            commands::approve_dm,
            commands::reject_dm,
            commands::approve_device,
            commands::reject_device,
            commands::approve_node,
            commands::reject_node,
            commands::resolve_exec,
            commands::list_allowlist,
            commands::allow_add,
            commands::allow_remove,
            commands::list_devices,
            commands::device_remove,
            commands::device_clear,
            commands::token_rotate,
            commands::token_revoke,
            commands::setup_create,
            commands::setup_cleanup,
            commands::audit_tail,
            commands::get_settings,
            commands::save_settings,
            commands::set_paused,
            commands::set_autostart,
            commands::expose_on_lan,
            commands::retry_gateway,
            approval::close_approval_window,
            approval::open_main_window,
            commands::dismiss_guide,
            commands::show_guide,
            commands::open_logs,
            commands::rotate_admin_token,
            commands::openclaw_info,
            commands::set_attach,
            commands::attach_add,
            commands::attach_remove,
            commands::set_own_gateway,
        ])
}

/// Opens the state directory and prepares the core, before any window exists.
pub fn open_state(args: &AppArgs) -> Result<(Arc<Service>, bool), String> {
    let dir = clawpair_core::config::resolve_state_dir(args.state_dir.as_deref())
        .map_err(|e| e.to_string())?;
    let (service, first_run) =
        Service::open(StatePaths::new(dir), Arc::new(SystemClock)).map_err(|e| e.to_string())?;
    Ok((Arc::new(service), first_run))
}

/// Starts the tray app and runs until Quit.
pub fn run(args: AppArgs) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    tauri::async_runtime::set(rt.handle().clone());
    // A settings file the owner broke by hand stops the app, with a window that says where.
    if let Some(problem) = problem::find(&args) {
        let _runtime = rt.enter();
        return problem::run(problem);
    }
    let (service, first_run) = open_state(&args)?;
    let _runtime = rt.enter();
    if let Some(url) = &args.attach {
        // `--attach` is remembered: ClawPair stays the approval desk until detached.
        let url = Some(url.trim().to_string()).filter(|u| !u.is_empty());
        // Refused here, before it is remembered: a gateway the token may not travel to.
        let pin = clawpair_core::attach::transport::check(
            url.as_deref(),
            args.tls_fingerprint.as_deref(),
        )
        .map_err(|e| e.to_string())?;
        service
            .update_settings("cli", |s| {
                s.attach.enabled = true;
                if url.is_some() {
                    // A pin belongs to the gateway it was given with.
                    s.attach.url = url.clone();
                    s.attach.tls_fingerprint = pin.clone();
                } else if pin.is_some() {
                    s.attach.tls_fingerprint = pin.clone();
                }
                Ok(())
            })
            .map_err(|e| e.to_string())?;
    }
    let (first, unattached) = start_backend(&service);
    let backend = Arc::new(std::sync::RwLock::new(first));
    // What the CLI or an editor changes in the files reaches the tray, the window and the
    // notifications, with the gateway running or not; shared with the gateway's own watch.
    let _state_watch = service
        .watch_state()
        .map_err(|e| tracing::warn!("{e}; changes other processes make are not seen"))
        .ok();
    let gateway = Arc::new(GatewayCtl::new(service.clone()));
    let notifier = Arc::new(notify::NotifyStatus::default());
    let channels = ChannelStatuses::default();
    // Asked to attach, ClawPair runs no gateway of its own (unless asked to keep it too), even
    // while it cannot reach OpenClaw.
    let own_gateway = service.settings().attach.own_gateway_runs();
    let attach = AttachCtl::new(
        service.clone(),
        backend.clone(),
        gateway.clone(),
        unattached,
    );
    attach.follow();
    let state = AppState {
        service: service.clone(),
        backend: backend.clone(),
        gateway: gateway.clone(),
        first_run,
        notifier: notifier.clone(),
        channels: channels.clone(),
        attach,
    };
    let open_at_start = !args.hidden;
    let builder =
        tauri::Builder::default().plugin(tauri_plugin_single_instance::init(|app, _argv, _cwd| {
            // A second launch only brings the running instance forward.
            show_window(app, None);
        }));
    let app = build_app(builder, state)
        .setup(move |app| {
            let handle = app.handle().clone();
            forward_events(handle.clone(), service.clone(), channels.clone());
            tray::install(&handle, service.clone(), backend.clone(), gateway.clone())?;
            notify::spawn(handle.clone(), backend.clone(), notifier.clone());
            if own_gateway {
                // Attached, ClawPair runs no gateway (nor chat channel) of its own unless asked.
                let g = gateway.clone();
                tauri::async_runtime::spawn(async move { g.start_from_settings().await });
            }
            if open_at_start {
                show_window(&handle, None);
            }
            Ok(())
        })
        .on_window_event(|window, event| {
            // Closing the window hides it; the app lives on in the tray.
            if let tauri::WindowEvent::CloseRequested { api, .. } = event {
                api.prevent_close();
                let _ = window.hide();
            }
        })
        .build(tauri::generate_context!())
        .map_err(|e| format!("cannot start the desktop app: {e}"))?;
    app.run(move |handle, event| match event {
        tauri::RunEvent::ExitRequested {
            code: None, api, ..
        } => api.prevent_exit(),
        tauri::RunEvent::Exit => {
            if let Some(state) = handle.try_state::<AppState>() {
                let g = state.gateway.clone();
                tauri::async_runtime::block_on(async move { g.stop().await });
            }
        }
        _ => {}
    });
    drop(rt);
    Ok(())
}

/// The backend the settings ask for: attached to OpenClaw gateways (their connections start at
/// once and keep trying), or ClawPair's own core; beside it, the gateways that could not be
/// attached to, with why. Needs a tokio runtime.
pub fn start_backend(service: &Arc<Service>) -> (clawpair_core::attach::Backend, Vec<Unattached>) {
    let settings = service.settings();
    if !settings.attach.enabled {
        return (
            clawpair_core::attach::Backend::Local(service.clone()),
            Vec::new(),
        );
    }
    let (targets, problems) = clawpair_core::attach::targets(&settings.attach, None);
    for p in &problems {
        tracing::warn!("cannot attach to {}: {}", p.label, p.why);
    }
    if targets.is_empty() {
        // Attaching was asked for but cannot start: say why, and keep to the files.
        let why = problems
            .first()
            .map_or("no gateway to attach to", |p| &p.why);
        service.events().publish(Event::AttachStatus {
            line: format!("Not attached to OpenClaw: {why}"),
            attached: false,
        });
        return (
            clawpair_core::attach::Backend::Local(service.clone()),
            problems,
        );
    }
    let backend = clawpair_core::attach::Backend::Attached {
        service: service.clone(),
        remotes: targets
            .into_iter()
            .map(|t| clawpair_core::attach::remote::Remote::spawn(t, service.events().clone()))
            .collect(),
        own: settings.attach.own_gateway,
    };
    (backend, problems)
}

/// Keeps the backend to what the attach settings say, whoever changes them: the window, the
/// command line (`clawpair attach add|remove`), or an editor. ClawPair's own gateway stops
/// while attached and starts again after.
pub struct AttachCtl {
    service: Arc<Service>,
    backend: clawpair_core::attach::SharedBackend,
    gateway: Arc<GatewayCtl>,
    /// The attach settings the backend was made from.
    applied: tokio::sync::Mutex<clawpair_core::config::AttachSettings>,
    /// The gateways those settings name that could not be attached to.
    unattached: std::sync::Mutex<Vec<Unattached>>,
}

impl AttachCtl {
    pub fn new(
        service: Arc<Service>,
        backend: clawpair_core::attach::SharedBackend,
        gateway: Arc<GatewayCtl>,
        unattached: Vec<Unattached>,
    ) -> Arc<AttachCtl> {
        let applied = tokio::sync::Mutex::new(service.settings().attach.clone());
        Arc::new(AttachCtl {
            service,
            backend,
            gateway,
            applied,
            unattached: std::sync::Mutex::new(unattached),
        })
    }

    /// The gateways the settings name that could not be attached to, with why.
    pub fn unattached(&self) -> Vec<Unattached> {
        self.unattached
            .lock()
            .map(|u| u.clone())
            .unwrap_or_default()
    }

    /// Makes the backend again when the attach settings changed since it was made.
    pub async fn apply(&self) {
        let mut applied = self.applied.lock().await;
        let now = self.service.settings_off_thread().await.attach.clone();
        if *applied == now {
            return;
        }
        let before = std::mem::replace(&mut *applied, now.clone());
        if now.enabled {
            if !now.own_gateway_runs() {
                self.gateway.stop().await;
            }
            let (next, unattached) = start_backend(&self.service);
            if let Ok(mut b) = self.backend.write() {
                *b = next;
            }
            if let Ok(mut u) = self.unattached.lock() {
                *u = unattached;
            }
            if now.own_gateway_runs() && !before.own_gateway_runs() {
                self.gateway.start_from_settings().await;
            }
        } else if before.enabled {
            if let Ok(mut b) = self.backend.write() {
                *b = clawpair_core::attach::Backend::Local(self.service.clone());
            }
            if let Ok(mut u) = self.unattached.lock() {
                u.clear();
            }
            self.service.events().publish(Event::AttachStatus {
                line: "Not attached: ClawPair runs its own gateway".into(),
                attached: false,
            });
            if !before.own_gateway_runs() {
                self.gateway.start_from_settings().await;
            }
        }
    }

    /// Applies every change to the settings file as it is seen.
    pub fn follow(self: &Arc<Self>) {
        let ctl = self.clone();
        let mut rx = self.service.events().subscribe();
        tauri::async_runtime::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(Event::SettingsChanged {})
                    | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => ctl.apply().await,
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }
}

/// Counts what waits for the owner, for the tray and the window title.
pub async fn pending_count(backend: &clawpair_core::attach::Backend) -> usize {
    use clawpair_core::owner::{DmRequests, NodeList};
    use clawpair_core::service::DeviceList;
    let dms = backend.ask::<DmRequests>("tray", &OwnerRequest::DmList { channel: None });
    let devices = backend.ask::<DeviceList>("tray", &OwnerRequest::DeviceList {});
    let nodes = backend.ask::<NodeList>("tray", &OwnerRequest::NodeList {});
    let execs = backend
        .ask::<Vec<clawpair_core::approval::PendingExec>>("tray", &OwnerRequest::ExecList {});
    let (dms, devices, nodes, execs) = tokio::join!(dms, devices, nodes, execs);
    dms.map_or(0, |l| l.requests.len())
        + devices.map_or(0, |l| l.pending.len())
        + nodes.map_or(0, |l| l.pending.len())
        + execs.map_or(0, |l| l.len())
}

/// Whether an event can change what is pending.
pub fn changes_pending(e: &Event) -> bool {
    matches!(
        e,
        Event::PairingRequested(_)
            | Event::PairingResolved { .. }
            | Event::DevicePairRequested(_)
            | Event::DevicePairResolved { .. }
            | Event::NodePairRequested(_)
            | Event::NodePairResolved { .. }
            | Event::ExecApprovalRequested(_)
            | Event::ExecApprovalResolved { .. }
            | Event::SettingsChanged {}
            | Event::AttachStatus { .. }
    )
}
