//! Email/set (RFC 8621 §4.6, RFC 8620 §5.3): creation (`email_create`
//! builds the message, `email_import` stores it), keyword and mailboxIds
//! changes (whole or by patch) and destruction, through the same store
//! operations as IMAP APPEND, STORE, COPY and EXPUNGE, so IMAP sessions
//! see them with a new MODSEQ.

use serde_json::{json, Map, Value};

use super::{email_create, email_import, store_error, Context};
use crate::jmap::id;
use crate::jmap::request::MethodError;
use crate::mail::FlagOp;

fn set_error(kind: &str, description: impl Into<String>) -> Value {
    json!({ "type": kind, "description": description.into() })
}

/// RFC 8621 §4.1.1: a keyword is 1-255 of %x21-7E except ( ) { ] % * " \.
pub(crate) fn valid_keyword(k: &str) -> bool {
    (1..=255).contains(&k.len())
        && k.bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && !b"(){]%*\"\\".contains(&b))
}

/// A JMAP keyword as the IMAP flag the store keeps.
pub(crate) fn flag(keyword: &str) -> String {
    match keyword.to_ascii_lowercase().as_str() {
        "$seen" => "\\Seen".into(),
        "$flagged" => "\\Flagged".into(),
        "$answered" => "\\Answered".into(),
        "$draft" => "\\Draft".into(),
        other => other.to_string(),
    }
}

/// The keywords (JMAP names) and mailboxes after applying `patch` to
/// the Email's `current` flags and `mailboxes`, or the SetError.
/// `mailbox` reads a Mailbox id (resolving creation references).
fn patched(
    current: &[String],
    mailboxes: &[u32],
    patch: &Map<String, Value>,
    mailbox: &dyn Fn(&str) -> Option<u32>,
) -> Result<(Vec<String>, Vec<u32>), Value> {
    // RFC 8620 §5.3: no patch path may be the prefix of another.
    for whole in ["keywords", "mailboxIds"] {
        let prefix = format!("{whole}/");
        if patch.contains_key(whole) && patch.keys().any(|k| k.starts_with(&prefix)) {
            return Err(
                json!({"type": "invalidPatch", "description": format!("{whole} and {whole}/… together")}),
            );
        }
    }
    let mut keywords: Vec<String> = current
        .iter()
        .filter_map(|f| super::email::keyword(f))
        .collect();
    let mut boxes = mailboxes.to_vec();
    let bad = |path: &str| json!({"type": "invalidProperties", "properties": [path]});
    for (path, value) in patch {
        if path == "keywords" {
            let Some(obj) = value.as_object() else {
                return Err(bad("keywords"));
            };
            keywords.clear();
            for (k, v) in obj {
                if v != &Value::Bool(true) || !valid_keyword(k) {
                    return Err(bad("keywords"));
                }
                keywords.push(k.to_ascii_lowercase());
            }
        } else if let Some(k) = path.strip_prefix("keywords/") {
            let k = k.replace("~1", "/").replace("~0", "~");
            if !valid_keyword(&k) {
                return Err(bad(path));
            }
            let k = k.to_ascii_lowercase();
            match value {
                Value::Bool(true) => {
                    if !keywords.contains(&k) {
                        keywords.push(k);
                    }
                }
                Value::Null => keywords.retain(|x| *x != k),
                _ => return Err(bad(path)),
            }
        } else if path == "mailboxIds" {
            let Some(obj) = value.as_object() else {
                return Err(bad(path));
            };
            boxes.clear();
            for (k, v) in obj {
                let mb = mailbox(k)
                    .filter(|_| v == &Value::Bool(true))
                    .ok_or_else(|| bad(path))?;
                boxes.push(mb);
            }
        } else if let Some(k) = path.strip_prefix("mailboxIds/") {
            let mb = mailbox(k).ok_or_else(|| bad(path))?;
            match value {
                Value::Bool(true) => {
                    if !boxes.contains(&mb) {
                        boxes.push(mb);
                    }
                }
                Value::Null => boxes.retain(|b| *b != mb),
                _ => return Err(bad(path)),
            }
        } else {
            // §4.1: everything else of an Email is immutable.
            return Err(json!({
                "type": "invalidProperties",
                "properties": [path],
                "description": "only keywords and mailboxIds of an Email can change"
            }));
        }
    }
    if boxes.is_empty() {
        return Err(
            json!({"type": "invalidProperties", "properties": ["mailboxIds"],
            "description": "an Email must stay in at least one Mailbox"}),
        );
    }
    Ok((keywords, boxes))
}

/// RFC 8621 §2: what an update may do with the user's rights. Changing
/// `$seen` needs maySetSeen and other keywords maySetKeywords in every
/// mailbox of the Email; a mailbox added needs mayAddItems, one left
/// mayRemoveItems.
fn may_update(
    access: &super::Access,
    state: &crate::mail::EmailState,
    keywords: &[String],
    boxes: &[u32],
) -> Result<(), Value> {
    if access.is_own() {
        return Ok(());
    }
    let old: Vec<String> = state
        .keywords
        .iter()
        .filter_map(|f| super::email::keyword(f))
        .collect();
    let differs = |k: &String| !old.contains(k) || !keywords.contains(k);
    let all = || state.mailboxes.iter().map(|(m, _)| *m);
    let seen = "$seen".to_string();
    if differs(&seen) && !access.all_grant(all(), "s") {
        return Err(set_error("forbidden", "no right to change $seen here"));
    }
    let others = old.iter().chain(keywords).any(|k| *k != seen && differs(k));
    if others && !access.all_grant(all(), "w") {
        return Err(set_error("forbidden", "no right to change keywords here"));
    }
    let added = boxes.iter().copied().filter(|b| !all().any(|m| m == *b));
    for b in added {
        if !access.sees(b) {
            return Err(
                json!({"type": "invalidProperties", "properties": ["mailboxIds"],
                "description": format!("no Mailbox {}", id::mailbox(b))}),
            );
        }
        if !access.all_grant([b], "i") {
            return Err(set_error(
                "forbidden",
                format!("no right to add mail to {}", id::mailbox(b)),
            ));
        }
    }
    if !access.all_grant(all().filter(|m| !boxes.contains(m)), "te") {
        return Err(set_error(
            "forbidden",
            "no right to remove mail from a Mailbox",
        ));
    }
    Ok(())
}

/// Email/set creations: each built, then stored like an import.
async fn create(
    cx: &Context<'_>,
    access: &super::Access,
    create: &Map<String, Value>,
) -> Result<(Map<String, Value>, Map<String, Value>), MethodError> {
    let mut created = Map::new();
    let mut not_created = Map::new();
    for (cid, obj) in create {
        let Some(obj) = obj.as_object() else {
            not_created.insert(
                cid.clone(),
                set_error("invalidProperties", "a creation must be an object"),
            );
            continue;
        };
        let prepared = async {
            let mailboxes = email_import::mailbox_ids(cx, access, obj.get("mailboxIds")).await?;
            let flags = email_import::flags(obj.get("keywords"))?;
            let received_at = match obj.get("receivedAt") {
                None | Some(Value::Null) => None,
                Some(v) => Some(
                    v.as_str()
                        .and_then(mail_parser::DateTime::parse_rfc3339)
                        .map(|d| d.to_timestamp())
                        .ok_or_else(
                            || json!({"type": "invalidProperties", "properties": ["receivedAt"]}),
                        )?,
                ),
            };
            // §4.6: server-set properties cannot be given.
            for k in [
                "id",
                "blobId",
                "threadId",
                "size",
                "hasAttachment",
                "preview",
            ] {
                if obj.contains_key(k) {
                    return Err(json!({"type": "invalidProperties", "properties": [k],
                        "description": format!("{k} is set by the server")}));
                }
            }
            Ok((mailboxes, flags, received_at))
        }
        .await;
        let (mailboxes, flags, received_at) = match prepared {
            Ok(x) => x,
            Err(se) => {
                not_created.insert(cid.clone(), se);
                continue;
            }
        };
        let blobs = email_import::read_blobs(cx, access, email_create::blob_ids(obj)).await?;
        let raw = match email_create::build(obj, &blobs, &cx.core.config.hostname) {
            Ok(r) => r,
            Err(se) => {
                not_created.insert(cid.clone(), se);
                continue;
            }
        };
        match email_import::save(cx, access, raw, &mailboxes, flags, received_at).await? {
            Ok(v) => {
                cx.created(cid, v["id"].as_str().unwrap_or_default());
                created.insert(cid.clone(), v);
            }
            Err(se) => {
                not_created.insert(cid.clone(), se);
            }
        }
    }
    Ok((created, not_created))
}

pub async fn set(cx: &Context<'_>, args: Map<String, Value>) -> Result<Value, MethodError> {
    let access = cx.mail_access(&args).await?;
    let acct = access.acct;
    let mail = &cx.core.mail;
    let old_state = mail.account_usage(acct).await.map_err(store_error)?.state;
    super::check_state(&args, old_state)?;
    let (create, update, destroy) =
        super::set_arguments(&args, cx.core.config.jmap.max_objects_in_set)?;
    let (created, not_created) = self::create(cx, &access, &create).await?;
    let mut updated = Map::new();
    let mut not_updated = Map::new();
    for (asked, patch) in &update {
        // §5.3: a creation reference is answered under the id it became.
        let eid = &cx.resolve(asked).unwrap_or_else(|| asked.clone());
        let email = id::parse_email(eid).unwrap_or(0);
        let state = match email {
            0 => None,
            e => mail.email_state(acct, e).await.map_err(store_error)?,
        };
        let Some(state) = state.filter(|st| access.email_visible(st)) else {
            not_updated.insert(eid.clone(), set_error("notFound", "no such Email"));
            continue;
        };
        let Some(patch) = patch.as_object() else {
            not_updated.insert(eid.clone(), json!({"type": "invalidPatch"}));
            continue;
        };
        // The patch applies to the mailboxes the user sees (RFC 8621
        // §9.5); the others stay as they are.
        let current: Vec<u32> = access.readable_boxes(&state).collect();
        let hidden = state
            .mailboxes
            .iter()
            .map(|(m, _)| *m)
            .filter(|m| !current.contains(m));
        let mailbox = |k: &str| cx.resolve(k).as_deref().and_then(id::parse_mailbox);
        let (keywords, mut boxes) = match patched(&state.keywords, &current, patch, &mailbox) {
            Ok(k) => k,
            Err(e) => {
                not_updated.insert(eid.clone(), e);
                continue;
            }
        };
        boxes.extend(hidden);
        if let Err(e) = may_update(&access, &state, &keywords, &boxes) {
            not_updated.insert(eid.clone(), e);
            continue;
        }
        let mut missing = None;
        for mb in boxes.iter().filter(|b| !current.contains(b)) {
            if mail
                .mailbox(acct, *mb)
                .await
                .map_err(store_error)?
                .is_none()
            {
                missing = Some(*mb);
            }
        }
        if let Some(mb) = missing {
            not_updated.insert(
                eid.clone(),
                json!({"type": "invalidProperties", "properties": ["mailboxIds"],
                    "description": format!("no Mailbox {}", id::mailbox(mb))}),
            );
            continue;
        }
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
        let old_flags: Vec<String> = state
            .keywords
            .iter()
            .map(|k| k.to_ascii_lowercase())
            .collect();
        let mut new_flags: Vec<String> = flags.iter().map(|k| k.to_ascii_lowercase()).collect();
        new_flags.sort();
        let mut sorted_old = old_flags.clone();
        sorted_old.sort();
        if new_flags != sorted_old {
            mail.store_flags(acct, mbox, vec![uid], FlagOp::Set, flags, None)
                .await
                .map_err(store_error)?;
        }
        // The new memberships and the dropped ones in one transaction.
        if boxes.iter().any(|b| !current.contains(b))
            || state.mailboxes.iter().any(|(m, _)| !boxes.contains(m))
        {
            match mail.set_mailboxes(acct, email, boxes.clone()).await {
                Ok(true) => {}
                Ok(false) => {
                    not_updated.insert(eid.clone(), set_error("notFound", "no such Email"));
                    continue;
                }
                Err(crate::mail::MailError::NotFound(_)) => {
                    not_updated.insert(
                        eid.clone(),
                        json!({"type": "invalidProperties", "properties": ["mailboxIds"],
                            "description": "a Mailbox was deleted meanwhile"}),
                    );
                    continue;
                }
                Err(err) => return Err(store_error(err)),
            }
        }
        updated.insert(eid.clone(), Value::Null);
    }
    let mut destroyed = Vec::new();
    let mut not_destroyed = Map::new();
    for asked in destroy {
        let eid = cx.resolve(&asked).unwrap_or(asked);
        let state = match id::parse_email(&eid) {
            Some(e) => mail.email_state(acct, e).await.map_err(store_error)?,
            None => None,
        };
        let Some(state) = state.filter(|st| access.email_visible(st)) else {
            not_destroyed.insert(eid, set_error("notFound", "no such Email"));
            continue;
        };
        // RFC 8621 §2 mayRemoveItems, in every mailbox holding it.
        if !access.all_grant(state.mailboxes.iter().map(|(m, _)| *m), "te") {
            not_destroyed.insert(
                eid,
                set_error("forbidden", "no right to remove mail from its Mailboxes"),
            );
            continue;
        }
        for (mbox, uid) in state.mailboxes {
            mail.remove_messages(acct, mbox, vec![uid])
                .await
                .map_err(store_error)?;
        }
        destroyed.push(eid);
    }
    let new_state = mail.account_usage(acct).await.map_err(store_error)?.state;
    Ok(super::set_response(
        acct,
        old_state,
        new_state,
        [created, updated, not_created, not_updated, not_destroyed],
        destroyed,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyword_patches() {
        let cur = vec!["\\Seen".to_string(), "\\Deleted".to_string()];
        let p = |v: Value| v.as_object().unwrap().clone();
        let mb = |k: &str| id::parse_mailbox(k);
        let patched =
            |c: &[String], p: &Map<String, Value>| patched(c, &[1], p, &mb).map(|(k, _)| k);
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
        assert!(patched(&cur, &p(json!({"subject": "x"}))).is_err());
        let boxes = |v: Value| super::patched(&cur, &[1, 2], &p(v), &mb).map(|(_, b)| b);
        assert_eq!(
            boxes(json!({"mailboxIds/M3": true, "mailboxIds/M1": null})).unwrap(),
            [2, 3]
        );
        assert_eq!(boxes(json!({"mailboxIds": {"M7": true}})).unwrap(), [7]);
        assert_eq!(
            boxes(json!({"mailboxIds": {}})).unwrap_err()["type"],
            "invalidProperties"
        );
        assert_eq!(
            boxes(json!({"mailboxIds/X": true})).unwrap_err()["type"],
            "invalidProperties"
        );
        assert_eq!(
            boxes(json!({"mailboxIds": {}, "mailboxIds/M1": true})).unwrap_err()["type"],
            "invalidPatch"
        );
        assert!(patched(&cur, &p(json!({"keywords": {"x": false}}))).is_err());
        let both = patched(&cur, &p(json!({"keywords": {}, "keywords/$seen": true}))).unwrap_err();
        assert_eq!(both["type"], "invalidPatch");
    }
}
