//! `reject` and `ereject` in users' scripts (RFC 5429). Users' scripts
//! run before the SMTP or LMTP reply, so a refusal is made in the
//! protocol when it can be (§2.1.1, §2.2): every recipient of the
//! transaction refused, and the reason is ASCII or the action is
//! `ereject` (whose non-ASCII reason is replaced, §2.1.1). Otherwise the
//! message is accepted and the sender told: `ereject` by a DSN
//! (§2.1.2, the queue's bounce), `reject` by an MDN with the disposition
//! `deleted` (§2.2.1). Neither goes to the null sender.

use crate::core::{new_message_id, rfc5322_date, unix_now};

/// One account's script refused the message.
#[derive(Debug, Clone, PartialEq)]
pub struct Refused {
    pub account: u32,
    pub address: String,
    pub reason: String,
    /// `ereject` (true) or `reject`.
    pub extended: bool,
}

/// What a reason becomes in a reply: printable ASCII lines, none empty,
/// each short enough for a reply line (RFC 5321 §4.5.3.1.5: 512 octets
/// with the code).
fn reply_lines(reason: &str) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for l in reason.lines() {
        let clean: String = l
            .chars()
            .map(|c| {
                if c.is_ascii_graphic() || c == ' ' {
                    c
                } else {
                    ' '
                }
            })
            .collect();
        let clean = clean.trim();
        // Long lines are cut into several (§2.5 allows inserting CRLFs).
        let mut rest = clean;
        while rest.len() > 400 {
            let (a, b) = rest.split_at(400);
            lines.push(a.to_string());
            rest = b;
        }
        if !rest.is_empty() {
            lines.push(rest.to_string());
        }
    }
    if lines.is_empty() {
        lines.push("Refused by the recipient's mail filter".into());
    }
    lines
}

impl Refused {
    /// The 550 reply that refuses in the protocol (RFC 5429 §2.5: a
    /// multi-line reason is a multi-line reply, each line with 5.7.1),
    /// when this refusal may be made so: `ereject` always, `reject` only
    /// with an ASCII reason.
    pub fn protocol_reply(&self) -> Option<String> {
        let reason = if self.reason.is_ascii() {
            self.reason.as_str()
        } else if self.extended {
            "The message was refused by the recipient's mail filter"
        } else {
            return None;
        };
        let lines = reply_lines(reason);
        let n = lines.len();
        Some(
            lines
                .iter()
                .enumerate()
                .map(|(i, l)| format!("550{}5.7.1 {l}", if i + 1 == n { ' ' } else { '-' }))
                .collect::<Vec<_>>()
                .join("\r\n"),
        )
    }

    /// The reply a DSN reports for this recipient (one line; the reason
    /// in full is in the human-readable part as this line).
    pub fn dsn_reply(&self) -> String {
        let reason: String = self
            .reason
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        format!(
            "550 5.7.1 Refused by the recipient's mail filter: {}",
            reason.split_whitespace().collect::<Vec<_>>().join(" ")
        )
    }
}

/// RFC 5429 §2.2.1, RFC 8098: the MDN a `reject` sends to `to` (the
/// envelope sender): a human-readable part with the reason, the
/// disposition `automatic-action/MDN-sent-automatically; deleted`, and
/// the original header section.
pub fn mdn(hostname: &str, r: &Refused, to: &str, raw: &[u8]) -> Vec<u8> {
    let orig = mail_parser::MessageParser::new().parse_headers(raw);
    let subject = orig
        .as_ref()
        .and_then(|m| m.subject())
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    let original_id = orig
        .as_ref()
        .and_then(|m| m.message_id())
        .map(|m| format!("Original-Message-ID: <{m}>\r\n"))
        .unwrap_or_default();
    let text = format!(
        "Your message to <{addr}> was refused by the recipient's mail filtering\r\nprogram, and not delivered. The reason given is as follows:\r\n\r\n{reason}\r\n",
        addr = r.address,
        reason = r.reason.replace("\r\n", "\n").replace('\n', "\r\n"),
    );
    let report = format!(
        "Reporting-UA: {hostname}; Petrel Sieve\r\nFinal-Recipient: rfc822;{addr}\r\n{original_id}Disposition: automatic-action/MDN-sent-automatically; deleted\r\n",
        addr = r.address,
    );
    let body = mail_builder::mime::MimePart::new(
        mail_builder::headers::content_type::ContentType::new("multipart/report")
            .attribute("report-type", "disposition-notification"),
        vec![
            mail_builder::mime::MimePart::new("text/plain", text.clone()),
            mail_builder::mime::MimePart::new("message/disposition-notification", report),
            mail_builder::mime::MimePart::new(
                "text/rfc822-headers",
                // The original's header section, after Petrel's Return-Path.
                crate::queue::dsn::header_section(super::deliver::without_return_path(raw))
                    .to_vec(),
            ),
        ],
    );
    mail_builder::MessageBuilder::new()
        .from(r.address.as_str())
        .to(to)
        .subject(format!("Refused: {subject}").trim_end())
        .date(unix_now())
        .message_id(new_message_id(hostname))
        .header("Auto-Submitted", mail_builder::headers::raw::Raw::new("auto-replied"))
        .body(body)
        .write_to_vec()
        .unwrap_or_else(|_| {
            // Writing to memory does not fail; keep a plain notice anyway.
            format!(
                "From: <{}>\r\nTo: <{to}>\r\nDate: {}\r\nSubject: Refused\r\nAuto-Submitted: auto-replied\r\n\r\n{text}",
                r.address,
                rfc5322_date(unix_now())
            )
            .into_bytes()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(reason: &str, extended: bool) -> Refused {
        Refused {
            account: 1,
            address: "joe@example.org".into(),
            reason: reason.into(),
            extended,
        }
    }

    #[test]
    fn protocol_replies() {
        assert_eq!(
            refused("Gone fishing", false).protocol_reply().as_deref(),
            Some("550 5.7.1 Gone fishing")
        );
        // §2.5: several lines, several reply lines.
        assert_eq!(
            refused("one\r\ntwo\r\n", true).protocol_reply().as_deref(),
            Some("550-5.7.1 one\r\n550 5.7.1 two")
        );
        // §2.2: a reject with a non-ASCII reason goes by MDN instead;
        // §2.1.1: an ereject's is replaced.
        assert_eq!(refused("Parti à la pêche", false).protocol_reply(), None);
        assert_eq!(
            refused("Parti à la pêche", true)
                .protocol_reply()
                .as_deref(),
            Some("550 5.7.1 The message was refused by the recipient's mail filter")
        );
        let long = refused(&"x".repeat(900), true).protocol_reply().unwrap();
        assert!(long.lines().all(|l| l.len() <= 410), "{long}");
        assert_eq!(long.lines().count(), 3);
        assert_eq!(
            refused("", true).protocol_reply().as_deref(),
            Some("550 5.7.1 Refused by the recipient's mail filter")
        );
    }

    #[test]
    fn the_mdn_is_a_deleted_disposition() {
        let raw = b"Return-Path: <ann@remote.test>\r\nFrom: ann@remote.test\r\nSubject: hello\r\nMessage-ID: <m1@remote.test>\r\n\r\nbody\r\n";
        let mdn = mdn(
            "mx.test",
            &refused("Gone\r\nfishing", false),
            "ann@remote.test",
            raw,
        );
        let m = mail_parser::MessageParser::new().parse(&mdn).unwrap();
        assert_eq!(m.subject(), Some("Refused: hello"));
        let text = String::from_utf8_lossy(&mdn);
        assert!(
            text.contains("report-type=\"disposition-notification\"")
                || text.contains("report-type=disposition-notification"),
            "{text}"
        );
        assert!(
            text.contains("Disposition: automatic-action/MDN-sent-automatically; deleted"),
            "{text}"
        );
        assert!(
            text.contains("Original-Message-ID: <m1@remote.test>"),
            "{text}"
        );
        assert!(text.contains("Gone\r\nfishing"), "{text}");
        assert!(text.contains("Auto-Submitted: auto-replied"), "{text}");
        // The original header section, without Petrel's Return-Path.
        assert!(text.contains("Subject: hello"), "{text}");
        assert!(!text.contains("Return-Path"), "{text}");
        assert!(!text.contains("\r\nbody\r\n"), "headers only: {text}");
    }
}
