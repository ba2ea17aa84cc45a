//! The test harness itself: a server-name filter that cannot silently skip everything.

#[macro_use]
mod common;

use std::process::Command;

use kermes::testing::TestServer;

server_tests! {
    async fn a_server_answers(kind) {
        let server = TestServer::start(kind);
        let client = kermes::Client::connect(&server.url()).await.unwrap();
        let pong: String = client.cmd("PING").query().await.unwrap();
        assert_eq!(pong, "PONG");
    }
}

/// Runs `a_server_answers::redis` again in a child process with `KERMES_TEST_SERVERS` set.
fn run_with(servers: &str) -> std::process::Output {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_server_answers::redis",
            "--test-threads",
            "1",
            "--nocapture",
        ])
        .env("KERMES_TEST_SERVERS", servers)
        .output()
        .unwrap()
}

#[test]
fn an_unknown_server_name_fails_the_run_instead_of_skipping_every_test() {
    for typo in ["redsi", "redis,valky", ""] {
        let out = run_with(typo);
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "KERMES_TEST_SERVERS={typo:?} passed:\n{text}"
        );
        assert!(
            text.contains("KERMES_TEST_SERVERS"),
            "the failure should name the variable:\n{text}"
        );
    }
}

#[test]
fn known_server_names_select_what_runs() {
    let out = run_with("Redis , valkey");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run_with("valkey");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && text.contains("excluded by KERMES_TEST_SERVERS"),
        "{text}"
    );
}
