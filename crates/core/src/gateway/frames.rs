//! The wire format (SPEC §5.1): request, response and event frames as JSON text.

use serde::Serialize;
use serde_json::{json, Map, Value};

/// A client frame that parsed as a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Req {
    pub id: Value,
    pub method: String,
    pub params: Value,
}

/// Parses a client text frame. Anything that is not `{"type":"req","id","method",...}`
/// is refused with the reason.
pub fn parse_req(text: &str) -> Result<Req, (Value, String)> {
    let v: Value =
        serde_json::from_str(text).map_err(|e| (Value::Null, format!("frame is not JSON: {e}")))?;
    let Value::Object(mut m) = v else {
        return Err((Value::Null, "frame must be a JSON object".into()));
    };
    let id = match m.remove("id") {
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 128 => Value::String(s),
        Some(Value::Number(n)) => Value::Number(n),
        _ => {
            return Err((
                Value::Null,
                "request id must be a string of 1-128 characters".into(),
            ))
        }
    };
    if m.get("type").and_then(Value::as_str) != Some("req") {
        return Err((id, "frame type must be \"req\"".into()));
    }
    let method = match m.remove("method") {
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 128 => s,
        _ => return Err((id, "method must be a string of 1-128 characters".into())),
    };
    let params = match m.remove("params") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(Value::Object(p)) => Value::Object(p),
        Some(_) => return Err((id, "params must be an object".into())),
    };
    Ok(Req { id, method, params })
}

/// A response frame, written straight from the borrowed payload (`json!` would first copy the
/// whole payload into a second value). Fields in the order a JSON object of them prints.
#[derive(Serialize)]
struct Res<'a, P: Serialize> {
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a Value>,
    id: &'a Value,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<&'a P>,
    #[serde(rename = "type")]
    kind: &'static str,
}

/// An event frame, likewise.
#[derive(Serialize)]
struct Ev<'a> {
    event: &'a str,
    payload: &'a Value,
    seq: u64,
    #[serde(rename = "type")]
    kind: &'static str,
}

fn text(frame: &impl Serialize) -> String {
    // Serialising a `Value` into a string cannot fail (its keys are strings).
    serde_json::to_string(frame).unwrap_or_default()
}

pub fn ok(id: &Value, payload: Value) -> String {
    ok_with(id, &payload)
}

/// A response with any payload that serialises (a typed one, printed without a `Value`).
pub fn ok_with<P: Serialize>(id: &Value, payload: &P) -> String {
    text(&Res {
        error: None,
        id,
        ok: true,
        payload: Some(payload),
        kind: "res",
    })
}

pub fn err(id: &Value, error: Value) -> String {
    text(&Res::<Value> {
        error: Some(&error),
        id,
        ok: false,
        payload: None,
        kind: "res",
    })
}

pub fn error_body(code: &str, message: &str, details: Option<Value>) -> Value {
    let mut e = json!({ "code": code, "message": message });
    if let Some(d) = details {
        e["details"] = d;
    }
    e
}

pub fn event(name: &str, payload: Value, seq: u64) -> String {
    text(&Ev {
        event: name,
        payload: &payload,
        seq,
        kind: "event",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_print_as_the_objects_they_are() {
        let id = json!("7");
        let payload = json!({ "b": [1, 2], "a": "x\u{1}" });
        assert_eq!(
            ok(&id, payload.clone()),
            json!({ "type": "res", "id": id, "ok": true, "payload": payload }).to_string()
        );
        let e = error_body("NOT_FOUND", "gone", Some(json!({ "reason": "unknown" })));
        assert_eq!(
            err(&id, e.clone()),
            json!({ "type": "res", "id": id, "ok": false, "error": e }).to_string()
        );
        assert_eq!(
            event("tick", payload.clone(), 9),
            json!({ "type": "event", "event": "tick", "payload": payload, "seq": 9 }).to_string()
        );
    }

    #[test]
    fn requests_parse_and_garbage_is_refused_with_a_reason() {
        let r = parse_req(r#"{"type":"req","id":"1","method":"pairing.list"}"#).unwrap();
        assert_eq!(r.method, "pairing.list");
        assert_eq!(r.params, json!({}));
        for bad in [
            "",
            "[]",
            "{}",
            r#"{"type":"req","id":"1"}"#,
            r#"{"type":"res","id":"1","method":"x"}"#,
            r#"{"type":"req","id":"1","method":"x","params":[1]}"#,
            r#"{"type":"req","id":{},"method":"x"}"#,
        ] {
            assert!(parse_req(bad).is_err(), "{bad}");
        }
        let (id, _) = parse_req(r#"{"type":"req","id":"7","method":5}"#).unwrap_err();
        assert_eq!(id, json!("7"), "the id is echoed when it could be read");
    }
}
