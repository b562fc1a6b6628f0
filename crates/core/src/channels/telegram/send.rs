//! The outgoing queues: messages to owners and to everyone else wait in two bounded queues,
//! each drained by its own task that retries network errors and obeys Telegram's
//! `retry_after`, so a throttled send never holds up the polling or an owner's answer.

use std::time::Duration;

use tokio::task::JoinHandle;

use super::api::{ApiError, BotApi, Format};
use super::bot::Bot;
use super::CHANNEL;
use crate::channels::Backoff;

/// Tries for one outgoing message before it is given up (and logged).
const SEND_ATTEMPTS: u32 = 4;
/// Messages waiting to go out; beyond this a message is dropped (and logged), not waited for.
pub(super) const OUTBOX: usize = 256;

/// One outgoing message.
pub(super) enum Outgoing {
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
pub(super) type AfterSend = Box<dyn FnOnce(bool) + Send>;

impl Outgoing {
    fn chat(&self) -> i64 {
        match self {
            Outgoing::Text { chat, .. } | Outgoing::Photo { chat, .. } => *chat,
        }
    }
}

impl Bot {
    /// Queues a text message; it goes out from the sending task, in order.
    pub(super) async fn send(&self, chat: i64, format: Format, text: impl Into<String>) {
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
    pub(super) fn queue(&self, out: Outgoing, after: Option<AfterSend>) {
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
pub(super) struct AbortOnDrop(pub(super) JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The sending task: delivers queued messages one by one, in order.
pub(super) async fn send_all(
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
