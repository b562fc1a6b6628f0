//! Printing for the CLI: aligned tables for people, JSON for scripts, one-line errors.

use serde_json::Value;

use crate::sanitize::sanitize;

/// Columns padded to their widest cell, separated by two spaces; headers as given.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let last = cells.len().saturating_sub(1);
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            s.push_str(c);
            if i < last {
                s.push_str(&" ".repeat(widths[i] - c.chars().count() + 2));
            }
        }
        s.trim_end().to_string()
    };
    let mut out = line(headers.to_vec());
    out.push('\n');
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
        out.push('\n');
    }
    out
}

pub fn print_json(v: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_else(|_| "null".into())
    );
}

/// A string field, sanitised for the terminal (requester text is never printed raw).
pub fn s(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(x)) => sanitize(x),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(sanitize)
            .collect::<Vec<_>>()
            .join(","),
        _ => String::new(),
    }
}

pub fn i(v: &Value, key: &str) -> Option<i64> {
    v.get(key).and_then(Value::as_i64)
}

pub fn or_dash(s: String) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s
    }
}

/// "5m ago" style, from a time in ms.
pub fn ago(now: i64, at: Option<i64>) -> String {
    match at {
        Some(t) => format!("{} ago", crate::clock::human_duration(now - t)),
        None => "-".into(),
    }
}

/// "in 55m" style, or "expired".
pub fn until(now: i64, at: Option<i64>) -> String {
    match at {
        Some(t) if t > now => format!("in {}", crate::clock::human_duration(t - now)),
        Some(_) => "expired".into(),
        None => "-".into(),
    }
}

/// An ISO date shortened to minutes (`2026-01-02 03:04`).
pub fn short_time(iso: &str) -> String {
    match crate::clock::ms_from_iso(iso).and_then(chrono::DateTime::from_timestamp_millis) {
        Some(t) => t.format("%Y-%m-%d %H:%M").to_string(),
        None => or_dash(sanitize(iso)),
    }
}

pub fn short_ms(ms: Option<i64>) -> String {
    match ms.and_then(chrono::DateTime::from_timestamp_millis) {
        Some(t) => t.format("%Y-%m-%d %H:%M").to_string(),
        None => "-".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let t = table(
            &["A", "LONGER"],
            &[vec!["xx".into(), "y".into()], vec!["x".into(), "zz".into()]],
        );
        assert_eq!(t, "A   LONGER\nxx  y\nx   zz\n");
    }
}
