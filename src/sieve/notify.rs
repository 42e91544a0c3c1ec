//! `notify` with a mailto: URI (RFC 5435, RFC 5436). sieve-rs writes the
//! notification (recipients from the URI, its subject and body, the
//! user as From, none for a message that is itself Auto-Submitted);
//! Petrel finishes it: `Auto-Submitted: auto-notified` with the owner's
//! address as the first field (RFC 5436 §2.7.1), a Date and Message-ID
//! of its own, and only the fields a notification may carry: URI headers
//! such as Received, Auto-Submitted, Date, Message-ID or From are
//! dropped (§2.7).

use crate::core::{new_message_id, rfc5322_date, unix_now};

/// Fields kept from what sieve-rs wrote; every other one goes.
const KEPT: &[&str] = &[
    "from",
    "to",
    "cc",
    "subject",
    "importance",
    "x-priority",
    "content-type",
    "in-reply-to",
    "references",
    "keywords",
    "comments",
];

/// Whether a message sieve-rs created is a notification (a vacation
/// response is `auto-replied`).
pub fn is_notification(msg: &[u8]) -> bool {
    fields(msg).iter().any(|(name, line)| {
        name.eq_ignore_ascii_case("auto-submitted")
            && String::from_utf8_lossy(line)
                .to_ascii_lowercase()
                .contains("auto-notified")
    })
}

/// RFC 5436 §2.7: no notification for a message that is itself
/// auto-submitted (an Auto-Submitted field other than "no"). sieve-rs's
/// own check misses the field, which mail-parser names itself.
pub fn auto_submitted(raw: &[u8]) -> bool {
    let head = super::deliver::without_return_path(raw);
    fields(head).iter().any(|(name, line)| {
        name.eq_ignore_ascii_case("auto-submitted") && {
            let v = String::from_utf8_lossy(line);
            let v = v.split_once(':').map_or("", |(_, v)| v).trim();
            !v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("no")
        }
    })
}

/// The header fields of `msg` (name, whole field with its folded lines
/// and CRLF), and where the body starts.
fn split(msg: &[u8]) -> (Vec<(String, Vec<u8>)>, usize) {
    let end = msg
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(msg.len(), |p| p + 2);
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    for line in msg[..end].split_inclusive(|b| *b == b'\n') {
        if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            if let Some((_, last)) = out.last_mut() {
                last.extend_from_slice(line);
            }
            continue;
        }
        let name = line
            .iter()
            .position(|b| *b == b':')
            .map(|p| String::from_utf8_lossy(&line[..p]).trim().to_string())
            .unwrap_or_default();
        out.push((name, line.to_vec()));
    }
    (out, (end + 2).min(msg.len()))
}

fn fields(msg: &[u8]) -> Vec<(String, Vec<u8>)> {
    split(msg).0
}

/// The notification as it is sent, for the user `owner`.
pub fn finish(msg: &[u8], owner: &str, hostname: &str) -> Vec<u8> {
    let (fields, body) = split(msg);
    let owner: String = owner
        .chars()
        .filter(|c| !matches!(c, '"' | '\\') && !c.is_control())
        .collect();
    let mut out = format!(
        "Auto-Submitted: auto-notified; owner-email=\"{owner}\"\r\nDate: {}\r\nMessage-ID: <{}>\r\nMIME-Version: 1.0\r\n",
        rfc5322_date(unix_now()),
        new_message_id(hostname),
    )
    .into_bytes();
    for (name, line) in fields {
        if KEPT.iter().any(|k| k.eq_ignore_ascii_case(&name)) {
            out.extend_from_slice(&line);
        }
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&msg[body..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_are_finished() {
        let written = b"From: <joe@example.org>\r\nTo: <bob@remote.test>\r\nReceived: from evil\r\nMessage-ID: <uri@evil>\r\nDate: Mon, 1 Jan 2001 00:00:00 +0000\r\nImportance: High\r\nSubject: New\r\n mail\r\nAuto-Submitted: auto-notified\r\nX-Sieve: yes\r\nContent-type: text/plain; charset=utf-8\r\n\r\nYou have mail\r\n";
        assert!(is_notification(written));
        assert!(auto_submitted(
            b"Return-Path: <>\r\nAuto-Submitted: auto-generated\r\n\r\nx"
        ));
        assert!(!auto_submitted(b"Auto-Submitted: No\r\n\r\nx"));
        assert!(!auto_submitted(
            b"Subject: x\r\n\r\nAuto-Submitted: yes\r\n"
        ));
        assert!(!is_notification(b"Auto-Submitted: auto-replied\r\n\r\nx"));
        let out = String::from_utf8(finish(written, "joe@example.org", "mx.test")).unwrap();
        assert!(
            out.starts_with("Auto-Submitted: auto-notified; owner-email=\"joe@example.org\"\r\n"),
            "{out}"
        );
        assert_eq!(out.matches("Auto-Submitted").count(), 1, "{out}");
        for gone in ["Received", "uri@evil", "1 Jan 2001", "X-Sieve"] {
            assert!(!out.contains(gone), "{gone}: {out}");
        }
        for kept in [
            "From: <joe@example.org>",
            "To: <bob@remote.test>",
            "Subject: New\r\n mail\r\n",
            "Importance: High",
            "\r\n\r\nYou have mail\r\n",
        ] {
            assert!(out.contains(kept), "{kept}: {out}");
        }
        assert!(out.contains("@mx.test>"), "{out}");
        let m = mail_parser::MessageParser::new()
            .parse(out.as_bytes())
            .unwrap();
        assert_eq!(m.subject(), Some("New mail"));
        assert_eq!(m.body_text(0).as_deref(), Some("You have mail\r\n"));
    }
}
