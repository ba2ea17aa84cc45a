//! The cache-aside tutorial's user-profile cache, with kermes: keys `entity:id:attribute`,
//! JSON values, a miss goes to the database and is cached for an hour, an update
//! invalidates, the cache is warmed at start, and the hit ratio and load latency are
//! watched. The client also keeps hot keys in the process (client-side caching, RESP3
//! tracking), so repeated reads of one profile do not even reach Redis.
//!
//! Uses `REDIS_URL` when set; otherwise starts a throwaway redis-server (or valkey-server)
//! from a local binary (see `scripts/install-servers.sh`).
//!
//!     cargo run --example cache --features testing,json

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kermes::cache::{Cache, CacheOptions, ClientCacheOptions};
use kermes::{Client, Format, ValueCodec};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Profile {
    id: u64,
    name: String,
    email: String,
}

/// The source of truth: a slow database (20 ms a query).
#[derive(Clone, Default)]
struct Database {
    rows: Arc<Mutex<HashMap<u64, Profile>>>,
    queries: Arc<Mutex<u64>>,
}

#[derive(Debug)]
struct DbError(String);

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "database error: {}", self.0)
    }
}

impl std::error::Error for DbError {}

impl Database {
    async fn load(&self, id: u64) -> Result<Option<Profile>, DbError> {
        tokio::time::sleep(Duration::from_millis(20)).await;
        *self.queries.lock().unwrap() += 1;
        Ok(self.rows.lock().unwrap().get(&id).cloned())
    }

    fn save(&self, profile: Profile) {
        self.rows.lock().unwrap().insert(profile.id, profile);
    }
}

/// The tutorial's key layout: `entity:id:attribute`.
fn profile_key(id: u64) -> String {
    format!("user:{id}:profile")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (url, _server) = kermes::testing::url_from_env_or_start()?;
    let client = Client::builder()
        .url(&url)
        .client_cache(ClientCacheOptions::new().max_bytes(16 << 20))
        .connect()
        .await?;
    let db = Database::default();
    for id in 1..=100 {
        db.save(Profile {
            id,
            name: format!("user {id}"),
            email: format!("user{id}@example.com"),
        });
    }

    let hour = Duration::from_secs(3600);
    let profiles = Cache::new(
        &client,
        CacheOptions::new("app")
            .codec(ValueCodec::new().format(Format::Json))
            .jitter(0.1)
            .negative_ttl(Duration::from_secs(60)),
    )?;
    profiles.invalidate((1..=200).map(profile_key)).await?;

    // Warm the cache at start with the 10 most popular profiles, in one pipelined batch.
    let popular: Vec<(String, Profile)> = (1..=10)
        .map(|id| (profile_key(id), db.rows.lock().unwrap()[&id].clone()))
        .collect();
    let warmed = profiles.warm(popular, hour).await?;
    println!("warmed {warmed} profiles");

    // Reads: a miss goes to the database once, however many ask at the same time.
    let reads = (0..1_000u64).map(|i| {
        let (profiles, db) = (profiles.clone(), db.clone());
        async move {
            let id = 1 + (i * 7) % 20;
            profiles
                .get_or_load(&profile_key(id), hour, || db.load(id))
                .await
        }
    });
    let results = futures::future::join_all(reads).await;
    let found = results.iter().filter(|r| matches!(r, Ok(Some(_)))).count();
    println!(
        "1,000 reads of 20 profiles: {found} found, {} database queries",
        db.queries.lock().unwrap()
    );

    // A profile nobody has: "not found" is cached for a minute.
    for _ in 0..3 {
        let missing = profiles
            .get_or_load(&profile_key(999), hour, || db.load(999))
            .await?;
        assert!(missing.is_none());
    }

    // An update: write the database, then invalidate; the next read loads the new row.
    let mut ann = db.load(3).await?.expect("user 3 exists");
    ann.name = "Ann".into();
    db.save(ann.clone());
    profiles.invalidate([profile_key(3)]).await?;
    let fresh = profiles
        .get_or_load(&profile_key(3), hour, || db.load(3))
        .await?;
    assert_eq!(fresh.as_ref(), Some(&ann));
    println!("after the update: {fresh:?}");

    // The hottest profile, read over and over: answered in the process after the first
    // read, until a write anywhere invalidates it.
    for _ in 0..100 {
        profiles
            .get_or_load(&profile_key(1), hour, || db.load(1))
            .await?;
    }

    // Monitor the cache.
    let stats = profiles.stats();
    println!(
        "cache-aside: hit ratio {:.1}%, {} loads ({} coalesced callers), {} negative hits, \
         load latency p50 {:?} p99 {:?}",
        stats.hit_ratio() * 100.0,
        stats.loads,
        stats.coalesced,
        stats.negative_hits,
        stats.load_latency.p50,
        stats.load_latency.p99,
    );
    if let Some(local) = client.client_cache_stats() {
        println!(
            "client-side: {} reads answered in the process, {} went to Redis, {} invalidations, {} bytes held",
            local.hits, local.misses, local.invalidations, local.bytes
        );
    }
    Ok(())
}
