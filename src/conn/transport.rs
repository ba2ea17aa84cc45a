//! The byte stream under a connection: TCP (with keepalive), TLS over TCP, or a unix socket,
//! and a handle that shuts it down from any thread.

use std::io;
use std::os::fd::AsFd;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

use crate::config::Addr;
use crate::error::{Error, Kind, Result};
use crate::tls::TlsConnector;

pub(crate) enum Transport {
    Tcp(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    Unix(UnixStream),
}

impl Transport {
    /// Connects; a TCP socket gets TCP_NODELAY and, when `keepalive` is set, keepalive probes
    /// after that much idle time; with `tls` the TLS handshake runs over it.
    #[cfg(test)]
    pub(crate) async fn connect(
        addr: &Addr,
        keepalive: Option<Duration>,
        tls: Option<&TlsConnector>,
    ) -> Result<Transport> {
        Transport::open(addr, keepalive)
            .await?
            .secure(addr, tls)
            .await
    }

    /// The plain socket: TCP (TCP_NODELAY, keepalive probes after `keepalive` idle) or unix.
    pub(crate) async fn open(addr: &Addr, keepalive: Option<Duration>) -> Result<Transport> {
        let failed = |e: io::Error| {
            Error::new(Kind::Connect, format!("cannot connect to {addr}")).with_source(e)
        };
        match addr {
            Addr::Tcp { host, port } => {
                let stream = TcpStream::connect((host.as_str(), *port))
                    .await
                    .map_err(failed)?;
                // Batches are flushed as soon as they are gathered; Nagle would only delay them.
                stream.set_nodelay(true).map_err(failed)?;
                if let Some(idle) = keepalive {
                    SockRef::from(&stream)
                        .set_tcp_keepalive(&keepalive_params(idle))
                        .map_err(failed)?;
                }
                Ok(Transport::Tcp(stream))
            }
            Addr::Unix(path) => Ok(Transport::Unix(
                UnixStream::connect(path).await.map_err(failed)?,
            )),
        }
    }

    /// Runs the TLS handshake over a TCP socket when `tls` is set.
    pub(crate) async fn secure(self, addr: &Addr, tls: Option<&TlsConnector>) -> Result<Transport> {
        match (self, tls) {
            (plain, None) => Ok(plain),
            #[cfg(feature = "tls")]
            (Transport::Tcp(stream), Some(tls)) => {
                let host = match addr {
                    Addr::Tcp { host, .. } => host.as_str(),
                    Addr::Unix(_) => "",
                };
                let name = tls.server_name.as_deref().unwrap_or(host);
                let server_name = rustls::pki_types::ServerName::try_from(name.to_string())
                    .map_err(|_| {
                        Error::config(format!("TLS: {name:?} is not a valid server name"))
                    })?;
                let stream = tls
                    .inner
                    .connect(server_name, stream)
                    .await
                    .map_err(|e| crate::tls::handshake_error(addr, name, e))?;
                Ok(Transport::Tls(Box::new(stream)))
            }
            #[cfg(feature = "tls")]
            (_, Some(_)) => Err(Error::config("TLS is for TCP connections")),
            #[cfg(not(feature = "tls"))]
            (_, Some(never)) => match *never {},
        }
    }

    /// True for a TLS connection.
    pub(crate) fn is_tls(&self) -> bool {
        match self {
            #[cfg(feature = "tls")]
            Transport::Tls(_) => true,
            _ => false,
        }
    }

    /// A second handle on the same socket, to shut it down from outside the task that owns
    /// it (a cancelled command must close its connection at once, not when that task runs).
    pub(crate) fn shutdown_handle(&self) -> io::Result<ShutdownHandle> {
        Ok(match self {
            Transport::Tcp(s) => {
                ShutdownHandle::Tcp(std::net::TcpStream::from(s.as_fd().try_clone_to_owned()?))
            }
            // Shutting the TCP socket under TLS down ends the TLS session with it.
            #[cfg(feature = "tls")]
            Transport::Tls(s) => ShutdownHandle::Tcp(std::net::TcpStream::from(
                s.get_ref().0.as_fd().try_clone_to_owned()?,
            )),
            Transport::Unix(s) => ShutdownHandle::Unix(std::os::unix::net::UnixStream::from(
                s.as_fd().try_clone_to_owned()?,
            )),
        })
    }
}

/// Probes start after `idle` without traffic and repeat every third of it (at least 1 s);
/// three unanswered probes end the connection, so a dead peer is found within `2 * idle`.
fn keepalive_params(idle: Duration) -> TcpKeepalive {
    let params = TcpKeepalive::new().with_time(idle);
    #[cfg(any(
        target_os = "linux",
        target_os = "android",
        target_os = "macos",
        target_os = "ios",
        target_os = "freebsd",
        target_os = "netbsd"
    ))]
    let params = params
        .with_interval((idle / 3).max(Duration::from_secs(1)))
        .with_retries(3);
    params
}

/// Shuts a socket down (both directions) from any thread: the peer sees the connection
/// close and the owning task's next read ends.
pub(crate) enum ShutdownHandle {
    Tcp(std::net::TcpStream),
    Unix(std::os::unix::net::UnixStream),
}

impl ShutdownHandle {
    pub(crate) fn shutdown(&self) {
        let _ = match self {
            ShutdownHandle::Tcp(s) => s.shutdown(std::net::Shutdown::Both),
            ShutdownHandle::Unix(s) => s.shutdown(std::net::Shutdown::Both),
        };
    }
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            #[cfg(feature = "tls")]
            Transport::Tls(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            #[cfg(feature = "tls")]
            Transport::Tls(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Tcp(s) => Pin::new(s).poll_flush(cx),
            #[cfg(feature = "tls")]
            Transport::Tls(s) => Pin::new(s).poll_flush(cx),
            Transport::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            #[cfg(feature = "tls")]
            Transport::Tls(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn listener() -> (tokio::net::TcpListener, Addr) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = Addr::Tcp {
            host: "127.0.0.1".into(),
            port: listener.local_addr().unwrap().port(),
        };
        (listener, addr)
    }

    #[tokio::test]
    async fn tcp_connections_get_keepalive_probes_when_asked() {
        let (_listener, addr) = listener().await;
        let Transport::Tcp(with) = Transport::connect(&addr, Some(Duration::from_secs(30)), None)
            .await
            .unwrap()
        else {
            panic!("expected TCP")
        };
        let sock = SockRef::from(&with);
        assert!(sock.keepalive().unwrap());
        #[cfg(target_os = "linux")]
        {
            assert_eq!(sock.tcp_keepalive_time().unwrap(), Duration::from_secs(30));
            assert_eq!(
                sock.tcp_keepalive_interval().unwrap(),
                Duration::from_secs(10)
            );
            assert_eq!(sock.tcp_keepalive_retries().unwrap(), 3);
        }
        assert!(with.nodelay().unwrap());
        let Transport::Tcp(without) = Transport::connect(&addr, None, None).await.unwrap() else {
            panic!("expected TCP")
        };
        assert!(!SockRef::from(&without).keepalive().unwrap());
    }

    #[tokio::test]
    async fn the_shutdown_handle_closes_the_socket_for_the_peer() {
        use tokio::io::AsyncReadExt;
        let (listener, addr) = listener().await;
        let transport = Transport::connect(&addr, None, None).await.unwrap();
        let (mut peer, _) = listener.accept().await.unwrap();
        transport.shutdown_handle().unwrap().shutdown();
        let mut buf = [0u8; 1];
        let n = tokio::time::timeout(Duration::from_secs(2), peer.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(n, 0, "the peer should see the connection end");
        drop(transport);
    }
}
