//! The task that owns a connection for its whole life: drives the socket, and when it dies
//! fails what was in flight, reconnects with backoff, restores the connection's state and
//! tells the layers above.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{broadcast, mpsc};

use super::driver::{self, Exit};
use super::handshake::{self, Socket};
use super::subscriptions::Subscriptions;
use super::{ConnectionEvent, Options, Payload, Push, Request};
use crate::error::{Error, Result};
use crate::resp::Value;

pub(crate) async fn run(
    id: u64,
    mut socket: Socket,
    opts: Options,
    mut requests: mpsc::Receiver<Request>,
    push: broadcast::Sender<Push>,
    up: Arc<AtomicBool>,
    stats: Arc<crate::stats::ConnStats>,
) {
    let mut subs = Subscriptions::default();
    let mut generation = 0;
    loop {
        let cause = match driver::drive(&mut socket, &mut requests, &push, &mut subs, &opts, &stats)
            .await
        {
            Exit::HandlesGone => {
                // A cluster node dropped from the map: what was read through it is tracked
                // by nobody now.
                flush_cache(&opts);
                return;
            }
            Exit::Died(cause) => cause,
        };
        up.store(false, Ordering::Relaxed);
        flush_cache(&opts);
        tracing::warn!(connection = id, generation, error = %cause, "connection lost");
        opts.endpoint.invalidate();
        publish(
            &opts,
            ConnectionEvent::Disconnected {
                connection: id,
                generation,
                reason: cause.to_string(),
            },
        );
        if !opts.reconnect {
            close(&mut requests, &mut subs, &cause).await;
            return;
        }
        let Some(connected) = reestablish(id, &opts, &mut requests, &mut subs, cause).await else {
            return;
        };
        socket = connected.socket;
        stats.reconnected(&connected.addr);
        // Invalidations sent while the connection was down are lost: what it cached may be
        // stale. Tracking is on again (the handshake turned it on).
        flush_cache(&opts);
        up.store(true, Ordering::Relaxed);
        generation += 1;
        // Before any frame of the new connection, so readers know what they missed.
        let _ = push.send(Push::Reconnected { generation });
        publish(
            &opts,
            ConnectionEvent::Reconnected {
                connection: id,
                generation,
                addr: connected.addr,
            },
        );
    }
}

/// Flushes the client-side cache a shared connection keeps fresh.
fn flush_cache(opts: &Options) {
    if let (Some(cache), super::Mode::Shared) = (&opts.tracking, opts.mode) {
        cache.flush();
    }
}

fn publish(opts: &Options, event: ConnectionEvent) {
    if let Some(events) = &opts.events {
        let _ = events.send(event);
    }
}

/// Reconnects with backoff. Requests that arrive while an attempt is under way wait for it;
/// those that arrive between attempts fail at once with the last error, never hang
/// (subscription changes among them are recorded, to be made on reconnect). Returns `None`
/// when every handle is gone or the policy gives up.
async fn reestablish(
    id: u64,
    opts: &Options,
    requests: &mut mpsc::Receiver<Request>,
    subs: &mut Subscriptions,
    mut last_error: Error,
) -> Option<handshake::Connected> {
    let policy = &opts.config.reconnect;
    let cause = last_error.to_string();
    let mut failures: u32 = 0;
    let mut changed = opts.endpoint.changed();
    if let Some(rx) = &mut changed {
        rx.mark_unchanged();
    }
    loop {
        if failures > 0 {
            let pause = tokio::time::sleep(policy.delay(failures - 1));
            tokio::pin!(pause);
            loop {
                tokio::select! {
                    _ = &mut pause => break,
                    // Where to go changed (a failover is over): no point sleeping on.
                    _ = endpoint_changed(&mut changed) => break,
                    request = requests.recv() => match request {
                        Some(r) => fail(r, subs, &last_error),
                        None => return None,
                    },
                }
            }
        }
        match handshake::connect(opts).await {
            Ok(connected) => {
                tracing::info!(connection = id, addr = %connected.addr, attempts = failures + 1, cause = %cause, "reconnected");
                return Some(connected);
            }
            Err(e) => {
                failures += 1;
                opts.endpoint.invalidate();
                tracing::warn!(connection = id, attempt = failures, error = %e, "reconnect failed");
                last_error = e;
                while let Ok(r) = requests.try_recv() {
                    fail(r, subs, &last_error);
                }
                if policy.max_attempts.is_some_and(|max| failures >= max) {
                    close(requests, subs, &last_error).await;
                    return None;
                }
            }
        }
    }
}

/// Waits for the endpoint's "resolve again" signal; forever when it has none.
async fn endpoint_changed(changed: &mut Option<tokio::sync::watch::Receiver<u64>>) {
    let Some(rx) = changed else {
        return std::future::pending().await;
    };
    if rx.changed().await.is_err() {
        // The endpoint's source is gone: nothing will change any more.
        *changed = None;
        std::future::pending::<()>().await;
    }
}

/// Fails a request that cannot be sent; a subscription change is still recorded.
fn fail(request: Request, subs: &mut Subscriptions, cause: &Error) {
    let reply: Result<Value> = match request.payload {
        Payload::Subscription(change) if !request.tx.is_closed() => {
            subs.apply(&change);
            Err(Error::unsent(format!(
                "not connected ({cause}); the subscription change is recorded and made on \
                 reconnect"
            )))
        }
        _ => Err(Error::unsent(format!("not connected: {cause}"))),
    };
    let _ = request.tx.send(reply);
}

/// Stops taking requests and fails the ones already queued.
async fn close(requests: &mut mpsc::Receiver<Request>, subs: &mut Subscriptions, cause: &Error) {
    requests.close();
    while let Some(r) = requests.recv().await {
        let _ =
            r.tx.send(Err(Error::unsent(format!("not connected: {cause}"))));
    }
    *subs = Subscriptions::default();
}
