//! Flows: a parent message that becomes runnable only when its children, on any queues,
//! have ended, and reads their results.
//!
//! A parent and its children usually live on different queues, so on a cluster on
//! different slots, and no script may touch two of them. The hand-off is therefore a chain
//! of steps, each one script on one queue and each safe to repeat:
//!
//! 1. [`enqueue_flow`] adds the parent first, waiting (its pending children in a set beside
//!    its queue's keys, under a fresh flow token), then each child with a parent record
//!    (the token, what its failure does, the parent's queue, id and the child's index).
//!    Repeating the call with the same ids finds the nodes there and adds what is missing.
//! 2. The script that ends a child (its ack, its burial when its last lease ran out, a
//!    removal) writes the end to its queue's outbox in the same step.
//! 3. Whoever saw that step (the acking worker at once, else any worker's next claim of
//!    that queue, which reports due hand-offs) takes the entry (leased for 10 s), tells the
//!    parent's queue (a script that removes the child from the pending set, so a repeat or
//!    a stale flow's child counts for nothing, stores the result, and makes the parent
//!    runnable after the last child), then deletes the entry.
//!
//! A crash between steps leaves the outbox entry, handed over again when its lease ends.
//! Children run at least once, and a parent runs once all have ended.

use std::collections::VecDeque;

use bytes::Bytes;

use super::enqueue::{EnqueueOptions, push_message};
use super::keys::QueueKeys;
use super::scripts::{ENQUEUE_FLOW_NODE, FLOW_NOTIFY, FLOW_RESULTS, OUTBOX_DONE, OUTBOX_TAKE};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::pubsub::wake;
use crate::resp::Value;
use crate::value::{ArgBuf, FromValue, ToArgs};

/// What a child's failure (dead-lettered or dropped after its last attempt, or removed)
/// does to its parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ChildFailure {
    /// The parent keeps waiting while the child is a dead letter: requeued
    /// ([`requeue_dead`](super::requeue_dead)) and successful, it lets the parent run. A
    /// child that is gone (dropped, removed, its dead letter cleaned) fails the parent.
    /// BullMQ's default.
    #[default]
    Wait,
    /// The parent becomes a dead letter at once, its error naming the child.
    FailParent,
    /// The parent runs anyway; [`Job::children`](super::Job::children) shows the failure.
    Ignore,
}

impl ChildFailure {
    fn name(self) -> &'static str {
        match self {
            ChildFailure::Wait => "wait",
            ChildFailure::FailParent => "fail",
            ChildFailure::Ignore => "ignore",
        }
    }
}

/// A message and the messages it waits for ([`enqueue_flow`]): a tree, each node on any
/// queue.
#[derive(Debug, Clone)]
pub struct Flow {
    queue: String,
    message: ArgBuf,
    options: EnqueueOptions,
    on_failure: ChildFailure,
    children: Vec<Flow>,
}

impl Flow {
    /// `message` on `queue`, with no children yet. The message is one value, as for
    /// [`enqueue`](super::enqueue); an invalid one fails [`enqueue_flow`].
    pub fn new(queue: impl Into<String>, message: impl ToArgs) -> Flow {
        let mut buf = ArgBuf::default();
        message.write_args(&mut buf);
        Flow {
            queue: queue.into(),
            message: buf,
            options: EnqueueOptions::default(),
            on_failure: ChildFailure::default(),
            children: Vec::new(),
        }
    }

    /// Its id, lock time, priority and delay (a parent's delay counts from its enqueue:
    /// it runs at the later of its due time and its last child's end). The de-dup flags
    /// (`can_update`, `can_requeue`, `reset_init_backoff`) do not apply to flows and are
    /// refused.
    pub fn options(mut self, options: EnqueueOptions) -> Flow {
        self.options = options;
        self
    }

    /// Adds a child (itself possibly a flow).
    pub fn child(mut self, child: Flow) -> Flow {
        self.children.push(child);
        self
    }

    /// Adds children.
    pub fn children(mut self, children: impl IntoIterator<Item = Flow>) -> Flow {
        self.children.extend(children);
        self
    }

    /// What this message's failure does to its parent. Default [`ChildFailure::Wait`].
    pub fn on_failure(mut self, then: ChildFailure) -> Flow {
        self.on_failure = then;
        self
    }
}

/// One node of an enqueued flow ([`enqueue_flow`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FlowEnqueued {
    /// Its queue.
    pub queue: String,
    /// Its message id (the one given, or the generated one).
    pub id: String,
    /// False when an earlier call with the same ids had already added it.
    pub added: bool,
    /// Its children, in the order given.
    pub children: Vec<FlowEnqueued>,
}

/// How one child ended, as its parent sees it ([`Job::children`](super::Job::children)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChildOutcome {
    /// Succeeded: [`Outcome::Returned`](super::Outcome::Returned)'s value, or `None`.
    Completed(Option<Bytes>),
    /// Failed, under [`ChildFailure::Ignore`] (or the failure that failed the parent).
    Failed(String),
}

/// One child's end.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChildResult {
    /// The child's queue.
    pub queue: String,
    /// The child's id.
    pub id: String,
    /// How it ended.
    pub outcome: ChildOutcome,
}

impl ChildResult {
    /// The value it returned, decoded (a [`Serde`](crate::Serde) value through the installed
    /// codec, text, numbers, bytes); `None` when it returned none or failed.
    pub fn value<T: FromValue>(&self) -> Result<Option<T>> {
        match &self.outcome {
            ChildOutcome::Completed(Some(bytes)) => {
                T::from_value(Value::Bulk(bytes.clone())).map(Some)
            }
            _ => Ok(None),
        }
    }
}

/// One node, flattened: parents come before their children.
#[derive(Debug)]
struct Node {
    keys: QueueKeys,
    id: String,
    args: ArgBuf,
    on_failure: ChildFailure,
    /// (parent node, index among its children).
    parent: Option<(usize, usize)>,
    children: Vec<usize>,
}

/// Enqueues a flow: every child (recursively) must end before its parent becomes runnable,
/// and the parent's handler reads their results with
/// [`Job::children`](super::Job::children). Children may be on any queues, including the
/// parent's; on a cluster each queue keeps its own slot (see the module notes for how the
/// hand-off crosses slots). A child's failure does what its
/// [`on_failure`](Flow::on_failure) says.
///
/// Safe to repeat with the same ids (after a crash midway): nodes already there are left
/// as they are ([`FlowEnqueued::added`] false) and the missing ones added. An id already
/// used by a message outside this flow is refused: the nodes this call added are removed
/// again and an error names the id (children already running still run, and their ends go
/// nowhere).
///
/// ```no_run
/// # async fn demo(client: kermes::Client) -> kermes::Result<()> {
/// use kermes::mq::{self, ChildFailure, Flow};
///
/// let flow = Flow::new("reports", "monthly-42")
///     .child(Flow::new("fetch", "sales"))
///     .child(Flow::new("fetch", "costs").on_failure(ChildFailure::FailParent));
/// let sent = mq::enqueue_flow(&client, flow).await?;
/// println!("parent {} waits for {} children", sent.id, sent.children.len());
/// # Ok(()) }
/// ```
pub async fn enqueue_flow(client: &Client, flow: Flow) -> Result<FlowEnqueued> {
    let nodes = flatten(flow)?;
    let mut tokens: Vec<String> = Vec::with_capacity(nodes.len());
    let mut added = Vec::with_capacity(nodes.len());
    for node in &nodes {
        let mut args = ArgBuf::default();
        (node.keys.channel.as_str(), wake::publish_command(client)).write_args(&mut args);
        args.append(&node.args);
        let record = match node.parent {
            Some((p, index)) => pack(&[
                tokens[p].as_bytes(),
                node.on_failure.name().as_bytes(),
                nodes[p].keys.name.as_bytes(),
                nodes[p].id.as_bytes(),
                index.to_string().as_bytes(),
            ]),
            None => Vec::new(),
        };
        args.push(&record);
        let token = if node.children.is_empty() {
            String::new()
        } else {
            crate::lock::new_token()
        };
        args.push(token.as_bytes());
        for (index, &c) in node.children.iter().enumerate() {
            let child = &nodes[c];
            args.push(&pack(&[
                index.to_string().as_bytes(),
                child.keys.name.as_bytes(),
                child.id.as_bytes(),
            ]));
        }
        let (result, detail): (String, String) =
            match ENQUEUE_FLOW_NODE.run(client, &node.keys, args).await {
                Ok(reply) => reply,
                Err(e) => {
                    undo(client, &nodes, &added).await;
                    return Err(e);
                }
            };
        match result.as_str() {
            "added" | "exists" => {
                added.push(result == "added");
                tokens.push(detail);
            }
            _ => {
                undo(client, &nodes, &added).await;
                return Err(Error::config(format!(
                    "flow message {:?} on queue {:?} is refused: a message with this id is \
                     already {detail} outside this flow",
                    node.id, node.keys.name
                )));
            }
        }
    }
    Ok(build(&nodes, &added, 0))
}

/// Validates the tree, gives every node its id and encoded arguments, and lists the nodes
/// parents first.
fn flatten(root: Flow) -> Result<Vec<Node>> {
    let mut nodes: Vec<Node> = Vec::new();
    let mut todo: VecDeque<(Flow, Option<(usize, usize)>)> = VecDeque::from([(root, None)]);
    while let Some((flow, parent)) = todo.pop_front() {
        let o = &flow.options;
        if o.can_update || o.can_requeue || o.reset_init_backoff {
            return Err(Error::config(
                "can_update, can_requeue and reset_init_backoff do not apply to flow messages",
            ));
        }
        let keys = QueueKeys::new(&flow.queue)?;
        let mut args = ArgBuf::default();
        let id = push_message(&mut args, &flow.message, flow.options)?;
        let at = nodes.len();
        if let Some((p, index)) = parent {
            debug_assert_eq!(nodes[p].children.len(), index);
            nodes[p].children.push(at);
        }
        nodes.push(Node {
            keys,
            id,
            args,
            on_failure: flow.on_failure,
            parent,
            children: Vec::new(),
        });
        for (index, child) in flow.children.into_iter().enumerate() {
            todo.push_back((child, Some((at, index))));
        }
    }
    let mut seen = std::collections::HashSet::new();
    for n in &nodes {
        if !seen.insert((n.keys.name.as_str(), n.id.as_str())) {
            return Err(Error::config(format!(
                "message id {:?} appears twice on queue {:?} in one flow",
                n.id, n.keys.name
            )));
        }
    }
    Ok(nodes)
}

fn build(nodes: &[Node], added: &[bool], at: usize) -> FlowEnqueued {
    let n = &nodes[at];
    FlowEnqueued {
        queue: n.keys.name.clone(),
        id: n.id.clone(),
        added: added[at],
        children: n.children.iter().map(|&c| build(nodes, added, c)).collect(),
    }
}

/// Removes the nodes this call added (best effort: the caller reports the first error).
async fn undo(client: &Client, nodes: &[Node], added: &[bool]) {
    for (node, _) in nodes.iter().zip(added).filter(|(_, a)| **a) {
        if let Err(e) = super::remove(client, &node.keys.name, &node.id).await {
            tracing::warn!(queue = %node.keys.name, id = %node.id, error = %e, "could not remove a flow message after the flow was refused");
        }
    }
}

/// `<length>:<bytes>` per field, as the scripts' `pack`.
fn pack(fields: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in fields {
        out.extend_from_slice(f.len().to_string().as_bytes());
        out.push(b':');
        out.extend_from_slice(f);
    }
    out
}

/// Hand-offs taken at once.
const TAKE: usize = 32;

/// Hands the due flow ends in `keys`'s outbox to their parents; a parent that failed
/// because of one and is itself a flow child is handed on in turn.
pub(crate) async fn hand_off(client: &Client, keys: &QueueKeys) -> Result<()> {
    let mut queues = VecDeque::from([keys.clone()]);
    while let Some(keys) = queues.pop_front() {
        loop {
            type Taken = (Bytes, String, String, String, String, String, String, Bytes);
            let taken: Vec<Taken> = OUTBOX_TAKE.run(client, &keys, TAKE).await?;
            for (field, child, outcome, token, parent_queue, parent, index, detail) in &taken {
                let parent_keys = QueueKeys::new(parent_queue)?;
                let told: i64 = FLOW_NOTIFY
                    .run(
                        client,
                        &parent_keys,
                        (
                            (
                                parent_keys.channel.as_str(),
                                wake::publish_command(client),
                                parent.as_str(),
                                token.as_str(),
                            ),
                            (
                                index.as_str(),
                                keys.name.as_str(),
                                child.as_str(),
                                outcome.as_str(),
                                detail,
                            ),
                        ),
                    )
                    .await?;
                if told == 2 {
                    queues.push_back(parent_keys);
                }
                let _: i64 = OUTBOX_DONE
                    .run(client, &keys, (field, child.as_str(), token.as_str()))
                    .await?;
            }
            if taken.len() < TAKE {
                break;
            }
        }
    }
    Ok(())
}

/// The children's ends of parent `id`, in the order they were given.
pub(crate) async fn results(
    client: &Client,
    keys: &QueueKeys,
    id: &str,
) -> Result<Vec<ChildResult>> {
    let rows: Vec<(u64, String, String, Bytes)> = FLOW_RESULTS.run(client, keys, id).await?;
    let mut out: Vec<(u64, ChildResult)> = rows
        .into_iter()
        .map(|(index, queue, id, end)| {
            let outcome = match end.first() {
                Some(b'v') => ChildOutcome::Completed(Some(end.slice(1..))),
                Some(b'f') => ChildOutcome::Failed(String::from_utf8_lossy(&end[1..]).into_owned()),
                _ => ChildOutcome::Completed(None),
            };
            (index, ChildResult { queue, id, outcome })
        })
        .collect();
    out.sort_by_key(|(index, _)| *index);
    Ok(out.into_iter().map(|(_, r)| r).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_packed_with_their_lengths() {
        assert_eq!(pack(&[b"ab", b"", b"x:y"]), b"2:ab0:3:x:y".to_vec());
    }

    #[test]
    fn a_flow_lists_parents_first_with_ids_and_indexes() {
        let flow = Flow::new("p", "root")
            .child(Flow::new("a", "c0").child(Flow::new("b", "g0")))
            .child(Flow::new("a", "c1"));
        let nodes = flatten(flow).unwrap();
        let queues: Vec<&str> = nodes.iter().map(|n| n.keys.name.as_str()).collect();
        assert_eq!(queues, ["p", "a", "a", "b"]);
        assert_eq!(nodes[0].children, [1, 2]);
        assert_eq!(nodes[1].children, [3]);
        assert_eq!(nodes[3].parent, Some((1, 0)));
        assert_eq!(nodes[2].parent, Some((0, 1)));
        assert!(nodes.iter().all(|n| !n.id.is_empty()));
    }

    #[test]
    fn dedup_flags_and_repeated_ids_are_refused() {
        let flag = Flow::new("p", "x").options(EnqueueOptions::new().can_update(true));
        assert!(flatten(flag).unwrap_err().is_config());
        let twice = Flow::new("p", "x")
            .child(Flow::new("a", "1").options(EnqueueOptions::new().id("same")))
            .child(Flow::new("a", "2").options(EnqueueOptions::new().id("same")));
        assert!(flatten(twice).unwrap_err().is_config());
        let bad_message = Flow::new("p", ("two", "values"));
        assert!(flatten(bad_message).is_err());
    }
}
