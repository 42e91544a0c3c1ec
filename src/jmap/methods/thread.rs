//! Thread/get (RFC 8621 §3.1): a thread's emails, oldest first. The
//! threads come from the store's threading at ingest (the same THREADID
//! IMAP shows); the account's messages are read to find a thread's
//! members, as Email/query reads them.

use std::collections::{HashMap, HashSet};

use serde_json::{json, Map, Value};

use super::mailbox::ids;
use super::{store_error, Context};
use crate::jmap::id;
use crate::jmap::request::MethodError;

pub async fn get(cx: &Context<'_>, args: Map<String, Value>) -> Result<Value, MethodError> {
    let acct = cx.account_id(&args)?;
    let wanted = ids(&args, cx.core.config.jmap.max_objects_in_get)?
        .ok_or_else(|| MethodError::with("requestTooLarge", "Thread/get needs ids"))?;
    let mail = &cx.core.mail;
    let state = mail.account_usage(acct).await.map_err(store_error)?.state;
    let emails: Vec<u64> = super::visible_messages(cx, acct)
        .await?
        .into_keys()
        .collect();
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
