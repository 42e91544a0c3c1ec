//! ShareNotifications (RFC 9670 §3): each change of what the user may do
//! in another account's mailbox, made by someone else (IMAP SETACL or
//! DELETEACL, a JMAP `shareWith` change, the mailbox or its owner
//! deleted). The mail store writes them with the grant (`acl::ShareNote`);
//! here they are read, listed and dismissed. Clients cannot make or
//! change them (§3.4: /set destroys only).

use serde_json::{json, Map, Value};

use super::{store_error, Context};
use crate::jmap::id;
use crate::jmap::request::MethodError;
use crate::mail::acl::{Rights, ShareNote};
use crate::mail::records::Kind;

const PROPERTIES: &[&str] = &[
    "id",
    "created",
    "changedBy",
    "objectType",
    "objectAccountId",
    "objectId",
    "oldRights",
    "newRights",
    "name",
];

/// MailboxRights for a note's rights; null for none.
fn rights(letters: &str) -> Value {
    match Rights::parse(letters).filter(|r| !r.is_empty()) {
        Some(r) => super::share::rights_json(&r),
        None => Value::Null,
    }
}

async fn to_json(
    cx: &Context<'_>,
    n: u64,
    note: &ShareNote,
    props: &[String],
) -> Result<Value, MethodError> {
    let mut obj = Map::new();
    for p in props {
        let v = match p.as_str() {
            "id" => json!(id::share_note(n)),
            "created" => super::email::utc(note.created),
            // §3: an Entity; an account deleted since is named by its id.
            "changedBy" => {
                let who = cx
                    .core
                    .directory
                    .account_by_id(note.by)
                    .await
                    .map_err(store_error)?;
                match who {
                    Some(a) => json!({
                        "name": if a.name.is_empty() { a.address.clone() } else { a.name.clone() },
                        "email": a.address,
                        "principalId": id::principal(note.by),
                    }),
                    None => json!({"name": id::principal(note.by), "email": null,
                                   "principalId": id::principal(note.by)}),
                }
            }
            "objectType" => json!("Mailbox"),
            "objectAccountId" => json!(id::account(note.owner)),
            "objectId" => json!(id::mailbox(note.mailbox)),
            "oldRights" => rights(&note.old),
            "newRights" => rights(&note.new),
            "name" => json!(note.name),
            _ => continue,
        };
        obj.insert(p.clone(), v);
    }
    Ok(Value::Object(obj))
}

async fn load(cx: &Context<'_>, acct: u32) -> Result<(u64, Vec<(u64, ShareNote)>), MethodError> {
    let mail = &cx.core.mail;
    let state = mail
        .record_state(acct, Kind::ShareNotification)
        .await
        .map_err(store_error)?;
    let all = mail
        .records::<ShareNote>(acct, Kind::ShareNotification)
        .await
        .map_err(store_error)?;
    Ok((state, all))
}

pub async fn get(cx: &Context<'_>, args: Map<String, Value>) -> Result<Value, MethodError> {
    let acct = cx.account_id(&args).await?;
    let props = super::mailbox::properties(&args, PROPERTIES)?;
    let wanted = super::mailbox::ids(cx, &args)?;
    let (state, all) = load(cx, acct).await?;
    let mut list = Vec::new();
    let mut not_found = Vec::new();
    match wanted {
        None => {
            for (n, note) in &all {
                list.push(to_json(cx, *n, note, &props).await?);
            }
        }
        Some(ids) => {
            for want in ids {
                match id::parse_share_note(&want).and_then(|n| all.iter().find(|(m, _)| *m == n)) {
                    Some((n, note)) => list.push(to_json(cx, *n, note, &props).await?),
                    None => not_found.push(want),
                }
            }
        }
    }
    Ok(super::get_response(acct, state, list, not_found))
}

/// ShareNotification/set: destroy only (§3.4).
pub async fn set(cx: &Context<'_>, args: Map<String, Value>) -> Result<Value, MethodError> {
    let acct = cx.account_id(&args).await?;
    let mail = &cx.core.mail;
    let old_state = mail
        .record_state(acct, Kind::ShareNotification)
        .await
        .map_err(store_error)?;
    super::check_state(&args, old_state)?;
    let (create, update, destroy) =
        super::set_arguments(&args, cx.core.config.jmap.max_objects_in_set)?;
    let no = |why: &str| json!({"type": "forbidden", "description": why});
    let not_created: Map<String, Value> = create
        .keys()
        .map(|k| (k.clone(), no("the server makes ShareNotifications")))
        .collect();
    let not_updated: Map<String, Value> = update
        .keys()
        .map(|k| (k.clone(), no("a ShareNotification cannot be changed")))
        .collect();
    let mut destroyed = Vec::new();
    let mut not_destroyed = Map::new();
    for d in destroy {
        let gone = match id::parse_share_note(&d) {
            Some(n) => mail
                .delete_record(acct, Kind::ShareNotification, n)
                .await
                .map_err(store_error)?,
            None => false,
        };
        if gone {
            destroyed.push(d);
        } else {
            not_destroyed.insert(d, json!({"type": "notFound"}));
        }
    }
    let new_state = mail
        .record_state(acct, Kind::ShareNotification)
        .await
        .map_err(store_error)?;
    Ok(super::set_response(
        acct,
        old_state,
        new_state,
        [
            Map::new(),
            Map::new(),
            not_created,
            not_updated,
            not_destroyed,
        ],
        destroyed,
    ))
}

/// ShareNotification/query (§3.5 filters: after, before, objectType,
/// objectAccountId; sort by created).
pub async fn query(cx: &Context<'_>, args: Map<String, Value>) -> Result<Value, MethodError> {
    let acct = cx.account_id(&args).await?;
    let (state, ids) = results(cx, &args, acct).await?;
    Ok(super::query_response(
        &args,
        acct,
        state,
        ids.into_iter().map(id::share_note).collect(),
    ))
}

/// ShareNotification/queryChanges (RFC 8620 §5.6) from their log: they
/// never change, they come and go.
pub async fn query_changes(
    cx: &Context<'_>,
    args: Map<String, Value>,
) -> Result<Value, MethodError> {
    let acct = cx.account_id(&args).await?;
    let now = results(cx, &args, acct).await?;
    super::query_changes::for_records(
        cx,
        &args,
        acct,
        Kind::ShareNotification,
        now,
        id::share_note,
    )
    .await
}

/// The notifications a query selects, in order, and their state.
async fn results(
    cx: &Context<'_>,
    args: &Map<String, Value>,
    acct: u32,
) -> Result<(u64, Vec<u64>), MethodError> {
    let filter = super::condition(args, "ShareNotification/query")?;
    for k in filter.keys() {
        if !["after", "before", "objectType", "objectAccountId"].contains(&k.as_str()) {
            return Err(MethodError::with(
                "unsupportedFilter",
                format!("`{k}` is not a ShareNotification filter"),
            ));
        }
    }
    let date = |k: &str| -> Result<Option<i64>, MethodError> {
        match filter.get(k) {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .and_then(mail_parser::DateTime::parse_rfc3339)
                .map(|d| Some(d.to_timestamp()))
                .ok_or_else(|| {
                    MethodError::invalid_arguments(format!("filter `{k}` must be a UTCDate"))
                }),
        }
    };
    let (after, before) = (date("after")?, date("before")?);
    let object_type = filter.get("objectType").and_then(Value::as_str);
    let object_account = filter.get("objectAccountId").and_then(Value::as_str);
    let (state, all) = load(cx, acct).await?;
    let mut rows: Vec<(u64, i64)> = all
        .iter()
        .filter(|(_, note)| {
            after.is_none_or(|t| note.created >= t)
                && before.is_none_or(|t| note.created < t)
                && object_type.is_none_or(|t| t == "Mailbox")
                && object_account.is_none_or(|a| a == id::account(note.owner))
        })
        .map(|(n, note)| (*n, note.created))
        .collect();
    // Ids follow creation: the id breaks ties.
    super::sort_rows(
        args,
        &mut rows,
        "ShareNotifications",
        &["created"],
        |_, a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)),
    )?;
    Ok((state, rows.iter().map(|r| r.0).collect()))
}
