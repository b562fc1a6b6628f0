//! Chat senders: an inbound message decided (allowed, challenged with a code, ignored), the
//! pending requests, the owner's approvals and rejections, and the allowlists.

use serde_json::{Map, Value};

use super::*;

/// An inbound direct message from a channel bridge.
#[derive(Debug, Clone, Default)]
pub struct InboundDm {
    pub channel: String,
    pub account: Option<String>,
    pub sender: String,
    pub text: Option<String>,
    pub meta: Map<String, Value>,
    pub is_group: bool,
}

/// The channel and account of an inbound DM (the default account when none), once both names
/// and the sender passed their checks.
fn dm_names(m: &InboundDm) -> ServiceResult<(ChannelName, AccountId)> {
    let channel = channel_name(&m.channel)?;
    let account = AccountId::parse_or_default(m.account.as_deref()).map_err(bad_name)?;
    crate::store::dm::check_sender(&m.sender).map_err(dm_err)?;
    Ok((channel, account))
}

/// What the DM rule needs to know about a sender, from the settings and the stored allowlist.
fn sender_facts(settings: &Settings, m: &InboundDm, in_stored_allowlist: bool) -> SenderFacts {
    let ch = settings.channel(&m.channel);
    let listed = |list: Option<&Vec<String>>| {
        list.is_some_and(|l| l.iter().any(|s| s == &m.sender && s != "*"))
    };
    SenderFacts {
        policy: settings.dm_policy(&m.channel),
        is_group: m.is_group,
        is_owner: listed(ch.map(|c| &c.owners)),
        in_config_allow_from: listed(ch.map(|c| &c.allow_from)),
        in_stored_allowlist,
    }
}

impl Service {
    fn view(&self, channel: &ChannelName, r: &DmRequest, ttl_ms: Millis) -> DmRequestView {
        DmRequestView {
            channel: channel.to_string(),
            account_id: sanitize(r.account()),
            invalid_name: stored_account(r).is_err(),
            id: sanitize(&r.id),
            code: r.code.clone(),
            created_at: r.created_at.clone(),
            last_seen_at: r.last_seen_at.clone(),
            expires_at: r.expires_ms(ttl_ms).map(iso_from_ms).unwrap_or_default(),
            meta: clean_meta(&r.meta),
        }
    }

    fn publish_expired_dm(&self, channel: &ChannelName, expired: &[DmRequest]) {
        for r in expired {
            self.events.publish(Event::PairingResolved {
                channel: channel.to_string(),
                account_id: sanitize(r.account()),
                sender_id: r.id.clone(),
                code: r.code.clone(),
                decision: Resolution::Expired,
                notify: false,
            });
        }
    }

    /// Decides what happens to one inbound DM: allow (published as `chat.message`),
    /// challenge (the reply to send carries a new code), or drop — with a reason.
    pub fn dm_inbound(&self, m: &InboundDm) -> ServiceResult<Decision> {
        let (channel, account) = dm_names(m)?;
        let settings = self.settings();
        let in_stored_allowlist = settings.dm_policy(&m.channel) == dm_rules::DmPolicy::Pairing
            && self.check(
                self.dm
                    .is_allowed(&channel, &account, &m.sender)
                    .map_err(dm_err),
            )?;
        let decision = match dm_rules::gate(sender_facts(&settings, m, in_stored_allowlist)) {
            Some(d) => d,
            None if settings.ui.paused => Decision::Drop(Reason::Paused),
            None => {
                let meta = clean_meta(&m.meta);
                let (outcome, expired) = self.check(
                    self.dm
                        .upsert(
                            &channel,
                            &account,
                            &m.sender,
                            &meta,
                            settings.dm_limits(),
                            &mut rand::rngs::OsRng,
                        )
                        .map_err(dm_err),
                )?;
                self.publish_expired_dm(&channel, &expired);
                match &outcome {
                    Upsert::Created(req) => {
                        self.audit(
                            "dm.requested",
                            &m.channel,
                            obj(&[
                                ("channel", channel.to_string().into()),
                                ("accountId", account.to_string().into()),
                                ("senderId", sanitize(&m.sender).into()),
                                ("code", req.code.clone().into()),
                            ]),
                        );
                        self.events.publish(Event::PairingRequested(self.view(
                            &channel,
                            req,
                            settings.dm_limits().ttl_ms,
                        )));
                    }
                    Upsert::CapReached => {
                        self.audit(
                            "dm.dropped",
                            &m.channel,
                            obj(&[
                                ("channel", channel.to_string().into()),
                                ("accountId", account.to_string().into()),
                                ("senderId", sanitize(&m.sender).into()),
                                ("reason", "pending-cap".into()),
                            ]),
                        );
                        self.events.publish(Event::PairingDropped {
                            channel: channel.to_string(),
                            account_id: account.to_string(),
                            reason: "pending-cap".into(),
                            ts: self.now_ms(),
                        });
                    }
                    Upsert::Existing(_) | Upsert::NoCode => {}
                }
                dm_rules::decide_after_upsert(&m.channel, &m.sender, &outcome)
            }
        };
        Ok(self.dm_decided(m, &account, decision))
    }

    /// [`Service::dm_inbound`] for a sender whom the cached settings and allowlist settle
    /// (allowed, owner, open, disabled, group, not allowlisted): no disk read and no write, so
    /// an async task may call it. `None` when a file must be read or a request written first.
    pub fn dm_inbound_cached(&self, m: &InboundDm) -> Option<ServiceResult<Decision>> {
        let (channel, account) = match dm_names(m) {
            Ok(names) => names,
            Err(e) => return Some(Err(e)),
        };
        let settings = self.settings_cached()?;
        let in_stored_allowlist = settings.dm_policy(&m.channel) == dm_rules::DmPolicy::Pairing
            && self.dm.is_allowed_cached(&channel, &account, &m.sender)?;
        let decision = dm_rules::gate(sender_facts(&settings, m, in_stored_allowlist))?;
        Some(Ok(self.dm_decided(m, &account, decision)))
    }

    /// Publishes an allowed message as `chat.message`.
    fn dm_decided(&self, m: &InboundDm, account: &AccountId, decision: Decision) -> Decision {
        if let Decision::Allow(_) = decision {
            self.events.publish(Event::ChatMessage {
                channel: m.channel.clone(),
                account_id: account.to_string(),
                sender_id: m.sender.clone(),
                text: m.text.clone().unwrap_or_default(),
                meta: clean_meta(&m.meta),
                ts: self.now_ms(),
            });
        }
        decision
    }

    /// The channels settings name, for telling a channel with a dash in its name from a
    /// channel and an account in a file name. A key that is not a valid name is left out: it
    /// never becomes part of a path (`clawpair doctor` reports it).
    fn known_channels(&self) -> Vec<ChannelName> {
        self.settings()
            .channels
            .keys()
            .filter_map(|k| ChannelName::parse(k).ok())
            .collect()
    }

    /// Files in `credentials/` named like the store's whose names do not pass the rule: they
    /// are never read or written (for `clawpair doctor`).
    pub fn dm_ignored_files(&self) -> ServiceResult<Vec<IgnoredFile>> {
        let found = self.dm.discover(&self.known_channels());
        Ok(self.check(found.map_err(ServiceError::Store))?.ignored)
    }

    /// Pending DM requests of one channel, or of every channel. A request whose stored account
    /// is not a valid name is listed with `invalidName`, so the owner can see and reject it.
    pub fn dm_list(&self, channel: Option<&str>) -> ServiceResult<Vec<DmRequestView>> {
        let channels = match channel {
            Some(c) => vec![channel_name(c)?],
            None => {
                self.check(
                    self.dm
                        .discover(&self.known_channels())
                        .map_err(ServiceError::Store),
                )?
                .pairing
            }
        };
        let limits = self.settings().dm_limits();
        let mut out = Vec::new();
        for ch in channels {
            let (live, expired) = self.check(self.dm.list(&ch, limits).map_err(dm_err))?;
            self.publish_expired_dm(&ch, &expired);
            out.extend(live.iter().map(|r| self.view(&ch, r, limits.ttl_ms)));
        }
        Ok(out)
    }

    /// Removes from a channel's pairing file the requests whose stored account is not a valid
    /// name (`clawpair doctor --fix`), each as if it were rejected; the other requests stay.
    /// Returns what was removed.
    pub fn dm_remove_invalid(&self, channel: &str, via: &str) -> ServiceResult<Vec<DmRequestView>> {
        let ch = channel_name(channel)?;
        let ttl = self.settings().dm_limits().ttl_ms;
        let removed = self.check(self.dm.remove_invalid(&ch).map_err(dm_err))?;
        let mut out = Vec::new();
        for r in removed {
            let view = self.view(&ch, &r, ttl);
            self.audit(
                "dm.rejected",
                via,
                obj(&[
                    ("channel", ch.to_string().into()),
                    ("accountId", view.account_id.clone().into()),
                    ("senderId", view.id.clone().into()),
                    ("code", r.code.clone().into()),
                    ("reason", "invalid-account-name".into()),
                ]),
            );
            self.events.publish(Event::PairingResolved {
                channel: ch.to_string(),
                account_id: view.account_id.clone(),
                sender_id: r.id.clone(),
                code: r.code.clone(),
                decision: Resolution::Rejected,
                notify: false,
            });
            out.push(view);
        }
        Ok(out)
    }

    /// The channel to act on when the caller named none: the only one with pending requests.
    pub fn resolve_channel(&self, channel: Option<&str>) -> ServiceResult<ChannelName> {
        if let Some(c) = channel {
            return channel_name(c);
        }
        let mut with_pending: Vec<String> =
            self.dm_list(None)?.into_iter().map(|r| r.channel).collect();
        with_pending.dedup();
        match with_pending.as_slice() {
            [one] => channel_name(one),
            [] => Err(ServiceError::NotFound {
                what: "nothing to decide",
                id: String::new(),
                reason: "none pending".into(),
            }),
            many => Err(ServiceError::Invalid(format!(
                "several channels have pending requests ({}); name the channel",
                many.join(", ")
            ))),
        }
    }

    /// Approves a DM pairing code: the sender joins the allowlist. With `notify`, channel
    /// bridges send the sender a confirmation (they see it in `pairing.resolved`).
    pub fn dm_approve(
        &self,
        channel: Option<&str>,
        code: &str,
        account: Option<&str>,
        notify: bool,
        via: &str,
    ) -> ServiceResult<DmApproved> {
        let channel = self.resolve_channel(channel)?;
        let code_n = dm_rules::normalize_code(code);
        if !dm_rules::looks_like_code(&code_n) {
            return Err(ServiceError::Invalid(format!(
                "{:?} is not a pairing code (8 characters from A-Z and 2-9, no 0/O/1/I)",
                sanitize(code)
            )));
        }
        let account = account_id(account)?;
        let limits = self.settings().dm_limits();
        let approved = self.check(
            self.dm
                .approve(&channel, &code_n, account.as_ref(), via, limits)
                .map_err(dm_err),
        )?;
        let Some(a) = approved else {
            return Err(ServiceError::NotFound {
                what: "code",
                id: format!("{code_n} on {channel}"),
                reason: "unknown or expired".into(),
            });
        };
        let out = DmApproved {
            channel: channel.to_string(),
            account_id: a.account.to_string(),
            sender_id: a.request.id.clone(),
            code: a.request.code.clone(),
        };
        self.audit(
            "dm.approved",
            via,
            obj(&[
                ("channel", out.channel.clone().into()),
                ("accountId", out.account_id.clone().into()),
                ("senderId", sanitize(&a.request.id).into()),
                ("code", out.code.clone().into()),
                ("notify", notify.into()),
            ]),
        );
        self.events.publish(Event::PairingResolved {
            channel: out.channel.clone(),
            account_id: out.account_id.clone(),
            sender_id: a.request.id.clone(),
            code: out.code.clone(),
            decision: Resolution::Approved,
            notify,
        });
        self.events.publish(Event::AllowlistChanged {
            channel: out.channel.clone(),
            account_id: out.account_id.clone(),
        });
        Ok(out)
    }

    /// Removes a DM request without allowing the sender (they may ask again later).
    pub fn dm_reject(
        &self,
        channel: Option<&str>,
        code: &str,
        account: Option<&str>,
        via: &str,
    ) -> ServiceResult<DmApproved> {
        let channel = self.resolve_channel(channel)?;
        let code_n = dm_rules::normalize_code(code);
        let account = account_id(account)?;
        let limits = self.settings().dm_limits();
        let Some(r) = self.check(
            self.dm
                .reject(&channel, &code_n, account.as_ref(), limits)
                .map_err(dm_err),
        )?
        else {
            return Err(ServiceError::NotFound {
                what: "code",
                id: format!("{} on {channel}", sanitize(&code_n)),
                reason: "unknown or expired".into(),
            });
        };
        // The stored account is text from a file, possibly not a valid name: shown sanitised.
        let account_shown = sanitize(r.account());
        self.audit(
            "dm.rejected",
            via,
            obj(&[
                ("channel", channel.to_string().into()),
                ("accountId", account_shown.clone().into()),
                ("senderId", sanitize(&r.id).into()),
                ("code", r.code.clone().into()),
            ]),
        );
        self.events.publish(Event::PairingResolved {
            channel: channel.to_string(),
            account_id: account_shown.clone(),
            sender_id: r.id.clone(),
            code: r.code.clone(),
            decision: Resolution::Rejected,
            notify: false,
        });
        Ok(DmApproved {
            channel: channel.to_string(),
            account_id: account_shown,
            sender_id: r.id.clone(),
            code: r.code,
        })
    }

    /// Allowed senders of one channel (every account), or of every channel.
    pub fn allow_list(&self, channel: Option<&str>) -> ServiceResult<Vec<AllowView>> {
        let only = channel.map(channel_name).transpose()?;
        let mut pairs = self
            .check(
                self.dm
                    .discover(&self.known_channels())
                    .map_err(ServiceError::Store),
            )?
            .allow;
        if let Some(c) = &only {
            pairs.retain(|(ch, _)| ch == c);
        }
        // A scoped default file and the legacy one are the same account: list it once.
        pairs.sort();
        pairs.dedup();
        let mut out = Vec::new();
        for (ch, acct) in pairs {
            for e in self.check(self.dm.allow_entries(&ch, &acct).map_err(dm_err))? {
                out.push(AllowView {
                    channel: e.channel.into(),
                    account_id: e.account.into(),
                    sender_id: e.sender,
                    approved_at: e.details.approved_at,
                    approved_via: e.details.approved_via,
                    label: e.details.label.map(|l| sanitize(&l)),
                    last_message_at: e.details.last_message_at,
                    read_only: false,
                    remove_with: None,
                });
            }
        }
        Ok(out)
    }

    pub fn allow_add(
        &self,
        channel: &str,
        account: Option<&str>,
        sender: &str,
        via: &str,
    ) -> ServiceResult<bool> {
        let channel = channel_name(channel)?;
        let account = account_id(account)?.unwrap_or_default();
        let added = self.check(
            self.dm
                .allow_add(&channel, &account, sender, via)
                .map_err(dm_err),
        )?;
        if added {
            self.allowlist_changed("allowlist.added", &channel, &account, sender, via);
        }
        Ok(added)
    }

    pub fn allow_remove(
        &self,
        channel: &str,
        account: Option<&str>,
        sender: &str,
        via: &str,
    ) -> ServiceResult<bool> {
        let channel = channel_name(channel)?;
        let account = account_id(account)?.unwrap_or_default();
        let removed = self.check(
            self.dm
                .allow_remove(&channel, &account, sender)
                .map_err(dm_err),
        )?;
        if removed {
            self.allowlist_changed("allowlist.removed", &channel, &account, sender, via);
        }
        Ok(removed)
    }

    /// Audits a hand edit of an allowlist and tells subscribers.
    fn allowlist_changed(
        &self,
        action: &str,
        channel: &ChannelName,
        account: &AccountId,
        sender: &str,
        via: &str,
    ) {
        self.audit(
            action,
            via,
            obj(&[
                ("channel", channel.to_string().into()),
                ("accountId", account.to_string().into()),
                ("senderId", sanitize(sender).into()),
            ]),
        );
        self.events.publish(Event::AllowlistChanged {
            channel: channel.to_string(),
            account_id: account.to_string(),
        });
    }
}
