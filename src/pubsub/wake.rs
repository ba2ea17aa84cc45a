//! Wake-up channels of the queue and the locks: published from their scripts, subscribed by
//! whoever waits. On a cluster they are shard channels (SPUBLISH, SSUBSCRIBE): each channel
//! shares its hash tag with the keys it is about, so a wake-up stays on their shard instead
//! of crossing the whole cluster bus. Elsewhere they are plain channels, which every server
//! version has.

use super::SubscriberHandle;
use crate::client::Client;
use crate::error::Result;
use crate::value::ToArgs;

/// The command a script publishes a wake-up with, passed to it as an argument.
pub(crate) fn publish_command(client: &Client) -> &'static str {
    match client.router() {
        Some(_) => "SPUBLISH",
        None => "PUBLISH",
    }
}

/// Subscribes to a wake-up channel.
pub(crate) async fn subscribe(
    client: &Client,
    subscriber: &SubscriberHandle,
    channel: impl ToArgs,
) -> Result<()> {
    match client.router() {
        Some(_) => subscriber.ssubscribe(channel).await,
        None => subscriber.subscribe(channel).await,
    }
}

/// Gives a wake-up channel up.
pub(crate) async fn unsubscribe(
    client: &Client,
    subscriber: &SubscriberHandle,
    channel: impl ToArgs,
) -> Result<()> {
    match client.router() {
        Some(_) => subscriber.sunsubscribe(channel).await,
        None => subscriber.unsubscribe(channel).await,
    }
}
