//! The loop that owns one socket: gathers queued requests into one write, flushes, matches
//! replies to requests in order and hands everything else (push frames, pub/sub messages,
//! MONITOR lines) to the push channel, all in one task so that reading never waits on
//! writing. It also watches the connection's health. Every connection kind runs this loop;
//! they differ only in how a frame is told apart from a reply.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{Sink, Stream};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_util::sync::ReusableBoxFuture;

use super::endpoint::Role;
use super::handshake::Socket;
use super::subscriptions::{SubChange, Subscriptions, is_confirmation, is_message};
use super::{DroppedHook, Mode, Options, Payload, Push, Request};
use crate::cmd::cmd;
use crate::error::{Error, Result};
use crate::resp::Value;

/// What a poll of the driver ends with.
enum Step {
    /// Give every task the scheduler has ready a turn before going on: before flushing (see
    /// [`Driver::defer_flush`]) or before reading further replies (see
    /// [`Driver::dispatch_chunk`]).
    Yield,
    Exit(Exit),
}

/// Why a driver stopped.
pub(crate) enum Exit {
    /// Every handle is gone (and, for multiplexed connections, every reply delivered).
    HandlesGone,
    /// The socket failed or the connection was found unhealthy; the error says how. Pending
    /// requests were already failed.
    Died(Error),
}

/// A request written and awaiting its replies. Kept small: one per command in flight.
struct Pending {
    /// Where its reply goes; nobody listens for the driver's own requests.
    tx: oneshot::Sender<Result<Value>>,
    /// Replies still to read for this request.
    remaining: u32,
    /// A blocking command may wait for its reply as long as it likes.
    blocking: bool,
    /// The driver's own request (a health PING, a resubscription): no caller to abandon it.
    internal: bool,
    /// Replies read so far, for requests that expect more than one.
    gathered: Vec<Value>,
    /// A subscription change: its replies are confirmation frames.
    change: Option<Box<SubChange>>,
}

impl Pending {
    fn new(tx: oneshot::Sender<Result<Value>>, replies: usize, blocking: bool) -> Pending {
        Pending {
            tx,
            remaining: u32::try_from(replies).unwrap_or(u32::MAX),
            blocking,
            internal: false,
            gathered: Vec::new(),
            change: None,
        }
    }

    /// The driver's own request, whose reply nobody reads.
    fn internal(replies: usize) -> Pending {
        let (tx, _) = oneshot::channel();
        Pending {
            internal: true,
            ..Pending::new(tx, replies, false)
        }
    }
}

/// Most commands gathered into one write. Flushing a few dozen at a time lets the server
/// start on them while the rest are encoded, instead of client and server taking turns.
const BATCH_COMMANDS: usize = 32;

/// A shared connection holds a small batch back while this many batches await their
/// replies: see [`Driver::held`]. Measured (`benches/peers/RESULTS.md`): 2 gives the
/// largest batches at high concurrency but leaves the server idle between them at c=50; 4
/// keeps both near their best.
const BATCHES_IN_FLIGHT: usize = 4;

/// Bounds on the replies a shared connection hands out before letting their callers run:
/// see [`Driver::dispatch_chunk`].
const DISPATCH_CHUNK_MIN: usize = 8;
const DISPATCH_CHUNK_MAX: usize = 16;

/// A write buffer that grew past this for one large value is given back after the flush.
const WRITE_BUFFER_KEEP: usize = 4 * 1024 * 1024;

/// Runs one socket until it fails or every handle is gone. `subs` is the connection's
/// subscription set: made again first thing, and kept up to date.
pub(crate) async fn drive(
    socket: &mut Socket,
    requests: &mut mpsc::Receiver<Request>,
    push: &broadcast::Sender<Push>,
    subs: &mut Subscriptions,
    opts: &Options,
    stats: &crate::stats::ConnStats,
) -> Exit {
    let mut state = Driver {
        stats,
        written: 0,
        read: socket.codec().consumed(),
        socket,
        requests,
        push,
        subs,
        mode: opts.mode,
        pending: VecDeque::new(),
        requests_closed: false,
        max_in_flight: opts.config.max_in_flight,
        max_batch_bytes: opts.config.max_batch_bytes,
        health: Health::new(opts.idle_ping, opts.unresponsive),
        frames: 0,
        completed: 0,
        moved: opts.endpoint.moved().map(Moved::new),
        primary_only: opts.endpoint.role() == Some(Role::Primary),
        demoted: false,
        on_dropped: opts.on_dropped.clone(),
        tracking: match opts.mode {
            Mode::Shared => opts.tracking.clone(),
            _ => None,
        },
        defer_flush: tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread),
        deferred: false,
        batches: VecDeque::new(),
        held: 0,
        flushing: false,
    };
    for change in state.subs.restore() {
        state.send_change(None, change);
    }
    let exit = loop {
        match poll_fn(|cx| state.poll(cx)).await {
            Step::Exit(exit) => break exit,
            Step::Yield => tokio::task::yield_now().await,
        }
    };
    if let Exit::Died(err) = &exit {
        for p in state.pending.drain(..) {
            state.stats.abandoned(u64::from(p.remaining));
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
    /// This connection's counters, written by this task only.
    stats: &'a crate::stats::ConnStats,
    /// Commands encoded by this gathering, for the counters.
    written: u64,
    /// The codec's byte count when the counters last saw it.
    read: u64,
    socket: &'a mut Socket,
    requests: &'a mut mpsc::Receiver<Request>,
    push: &'a broadcast::Sender<Push>,
    subs: &'a mut Subscriptions,
    mode: Mode,
    pending: VecDeque<Pending>,
    requests_closed: bool,
    max_in_flight: usize,
    max_batch_bytes: usize,
    health: Option<Health>,
    /// Frames read so far: progress, for the health check.
    frames: u64,
    /// Requests completed so far: a change of the oldest one in flight.
    completed: u64,
    /// Fires when the endpoint says every connection must move (a failover).
    moved: Option<Moved>,
    /// The connection must be to a primary: a READONLY reply means it no longer is.
    primary_only: bool,
    /// A READONLY reply was read: leave once the replies read so far are delivered.
    demoted: bool,
    on_dropped: Option<DroppedHook>,
    /// The client-side cache this shared connection keeps fresh with its invalidations.
    tracking: Option<Arc<crate::cache::LocalCache>>,
    /// On the multi-thread runtime, a caller that queues a command wakes the driver into
    /// its worker's next slot: it would run at once and write that one command while the
    /// caller's neighbours, ready to queue theirs, wait behind it. So when commands are
    /// already in flight (the server is busy with them; a little delay costs nothing), a
    /// small batch is held back once, through `yield_now`, until every task ready on the
    /// worker has run: then it goes out with what they queued, in one write.
    defer_flush: bool,
    /// This batch has been held back once already.
    deferred: bool,
    /// Batches written and awaiting replies, oldest first: how many requests each holds.
    batches: VecDeque<u32>,
    /// Requests gathered into the write buffer but not yet written. On a shared connection
    /// a batch smaller than [`BATCH_COMMANDS`] waits while [`BATCHES_IN_FLIGHT`] batches are
    /// out: the server is busy with them, and when the oldest is answered, its callers'
    /// next commands join this one. Written at once, a batch only ever stays the size it
    /// started at (the replies to a write of N wake N callers, whose N commands make the
    /// next write), and under the multi-thread runtime that size is one.
    held: u32,
    /// The last flush did not finish: the write buffer is being written.
    flushing: bool,
}

impl Driver<'_> {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Step> {
        loop {
            if self.mode == Mode::Exclusive && self.abandoned(cx) {
                // The caller gave up on a reply it will never read (a cancelled BLPOP):
                // close now, so the server stops blocking for it and serves nobody's data
                // to a dead request.
                return Poll::Ready(Step::Exit(Exit::Died(Error::closed(
                    "a command was abandoned before its reply; its exclusive connection was \
                     closed",
                ))));
            }
            if let Some(moved) = &mut self.moved
                && moved.poll(cx).is_ready()
            {
                return Poll::Ready(Step::Exit(Exit::Died(Error::closed(
                    "the master moved (a failover): commands in flight may or may not have run \
                     on the old one, and are not resent; reconnecting to the new master",
                ))));
            }
            // Every ready tick is checked, and the last poll leaves the timer's waker set.
            while self
                .health
                .as_mut()
                .is_some_and(|h| h.tick.poll_tick(cx).is_ready())
            {
                if let Err(e) = self.check_health() {
                    return Poll::Ready(Step::Exit(Exit::Died(e)));
                }
            }
            let in_flight = self.pending.len();
            let stopped = self.gather(cx);
            if self.defer_flush
                && self.mode == Mode::Shared
                && !self.deferred
                && in_flight > 0
                && self.pending.len() > in_flight
                && matches!(stopped, Gathered::QueueEmpty)
            {
                self.deferred = true;
                return Poll::Ready(Step::Yield);
            }
            self.deferred = false;
            let hold = self.mode == Mode::Shared
                && !self.flushing
                && !self.requests_closed
                && matches!(stopped, Gathered::QueueEmpty)
                && (self.held as usize) < BATCH_COMMANDS
                && self.batches.len() >= BATCHES_IN_FLIGHT;
            if self.held > 0 && !hold {
                self.batches.push_back(self.held);
                self.held = 0;
            }
            let mut flushed = true;
            if self.held == 0 && !self.socket.write_buffer().is_empty() {
                match Pin::new(&mut *self.socket).poll_flush(cx) {
                    Poll::Ready(Ok(())) => {
                        self.flushing = false;
                        if self.socket.write_buffer().capacity() > WRITE_BUFFER_KEEP {
                            *self.socket.write_buffer_mut() = Default::default();
                        }
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Step::Exit(Exit::Died(e))),
                    Poll::Pending => {
                        self.flushing = true;
                        flushed = false;
                    }
                }
            }
            // Read whatever arrived, whether or not the write finished: a server answering a
            // large pipeline while we still write it must never wait on us.
            let mut dispatched = 0;
            let chunk = self.dispatch_chunk();
            loop {
                if dispatched >= chunk {
                    // Their next commands go out at once, the read resumes after the flush.
                    self.deferred = true;
                    return Poll::Ready(Step::Yield);
                }
                match Pin::new(&mut *self.socket).poll_next(cx) {
                    Poll::Ready(Some(Ok(value))) => match self.dispatch(value) {
                        Ok(completed) => dispatched += usize::from(completed),
                        Err(e) => return Poll::Ready(Step::Exit(Exit::Died(e))),
                    },
                    Poll::Ready(Some(Err(e))) => return Poll::Ready(Step::Exit(Exit::Died(e))),
                    Poll::Ready(None) => {
                        return Poll::Ready(Step::Exit(Exit::Died(Error::closed(
                            "server closed the connection",
                        ))));
                    }
                    Poll::Pending => break,
                }
            }
            self.count_read();
            if self.demoted {
                return Poll::Ready(Step::Exit(Exit::Died(Error::closed(
                    "the server answered READONLY: it is a replica now (a failover); \
                     reconnecting to the master",
                ))));
            }
            if self.requests_closed {
                // A subscriber or monitor whose handles are gone has nobody to deliver to.
                let streaming = matches!(self.mode, Mode::Subscriber | Mode::Monitor);
                if streaming || (self.pending.is_empty() && self.socket.write_buffer().is_empty()) {
                    return Poll::Ready(Step::Exit(Exit::HandlesGone));
                }
            }
            // Gathering that stopped at a cap left requests queued with no waker set for the
            // queue: go again as soon as the cap is relieved (the flush finished, or replies
            // freed in-flight slots), else a quiet socket would strand those callers.
            let again = match stopped {
                // A held batch goes once replies brought the batches out below the bound.
                Gathered::QueueEmpty => self.held > 0 && self.batches.len() < BATCHES_IN_FLIGHT,
                Gathered::BatchFull => flushed,
                Gathered::InFlightFull => self.pending.len() < self.max_in_flight,
            };
            if !again {
                return Poll::Pending;
            }
        }
    }

    /// Publishes the bytes the codec decoded since the last look.
    fn count_read(&mut self) {
        let now = self.socket.codec().consumed();
        if now != self.read {
            self.stats.read(now - self.read);
            self.read = now;
        }
    }

    /// How many requests to complete before the driver yields so that their callers run.
    ///
    /// Handing out every reply that arrived before any caller runs makes client and server
    /// take turns: the server waits while the client hands out N replies and gathers N
    /// commands, then the client waits while the server runs them. Handing out a third of
    /// what is in flight (8 to 16 replies) and yielding lets those callers queue their next
    /// commands, which are written before the rest of the replies are read, so the server
    /// works on them while the client is busy. Measured (`benches/peers/RESULTS.md`): GET 64 B
    /// at c=50 rose about threefold on the current-thread runtime; a fixed 16 did worse at
    /// c=20, a third with no upper bound worse at c=100.
    fn dispatch_chunk(&self) -> usize {
        if self.mode == Mode::Shared {
            (self.pending.len() / 3).clamp(DISPATCH_CHUNK_MIN, DISPATCH_CHUNK_MAX)
        } else {
            usize::MAX
        }
    }

    /// True when the caller of a request still awaiting its reply has gone.
    fn abandoned(&mut self, cx: &mut Context<'_>) -> bool {
        self.pending
            .iter_mut()
            .any(|p| !p.internal && p.tx.poll_closed(cx).is_ready())
    }

    /// Moves queued requests into the write buffer until the queue is empty (its waker is
    /// then set) or a cap is reached.
    /// Encodes queued requests into the write buffer, up to the caps; counts what it wrote.
    fn gather(&mut self, cx: &mut Context<'_>) -> Gathered {
        let before = self.socket.write_buffer().len();
        let stopped = self.gather_requests(cx);
        if self.written > 0 {
            let bytes = self.socket.write_buffer().len().saturating_sub(before);
            self.stats
                .wrote(std::mem::take(&mut self.written), bytes as u64);
        }
        stopped
    }

    fn gather_requests(&mut self, cx: &mut Context<'_>) -> Gathered {
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
                    gathered += 1;
                    let out = self.socket.write_buffer_mut();
                    match &request.payload {
                        Payload::Args(args) => args.encode_into(out),
                        Payload::Encoded(bytes) => out.extend_from_slice(bytes),
                        Payload::Subscription(change) => {
                            let change = self.subs.apply(change);
                            self.send_change(Some(request.tx), change);
                            continue;
                        }
                    }
                    self.written += request.replies as u64;
                    self.pending.push_back(Pending::new(
                        request.tx,
                        request.replies,
                        request.blocking,
                    ));
                    self.held += 1;
                }
                Poll::Ready(None) => self.requests_closed = true,
                Poll::Pending => return Gathered::QueueEmpty,
            }
        }
        Gathered::QueueEmpty
    }

    /// Writes a recorded subscription change; with no names there is nothing to send.
    fn send_change(&mut self, tx: Option<oneshot::Sender<Result<Value>>>, change: SubChange) {
        if change.names.is_empty() {
            if let Some(tx) = tx {
                let _ = tx.send(Ok(Value::Array(Vec::new())));
            }
            return;
        }
        change.encode_into(self.socket.write_buffer_mut());
        let replies = change.names.len();
        let mut pending = match tx {
            Some(tx) => Pending::new(tx, replies, false),
            None => Pending::internal(replies),
        };
        pending.change = Some(Box::new(change));
        self.written += replies as u64;
        self.pending.push_back(pending);
        self.held += 1;
    }

    /// True when a frame is not a reply: it goes to the push channel instead.
    fn out_of_band(&mut self, value: &Value) -> bool {
        match value {
            Value::Push(items) => !self.confirms_front(items),
            Value::Array(items) if self.mode == Mode::Subscriber => {
                is_message(items) || (is_confirmation(items) && !self.confirms_front(items))
            }
            // MONITOR is the only command a monitor sends; every frame after its +OK is a line.
            _ if self.mode == Mode::Monitor => self.pending.is_empty(),
            _ => false,
        }
    }

    /// True when `items` confirms the subscription change awaiting its replies; a
    /// confirmation nobody asked for records what the server dropped.
    fn confirms_front(&mut self, items: &[Value]) -> bool {
        let answers = self
            .pending
            .front()
            .and_then(|p| p.change.as_ref())
            .is_some_and(|c| c.is_confirmed_by(items));
        if !answers
            && is_confirmation(items)
            && let Some((family, name)) = self.subs.unsolicited(items)
            && let Some(hook) = &self.on_dropped
        {
            hook(family, name);
        }
        answers
    }

    /// Hands a frame to whoever awaits it; true when that completed a request.
    fn dispatch(&mut self, value: Value) -> Result<bool> {
        self.frames += 1;
        // Ordinary replies on a command connection skip the out-of-band checks.
        let plain =
            !matches!(value, Value::Push(_)) && matches!(self.mode, Mode::Shared | Mode::Exclusive);
        if !plain && self.out_of_band(&value) {
            if let Some(cache) = &self.tracking {
                cache.on_push(&value);
            }
            let _ = self.push.send(Push::Frame(value));
            return Ok(false);
        }
        let Some(front) = self.pending.front_mut() else {
            return Err(Error::protocol(format!(
                "unexpected {} reply with no command waiting for it",
                value.kind_name()
            )));
        };
        // A refused subscription gets one error for the whole command, not one per name.
        let refused = front.change.is_some() && matches!(value, Value::Error(_));
        if self.primary_only
            && let Value::Error(e) = &value
            && e.code() == "READONLY"
        {
            self.demoted = true;
        }
        front.remaining -= 1;
        self.stats.completed(1, matches!(value, Value::Error(_)));
        if front.remaining > 0 && !refused {
            front.gathered.push(value);
            return Ok(false);
        }
        let Some(done) = self.pending.pop_front() else {
            return Ok(false);
        };
        self.completed += 1;
        if let Some(batch) = self.batches.front_mut() {
            *batch -= 1;
            if *batch == 0 {
                self.batches.pop_front();
            }
        }
        if refused && let Some(change) = &done.change {
            // One error answered the whole change: its other names count as done too.
            self.stats.abandoned(u64::from(done.remaining));
            self.subs.refused(change);
            // Restored after a reconnect and refused (a shard channel whose slot is on
            // another node now): the layer above is told, as of a dropped subscription.
            if done.internal
                && let Some(hook) = &self.on_dropped
            {
                for name in &change.names {
                    hook(change.family, name.clone());
                }
            }
        }
        let reply = if done.gathered.is_empty() || refused {
            value
        } else {
            let mut all = done.gathered;
            all.push(value);
            Value::Array(all)
        };
        // The counters first: the caller, woken on another thread, may read them at once.
        self.count_read();
        // The caller may have gone (cancelled); its reply is read and dropped here, which is
        // what keeps later replies matched to their requests.
        let _ = done.tx.send(Ok(reply));
        Ok(true)
    }

    /// On each health tick: fails the connection when the oldest request has waited past
    /// the bound with nothing read, and PINGs a connection that has been idle.
    fn check_health(&mut self) -> Result<()> {
        let Some(health) = &mut self.health else {
            return Ok(());
        };
        let now = Instant::now();
        let read = (self.frames, self.socket.read_buffer().len());
        let active = read != health.seen_read || self.completed != health.seen_completed;
        if read != health.seen_read {
            health.read_at = now;
        }
        if self.completed != health.seen_completed || self.pending.is_empty() || health.seen_idle {
            // The oldest request in flight changed since the last tick (or there is none):
            // its wait is counted from now, which is late, so a bound never fires early.
            health.front_since = now;
        }
        health.seen_idle = self.pending.is_empty();
        if active || !self.pending.is_empty() || !self.socket.write_buffer().is_empty() {
            health.active_at = now;
        }
        health.seen_read = read;
        health.seen_completed = self.completed;

        if let (Some(limit), Some(front)) = (health.unresponsive, self.pending.front())
            && !front.blocking
        {
            let waited = now - health.front_since.max(health.read_at);
            if waited >= limit {
                return Err(Error::timeout(format!(
                    "the connection is unresponsive: a command waited {waited:?} with \
                     nothing read (the bound is {limit:?})"
                )));
            }
        }
        if let Some(idle) = health.idle_ping
            && self.pending.is_empty()
            && now - health.active_at >= idle
        {
            let before = self.socket.write_buffer().len();
            cmd("PING").args.encode_into(self.socket.write_buffer_mut());
            let bytes = self.socket.write_buffer().len() - before;
            self.stats.wrote(1, bytes as u64);
            self.pending.push_back(Pending::internal(1));
            self.held += 1;
            health.active_at = now;
            health.front_since = now;
        }
        Ok(())
    }
}

/// Waits for the endpoint's "every connection must move" signal.
struct Moved {
    next: ReusableBoxFuture<'static, watch::Receiver<u64>>,
}

impl Moved {
    fn new(rx: watch::Receiver<u64>) -> Moved {
        Moved {
            next: ReusableBoxFuture::new(changed(rx)),
        }
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let rx = std::task::ready!(self.next.poll(cx));
        self.next.set(changed(rx));
        Poll::Ready(())
    }
}

async fn changed(mut rx: watch::Receiver<u64>) -> watch::Receiver<u64> {
    if rx.changed().await.is_err() {
        // The endpoint is gone with its client; nothing will move any more.
        std::future::pending::<()>().await;
    }
    rx
}

/// The health check's clock and what it saw at its last tick.
struct Health {
    tick: Interval,
    idle_ping: Option<Duration>,
    unresponsive: Option<Duration>,
    seen_read: (u64, usize),
    seen_completed: u64,
    /// Nothing was in flight at the last tick.
    seen_idle: bool,
    /// Last tick at which something had been read.
    read_at: Instant,
    /// First tick at which the oldest request in flight was seen.
    front_since: Instant,
    /// Last tick with any traffic or anything in flight.
    active_at: Instant,
}

impl Health {
    /// Ticks four times per shortest bound, so a bound is noticed within a quarter of it.
    fn new(idle_ping: Option<Duration>, unresponsive: Option<Duration>) -> Option<Health> {
        let shortest = match (idle_ping, unresponsive) {
            (None, None) => return None,
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
        };
        let period = (shortest / 4).max(Duration::from_millis(5));
        let now = Instant::now();
        let mut tick = tokio::time::interval_at(now + period, period);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Some(Health {
            tick,
            idle_ping,
            unresponsive,
            seen_read: (0, 0),
            seen_completed: 0,
            seen_idle: true,
            read_at: now,
            front_since: now,
            active_at: now,
        })
    }
}
