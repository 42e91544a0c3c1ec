//! Shared accounts (RFC 8620 §1.6.2, RFC 8621 §2 myRights, §9.5): the
//! mailboxes another account shared with the user through IMAP ACLs
//! (RFC 4314) make that account one the user can use over JMAP, with the
//! mail capability only. What the user may do there is the rights of its
//! grants, mailbox by mailbox; mailboxes without the lookup right `l` do
//! not exist for it, and messages only in mailboxes it may not read
//! (`l` and `r`) do not either.

use std::collections::HashMap;

use serde_json::Value;

use crate::mail::acl::{Rights, Shared};
use crate::mail::EmailState;

/// What the user may do in one account: the own account (every right) or
/// a shared one (the rights granted, per mailbox).
#[derive(Debug, Clone)]
pub struct Access {
    pub acct: u32,
    /// None for the user's own account.
    grants: Option<HashMap<u32, Rights>>,
}

impl Access {
    pub fn own(acct: u32) -> Access {
        Access { acct, grants: None }
    }

    /// The account `owner` as the grants in `shares` let the user see it;
    /// `None` when no mailbox of it is visible (lookup right).
    pub fn shared(owner: u32, shares: &[Shared]) -> Option<Access> {
        let grants: HashMap<u32, Rights> = shares
            .iter()
            .filter(|s| s.owner == owner && s.rights.has('l'))
            .map(|s| (s.mailbox, s.rights.clone()))
            .collect();
        (!grants.is_empty()).then_some(Access {
            acct: owner,
            grants: Some(grants),
        })
    }

    pub fn is_own(&self) -> bool {
        self.grants.is_none()
    }

    pub fn rights(&self, mbox: u32) -> Rights {
        match &self.grants {
            None => Rights::all(),
            Some(g) => g.get(&mbox).cloned().unwrap_or_default(),
        }
    }

    /// The mailbox exists for the user (RFC 4314 `l`).
    pub fn sees(&self, mbox: u32) -> bool {
        self.rights(mbox).has('l')
    }

    /// RFC 8621 §2 mayReadItems: `l` and `r`.
    pub fn reads(&self, mbox: u32) -> bool {
        let r = self.rights(mbox);
        r.has('l') && r.has('r')
    }

    /// Every one of `boxes` grants all of `rights` (e.g. "te" to remove).
    pub fn all_grant(&self, boxes: impl IntoIterator<Item = u32>, rights: &str) -> bool {
        boxes
            .into_iter()
            .all(|m| rights.chars().all(|c| self.rights(m).has(c)))
    }

    /// The message exists for JMAP and for this user: visible (RFC 8621
    /// §4.1.1) and in at least one mailbox the user may read (§2).
    pub fn email_visible(&self, st: &EmailState) -> bool {
        super::visible(st) && st.mailboxes.iter().any(|(m, _)| self.reads(*m))
    }

    /// The mailboxes of a message the user may read: its `mailboxIds`
    /// (§9.5: the others behave as though they did not exist).
    pub fn readable_boxes<'a>(&'a self, st: &'a EmailState) -> impl Iterator<Item = u32> + 'a {
        st.mailboxes
            .iter()
            .map(|(m, _)| *m)
            .filter(|m| self.reads(*m))
    }

    /// A MailboxRights object (RFC 8621 §2) for a mailbox.
    pub fn my_rights(&self, mbox: u32) -> Value {
        super::share::rights_json(&self.rights(mbox))
    }

    /// The grants as text, mailbox by mailbox in order (`1:lr,5:lrsw`);
    /// empty for the own account. What the user sees of a shared account
    /// moves with them, without a record in the owner's change log.
    pub fn grants_text(&self) -> String {
        let Some(g) = &self.grants else {
            return String::new();
        };
        let mut list: Vec<(&u32, &Rights)> = g.iter().collect();
        list.sort_by_key(|(m, _)| **m);
        list.iter()
            .map(|(m, r)| format!("{m}:{}", r.as_str()))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// No mailbox grants anything but reading (RFC 8620 §1.6.2
    /// isReadOnly).
    pub fn read_only(&self) -> bool {
        match &self.grants {
            None => false,
            Some(g) => g.values().all(|r| !"wsitekx".chars().any(|c| r.has(c))),
        }
    }
}

/// The accounts other than its own the user can see: their owners, in
/// order.
pub fn shared_owners(shares: &[Shared]) -> Vec<u32> {
    let mut owners: Vec<u32> = shares
        .iter()
        .filter(|s| s.rights.has('l'))
        .map(|s| s.owner)
        .collect();
    owners.dedup();
    owners
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn share(owner: u32, mailbox: u32, r: &str) -> Shared {
        Shared {
            owner,
            mailbox,
            rights: Rights::parse(r).unwrap(),
        }
    }

    #[test]
    fn rights_per_mailbox() {
        let shares = [share(2, 1, "lr"), share(2, 5, "lrswite"), share(3, 1, "r")];
        let a = Access::shared(2, &shares).unwrap();
        assert!(a.reads(1) && a.reads(5) && !a.reads(7));
        assert!(a.all_grant([5], "te") && !a.all_grant([1, 5], "te"));
        assert_eq!(a.my_rights(1)["mayReadItems"], json!(true));
        assert_eq!(a.my_rights(1)["maySetSeen"], json!(false));
        assert_eq!(a.my_rights(5)["mayRemoveItems"], json!(true));
        assert!(!a.read_only());
        assert!(Access::shared(2, &shares[..1]).unwrap().read_only());
        // Account 3 granted `r` without `l`: nothing of it is visible.
        assert!(Access::shared(3, &shares).is_none());
        assert_eq!(shared_owners(&shares), vec![2]);
        let st = EmailState {
            keywords: vec![],
            mailboxes: vec![(7, 1), (5, 3)],
            modseq: 1,
        };
        assert!(a.email_visible(&st));
        assert_eq!(a.readable_boxes(&st).collect::<Vec<_>>(), vec![5]);
        let own = Access::own(2);
        assert!(own.is_own() && own.reads(7) && own.all_grant([1, 7], "te"));
    }
}
