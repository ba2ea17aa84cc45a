//! Enqueues to one queue from one client that are issued while a step for that queue is
//! on its way go together in the next step (a group commit): the first goes at once, what
//! arrives meanwhile waits for it to return. One step adds many new messages with one
//! command per structure, so concurrent producers cost the server a fraction of a step
//! each. Each enqueue keeps its own result and is applied exactly as alone; only their
//! relative order, which concurrent callers never had, is the order they joined in.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;

use super::enqueue::EnqueueResult;
use super::keys::QueueKeys;
use super::scripts::ENQUEUE;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::pubsub::wake;
use crate::value::{ArgBuf, ToArgs};

/// Messages in one step at most (a longer step holds the server longer).
pub(super) const MOST_PER_STEP: usize = 500;

/// One enqueue waiting for its step.
struct Pending {
    /// Its 9 arguments.
    args: ArgBuf,
    reply: oneshot::Sender<Result<EnqueueResult>>,
}

/// A client's enqueues waiting, by queue. A queue is here while a task sends its steps;
/// the task removes it when nothing is left.
#[derive(Default)]
pub(super) struct Waiting {
    queues: Mutex<HashMap<String, Vec<Pending>>>,
}

impl Waiting {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Pending>>> {
        self.queues.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Enqueues one message (its 9 arguments in `args`) with whatever else is enqueued to the
/// queue from this client meanwhile.
pub(super) async fn enqueue(
    client: &Client,
    keys: QueueKeys,
    args: ArgBuf,
) -> Result<EnqueueResult> {
    let waiting = client.extension::<Waiting>();
    let (reply, answer) = oneshot::channel();
    let pending = Pending { args, reply };
    let start = {
        let mut queues = waiting.lock();
        match queues.get_mut(&keys.name) {
            Some(list) => {
                list.push(pending);
                false
            }
            None => {
                queues.insert(keys.name.clone(), vec![pending]);
                true
            }
        }
    };
    if start {
        // A task, not this future: a caller that stops waiting must not strand the others.
        tokio::spawn(send_steps(client.clone(), waiting, keys));
    }
    answer
        .await
        .map_err(|_| Error::closed("the enqueue was dropped before its step returned"))?
}

/// Sends the queue's waiting enqueues, a step at a time, until none is left.
async fn send_steps(client: Client, waiting: Arc<Waiting>, keys: QueueKeys) {
    loop {
        let batch: Vec<Pending> = {
            let mut queues = waiting.lock();
            let Some(list) = queues.get_mut(&keys.name) else {
                return;
            };
            if list.is_empty() {
                queues.remove(&keys.name);
                return;
            }
            let n = list.len().min(MOST_PER_STEP);
            list.drain(..n).collect()
        };
        let mut args = ArgBuf::default();
        (keys.channel.as_str(), wake::publish_command(&client)).write_args(&mut args);
        for p in &batch {
            args.append(&p.args);
        }
        let names: Result<Vec<String>> = ENQUEUE.run(&client, &keys, args).await;
        match names {
            Ok(names) if names.len() == batch.len() => {
                for (p, name) in batch.into_iter().zip(names) {
                    let _ = p.reply.send(EnqueueResult::parse(&name));
                }
            }
            Ok(names) => {
                let e = Error::protocol(format!(
                    "{} messages enqueued, {} results",
                    batch.len(),
                    names.len()
                ));
                for p in batch {
                    let _ = p.reply.send(Err(e.duplicate()));
                }
            }
            Err(e) => {
                for p in batch {
                    let _ = p.reply.send(Err(e.duplicate()));
                }
            }
        }
    }
}
