//! Email/changes and Mailbox/changes (RFC 8620 §5.2, RFC 8621 §4.3,
//! §2.2) from the store's change log, the same log IMAP's MODSEQs come
//! from: what a delivery, an IMAP STORE, EXPUNGE, CREATE or DELETE, or a
//! JMAP call did shows up here.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use super::{store_error, Context};
use crate::jmap::id;
use crate::jmap::request::MethodError;
use crate::mail::Change;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Created,
    Updated,
    Destroyed,
    /// Created and destroyed within the range: left out (§5.2).
    Gone,
}

/// The `sinceState` and `maxChanges` arguments.
pub(super) fn since_and_max(
    args: &Map<String, Value>,
) -> Result<(String, Option<usize>), MethodError> {
    let since = args
        .get("sinceState")
        .and_then(Value::as_str)
        .ok_or_else(|| MethodError::invalid_arguments("sinceState is required"))?
        .to_string();
    let max = match args.get("maxChanges") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(n) if n > 0 => Some(n as usize),
            // §5.2: a positive integer, else invalidArguments.
            _ => {
                return Err(MethodError::invalid_arguments(
                    "maxChanges must be a positive integer",
                ))
            }
        },
    };
    Ok((since, max))
}

/// What one change record means for one type: (created, updated,
/// destroyed) ids, and whether an update was more than counts.
type Extract = fn(&Change) -> ([Vec<u64>; 3], bool);

fn email_ids(c: &Change) -> ([Vec<u64>; 3], bool) {
    (
        [c.created.clone(), c.updated.clone(), c.destroyed.clone()],
        true,
    )
}

/// A mailbox is created or destroyed as the log says; one touched by a
/// change of messages only changed its counts, one touched otherwise
/// (rename, subscription) changed more.
pub(super) fn mailbox_ids(c: &Change) -> ([Vec<u64>; 3], bool) {
    let made: Vec<u64> = c.mailboxes_created.iter().map(|&m| m as u64).collect();
    let gone: Vec<u64> = c.mailboxes_destroyed.iter().map(|&m| m as u64).collect();
    let touched: Vec<u64> = c
        .mailboxes
        .iter()
        .map(|&m| m as u64)
        .filter(|m| !made.contains(m) && !gone.contains(m))
        .collect();
    let messages = !(c.created.is_empty() && c.updated.is_empty() && c.destroyed.is_empty());
    let more_than_counts = !touched.is_empty() && !messages;
    ([made, touched, gone], more_than_counts)
}

/// The ids of a list in a changes response.
fn ids(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Keeps in `created` and `updated` only what `exists` says the user can
/// see now; an updated one it cannot is destroyed for it, a created one
/// was never seen.
async fn only_existing<F, Fut>(out: &mut Value, exists: F) -> Result<(), MethodError>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<bool, MethodError>>,
{
    let mut destroyed = ids(&out["destroyed"]);
    for key in ["created", "updated"] {
        let mut keep = Vec::new();
        for i in ids(&out[key]) {
            if exists(i.clone()).await? {
                keep.push(i);
            } else if key == "updated" {
                destroyed.push(i);
            }
        }
        out[key] = json!(keep);
    }
    out["destroyed"] = json!(destroyed);
    Ok(())
}

pub async fn email(cx: &Context<'_>, args: Map<String, Value>) -> Result<Value, MethodError> {
    let access = cx.mail_access(&args).await?;
    let mut out = changes(cx, &access, args, email_ids, id::email, false).await?;
    // RFC 8621 §4.1.1: a message IMAP flags \Deleted is not visible, so
    // one flagged since is destroyed for JMAP, and one made and flagged
    // within the range was never seen. §9.5: so is one in no mailbox the
    // user may read.
    let access = &access;
    only_existing(&mut out, |i| async move {
        let Some(e) = id::parse_email(&i) else {
            return Ok(false);
        };
        let state = cx
            .core
            .mail
            .email_state(access.acct, e)
            .await
            .map_err(store_error)?;
        Ok(state.is_some_and(|st| access.email_visible(&st)))
    })
    .await?;
    Ok(out)
}

pub async fn mailbox(cx: &Context<'_>, args: Map<String, Value>) -> Result<Value, MethodError> {
    let access = cx.mail_access(&args).await?;
    let mut out = changes(
        cx,
        &access,
        args,
        mailbox_ids,
        |m| id::mailbox(m as u32),
        true,
    )
    .await?;
    if !access.is_own() {
        // §9.5: a mailbox without the lookup right does not exist.
        let access = &access;
        only_existing(&mut out, |i| async move {
            Ok(id::parse_mailbox(&i).is_some_and(|m| access.sees(m)))
        })
        .await?;
    }
    Ok(out)
}

async fn changes(
    cx: &Context<'_>,
    access: &super::Access,
    args: Map<String, Value>,
    extract: Extract,
    name: fn(u64) -> String,
    mailboxes: bool,
) -> Result<Value, MethodError> {
    let acct = access.acct;
    let (since_text, max) = since_and_max(&args)?;
    let mail = &cx.core.mail;
    let current = mail.account_usage(acct).await.map_err(store_error)?.state;
    let cannot = || MethodError::with("cannotCalculateChanges", "unknown or future state");
    let since: u64 = since_text.parse().map_err(|_| cannot())?;
    if since > current {
        return Err(cannot());
    }
    let mut kinds: HashMap<u64, Kind> = HashMap::new();
    let mut order: Vec<u64> = Vec::new();
    let mut reached = since;
    let mut more = false;
    let mut beyond_counts = false;
    let mut from = since;
    'records: loop {
        let batch = mail
            .changes_since(acct, from, 1000)
            .await
            .map_err(store_error)?;
        if batch.is_empty() {
            break;
        }
        for (state, change) in &batch {
            if *state > current {
                break 'records;
            }
            // §5.2: never more than maxChanges ids; stop at the record that
            // would pass it (an intermediate state), or refuse when even
            // the first record is too big to split.
            // Without maxChanges nothing needs undoing: work in place.
            let (mut next, mut next_order) = if max.is_some() {
                (kinds.clone(), order.clone())
            } else {
                (std::mem::take(&mut kinds), std::mem::take(&mut order))
            };
            let ([made, touched, gone], not_counts) = extract(change);
            if touched.is_empty() && made.is_empty() && gone.is_empty() {
                reached = *state;
                continue;
            }
            for (ids, kind) in [
                (&made, Kind::Created),
                (&touched, Kind::Updated),
                (&gone, Kind::Destroyed),
            ] {
                for e in ids {
                    let merged = match (next.get(e).copied(), kind) {
                        (None, k) => {
                            next_order.push(*e);
                            k
                        }
                        (Some(Kind::Created), Kind::Destroyed) => Kind::Gone,
                        (Some(Kind::Created), _) => Kind::Created,
                        (Some(Kind::Gone), _) => Kind::Gone,
                        (Some(_), Kind::Destroyed) => Kind::Destroyed,
                        (Some(prev), _) => prev,
                    };
                    next.insert(*e, merged);
                }
            }
            let count = next.values().filter(|k| **k != Kind::Gone).count();
            if max.is_some_and(|m| count > m) {
                if reached == since {
                    return Err(MethodError::with(
                        "cannotCalculateChanges",
                        "one change holds more than maxChanges records; ask with a larger maxChanges",
                    ));
                }
                more = true;
                break 'records;
            }
            kinds = next;
            order = next_order;
            reached = *state;
            beyond_counts |= not_counts;
        }
        from = batch.last().map_or(from, |(s, _)| *s);
    }
    if !more {
        reached = current;
    }
    let list = |want: Kind| -> Vec<String> {
        order
            .iter()
            .filter(|e| kinds.get(e) == Some(&want))
            .map(|e| name(*e))
            .collect()
    };
    let mut out = json!({
        "accountId": id::account(acct),
        "oldState": since_text,
        "newState": reached.to_string(),
        "hasMoreChanges": more,
        "created": list(Kind::Created),
        "updated": list(Kind::Updated),
        "destroyed": list(Kind::Destroyed),
    });
    // RFC 8621 §2.2: when only counts changed, say which properties.
    if mailboxes {
        out["updatedProperties"] = if beyond_counts {
            Value::Null
        } else {
            json!([
                "totalEmails",
                "unreadEmails",
                "totalThreads",
                "unreadThreads"
            ])
        };
    }
    Ok(out)
}
