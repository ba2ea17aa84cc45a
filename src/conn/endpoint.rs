//! Where a connection goes: asked again on every connect and reconnect, so a connection can
//! follow its server (a Sentinel failover, a cluster slot owner) without the driver knowing
//! how the address was found.

use std::fmt;

use futures::future::BoxFuture;

use crate::config::Addr;
use crate::error::Result;

/// Tells a connection where to connect. Asked before every connect and reconnect.
pub(crate) trait Endpoint: Send + Sync + fmt::Debug + 'static {
    /// The address to connect to now.
    fn resolve(&self) -> BoxFuture<'_, Result<Addr>>;
}

/// One address that never changes: a standalone server.
#[derive(Debug)]
pub(crate) struct Fixed(pub(crate) Addr);

impl Endpoint for Fixed {
    fn resolve(&self) -> BoxFuture<'_, Result<Addr>> {
        Box::pin(async move { Ok(self.0.clone()) })
    }
}
