//! EmailSubmission (RFC 8621 §7): sending an Email through the outbound
//! queue, as SMTP submission does — the sender checked against the
//! account's addresses, Bcc removed, DKIM-signed, queued durably — with
//! `sendAt` (FUTURERELEASE holds and the `jmap.submission-delay` undo
//! window), cancelling while the entry has not been tried, delivery
//! status read from the queue, and the implicit Email/set of
//! onSuccessUpdateEmail / onSuccessDestroyEmail (§7.5).

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::identity::{self, may_send_as};
use super::mailbox::{ids, properties};
use super::{store_error, Context};
use crate::core::unix_now;
use crate::jmap::id;
use crate::jmap::request::MethodError;
use crate::mail::records::Kind;
use crate::queue::{NewMessage, QueueEntry, QueueRcpt, RcptStatus};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Submission {
    pub identity_id: String,
    pub email_id: String,
    pub thread_id: String,
    pub envelope: Value,
    pub send_at: i64,
    pub queue_id: u64,
    pub canceled: bool,
    /// Reports received for it (see `jmap::reports`), oldest first.
    #[serde(default)]
    pub dsn_blob_ids: Vec<String>,
    #[serde(default)]
    pub mdn_blob_ids: Vec<String>,
    /// Recipient (lower case) → "yes"/"no", from DSNs (§7 delivered).
    #[serde(default)]
    pub reported_delivered: std::collections::BTreeMap<String, String>,
    /// Recipients (lower case) an MDN said it was displayed to.
    #[serde(default)]
    pub displayed: std::collections::BTreeSet<String>,
}

const PROPERTIES: &[&str] = &[
    "id",
    "identityId",
    "emailId",
    "threadId",
    "envelope",
    "sendAt",
    "undoStatus",
    "deliveryStatus",
    "dsnBlobIds",
    "mdnBlobIds",
];

fn invalid(property: &str, why: impl Into<String>) -> Value {
    json!({"type": "invalidProperties", "properties": [property], "description": why.into()})
}

/// Where the queue has the submission: its entry while it is queued,
/// its last state once it is done.
async fn queue_state(cx: &Context<'_>, s: &Submission) -> Result<Option<QueueEntry>, MethodError> {
    let q = &cx.core.queue;
    if let Some(e) = q.get(s.queue_id).await.map_err(store_error)? {
        return Ok(Some(e));
    }
    q.finished(s.queue_id).await.map_err(store_error)
}

/// §7: pending while nothing was attempted (a hold or the undo window),
/// final after, canceled when cancelled.
fn undo_status(s: &Submission, e: Option<&QueueEntry>) -> &'static str {
    match e {
        _ if s.canceled => "canceled",
        Some(e)
            if e.attempts == 0 && e.recipients.iter().all(|r| r.status == RcptStatus::Pending) =>
        {
            "pending"
        }
        _ => "final",
    }
}

/// §7 deliveryStatus, per recipient, from the queue, then from the
/// reports received (a DSN's delivered/failed, an MDN's displayed).
fn delivery_status(s: &Submission, e: Option<&QueueEntry>, hostname: &str) -> Value {
    let Some(e) = e else { return Value::Null };
    Value::Object(
        e.recipients
            .iter()
            .map(|r| {
                let (reply, delivered) = match &r.status {
                    RcptStatus::Pending => (
                        r.last_error.clone().unwrap_or_else(|| "250 2.0.0 Queued".into()),
                        "queued",
                    ),
                    // Relayed onwards: the final store is not known
                    // (§7: "unknown"); delivered here: "yes".
                    RcptStatus::Delivered { reply, host } => (
                        reply.clone(),
                        if host == hostname {
                            "yes"
                        } else {
                            "unknown"
                        },
                    ),
                    RcptStatus::Failed { reply, .. } => (reply.clone(), "no"),
                };
                let key = r.address.to_ascii_lowercase();
                let delivered = s
                    .reported_delivered
                    .get(&key)
                    .map_or(delivered, String::as_str);
                let displayed = if s.displayed.contains(&key) {
                    "yes"
                } else {
                    "unknown"
                };
                (
                    r.address.clone(),
                    json!({"smtpReply": reply.replace("\r\n", " "), "delivered": delivered, "displayed": displayed}),
                )
            })
            .collect(),
    )
}

async fn to_json(
    cx: &Context<'_>,
    n: u64,
    s: &Submission,
    props: &[String],
) -> Result<Value, MethodError> {
    let e = queue_state(cx, s).await?;
    let mut out = Map::new();
    for p in props {
        let v = match p.as_str() {
            "id" => json!(id::submission(n)),
            "identityId" => json!(s.identity_id),
            "emailId" => json!(s.email_id),
            "threadId" => json!(s.thread_id),
            "envelope" => s.envelope.clone(),
            "sendAt" => super::email::utc(s.send_at),
            "undoStatus" => json!(undo_status(s, e.as_ref())),
            "deliveryStatus" => delivery_status(s, e.as_ref(), &cx.core.config.hostname),
            "dsnBlobIds" => json!(s.dsn_blob_ids),
            "mdnBlobIds" => json!(s.mdn_blob_ids),
            _ => continue,
        };
        out.insert(p.clone(), v);
    }
    Ok(Value::Object(out))
}

/// The kind's state and the account's submissions.
async fn load(cx: &Context<'_>, acct: u32) -> Result<(u64, Vec<(u64, Submission)>), MethodError> {
    let mail = &cx.core.mail;
    let state = mail
        .record_state(acct, Kind::Submission)
        .await
        .map_err(store_error)?;
    let all = mail
        .records::<Submission>(acct, Kind::Submission)
        .await
        .map_err(store_error)?;
    Ok((state, all))
}

pub async fn get(cx: &Context<'_>, args: Map<String, Value>) -> Result<Value, MethodError> {
    let acct = cx.account_id(&args).await?;
    let props = properties(&args, PROPERTIES)?;
    let wanted = ids(cx, &args)?;
    let (state, all) = load(cx, acct).await?;
    let mut list = Vec::new();
    let mut not_found = Vec::new();
    match wanted {
        None => {
            for (n, s) in &all {
                list.push(to_json(cx, *n, s, &props).await?);
            }
        }
        Some(wanted) => {
            for w in wanted {
                let found = cx
                    .resolve(&w)
                    .and_then(|x| id::parse_submission(&x))
                    .and_then(|n| all.iter().find(|(m, _)| *m == n));
                match found {
                    Some((n, s)) => list.push(to_json(cx, *n, s, &props).await?),
                    None => not_found.push(w),
                }
            }
        }
    }
    Ok(super::get_response(acct, state, list, not_found))
}

/// An envelope Address (§7): `email` and optional `parameters`.
fn address(v: &Value) -> Option<(String, Map<String, Value>)> {
    let email = v.get("email")?.as_str()?.to_string();
    let params = match v.get("parameters") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return None,
    };
    Some((email, params))
}

/// The envelope for an Email when the client gives none (§7).
fn envelope_of(
    msg: &mail_parser::Message<'_>,
    identity_email: &str,
    allowed: &dyn Fn(&str) -> bool,
) -> Value {
    let from = msg
        .sender()
        .or_else(|| msg.from())
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .filter(|a| allowed(a))
        .unwrap_or(identity_email)
        .to_string();
    let mut rcpts: Vec<String> = Vec::new();
    for a in [msg.to(), msg.cc(), msg.bcc()].into_iter().flatten() {
        for x in a.iter() {
            if let Some(e) = x.address() {
                if !rcpts.iter().any(|r| r.eq_ignore_ascii_case(e)) {
                    rcpts.push(e.to_string());
                }
            }
        }
    }
    json!({
        "mailFrom": {"email": from, "parameters": null},
        "rcptTo": rcpts.iter().map(|r| json!({"email": r, "parameters": null})).collect::<Vec<_>>(),
    })
}

/// The message without its Bcc fields (§7.5: removed for delivery).
fn without_bcc(raw: &[u8]) -> Vec<u8> {
    crate::mail::mime::without_fields(raw, |name| name.eq_ignore_ascii_case("bcc"))
        .unwrap_or_else(|| raw.to_vec())
}

/// When the submission is released: a FUTURERELEASE hold (RFC 4865
/// HOLDFOR seconds / HOLDUNTIL date) within maxDelayedSend, else now plus
/// the undo window.
fn release_time(params: &Map<String, Value>, max_delay: u64, undo: u64) -> Result<i64, Value> {
    let now = unix_now();
    let mut at = now + undo as i64;
    for (k, v) in params {
        let hold = match k.to_ascii_uppercase().as_str() {
            "HOLDFOR" => v
                .as_str()
                .and_then(|s| s.parse::<i64>().ok())
                .filter(|s| *s >= 0)
                .map(|s| now + s),
            "HOLDUNTIL" => v
                .as_str()
                .and_then(mail_parser::DateTime::parse_rfc3339)
                .map(|d| d.to_timestamp()),
            _ => {
                return Err(invalid(
                    "envelope",
                    format!(
                        "the MAIL FROM parameter {k} is not supported (see submissionExtensions)"
                    ),
                ))
            }
        };
        let Some(t) = hold else {
            return Err(invalid("envelope", format!("{k} has a bad value")));
        };
        if max_delay == 0 || t - now > max_delay as i64 {
            return Err(invalid(
                "envelope",
                format!("{k} asks for a hold longer than maxDelayedSend ({max_delay} s)"),
            ));
        }
        at = at.max(t);
    }
    Ok(at)
}

/// One creation; the new record's number and the response object.
async fn create_one(
    cx: &Context<'_>,
    acct: u32,
    obj: &Map<String, Value>,
) -> Result<Result<(u64, Value), Value>, MethodError> {
    let mail = &cx.core.mail;
    let identities = identity::all(cx, acct).await?;
    let Some(identity_id) = obj
        .get("identityId")
        .and_then(Value::as_str)
        .and_then(|i| cx.resolve(i))
    else {
        return Ok(Err(invalid("identityId", "identityId is required")));
    };
    let Some((_, ident)) =
        id::parse_identity(&identity_id).and_then(|n| identities.iter().find(|(m, _)| *m == n))
    else {
        return Ok(Err(invalid(
            "identityId",
            format!("no Identity {identity_id}"),
        )));
    };
    let Some(email_id) = obj
        .get("emailId")
        .and_then(Value::as_str)
        .and_then(|i| cx.resolve(i))
    else {
        return Ok(Err(invalid("emailId", "emailId is required")));
    };
    let found = match id::parse_email(&email_id) {
        Some(e) => match (
            mail.email_meta(acct, e).await.map_err(store_error)?,
            mail.email_state(acct, e).await.map_err(store_error)?,
        ) {
            (Some(m), Some(st)) if super::visible(&st) => Some(m),
            _ => None,
        },
        None => None,
    };
    let Some(meta) = found else {
        return Ok(Err(invalid("emailId", format!("no Email {email_id}"))));
    };
    let max = cx.core.config.smtp.max_message_size;
    if meta.size as usize > max {
        return Ok(Err(json!({"type": "tooLarge", "maxSize": max})));
    }
    let raw = mail.email_raw(&meta).await.map_err(store_error)?;
    let Some(msg) = mail_parser::MessageParser::default().parse(&raw) else {
        return Ok(Err(
            json!({"type": "invalidEmail", "properties": ["headers"]}),
        ));
    };
    // RFC 6409 §8.1 as on the submission port: the author is the user.
    let allowed = |a: &str| may_send_as(cx, a) || a.eq_ignore_ascii_case(&ident.email);
    let froms: Vec<&str> = msg
        .from()
        .map(|f| f.iter().filter_map(|a| a.address()).collect())
        .unwrap_or_default();
    if froms.is_empty() {
        return Ok(Err(json!({"type": "invalidEmail", "properties": ["from"],
            "description": "the Email has no From address"})));
    }
    if let Some(other) = froms.iter().find(|a| !allowed(a)) {
        return Ok(Err(json!({"type": "forbiddenFrom",
            "description": format!("the From address {other} is not one of this account's")})));
    }
    let envelope = match obj.get("envelope") {
        None | Some(Value::Null) => {
            // §7: the author must be one address in one field to make
            // the envelope from.
            let count = |name: &str| msg.header_values(name).count();
            let senders = msg.sender().map_or(0, |a| a.iter().count());
            if count("From") > 1
                || count("Sender") > 1
                || (senders == 0 && froms.len() > 1)
                || senders > 1
            {
                return Ok(Err(
                    json!({"type": "invalidEmail", "properties": ["from", "sender"],
                    "description": "more than one author: give an envelope"}),
                ));
            }
            envelope_of(&msg, &ident.email, &allowed)
        }
        Some(v) => v.clone(),
    };
    let Some((mail_from, params)) = envelope.get("mailFrom").and_then(address) else {
        return Ok(Err(invalid("envelope", "mailFrom must be an Address")));
    };
    if !allowed(&mail_from) {
        return Ok(Err(json!({"type": "forbiddenMailFrom",
            "description": format!("{mail_from} is not one of this account's addresses")})));
    }
    let Some(rcpts) = envelope
        .get("rcptTo")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(address).collect::<Option<Vec<_>>>())
    else {
        return Ok(Err(invalid(
            "envelope",
            "rcptTo must be a list of Addresses",
        )));
    };
    let Some(rcpts) = rcpts else {
        return Ok(Err(invalid(
            "envelope",
            "rcptTo must be a list of Addresses",
        )));
    };
    if rcpts.is_empty() {
        return Ok(Err(json!({"type": "noRecipients"})));
    }
    let limit = cx.core.config.smtp.max_recipients;
    if rcpts.len() > limit {
        return Ok(Err(
            json!({"type": "tooManyRecipients", "maxRecipients": limit}),
        ));
    }
    let bad: Vec<&str> = rcpts
        .iter()
        .map(|(e, _)| e.as_str())
        .filter(|e| {
            e.rsplit_once('@').is_none_or(|(l, d)| {
                l.is_empty() || !d.contains('.') || e.contains(char::is_whitespace)
            })
        })
        .collect();
    if !bad.is_empty() {
        return Ok(Err(
            json!({"type": "invalidRecipients", "invalidRecipients": bad}),
        ));
    }
    if rcpts.iter().any(|(_, p)| !p.is_empty()) {
        return Ok(Err(invalid(
            "envelope",
            "RCPT TO parameters are not supported",
        )));
    }
    let jc = &cx.core.config.jmap;
    let send_at = match release_time(&params, jc.max_delayed_send, jc.submission_delay) {
        Ok(t) => t,
        Err(e) => return Ok(Err(e)),
    };
    let body = without_bcc(&raw);
    let body =
        crate::dkim::sign_outgoing(&cx.core.store, &cx.core.config.dkim, &mail_from, body).await;
    let recipients: Vec<QueueRcpt> = rcpts.iter().map(|(e, _)| QueueRcpt::new(e)).collect();
    let queue_id = cx
        .core
        .queue
        .enqueue(NewMessage {
            from: mail_from.clone(),
            recipients,
            raw: body,
            smtputf8: !mail_from.is_ascii() || rcpts.iter().any(|(e, _)| !e.is_ascii()),
            hold_until: Some(send_at),
            track: true,
            ..Default::default()
        })
        .await
        .map_err(store_error)?;
    let s = Submission {
        identity_id,
        email_id,
        thread_id: id::thread(meta.thread),
        envelope,
        send_at,
        queue_id,
        canceled: false,
        dsn_blob_ids: Vec::new(),
        mdn_blob_ids: Vec::new(),
        reported_delivered: Default::default(),
        displayed: Default::default(),
    };
    let n = mail
        .create_submission(acct, &s, queue_id)
        .await
        .map_err(store_error)?;
    metrics::counter!("petrel_jmap_submissions_total").increment(1);
    tracing::info!(account = %cx.account.address, queue_id, from = %mail_from, rcpts = rcpts.len(), send_at, "JMAP submission queued");
    let undo = if send_at > unix_now() {
        "pending"
    } else {
        "final"
    };
    Ok(Ok((
        n,
        json!({"id": id::submission(n), "threadId": s.thread_id, "sendAt": super::email::utc(send_at), "undoStatus": undo}),
    )))
}

pub async fn set(cx: &Context<'_>, args: Map<String, Value>) -> Result<Value, MethodError> {
    let acct = cx.account_id(&args).await?;
    let mail = &cx.core.mail;
    let old_state = mail
        .record_state(acct, Kind::Submission)
        .await
        .map_err(store_error)?;
    super::check_state(&args, old_state)?;
    let (create, update, destroy) =
        super::set_arguments(&args, cx.core.config.jmap.max_objects_in_set)?;
    let mut created = Map::new();
    let mut not_created = Map::new();
    // Submissions that succeeded (created, updated, destroyed): the
    // implicit Email/set acts on their Emails.
    let mut succeeded: Vec<(String, String)> = Vec::new();
    for (cid, obj) in &create {
        let Some(obj) = obj.as_object() else {
            not_created.insert(cid.clone(), invalid("create", "an object"));
            continue;
        };
        match create_one(cx, acct, obj).await? {
            Ok((n, v)) => {
                cx.created(cid, &id::submission(n));
                let email = cx
                    .resolve(
                        obj.get("emailId")
                            .and_then(Value::as_str)
                            .unwrap_or_default(),
                    )
                    .unwrap_or_default();
                succeeded.push((format!("#{cid}"), email.clone()));
                succeeded.push((id::submission(n), email));
                created.insert(cid.clone(), v);
            }
            Err(e) => {
                not_created.insert(cid.clone(), e);
            }
        }
    }
    let mut updated = Map::new();
    let mut not_updated = Map::new();
    for (asked, patch) in &update {
        let sid = cx.resolve(asked).unwrap_or_else(|| asked.clone());
        let Some(n) = id::parse_submission(&sid) else {
            not_updated.insert(sid, json!({"type": "notFound"}));
            continue;
        };
        let Some(mut s) = mail
            .record::<Submission>(acct, Kind::Submission, n)
            .await
            .map_err(store_error)?
        else {
            not_updated.insert(sid, json!({"type": "notFound"}));
            continue;
        };
        // §7: only undoStatus can change, and only to canceled.
        let wants_cancel = patch
            .as_object()
            .is_some_and(|p| p.len() == 1 && p.get("undoStatus") == Some(&json!("canceled")));
        if !wants_cancel {
            not_updated.insert(
                sid,
                invalid("undoStatus", "only undoStatus: canceled can be set"),
            );
            continue;
        }
        let e = queue_state(cx, &s).await?;
        if undo_status(&s, e.as_ref()) != "pending" && !s.canceled {
            not_updated.insert(
                sid,
                json!({"type": "cannotUnsend", "description": "delivery has begun"}),
            );
            continue;
        }
        if !s.canceled {
            // Cancel only an entry no attempt has touched.
            let q = &cx.core.queue;
            let still_held = q
                .get(s.queue_id)
                .await
                .map_err(store_error)?
                .is_some_and(|e| e.attempts == 0);
            if !still_held {
                not_updated.insert(sid, json!({"type": "cannotUnsend"}));
                continue;
            }
            q.cancel(s.queue_id).await.map_err(store_error)?;
            s.canceled = true;
            mail.update_record(acct, Kind::Submission, n, &s)
                .await
                .map_err(store_error)?;
            tracing::info!(account = %cx.account.address, queue_id = s.queue_id, "JMAP submission cancelled");
        }
        succeeded.push((sid.clone(), s.email_id.clone()));
        updated.insert(sid, Value::Null);
    }
    let mut destroyed = Vec::new();
    let mut not_destroyed = Map::new();
    for asked in destroy {
        let sid = cx.resolve(&asked).unwrap_or(asked);
        let rec = match id::parse_submission(&sid) {
            Some(n) => mail
                .record::<Submission>(acct, Kind::Submission, n)
                .await
                .map_err(store_error)?
                .map(|s| (n, s)),
            None => None,
        };
        let Some((n, s)) = rec else {
            not_destroyed.insert(sid, json!({"type": "notFound"}));
            continue;
        };
        // §7.5: destroying the record does not touch the delivery.
        mail.delete_record(acct, Kind::Submission, n)
            .await
            .map_err(store_error)?;
        cx.core
            .queue
            .forget_finished(s.queue_id)
            .await
            .map_err(store_error)?;
        succeeded.push((sid.clone(), s.email_id));
        destroyed.push(sid);
    }
    let new_state = mail
        .record_state(acct, Kind::Submission)
        .await
        .map_err(store_error)?;
    implicit_email_set(cx, acct, &args, &succeeded).await?;
    Ok(super::set_response(
        acct,
        old_state,
        new_state,
        [created, updated, not_created, not_updated, not_destroyed],
        destroyed,
    ))
}

/// §7.5: one Email/set for onSuccessUpdateEmail and onSuccessDestroyEmail
/// of the submissions that succeeded, answered after this call (MDN/send
/// uses it too, RFC 9007 §2.1).
pub(super) async fn implicit_email_set(
    cx: &Context<'_>,
    acct: u32,
    args: &Map<String, Value>,
    succeeded: &[(String, String)],
) -> Result<(), MethodError> {
    let email_of = |sid: &str| {
        succeeded
            .iter()
            .find(|(s, _)| s == sid)
            .map(|(_, e)| e.clone())
    };
    let mut update = Map::new();
    if let Some(m) = args.get("onSuccessUpdateEmail").and_then(Value::as_object) {
        for (sid, patch) in m {
            if let Some(e) = email_of(sid) {
                update.insert(e, patch.clone());
            }
        }
    }
    let mut destroy = Vec::new();
    if let Some(l) = args.get("onSuccessDestroyEmail").and_then(Value::as_array) {
        for sid in l.iter().filter_map(Value::as_str) {
            if let Some(e) = email_of(sid) {
                destroy.push(json!(e));
            }
        }
    }
    if update.is_empty() && destroy.is_empty() {
        return Ok(());
    }
    let mut set_args = Map::new();
    set_args.insert("accountId".into(), json!(id::account(acct)));
    set_args.insert("update".into(), Value::Object(update));
    set_args.insert("destroy".into(), Value::Array(destroy));
    let response = match super::email_set::set(cx, set_args).await {
        Ok(v) => ("Email/set".to_string(), v),
        Err(e) => ("error".to_string(), e.args()),
    };
    cx.implicit
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(response);
    Ok(())
}

/// EmailSubmission/query (§7.3): the filters and sorts of the RFC over
/// the account's submissions.
pub async fn query(cx: &Context<'_>, args: Map<String, Value>) -> Result<Value, MethodError> {
    let acct = cx.account_id(&args).await?;
    let (state, ids) = results(cx, &args, acct).await?;
    let mut out = super::query_response(
        &args,
        acct,
        state,
        ids.into_iter().map(id::submission).collect(),
    );
    // undoStatus moves with the queue, which logs nothing.
    if follows_queue(&args) {
        out["canCalculateChanges"] = json!(false);
    }
    Ok(out)
}

fn follows_queue(args: &Map<String, Value>) -> bool {
    args.get("filter")
        .and_then(Value::as_object)
        .is_some_and(|f| f.contains_key("undoStatus"))
}

/// EmailSubmission/queryChanges (RFC 8620 §5.6) from the submissions'
/// log; a query on undoStatus cannot be brought up to date from it.
pub async fn query_changes(
    cx: &Context<'_>,
    args: Map<String, Value>,
) -> Result<Value, MethodError> {
    let acct = cx.account_id(&args).await?;
    if follows_queue(&args) {
        return Err(MethodError::with(
            "cannotCalculateChanges",
            "undoStatus follows the queue; run EmailSubmission/query again",
        ));
    }
    let now = results(cx, &args, acct).await?;
    super::query_changes::for_records(cx, &args, acct, Kind::Submission, now, id::submission).await
}

/// The submissions a query selects, in order, and the state they are at.
async fn results(
    cx: &Context<'_>,
    args: &Map<String, Value>,
    acct: u32,
) -> Result<(u64, Vec<u64>), MethodError> {
    let (state, all) = load(cx, acct).await?;
    let filter = &super::condition(args, "EmailSubmission/query")?;
    let list_of = |k: &str| -> Option<Vec<String>> {
        filter.get(k).and_then(Value::as_array).map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(|s| cx.resolve(s).unwrap_or_else(|| s.to_string()))
                .collect()
        })
    };
    let date = |k: &str| {
        filter
            .get(k)
            .and_then(Value::as_str)
            .and_then(mail_parser::DateTime::parse_rfc3339)
            .map(|d| d.to_timestamp())
    };
    for k in filter.keys() {
        if ![
            "identityIds",
            "emailIds",
            "threadIds",
            "undoStatus",
            "before",
            "after",
        ]
        .contains(&k.as_str())
        {
            return Err(MethodError::with(
                "unsupportedFilter",
                format!("`{k}` is not an EmailSubmission filter"),
            ));
        }
    }
    let (identities, emails, threads) = (
        list_of("identityIds"),
        list_of("emailIds"),
        list_of("threadIds"),
    );
    let (before, after) = (date("before"), date("after"));
    let undo = filter.get("undoStatus").and_then(Value::as_str);
    let mut rows = Vec::new();
    for (n, s) in &all {
        let e = if undo.is_some() {
            queue_state(cx, s).await?
        } else {
            None
        };
        let ok = identities
            .as_ref()
            .is_none_or(|l| l.contains(&s.identity_id))
            && emails.as_ref().is_none_or(|l| l.contains(&s.email_id))
            && threads.as_ref().is_none_or(|l| l.contains(&s.thread_id))
            && before.is_none_or(|t| s.send_at < t)
            && after.is_none_or(|t| s.send_at >= t)
            && undo.is_none_or(|u| undo_status(s, e.as_ref()) == u);
        if ok {
            rows.push((*n, s));
        }
    }
    super::sort_rows(
        args,
        &mut rows,
        "EmailSubmissions",
        &["emailId", "threadId", "sentAt"],
        |p, a, b| match p {
            "emailId" => a.1.email_id.cmp(&b.1.email_id),
            "threadId" => a.1.thread_id.cmp(&b.1.thread_id),
            _ => a.1.send_at.cmp(&b.1.send_at),
        },
    )?;
    Ok((state, rows.iter().map(|r| r.0).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcc_is_removed_with_its_continuations() {
        let raw = b"From: a@b.c\r\nBcc: x@y.z,\r\n  w@y.z\r\nTo: t@y.z\r\nbcc: q@y.z\r\n\r\nBcc: stays in the body\r\n";
        assert_eq!(
            without_bcc(raw),
            b"From: a@b.c\r\nTo: t@y.z\r\n\r\nBcc: stays in the body\r\n".to_vec()
        );
    }

    #[test]
    fn release_times() {
        let now = unix_now();
        let p = |v: Value| v.as_object().unwrap().clone();
        assert!((now..=now + 1).contains(&release_time(&Map::new(), 100, 0).unwrap()));
        assert!(release_time(&Map::new(), 100, 30).unwrap() >= now + 30);
        let t = release_time(&p(json!({"HOLDFOR": "60"})), 100, 0).unwrap();
        assert!((now + 60..=now + 61).contains(&t));
        assert_eq!(
            release_time(&p(json!({"HOLDFOR": "600"})), 100, 0).unwrap_err()["type"],
            "invalidProperties"
        );
        assert_eq!(
            release_time(&p(json!({"HOLDFOR": "6"})), 0, 0).unwrap_err()["type"],
            "invalidProperties"
        );
        assert_eq!(
            release_time(&p(json!({"SIZE": "6"})), 100, 0).unwrap_err()["type"],
            "invalidProperties"
        );
    }

    #[test]
    fn generated_envelopes() {
        let raw = b"From: Joe <joe@example.org>\r\nTo: a@x.test, b@x.test\r\nCc: A@x.test\r\nBcc: c@x.test\r\n\r\nhi";
        let msg = mail_parser::MessageParser::default()
            .parse(&raw[..])
            .unwrap();
        let env = envelope_of(&msg, "joe@example.org", &|a| a == "joe@example.org");
        assert_eq!(env["mailFrom"]["email"], "joe@example.org");
        let to: Vec<&str> = env["rcptTo"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["email"].as_str().unwrap())
            .collect();
        assert_eq!(
            to,
            ["a@x.test", "b@x.test", "c@x.test"],
            "deduplicated, Bcc included"
        );
        let env = envelope_of(&msg, "alias@example.org", &|_| false);
        assert_eq!(
            env["mailFrom"]["email"], "alias@example.org",
            "not allowed: the identity's"
        );
    }
}
