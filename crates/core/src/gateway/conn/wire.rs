//! A connection's words on the socket: reading the next message, sending a frame, refusing with
//! an error answer, closing with a code and reason, and the HTTP refusal at the upgrade.

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::handshake::server::ErrorResponse;
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::Ws;
use crate::gateway::connect::Refusal;
use crate::gateway::frames;
use crate::gateway::limits::CLOSE_TIMEOUT;
use crate::gateway::stream::is_budget_error;
use crate::protocol::Code;

/// What reading the next message gave.
pub(super) enum Read {
    Text(String),
    Binary,
    TooBig,
    Closed,
}

pub(super) async fn read_msg(ws: &mut Ws) -> Read {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => return Read::Text(t.as_str().to_owned()),
            Some(Ok(Message::Binary(_))) => return Read::Binary,
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
            Some(Ok(Message::Close(_))) | None => return Read::Closed,
            Some(Err(WsError::Capacity(_))) => return Read::TooBig,
            Some(Err(WsError::Io(e))) if is_budget_error(&e) => return Read::TooBig,
            Some(Err(_)) => return Read::Closed,
        }
    }
}

pub(super) async fn send(ws: &mut Ws, text: String) -> bool {
    ws.send(Message::text(text)).await.is_ok()
}

/// The most a close frame's reason may hold: a control frame carries 125 bytes, the code two.
const MAX_CLOSE_REASON: usize = 123;

/// `reason` cut to fit a close frame, at a character boundary. A longer one (a refusal that
/// quotes what the client sent, in a script of two-byte letters) makes the frame one every
/// client refuses as a protocol error, and the close code is lost.
fn fit_close_reason(reason: &str) -> &str {
    let mut end = reason.len().min(MAX_CLOSE_REASON);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

pub(super) async fn close(ws: &mut Ws, code: CloseCode, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: fit_close_reason(reason).to_owned().into(),
    };
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, ws.close(Some(frame))).await;
}

/// Sends an error answer and closes with 1008 (policy).
pub(super) async fn refuse(
    ws: &mut Ws,
    id: &Value,
    code: Code,
    message: &str,
    details: Option<Value>,
) {
    let _ = send(
        ws,
        frames::err(id, frames::error_body(code.as_str(), message, details)),
    )
    .await;
    let reason: String = message.chars().take(100).collect();
    close(ws, CloseCode::Policy, &reason).await;
}

/// Sends a refusal's answer and closes with its code and reason.
pub(super) async fn refuse_with(ws: &mut Ws, id: &Value, r: Refusal) {
    let mut body = frames::error_body(r.code.as_str(), &r.message, r.details);
    if r.code == Code::RateLimited {
        // Top-level retry hints, where OpenClaw's clients look for them.
        body["retryable"] = true.into();
        if let Some(ms) = body["details"].get("retryAfterMs").cloned() {
            body["retryAfterMs"] = ms;
        }
    }
    let _ = send(ws, frames::err(id, body)).await;
    let reason = r
        .close_reason
        .unwrap_or_else(|| r.message.chars().take(100).collect());
    close(ws, CloseCode::from(r.close), &reason).await;
}

/// An HTTP refusal at the upgrade.
pub(super) fn http_refusal(status: StatusCode, why: &str) -> ErrorResponse {
    let mut r = ErrorResponse::new(Some(why.into()));
    *r.status_mut() = status;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_close_reason_fits_a_control_frame_whatever_the_message_quotes() {
        // A connect whose params quote 80 two-byte letters back ("invalid connect params:
        // invalid type: string \"ééé…\"") closed with a 156-byte reason.
        let message = format!(
            "invalid connect params: invalid type: string \"{}\"",
            "é".repeat(80)
        );
        let reason: String = message.chars().take(100).collect();
        let fitted = fit_close_reason(&reason);
        assert!(fitted.len() <= MAX_CLOSE_REASON, "{} bytes", fitted.len());
        assert!(reason.starts_with(fitted) && fitted.ends_with('é'));
        assert_eq!(fit_close_reason("handshake timeout"), "handshake timeout");
    }
}
