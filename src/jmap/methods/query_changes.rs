//! /queryChanges (RFC 8620 §5.6) for Email and Mailbox queries, from the
//! change log /changes reads. Queries keep no results; the answer is
//! worked out from the log and the current results:
//!
//! - `removed`: every id the log touched since the client's query state
//!   and that the query did not see made since (it may have left the
//!   results or moved in them: §5.6 lets the server name extra ids);
//! - `added`: where each touched id that is in the current results
//!   stands now, lowest index first.
//!
//! An id the log did not touch kept the properties the query looks at
//! (every filter and sort is on immutable properties or on ones whose
//! changes the log records), so it kept its membership and its order
//! relative to the other untouched ids. Splicing out `removed` and in
//! `added` therefore gives the current results. Where a result depends
//! on other objects (an Email's Thread, a Mailbox's parent), the caller
//! widens the touched set to them.

use std::collections::HashSet;

use serde_json::{json, Map, Value};
use sha2::Digest;

use super::{store_error, Access};
use crate::jmap::id;
use crate::jmap::request::MethodError;
use crate::mail::{Change, MailStore};

/// The ids one change record names for a type: made, changed, gone.
pub(super) type Touch = fn(&Change) -> [Vec<u64>; 3];

/// The ids the log touched after a query state.
#[derive(Debug)]
pub(super) struct Touched {
    /// Made after the state: never in the old results.
    pub created: HashSet<u64>,
    /// Changed or destroyed after the state, and made before it.
    pub changed: HashSet<u64>,
    /// The Thread of each Email destroyed since the state, as the log
    /// kept it; `None` when a record from before Threads were logged has
    /// destructions.
    pub destroyed_threads: Option<std::collections::HashMap<u64, u64>>,
}

impl Touched {
    /// Counts `id` as changed (unless it is new since the state).
    pub fn change(&mut self, id: u64) {
        if !self.created.contains(&id) {
            self.changed.insert(id);
        }
    }

    pub fn contains(&self, id: u64) -> bool {
        self.created.contains(&id) || self.changed.contains(&id)
    }
}

/// The queryState of a query: the account's state; in a shared account
/// also a digest of what else decides what the user sees (its grants,
/// `extra`), which moves without a record in the owner's log.
pub(super) fn query_state(access: &Access, state: u64, extra: &str) -> String {
    if access.is_own() {
        return state.to_string();
    }
    let mut h = sha2::Sha256::new();
    h.update(access.grants_text());
    h.update([0]);
    h.update(extra);
    format!("{state}-{}", hex::encode(&h.finalize()[..6]))
}

/// The state `sinceQueryState` names, if it can be brought up to
/// `current` (the account's state) from the log.
pub(super) fn since(
    args: &Map<String, Value>,
    access: &Access,
    current: u64,
    extra: &str,
) -> Result<(String, u64), MethodError> {
    let text = args
        .get("sinceQueryState")
        .and_then(Value::as_str)
        .ok_or_else(|| MethodError::invalid_arguments("sinceQueryState is required"))?;
    let state: u64 = text
        .split('-')
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(u64::MAX);
    // The digest must be today's: grants or subscriptions that moved
    // changed what the user sees with no record in the log.
    if state > current || query_state(access, state, extra) != text {
        return Err(MethodError::with(
            "cannotCalculateChanges",
            "the state is unknown, or what is shared with you changed since; query again",
        ));
    }
    Ok((text.to_string(), state))
}

/// What a log of its own (mail-store records, the directory's
/// principals) names after a state: for a query that looks only at what
/// that log records, the ids whose place may have changed.
pub(super) fn touched_by(log: &[(u64, crate::store::changelog::Op, u64)]) -> Touched {
    let mut out = Touched {
        created: HashSet::new(),
        changed: HashSet::new(),
        destroyed_threads: None,
    };
    for (_, op, id) in log {
        match op {
            crate::store::changelog::Op::Created => {
                out.created.insert(*id);
            }
            _ => out.change(*id),
        }
    }
    out
}

/// `sinceQueryState` of a query whose state is a plain counter, if it is
/// not later than `current`.
pub(super) fn since_counter(
    args: &Map<String, Value>,
    current: u64,
) -> Result<(String, u64), MethodError> {
    let text = args
        .get("sinceQueryState")
        .and_then(Value::as_str)
        .ok_or_else(|| MethodError::invalid_arguments("sinceQueryState is required"))?;
    match text.parse::<u64>() {
        Ok(n) if n <= current => Ok((text.to_string(), n)),
        _ => Err(cannot()),
    }
}

pub(super) fn cannot() -> MethodError {
    MethodError::with(
        "cannotCalculateChanges",
        "the state is unknown or older than the log; query again",
    )
}

/// /queryChanges from a log of its own (`touched_by`): `log` is what
/// happened after the client's state, `None` when it cannot be replayed.
pub(super) fn from_log(
    args: &Map<String, Value>,
    acct: u32,
    states: (String, String),
    log: Option<Vec<(u64, crate::store::changelog::Op, u64)>>,
    results: &[u64],
    name: fn(u64) -> String,
) -> Result<Value, MethodError> {
    // respond() enforces maxChanges (removed is every changed id).
    let t = touched_by(&log.ok_or_else(cannot)?);
    respond(args, acct, states, results, &t, None, name)
}

/// /queryChanges of a query over mail-store records of `kind` (their
/// own log): `state` and `results` are the query's now.
pub(super) async fn for_records(
    cx: &super::Context<'_>,
    args: &Map<String, Value>,
    acct: u32,
    kind: crate::mail::records::Kind,
    (state, results): (u64, Vec<u64>),
    name: fn(u64) -> String,
) -> Result<Value, MethodError> {
    let (since_text, since) = since_counter(args, state)?;
    let log = cx
        .core
        .mail
        .record_log(acct, kind, since, state)
        .await
        .map_err(store_error)?;
    from_log(
        args,
        acct,
        (since_text, state.to_string()),
        log,
        &results,
        name,
    )
}

/// The `maxChanges` argument.
fn max_changes(args: &Map<String, Value>) -> Result<Option<usize>, MethodError> {
    match args.get("maxChanges") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(|n| Some(n as usize)).ok_or_else(|| {
            MethodError::invalid_arguments("maxChanges must be an UnsignedInt or null")
        }),
    }
}

fn too_many(max: usize) -> MethodError {
    MethodError::with(
        "tooManyChanges",
        format!("more than maxChanges ({max}) changes; query again or ask for more"),
    )
}

/// What the log touched in `acct` after `since`. Stops early with
/// `tooManyChanges` once more ids changed than the client takes.
pub(super) async fn touched(
    mail: &MailStore,
    acct: u32,
    since: u64,
    args: &Map<String, Value>,
    touch: Touch,
) -> Result<Touched, MethodError> {
    let max = max_changes(args)?;
    let mut out = Touched {
        created: HashSet::new(),
        changed: HashSet::new(),
        destroyed_threads: Some(Default::default()),
    };
    let mut from = since;
    loop {
        let batch = mail
            .changes_since(acct, from, 1000)
            .await
            .map_err(store_error)?;
        let Some((last, _)) = batch.last() else {
            break;
        };
        from = *last;
        for (_, change) in &batch {
            match (change.destroyed_threads(), out.destroyed_threads.as_mut()) {
                (Some(pairs), Some(t)) => t.extend(pairs),
                _ => out.destroyed_threads = None,
            }
            let [made, changed, gone] = touch(change);
            out.created.extend(made);
            for i in changed.into_iter().chain(gone) {
                out.change(i);
            }
        }
        // Every changed id is one `removed` entry (§5.6 tooManyChanges).
        if let Some(m) = max.filter(|m| out.changed.len() > *m) {
            return Err(too_many(m));
        }
    }
    Ok(out)
}

/// The response (§5.6): `results` are the current results in order;
/// `up_to` the index of `upToId` when the query is only on immutable
/// properties (§5.6: later additions are left out).
pub(super) fn respond(
    args: &Map<String, Value>,
    acct: u32,
    (since_text, new_state): (String, String),
    results: &[u64],
    touched: &Touched,
    up_to: Option<u64>,
    name: fn(u64) -> String,
) -> Result<Value, MethodError> {
    let mut removed: Vec<u64> = touched.changed.iter().copied().collect();
    removed.sort_unstable();
    let last = up_to.and_then(|u| results.iter().position(|r| *r == u));
    let added: Vec<Value> = results
        .iter()
        .enumerate()
        .take(last.map_or(results.len(), |l| l + 1))
        .filter(|(_, r)| touched.contains(**r))
        .map(|(i, r)| json!({"id": name(*r), "index": i}))
        .collect();
    if let Some(m) = max_changes(args)?.filter(|m| removed.len() + added.len() > *m) {
        return Err(too_many(m));
    }
    let mut out = json!({
        "accountId": id::account(acct),
        "oldQueryState": since_text,
        "newQueryState": new_state,
        "removed": removed.into_iter().map(name).collect::<Vec<_>>(),
        "added": added,
    });
    // §5.6: total only when asked for.
    if args.get("calculateTotal").and_then(Value::as_bool) == Some(true) {
        out["total"] = json!(results.len());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a client does with the answer (§5.6): splice out `removed`,
    /// splice in `added` lowest index first.
    fn apply(old: &[u64], answer: &Value) -> Vec<u64> {
        let removed: HashSet<u64> = answer["removed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap()[1..].parse().unwrap())
            .collect();
        let mut list: Vec<u64> = old
            .iter()
            .copied()
            .filter(|i| !removed.contains(i))
            .collect();
        for a in answer["added"].as_array().unwrap() {
            let i: u64 = a["id"].as_str().unwrap()[1..].parse().unwrap();
            list.insert(a["index"].as_u64().unwrap() as usize, i);
        }
        list
    }

    fn touched(created: &[u64], changed: &[u64]) -> Touched {
        let mut t = Touched {
            created: created.iter().copied().collect(),
            changed: HashSet::new(),
            destroyed_threads: None,
        };
        changed.iter().for_each(|c| t.change(*c));
        t
    }

    #[test]
    fn splicing_gives_the_new_results() {
        // 7 made, 3 moved to the front, 5 gone.
        let old = [1, 2, 3, 4, 5, 6];
        let new = [3, 1, 7, 2, 4, 6];
        let t = touched(&[7], &[3, 5]);
        let args = Map::new();
        let r = respond(
            &args,
            1,
            ("4".into(), "9".into()),
            &new,
            &t,
            None,
            id::email,
        )
        .unwrap();
        assert_eq!(r["removed"], json!(["E3", "E5"]));
        assert_eq!(
            r["added"],
            json!([{"id": "E3", "index": 0}, {"id": "E7", "index": 2}])
        );
        assert_eq!(apply(&old, &r), new);
        assert!(r.get("total").is_none());
        // A created id is never counted as changed.
        let mut t = touched(&[7], &[]);
        t.change(7);
        assert!(t.changed.is_empty());
    }

    #[test]
    fn limits_and_total() {
        let new = [1, 2, 3];
        let t = touched(&[2, 3], &[9]);
        let answer = |max: i64, up_to: Option<u64>| {
            let mut args = Map::new();
            args.insert("maxChanges".into(), json!(max));
            args.insert("calculateTotal".into(), json!(true));
            let states = ("1".into(), "2".into());
            respond(&args, 1, states, &new, &t, up_to, id::email)
        };
        assert_eq!(answer(2, None).unwrap_err().kind, "tooManyChanges");
        assert_eq!(answer(3, None).unwrap()["total"], json!(3));
        // upToId on an immutable query: additions after it left out.
        assert_eq!(
            answer(3, Some(2)).unwrap()["added"],
            json!([{"id": "E2", "index": 1}])
        );
        assert_eq!(answer(-1, None).unwrap_err().kind, "invalidArguments");
        // No calculateTotal: no total.
        let r = respond(
            &Map::new(),
            1,
            ("1".into(), "2".into()),
            &new,
            &t,
            None,
            id::email,
        );
        assert!(r.unwrap().get("total").is_none());
    }
}
