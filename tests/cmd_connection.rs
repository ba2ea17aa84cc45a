//! Generated connection commands; the connection-state ones are refused on shared connections.

#[macro_use]
mod common;

use kermes::prelude::*;
use kermes::testing::TestServer;

server_tests! {
    async fn identity_naming_and_echo(kind) {
        let server = TestServer::start(kind);
        let c = Client::connect(&server.url()).await.unwrap();
        assert_eq!(&c.ping().await.unwrap()[..], b"PONG");
        assert_eq!(&c.ping_with(PingOptions::new().message("hi")).await.unwrap()[..], b"hi");
        assert_eq!(&c.echo("x\r\ny").await.unwrap()[..], b"x\r\ny");
        let id = c.client_id().await.unwrap();
        c.client_setname("conn-test").await.unwrap();
        assert_eq!(c.client_getname().to::<Option<String>>().await.unwrap().as_deref(), Some("conn-test"));
        let info: String = c.client_info().to().await.unwrap();
        assert!(info.contains(&format!("id={id} ")), "{info}");
        c.client_no_evict(ClientNoEvictEnabled::On).await.unwrap();
        let list: String = c.client_list_with(ClientListOptions::new().id(id)).to().await.unwrap();
        assert_eq!(list.lines().count(), 1);
    }

    async fn state_changing_commands_are_refused_with_a_pointer_to_exclusive(kind) {
        let server = TestServer::start(kind);
        let c = Client::connect(&server.url()).await.unwrap();
        for err in [
            c.select(1).await.unwrap_err(),
            c.reset().await.unwrap_err(),
            c.multi().await.unwrap_err(),
            c.watch("k").await.unwrap_err(),
            c.subscribe("ch").await.unwrap_err(),
            c.auth("pw").await.unwrap_err(),
        ] {
            assert!(err.is_config() && err.to_string().contains("exclusive"), "{err}");
        }
        assert_eq!(&c.ping().await.unwrap()[..], b"PONG");
    }
}
