//! TLS client settings, one place for the Redis and the PostgreSQL store:
//! the `tls` option ([`TlsOptions`]: a CA to trust, a client certificate and
//! key, `servername`, `rejectUnauthorized`), checked when a store is created
//! and turned into one rustls client configuration; the server name a
//! handshake sends and verifies; the handshake over a tokio TCP stream.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::error::{PersistError, Result};

/// A client's TLS session with the server, past its handshake.
pub type Session = rustls::ClientConnection;

/// The `tls` option of a store. PEM text throughout.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsOptions {
    /// Trusted roots; None: the web PKI roots (webpki-roots).
    pub ca: Option<String>,
    /// Client certificate chain (the client's first) and its private key,
    /// for mutual TLS; both or neither.
    pub cert: Option<String>,
    pub key: Option<String>,
    /// The name sent as SNI and that the server's certificate must hold;
    /// None: the host connected to.
    pub servername: Option<String>,
    /// false: the server's certificate is not checked (neither its chain nor
    /// its name); the handshake's signatures are still verified against it.
    pub reject_unauthorized: bool,
}

impl Default for TlsOptions {
    fn default() -> Self {
        TlsOptions {
            ca: None,
            cert: None,
            key: None,
            servername: None,
            reject_unauthorized: true,
        }
    }
}

impl TlsOptions {
    /// Check every field now (`store`: the function named in messages), so
    /// that bad material is a TypeError naming its option when the store is
    /// made, not a failed connection later. PEM text without a certificate
    /// block is refused (an empty trust store would fail only at connect).
    pub fn check(&self, store: &str) -> Result<()> {
        self.client_config(store)?;
        if let Some(name) = &self.servername {
            self.server_name(store, name)?;
        }
        Ok(())
    }

    /// The rustls client configuration of these options.
    pub fn client_config(&self, store: &str) -> Result<rustls::ClientConfig> {
        let bad = |field: &str, why: String| {
            PersistError::InvalidArgument(format!("{store}: tls.{field}: {why}"))
        };
        let certs = |field: &str, pem: &str| -> Result<Vec<CertificateDer<'static>>> {
            let list = CertificateDer::pem_slice_iter(pem.as_bytes())
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| bad(field, format!("not valid PEM: {e}")))?;
            if list.is_empty() {
                return Err(bad(
                    field,
                    "no certificate found (expected PEM text with a -----BEGIN CERTIFICATE----- block)".into(),
                ));
            }
            Ok(list)
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        match &self.ca {
            Some(ca) => {
                for cert in certs("ca", ca)? {
                    roots
                        .add(cert)
                        .map_err(|e| bad("ca", format!("not a usable CA certificate: {e}")))?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let versions = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| PersistError::Internal(format!("TLS: {e}")))?;
        let builder = if self.reject_unauthorized {
            versions.with_root_certificates(roots)
        } else {
            versions
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        };
        let config = match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                let chain = certs("cert", cert)?;
                let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).map_err(|e| {
                    bad(
                        "key",
                        format!("no private key found (expected PEM text with a -----BEGIN ... PRIVATE KEY----- block): {e}"),
                    )
                })?;
                let signer = rustls::crypto::ring::sign::any_supported_type(&key)
                    .map_err(|e| bad("key", format!("not a usable private key: {e}")))?;
                let certified = rustls::sign::CertifiedKey::new(chain, signer);
                // a key that is not the certificate's is refused now; a
                // certificate webpki cannot read (X.509 v1, as `openssl x509
                // -req` makes without extensions) is the server's to judge
                if let Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) =
                    certified.keys_match()
                {
                    return Err(bad(
                        "key",
                        "does not belong to the certificate in tls.cert".into(),
                    ));
                }
                builder.with_client_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(
                    certified,
                )))
            }
            (None, None) => builder.with_no_client_auth(),
            _ => {
                return Err(PersistError::InvalidArgument(format!(
                    "{store}: tls.cert and tls.key go together"
                )))
            }
        };
        Ok(config)
    }

    /// The name a handshake with `host` sends and verifies: `servername`
    /// when set, else `host` (a DNS name or an IP address).
    pub fn server_name(&self, store: &str, host: &str) -> Result<ServerName<'static>> {
        let (field, name) = match &self.servername {
            Some(n) => ("tls.servername", n.as_str()),
            None => ("host", host),
        };
        let name = name.trim_start_matches('[').trim_end_matches(']');
        ServerName::try_from(name.to_string()).map_err(|e| {
            PersistError::InvalidArgument(format!(
                "{store}: {field}: {name:?} is not a DNS name or IP address for TLS: {e}"
            ))
        })
    }

    /// The TLS handshake over `tcp`, connected to `host`.
    pub async fn handshake(
        &self,
        store: &str,
        tcp: tokio::net::TcpStream,
        host: &str,
    ) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
        let name = self.server_name(store, host)?;
        tokio_rustls::TlsConnector::from(Arc::new(self.client_config(store)?))
            .connect(name, tcp)
            .await
            .map_err(|e| PersistError::Unavailable(format!("TLS handshake: {e}")))
    }
}

/// `rejectUnauthorized: false`: any certificate chain and name is accepted;
/// the handshake's signatures must still be made by the presented key.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_material_names_its_field() {
        let with = |f: fn(&mut TlsOptions)| {
            let mut o = TlsOptions::default();
            f(&mut o);
            o.check("createX")
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert!(with(|_| {}).is_empty());
        assert!(with(|o| o.reject_unauthorized = false).is_empty());
        let e = with(|o| o.ca = Some("garbage".into()));
        assert!(e.contains("createX: tls.ca: no certificate found"), "{e}");
        let e = with(|o| o.cert = Some("x".into()));
        assert!(
            e.contains("createX: tls.cert and tls.key go together"),
            "{e}"
        );
        let e = with(|o| o.servername = Some("a b".into()));
        assert!(e.contains("createX: tls.servername: \"a b\""), "{e}");
    }

    #[test]
    fn the_name_verified_is_servername_else_the_host() {
        let o = TlsOptions::default();
        assert_eq!(
            o.server_name("s", "10.0.0.1").ok(),
            ServerName::try_from("10.0.0.1").ok()
        );
        assert_eq!(
            o.server_name("s", "[::1]").ok(),
            ServerName::try_from("::1").ok()
        );
        let named = TlsOptions {
            servername: Some("redis.internal".into()),
            ..TlsOptions::default()
        };
        assert_eq!(
            named.server_name("s", "10.0.0.1").ok(),
            ServerName::try_from("redis.internal").ok()
        );
    }
}
