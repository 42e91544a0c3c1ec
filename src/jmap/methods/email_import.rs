//! Storing new Emails: the creations of Email/set (RFC 8621 §4.6) and
//! Email/import (§4.8, a message from a blob). Both go through the mail
//! store's ingest like SMTP and IMAP APPEND, into the first of their
//! mailboxes, then copied into the rest, so IMAP and JMAP push see them.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use super::{store_error, Context};
use crate::jmap::id;
use crate::jmap::request::MethodError;
use crate::mail::{Folder, IngestRequest, IngestTarget, MailError};

pub type SetError = Value;

/// Messages of one Email/import stored at once.
const IMPORT_PARALLEL: usize = 16;

fn invalid(property: &str, why: impl Into<String>) -> SetError {
    json!({"type": "invalidProperties", "properties": [property], "description": why.into()})
}

/// The mailboxes of a `mailboxIds` value: existing mailboxes of the
/// account the user may add mail to (RFC 8621 §2 mayAddItems; a
/// `#creation` id resolves to what this request created).
pub async fn mailbox_ids(
    cx: &Context<'_>,
    access: &super::Access,
    v: Option<&Value>,
) -> Result<Vec<u32>, SetError> {
    let Some(m) = v.and_then(Value::as_object) else {
        return Err(invalid(
            "mailboxIds",
            "mailboxIds is required: an object of Mailbox ids",
        ));
    };
    let mut out = Vec::new();
    for (k, on) in m {
        if on != &Value::Bool(true) {
            return Err(invalid("mailboxIds", "values must be true"));
        }
        let mb = cx
            .resolve(k)
            .and_then(|k| id::parse_mailbox(&k))
            .ok_or_else(|| invalid("mailboxIds", format!("{k} is not a Mailbox id")))?;
        match cx.core.mail.mailbox(access.acct, mb).await {
            Ok(Some(_)) if !access.sees(mb) => {
                return Err(invalid("mailboxIds", format!("no Mailbox {k}")))
            }
            Ok(Some(_)) if !access.all_grant([mb], "i") => {
                return Err(json!({"type": "forbidden",
                    "description": format!("no right to add mail to Mailbox {k}")}))
            }
            Ok(Some(_)) => out.push(mb),
            Ok(None) => return Err(invalid("mailboxIds", format!("no Mailbox {k}"))),
            Err(e) => return Err(json!({"type": "serverFail", "description": e.to_string()})),
        }
    }
    if out.is_empty() {
        return Err(invalid(
            "mailboxIds",
            "an Email must be in at least one Mailbox",
        ));
    }
    Ok(out)
}

/// `keywords` as the store's flags.
pub fn flags(v: Option<&Value>) -> Result<Vec<String>, SetError> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let m = v
        .as_object()
        .ok_or_else(|| invalid("keywords", "must be an object"))?;
    let mut out = Vec::new();
    for (k, on) in m {
        if on != &Value::Bool(true) || !super::email_set::valid_keyword(k) {
            return Err(invalid(
                "keywords",
                format!("`{k}` is not a keyword set to true"),
            ));
        }
        out.push(super::email_set::flag(k));
    }
    Ok(out)
}

/// Stores `raw` in `mailboxes` with `flags`; the created Email's
/// {id, blobId, threadId, size} (§4.6). In a shared account the owner's
/// quota counts, and keywords the user has no right to set are left off
/// (as IMAP APPEND does, RFC 4314 §4).
pub async fn save(
    cx: &Context<'_>,
    access: &super::Access,
    raw: Vec<u8>,
    mailboxes: &[u32],
    mut flags: Vec<String>,
    received_at: Option<i64>,
) -> Result<Result<Value, SetError>, MethodError> {
    let max = cx.core.config.smtp.max_message_size;
    if raw.len() > max {
        return Ok(Err(json!({"type": "tooLarge", "maxSize": max,
            "description": format!("the message is over {max} octets")})));
    }
    let acct = access.acct;
    let (quota_bytes, quota_messages) = if access.is_own() {
        (cx.account.quota_bytes, cx.account.quota_messages)
    } else {
        let owner = cx
            .core
            .directory
            .account_by_id(acct)
            .await
            .map_err(store_error)?
            .ok_or_else(|| MethodError::new("accountNotFound"))?;
        flags.retain(|f| {
            let right = if f.eq_ignore_ascii_case("\\Seen") {
                "s"
            } else {
                "w"
            };
            access.all_grant(mailboxes.iter().copied(), right)
        });
        (owner.quota_bytes, owner.quota_messages)
    };
    let target = IngestTarget {
        account: acct,
        folder: Folder::Id(mailboxes[0]),
        flags,
        quota_bytes,
        quota_messages,
    };
    let mail = &cx.core.mail;
    let out = match mail
        .ingest(IngestRequest {
            raw,
            targets: vec![target],
            received_at,
        })
        .await
    {
        Ok(o) => o,
        Err(MailError::OverQuota) => {
            return Ok(Err(
                json!({"type": "overQuota", "description": "the account is over its quota"}),
            ))
        }
        Err(e) => return Err(store_error(e)),
    };
    let Some(o) = out.first() else {
        return Err(store_error("the message was not stored"));
    };
    for mb in &mailboxes[1..] {
        mail.copy_messages(acct, o.mailbox, vec![o.uid], *mb, false)
            .await
            .map_err(store_error)?;
    }
    let meta = mail
        .email_meta(acct, o.email)
        .await
        .map_err(store_error)?
        .ok_or_else(|| store_error("the new message vanished"))?;
    Ok(Ok(json!({
        "id": id::email(o.email),
        "blobId": id::blob(o.email),
        "threadId": id::thread(meta.thread),
        "size": meta.size,
    })))
}

/// The blobs an Email/set creation refers to, read for the account.
pub async fn read_blobs(
    cx: &Context<'_>,
    access: &super::Access,
    ids: Vec<String>,
) -> Result<HashMap<String, Vec<u8>>, MethodError> {
    let mut out = HashMap::new();
    for b in ids {
        if let Some(data) = cx.read_blob(access, &b).await? {
            out.insert(b, data);
        }
    }
    Ok(out)
}

/// Email/import (§4.8).
pub async fn import(cx: &Context<'_>, args: Map<String, Value>) -> Result<Value, MethodError> {
    let access = cx.mail_access(&args).await?;
    let acct = access.acct;
    let mail = &cx.core.mail;
    let old_state = mail.account_usage(acct).await.map_err(store_error)?.state;
    super::check_state(&args, old_state)?;
    let emails = args
        .get("emails")
        .and_then(Value::as_object)
        .ok_or_else(|| MethodError::invalid_arguments("emails must be an object"))?;
    let max = cx.core.config.jmap.max_objects_in_set;
    if emails.len() > max {
        return Err(MethodError::with(
            "requestTooLarge",
            format!("more than maxObjectsInSet ({max}) emails"),
        ));
    }
    let mut created = Map::new();
    let mut not_created = Map::new();
    let mut ready = Vec::new();
    for (cid, e) in emails {
        let result = async {
            let e = e
                .as_object()
                .ok_or_else(|| invalid("emails", "an EmailImport must be an object"))?;
            let blob = e
                .get("blobId")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("blobId", "blobId is required"))?;
            let mailboxes = mailbox_ids(cx, &access, e.get("mailboxIds")).await?;
            let flags = flags(e.get("keywords"))?;
            let received_at = match e.get("receivedAt") {
                None | Some(Value::Null) => None,
                Some(v) => Some(
                    v.as_str()
                        .and_then(mail_parser::DateTime::parse_rfc3339)
                        .map(|d| d.to_timestamp())
                        .ok_or_else(|| invalid("receivedAt", "must be a UTCDate"))?,
                ),
            };
            Ok::<_, SetError>((blob.to_string(), mailboxes, flags, received_at))
        }
        .await;
        let (blob, mailboxes, flags, received_at) = match result {
            Ok(x) => x,
            Err(se) => {
                not_created.insert(cid.clone(), se);
                continue;
            }
        };
        let Some(raw) = cx.read_blob(&access, &blob).await? else {
            not_created.insert(
                cid.clone(),
                json!({"type": "blobNotFound", "notFound": [blob]}),
            );
            continue;
        };
        // §4.8: the blob must be a message.
        if !super::email_body::looks_like_message(&raw) {
            not_created.insert(
                cid.clone(),
                json!({"type": "invalidEmail", "description": "the blob is not an RFC 5322 message"}),
            );
            continue;
        }
        ready.push((cid, raw, mailboxes, flags, received_at));
    }
    // The messages are stored side by side: their transactions share the
    // store's synced writes (group commit), and parsing runs on every core.
    let access = &access;
    let mut saved = Vec::with_capacity(ready.len());
    let mut left = ready.into_iter();
    loop {
        let mut batch = Vec::new();
        for (cid, raw, mailboxes, flags, received_at) in left.by_ref().take(IMPORT_PARALLEL) {
            batch.push(async move {
                let out = save(cx, access, raw, &mailboxes, flags, received_at).await;
                (cid, out)
            });
        }
        if batch.is_empty() {
            break;
        }
        saved.extend(futures_util::future::join_all(batch).await);
    }
    for (cid, out) in saved {
        match out? {
            Ok(v) => {
                cx.created(cid, v["id"].as_str().unwrap_or_default());
                created.insert(cid.clone(), v);
            }
            Err(se) => {
                not_created.insert(cid.clone(), se);
            }
        }
    }
    let new_state = mail.account_usage(acct).await.map_err(store_error)?.state;
    Ok(json!({
        "accountId": id::account(acct),
        "oldState": old_state.to_string(),
        "newState": new_state.to_string(),
        "created": super::or_null(created),
        "notCreated": super::or_null(not_created),
    }))
}
