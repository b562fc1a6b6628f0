//! The built-in Telegram channel (SPEC §8): a Bot API adapter running beside the gateway.
//!
//! It long-polls `getUpdates`, hands every private message to the DM policy
//! ([`Service::dm_inbound`]) and sends unknown senders their pairing reply; after an approval
//! with notify it sends the confirmation. Owners (`channels.telegram.owners`) get the `/pair`
//! commands ([`commands`]). Group chats never pair and never get an answer.
//!
//! # Starting it
//!
//! ```ignore
//! let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
//! let task = clawpair::channels::telegram::spawn(service.clone(), gateway.local_addr(), stop_rx);
//! // … later
//! stop_tx.send(true).ok(); // or drop stop_tx
//! task.await.ok();
//! ```
//!
//! [`spawn`] needs a tokio runtime and returns at once. `listening` is where the gateway
//! listens (setup codes derive their URL from it when `gateway.publicUrl` is unset). The task
//! follows `clawpair.json`, so it may be spawned whether or not the bot is configured: disabled
//! or without a token it waits for a `settings.changed` event; a new token, `apiBase` or poll
//! timeout restarts the polling, `enabled: false` stops it. Its
//! state is published as `channel.status {channel: "telegram", connected, error}` whenever it
//! changes (subscribe to [`Service::events`] before spawning to see the first one); the error
//! text never holds the bot token. [`configured`] tells whether settings ask for the bot.
//!
//! # Delivery
//!
//! The offset of the next update is kept in `credentials/telegram-offset.json` (with the bot's
//! id, so another bot starts afresh) and written *before* a batch is handled: after a crash an
//! update may be lost, but none is ever handled twice. Messages go out from a queue on their
//! own task, which retries network errors with a short backoff and obeys Telegram's
//! `retry_after`: a throttled or slow send never holds up the polling, the pairing replies or
//! the owner's commands. Polling backs off from 1 s to 60 s. A stranger who tries `/pair` is
//! refused at most once an hour (and audited once), so a flood of commands cannot fill the
//! queue or the log.
//!
//! # Where things are
//!
//! This file holds the settings the bot runs from and [`spawn`]; `poll.rs` the adapter's loop
//! (settings, events, `getMe`/`getUpdates`, the stored offset), `bot.rs` how the bot answers
//! an update (the DM policy, the owners' `/pair` commands), `send.rs` the outgoing queues and
//! their sending tasks; `api.rs` is the Bot API, `commands.rs` every text the bot sends.

pub mod api;
mod bot;
pub mod commands;
mod poll;
mod send;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use self::api::BotToken;
use self::poll::Adapter;
use super::StatusLine;
use crate::config::Settings;
use crate::service::Service;
use crate::store::ChannelName;

pub use crate::config::channels::telegram::{
    problems as settings_problems, CHANNEL, MAX_POLL_TIMEOUT_SECONDS,
};
/// The same, as the checked name files are built from.
pub const CHANNEL_NAME: ChannelName = ChannelName::from_static(CHANNEL);
/// Who acts, in the audit log, when an owner uses `/pair`.
pub const VIA: &str = "telegram";
/// How long one long poll waits for news unless `pollTimeoutSeconds` says otherwise.
pub const DEFAULT_POLL_TIMEOUT_SECONDS: u64 = 25;

/// Whether settings ask for the bot: `channels.telegram.enabled` and a bot token.
pub fn configured(settings: &Settings) -> bool {
    settings.channel(CHANNEL).is_some_and(|c| {
        c.enabled == Some(true) && c.bot_token.as_deref().is_some_and(|t| !t.trim().is_empty())
    })
}

/// What polling needs from settings; a change of any of it restarts the polling.
#[derive(Debug, Clone, PartialEq)]
struct BotConfig {
    token: BotToken,
    api_base: String,
    poll_timeout: Duration,
}

/// Why the adapter is not polling.
#[derive(Debug)]
enum Idle {
    Disabled,
    Unusable(String),
}

fn bot_config(settings: &Settings) -> Result<BotConfig, Idle> {
    let Some(c) = settings
        .channel(CHANNEL)
        .filter(|c| c.enabled == Some(true))
    else {
        return Err(Idle::Disabled);
    };
    let Some(token) = c.bot_token.as_deref().filter(|t| !t.trim().is_empty()) else {
        return Err(Idle::Unusable(
            "channels.telegram.enabled is true but no botToken is set".into(),
        ));
    };
    let problems = settings_problems(c);
    if !problems.is_empty() {
        return Err(Idle::Unusable(problems.join("; ")));
    }
    Ok(BotConfig {
        token: BotToken::new(token),
        api_base: c
            .api_base
            .as_deref()
            .filter(|b| !b.trim().is_empty())
            .unwrap_or(api::DEFAULT_API_BASE)
            .to_string(),
        poll_timeout: Duration::from_secs(
            c.poll_timeout_seconds
                .unwrap_or(DEFAULT_POLL_TIMEOUT_SECONDS),
        ),
    })
}

fn still(settings: &Settings, cfg: &BotConfig) -> bool {
    matches!(bot_config(settings), Ok(c) if &c == cfg)
}

/// Starts the adapter on the current tokio runtime (see the module doc). It stops when
/// `shutdown` becomes `true` or its sender is dropped, publishing a last `channel.status`.
/// The Telegram channel, as the registry ([`crate::channels::CHANNELS`]) starts it.
pub struct Telegram;

impl crate::channels::Channel for Telegram {
    fn name(&self) -> &'static str {
        CHANNEL
    }

    fn spawn(
        &self,
        service: Arc<Service>,
        listening: SocketAddr,
        stop: watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        spawn(service, listening, stop)
    }

    fn describe(&self, settings: &Settings) -> Option<String> {
        let enabled = settings
            .channel(CHANNEL)
            .is_some_and(|c| c.enabled == Some(true));
        if configured(settings) {
            let owners = settings.channel(CHANNEL).map_or(0, |c| c.owners.len());
            Some(format!(
                "Telegram channel on ({owners} owner(s) may use /pair)."
            ))
        } else if enabled {
            Some("warning: channels.telegram.enabled is true but no botToken is set; the Telegram channel stays off until one is".into())
        } else {
            None
        }
    }
}

/// Starts the Telegram adapter: it follows the settings, idle while no bot is configured.
pub fn spawn(
    service: Arc<Service>,
    listening: SocketAddr,
    shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    // Subscribe before returning, so no approval published from now on is missed.
    let events = service.events().subscribe();
    let adapter = Adapter {
        service,
        listening,
        events,
        shutdown,
        status: StatusLine::new(CHANNEL),
    };
    tokio::spawn(adapter.run())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ChannelSettings;

    fn tg(f: impl FnOnce(&mut ChannelSettings)) -> Settings {
        let mut c = ChannelSettings {
            enabled: Some(true),
            bot_token: Some("123:abc_DEF-9".into()),
            ..Default::default()
        };
        f(&mut c);
        let mut s = Settings::default();
        s.channels.insert(CHANNEL.into(), c);
        s
    }

    #[test]
    fn the_bot_runs_only_when_enabled_with_a_token() {
        assert!(configured(&tg(|_| {})));
        assert!(!configured(&tg(|c| c.enabled = None)));
        assert!(!configured(&tg(|c| c.bot_token = Some(" ".into()))));
        assert!(!configured(&Settings::default()));
        let cfg = bot_config(&tg(|_| {})).unwrap();
        assert_eq!(cfg.api_base, api::DEFAULT_API_BASE);
        assert_eq!(
            cfg.poll_timeout,
            Duration::from_secs(DEFAULT_POLL_TIMEOUT_SECONDS)
        );
        assert!(matches!(
            bot_config(&tg(|c| c.bot_token = None)),
            Err(Idle::Unusable(_))
        ));
        assert!(matches!(
            bot_config(&tg(|c| c.enabled = Some(false))),
            Err(Idle::Disabled)
        ));
    }

    #[test]
    fn bad_telegram_settings_are_refused_without_quoting_the_token() {
        use crate::config::channels::telegram::check_api_base;
        let s = tg(|c| {
            c.bot_token = Some("123:abc/../secret-part".into());
            c.api_base = Some("http://api.example.com/".into());
            c.poll_timeout_seconds = Some(0);
        });
        let problems = s.problems();
        assert_eq!(problems.len(), 3, "{problems:?}");
        let all = problems.join("\n");
        assert!(!all.contains("secret-part"), "{all}");
        assert!(
            all.contains("apiBase")
                && all.contains("pollTimeoutSeconds")
                && all.contains("bot token does not look like one from @BotFather")
        );
        for ok in [
            "https://api.telegram.org",
            "http://127.0.0.1:8081/",
            "http://localhost:1",
            "http://[::1]:2",
        ] {
            assert!(check_api_base(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ftp://x",
            "https://a/?q=1",
            "https://u:p@a/",
            "nonsense",
            "http://10.0.0.1/",
        ] {
            assert!(check_api_base(bad).is_err(), "{bad}");
        }
        assert!(tg(|c| c.poll_timeout_seconds = Some(50))
            .problems()
            .is_empty());
    }
}
