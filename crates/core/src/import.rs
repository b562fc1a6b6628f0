//! `clawpair import --from-openclaw`: OpenClaw's approved chat senders and paired devices,
//! taken into ClawPair's store. The conversion is pure (names checked by the store's rule,
//! keys checked, plaintext tokens reduced to their hashes); the writes go through the service
//! (locks, atomic files, audit). Nothing already in ClawPair is overwritten.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::clock::{iso_from_ms, Millis};
use crate::events::Event;
use crate::pairing::device::{
    decode_public_key, device_id_for, fingerprint_for, is_known_role, PairedDevice, TokenRecord,
};
use crate::pairing::dm::{AllowDetails, DEFAULT_ACCOUNT};
use crate::pairing::token::hash_token;
use crate::sanitize::sanitize;
use crate::service::{dev_err, dm_err, Service, ServiceResult};
use crate::store::openclaw::{AllowRow, OpenClawStore, PairedRow};
use crate::store::{AccountId, ChannelName};

/// What `approvedVia` says for an imported sender, and the audit's `via`.
pub const VIA: &str = "openclaw-import";
/// The longest text field kept from a device row (the gateway's own bound).
const MAX_TEXT: usize = 512;

/// A sender to allow.
#[derive(Debug, Clone, PartialEq)]
pub struct AllowImport {
    pub channel: ChannelName,
    pub account: AccountId,
    pub sender: String,
    pub details: AllowDetails,
}

/// Something not taken, and why (shown as is: sanitised already, never a token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Skipped {
    /// `allowlist` or `device`.
    pub kind: &'static str,
    /// The sender (`channel/account/sender`) or the device id, sanitised.
    pub what: String,
    pub reason: String,
}

/// What the rows turn into, before anything is written.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ImportPlan {
    pub allow: Vec<AllowImport>,
    pub devices: Vec<PairedDevice>,
    pub skipped: Vec<Skipped>,
    /// Device fields that were dropped without skipping the device (unknown roles, tokens of
    /// roles ClawPair does not know, tokens with no text), by device id.
    pub notes: Vec<Skipped>,
}

/// An imported sender as reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SenderReport {
    pub channel: String,
    pub account_id: String,
    pub sender_id: String,
}

/// An imported device as reported: no token material.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceReport {
    pub device_id: String,
    pub display_name: String,
    pub fingerprint: String,
    pub roles: Vec<String>,
    /// Roles whose existing token keeps working.
    pub token_roles: Vec<String>,
}

/// The outcome of an import (or of a dry run: what it would do).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportReport {
    pub source: String,
    pub schema_version: i64,
    pub dry_run: bool,
    /// A live `-wal` could not be read (a read-only directory): the last writes of a running
    /// OpenClaw may not have been seen.
    pub wal_skipped: bool,
    pub senders: Vec<SenderReport>,
    pub devices: Vec<DeviceReport>,
    pub skipped: Vec<Skipped>,
    pub notes: Vec<Skipped>,
}

fn cut(s: &str) -> String {
    s.chars().take(MAX_TEXT).collect()
}

fn shown_sender(row: &AllowRow) -> String {
    format!(
        "{}/{}/{}",
        sanitize(&row.channel_key),
        sanitize(row.account_id.as_deref().unwrap_or(DEFAULT_ACCOUNT)),
        sanitize(&row.entry)
    )
}

/// One allowlist row, or why it cannot be taken.
pub fn allow_from_row(row: &AllowRow) -> Result<AllowImport, String> {
    let channel = ChannelName::parse(&row.channel_key).map_err(|e| e.to_string())?;
    let account =
        AccountId::parse_or_default(row.account_id.as_deref()).map_err(|e| e.to_string())?;
    if row.entry.trim() == "*" {
        return Err(format!(
            "\"*\" (everyone) is never stored in an allowlist; set channels.{channel}.dmPolicy to \"open\" instead"
        ));
    }
    crate::store::dm::check_sender(&row.entry).map_err(|e| e.to_string())?;
    Ok(AllowImport {
        channel,
        account,
        sender: row.entry.clone(),
        details: AllowDetails {
            approved_at: row.updated_at.filter(|t| *t > 0).map(iso_from_ms),
            approved_via: Some(VIA.into()),
            label: None,
            last_message_at: None,
        },
    })
}

/// The strings of a JSON array column; `Err` when it holds something else.
fn string_list(json: Option<&str>, column: &str) -> Result<Vec<String>, String> {
    let Some(text) = json.filter(|t| !t.trim().is_empty()) else {
        return Ok(vec![]);
    };
    let v: Value = serde_json::from_str(text).map_err(|_| format!("{column} is not JSON"))?;
    match v {
        Value::Null => Ok(vec![]),
        Value::Array(items) => Ok(items
            .into_iter()
            .filter_map(|i| i.as_str().map(str::to_string))
            .collect()),
        _ => Err(format!("{column} is not a JSON array")),
    }
}

/// A role or scope name: short, printable, nothing to confuse a reader or a file.
fn is_plain_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-' | b':'))
}

fn is_hex_digest(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

fn ms(v: Option<&Value>) -> Option<Millis> {
    v.and_then(Value::as_i64).filter(|t| *t >= 0)
}

/// The public key as ClawPair keeps it (raw 32 bytes, base64url), from OpenClaw's column.
fn public_key(text: &str) -> Result<[u8; 32], String> {
    let key = decode_public_key(text)
        .map_err(|_| "public_key is not a 32-byte key in base64url".to_string())?;
    ed25519_dalek::VerifyingKey::from_bytes(&key)
        .map_err(|_| "public_key is not a valid Ed25519 public key".to_string())?;
    Ok(key)
}

/// The tokens of `tokens_json`, keyed by role, with their text replaced by its hash. OpenClaw
/// keeps the text; a record that OpenClaw itself took from ClawPair carries `tokenHash` already.
fn tokens_from(
    json: Option<&str>,
    roles: &[String],
    approved_at: Millis,
    device: &str,
    notes: &mut Vec<Skipped>,
) -> Result<BTreeMap<String, TokenRecord>, String> {
    let mut out = BTreeMap::new();
    let Some(text) = json.filter(|t| !t.trim().is_empty()) else {
        return Ok(out);
    };
    // Parsed as a plain value and read field by field: a typed parse would quote the
    // offending value (the token) in its error.
    let v: Value = serde_json::from_str(text).map_err(|_| "tokens_json is not JSON".to_string())?;
    let Value::Object(map) = v else {
        if v.is_null() {
            return Ok(out);
        }
        return Err("tokens_json is not a JSON object".into());
    };
    let note = |notes: &mut Vec<Skipped>, reason: String| {
        notes.push(Skipped {
            kind: "device",
            what: device.to_string(),
            reason,
        })
    };
    for (key, rec) in map {
        let Value::Object(rec) = rec else {
            note(
                notes,
                format!(
                    "token of role {:?} is not an object; dropped",
                    sanitize(&key)
                ),
            );
            continue;
        };
        let role = rec
            .get("role")
            .and_then(Value::as_str)
            .unwrap_or(&key)
            .to_string();
        if !roles.contains(&role) {
            note(
                notes,
                format!(
                    "token of role {:?}, which is not an approved role ClawPair knows; dropped",
                    sanitize(&role)
                ),
            );
            continue;
        }
        let hash = match (
            rec.get("token")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty()),
            rec.get("tokenHash").and_then(Value::as_str),
        ) {
            (Some(tok), _) => hash_token(tok),
            (None, Some(h)) if is_hex_digest(h) => h.to_string(),
            _ => {
                note(notes, format!("token of role {role} has no token text; dropped (the device pairs again with a setup code)"));
                continue;
            }
        };
        let scopes: Vec<String> = rec
            .get("scopes")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .filter(|s| is_plain_name(s))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        out.insert(
            role,
            TokenRecord {
                token_hash: hash,
                scopes,
                created_at_ms: ms(rec.get("createdAtMs")).unwrap_or(approved_at),
                rotated_at_ms: ms(rec.get("rotatedAtMs")),
                revoked_at_ms: ms(rec.get("revokedAtMs")),
                last_used_at_ms: ms(rec.get("lastUsedAtMs")),
            },
        );
    }
    Ok(out)
}

/// One paired-device row as ClawPair's record, or why it cannot be taken. `now` stands in for
/// times the row lacks.
pub fn device_from_row(
    row: &PairedRow,
    now: Millis,
    notes: &mut Vec<Skipped>,
) -> Result<PairedDevice, String> {
    let id = row.device_id.trim();
    if !is_hex_digest(id) {
        return Err("device_id is not 64 lowercase hex digits".into());
    }
    let key = public_key(&row.public_key)?;
    if device_id_for(&key) != id {
        return Err("device_id is not the SHA-256 of its public key".into());
    }
    let shown_id = id.to_string();
    let mut roles: BTreeSet<String> = string_list(row.roles_json.as_deref(), "roles_json")?
        .into_iter()
        .collect();
    roles.extend(row.role.clone().filter(|r| !r.is_empty()));
    let (known, unknown): (Vec<String>, Vec<String>) =
        roles.into_iter().partition(|r| is_known_role(r));
    for r in unknown {
        notes.push(Skipped {
            kind: "device",
            what: shown_id.clone(),
            reason: format!(
                "role {:?} is not one ClawPair knows (operator, node); dropped",
                sanitize(&r)
            ),
        });
    }
    if known.is_empty() {
        return Err("it has no role ClawPair knows (operator or node)".into());
    }
    let mut scopes = string_list(row.approved_scopes_json.as_deref(), "approved_scopes_json")?;
    if row.approved_scopes_json.is_none() {
        scopes = string_list(row.scopes_json.as_deref(), "scopes_json")?;
    }
    let scopes: Vec<String> = scopes
        .into_iter()
        .filter(|s| is_plain_name(s))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let approved_at = row
        .approved_at_ms
        .or(row.created_at_ms)
        .filter(|t| *t >= 0)
        .unwrap_or(now);
    let created_at = row.created_at_ms.filter(|t| *t >= 0).unwrap_or(approved_at);
    let tokens = tokens_from(
        row.tokens_json.as_deref(),
        &known,
        approved_at,
        &shown_id,
        notes,
    )?;
    let text = |v: &Option<String>| cut(v.as_deref().unwrap_or("").trim());
    let display_name = text(&row.display_name);
    let operator_label = Some(text(&row.operator_label)).filter(|l| !l.is_empty());
    let mut extra = Map::new();
    extra.insert("importedFrom".into(), "openclaw".into());
    if let Some(via) = row.approved_via.as_deref().filter(|v| is_plain_name(v)) {
        extra.insert("approvedVia".into(), via.into());
    }
    let client_mode = row
        .client_mode
        .as_deref()
        .filter(|v| is_plain_name(v))
        .unwrap_or_default()
        .to_string();
    Ok(PairedDevice {
        device_id: id.to_string(),
        public_key: base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, key),
        display_name,
        platform: text(&row.platform),
        device_family: text(&row.device_family),
        client_id: text(&row.client_id),
        client_mode,
        operator_label,
        roles: known,
        approved_scopes: scopes,
        withheld_scopes: vec![],
        remote_ip: text(&row.remote_ip),
        fingerprint: fingerprint_for(&key),
        created_at_ms: created_at,
        approved_at_ms: approved_at,
        last_seen_at_ms: row.last_seen_at_ms.filter(|t| *t >= 0),
        tokens,
        extra,
    })
}

/// Turns what was read into what to write, with every refusal and its reason.
pub fn plan(store: &OpenClawStore, now: Millis) -> ImportPlan {
    let mut p = ImportPlan::default();
    let mut rows: Vec<&AllowRow> = store.allow.iter().collect();
    rows.sort_by(|a, b| {
        (&a.channel_key, &a.account_id, a.sort_order, &a.entry).cmp(&(
            &b.channel_key,
            &b.account_id,
            b.sort_order,
            &b.entry,
        ))
    });
    for row in rows {
        match allow_from_row(row) {
            Ok(a) => p.allow.push(a),
            Err(reason) => p.skipped.push(Skipped {
                kind: "allowlist",
                what: shown_sender(row),
                reason,
            }),
        }
    }
    for row in &store.paired {
        match device_from_row(row, now, &mut p.notes) {
            Ok(d) => p.devices.push(d),
            Err(reason) => p.skipped.push(Skipped {
                kind: "device",
                what: sanitize(&row.device_id),
                reason,
            }),
        }
    }
    p
}

/// The report line of an imported device.
pub fn device_report(d: &PairedDevice) -> DeviceReport {
    DeviceReport {
        device_id: d.device_id.clone(),
        display_name: d.shown_name(),
        fingerprint: d.fingerprint.clone(),
        roles: d.roles.clone(),
        token_roles: d
            .tokens
            .iter()
            .filter(|(_, t)| t.is_live())
            .map(|(r, _)| r.clone())
            .collect(),
    }
}

/// Imports what `store` holds into `service`'s state directory (with `dry_run`, only says
/// what it would do). Senders join their account's allowlist and devices join `paired.json`,
/// each under its file's lock; anything already there is skipped with the reason. One audit
/// entry records the import.
pub fn apply(
    service: &Service,
    store: &OpenClawStore,
    dry_run: bool,
    via: &str,
) -> ServiceResult<ImportReport> {
    let plan = plan(store, service.now_ms());
    let mut report = ImportReport {
        source: store.path.display().to_string(),
        schema_version: store.schema_version,
        dry_run,
        wal_skipped: store.wal_skipped,
        senders: vec![],
        devices: vec![],
        skipped: plan.skipped,
        notes: plan.notes,
    };
    let mut groups: BTreeMap<(ChannelName, AccountId), Vec<(String, AllowDetails)>> =
        BTreeMap::new();
    for a in plan.allow {
        groups
            .entry((a.channel, a.account))
            .or_default()
            .push((a.sender, a.details));
    }
    for ((channel, account), entries) in groups {
        let added: Vec<String> = if dry_run {
            let mut fresh = Vec::new();
            for (sender, _) in &entries {
                let allowed = service
                    .dm
                    .is_allowed(&channel, &account, sender)
                    .map_err(dm_err)?;
                if !allowed && !fresh.contains(sender) {
                    fresh.push(sender.clone());
                }
            }
            fresh
        } else {
            service
                .dm
                .allow_add_many(&channel, &account, &entries)
                .map_err(dm_err)?
        };
        let mut reported = BTreeSet::new();
        for (sender, _) in &entries {
            let row = SenderReport {
                channel: channel.to_string(),
                account_id: account.to_string(),
                sender_id: sanitize(sender),
            };
            if added.contains(sender) && reported.insert(sender.clone()) {
                report.senders.push(row);
            } else {
                report.skipped.push(Skipped {
                    kind: "allowlist",
                    what: format!("{channel}/{account}/{}", sanitize(sender)),
                    reason: "already allowed in ClawPair".into(),
                });
            }
        }
        if !dry_run && !added.is_empty() {
            service.events().publish(Event::AllowlistChanged {
                channel: channel.to_string(),
                account_id: account.to_string(),
            });
        }
    }
    let (added, kept) = if dry_run {
        let paired = service.devices.paired().map_err(dev_err)?;
        let (kept, added): (Vec<PairedDevice>, Vec<PairedDevice>) = plan
            .devices
            .into_iter()
            .partition(|d| paired.contains_key(&d.device_id));
        (added, kept.into_iter().map(|d| d.device_id).collect())
    } else {
        service.devices.add_paired(plan.devices).map_err(dev_err)?
    };
    for id in kept {
        report.skipped.push(Skipped {
            kind: "device",
            what: id,
            reason: "already paired in ClawPair (left as it is)".into(),
        });
    }
    for d in &added {
        report.devices.push(device_report(d));
        if !dry_run {
            service.events().publish(Event::DeviceChanged {
                device_id: d.device_id.clone(),
                change: crate::protocol::DeviceChange::Imported,
                role: None,
                ts: service.now_ms(),
            });
        }
    }
    if !dry_run {
        let senders: Vec<Value> = report
            .senders
            .iter()
            .map(|s| format!("{}/{}/{}", s.channel, s.account_id, s.sender_id).into())
            .collect();
        let devices: Vec<Value> = report
            .devices
            .iter()
            .map(|d| d.device_id.clone().into())
            .collect();
        let mut details = Map::new();
        details.insert("summary".into(), "imported from OpenClaw".into());
        details.insert("from".into(), report.source.clone().into());
        details.insert("schemaVersion".into(), report.schema_version.into());
        details.insert("senders".into(), senders.into());
        details.insert("devices".into(), devices.into());
        details.insert("skipped".into(), report.skipped.len().into());
        service.audit("openclaw.imported", via, details);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;

    fn key_b64(seed: u8) -> (String, String) {
        let k = SigningKey::from_bytes(&[seed; 32])
            .verifying_key()
            .to_bytes();
        (
            base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, k),
            device_id_for(&k),
        )
    }

    fn row(seed: u8) -> PairedRow {
        let (pk, id) = key_b64(seed);
        PairedRow {
            device_id: id,
            public_key: pk,
            display_name: Some("Pixel".into()),
            role: Some("node".into()),
            roles_json: Some(r#"["node"]"#.into()),
            approved_scopes_json: Some("[]".into()),
            tokens_json: Some(
                r#"{"node":{"token":"plain-secret-token","role":"node","scopes":[],"createdAtMs":5}}"#
                    .into(),
            ),
            created_at_ms: Some(1),
            approved_at_ms: Some(2),
            ..Default::default()
        }
    }

    #[test]
    fn a_device_row_keeps_only_the_hash_of_its_token() {
        let mut notes = vec![];
        let d = device_from_row(&row(1), 99, &mut notes).unwrap();
        let t = &d.tokens["node"];
        assert_eq!(t.token_hash, hash_token("plain-secret-token"));
        assert_eq!(t.created_at_ms, 5);
        assert_eq!(d.roles, vec!["node"]);
        assert_eq!((d.created_at_ms, d.approved_at_ms), (1, 2));
        let json = serde_json::to_string(&d).unwrap();
        assert!(!json.contains("plain-secret-token"), "{json}");
        assert!(notes.is_empty(), "{notes:?}");
    }

    #[test]
    fn a_device_whose_id_is_not_its_key_is_skipped() {
        let mut r = row(1);
        r.public_key = key_b64(2).0;
        let e = device_from_row(&r, 0, &mut vec![]).unwrap_err();
        assert!(e.contains("SHA-256"), "{e}");
        let mut r = row(1);
        r.public_key = "not-a-key".into();
        assert!(device_from_row(&r, 0, &mut vec![]).is_err());
    }

    #[test]
    fn a_bad_tokens_json_never_quotes_the_token() {
        let mut r = row(1);
        r.tokens_json = Some(r#"{"node":"plain-secret-token"}"#.into());
        let mut notes = vec![];
        let d = device_from_row(&r, 0, &mut notes).unwrap();
        assert!(d.tokens.is_empty());
        let shown = format!("{notes:?}");
        assert!(!shown.contains("plain-secret-token"), "{shown}");
        r.tokens_json = Some("[\"plain-secret-token\"".into());
        let e = device_from_row(&r, 0, &mut vec![]).unwrap_err();
        assert!(!e.contains("plain-secret-token"), "{e}");
    }

    #[test]
    fn a_token_hash_openclaw_took_from_clawpair_is_kept() {
        let mut r = row(1);
        let h = hash_token("t");
        r.tokens_json = Some(format!(r#"{{"node":{{"tokenHash":"{h}","scopes":[]}}}}"#));
        let d = device_from_row(&r, 0, &mut vec![]).unwrap();
        assert_eq!(d.tokens["node"].token_hash, h);
    }

    #[test]
    fn allow_rows_with_bad_names_or_wildcards_are_refused_with_a_reason() {
        let ok = AllowRow {
            channel_key: "telegram".into(),
            account_id: None,
            entry: "42".into(),
            sort_order: 0,
            updated_at: Some(1_767_323_045_678),
        };
        let a = allow_from_row(&ok).unwrap();
        assert_eq!(a.account, "default");
        assert_eq!(
            a.details.approved_at.as_deref(),
            Some("2026-01-02T03:04:05.678Z")
        );
        for (ch, acct, entry, needle) in [
            ("Tele", "default", "1", "invalid channel name"),
            ("telegram", "../x", "1", "invalid account name"),
            ("telegram", "default", "*", "never stored"),
            ("telegram", "default", "a b", "sender id"),
        ] {
            let r = AllowRow {
                channel_key: ch.into(),
                account_id: Some(acct.into()),
                entry: entry.into(),
                ..ok.clone()
            };
            let e = allow_from_row(&r).unwrap_err();
            assert!(e.contains(needle), "{e}");
        }
    }
}
