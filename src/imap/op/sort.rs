//! SORT and UID SORT (RFC 5256 §3) with the DISPLAYFROM and DISPLAYTO
//! keys of SORT=DISPLAY (RFC 5957) and ESORT's RETURN options (RFC 5267
//! §3.2). Messages are found as SEARCH finds them and ordered by the
//! criteria, ties by sequence number.

use std::cmp::Ordering;

use super::search::{esearch, parse_return, parse_search};
use crate::imap::proto::Token;
use crate::imap::session::{Reply, Session};
use crate::mail::ingest::base_subject;

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

/// RFC 5256 §2.1 ordering "i;ascii-casemap": compare upper-cased.
fn casemap(s: &str) -> String {
    s.to_ascii_uppercase()
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
fn first_address(addr: Option<&mail_parser::Address<'_>>) -> (String, String) {
    let Some(a) = addr.and_then(|a| a.first()) else {
        return (String::new(), String::new());
    };
    let address = a.address().unwrap_or("");
    let mailbox = address.split('@').next().unwrap_or("");
    let display = a.name().filter(|n| !n.trim().is_empty()).unwrap_or(address);
    (casemap(mailbox), casemap(display))
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
                subject: casemap(&base_subject(&meta.meta.subject)),
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
        let line = match ret {
            // RFC 5267 §3.2: MIN and MAX are the first and last in sort
            // order; ALL keeps the order (only ascending runs fold).
            Some(r) => esearch(tag, uid_mode, &r, &sorted, None),
            None => {
                let mut line = String::from("SORT");
                for n in sorted {
                    line.push_str(&format!(" {n}"));
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
