//! Build script: with the `gui` feature, let tauri-build read `tauri.conf.json` and
//! `capabilities/`, and declare the app's own commands so the ACL guards them.

fn main() {
    #[cfg(feature = "gui")]
    {
        let commands: &[&str] = &["app_info"];
        let attrs = tauri_build::Attributes::new()
            .app_manifest(tauri_build::AppManifest::new().commands(commands));
        if let Err(err) = tauri_build::try_build(attrs) {
            panic!("tauri build step failed: {err:#}");
        }
    }
}
