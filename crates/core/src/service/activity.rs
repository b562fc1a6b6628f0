//! The audit log in sentences: "You approved Pixel 9 Pro (node) from a notification." for the
//! window's Activity and `clawpair audit`, with the raw record kept beside each one.
//!
//! Devices are named as the owner knows them (their label, else their own name), from the
//! paired list and from the log itself (a request records the name the device gave), so a
//! device removed since keeps its name in its history. Requester text is sanitised.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::sanitize::sanitize;
use crate::store::audit::AuditEntry;

use super::PairedDeviceView;

/// Device id → the name to show.
#[derive(Debug, Default, Clone)]
pub struct Names(BTreeMap<String, String>);

impl Names {
    /// Names from the log's own records (oldest first, later ones win), then from the devices
    /// paired now (the owner's labels win over everything).
    pub fn gather(entries: &[AuditEntry], paired: &[PairedDeviceView]) -> Names {
        let mut m = BTreeMap::new();
        for e in entries {
            let id = text(e, "deviceId");
            if id.is_empty() {
                continue;
            }
            let name = match e.action.as_str() {
                "device.renamed" => text(e, "label"),
                _ => text(e, "displayName"),
            };
            if !name.is_empty() {
                m.insert(id, name);
            }
        }
        for d in paired {
            m.insert(d.device_id.clone(), d.name.clone());
        }
        Names(m)
    }

    /// These names over `earlier` (a record just read names a device anew).
    pub fn over(self, mut earlier: Names) -> Names {
        earlier.0.extend(self.0);
        earlier
    }

    fn of(&self, id: &str) -> String {
        match self.0.get(id).filter(|n| !n.is_empty()) {
            Some(n) => sanitize(n),
            None if id.is_empty() => "a device".into(),
            None => format!("device {}…", id.chars().take(8).collect::<String>()),
        }
    }
}

/// A string field of an entry (sanitised), or "".
fn text(e: &AuditEntry, key: &str) -> String {
    e.details
        .get(key)
        .and_then(Value::as_str)
        .map(sanitize)
        .unwrap_or_default()
}

fn number(e: &AuditEntry, key: &str) -> Option<i64> {
    e.details.get(key).and_then(Value::as_i64)
}

fn list(e: &AuditEntry, key: &str) -> Vec<String> {
    e.details
        .get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(sanitize).collect())
        .unwrap_or_default()
}

/// Who acted, and from where: ("You", " from a notification").
fn actor(e: &AuditEntry, names: &Names) -> (String, &'static str) {
    let (client, credential) = match e.via.split_once('@') {
        Some((c, cred)) => (c.to_string(), cred.to_string()),
        None => (e.via.clone(), e.credential.clone()),
    };
    if let Some(rest) = credential.strip_prefix("device:") {
        let id = rest.split('/').next().unwrap_or("");
        return (format!("{} (a paired device)", names.of(id)), "");
    }
    if credential == "admin-token" && client == "cli" {
        return ("You".into(), " on the command line, with the admin token");
    }
    if credential == "admin-token" {
        return (
            format!("{} with the admin token", quoted_client(&client)),
            "",
        );
    }
    match client.as_str() {
        "window" => ("You".into(), " in the window"),
        "notification" => ("You".into(), " from a notification"),
        "tray" => ("You".into(), " from the tray"),
        "cli" => ("You".into(), " on the command line"),
        "telegram" => ("You".into(), " in Telegram"),
        "gateway" => ("The gateway".into(), ""),
        "store" => ("ClawPair".into(), ""),
        "" => ("Someone".into(), ""),
        other => (quoted_client(other), ""),
    }
}

fn quoted_client(client: &str) -> String {
    if client.is_empty() {
        "a client".into()
    } else {
        format!("the client \"{}\"", sanitize(client))
    }
}

/// A chat sender as the log knows them: "Telegram sender 4242".
fn sender(e: &AuditEntry) -> String {
    let channel = text(e, "channel");
    let mut ch = channel.clone();
    if let Some(first) = ch.get(..1) {
        ch = first.to_uppercase() + &channel[1..];
    }
    let account = text(e, "accountId");
    let account = if account.is_empty() || account == "default" {
        String::new()
    } else {
        format!(" (account {account})")
    };
    format!("{ch} sender {}{account}", text(e, "senderId"))
}

fn local_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| {
            chrono::DateTime::<chrono::Local>::from(t)
                .format("%H:%M")
                .to_string()
        })
        .unwrap_or_else(|| "later".into())
}

/// One entry as a sentence, ending with a full stop.
pub fn sentence(e: &AuditEntry, names: &Names) -> String {
    let (who, whence) = actor(e, names);
    let device = || names.of(&text(e, "deviceId"));
    let role = text(e, "role");
    let s = match e.action.as_str() {
        "dm.requested" => format!(
            "{} asked to talk to your agent and got code {}",
            sender(e),
            text(e, "code")
        ),
        "dm.approved" => format!(
            "{who} approved {}{whence}{}",
            sender(e),
            if e.details.get("notify") == Some(&Value::Bool(true)) {
                ", asking for them to be told"
            } else {
                ""
            }
        ),
        "dm.rejected" if text(e, "reason") == "invalid-account-name" => format!(
            "{who} rejected {}{whence}: its account name is not valid",
            sender(e)
        ),
        "dm.rejected" => format!("{who} rejected {}{whence}", sender(e)),
        "dm.dropped" => format!(
            "A request from {} was not kept: too many requests were already waiting",
            sender(e)
        ),
        "dm.notified" if e.details.get("delivered") == Some(&Value::Bool(false)) => {
            format!("{} could not be told they were approved", sender(e))
        }
        "dm.notified" => format!("{} was told they were approved", sender(e)),
        "allowlist.added" => format!("{who} allowed {}{whence}", sender(e)),
        "allowlist.removed" => format!("{who} removed {} from the allowlist{whence}", sender(e)),
        "device.requested" => {
            let platform = text(e, "platform");
            let ip = text(e, "remoteIp");
            format!(
                "{} ({}fingerprint {}) asked to pair as {role}{}",
                device(),
                if platform.is_empty() {
                    String::new()
                } else {
                    format!("{platform}, ")
                },
                text(e, "fingerprint"),
                if ip.is_empty() {
                    String::new()
                } else {
                    format!(" from {ip}")
                }
            )
        }
        "device.approved" => {
            let scopes = list(e, "scopes");
            let withheld = list(e, "withheld");
            format!(
                "{who} approved {} ({role}){whence}{}{}",
                device(),
                if scopes.is_empty() {
                    String::new()
                } else {
                    format!(" with {}", scopes.join(", "))
                },
                if withheld.is_empty() {
                    String::new()
                } else {
                    format!(", without {}", withheld.join(", "))
                }
            )
        }
        "device.rejected" => format!(
            "{who} rejected the request of {} (fingerprint {}){whence}",
            device(),
            text(e, "fingerprint")
        ),
        "device.removed" => format!("{who} removed {}{whence}", device()),
        "device.renamed" => format!(
            "{who} renamed a device \"{}\"{whence}",
            text(e, "label")
        ),
        "device.cleared" => format!(
            "{who} removed every paired device ({}) and rejected {} waiting requests{whence}",
            number(e, "removed").unwrap_or(0),
            number(e, "rejected").unwrap_or(0)
        ),
        "device.token.issued" => format!("{} received its {role} token", device()),
        "device.token.rotated" => format!(
            "{who} replaced the {role} token of {}{whence}; the old one no longer works",
            device()
        ),
        "device.token.revoked" => format!(
            "{who} revoked the {role} token of {}{whence}; it cannot connect as {role} until approved again",
            device()
        ),
        "setup.created" => {
            let retired = number(e, "retired").unwrap_or(0);
            format!(
                "{who} made a setup code for {}{whence}, valid until {}{}",
                text(e, "url"),
                number(e, "expiresAtMs")
                    .map(local_time)
                    .unwrap_or_else(|| "it expires".into()),
                match retired {
                    0 => String::new(),
                    1 => "; the earlier one no longer works".into(),
                    n => format!("; {n} earlier ones no longer work"),
                }
            )
        }
        "setup.cleanup" => format!("{who} invalidated the setup codes{whence}"),
        "gateway.token.rotated" => format!(
            "{who} replaced the gateway's admin token{whence}; whatever used the old one was disconnected"
        ),
        "settings.changed" => {
            let changed = list(e, "changed");
            if changed.is_empty() {
                format!("{who} changed the settings{whence}")
            } else {
                format!(
                    "{who} changed the settings{whence}: {}",
                    changed.join("; ")
                )
            }
        }
        "store.corrupt" => format!(
            "{} did not parse and was moved aside to {}: {}",
            text(e, "file"),
            text(e, "movedTo"),
            text(e, "reason")
        ),
        "openclaw.imported" => format!("{who} imported from OpenClaw{whence}"),
        "openclaw.call" => format!("{who} {} on OpenClaw{whence}", openclaw_call(e)),
        "openclaw.approval" => openclaw_approval(e),
        "pair.command.refused" => format!("{who}: a /pair command was refused"),
        other => format!("{who}{whence}: {}", sanitize(other)),
    };
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
        None => s,
    }
}

/// An approval OpenClaw settled, as its history records it (`approval.history`): what it was
/// for, how it ended, and who ended it.
fn openclaw_approval(e: &AuditEntry) -> String {
    let what = text(e, "what");
    let subject = match text(e, "kind").as_str() {
        "exec" => format!("an agent's command `{what}`"),
        "plugin" => format!("a plugin's request \"{what}\""),
        "system-agent" => format!("a change to OpenClaw, \"{what}\","),
        _ => format!("an approval, \"{what}\","),
    };
    let agent = text(e, "agentId");
    let agent = if agent.is_empty() {
        String::new()
    } else {
        format!(" (agent {agent})")
    };
    let ended = match (text(e, "status").as_str(), text(e, "decision").as_str()) {
        ("allowed", "allow-always") => "was always allowed",
        ("allowed", _) => "was allowed once",
        ("denied", _) => "was denied",
        ("expired", _) => "expired without an answer",
        ("cancelled", _) => "was withdrawn before an answer",
        _ => "was settled",
    };
    let by = match text(e, "resolver").as_str() {
        "device" => " from a paired device or app",
        "channel" => " from a chat",
        "runtime" => " by the agent's runtime",
        "system" => " by OpenClaw",
        _ => "",
    };
    format!("on OpenClaw, {subject}{agent} {ended}{by}")
}

/// What a decision taken from ClawPair on an attached OpenClaw did, from its method and params.
fn openclaw_call(e: &AuditEntry) -> String {
    let param = |k: &str| {
        e.details
            .get("params")
            .and_then(|p| p.get(k))
            .and_then(Value::as_str)
            .map(sanitize)
            .unwrap_or_default()
    };
    match text(e, "method").as_str() {
        "device.pair.approve" => "approved a device's request".into(),
        "device.pair.reject" => "rejected a device's request".into(),
        "node.pair.approve" => "approved a node's new commands".into(),
        "node.pair.reject" => "rejected a node's new commands".into(),
        "pairing.approve" => "approved a chat sender's request".into(),
        "pairing.reject" => "dismissed a chat sender's request".into(),
        "exec.approval.resolve" => match param("decision").as_str() {
            "allow-once" => "allowed an agent's command once".into(),
            "allow-always" => "always allowed an agent's command".into(),
            "deny" => "denied an agent's command".into(),
            _ => "answered an agent's command".into(),
        },
        "device.pair.remove" => "removed a device".into(),
        "device.token.rotate" => format!("rotated a device's {} token", param("role")),
        "device.token.revoke" => format!("revoked a device's {} token", param("role")),
        "device.setup.create" => "made a setup code".into(),
        m => format!("called {m}"),
    }
}

/// What changed between two settings, as the owner would say it, secrets never shown:
/// `["Port: 18789 → 18790", "Telegram bot token: replaced"]`.
pub fn settings_changes(before: &Value, after: &Value) -> Vec<String> {
    let mut out = Vec::new();
    diff("", before, after, &mut out);
    out
}

fn secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.contains("token") || k.contains("secret") || k.contains("password")
}

fn shown(v: &Value) -> String {
    match v {
        Value::Null => "none".into(),
        Value::String(s) if s.is_empty() => "empty".into(),
        Value::String(s) => sanitize(s),
        other => sanitize(&other.to_string()),
    }
}

fn diff(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    if a == b {
        return;
    }
    if let (Value::Object(x), Value::Object(y)) = (a, b) {
        let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
        for k in keys {
            let p = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            diff(
                &p,
                x.get(k).unwrap_or(&Value::Null),
                y.get(k).unwrap_or(&Value::Null),
                out,
            );
        }
        return;
    }
    if secret(path) {
        out.push(format!("{path}: replaced"));
    } else {
        out.push(format!(
            "{path}: {} → {}",
            shown(&hidden(a)),
            shown(&hidden(b))
        ));
    }
}

/// A value with every secret inside it (a list's items' tokens) left out.
fn hidden(v: &Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| {
                    let x = if secret(k) {
                        Value::String("(hidden)".into())
                    } else {
                        hidden(x)
                    };
                    (k.clone(), x)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(hidden).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(action: &str, via: &str, credential: &str, details: Value) -> AuditEntry {
        AuditEntry {
            ts: "2026-12-07T09:41:00.000Z".into(),
            ts_ms: 1_796_636_460_000,
            action: action.into(),
            via: via.into(),
            credential: credential.into(),
            details: details.as_object().cloned().unwrap_or_default(),
        }
    }

    #[test]
    fn decisions_taken_on_an_attached_openclaw_say_what_they_did() {
        let names = Names::gather(&[], &[]);
        let exec = entry(
            "openclaw.call",
            "notification",
            "local",
            json!({ "method": "exec.approval.resolve", "gateway": "ws://127.0.0.1:18789",
                    "params": { "id": "e1", "decision": "allow-once" } }),
        );
        assert_eq!(
            sentence(&exec, &names),
            "You allowed an agent's command once on OpenClaw from a notification."
        );
        let node = entry(
            "openclaw.call",
            "window",
            "local",
            json!({ "method": "node.pair.reject", "params": { "requestId": "n1" } }),
        );
        assert_eq!(
            sentence(&node, &names),
            "You rejected a node's new commands on OpenClaw in the window."
        );
    }

    #[test]
    fn approvals_openclaw_settled_say_what_for_how_and_by_whom() {
        let names = Names::gather(&[], &[]);
        let denied = entry(
            "openclaw.approval",
            "openclaw",
            "",
            json!({ "kind": "exec", "id": "a1", "status": "denied", "decision": "deny",
                    "what": "rm -rf /srv/cache", "agentId": "main", "resolver": "device" }),
        );
        assert_eq!(
            sentence(&denied, &names),
            "On OpenClaw, an agent's command `rm -rf /srv/cache` (agent main) was denied from a paired device or app."
        );
        let expired = entry(
            "openclaw.approval",
            "openclaw",
            "",
            json!({ "kind": "plugin", "status": "expired", "what": "Post to the blog" }),
        );
        assert_eq!(
            sentence(&expired, &names),
            "On OpenClaw, a plugin's request \"Post to the blog\" expired without an answer."
        );
    }

    #[test]
    fn decisions_read_as_sentences_with_names_and_where() {
        let req = entry(
            "device.requested",
            "gateway",
            "local",
            json!({ "deviceId": "49eae102661b", "displayName": "Pixel 9 Pro", "role": "node", "fingerprint": "K3QF-7TZA", "platform": "android", "remoteIp": "192.168.1.5" }),
        );
        let ok = entry(
            "device.approved",
            "notification",
            "local",
            json!({ "deviceId": "49eae102661b", "role": "node", "scopes": [] }),
        );
        let names = Names::gather(&[req.clone(), ok.clone()], &[]);
        assert_eq!(
            sentence(&req, &names),
            "Pixel 9 Pro (android, fingerprint K3QF-7TZA) asked to pair as node from 192.168.1.5."
        );
        assert_eq!(
            sentence(&ok, &names),
            "You approved Pixel 9 Pro (node) from a notification."
        );
        let rot = entry(
            "device.token.rotated",
            "ops-script@admin-token",
            "admin-token",
            json!({ "deviceId": "49eae102661b", "role": "node" }),
        );
        assert_eq!(
            sentence(&rot, &names),
            "The client \"ops-script\" with the admin token replaced the node token of Pixel 9 Pro; the old one no longer works."
        );
        let dm = entry(
            "dm.approved",
            "cli",
            "local",
            json!({ "channel": "telegram", "accountId": "default", "senderId": "4242", "notify": true }),
        );
        assert_eq!(
            sentence(&dm, &names),
            "You approved Telegram sender 4242 on the command line, asking for them to be told."
        );
        let unknown = entry(
            "device.removed",
            "window",
            "local",
            json!({ "deviceId": "abcdef0123456789" }),
        );
        assert_eq!(
            sentence(&unknown, &Names::default()),
            "You removed device abcdef01… in the window."
        );
    }

    #[test]
    fn a_list_in_the_settings_changes_without_its_items_secrets() {
        let a = json!({ "attach": { "enabled": true } });
        let b = json!({ "attach": { "enabled": true, "gateways": [{ "url": "wss://10.0.0.5:18789", "token": "s3cret" }] } });
        let c = settings_changes(&a, &b);
        assert_eq!(c.len(), 1);
        assert!(c[0].starts_with("attach.gateways: none → "), "{c:?}");
        assert!(
            c[0].contains("10.0.0.5") && !c[0].contains("s3cret"),
            "{c:?}"
        );
    }

    #[test]
    fn settings_changes_name_what_changed_and_never_a_secret() {
        let a = json!({ "gateway": { "port": 18789, "auth": { "token": "s3cret" } }, "ui": { "paused": false } });
        let b = json!({ "gateway": { "port": 18790, "auth": { "token": "n3w" } }, "ui": { "paused": false } });
        let c = settings_changes(&a, &b);
        assert_eq!(
            c,
            vec![
                "gateway.auth.token: replaced",
                "gateway.port: 18789 → 18790"
            ]
        );
        assert!(!c.join(" ").contains("s3cret") && !c.join(" ").contains("n3w"));
    }
}
