//! One workload through kermes, redis-rs, fred and rustis: N tasks share ONE client handle
//! and loop GET, SET, a 50/50 mix, an MGET of `--mget-keys` random keys, or explicit
//! pipelines of `--pipeline` GETs over 10,000 pre-seeded keys for a fixed time; or `cached`:
//! 90% GETs and 10% SETs of 1,000 hot keys, for the client-side caches (clients
//! `kermes-cached`, `redis-rs-cached`: redis-rs's `cache-aio`, `rustis-cached`: rustis's
//! `client-cache`; all over RESP3 tracking). Prints, per
//! client: commands/s (a pipeline counts its GETs, an MGET counts once), heap allocations
//! per command, client CPU ns per command, heap bytes held per in-flight command, and, with
//! `--server-pid`, the commands the server processed per read syscall it made.
//!
//!     peers --url redis://127.0.0.1:6379 [--clients kermes,redis-rs,fred,rustis]
//!           [--concurrency 50] [--value-size 64] [--workload get|set|mix|mget|pipeline]
//!           [--mget-keys 100] [--pipeline 16] [--seconds 5] [--runtime current|multi]
//!           [--workload cached] [--markdown] [--tls-ca ca.pem] [--cluster] [--server-pid PID] [--count-reads]
//!           [--workers N] [--kermes-shared N]
//!
//! `--workers` sets the multi-thread runtime's worker threads (default: one per core the
//! process may run on); kermes opens one shared connection per worker by default, or
//! `--kermes-shared` of them (one server only).
//!
//! With `--tls-ca`, every client connects over TLS (rustls, the ring provider) trusting that
//! CA; give a `rediss://` URL. With `--cluster`, `--url` is the seed nodes of a Redis
//! Cluster, `host:port,host:port`, and every client uses its cluster client (an MGET then
//! spans slots: a client that cannot split it is reported as unsupported).

mod alloc;

use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;

const KEYS: u64 = 10_000;
/// Keys the `cached` workload reads and writes.
const HOT_KEYS: u64 = 1_000;

#[derive(Clone, Copy, PartialEq)]
enum Workload {
    Get,
    Set,
    Mix,
    Mget,
    Pipeline,
    /// 90% GET, 10% SET, of `HOT_KEYS` keys.
    Cached,
}

struct Args {
    tracing: Option<String>,
    url: String,
    clients: Vec<String>,
    concurrency: usize,
    value_size: usize,
    workload: Workload,
    seconds: u64,
    multi_thread: bool,
    markdown: bool,
    /// PEM of the CA a TLS server's certificate is signed by.
    tls_ca: Option<Vec<u8>>,
    /// `url` is the seed nodes of a cluster.
    cluster: bool,
    /// Keys per MGET.
    mget_keys: usize,
    /// GETs per explicit pipeline.
    pipeline: usize,
    /// The server's process: its read syscalls (`/proc/PID/io`) against the commands it
    /// processed (`INFO stats`) say how well a client batches.
    server_pid: Option<u32>,
    /// Count this process's socket reads with `perf` (it slows every client: a run of its
    /// own, for that column only).
    count_reads: bool,
    /// Worker threads of the multi-thread runtime; `None`: tokio's default.
    workers: Option<usize>,
    /// kermes's shared connections; `None`: its default, one per worker.
    kermes_shared: Option<usize>,
}

fn parse_args() -> Args {
    let mut a = Args {
        tracing: None,
        url: "redis://127.0.0.1:6379".into(),
        clients: ["kermes", "redis-rs", "fred", "rustis"]
            .map(String::from)
            .to_vec(),
        concurrency: 50,
        value_size: 64,
        workload: Workload::Get,
        seconds: 5,
        multi_thread: false,
        markdown: false,
        tls_ca: None,
        cluster: false,
        mget_keys: 100,
        pipeline: 16,
        server_pid: None,
        count_reads: false,
        workers: None,
        kermes_shared: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => a.url = value(),
            "--clients" => a.clients = value().split(',').map(String::from).collect(),
            "--concurrency" => a.concurrency = value().parse().expect("a number"),
            "--value-size" => a.value_size = value().parse().expect("a number"),
            "--seconds" => a.seconds = value().parse().expect("a number"),
            "--workload" => {
                a.workload = match value().as_str() {
                    "get" => Workload::Get,
                    "set" => Workload::Set,
                    "mix" => Workload::Mix,
                    "mget" => Workload::Mget,
                    "pipeline" => Workload::Pipeline,
                    "cached" => Workload::Cached,
                    other => panic!("unknown workload {other}"),
                }
            }
            "--runtime" => a.multi_thread = value() == "multi",
            "--markdown" => a.markdown = true,
            // A tracing subscriber for the whole process (every client runs under it):
            // `info` (kermes's command spans off) or `debug` (on), output discarded.
            "--tracing" => a.tracing = Some(value()),
            "--tls-ca" => a.tls_ca = Some(std::fs::read(value()).expect("the CA file")),
            "--cluster" => a.cluster = true,
            "--mget-keys" => a.mget_keys = value().parse().expect("a number"),
            "--pipeline" => a.pipeline = value().parse().expect("a number"),
            "--server-pid" => a.server_pid = Some(value().parse().expect("a process id")),
            "--count-reads" => a.count_reads = true,
            "--workers" => a.workers = Some(value().parse().expect("a number")),
            "--kermes-shared" => a.kermes_shared = Some(value().parse().expect("a number")),
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

/// What one client does for one operation; `key` in 0..KEYS.
trait Peer: Clone + Send + Sync + 'static {
    fn get(&self, key: Arc<str>) -> impl Future<Output = ()> + Send;
    fn set(&self, key: Arc<str>, value: Bytes) -> impl Future<Output = ()> + Send;
    /// Every key exists: every value must come back.
    fn mget(&self, keys: Vec<Arc<str>>) -> impl Future<Output = Result<(), String>> + Send;
    /// One explicit pipeline of a GET per key; every value must come back.
    fn pipeline_get(&self, keys: Vec<Arc<str>>) -> impl Future<Output = ()> + Send;
}

fn all_present<T>(values: &[Option<T>], keys: usize) -> Result<(), String> {
    match values.len() == keys && values.iter().all(Option::is_some) {
        true => Ok(()),
        false => Err(format!(
            "MGET of {keys} keys gave {} values, some missing",
            values.len()
        )),
    }
}

#[derive(Clone)]
struct Kermes(kermes::Client);

impl Peer for Kermes {
    async fn get(&self, key: Arc<str>) {
        use kermes::commands::StringCommands;
        let v: Option<Bytes> = self.0.get(&*key).await.expect("kermes GET");
        assert!(v.is_some());
    }
    async fn set(&self, key: Arc<str>, value: Bytes) {
        use kermes::commands::StringCommands;
        self.0.set(&*key, &value).await.expect("kermes SET");
    }
    async fn mget(&self, keys: Vec<Arc<str>>) -> Result<(), String> {
        use kermes::commands::StringCommands;
        let refs: Vec<&str> = keys.iter().map(|k| &**k).collect();
        let v: Vec<Option<Bytes>> = self.0.mget(&refs).to().await.map_err(|e| e.to_string())?;
        all_present(&v, keys.len())
    }
    async fn pipeline_get(&self, keys: Vec<Arc<str>>) {
        use kermes::commands::StringPipeline;
        let pipe = self.0.pipeline();
        for k in &keys {
            pipe.get(&**k);
        }
        let v: Vec<Option<Bytes>> = pipe.query().await.expect("kermes pipeline");
        all_present(&v, keys.len()).expect("kermes pipeline");
    }
}

/// redis-rs's multiplexed connection, or its cluster connection.
#[derive(Clone)]
struct RedisRs<C>(C);

impl<C: redis::aio::ConnectionLike + Clone + Send + Sync + 'static> Peer for RedisRs<C> {
    async fn get(&self, key: Arc<str>) {
        let mut c = self.0.clone();
        let v: Option<Vec<u8>> = redis::cmd("GET")
            .arg(&*key)
            .query_async(&mut c)
            .await
            .expect("redis-rs GET");
        assert!(v.is_some());
    }
    async fn set(&self, key: Arc<str>, value: Bytes) {
        let mut c = self.0.clone();
        let () = redis::cmd("SET")
            .arg(&*key)
            .arg(&value[..])
            .query_async(&mut c)
            .await
            .expect("redis-rs SET");
    }
    async fn mget(&self, keys: Vec<Arc<str>>) -> Result<(), String> {
        let mut c = self.0.clone();
        let mut cmd = redis::cmd("MGET");
        for k in &keys {
            cmd.arg(&**k);
        }
        let v: Vec<Option<Vec<u8>>> = cmd.query_async(&mut c).await.map_err(|e| e.to_string())?;
        all_present(&v, keys.len())
    }
    async fn pipeline_get(&self, keys: Vec<Arc<str>>) {
        let mut c = self.0.clone();
        let mut pipe = redis::pipe();
        for k in &keys {
            pipe.cmd("GET").arg(&**k);
        }
        let v: Vec<Option<Vec<u8>>> = pipe.query_async(&mut c).await.expect("redis-rs pipeline");
        all_present(&v, keys.len()).expect("redis-rs pipeline");
    }
}

/// rustis's client-side cache for reads; writes through the client.
#[derive(Clone)]
struct RustisCached(Arc<rustis::cache::Cache>, rustis::client::Client);

impl Peer for RustisCached {
    async fn get(&self, key: Arc<str>) {
        let v: Option<rustis::resp::BulkString> =
            self.0.get(&*key).await.expect("rustis cached GET");
        assert!(v.is_some());
    }
    async fn set(&self, key: Arc<str>, value: Bytes) {
        Rustis(self.1.clone()).set(key, value).await
    }
    async fn mget(&self, _: Vec<Arc<str>>) -> Result<(), String> {
        Err("not measured through the cache".into())
    }
    async fn pipeline_get(&self, keys: Vec<Arc<str>>) {
        Rustis(self.1.clone()).pipeline_get(keys).await
    }
}

#[derive(Clone)]
struct Fred(fred::clients::Client);

impl Peer for Fred {
    async fn get(&self, key: Arc<str>) {
        use fred::interfaces::KeysInterface;
        let v: Option<Bytes> = self.0.get(&*key).await.expect("fred GET");
        assert!(v.is_some());
    }
    async fn set(&self, key: Arc<str>, value: Bytes) {
        use fred::interfaces::KeysInterface;
        let () = self
            .0
            .set(&*key, value, None, None, false)
            .await
            .expect("fred SET");
    }
    async fn mget(&self, keys: Vec<Arc<str>>) -> Result<(), String> {
        use fred::interfaces::KeysInterface;
        let keys: Vec<fred::types::Key> =
            keys.iter().map(|k| fred::types::Key::from(&**k)).collect();
        let n = keys.len();
        let v: Vec<Option<Bytes>> = self.0.mget(keys).await.map_err(|e| e.to_string())?;
        all_present(&v, n)
    }
    async fn pipeline_get(&self, keys: Vec<Arc<str>>) {
        use fred::interfaces::KeysInterface;
        let pipe = self.0.pipeline();
        for k in &keys {
            let () = pipe.get(&**k).await.expect("fred pipeline");
        }
        let v: Vec<Option<Bytes>> = pipe.all().await.expect("fred pipeline");
        all_present(&v, keys.len()).expect("fred pipeline");
    }
}

#[derive(Clone)]
struct Rustis(rustis::client::Client);

impl Peer for Rustis {
    async fn get(&self, key: Arc<str>) {
        use rustis::commands::StringCommands;
        let v: Option<rustis::resp::BulkString> = self.0.get(&*key).await.expect("rustis GET");
        assert!(v.is_some());
    }
    async fn set(&self, key: Arc<str>, value: Bytes) {
        use rustis::commands::StringCommands;
        self.0
            .set(&*key, rustis::resp::BulkString::from(value.to_vec()))
            .await
            .expect("rustis SET");
    }
    async fn mget(&self, keys: Vec<Arc<str>>) -> Result<(), String> {
        use rustis::commands::StringCommands;
        let refs: Vec<&str> = keys.iter().map(|k| &**k).collect();
        let v: Vec<Option<rustis::resp::BulkString>> =
            self.0.mget(refs).await.map_err(|e| e.to_string())?;
        all_present(&v, keys.len())
    }
    async fn pipeline_get(&self, keys: Vec<Arc<str>>) {
        use rustis::client::BatchPreparedCommand;
        use rustis::commands::StringCommands;
        let mut pipe = self.0.create_pipeline();
        for k in &keys {
            pipe.get::<()>(&**k).queue();
        }
        let v: Vec<Option<rustis::resp::BulkString>> =
            pipe.execute().await.expect("rustis pipeline");
        all_present(&v, keys.len()).expect("rustis pipeline");
    }
}

struct Measured {
    ops_per_sec: f64,
    allocs_per_op: f64,
    cpu_ns_per_op: f64,
    bytes_per_in_flight: f64,
    /// Commands the server processed per read syscall, when its pid was given.
    commands_per_read: Option<f64>,
    /// Socket reads (`recvfrom`, `read`) this process made per command, when `perf` could
    /// count them.
    client_reads_per_op: Option<f64>,
}

/// Counts this process's socket reads from now until [`ReadCounter::stop`], with `perf
/// stat` on the syscall tracepoints (Rust's sockets read with `recvfrom`, which
/// `/proc/self/io` does not count). `None` where perf or the tracepoints are missing.
struct ReadCounter {
    child: std::process::Child,
    out: std::path::PathBuf,
}

impl ReadCounter {
    fn start() -> Option<ReadCounter> {
        let out = std::env::temp_dir().join(format!("peers-reads-{}.csv", std::process::id()));
        let child = std::process::Command::new("perf")
            .args([
                "stat",
                "-x,",
                "-e",
                "syscalls:sys_enter_recvfrom,syscalls:sys_enter_read",
                "-p",
            ])
            .arg(std::process::id().to_string())
            .arg("-o")
            .arg(&out)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok()?;
        // perf attaches within a few milliseconds.
        std::thread::sleep(Duration::from_millis(50));
        Some(ReadCounter { child, out })
    }

    fn stop(mut self) -> Option<u64> {
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        self.child.wait().ok()?;
        let text = std::fs::read_to_string(&self.out).ok()?;
        let _ = std::fs::remove_file(&self.out);
        let counts: Vec<u64> = text
            .lines()
            .filter(|l| l.contains("syscalls:"))
            .filter_map(|l| l.split(',').next()?.trim().parse().ok())
            .collect();
        (!counts.is_empty()).then(|| counts.iter().sum())
    }
}

/// A kermes client for `--url`, trusting `--tls-ca` when given.
fn kermes_builder(args: &Args) -> kermes::ClientBuilder {
    let builder = kermes::Client::builder().url(&args.url);
    match &args.tls_ca {
        None => builder,
        Some(ca) => builder.tls(
            kermes::TlsOptions::new()
                .roots(kermes::TlsRoots::CustomOnly)
                .ca_pem(ca.clone()),
        ),
    }
}

/// The server's (commands processed, read syscalls) so far.
async fn server_counters(args: &Args) -> Option<(u64, u64)> {
    let pid = args.server_pid?;
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    let reads: u64 = io
        .lines()
        .find_map(|l| l.strip_prefix("syscr:"))?
        .trim()
        .parse()
        .ok()?;
    let c = kermes_builder(args).connect().await.ok()?;
    let info: String = c.cmd("INFO").arg("stats").query().await.ok()?;
    let commands = info
        .lines()
        .find_map(|l| l.strip_prefix("total_commands_processed:"))?
        .trim()
        .parse()
        .ok()?;
    Some((commands, reads))
}

fn cpu_time() -> Duration {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct we own.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Measures `peer`, or says why it cannot run the workload.
async fn drive<P: Peer>(peer: P, args: &Args) -> Result<Measured, String> {
    let keys: Arc<Vec<Arc<str>>> = Arc::new(
        (0..KEYS)
            .map(|i| Arc::from(format!("peers:key:{i}")))
            .collect(),
    );
    let value = Bytes::from(vec![b'v'; args.value_size]);
    for k in keys.iter() {
        peer.set(k.clone(), value.clone()).await;
    }
    let mget_keys = args.mget_keys;
    let pipeline = args.pipeline;
    if args.workload == Workload::Mget {
        peer.mget(keys[..mget_keys].to_vec()).await?;
    }
    let ops = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..args.concurrency as u64)
        .map(|t| {
            let (peer, keys, value, ops, stop) = (
                peer.clone(),
                keys.clone(),
                value.clone(),
                ops.clone(),
                stop.clone(),
            );
            let workload = args.workload;
            tokio::spawn(async move {
                let mut x = t.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                while !stop.load(Ordering::Relaxed) {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let key = match workload {
                        Workload::Cached => keys[(x % HOT_KEYS) as usize].clone(),
                        _ => keys[(x % KEYS) as usize].clone(),
                    };
                    let write = match workload {
                        Workload::Cached => (x >> 20) % 10 == 0,
                        Workload::Get => false,
                        Workload::Set => true,
                        Workload::Mix => x & 1 == 0,
                        Workload::Mget => {
                            let start = (x % (KEYS - mget_keys as u64)) as usize;
                            let batch = keys[start..start + mget_keys].to_vec();
                            peer.mget(batch).await.expect("MGET");
                            ops.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        Workload::Pipeline => {
                            let start = (x % (KEYS - pipeline as u64)) as usize;
                            let batch = keys[start..start + pipeline].to_vec();
                            peer.pipeline_get(batch).await;
                            ops.fetch_add(pipeline as u64, Ordering::Relaxed);
                            continue;
                        }
                    };
                    if write {
                        peer.set(key, value.clone()).await;
                    } else {
                        peer.get(key).await;
                    }
                    ops.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    // Warm up, then measure a window.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let server0 = server_counters(args).await;
    let (ops0, allocs0, cpu0, t0) = (
        ops.load(Ordering::Relaxed),
        alloc::count(),
        cpu_time(),
        Instant::now(),
    );
    let counter = args.count_reads.then(ReadCounter::start).flatten();
    let counted_from = ops.load(Ordering::Relaxed);
    let mut live_samples = Vec::new();
    let deadline = t0 + Duration::from_secs(args.seconds);
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        live_samples.push(alloc::live_bytes());
    }
    let (ops1, allocs1, cpu1, elapsed) = (
        ops.load(Ordering::Relaxed),
        alloc::count(),
        cpu_time(),
        t0.elapsed(),
    );
    let counted_ops = ops.load(Ordering::Relaxed) - counted_from;
    let reads = counter.and_then(ReadCounter::stop);
    let server1 = server_counters(args).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let idle_live = alloc::live_bytes();
    live_samples.sort_unstable();
    let busy_live = live_samples[live_samples.len() / 2];
    let n = (ops1 - ops0).max(1) as f64;
    Ok(Measured {
        ops_per_sec: n / elapsed.as_secs_f64(),
        allocs_per_op: (allocs1 - allocs0) as f64 / n,
        cpu_ns_per_op: (cpu1 - cpu0).as_nanos() as f64 / n,
        bytes_per_in_flight: busy_live.saturating_sub(idle_live) as f64 / args.concurrency as f64,
        client_reads_per_op: reads.map(|r| r as f64 / counted_ops.max(1) as f64),
        commands_per_read: match (server0, server1) {
            (Some((c0, r0)), Some((c1, r1))) if r1 > r0 => {
                Some(c1.saturating_sub(c0) as f64 / (r1 - r0) as f64)
            }
            _ => None,
        },
    })
}

async fn run(args: &Args) {
    let label = |m: &Measured, name: &str| {
        let per_read = m.commands_per_read.unwrap_or(0.0);
        if args.markdown {
            format!(
                "| {name} | {:.0} | {:.2} | {:.0} | {:.0} | {per_read:.1} | {:.2} |",
                m.ops_per_sec,
                m.allocs_per_op,
                m.cpu_ns_per_op,
                m.bytes_per_in_flight,
                m.client_reads_per_op.unwrap_or(0.0)
            )
        } else {
            format!(
                "{name:>9}: {:>10.0} ops/s  {:>6.2} allocs/op  {:>7.0} cpu ns/op  {:>7.0} B/in-flight  {per_read:>5.1} cmds/server read  {:.2} client reads/op",
                m.ops_per_sec,
                m.allocs_per_op,
                m.cpu_ns_per_op,
                m.bytes_per_in_flight,
                m.client_reads_per_op.unwrap_or(0.0)
            )
        }
    };
    for name in &args.clients {
        let m = match name.as_str() {
            _ if args.cluster => drive_cluster(name, args).await,
            "kermes" => {
                let mut builder = kermes_builder(args);
                if let Some(n) = args.kermes_shared {
                    builder = builder.shared_connections(n);
                }
                let c = builder.connect().await.expect("kermes connect");
                drive(Kermes(c), args).await
            }
            "kermes-cached" => {
                let c = kermes_builder(args)
                    .client_cache(kermes::cache::ClientCacheOptions::new())
                    .connect()
                    .await
                    .expect("kermes connect");
                let m = drive(Kermes(c.clone()), args).await;
                eprintln!("kermes-cached: {:?}", c.client_cache_stats());
                m
            }
            "redis-rs-cached" => {
                let url = format!("{}?protocol=resp3", args.url.trim_end_matches('/'));
                let c = redis::Client::open(url.as_str()).expect("redis-rs url");
                let config = redis::AsyncConnectionConfig::new()
                    .set_cache_config(redis::caching::CacheConfig::new());
                let conn = c
                    .get_multiplexed_async_connection_with_config(&config)
                    .await
                    .expect("redis-rs connect");
                drive(RedisRs(conn), args).await
            }
            "rustis-cached" => {
                let c = rustis::client::Client::connect(args.url.as_str())
                    .await
                    .expect("rustis connect");
                let cache = rustis::cache::Cache::new(
                    c.clone(),
                    3600,
                    rustis::commands::ClientTrackingOptions::default(),
                )
                .await
                .expect("rustis cache");
                drive(RustisCached(cache, c), args).await
            }
            "redis-rs" => {
                let c = match &args.tls_ca {
                    None => redis::Client::open(args.url.as_str()).expect("redis-rs url"),
                    Some(ca) => redis::Client::build_with_tls(
                        args.url.as_str(),
                        redis::TlsCertificates {
                            client_tls: None,
                            root_cert: Some(ca.clone()),
                        },
                    )
                    .expect("redis-rs TLS"),
                };
                let conn = c
                    .get_multiplexed_async_connection()
                    .await
                    .expect("redis-rs connect");
                drive(RedisRs(conn), args).await
            }
            "fred" => {
                use fred::interfaces::ClientLike;
                let mut config =
                    fred::types::config::Config::from_url(&args.url).expect("fred url");
                if let Some(ca) = &args.tls_ca {
                    config.tls = Some(rustls_config(ca).into());
                }
                let c = fred::types::Builder::from_config(config)
                    .build()
                    .expect("fred client");
                c.init().await.expect("fred connect");
                drive(Fred(c), args).await
            }
            "rustis" => {
                let c = match &args.tls_ca {
                    None => rustis::client::Client::connect(args.url.as_str()).await,
                    Some(ca) => {
                        let mut config =
                            rustis::client::Config::from_str(&args.url).expect("rustis url");
                        config.tls_config =
                            Some(rustis::client::TlsConfig::new(Arc::new(rustls_config(ca))));
                        rustis::client::Client::connect(config).await
                    }
                }
                .expect("rustis connect");
                drive(Rustis(c), args).await
            }
            other => panic!("unknown client {other}"),
        };
        match m {
            Ok(m) => println!("{}", label(&m, name)),
            Err(why) if args.markdown => println!("| {name} | unsupported: {why} |"),
            Err(why) => println!("{name:>9}: unsupported: {why}"),
        }
    }
}

/// A client's cluster client through the seeds `args.url` lists.
async fn drive_cluster(name: &str, args: &Args) -> Result<Measured, String> {
    let seeds: Vec<&str> = args.url.split(',').collect();
    match name {
        "kermes" => {
            let url = format!("redis+cluster://{}", args.url);
            let c = kermes::Client::connect(&url).await.expect("kermes connect");
            drive(Kermes(c), args).await
        }
        "redis-rs" => {
            let nodes: Vec<String> = seeds.iter().map(|s| format!("redis://{s}")).collect();
            let client = redis::cluster::ClusterClient::new(nodes).expect("redis-rs cluster");
            let conn = client
                .get_async_connection()
                .await
                .expect("redis-rs connect");
            drive(RedisRs(conn), args).await
        }
        "fred" => {
            use fred::interfaces::ClientLike;
            let rest: Vec<String> = seeds[1..].iter().map(|s| format!("node={s}")).collect();
            let url = format!("redis-cluster://{}?{}", seeds[0], rest.join("&"));
            let config = fred::types::config::Config::from_url(&url).expect("fred url");
            let c = fred::types::Builder::from_config(config)
                .build()
                .expect("fred client");
            c.init().await.expect("fred connect");
            drive(Fred(c), args).await
        }
        "rustis" => {
            let url = format!("redis+cluster://{}", args.url);
            let c = rustis::client::Client::connect(url.as_str())
                .await
                .expect("rustis connect");
            drive(Rustis(c), args).await
        }
        other => panic!("unknown client {other}"),
    }
}

/// A rustls client configuration trusting `ca` (PEM), on the ring provider.
fn rustls_config(ca: &[u8]) -> rustls::ClientConfig {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca) {
        roots
            .add(cert.expect("a CA certificate"))
            .expect("a CA certificate");
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

fn main() {
    // Several clients bring rustls with different crypto providers: name one for those that
    // ask rustls for the process default.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = parse_args();
    if let Some(level) = &args.tracing {
        let level: tracing::Level = level.parse().expect("--tracing: a level");
        tracing_subscriber::fmt()
            .with_max_level(level)
            .with_writer(std::io::sink)
            .init();
    }
    let mut builder = if args.multi_thread {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        if let Some(n) = args.workers {
            b.worker_threads(n);
        }
        b
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    let rt = builder.enable_all().build().expect("runtime");
    rt.block_on(run(&args));
}
