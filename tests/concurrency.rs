//! Many callers on one client: pipelining, cancellation safety, large values, push frames.

#[macro_use]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use kermes::testing::TestServer;
use kermes::{Client, Value};

server_tests! {
    async fn ten_thousand_concurrent_commands_each_get_their_own_reply(kind) {
        let server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        // Half joined in place, half spawned across the runtime's threads.
        let joined = futures::future::join_all((0..5_000i64).map(|i| {
            let client = &client;
            async move {
                let v: i64 = client.cmd("ECHO").arg(i).query().await.unwrap();
                assert_eq!(v, i);
            }
        }));
        let spawned: Vec<_> = (5_000..10_000i64)
            .map(|i| {
                let client = client.clone();
                tokio::spawn(async move {
                    let key = format!("k{i}");
                    client.cmd("SET").arg(&key).arg(i).exec().await.unwrap();
                    let v: i64 = client.cmd("GET").arg(&key).query().await.unwrap();
                    assert_eq!(v, i);
                })
            })
            .collect();
        joined.await;
        for t in spawned {
            t.await.unwrap();
        }
        let keys: i64 = client.cmd("DBSIZE").query().await.unwrap();
        assert_eq!(keys, 5_000);
    }

    async fn dropped_and_aborted_commands_never_desynchronise_the_connection(kind) {
        let server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        let checked = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for worker in 0..8i64 {
            let client = client.clone();
            let checked = checked.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..400i64 {
                    let n = worker * 1_000_000 + i;
                    match i % 4 {
                        // Cancelled after a random short while: before, during or after sending.
                        0 => {
                            let wait = Duration::from_micros((n as u64 * 7919) % 300);
                            tokio::select! {
                                r = client.cmd("ECHO").arg(n).query::<i64>() => assert_eq!(r.unwrap(), n),
                                _ = tokio::time::sleep(wait) => {}
                            }
                        }
                        // Aborted as a task.
                        1 => {
                            let c = client.clone();
                            let t = tokio::spawn(async move { c.cmd("ECHO").arg(n).query::<i64>().await });
                            tokio::task::yield_now().await;
                            t.abort();
                            if let Ok(r) = t.await {
                                assert_eq!(r.unwrap(), n);
                            }
                        }
                        // Checked: every reply must be this command's own.
                        _ => {
                            let v: i64 = client.cmd("ECHO").arg(n).query().await.unwrap();
                            assert_eq!(v, n);
                            checked.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(checked.load(Ordering::Relaxed), 8 * 200);
        for i in 0..1_000i64 {
            let v: i64 = client.cmd("ECHO").arg(i).query().await.unwrap();
            assert_eq!(v, i);
        }
    }

    async fn hundreds_of_callers_held_into_batches_each_get_their_own_reply(kind) {
        // 400 callers in a loop keep several batches in flight, so small batches are held
        // back and merged; every fourth command is cancelled, some of them while held.
        let server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicU64::new(0));
        let tasks: Vec<_> = (0..400i64)
            .map(|t| {
                let (client, stop, answered) = (client.clone(), stop.clone(), answered.clone());
                tokio::spawn(async move {
                    let mut i = 0i64;
                    while !stop.load(Ordering::Relaxed) {
                        let n = t * 10_000_000 + i;
                        i += 1;
                        if i % 4 == 0 {
                            let wait = Duration::from_micros((n as u64 * 7919) % 200);
                            tokio::select! {
                                r = client.cmd("ECHO").arg(n).query::<i64>() => assert_eq!(r.unwrap(), n),
                                _ = tokio::time::sleep(wait) => {}
                            }
                        } else {
                            let v: i64 = client.cmd("ECHO").arg(n).query().await.unwrap();
                            assert_eq!(v, n, "a reply went to another caller");
                            answered.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_secs(1)).await;
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            tokio::time::timeout(Duration::from_secs(10), t)
                .await
                .expect("a caller was stranded")
                .unwrap();
        }
        assert!(answered.load(Ordering::Relaxed) > 4_000, "{answered:?} answered");
        // A lone caller afterwards is answered at once: nothing waits for a batch to fill.
        let started = tokio::time::Instant::now();
        for i in 0..100i64 {
            let v: i64 = client.cmd("ECHO").arg(i).query().await.unwrap();
            assert_eq!(v, i);
        }
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    async fn a_64_mib_value_moves_while_small_commands_keep_flowing(kind) {
        let server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        let big: Bytes = (0..64 * 1024 * 1024).map(|i: u32| (i % 251) as u8).collect::<Vec<u8>>().into();
        let stop = Arc::new(AtomicBool::new(false));
        let small = {
            let client = client.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut n = 0i64;
                while !stop.load(Ordering::Relaxed) {
                    let v: i64 = client.cmd("ECHO").arg(n).query().await.unwrap();
                    assert_eq!(v, n);
                    n += 1;
                }
                n
            })
        };
        client.cmd("SET").arg("big").arg(&big).exec().await.unwrap();
        let back: Bytes = client.cmd("GET").arg("big").query().await.unwrap();
        assert!(back == big, "64 MiB value came back different");
        let len: i64 = client.cmd("STRLEN").arg("big").query().await.unwrap();
        assert_eq!(len, 64 * 1024 * 1024);
        stop.store(true, Ordering::Relaxed);
        let small_done = small.await.unwrap();
        assert!(small_done > 0, "small commands did not flow");
    }

    async fn a_small_in_flight_cap_makes_callers_wait_never_fail_or_hang(kind) {
        let server = TestServer::start(kind);
        let client = Client::builder().url(&server.url()).max_in_flight(4).connect().await.unwrap();
        let replies = futures::future::join_all((0..2_000i64).map(|i| {
            let client = &client;
            async move { client.cmd("ECHO").arg(i).query::<i64>().await.unwrap() }
        }))
        .await;
        assert_eq!(replies, (0..2_000).collect::<Vec<_>>());
    }

    async fn large_writes_and_large_replies_cross_without_deadlock(kind) {
        let server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        // 128 MiB each way through one socket at once: the task must keep reading replies
        // while its writes are blocked, or both sides' buffers fill and everything stops.
        let value = Bytes::from(vec![b'v'; 256 * 1024]);
        let tasks: Vec<_> = (0..512)
            .map(|i| {
                let (client, value) = (client.clone(), value.clone());
                tokio::spawn(async move {
                    let key = format!("big{}", i % 16);
                    client.cmd("SET").arg(&key).arg(&value).exec().await.unwrap();
                    let back: Bytes = client.cmd("GET").arg(&key).query().await.unwrap();
                    assert_eq!(back.len(), value.len());
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    }

    async fn each_worker_thread_keeps_to_its_own_shared_connection(kind) {
        let server = TestServer::start(kind);
        // This runtime has two workers: by default, one shared connection each.
        let client = Client::builder().url(&server.url()).client_name("per-worker").connect().await.unwrap();
        let list: String = client.cmd("CLIENT").arg("LIST").query().await.unwrap();
        assert_eq!(list.lines().filter(|l| l.contains("name=per-worker")).count(), 2, "{list}");
        // Every thread's commands go through one connection, whichever task sends them.
        let seen = Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let (client, seen) = (client.clone(), seen.clone());
                tokio::spawn(async move {
                    for _ in 0..20 {
                        let thread = std::thread::current().id();
                        let id: i64 = client.cmd("CLIENT").arg("ID").query().await.unwrap();
                        seen.lock().unwrap().entry(thread).or_insert_with(std::collections::HashSet::new).insert(id);
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let seen = std::mem::take(&mut *seen.lock().unwrap());
        for (thread, ids) in seen.iter() {
            assert_eq!(ids.len(), 1, "{thread:?} sent through several connections: {ids:?}");
        }
        let ids: std::collections::HashSet<_> = seen.values().flatten().collect();
        assert_eq!(ids.len(), seen.len(), "two threads shared a connection: {seen:?}");
        // Whichever threads the scheduler used above, two threads that send one after the
        // other get consecutive numbers, so different connections.
        let handle = tokio::runtime::Handle::current();
        let from_new_thread = || {
            let (client, handle) = (client.clone(), handle.clone());
            std::thread::spawn(move || {
                handle.block_on(async {
                    let mut ids = std::collections::HashSet::new();
                    for _ in 0..5 {
                        ids.insert(client.cmd("CLIENT").arg("ID").query::<i64>().await.unwrap());
                    }
                    ids
                })
            })
            .join()
            .unwrap()
        };
        let (first, second) = (from_new_thread(), from_new_thread());
        assert_eq!((first.len(), second.len()), (1, 1), "{first:?} {second:?}");
        assert_ne!(first, second, "two threads shared a connection");
        // Commands one task issues at once stay in order (one thread, one connection).
        let key = "per-worker:order";
        for round in 0..50i64 {
            let (set, get) = tokio::join!(
                client.cmd("SET").arg(key).arg(round).exec(),
                client.cmd("GET").arg(key).query::<i64>()
            );
            set.unwrap();
            assert_eq!(get.unwrap(), round);
        }
        // A number set by the user is used round-robin, on any runtime.
        let three = Client::builder().url(&server.url()).client_name("three").shared_connections(3).connect().await.unwrap();
        let mut ids = std::collections::HashSet::new();
        for _ in 0..6 {
            ids.insert(three.cmd("CLIENT").arg("ID").query::<i64>().await.unwrap());
        }
        assert_eq!(ids.len(), 3);
    }

    async fn dropping_the_last_client_handle_closes_its_connections(kind) {
        let server = TestServer::start(kind);
        let observer = Client::connect(&server.url()).await.unwrap();
        let count = || async {
            let list: String = observer.cmd("CLIENT").arg("LIST").query().await.unwrap();
            list.lines().count()
        };
        let before = count().await;
        let client = Client::builder().url(&server.url()).shared_connections(3).connect().await.unwrap();
        let _ex = client.exclusive().await.unwrap();
        assert_eq!(count().await, before + 4);
        drop(_ex);
        drop(client);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while count().await != before {
            assert!(std::time::Instant::now() < deadline, "connections outlived the client");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn resp3_push_frames_are_routed_apart_from_replies(kind) {
        let server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        let mut pushes = client.push_frames().remove(0);
        // Pub/sub on the shared connection: messages arrive as push frames between ordinary
        // replies.
        let sub = client.shared_subscriber().unwrap();
        sub.subscribe("feed").await.unwrap();
        let writer = Client::connect(&server.url()).await.unwrap();
        for round in 0..200i64 {
            writer.cmd("PUBLISH").arg("feed").arg(round).exec().await.unwrap();
            let v: i64 = client.cmd("ECHO").arg(round).query().await.unwrap();
            assert_eq!(v, round);
        }
        let first = loop {
            let item = tokio::time::timeout(Duration::from_secs(5), pushes.recv()).await.unwrap().unwrap();
            if let kermes::Push::Frame(Value::Push(items)) = item
                && items[0].as_bytes().is_some_and(|b| &b[..] == b"message")
            {
                break items;
            }
        };
        let items = first;
        assert_eq!(items[2].as_bytes().map(|b| &b[..]), Some(&b"0"[..]));
    }
}
