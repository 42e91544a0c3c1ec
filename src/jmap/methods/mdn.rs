//! MDN/send and MDN/parse (RFC 9007): read receipts in the format of
//! RFC 8098. MDN/send builds the multipart/report for a received Email
//! that asks for one (Disposition-Notification-To) and queues it with a
//! null envelope sender to the addresses it names; MDN/parse reads the
//! message/disposition-notification part of blobs.

use serde_json::{json, Map, Value};

use mail_parser::MimeHeaders;

use super::identity;
use super::{store_error, Context};
use crate::jmap::id;
use crate::jmap::request::MethodError;
use crate::queue::{NewMessage, QueueRcpt};

const ACTION_MODES: &[&str] = &["manual-action", "automatic-action"];
const SENDING_MODES: &[&str] = &["mdn-sent-manually", "mdn-sent-automatically"];
const TYPES: &[&str] = &["deleted", "dispatched", "displayed", "processed"];

fn invalid(property: &str, why: impl Into<String>) -> Value {
    json!({"type": "invalidProperties", "properties": [property], "description": why.into()})
}

/// The fields of a message/disposition-notification body (RFC 8098
/// §3.1: header-like lines, folded lines continued).
pub fn report_fields(body: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in body.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            if !name.is_empty() && !name.contains(char::is_whitespace) {
                out.push((name.to_string(), value.trim().to_string()));
            }
        }
    }
    out
}

/// `manual-action/MDN-sent-manually; displayed/error` as RFC 9007's
/// Disposition object (lower case, RFC 8098 §3.2.6 is case-insensitive).
pub(crate) fn disposition_of(v: &str) -> Option<Value> {
    // §7: OWS is [CFWS]; comments go (they do not nest in practice).
    let mut plain = String::with_capacity(v.len());
    let mut depth = 0usize;
    for c in v.chars() {
        match c {
            '(' => depth += 1,
            ')' if depth > 0 => depth -= 1,
            c if depth == 0 => plain.push(c),
            _ => {}
        }
    }
    let (mode, kind) = plain.split_once(';')?;
    let (action, sending) = mode.split_once('/')?;
    let kind = kind.trim().split('/').next()?.trim().to_ascii_lowercase();
    Some(json!({
        "actionMode": action.trim().to_ascii_lowercase(),
        "sendingMode": sending.trim().to_ascii_lowercase(),
        "type": kind,
    }))
}

/// An MDN object from a message holding a disposition notification.
pub fn parse_mdn(raw: &[u8]) -> Option<Value> {
    let msg = mail_parser::MessageParser::default().parse(raw)?;
    let report = msg.parts.iter().find(|p| {
        p.content_type().is_some_and(|c| {
            c.ctype().eq_ignore_ascii_case("message")
                && c.subtype()
                    .is_some_and(|s| s.eq_ignore_ascii_case("disposition-notification"))
        })
    })?;
    let fields = report_fields(&String::from_utf8_lossy(report.contents()));
    let get = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let disposition = disposition_of(&get("Disposition")?)?;
    let text = msg.parts.iter().find(|p| {
        p.content_type().is_none_or(|c| {
            c.ctype().eq_ignore_ascii_case("text")
                && c.subtype().is_none_or(|s| s.eq_ignore_ascii_case("plain"))
        }) && matches!(p.body, mail_parser::PartType::Text(_))
    });
    let errors: Vec<String> = fields
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("Error"))
        .map(|(_, v)| v.clone())
        .collect();
    const KNOWN: &[&str] = &[
        "Reporting-UA",
        "MDN-Gateway",
        "Original-Recipient",
        "Final-Recipient",
        "Original-Message-ID",
        "Disposition",
        "Error",
    ];
    let extensions: Map<String, Value> = fields
        .iter()
        .filter(|(n, _)| !KNOWN.iter().any(|k| k.eq_ignore_ascii_case(n)))
        .map(|(n, v)| (n.clone(), json!(v)))
        .collect();
    // The original (or its header) is the third part of the report.
    let top_parts = match &msg.parts.first()?.body {
        mail_parser::PartType::Multipart(children) => children.len(),
        _ => 0,
    };
    Some(json!({
        "forEmailId": null,
        "subject": msg.subject(),
        "textBody": text.and_then(|p| p.text_contents()),
        "includeOriginalMessage": top_parts >= 3,
        "reportingUA": get("Reporting-UA"),
        "disposition": disposition,
        "mdnGateway": get("MDN-Gateway"),
        "originalRecipient": get("Original-Recipient"),
        "finalRecipient": get("Final-Recipient"),
        "originalMessageId": get("Original-Message-ID"),
        "error": if errors.is_empty() { Value::Null } else { json!(errors) },
        "extensionFields": if extensions.is_empty() { Value::Null } else { Value::Object(extensions) },
    }))
}

/// MDN/parse (RFC 9007 §2.2).
pub async fn parse(cx: &Context<'_>, args: Map<String, Value>) -> Result<Value, MethodError> {
    let acct = cx.account_id(&args).await?;
    let ids = super::blob_ids(&args, cx.core.config.jmap.max_objects_in_get)?;
    let (mut parsed, mut not_parsable, mut not_found) = (Map::new(), Vec::new(), Vec::new());
    for b in &ids {
        let blob = cx.resolve(b).unwrap_or_else(|| b.clone());
        match cx.read_blob(&super::Access::own(acct), &blob).await? {
            None => not_found.push(json!(b)),
            Some(raw) => match parse_mdn(&raw) {
                Some(m) => {
                    parsed.insert(b.to_string(), m);
                }
                None => not_parsable.push(json!(b)),
            },
        }
    }
    let or_null = |v: Vec<Value>| if v.is_empty() { Value::Null } else { json!(v) };
    Ok(json!({
        "accountId": id::account(acct),
        "parsed": if parsed.is_empty() { Value::Null } else { Value::Object(parsed) },
        "notParsable": or_null(not_parsable),
        "notFound": or_null(not_found),
    }))
}

/// The Disposition object checked: (action, sending, type), lower case.
fn disposition(v: Option<&Value>) -> Result<(String, String, String), Value> {
    let d = v
        .and_then(Value::as_object)
        .ok_or_else(|| invalid("disposition", "disposition is required"))?;
    let pick = |k: &str, allowed: &[&str]| -> Result<String, Value> {
        let s = d
            .get(k)
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase)
            .ok_or_else(|| invalid("disposition", format!("disposition/{k} is required")))?;
        if allowed.contains(&s.as_str()) {
            Ok(s)
        } else {
            Err(invalid(
                "disposition",
                format!("disposition/{k} must be one of {}", allowed.join(", ")),
            ))
        }
    };
    Ok((
        pick("actionMode", ACTION_MODES)?,
        pick("sendingMode", SENDING_MODES)?,
        pick("type", TYPES)?,
    ))
}

fn optional_string(obj: &Map<String, Value>, k: &str) -> Result<Option<String>, Value> {
    match obj.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(k, format!("{k} must be a String or null"))),
    }
}

/// One header field value without line breaks (what the client gives
/// goes into header lines).
fn one_line(s: &str) -> String {
    s.split(['\r', '\n']).collect::<Vec<_>>().join(" ")
}

/// An address compared as RFC 8098 §2.1 says: the local part without
/// quoting or escapes (case kept), the domain in lower case.
fn canonical(address: &str) -> String {
    let (local, domain) = address.rsplit_once('@').unwrap_or((address, ""));
    let local: String = local.chars().filter(|c| *c != '"' && *c != '\\').collect();
    format!("{local}@{}", domain.to_ascii_lowercase())
}

/// The addresses of an address-list field value (mail-parser reads
/// Disposition-Notification-To as unstructured, so the value is read
/// as a To field).
fn addresses(value: Option<&str>) -> Vec<String> {
    let Some(v) = value else {
        return Vec::new();
    };
    let as_to = format!("To:{v}\r\n\r\n");
    mail_parser::MessageParser::default()
        .parse_headers(as_to.as_bytes())
        .and_then(|m| {
            m.to().map(|a| {
                a.iter()
                    .filter_map(|x| x.address())
                    // A value mail-parser misreads (it takes a bare
                    // quoted local part for none) names no one.
                    .filter(|a| {
                        a.rsplit_once('@')
                            .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty())
                    })
                    .map(str::to_string)
                    .collect()
            })
        })
        .unwrap_or_default()
}

/// Builds and queues one MDN; the MDN object with what the server set.
async fn send_one(
    cx: &Context<'_>,
    acct: u32,
    from: &identity::Identity,
    obj: &Map<String, Value>,
) -> Result<Result<(String, Value), Value>, MethodError> {
    let mail = &cx.core.mail;
    let for_email = obj
        .get("forEmailId")
        .and_then(Value::as_str)
        .map(|e| cx.resolve(e).unwrap_or_else(|| e.to_string()));
    let Some(for_email) = for_email else {
        return Ok(Err(invalid("forEmailId", "forEmailId is required")));
    };
    let (action, sending, kind) = match disposition(obj.get("disposition")) {
        Ok(d) => d,
        Err(e) => return Ok(Err(e)),
    };
    let texts =
        ["subject", "textBody", "reportingUA", "finalRecipient"].map(|k| optional_string(obj, k));
    let [subject, text_body, reporting_ua, final_recipient] = match texts {
        [Ok(a), Ok(b), Ok(c), Ok(d)] => [a, b, c, d],
        other => {
            return Ok(Err(other
                .into_iter()
                .find_map(Result::err)
                .expect("an error")))
        }
    };
    // RFC 8098 §3.1: the report part is 7bit.
    for (k, v) in [
        ("reportingUA", &reporting_ua),
        ("finalRecipient", &final_recipient),
    ] {
        if v.as_ref().is_some_and(|v| !v.is_ascii()) {
            return Ok(Err(invalid(
                k,
                format!("{k} must be US-ASCII (RFC 8098 §3.1)"),
            )));
        }
    }
    let include = obj
        .get("includeOriginalMessage")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut extensions = Vec::new();
    if let Some(x) = obj.get("extensionFields").filter(|v| !v.is_null()) {
        let Some(m) = x.as_object() else {
            return Ok(Err(invalid("extensionFields", "an object of Strings")));
        };
        for (k, v) in m {
            let ok_name = !k.is_empty()
                && k.bytes().all(|b| b.is_ascii_graphic() && b != b':')
                && k.starts_with("X-");
            match v.as_str() {
                Some(v) if ok_name && v.is_ascii() => extensions.push((k.clone(), one_line(v))),
                _ => {
                    return Ok(Err(invalid(
                        "extensionFields",
                        "extension field names start with X- and values are US-ASCII Strings",
                    )))
                }
            }
        }
    }
    // The Email, visible to the account.
    let Some(e) = id::parse_email(&for_email) else {
        return Ok(Err(
            json!({"type": "notFound", "description": "no such Email"}),
        ));
    };
    let (Some(meta), Some(st)) = (
        mail.email_meta(acct, e).await.map_err(store_error)?,
        mail.email_state(acct, e).await.map_err(store_error)?,
    ) else {
        return Ok(Err(
            json!({"type": "notFound", "description": "no such Email"}),
        ));
    };
    if !super::visible(&st) {
        return Ok(Err(
            json!({"type": "notFound", "description": "no such Email"}),
        ));
    }
    if st
        .keywords
        .iter()
        .any(|k| k.eq_ignore_ascii_case("$mdnsent"))
    {
        return Ok(Err(json!({"type": "mdnAlreadySent",
            "description": "the Email has the $mdnsent keyword: an MDN was sent for it"})));
    }
    let raw = mail.email_raw(&meta).await.map_err(store_error)?;
    let Some(orig) = mail_parser::MessageParser::default().parse_headers(&raw) else {
        return Ok(Err(invalid("forEmailId", "the Email cannot be read")));
    };
    // RFC 8098 §2.1: never an MDN for an MDN.
    let is_mdn = orig.content_type().is_some_and(|c| {
        c.ctype().eq_ignore_ascii_case("multipart")
            && c.subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case("report"))
            && c.attribute("report-type")
                .is_some_and(|r| r.eq_ignore_ascii_case("disposition-notification"))
    });
    if is_mdn {
        return Ok(Err(invalid(
            "forEmailId",
            "the Email is itself a disposition notification (RFC 8098 §2.1)",
        )));
    }
    let to = addresses(orig.header_raw("Disposition-Notification-To"));
    if to.is_empty() {
        return Ok(Err(invalid(
            "forEmailId",
            "the Email asks for no MDN: it has no Disposition-Notification-To",
        )));
    }
    // RFC 8098 §2.1, §6.4: never automatically unless the request
    // names one address, the Return-Path's.
    if sending == "mdn-sent-automatically" {
        let return_path = addresses(orig.header_raw("Return-Path"));
        let distinct: std::collections::HashSet<String> = to.iter().map(|a| canonical(a)).collect();
        let same = distinct.len() == 1
            && return_path.first().map(|r| canonical(r)).as_ref() == distinct.iter().next();
        if !same {
            return Ok(Err(invalid(
                "disposition",
                "this MDN cannot be sent automatically: Disposition-Notification-To is not the Return-Path's one address; ask the user and send with sendingMode mdn-sent-manually (RFC 8098 §2.1)",
            )));
        }
    }
    let orig_subject = orig.subject().unwrap_or_default().to_string();
    let subject = subject.unwrap_or_else(|| match kind.as_str() {
        "displayed" => format!("Read: {orig_subject}"),
        other => format!("Disposition notification ({other}): {orig_subject}"),
    });
    let final_recipient = final_recipient.unwrap_or_else(|| format!("rfc822; {}", from.email));
    let text_body = text_body.unwrap_or_else(|| {
        format!(
            "This is a disposition notification for the message \"{orig_subject}\" sent to {}: it was {kind}.\r\n",
            from.email
        )
    });
    let original_recipient = orig
        .header_raw("Original-Recipient")
        .map(|v| one_line(v.trim()));
    let original_id = orig.message_id().map(|m| format!("<{m}>"));
    // RFC 8098 §3.1/§3.2: the report fields.
    let mut report = String::new();
    if let Some(ua) = &reporting_ua {
        report.push_str(&format!("Reporting-UA: {}\r\n", one_line(ua)));
    }
    if let Some(r) = &original_recipient {
        report.push_str(&format!("Original-Recipient: {r}\r\n"));
    }
    report.push_str(&format!(
        "Final-Recipient: {}\r\n",
        one_line(&final_recipient)
    ));
    if let Some(m) = &original_id {
        report.push_str(&format!("Original-Message-ID: {m}\r\n"));
    }
    let sending_canonical = if sending == "mdn-sent-manually" {
        "MDN-sent-manually"
    } else {
        "MDN-sent-automatically"
    };
    report.push_str(&format!(
        "Disposition: {action}/{sending_canonical}; {kind}\r\n"
    ));
    for (k, v) in &extensions {
        report.push_str(&format!("{k}: {v}\r\n"));
    }
    let mut parts = vec![
        mail_builder::mime::MimePart::new("text/plain", text_body.clone()),
        mail_builder::mime::MimePart::new("message/disposition-notification", report.clone()),
    ];
    if include {
        parts.push(mail_builder::mime::MimePart::new(
            "message/rfc822",
            raw.clone(),
        ));
    }
    let body = mail_builder::mime::MimePart::new(
        mail_builder::headers::content_type::ContentType::new("multipart/report")
            .attribute("report-type", "disposition-notification"),
        parts,
    );
    // No Disposition-Notification-To on the MDN (§3); a new Message-ID.
    let message = mail_builder::MessageBuilder::new()
        .from((from.name.as_str(), from.email.as_str()))
        .to(to.iter().map(String::as_str).collect::<Vec<_>>())
        .subject(one_line(&subject))
        .message_id(crate::core::new_message_id(&cx.core.config.hostname))
        .header(
            "Auto-Submitted",
            mail_builder::headers::raw::Raw::new(if action == "automatic-action" {
                "auto-replied"
            } else {
                "no"
            }),
        )
        .body(body)
        .write_to_vec()
        .map_err(store_error)?;
    let message =
        crate::dkim::sign_outgoing(&cx.core.store, &cx.core.config.dkim, &from.email, message)
            .await;
    // §3: the envelope sender is null, the recipients those of
    // Disposition-Notification-To.
    let queue_id = cx
        .core
        .queue
        .enqueue(NewMessage {
            from: String::new(),
            recipients: to.iter().map(|a| QueueRcpt::new(a)).collect(),
            smtputf8: to.iter().any(|a| !a.is_ascii()),
            raw: message,
            ..Default::default()
        })
        .await
        .map_err(store_error)?;
    metrics::counter!("petrel_jmap_mdns_total").increment(1);
    tracing::info!(account = %cx.account.address, queue_id, rcpts = to.len(), disposition = %kind, "JMAP MDN queued");
    Ok(Ok((
        for_email,
        json!({
            "subject": subject,
            "textBody": text_body,
            "finalRecipient": final_recipient,
            "originalRecipient": original_recipient,
            "originalMessageId": original_id,
            "mdnGateway": null,
            "error": null,
        }),
    )))
}

/// MDN/send (RFC 9007 §2.1).
pub async fn send(cx: &Context<'_>, args: Map<String, Value>) -> Result<Value, MethodError> {
    let acct = cx.account_id(&args).await?;
    let identities = identity::all(cx, acct).await?;
    let wanted = args
        .get("identityId")
        .and_then(Value::as_str)
        .ok_or_else(|| MethodError::invalid_arguments("identityId is required"))?;
    let from = id::parse_identity(wanted)
        .and_then(|n| identities.iter().find(|(m, _)| *m == n))
        .map(|(_, i)| i.clone())
        .ok_or_else(|| MethodError::invalid_arguments(format!("no Identity {wanted}")))?;
    if !identity::may_send_as(cx, &from.email) {
        return Err(MethodError::invalid_arguments(format!(
            "the Identity's address {} is not the account's",
            from.email
        )));
    }
    let send = args
        .get("send")
        .and_then(Value::as_object)
        .ok_or_else(|| MethodError::invalid_arguments("send must be an object of MDNs"))?;
    let max = cx.core.config.jmap.max_objects_in_set;
    if send.len() > max {
        return Err(MethodError::with(
            "requestTooLarge",
            format!("more than maxObjectsInSet ({max}) MDNs"),
        ));
    }
    let (mut sent, mut not_sent) = (Map::new(), Map::new());
    let mut succeeded = Vec::new();
    for (cid, obj) in send {
        let Some(obj) = obj.as_object() else {
            not_sent.insert(cid.clone(), invalid("send", "an MDN object"));
            continue;
        };
        match send_one(cx, acct, &from, obj).await? {
            Ok((email, v)) => {
                succeeded.push((format!("#{cid}"), email));
                sent.insert(cid.clone(), v);
            }
            Err(e) => {
                not_sent.insert(cid.clone(), e);
            }
        }
    }
    super::submission::implicit_email_set(cx, acct, &args, &succeeded).await?;
    let or_null = |m: Map<String, Value>| {
        if m.is_empty() {
            Value::Null
        } else {
            Value::Object(m)
        }
    };
    Ok(json!({
        "accountId": id::account(acct),
        "sent": or_null(sent),
        "notSent": or_null(not_sent),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_fields_unfold() {
        let f = report_fields(
            "Reporting-UA: joes-pc.cs.example.com; Foomail 97.1\r\nFinal-Recipient: rfc822;\r\n joe@example.com\r\nDisposition: manual-action/MDN-sent-manually; displayed\r\n",
        );
        assert_eq!(f.len(), 3);
        assert_eq!(
            f[1],
            ("Final-Recipient".into(), "rfc822; joe@example.com".into())
        );
    }

    #[test]
    fn notification_addresses() {
        assert_eq!(
            addresses(Some(" Ann <ann@example.org>, bob@example.net\r\n")),
            ["ann@example.org", "bob@example.net"]
        );
        assert!(addresses(Some(" not an address")).is_empty());
        assert_eq!(
            addresses(Some(" <\"a b\"@example.org>")),
            ["\"a b\"@example.org"]
        );
        assert!(addresses(None).is_empty());
    }

    #[test]
    fn canonical_addresses() {
        assert_eq!(canonical("\"joe\"@Example.ORG"), "joe@example.org");
        assert_eq!(canonical("Joe@example.org"), "Joe@example.org");
        assert_eq!(canonical("j\\oe@example.org"), "joe@example.org");
    }

    #[test]
    fn dispositions() {
        assert_eq!(
            disposition_of("Manual-Action/MDN-Sent-Manually; Displayed/error").unwrap(),
            json!({"actionMode": "manual-action", "sendingMode": "mdn-sent-manually", "type": "displayed"})
        );
        assert!(disposition_of("displayed").is_none());
        assert_eq!(
            disposition_of(
                "automatic-action (by a filter) / MDN-sent-automatically ; (then) processed"
            )
            .unwrap()["type"],
            "processed"
        );
        assert!(disposition(Some(&json!({"actionMode": "manual-action",
            "sendingMode": "mdn-sent-manually", "type": "read"})))
        .is_err());
        assert!(disposition(Some(&json!({"actionMode": "automatic-action",
            "sendingMode": "MDN-sent-automatically", "type": "processed"})))
        .is_ok());
    }

    #[test]
    fn parses_an_rfc_8098_report() {
        let raw = b"From: Joe <joe@example.com>\r\nTo: ann@example.org\r\nSubject: Read: lunch\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=disposition-notification; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nThe message was displayed.\r\n--b\r\nContent-Type: message/disposition-notification\r\n\r\nReporting-UA: pc.example.com; Mail 1\r\nOriginal-Recipient: rfc822;joe@example.com\r\nFinal-Recipient: rfc822;joe@example.com\r\nOriginal-Message-ID: <x1@example.org>\r\nDisposition: manual-action/MDN-sent-manually; displayed\r\nX-Extra: yes\r\n\r\n--b--\r\n";
        let m = parse_mdn(raw).unwrap();
        assert_eq!(m["subject"], "Read: lunch");
        assert_eq!(m["textBody"], "The message was displayed.");
        assert_eq!(m["reportingUA"], "pc.example.com; Mail 1");
        assert_eq!(m["originalRecipient"], "rfc822;joe@example.com");
        assert_eq!(m["originalMessageId"], "<x1@example.org>");
        assert_eq!(m["disposition"]["type"], "displayed");
        assert_eq!(m["includeOriginalMessage"], false);
        assert_eq!(m["extensionFields"]["X-Extra"], "yes");
        assert!(parse_mdn(b"Subject: plain\r\n\r\nhello\r\n").is_none());
    }
}
