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

pub mod api;
pub mod commands;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

use self::api::{ApiError, Batch, BotApi, BotToken, Format, Update, User};
use self::commands::PairCommand;
use super::{Backoff, StatusLine};
use crate::config::Settings;
use crate::events::Event;
use crate::pairing::dm::{Decision, APPROVED_REPLY, DEFAULT_ACCOUNT};
use crate::protocol::Resolution;
use crate::sanitize::sanitize;
use crate::service::{InboundDm, Service, ServiceError};
use crate::store::fs as sfs;
use crate::store::{ChannelName, StoreError};

pub use crate::config::channels::telegram::{
    problems as settings_problems, CHANNEL, MAX_POLL_TIMEOUT_SECONDS,
};
/// The same, as the checked name files are built from.
pub const CHANNEL_NAME: ChannelName = ChannelName::from_static(CHANNEL);
/// Who acts, in the audit log, when an owner uses `/pair`.
pub const VIA: &str = "telegram";
/// How long one long poll waits for news unless `pollTimeoutSeconds` says otherwise.
pub const DEFAULT_POLL_TIMEOUT_SECONDS: u64 = 25;
/// Tries for one outgoing message before it is given up (and logged).
const SEND_ATTEMPTS: u32 = 4;
/// Messages waiting to go out; beyond this a message is dropped (and logged), not waited for.
const OUTBOX: usize = 256;
/// A stranger's `/pair` is answered (and audited) at most once in this long.
const REFUSAL_QUIET: Duration = Duration::from_secs(3600);
/// Strangers remembered for [`REFUSAL_QUIET`]; the oldest is forgotten beyond this.
const REFUSALS_REMEMBERED: usize = 4096;
/// Pixels per QR module in the `/pair qr` photo.
const QR_SCALE: u32 = 8;

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

enum Exit {
    Shutdown,
    Reconfigure,
}

struct Adapter {
    service: Arc<Service>,
    listening: SocketAddr,
    events: broadcast::Receiver<Event>,
    shutdown: watch::Receiver<bool>,
    status: StatusLine,
}

impl Adapter {
    async fn run(mut self) {
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

/// One outgoing message.
enum Outgoing {
    Text {
        chat: i64,
        text: String,
        format: Format,
    },
    Photo {
        chat: i64,
        png: Vec<u8>,
        caption: String,
    },
}

/// What to do once a queued message went out or was given up (`true`: delivered).
type AfterSend = Box<dyn FnOnce(bool) + Send>;

impl Outgoing {
    fn chat(&self) -> i64 {
        match self {
            Outgoing::Text { chat, .. } | Outgoing::Photo { chat, .. } => *chat,
        }
    }
}

/// A running bot: the API client, where it has read to, and the service it answers with.
struct Bot {
    service: Arc<Service>,
    api: BotApi,
    listening: SocketAddr,
    offset: Option<i64>,
    /// Messages to the owners, and to everyone else: two queues, each with its own sending
    /// task, so a throttled reply to a stranger never holds up an answer to an owner.
    to_owners: tokio::sync::mpsc::Sender<(Outgoing, Option<AfterSend>)>,
    to_others: tokio::sync::mpsc::Sender<(Outgoing, Option<AfterSend>)>,
    /// Strangers refused lately, and when.
    refused: std::sync::Mutex<std::collections::HashMap<i64, std::time::Instant>>,
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

    /// Runs service work (file IO under locks) off the async threads.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Service) -> T + Send + 'static,
    ) -> Option<T> {
        let s = self.service.clone();
        match tokio::task::spawn_blocking(move || f(&s)).await {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::error!("Telegram channel task failed: {e}");
                None
            }
        }
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

    async fn handle_update(&self, u: Update) {
        let Some(m) = u.message else { return };
        // Channel posts have no sender; other bots are not people to pair with.
        let Some(from) = m.from else { return };
        if from.is_bot {
            return;
        }
        let private = m.chat.is_private();
        let text = m.text.or(m.caption);
        if let Some(cmd) = text.as_deref().and_then(commands::parse) {
            // Owner commands only in a private chat; in a group, not even a refusal.
            if private {
                self.pair_command(&from, m.chat.id, cmd).await;
            }
            return;
        }
        let mut meta = Map::new();
        let mut put = |k: &str, v: Option<&str>| {
            if let Some(v) = v.filter(|v| !v.is_empty()) {
                meta.insert(k.into(), Value::String(v.to_string()));
            }
        };
        put("username", from.username.as_deref());
        put("firstName", Some(&from.first_name));
        put("lastName", from.last_name.as_deref());
        put("chatId", Some(&m.chat.id.to_string()));
        let dm = InboundDm {
            channel: CHANNEL.into(),
            account: None,
            sender: from.id.to_string(),
            text,
            meta,
            is_group: !private,
        };
        match self.blocking(move |s| s.dm_inbound(&dm)).await {
            Some(Ok(Decision::Challenge { code, reply, .. })) if private => {
                let html = commands::challenge_html(&reply, &code);
                self.send(m.chat.id, Format::Html, html).await;
            }
            Some(Ok(_)) | None => {}
            Some(Err(e)) => tracing::warn!("cannot decide on a Telegram message: {e}"),
        }
    }

    async fn pair_command(&self, from: &User, chat: i64, cmd: PairCommand) {
        let sender = from.id.to_string();
        let is_owner = self
            .service
            .settings()
            .channel(CHANNEL)
            .is_some_and(|c| c.owners.contains(&sender));
        if !is_owner {
            if !self.first_refusal_lately(from.id) {
                return; // told within the hour: a flood gets nothing more
            }
            let mut details = Map::new();
            details.insert("channel".into(), CHANNEL.into());
            details.insert("senderId".into(), sender.clone().into());
            if let Some(u) = from.username.as_deref() {
                details.insert("username".into(), sanitize(u).into());
            }
            self.blocking(move |s| s.audit("pair.command.refused", VIA, details))
                .await;
            self.send(chat, Format::Plain, commands::REFUSED).await;
            return;
        }
        match cmd {
            PairCommand::Issue => self.issue_setup_code(chat).await,
            PairCommand::Qr => self.issue_qr(chat).await,
            PairCommand::Pending => match self.blocking(|s| s.device_list()).await {
                Some(Ok(list)) => {
                    let text = commands::pending_list(&list.pending);
                    self.send(chat, Format::Html, text).await;
                }
                Some(Err(e)) => self.failed(chat, "list the requests", e).await,
                None => {}
            },
            PairCommand::Approve(id) => self.approve(chat, id).await,
            PairCommand::Reject(None) => {
                self.send(chat, Format::Plain, commands::REJECT_NEEDS_ID)
                    .await;
            }
            PairCommand::Reject(Some(id)) => {
                match self.blocking(move |s| s.device_reject(&id, VIA)).await {
                    Some(Ok(r)) => {
                        let text = commands::rejected(&r.shown_name(), &r.fingerprint);
                        self.send(chat, Format::Html, text).await;
                    }
                    Some(Err(e)) => self.failed(chat, "reject", e).await,
                    None => {}
                }
            }
            PairCommand::Cleanup => match self.blocking(|s| s.setup_cleanup(VIA)).await {
                Some(Ok(n)) => {
                    self.send(chat, Format::Plain, commands::cleaned(n)).await;
                }
                Some(Err(e)) => self.failed(chat, "invalidate the setup codes", e).await,
                None => {}
            },
            PairCommand::Help => {
                self.send(chat, Format::Plain, commands::HELP).await;
            }
        }
    }

    /// Whether this stranger was not refused in the last hour (and notes that they are now).
    fn first_refusal_lately(&self, user: i64) -> bool {
        let Ok(mut m) = self.refused.lock() else {
            return false;
        };
        let now = std::time::Instant::now();
        if m.get(&user)
            .is_some_and(|at| now.duration_since(*at) < REFUSAL_QUIET)
        {
            return false;
        }
        if m.len() >= REFUSALS_REMEMBERED {
            m.retain(|_, at| now.duration_since(*at) < REFUSAL_QUIET);
            if m.len() >= REFUSALS_REMEMBERED {
                if let Some(oldest) = m.iter().min_by_key(|(_, at)| **at).map(|(k, _)| *k) {
                    m.remove(&oldest);
                }
            }
        }
        m.insert(user, now);
        true
    }

    async fn failed(&self, chat: i64, what: &str, e: ServiceError) {
        self.send(chat, Format::Plain, format!("Could not {what}: {e}"))
            .await;
    }

    /// `/pair`: the instructions, then the setup code alone (easy to copy). A loopback-only
    /// gateway is refused by the service with advice on exposing it, sent as the answer.
    async fn issue_setup_code(&self, chat: i64) {
        let listening = self.listening;
        match self
            .blocking(move |s| s.setup_create(None, Some(listening), VIA, true))
            .await
        {
            Some(Ok(code)) => {
                let minutes = commands::minutes_left(self.service.now_ms(), code.expires_at_ms);
                let steps = commands::setup_instructions(minutes, &code.url);
                // Two messages, in this order (the queue keeps it): then the code is easy to copy.
                self.send(chat, Format::Plain, steps).await;
                self.send(chat, Format::Plain, code.setup_code).await;
            }
            Some(Err(e)) => {
                self.send(chat, Format::Plain, e.to_string()).await;
            }
            None => {}
        }
    }

    /// `/pair qr`: the setup code as a PNG photo.
    async fn issue_qr(&self, chat: i64) {
        let listening = self.listening;
        let code = match self
            .blocking(move |s| s.setup_create(None, Some(listening), VIA, true))
            .await
        {
            Some(Ok(code)) => code,
            Some(Err(e)) => {
                self.send(chat, Format::Plain, e.to_string()).await;
                return;
            }
            None => return,
        };
        let minutes = commands::minutes_left(self.service.now_ms(), code.expires_at_ms);
        match crate::qr::png(&code.setup_code, QR_SCALE) {
            Ok(png) => {
                self.queue(
                    Outgoing::Photo {
                        chat,
                        png,
                        caption: commands::qr_caption(minutes),
                    },
                    None,
                );
            }
            Err(e) => {
                let text =
                    format!("Could not draw the QR code ({e}); send /pair for the code as text.");
                self.send(chat, Format::Plain, text).await;
            }
        }
    }

    /// `/pair approve [id]`: without an id only when exactly one device waits.
    async fn approve(&self, chat: i64, id: Option<String>) {
        let id = match id {
            Some(id) => id,
            None => {
                let list = match self.blocking(|s| s.device_list()).await {
                    Some(Ok(l)) => l,
                    Some(Err(e)) => return self.failed(chat, "list the requests", e).await,
                    None => return,
                };
                match list.pending.as_slice() {
                    [] => {
                        self.send(chat, Format::Plain, commands::NONE_WAITING).await;
                        return;
                    }
                    // More access for a device already paired is approved by name only.
                    [one] if one.request.is_repair => {
                        self.send(chat, Format::Html, commands::upgrade_needs_id(one))
                            .await;
                        return;
                    }
                    [one] => one.request.request_id.clone(),
                    many => {
                        self.send(chat, Format::Html, commands::which_one(many))
                            .await;
                        return;
                    }
                }
            }
        };
        match self.blocking(move |s| s.device_approve(&id, VIA)).await {
            Some(Ok(device)) => {
                self.send(chat, Format::Html, commands::approved(&device))
                    .await;
            }
            Some(Err(e)) => self.failed(chat, "approve", e).await,
            None => {}
        }
    }

    /// After an approval with notify: tells the sender (a private chat's id is the user's).
    async fn confirm(&self, sender_id: &str) {
        let Ok(chat) = sender_id.trim().parse::<i64>() else {
            tracing::warn!(
                "cannot tell Telegram sender {:?} they were approved: not a user id",
                sanitize(sender_id)
            );
            return;
        };
        // Audited once it went out (or was given up), from the sending task.
        let service = self.service.clone();
        let after: AfterSend = Box::new(move |delivered| {
            let mut details = Map::new();
            details.insert("channel".into(), CHANNEL.into());
            details.insert("senderId".into(), chat.to_string().into());
            details.insert("delivered".into(), delivered.into());
            tokio::task::spawn_blocking(move || service.audit("dm.notified", VIA, details));
        });
        self.queue(
            Outgoing::Text {
                chat,
                text: APPROVED_REPLY.into(),
                format: Format::Plain,
            },
            Some(after),
        );
    }

    /// Queues a text message; it goes out from the sending task, in order.
    async fn send(&self, chat: i64, format: Format, text: impl Into<String>) {
        self.queue(
            Outgoing::Text {
                chat,
                text: text.into(),
                format,
            },
            None,
        );
    }

    /// Queues without waiting: when the queue is full the message is dropped and logged.
    fn queue(&self, out: Outgoing, after: Option<AfterSend>) {
        let chat = out.chat();
        // A private chat's id is its user's: the owners' messages have their own queue.
        let owner = self
            .service
            .settings()
            .channel(CHANNEL)
            .is_some_and(|c| c.owners.contains(&chat.to_string()));
        let outbox = if owner {
            &self.to_owners
        } else {
            &self.to_others
        };
        if let Err(e) = outbox.try_send((out, after)) {
            tracing::warn!("Telegram messages are backing up; dropped one to chat {chat}");
            if let (_, Some(after)) = e.into_inner() {
                after(false);
            }
        }
    }
}

/// Aborts a task when dropped (the sender of a bot that stops).
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The sending task: delivers queued messages one by one, in order.
async fn send_all(
    api: BotApi,
    mut queue: tokio::sync::mpsc::Receiver<(Outgoing, Option<AfterSend>)>,
) {
    while let Some((out, after)) = queue.recv().await {
        let chat = out.chat();
        let delivered = match deliver(&api, &out).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!("could not send a Telegram message to chat {chat}: {e}");
                false
            }
        };
        if let Some(after) = after {
            after(delivered);
        }
    }
}

/// Sends, retrying what may pass later: network errors after a short backoff, flood control
/// after exactly the `retry_after` Telegram asked for (only this task waits).
async fn deliver(api: &BotApi, out: &Outgoing) -> Result<(), ApiError> {
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(8));
    let mut attempt = 1;
    loop {
        let r = match out {
            Outgoing::Text { chat, text, format } => api.send_message(*chat, text, *format).await,
            Outgoing::Photo { chat, png, caption } => {
                api.send_photo(*chat, png.clone(), "clawpair-setup.png", caption)
                    .await
            }
        };
        match r {
            Ok(()) => return Ok(()),
            Err(e) if e.is_transient() && attempt < SEND_ATTEMPTS => {
                let wait = e.retry_after().unwrap_or_else(|| backoff.next_delay());
                tracing::info!(
                    "Telegram send failed ({e}); trying again in {} ms",
                    wait.as_millis()
                );
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
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
                && all.contains("botToken")
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
