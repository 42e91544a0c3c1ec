//! Storage: an ordered key-value store with serialised, group-committed
//! transactions, and a content-addressed blob store.
//!
//! Every write goes through [`Store::transact`]: the closure runs on the single
//! committer thread against the committed state plus the writes of earlier
//! closures of the same group, so a read-modify-write inside it (UID allocation,
//! compare-and-set) is atomic. Closures that arrive while a sync is in flight
//! are grouped and made durable by one synced write: durability costs one sync
//! per group, not one per message. A caller is answered only after the group
//! holding its writes is synced.
//!
//! Backends implement [`KvBackend`]; nothing above this module knows which
//! engine is in use.

pub mod blob;
pub mod changelog;
#[cfg(feature = "rocksdb")]
pub mod rocks;
#[cfg(feature = "sqlite")]
pub mod sqlite;

use std::collections::BTreeMap;
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;

use tokio::sync::oneshot;

pub use blob::BlobStore;

#[cfg(all(test, feature = "rocksdb", feature = "sqlite"))]
mod tests;

/// Errors from the storage layer. All of them are temporary from a protocol's
/// point of view: the caller answers 4xx / NO [UNAVAILABLE], never success.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage backend error: {0}")]
    Backend(String),
    #[error("storage is shutting down")]
    Closed,
    #[error("{0}")]
    Aborted(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

impl StoreError {
    pub fn backend(e: impl std::fmt::Display) -> Self {
        StoreError::Backend(e.to_string())
    }
}

/// An engine: blocking, durable on `write` return.
pub trait KvBackend: Send + Sync + 'static {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Keys in `[from, to)`, ascending, at most `limit` of them.
    fn scan(&self, from: &[u8], to: &[u8], limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>>;
    /// Applies all writes atomically and returns once they are synced to disk.
    fn write(&self, ops: &[(Vec<u8>, Option<Vec<u8>>)]) -> Result<()>;
    fn name(&self) -> &'static str;
    /// Flushes and stops background work before the process exits.
    fn close(&self) {}
}

type Reply = Box<dyn FnOnce(Result<()>) + Send>;
type Job = Box<dyn FnOnce(&mut Txn<'_>) -> (bool, Reply) + Send>;

/// A transaction handed to a [`Store::transact`] closure.
pub struct Txn<'a> {
    backend: &'a dyn KvBackend,
    group: &'a BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    own: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Work to run after the group is durable (e.g. deleting blob files).
    after: Vec<Box<dyn FnOnce() + Send>>,
}

impl Txn<'_> {
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if let Some(v) = self.own.get(key) {
            return Ok(v.clone());
        }
        if let Some(v) = self.group.get(key) {
            return Ok(v.clone());
        }
        self.backend.get(key)
    }
    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.own.insert(key, Some(value));
    }
    pub fn delete(&mut self, key: Vec<u8>) {
        self.own.insert(key, None);
    }
    /// Scan of committed data merged with this group's pending writes.
    pub fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let end = prefix_end(prefix);
        let mut merged: BTreeMap<Vec<u8>, Option<Vec<u8>>> = self
            .backend
            .scan(prefix, &end, usize::MAX)?
            .into_iter()
            .map(|(k, v)| (k, Some(v)))
            .collect();
        for layer in [self.group, &self.own] {
            for (k, v) in layer.range(prefix.to_vec()..end.clone()) {
                merged.insert(k.clone(), v.clone());
            }
        }
        Ok(merged
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect())
    }
    pub fn after_commit(&mut self, f: impl FnOnce() + Send + 'static) {
        self.after.push(Box::new(f));
    }
}

/// The smallest key greater than every key starting with `prefix`.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0xff; prefix.len() + 1]
}

#[derive(Clone)]
pub struct Store {
    backend: Arc<dyn KvBackend>,
    jobs: std_mpsc::SyncSender<Job>,
}

impl Store {
    pub fn new(backend: Arc<dyn KvBackend>) -> Self {
        let (tx, rx) = std_mpsc::sync_channel::<Job>(4096);
        let b = backend.clone();
        std::thread::Builder::new()
            .name("petrel-committer".into())
            .spawn(move || committer(b, rx))
            .expect("spawn committer thread");
        Store { backend, jobs: tx }
    }

    /// Called once no session can write any more (graceful shutdown).
    pub fn close(&self) {
        self.backend.close();
    }

    pub fn backend_name(&self) -> &'static str {
        self.backend.name()
    }

    /// A point read, on the calling worker: it is answered from memory
    /// (memtable, block cache) or one page read, far cheaper than handing
    /// it to the blocking pool and back. The task then yields, so that a
    /// command doing many reads takes turns with the other sessions (an
    /// SMTP delivery among a hundred busy IMAP clients) as it did when
    /// each read was a hand-off.
    pub async fn get(&self, key: Vec<u8>) -> Result<Option<Vec<u8>>> {
        let r = self.backend.get(&key);
        tokio::task::yield_now().await;
        r
    }

    /// The same point read without the yield, for code that cannot
    /// await (a Sieve run asking for a key between two instructions).
    pub fn get_now(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.backend.get(key)
    }

    pub async fn scan_prefix(&self, prefix: Vec<u8>) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let end = prefix_end(&prefix);
        self.scan(prefix, end, usize::MAX).await
    }

    pub async fn scan(
        &self,
        from: Vec<u8>,
        to: Vec<u8>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let b = self.backend.clone();
        tokio::task::spawn_blocking(move || b.scan(&from, &to, limit))
            .await
            .map_err(StoreError::backend)?
    }

    /// Runs `f` serialised with every other transaction and returns its value
    /// once its writes are durable. If `f` fails, none of its writes happen.
    pub async fn transact<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Txn<'_>) -> Result<R> + Send + 'static,
    {
        let started = std::time::Instant::now();
        let (tx, rx) = oneshot::channel::<Result<R>>();
        let job: Job = Box::new(move |txn: &mut Txn<'_>| {
            let out = f(txn);
            let ok = out.is_ok();
            let reply: Reply = Box::new(move |commit: Result<()>| {
                let _ = tx.send(commit.and(out));
            });
            (ok, reply)
        });
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(std_mpsc::TrySendError::Disconnected(_)) => return Err(StoreError::Closed),
            Err(std_mpsc::TrySendError::Full(job)) => {
                // The queue is bounded: wait for room off the async workers.
                let sender = self.jobs.clone();
                tokio::task::spawn_blocking(move || sender.send(job))
                    .await
                    .map_err(StoreError::backend)?
                    .map_err(|_| StoreError::Closed)?;
            }
        }
        let out = rx.await.map_err(|_| StoreError::Closed)?;
        metrics::histogram!("petrel_store_transaction_seconds")
            .record(started.elapsed().as_secs_f64());
        out
    }
}

/// Maximum number of transactions folded into one synced write.
const MAX_GROUP: usize = 512;

fn committer(backend: Arc<dyn KvBackend>, rx: std_mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let mut group: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
        let mut replies = Vec::with_capacity(jobs.len());
        let mut after = Vec::new();
        for job in jobs {
            let mut txn = Txn {
                backend: backend.as_ref(),
                group: &group,
                own: BTreeMap::new(),
                after: Vec::new(),
            };
            let (ok, reply) = job(&mut txn);
            let Txn { own, after: a, .. } = txn;
            // A failed closure's writes are dropped; later closures of the
            // group see only the writes of the successful ones.
            if ok {
                group.extend(own);
                after.extend(a);
            }
            replies.push(reply);
        }
        let ops: Vec<(Vec<u8>, Option<Vec<u8>>)> = group.into_iter().collect();
        let res = if ops.is_empty() {
            Ok(())
        } else {
            let t = std::time::Instant::now();
            let r = backend.write(&ops);
            metrics::histogram!("petrel_store_commit_seconds").record(t.elapsed().as_secs_f64());
            r
        };
        let msg = res.as_ref().err().map(|e| e.to_string());
        // Clean-up runs before callers hear back, so that what they read
        // next already reflects it.
        if msg.is_none() {
            for f in after {
                f();
            }
        }
        for reply in replies {
            reply(match &msg {
                None => Ok(()),
                Some(m) => Err(StoreError::Backend(m.clone())),
            });
        }
    }
}
