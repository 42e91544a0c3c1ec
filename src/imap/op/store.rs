//! STORE and UID STORE (RFC 9051 §6.4.6).

use std::collections::{HashMap, HashSet};

use crate::imap::proto::args::{parse_flags, SeqSet};
use crate::imap::proto::Token;
use crate::imap::session::{Reply, Session};
use crate::mail::FlagOp;

use super::mailbox::unavailable;

impl Session {
    pub(crate) async fn cmd_store(&mut self, args: &[Token], uid_mode: bool) -> Reply {
        let Some(set) = args
            .first()
            .and_then(|t| t.as_string())
            .and_then(|s| SeqSet::parse(&s))
        else {
            return "BAD Invalid sequence set".into();
        };
        // RFC 7162 §3.1.3: STORE set (UNCHANGEDSINCE n) item flags.
        let mut unchanged_since = None;
        let mut args = args.to_vec();
        if let Some(Token::List(m)) = args.get(1) {
            let name = m.first().and_then(|t| t.as_string()).unwrap_or_default();
            let value = m
                .get(1)
                .and_then(|t| t.as_string())
                .and_then(|v| v.parse::<u64>().ok());
            match (name.eq_ignore_ascii_case("UNCHANGEDSINCE"), value, m.len()) {
                (true, Some(n), 2) => unchanged_since = Some(n),
                _ => return "BAD Unknown STORE modifier".into(),
            }
            self.enable_condstore();
            args.remove(1);
        }
        if args.len() < 3 {
            return "BAD STORE needs a sequence set, an item and flags".into();
        }
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
        let acct = self.sel_owner();
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
        // RFC 4314 §4: \Seen needs `s`, \Deleted `t`, other flags `w`.
        // A STORE goes ahead with the flags the user may change and fails
        // only if that is none of those named (§4: "SHOULD NOT fail").
        let rights = sel.rights.clone();
        let may = |f: &String| rights.has(super::acl::flag_right(f));
        let mut also_remove = Vec::new();
        let (op, flags) = if ['s', 't', 'w'].iter().all(|&r| rights.has(r)) {
            (op, flags)
        } else {
            let kept: Vec<String> = flags.iter().filter(|f| may(f)).cloned().collect();
            match op {
                FlagOp::Set => {
                    // Flags the user may not change stay as they are; the
                    // others become those named.
                    if unchanged_since.is_some() || !['s', 't', 'w'].iter().any(|&r| rights.has(r))
                    {
                        return "NO [NOPERM] You lack the rights to replace these flags".into();
                    }
                    let wanted: HashSet<u32> = uids.iter().copied().collect();
                    for m in sel.msgs.iter().filter(|m| wanted.contains(&m.uid)) {
                        for f in m.flags.iter().filter(|f| may(f) && !flags.contains(f)) {
                            if !also_remove.contains(f) {
                                also_remove.push(f.clone());
                            }
                        }
                    }
                    (FlagOp::Add, kept)
                }
                _ if kept.is_empty() && !flags.is_empty() => {
                    let r = super::acl::flag_right(&flags[0]);
                    return format!("NO [NOPERM] You lack the {r} right for these flags");
                }
                _ => (op, kept),
            }
        };
        let mbox = sel.mailbox.id;
        let (mut changed, mut modified) = match self
            .core
            .mail
            .store_flags(acct, mbox, uids.clone(), op, flags.clone(), unchanged_since)
            .await
        {
            Ok(c) => c,
            Err(e) => return unavailable(e),
        };
        // RFC 7162 §3.1.12: +FLAGS/-FLAGS UNCHANGEDSINCE does not fail a
        // message whose mod-sequence moved while the flags it names are
        // as this client last saw them (another flag changed); those are
        // stored without the condition. UNCHANGEDSINCE 0 always fails: a
        // system flag always exists (§3.1.3).
        let mut spared = Vec::new();
        if let (Some(1..), FlagOp::Add | FlagOp::Remove, false) =
            (unchanged_since, op, modified.is_empty())
        {
            let now = match self.core.mail.uids(acct, mbox).await {
                Ok(n) => n,
                Err(e) => return unavailable(e),
            };
            let sel = self.selected.as_ref().expect("selected");
            let seen: HashMap<u32, &[String]> =
                sel.msgs.iter().map(|m| (m.uid, &m.flags[..])).collect();
            let has = |l: &[String], f: &str| l.iter().any(|x| x.eq_ignore_ascii_case(f));
            for db in now.iter().filter(|e| modified.contains(&e.uid)) {
                if let Some(cached) = seen.get(&db.uid) {
                    if flags.iter().all(|f| has(&db.flags, f) == has(cached, f)) {
                        spared.push(db.uid);
                    }
                }
            }
            modified.retain(|u| !spared.contains(u));
        }
        let mut more_steps = Vec::new();
        if !spared.is_empty() {
            more_steps.push((spared, op, flags));
        }
        if !also_remove.is_empty() {
            more_steps.push((uids.clone(), FlagOp::Remove, also_remove));
        }
        for (set, op, flags) in more_steps {
            match self
                .core
                .mail
                .store_flags(acct, mbox, set, op, flags, None)
                .await
            {
                Ok((more, _)) => {
                    changed.retain(|c| !more.iter().any(|m| m.0 == c.0));
                    changed.extend(more);
                }
                Err(e) => return unavailable(e),
            }
        }
        let sel = self.selected.as_mut().expect("selected");
        for (uid, flags, modseq) in &changed {
            if let Some(m) = std::sync::Arc::make_mut(&mut sel.msgs)
                .iter_mut()
                .find(|m| m.uid == *uid)
            {
                m.flags = flags.clone();
                m.modseq = *modseq;
            }
        }
        // One change of this STORE's, right after the view's: the view is
        // current.
        if let Some(&(_, _, m)) = changed.first() {
            if changed.iter().all(|c| c.2 == m) && sel.is_next_change(m) {
                sel.mailbox.highest_modseq = m;
            }
        }
        let changed_uids: HashSet<u32> = changed.iter().map(|c| c.0).collect();
        let positions: Vec<usize> = sel
            .msgs
            .iter()
            .enumerate()
            .filter(|(_, m)| changed_uids.contains(&m.uid))
            .map(|(i, _)| i)
            .collect();
        let new = self.unannounced(&positions);
        self.announce_keywords(new);
        let sel = self.selected.as_ref().expect("selected");
        // The messages the STORE changed get a FETCH (with .SILENT only
        // under CONDSTORE, for their new MODSEQ: RFC 7162 §3.1.3); the
        // others addressed get one too unless .SILENT.
        let condstore = self.condstore;
        let mut lines = Vec::new();
        let mut modified_ids = Vec::new();
        let wanted: HashSet<u32> = uids.iter().copied().collect();
        let modified: HashSet<u32> = modified.into_iter().collect();
        for (i, m) in sel.msgs.iter().enumerate() {
            if modified.contains(&m.uid) {
                modified_ids.push(if uid_mode { m.uid } else { i as u32 + 1 });
                // RFC 7162 §3.1.3 (RECOMMENDED): what the message is now,
                // so the client need not ask.
                lines.push(format!(
                    "{} FETCH (UID {} FLAGS ({}) MODSEQ ({}))",
                    i + 1,
                    m.uid,
                    crate::imap::session::flag_list(&m.flags, sel.recent.contains(&m.uid)),
                    m.modseq.max(1)
                ));
                continue;
            }
            if !wanted.contains(&m.uid) {
                continue;
            }
            let was_changed = changed_uids.contains(&m.uid);
            if silent && !(condstore && was_changed) {
                continue;
            }
            // RFC 7162 §3.2.4: with CONDSTORE, every FETCH carries UID.
            let uid_part = if uid_mode || condstore {
                format!("UID {} ", m.uid)
            } else {
                String::new()
            };
            let flags_part = if silent {
                String::new()
            } else {
                format!(
                    "FLAGS ({})",
                    crate::imap::session::flag_list(&m.flags, sel.recent.contains(&m.uid))
                )
            };
            let modseq_part = match (condstore, silent) {
                (false, _) => String::new(),
                (true, true) => format!("MODSEQ ({})", m.modseq.max(1)),
                (true, false) => format!(" MODSEQ ({})", m.modseq.max(1)),
            };
            lines.push(format!(
                "{} FETCH ({uid_part}{flags_part}{modseq_part})",
                i + 1
            ));
        }
        for l in lines {
            self.untagged(&l);
        }
        let done = if uid_mode { "UID STORE" } else { "STORE" };
        if modified_ids.is_empty() {
            format!("OK {done} completed")
        } else {
            let set = modified_ids
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(",");
            format!("OK [MODIFIED {set}] Conditional {done} failed for some messages")
        }
    }
}
