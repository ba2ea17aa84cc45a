//! The handshake run on every new socket: HELLO (or AUTH), SETNAME, SELECT, SETINFO.

use futures::{SinkExt, StreamExt};
use tokio_util::codec::Framed;

use super::transport::Transport;
use crate::cmd::{Cmd, cmd};
use crate::config::{Config, Protocol};
use crate::error::{Error, Kind, Result};
use crate::resp::{RespCodec, Value};

pub(crate) type Socket = Framed<Transport, RespCodec>;

/// Opens a socket and brings it to the state the config asks for. Returns the protocol the
/// server agreed to.
pub(crate) async fn connect(config: &Config) -> Result<(Socket, Protocol)> {
    let work = async {
        let transport = Transport::connect(&config.addr).await.map_err(|e| {
            Error::new(Kind::Connect, format!("cannot connect to {}", config.addr)).with_source(e)
        })?;
        let mut socket = Framed::with_capacity(transport, RespCodec::new(config.limits), 16 * 1024);
        let protocol = handshake(&mut socket, config).await.map_err(|e| {
            if e.is_server() || e.is_connect() {
                e
            } else {
                Error::new(
                    Kind::Connect,
                    format!("handshake with {} failed: {e}", config.addr),
                )
            }
        })?;
        Ok((socket, protocol))
    };
    match tokio::time::timeout(config.connect_timeout, work).await {
        Ok(result) => result,
        Err(_) => Err(Error::timeout(format!(
            "connecting to {} took longer than {:?}",
            config.addr, config.connect_timeout
        ))),
    }
}

async fn handshake(socket: &mut Socket, config: &Config) -> Result<Protocol> {
    let mut protocol = Protocol::Resp2;
    let mut authenticated_and_named = false;
    if config.protocol == Protocol::Resp3 {
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
        match round_trip(socket, [&hello]).await?.pop() {
            Some(Value::Error(e)) if is_unknown_command(e.as_str()) || e.code() == "NOPROTO" => {
                tracing::debug!(server_error = %e.code(), "HELLO 3 refused; falling back to RESP2");
            }
            Some(Value::Error(e)) => return Err(auth_error(e)),
            _ => {
                protocol = Protocol::Resp3;
                authenticated_and_named = true;
            }
        }
    }
    // (command, must succeed) pairs, sent in one write.
    let mut setup: Vec<(Cmd, bool)> = Vec::new();
    if !authenticated_and_named {
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
    // Proves the connection is usable, e.g. fails with NOAUTH when a password is required
    // and none was configured, instead of every later command failing.
    setup.push((cmd("PING"), true));
    let replies = round_trip(socket, setup.iter().map(|(c, _)| c)).await?;
    for ((_, required), reply) in setup.iter().zip(replies) {
        if let (true, Value::Error(e)) = (required, reply) {
            return Err(auth_error(e));
        }
    }
    Ok(protocol)
}

fn is_unknown_command(text: &str) -> bool {
    text.starts_with("ERR unknown command") || text.contains("unknown command 'HELLO'")
}

fn auth_error(e: crate::error::ServerError) -> Error {
    Error::new(
        Kind::Connect,
        format!("handshake refused by the server: {e}"),
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
