//! CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE (RFC 9051 §6.3.4-6.3.8),
//! NAMESPACE (§6.3.10, RFC 2342) and ID (RFC 2971).

use crate::imap::proto::Token;
use crate::imap::session::{Reply, Session};
use crate::mail::MailError;

fn mail_error(e: MailError, what: &str) -> Reply {
    match e {
        MailError::Invalid(m) if m.contains("exists") => format!("NO [ALREADYEXISTS] {what}: {m}"),
        MailError::Invalid(m) if m.contains("no such") => format!("NO [NONEXISTENT] {what}: {m}"),
        MailError::Invalid(m) if m.contains("children") => format!("NO [HASCHILDREN] {what}: {m}"),
        MailError::Invalid(m) | MailError::NotFound(m) => format!("NO [CANNOT] {what}: {m}"),
        other => super::mailbox::unavailable(other),
    }
}

/// Whether a new mailbox name is Net-Unicode (RFC 5198 §2, required of
/// new names by RFC 9051 §5.1, §6.3.4): in Normalization Form C, without
/// control characters or the line and paragraph separators. Names that
/// are not are refused rather than converted.
fn net_unicode(name: &str) -> bool {
    unicode_normalization::is_nfc(name)
        && !name
            .chars()
            .any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}')
}

const NOT_NET_UNICODE: &str =
    "NO [CANNOT] Mailbox names must be Net-Unicode (NFC, no control characters)";

impl Session {
    fn acct(&self) -> u32 {
        self.account.as_ref().map(|a| a.id).unwrap_or(0)
    }

    pub(crate) async fn cmd_create(&mut self, args: &[Token]) -> Reply {
        let Some(name) = self.mailbox_arg(args.first()) else {
            return "BAD CREATE needs a mailbox name".into();
        };
        if !net_unicode(&name) {
            return NOT_NET_UNICODE.into();
        }
        // Another account's mailbox: `k` on its nearest parent (RFC 4314 §4).
        let (owner, name) = if super::acl::is_shared_name(&name) {
            match self.shared_owner(&name).await {
                Err(r) => return r,
                Ok(None) => {
                    return "NO [NOPERM] Mailboxes cannot be created at this level".into();
                }
                Ok(Some((owner, path))) => match self.may_create_in(owner, &path).await {
                    Err(r) => return r,
                    Ok(false) => {
                        return "NO [NOPERM] Creating here needs the k right on the parent".into();
                    }
                    Ok(true) => (owner, path),
                },
            }
        } else {
            (self.acct(), name)
        };
        if name.eq_ignore_ascii_case("INBOX") {
            return "NO [ALREADYEXISTS] INBOX always exists".into();
        }
        // RFC 6154 §3 (CREATE-SPECIAL-USE): CREATE name (USE (\\Drafts)).
        let role = match args.get(1) {
            None => None,
            Some(Token::List(p))
                if p.len() == 2 && p[0].keyword() == "USE" && matches!(p[1], Token::List(_)) =>
            {
                let Token::List(uses) = &p[1] else {
                    unreachable!()
                };
                let roles: Option<Vec<&str>> = uses
                    .iter()
                    .map(|u| super::mailbox::attr_role(&u.as_string()?))
                    .collect();
                match roles.as_deref() {
                    Some([]) => None,
                    Some([r]) => Some(r.to_string()),
                    Some(_) => {
                        return "NO [USEATTR] One special use per mailbox".into();
                    }
                    None => return "NO [USEATTR] Unknown special-use attribute".into(),
                }
            }
            Some(_) => return "BAD CREATE takes (USE (attributes)) after the name".into(),
        };
        if role.is_some() && owner != self.acct() {
            return "NO [NOPERM] Only the owner gives a mailbox a special use".into();
        }
        match self
            .core
            .mail
            .create_mailbox_with_role(owner, &name, role)
            .await
        {
            Err(MailError::Invalid(m)) if m.contains("role in use") => {
                format!("NO [USEATTR] {m}")
            }
            // RFC 8474 §4.1: the new mailbox's id.
            Ok(mb) => format!("OK [MAILBOXID (M{})] CREATE completed", mb.id),
            Err(e) => mail_error(e, "CREATE"),
        }
    }

    pub(crate) async fn cmd_delete(&mut self, args: &[Token]) -> Reply {
        let Some(name) = self.mailbox_arg(args.first()) else {
            return "BAD DELETE needs a mailbox name".into();
        };
        // Another account's mailbox: `x` on it (RFC 4314 §4).
        let (owner, name) = if super::acl::is_shared_name(&name) {
            match self.resolve(&name).await {
                Err(r) => return r,
                Ok(None) => return "NO [NONEXISTENT] No such mailbox".into(),
                Ok(Some(t)) if !t.rights.has('x') => {
                    return "NO [NOPERM] Deleting this mailbox needs the x right".into();
                }
                Ok(Some(t)) => (t.owner, t.mailbox.name),
            }
        } else {
            (self.acct(), name)
        };
        if self
            .selected
            .as_ref()
            .is_some_and(|s| s.owner == owner && s.mailbox.name == name)
        {
            // Deleting the selected mailbox: deselect first.
            self.selected = None;
        }
        match self.core.mail.delete_mailbox(owner, &name).await {
            Ok(()) => "OK DELETE completed".into(),
            Err(e) => mail_error(e, "DELETE"),
        }
    }

    pub(crate) async fn cmd_rename(&mut self, args: &[Token]) -> Reply {
        let (Some(from), Some(to)) = (
            self.mailbox_arg(args.first()),
            self.mailbox_arg(args.get(1)),
        ) else {
            return "BAD RENAME needs two mailbox names".into();
        };
        if !net_unicode(&to) {
            return NOT_NET_UNICODE.into();
        }
        let (owner, from, to) = match (
            super::acl::is_shared_name(&from),
            super::acl::is_shared_name(&to),
        ) {
            (false, false) => {
                if from.eq_ignore_ascii_case("INBOX") {
                    return self.rename_inbox(&to).await;
                }
                (self.acct(), from, to)
            }
            // Within another account: `x` on the mailbox, `k` on the new
            // name's parent (RFC 4314 §4).
            (true, true) => {
                let src = match self.resolve(&from).await {
                    Err(r) => return r,
                    Ok(None) => return "NO [NONEXISTENT] No such mailbox".into(),
                    Ok(Some(t)) => t,
                };
                if !src.rights.has('x') {
                    return "NO [NOPERM] Renaming this mailbox needs the x right".into();
                }
                let to = match self.shared_owner(&to).await {
                    Err(r) => return r,
                    Ok(Some((o, path))) if o == src.owner => path,
                    Ok(_) => return "NO [CANNOT] A mailbox stays in its owner's account".into(),
                };
                match self.may_create_in(src.owner, &to).await {
                    Err(r) => return r,
                    Ok(false) => {
                        return "NO [NOPERM] The new name needs the k right on its parent".into();
                    }
                    Ok(true) => {}
                }
                (src.owner, src.mailbox.name, to)
            }
            _ => return "NO [CANNOT] A mailbox stays in its owner's account".into(),
        };
        match self.core.mail.rename_mailbox(owner, &from, &to).await {
            Ok(()) => {
                if let Some(sel) = self.selected.as_mut() {
                    if sel.owner == owner && sel.mailbox.name == from {
                        sel.mailbox.name = to;
                    }
                }
                "OK RENAME completed".into()
            }
            Err(e) => mail_error(e, "RENAME"),
        }
    }

    /// RFC 9051 §6.3.6: renaming INBOX moves its messages into a new
    /// mailbox of that name and leaves INBOX, empty, where it is.
    async fn rename_inbox(&mut self, to: &str) -> Reply {
        let acct = self.acct();
        let mail = self.core.mail.clone();
        let inbox = match mail.mailbox_by_name(acct, "INBOX").await {
            Ok(Some(m)) => m,
            Ok(None) => return "NO [NONEXISTENT] No INBOX".into(),
            Err(e) => return super::mailbox::unavailable(e),
        };
        let target = match mail.create_mailbox(acct, to).await {
            Ok(m) => m,
            Err(e) => return mail_error(e, "RENAME"),
        };
        let uids = match mail.uids(acct, inbox.id).await {
            Ok(v) => v.into_iter().map(|e| e.uid).collect::<Vec<_>>(),
            Err(e) => return super::mailbox::unavailable(e),
        };
        if !uids.is_empty() {
            if let Err(e) = mail
                .copy_messages(acct, inbox.id, uids, target.id, true)
                .await
            {
                return mail_error(e, "RENAME");
            }
        }
        "OK RENAME completed (INBOX stays, now empty)".into()
    }

    pub(crate) async fn cmd_subscribe(&mut self, args: &[Token], on: bool) -> Reply {
        let Some(name) = self.mailbox_arg(args.first()) else {
            return "BAD A mailbox name is needed".into();
        };
        if super::acl::is_shared_name(&name) {
            // The subscription is this user's, not the owner's.
            return match self
                .core
                .mail
                .set_shared_subscription(self.acct(), &super::acl::canonical_shared(&name), on)
                .await
            {
                Ok(()) if on => "OK SUBSCRIBE completed".into(),
                Ok(()) => "OK UNSUBSCRIBE completed".into(),
                Err(e) => super::mailbox::unavailable(e),
            };
        }
        match self.core.mail.set_subscribed(self.acct(), &name, on).await {
            Ok(()) if on => "OK SUBSCRIBE completed".into(),
            Ok(()) => "OK UNSUBSCRIBE completed".into(),
            Err(e) => mail_error(e, if on { "SUBSCRIBE" } else { "UNSUBSCRIBE" }),
        }
    }

    pub(crate) fn cmd_namespace(&mut self) -> Reply {
        // RFC 2342: personal, other users' ("Shared/<owner>/..."), none
        // shared by the server itself.
        self.untagged("NAMESPACE ((\"\" \"/\")) ((\"Shared/\" \"/\")) NIL");
        "OK NAMESPACE completed".into()
    }

    pub(crate) fn cmd_id(&mut self, args: &[Token]) -> Reply {
        match args.first() {
            Some(Token::List(_)) | Some(Token::Atom(_)) => {}
            _ => return "BAD ID needs a parameter list or NIL".into(),
        }
        let line = format!(
            "ID (\"name\" \"Petrel\" \"version\" \"{}\")",
            env!("CARGO_PKG_VERSION")
        );
        self.untagged(&line);
        "OK ID completed".into()
    }
}
