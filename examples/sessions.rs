//! Sessions for an axum app, kept in Redis by `kermes::session::RedisStore` (a
//! tower-sessions store): a visit counter per browser. The example serves the app on a local
//! port, visits it three times as one browser would (keeping the session cookie), and
//! once as a new browser, then exits; with `--serve` it keeps serving on
//! http://127.0.0.1:3000 for a real browser.
//!
//! Uses `REDIS_URL` when set; otherwise starts a throwaway redis-server (or valkey-server)
//! from a local binary (see `scripts/install-servers.sh`).
//!
//!     cargo run --example sessions --features testing,tower-sessions

use axum::Router;
use axum::routing::get;
use kermes::Client;
use kermes::session::RedisStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower_sessions::{Expiry, Session, SessionManagerLayer};

async fn count(session: Session) -> String {
    let visits: u64 = session.get("visits").await.unwrap_or_default().unwrap_or(0) + 1;
    if let Err(e) = session.insert("visits", visits).await {
        return format!("session error: {e}\n");
    }
    format!("visit number {visits}\n")
}

/// A GET with an optional cookie over plain HTTP/1.1; the body and the cookie set.
async fn visit(port: u16, cookie: Option<&str>) -> std::io::Result<(String, Option<String>)> {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let cookie = cookie.map_or(String::new(), |c| format!("Cookie: {c}\r\n"));
    s.write_all(
        format!("GET / HTTP/1.1\r\nHost: localhost\r\n{cookie}Connection: close\r\n\r\n")
            .as_bytes(),
    )
    .await?;
    let mut reply = String::new();
    s.read_to_string(&mut reply).await?;
    let (head, body) = reply.split_once("\r\n\r\n").unwrap_or((&reply, ""));
    let set = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .map(|c| c.split(';').next().unwrap_or(c).to_owned());
    Ok((body.trim().to_owned(), set))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (url, _server) = kermes::testing::url_from_env_or_start()?;
    let client = Client::connect(&url).await?;
    let sessions = SessionManagerLayer::new(RedisStore::new(&client))
        .with_secure(false)
        .with_expiry(Expiry::OnInactivity(
            tower_sessions::cookie::time::Duration::hours(1),
        ));
    let app = Router::new().route("/", get(count)).layer(sessions);

    let serve = std::env::args().any(|a| a == "--serve");
    let listener = tokio::net::TcpListener::bind(if serve {
        "127.0.0.1:3000"
    } else {
        "127.0.0.1:0"
    })
    .await?;
    let port = listener.local_addr()?.port();
    if serve {
        println!("serving on http://127.0.0.1:{port}/ (Ctrl-C to stop)");
        axum::serve(listener, app).await?;
        return Ok(());
    }
    tokio::spawn(async move { axum::serve(listener, app).await });

    let (first, cookie) = visit(port, None).await?;
    let cookie = cookie.ok_or("the app set no session cookie")?;
    println!("browser A: {first} (cookie {cookie})");
    for _ in 0..2 {
        println!("browser A: {}", visit(port, Some(&cookie)).await?.0);
    }
    println!("browser B: {}", visit(port, None).await?.0);
    let keys: Vec<String> = client.cmd("KEYS").arg("tower-sessions:*").query().await?;
    println!("sessions in Redis: {}", keys.len());
    Ok(())
}
