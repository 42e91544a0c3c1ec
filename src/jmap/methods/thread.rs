//! Thread/get (RFC 8621 §3.1): a thread's emails, oldest first. The
//! threads come from the store's threading at ingest (the same THREADID
//! IMAP shows); the account's messages are read to find a thread's
//! members, as Email/query reads them. In a shared account a thread
//! holds only the Emails the user may read (RFC 8621 §9.5).

use std::collections::{HashMap, HashSet};

use serde_json::{json, Map, Value};

use super::mailbox::ids;
use super::{store_error, Context};
use crate::jmap::id;
use crate::jmap::request::MethodError;

pub async fn get(cx: &Context<'_>, args: Map<String, Value>) -> Result<Value, MethodError> {
    let access = cx.mail_access(&args).await?;
    let acct = access.acct;
    let wanted = ids(&args, cx.core.config.jmap.max_objects_in_get)?
        .ok_or_else(|| MethodError::with("requestTooLarge", "Thread/get needs ids"))?;
    let mail = &cx.core.mail;
    let state = mail.account_usage(acct).await.map_err(store_error)?.state;
    let emails: Vec<u64> = super::visible_messages(cx, &access)
        .await?
        .into_keys()
        .collect();
    let facts = mail.email_facts(acct, &emails).await.map_err(store_error)?;
    let mut threads: HashMap<u64, Vec<(i64, u64)>> = HashMap::new();
    for (e, f) in emails.iter().zip(&facts) {
        if let Some(f) = f {
            threads
                .entry(f.thread)
                .or_default()
                .push((f.received_at, *e));
        }
    }
    let mut list = Vec::new();
    let mut not_found = Vec::new();
    let mut seen = HashSet::new();
    for t in wanted {
        if !seen.insert(t.clone()) {
            continue;
        }
        match id::parse_thread(&t).and_then(|n| threads.get_mut(&n)) {
            Some(members) => {
                members.sort_unstable();
                let ids: Vec<String> = members.iter().map(|(_, e)| id::email(*e)).collect();
                list.push(json!({ "id": t, "emailIds": ids }));
            }
            None => not_found.push(t),
        }
    }
    Ok(super::get_response(acct, state, list, not_found))
}

/// Thread/changes (§3.2) from Email/changes: the threads of created and
/// changed Emails; a thread all of whose Emails are new is created. The
/// change log does not keep the thread of a destroyed Email, so a range
/// with destructions answers `cannotCalculateChanges` (the client
/// fetches its threads again).
pub async fn changes(cx: &Context<'_>, args: Map<String, Value>) -> Result<Value, MethodError> {
    let access = cx.mail_access(&args).await?;
    let acct = access.acct;
    let mut out = super::changes::email(cx, args).await?;
    let list = |k: &str| -> Vec<u64> {
        out[k]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().and_then(id::parse_email))
                    .collect()
            })
            .unwrap_or_default()
    };
    if !list("destroyed").is_empty() {
        return Err(MethodError::with(
            "cannotCalculateChanges",
            "Emails were destroyed since that state; fetch the threads again",
        ));
    }
    let created: HashSet<u64> = list("created").into_iter().collect();
    let touched: Vec<u64> = created.iter().copied().chain(list("updated")).collect();
    let mail = &cx.core.mail;
    let threads: HashSet<u64> = mail
        .email_facts(acct, &touched)
        .await
        .map_err(store_error)?
        .into_iter()
        .flatten()
        .map(|f| f.thread)
        .collect();
    let (mut made, mut changed) = (Vec::new(), Vec::new());
    if !threads.is_empty() {
        let all: Vec<u64> = super::visible_messages(cx, &access)
            .await?
            .into_keys()
            .collect();
        let every = mail.email_facts(acct, &all).await.map_err(store_error)?;
        for t in threads {
            let new = all
                .iter()
                .zip(&every)
                .filter(|(_, f)| f.is_some_and(|f| f.thread == t))
                .all(|(e, _)| created.contains(e));
            if new {
                made.push(id::thread(t));
            } else {
                changed.push(id::thread(t));
            }
        }
    }
    made.sort();
    changed.sort();
    out["created"] = json!(made);
    out["updated"] = json!(changed);
    out["destroyed"] = json!([]);
    Ok(out)
}
