//! Email/set (RFC 8621 §4.6, RFC 8620 §5.3), the first part: keyword
//! changes (whole or by patch) and destruction, through the same store
//! operations as IMAP STORE and EXPUNGE, so IMAP sessions see them with a
//! new MODSEQ. Creating Emails and changing mailboxIds are not built yet:
//! such requests get a SetError saying so.

use serde_json::{json, Map, Value};

use super::{store_error, Context};
use crate::jmap::id;
use crate::jmap::request::MethodError;
use crate::mail::FlagOp;

fn set_error(kind: &str, description: impl Into<String>) -> Value {
    json!({ "type": kind, "description": description.into() })
}

/// RFC 8621 §4.1.1: a keyword is 1-255 of %x21-7E except ( ) { ] % * " \.
fn valid_keyword(k: &str) -> bool {
    (1..=255).contains(&k.len())
        && k.bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && !b"(){]%*\"\\".contains(&b))
}

/// A JMAP keyword as the IMAP flag the store keeps.
fn flag(keyword: &str) -> String {
    match keyword.to_ascii_lowercase().as_str() {
        "$seen" => "\\Seen".into(),
        "$flagged" => "\\Flagged".into(),
        "$answered" => "\\Answered".into(),
        "$draft" => "\\Draft".into(),
        other => other.to_string(),
    }
}

/// The keywords after applying `patch` to `current` (JMAP names), or the
/// SetError for a patch Petrel does not take yet.
fn patched(current: &[String], patch: &Map<String, Value>) -> Result<Vec<String>, Value> {
    // RFC 8620 §5.3: no patch path may be the prefix of another.
    if patch.contains_key("keywords") && patch.keys().any(|k| k.starts_with("keywords/")) {
        return Err(
            json!({"type": "invalidPatch", "description": "keywords and keywords/… together"}),
        );
    }
    let mut keywords: Vec<String> = current
        .iter()
        .filter_map(|f| super::email::keyword(f))
        .collect();
    for (path, value) in patch {
        if path == "keywords" {
            let Some(obj) = value.as_object() else {
                return Err(json!({"type": "invalidProperties", "properties": ["keywords"]}));
            };
            keywords.clear();
            for (k, v) in obj {
                if v != &Value::Bool(true) || !valid_keyword(k) {
                    return Err(json!({"type": "invalidProperties", "properties": ["keywords"]}));
                }
                keywords.push(k.to_ascii_lowercase());
            }
        } else if let Some(k) = path.strip_prefix("keywords/") {
            let k = k.replace("~1", "/").replace("~0", "~");
            if !valid_keyword(&k) {
                return Err(json!({"type": "invalidProperties", "properties": [path]}));
            }
            let k = k.to_ascii_lowercase();
            match value {
                Value::Bool(true) => {
                    if !keywords.contains(&k) {
                        keywords.push(k);
                    }
                }
                Value::Null => keywords.retain(|x| *x != k),
                _ => return Err(json!({"type": "invalidProperties", "properties": [path]})),
            }
        } else {
            return Err(json!({
                "type": "invalidProperties",
                "properties": [path],
                "description": "only keywords can be changed so far (mailboxIds and the rest are not built yet)"
            }));
        }
    }
    Ok(keywords)
}

pub async fn set(cx: &Context<'_>, args: Map<String, Value>) -> Result<Value, MethodError> {
    let acct = cx.account_id(&args)?;
    let mail = &cx.core.mail;
    let old_state = mail.account_usage(acct).await.map_err(store_error)?.state;
    if let Some(want) = args.get("ifInState").and_then(Value::as_str) {
        if want != old_state.to_string() {
            return Err(MethodError::with(
                "stateMismatch",
                format!("the state is {old_state}, not {want}"),
            ));
        }
    }
    let obj = |name: &str| match args.get(name) {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(_) => Err(MethodError::invalid_arguments(format!(
            "{name} must be an object"
        ))),
    };
    let create = obj("create")?;
    let update = obj("update")?;
    let destroy: Vec<String> = match args.get("destroy") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| v.as_str().map(String::from))
            .collect::<Option<_>>()
            .ok_or_else(|| MethodError::invalid_arguments("destroy must hold ids"))?,
        Some(_) => return Err(MethodError::invalid_arguments("destroy must be an array")),
    };
    let max = cx.core.config.jmap.max_objects_in_set;
    if create.len() + update.len() + destroy.len() > max {
        return Err(MethodError::with(
            "requestTooLarge",
            format!("more than maxObjectsInSet ({max}) changes"),
        ));
    }
    let mut not_created = Map::new();
    for cid in create.keys() {
        not_created.insert(
            cid.clone(),
            set_error("forbidden", "creating Emails is not built yet"),
        );
    }
    let mut updated = Map::new();
    let mut not_updated = Map::new();
    for (eid, patch) in &update {
        let state = match id::parse_email(eid) {
            Some(e) => mail.email_state(acct, e).await.map_err(store_error)?,
            None => None,
        };
        let Some(state) = state.filter(super::visible) else {
            not_updated.insert(eid.clone(), set_error("notFound", "no such Email"));
            continue;
        };
        let Some(patch) = patch.as_object() else {
            not_updated.insert(eid.clone(), json!({"type": "invalidPatch"}));
            continue;
        };
        let keywords = match patched(&state.keywords, patch) {
            Ok(k) => k,
            Err(e) => {
                not_updated.insert(eid.clone(), e);
                continue;
            }
        };
        // IMAP flags with no JMAP form (\Deleted) stay as they are.
        let mut flags: Vec<String> = keywords.iter().map(|k| flag(k)).collect();
        flags.extend(
            state
                .keywords
                .iter()
                .filter(|f| super::email::keyword(f).is_none())
                .cloned(),
        );
        let (mbox, uid) = state.mailboxes[0];
        mail.store_flags(acct, mbox, vec![uid], FlagOp::Set, flags, None)
            .await
            .map_err(store_error)?;
        updated.insert(eid.clone(), Value::Null);
    }
    let mut destroyed = Vec::new();
    let mut not_destroyed = Map::new();
    for eid in destroy {
        let state = match id::parse_email(&eid) {
            Some(e) => mail.email_state(acct, e).await.map_err(store_error)?,
            None => None,
        };
        let Some(state) = state.filter(super::visible) else {
            not_destroyed.insert(eid, set_error("notFound", "no such Email"));
            continue;
        };
        for (mbox, uid) in state.mailboxes {
            mail.remove_messages(acct, mbox, vec![uid])
                .await
                .map_err(store_error)?;
        }
        destroyed.push(eid);
    }
    let new_state = mail.account_usage(acct).await.map_err(store_error)?.state;
    let or_null = |m: Map<String, Value>| {
        if m.is_empty() {
            Value::Null
        } else {
            Value::Object(m)
        }
    };
    Ok(json!({
        "accountId": id::account(acct),
        "oldState": old_state.to_string(),
        "newState": new_state.to_string(),
        "created": Value::Null,
        "updated": or_null(updated),
        "destroyed": if destroyed.is_empty() { Value::Null } else { json!(destroyed) },
        "notCreated": or_null(not_created),
        "notUpdated": or_null(not_updated),
        "notDestroyed": or_null(not_destroyed),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyword_patches() {
        let cur = vec!["\\Seen".to_string(), "\\Deleted".to_string()];
        let p = |v: Value| v.as_object().unwrap().clone();
        assert_eq!(
            patched(&cur, &p(json!({"keywords/$flagged": true}))).unwrap(),
            ["$seen", "$flagged"]
        );
        assert_eq!(
            patched(&cur, &p(json!({"keywords/$seen": null}))).unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(
            patched(&cur, &p(json!({"keywords": {"$Draft": true}}))).unwrap(),
            ["$draft"]
        );
        assert!(patched(&cur, &p(json!({"keywords/a(b": true}))).is_err());
        assert!(patched(&cur, &p(json!({"mailboxIds/M1": true}))).is_err());
        assert!(patched(&cur, &p(json!({"keywords": {"x": false}}))).is_err());
        let both = patched(&cur, &p(json!({"keywords": {}, "keywords/$seen": true}))).unwrap_err();
        assert_eq!(both["type"], "invalidPatch");
    }
}
