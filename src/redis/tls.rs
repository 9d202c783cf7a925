//! TLS of the JS-thread connection: the rustls client configuration from
//! the store's `tls` options (the CA to trust, else the web PKI roots; a
//! client certificate and key for mutual TLS), and the handshake, made on
//! tokio. The session ([`Session`]) then goes to the JS thread with its
//! socket, where rustls (sans I/O) encrypts and decrypts the records
//! ([`crate::redis::direct`]).

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::error::{PersistError, Result};
use crate::redis::config::RedisConfig;

/// A client's TLS session with the server, past its handshake.
pub type Session = rustls::ClientConnection;

fn bad(what: &str, e: impl std::fmt::Display) -> PersistError {
    PersistError::InvalidArgument(format!("createRedisStore: tls.{what}: {e}"))
}

/// Check the PEM material of `tls` now, so that a bad CA, certificate or key
/// is a TypeError naming the option when the store is created (redis-rs
/// skips PEM text without a certificate block: `tls: { ca: 'garbage' }` gave
/// an empty trust store and calls that failed only at connect time).
/// - `ca`: one or more certificates, each a valid X.509 trust anchor;
/// - `cert`: one or more certificates, the first (the client's) valid X.509;
/// - `key`: one private key (PKCS#1, PKCS#8 or SEC1) that rustls can sign
///   with, and that belongs to `cert`.
pub fn check_material(config: &RedisConfig) -> Result<()> {
    fn certs(field: &str, pem: &str) -> Result<Vec<CertificateDer<'static>>> {
        let list = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| bad(field, format!("not valid PEM: {e}")))?;
        if list.is_empty() {
            return Err(bad(
                field,
                "no certificate found (expected PEM text with a -----BEGIN CERTIFICATE----- block)",
            ));
        }
        Ok(list)
    }

    if let Some(ca) = &config.tls_ca {
        let mut roots = rustls::RootCertStore::empty();
        for cert in certs("ca", ca)? {
            roots
                .add(cert)
                .map_err(|e| bad("ca", format!("not a usable CA certificate: {e}")))?;
        }
    }
    if let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) {
        let chain = certs("cert", cert)?;
        let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).map_err(|e| {
            bad(
                "key",
                format!("no private key found (expected PEM text with a -----BEGIN ... PRIVATE KEY----- block): {e}"),
            )
        })?;
        let signer = rustls::crypto::ring::sign::any_supported_type(&key)
            .map_err(|e| bad("key", format!("not a usable private key: {e}")))?;
        match rustls::sign::CertifiedKey::new(chain, signer).keys_match() {
            Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
            Err(rustls::Error::InconsistentKeys(_)) => {
                return Err(bad("key", "does not belong to the certificate in tls.cert"))
            }
            Err(e) => return Err(bad("cert", format!("not a usable certificate: {e}"))),
        }
    }
    Ok(())
}

/// The client configuration for `config`'s `tls` options (checked when the
/// store was made).
pub fn client_config(config: &RedisConfig) -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    match &config.tls_ca {
        Some(ca) => {
            for cert in CertificateDer::pem_slice_iter(ca.as_bytes()) {
                roots
                    .add(cert.map_err(|e| bad("ca", e))?)
                    .map_err(|e| bad("ca", e))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| PersistError::Internal(format!("TLS: {e}")))?
    .with_root_certificates(roots);
    let cfg = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| bad("cert", e))?;
            let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).map_err(|e| bad("key", e))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| bad("key", e))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(cfg))
}

/// The TLS handshake over `tcp` with `host` (its certificate must name it).
pub async fn handshake(
    tcp: tokio::net::TcpStream,
    host: &str,
    config: &RedisConfig,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let name = ServerName::try_from(host.to_string())
        .map_err(|e| PersistError::InvalidArgument(format!("createRedisStore: url: {e}")))?;
    tokio_rustls::TlsConnector::from(client_config(config)?)
        .connect(name, tcp)
        .await
        .map_err(|e| PersistError::Unavailable(format!("TLS handshake: {e}")))
}
