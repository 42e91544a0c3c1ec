//! Content-addressed blobs with reference counts kept in the KV store.
//!
//! Small blobs (up to `inline_max` bytes) live in the KV store itself so that
//! their durability rides on the same group commit as the metadata that
//! refers to them; larger ones are files under `<dir>/ab/cd/<sha256>`, written
//! to a temporary name, synced, renamed and the directory synced before the
//! transaction that references them is committed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::{Result, Store, StoreError, Txn};

const REF_PREFIX: u8 = b'b';
const INLINE_PREFIX: u8 = b'B';

#[derive(Clone)]
pub struct BlobStore {
    dir: Arc<PathBuf>,
    inline_max: usize,
}

/// The id of a blob: the hex SHA-256 of its content.
pub fn blob_id(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn ref_key(id: &str) -> Vec<u8> {
    let mut k = vec![REF_PREFIX];
    k.extend_from_slice(id.as_bytes());
    k
}

fn inline_key(id: &str) -> Vec<u8> {
    let mut k = vec![INLINE_PREFIX];
    k.extend_from_slice(id.as_bytes());
    k
}

fn valid_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

impl BlobStore {
    pub fn new(dir: &Path, inline_max: usize) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(BlobStore {
            dir: Arc::new(dir.to_path_buf()),
            inline_max,
        })
    }

    /// Where arriving messages too large for memory wait (unnamed files).
    pub fn spool_dir(&self) -> PathBuf {
        self.dir.join("spool")
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(&id[0..2]).join(&id[2..4]).join(id)
    }

    fn is_inline(&self, len: usize) -> bool {
        len <= self.inline_max
    }

    /// Makes a large blob durable on disk (small ones need nothing before the
    /// transaction). Returns the blob id.
    pub async fn prepare(&self, data: Arc<Vec<u8>>) -> Result<String> {
        let id = blob_id(&data);
        if !self.is_inline(data.len()) {
            let path = self.path(&id);
            tokio::task::spawn_blocking(move || write_durable(&path, &data))
                .await
                .map_err(StoreError::backend)?
                .map_err(StoreError::backend)?;
        }
        Ok(id)
    }

    /// Adds a reference to blob `id` whose content is `data`, inside `txn`.
    pub fn add_ref(&self, txn: &mut Txn<'_>, id: &str, data: &[u8]) -> Result<()> {
        let key = ref_key(id);
        let count = txn.get(&key)?.map(|v| decode_u64(&v)).unwrap_or(0);
        if count == 0 {
            if self.is_inline(data.len()) {
                txn.put(inline_key(id), data.to_vec());
            } else {
                // The file of a blob whose last reference went away may have
                // been deleted after `prepare` saw it: write it again.
                let path = self.path(id);
                if !path.exists() {
                    write_durable(&path, data).map_err(StoreError::backend)?;
                }
            }
        }
        txn.put(key, (count + 1).to_be_bytes().to_vec());
        Ok(())
    }

    /// Drops a reference; the content goes with the last one.
    pub fn release(&self, txn: &mut Txn<'_>, id: &str) -> Result<()> {
        let key = ref_key(id);
        let count = txn.get(&key)?.map(|v| decode_u64(&v)).unwrap_or(0);
        if count <= 1 {
            txn.delete(key);
            txn.delete(inline_key(id));
            if valid_id(id) {
                let path = self.path(id);
                txn.after_commit(move || {
                    let _ = std::fs::remove_file(path);
                });
            }
        } else {
            txn.put(key, (count - 1).to_be_bytes().to_vec());
        }
        Ok(())
    }

    pub async fn get(&self, store: &Store, id: &str) -> Result<Option<Vec<u8>>> {
        if !valid_id(id) {
            return Ok(None);
        }
        if let Some(v) = store.get(inline_key(id)).await? {
            return Ok(Some(v));
        }
        match tokio::fs::read(self.path(id)).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::backend(e)),
        }
    }

    /// Bytes `[from, to)` of a blob (clamped to its length). A file blob is
    /// read from `from` on, not whole.
    pub async fn get_range(
        &self,
        store: &Store,
        id: &str,
        from: usize,
        to: usize,
    ) -> Result<Option<Vec<u8>>> {
        if !valid_id(id) {
            return Ok(None);
        }
        if let Some(v) = store.get(inline_key(id)).await? {
            let to = to.min(v.len());
            let from = from.min(to);
            return Ok(Some(v[from..to].to_vec()));
        }
        let path = self.path(id);
        let res = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
            use std::io::{Read, Seek, SeekFrom};
            let mut f = std::fs::File::open(path)?;
            let len = f.metadata()?.len() as usize;
            let to = to.min(len);
            let from = from.min(to);
            f.seek(SeekFrom::Start(from as u64))?;
            let mut buf = vec![0u8; to - from];
            f.read_exact(&mut buf)?;
            Ok(buf)
        })
        .await
        .map_err(StoreError::backend)?;
        match res {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::backend(e)),
        }
    }
}

fn decode_u64(v: &[u8]) -> u64 {
    v.try_into().map(u64::from_be_bytes).unwrap_or(0)
}

fn write_durable(path: &Path, data: &[u8]) -> std::io::Result<()> {
    if path.exists() {
        return Ok(());
    }
    let dir = path.parent().expect("blob path has a parent");
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".tmp-{}-{}",
        std::process::id(),
        rand::random::<u64>()
    ));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}
