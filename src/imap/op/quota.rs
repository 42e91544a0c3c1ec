//! QUOTA (RFC 9208): one quota root per account, named "", holding every
//! mailbox, with the STORAGE (in units of 1024 octets) and MESSAGE limits
//! the administrator set on the account. Limits are not set over IMAP.

use super::mailbox::unavailable;
use crate::imap::proto::Token;
use crate::imap::session::{Reply, Session};

impl Session {
    /// The account's root as a QUOTA response body, or None without limits.
    async fn quota_line(&mut self) -> Result<Option<String>, Reply> {
        let Some(acct) = self.account.clone() else {
            return Err("BAD Not authenticated".into());
        };
        // Limits may have changed since login: read the account again.
        let acct = match self.core.directory.account_by_id(acct.id).await {
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
        Ok((!res.is_empty()).then(|| format!("QUOTA \"\" ({})", res.join(" "))))
    }

    pub(crate) async fn cmd_getquotaroot(&mut self, args: &[Token]) -> Reply {
        let Some(name) = self.mailbox_arg(args.first()) else {
            return "BAD GETQUOTAROOT needs a mailbox name".into();
        };
        let acct = self.account.as_ref().map(|a| a.id).unwrap_or(0);
        match self.core.mail.mailbox_by_name(acct, &name).await {
            Ok(Some(_)) => {}
            Ok(None) => return "NO [NONEXISTENT] No such mailbox".into(),
            Err(e) => return unavailable(e),
        }
        let quota = match self.quota_line().await {
            Ok(q) => q,
            Err(r) => return r,
        };
        let quoted = self.wire_name(&name);
        match quota {
            Some(q) => {
                self.untagged(&format!("QUOTAROOT {quoted} \"\""));
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
        let quota = match self.quota_line().await {
            Ok(q) => q,
            Err(r) => return r,
        };
        match quota {
            Some(q) if root.is_empty() => {
                self.untagged(&q);
                "OK GETQUOTA completed".into()
            }
            _ => "NO [NONEXISTENT] No such quota root".into(),
        }
    }

    pub(crate) fn cmd_setquota(&mut self) -> Reply {
        "NO [NOPERM] Quotas are set by the administrator (petrel account update --quota-bytes)"
            .into()
    }
}
