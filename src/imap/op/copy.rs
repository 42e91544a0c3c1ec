//! COPY, MOVE and their UID forms (RFC 9051 §6.4.7-6.4.8, RFC 6851), with
//! COPYUID (RFC 4315).

use super::mailbox::unavailable;
use crate::imap::proto::args::SeqSet;
use crate::imap::proto::Token;
use crate::imap::session::{Reply, Session};
use crate::mail::{Folder, IngestRequest, IngestTarget, MailError};

fn uid_list(uids: &[u32]) -> String {
    uids.iter()
        .map(|u| u.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

impl Session {
    /// Copies messages of the selected mailbox into a mailbox of another
    /// account, through that account's ingest (its quota, its index).
    /// All or none: on a failure the copies made are removed again.
    async fn copy_across(
        &self,
        src_owner: u32,
        uids: &[u32],
        target: &super::acl::Target,
    ) -> Result<(u32, Vec<(u32, u32)>), Reply> {
        let owner = match self.core.directory.account_by_id(target.owner).await {
            Ok(Some(a)) => a,
            Ok(None) => return Err("NO [NONEXISTENT] The mailbox's owner is gone".into()),
            Err(e) => return Err(unavailable(e)),
        };
        let sel = self.selected.as_ref().expect("selected");
        let mut pairs = Vec::new();
        let mut validity = target.mailbox.uidvalidity;
        for &uid in uids {
            let Some(entry) = sel.msgs.iter().find(|m| m.uid == uid) else {
                continue;
            };
            let (meta, raw) = self
                .load_message(src_owner, entry.email, true, true)
                .await?;
            let (Some(meta), Some(raw)) = (meta, raw) else {
                continue; // expunged meanwhile
            };
            let res = self
                .core
                .mail
                .ingest(IngestRequest {
                    raw,
                    targets: vec![IngestTarget {
                        account: target.owner,
                        folder: Folder::Id(target.mailbox.id),
                        flags: entry
                            .flags
                            .iter()
                            .filter(|f| target.rights.has(super::acl::flag_right(f)))
                            .cloned()
                            .collect(),
                        quota_bytes: owner.quota_bytes,
                        quota_messages: owner.quota_messages,
                    }],
                    received_at: Some(meta.received_at),
                })
                .await;
            match res {
                Ok(out) => {
                    validity = out[0].uidvalidity;
                    pairs.push((uid, out[0].uid));
                }
                Err(e) => {
                    let made: Vec<u32> = pairs.iter().map(|p: &(u32, u32)| p.1).collect();
                    if !made.is_empty() {
                        let _ = self
                            .core
                            .mail
                            .remove_messages(target.owner, target.mailbox.id, made)
                            .await;
                    }
                    return Err(match e {
                        MailError::OverQuota => "NO [OVERQUOTA] The owner's quota is full".into(),
                        e => unavailable(e),
                    });
                }
            }
        }
        Ok((validity, pairs))
    }

    pub(crate) async fn cmd_copy(
        &mut self,
        args: &[Token],
        uid_mode: bool,
        is_move: bool,
    ) -> Reply {
        let name = if is_move { "MOVE" } else { "COPY" };
        let (Some(set), Some(dest)) = (
            args.first().and_then(|t| t.as_string()),
            self.mailbox_arg(args.get(1)),
        ) else {
            return format!("BAD {name} needs a sequence set and a mailbox");
        };
        let Some(set) = SeqSet::parse(&set) else {
            return "BAD Invalid sequence set".into();
        };
        let acct = self.sel_owner();
        let sel = self
            .selected
            .as_ref()
            .expect("selected state checked by dispatch");
        if is_move && sel.read_only {
            return "NO [READ-ONLY] Mailbox is read-only".into();
        }
        // RFC 4314 §4 (and RFC 6851 §3.2): moving out needs `t` and `e`.
        if is_move && !(sel.rights.has('t') && sel.rights.has('e')) {
            return "NO [NOPERM] You may not move messages out of this mailbox".into();
        }
        let uids: Vec<u32> = match self.resolve_set(&set, uid_mode) {
            Ok(p) => p.into_iter().map(|i| sel.msgs[i].uid).collect(),
            Err(r) => return r,
        };
        let src = sel.mailbox.id;
        let target = match self.resolve(&dest).await {
            Ok(Some(t)) => t,
            Ok(None) => return "NO [TRYCREATE] No such mailbox".into(),
            Err(r) => return r,
        };
        if !target.rights.has('i') {
            return "NO [NOPERM] You may not add messages to that mailbox".into();
        }
        if uids.is_empty() {
            return format!("OK {name} completed (nothing to do)");
        }
        let (validity, pairs) = if target.owner == acct {
            match self
                .core
                .mail
                .copy_messages(acct, src, uids, target.mailbox.id, is_move)
                .await
            {
                Ok(r) => r,
                Err(e) => return unavailable(e),
            }
        } else {
            // Into another account's mailbox: a new message there.
            let r = match self.copy_across(acct, &uids, &target).await {
                Ok(r) => r,
                Err(r) => return r,
            };
            if is_move {
                let from: Vec<u32> = r.1.iter().map(|p| p.0).collect();
                if let Err(e) = self.core.mail.remove_messages(acct, src, from).await {
                    return unavailable(e);
                }
            }
            r
        };
        let (from, to): (Vec<u32>, Vec<u32>) = pairs.iter().copied().unzip();
        let code = format!("COPYUID {validity} {} {}", uid_list(&from), uid_list(&to));
        // RFC 9051 §6.4.7: no COPYUID for a mailbox the user may add to but
        // not read.
        let readable = target.rights.has('r');
        if !is_move {
            return if readable {
                format!("OK [{code}] {name} completed")
            } else {
                format!("OK {name} completed")
            };
        }
        // RFC 6851 §4.3: COPYUID in an untagged OK, then the expunges.
        if readable {
            let line = format!("OK [{code}] Moved");
            self.untagged(&line);
        }
        // Into the same mailbox too: the message gets a new UID and the old
        // one is expunged (RFC 6851 §3.3), so it is never doubled.
        let qresync = self.qresync;
        let sel = self.selected.as_mut().expect("selected");
        let mut lines = Vec::new();
        for uid in &from {
            if let Some(i) = sel.msgs.iter().position(|m| m.uid == *uid) {
                std::sync::Arc::make_mut(&mut sel.msgs).remove(i);
                lines.push(format!("{} EXPUNGE", i + 1));
            }
        }
        if qresync && !from.is_empty() {
            let mut gone = from.clone();
            gone.sort_unstable();
            lines = vec![format!("VANISHED {}", super::search::compress(&gone))];
        }
        for l in lines {
            self.untagged(&l);
        }
        // RFC 6851 §4.4: under QRESYNC, the source's new mod-sequence.
        if qresync && !from.is_empty() {
            if let Ok(Some(mb)) = self.core.mail.mailbox(acct, src).await {
                return format!("OK [HIGHESTMODSEQ {}] {name} completed", mb.highest_modseq);
            }
        }
        format!("OK {name} completed")
    }
}
