//! The `metrics` feature: a stats snapshot lands in a Prometheus recorder with the names,
//! labels and values `Client::stats()` gives.

#![cfg(feature = "metrics")]

#[macro_use]
mod common;

use std::sync::OnceLock;
use std::time::Duration;

use kermes::prelude::*;
use kermes::testing::TestServer;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// The process's recorder (one per process; both servers' tests share it, by label).
fn global() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::set_global_recorder(recorder).expect("no other recorder in this test binary");
        handle
    })
}

/// The value of the line `name{labels}` in a Prometheus page.
fn sample(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

server_tests! {
    async fn a_snapshot_is_exported_with_its_labels(kind) {
        let server = TestServer::start(kind);
        let client = Client::builder().url(&server.url()).shared_connections(1).connect().await.unwrap();
        for i in 0..20 {
            client.set(format!("k{i}"), i).await.unwrap();
        }
        client.set("text", "x").await.unwrap();
        client.incr("text").await.unwrap_err();
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let stats = client.stats();
        metrics::with_local_recorder(&recorder, || stats.record("t"));
        let page = handle.render();
        let at = |series: &str| sample(&page, series).unwrap_or_else(|| panic!("no {series} in\n{page}"));
        assert_eq!(at(r#"kermes_commands_sent_total{client="t"}"#), 22.0);
        assert_eq!(at(r#"kermes_commands_completed_total{client="t"}"#), 22.0);
        assert_eq!(at(r#"kermes_server_errors_total{client="t"}"#), 1.0);
        assert_eq!(at(r#"kermes_errors_total{client="t",kind="server"}"#), 1.0);
        assert_eq!(at(r#"kermes_commands_in_flight{client="t"}"#), 0.0);
        assert_eq!(at(r#"kermes_connections{client="t",kind="shared",state="up"}"#), 1.0);
        assert_eq!(at(r#"kermes_bytes_written_total{client="t"}"#), stats.bytes_written as f64);
        let server_label = format!("127.0.0.1:{}", server.port());
        assert_eq!(at(&format!(r#"kermes_pool_max_size{{client="t",server="{server_label}"}}"#)), 16.0);
        assert!(page.contains("# HELP kermes_commands_sent_total"), "{page}");

        // The reporter keeps it current: counters follow the client.
        let name = format!("r-{kind:?}");
        let reporter = kermes::metrics::report(&client, &name, Duration::from_millis(20));
        client.set("more", 1).await.unwrap();
        let series = format!(r#"kermes_commands_sent_total{{client="{name}"}}"#);
        common::wait_until(Duration::from_secs(5), "the reporter saw the new command", || {
            sample(&global().render(), &series) == Some(23.0)
        })
        .await;
        drop(reporter);
    }
}
