//! The secondary datastore Tundra replicates to.

use std::future::Future;

use bytes::Bytes;

/// An error of a [`DataStore`]: whatever the backend reports.
pub type StoreError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Where Tundra keeps replicated keys. Records are opaque bytes (see
/// [`Record`](super::Record)); each `put` carries its record's generation, which orders the
/// versions of one key.
///
/// The contract, which Tundra's guarantee rests on:
/// - `put` is atomic: a `fetch` sees the whole record or the one before it, never a part.
/// - A `fetch` returns the record of the highest generation put (and not deleted) for that
///   key. Two replications of one key can overlap (a worker's lease ran out while it was
///   slow); the older one's `put` may land last, and must not replace the newer record.
/// - `fetch` answers in the order of the keys asked, `None` for a key the store never held.
///
/// The two stores here keep each generation under its own name and read the highest, so
/// no put needs a compare-and-swap: [`DiskStore`](super::DiskStore) and, with the
/// `object-store` feature, `ObjectStoreBackend` (S3, GCS, Azure, local files).
pub trait DataStore: Send + Sync + 'static {
    /// Stores `record` as version `generation` of `key`.
    fn put(
        &self,
        key: &[u8],
        generation: u64,
        record: Bytes,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The latest record of each key, in order.
    fn fetch(
        &self,
        keys: &[Bytes],
    ) -> impl Future<Output = Result<Vec<Option<Bytes>>, StoreError>> + Send;

    /// Forgets every version of these keys (absent keys are no error).
    fn delete(&self, keys: &[Bytes]) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The name of generation `g` (zero-padded, so names sort as numbers).
pub(crate) fn generation_name(g: u64) -> String {
    format!("{g:020}")
}

/// The generation a name stands for, when it is one.
pub(crate) fn parse_generation(name: &str) -> Option<u64> {
    (name.len() == 20 && name.bytes().all(|b| b.is_ascii_digit()))
        .then(|| name.parse().ok())
        .flatten()
}
