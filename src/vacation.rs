//! The vacation response (RFC 8621 §8), sent after delivery to an
//! account's inbox while it is on, following RFC 3834: only to the
//! Return-Path (§4), never to a null or robot sender (§2), not for
//! messages marked Auto-Submitted, bulk or list mail (§2), only when one
//! of the account's addresses is in a recipient field (§2), once per
//! sender in `VACATION_PERIOD` (§2: 7 days), from the null envelope
//! sender with NOTIFY=NEVER (§3.3) and `Auto-Submitted: auto-replied`
//! (§5). The settings are a mail-store record that JMAP edits; the
//! senders already answered are records too, cleared when the settings
//! change.

use mail_builder::headers::address::Address;
use mail_builder::MessageBuilder;
use serde::{Deserialize, Serialize};

use crate::core::{unix_now, Core};
use crate::directory::Account;
use crate::mail::records::Kind;
use crate::queue::{NewMessage, Notify, QueueRcpt};

/// RFC 3834 §2: the recommended period between two responses to one
/// sender.
pub const VACATION_PERIOD: i64 = 7 * 86400;

/// The singleton's record id.
pub const SINGLETON: u64 = 1;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Vacation {
    pub is_enabled: bool,
    pub from_date: Option<i64>,
    pub to_date: Option<i64>,
    pub subject: Option<String>,
    pub text_body: Option<String>,
    pub html_body: Option<String>,
}

impl Vacation {
    /// Whether a message arriving at `now` gets the response.
    pub fn active(&self, now: i64) -> bool {
        self.is_enabled
            && self.from_date.is_none_or(|f| now >= f)
            && self.to_date.is_none_or(|t| now < t)
    }
}

/// When the response went to one sender.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Replied {
    sender: String,
    at: i64,
}

/// The key a sender's record is kept under.
fn sender_key(sender: &str) -> u64 {
    use sha2::Digest;
    let h = sha2::Sha256::digest(sender.to_ascii_lowercase().as_bytes());
    u64::from_be_bytes(h[..8].try_into().expect("8 bytes")) >> 1
}

/// Why `raw` gets no response from `account`, or the address to send
/// it to (the Return-Path) and the original's Subject and Message-ID.
pub fn should_reply(
    raw: &[u8],
    account: &Account,
) -> Result<(String, String, Option<String>), &'static str> {
    let msg = mail_parser::MessageParser::default()
        .parse_headers(raw)
        .ok_or("the message does not parse")?;
    let text = |name: &str| msg.header_raw(name).map(|v| v.trim().to_ascii_lowercase());
    let sender = text("Return-Path")
        .map(|v| {
            v.trim_start_matches('<')
                .trim_end_matches('>')
                .trim()
                .to_string()
        })
        .unwrap_or_default();
    if sender.is_empty() || !sender.contains('@') {
        return Err("null or missing Return-Path");
    }
    let local = sender.split('@').next().unwrap_or_default();
    if local == "mailer-daemon"
        || local.starts_with("owner-")
        || local.ends_with("-request")
        || local == "postmaster"
        || local.starts_with("noreply")
        || local.starts_with("no-reply")
    {
        return Err("the sender is a robot address");
    }
    if text("Auto-Submitted").is_some_and(|v| !v.starts_with("no")) {
        return Err("the message is Auto-Submitted");
    }
    if text("Precedence").is_some_and(|v| ["bulk", "list", "junk"].contains(&v.as_str())) {
        return Err("the message is bulk or list mail");
    }
    if ["List-Id", "List-Unsubscribe", "List-Post"]
        .iter()
        .any(|h| msg.header(*h).is_some())
    {
        return Err("the message came from a mailing list");
    }
    let mine = |a: &str| {
        std::iter::once(&account.address)
            .chain(account.aliases.iter())
            .any(|own| own.eq_ignore_ascii_case(a))
    };
    let named = ["To", "Cc", "Bcc", "Resent-To", "Resent-Cc", "Resent-Bcc"]
        .iter()
        .filter_map(|h| msg.header(*h).and_then(|v| v.as_address()))
        .any(|list| list.iter().filter_map(|a| a.address()).any(mine));
    if !named {
        return Err("none of the account's addresses is a recipient");
    }
    Ok((
        sender,
        msg.subject().unwrap_or_default().to_string(),
        msg.message_id().map(str::to_string),
    ))
}

/// The response message.
fn build(
    v: &Vacation,
    account: &Account,
    to: &str,
    subject: &str,
    msg_id: Option<&str>,
    hostname: &str,
) -> Vec<u8> {
    let subject = v
        .subject
        .clone()
        .unwrap_or_else(|| format!("Auto: {subject}"));
    let mut m = MessageBuilder::new()
        .from(Address::new_address(
            (!account.name.is_empty()).then(|| account.name.clone()),
            account.address.clone(),
        ))
        .to(to.to_string())
        .subject(subject)
        .message_id(crate::core::new_message_id(hostname))
        .date(unix_now())
        .header(
            "Auto-Submitted",
            mail_builder::headers::raw::Raw::new("auto-replied"),
        );
    if let Some(id) = msg_id {
        m = m.in_reply_to(id.to_string()).references(id.to_string());
    }
    let text = v.text_body.clone().unwrap_or_else(|| match &v.html_body {
        Some(h) => strip_tags(h),
        None => "I am away and will read your message when I am back.".into(),
    });
    m = m.text_body(text);
    if let Some(h) = &v.html_body {
        m = m.html_body(h.clone());
    }
    m.write_to_vec().unwrap_or_default()
}

/// A plain-text rendering of an HTML body (RFC 8621 §8: the server
/// SHOULD make a text part when only HTML is given).
fn strip_tags(html: &str) -> String {
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

/// After `raw` was delivered to the inboxes of `accounts`: the
/// responses that are due, queued. Failures are logged; delivery stands.
pub async fn after_delivery(core: &Core, raw: &[u8], accounts: &[u32]) {
    let now = unix_now();
    for &acct in accounts {
        let v = match core
            .mail
            .record::<Vacation>(acct, Kind::Vacation, SINGLETON)
            .await
        {
            Ok(Some(v)) if v.active(now) => v,
            Ok(_) => continue,
            Err(e) => {
                tracing::warn!(account = acct, "vacation settings unreadable: {e}");
                continue;
            }
        };
        let Ok(Some(account)) = core.directory.account_by_id(acct).await else {
            continue;
        };
        let (to, subject, msg_id) = match should_reply(raw, &account) {
            Ok(x) => x,
            Err(why) => {
                tracing::debug!(account = %account.address, "no vacation response: {why}");
                continue;
            }
        };
        let key = sender_key(&to);
        match core
            .mail
            .record::<Replied>(acct, Kind::VacationSent, key)
            .await
        {
            Ok(Some(r)) if now - r.at < VACATION_PERIOD => {
                tracing::debug!(account = %account.address, to = %to, "no vacation response: answered within the period");
                continue;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(account = acct, "vacation memory unreadable: {e}");
                continue;
            }
        }
        let body = build(
            &v,
            &account,
            &to,
            &subject,
            msg_id.as_deref(),
            &core.config.hostname,
        );
        let mut rcpt = QueueRcpt::new(&to);
        rcpt.notify = Notify::default();
        let queued = core
            .queue
            .enqueue(NewMessage {
                from: String::new(),
                recipients: vec![rcpt],
                raw: body,
                ..Default::default()
            })
            .await;
        match queued {
            Ok(id) => {
                tracing::info!(account = %account.address, to = %to, queue_id = id, "vacation response queued");
                metrics::counter!("petrel_vacation_responses_total").increment(1);
                let r = Replied {
                    sender: to,
                    at: now,
                };
                if let Err(e) = core
                    .mail
                    .put_record(acct, Kind::VacationSent, key, &r)
                    .await
                {
                    tracing::warn!(account = acct, "vacation memory not saved: {e}");
                }
            }
            Err(e) => tracing::warn!(account = acct, "vacation response not queued: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joe() -> Account {
        serde_json::from_value(serde_json::json!({
            "id": 1, "address": "joe@example.org", "aliases": ["j@example.org"],
            "name": "Joe", "role": "user", "enabled": true
        }))
        .unwrap()
    }

    #[test]
    fn rfc3834_rules() {
        let base = "Return-Path: <ann@remote.test>\r\nFrom: ann@remote.test\r\nTo: joe@example.org\r\nSubject: Lunch\r\nMessage-ID: <l@r>\r\n";
        let m = |extra: &str| format!("{base}{extra}\r\nhi");
        let (to, subject, id) = should_reply(m("").as_bytes(), &joe()).unwrap();
        assert_eq!(
            (to.as_str(), subject.as_str(), id.as_deref()),
            ("ann@remote.test", "Lunch", Some("l@r"))
        );
        assert!(should_reply(m("Auto-Submitted: auto-replied\r\n").as_bytes(), &joe()).is_err());
        assert!(should_reply(m("Auto-Submitted: no\r\n").as_bytes(), &joe()).is_ok());
        assert!(should_reply(m("Precedence: bulk\r\n").as_bytes(), &joe()).is_err());
        assert!(should_reply(m("List-Id: <x.lists>\r\n").as_bytes(), &joe()).is_err());
        let null = base.replace("<ann@remote.test>", "<>");
        assert!(should_reply(format!("{null}\r\nhi").as_bytes(), &joe()).is_err());
        let daemon = base.replace("<ann@remote.test>", "<MAILER-DAEMON@remote.test>");
        assert!(should_reply(format!("{daemon}\r\nhi").as_bytes(), &joe()).is_err());
        let other = base.replace("To: joe@example.org", "To: team@example.org");
        assert!(should_reply(format!("{other}\r\nhi").as_bytes(), &joe()).is_err());
        let alias = base.replace("To: joe@example.org", "To: x@y.z\r\nCc: J@example.org");
        assert!(should_reply(format!("{alias}\r\nhi").as_bytes(), &joe()).is_ok());
    }

    #[test]
    fn periods_and_messages() {
        let v = Vacation {
            is_enabled: true,
            from_date: Some(100),
            to_date: Some(200),
            html_body: Some("<p>Away &amp; back</p>".into()),
            ..Default::default()
        };
        assert!(!v.active(99) && v.active(100) && v.active(199) && !v.active(200));
        assert!(!Vacation {
            is_enabled: false,
            ..Default::default()
        }
        .active(0));
        let raw = build(
            &v,
            &joe(),
            "ann@remote.test",
            "Lunch",
            Some("l@r"),
            "mx.example.org",
        );
        let m = mail_parser::MessageParser::default().parse(&raw).unwrap();
        assert_eq!(m.subject(), Some("Auto: Lunch"));
        assert_eq!(
            m.header_raw("Auto-Submitted").map(str::trim),
            Some("auto-replied")
        );
        assert_eq!(m.in_reply_to().as_text(), Some("l@r"));
        assert_eq!(m.body_text(0).unwrap(), "Away & back");
        assert!(m.body_html(0).unwrap().contains("<p>"));
    }
}
