//! SieveScript/get, /set, /query and /validate (RFC 9661): the scripts
//! ManageSieve and `petrel sieve` manage (`crate::sieve::scripts`), seen
//! through JMAP. A script's text is a blob (§2.2): uploaded first, named
//! by `blobId` on /set, and read back through the blob id /get shows,
//! which changes with the text. Which script is active changes only
//! through /set's `onSuccessActivateScript` and
//! `onSuccessDeactivateScript` (§2.4).

use serde_json::{json, Map, Value};

use super::{store_error, Access, Context};
use crate::jmap::id;
use crate::jmap::request::MethodError;
use crate::mail::records::Kind;
use crate::sieve::scripts::{self, Script, SieveError};

const PROPERTIES: &[&str] = &["id", "name", "blobId", "isActive"];

/// The capability's account object (§1.2.1).
pub fn capability(cfg: &crate::config::SieveConfig) -> Value {
    json!({
        "implementation": concat!("Petrel ", env!("CARGO_PKG_VERSION"), " (sieve-rs)"),
        "maxSizeScriptName": 512,
        "maxSizeScript": cfg.max_script_size,
        "maxNumberScripts": cfg.max_scripts,
        "maxNumberRedirects": cfg.max_redirects,
        "sieveExtensions": crate::sieve::EXTENSIONS,
        "notificationMethods": ["mailto"],
        "externalLists": null
    })
}

/// The state of the account's scripts: both counters only grow, so their
/// sum moves whenever a script or the choice of the active one changes.
async fn state(cx: &Context<'_>, acct: u32) -> Result<u64, MethodError> {
    let mail = &cx.core.mail;
    let a = mail.record_state(acct, Kind::SieveScript).await;
    let b = mail.record_state(acct, Kind::SieveActive).await;
    Ok(a.map_err(store_error)? + b.map_err(store_error)?)
}

fn to_json(n: u64, s: &Script, active: bool, props: &[String]) -> Value {
    let mut out = Map::new();
    for p in props {
        let v = match p.as_str() {
            "id" => json!(id::sieve_script(n)),
            "name" => json!(s.name),
            "blobId" => json!(id::script_blob(n, &s.text)),
            "isActive" => json!(active),
            _ => continue,
        };
        out.insert(p.clone(), v);
    }
    Value::Object(out)
}

/// An error of /set and /validate for what the scripts module refused.
fn set_error(e: SieveError) -> Result<Value, MethodError> {
    Ok(match e {
        SieveError::Invalid(d) => json!({"type": "invalidSieve", "description": d}),
        SieveError::Quota(d) => json!({"type": "overQuota", "description": d}),
        SieveError::NotFound(_) => json!({"type": "notFound"}),
        SieveError::Active(d) => json!({"type": "sieveIsActive", "description": d}),
        SieveError::Exists(d) | SieveError::InUse(d) => {
            json!({"type": "forbidden", "description": d})
        }
        SieveError::Store(e) => return Err(store_error(e)),
    })
}

pub async fn get(cx: &Context<'_>, args: Map<String, Value>) -> Result<Value, MethodError> {
    let acct = cx.account_id(&args).await?;
    let props = super::mailbox::properties(&args, PROPERTIES)?;
    let wanted = super::mailbox::ids(cx, &args)?;
    let st = state(cx, acct).await?;
    let (all, active) = scripts::list(&cx.core.mail, acct)
        .await
        .map_err(store_error)?;
    let show = |(n, s): &(u64, Script)| to_json(*n, s, active == Some(*n), &props);
    let (list, not_found) = match wanted {
        None => (all.iter().map(show).collect(), vec![]),
        Some(ids) => {
            let mut list = Vec::new();
            let mut missing = Vec::new();
            for i in ids {
                match all
                    .iter()
                    .find(|(n, _)| id::parse_sieve_script(&i) == Some(*n))
                {
                    Some(x) => list.push(show(x)),
                    None => missing.push(i),
                }
            }
            (list, missing)
        }
    };
    Ok(super::get_response(acct, st, list, not_found))
}

/// What a create or update asks for: a name and a text, each if given.
struct Wanted {
    name: Option<Option<String>>,
    text: Option<String>,
}

/// Reads a create object or an update patch (§2.1): `id` and `isActive`
/// are the server's (given only as they are), `blobId` names uploaded
/// text (§2.2).
async fn wanted(
    cx: &Context<'_>,
    acct: u32,
    obj: &Value,
    current: Option<(u64, bool)>,
) -> Result<Result<Wanted, Value>, MethodError> {
    let bad = |p: &str, d: &str| json!({"type": "invalidProperties", "properties": [p], "description": d});
    let Some(obj) = obj.as_object() else {
        return Ok(Err(json!({"type": "invalidPatch"})));
    };
    let mut w = Wanted {
        name: None,
        text: None,
    };
    for (k, v) in obj {
        match (k.as_str(), v) {
            ("name", Value::Null) => w.name = Some(None),
            ("name", Value::String(s)) => w.name = Some(Some(s.clone())),
            ("blobId", Value::String(b)) => {
                let b = cx.resolve(b).unwrap_or_else(|| b.clone());
                let Some(bytes) = cx.read_blob(&Access::own(acct), &b).await? else {
                    return Ok(Err(bad(
                        "blobId",
                        &format!("no blob `{b}` in this account"),
                    )));
                };
                let max = cx.core.config.sieve.max_script_size;
                if bytes.len() > max {
                    return Ok(Err(json!({
                        "type": "tooLarge",
                        "description": format!("{} octets is more than maxSizeScript ({max})", bytes.len())
                    })));
                }
                match String::from_utf8(bytes) {
                    Ok(t) => w.text = Some(t),
                    Err(_) => {
                        return Ok(Err(json!({
                            "type": "invalidSieve",
                            "description": "the script is not UTF-8 (RFC 5228 §2.1)"
                        })))
                    }
                }
            }
            ("id", Value::String(s)) if current.is_some_and(|(n, _)| *s == id::sieve_script(n)) => {
            }
            ("isActive", Value::Bool(b)) if current.is_some_and(|(_, a)| a == *b) => {}
            ("id" | "isActive", _) => {
                return Ok(Err(bad(
                    k,
                    "set by the server; use onSuccessActivateScript",
                )))
            }
            _ => return Ok(Err(bad(k, "not a SieveScript property it can take"))),
        }
    }
    Ok(Ok(w))
}

/// The first free `script N` (a create with a null name, §2.1).
fn free_name(all: &[(u64, Script)]) -> String {
    (1..)
        .map(|n| format!("script {n}"))
        .find(|c| !all.iter().any(|(_, s)| s.name == *c))
        .unwrap_or_default()
}

/// The SetError for a name a script cannot take: not a script name
/// (RFC 5804 §1.6), or another script's (§2.4 alreadyExists).
fn name_refused(all: &[(u64, Script)], name: &str) -> Option<Value> {
    if let Err(e) = scripts::valid_name(name) {
        return Some(
            json!({"type": "invalidProperties", "properties": ["name"], "description": e.to_string()}),
        );
    }
    all.iter()
        .find(|(_, s)| s.name == name)
        .map(|(n, _)| json!({"type": "alreadyExists", "existingId": id::sieve_script(*n)}))
}

/// Outcome of one create or update: the properties to report, or the
/// SetError.
type Outcome = Result<Map<String, Value>, Value>;

async fn create(cx: &Context<'_>, acct: u32, obj: &Value) -> Result<Outcome, MethodError> {
    let mail = &cx.core.mail;
    let w = match wanted(cx, acct, obj, None).await? {
        Ok(w) => w,
        Err(e) => return Ok(Err(e)),
    };
    let Some(text) = w.text else {
        return Ok(Err(json!({
            "type": "invalidProperties", "properties": ["blobId"],
            "description": "blobId is required: upload the script first (RFC 9661 §2.2)"
        })));
    };
    let (all, _) = scripts::list(mail, acct).await.map_err(store_error)?;
    let name = match w.name.flatten() {
        Some(n) => n,
        None => free_name(&all),
    };
    if let Some(e) = name_refused(&all, &name) {
        return Ok(Err(e));
    }
    match scripts::put(mail, &cx.core.config.sieve, acct, &name, &text).await {
        Ok(n) => {
            tracing::info!(account = %cx.account.address, script = %name, via = "jmap", "Sieve script stored");
            let mut out = Map::new();
            out.insert("id".into(), json!(id::sieve_script(n)));
            out.insert("name".into(), json!(name));
            out.insert("blobId".into(), json!(id::script_blob(n, &text)));
            out.insert("isActive".into(), json!(false));
            Ok(Ok(out))
        }
        Err(e) => Ok(Err(set_error(e)?)),
    }
}

async fn update(
    cx: &Context<'_>,
    acct: u32,
    key: &str,
    patch: &Value,
) -> Result<Outcome, MethodError> {
    let mail = &cx.core.mail;
    let (all, active) = scripts::list(mail, acct).await.map_err(store_error)?;
    let Some((n, old)) = id::parse_sieve_script(key)
        .and_then(|n| all.iter().find(|(m, _)| *m == n))
        .cloned()
    else {
        return Ok(Err(json!({"type": "notFound"})));
    };
    let w = match wanted(cx, acct, patch, Some((n, active == Some(n)))).await? {
        Ok(w) => w,
        Err(e) => return Ok(Err(e)),
    };
    let mut out = Map::new();
    let mut name = old.name.clone();
    if let Some(new) = w.name {
        // A null name keeps the one the script has.
        let new = new.unwrap_or_else(|| old.name.clone());
        if new != old.name {
            if let Some(e) = name_refused(&all, &new) {
                return Ok(Err(e));
            }
            // The text is checked before anything changes.
            if let Some(t) = &w.text {
                if let Err(e) = scripts::check(&cx.core.config.sieve, t) {
                    return Ok(Err(set_error(e)?));
                }
            }
            if let Err(e) = scripts::rename(mail, acct, &old.name, &new).await {
                return Ok(Err(set_error(e)?));
            }
            tracing::info!(account = %cx.account.address, script = %new, was = %old.name, via = "jmap", "Sieve script renamed");
            name = new;
        }
    }
    if let Some(text) = w.text {
        if let Err(e) = scripts::put(mail, &cx.core.config.sieve, acct, &name, &text).await {
            return Ok(Err(set_error(e)?));
        }
        tracing::info!(account = %cx.account.address, script = %name, via = "jmap", "Sieve script stored");
        // The server gives the text a blob id of its own.
        out.insert("blobId".into(), json!(id::script_blob(n, &text)));
    }
    Ok(Ok(out))
}

pub async fn set(cx: &Context<'_>, args: Map<String, Value>) -> Result<Value, MethodError> {
    let acct = cx.account_id(&args).await?;
    let mail = &cx.core.mail;
    let old_state = state(cx, acct).await?;
    super::check_state(&args, old_state)?;
    let (create_args, update_args, destroy_args) =
        super::set_arguments(&args, cx.core.config.jmap.max_objects_in_set)?;
    let activate = match args.get("onSuccessActivateScript") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            return Err(MethodError::invalid_arguments(
                "onSuccessActivateScript must be an id",
            ))
        }
    };
    let deactivate = match args.get("onSuccessDeactivateScript") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(MethodError::invalid_arguments(
                "onSuccessDeactivateScript must be a boolean",
            ))
        }
    };
    let (mut created, mut updated) = (Map::new(), Map::new());
    let (mut not_created, mut not_updated, mut not_destroyed) =
        (Map::new(), Map::new(), Map::new());
    let mut destroyed = Vec::new();
    for (cid, obj) in &create_args {
        match create(cx, acct, obj).await? {
            Ok(out) => {
                if let Some(i) = out.get("id").and_then(Value::as_str) {
                    cx.created(cid, i);
                }
                created.insert(cid.clone(), Value::Object(out));
            }
            Err(e) => {
                not_created.insert(cid.clone(), e);
            }
        }
    }
    for (key, patch) in &update_args {
        match update(cx, acct, key, patch).await? {
            Ok(out) if out.is_empty() => {
                updated.insert(key.clone(), Value::Null);
            }
            Ok(out) => {
                updated.insert(key.clone(), Value::Object(out));
            }
            Err(e) => {
                not_updated.insert(key.clone(), e);
            }
        }
    }
    // Which scripts exist and which is active do not change while they
    // are destroyed (a second destroy of one is notFound from the store).
    let (all, active) = if destroy_args.is_empty() {
        (Vec::new(), None)
    } else {
        scripts::list(mail, acct).await.map_err(store_error)?
    };
    for key in destroy_args {
        let found = id::parse_sieve_script(&key).and_then(|n| all.iter().find(|(m, _)| *m == n));
        let r = match found {
            None => Err(json!({"type": "notFound"})),
            // §2.4: the active script is deactivated by a call of its own
            // first.
            Some((n, _)) if active == Some(*n) => Err(json!({
                "type": "sieveIsActive",
                "description": "the active script cannot be destroyed: deactivate it in an earlier SieveScript/set"
            })),
            Some((_, s)) => match scripts::delete(mail, acct, &s.name).await {
                Ok(()) => {
                    tracing::info!(account = %cx.account.address, script = %s.name, via = "jmap", "Sieve script deleted");
                    Ok(())
                }
                Err(e) => Err(set_error(e)?),
            },
        };
        match r {
            Ok(()) => destroyed.push(key),
            Err(e) => {
                not_destroyed.insert(key, e);
            }
        }
    }
    // §2.4: only when every change succeeded, deactivation first.
    if not_created.is_empty() && not_updated.is_empty() && not_destroyed.is_empty() {
        let (all, active) = scripts::list(mail, acct).await.map_err(store_error)?;
        let target = activate
            .as_deref()
            .and_then(|a| cx.resolve(a))
            .and_then(|a| id::parse_sieve_script(&a))
            .and_then(|n| all.iter().find(|(m, _)| *m == n));
        let mut now_active = active;
        if deactivate && active.is_some() {
            scripts::activate(mail, acct, None)
                .await
                .map_err(store_error)?;
            now_active = None;
        }
        if let Some((n, s)) = target {
            if now_active != Some(*n) {
                scripts::activate(mail, acct, Some(&s.name))
                    .await
                    .map_err(store_error)?;
                tracing::info!(account = %cx.account.address, script = %s.name, via = "jmap", "Sieve script activated");
                now_active = Some(*n);
            }
        }
        if now_active != active {
            let mut mark = |n: u64, on: bool| {
                let key = id::sieve_script(n);
                // A script this call created is reported in `created`.
                if let Some(Value::Object(c)) = created
                    .values_mut()
                    .find(|c| c.get("id").and_then(Value::as_str) == Some(key.as_str()))
                {
                    c.insert("isActive".into(), json!(on));
                    return;
                }
                let e = updated.entry(key).or_insert(Value::Null);
                if !e.is_object() {
                    *e = json!({});
                }
                e["isActive"] = json!(on);
            };
            if let Some(was) = active {
                mark(was, false);
            }
            if let Some(is) = now_active {
                mark(is, true);
            }
        }
    }
    let new_state = state(cx, acct).await?;
    Ok(super::set_response(
        acct,
        old_state,
        new_state,
        [created, updated, not_created, not_updated, not_destroyed],
        destroyed,
    ))
}

/// SieveScript/query (§2.5): filter on `name` (contains, ignoring case)
/// and `isActive`, sort by either.
pub async fn query(cx: &Context<'_>, args: Map<String, Value>) -> Result<Value, MethodError> {
    let acct = cx.account_id(&args).await?;
    let filter = super::condition(&args, "SieveScript/query")?;
    let mut name = None;
    let mut is_active = None;
    for (k, v) in &filter {
        match (k.as_str(), v) {
            ("name", Value::String(s)) => name = Some(s.to_lowercase()),
            ("isActive", Value::Bool(b)) => is_active = Some(*b),
            _ => {
                return Err(MethodError::with(
                    "unsupportedFilter",
                    format!("`{k}` is not a SieveScript filter of this type"),
                ))
            }
        }
    }
    let st = state(cx, acct).await?;
    let (all, active) = scripts::list(&cx.core.mail, acct)
        .await
        .map_err(store_error)?;
    let mut rows: Vec<(u64, String, bool)> = all
        .into_iter()
        .map(|(n, s)| (n, s.name, active == Some(n)))
        .filter(|(_, nm, a)| {
            name.as_ref().is_none_or(|f| nm.to_lowercase().contains(f))
                && is_active.is_none_or(|want| *a == want)
        })
        .collect();
    rows.sort_by_key(|r| r.0);
    super::sort_rows(
        &args,
        &mut rows,
        "SieveScripts",
        &["name", "isActive"],
        |p, a, b| match p {
            "name" => a.1.cmp(&b.1),
            _ => a.2.cmp(&b.2),
        },
    )?;
    let mut out = super::query_response(
        &args,
        acct,
        st,
        rows.iter().map(|r| id::sieve_script(r.0)).collect(),
    );
    // No SieveScript/queryChanges.
    out["canCalculateChanges"] = json!(false);
    Ok(out)
}

/// SieveScript/validate (§2.6): whether an uploaded blob is a script this
/// server would store, without storing it.
pub async fn validate(cx: &Context<'_>, args: Map<String, Value>) -> Result<Value, MethodError> {
    let acct = cx.account_id(&args).await?;
    let blob = args
        .get("blobId")
        .and_then(Value::as_str)
        .ok_or_else(|| MethodError::invalid_arguments("blobId is required"))?;
    let blob = cx.resolve(blob).unwrap_or_else(|| blob.to_string());
    let Some(bytes) = cx.read_blob(&Access::own(acct), &blob).await? else {
        return Err(MethodError::invalid_arguments(format!(
            "no blob `{blob}` in this account"
        )));
    };
    let error = match String::from_utf8(bytes) {
        Err(_) => {
            json!({"type": "invalidSieve", "description": "the script is not UTF-8 (RFC 5228 §2.1)"})
        }
        Ok(text) => match scripts::check(&cx.core.config.sieve, &text) {
            Ok(_) => Value::Null,
            Err(SieveError::Quota(d)) => json!({"type": "tooLarge", "description": d}),
            Err(e) => set_error(e)?,
        },
    };
    Ok(json!({"accountId": id::account(acct), "error": error}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_names_take_the_first_free_one() {
        let s = |n: &str| Script {
            name: n.into(),
            text: String::new(),
        };
        assert_eq!(free_name(&[]), "script 1");
        assert_eq!(
            free_name(&[(1, s("script 1")), (2, s("script 3"))]),
            "script 2"
        );
    }

    #[test]
    fn refusals_map_to_rfc9661_set_errors() {
        let t = |e| set_error(e).unwrap()["type"].as_str().unwrap().to_string();
        assert_eq!(t(SieveError::Invalid("line 1".into())), "invalidSieve");
        assert_eq!(t(SieveError::Quota("16 scripts".into())), "overQuota");
        assert_eq!(t(SieveError::Active("a".into())), "sieveIsActive");
    }
}
