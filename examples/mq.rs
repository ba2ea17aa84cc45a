//! The message queue: a producer enqueues typed messages (with a de-dup id, a delay and a
//! priority), a worker of 8 concurrent handlers takes them, a failing message ends in the
//! dead letters, and the monitoring calls show where everything is.
//!
//!     cargo run --example mq

use std::time::Duration;

use kermes::Serde;
use kermes::mq::{self, Backoff, EnqueueOptions, Job, Outcome, Worker, WorkerOptions};
use kermes::prelude::*;

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Resize {
    image: String,
    width: u32,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (url, _server) = kermes::testing::url_from_env_or_start()?;
    let client = Client::connect(&url).await?;
    let queue = "example-resize";
    mq::clear(&client, queue).await?;

    // Producer: ids de-duplicate; a second enqueue of the same id is refused while queued.
    for (i, width) in [640, 1280, 0, 320].into_iter().enumerate() {
        let job = Serde(Resize {
            image: format!("img/{i}.png"),
            width,
        });
        let sent = mq::enqueue(
            &client,
            queue,
            job,
            EnqueueOptions::new().id(format!("img-{i}")),
        )
        .await?;
        println!("enqueue img-{i}: {:?}", sent.result);
    }
    let again = mq::enqueue(
        &client,
        queue,
        Serde(Resize {
            image: "img/0.png".into(),
            width: 640,
        }),
        EnqueueOptions::new().id("img-0"),
    )
    .await?;
    println!("enqueue img-0 again: {:?}", again.result);
    let urgent = EnqueueOptions::new().id("urgent").priority(10);
    mq::enqueue(
        &client,
        queue,
        Serde(Resize {
            image: "hero.png".into(),
            width: 1920,
        }),
        urgent,
    )
    .await?;
    let later = EnqueueOptions::new().init_backoff(Duration::from_millis(300));
    mq::enqueue(
        &client,
        queue,
        Serde(Resize {
            image: "later.png".into(),
            width: 100,
        }),
        later,
    )
    .await?;
    println!(
        "before the worker: {:?}",
        mq::queue_status(&client, queue).await?
    );

    // Worker: width 0 is a bad request; it fails twice, 50 ms apart, then is dead-lettered.
    let options = WorkerOptions::new()
        .concurrency(8)
        .max_attempts(Some(2))
        .backoff(Backoff::Fixed(Duration::from_millis(50)));
    let worker = Worker::start(
        &client,
        queue,
        options,
        |job: Job<Serde<Resize>>| async move {
            let Serde(r) = job.message();
            if r.width == 0 {
                return Outcome::error(format!("{}: width must be positive", r.image));
            }
            tokio::time::sleep(Duration::from_millis(20)).await; // resizing...
            println!(
                "resized {} to {} (id {}, attempt {})",
                r.image,
                r.width,
                job.id(),
                job.attempt()
            );
            // Refuse the same id for a minute after success.
            Outcome::Success(Some(Duration::from_secs(60)))
        },
    )
    .await?;

    tokio::time::sleep(Duration::from_millis(600)).await;
    println!("after: {:?}", mq::queue_status(&client, queue).await?);
    for dead in mq::dead_letters(&client, queue, 0, 10).await? {
        println!(
            "dead letter {} after {} attempts: {}",
            dead.id, dead.attempts, dead.error
        );
    }
    println!(
        "img-1: {:?}",
        mq::message_status(&client, queue, "img-1").await?
    );
    println!("queues: {:?}", mq::queue_names(&client).await?);
    let stats = worker.stop().await?;
    println!(
        "worker: {} succeeded, {} failed, {} dead-lettered; handling p50 {:?}, queue wait p99 {:?}",
        stats.succeeded,
        stats.failed,
        stats.dead_lettered,
        stats.handling.p50,
        stats.queue_wait.p99
    );
    mq::clear(&client, queue).await?;
    Ok(())
}
