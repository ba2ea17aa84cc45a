//! Explicit pipelines, MULTI/EXEC transactions, and `atomic` read-modify-write.

#[macro_use]
mod common;

use kermes::prelude::*;
use kermes::testing::TestServer;
use kermes::{Value, atomic};

server_tests! {
    async fn a_pipeline_in_flight_holds_little_memory(kind) {
        let server = TestServer::start(kind);
        let c = Client::connect(&server.url()).await.unwrap();
        let pipe = c.pipeline();
        pipe.get("a");
        // A pipeline's future is held by its task for as long as the replies take: the
        // cluster and exclusive paths are boxed apart, so the common one stays small.
        let run = pipe.run();
        let size = std::mem::size_of_val(&run);
        assert!(size <= 2048, "a pipeline in flight holds {size} bytes");
        assert_eq!(run.await.unwrap().len(), 1);
        let pipe = c.pipeline();
        pipe.get("a");
        let size = std::mem::size_of_val(&pipe.query::<Vec<Option<String>>>());
        assert!(size <= 2048, "a pipeline query in flight holds {size} bytes");
    }

    async fn typed_replies_and_errors_as_values(kind) {
        let server = TestServer::start(kind);
        let c = Client::connect(&server.url()).await.unwrap();
        let pipe = c.pipeline();
        pipe.set("a", 1);
        pipe.incr("a");
        pipe.get("missing");
        let (_, n, none): (Value, i64, Option<String>) = pipe.query().await.unwrap();
        assert_eq!((n, none), (2, None));

        let pipe = c.pipeline();
        pipe.incr("a");
        pipe.lpush("a", "x");
        pipe.incr("a");
        let replies = pipe.run().await.unwrap();
        assert_eq!(replies.len(), 3);
        assert_eq!(replies[0].as_ref().unwrap(), &Value::Int(3));
        assert_eq!(replies[1].as_ref().unwrap_err().server_error().unwrap().code(), "WRONGTYPE");
        assert_eq!(replies[2].as_ref().unwrap(), &Value::Int(4));
        // Typed reading fails on the first error.
        let pipe = c.pipeline();
        pipe.incr("a");
        pipe.lpush("a", "x");
        let err = pipe.query::<(i64, i64)>().await.unwrap_err();
        assert_eq!(err.server_error().unwrap().code(), "WRONGTYPE");
        // One command still comes back as a vector.
        let pipe = c.pipeline();
        pipe.get("a");
        assert_eq!(pipe.run().await.unwrap().len(), 1);
        assert!(c.pipeline().run().await.unwrap().is_empty());
    }

    async fn parsers_map_replies_and_their_failures_stay_local(kind) {
        let server = TestServer::start(kind);
        let c = Client::connect(&server.url()).await.unwrap();
        c.set("n", 21).await.unwrap();
        let pipe = c.pipeline();
        pipe.get("n").parse(|v| Ok(Value::Int(i64::from_value(v)? * 2)));
        pipe.get("n").parse(|v| {
            let n = i64::from_value(v)?;
            if n > 10 { Err(kermes::ServerError::new("TOOBIG parser refused").into()) } else { Ok(Value::Int(n)) }
        });
        pipe.echo("after");
        let replies = pipe.run().await.unwrap();
        assert_eq!(replies[0].as_ref().unwrap(), &Value::Int(42));
        assert_eq!(replies[1].as_ref().unwrap_err().server_error().unwrap().code(), "TOOBIG");
        assert_eq!(replies[2].as_ref().unwrap().as_bytes().unwrap(), "after");
        // Single commands take parsers too, on the client and on exclusive connections.
        let doubled = c.get("n").to::<i64>().parse(|n| Ok(n * 2)).await.unwrap();
        assert_eq!(doubled, 42);
        let refused = c.get("n").to::<i64>().parse(|_| -> kermes::Result<()> { Err(kermes::ServerError::new("NOPE").into()) }).await;
        assert_eq!(refused.unwrap_err().server_error().unwrap().code(), "NOPE");
        let ex = c.exclusive().await.unwrap();
        assert_eq!(ex.get("n").to::<i64>().parse(|n| Ok(n + 1)).await.unwrap(), 22);
    }

    async fn ten_thousand_commands_in_one_pipeline(kind) {
        let server = TestServer::start(kind);
        let c = Client::connect(&server.url()).await.unwrap();
        let pipe = c.pipeline();
        for i in 0..10_000 {
            pipe.set(format!("k{i}"), i);
        }
        for i in 0..10_000 {
            pipe.get(format!("k{i}"));
        }
        let replies = pipe.run().await.unwrap();
        assert_eq!(replies.len(), 20_000);
        for (i, r) in replies[10_000..].iter().enumerate() {
            assert_eq!(i64::from_value(r.as_ref().unwrap().clone()).unwrap(), i as i64);
        }
        let stats: String = c.info_with("commandstats").to().await.unwrap();
        assert!(stats.contains("cmdstat_set:calls=10000,"), "{stats}");
    }

    async fn a_pipeline_with_a_blocking_command_runs_on_an_exclusive_connection(kind) {
        let server = TestServer::start(kind);
        let c = Client::connect(&server.url()).await.unwrap();
        let pipe = c.pipeline();
        pipe.rpush("q", "job");
        pipe.blpop("q", 1.0);
        let (len, popped): (i64, (String, String)) = pipe.query().await.unwrap();
        assert_eq!((len, popped), (1, ("q".into(), "job".into())));
    }

    async fn transactions_run_atomically_and_abort_on_queue_errors(kind) {
        let server = TestServer::start(kind);
        let c = Client::connect(&server.url()).await.unwrap();
        let tx = c.transaction();
        tx.incr("t");
        tx.incrby("t", 10);
        tx.lpush("t", "wrong type at run time");
        let replies = tx.run().await.unwrap();
        assert_eq!(replies[1].as_ref().unwrap(), &Value::Int(11));
        assert!(replies[2].is_err(), "a runtime error is a value; the rest ran");
        // A command the server refuses while queueing aborts the whole transaction.
        let tx = c.transaction();
        tx.incr("t");
        tx.cmd(kermes::cmd("NOSUCHCOMMAND"));
        let err = tx.run().await.unwrap_err();
        assert!(err.server_error().is_some(), "{err}");
        assert_eq!(c.get("t").to::<i64>().await.unwrap(), 11, "nothing ran");
    }

    async fn atomic_increments_under_contention_are_exact(kind) {
        let server = TestServer::start(kind);
        let c = Client::connect(&server.url()).await.unwrap();
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let c = c.clone();
                tokio::spawn(async move {
                    for _ in 0..10 {
                        atomic(&c, 1000, |tx| async move {
                            tx.watch("counter").await?;
                            let n: i64 = tx.get("counter").to::<Option<i64>>().await?.unwrap_or(0);
                            tokio::task::yield_now().await; // widen the race window
                            tx.writes().set("counter", n + 1);
                            Ok(())
                        })
                        .await
                        .unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(c.get("counter").to::<i64>().await.unwrap(), 200);
    }

    async fn atomic_returns_the_body_error_and_gives_up_after_max_attempts(kind) {
        let server = TestServer::start(kind);
        let c = Client::connect(&server.url()).await.unwrap();
        let err = atomic(&c, 3, |tx| async move {
            tx.watch("k").await?;
            tx.writes().set("k", "never");
            Err::<(), _>(kermes::ServerError::new("BODY failed").into())
        })
        .await
        .unwrap_err();
        assert_eq!(err.server_error().unwrap().code(), "BODY");
        assert_eq!(c.get::<Option<Bytes>>("k").await.unwrap(), None);

        let other = c.clone();
        let attempts = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = attempts.clone();
        let err = atomic(&c, 3, move |tx| {
            let (other, counted) = (other.clone(), counted.clone());
            async move {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tx.watch("k").await?;
                other.incr("k").await?; // a conflicting write every time
                tx.writes().set("k", "mine");
                Ok(())
            }
        })
        .await
        .unwrap_err();
        assert!(err.is_aborted(), "{err}");
        assert_eq!(attempts.load(std::sync::atomic::Ordering::SeqCst), 3);
        assert_eq!(c.get("k").to::<i64>().await.unwrap(), 3);
    }
}
