//! Method calls (RFC 8620 §3.2), one file per object type. Each call
//! gets the authenticated account and the capabilities the request uses.

mod access;
pub(crate) mod blob;
mod changes;
mod echo;
mod email;
pub(crate) mod email_body;
mod email_copy;
mod email_create;
mod email_filter;
mod email_import;
mod email_parse;
pub(crate) mod email_query;
mod email_set;
mod email_text;
mod identity;
mod mailbox;
mod mailbox_set;
pub(crate) mod mdn;
mod principal;
mod push_subscription;
mod query_changes;
mod quota;
mod search_snippet;
mod share;
mod share_notification;
pub(crate) mod sieve_script;
pub(crate) mod submission;
mod thread;
mod vacation;

use serde_json::{Map, Value};

use super::request::{
    MethodError, BLOB, CORE, MAIL, MDN, PRINCIPALS, QUOTA, SIEVE, SUBMISSION, VACATION,
};
use crate::core::Core;
use crate::directory::Account;
pub use access::{shared_owners, Access};

pub struct Context<'a> {
    pub core: &'a Core,
    /// The same core, for work that outlives the request.
    pub shared: &'a crate::core::SharedCore,
    pub account: &'a Account,
    /// The credential the request came with (see `JmapUser`).
    pub credential: &'a str,
    pub using: &'a [String],
    /// Creation ids of this request and the ids they became (RFC 8620
    /// §5.3), seeded from the request's createdIds.
    pub created: std::sync::Mutex<Map<String, Value>>,
    /// Responses a call adds after its own, with its call id (RFC 8621
    /// §7.5: the implicit Email/set of EmailSubmission/set).
    pub implicit: std::sync::Mutex<Vec<(String, Value)>>,
    /// The mailboxes other accounts shared with the user, read once per
    /// request when a call first needs them.
    pub shares: tokio::sync::OnceCell<Vec<crate::mail::acl::Shared>>,
}

impl Context<'_> {
    /// Whether the request uses capability `cap`.
    pub fn uses(&self, cap: &str) -> bool {
        self.using.iter().any(|u| u == cap)
    }

    /// Records that creation id `cid` made object `id`.
    pub fn created(&self, cid: &str, id: &str) {
        self.created
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(cid.to_string(), Value::String(id.to_string()));
    }

    /// An id argument: `#cid` is the object a creation of this request
    /// made (§5.3); `None` if there is no such creation.
    pub fn resolve(&self, id: &str) -> Option<String> {
        match id.strip_prefix('#') {
            None => Some(id.to_string()),
            Some(cid) => self
                .created
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(cid)
                .and_then(Value::as_str)
                .map(String::from),
        }
    }

    /// What other accounts shared with the user (RFC 8620 §1.6.2).
    pub async fn shares(&self) -> Result<&[crate::mail::acl::Shared], MethodError> {
        self.shares
            .get_or_try_init(|| self.core.mail.shared_with(self.account.id))
            .await
            .map(Vec::as_slice)
            .map_err(store_error)
    }

    /// The `accountId` argument of a method only the user's own account
    /// offers (submission, vacation, quota, blobs, push): a shared
    /// account is `accountNotSupportedByMethod`, anything else
    /// `accountNotFound` (§3.6.2).
    pub async fn account_id(&self, args: &Map<String, Value>) -> Result<u32, MethodError> {
        let access = self.mail_access(args).await?;
        if access.is_own() {
            Ok(access.acct)
        } else {
            Err(MethodError::with(
                "accountNotSupportedByMethod",
                "a shared account offers the mail capability only",
            ))
        }
    }

    /// The `accountId` argument of a mail method: the user's own account
    /// or one that shares mailboxes with it.
    pub async fn mail_access(&self, args: &Map<String, Value>) -> Result<Access, MethodError> {
        let id = args
            .get("accountId")
            .and_then(Value::as_str)
            .ok_or_else(|| MethodError::invalid_arguments("accountId is required"))?;
        self.access_to(id).await
    }

    /// The bytes a blob id names in the account `access` reaches (uploads
    /// are the user's own wherever they were sent).
    pub async fn read_blob(
        &self,
        access: &Access,
        blob: &str,
    ) -> Result<Option<Vec<u8>>, MethodError> {
        crate::jmap::blob::read(&self.core.mail, self.account.id, access, blob)
            .await
            .map_err(store_error)
    }

    /// The account an id names, as the user may use it.
    pub async fn access_to(&self, id: &str) -> Result<Access, MethodError> {
        match super::id::parse_account(id) {
            Some(n) if n == self.account.id => Ok(Access::own(n)),
            Some(n) => Access::shared(n, self.shares().await?)
                .ok_or_else(|| MethodError::new("accountNotFound")),
            None => Err(MethodError::new("accountNotFound")),
        }
    }
}

/// Runs one call: the name of the response and its arguments.
pub async fn call(
    cx: &Context<'_>,
    name: &str,
    args: Map<String, Value>,
) -> Result<(String, Value), MethodError> {
    let needs = |cap: &str| cx.using.iter().any(|u| u == cap);
    match name {
        // §3.6.2: a method whose capability the request does not use is
        // not known to it.
        "Core/echo" if needs(CORE) => Ok((name.into(), echo::echo(args))),
        "Mailbox/get" if needs(MAIL) => Ok((name.into(), mailbox::get(cx, args).await?)),
        "Email/query" if needs(MAIL) => Ok((name.into(), email_query::query(cx, args).await?)),
        "Email/queryChanges" if needs(MAIL) => {
            Ok((name.into(), email_query::query_changes(cx, args).await?))
        }
        "Email/get" if needs(MAIL) => Ok((name.into(), email::get(cx, args).await?)),
        "Email/changes" if needs(MAIL) => Ok((name.into(), changes::email(cx, args).await?)),
        "Mailbox/set" if needs(MAIL) => Ok((name.into(), mailbox_set::set(cx, args).await?)),
        "Mailbox/query" if needs(MAIL) => Ok((name.into(), mailbox_set::query(cx, args).await?)),
        "Mailbox/queryChanges" if needs(MAIL) => {
            Ok((name.into(), mailbox_set::query_changes(cx, args).await?))
        }
        "Mailbox/changes" if needs(MAIL) => Ok((name.into(), changes::mailbox(cx, args).await?)),
        "Email/set" if needs(MAIL) => Ok((name.into(), email_set::set(cx, args).await?)),
        "Email/parse" if needs(MAIL) => Ok((name.into(), email_parse::parse(cx, args).await?)),
        "Email/copy" if needs(MAIL) => Ok((name.into(), email_copy::copy(cx, args).await?)),
        "Email/import" if needs(MAIL) => Ok((name.into(), email_import::import(cx, args).await?)),
        "Thread/get" if needs(MAIL) => Ok((name.into(), thread::get(cx, args).await?)),
        "SearchSnippet/get" if needs(MAIL) => {
            Ok((name.into(), search_snippet::get(cx, args).await?))
        }
        "Thread/changes" if needs(MAIL) => Ok((name.into(), thread::changes(cx, args).await?)),
        "Identity/get" if needs(SUBMISSION) => Ok((name.into(), identity::get(cx, args).await?)),
        "Identity/set" if needs(SUBMISSION) => Ok((name.into(), identity::set(cx, args).await?)),
        "EmailSubmission/get" if needs(SUBMISSION) => {
            Ok((name.into(), submission::get(cx, args).await?))
        }
        "EmailSubmission/set" if needs(SUBMISSION) => {
            Ok((name.into(), submission::set(cx, args).await?))
        }
        "EmailSubmission/query" if needs(SUBMISSION) => {
            Ok((name.into(), submission::query(cx, args).await?))
        }
        "EmailSubmission/changes" if needs(SUBMISSION) => Ok((
            name.into(),
            record_changes(cx, args, crate::mail::records::Kind::Submission).await?,
        )),
        "EmailSubmission/queryChanges" if needs(SUBMISSION) => {
            Ok((name.into(), submission::query_changes(cx, args).await?))
        }
        "VacationResponse/get" if needs(VACATION) => {
            Ok((name.into(), vacation::get(cx, args).await?))
        }
        "VacationResponse/set" if needs(VACATION) => {
            Ok((name.into(), vacation::set(cx, args).await?))
        }
        // RFC 9661.
        "SieveScript/get" if needs(SIEVE) => Ok((name.into(), sieve_script::get(cx, args).await?)),
        "SieveScript/set" if needs(SIEVE) => Ok((name.into(), sieve_script::set(cx, args).await?)),
        "SieveScript/query" if needs(SIEVE) => {
            Ok((name.into(), sieve_script::query(cx, args).await?))
        }
        "SieveScript/validate" if needs(SIEVE) => {
            Ok((name.into(), sieve_script::validate(cx, args).await?))
        }
        "Quota/get" if needs(QUOTA) => Ok((name.into(), quota::get(cx, args).await?)),
        "Quota/changes" if needs(QUOTA) => Ok((name.into(), quota::changes(cx, args).await?)),
        "Quota/query" if needs(QUOTA) => Ok((name.into(), quota::query(cx, args).await?)),
        "Quota/queryChanges" if needs(QUOTA) => {
            Ok((name.into(), quota::query_changes(cx, args).await?))
        }
        // RFC 9007.
        "MDN/send" if needs(MDN) => Ok((name.into(), mdn::send(cx, args).await?)),
        "MDN/parse" if needs(MDN) => Ok((name.into(), mdn::parse(cx, args).await?)),
        "Blob/upload" if needs(BLOB) => Ok((name.into(), blob::upload(cx, args).await?)),
        "Blob/get" if needs(BLOB) => Ok((name.into(), blob::get(cx, args).await?)),
        "Blob/lookup" if needs(BLOB) => Ok((name.into(), blob::lookup(cx, args).await?)),
        // RFC 8620 §7.2: with the core capability.
        "PushSubscription/get" if needs(CORE) => {
            Ok((name.into(), push_subscription::get(cx, args).await?))
        }
        "PushSubscription/set" if needs(CORE) => {
            Ok((name.into(), push_subscription::set(cx, args).await?))
        }
        // RFC 9670.
        "Principal/get" if needs(PRINCIPALS) => Ok((name.into(), principal::get(cx, args).await?)),
        "Principal/changes" if needs(PRINCIPALS) => {
            Ok((name.into(), principal::changes(cx, args).await?))
        }
        "Principal/set" if needs(PRINCIPALS) => Ok((name.into(), principal::set(cx, args).await?)),
        "Principal/query" if needs(PRINCIPALS) => {
            Ok((name.into(), principal::query(cx, args).await?))
        }
        "ShareNotification/get" if needs(PRINCIPALS) => {
            Ok((name.into(), share_notification::get(cx, args).await?))
        }
        "ShareNotification/changes" if needs(PRINCIPALS) => Ok((
            name.into(),
            record_changes(cx, args, crate::mail::records::Kind::ShareNotification).await?,
        )),
        "ShareNotification/set" if needs(PRINCIPALS) => {
            Ok((name.into(), share_notification::set(cx, args).await?))
        }
        "ShareNotification/query" if needs(PRINCIPALS) => {
            Ok((name.into(), share_notification::query(cx, args).await?))
        }
        "Principal/queryChanges" if needs(PRINCIPALS) => {
            Ok((name.into(), principal::query_changes(cx, args).await?))
        }
        "ShareNotification/queryChanges" if needs(PRINCIPALS) => Ok((
            name.into(),
            share_notification::query_changes(cx, args).await?,
        )),
        "Identity/changes" if needs(SUBMISSION) => Ok((
            name.into(),
            record_changes(cx, args, crate::mail::records::Kind::Identity).await?,
        )),
        _ => Err(MethodError::with(
            "unknownMethod",
            format!("`{name}` is not a method this server offers for the capabilities in `using`"),
        )),
    }
}

/// The response of a /get call (RFC 8620 §5.1).
fn get_response(
    acct: u32,
    state: impl std::fmt::Display,
    list: Vec<Value>,
    not_found: Vec<String>,
) -> Value {
    serde_json::json!({
        "accountId": super::id::account(acct),
        "state": state.to_string(),
        "list": list,
        "notFound": not_found,
    })
}

/// §5.3 ifInState: the call fails if the state moved.
fn check_state(args: &Map<String, Value>, state: u64) -> Result<(), MethodError> {
    match args.get("ifInState").and_then(Value::as_str) {
        Some(want) if want != state.to_string() => Err(MethodError::with(
            "stateMismatch",
            format!("the state is {state}, not {want}"),
        )),
        _ => Ok(()),
    }
}

/// The `blobIds` argument of the /parse methods (Email/parse, MDN/parse),
/// at most `max` of them (maxObjectsInGet).
fn blob_ids(args: &Map<String, Value>, max: usize) -> Result<Vec<String>, MethodError> {
    let ids: Vec<String> = args
        .get("blobIds")
        .and_then(Value::as_array)
        .ok_or_else(|| MethodError::invalid_arguments("blobIds must be an array"))?
        .iter()
        .map(|v| v.as_str().map(String::from))
        .collect::<Option<_>>()
        .ok_or_else(|| MethodError::invalid_arguments("blobIds must be strings"))?;
    if ids.len() > max {
        return Err(MethodError::with(
            "requestTooLarge",
            format!("more than maxObjectsInGet ({max}) blobIds"),
        ));
    }
    Ok(ids)
}

type SetArguments = (Map<String, Value>, Map<String, Value>, Vec<String>);

/// The create, update and destroy arguments of a /set call (§5.3), with
/// maxObjectsInSet enforced.
fn set_arguments(args: &Map<String, Value>, max: usize) -> Result<SetArguments, MethodError> {
    let obj = |name: &str| match args.get(name) {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(_) => Err(MethodError::invalid_arguments(format!(
            "{name} must be an object"
        ))),
    };
    let create = obj("create")?;
    let update = obj("update")?;
    let destroy: Vec<String> = match args.get("destroy") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| v.as_str().map(String::from))
            .collect::<Option<_>>()
            .ok_or_else(|| MethodError::invalid_arguments("destroy must hold ids"))?,
        Some(_) => return Err(MethodError::invalid_arguments("destroy must be an array")),
    };
    if create.len() + update.len() + destroy.len() > max {
        return Err(MethodError::with(
            "requestTooLarge",
            format!("more than maxObjectsInSet ({max}) changes"),
        ));
    }
    Ok((create, update, destroy))
}

/// The filter of a /query that takes one FilterCondition (no operator
/// trees); an empty one without a filter.
fn condition(args: &Map<String, Value>, method: &str) -> Result<Map<String, Value>, MethodError> {
    match args.get("filter") {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) if !m.contains_key("operator") => Ok(m.clone()),
        Some(_) => Err(MethodError::with(
            "unsupportedFilter",
            format!("{method} takes one FilterCondition"),
        )),
    }
}

/// A map in a response, null when empty (§5.3 created, notCreated, …).
fn or_null(m: Map<String, Value>) -> Value {
    if m.is_empty() {
        Value::Null
    } else {
        Value::Object(m)
    }
}

/// A list of ids in a response, null when empty.
fn ids_or_null(v: Vec<String>) -> Value {
    if v.is_empty() {
        Value::Null
    } else {
        serde_json::json!(v)
    }
}

/// The response of a /set call (§5.3); empty maps and lists are null.
/// `maps`: created, updated, notCreated, notUpdated, notDestroyed.
fn set_response(
    acct: u32,
    old_state: u64,
    new_state: u64,
    maps: [Map<String, Value>; 5],
    destroyed: Vec<String>,
) -> Value {
    let [created, updated, not_created, not_updated, not_destroyed] = maps.map(or_null);
    serde_json::json!({
        "accountId": super::id::account(acct),
        "oldState": old_state.to_string(),
        "newState": new_state.to_string(),
        "created": created,
        "updated": updated,
        "destroyed": ids_or_null(destroyed),
        "notCreated": not_created,
        "notUpdated": not_updated,
        "notDestroyed": not_destroyed,
    })
}

/// /changes for objects kept as mail-store records (§5.2): identities
/// and submissions, from their kind's own log. A state from before the
/// log (or across a clearing) is `cannotCalculateChanges`.
async fn record_changes(
    cx: &Context<'_>,
    args: Map<String, Value>,
    kind: crate::mail::records::Kind,
) -> Result<Value, MethodError> {
    use crate::mail::records::Kind;
    let acct = cx.account_id(&args).await?;
    let (since_text, max) = changes::since_and_max(&args)?;
    let mail = &cx.core.mail;
    let state = mail.record_state(acct, kind).await.map_err(store_error)?;
    let cannot = || {
        MethodError::with(
            "cannotCalculateChanges",
            "unknown state, or one older than this server's log; fetch them again",
        )
    };
    let since: u64 = since_text.parse().map_err(|_| cannot())?;
    if since > state {
        return Err(cannot());
    }
    let log = mail
        .record_log(acct, kind, since, state)
        .await
        .map_err(store_error)?
        .ok_or_else(cannot)?;
    let name = match kind {
        Kind::Submission => super::id::submission,
        Kind::ShareNotification => super::id::share_note,
        _ => super::id::identity,
    };
    let r = Replay::of(log, since, max);
    let [created, updated, destroyed] = r.ids.map(|l| l.into_iter().map(name).collect::<Vec<_>>());
    let (reached, more) = (r.reached, r.more);
    Ok(serde_json::json!({
        "accountId": super::id::account(acct),
        "oldState": since_text,
        "newState": reached.to_string(),
        "hasMoreChanges": more,
        "created": created,
        "updated": updated,
        "destroyed": destroyed,
    }))
}

/// A contiguous stretch of a change log (`store::changelog`) as /changes
/// answers it (§5.2): created, updated and destroyed ids, the state
/// reached and whether more changes follow.
struct Replay {
    ids: [Vec<u64>; 3],
    reached: u64,
    more: bool,
}

impl Replay {
    fn of(
        log: Vec<(u64, crate::store::changelog::Op, u64)>,
        since: u64,
        max: Option<usize>,
    ) -> Replay {
        use crate::store::changelog::Op;
        // Per id, in order of first change: the first and the last thing
        // that happened to it.
        let mut seen: Vec<(u64, Op, Op)> = Vec::new();
        let mut at: std::collections::HashMap<u64, usize> = std::collections::HashMap::new();
        let mut reached = since;
        let mut more = false;
        for (n, op, rec) in log {
            match at.get(&rec) {
                Some(&i) => seen[i].2 = op,
                None => {
                    // §5.2: never more than maxChanges ids; stop at the
                    // state before the one that would pass it.
                    if max.is_some_and(|m| seen.len() >= m) {
                        more = true;
                        break;
                    }
                    at.insert(rec, seen.len());
                    seen.push((rec, op, op));
                }
            }
            reached = n;
        }
        let (mut created, mut updated, mut destroyed) = (Vec::new(), Vec::new(), Vec::new());
        for (rec, first, last) in seen {
            match (first, last) {
                // Made and gone within the range: never seen (§5.2).
                (Op::Created, Op::Destroyed) => {}
                (Op::Created, _) => created.push(rec),
                (_, Op::Destroyed) => destroyed.push(rec),
                _ => updated.push(rec),
            }
        }
        Replay {
            ids: [created, updated, destroyed],
            reached,
            more,
        }
    }
}

/// The `sort` argument of a simple /query (§5.5) applied to `rows`: one
/// stable sort per comparator, the last first, so that the first
/// decides; `cmp` orders two rows by a property of `known`, any other
/// is `unsupportedSort`.
fn sort_rows<T>(
    args: &Map<String, Value>,
    rows: &mut [T],
    what: &str,
    known: &[&str],
    cmp: impl Fn(&str, &T, &T) -> std::cmp::Ordering,
) -> Result<(), MethodError> {
    let Some(sort) = args.get("sort").and_then(Value::as_array) else {
        return Ok(());
    };
    for c in sort.iter().rev() {
        let prop = c.get("property").and_then(Value::as_str);
        let Some(p) = prop.filter(|p| known.contains(p)) else {
            return Err(MethodError::with(
                "unsupportedSort",
                format!("cannot sort {what} by {prop:?}"),
            ));
        };
        let asc = c.get("isAscending").and_then(Value::as_bool) != Some(false);
        rows.sort_by(|a, b| {
            let o = cmp(p, a, b);
            if asc {
                o
            } else {
                o.reverse()
            }
        });
    }
    Ok(())
}

/// The response of a simple /query call (§5.5): `ids` in result order,
/// windowed by position and limit, with the total when asked.
fn query_response(
    args: &Map<String, Value>,
    acct: u32,
    state: impl std::fmt::Display,
    ids: Vec<String>,
) -> Value {
    let total = ids.len();
    let position = args.get("position").and_then(Value::as_i64).unwrap_or(0);
    let start = if position < 0 {
        total.saturating_sub(position.unsigned_abs() as usize)
    } else {
        (position as usize).min(total)
    };
    let end = args
        .get("limit")
        .and_then(Value::as_u64)
        .map_or(total, |l| start.saturating_add(l as usize).min(total));
    let mut out = serde_json::json!({
        "accountId": super::id::account(acct),
        "queryState": state.to_string(),
        // §5.6: every simple query answers /queryChanges.
        "canCalculateChanges": true,
        "position": start,
        "ids": ids[start..end],
    });
    if args.get("calculateTotal").and_then(Value::as_bool) == Some(true) {
        out["total"] = serde_json::json!(total);
    }
    out
}

/// RFC 8621 §4.1.1: a message flagged `\Deleted` (by IMAP) is not
/// visible through JMAP: not listed, counted or fetched.
pub(crate) fn deleted(flags: &[String]) -> bool {
    flags.iter().any(|f| f.eq_ignore_ascii_case("\\Deleted"))
}

/// A store failure as the method error clients retry on.
fn store_error(e: impl std::fmt::Display) -> MethodError {
    MethodError::with("serverFail", e.to_string())
}

/// Whether a message exists for JMAP: in some mailbox and not flagged
/// `\\Deleted`.
pub(crate) fn visible(state: &crate::mail::EmailState) -> bool {
    !state.mailboxes.is_empty() && !deleted(&state.keywords)
}

/// A visible message's mailboxes and keywords.
type Visible = (Vec<u32>, Vec<String>);

/// Every message of the account visible to JMAP and to the user, once,
/// with the mailboxes it is in that the user may read (RFC 8621 §9.5)
/// and its keywords (JMAP names).
async fn visible_messages(
    cx: &Context<'_>,
    access: &Access,
) -> Result<std::collections::HashMap<u64, Visible>, MethodError> {
    let mail = &cx.core.mail;
    let acct = access.acct;
    let mut found: std::collections::HashMap<u64, Visible> = std::collections::HashMap::new();
    for m in mail.mailboxes(acct).await.map_err(store_error)? {
        if !access.reads(m.id) {
            continue;
        }
        for e in mail.view(acct, &m).await.map_err(store_error)?.iter() {
            if deleted(&e.flags) {
                continue;
            }
            found
                .entry(e.email)
                .or_insert_with(|| {
                    (
                        Vec::new(),
                        e.flags.iter().filter_map(|f| email::keyword(f)).collect(),
                    )
                })
                .0
                .push(m.id);
        }
    }
    Ok(found)
}
