//! The tray icon and its menu. Linux trays report no clicks, so the menu holds every action:
//! pending count (opens the window), Pair a phone…, Open, the gateway status line, Pause new
//! requests, Start at login, Quit. Menu handling is a plain function a test can call.

use std::sync::Arc;

use tauri::image::Image;
use tauri::menu::{CheckMenuItem, Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Manager, Runtime};

use super::gateway_ctl::{GatewayCtl, GatewayStatus};
use super::{show_window, AppState};
use clawpair_core::events::Event;
use clawpair_core::service::Service;

pub const TRAY_ID: &str = "clawpair";
const ICON_IDLE: &[u8] = include_bytes!("../../icons/tray.png");
const ICON_PENDING: &[u8] = include_bytes!("../../icons/tray-pending.png");

/// What a menu item does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MenuAction {
    OpenRequests,
    PairPhone,
    Open,
    TogglePause,
    ToggleAutostart,
    Quit,
}

pub fn action_for(id: &str) -> Option<MenuAction> {
    Some(match id {
        "pending" => MenuAction::OpenRequests,
        "pair" => MenuAction::PairPhone,
        "open" => MenuAction::Open,
        "pause" => MenuAction::TogglePause,
        "autostart" => MenuAction::ToggleAutostart,
        "quit" => MenuAction::Quit,
        _ => return None,
    })
}

pub fn pending_text(n: usize) -> String {
    match n {
        0 => "No pending requests".into(),
        1 => "1 pending request…".into(),
        n => format!("{n} pending requests…"),
    }
}

pub fn tooltip(n: usize) -> String {
    match n {
        0 => "ClawPair".into(),
        n => format!("ClawPair — {n} waiting for you"),
    }
}

/// The Telegram line of the menu.
pub fn telegram_text(configured: bool, connected: bool, error: Option<&str>) -> String {
    match (configured, connected, error) {
        (false, _, _) => "Telegram: off".into(),
        (true, true, _) => "Telegram: connected".into(),
        (true, false, Some(e)) => format!("Telegram: {}", e.chars().take(60).collect::<String>()),
        (true, false, None) => "Telegram: connecting…".into(),
    }
}

pub fn status_text(s: &GatewayStatus) -> String {
    match (&s.address, &s.error) {
        (Some(a), _) if s.listening => format!("Gateway: listening on {a}"),
        // Whole: the menu is where the owner looks when the window is closed.
        (_, Some(e)) => format!("Gateway not running: {e}"),
        _ => "Gateway: starting…".into(),
    }
}

/// Runs a menu action. Works on any runtime, so tests can call it on Tauri's mock.
pub fn apply<R: Runtime>(app: &AppHandle<R>, action: MenuAction) {
    match action {
        MenuAction::OpenRequests => show_window(app, Some("requests")),
        MenuAction::PairPhone => show_window(app, Some("pair")),
        MenuAction::Open => show_window(app, None),
        // Menu clicks arrive on the UI thread: file work (a lock, an fsync) goes elsewhere.
        MenuAction::TogglePause => {
            if let Some(state) = app.try_state::<AppState>() {
                let service = state.service.clone();
                tauri::async_runtime::spawn_blocking(move || {
                    let r = service.update_settings("tray", |s| {
                        s.ui.paused = !s.ui.paused;
                        Ok(())
                    });
                    if let Err(e) = r {
                        tracing::warn!("pause new requests: {e}");
                    }
                });
            }
        }
        MenuAction::ToggleAutostart => {
            tauri::async_runtime::spawn_blocking(|| {
                if let Err(e) = super::autostart::set_enabled(!super::autostart::is_enabled()) {
                    tracing::warn!("start at login: {e}");
                }
            });
        }
        MenuAction::Quit => app.exit(0),
    }
}

pub fn on_menu<R: Runtime>(app: &AppHandle<R>, id: &str) {
    if let Some(a) = action_for(id) {
        apply(app, a);
    }
}

/// Builds the tray. Without a tray host (or its library) the app goes on without it: the
/// window and notifications still show everything.
pub fn install<R: Runtime>(
    app: &AppHandle<R>,
    service: Arc<Service>,
    backend: clawpair_core::attach::SharedBackend,
    gateway: Arc<GatewayCtl>,
) -> tauri::Result<()> {
    let pending = MenuItem::with_id(app, "pending", pending_text(0), true, None::<&str>)?;
    let pair = MenuItem::with_id(app, "pair", "Pair a phone…", true, None::<&str>)?;
    let open = MenuItem::with_id(app, "open", "Open ClawPair", true, None::<&str>)?;
    let status = MenuItem::with_id(
        app,
        "status",
        status_line(&service.settings(), &backend, &gateway),
        false,
        None::<&str>,
    )?;
    let tg_on = clawpair_core::channels::telegram::configured(&service.settings());
    let telegram = MenuItem::with_id(
        app,
        "telegram",
        telegram_text(tg_on, false, None),
        false,
        None::<&str>,
    )?;
    let pause = CheckMenuItem::with_id(
        app,
        "pause",
        "Pause new requests",
        true,
        service.settings().ui.paused,
        None::<&str>,
    )?;
    let autostart = CheckMenuItem::with_id(
        app,
        "autostart",
        "Start at login",
        true,
        super::autostart::is_enabled(),
        None::<&str>,
    )?;
    let unseen = MenuItem::with_id(app, "unseen", unseen_text(0), false, None::<&str>)?;
    let quit = MenuItem::with_id(app, "quit", "Quit", true, None::<&str>)?;
    let sep1 = PredefinedMenuItem::separator(app)?;
    let sep2 = PredefinedMenuItem::separator(app)?;
    let menu = Menu::with_items(
        app,
        &[
            &pending, &pair, &open, &sep1, &status, &telegram, &unseen, &pause, &autostart, &sep2,
            &quit,
        ],
    )?;
    let builder = TrayIconBuilder::with_id(TRAY_ID)
        .icon(Image::from_bytes(ICON_IDLE)?)
        .tooltip(tooltip(0))
        .menu(&menu)
        .show_menu_on_left_click(true)
        .on_menu_event(|app, ev| on_menu(app, ev.id().as_ref()));
    let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| builder.build(app)));
    let tray = match built {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => {
            tracing::warn!("no tray icon: {e}");
            return Ok(());
        }
        Err(_) => {
            tracing::warn!("no tray icon: the system tray library is missing (install libayatana-appindicator3-1)");
            return Ok(());
        }
    };
    tauri::async_runtime::spawn(follow_unseen(service.clone(), unseen));
    let mut rx = service.events().subscribe();
    tauri::async_runtime::spawn(async move {
        let mut last = usize::MAX;
        let mut first = true;
        loop {
            // The first pass counts what was already pending at start.
            let event = if std::mem::take(&mut first) {
                None
            } else {
                match rx.recv().await {
                    Ok(e) => Some(e),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => None,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            };
            let settings = service.settings_off_thread().await;
            match &event {
                Some(Event::GatewayStatus { .. }) => {
                    let _ = status.set_text(status_line(&settings, &backend, &gateway));
                }
                Some(Event::AttachStatus { line, .. }) => {
                    // Several gateways: how many are attached, rather than the last one's news.
                    let line = clawpair_core::attach::current(&backend)
                        .status_line()
                        .unwrap_or_else(|| line.clone());
                    let _ = status.set_text(line);
                }
                Some(Event::ChannelStatus {
                    channel,
                    connected,
                    error,
                    ..
                }) if channel == "telegram" => {
                    let on = clawpair_core::channels::telegram::configured(&settings);
                    let _ = telegram.set_text(telegram_text(on, *connected, error.as_deref()));
                }
                Some(Event::SettingsChanged {})
                    if !clawpair_core::channels::telegram::configured(&settings) =>
                {
                    let _ = telegram.set_text(telegram_text(false, false, None));
                }
                _ => {}
            }
            if event.as_ref().is_none_or(super::changes_pending) {
                let n = super::pending_count(&clawpair_core::attach::current(&backend)).await;
                if n != last {
                    last = n;
                    let _ = pending.set_text(pending_text(n));
                    let _ = tray.set_tooltip(Some(tooltip(n)));
                    let icon = if n > 0 { ICON_PENDING } else { ICON_IDLE };
                    if let Ok(img) = Image::from_bytes(icon) {
                        let _ = tray.set_icon(Some(img));
                    }
                }
                let _ = pause.set_checked(settings.ui.paused);
                let on = tauri::async_runtime::spawn_blocking(super::autostart::is_enabled).await;
                let _ = autostart.set_checked(on.unwrap_or(false));
            }
        }
    });
    Ok(())
}

/// The gateway's line: ClawPair's own, or the OpenClaw gateway it is attached to.
fn status_line(
    settings: &clawpair_core::config::Settings,
    backend: &clawpair_core::attach::SharedBackend,
    gateway: &GatewayCtl,
) -> String {
    match clawpair_core::attach::current(backend).status_line() {
        Some(line) => line,
        None if settings.attach.enabled => "Not attached to OpenClaw".to_string(),
        None => status_text(&gateway.status()),
    }
}

/// Devices not seen for this long are counted in the tray, whatever the settings say.
const UNSEEN_MS: i64 = 30 * 24 * 3_600_000;

pub fn unseen_text(n: usize) -> String {
    match n {
        0 => "Every device seen in the last 30 days".into(),
        1 => "1 device not seen for 30 days".into(),
        n => format!("{n} devices not seen for 30 days"),
    }
}

/// Keeps the "not seen for 30 days" line current: when devices change, and once an hour (time
/// alone makes a device unseen).
async fn follow_unseen<R: Runtime>(service: Arc<Service>, item: MenuItem<R>) {
    let mut rx = service.events().subscribe();
    loop {
        let s = service.clone();
        let n = tauri::async_runtime::spawn_blocking(move || s.unseen_count(UNSEEN_MS))
            .await
            .unwrap_or(0);
        let _ = item.set_text(unseen_text(n));
        let hour = tokio::time::sleep(std::time::Duration::from_secs(3600));
        tokio::pin!(hour);
        loop {
            tokio::select! {
                _ = &mut hour => break,
                ev = rx.recv() => match ev {
                    Ok(Event::DeviceChanged { .. } | Event::DevicePairResolved { .. }) => break,
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn menu_ids_map_to_actions() {
        assert_eq!(action_for("quit"), Some(MenuAction::Quit));
        assert_eq!(action_for("pause"), Some(MenuAction::TogglePause));
        assert_eq!(action_for("status"), None, "the status line does nothing");
        assert_eq!(pending_text(0), "No pending requests");
        assert_eq!(pending_text(3), "3 pending requests…");
        assert_eq!(tooltip(2), "ClawPair — 2 waiting for you");
        let st = GatewayStatus {
            listening: true,
            address: Some("127.0.0.1:18789".into()),
            error: None,
        };
        assert_eq!(status_text(&st), "Gateway: listening on 127.0.0.1:18789");
        let long = "cannot listen on 127.0.0.1:18789: port 18789 is in use by `python3 -m http.server 18789` (pid 4242); choose another port, or stop that program";
        let down = GatewayStatus {
            listening: false,
            address: None,
            error: Some(long.into()),
        };
        assert_eq!(status_text(&down), format!("Gateway not running: {long}"));
    }
}
