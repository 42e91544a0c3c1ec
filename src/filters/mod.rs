//! External filters a message passes at the end of DATA, after Petrel's
//! own checks and spam filter: milters (`[[smtp.milter]]`, the Sendmail
//! milter protocol that rspamd's proxy, spamass-milter, OpenDKIM and
//! ClamAV's milter speak) and HTTP hooks (`[[smtp.hook]]`: the message is
//! POSTed, a JSON answer says what to do).
//!
//! Each filter gets the whole transaction once the message is complete
//! and answers with a `Decision` and `Changes`; the SMTP session
//! (src/smtp/session/filters.rs) turns them into a reply, a Junk filing
//! or a changed message. A filter that cannot be reached or answers
//! nonsense is a failure, which its `on-failure` turns into a temporary
//! refusal or a pass: never a lost message.

pub mod http;
pub mod milter;

use std::net::IpAddr;

/// What a filter is told about the message.
pub struct Transaction<'a> {
    /// The SMTP session's id and the message's number in it.
    pub queue_id: String,
    /// Petrel's host name.
    pub hostname: &'a str,
    pub client_ip: IpAddr,
    pub client_port: u16,
    pub helo: &'a str,
    /// The authenticated user, on the submission ports.
    pub login: Option<&'a str>,
    pub from: &'a str,
    pub rcpts: Vec<&'a str>,
    pub message: &'a [u8],
}

/// A filter's verdict on the message.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Go on (to the next filter, then delivery).
    Continue,
    /// This filter passes the message and wants to hear no more of it;
    /// the filters after it still see it.
    Accept,
    /// Refuse with this reply (5xx).
    Reject(String),
    /// Refuse for now with this reply (4xx).
    TempFail(String),
    /// Answer 250 and deliver nothing.
    Discard,
}

/// A change to the header section.
#[derive(Debug, Clone, PartialEq)]
pub enum HeaderChange {
    /// A field at the end of the header section.
    Add { name: String, value: String },
    /// A field before the `index`-th field (0: the first).
    Insert {
        index: usize,
        name: String,
        value: String,
    },
    /// The `index`-th (from 1) field called `name` gets `value`; an empty
    /// value removes it; a missing field is added.
    Change {
        index: usize,
        name: String,
        value: String,
    },
}

/// What a filter asked to change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Changes {
    pub headers: Vec<HeaderChange>,
    pub body: Option<Vec<u8>>,
    /// File the message in the recipients' Junk mailbox (the milter's
    /// quarantine, with its reason).
    pub quarantine: Option<String>,
    /// Asked for and not done (recipient and sender changes), for the log.
    pub ignored: Vec<String>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.headers.is_empty() && self.body.is_none()
    }
}

/// One filter's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub decision: Decision,
    pub changes: Changes,
}

/// Where the header section of `raw` ends (its first empty line, CRLF
/// or bare LF, RFC 5322 §2.1) and where the body begins (after it).
fn split(raw: &[u8]) -> (usize, usize) {
    let mut pos = 0;
    while pos < raw.len() {
        let line_end = raw[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(raw.len(), |i| pos + i + 1);
        let line = &raw[pos..line_end];
        if line == b"\r\n" || line == b"\n" {
            return (pos, line_end);
        }
        pos = line_end;
    }
    (raw.len(), raw.len())
}

/// The header fields of `raw` as (start, end, name) ranges, each field
/// with its folded lines and line end; and where the body begins.
fn fields(raw: &[u8]) -> (Vec<(usize, usize, String)>, usize) {
    let (end, _) = split(raw);
    let mut out: Vec<(usize, usize, String)> = Vec::new();
    let mut pos = 0;
    while pos < end {
        let line_end = raw[pos..end]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(end, |i| pos + i + 1);
        let line = &raw[pos..line_end];
        match (line.first(), out.last_mut()) {
            (Some(b' ' | b'\t'), Some(last)) => last.1 = line_end,
            _ => {
                let name = line
                    .iter()
                    .position(|&b| b == b':')
                    .map(|c| String::from_utf8_lossy(&line[..c]).trim().to_string())
                    .unwrap_or_default();
                out.push((pos, line_end, name));
            }
        }
        pos = line_end;
    }
    (out, end)
}

/// A field as the message carries it: folded lines a filter separated
/// with LF get CRLF. A line break cannot start another field or end the
/// header section: every further line is a continuation.
fn field_line(name: &str, value: &str) -> Vec<u8> {
    let value = value.replace("\r\n", "\n").replace('\r', "");
    let mut out = format!("{name}: ").into_bytes();
    let mut lines = value.split('\n');
    out.extend_from_slice(lines.next().unwrap_or("").as_bytes());
    for line in lines.filter(|l| !l.trim().is_empty()) {
        out.extend_from_slice(b"\r\n");
        if !line.starts_with([' ', '\t']) {
            out.push(b' ');
        }
        out.extend_from_slice(line.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// The message with `changes` made.
pub fn apply(raw: &[u8], changes: &Changes) -> Vec<u8> {
    let (fields, end) = fields(raw);
    // Each existing field, then those added; None is a removed field.
    let mut parts: Vec<Option<Vec<u8>>> = fields
        .iter()
        .map(|(s, e, _)| Some(raw[*s..*e].to_vec()))
        .collect();
    let mut names: Vec<String> = fields.into_iter().map(|f| f.2).collect();
    for change in &changes.headers {
        let (HeaderChange::Add { name, .. }
        | HeaderChange::Insert { name, .. }
        | HeaderChange::Change { name, .. }) = change;
        // RFC 5322 §2.2: printable ASCII but the colon, or it is no field.
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
            continue;
        }
        match change {
            HeaderChange::Add { name, value } => {
                parts.push(Some(field_line(name, value)));
                names.push(name.clone());
            }
            HeaderChange::Insert { index, name, value } => {
                let at = (*index).min(parts.len());
                parts.insert(at, Some(field_line(name, value)));
                names.insert(at, name.clone());
            }
            HeaderChange::Change { index, name, value } => {
                let found = names
                    .iter()
                    .enumerate()
                    .filter(|(i, n)| n.eq_ignore_ascii_case(name) && parts[*i].is_some())
                    .nth(index.saturating_sub(1))
                    .map(|(i, _)| i);
                match (found, value.is_empty()) {
                    (Some(i), true) => parts[i] = None,
                    (Some(i), false) => parts[i] = Some(field_line(name, value)),
                    (None, true) => {}
                    (None, false) => {
                        parts.push(Some(field_line(name, value)));
                        names.push(name.clone());
                    }
                }
            }
        }
    }
    let mut out: Vec<u8> = parts.into_iter().flatten().flatten().collect();
    match &changes.body {
        Some(body) => {
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(&crlf(body));
        }
        None => out.extend_from_slice(&raw[end..]),
    }
    out
}

/// `body` with every line ending in CRLF.
fn crlf(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + body.len() / 32);
    let mut prev = 0u8;
    for &b in body {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}

/// The header fields of `raw` as (name, value) for a filter: the value
/// without the space after the colon, folded lines joined by LF (what
/// libmilter-based filters expect).
pub fn header_pairs(raw: &[u8]) -> Vec<(String, String)> {
    let (fields, _) = fields(raw);
    fields
        .into_iter()
        .filter(|f| !f.2.is_empty())
        .map(|(s, e, name)| {
            let line = String::from_utf8_lossy(&raw[s..e]);
            let value = line.split_once(':').map_or("", |(_, v)| v);
            let value = value.strip_prefix(' ').unwrap_or(value);
            let value = value.trim_end_matches(['\r', '\n']).replace("\r\n", "\n");
            (name, value)
        })
        .collect()
}

/// Where the body of `raw` begins.
pub fn body_start(raw: &[u8]) -> usize {
    split(raw).1
}

/// An SMTP reply a filter gave, checked: its class decides, its text is
/// kept to one line; a reply that is not 4xx or 5xx is `None`.
pub fn reply_decision(text: &str) -> Option<Decision> {
    let line = text.lines().next().unwrap_or("").trim();
    let line: String = line.chars().filter(|c| !c.is_control()).collect();
    let code = line.get(..3)?;
    if !code.bytes().all(|b| b.is_ascii_digit()) || line.get(3..4).is_some_and(|s| s != " ") {
        return None;
    }
    match code.as_bytes()[0] {
        b'4' => Some(Decision::TempFail(line)),
        b'5' => Some(Decision::Reject(line)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] =
        b"From: a@example.org\r\nSubject: hi\r\n there\r\nX-A: 1\r\nX-A: 2\r\n\r\nbody\r\n";

    #[test]
    fn header_pairs_unfold_with_lf() {
        let pairs = header_pairs(MSG);
        assert_eq!(pairs[1], ("Subject".to_string(), "hi\n there".to_string()));
        assert_eq!(pairs.len(), 4);
        assert_eq!(&MSG[body_start(MSG)..], b"body\r\n");
    }

    #[test]
    fn changes_are_applied_in_order() {
        let changes = Changes {
            headers: vec![
                HeaderChange::Add {
                    name: "X-Spam".into(),
                    value: "Yes".into(),
                },
                HeaderChange::Change {
                    index: 2,
                    name: "x-a".into(),
                    value: String::new(),
                },
                HeaderChange::Change {
                    index: 1,
                    name: "Subject".into(),
                    value: "[SPAM] hi\n\tthere".into(),
                },
                HeaderChange::Insert {
                    index: 0,
                    name: "X-First".into(),
                    value: "0".into(),
                },
                HeaderChange::Change {
                    index: 1,
                    name: "X-New".into(),
                    value: "n".into(),
                },
            ],
            body: Some(b"new\nbody\n".to_vec()),
            ..Default::default()
        };
        let out = apply(MSG, &changes);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "X-First: 0\r\nFrom: a@example.org\r\nSubject: [SPAM] hi\r\n\tthere\r\nX-A: 1\r\nX-Spam: Yes\r\nX-New: n\r\n\r\nnew\r\nbody\r\n"
        );
        // A value cannot smuggle in a field of its own.
        let sneaky = Changes {
            headers: vec![HeaderChange::Add {
                name: "X-A".into(),
                value: "1\nBcc: x@example.org\n\nbody".into(),
            }],
            ..Default::default()
        };
        let out = apply(b"S: 1\r\n\r\nb\r\n", &sneaky);
        assert_eq!(
            out,
            b"S: 1\r\nX-A: 1\r\n Bcc: x@example.org\r\n body\r\n\r\nb\r\n"
        );
        // A name that is not a field name is no change.
        let bad = Changes {
            headers: vec![HeaderChange::Add {
                name: "X\r\n\r\nbody".into(),
                value: "v".into(),
            }],
            ..Default::default()
        };
        assert_eq!(apply(MSG, &bad), MSG);
        // A bare-LF line before an empty CRLF line ends the fields there
        // (found by the milter_reply fuzz target: an inserted field made
        // the body start elsewhere).
        let odd = b"A: 1\nB: 2\n\r\nC: body\r\n\r\nrest";
        let ins = Changes {
            headers: vec![HeaderChange::Insert {
                index: 1,
                name: "X".into(),
                value: "y".into(),
            }],
            ..Default::default()
        };
        let out = apply(odd, &ins);
        assert_eq!(out, b"A: 1\nX: y\r\nB: 2\n\r\nC: body\r\n\r\nrest");
        assert_eq!(&out[body_start(&out)..], &odd[body_start(odd)..]);
        // Nothing asked, nothing changed.
        assert_eq!(apply(MSG, &Changes::default()), MSG);
    }

    #[test]
    fn filter_replies_are_checked() {
        assert_eq!(
            reply_decision("554 5.7.1 Spam message rejected"),
            Some(Decision::Reject("554 5.7.1 Spam message rejected".into()))
        );
        assert_eq!(
            reply_decision("451 4.7.1 later\r\nmore"),
            Some(Decision::TempFail("451 4.7.1 later".into()))
        );
        assert_eq!(reply_decision("250 ok"), None);
        assert_eq!(reply_decision("55x no"), None);
        assert_eq!(reply_decision("5500 no"), None);
    }
}
