//! The adapter's loop: it follows settings (idle while the bot is off, restarting when its
//! token, `apiBase` or poll timeout change), checks the token with `getMe`, long-polls
//! `getUpdates` with backoff, and records the offset of a batch before handling it.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, watch};

use super::api::{ApiError, Batch, BotApi, User};
use super::bot::Bot;
use super::send::{send_all, AbortOnDrop, OUTBOX};
use super::{bot_config, still, BotConfig, Idle, CHANNEL, CHANNEL_NAME};
use crate::channels::{Backoff, StatusLine};
use crate::config::Settings;
use crate::events::Event;
use crate::pairing::dm::DEFAULT_ACCOUNT;
use crate::protocol::Resolution;
use crate::sanitize::sanitize;
use crate::service::Service;
use crate::store::fs as sfs;
use crate::store::StoreError;

enum Exit {
    Shutdown,
    Reconfigure,
}

pub(super) struct Adapter {
    pub(super) service: Arc<Service>,
    pub(super) listening: SocketAddr,
    pub(super) events: broadcast::Receiver<Event>,
    pub(super) shutdown: watch::Receiver<bool>,
    pub(super) status: StatusLine,
}

impl Adapter {
    pub(super) async fn run(mut self) {
        while !*self.shutdown.borrow() {
            let exit = match bot_config(&self.service.settings()) {
                Ok(cfg) => self.serve(cfg).await,
                Err(why) => self.idle(why).await,
            };
            if let Exit::Shutdown = exit {
                break;
            }
        }
        self.status.set(&self.service, false, None);
        tracing::info!("Telegram channel stopped");
    }

    /// Waits for settings to change (or for shutdown) while there is no bot to run.
    async fn idle(&mut self, why: Idle) -> Exit {
        let error = match why {
            Idle::Disabled => None,
            Idle::Unusable(e) => Some(e),
        };
        if self.status.set(&self.service, false, error.clone()) {
            if let Some(e) = error {
                tracing::warn!("Telegram channel is off: {e}");
            }
        }
        loop {
            tokio::select! {
                r = self.shutdown.changed() => {
                    if r.is_err() || *self.shutdown.borrow() {
                        return Exit::Shutdown;
                    }
                }
                ev = self.events.recv() => match ev {
                    Ok(Event::SettingsChanged {}) => return Exit::Reconfigure,
                    Err(RecvError::Closed) => return Exit::Shutdown,
                    _ => {}
                },
            }
        }
    }

    /// Polls and answers until shutdown or until the bot's settings change.
    async fn serve(&mut self, cfg: BotConfig) -> Exit {
        let api = match BotApi::new(&cfg.api_base, cfg.token.clone()) {
            Ok(a) => a,
            Err(e) => return self.idle(Idle::Unusable(e.to_string())).await,
        };
        warn_about_owners(&self.service.settings());
        let (to_owners, owners_queue) = tokio::sync::mpsc::channel(OUTBOX);
        let (to_others, others_queue) = tokio::sync::mpsc::channel(OUTBOX);
        // Stopped with the bot, whatever they were still trying to send.
        let _senders = [
            AbortOnDrop(tokio::spawn(send_all(api.clone(), owners_queue))),
            AbortOnDrop(tokio::spawn(send_all(api.clone(), others_queue))),
        ];
        let mut bot = Bot {
            service: self.service.clone(),
            api,
            listening: self.listening,
            offset: None,
            to_owners,
            to_others,
            refused: Default::default(),
        };
        bot.offset = bot.load_offset().await;
        let mut backoff = Backoff::default();
        let mut step = bot.check_after(Duration::ZERO);
        loop {
            tokio::select! {
                r = self.shutdown.changed() => {
                    if r.is_err() || *self.shutdown.borrow() {
                        return Exit::Shutdown;
                    }
                }
                ev = self.events.recv() => match ev {
                    Ok(Event::PairingResolved { channel, account_id, sender_id, decision, notify: true, .. })
                        if channel == CHANNEL && decision == Resolution::Approved && account_id == DEFAULT_ACCOUNT =>
                    {
                        bot.confirm(&sender_id).await;
                    }
                    Ok(Event::SettingsChanged {}) => {
                        if !still(&self.service.settings(), &cfg) {
                            return Exit::Reconfigure;
                        }
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(n)) => tracing::warn!(
                        "the Telegram channel fell {n} events behind; an approval confirmation may not have been sent"
                    ),
                    Err(RecvError::Closed) => return Exit::Shutdown,
                },
                r = &mut step => {
                    step = match r {
                        Step::Checked(Ok(me)) => {
                            backoff.reset();
                            if self.status.set(&self.service, true, None) {
                                tracing::info!(
                                    "Telegram channel connected as @{}",
                                    sanitize(me.username.as_deref().unwrap_or("?"))
                                );
                            }
                            bot.poll_after(Duration::ZERO, cfg.poll_timeout)
                        }
                        Step::Polled(Ok(batch)) => {
                            backoff.reset();
                            self.status.set(&self.service, true, None);
                            bot.handle(batch).await;
                            if !still(&self.service.settings(), &cfg) {
                                return Exit::Reconfigure;
                            }
                            bot.poll_after(Duration::ZERO, cfg.poll_timeout)
                        }
                        Step::Checked(Err(e)) | Step::Polled(Err(e)) => {
                            let wait = e.retry_after().unwrap_or_else(|| backoff.next_delay());
                            let shown = e.to_string();
                            if self.status.set(&self.service, false, Some(shown.clone())) {
                                tracing::warn!("Telegram channel: {shown}");
                            }
                            // Back with getMe first, so the status turns green as soon as
                            // Telegram answers rather than when the next long poll ends.
                            bot.check_after(wait)
                        }
                    };
                }
            }
        }
    }
}

/// Owners are compared with Telegram's numeric user ids; anything else never matches.
fn warn_about_owners(settings: &Settings) {
    let Some(c) = settings.channel(CHANNEL) else {
        return;
    };
    for o in &c.owners {
        let o = o.trim();
        if o.is_empty() || !o.bytes().all(|b| b.is_ascii_digit()) {
            tracing::warn!(
                "channels.telegram.owners holds {:?}, which is not a numeric Telegram user id and never matches",
                sanitize(o)
            );
        }
    }
}

/// What the bot's next request brought.
enum Step {
    /// `getMe`: whether Telegram takes the token.
    Checked(Result<User, ApiError>),
    /// `getUpdates`.
    Polled(Result<Batch, ApiError>),
}

type StepFuture = Pin<Box<dyn Future<Output = Step> + Send>>;

/// `credentials/telegram-offset.json`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OffsetFile {
    #[serde(default)]
    version: u32,
    /// Update ids count per bot: an offset is only used for the bot it was read from.
    #[serde(default)]
    bot_id: String,
    #[serde(default)]
    offset: Option<i64>,
}

impl Bot {
    fn check_after(&self, delay: Duration) -> StepFuture {
        let api = self.api.clone();
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            Step::Checked(api.get_me().await)
        })
    }

    fn poll_after(&self, delay: Duration, wait: Duration) -> StepFuture {
        let api = self.api.clone();
        let offset = self.offset;
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            Step::Polled(api.get_updates(offset, wait).await)
        })
    }

    async fn load_offset(&self) -> Option<i64> {
        let bot_id = self.api.token().bot_id().to_string();
        self.blocking(move |s| {
            let path = s.paths().channel_offset(&CHANNEL_NAME);
            match sfs::read_json::<OffsetFile>(&path, s.clock()) {
                Ok(f) if f.bot_id == bot_id => f.offset,
                Ok(f) if f.offset.is_some() => {
                    tracing::info!(
                        "the stored Telegram offset belongs to another bot; starting afresh"
                    );
                    None
                }
                Ok(_) => None,
                Err(e @ StoreError::Corrupt { .. }) => {
                    s.report(&e);
                    None
                }
                Err(e) => {
                    tracing::warn!("cannot read the Telegram offset: {e}");
                    None
                }
            }
        })
        .await
        .flatten()
    }

    /// Handles a batch: first records that it was read (so a restart never handles it
    /// again), then answers each update in order.
    async fn handle(&mut self, batch: Batch) {
        if let Some(next) = batch.next_offset {
            self.offset = Some(next);
            let file = OffsetFile {
                version: 1,
                bot_id: self.api.token().bot_id().to_string(),
                offset: Some(next),
            };
            let saved = self
                .blocking(move |s| sfs::write_json(&s.paths().channel_offset(&CHANNEL_NAME), &file))
                .await;
            if let Some(Err(e)) = saved {
                // Still handled: within this run the in-memory offset prevents doubles.
                tracing::warn!("cannot record the Telegram offset: {e}");
            }
        }
        for u in batch.updates {
            self.handle_update(u).await;
        }
    }
}
