//! Generated geo commands.

use kermes::prelude::*;

crate::group_tests! {
    async fn add_distance_and_search(t) {
        let c = &t.c;
        let added = c.geoadd("sicily", [(13.361389, 38.115556, "Palermo"), (15.087269, 37.502669, "Catania")]).await.unwrap();
        assert_eq!(added, 2);
        let again = c.geoadd_with("sicily", (13.361389, 38.115556, "Palermo"), GeoaddOptions::new().nx()).await.unwrap();
        assert_eq!(again, 0);
        let km: Option<f64> = c.geodist_with("sicily", "Palermo", "Catania", GeodistOptions::new().km()).to().await.unwrap();
        assert!((km.unwrap() - 166.27).abs() < 0.1, "{km:?}");
        let near: Vec<String> = c
            .geosearch_with(
                "sicily",
                GeosearchFrom::Fromlonlat((15.0, 37.0)),
                GeosearchBy::Circle((200.0, GeosearchUnit::Km)),
                GeosearchOptions::new().asc(),
            )
            .to()
            .await
            .unwrap();
        assert_eq!(near, ["Catania", "Palermo"]);
        let boxed: Vec<String> = c
            .geosearch("sicily", GeosearchFrom::Frommember("Palermo".into()), GeosearchBy::Box((50.0, 50.0, GeosearchUnit::Km)))
            .to()
            .await
            .unwrap();
        assert_eq!(boxed, ["Palermo"]);
        let hashes: Vec<String> = c.geohash("sicily", ["Palermo"]).to().await.unwrap();
        assert_eq!(hashes[0].len(), 11);
    }
}
