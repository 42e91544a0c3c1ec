//! Mailbox/get (RFC 8621 §2.1, with the /get rules of RFC 8620 §5.1).

use std::collections::{HashMap, HashSet};

use serde_json::{json, Map, Value};

use super::{store_error, Context};
use crate::jmap::id;
use crate::jmap::request::MethodError;
use crate::mail::acl::shared_name;
use crate::mail::Mailbox;

const PROPERTIES: &[&str] = &[
    "id",
    "name",
    "parentId",
    "role",
    "sortOrder",
    "totalEmails",
    "unreadEmails",
    "totalThreads",
    "unreadThreads",
    "myRights",
    "isSubscribed",
    // Last: only with the principals capability (RFC 9670 §4).
    "shareWith",
];

/// The requested property names: all when `properties` is null; an
/// unknown one is `invalidArguments`; `id` is always returned.
pub fn properties(args: &Map<String, Value>, known: &[&str]) -> Result<Vec<String>, MethodError> {
    match args.get("properties") {
        None | Some(Value::Null) => Ok(known.iter().map(|p| p.to_string()).collect()),
        Some(Value::Array(list)) => {
            let mut out = vec!["id".to_string()];
            for p in list {
                let p = p
                    .as_str()
                    .ok_or_else(|| MethodError::invalid_arguments("properties must be strings"))?;
                if !known.contains(&p) {
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
        Some(_) => Err(MethodError::invalid_arguments(
            "properties must be null or an array",
        )),
    }
}

/// The `ids` argument: None for all; more than maxObjectsInGet is
/// `requestTooLarge` (RFC 8620 §5.1). An id `#cid` is the object creation
/// `cid` of this request made (§5.3); one no creation made stays as it
/// is (and is not found).
pub fn ids(
    cx: &Context<'_>,
    args: &Map<String, Value>,
) -> Result<Option<Vec<String>>, MethodError> {
    let max = cx.core.config.jmap.max_objects_in_get;
    match args.get("ids") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(list)) => {
            if list.len() > max {
                return Err(MethodError::with(
                    "requestTooLarge",
                    format!("more than maxObjectsInGet ({max}) ids"),
                ));
            }
            list.iter()
                .map(|v| {
                    v.as_str()
                        .map(|s| cx.resolve(s).unwrap_or_else(|| s.to_string()))
                        .ok_or_else(|| MethodError::invalid_arguments("ids must be strings"))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some)
        }
        Some(_) => Err(MethodError::invalid_arguments(
            "ids must be null or an array",
        )),
    }
}

pub async fn get(cx: &Context<'_>, args: Map<String, Value>) -> Result<Value, MethodError> {
    let access = cx.mail_access(&args).await?;
    let acct = access.acct;
    let known = if cx.uses(crate::jmap::request::PRINCIPALS) {
        PROPERTIES
    } else {
        &PROPERTIES[..PROPERTIES.len() - 1]
    };
    let props = properties(&args, known)?;
    let wanted = ids(cx, &args)?;
    let mail = &cx.core.mail;
    // The state first: what is listed is at least as new as it.
    let state = mail.account_usage(acct).await.map_err(store_error)?.state;
    // RFC 8621 §9.5: in a shared account, a mailbox without the lookup
    // right does not exist.
    let mut boxes = mail.mailboxes(acct).await.map_err(store_error)?;
    boxes.retain(|m| access.sees(m.id));
    let subscribed = shared_subscriptions(cx, &access).await?;
    let by_name: HashMap<&str, u32> = boxes.iter().map(|m| (m.name.as_str(), m.id)).collect();
    let (selected, not_found): (Vec<&Mailbox>, Vec<String>) = match &wanted {
        None => (boxes.iter().collect(), Vec::new()),
        Some(list) => {
            let mut found: Vec<&Mailbox> = Vec::new();
            let mut missing: Vec<String> = Vec::new();
            let mut seen = HashSet::new();
            for i in list {
                // RFC 8620 §5.1: an id asked for twice is answered once.
                if !seen.insert(i.as_str()) {
                    continue;
                }
                match id::parse_mailbox(i).and_then(|n| boxes.iter().find(|m| m.id == n)) {
                    Some(m) => found.push(m),
                    None => missing.push(i.clone()),
                }
            }
            (found, missing)
        }
    };
    let counts = props.iter().any(|p| {
        matches!(
            p.as_str(),
            "totalEmails" | "unreadEmails" | "totalThreads" | "unreadThreads"
        )
    });
    let mut list = Vec::with_capacity(selected.len());
    for m in selected {
        let mut obj = Map::new();
        let stats = if counts && access.reads(m.id) {
            Some(counts_of(cx, acct, m).await?)
        } else {
            None
        };
        for p in &props {
            let v = match p.as_str() {
                "id" => json!(id::mailbox(m.id)),
                "name" => json!(m.name.rsplit('/').next().unwrap_or(&m.name)),
                "parentId" => match m.name.rsplit_once('/') {
                    Some((parent, _)) => match by_name.get(parent) {
                        Some(pid) => json!(id::mailbox(*pid)),
                        None => Value::Null,
                    },
                    None => Value::Null,
                },
                "role" => match &m.role {
                    Some(r) => json!(r.trim_start_matches('\\').to_ascii_lowercase()),
                    None => Value::Null,
                },
                "sortOrder" => json!(m.sort_order),
                "totalEmails" => json!(stats.map_or(0, |s| s.0)),
                "unreadEmails" => json!(stats.map_or(0, |s| s.1)),
                "totalThreads" => json!(stats.map_or(0, |s| s.2)),
                "unreadThreads" => json!(stats.map_or(0, |s| s.3)),
                // RFC 8621 §2: every right in the own account, the
                // granted ones in a shared account.
                "myRights" => access.my_rights(m.id),
                "isSubscribed" => match &subscribed {
                    None => json!(m.subscribed),
                    Some((owner, names)) => json!(names.contains(&shared_name(owner, &m.name))),
                },
                // RFC 9670 §4: shown to who may change it.
                "shareWith" if access.all_grant([m.id], "a") => super::share::share_with(m),
                "shareWith" => Value::Null,
                _ => continue,
            };
            obj.insert(p.clone(), v);
        }
        list.push(Value::Object(obj));
    }
    Ok(super::get_response(acct, state, list, not_found))
}

/// The user's subscriptions to a shared account's mailboxes (RFC 8621
/// §2 isSubscribed, kept per user): the owner's address and the names
/// subscribed to (`Shared/<owner>/<mailbox>`, as IMAP LSUB shows them).
/// `None` for the own account, whose mailboxes hold theirs.
pub(super) async fn shared_subscriptions(
    cx: &Context<'_>,
    access: &super::Access,
) -> Result<Option<(String, HashSet<String>)>, MethodError> {
    let Some(owner) = shared_owner(cx, access).await? else {
        return Ok(None);
    };
    let names = cx
        .core
        .mail
        .shared_subscriptions(cx.account.id)
        .await
        .map_err(store_error)?;
    Ok(Some((owner, names)))
}

/// The owner's address of a shared account (the middle of the names its
/// mailboxes are subscribed under); `None` for the own account.
pub(super) async fn shared_owner(
    cx: &Context<'_>,
    access: &super::Access,
) -> Result<Option<String>, MethodError> {
    if access.is_own() {
        return Ok(None);
    }
    let owner = cx
        .core
        .directory
        .account_by_id(access.acct)
        .await
        .map_err(store_error)?
        .ok_or_else(|| MethodError::new("accountNotFound"))?;
    Ok(Some(owner.address))
}

/// (total emails, unread emails, total threads, unread threads) of a
/// mailbox (RFC 8621 §2: a thread is unread when any of its messages in
/// the mailbox lacks `$seen`).
async fn counts_of(
    cx: &Context<'_>,
    acct: u32,
    m: &Mailbox,
) -> Result<(usize, usize, usize, usize), MethodError> {
    let view = cx.core.mail.view(acct, m).await.map_err(store_error)?;
    let entries: Vec<_> = view.iter().filter(|e| !super::deleted(&e.flags)).collect();
    let emails: Vec<u64> = entries.iter().map(|e| e.email).collect();
    let metas = cx
        .core
        .mail
        .email_metas(acct, &emails)
        .await
        .map_err(store_error)?;
    let mut threads = HashSet::new();
    let mut unread_threads = HashSet::new();
    let mut unread = 0;
    for e in entries.iter() {
        let thread = metas.get(&e.email).map_or(e.email, |meta| meta.thread);
        threads.insert(thread);
        if !e.flags.iter().any(|f| f.eq_ignore_ascii_case("\\Seen")) {
            unread += 1;
            unread_threads.insert(thread);
        }
    }
    Ok((entries.len(), unread, threads.len(), unread_threads.len()))
}
