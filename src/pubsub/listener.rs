//! [`Listener`]: Carmine's pub/sub listener, routing messages to async handlers.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::message::{Event, Message, MessageKind};
use super::subscriber::{Subscriber, SubscriberHandle};
use crate::client::Client;
use crate::error::Result;

/// An async message handler.
pub type Handler = Arc<dyn Fn(Message) -> BoxFuture<'static, ()> + Send + Sync>;

type EventHandler = Arc<dyn Fn(Event) -> BoxFuture<'static, ()> + Send + Sync>;

/// Wraps an async closure as a [`Handler`].
pub fn handler<F, Fut>(f: F) -> Handler
where
    F: Fn(Message) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    Arc::new(move |m| f(m).boxed())
}

#[derive(Default)]
struct Routes {
    channels: HashMap<Bytes, Handler>,
    patterns: HashMap<Bytes, Handler>,
    shards: HashMap<Bytes, Handler>,
    events: Option<EventHandler>,
}

/// Routes messages to handlers by channel or pattern, on a [`Subscriber`] it runs in a task.
///
/// A message published to a channel that is subscribed both directly and through a pattern
/// reaches both handlers, as in Carmine. Handlers run one at a time, in message order; one
/// that panics is contained (the panic is logged) and the listener carries on. Connection
/// events ([`Event::Reconnected`], [`Event::Lagged`]) go to the [`on_event`](Self::on_event)
/// handler.
///
/// ```no_run
/// # async fn demo(client: kermes::Client) -> kermes::Result<()> {
/// use kermes::pubsub::Listener;
///
/// let listener = Listener::new(&client).await?;
/// listener.on_channel("orders", |m| async move { println!("order {:?}", m.payload) }).await?;
/// listener.on_pattern("audit.*", |m| async move { println!("{}", m.channel_str()) }).await?;
/// listener.on_event(|e| async move { eprintln!("pub/sub: {e:?}") });
/// // ...
/// listener.close().await;
/// # Ok(()) }
/// ```
pub struct Listener {
    handle: SubscriberHandle,
    routes: Arc<Mutex<Routes>>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Option<Subscriber>>>,
}

fn is_pattern(key: &str) -> bool {
    key.contains(['*', '?', '['])
}

impl Listener {
    /// Starts a listener with no handlers on a new connection.
    pub async fn new(client: &Client) -> Result<Listener> {
        let subscriber = client.subscriber().await?;
        let handle = subscriber.handle();
        let routes = Arc::new(Mutex::new(Routes::default()));
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(dispatch(subscriber, routes.clone(), stopped));
        Ok(Listener {
            handle,
            routes,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// Starts a listener from a map of channel or pattern to handler, as Carmine's
    /// `with-new-pubsub-listener` takes; keys with glob characters (`*`, `?`, `[`) are
    /// patterns.
    pub async fn from_map(client: &Client, handlers: HashMap<String, Handler>) -> Result<Listener> {
        let listener = Listener::new(client).await?;
        for (key, h) in handlers {
            if is_pattern(&key) {
                listener.add(MessageKind::Pattern, key.into(), h).await?;
            } else {
                listener.add(MessageKind::Channel, key.into(), h).await?;
            }
        }
        Ok(listener)
    }

    fn routes(&self) -> std::sync::MutexGuard<'_, Routes> {
        self.routes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn add(&self, kind: MessageKind, key: Bytes, h: Handler) -> Result<()> {
        {
            let mut routes = self.routes();
            let map = match kind {
                MessageKind::Channel => &mut routes.channels,
                MessageKind::Pattern => &mut routes.patterns,
                MessageKind::Shard => &mut routes.shards,
            };
            map.insert(key.clone(), h);
        }
        match kind {
            MessageKind::Channel => self.handle.subscribe(&key).await,
            MessageKind::Pattern => self.handle.psubscribe(&key).await,
            MessageKind::Shard => self.handle.ssubscribe(&key).await,
        }
    }

    /// Handles messages published to `channel` (and subscribes to it).
    pub async fn on_channel<F, Fut>(&self, channel: impl Into<Bytes>, f: F) -> Result<()>
    where
        F: Fn(Message) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.add(MessageKind::Channel, channel.into(), handler(f))
            .await
    }

    /// Handles messages matching `pattern` (and subscribes to it).
    pub async fn on_pattern<F, Fut>(&self, pattern: impl Into<Bytes>, f: F) -> Result<()>
    where
        F: Fn(Message) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.add(MessageKind::Pattern, pattern.into(), handler(f))
            .await
    }

    /// Handles messages of a shard channel (and subscribes to it).
    pub async fn on_shard_channel<F, Fut>(&self, channel: impl Into<Bytes>, f: F) -> Result<()>
    where
        F: Fn(Message) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.add(MessageKind::Shard, channel.into(), handler(f))
            .await
    }

    /// Handles connection events: reconnects (messages may have been missed) and lag.
    pub fn on_event<F, Fut>(&self, f: F)
    where
        F: Fn(Event) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.routes().events = Some(Arc::new(move |e| f(e).boxed()));
    }

    /// Removes the handler of a channel or pattern and unsubscribes from it.
    pub async fn remove(&self, key: &str) -> Result<()> {
        let bytes = Bytes::copy_from_slice(key.as_bytes());
        let (channel, pattern, shard) = {
            let mut routes = self.routes();
            (
                routes.channels.remove(&bytes).is_some(),
                routes.patterns.remove(&bytes).is_some(),
                routes.shards.remove(&bytes).is_some(),
            )
        };
        if channel {
            self.handle.unsubscribe(&bytes).await?;
        }
        if pattern {
            self.handle.punsubscribe(&bytes).await?;
        }
        if shard {
            self.handle.sunsubscribe(&bytes).await?;
        }
        Ok(())
    }

    /// Stops the listener: the running handler finishes, every subscription is dropped
    /// (confirmed by the server), and the connection closes.
    pub async fn close(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take()
            && let Ok(Some(subscriber)) = task.await
            && let Err(e) = subscriber.close().await
        {
            tracing::debug!(error = %e, "listener closed while its connection was down");
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Runs handlers until stopped (handing the subscriber back for a clean close) or until the
/// subscriber ends.
async fn dispatch(
    mut subscriber: Subscriber,
    routes: Arc<Mutex<Routes>>,
    mut stop: oneshot::Receiver<()>,
) -> Option<Subscriber> {
    loop {
        let event = tokio::select! {
            _ = &mut stop => return Some(subscriber),
            event = subscriber.next() => match event {
                Some(e) => e,
                None => return None,
            },
        };
        let work = {
            let routes = routes.lock().unwrap_or_else(PoisonError::into_inner);
            match &event {
                Event::Message(m) => {
                    let map = match m.kind {
                        MessageKind::Channel => &routes.channels,
                        MessageKind::Shard => &routes.shards,
                        MessageKind::Pattern => &routes.patterns,
                    };
                    let key = match m.kind {
                        MessageKind::Pattern => m.pattern.as_ref().unwrap_or(&m.channel),
                        _ => &m.channel,
                    };
                    map.get(key).map(|h| h(m.clone()))
                }
                other => routes.events.as_ref().map(|h| h(other.clone())),
            }
        };
        if let Some(work) = work
            && AssertUnwindSafe(work).catch_unwind().await.is_err()
        {
            tracing::error!(
                ?event,
                "a pub/sub handler panicked; the listener carries on"
            );
        }
    }
}
