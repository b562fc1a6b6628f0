//! The window the app opens instead of itself when the owner's settings file does not parse.
//!
//! `clawpair.json` is edited by hand; a mistake in it must never cost the admin token or the
//! bot (see [`clawpair_core::store::fs::OWNER_EDITED`]). So the app does not start its gateway on
//! defaults: it says which file, which line and column and what is wrong, opens the file in
//! the owner's editor, checks it again, and puts back the last settings ClawPair wrote
//! (`clawpair.json.last-good`) only when asked. Nothing here writes unless the owner clicks.

use serde_json::{json, Value};
use tauri::{AppHandle, Runtime, State, WebviewUrl, WebviewWindowBuilder};

use super::commands::CmdError;
use super::{AppArgs, MAIN_WINDOW};
use clawpair_core::clock::SystemClock;
use clawpair_core::store::{StatePaths, StoreError};

/// A settings file that stops the app, and where it lives.
pub struct Problem {
    paths: StatePaths,
}

/// The state directory's settings, when they do not parse; `None` when the app can start (or
/// when what is wrong is not the settings file: the usual start reports that).
pub fn find(args: &AppArgs) -> Option<Problem> {
    let dir = clawpair_core::config::resolve_state_dir(args.state_dir.as_deref()).ok()?;
    let paths = StatePaths::new(dir);
    match clawpair_core::config::read(&paths, &SystemClock) {
        Err(StoreError::Invalid { .. }) => Some(Problem { paths }),
        _ => None,
    }
}

impl Problem {
    /// What is wrong now (the owner may have edited the file since), or `None` once it parses.
    fn now(&self) -> Option<Value> {
        let Err(StoreError::Invalid {
            path,
            line,
            column,
            reason,
        }) = clawpair_core::config::read(&self.paths, &SystemClock)
        else {
            return None;
        };
        let last = clawpair_core::config::last_good(&self.paths)
            .map(|l| json!({ "path": l.path.display().to_string(), "when": l.when }));
        Some(json!({
            "path": path.display().to_string(),
            "line": line,
            "column": column,
            "reason": reason,
            "lastGood": last,
        }))
    }
}

/// Runs the problem window until it is closed, or until the settings parse again (then the
/// app starts over, as itself).
pub fn run(problem: Problem) -> Result<(), String> {
    if let Some(p) = problem.now() {
        let line = format!(
            "{} has a mistake at line {}, column {}: {}",
            p["path"].as_str().unwrap_or(""),
            p["line"],
            p["column"],
            p["reason"].as_str().unwrap_or("")
        );
        tracing::error!("{line}; ClawPair has not started (its window says how to go on)");
        eprintln!(
            "error: {line}. ClawPair has not started; correct the file or run `clawpair doctor`"
        );
    }
    tauri::Builder::default()
        .manage(problem)
        .invoke_handler(tauri::generate_handler![
            settings_problem,
            open_settings_file,
            check_settings_again,
            restore_settings,
        ])
        .setup(|app| {
            WebviewWindowBuilder::new(app, MAIN_WINDOW, WebviewUrl::App("problem.html".into()))
                .title("ClawPair cannot start")
                .inner_size(720.0, 560.0)
                .min_inner_size(480.0, 400.0)
                .build()?;
            Ok(())
        })
        .run(tauri::generate_context!())
        .map_err(|e| format!("cannot open the desktop app's window: {e}"))
}

/// Starts the app again, now that the settings parse.
fn start_over<R: Runtime>(app: &AppHandle<R>) -> Value {
    let handle = app.clone();
    // After the answer reaches the window.
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        handle.restart();
    });
    json!({ "message": "The settings parse. Starting ClawPair…" })
}

#[tauri::command]
pub fn settings_problem(problem: State<'_, Problem>) -> Result<Value, CmdError> {
    Ok(problem.now().unwrap_or_else(|| json!({ "fixed": true })))
}

#[tauri::command]
pub fn open_settings_file(problem: State<'_, Problem>) -> Result<Value, CmdError> {
    let file = problem.paths.settings();
    std::process::Command::new("xdg-open")
        .arg(&file)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| CmdError::from(format!("cannot open {}: {e}", file.display())))?;
    Ok(json!({ "message": format!("Opened {} in your editor.", file.display()) }))
}

#[tauri::command]
pub fn check_settings_again<R: Runtime>(
    app: AppHandle<R>,
    problem: State<'_, Problem>,
) -> Result<Value, CmdError> {
    match problem.now() {
        None => Ok(start_over(&app)),
        Some(p) => Err(CmdError::from(format!(
            "Still a mistake at line {}, column {}: {}",
            p["line"],
            p["column"],
            p["reason"].as_str().unwrap_or("")
        ))),
    }
}

#[tauri::command]
pub fn restore_settings<R: Runtime>(
    app: AppHandle<R>,
    problem: State<'_, Problem>,
) -> Result<Value, CmdError> {
    if problem.now().is_none() {
        return Ok(start_over(&app));
    }
    let last = clawpair_core::config::last_good(&problem.paths).ok_or_else(|| {
        CmdError::from("No earlier settings were kept: correct the file by hand".to_string())
    })?;
    let aside = clawpair_core::config::restore_last_good(&problem.paths, &last, &SystemClock)
        .map_err(CmdError::from)?;
    tracing::info!(
        "put back the settings from {}; the file that did not parse is kept as {}",
        last.path.display(),
        aside.display()
    );
    Ok(start_over(&app))
}
