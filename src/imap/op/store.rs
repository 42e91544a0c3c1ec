//! STORE and UID STORE (RFC 9051 §6.4.6).

use crate::imap::proto::args::{parse_flags, SeqSet};
use crate::imap::proto::Token;
use crate::imap::session::{Reply, Session};
use crate::mail::FlagOp;

use super::mailbox::unavailable;

impl Session {
    pub(crate) async fn cmd_store(&mut self, args: &[Token], uid_mode: bool) -> Reply {
        if args.len() < 3 {
            return "BAD STORE needs a sequence set, an item and flags".into();
        }
        let Some(set) = args[0].as_string().and_then(|s| SeqSet::parse(&s)) else {
            return "BAD Invalid sequence set".into();
        };
        let item = args[1].as_string().unwrap_or_default().to_ascii_uppercase();
        let (op, silent) = match item.as_str() {
            "FLAGS" => (FlagOp::Set, false),
            "FLAGS.SILENT" => (FlagOp::Set, true),
            "+FLAGS" => (FlagOp::Add, false),
            "+FLAGS.SILENT" => (FlagOp::Add, true),
            "-FLAGS" => (FlagOp::Remove, false),
            "-FLAGS.SILENT" => (FlagOp::Remove, true),
            _ => return format!("BAD Unknown STORE item {item}"),
        };
        let flags_tok = if args.len() == 3 {
            args[2].clone()
        } else {
            Token::List(args[2..].to_vec())
        };
        let flags = match parse_flags(&flags_tok) {
            Ok(f) => f,
            Err(e) => return format!("BAD {e}"),
        };
        let acct = self.account.as_ref().map(|a| a.id).unwrap_or(0);
        let sel = self
            .selected
            .as_ref()
            .expect("selected state checked by dispatch");
        if sel.read_only {
            return "NO [READ-ONLY] Mailbox is read-only".into();
        }
        let uids: Vec<u32> = match self.resolve_set(&set, uid_mode) {
            Ok(p) => p.into_iter().map(|i| sel.msgs[i].uid).collect(),
            Err(r) => return r,
        };
        let mbox = sel.mailbox.id;
        let changed = match self
            .core
            .mail
            .store_flags(acct, mbox, uids.clone(), op, flags)
            .await
        {
            Ok(c) => c,
            Err(e) => return unavailable(e),
        };
        let sel = self.selected.as_mut().expect("selected");
        for (uid, flags, modseq) in &changed {
            if let Some(m) = sel.msgs.iter_mut().find(|m| m.uid == *uid) {
                m.flags = flags.clone();
                m.modseq = *modseq;
            }
        }
        if !silent {
            // Report the resulting flags of every addressed message.
            let mut lines = Vec::new();
            for (i, m) in sel.msgs.iter().enumerate() {
                if uids.contains(&m.uid) {
                    let uid_part = if uid_mode {
                        format!("UID {} ", m.uid)
                    } else {
                        String::new()
                    };
                    lines.push(format!(
                        "{} FETCH ({uid_part}FLAGS ({}))",
                        i + 1,
                        m.flags.join(" ")
                    ));
                }
            }
            for l in lines {
                self.untagged(&l);
            }
        }
        if uid_mode {
            "OK UID STORE completed".into()
        } else {
            "OK STORE completed".into()
        }
    }
}
