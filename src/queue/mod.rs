//! The outbound queue: messages waiting for delivery, kept in the store.
//!
//! Keys (prefix `Q`):
//! - `Qm<id>` → [`QueueEntry`] (JSON)
//! - `Qt<due><id>` → "" — the schedule: entries by next attempt time
//! - `Qs` → the last id handed out
//!
//! An entry is written in the same transaction as the reference to its
//! message blob, so a 250 after DATA means the message is on disk. Before
//! each attempt the attempt itself is recorded and the next one scheduled
//! (see [`deliver`]): a crash during delivery leads to a retry, never to a
//! lost message. The only duplicate possible is the one RFC 5321 §6.1
//! accepts — a crash after the remote server's 250 and before we record it.

pub mod dane;
pub mod deliver;
pub mod dsn;
pub mod mta_sts;
pub mod route;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::core::unix_now;
use crate::store::{BlobStore, Store, StoreError, Txn};

pub type Result<T> = std::result::Result<T, StoreError>;

/// DSN NOTIFY (RFC 3461 §4.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notify {
    pub success: bool,
    pub failure: bool,
    pub delay: bool,
}

impl Notify {
    /// Without a NOTIFY parameter: failures and delays (§4.1).
    pub fn default_policy() -> Notify {
        Notify {
            success: false,
            failure: true,
            delay: true,
        }
    }

    /// Parses `NEVER` or a comma list of SUCCESS, FAILURE, DELAY.
    pub fn parse(v: &str) -> Option<Notify> {
        if v.eq_ignore_ascii_case("NEVER") {
            return Some(Notify::default());
        }
        let mut n = Notify::default();
        for part in v.split(',') {
            match part.to_ascii_uppercase().as_str() {
                "SUCCESS" => n.success = true,
                "FAILURE" => n.failure = true,
                "DELAY" => n.delay = true,
                _ => return None,
            }
        }
        Some(n)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum RcptStatus {
    Pending,
    Delivered { reply: String, host: String },
    Failed { reply: String, host: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueRcpt {
    pub address: String,
    pub status: RcptStatus,
    #[serde(default = "Notify::default_policy")]
    pub notify: Notify,
    /// ORCPT (RFC 3461 §4.2), as "type;address".
    #[serde(default)]
    pub orcpt: Option<String>,
    /// The last temporary error, shown by `queue show` and in delay notices.
    #[serde(default)]
    pub last_error: Option<String>,
}

impl QueueRcpt {
    pub fn new(address: &str) -> QueueRcpt {
        QueueRcpt {
            address: address.to_string(),
            status: RcptStatus::Pending,
            notify: Notify::default_policy(),
            orcpt: None,
            last_error: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueEntry {
    pub id: u64,
    /// Envelope sender; "" for the null sender (bounces).
    pub from: String,
    pub blob: String,
    pub size: u64,
    pub created: i64,
    pub next_attempt: i64,
    pub attempts: u32,
    pub expires: i64,
    /// ENVID (RFC 3461 §4.4).
    #[serde(default)]
    pub env_id: Option<String>,
    /// RET=FULL (RFC 3461 §4.3): return the whole message in a bounce.
    #[serde(default)]
    pub ret_full: bool,
    /// REQUIRETLS (RFC 8689): deliver only over TLS.
    #[serde(default)]
    pub requiretls: bool,
    /// Received with SMTPUTF8 (RFC 6531): the next hop must offer it.
    #[serde(default)]
    pub smtputf8: bool,
    #[serde(default)]
    pub delay_notified: bool,
    pub recipients: Vec<QueueRcpt>,
    /// Keep the final state when the entry is done (see
    /// [`Queue::finished`]): JMAP EmailSubmission reports it.
    #[serde(default)]
    pub track: bool,
}

impl QueueEntry {
    pub fn pending(&self) -> impl Iterator<Item = &QueueRcpt> {
        self.recipients
            .iter()
            .filter(|r| r.status == RcptStatus::Pending)
    }
}

/// What the SMTP session (or JMAP submission) hands to the queue.
#[derive(Default)]
pub struct NewMessage {
    pub from: String,
    pub recipients: Vec<QueueRcpt>,
    pub raw: Vec<u8>,
    pub env_id: Option<String>,
    pub ret_full: bool,
    pub requiretls: bool,
    pub smtputf8: bool,
    /// No attempt before this time (JMAP `sendAt`, RFC 8621 §7); until
    /// then the entry can be cancelled without anyone receiving it.
    pub hold_until: Option<i64>,
    /// See [`QueueEntry::track`].
    pub track: bool,
}

fn k_done(id: u64) -> Vec<u8> {
    let mut k = b"Qd".to_vec();
    k.extend_from_slice(&id.to_be_bytes());
    k
}

fn k_entry(id: u64) -> Vec<u8> {
    let mut k = b"Qm".to_vec();
    k.extend_from_slice(&id.to_be_bytes());
    k
}

fn k_due(due: i64, id: u64) -> Vec<u8> {
    let mut k = b"Qt".to_vec();
    k.extend_from_slice(&(due.max(0) as u64).to_be_bytes());
    k.extend_from_slice(&id.to_be_bytes());
    k
}

fn parse_entry(v: &[u8]) -> Result<QueueEntry> {
    serde_json::from_slice(v).map_err(|e| StoreError::Backend(format!("corrupt queue entry: {e}")))
}

#[derive(Clone)]
pub struct Queue {
    pub store: Store,
    pub blobs: BlobStore,
    wake: Arc<tokio::sync::Notify>,
    expire: i64,
    /// Seconds to the retry of a first attempt that did not finish.
    first_retry: i64,
    /// Ids of new entries, for the worker's fast path (no schedule scan).
    fresh_tx: tokio::sync::mpsc::UnboundedSender<u64>,
    fresh_rx: Arc<std::sync::Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<u64>>>>,
    /// Idle outbound SMTP sessions by destination, for reuse.
    pub(crate) pool: Arc<std::sync::Mutex<SessionPool>>,
    /// When the worker last went round its loop (unix seconds; 0: never).
    heartbeat: Arc<std::sync::atomic::AtomicI64>,
    /// Told of every step of a tracked entry, in the transaction that
    /// makes it (see [`Queue::on_progress`]).
    progress: Option<ProgressHook>,
}

/// Runs in the transaction that changes a tracked entry: its id, and
/// whether the entry is done.
pub type ProgressHook = fn(&mut Txn<'_>, u64, bool) -> crate::store::Result<()>;

type SessionPool =
    std::collections::HashMap<String, Vec<(crate::smtp::client::SmtpClient, std::time::Instant)>>;

/// A message prepared outside the transaction (its blob written).
pub struct Prepared {
    msg: NewMessage,
    blob: String,
    raw: Arc<Vec<u8>>,
}

impl Queue {
    pub fn new(store: Store, blobs: BlobStore, expire_secs: u64, first_retry: i64) -> Queue {
        let (fresh_tx, rx) = tokio::sync::mpsc::unbounded_channel();
        Queue {
            store,
            blobs,
            wake: Arc::new(tokio::sync::Notify::new()),
            expire: expire_secs as i64,
            first_retry,
            fresh_tx,
            fresh_rx: Arc::new(std::sync::Mutex::new(Some(rx))),
            pool: Default::default(),
            heartbeat: Default::default(),
            progress: None,
        }
    }

    /// Calls `hook` in every transaction that changes a tracked entry
    /// (its attempts, its recipients' states, its end), so that what
    /// follows the entry (a JMAP EmailSubmission) moves with it.
    pub fn on_progress(mut self, hook: ProgressHook) -> Queue {
        self.progress = Some(hook);
        self
    }

    /// The worker is alive: it goes round at least every 30 s.
    pub(crate) fn beat(&self) {
        self.heartbeat.store(
            crate::core::unix_now(),
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// Seconds since the worker last went round, None if it never did.
    pub fn worker_idle(&self) -> Option<i64> {
        match self.heartbeat.load(std::sync::atomic::Ordering::Relaxed) {
            0 => None,
            t => Some(crate::core::unix_now() - t),
        }
    }

    /// How many messages are queued, and when the oldest was queued.
    /// Entry ids grow with time, so the first entry is the oldest.
    pub async fn stats(&self) -> Result<(usize, Option<i64>)> {
        let rows = self.store.scan_prefix(b"Qm".to_vec()).await?;
        let oldest = match rows.first() {
            Some((_, v)) => Some(parse_entry(v)?.created),
            None => None,
        };
        Ok((rows.len(), oldest))
    }

    /// Hands a committed new entry to the worker.
    pub fn announce(&self, id: u64) {
        let _ = self.fresh_tx.send(id);
    }

    /// The worker's end of [`Queue::announce`] (taken once).
    pub(crate) fn take_fresh(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<u64>> {
        self.fresh_rx.lock().expect("lock").take()
    }

    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub(crate) async fn woken(&self) {
        self.wake.notified().await
    }

    /// Writes the blob of a message; the entry is then added with
    /// [`Queue::add_in_txn`].
    pub async fn prepare(&self, mut msg: NewMessage) -> Result<Prepared> {
        let raw = Arc::new(std::mem::take(&mut msg.raw));
        let blob = self.blobs.prepare(raw.clone()).await?;
        Ok(Prepared { msg, blob, raw })
    }

    /// Adds a prepared message inside a transaction; returns its id.
    pub fn add_in_txn(&self, txn: &mut Txn<'_>, p: &Prepared) -> Result<u64> {
        let id = match txn.get(b"Qs")? {
            Some(v) if v.len() == 8 => u64::from_be_bytes(v.try_into().expect("8 bytes")) + 1,
            _ => 1,
        };
        txn.put(b"Qs".to_vec(), id.to_be_bytes().to_vec());
        let now = unix_now();
        // The first attempt is recorded with the message itself: the worker
        // makes it at once (see `announce`), and should the process stop
        // before it finishes, the schedule brings the entry back later. A
        // held entry has no attempt yet and is due when the hold ends.
        let held = p.msg.hold_until.filter(|t| *t > now);
        let due = held.unwrap_or(now + self.first_retry);
        let entry = QueueEntry {
            id,
            from: p.msg.from.clone(),
            blob: p.blob.clone(),
            size: p.raw.len() as u64,
            created: now,
            next_attempt: due,
            attempts: if held.is_some() { 0 } else { 1 },
            expires: held.unwrap_or(now) + self.expire,
            env_id: p.msg.env_id.clone(),
            ret_full: p.msg.ret_full,
            requiretls: p.msg.requiretls,
            smtputf8: p.msg.smtputf8,
            delay_notified: false,
            recipients: p.msg.recipients.clone(),
            track: p.msg.track,
        };
        self.blobs.add_ref(txn, &p.blob, &p.raw)?;
        txn.put(k_entry(id), serde_json::to_vec(&entry).expect("serialises"));
        txn.put(k_due(due, id), Vec::new());
        Ok(id)
    }

    /// Queues a message durably; returns its id once it is synced.
    pub async fn enqueue(&self, msg: NewMessage) -> Result<u64> {
        let held = msg.hold_until.is_some_and(|t| t > unix_now());
        let p = Arc::new(self.prepare(msg).await?);
        let q = self.clone();
        let id = self
            .store
            .transact(move |txn| q.add_in_txn(txn, &p))
            .await?;
        if held {
            // The schedule brings it when the hold ends.
            self.wake();
        } else {
            self.announce(id);
        }
        Ok(id)
    }

    /// The last state of a tracked entry that is done (delivered,
    /// bounced, expired or cancelled).
    pub async fn finished(&self, id: u64) -> Result<Option<QueueEntry>> {
        match self.store.get(k_done(id)).await? {
            Some(v) => Ok(Some(parse_entry(&v)?)),
            None => Ok(None),
        }
    }

    /// Forgets the last state of a tracked entry.
    pub async fn forget_finished(&self, id: u64) -> Result<()> {
        self.store
            .transact(move |txn| {
                txn.delete(k_done(id));
                Ok(())
            })
            .await
    }

    pub async fn get(&self, id: u64) -> Result<Option<QueueEntry>> {
        match self.store.get(k_entry(id)).await? {
            Some(v) => Ok(Some(parse_entry(&v)?)),
            None => Ok(None),
        }
    }

    pub async fn list(&self) -> Result<Vec<QueueEntry>> {
        self.store
            .scan_prefix(b"Qm".to_vec())
            .await?
            .iter()
            .map(|(_, v)| parse_entry(v))
            .collect()
    }

    pub async fn message(&self, e: &QueueEntry) -> Result<Vec<u8>> {
        self.blobs
            .get(&self.store, &e.blob)
            .await?
            .ok_or_else(|| StoreError::Backend(format!("queue message {} has no content", e.id)))
    }

    /// Ids due at `now`, earliest first, and the time of the next later one.
    /// Two range reads of the schedule: what is due, and the first after.
    pub async fn due(&self, now: i64, limit: usize) -> Result<(Vec<u64>, Option<i64>)> {
        let parse = |k: &[u8]| -> Option<(i64, u64)> {
            (k.len() == 18).then(|| {
                (
                    u64::from_be_bytes(k[2..10].try_into().expect("8 bytes")) as i64,
                    u64::from_be_bytes(k[10..18].try_into().expect("8 bytes")),
                )
            })
        };
        let after_now = k_due(now + 1, 0);
        let rows = self
            .store
            .scan(b"Qt".to_vec(), after_now.clone(), limit)
            .await?;
        let ids: Vec<u64> = rows
            .iter()
            .filter_map(|(k, _)| parse(k))
            .map(|(_, id)| id)
            .collect();
        let next = self
            .store
            .scan(after_now, b"Qu".to_vec(), 1)
            .await?
            .first()
            .and_then(|(k, _)| parse(k))
            .map(|(due, _)| due);
        // A full page may have more due behind it: come back at once.
        let next = if ids.len() >= limit { Some(now) } else { next };
        Ok((ids, next))
    }

    /// Changes an entry in a transaction: `f` edits it; returning false
    /// removes it (and its blob reference). Keeps the schedule in step.
    pub fn update_in_txn(
        &self,
        txn: &mut Txn<'_>,
        id: u64,
        f: impl FnOnce(&mut QueueEntry) -> bool,
    ) -> Result<Option<QueueEntry>> {
        let Some(v) = txn.get(&k_entry(id))? else {
            return Ok(None);
        };
        let mut e = parse_entry(&v)?;
        let old_due = e.next_attempt;
        let keep = f(&mut e);
        if let Some(hook) = self.progress.filter(|_| e.track) {
            hook(txn, id, !keep)?;
        }
        txn.delete(k_due(old_due, id));
        if keep {
            txn.put(k_due(e.next_attempt, id), Vec::new());
            txn.put(k_entry(id), serde_json::to_vec(&e).expect("serialises"));
        } else {
            txn.delete(k_entry(id));
            self.blobs.release(txn, &e.blob)?;
            if e.track {
                txn.put(k_done(id), serde_json::to_vec(&e).expect("serialises"));
            }
        }
        Ok(Some(e))
    }

    /// Queues a DSN about mail handled locally without going through the
    /// queue: "delivered" (RFC 3461 NOTIFY=SUCCESS), or "failed" for
    /// recipients refused after the message was accepted (a Sieve
    /// `ereject`, RFC 5429 §2.1.2), each with its `RcptStatus` reply.
    pub async fn notify_local(
        &self,
        hostname: &str,
        from: &str,
        env_id: Option<String>,
        rcpts: Vec<QueueRcpt>,
        raw: &[u8],
        action: dsn::Action,
    ) -> Result<()> {
        if from.is_empty() || rcpts.is_empty() {
            return Ok(());
        }
        let now = unix_now();
        let entry = QueueEntry {
            id: 0,
            from: from.to_string(),
            blob: String::new(),
            size: raw.len() as u64,
            created: now,
            next_attempt: now,
            attempts: 0,
            expires: now,
            env_id,
            ret_full: false,
            requiretls: false,
            smtputf8: false,
            delay_notified: false,
            recipients: rcpts.clone(),
            track: false,
        };
        let refs: Vec<(&QueueRcpt, dsn::Action)> = rcpts.iter().map(|r| (r, action)).collect();
        let body = dsn::build(hostname, &entry, &refs, raw, None);
        let mut to = QueueRcpt::new(from);
        to.notify = Notify::default();
        self.enqueue(NewMessage {
            from: String::new(),
            recipients: vec![to],
            raw: body,
            env_id: None,
            ret_full: false,
            requiretls: false,
            smtputf8: false,
            ..Default::default()
        })
        .await
        .map(|_| ())
    }

    /// Schedules an entry for now (`petrel queue retry`).
    pub async fn retry_now(&self, id: u64) -> Result<bool> {
        let q = self.clone();
        let found = self
            .store
            .transact(move |txn| {
                Ok(q.update_in_txn(txn, id, |e| {
                    e.next_attempt = unix_now();
                    true
                })?
                .is_some())
            })
            .await?;
        self.wake();
        Ok(found)
    }

    /// Removes an entry without delivering or bouncing it
    /// (`petrel queue cancel`).
    pub async fn cancel(&self, id: u64) -> Result<Option<QueueEntry>> {
        let q = self.clone();
        self.store
            .transact(move |txn| q.update_in_txn(txn, id, |_| false))
            .await
    }
}

/// Seconds to wait after attempt number `attempts` (1-based).
pub fn backoff(schedule: &[u64], attempts: u32) -> i64 {
    let i = (attempts.max(1) as usize - 1).min(schedule.len().saturating_sub(1));
    schedule.get(i).copied().unwrap_or(300) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_parsing() {
        assert_eq!(Notify::parse("NEVER"), Some(Notify::default()));
        let n = Notify::parse("success,Delay").unwrap();
        assert!(n.success && n.delay && !n.failure);
        assert_eq!(Notify::parse("SOMETIMES"), None);
    }

    #[cfg(feature = "rocksdb")]
    #[tokio::test]
    async fn schedule_reads_only_what_is_due() {
        use crate::store::{rocks::RocksBackend, KvBackend};
        let dir = tempfile::tempdir().unwrap();
        let b: Arc<dyn KvBackend> = Arc::new(RocksBackend::open(&dir.path().join("kv")).unwrap());
        let store = Store::new(b);
        let q = Queue::new(
            store.clone(),
            BlobStore::new(&dir.path().join("blobs"), 1024).unwrap(),
            3600,
            60,
        );
        let mut ids = Vec::new();
        for i in 0..3 {
            ids.push(
                q.enqueue(NewMessage {
                    from: "a@x.test".into(),
                    recipients: vec![QueueRcpt::new("b@y.test")],
                    raw: format!("Subject: {i}\r\n\r\nx\r\n").into_bytes(),
                    env_id: None,
                    ret_full: false,
                    requiretls: false,
                    smtputf8: false,
                    ..Default::default()
                })
                .await
                .unwrap(),
            );
        }
        let now = unix_now();
        // New entries carry their first attempt: due only after the retry delay.
        let (due, next) = q.due(now, 10).await.unwrap();
        assert!(due.is_empty());
        assert!(next.is_some_and(|t| t >= now + 59), "{next:?}");
        assert!(q.retry_now(ids[1]).await.unwrap());
        let (due, _) = q.due(unix_now(), 10).await.unwrap();
        assert_eq!(due, vec![ids[1]]);
        // A page limit reports more to come.
        for id in [ids[0], ids[2]] {
            q.retry_now(id).await.unwrap();
        }
        let (due, next) = q.due(unix_now(), 2).await.unwrap();
        assert_eq!(due.len(), 2);
        assert!(next.is_some_and(|t| t <= unix_now()));
        assert!(q.cancel(ids[0]).await.unwrap().is_some());
        assert_eq!(q.list().await.unwrap().len(), 2);
        store.close();
    }

    #[test]
    fn backoff_repeats_last() {
        let s = [60, 300, 900];
        assert_eq!(backoff(&s, 1), 60);
        assert_eq!(backoff(&s, 3), 900);
        assert_eq!(backoff(&s, 10), 900);
    }
}
