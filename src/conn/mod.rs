//! Multiplexed connections: a cheap handle ([`Connection`]) that queues requests for the task
//! that owns the socket, and that task, which reconnects when the socket dies.

mod driver;
mod handshake;
mod transport;

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::config::{Config, Protocol};
use crate::error::{Error, Result};
use crate::resp::Value;
use crate::value::ArgBuf;
use driver::Exit;
pub(crate) use handshake::{Socket, connect};

/// What a request writes.
pub(crate) enum Payload {
    /// One command's arguments; the driver writes the array header.
    Args(ArgBuf),
    /// Fully encoded commands (a pipeline).
    Encoded(Bytes),
}

impl Payload {
    fn encode_into(&self, out: &mut BytesMut) {
        match self {
            Payload::Args(args) => args.encode_into(out),
            Payload::Encoded(bytes) => out.extend_from_slice(bytes),
        }
    }
}

pub(crate) struct Request {
    payload: Payload,
    /// Replies the payload produces; more than one come back as one array.
    replies: usize,
    /// RESP3 (un)subscribe commands: their replies are confirmation push frames.
    push_replies: bool,
    tx: oneshot::Sender<Result<Value>>,
}

/// True for the frames that confirm a (un)subscription: in RESP3 they are push frames that
/// answer a SUBSCRIBE-family command rather than out-of-band data.
pub(crate) fn is_confirmation(items: &[Value]) -> bool {
    items.first().and_then(Value::as_bytes).is_some_and(|k| {
        matches!(
            &k[..],
            b"subscribe"
                | b"psubscribe"
                | b"ssubscribe"
                | b"unsubscribe"
                | b"punsubscribe"
                | b"sunsubscribe"
        )
    })
}

/// Where a request's reply arrives.
pub(crate) type ReplyRx = oneshot::Receiver<Result<Value>>;

/// Why a request was not queued at once.
pub(crate) enum TryRequest {
    /// The queue is full; the request and its reply receiver come back (boxed: this is the
    /// rare path, and a request holds its arguments inline).
    Full(Box<(Request, ReplyRx)>),
    /// The connection has shut down for good.
    Closed,
}

pub(crate) fn shut_down() -> Error {
    Error::closed("the connection has shut down")
}

/// The reply from a receiver, or a closed error if the connection dropped the request.
pub(crate) async fn wait_reply(reply: ReplyRx) -> Result<Value> {
    reply.await.unwrap_or_else(|_| Err(shut_down()))
}

/// Queue depth between callers and the connection task; callers wait when it is full.
const QUEUE: usize = 4096;
/// Push frames kept for a slow push consumer before it is told it lagged.
const PUSH_BUFFER: usize = 4096;

/// A handle to one multiplexed connection. Clones share the connection; the task and the
/// socket go away when the last handle is dropped.
#[derive(Clone)]
pub(crate) struct Connection {
    tx: mpsc::Sender<Request>,
    push: broadcast::Sender<Value>,
    reconnects: watch::Receiver<u64>,
    protocol: Protocol,
}

impl Connection {
    /// Connects (handshake included) and spawns the task that owns the socket. `reconnect`
    /// false makes a connection that fails every command once its socket dies, for
    /// connections whose server-side state must not silently vanish.
    pub(crate) async fn open(config: Arc<Config>, reconnect: bool) -> Result<Connection> {
        let (socket, protocol) = handshake::connect(&config).await?;
        tracing::debug!(addr = %config.addr, ?protocol, "connected");
        let (tx, rx) = mpsc::channel(QUEUE);
        let (push, _) = broadcast::channel(PUSH_BUFFER);
        let (reconnected, reconnects) = watch::channel(0);
        tokio::spawn(run(
            socket,
            config,
            reconnect,
            rx,
            push.clone(),
            reconnected,
        ));
        Ok(Connection {
            tx,
            push,
            reconnects,
            protocol,
        })
    }

    /// Sends a payload that yields `replies` replies and waits for them (as an array when
    /// more than one). Dropping the future is safe at any point: a reply nobody waits for
    /// any more is read and discarded.
    pub(crate) async fn request(&self, payload: Payload, replies: usize) -> Result<Value> {
        match self.try_request(payload, replies) {
            Ok(reply) => wait_reply(reply).await,
            Err(TryRequest::Full(full)) => {
                let (request, reply) = *full;
                self.queue_and_wait(request, reply).await
            }
            Err(TryRequest::Closed) => Err(shut_down()),
        }
    }

    /// Queues a request if the queue has room, without waiting; the receiver yields the
    /// reply. A full queue hands the request back for [`queue_and_wait`](Self::queue_and_wait).
    pub(crate) fn try_request(
        &self,
        payload: Payload,
        replies: usize,
    ) -> Result<ReplyRx, TryRequest> {
        let (tx, rx) = oneshot::channel();
        let request = Request {
            payload,
            replies,
            push_replies: false,
            tx,
        };
        match self.tx.try_send(request) {
            Ok(()) => Ok(rx),
            Err(mpsc::error::TrySendError::Full(request)) => {
                Err(TryRequest::Full(Box::new((request, rx))))
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(TryRequest::Closed),
        }
    }

    /// Waits for room in the queue (backpressure), then for the reply.
    pub(crate) async fn queue_and_wait(&self, request: Request, reply: ReplyRx) -> Result<Value> {
        if self.tx.send(request).await.is_err() {
            return Err(shut_down());
        }
        wait_reply(reply).await
    }

    /// Sends a RESP3 (un)subscribe command and waits for its `confirmations` push frames.
    pub(crate) async fn subscribe_request(
        &self,
        payload: Payload,
        confirmations: usize,
    ) -> Result<Value> {
        let (tx, rx) = oneshot::channel();
        let request = Request {
            payload,
            replies: confirmations,
            push_replies: true,
            tx,
        };
        self.queue_and_wait(request, rx).await
    }

    /// Counts reconnects: changes each time the connection is re-established.
    pub(crate) fn reconnects(&self) -> watch::Receiver<u64> {
        self.reconnects.clone()
    }

    /// Out-of-band RESP3 push frames received from now on. A receiver that falls more than
    /// 4,096 frames behind gets `RecvError::Lagged` with the count it missed.
    pub(crate) fn push_frames(&self) -> broadcast::Receiver<Value> {
        self.push.subscribe()
    }

    /// The protocol the server agreed to at the first connect.
    pub(crate) fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// True once the task has stopped for good (reconnect off, or gave up).
    pub(crate) fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

async fn run(
    mut socket: Socket,
    config: Arc<Config>,
    reconnect: bool,
    mut requests: mpsc::Receiver<Request>,
    push: broadcast::Sender<Value>,
    reconnected: watch::Sender<u64>,
) {
    loop {
        let cause = match driver::drive(&mut socket, &mut requests, &push, &config).await {
            Exit::HandlesGone => return,
            Exit::Died(cause) => cause,
        };
        tracing::warn!(addr = %config.addr, error = %cause, "connection lost");
        if !(reconnect && config.reconnect.enabled) {
            close(&mut requests, &cause).await;
            return;
        }
        match reestablish(&config, &mut requests, cause).await {
            Some(s) => socket = s,
            None => return,
        }
        reconnected.send_modify(|n| *n += 1);
    }
}

/// Reconnects with backoff. Requests that arrive while an attempt is under way wait for it;
/// those that arrive between attempts fail at once with the last error, never hang.
/// Returns `None` when every handle is gone or the policy gives up.
async fn reestablish(
    config: &Config,
    requests: &mut mpsc::Receiver<Request>,
    mut last_error: Error,
) -> Option<Socket> {
    let policy = &config.reconnect;
    let mut failures: u32 = 0;
    loop {
        if failures > 0 {
            let pause = tokio::time::sleep(policy.delay(failures - 1));
            tokio::pin!(pause);
            loop {
                tokio::select! {
                    _ = &mut pause => break,
                    request = requests.recv() => match request {
                        Some(r) => fail(r, &last_error),
                        None => return None,
                    },
                }
            }
        }
        match handshake::connect(config).await {
            Ok((socket, _)) => {
                tracing::info!(addr = %config.addr, attempts = failures + 1, "reconnected");
                return Some(socket);
            }
            Err(e) => {
                failures += 1;
                tracing::warn!(addr = %config.addr, attempt = failures, error = %e, "reconnect failed");
                last_error = e;
                while let Ok(r) = requests.try_recv() {
                    fail(r, &last_error);
                }
                if policy.max_attempts.is_some_and(|max| failures >= max) {
                    close(requests, &last_error).await;
                    return None;
                }
            }
        }
    }
}

fn fail(request: Request, cause: &Error) {
    let _ = request
        .tx
        .send(Err(Error::closed(format!("not connected: {cause}"))));
}

/// Stops taking requests and fails the ones already queued.
async fn close(requests: &mut mpsc::Receiver<Request>, cause: &Error) {
    requests.close();
    while let Some(r) = requests.recv().await {
        fail(r, cause);
    }
}
