//! Tracing spans against real servers: one per command and per pipeline, named and
//! attributed after OpenTelemetry's database conventions, never carrying the arguments,
//! with the error's kind when the command failed.

#[macro_use]
mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use kermes::prelude::*;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// A closed span: its name and fields.
#[derive(Debug, Clone, Default)]
struct Closed {
    name: &'static str,
    fields: HashMap<String, String>,
}

struct Fields(HashMap<String, String>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

/// Keeps every closed span of the target `kermes::command`.
struct Capture(Arc<Mutex<Vec<Closed>>>);

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields(HashMap::new());
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Closed {
                name: attrs.metadata().name(),
                fields: fields.0,
            });
        }
    }
    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(closed) = span.extensions_mut().get_mut::<Closed>()
        {
            let mut fields = Fields(std::mem::take(&mut closed.fields));
            values.record(&mut fields);
            closed.fields = fields.0;
        }
    }
    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(&id)
            && span.metadata().target() == kermes::trace::TARGET
            && let Some(closed) = span.extensions().get::<Closed>()
        {
            self.0.lock().unwrap().push(closed.clone());
        }
    }
}

/// The spans closed so far in this process (one subscriber for the whole test binary).
fn spans() -> Arc<Mutex<Vec<Closed>>> {
    static SPANS: OnceLock<Arc<Mutex<Vec<Closed>>>> = OnceLock::new();
    SPANS
        .get_or_init(|| {
            let spans = Arc::new(Mutex::new(Vec::new()));
            let subscriber = tracing_subscriber::registry().with(Capture(spans.clone()));
            tracing::subscriber::set_global_default(subscriber).unwrap();
            spans
        })
        .clone()
}

/// The closed spans whose server port is `port`.
fn on_port(port: u16) -> Vec<Closed> {
    let port = port.to_string();
    spans()
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.fields.get("server.port") == Some(&port))
        .cloned()
        .collect()
}

server_tests! {
    async fn each_command_has_a_span_after_the_database_conventions(kind) {
        let all = spans();
        let server = kermes::testing::TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        let port = server.port();
        client.set("secret-key", "hunter2").await.unwrap();
        let _: Option<String> = client.get("secret-key").to().await.unwrap();
        let err = client.incr("secret-key").await.unwrap_err();
        assert!(err.is_server());
        let pipe = client.pipeline();
        pipe.set("a", 1);
        pipe.incr("a");
        pipe.get("a");
        pipe.run().await.unwrap();

        let spans = on_port(port);
        let commands: Vec<&str> = spans.iter().filter(|s| s.name == "redis.command")
            .map(|s| s.fields["db.operation.name"].as_str()).collect();
        for name in ["SET", "GET", "INCR"] {
            assert!(commands.contains(&name), "{name} in {commands:?}");
        }
        let get = spans.iter().find(|s| s.fields.get("db.operation.name").map(String::as_str) == Some("GET")).unwrap();
        assert_eq!(get.fields["db.system.name"], "redis");
        assert_eq!(get.fields["db.namespace"], "0");
        assert_eq!(get.fields["server.address"], "127.0.0.1");
        assert_eq!(get.fields["otel.name"], "GET");
        assert!(!get.fields.contains_key("error.type"), "{get:?}");
        let incr = spans.iter().find(|s| s.fields.get("db.operation.name").map(String::as_str) == Some("INCR")).unwrap();
        assert_eq!(incr.fields["error.type"], "ERR", "{incr:?}");
        let batch = spans.iter().find(|s| s.name == "redis.batch").expect("a pipeline span");
        assert_eq!(batch.fields["db.operation.batch.size"], "3");
        assert_eq!(batch.fields["db.operation.name"], "PIPELINE");
        // Never the arguments or values.
        for s in &spans {
            for v in s.fields.values() {
                assert!(!v.contains("secret-key") && !v.contains("hunter2"), "{s:?}");
            }
        }
        // Through the client-side cache, a miss is still one span (the cache's own read of
        // the server is not a second one).
        let cached = Client::builder().url(&server.url())
            .client_cache(kermes::cache::ClientCacheOptions::new()).connect().await.unwrap();
        let gets = || on_port(port).iter().filter(|s| s.fields.get("db.operation.name").map(String::as_str) == Some("GET")).count();
        let before = gets();
        let _: Option<String> = cached.get("a").to().await.unwrap();
        assert_eq!(gets(), before + 1, "one span for a cache miss");
        // No statement unless asked for; asked for, a sanitized one.
        assert!(spans.iter().all(|s| !s.fields.contains_key("db.query.text")), "{spans:?}");
        let statements = Client::builder().url(&server.url()).trace_statements(true).connect().await.unwrap();
        statements.set("secret-key", "hunter2").await.unwrap();
        let n: i64 = statements.cmd("CLIENT").arg("ID").query().await.unwrap();
        assert!(n > 0);
        let texts: Vec<String> = on_port(port).iter().filter_map(|s| s.fields.get("db.query.text").cloned()).collect();
        assert!(texts.contains(&"SET ? ?".to_string()), "{texts:?}");
        assert!(texts.contains(&"CLIENT ID".to_string()), "{texts:?}");
        assert!(texts.iter().all(|t| !t.contains("secret") && !t.contains("hunter2")), "{texts:?}");
        drop(all);
    }
}
