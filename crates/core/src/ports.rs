//! Who holds a TCP port on this computer: the listener in the kernel's tables
//! ([`crate::attach::owner`]) and, when this user may look, the process with it open. Said when
//! the gateway cannot listen, in the window, the tray and `clawpair doctor`.

/// A program holding a TCP port this process wants, as far as `/proc` tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortHolder {
    pub pid: Option<u32>,
    /// Its command line, shortened (`node /usr/lib/node_modules/openclaw/… gateway`).
    pub command: Option<String>,
    pub uid: u32,
}

impl PortHolder {
    /// Whether it is OpenClaw's gateway (ClawPair can attach to that instead).
    pub fn is_openclaw(&self) -> bool {
        self.command
            .as_deref()
            .is_some_and(|c| c.to_ascii_lowercase().contains("openclaw"))
    }
}

impl std::fmt::Display for PortHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.command, self.pid) {
            (Some(c), Some(pid)) if self.is_openclaw() => {
                write!(f, "OpenClaw's gateway (pid {pid}, `{c}`)")
            }
            (Some(c), Some(pid)) => write!(f, "`{c}` (pid {pid})"),
            _ if self.uid != crate::attach::transport::current_uid() => {
                write!(f, "a program of another user (uid {})", self.uid)
            }
            _ => write!(f, "a program that could not be identified"),
        }
    }
}

/// What holds the port `bind` asks for: the listener in the kernel's tables and, when this
/// user may look, the process that has it open. Empty when nothing listens there (or `/proc`
/// is not there to say).
pub fn port_holders(bind: std::net::SocketAddr) -> Vec<PortHolder> {
    let entries = crate::attach::transport::read_tables().unwrap_or_default();
    let held = crate::attach::owner::holding(&entries, bind);
    if held.is_empty() {
        return vec![];
    }
    let wanted: Vec<String> = held
        .iter()
        .map(|e| format!("socket:[{}]", e.inode))
        .collect();
    let mut found: Vec<(usize, u32)> = Vec::new();
    if let Ok(procs) = std::fs::read_dir("/proc") {
        for p in procs.flatten() {
            let Some(pid) = p.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else {
                continue;
            };
            for fd in fds.flatten() {
                if let Ok(link) = std::fs::read_link(fd.path()) {
                    let link = link.to_string_lossy();
                    if let Some(i) = wanted.iter().position(|w| *w == link) {
                        found.push((i, pid));
                    }
                }
            }
        }
    }
    held.iter()
        .enumerate()
        .map(|(i, e)| {
            let pid = found.iter().find(|(j, _)| *j == i).map(|(_, pid)| *pid);
            PortHolder {
                pid,
                command: pid.and_then(command_line),
                uid: e.uid,
            }
        })
        .collect()
}

/// A process's command line, words joined by spaces, at most 120 characters and printable.
fn command_line(pid: u32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let words: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|w| !w.is_empty())
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect();
    let line = crate::sanitize::sanitize(&words.join(" "));
    if line.is_empty() {
        return None;
    }
    Some(match line.char_indices().nth(120) {
        Some((at, _)) => format!("{}…", &line[..at]),
        None => line,
    })
}

/// The port is taken, by whom, and what to do.
pub fn in_use(addr: std::net::SocketAddr, h: &PortHolder) -> String {
    let advice = if h.is_openclaw() {
        "choose another port, or let ClawPair be its approval desk (Settings → OpenClaw, or `clawpair --attach`)"
    } else {
        "choose another port, or stop that program"
    };
    format!(
        "cannot listen on {addr}: port {} is in use by {h}; {advice}",
        addr.port()
    )
}
