//! What a subscriber receives.

use bytes::Bytes;

use crate::error::Result;
use crate::resp::Value;
use crate::value::FromValue;

/// How a message matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MessageKind {
    /// A channel subscribed with SUBSCRIBE.
    Channel,
    /// A pattern subscribed with PSUBSCRIBE.
    Pattern,
    /// A shard channel subscribed with SSUBSCRIBE.
    Shard,
}

/// A published message.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Message {
    /// How it matched.
    pub kind: MessageKind,
    /// The channel it was published to.
    pub channel: Bytes,
    /// The pattern that matched, for [`MessageKind::Pattern`].
    pub pattern: Option<Bytes>,
    /// The payload, as published.
    pub payload: Bytes,
}

impl Message {
    /// The payload converted, e.g. `msg.payload_as::<String>()` or `::<i64>()`.
    pub fn payload_as<T: FromValue>(&self) -> Result<T> {
        T::from_value(Value::Bulk(self.payload.clone()))
    }

    /// The channel name as text (lossy for non-UTF-8 names).
    pub fn channel_str(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.channel)
    }

    /// Parses a message frame (`message`, `pmessage`, `smessage`), RESP2 array or RESP3 push.
    pub(crate) fn from_frame(items: &[Value]) -> Option<Message> {
        let text = |i: usize| items.get(i).and_then(Value::as_bytes).cloned();
        let kind = text(0)?;
        match (&kind[..], items.len()) {
            (b"message", 3) => Some(Message {
                kind: MessageKind::Channel,
                channel: text(1)?,
                pattern: None,
                payload: text(2)?,
            }),
            (b"smessage", 3) => Some(Message {
                kind: MessageKind::Shard,
                channel: text(1)?,
                pattern: None,
                payload: text(2)?,
            }),
            (b"pmessage", 4) => Some(Message {
                kind: MessageKind::Pattern,
                pattern: text(1),
                channel: text(2)?,
                payload: text(3)?,
            }),
            _ => None,
        }
    }
}

/// An item of a subscriber's stream.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// A message.
    Message(Message),
    /// The connection was lost and re-established, and every subscription was made again.
    /// Messages published during the gap were not received.
    Reconnected,
    /// The consumer fell behind: this many events were dropped since the last one it read.
    Lagged(u64),
}

impl Event {
    /// The message, if this event is one.
    pub fn into_message(self) -> Option<Message> {
        match self {
            Event::Message(m) => Some(m),
            _ => None,
        }
    }
}
