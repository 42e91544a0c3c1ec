//! Delivery and read reports for JMAP submissions (RFC 8621 §7): a DSN
//! (RFC 3464) or MDN (RFC 8098) delivered into an account is matched by
//! the Message-ID of the message it reports on to that account's
//! EmailSubmission; its blob id joins `dsnBlobIds` / `mdnBlobIds`, a DSN
//! whose Action is `delivered` or `failed` sets the recipient's
//! `delivered` to "yes" or "no" (other actions change nothing), and an
//! MDN whose disposition type is `displayed` sets `displayed` to "yes".
//! The reports stay ordinary Emails too.

use mail_parser::MimeHeaders;

use super::methods::submission::Submission;
use crate::core::Core;
use crate::mail::records::Kind;

/// What a report says about the message it reports on.
#[derive(Debug, PartialEq)]
pub enum Report {
    /// Per recipient (the address of Final-Recipient, lower case) the
    /// Action, lower case.
    Dsn {
        original: String,
        actions: Vec<(String, String)>,
    },
    Mdn {
        original: String,
        recipient: String,
        displayed: bool,
    },
}

/// Whether a header section announces a report (multipart/report), so
/// that only those messages are kept to be read after delivery.
pub fn is_report(head: &[u8]) -> bool {
    let head = String::from_utf8_lossy(head).to_ascii_lowercase();
    head.contains("multipart/report")
}

/// The address of an RFC 3464 / RFC 8098 recipient field
/// (`rfc822; bob@example.org`), lower case.
fn address(field: &str) -> String {
    let v = field.split_once(';').map_or(field, |(_, a)| a);
    v.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_ascii_lowercase()
}

fn bare_id(v: &str) -> String {
    v.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
        .to_string()
}

/// Reads a DSN or MDN; `None` for any other message, or a report that
/// does not say which message it is about.
pub fn parse(raw: &[u8]) -> Option<Report> {
    let msg = mail_parser::MessageParser::default().parse(raw)?;
    let part_of = |subtype: &str| {
        msg.parts.iter().find(|p| {
            p.content_type().is_some_and(|c| {
                c.ctype().eq_ignore_ascii_case("message")
                    && c.subtype().is_some_and(|s| s.eq_ignore_ascii_case(subtype))
            })
        })
    };
    // The returned message or its header (RFC 3464 §2, RFC 8098 §3).
    let returned_id = || {
        msg.parts.iter().find_map(|p| match &p.body {
            mail_parser::PartType::Message(m) => m.message_id().map(String::from),
            _ if p.content_type().is_some_and(|c| {
                c.subtype()
                    .is_some_and(|s| s.eq_ignore_ascii_case("rfc822-headers"))
            }) =>
            {
                mail_parser::MessageParser::default()
                    .parse(p.contents())
                    .and_then(|m| m.message_id().map(String::from))
            }
            _ => None,
        })
    };
    if let Some(p) = part_of("delivery-status") {
        let text = String::from_utf8_lossy(p.contents()).replace("\r\n", "\n");
        let mut actions = Vec::new();
        // The per-message block, then one block per recipient.
        for block in text.split("\n\n").skip(1) {
            let fields = super::methods::mdn::report_fields(block);
            let get = |n: &str| {
                fields
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(n))
                    .map(|(_, v)| v.clone())
            };
            if let (Some(r), Some(a)) = (get("Final-Recipient"), get("Action")) {
                actions.push((address(&r), a.trim().to_ascii_lowercase()));
            }
        }
        return Some(Report::Dsn {
            original: bare_id(&returned_id()?),
            actions,
        });
    }
    let p = part_of("disposition-notification")?;
    let fields = super::methods::mdn::report_fields(&String::from_utf8_lossy(p.contents()));
    let get = |n: &str| {
        fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.clone())
    };
    let original = get("Original-Message-ID").or_else(returned_id)?;
    let displayed = get("Disposition")
        .and_then(|d| super::methods::mdn::disposition_of(&d))
        .is_some_and(|d| d["type"] == "displayed");
    Some(Report::Mdn {
        original: bare_id(&original),
        recipient: address(&get("Final-Recipient")?),
        displayed,
    })
}

/// After a report was delivered: records it on the submissions it
/// answers, in each account that received it (`stored`: account, Email).
pub async fn after_delivery(core: &Core, raw: &[u8], stored: &[(u32, u64)]) {
    let Some(report) = parse(raw) else {
        return;
    };
    let original = match &report {
        Report::Dsn { original, .. } | Report::Mdn { original, .. } => original,
    };
    for &(acct, email) in stored {
        if let Err(e) = record(core, acct, email, original, &report).await {
            tracing::warn!(account = acct, "delivery report not recorded: {e}");
        }
    }
}

async fn record(
    core: &Core,
    acct: u32,
    email: u64,
    original: &str,
    report: &Report,
) -> Result<(), crate::mail::MailError> {
    let mail = &core.mail;
    for (n, mut s) in mail.records::<Submission>(acct, Kind::Submission).await? {
        let Some(sent) = super::id::parse_email(&s.email_id) else {
            continue;
        };
        let matches = mail
            .email_meta(acct, sent)
            .await?
            .and_then(|m| m.meta.message_id)
            .is_some_and(|m| bare_id(&m) == original);
        if !matches {
            continue;
        }
        let blob = super::id::blob(email);
        let kind = match report {
            Report::Dsn { actions, .. } => {
                s.dsn_blob_ids.push(blob);
                for (rcpt, action) in actions {
                    // §7: delivered → yes, failed → no; other actions
                    // (delayed, relayed, expanded) change nothing.
                    let v = match action.as_str() {
                        "delivered" => "yes",
                        "failed" => "no",
                        _ => continue,
                    };
                    s.reported_delivered.insert(rcpt.clone(), v.to_string());
                }
                "DSN"
            }
            Report::Mdn {
                recipient,
                displayed,
                ..
            } => {
                s.mdn_blob_ids.push(blob);
                if *displayed {
                    s.displayed.insert(recipient.clone());
                }
                "MDN"
            }
        };
        mail.update_record(acct, Kind::Submission, n, &s).await?;
        tracing::info!(
            account = acct,
            submission = n,
            report = kind,
            "JMAP submission report recorded"
        );
        metrics::counter!("petrel_jmap_submission_reports_total", "kind" => kind).increment(1);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dsns_and_mdns() {
        let dsn = b"From: MAILER-DAEMON@mx.example\r\nTo: ann@example.org\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nReport.\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example\r\n\r\nFinal-Recipient: rfc822; Bob@Remote.test\r\nAction: delivered\r\nStatus: 2.0.0\r\n\r\nFinal-Recipient: rfc822;carol@remote.test\r\nAction: Delayed\r\nStatus: 4.0.0\r\n--b\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <orig@example.org>\r\nSubject: hi\r\n\r\n--b--\r\n";
        assert_eq!(
            parse(dsn),
            Some(Report::Dsn {
                original: "orig@example.org".into(),
                actions: vec![
                    ("bob@remote.test".into(), "delivered".into()),
                    ("carol@remote.test".into(), "delayed".into())
                ],
            })
        );
        let mdn = b"From: joe@example.com\r\nTo: ann@example.org\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=disposition-notification; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nShown.\r\n--b\r\nContent-Type: message/disposition-notification\r\n\r\nReporting-UA: pc; Mail\r\nFinal-Recipient: rfc822;Joe@example.com\r\nOriginal-Message-ID: <x1@example.org>\r\nDisposition: manual-action/MDN-sent-manually; displayed\r\n\r\n--b--\r\n";
        assert_eq!(
            parse(mdn),
            Some(Report::Mdn {
                original: "x1@example.org".into(),
                recipient: "joe@example.com".into(),
                displayed: true,
            })
        );
        assert!(is_report(
            b"Content-Type: Multipart/Report; report-type=x\r\n\r\n"
        ));
        assert_eq!(parse(b"Subject: plain\r\n\r\nhello\r\n"), None);
    }
}
