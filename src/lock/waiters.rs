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

/// One channel someone waits on: its wake-up, how many wait, whether it is subscribed.
struct Entry {
    notify: Arc<Notify>,
    interested: usize,
    subscribed: bool,
}

type Registry = Arc<Mutex<HashMap<Bytes, Entry>>>;

pub(crate) struct Waiters {
    client: Client,
    /// The subscriber's handle, and the task that owns the subscriber: ended when the
    /// waiters are dropped, which closes the subscriber's connection.
    subscriber: OnceCell<(SubscriberHandle, AbortOnDrop)>,
    registry: Registry,
    /// Held while a channel is subscribed or unsubscribed, so those changes happen in the
    /// order they are decided: a late UNSUBSCRIBE of the last waiter gone can never undo the
    /// SUBSCRIBE of the next one.
    changes: Arc<tokio::sync::Mutex<()>>,
}

/// Interest in one lock's releases; dropping it gives the interest up.
pub(crate) struct Interest {
    pub(crate) notify: Arc<Notify>,
    channel: Bytes,
    registry: Registry,
    subscriber: SubscriberHandle,
    client: Client,
    changes: Arc<tokio::sync::Mutex<()>>,
}

impl Drop for Interest {
    fn drop(&mut self) {
        let last = {
            let mut registry = self.registry.lock().unwrap_or_else(PoisonError::into_inner);
            match registry.get_mut(&self.channel) {
                Some(e) => {
                    e.interested -= 1;
                    e.interested == 0
                }
                None => false,
            }
        };
        if !last {
            return;
        }
        let (subscriber, channel) = (self.subscriber.clone(), self.channel.clone());
        let (client, registry, changes) = (
            self.client.clone(),
            self.registry.clone(),
            self.changes.clone(),
        );
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _order = changes.lock().await;
                // Decided now, in order with subscriptions: someone may have come since.
                let unsubscribe = {
                    let mut registry = registry.lock().unwrap_or_else(PoisonError::into_inner);
                    match registry.get(&channel) {
                        Some(e) if e.interested == 0 => {
                            registry.remove(&channel).is_some_and(|e| e.subscribed)
                        }
                        _ => false,
                    }
                };
                if unsubscribe {
                    let _ = wake::unsubscribe(&client, &subscriber, &channel).await;
                }
            });
        }
    }
}

impl Waiters {
    pub(crate) fn new(client: &Client) -> Self {
        Waiters {
            client: client.clone(),
            subscriber: OnceCell::new(),
            registry: Arc::default(),
            changes: Arc::default(),
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
                            // `all`: a release that may let many in (a writer's, a
                            // read lock's, a fair lock's, a latch reaching zero).
                            Event::Message(m) => {
                                if let Some(e) = registry.get(&m.channel) {
                                    if &m.payload[..] == b"all" {
                                        e.notify.notify_waiters();
                                    } else {
                                        e.notify.notify_one();
                                    }
                                }
                            }
                            // Releases may have been missed: every waiter checks again.
                            _ => registry.values().for_each(|e| e.notify.notify_waiters()),
                        }
                    }
                });
                Ok::<_, crate::Error>((handle, AbortOnDrop(task)))
            })
            .await?;
        Ok(handle)
    }

    /// Registers interest in `channel`'s releases, subscribing when it is not yet.
    pub(crate) async fn interest(&self, channel_name: &str) -> Result<Interest> {
        let subscriber = self.subscriber().await?.clone();
        let channel = Bytes::copy_from_slice(channel_name.as_bytes());
        let notify = {
            let mut registry = self.registry.lock().unwrap_or_else(PoisonError::into_inner);
            let entry = registry.entry(channel.clone()).or_insert_with(|| Entry {
                notify: Arc::new(Notify::new()),
                interested: 0,
                subscribed: false,
            });
            entry.interested += 1;
            entry.notify.clone()
        };
        // From here a drop gives the interest up, whatever happens below.
        let interest = Interest {
            notify,
            channel: channel.clone(),
            registry: self.registry.clone(),
            subscriber: subscriber.clone(),
            client: self.client.clone(),
            changes: self.changes.clone(),
        };
        let _order = self.changes.lock().await;
        let needed = {
            let registry = self.registry.lock().unwrap_or_else(PoisonError::into_inner);
            registry.get(&channel).is_some_and(|e| !e.subscribed)
        };
        if needed {
            wake::subscribe(&self.client, &subscriber, channel_name).await?;
            let mut registry = self.registry.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(e) = registry.get_mut(&channel) {
                e.subscribed = true;
            }
        }
        Ok(interest)
    }
}
