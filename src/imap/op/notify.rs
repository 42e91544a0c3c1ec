//! NOTIFY (RFC 5465): the client says which events it wants, for the
//! selected mailbox and for others, and the server reports them as they
//! happen, between commands and during IDLE.
//!
//! Supported events: MessageNew (with FETCH attributes for the selected
//! mailbox), MessageExpunge, FlagChange, MailboxName and
//! SubscriptionChange; AnnotationChange, MailboxMetadataChange and
//! ServerMetadataChange are refused with BADEVENT. Mailboxes other than
//! the selected one are watched through their (UIDNEXT, UIDVALIDITY,
//! HIGHESTMODSEQ) and message count; a change is reported as a STATUS
//! response. Changes the session made itself are reported too (§5 says
//! SHOULD NOT; telling them apart from another session's change made at
//! the same moment is not possible here, and losing one is worse).

use std::collections::HashMap;

use super::mailbox::unavailable;
use crate::imap::proto::Token;
use crate::imap::session::{Reply, Session};
use crate::mail::Mailbox;

/// Events the server can report (the BADEVENT list).
const SUPPORTED: &str = "MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange";

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Personal,
    Inboxes,
    Subscribed,
    Subtree(Vec<String>),
    Mailboxes(Vec<String>),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Events {
    /// MessageNew and MessageExpunge (always together, §5).
    pub messages: bool,
    pub flags: bool,
    pub names: bool,
    pub subscriptions: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SelectedSpec {
    pub delayed: bool,
    pub events: Events,
    /// FETCH attributes for new messages (MessageNew's list).
    pub fetch: Option<Token>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct NotifySpec {
    pub selected: Option<SelectedSpec>,
    pub groups: Vec<(Filter, Events)>,
    pub status: bool,
}

/// What the session last told the client about one mailbox.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub name: String,
    pub subscribed: bool,
    pub uidnext: u32,
    pub uidvalidity: u32,
    pub modseq: u64,
    /// Messages in it, counted for mailboxes with message events.
    pub messages: Option<usize>,
}

fn mailbox_names(t: &Token) -> Option<Vec<String>> {
    match t {
        Token::List(items) => items.iter().map(|i| i.as_string()).collect(),
        t => t.as_string().map(|s| vec![s]),
    }
}

/// Parses `SET [STATUS] groups` (or `NONE`): Ok(None) for NONE; Err is
/// the tagged reply.
pub fn parse(args: &[Token]) -> Result<Option<NotifySpec>, Reply> {
    let first = args.first().map(|t| t.keyword()).unwrap_or_default();
    if first == "NONE" {
        return if args.len() == 1 {
            Ok(None)
        } else {
            Err("BAD NOTIFY NONE takes no arguments".into())
        };
    }
    if first != "SET" {
        return Err("BAD NOTIFY needs SET or NONE".into());
    }
    let mut spec = NotifySpec::default();
    let mut rest = &args[1..];
    if rest.first().map(|t| t.keyword()).as_deref() == Some("STATUS") {
        spec.status = true;
        rest = &rest[1..];
    }
    if rest.is_empty() {
        return Err("BAD NOTIFY SET needs event groups".into());
    }
    for g in rest {
        let Token::List(items) = g else {
            return Err("BAD An event group is a parenthesised list".into());
        };
        let kind = items.first().map(|t| t.keyword()).unwrap_or_default();
        let (filter, at) = match kind.as_str() {
            "SELECTED" | "SELECTED-DELAYED" => (None, 1),
            "PERSONAL" => (Some(Filter::Personal), 1),
            "INBOXES" => (Some(Filter::Inboxes), 1),
            "SUBSCRIBED" => (Some(Filter::Subscribed), 1),
            "SUBTREE" | "MAILBOXES" => {
                let Some(names) = items.get(1).and_then(mailbox_names) else {
                    return Err(format!("BAD {kind} needs mailbox names"));
                };
                let f = if kind == "SUBTREE" {
                    Filter::Subtree(names)
                } else {
                    Filter::Mailboxes(names)
                };
                (Some(f), 2)
            }
            _ => return Err(format!("BAD Unknown mailbox filter {kind}")),
        };
        let (events, fetch) = match items.get(at..) {
            Some([t]) if t.keyword() == "NONE" => (Events::default(), None),
            Some([Token::List(evs)]) => parse_events(evs)?,
            _ => return Err("BAD An event group needs events or NONE".into()),
        };
        match filter {
            None => {
                if spec.selected.is_some() {
                    return Err("BAD Only one of SELECTED and SELECTED-DELAYED".into());
                }
                // §6.1: only message events for the selected mailbox.
                if events.names || events.subscriptions {
                    return Err("BAD SELECTED takes message events only".into());
                }
                spec.selected = Some(SelectedSpec {
                    delayed: kind == "SELECTED-DELAYED",
                    events,
                    fetch,
                });
            }
            Some(f) => {
                if fetch.is_some() {
                    return Err("BAD FETCH attributes are for the selected mailbox only".into());
                }
                spec.groups.push((f, events));
            }
        }
    }
    Ok(Some(spec))
}

fn parse_events(evs: &[Token]) -> Result<(Events, Option<Token>), Reply> {
    let mut e = Events::default();
    let (mut new, mut expunge) = (false, false);
    let mut fetch = None;
    let mut i = 0;
    while i < evs.len() {
        match evs[i].keyword().as_str() {
            "MESSAGENEW" => {
                new = true;
                if let Some(l @ Token::List(_)) = evs.get(i + 1) {
                    fetch = Some(l.clone());
                    i += 1;
                }
            }
            "MESSAGEEXPUNGE" => expunge = true,
            "FLAGCHANGE" => e.flags = true,
            "MAILBOXNAME" => e.names = true,
            "SUBSCRIPTIONCHANGE" => e.subscriptions = true,
            _ => return Err(format!("NO [BADEVENT ({SUPPORTED})] Unsupported event")),
        }
        i += 1;
    }
    // §5: MessageNew and MessageExpunge together; FlagChange with both.
    if new != expunge || (e.flags && !new) {
        return Err(
            "BAD MessageNew and MessageExpunge go together, and FlagChange needs both".into(),
        );
    }
    e.messages = new;
    Ok((e, fetch))
}

fn in_filter(f: &Filter, name: &str, subscribed: bool) -> bool {
    match f {
        Filter::Personal | Filter::Inboxes => !super::acl::is_shared_name(name),
        Filter::Subscribed => subscribed,
        Filter::Subtree(roots) => roots.iter().any(|r| {
            name == r
                || name
                    .strip_prefix(r.as_str())
                    .is_some_and(|rest| rest.starts_with('/'))
        }),
        Filter::Mailboxes(names) => names.iter().any(|n| n == name),
    }
}

impl NotifySpec {
    /// The events asked for a (non-selected) mailbox of this name.
    fn events_for(&self, name: &str, subscribed: bool) -> Events {
        let mut out = Events::default();
        for (f, e) in &self.groups {
            if in_filter(f, name, subscribed) {
                out.messages |= e.messages;
                out.flags |= e.flags;
                out.names |= e.names;
                out.subscriptions |= e.subscriptions;
            }
        }
        out
    }
}

impl Session {
    /// NOTIFY SET / NOTIFY NONE.
    pub(crate) async fn cmd_notify(&mut self, args: &[Token]) -> Reply {
        let spec = match parse(args) {
            Ok(s) => s,
            Err(r) => return r,
        };
        let Some(spec) = spec else {
            self.notify = None;
            self.notify_seen.clear();
            return "OK NOTIFY NONE completed".into();
        };
        // Names in the filters are the client's (modified UTF-7 for rev1).
        let mut spec = spec;
        for (f, _) in spec.groups.iter_mut() {
            if let Filter::Subtree(names) | Filter::Mailboxes(names) = f {
                let decoded: Option<Vec<String>> = names
                    .iter()
                    .map(|n| self.name_from_client(n.clone()))
                    .collect();
                match decoded {
                    Some(d) => *names = d,
                    None => return "BAD A mailbox name is not valid modified UTF-7".into(),
                }
            }
        }
        let status = spec.status;
        self.notify = Some(spec);
        self.notify_rx = Some(self.core.mail.subscribe());
        // §3.1: an implicit NOOP.
        if self.selected.is_some() {
            self.sync(true).await;
        }
        let mut current = match self.watched().await {
            Ok(w) => w,
            Err(r) => return r,
        };
        let spec_now = self.notify.clone().expect("set above");
        self.fill_counts(&spec_now, &mut current, &HashMap::new())
            .await;
        if status {
            let spec = self.notify.clone().expect("set above");
            for (key, seen) in &current {
                let ev = spec.events_for(&seen.name, seen.subscribed);
                if !ev.messages && !ev.flags || self.is_selected(*key) {
                    continue;
                }
                if let Err(r) = self.notify_status(*key, seen, &ev, true).await {
                    return r;
                }
            }
        }
        self.notify_seen = current;
        "OK NOTIFY completed".into()
    }

    fn is_selected(&self, (owner, mbox): (u32, u32)) -> bool {
        self.selected
            .as_ref()
            .is_some_and(|s| s.owner == owner && s.mailbox.id == mbox)
    }

    /// The mailboxes this user can see, as NOTIFY compares them: its own
    /// and those shared with it (with `l`), keyed by (owner, id).
    async fn watched(&self) -> Result<HashMap<(u32, u32), Seen>, Reply> {
        let me = self.me();
        let mut out = HashMap::new();
        for mb in self.core.mail.mailboxes(me).await.map_err(unavailable)? {
            out.insert(
                (me, mb.id),
                Seen {
                    subscribed: mb.subscribed,
                    uidnext: mb.uidnext,
                    uidvalidity: mb.uidvalidity,
                    modseq: mb.highest_modseq,
                    name: mb.name,
                    messages: None,
                },
            );
        }
        let subs = self
            .core
            .mail
            .shared_subscriptions(me)
            .await
            .map_err(unavailable)?;
        for g in self.core.mail.shared_with(me).await.map_err(unavailable)? {
            if !g.rights.has('l') {
                continue;
            }
            if let Some(mb) = self
                .core
                .mail
                .mailbox(g.owner, g.mailbox)
                .await
                .map_err(unavailable)?
            {
                let name = self.name_for(g.owner, &mb).await;
                out.insert(
                    (g.owner, mb.id),
                    Seen {
                        subscribed: subs.contains(&name),
                        uidnext: mb.uidnext,
                        uidvalidity: mb.uidvalidity,
                        modseq: mb.highest_modseq,
                        name,
                        messages: None,
                    },
                );
            }
        }
        Ok(out)
    }

    /// Message counts for the mailboxes with message events: kept from
    /// `old` where nothing changed, counted otherwise.
    async fn fill_counts(
        &self,
        spec: &NotifySpec,
        current: &mut HashMap<(u32, u32), Seen>,
        old: &HashMap<(u32, u32), Seen>,
    ) {
        for (&(owner, mbox), now) in current.iter_mut() {
            if !spec.events_for(&now.name, now.subscribed).messages {
                continue;
            }
            if let Some(was) = old.get(&(owner, mbox)) {
                if (was.uidnext, was.modseq, was.uidvalidity)
                    == (now.uidnext, now.modseq, now.uidvalidity)
                {
                    now.messages = was.messages;
                    continue;
                }
            }
            if let Ok(Some(mb)) = self.core.mail.mailbox(owner, mbox).await {
                if let Ok(v) = self.core.mail.view(owner, &mb).await {
                    now.messages = Some(v.len());
                }
            }
        }
    }

    /// A STATUS response for a watched mailbox (§5.1-5.3).
    async fn notify_status(
        &mut self,
        (owner, mbox): (u32, u32),
        seen: &Seen,
        ev: &Events,
        initial: bool,
    ) -> Result<(), Reply> {
        let Some(mb) = self
            .core
            .mail
            .mailbox(owner, mbox)
            .await
            .map_err(unavailable)?
        else {
            return Ok(());
        };
        let mut items = Vec::new();
        if ev.messages {
            items.extend(["MESSAGES", "UIDNEXT"]);
        }
        if initial || ev.messages || ev.flags || mb.uidvalidity != seen.uidvalidity {
            items.push("UIDVALIDITY");
        }
        if self.condstore && (ev.flags || ev.messages) {
            items.push("HIGHESTMODSEQ");
        }
        if items.is_empty() {
            return Ok(());
        }
        let toks: Vec<Token> = items.iter().map(|i| Token::Atom(i.to_string())).collect();
        let line = self.status_line(owner, &mb, &seen.name, &toks).await?;
        self.untagged(&line);
        Ok(())
    }

    /// Reports what changed since the last look, as the NOTIFY settings
    /// ask. `allow_expunge`: the selected mailbox may report expunges now.
    pub(crate) async fn notify_changes(&mut self, allow_expunge: bool) {
        let Some(spec) = self.notify.clone() else {
            return;
        };
        // The selected mailbox first (§5.2: EXISTS, then the FETCH).
        if let Some(sel) = &spec.selected {
            if sel.events.messages || sel.events.flags {
                let before = self.selected.as_ref().map(|s| s.msgs.len()).unwrap_or(0);
                self.sync(allow_expunge && !sel.delayed).await;
                let after = self.selected.as_ref().map(|s| s.msgs.len()).unwrap_or(0);
                if let (Some(attrs), true) = (&sel.fetch, after > before) {
                    let set = Token::Atom(format!("{}:{}", before + 1, after));
                    let _ = self.cmd_fetch(&[set, attrs.clone()], false).await;
                }
            }
        }
        let Ok(mut current) = self.watched().await else {
            return;
        };
        let old = std::mem::take(&mut self.notify_seen);
        self.fill_counts(&spec, &mut current, &old).await;
        let all_own = self
            .core
            .mail
            .mailboxes(self.me())
            .await
            .unwrap_or_default();
        for (key, now) in &current {
            let ev = spec.events_for(&now.name, now.subscribed);
            match old.get(key) {
                None => {
                    if ev.names {
                        let line = self.listing(*key, now, &all_own, None);
                        self.untagged(&line);
                    }
                }
                Some(was) => {
                    if ev.names && was.name != now.name {
                        let line = self.listing(*key, now, &all_own, Some(&was.name));
                        self.untagged(&line);
                    } else if (ev.subscriptions
                        || spec.events_for(&was.name, was.subscribed).subscriptions)
                        && was.subscribed != now.subscribed
                    {
                        let line = self.listing(*key, now, &all_own, None);
                        self.untagged(&line);
                    }
                    if self.is_selected(*key) {
                        continue;
                    }
                    // New or expunged messages (§5.2, §5.3); otherwise
                    // flag changes (§5.1: only with CONDSTORE, or when
                    // UIDVALIDITY changed).
                    let validity = was.uidvalidity != now.uidvalidity;
                    let messages =
                        ev.messages && (was.uidnext != now.uidnext || was.messages != now.messages);
                    let flags = ev.flags && was.modseq != now.modseq && self.condstore;
                    if messages || flags || (validity && (ev.messages || ev.flags)) {
                        let shown = Events {
                            messages,
                            flags,
                            ..Events::default()
                        };
                        let _ = self.notify_status(*key, was, &shown, false).await;
                    }
                }
            }
        }
        for (key, was) in &old {
            if !current.contains_key(key) && spec.events_for(&was.name, was.subscribed).names {
                let line = format!("LIST (\\NonExistent) \"/\" {}", self.wire_name(&was.name));
                self.untagged(&line);
            }
        }
        self.notify_seen = current;
    }

    /// Whether a change of this account can matter to the NOTIFY
    /// settings (its own, or an owner of a mailbox it watches).
    pub(crate) fn notify_relevant(&self, acct: u32) -> bool {
        acct == self.me()
            || acct == crate::mail::acl::ANYONE
            || self.notify_seen.keys().any(|(o, _)| *o == acct)
    }

    fn listing(
        &self,
        (owner, _): (u32, u32),
        now: &Seen,
        all_own: &[Mailbox],
        old_name: Option<&str>,
    ) -> String {
        let mut attrs = Vec::new();
        if owner == self.me() {
            let prefix = format!("{}/", now.name);
            attrs.push(if all_own.iter().any(|m| m.name.starts_with(&prefix)) {
                "\\HasChildren"
            } else {
                "\\HasNoChildren"
            });
        }
        if now.subscribed {
            attrs.push("\\Subscribed");
        }
        let mut line = format!(
            "LIST ({}) \"/\" {}",
            attrs.join(" "),
            self.wire_name(&now.name)
        );
        if let Some(old) = old_name {
            line.push_str(&format!(" (\"OLDNAME\" ({}))", self.wire_name(old)));
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<Token> {
        let p = crate::imap::proto::tokenize(format!("t NOTIFY {s}\r\n").as_bytes()).unwrap();
        p.args
    }

    #[test]
    fn parses_groups_and_checks_rules() {
        let s = parse(&args(
            "SET STATUS (selected (MessageNew (uid flags) MessageExpunge)) (subtree Lists (MessageNew MessageExpunge)) (personal (MailboxName SubscriptionChange))",
        ))
        .unwrap()
        .unwrap();
        assert!(s.status);
        let sel = s.selected.unwrap();
        assert!(!sel.delayed && sel.events.messages && sel.fetch.is_some());
        assert_eq!(s.groups.len(), 2);
        assert_eq!(s.groups[0].0, Filter::Subtree(vec!["Lists".into()]));
        assert!(s.groups[1].1.names && s.groups[1].1.subscriptions);
        assert_eq!(parse(&args("NONE")).unwrap(), None);
        let err = |a: &str| parse(&args(a)).unwrap_err();
        assert!(err("SET (personal (MessageNew))").starts_with("BAD"));
        assert!(err("SET (personal (FlagChange))").starts_with("BAD"));
        assert!(err("SET (selected (MailboxName))").starts_with("BAD"));
        assert!(err("SET (selected NONE) (selected-delayed NONE)").starts_with("BAD"));
        assert!(err("SET (personal (MessageNew (uid) MessageExpunge))").starts_with("BAD"));
        assert!(err("SET (personal (AnnotationChange))").starts_with("NO [BADEVENT ("));
        assert!(err("SET (elsewhere NONE)").starts_with("BAD"));
        assert!(err("SET").starts_with("BAD"));
        assert!(err("MAYBE").starts_with("BAD"));
    }

    #[test]
    fn filters() {
        assert!(in_filter(&Filter::Subtree(vec!["A".into()]), "A/B", false));
        assert!(in_filter(&Filter::Subtree(vec!["A".into()]), "A", false));
        assert!(!in_filter(&Filter::Subtree(vec!["A".into()]), "AB", false));
        assert!(in_filter(
            &Filter::Mailboxes(vec!["A*".into()]),
            "A*",
            false
        ));
        assert!(!in_filter(
            &Filter::Mailboxes(vec!["A*".into()]),
            "AB",
            false
        ));
        assert!(in_filter(&Filter::Personal, "Work", false));
        assert!(!in_filter(&Filter::Personal, "Shared/x@y/Work", false));
        assert!(in_filter(&Filter::Subscribed, "Shared/x@y/Work", true));
    }
}
