//! What each chat channel's settings (`channels.<name>` in `clawpair.json`) must look like.
//! The checks belong to the settings, so [`Settings::problems`](super::Settings::problems) needs
//! nothing from `channels/`; each channel runs the same checks before it starts.

/// `channels.telegram`: the bot token's shape, the API base URL, the long-poll timeout.
pub mod telegram {
    use crate::config::ChannelSettings;

    /// The channel name in settings, files and events.
    pub const CHANNEL: &str = "telegram";
    /// The longest long poll accepted in settings.
    pub const MAX_POLL_TIMEOUT_SECONDS: u64 = 50;

    /// Whether a bot token has the shape Telegram issues: digits, a colon, then
    /// `[A-Za-z0-9_-]`. Anything else could change the request URL, so it is refused before it
    /// is ever sent.
    pub fn token_looks_valid(token: &str) -> bool {
        match token.trim().split_once(':') {
            Some((id, secret)) => {
                !id.is_empty()
                    && id.len() <= 20
                    && id.bytes().all(|b| b.is_ascii_digit())
                    && !secret.is_empty()
                    && secret
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            }
            None => false,
        }
    }

    /// What is wrong with `channels.telegram`, as one-line reasons that never quote the token.
    pub fn problems(c: &ChannelSettings) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(t) = c.bot_token.as_deref().filter(|t| !t.trim().is_empty()) {
            if !token_looks_valid(t) {
                out.push(
                    "The Telegram bot token does not look like one from @BotFather \
                     (digits, a colon, then letters, digits, '_' or '-')"
                        .to_string(),
                );
            }
        }
        if let Some(base) = &c.api_base {
            if let Err(e) = check_api_base(base) {
                out.push(format!("channels.telegram.apiBase {e}"));
            }
        }
        if let Some(t) = c.poll_timeout_seconds {
            if !(1..=MAX_POLL_TIMEOUT_SECONDS).contains(&t) {
                out.push(format!(
                    "channels.telegram.pollTimeoutSeconds must be between 1 and {MAX_POLL_TIMEOUT_SECONDS}"
                ));
            }
        }
        out
    }

    /// The token travels in the URL path, so it only goes over TLS, or in clear to this
    /// computer (a test server). The value is not quoted back: a pasted URL might hold the
    /// token.
    pub fn check_api_base(base: &str) -> Result<(), &'static str> {
        let u = url::Url::parse(base.trim()).map_err(|_| "is not a URL")?;
        let loopback = match u.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            None => false,
        };
        match u.scheme() {
            "https" => {}
            "http" if loopback => {}
            "http" => {
                return Err("must use https:// (plain http:// only for a server on this computer)")
            }
            _ => return Err("must be an https:// URL"),
        }
        if u.host().is_none()
            || u.query().is_some()
            || u.fragment().is_some()
            || !u.username().is_empty()
            || u.password().is_some()
        {
            return Err("must be a plain base URL such as https://api.telegram.org");
        }
        Ok(())
    }
}
