//! TLS settings ([`TlsOptions`]) and what they become: one rustls client configuration per
//! client, shared by every connection, and errors that say what to change.

use std::fmt;
use std::path::Path;
#[cfg(feature = "tls")]
use std::sync::Arc;

use crate::error::{Error, Result};

/// Which root certificates a server's certificate chain may end in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TlsRoots {
    /// The platform's certificate store, through `rustls-platform-verifier` (on Linux the
    /// system bundle, and `SSL_CERT_FILE` / `SSL_CERT_DIR` when set). The default.
    #[default]
    Platform,
    /// Mozilla's root certificates compiled into the program (feature `tls-webpki-roots`):
    /// for minimal containers without a certificate store.
    WebPki,
    /// Only the certificate authorities added with [`TlsOptions::ca_pem`] or
    /// [`TlsOptions::ca_file`].
    CustomOnly,
}

/// How connections speak TLS. `rediss://` URLs turn it on with the defaults: the platform's
/// roots, the server name from the URL's host, no client certificate.
///
/// ```no_run
/// # async fn demo() -> kermes::Result<()> {
/// use kermes::TlsOptions;
///
/// let client = kermes::Client::builder()
///     .url("rediss://cache.example.com:6380")
///     .tls(TlsOptions::new().ca_file("/etc/redis/ca.pem")?.client_cert_files("client.pem", "client.key")?)
///     .connect()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct TlsOptions {
    /// Where trust starts. Default [`TlsRoots::Platform`].
    pub roots: TlsRoots,
    /// Certificate authorities trusted on top of the roots (PEM, one or more certificates
    /// each). Default none.
    pub ca_pem: Vec<Vec<u8>>,
    /// A client certificate chain and its private key (PEM), for servers that require one
    /// (`tls-auth-clients yes`). Default none.
    pub client_cert_pem: Option<(Vec<u8>, Vec<u8>)>,
    /// The name the server's certificate must carry, and sent as SNI. Default: the host
    /// connected to.
    pub server_name: Option<String>,
    /// Accepts any certificate, from anyone: encryption without authentication, open to a
    /// man in the middle. Only for tests against self-signed servers. Default false.
    pub danger_accept_invalid_certificates: bool,
}

impl TlsOptions {
    /// The defaults: the platform's roots, the host's name, no client certificate.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`roots`](Self::roots).
    pub fn roots(mut self, roots: TlsRoots) -> Self {
        self.roots = roots;
        self
    }

    /// Trusts the certificate authorities of a PEM file as well as the roots.
    pub fn ca_file(mut self, path: impl AsRef<Path>) -> Result<Self> {
        self.ca_pem.push(read(path.as_ref(), "CA certificate")?);
        Ok(self)
    }

    /// Trusts the certificate authorities of PEM bytes as well as the roots.
    pub fn ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_pem.push(pem.into());
        self
    }

    /// Presents a client certificate chain and its private key, from PEM bytes.
    pub fn client_cert_pem(mut self, chain: impl Into<Vec<u8>>, key: impl Into<Vec<u8>>) -> Self {
        self.client_cert_pem = Some((chain.into(), key.into()));
        self
    }

    /// Presents a client certificate chain and its private key, from PEM files.
    pub fn client_cert_files(self, chain: impl AsRef<Path>, key: impl AsRef<Path>) -> Result<Self> {
        let chain = read(chain.as_ref(), "client certificate")?;
        let key = read(key.as_ref(), "client key")?;
        Ok(self.client_cert_pem(chain, key))
    }

    /// Sets [`server_name`](Self::server_name).
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// Turns certificate checks off ([`danger_accept_invalid_certificates`]). Never do this
    /// outside a test: anyone on the path can read and change the traffic.
    ///
    /// [`danger_accept_invalid_certificates`]: Self::danger_accept_invalid_certificates
    pub fn danger_accept_invalid_certificates(mut self) -> Self {
        self.danger_accept_invalid_certificates = true;
        self
    }
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        Error::config(format!("cannot read the {what} file {}", path.display())).with_source(e)
    })
}

impl fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Keys never show; certificates are only counted.
        f.debug_struct("TlsOptions")
            .field("roots", &self.roots)
            .field("ca_pem", &self.ca_pem.len())
            .field("client_cert", &self.client_cert_pem.is_some())
            .field("server_name", &self.server_name)
            .field(
                "danger_accept_invalid_certificates",
                &self.danger_accept_invalid_certificates,
            )
            .finish()
    }
}

/// The rustls configuration every connection of a client shares.
#[cfg(feature = "tls")]
#[derive(Clone)]
pub(crate) struct TlsConnector {
    pub(crate) inner: tokio_rustls::TlsConnector,
    pub(crate) server_name: Option<String>,
}

#[cfg(feature = "tls")]
impl fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConnector")
            .field("server_name", &self.server_name)
            .finish()
    }
}

#[cfg(feature = "tls")]
impl TlsOptions {
    /// Builds the rustls configuration, checking every certificate and key given.
    pub(crate) fn connector(&self) -> Result<TlsConnector> {
        use rustls::ClientConfig;
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};

        let bad = |what: String| Error::config(format!("TLS: {what}"));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut extra = Vec::new();
        for pem in &self.ca_pem {
            let certs = CertificateDer::pem_slice_iter(pem)
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| bad(format!("a CA certificate is not valid PEM ({e})")))?;
            if certs.is_empty() {
                return Err(bad("a CA certificate PEM holds no certificate".into()));
            }
            extra.extend(certs);
        }
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| bad(e.to_string()))?;
        let builder = if self.danger_accept_invalid_certificates {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(danger::AcceptAnything(provider)))
        } else {
            let verifier: Arc<dyn rustls::client::danger::ServerCertVerifier> = match self.roots {
                TlsRoots::Platform => Arc::new(
                    rustls_platform_verifier::Verifier::new_with_extra_roots(extra, provider)
                        .map_err(|e| bad(format!("the platform's certificate store: {e}")))?,
                ),
                TlsRoots::WebPki | TlsRoots::CustomOnly => {
                    let mut store = rustls::RootCertStore::empty();
                    if self.roots == TlsRoots::WebPki {
                        webpki(&mut store)?;
                    }
                    for cert in extra {
                        store
                            .add(cert)
                            .map_err(|e| bad(format!("a CA certificate was refused: {e}")))?;
                    }
                    if store.is_empty() {
                        return Err(bad(
                            "TlsRoots::CustomOnly with no CA certificate: add one with ca_file() \
                             or ca_pem()"
                                .into(),
                        ));
                    }
                    rustls::client::WebPkiServerVerifier::builder_with_provider(
                        Arc::new(store),
                        provider,
                    )
                    .build()
                    .map_err(|e| bad(e.to_string()))?
                }
            };
            builder
                .dangerous()
                .with_custom_certificate_verifier(verifier)
        };
        let config = match &self.client_cert_pem {
            None => builder.with_no_client_auth(),
            Some((chain, key)) => {
                let chain = CertificateDer::pem_slice_iter(chain)
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|e| bad(format!("the client certificate is not valid PEM ({e})")))?;
                if chain.is_empty() {
                    return Err(bad("the client certificate PEM holds no certificate".into()));
                }
                let key = PrivateKeyDer::from_pem_slice(key)
                    .map_err(|e| bad(format!("the client key is not a PEM private key ({e})")))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| bad(format!("the client certificate and key: {e}")))?
            }
        };
        Ok(TlsConnector {
            inner: tokio_rustls::TlsConnector::from(Arc::new(config)),
            server_name: self.server_name.clone(),
        })
    }
}

#[cfg(all(feature = "tls", feature = "tls-webpki-roots"))]
fn webpki(store: &mut rustls::RootCertStore) -> Result<()> {
    store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    Ok(())
}

#[cfg(all(feature = "tls", not(feature = "tls-webpki-roots")))]
fn webpki(_: &mut rustls::RootCertStore) -> Result<()> {
    Err(Error::config(
        "TlsRoots::WebPki needs kermes's `tls-webpki-roots` feature",
    ))
}

/// Without the `tls` feature there is no connector: an `Option` of it is always `None`.
#[cfg(not(feature = "tls"))]
#[derive(Clone, Debug)]
pub(crate) enum TlsConnector {}

#[cfg(not(feature = "tls"))]
impl TlsOptions {
    pub(crate) fn connector(&self) -> Result<TlsConnector> {
        Err(Error::config(
            "TLS (rediss://) needs kermes's `tls` feature, which this build leaves out",
        ))
    }
}

/// Why a TLS handshake failed, in words that say what to change.
#[cfg(feature = "tls")]
pub(crate) fn handshake_error(addr: &crate::config::Addr, name: &str, e: std::io::Error) -> Error {
    let why = explain(addr, name, &e);
    Error::new(crate::error::Kind::Connect, why).with_source(e)
}

/// A TLS failure found in an error's sources (an alert the server sent after the handshake,
/// as TLS 1.3 servers do when a client certificate is missing), explained.
#[cfg(feature = "tls")]
pub(crate) fn explain_later(addr: &crate::config::Addr, name: &str, e: &Error) -> Option<Error> {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && io
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
        {
            return Some(Error::new(
                crate::error::Kind::Connect,
                explain(addr, name, io),
            ));
        }
        source = s.source();
    }
    None
}

#[cfg(feature = "tls")]
fn explain(addr: &crate::config::Addr, name: &str, e: &std::io::Error) -> String {
    use rustls::{AlertDescription, CertificateError};

    let tls = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match tls {
        Some(rustls::Error::InvalidCertificate(c)) => match c {
            CertificateError::UnknownIssuer | CertificateError::BadSignature => format!(
                "the certificate of {addr} was not issued by a trusted authority: add its CA \
                 with TlsOptions::ca_file() or ca_pem()"
            ),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!(
                    "the certificate of {addr} is not valid for the name {name:?}: connect by a \
                     name it carries, or set TlsOptions::server_name()"
                )
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                format!("the certificate of {addr} has expired: the server needs a new one")
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => format!(
                "the certificate of {addr} is not valid yet: check the server's and this \
                 machine's clocks"
            ),
            other => format!("the certificate of {addr} was refused: {other:?}"),
        },
        Some(
            rustls::Error::InvalidMessage(_)
            | rustls::Error::InappropriateMessage { .. }
            | rustls::Error::InappropriateHandshakeMessage { .. },
        ) => format!(
            "{addr} did not answer in TLS: if it is a plaintext port, connect with redis:// \
             instead of rediss://"
        ),
        Some(rustls::Error::AlertReceived(AlertDescription::CertificateRequired)) => format!(
            "{addr} requires a client certificate: set TlsOptions::client_cert_files() (or \
             client_cert_pem())"
        ),
        Some(rustls::Error::AlertReceived(
            AlertDescription::HandshakeFailure
            | AlertDescription::BadCertificate
            | AlertDescription::UnknownCA,
        )) => format!(
            "{addr} refused the TLS handshake: it may require a client certificate its CA \
             signed (TlsOptions::client_cert_files())"
        ),
        Some(other) => format!("TLS handshake with {addr} failed: {other}"),
        None if e.kind() == std::io::ErrorKind::UnexpectedEof => format!(
            "{addr} closed the connection during the TLS handshake: it may require a client \
             certificate (TlsOptions::client_cert_files()), or not speak TLS on this port"
        ),
        None => format!("TLS handshake with {addr} failed: {e}"),
    }
}

#[cfg(feature = "tls")]
mod danger {
    use std::sync::Arc;

    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{DigitallySignedStruct, SignatureScheme};

    /// Accepts every certificate; still checks that the handshake is signed by it.
    #[derive(Debug)]
    pub(super) struct AcceptAnything(pub(super) Arc<CryptoProvider>);

    impl ServerCertVerifier for AcceptAnything {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls12_signature(
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
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls13_signature(
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
}
