//! Thread/get (RFC 8621 §3.1): a thread's emails, oldest first. The
//! threads come from the store's threading at ingest (the same THREADID
//! IMAP shows); the account's messages are read to find a thread's
//! members, as Email/query reads them.

use std::collections::{HashMap, HashSet};

use serde_json::{json, Map, Value};

use super::mailbox::ids;
use super::Context;
use crate::jmap::request::MethodError;

fn store_error(e: impl std::fmt::Display) -> MethodError {
    MethodError::with("serverFail", e.to_string())
}

fn parse_thread(s: &str) -> Option<u64> {
    let d = s.strip_prefix('T')?;
    if d.is_empty() || (d.starts_with('0') && d.len() > 1) {
        return None;
    }
    d.parse().ok()
}

pub async fn get(cx: &Context<'_>, args: Map<String, Value>) -> Result<Value, MethodError> {
    let acct = cx.account_id(&args)?;
    let wanted = ids(&args, cx.core.config.jmap.max_objects_in_get)?
        .ok_or_else(|| MethodError::with("requestTooLarge", "Thread/get needs ids"))?;
    let mail = &cx.core.mail;
    let state = mail.account_usage(acct).await.map_err(store_error)?.state;
    let mut emails = HashSet::new();
    for m in mail.mailboxes(acct).await.map_err(store_error)? {
        for e in mail.view(acct, &m).await.map_err(store_error)?.iter() {
            if !super::deleted(&e.flags) {
                emails.insert(e.email);
            }
        }
    }
    let emails: Vec<u64> = emails.into_iter().collect();
    let metas = mail.email_metas(acct, &emails).await.map_err(store_error)?;
    let mut threads: HashMap<u64, Vec<(i64, u64)>> = HashMap::new();
    for (e, meta) in &metas {
        threads
            .entry(meta.thread)
            .or_default()
            .push((meta.received_at, *e));
    }
    let mut list = Vec::new();
    let mut not_found = Vec::new();
    let mut seen = HashSet::new();
    for t in wanted {
        if !seen.insert(t.clone()) {
            continue;
        }
        match parse_thread(&t).and_then(|n| threads.get_mut(&n)) {
            Some(members) => {
                members.sort_unstable();
                let ids: Vec<String> = members.iter().map(|(_, e)| format!("E{e}")).collect();
                list.push(json!({ "id": t, "emailIds": ids }));
            }
            None => not_found.push(t),
        }
    }
    Ok(super::get_response(acct, state, list, not_found))
}
