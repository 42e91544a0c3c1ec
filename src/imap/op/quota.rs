//! QUOTA (RFC 9208): one quota root per account, named "", holding every
//! mailbox, with the STORAGE (in units of 1024 octets) and MESSAGE limits
//! the administrator set on the account. Limits are not set over IMAP.
//!
//! Mailboxes another account shares (RFC 4314) count toward their
//! owner's quota; their root is named `Shared/<owner address>`, and a
//! user who can see one of the owner's mailboxes can read it.

use super::mailbox::unavailable;
use crate::imap::proto::Token;
use crate::imap::session::{Reply, Session};

impl Session {
    /// An account's root as a QUOTA response body, or None without limits.
    async fn quota_line(&mut self, owner: u32, root: &str) -> Result<Option<String>, Reply> {
        if self.account.is_none() {
            return Err("BAD Not authenticated".into());
        }
        // Limits may have changed since login: read the account again.
        let acct = match self.core.directory.account_by_id(owner).await {
            Ok(Some(a)) => a,
            Ok(None) => return Err("NO [UNAVAILABLE] Account is gone".into()),
            Err(e) => return Err(format!("NO [UNAVAILABLE] {e}")),
        };
        let usage = self
            .core
            .mail
            .account_usage(acct.id)
            .await
            .map_err(unavailable)?;
        let mut res = Vec::new();
        if acct.quota_bytes > 0 {
            res.push(format!(
                "STORAGE {} {}",
                usage.used_bytes.div_ceil(1024),
                acct.quota_bytes / 1024
            ));
        }
        if acct.quota_messages > 0 {
            res.push(format!(
                "MESSAGE {} {}",
                usage.messages, acct.quota_messages
            ));
        }
        let root = crate::mail::mime::istring(root);
        Ok((!res.is_empty()).then(|| format!("QUOTA {root} ({})", res.join(" "))))
    }

    /// The root name of an account's quota as this user names it.
    async fn root_name(&self, owner: u32) -> String {
        if owner == self.me() {
            return String::new();
        }
        match self.core.directory.account_by_id(owner).await {
            Ok(Some(a)) => format!("{}/{}", super::acl::SHARED, a.address),
            _ => format!("{}/{owner}", super::acl::SHARED),
        }
    }

    pub(crate) async fn cmd_getquotaroot(&mut self, args: &[Token]) -> Reply {
        let Some(name) = self.mailbox_arg(args.first()) else {
            return "BAD GETQUOTAROOT needs a mailbox name".into();
        };
        let owner = match self.resolve(&name).await {
            Ok(Some(t)) => t.owner,
            Ok(None) => return "NO [NONEXISTENT] No such mailbox".into(),
            Err(r) => return r,
        };
        let root = self.root_name(owner).await;
        let quota = match self.quota_line(owner, &root).await {
            Ok(q) => q,
            Err(r) => return r,
        };
        let quoted = self.wire_name(&name);
        match quota {
            Some(q) => {
                let root = crate::mail::mime::istring(&root);
                self.untagged(&format!("QUOTAROOT {quoted} {root}"));
                self.untagged(&q);
            }
            None => self.untagged(&format!("QUOTAROOT {quoted}")),
        }
        "OK GETQUOTAROOT completed".into()
    }

    pub(crate) async fn cmd_getquota(&mut self, args: &[Token]) -> Reply {
        let Some(root) = args.first().and_then(|t| t.as_string()) else {
            return "BAD GETQUOTA needs a quota root".into();
        };
        let owner = if root.is_empty() {
            Some(self.me())
        } else {
            match self.shared_root_owner(&root).await {
                Ok(o) => o,
                Err(r) => return r,
            }
        };
        let quota = match owner {
            Some(owner) => match self.quota_line(owner, &root).await {
                Ok(q) => q,
                Err(r) => return r,
            },
            None => None,
        };
        match quota {
            Some(q) => {
                self.untagged(&q);
                "OK GETQUOTA completed".into()
            }
            None => "NO [NONEXISTENT] No such quota root".into(),
        }
    }

    /// The owner behind a `Shared/<address>` root, if this user can see
    /// one of that owner's mailboxes (`l` or `r`).
    async fn shared_root_owner(&self, root: &str) -> Result<Option<u32>, Reply> {
        let Some(addr) = super::acl::strip_shared(root).and_then(|r| r.strip_prefix('/')) else {
            return Ok(None);
        };
        let Some(owner) = self.other_account(addr).await? else {
            return Ok(None);
        };
        let shared = self
            .core
            .mail
            .shared_with(self.me())
            .await
            .map_err(unavailable)?;
        Ok(shared
            .iter()
            .any(|s| s.owner == owner && (s.rights.has('l') || s.rights.has('r')))
            .then_some(owner))
    }

    pub(crate) fn cmd_setquota(&mut self) -> Reply {
        "NO [NOPERM] Quotas are set by the administrator (petrel account update --quota, --quota-messages)"
            .into()
    }
}
