//! \Recent (RFC 3501 §2.3.2), kept for IMAP4rev1 sessions: a message is
//! recent in exactly one session, the first to select its mailbox after
//! it arrived. Per mailbox the store remembers the lowest UID no session
//! has claimed yet; a SELECT (or a session that sees new messages arrive)
//! claims everything below UIDNEXT. The mark lives in memory: after a
//! restart, messages that arrived before it are no longer recent (what
//! RFC 3501 allows when the server cannot tell; IMAP4rev2 has no \Recent).

use super::MailStore;

/// Unclaimed-from marks per (account, mailbox).
pub(crate) type RecentMarks = std::sync::Mutex<std::collections::HashMap<(u32, u32), u32>>;

impl MailStore {
    /// The lowest UID that no session has claimed as recent (`uidnext`
    /// when the mailbox was not seen since start).
    pub fn recent_from(&self, acct: u32, mbox: u32, uidnext: u32) -> u32 {
        *self
            .recent
            .lock()
            .expect("recent lock")
            .entry((acct, mbox))
            .or_insert(uidnext)
    }

    /// Claims for one session the recent messages below `uidnext`; returns
    /// the UIDs it now holds as recent (none when another took them).
    pub fn claim_recent(&self, acct: u32, mbox: u32, uidnext: u32) -> std::ops::Range<u32> {
        let mut marks = self.recent.lock().expect("recent lock");
        let first = marks.entry((acct, mbox)).or_insert(uidnext);
        let claimed = *first..uidnext.max(*first);
        *first = (*first).max(uidnext);
        claimed
    }

    /// A message arrived: from the first one after start, arrivals are
    /// recent until claimed.
    pub(crate) fn note_arrival(&self, acct: u32, mbox: u32, uid: u32) {
        self.recent
            .lock()
            .expect("recent lock")
            .entry((acct, mbox))
            .or_insert(uid);
    }
}
