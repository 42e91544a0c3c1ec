//! SORT and UID SORT (RFC 5256 §3) with the DISPLAYFROM and DISPLAYTO
//! keys of SORT=DISPLAY (RFC 5957) and ESORT's RETURN options (RFC 5267
//! §3.2). Messages are found as SEARCH finds them and ordered by the
//! criteria, ties by sequence number.

use std::cmp::Ordering;

use super::search::{esearch, parse_return, parse_search};
use crate::imap::proto::Token;
use crate::imap::session::{Reply, Session};
pub(crate) use crate::mail::collate::{base_subject_5256, casemap};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Key {
    Arrival,
    Cc,
    Date,
    From,
    Size,
    Subject,
    To,
    DisplayFrom,
    DisplayTo,
}

/// What a message is sorted on.
#[derive(Default)]
struct Row {
    arrival: i64,
    date: i64,
    size: u64,
    subject: String,
    from: String,
    to: String,
    cc: String,
    display_from: String,
    display_to: String,
}

fn parse_criteria(t: Option<&Token>) -> Result<Vec<(Key, bool)>, String> {
    let Some(Token::List(items)) = t else {
        return Err("SORT needs a list of criteria".into());
    };
    let mut out = Vec::new();
    let mut reverse = false;
    for i in items {
        let key = match i.keyword().as_str() {
            "REVERSE" if !reverse => {
                reverse = true;
                continue;
            }
            "ARRIVAL" => Key::Arrival,
            "CC" => Key::Cc,
            "DATE" => Key::Date,
            "FROM" => Key::From,
            "SIZE" => Key::Size,
            "SUBJECT" => Key::Subject,
            "TO" => Key::To,
            "DISPLAYFROM" => Key::DisplayFrom,
            "DISPLAYTO" => Key::DisplayTo,
            other => return Err(format!("Unknown sort criterion {other}")),
        };
        out.push((key, reverse));
        reverse = false;
    }
    if out.is_empty() || reverse {
        return Err("SORT criteria end with a key".into());
    }
    Ok(out)
}

/// The first address of a header: (mailbox local part, display name or
/// address), upper-cased (RFC 5256 §2.2, RFC 5957 §2).
/// The sort values of the first IMAP address structure of a header (as
/// FETCH ENVELOPE gives it, RFC 9051 §7.5.2): its addr-mailbox (FROM, TO,
/// CC: RFC 5256 §3) and its display value (DISPLAYFROM, DISPLAYTO: RFC
/// 5957 §3). A group comes first as its start marker, whose addr-mailbox
/// is the group's name; an empty or missing header sorts as "".
fn first_address(addr: Option<&mail_parser::Address<'_>>) -> (String, String) {
    use mail_parser::Address;
    let (name, mailbox, host) = match addr {
        Some(Address::List(list)) => match list.first() {
            Some(a) => split_addr(a.name.as_deref(), a.address.as_deref()),
            None => return Default::default(),
        },
        Some(Address::Group(groups)) => match groups.first() {
            Some(g) => match (&g.name, g.addresses.first()) {
                (Some(n), _) => (None, Some(n.to_string()), None),
                (None, Some(a)) => split_addr(a.name.as_deref(), a.address.as_deref()),
                (None, None) => return Default::default(),
            },
            None => return Default::default(),
        },
        None => return Default::default(),
    };
    let display = match (name.filter(|n| !n.trim().is_empty()), &mailbox, &host) {
        (Some(n), _, _) => n,
        (None, Some(m), Some(h)) => format!("{m}@{h}"),
        (None, Some(m), None) => m.clone(),
        _ => String::new(),
    };
    (casemap(&mailbox.unwrap_or_default()), casemap(&display))
}

/// (addr-name, addr-mailbox, addr-host) of an address.
fn split_addr(
    name: Option<&str>,
    address: Option<&str>,
) -> (Option<String>, Option<String>, Option<String>) {
    let (mailbox, host) = match address.and_then(|a| a.rsplit_once('@')) {
        Some((l, h)) => (Some(l.to_string()), Some(h.to_string())),
        None => (address.map(String::from), None),
    };
    (name.map(String::from), mailbox, host)
}

impl Session {
    pub(crate) async fn cmd_sort(&mut self, tag: &str, args: &[Token], uid_mode: bool) -> Reply {
        // ESORT: SORT RETURN (options) (criteria) charset search.
        let (ret, args) = match parse_return(args) {
            Ok(x) => x,
            Err(e) => return format!("BAD {e}"),
        };
        if ret.as_ref().is_some_and(|r| r.save) {
            return "BAD SAVE is a SEARCH result option".into();
        }
        let criteria = match parse_criteria(args.first()) {
            Ok(c) => c,
            Err(e) => return format!("BAD {e}"),
        };
        let charset = args.get(1).map(|t| t.keyword()).unwrap_or_default();
        if charset != "UTF-8" && charset != "US-ASCII" {
            return "NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset".into();
        }
        let key = match parse_search(&args[2..]) {
            Ok(k) => k,
            Err(e) => return format!("BAD {e}"),
        };
        let found = match self.matching(&key).await {
            Ok(f) => f,
            Err(r) => return r,
        };
        let acct = self.sel_owner();
        let msgs = self.selected.as_ref().expect("selected").msgs.clone();
        let needs_headers = criteria
            .iter()
            .any(|(k, _)| !matches!(k, Key::Arrival | Key::Size | Key::Date));
        let mut rows = Vec::with_capacity(found.len());
        for &i in &found {
            let (meta, raw) = match self
                .load_message(acct, msgs[i].email, true, needs_headers)
                .await
            {
                Ok(x) => x,
                Err(r) => return r,
            };
            let Some(meta) = meta else { continue };
            let mut row = Row {
                arrival: meta.received_at,
                // §2.2: without a usable Date, the internal date.
                date: meta.meta.sent_at.unwrap_or(meta.received_at),
                size: meta.size,
                subject: casemap(&base_subject_5256(&meta.meta.subject).0),
                ..Row::default()
            };
            if let Some(msg) = raw
                .as_deref()
                .and_then(|r| mail_parser::MessageParser::default().parse_headers(r))
            {
                (row.from, row.display_from) = first_address(msg.from());
                (row.to, row.display_to) = first_address(msg.to());
                row.cc = first_address(msg.cc()).0;
            }
            rows.push((i, row));
        }
        rows.sort_by(|(ia, a), (ib, b)| {
            for &(k, rev) in &criteria {
                let o = match k {
                    Key::Arrival => a.arrival.cmp(&b.arrival),
                    Key::Date => a.date.cmp(&b.date),
                    Key::Size => a.size.cmp(&b.size),
                    Key::Subject => a.subject.cmp(&b.subject),
                    Key::From => a.from.cmp(&b.from),
                    Key::To => a.to.cmp(&b.to),
                    Key::Cc => a.cc.cmp(&b.cc),
                    Key::DisplayFrom => a.display_from.cmp(&b.display_from),
                    Key::DisplayTo => a.display_to.cmp(&b.display_to),
                };
                let o = if rev { o.reverse() } else { o };
                if o != Ordering::Equal {
                    return o;
                }
            }
            ia.cmp(ib)
        });
        let sorted: Vec<u32> = rows
            .iter()
            .map(|&(i, _)| if uid_mode { msgs[i].uid } else { i as u32 + 1 })
            .collect();
        // RFC 7162 §3.1.9, §3.1.10: with a MODSEQ criterion, the highest
        // mod-sequence of what was found.
        let modseqs: Option<Vec<u64>> = super::search::uses_modseq(&key)
            .then(|| rows.iter().map(|&(i, _)| msgs[i].modseq.max(1)).collect());
        let line = match ret {
            // RFC 5267 §3.2: MIN and MAX are the first and last in sort
            // order; ALL keeps the order (only ascending runs fold).
            Some(r) => esearch(tag, uid_mode, &r, &sorted, modseqs.as_deref()),
            None => {
                let mut line = String::from("SORT");
                for n in &sorted {
                    line.push_str(&format!(" {n}"));
                }
                if let Some(top) = modseqs.as_ref().and_then(|m| m.iter().max()) {
                    line.push_str(&format!(" (MODSEQ {top})"));
                }
                line
            }
        };
        self.untagged(&line);
        super::completed("SORT", uid_mode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_display_names() {
        let raw =
            b"From: \"Zed\" <amy@remote.test>\r\nTo: bob@remote.test\r\nSubject: x\r\n\r\nbody\r\n";
        let msg = mail_parser::MessageParser::default()
            .parse_headers(&raw[..])
            .unwrap();
        assert_eq!(first_address(msg.from()), ("AMY".into(), "ZED".into()));
        assert_eq!(
            first_address(msg.to()),
            ("BOB".into(), "BOB@REMOTE.TEST".into())
        );
        assert_eq!(first_address(msg.cc()), (String::new(), String::new()));
    }
}

#[cfg(test)]
mod base_subject_tests {
    #[test]
    fn unicode_casemap_of_rfc5051() {
        use super::casemap;
        // Titlecase, so the three forms of a digraph are one.
        assert_eq!(casemap("\u{01C6}"), casemap("\u{01C4}"));
        assert_eq!(casemap("\u{01C5}"), casemap("\u{01C4}"));
        // Decomposed: composed and combining forms compare equal, and a
        // ligature as its letters.
        assert_eq!(casemap("\u{e9}cole"), casemap("E\u{301}COLE"));
        assert_eq!(casemap("\u{FB01}le"), "FILE");
        // Simple mappings only: sharp s is not SS.
        assert_ne!(casemap("stra\u{df}e"), casemap("STRASSE"));
        // So "\u{e9}lan" sorts among the E's.
        assert!(casemap("apple") < casemap("\u{e9}lan") && casemap("\u{e9}lan") < casemap("zebra"));
    }

    use super::base_subject_5256 as base;

    #[test]
    fn rfc5256_base_subjects() {
        for (subject, want, reply) in [
            ("Hello", "Hello", false),
            ("Re: Hello", "Hello", true),
            ("RE: re: Fwd: FW: Hello", "Hello", true),
            ("Re[2]: Hello", "Hello", true),
            ("[list] Re: Hello", "Hello", true),
            ("Re: [list] Hello", "Hello", true),
            ("[list] [other] Hello", "Hello", false),
            ("Hello (fwd)", "Hello", true),
            ("Hello (fwd) (FWD)  ", "Hello", true),
            ("[Fwd: Re: Hello]", "Hello", true),
            ("[Fwd: [Fwd: Hello]]", "Hello", true),
            ("[list]", "[list]", false),
            ("Re: [list]", "[list]", true),
            ("  Hello\t  world ", "Hello world", false),
            ("Reply to this", "Reply to this", false),
            ("Fwdx", "Fwdx", false),
            ("", "", false),
        ] {
            assert_eq!(base(subject), (want.to_string(), reply), "{subject:?}");
        }
    }
}
