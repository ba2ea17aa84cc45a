//! `kermes::session::RedisStore` against real servers: the store's own contract, then a
//! real axum app with the session layer, driven request by request.
#![cfg(feature = "tower-sessions")]

#[macro_use]
mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{Request, StatusCode, header};
use axum::routing::{get, post};
use http_body_util::BodyExt;
use kermes::Client;
use kermes::session::RedisStore;
use tokio::sync::{Mutex, Notify};
use tower::ServiceExt;
use tower_sessions::session::{Id, Record};
use tower_sessions::{Expiry, Session, SessionManagerLayer, SessionStore};

fn record(user: &str, expires_in: time::Duration) -> Record {
    let mut data = std::collections::HashMap::new();
    data.insert("user".to_string(), serde_json::json!(user));
    Record {
        id: Id::default(),
        data,
        expiry_date: time::OffsetDateTime::now_utc() + expires_in,
    }
}

async fn exists(client: &Client, key: &str) -> bool {
    client.cmd("EXISTS").arg(key).query::<i64>().await.unwrap() == 1
}

/// Lets a test hold a request inside its handler, between loading the session and
/// changing it.
#[derive(Clone, Default)]
struct Gate {
    entered: Arc<Notify>,
    release: Arc<Notify>,
    armed: Arc<Mutex<bool>>,
}

async fn login(session: Session, body: String) -> &'static str {
    session.insert("user", body).await.unwrap();
    "welcome"
}

async fn me(session: Session) -> String {
    session
        .get::<String>("user")
        .await
        .unwrap()
        .unwrap_or_else(|| "anonymous".into())
}

async fn visit(State(gate): State<Gate>, session: Session) -> String {
    let n: u64 = session.get("visits").await.unwrap().unwrap_or(0);
    let held = std::mem::take(&mut *gate.armed.lock().await);
    if held {
        gate.entered.notify_one();
        gate.release.notified().await;
    }
    session.insert("visits", n + 1).await.unwrap();
    (n + 1).to_string()
}

async fn logout(session: Session) -> &'static str {
    session.flush().await.unwrap();
    "bye"
}

fn app(store: RedisStore, expiry: Expiry, gate: Gate) -> Router {
    Router::new()
        .route("/login", post(login))
        .route("/me", get(me))
        .route("/visit", post(visit))
        .route("/logout", post(logout))
        .with_state(gate)
        .layer(
            SessionManagerLayer::new(store)
                .with_secure(false)
                .with_expiry(expiry),
        )
}

/// One request; the status, the session cookie set (if any) and the body.
async fn send(
    app: &Router,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    body: &str,
) -> (StatusCode, Option<String>, String) {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    let res = app
        .clone()
        .oneshot(req.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let set = res
        .headers()
        .get(header::SET_COOKIE)
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned());
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (status, set, String::from_utf8(bytes.to_vec()).unwrap())
}

fn session_key(store: &RedisStore, cookie: &str) -> String {
    let id: Id = cookie.split_once('=').unwrap().1.parse().unwrap();
    store.key(&id)
}

server_tests! {
    async fn the_store_creates_saves_loads_and_deletes(kind) {
        let (_server, client) = common::server_and_client(kind).await;
        let store = RedisStore::new(&client);
        let mut r = record("ada", time::Duration::hours(1));
        store.create(&mut r).await.unwrap();
        let key = store.key(&r.id);
        assert!(key.starts_with("tower-sessions:{") && key.ends_with('}'), "{key}");
        let ttl: i64 = client.cmd("PTTL").arg(&key).query().await.unwrap();
        assert!(ttl > 3_590_000 && ttl <= 3_600_000, "PTTL {ttl}");
        let loaded = store.load(&r.id).await.unwrap().unwrap();
        assert_eq!(loaded.data, r.data);
        assert_eq!(
            loaded.expiry_date.unix_timestamp_nanos() / 1_000_000,
            r.expiry_date.unix_timestamp_nanos() / 1_000_000
        );

        // An id already taken is never overwritten: create picks another.
        let taken = r.id;
        let mut twin = record("mallory", time::Duration::hours(1));
        twin.id = taken;
        store.create(&mut twin).await.unwrap();
        assert_ne!(twin.id, taken);
        assert_eq!(store.load(&taken).await.unwrap().unwrap().data["user"], "ada");
        assert_eq!(store.load(&twin.id).await.unwrap().unwrap().data["user"], "mallory");

        // A save after the key expired in Redis writes it again instead of dropping it.
        client.cmd("DEL").arg(&key).query::<i64>().await.unwrap();
        r.data.insert("cart".into(), serde_json::json!(3));
        store.save(&r).await.unwrap();
        assert_eq!(store.load(&r.id).await.unwrap().unwrap().data["cart"], 3);

        // A save after a delete (a logout elsewhere) does not bring the session back.
        store.delete(&r.id).await.unwrap();
        assert_eq!(store.load(&r.id).await.unwrap(), None);
        store.save(&r).await.unwrap();
        assert_eq!(store.load(&r.id).await.unwrap(), None, "resurrected after delete");

        // A record already past its expiry is removed, not written.
        let mut old = record("gone", time::Duration::hours(1));
        store.create(&mut old).await.unwrap();
        old.expiry_date = time::OffsetDateTime::now_utc() - time::Duration::seconds(1);
        store.save(&old).await.unwrap();
        assert!(!exists(&client, &store.key(&old.id)).await);

        // Prefixes and codecs.
        assert!(RedisStore::new(&client).prefix("a{b").is_err());
        let other = RedisStore::new(&client).prefix("app:sess:").unwrap()
            .codec(kermes::ValueCodec::new().format(kermes::Format::Json));
        let mut j = record("json", time::Duration::minutes(5));
        other.create(&mut j).await.unwrap();
        // Serialized values read as raw bytes (as String they point at Serde<T>).
        let raw: Vec<u8> = client.cmd("GET").arg(other.key(&j.id)).query().await.unwrap();
        let raw = String::from_utf8_lossy(&raw);
        assert!(other.key(&j.id).starts_with("app:sess:{") && raw.contains("\"json\""), "{raw}");
        assert_eq!(other.load(&j.id).await.unwrap().unwrap().data, j.data);
    }

    async fn an_axum_app_logs_in_sees_its_session_and_expires_it(kind) {
        let (_server, client) = common::server_and_client(kind).await;
        let store = RedisStore::new(&client);
        let app = app(
            store.clone(),
            Expiry::OnInactivity(time::Duration::milliseconds(1500)),
            Gate::default(),
        );
        let (status, cookie, body) = send(&app, "POST", "/login", None, "ada").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "welcome"));
        let cookie = cookie.expect("login sets the session cookie");
        assert!(exists(&client, &session_key(&store, &cookie)).await);
        let (_, _, who) = send(&app, "GET", "/me", Some(&cookie), "").await;
        assert_eq!(who, "ada");
        let (_, _, stranger) = send(&app, "GET", "/me", None, "").await;
        assert_eq!(stranger, "anonymous");

        // Inactive past its expiry: gone from Redis, and the app sees nobody.
        tokio::time::sleep(Duration::from_millis(2000)).await;
        assert!(!exists(&client, &session_key(&store, &cookie)).await);
        let (_, _, who) = send(&app, "GET", "/me", Some(&cookie), "").await;
        assert_eq!(who, "anonymous");

        // Logout deletes it at once.
        let (_, cookie, _) = send(&app, "POST", "/login", None, "bob").await;
        let cookie = cookie.unwrap();
        send(&app, "POST", "/logout", Some(&cookie), "").await;
        let (_, _, who) = send(&app, "GET", "/me", Some(&cookie), "").await;
        assert_eq!(who, "anonymous");
    }

    async fn a_save_after_the_session_expired_in_redis_is_not_lost(kind) {
        let (_server, client) = common::server_and_client(kind).await;
        let store = RedisStore::new(&client);
        let gate = Gate::default();
        let app = app(store.clone(), Expiry::OnInactivity(time::Duration::hours(1)), gate.clone());
        let (_, cookie, n) = send(&app, "POST", "/visit", None, "").await;
        assert_eq!(n, "1");
        let cookie = cookie.unwrap();
        let key = session_key(&store, &cookie);

        // A request loads the session; while it runs, the key expires in Redis (evicted,
        // or a server clock ahead of ours); then the request saves.
        *gate.armed.lock().await = true;
        let held = {
            let (app, cookie) = (app.clone(), cookie.clone());
            tokio::spawn(async move { send(&app, "POST", "/visit", Some(&cookie), "").await })
        };
        gate.entered.notified().await;
        client.cmd("PEXPIRE").arg((&key, 1)).query::<i64>().await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!exists(&client, &key).await);
        gate.release.notify_one();
        let (status, _, n) = held.await.unwrap();
        assert_eq!((status, n.as_str()), (StatusCode::OK, "2"));
        let (_, _, n) = send(&app, "POST", "/visit", Some(&cookie), "").await;
        assert_eq!(n, "3", "the save after expiry was dropped");
    }

    async fn concurrent_requests_of_one_session_keep_it(kind) {
        let (_server, client) = common::server_and_client(kind).await;
        let store = RedisStore::new(&client);
        let app = app(store.clone(), Expiry::OnInactivity(time::Duration::hours(1)), Gate::default());
        let (_, cookie, _) = send(&app, "POST", "/visit", None, "").await;
        let cookie = cookie.unwrap();
        let requests: Vec<_> = (0..32)
            .map(|_| {
                let (app, cookie) = (app.clone(), cookie.clone());
                tokio::spawn(async move { send(&app, "POST", "/visit", Some(&cookie), "").await })
            })
            .collect();
        for r in requests {
            let (status, new_cookie, n) = r.await.unwrap();
            assert_eq!(status, StatusCode::OK);
            let n: u64 = n.parse().unwrap();
            assert!((2..=33).contains(&n), "{n}");
            if let Some(c) = new_cookie {
                assert_eq!(c, cookie, "the session id stays");
            }
        }
        // Saves race (last write wins, as with every tower-sessions store); the session
        // itself is intact and keeps counting.
        let (_, _, n) = send(&app, "POST", "/visit", Some(&cookie), "").await;
        let n: u64 = n.parse().unwrap();
        assert!((3..=34).contains(&n), "{n}");
        let sessions: Vec<String> = client.cmd("KEYS").arg("tower-sessions:*").query().await.unwrap();
        assert_eq!(sessions, vec![session_key(&store, &cookie)]);
    }
}

server_tests! {
    async fn the_store_works_on_a_cluster(kind) {
        let set = kermes::testing::ClusterSet::start(kind);
        let client = Client::connect(&set.url()).await.unwrap();
        let store = RedisStore::new(&client);
        let mut slots = std::collections::HashSet::new();
        for i in 0..20 {
            let mut r = record(&format!("user{i}"), time::Duration::minutes(5));
            store.create(&mut r).await.unwrap();
            slots.insert(kermes::cluster::key_slot(store.key(&r.id).as_bytes()));
            r.data.insert("n".into(), serde_json::json!(i));
            store.save(&r).await.unwrap();
            assert_eq!(store.load(&r.id).await.unwrap().unwrap().data["n"], i);
            store.delete(&r.id).await.unwrap();
            assert_eq!(store.load(&r.id).await.unwrap(), None);
        }
        assert!(slots.len() > 10, "sessions spread over the slots");
    }
}
