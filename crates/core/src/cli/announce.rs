//! What the headless gateway prints as things happen: each new chat sender and device waiting
//! for the owner (who, the code or fingerprint, and the exact command that approves it), and
//! each decision. The window and notifications do this in the app; on a server this is where
//! the owner looks.

use std::collections::HashMap;

use crate::events::Event;
use crate::protocol::Resolution;
use crate::sanitize::sanitize;

/// Turns events into lines for the terminal. Remembers the requests it announced, so a
/// decision can name the device it was about.
pub struct Announcer {
    /// `clawpair` plus the `--state-dir` the gateway was started with, if any: the start of
    /// every command printed.
    command: String,
    devices: HashMap<String, String>,
}

/// Quotes a path for a POSIX shell when it needs quoting.
fn shell_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+:=@%,".contains(&b));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

impl Announcer {
    pub fn new(state_dir: Option<&std::path::Path>) -> Announcer {
        let command = match state_dir {
            Some(d) => format!(
                "clawpair --state-dir {}",
                shell_word(&d.display().to_string())
            ),
            None => "clawpair".to_string(),
        };
        Announcer {
            command,
            devices: HashMap::new(),
        }
    }

    /// The line to print for `e`, if it is one the owner should see.
    pub fn line(&mut self, e: &Event) -> Option<String> {
        let cmd = &self.command;
        match e {
            Event::DevicePairRequested(r) => {
                let who = format!("{} ({})", r.shown_name(), or(&r.platform, "unknown platform"));
                let scopes = if r.scopes.is_empty() {
                    String::new()
                } else {
                    format!(" with {}", r.scopes.join(", "))
                };
                self.devices.insert(
                    r.request_id.clone(),
                    format!("{who}, fingerprint {}", r.fingerprint),
                );
                Some(format!(
                    "Device waiting: {who} from {}, fingerprint {}, {}: role {}{scopes}.\n  \
                     Check the fingerprint on the device, then approve: {cmd} devices approve {}\n  \
                     or reject: {cmd} devices reject {}",
                    or(&r.remote_ip, "an unknown address"),
                    r.fingerprint,
                    r.kind_in_words(),
                    r.role,
                    r.request_id,
                    r.request_id,
                ))
            }
            Event::DevicePairResolved {
                request_id,
                decision,
                ..
            } => {
                let what = self
                    .devices
                    .remove(request_id)
                    .unwrap_or_else(|| format!("request {request_id}"));
                let done = match decision {
                    Resolution::Approved => "approved",
                    Resolution::Rejected => "rejected",
                    Resolution::Expired => "expired without a decision",
                    Resolution::Superseded => "replaced by a newer request from the same device",
                    Resolution::Resolved => "settled",
                };
                Some(format!("Device {what}: {done}."))
            }
            Event::PairingRequested(r) => Some(format!(
                "Chat sender waiting on {}: {}, code {}.\n  Approve: {cmd} pairing approve {} {}\n  \
                 or reject: {cmd} pairing reject {} {}",
                r.channel,
                r.who(),
                r.code,
                r.channel,
                r.code,
                r.channel,
                r.code,
            )),
            Event::PairingResolved {
                channel,
                sender_id,
                code,
                decision,
                ..
            } => {
                let done = match decision {
                    Resolution::Approved => "approved: their messages now reach the agent",
                    Resolution::Rejected => "rejected",
                    Resolution::Expired => "expired without a decision",
                    Resolution::Superseded => "replaced",
                    Resolution::Resolved => "settled",
                };
                Some(format!(
                    "Chat sender {} on {channel} (code {code}) {done}.",
                    sanitize(sender_id)
                ))
            }
            _ => None,
        }
    }
}

fn or<'a>(s: &'a str, instead: &'a str) -> &'a str {
    if s.is_empty() {
        instead
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device() -> crate::pairing::device::PendingDevice {
        serde_json::from_value(serde_json::json!({
            "requestId": "5f0c", "deviceId": "d1", "publicKey": "k", "displayName": "Pixel 9",
            "platform": "android", "role": "node", "remoteIp": "192.168.1.7",
            "fingerprint": "DLSM-L6KV", "reason": "not-paired", "ts": 1,
        }))
        .unwrap()
    }

    #[test]
    fn a_device_request_names_the_device_and_the_exact_commands() {
        let dir = std::path::Path::new("/srv/claw pair");
        let mut a = Announcer::new(Some(dir));
        let line = a
            .line(&Event::DevicePairRequested(device()))
            .expect("announced");
        assert!(
            line.contains("Pixel 9 (android) from 192.168.1.7, fingerprint DLSM-L6KV"),
            "{line}"
        );
        assert!(
            line.contains("clawpair --state-dir '/srv/claw pair' devices approve 5f0c"),
            "{line}"
        );
        let done = a.line(&Event::DevicePairResolved {
            request_id: "5f0c".into(),
            device_id: "d1".into(),
            decision: Resolution::Approved,
            ts: 2,
        });
        assert_eq!(
            done.as_deref(),
            Some("Device Pixel 9 (android), fingerprint DLSM-L6KV: approved.")
        );
    }

    #[test]
    fn a_chat_sender_gets_the_code_and_the_command() {
        let mut a = Announcer::new(None);
        let r = crate::events::DmRequestView {
            channel: "telegram".into(),
            account_id: "default".into(),
            invalid_name: false,
            id: "4242".into(),
            code: "ABCD2345".into(),
            created_at: String::new(),
            last_seen_at: String::new(),
            expires_at: String::new(),
            meta: serde_json::from_value(serde_json::json!({ "username": "dave" })).unwrap(),
        };
        let line = a.line(&Event::PairingRequested(r)).unwrap();
        assert!(line.contains("dave (4242), code ABCD2345"), "{line}");
        assert!(
            line.contains("Approve: clawpair pairing approve telegram ABCD2345"),
            "{line}"
        );
        assert!(a.line(&Event::SettingsChanged {}).is_none());
    }
}
