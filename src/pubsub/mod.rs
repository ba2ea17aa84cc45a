//! Pub/Sub and MONITOR as `futures::Stream`s.
//!
//! - [`Subscriber`]: a stream of [`Event`]s on a connection of its own; subscribe and
//!   unsubscribe at any time through it or a cloned [`SubscriberHandle`]. It reconnects and
//!   resubscribes by itself, telling the consumer with [`Event::Reconnected`].
//! - [`Listener`]: Carmine's listener, routing messages to async handlers by channel or
//!   pattern.
//! - [`Monitor`]: a stream of [`MonitorEntry`]s from `MONITOR`.
//! - [`SharedSubscriber`]: on RESP3 servers, pub/sub over the client's shared multiplexed
//!   connection through push frames.
//!
//! All of them run on the client's one connection engine: they reconnect with the client's
//! backoff, restore their subscriptions (or MONITOR) and say so with a `Reconnected` event.
//!
//! A slow consumer never blocks the socket and never grows memory without bound: past the
//! buffer (default 4,096 events) the oldest events are dropped and counted, and the
//! consumer reads [`Event::Lagged`] with that count before the rest.

mod listener;
mod message;
mod monitor;
mod shards;
mod shared;
mod subscriber;
pub(crate) mod wake;

pub use listener::{Handler, Listener, handler};
pub use message::{Event, Message, MessageKind};
pub use monitor::{Monitor, MonitorEntry, MonitorEvent};
pub(crate) use shared::SharedRegistry;
pub use shared::SharedSubscriber;
pub use subscriber::{Subscriber, SubscriberHandle, SubscriberOptions};
