//! The JMAP vacation response (RFC 8621 §8) as a Sieve vacation action
//! (RFC 5230): the settings are a mail-store record that JMAP edits;
//! [`script`] turns them into a script that `sieve::deliver` runs at
//! each delivery to the Inbox while they are on, when the account's own
//! scripts sent no response. One engine answers both, with one memory
//! of whom it answered. Whatever sends a response also follows RFC 3834
//! through [`should_reply`]: only to the Return-Path (§4), never to a
//! null or robot sender (§2), not for messages marked Auto-Submitted,
//! bulk or list mail (§2), only when one of the account's addresses is
//! in a recipient field (§2); from the null envelope sender with
//! NOTIFY=NEVER (§3.3) and `Auto-Submitted: auto-replied` (§5), once
//! per sender in `VACATION_PERIOD` (§2: 7 days).

use serde::{Deserialize, Serialize};

use crate::directory::Account;

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

/// Why `raw` gets no response from `account`, or the address to send
/// it to (the Return-Path) and the original's Subject and Message-ID.
pub fn should_reply(
    raw: &[u8],
    account: &Account,
) -> Result<(String, String, Option<String>), &'static str> {
    reply_rules(raw, Some(account))
}

/// [`should_reply`] without the check that the account is a recipient:
/// for a Sieve `vacation`, whose `:addresses` add to the account's and
/// which sieve-rs checks against the headers itself (RFC 5230 §4.5).
pub fn sender_allows_reply(raw: &[u8]) -> Result<(), &'static str> {
    reply_rules(raw, None).map(|_| ())
}

fn reply_rules(
    raw: &[u8],
    account: Option<&Account>,
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
    if let Some(account) = account {
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
    }
    Ok((
        sender,
        msg.subject().unwrap_or_default().to_string(),
        msg.message_id().map(str::to_string),
    ))
}

/// The Sieve script that sends the response (RFC 5230 vacation), run
/// at delivery by `sieve::deliver` when the account's own scripts sent
/// none: once per sender in `VACATION_PERIOD`, remembered under a handle
/// made from the settings (new settings answer everyone once more), to
/// mail naming one of the account's addresses.
pub fn script(v: &Vacation, account: &Account) -> String {
    use sha2::Digest;
    let q = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    let settings = serde_json::to_vec(v).unwrap_or_default();
    let handle = hex::encode(&sha2::Sha256::digest(&settings)[..8]);
    let mut text = format!(
        "require \"vacation\";\nvacation :days {} :handle \"jmap-{handle}\"",
        VACATION_PERIOD / 86400
    );
    if !account.aliases.is_empty() {
        let list: Vec<String> = account
            .aliases
            .iter()
            .map(|a| format!("\"{}\"", q(a)))
            .collect();
        text.push_str(&format!(" :addresses [{}]", list.join(", ")));
    }
    if let Some(subject) = &v.subject {
        text.push_str(&format!(" :subject \"{}\"", q(subject)));
    }
    let plain = v.text_body.clone().unwrap_or_else(|| match &v.html_body {
        Some(h) => crate::mail::mime::strip_tags(h),
        None => "I am away and will read your message when I am back.".into(),
    });
    let body = match &v.html_body {
        // RFC 5230 §5.8 :mime: a MIME entity, here text and HTML.
        Some(html) => {
            let boundary = format!("vacation-{handle}");
            text.push_str(" :mime");
            format!(
                "Content-Type: multipart/alternative; boundary=\"{boundary}\"\r\n\r\n\
                 --{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\
                 Content-Transfer-Encoding: 8bit\r\n\r\n{plain}\r\n\
                 --{boundary}\r\nContent-Type: text/html; charset=utf-8\r\n\
                 Content-Transfer-Encoding: 8bit\r\n\r\n{html}\r\n--{boundary}--\r\n"
            )
        }
        None => plain,
    };
    text.push_str(&format!(" \"{}\";\n", q(&body)));
    text
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
        // Sieve's vacation checks recipients itself, with :addresses.
        assert!(sender_allows_reply(format!("{other}\r\nhi").as_bytes()).is_ok());
        assert!(sender_allows_reply(format!("{null}\r\nhi").as_bytes()).is_err());
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
        // The script compiles as a user's, answers the aliases too, and
        // sends text and HTML (what it sends: sieve::deliver's tests).
        let text = script(&v, &joe());
        crate::sieve::scripts::check(&Default::default(), &text).unwrap();
        assert!(text.contains(":addresses [\"j@example.org\"]"), "{text}");
        assert!(
            text.contains(":mime") && text.contains("Away & back"),
            "{text}"
        );
        let other = Vacation {
            subject: Some("Out \"now\"".into()),
            ..v.clone()
        };
        let handle = |t: &str| t.split(":handle ").nth(1).unwrap()[..22].to_string();
        assert_ne!(
            handle(&script(&other, &joe())),
            handle(&text),
            "new settings, new memory"
        );
    }
}
