//! Identity/get, /changes and /set (RFC 8621 §6). Identities are mail
//! store records; an account starts with one for its own address (its
//! display name, `mayDelete: false`), made the first time it is asked
//! for. An identity's email must be the account's address or one of its
//! aliases (`forbiddenFrom` otherwise).

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::mailbox::{ids, properties};
use super::{store_error, Context};
use crate::jmap::id;
use crate::jmap::request::MethodError;
use crate::mail::records::Kind;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    pub name: String,
    pub email: String,
    pub reply_to: Option<Value>,
    pub bcc: Option<Value>,
    pub text_signature: String,
    pub html_signature: String,
    pub may_delete: bool,
}

const PROPERTIES: &[&str] = &[
    "id",
    "name",
    "email",
    "replyTo",
    "bcc",
    "textSignature",
    "htmlSignature",
    "mayDelete",
];

/// Whether the account may send as `email` (its address or an alias).
pub fn may_send_as(cx: &Context<'_>, email: &str) -> bool {
    std::iter::once(&cx.account.address)
        .chain(cx.account.aliases.iter())
        .any(|a| a.eq_ignore_ascii_case(email))
}

/// The account's identities, the default one made if there are none.
pub async fn all(cx: &Context<'_>, acct: u32) -> Result<Vec<(u64, Identity)>, MethodError> {
    let mail = &cx.core.mail;
    let list = mail
        .records::<Identity>(acct, Kind::Identity)
        .await
        .map_err(store_error)?;
    if !list.is_empty()
        || mail
            .record_state(acct, Kind::Identity)
            .await
            .map_err(store_error)?
            > 0
    {
        return Ok(list);
    }
    let default = Identity {
        name: cx.account.name.clone(),
        email: cx.account.address.clone(),
        may_delete: false,
        ..Default::default()
    };
    let n = mail
        .create_record(acct, Kind::Identity, &default)
        .await
        .map_err(store_error)?;
    Ok(vec![(n, default)])
}

fn to_json(n: u64, i: &Identity, props: &[String]) -> Value {
    let mut full = serde_json::to_value(i).expect("serialises");
    full["id"] = json!(id::identity(n));
    let mut out = Map::new();
    for p in props {
        out.insert(p.clone(), full.get(p).cloned().unwrap_or(Value::Null));
    }
    Value::Object(out)
}

pub async fn get(cx: &Context<'_>, args: Map<String, Value>) -> Result<Value, MethodError> {
    let acct = cx.account_id(&args).await?;
    let props = properties(&args, PROPERTIES)?;
    let wanted = ids(cx, &args)?;
    let list = all(cx, acct).await?;
    let state = cx
        .core
        .mail
        .record_state(acct, Kind::Identity)
        .await
        .map_err(store_error)?;
    let mut found = Vec::new();
    let mut not_found = Vec::new();
    match wanted {
        None => found = list.iter().map(|(n, i)| to_json(*n, i, &props)).collect(),
        Some(ids) => {
            for want in ids {
                match list
                    .iter()
                    .find(|(n, _)| Some(*n) == id::parse_identity(&want))
                {
                    Some((n, i)) => found.push(to_json(*n, i, &props)),
                    None => not_found.push(want),
                }
            }
        }
    }
    Ok(super::get_response(acct, state, found, not_found))
}

fn invalid(property: &str, why: &str) -> Value {
    json!({"type": "invalidProperties", "properties": [property], "description": why})
}

/// Applies the settable properties of `obj` to `i`.
fn apply(i: &mut Identity, obj: &Map<String, Value>, creating: bool) -> Result<(), Value> {
    for (k, v) in obj {
        match k.as_str() {
            "name" => i.name = v.as_str().ok_or_else(|| invalid(k, "a String"))?.into(),
            "email" if creating => {
                i.email = v.as_str().ok_or_else(|| invalid(k, "a String"))?.into()
            }
            "textSignature" => {
                i.text_signature = v.as_str().ok_or_else(|| invalid(k, "a String"))?.into()
            }
            "htmlSignature" => {
                i.html_signature = v.as_str().ok_or_else(|| invalid(k, "a String"))?.into()
            }
            "replyTo" | "bcc" => {
                let ok = v.is_null()
                    || v.as_array().is_some_and(|a| {
                        a.iter()
                            .all(|x| x.get("email").is_some_and(Value::is_string))
                    });
                if !ok {
                    return Err(invalid(k, "EmailAddress[] or null"));
                }
                let v = (!v.is_null()).then(|| v.clone());
                if k == "replyTo" {
                    i.reply_to = v
                } else {
                    i.bcc = v
                }
            }
            // §6: email is immutable, id and mayDelete server-set.
            _ => return Err(invalid(k, "this property cannot be set")),
        }
    }
    Ok(())
}

pub async fn set(cx: &Context<'_>, args: Map<String, Value>) -> Result<Value, MethodError> {
    let acct = cx.account_id(&args).await?;
    let mail = &cx.core.mail;
    let list = all(cx, acct).await?;
    let old_state = mail
        .record_state(acct, Kind::Identity)
        .await
        .map_err(store_error)?;
    super::check_state(&args, old_state)?;
    let (create, update, destroy) =
        super::set_arguments(&args, cx.core.config.jmap.max_objects_in_set)?;
    let mut created = Map::new();
    let mut not_created = Map::new();
    for (cid, obj) in &create {
        let mut i = Identity {
            may_delete: true,
            ..Default::default()
        };
        let r = obj
            .as_object()
            .ok_or_else(|| invalid("create", "an object"))
            .and_then(|o| apply(&mut i, o, true));
        if let Err(e) = r {
            not_created.insert(cid.clone(), e);
            continue;
        }
        if !may_send_as(cx, &i.email) {
            not_created.insert(
                cid.clone(),
                json!({"type": "forbiddenFrom", "description": format!("{} is not one of this account's addresses", i.email)}),
            );
            continue;
        }
        let n = mail
            .create_record(acct, Kind::Identity, &i)
            .await
            .map_err(store_error)?;
        cx.created(cid, &id::identity(n));
        created.insert(
            cid.clone(),
            json!({"id": id::identity(n), "mayDelete": true}),
        );
    }
    let mut updated = Map::new();
    let mut not_updated = Map::new();
    for (asked, patch) in &update {
        let iid = cx.resolve(asked).unwrap_or_else(|| asked.clone());
        let Some((n, mut i)) =
            id::parse_identity(&iid).and_then(|n| list.iter().find(|(m, _)| *m == n).cloned())
        else {
            not_updated.insert(iid, json!({"type": "notFound"}));
            continue;
        };
        let r = patch
            .as_object()
            .ok_or_else(|| json!({"type": "invalidPatch"}))
            .and_then(|o| apply(&mut i, o, false));
        if let Err(e) = r {
            not_updated.insert(iid, e);
            continue;
        }
        mail.update_record(acct, Kind::Identity, n, &i)
            .await
            .map_err(store_error)?;
        updated.insert(iid, Value::Null);
    }
    let mut destroyed = Vec::new();
    let mut not_destroyed = Map::new();
    for asked in destroy {
        let iid = cx.resolve(&asked).unwrap_or(asked);
        match id::parse_identity(&iid).and_then(|n| list.iter().find(|(m, _)| *m == n)) {
            None => {
                not_destroyed.insert(iid, json!({"type": "notFound"}));
            }
            Some((_, i)) if !i.may_delete => {
                not_destroyed.insert(
                    iid,
                    json!({"type": "forbidden", "description": "the account's own identity cannot be deleted"}),
                );
            }
            Some((n, _)) => {
                mail.delete_record(acct, Kind::Identity, *n)
                    .await
                    .map_err(store_error)?;
                destroyed.push(iid);
            }
        }
    }
    let new_state = mail
        .record_state(acct, Kind::Identity)
        .await
        .map_err(store_error)?;
    Ok(super::set_response(
        acct,
        old_state,
        new_state,
        [created, updated, not_created, not_updated, not_destroyed],
        destroyed,
    ))
}
