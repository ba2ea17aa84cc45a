//! Generated bitmap commands.

use kermes::prelude::*;

crate::group_tests! {
    async fn bits_counts_operations_and_fields(t) {
        let c = &t.c;
        assert_eq!(c.setbit("{b}", 7, 1).await.unwrap(), 0);
        assert_eq!(c.getbit("{b}", 7).await.unwrap(), 1);
        c.set("text", "foobar").await.unwrap();
        assert_eq!(c.bitcount("text").await.unwrap(), 26);
        assert_eq!(c.bitcount_with("text", BitcountOptions::new().range(1, Some((1, None)))).await.unwrap(), 6);
        assert_eq!(c.bitpos("{b}", 1).await.unwrap(), 7);
        c.set("{b}x", "\u{ff}").await.unwrap();
        assert_eq!(c.bitop(BitopOperation::And, "{b}dest", ["{b}x", "{b}"]).await.unwrap(), 2);
        assert_eq!(c.getbit("{b}dest", 7).await.unwrap(), 1);
        let fields = c
            .bitfield_with(
                "bf",
                BitfieldOptions::new().operation([
                    BitfieldOperation::Write((None, BitfieldWriteOperation::Set(("u8".into(), 0, 200)))),
                    BitfieldOperation::Write((Some(BitfieldOverflowBlock::Sat), BitfieldWriteOperation::Incrby(("u8".into(), 0, 100)))),
                    BitfieldOperation::Get(("u8".into(), 0)),
                ]),
            )
            .await
            .unwrap();
        assert_eq!(fields, [Some(0), Some(255), Some(255)]);
    }
}
