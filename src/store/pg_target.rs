//! How a PostgreSQL store is reached: libpq's URL, the password from its file, the
//! timeouts that notice a vanished server, and TLS as libpq's `ssl*` parameters ask.
//!
//! The `postgres` driver parses libpq's URL but knows only `sslmode` `disable`,
//! `prefer` and `require`, and checks no certificate by itself. This module takes
//! libpq's TLS parameters out of the URL and builds the rustls connector that does
//! what libpq does with them:
//!
//! | `sslmode` | TLS | the server's certificate |
//! |---|---|---|
//! | `disable` | never | - |
//! | `allow`, `prefer` (libpq's default) | when the server offers it | not checked |
//! | `require` | always | not checked; with `sslrootcert`, as `verify-ca` (libpq does so) |
//! | `verify-ca` | always | chains to `sslrootcert` |
//! | `verify-full` | always | chains to `sslrootcert` and names the host connected to |
//!
//! `sslrootcert` is a PEM file of CA certificates, or `system` for the Mozilla roots
//! compiled into hearth (webpki-roots); libpq's default file in the home directory
//! is not read: a daemon names its files. `sslcert` and `sslkey` (PEM, together) are
//! a client certificate for servers that ask for one. `allow` tries TLS first (libpq
//! tries plain TCP first); both accept either.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use percent_encoding::percent_decode_str;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::ids::Id;

/// libpq's `sslmode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    /// Plain TCP.
    Disable,
    /// TLS when offered (libpq: plain first).
    Allow,
    /// TLS when offered.
    Prefer,
    /// TLS, the certificate unchecked unless `sslrootcert` is given.
    Require,
    /// TLS, the certificate chained to `sslrootcert`.
    VerifyCa,
    /// TLS, the certificate chained to `sslrootcert` and naming the host.
    VerifyFull,
}

/// libpq's TLS parameters of a connection URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsParams {
    /// `sslmode` (libpq's default: `prefer`).
    pub mode: SslMode,
    /// `sslrootcert`: a PEM file, or `system`.
    pub root_cert: Option<String>,
    /// `sslcert`: the client's certificate (PEM).
    pub cert: Option<PathBuf>,
    /// `sslkey`: its key (PEM).
    pub key: Option<PathBuf>,
}

/// Split libpq's TLS parameters off a `postgresql://` URL: the URL the driver is
/// given (with `sslmode` as it knows it), and the parameters. An error says which
/// parameter is wrong and why.
pub fn split_url(url: &str) -> Result<(String, TlsParams), String> {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, q),
        None => (url, ""),
    };
    let mut params = TlsParams { mode: SslMode::Prefer, root_cert: None, cert: None, key: None };
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let value = || percent_decode_str(v).decode_utf8_lossy().into_owned();
        match k {
            "sslmode" => {
                params.mode = match value().as_str() {
                    "disable" => SslMode::Disable,
                    "allow" => SslMode::Allow,
                    "prefer" => SslMode::Prefer,
                    "require" => SslMode::Require,
                    "verify-ca" => SslMode::VerifyCa,
                    "verify-full" => SslMode::VerifyFull,
                    other => {
                        return Err(format!(
                            "sslmode={other} is not one of disable, allow, prefer, require, verify-ca, verify-full"
                        ))
                    }
                }
            }
            "sslrootcert" => params.root_cert = Some(value()),
            "sslcert" => params.cert = Some(PathBuf::from(value())),
            "sslkey" => params.key = Some(PathBuf::from(value())),
            _ => kept.push(pair),
        }
    }
    if matches!(params.mode, SslMode::VerifyCa | SslMode::VerifyFull) && params.root_cert.is_none() {
        return Err(format!(
            "sslmode={} checks the server's certificate against sslrootcert, which is missing (a PEM file of CA \
             certificates, or sslrootcert=system)",
            mode_name(params.mode)
        ));
    }
    if params.cert.is_some() != params.key.is_some() {
        return Err("sslcert and sslkey go together: give both or neither".into());
    }
    for (name, path) in [
        ("sslrootcert", params.root_cert.as_deref().filter(|r| *r != "system").map(Path::new)),
        ("sslcert", params.cert.as_deref()),
        ("sslkey", params.key.as_deref()),
    ] {
        if path.is_some_and(|p| !p.is_absolute()) {
            return Err(format!("{name} must be an absolute path"));
        }
    }
    if params.mode == SslMode::Disable && (params.root_cert.is_some() || params.cert.is_some()) {
        return Err("sslmode=disable with sslrootcert or sslcert: TLS is off, its files would not be used".into());
    }
    let driver_mode = match params.mode {
        SslMode::Disable => "disable",
        SslMode::Allow | SslMode::Prefer => "prefer",
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => "require",
    };
    kept.push(match driver_mode {
        "disable" => "sslmode=disable",
        "prefer" => "sslmode=prefer",
        _ => "sslmode=require",
    });
    Ok((format!("{base}?{}", kept.join("&")), params))
}

fn mode_name(mode: SslMode) -> &'static str {
    match mode {
        SslMode::Disable => "disable",
        SslMode::Allow => "allow",
        SslMode::Prefer => "prefer",
        SslMode::Require => "require",
        SslMode::VerifyCa => "verify-ca",
        SslMode::VerifyFull => "verify-full",
    }
}

/// Where and how to connect: the driver's settings and, unless `sslmode=disable`,
/// the TLS connector.
#[derive(Clone)]
pub struct PgTarget {
    /// The driver's settings.
    pub config: postgres::Config,
    tls: Option<MakeRustlsConnect>,
}

impl From<postgres::Config> for PgTarget {
    /// Plain TCP with these settings (tests, tools).
    fn from(config: postgres::Config) -> PgTarget {
        PgTarget { config, tls: None }
    }
}

impl PgTarget {
    /// The target of `url` (libpq's URL), with `password` when given. Reads the
    /// certificate files the URL names.
    pub fn new(url: &str, password: Option<&str>) -> Result<PgTarget, String> {
        let (driver_url, params) = split_url(url)?;
        let mut config: postgres::Config =
            driver_url.parse().map_err(|e| format!("not a PostgreSQL connection URL: {e}"))?;
        if let Some(p) = password {
            config.password(p);
        }
        // A server that vanishes without closing the connection (a host down, a
        // network cut) is noticed in seconds, not after TCP's quarter of an hour, so
        // that writes move on to the new primary. The URL's own settings win.
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_tcp_user_timeout().is_none() {
            config.tcp_user_timeout(Duration::from_secs(20));
        }
        if config.get_keepalives_idle() == Duration::from_secs(2 * 60 * 60) {
            config.keepalives_idle(Duration::from_secs(10));
            config.keepalives_interval(Duration::from_secs(5));
            config.keepalives_retries(3);
        }
        // This process's own name on the server: a node lock still held by a session
        // of its own that it lost (a network blip) is its to take back (see
        // [`super::db::PgConn::take_node_lock`]).
        config.application_name(&format!("hearthd-{}-{}", std::process::id(), Id::new()));
        let tls = match params.mode {
            SslMode::Disable => None,
            _ => Some(MakeRustlsConnect::new(client_config(&params)?)),
        };
        Ok(PgTarget { config, tls })
    }

    /// Connect.
    pub fn connect(&self) -> Result<postgres::Client, postgres::Error> {
        match &self.tls {
            Some(tls) => self.config.connect(tls.clone()),
            None => self.config.connect(postgres::NoTls),
        }
    }
}

/// rustls' client settings for `params`.
fn client_config(params: &TlsParams) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = match params.root_cert.as_deref() {
        None => None,
        Some("system") => Some(RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() }),
        Some(path) => {
            let mut roots = RootCertStore::empty();
            let certs = read_certs(Path::new(path), "sslrootcert")?;
            for c in certs {
                roots.add(c).map_err(|e| format!("sslrootcert {path}: a certificate is not usable as a CA: {e}"))?;
            }
            Some(roots)
        }
    };
    let verifier = match (params.mode, roots) {
        (SslMode::VerifyFull, Some(roots)) => {
            Verifier { webpki: Some(webpki(roots, &provider)?), name: true, provider: provider.clone() }
        }
        (SslMode::Require | SslMode::VerifyCa, Some(roots)) => {
            Verifier { webpki: Some(webpki(roots, &provider)?), name: false, provider: provider.clone() }
        }
        (SslMode::VerifyCa | SslMode::VerifyFull, None) => unreachable!("split_url refuses verify modes without roots"),
        // allow, prefer (and require without roots): encrypted, the peer not checked.
        _ => Verifier { webpki: None, name: false, provider: provider.clone() },
    };
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier));
    match (&params.cert, &params.key) {
        (Some(cert), Some(key)) => {
            let chain = read_certs(cert, "sslcert")?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| format!("sslkey {}: no PEM private key read: {e}", key.display()))?;
            builder.with_client_auth_cert(chain, key).map_err(|e| format!("sslcert and sslkey: {e}"))
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

fn read_certs(path: &Path, param: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{param} {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{param} {}: holds no PEM certificate", path.display()));
    }
    Ok(certs)
}

fn webpki(roots: RootCertStore, provider: &Arc<CryptoProvider>) -> Result<Arc<WebPkiServerVerifier>, String> {
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| format!("sslrootcert: {e}"))
}

/// The check of the server's certificate a mode asks for: none (`prefer`, `require`
/// without roots), the chain (`verify-ca`), or the chain and the name
/// (`verify-full`). The handshake's signatures are checked in every mode: the peer
/// holds the key of the certificate it shows.
#[derive(Debug)]
struct Verifier {
    /// The chain's check, when the mode checks the certificate.
    webpki: Option<Arc<WebPkiServerVerifier>>,
    /// Whether the certificate must name the host too.
    name: bool,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(webpki) = &self.webpki else {
            return Ok(ServerCertVerified::assertion());
        };
        // webpki checks the chain first and the name last: a name error means the
        // chain was good.
        match webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpq_tls_parameters_are_taken_off_the_url() {
        let (url, p) = split_url("postgresql://h@db:5432/hearth").unwrap();
        assert_eq!(url, "postgresql://h@db:5432/hearth?sslmode=prefer");
        assert_eq!(p.mode, SslMode::Prefer);
        let (url, p) = split_url(
            "postgresql://h@a:1,b:2/hearth?target_session_attrs=read-write&sslmode=verify-full\
             &sslrootcert=%2Fetc%2Fca.pem&sslcert=/c.pem&sslkey=/k.pem",
        )
        .unwrap();
        assert_eq!(url, "postgresql://h@a:1,b:2/hearth?target_session_attrs=read-write&sslmode=require");
        assert_eq!(
            p,
            TlsParams {
                mode: SslMode::VerifyFull,
                root_cert: Some("/etc/ca.pem".into()),
                cert: Some("/c.pem".into()),
                key: Some("/k.pem".into())
            }
        );
        let (url, _) = split_url("postgresql://h@db/hearth?sslmode=disable").unwrap();
        assert!(url.ends_with("?sslmode=disable"), "{url}");
        let (url, p) = split_url("postgresql://h@db/hearth?sslmode=verify-ca&sslrootcert=system").unwrap();
        assert!(url.ends_with("?sslmode=require"), "{url}");
        assert_eq!(p.root_cert.as_deref(), Some("system"));
        for (bad, why) in [
            ("postgresql://db/h?sslmode=verify-full", "sslrootcert, which is missing"),
            ("postgresql://db/h?sslmode=on", "sslmode=on is not one of"),
            ("postgresql://db/h?sslcert=/c.pem", "sslcert and sslkey go together"),
            ("postgresql://db/h?sslmode=require&sslrootcert=ca.pem", "sslrootcert must be an absolute path"),
            ("postgresql://db/h?sslmode=disable&sslrootcert=/ca.pem", "TLS is off"),
        ] {
            let e = split_url(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn missing_or_empty_certificate_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = PgTarget::new(&format!("postgresql://db/h?sslmode=verify-full&sslrootcert={}", empty.display()), None)
            .err()
            .unwrap();
        assert!(e.contains("holds no PEM certificate") && e.contains("empty.pem"), "{e}");
        let e =
            PgTarget::new("postgresql://db/h?sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem", None).err().unwrap();
        assert!(e.contains("sslrootcert /nonexistent/ca.pem"), "{e}");
        let t = PgTarget::new("postgresql://db/h?sslmode=verify-full&sslrootcert=system", None).unwrap();
        assert!(t.tls.is_some());
        let t = PgTarget::new("postgresql://db/h?sslmode=disable", None).unwrap();
        assert!(t.tls.is_none());
    }
}
