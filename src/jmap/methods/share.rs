//! Mailbox sharing as RFC 9670 §4 lays it out for shareable data: a
//! Mailbox's `shareWith` maps Principal ids to MailboxRights objects (the
//! shape of `myRights`, RFC 8621 §2). RFC 8621 does not give Mailbox a
//! `shareWith` of its own, so Petrel offers it to requests that use the
//! principals capability. It is the mailbox's IMAP access list (RFC
//! 4314) seen through JMAP: a change is an IMAP SETACL, an IMAP SETACL
//! shows here, and the grantee gets a ShareNotification either way.
//!
//! One JMAP right is one or two IMAP rights: mayReadItems `lr`,
//! mayAddItems `i`, mayRemoveItems `te`, maySetSeen `s`, maySetKeywords
//! `w`, mayCreateChild `k`, mayRename and mayDelete both `x`, maySubmit
//! `p`. The IMAP rights without a JMAP name (`a`) are kept as they are.

use serde_json::{json, Map, Value};

use super::{store_error, Context};
use crate::jmap::id;
use crate::jmap::request::MethodError;
use crate::mail::acl::{Rights, ANYONE};
use crate::mail::Mailbox;

/// The JMAP rights and the IMAP letters each stands for.
const RIGHTS: &[(&str, &str)] = &[
    ("mayReadItems", "lr"),
    ("mayAddItems", "i"),
    ("mayRemoveItems", "te"),
    ("maySetSeen", "s"),
    ("maySetKeywords", "w"),
    ("mayCreateChild", "k"),
    ("mayRename", "x"),
    ("mayDelete", "x"),
    ("maySubmit", "p"),
];

/// A MailboxRights object (RFC 8621 §2) for IMAP rights: a right is true
/// when every letter it stands for is granted.
pub fn rights_json(r: &Rights) -> Value {
    let mut m = Map::new();
    for (name, letters) in RIGHTS {
        m.insert(name.to_string(), json!(letters.chars().all(|c| r.has(c))));
    }
    Value::Object(m)
}

/// IMAP rights for a whole MailboxRights object: the letters of every
/// right that is true. An absent right is false; an unknown name or a
/// value that is not a Boolean is an error.
fn rights_from(obj: &Value) -> Result<Rights, String> {
    let obj = obj
        .as_object()
        .ok_or("a MailboxRights object (right names to Booleans)")?;
    let mut letters = String::new();
    for (k, v) in obj {
        let (_, l) = RIGHTS
            .iter()
            .find(|(n, _)| n == k)
            .ok_or_else(|| format!("`{k}` is not a MailboxRights name"))?;
        if v.as_bool()
            .ok_or_else(|| format!("`{k}` must be a Boolean"))?
        {
            letters.push_str(l);
        }
    }
    Ok(Rights::parse(&letters).unwrap_or_default())
}

/// The rights `current` with one JMAP right turned on or off.
fn with_right(current: &Rights, name: &str, on: bool) -> Result<Rights, String> {
    let (_, l) = RIGHTS
        .iter()
        .find(|(n, _)| *n == name)
        .ok_or_else(|| format!("`{name}` is not a MailboxRights name"))?;
    let letters = Rights::parse(l).unwrap_or_default();
    Ok(if on {
        current.union(&letters)
    } else {
        current.minus(&letters)
    })
}

/// A mailbox's `shareWith`: every account granted something, by
/// Principal id; null when nobody is. "anyone" grants have no Principal
/// and are not shown (IMAP GETACL shows them).
pub fn share_with(mb: &Mailbox) -> Value {
    let m: Map<String, Value> = mb
        .acl
        .iter()
        .filter(|g| g.who != ANYONE)
        .filter_map(|g| {
            let r = Rights::parse(&g.rights)?;
            Some((id::principal(g.who), rights_json(&r)))
        })
        .collect();
    if m.is_empty() {
        Value::Null
    } else {
        Value::Object(m)
    }
}

/// One change of `shareWith` in a Mailbox/set create or update (RFC 8620
/// §5.3 patches): the whole map, one Principal's rights, or one right.
#[derive(Debug, Clone, PartialEq)]
pub enum Edit {
    All(Value),
    One(String, Value),
    Right(String, String, Value),
}

/// The edit a property path of a Mailbox/set names, if it is about
/// `shareWith`.
pub fn edit(path: &str, v: &Value) -> Option<Edit> {
    let rest = path.strip_prefix("shareWith")?;
    if rest.is_empty() {
        return Some(Edit::All(v.clone()));
    }
    let rest = rest.strip_prefix('/')?;
    Some(match rest.split_once('/') {
        None => Edit::One(rest.to_string(), v.clone()),
        Some((who, right)) => Edit::Right(who.to_string(), right.to_string(), v.clone()),
    })
}

fn invalid(why: impl Into<String>) -> Value {
    json!({"type": "invalidProperties", "properties": ["shareWith"], "description": why.into()})
}

/// What a Mailbox/set asks of one mailbox's grants: the grants before
/// and after, by account.
pub struct Plan {
    before: std::collections::BTreeMap<u32, Rights>,
    want: std::collections::BTreeMap<u32, Rights>,
}

/// Checks `edits` against mailbox `mb` of the account `access` reaches
/// (known Principals that are accounts and not the owner, well-formed
/// rights, the user's right to administer the mailbox) before any grant
/// changes. The error is the SetError to answer; `None` when there is
/// nothing to change.
pub async fn plan(
    cx: &Context<'_>,
    access: &super::Access,
    mb: &Mailbox,
    edits: &[Edit],
) -> Result<Result<Option<Plan>, Value>, MethodError> {
    if edits.is_empty() {
        return Ok(Ok(None));
    }
    // RFC 4314 `a`: only who may administer the mailbox shares it.
    if !access.all_grant([mb.id], "a") {
        return Ok(Err(json!({"type": "forbidden",
            "description": "no right to change who shares this Mailbox"})));
    }
    let owner = access.acct;
    let before: std::collections::BTreeMap<u32, Rights> = mb
        .acl
        .iter()
        .filter(|g| g.who != ANYONE)
        .map(|g| (g.who, Rights::parse(&g.rights).unwrap_or_default()))
        .collect();
    let mut want = before.clone();
    let who_of = |p: &str| -> Result<u32, Value> {
        match id::parse_principal(p) {
            Some(n) if n == owner => Err(invalid("the owner is not listed in shareWith")),
            Some(n) => Ok(n),
            None => Err(invalid(format!("`{p}` is not a Principal id"))),
        }
    };
    for e in edits {
        let step = match e {
            Edit::All(Value::Null) => {
                want.clear();
                Ok(())
            }
            Edit::All(Value::Object(m)) => {
                want.clear();
                m.iter().try_for_each(|(p, r)| {
                    let n = who_of(p)?;
                    want.insert(n, rights_from(r).map_err(invalid)?);
                    Ok(())
                })
            }
            Edit::All(_) => Err(invalid("an object of Principal ids, or null")),
            Edit::One(p, Value::Null) => who_of(p).map(|n| {
                want.remove(&n);
            }),
            Edit::One(p, r) => who_of(p).and_then(|n| {
                want.insert(n, rights_from(r).map_err(invalid)?);
                Ok(())
            }),
            Edit::Right(p, right, v) => who_of(p).and_then(|n| {
                let on = v.as_bool().ok_or_else(|| invalid("a right is a Boolean"))?;
                let cur = want.get(&n).cloned().unwrap_or_default();
                want.insert(n, with_right(&cur, right, on).map_err(invalid)?);
                Ok(())
            }),
        };
        if let Err(e) = step {
            return Ok(Err(e));
        }
    }
    // No rights left is no grant.
    want.retain(|_, r| !r.is_empty());
    // A grant to an account that is not in the directory (or to a
    // group, which IMAP ACLs do not name) cannot be made.
    for n in want.keys().filter(|n| !before.contains_key(n)) {
        let known = cx
            .core
            .directory
            .account_by_id(*n)
            .await
            .map_err(store_error)?;
        if known.is_none() {
            return Ok(Err(invalid(format!(
                "`{}` is not an individual Principal of this server",
                id::principal(*n)
            ))));
        }
    }
    Ok(Ok(Some(Plan { before, want })))
}

/// Makes the grants of a checked plan, as IMAP SETACL/DELETEACL would.
pub async fn commit(cx: &Context<'_>, owner: u32, mbox: u32, p: Plan) -> Result<(), MethodError> {
    let mail = &cx.core.mail;
    for n in p.before.keys().filter(|n| !p.want.contains_key(n)) {
        mail.set_grant(owner, mbox, *n, None, cx.account.id)
            .await
            .map_err(store_error)?;
    }
    for (n, r) in &p.want {
        if p.before.get(n) != Some(r) {
            mail.set_grant(owner, mbox, *n, Some(r.clone()), cx.account.id)
                .await
                .map_err(store_error)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rights_round_trip_through_imap_letters() {
        let r = Rights::parse("lrswi").unwrap();
        let j = rights_json(&r);
        assert_eq!(j["mayReadItems"], json!(true));
        assert_eq!(j["mayRemoveItems"], json!(false));
        assert_eq!(rights_from(&j).unwrap(), r);
        // `t` alone is not mayRemoveItems; turning it on adds `e` too.
        let t = Rights::parse("lrt").unwrap();
        assert_eq!(rights_json(&t)["mayRemoveItems"], json!(false));
        let on = with_right(&t, "mayRemoveItems", true).unwrap();
        assert_eq!(on.as_str(), "lrte");
        // mayRename and mayDelete are one IMAP right.
        let off = with_right(&Rights::parse("lrx").unwrap(), "mayDelete", false).unwrap();
        assert_eq!(off.as_str(), "lr");
        assert!(rights_from(&json!({"mayAdmin": true})).is_err());
        assert!(rights_from(&json!({"mayReadItems": 1})).is_err());
        // `a` has no JMAP name: a right's edit keeps it.
        let a = with_right(&Rights::parse("lra").unwrap(), "maySetSeen", true).unwrap();
        assert_eq!(a.as_str(), "lrsa");
    }

    proptest::proptest! {
        /// Any IMAP rights: the JMAP view and back keeps exactly the
        /// letters JMAP names fully (a lone `t` or `e` of mayRemoveItems,
        /// a lone `l` or `r` of mayReadItems is dropped), never adds one.
        #[test]
        fn imap_rights_through_jmap(mask in 0u16..(1 << 11)) {
            let letters: String = crate::mail::acl::ALL_RIGHTS
                .chars()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, c)| c)
                .collect();
            let r = Rights::parse(&letters).unwrap();
            let back = rights_from(&rights_json(&r)).unwrap();
            proptest::prop_assert!(back.minus(&r).is_empty(), "{} added to {}", back.as_str(), r.as_str());
            for (name, l) in RIGHTS {
                let whole = l.chars().all(|c| r.has(c));
                proptest::prop_assert_eq!(rights_json(&back)[*name].as_bool(), Some(whole), "{}", name);
            }
        }

        /// Any MailboxRights object whose mayRename and mayDelete agree
        /// comes back as it was.
        #[test]
        fn jmap_rights_round_trip(bits in proptest::collection::vec(proptest::bool::ANY, 8)) {
            let mut obj = Map::new();
            let names = ["mayReadItems", "mayAddItems", "mayRemoveItems", "maySetSeen",
                "maySetKeywords", "mayCreateChild", "mayRename", "maySubmit"];
            for (n, b) in names.iter().zip(&bits) {
                obj.insert(n.to_string(), json!(b));
            }
            obj.insert("mayDelete".into(), json!(bits[6]));
            let v = Value::Object(obj);
            proptest::prop_assert_eq!(rights_json(&rights_from(&v).unwrap()), v);
        }
    }

    #[test]
    fn patch_paths() {
        assert_eq!(edit("name", &json!("x")), None);
        assert_eq!(edit("shareWithout", &json!(1)), None);
        assert_eq!(
            edit("shareWith", &Value::Null),
            Some(Edit::All(Value::Null))
        );
        assert_eq!(
            edit("shareWith/P3", &json!({})),
            Some(Edit::One("P3".into(), json!({})))
        );
        assert_eq!(
            edit("shareWith/P3/maySetSeen", &json!(true)),
            Some(Edit::Right("P3".into(), "maySetSeen".into(), json!(true)))
        );
    }
}
