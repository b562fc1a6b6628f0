//! OpenClaw's own store (`state/openclaw.sqlite`) as OpenClaw or anything else left it, read
//! by `clawpair import --from-openclaw` and planned into ClawPair's files. The input is JSON
//! (`{"userVersion": n, "allow": [[5 values]…], "paired": [[18 values]…]}`, values in the
//! column order of `store/openclaw.rs`) written into a database of OpenClaw's tables without
//! type checks, so every column may hold any SQLite type. What the plan keeps must be safe to
//! write: devices whose id is their key's, senders that are plain ids.

#![no_main]

use clawpair_core::clock::Millis;
use clawpair_core::import;
use clawpair_core::pairing::device::{decode_public_key, device_id_for};
use clawpair_core::store::openclaw;
use clawpair_fuzz::{fresh_state, NOW};
use libfuzzer_sys::fuzz_target;
use rusqlite::types::Value as Sql;
use rusqlite::Connection;
use serde_json::Value;

/// OpenClaw 2026.9's tables, without `STRICT` or `NOT NULL`: any value fits any column.
const SCHEMA: &str = "
CREATE TABLE channel_pairing_allow_entries (
  channel_key, account_id, entry, sort_order, updated_at
);
CREATE TABLE device_pairing_paired (
  device_id, public_key, display_name, operator_label, platform, device_family, client_id,
  client_mode, role, roles_json, scopes_json, approved_scopes_json, remote_ip, tokens_json,
  approved_via, created_at_ms, approved_at_ms, last_seen_at_ms
);
";

/// A JSON value as the SQLite value a column holds: objects as their JSON text (as OpenClaw
/// stores them), arrays of bytes as blobs.
fn sql(v: &Value) -> Sql {
    match v {
        Value::Null => Sql::Null,
        Value::Bool(b) => Sql::Integer(*b as i64),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Sql::Integer(i),
            None => Sql::Real(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => Sql::Text(s.clone()),
        Value::Array(a) if a.iter().all(|b| b.as_u64().is_some_and(|b| b < 256)) => Sql::Blob(
            a.iter()
                .filter_map(Value::as_u64)
                .map(|b| b as u8)
                .collect(),
        ),
        other => Sql::Text(other.to_string()),
    }
}

fn insert(db: &Connection, table: &str, width: usize, rows: Option<&Value>) {
    let Some(rows) = rows.and_then(Value::as_array) else {
        return;
    };
    let marks = vec!["?"; width].join(", ");
    let sql_text = format!("INSERT INTO {table} VALUES ({marks})");
    for row in rows.iter().take(64) {
        let Some(cells) = row.as_array() else {
            continue;
        };
        let values: Vec<Sql> = (0..width)
            .map(|i| cells.get(i).map(sql).unwrap_or(Sql::Null))
            .collect();
        db.execute(&sql_text, rusqlite::params_from_iter(values))
            .expect("a row of any values");
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let paths = fresh_state();
    let dir = paths.root().join("openclaw/state");
    std::fs::create_dir_all(&dir).expect("the store's directory");
    let path = dir.join("openclaw.sqlite");
    {
        let db = Connection::open(&path).expect("a new database");
        db.execute_batch(SCHEMA).expect("the tables");
        let version = input["userVersion"].as_i64().unwrap_or(18);
        db.pragma_update(None, "user_version", version)
            .expect("the schema version");
        insert(&db, "channel_pairing_allow_entries", 5, input.get("allow"));
        insert(&db, "device_pairing_paired", 18, input.get("paired"));
    }
    let store = openclaw::read(&openclaw::store_path(&paths.root().join("openclaw")))
        .expect("a store with OpenClaw's tables reads");
    let plan = import::plan(&store, NOW as Millis);
    for d in &plan.devices {
        let key = decode_public_key(&d.public_key).expect("a kept device's key decodes");
        assert_eq!(
            device_id_for(&key),
            d.device_id,
            "a kept device's id is its key's"
        );
        let _ = import::device_report(d);
    }
    for a in &plan.allow {
        assert!(
            clawpair_core::store::dm::check_sender(&a.sender).is_ok(),
            "a kept sender is a plain id"
        );
    }
});
