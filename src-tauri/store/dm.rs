//! DM pairing on disk: `credentials/<channel>-pairing.json` and the allowFrom files, in
//! OpenClaw's names and shapes. Every change is a locked read-modify-write; reads on the hot
//! path go through a cache that notices changes made by other processes.

use std::collections::BTreeSet;
use std::sync::Arc;

use rand::RngCore;
use serde_json::{Map, Value};

use super::fs::{read_json, update_json, JsonCache, StoreResult};
use super::{check_name, InvalidName, StatePaths, StoreError};
use crate::clock::{iso_from_ms, Clock};
use crate::pairing::dm::{
    self, AllowDetails, AllowFile, DmLimits, DmRequest, PairingFile, Upsert, DEFAULT_ACCOUNT,
};

#[derive(Debug, thiserror::Error)]
pub enum DmStoreError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Name(#[from] InvalidName),
    #[error("sender id must be 1-256 visible characters")]
    BadSender,
}

pub type DmResult<T> = Result<T, DmStoreError>;

/// One allowed sender as listed.
#[derive(Debug, Clone, PartialEq)]
pub struct AllowEntry {
    pub channel: String,
    pub account: String,
    pub sender: String,
    pub details: AllowDetails,
}

/// Channels with a pairing file, and (channel, account) pairs with an allowFrom file.
pub type Discovered = (Vec<String>, Vec<(String, String)>);

/// The outcome of an approval.
#[derive(Debug, Clone, PartialEq)]
pub struct Approved {
    pub channel: String,
    pub account: String,
    pub request: DmRequest,
}

pub fn check_sender(sender: &str) -> DmResult<()> {
    if sender.is_empty()
        || sender.len() > 256
        || sender == "*"
        || sender.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(DmStoreError::BadSender);
    }
    Ok(())
}

/// The DM pairing files of one state directory.
pub struct DmStore {
    paths: StatePaths,
    clock: Arc<dyn Clock>,
    allow_cache: JsonCache<AllowFile>,
}

impl DmStore {
    pub fn new(paths: StatePaths, clock: Arc<dyn Clock>) -> Self {
        DmStore {
            paths,
            clock,
            allow_cache: JsonCache::default(),
        }
    }

    /// Live requests of a channel, oldest first; expired ones are pruned from the file and
    /// returned second.
    pub fn list(
        &self,
        channel: &str,
        limits: DmLimits,
    ) -> DmResult<(Vec<DmRequest>, Vec<DmRequest>)> {
        check_name("channel", channel)?;
        let now = self.clock.now_ms();
        let path = self.paths.pairing_file(channel);
        if !path.exists() {
            return Ok((vec![], vec![]));
        }
        let pruned = update_json(&path, &*self.clock, |f: &mut PairingFile| {
            let expired = dm::prune_expired(f, now, limits.ttl_ms);
            let mut live = f.requests.clone();
            live.sort_by_key(|r| r.created_ms());
            Ok((live, expired))
        });
        match pruned {
            // Listing must work on a read-only or full disk: skip the pruning write then.
            Err(DmStoreError::Store(StoreError::Io { .. })) => {
                let mut f: PairingFile = read_json(&path, &*self.clock)?;
                dm::prune_expired(&mut f, now, limits.ttl_ms);
                f.requests.sort_by_key(|r| r.created_ms());
                Ok((f.requests, vec![]))
            }
            other => other,
        }
    }

    /// Records a message from a sender not on the allowlist.
    pub fn upsert(
        &self,
        channel: &str,
        account: &str,
        sender: &str,
        meta: &Map<String, Value>,
        limits: DmLimits,
        rng: &mut impl RngCore,
    ) -> DmResult<(Upsert, Vec<DmRequest>)> {
        check_name("channel", channel)?;
        check_name("account", account)?;
        check_sender(sender)?;
        let now = self.clock.now_ms();
        update_json(
            &self.paths.pairing_file(channel),
            &*self.clock,
            |f: &mut PairingFile| {
                let expired = dm::prune_expired(f, now, limits.ttl_ms);
                let outcome = dm::upsert_request(f, sender, account, meta, now, limits, rng);
                Ok((outcome, expired))
            },
        )
    }

    /// Approves the request with this code: the sender joins the allowlist of the request's
    /// account (or `account` when given, which must match), then the request is removed. Both
    /// happen under the pairing file's lock; a crash between them leaves the sender allowed and
    /// a stale request, never a lost approval.
    pub fn approve(
        &self,
        channel: &str,
        code: &str,
        account: Option<&str>,
        via: &str,
        limits: DmLimits,
    ) -> DmResult<Option<Approved>> {
        check_name("channel", channel)?;
        if let Some(a) = account {
            check_name("account", a)?;
        }
        let now = self.clock.now_ms();
        let path = self.paths.pairing_file(channel);
        if !path.exists() {
            return Ok(None);
        }
        update_json(&path, &*self.clock, |f: &mut PairingFile| {
            dm::prune_expired(f, now, limits.ttl_ms);
            let mut probe = f.clone();
            let Some(req) = dm::take_by_code(&mut probe, code, account) else {
                return Ok(None);
            };
            let acct = req.account().to_string();
            let details = AllowDetails {
                approved_at: Some(iso_from_ms(now)),
                approved_via: Some(via.to_string()),
                label: req
                    .meta_str("username")
                    .or(req.meta_str("name"))
                    .map(crate::sanitize::sanitize),
                last_message_at: None,
            };
            self.allow_add_inner(channel, &acct, &req.id, details)?;
            *f = probe;
            Ok(Some(Approved {
                channel: channel.to_string(),
                account: acct,
                request: req,
            }))
        })
    }

    /// Removes the request with this code without allowing the sender.
    pub fn reject(
        &self,
        channel: &str,
        code: &str,
        account: Option<&str>,
        limits: DmLimits,
    ) -> DmResult<Option<DmRequest>> {
        check_name("channel", channel)?;
        let now = self.clock.now_ms();
        let path = self.paths.pairing_file(channel);
        if !path.exists() {
            return Ok(None);
        }
        update_json(&path, &*self.clock, |f: &mut PairingFile| {
            dm::prune_expired(f, now, limits.ttl_ms);
            Ok(dm::take_by_code(f, code, account))
        })
    }

    fn allow_paths(&self, channel: &str, account: &str) -> Vec<std::path::PathBuf> {
        let mut v = vec![self.paths.allow_file(channel, account)];
        if account == DEFAULT_ACCOUNT {
            v.push(self.paths.scoped_default_allow_file(channel));
        }
        v
    }

    /// Whether the sender is on the stored allowlist (cached; one `stat` per file when unchanged).
    pub fn is_allowed(&self, channel: &str, account: &str, sender: &str) -> DmResult<bool> {
        check_name("channel", channel)?;
        check_name("account", account)?;
        for p in self.allow_paths(channel, account) {
            if self.allow_cache.get(&p, &*self.clock)?.contains(sender) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// [`DmStore::is_allowed`] from the cache alone: `None` when a file changed since it was
    /// last read (or was never read), so the caller must use `is_allowed` off the async runtime.
    pub fn is_allowed_cached(&self, channel: &str, account: &str, sender: &str) -> Option<bool> {
        check_name("channel", channel).ok()?;
        check_name("account", account).ok()?;
        for p in self.allow_paths(channel, account) {
            if self.allow_cache.peek(&p)?.contains(sender) {
                return Some(true);
            }
        }
        Some(false)
    }

    /// The allowed senders of one account (for the default account, both files merged).
    pub fn allow_entries(&self, channel: &str, account: &str) -> DmResult<Vec<AllowEntry>> {
        check_name("channel", channel)?;
        check_name("account", account)?;
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for p in self.allow_paths(channel, account) {
            let f: AllowFile = read_json(&p, &*self.clock)?;
            for s in &f.allow_from {
                if s != "*" && !s.is_empty() && seen.insert(s.clone()) {
                    out.push(AllowEntry {
                        channel: channel.into(),
                        account: account.into(),
                        sender: s.clone(),
                        details: f.details.get(s).cloned().unwrap_or_default(),
                    });
                }
            }
        }
        Ok(out)
    }

    /// Adds a sender by hand. Returns false when it was already allowed.
    pub fn allow_add(
        &self,
        channel: &str,
        account: &str,
        sender: &str,
        via: &str,
    ) -> DmResult<bool> {
        check_name("channel", channel)?;
        check_name("account", account)?;
        check_sender(sender)?;
        if self.is_allowed(channel, account, sender)? {
            return Ok(false);
        }
        let details = AllowDetails {
            approved_at: Some(iso_from_ms(self.clock.now_ms())),
            approved_via: Some(via.to_string()),
            ..Default::default()
        };
        self.allow_add_inner(channel, account, sender, details)
    }

    /// Adds many senders to one account's allowlist under one lock (an import), each with its
    /// own details. Returns those added; senders already allowed (in either file of the default
    /// account) are left as they are.
    pub fn allow_add_many(
        &self,
        channel: &str,
        account: &str,
        entries: &[(String, AllowDetails)],
    ) -> DmResult<Vec<String>> {
        check_name("channel", channel)?;
        check_name("account", account)?;
        let mut fresh = Vec::new();
        for (sender, details) in entries {
            check_sender(sender)?;
            if !self.is_allowed(channel, account, sender)? {
                fresh.push((sender.clone(), details.clone()));
            }
        }
        if fresh.is_empty() {
            return Ok(vec![]);
        }
        update_json(
            &self.paths.allow_file(channel, account),
            &*self.clock,
            |f: &mut AllowFile| {
                Ok(fresh
                    .into_iter()
                    .filter_map(|(s, d)| f.add(&s, d).then_some(s))
                    .collect())
            },
        )
    }

    fn allow_add_inner(
        &self,
        channel: &str,
        account: &str,
        sender: &str,
        details: AllowDetails,
    ) -> DmResult<bool> {
        update_json(
            &self.paths.allow_file(channel, account),
            &*self.clock,
            |f: &mut AllowFile| Ok(f.add(sender, details)),
        )
    }

    /// Removes a sender from every file of the account. Returns false when it was not there.
    pub fn allow_remove(&self, channel: &str, account: &str, sender: &str) -> DmResult<bool> {
        check_name("channel", channel)?;
        check_name("account", account)?;
        let mut removed = false;
        for p in self.allow_paths(channel, account) {
            if p.exists() {
                removed |= update_json(&p, &*self.clock, |f: &mut AllowFile| {
                    Ok::<_, DmStoreError>(f.remove(sender))
                })?;
            }
        }
        Ok(removed)
    }

    /// Records when an allowed sender last wrote (best effort, for the window).
    pub fn touch_last_message(
        &self,
        channel: &str,
        account: &str,
        sender: &str,
        at_ms: i64,
    ) -> DmResult<()> {
        for p in self.allow_paths(channel, account) {
            if !p.exists() {
                continue;
            }
            update_json(&p, &*self.clock, |f: &mut AllowFile| {
                if f.contains(sender) {
                    f.details
                        .entry(sender.to_string())
                        .or_default()
                        .last_message_at = Some(iso_from_ms(at_ms));
                }
                Ok::<_, DmStoreError>(())
            })?;
        }
        Ok(())
    }

    /// Channels with a pairing file, and (channel, account) pairs with an allowFrom file.
    /// `known` resolves names with dashes: a file prefix that is a known channel is that
    /// channel's default account; otherwise the first dash splits channel from account.
    pub fn discover(&self, known: &[String]) -> StoreResult<Discovered> {
        let dir = self.paths.credentials_dir();
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((vec![], vec![])),
            Err(e) => return Err(StoreError::io("list", &dir, e)),
        };
        let mut pairing = BTreeSet::new();
        let mut allow = BTreeSet::new();
        for entry in rd.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(ch) = name.strip_suffix("-pairing.json") {
                if check_name("channel", ch).is_ok() {
                    pairing.insert(ch.to_string());
                }
            } else if let Some(prefix) = name.strip_suffix("-allowFrom.json") {
                let pair = if known.iter().any(|k| k == prefix) || !prefix.contains('-') {
                    (prefix.to_string(), DEFAULT_ACCOUNT.to_string())
                } else {
                    let (c, a) = prefix.split_once('-').unwrap_or((prefix, DEFAULT_ACCOUNT));
                    (c.to_string(), a.to_string())
                };
                if check_name("channel", &pair.0).is_ok() && check_name("account", &pair.1).is_ok()
                {
                    allow.insert(pair);
                }
            }
        }
        Ok((pairing.into_iter().collect(), allow.into_iter().collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use rand::SeedableRng;

    fn store() -> (tempfile::TempDir, DmStore, ManualClock) {
        let tmp = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(1_767_323_045_678);
        let s = DmStore::new(StatePaths::new(tmp.path()), Arc::new(clock.clone()));
        (tmp, s, clock)
    }

    #[test]
    fn approve_moves_sender_into_allowlist_of_its_account() {
        let (tmp, s, _) = store();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let (Upsert::Created(req), _) = s
            .upsert(
                "telegram",
                "work",
                "77",
                &Map::new(),
                DmLimits::default(),
                &mut rng,
            )
            .unwrap()
        else {
            panic!()
        };
        let ok = s
            .approve(
                "telegram",
                &req.code.to_lowercase(),
                None,
                "cli",
                DmLimits::default(),
            )
            .unwrap()
            .unwrap();
        assert_eq!(ok.account, "work");
        assert!(s.is_allowed("telegram", "work", "77").unwrap());
        assert!(!s.is_allowed("telegram", "default", "77").unwrap());
        assert!(tmp
            .path()
            .join("credentials/telegram-work-allowFrom.json")
            .exists());
        assert!(s
            .list("telegram", DmLimits::default())
            .unwrap()
            .0
            .is_empty());
        assert_eq!(
            s.approve("telegram", &req.code, None, "cli", DmLimits::default())
                .unwrap(),
            None,
            "a code works once"
        );
    }

    #[test]
    fn default_account_reads_both_allow_files_and_remove_clears_both() {
        let (tmp, s, _) = store();
        let cred = tmp.path().join("credentials");
        std::fs::create_dir_all(&cred).unwrap();
        std::fs::write(
            cred.join("telegram-allowFrom.json"),
            r#"{"version":1,"allowFrom":["1"]}"#,
        )
        .unwrap();
        std::fs::write(
            cred.join("telegram-default-allowFrom.json"),
            r#"{"version":1,"allowFrom":["2","1"]}"#,
        )
        .unwrap();
        let senders: Vec<String> = s
            .allow_entries("telegram", "default")
            .unwrap()
            .into_iter()
            .map(|e| e.sender)
            .collect();
        assert_eq!(senders, vec!["1", "2"]);
        assert!(s.is_allowed("telegram", "default", "2").unwrap());
        assert!(s.allow_remove("telegram", "default", "1").unwrap());
        assert!(!s.is_allowed("telegram", "default", "1").unwrap());
        assert!(!s.allow_remove("telegram", "default", "1").unwrap());
    }

    #[test]
    fn listing_a_channel_with_no_file_creates_nothing() {
        let (tmp, s, _) = store();
        assert!(s
            .list("telegram", DmLimits::default())
            .unwrap()
            .0
            .is_empty());
        assert!(!tmp
            .path()
            .join("credentials/telegram-pairing.json")
            .exists());
    }

    #[test]
    fn bad_names_and_senders_are_refused() {
        let (tmp, s, _) = store();
        assert!(matches!(
            s.allow_add("../etc", "default", "1", "cli"),
            Err(DmStoreError::Name(_))
        ));
        assert!(matches!(
            s.allow_add("telegram", "a/b", "1", "cli"),
            Err(DmStoreError::Name(_))
        ));
        assert!(matches!(
            s.allow_add("telegram", "default", "*", "cli"),
            Err(DmStoreError::BadSender)
        ));
        assert!(matches!(
            s.allow_add("telegram", "default", "a b", "cli"),
            Err(DmStoreError::BadSender)
        ));
        assert!(
            std::fs::read_dir(tmp.path()).unwrap().next().is_none(),
            "nothing written"
        );
    }

    #[test]
    fn discover_resolves_channels_and_accounts() {
        let (tmp, s, _) = store();
        let cred = tmp.path().join("credentials");
        std::fs::create_dir_all(&cred).unwrap();
        for f in [
            "telegram-pairing.json",
            "telegram-allowFrom.json",
            "telegram-work-allowFrom.json",
            "my-chan-allowFrom.json",
            "Bad-pairing.json",
        ] {
            std::fs::write(cred.join(f), "{}").unwrap();
        }
        let (p, a) = s.discover(&["my-chan".to_string()]).unwrap();
        assert_eq!(p, vec!["telegram"]);
        assert!(a.contains(&("my-chan".into(), "default".into())));
        assert!(a.contains(&("telegram".into(), "work".into())));
        assert!(a.contains(&("telegram".into(), "default".into())));
    }
}
