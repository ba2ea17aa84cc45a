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
//! A slow consumer never blocks the socket and never grows memory without bound: events
//! beyond the buffer (default 4,096) are dropped and counted, and the next event the consumer
//! reads is [`Event::Lagged`] with that count.

mod listener;
mod message;
mod monitor;
mod outbox;
mod shared;
mod subscriber;

pub use listener::{Handler, Listener, handler};
pub use message::{Event, Message, MessageKind};
pub use monitor::{Monitor, MonitorEntry};
pub use shared::SharedSubscriber;
pub use subscriber::{Subscriber, SubscriberHandle, SubscriberOptions};
