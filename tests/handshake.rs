//! Connecting: URLs, unix sockets, AUTH and ACL users, SELECT, SETNAME, SETINFO, RESP2/RESP3.

#[macro_use]
mod common;

use std::time::Duration;

use kermes::testing::{ServerKind, ServerOptions, TestServer};
use kermes::{Client, Protocol};

server_tests! {
    async fn resp3_is_negotiated_by_default_and_resp2_on_request(kind) {
        let server = TestServer::start(kind);
        let c3 = Client::connect(&server.url()).await.unwrap();
        assert_eq!(c3.protocol(), Protocol::Resp3);
        let c2 = Client::connect(&format!("{}?protocol=resp2", server.url())).await.unwrap();
        assert_eq!(c2.protocol(), Protocol::Resp2);
        c3.cmd("HSET").arg("h").arg([("a", "1"), ("b", "2")]).exec().await.unwrap();
        // A map arrives as a RESP3 map on one and a flat array on the other; both read alike.
        let m3: std::collections::BTreeMap<String, i64> = c3.cmd("HGETALL").arg("h").query().await.unwrap();
        let m2: std::collections::BTreeMap<String, i64> = c2.cmd("HGETALL").arg("h").query().await.unwrap();
        assert_eq!(m3, m2);
        assert_eq!(m3.get("b"), Some(&2));
        let raw3: kermes::Value = c3.cmd("HGETALL").arg("h").query().await.unwrap();
        assert!(matches!(raw3, kermes::Value::Map(_)), "{raw3:?}");
    }

    async fn db_and_client_name_come_from_the_url(kind) {
        let server = TestServer::start(kind);
        let client = Client::connect(&format!("{}/5?client_name=kermes-test", server.url())).await.unwrap();
        client.cmd("SET").arg("where").arg("db5").exec().await.unwrap();
        let name: String = client.cmd("CLIENT").arg("GETNAME").query().await.unwrap();
        assert_eq!(name, "kermes-test");
        let other = Client::connect(&server.url()).await.unwrap();
        let in_db0: Option<String> = other.cmd("GET").arg("where").query().await.unwrap();
        assert_eq!(in_db0, None);
        let info: String = client.cmd("CLIENT").arg("INFO").query().await.unwrap();
        assert!(info.contains(" db=5 "), "{info}");
    }

    async fn client_setinfo_names_the_library_where_supported(kind) {
        let server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        let info: String = client.cmd("CLIENT").arg("INFO").query().await.unwrap();
        match kind {
            // Redis 7.0 predates CLIENT SETINFO; the handshake must still succeed there.
            ServerKind::Redis if !info.contains("lib-name=") => {}
            _ => assert!(info.contains("lib-name=kermes"), "{info}"),
        }
    }

    async fn password_auth_succeeds_and_a_wrong_one_is_a_clear_connect_error(kind) {
        let server = TestServer::start_with(kind, ServerOptions::default().args(["--requirepass", "s3cret"]));
        let port = server.port();
        for protocol in ["resp2", "resp3"] {
            let ok = Client::connect(&format!("redis://:s3cret@127.0.0.1:{port}?protocol={protocol}")).await.unwrap();
            let pong: String = ok.cmd("PING").query().await.unwrap();
            assert_eq!(pong, "PONG");
            let err = Client::connect(&format!("redis://:wrong@127.0.0.1:{port}?protocol={protocol}")).await.unwrap_err();
            assert!(err.is_connect(), "{err}");
            assert!(!err.to_string().contains("wrong"), "password leaked: {err}");
            let err = Client::connect(&format!("redis://127.0.0.1:{port}?protocol={protocol}")).await.unwrap_err();
            assert!(err.is_connect(), "{err}");
            assert!(err.to_string().contains("NOAUTH") || err.to_string().contains("auth"), "{err}");
        }
    }

    async fn acl_users_authenticate_with_username_and_password(kind) {
        let server = TestServer::start_with(kind, ServerOptions::default().args(["--user", "alice", "on", ">wonder", "~*", "&*", "+@all"]));
        let port = server.port();
        let alice = Client::builder()
            .url(&format!("redis://127.0.0.1:{port}"))
            .username("alice")
            .password("wonder")
            .connect()
            .await
            .unwrap();
        let who: String = alice.cmd("ACL").arg("WHOAMI").query().await.unwrap();
        assert_eq!(who, "alice");
        let err = Client::connect(&format!("redis://alice:nope@127.0.0.1:{port}")).await.unwrap_err();
        assert!(err.is_connect(), "{err}");
        // The server's message, once.
        assert_eq!(err.to_string().matches("WRONGPASS").count(), 1, "{err}");
    }

    async fn unix_sockets_work_like_tcp(kind) {
        let server = TestServer::start_with(kind, ServerOptions::default().unix_socket());
        let client = Client::connect(&format!("{}?db=2", server.url())).await.unwrap();
        client.cmd("SET").arg("k").arg("v").exec().await.unwrap();
        let v: String = client.cmd("GET").arg("k").query().await.unwrap();
        assert_eq!(v, "v");
        let info: String = client.cmd("CLIENT").arg("INFO").query().await.unwrap();
        assert!(info.contains(" db=2 "), "{info}");
    }
}

#[tokio::test]
async fn connecting_to_a_closed_port_fails_fast_with_a_connect_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = std::time::Instant::now();
    let err = Client::connect(&format!("redis://127.0.0.1:{port}"))
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_server_that_never_answers_the_handshake_hits_the_connect_timeout() {
    // Accepts TCP (the kernel completes it from the backlog) but never replies.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let started = std::time::Instant::now();
    let err = Client::builder()
        .url(&format!("redis://127.0.0.1:{port}"))
        .connect_timeout(Duration::from_millis(300))
        .connect()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
    drop(listener);
}

#[tokio::test]
async fn invalid_settings_are_reported_by_connect() {
    let err = Client::connect("redis://host:notaport").await.unwrap_err();
    assert!(err.is_config() && err.to_string().contains("port"), "{err}");
    let err = Client::builder()
        .shared_connections(0)
        .connect()
        .await
        .unwrap_err();
    assert!(
        err.is_config() && err.to_string().contains("shared_connections"),
        "{err}"
    );
    let err = Client::builder()
        .client_name("has space")
        .connect()
        .await
        .unwrap_err();
    assert!(
        err.is_config() && err.to_string().contains("client_name"),
        "{err}"
    );
}
