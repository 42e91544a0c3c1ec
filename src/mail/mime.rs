//! What the access protocols need from a message's MIME structure, computed
//! once at ingest: the part tree with byte offsets (for BODY[section]
//! fetches) and the IMAP ENVELOPE, BODY and BODYSTRUCTURE forms
//! (RFC 9051 §7.5.2), so that reads never parse the message again.

use mail_parser::{Address, Encoding, HeaderValue, Message, MessageParser, MimeHeaders, PartType};
use serde::{Deserialize, Serialize};

/// A MIME part located in the raw message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Part {
    /// Offset of the part's first header line.
    pub header: u32,
    /// Offset of the body (just past the blank line ending the header).
    pub body: u32,
    /// Offset just past the body.
    pub end: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<Part>,
    /// For message/rfc822 parts: the root part of the enclosed message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Box<Part>>,
    #[serde(default)]
    pub multipart: bool,
}

impl Part {
    /// Resolves an IMAP section part number ("1.2.3") to a part (RFC 9051
    /// §6.4.5): the children of a multipart; part 1 of anything else is
    /// the part itself (a MESSAGE/RFC822 part included, whose body is the
    /// enclosed message); numbers below a MESSAGE/RFC822 part address the
    /// enclosed message's parts the same way.
    pub fn find(&self, path: &[u32]) -> Option<&Part> {
        let Some((&first, rest)) = path.split_first() else {
            return Some(self);
        };
        let idx = first.checked_sub(1)? as usize;
        let next = if self.multipart {
            self.children.get(idx)?
        } else if idx == 0 {
            self
        } else {
            return None;
        };
        if rest.is_empty() {
            Some(next)
        } else if let Some(m) = &next.message {
            m.find(rest)
        } else if next.multipart {
            next.find(rest)
        } else {
            None
        }
    }
}

/// Everything ingest keeps about a message's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    pub envelope: String,
    pub body: String,
    pub bodystructure: String,
    pub root: Part,
    pub message_id: Option<String>,
    pub references: Vec<String>,
    pub subject: String,
    /// The Date header as seconds since the epoch, if it parsed.
    pub sent_at: Option<i64>,
    /// The Date header's zone, seconds east of UTC: SENTON and friends
    /// compare the date as written (RFC 3501 §6.4.4). Messages stored
    /// before it was kept read as UTC.
    #[serde(default)]
    pub sent_zone: i32,
}

/// Parses a message; unparseable input still yields a single opaque part so
/// that nothing a client sent is refused at this stage.
pub fn analyze(raw: &[u8]) -> Meta {
    let parser = MessageParser::default();
    match parser.parse(raw) {
        Some(msg) if !msg.parts.is_empty() => {
            let root = part_tree(&msg, 0, 0);
            let mut references = Vec::new();
            for v in [msg.in_reply_to(), msg.references()] {
                collect_ids(v, &mut references);
            }
            let (sent_at, sent_zone) = sent_date(&msg);
            Meta {
                envelope: envelope(&msg),
                body: structure(&msg, 0, false, 0),
                bodystructure: structure(&msg, 0, true, 0),
                root,
                message_id: msg.message_id().map(|s| s.to_string()),
                references,
                subject: msg.subject().unwrap_or("").to_string(),
                sent_at,
                sent_zone,
            }
        }
        _ => {
            let len = raw.len() as u32;
            Meta {
                envelope: "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)".into(),
                body: format!("(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" {len} {})", count_lines(raw)),
                bodystructure: format!("(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" {len} {} NIL NIL NIL NIL)", count_lines(raw)),
                root: Part { header: 0, body: 0, end: len, children: vec![], message: None, multipart: false },
                message_id: None,
                references: vec![],
                subject: String::new(),
                sent_at: None,
                sent_zone: 0,
            }
        }
    }
}

/// Whether the time and the zone of a Date field, as written, are valid
/// (the parser makes something of "99:99" and "+9999" that RFC 5256 §2.2
/// would not): a time within the day, a numeric zone within ±14 hours
/// with minutes below 60, or a zone name.
fn written_valid(value: Option<&str>) -> (bool, bool) {
    let Some(v) = value else {
        return (true, true);
    };
    // Comments such as "(CET)" end many Date fields.
    let v = v.split('(').next().unwrap_or(v);
    let words: Vec<&str> = v.split_whitespace().collect();
    let num = |s: &str| s.parse::<u32>().ok();
    let time_ok = words.iter().find(|w| w.contains(':')).is_none_or(|t| {
        let f: Vec<Option<u32>> = t.split(':').map(num).collect();
        match f.as_slice() {
            [Some(h), Some(m)] => *h < 24 && *m < 60,
            [Some(h), Some(m), Some(s)] => *h < 24 && *m < 60 && *s <= 60,
            _ => false,
        }
    });
    let zone_ok = match words.last() {
        Some(z) if z.starts_with(['+', '-']) => {
            let digits = &z[1..];
            digits.len() == 4
                && num(&digits[..2]).is_some_and(|h| h <= 14)
                && num(&digits[2..]).is_some_and(|m| m < 60)
        }
        Some(z) => z.chars().all(|c| c.is_ascii_alphabetic()),
        None => false,
    };
    (time_ok, zone_ok)
}

/// The Date header as seconds since the epoch and its zone in seconds east
/// of UTC (0 for an invalid zone), the header read once.
fn sent_date(msg: &Message<'_>) -> (Option<i64>, i32) {
    let Some(d) = msg.date() else {
        return (None, 0);
    };
    let (time_ok, zone_ok) = written_valid(msg.header_raw("Date"));
    let off = d.tz_hour as i32 * 3600 + d.tz_minute as i32 * 60;
    let zone = match (zone_ok, d.tz_before_gmt) {
        (false, _) => 0,
        (true, true) => -off,
        (true, false) => off,
    };
    (Some(sent_time(d, time_ok, zone_ok)), zone)
}

/// The sent date of a Date header as RFC 5256 §2.2 reads it: in UTC; an
/// invalid zone is taken as UTC, an invalid time as 00:00:00, and an
/// invalid date as 00:00:00 on the earliest date (1 January of year 1).
fn sent_time(d: &mail_parser::DateTime, time_ok: bool, zone_ok: bool) -> i64 {
    let date_ok = (1..=12).contains(&d.month)
        && d.day >= 1
        && d.day <= days_in_month(d.year, d.month)
        && d.year >= 1;
    if !date_ok {
        return -62_135_596_800;
    }
    let mut fixed = *d;
    if !time_ok || d.hour > 23 || d.minute > 59 || d.second > 60 {
        (fixed.hour, fixed.minute, fixed.second) = (0, 0, 0);
    }
    if !zone_ok {
        (fixed.tz_hour, fixed.tz_minute) = (0, 0);
    }
    fixed.to_timestamp()
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn collect_ids(v: &HeaderValue<'_>, out: &mut Vec<String>) {
    match v {
        HeaderValue::Text(t) => out.push(t.to_string()),
        HeaderValue::TextList(l) => out.extend(l.iter().map(|t| t.to_string())),
        _ => {}
    }
}

fn part_tree(msg: &Message<'_>, idx: usize, base: u32) -> Part {
    let p = &msg.parts[idx];
    let mut part = Part {
        header: base + p.offset_header,
        body: base + p.offset_body,
        end: base + p.offset_end,
        children: vec![],
        message: None,
        multipart: false,
    };
    match &p.body {
        PartType::Multipart(ids) => {
            part.multipart = true;
            part.children = ids
                .iter()
                .map(|&i| part_tree(msg, i as usize, base))
                .collect();
        }
        PartType::Message(inner) if !inner.parts.is_empty() && p.encoding == Encoding::None => {
            // Parsed in-stream: the enclosed message's offsets are absolute
            // (`base` already applied); an encoded enclosed message has
            // offsets into its decoded form and is left opaque.
            part.message = Some(Box::new(part_tree(inner, 0, base)));
        }
        _ => {}
    }
    part
}

/// A plain-text rendering of HTML: tags dropped, the common entities
/// decoded (the JMAP vacation's text part, RFC 8621 §8; a link's text
/// for the spam rules).
pub fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Where the header section ends: just past the first line break of the
/// blank line (CRLF, or a bare LF), or the whole message when there is
/// none.
pub fn header_section_end(raw: &[u8]) -> usize {
    raw.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 2)
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n").map(|p| p + 1))
        .unwrap_or(raw.len())
}

/// The message without the header fields whose names `drop` picks (with
/// their folded lines); `None` when there is none to drop.
pub fn without_fields(raw: &[u8], drop: impl Fn(&str) -> bool) -> Option<Vec<u8>> {
    let end = header_section_end(raw);
    let mut out: Option<Vec<u8>> = None;
    let mut dropping = false;
    let mut kept = 0;
    let mut pos = 0;
    for line in raw[..end].split_inclusive(|b| *b == b'\n') {
        let continued = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        if !continued {
            dropping = line.contains(&b':')
                && std::str::from_utf8(line.split(|b| *b == b':').next().unwrap_or(b""))
                    .is_ok_and(|n| drop(n.trim()));
        }
        if dropping {
            let o = out.get_or_insert_with(|| Vec::with_capacity(raw.len()));
            o.extend_from_slice(&raw[kept..pos]);
            kept = pos + line.len();
        }
        pos += line.len();
    }
    let mut o = out?;
    o.extend_from_slice(&raw[kept..]);
    Some(o)
}

pub fn count_lines(b: &[u8]) -> usize {
    let n = b.iter().filter(|&&c| c == b'\n').count();
    if b.last().is_some_and(|&c| c != b'\n') {
        n + 1
    } else {
        n
    }
}

/// An IMAP string: quoted when that is possible, a literal otherwise.
pub fn istring(s: &str) -> String {
    if s.len() < 1024 && s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        let mut out = String::with_capacity(s.len() + 2);
        out.push('"');
        for c in s.chars() {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
        out
    } else {
        format!("{{{}}}\r\n{}", s.len(), s)
    }
}

pub fn nstring(s: Option<&str>) -> String {
    match s {
        Some(s) => istring(s),
        None => "NIL".into(),
    }
}

/// Unfolds a raw header value (RFC 5322 §2.2.3) and trims it.
fn unfold(v: &str) -> String {
    v.replace("\r\n", "").replace('\n', "").trim().to_string()
}

/// Encodes a display name as an RFC 2047 word when it is not ASCII.
fn encode_name(n: &str) -> String {
    if n.is_ascii() {
        n.to_string()
    } else {
        use base64::Engine;
        format!(
            "=?utf-8?B?{}?=",
            base64::engine::general_purpose::STANDARD.encode(n.as_bytes())
        )
    }
}

fn addr_list(v: Option<&Address<'_>>) -> String {
    let Some(v) = v else {
        return "NIL".into();
    };
    let one = |name: Option<&str>, addr: Option<&str>| {
        let (mbox, host) = match addr.and_then(|a| a.rsplit_once('@')) {
            Some((l, h)) => (Some(l), Some(h)),
            None => (addr, None),
        };
        format!(
            "({} NIL {} {})",
            nstring(name.map(encode_name).as_deref()),
            nstring(mbox),
            nstring(host)
        )
    };
    let mut out = String::from("(");
    match v {
        Address::List(list) => {
            for a in list {
                out.push_str(&one(a.name.as_deref(), a.address.as_deref()));
            }
        }
        Address::Group(groups) => {
            for g in groups {
                if let Some(name) = &g.name {
                    // RFC 9051 §7.5.2: a group is bracketed by a start marker
                    // with the group name as mailbox and an end marker.
                    out.push_str(&format!("(NIL NIL {} NIL)", istring(name)));
                }
                for a in &g.addresses {
                    out.push_str(&one(a.name.as_deref(), a.address.as_deref()));
                }
                if g.name.is_some() {
                    out.push_str("(NIL NIL NIL NIL)");
                }
            }
        }
    }
    if out.len() == 1 {
        return "NIL".into();
    }
    out.push(')');
    out
}

fn envelope(msg: &Message<'_>) -> String {
    let raw = |name: &str| msg.header_raw(name).map(unfold).filter(|s| !s.is_empty());
    let from = addr_list(msg.from());
    let sender = match msg.sender() {
        Some(s) => addr_list(Some(s)),
        None => from.clone(),
    };
    let reply_to = match msg.reply_to() {
        Some(s) => addr_list(Some(s)),
        None => from.clone(),
    };
    format!(
        "({} {} {} {} {} {} {} {} {} {})",
        nstring(raw("Date").as_deref()),
        nstring(raw("Subject").as_deref()),
        from,
        sender,
        reply_to,
        addr_list(msg.to()),
        addr_list(msg.cc()),
        addr_list(msg.bcc()),
        nstring(raw("In-Reply-To").as_deref()),
        nstring(raw("Message-ID").as_deref()),
    )
}

fn params(attrs: Option<&[mail_parser::Attribute<'_>]>) -> String {
    match attrs {
        Some(a) if !a.is_empty() => {
            let items: Vec<String> = a
                .iter()
                .map(|at| format!("{} {}", istring(&at.name), istring(&at.value)))
                .collect();
            format!("({})", items.join(" "))
        }
        _ => "NIL".into(),
    }
}

/// BODY (`ext = false`) or BODYSTRUCTURE (`ext = true`) of part `idx`.
fn structure(msg: &Message<'_>, idx: usize, ext: bool, depth: usize) -> String {
    let p = &msg.parts[idx];
    let ct = p.content_type();
    let (ctype, csub) = match ct {
        Some(ct) => (
            ct.ctype().to_lowercase(),
            ct.subtype().map(|s| s.to_lowercase()),
        ),
        None => ("text".into(), Some("plain".into())),
    };
    let disposition = || match p.content_disposition() {
        Some(d) => format!("({} {})", istring(d.ctype()), params(d.attributes())),
        None => "NIL".into(),
    };
    let language = || match p.content_language() {
        HeaderValue::Text(t) => istring(t),
        HeaderValue::TextList(l) => format!(
            "({})",
            l.iter().map(|t| istring(t)).collect::<Vec<_>>().join(" ")
        ),
        _ => "NIL".into(),
    };
    let location = || nstring(p.content_location());

    if let PartType::Multipart(ids) = &p.body {
        let mut out = String::from("(");
        for &i in ids {
            out.push_str(&structure(msg, i as usize, ext, depth + 1));
        }
        if ids.is_empty() {
            out.push_str("(\"text\" \"plain\" NIL NIL NIL \"7bit\" 0 0)");
        }
        out.push(' ');
        out.push_str(&istring(csub.as_deref().unwrap_or("mixed")));
        if ext {
            out.push_str(&format!(
                " {} {} {} {}",
                params(ct.and_then(|c| c.attributes())),
                disposition(),
                language(),
                location()
            ));
        }
        out.push(')');
        return out;
    }

    let mut param_str = params(ct.and_then(|c| c.attributes()));
    if ct.is_none() {
        param_str = "(\"charset\" \"us-ascii\")".into();
    }
    let body_bytes = msg
        .raw_message
        .get(p.offset_body as usize..p.offset_end as usize)
        .unwrap_or_default();
    let enc = p
        .content_transfer_encoding()
        .map(|e| e.to_lowercase())
        .unwrap_or_else(|| "7bit".into());
    let mut out = format!(
        "({} {} {} {} {} {} {}",
        istring(&ctype),
        istring(csub.as_deref().unwrap_or("plain")),
        param_str,
        nstring(p.content_id()),
        nstring(p.content_description()),
        istring(&enc),
        body_bytes.len()
    );
    if ctype == "text" {
        out.push_str(&format!(" {}", count_lines(body_bytes)));
    } else if ctype == "message" && matches!(csub.as_deref(), Some("rfc822" | "global")) {
        // RFC 9051 §9: body-type-msg is MESSAGE/RFC822 or MESSAGE/GLOBAL;
        // neither may be sent as a body-type-basic.
        match &p.body {
            PartType::Message(inner) if !inner.parts.is_empty() && depth < 20 => {
                out.push_str(&format!(
                    " {} {} {}",
                    envelope(inner),
                    structure(inner, 0, ext, depth + 1),
                    count_lines(body_bytes)
                ));
            }
            _ => out.push_str(&format!(
                " (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) (\"text\" \"plain\" NIL NIL NIL \"7bit\" 0 0) {}",
                count_lines(body_bytes)
            )),
        }
    }
    if ext {
        // body-fld-md5: the Content-MD5 value as written (RFC 1864).
        let md5 = p
            .headers()
            .iter()
            .find(|h| h.name.as_str().eq_ignore_ascii_case("Content-MD5"))
            .and_then(|h| {
                msg.raw_message
                    .get(h.offset_start as usize..h.offset_end as usize)
            })
            .map(|v| String::from_utf8_lossy(v).trim().to_string())
            .filter(|v| !v.is_empty());
        out.push_str(&format!(
            " {} {} {} {}",
            nstring(md5.as_deref()),
            disposition(),
            language(),
            location()
        ));
    }
    out.push(')');
    out
}

#[cfg(test)]
mod tests {

    #[test]
    fn fields_are_dropped_with_their_folds() {
        let m = b"Bcc: a@x,\r\n b@y\r\nSubject: s\r\nbcc: c@z\r\n\r\nBcc: body\r\n";
        let out = without_fields(m, |n| n.eq_ignore_ascii_case("bcc")).unwrap();
        assert_eq!(out, b"Subject: s\r\n\r\nBcc: body\r\n");
        assert_eq!(
            without_fields(b"Subject: s\n\nBcc: x\n", |n| n == "Bcc"),
            None
        );
        assert_eq!(
            without_fields(b"Bcc: x\nTo: y\n\nz", |n| n == "Bcc").unwrap(),
            b"To: y\n\nz"
        );
        assert_eq!(header_section_end(b"A: b\r\n\r\nc"), 6);
        assert_eq!(header_section_end(b"A: b\n\nc"), 5);
        assert_eq!(header_section_end(b"A: b"), 4);
    }

    use super::*;

    const SIMPLE: &[u8] = b"From: Joe Q <joe@example.org>\r\nTo: a@b.c, \"B, C\" <b@c.d>\r\nSubject: Hi \"there\"\r\nDate: Mon, 7 Feb 1994 21:52:25 -0800\r\nMessage-ID: <1@x>\r\n\r\nHello\r\nWorld\r\n";

    #[test]
    fn simple_envelope_and_structure() {
        let m = analyze(SIMPLE);
        assert_eq!(
            m.envelope,
            "(\"Mon, 7 Feb 1994 21:52:25 -0800\" \"Hi \\\"there\\\"\" ((\"Joe Q\" NIL \"joe\" \"example.org\")) ((\"Joe Q\" NIL \"joe\" \"example.org\")) ((\"Joe Q\" NIL \"joe\" \"example.org\")) ((NIL NIL \"a\" \"b.c\")(\"B, C\" NIL \"b\" \"c.d\")) NIL NIL NIL \"<1@x>\")"
        );
        assert_eq!(
            m.body,
            "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 14 2)"
        );
        assert_eq!(m.message_id.as_deref(), Some("1@x"));
        let body = m.root.find(&[1]).unwrap();
        assert_eq!(
            &SIMPLE[body.body as usize..body.end as usize],
            b"Hello\r\nWorld\r\n"
        );
    }

    #[test]
    fn multipart_sections() {
        let raw = b"Subject: mp\r\nContent-Type: multipart/mixed; boundary=\"XX\"\r\n\r\npreamble\r\n--XX\r\nContent-Type: text/plain\r\n\r\none\r\n--XX\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n--XX--\r\n";
        let m = analyze(raw);
        let p1 = m.root.find(&[1]).unwrap();
        assert_eq!(&raw[p1.body as usize..p1.end as usize], b"one");
        let p2 = m.root.find(&[2]).unwrap();
        assert!(p2.message.is_some());
        let inner = p2.message.as_ref().unwrap();
        assert_eq!(
            &raw[inner.header as usize..inner.body as usize],
            b"Subject: inner\r\n\r\n"
        );
        let inner_body = m.root.find(&[2, 1]).unwrap();
        assert!(raw[inner_body.body as usize..inner_body.end as usize].starts_with(b"inner body"));
        assert!(
            m.bodystructure.contains("\"mixed\" (\"boundary\" \"XX\")"),
            "{}",
            m.bodystructure
        );
        assert!(m.root.find(&[3]).is_none());
    }

    #[test]
    fn garbage_does_not_panic() {
        let m = analyze(b"\xff\xfe\x00garbage");
        assert!(m.bodystructure.starts_with('('));
    }

    #[test]
    fn istring_escapes_and_literals() {
        assert_eq!(istring("a\"b\\"), "\"a\\\"b\\\\\"");
        assert_eq!(istring("é"), "{2}\r\né");
    }
}
