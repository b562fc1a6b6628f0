//! The window's commands: thin adapters over the core. Each turns its arguments into a
//! protocol method (the same [`rpc::call`] the gateway and the CLI use, audited as `window`)
//! or a settings change, and returns JSON or a one-line error.

use serde::Serialize;
use serde_json::{json, Value};
use tauri::State;

use std::net::SocketAddr;
use std::sync::Arc;

use super::AppState;
use clawpair_core::approval::ExecDecision;
use clawpair_core::config::{Settings, SettingsPatch};
use clawpair_core::owner::OwnerRequest;
use clawpair_core::protocol::{Code, ErrorCode};
use clawpair_core::rpc::RpcError;

/// An error as the window shows it.
#[derive(Debug, Serialize)]
pub struct CmdError {
    pub code: ErrorCode,
    pub message: String,
}

impl From<RpcError> for CmdError {
    fn from(e: RpcError) -> Self {
        CmdError {
            code: e.code,
            message: e.message,
        }
    }
}

impl From<String> for CmdError {
    fn from(message: String) -> Self {
        CmdError {
            code: Code::InvalidRequest.into(),
            message,
        }
    }
}

type CmdResult = Result<Value, CmdError>;

/// Runs file work (the settings, the store, OpenClaw's config) on a blocking thread: never on
/// the UI thread or the async runtime's workers, which a lock another process holds (up to
/// 15 s) or a slow disk would stall.
async fn off_thread<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, CmdError> {
    tauri::async_runtime::spawn_blocking(work)
        .await
        .map_err(|_| CmdError::from("the request failed inside ClawPair".to_string()))
}

/// Current settings, read off the UI thread.
async fn settings(state: &AppState) -> Result<Arc<Settings>, CmdError> {
    Ok(state.service.settings_off_thread().await)
}

/// One change to `clawpair.json` from the window (locked, validated, audited as `window`),
/// off the UI thread.
async fn edit_settings(
    state: &AppState,
    change: impl FnOnce(&mut Settings) -> Result<(), String> + Send + 'static,
) -> Result<(), CmdError> {
    let s = state.service.clone();
    off_thread(move || s.update_settings("window", change))
        .await?
        .map_err(|e| CmdError::from(RpcError::from(e)))
}

/// An edit of the attach settings, applied at once (attached, detached, a gateway more or
/// less); answers where companion mode stands then.
async fn edit_attach(
    state: &AppState,
    change: impl FnOnce(&mut Settings) -> Result<(), String> + Send + 'static,
) -> CmdResult {
    edit_settings(state, change).await?;
    state.attach.apply().await;
    Ok(attach_status(state, &*settings(state).await?))
}

/// One method through the backend in use: ClawPair's core (off the UI thread), or the
/// OpenClaw gateway it is attached to. Audited as `window`.
async fn call(state: &AppState, req: OwnerRequest) -> CmdResult {
    call_at(state, None, req).await
}

/// [`call`] on one of several attached gateways, named by the window (the one a device in
/// the list is paired with, the one a setup code is for).
async fn call_at(state: &AppState, gateway: Option<String>, req: OwnerRequest) -> CmdResult {
    let backend = clawpair_core::attach::current(&state.backend);
    let gateway = gateway.filter(|g| !g.is_empty());
    Ok(backend
        .call_at(
            gateway.as_deref(),
            "window",
            state.gateway.listening(),
            &req,
        )
        .await?)
}

#[tauri::command]
pub fn app_info() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// Everything the header and the tray-like status line show.
#[tauri::command]
pub async fn app_status(state: State<'_, AppState>) -> CmdResult {
    let s = settings(&state).await?;
    let start_at_login = off_thread(super::autostart::is_enabled).await?;
    Ok(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "stateDir": state.service.paths().root().display().to_string(),
        "gateway": state.gateway.status(),
        "paused": s.ui.paused,
        "notifications": state.notifier.snapshot(),
        "startAtLogin": start_at_login,
        "showGuide": s.ui.show_guide,
        "pending": super::pending_count(&clawpair_core::attach::current(&state.backend)).await,
        "telegram": telegram_status(&state, &s),
        "attach": attach_status(&state, &s),
    }))
}

/// What ClawPair cannot do attached to OpenClaw, said in the window rather than hidden.
const ATTACHED_LIMITS: &[&str] = &[
    "ClawPair's own gateway does not run: phones pair with OpenClaw's gateway, and its rules apply.",
    "Device tokens are kept by OpenClaw, in plaintext in its database; ClawPair stores none.",
    "Phones cannot wait on an open connection (waitForApproval): OpenClaw's clients retry until approved.",
    "A device asking for full access is approved as asked or rejected; OpenClaw cannot approve it without admin.",
    "Setup codes cannot be invalidated over OpenClaw's protocol; they expire on their own.",
    "Approved chat senders are shown read-only (from OpenClaw's database on this computer); change them in OpenClaw.",
];

/// Companion mode as the window shows it: off, or where ClawPair is attached and how it goes,
/// in one line and gateway by gateway (those that could not even start, with why).
fn attach_status(state: &AppState, s: &Settings) -> Value {
    use clawpair_core::attach::remote::Status;
    if !s.attach.enabled {
        return Value::Null;
    }
    let backend = clawpair_core::attach::current(&state.backend);
    let mut gateways: Vec<Value> = Vec::new();
    if backend.with_own() {
        let at = state.gateway.listening();
        gateways.push(json!({ "label": clawpair_core::attach::OWN_GATEWAY, "url": at.map(|a| format!("ws://{a}")),
            "line": at.map_or_else(|| "ClawPair's own gateway is not running".to_string(),
                                   |a| format!("ClawPair's own gateway, listening at {a}")),
            "attached": at.is_some(), "started": true, "listed": false, "own": true }));
    }
    gateways.extend(backend.remotes().iter().map(|r| {
        let st = r.status();
        json!({ "label": r.label(), "url": r.url(), "line": st.line(),
                    "attached": matches!(st, Status::Attached { .. }), "started": true,
                    "listed": s.attach.gateways.iter().any(|g| g.url.trim() == r.url()) })
    }));
    for u in state.attach.unattached() {
        gateways.push(json!({ "label": u.label, "url": u.listed, "attached": false,
            "line": format!("Not attached to {}: {}", u.label, u.why), "listed": u.listed.is_some() }));
    }
    match backend.status_line() {
        Some(line) => json!({
            "attached": backend.remotes().iter().any(|r| matches!(r.status(), Status::Attached { .. })),
            "line": line, "url": backend.remotes().first().map(|r| r.url().to_string()),
            "gateways": gateways, "limits": ATTACHED_LIMITS }),
        None => json!({ "attached": false, "line": "Not attached to OpenClaw: see Settings",
                        "url": s.attach.url, "gateways": gateways, "limits": ATTACHED_LIMITS }),
    }
}

/// An OpenClaw installation on this computer, for the Settings page and the first-run guide
/// (never its token: only whether its config has one).
#[tauri::command]
pub async fn openclaw_info(state: State<'_, AppState>) -> CmdResult {
    let s = settings(&state).await?;
    let found = off_thread(clawpair_core::attach::discover::find).await?;
    Ok(json!({
        "found": found.is_ok(),
        "url": found.as_ref().ok().map(|i| i.url.clone()),
        "stateDir": found.as_ref().ok().map(|i| i.state_dir.display().to_string()),
        "tokenInConfig": found.as_ref().is_ok_and(|i| i.token.is_some()),
        "problem": found.as_ref().err().map(|e| e.to_string()),
        "attach": { "enabled": s.attach.enabled, "url": s.attach.url, "tokenSet": s.attach.token.is_some(),
                    "tlsFingerprint": s.attach.tls_fingerprint, "ownGateway": s.attach.own_gateway },
    }))
}

/// Attaches to an OpenClaw gateway (or detaches): saved in the settings, and switched at once
/// (ClawPair's own gateway stops while attached, and starts again after). A token typed here
/// is kept in `clawpair.json` (`0600`) and never sent back. A URL the token may not travel to
/// (plain `ws://` off loopback, `wss://` without a certificate pin) is refused, not saved.
#[tauri::command]
pub async fn set_attach(
    state: State<'_, AppState>,
    enabled: bool,
    url: Option<String>,
    token: Option<String>,
    tls_fingerprint: Option<String>,
) -> CmdResult {
    let url = url.map(|u| u.trim().to_string()).filter(|u| !u.is_empty());
    let pin = clawpair_core::attach::transport::check(url.as_deref(), tls_fingerprint.as_deref())
        .map_err(|e| CmdError::from(e.to_string()))?;
    let token = token
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty());
    edit_attach(&state, move |s| {
        s.attach.enabled = enabled;
        s.attach.url = url;
        s.attach.tls_fingerprint = pin;
        if token.is_some() {
            s.attach.token = token;
        }
        Ok(())
    })
    .await
}

/// Adds a gateway to be the approval desk of beside the others (`attach.gateways`), attached
/// at once when companion mode is on. Refused with the reason, and nothing saved, when the
/// token may not travel to it, it has no token, or it is listed already.
#[tauri::command]
pub async fn attach_add(
    state: State<'_, AppState>,
    url: String,
    token: Option<String>,
    tls_fingerprint: Option<String>,
    label: Option<String>,
) -> CmdResult {
    let g = clawpair_core::config::AttachGateway {
        url,
        token,
        tls_fingerprint,
        label,
        ..Default::default()
    };
    edit_attach(&state, move |s| {
        clawpair_core::attach::add_gateway(&mut s.attach, g)
    })
    .await
}

/// Attached, whether ClawPair's own gateway keeps running too (its requests in the same
/// queue), switched at once.
#[tauri::command]
pub async fn set_own_gateway(state: State<'_, AppState>, on: bool) -> CmdResult {
    edit_attach(&state, move |s| {
        s.attach.own_gateway = on;
        Ok(())
    })
    .await
}

/// Takes a gateway off `attach.gateways` (by its URL or name) and detaches from it.
#[tauri::command]
pub async fn attach_remove(state: State<'_, AppState>, gateway: String) -> CmdResult {
    edit_attach(&state, move |s| {
        clawpair_core::attach::remove_gateway(&mut s.attach, &gateway).map(|_| ())
    })
    .await
}

/// Telegram's line for the window: off, or connected / the last error.
fn telegram_status(state: &AppState, s: &Settings) -> Value {
    let configured = clawpair_core::channels::telegram::configured(s);
    let last = state
        .channels
        .lock()
        .ok()
        .and_then(|m| m.get("telegram").cloned());
    match last {
        Some(v) if configured => {
            json!({ "configured": true, "connected": v["connected"], "error": v["error"] })
        }
        _ => json!({ "configured": configured, "connected": false, "error": null }),
    }
}

#[tauri::command]
pub async fn list_requests(state: State<'_, AppState>) -> CmdResult {
    let dm = call(&state, OwnerRequest::DmList { channel: None }).await?;
    let devices = call(&state, OwnerRequest::DeviceList {}).await?;
    let nodes = call(&state, OwnerRequest::NodeList {}).await?;
    let execs = call(&state, OwnerRequest::ExecList {}).await?;
    Ok(
        json!({ "dm": dm["requests"], "devices": devices["pending"], "nodes": nodes["pending"],
        "execs": execs, "now": state.service.now_ms() }),
    )
}

#[tauri::command]
pub async fn resolve_exec(state: State<'_, AppState>, id: String, decision: String) -> CmdResult {
    let decision = ExecDecision::from_wire(&decision).ok_or_else(|| {
        CmdError::from(format!(
            "unknown decision {:?}: allow-once, allow-always or deny",
            clawpair_core::sanitize::sanitize(&decision)
        ))
    })?;
    call(&state, OwnerRequest::ExecResolve { id, decision }).await
}

#[tauri::command]
pub async fn approve_node(state: State<'_, AppState>, request_id: String) -> CmdResult {
    call(&state, OwnerRequest::NodeApprove { request_id }).await
}

#[tauri::command]
pub async fn reject_node(state: State<'_, AppState>, request_id: String) -> CmdResult {
    call(&state, OwnerRequest::NodeReject { request_id }).await
}

#[tauri::command]
pub async fn approve_dm(
    state: State<'_, AppState>,
    channel: String,
    code: String,
    notify: Option<bool>,
) -> CmdResult {
    call(
        &state,
        OwnerRequest::DmApprove {
            channel: Some(channel),
            code,
            account_id: None,
            notify: notify.unwrap_or(false),
        },
    )
    .await
}

#[tauri::command]
pub async fn reject_dm(state: State<'_, AppState>, channel: String, code: String) -> CmdResult {
    call(
        &state,
        OwnerRequest::DmReject {
            channel: Some(channel),
            code,
            account_id: None,
        },
    )
    .await
}

/// Approves a device request; `without_admin` grants what it asked for less `operator.admin`.
#[tauri::command]
pub async fn approve_device(
    state: State<'_, AppState>,
    request_id: String,
    without_admin: Option<bool>,
) -> CmdResult {
    call(
        &state,
        OwnerRequest::DeviceApprove {
            request_id,
            without_admin: without_admin.unwrap_or(false),
        },
    )
    .await
}

#[tauri::command]
pub async fn reject_device(state: State<'_, AppState>, request_id: String) -> CmdResult {
    call(&state, OwnerRequest::DeviceReject { request_id }).await
}

#[tauri::command]
pub async fn list_allowlist(state: State<'_, AppState>) -> CmdResult {
    call(&state, OwnerRequest::AllowList { channel: None }).await
}

#[tauri::command]
pub async fn allow_add(
    state: State<'_, AppState>,
    channel: String,
    sender_id: String,
    account_id: Option<String>,
) -> CmdResult {
    call(
        &state,
        OwnerRequest::AllowAdd {
            channel,
            sender_id: sender_id.trim().to_string(),
            account_id,
        },
    )
    .await
}

#[tauri::command]
pub async fn allow_remove(
    state: State<'_, AppState>,
    channel: String,
    sender_id: String,
    account_id: Option<String>,
) -> CmdResult {
    call(
        &state,
        OwnerRequest::AllowRemove {
            channel,
            sender_id,
            account_id,
        },
    )
    .await
}

#[tauri::command]
pub async fn list_devices(state: State<'_, AppState>) -> CmdResult {
    let v = call(&state, OwnerRequest::DeviceList {}).await?;
    Ok(json!({ "paired": v["paired"], "now": state.service.now_ms() }))
}

#[tauri::command]
pub async fn device_remove(
    state: State<'_, AppState>,
    device_id: String,
    gateway: Option<String>,
) -> CmdResult {
    call_at(&state, gateway, OwnerRequest::DeviceRemove { device_id }).await
}

#[tauri::command]
pub async fn device_clear(state: State<'_, AppState>) -> CmdResult {
    call(&state, OwnerRequest::DeviceClear { pending: false }).await
}

#[tauri::command]
pub async fn token_rotate(
    state: State<'_, AppState>,
    device_id: String,
    role: String,
    gateway: Option<String>,
) -> CmdResult {
    let mut v = call_at(
        &state,
        gateway,
        OwnerRequest::TokenRotate { device_id, role },
    )
    .await?;
    // Shown once: as text to copy and as a QR code for the device's camera.
    if let Some(token) = v["token"].as_str() {
        let svg = clawpair_core::qr::svg(token).map_err(|e| CmdError::from(e.to_string()))?;
        v["qrSvg"] = svg.into();
    }
    Ok(v)
}

#[tauri::command]
pub async fn token_revoke(
    state: State<'_, AppState>,
    device_id: String,
    role: String,
    gateway: Option<String>,
) -> CmdResult {
    call_at(
        &state,
        gateway,
        OwnerRequest::TokenRevoke { device_id, role },
    )
    .await
}

/// A new setup code with its QR (SVG); or, when the gateway is only on loopback, the reason
/// and the fixes the window offers.
#[tauri::command]
pub async fn setup_create(
    state: State<'_, AppState>,
    url: Option<String>,
    gateway: Option<String>,
) -> CmdResult {
    let url = url.filter(|u| !u.trim().is_empty());
    // A code for ClawPair's own gateway, kept running beside attached ones, is ClawPair's.
    let own = gateway.as_deref() == Some(clawpair_core::attach::OWN_GATEWAY);
    let attached = clawpair_core::attach::current(&state.backend).is_attached() && !own;
    let listening = state.gateway.listening();
    if !attached && listening.is_none() {
        // A code no phone could use: none is made.
        return Ok(json!({
            "error": "The gateway is not running, so a phone could not connect with a setup code. Start it first (Retry in the banner above), then come back here.",
            "loopbackOnly": false,
        }));
    }
    match call_at(
        &state,
        gateway,
        OwnerRequest::SetupCreate {
            url: url.clone(),
            retire_previous: true,
        },
    )
    .await
    {
        Ok(mut v) => {
            let code = v["setupCode"].as_str().unwrap_or_default().to_string();
            let svg = clawpair_core::qr::svg(&code).map_err(|e| CmdError::from(e.to_string()))?;
            v["qrSvg"] = svg.into();
            v["now"] = state.service.now_ms().into();
            if !attached {
                let url = v["url"].as_str().unwrap_or_default().to_string();
                v["warnings"] = clawpair_core::service::setup_warnings(&url, listening).into();
            }
            Ok(v)
        }
        Err(e) if attached => {
            // OpenClaw's own reason (e.g. its gateway listens on loopback only); a URL phones
            // can reach may still be given.
            Ok(json!({ "error": e.message, "loopbackOnly": url.is_none(), "attached": true }))
        }
        Err(e) => {
            let loopback = state
                .gateway
                .listening()
                .is_some_and(|a| a.ip().is_loopback())
                || (state.gateway.listening().is_none()
                    && state.service.settings().gateway.bind.starts_with("127."));
            Ok(json!({ "error": e.message, "loopbackOnly": loopback && url.is_none() }))
        }
    }
}

#[tauri::command]
pub async fn setup_cleanup(state: State<'_, AppState>) -> CmdResult {
    call(&state, OwnerRequest::SetupCleanup {}).await
}

#[tauri::command]
pub async fn audit_tail(state: State<'_, AppState>, limit: Option<usize>) -> CmdResult {
    let mut v = call(
        &state,
        OwnerRequest::AuditTail {
            limit: limit.unwrap_or(200),
        },
    )
    .await?;
    // Each record with its sentence; the devices named as the owner named them.
    let entries: Vec<clawpair_core::store::audit::AuditEntry> =
        serde_json::from_value(v["entries"].clone()).unwrap_or_default();
    let service = state.service.clone();
    let paired =
        off_thread(move || service.device_list().map(|l| l.paired).unwrap_or_default()).await?;
    let names = clawpair_core::service::activity::Names::gather(&entries, &paired);
    if let Some(list) = v["entries"].as_array_mut() {
        for (raw, e) in list.iter_mut().zip(&entries) {
            raw["sentence"] = clawpair_core::service::activity::sentence(e, &names).into();
        }
    }
    Ok(v)
}

/// Settings as the window edits them; secrets are never sent, only whether they are set.
#[tauri::command]
pub async fn get_settings(state: State<'_, AppState>) -> CmdResult {
    let s = settings(&state).await?;
    let start_at_login = off_thread(super::autostart::is_enabled).await?;
    Ok(settings_view(&s, start_at_login))
}

fn settings_view(s: &Settings, start_at_login: bool) -> Value {
    let tg = s.channel("telegram");
    let channels: Vec<Value> = s
        .channels
        .iter()
        .map(|(name, c)| json!({ "name": name, "dmPolicy": c.dm_policy.unwrap_or_default().as_str(), "allowFrom": c.allow_from, "owners": c.owners }))
        .collect();
    json!({
        "bind": s.gateway.bind,
        "port": s.gateway.port,
        "publicUrl": s.gateway.public_url,
        "pairingTtlMinutes": s.pairing.ttl_minutes,
        "pairingMaxPending": s.pairing.max_pending,
        "devicePendingTtlMinutes": s.devices.pending_ttl_minutes,
        "setupCodeTtlMinutes": s.devices.setup_code_ttl_minutes,
        "staleAfterDays": s.devices.stale_after_days,
        "expireStale": s.devices.expire_stale,
        "channels": channels,
        "telegram": {
            "enabled": tg.and_then(|c| c.enabled).unwrap_or(false),
            "botTokenSet": tg.and_then(|c| c.bot_token.as_ref()).is_some_and(|t| !t.is_empty()),
            "owners": tg.map(|c| c.owners.clone()).unwrap_or_default(),
        },
        "notifications": s.ui.notifications,
        "startAtLogin": start_at_login,
    })
}

/// Saves settings under the file's lock; invalid values are refused with the reason and
/// nothing is written. A changed address restarts the gateway.
#[tauri::command]
pub async fn save_settings(state: State<'_, AppState>, patch: SettingsPatch) -> CmdResult {
    patch.check()?;
    let patch = Arc::new(patch);
    let p = patch.clone();
    let service = state.service.clone();
    // Where the gateway would listen with the change, found before anything is written.
    let moved = off_thread(move || {
        let now = service.settings();
        let mut next = (*now).clone();
        p.apply(&mut next)?;
        let before = now.listen_addr();
        let after = next.listen_addr().ok_or_else(|| {
            format!(
                "Listen on: {:?} is not an address of this computer",
                next.gateway.bind.trim()
            )
        })?;
        Ok::<_, String>((before != Some(after) && !next.attach.enabled).then_some((before, after)))
    })
    .await?
    .map_err(CmdError::from)?;
    // A new address is tried first: the gateway that works stays until the new one listens,
    // and nothing is saved when it cannot.
    if let Some((before, after)) = moved {
        if state.gateway.listening().is_some() || before.is_none() {
            state
                .gateway
                .start(after)
                .await
                .map_err(|e| CmdError::from(format!("Not saved: {e}")))?;
        }
    }
    let service = state.service.clone();
    let saved = off_thread(move || service.update_settings("window", |s| patch.apply(s)))
        .await?
        .map_err(|e| CmdError::from(RpcError::from(e)));
    if let Err(e) = saved {
        if let Some((Some(before), _)) = moved {
            let _ = state.gateway.start(before).await;
        }
        return Err(e);
    }
    if moved.is_some() && state.gateway.listening().is_none() {
        // Not running before (it could not start): try again where the settings now say.
        state.gateway.start_from_settings().await;
    }
    get_settings(state).await
}

#[tauri::command]
pub async fn set_paused(state: State<'_, AppState>, paused: bool) -> CmdResult {
    edit_settings(&state, move |s| {
        s.ui.paused = paused;
        Ok(())
    })
    .await?;
    Ok(json!({ "paused": paused }))
}

#[tauri::command]
pub async fn set_autostart(state: State<'_, AppState>, enabled: bool) -> CmdResult {
    off_thread(move || super::autostart::set_enabled(enabled)).await??;
    edit_settings(&state, move |s| {
        s.ui.start_at_login = enabled;
        Ok(())
    })
    .await?;
    Ok(json!({ "startAtLogin": off_thread(super::autostart::is_enabled).await? }))
}

/// Starts the gateway again where the settings say (the banner's Retry).
#[tauri::command]
pub async fn retry_gateway(state: State<'_, AppState>) -> CmdResult {
    if settings(&state).await?.attach.enabled {
        return Err(CmdError::from(
            "Attached to OpenClaw: ClawPair runs no gateway of its own".to_string(),
        ));
    }
    state.gateway.start_from_settings().await;
    Ok(json!({ "gateway": state.gateway.status() }))
}

/// The one-click fix for a loopback-only gateway: listen on every interface (same port).
#[tauri::command]
pub async fn expose_on_lan(state: State<'_, AppState>) -> CmdResult {
    let port = settings(&state).await?.gateway.port;
    let everywhere = SocketAddr::new(std::net::Ipv4Addr::UNSPECIFIED.into(), port);
    // Listening first, saved after: a port taken on the network side leaves the gateway
    // where it was, and the settings as they were.
    state
        .gateway
        .start(everywhere)
        .await
        .map_err(|e| CmdError::from(format!("Still on this computer only: {e}")))?;
    edit_settings(&state, |s| {
        s.gateway.bind = "0.0.0.0".into();
        Ok(())
    })
    .await?;
    Ok(json!({ "gateway": state.gateway.status() }))
}

/// Replaces the gateway's admin token (Settings): every session that used the old one is
/// closed. The new token never reaches the window.
#[tauri::command]
pub async fn rotate_admin_token(state: State<'_, AppState>) -> CmdResult {
    call(&state, OwnerRequest::AdminTokenRotate {}).await
}

/// Opens the logs folder in the file manager.
#[tauri::command]
pub async fn open_logs(state: State<'_, AppState>) -> CmdResult {
    let dir = state.service.paths().logs_dir();
    let d = dir.clone();
    off_thread(move || clawpair_core::store::fs::ensure_dir(&d))
        .await?
        .map_err(|e| CmdError::from(e.to_string()))?;
    std::process::Command::new("xdg-open")
        .arg(&dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| CmdError::from(format!("cannot open {}: {e}", dir.display())))?;
    Ok(json!({ "path": dir.display().to_string() }))
}

#[tauri::command]
pub async fn dismiss_guide(state: State<'_, AppState>) -> CmdResult {
    set_guide(&state, false).await
}

#[tauri::command]
pub async fn show_guide(state: State<'_, AppState>) -> CmdResult {
    set_guide(&state, true).await
}

async fn set_guide(state: &AppState, on: bool) -> CmdResult {
    edit_settings(state, move |s| {
        s.ui.show_guide = on;
        Ok(())
    })
    .await?;
    Ok(json!({ "showGuide": on }))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::{json, Value};
    use tauri::ipc::{CallbackFn, InvokeBody};
    use tauri::test::{
        get_ipc_response, mock_builder, mock_context, noop_assets, MockRuntime, INVOKE_KEY,
    };
    use tauri::webview::InvokeRequest;
    use tauri::{App, WebviewWindow};

    use crate::app::{build_app, notify::NotifyStatus, AppState, GatewayCtl};
    use clawpair_core::clock::SystemClock;
    use clawpair_core::service::{DeviceAsk, InboundDm, Service};
    use clawpair_core::store::StatePaths;

    fn app() -> (
        tempfile::TempDir,
        Arc<Service>,
        App<MockRuntime>,
        WebviewWindow<MockRuntime>,
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let (service, _) = Service::open(
            StatePaths::new(tmp.path().join("state")),
            Arc::new(SystemClock),
        )
        .unwrap();
        let service = Arc::new(service);
        let backend = Arc::new(std::sync::RwLock::new(
            clawpair_core::attach::Backend::Local(service.clone()),
        ));
        let gateway = Arc::new(GatewayCtl::new(service.clone()));
        let state = AppState {
            service: service.clone(),
            backend: backend.clone(),
            gateway: gateway.clone(),
            first_run: false,
            notifier: Arc::new(NotifyStatus::default()),
            channels: Default::default(),
            attach: super::super::AttachCtl::new(service.clone(), backend, gateway, Vec::new()),
        };
        let app = build_app(mock_builder(), state)
            .build(mock_context(noop_assets()))
            .unwrap();
        let w = tauri::WebviewWindowBuilder::new(&app, "main", Default::default())
            .build()
            .unwrap();
        (tmp, service, app, w)
    }

    fn invoke(w: &WebviewWindow<MockRuntime>, cmd: &str, body: Value) -> Result<Value, Value> {
        get_ipc_response(
            w,
            InvokeRequest {
                cmd: cmd.into(),
                callback: CallbackFn(0),
                error: CallbackFn(1),
                url: "tauri://localhost".parse().unwrap(),
                body: InvokeBody::Json(body),
                headers: Default::default(),
                invoke_key: INVOKE_KEY.to_string(),
            },
        )
        .map(|b| b.deserialize::<Value>().unwrap())
    }

    fn dm(service: &Service, sender: &str) -> String {
        let d = service
            .dm_inbound(&InboundDm {
                channel: "telegram".into(),
                sender: sender.into(),
                ..Default::default()
            })
            .unwrap();
        match d {
            clawpair_core::pairing::dm::Decision::Challenge { code, .. } => code,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn window_replaces_the_admin_token_without_ever_seeing_it() {
        let (_tmp, service, _app, w) = app();
        let old = service.settings().gateway.auth.token.clone();
        let r = invoke(&w, "rotate_admin_token", json!({})).unwrap();
        let new = service.settings().gateway.auth.token.clone();
        assert_ne!(new, old);
        assert!(r["rotatedAtMs"].is_i64());
        assert!(!r.to_string().contains(&new) && !r.to_string().contains(&old));
        let audit = service.audit_tail(5).unwrap();
        assert!(audit
            .iter()
            .any(|e| e.action == "gateway.token.rotated" && e.via == "window"));
    }

    #[test]
    fn window_adds_and_removes_gateways_and_never_shows_their_tokens() {
        let (_tmp, service, _app, w) = app();
        let pin = "ab".repeat(32);
        let add = |body: Value| invoke(&w, "attach_add", body);
        let clear = add(json!({ "url": "ws://10.0.0.5:18789", "token": "s3cret-token" }))
            .unwrap_err()
            .to_string();
        assert!(clear.contains("10.0.0.5"), "{clear}");
        let tokenless = add(json!({ "url": "wss://10.0.0.5:18789", "tlsFingerprint": pin }))
            .unwrap_err()
            .to_string();
        assert!(tokenless.contains("token"), "{tokenless}");
        assert!(
            service.settings().attach.gateways.is_empty(),
            "nothing refused is kept"
        );

        let r = add(
            json!({ "url": "wss://10.0.0.5:18789", "token": "s3cret-token",
                            "tlsFingerprint": pin, "label": "home" }),
        )
        .unwrap();
        assert!(!r.to_string().contains("s3cret"), "{r}");
        let saved = service.settings().attach.gateways.clone();
        assert_eq!(saved.len(), 1);
        assert_eq!(saved[0].token.as_deref(), Some("s3cret-token"));
        assert_eq!(saved[0].label.as_deref(), Some("home"));
        let twice =
            add(json!({ "url": "wss://10.0.0.5:18789", "token": "t", "tlsFingerprint": pin }))
                .unwrap_err()
                .to_string();
        assert!(twice.contains("already"), "{twice}");
        let audit = service.audit_tail(10).unwrap();
        let logged = serde_json::to_string(&audit).unwrap();
        assert!(
            logged.contains("attach.gateways") && !logged.contains("s3cret"),
            "{logged}"
        );

        invoke(&w, "attach_remove", json!({ "gateway": "home" })).unwrap();
        assert!(service.settings().attach.gateways.is_empty());
        let gone = invoke(&w, "attach_remove", json!({ "gateway": "home" }))
            .unwrap_err()
            .to_string();
        assert!(gone.contains("no gateway"), "{gone}");
    }

    #[test]
    fn window_lists_and_approves_a_dm_request() {
        let (_tmp, service, _app, w) = app();
        let code = dm(&service, "77");
        let list = invoke(&w, "list_requests", json!({})).unwrap();
        assert_eq!(list["dm"][0]["code"], code.as_str());
        let r = invoke(
            &w,
            "approve_dm",
            json!({ "channel": "telegram", "code": code, "notify": true }),
        )
        .unwrap();
        assert_eq!(r["senderId"], "77");
        assert!(service
            .dm
            .is_allowed(
                &clawpair_core::store::ChannelName::from_static("telegram"),
                &clawpair_core::store::AccountId::DEFAULT,
                "77"
            )
            .unwrap());
        let audit = service.audit_tail(5).unwrap();
        assert!(audit
            .iter()
            .any(|e| e.action == "dm.approved" && e.via == "window"));
        let e = invoke(
            &w,
            "approve_dm",
            json!({ "channel": "telegram", "code": code }),
        )
        .unwrap_err();
        assert_eq!(e["code"], "NOT_FOUND", "{e}");
    }

    #[test]
    fn window_rejects_a_device_request() {
        let (_tmp, service, _app, w) = app();
        let ask = DeviceAsk {
            device_id: "d1".into(),
            public_key: "pk".into(),
            fingerprint: "AAAA-BBBB".into(),
            role: "node".into(),
            reason: "not-paired".into(),
            ..Default::default()
        };
        let (rec, _) = service.device_request(ask).unwrap();
        let list = invoke(&w, "list_requests", json!({})).unwrap();
        assert_eq!(list["devices"][0]["fingerprint"], "AAAA-BBBB");
        invoke(
            &w,
            "reject_device",
            json!({ "requestId": rec.request.request_id }),
        )
        .unwrap();
        assert!(service.device_list().unwrap().pending.is_empty());
    }

    #[test]
    fn invalid_settings_are_refused_and_nothing_is_written() {
        let (_tmp, service, _app, w) = app();
        let before = std::fs::read(service.paths().settings()).unwrap();
        let e = invoke(
            &w,
            "save_settings",
            json!({ "patch": { "pairingMaxPending": 0 } }),
        )
        .unwrap_err();
        assert!(
            e["message"]
                .as_str()
                .unwrap()
                .contains("Pending per account must be at least 1"),
            "{e}"
        );
        let e = invoke(
            &w,
            "save_settings",
            json!({ "patch": { "bind": "not an ip" } }),
        )
        .unwrap_err();
        assert!(e["message"].as_str().unwrap().contains("not an IP"), "{e}");
        let e = invoke(
            &w,
            "save_settings",
            json!({ "patch": { "publicUrl": "ws://8.8.8.8/" } }),
        )
        .unwrap_err();
        assert!(e["message"].as_str().unwrap().contains("wss://"), "{e}");
        assert_eq!(std::fs::read(service.paths().settings()).unwrap(), before);
        let ok = invoke(
            &w,
            "save_settings",
            json!({ "patch": { "pairingTtlMinutes": 30, "telegramBotToken": "123:secret" } }),
        )
        .unwrap();
        assert_eq!(ok["pairingTtlMinutes"], 30);
        assert_eq!(ok["telegram"]["botTokenSet"], true);
        assert!(
            !ok.to_string().contains("123:secret"),
            "the bot token never goes back to the window"
        );
        let settings = invoke(&w, "get_settings", json!({})).unwrap().to_string();
        assert!(
            !settings.contains(&service.settings().gateway.auth.token),
            "the admin token never goes to the window"
        );
    }

    #[test]
    fn loopback_gateway_gets_an_explanation_instead_of_a_code() {
        let (_tmp, _service, app, w) = app();
        // No gateway running: no code a phone could not use.
        let r = invoke(&w, "setup_create", json!({})).unwrap();
        assert!(
            r["error"]
                .as_str()
                .unwrap()
                .contains("The gateway is not running"),
            "{r}"
        );
        assert!(r["setupCode"].is_null());
        let gateway = tauri::Manager::state::<AppState>(&app).gateway.clone();
        tauri::async_runtime::block_on(gateway.start("127.0.0.1:0".parse().unwrap()))
            .expect("the gateway listens");
        let r = invoke(&w, "setup_create", json!({})).unwrap();
        assert_eq!(r["loopbackOnly"], true);
        assert!(r["error"].as_str().unwrap().contains("127.0.0.1"));
        let r = invoke(
            &w,
            "setup_create",
            json!({ "url": "ws://192.168.1.9:18789/" }),
        )
        .unwrap();
        assert!(r["qrSvg"].as_str().unwrap().contains("<svg"));
        assert!(r["setupCode"].as_str().is_some());
        tauri::async_runtime::block_on(gateway.stop());
    }

    #[test]
    fn tray_menu_pause_toggles_new_requests() {
        let (_tmp, service, app, _w) = app();
        // The click returns at once; the change is written off the UI thread.
        let settled = |paused: bool| {
            let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while service.settings().ui.paused != paused {
                assert!(
                    std::time::Instant::now() < end,
                    "pause never became {paused}"
                );
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        };
        crate::app::tray::on_menu(app.handle(), "pause");
        settled(true);
        let d = service
            .dm_inbound(&InboundDm {
                channel: "telegram".into(),
                sender: "9".into(),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(d.reason().as_str(), "paused");
        crate::app::tray::on_menu(app.handle(), "pause");
        settled(false);
    }
}
