//! Setup codes (what the QR carries) and bootstrap tokens, pure: encoding and lenient decoding,
//! which URLs may go in a code, and the single-use, device-bound token rules.

use std::collections::BTreeMap;
use std::net::IpAddr;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::clock::Millis;

/// The longest setup code a decoder looks at.
pub const MAX_SETUP_CODE_CHARS: usize = 4096;

/// The JSON inside a setup code. Its `Debug` hides the bootstrap token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetupPayload {
    pub url: String,
    pub bootstrap_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<Millis>,
    /// SHA-256 of the certificate a `wss://` gateway serves (lowercase hex, OpenClaw's form):
    /// the device pins it instead of asking a certificate authority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_fingerprint: Option<String>,
}

impl std::fmt::Debug for SetupPayload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetupPayload")
            .field("url", &self.url)
            .field("bootstrap_token", &"<hidden>")
            .field("expires_at_ms", &self.expires_at_ms)
            .field("tls_fingerprint", &self.tls_fingerprint)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetupCodeError {
    #[error("the setup code is empty")]
    Empty,
    #[error("the setup code is longer than {MAX_SETUP_CODE_CHARS} characters")]
    TooLong,
    #[error("the setup code is neither base64 nor JSON")]
    NotBase64,
    #[error("the setup code does not hold the expected JSON ({0})")]
    BadJson(String),
    #[error("the setup code has no bootstrap token")]
    NoToken,
    #[error("the setup code's tlsFingerprint is not a SHA-256 certificate fingerprint")]
    BadFingerprint,
    #[error("{0}")]
    Url(#[from] UrlError),
}

/// base64url (no padding) of the payload's JSON.
pub fn encode_setup_code(p: &SetupPayload) -> String {
    let json = serde_json::to_vec(p).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(json)
}

/// Decodes base64url (with or without padding), standard base64, or raw JSON; checks the URL.
pub fn decode_setup_code(code: &str) -> Result<SetupPayload, SetupCodeError> {
    let code = code.trim();
    if code.is_empty() {
        return Err(SetupCodeError::Empty);
    }
    if code.len() > MAX_SETUP_CODE_CHARS {
        return Err(SetupCodeError::TooLong);
    }
    let json: Vec<u8> = if code.starts_with('{') {
        code.as_bytes().to_vec()
    } else {
        [&URL_SAFE_NO_PAD, &URL_SAFE, &STANDARD, &STANDARD_NO_PAD]
            .iter()
            .find_map(|e| e.decode(code).ok())
            .ok_or(SetupCodeError::NotBase64)?
    };
    // Only a JSON object: serde would also read a struct from an array, by position.
    let value: serde_json::Value =
        serde_json::from_slice(&json).map_err(|e| SetupCodeError::BadJson(e.to_string()))?;
    if !value.is_object() {
        return Err(SetupCodeError::BadJson("expected a JSON object".into()));
    }
    let mut p: SetupPayload =
        serde_json::from_value(value).map_err(|e| SetupCodeError::BadJson(e.to_string()))?;
    if p.bootstrap_token.trim().is_empty() {
        return Err(SetupCodeError::NoToken);
    }
    if let Some(f) = &p.tls_fingerprint {
        p.tls_fingerprint =
            Some(super::pin::normalize_fingerprint(f).ok_or(SetupCodeError::BadFingerprint)?);
    }
    check_url(&p.url)?;
    Ok(p)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("{0:?} is not a URL")]
    NotAUrl(String),
    #[error("{0:?} must start with ws:// or wss://")]
    Scheme(String),
    #[error("{0:?} is unencrypted ({1}) to a host outside the local network: a phone would send its setup code in clear; use wss:// (TLS) for public or tailnet hosts")]
    InsecureRemote(String, &'static str),
    #[error(
        "the gateway listens on {bind} only, which a phone cannot reach. Bind it to your LAN \
         (`clawpair gateway --bind 0.0.0.0`, or gateway.bind in clawpair.json), set gateway.publicUrl, \
         or pass --url ws://<this computer's LAN address>:{port}/"
    )]
    LoopbackOnly { bind: String, port: u16 },
    #[error("the gateway is bound to {bind}, but this computer has no LAN address to put in a setup code; set gateway.publicUrl or pass --url")]
    NoLanAddress { bind: String },
}

fn ip_is_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_loopback() || (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
        }
    }
}

/// A URL may go in a setup code when it is `wss://`, or `ws://` to a loopback, private-LAN,
/// link-local or `.local` host. `http(s)` is accepted and mapped to `ws(s)`.
pub fn check_url(url: &str) -> Result<String, UrlError> {
    let parsed = url::Url::parse(url.trim()).map_err(|_| UrlError::NotAUrl(url.to_string()))?;
    let typed = match parsed.scheme() {
        "http" => "http://",
        _ => "ws://",
    };
    let scheme = match parsed.scheme() {
        "ws" | "http" => "ws",
        "wss" | "https" => "wss",
        _ => return Err(UrlError::Scheme(url.to_string())),
    };
    let host = parsed
        .host()
        .ok_or_else(|| UrlError::NotAUrl(url.to_string()))?;
    if scheme == "ws" {
        let local = match host {
            url::Host::Ipv4(ip) => ip_is_local(IpAddr::V4(ip)),
            url::Host::Ipv6(ip) => ip_is_local(IpAddr::V6(ip)),
            url::Host::Domain(d) => {
                let d = d.trim_end_matches('.').to_ascii_lowercase();
                d == "localhost" || d.ends_with(".local")
            }
        };
        if !local {
            return Err(UrlError::InsecureRemote(url.to_string(), typed));
        }
    }
    let mut out = parsed.clone();
    if out.scheme() != scheme {
        let rest = &parsed.as_str()[parsed.scheme().len()..];
        out = url::Url::parse(&format!("{scheme}{rest}"))
            .map_err(|_| UrlError::NotAUrl(url.to_string()))?;
    }
    Ok(canonical(&out))
}

/// A URL as OpenClaw's setup-code decoder requires it: no trailing `/` for the root path
/// (`ws://host:port`, not `ws://host:port/`). Both forms are accepted when decoding.
fn canonical(u: &url::Url) -> String {
    let s = u.to_string();
    if u.path() == "/" && u.query().is_none() && u.fragment().is_none() {
        s.trim_end_matches('/').to_string()
    } else {
        s
    }
}

/// The URL derived from where the gateway listens: a specific LAN address is used as is; an
/// unspecified bind (`0.0.0.0`, `::`) uses the first private LAN address of this computer;
/// loopback is refused with advice. `wss://` when the gateway serves TLS itself.
pub fn url_from_bind(
    bind: &str,
    port: u16,
    lan_addrs: &[IpAddr],
    tls: bool,
) -> Result<String, UrlError> {
    let ip = crate::net::bind_ip(bind).ok_or_else(|| UrlError::NotAUrl(bind.to_string()))?;
    let host = if ip.is_loopback() {
        return Err(UrlError::LoopbackOnly {
            bind: bind.to_string(),
            port,
        });
    } else if ip.is_unspecified() {
        let pick = lan_addrs
            .iter()
            .find(|a| matches!(a, IpAddr::V4(v) if v.is_private()))
            .or_else(|| lan_addrs.iter().find(|a| a.is_ipv4() && !a.is_loopback()))
            .ok_or_else(|| UrlError::NoLanAddress {
                bind: bind.to_string(),
            })?;
        *pick
    } else {
        ip
    };
    let scheme = if tls { "wss" } else { "ws" };
    let url = match host {
        IpAddr::V4(v4) => format!("{scheme}://{v4}:{port}/"),
        IpAddr::V6(v6) => format!("{scheme}://[{v6}]:{port}/"),
    };
    check_url(&url)
}

/// A setup-code token as stored in `devices/bootstrap.json` (tokenHash → record): the hash
/// only, never the token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BootstrapRecord {
    pub token_hash: String,
    pub created_at_ms: Millis,
    pub expires_at_ms: Millis,
    #[serde(default)]
    pub url: String,
    /// The first device that used the token; no other device may.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound_at_ms: Option<Millis>,
    /// When the bound device was approved: it may redeem until `approvedAtMs + ttl`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_at_ms: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumed_at_ms: Option<Millis>,
    /// Revoked by the owner (a rejected request, "invalidate codes", a newer code from the
    /// same place): refused from then on, bound or not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at_ms: Option<Millis>,
    /// Where it was made (`window`, `telegram`, `cli`, …): a newer code from the same place
    /// retires it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub issued_via: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

pub type BootstrapMap = BTreeMap<String, BootstrapRecord>;

/// Why a bootstrap token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BootstrapRefusal {
    #[error("unknown setup code")]
    Unknown,
    #[error("this setup code was already used")]
    Consumed,
    #[error("this setup code has expired")]
    Expired,
    #[error("this setup code belongs to another device")]
    BoundToOther,
    #[error("this setup code was revoked by the owner")]
    Revoked,
}

impl BootstrapRecord {
    /// Whether `device_id` may use this token now. Does not bind; see [`BootstrapRecord::bind`].
    pub fn check(
        &self,
        device_id: &str,
        now: Millis,
        ttl_ms: Millis,
    ) -> Result<(), BootstrapRefusal> {
        if self.revoked_at_ms.is_some() {
            return Err(BootstrapRefusal::Revoked);
        }
        if self.consumed_at_ms.is_some() {
            return Err(BootstrapRefusal::Consumed);
        }
        if let Some(bound) = &self.device_id {
            if bound != device_id {
                return Err(BootstrapRefusal::BoundToOther);
            }
        }
        let deadline = match self.approved_at_ms {
            Some(a) => a.saturating_add(ttl_ms).max(self.expires_at_ms),
            None => self.expires_at_ms,
        };
        if now >= deadline {
            return Err(BootstrapRefusal::Expired);
        }
        Ok(())
    }

    pub fn bind(&mut self, device_id: &str, public_key: &str, now: Millis) {
        if self.device_id.is_none() {
            self.device_id = Some(device_id.to_string());
            self.public_key = Some(public_key.to_string());
            self.bound_at_ms = Some(now);
        }
    }

    /// Neither used up nor revoked: what "invalidate codes" and `/pair cleanup` revoke, bound
    /// to a device or not.
    pub fn is_live(&self) -> bool {
        self.consumed_at_ms.is_none() && self.revoked_at_ms.is_none()
    }

    /// Revokes the code (once; the first time is kept). Returns whether it was live.
    pub fn revoke(&mut self, now: Millis) -> bool {
        let live = self.is_live();
        if live {
            self.revoked_at_ms = Some(now);
        }
        live
    }
}

/// Finds the record for a presented token: the one filed under the token's hash, whose own
/// `tokenHash` matches it (compared in constant time). Every write finds a record by that key,
/// so a record filed under another key (a file edited by hand, or by another program) is never
/// the one a connect is checked against; otherwise a stale copy of a code under a stray key
/// could answer for the live one.
pub fn find_bootstrap<'a>(map: &'a BootstrapMap, presented: &str) -> Option<&'a BootstrapRecord> {
    if presented.is_empty() {
        return None;
    }
    let rec = map.get(&crate::pairing::token::hash_token(presented))?;
    crate::pairing::token::token_matches(presented, &rec.token_hash).then_some(rec)
}

/// Drops records that can never be used again (consumed or expired, kept a day for the log).
pub fn prune_bootstrap(map: &mut BootstrapMap, now: Millis, ttl_ms: Millis) {
    const KEEP_MS: Millis = 24 * 3_600_000;
    map.retain(|_, r| {
        let end = r
            .consumed_at_ms
            .or(r.revoked_at_ms)
            .unwrap_or_else(|| match r.approved_at_ms {
                Some(a) => a.saturating_add(ttl_ms).max(r.expires_at_ms),
                None => r.expires_at_ms,
            });
        now < end.saturating_add(KEEP_MS)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload() -> SetupPayload {
        SetupPayload {
            url: "ws://192.168.1.20:18789/".into(),
            bootstrap_token: "t".repeat(43),
            expires_at_ms: Some(1_000),
            tls_fingerprint: None,
        }
    }

    #[test]
    fn setup_code_round_trips_and_decoders_are_lenient() {
        let p = payload();
        let code = encode_setup_code(&p);
        assert!(!code.contains('=') && !code.contains('+') && !code.contains('/'));
        assert_eq!(decode_setup_code(&code).unwrap(), p);
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(
            decode_setup_code(&STANDARD.encode(&json)).unwrap(),
            p,
            "padded standard base64"
        );
        assert_eq!(
            decode_setup_code(&format!("  {json} ")).unwrap(),
            p,
            "raw JSON"
        );
    }

    #[test]
    fn a_tls_fingerprint_travels_in_the_code_in_openclaws_form() {
        let hex = "0a".repeat(32);
        let p = SetupPayload {
            url: "wss://192.168.1.20:18789".into(),
            tls_fingerprint: Some(hex.clone()),
            ..payload()
        };
        let code = encode_setup_code(&p);
        let json: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&code).unwrap()).unwrap();
        assert_eq!(json["tlsFingerprint"], hex.as_str());
        assert_eq!(decode_setup_code(&code).unwrap(), p);
        // Colons, upper case and a `sha256:` prefix are read as the same fingerprint.
        let colons = vec!["0A"; 32].join(":");
        let other = format!(
            r#"{{"url":"wss://h:1","bootstrapToken":"t","tlsFingerprint":"sha256:{colons}"}}"#
        );
        assert_eq!(
            decode_setup_code(&other).unwrap().tls_fingerprint,
            Some(hex)
        );
        let bad = r#"{"url":"wss://h:1","bootstrapToken":"t","tlsFingerprint":"abc"}"#;
        assert_eq!(decode_setup_code(bad), Err(SetupCodeError::BadFingerprint));
        assert_eq!(
            url_from_bind("10.0.0.5", 9, &[], true).unwrap(),
            "wss://10.0.0.5:9",
            "with TLS on the derived URL is wss://"
        );
    }

    #[test]
    fn bad_setup_codes_are_refused_with_reasons() {
        assert_eq!(decode_setup_code(""), Err(SetupCodeError::Empty));
        assert_eq!(decode_setup_code("%%%"), Err(SetupCodeError::NotBase64));
        assert!(matches!(
            decode_setup_code(&URL_SAFE_NO_PAD.encode("[1]")),
            Err(SetupCodeError::BadJson(_))
        ));
        assert_eq!(
            decode_setup_code(&"A".repeat(5000)),
            Err(SetupCodeError::TooLong)
        );
        let as_array = URL_SAFE_NO_PAD.encode(r#"["ws://127.0.0.1:1/","token"]"#);
        assert!(
            matches!(
                decode_setup_code(&as_array),
                Err(SetupCodeError::BadJson(_))
            ),
            "an array is not a setup code"
        );
        let no_token = r#"{"url":"ws://127.0.0.1:1/","bootstrapToken":" "}"#;
        assert_eq!(decode_setup_code(no_token), Err(SetupCodeError::NoToken));
        let public = r#"{"url":"ws://example.com/","bootstrapToken":"x"}"#;
        assert!(matches!(
            decode_setup_code(public),
            Err(SetupCodeError::Url(UrlError::InsecureRemote(..)))
        ));
    }

    #[test]
    fn plain_ws_only_for_local_hosts() {
        for ok in [
            "ws://127.0.0.1:1/",
            "ws://10.1.2.3/",
            "ws://172.16.0.1/",
            "ws://192.168.0.2:9/",
            "ws://169.254.1.1/",
            "ws://[fe80::1]/",
            "ws://[fd00::1]/",
            "ws://[::1]/",
            "ws://myhost.local:18789/",
            "wss://example.com/",
            "https://example.com/",
        ] {
            assert!(check_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ws://8.8.8.8/",
            "ws://100.64.0.1/",
            "ws://example.com/",
            "ftp://x/",
            "nonsense",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
        assert_eq!(
            check_url("https://example.com/gw").unwrap(),
            "wss://example.com/gw"
        );
    }

    #[test]
    fn urls_in_codes_are_in_openclaw_canonical_form() {
        // OpenClaw's decoder refuses `ws://host:port/` for the root path.
        for (given, canonical) in [
            ("ws://192.168.1.20:18789/", "ws://192.168.1.20:18789"),
            ("ws://192.168.1.20:18789", "ws://192.168.1.20:18789"),
            ("WS://MyHost.Local:18789/", "ws://myhost.local:18789"),
            ("https://example.com/", "wss://example.com"),
            ("wss://example.com/gw/", "wss://example.com/gw/"),
            ("wss://example.com/?a=1", "wss://example.com/?a=1"),
            ("ws://[fd00::1]:9/", "ws://[fd00::1]:9"),
        ] {
            assert_eq!(check_url(given).unwrap(), canonical, "{given}");
        }
        // Codes made by older versions (with the slash) still decode.
        let old = encode_setup_code(&SetupPayload {
            url: "ws://192.168.1.20:18789/".into(),
            bootstrap_token: "t".into(),
            expires_at_ms: Some(1),
            tls_fingerprint: None,
        });
        assert_eq!(
            decode_setup_code(&old).unwrap().url,
            "ws://192.168.1.20:18789/"
        );
    }

    #[test]
    fn loopback_bind_is_refused_with_advice_and_lan_bind_is_used() {
        let err = url_from_bind("127.0.0.1", 18789, &[], false).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("--bind 0.0.0.0") && msg.contains("publicUrl") && msg.contains("--url"),
            "{msg}"
        );
        let lan: IpAddr = "192.168.1.7".parse().unwrap();
        assert_eq!(
            url_from_bind("0.0.0.0", 18789, &[lan], false).unwrap(),
            "ws://192.168.1.7:18789"
        );
        assert_eq!(
            url_from_bind("10.0.0.5", 1, &[], false).unwrap(),
            "ws://10.0.0.5:1"
        );
        assert!(matches!(
            url_from_bind("0.0.0.0", 1, &[], false),
            Err(UrlError::NoLanAddress { .. })
        ));
    }

    fn record() -> BootstrapRecord {
        BootstrapRecord {
            token_hash: crate::pairing::token::hash_token("tok"),
            created_at_ms: 0,
            expires_at_ms: 600_000,
            url: String::new(),
            device_id: None,
            public_key: None,
            bound_at_ms: None,
            approved_at_ms: None,
            consumed_at_ms: None,
            revoked_at_ms: None,
            issued_via: String::new(),
            extra: Map::new(),
        }
    }

    #[test]
    fn bootstrap_token_is_bound_to_the_first_device_and_single_use() {
        let mut r = record();
        assert_eq!(r.check("dev-a", 1, 600_000), Ok(()));
        r.bind("dev-a", "pk-a", 1);
        r.bind("dev-b", "pk-b", 2);
        assert_eq!(r.device_id.as_deref(), Some("dev-a"));
        assert_eq!(
            r.check("dev-b", 2, 600_000),
            Err(BootstrapRefusal::BoundToOther)
        );
        assert_eq!(
            r.check("dev-a", 600_000, 600_000),
            Err(BootstrapRefusal::Expired)
        );
        r.approved_at_ms = Some(500_000);
        assert_eq!(
            r.check("dev-a", 1_000_000, 600_000),
            Ok(()),
            "redeemable 10 minutes after approval"
        );
        assert_eq!(
            r.check("dev-a", 1_100_000, 600_000),
            Err(BootstrapRefusal::Expired)
        );
        r.consumed_at_ms = Some(3);
        assert_eq!(
            r.check("dev-a", 4, 600_000),
            Err(BootstrapRefusal::Consumed)
        );
    }

    #[test]
    fn stored_bootstrap_is_found_only_by_its_token() {
        let mut m = BootstrapMap::new();
        let r = record();
        m.insert(r.token_hash.clone(), r);
        assert!(find_bootstrap(&m, "tok").is_some());
        assert!(find_bootstrap(&m, "tok2").is_none());
        assert!(find_bootstrap(&m, "").is_none());
    }

    #[test]
    fn a_copy_of_a_code_under_a_stray_key_never_answers_for_it() {
        // As the fuzzer left devices/bootstrap.json: the live code under its hash, and an
        // expired copy of it under a key that is not its hash.
        let mut m = BootstrapMap::new();
        let live = record();
        let mut stale = record();
        stale.expires_at_ms = 0;
        m.insert(format!("{}/96", live.token_hash), stale.clone());
        m.insert("~after-it".into(), stale);
        assert!(find_bootstrap(&m, "tok").is_none(), "only strays: unknown");
        m.insert(live.token_hash.clone(), live.clone());
        assert_eq!(find_bootstrap(&m, "tok"), Some(&live));
    }
}
