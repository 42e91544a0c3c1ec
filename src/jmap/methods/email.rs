//! Email/get (RFC 8621 §4.2): the metadata and header properties.

use std::collections::HashSet;

use serde_json::{json, Map, Value};

use super::email_body;
use super::mailbox::ids;
use super::{store_error, Context};
use crate::jmap::id;
use crate::jmap::request::MethodError;

/// IMAP system flags as JMAP keywords (RFC 8621 §4.1.1); `\Recent` and
/// `\Deleted` have none. Keywords are reported in lower case.
pub fn keyword(flag: &str) -> Option<String> {
    match flag.to_ascii_lowercase().as_str() {
        "\\seen" => Some("$seen".into()),
        "\\flagged" => Some("$flagged".into()),
        "\\answered" => Some("$answered".into()),
        "\\draft" => Some("$draft".into()),
        "\\recent" | "\\deleted" => None,
        other if other.starts_with('\\') => None,
        other => Some(other.to_string()),
    }
}

/// Every Email property this server returns (RFC 8621 §4.1) besides the
/// `header:` forms.
const PROPERTIES: &[&str] = &[
    "id",
    "blobId",
    "threadId",
    "mailboxIds",
    "keywords",
    "size",
    "receivedAt",
    "messageId",
    "inReplyTo",
    "references",
    "sender",
    "from",
    "to",
    "cc",
    "bcc",
    "replyTo",
    "subject",
    "sentAt",
    "hasAttachment",
    "preview",
    "headers",
    "bodyStructure",
    "bodyValues",
    "textBody",
    "htmlBody",
    "attachments",
];

/// What Email/get returns when `properties` is null (§4.2): all but
/// the header list and the MIME tree.
pub(crate) fn default_properties() -> impl Iterator<Item = &'static str> {
    PROPERTIES
        .iter()
        .copied()
        .filter(|p| !matches!(*p, "headers" | "bodyStructure"))
}

/// Properties answered from the store's metadata, without the message.
const FROM_METADATA: &[&str] = &[
    "id",
    "blobId",
    "threadId",
    "mailboxIds",
    "keywords",
    "size",
    "receivedAt",
    "messageId",
    "references",
    "subject",
    "sentAt",
];

/// `YYYY-MM-DDThh:mm:ssZ` (RFC 8620 §1.4 UTCDate), by mail-parser.
pub(crate) fn utc(secs: i64) -> Value {
    json!(mail_parser::DateTime::from_timestamp(secs).to_rfc3339())
}

/// The `properties` argument: known names and `header:` forms.
fn email_properties(args: &Map<String, Value>) -> Result<Vec<String>, MethodError> {
    let Some(list) = args.get("properties").filter(|v| !v.is_null()) else {
        return Ok(default_properties().map(String::from).collect());
    };
    let list = list
        .as_array()
        .ok_or_else(|| MethodError::invalid_arguments("properties must be null or an array"))?;
    let mut out = vec!["id".to_string()];
    for p in list {
        let p = p
            .as_str()
            .ok_or_else(|| MethodError::invalid_arguments("properties must be strings"))?;
        if !PROPERTIES.contains(&p) && email_body::parse_header_prop(p)?.is_none() {
            return Err(MethodError::invalid_arguments(format!(
                "unknown property `{p}`"
            )));
        }
        if !out.iter().any(|o| o == p) {
            out.push(p.to_string());
        }
    }
    Ok(out)
}

/// Email/get (§4.2) with every property, header forms and body values.
pub async fn get(cx: &Context<'_>, args: Map<String, Value>) -> Result<Value, MethodError> {
    let access = cx.mail_access(&args).await?;
    let acct = access.acct;
    let props = email_properties(&args)?;
    let body = email_body::BodyArgs::parse(&args)?;
    let wanted = ids(cx, &args)?.ok_or_else(|| {
        MethodError::with(
            "requestTooLarge",
            "Email/get needs ids (there are too many to list all)",
        )
    })?;
    let mail = &cx.core.mail;
    let state = mail.account_usage(acct).await.map_err(store_error)?.state;
    let needs_raw = props.iter().any(|p| !FROM_METADATA.contains(&p.as_str()));
    let mut list = Vec::new();
    let mut not_found = Vec::new();
    let mut seen = HashSet::new();
    for i in wanted {
        if !seen.insert(i.clone()) {
            continue;
        }
        let found = match cx.resolve(&i).as_deref().and_then(id::parse_email) {
            Some(e) => match (
                mail.email_meta(acct, e).await.map_err(store_error)?,
                mail.email_state(acct, e).await.map_err(store_error)?,
            ) {
                (Some(meta), Some(st)) if access.email_visible(&st) => Some((e, meta, st)),
                _ => None,
            },
            None => None,
        };
        let Some((e, meta, st)) = found else {
            not_found.push(i);
            continue;
        };
        let raw = if needs_raw {
            Some(mail.email_raw(&meta).await.map_err(store_error)?)
        } else {
            None
        };
        let parsed = raw
            .as_deref()
            .and_then(|r| mail_parser::MessageParser::default().parse(r));
        let msg = parsed.as_ref();
        let mut obj = Map::new();
        for p in &props {
            let v = match p.as_str() {
                "id" => json!(id::email(e)),
                "blobId" => json!(id::blob(e)),
                "threadId" => json!(id::thread(meta.thread)),
                // RFC 8621 §9.5: only the mailboxes the user may read.
                "mailboxIds" => Value::Object(
                    access
                        .readable_boxes(&st)
                        .map(|m| (id::mailbox(m), json!(true)))
                        .collect(),
                ),
                "keywords" => Value::Object(
                    st.keywords
                        .iter()
                        .filter_map(|k| keyword(k))
                        .map(|k| (k, json!(true)))
                        .collect(),
                ),
                "size" => json!(meta.size),
                "receivedAt" => utc(meta.received_at),
                "messageId" => match &meta.meta.message_id {
                    Some(m) => json!([m]),
                    None => Value::Null,
                },
                "references" => {
                    if meta.meta.references.is_empty() {
                        Value::Null
                    } else {
                        json!(meta.meta.references)
                    }
                }
                "subject" => json!(meta.meta.subject),
                "sentAt" => meta.meta.sent_at.map_or(Value::Null, utc),
                other => match email_body::message_property(other, msg, &id::blob(e), &body)? {
                    Some(v) => v,
                    None => continue,
                },
            };
            obj.insert(p.clone(), v);
        }
        list.push(Value::Object(obj));
    }
    Ok(super::get_response(acct, state, list, not_found))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), json!("1970-01-01T00:00:00Z"));
        assert_eq!(utc(1_796_000_000), json!("2026-11-30T00:53:20Z"));
    }

    #[test]
    fn flags_become_keywords() {
        assert_eq!(keyword("\\Seen").as_deref(), Some("$seen"));
        assert_eq!(keyword("\\Deleted"), None);
        assert_eq!(keyword("$Junk").as_deref(), Some("$junk"));
    }
}
