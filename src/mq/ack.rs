//! Reporting outcomes: each is fenced by its claim's token, and the outcomes of one
//! worker's handlers that finish while a report is on its way go together in the next one,
//! one step for all of them (a group commit), with the next message for each handler that
//! takes one. A handler's outcome is never held back waiting for others: the first goes
//! at once, and what queues behind it goes when it returns.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::enqueue::millis;
use super::keys::QueueKeys;
use super::scripts::ACK;
use super::worker::{Claimed, parse_claim};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::pubsub::wake;
use crate::resp::Value;
use crate::value::{ArgBuf, FromValue, ToArgs};

/// Outcomes reported in one step at most (a longer step holds the server longer).
const MOST_PER_STEP: usize = 256;

/// What the ack step does with a held message.
#[derive(Clone, Copy)]
pub(super) enum Action {
    /// Finished: removed, or kept for its de-dup window.
    Done,
    /// Runnable again after a backoff.
    Retry,
    /// To the dead letters.
    Bury,
    /// Removed after its last attempt.
    Drop,
    /// Put back unfinished by `stop()`; the attempt does not count.
    Release,
    /// Put back by the handler, rate limited, to run after a delay; the attempt does not
    /// count.
    Limited,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Action::Done => "done",
            Action::Retry => "retry",
            Action::Bury => "bury",
            Action::Drop => "drop",
            Action::Release => "release",
            Action::Limited => "limited",
        }
    }
}

/// What to tell the ack step.
pub(super) struct Report {
    pub(super) action: Action,
    /// De-dup window, backoff or delay.
    pub(super) ms: Duration,
    /// The error, for failures.
    pub(super) error: String,
    /// What the handler returned ([`Outcome::Returned`](super::Outcome::Returned)), for a
    /// flow's parent.
    pub(super) result: Option<Bytes>,
}

impl Report {
    pub(super) fn new(action: Action, ms: Duration, error: String) -> Report {
        Report {
            action,
            ms,
            error,
            result: None,
        }
    }

    /// The step's 8 fields for this outcome.
    fn write(&self, id: &str, token: i64, take_next: bool, out: &mut ArgBuf) {
        (
            (
                id,
                token,
                self.action.name(),
                millis(self.ms),
                self.error.as_str(),
            ),
            match &self.result {
                Some(value) => ("v", value.clone()),
                None => ("n", Bytes::new()),
            },
            if take_next { "1" } else { "0" },
        )
            .write_args(out);
    }
}

/// What the ack step said.
#[derive(Clone, Copy)]
pub(super) enum Acked {
    /// The token was stale.
    Rejected,
    /// Applied; `handoff`: a flow child's end waits for its parent.
    Applied { handoff: bool },
}

impl Acked {
    fn from_reply(code: i64) -> Acked {
        match code {
            0 => Acked::Rejected,
            n => Acked::Applied { handoff: n == 2 },
        }
    }
}

/// What a handler is told: its outcome's fate and its next message, or why the step
/// failed (shared by every outcome of the step).
type Answer = std::result::Result<(Acked, Option<Claimed>), Arc<Error>>;

/// An outcome waiting for its step.
struct Pending {
    /// Its 8 fields.
    fields: ArgBuf,
    take_next: bool,
    reply: oneshot::Sender<Answer>,
}

/// What every step of one worker shares.
struct Settings {
    client: Client,
    keys: Arc<QueueKeys>,
    lock_ms: u64,
    max_attempts: u32,
}

/// A worker's outcome reporter: a task that sends what is waiting as one step.
pub(super) struct Acks {
    queue: mpsc::UnboundedSender<Pending>,
    settings: Arc<Settings>,
}

impl Acks {
    /// Starts the reporting task; it ends when this is dropped.
    pub(super) fn start(
        client: Client,
        keys: Arc<QueueKeys>,
        lock_time: Duration,
        max_attempts: Option<u32>,
    ) -> Acks {
        let settings = Arc::new(Settings {
            client,
            keys,
            lock_ms: millis(lock_time),
            max_attempts: max_attempts.unwrap_or(0),
        });
        let (queue, waiting) = mpsc::unbounded_channel();
        tokio::spawn(report_batches(settings.clone(), waiting));
        Acks { queue, settings }
    }

    /// Reports an outcome, fenced by the claim's token; with `take_next`, also takes the
    /// next ready message for this handler. On a connection error the outcome is reported
    /// again alone, a few times (a repeat of an applied outcome is then rejected as stale,
    /// and what the lost reply had claimed comes back at its lease end).
    pub(super) async fn report(
        &self,
        id: &str,
        token: i64,
        report: &Report,
        take_next: bool,
    ) -> Result<(Acked, Option<Claimed>)> {
        let mut fields = ArgBuf::default();
        report.write(id, token, take_next, &mut fields);
        let (reply, answer) = oneshot::channel();
        let sent = self.queue.send(Pending {
            fields,
            take_next,
            reply,
        });
        let outcome = match sent {
            Ok(()) => answer.await.ok(),
            Err(_) => None,
        };
        match outcome {
            Some(Ok(done)) => Ok(done),
            Some(Err(e)) if !(e.is_io() || e.is_closed() || e.is_timeout()) => Err(e.duplicate()),
            // A connection error, or the reporting task is gone: alone, retried.
            _ => self.report_alone(id, token, report).await,
        }
    }

    async fn report_alone(
        &self,
        id: &str,
        token: i64,
        report: &Report,
    ) -> Result<(Acked, Option<Claimed>)> {
        let s = &self.settings;
        let mut tries = 0;
        loop {
            let mut fields = ArgBuf::default();
            report.write(id, token, false, &mut fields);
            match step(s, 1, &fields).await {
                Ok(reply) => {
                    let mut items = reply.into_iter();
                    let code = i64::from_value(items.next().unwrap_or(Value::Int(0)))?;
                    return Ok((Acked::from_reply(code), None));
                }
                Err(e) if tries < 5 && (e.is_io() || e.is_closed() || e.is_timeout()) => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(50 << tries)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// One ack step for `count` outcomes whose fields are in `fields`.
async fn step(s: &Settings, count: usize, fields: &ArgBuf) -> Result<Vec<Value>> {
    let args = (
        (
            s.keys.channel.as_str(),
            wake::publish_command(&s.client),
            count,
        ),
        fields,
        (s.lock_ms, s.max_attempts),
    );
    ACK.run(&s.client, &s.keys, args).await
}

/// The reporting task: takes everything waiting (up to [`MOST_PER_STEP`]), sends it as one
/// step, hands each handler its answer; meanwhile what finishes queues for the next step.
/// A step is never cancelled midway: one that ran but went unread would leave messages
/// locked until their leases end.
async fn report_batches(s: Arc<Settings>, mut waiting: mpsc::UnboundedReceiver<Pending>) {
    let mut batch = Vec::new();
    while let Some(first) = waiting.recv().await {
        batch.push(first);
        while batch.len() < MOST_PER_STEP {
            match waiting.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let mut fields = ArgBuf::default();
        for p in &batch {
            fields.append(&p.fields);
        }
        let sent = Instant::now();
        match step(&s, batch.len(), &fields)
            .await
            .and_then(|reply| answers(reply, batch.len(), sent))
        {
            Ok((codes, claimed)) => {
                let mut claimed = claimed.into_iter();
                for (p, code) in batch.drain(..).zip(codes) {
                    let acked = Acked::from_reply(code);
                    let next = match acked {
                        Acked::Applied { .. } if p.take_next => claimed.next(),
                        _ => None,
                    };
                    let _ = p.reply.send(Ok((acked, next)));
                }
            }
            Err(e) => {
                let e = Arc::new(e);
                for p in batch.drain(..) {
                    let _ = p.reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// The step's reply: a code per outcome, then a claim reply.
fn answers(reply: Vec<Value>, count: usize, sent: Instant) -> Result<(Vec<i64>, Vec<Claimed>)> {
    if reply.len() < count + 3 {
        return Err(Error::protocol(format!(
            "ack reply of {} items for {count} outcomes",
            reply.len()
        )));
    }
    let mut items = reply.into_iter();
    let codes = (&mut items)
        .take(count)
        .map(i64::from_value)
        .collect::<Result<Vec<_>>>()?;
    let (_, _, claimed) = parse_claim(items, sent)?;
    Ok((codes, claimed))
}
