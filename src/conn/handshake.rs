//! Bringing a new socket to the state its connection must have: the handshake (HELLO or
//! AUTH, SETNAME, SELECT, SETINFO) and, for a MONITOR connection, MONITOR itself. The same
//! handshake is replayed after RESET when an exclusive connection returns to the pool.

use std::sync::atomic::{AtomicU8, Ordering};

use futures::{SinkExt, StreamExt};
use tokio_util::codec::Framed;

use super::endpoint::Role;
use super::transport::{ShutdownHandle, Transport};
use super::{Mode, Options};
use crate::cmd::{Cmd, cmd};
use crate::config::{Addr, Config, Protocol};
use crate::error::{Error, Kind, Result, ServerError};
use crate::resp::{RespCodec, Value};

pub(crate) type Socket = Framed<Transport, RespCodec>;

/// A socket ready for its driver.
pub(crate) struct Connected {
    pub(crate) socket: Socket,
    pub(crate) protocol: Protocol,
    pub(crate) addr: Addr,
    /// For exclusive connections, which close at once when a command is abandoned.
    pub(crate) shutdown: Option<ShutdownHandle>,
}

/// Asks the endpoint where to go, connects, and runs the handshake, all within the connect
/// timeout.
pub(crate) async fn connect(opts: &Options) -> Result<Connected> {
    let config = &opts.config;
    let addr = opts.endpoint.resolve().await?;
    // How far connecting got, for a timeout to say what did not answer.
    let stage = AtomicU8::new(STAGE_NOTHING);
    let work = async {
        let transport = Transport::open(&addr, config.tcp_keepalive).await?;
        stage.store(STAGE_SOCKET, Ordering::Relaxed);
        let transport = transport.secure(&addr, opts.tls.as_ref()).await?;
        stage.store(STAGE_TRANSPORT, Ordering::Relaxed);
        let tls = transport.is_tls();
        let shutdown = match opts.mode {
            Mode::Exclusive => Some(transport.shutdown_handle().map_err(|e| {
                Error::new(Kind::Connect, format!("cannot connect to {addr}")).with_source(e)
            })?),
            _ => None,
        };
        let mut socket = Framed::with_capacity(transport, RespCodec::new(config.limits), 16 * 1024);
        let tracking = match (&opts.tracking, opts.mode) {
            (Some(cache), Mode::Shared) => Some(cache.options().tracking_command()),
            _ => None,
        };
        let protocol = handshake(&mut socket, config, opts.readonly, tracking).await.map_err(|e| {
            if let Some(explained) = tls_failure(opts, &addr, &e) {
                explained
            } else if e.is_server() || e.is_connect() {
                e
            } else if !tls && (e.is_closed() || e.is_protocol() || e.is_io()) {
                // A TLS port answers plaintext by closing, or with a TLS alert record.
                Error::new(
                    Kind::Connect,
                    format!(
                        "handshake with {addr} failed: {e} (if {addr} expects TLS, connect with \
                         rediss://)"
                    ),
                )
            } else {
                Error::new(Kind::Connect, format!("handshake with {addr} failed: {e}"))
            }
        })?;
        if let Some(role) = opts.endpoint.role() {
            check_role(&mut socket, &addr, role).await?;
        }
        if opts.mode == Mode::Monitor {
            match round_trip(&mut socket, [&cmd("MONITOR")]).await?.pop() {
                Some(Value::Simple(ok)) if &ok[..] == b"OK" => {}
                Some(Value::Error(e)) => return Err(e.into()),
                other => {
                    return Err(Error::protocol(format!(
                        "unexpected reply to MONITOR: {other:?}"
                    )));
                }
            }
        }
        Ok(Connected {
            socket,
            protocol,
            addr: addr.clone(),
            shutdown,
        })
    };
    let within = config.connect_timeout;
    match tokio::time::timeout(within, work).await {
        Ok(result) => result,
        Err(_) => Err(Error::timeout(match stage.load(Ordering::Relaxed) {
            STAGE_SOCKET if opts.tls.is_some() => format!(
                "{addr} accepted the connection but did not answer the TLS handshake within \
                 {within:?}: if it is a plaintext port, connect with redis://"
            ),
            STAGE_TRANSPORT if opts.tls.is_none() => format!(
                "{addr} accepted the connection but did not answer the handshake within \
                 {within:?}: if it expects TLS, connect with rediss://"
            ),
            _ => format!("connecting to {addr} took longer than {within:?}"),
        })),
    }
}

const STAGE_NOTHING: u8 = 0;
/// The TCP (or unix) socket is connected.
const STAGE_SOCKET: u8 = 1;
/// TLS, when configured, is established too.
const STAGE_TRANSPORT: u8 = 2;

/// A TLS failure reported after the TLS handshake (a TLS 1.3 server refusing the client's
/// certificate, or its absence, with an alert), explained.
fn tls_failure(opts: &Options, addr: &Addr, e: &Error) -> Option<Error> {
    #[cfg(feature = "tls")]
    if let Some(tls) = &opts.tls {
        let host = match addr {
            Addr::Tcp { host, .. } => host.as_str(),
            Addr::Unix(_) => "",
        };
        return crate::tls::explain_later(addr, tls.server_name.as_deref().unwrap_or(host), e);
    }
    let _ = (opts, addr, e);
    None
}

/// Fails unless the server has `role` (a sentinel's view may be stale after a failover).
async fn check_role(socket: &mut Socket, addr: &Addr, role: Role) -> Result<()> {
    let reply = round_trip(socket, [&cmd("ROLE")]).await?.pop();
    let word = match &reply {
        Some(Value::Array(items)) => items.first().and_then(Value::as_bytes).cloned(),
        _ => None,
    };
    match word {
        Some(w) if role.matches(&w) => Ok(()),
        Some(w) => Err(Error::new(
            Kind::Connect,
            format!(
                "{addr} is a {} where a {} was expected (a failover is under way, or the \
                 sentinels' view is stale); asking again",
                String::from_utf8_lossy(&w),
                match role {
                    Role::Primary => "master",
                    Role::Replica => "replica",
                }
            ),
        )),
        None => Err(Error::protocol(format!(
            "unexpected reply to ROLE from {addr}: {reply:?}"
        ))),
    }
}

/// `HELLO 3`, with AUTH and SETNAME when configured.
fn hello(config: &Config) -> Cmd {
    let mut hello = cmd("HELLO").arg(3);
    if let Some(password) = &config.password {
        hello = hello
            .arg("AUTH")
            .arg(config.username.as_deref().unwrap_or("default"))
            .arg(password.expose());
    }
    if let Some(name) = &config.client_name {
        hello = hello.arg("SETNAME").arg(name);
    }
    hello
}

/// The commands after HELLO (or without it), as (command, must succeed) pairs sent in one
/// write. `greeted`: HELLO already authenticated and named the connection; `readonly`: a
/// cluster replica serving reads.
fn setup(config: &Config, greeted: bool, readonly: bool) -> Vec<(Cmd, bool)> {
    let mut setup = Vec::new();
    if !greeted {
        if let Some(password) = &config.password {
            let auth = match &config.username {
                Some(user) => cmd("AUTH").arg(user).arg(password.expose()),
                None => cmd("AUTH").arg(password.expose()),
            };
            setup.push((auth, true));
        }
        if let Some(name) = &config.client_name {
            setup.push((cmd("CLIENT").arg("SETNAME").arg(name), true));
        }
    }
    if config.db != 0 {
        setup.push((cmd("SELECT").arg(config.db), true));
    }
    if readonly {
        setup.push((cmd("READONLY"), true));
    }
    // Library identification is best effort: servers before Redis 7.2 do not know SETINFO.
    setup.push((
        cmd("CLIENT").arg("SETINFO").arg("LIB-NAME").arg("kermes"),
        false,
    ));
    setup.push((
        cmd("CLIENT")
            .arg("SETINFO")
            .arg("LIB-VER")
            .arg(env!("CARGO_PKG_VERSION")),
        false,
    ));
    setup
}

/// The handshake for a connection that already agreed on `protocol`, as (command, must
/// succeed) pairs: what RESET undid, sent again in the same write.
pub(crate) fn replay(config: &Config, protocol: Protocol, readonly: bool) -> Vec<(Cmd, bool)> {
    match protocol {
        Protocol::Resp3 => {
            let mut all = vec![(hello(config), true)];
            all.extend(setup(config, true, readonly));
            all
        }
        _ => setup(config, false, readonly),
    }
}

/// `tracking`: the `CLIENT TRACKING` command of the client-side cache, for a shared
/// connection of a client that has one.
async fn handshake(
    socket: &mut Socket,
    config: &Config,
    readonly: bool,
    tracking: Option<Cmd>,
) -> Result<Protocol> {
    let mut protocol = Protocol::Resp2;
    let mut greeted = false;
    if config.protocol == Protocol::Resp3 {
        match round_trip(socket, [&hello(config)]).await?.pop() {
            Some(Value::Error(e)) if is_unknown_command(e.as_str()) || e.code() == "NOPROTO" => {
                tracing::debug!(server_error = %e.code(), "HELLO 3 refused; falling back to RESP2");
            }
            Some(Value::Error(e)) => return Err(refused(e)),
            _ => {
                protocol = Protocol::Resp3;
                greeted = true;
            }
        }
    }
    let mut setup = setup(config, greeted, readonly);
    if let Some(tracking) = tracking {
        if protocol != Protocol::Resp3 {
            return Err(Error::new(
                Kind::Connect,
                "the client-side cache needs RESP3 (its invalidations arrive as push frames \
                 on the same connection), and this connection speaks RESP2: connect with \
                 protocol RESP3 to a server that has it (Redis 6+, Valkey)",
            ));
        }
        setup.push((tracking, true));
    }
    // Proves the connection is usable, e.g. fails with NOAUTH when a password is required
    // and none was configured, instead of every later command failing.
    setup.push((cmd("PING"), true));
    let replies = round_trip(socket, setup.iter().map(|(c, _)| c)).await?;
    check(&setup, replies)?;
    Ok(protocol)
}

/// Fails with the first error reply to a command that must succeed.
pub(crate) fn check(setup: &[(Cmd, bool)], replies: Vec<Value>) -> Result<()> {
    for ((_, required), reply) in setup.iter().zip(replies) {
        if let (true, Value::Error(e)) = (required, reply) {
            return Err(refused(e));
        }
    }
    Ok(())
}

fn is_unknown_command(text: &str) -> bool {
    text.starts_with("ERR unknown command") || text.contains("unknown command 'HELLO'")
}

fn refused(e: ServerError) -> Error {
    Error::new(
        Kind::Connect,
        // The server's message is printed once, as the source.
        "handshake refused by the server",
    )
    .with_source(e)
}

/// Sends commands in one write and reads one reply each. Push frames are not expected before
/// the handshake ends and are skipped.
async fn round_trip<'a>(
    socket: &mut Socket,
    cmds: impl IntoIterator<Item = &'a Cmd>,
) -> Result<Vec<Value>> {
    let mut count = 0;
    for c in cmds {
        c.args.encode_into(socket.write_buffer_mut());
        count += 1;
    }
    SinkExt::<&Value>::flush(socket).await?;
    let mut replies = Vec::with_capacity(count);
    while replies.len() < count {
        match socket.next().await {
            Some(Ok(Value::Push(_))) => {}
            Some(Ok(v)) => replies.push(v),
            Some(Err(e)) => return Err(e),
            None => {
                return Err(Error::closed(
                    "server closed the connection during the handshake",
                ));
            }
        }
    }
    Ok(replies)
}
