//! Mailbox/set and Mailbox/query (RFC 8621 §2.5, §2.3) on the IMAP
//! mailbox tree: a Mailbox's IMAP name is its parents' names and its own
//! joined by `/`, so creating, renaming and moving are IMAP CREATE and
//! RENAME, and IMAP sessions see them. Roles are the special uses IMAP
//! shows (RFC 6154). sortOrder is kept for JMAP clients only.

use serde_json::{json, Map, Value};

use super::{query_changes, store_error, Context};
use crate::jmap::id;
use crate::jmap::request::MethodError;
use crate::mail::acl::shared_name;
use crate::mail::{MailError, Mailbox};

fn invalid(p: &str, why: impl Into<String>) -> Value {
    json!({"type": "invalidProperties", "properties": [p], "description": why.into()})
}

const ROLES: &[&str] = &[
    "all",
    "archive",
    "drafts",
    "flagged",
    "important",
    "inbox",
    "junk",
    "sent",
    "subscribed",
    "trash",
];

/// What a create or update asks of a mailbox.
#[derive(Default)]
struct Wanted {
    name: Option<String>,
    /// `Some(None)`: top level.
    parent: Option<Option<u32>>,
    role: Option<Option<String>>,
    subscribed: Option<bool>,
    sort_order: Option<u32>,
    /// `shareWith` and its patches (with the principals capability).
    share: Vec<super::share::Edit>,
}

fn wanted(cx: &Context<'_>, obj: &Map<String, Value>) -> Result<Wanted, Value> {
    let mut w = Wanted::default();
    for (k, v) in obj {
        if let Some(e) = super::share::edit(k, v) {
            if !cx.uses(crate::jmap::request::PRINCIPALS) {
                return Err(invalid(k, "shareWith needs the principals capability"));
            }
            w.share.push(e);
            continue;
        }
        match k.as_str() {
            "name" => {
                let n = v.as_str().ok_or_else(|| invalid(k, "a String"))?;
                if n.is_empty() || n.contains('/') || n.chars().any(char::is_control) {
                    return Err(invalid(k, "1 or more characters, no `/` and no controls"));
                }
                w.name = Some(n.to_string());
            }
            "parentId" => {
                w.parent = Some(match v {
                    Value::Null => None,
                    Value::String(s) => Some(
                        cx.resolve(s)
                            .and_then(|x| id::parse_mailbox(&x))
                            .ok_or_else(|| invalid(k, "not a Mailbox id"))?,
                    ),
                    _ => return Err(invalid(k, "an Id or null")),
                })
            }
            "role" => {
                w.role = Some(match v {
                    Value::Null => None,
                    Value::String(r) if ROLES.contains(&r.as_str()) && r != "inbox" => {
                        Some(r.clone())
                    }
                    _ => {
                        return Err(invalid(
                            k,
                            "a role of the IANA registry (not inbox) or null",
                        ))
                    }
                })
            }
            "isSubscribed" => {
                w.subscribed = Some(v.as_bool().ok_or_else(|| invalid(k, "a Boolean"))?)
            }
            "sortOrder" => {
                w.sort_order = Some(
                    v.as_u64()
                        .and_then(|n| u32::try_from(n).ok())
                        .ok_or_else(|| invalid(k, "an UnsignedInt below 2^32"))?,
                )
            }
            // Server-set properties given as they are: accepted as no-ops.
            "id" | "totalEmails" | "unreadEmails" | "totalThreads" | "unreadThreads"
            | "myRights" => return Err(invalid(k, "server-set")),
            _ => return Err(invalid(k, "not a Mailbox property")),
        }
    }
    Ok(w)
}

fn full_name(boxes: &[Mailbox], parent: Option<u32>, name: &str) -> Result<String, Value> {
    match parent {
        None => Ok(name.to_string()),
        Some(p) => match boxes.iter().find(|m| m.id == p) {
            Some(m) => Ok(format!("{}/{name}", m.name)),
            None => Err(invalid("parentId", "no such Mailbox")),
        },
    }
}

fn store_set_error(e: MailError) -> Result<Value, MethodError> {
    match e {
        MailError::Invalid(why) => Ok(invalid("name", why)),
        e => Err(store_error(e)),
    }
}

fn forbidden(why: &str) -> Value {
    json!({"type": "forbidden", "description": why})
}

/// RFC 8621 §2: in a shared account, renaming or moving needs mayRename
/// and the new parent mayCreateChild; roles and sortOrder are the
/// owner's (refused); isSubscribed is the user's own and always allowed.
fn may_update(access: &super::Access, mb: &Mailbox, w: &Wanted) -> Result<(), Value> {
    if access.is_own() {
        return Ok(());
    }
    let role = w.role.clone().map(|r| r.map(|r| r.to_ascii_lowercase()));
    let current = mb
        .role
        .as_ref()
        .map(|r| r.trim_start_matches('\\').to_ascii_lowercase());
    if role.is_some_and(|r| r != current) || w.sort_order.is_some_and(|o| o != mb.sort_order) {
        return Err(forbidden(
            "the role and sortOrder of a shared Mailbox are its owner's",
        ));
    }
    if w.name.is_some() || w.parent.is_some() {
        if !access.all_grant([mb.id], "x") {
            return Err(forbidden("no right to rename this Mailbox"));
        }
        if let Some(p) = w.parent {
            if !p.is_some_and(|p| access.all_grant([p], "k")) {
                return Err(forbidden("no right to create a child there"));
            }
        }
    }
    Ok(())
}

pub async fn set(cx: &Context<'_>, args: Map<String, Value>) -> Result<Value, MethodError> {
    let access = cx.mail_access(&args).await?;
    let acct = access.acct;
    let mail = &cx.core.mail;
    // Subscriptions in a shared account are the user's, under the
    // owner's name.
    let owner = super::mailbox::shared_owner(cx, &access).await?;
    // In a shared account the mailboxes without the lookup right do not
    // exist (RFC 8621 §9.5).
    let mailboxes = || async {
        let mut boxes: Vec<Mailbox> = mail.mailboxes(acct).await.map_err(store_error)?;
        boxes.retain(|m| access.sees(m.id));
        Ok::<_, MethodError>(boxes)
    };
    let old_state = mail.account_usage(acct).await.map_err(store_error)?.state;
    super::check_state(&args, old_state)?;
    let (create, update, destroy) =
        super::set_arguments(&args, cx.core.config.jmap.max_objects_in_set)?;
    let remove_emails = args.get("onDestroyRemoveEmails").and_then(Value::as_bool) == Some(true);
    let mut created = Map::new();
    let mut not_created = Map::new();
    // A child may name its parent by creation id (§5.3): parents first.
    let mut order: Vec<(&String, &Value)> = Vec::new();
    let mut left: Vec<(&String, &Value)> = create.iter().collect();
    while !left.is_empty() {
        let before = left.len();
        left.retain(|(cid, obj)| {
            let waits = obj
                .get("parentId")
                .and_then(Value::as_str)
                .and_then(|p| p.strip_prefix('#'))
                .is_some_and(|p| {
                    p != cid.as_str()
                        && create.contains_key(p)
                        && !order.iter().any(|(c, _)| c.as_str() == p)
                });
            if !waits {
                order.push((cid, obj));
            }
            waits
        });
        if left.len() == before {
            // A cycle: let them fail on their unresolved parents.
            order.append(&mut left);
        }
    }
    for (cid, obj) in order {
        let boxes = mailboxes().await?;
        let w = match obj
            .as_object()
            .ok_or_else(|| invalid("create", "an object"))
            .and_then(|o| wanted(cx, o))
        {
            Ok(w) => w,
            Err(e) => {
                not_created.insert(cid.clone(), e);
                continue;
            }
        };
        let Some(name) = &w.name else {
            not_created.insert(cid.clone(), invalid("name", "name is required"));
            continue;
        };
        // RFC 8621 §2 mayCreateChild; no new top level in a shared account.
        if !access.is_own()
            && (!w
                .parent
                .flatten()
                .is_some_and(|p| access.all_grant([p], "k"))
                || w.role.clone().flatten().is_some())
        {
            not_created.insert(
                cid.clone(),
                forbidden("no right to create this Mailbox here"),
            );
            continue;
        }
        let full = match full_name(&boxes, w.parent.flatten(), name) {
            Ok(f) => f,
            Err(e) => {
                not_created.insert(cid.clone(), e);
                continue;
            }
        };
        // shareWith is checked before the mailbox exists (against no
        // grants: the same errors) and made once it does.
        if !w.share.is_empty() {
            let blank = Mailbox {
                id: 0,
                name: full.clone(),
                role: None,
                uidvalidity: 0,
                uidnext: 0,
                highest_modseq: 0,
                subscribed: false,
                acl: Vec::new(),
                sort_order: 0,
            };
            if let Err(e) = super::share::plan(cx, &access, &blank, &w.share).await? {
                not_created.insert(cid.clone(), e);
                continue;
            }
        }
        let mb = match mail
            .create_mailbox_with_role(acct, &full, w.role.clone().flatten())
            .await
        {
            Ok(mb) => mb,
            Err(e) => {
                not_created.insert(cid.clone(), store_set_error(e)?);
                continue;
            }
        };
        let order = w.sort_order.unwrap_or(0);
        if order != 0 {
            mail.set_sort_order(acct, mb.id, order)
                .await
                .map_err(store_error)?;
        }
        let subscribed = w.subscribed.unwrap_or(mb.subscribed && access.is_own());
        if let Some(owner) = &owner {
            mail.set_shared_subscription(cx.account.id, &shared_name(owner, &full), subscribed)
                .await
                .map_err(store_error)?;
        } else if subscribed != mb.subscribed {
            mail.set_subscribed(acct, &full, subscribed)
                .await
                .map_err(store_error)?;
        }
        if let Ok(Some(p)) = super::share::plan(cx, &access, &mb, &w.share).await? {
            super::share::commit(cx, acct, mb.id, p).await?;
        }
        cx.created(cid, &id::mailbox(mb.id));
        created.insert(
            cid.clone(),
            json!({"id": id::mailbox(mb.id), "sortOrder": order, "totalEmails": 0, "unreadEmails": 0,
                   "totalThreads": 0, "unreadThreads": 0, "isSubscribed": subscribed}),
        );
    }
    let mut updated = Map::new();
    let mut not_updated = Map::new();
    for (asked, patch) in &update {
        let mid = cx.resolve(asked).unwrap_or_else(|| asked.clone());
        let boxes = mailboxes().await?;
        let Some(mb) = id::parse_mailbox(&mid)
            .and_then(|n| boxes.iter().find(|m| m.id == n))
            .cloned()
        else {
            not_updated.insert(mid, json!({"type": "notFound"}));
            continue;
        };
        let w = match patch
            .as_object()
            .ok_or_else(|| json!({"type": "invalidPatch"}))
            .and_then(|o| wanted(cx, o))
        {
            Ok(w) => w,
            Err(e) => {
                not_updated.insert(mid, e);
                continue;
            }
        };
        let (cur_parent, cur_name) = match mb.name.rsplit_once('/') {
            Some((p, n)) => (
                boxes.iter().find(|m| m.name == p).map(|m| m.id),
                n.to_string(),
            ),
            None => (None, mb.name.clone()),
        };
        if let Err(e) = may_update(&access, &mb, &w) {
            not_updated.insert(mid, e);
            continue;
        }
        let share = match super::share::plan(cx, &access, &mb, &w.share).await? {
            Ok(p) => p,
            Err(e) => {
                not_updated.insert(mid, e);
                continue;
            }
        };
        let parent = w.parent.unwrap_or(cur_parent);
        let name = w.name.clone().unwrap_or(cur_name);
        if parent == Some(mb.id) {
            not_updated.insert(
                mid,
                invalid("parentId", "a Mailbox cannot be its own parent"),
            );
            continue;
        }
        let full = match full_name(&boxes, parent, &name) {
            Ok(f) => f,
            Err(e) => {
                not_updated.insert(mid, e);
                continue;
            }
        };
        if full != mb.name {
            if mb.name.eq_ignore_ascii_case("INBOX") {
                not_updated.insert(mid, json!({"type": "forbidden", "description": "the inbox cannot be renamed or moved"}));
                continue;
            }
            if let Err(e) = mail.rename_mailbox(acct, &mb.name, &full).await {
                not_updated.insert(mid, store_set_error(e)?);
                continue;
            }
        }
        if let Some(role) = w.role {
            if let Err(e) = mail.set_mailbox_role(acct, mb.id, role).await {
                not_updated.insert(mid, store_set_error(e)?);
                continue;
            }
        }
        if let Some(s) = w.subscribed {
            // RFC 8621 §2#isSubscribed: the user's own, kept apart from
            // the owner's in a shared account (the name IMAP shows).
            match &owner {
                None => mail.set_subscribed(acct, &full, s).await,
                Some(owner) => {
                    mail.set_shared_subscription(cx.account.id, &shared_name(owner, &full), s)
                        .await
                }
            }
            .map_err(store_error)?;
        }
        if let Some(o) = w.sort_order.filter(|o| *o != mb.sort_order) {
            mail.set_sort_order(acct, mb.id, o)
                .await
                .map_err(store_error)?;
        }
        if let Some(p) = share {
            super::share::commit(cx, acct, mb.id, p).await?;
        }
        updated.insert(mid, Value::Null);
    }
    let mut destroyed = Vec::new();
    let mut not_destroyed = Map::new();
    for asked in destroy {
        let mid = cx.resolve(&asked).unwrap_or(asked);
        let boxes = mailboxes().await?;
        let Some(mb) = id::parse_mailbox(&mid)
            .and_then(|n| boxes.iter().find(|m| m.id == n))
            .cloned()
        else {
            not_destroyed.insert(mid, json!({"type": "notFound"}));
            continue;
        };
        let prefix = format!("{}/", mb.name);
        if boxes.iter().any(|m| m.name.starts_with(&prefix)) {
            not_destroyed.insert(mid, json!({"type": "mailboxHasChild"}));
            continue;
        }
        if mb.name.eq_ignore_ascii_case("INBOX") {
            not_destroyed.insert(
                mid,
                json!({"type": "forbidden", "description": "the inbox cannot be destroyed"}),
            );
            continue;
        }
        // RFC 8621 §2 mayDelete.
        if !access.all_grant([mb.id], "x") {
            not_destroyed.insert(mid, forbidden("no right to destroy this Mailbox"));
            continue;
        }
        // §2.5: with Emails in it, only if onDestroyRemoveEmails.
        let has_mail = mail
            .view(acct, &mb)
            .await
            .map_err(store_error)?
            .iter()
            .any(|e| !super::deleted(&e.flags));
        if has_mail && !remove_emails {
            not_destroyed.insert(mid, json!({"type": "mailboxHasEmail"}));
            continue;
        }
        // And mayRemoveItems for its mail.
        if has_mail && !access.all_grant([mb.id], "te") {
            not_destroyed.insert(mid, forbidden("no right to remove the Emails in it"));
            continue;
        }
        if let Err(e) = mail.delete_mailbox(acct, &mb.name).await {
            not_destroyed.insert(mid, store_set_error(e)?);
            continue;
        }
        destroyed.push(mid);
    }
    let new_state = mail.account_usage(acct).await.map_err(store_error)?.state;
    Ok(super::set_response(
        acct,
        old_state,
        new_state,
        [created, updated, not_created, not_updated, not_destroyed],
        destroyed,
    ))
}

/// Mailbox/query (§2.3): filters parentId, name, role, hasAnyRole,
/// isSubscribed; sorts name, sortOrder, parentId.
pub async fn query(cx: &Context<'_>, args: Map<String, Value>) -> Result<Value, MethodError> {
    let access = cx.mail_access(&args).await?;
    let acct = access.acct;
    let state = cx
        .core
        .mail
        .account_usage(acct)
        .await
        .map_err(store_error)?
        .state;
    let found = results(cx, &access, &args).await?;
    let mut out = super::query_response(
        &args,
        acct,
        state,
        found.ids.iter().map(|m| id::mailbox(*m)).collect(),
    );
    out["queryState"] = json!(query_changes::query_state(&access, state, &found.extra));
    out["canCalculateChanges"] = json!(true);
    Ok(out)
}

/// Mailbox/queryChanges (RFC 8620 §5.6): the Mailboxes the log touched
/// (made, renamed, moved, subscribed, destroyed: not their counts) and
/// their children, whose parentId follows their names.
pub async fn query_changes(
    cx: &Context<'_>,
    args: Map<String, Value>,
) -> Result<Value, MethodError> {
    let access = cx.mail_access(&args).await?;
    let acct = access.acct;
    let mail = &cx.core.mail;
    let state = mail.account_usage(acct).await.map_err(store_error)?.state;
    let found = results(cx, &access, &args).await?;
    let (since_text, since) = query_changes::since(&args, &access, state, &found.extra)?;
    let mut touched = query_changes::touched(mail, acct, since, &args, |c| {
        let ([made, changed, gone], more_than_counts) = super::changes::mailbox_ids(c);
        [made, if more_than_counts { changed } else { vec![] }, gone]
    })
    .await?;
    let names: Vec<(u64, &str)> = found
        .boxes
        .iter()
        .map(|m| (m.id as u64, m.name.as_str()))
        .collect();
    let lost = touched
        .changed
        .iter()
        .any(|t| !names.iter().any(|(m, _)| m == t));
    let parents: Vec<String> = names
        .iter()
        .filter(|(m, _)| touched.contains(*m))
        .map(|(_, n)| format!("{n}/"))
        .collect();
    for (m, n) in &names {
        // A destroyed parent's name is gone with it: then every result.
        if lost || parents.iter().any(|p| n.starts_with(p.as_str())) {
            touched.change(*m);
        }
    }
    let ids: Vec<u64> = found.ids.iter().map(|m| *m as u64).collect();
    query_changes::respond(
        &args,
        acct,
        (
            since_text,
            query_changes::query_state(&access, state, &found.extra),
        ),
        &ids,
        &touched,
        None,
        |m| id::mailbox(m as u32),
    )
}

/// What a Mailbox query found: the visible mailboxes, the ids of those
/// it takes in order, and what else (shared subscriptions) it depended on.
struct Found {
    boxes: Vec<Mailbox>,
    ids: Vec<u32>,
    extra: String,
}

async fn results(
    cx: &Context<'_>,
    access: &super::Access,
    args: &Map<String, Value>,
) -> Result<Found, MethodError> {
    let acct = access.acct;
    let mail = &cx.core.mail;
    let mut boxes = mail.mailboxes(acct).await.map_err(store_error)?;
    boxes.retain(|m| access.sees(m.id));
    let subscriptions = super::mailbox::shared_subscriptions(cx, access).await?;
    let extra = match &subscriptions {
        None => String::new(),
        Some((_, names)) => {
            let mut names: Vec<&str> = names.iter().map(String::as_str).collect();
            names.sort_unstable();
            names.join("\n")
        }
    };
    let subscribed = |m: &Mailbox| match &subscriptions {
        None => m.subscribed,
        Some((owner, names)) => names.contains(&shared_name(owner, &m.name)),
    };
    let parent_of = |m: &Mailbox| {
        m.name
            .rsplit_once('/')
            .and_then(|(p, _)| boxes.iter().find(|b| b.name == p))
            .map(|b| b.id)
    };
    let role_of = |m: &Mailbox| {
        m.role
            .as_ref()
            .map(|r| r.trim_start_matches('\\').to_ascii_lowercase())
    };
    let f = &super::condition(args, "Mailbox/query")?;
    let mut rows: Vec<&Mailbox> = Vec::new();
    for m in &boxes {
        let mut ok = true;
        for (k, v) in f {
            ok &= match k.as_str() {
                "parentId" => match v {
                    Value::Null => parent_of(m).is_none(),
                    Value::String(s) => parent_of(m).map(id::mailbox) == cx.resolve(s),
                    _ => return Err(MethodError::invalid_arguments("parentId: an Id or null")),
                },
                "name" => {
                    let needle = v.as_str().unwrap_or_default().to_lowercase();
                    m.name
                        .rsplit('/')
                        .next()
                        .unwrap_or_default()
                        .to_lowercase()
                        .contains(&needle)
                }
                "role" => role_of(m).as_deref() == v.as_str(),
                "hasAnyRole" => role_of(m).is_some() == (v == &Value::Bool(true)),
                "isSubscribed" => subscribed(m) == (v == &Value::Bool(true)),
                other => {
                    return Err(MethodError::with(
                        "unsupportedFilter",
                        format!("`{other}` is not a Mailbox filter"),
                    ))
                }
            };
        }
        if ok {
            rows.push(m);
        }
    }
    super::sort_rows(
        args,
        &mut rows,
        "Mailboxes",
        &["name", "sortOrder", "parentId"],
        |p, a, b| match p {
            "name" => {
                let name = |m: &Mailbox| {
                    crate::mail::collate::casemap(m.name.rsplit('/').next().unwrap_or_default())
                };
                name(a).cmp(&name(b))
            }
            "sortOrder" => a.sort_order.cmp(&b.sort_order),
            _ => parent_of(a).cmp(&parent_of(b)),
        },
    )?;
    let ids = rows.iter().map(|m| m.id).collect();
    Ok(Found { boxes, ids, extra })
}
