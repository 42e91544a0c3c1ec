//! What users say about spam by where they put mail: a message moved or
//! copied into the mailbox with the `junk` role, or given the `$Junk`
//! keyword (RFC 5788), is spam to them; one moved out of Junk into a
//! mailbox other than Trash, or given `$NotJunk`, is not.
//!
//! The mail store only records such a change, in the transaction that
//! makes it (`L<account><email>` → `s` or `h`), and wakes whoever learns
//! from them (the spam filter, src/spam/learn.rs), which reads the queue
//! through [`MailStore::learn_queue`]. Nothing is recorded unless
//! [`MailStore::set_junk_learning`] turned it on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

use super::{k_email, MailStore, Mailbox, Result};
use crate::store::Txn;

const QUEUE: u8 = b'L';

/// A change users made to a message's junk-ness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JunkMark {
    pub account: u32,
    pub email: u64,
    pub spam: bool,
}

pub(crate) fn is_junk(m: &Mailbox) -> bool {
    m.role.as_deref() == Some("junk")
}

pub(crate) fn is_trash(m: &Mailbox) -> bool {
    m.role.as_deref() == Some("trash")
}

/// Keywords a flag change gained that say spam (`Some(true)`) or not.
pub(crate) fn keyword_verdict(before: &[String], after: &[String]) -> Option<bool> {
    let gained = |k: &str| {
        after.iter().any(|f| f.eq_ignore_ascii_case(k))
            && !before.iter().any(|f| f.eq_ignore_ascii_case(k))
    };
    if gained("$Junk") {
        Some(true)
    } else if gained("$NotJunk") {
        Some(false)
    } else {
        None
    }
}

/// What moving an email from mailboxes `before` to `after` says.
pub(crate) fn move_verdict(before: &[&Mailbox], after: &[&Mailbox]) -> Option<bool> {
    let was = before.iter().any(|m| is_junk(m));
    let is = after.iter().any(|m| is_junk(m));
    match (was, is) {
        (false, true) => Some(true),
        (true, false) if !after.iter().all(|m| is_trash(m)) => Some(false),
        _ => None,
    }
}

/// Records junk changes in transactions (a cheap clone for their closures).
#[derive(Clone, Default)]
pub(crate) struct JunkMarker {
    on: Arc<AtomicBool>,
    wake: Arc<Notify>,
}

impl JunkMarker {
    /// Whether changes are recorded (so that moves read the mailboxes'
    /// roles only then).
    pub(crate) fn is_on(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    /// Records in `txn` that a user called `email` spam or not.
    pub(crate) fn mark(&self, txn: &mut Txn<'_>, acct: u32, email: u64, spam: bool) {
        if !self.on.load(Ordering::Relaxed) {
            return;
        }
        txn.put(
            k_email(QUEUE, acct, email),
            vec![if spam { b's' } else { b'h' }],
        );
        let wake = self.wake.clone();
        txn.after_commit(move || wake.notify_one());
    }
}

impl MailStore {
    /// Records users' junk changes from now on (`spam.bayes.learn-from-users`).
    pub fn set_junk_learning(&self, on: bool) {
        self.junk.on.store(on, Ordering::Relaxed);
    }

    /// Wakes when [`MailStore::learn_queue`] may have something.
    pub fn learn_wake(&self) -> Arc<Notify> {
        self.junk.wake.clone()
    }

    /// Up to `limit` recorded junk changes, oldest account first.
    pub async fn learn_queue(&self, limit: usize) -> Result<Vec<JunkMark>> {
        let rows = self.store.scan(vec![QUEUE], vec![QUEUE + 1], limit).await?;
        Ok(rows
            .into_iter()
            .filter(|(k, v)| k.len() == 13 && v.len() == 1)
            .map(|(k, v)| JunkMark {
                account: u32::from_be_bytes(k[1..5].try_into().expect("4 bytes")),
                email: u64::from_be_bytes(k[5..13].try_into().expect("8 bytes")),
                spam: v[0] == b's',
            })
            .collect())
    }

    /// Takes `mark` off the queue, unless the user changed their mind
    /// again meanwhile (then the newer mark stays).
    pub async fn learn_done(&self, mark: JunkMark) -> Result<()> {
        self.store
            .transact(move |txn| {
                let k = k_email(QUEUE, mark.account, mark.email);
                let want: &[u8] = if mark.spam { b"s" } else { b"h" };
                if txn.get(&k)?.as_deref() == Some(want) {
                    txn.delete(k);
                }
                Ok(())
            })
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mb(role: Option<&str>) -> Mailbox {
        Mailbox {
            id: 1,
            name: "x".into(),
            role: role.map(str::to_string),
            uidvalidity: 1,
            uidnext: 1,
            highest_modseq: 0,
            subscribed: false,
            acl: vec![],
            sort_order: 0,
        }
    }

    #[test]
    fn verdicts() {
        let (inbox, junk, trash, other) = (
            mb(Some("inbox")),
            mb(Some("junk")),
            mb(Some("trash")),
            mb(None),
        );
        assert_eq!(move_verdict(&[&inbox], &[&junk]), Some(true));
        assert_eq!(move_verdict(&[&junk], &[&other]), Some(false));
        assert_eq!(move_verdict(&[&junk], &[&trash]), None, "deleting spam");
        assert_eq!(move_verdict(&[&inbox], &[&other]), None);
        assert_eq!(move_verdict(&[&junk], &[&junk, &inbox]), None);
        let k = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(keyword_verdict(&k(&[]), &k(&["$junk"])), Some(true));
        assert_eq!(
            keyword_verdict(&k(&["$Junk"]), &k(&["$Junk", "\\Seen"])),
            None
        );
        assert_eq!(
            keyword_verdict(&k(&["$Junk"]), &k(&["$NotJunk"])),
            Some(false)
        );
    }
}
