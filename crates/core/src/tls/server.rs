//! The gateway's own TLS (`gateway.tls`), so a phone can use `wss://` without a proxy: a
//! certificate from files, or a self-signed one generated once and kept in the state directory
//! (`tls/cert.pem`, `tls/key.pem`, `0600` in a `0700` directory), served with rustls. Its
//! SHA-256 goes into setup codes as `tlsFingerprint`, which the phone pins.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsSettings;
use crate::store::fs::{ensure_dir, read_bytes, write_atomic, FileLock, StoreError};
use crate::store::StatePaths;

/// The self-signed certificate and its key, in the state directory's `tls/`.
pub const CERT_FILE: &str = "cert.pem";
pub const KEY_FILE: &str = "key.pem";

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {}: {reason}", path.display())]
    Read { path: PathBuf, reason: String },
    #[error("{} holds no PEM certificate", path.display())]
    NoCertificate { path: PathBuf },
    #[error("{} holds no usable PEM private key ({reason})", path.display())]
    BadKey { path: PathBuf, reason: String },
    #[error("{} exists without {}; remove it to have a new pair generated", present.display(), missing.display())]
    HalfPair { present: PathBuf, missing: PathBuf },
    #[error("cannot generate the gateway's self-signed certificate: {0}")]
    Generate(String),
    #[error("the certificate {} and key {} cannot be served: {reason}", cert.display(), key.display())]
    Config {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the gateway serves TLS with.
#[derive(Clone)]
pub struct ServerTls {
    pub acceptor: tokio_rustls::TlsAcceptor,
    /// SHA-256 of the leaf certificate ([`crate::tls::fingerprint`]).
    pub fingerprint: String,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("fingerprint", &self.fingerprint)
            .finish()
    }
}

/// The certificate and key files: the configured ones (a relative path is taken from the
/// state directory), or the state directory's own self-signed pair.
pub fn files(tls: &TlsSettings, paths: &StatePaths) -> (PathBuf, PathBuf) {
    let at = |p: &str| {
        let p = Path::new(p.trim());
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            paths.root().join(p)
        }
    };
    match (&tls.cert_path, &tls.key_path) {
        (Some(c), Some(k)) if !tls.self_signed => (at(c), at(k)),
        _ => (
            paths.tls_dir().join(CERT_FILE),
            paths.tls_dir().join(KEY_FILE),
        ),
    }
}

/// The names a self-signed certificate is issued for: `localhost`, this computer's host name,
/// and its addresses. Clients that pin the certificate do not look at them; they help tools
/// that show a certificate.
fn self_signed_names() -> Vec<String> {
    let mut names = vec!["localhost".to_string()];
    if let Some(h) = host_name() {
        names.push(h);
    }
    names.push("127.0.0.1".into());
    names.push("::1".into());
    for ip in crate::net::lan_addresses() {
        let s = ip.to_string();
        if !names.contains(&s) {
            names.push(s);
        }
    }
    names
}

fn host_name() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `len` bytes into the buffer we own.
    let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if r != 0 {
        return None;
    }
    let end = buf.iter().position(|b| *b == 0)?;
    let h = std::str::from_utf8(&buf[..end]).ok()?.to_ascii_lowercase();
    let ok = !h.is_empty()
        && h != "localhost"
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    ok.then_some(h)
}

/// Generates the self-signed pair unless it exists (once, under the certificate's lock, so two
/// processes starting together agree on one certificate).
pub fn ensure_self_signed(paths: &StatePaths) -> Result<(), TlsError> {
    let dir = paths.tls_dir();
    ensure_dir(&dir)?;
    let (cert, key) = (dir.join(CERT_FILE), dir.join(KEY_FILE));
    let _lock = FileLock::acquire(&cert)?;
    match (cert.exists(), key.exists()) {
        (true, true) => return Ok(()),
        (true, false) => {
            return Err(TlsError::HalfPair {
                present: cert,
                missing: key,
            })
        }
        (false, true) => {
            return Err(TlsError::HalfPair {
                present: key,
                missing: cert,
            })
        }
        (false, false) => {}
    }
    let gen = |e: rcgen::Error| TlsError::Generate(e.to_string());
    let pair = rcgen::KeyPair::generate().map_err(gen)?;
    let mut params = rcgen::CertificateParams::new(self_signed_names()).map_err(gen)?;
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, "ClawPair gateway");
    params.distinguished_name = dn;
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    use chrono::Datelike;
    let today = chrono::Utc::now().date_naive();
    params.not_before = rcgen::date_time_ymd(today.year(), today.month() as u8, 1);
    params.not_after = rcgen::date_time_ymd(today.year() + 20, 1, 1);
    let made = params.self_signed(&pair).map_err(gen)?;
    // The key first: a certificate without its key would be useless.
    write_atomic(&key, pair.serialize_pem().as_bytes())?;
    write_atomic(&cert, made.pem().as_bytes())?;
    tracing::info!(
        "generated the gateway's self-signed certificate in {} (SHA-256 {})",
        dir.display(),
        crate::tls::fingerprint(made.der())
    );
    Ok(())
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    match read_bytes(path) {
        Ok(Some(b)) => Ok(b),
        Ok(None) => Err(TlsError::Read {
            path: path.to_path_buf(),
            reason: "no such file".into(),
        }),
        Err(e) => Err(TlsError::Read {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }),
    }
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Read {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// The certificates to serve (generating the self-signed pair if it is asked for and missing).
fn chain(tls: &TlsSettings, paths: &StatePaths) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    if tls.self_signed {
        ensure_self_signed(paths)?;
    }
    certificates(&files(tls, paths).0)
}

/// The fingerprint of the certificate the gateway serves with these settings.
pub fn certificate_fingerprint(tls: &TlsSettings, paths: &StatePaths) -> Result<String, TlsError> {
    Ok(crate::tls::fingerprint(chain(tls, paths)?[0].as_ref()))
}

/// Loads (or first generates) the certificate and key, ready to accept connections.
pub fn load(tls: &TlsSettings, paths: &StatePaths) -> Result<ServerTls, TlsError> {
    let certs = chain(tls, paths)?;
    let (cert_path, key_path) = files(tls, paths);
    let key = PrivateKeyDer::from_pem_slice(&read(&key_path)?).map_err(|e| TlsError::BadKey {
        path: key_path.clone(),
        reason: e.to_string(),
    })?;
    let fingerprint = crate::tls::fingerprint(certs[0].as_ref());
    let config = rustls::ServerConfig::builder_with_provider(crate::tls::provider())
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| TlsError::Config {
            cert: cert_path,
            key: key_path,
            reason: e.to_string(),
        })?;
    Ok(ServerTls {
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        fingerprint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::fs::mode_of;

    #[test]
    fn a_self_signed_pair_is_generated_once_private_and_reused() {
        let tmp = tempfile::tempdir().unwrap();
        let paths = StatePaths::new(tmp.path().join("state"));
        let tls = TlsSettings {
            self_signed: true,
            ..Default::default()
        };
        let first = load(&tls, &paths).unwrap().fingerprint;
        assert_eq!(first.len(), 64);
        let dir = paths.tls_dir();
        assert_eq!(mode_of(&dir).unwrap(), 0o700);
        assert_eq!(mode_of(&dir.join(CERT_FILE)).unwrap(), 0o600);
        assert_eq!(mode_of(&dir.join(KEY_FILE)).unwrap(), 0o600);
        assert_eq!(
            load(&tls, &paths).unwrap().fingerprint,
            first,
            "kept, not regenerated"
        );
        assert_eq!(certificate_fingerprint(&tls, &paths).unwrap(), first);
        // Half a pair is not silently replaced.
        std::fs::remove_file(dir.join(KEY_FILE)).unwrap();
        let err = load(&tls, &paths).unwrap_err().to_string();
        assert!(
            err.contains("key.pem") && err.contains("remove it"),
            "{err}"
        );
    }

    #[test]
    fn configured_files_that_are_missing_or_wrong_are_refused_with_the_file_named() {
        let tmp = tempfile::tempdir().unwrap();
        let paths = StatePaths::new(tmp.path());
        let tls = TlsSettings {
            cert_path: Some("c.pem".into()),
            key_path: Some("/nonexistent/k.pem".into()),
            ..Default::default()
        };
        let err = load(&tls, &paths).unwrap_err().to_string();
        assert!(err.contains("c.pem"), "{err}");
        std::fs::write(tmp.path().join("c.pem"), "not pem").unwrap();
        let err = load(&tls, &paths).unwrap_err().to_string();
        assert!(err.contains("no PEM certificate"), "{err}");
        // A real certificate with the key of another.
        ensure_self_signed(&paths).unwrap();
        std::fs::copy(paths.tls_dir().join(CERT_FILE), tmp.path().join("c.pem")).unwrap();
        let other = rcgen::KeyPair::generate().unwrap();
        std::fs::write(tmp.path().join("k.pem"), other.serialize_pem()).unwrap();
        let tls = TlsSettings {
            key_path: Some("k.pem".into()),
            ..tls
        };
        let err = load(&tls, &paths).unwrap_err().to_string();
        assert!(err.contains("cannot be served"), "{err}");
    }
}
