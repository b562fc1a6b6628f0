//! Setup codes (the URL they carry, the certificate they pin, their bootstrap tokens) and the
//! gateway's admin token.

use serde_json::Map;

use super::*;

impl Service {
    /// The URL a setup code should carry: explicit, else `gateway.publicUrl`, else derived
    /// from where the gateway listens (refused for loopback-only, with advice).
    pub fn setup_url(
        &self,
        explicit: Option<&str>,
        listening: Option<SocketAddr>,
    ) -> ServiceResult<String> {
        let settings = self.settings();
        let invalid = |e: setup_codes::UrlError| ServiceError::Invalid(e.to_string());
        if let Some(u) = explicit.filter(|u| !u.trim().is_empty()) {
            return setup_codes::check_url(u).map_err(invalid);
        }
        if let Some(u) = settings
            .gateway
            .public_url
            .as_deref()
            .filter(|u| !u.trim().is_empty())
        {
            return setup_codes::check_url(u).map_err(invalid);
        }
        let (bind, port) = match listening {
            Some(a) => (a.ip().to_string(), a.port()),
            None => (settings.gateway.bind.clone(), settings.gateway.port),
        };
        let tls = settings.gateway.tls_on().is_some();
        setup_codes::url_from_bind(&bind, port, &lan_addresses(), tls).map_err(invalid)
    }

    /// The certificate pin a setup code for `url` carries: with `gateway.tls` on, for a
    /// `wss://` URL on the gateway's own port (where it is this gateway that answers). A URL on
    /// another port is a proxy or a tunnel in front, with a certificate of its own: no pin.
    pub fn setup_pin(
        &self,
        url: &str,
        listening: Option<SocketAddr>,
    ) -> ServiceResult<Option<String>> {
        let settings = self.settings();
        let Some(tls) = settings.gateway.tls_on() else {
            return Ok(None);
        };
        let Ok(u) = url::Url::parse(url) else {
            return Ok(None);
        };
        let port = listening.map(|a| a.port()).unwrap_or(settings.gateway.port);
        if u.scheme() != "wss" || u.port_or_known_default() != Some(port) {
            return Ok(None);
        }
        crate::tls::server::certificate_fingerprint(tls, &self.paths)
            .map(Some)
            .map_err(|e| ServiceError::Invalid(e.to_string()))
    }

    /// Issues a setup code: a single-use bootstrap token, valid `devices.setupCodeTtlMinutes`.
    /// With `retire_previous` (the window's "New code", `/pair`), the live codes made earlier
    /// from the same place are revoked, bound to a device or not, unless a device approved
    /// with one is still to redeem it.
    pub fn setup_create(
        &self,
        explicit_url: Option<&str>,
        listening: Option<SocketAddr>,
        via: &str,
        retire_previous: bool,
    ) -> ServiceResult<SetupCode> {
        let url = self.setup_url(explicit_url, listening)?;
        let tls_fingerprint = self.setup_pin(&url, listening)?;
        let ttl = self.settings().setup_code_ttl_ms();
        let (tok, rec, retired) = self.check(
            self.devices
                .bootstrap_create(&url, ttl, via, retire_previous, &mut rand::rngs::OsRng)
                .map_err(dev_err),
        )?;
        let payload = SetupPayload {
            url: url.clone(),
            bootstrap_token: tok,
            expires_at_ms: Some(rec.expires_at_ms),
            tls_fingerprint,
        };
        self.audit(
            "setup.created",
            via,
            obj(&[
                ("url", url.clone().into()),
                ("expiresAtMs", rec.expires_at_ms.into()),
                ("retired", retired.into()),
            ]),
        );
        self.events.publish(Event::SetupChanged {
            change: SetupChange::Created,
            expires_at_ms: Some(rec.expires_at_ms),
        });
        Ok(SetupCode {
            setup_code: setup_codes::encode_setup_code(&payload),
            url,
            expires_at_ms: rec.expires_at_ms,
        })
    }

    /// Replaces the gateway's admin token. The old one is refused from the next connect on;
    /// the gateway closes the sessions that used it (on the event published here).
    pub fn admin_token_rotate(&self, via: &str) -> ServiceResult<Millis> {
        let token = crate::pairing::token::new_token(&mut rand::rngs::OsRng);
        self.update_settings(via, |s| {
            s.gateway.auth.token = token;
            Ok(())
        })?;
        let now = self.now_ms();
        self.audit("gateway.token.rotated", via, Map::new());
        self.events.publish(Event::GatewayTokenRotated { ts: now });
        Ok(now)
    }

    /// Revokes every setup code not used up yet, bound to a device or not.
    pub fn setup_cleanup(&self, via: &str) -> ServiceResult<usize> {
        let n = self.check(self.devices.bootstrap_cleanup().map_err(dev_err))?;
        self.audit("setup.cleanup", via, obj(&[("removed", n.into())]));
        self.events.publish(Event::SetupChanged {
            change: SetupChange::Cleanup,
            expires_at_ms: None,
        });
        Ok(n)
    }
}

/// What would keep a phone from reaching `url` with a setup code, said before it is scanned:
/// an IP address that is not one of this computer's, a loopback address (the phone's own, from
/// the phone), a port other than the one the gateway listens on. Host names (a tunnel, a
/// proxy) are not second-guessed.
pub fn setup_warnings(url: &str, listening: Option<SocketAddr>) -> Vec<String> {
    let Ok(u) = url::Url::parse(url) else {
        return vec![];
    };
    let ip = match u.host() {
        Some(url::Host::Ipv4(a)) => std::net::IpAddr::V4(a),
        Some(url::Host::Ipv6(a)) => std::net::IpAddr::V6(a),
        _ => return vec![],
    };
    let mut out = Vec::new();
    let ours = lan_addresses();
    if ip.is_loopback() {
        out.push(format!(
            "{ip} is this computer only: on a phone it means the phone itself, so the code cannot reach this gateway; listen on your local network or give a public URL"
        ));
    } else if !ip.is_unspecified() && !ours.contains(&ip) {
        let have: Vec<String> = ours.iter().map(ToString::to_string).collect();
        out.push(format!(
            "{ip} is not an address of this computer (its addresses: {}): a phone would look for the gateway on another machine",
            if have.is_empty() { "none but loopback".to_string() } else { have.join(", ") }
        ));
        return out;
    }
    if let (Some(at), Some(port)) = (listening, u.port_or_known_default()) {
        if port != at.port() {
            out.push(format!(
                "the gateway listens on port {}, not {port}: nothing here answers the code's URL",
                at.port()
            ));
        }
    }
    out
}
