//! The file store port: bytes kept outside the database (custom emoji images,
//! message attachments), each under a key the server makes: a row's UUID for whole
//! small files ([`FileStore::put`]), or a path of one or two segments the server built
//! for streamed ones ([`FileStore::create`], e.g. `<message_id>/<stored_name>`).
//! [`LocalFileStore`] keeps them as files in one directory; an object-store backend
//! implements the same trait.

use std::{
    io::{self, Write},
    path::{Path, PathBuf},
    pin::Pin,
    sync::Arc,
};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

/// A file's bytes as they are read, chunk by chunk.
pub type ByteStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

/// A file being written by [`FileStore::create`]: nobody sees it under its key until
/// [`FileSink::finish`]; [`FileSink::abort`], or dropping the sink unfinished, leaves
/// nothing behind.
#[async_trait]
pub trait FileSink: Send {
    /// Appends `chunk`.
    ///
    /// # Errors
    /// The bytes could not be written.
    async fn write(&mut self, chunk: &[u8]) -> io::Result<()>;

    /// Makes the whole file visible under its key (replacing what was there).
    ///
    /// # Errors
    /// The file could not be completed; nothing is left behind.
    async fn finish(self: Box<Self>) -> io::Result<()>;

    /// Drops what was written.
    async fn abort(self: Box<Self>);
}

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

    /// Starts writing the file of `path` (`segment` or `segment/segment`, each of
    /// letters, digits, `.`, `_`, `-`, not starting with `.`).
    ///
    /// # Errors
    /// The path is not of that form, or the file cannot be created.
    async fn create(&self, path: &str) -> io::Result<Box<dyn FileSink>>;

    /// The size and bytes of the file of `path`; `None` when there is none.
    ///
    /// # Errors
    /// The path is malformed or the file cannot be read.
    async fn open(&self, path: &str) -> io::Result<Option<(u64, ByteStream)>>;

    /// Deletes the file of `path` (and its folder segment once empty); false when
    /// there was none.
    ///
    /// # Errors
    /// The path is malformed or the file cannot be deleted.
    async fn remove(&self, path: &str) -> io::Result<bool>;
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
        clear_temporaries(dir)?;
        // Streamed files are one folder down (`<group>/<name>`).
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                clear_temporaries(&entry.path())?;
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

/// The file of `path` under `dir`, refusing anything but one or two plain segments.
fn resolve(dir: &Path, path: &str) -> io::Result<PathBuf> {
    let segments: Vec<&str> = path.split('/').collect();
    let plain = |s: &&str| {
        !s.is_empty()
            && !s.starts_with('.')
            && s.len() <= 255
            && s.chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-'))
    };
    if segments.len() > 2 || !segments.iter().all(plain) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "malformed file store path",
        ));
    }
    Ok(segments.iter().fold(dir.to_path_buf(), |p, s| p.join(s)))
}

/// A [`FileSink`] writing a temporary file beside its target.
struct LocalSink {
    file: Option<tokio::fs::File>,
    temp: PathBuf,
    target: PathBuf,
}

impl LocalSink {
    fn discard(&mut self) {
        self.file = None;
        let _ = std::fs::remove_file(&self.temp);
    }
}

impl Drop for LocalSink {
    fn drop(&mut self) {
        if self.file.is_some() {
            self.discard();
        }
    }
}

#[async_trait]
impl FileSink for LocalSink {
    async fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        match self.file.as_mut() {
            Some(file) => file.write_all(chunk).await,
            None => Err(io::Error::other("file sink already closed")),
        }
    }

    async fn finish(mut self: Box<Self>) -> io::Result<()> {
        let Some(mut file) = self.file.take() else {
            return Err(io::Error::other("file sink already closed"));
        };
        let done = async {
            file.flush().await?;
            file.sync_all().await?;
            drop(file);
            tokio::fs::rename(&self.temp, &self.target).await
        }
        .await;
        if done.is_err() {
            let _ = tokio::fs::remove_file(&self.temp).await;
        }
        done
    }

    async fn abort(mut self: Box<Self>) {
        self.file = None;
        let _ = tokio::fs::remove_file(&self.temp).await;
    }
}

/// How many bytes a read of a stored file asks for at once.
const READ_CHUNK: usize = 64 * 1024;

/// Removes the temporary files an interrupted write left in `dir`.
fn clear_temporaries(dir: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX)
            && let Err(err) = std::fs::remove_file(entry.path())
        {
            tracing::warn!(path = %entry.path().display(), error = %err, "stale temporary file not removed");
        }
    }
    Ok(())
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

    async fn create(&self, path: &str) -> io::Result<Box<dyn FileSink>> {
        let target = resolve(&self.dir, path)?;
        let folder = target.parent().unwrap_or(&self.dir).to_path_buf();
        let temp = folder.join(format!("{TEMP_PREFIX}{}", Uuid::new_v4().simple()));
        let mut options = tokio::fs::OpenOptions::new();
        options.write(true).create_new(true);
        tokio::fs::create_dir_all(&folder).await?;
        let file = match options.open(&temp).await {
            // A purge removed the emptied folder in between: once more.
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                tokio::fs::create_dir_all(&folder).await?;
                options.open(&temp).await?
            }
            other => other?,
        };
        Ok(Box::new(LocalSink {
            file: Some(file),
            temp,
            target,
        }))
    }

    async fn open(&self, path: &str) -> io::Result<Option<(u64, ByteStream)>> {
        let path = resolve(&self.dir, path)?;
        let file = match tokio::fs::File::open(&path).await {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err),
        };
        let size = file.metadata().await?.len();
        let stream = futures_util::stream::try_unfold(file, |mut file| async move {
            let mut buf = BytesMut::with_capacity(READ_CHUNK);
            let read = file.read_buf(&mut buf).await?;
            Ok::<_, io::Error>((read > 0).then(|| (buf.freeze(), file)))
        });
        Ok(Some((size, Box::pin(stream))))
    }

    async fn remove(&self, path: &str) -> io::Result<bool> {
        let target = resolve(&self.dir, path)?;
        let removed = match tokio::fs::remove_file(&target).await {
            Ok(()) => true,
            Err(err) if err.kind() == io::ErrorKind::NotFound => false,
            Err(err) => return Err(err),
        };
        if let Some(folder) = target.parent()
            && folder != self.dir.as_path()
        {
            // Fails while other files remain, which is what we want.
            let _ = tokio::fs::remove_dir(folder).await;
        }
        Ok(removed)
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

    #[tokio::test]
    async fn streamed_files_appear_whole_or_not_at_all() {
        use futures_util::TryStreamExt;
        let dir = temp_dir();
        let store = LocalFileStore::open(&dir).unwrap();
        let mut sink = store.create("msg/a_b.txt").await.unwrap();
        sink.write(b"hello ").await.unwrap();
        // Not visible before it is finished.
        assert!(store.open("msg/a_b.txt").await.unwrap().is_none());
        sink.write(b"world").await.unwrap();
        sink.finish().await.unwrap();
        let (size, stream) = store.open("msg/a_b.txt").await.unwrap().unwrap();
        let bytes: Vec<Bytes> = stream.try_collect().await.unwrap();
        assert_eq!((size, bytes.concat()), (11, b"hello world".to_vec()));
        assert_eq!(names(&dir.join("msg")), ["a_b.txt"]);

        // Aborted and dropped sinks leave nothing.
        let mut aborted = store.create("msg/c.bin").await.unwrap();
        aborted.write(b"x").await.unwrap();
        aborted.abort().await;
        let mut dropped = store.create("msg/d.bin").await.unwrap();
        dropped.write(b"y").await.unwrap();
        drop(dropped);
        assert_eq!(names(&dir.join("msg")), ["a_b.txt"]);

        // Removing the last file removes its folder.
        assert!(store.remove("msg/a_b.txt").await.unwrap());
        assert!(!store.remove("msg/a_b.txt").await.unwrap());
        assert!(names(&dir).is_empty());
        for bad in [
            "", "../x", "a/../b", "a/b/c", ".hidden", "a/.tmp-x", "a\\b", "a//b",
        ] {
            assert!(store.create(bad).await.is_err(), "{bad}");
            assert!(store.open(bad).await.is_err(), "{bad}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn open_creates_the_directory_and_clears_temporaries() {
        let dir = temp_dir().join("nested");
        LocalFileStore::open(&dir).unwrap();
        let kept = Uuid::new_v4().to_string();
        std::fs::write(dir.join(&kept), b"x").unwrap();
        std::fs::write(dir.join(format!("{TEMP_PREFIX}left-over")), b"y").unwrap();
        std::fs::create_dir_all(dir.join("group")).unwrap();
        std::fs::write(dir.join("group").join(format!("{TEMP_PREFIX}nested")), b"z").unwrap();
        std::fs::write(dir.join("group").join("kept"), b"z").unwrap();
        let store = LocalFileStore::open(&dir).unwrap();
        assert_eq!(store.dir(), dir);
        assert_eq!(names(&dir), [kept, "group".to_owned()]);
        assert_eq!(names(&dir.join("group")), ["kept"]);
        std::fs::remove_dir_all(dir.parent().unwrap()).unwrap();
    }
}
