//! "Start at login": an XDG autostart entry (`$XDG_CONFIG_HOME/autostart/clawpair.desktop`)
//! that starts ClawPair in the tray.

use std::path::{Path, PathBuf};

pub const ENTRY_NAME: &str = "clawpair.desktop";

/// Where the entry lives.
pub fn entry_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| directories::BaseDirs::new().map(|b| b.config_dir().to_path_buf()))?;
    Some(base.join("autostart").join(ENTRY_NAME))
}

/// The entry's text for the given executable.
pub fn entry_text(exe: &Path) -> String {
    let exe = exe
        .display()
        .to_string()
        .replace('\\', "\\\\")
        .replace(' ', "\\s");
    format!(
        "[Desktop Entry]\nType=Application\nName=ClawPair\nComment=Approve who may reach your AI agent\nExec={exe} --hidden\nIcon=clawpair\nTerminal=false\nX-GNOME-Autostart-enabled=true\n"
    )
}

pub fn is_enabled() -> bool {
    entry_path().is_some_and(|p| p.exists())
}

/// Writes or removes the entry.
pub fn set_enabled(on: bool) -> Result<(), String> {
    let path = entry_path().ok_or("cannot find the XDG config directory")?;
    if on {
        let exe =
            std::env::current_exe().map_err(|e| format!("cannot find this program's path: {e}"))?;
        let dir = path.parent().ok_or("bad autostart path")?;
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        clawpair_core::store::fs::write_atomic(&path, entry_text(&exe).as_bytes())
            .map_err(|e| e.to_string())
    } else {
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("cannot remove {}: {e}", path.display())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_starts_hidden_and_escapes_spaces() {
        let t = entry_text(Path::new("/opt/Claw Pair/clawpair"));
        assert!(t.contains("Exec=/opt/Claw\\sPair/clawpair --hidden"));
        assert!(t.starts_with("[Desktop Entry]\n"));
    }
}
