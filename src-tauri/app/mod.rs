//! The desktop tray app (feature `gui`): the only place that touches Tauri.

#[tauri::command]
fn app_info() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

pub fn run() -> Result<(), String> {
    tauri::Builder::default()
        .invoke_handler(tauri::generate_handler![app_info])
        .setup(|app| {
            let conf = app
                .config()
                .app
                .windows
                .first()
                .cloned()
                .ok_or("no window in config")?;
            tauri::WebviewWindowBuilder::from_config(app.handle(), &conf)?.build()?;
            Ok(())
        })
        .run(tauri::generate_context!())
        .map_err(|e| e.to_string())
}
