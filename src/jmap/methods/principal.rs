//! Principals (RFC 9670 §2): the directory's accounts (type
//! `individual`) and groups (type `group`) as the user may look them up,
//! held in the user's own account. Which ones a user sees is
//! `jmap.principals`: `domain` (default) the accounts and groups of its
//! own domain, `all` every one; either way itself and the owners of
//! accounts that share mailboxes with it. Administrator logins without a
//! mailbox (no `@`) are never principals.
//!
//! Principals are managed in the directory (`petrel account`, `petrel
//! group`), so Principal/set refuses every change. Their state is the
//! directory's principal log position and, after a `.`, a digest of what
//! the user is shared: a new share changes which principals it sees and
//! their `accounts`, so /changes across it is `cannotCalculateChanges`.

use serde_json::{json, Map, Value};

use super::{store_error, Context};
use crate::config::PrincipalScope;
use crate::directory::{Account, Group};
use crate::jmap::id;
use crate::jmap::request::MethodError;

const PROPERTIES: &[&str] = &[
    "id",
    "type",
    "name",
    "description",
    "email",
    "timeZone",
    "capabilities",
    "accounts",
];

/// A principal as the directory holds it.
enum Who {
    Account(Account),
    Group(Group),
}

impl Who {
    fn id(&self) -> u32 {
        match self {
            Who::Account(a) => a.id,
            Who::Group(g) => g.id,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Who::Account(_) => "individual",
            Who::Group(_) => "group",
        }
    }

    fn email(&self) -> &str {
        match self {
            Who::Account(a) => &a.address,
            Who::Group(g) => &g.address,
        }
    }

    /// The display name; the address when none is set.
    fn name(&self) -> &str {
        let n = match self {
            Who::Account(a) => &a.name,
            Who::Group(g) => &g.name,
        };
        if n.is_empty() {
            self.email()
        } else {
            n
        }
    }
}

fn domain(addr: &str) -> &str {
    addr.rsplit_once('@').map_or("", |(_, d)| d)
}

/// What the user sees: the principals, in id order, and the accounts
/// shared with it (owner ids).
struct View {
    list: Vec<Who>,
    owners: Vec<u32>,
    state: String,
}

impl View {
    /// The log positions from a state the client had to now, and the
    /// digest of today's grants; a state from before a grant change (or
    /// unknown, or later) cannot be brought up to date.
    fn span(&self, since: &str) -> Result<(u64, u64, &str), MethodError> {
        let cannot = super::query_changes::cannot;
        let (now, digest) = self.state.split_once('.').ok_or_else(cannot)?;
        let now: u64 = now.parse().map_err(|_| cannot())?;
        let since: u64 = match since.split_once('.') {
            Some((n, d)) if d == digest => n.parse().map_err(|_| cannot())?,
            _ => return Err(cannot()),
        };
        if since > now {
            return Err(cannot());
        }
        Ok((since, now, digest))
    }
}

async fn view(cx: &Context<'_>) -> Result<View, MethodError> {
    let dir = &cx.core.directory;
    // The state first: what is listed is at least as new as it.
    let n = dir.principal_state().await.map_err(store_error)?;
    let shares = cx.shares().await?;
    let owners = super::shared_owners(shares);
    let me = cx.account;
    let all = cx.core.config.jmap.principals == PrincipalScope::All;
    let mine = domain(&me.address).to_ascii_lowercase();
    let visible = |id: u32, email: &str| {
        id == me.id
            || owners.contains(&id)
            || email.contains('@') && (all || domain(email).eq_ignore_ascii_case(&mine))
    };
    let mut list: Vec<Who> = Vec::new();
    for a in dir.list_accounts().await.map_err(store_error)? {
        if a.address.contains('@') && visible(a.id, &a.address) {
            list.push(Who::Account(a));
        }
    }
    for g in dir.list_groups().await.map_err(store_error)? {
        if visible(g.id, &g.address) {
            list.push(Who::Group(g));
        }
    }
    list.sort_by_key(Who::id);
    let digest = {
        use sha2::Digest;
        let text: String = shares
            .iter()
            .map(|s| format!("{}:{}:{};", s.owner, s.mailbox, s.rights.as_str()))
            .collect();
        let d = sha2::Sha256::digest(text.as_bytes());
        d[..4]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    Ok(View {
        list,
        owners,
        state: format!("{n}.{digest}"),
    })
}

/// The accounts of a principal the user may use (RFC 9670 §2
/// `accounts`): its own account for the user, a sharing account for its
/// owner; null for the others.
async fn accounts(cx: &Context<'_>, v: &View, who: &Who) -> Result<Value, MethodError> {
    let n = who.id();
    let Who::Account(a) = who else {
        return Ok(Value::Null);
    };
    if n == cx.account.id {
        return Ok(json!({ id::account(n): crate::jmap::own_account(cx.core, cx.account) }));
    }
    if !v.owners.contains(&n) {
        return Ok(Value::Null);
    }
    let read_only = super::Access::shared(n, cx.shares().await?).is_none_or(|x| x.read_only());
    Ok(
        json!({ id::account(n): crate::jmap::shared_account(cx.core, cx.account.id, n, &a.address, read_only) }),
    )
}

async fn to_json(
    cx: &Context<'_>,
    v: &View,
    who: &Who,
    props: &[String],
) -> Result<Value, MethodError> {
    let mut obj = Map::new();
    for p in props {
        let val = match p.as_str() {
            "id" => json!(id::principal(who.id())),
            "type" => json!(who.kind()),
            "name" => json!(who.name()),
            "description" => Value::Null,
            "email" => json!(who.email()),
            "timeZone" => Value::Null,
            // No capability defines per-principal data for mail.
            "capabilities" => json!({}),
            "accounts" => accounts(cx, v, who).await?,
            _ => continue,
        };
        obj.insert(p.clone(), val);
    }
    Ok(Value::Object(obj))
}

/// The `accountId` of a principals method: the user's own account.
async fn own(cx: &Context<'_>, args: &Map<String, Value>) -> Result<u32, MethodError> {
    cx.account_id(args).await
}

pub async fn get(cx: &Context<'_>, args: Map<String, Value>) -> Result<Value, MethodError> {
    let acct = own(cx, &args).await?;
    let props = super::mailbox::properties(&args, PROPERTIES)?;
    let wanted = super::mailbox::ids(cx, &args)?;
    let v = view(cx).await?;
    let mut list = Vec::new();
    let mut not_found = Vec::new();
    match wanted {
        None => {
            for w in &v.list {
                list.push(to_json(cx, &v, w, &props).await?);
            }
        }
        Some(ids) => {
            let mut seen = std::collections::HashSet::new();
            for want in ids {
                if !seen.insert(want.clone()) {
                    continue;
                }
                match id::parse_principal(&want).and_then(|n| v.list.iter().find(|w| w.id() == n)) {
                    Some(w) => list.push(to_json(cx, &v, w, &props).await?),
                    None => not_found.push(want),
                }
            }
        }
    }
    Ok(super::get_response(acct, &v.state, list, not_found))
}

/// Principal/changes (RFC 8620 §5.2) from the directory's log.
pub async fn changes(cx: &Context<'_>, args: Map<String, Value>) -> Result<Value, MethodError> {
    let acct = own(cx, &args).await?;
    let (since_text, max) = super::changes::since_and_max(&args)?;
    let v = view(cx).await?;
    let (since, now, digest) = v.span(&since_text)?;
    let log = cx
        .core
        .directory
        .principal_log(since, now)
        .await
        .map_err(store_error)?
        .ok_or_else(super::query_changes::cannot)?;
    let r = super::Replay::of(log, since, max);
    // Principals the user does not see are left out; a destroyed one
    // can no longer be placed and is named.
    let sees = |n: &u64| {
        u32::try_from(*n)
            .ok()
            .is_some_and(|n| v.list.iter().any(|w| w.id() == n))
    };
    let [created, updated, destroyed] = r.ids;
    let name = |l: Vec<u64>| -> Vec<String> {
        l.into_iter()
            .filter_map(|n| u32::try_from(n).ok())
            .map(id::principal)
            .collect()
    };
    Ok(json!({
        "accountId": id::account(acct),
        "oldState": since_text,
        "newState": format!("{}.{digest}", r.reached),
        "hasMoreChanges": r.more,
        "created": name(created.into_iter().filter(sees).collect()),
        "updated": name(updated.into_iter().filter(sees).collect()),
        "destroyed": name(destroyed),
    }))
}

/// Principal/set: the directory holds them; every change is refused.
pub async fn set(cx: &Context<'_>, args: Map<String, Value>) -> Result<Value, MethodError> {
    let acct = own(cx, &args).await?;
    let v = view(cx).await?;
    if let Some(want) = args.get("ifInState").and_then(Value::as_str) {
        if want != v.state {
            return Err(MethodError::with(
                "stateMismatch",
                format!("the state is {}, not {want}", v.state),
            ));
        }
    }
    let (create, update, destroy) =
        super::set_arguments(&args, cx.core.config.jmap.max_objects_in_set)?;
    let no = || {
        json!({"type": "forbidden",
            "description": "principals are managed in the directory (petrel account, petrel group)"})
    };
    let refuse = |ids: Vec<String>| -> Value {
        let m: Map<String, Value> = ids.into_iter().map(|k| (k, no())).collect();
        super::or_null(m)
    };
    Ok(json!({
        "accountId": id::account(acct),
        "oldState": v.state,
        "newState": v.state,
        "created": null,
        "updated": null,
        "destroyed": null,
        "notCreated": refuse(create.keys().cloned().collect()),
        "notUpdated": refuse(update.keys().cloned().collect()),
        "notDestroyed": refuse(destroy),
    }))
}

/// Principal/query (RFC 9670 §2.3 filters: accountIds, email, name,
/// text, type, timeZone; one condition) sorted by name, email or type.
pub async fn query(cx: &Context<'_>, args: Map<String, Value>) -> Result<Value, MethodError> {
    let acct = own(cx, &args).await?;
    let v = view(cx).await?;
    let ids = results(cx, &args, &v)?;
    Ok(super::query_response(
        &args,
        acct,
        &v.state,
        ids.into_iter().map(principal_id).collect(),
    ))
}

fn principal_id(n: u64) -> String {
    id::principal(u32::try_from(n).unwrap_or(u32::MAX))
}

/// Principal/queryChanges (RFC 8620 §5.6) from the directory's log;
/// across a change of what is shared with the user (the state's digest)
/// `cannotCalculateChanges`.
pub async fn query_changes(
    cx: &Context<'_>,
    args: Map<String, Value>,
) -> Result<Value, MethodError> {
    let acct = own(cx, &args).await?;
    let v = view(cx).await?;
    let ids = results(cx, &args, &v)?;
    let text = args
        .get("sinceQueryState")
        .and_then(Value::as_str)
        .ok_or_else(|| MethodError::invalid_arguments("sinceQueryState is required"))?;
    let (since, now, _) = v.span(text)?;
    let log = cx
        .core
        .directory
        .principal_log(since, now)
        .await
        .map_err(store_error)?
        // Principals the user does not see were never in its results.
        .map(|l| {
            l.into_iter()
                .filter(|(_, op, n)| {
                    *op == crate::store::changelog::Op::Destroyed
                        || v.list.iter().any(|w| u64::from(w.id()) == *n)
                })
                .collect()
        });
    super::query_changes::from_log(
        &args,
        acct,
        (text.to_string(), v.state.clone()),
        log,
        &ids,
        principal_id,
    )
}

/// The Principals a query selects, in order.
fn results(cx: &Context<'_>, args: &Map<String, Value>, v: &View) -> Result<Vec<u64>, MethodError> {
    let filter = super::condition(args, "Principal/query")?;
    for k in filter.keys() {
        if !["accountIds", "email", "name", "text", "type", "timeZone"].contains(&k.as_str()) {
            return Err(MethodError::with(
                "unsupportedFilter",
                format!("`{k}` is not a Principal filter"),
            ));
        }
    }
    let text = |k: &str| -> Result<Option<String>, MethodError> {
        match filter.get(k) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.to_lowercase())),
            Some(_) => Err(MethodError::invalid_arguments(format!(
                "filter `{k}` must be a String"
            ))),
        }
    };
    let (email, name, words, kind) = (text("email")?, text("name")?, text("text")?, text("type")?);
    let account_ids: Option<Vec<u32>> = match filter.get("accountIds") {
        None => None,
        Some(Value::Array(a)) => Some(
            a.iter()
                .filter_map(Value::as_str)
                .filter_map(id::parse_account)
                .collect(),
        ),
        Some(_) => {
            return Err(MethodError::invalid_arguments(
                "filter `accountIds` must be a list of ids",
            ))
        }
    };
    // No principal has a time zone: a timeZone condition matches none.
    let tz = filter.contains_key("timeZone");
    let mut rows: Vec<&Who> = Vec::new();
    for w in &v.list {
        let has =
            |s: &str, t: &Option<String>| t.as_ref().is_none_or(|t| s.to_lowercase().contains(t));
        let own_accounts = match w {
            Who::Account(a) if a.id == cx.account.id || v.owners.contains(&a.id) => vec![a.id],
            _ => vec![],
        };
        let ok = !tz
            && has(w.email(), &email)
            && has(w.name(), &name)
            && words.as_ref().is_none_or(|t| {
                w.email().to_lowercase().contains(t) || w.name().to_lowercase().contains(t)
            })
            && kind.as_ref().is_none_or(|k| k == w.kind())
            && account_ids
                .as_ref()
                .is_none_or(|l| own_accounts.iter().any(|a| l.contains(a)));
        if ok {
            rows.push(w);
        }
    }
    super::sort_rows(
        args,
        &mut rows,
        "Principals",
        &["name", "email", "type"],
        |p, a, b| match p {
            "name" => a.name().to_lowercase().cmp(&b.name().to_lowercase()),
            "email" => a.email().to_lowercase().cmp(&b.email().to_lowercase()),
            _ => a.kind().cmp(b.kind()),
        },
    )?;
    Ok(rows.iter().map(|w| u64::from(w.id())).collect())
}
