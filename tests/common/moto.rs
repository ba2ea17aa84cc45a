//! A local S3 server (moto) for Tundra's object-store tests, killed on drop.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use object_store::aws::AmazonS3Builder;

pub struct Moto {
    pub port: u16,
    child: Child,
}

fn binary() -> PathBuf {
    if let Ok(p) = std::env::var("KERMES_MOTO_SERVER") {
        return PathBuf::from(p);
    }
    let cached = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".cache/servers/bin/moto_server");
    if cached.exists() {
        return cached;
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join("moto_server"))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| {
            panic!(
                "moto_server not found: install it with `bash scripts/install-servers.sh` \
                 (PyPI moto[server]) or set KERMES_MOTO_SERVER to its path"
            )
        })
}

/// One HTTP/1.1 request with no body; the status code.
fn request(port: u16, method: &str, path: &str) -> std::io::Result<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head)?;
    let text = String::from_utf8_lossy(&head);
    text[9..12]
        .parse()
        .map_err(|_| std::io::Error::other(format!("not HTTP: {text:?}")))
}

impl Moto {
    pub fn start() -> Moto {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(binary())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        let moto = Moto { port, child };
        let deadline = Instant::now() + Duration::from_secs(60);
        while request(port, "GET", "/").is_err() {
            assert!(
                Instant::now() < deadline,
                "moto_server did not answer within 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    /// A new bucket on this server, as an `object_store` S3 client.
    pub fn bucket(&self, name: &str) -> Arc<dyn object_store::ObjectStore> {
        // object_store's HTTP client (reqwest) takes the process's rustls provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let status = request(self.port, "PUT", &format!("/{name}")).unwrap();
        assert_eq!(status, 200, "creating bucket {name}");
        Arc::new(
            AmazonS3Builder::new()
                .with_endpoint(format!("http://127.0.0.1:{}", self.port))
                .with_allow_http(true)
                .with_bucket_name(name)
                .with_region("us-east-1")
                .with_access_key_id("test")
                .with_secret_access_key("test")
                .build()
                .unwrap(),
        )
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
