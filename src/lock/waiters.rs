//! Wake-ups for waiters: one subscriber connection per [`Locks`](super::Locks), subscribed to
//! the release channel of each lock someone waits for.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::{Notify, OnceCell};

use crate::client::Client;
use crate::error::Result;
use crate::pubsub::{Event, SubscriberHandle, wake};
use crate::task::AbortOnDrop;

type Registry = Arc<Mutex<HashMap<Bytes, (Arc<Notify>, usize)>>>;

pub(crate) struct Waiters {
    client: Client,
    /// The subscriber's handle, and the task that owns the subscriber: ended when the
    /// waiters are dropped, which closes the subscriber's connection.
    subscriber: OnceCell<(SubscriberHandle, AbortOnDrop)>,
    registry: Registry,
}

/// Interest in one lock's releases; dropping it gives the interest up.
pub(crate) struct Interest {
    pub(crate) notify: Arc<Notify>,
    channel: Bytes,
    registry: Registry,
    subscriber: SubscriberHandle,
    client: Client,
}

impl Drop for Interest {
    fn drop(&mut self) {
        let mut registry = self.registry.lock().unwrap_or_else(PoisonError::into_inner);
        let last = match registry.get_mut(&self.channel) {
            Some((_, n)) => {
                *n -= 1;
                *n == 0
            }
            None => false,
        };
        if last {
            registry.remove(&self.channel);
            let (subscriber, channel) = (self.subscriber.clone(), self.channel.clone());
            let client = self.client.clone();
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    let _ = wake::unsubscribe(&client, &subscriber, &channel).await;
                });
            }
        }
    }
}

impl Waiters {
    pub(crate) fn new(client: &Client) -> Self {
        Waiters {
            client: client.clone(),
            subscriber: OnceCell::new(),
            registry: Arc::default(),
        }
    }

    async fn subscriber(&self) -> Result<&SubscriberHandle> {
        let (handle, _) = self
            .subscriber
            .get_or_try_init(|| async {
                let mut sub = self.client.subscriber().await?;
                let handle = sub.handle();
                let registry = self.registry.clone();
                let task = tokio::spawn(async move {
                    while let Some(event) = sub.next().await {
                        let registry = registry.lock().unwrap_or_else(PoisonError::into_inner);
                        match event {
                            // One release frees the lock for one holder: wake one waiter (the
                            // longest waiting), not a herd. If it loses the race to another
                            // process, that holder's release wakes the next.
                            Event::Message(m) => {
                                if let Some((notify, _)) = registry.get(&m.channel) {
                                    notify.notify_one();
                                }
                            }
                            // Releases may have been missed: every waiter checks again.
                            _ => registry.values().for_each(|(n, _)| n.notify_waiters()),
                        }
                    }
                });
                Ok::<_, crate::Error>((handle, AbortOnDrop(task)))
            })
            .await?;
        Ok(handle)
    }

    /// Registers interest in `channel`'s releases, subscribing when it is the first.
    pub(crate) async fn interest(&self, channel_name: &str) -> Result<Interest> {
        let subscriber = self.subscriber().await?.clone();
        let channel = Bytes::copy_from_slice(channel_name.as_bytes());
        let (notify, first) = {
            let mut registry = self.registry.lock().unwrap_or_else(PoisonError::into_inner);
            let entry = registry
                .entry(channel.clone())
                .or_insert_with(|| (Arc::new(Notify::new()), 0));
            entry.1 += 1;
            (entry.0.clone(), entry.1 == 1)
        };
        let interest = Interest {
            notify,
            channel: channel.clone(),
            registry: self.registry.clone(),
            subscriber: subscriber.clone(),
            client: self.client.clone(),
        };
        if first {
            wake::subscribe(&self.client, &subscriber, channel_name).await?;
        }
        Ok(interest)
    }
}
