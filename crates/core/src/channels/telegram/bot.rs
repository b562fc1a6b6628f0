//! How a running bot answers an update: a private message goes to the DM policy and a stranger
//! gets the pairing reply; an owner's `/pair` command issues a setup code or QR, lists, approves
//! or rejects; a stranger's `/pair` is refused at most once an hour. Also the confirmation an
//! approved sender gets.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use super::api::{BotApi, Format, Update, User};
use super::commands::{self, PairCommand};
use super::send::{AfterSend, Outgoing};
use super::{CHANNEL, VIA};
use crate::pairing::dm::{Decision, APPROVED_REPLY};
use crate::sanitize::sanitize;
use crate::service::{InboundDm, Service, ServiceError};

/// A stranger's `/pair` is answered (and audited) at most once in this long.
const REFUSAL_QUIET: Duration = Duration::from_secs(3600);
/// Strangers remembered for [`REFUSAL_QUIET`]; the oldest is forgotten beyond this.
const REFUSALS_REMEMBERED: usize = 4096;
/// Pixels per QR module in the `/pair qr` photo.
const QR_SCALE: u32 = 8;

/// A running bot: the API client, where it has read to, and the service it answers with.
pub(super) struct Bot {
    pub(super) service: Arc<Service>,
    pub(super) api: BotApi,
    pub(super) listening: SocketAddr,
    pub(super) offset: Option<i64>,
    /// Messages to the owners, and to everyone else: two queues, each with its own sending
    /// task, so a throttled reply to a stranger never holds up an answer to an owner.
    pub(super) to_owners: tokio::sync::mpsc::Sender<(Outgoing, Option<AfterSend>)>,
    pub(super) to_others: tokio::sync::mpsc::Sender<(Outgoing, Option<AfterSend>)>,
    /// Strangers refused lately, and when.
    pub(super) refused: std::sync::Mutex<std::collections::HashMap<i64, std::time::Instant>>,
}

impl Bot {
    /// Runs service work (file IO under locks) off the async threads.
    pub(super) async fn blocking<T: Send + 'static>(
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

    pub(super) async fn handle_update(&self, u: Update) {
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
    pub(super) async fn confirm(&self, sender_id: &str) {
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
}
