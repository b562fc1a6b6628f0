//! A change to the settings as the window's Settings page sends it: only the fields present
//! change, and a value that would not validate is refused before anything is written.

use serde::Deserialize;

use super::Settings;
use crate::pairing::dm::DmPolicy;

/// The fields the Settings page may change; absent fields are left alone. Its `Debug` hides
/// the bot token.
#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SettingsPatch {
    pub bind: Option<String>,
    pub port: Option<u16>,
    pub public_url: Option<String>,
    pub pairing_ttl_minutes: Option<u64>,
    pub pairing_max_pending: Option<usize>,
    pub device_pending_ttl_minutes: Option<u64>,
    pub setup_code_ttl_minutes: Option<u64>,
    /// Days a paired device may go unseen before it is flagged; 0 turns that off.
    pub stale_after_days: Option<u64>,
    pub expire_stale: Option<bool>,
    /// channel → policy
    pub dm_policies: Option<std::collections::BTreeMap<String, DmPolicy>>,
    pub telegram_enabled: Option<bool>,
    /// A new bot token; empty leaves the stored one alone.
    pub telegram_bot_token: Option<String>,
    pub telegram_owners: Option<Vec<String>>,
    pub notifications: Option<bool>,
}

impl std::fmt::Debug for SettingsPatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SettingsPatch")
            .field("bind", &self.bind)
            .field("port", &self.port)
            .field("public_url", &self.public_url)
            .field("pairing_ttl_minutes", &self.pairing_ttl_minutes)
            .field("pairing_max_pending", &self.pairing_max_pending)
            .field(
                "device_pending_ttl_minutes",
                &self.device_pending_ttl_minutes,
            )
            .field("setup_code_ttl_minutes", &self.setup_code_ttl_minutes)
            .field("stale_after_days", &self.stale_after_days)
            .field("expire_stale", &self.expire_stale)
            .field("dm_policies", &self.dm_policies)
            .field("telegram_enabled", &self.telegram_enabled)
            .field(
                "telegram_bot_token",
                &self.telegram_bot_token.as_ref().map(|_| "<hidden>"),
            )
            .field("telegram_owners", &self.telegram_owners)
            .field("notifications", &self.notifications)
            .finish()
    }
}

impl SettingsPatch {
    /// Refuses what can be refused before the file is even locked: a bind that is not an IP.
    pub fn check(&self) -> Result<(), String> {
        if let Some(b) = &self.bind {
            b.trim()
                .parse::<std::net::IpAddr>()
                .map_err(|_| format!("{b:?} is not an IP address (e.g. 127.0.0.1 or 0.0.0.0)"))?;
        }
        Ok(())
    }

    /// Applies the fields present to `s`, trimmed. The whole result is validated by the
    /// caller ([`super::update`]) before it is written.
    pub fn apply(&self, s: &mut Settings) -> Result<(), String> {
        self.check()?;
        if let Some(b) = &self.bind {
            s.gateway.bind = b.trim().to_string();
        }
        if let Some(p) = self.port {
            s.gateway.port = p;
        }
        if let Some(u) = &self.public_url {
            s.gateway.public_url = Some(u.trim().to_string()).filter(|u| !u.is_empty());
        }
        if let Some(v) = self.pairing_ttl_minutes {
            s.pairing.ttl_minutes = v;
        }
        if let Some(v) = self.pairing_max_pending {
            s.pairing.max_pending = v;
        }
        if let Some(v) = self.device_pending_ttl_minutes {
            s.devices.pending_ttl_minutes = v;
        }
        if let Some(v) = self.setup_code_ttl_minutes {
            s.devices.setup_code_ttl_minutes = v;
        }
        if let Some(v) = self.stale_after_days {
            s.devices.stale_after_days = (v > 0).then_some(v);
        }
        if let Some(v) = self.expire_stale {
            s.devices.expire_stale = v;
        }
        for (ch, pol) in self.dm_policies.iter().flatten() {
            s.channels.entry(ch.clone()).or_default().dm_policy = Some(*pol);
        }
        if self.telegram_enabled.is_some()
            || self.telegram_bot_token.is_some()
            || self.telegram_owners.is_some()
        {
            let tg = s.channels.entry("telegram".into()).or_default();
            if let Some(e) = self.telegram_enabled {
                tg.enabled = Some(e);
            }
            if let Some(t) = self
                .telegram_bot_token
                .as_deref()
                .map(str::trim)
                .filter(|t| !t.is_empty())
            {
                tg.bot_token = Some(t.to_string());
            }
            if let Some(o) = &self.telegram_owners {
                tg.owners = o
                    .iter()
                    .map(|x| x.trim().to_string())
                    .filter(|x| !x.is_empty())
                    .collect();
            }
        }
        if let Some(n) = self.notifications {
            s.ui.notifications = n;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patch(v: serde_json::Value) -> SettingsPatch {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn only_the_fields_sent_change_trimmed() {
        let mut s = Settings::default();
        let before = s.clone();
        patch(serde_json::json!({})).apply(&mut s).unwrap();
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            serde_json::to_value(&before).unwrap()
        );
        patch(serde_json::json!({
            "bind": " 0.0.0.0 ", "publicUrl": "  ", "staleAfterDays": 0,
            "telegramOwners": [" 42 ", ""], "telegramBotToken": " ",
            "dmPolicies": { "telegram": "allowlist" },
        }))
        .apply(&mut s)
        .unwrap();
        assert_eq!(s.gateway.bind, "0.0.0.0");
        assert_eq!(s.gateway.port, before.gateway.port);
        assert_eq!(s.gateway.public_url, None, "blank clears it");
        assert_eq!(s.devices.stale_after_days, None, "0 turns it off");
        let tg = &s.channels["telegram"];
        assert_eq!(tg.owners, ["42"]);
        assert_eq!(tg.bot_token, None, "a blank token leaves it alone");
        assert_eq!(tg.dm_policy, Some(DmPolicy::Allowlist));
    }

    #[test]
    fn a_bind_that_is_no_address_is_refused_and_nothing_changes() {
        let mut s = Settings::default();
        let e = patch(serde_json::json!({ "bind": "localhost", "port": 1 }))
            .apply(&mut s)
            .unwrap_err();
        assert!(e.contains("\"localhost\" is not an IP address"), "{e}");
        assert_eq!(s.gateway.port, Settings::default().gateway.port);
    }

    #[test]
    fn the_bot_token_never_shows_in_debug() {
        let p = patch(serde_json::json!({ "telegramBotToken": "123:secret" }));
        assert!(!format!("{p:?}").contains("secret"));
    }
}
