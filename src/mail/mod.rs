//! The mail store: one model serving IMAP now and JMAP later.
//!
//! Key layout (account and mailbox ids big-endian, so scans come in order):
//!
//! | key                         | value                                   |
//! |-----------------------------|-----------------------------------------|
//! | `K` acct                    | [`AccountState`]: counters, quota usage |
//! | `M` acct mbox               | [`Mailbox`]                             |
//! | `E` acct email              | [`EmailMeta`] (immutable)               |
//! | `F` acct email              | [`EmailState`]: keywords, memberships   |
//! | `U` acct mbox uid           | [`UidEntry`]: email id, modseq, flags   |
//! | `C` acct state              | [`Change`] record of the change log     |
//! | `T` acct sha(message-id)    | thread id                               |
//! | `J` acct email              | pending full-text index change ([`fts`])|
//! | `S` grantee owner mbox      | rights granted ([`acl`]; 0 = anyone)     |
//! | `Z` acct name               | subscription to a shared mailbox name   |
//!
//! The account's change counter (`AccountState::state`) is both the JMAP
//! state and the IMAP MODSEQ source, so /changes and CONDSTORE/QRESYNC are
//! served from the same record.

pub mod acl;
pub mod binary;
pub mod collate;
pub mod facts;
pub mod fts;
pub mod ingest;
pub mod junk;
pub mod mailbox;
pub mod mime;
pub mod recent;
pub mod records;

#[cfg(all(test, feature = "rocksdb"))]
mod tests;

use serde::{Deserialize, Serialize};

use crate::store::{BlobStore, Store, StoreError, Txn};

pub use ingest::{Folder, IngestHook, IngestOutcome, IngestRequest, IngestTarget};

pub const DEFAULT_MAILBOXES: &[(&str, Option<&str>)] = &[
    ("INBOX", Some("inbox")),
    ("Drafts", Some("drafts")),
    ("Sent", Some("sent")),
    ("Junk", Some("junk")),
    ("Trash", Some("trash")),
    ("Archive", Some("archive")),
];

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AccountState {
    pub next_mailbox: u32,
    pub next_email: u64,
    pub next_thread: u64,
    /// Change counter: JMAP state and IMAP MODSEQ.
    pub state: u64,
    pub used_bytes: u64,
    pub messages: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mailbox {
    pub id: u32,
    /// Full name, `/` as hierarchy separator; "INBOX" for the inbox.
    pub name: String,
    pub role: Option<String>,
    pub uidvalidity: u32,
    pub uidnext: u32,
    pub highest_modseq: u64,
    pub subscribed: bool,
    /// Who else may do what here (RFC 4314).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acl: Vec<acl::Grant>,
    /// Where a client lists it among its siblings (JMAP sortOrder).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub sort_order: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmailMeta {
    pub blob: String,
    pub size: u64,
    pub received_at: i64,
    pub thread: u64,
    pub meta: mime::Meta,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EmailState {
    pub keywords: Vec<String>,
    /// (mailbox id, uid) of every mailbox holding the message.
    pub mailboxes: Vec<(u32, u32)>,
    pub modseq: u64,
}

/// One message as seen in one mailbox.
#[derive(Debug, Clone, PartialEq)]
pub struct UidEntry {
    pub uid: u32,
    pub email: u64,
    pub modseq: u64,
    pub flags: Vec<String>,
    /// When the message was saved in this mailbox (RFC 8514); `None` for
    /// entries written before save dates were kept.
    pub saved: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub created: Vec<u64>,
    pub updated: Vec<u64>,
    pub destroyed: Vec<u64>,
    /// Mailboxes touched: their messages, counts or attributes changed.
    pub mailboxes: Vec<u32>,
    /// Mailboxes created and deleted by this change (JMAP Mailbox/changes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mailboxes_created: Vec<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mailboxes_destroyed: Vec<u32>,
    /// The Threads of `destroyed`, in the same order (JMAP Thread/changes;
    /// records written before it was kept have none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub threads: Vec<u64>,
}

impl Change {
    /// Each destroyed message with its Thread; `None` for a record
    /// written before Threads were kept with destructions.
    pub fn destroyed_threads(&self) -> Option<impl Iterator<Item = (u64, u64)> + '_> {
        (self.threads.len() == self.destroyed.len() && !self.threads.contains(&0)).then(|| {
            self.destroyed
                .iter()
                .copied()
                .zip(self.threads.iter().copied())
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("over quota")]
    OverQuota,
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type Result<T> = std::result::Result<T, MailError>;

pub(crate) fn k_acct(prefix: u8, acct: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(24);
    k.push(prefix);
    k.extend_from_slice(&acct.to_be_bytes());
    k
}

pub(crate) fn k_mbox(acct: u32, mbox: u32) -> Vec<u8> {
    let mut k = k_acct(b'M', acct);
    k.extend_from_slice(&mbox.to_be_bytes());
    k
}

/// An annotation entry of a mailbox (0: the account's).
pub(crate) fn k_annotation(acct: u32, mbox: u32, entry: &str) -> Vec<u8> {
    let mut k = k_acct(b'N', acct);
    k.extend_from_slice(&mbox.to_be_bytes());
    k.extend_from_slice(entry.as_bytes());
    k
}

/// Another account's /private annotation entries on a mailbox shared
/// with it (RFC 5464 §3.3): `P` reader owner mailbox entry. The owner's
/// own /private entries and everyone's /shared ones are under `N`.
fn k_private_annotation(reader: u32, owner: u32, mbox: u32, entry: &str) -> Vec<u8> {
    let mut k = k_acct(b'P', reader);
    k.extend_from_slice(&owner.to_be_bytes());
    k.extend_from_slice(&mbox.to_be_bytes());
    k.extend_from_slice(entry.as_bytes());
    k
}

/// Where an entry `reader` sets on `owner`'s mailbox is kept.
fn annotation_key(reader: u32, owner: u32, mbox: u32, entry: &str) -> Vec<u8> {
    if reader == owner || !is_private_entry(entry) {
        k_annotation(owner, mbox, entry)
    } else {
        k_private_annotation(reader, owner, mbox, entry)
    }
}

fn is_private_entry(entry: &str) -> bool {
    entry
        .get(..9)
        .is_some_and(|p| p.eq_ignore_ascii_case("/private/"))
}

/// The `P` keys of any reader on `owner`'s mailboxes (all of them, or
/// one), found with a scan over every such key.
pub(crate) fn private_annotations_on(
    txn: &mut Txn<'_>,
    owner: u32,
    mbox: Option<u32>,
) -> std::result::Result<Vec<Vec<u8>>, StoreError> {
    Ok(txn
        .scan_prefix(b"P")?
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| {
            k.get(5..9) == Some(&owner.to_be_bytes()[..])
                && mbox.is_none_or(|m| k.get(9..13) == Some(&m.to_be_bytes()[..]))
        })
        .collect())
}

pub(crate) fn k_email(prefix: u8, acct: u32, email: u64) -> Vec<u8> {
    let mut k = k_acct(prefix, acct);
    k.extend_from_slice(&email.to_be_bytes());
    k
}

/// Values of `J` records: what the indexer must do.
pub(crate) const FTS_ADD: &[u8] = b"i";
pub(crate) const FTS_REMOVE: &[u8] = b"d";
pub(crate) const FTS_DROP_ACCOUNT: &[u8] = b"a";

pub(crate) fn k_uid(acct: u32, mbox: u32, uid: u32) -> Vec<u8> {
    let mut k = k_acct(b'U', acct);
    k.extend_from_slice(&mbox.to_be_bytes());
    k.extend_from_slice(&uid.to_be_bytes());
    k
}

pub(crate) fn to_json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("records serialise")
}

pub(crate) fn from_json<T: for<'a> Deserialize<'a>>(
    v: &[u8],
) -> std::result::Result<T, StoreError> {
    serde_json::from_slice(v).map_err(|e| StoreError::Backend(format!("corrupt record: {e}")))
}

/// email, modseq, flags separated by spaces, then NUL and the save date
/// (flags never contain NUL; older entries end after the flags).
pub(crate) fn encode_uid_entry(
    email: u64,
    modseq: u64,
    flags: &[String],
    saved: Option<i64>,
) -> Vec<u8> {
    let mut v = Vec::with_capacity(25 + flags.len() * 8);
    v.extend_from_slice(&email.to_be_bytes());
    v.extend_from_slice(&modseq.to_be_bytes());
    v.extend_from_slice(flags.join(" ").as_bytes());
    if let Some(t) = saved {
        v.push(0);
        v.extend_from_slice(&t.to_be_bytes());
    }
    v
}

fn decode_uid_entry(key: &[u8], v: &[u8]) -> Option<UidEntry> {
    let uid = u32::from_be_bytes(key.get(key.len() - 4..)?.try_into().ok()?);
    let email = u64::from_be_bytes(v.get(0..8)?.try_into().ok()?);
    let modseq = u64::from_be_bytes(v.get(8..16)?.try_into().ok()?);
    let rest = v.get(16..)?;
    let (flags, saved) = match rest.iter().position(|&b| b == 0) {
        Some(i) => (
            &rest[..i],
            Some(i64::from_be_bytes(rest.get(i + 1..i + 9)?.try_into().ok()?)),
        ),
        None => (rest, None),
    };
    let flags = std::str::from_utf8(flags)
        .ok()?
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    Some(UidEntry {
        uid,
        email,
        modseq,
        flags,
        saved,
    })
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Reads the account state in a transaction, creating the account's
/// mailboxes on first use.
pub(crate) fn account_state(
    txn: &mut Txn<'_>,
    acct: u32,
) -> std::result::Result<AccountState, StoreError> {
    let key = k_acct(b'K', acct);
    if let Some(v) = txn.get(&key)? {
        return from_json(&v);
    }
    let mut st = AccountState::default();
    let base = now() as u32;
    for (name, role) in DEFAULT_MAILBOXES {
        st.next_mailbox += 1;
        let mb = Mailbox {
            id: st.next_mailbox,
            name: name.to_string(),
            role: role.map(String::from),
            uidvalidity: base.wrapping_add(st.next_mailbox),
            uidnext: 1,
            highest_modseq: 0,
            subscribed: true,
            sort_order: 0,
            acl: Vec::new(),
        };
        txn.put(k_mbox(acct, mb.id), to_json(&mb));
    }
    txn.put(key, to_json(&st));
    Ok(st)
}

/// Bumps the account's change counter and records what changed.
pub(crate) fn log_change(
    txn: &mut Txn<'_>,
    acct: u32,
    st: &mut AccountState,
    change: &Change,
) -> u64 {
    // Changes start at 2: IMAP reports an untouched mailbox's
    // HIGHESTMODSEQ as 1 (RFC 7162 wants it non-zero), which must stay
    // below every real change.
    st.state = st.state.max(1) + 1;
    let mut k = k_acct(b'C', acct);
    k.extend_from_slice(&st.state.to_be_bytes());
    txn.put(k, to_json(change));
    st.state
}

/// Logs `change` as one change of `mbox`: the mailbox's HIGHESTMODSEQ
/// becomes its mod-sequence; the account state is written back.
pub(crate) fn log_mailbox_change(
    txn: &mut Txn<'_>,
    acct: u32,
    st: &mut AccountState,
    change: &Change,
    mbox: u32,
) -> std::result::Result<u64, StoreError> {
    let modseq = log_change(txn, acct, st, change);
    if let Some(v) = txn.get(&k_mbox(acct, mbox))? {
        let mut m: Mailbox = from_json(&v)?;
        m.highest_modseq = modseq;
        txn.put(k_mbox(acct, mbox), to_json(&m));
    }
    txn.put(k_acct(b'K', acct), to_json(&*st));
    Ok(modseq)
}

/// How a STORE changes flags (RFC 9051 §6.4.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagOp {
    Set,
    Add,
    Remove,
}

#[derive(Clone)]
pub struct MailStore {
    pub store: Store,
    pub blobs: BlobStore,
    hooks: std::sync::Arc<Vec<std::sync::Arc<dyn IngestHook>>>,
    /// Account ids whose mail changed; IMAP IDLE (and later JMAP push)
    /// listen here.
    changes: tokio::sync::broadcast::Sender<u32>,
    /// Mailbox listings shared by the sessions that look at the same
    /// state, keyed by (account, mailbox) and tagged with the
    /// (highest modseq, UIDNEXT) they were read at.
    views: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<(u32, u32), SharedView>>>,
    /// The full-text index, when enabled, and the indexer's wake-up.
    pub(crate) fts: Option<std::sync::Arc<fts::FtsIndex>>,
    pub(crate) fts_wake: std::sync::Arc<tokio::sync::Notify>,
    /// Counts changes of mail (every notification), for the indexer's
    /// pace: it yields to bulk arrivals.
    pub(crate) activity: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Counts changes to grants (made, inherited by a new mailbox,
    /// changed or removed, shared mailboxes or accounts deleted), so that
    /// sessions holding rights re-check them only when it moved.
    acl_version: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// What is shared with each account ([`MailStore::shared_with`]), as
    /// read at an `acl_version`.
    shares: std::sync::Arc<std::sync::Mutex<SharesByAccount>>,
    /// \Recent marks (see [`recent`]).
    recent: std::sync::Arc<recent::RecentMarks>,
    /// Message facts read once (see [`facts`]).
    facts: std::sync::Arc<facts::FactsCache>,
    /// Users' junk changes, for the spam filter (see [`junk`]).
    pub(crate) junk: junk::JunkMarker,
}

/// Account → (the ACL version they were read at, what is shared with it).
type SharesByAccount = std::collections::HashMap<u32, (u64, Vec<acl::Shared>)>;

/// A mailbox listing as many sessions hold it: read once, shared.
pub type View = std::sync::Arc<Vec<UidEntry>>;

struct SharedView {
    at: (u64, u32),
    view: View,
}

impl MailStore {
    pub fn new(store: Store, blobs: BlobStore) -> Self {
        MailStore {
            store,
            blobs,
            hooks: Default::default(),
            changes: tokio::sync::broadcast::channel(1024).0,
            views: Default::default(),
            fts: None,
            fts_wake: Default::default(),
            activity: Default::default(),
            acl_version: Default::default(),
            shares: Default::default(),
            recent: Default::default(),
            facts: std::sync::Arc::new(facts::FactsCache::new(1_000_000)),
            junk: Default::default(),
        }
    }

    /// How many messages' facts to keep in memory, over all accounts
    /// (`jmap.facts-cache-messages`; 0 keeps none).
    pub fn set_facts_limit(&self, messages: usize) {
        self.facts.set_limit(messages);
    }

    /// See the field: what sessions compare to the version they read
    /// their rights at.
    pub fn acl_version(&self) -> u64 {
        self.acl_version.load(std::sync::atomic::Ordering::Acquire)
    }

    pub(crate) fn acl_changed(&self) {
        self.acl_version
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    /// Serves SEARCH's text keys from `index` (see [`fts`]); the indexer
    /// task must run ([`MailStore::spawn_indexer`]).
    pub fn with_fts(mut self, index: std::sync::Arc<fts::FtsIndex>) -> Self {
        self.fts = Some(index);
        self
    }

    /// Change notifications: the id of every account whose mail changed.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<u32> {
        self.changes.subscribe()
    }

    pub(crate) fn notify(&self, acct: u32) {
        let _ = self.changes.send(acct);
        self.activity
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.fts_wake.notify_one();
    }

    pub fn with_hooks(mut self, hooks: Vec<std::sync::Arc<dyn IngestHook>>) -> Self {
        self.hooks = std::sync::Arc::new(hooks);
        self
    }

    pub(crate) fn hooks(&self) -> &[std::sync::Arc<dyn IngestHook>] {
        &self.hooks
    }

    /// Makes sure the account's state and default mailboxes exist.
    pub async fn init_account(&self, acct: u32) -> Result<()> {
        self.store
            .transact(move |txn| account_state(txn, acct).map(|_| ()))
            .await?;
        Ok(())
    }

    pub async fn account_usage(&self, acct: u32) -> Result<AccountState> {
        match self.store.get(k_acct(b'K', acct)).await? {
            Some(v) => Ok(from_json(&v)?),
            None => Ok(AccountState::default()),
        }
    }

    pub async fn mailboxes(&self, acct: u32) -> Result<Vec<Mailbox>> {
        let rows = self.store.scan_prefix(k_acct(b'M', acct)).await?;
        if rows.is_empty() {
            self.init_account(acct).await?;
            return Box::pin(self.mailboxes(acct)).await;
        }
        rows.iter()
            .map(|(_, v)| from_json(v).map_err(Into::into))
            .collect()
    }

    pub async fn mailbox_by_name(&self, acct: u32, name: &str) -> Result<Option<Mailbox>> {
        let name = if name.eq_ignore_ascii_case("INBOX") {
            "INBOX"
        } else {
            name
        };
        Ok(self
            .mailboxes(acct)
            .await?
            .into_iter()
            .find(|m| m.name == name))
    }

    pub async fn mailbox(&self, acct: u32, id: u32) -> Result<Option<Mailbox>> {
        match self.store.get(k_mbox(acct, id)).await? {
            Some(v) => Ok(Some(from_json(&v)?)),
            None => Ok(None),
        }
    }

    /// The messages of a mailbox in UID order.
    pub async fn uids(&self, acct: u32, mbox: u32) -> Result<Vec<UidEntry>> {
        let mut prefix = k_acct(b'U', acct);
        prefix.extend_from_slice(&mbox.to_be_bytes());
        let rows = self.store.scan_prefix(prefix).await?;
        Ok(rows
            .iter()
            .filter_map(|(k, v)| decode_uid_entry(k, v))
            .collect())
    }

    /// The messages of a mailbox as a shared, read-only listing: sessions
    /// on the same mailbox state get the same one, so a thousand idle
    /// sessions on a large mailbox hold one copy. The mailbox record is
    /// read before the listing, so a listing is never older than its tag.
    pub async fn view(&self, acct: u32, mbox: &Mailbox) -> Result<View> {
        let at = (mbox.highest_modseq, mbox.uidnext);
        if let Some(v) = self.views.lock().expect("lock").get(&(acct, mbox.id)) {
            if v.at == at {
                return Ok(v.view.clone());
            }
        }
        let view: View = std::sync::Arc::new(self.uids(acct, mbox.id).await?);
        let mut views = self.views.lock().expect("lock");
        if views.len() > 10_000 {
            views.clear();
        }
        views.insert(
            (acct, mbox.id),
            SharedView {
                at,
                view: view.clone(),
            },
        );
        Ok(view)
    }

    /// Up to `limit` change records after state `since`, oldest first,
    /// with the state each one made (JMAP /changes, RFC 8620 §5.2).
    pub async fn changes_since(
        &self,
        acct: u32,
        since: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Change)>> {
        let mut from = k_acct(b'C', acct);
        from.extend_from_slice(&since.saturating_add(1).to_be_bytes());
        let mut to = k_acct(b'C', acct);
        to.extend_from_slice(&[0xff; 9]);
        let rows = self.store.scan(from, to, limit).await?;
        rows.iter()
            .map(|(k, v)| {
                let mut state = [0u8; 8];
                state.copy_from_slice(&k[k.len() - 8..]);
                Ok((u64::from_be_bytes(state), from_json(v)?))
            })
            .collect()
    }

    /// The Threads of the messages destroyed after state `since`:
    /// message → Thread. `None` if a record from before Threads were
    /// logged with destructions is among them.
    pub async fn destroyed_threads(
        &self,
        acct: u32,
        since: u64,
    ) -> Result<Option<std::collections::HashMap<u64, u64>>> {
        let mut out = std::collections::HashMap::new();
        let mut from = since;
        loop {
            let batch = self.changes_since(acct, from, 1000).await?;
            let Some((last, _)) = batch.last() else {
                return Ok(Some(out));
            };
            from = *last;
            for (_, c) in &batch {
                let Some(pairs) = c.destroyed_threads() else {
                    return Ok(None);
                };
                out.extend(pairs);
            }
        }
    }

    /// The message's keywords and the mailboxes that hold it.
    pub async fn email_state(&self, acct: u32, email: u64) -> Result<Option<EmailState>> {
        match self.store.get(k_email(b'F', acct, email)).await? {
            Some(v) => Ok(Some(from_json(&v)?)),
            None => Ok(None),
        }
    }

    pub async fn email_meta(&self, acct: u32, email: u64) -> Result<Option<EmailMeta>> {
        match self.store.get(k_email(b'E', acct, email)).await? {
            Some(v) => Ok(Some(from_json(&v)?)),
            None => Ok(None),
        }
    }

    /// Annotations (IMAP METADATA, RFC 5464) of a mailbox, or of the
    /// account with `mbox = 0`, as `reader` sees them: the /shared
    /// entries and the reader's own /private ones; (entry, value) in name
    /// order.
    pub async fn annotations(
        &self,
        reader: u32,
        owner: u32,
        mbox: u32,
    ) -> Result<Vec<(String, String)>> {
        let text = |rows: Vec<(Vec<u8>, Vec<u8>)>, skip: usize| {
            rows.into_iter()
                .map(move |(k, v)| {
                    (
                        String::from_utf8_lossy(&k[skip..]).into_owned(),
                        String::from_utf8_lossy(&v).into_owned(),
                    )
                })
                .collect::<Vec<_>>()
        };
        let prefix = k_annotation(owner, mbox, "");
        let skip = prefix.len();
        let mut out = text(self.store.scan_prefix(prefix).await?, skip);
        if reader != owner {
            out.retain(|(k, _)| !is_private_entry(k));
            let prefix = k_private_annotation(reader, owner, mbox, "");
            let skip = prefix.len();
            out.extend(text(self.store.scan_prefix(prefix).await?, skip));
            out.sort();
        }
        Ok(out)
    }

    /// Sets (or with `None` removes) annotations `reader` writes on
    /// `owner`'s mailbox, all or none; refused past `max_entries` per
    /// mailbox and place (RFC 5464 §4.3 TOOMANY).
    pub async fn set_annotations(
        &self,
        reader: u32,
        owner: u32,
        mbox: u32,
        entries: Vec<(String, Option<String>)>,
        max_entries: usize,
    ) -> Result<()> {
        self.store
            .transact(move |txn| {
                if mbox != 0 && txn.get(&k_mbox(owner, mbox))?.is_none() {
                    return Err(StoreError::Aborted("no such mailbox".into()));
                }
                for (name, value) in entries {
                    let k = annotation_key(reader, owner, mbox, &name);
                    match value {
                        Some(v) => txn.put(k, v.into_bytes()),
                        None => txn.delete(k),
                    }
                }
                let mut places = vec![k_annotation(owner, mbox, "")];
                if reader != owner {
                    places.push(k_private_annotation(reader, owner, mbox, ""));
                }
                for p in places {
                    if txn.scan_prefix(&p)?.len() > max_entries {
                        return Err(StoreError::Aborted("too many annotations".into()));
                    }
                }
                // RFC 7162 §3.2: a changed mailbox annotation raises the
                // mailbox's mod-sequence.
                if mbox != 0 {
                    let mut st = account_state(txn, owner)?;
                    let change = Change {
                        created: vec![],
                        updated: vec![],
                        destroyed: vec![],
                        mailboxes: vec![mbox],
                        ..Default::default()
                    };
                    log_mailbox_change(txn, owner, &mut st, &change, mbox)?;
                }
                Ok(())
            })
            .await
            .map_err(|e| match e {
                StoreError::Aborted(m) => MailError::Invalid(m),
                other => MailError::Store(other),
            })?;
        // Sessions watching annotations (NOTIFY) look again.
        self.notify(owner);
        if reader != owner {
            self.notify(reader);
        }
        Ok(())
    }

    /// Metadata of many messages with one range read instead of a read
    /// each (FETCH over a whole mailbox).
    pub async fn email_metas(
        &self,
        acct: u32,
        emails: &[u64],
    ) -> Result<std::collections::HashMap<u64, EmailMeta>> {
        let (Some(&lo), Some(&hi)) = (emails.iter().min(), emails.iter().max()) else {
            return Ok(Default::default());
        };
        let wanted: std::collections::HashSet<u64> = emails.iter().copied().collect();
        let rows = self
            .store
            .scan(
                k_email(b'E', acct, lo),
                k_email(b'E', acct, hi.saturating_add(1)),
                usize::MAX,
            )
            .await?;
        let mut out = std::collections::HashMap::with_capacity(wanted.len());
        for (k, v) in rows {
            let Some(id) = k
                .len()
                .checked_sub(8)
                .and_then(|at| k[at..].try_into().ok())
                .map(u64::from_be_bytes)
            else {
                continue;
            };
            if wanted.contains(&id) {
                out.insert(id, from_json(&v)?);
            }
        }
        Ok(out)
    }

    /// The message's content, or `None` when the message was destroyed
    /// between reading its metadata and its blob (another session
    /// expunged it). A blob missing under a live message is an error.
    pub async fn email_raw_live(
        &self,
        acct: u32,
        email: u64,
        meta: &EmailMeta,
    ) -> Result<Option<Vec<u8>>> {
        if let Some(raw) = self.blobs.get(&self.store, &meta.blob).await? {
            return Ok(Some(raw));
        }
        match self.email_meta(acct, email).await? {
            None => Ok(None),
            Some(_) => Err(MailError::NotFound(format!(
                "blob {} is missing",
                meta.blob
            ))),
        }
    }

    pub async fn email_raw(&self, meta: &EmailMeta) -> Result<Vec<u8>> {
        self.blobs
            .get(&self.store, &meta.blob)
            .await?
            .ok_or_else(|| MailError::NotFound(format!("blob {} is missing", meta.blob)))
    }

    /// Changes flags of messages `uids` in a mailbox. Returns the new
    /// (uid, flags, modseq) of every message whose flags changed, and the
    /// UIDs left alone because their mod-sequence is above
    /// `unchanged_since` (RFC 7162 §3.1.3, checked in the same
    /// transaction).
    pub async fn store_flags(
        &self,
        acct: u32,
        mbox: u32,
        uids: Vec<u32>,
        op: FlagOp,
        flags: Vec<String>,
        unchanged_since: Option<u64>,
    ) -> Result<(Vec<(u32, Vec<String>, u64)>, Vec<u32>)> {
        let junk = self.junk.clone();
        let out = self
            .store
            .transact(move |txn| {
                let mut st = account_state(txn, acct)?;
                let mut changed = Vec::new();
                let mut modified = Vec::new();
                let mut emails = Vec::new();
                let mut touched_mailboxes = vec![mbox];
                for uid in uids {
                    let ukey = k_uid(acct, mbox, uid);
                    let Some(v) = txn.get(&ukey)? else {
                        continue;
                    };
                    if let (Some(limit), Some(e)) = (unchanged_since, decode_uid_entry(&ukey, &v)) {
                        if e.modseq > limit {
                            modified.push(uid);
                            continue;
                        }
                    }
                    let email = u64::from_be_bytes(v[0..8].try_into().expect("8 bytes"));
                    let fkey = k_email(b'F', acct, email);
                    let es: EmailState = match txn.get(&fkey)? {
                        Some(v) => from_json(&v)?,
                        None => continue,
                    };
                    let mut new = es.keywords.clone();
                    match op {
                        FlagOp::Set => new = flags.clone(),
                        FlagOp::Add => {
                            for f in &flags {
                                if !new.iter().any(|x| x.eq_ignore_ascii_case(f)) {
                                    new.push(f.clone());
                                }
                            }
                        }
                        FlagOp::Remove => {
                            new.retain(|x| !flags.iter().any(|f| f.eq_ignore_ascii_case(x)))
                        }
                    }
                    dedup_flags(&mut new);
                    if sorted(&new) == sorted(&es.keywords) {
                        continue;
                    }
                    emails.push((email, fkey, new, uid));
                }
                if emails.is_empty() {
                    return Ok((changed, modified));
                }
                let change = Change {
                    created: vec![],
                    updated: emails.iter().map(|e| e.0).collect(),
                    destroyed: vec![],
                    mailboxes: vec![],
                    ..Default::default()
                };
                let modseq = log_change(txn, acct, &mut st, &change);
                for (email, fkey, new, uid) in emails {
                    let mut es: EmailState = from_json(&txn.get(&fkey)?.unwrap_or_default())?;
                    if let Some(spam) = junk::keyword_verdict(&es.keywords, &new) {
                        junk.mark(txn, acct, email, spam);
                    }
                    es.keywords = new.clone();
                    es.modseq = modseq;
                    for &(mb, u) in &es.mailboxes {
                        // The save date stays what it was.
                        let ukey = k_uid(acct, mb, u);
                        let saved = txn
                            .get(&ukey)?
                            .and_then(|v| decode_uid_entry(&ukey, &v))
                            .and_then(|e| e.saved);
                        txn.put(ukey, encode_uid_entry(email, modseq, &new, saved));
                        if !touched_mailboxes.contains(&mb) {
                            touched_mailboxes.push(mb);
                        }
                    }
                    txn.put(fkey, to_json(&es));
                    changed.push((uid, new, modseq));
                }
                for mb in touched_mailboxes {
                    if let Some(v) = txn.get(&k_mbox(acct, mb))? {
                        let mut m: Mailbox = from_json(&v)?;
                        m.highest_modseq = modseq;
                        txn.put(k_mbox(acct, mb), to_json(&m));
                    }
                }
                txn.put(k_acct(b'K', acct), to_json(&st));
                Ok((changed, modified))
            })
            .await?;
        if !out.0.is_empty() {
            self.notify(acct);
        }
        Ok(out)
    }

    /// Removes messages flagged \Deleted from a mailbox (restricted to
    /// `only` when given: UID EXPUNGE). Returns the expunged UIDs.
    pub async fn expunge(&self, acct: u32, mbox: u32, only: Option<Vec<u32>>) -> Result<Vec<u32>> {
        let entries = self.uids(acct, mbox).await?;
        let candidates: Vec<u32> = entries
            .iter()
            .filter(|e| e.flags.iter().any(|f| f.eq_ignore_ascii_case("\\Deleted")))
            .filter(|e| only.as_ref().is_none_or(|o| o.contains(&e.uid)))
            .map(|e| e.uid)
            .collect();
        self.remove(acct, mbox, candidates, true).await
    }

    /// Removes these messages from a mailbox, flagged \Deleted or not
    /// (POP3's UPDATE state). Returns the UIDs removed; ones already gone
    /// are skipped.
    pub async fn remove_messages(&self, acct: u32, mbox: u32, uids: Vec<u32>) -> Result<Vec<u32>> {
        self.remove(acct, mbox, uids, false).await
    }

    async fn remove(
        &self,
        acct: u32,
        mbox: u32,
        candidates: Vec<u32>,
        only_flagged: bool,
    ) -> Result<Vec<u32>> {
        if candidates.is_empty() {
            return Ok(vec![]);
        }
        let blobs = self.blobs.clone();
        let out = self
            .store
            .transact(move |txn| {
                let mut st = account_state(txn, acct)?;
                let mut gone = Vec::new();
                let mut destroyed = Vec::new();
                let mut threads = Vec::new();
                let mut updated = Vec::new();
                for uid in candidates {
                    let ukey = k_uid(acct, mbox, uid);
                    let Some(v) = txn.get(&ukey)? else { continue };
                    let Some(e) = decode_uid_entry(&ukey, &v) else {
                        continue;
                    };
                    // Re-checked inside the transaction: a concurrent STORE
                    // may have removed \Deleted meanwhile.
                    if only_flagged && !e.flags.iter().any(|f| f.eq_ignore_ascii_case("\\Deleted"))
                    {
                        continue;
                    }
                    gone.push(uid);
                    match mailbox::remove_membership(
                        txn, &blobs, acct, &mut st, mbox, uid, e.email,
                    )? {
                        Some(thread) => {
                            destroyed.push(e.email);
                            threads.push(thread);
                        }
                        None => updated.push(e.email),
                    }
                }
                if gone.is_empty() {
                    return Ok(gone);
                }
                let change = Change {
                    created: vec![],
                    updated,
                    destroyed,
                    mailboxes: vec![mbox],
                    threads,
                    ..Default::default()
                };
                log_mailbox_change(txn, acct, &mut st, &change, mbox)?;
                Ok(gone)
            })
            .await?;
        if !out.is_empty() {
            self.notify(acct);
        }
        Ok(out)
    }

    /// Deletes every record of an account and drops its blob references.
    pub async fn delete_account(&self, acct: u32) -> Result<()> {
        self.drop_grants_to(acct).await?;
        let own = self.mailboxes(acct).await?;
        let mut metas = Vec::new();
        for (_, v) in self.store.scan_prefix(k_acct(b'E', acct)).await? {
            let m: EmailMeta = from_json(&v)?;
            metas.push(m.blob);
        }
        let mut keys = Vec::new();
        for p in [
            b'K', b'M', b'E', b'F', b'U', b'C', b'T', b'N', b'J', b'Z', b'P',
        ] {
            keys.extend(
                self.store
                    .scan_prefix(k_acct(p, acct))
                    .await?
                    .into_iter()
                    .map(|(k, _)| k),
            );
        }
        let blobs = self.blobs.clone();
        self.store
            .transact(move |txn| {
                for k in keys {
                    txn.delete(k);
                }
                for b in metas {
                    blobs.release(txn, &b)?;
                }
                txn.put(k_email(b'J', acct, u64::MAX), FTS_DROP_ACCOUNT.to_vec());
                records::delete_records_in(&blobs, txn, acct)?;
                for mb in &own {
                    acl::clear_grants(txn, acct, mb)?;
                }
                // Others' private annotations on its mailboxes.
                for k in private_annotations_on(txn, acct, None)? {
                    txn.delete(k);
                }
                Ok(())
            })
            .await?;
        self.acl_changed();
        self.fts_wake.notify_one();
        Ok(())
    }
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| s.to_ascii_lowercase()).collect();
    v.sort();
    v
}

fn dedup_flags(v: &mut Vec<String>) {
    let mut seen = std::collections::HashSet::new();
    v.retain(|f| seen.insert(f.to_ascii_lowercase()));
}
