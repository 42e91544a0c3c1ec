//! Email/copy (RFC 8621 §4.7, the /copy method of RFC 8620 §5.4): the
//! only way to bring Emails from one account to another — the user's own
//! and the accounts sharing mailboxes with it. Each copy is stored like
//! an import (the owner's quota, the user's rights on the target
//! mailboxes); `onSuccessDestroyOriginal` then makes one implicit
//! Email/set that destroys the originals.

use serde_json::{json, Map, Value};

use super::email_import::{self, SetError};
use super::{store_error, Access, Context};
use crate::jmap::id;
use crate::jmap::request::MethodError;

fn invalid(property: &str, why: impl Into<String>) -> SetError {
    json!({"type": "invalidProperties", "properties": [property], "description": why.into()})
}

/// The properties a copy may set (§4.7) besides the source's `id`.
const SETTABLE: &[&str] = &["id", "mailboxIds", "keywords", "receivedAt"];

pub async fn copy(cx: &Context<'_>, args: Map<String, Value>) -> Result<Value, MethodError> {
    let from_id = args
        .get("fromAccountId")
        .and_then(Value::as_str)
        .ok_or_else(|| MethodError::invalid_arguments("fromAccountId is required"))?;
    let from = cx
        .access_to(from_id)
        .await
        .map_err(|_| MethodError::new("fromAccountNotFound"))?;
    let to = cx.mail_access(&args).await?;
    // RFC 8620 §5.4: accountId MUST be different to fromAccountId.
    if from.acct == to.acct {
        return Err(MethodError::invalid_arguments(
            "accountId must differ from fromAccountId; within one account, change mailboxIds with Email/set",
        ));
    }
    let mail = &cx.core.mail;
    let from_state = mail
        .account_usage(from.acct)
        .await
        .map_err(store_error)?
        .state;
    if let Some(want) = args.get("ifFromInState").and_then(Value::as_str) {
        if want != from_state.to_string() {
            return Err(MethodError::with(
                "stateMismatch",
                format!("the from account's state is {from_state}, not {want}"),
            ));
        }
    }
    let old_state = mail
        .account_usage(to.acct)
        .await
        .map_err(store_error)?
        .state;
    super::check_state(&args, old_state)?;
    // /copy takes no update or destroy; only `create` is read.
    let (create, _, _) = super::set_arguments(&args, cx.core.config.jmap.max_objects_in_set)?;
    let mut created = Map::new();
    let mut not_created = Map::new();
    let mut originals = Vec::new();
    for (cid, obj) in &create {
        match copy_one(cx, &from, &to, obj).await? {
            Ok((original, made)) => {
                cx.created(cid, made["id"].as_str().unwrap_or_default());
                created.insert(cid.clone(), made);
                originals.push(original);
            }
            Err(se) => {
                not_created.insert(cid.clone(), se);
            }
        }
    }
    if !created.is_empty() {
        metrics::counter!("petrel_jmap_emails_copied_total").increment(created.len() as u64);
    }
    let new_state = mail
        .account_usage(to.acct)
        .await
        .map_err(store_error)?
        .state;
    // §5.4: one Email/set destroying the originals copied, answered after
    // this response and before the next method call.
    if args
        .get("onSuccessDestroyOriginal")
        .and_then(Value::as_bool)
        == Some(true)
        && !originals.is_empty()
    {
        let mut set = Map::new();
        set.insert("accountId".into(), json!(id::account(from.acct)));
        set.insert("destroy".into(), json!(originals));
        if let Some(s) = args.get("destroyFromIfInState").filter(|v| !v.is_null()) {
            set.insert("ifInState".into(), s.clone());
        }
        let answer = match super::email_set::set(cx, set).await {
            Ok(v) => ("Email/set".to_string(), v),
            Err(e) => ("error".to_string(), e.args()),
        };
        cx.implicit
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(answer);
    }
    Ok(json!({
        "fromAccountId": id::account(from.acct),
        "accountId": id::account(to.acct),
        "oldState": old_state.to_string(),
        "newState": new_state.to_string(),
        "created": super::or_null(created),
        "notCreated": super::or_null(not_created),
    }))
}

/// Copies one Email: the original's id and the new Email's server-set
/// properties, or why not.
async fn copy_one(
    cx: &Context<'_>,
    from: &Access,
    to: &Access,
    obj: &Value,
) -> Result<Result<(String, Value), SetError>, MethodError> {
    let Some(obj) = obj.as_object() else {
        return Ok(Err(invalid("id", "a copy must be an object")));
    };
    if let Some(k) = obj.keys().find(|k| !SETTABLE.contains(&k.as_str())) {
        // §4.7: only mailboxIds, keywords and receivedAt may be set.
        return Ok(Err(invalid(k, format!("{k} cannot be set by a copy"))));
    }
    // §5.4: the object MUST name the original by its id.
    let Some(asked) = obj.get("id").and_then(Value::as_str) else {
        return Ok(Err(invalid(
            "id",
            "the id of the Email to copy is required",
        )));
    };
    let original = cx.resolve(asked).unwrap_or_else(|| asked.to_string());
    let mail = &cx.core.mail;
    let found = match id::parse_email(&original) {
        Some(e) => match (
            mail.email_meta(from.acct, e).await.map_err(store_error)?,
            mail.email_state(from.acct, e).await.map_err(store_error)?,
        ) {
            (Some(meta), Some(st)) if from.email_visible(&st) => Some((meta, st)),
            _ => None,
        },
        None => None,
    };
    let Some((meta, st)) = found else {
        return Ok(Err(
            json!({"type": "notFound", "description": format!("no Email {original} in the from account")}),
        ));
    };
    let mailboxes = match email_import::mailbox_ids(cx, to, obj.get("mailboxIds")).await {
        Ok(m) => m,
        Err(se) => return Ok(Err(se)),
    };
    // The original's keywords and arrival unless the copy gives its own.
    let flags = match obj.get("keywords") {
        Some(k) => match email_import::flags(Some(k)) {
            Ok(f) => f,
            Err(se) => return Ok(Err(se)),
        },
        None => st
            .keywords
            .iter()
            .filter(|f| super::email::keyword(f).is_some())
            .cloned()
            .collect(),
    };
    let received_at = match obj.get("receivedAt") {
        None | Some(Value::Null) => meta.received_at,
        Some(v) => match v.as_str().and_then(mail_parser::DateTime::parse_rfc3339) {
            Some(d) => d.to_timestamp(),
            None => return Ok(Err(invalid("receivedAt", "must be a UTCDate"))),
        },
    };
    let raw = mail.email_raw(&meta).await.map_err(store_error)?;
    Ok(
        email_import::save(cx, to, raw, &mailboxes, flags, Some(received_at))
            .await?
            .map(|made| (original, made)),
    )
}
