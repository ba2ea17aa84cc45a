//! The loop that owns one socket: gathers queued requests into one write, flushes, and matches
//! replies to requests in order, all in one task so that reading never waits on writing.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::{Sink, Stream};
use tokio::sync::{broadcast, mpsc, oneshot};

use super::Request;
use super::handshake::Socket;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::resp::Value;

/// Why a driver stopped.
pub(crate) enum Exit {
    /// Every handle is gone and every reply was delivered.
    HandlesGone,
    /// The socket failed; the error says how. Pending requests were already failed.
    Died(Error),
}

struct Pending {
    tx: oneshot::Sender<Result<Value>>,
    /// Its replies are (un)subscribe confirmation push frames (RESP3).
    push_replies: bool,
    /// Replies still to read for this request.
    remaining: usize,
    /// Replies read so far, for requests that expect more than one.
    gathered: Vec<Value>,
}

/// Most commands gathered into one write. Flushing a few dozen at a time lets the server
/// start on them while the rest are encoded, instead of client and server taking turns.
const BATCH_COMMANDS: usize = 32;

/// A write buffer that grew past this for one large value is given back after the flush.
const WRITE_BUFFER_KEEP: usize = 4 * 1024 * 1024;

pub(crate) async fn drive(
    socket: &mut Socket,
    requests: &mut mpsc::Receiver<Request>,
    push: &broadcast::Sender<Value>,
    config: &Config,
) -> Exit {
    let mut state = Driver {
        socket,
        requests,
        push,
        pending: VecDeque::new(),
        requests_closed: false,
        max_in_flight: config.max_in_flight,
        max_batch_bytes: config.max_batch_bytes,
    };
    let exit = poll_fn(|cx| state.poll(cx)).await;
    if let Exit::Died(err) = &exit {
        for p in state.pending.drain(..) {
            let _ = p.tx.send(Err(Error::in_flight(err)));
        }
    }
    exit
}

/// Why gathering stopped.
enum Gathered {
    QueueEmpty,
    BatchFull,
    InFlightFull,
}

struct Driver<'a> {
    socket: &'a mut Socket,
    requests: &'a mut mpsc::Receiver<Request>,
    push: &'a broadcast::Sender<Value>,
    pending: VecDeque<Pending>,
    requests_closed: bool,
    max_in_flight: usize,
    max_batch_bytes: usize,
}

impl Driver<'_> {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Exit> {
        loop {
            let stopped = self.gather(cx);
            let mut flushed = true;
            if !self.socket.write_buffer().is_empty() {
                match Pin::new(&mut *self.socket).poll_flush(cx) {
                    Poll::Ready(Ok(())) => {
                        if self.socket.write_buffer().capacity() > WRITE_BUFFER_KEEP {
                            *self.socket.write_buffer_mut() = Default::default();
                        }
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Exit::Died(e)),
                    Poll::Pending => flushed = false,
                }
            }
            // Read whatever arrived, whether or not the write finished: a server answering a
            // large pipeline while we still write it must never wait on us.
            loop {
                match Pin::new(&mut *self.socket).poll_next(cx) {
                    Poll::Ready(Some(Ok(value))) => {
                        if let Err(e) = self.dispatch(value) {
                            return Poll::Ready(Exit::Died(e));
                        }
                    }
                    Poll::Ready(Some(Err(e))) => return Poll::Ready(Exit::Died(e)),
                    Poll::Ready(None) => {
                        return Poll::Ready(Exit::Died(Error::closed(
                            "server closed the connection",
                        )));
                    }
                    Poll::Pending => break,
                }
            }
            if self.requests_closed
                && self.pending.is_empty()
                && self.socket.write_buffer().is_empty()
            {
                return Poll::Ready(Exit::HandlesGone);
            }
            // Gathering that stopped at a cap left requests queued with no waker set for the
            // queue: go again as soon as the cap is relieved (the flush finished, or replies
            // freed in-flight slots), else a quiet socket would strand those callers.
            let again = match stopped {
                Gathered::QueueEmpty => false,
                Gathered::BatchFull => flushed,
                Gathered::InFlightFull => self.pending.len() < self.max_in_flight,
            };
            if !again {
                return Poll::Pending;
            }
        }
    }

    /// Moves queued requests into the write buffer until the queue is empty (its waker is
    /// then set) or a cap is reached.
    fn gather(&mut self, cx: &mut Context<'_>) -> Gathered {
        let mut gathered = 0;
        while !self.requests_closed {
            if self.socket.write_buffer().len() >= self.max_batch_bytes
                || gathered >= BATCH_COMMANDS
            {
                return Gathered::BatchFull;
            }
            if self.pending.len() >= self.max_in_flight {
                return Gathered::InFlightFull;
            }
            match self.requests.poll_recv(cx) {
                Poll::Ready(Some(request)) => {
                    // Its caller gave up before it was sent: do not send it at all.
                    if request.tx.is_closed() {
                        continue;
                    }
                    request.payload.encode_into(self.socket.write_buffer_mut());
                    gathered += 1;
                    self.pending.push_back(Pending {
                        tx: request.tx,
                        push_replies: request.push_replies,
                        remaining: request.replies,
                        gathered: Vec::new(),
                    });
                }
                Poll::Ready(None) => self.requests_closed = true,
                Poll::Pending => return Gathered::QueueEmpty,
            }
        }
        Gathered::QueueEmpty
    }

    fn dispatch(&mut self, value: Value) -> Result<()> {
        if let Value::Push(items) = &value {
            let answers_front = self.pending.front().is_some_and(|p| p.push_replies)
                && super::is_confirmation(items);
            if !answers_front {
                // Out-of-band data (messages, invalidations): never the reply to a request.
                let _ = self.push.send(value);
                return Ok(());
            }
        }
        let Some(front) = self.pending.front_mut() else {
            return Err(Error::protocol(format!(
                "unexpected {} reply with no command waiting for it",
                value.kind_name()
            )));
        };
        front.remaining -= 1;
        if front.remaining > 0 {
            front.gathered.push(value);
            return Ok(());
        }
        let Some(done) = self.pending.pop_front() else {
            return Ok(());
        };
        let reply = if done.gathered.is_empty() {
            value
        } else {
            let mut all = done.gathered;
            all.push(value);
            Value::Array(all)
        };
        // The caller may have gone (cancelled); its reply is read and dropped here, which is
        // what keeps later replies matched to their requests.
        let _ = done.tx.send(Ok(reply));
        Ok(())
    }
}
