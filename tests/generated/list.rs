//! Generated list commands, blocking ones included.

use std::time::Duration;

use kermes::prelude::*;

crate::group_tests! {
    async fn push_pop_range_insert_and_move(t) {
        let c = &t.c;
        assert_eq!(c.rpush("{l}", ["a", "b", "c"]).await.unwrap(), 3);
        assert_eq!(c.lpush("{l}", "z").await.unwrap(), 4);
        let all: Vec<String> = c.lrange("{l}", 0, -1).to().await.unwrap();
        assert_eq!(all, ["z", "a", "b", "c"]);
        assert_eq!(c.linsert("{l}", Position::After, "a", "a2").await.unwrap(), 5);
        let pos: Option<i64> = c.lpos("{l}", "b").to().await.unwrap();
        assert_eq!(pos, Some(3));
        let many: Vec<i64> = c.lpos_with("{l}", "a", LposOptions::new().count(0).maxlen(10)).to().await.unwrap();
        assert_eq!(many, [1]);
        let moved: String = c.lmove("{l}", "{l}other", Direction::Left, Direction::Right).to().await.unwrap();
        assert_eq!(moved, "z");
        let two: Vec<String> = c.lpop_with("{l}", LpopOptions::new().count(2)).to().await.unwrap();
        assert_eq!(two, ["a", "a2"]);
        c.ltrim("{l}", 0, 0).await.unwrap();
        assert_eq!(c.llen("{l}").await.unwrap(), 1);
        let popped: (String, Vec<String>) = c.lmpop_with(["{l}empty", "{l}"], Direction::Right, LmpopOptions::new().count(5)).to().await.unwrap();
        assert_eq!(popped, ("{l}".into(), vec!["b".into()]));
    }

    async fn blocking_pops_wait_for_a_push(t) {
        let c = &t.c;
        let pusher = c.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            pusher.rpush("{q}", "job").await.unwrap();
        });
        let got: Option<(String, String)> = c.blpop("{q}", 5.0).to().await.unwrap();
        assert_eq!(got, Some(("{q}".into(), "job".into())));
        let none: Option<String> = c.blmove("{q}", "{q}dst", Direction::Left, Direction::Left, 0.1).to().await.unwrap();
        assert_eq!(none, None);
    }
}
