//! A stand-in for `https://api.telegram.org` for any channel test: real HTTP/1.1 (hyper),
//! Telegram's URL scheme `/bot<token>/<method>`, its parameters as JSON, form or multipart, and
//! its answers (long polls, 429 flood control, refused tokens, dropped connections).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Map, Value};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::time::Instant;

/// The longest `wait_for` waits on a loaded machine before the test fails.
pub const WAIT: Duration = Duration::from_secs(30);

/// A file part of a multipart upload.
#[derive(Debug, Clone)]
pub struct FilePart {
    pub field: String,
    pub file_name: Option<String>,
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
}

/// One request as the server saw it, and the HTTP status it answered.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub content_type: String,
    pub params: Map<String, Value>,
    pub files: Vec<FilePart>,
    pub at: Instant,
    pub status: u16,
}

impl Call {
    pub fn str(&self, key: &str) -> String {
        match self.params.get(key) {
            Some(Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
            None => String::new(),
        }
    }
    pub fn int(&self, key: &str) -> Option<i64> {
        match self.params.get(key)? {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        }
    }
    pub fn text(&self) -> String {
        self.str("text")
    }
    pub fn is_send(&self) -> bool {
        self.method == "sendMessage" || self.method == "sendPhoto"
    }
}

/// A scripted misbehaviour for the next request of a method.
#[derive(Debug, Clone)]
pub enum Failure {
    /// HTTP 429 with `parameters.retry_after`, exactly as Telegram sends it.
    TooManyRequests(u64),
    /// Close the connection without an answer.
    DropConnection,
}

#[derive(Default)]
struct Inner {
    updates: Vec<Value>,
    next_update_id: i64,
    calls: Vec<Call>,
    failures: VecDeque<(String, Failure)>,
}

pub struct FakeBotApi {
    pub addr: SocketAddr,
    token: String,
    inner: Mutex<Inner>,
    changed: Notify,
}

type Answer = Result<Response<Full<Bytes>>, std::io::Error>;

fn answer(status: u16, body: Value) -> Answer {
    Ok(Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap())
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if from > hay.len() {
        return None;
    }
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// A `key=value` parameter of a header such as Content-Type or Content-Disposition.
fn header_param(header: &str, key: &str) -> Option<String> {
    header.split(';').skip(1).find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(key)
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

/// Parses a multipart/form-data body (RFC 7578) into text fields and file parts.
pub fn parse_multipart(
    content_type: &str,
    body: &[u8],
) -> Result<(Map<String, Value>, Vec<FilePart>), String> {
    let boundary = header_param(content_type, "boundary").ok_or("no boundary")?;
    let delim = format!("--{boundary}").into_bytes();
    let next_delim = [b"\r\n".as_slice(), &delim].concat();
    let mut pos = find(body, &delim, 0).ok_or("no opening boundary")? + delim.len();
    let (mut fields, mut files) = (Map::new(), Vec::new());
    loop {
        if body[pos..].starts_with(b"--") {
            return Ok((fields, files));
        }
        if !body[pos..].starts_with(b"\r\n") {
            return Err("boundary not followed by CRLF".into());
        }
        pos += 2;
        let head_end = find(body, b"\r\n\r\n", pos).ok_or("part headers never end")?;
        let head = std::str::from_utf8(&body[pos..head_end]).map_err(|e| e.to_string())?;
        let start = head_end + 4;
        let end = find(body, &next_delim, start).ok_or("part never closed")?;
        let (mut name, mut file_name, mut part_type) = (None, None, None);
        for line in head.split("\r\n") {
            let (k, v) = line.split_once(':').ok_or("bad part header")?;
            match k.trim().to_ascii_lowercase().as_str() {
                "content-disposition" => {
                    if !v.trim().starts_with("form-data") {
                        return Err("part is not form-data".into());
                    }
                    name = header_param(v, "name");
                    file_name = header_param(v, "filename");
                }
                "content-type" => part_type = Some(v.trim().to_string()),
                _ => {}
            }
        }
        let name = name.ok_or("part without a name")?;
        let content = body[start..end].to_vec();
        if file_name.is_some() {
            files.push(FilePart {
                field: name,
                file_name,
                content_type: part_type,
                bytes: content,
            });
        } else {
            let text = String::from_utf8(content).map_err(|e| e.to_string())?;
            fields.insert(name, Value::String(text));
        }
        pos = end + next_delim.len();
    }
}

impl FakeBotApi {
    pub async fn start(token: &str) -> Arc<FakeBotApi> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let fake = Arc::new(FakeBotApi {
            addr: listener.local_addr().unwrap(),
            token: token.to_string(),
            inner: Mutex::new(Inner {
                next_update_id: 500,
                ..Default::default()
            }),
            changed: Notify::new(),
        });
        let server = fake.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let s = server.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let s = s.clone();
                        async move { s.serve(req).await }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), svc)
                        .await;
                });
            }
        });
        fake
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let r = f(&mut self.inner.lock().unwrap());
        self.changed.notify_waiters();
        r
    }

    pub fn fail_next(&self, method: &str, f: Failure) {
        self.with(|i| i.failures.push_back((method.into(), f)));
    }

    /// Queues an update carrying `message`; returns its update_id.
    pub fn push(&self, message: Value) -> i64 {
        self.with(|i| {
            let id = i.next_update_id;
            i.next_update_id += 1;
            i.updates
                .push(json!({ "update_id": id, "message": message }));
            id
        })
    }

    fn user(id: i64, username: &str) -> Value {
        json!({ "id": id, "is_bot": false, "first_name": format!("User {id}"), "username": username, "language_code": "en" })
    }

    /// A private-chat text message from `user`.
    pub fn private_text(&self, user: i64, username: &str, text: &str) -> i64 {
        self.push(json!({
            "message_id": user * 1000 + self.calls().len() as i64,
            "from": Self::user(user, username),
            "chat": { "id": user, "type": "private", "first_name": format!("User {user}"), "username": username },
            "date": chrono::Utc::now().timestamp(),
            "text": text,
        }))
    }

    /// A message in a group chat (`group` or `supergroup`).
    pub fn group_text(&self, chat: i64, kind: &str, user: i64, text: &str) -> i64 {
        self.push(json!({
            "message_id": 77,
            "from": Self::user(user, "member"),
            "chat": { "id": chat, "type": kind, "title": "Some group" },
            "date": chrono::Utc::now().timestamp(),
            "text": text,
        }))
    }

    pub fn calls(&self) -> Vec<Call> {
        self.inner.lock().unwrap().calls.clone()
    }

    /// Successful sends to `chat`, in order.
    pub fn sent_to(&self, chat: i64) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.is_send() && c.status == 200 && c.int("chat_id") == Some(chat))
            .collect()
    }

    /// Waits until `check` finds what it looks for in the calls so far.
    pub async fn wait_for<T>(&self, what: &str, mut check: impl FnMut(&[Call]) -> Option<T>) -> T {
        let deadline = Instant::now() + WAIT;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(t) = check(&self.calls()) {
                return t;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("timed out waiting for {what}; calls: {:#?}", self.calls());
            }
        }
    }

    /// Waits for `n` successful sends to `chat` and returns them.
    pub async fn wait_sent_to(&self, chat: i64, n: usize) -> Vec<Call> {
        let what = format!("{n} message(s) to chat {chat}");
        self.wait_for(&what, |_| {
            let sent = self.sent_to(chat);
            (sent.len() >= n).then_some(sent)
        })
        .await
    }

    /// Waits until the adapter asked for the updates after `update_id`: it has read and
    /// handled that update (it handles a batch before polling again).
    pub async fn handled(&self, update_id: i64) {
        let what = format!("a getUpdates past update {update_id}");
        self.wait_for(&what, |calls| {
            calls
                .iter()
                .any(|c| c.method == "getUpdates" && c.int("offset").is_some_and(|o| o > update_id))
                .then_some(())
        })
        .await
    }

    fn record(&self, call: Call) -> usize {
        self.with(|i| {
            i.calls.push(call);
            i.calls.len() - 1
        })
    }

    fn set_status(&self, index: usize, status: u16) {
        self.with(|i| i.calls[index].status = status);
    }

    async fn serve(self: Arc<Self>, req: Request<Incoming>) -> Answer {
        let path = req.uri().path().to_string();
        let query = req.uri().query().unwrap_or("").to_string();
        let content_type = req
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = req
            .into_body()
            .collect()
            .await
            .map_err(std::io::Error::other)?
            .to_bytes();
        let Some((token, method)) = path
            .strip_prefix("/bot")
            .and_then(|rest| rest.split_once('/'))
        else {
            return answer(
                404,
                json!({ "ok": false, "error_code": 404, "description": "Not Found" }),
            );
        };
        if token != self.token {
            return answer(
                401,
                json!({ "ok": false, "error_code": 401, "description": "Unauthorized" }),
            );
        }
        let mut params = Map::new();
        let mut files = Vec::new();
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            params.insert(k.into_owned(), Value::String(v.into_owned()));
        }
        let mime = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match mime.as_str() {
            "application/json" => match serde_json::from_slice::<Value>(&body) {
                Ok(Value::Object(m)) => params.extend(m),
                _ => {
                    return answer(
                        400,
                        json!({ "ok": false, "error_code": 400, "description": "Bad Request: can't parse JSON object" }),
                    )
                }
            },
            "application/x-www-form-urlencoded" => {
                for (k, v) in url::form_urlencoded::parse(&body) {
                    params.insert(k.into_owned(), Value::String(v.into_owned()));
                }
            }
            "multipart/form-data" => match parse_multipart(&content_type, &body) {
                Ok((fields, parts)) => {
                    params.extend(fields);
                    files = parts;
                }
                Err(e) => {
                    return answer(
                        400,
                        json!({ "ok": false, "error_code": 400, "description": format!("Bad Request: {e}") }),
                    )
                }
            },
            "" if body.is_empty() => {}
            other => {
                return answer(
                    400,
                    json!({ "ok": false, "error_code": 400, "description": format!("Bad Request: unsupported content type {other}") }),
                )
            }
        }
        let failure = self.with(|i| {
            let at = i.failures.iter().position(|(m, _)| m == method)?;
            i.failures.remove(at).map(|(_, f)| f)
        });
        // Recorded with the status it gets: a waiter counting successful sends must never see
        // a failed one as sent, even for a moment.
        let status = match failure {
            Some(Failure::TooManyRequests(_)) => 429,
            Some(Failure::DropConnection) => 0,
            None => 200,
        };
        let index = self.record(Call {
            method: method.to_string(),
            content_type: mime,
            params: params.clone(),
            files: files.clone(),
            at: Instant::now(),
            status,
        });
        match failure {
            Some(Failure::TooManyRequests(secs)) => {
                return answer(
                    429,
                    json!({
                        "ok": false, "error_code": 429,
                        "description": format!("Too Many Requests: retry after {secs}"),
                        "parameters": { "retry_after": secs },
                    }),
                );
            }
            Some(Failure::DropConnection) => {
                return Err(std::io::Error::other("dropped on purpose"));
            }
            None => {}
        }
        let call = Call {
            method: method.to_string(),
            content_type: String::new(),
            params,
            files,
            at: Instant::now(),
            status: 200,
        };
        match method {
            "getMe" => answer(
                200,
                json!({ "ok": true, "result": {
                    "id": 123456, "is_bot": true, "first_name": "Stand-in", "username": "stand_in_bot",
                    "can_join_groups": true, "can_read_all_group_messages": false, "supports_inline_queries": false,
                }}),
            ),
            "getUpdates" => self.long_poll(&call).await,
            "sendMessage" => {
                let Some(chat) = call.int("chat_id") else {
                    self.set_status(index, 400);
                    return answer(
                        400,
                        json!({ "ok": false, "error_code": 400, "description": "Bad Request: chat_id is empty" }),
                    );
                };
                answer(
                    200,
                    json!({ "ok": true, "result": {
                        "message_id": index, "date": chrono::Utc::now().timestamp(),
                        "chat": { "id": chat, "type": "private" },
                        "text": call.text(),
                    }}),
                )
            }
            "sendPhoto" => {
                let Some(photo) = call.files.iter().find(|f| f.field == "photo") else {
                    self.set_status(index, 400);
                    return answer(
                        400,
                        json!({ "ok": false, "error_code": 400, "description": "Bad Request: there is no photo in the request" }),
                    );
                };
                answer(
                    200,
                    json!({ "ok": true, "result": {
                        "message_id": index, "date": chrono::Utc::now().timestamp(),
                        "chat": { "id": call.int("chat_id"), "type": "private" },
                        "photo": [{ "file_id": "AgACAgIAAxk", "file_unique_id": "AQAD", "width": 320, "height": 320, "file_size": photo.bytes.len() }],
                        "caption": call.str("caption"),
                    }}),
                )
            }
            _ => {
                self.set_status(index, 404);
                answer(
                    404,
                    json!({ "ok": false, "error_code": 404, "description": "Not Found: method not found" }),
                )
            }
        }
    }

    /// Answers at once when updates at or after `offset` exist, else when one arrives or
    /// `timeout` seconds pass (an empty list). Updates are never forgotten: a client that
    /// does not remember its offset gets them again.
    async fn long_poll(&self, call: &Call) -> Answer {
        let offset = call.int("offset");
        let timeout = call.int("timeout").unwrap_or(0).clamp(0, 50) as u64;
        let deadline = Instant::now() + Duration::from_secs(timeout);
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let ready: Vec<Value> = self
                .inner
                .lock()
                .unwrap()
                .updates
                .iter()
                .filter(|u| offset.is_none_or(|o| u["update_id"].as_i64().unwrap() >= o))
                .cloned()
                .collect();
            if !ready.is_empty() || Instant::now() >= deadline {
                return answer(200, json!({ "ok": true, "result": ready }));
            }
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }
}
