//! Generated stream commands: entries, trimming, consumer groups, blocking reads.

use std::time::Duration;

use kermes::prelude::*;

crate::group_tests! {
    async fn add_range_trim_and_read(t) {
        let c = &t.c;
        let id: String = c.xadd("s", XaddIdSelector::Id("1-1".into()), [("f", "v1")]).to().await.unwrap();
        assert_eq!(id, "1-1");
        for i in 0..9 {
            c.xadd("s", XaddIdSelector::AutoId, [("f", i)]).await.unwrap();
        }
        assert_eq!(c.xlen("s").await.unwrap(), 10);
        // Capped on add: MAXLEN = 5 keeps exactly five.
        c.xadd_with("s", XaddIdSelector::AutoId, [("f", "last")], XaddOptions::new().trim(XaddStrategy::Maxlen, Some(XaddOperator::Equal), 5, None))
            .await
            .unwrap();
        assert_eq!(c.xlen("s").await.unwrap(), 5);
        let entries: Vec<(String, Vec<(String, String)>)> = c.xrange_with("s", "-", "+", XrangeOptions::new().count(2)).to().await.unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].1[0].0, "f");
        assert_eq!(c.xtrim("s", XtrimStrategy::Maxlen, None, 3, None).await.unwrap(), 2);
        assert_eq!(c.xdel("s", entries[0].0.as_str()).await.unwrap(), 0); // already trimmed away
        let read: kermes::Value = c.xread_with("s", "0", XreadOptions::new().count(1)).await.unwrap();
        assert!(!read.is_nil());
    }

    async fn consumer_groups_deliver_ack_and_block(t) {
        let c = &t.c;
        c.xgroup_create_with("jobs", "workers", XgroupCreateIdSelector::Id("$".into()), XgroupCreateOptions::new().mkstream()).await.unwrap();
        c.xadd("jobs", XaddIdSelector::AutoId, [("task", "a")]).await.unwrap();
        // [[stream, [[id, [field, value]]]]]
        type Reply = Vec<(String, Vec<(String, Vec<String>)>)>;
        let got: Reply = c.xreadgroup_with("workers", "w1", "jobs", ">", XreadgroupOptions::new().count(10)).to().await.unwrap();
        let id = got[0].1[0].0.clone();
        assert_eq!(got[0].1[0].1, ["task", "a"]);
        assert_eq!(c.xack("jobs", "workers", &id).await.unwrap(), 1);
        // A blocking read goes to an exclusive connection and waits for the next entry.
        let producer = c.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            producer.xadd("jobs", XaddIdSelector::AutoId, [("task", "b")]).await.unwrap();
        });
        let blocked: Reply = c.xreadgroup_with("workers", "w1", "jobs", ">", XreadgroupOptions::new().block(5_000)).to().await.unwrap();
        assert_eq!(blocked[0].1[0].1, ["task", "b"]);
    }
}
