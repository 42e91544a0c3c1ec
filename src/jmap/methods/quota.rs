//! Quotas (RFC 9425): the account's limits from the directory (`petrel
//! account update --quota-bytes / --quota-messages`) with the mail
//! store's usage, the same numbers IMAP QUOTA (RFC 9208) shows. An
//! unlimited resource has no Quota. Ids: `octets` and `count`. The state
//! is the account's mail state: usage moves with it, so /changes lists
//! every quota as updated when it moved.

use serde_json::{json, Map, Value};

use super::mailbox::{ids, properties};
use super::{store_error, Context};
use crate::jmap::id;
use crate::jmap::request::MethodError;

const PROPERTIES: &[&str] = &[
    "id",
    "resourceType",
    "used",
    "hardLimit",
    "scope",
    "name",
    "types",
    "warnLimit",
    "softLimit",
    "description",
];

/// The account's quotas as full objects.
async fn quotas(cx: &Context<'_>, acct: u32) -> Result<(u64, Vec<Value>), MethodError> {
    let usage = cx
        .core
        .mail
        .account_usage(acct)
        .await
        .map_err(store_error)?;
    let a = cx.account;
    let mut out = Vec::new();
    for (qid, kind, used, limit, what) in [
        (
            "octets",
            "octets",
            usage.used_bytes,
            a.quota_bytes,
            "storage",
        ),
        (
            "count",
            "count",
            usage.messages,
            a.quota_messages,
            "messages",
        ),
    ] {
        if limit == 0 {
            continue;
        }
        out.push(json!({
            "id": qid,
            "resourceType": kind,
            "used": used,
            "hardLimit": limit,
            "scope": "account",
            "name": format!("{} {what}", a.address),
            "types": ["Mail"],
            "warnLimit": null,
            "softLimit": null,
            "description": format!("Mail {what} of {}; delivery stops at the limit", a.address),
        }));
    }
    Ok((usage.state, out))
}

fn pick(q: &Value, props: &[String]) -> Value {
    Value::Object(
        props
            .iter()
            .map(|p| (p.clone(), q.get(p).cloned().unwrap_or(Value::Null)))
            .collect(),
    )
}

pub async fn get(cx: &Context<'_>, args: Map<String, Value>) -> Result<Value, MethodError> {
    let acct = cx.account_id(&args).await?;
    let props = properties(&args, PROPERTIES)?;
    let wanted = ids(cx, &args)?;
    let (state, all) = quotas(cx, acct).await?;
    let mut list = Vec::new();
    let mut not_found = Vec::new();
    match wanted {
        None => list = all.iter().map(|q| pick(q, &props)).collect(),
        Some(w) => {
            for i in w {
                match all.iter().find(|q| q["id"] == i.as_str()) {
                    Some(q) => list.push(pick(q, &props)),
                    None => not_found.push(i),
                }
            }
        }
    }
    Ok(super::get_response(acct, state, list, not_found))
}

pub async fn changes(cx: &Context<'_>, args: Map<String, Value>) -> Result<Value, MethodError> {
    let acct = cx.account_id(&args).await?;
    let since = args
        .get("sinceState")
        .and_then(Value::as_str)
        .ok_or_else(|| MethodError::invalid_arguments("sinceState is required"))?;
    let (state, all) = quotas(cx, acct).await?;
    let updated: Vec<&Value> = if since == state.to_string() {
        Vec::new()
    } else {
        match since.parse::<u64>() {
            Ok(s) if s <= state => all.iter().map(|q| &q["id"]).collect(),
            _ => {
                return Err(MethodError::with(
                    "cannotCalculateChanges",
                    "unknown or future state",
                ))
            }
        }
    };
    Ok(json!({
        "accountId": id::account(acct),
        "oldState": since,
        "newState": state.to_string(),
        "hasMoreChanges": false,
        "created": [],
        "updated": updated,
        "destroyed": [],
    }))
}

/// Quota/query: filters name (substring), scope, resourceType, type;
/// sorts name and used.
pub async fn query(cx: &Context<'_>, args: Map<String, Value>) -> Result<Value, MethodError> {
    let acct = cx.account_id(&args).await?;
    let (state, ids, _) = results(cx, &args, acct).await?;
    Ok(super::query_response(&args, acct, state, ids))
}

/// Quota/queryChanges (RFC 8620 §5.6): an account has two Quotas, so a
/// moved state answers with both removed and the current results added
/// (§5.6 allows naming ids that did not move).
pub async fn query_changes(
    cx: &Context<'_>,
    args: Map<String, Value>,
) -> Result<Value, MethodError> {
    let acct = cx.account_id(&args).await?;
    let (state, ids, every) = results(cx, &args, acct).await?;
    let (since, _) = super::query_changes::since_counter(&args, state)?;
    let moved = since != state.to_string();
    let added: Vec<Value> = ids
        .iter()
        .enumerate()
        .filter(|_| moved)
        .map(|(i, q)| json!({"id": q, "index": i}))
        .collect();
    let mut out = json!({
        "accountId": id::account(acct),
        "oldQueryState": since,
        "newQueryState": state.to_string(),
        "removed": if moved { every } else { Vec::new() },
        "added": added,
    });
    if args.get("calculateTotal").and_then(Value::as_bool) == Some(true) {
        out["total"] = json!(ids.len());
    }
    Ok(out)
}

/// The Quota ids a query selects in order, the state, and every Quota
/// id of the account.
async fn results(
    cx: &Context<'_>,
    args: &Map<String, Value>,
    acct: u32,
) -> Result<(u64, Vec<String>, Vec<String>), MethodError> {
    let (state, mut all) = quotas(cx, acct).await?;
    let every = all
        .iter()
        .filter_map(|q| q["id"].as_str().map(String::from))
        .collect();
    if let Some(f) = args.get("filter").and_then(Value::as_object) {
        for (k, v) in f {
            let want = v.as_str().unwrap_or_default();
            match k.as_str() {
                "name" => all.retain(|q| q["name"].as_str().unwrap_or_default().contains(want)),
                "scope" | "resourceType" => all.retain(|q| q[k] == want),
                "type" => all.retain(|q| {
                    q["types"]
                        .as_array()
                        .is_some_and(|t| t.iter().any(|x| x == want))
                }),
                other => {
                    return Err(MethodError::with(
                        "unsupportedFilter",
                        format!("`{other}` is not a Quota filter"),
                    ))
                }
            }
        }
    }
    super::sort_rows(
        args,
        &mut all,
        "Quotas",
        &["name", "used"],
        |p, a, b| match p {
            "name" => a["name"].as_str().cmp(&b["name"].as_str()),
            _ => a["used"].as_u64().cmp(&b["used"].as_u64()),
        },
    )?;
    let ids = all
        .iter()
        .filter_map(|q| q["id"].as_str().map(String::from))
        .collect();
    Ok((state, ids, every))
}
