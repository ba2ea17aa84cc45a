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
                GeoFrom::LonLat((15.0, 37.0)),
                GeoBy::Circle((200.0, GeoUnit::Km)),
                GeosearchOptions::new().asc(),
            )
            .to()
            .await
            .unwrap();
        assert_eq!(near, ["Catania", "Palermo"]);
        let boxed: Vec<String> = c
            .geosearch("sicily", GeoFrom::Member("Palermo".into()), GeoBy::Box((50.0, 50.0, GeoUnit::Km)))
            .to()
            .await
            .unwrap();
        assert_eq!(boxed, ["Palermo"]);
        // With every option: names with their distance, hash and coordinates, nearest first.
        let found: Vec<GeoMember> = c
            .geosearch_with(
                "sicily",
                GeoFrom::LonLat((15.0, 37.0)),
                GeoBy::Circle((200.0, GeoUnit::Km)),
                GeosearchOptions::new().asc().withcoord().withdist().withhash(),
            )
            .await
            .unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].name, "Catania");
        assert!((found[0].distance.unwrap() - 56.44).abs() < 0.1, "{found:?}");
        assert!(found[0].hash.is_some(), "{found:?}");
        let (lon, lat) = found[1].coordinates.unwrap();
        assert!((lon - 13.361389).abs() < 1e-4 && (lat - 38.115556).abs() < 1e-4, "{found:?}");
        let bare: Vec<GeoMember> = c.geosearch("sicily", GeoFrom::LonLat((15.0, 37.0)), GeoBy::Circle((200.0, GeoUnit::Km))).await.unwrap();
        assert_eq!(bare.len(), 2);
        assert!(bare.iter().all(|m| m.distance.is_none() && m.coordinates.is_none()));
        let at: Vec<Option<(f64, f64)>> = c.geopos("sicily", ["Palermo", "nowhere"]).await.unwrap();
        assert!(at[0].is_some() && at[1].is_none(), "{at:?}");
        let hashes: Vec<String> = c.geohash("sicily", ["Palermo"]).to().await.unwrap();
        assert_eq!(hashes[0].len(), 11);
    }
}
