//! DM pairing rules (chat senders), as pure functions over plain data: codes, expiry, the
//! pending cap, the repeat-sender rule, DM policies and the allow / challenge / drop decision.
//! No IO here; the store and the gateway call these.

use std::collections::BTreeMap;

use rand::{Rng, RngCore};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::clock::{iso_from_ms, ms_from_iso, Millis};

/// Pairing codes use these 32 characters: no 0/O, no 1/I.
pub const CODE_ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
pub const CODE_LEN: usize = 8;
pub const DEFAULT_ACCOUNT: &str = "default";
/// Tries before giving up on finding a code unlike every pending one (never reached in practice).
const CODE_ATTEMPTS: usize = 500;

/// A pending DM pairing request, in OpenClaw's `<channel>-pairing.json` shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DmRequest {
    /// The sender's id on the channel.
    pub id: String,
    pub code: String,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub last_seen_at: String,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub meta: Map<String, Value>,
    /// Fields written by other tools are kept as they are.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl DmRequest {
    /// The account as the file names it (trimmed; none is the default account). Text from a
    /// file, not a checked name: the store parses it into an `AccountId` before it builds a
    /// path from it, and refuses the request when it does not parse.
    pub fn account(&self) -> &str {
        match self.meta.get("accountId").and_then(Value::as_str) {
            Some(a) if !a.trim().is_empty() => a.trim(),
            _ => DEFAULT_ACCOUNT,
        }
    }
    pub fn created_ms(&self) -> Option<Millis> {
        ms_from_iso(&self.created_at)
    }
    /// A request whose `createdAt` is missing or not a time counts as expired.
    pub fn is_expired(&self, now: Millis, ttl_ms: Millis) -> bool {
        match self.created_ms() {
            Some(c) => now >= c.saturating_add(ttl_ms),
            None => true,
        }
    }
    pub fn expires_ms(&self, ttl_ms: Millis) -> Option<Millis> {
        self.created_ms().map(|c| c.saturating_add(ttl_ms))
    }
    /// A meta value as text, for display (callers sanitise).
    pub fn meta_str(&self, key: &str) -> Option<&str> {
        self.meta.get(key).and_then(Value::as_str)
    }
}

fn one() -> u32 {
    1
}

/// `credentials/<channel>-pairing.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairingFile {
    #[serde(default = "one")]
    pub version: u32,
    #[serde(default)]
    pub requests: Vec<DmRequest>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Default for PairingFile {
    fn default() -> Self {
        PairingFile {
            version: 1,
            requests: Vec::new(),
            extra: Map::new(),
        }
    }
}

/// What is known about an approved sender beyond its id (optional, ClawPair's own addition).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AllowDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_via: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_message_at: Option<String>,
}

/// `credentials/<channel>[-<account>]-allowFrom.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AllowFile {
    #[serde(default = "one")]
    pub version: u32,
    #[serde(default)]
    pub allow_from: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub details: BTreeMap<String, AllowDetails>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Default for AllowFile {
    fn default() -> Self {
        AllowFile {
            version: 1,
            allow_from: Vec::new(),
            details: BTreeMap::new(),
            extra: Map::new(),
        }
    }
}

impl AllowFile {
    /// Never admits `"*"` or an empty entry, whatever the file says.
    pub fn contains(&self, sender: &str) -> bool {
        sender != "*" && !sender.is_empty() && self.allow_from.iter().any(|s| s == sender)
    }
    /// Adds a sender (deduplicated, order kept). Returns false when it was already there.
    pub fn add(&mut self, sender: &str, details: AllowDetails) -> bool {
        self.drop_wildcards();
        if self.allow_from.iter().any(|s| s == sender) {
            return false;
        }
        self.allow_from.push(sender.to_string());
        self.details.insert(sender.to_string(), details);
        true
    }
    pub fn remove(&mut self, sender: &str) -> bool {
        self.drop_wildcards();
        let before = self.allow_from.len();
        self.allow_from.retain(|s| s != sender);
        self.details.remove(sender);
        before != self.allow_from.len()
    }
    /// The store never grants a wildcard: drop `"*"` and blanks when writing, and duplicates.
    fn drop_wildcards(&mut self) {
        let mut seen = std::collections::HashSet::new();
        self.allow_from
            .retain(|s| s != "*" && !s.trim().is_empty() && seen.insert(s.clone()));
    }
}

/// Limits for DM requests (from settings `pairing.*`).
#[derive(Debug, Clone, Copy)]
pub struct DmLimits {
    pub ttl_ms: Millis,
    pub max_pending: usize,
}

impl Default for DmLimits {
    fn default() -> Self {
        DmLimits {
            ttl_ms: 60 * 60_000,
            max_pending: 3,
        }
    }
}

/// Trimmed and uppercased, as codes are compared.
pub fn normalize_code(code: &str) -> String {
    code.trim().to_ascii_uppercase()
}

/// Whether `code` has the shape of a pairing code (after normalising).
pub fn looks_like_code(code: &str) -> bool {
    code.len() == CODE_LEN && code.bytes().all(|b| CODE_ALPHABET.contains(&b))
}

/// One uniformly drawn code. 32 is a power of two, so `gen_range` has no bias to correct.
pub fn random_code(rng: &mut impl RngCore) -> String {
    (0..CODE_LEN)
        .map(|_| CODE_ALPHABET[rng.gen_range(0..CODE_ALPHABET.len())] as char)
        .collect()
}

/// A code unlike every code in `taken`.
pub fn unique_code(rng: &mut impl RngCore, taken: &[&str]) -> Option<String> {
    (0..CODE_ATTEMPTS)
        .map(|_| random_code(rng))
        .find(|c| !taken.contains(&c.as_str()))
}

/// Removes expired requests and returns them.
pub fn prune_expired(file: &mut PairingFile, now: Millis, ttl_ms: Millis) -> Vec<DmRequest> {
    let (expired, live): (Vec<_>, Vec<_>) = std::mem::take(&mut file.requests)
        .into_iter()
        .partition(|r| r.is_expired(now, ttl_ms));
    file.requests = live;
    expired
}

/// What happened when an unknown sender wrote.
#[derive(Debug, Clone, PartialEq)]
pub enum Upsert {
    /// A new request: the sender gets the pairing reply.
    Created(DmRequest),
    /// The sender already has a pending request: same code, `lastSeenAt` bumped, no reply.
    Existing(DmRequest),
    /// The account already has `max_pending` requests: no request, no reply.
    CapReached,
    /// No free code could be drawn (practically impossible).
    NoCode,
}

/// Records a message from an unknown sender (after pruning expired requests).
pub fn upsert_request(
    file: &mut PairingFile,
    sender: &str,
    account: &str,
    meta: &Map<String, Value>,
    now: Millis,
    limits: DmLimits,
    rng: &mut impl RngCore,
) -> Upsert {
    prune_expired(file, now, limits.ttl_ms);
    if let Some(existing) = file
        .requests
        .iter_mut()
        .find(|r| r.id == sender && r.account() == account)
    {
        existing.last_seen_at = iso_from_ms(now);
        for (k, v) in meta {
            if k != "accountId" {
                existing.meta.insert(k.clone(), v.clone());
            }
        }
        return Upsert::Existing(existing.clone());
    }
    let in_account = file
        .requests
        .iter()
        .filter(|r| r.account() == account)
        .count();
    if in_account >= limits.max_pending {
        return Upsert::CapReached;
    }
    let taken: Vec<&str> = file.requests.iter().map(|r| r.code.as_str()).collect();
    let Some(code) = unique_code(rng, &taken) else {
        return Upsert::NoCode;
    };
    let mut meta = meta.clone();
    meta.insert("accountId".into(), Value::String(account.to_string()));
    let req = DmRequest {
        id: sender.to_string(),
        code,
        created_at: iso_from_ms(now),
        last_seen_at: iso_from_ms(now),
        meta,
        extra: Map::new(),
    };
    file.requests.push(req.clone());
    Upsert::Created(req)
}

/// Removes and returns the live request with this code (trimmed, case-insensitive), optionally
/// only within one account.
pub fn take_by_code(
    file: &mut PairingFile,
    code: &str,
    account: Option<&str>,
) -> Option<DmRequest> {
    let code = normalize_code(code);
    let pos = file.requests.iter().position(|r| {
        normalize_code(&r.code) == code && account.is_none_or(|a| r.account() == a)
    })?;
    Some(file.requests.remove(pos))
}

/// Per-channel DM policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DmPolicy {
    /// Unknown senders get a code the owner must approve.
    #[default]
    Pairing,
    /// Only senders listed in the config `allowFrom`; no codes; stored approvals ignored.
    Allowlist,
    /// Everyone.
    Open,
    /// All DMs dropped.
    Disabled,
}

impl DmPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            DmPolicy::Pairing => "pairing",
            DmPolicy::Allowlist => "allowlist",
            DmPolicy::Open => "open",
            DmPolicy::Disabled => "disabled",
        }
    }
}

/// Why a message was allowed, challenged or dropped (wire strings in `channel.inbound`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    Open,
    Owner,
    Allowlisted,
    PairingRequired,
    Pending,
    PendingCap,
    NotAllowlisted,
    Disabled,
    Group,
    Paused,
    StoreUnavailable,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Open => "open",
            Reason::Owner => "owner",
            Reason::Allowlisted => "allowlisted",
            Reason::PairingRequired => "pairing-required",
            Reason::Pending => "pending",
            Reason::PendingCap => "pending-cap",
            Reason::NotAllowlisted => "not-allowlisted",
            Reason::Disabled => "disabled",
            Reason::Group => "group",
            Reason::Paused => "paused",
            Reason::StoreUnavailable => "store-unavailable",
        }
    }
}

/// The answer for one inbound DM.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Allow(Reason),
    /// Send `reply` to the sender; `code` is the new pairing code.
    Challenge {
        reason: Reason,
        code: String,
        reply: String,
    },
    Drop(Reason),
}

impl Decision {
    pub fn kind(&self) -> &'static str {
        match self {
            Decision::Allow(_) => "allow",
            Decision::Challenge { .. } => "challenge",
            Decision::Drop(_) => "drop",
        }
    }
    pub fn reason(&self) -> Reason {
        match self {
            Decision::Allow(r) | Decision::Drop(r) | Decision::Challenge { reason: r, .. } => *r,
        }
    }
}

/// Everything the gate needs to know about a sender, gathered by the caller.
#[derive(Debug, Clone, Copy)]
pub struct SenderFacts {
    pub policy: DmPolicy,
    pub is_group: bool,
    pub is_owner: bool,
    pub in_config_allow_from: bool,
    pub in_stored_allowlist: bool,
}

/// The first step of the decision: settled without touching the pending store, or `None` when
/// the sender must go through pairing (the caller then upserts and calls [`decide_after_upsert`]).
pub fn gate(f: SenderFacts) -> Option<Decision> {
    if f.is_group {
        return Some(Decision::Drop(Reason::Group));
    }
    match f.policy {
        DmPolicy::Disabled => Some(Decision::Drop(Reason::Disabled)),
        DmPolicy::Open => Some(Decision::Allow(Reason::Open)),
        _ if f.is_owner => Some(Decision::Allow(Reason::Owner)),
        DmPolicy::Allowlist if f.in_config_allow_from => Some(Decision::Allow(Reason::Allowlisted)),
        DmPolicy::Allowlist => Some(Decision::Drop(Reason::NotAllowlisted)),
        DmPolicy::Pairing if f.in_config_allow_from || f.in_stored_allowlist => {
            Some(Decision::Allow(Reason::Allowlisted))
        }
        DmPolicy::Pairing => None,
    }
}

/// The decision once the pending store was updated for an unknown sender.
pub fn decide_after_upsert(channel: &str, sender: &str, outcome: &Upsert) -> Decision {
    match outcome {
        Upsert::Created(req) => Decision::Challenge {
            reason: Reason::PairingRequired,
            code: req.code.clone(),
            reply: pairing_reply(channel, sender, &req.code),
        },
        Upsert::Existing(_) => Decision::Drop(Reason::Pending),
        Upsert::CapReached => Decision::Drop(Reason::PendingCap),
        Upsert::NoCode => Decision::Drop(Reason::StoreUnavailable),
    }
}

fn channel_title(channel: &str) -> String {
    let mut c = channel.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// The text sent back to an unknown sender: their id, the code on its own line, and the
/// owner's approve command.
pub fn pairing_reply(channel: &str, sender: &str, code: &str) -> String {
    let id_label = if channel == "telegram" {
        "user id"
    } else {
        "id"
    };
    format!(
        "This assistant only talks to people its owner has approved.\n\
         Your {} {id_label}: {sender}\n\
         Pairing code:\n{code}\n\
         Ask the owner to approve you with:\n\
         clawpair pairing approve {channel} {code}",
        channel_title(channel)
    )
}

/// The confirmation sent after an approval with notify.
pub const APPROVED_REPLY: &str = "✅ You're approved. Send a message to start chatting.";

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    const HOUR: Millis = 3_600_000;

    fn rng() -> StdRng {
        StdRng::seed_from_u64(7)
    }

    fn upsert(file: &mut PairingFile, sender: &str, account: &str, now: Millis) -> Upsert {
        upsert_request(
            file,
            sender,
            account,
            &Map::new(),
            now,
            DmLimits::default(),
            &mut rng(),
        )
    }

    #[test]
    fn codes_use_only_the_alphabet_and_are_uniform() {
        // Seeded, so the statistical check is repeatable; the OS generator feeds the same mapping.
        let mut r = rng();
        let mut counts = [0u32; 32];
        let n = 40_000;
        for _ in 0..n {
            let c = random_code(&mut r);
            assert_eq!(c.len(), CODE_LEN);
            for b in c.bytes() {
                let i = CODE_ALPHABET
                    .iter()
                    .position(|a| *a == b)
                    .expect("character outside alphabet");
                counts[i] += 1;
            }
        }
        // Chi-squared with 31 degrees of freedom; 61.1 is the 0.1% critical value.
        let expected = (n * CODE_LEN) as f64 / 32.0;
        let chi2: f64 = counts
            .iter()
            .map(|&c| (c as f64 - expected).powi(2) / expected)
            .sum();
        assert!(
            chi2 < 61.1,
            "characters not uniform: chi2 = {chi2:.1}, counts {counts:?}"
        );
        for banned in [b'0', b'O', b'1', b'I'] {
            assert!(!CODE_ALPHABET.contains(&banned));
        }
    }

    #[test]
    fn unique_code_avoids_every_pending_code() {
        // A generator stuck on one value shows the retry and the give-up.
        struct Const;
        impl RngCore for Const {
            fn next_u32(&mut self) -> u32 {
                0
            }
            fn next_u64(&mut self) -> u64 {
                0
            }
            fn fill_bytes(&mut self, d: &mut [u8]) {
                d.fill(0)
            }
            fn try_fill_bytes(&mut self, d: &mut [u8]) -> Result<(), rand::Error> {
                d.fill(0);
                Ok(())
            }
        }
        let first = random_code(&mut Const);
        assert_eq!(unique_code(&mut Const, &[first.as_str()]), None);
        let mut r = rng();
        let taken: Vec<String> = (0..1000).map(|_| random_code(&mut r)).collect();
        let refs: Vec<&str> = taken.iter().map(String::as_str).collect();
        let c = unique_code(&mut r, &refs).unwrap();
        assert!(!taken.contains(&c));
    }

    #[test]
    fn unknown_sender_gets_code_and_second_message_gets_no_reply() {
        let mut f = PairingFile::default();
        let Upsert::Created(first) = upsert(&mut f, "42", "default", 0) else {
            panic!()
        };
        assert_eq!(
            decide_after_upsert("telegram", "42", &Upsert::Created(first.clone())).kind(),
            "challenge"
        );
        let again = upsert(&mut f, "42", "default", 5_000);
        let Upsert::Existing(second) = &again else {
            panic!("{again:?}")
        };
        assert_eq!(second.code, first.code, "same code kept");
        assert_eq!(second.created_at, first.created_at, "createdAt kept");
        assert_eq!(second.last_seen_at, iso_from_ms(5_000), "lastSeenAt bumped");
        assert_eq!(
            decide_after_upsert("telegram", "42", &again),
            Decision::Drop(Reason::Pending)
        );
        assert_eq!(f.requests.len(), 1);
    }

    #[test]
    fn fourth_sender_is_ignored_while_three_are_pending_per_account() {
        let mut f = PairingFile::default();
        for s in ["a", "b", "c"] {
            assert!(matches!(
                upsert(&mut f, s, "default", 0),
                Upsert::Created(_)
            ));
        }
        assert_eq!(upsert(&mut f, "d", "default", 0), Upsert::CapReached);
        assert_eq!(f.requests.len(), 3, "no request stored beyond the cap");
        // Another account of the same channel has its own three.
        assert!(matches!(upsert(&mut f, "d", "work", 0), Upsert::Created(_)));
        // Once one expires there is room again.
        assert!(matches!(
            upsert(&mut f, "d", "default", HOUR),
            Upsert::Created(_)
        ));
    }

    #[test]
    fn request_expires_one_hour_after_creation_not_last_seen() {
        let mut f = PairingFile::default();
        upsert(&mut f, "a", "default", 0);
        upsert(&mut f, "a", "default", HOUR - 1); // a repeat does not extend the life
        assert!(prune_expired(&mut f.clone(), HOUR - 1, HOUR).is_empty());
        let gone = prune_expired(&mut f, HOUR, HOUR);
        assert_eq!(gone.len(), 1);
        assert!(f.requests.is_empty());
    }

    #[test]
    fn request_without_a_valid_created_at_counts_as_expired() {
        let mut f: PairingFile = serde_json::from_str(
            r#"{"version":1,"requests":[{"id":"1","code":"ABCDEFGH","createdAt":"junk","lastSeenAt":"junk"}]}"#,
        )
        .unwrap();
        assert_eq!(prune_expired(&mut f, 0, HOUR).len(), 1);
    }

    #[test]
    fn approve_matches_code_trimmed_and_case_insensitive() {
        let mut f = PairingFile::default();
        let Upsert::Created(req) = upsert(&mut f, "a", "default", 0) else {
            panic!()
        };
        let typed = format!("  {}  ", req.code.to_lowercase());
        assert_eq!(
            take_by_code(&mut f.clone(), &typed, Some("work")),
            None,
            "other account"
        );
        assert_eq!(take_by_code(&mut f, &typed, None).unwrap().id, "a");
        assert!(f.requests.is_empty());
    }

    #[test]
    fn the_four_policies_decide_as_documented() {
        let facts = |policy, owner, cfg, stored| SenderFacts {
            policy,
            is_group: false,
            is_owner: owner,
            in_config_allow_from: cfg,
            in_stored_allowlist: stored,
        };
        use DmPolicy::*;
        assert_eq!(
            gate(facts(Disabled, true, true, true)),
            Some(Decision::Drop(Reason::Disabled))
        );
        assert_eq!(
            gate(facts(Open, false, false, false)),
            Some(Decision::Allow(Reason::Open))
        );
        assert_eq!(
            gate(facts(Allowlist, false, false, true)),
            Some(Decision::Drop(Reason::NotAllowlisted))
        );
        assert_eq!(
            gate(facts(Allowlist, false, true, false)),
            Some(Decision::Allow(Reason::Allowlisted))
        );
        assert_eq!(
            gate(facts(Pairing, false, false, true)),
            Some(Decision::Allow(Reason::Allowlisted))
        );
        assert_eq!(
            gate(facts(Pairing, false, true, false)),
            Some(Decision::Allow(Reason::Allowlisted))
        );
        assert_eq!(
            gate(facts(Pairing, true, false, false)),
            Some(Decision::Allow(Reason::Owner))
        );
        assert_eq!(gate(facts(Pairing, false, false, false)), None);
        let group = SenderFacts {
            is_group: true,
            ..facts(Open, true, true, true)
        };
        assert_eq!(gate(group), Some(Decision::Drop(Reason::Group)));
    }

    #[test]
    fn reply_names_sender_code_and_approve_command() {
        let r = pairing_reply("telegram", "12345", "ABCD2345");
        assert!(r.contains("Telegram user id: 12345"));
        assert!(r.contains("\nABCD2345\n"));
        assert!(r.contains("clawpair pairing approve telegram ABCD2345"));
    }

    #[test]
    fn allowlist_never_stores_or_admits_a_wildcard() {
        let mut a: AllowFile =
            serde_json::from_str(r#"{"version":1,"allowFrom":["*","1","1",""]}"#).unwrap();
        assert!(!a.contains("*"));
        assert!(a.add("2", AllowDetails::default()));
        assert_eq!(a.allow_from, vec!["1", "2"]);
        assert!(!a.add("2", AllowDetails::default()));
        assert!(a.remove("1"));
        assert!(!a.remove("1"));
    }

    #[test]
    fn openclaw_files_round_trip_in_the_same_shape() {
        let text = r#"{
  "version": 1,
  "requests": [
    {
      "id": "123456789",
      "code": "ABCD2345",
      "createdAt": "2026-01-02T03:04:05.678Z",
      "lastSeenAt": "2026-01-02T03:04:05.678Z",
      "meta": {
        "accountId": "default",
        "username": "alice"
      }
    }
  ]
}"#;
        let f: PairingFile = serde_json::from_str(text).unwrap();
        assert_eq!(serde_json::to_string_pretty(&f).unwrap(), text);
    }
}
