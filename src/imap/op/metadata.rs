//! METADATA (RFC 5464): GETMETADATA and SETMETADATA on mailboxes and on
//! the server (mailbox ""). Server entries are kept per account. On a
//! mailbox another account shares (RFC 4314), §3.3 asks for `l` and one
//! of `r s w i p`; its /shared entries are the ones its owner and every
//! other user with access see, /private ones are each user's own.

use super::mailbox::unavailable;
use crate::imap::proto::Token;
use crate::imap::session::{Reply, Session};
use crate::mail::mime::istring;
use crate::mail::MailError;

/// Largest value SETMETADATA takes, and annotations per mailbox.
const MAX_VALUE: usize = 64 * 1024;
const MAX_ENTRIES: usize = 100;

/// The entry that carries a mailbox's special use (RFC 6154 §4).
const SPECIAL_USE: &str = "/private/specialuse";

/// An entry name: /private/... or /shared/..., no wildcards, no "//",
/// no trailing "/" (§3.2).
fn valid_entry(e: &str) -> bool {
    let lower = e.to_ascii_lowercase();
    (lower.starts_with("/private/") || lower.starts_with("/shared/"))
        && !e.ends_with('/')
        && !e.contains("//")
        && !e.contains(['*', '%'])
        && e.bytes().all(|b| (0x21..0x7f).contains(&b))
}

impl Session {
    /// The (owner, mailbox id) an annotation command names: the user's
    /// own account and 0 for "" (the server).
    async fn annotated(&self, name: &str) -> Result<(u32, u32), Reply> {
        if name.is_empty() {
            return Ok((self.me(), 0));
        }
        match self.resolve(name).await? {
            Some(t) if t.rights.has('l') && "rswip".chars().any(|c| t.rights.has(c)) => {
                Ok((t.owner, t.mailbox.id))
            }
            Some(_) => Err("NO [NOPERM] Annotations here need l and one of r s w i p".into()),
            None => Err("NO [NONEXISTENT] No such mailbox".into()),
        }
    }

    pub(crate) async fn cmd_getmetadata(&mut self, args: &[Token]) -> Reply {
        let mut args = args;
        let mut max_size: Option<usize> = None;
        let mut depth: Option<usize> = Some(0); // None: infinity
        if let Some(Token::List(opts)) = args.first() {
            let mut i = 0;
            while i < opts.len() {
                let value = opts.get(i + 1).and_then(|t| t.as_string());
                match (opts[i].keyword().as_str(), value.as_deref()) {
                    ("MAXSIZE", Some(n)) => match n.parse() {
                        Ok(n) => max_size = Some(n),
                        Err(_) => return "BAD MAXSIZE takes a number".into(),
                    },
                    ("DEPTH", Some("0")) => depth = Some(0),
                    ("DEPTH", Some("1")) => depth = Some(1),
                    ("DEPTH", Some(d)) if d.eq_ignore_ascii_case("infinity") => depth = None,
                    _ => return "BAD Unknown GETMETADATA option".into(),
                }
                i += 2;
            }
            args = &args[1..];
        }
        let Some(name) = self.mailbox_arg(args.first()) else {
            return "BAD GETMETADATA needs a mailbox and entries".into();
        };
        let entries: Vec<String> = match args.get(1) {
            Some(Token::List(l)) => match l.iter().map(|t| t.as_string()).collect() {
                Some(v) => v,
                None => return "BAD Entries are strings".into(),
            },
            Some(t) => match t.as_string() {
                Some(e) => vec![e],
                None => return "BAD Entries are strings".into(),
            },
            None => return "BAD GETMETADATA needs entries".into(),
        };
        if entries.is_empty() || !entries.iter().all(|e| valid_entry(e)) {
            return "BAD Invalid entry name".into();
        }
        let (owner, mbox) = match self.annotated(&name).await {
            Ok(m) => m,
            Err(r) => return r,
        };
        let mut stored: Vec<(String, String)> =
            match self.core.mail.annotations(self.me(), owner, mbox).await {
                Ok(s) => s.into_iter().collect(),
                Err(e) => return unavailable(e),
            };
        // RFC 6154 §4: the mailbox's special use, as its owner sees it.
        if mbox != 0 && owner == self.me() {
            match self.core.mail.mailbox(owner, mbox).await {
                Ok(Some(mb)) => {
                    if let Some(attr) = super::mailbox::role_attr(mb.role.as_deref()) {
                        stored.push((SPECIAL_USE.into(), attr.into()));
                        stored.sort();
                    }
                }
                Ok(None) => {}
                Err(e) => return unavailable(e),
            }
        }
        let mut out = Vec::new();
        let mut longest_skipped = 0;
        for (k, v) in &stored {
            let wanted = entries.iter().any(|e| {
                let (e, k) = (e.to_ascii_lowercase(), k.to_ascii_lowercase());
                if k == e {
                    return true;
                }
                match k.strip_prefix(&format!("{e}/")) {
                    None => false,
                    Some(rest) => depth.is_none_or(|d| d >= 1 && rest.matches('/').count() < d),
                }
            });
            if !wanted {
                continue;
            }
            if max_size.is_some_and(|m| v.len() > m) {
                longest_skipped = longest_skipped.max(v.len());
                continue;
            }
            out.push(format!("{k} {}", istring(v)));
        }
        if !out.is_empty() {
            let line = format!("METADATA {} ({})", self.wire_name(&name), out.join(" "));
            self.untagged(&line);
        }
        if longest_skipped > 0 {
            format!("OK [METADATA LONGENTRIES {longest_skipped}] GETMETADATA completed")
        } else {
            "OK GETMETADATA completed".into()
        }
    }

    pub(crate) async fn cmd_setmetadata(&mut self, args: &[Token]) -> Reply {
        let (Some(name), Some(Token::List(items))) = (self.mailbox_arg(args.first()), args.get(1))
        else {
            return "BAD SETMETADATA needs a mailbox and (entry value ...)".into();
        };
        if items.is_empty() || items.len() % 2 != 0 {
            return "BAD SETMETADATA needs entry value pairs".into();
        }
        let mut entries = Vec::new();
        for pair in items.chunks(2) {
            let Some(entry) = pair[0].as_string().filter(|e| valid_entry(e)) else {
                return "BAD Invalid entry name".into();
            };
            let value = match &pair[1] {
                Token::Atom(a) if a.eq_ignore_ascii_case("NIL") => None,
                t => match t.as_bytes() {
                    Some(b) if b.len() > MAX_VALUE => {
                        return format!("NO [METADATA MAXSIZE {MAX_VALUE}] Value too large")
                    }
                    Some(b) => Some(String::from_utf8_lossy(b).into_owned()),
                    None => return "BAD Invalid value".into(),
                },
            };
            entries.push((entry, value));
        }
        let (owner, mbox) = match self.annotated(&name).await {
            Ok(m) => m,
            Err(r) => return r,
        };
        // RFC 6154 §4: /private/specialuse sets the special use, checked as
        // CREATE (USE) checks it; it is not kept as an annotation.
        if let Some(i) = entries
            .iter()
            .position(|(e, _)| e.eq_ignore_ascii_case(SPECIAL_USE))
        {
            let (_, value) = entries.remove(i);
            if mbox == 0 || owner != self.me() {
                return "NO [NOPERM] Only the owner gives a mailbox a special use".into();
            }
            let role = match value.as_deref().map(str::trim) {
                None | Some("") => None,
                Some(v) => match super::mailbox::attr_role(v) {
                    Some(r) => Some(r.to_string()),
                    None if v.contains(' ') => {
                        return "NO [USEATTR] One special use per mailbox".into()
                    }
                    None => return "NO [USEATTR] Unknown special-use attribute".into(),
                },
            };
            match self.core.mail.set_mailbox_role(owner, mbox, role).await {
                Ok(()) => {}
                Err(MailError::Invalid(m)) if m.contains("role in use") => {
                    return format!("NO [USEATTR] {m}")
                }
                Err(e) => return unavailable(e),
            }
            if entries.is_empty() {
                return "OK SETMETADATA completed".into();
            }
        }
        match self
            .core
            .mail
            .set_annotations(self.me(), owner, mbox, entries, MAX_ENTRIES)
            .await
        {
            Ok(()) => "OK SETMETADATA completed".into(),
            Err(MailError::Invalid(m)) if m.contains("too many") => {
                "NO [METADATA TOOMANY] Too many annotations".into()
            }
            Err(MailError::Invalid(m)) => format!("NO [NONEXISTENT] {m}"),
            Err(e) => unavailable(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::valid_entry;

    #[test]
    fn entry_names() {
        for ok in ["/private/comment", "/shared/vendor/x/y", "/Private/Comment"] {
            assert!(valid_entry(ok), "{ok}");
        }
        for bad in [
            "/comment",
            "private/x",
            "/private/",
            "/private//x",
            "/private/*",
            "/shared/a b",
        ] {
            assert!(!valid_entry(bad), "{bad}");
        }
    }
}
