//! Email/get (RFC 8621 §4.2): the metadata and header properties.

use std::collections::HashSet;

use serde_json::{json, Map, Value};

use super::mailbox::{ids, properties};
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

const PROPERTIES: &[&str] = &[
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
    "from",
    "to",
    "cc",
    "replyTo",
    "preview",
];

/// `YYYY-MM-DDThh:mm:ssZ` (RFC 8620 §1.4 UTCDate), by mail-parser.
fn utc(secs: i64) -> Value {
    json!(mail_parser::DateTime::from_timestamp(secs).to_rfc3339())
}

fn addresses(a: Option<&mail_parser::Address<'_>>) -> Value {
    match a {
        None => Value::Null,
        Some(a) => Value::Array(
            a.iter()
                .map(|x| json!({ "name": x.name(), "email": x.address() }))
                .collect(),
        ),
    }
}

/// Email/get with metadata, header convenience properties and preview.
pub async fn get(cx: &Context<'_>, args: Map<String, Value>) -> Result<Value, MethodError> {
    let acct = cx.account_id(&args)?;
    let props = match args.get("properties") {
        None | Some(Value::Null) => PROPERTIES.iter().map(|p| p.to_string()).collect(),
        _ => properties(&args, PROPERTIES)?,
    };
    let wanted = ids(&args, cx.core.config.jmap.max_objects_in_get)?.ok_or_else(|| {
        MethodError::with(
            "requestTooLarge",
            "Email/get needs ids (there are too many to list all)",
        )
    })?;
    let mail = &cx.core.mail;
    let state = mail.account_usage(acct).await.map_err(store_error)?.state;
    let needs_raw = props
        .iter()
        .any(|p| matches!(p.as_str(), "from" | "to" | "cc" | "replyTo" | "preview"));
    let mut list = Vec::new();
    let mut not_found = Vec::new();
    let mut seen = HashSet::new();
    for i in wanted {
        if !seen.insert(i.clone()) {
            continue;
        }
        let found = match id::parse_email(&i) {
            Some(e) => match (
                mail.email_meta(acct, e).await.map_err(store_error)?,
                mail.email_state(acct, e).await.map_err(store_error)?,
            ) {
                (Some(meta), Some(st)) if super::visible(&st) => Some((e, meta, st)),
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
        let mut obj = Map::new();
        for p in &props {
            let v = match p.as_str() {
                "id" => json!(id::email(e)),
                "blobId" => json!(id::blob(e)),
                "threadId" => json!(id::thread(meta.thread)),
                "mailboxIds" => Value::Object(
                    st.mailboxes
                        .iter()
                        .map(|(m, _)| (id::mailbox(*m), json!(true)))
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
                "from" => addresses(parsed.as_ref().and_then(|m| m.from())),
                "to" => addresses(parsed.as_ref().and_then(|m| m.to())),
                "cc" => addresses(parsed.as_ref().and_then(|m| m.cc())),
                "replyTo" => addresses(parsed.as_ref().and_then(|m| m.reply_to())),
                "preview" => json!(parsed
                    .as_ref()
                    .and_then(|m| m.body_preview(256))
                    .map(|p| p.to_string())
                    .unwrap_or_default()),
                _ => continue,
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
