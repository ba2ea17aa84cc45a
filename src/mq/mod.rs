//! A durable message queue, Carmine's design without its flaws: messages live in Redis
//! (durable as the server is configured), every state change is one atomic server-side
//! step (a function of one Redis function library, loaded on first use; a Lua script where
//! functions are refused), workers are spawned Tokio tasks.
//!
//! - [`enqueue`] with Carmine's options: a message id for de-duplication, can-update,
//!   can-requeue, init-backoff (a delay) and reset-init-backoff, per-message lock time;
//!   beyond Carmine, [`run_at`](EnqueueOptions::run_at) and
//!   [`priority`](EnqueueOptions::priority).
//! - [`Worker`]: an async handler per message returning [`Outcome::Success`] (optionally
//!   with a de-dup window), [`Outcome::Retry`] or [`Outcome::Error`]; a panic is an error.
//!   Failed attempts back off ([`Backoff`]) up to
//!   [`max_attempts`](WorkerOptions::max_attempts), then go to the dead letters (or are
//!   dropped).
//! - Monitoring: [`queue_status`], [`queue_size`], [`queue_content`], [`message_status`],
//!   [`queue_names`], [`dead_letters`], [`requeue_dead`], [`clear`], [`job_details`]
//!   (a handler's [`Job::progress`] and [`Job::log`]), per-minute [`metrics`], and a
//!   durable event stream ([`set_events`], [`events`]).
//! - Control: [`pause`] / [`resume`], a queue-wide [`set_rate_limit`] (and a handler's
//!   [`Outcome::RateLimited`]), [`remove`], [`clean_dead`], [`clean_done`],
//!   [`enqueue_many`], and repeatable messages ([`upsert_schedule`] with a [`Schedule`]:
//!   every interval, or cron with a time zone behind the `mq-cron` feature), each run
//!   enqueued once however many workers drive it.
//! - Flows: [`enqueue_flow`] a [`Flow`] tree whose parents run only after their children
//!   (on any queues, across cluster slots) have ended, reading their
//!   [`Outcome::returned`] values with [`Job::children`]; each child's [`ChildFailure`]
//!   says what its failure does to the parent.
//!
//! The guarantees, each tested against real servers:
//! - No loss: a message whose worker dies mid-handler is handed out again, with the next
//!   attempt number, once its lease runs out.
//! - Fenced acks: each claim gets a fencing token; an outcome reported with a stale token
//!   (the lease ran out and another worker took the message) is rejected, counted in
//!   [`WorkerStats::rejected_acks`], and the message stays with its new holder.
//! - Leases renew while a handler runs; a handler whose lease is lost is told so
//!   ([`Job::lease_lost`]).
//! - Idle workers block on a wake-up subscription instead of polling: an enqueue wakes them
//!   at once, delayed messages and lease ends at their time.
//! - Deadlines (locks, delays, backoffs, de-dup windows) use the server's clock (`TIME`
//!   inside the steps), never a client's.
//! - Every key of a queue shares the hash tag `{queue}` (`kermes:mq:{queue}:...`), and
//!   each step touches only that queue's keys (it is called with the queue's first key
//!   and names the others, on the same slot, from it).
//! - A finished message is removed by the step that records its outcome (or kept, just
//!   its id, for its de-dup window); no garbage-collection lap.
//! - Cheap at scale: enqueues issued together on one client share a step, and so do the
//!   outcomes of a worker's handlers that finish together (with the next message for each);
//!   a step adds, takes or removes many messages with one command per structure. A worker
//!   talks over connections of its own, so its steps never wait behind the application's
//!   commands.
//! - [`Worker::stop`] lets running handlers finish within a grace period and puts back
//!   what is still running after it, so nothing stays locked by a stopped worker.
//!
//! ```no_run
//! # async fn demo(client: kermes::Client) -> kermes::Result<()> {
//! use std::time::Duration;
//! use kermes::mq::{self, EnqueueOptions, EnqueueResult, Outcome, Worker, WorkerOptions};
//!
//! let sent = mq::enqueue(&client, "thumbnails", "img/42.png",
//!     EnqueueOptions::new().id("img-42").priority(5)).await?;
//! assert_eq!(sent.result, EnqueueResult::Added);
//!
//! let worker = Worker::start(&client, "thumbnails",
//!     WorkerOptions::new().concurrency(8).lock_time(Duration::from_secs(60)),
//!     |job: mq::Job<String>| async move {
//!         // ... resize job.message() ...
//!         Outcome::Success(Some(Duration::from_secs(3600))) // refuse img-42 for an hour
//!     }).await?;
//! println!("{:?}", mq::queue_status(&client, "thumbnails").await?);
//! worker.stop().await?;
//! # Ok(()) }
//! ```

mod ack;
mod admin;
mod coalesce;
mod enqueue;
mod events;
mod flow;
mod job;
mod keys;
mod library;
mod metrics;
mod monitor;
mod schedule;
mod scripts;
mod stats;
mod worker;

pub use admin::{Removed, clean_dead, clean_done, pause, remove, resume, set_rate_limit};
pub use enqueue::{EnqueueOptions, EnqueueResult, Enqueued, enqueue, enqueue_many};
pub use events::{EventKind, EventsFrom, QueueEvent, events, set_events};
pub use flow::{ChildFailure, ChildOutcome, ChildResult, Flow, FlowEnqueued, enqueue_flow};
pub use job::{AfterLastAttempt, Backoff, Job, LOG_LINES, Outcome};
pub use metrics::{MinuteCounts, metrics, set_metrics};
pub use monitor::{
    ContentPage, DeadLetter, JobDetails, MessageState, MessageStatus, QueueStatus, QueuedMessage,
    clear, dead_letters, job_details, message_status, queue_content, queue_names, queue_size,
    queue_status, requeue_dead,
};
pub use schedule::{Schedule, ScheduleInfo, Upserted, remove_schedule, schedules, upsert_schedule};
pub use stats::{Percentiles, WorkerStats};
#[cfg(feature = "testing")]
pub(crate) use worker::SKIP_HANDOFF;
pub use worker::{Worker, WorkerOptions};

/// The names of every key of `queue` (all share its hash tag), for tests and tooling.
pub fn queue_keys(queue: &str) -> crate::Result<Vec<String>> {
    Ok(keys::QueueKeys::new(queue)?.names())
}
