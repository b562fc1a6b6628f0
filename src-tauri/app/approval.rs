//! A small window of ClawPair's own for deciding requests, opened when the desktop's
//! notification server shows no buttons (dunst and others advertise no `actions` in
//! `GetCapabilities`): approving never needs the main window. It lists what waits, with the
//! same Approve / Reject (and Review… for an admin-level ask) as the notifications, and closes
//! itself once nothing waits.

use tauri::{AppHandle, Manager, Runtime, WebviewUrl, WebviewWindowBuilder};

/// The window's label (capabilities/approve.json grants it only what deciding needs).
pub const APPROVAL_WINDOW: &str = "approve";

/// Whether the session's notification server shows buttons. A server that cannot be asked
/// counts as one that does (the notification itself will then fail and say so).
pub async fn server_shows_buttons() -> bool {
    let Ok(conn) = zbus::Connection::session().await else {
        return true;
    };
    let reply = conn
        .call_method(
            Some("org.freedesktop.Notifications"),
            "/org/freedesktop/Notifications",
            Some("org.freedesktop.Notifications"),
            "GetCapabilities",
            &(),
        )
        .await;
    match reply {
        Ok(m) => m
            .body()
            .deserialize::<Vec<String>>()
            .map(|caps| caps.iter().any(|c| c == "actions"))
            .unwrap_or(true),
        Err(_) => true,
    }
}

/// Opens the approval window, or brings it forward with what waits now.
pub fn open<R: Runtime>(app: &AppHandle<R>) {
    if let Some(w) = app.get_webview_window(APPROVAL_WINDOW) {
        let _ = w.show();
        let _ = w.set_focus();
        let _ = w.eval("render()");
        return;
    }
    let built =
        WebviewWindowBuilder::new(app, APPROVAL_WINDOW, WebviewUrl::App("approve.html".into()))
            .title("ClawPair — waiting for you")
            .inner_size(480.0, 340.0)
            .min_inner_size(360.0, 240.0)
            .always_on_top(true)
            .build();
    if let Err(e) = built {
        tracing::warn!("cannot open the approval window: {e}");
        super::show_window(app, Some("requests"));
    }
}

#[tauri::command]
pub fn close_approval_window<R: Runtime>(app: AppHandle<R>) {
    if let Some(w) = app.get_webview_window(APPROVAL_WINDOW) {
        let _ = w.close();
    }
}

#[tauri::command]
pub fn open_main_window<R: Runtime>(app: AppHandle<R>, section: Option<String>) {
    super::show_window(&app, section.as_deref());
}
