//! SEARCH and UID SEARCH (RFC 9051 §6.4.4). Text keys decode the message
//! (MIME, RFC 2047 words, charsets) and compare case-insensitively as
//! substrings. With the full-text index ([`crate::mail::fts`]) they are
//! answered from it: BODY and TEXT exactly, header keys as a narrowing
//! that the messages it leaves are checked against; messages the index
//! does not know yet are read. Without it, every message is read.

use std::collections::HashSet;
use std::sync::Arc;

use super::append::parse_date_time;
use crate::imap::proto::args::{normalize_flag, SeqSet};
use crate::imap::proto::Token;
use crate::imap::session::{Reply, Session};
use crate::mail::fts::{fold, header_contains, search_text, Scope, SearchText, MIN_NEEDLE};
use crate::mail::{EmailMeta, MailStore, UidEntry};

#[derive(Debug, Clone, PartialEq)]
pub enum Key {
    All,
    /// \Recent in this session (RFC 3501 §2.3.2).
    Recent,
    Flag(String, bool),
    Header(String, String),
    Body(String),
    Text(String),
    /// Internal date: before / on / since a day (seconds at 00:00 UTC).
    Date(DateCmp, i64, bool),
    /// RFC 8514 §4.2: the day the message was saved in the mailbox.
    SaveDate(DateCmp, i64),
    Larger(u64),
    Smaller(u64),
    /// RFC 7162 §3.1.5: mod-sequence at least this.
    ModSeq(u64),
    /// RFC 5032 WITHIN: received more (older) or less (younger) than
    /// this many seconds ago.
    Age(bool, u64),
    /// RFC 8474 §6.
    EmailId(u64),
    ThreadId(u64),
    Uid(SeqSet),
    Seq(SeqSet),
    Not(Box<Key>),
    Or(Box<Key>, Box<Key>),
    And(Vec<Key>),
    /// A text key looked up in the index: `hits` are the messages it
    /// found. With `exact` they are the answer; otherwise the others
    /// cannot match and these are checked against `key`. Messages the
    /// index does not know are always checked.
    Indexed {
        hits: Arc<HashSet<u64>>,
        exact: bool,
        key: Box<Key>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DateCmp {
    Before,
    On,
    Since,
}

struct Parser<'a> {
    toks: &'a [Token],
    i: usize,
}

impl<'a> Parser<'a> {
    fn next(&mut self) -> Option<&'a Token> {
        let t = self.toks.get(self.i);
        self.i += 1;
        t
    }

    fn string(&mut self) -> Result<String, String> {
        self.next()
            .and_then(|t| t.as_string())
            .ok_or_else(|| "SEARCH key is missing its argument".to_string())
    }

    fn date(&mut self) -> Result<i64, String> {
        let s = self.string()?;
        // A search date is a date without time; reuse the date-time parser.
        parse_date_time(&format!("{s} 00:00:00 +0000")).ok_or_else(|| format!("Invalid date {s}"))
    }

    fn key(&mut self, depth: usize) -> Result<Key, String> {
        if depth > 32 {
            return Err("SEARCH nested too deeply".into());
        }
        let t = self.next().ok_or("Missing SEARCH key")?;
        let atom = match t {
            Token::List(items) => {
                let mut p = Parser { toks: items, i: 0 };
                let mut keys = Vec::new();
                while p.i < items.len() {
                    keys.push(p.key(depth + 1)?);
                }
                return Ok(Key::And(keys));
            }
            Token::Atom(a) => a.to_ascii_uppercase(),
            _ => return Err("Invalid SEARCH key".into()),
        };
        let flag = |f: &str, set: bool| Ok(Key::Flag(f.to_string(), set));
        match atom.as_str() {
            "ALL" => Ok(Key::All),
            "ANSWERED" => flag("\\Answered", true),
            "DELETED" => flag("\\Deleted", true),
            "DRAFT" => flag("\\Draft", true),
            "FLAGGED" => flag("\\Flagged", true),
            "SEEN" => flag("\\Seen", true),
            // RFC 3501 §6.4.4: OLD is NOT RECENT, NEW is RECENT UNSEEN.
            "OLD" => Ok(Key::Not(Box::new(Key::Recent))),
            "NEW" => Ok(Key::And(vec![
                Key::Recent,
                Key::Flag("\\Seen".into(), false),
            ])),
            "UNANSWERED" => flag("\\Answered", false),
            "UNDELETED" => flag("\\Deleted", false),
            "UNDRAFT" => flag("\\Draft", false),
            "UNFLAGGED" => flag("\\Flagged", false),
            "UNSEEN" => flag("\\Seen", false),
            // \Recent in this session (IMAP4rev1; never under IMAP4rev2).
            "RECENT" => Ok(Key::Recent),
            "KEYWORD" | "UNKEYWORD" => {
                let k = self.string()?;
                let k = normalize_flag(&k).ok_or("Invalid keyword")?;
                Ok(Key::Flag(k, atom == "KEYWORD"))
            }
            "FROM" | "TO" | "CC" | "BCC" | "SUBJECT" => {
                Ok(Key::Header(atom.to_lowercase(), self.string()?))
            }
            "HEADER" => {
                let name = self.string()?;
                Ok(Key::Header(name.to_lowercase(), self.string()?))
            }
            "BODY" => Ok(Key::Body(self.string()?)),
            "TEXT" => Ok(Key::Text(self.string()?)),
            "BEFORE" => Ok(Key::Date(DateCmp::Before, self.date()?, false)),
            "ON" => Ok(Key::Date(DateCmp::On, self.date()?, false)),
            "SINCE" => Ok(Key::Date(DateCmp::Since, self.date()?, false)),
            "SENTBEFORE" => Ok(Key::Date(DateCmp::Before, self.date()?, true)),
            "SENTON" => Ok(Key::Date(DateCmp::On, self.date()?, true)),
            "SENTSINCE" => Ok(Key::Date(DateCmp::Since, self.date()?, true)),
            "SAVEDBEFORE" => Ok(Key::SaveDate(DateCmp::Before, self.date()?)),
            "SAVEDON" => Ok(Key::SaveDate(DateCmp::On, self.date()?)),
            "SAVEDSINCE" => Ok(Key::SaveDate(DateCmp::Since, self.date()?)),
            // Every mailbox here keeps save dates.
            "SAVEDATESUPPORTED" => Ok(Key::All),
            "LARGER" => Ok(Key::Larger(
                self.string()?.parse().map_err(|_| "Invalid size")?,
            )),
            "SMALLER" => Ok(Key::Smaller(
                self.string()?.parse().map_err(|_| "Invalid size")?,
            )),
            // MODSEQ [entry-name entry-type] n; the entry (per-flag
            // mod-sequences) is accepted and read as the message's.
            "MODSEQ" => {
                let first = self.string()?;
                let n = if first.starts_with('/') {
                    let kind = self.string()?.to_ascii_lowercase();
                    if !matches!(kind.as_str(), "priv" | "shared" | "all") {
                        return Err("Invalid MODSEQ entry type".into());
                    }
                    self.string()?
                } else {
                    first
                };
                Ok(Key::ModSeq(n.parse().map_err(|_| "Invalid mod-sequence")?))
            }
            "OLDER" | "YOUNGER" => {
                let secs = self.string()?;
                let n: u64 = secs.parse().map_err(|_| "Invalid interval")?;
                if n == 0 {
                    return Err("The interval must be positive".into());
                }
                Ok(Key::Age(atom == "OLDER", n))
            }
            "EMAILID" => {
                let id = self.string()?;
                let n = id.strip_prefix('E').and_then(|n| n.parse().ok());
                // An id that is not ours matches nothing.
                Ok(n.map(Key::EmailId).unwrap_or(Key::Not(Box::new(Key::All))))
            }
            "THREADID" => {
                let id = self.string()?;
                let n = id.strip_prefix('T').and_then(|n| n.parse().ok());
                Ok(n.map(Key::ThreadId).unwrap_or(Key::Not(Box::new(Key::All))))
            }
            "UID" => Ok(Key::Uid(
                SeqSet::parse(&self.string()?).ok_or("Invalid UID set")?,
            )),
            "NOT" => Ok(Key::Not(Box::new(self.key(depth + 1)?))),
            "OR" => {
                let a = self.key(depth + 1)?;
                let b = self.key(depth + 1)?;
                Ok(Key::Or(Box::new(a), Box::new(b)))
            }
            other => match SeqSet::parse(other) {
                Some(s) => Ok(Key::Seq(s)),
                None => Err(format!("Unknown SEARCH key {other}")),
            },
        }
    }
}

/// Parses the arguments of SEARCH (after an optional CHARSET).
pub fn parse_search(args: &[Token]) -> Result<Key, String> {
    let mut toks = args;
    if let Some(Token::Atom(a)) = toks.first() {
        if a.eq_ignore_ascii_case("CHARSET") {
            let cs = toks
                .get(1)
                .and_then(|t| t.as_string())
                .unwrap_or_default()
                .to_ascii_uppercase();
            if cs != "UTF-8" && cs != "US-ASCII" {
                return Err("[BADCHARSET (UTF-8 US-ASCII)] Unsupported charset".into());
            }
            toks = &toks[2..];
        }
    }
    if toks.is_empty() {
        return Err("SEARCH needs at least one key".into());
    }
    let mut p = Parser { toks, i: 0 };
    let mut keys = Vec::new();
    while p.i < toks.len() {
        keys.push(p.key(0)?);
    }
    Ok(Key::And(keys))
}

fn needs_content(k: &Key) -> bool {
    match k {
        Key::Header(..) | Key::Body(_) | Key::Text(_) => true,
        Key::Not(k) => needs_content(k),
        Key::Or(a, b) => needs_content(a) || needs_content(b),
        Key::And(v) => v.iter().any(needs_content),
        _ => false,
    }
}

/// Whether deciding `k` for this message means reading it.
fn content_needed(k: &Key, email: u64, unsure: bool) -> bool {
    match k {
        Key::Header(..) | Key::Body(_) | Key::Text(_) => true,
        Key::Indexed { hits, exact, .. } => unsure || (!exact && hits.contains(&email)),
        Key::Not(k) => content_needed(k, email, unsure),
        Key::Or(a, b) => content_needed(a, email, unsure) || content_needed(b, email, unsure),
        Key::And(v) => v.iter().any(|k| content_needed(k, email, unsure)),
        _ => false,
    }
}

/// The folded needle a text key would look up, if long enough.
fn lookup(k: &Key) -> Option<(Scope, String)> {
    let (scope, n) = match k {
        Key::Text(n) => (Scope::Both, n),
        Key::Body(n) => (Scope::Body, n),
        Key::Header(name, n) if name == "subject" => (Scope::Subject, n),
        Key::Header(_, n) => (Scope::Headers, n),
        _ => return None,
    };
    let n = fold(n);
    (n.chars().count() >= MIN_NEEDLE).then_some((scope, n))
}

fn collect_lookups(k: &Key, out: &mut Vec<(Scope, String)>) {
    match k {
        Key::Not(k) => collect_lookups(k, out),
        Key::Or(a, b) => {
            collect_lookups(a, out);
            collect_lookups(b, out);
        }
        Key::And(v) => v.iter().for_each(|k| collect_lookups(k, out)),
        k => out.extend(lookup(k)),
    }
}

/// Replaces the text keys with their index answers, in the order
/// [`collect_lookups`] listed them.
fn rewrite(k: Key, answers: &mut impl Iterator<Item = HashSet<u64>>) -> Key {
    match k {
        Key::Not(k) => Key::Not(Box::new(rewrite(*k, answers))),
        Key::Or(a, b) => Key::Or(
            Box::new(rewrite(*a, answers)),
            Box::new(rewrite(*b, answers)),
        ),
        Key::And(v) => Key::And(v.into_iter().map(|k| rewrite(k, answers)).collect()),
        k if lookup(&k).is_some() => match answers.next() {
            Some(hits) => Key::Indexed {
                hits: Arc::new(hits),
                exact: index_exact(&k),
                key: Box::new(k),
            },
            None => k,
        },
        k => k,
    }
}

/// Whether the index's answer for `k` is the matcher's: the body and
/// whole-text keys, and SUBJECT (its own field, one line per value, so a
/// needle without a line break cannot span two). Other HEADER keys are
/// looked up in all header text, so their hits are checked.
fn index_exact(k: &Key) -> bool {
    match k {
        Key::Header(name, n) => name == "subject" && !n.contains('\n'),
        _ => true,
    }
}

/// `key` with its text keys answered by the account's index, and the
/// messages the index cannot vouch for. Without an index, or if it
/// fails, `key` as it is.
pub(crate) async fn with_index(mail: &MailStore, acct: u32, key: &Key) -> (Key, HashSet<u64>) {
    let mut needles = Vec::new();
    collect_lookups(key, &mut needles);
    match mail.fts_lookup(acct, needles).await {
        Some((answers, unsure)) => (rewrite(key.clone(), &mut answers.into_iter()), unsure),
        None => (key.clone(), HashSet::new()),
    }
}

/// What SEARCH RETURN asks for (RFC 4731 §3.1).
#[derive(Debug, Default, PartialEq)]
pub struct Return {
    pub(crate) min: bool,
    pub(crate) max: bool,
    pub(crate) all: bool,
    pub(crate) count: bool,
    /// SEARCHRES (RFC 5182): keep the result as `$`.
    pub(crate) save: bool,
}

/// Splits `RETURN (...)` off the front of SEARCH arguments.
pub(crate) fn parse_return(args: &[Token]) -> Result<(Option<Return>, &[Token]), String> {
    let is_return =
        matches!(args.first(), Some(Token::Atom(a)) if a.eq_ignore_ascii_case("RETURN"));
    if !is_return {
        return Ok((None, args));
    }
    let Some(Token::List(opts)) = args.get(1) else {
        return Err("RETURN needs a list of options".into());
    };
    let mut r = Return::default();
    for o in opts {
        match o.keyword().as_str() {
            "MIN" => r.min = true,
            "MAX" => r.max = true,
            "ALL" => r.all = true,
            "COUNT" => r.count = true,
            "SAVE" => r.save = true,
            other => return Err(format!("Unknown RETURN option {other}")),
        }
    }
    // An empty list means ALL (§3.1).
    if opts.is_empty() {
        r.all = true;
    }
    Ok((Some(r), &args[2..]))
}

/// Numbers as a sequence set, runs folded: 1:3,5.
pub(crate) fn compress(nums: &[u32]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < nums.len() {
        let start = nums[i];
        let mut end = start;
        while i + 1 < nums.len() && nums[i + 1] == end + 1 {
            i += 1;
            end = nums[i];
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}:{end}")
        });
        i += 1;
    }
    out.join(",")
}

/// The ESEARCH response (RFC 4731 §3.2); MIN, MAX and ALL only when
/// something matched. `modseqs` (for a search with MODSEQ, RFC 7162
/// §3.1.10) holds the mod-sequence of each hit.
pub(crate) fn esearch(
    tag: &str,
    uid: bool,
    r: &Return,
    hits: &[u32],
    modseqs: Option<&[u64]>,
) -> String {
    let mut line = format!("ESEARCH (TAG \"{tag}\")");
    if uid {
        line.push_str(" UID");
    }
    if !hits.is_empty() {
        if r.min {
            line.push_str(&format!(" MIN {}", hits[0]));
        }
        if r.max {
            line.push_str(&format!(" MAX {}", hits[hits.len() - 1]));
        }
    }
    if r.count {
        line.push_str(&format!(" COUNT {}", hits.len()));
    }
    if r.all && !hits.is_empty() {
        line.push_str(&format!(" ALL {}", compress(hits)));
    }
    if let (Some(m), false) = (modseqs, hits.is_empty()) {
        // RFC 4731 §3.2: a single MIN or MAX reports the mod-sequence of
        // that message; MIN and MAX alone, the higher of the two;
        // otherwise the highest of all returned.
        let (first, last) = (m[0], m[m.len() - 1]);
        let value = match (r.min, r.max, r.all || r.count) {
            (true, false, false) => first,
            (false, true, false) => last,
            (true, true, false) => first.max(last),
            _ => m.iter().copied().max().unwrap_or(0),
        };
        line.push_str(&format!(" MODSEQ {value}"));
    }
    line
}

/// `$` in a search (RFC 5182 §2.2) stands for the saved messages.
fn with_saved(k: Key, saved: &[u32]) -> Key {
    match k {
        Key::Seq(s) | Key::Uid(s) if s.is_saved() => Key::Uid(SeqSet::of(saved)),
        Key::Not(k) => Key::Not(Box::new(with_saved(*k, saved))),
        Key::Or(a, b) => Key::Or(
            Box::new(with_saved(*a, saved)),
            Box::new(with_saved(*b, saved)),
        ),
        Key::And(v) => Key::And(v.into_iter().map(|k| with_saved(k, saved)).collect()),
        other => other,
    }
}

pub(crate) fn uses_modseq(k: &Key) -> bool {
    match k {
        Key::ModSeq(_) => true,
        Key::Not(k) => uses_modseq(k),
        Key::Or(a, b) => uses_modseq(a) || uses_modseq(b),
        Key::And(v) => v.iter().any(uses_modseq),
        _ => false,
    }
}

fn needs_meta(k: &Key) -> bool {
    match k {
        Key::Date(..)
        | Key::SaveDate(..)
        | Key::Larger(_)
        | Key::Smaller(_)
        | Key::ThreadId(_)
        | Key::Age(..) => true,
        Key::Not(k) => needs_meta(k),
        Key::Or(a, b) => needs_meta(a) || needs_meta(b),
        Key::And(v) => v.iter().any(needs_meta),
        _ => needs_content(k),
    }
}

/// What a message offers to the matcher.
pub struct Candidate<'a> {
    pub seq: u32,
    pub largest_seq: u32,
    pub largest_uid: u32,
    pub entry: &'a UidEntry,
    pub meta: Option<&'a EmailMeta>,
    pub raw: Option<&'a [u8]>,
    /// Not (fully) in the index: indexed keys are checked on the content.
    pub unsure: bool,
    /// \Recent in the searching session.
    pub recent: bool,
    pub text: std::cell::OnceCell<SearchText>,
}

impl Candidate<'_> {
    fn text(&self) -> Option<&SearchText> {
        let raw = self.raw?;
        Some(self.text.get_or_init(|| search_text(raw)))
    }
}

/// Decides `k` without the message's content where that is possible
/// (`c.raw` is None): flags, dates, sizes, the index's answers, and a
/// SUBJECT found in the stored, decoded subject. `None`: the message must
/// be read.
pub fn decide(k: &Key, c: &Candidate<'_>) -> Option<bool> {
    match k {
        Key::Header(name, needle) if name == "subject" => {
            let m = c.meta?;
            fold(&m.meta.subject)
                .contains(&fold(needle))
                .then_some(true)
        }
        Key::Header(..) | Key::Body(_) | Key::Text(_) => None,
        Key::Indexed { hits, exact, key } => {
            if c.unsure {
                decide(key, c)
            } else if !hits.contains(&c.entry.email) {
                Some(false)
            } else if *exact {
                Some(true)
            } else {
                decide(key, c)
            }
        }
        Key::Not(k) => decide(k, c).map(|b| !b),
        Key::Or(a, b) => match (decide(a, c), decide(b, c)) {
            (Some(true), _) | (_, Some(true)) => Some(true),
            (Some(false), Some(false)) => Some(false),
            _ => None,
        },
        Key::And(v) => {
            let mut all = Some(true);
            for k in v {
                match decide(k, c) {
                    Some(false) => return Some(false),
                    Some(true) => {}
                    None => all = None,
                }
            }
            all
        }
        _ => Some(matches(k, c)),
    }
}

pub fn matches(k: &Key, c: &Candidate<'_>) -> bool {
    match k {
        Key::All => true,
        Key::Recent => c.recent,
        Key::Flag(f, set) => c.entry.flags.iter().any(|x| x.eq_ignore_ascii_case(f)) == *set,
        Key::Header(name, needle) => c.raw.is_some_and(|r| header_contains(r, name, needle)),
        Key::Body(n) => c.text().is_some_and(|t| t.body.contains(&fold(n))),
        Key::Text(n) => c.text().is_some_and(|t| {
            let n = fold(n);
            t.headers.contains(&n) || t.body.contains(&n)
        }),
        Key::Indexed { hits, exact, key } => {
            if c.unsure {
                matches(key, c)
            } else {
                hits.contains(&c.entry.email) && (*exact || matches(key, c))
            }
        }
        Key::Date(cmp, day, sent) => {
            let Some(m) = c.meta else { return false };
            // RFC 3501 §6.4.4: the Date header's date "disregarding time
            // and timezone", i.e. as written in its own zone.
            let ts = match (*sent, m.meta.sent_at) {
                (true, Some(t)) => t + m.meta.sent_zone as i64,
                _ => m.received_at,
            };
            let d = ts.div_euclid(86400) * 86400;
            match cmp {
                DateCmp::Before => d < *day,
                DateCmp::On => d == *day,
                DateCmp::Since => d >= *day,
            }
        }
        Key::SaveDate(cmp, day) => {
            let Some(ts) = c.entry.saved.or(c.meta.map(|m| m.received_at)) else {
                return false;
            };
            let d = ts.div_euclid(86400) * 86400;
            match cmp {
                DateCmp::Before => d < *day,
                DateCmp::On => d == *day,
                DateCmp::Since => d >= *day,
            }
        }
        Key::Larger(n) => c.meta.is_some_and(|m| m.size > *n),
        Key::Smaller(n) => c.meta.is_some_and(|m| m.size < *n),
        Key::ModSeq(n) => c.entry.modseq.max(1) >= *n,
        Key::EmailId(n) => c.entry.email == *n,
        Key::Age(older, secs) => c.meta.is_some_and(|m| {
            let age = crate::core::unix_now().saturating_sub(m.received_at).max(0) as u64;
            if *older {
                age >= *secs
            } else {
                age <= *secs
            }
        }),
        Key::ThreadId(n) => c.meta.is_some_and(|m| m.thread == *n),
        Key::Uid(s) => s.contains(c.entry.uid, c.largest_uid),
        Key::Seq(s) => s.contains(c.seq, c.largest_seq),
        Key::Not(k) => !matches(k, c),
        Key::Or(a, b) => matches(a, c) || matches(b, c),
        Key::And(v) => v.iter().all(|k| matches(k, c)),
    }
}

impl Session {
    /// Positions in the selected view of the messages `key` matches.
    pub(crate) async fn matching(&mut self, key: &Key) -> Result<Vec<usize>, Reply> {
        let acct = self.sel_owner();
        let (key, unsure) = with_index(&self.core.mail, acct, key).await;
        let sel = self
            .selected
            .as_ref()
            .expect("selected state checked by dispatch");
        let msgs = sel.msgs.clone();
        let want_meta = needs_meta(&key);
        let largest_seq = msgs.len() as u32;
        let largest_uid = msgs.last().map(|m| m.uid).unwrap_or(0);
        let mut found = Vec::new();
        // Many messages: their metadata in one read (as FETCH does).
        let mut metas = if (want_meta || needs_content(&key)) && msgs.len() > 32 {
            let emails: Vec<u64> = msgs.iter().map(|m| m.email).collect();
            match self.core.mail.email_metas(acct, &emails).await {
                Ok(m) => Some(m),
                Err(e) => return Err(super::mailbox::unavailable(e)),
            }
        } else {
            None
        };
        for (i, entry) in msgs.iter().enumerate() {
            let is_unsure = unsure.contains(&entry.email);
            let recent = self
                .selected
                .as_ref()
                .is_some_and(|s| s.recent.contains(&entry.uid));
            let want_raw = content_needed(&key, entry.email, is_unsure);
            let meta = match metas.as_mut() {
                Some(all) => all.remove(&entry.email),
                None => {
                    self.load_message(acct, entry.email, want_meta || want_raw, false)
                        .await?
                        .0
                }
            };
            if (want_meta || want_raw) && meta.is_none() {
                // Expunged by another session meanwhile.
                continue;
            }
            let c = Candidate {
                seq: i as u32 + 1,
                largest_seq,
                largest_uid,
                entry,
                meta: meta.as_ref(),
                raw: None,
                unsure: is_unsure,
                recent,
                text: Default::default(),
            };
            if want_raw {
                // Flags, dates, the index and the stored subject decide
                // many messages without reading them.
                match decide(&key, &c) {
                    Some(true) => {
                        found.push(i);
                        continue;
                    }
                    Some(false) => continue,
                    None => {}
                }
            }
            let raw = match (&meta, want_raw) {
                (Some(m), true) => {
                    match self.core.mail.email_raw_live(acct, entry.email, m).await {
                        Ok(Some(r)) => Some(r),
                        // Expunged meanwhile.
                        Ok(None) => continue,
                        Err(e) => return Err(super::mailbox::unavailable(e)),
                    }
                }
                _ => None,
            };
            let c = Candidate {
                raw: raw.as_deref(),
                ..c
            };
            if matches(&key, &c) {
                found.push(i);
            }
        }
        Ok(found)
    }

    pub(crate) async fn cmd_search(&mut self, tag: &str, args: &[Token], uid_mode: bool) -> Reply {
        // RFC 4731: SEARCH RETURN (options) criteria asks for ESEARCH.
        let (ret, args) = match parse_return(args) {
            Ok(x) => x,
            Err(e) => return format!("BAD {e}"),
        };
        // A failed SEARCH ... RETURN (SAVE) leaves `$` empty (RFC 5182 §2.4).
        if ret.as_ref().is_some_and(|r| r.save) {
            self.saved.clear();
        }
        // RFC 6855 §3: after ENABLE UTF8=ACCEPT, a CHARSET conflicts.
        if self.utf8_accept
            && matches!(args.first(), Some(Token::Atom(a)) if a.eq_ignore_ascii_case("CHARSET"))
        {
            return "BAD No CHARSET in SEARCH after ENABLE UTF8=ACCEPT (RFC 6855 §3)".into();
        }
        let key = match parse_search(args) {
            Ok(k) => with_saved(k, &self.saved),
            Err(e) if e.starts_with('[') => return format!("NO {e}"),
            Err(e) => return format!("BAD {e}"),
        };
        let found = match self.matching(&key).await {
            Ok(f) => f,
            Err(r) => return r,
        };
        let msgs = self.selected.as_ref().expect("selected").msgs.clone();
        let mut hits = Vec::new();
        let mut hit_uids = Vec::new();
        let mut hit_modseqs = Vec::new();
        for i in found {
            let entry = &msgs[i];
            hits.push(if uid_mode { entry.uid } else { i as u32 + 1 });
            hit_uids.push(entry.uid);
            hit_modseqs.push(entry.modseq.max(1));
        }
        let highest = hit_modseqs.iter().copied().max().unwrap_or(0);
        let modseq = uses_modseq(&key);
        if modseq {
            self.enable_condstore();
        }
        if let Some(r) = ret.as_ref().filter(|r| r.save) {
            // With MIN or MAX, only those are kept (RFC 5182 §2.4).
            self.saved = match (r.min, r.max, hit_uids.first(), hit_uids.last()) {
                (false, false, _, _) => hit_uids.clone(),
                (true, true, Some(&a), Some(&b)) if a != b => vec![a, b],
                (true, _, Some(&a), _) => vec![a],
                (_, true, _, Some(&b)) => vec![b],
                _ => Vec::new(),
            };
            if !(r.min || r.max || r.all || r.count) {
                // SAVE alone: no ESEARCH response.
                return if uid_mode {
                    "OK UID SEARCH completed, result saved".into()
                } else {
                    "OK SEARCH completed, result saved".into()
                };
            }
        }
        // IMAP4rev2 answers every SEARCH with ESEARCH, ALL by default
        // (RFC 9051 §6.4.4).
        let ret = ret.or_else(|| {
            self.rev2.then(|| Return {
                all: true,
                ..Return::default()
            })
        });
        let line = match ret {
            Some(ret) => esearch(
                tag,
                uid_mode,
                &ret,
                &hits,
                modseq.then_some(&hit_modseqs[..]),
            ),
            None => {
                let mut line = String::from("SEARCH");
                for h in &hits {
                    line.push(' ');
                    line.push_str(&h.to_string());
                }
                // RFC 7162 §3.1.5: a MODSEQ search reports the highest
                // mod-sequence of the messages found.
                if modseq && !hits.is_empty() {
                    line.push_str(&format!(" (MODSEQ {highest})"));
                }
                line
            }
        };
        self.untagged(&line);
        if uid_mode {
            "OK UID SEARCH completed".into()
        } else {
            "OK SEARCH completed".into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn atoms(s: &str) -> Vec<Token> {
        crate::imap::proto::tokenize(format!("t SEARCH {s}\r\n").as_bytes())
            .unwrap()
            .args
    }

    #[test]
    fn sequence_sets_fold_runs() {
        assert_eq!(compress(&[1, 2, 3, 5, 7, 8]), "1:3,5,7:8");
        assert_eq!(compress(&[4]), "4");
        assert_eq!(compress(&[]), "");
    }

    #[test]
    fn return_options() {
        let args = atoms("RETURN (MIN COUNT) UNSEEN");
        let (r, rest) = parse_return(&args).unwrap();
        let r = r.unwrap();
        assert!(r.min && r.count && !r.max && !r.all);
        assert_eq!(rest.len(), 1);
        let args = atoms("RETURN () ALL");
        assert!(parse_return(&args).unwrap().0.unwrap().all);
        assert!(parse_return(&atoms("RETURN (FROB) ALL")).is_err());
        assert!(parse_return(&atoms("RETURN ALL")).is_err());
        assert!(parse_return(&atoms("ALL")).unwrap().0.is_none());
    }

    #[test]
    fn parses_nested_keys() {
        let k = parse_search(&atoms("CHARSET UTF-8 OR FROM joe (SEEN NOT DELETED) 1:3")).unwrap();
        let Key::And(v) = k else { panic!() };
        assert_eq!(v.len(), 2);
        assert!(matches!(v[0], Key::Or(..)));
        assert!(matches!(v[1], Key::Seq(_)));
        assert!(parse_search(&atoms("CHARSET KOI8-R ALL"))
            .unwrap_err()
            .starts_with("[BADCHARSET"));
        assert!(parse_search(&atoms("FROB")).is_err());
        assert!(parse_search(&atoms("SINCE 1-Feb-1994")).is_ok());
        assert!(parse_search(&atoms("SINCE yesterday")).is_err());
    }

    #[test]
    fn header_and_body_matching() {
        let raw = b"From: =?utf-8?q?J=C3=B6rg?= <jorg@example.org>\r\nSubject: Quarterly report\r\nX-Tag: blue\r\n\r\nThe numbers are UP.\r\n";
        assert!(header_contains(raw, "from", "jörg"));
        assert!(header_contains(raw, "from", "JORG@example"));
        assert!(header_contains(raw, "subject", "quarterly"));
        assert!(header_contains(raw, "x-tag", ""));
        assert!(!header_contains(raw, "x-other", ""));
        let c = |k: Key| {
            let entry = UidEntry {
                uid: 1,
                email: 1,
                modseq: 1,
                flags: vec![],
                saved: None,
            };
            let c = Candidate {
                seq: 1,
                largest_seq: 1,
                largest_uid: 1,
                entry: &entry,
                meta: None,
                raw: Some(raw),
                unsure: false,
                recent: false,
                text: Default::default(),
            };
            matches(&k, &c)
        };
        assert!(c(Key::Body("numbers are up".into())));
        assert!(!c(Key::Body("quarterly".into())));
        assert!(c(Key::Text("quarterly".into())));
        assert!(c(Key::Text("JÖRG".into())));
    }

    mod index_vs_scan {
        use super::super::*;
        use crate::mail::fts::{FtsIndex, FtsOp};
        use proptest::prelude::*;

        const WORDS: &[&str] = &[
            "needle",
            "Needles",
            "eedl",
            "haystack",
            "ΣΑΣ",
            "σας",
            "grüße",
            "GRÜSSE",
            "a",
            "hello",
            "HeLLo",
            "x",
            "ab",
            "İstanbul",
            "mañana",
        ];

        fn words() -> impl Strategy<Value = String> {
            prop::collection::vec(prop::sample::select(WORDS), 0..6).prop_map(|w| w.join(" "))
        }

        fn b64(s: &str) -> String {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(s)
        }

        /// A message in one of a few shapes: plain, RFC 2047 subject,
        /// base64 body, multipart with an attachment, nested message.
        fn message() -> impl Strategy<Value = Vec<u8>> {
            (words(), words(), words(), 0..5u8).prop_map(|(subject, body, tag, shape)| {
                let subj = if shape == 1 {
                    format!("=?utf-8?b?{}?=", b64(&subject))
                } else {
                    subject.replace(['İ', 'ñ', 'ü', 'ß', 'Σ', 'Α', 'σ', 'α', 'ς'], "?")
                };
                let head = format!(
                    "From: {tag} <joe@example.org>\r\nSubject: {subj}\r\nX-Tag: {tag}\r\nMIME-Version: 1.0\r\n"
                );
                let s = match shape {
                    2 => format!(
                        "{head}Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n",
                        b64(&body)
                    ),
                    3 => format!(
                        "{head}Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"{tag}.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--b--\r\n",
                        b64(&subject)
                    ),
                    4 => format!(
                        "{head}Content-Type: message/rfc822\r\n\r\nSubject: inner {subject}\r\n\r\n{body}\r\n"
                    ),
                    _ => format!("{head}Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"),
                };
                s.into_bytes()
            })
        }

        /// A needle: part of a word list, in any case.
        fn needle() -> impl Strategy<Value = String> {
            (words(), 0..4usize, 0..8usize, any::<bool>()).prop_map(|(w, skip, len, upper)| {
                let n: String = w.chars().skip(skip).take(len.max(1)).collect();
                if upper {
                    n.to_uppercase()
                } else {
                    n
                }
            })
        }

        fn key() -> impl Strategy<Value = Key> {
            let leaf = prop_oneof![
                needle().prop_map(Key::Text),
                needle().prop_map(Key::Body),
                (
                    prop::sample::select(vec!["subject", "from", "x-tag", "to"]),
                    needle()
                )
                    .prop_map(|(h, n)| Key::Header(h.into(), n)),
            ];
            leaf.prop_recursive(2, 6, 2, |inner| {
                prop_oneof![
                    inner.clone().prop_map(|k| Key::Not(Box::new(k))),
                    (inner.clone(), inner.clone())
                        .prop_map(|(a, b)| Key::Or(Box::new(a), Box::new(b))),
                    prop::collection::vec(inner, 1..3).prop_map(Key::And),
                ]
            })
        }

        fn eval(k: &Key, raws: &[Vec<u8>], unsure: &HashSet<u64>, lazy: bool) -> Vec<u64> {
            let mut out = Vec::new();
            for (i, raw) in raws.iter().enumerate() {
                let email = i as u64 + 1;
                let entry = UidEntry {
                    uid: email as u32,
                    email,
                    modseq: 1,
                    flags: vec![],
                    saved: None,
                };
                let is_unsure = unsure.contains(&email);
                let em = crate::mail::EmailMeta {
                    blob: String::new(),
                    size: raw.len() as u64,
                    received_at: 0,
                    thread: 0,
                    meta: crate::mail::mime::analyze(raw),
                };
                // As the session does: decide without the message where
                // possible, read it only if needed.
                let load = !lazy || content_needed(k, email, is_unsure);
                let c = Candidate {
                    seq: email as u32,
                    largest_seq: raws.len() as u32,
                    largest_uid: raws.len() as u32,
                    entry: &entry,
                    meta: Some(&em),
                    raw: None,
                    unsure: is_unsure,
                    recent: false,
                    text: Default::default(),
                };
                let early = if lazy && load { decide(k, &c) } else { None };
                let hit = match early {
                    Some(b) => b,
                    None => matches(
                        k,
                        &Candidate {
                            raw: load.then_some(raw.as_slice()),
                            text: Default::default(),
                            ..c
                        },
                    ),
                };
                if hit {
                    out.push(email);
                }
            }
            out
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(48))]
            #[test]
            fn index_answers_match_the_scan(
                raws in prop::collection::vec(message(), 1..12),
                keys in prop::collection::vec(key(), 1..8),
                not_indexed in prop::collection::vec(any::<bool>(), 12),
            ) {
                let dir = tempfile::tempdir().unwrap();
                let ix = FtsIndex::open(dir.path(), 15_000_000).unwrap();
                // Some messages are left out of the index, as if the
                // indexer had not reached them yet.
                let mut unsure = HashSet::new();
                let mut ops = Vec::new();
                for (i, raw) in raws.iter().enumerate() {
                    let email = i as u64 + 1;
                    if not_indexed[i] && i % 3 == 0 {
                        unsure.insert(email);
                    } else {
                        ops.push(FtsOp::Add { acct: 7, email, text: search_text(raw) });
                    }
                }
                ix.apply(ops).unwrap();
                for k in keys {
                    let scan = eval(&k, &raws, &HashSet::new(), false);
                    let mut needles = Vec::new();
                    collect_lookups(&k, &mut needles);
                    let answers: Vec<HashSet<u64>> = needles
                        .iter()
                        .map(|(scope, n)| ix.search(7, *scope, n).unwrap().unwrap())
                        .collect();
                    let indexed = rewrite(k.clone(), &mut answers.into_iter());
                    let via_index = eval(&indexed, &raws, &unsure, true);
                    prop_assert_eq!(&via_index, &scan, "key {:?} raws {:?}", k, raws.iter().map(|r| String::from_utf8_lossy(r).to_string()).collect::<Vec<_>>());
                }
            }
        }
    }
}
