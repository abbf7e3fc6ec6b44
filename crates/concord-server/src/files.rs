//! The file store port: bytes kept outside the database (custom emoji images), each
//! under a key the server makes (a row's UUID, never a name a client chose).
//! [`LocalFileStore`] keeps them as files in one directory; an object-store backend
//! implements the same trait.

use std::{
    io::{self, Write},
    path::{Path, PathBuf},
    sync::Arc,
};

use async_trait::async_trait;
use bytes::Bytes;
use uuid::Uuid;

/// Where file bytes live.
#[async_trait]
pub trait FileStore: Send + Sync + 'static {
    /// Stores `bytes` under `key`, replacing what was there. Readers see the old bytes
    /// or the new ones, never a part.
    ///
    /// # Errors
    /// The bytes could not be stored.
    async fn put(&self, key: Uuid, bytes: Bytes) -> io::Result<()>;

    /// The bytes under `key`; `None` when there are none.
    ///
    /// # Errors
    /// The bytes could not be read.
    async fn get(&self, key: Uuid) -> io::Result<Option<Bytes>>;

    /// Deletes the bytes under `key`; false when there were none.
    ///
    /// # Errors
    /// The bytes could not be deleted.
    async fn delete(&self, key: Uuid) -> io::Result<bool>;
}

/// A [`FileStore`] over one local directory: the file of key `k` is `<dir>/<k>`
/// (lowercase hyphenated UUID). Writes go to a temporary file in the same directory,
/// flushed to disk, then renamed over the target, so a crash leaves either the whole
/// file or none (and at most a temporary file, which [`LocalFileStore::open`] clears).
#[derive(Debug, Clone)]
pub struct LocalFileStore {
    dir: Arc<PathBuf>,
}

/// Temporary files start with this, which no key's file name does.
const TEMP_PREFIX: &str = ".tmp-";

impl LocalFileStore {
    /// Uses `dir`, creating it if missing, and removes temporary files an interrupted
    /// write left behind.
    ///
    /// # Errors
    /// The directory cannot be created or listed.
    pub fn open(dir: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX)
                && let Err(err) = std::fs::remove_file(entry.path())
            {
                tracing::warn!(path = %entry.path().display(), error = %err, "stale temporary file not removed");
            }
        }
        Ok(Self {
            dir: Arc::new(dir.to_path_buf()),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path_of(&self, key: Uuid) -> PathBuf {
        self.dir.join(key.hyphenated().to_string())
    }

    fn write(&self, key: Uuid, bytes: &[u8]) -> io::Result<()> {
        let temp = self
            .dir
            .join(format!("{TEMP_PREFIX}{key}-{}", Uuid::new_v4().simple()));
        let written = (|| {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&temp)?;
            file.write_all(bytes)?;
            file.sync_all()?;
            std::fs::rename(&temp, self.path_of(key))
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        written
    }
}

/// Runs blocking file work off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(io::Error::other)?
}

#[async_trait]
impl FileStore for LocalFileStore {
    async fn put(&self, key: Uuid, bytes: Bytes) -> io::Result<()> {
        let store = self.clone();
        blocking(move || store.write(key, &bytes)).await
    }

    async fn get(&self, key: Uuid) -> io::Result<Option<Bytes>> {
        let path = self.path_of(key);
        blocking(move || match std::fs::read(path) {
            Ok(bytes) => Ok(Some(Bytes::from(bytes))),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err),
        })
        .await
    }

    async fn delete(&self, key: Uuid) -> io::Result<bool> {
        let path = self.path_of(key);
        blocking(move || match std::fs::remove_file(path) {
            Ok(()) => Ok(true),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(err) => Err(err),
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir() -> PathBuf {
        std::env::temp_dir().join(format!("concord-files-{}", Uuid::new_v4()))
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[tokio::test]
    async fn put_get_replace_delete() {
        let dir = temp_dir();
        let store = LocalFileStore::open(&dir).unwrap();
        let key = Uuid::new_v4();
        assert_eq!(store.get(key).await.unwrap(), None);
        store.put(key, Bytes::from_static(b"one")).await.unwrap();
        assert_eq!(store.get(key).await.unwrap().as_deref(), Some(&b"one"[..]));
        store.put(key, Bytes::from_static(b"two!")).await.unwrap();
        assert_eq!(store.get(key).await.unwrap().as_deref(), Some(&b"two!"[..]));
        // One file named by the key, no temporary left.
        assert_eq!(names(&dir), [key.hyphenated().to_string()]);
        assert!(store.delete(key).await.unwrap());
        assert!(!store.delete(key).await.unwrap());
        assert_eq!(store.get(key).await.unwrap(), None);
        assert!(names(&dir).is_empty());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn open_creates_the_directory_and_clears_temporaries() {
        let dir = temp_dir().join("nested");
        LocalFileStore::open(&dir).unwrap();
        let kept = Uuid::new_v4().to_string();
        std::fs::write(dir.join(&kept), b"x").unwrap();
        std::fs::write(dir.join(format!("{TEMP_PREFIX}left-over")), b"y").unwrap();
        let store = LocalFileStore::open(&dir).unwrap();
        assert_eq!(store.dir(), dir);
        assert_eq!(names(&dir), [kept]);
        std::fs::remove_dir_all(dir.parent().unwrap()).unwrap();
    }
}
