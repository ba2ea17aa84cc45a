//! Following failovers: a subscription to `+switch-master` on a sentinel (moving to another
//! sentinel when that one goes), and polling as the backstop for a missed event.

use std::sync::Arc;

use futures::StreamExt;
use tokio::task::JoinHandle;

use super::SentinelState;
use crate::config::Addr;
use crate::conn::Mode;
use crate::pubsub::{Event, Subscriber, SubscriberOptions};

/// The channel sentinels announce a new master on.
const SWITCH_MASTER: &str = "+switch-master";

/// Watches the sentinels for the master moving until aborted (when the client goes).
pub(crate) fn watch(state: Arc<SentinelState>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut poll = tokio::time::interval(state.options().poll_interval);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        poll.tick().await;
        let mut events: Option<Subscriber> = None;
        loop {
            if events.is_none() {
                events = subscribe(&state).await;
            }
            let event = async {
                match events.as_mut() {
                    Some(s) => s.next().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                event = event => match event {
                    Some(Event::Message(m)) => {
                        if let Some(addr) = switched_to(&m.payload, &state.options().master_name) {
                            state.set_primary(addr);
                        }
                    }
                    // The subscription was down or fell behind: an event may have been missed.
                    Some(_) => check(&state).await,
                    None => events = None,
                },
                _ = poll.tick() => check(&state).await,
            }
        }
    })
}

/// A subscription to `+switch-master` on the sentinels in turn, or `None` when none answers
/// now (polling carries on meanwhile).
async fn subscribe(state: &Arc<SentinelState>) -> Option<Subscriber> {
    let subscribed = state.connect_any(|| async {
        let opts = state.sentinel_options(None, Mode::Subscriber);
        let sub = Subscriber::open(opts, SubscriberOptions::default(), None).await?;
        sub.subscribe(SWITCH_MASTER).await?;
        Ok::<_, crate::Error>(sub)
    });
    match subscribed.await {
        Ok(sub) => Some(sub),
        Err(e) => {
            tracing::debug!(error = %e, "no sentinel to watch for failovers now; polling");
            None
        }
    }
}

/// Asks the sentinels where the master is now; a move moves every connection.
async fn check(state: &SentinelState) {
    if let Err(e) = state.primary(true).await {
        tracing::warn!(error = %e, "asking the sentinels for the master failed");
    }
}

/// The new master in a `+switch-master` payload (`name old-ip old-port new-ip new-port`),
/// when it is about `name`.
fn switched_to(payload: &[u8], name: &str) -> Option<Addr> {
    let text = std::str::from_utf8(payload).ok()?;
    let words: Vec<&str> = text.split(' ').collect();
    match words[..] {
        [n, _, _, ip, port] if n == name => Some(Addr::Tcp {
            host: ip.to_string(),
            port: port.parse().ok()?,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switch_master_payloads_name_the_new_master() {
        assert_eq!(
            switched_to(b"mymaster 10.0.0.1 6379 10.0.0.2 6380", "mymaster"),
            Some(Addr::Tcp {
                host: "10.0.0.2".into(),
                port: 6380
            })
        );
        assert_eq!(switched_to(b"other 1 2 3 4", "mymaster"), None);
        assert_eq!(switched_to(b"mymaster 10.0.0.1 6379", "mymaster"), None);
        assert_eq!(switched_to(b"mymaster a 1 b x", "mymaster"), None);
    }
}
