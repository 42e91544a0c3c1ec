//! VacationResponse/get and /set (RFC 8621 §8): the one `singleton`
//! object of an account, kept as a mail-store record; `crate::vacation`
//! sends the responses. Changing it forgets whom it already answered.

use serde_json::{json, Map, Value};

use super::{store_error, Context};
use crate::jmap::request::MethodError;
use crate::mail::records::Kind;
use crate::vacation::{Vacation, SINGLETON};

const PROPERTIES: &[&str] = &[
    "id",
    "isEnabled",
    "fromDate",
    "toDate",
    "subject",
    "textBody",
    "htmlBody",
];

fn to_json(v: &Vacation, props: &[String]) -> Value {
    let date = |d: Option<i64>| d.map_or(Value::Null, super::email::utc);
    let mut out = Map::new();
    for p in props {
        let x = match p.as_str() {
            "id" => json!("singleton"),
            "isEnabled" => json!(v.is_enabled),
            "fromDate" => date(v.from_date),
            "toDate" => date(v.to_date),
            "subject" => json!(v.subject),
            "textBody" => json!(v.text_body),
            "htmlBody" => json!(v.html_body),
            _ => continue,
        };
        out.insert(p.clone(), x);
    }
    Value::Object(out)
}

async fn current(cx: &Context<'_>, acct: u32) -> Result<Vacation, MethodError> {
    Ok(cx
        .core
        .mail
        .record::<Vacation>(acct, Kind::Vacation, SINGLETON)
        .await
        .map_err(store_error)?
        .unwrap_or_default())
}

pub async fn get(cx: &Context<'_>, args: Map<String, Value>) -> Result<Value, MethodError> {
    let acct = cx.account_id(&args).await?;
    let props = super::mailbox::properties(&args, PROPERTIES)?;
    let wanted = super::mailbox::ids(cx, &args)?;
    let v = current(cx, acct).await?;
    let state = cx
        .core
        .mail
        .record_state(acct, Kind::Vacation)
        .await
        .map_err(store_error)?;
    let (list, not_found) = match wanted {
        None => (vec![to_json(&v, &props)], vec![]),
        Some(ids) => {
            let (hit, miss): (Vec<String>, Vec<String>) =
                ids.into_iter().partition(|i| i == "singleton");
            (
                hit.iter().take(1).map(|_| to_json(&v, &props)).collect(),
                miss,
            )
        }
    };
    Ok(super::get_response(acct, state, list, not_found))
}

fn apply(v: &mut Vacation, patch: &Map<String, Value>) -> Result<(), Value> {
    let bad = |p: &str| json!({"type": "invalidProperties", "properties": [p]});
    let text = |p: &str, x: &Value| -> Result<Option<String>, Value> {
        match x {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s.clone())),
            _ => Err(bad(p)),
        }
    };
    let date = |p: &str, x: &Value| -> Result<Option<i64>, Value> {
        match x {
            Value::Null => Ok(None),
            Value::String(s) => mail_parser::DateTime::parse_rfc3339(s)
                .map(|d| Some(d.to_timestamp()))
                .ok_or_else(|| bad(p)),
            _ => Err(bad(p)),
        }
    };
    for (k, x) in patch {
        match k.as_str() {
            "isEnabled" => v.is_enabled = x.as_bool().ok_or_else(|| bad(k))?,
            "fromDate" => v.from_date = date(k, x)?,
            "toDate" => v.to_date = date(k, x)?,
            "subject" => v.subject = text(k, x)?,
            "textBody" => v.text_body = text(k, x)?,
            "htmlBody" => v.html_body = text(k, x)?,
            "id" if x == "singleton" => {}
            _ => return Err(bad(k)),
        }
    }
    Ok(())
}

pub async fn set(cx: &Context<'_>, args: Map<String, Value>) -> Result<Value, MethodError> {
    let acct = cx.account_id(&args).await?;
    let mail = &cx.core.mail;
    let old_state = mail
        .record_state(acct, Kind::Vacation)
        .await
        .map_err(store_error)?;
    super::check_state(&args, old_state)?;
    let (create, update, destroy) =
        super::set_arguments(&args, cx.core.config.jmap.max_objects_in_set)?;
    // §8: the singleton can neither be created nor destroyed.
    let mut not_created = Map::new();
    for cid in create.keys() {
        not_created.insert(cid.clone(), json!({"type": "singleton"}));
    }
    let mut not_destroyed = Map::new();
    for d in destroy {
        not_destroyed.insert(d, json!({"type": "singleton"}));
    }
    let mut updated = Map::new();
    let mut not_updated = Map::new();
    for (k, patch) in &update {
        if k != "singleton" {
            not_updated.insert(k.clone(), json!({"type": "notFound"}));
            continue;
        }
        let mut v = current(cx, acct).await?;
        let r = patch
            .as_object()
            .ok_or_else(|| json!({"type": "invalidPatch"}))
            .and_then(|p| apply(&mut v, p));
        if let Err(e) = r {
            not_updated.insert(k.clone(), e);
            continue;
        }
        mail.put_record(acct, Kind::Vacation, SINGLETON, &v)
            .await
            .map_err(store_error)?;
        // New settings answer everyone once more.
        mail.clear_records(acct, Kind::VacationSent)
            .await
            .map_err(store_error)?;
        tracing::info!(account = %cx.account.address, enabled = v.is_enabled, "vacation response changed");
        updated.insert(k.clone(), Value::Null);
    }
    let new_state = mail
        .record_state(acct, Kind::Vacation)
        .await
        .map_err(store_error)?;
    Ok(super::set_response(
        acct,
        old_state,
        new_state,
        [Map::new(), updated, not_created, not_updated, not_destroyed],
        vec![],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches() {
        let mut v = Vacation::default();
        let p = |x: Value| x.as_object().unwrap().clone();
        apply(
            &mut v,
            &p(json!({"isEnabled": true, "fromDate": "2026-01-01T00:00:00Z", "subject": "Away"})),
        )
        .unwrap();
        assert!(v.is_enabled);
        assert_eq!(v.from_date, Some(1_767_225_600));
        assert_eq!(v.subject.as_deref(), Some("Away"));
        apply(&mut v, &p(json!({"subject": null}))).unwrap();
        assert_eq!(v.subject, None);
        assert!(apply(&mut v, &p(json!({"isEnabled": "yes"}))).is_err());
        assert!(apply(&mut v, &p(json!({"toDate": "tomorrow"}))).is_err());
        assert!(apply(&mut v, &p(json!({"colour": 1}))).is_err());
    }
}
