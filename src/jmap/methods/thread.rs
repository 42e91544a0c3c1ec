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
    let wanted = ids(cx, &args)?
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

/// Thread/changes (§3.2) from Email/changes: the Threads of created,
/// changed and destroyed Emails (the change log keeps the Thread of a
/// destroyed Email). A Thread all of whose Emails are new is created;
/// one with no Email left is destroyed; the rest are updated. A range
/// reaching back before the log kept Threads, with destructions in it,
/// answers `cannotCalculateChanges` (the client fetches its threads
/// again).
pub async fn changes(cx: &Context<'_>, args: Map<String, Value>) -> Result<Value, MethodError> {
    let access = cx.mail_access(&args).await?;
    let acct = access.acct;
    let since: u64 = args
        .get("sinceState")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
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
    let created: HashSet<u64> = list("created").into_iter().collect();
    let touched: Vec<u64> = created.iter().copied().chain(list("updated")).collect();
    let lost = list("destroyed");
    let mail = &cx.core.mail;
    let mut threads: HashSet<u64> = mail
        .email_facts(acct, &touched)
        .await
        .map_err(store_error)?
        .into_iter()
        .flatten()
        .map(|f| f.thread)
        .collect();
    // Threads that lost an Email they had at `since`.
    let mut shrunk: HashSet<u64> = HashSet::new();
    if !lost.is_empty() {
        let cannot = || {
            MethodError::with(
                "cannotCalculateChanges",
                "Emails were destroyed before this server logged their Threads; fetch the threads again",
            )
        };
        let logged = mail
            .destroyed_threads(acct, since)
            .await
            .map_err(store_error)?
            .ok_or_else(cannot)?;
        // An Email destroyed for this user only (out of its sight in a
        // shared account) still has its facts.
        let facts = mail.email_facts(acct, &lost).await.map_err(store_error)?;
        for (e, f) in lost.iter().zip(facts) {
            let t = logged
                .get(e)
                .copied()
                .or(f.map(|f| f.thread))
                .ok_or_else(cannot)?;
            shrunk.insert(t);
        }
        threads.extend(&shrunk);
    }
    let (mut made, mut changed, mut gone) = (Vec::new(), Vec::new(), Vec::new());
    if !threads.is_empty() {
        let all: Vec<u64> = super::visible_messages(cx, &access)
            .await?
            .into_keys()
            .collect();
        let every = mail.email_facts(acct, &all).await.map_err(store_error)?;
        for t in threads {
            let members: Vec<u64> = all
                .iter()
                .zip(&every)
                .filter(|(_, f)| f.is_some_and(|f| f.thread == t))
                .map(|(e, _)| *e)
                .collect();
            if members.is_empty() {
                gone.push(id::thread(t));
            } else if !shrunk.contains(&t) && members.iter().all(|e| created.contains(e)) {
                made.push(id::thread(t));
            } else {
                changed.push(id::thread(t));
            }
        }
    }
    made.sort();
    changed.sort();
    gone.sort();
    out["created"] = json!(made);
    out["updated"] = json!(changed);
    out["destroyed"] = json!(gone);
    Ok(out)
}
