//! COPY, MOVE and their UID forms (RFC 9051 §6.4.7-6.4.8, RFC 6851), with
//! COPYUID (RFC 4315).

use super::mailbox::unavailable;
use crate::imap::proto::args::SeqSet;
use crate::imap::proto::Token;
use crate::imap::session::{Reply, Session};

fn uid_list(uids: &[u32]) -> String {
    uids.iter()
        .map(|u| u.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

impl Session {
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
        let acct = self.account.as_ref().map(|a| a.id).unwrap_or(0);
        let sel = self
            .selected
            .as_ref()
            .expect("selected state checked by dispatch");
        if is_move && sel.read_only {
            return "NO [READ-ONLY] Mailbox is read-only".into();
        }
        let uids: Vec<u32> = match self.resolve_set(&set, uid_mode) {
            Ok(p) => p.into_iter().map(|i| sel.msgs[i].uid).collect(),
            Err(r) => return r,
        };
        let src = sel.mailbox.id;
        let dst = match self.core.mail.mailbox_by_name(acct, &dest).await {
            Ok(Some(m)) => m,
            Ok(None) => return "NO [TRYCREATE] No such mailbox".into(),
            Err(e) => return unavailable(e),
        };
        if uids.is_empty() {
            return format!("OK {name} completed (nothing to do)");
        }
        let (validity, pairs) = match self
            .core
            .mail
            .copy_messages(acct, src, uids, dst.id, is_move)
            .await
        {
            Ok(r) => r,
            Err(e) => return unavailable(e),
        };
        let (from, to): (Vec<u32>, Vec<u32>) = pairs.iter().copied().unzip();
        let code = format!("COPYUID {validity} {} {}", uid_list(&from), uid_list(&to));
        if !is_move {
            return format!("OK [{code}] {name} completed");
        }
        // RFC 6851 §4.3: COPYUID in an untagged OK, then the expunges.
        let line = format!("OK [{code}] Moved");
        self.untagged(&line);
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
        format!("OK {name} completed")
    }
}
