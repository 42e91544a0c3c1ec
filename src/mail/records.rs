//! Small per-account objects kept beside the mail for JMAP: uploaded
//! blobs, identities, email submissions, the vacation response. Each is
//! a JSON record under `W{acct}{kind}{id}`; a counter per account and
//! kind (`w{acct}{kind}`) gives new ids and moves on every change, so it
//! is also the kind's state string (RFC 8620 §1.6). Deleting an account
//! deletes its records and releases the blobs of its uploads.

use serde::{Deserialize, Serialize};

use super::{from_json, k_acct, to_json, MailStore, Result};
use crate::core::unix_now;
use crate::store::Txn;

/// What a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Upload = b'u' as isize,
    Identity = b'i' as isize,
    Submission = b's' as isize,
    Vacation = b'v' as isize,
    /// Senders the vacation response went to, and when.
    VacationSent = b'r' as isize,
    /// JMAP push subscriptions (RFC 8620 §7.2).
    PushSubscription = b'p' as isize,
    /// Changes of the account's rights in others' mailboxes
    /// (`acl::ShareNote`; JMAP ShareNotification, RFC 9670 §3).
    ShareNotification = b'n' as isize,
    /// Sieve scripts (`sieve::Script`), and the one record saying which
    /// is active.
    SieveScript = b'f' as isize,
    SieveActive = b'A' as isize,
    /// Ids Sieve's `duplicate` test saw, and until when (RFC 7352).
    SieveDuplicate = b'D' as isize,
}

fn k_rec(acct: u32, kind: Kind, id: u64) -> Vec<u8> {
    let mut k = k_acct(b'W', acct);
    k.push(kind as u8);
    k.extend_from_slice(&id.to_be_bytes());
    k
}

fn k_kind(acct: u32, kind: Kind) -> Vec<u8> {
    let mut k = k_acct(b'W', acct);
    k.push(kind as u8);
    k
}

fn k_ctr(acct: u32, kind: Kind) -> Vec<u8> {
    let mut k = k_acct(b'w', acct);
    k.push(kind as u8);
    k
}

/// The octets the account's uploads hold (RFC 8620 §6: their quota),
/// beside the record counters.
fn k_upload_bytes(acct: u32) -> Vec<u8> {
    let mut k = k_acct(b'w', acct);
    k.extend_from_slice(b"U-octets");
    k
}

/// The lowest upload id that may still exist: the oldest-first deletions
/// (expiry, the upload quota) start there instead of stepping over the
/// deleted ones again (each a tombstone a scan would read).
fn k_upload_floor(acct: u32) -> Vec<u8> {
    let mut k = k_acct(b'w', acct);
    k.extend_from_slice(b"U-floor");
    k
}

/// A counter's value (8 octets, big-endian; 0 when absent).
fn counter(v: Option<Vec<u8>>) -> u64 {
    v.and_then(|v| v.try_into().ok().map(u64::from_be_bytes))
        .unwrap_or(0)
}

/// A counter read inside a transaction.
fn counter_in(txn: &Txn<'_>, key: &[u8]) -> crate::store::Result<u64> {
    Ok(counter(txn.get(key)?))
}

fn add_upload_bytes(txn: &mut Txn<'_>, acct: u32, delta: i64) -> crate::store::Result<()> {
    let key = k_upload_bytes(acct);
    let n = counter_in(txn, &key)?.saturating_add_signed(delta);
    txn.put(key, n.to_be_bytes().to_vec());
    Ok(())
}

/// One entry of a kind's change log (identities and submissions: their
/// /changes, RFC 8620 §5.2), under the state it made.
fn k_log(acct: u32, kind: Kind, state: u64) -> Vec<u8> {
    let mut k = k_acct(b'w', acct);
    k.push(kind as u8);
    k.push(b'#');
    k.extend_from_slice(&state.to_be_bytes());
    k
}

pub use crate::store::changelog::Op;

/// The kinds whose changes are logged one by one.
fn logged(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Identity | Kind::Submission | Kind::ShareNotification
    )
}

/// Moves the kind's state and, for a logged kind, notes what changed.
fn bump_logged(
    txn: &mut Txn<'_>,
    acct: u32,
    kind: Kind,
    op: Op,
    id: Option<u64>,
) -> crate::store::Result<u64> {
    let n = bump(txn, acct, kind)?;
    if logged(kind) {
        txn.put(k_log(acct, kind, n), op.entry(id.unwrap_or(n)));
    }
    Ok(n)
}

fn bump(txn: &mut Txn<'_>, acct: u32, kind: Kind) -> crate::store::Result<u64> {
    let key = k_ctr(acct, kind);
    let n = counter_in(txn, &key)? + 1;
    txn.put(key, n.to_be_bytes().to_vec());
    Ok(n)
}

/// Stores a new record inside a transaction of its own writer (a grant
/// and the note telling the grantee); returns its id.
pub(crate) fn create_record_in(
    txn: &mut Txn<'_>,
    acct: u32,
    kind: Kind,
    value: Vec<u8>,
) -> crate::store::Result<u64> {
    let id = bump_logged(txn, acct, kind, Op::Created, None)?;
    txn.put(k_rec(acct, kind, id), value);
    Ok(id)
}

/// The submission (account, record id) that follows a queue entry.
fn k_queued(queue_id: u64) -> Vec<u8> {
    let mut k = b"c/submission-of-queue#".to_vec();
    k.extend_from_slice(&queue_id.to_be_bytes());
    k
}

/// The queue's progress hook: a step of the entry a submission follows
/// moves the account's submission state and logs the submission as
/// changed (its undoStatus and deliveryStatus are read from the queue).
/// The link goes with the entry's end.
pub(crate) fn submission_progressed(
    txn: &mut Txn<'_>,
    queue_id: u64,
    done: bool,
) -> crate::store::Result<()> {
    let key = k_queued(queue_id);
    let Some(v) = txn.get(&key)? else {
        return Ok(());
    };
    let (Some(acct), Some(id)) = (
        v.get(..4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_be_bytes),
        v.get(4..12)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes),
    ) else {
        return Ok(());
    };
    // A destroyed submission stays destroyed in its log.
    if txn.get(&k_rec(acct, Kind::Submission, id))?.is_some() {
        bump_logged(txn, acct, Kind::Submission, Op::Updated, Some(id))?;
    }
    if done {
        txn.delete(key);
    }
    Ok(())
}

/// An uploaded blob (RFC 8620 §6.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Upload {
    /// The content's id in the blob store.
    pub blob: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub size: u64,
    pub created: i64,
}

impl MailStore {
    /// The kind's state: the counter every change moves.
    pub async fn record_state(&self, acct: u32, kind: Kind) -> Result<u64> {
        Ok(counter(self.store.get(k_ctr(acct, kind)).await?))
    }

    /// What changed in a logged kind after state `since` up to `until`:
    /// (state, what, record id) in order. `None` when a change in between
    /// left no entry (made before changes were logged, or a clearing).
    pub async fn record_log(
        &self,
        acct: u32,
        kind: Kind,
        since: u64,
        until: u64,
    ) -> Result<Option<Vec<(u64, Op, u64)>>> {
        let key = |state| k_log(acct, kind, state);
        Ok(crate::store::changelog::read(&self.store, key, since, until).await?)
    }

    /// Every record of a kind, by id.
    pub async fn records<T: for<'a> Deserialize<'a>>(
        &self,
        acct: u32,
        kind: Kind,
    ) -> Result<Vec<(u64, T)>> {
        let prefix = k_kind(acct, kind);
        let mut out = Vec::new();
        for (k, v) in self.store.scan_prefix(prefix.clone()).await? {
            let Some(id) = k[prefix.len()..].try_into().ok().map(u64::from_be_bytes) else {
                continue;
            };
            out.push((id, from_json(&v)?));
        }
        Ok(out)
    }

    pub async fn record<T: for<'a> Deserialize<'a>>(
        &self,
        acct: u32,
        kind: Kind,
        id: u64,
    ) -> Result<Option<T>> {
        match self.store.get(k_rec(acct, kind, id)).await? {
            Some(v) => Ok(Some(from_json(&v)?)),
            None => Ok(None),
        }
    }

    /// Stores a new record; returns its id.
    pub async fn create_record<T: Serialize>(
        &self,
        acct: u32,
        kind: Kind,
        value: &T,
    ) -> Result<u64> {
        let v = to_json(value);
        Ok(self
            .store
            .transact(move |txn| create_record_in(txn, acct, kind, v.clone()))
            .await?)
    }

    /// Stores a record under a fixed id (a singleton such as the
    /// vacation response), created or replaced.
    pub async fn put_record<T: Serialize>(
        &self,
        acct: u32,
        kind: Kind,
        id: u64,
        value: &T,
    ) -> Result<()> {
        let v = to_json(value);
        Ok(self
            .store
            .transact(move |txn| {
                let key = k_rec(acct, kind, id);
                let op = match txn.get(&key)? {
                    Some(_) => Op::Updated,
                    None => Op::Created,
                };
                bump_logged(txn, acct, kind, op, Some(id))?;
                txn.put(key, v.clone());
                Ok(())
            })
            .await?)
    }

    /// Replaces an existing record; false if there is none.
    pub async fn update_record<T: Serialize>(
        &self,
        acct: u32,
        kind: Kind,
        id: u64,
        value: &T,
    ) -> Result<bool> {
        let v = to_json(value);
        Ok(self
            .store
            .transact(move |txn| {
                let key = k_rec(acct, kind, id);
                if txn.get(&key)?.is_none() {
                    return Ok(false);
                }
                bump_logged(txn, acct, kind, Op::Updated, Some(id))?;
                txn.put(key, v.clone());
                Ok(true)
            })
            .await?)
    }

    /// Stores a new EmailSubmission record that follows queue entry
    /// `queue_id`: from now on each step of the entry moves the
    /// submission state ([`submission_progressed`]).
    pub async fn create_submission<T: Serialize>(
        &self,
        acct: u32,
        value: &T,
        queue_id: u64,
    ) -> Result<u64> {
        let v = to_json(value);
        Ok(self
            .store
            .transact(move |txn| {
                let id = create_record_in(txn, acct, Kind::Submission, v.clone())?;
                let mut link = acct.to_be_bytes().to_vec();
                link.extend_from_slice(&id.to_be_bytes());
                txn.put(k_queued(queue_id), link);
                Ok(id)
            })
            .await?)
    }

    /// Deletes a record (not an upload: see [`MailStore::delete_upload`]);
    /// false if there is none.
    pub async fn delete_record(&self, acct: u32, kind: Kind, id: u64) -> Result<bool> {
        Ok(self
            .store
            .transact(move |txn| {
                let key = k_rec(acct, kind, id);
                if txn.get(&key)?.is_none() {
                    return Ok(false);
                }
                bump_logged(txn, acct, kind, Op::Destroyed, Some(id))?;
                txn.delete(key);
                Ok(true)
            })
            .await?)
    }

    /// Deletes every record of a kind (not uploads).
    pub async fn clear_records(&self, acct: u32, kind: Kind) -> Result<()> {
        Ok(self
            .store
            .transact(move |txn| {
                for (k, _) in txn.scan_prefix(&k_kind(acct, kind))? {
                    txn.delete(k);
                }
                bump(txn, acct, kind)?;
                Ok(())
            })
            .await?)
    }

    /// Stores an upload durably; returns its id.
    pub async fn put_upload(&self, acct: u32, kind: &str, data: Vec<u8>) -> Result<(u64, Upload)> {
        let (id, up, _) = self.put_upload_in_quota(acct, kind, data, u64::MAX).await?;
        Ok((id, up))
    }

    /// Stores an upload durably within `quota` octets of uploads: in the
    /// same transaction the account's oldest uploads go until it fits
    /// (RFC 8620 §6: unreferenced blobs in date order, oldest first).
    /// Returns its id and how many went. Ids grow with time, so the
    /// oldest is found by stepping up from the floor (the lowest id that
    /// may still exist) with point reads, never scanning the deleted.
    pub async fn put_upload_in_quota(
        &self,
        acct: u32,
        kind: &str,
        data: Vec<u8>,
        quota: u64,
    ) -> Result<(u64, Upload, usize)> {
        let data = std::sync::Arc::new(data);
        let blob = self.blobs.prepare(data.clone()).await?;
        let up = Upload {
            blob,
            kind: kind.to_string(),
            size: data.len() as u64,
            created: unix_now(),
        };
        let blobs = self.blobs.clone();
        let rec = up.clone();
        let (id, gone) = self
            .store
            .transact(move |txn| {
                let mut bytes = counter_in(txn, &k_upload_bytes(acct))?;
                let last = counter_in(txn, &k_ctr(acct, Kind::Upload))?;
                let mut floor = counter_in(txn, &k_upload_floor(acct))?;
                let mut gone = 0;
                while bytes.saturating_add(rec.size) > quota && floor <= last {
                    let key = k_rec(acct, Kind::Upload, floor);
                    if let Some(v) = txn.get(&key)? {
                        let old: Upload = from_json(&v)?;
                        blobs.release(txn, &old.blob)?;
                        bytes = bytes.saturating_sub(old.size);
                        txn.delete(key);
                        gone += 1;
                    }
                    floor += 1;
                }
                if gone > 0 {
                    txn.put(k_upload_floor(acct), floor.to_be_bytes().to_vec());
                    txn.put(k_upload_bytes(acct), bytes.to_be_bytes().to_vec());
                }
                let id = bump(txn, acct, Kind::Upload)?;
                add_upload_bytes(txn, acct, rec.size as i64)?;
                blobs.add_ref(txn, &rec.blob, &data)?;
                txn.put(k_rec(acct, Kind::Upload, id), to_json(&rec));
                Ok((id, gone))
            })
            .await?;
        Ok((id, up, gone))
    }

    /// An upload and its content.
    pub async fn upload(&self, acct: u32, id: u64) -> Result<Option<(Upload, Vec<u8>)>> {
        let Some(up) = self.record::<Upload>(acct, Kind::Upload, id).await? else {
            return Ok(None);
        };
        let data = self.blobs.get(&self.store, &up.blob).await?;
        Ok(data.map(|d| (up, d)))
    }

    /// Deletes an upload and releases its content.
    pub async fn delete_upload(&self, acct: u32, id: u64) -> Result<bool> {
        self.delete_upload_at(acct, id, false).await
    }

    /// Deletes an upload; `oldest`: it is the account's oldest, so the
    /// floor moves past it.
    async fn delete_upload_at(&self, acct: u32, id: u64, oldest: bool) -> Result<bool> {
        let blobs = self.blobs.clone();
        Ok(self
            .store
            .transact(move |txn| {
                if oldest {
                    txn.put(k_upload_floor(acct), (id + 1).to_be_bytes().to_vec());
                }
                let key = k_rec(acct, Kind::Upload, id);
                let Some(v) = txn.get(&key)? else {
                    return Ok(false);
                };
                let up: Upload = from_json(&v)?;
                blobs.release(txn, &up.blob)?;
                add_upload_bytes(txn, acct, -(up.size as i64))?;
                txn.delete(key);
                Ok(true)
            })
            .await?)
    }

    async fn upload_floor(&self, acct: u32) -> Result<u64> {
        Ok(counter(self.store.get(k_upload_floor(acct)).await?))
    }

    /// The octets the account's uploads hold.
    pub async fn upload_bytes(&self, acct: u32) -> Result<u64> {
        Ok(counter(self.store.get(k_upload_bytes(acct)).await?))
    }

    /// Deletes the account's uploads made before `before`; returns how
    /// many went.
    ///
    /// Ids grow with time, so the old uploads are the first ones: the
    /// read stops at the first young one instead of reading them all
    /// (it runs before every upload).
    pub async fn expire_uploads(&self, acct: u32, before: i64) -> Result<usize> {
        const BATCH: usize = 64;
        let prefix = k_kind(acct, Kind::Upload);
        let mut gone = 0;
        loop {
            let floor = self.upload_floor(acct).await?;
            let rows = self
                .store
                .scan(
                    k_rec(acct, Kind::Upload, floor),
                    k_rec(acct, Kind::Upload, u64::MAX),
                    BATCH,
                )
                .await?;
            let full = rows.len() == BATCH;
            for (k, v) in rows {
                let up: Upload = from_json(&v)?;
                if up.created >= before {
                    return Ok(gone);
                }
                if let Some(id) = k[prefix.len()..].try_into().ok().map(u64::from_be_bytes) {
                    self.delete_upload_at(acct, id, true).await?;
                    gone += 1;
                }
            }
            if !full {
                return Ok(gone);
            }
        }
    }
}

/// Inside the account's deletion: every record and upload goes.
pub(crate) fn delete_records_in(
    blobs: &crate::store::BlobStore,
    txn: &mut Txn<'_>,
    acct: u32,
) -> crate::store::Result<()> {
    for (k, v) in txn.scan_prefix(&k_kind(acct, Kind::Upload))? {
        let up: Upload = from_json(&v)?;
        blobs.release(txn, &up.blob)?;
        txn.delete(k);
    }
    for prefix in [k_acct(b'W', acct), k_acct(b'w', acct)] {
        for (k, _) in txn.scan_prefix(&prefix)? {
            txn.delete(k);
        }
    }
    Ok(())
}
