//! ACL (RFC 4314): SETACL, DELETEACL, GETACL, LISTRIGHTS and MYRIGHTS,
//! and the "Shared/" namespace (RFC 2342) where the mailboxes other
//! accounts shared appear as `Shared/<owner address>/<mailbox>`.
//!
//! Identifiers are account addresses and "anyone". The owner holds every
//! right, fixed; negative rights are not supported. Names under
//! "Shared/" are resolved to the owner's mailbox with the rights granted
//! to this account (its own grant and anyone's); a mailbox without the
//! `l` or `r` right is reported as not existing.

use super::mailbox::unavailable;
use crate::imap::proto::Token;
use crate::imap::session::{Reply, Session};
use crate::mail::acl::{Rights, ALL_RIGHTS, ANYONE};
use crate::mail::Mailbox;

/// The other users' namespace prefix (without its separator).
pub use crate::mail::acl::SHARED;

/// A mailbox as one session reaches it.
#[derive(Debug, Clone)]
pub struct Target {
    pub owner: u32,
    pub mailbox: Mailbox,
    pub rights: Rights,
}

/// The right that setting or clearing a flag needs (RFC 4314 §4).
pub fn flag_right(flag: &str) -> char {
    match flag {
        "\\Seen" => 's',
        "\\Deleted" => 't',
        _ => 'w',
    }
}

/// What follows the "Shared" prefix, which is matched without regard to
/// case (so "shared/..." is no look-alike of another user's mailbox).
pub fn strip_shared(name: &str) -> Option<&str> {
    name.get(..SHARED.len())
        .filter(|p| p.eq_ignore_ascii_case(SHARED))
        .map(|_| &name[SHARED.len()..])
}

/// Whether a name is in the other users' namespace.
pub fn is_shared_name(name: &str) -> bool {
    strip_shared(name).is_some_and(|r| r.is_empty() || r.starts_with('/'))
}

/// A name in the other users' namespace with its prefix as NAMESPACE
/// spells it.
pub fn canonical_shared(name: &str) -> String {
    match strip_shared(name) {
        Some(rest) => format!("{SHARED}{rest}"),
        None => name.to_string(),
    }
}

impl Session {
    pub(crate) fn me(&self) -> u32 {
        self.account.as_ref().map(|a| a.id).unwrap_or(0)
    }

    /// The mailbox a name means for this user: its own, or one shared
    /// with it (`Shared/<owner>/<name>`). `Ok(None)`: no such mailbox, or
    /// one it may not see.
    pub(crate) async fn resolve(&self, name: &str) -> Result<Option<Target>, Reply> {
        let me = self.me();
        if !is_shared_name(name) {
            return match self.core.mail.mailbox_by_name(me, name).await {
                Ok(Some(mailbox)) => Ok(Some(Target {
                    owner: me,
                    mailbox,
                    rights: Rights::all(),
                })),
                Ok(None) => Ok(None),
                Err(e) => Err(unavailable(e)),
            };
        }
        let Some((owner, mbox)) = self.shared_owner(name).await? else {
            return Ok(None);
        };
        let mailbox = match self.core.mail.mailbox_by_name(owner, &mbox).await {
            Ok(Some(m)) => m,
            Ok(None) => return Ok(None),
            Err(e) => return Err(unavailable(e)),
        };
        let rights = mailbox.rights_of(owner, me);
        if !(rights.has('l') || rights.has('r')) {
            return Ok(None);
        }
        Ok(Some(Target {
            owner,
            mailbox,
            rights,
        }))
    }

    /// A name under "Shared/" split into the owning account and the
    /// owner's own name for it. `Ok(None)`: not another account's name.
    pub(crate) async fn shared_owner(&self, name: &str) -> Result<Option<(u32, String)>, Reply> {
        let Some((owner_addr, path)) = strip_shared(name)
            .and_then(|r| r.strip_prefix('/'))
            .and_then(|r| r.split_once('/'))
        else {
            return Ok(None);
        };
        let Some(owner) = self.other_account(owner_addr).await? else {
            return Ok(None);
        };
        // The owner's INBOX, whatever the case it is written in.
        let path = match path.split_once('/') {
            Some((first, rest)) if first.eq_ignore_ascii_case("INBOX") => format!("INBOX/{rest}"),
            None if path.eq_ignore_ascii_case("INBOX") => "INBOX".to_string(),
            _ => path.to_string(),
        };
        Ok(Some((owner, path)))
    }

    /// The id of the account at `addr`, if it is another one than this
    /// user's.
    pub(crate) async fn other_account(&self, addr: &str) -> Result<Option<u32>, Reply> {
        match self.core.directory.get_account(addr).await {
            Ok(Some(a)) if a.id != self.me() => Ok(Some(a.id)),
            Ok(_) => Ok(None),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// Whether this user may create `path` among `owner`'s mailboxes:
    /// RFC 4314 §4 asks for the `k` right on the nearest existing parent.
    /// An account's top level has no parent, so only the owner creates
    /// there.
    pub(crate) async fn may_create_in(&self, owner: u32, path: &str) -> Result<bool, Reply> {
        let mut p = path;
        while let Some((parent, _)) = p.rsplit_once('/') {
            match self.core.mail.mailbox_by_name(owner, parent).await {
                Ok(Some(mb)) => return Ok(mb.rights_of(owner, self.me()).has('k')),
                Ok(None) => p = parent,
                Err(e) => return Err(unavailable(e)),
            }
        }
        Ok(false)
    }

    /// How this user names a mailbox of `owner`.
    pub(crate) async fn name_for(&self, owner: u32, mb: &Mailbox) -> String {
        if owner == self.me() {
            return mb.name.clone();
        }
        match self.core.directory.account_by_id(owner).await {
            Ok(Some(a)) => crate::mail::acl::shared_name(&a.address, &mb.name),
            _ => crate::mail::acl::shared_name(&owner.to_string(), &mb.name),
        }
    }

    async fn identifier_id(&self, ident: &str) -> Result<u32, Reply> {
        let ident = prepared(ident)?;
        let ident = ident.as_str();
        if ident.eq_ignore_ascii_case("anyone") {
            return Ok(ANYONE);
        }
        match self.core.directory.get_account(ident).await {
            Ok(Some(a)) => Ok(a.id),
            Ok(None) => Err(format!("NO [NONEXISTENT] No such user {ident}")),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn identifier_name(&self, who: u32) -> String {
        if who == ANYONE {
            return "anyone".into();
        }
        match self.core.directory.account_by_id(who).await {
            Ok(Some(a)) => a.address,
            _ => format!("#{who}"),
        }
    }

    /// The mailbox argument resolved, with `right` required.
    async fn acl_target(&self, t: Option<&Token>, right: char) -> Result<Target, Reply> {
        let Some(name) = self.mailbox_arg(t) else {
            return Err("BAD A mailbox name is needed".into());
        };
        let Some(target) = self.resolve(&name).await? else {
            return Err("NO [NONEXISTENT] No such mailbox".into());
        };
        if !target.rights.has(right) {
            return Err(format!("NO [NOPERM] You lack the {right} right here"));
        }
        Ok(target)
    }

    /// MYRIGHTS (RFC 4314 §3.5).
    pub(crate) async fn cmd_myrights(&mut self, args: &[Token]) -> Reply {
        let target = match self.acl_target(args.first(), 'l').await {
            Ok(t) => t,
            Err(r) if r.starts_with("NO [NOPERM]") => {
                // `r` alone also makes a mailbox visible (§4).
                match self.acl_target(args.first(), 'r').await {
                    Ok(t) => t,
                    Err(r) => return r,
                }
            }
            Err(r) => return r,
        };
        let name = self.name_for(target.owner, &target.mailbox).await;
        let line = format!(
            "MYRIGHTS {} {}",
            self.wire_name(&name),
            crate::mail::mime::istring(&crate::mail::acl::with_virtual(target.rights.as_str()))
        );
        self.untagged(&line);
        "OK MYRIGHTS completed".into()
    }

    /// GETACL (§3.3): needs `a`.
    pub(crate) async fn cmd_getacl(&mut self, args: &[Token]) -> Reply {
        let target = match self.acl_target(args.first(), 'a').await {
            Ok(t) => t,
            Err(r) => return r,
        };
        let name = self.name_for(target.owner, &target.mailbox).await;
        let owner = self.identifier_name(target.owner).await;
        // RFC 4314 §2.1.1: with the virtual c and d rights.
        let mut line = format!(
            "ACL {} {} {}",
            self.wire_name(&name),
            crate::mail::mime::istring(&owner),
            crate::mail::acl::with_virtual(ALL_RIGHTS)
        );
        for g in &target.mailbox.acl {
            let who = self.identifier_name(g.who).await;
            line.push_str(&format!(
                " {} {}",
                crate::mail::mime::istring(&who),
                crate::mail::mime::istring(&crate::mail::acl::with_virtual(&g.rights))
            ));
        }
        self.untagged(&line);
        "OK GETACL completed".into()
    }

    /// LISTRIGHTS (§3.4): needs `a`. The owner's rights are all required;
    /// anyone else may be given each right on its own.
    pub(crate) async fn cmd_listrights(&mut self, args: &[Token]) -> Reply {
        let target = match self.acl_target(args.first(), 'a').await {
            Ok(t) => t,
            Err(r) => return r,
        };
        let Some(ident) = args.get(1).and_then(|t| t.as_string()) else {
            return "BAD LISTRIGHTS needs an identifier".into();
        };
        let who = match self.identifier_id(&ident).await {
            Ok(w) => w,
            Err(r) => return r,
        };
        let name = self.name_for(target.owner, &target.mailbox).await;
        // RFC 4314 §2.1.1: c and d are listed too, since their members
        // can be granted.
        let rights = if who == target.owner {
            crate::mail::acl::with_virtual(ALL_RIGHTS)
        } else {
            let mut v = vec!["\"\"".to_string()];
            v.extend(
                crate::mail::acl::with_virtual(ALL_RIGHTS)
                    .chars()
                    .map(String::from),
            );
            v.join(" ")
        };
        let line = format!(
            "LISTRIGHTS {} {} {rights}",
            self.wire_name(&name),
            crate::mail::mime::istring(&ident)
        );
        self.untagged(&line);
        "OK LISTRIGHTS completed".into()
    }

    /// SETACL (§3.1) and DELETEACL (§3.2): need `a`.
    pub(crate) async fn cmd_setacl(&mut self, args: &[Token], delete: bool) -> Reply {
        let cmd = if delete { "DELETEACL" } else { "SETACL" };
        let target = match self.acl_target(args.first(), 'a').await {
            Ok(t) => t,
            Err(r) => return r,
        };
        let Some(ident) = args.get(1).and_then(|t| t.as_string()) else {
            return format!("BAD {cmd} needs an identifier");
        };
        if ident.starts_with('-') {
            return "NO [CANNOT] Negative rights are not supported".into();
        }
        let who = match self.identifier_id(&ident).await {
            Ok(w) => w,
            Err(r) => return r,
        };
        if who == target.owner {
            return "NO [CANNOT] The owner's rights cannot be changed".into();
        }
        let new = if delete {
            if args.len() != 2 {
                return "BAD DELETEACL takes a mailbox and an identifier".into();
            }
            None
        } else {
            let Some(spec) = args.get(2).and_then(|t| t.as_string()) else {
                return "BAD SETACL needs rights".into();
            };
            let current = target
                .mailbox
                .acl
                .iter()
                .find(|g| g.who == who)
                .and_then(|g| Rights::parse(&g.rights))
                .unwrap_or_default();
            let (op, letters) = match spec.chars().next() {
                Some('+') => (Some('+'), &spec[1..]),
                Some('-') => (Some('-'), &spec[1..]),
                _ => (None, spec.as_str()),
            };
            let Some(given) = Rights::parse(letters) else {
                return "BAD Unknown rights".into();
            };
            Some(match op {
                Some('+') => current.union(&given),
                Some('-') => current.minus(&given),
                _ => given,
            })
        };
        match self
            .core
            .mail
            .set_grant(target.owner, target.mailbox.id, who, new, self.me())
            .await
        {
            Ok(_) => format!("OK {cmd} completed"),
            Err(e) => unavailable(e),
        }
    }
}

/// An identifier of SETACL, DELETEACL or LISTRIGHTS after SASLprep (RFC
/// 4314 §3, RFC 4013); one that fails it or comes out empty is BAD.
fn prepared(ident: &str) -> Result<String, Reply> {
    match stringprep::saslprep(ident) {
        Ok(p) if !p.is_empty() => Ok(p.into_owned()),
        _ => Err("BAD The identifier is not valid (RFC 4314 §3: SASLprep)".into()),
    }
}
