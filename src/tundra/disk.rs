//! A [`DataStore`] on a local (or mounted) file system.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use super::keys::safe_name;
use super::store::{DataStore, StoreError, generation_name, parse_generation};

/// Keeps each key in its own directory under a root, one file per generation
/// (`<root>/<safe key name>/<generation>`), and reads the highest. A put writes a temporary
/// file, syncs it, renames it into place and syncs the directory, so a crash leaves the old
/// version or the new one, never a torn file; then it removes older generations. Several
/// processes may share a directory. Key names are made safe for any file system
/// ([`safe_name`](super::safe_name)); file operations run on Tokio's blocking pool.
#[derive(Debug, Clone)]
pub struct DiskStore {
    root: Arc<PathBuf>,
}

impl DiskStore {
    /// A store under `root`, created if missing.
    pub fn new(root: impl Into<PathBuf>) -> io::Result<DiskStore> {
        let root = root.into();
        fs::create_dir_all(&root)?;
        Ok(DiskStore {
            root: Arc::new(root),
        })
    }

    /// The directory holding the store.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn dir(&self, key: &[u8]) -> PathBuf {
        self.root.join(safe_name(key))
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// The generations stored in `dir`, highest first; empty when it does not exist.
fn generations(dir: &Path) -> io::Result<Vec<u64>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut found = Vec::new();
    for entry in entries {
        if let Some(g) = entry?.file_name().to_str().and_then(parse_generation) {
            found.push(g);
        }
    }
    found.sort_unstable_by(|a, b| b.cmp(a));
    Ok(found)
}

fn put_blocking(dir: &Path, generation: u64, record: &[u8]) -> io::Result<()> {
    if !dir.exists() {
        fs::create_dir_all(dir)?;
        if let Some(parent) = dir.parent() {
            sync_dir(parent)?;
        }
    }
    let name = generation_name(generation);
    let tmp = dir.join(format!(".{name}.{:016x}.tmp", fastrand::u64(..)));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(record)?;
        f.sync_all()?;
        fs::rename(&tmp, dir.join(&name))?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    // The newest generation stays; the others (this one too, when a newer one is here)
    // are removed.
    for old in generations(dir)?.into_iter().skip(1) {
        match fs::remove_file(dir.join(generation_name(old))) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

fn fetch_blocking(dir: &Path) -> io::Result<Option<Bytes>> {
    // A put removing an older generation can race this read: read the newest again.
    for _ in 0..8 {
        let Some(&g) = generations(dir)?.first() else {
            return Ok(None);
        };
        match fs::read(dir.join(generation_name(g))) {
            Ok(bytes) => return Ok(Some(Bytes::from(bytes))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(format!(
        "{}: the newest generation kept being replaced while read",
        dir.display()
    )))
}

fn delete_blocking(dir: &Path) -> io::Result<()> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> Result<T, StoreError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(Into::into),
        Err(e) => Err(Box::new(io::Error::other(format!(
            "disk store task failed: {e}"
        )))),
    }
}

impl DataStore for DiskStore {
    async fn put(&self, key: &[u8], generation: u64, record: Bytes) -> Result<(), StoreError> {
        let dir = self.dir(key);
        blocking(move || put_blocking(&dir, generation, &record)).await
    }

    async fn fetch(&self, keys: &[Bytes]) -> Result<Vec<Option<Bytes>>, StoreError> {
        let dirs: Vec<PathBuf> = keys.iter().map(|k| self.dir(k)).collect();
        blocking(move || dirs.iter().map(|d| fetch_blocking(d)).collect()).await
    }

    async fn delete(&self, keys: &[Bytes]) -> Result<(), StoreError> {
        let dirs: Vec<PathBuf> = keys.iter().map(|k| self.dir(k)).collect();
        blocking(move || dirs.iter().try_for_each(|d| delete_blocking(d))).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_highest_generation_wins_whatever_order_puts_land_in() {
        let tmp = tempfile_dir();
        let store = DiskStore::new(&tmp).unwrap();
        let k = Bytes::from_static(b"Key/with\x00odd{bytes}");
        store.put(&k, 5, Bytes::from_static(b"five")).await.unwrap();
        store
            .put(&k, 3, Bytes::from_static(b"three"))
            .await
            .unwrap();
        let got = store
            .fetch(&[k.clone(), Bytes::from_static(b"absent")])
            .await
            .unwrap();
        assert_eq!(got, vec![Some(Bytes::from_static(b"five")), None]);
        store.put(&k, 9, Bytes::from_static(b"nine")).await.unwrap();
        assert_eq!(
            store.fetch(std::slice::from_ref(&k)).await.unwrap()[0].as_deref(),
            Some(&b"nine"[..])
        );
        assert_eq!(
            generations(&store.dir(&k)).unwrap(),
            vec![9],
            "older generations removed"
        );
        store.delete(std::slice::from_ref(&k)).await.unwrap();
        assert_eq!(store.fetch(&[k]).await.unwrap(), vec![None]);
        fs::remove_dir_all(&tmp).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        std::env::temp_dir().join(format!("kermes-disk-store-{:016x}", fastrand::u64(..)))
    }
}
