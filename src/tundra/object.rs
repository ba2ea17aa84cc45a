//! A [`DataStore`] on any `object_store` backend: S3 (and S3-compatible servers), GCS,
//! Azure Blob, local files, memory.

use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use super::keys::safe_name;
use super::store::{DataStore, StoreError, generation_name, parse_generation};

/// Keeps each key under `<prefix>/<safe key name>/<generation>` in an
/// [`ObjectStore`](object_store::ObjectStore) and reads the highest generation. Object
/// stores put whole objects atomically, so no partial record is ever read; a put then
/// deletes the older generations. Build the backend with `object_store`'s own builders
/// (enable its `aws`, `gcp` or `azure` feature in your Cargo.toml):
///
/// ```no_run
/// # fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use object_store::aws::AmazonS3Builder;
/// use kermes::tundra::ObjectStoreBackend;
///
/// let s3 = AmazonS3Builder::from_env().with_bucket_name("cold-keys").build()?;
/// let store = ObjectStoreBackend::new(Arc::new(s3), "tundra/prod");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ObjectStoreBackend {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
}

/// How many keys one fetch reads at once.
const FETCH_CONCURRENCY: usize = 16;

impl ObjectStoreBackend {
    /// Records go under `prefix` (`""` for the store's root).
    pub fn new(store: Arc<dyn ObjectStore>, prefix: &str) -> ObjectStoreBackend {
        ObjectStoreBackend {
            store,
            prefix: Path::from(prefix),
        }
    }

    fn dir(&self, key: &[u8]) -> Path {
        self.prefix.clone().join(safe_name(key))
    }

    /// The generations stored under `dir`, highest first.
    async fn generations(&self, dir: &Path) -> Result<Vec<u64>, StoreError> {
        let mut found: Vec<u64> = self
            .store
            .list(Some(dir))
            .map_ok(|meta| meta.location.filename().and_then(parse_generation))
            .try_collect::<Vec<_>>()
            .await?
            .into_iter()
            .flatten()
            .collect();
        found.sort_unstable_by(|a, b| b.cmp(a));
        Ok(found)
    }

    async fn delete_generations(
        &self,
        dir: &Path,
        generations: impl IntoIterator<Item = u64>,
    ) -> Result<(), StoreError> {
        for g in generations {
            let at = dir.clone().join(generation_name(g));
            match self.store.delete(&at).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    async fn fetch_one(&self, key: &[u8]) -> Result<Option<Bytes>, StoreError> {
        let dir = self.dir(key);
        for _ in 0..8 {
            let Some(&g) = self.generations(&dir).await?.first() else {
                return Ok(None);
            };
            match self.store.get(&dir.clone().join(generation_name(g))).await {
                Ok(found) => return Ok(Some(found.bytes().await?)),
                // Deleted by a newer put between the listing and the read.
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(format!("{dir}: the newest generation kept being replaced while read").into())
    }
}

impl DataStore for ObjectStoreBackend {
    async fn put(&self, key: &[u8], generation: u64, record: Bytes) -> Result<(), StoreError> {
        let dir = self.dir(key);
        self.store
            .put(
                &dir.clone().join(generation_name(generation)),
                PutPayload::from(record),
            )
            .await?;
        let older = self.generations(&dir).await?.into_iter().skip(1);
        self.delete_generations(&dir, older).await
    }

    async fn fetch(&self, keys: &[Bytes]) -> Result<Vec<Option<Bytes>>, StoreError> {
        let reads: Vec<_> = keys.iter().map(|k| self.fetch_one(k)).collect();
        futures::stream::iter(reads)
            .buffered(FETCH_CONCURRENCY)
            .try_collect()
            .await
    }

    async fn delete(&self, keys: &[Bytes]) -> Result<(), StoreError> {
        for key in keys {
            let dir = self.dir(key);
            let all = self.generations(&dir).await?;
            self.delete_generations(&dir, all).await?;
        }
        Ok(())
    }
}
