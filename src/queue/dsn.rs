//! Delivery status notifications (RFC 3464) in a multipart/report
//! (RFC 6522): bounces, delay notices and, when NOTIFY=SUCCESS asked for
//! them, success reports. Sent from the null sender, so they never bounce.

use super::{QueueEntry, QueueRcpt, RcptStatus};
use crate::core::{rfc5322_date, session_id};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Failed,
    Delayed,
    Delivered,
    /// Passed to a server that does not offer DSN (RFC 3464 §2.3.3).
    Relayed,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Action::Failed => "failed",
            Action::Delayed => "delayed",
            Action::Delivered => "delivered",
            Action::Relayed => "relayed",
        }
    }
}

/// The enhanced status code in a reply text ("550 5.1.1 …" → "5.1.1"),
/// or one derived from the reply code's class (RFC 3463 §3.1).
pub fn status_of(reply: &str) -> String {
    let mut words = reply.split_whitespace();
    let code = words.next().unwrap_or("");
    if let Some(enh) = words.next() {
        let parts: Vec<&str> = enh.split('.').collect();
        if parts.len() == 3
            && matches!(parts[0], "2" | "4" | "5")
            && parts[1..]
                .iter()
                .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
        {
            return enh.to_string();
        }
    }
    match code.chars().next() {
        Some('2') => "2.0.0".into(),
        Some('5') => "5.0.0".into(),
        _ => "4.0.0".into(),
    }
}

/// The header section of a message (up to the empty line).
pub(crate) fn header_section(raw: &[u8]) -> &[u8] {
    match raw.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(p) => &raw[..p + 2],
        None => raw,
    }
}

/// Builds the report for `rcpts` of `entry`. `hostname` is the reporting
/// MTA; `raw` the original message.
pub fn build(
    hostname: &str,
    entry: &QueueEntry,
    rcpts: &[(&QueueRcpt, Action)],
    raw: &[u8],
    retry_until: Option<i64>,
) -> Vec<u8> {
    let boundary = format!("petrel-dsn-{}", session_id());
    let worst = if rcpts.iter().any(|(_, a)| *a == Action::Failed) {
        Action::Failed
    } else if rcpts.iter().any(|(_, a)| *a == Action::Delayed) {
        Action::Delayed
    } else {
        Action::Delivered
    };
    let subject = match worst {
        Action::Failed => "Undelivered Mail Returned to Sender",
        Action::Delayed => "Delivery Status Notification (Delay)",
        Action::Delivered | Action::Relayed => "Delivery Status Notification (Success)",
    };
    let mut human = String::new();
    match worst {
        Action::Failed => human.push_str(&format!(
            "This is the mail system at {hostname}.\r\n\r\nYour message could not be delivered to one or more recipients.\r\n\r\n"
        )),
        Action::Delayed => human.push_str(&format!(
            "This is the mail system at {hostname}.\r\n\r\nYour message has not been delivered yet. It stays queued and\r\ndelivery will be retried{}.\r\n\r\n",
            retry_until.map(|t| format!(" until {}", rfc5322_date(t))).unwrap_or_default()
        )),
        Action::Delivered => human.push_str(&format!(
            "This is the mail system at {hostname}.\r\n\r\nYour message was delivered to the recipients below.\r\n\r\n"
        )),
        Action::Relayed => human.push_str(&format!(
            "This is the mail system at {hostname}.\r\n\r\nYour message was passed on to a server that sends no delivery\r\nnotifications; this is the last report you will get.\r\n\r\n"
        )),
    }
    for (r, a) in rcpts {
        let detail = match (&r.status, a) {
            (RcptStatus::Failed { reply, .. }, _) | (RcptStatus::Delivered { reply, .. }, _) => {
                reply.clone()
            }
            (RcptStatus::Pending, _) => r.last_error.clone().unwrap_or_default(),
        };
        human.push_str(&format!("<{}>: {}: {}\r\n", r.address, a.name(), detail));
    }

    let mut status = format!("Reporting-MTA: dns; {hostname}\r\n");
    if let Some(envid) = &entry.env_id {
        status.push_str(&format!("Original-Envelope-Id: {envid}\r\n"));
    }
    status.push_str(&format!(
        "Arrival-Date: {}\r\n",
        rfc5322_date(entry.created)
    ));
    for (r, a) in rcpts {
        status.push_str("\r\n");
        status.push_str(&format!("Final-Recipient: rfc822; {}\r\n", r.address));
        if let Some(o) = &r.orcpt {
            status.push_str(&format!("Original-Recipient: {o}\r\n"));
        }
        let (reply, host) = match &r.status {
            RcptStatus::Failed { reply, host } | RcptStatus::Delivered { reply, host } => {
                (reply.clone(), host.clone())
            }
            RcptStatus::Pending => (
                r.last_error
                    .clone()
                    .unwrap_or_else(|| "400 4.0.0 queued".into()),
                String::new(),
            ),
        };
        status.push_str(&format!("Action: {}\r\n", a.name()));
        status.push_str(&format!("Status: {}\r\n", status_of(&reply)));
        if !host.is_empty() {
            status.push_str(&format!("Remote-MTA: dns; {host}\r\n"));
        }
        if !reply.is_empty() {
            status.push_str(&format!("Diagnostic-Code: smtp; {reply}\r\n"));
        }
        if *a == Action::Delayed {
            if let Some(t) = retry_until {
                status.push_str(&format!("Will-Retry-Until: {}\r\n", rfc5322_date(t)));
            }
        }
    }

    let (orig_type, orig) = if entry.ret_full && worst == Action::Failed {
        ("message/rfc822", raw)
    } else {
        ("text/rfc822-headers", header_section(raw))
    };

    let mut out = format!(
        "From: Mail Delivery System <MAILER-DAEMON@{hostname}>\r\n\
         To: <{to}>\r\n\
         Subject: {subject}\r\n\
         Date: {date}\r\n\
         Message-ID: <{id}@{hostname}>\r\n\
         Auto-Submitted: auto-replied\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"{boundary}\"\r\n\
         \r\n\
         This is a delivery status notification in MIME format.\r\n\
         \r\n\
         --{boundary}\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         \r\n\
         {human}\r\n\
         --{boundary}\r\n\
         Content-Type: message/delivery-status\r\n\
         \r\n\
         {status}\r\n\
         --{boundary}\r\n\
         Content-Type: {orig_type}\r\n\
         \r\n",
        to = entry.from,
        date = rfc5322_date(crate::core::unix_now()),
        id = session_id(),
    )
    .into_bytes();
    out.extend_from_slice(orig);
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::Notify;

    #[test]
    fn enhanced_status() {
        assert_eq!(status_of("550 5.1.1 No such user"), "5.1.1");
        assert_eq!(status_of("451 Try later"), "4.0.0");
        assert_eq!(status_of("554 no"), "5.0.0");
        assert_eq!(status_of("250 2.0.0 OK"), "2.0.0");
        assert_eq!(status_of("550 9.9.9 x"), "5.0.0");
    }

    #[test]
    fn bounce_is_a_parseable_report() {
        let rcpt = QueueRcpt {
            address: "bob@remote.test".into(),
            status: RcptStatus::Failed {
                reply: "550 5.1.1 No such user".into(),
                host: "mx.remote.test".into(),
            },
            notify: Notify::default_policy(),
            orcpt: Some("rfc822;bob@remote.test".into()),
            last_error: None,
        };
        let entry = QueueEntry {
            id: 1,
            from: "joe@example.org".into(),
            blob: String::new(),
            size: 0,
            created: 0,
            next_attempt: 0,
            attempts: 1,
            expires: 0,
            env_id: Some("ENV1".into()),
            ret_full: false,
            requiretls: false,
            smtputf8: false,
            delay_notified: false,
            recipients: vec![rcpt.clone()],
            track: false,
        };
        let raw = b"Subject: hello\r\nFrom: joe@example.org\r\n\r\nsecret body\r\n";
        let dsn = build(
            "mx.example.org",
            &entry,
            &[(&rcpt, Action::Failed)],
            raw,
            None,
        );
        let msg = mail_parser::MessageParser::default().parse(&dsn).unwrap();
        assert_eq!(msg.subject(), Some("Undelivered Mail Returned to Sender"));
        let text = String::from_utf8_lossy(&dsn);
        assert!(text.contains("report-type=delivery-status"));
        assert!(text.contains("Final-Recipient: rfc822; bob@remote.test"));
        assert!(text.contains("Status: 5.1.1"));
        assert!(text.contains("Original-Envelope-Id: ENV1"));
        assert!(text.contains("Subject: hello"));
        // RET=HDRS (the default) returns the header only.
        assert!(!text.contains("secret body"));
        assert_eq!(msg.parts.len(), 4, "multipart with three parts");
    }
}
