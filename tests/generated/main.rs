//! The generated command API, group by group, against real servers. Every test runs on a
//! standalone server of each kind, and all of them again on one cluster per kind (three
//! primaries, three replicas), where each test's keys share one hash tag.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod bitmap;
mod connection;
mod generic;
mod geo;
mod hash;
mod hyperloglog;
mod list;
mod pubsub;
mod scripting;
mod server;
mod set;
mod sorted_set;
mod stream;
mod string;
mod valkey_only;

use futures::future::BoxFuture;
use kermes::Client;
use kermes::prelude::*;
use kermes::testing::{ClusterSet, ServerKind, TestServer};

/// What a group's test runs against.
pub struct Target {
    pub c: Client,
    pub kind: ServerKind,
    /// On a cluster, per-node commands (SWAPDB, PUBSUB CHANNELS ...) differ.
    pub cluster: bool,
    /// A node's port, for connections made by hand.
    pub port: u16,
}

impl Target {
    /// True on a cluster, where the part that follows does not apply, with why (printed).
    pub fn skip_on_cluster(&self, why: &str) -> bool {
        if self.cluster {
            eprintln!("  not on a cluster: {why}");
        }
        self.cluster
    }
}

/// A group test's body.
pub type Body = for<'a> fn(&'a Target) -> BoxFuture<'a, ()>;

/// `group_tests! { async fn name(t) { ... } }`: `pub async fn name(t: &Target)`, its
/// standalone tests `name::redis` and `name::valkey`, and the group's list `ALL` for the
/// cluster run.
macro_rules! group_tests {
    ($(async fn $name:ident($t:ident) $body:block)*) => {
        $(
            pub async fn $name($t: &crate::Target) $body

            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn redis() {
                    crate::standalone(kermes::testing::ServerKind::Redis, |t| Box::pin(super::$name(t))).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn valkey() {
                    crate::standalone(kermes::testing::ServerKind::Valkey, |t| Box::pin(super::$name(t))).await
                }
            }
        )*

        /// Every test of this group, for the cluster run.
        pub const ALL: &[(&str, crate::Body)] = &[$((stringify!($name), |t| Box::pin($name(t)))),*];
    };
}
pub(crate) use group_tests;

/// Runs `body` against a fresh standalone server of `kind`.
async fn standalone(kind: ServerKind, body: Body) {
    common::run_on(kind, |kind| async move {
        let server = TestServer::start(kind);
        let c = Client::connect(&server.url()).await.unwrap();
        let target = Target {
            c,
            kind,
            cluster: false,
            port: server.port(),
        };
        body(&target).await;
    })
    .await
}

const GROUPS: &[(&str, &[(&str, Body)])] = &[
    ("bitmap", bitmap::ALL),
    ("connection", connection::ALL),
    ("generic", generic::ALL),
    ("geo", geo::ALL),
    ("hash", hash::ALL),
    ("hyperloglog", hyperloglog::ALL),
    ("list", list::ALL),
    ("pubsub", pubsub::ALL),
    ("scripting", scripting::ALL),
    ("server", server::ALL),
    ("set", set::ALL),
    ("sorted_set", sorted_set::ALL),
    ("stream", stream::ALL),
    ("string", string::ALL),
    ("valkey_only", valkey_only::ALL),
];

server_tests! {
    async fn every_group_runs_on_a_cluster(kind) {
        let set = ClusterSet::start(kind);
        let c = Client::connect(&set.url()).await.unwrap();
        let target = Target { c, kind, cluster: true, port: set.port(0) };
        for (group, tests) in GROUPS {
            for (name, body) in *tests {
                eprintln!("{kind:?} cluster: {group}::{name}");
                target.c.flushall().await.unwrap();
                body(&target).await;
            }
        }
    }
}
