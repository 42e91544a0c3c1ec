//! Access control lists on mailboxes (RFC 4314), so that an account can
//! share mailboxes with others.
//!
//! A mailbox record holds its grants (account id, or 0 for "anyone", and
//! the rights). Each grant is mirrored under `S` grantee owner mailbox,
//! written in the same transaction, so an account finds what is shared
//! with it with one scan. The owner always holds every right.

use serde::{Deserialize, Serialize};

use super::{from_json, k_acct, k_mbox, to_json, MailStore, Mailbox, Result};
use crate::store::StoreError;

/// The rights RFC 4314 §2.1 defines, in their canonical order.
pub const ALL_RIGHTS: &str = "lrswipkxtea";

/// The other users' namespace prefix (RFC 2342; without its separator).
/// A subscription to a shared mailbox is kept under the name IMAP shows:
/// `Shared/<owner address>/<mailbox>` (see [`shared_name`]).
pub const SHARED: &str = "Shared";

/// The name under which `mailbox` of `owner` is shared and subscribed.
pub fn shared_name(owner: &str, mailbox: &str) -> String {
    format!("{SHARED}/{owner}/{mailbox}")
}

/// Grantee id meaning every authenticated user ("anyone").
pub const ANYONE: u32 = 0;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grant {
    pub who: u32,
    pub rights: String,
}

/// A set of rights, kept as the canonical string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rights(String);

impl Rights {
    pub fn all() -> Rights {
        Rights(ALL_RIGHTS.into())
    }

    pub fn none() -> Rights {
        Rights::default()
    }

    /// Parses a rights string; the obsolete "c" and "d" (RFC 2086) stand
    /// for "kx" and "et" (§2.1.1). Unknown letters are an error.
    pub fn parse(s: &str) -> Option<Rights> {
        let mut have = String::new();
        for c in s.chars() {
            match c {
                'c' => have.push_str("kx"),
                'd' => have.push_str("et"),
                c if ALL_RIGHTS.contains(c) => have.push(c),
                _ => return None,
            }
        }
        Some(Rights(
            ALL_RIGHTS.chars().filter(|c| have.contains(*c)).collect(),
        ))
    }

    pub fn has(&self, c: char) -> bool {
        self.0.contains(c)
    }

    pub fn union(&self, other: &Rights) -> Rights {
        Rights(
            ALL_RIGHTS
                .chars()
                .filter(|&c| self.has(c) || other.has(c))
                .collect(),
        )
    }

    pub fn minus(&self, other: &Rights) -> Rights {
        Rights(self.0.chars().filter(|&c| !other.has(c)).collect())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A rights string as MYRIGHTS, ACL and LISTRIGHTS answers give it: with
/// the virtual "c" when one of k x is there and "d" when one of e t is
/// (RFC 4314 §2.1.1).
pub fn with_virtual(rights: &str) -> String {
    let mut out = rights.to_string();
    if rights.contains(['k', 'x']) {
        out.push('c');
    }
    if rights.contains(['e', 't']) {
        out.push('d');
    }
    out
}

/// A subscription by name, kept apart from any mailbox.
pub(crate) fn k_name_subscription(who: u32, name: &str) -> Vec<u8> {
    let mut key = k_acct(b'Z', who);
    key.extend_from_slice(name.as_bytes());
    key
}

fn k_share(grantee: u32, owner: u32, mbox: u32) -> Vec<u8> {
    let mut k = k_acct(b'S', grantee);
    k.extend_from_slice(&owner.to_be_bytes());
    k.extend_from_slice(&mbox.to_be_bytes());
    k
}

/// A change of what an account may do in another's mailbox, kept for
/// the account whose rights changed (JMAP ShareNotification, RFC 9670
/// §3). Rights are RFC 4314 letters; empty for none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShareNote {
    pub created: i64,
    /// The account that made the change.
    pub by: u32,
    pub owner: u32,
    pub mailbox: u32,
    /// The mailbox's name when it changed.
    pub name: String,
    pub old: String,
    pub new: String,
}

/// A mailbox someone shared with an account.
#[derive(Debug, Clone)]
pub struct Shared {
    pub owner: u32,
    pub mailbox: u32,
    pub rights: Rights,
}

impl Mailbox {
    /// What `who` may do here (its own grant and "anyone"'s).
    pub fn rights_of(&self, owner: u32, who: u32) -> Rights {
        if who == owner {
            return Rights::all();
        }
        self.acl
            .iter()
            .filter(|g| g.who == who || g.who == ANYONE)
            .filter_map(|g| Rights::parse(&g.rights))
            .fold(Rights::none(), |a, r| a.union(&r))
    }
}

/// Writes the mirrors of a mailbox's grants (a new mailbox that took its
/// parent's access list).
pub(crate) fn write_grants(txn: &mut crate::store::Txn<'_>, owner: u32, mb: &Mailbox) {
    for g in &mb.acl {
        txn.put(k_share(g.who, owner, mb.id), g.rights.as_bytes().to_vec());
    }
}

/// Drops a mailbox's grants and their mirrors (the owner deletes the
/// mailbox); each account that had a grant gets a [`ShareNote`].
pub(crate) fn clear_grants(
    txn: &mut crate::store::Txn<'_>,
    owner: u32,
    mb: &Mailbox,
) -> std::result::Result<(), StoreError> {
    for g in &mb.acl {
        txn.delete(k_share(g.who, owner, mb.id));
        if g.who != ANYONE {
            let note = ShareNote {
                created: crate::core::unix_now(),
                by: owner,
                owner,
                mailbox: mb.id,
                name: mb.name.clone(),
                old: g.rights.clone(),
                new: String::new(),
            };
            super::records::create_record_in(
                txn,
                g.who,
                super::records::Kind::ShareNotification,
                to_json(&note),
            )?;
        }
    }
    Ok(())
}

impl MailStore {
    /// Sets (or with `None` removes) what `who` may do in the owner's
    /// mailbox, as account `by` asked. Returns the mailbox as it is now.
    /// When the rights of an account (not "anyone") change by another's
    /// hand, it gets a [`ShareNote`] in the same transaction.
    pub async fn set_grant(
        &self,
        owner: u32,
        mbox: u32,
        who: u32,
        rights: Option<Rights>,
        by: u32,
    ) -> Result<Mailbox> {
        let shown = rights
            .as_ref()
            .map(|r| r.as_str().to_string())
            .unwrap_or_default();
        let mb = self
            .store
            .transact(move |txn| {
                let key = k_mbox(owner, mbox);
                let v = txn
                    .get(&key)?
                    .ok_or_else(|| StoreError::Aborted("no such mailbox".into()))?;
                let mut mb: Mailbox = from_json(&v)?;
                let old = mb
                    .acl
                    .iter()
                    .find(|g| g.who == who)
                    .map(|g| g.rights.clone())
                    .unwrap_or_default();
                mb.acl.retain(|g| g.who != who);
                let new = rights.clone().filter(|r| !r.is_empty());
                match &new {
                    Some(r) => {
                        mb.acl.push(Grant {
                            who,
                            rights: r.as_str().to_string(),
                        });
                        mb.acl.sort_by_key(|g| g.who);
                        txn.put(k_share(who, owner, mbox), r.as_str().as_bytes().to_vec());
                    }
                    None => txn.delete(k_share(who, owner, mbox)),
                }
                let new = new.map(|r| r.as_str().to_string()).unwrap_or_default();
                if who != ANYONE && who != by && old != new {
                    let note = ShareNote {
                        created: crate::core::unix_now(),
                        by,
                        owner,
                        mailbox: mbox,
                        name: mb.name.clone(),
                        old,
                        new,
                    };
                    super::records::create_record_in(
                        txn,
                        who,
                        super::records::Kind::ShareNotification,
                        to_json(&note),
                    )?;
                }
                txn.put(key, to_json(&mb));
                // Who may use it is part of what JMAP shows of it
                // (shareWith): the owner's Mailbox state moves.
                let mut st = super::account_state(txn, owner)?;
                super::mailbox::log_mailboxes_changed(txn, owner, &mut st, vec![mbox]);
                Ok(mb)
            })
            .await
            .map_err(|e| match e {
                StoreError::Aborted(m) => super::MailError::NotFound(m),
                e => e.into(),
            })?;
        tracing::info!(
            owner,
            mailbox = mbox,
            grantee = who,
            rights = shown.as_str(),
            by,
            "mailbox access changed"
        );
        metrics::counter!("petrel_mailbox_access_changes_total").increment(1);
        self.acl_changed();
        self.notify(owner);
        // The grantee's NOTIFY sessions see a mailbox appear or go
        // (RFC 5465 §5.4); 0 ("anyone") wakes every one of them.
        self.notify(who);
        Ok(mb)
    }

    /// The mailboxes shared with `who` (directly or with anyone), its own
    /// excepted. Read again only when grants changed since (every JMAP
    /// request and push channel asks).
    pub async fn shared_with(&self, who: u32) -> Result<Vec<Shared>> {
        // The version first: a change during the read is seen next time.
        let version = self.acl_version();
        let cached = self
            .shares
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&who)
            .filter(|(v, _)| *v == version)
            .map(|(_, s)| s.clone());
        if let Some(s) = cached {
            return Ok(s);
        }
        let out = self.read_shared_with(who).await?;
        self.shares
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(who, (version, out.clone()));
        Ok(out)
    }

    async fn read_shared_with(&self, who: u32) -> Result<Vec<Shared>> {
        let mut out: Vec<Shared> = Vec::new();
        for grantee in [who, ANYONE] {
            for (k, v) in self.store.scan_prefix(k_acct(b'S', grantee)).await? {
                let (Some(owner), Some(mailbox)) = (
                    k.get(5..9)
                        .and_then(|b| b.try_into().ok())
                        .map(u32::from_be_bytes),
                    k.get(9..13)
                        .and_then(|b| b.try_into().ok())
                        .map(u32::from_be_bytes),
                ) else {
                    continue;
                };
                if owner == who {
                    continue;
                }
                let rights =
                    Rights::parse(std::str::from_utf8(&v).unwrap_or("")).unwrap_or_default();
                match out
                    .iter_mut()
                    .find(|s| s.owner == owner && s.mailbox == mailbox)
                {
                    Some(s) => s.rights = s.rights.union(&rights),
                    None => out.push(Shared {
                        owner,
                        mailbox,
                        rights,
                    }),
                }
            }
        }
        out.sort_by_key(|s| (s.owner, s.mailbox));
        Ok(out)
    }

    /// Names under "Shared/" the account subscribed to (RFC 9051 §6.3.7:
    /// subscriptions are the user's, whoever owns the mailbox).
    pub async fn shared_subscriptions(
        &self,
        who: u32,
    ) -> Result<std::collections::HashSet<String>> {
        Ok(self
            .store
            .scan_prefix(k_acct(b'Z', who))
            .await?
            .into_iter()
            .filter_map(|(k, _)| String::from_utf8(k.get(5..)?.to_vec()).ok())
            .collect())
    }

    /// Subscribes `who` to a name that is not one of its own mailboxes (a
    /// shared mailbox, or a name whose mailbox is gone or not made yet).
    pub async fn set_shared_subscription(&self, who: u32, name: &str, on: bool) -> Result<()> {
        let key = k_name_subscription(who, name);
        self.store
            .transact(move |txn| {
                if on {
                    txn.put(key, Vec::new());
                } else {
                    txn.delete(key);
                }
                Ok(())
            })
            .await?;
        self.notify(who);
        Ok(())
    }

    /// Removes the grants made to an account that is being deleted.
    pub(crate) async fn drop_grants_to(&self, who: u32) -> Result<()> {
        for s in self.shared_with(who).await? {
            // Only direct grants; "anyone" grants stay.
            let key = k_share(who, s.owner, s.mailbox);
            if self.store.get(key).await?.is_some() {
                self.set_grant(s.owner, s.mailbox, who, None, s.owner)
                    .await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Rights;

    #[test]
    fn rights_strings() {
        assert_eq!(Rights::parse("rl").unwrap().as_str(), "lr");
        assert_eq!(Rights::parse("lrc").unwrap().as_str(), "lrkx");
        assert_eq!(Rights::parse("d").unwrap().as_str(), "te");
        assert!(Rights::parse("lrz").is_none());
        let a = Rights::parse("lrs").unwrap();
        assert_eq!(a.union(&Rights::parse("wl").unwrap()).as_str(), "lrsw");
        assert_eq!(a.minus(&Rights::parse("s").unwrap()).as_str(), "lr");
        assert!(Rights::all().has('a') && !Rights::none().has('l'));
        assert_eq!(super::with_virtual("lrswipkxtea"), "lrswipkxteacd");
        assert_eq!(super::with_virtual("lrk"), "lrkc");
        assert_eq!(super::with_virtual("lrt"), "lrtd");
        assert_eq!(super::with_virtual("lrs"), "lrs");
    }
}
