//! Queue flows against real servers: a parent runs only after its children (on other
//! queues) have ended, reads their results, and each failure policy does what it says;
//! hand-offs lost with their worker are swept; repeated and refused flows; removal; nested
//! flows; a cluster, where parent and children sit on different slots.

#[macro_use]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use kermes::mq::{
    self, AfterLastAttempt, ChildFailure, ChildOutcome, ChildResult, EnqueueOptions as Opts, Flow,
    Job, MessageState, Outcome, Removed, Worker, WorkerOptions,
};
use kermes::prelude::*;
use tokio::sync::mpsc;

/// A parent worker that reports each parent it runs with its children's results.
async fn parents(
    client: &Client,
    queue: &str,
) -> (
    Worker,
    mpsc::UnboundedReceiver<(String, Vec<ChildResult>, Instant)>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let worker = Worker::start(
        client,
        queue,
        WorkerOptions::new().concurrency(4),
        move |job: Job<String>| {
            let tx = tx.clone();
            async move {
                let results = job.children().await.unwrap();
                let _ = tx.send((job.id().to_owned(), results, Instant::now()));
                Outcome::success()
            }
        },
    )
    .await
    .unwrap();
    (worker, rx)
}

/// A child worker returning its message with "!" appended, recording when each ran.
async fn children(
    client: &Client,
    queue: &str,
    ran: Arc<std::sync::Mutex<Vec<(String, Instant)>>>,
) -> Worker {
    Worker::start(
        client,
        queue,
        WorkerOptions::new().concurrency(4),
        move |job: Job<String>| {
            ran.lock()
                .unwrap()
                .push((job.message().clone(), Instant::now()));
            let value = format!("{}!", job.message());
            async move { Outcome::returned(value) }
        },
    )
    .await
    .unwrap()
}

/// A worker whose handler fails while `failing` is set (one attempt, then dead-lettered or
/// dropped).
async fn flaky(
    client: &Client,
    queue: &str,
    failing: Arc<AtomicBool>,
    then: AfterLastAttempt,
) -> Worker {
    let options = WorkerOptions::new()
        .max_attempts(Some(1))
        .after_last_attempt(then);
    Worker::start(client, queue, options, move |_job: Job<String>| {
        let fail = failing.load(Ordering::SeqCst);
        async move {
            if fail {
                Outcome::error("boom")
            } else {
                Outcome::returned("fixed")
            }
        }
    })
    .await
    .unwrap()
}

async fn next<T>(rx: &mut mpsc::UnboundedReceiver<T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("nothing within 10 s")
        .unwrap()
}

async fn state(client: &Client, queue: &str, id: &str) -> Option<MessageState> {
    common::message_state(client, queue, id).await
}

/// Every key of `queue` that holds flow bookkeeping (the outbox, parent records, waiting
/// parents, pending sets and results): all must be gone once its flows are done.
async fn flow_leftovers(client: &Client, queue: &str) -> Vec<String> {
    let mut left = Vec::new();
    for key in mq::queue_keys(queue).unwrap() {
        if ["parent", "outbox", "outbox-due", "waiting"]
            .iter()
            .any(|s| key.ends_with(&format!(":{s}")))
            && client.exists(key.as_str()).await.unwrap() > 0
        {
            left.push(key);
        }
    }
    for pattern in [
        format!("kermes:mq:{{{queue}}}:flow:*"),
        format!("kermes:mq:{{{queue}}}:flow-results:*"),
    ] {
        for key in client.keys::<Vec<Bytes>>(pattern.as_str()).await.unwrap() {
            left.push(String::from_utf8_lossy(&key).into_owned());
        }
    }
    left
}

/// Each child's end as (queue, id, outcome).
fn ends(results: &[ChildResult]) -> Vec<(String, String, ChildOutcome)> {
    results
        .iter()
        .map(|r| (r.queue.clone(), r.id.clone(), r.outcome.clone()))
        .collect()
}

fn completed(queue: &str, id: &str, value: &str) -> (String, String, ChildOutcome) {
    (
        queue.into(),
        id.into(),
        ChildOutcome::Completed(Some(value.to_owned().into())),
    )
}

server_tests! {
    async fn a_parent_runs_after_its_children_and_reads_their_results(kind) {
        let (_server, client) = common::server_and_client(kind).await;
        mq::set_events(&client, "reports", Some(100)).await.unwrap();
        let (parent_worker, mut ran_parents) = parents(&client, "reports").await;
        let ids = ["sales", "costs", "charts"];
        let flow = Flow::new("reports", "monthly")
            .child(Flow::new("fetch", "sales").options(Opts::new().id("sales")))
            .child(Flow::new("fetch", "costs").options(Opts::new().id("costs")))
            .child(Flow::new("render", "charts").options(Opts::new().id("charts")));
        let sent = mq::enqueue_flow(&client, flow).await.unwrap();
        assert!(sent.added && sent.children.iter().all(|c| c.added));
        assert_eq!(sent.children.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ids);

        // No child has run: the parent waits, whatever its worker does.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(ran_parents.try_recv().is_err(), "the parent ran before its children");
        assert_eq!(state(&client, "reports", &sent.id).await, Some(MessageState::WaitingChildren(3)));
        let status = mq::queue_status(&client, "reports").await.unwrap();
        assert_eq!((status.waiting_children, status.queued), (1, 0), "{status:?}");
        assert_eq!(mq::queue_size(&client, "fetch").await.unwrap(), 2);
        // A plain enqueue of the waiting parent's id changes nothing.
        let again = mq::enqueue(&client, "reports", "other", Opts::new().id(sent.id.clone()).can_update(true)).await.unwrap();
        assert_eq!(again.result, mq::EnqueueResult::AlreadyQueued);

        // Two of three children end: still waiting, for one.
        let ran = Arc::new(std::sync::Mutex::new(Vec::new()));
        let fetch = children(&client, "fetch", ran.clone()).await;
        common::wait_until_async(Duration::from_secs(5), "both fetch children ended", || async {
            state(&client, "reports", &sent.id).await == Some(MessageState::WaitingChildren(1))
        }).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(ran_parents.try_recv().is_err(), "the parent ran with a child pending");

        let render = children(&client, "render", ran.clone()).await;
        let (parent_id, results, parent_at) = next(&mut ran_parents).await;
        assert_eq!(parent_id, sent.id);
        assert_eq!(ends(&results), vec![
            completed("fetch", "sales", "sales!"),
            completed("fetch", "costs", "costs!"),
            completed("render", "charts", "charts!"),
        ]);
        assert_eq!(results[2].value::<String>().unwrap().as_deref(), Some("charts!"));
        let ran = ran.lock().unwrap().clone();
        assert_eq!(ran.len(), 3);
        assert!(ran.iter().all(|(_, at)| *at < parent_at), "a child ran after its parent");

        // The parent ran once, and nothing of the flow is left anywhere.
        common::wait_until_async(Duration::from_secs(5), "the parent finished", || async {
            state(&client, "reports", &sent.id).await.is_none()
        }).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(ran_parents.try_recv().is_err(), "the parent ran twice");
        for q in ["reports", "fetch", "render"] {
            assert_eq!(flow_leftovers(&client, q).await, Vec::<String>::new(), "{q}");
        }
        let kinds: Vec<mq::EventKind> = {
            use futures::StreamExt;
            let events = mq::events(&client, "reports", mq::EventsFrom::Start).unwrap();
            let mut events = Box::pin(events);
            let mut kinds = Vec::new();
            while let Ok(Some(Ok(e))) = tokio::time::timeout(Duration::from_millis(300), events.next()).await {
                kinds.push(e.kind);
            }
            kinds
        };
        assert_eq!(&kinds[..3], [mq::EventKind::WaitingChildren, mq::EventKind::ChildrenCompleted, mq::EventKind::Active], "{kinds:?}");
        for w in [parent_worker, fetch, render] {
            w.stop().await.unwrap();
        }
    }

    async fn each_failure_policy_does_what_it_says(kind) {
        let (_server, client) = common::server_and_client(kind).await;
        let (parent_worker, mut ran_parents) = parents(&client, "parents").await;
        let failing = Arc::new(AtomicBool::new(true));
        let child_worker = flaky(&client, "kids", failing.clone(), AfterLastAttempt::DeadLetter).await;
        let flow = |name: &str, then: ChildFailure| Flow::new("parents", name)
            .options(Opts::new().id(name))
            .child(Flow::new("kids", name).options(Opts::new().id(format!("{name}-kid"))).on_failure(then));

        // FailParent: the parent is a dead letter naming the child.
        mq::enqueue_flow(&client, flow("fail", ChildFailure::FailParent)).await.unwrap();
        common::wait_until_async(Duration::from_secs(5), "the parent failed", || async {
            matches!(state(&client, "parents", "fail").await, Some(MessageState::Dead(_)))
        }).await;
        let Some(MessageState::Dead(error)) = state(&client, "parents", "fail").await else { unreachable!() };
        assert!(error.contains("fail-kid") && error.contains("kids") && error.contains("boom"), "{error}");

        // Ignore: the parent runs and sees the failure.
        mq::enqueue_flow(&client, flow("ignore", ChildFailure::Ignore)).await.unwrap();
        let (id, results, _) = next(&mut ran_parents).await;
        assert_eq!(id, "ignore");
        assert_eq!(ends(&results), vec![("kids".into(), "ignore-kid".into(), ChildOutcome::Failed("boom".into()))]);
        assert_eq!(results[0].value::<String>().unwrap(), None);

        // Wait: the parent waits while the child is a dead letter; requeued and successful,
        // the child lets it run.
        mq::enqueue_flow(&client, flow("wait", ChildFailure::Wait)).await.unwrap();
        common::wait_until_async(Duration::from_secs(5), "the child is a dead letter", || async {
            matches!(state(&client, "kids", "wait-kid").await, Some(MessageState::Dead(_)))
        }).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(state(&client, "parents", "wait").await, Some(MessageState::WaitingChildren(1)));
        assert!(ran_parents.try_recv().is_err());
        failing.store(false, Ordering::SeqCst);
        assert_eq!(mq::requeue_dead(&client, "kids", &["wait-kid"]).await.unwrap(), 1);
        let (id, results, _) = next(&mut ran_parents).await;
        assert_eq!(id, "wait");
        assert_eq!(ends(&results), vec![completed("kids", "wait-kid", "fixed")]);

        // The dead parent of FailParent can be requeued: it runs with what its children left.
        assert_eq!(mq::requeue_dead(&client, "parents", &["fail"]).await.unwrap(), 1);
        let (id, results, _) = next(&mut ran_parents).await;
        assert_eq!(id, "fail");
        assert!(matches!(&results[..], [ChildResult { outcome: ChildOutcome::Failed(_), .. }]), "{results:?}");
        for w in [parent_worker, child_worker] {
            w.stop().await.unwrap();
        }
        for q in ["parents", "kids"] {
            assert_eq!(flow_leftovers(&client, q).await, Vec::<String>::new(), "{q}");
        }
    }

    async fn a_child_that_is_gone_fails_a_waiting_parent(kind) {
        let (_server, client) = common::server_and_client(kind).await;
        // Dropped after its last attempt under Wait: there is nothing left to wait for.
        let dropper = flaky(&client, "dropped", Arc::new(AtomicBool::new(true)), AfterLastAttempt::Drop).await;
        mq::enqueue_flow(&client, Flow::new("top", "a").options(Opts::new().id("a"))
            .child(Flow::new("dropped", "x"))).await.unwrap();
        common::wait_until_async(Duration::from_secs(5), "the parent failed", || async {
            matches!(state(&client, "top", "a").await, Some(MessageState::Dead(_)))
        }).await;
        dropper.stop().await.unwrap();

        // Removed while queued (no worker): its parent hears of it at once.
        let sent = mq::enqueue_flow(&client, Flow::new("top", "b").options(Opts::new().id("b"))
            .child(Flow::new("idle", "y").on_failure(ChildFailure::Ignore))
            .child(Flow::new("idle", "z").on_failure(ChildFailure::Wait))).await.unwrap();
        assert_eq!(mq::remove(&client, "idle", &sent.children[0].id).await.unwrap(), Removed::Removed);
        assert_eq!(state(&client, "top", "b").await, Some(MessageState::WaitingChildren(1)), "ignored: still waiting for z");
        assert_eq!(mq::remove(&client, "idle", &sent.children[1].id).await.unwrap(), Removed::Removed);
        let Some(MessageState::Dead(error)) = state(&client, "top", "b").await else { panic!("the parent did not fail") };
        assert!(error.contains("removed"), "{error}");

        // A dead child under Wait whose dead letter is cleaned fails its parent too.
        let failing = flaky(&client, "cleaned", Arc::new(AtomicBool::new(true)), AfterLastAttempt::DeadLetter).await;
        mq::enqueue_flow(&client, Flow::new("top", "c").options(Opts::new().id("c"))
            .child(Flow::new("cleaned", "w").options(Opts::new().id("w")))).await.unwrap();
        common::wait_until_async(Duration::from_secs(5), "the child is a dead letter", || async {
            matches!(state(&client, "cleaned", "w").await, Some(MessageState::Dead(_)))
        }).await;
        assert_eq!(state(&client, "top", "c").await, Some(MessageState::WaitingChildren(1)));
        assert_eq!(mq::clean_dead(&client, "cleaned", Duration::ZERO, 10).await.unwrap(), 1);
        assert!(matches!(state(&client, "top", "c").await, Some(MessageState::Dead(_))));
        failing.stop().await.unwrap();

        // Removing a waiting parent: its children still run, and their ends go nowhere.
        let sent = mq::enqueue_flow(&client, Flow::new("top", "d").options(Opts::new().id("d"))
            .child(Flow::new("orphans", "o1"))).await.unwrap();
        assert_eq!(mq::remove(&client, "top", "d").await.unwrap(), Removed::Removed);
        let ran = Arc::new(std::sync::Mutex::new(Vec::new()));
        let orphans = children(&client, "orphans", ran.clone()).await;
        common::wait_until_async(Duration::from_secs(5), "the orphan ran", || async {
            state(&client, "orphans", &sent.children[0].id).await.is_none()
        }).await;
        orphans.stop().await.unwrap();
        assert_eq!(state(&client, "top", "d").await, None);
        for q in ["idle", "orphans", "dropped"] {
            assert_eq!(flow_leftovers(&client, q).await, Vec::<String>::new(), "{q}");
        }
        // A dead parent keeps what its children left (requeued, it reads them), until it
        // is cleaned.
        let mut left = flow_leftovers(&client, "top").await;
        left.sort();
        assert_eq!(left, ["a", "b", "c"].map(|p| format!("kermes:mq:{{top}}:flow-results:{p}")));
        assert_eq!(mq::clean_dead(&client, "top", Duration::ZERO, 10).await.unwrap(), 3);
        assert_eq!(flow_leftovers(&client, "top").await, Vec::<String>::new());
    }

    async fn a_hand_off_lost_with_its_worker_is_made_by_a_later_claim(kind) {
        let (_server, client) = common::server_and_client(kind).await;
        kermes::testing::skip_flow_handoff("swept", true);
        let (parent_worker, mut ran_parents) = parents(&client, "sweep-parent").await;
        let worker = Worker::start(&client, "swept", WorkerOptions::new().idle_recheck(Duration::from_millis(300)),
            |_job: Job<String>| async { Outcome::returned(42) }).await.unwrap();
        let sent = mq::enqueue_flow(&client, Flow::new("sweep-parent", "p")
            .child(Flow::new("swept", "c"))).await.unwrap();
        // The ack leaves the end in the outbox; the worker's next claim hands it over.
        let (id, results, _) = next(&mut ran_parents).await;
        assert_eq!(id, sent.id);
        assert_eq!(results[0].value::<i64>().unwrap(), Some(42));
        kermes::testing::skip_flow_handoff("swept", false);
        worker.stop().await.unwrap();
        parent_worker.stop().await.unwrap();
        assert_eq!(flow_leftovers(&client, "swept").await, Vec::<String>::new());
    }

    async fn a_last_attempt_whose_lease_ran_out_fails_the_parent(kind) {
        let (_server, client) = common::server_and_client(kind).await;
        let options = WorkerOptions::new().concurrency(2).max_attempts(Some(1))
            .renew_lease(false).lock_time(Duration::from_millis(200));
        let stuck = Worker::start(&client, "stuck", options, |_job: Job<String>| async {
            tokio::time::sleep(Duration::from_secs(3)).await;
            Outcome::success()
        }).await.unwrap();
        mq::enqueue_flow(&client, Flow::new("stuck-parent", "p").options(Opts::new().id("p"))
            .child(Flow::new("stuck", "c").on_failure(ChildFailure::FailParent))).await.unwrap();
        common::wait_until_async(Duration::from_secs(5), "the parent failed", || async {
            matches!(state(&client, "stuck-parent", "p").await, Some(MessageState::Dead(_)))
        }).await;
        let Some(MessageState::Dead(error)) = state(&client, "stuck-parent", "p").await else { unreachable!() };
        assert!(error.contains("lease ran out"), "{error}");
        drop(stuck);
    }

    async fn a_nested_flow_runs_bottom_up(kind) {
        let (_server, client) = common::server_and_client(kind).await;
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut workers = Vec::new();
        for q in ["n-root", "n-mid", "n-leaf"] {
            let order = order.clone();
            workers.push(Worker::start(&client, q, WorkerOptions::new().concurrency(4), move |job: Job<String>| {
                let order = order.clone();
                async move {
                    let below: Vec<String> = job.children().await.unwrap().iter()
                        .map(|c| c.value::<String>().unwrap().unwrap_or_default()).collect();
                    order.lock().unwrap().push(job.message().clone());
                    Outcome::returned(format!("{}({})", job.message(), below.join(",")))
                }
            }).await.unwrap());
        }
        let (tx, mut rx) = mpsc::unbounded_channel();
        let top = Worker::start(&client, "n-top", WorkerOptions::new(), move |job: Job<String>| {
            let tx = tx.clone();
            async move {
                let r = job.children().await.unwrap();
                let _ = tx.send(r[0].value::<String>().unwrap().unwrap());
                Outcome::success()
            }
        }).await.unwrap();
        let flow = Flow::new("n-top", "top").child(Flow::new("n-root", "root")
            .child(Flow::new("n-mid", "m1").child(Flow::new("n-leaf", "l1")).child(Flow::new("n-leaf", "l2")))
            .child(Flow::new("n-mid", "m2").child(Flow::new("n-leaf", "l3"))));
        mq::enqueue_flow(&client, flow).await.unwrap();
        assert_eq!(next(&mut rx).await, "root(m1(l1(),l2()),m2(l3()))");
        let order = order.lock().unwrap().clone();
        let at = |m: &str| order.iter().position(|o| o == m).unwrap();
        assert!(at("l1") < at("m1") && at("l2") < at("m1") && at("l3") < at("m2"), "{order:?}");
        assert!(at("m1") < at("root") && at("m2") < at("root"), "{order:?}");
        top.stop().await.unwrap();
        for w in workers {
            w.stop().await.unwrap();
        }
    }

    async fn repeating_a_flow_adds_nothing_twice_and_a_taken_id_is_refused(kind) {
        let (_server, client) = common::server_and_client(kind).await;
        let flow = || Flow::new("r-parent", "p").options(Opts::new().id("p"))
            .child(Flow::new("r-kids", "a").options(Opts::new().id("a")))
            .child(Flow::new("r-kids", "b").options(Opts::new().id("b")));
        let first = mq::enqueue_flow(&client, flow()).await.unwrap();
        assert!(first.added && first.children.iter().all(|c| c.added));
        let second = mq::enqueue_flow(&client, flow()).await.unwrap();
        assert!(!second.added && second.children.iter().all(|c| !c.added), "{second:?}");
        assert_eq!(mq::queue_size(&client, "r-kids").await.unwrap(), 2);

        // A child id taken by a message outside the flow: refused, and the nodes this call
        // added are removed again.
        mq::enqueue(&client, "r-kids", "plain", Opts::new().id("taken")).await.unwrap();
        let refused = mq::enqueue_flow(&client, Flow::new("r-parent", "q").options(Opts::new().id("q"))
            .child(Flow::new("r-kids", "c").options(Opts::new().id("c")))
            .child(Flow::new("r-kids", "t").options(Opts::new().id("taken")))).await.unwrap_err();
        assert!(refused.to_string().contains("taken"), "{refused}");
        assert_eq!(state(&client, "r-parent", "q").await, None);
        assert_eq!(state(&client, "r-kids", "c").await, None);
        assert_eq!(state(&client, "r-kids", "taken").await, Some(MessageState::Queued));

        let runs = Arc::new(AtomicUsize::new(0));
        let (parent_worker, mut ran_parents) = parents(&client, "r-parent").await;
        let kid_runs = runs.clone();
        let kids = Worker::start(&client, "r-kids", WorkerOptions::new(), move |_job: Job<String>| {
            kid_runs.fetch_add(1, Ordering::SeqCst);
            async { Outcome::success() }
        }).await.unwrap();
        let (id, results, _) = next(&mut ran_parents).await;
        assert_eq!(id, "p");
        assert_eq!(results.len(), 2);
        assert!(results.iter().all(|r| r.outcome == ChildOutcome::Completed(None)));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(ran_parents.try_recv().is_err(), "the parent ran twice");
        assert_eq!(runs.load(Ordering::SeqCst), 3, "a, b and the plain message, each once");
        kids.stop().await.unwrap();
        parent_worker.stop().await.unwrap();
    }
}

server_tests! {
    async fn a_flow_crosses_cluster_slots(kind) {
        let set = kermes::testing::ClusterSet::start(kind);
        let client = Client::connect(&set.url()).await.unwrap();
        let slot = |q: &str| kermes::cluster::key_slot(q.as_bytes());
        let owner = |q: &str| set.owner_of(slot(q), 0).unwrap();
        // The parent and its two children's queues, each on another primary.
        let mut names: Vec<String> = Vec::new();
        for i in 0.. {
            let q = format!("c-{i}");
            if names.iter().all(|n| owner(n) != owner(&q)) {
                names.push(q);
            }
            if names.len() == 3 {
                break;
            }
        }
        let (parent_q, a, b) = (names[0].as_str(), names[1].as_str(), names[2].as_str());
        let (parent_worker, mut ran_parents) = parents(&client, parent_q).await;
        let ran = Arc::new(std::sync::Mutex::new(Vec::new()));
        let wa = children(&client, a, ran.clone()).await;
        let wb = children(&client, b, ran.clone()).await;
        let mut sent = Vec::new();
        for i in 0..20 {
            let flow = Flow::new(parent_q, format!("p{i}"))
                .child(Flow::new(a, format!("a{i}")))
                .child(Flow::new(b, format!("b{i}")).on_failure(ChildFailure::FailParent));
            sent.push(mq::enqueue_flow(&client, flow).await.unwrap().id);
        }
        let mut seen = Vec::new();
        for _ in 0..20 {
            let (id, results, _) = next(&mut ran_parents).await;
            let values: Vec<String> = results.iter().map(|r| r.value::<String>().unwrap().unwrap()).collect();
            let i = sent.iter().position(|s| *s == id).unwrap();
            assert_eq!(values, [format!("a{i}!"), format!("b{i}!")]);
            seen.push(i);
        }
        seen.sort();
        assert_eq!(seen, (0..20).collect::<Vec<_>>());
        for w in [parent_worker, wa, wb] {
            w.stop().await.unwrap();
        }
        for q in [parent_q, a, b] {
            assert_eq!(flow_leftovers(&client, q).await, Vec::<String>::new(), "{q}");
        }
    }
}
