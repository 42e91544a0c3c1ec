//! SEARCH and UID SEARCH (RFC 9051 §6.4.4), answered by scanning the
//! mailbox. Text keys decode the message (MIME, RFC 2047 words, charsets)
//! and compare case-insensitively. A full-text index comes later.

use mail_parser::{MessageParser, PartType};

use super::append::parse_date_time;
use crate::imap::proto::args::{normalize_flag, SeqSet};
use crate::imap::proto::Token;
use crate::imap::session::{Reply, Session};
use crate::mail::{EmailMeta, UidEntry};

#[derive(Debug, Clone, PartialEq)]
pub enum Key {
    All,
    Flag(String, bool),
    Header(String, String),
    Body(String),
    Text(String),
    /// Internal date: before / on / since a day (seconds at 00:00 UTC).
    Date(DateCmp, i64, bool),
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
            "SEEN" | "OLD" => flag("\\Seen", true),
            "UNANSWERED" => flag("\\Answered", false),
            "UNDELETED" => flag("\\Deleted", false),
            "UNDRAFT" => flag("\\Draft", false),
            "UNFLAGGED" => flag("\\Flagged", false),
            "UNSEEN" | "NEW" => flag("\\Seen", false),
            // No message is \Recent in this server (RFC 9051 drops it).
            "RECENT" => Ok(Key::Not(Box::new(Key::All))),
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

/// What SEARCH RETURN asks for (RFC 4731 §3.1).
#[derive(Debug, Default, PartialEq)]
pub struct Return {
    min: bool,
    max: bool,
    all: bool,
    count: bool,
    /// SEARCHRES (RFC 5182): keep the result as `$`.
    save: bool,
}

/// Splits `RETURN (...)` off the front of SEARCH arguments.
fn parse_return(args: &[Token]) -> Result<(Option<Return>, &[Token]), String> {
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
/// something matched.
fn esearch(tag: &str, uid: bool, r: &Return, hits: &[u32], modseq: Option<u64>) -> String {
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
    if let (Some(m), false) = (modseq, hits.is_empty()) {
        line.push_str(&format!(" MODSEQ {m}"));
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

fn uses_modseq(k: &Key) -> bool {
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
        Key::Date(..) | Key::Larger(_) | Key::Smaller(_) | Key::ThreadId(_) | Key::Age(..) => true,
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
}

fn contains(hay: &str, needle: &str) -> bool {
    hay.to_lowercase().contains(&needle.to_lowercase())
}

fn header_matches(raw: &[u8], name: &str, needle: &str) -> bool {
    let Some(msg) = MessageParser::default().parse(raw) else {
        return false;
    };
    // RFC 9051: HEADER with an empty string matches any message that has
    // the field.
    let mut found = false;
    for h in msg.headers() {
        if h.name.as_str().eq_ignore_ascii_case(name) {
            found = true;
            let raw_value = raw
                .get(h.offset_start as usize..h.offset_end as usize)
                .unwrap_or_default();
            let decoded = match &h.value {
                mail_parser::HeaderValue::Text(t) => t.to_string(),
                mail_parser::HeaderValue::Address(a) => a
                    .iter()
                    .map(|x| {
                        format!(
                            "{} <{}>",
                            x.name.as_deref().unwrap_or(""),
                            x.address.as_deref().unwrap_or("")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
                _ => String::new(),
            };
            if needle.is_empty()
                || contains(&decoded, needle)
                || contains(&String::from_utf8_lossy(raw_value), needle)
            {
                return true;
            }
        }
    }
    found && needle.is_empty()
}

fn body_matches(raw: &[u8], needle: &str) -> bool {
    let Some(msg) = MessageParser::default().parse(raw) else {
        return contains(&String::from_utf8_lossy(raw), needle);
    };
    for part in &msg.parts {
        let text = match &part.body {
            PartType::Text(t) | PartType::Html(t) => t.to_string(),
            _ => continue,
        };
        if contains(&text, needle) {
            return true;
        }
    }
    false
}

pub fn matches(k: &Key, c: &Candidate<'_>) -> bool {
    match k {
        Key::All => true,
        Key::Flag(f, set) => c.entry.flags.iter().any(|x| x.eq_ignore_ascii_case(f)) == *set,
        Key::Header(name, needle) => c.raw.is_some_and(|r| header_matches(r, name, needle)),
        Key::Body(n) => c.raw.is_some_and(|r| body_matches(r, n)),
        Key::Text(n) => c
            .raw
            .is_some_and(|r| body_matches(r, n) || contains(&String::from_utf8_lossy(r), n)),
        Key::Date(cmp, day, sent) => {
            let Some(m) = c.meta else { return false };
            let ts = if *sent {
                m.meta.sent_at.unwrap_or(m.received_at)
            } else {
                m.received_at
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
        let acct = self.account.as_ref().map(|a| a.id).unwrap_or(0);
        let sel = self
            .selected
            .as_ref()
            .expect("selected state checked by dispatch");
        let msgs = sel.msgs.clone();
        let (want_meta, want_raw) = (needs_meta(key), needs_content(key));
        let largest_seq = msgs.len() as u32;
        let largest_uid = msgs.last().map(|m| m.uid).unwrap_or(0);
        let mut found = Vec::new();
        for (i, entry) in msgs.iter().enumerate() {
            let (meta, raw) = self
                .load_message(acct, entry.email, want_meta, want_raw)
                .await?;
            let c = Candidate {
                seq: i as u32 + 1,
                largest_seq,
                largest_uid,
                entry,
                meta: meta.as_ref(),
                raw: raw.as_deref(),
            };
            if matches(key, &c) {
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
        let mut highest = 0u64;
        for i in found {
            let entry = &msgs[i];
            hits.push(if uid_mode { entry.uid } else { i as u32 + 1 });
            hit_uids.push(entry.uid);
            highest = highest.max(entry.modseq.max(1));
        }
        let modseq = uses_modseq(&key);
        if modseq {
            self.condstore = true;
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
            Some(ret) => esearch(tag, uid_mode, &ret, &hits, modseq.then_some(highest)),
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
        assert!(header_matches(raw, "from", "jörg"));
        assert!(header_matches(raw, "from", "JORG@example"));
        assert!(header_matches(raw, "subject", "quarterly"));
        assert!(header_matches(raw, "x-tag", ""));
        assert!(!header_matches(raw, "x-other", ""));
        assert!(body_matches(raw, "numbers are up"));
        assert!(!body_matches(raw, "quarterly"));
    }
}
