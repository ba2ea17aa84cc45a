//! [`Query`]: the future of one command sent through a [`Client`].

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::time::Sleep;

use crate::cache::{LocalCache, Plan};
use crate::client::Client;
use crate::cmd::{Cmd, Route};
use crate::conn::{Payload, ReplyRx, TryRequest, shut_down};
use crate::error::{Error, Result};
use crate::resp::Value;
use crate::route::{Place, refusal};
use crate::value::FromValue;

type BoxedReply<'a> = Pin<Box<dyn Future<Output = Result<Value>> + Send + 'a>>;

enum State<'a> {
    /// Not sent yet: nothing happens until the first poll.
    Start(Cmd),
    /// Queued on a shared connection; the reply comes through the receiver.
    Waiting(ReplyRx),
    /// The slow paths (a full queue, an exclusive connection), which may allocate.
    Boxed(BoxedReply<'a>),
    Done,
}

pin_project_lite::pin_project! {
    /// A command on its way: await it for the reply as `T`.
    ///
    /// Nothing is sent until the first poll. Dropping it at any point is safe: a command not
    /// yet written is never sent, and the reply to one already written is read and discarded
    /// by the connection.
    ///
    /// The reply type defaults to what the command returns (e.g. `i64` for INCR); choose
    /// another with [`to`](Query::to).
    #[must_use = "a query does nothing unless awaited"]
    pub struct Query<'a, T> {
        client: &'a Client,
        state: State<'a>,
        #[pin]
        timer: Option<Sleep>,
        // Goes through the client-side cache, when the client has one.
        cached: bool,
        // The command's tracing span, when a subscriber wants it (see `trace`).
        span: Option<tracing::Span>,
        reply: PhantomData<fn() -> T>,
    }
}

impl<'a, T> Query<'a, T> {
    pub(crate) fn new(client: &'a Client, cmd: Cmd) -> Self {
        Query {
            span: crate::trace::command(client, &cmd),
            ..Query::inner(client, cmd, true)
        }
    }

    /// A query the client-side cache runs for a command whose own query (and span) is
    /// still open: no span of its own.
    fn inner(client: &'a Client, cmd: Cmd, cached: bool) -> Self {
        Query {
            client,
            span: None,
            state: State::Start(cmd),
            timer: None,
            cached,
            reply: PhantomData,
        }
    }

    /// The command sent to the server, the client-side cache left out.
    fn uncached(client: &'a Client, cmd: Cmd) -> Self {
        Query::inner(client, cmd, false)
    }

    /// Maps the reply through a parser once it arrives; a parser's error is the command's
    /// error. `client.get("n").to::<Option<i64>>().parse(|n| Ok(n.unwrap_or(0) * 2))`.
    pub async fn parse<U>(self, parser: impl FnOnce(T) -> Result<U>) -> Result<U>
    where
        T: FromValue,
    {
        parser(self.await?)
    }
}

impl<'a, T: FromValue> Future for Query<'a, T> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        let reply = self.as_mut().poll_reply(cx);
        if let Poll::Ready(Err(e)) = &reply {
            self.client.registry().failed(e);
            if let Some(span) = &self.span {
                crate::trace::failed(span, e);
            }
        }
        reply
    }
}

impl<'a, T: FromValue> Query<'a, T> {
    fn poll_reply(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        let mut this = self.project();
        loop {
            match std::mem::replace(this.state, State::Done) {
                State::Start(mut cmd) => match cmd.resolved_route() {
                    _ if let Some(e) = cmd.args.take_error() => return Poll::Ready(Err(e)),
                    Route::Shared
                        if *this.cached
                            && let Some(cache) = this.client.local_cache() =>
                    {
                        *this.cached = false;
                        *this.state = match cache.plan(&cmd.args) {
                            Plan::Hit(value) => return Poll::Ready(into_result(value)),
                            Plan::Pass => State::Start(cmd),
                            plan => State::Boxed(through_cache(this.client, cache, cmd, plan)),
                        };
                    }
                    route if let Some(router) = this.client.router() => {
                        if !matches!(route, Route::Shared | Route::Blocking) {
                            return Poll::Ready(Err(slow_start(this.client, cmd, route)
                                .err()
                                .unwrap_or_else(|| Error::usage("cannot run here"))));
                        }
                        // The router applies the timeouts, and follows redirections.
                        *this.state = State::Boxed(router.execute(cmd));
                    }
                    Route::Shared => {
                        let config = this.client.config();
                        if let Some(t) = cmd.timeout.or(config.response_timeout) {
                            this.timer.set(Some(tokio::time::sleep(t)));
                        }
                        let Some(conn) = this.client.shared_for(&cmd) else {
                            return Poll::Ready(Err(shut_down()));
                        };
                        *this.state = match conn.try_request(Payload::Args(cmd.args), 1) {
                            Ok(reply) => State::Waiting(reply),
                            Err(TryRequest::Full(full)) => {
                                let (request, reply) = *full;
                                State::Boxed(Box::pin(conn.queue_and_wait(request, reply)))
                            }
                            Err(TryRequest::Closed) => return Poll::Ready(Err(shut_down())),
                        };
                    }
                    route => match slow_start(this.client, cmd, route) {
                        Ok(fut) => *this.state = State::Boxed(fut),
                        Err(e) => return Poll::Ready(Err(e)),
                    },
                },
                State::Waiting(mut reply) => match Pin::new(&mut reply).poll(cx) {
                    Poll::Ready(r) => {
                        let value = r.unwrap_or_else(|_| Err(shut_down()));
                        return Poll::Ready(value.and_then(into_result));
                    }
                    Poll::Pending => {
                        *this.state = State::Waiting(reply);
                        break;
                    }
                },
                State::Boxed(mut fut) => match fut.as_mut().poll(cx) {
                    Poll::Ready(r) => return Poll::Ready(r.and_then(into_result)),
                    Poll::Pending => {
                        *this.state = State::Boxed(fut);
                        break;
                    }
                },
                State::Done => panic!("Query polled after completion"),
            }
        }
        if let Some(timer) = this.timer.as_pin_mut() {
            ready!(timer.poll(cx));
            *this.state = State::Done;
            return Poll::Ready(Err(Error::timeout("no reply within the response timeout")));
        }
        Poll::Pending
    }
}

pin_project_lite::pin_project! {
    /// A command on its way over an exclusive connection or in a transaction: await it for
    /// the reply as `T`, or re-type it with [`to`](BoxedQuery::to) like [`Query`].
    #[must_use = "a query does nothing unless awaited"]
    pub struct BoxedQuery<'a, T> {
        inner: BoxedReply<'a>,
        reply: PhantomData<fn() -> T>,
    }
}

impl<'a, T> BoxedQuery<'a, T> {
    pub(crate) fn new(inner: BoxedReply<'a>) -> Self {
        BoxedQuery {
            inner,
            reply: PhantomData,
        }
    }

    /// Maps the reply through a parser once it arrives; a parser's error is the command's
    /// error.
    pub async fn parse<U>(self, parser: impl FnOnce(T) -> Result<U>) -> Result<U>
    where
        T: FromValue,
    {
        parser(self.await?)
    }
}

impl<'a> Query<'a, Value> {
    /// The same command, with its reply converted to `U` instead:
    /// `client.get("k").to::<String>().await?` (the same as binding it:
    /// `let v: String = client.get("k").await?`). A command whose reply has one type
    /// (`xadd`'s ID, `incr`'s count) is re-typed the same way through [`Retype`].
    pub fn to<U: FromValue>(self) -> Query<'a, U> {
        Retype::to(self)
    }
}

impl<'a> BoxedQuery<'a, Value> {
    /// The same command, with its reply converted to `U` instead.
    pub fn to<U: FromValue>(self) -> BoxedQuery<'a, U> {
        Retype::to(self)
    }
}

/// `to` for a query whose reply already has a type: `client.xadd(..).to::<String>()`,
/// `client.incr("n").to::<String>()`. (A query whose type comes from the binding has `to`
/// of its own, which reads it as [`Value`] first.) In the [`prelude`](crate::prelude).
pub trait Retype {
    /// The query with its reply read as `U`.
    type As<U: FromValue>;

    /// The same command, with its reply converted to `U` instead.
    fn to<U: FromValue>(self) -> Self::As<U>;
}

impl<'a, T> Retype for Query<'a, T> {
    type As<U: FromValue> = Query<'a, U>;

    fn to<U: FromValue>(self) -> Query<'a, U> {
        Query {
            client: self.client,
            state: self.state,
            timer: self.timer,
            cached: self.cached,
            span: self.span,
            reply: PhantomData,
        }
    }
}

impl<'a, T> Retype for BoxedQuery<'a, T> {
    type As<U: FromValue> = BoxedQuery<'a, U>;

    fn to<U: FromValue>(self) -> BoxedQuery<'a, U> {
        BoxedQuery::new(self.inner)
    }
}

impl<T: FromValue> Future for BoxedQuery<'_, T> {
    type Output = Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        let value = ready!(self.project().inner.as_mut().poll(cx));
        Poll::Ready(value.and_then(into_result))
    }
}

/// A cache miss or a write, with the client-side cache on: the read's reply is offered to
/// the cache; the write's keys are invalidated once it is done, before its caller sees it,
/// so that the caller reads its write and no reply read before it is stored after.
#[cold]
fn through_cache<'a>(
    client: &'a Client,
    cache: &'a LocalCache,
    cmd: Cmd,
    plan: Plan,
) -> BoxedReply<'a> {
    Box::pin(async move {
        match plan {
            Plan::Miss(ticket) => {
                let reply = if cache.opt_in() {
                    opt_in_read(client, cmd).await
                } else {
                    Query::<Value>::uncached(client, cmd).await
                };
                if let Ok(value) = &reply {
                    cache.fill(ticket, value);
                }
                reply
            }
            Plan::Write(keys) => {
                let reply = Query::<Value>::uncached(client, cmd).await;
                cache.invalidate_keys(&keys);
                reply
            }
            Plan::Gather(gather) => {
                let missing = crate::cmd("MGET").arg(gather.missing().collect::<Vec<_>>());
                let reply = Query::<Value>::uncached(client, missing).await?;
                cache.fill_gather(*gather, reply)
            }
            Plan::Join(flight) => match flight.outcome().await {
                Some(value) => Ok(value),
                // Its reply was not stored (an invalidation came in meanwhile): read anew.
                None => Query::<Value>::inner(client, cmd, true).await,
            },
            Plan::Hit(value) => Ok(value),
            Plan::Pass => Query::<Value>::uncached(client, cmd).await,
        }
    })
}

/// A read in OPTIN mode: `CLIENT CACHING yes` and the read, in one write, so the server
/// tracks this read (and only cached ones).
async fn opt_in_read(client: &Client, cmd: Cmd) -> Result<Value> {
    let conn = client.shared_for(&cmd).ok_or_else(shut_down)?;
    let mut out = bytes::BytesMut::new();
    crate::cmd("CLIENT")
        .arg("CACHING")
        .arg("YES")
        .write_to(&mut out);
    cmd.write_to(&mut out);
    let timeout = cmd.timeout.or(client.config().response_timeout);
    let reply = with_timeout(timeout, conn.request(Payload::Encoded(out.freeze()), 2)).await?;
    match reply {
        Value::Array(mut replies) if replies.len() == 2 => {
            let read = replies.pop().unwrap_or(Value::Nil);
            if let Some(Value::Error(e)) = replies.pop() {
                return Err(e.into());
            }
            into_result(read)
        }
        other => Err(Error::protocol(format!(
            "unexpected reply to CLIENT CACHING and a read: {}",
            other.kind_name()
        ))),
    }
}

/// The rare starts: a blocking command takes an exclusive connection (dropping the future
/// drops the checkout mid-command, which closes that connection at once); anything that
/// cannot run on a shared connection is refused.
#[cold]
fn slow_start(client: &Client, cmd: Cmd, route: Route) -> Result<BoxedReply<'_>> {
    if route == Route::Blocking {
        return Ok(Box::pin(async move {
            client.exclusive().await?.request(cmd).await
        }));
    }
    let name = cmd.full_name();
    Err(refusal(route, &name, Place::Shared)
        .unwrap_or_else(|| Error::usage(format!("{name} cannot run on a shared connection"))))
}

/// Waits for a reply, up to `timeout` when there is one.
pub(crate) fn with_timeout<T>(
    timeout: Option<std::time::Duration>,
    reply: impl std::future::Future<Output = Result<T>>,
) -> impl std::future::Future<Output = Result<T>> {
    // Not an async fn: that would hold `reply` twice (as its argument, and inside the
    // timeout), doubling what a command in flight keeps.
    use futures::FutureExt;
    use futures::future::Either;
    match timeout {
        None => Either::Left(reply),
        Some(t) => Either::Right(tokio::time::timeout(t, reply).map(move |r| {
            r.unwrap_or_else(|_| Err(Error::timeout(format!("no reply within {t:?}"))))
        })),
    }
}

/// A reply as the caller's type; an error reply becomes an [`Error`].
pub(crate) fn into_result<T: FromValue>(reply: Value) -> Result<T> {
    match reply {
        Value::Error(e) => Err(e.into()),
        v => T::from_value(v),
    }
}
