//! Build script: let tauri-build read `tauri.conf.json` and `capabilities/`, and declare the
//! app's own commands so the ACL guards them.

fn main() {
    {
        // Every command the window may call; capabilities/main.json grants them to it.
        let commands: &[&str] = &[
            "app_info",
            "settings_problem",
            "open_settings_file",
            "check_settings_again",
            "restore_settings",
            "app_status",
            "list_requests",
            "approve_dm",
            "reject_dm",
            "approve_device",
            "reject_device",
            "approve_node",
            "reject_node",
            "resolve_exec",
            "list_allowlist",
            "allow_add",
            "allow_remove",
            "list_devices",
            "device_remove",
            "device_clear",
            "token_rotate",
            "token_revoke",
            "setup_create",
            "setup_cleanup",
            "audit_tail",
            "get_settings",
            "save_settings",
            "set_paused",
            "set_autostart",
            "expose_on_lan",
            "retry_gateway",
            "close_approval_window",
            "open_main_window",
            "dismiss_guide",
            "show_guide",
            "open_logs",
            "rotate_admin_token",
            "openclaw_info",
            "set_attach",
            "attach_add",
            "attach_remove",
            "set_own_gateway",
        ];
        let attrs = tauri_build::Attributes::new()
            .app_manifest(tauri_build::AppManifest::new().commands(commands));
        if let Err(err) = tauri_build::try_build(attrs) {
            panic!("tauri build step failed: {err:#}");
        }
    }
}
