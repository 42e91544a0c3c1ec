//! The one way mail enters the store: SMTP/LMTP delivery today, IMAP APPEND,
//! JMAP import and migration later.
//!
//! Pipeline: parse once ([`mime::analyze`]) → hooks, in order (spam verdict,
//! Sieve and encryption at rest will be hooks; each may re-file the message
//! or add flags for its target) → make the blob durable → one transaction
//! that, for every target, checks quota, allocates email id, thread, UID and
//! MODSEQ, adds the blob reference and writes the change log. Either every
//! target gets the message or none does.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::mime::{self, Meta};
use super::{
    account_state, encode_uid_entry, from_json, k_acct, k_email, k_mbox, k_uid, log_change, now,
    to_json, Change, EmailMeta, EmailState, MailError, MailStore, Mailbox, Result,
};
use crate::store::{StoreError, Txn};

/// Where a message should go in an account.
#[derive(Debug, Clone, PartialEq)]
pub enum Folder {
    /// The mailbox with this special-use role ("inbox", "junk", ...).
    Role(String),
    Id(u32),
}

#[derive(Debug, Clone, PartialEq)]
pub struct IngestTarget {
    pub account: u32,
    pub folder: Folder,
    pub flags: Vec<String>,
    /// Quota limits of the account (0 = unlimited), from the directory.
    pub quota_bytes: u64,
    pub quota_messages: u64,
}

impl IngestTarget {
    pub fn inbox(account: u32) -> Self {
        IngestTarget {
            account,
            folder: Folder::Role("inbox".into()),
            flags: vec![],
            quota_bytes: 0,
            quota_messages: 0,
        }
    }
}

pub struct IngestRequest {
    pub raw: Vec<u8>,
    pub targets: Vec<IngestTarget>,
    /// Internal date; now when absent.
    pub received_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IngestOutcome {
    pub account: u32,
    pub mailbox: u32,
    pub uidvalidity: u32,
    pub uid: u32,
    pub email: u64,
    pub modseq: u64,
}

/// A stage of the pipeline that runs before storage, once per target.
pub trait IngestHook: Send + Sync {
    fn name(&self) -> &str;
    /// May change the target's folder or flags. An error refuses the
    /// message for every target (temporary failure at the protocol level).
    fn on_ingest(
        &self,
        raw: &[u8],
        meta: &Meta,
        target: &mut IngestTarget,
    ) -> std::result::Result<(), String>;
}

fn thread_key(acct: u32, message_id: &str) -> Vec<u8> {
    let mut k = k_acct(b'T', acct);
    k.extend_from_slice(&Sha256::digest(message_id.trim().as_bytes())[..16]);
    k
}

/// Subject without reply/forward prefixes, for thread matching.
pub fn base_subject(s: &str) -> String {
    let mut s = s.trim();
    loop {
        let lower = s.to_ascii_lowercase();
        let cut = ["re:", "fwd:", "fw:", "aw:", "sv:"]
            .iter()
            .find(|p| lower.starts_with(*p))
            .map(|p| p.len());
        match cut {
            Some(n) => s = s[n..].trim_start(),
            None => break,
        }
    }
    s.to_lowercase()
}

fn subject_tag(s: &str) -> [u8; 8] {
    Sha256::digest(base_subject(s).as_bytes())[..8]
        .try_into()
        .expect("8 bytes")
}

/// Finds the thread of a message from Message-ID, In-Reply-To and References
/// whose thread has the same base subject; otherwise starts a new thread.
fn assign_thread(
    txn: &mut Txn<'_>,
    acct: u32,
    meta: &Meta,
    next_thread: &mut u64,
) -> std::result::Result<u64, StoreError> {
    let tag = subject_tag(&meta.subject);
    let mut found = None;
    let ids = meta.message_id.iter().chain(meta.references.iter());
    for id in ids.clone() {
        if let Some(v) = txn.get(&thread_key(acct, id))? {
            if v.len() == 16 && v[8..16] == tag {
                found = Some(u64::from_be_bytes(v[0..8].try_into().expect("8 bytes")));
                break;
            }
        }
    }
    let thread = match found {
        Some(t) => t,
        None => {
            *next_thread += 1;
            *next_thread
        }
    };
    let mut val = thread.to_be_bytes().to_vec();
    val.extend_from_slice(&tag);
    for id in ids {
        let k = thread_key(acct, id);
        if txn.get(&k)?.is_none() {
            txn.put(k, val.clone());
        }
    }
    Ok(thread)
}

fn find_mailbox(
    txn: &mut Txn<'_>,
    acct: u32,
    folder: &Folder,
) -> std::result::Result<Option<Mailbox>, StoreError> {
    match folder {
        Folder::Id(id) => txn
            .get(&k_mbox(acct, *id))?
            .map(|v| from_json(&v))
            .transpose(),
        Folder::Role(role) => {
            for (_, v) in txn.scan_prefix(&k_acct(b'M', acct))? {
                let m: Mailbox = from_json(&v)?;
                if m.role.as_deref() == Some(role.as_str()) {
                    return Ok(Some(m));
                }
            }
            // A missing role (e.g. Junk deleted by the user) falls back to
            // the inbox rather than losing the message.
            if role != "inbox" {
                return find_mailbox(txn, acct, &Folder::Role("inbox".into()));
            }
            Ok(None)
        }
    }
}

impl MailStore {
    /// Stores a message for every target atomically; see the module docs.
    pub async fn ingest(&self, req: IngestRequest) -> Result<Vec<IngestOutcome>> {
        let IngestRequest {
            raw,
            targets,
            received_at,
        } = req;
        let (raw, meta) = tokio::task::spawn_blocking(move || {
            let meta = mime::analyze(&raw);
            // RFC 3516 §6: binary parts are kept in base64.
            match super::binary::encode_binary_parts(&raw, &meta.root) {
                Some(encoded) => {
                    let meta = mime::analyze(&encoded);
                    (Arc::new(encoded), meta)
                }
                None => (Arc::new(raw), meta),
            }
        })
        .await
        .map_err(|e| MailError::Invalid(e.to_string()))?;
        let mut targets = targets;
        for t in targets.iter_mut() {
            for h in self.hooks() {
                h.on_ingest(&raw, &meta, t)
                    .map_err(|e| MailError::Invalid(format!("{}: {e}", h.name())))?;
            }
        }
        let blob_id = self.blobs.prepare(raw.clone()).await?;
        let received_at = received_at.unwrap_or_else(now);
        let size = raw.len() as u64;
        let blobs = self.blobs.clone();
        let over_quota = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let oq = over_quota.clone();
        let res = self
            .store
            .transact(move |txn| {
                let mut out = Vec::with_capacity(targets.len());
                for t in &targets {
                    let acct = t.account;
                    let mut st = account_state(txn, acct)?;
                    if (t.quota_bytes > 0 && st.used_bytes + size > t.quota_bytes)
                        || (t.quota_messages > 0 && st.messages + 1 > t.quota_messages)
                    {
                        oq.store(true, std::sync::atomic::Ordering::Relaxed);
                        return Err(StoreError::Aborted("over quota".into()));
                    }
                    let mut mb = find_mailbox(txn, acct, &t.folder)?
                        .ok_or_else(|| StoreError::Aborted("no such mailbox".into()))?;
                    st.next_email += 1;
                    let email = st.next_email;
                    let thread = assign_thread(txn, acct, &meta, &mut st.next_thread)?;
                    let uid = mb.uidnext;
                    mb.uidnext += 1;
                    let change = Change {
                        created: vec![email],
                        updated: vec![],
                        destroyed: vec![],
                        mailboxes: vec![mb.id],
                        ..Default::default()
                    };
                    let modseq = log_change(txn, acct, &mut st, &change);
                    mb.highest_modseq = modseq;
                    st.used_bytes += size;
                    st.messages += 1;
                    blobs.add_ref(txn, &blob_id, &raw)?;
                    let em = EmailMeta {
                        blob: blob_id.clone(),
                        size,
                        received_at,
                        thread,
                        meta: meta.clone(),
                    };
                    txn.put(k_email(b'E', acct, email), to_json(&em));
                    txn.put(k_email(b'J', acct, email), super::FTS_ADD.to_vec());
                    let es = EmailState {
                        keywords: t.flags.clone(),
                        mailboxes: vec![(mb.id, uid)],
                        modseq,
                    };
                    txn.put(k_email(b'F', acct, email), to_json(&es));
                    txn.put(
                        k_uid(acct, mb.id, uid),
                        encode_uid_entry(email, modseq, &t.flags, Some(now())),
                    );
                    txn.put(k_mbox(acct, mb.id), to_json(&mb));
                    txn.put(k_acct(b'K', acct), to_json(&st));
                    out.push(IngestOutcome {
                        account: acct,
                        mailbox: mb.id,
                        uidvalidity: mb.uidvalidity,
                        uid,
                        email,
                        modseq,
                    });
                }
                Ok(out)
            })
            .await;
        match res {
            Ok(v) => {
                for o in &v {
                    self.note_arrival(o.account, o.mailbox, o.uid);
                    self.notify(o.account);
                }
                Ok(v)
            }
            Err(_) if over_quota.load(std::sync::atomic::Ordering::Relaxed) => {
                Err(MailError::OverQuota)
            }
            Err(StoreError::Aborted(m)) => Err(MailError::NotFound(m)),
            Err(e) => Err(e.into()),
        }
    }
}
