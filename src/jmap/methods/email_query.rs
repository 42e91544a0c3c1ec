//! Email/query (RFC 8621 §4.4, RFC 8620 §5.5): every filter of
//! `email_filter`, every sort of §4.4.2 with the advertised collations,
//! collapseThreads, position and anchor windows; Email/queryChanges
//! (RFC 8620 §5.6) from the change log (see `query_changes`).

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

use serde_json::{json, Map, Value};

use super::email_filter::{self, Candidate, TextCond, ThreadKeywords};
use super::email_text::{check, TextIndex};
use super::{query_changes, store_error, Context};
use crate::jmap::id;
use crate::jmap::request::MethodError;
use crate::mail::collate::{base_subject_5256, casemap};
use crate::mail::facts::EmailFacts;
use crate::mail::fts::{search_text, SearchText};
use crate::mail::EmailMeta;

/// The sorts this server offers (the session's emailQuerySortOptions).
pub const SORT_OPTIONS: &[&str] = &[
    "receivedAt",
    "size",
    "from",
    "to",
    "subject",
    "sentAt",
    "hasKeyword",
    "allInThreadHaveKeyword",
    "someInThreadHaveKeyword",
];

#[derive(Debug, Clone, PartialEq)]
enum SortKey {
    ReceivedAt,
    Size,
    From,
    To,
    Subject,
    SentAt,
    HasKeyword(String),
    AllInThread(String),
    SomeInThread(String),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Collation {
    UnicodeCasemap,
    AsciiCasemap,
    AsciiNumeric,
}

#[derive(Debug, Clone, PartialEq)]
struct Comparator {
    key: SortKey,
    ascending: bool,
    collation: Collation,
}

/// A value sorted on; strings are already in their collation's form.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Val {
    Int(i64),
    Str(String),
}

fn bad(why: impl Into<String>) -> MethodError {
    MethodError::invalid_arguments(why)
}

fn parse_sort(v: Option<&Value>) -> Result<Vec<Comparator>, MethodError> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(vec![Comparator {
            key: SortKey::ReceivedAt,
            ascending: false,
            collation: Collation::UnicodeCasemap,
        }]);
    };
    let list = v.as_array().ok_or_else(|| bad("sort must be an array"))?;
    let mut out = Vec::new();
    for c in list {
        let c = c
            .as_object()
            .ok_or_else(|| bad("a Comparator must be an object"))?;
        let property = c
            .get("property")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("a Comparator needs a property"))?;
        let keyword = || {
            c.get("keyword")
                .and_then(Value::as_str)
                .map(str::to_ascii_lowercase)
                .ok_or_else(|| bad(format!("sorting by {property} needs a keyword")))
        };
        let key = match property {
            "receivedAt" => SortKey::ReceivedAt,
            "size" => SortKey::Size,
            "from" => SortKey::From,
            "to" => SortKey::To,
            "subject" => SortKey::Subject,
            "sentAt" => SortKey::SentAt,
            "hasKeyword" => SortKey::HasKeyword(keyword()?),
            "allInThreadHaveKeyword" => SortKey::AllInThread(keyword()?),
            "someInThreadHaveKeyword" => SortKey::SomeInThread(keyword()?),
            other => {
                return Err(MethodError::with(
                    "unsupportedSort",
                    format!(
                        "`{other}` is not a sort this server offers (see emailQuerySortOptions)"
                    ),
                ))
            }
        };
        // RFC 8620 §5.5: isAscending defaults to true.
        let ascending = match c.get("isAscending") {
            None => true,
            Some(v) => v
                .as_bool()
                .ok_or_else(|| bad("isAscending must be a Boolean"))?,
        };
        let collation = match c.get("collation").and_then(Value::as_str) {
            None | Some("i;unicode-casemap") => Collation::UnicodeCasemap,
            Some("i;ascii-casemap") => Collation::AsciiCasemap,
            Some("i;ascii-numeric") => Collation::AsciiNumeric,
            Some(other) => {
                return Err(MethodError::with(
                    "unsupportedSort",
                    format!("the collation `{other}` is not in collationAlgorithms"),
                ))
            }
        };
        out.push(Comparator {
            key,
            ascending,
            collation,
        });
    }
    Ok(out)
}

fn collate(s: &str, c: Collation) -> Val {
    match c {
        Collation::UnicodeCasemap => Val::Str(casemap(s)),
        Collation::AsciiCasemap => Val::Str(s.to_ascii_uppercase()),
        // RFC 4790 §9.1: a leading number compares by value; strings
        // that do not start with a digit come after all numbers.
        Collation::AsciiNumeric => {
            let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
            Val::Int(if digits.is_empty() {
                i64::MAX
            } else {
                digits.parse().unwrap_or(i64::MAX - 1)
            })
        }
    }
}

/// The `email` of the first address of a header (§4.4.2 from/to).
fn first_email(raw: &[u8], to: bool) -> String {
    let Some(m) = mail_parser::MessageParser::default().parse_headers(raw) else {
        return String::new();
    };
    let a = if to { m.to() } else { m.from() };
    a.and_then(|a| a.first())
        .and_then(|a| a.address())
        .unwrap_or_default()
        .to_string()
}

/// What a message's content gives the query, read at most once.
struct Content {
    raw: Vec<u8>,
    text: std::cell::OnceCell<SearchText>,
}

impl Content {
    fn text(&self) -> &SearchText {
        self.text.get_or_init(|| search_text(&self.raw))
    }

    /// RFC 8621 §4.1.4, as Email/get says it.
    fn has_attachment(&self) -> bool {
        mail_parser::MessageParser::default()
            .parse(&self.raw)
            .is_some_and(|m| super::email_body::has_attachment(&m))
    }
}

/// The keywords all and some of each Thread's visible Emails have.
fn keywords_by_thread(
    found: &[(u64, super::Visible)],
    facts: &[Option<EmailFacts>],
) -> HashMap<u64, ThreadKeywords> {
    let mut count: HashMap<u64, HashMap<&str, usize>> = HashMap::new();
    let mut size: HashMap<u64, usize> = HashMap::new();
    for ((_, (_, kws)), f) in found.iter().zip(facts) {
        let Some(f) = f else { continue };
        *size.entry(f.thread).or_default() += 1;
        for k in kws {
            *count.entry(f.thread).or_default().entry(k).or_default() += 1;
        }
    }
    size.into_iter()
        .map(|(t, n)| {
            let counts = count.remove(&t).unwrap_or_default();
            let all = counts
                .iter()
                .filter(|(_, c)| **c == n)
                .map(|(k, _)| k.to_string())
                .collect();
            let some = counts.into_keys().map(String::from).collect();
            (t, ThreadKeywords { all, some })
        })
        .collect()
}

fn collapse_threads(args: &Map<String, Value>) -> Result<bool, MethodError> {
    match args.get("collapseThreads") {
        None | Some(Value::Null) => Ok(false),
        Some(v) => v
            .as_bool()
            .ok_or_else(|| bad("collapseThreads must be a Boolean")),
    }
}

fn window(args: &Map<String, Value>) -> Result<(i64, Option<usize>), MethodError> {
    let position = match args.get("position") {
        None | Some(Value::Null) => 0,
        Some(v) => v.as_i64().ok_or_else(|| bad("position must be an Int"))?,
    };
    let limit = match args.get("limit") {
        None | Some(Value::Null) => None,
        // §5.5: a negative limit is invalidArguments.
        Some(v) => Some(
            v.as_u64()
                .ok_or_else(|| bad("limit must be an UnsignedInt"))? as usize,
        ),
    };
    Ok((position, limit))
}

pub async fn query(cx: &Context<'_>, args: Map<String, Value>) -> Result<Value, MethodError> {
    let access = cx.mail_access(&args).await?;
    let acct = access.acct;
    let mail = &cx.core.mail;
    let state = mail.account_usage(acct).await.map_err(store_error)?.state;
    let filter = email_filter::parse(args.get("filter"))?;
    let sort = parse_sort(args.get("sort"))?;
    let collapse = collapse_threads(&args)?;
    let (position, limit) = window(&args)?;
    let anchor = match args.get("anchor") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_str().ok_or_else(|| bad("anchor must be an Id"))?),
    };
    let anchor_offset = args
        .get("anchorOffset")
        .and_then(Value::as_i64)
        .unwrap_or(0);

    let (total, start, window) = match mailbox_window(
        cx,
        &access,
        &filter,
        &sort,
        collapse || anchor.is_some(),
        position,
        limit,
    )
    .await?
    {
        Some(w) => w,
        None => {
            let ids = ordered(cx, &access, &filter, &sort, collapse).await?;
            let total = ids.len();
            let start = match anchor {
                // §5.5: with an anchor, position is ignored; the anchor's
                // index plus anchorOffset, clamped to the list.
                Some(a) => {
                    let at = id::parse_email(a)
                        .and_then(|e| ids.iter().position(|x| *x == e))
                        .ok_or_else(|| MethodError::new("anchorNotFound"))?;
                    (at as i64 + anchor_offset).clamp(0, total as i64) as usize
                }
                None => start_at(position, total),
            };
            let end = limit.map_or(total, |l| start.saturating_add(l).min(total));
            (total, start, ids[start..end].to_vec())
        }
    };
    let mut out = json!({
        "accountId": id::account(acct),
        "queryState": query_changes::query_state(&access, state, ""),
        "canCalculateChanges": true,
        "position": start,
        "ids": window.iter().map(|e| id::email(*e)).collect::<Vec<_>>(),
    });
    if args.get("calculateTotal").and_then(Value::as_bool) == Some(true) {
        out["total"] = json!(total);
    }
    if let Some(l) = limit {
        out["limit"] = json!(l);
    }
    Ok(out)
}

/// Where a window starts: a negative position counts from the end.
fn start_at(position: i64, total: usize) -> usize {
    if position < 0 {
        total.saturating_sub(position.unsigned_abs() as usize)
    } else {
        (position as usize).min(total)
    }
}

/// The common case of a mail list: `{"inMailbox": id}` alone, sorted by
/// arrival, size or sent date (or not at all), without an anchor or
/// collapsed threads. Only that mailbox's listing is read and only the
/// asked-for window is put in order; the answer is the one [`ordered`]
/// gives (tests/jmap.rs compares them). `None` for any other query.
async fn mailbox_window(
    cx: &Context<'_>,
    access: &super::Access,
    filter: &email_filter::Filter,
    sort: &[Comparator],
    whole_list: bool,
    position: i64,
    limit: Option<usize>,
) -> Result<Option<(usize, usize, Vec<u64>)>, MethodError> {
    let Some(mbox) = filter.only_mailbox() else {
        return Ok(None);
    };
    let acct = access.acct;
    if whole_list || sort.len() > 1 || !access.reads(mbox) {
        return Ok(None);
    }
    let key: fn(&EmailFacts) -> i64 = match sort.first().map(|c| &c.key) {
        None => |_| 0,
        Some(SortKey::ReceivedAt) => |f| f.received_at,
        Some(SortKey::Size) => |f| f.size as i64,
        Some(SortKey::SentAt) => |f| f.sent_at.unwrap_or(f.received_at),
        Some(_) => return Ok(None),
    };
    let ascending = sort.first().is_none_or(|c| c.ascending);
    let mail = &cx.core.mail;
    let mailboxes = mail.mailboxes(acct).await.map_err(store_error)?;
    let Some(m) = mailboxes.iter().find(|m| m.id == mbox) else {
        return Ok(None);
    };
    let view = mail.view(acct, m).await.map_err(store_error)?;
    let emails: Vec<u64> = view
        .iter()
        .filter(|e| !super::deleted(&e.flags))
        .map(|e| e.email)
        .collect();
    let facts = mail.email_facts(acct, &emails).await.map_err(store_error)?;
    let mut rows: Vec<(i64, u64)> = emails
        .iter()
        .zip(&facts)
        .filter_map(|(e, f)| f.as_ref().map(|f| (key(f), *e)))
        .collect();
    let total = rows.len();
    let start = start_at(position, total);
    let end = limit.map_or(total, |l| start.saturating_add(l).min(total));
    // Ties by id in the comparator's direction, as in [`ordered`].
    let order = |a: &(i64, u64), b: &(i64, u64)| if ascending { a.cmp(b) } else { b.cmp(a) };
    if end > 0 && end < total {
        rows.select_nth_unstable_by(end - 1, order);
        rows.truncate(end);
    }
    rows.sort_unstable_by(order);
    let window = rows.get(start..end).unwrap_or_default();
    Ok(Some((total, start, window.iter().map(|r| r.1).collect())))
}

/// Every Email the filter takes, in the sort's order (collapsed to one
/// per thread when asked).
async fn ordered(
    cx: &Context<'_>,
    access: &super::Access,
    filter: &email_filter::Filter,
    sort: &[Comparator],
    collapse: bool,
) -> Result<Vec<u64>, MethodError> {
    let mail = &cx.core.mail;
    let acct = access.acct;
    let found: Vec<(u64, super::Visible)> = super::visible_messages(cx, access)
        .await?
        .into_iter()
        .collect();
    let emails: Vec<u64> = found.iter().map(|(e, _)| *e).collect();
    // Arrival, size, thread and sent date come from memory after the
    // first query; subjects are read only to sort on them.
    let facts = mail.email_facts(acct, &emails).await.map_err(store_error)?;
    let subjects: HashMap<u64, EmailMeta> = if sort.iter().any(|c| c.key == SortKey::Subject) {
        mail.email_metas(acct, &emails).await.map_err(store_error)?
    } else {
        HashMap::new()
    };
    let mut conds: Vec<&TextCond> = Vec::new();
    email_filter::text_conds(filter, &mut conds);
    let index = TextIndex::lookup(mail, acct, &conds).await;
    let reads_addresses = sort
        .iter()
        .any(|c| matches!(c.key, SortKey::From | SortKey::To));

    // Thread keyword sorts and filters look at every visible message of
    // the thread.
    let by_thread = filter.by_thread()
        || sort
            .iter()
            .any(|c| matches!(c.key, SortKey::AllInThread(_) | SortKey::SomeInThread(_)));
    let thread_keywords = if by_thread {
        keywords_by_thread(&found, &facts)
    } else {
        HashMap::new()
    };
    let no_thread = ThreadKeywords::default();

    let mut rows: Vec<(Vec<Val>, u64, u64)> = Vec::new();
    for ((e, (mailboxes, keywords)), f) in found.iter().zip(&facts) {
        let Some(meta) = f else { continue };
        let mut candidate = Candidate {
            mailboxes,
            keywords,
            received_at: meta.received_at,
            size: meta.size,
            thread: thread_keywords.get(&meta.thread).unwrap_or(&no_thread),
            has_attachment: None,
        };
        let mut content: Option<Content> = None;
        let verdict = email_filter::eval(filter, &candidate, &mut |t| index.decide(*e, t));
        let keep = match verdict {
            Some(v) => v,
            None => {
                let Some(c) = read(mail, acct, *e, &mut content).await? else {
                    continue;
                };
                candidate.has_attachment = Some(c.has_attachment());
                email_filter::eval(filter, &candidate, &mut |t| {
                    Some(check(&c.raw, c.text(), t))
                })
                .unwrap_or(false)
            }
        };
        if !keep {
            continue;
        }
        let (from, to) = if reads_addresses {
            let Some(c) = read(mail, acct, *e, &mut content).await? else {
                continue;
            };
            (first_email(&c.raw, false), first_email(&c.raw, true))
        } else {
            Default::default()
        };
        let has = |k: &str| keywords.iter().any(|x| x == k);
        let key = sort
            .iter()
            .map(|c| match &c.key {
                SortKey::ReceivedAt => Val::Int(meta.received_at),
                SortKey::Size => Val::Int(meta.size as i64),
                SortKey::SentAt => Val::Int(meta.sent_at.unwrap_or(meta.received_at)),
                SortKey::Subject => collate(
                    &subjects
                        .get(e)
                        .map(|m| base_subject_5256(&m.meta.subject).0)
                        .unwrap_or_default(),
                    c.collation,
                ),
                SortKey::From => collate(&from, c.collation),
                SortKey::To => collate(&to, c.collation),
                SortKey::HasKeyword(k) => Val::Int(has(k) as i64),
                SortKey::AllInThread(k) => Val::Int(candidate.thread.all.contains(k) as i64),
                SortKey::SomeInThread(k) => Val::Int(candidate.thread.some.contains(k) as i64),
            })
            .collect();
        rows.push((key, *e, meta.thread));
    }
    rows.sort_unstable_by(|a, b| {
        for (i, c) in sort.iter().enumerate() {
            let o = a.0[i].cmp(&b.0[i]);
            let o = if c.ascending { o } else { o.reverse() };
            if o != Ordering::Equal {
                return o;
            }
        }
        // Ties by id, so the order is stable (RFC 8620 §5.5); ids grow
        // with arrival, so they follow the first comparator's direction
        // (newest first stays newest first within one second).
        match sort.first() {
            Some(c) if !c.ascending => b.1.cmp(&a.1),
            _ => a.1.cmp(&b.1),
        }
    });
    if collapse {
        // §4.4.3: only the first Email of each Thread in the sorted list.
        let mut seen = HashSet::new();
        rows.retain(|r| seen.insert(r.2));
    }
    Ok(rows.iter().map(|r| r.1).collect())
}

/// The message's content, read once; `None` if it was destroyed since
/// the query found it.
async fn read<'c>(
    mail: &crate::mail::MailStore,
    acct: u32,
    email: u64,
    content: &'c mut Option<Content>,
) -> Result<Option<&'c Content>, MethodError> {
    if content.is_none() {
        let Some(meta) = mail.email_meta(acct, email).await.map_err(store_error)? else {
            return Ok(None);
        };
        let Some(raw) = mail
            .email_raw_live(acct, email, &meta)
            .await
            .map_err(store_error)?
        else {
            return Ok(None);
        };
        *content = Some(Content {
            raw,
            text: Default::default(),
        });
    }
    Ok(content.as_ref())
}

/// Email/queryChanges (RFC 8620 §5.6): the Emails the log touched since
/// the query state, and where those in the current results stand now.
pub async fn query_changes(
    cx: &Context<'_>,
    args: Map<String, Value>,
) -> Result<Value, MethodError> {
    let access = cx.mail_access(&args).await?;
    let acct = access.acct;
    let filter = email_filter::parse(args.get("filter"))?;
    let sort = parse_sort(args.get("sort"))?;
    let collapse = collapse_threads(&args)?;
    let mail = &cx.core.mail;
    let state = mail.account_usage(acct).await.map_err(store_error)?.state;
    let (since_text, since) = query_changes::since(&args, &access, state, "")?;
    // The log is read to its end, past `state`: naming more changed ids
    // than needed is allowed, and it covers whatever the results below
    // already show of changes made after `state` (the next call, from
    // `state`, names those again).
    let mut touched = query_changes::touched(mail, acct, since, &args, |c| {
        [c.created.clone(), c.updated.clone(), c.destroyed.clone()]
    })
    .await?;
    let results = ordered(cx, &access, &filter, &sort, collapse).await?;
    let by_thread = collapse
        || filter.by_thread()
        || sort
            .iter()
            .any(|c| matches!(c.key, SortKey::AllInThread(_) | SortKey::SomeInThread(_)));
    if by_thread {
        whole_threads(cx, &access, &mut touched, &results).await?;
    }
    // §5.6 upToId only counts when nothing the query looks at can change.
    let immutable = !by_thread
        && filter.immutable()
        && !sort.iter().any(|c| matches!(c.key, SortKey::HasKeyword(_)));
    let up_to = match args.get("upToId") {
        Some(Value::String(s)) if immutable => id::parse_email(s),
        _ => None,
    };
    query_changes::respond(
        &args,
        acct,
        (since_text, query_changes::query_state(&access, state, "")),
        &results,
        &touched,
        up_to,
        id::email,
    )
}

/// Where an Email's place depends on its Thread (collapsed threads, the
/// thread keyword filters and sorts), every Email of a touched Thread is
/// touched. A destroyed Email's Thread comes from the log; where the log
/// predates that, every current result is touched, which is never wrong
/// (§5.6: extra ids).
async fn whole_threads(
    cx: &Context<'_>,
    access: &super::Access,
    touched: &mut query_changes::Touched,
    results: &[u64],
) -> Result<(), MethodError> {
    let mail = &cx.core.mail;
    let acct = access.acct;
    let ids: Vec<u64> = touched
        .created
        .iter()
        .chain(&touched.changed)
        .copied()
        .collect();
    let facts = mail.email_facts(acct, &ids).await.map_err(store_error)?;
    let mut threads: HashSet<u64> = HashSet::new();
    let mut unknown = false;
    for (e, f) in ids.iter().zip(facts) {
        // Destroyed: the log kept its Thread (unless it predates that).
        match f.map(|f| f.thread).or_else(|| {
            touched
                .destroyed_threads
                .as_ref()
                .and_then(|d| d.get(e).copied())
        }) {
            Some(t) => {
                threads.insert(t);
            }
            None => unknown = true,
        }
    }
    if unknown {
        results.iter().for_each(|r| touched.change(*r));
    }
    let all: Vec<u64> = super::visible_messages(cx, access)
        .await?
        .into_keys()
        .collect();
    let every = mail.email_facts(acct, &all).await.map_err(store_error)?;
    for (e, f) in all.iter().zip(&every) {
        if f.as_ref().is_some_and(|f| threads.contains(&f.thread)) {
            touched.change(*e);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparators() {
        let s = parse_sort(Some(&json!([
            {"property": "subject", "collation": "i;ascii-casemap"},
            {"property": "hasKeyword", "keyword": "$Flagged", "isAscending": false}
        ])))
        .unwrap();
        assert_eq!(s[0].key, SortKey::Subject);
        assert!(s[0].ascending);
        assert_eq!(s[0].collation, Collation::AsciiCasemap);
        assert_eq!(s[1].key, SortKey::HasKeyword("$flagged".into()));
        assert!(!s[1].ascending);
        let err = |v: Value| parse_sort(Some(&v)).unwrap_err().kind;
        assert_eq!(err(json!([{"property": "color"}])), "unsupportedSort");
        assert_eq!(
            err(json!([{"property": "from", "collation": "i;octet"}])),
            "unsupportedSort"
        );
        assert_eq!(err(json!([{"property": "hasKeyword"}])), "invalidArguments");
        assert_eq!(err(json!({"property": "size"})), "invalidArguments");
        // No sort: newest first.
        assert!(!parse_sort(None).unwrap()[0].ascending);
    }

    #[test]
    fn collations() {
        assert_eq!(
            collate("école", Collation::UnicodeCasemap),
            collate("ÉCOLE", Collation::UnicodeCasemap)
        );
        assert!(
            collate("9 lives", Collation::AsciiNumeric)
                < collate("10 ducks", Collation::AsciiNumeric)
        );
        assert!(collate("10", Collation::AsciiNumeric) < collate("ten", Collation::AsciiNumeric));
        assert_eq!(
            collate("abc", Collation::AsciiCasemap),
            Val::Str("ABC".into())
        );
    }

    #[test]
    fn first_addresses() {
        let raw = b"From: \"Zed\" <a@example.org>, b@example.org\r\nTo: c@example.net\r\n\r\nx";
        assert_eq!(first_email(raw, false), "a@example.org");
        assert_eq!(first_email(raw, true), "c@example.net");
        assert_eq!(first_email(b"Subject: none\r\n\r\n", true), "");
    }
}
