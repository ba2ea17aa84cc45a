//! Generated connection commands; the connection-state ones are refused on shared connections.

use kermes::prelude::*;

crate::group_tests! {
    async fn identity_naming_and_echo(t) {
        let c = &t.c;
        assert_eq!(&c.ping().await.unwrap()[..], b"PONG");
        assert_eq!(&c.ping_with(PingOptions::new().message("hi")).await.unwrap()[..], b"hi");
        assert_eq!(c.echo::<Bytes>("x\r\ny").await.unwrap(), &b"x\r\ny"[..]);
        if !t.skip_on_cluster("CLIENT ID and CLIENT INFO may reach different primaries") {
            let id = c.client_id().await.unwrap();
            let info: String = c.client_info().to().await.unwrap();
            assert!(info.contains(&format!("id={id} ")), "{info}");
            let list: String = c.client_list_with(ClientListOptions::new().id(id)).to().await.unwrap();
            assert_eq!(list.lines().count(), 1);
        }
        // Naming and per-connection flags change the connection: an exclusive one takes them.
        let ex = c.exclusive().await.unwrap();
        ex.client_setname("conn-test").await.unwrap();
        assert_eq!(ex.client_getname().to::<Option<String>>().await.unwrap().as_deref(), Some("conn-test"));
        ex.client_no_evict(Switch::On).await.unwrap();
        let info: String = ex.client_info().to().await.unwrap();
        assert!(info.contains("name=conn-test"), "{info}");
    }

    async fn state_changing_commands_are_refused_with_a_pointer_to_exclusive(t) {
        let c = &t.c;
        for err in [
            c.select(1).await.unwrap_err(),
            c.reset().await.unwrap_err(),
            c.multi().await.unwrap_err(),
            c.watch("k").await.unwrap_err(),
            c.auth("pw").await.unwrap_err(),
            c.client_setname("x").await.unwrap_err(),
        ] {
            assert!(err.is_usage() && err.to_string().contains("exclusive"), "{err}");
        }
        // exclusive() refuses SUBSCRIBE too: the error points to the subscriber.
        let err = c.subscribe("ch").await.unwrap_err();
        assert!(err.is_usage() && err.to_string().contains("subscriber()"), "{err}");
        assert_eq!(&c.ping().await.unwrap()[..], b"PONG");
    }
}
