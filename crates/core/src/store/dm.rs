//! DM pairing on disk: `credentials/<channel>-pairing.json` and the allowFrom files, in
//! OpenClaw's names and shapes. Every change is a locked read-modify-write; reads on the hot
//! path go through a cache that notices changes made by other processes.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use rand::RngCore;
use serde_json::{Map, Value};

use super::fs::{read_json, update_json, JsonCache, StoreResult};
use super::{AccountId, ChannelName, InvalidName, StatePaths, StoreError};
use crate::clock::{iso_from_ms, Clock};
use crate::pairing::dm::{self, AllowDetails, AllowFile, DmLimits, DmRequest, PairingFile, Upsert};

#[derive(Debug, thiserror::Error)]
pub enum DmStoreError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Name(#[from] InvalidName),
    #[error("sender id must be 1-256 visible characters")]
    BadSender,
    /// The request was found, but the account its file names cannot become a path: it is
    /// listed, never approved into a file, until the file is corrected or the request rejected.
    #[error("cannot approve pairing code {code}: {} stores it under an {name}; nothing was changed: reject the request, or correct its meta.accountId in that file", file.display())]
    StoredName {
        file: PathBuf,
        code: String,
        name: InvalidName,
    },
}

pub type DmResult<T> = Result<T, DmStoreError>;

/// One allowed sender as listed.
#[derive(Debug, Clone, PartialEq)]
pub struct AllowEntry {
    pub channel: ChannelName,
    pub account: AccountId,
    pub sender: String,
    pub details: AllowDetails,
}

/// A file in `credentials/` named like one of the store's whose names do not pass the rule:
/// never read, never written.
#[derive(Debug, Clone, PartialEq)]
pub struct IgnoredFile {
    /// The file's name, sanitised.
    pub file: String,
    pub name: InvalidName,
}

/// What `credentials/` holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Discovered {
    /// Channels with a pairing file.
    pub pairing: Vec<ChannelName>,
    /// (channel, account) pairs with an allowFrom file.
    pub allow: Vec<(ChannelName, AccountId)>,
    pub ignored: Vec<IgnoredFile>,
}

/// The outcome of an approval.
#[derive(Debug, Clone, PartialEq)]
pub struct Approved {
    pub channel: ChannelName,
    pub account: AccountId,
    pub request: DmRequest,
}

/// The account a stored request names, when it may become a path.
pub fn stored_account(r: &DmRequest) -> Result<AccountId, InvalidName> {
    AccountId::parse(r.account())
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
    /// returned second. Requests whose stored account is not a valid name are listed too
    /// ([`stored_account`] tells them apart): the owner must see them to reject them.
    pub fn list(
        &self,
        channel: &ChannelName,
        limits: DmLimits,
    ) -> DmResult<(Vec<DmRequest>, Vec<DmRequest>)> {
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
        channel: &ChannelName,
        account: &AccountId,
        sender: &str,
        meta: &Map<String, Value>,
        limits: DmLimits,
        rng: &mut impl RngCore,
    ) -> DmResult<(Upsert, Vec<DmRequest>)> {
        check_sender(sender)?;
        let now = self.clock.now_ms();
        update_json(
            &self.paths.pairing_file(channel),
            &*self.clock,
            |f: &mut PairingFile| {
                let expired = dm::prune_expired(f, now, limits.ttl_ms);
                let outcome =
                    dm::upsert_request(f, sender, account.as_str(), meta, now, limits, rng);
                Ok((outcome, expired))
            },
        )
    }

    /// Approves the request with this code: the sender joins the allowlist of the request's
    /// account (or `account` when given, which must match), then the request is removed. Both
    /// happen under the pairing file's lock; a crash between them leaves the sender allowed and
    /// a stale request, never a lost approval. A request whose stored account is not a valid
    /// name is refused ([`DmStoreError::StoredName`]) and nothing is written.
    pub fn approve(
        &self,
        channel: &ChannelName,
        code: &str,
        account: Option<&AccountId>,
        via: &str,
        limits: DmLimits,
    ) -> DmResult<Option<Approved>> {
        let now = self.clock.now_ms();
        let path = self.paths.pairing_file(channel);
        if !path.exists() {
            return Ok(None);
        }
        update_json(&path, &*self.clock, |f: &mut PairingFile| {
            dm::prune_expired(f, now, limits.ttl_ms);
            let mut probe = f.clone();
            let Some(req) = dm::take_by_code(&mut probe, code, account.map(AccountId::as_str))
            else {
                return Ok(None);
            };
            let acct = stored_account(&req).map_err(|name| DmStoreError::StoredName {
                file: path.clone(),
                code: dm::normalize_code(code),
                name,
            })?;
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
                channel: channel.clone(),
                account: acct,
                request: req,
            }))
        })
    }

    /// Removes the request with this code without allowing the sender. Works for a request
    /// whose stored account is not a valid name too: rejecting builds no path from it.
    pub fn reject(
        &self,
        channel: &ChannelName,
        code: &str,
        account: Option<&AccountId>,
        limits: DmLimits,
    ) -> DmResult<Option<DmRequest>> {
        let now = self.clock.now_ms();
        let path = self.paths.pairing_file(channel);
        if !path.exists() {
            return Ok(None);
        }
        update_json(&path, &*self.clock, |f: &mut PairingFile| {
            dm::prune_expired(f, now, limits.ttl_ms);
            Ok(dm::take_by_code(f, code, account.map(AccountId::as_str)))
        })
    }

    /// Removes every request of the channel whose stored account is not a valid name (and
    /// nothing else), returning them. The other requests stay as they are.
    pub fn remove_invalid(&self, channel: &ChannelName) -> DmResult<Vec<DmRequest>> {
        let path = self.paths.pairing_file(channel);
        if !path.exists() {
            return Ok(vec![]);
        }
        update_json(&path, &*self.clock, |f: &mut PairingFile| {
            let (bad, good): (Vec<_>, Vec<_>) = std::mem::take(&mut f.requests)
                .into_iter()
                .partition(|r| stored_account(r).is_err());
            f.requests = good;
            Ok(bad)
        })
    }

    fn allow_paths(&self, channel: &ChannelName, account: &AccountId) -> Vec<PathBuf> {
        let mut v = vec![self.paths.allow_file(channel, account)];
        if account.is_default() {
            v.push(self.paths.scoped_default_allow_file(channel));
        }
        v
    }

    /// Whether the sender is on the stored allowlist (cached; one `stat` per file when unchanged).
    pub fn is_allowed(
        &self,
        channel: &ChannelName,
        account: &AccountId,
        sender: &str,
    ) -> DmResult<bool> {
        for p in self.allow_paths(channel, account) {
            if self.allow_cache.get(&p, &*self.clock)?.contains(sender) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// [`DmStore::is_allowed`] from the cache alone: `None` when a file changed since it was
    /// last read (or was never read), so the caller must use `is_allowed` off the async runtime.
    pub fn is_allowed_cached(
        &self,
        channel: &ChannelName,
        account: &AccountId,
        sender: &str,
    ) -> Option<bool> {
        for p in self.allow_paths(channel, account) {
            if self.allow_cache.peek(&p)?.contains(sender) {
                return Some(true);
            }
        }
        Some(false)
    }

    /// The allowed senders of one account (for the default account, both files merged).
    pub fn allow_entries(
        &self,
        channel: &ChannelName,
        account: &AccountId,
    ) -> DmResult<Vec<AllowEntry>> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for p in self.allow_paths(channel, account) {
            let f: AllowFile = read_json(&p, &*self.clock)?;
            for s in &f.allow_from {
                if s != "*" && !s.is_empty() && seen.insert(s.clone()) {
                    out.push(AllowEntry {
                        channel: channel.clone(),
                        account: account.clone(),
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
        channel: &ChannelName,
        account: &AccountId,
        sender: &str,
        via: &str,
    ) -> DmResult<bool> {
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
        channel: &ChannelName,
        account: &AccountId,
        entries: &[(String, AllowDetails)],
    ) -> DmResult<Vec<String>> {
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
        channel: &ChannelName,
        account: &AccountId,
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
    pub fn allow_remove(
        &self,
        channel: &ChannelName,
        account: &AccountId,
        sender: &str,
    ) -> DmResult<bool> {
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
        channel: &ChannelName,
        account: &AccountId,
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

    /// What `credentials/` holds: channels with a pairing file, (channel, account) pairs with
    /// an allowFrom file, and files named like those whose names do not pass the rule
    /// (ignored). `known` resolves names with dashes: a file prefix that is a known channel is
    /// that channel's default account; otherwise the first dash splits channel from account.
    pub fn discover(&self, known: &[ChannelName]) -> StoreResult<Discovered> {
        let dir = self.paths.credentials_dir();
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Discovered::default()),
            Err(e) => return Err(StoreError::io("list", &dir, e)),
        };
        let mut pairing = BTreeSet::new();
        let mut allow = BTreeSet::new();
        let mut ignored = Vec::new();
        for entry in rd.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let parsed = if let Some(ch) = name.strip_suffix("-pairing.json") {
                ChannelName::parse(ch).map(|c| {
                    pairing.insert(c);
                })
            } else if let Some(prefix) = name.strip_suffix("-allowFrom.json") {
                let (c, a) = if known.iter().any(|k| k == prefix) || !prefix.contains('-') {
                    (prefix, dm::DEFAULT_ACCOUNT)
                } else {
                    prefix
                        .split_once('-')
                        .unwrap_or((prefix, dm::DEFAULT_ACCOUNT))
                };
                ChannelName::parse(c)
                    .and_then(|c| Ok((c, AccountId::parse(a)?)))
                    .map(|pair| {
                        allow.insert(pair);
                    })
            } else {
                Ok(())
            };
            if let Err(e) = parsed {
                ignored.push(IgnoredFile {
                    file: crate::sanitize::sanitize(&name),
                    name: e,
                });
            }
        }
        ignored.sort_by(|a, b| a.file.cmp(&b.file));
        Ok(Discovered {
            pairing: pairing.into_iter().collect(),
            allow: allow.into_iter().collect(),
            ignored,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use rand::SeedableRng;

    const TG: ChannelName = ChannelName::from_static("telegram");
    const WORK: AccountId = AccountId::from_static("work");
    const DEFAULT: AccountId = AccountId::DEFAULT;

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
            .upsert(&TG, &WORK, "77", &Map::new(), DmLimits::default(), &mut rng)
            .unwrap()
        else {
            panic!()
        };
        let ok = s
            .approve(
                &TG,
                &req.code.to_lowercase(),
                None,
                "cli",
                DmLimits::default(),
            )
            .unwrap()
            .unwrap();
        assert_eq!(ok.account, "work");
        assert!(s.is_allowed(&TG, &WORK, "77").unwrap());
        assert!(!s.is_allowed(&TG, &DEFAULT, "77").unwrap());
        assert!(tmp
            .path()
            .join("credentials/telegram-work-allowFrom.json")
            .exists());
        assert!(s.list(&TG, DmLimits::default()).unwrap().0.is_empty());
        assert_eq!(
            s.approve(&TG, &req.code, None, "cli", DmLimits::default())
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
            .allow_entries(&TG, &DEFAULT)
            .unwrap()
            .into_iter()
            .map(|e| e.sender)
            .collect();
        assert_eq!(senders, vec!["1", "2"]);
        assert!(s.is_allowed(&TG, &DEFAULT, "2").unwrap());
        assert!(s.allow_remove(&TG, &DEFAULT, "1").unwrap());
        assert!(!s.is_allowed(&TG, &DEFAULT, "1").unwrap());
        assert!(!s.allow_remove(&TG, &DEFAULT, "1").unwrap());
    }

    #[test]
    fn listing_a_channel_with_no_file_creates_nothing() {
        let (tmp, s, _) = store();
        assert!(s.list(&TG, DmLimits::default()).unwrap().0.is_empty());
        assert!(!tmp
            .path()
            .join("credentials/telegram-pairing.json")
            .exists());
    }

    #[test]
    fn bad_senders_are_refused() {
        let (tmp, s, _) = store();
        assert!(matches!(
            s.allow_add(&TG, &DEFAULT, "*", "cli"),
            Err(DmStoreError::BadSender)
        ));
        assert!(matches!(
            s.allow_add(&TG, &DEFAULT, "a b", "cli"),
            Err(DmStoreError::BadSender)
        ));
        assert!(
            std::fs::read_dir(tmp.path()).unwrap().next().is_none(),
            "nothing written"
        );
    }

    /// A pairing file as another tool might write it: one request per account name.
    fn pairing_file_with_accounts(tmp: &tempfile::TempDir, accounts: &[&str]) {
        let now = iso_from_ms(1_767_323_045_678);
        let requests: Vec<Value> = accounts
            .iter()
            .enumerate()
            .map(|(i, a)| {
                serde_json::json!({
                    "id": format!("{}", 100 + i),
                    "code": format!("ABCDEFG{}", ["A", "B", "C", "D", "E", "F", "G", "H"][i]),
                    "createdAt": now, "lastSeenAt": now,
                    "meta": { "accountId": a }
                })
            })
            .collect();
        let cred = tmp.path().join("credentials");
        std::fs::create_dir_all(&cred).unwrap();
        std::fs::write(
            cred.join("evil-pairing.json"),
            serde_json::json!({ "version": 1, "requests": requests }).to_string(),
        )
        .unwrap();
    }

    #[test]
    fn a_stored_account_that_is_a_path_is_listed_but_never_approved_into_a_file() {
        let (tmp, s, _) = store();
        pairing_file_with_accounts(&tmp, &["../../../../escape", "work"]);
        let evil = ChannelName::parse("evil").unwrap();
        let (live, _) = s.list(&evil, DmLimits::default()).unwrap();
        assert_eq!(live.len(), 2, "both requests are listed");
        assert!(stored_account(&live[0]).is_err());
        let before = std::fs::read(tmp.path().join("credentials/evil-pairing.json")).unwrap();

        let e = s
            .approve(&evil, "abcdefga", None, "cli", DmLimits::default())
            .unwrap_err();
        let shown = e.to_string();
        assert!(matches!(e, DmStoreError::StoredName { .. }), "{e:?}");
        assert!(
            shown.contains("evil-pairing.json")
                && shown.contains("invalid account name \"../../../../escape\""),
            "{shown}"
        );
        let mut names: Vec<String> = std::fs::read_dir(tmp.path().join("credentials"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["evil-pairing.json", "evil-pairing.json.lock"],
            "no directory, no allowlist"
        );
        assert_eq!(
            std::fs::read(tmp.path().join("credentials/evil-pairing.json")).unwrap(),
            before,
            "the file is untouched"
        );

        // The rest of the file is still served.
        let ok = s
            .approve(&evil, "ABCDEFGB", None, "cli", DmLimits::default())
            .unwrap()
            .unwrap();
        assert_eq!(ok.account, "work");
        assert!(s.is_allowed(&evil, &WORK, "101").unwrap());

        // Rejecting builds no path: it removes the bad request like any other.
        assert_eq!(
            s.reject(&evil, "ABCDEFGA", None, DmLimits::default())
                .unwrap()
                .map(|r| r.id),
            Some("100".into())
        );
    }

    #[test]
    fn removing_invalid_requests_leaves_the_others() {
        let (tmp, s, _) = store();
        pairing_file_with_accounts(&tmp, &["..", "default", "a/b", "Work"]);
        let evil = ChannelName::parse("evil").unwrap();
        let gone: Vec<String> = s
            .remove_invalid(&evil)
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(gone, ["100", "102", "103"]);
        let (live, _) = s.list(&evil, DmLimits::default()).unwrap();
        assert_eq!(live.len(), 1);
        assert_eq!(live[0].id, "101");
        assert!(s.remove_invalid(&evil).unwrap().is_empty());
    }

    #[test]
    fn discover_resolves_channels_and_accounts_and_names_what_it_ignores() {
        let (tmp, s, _) = store();
        let cred = tmp.path().join("credentials");
        std::fs::create_dir_all(&cred).unwrap();
        for f in [
            "telegram-pairing.json",
            "telegram-allowFrom.json",
            "telegram-work-allowFrom.json",
            "my-chan-allowFrom.json",
            "Bad-pairing.json",
            "..-pairing.json",
            "evil-..-allowFrom.json",
            "telegram-offset.json",
        ] {
            std::fs::write(cred.join(f), "{}").unwrap();
        }
        let d = s
            .discover(&[ChannelName::parse("my-chan").unwrap()])
            .unwrap();
        assert_eq!(d.pairing, vec![TG]);
        let my = ChannelName::parse("my-chan").unwrap();
        assert!(d.allow.contains(&(my, DEFAULT)));
        assert!(d.allow.contains(&(TG, WORK)));
        assert!(d.allow.contains(&(TG, DEFAULT)));
        assert_eq!(d.allow.len(), 3);
        let ignored: Vec<(&str, &str)> = d
            .ignored
            .iter()
            .map(|i| (i.file.as_str(), i.name.kind))
            .collect();
        assert_eq!(
            ignored,
            [
                ("..-pairing.json", "channel"),
                ("Bad-pairing.json", "channel"),
                ("evil-..-allowFrom.json", "account")
            ]
        );
    }
}
