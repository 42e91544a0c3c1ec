//! Email/parse (RFC 8621 §4.9): a blob (an upload, a message, or a
//! message/rfc822 part of one) read as an Email without storing it. The
//! metadata properties have no value for a parsed message: id,
//! mailboxIds, keywords, receivedAt and threadId are null.

use serde_json::{json, Map, Value};

use super::email_body::{self, BodyArgs};
use super::Context;
use crate::jmap::id;
use crate::jmap::request::MethodError;

/// The metadata properties a parsed message has no value for (§4.9).
const METADATA: &[&str] = &[
    "id",
    "blobId",
    "threadId",
    "mailboxIds",
    "keywords",
    "size",
    "receivedAt",
];

pub async fn parse(cx: &Context<'_>, args: Map<String, Value>) -> Result<Value, MethodError> {
    let access = cx.mail_access(&args).await?;
    let acct = access.acct;
    let blob_ids = super::blob_ids(&args, cx.core.config.jmap.max_objects_in_get)?;
    let props: Vec<String> = match args.get("properties") {
        // §4.9: Email/get's defaults without the metadata.
        None | Some(Value::Null) => super::email::default_properties()
            .filter(|p| !METADATA.contains(p))
            .map(String::from)
            .collect(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| v.as_str().map(String::from))
            .collect::<Option<_>>()
            .ok_or_else(|| MethodError::invalid_arguments("properties must be strings"))?,
        Some(_) => {
            return Err(MethodError::invalid_arguments(
                "properties must be an array",
            ))
        }
    };
    let body = BodyArgs::parse(&args)?;
    let mut parsed = Map::new();
    let mut not_parsable = Vec::new();
    let mut not_found = Vec::new();
    for b in blob_ids {
        let Some(raw) = cx.read_blob(&access, &b).await? else {
            not_found.push(b);
            continue;
        };
        let msg = mail_parser::MessageParser::default()
            .parse(&raw)
            .filter(|m| !m.parts.is_empty() && email_body::looks_like_message(&raw));
        let Some(msg) = msg else {
            not_parsable.push(b);
            continue;
        };
        let mut obj = Map::new();
        for p in &props {
            let v = match p.as_str() {
                "id" | "mailboxIds" | "keywords" | "receivedAt" | "threadId" => Value::Null,
                "blobId" => json!(b),
                "size" => json!(raw.len()),
                other => match email_body::message_property(other, Some(&msg), &b, &body)? {
                    Some(v) => v,
                    None => {
                        return Err(MethodError::invalid_arguments(format!(
                            "unknown property `{other}`"
                        )))
                    }
                },
            };
            obj.insert(p.clone(), v);
        }
        parsed.insert(b, Value::Object(obj));
    }
    Ok(json!({
        "accountId": id::account(acct),
        "parsed": super::or_null(parsed),
        "notParsable": super::ids_or_null(not_parsable),
        "notFound": super::ids_or_null(not_found),
    }))
}
