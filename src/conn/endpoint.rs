//! Where a connection goes: asked again on every connect and reconnect, so a connection can
//! follow its server (a Sentinel failover, a cluster slot owner) without the driver knowing
//! how the address was found.

use std::fmt;

use futures::future::BoxFuture;
use tokio::sync::watch;

use crate::config::Addr;
use crate::error::Result;

/// The role a server must have to be used, checked with `ROLE` after the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Primary,
    Replica,
}

impl Role {
    /// True when `ROLE`'s first word names this role (either spelling).
    pub(crate) fn matches(self, word: &[u8]) -> bool {
        match self {
            Role::Primary => word == b"master" || word == b"primary",
            Role::Replica => word == b"slave" || word == b"replica",
        }
    }
}

/// Tells a connection where to connect. Asked before every connect and reconnect.
pub(crate) trait Endpoint: Send + Sync + fmt::Debug + 'static {
    /// The address to connect to now.
    fn resolve(&self) -> BoxFuture<'_, Result<Addr>>;

    /// The role the server must have; `None` takes whatever answers.
    fn role(&self) -> Option<Role> {
        None
    }

    /// A connect to the last resolved address failed, or found the wrong role: the next
    /// resolve must not trust what it knew.
    fn invalidate(&self) {}

    /// Changes whenever every connection must leave its server and resolve again (the
    /// master moved).
    fn moved(&self) -> Option<watch::Receiver<u64>> {
        None
    }

    /// Changes whenever a resolve may give another answer than before (a new cluster slot
    /// map, a new master): a connection waiting out its reconnect backoff tries at once.
    fn changed(&self) -> Option<watch::Receiver<u64>> {
        self.moved()
    }
}

/// One address that never changes: a standalone server.
#[derive(Debug)]
pub(crate) struct Fixed(pub(crate) Addr);

impl Endpoint for Fixed {
    fn resolve(&self) -> BoxFuture<'_, Result<Addr>> {
        Box::pin(async move { Ok(self.0.clone()) })
    }
}
