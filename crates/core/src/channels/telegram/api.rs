//! The Telegram Bot API over HTTPS: `getUpdates`, `sendMessage` and `sendPhoto`, and Telegram's
//! answers, `{ok: true, result}` or `{ok: false, error_code, description, parameters}`.
//!
//! The bot token is part of every request URL (`<apiBase>/bot<token>/<method>`), and HTTP
//! client errors print their URL. So no error leaves this module with a URL in it
//! (`reqwest::Error::without_url`), and every message is scrubbed of the token besides.

use std::error::Error as _;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::sanitize::sanitize;

/// Where the Bot API lives unless `channels.telegram.apiBase` says otherwise.
pub const DEFAULT_API_BASE: &str = "https://api.telegram.org";
/// Time allowed to open a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed for a send, and added to a long poll's own timeout.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest answer read; Telegram's are a few kilobytes.
pub const MAX_ANSWER_BYTES: usize = 8 << 20;
/// The longest `retry_after` obeyed; a longer one is cut to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

/// A bot token from @BotFather, `<bot id>:<secret>`. Its `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct BotToken(String);

impl fmt::Debug for BotToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BotToken(<hidden>)")
    }
}

impl BotToken {
    pub fn new(token: &str) -> Self {
        BotToken(token.trim().to_string())
    }

    /// Whether it has the shape Telegram issues (see
    /// [`token_looks_valid`](crate::config::channels::telegram::token_looks_valid)).
    pub fn looks_valid(&self) -> bool {
        crate::config::channels::telegram::token_looks_valid(&self.0)
    }

    /// The bot's own user id (public: it is the part before the colon).
    pub fn bot_id(&self) -> &str {
        self.0.split_once(':').map(|(id, _)| id).unwrap_or("")
    }

    /// `text` with the token (and its secret half) replaced by `<bot token>`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.replace(&self.0, "<bot token>");
        if let Some((_, secret)) = self.0.split_once(':') {
            if secret.len() >= 8 {
                out = out.replace(secret, "<bot token>");
            }
        }
        out
    }
}

/// Why a Bot API call failed. Messages name no URL and no token.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    #[error("cannot reach the Telegram Bot API: {0}")]
    Network(String),
    #[error("Telegram asks to wait {}s (429 Too Many Requests)", .0.as_secs())]
    RetryAfter(Duration),
    #[error("{}", refusal_text(method, *code, description))]
    Refused {
        method: String,
        code: i64,
        description: String,
    },
    #[error("unexpected answer from the Telegram Bot API to {method}: {reason}")]
    BadAnswer { method: String, reason: String },
}

fn refusal_text(method: &str, code: i64, description: &str) -> String {
    match code {
        401 => "Telegram refused the bot token (401 Unauthorized); check channels.telegram.botToken"
            .to_string(),
        404 => "Telegram does not know this bot (404 Not Found); check channels.telegram.botToken and apiBase"
            .to_string(),
        409 => format!(
            "another program reads this bot's updates (409 Conflict: {description}); only one may poll, and no webhook may be set"
        ),
        _ => format!("Telegram refused {method} ({code}: {description})"),
    }
}

impl ApiError {
    /// How long Telegram asked to wait, when it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::RetryAfter(d) => Some(*d),
            _ => None,
        }
    }

    /// Whether trying the same request again later may work (network trouble, flood control,
    /// Telegram's own server errors), as opposed to a refusal of this request.
    pub fn is_transient(&self) -> bool {
        match self {
            ApiError::Network(_) | ApiError::RetryAfter(_) => true,
            ApiError::Refused { code, .. } => *code >= 500,
            ApiError::BadAnswer { .. } => false,
        }
    }
}

#[derive(Debug, Deserialize)]
struct Answer {
    #[serde(default)]
    ok: bool,
    #[serde(default)]
    result: Option<Value>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    error_code: Option<i64>,
    #[serde(default)]
    parameters: Option<ResponseParameters>,
}

#[derive(Debug, Deserialize)]
struct ResponseParameters {
    #[serde(default)]
    retry_after: Option<u64>,
}

/// Reads one answer: the `result` of `{ok: true}`, else the error it describes. Telegram sends
/// its JSON with the matching HTTP status; a body that is not its JSON is reported by status.
pub fn read_answer(
    method: &str,
    status: u16,
    body: &[u8],
    token: &BotToken,
) -> Result<Value, ApiError> {
    let answer: Answer = match serde_json::from_slice(body) {
        Ok(a) => a,
        Err(_) if status == 429 => return Err(ApiError::RetryAfter(Duration::from_secs(1))),
        Err(_) if status >= 400 => {
            return Err(ApiError::Refused {
                method: method.into(),
                code: status.into(),
                description: "no Bot API answer".into(),
            })
        }
        Err(e) => {
            return Err(ApiError::BadAnswer {
                method: method.into(),
                reason: token.redact(&e.to_string()),
            })
        }
    };
    if answer.ok {
        return Ok(answer.result.unwrap_or(Value::Null));
    }
    let code = answer.error_code.unwrap_or(status.into());
    if code == 429 {
        let secs = answer
            .parameters
            .and_then(|p| p.retry_after)
            .unwrap_or(1)
            .max(1);
        return Err(ApiError::RetryAfter(
            Duration::from_secs(secs).min(MAX_RETRY_AFTER),
        ));
    }
    let description = answer
        .description
        .map(|d| sanitize(&token.redact(&d)))
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "no description".into());
    Err(ApiError::Refused {
        method: method.into(),
        code,
        description,
    })
}

/// One update as far as this adapter cares: a new message. Other kinds parse to `message: None`.
#[derive(Debug, Clone, Deserialize)]
pub struct Update {
    pub update_id: i64,
    #[serde(default)]
    pub message: Option<Message>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Message {
    #[serde(default)]
    pub message_id: i64,
    #[serde(default)]
    pub from: Option<User>,
    pub chat: Chat,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub caption: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct User {
    pub id: i64,
    #[serde(default)]
    pub is_bot: bool,
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Chat {
    pub id: i64,
    /// `private`, `group`, `supergroup` or `channel`.
    #[serde(rename = "type")]
    pub kind: String,
}

impl Chat {
    pub fn is_private(&self) -> bool {
        self.kind == "private"
    }
}

/// What one `getUpdates` brought.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    /// The offset that confirms every update of this batch (highest `update_id` + 1), also
    /// counting updates that did not parse, so a malformed one is never fetched again.
    pub next_offset: Option<i64>,
    pub updates: Vec<Update>,
}

/// Splits a `getUpdates` result into updates, skipping (with a warning) those that do not parse.
pub fn read_batch(result: Value) -> Result<Batch, String> {
    let Value::Array(items) = result else {
        return Err("getUpdates did not answer a list".into());
    };
    let mut batch = Batch::default();
    for item in items {
        let Some(id) = item.get("update_id").and_then(Value::as_i64) else {
            tracing::warn!("skipping a Telegram update without update_id");
            continue;
        };
        batch.next_offset = Some(batch.next_offset.map_or(id + 1, |o: i64| o.max(id + 1)));
        match serde_json::from_value::<Update>(item) {
            Ok(u) => batch.updates.push(u),
            Err(e) => tracing::warn!("skipping Telegram update {id}: {e}"),
        }
    }
    batch.updates.sort_by_key(|u| u.update_id);
    Ok(batch)
}

/// How a text message is rendered by Telegram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Plain,
    /// Telegram's HTML subset; the text must be escaped.
    Html,
}

/// A Bot API client for one bot. Cheap to clone.
#[derive(Clone)]
pub struct BotApi {
    http: reqwest::Client,
    base: String,
    token: BotToken,
}

impl fmt::Debug for BotApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BotApi")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl BotApi {
    pub fn new(api_base: &str, token: BotToken) -> Result<BotApi, ApiError> {
        crate::tls::ensure_crypto_provider();
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("clawpair/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| network_error(e, &token))?;
        Ok(BotApi {
            http,
            base: api_base.trim().trim_end_matches('/').to_string(),
            token,
        })
    }

    pub fn token(&self) -> &BotToken {
        &self.token
    }

    fn endpoint(&self, method: &str) -> String {
        format!("{}/bot{}/{method}", self.base, self.token.0)
    }

    async fn call(
        &self,
        method: &str,
        request: reqwest::RequestBuilder,
        timeout: Duration,
    ) -> Result<Value, ApiError> {
        let mut resp = request
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| network_error(e, &self.token))?;
        let status = resp.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| network_error(e, &self.token))?
        {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(ApiError::BadAnswer {
                    method: method.into(),
                    reason: format!("the answer is larger than {MAX_ANSWER_BYTES} bytes"),
                });
            }
            body.extend_from_slice(&chunk);
        }
        read_answer(method, status, &body, &self.token)
    }

    /// The bot itself: proves the token and the connection at once (a long poll only answers
    /// when news arrives or its timeout passes).
    pub async fn get_me(&self) -> Result<User, ApiError> {
        let req = self.http.post(self.endpoint("getMe"));
        let result = self.call("getMe", req, REQUEST_TIMEOUT).await?;
        serde_json::from_value(result).map_err(|e| ApiError::BadAnswer {
            method: "getMe".into(),
            reason: e.to_string(),
        })
    }

    /// Long-polls for updates after `offset` (which also confirms everything before it),
    /// waiting up to `wait` for one to arrive. Only messages are asked for.
    pub async fn get_updates(
        &self,
        offset: Option<i64>,
        wait: Duration,
    ) -> Result<Batch, ApiError> {
        let mut params = json!({ "timeout": wait.as_secs(), "allowed_updates": ["message"] });
        if let Some(o) = offset {
            params["offset"] = o.into();
        }
        let req = self.http.post(self.endpoint("getUpdates")).json(&params);
        let result = self.call("getUpdates", req, wait + REQUEST_TIMEOUT).await?;
        read_batch(result).map_err(|reason| ApiError::BadAnswer {
            method: "getUpdates".into(),
            reason,
        })
    }

    pub async fn send_message(
        &self,
        chat_id: i64,
        text: &str,
        format: Format,
    ) -> Result<(), ApiError> {
        let mut params = json!({
            "chat_id": chat_id,
            "text": text,
            "link_preview_options": { "is_disabled": true },
        });
        if format == Format::Html {
            params["parse_mode"] = "HTML".into();
        }
        let req = self.http.post(self.endpoint("sendMessage")).json(&params);
        self.call("sendMessage", req, REQUEST_TIMEOUT).await?;
        Ok(())
    }

    /// Uploads a PNG as a photo (multipart/form-data), with a plain-text caption.
    pub async fn send_photo(
        &self,
        chat_id: i64,
        png: Vec<u8>,
        file_name: &str,
        caption: &str,
    ) -> Result<(), ApiError> {
        let photo = reqwest::multipart::Part::bytes(png)
            .file_name(file_name.to_string())
            .mime_str("image/png")
            .map_err(|e| network_error(e, &self.token))?;
        let form = reqwest::multipart::Form::new()
            .text("chat_id", chat_id.to_string())
            .text("caption", caption.to_string())
            .part("photo", photo);
        let req = self.http.post(self.endpoint("sendPhoto")).multipart(form);
        self.call("sendPhoto", req, REQUEST_TIMEOUT).await?;
        Ok(())
    }
}

/// A transport error as one line: what failed and why, without the URL (it holds the token).
fn network_error(e: reqwest::Error, token: &BotToken) -> ApiError {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "the answer broke off"
    } else {
        "request failed"
    };
    let e = e.without_url();
    let mut parts: Vec<String> = Vec::new();
    let mut cause: Option<&dyn std::error::Error> = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cause = c.source();
    }
    let detail = if parts.is_empty() {
        e.to_string()
    } else {
        parts.join(": ")
    };
    ApiError::Network(token.redact(&format!("{what} ({detail})")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> BotToken {
        BotToken::new("123456:AAHsecretSECRETsecret_-x")
    }

    #[test]
    fn token_shape_is_checked_and_its_debug_hides_it() {
        assert!(token().looks_valid());
        assert_eq!(token().bot_id(), "123456");
        for bad in [
            "", "123456", ":abc", "12a:abc", "1:a/b", "1:a?b", "1:a b", "1:",
        ] {
            assert!(!BotToken::new(bad).looks_valid(), "{bad:?}");
        }
        assert_eq!(format!("{:?}", token()), "BotToken(<hidden>)");
        let api = BotApi::new("http://127.0.0.1:1/", token()).unwrap();
        assert!(!format!("{api:?}").contains("secret"));
        assert_eq!(
            token().redact(
                "GET /bot123456:AAHsecretSECRETsecret_-x/getMe and AAHsecretSECRETsecret_-x"
            ),
            "GET /bot<bot token>/getMe and <bot token>"
        );
    }

    #[tokio::test]
    async fn transport_errors_name_neither_the_url_nor_the_token() {
        // Nothing listens on port 1: the connection is refused.
        let api = BotApi::new("http://127.0.0.1:1", token()).unwrap();
        let raw = api
            .http
            .post(api.endpoint("getMe"))
            .send()
            .await
            .unwrap_err();
        assert!(
            raw.to_string().contains("AAHsecret"),
            "reqwest prints the URL: {raw}"
        );
        let e = api.get_me().await.unwrap_err();
        let shown = e.to_string();
        assert!(
            matches!(e, ApiError::Network(_)) && e.is_transient(),
            "{e:?}"
        );
        assert!(
            shown.starts_with("cannot reach the Telegram Bot API: cannot connect"),
            "{shown}"
        );
        assert!(
            !shown.contains("AAHsecret") && !shown.contains("/bot"),
            "{shown}"
        );
    }

    #[test]
    fn answers_parse_into_results_and_errors() {
        let t = token();
        let ok = read_answer("getMe", 200, br#"{"ok":true,"result":{"id":1}}"#, &t).unwrap();
        assert_eq!(ok["id"], 1);
        let e = read_answer(
            "sendMessage",
            429,
            br#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7","parameters":{"retry_after":7}}"#,
            &t,
        )
        .unwrap_err();
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        assert!(e.is_transient());
        let e = read_answer(
            "getUpdates",
            401,
            br#"{"ok":false,"error_code":401,"description":"Unauthorized"}"#,
            &t,
        )
        .unwrap_err();
        assert!(!e.is_transient());
        assert!(e.to_string().contains("refused the bot token"), "{e}");
        let e = read_answer(
            "sendMessage",
            400,
            br#"{"ok":false,"error_code":400,"description":"Bad Request: chat not found \u202e for 123456:AAHsecretSECRETsecret_-x"}"#,
            &t,
        )
        .unwrap_err();
        let shown = e.to_string();
        assert!(
            shown.contains("chat not found")
                && !shown.contains("secret")
                && !shown.contains('\u{202e}'),
            "{shown}"
        );
        let e = read_answer("getUpdates", 502, b"<html>Bad Gateway</html>", &t).unwrap_err();
        assert!(e.is_transient() && e.to_string().contains("502"), "{e}");
    }

    #[test]
    fn a_batch_confirms_every_update_even_one_that_does_not_parse() {
        let b = read_batch(json!([
            { "update_id": 11, "message": { "message_id": 1, "chat": { "id": 5, "type": "private" }, "from": { "id": 5, "first_name": "A" }, "text": "hi" } },
            { "update_id": 12, "message": { "chat": "not an object" } },
            { "update_id": 10, "edited_message": {} },
        ]))
        .unwrap();
        assert_eq!(b.next_offset, Some(13));
        let ids: Vec<i64> = b.updates.iter().map(|u| u.update_id).collect();
        assert_eq!(ids, [10, 11]);
        assert!(b.updates[0].message.is_none());
        assert_eq!(
            b.updates[1].message.as_ref().unwrap().text.as_deref(),
            Some("hi")
        );
        assert!(read_batch(json!({})).is_err());
    }
}
