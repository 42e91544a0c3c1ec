//! PushSubscription/get and /set (RFC 8620 §7.2): subscriptions belong to
//! the credential that made them (a password or one bearer token) and are
//! seen only through it; url and keys are never returned; a new one gets
//! a PushVerification with a 128-bit code and is pushed to only once the
//! client sets that code; expiry is capped at 7 days; at most
//! `jmap.max-push-subscriptions` per account, one new one per 5 s. With
//! `keys`, every push (the verification too) is encrypted for them
//! (RFC 8291, see `webpush`).

use serde_json::{json, Map, Value};

use super::{store_error, Context};
use crate::core::unix_now;
use crate::jmap::pusher::{self, PushSub};
use crate::jmap::request::MethodError;
use crate::mail::records::Kind;

/// §7.2: at least 48 hours, 7 days recommended.
const MAX_EXPIRY: i64 = 7 * 86400;

const PROPERTIES: &[&str] = &[
    "id",
    "deviceClientId",
    "verificationCode",
    "expires",
    "types",
];

fn sub_id(n: u64) -> String {
    format!("P{n}")
}

fn parse_id(s: &str) -> Option<u64> {
    s.strip_prefix('P').and_then(|n| n.parse().ok())
}

async fn mine(cx: &Context<'_>) -> Result<Vec<(u64, PushSub)>, MethodError> {
    Ok(cx
        .core
        .mail
        .records::<PushSub>(cx.account.id, Kind::PushSubscription)
        .await
        .map_err(store_error)?
        .into_iter()
        .filter(|(_, s)| s.credential == cx.credential)
        .collect())
}

pub async fn get(cx: &Context<'_>, args: Map<String, Value>) -> Result<Value, MethodError> {
    // §7.2.1: url and keys are never returned.
    if let Some(p) = args.get("properties").and_then(Value::as_array) {
        if p.iter().any(|x| x == "url" || x == "keys") {
            return Err(MethodError::with(
                "forbidden",
                "url and keys are not returned",
            ));
        }
    }
    let props = super::mailbox::properties(&args, PROPERTIES)?;
    let wanted = super::mailbox::ids(cx, &args)?;
    let list = mine(cx).await?;
    let show = |n: u64, s: &PushSub| {
        let full = json!({
            "id": sub_id(n),
            "deviceClientId": s.device_client_id,
            "verificationCode": if s.verified { json!(s.verification_code) } else { Value::Null },
            "expires": super::email::utc(s.expires),
            "types": s.types,
        });
        Value::Object(props.iter().map(|p| (p.clone(), full[p].clone())).collect())
    };
    let mut found = Vec::new();
    let mut not_found = Vec::new();
    match wanted {
        None => found = list.iter().map(|(n, s)| show(*n, s)).collect(),
        Some(ids) => {
            for i in ids {
                match parse_id(&i).and_then(|n| list.iter().find(|(m, _)| *m == n)) {
                    Some((n, s)) => found.push(show(*n, s)),
                    None => not_found.push(i),
                }
            }
        }
    }
    // §7.2.1: no accountId and no state.
    Ok(json!({"list": found, "notFound": not_found}))
}

fn invalid(p: &str, why: impl Into<String>) -> Value {
    json!({"type": "invalidProperties", "properties": [p], "description": why.into()})
}

fn expires(v: Option<&Value>) -> Result<i64, Value> {
    let now = unix_now();
    match v {
        None | Some(Value::Null) => Ok(now + MAX_EXPIRY),
        Some(v) => {
            let t = v
                .as_str()
                .and_then(mail_parser::DateTime::parse_rfc3339)
                .map(|d| d.to_timestamp())
                .ok_or_else(|| invalid("expires", "a UTCDate"))?;
            if t <= now {
                return Err(invalid("expires", "in the past"));
            }
            Ok(t.min(now + MAX_EXPIRY))
        }
    }
}

fn types(v: Option<&Value>) -> Result<Option<Vec<String>>, Value> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => a
            .iter()
            .map(|t| t.as_str().map(String::from))
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(|| invalid("types", "an array of type names")),
        Some(_) => Err(invalid("types", "an array of type names or null")),
    }
}

/// §8.6: one new subscription per account in this many seconds.
const CREATE_INTERVAL: i64 = 5;

async fn create(
    cx: &Context<'_>,
    obj: &Map<String, Value>,
    existing: &[PushSub],
) -> Result<Result<Value, Value>, MethodError> {
    let max = cx.core.config.jmap.max_push_subscriptions;
    let Some(device) = obj.get("deviceClientId").and_then(Value::as_str) else {
        return Ok(Err(invalid("deviceClientId", "required")));
    };
    let Some(url) = obj.get("url").and_then(Value::as_str) else {
        return Ok(Err(invalid("url", "required")));
    };
    let keys = match obj.get("keys") {
        None | Some(Value::Null) => None,
        Some(v) => match crate::jmap::webpush::PushKeys::parse(v) {
            Ok(k) => Some(k),
            Err(e) => return Ok(Err(invalid("keys", e))),
        },
    };
    if !obj.get("verificationCode").is_none_or(Value::is_null) {
        return Ok(Err(invalid("verificationCode", "null on creation")));
    }
    // §8.6: the URL must reach a public address (checked again at each push).
    let checked = match pusher::target(url) {
        Ok((host, port, _)) => {
            pusher::resolve(&host, port, cx.core.config.jmap.push_allow_private).await
        }
        Err(e) => Err(e),
    };
    if let Err(e) = checked {
        return Ok(Err(invalid("url", e)));
    }
    if existing
        .iter()
        .any(|s| unix_now() - s.created < CREATE_INTERVAL)
    {
        return Ok(Err(json!({"type": "forbidden",
            "description": format!("one push subscription per {CREATE_INTERVAL} s: try again shortly")})));
    }
    if existing.len() >= max {
        return Ok(Err(json!({"type": "forbidden",
            "description": format!("at most {max} push subscriptions (jmap.max-push-subscriptions)")})));
    }
    let (expires, types) = match (expires(obj.get("expires")), types(obj.get("types"))) {
        (Ok(e), Ok(t)) => (e, t),
        (Err(e), _) | (_, Err(e)) => return Ok(Err(e)),
    };
    let code: String = rand::random::<[u8; 16]>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let sub = PushSub {
        credential: cx.credential.to_string(),
        device_client_id: device.to_string(),
        url: url.to_string(),
        expires,
        types,
        verification_code: code,
        verified: false,
        created: unix_now(),
        keys,
    };
    let n = cx
        .core
        .mail
        .create_record(cx.account.id, Kind::PushSubscription, &sub)
        .await
        .map_err(store_error)?;
    tracing::info!(account = %cx.account.address, subscription = n, "JMAP push subscription created");
    pusher::verify(cx.shared.clone(), sub_id(n), sub);
    Ok(Ok(
        json!({"id": sub_id(n), "expires": super::email::utc(expires)}),
    ))
}

pub async fn set(cx: &Context<'_>, args: Map<String, Value>) -> Result<Value, MethodError> {
    let (create_map, update, destroy) =
        super::set_arguments(&args, cx.core.config.jmap.max_objects_in_set)?;
    let mail = &cx.core.mail;
    let acct = cx.account.id;
    let mut created = Map::new();
    let mut not_created = Map::new();
    for (cid, obj) in &create_map {
        let existing: Vec<PushSub> = mail
            .records::<PushSub>(acct, Kind::PushSubscription)
            .await
            .map_err(store_error)?
            .into_iter()
            .map(|(_, s)| s)
            .collect();
        let r = match obj.as_object() {
            Some(o) => create(cx, o, &existing).await?,
            None => Err(invalid("create", "an object")),
        };
        match r {
            Ok(v) => {
                cx.created(cid, v["id"].as_str().unwrap_or_default());
                created.insert(cid.clone(), v);
            }
            Err(e) => {
                not_created.insert(cid.clone(), e);
            }
        }
    }
    let list = mine(cx).await?;
    let mut updated = Map::new();
    let mut not_updated = Map::new();
    for (asked, patch) in &update {
        let pid = cx.resolve(asked).unwrap_or_else(|| asked.clone());
        let Some((n, mut sub)) = parse_id(&pid)
            .and_then(|n| list.iter().find(|(m, _)| *m == n))
            .cloned()
        else {
            not_updated.insert(pid, json!({"type": "notFound"}));
            continue;
        };
        let mut result = Ok(Value::Null);
        for (k, v) in patch.as_object().into_iter().flatten() {
            match k.as_str() {
                // §7.2.2: only the code that was pushed verifies.
                "verificationCode" => {
                    if v.as_str() == Some(sub.verification_code.as_str()) {
                        sub.verified = true;
                    } else {
                        result = Err(invalid(k, "not the code that was pushed"));
                    }
                }
                "expires" => match expires(Some(v)) {
                    Ok(t) => {
                        sub.expires = t;
                        result = result.map(|_| json!({"expires": super::email::utc(t)}));
                    }
                    Err(e) => result = Err(e),
                },
                "types" => match types(Some(v)) {
                    Ok(t) => sub.types = t,
                    Err(e) => result = Err(e),
                },
                _ => result = Err(invalid(k, "cannot be changed")),
            }
        }
        match result {
            Ok(v) => {
                mail.update_record(acct, Kind::PushSubscription, n, &sub)
                    .await
                    .map_err(store_error)?;
                updated.insert(pid, v);
            }
            Err(e) => {
                not_updated.insert(pid, e);
            }
        }
    }
    let mut destroyed = Vec::new();
    let mut not_destroyed = Map::new();
    for asked in destroy {
        let pid = cx.resolve(&asked).unwrap_or(asked);
        match parse_id(&pid).filter(|n| list.iter().any(|(m, _)| m == n)) {
            Some(n) => {
                // §7.2: the URL goes with the record.
                mail.delete_record(acct, Kind::PushSubscription, n)
                    .await
                    .map_err(store_error)?;
                destroyed.push(pid);
            }
            None => {
                not_destroyed.insert(pid, json!({"type": "notFound"}));
            }
        }
    }
    Ok(json!({
        "created": super::or_null(created),
        "updated": super::or_null(updated),
        "destroyed": super::ids_or_null(destroyed),
        "notCreated": super::or_null(not_created),
        "notUpdated": super::or_null(not_updated),
        "notDestroyed": super::or_null(not_destroyed),
    }))
}
