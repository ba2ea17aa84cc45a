//! The one error type of kermes.

use std::fmt;

/// A specialised `Result` whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error reply from the server, such as `WRONGTYPE Operation against a key holding the
/// wrong kind of value` or `MOVED 3999 127.0.0.1:6381`.
///
/// The first word is the [`code`](ServerError::code); the rest is the
/// [`message`](ServerError::message).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ServerError {
    text: String,
}

impl ServerError {
    /// Builds a server error from the text the server sent (without the leading `-`).
    pub fn new(text: impl Into<String>) -> Self {
        ServerError { text: text.into() }
    }

    /// The error code: the first word of the reply, e.g. `ERR`, `WRONGTYPE`, `NOSCRIPT`,
    /// `MOVED`.
    pub fn code(&self) -> &str {
        self.text.split(' ').next().unwrap_or("")
    }

    /// What follows the code.
    pub fn message(&self) -> &str {
        match self.text.split_once(' ') {
            Some((_, rest)) => rest,
            None => "",
        }
    }

    /// The whole text of the error reply.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Debug for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ServerError").field(&self.text).finish()
    }
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for ServerError {}

/// Everything that can go wrong talking to Redis.
///
/// The error is opaque; ask it what it is with the `is_*` predicates, and for an error reply
/// read its code and message through [`server_error`](Error::server_error).
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: Kind,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
    /// The command never reached the server (not connected, or refused before sending):
    /// trying it elsewhere cannot run it twice.
    unsent: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    /// The server answered with an error reply.
    Server(ServerError),
    /// A socket read or write failed.
    Io,
    /// The connection was closed (by the server, by a fault, or because the client is gone),
    /// so the command's outcome is unknown or it was never sent.
    Closed,
    /// Connecting, or the handshake, failed.
    Connect,
    /// No reply within the configured time.
    Timeout,
    /// The server sent bytes that are not valid RESP, or broke a configured limit.
    Protocol,
    /// A reply could not be converted to the type asked for.
    Type,
    /// An invalid URL, option or argument.
    Config,
    /// A command sent where it cannot work (MULTI or SELECT on a shared connection,
    /// SUBSCRIBE outside a subscriber, CLIENT REPLY anywhere).
    Usage,
    /// The connection pool could not hand out a connection.
    Pool,
    /// A transaction did not run: a watched key changed (or `atomic` ran out of attempts).
    Aborted,
}

impl Error {
    pub(crate) fn new(kind: Kind, message: impl Into<String>) -> Self {
        Error {
            inner: Box::new(Inner {
                kind,
                message: message.into(),
                source: None,
                unsent: false,
            }),
        }
    }

    /// A closed connection the command never reached.
    pub(crate) fn unsent(message: impl Into<String>) -> Self {
        let mut e = Error::closed(message);
        e.inner.unsent = true;
        e
    }

    /// True when the command is known not to have reached the server, so trying it again
    /// cannot run it twice.
    pub(crate) fn is_unsent(&self) -> bool {
        self.inner.unsent || matches!(self.inner.kind, Kind::Connect)
    }

    pub(crate) fn with_source(
        mut self,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        self.inner.source = Some(Box::new(source));
        self
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::new(Kind::Io, context).with_source(source)
    }

    pub(crate) fn closed(message: impl Into<String>) -> Self {
        Error::new(Kind::Closed, message)
    }

    pub(crate) fn protocol(message: impl Into<String>) -> Self {
        Error::new(Kind::Protocol, message)
    }

    pub(crate) fn type_error(message: impl Into<String>) -> Self {
        Error::new(Kind::Type, message)
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        Error::new(Kind::Config, message)
    }

    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Error::new(Kind::Usage, message)
    }

    pub(crate) fn timeout(message: impl Into<String>) -> Self {
        Error::new(Kind::Timeout, message)
    }

    /// A short name of the error's kind, for tracing's `error.type`: the server's error
    /// code (`WRONGTYPE`), or `io`, `closed`, `connect`, `timeout`, `protocol`, `type`,
    /// `config`, `usage`, `pool`, `aborted`.
    pub(crate) fn kind_name(&self) -> &str {
        match &self.inner.kind {
            Kind::Server(e) => e.code(),
            _ => crate::stats::ERROR_KINDS[self.kind_index()],
        }
    }

    /// The error's place in [`crate::stats::ERROR_KINDS`].
    pub(crate) fn kind_index(&self) -> usize {
        match &self.inner.kind {
            Kind::Server(_) => 0,
            Kind::Io => 1,
            Kind::Closed => 2,
            Kind::Connect => 3,
            Kind::Timeout => 4,
            Kind::Protocol => 5,
            Kind::Type => 6,
            Kind::Config => 7,
            Kind::Usage => 8,
            Kind::Pool => 9,
            Kind::Aborted => 10,
        }
    }

    /// A copy with the same kind and text, for errors that must be reported twice. The
    /// source chain is flattened into the text because sources are not `Clone`.
    pub(crate) fn duplicate(&self) -> Self {
        let mut message = self.inner.message.clone();
        if let Some(source) = &self.inner.source {
            message.push_str(": ");
            message.push_str(&source.to_string());
        }
        Error::new(self.inner.kind.clone(), message)
    }

    /// An error for a command that was in flight when its connection died of `cause`: a
    /// protocol, I/O or timeout failure keeps its kind, anything else reads as a closed
    /// connection.
    pub(crate) fn in_flight(cause: &Error) -> Self {
        let kind = match cause.inner.kind {
            Kind::Protocol => Kind::Protocol,
            Kind::Io => Kind::Io,
            // The connection was declared unresponsive.
            Kind::Timeout => Kind::Timeout,
            _ => Kind::Closed,
        };
        Error::new(kind, format!("connection lost before the reply: {cause}"))
    }

    /// The server answered with an error reply; [`server_error`](Error::server_error) has it.
    pub fn is_server(&self) -> bool {
        matches!(self.inner.kind, Kind::Server(_))
    }

    /// A socket read or write failed.
    pub fn is_io(&self) -> bool {
        matches!(self.inner.kind, Kind::Io)
    }

    /// The connection closed before the reply came, or the command could not be sent because
    /// the connection was down. Whether a write command took effect is unknown.
    pub fn is_closed(&self) -> bool {
        matches!(self.inner.kind, Kind::Closed)
    }

    /// Connecting or the connection handshake (HELLO, AUTH, SELECT) failed.
    pub fn is_connect(&self) -> bool {
        matches!(self.inner.kind, Kind::Connect)
    }

    /// No reply came within the configured response or connect timeout.
    pub fn is_timeout(&self) -> bool {
        matches!(self.inner.kind, Kind::Timeout)
    }

    /// The server sent malformed RESP or broke a decoder limit; the connection was dropped.
    pub fn is_protocol(&self) -> bool {
        matches!(self.inner.kind, Kind::Protocol)
    }

    /// The reply did not fit the type asked for (e.g. a string read as an integer).
    pub fn is_type(&self) -> bool {
        matches!(self.inner.kind, Kind::Type)
    }

    /// An invalid URL, option or argument.
    pub fn is_config(&self) -> bool {
        matches!(self.inner.kind, Kind::Config)
    }

    /// A command sent where it cannot work: a command that changes its connection's
    /// state on a shared connection, SUBSCRIBE and its kin outside a subscriber, a command
    /// kermes never runs (CLIENT REPLY). The message says where it can run.
    pub fn is_usage(&self) -> bool {
        matches!(self.inner.kind, Kind::Usage)
    }

    /// The connection pool could not hand out a connection in time.
    pub fn is_pool(&self) -> bool {
        matches!(self.inner.kind, Kind::Pool)
    }

    /// A transaction did not run because a watched key changed, or
    /// [`atomic`](crate::atomic) gave up after its last attempt.
    pub fn is_aborted(&self) -> bool {
        matches!(self.inner.kind, Kind::Aborted)
    }

    /// The server's error reply, when this error is one.
    pub fn server_error(&self) -> Option<&ServerError> {
        match &self.inner.kind {
            Kind::Server(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ServerError> for Error {
    fn from(e: ServerError) -> Self {
        Error::new(Kind::Server(e), String::new())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("kermes::Error");
        d.field("kind", &self.inner.kind);
        if !self.inner.message.is_empty() {
            d.field("message", &self.inner.message);
        }
        if let Some(source) = &self.inner.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match &self.inner.kind {
            Kind::Server(e) => return write!(f, "server error: {e}"),
            Kind::Io => "I/O error",
            Kind::Closed => "connection closed",
            Kind::Connect => "connect failed",
            Kind::Timeout => "timed out",
            Kind::Protocol => "protocol error",
            Kind::Type => "type error",
            Kind::Config => "invalid argument",
            Kind::Usage => "not allowed here",
            Kind::Pool => "pool error",
            Kind::Aborted => "transaction aborted",
        };
        write!(f, "{what}")?;
        if !self.inner.message.is_empty() {
            write!(f, ": {}", self.inner.message)?;
        }
        if let Some(source) = &self.inner.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_ref()
            .map(|s| s.as_ref() as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_is_send_sync_and_one_pointer_wide() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Error>();
        assert_eq!(std::mem::size_of::<Error>(), std::mem::size_of::<usize>());
    }

    #[test]
    fn server_error_splits_code_and_message() {
        let e =
            ServerError::new("WRONGTYPE Operation against a key holding the wrong kind of value");
        assert_eq!(e.code(), "WRONGTYPE");
        assert_eq!(
            e.message(),
            "Operation against a key holding the wrong kind of value"
        );
        let bare = ServerError::new("NOAUTH");
        assert_eq!(bare.code(), "NOAUTH");
        assert_eq!(bare.message(), "");
        let err = Error::from(e.clone());
        assert!(err.is_server());
        assert_eq!(err.server_error(), Some(&e));
        assert!(err.to_string().contains("WRONGTYPE"));
    }
}
