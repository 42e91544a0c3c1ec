//! Mailbox management (create, delete, rename, subscribe) and moving or
//! copying messages between mailboxes.
//!
//! A message in several mailboxes is one email with several memberships
//! (the JMAP model): it shares keywords across them and counts once toward
//! the quota. Copying into a mailbox that already holds the email makes an
//! independent email instead.

use super::{
    account_state, encode_uid_entry, from_json, k_acct, k_email, k_mbox, k_uid, log_change, now,
    to_json, Change, EmailMeta, EmailState, MailError, MailStore, Mailbox, Result,
};
use crate::store::{StoreError, Txn};

/// Checks a mailbox name (`/` is the hierarchy separator).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 512
        && !name.starts_with('/')
        && !name.ends_with('/')
        && !name.contains("//")
        && !name.chars().any(|c| c.is_control() || c == '*' || c == '%')
        && name
            .split('/')
            .all(|p| !p.trim().is_empty() && p.len() <= 255)
}

fn all_mailboxes(txn: &mut Txn<'_>, acct: u32) -> std::result::Result<Vec<Mailbox>, StoreError> {
    txn.scan_prefix(&k_acct(b'M', acct))?
        .iter()
        .map(|(_, v)| from_json(v))
        .collect()
}

/// A mailbox read inside a transaction; aborts it when there is none.
fn mailbox_in(txn: &Txn<'_>, acct: u32, id: u32) -> std::result::Result<Mailbox, StoreError> {
    from_json(
        &txn.get(&k_mbox(acct, id))?
            .ok_or_else(|| abort("no such mailbox"))?,
    )
}

/// Error text carried out of a transaction.
fn abort(msg: &str) -> StoreError {
    StoreError::Aborted(msg.to_string())
}

fn map_err(e: StoreError) -> MailError {
    match e {
        StoreError::Aborted(m) => MailError::Invalid(m),
        other => MailError::Store(other),
    }
}

/// Logs a change of the mailboxes `ids` alone (no message changed) and
/// writes the account state back.
pub(super) fn log_mailboxes_changed(
    txn: &mut Txn<'_>,
    acct: u32,
    st: &mut super::AccountState,
    ids: Vec<u32>,
) {
    let change = Change {
        created: vec![],
        updated: vec![],
        destroyed: vec![],
        mailboxes: ids,
        ..Default::default()
    };
    log_change(txn, acct, st, &change);
    txn.put(k_acct(b'K', acct), to_json(&*st));
}

fn new_mailbox(txn: &mut Txn<'_>, acct: u32, st: &mut super::AccountState, name: &str) -> Mailbox {
    st.next_mailbox += 1;
    let mb = Mailbox {
        id: st.next_mailbox,
        name: name.to_string(),
        role: None,
        uidvalidity: (now() as u32).wrapping_add(st.next_mailbox),
        uidnext: 1,
        highest_modseq: st.state,
        subscribed: true,
        sort_order: 0,
        acl: Vec::new(),
    };
    txn.put(k_mbox(acct, mb.id), to_json(&mb));
    mb
}

/// Creates `name` and any missing parents inside a transaction. Each new
/// mailbox takes the access list of its parent (RFC 4314 §4: CREATE
/// "SHOULD inherit the ACL from the parent mailbox"), so a child of a
/// shared mailbox is shared with the same accounts.
fn create_with_parents(
    txn: &mut Txn<'_>,
    acct: u32,
    st: &mut super::AccountState,
    existing: &[Mailbox],
    name: &str,
) -> Vec<Mailbox> {
    let mut created: Vec<Mailbox> = Vec::new();
    let parts: Vec<&str> = name.split('/').collect();
    for i in 1..=parts.len() {
        let path = parts[..i].join("/");
        if existing.iter().any(|m| m.name == path) {
            continue;
        }
        let mut mb = new_mailbox(txn, acct, st, &path);
        let parent = parts[..i - 1].join("/");
        let inherited = existing
            .iter()
            .chain(created.iter())
            .find(|m| i > 1 && m.name == parent)
            .map(|m| m.acl.clone())
            .unwrap_or_default();
        if !inherited.is_empty() {
            mb.acl = inherited;
            super::acl::write_grants(txn, acct, &mb);
            txn.put(k_mbox(acct, mb.id), to_json(&mb));
        }
        created.push(mb);
    }
    created
}

/// Everyone a mailbox is shared with (their sessions watch it).
fn grantees(boxes: &[Mailbox]) -> Vec<u32> {
    let mut who: Vec<u32> = boxes
        .iter()
        .flat_map(|m| m.acl.iter().map(|g| g.who))
        .collect();
    who.sort_unstable();
    who.dedup();
    who
}

/// Removes one message from one mailbox; deletes the email with its last
/// membership. Returns the Thread of the email if it is gone.
pub(crate) fn remove_membership(
    txn: &mut Txn<'_>,
    blobs: &crate::store::BlobStore,
    acct: u32,
    st: &mut super::AccountState,
    mbox: u32,
    uid: u32,
    email: u64,
) -> std::result::Result<Option<u64>, StoreError> {
    txn.delete(k_uid(acct, mbox, uid));
    let fkey = k_email(b'F', acct, email);
    let Some(v) = txn.get(&fkey)? else {
        return Ok(None);
    };
    let mut es: EmailState = from_json(&v)?;
    es.mailboxes.retain(|&(mb, u)| !(mb == mbox && u == uid));
    if es.mailboxes.is_empty() {
        let ekey = k_email(b'E', acct, email);
        let mut thread = 0;
        if let Some(v) = txn.get(&ekey)? {
            let meta: EmailMeta = from_json(&v)?;
            blobs.release(txn, &meta.blob)?;
            st.used_bytes = st.used_bytes.saturating_sub(meta.size);
            st.messages = st.messages.saturating_sub(1);
            thread = meta.thread;
        }
        txn.delete(ekey);
        txn.delete(fkey);
        txn.put(k_email(b'J', acct, email), super::FTS_REMOVE.to_vec());
        Ok(Some(thread))
    } else {
        txn.put(fkey, to_json(&es));
        Ok(None)
    }
}

impl MailStore {
    pub async fn create_mailbox(&self, acct: u32, name: &str) -> Result<Mailbox> {
        self.create_mailbox_with_role(acct, name, None).await
    }

    /// Creates a mailbox with a special use (RFC 6154 §3: CREATE-SPECIAL-USE;
    /// JMAP's role). A role belongs to one mailbox of the account: taken,
    /// it fails with "role in use".
    pub async fn create_mailbox_with_role(
        &self,
        acct: u32,
        name: &str,
        role: Option<String>,
    ) -> Result<Mailbox> {
        if !valid_name(name) || name.eq_ignore_ascii_case("INBOX") {
            return Err(MailError::Invalid("invalid mailbox name".into()));
        }
        let name = name.to_string();
        let (mb, watchers) = self
            .store
            .transact(move |txn| {
                let mut st = account_state(txn, acct)?;
                let existing = all_mailboxes(txn, acct)?;
                if existing.iter().any(|m| m.name == name) {
                    return Err(abort("mailbox exists already"));
                }
                if let Some(r) = &role {
                    if existing.iter().any(|m| m.role.as_ref() == Some(r)) {
                        return Err(abort("role in use by another mailbox"));
                    }
                }
                let mut created = create_with_parents(txn, acct, &mut st, &existing, &name);
                let mut mb = created.pop().expect("at least the mailbox itself");
                if let Some(r) = &role {
                    mb.role = Some(r.clone());
                }
                // A name subscribed before its mailbox existed (or after
                // it was deleted) is the new mailbox's subscription.
                let sub = super::acl::k_name_subscription(acct, &name);
                if txn.get(&sub)?.is_some() {
                    txn.delete(sub);
                    mb.subscribed = true;
                }
                if role.is_some() || mb.subscribed {
                    txn.put(k_mbox(acct, mb.id), to_json(&mb));
                }
                created.push(mb.clone());
                let ids: Vec<u32> = created.iter().map(|m| m.id).collect();
                let change = Change {
                    mailboxes: ids.clone(),
                    mailboxes_created: ids,
                    ..Default::default()
                };
                log_change(txn, acct, &mut st, &change);
                txn.put(k_acct(b'K', acct), to_json(&st));
                Ok((mb, grantees(&created)))
            })
            .await
            .map_err(map_err)?;
        if !watchers.is_empty() {
            // Grants inherited from the parent: others see a new mailbox.
            self.acl_changed();
        }
        self.notify(acct);
        for who in watchers {
            self.notify(who);
        }
        Ok(mb)
    }

    /// Deletes a mailbox and the messages only it holds. INBOX and
    /// mailboxes with children cannot be deleted.
    pub async fn delete_mailbox(&self, acct: u32, name: &str) -> Result<()> {
        let name = name.to_string();
        let blobs = self.blobs.clone();
        let watchers = self
            .store
            .transact(move |txn| {
                let mut st = account_state(txn, acct)?;
                let boxes = all_mailboxes(txn, acct)?;
                let mb = boxes
                    .iter()
                    .find(|m| m.name == name)
                    .ok_or_else(|| abort("no such mailbox"))?;
                if mb.name == "INBOX" {
                    return Err(abort("INBOX cannot be deleted"));
                }
                let prefix = format!("{}/", mb.name);
                if boxes.iter().any(|m| m.name.starts_with(&prefix)) {
                    return Err(abort("mailbox has children: delete them first"));
                }
                let mut uprefix = k_acct(b'U', acct);
                uprefix.extend_from_slice(&mb.id.to_be_bytes());
                let mut destroyed = Vec::new();
                let mut threads = Vec::new();
                // Messages that are in other mailboxes too lose one
                // membership: an update (JMAP mailboxIds).
                let mut updated = Vec::new();
                for (k, v) in txn.scan_prefix(&uprefix)? {
                    let uid = u32::from_be_bytes(k[k.len() - 4..].try_into().expect("4 bytes"));
                    let email = u64::from_be_bytes(v[0..8].try_into().expect("8 bytes"));
                    match remove_membership(txn, &blobs, acct, &mut st, mb.id, uid, email)? {
                        Some(thread) => {
                            destroyed.push(email);
                            threads.push(thread);
                        }
                        None => updated.push(email),
                    }
                }
                txn.delete(k_mbox(acct, mb.id));
                // RFC 9051 §6.3.7: a subscription outlives its mailbox (the
                // server "MUST NOT unilaterally remove" the name).
                if mb.subscribed {
                    txn.put(super::acl::k_name_subscription(acct, &mb.name), Vec::new());
                }
                super::acl::clear_grants(txn, acct, mb)?;
                // Its annotations go with it (RFC 5464 §3.2).
                for (k, _) in txn.scan_prefix(&super::k_annotation(acct, mb.id, ""))? {
                    txn.delete(k);
                }
                for k in super::private_annotations_on(txn, acct, Some(mb.id))? {
                    txn.delete(k);
                }
                let change = Change {
                    updated,
                    destroyed,
                    mailboxes: vec![mb.id],
                    mailboxes_destroyed: vec![mb.id],
                    threads,
                    ..Default::default()
                };
                log_change(txn, acct, &mut st, &change);
                txn.put(k_acct(b'K', acct), to_json(&st));
                Ok(grantees(std::slice::from_ref(mb)))
            })
            .await
            .map_err(map_err)?;
        self.acl_changed();
        self.notify(acct);
        for who in watchers {
            self.notify(who);
        }
        Ok(())
    }

    /// Renames a mailbox and its children. Renaming INBOX is refused.
    pub async fn rename_mailbox(&self, acct: u32, from: &str, to: &str) -> Result<()> {
        if !valid_name(to) || to.eq_ignore_ascii_case("INBOX") {
            return Err(MailError::Invalid("invalid mailbox name".into()));
        }
        let (from, to) = (from.to_string(), to.to_string());
        let watchers = self
            .store
            .transact(move |txn| {
                let mut st = account_state(txn, acct)?;
                let boxes = all_mailboxes(txn, acct)?;
                let src = boxes
                    .iter()
                    .find(|m| m.name == from)
                    .ok_or_else(|| abort("no such mailbox"))?;
                if src.name == "INBOX" {
                    return Err(abort("renaming INBOX is not supported"));
                }
                if boxes.iter().any(|m| m.name == to) {
                    return Err(abort("the new name exists already"));
                }
                if to.starts_with(&format!("{from}/")) {
                    return Err(abort("a mailbox cannot be moved below itself"));
                }
                let prefix = format!("{from}/");
                let mut changed = Vec::new();
                let mut moved = Vec::new();
                for m in &boxes {
                    let new_name = if m.name == from {
                        to.clone()
                    } else if let Some(rest) = m.name.strip_prefix(&prefix) {
                        format!("{to}/{rest}")
                    } else {
                        continue;
                    };
                    let mut m = m.clone();
                    m.name = new_name;
                    changed.push(m.id);
                    txn.put(k_mbox(acct, m.id), to_json(&m));
                    moved.push(m);
                }
                // Parents of the new name that do not exist yet (RFC 4314
                // §4: the renamed mailboxes keep their own access lists).
                if let Some((parent, _)) = to.rsplit_once('/') {
                    let remaining: Vec<Mailbox> = all_mailboxes(txn, acct)?;
                    let made = create_with_parents(txn, acct, &mut st, &remaining, parent);
                    changed.extend(made.iter().map(|m| m.id));
                    moved.extend(made);
                }
                log_mailboxes_changed(txn, acct, &mut st, changed);
                Ok(grantees(&moved))
            })
            .await
            .map_err(map_err)?;
        self.notify(acct);
        for who in watchers {
            self.notify(who);
        }
        Ok(())
    }

    /// Gives mailbox `id` the special use `role`, or none (RFC 6154 §4,
    /// through the /private/specialuse annotation). A role belongs to one
    /// mailbox of the account: taken, it fails with "role in use".
    pub async fn set_mailbox_role(&self, acct: u32, id: u32, role: Option<String>) -> Result<()> {
        let watchers = self
            .store
            .transact(move |txn| {
                let mut st = account_state(txn, acct)?;
                let existing = all_mailboxes(txn, acct)?;
                let Some(mut mb) = existing.iter().find(|m| m.id == id).cloned() else {
                    return Err(abort("no such mailbox"));
                };
                if let Some(r) = &role {
                    if existing
                        .iter()
                        .any(|m| m.id != id && m.role.as_ref() == Some(r))
                    {
                        return Err(abort("role in use by another mailbox"));
                    }
                }
                mb.role = role.clone();
                txn.put(k_mbox(acct, id), to_json(&mb));
                log_mailboxes_changed(txn, acct, &mut st, vec![id]);
                Ok(grantees(std::slice::from_ref(&mb)))
            })
            .await
            .map_err(map_err)?;
        self.notify(acct);
        for who in watchers {
            self.notify(who);
        }
        Ok(())
    }

    /// A mailbox's place among its siblings (JMAP sortOrder, RFC 8621
    /// §2): kept for clients, a Mailbox change; IMAP does not show it.
    pub async fn set_sort_order(&self, acct: u32, id: u32, order: u32) -> Result<()> {
        self.store
            .transact(move |txn| {
                let mut st = account_state(txn, acct)?;
                let mut mb: Mailbox = mailbox_in(txn, acct, id)?;
                mb.sort_order = order;
                txn.put(k_mbox(acct, id), to_json(&mb));
                log_mailboxes_changed(txn, acct, &mut st, vec![id]);
                Ok(())
            })
            .await
            .map_err(map_err)?;
        self.notify(acct);
        Ok(())
    }

    pub async fn set_subscribed(&self, acct: u32, name: &str, subscribed: bool) -> Result<()> {
        // The name's own subscription record goes in every case; a name
        // with no mailbox keeps its subscription there (RFC 9051 §6.3.7).
        let Some(mut mb) = self.mailbox_by_name(acct, name).await? else {
            return self.set_shared_subscription(acct, name, subscribed).await;
        };
        if !subscribed {
            self.set_shared_subscription(acct, name, false).await?;
        }
        mb.subscribed = subscribed;
        let id = mb.id;
        self.store
            .transact(move |txn| {
                // Re-read: keep counters written meanwhile.
                let mut cur: Mailbox = mailbox_in(txn, acct, id)?;
                if cur.subscribed == mb.subscribed {
                    return Ok(());
                }
                cur.subscribed = mb.subscribed;
                txn.put(k_mbox(acct, id), to_json(&cur));
                // isSubscribed is a Mailbox property (RFC 8621 §2): the
                // change is JMAP's too (Mailbox/changes, queryChanges).
                let mut st = account_state(txn, acct)?;
                log_mailboxes_changed(txn, acct, &mut st, vec![id]);
                Ok(())
            })
            .await
            .map_err(map_err)?;
        // NOTIFY's SubscriptionChange listens here too.
        self.notify(acct);
        Ok(())
    }

    /// Copies (or moves) messages `uids` of mailbox `src` into `dst`.
    /// Returns the destination UIDVALIDITY and (source UID, new UID) pairs.
    pub async fn copy_messages(
        &self,
        acct: u32,
        src: u32,
        uids: Vec<u32>,
        dst: u32,
        is_move: bool,
    ) -> Result<(u32, Vec<(u32, u32)>)> {
        let blobs = self.blobs.clone();
        let junk = self.junk.clone();
        let out = self
            .store
            .transact(move |txn| {
                let mut st = account_state(txn, acct)?;
                let mut dmb: Mailbox = mailbox_in(txn, acct, dst)?;
                // What the user says by this: Junk in or out.
                let source = if junk.is_on() {
                    txn.get(&k_mbox(acct, src))?
                } else {
                    None
                };
                let verdict = match source {
                    Some(v) => {
                        let smb: Mailbox = from_json(&v)?;
                        if is_move {
                            super::junk::move_verdict(&[&smb], &[&dmb])
                        } else {
                            super::junk::move_verdict(&[&smb], &[&smb, &dmb])
                        }
                    }
                    None => None,
                };
                let mut pairs = Vec::new();
                let mut updated = Vec::new();
                let mut created = Vec::new();
                let mut entries = Vec::new();
                for uid in uids {
                    if let Some(v) = txn.get(&k_uid(acct, src, uid))? {
                        let email = u64::from_be_bytes(v[0..8].try_into().expect("8 bytes"));
                        entries.push((uid, email));
                    }
                }
                if entries.is_empty() {
                    return Ok((dmb.uidvalidity, pairs));
                }
                let change_placeholder = Change {
                    created: vec![],
                    updated: vec![],
                    destroyed: vec![],
                    mailboxes: vec![src, dst],
                    ..Default::default()
                };
                let modseq = log_change(txn, acct, &mut st, &change_placeholder);
                for (uid, email) in entries {
                    let fkey = k_email(b'F', acct, email);
                    let Some(v) = txn.get(&fkey)? else { continue };
                    let mut es: EmailState = from_json(&v)?;
                    let new_uid = dmb.uidnext;
                    dmb.uidnext += 1;
                    if es.mailboxes.iter().any(|&(mb, _)| mb == dst) && !is_move {
                        // Already there: an independent copy.
                        let meta_v = txn
                            .get(&k_email(b'E', acct, email))?
                            .ok_or_else(|| abort("message vanished"))?;
                        let meta: EmailMeta = from_json(&meta_v)?;
                        let data = blobs_get_for_copy(txn, &meta)?;
                        blobs.add_ref(txn, &meta.blob, &data)?;
                        st.next_email += 1;
                        let copy = st.next_email;
                        st.used_bytes += meta.size;
                        st.messages += 1;
                        txn.put(k_email(b'E', acct, copy), meta_v);
                        txn.put(k_email(b'J', acct, copy), super::FTS_ADD.to_vec());
                        let nes = EmailState {
                            keywords: es.keywords.clone(),
                            mailboxes: vec![(dst, new_uid)],
                            modseq,
                        };
                        txn.put(k_email(b'F', acct, copy), to_json(&nes));
                        txn.put(
                            k_uid(acct, dst, new_uid),
                            encode_uid_entry(copy, modseq, &nes.keywords, Some(now())),
                        );
                        created.push(copy);
                        if let Some(spam) = verdict {
                            junk.mark(txn, acct, copy, spam);
                        }
                    } else {
                        if is_move {
                            es.mailboxes.retain(|&(mb, u)| !(mb == src && u == uid));
                            txn.delete(k_uid(acct, src, uid));
                        }
                        es.mailboxes.push((dst, new_uid));
                        es.modseq = modseq;
                        txn.put(
                            k_uid(acct, dst, new_uid),
                            encode_uid_entry(email, modseq, &es.keywords, Some(now())),
                        );
                        txn.put(fkey, to_json(&es));
                        updated.push(email);
                        if let Some(spam) = verdict {
                            junk.mark(txn, acct, email, spam);
                        }
                    }
                    pairs.push((uid, new_uid));
                }
                let change = Change {
                    created,
                    updated,
                    destroyed: vec![],
                    mailboxes: vec![src, dst],
                    ..Default::default()
                };
                let mut ck = k_acct(b'C', acct);
                ck.extend_from_slice(&st.state.to_be_bytes());
                txn.put(ck, to_json(&change));
                dmb.highest_modseq = modseq;
                txn.put(k_mbox(acct, dst), to_json(&dmb));
                if is_move && src != dst {
                    let mut smb: Mailbox = mailbox_in(txn, acct, src)?;
                    smb.highest_modseq = modseq;
                    txn.put(k_mbox(acct, src), to_json(&smb));
                }
                txn.put(k_acct(b'K', acct), to_json(&st));
                Ok((dmb.uidvalidity, pairs))
            })
            .await
            .map_err(map_err)?;
        // Copies are new arrivals in the destination (RFC 3501 §6.4.7:
        // \Recent in the copy).
        if let Some(&(_, first)) = out.1.iter().min_by_key(|p| p.1) {
            self.note_arrival(acct, dst, first);
        }
        self.notify(acct);
        Ok(out)
    }
}

impl MailStore {
    /// Puts an email in exactly `boxes` (JMAP's mailboxIds replaced,
    /// RFC 8621 §4.6) in one transaction: memberships it lacks are added
    /// (keeping its keywords), the others removed. Done as copy then
    /// expunge, a concurrent IMAP MOVE in between could leave the email
    /// in two mailboxes. `Ok(false)` when the email is gone; a mailbox
    /// that does not exist is `MailError::NotFound`.
    pub async fn set_mailboxes(&self, acct: u32, email: u64, boxes: Vec<u32>) -> Result<bool> {
        if boxes.is_empty() {
            return Err(MailError::Invalid(
                "an email is in at least one mailbox".into(),
            ));
        }
        let junk = self.junk.clone();
        let out = self
            .store
            .transact(move |txn| {
                let fkey = k_email(b'F', acct, email);
                let Some(v) = txn.get(&fkey)? else {
                    return Ok(None);
                };
                let mut es: EmailState = from_json(&v)?;
                let old: Vec<u32> = es.mailboxes.iter().map(|p| p.0).collect();
                let mut st = account_state(txn, acct)?;
                let adds: Vec<u32> = boxes
                    .iter()
                    .copied()
                    .filter(|b| !es.mailboxes.iter().any(|(m, _)| m == b))
                    .collect();
                let drops: Vec<(u32, u32)> = es
                    .mailboxes
                    .iter()
                    .copied()
                    .filter(|(m, _)| !boxes.contains(m))
                    .collect();
                if adds.is_empty() && drops.is_empty() {
                    return Ok(Some(Vec::new()));
                }
                let mut touched: Vec<u32> = adds
                    .iter()
                    .copied()
                    .chain(drops.iter().map(|d| d.0))
                    .collect();
                touched.sort_unstable();
                touched.dedup();
                let modseq = log_change(
                    txn,
                    acct,
                    &mut st,
                    &Change {
                        updated: vec![email],
                        mailboxes: touched.clone(),
                        ..Default::default()
                    },
                );
                let mut arrivals = Vec::new();
                for mb in touched {
                    let mut m: Mailbox = mailbox_in(txn, acct, mb)?;
                    if adds.contains(&mb) {
                        let uid = m.uidnext;
                        m.uidnext += 1;
                        txn.put(
                            k_uid(acct, mb, uid),
                            encode_uid_entry(email, modseq, &es.keywords, Some(now())),
                        );
                        es.mailboxes.push((mb, uid));
                        arrivals.push((mb, uid));
                    }
                    m.highest_modseq = modseq;
                    txn.put(k_mbox(acct, mb), to_json(&m));
                }
                for (mb, uid) in &drops {
                    txn.delete(k_uid(acct, *mb, *uid));
                }
                es.mailboxes.retain(|p| !drops.contains(p));
                es.modseq = modseq;
                txn.put(fkey, to_json(&es));
                // Mailboxes that are gone say nothing.
                let read = |ids: &[u32]| -> std::result::Result<Vec<Mailbox>, StoreError> {
                    let mut out = Vec::new();
                    for id in ids {
                        if let Some(v) = txn.get(&k_mbox(acct, *id))? {
                            out.push(from_json(&v)?);
                        }
                    }
                    Ok(out)
                };
                let (before, after) = if junk.is_on() {
                    (read(&old)?, read(&boxes)?)
                } else {
                    (Vec::new(), Vec::new())
                };
                let (before, after): (Vec<&Mailbox>, Vec<&Mailbox>) =
                    (before.iter().collect(), after.iter().collect());
                if let Some(spam) = super::junk::move_verdict(&before, &after) {
                    junk.mark(txn, acct, email, spam);
                }
                txn.put(k_acct(b'K', acct), to_json(&st));
                Ok(Some(arrivals))
            })
            .await
            .map_err(|e| match e {
                StoreError::Aborted(m) => MailError::NotFound(m),
                other => MailError::Store(other),
            })?;
        let Some(arrivals) = out else {
            return Ok(false);
        };
        for (mb, uid) in arrivals {
            self.note_arrival(acct, mb, uid);
        }
        self.notify(acct);
        Ok(true)
    }
}

/// The content of a blob, for a reference added inside a transaction (the
/// blob store rewrites a file blob only if it vanished).
fn blobs_get_for_copy(
    txn: &mut Txn<'_>,
    meta: &EmailMeta,
) -> std::result::Result<Vec<u8>, StoreError> {
    let mut k = vec![b'B'];
    k.extend_from_slice(meta.blob.as_bytes());
    // Inline blobs are in the store; file blobs exist while referenced, and
    // `add_ref` only needs the bytes when the count was zero.
    Ok(txn.get(&k)?.unwrap_or_default())
}
