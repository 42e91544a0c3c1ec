//! SELECT / EXAMINE (RFC 9051 §6.3.2-3), LIST / LSUB (§6.3.9), STATUS
//! (§6.3.11), CLOSE (§6.4.1), UNSELECT (RFC 3691), EXPUNGE (§6.4.3) and
//! UID EXPUNGE (RFC 4315).

use crate::imap::proto::args::SeqSet;
use crate::imap::proto::Token;
use crate::imap::session::{Reply, Selected, Session};
use crate::mail::mime::istring;
use crate::mail::Mailbox;

const SYSTEM_FLAGS: &str = "\\Answered \\Flagged \\Deleted \\Seen \\Draft";

/// A mailbox name as stored: INBOX is case-insensitive, a trailing
/// separator goes.
fn normalize_name(s: String) -> String {
    if s.eq_ignore_ascii_case("INBOX") {
        "INBOX".into()
    } else {
        s.trim_end_matches('/').to_string()
    }
}

impl Session {
    /// A name from the client in UTF-8: decoded from modified UTF-7 unless
    /// the session uses UTF-8 names. `None`: missing or not valid.
    pub(crate) fn name_from_client(&self, s: String) -> Option<String> {
        if self.utf8_names {
            Some(s)
        } else {
            crate::imap::proto::utf7::decode(&s)
        }
    }

    /// A mailbox name argument, decoded and normalised.
    pub(crate) fn mailbox_arg(&self, t: Option<&Token>) -> Option<String> {
        let s = t?.as_string()?;
        self.name_from_client(s).map(normalize_name)
    }

    /// A stored name as this session writes it, quoted or as a literal.
    pub(crate) fn wire_name(&self, name: &str) -> String {
        if self.utf8_names {
            istring(name)
        } else {
            istring(&crate::imap::proto::utf7::encode(name))
        }
    }
}

/// LIST wildcard match (RFC 9051 §6.3.9): `*` matches anything, `%`
/// anything but the hierarchy separator.
pub fn matches(pattern: &[u8], name: &[u8]) -> bool {
    fn go(p: &[u8], n: &[u8], budget: &mut u32) -> bool {
        if *budget == 0 {
            return false;
        }
        *budget -= 1;
        match p.first() {
            None => n.is_empty(),
            Some(b'*') => (0..=n.len()).any(|i| go(&p[1..], &n[i..], budget)),
            Some(b'%') => {
                let limit = n.iter().position(|&c| c == b'/').unwrap_or(n.len());
                (0..=limit).any(|i| go(&p[1..], &n[i..], budget))
            }
            Some(&c) => n.first() == Some(&c) && go(&p[1..], &n[1..], budget),
        }
    }
    let mut budget = 100_000;
    go(pattern, name, &mut budget)
}

/// Like [`matches`], with the INBOX name case-insensitive.
fn list_matches(pattern: &str, name: &str) -> bool {
    if name == "INBOX"
        && pattern.len() >= 5
        && pattern.is_char_boundary(5)
        && pattern[..5].eq_ignore_ascii_case("INBOX")
    {
        let p = format!("INBOX{}", &pattern[5..]);
        return matches(p.as_bytes(), b"INBOX");
    }
    matches(pattern.as_bytes(), name.as_bytes())
}

/// The role (JMAP's name, stored with the mailbox) of a special-use
/// attribute (RFC 6154 §2), in any case.
pub(crate) fn attr_role(attr: &str) -> Option<&'static str> {
    Some(match attr.to_ascii_lowercase().as_str() {
        "\\drafts" => "drafts",
        "\\sent" => "sent",
        "\\junk" => "junk",
        "\\trash" => "trash",
        "\\archive" => "archive",
        "\\flagged" => "flagged",
        "\\all" => "all",
        _ => return None,
    })
}

pub(crate) fn role_attr(role: Option<&str>) -> Option<&'static str> {
    Some(match role? {
        "drafts" => "\\Drafts",
        "sent" => "\\Sent",
        "junk" => "\\Junk",
        "trash" => "\\Trash",
        "archive" => "\\Archive",
        "flagged" => "\\Flagged",
        "all" => "\\All",
        _ => return None,
    })
}

/// One line of the shared part of a LIST.
struct SharedEntry {
    name: String,
    subscribed: bool,
    /// `None` for a level above shared mailboxes (\Noselect).
    target: Option<super::acl::Target>,
}

impl Session {
    fn acct_id(&self) -> u32 {
        self.account.as_ref().map(|a| a.id).unwrap_or(0)
    }

    pub(crate) async fn cmd_select(&mut self, args: &[Token], examine: bool) -> Reply {
        let Some(name) = self.mailbox_arg(args.first()) else {
            return "BAD SELECT needs a mailbox name".into();
        };
        // SELECT parameters: (CONDSTORE) turns CONDSTORE on (RFC 7162
        // §3.1.8).
        // (QRESYNC (uidvalidity modseq [known-uids])) resynchronises
        // (RFC 7162 §3.2.5); it needs ENABLE QRESYNC first.
        let mut resync: Option<Resync> = None;
        match args.get(1) {
            None => {}
            Some(Token::List(params)) => {
                let mut i = 0;
                while i < params.len() {
                    match params[i].keyword().as_str() {
                        "CONDSTORE" => self.condstore = true,
                        "QRESYNC" if !self.qresync => {
                            return "BAD ENABLE QRESYNC first".into();
                        }
                        "QRESYNC" => {
                            let Some(Token::List(q)) = params.get(i + 1) else {
                                return "BAD QRESYNC needs its parameters".into();
                            };
                            match Resync::parse(q) {
                                Some(r) => resync = Some(r),
                                None => return "BAD Invalid QRESYNC parameters".into(),
                            }
                            i += 1;
                        }
                        _ => return "BAD Unknown SELECT parameters".into(),
                    }
                    i += 1;
                }
            }
            Some(_) => return "BAD Unknown SELECT parameters".into(),
        }
        // A failed SELECT leaves no mailbox selected (RFC 9051 §6.3.2);
        // `$` starts empty in every mailbox (RFC 5182 §2.1).
        if self.selected.take().is_some() {
            // RFC 9051 §7.1: the previous mailbox is closed.
            self.untagged("OK [CLOSED] Previous mailbox closed");
        }
        self.saved.clear();
        let target = match self.resolve(&name).await {
            Ok(Some(t)) => t,
            Ok(None) => return "NO [NONEXISTENT] No such mailbox".into(),
            Err(r) => return r,
        };
        // RFC 4314 §4: reading needs `r`; without any right to change
        // anything the mailbox opens read-only.
        if !target.rights.has('r') {
            return "NO [NOPERM] You may not read this mailbox".into();
        }
        let rights = target.rights;
        let acl_version = self.core.mail.acl_version();
        let read_only = examine || !"swte".chars().any(|c| rights.has(c));
        let acct = target.owner;
        let mb = target.mailbox;
        let msgs = match self.core.mail.view(acct, &mb).await {
            Ok(m) => m,
            Err(e) => return unavailable(e),
        };
        // RFC 3501 §7.2.6: FLAGS names every flag in use here.
        let keywords = new_keywords(&[], msgs.iter().flat_map(|m| m.flags.iter()));
        self.untagged(&flags_response(&keywords));
        let exists = format!("{} EXISTS", msgs.len());
        self.untagged(&exists);
        // RFC 9051 §6.3.2: IMAP4rev2 sessions get the mailbox's LIST line,
        // attributes computed as LIST computes them.
        if self.rev2 {
            if let Some(arg) = args.first() {
                let list_args = [Token::Quoted(Vec::new()), arg.clone()];
                let _ = Box::pin(self.cmd_list(&list_args, false)).await;
            }
        }
        // \Recent (RFC 3501 §2.3.2): SELECT claims what no session has
        // seen yet; EXAMINE shows it without taking it (§6.3.2).
        // IMAP4rev2 has neither \Recent nor the UNSEEN code (RFC 9051
        // Appendix E); rev1 clients still get them.
        let recent: std::collections::HashSet<u32> = if self.rev2 {
            Default::default()
        } else if examine {
            let from = self.core.mail.recent_from(acct, mb.id, mb.uidnext);
            msgs.iter().map(|m| m.uid).filter(|&u| u >= from).collect()
        } else {
            let claimed = self.core.mail.claim_recent(acct, mb.id, mb.uidnext);
            msgs.iter()
                .map(|m| m.uid)
                .filter(|u| claimed.contains(u))
                .collect()
        };
        if !self.rev2 {
            let l = format!("{} RECENT", recent.len());
            self.untagged(&l);
            if let Some(first_unseen) = msgs
                .iter()
                .position(|m| !m.flags.iter().any(|f| f == "\\Seen"))
            {
                let l = format!("OK [UNSEEN {}] First unseen", first_unseen + 1);
                self.untagged(&l);
            }
        }
        let l = format!("OK [UIDVALIDITY {}] UIDs valid", mb.uidvalidity);
        self.untagged(&l);
        let l = format!("OK [UIDNEXT {}] Predicted next UID", mb.uidnext);
        self.untagged(&l);
        let l = format!("OK [MAILBOXID (M{})] Ok", mb.id);
        self.untagged(&l);
        // RFC 7162 §3.1.2.1: mod-sequences are kept for every mailbox.
        let l = format!("OK [HIGHESTMODSEQ {}] Highest", mb.highest_modseq.max(1));
        self.untagged(&l);
        let l = permanent_flags(&rights, read_only, &keywords);
        self.untagged(&l);
        // Changes since what the client knows; nothing when UIDVALIDITY
        // differs (§3.2.5).
        let resync_lines = match resync.filter(|r| r.uidvalidity == mb.uidvalidity) {
            Some(r) => r.lines(&msgs, mb.uidnext),
            None => Vec::new(),
        };
        self.selected = Some(Selected {
            owner: acct,
            rights,
            mailbox: mb,
            read_only,
            examine,
            acl_version,
            keywords,
            recent,
            msgs,
        });
        for l in resync_lines {
            self.untagged(&l);
        }
        let name = if examine { "EXAMINE" } else { "SELECT" };
        if read_only {
            format!("OK [READ-ONLY] {name} completed")
        } else {
            format!("OK [READ-WRITE] {name} completed")
        }
    }

    /// LIST and LSUB (RFC 9051 §6.3.9), with LIST-EXTENDED selection and
    /// return options (RFC 5258), several patterns, SPECIAL-USE (RFC 6154)
    /// and RETURN (STATUS ...) (RFC 5819).
    pub(crate) async fn cmd_list(&mut self, args: &[Token], lsub: bool) -> Reply {
        let cmd = if lsub { "LSUB" } else { "LIST" };
        let bad = |why: &str| format!("BAD {cmd}: {why}");
        let arg_count = args.len();
        let mut args = args;
        // LIST (selection options) reference patterns [RETURN (options)]
        let mut select = ListOptions::default();
        if let (false, Some(Token::List(opts))) = (lsub, args.first()) {
            for o in opts {
                match o.keyword().as_str() {
                    "SUBSCRIBED" => select.subscribed = true,
                    "REMOTE" => {}
                    "RECURSIVEMATCH" => select.recursive = true,
                    "SPECIAL-USE" => select.special_use = true,
                    other => return bad(&format!("unknown selection option {other}")),
                }
            }
            // RECURSIVEMATCH needs another selection option (RFC 5258 §3.1).
            if select.recursive && !(select.subscribed || select.special_use) {
                return bad("RECURSIVEMATCH needs another selection option");
            }
            args = &args[1..];
        }
        let Some(reference) = args
            .first()
            .and_then(|t| t.as_string())
            .and_then(|r| self.name_from_client(r))
        else {
            return bad("needs a reference and a mailbox pattern");
        };
        let patterns: Vec<String> = match args.get(1) {
            Some(Token::List(ps)) if !lsub => match ps.iter().map(|p| p.as_string()).collect() {
                Some(v) => v,
                None => return bad("patterns are strings"),
            },
            Some(t) => match t.as_string() {
                Some(p) => vec![p],
                None => return bad("needs a mailbox pattern"),
            },
            None => return bad("needs a reference and a mailbox pattern"),
        };
        // RFC 5258 §3: an extended LIST (selection options, a list of
        // patterns or return options) ignores patterns it cannot take,
        // and its empty pattern asks for no delimiter.
        let extended = !lsub
            && (matches!(args.get(1), Some(Token::List(_)))
                || args.len() > 2
                || args.len() < arg_count);
        let n = patterns.len();
        let patterns: Vec<String> = patterns
            .into_iter()
            .filter_map(|p| self.name_from_client(p))
            .collect();
        if patterns.len() < n && !extended {
            return bad("a pattern is not valid modified UTF-7");
        }
        let mut ret = ListOptions::default();
        let mut status_items: Option<Vec<Token>> = None;
        match &args[2..] {
            [] => {}
            [Token::Atom(r), Token::List(opts)] if !lsub && r.eq_ignore_ascii_case("RETURN") => {
                let mut i = 0;
                while i < opts.len() {
                    let name = opts[i].keyword();
                    match name.as_str() {
                        "SUBSCRIBED" => ret.subscribed = true,
                        "CHILDREN" => {}
                        "SPECIAL-USE" => ret.special_use = true,
                        "STATUS" => match opts.get(i + 1) {
                            Some(Token::List(items)) => {
                                status_items = Some(items.clone());
                                i += 1;
                            }
                            _ => return bad("RETURN STATUS needs a list of items"),
                        },
                        other => return bad(&format!("unknown return option {other}")),
                    }
                    i += 1;
                }
            }
            _ => return bad("unexpected arguments"),
        }
        if lsub {
            select.subscribed = true;
        }
        if patterns.len() == 1 && patterns[0].is_empty() && !lsub && !extended {
            // RFC 9051 §6.3.9: the hierarchy delimiter and root.
            self.untagged("LIST (\\Noselect) \"/\" \"\"");
            return "OK LIST completed".into();
        }
        let acct = self.acct_id();
        let boxes = match self.core.mail.mailboxes(acct).await {
            Ok(b) => b,
            Err(e) => return unavailable(e),
        };
        let fulls: Vec<String> = patterns.iter().map(|p| format!("{reference}{p}")).collect();
        let matching = |name: &str| fulls.iter().any(|f| list_matches(f, name));
        let selected = |mb: &Mailbox| {
            (!select.subscribed || mb.subscribed)
                && (!select.special_use || role_attr(mb.role.as_deref()).is_some())
        };
        // Subscribed names with no mailbox of their own: a subscription
        // outlives its mailbox (RFC 9051 §6.3.7).
        let orphans: Vec<String> = if select.subscribed || ret.subscribed {
            let mut names: Vec<String> = match self.core.mail.shared_subscriptions(acct).await {
                Ok(n) => n
                    .into_iter()
                    .filter(|n| {
                        !super::acl::is_shared_name(n) && !boxes.iter().any(|b| &b.name == n)
                    })
                    .collect(),
                Err(e) => return unavailable(e),
            };
            names.sort();
            names
        } else {
            Vec::new()
        };
        // RFC 5258 §3.5: with RECURSIVEMATCH, a mailbox with a descendant
        // that meets the selection criteria carries CHILDINFO, whether it
        // meets them itself or not (the table in §3.5).
        let info = if select.subscribed {
            "SUBSCRIBED"
        } else {
            "SPECIAL-USE"
        };
        let childinfo = format!("(\"CHILDINFO\" (\"{info}\"))");
        let has_selected_child = |name: &str| {
            let prefix = format!("{name}/");
            boxes
                .iter()
                .any(|c| c.name.starts_with(&prefix) && selected(c))
                || (select.subscribed && orphans.iter().any(|o| o.starts_with(&prefix)))
        };
        for mb in &boxes {
            if !matching(&mb.name) {
                continue;
            }
            let mut extra = Vec::new();
            let child = select.recursive && has_selected_child(&mb.name);
            if !selected(mb) && !child {
                continue;
            }
            if child {
                extra.push(childinfo.clone());
            }
            let mut line = list_line(
                cmd,
                mb,
                &self.wire_name(&mb.name),
                &boxes,
                select.subscribed || ret.subscribed,
            );
            for e in extra {
                line.push(' ');
                line.push_str(&e);
            }
            self.untagged(&line);
            if let Some(items) = &status_items {
                match self.status_line(acct, mb, &mb.name, items).await {
                    Ok(l) => self.untagged(&l),
                    Err(r) => return r,
                }
            }
        }
        // RFC 5258 §3: every selection option holds; a name without a
        // mailbox has no special use.
        if select.subscribed && !select.special_use {
            // Subscribed names without a mailbox: \NonExistent (RFC 5258
            // §3.4); LSUB shows them as not selectable.
            for name in orphans.iter().filter(|n| matching(n)) {
                let wire = self.wire_name(name);
                let line = if lsub {
                    format!("LSUB (\\Noselect) \"/\" {wire}")
                } else {
                    format!("LIST (\\NonExistent \\Subscribed) \"/\" {wire}")
                };
                self.untagged(&line);
            }
            // Names above subscribed ones that are not listed otherwise:
            // LSUB returns such a parent as \Noselect when `%` stops at
            // it (RFC 3501 §6.3.9); LIST with RECURSIVEMATCH as
            // \NonExistent with CHILDINFO when it does not exist
            // (RFC 5258 §3.5).
            let subscribed: Vec<&str> = boxes
                .iter()
                .filter(|b| b.subscribed)
                .map(|b| b.name.as_str())
                .chain(orphans.iter().map(String::as_str))
                .collect();
            let mut parents: Vec<String> = Vec::new();
            // Only for names the pattern stops above (`%`): a listed
            // descendant needs no stand-in.
            for name in subscribed.iter().filter(|n| !matching(n)) {
                let mut at = 0;
                while let Some(i) = name[at..].find('/') {
                    let parent = &name[..at + i];
                    at += i + 1;
                    let exists = boxes.iter().find(|b| b.name == parent);
                    let listed = subscribed.contains(&parent)
                        || (lsub && exists.is_some_and(|b| b.subscribed))
                        || (!lsub && exists.is_some());
                    if listed || !matching(parent) || parents.iter().any(|p| p == parent) {
                        continue;
                    }
                    if lsub || select.recursive {
                        parents.push(parent.to_string());
                    }
                }
            }
            for p in parents {
                let wire = self.wire_name(&p);
                let line = if lsub {
                    format!("LSUB (\\Noselect) \"/\" {wire}")
                } else {
                    format!("LIST (\\NonExistent) \"/\" {wire} {childinfo}")
                };
                self.untagged(&line);
            }
        }
        // Mailboxes others share with this user (RFC 4314 §4: those it
        // has `l` on), under "Shared/<owner>/", with the levels above
        // them as \Noselect; none has a special use.
        if !select.special_use {
            let shared = match self.shared_listing().await {
                Ok(s) => s,
                Err(r) => return r,
            };
            for e in &shared {
                if !matching(&e.name) || (select.subscribed && !e.subscribed) {
                    continue;
                }
                let prefix = format!("{}/", e.name);
                let children = shared.iter().any(|o| o.name.starts_with(&prefix));
                let mut attrs = vec![if children {
                    "\\HasChildren"
                } else {
                    "\\HasNoChildren"
                }];
                // RFC 9051 §7.3.1, §6.3.9.2: without `r` SELECT fails, so
                // the name is \Noselect (and gets no STATUS below).
                if e.target.as_ref().is_none_or(|t| !t.rights.has('r')) {
                    attrs.insert(0, "\\Noselect");
                }
                if e.subscribed && (select.subscribed || ret.subscribed) && cmd == "LIST" {
                    attrs.push("\\Subscribed");
                }
                let line = format!(
                    "{cmd} ({}) \"/\" {}",
                    attrs.join(" "),
                    self.wire_name(&e.name)
                );
                self.untagged(&line);
                if let (Some(items), Some(t)) = (&status_items, &e.target) {
                    if t.rights.has('r') {
                        match self.status_line(t.owner, &t.mailbox, &e.name, items).await {
                            Ok(l) => self.untagged(&l),
                            Err(r) => return r,
                        }
                    }
                }
            }
        }
        format!("OK {cmd} completed")
    }

    /// What LIST shows of the mailboxes shared with this user: each one
    /// it may see, and the levels above them.
    async fn shared_listing(&self) -> Result<Vec<SharedEntry>, Reply> {
        let me = self.me();
        let grants = self.core.mail.shared_with(me).await.map_err(unavailable)?;
        let subscribed = self
            .core
            .mail
            .shared_subscriptions(me)
            .await
            .map_err(unavailable)?;
        let mut out: Vec<SharedEntry> = Vec::new();
        for g in grants {
            let Some(mb) = self
                .core
                .mail
                .mailbox(g.owner, g.mailbox)
                .await
                .map_err(unavailable)?
            else {
                continue;
            };
            let rights = mb.rights_of(g.owner, me);
            if !rights.has('l') {
                continue;
            }
            let name = self.name_for(g.owner, &mb).await;
            // The levels above: "Shared", "Shared/<owner>", parents.
            let mut at = 0;
            while let Some(i) = name[at..].find('/') {
                let parent = &name[..at + i];
                if !out.iter().any(|e| e.name == parent) {
                    out.push(SharedEntry {
                        name: parent.to_string(),
                        subscribed: subscribed.contains(parent),
                        target: None,
                    });
                }
                at += i + 1;
            }
            out.retain(|e| e.name != name);
            out.push(SharedEntry {
                subscribed: subscribed.contains(&name),
                name,
                target: Some(super::acl::Target {
                    owner: g.owner,
                    mailbox: mb,
                    rights,
                }),
            });
        }
        // A real mailbox that is also a level above another stays real.
        let real: Vec<String> = out
            .iter()
            .filter(|e| e.target.is_some())
            .map(|e| e.name.clone())
            .collect();
        out.retain(|e| e.target.is_some() || !real.contains(&e.name));
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    pub(crate) async fn cmd_status(&mut self, args: &[Token]) -> Reply {
        let Some(name) = self.mailbox_arg(args.first()) else {
            return "BAD STATUS needs a mailbox name".into();
        };
        let Some(Token::List(items)) = args.get(1) else {
            return "BAD STATUS needs a list of status items".into();
        };
        let target = match self.resolve(&name).await {
            Ok(Some(t)) => t,
            Ok(None) => return "NO [NONEXISTENT] No such mailbox".into(),
            Err(r) => return r,
        };
        if !target.rights.has('r') {
            return "NO [NOPERM] You may not read this mailbox".into();
        }
        let line = match self
            .status_line(target.owner, &target.mailbox, &name, items)
            .await
        {
            Ok(l) => l,
            Err(r) => return r,
        };
        self.untagged(&line);
        "OK STATUS completed".into()
    }

    /// A STATUS response for `mb` with the requested items (also sent by
    /// LIST RETURN (STATUS ...), RFC 5819).
    pub(crate) async fn status_line(
        &mut self,
        acct: u32,
        mb: &Mailbox,
        name: &str,
        items: &[Token],
    ) -> Result<String, Reply> {
        let msgs = self
            .core
            .mail
            .uids(acct, mb.id)
            .await
            .map_err(unavailable)?;
        let mut out = Vec::new();
        for it in items {
            let item = it.as_string().unwrap_or_default().to_ascii_uppercase();
            if item == "MAILBOXID" {
                // RFC 8474 §4.
                out.push(format!("MAILBOXID (M{})", mb.id));
                continue;
            }
            let v = match item.as_str() {
                "MESSAGES" => msgs.len() as u64,
                // RFC 8438: the octets of all messages in the mailbox.
                "SIZE" => {
                    let mut total = 0;
                    for m in &msgs {
                        if let Some(meta) = self
                            .core
                            .mail
                            .email_meta(acct, m.email)
                            .await
                            .map_err(unavailable)?
                        {
                            total += meta.size;
                        }
                    }
                    total
                }
                "UIDNEXT" => mb.uidnext as u64,
                "UIDVALIDITY" => mb.uidvalidity as u64,
                "UNSEEN" => msgs
                    .iter()
                    .filter(|m| !m.flags.iter().any(|f| f == "\\Seen"))
                    .count() as u64,
                // Messages no session has claimed (RFC 3501 §6.3.10).
                "RECENT" => {
                    let from = self.core.mail.recent_from(acct, mb.id, mb.uidnext);
                    msgs.iter().filter(|m| m.uid >= from).count() as u64
                }
                "APPENDLIMIT" => self.core.config.imap.max_literal_size as u64,
                "HIGHESTMODSEQ" => {
                    self.enable_condstore();
                    mb.highest_modseq.max(1)
                }
                "DELETED" => msgs
                    .iter()
                    .filter(|m| m.flags.iter().any(|f| f == "\\Deleted"))
                    .count() as u64,
                // RFC 9208 §4.1.4: the octets an EXPUNGE would free: the
                // \Deleted messages no other mailbox also holds.
                "DELETED-STORAGE" => {
                    let mut total = 0;
                    for m in msgs
                        .iter()
                        .filter(|m| m.flags.iter().any(|f| f == "\\Deleted"))
                    {
                        let mail = &self.core.mail;
                        let only_here = mail
                            .email_state(acct, m.email)
                            .await
                            .map_err(unavailable)?
                            .is_none_or(|st| st.mailboxes.iter().all(|(b, _)| *b == mb.id));
                        if only_here {
                            if let Some(meta) =
                                mail.email_meta(acct, m.email).await.map_err(unavailable)?
                            {
                                total += meta.size;
                            }
                        }
                    }
                    total
                }
                _ => return Err(format!("BAD Unknown status item {item}")),
            };
            out.push(format!("{item} {v}"));
        }
        Ok(format!(
            "STATUS {} ({})",
            self.wire_name(name),
            out.join(" ")
        ))
    }

    pub(crate) async fn cmd_close(&mut self, expunge: bool) -> Reply {
        let Some(sel) = self.selected.take() else {
            return "BAD No mailbox selected".into();
        };
        self.saved.clear();
        // CLOSE expunges silently (RFC 9051 §6.4.1), and only with the `e`
        // right (RFC 4314 §4).
        if expunge && !sel.read_only && sel.rights.has('e') {
            if let Err(e) = self
                .core
                .mail
                .expunge(sel.owner, sel.mailbox.id, None)
                .await
            {
                return unavailable(e);
            }
        }
        if expunge {
            "OK CLOSE completed".into()
        } else {
            "OK UNSELECT completed".into()
        }
    }

    pub(crate) async fn cmd_expunge(&mut self, uids: Option<SeqSet>) -> Reply {
        let Some(sel) = self.selected.as_ref() else {
            return "BAD No mailbox selected".into();
        };
        let acct = sel.owner;
        if sel.read_only {
            return "NO [READ-ONLY] Mailbox is read-only".into();
        }
        if !sel.rights.has('e') {
            return "NO [NOPERM] You may not expunge here".into();
        }
        let only = uids.map(|set| {
            let max = sel.msgs.last().map(|m| m.uid).unwrap_or(0);
            sel.msgs
                .iter()
                .filter(|m| set.contains(m.uid, max))
                .map(|m| m.uid)
                .collect()
        });
        let gone = match self.core.mail.expunge(acct, sel.mailbox.id, only).await {
            Ok(g) => g,
            Err(e) => return unavailable(e),
        };
        let qresync = self.qresync;
        let sel = self.selected.as_mut().expect("checked");
        let mbox_id = sel.mailbox.id;
        let mut lines = Vec::new();
        let mut vanished = Vec::new();
        for uid in gone {
            if let Some(i) = sel.msgs.iter().position(|m| m.uid == uid) {
                std::sync::Arc::make_mut(&mut sel.msgs).remove(i);
                vanished.push(uid);
                lines.push(format!("{} EXPUNGE", i + 1));
            }
        }
        if qresync {
            // RFC 7162 §3.2.10.2: VANISHED in place of EXPUNGE.
            vanished.sort_unstable();
            lines = if vanished.is_empty() {
                Vec::new()
            } else {
                vec![format!("VANISHED {}", super::search::compress(&vanished))]
            };
        }
        for l in lines {
            self.untagged(&l);
        }
        if vanished.is_empty() {
            return "OK EXPUNGE completed".into();
        }
        let Ok(Some(mb)) = self.core.mail.mailbox(acct, mbox_id).await else {
            return "OK EXPUNGE completed".into();
        };
        let highest = mb.highest_modseq;
        // The expunge's one change, right after the view's: the view is
        // current.
        if let Some(sel) = self.selected.as_mut() {
            if sel.is_next_change(highest) && mb.uidnext == sel.mailbox.uidnext {
                sel.mailbox = mb;
            }
        }
        // RFC 7162 §3.2.7, §3.2.9: with QRESYNC, the mailbox's new
        // mod-sequence once something was expunged.
        if qresync {
            return format!("OK [HIGHESTMODSEQ {highest}] EXPUNGE completed");
        }
        "OK EXPUNGE completed".into()
    }
}

/// SELECT ... (QRESYNC (uidvalidity modseq [known-uids])).
struct Resync {
    uidvalidity: u32,
    modseq: u64,
    known: Option<SeqSet>,
}

impl Resync {
    fn parse(q: &[Token]) -> Option<Resync> {
        let uidvalidity = q.first()?.as_string()?.parse().ok()?;
        let modseq = q.get(1)?.as_string()?.parse().ok()?;
        let known = match q.get(2) {
            Some(t) => Some(SeqSet::parse(&t.as_string()?)?),
            None => None,
        };
        // A fourth parameter (sequence match data) is accepted and not
        // needed: UIDs are checked against the mailbox itself.
        if q.len() > 4 || modseq == 0 {
            return None;
        }
        Some(Resync {
            uidvalidity,
            modseq,
            known,
        })
    }

    /// VANISHED (EARLIER) for known UIDs no longer present, then a FETCH
    /// for each known message changed since `modseq` (§3.2.5.1). Petrel
    /// keeps no tombstones, so every missing known UID is reported, as
    /// §3.2.6 requires of a server without them.
    fn lines(&self, msgs: &[crate::mail::UidEntry], uidnext: u32) -> Vec<String> {
        let max = uidnext.saturating_sub(1);
        let known = self
            .known
            .clone()
            .unwrap_or_else(|| SeqSet(vec![(1, max.max(1) as u64)]));
        let mut out = Vec::new();
        let gone = vanished_in(&known, msgs, max);
        if !gone.is_empty() {
            out.push(format!(
                "VANISHED (EARLIER) {}",
                super::search::compress(&gone)
            ));
        }
        for (i, m) in msgs.iter().enumerate() {
            if known.contains(m.uid, max) && m.modseq > self.modseq {
                out.push(format!(
                    "{} FETCH (UID {} FLAGS ({}) MODSEQ ({}))",
                    i + 1,
                    m.uid,
                    m.flags.join(" "),
                    m.modseq.max(1)
                ));
            }
        }
        out
    }
}

/// UIDs of `set` (below UIDNEXT) that the mailbox no longer holds.
pub(crate) fn vanished_in(set: &SeqSet, msgs: &[crate::mail::UidEntry], max: u32) -> Vec<u32> {
    let present: std::collections::HashSet<u32> = msgs.iter().map(|m| m.uid).collect();
    let mut out = Vec::new();
    for &(a, b) in &set.0 {
        let fix = |x: u64| {
            if x == crate::imap::proto::args::STAR {
                max
            } else {
                x.min(u32::MAX as u64) as u32
            }
        };
        let (a, b) = (fix(a).min(fix(b)), fix(a).max(fix(b)).min(max));
        for uid in a.max(1)..=b {
            if !present.contains(&uid) {
                out.push(uid);
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

#[derive(Default)]
struct ListOptions {
    subscribed: bool,
    special_use: bool,
    recursive: bool,
}

pub(crate) fn list_line(
    cmd: &str,
    mb: &Mailbox,
    name: &str,
    all: &[Mailbox],
    subscribed: bool,
) -> String {
    let prefix = format!("{}/", mb.name);
    let has_children = all.iter().any(|m| m.name.starts_with(&prefix));
    let mut attrs = vec![if has_children {
        "\\HasChildren"
    } else {
        "\\HasNoChildren"
    }];
    if let Some(r) = role_attr(mb.role.as_deref()) {
        attrs.push(r);
    }
    if subscribed && mb.subscribed && cmd == "LIST" {
        attrs.push("\\Subscribed");
    }
    format!("{cmd} ({}) \"/\" {}", attrs.join(" "), name)
}

pub(crate) fn unavailable(e: impl std::fmt::Display) -> Reply {
    tracing::error!("mail store error: {e}");
    "NO [UNAVAILABLE] Mail store unavailable, try again later".into()
}

/// The PERMANENTFLAGS response: only the flags this user may change
/// (RFC 4314 §4), with the keywords in use and `\*` when new ones may be
/// made; none when the mailbox is read-only.
pub(crate) fn permanent_flags(
    rights: &crate::mail::acl::Rights,
    read_only: bool,
    keywords: &[String],
) -> String {
    if read_only {
        return "OK [PERMANENTFLAGS ()] Read-only mailbox".into();
    }
    let mut perm: Vec<&str> = Vec::new();
    for f in SYSTEM_FLAGS.split(' ') {
        let right = match f {
            "\\Seen" => 's',
            "\\Deleted" => 't',
            _ => 'w',
        };
        if rights.has(right) {
            perm.push(f);
        }
    }
    if rights.has('w') {
        perm.extend(keywords.iter().map(String::as_str));
        perm.push("\\*");
    }
    format!("OK [PERMANENTFLAGS ({})] Flags permitted", perm.join(" "))
}

/// The FLAGS response: the system flags and the keywords in use.
pub(crate) fn flags_response(keywords: &[String]) -> String {
    let mut l = format!("FLAGS ({SYSTEM_FLAGS}");
    for k in keywords {
        l.push(' ');
        l.push_str(k);
    }
    l.push(')');
    l
}

/// Flags of `flags` that are neither system flags nor in `known`
/// (compared without regard to case), each once.
pub(crate) fn new_keywords<'a>(
    known: &[String],
    flags: impl IntoIterator<Item = &'a String>,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for f in flags {
        let system = SYSTEM_FLAGS.split(' ').any(|s| s.eq_ignore_ascii_case(f));
        let seen = |k: &String| k.eq_ignore_ascii_case(f);
        if !system && !known.iter().any(seen) && !out.iter().any(seen) {
            out.push(f.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn wildcards() {
        assert!(matches(b"*", b"a/b/c"));
        assert!(matches(b"%", b"INBOX"));
        assert!(!matches(b"%", b"a/b"));
        assert!(matches(b"a/%", b"a/b"));
        assert!(matches(b"*b", b"a/b"));
        assert!(!matches(b"x*", b"a"));
        assert!(super::list_matches("inbox", "INBOX"));
        assert!(!super::list_matches("sent", "Sent"));
        // A pathological pattern gives up within its step budget.
        let mut p = vec![b'*'; 40];
        p.push(b'!');
        assert!(!matches(&p, &[b'a'; 300]));
    }
}
