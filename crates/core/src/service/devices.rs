//! Devices: a connecting device's request, the owner's approval (in full or without admin),
//! rejection, removal, renaming, and each role's token (issued on connect, rotated, revoked).

use serde_json::Map;

use super::*;
use crate::pairing::authority::Authority;

/// What a new device connecting asks for (from `connect`), before sanitising.
#[derive(Debug, Clone, Default)]
pub struct DeviceAsk {
    pub device_id: String,
    pub public_key: String,
    pub fingerprint: String,
    pub display_name: String,
    pub platform: String,
    pub device_family: String,
    pub client_id: String,
    pub client_mode: String,
    pub role: String,
    pub scopes: Vec<String>,
    pub remote_ip: String,
    pub reason: String,
    pub is_repair: bool,
    /// The role's token was revoked (approving gives back access the device lost).
    pub regains: bool,
    /// The setup code (its hash) the device came with: bound to it under the code's lock
    /// before the request is recorded, so a device that loses the race for a code leaves no
    /// request behind.
    pub setup_code: Option<String>,
}

impl Service {
    fn publish_expired_devices(&self, expired: &[PendingDevice]) {
        for r in expired {
            self.events.publish(Event::DevicePairResolved {
                request_id: r.request_id.clone(),
                device_id: r.device_id.clone(),
                decision: Resolution::Expired,
                ts: self.now_ms(),
            });
        }
    }

    pub fn device_list(&self) -> ServiceResult<DeviceList> {
        let ttl = self.settings().device_pending_ttl_ms();
        let (pending, expired) = self.check(self.devices.pending(ttl).map_err(dev_err))?;
        self.publish_expired_devices(&expired);
        let paired = self.check(self.devices.paired().map_err(dev_err))?;
        let (now, stale_after) = (self.now_ms(), self.settings().stale_after_ms());
        let mut paired: Vec<PairedDeviceView> = paired
            .values()
            .map(|d| PairedDeviceView {
                stale: stale_after.is_some_and(|t| d.is_stale(now, t)),
                ..PairedDeviceView::from(d)
            })
            .collect();
        paired.sort_by_key(|d| d.approved_at_ms);
        Ok(DeviceList {
            pending: pending
                .into_iter()
                .map(|r| {
                    let expires = r.expires_ms(ttl);
                    PendingDeviceView::of(r, expires)
                })
                .collect(),
            paired,
        })
    }

    /// Records a device that must wait for the owner. Returns the request and its expiry.
    pub fn device_request(&self, ask: DeviceAsk) -> ServiceResult<(Reconciled, Millis)> {
        let settings = self.settings();
        if settings.ui.paused {
            return Err(ServiceError::Refused(
                "new pairing requests are paused by the owner".into(),
            ));
        }
        let now = self.now_ms();
        let candidate = PendingDevice {
            request_id: uuid::Uuid::new_v4().to_string(),
            device_id: ask.device_id,
            public_key: ask.public_key,
            display_name: sanitize(&ask.display_name),
            platform: sanitize(&ask.platform),
            device_family: sanitize(&ask.device_family),
            client_id: sanitize(&ask.client_id),
            client_mode: sanitize(&ask.client_mode),
            role: ask.role,
            scopes: ask.scopes.iter().map(|s| sanitize(s)).collect(),
            remote_ip: sanitize(&ask.remote_ip),
            fingerprint: ask.fingerprint,
            is_repair: ask.is_repair,
            reason: ask.reason,
            regains: ask.regains,
            ts: now,
            extra: Map::new(),
        };
        let ttl = settings.device_pending_ttl_ms();
        let (rec, expired) = self.check(
            self.devices
                .request(
                    candidate,
                    ask.setup_code.as_deref(),
                    ttl,
                    settings.devices.max_pending,
                )
                .map_err(dev_err),
        )?;
        self.publish_expired_devices(&expired);
        for s in &rec.superseded {
            self.events.publish(Event::DevicePairResolved {
                request_id: s.request_id.clone(),
                device_id: s.device_id.clone(),
                decision: Resolution::Superseded,
                ts: now,
            });
        }
        if rec.created {
            let r = &rec.request;
            self.audit(
                "device.requested",
                "gateway",
                obj(&[
                    ("requestId", r.request_id.clone().into()),
                    ("deviceId", r.device_id.clone().into()),
                    ("displayName", r.display_name.clone().into()),
                    ("platform", r.platform.clone().into()),
                    ("remoteIp", r.remote_ip.clone().into()),
                    ("fingerprint", r.fingerprint.clone().into()),
                    ("role", r.role.clone().into()),
                    ("reason", r.reason.clone().into()),
                ]),
            );
            self.events.publish(Event::DevicePairRequested(r.clone()));
        }
        let expires = rec.request.expires_ms(ttl);
        Ok((rec, expires))
    }

    /// The owner approves a device request in full.
    pub fn device_approve(&self, request_id: &str, via: &str) -> ServiceResult<PairedDeviceView> {
        self.device_approve_by(request_id, &[], &Authority::owner(), via)
    }

    /// Approves a device request without the scopes in `withhold` ("approve without admin"),
    /// when what it grants is within what `by` may grant (the approval ceiling): the device
    /// gets the rest, and its hello-ok says what it was granted.
    pub fn device_approve_by(
        &self,
        request_id: &str,
        withhold: &[String],
        by: &Authority,
        via: &str,
    ) -> ServiceResult<PairedDeviceView> {
        let ttl = self.settings().device_pending_ttl_ms();
        let (a, expired) = self.check(
            self.devices
                .approve(request_id.trim(), withhold, by, ttl)
                .map_err(dev_err),
        )?;
        self.publish_expired_devices(&expired);
        self.audit(
            "device.approved",
            via,
            obj(&[
                ("requestId", a.request.request_id.clone().into()),
                ("deviceId", a.device.device_id.clone().into()),
                ("displayName", a.device.display_name.clone().into()),
                ("fingerprint", a.device.fingerprint.clone().into()),
                ("role", a.request.role.clone().into()),
                ("scopes", a.device.scopes_for_role(&a.request.role).into()),
                ("withheld", withhold.to_vec().into()),
            ]),
        );
        self.events.publish(Event::DevicePairResolved {
            request_id: a.request.request_id.clone(),
            device_id: a.device.device_id.clone(),
            decision: Resolution::Approved,
            ts: self.now_ms(),
        });
        if a.request.is_repair && a.request.reason == "not-paired" {
            // Paired again: the old token of the role is gone; close what still uses it.
            self.device_changed(
                &a.device.device_id,
                DeviceChange::Rotated,
                Some(&a.request.role),
            );
        }
        Ok(PairedDeviceView::from(&a.device))
    }

    pub fn device_reject(&self, request_id: &str, via: &str) -> ServiceResult<PendingDevice> {
        let ttl = self.settings().device_pending_ttl_ms();
        let (r, expired) =
            self.check(self.devices.reject(request_id.trim(), ttl).map_err(dev_err))?;
        self.publish_expired_devices(&expired);
        // The setup code it came from dies with it: the same device cannot open a new request
        // (and a new notification) with it again and again.
        let revoked = self.check(
            self.devices
                .bootstrap_revoke_for_device(&r.device_id)
                .map_err(dev_err),
        )?;
        self.audit(
            "device.rejected",
            via,
            obj(&[
                ("requestId", r.request_id.clone().into()),
                ("deviceId", r.device_id.clone().into()),
                ("fingerprint", r.fingerprint.clone().into()),
                ("setupCodesRevoked", revoked.into()),
            ]),
        );
        self.events.publish(Event::DevicePairResolved {
            request_id: r.request_id.clone(),
            device_id: r.device_id.clone(),
            decision: Resolution::Rejected,
            ts: self.now_ms(),
        });
        Ok(r)
    }

    fn device_changed(&self, device_id: &str, change: DeviceChange, role: Option<&str>) {
        self.events.publish(Event::DeviceChanged {
            device_id: device_id.into(),
            change,
            role: role.map(Into::into),
            ts: self.now_ms(),
        });
    }

    /// The owner forgets a paired device (see [`Service::device_remove_by`]).
    pub fn device_remove(&self, device_id: &str, via: &str) -> ServiceResult<PairedDeviceView> {
        self.device_remove_by(device_id, &Authority::owner(), via)
    }

    /// Forgets a paired device completely, when `by` may act on it: its record and tokens, its
    /// pending requests, and any setup code bound to it. Its live connections are closed by
    /// the gateway at once.
    pub fn device_remove_by(
        &self,
        device_id: &str,
        by: &Authority,
        via: &str,
    ) -> ServiceResult<PairedDeviceView> {
        let d = self.check(self.devices.remove(device_id.trim(), by).map_err(dev_err))?;
        let ttl = self.settings().device_pending_ttl_ms();
        let requests = self.check(
            self.devices
                .forget_requests(&d.device_id, ttl)
                .map_err(dev_err),
        )?;
        let codes = self.check(
            self.devices
                .bootstrap_revoke_for_device(&d.device_id)
                .map_err(dev_err),
        )?;
        self.audit(
            "device.removed",
            via,
            obj(&[
                ("deviceId", d.device_id.clone().into()),
                ("fingerprint", d.fingerprint.clone().into()),
                ("requestsDropped", requests.len().into()),
                ("setupCodesRevoked", codes.into()),
            ]),
        );
        for r in requests {
            self.events.publish(Event::DevicePairResolved {
                request_id: r.request_id,
                device_id: r.device_id,
                decision: Resolution::Rejected,
                ts: self.now_ms(),
            });
        }
        self.device_changed(&d.device_id, DeviceChange::Removed, None);
        Ok(PairedDeviceView::from(&d))
    }

    /// Gives a paired device the owner's name for it (at most 64 characters, sanitised), when
    /// `by` may act on it.
    pub fn device_rename(
        &self,
        device_id: &str,
        label: &str,
        by: &Authority,
        via: &str,
    ) -> ServiceResult<String> {
        let label = sanitize(label);
        if label.is_empty() {
            return Err(ServiceError::Invalid(
                "a device's name must have 1-64 visible characters".into(),
            ));
        }
        let d = self.check(
            self.devices
                .rename(device_id.trim(), &label, by)
                .map_err(dev_err),
        )?;
        self.audit(
            "device.renamed",
            via,
            obj(&[
                ("deviceId", d.device_id.clone().into()),
                ("label", label.clone().into()),
            ]),
        );
        self.events.publish(Event::DevicePairChanged {
            device_id: d.device_id.clone(),
            ts: self.now_ms(),
        });
        Ok(label)
    }

    /// Removes every paired device (and with `pending`, rejects every pending request).
    pub fn device_clear(&self, pending: bool, via: &str) -> ServiceResult<(usize, usize)> {
        let ttl = self.settings().device_pending_ttl_ms();
        let (removed, rejected) = self.check(self.devices.clear(pending, ttl).map_err(dev_err))?;
        for d in &removed {
            self.device_changed(&d.device_id, DeviceChange::Removed, None);
        }
        for r in &rejected {
            self.events.publish(Event::DevicePairResolved {
                request_id: r.request_id.clone(),
                device_id: r.device_id.clone(),
                decision: Resolution::Rejected,
                ts: self.now_ms(),
            });
        }
        self.audit(
            "device.cleared",
            via,
            obj(&[
                ("removed", removed.len().into()),
                ("rejected", rejected.len().into()),
            ]),
        );
        Ok((removed.len(), rejected.len()))
    }

    /// A new token for a device's role (the old one stops working and its sockets close),
    /// when `by` may act on that role of the device: the token text is returned once, to
    /// `by`, and stored only as a hash.
    pub fn token_rotate(
        &self,
        device_id: &str,
        role: &str,
        by: &Authority,
        via: &str,
    ) -> ServiceResult<(String, Millis, Vec<String>)> {
        check_role(role)?;
        let (tok, rec) = self.check(
            self.devices
                .issue_token(device_id.trim(), role, by, &mut rand::rngs::OsRng)
                .map_err(dev_err),
        )?;
        let at = rec.rotated_at_ms.unwrap_or(rec.created_at_ms);
        self.audit(
            "device.token.rotated",
            via,
            obj(&[("deviceId", device_id.trim().into()), ("role", role.into())]),
        );
        self.device_changed(device_id.trim(), DeviceChange::Rotated, Some(role));
        Ok((tok, at, rec.scopes))
    }

    /// The first token of an approved role, minted when the device connects (the only moment
    /// it can be handed over, since only its hash is kept).
    pub fn token_issue_on_connect(
        &self,
        device_id: &str,
        role: &str,
    ) -> ServiceResult<(String, Millis)> {
        self.token_issue_redeeming(device_id, role, None)
    }

    /// [`Service::token_issue_on_connect`] for a device that came back with its setup code:
    /// the code is consumed with the same write, or nothing is minted.
    pub fn token_issue_redeeming(
        &self,
        device_id: &str,
        role: &str,
        bootstrap_hash: Option<&str>,
    ) -> ServiceResult<(String, Millis)> {
        let (tok, rec) = self.check(
            self.devices
                .issue_token_on_connect(device_id, role, bootstrap_hash, &mut rand::rngs::OsRng)
                .map_err(dev_err),
        )?;
        self.audit(
            "device.token.issued",
            "gateway",
            obj(&[("deviceId", device_id.into()), ("role", role.into())]),
        );
        Ok((tok, rec.rotated_at_ms.unwrap_or(rec.created_at_ms)))
    }

    /// Revokes a device's token for a role, when `by` may act on it.
    pub fn token_revoke(
        &self,
        device_id: &str,
        role: &str,
        by: &Authority,
        via: &str,
    ) -> ServiceResult<Millis> {
        check_role(role)?;
        let at = self.check(
            self.devices
                .revoke(device_id.trim(), role, by)
                .map_err(dev_err),
        )?;
        self.audit(
            "device.token.revoked",
            via,
            obj(&[("deviceId", device_id.trim().into()), ("role", role.into())]),
        );
        self.device_changed(device_id.trim(), DeviceChange::Revoked, Some(role));
        Ok(at)
    }
}
