//! NOTIFY (RFC 5465): the client says which events it wants, for the
//! selected mailbox and for others, and the server reports them as they
//! happen, between commands and during IDLE.
//!
//! Supported events: MessageNew (with FETCH attributes for the selected
//! mailbox), MessageExpunge, FlagChange, MailboxName, SubscriptionChange,
//! MailboxMetadataChange and ServerMetadataChange (required with METADATA,
//! §5.6, §5.7); AnnotationChange (message annotations, RFC 5257, which
//! Petrel does not have) is refused with BADEVENT. Mailboxes other than
//! the selected one are watched through their (UIDNEXT, UIDVALIDITY,
//! HIGHESTMODSEQ), message count and annotations; a change is reported as
//! a STATUS (or METADATA) response. Message events need the `r` right.
//! What the session's own CREATE, DELETE, RENAME, (UN)SUBSCRIBE, APPEND,
//! COPY, MOVE and SETMETADATA changed is taken in without a report (§5).

use std::collections::HashMap;

use super::mailbox::unavailable;
use crate::imap::proto::Token;
use crate::imap::session::{Reply, Session};
use crate::mail::Mailbox;

/// Events the server can report (the BADEVENT list).
const SUPPORTED: &str = "MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange MailboxMetadataChange ServerMetadataChange";

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
    pub mailbox_meta: bool,
    pub server_meta: bool,
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
    /// The user may read it (`r`): message events need that.
    pub readable: bool,
    /// Its annotations, kept for mailboxes with MailboxMetadataChange.
    pub annotations: Option<Vec<(String, String)>>,
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
            "MAILBOXMETADATACHANGE" => e.mailbox_meta = true,
            "SERVERMETADATACHANGE" => e.server_meta = true,
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

/// Entry names set, changed or removed between two annotation lists
/// (RFC 5465 §5.6: removed ones always included).
fn changed_entries(before: &[(String, String)], now: &[(String, String)]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (k, v) in now {
        if !before.iter().any(|(bk, bv)| bk == k && bv == v) {
            out.push(k.clone());
        }
    }
    for (k, _) in before {
        if !now.iter().any(|(nk, _)| nk == k) {
            out.push(k.clone());
        }
    }
    out.sort();
    out.dedup();
    out
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
                out.mailbox_meta |= e.mailbox_meta;
            }
        }
        out
    }

    /// The events for a watched mailbox: message events only where the
    /// user may read (RFC 5465 §3.1, RFC 4314).
    fn events_of(&self, seen: &Seen) -> Events {
        let mut e = self.events_for(&seen.name, seen.subscribed);
        if !seen.readable {
            e.messages = false;
            e.flags = false;
            e.mailbox_meta = false;
        }
        e
    }

    /// Whether server annotations are watched.
    fn server_meta(&self) -> bool {
        self.groups.iter().any(|(_, e)| e.server_meta)
            || self.selected.as_ref().is_some_and(|s| s.events.server_meta)
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
        self.fill_state(&spec_now, &mut current, &HashMap::new())
            .await;
        self.notify_server_meta = if spec_now.server_meta() {
            let me = self.me();
            match self.core.mail.annotations(me, me, 0).await {
                Ok(a) => a,
                Err(e) => return unavailable(e),
            }
        } else {
            Vec::new()
        };
        // §3.1: a named mailbox the user may list but not read.
        for (f, e) in &spec_now.groups {
            let (Filter::Mailboxes(names) | Filter::Subtree(names)) = f else {
                continue;
            };
            if !(e.messages || e.flags || e.mailbox_meta) {
                continue;
            }
            for n in names {
                if let Ok(Some(t)) = self.resolve(n).await {
                    if t.rights.has('l') && !t.rights.has('r') {
                        let line = format!("LIST (\\NoAccess) \"/\" {}", self.wire_name(n));
                        self.untagged(&line);
                    }
                }
            }
        }
        if status {
            let spec = self.notify.clone().expect("set above");
            for (key, seen) in &current {
                let ev = spec.events_of(seen);
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
                    readable: true,
                    annotations: None,
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
                        readable: g.rights.has('r'),
                        annotations: None,
                    },
                );
            }
        }
        Ok(out)
    }

    /// Message counts for the mailboxes with message events, and the
    /// annotations of those with MailboxMetadataChange: kept from `old`
    /// where nothing changed, read otherwise.
    async fn fill_state(
        &self,
        spec: &NotifySpec,
        current: &mut HashMap<(u32, u32), Seen>,
        old: &HashMap<(u32, u32), Seen>,
    ) {
        let me = self.me();
        for (&(owner, mbox), now) in current.iter_mut() {
            let ev = spec.events_of(now);
            let selected_meta = self.is_selected((owner, mbox))
                && spec
                    .selected
                    .as_ref()
                    .is_some_and(|s| s.events.mailbox_meta);
            if ev.mailbox_meta || selected_meta {
                // SETMETADATA raises the mod-sequence: unchanged, the
                // annotations are what they were.
                now.annotations = match old.get(&(owner, mbox)) {
                    Some(was) if was.annotations.is_some() && was.modseq == now.modseq => {
                        was.annotations.clone()
                    }
                    _ => self.core.mail.annotations(me, owner, mbox).await.ok(),
                };
            }
            if !ev.messages {
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
        self.fill_state(&spec, &mut current, &old).await;
        let all_own = self
            .core
            .mail
            .mailboxes(self.me())
            .await
            .unwrap_or_default();
        let me = self.me();
        if spec.server_meta() {
            if let Ok(now) = self.core.mail.annotations(me, me, 0).await {
                let changed = changed_entries(&self.notify_server_meta, &now);
                if !changed.is_empty() {
                    self.untagged(&format!("METADATA \"\" {}", changed.join(" ")));
                }
                self.notify_server_meta = now;
            }
        }
        for (key, now) in &current {
            let ev = spec.events_of(now);
            // §5.6: the annotations of a watched mailbox, the selected one
            // included when its group asks.
            if let (Some(was), Some(ann)) = (old.get(key), &now.annotations) {
                if let Some(before) = &was.annotations {
                    let changed = changed_entries(before, ann);
                    if !changed.is_empty() {
                        let line = format!(
                            "METADATA {} {}",
                            self.wire_name(&now.name),
                            changed.join(" ")
                        );
                        self.untagged(&line);
                    }
                }
            }
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

    /// The mailboxes (and whether the server annotations) a command
    /// changes when it succeeds, as the session's own doing.
    pub(crate) fn own_changes(&self, name: &str, args: &[Token]) -> Option<(Vec<String>, bool)> {
        self.notify.as_ref()?;
        let arg = |i: usize| args.get(i).and_then(|t| t.as_string());
        let (raw, server): (Vec<String>, bool) = match name {
            "CREATE" | "DELETE" | "SUBSCRIBE" | "UNSUBSCRIBE" | "APPEND" => {
                (arg(0).into_iter().collect(), false)
            }
            "SETMETADATA" => match arg(0) {
                Some(n) if n.is_empty() => (Vec::new(), true),
                n => (n.into_iter().collect(), false),
            },
            "RENAME" => ([arg(0), arg(1)].into_iter().flatten().collect(), false),
            "COPY" | "MOVE" => (arg(1).into_iter().collect(), false),
            "UID"
                if matches!(
                    args.first().map(|t| t.keyword()).as_deref(),
                    Some("COPY" | "MOVE")
                ) =>
            {
                (arg(2).into_iter().collect(), false)
            }
            _ => return None,
        };
        let names = raw
            .into_iter()
            .filter_map(|n| self.name_from_client(n))
            .collect();
        Some((names, server))
    }

    /// Takes in what this session's own command changed, so it is not
    /// reported back (§5: the server SHOULD NOT notify the client of its
    /// own changes, §5.2: nor FETCH what it appended or copied).
    pub(crate) async fn notify_absorb(&mut self, names: &[String], server: bool) {
        let Some(spec) = self.notify.clone() else {
            return;
        };
        if server && spec.server_meta() {
            let me = self.me();
            if let Ok(a) = self.core.mail.annotations(me, me, 0).await {
                self.notify_server_meta = a;
            }
        }
        if names.is_empty() {
            return;
        }
        let Ok(mut current) = self.watched().await else {
            return;
        };
        current.retain(|_, s| names.contains(&s.name));
        self.fill_state(&spec, &mut current, &HashMap::new()).await;
        self.notify_seen
            .retain(|k, s| !names.contains(&s.name) && !current.contains_key(k));
        self.notify_seen.extend(current);
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
