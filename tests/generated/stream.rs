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
        c.xadd_with("s", XaddIdSelector::AutoId, [("f", "last")], XaddOptions::new().trim(TrimStrategy::Maxlen, Some(TrimOperator::Equal), 5, None))
            .await
            .unwrap();
        assert_eq!(c.xlen("s").await.unwrap(), 5);
        let entries: Vec<(String, Vec<(String, String)>)> = c.xrange_with("s", "-", "+", XrangeOptions::new().count(2)).to().await.unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].1[0].0, "f");
        assert_eq!(c.xtrim("s", TrimStrategy::Maxlen, None, 3, None).await.unwrap(), 2);
        assert_eq!(c.xdel("s", entries[0].0.as_str()).await.unwrap(), 0); // already trimmed away
        let read: kermes::Value = c.xread_with("s", "0", XreadOptions::new().count(1)).await.unwrap();
        assert!(!read.is_nil());
        // The natural types the docs name: entries with their fields, per stream.
        let entries: Vec<StreamEntry> = c.xrange("s", "-", "+").await.unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[2].get("f").map(|v| &v[..]), Some(&b"last"[..]));
        let back: Vec<StreamEntry> = c.xrevrange_with("s", "+", "-", XrevrangeOptions::new().count(1)).await.unwrap();
        assert_eq!(back, entries[2..]);
        let read: Option<Vec<(String, Vec<StreamEntry>)>> = c.xread_with("s", "0", XreadOptions::new().count(2)).await.unwrap();
        let read = read.unwrap();
        assert_eq!((read[0].0.as_str(), read[0].1.len()), ("s", 2));
        assert_eq!(read[0].1[0], entries[0]);
        let none: Option<Vec<(String, Vec<StreamEntry>)>> = c.xread("s", &entries[2].id[..]).await.unwrap();
        assert!(none.is_none_or(|streams| streams.is_empty()), "nothing after the last entry");
    }

    async fn consumer_groups_deliver_ack_and_block(t) {
        let c = &t.c;
        c.xgroup_create_with("jobs", "workers", StreamId::Id("$".into()), XgroupCreateOptions::new().mkstream()).await.unwrap();
        c.xadd("jobs", XaddIdSelector::AutoId, [("task", "a")]).await.unwrap();
        // [[stream, [[id, [field, value]]]]]
        type Reply = Vec<(String, Vec<(String, Vec<String>)>)>;
        let got: Reply = c.xreadgroup_with("workers", "w1", "jobs", ">", XreadgroupOptions::new().count(10)).to().await.unwrap();
        let id = got[0].1[0].0.clone();
        assert_eq!(got[0].1[0].1, ["task", "a"]);
        // Unacked, then claimed by another consumer: typed entries and deleted IDs.
        let (next, claimed, deleted): (Bytes, Vec<StreamEntry>, Vec<Bytes>) = c.xautoclaim("jobs", "workers", "w2", 0, "0").await.unwrap();
        assert_eq!(next, "0-0");
        assert_eq!((claimed.len(), claimed[0].get("task").map(|v| &v[..])), (1, Some(&b"a"[..])));
        assert!(deleted.is_empty());
        let again: Vec<StreamEntry> = c.xclaim("jobs", "workers", "w1", 0, &id).await.unwrap();
        assert_eq!(again, claimed);
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
