//! Running an account's active script on a message being delivered to
//! it (RFC 5228 §2.10): what the script asks becomes a [`Plan`] — the
//! mailboxes the message is filed into, with flags (RFC 5232), and the
//! redirects to queue (§4.2). Everything the run may look up (the
//! account's mailboxes, its scripts for `include`, the ids `duplicate`
//! has seen) is read before it, so the interpreter runs without waiting.
//!
//! A script that fails (a runtime error, the instruction budget spent, a
//! missing `include`) changes nothing it asked: the message is kept in
//! the Inbox (§2.10.6) and the log says why. Nothing is lost.

use std::collections::HashMap;

use ::sieve::{Event, Input, Recipient};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use super::scripts::{self, Script};
use crate::core::{unix_now, Core};
use crate::directory::Account;
use crate::mail::records::Kind;
use crate::mail::{Folder, Mailbox};

/// What delivery does for one account.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The mailboxes the message goes into, each with its flags; none
    /// when the script discarded it.
    pub files: Vec<(Folder, Vec<String>)>,
    /// (recipient, message) to send through the queue.
    pub redirects: Vec<(String, Vec<u8>)>,
}

impl Plan {
    /// The implicit keep: the Inbox, no flags.
    pub fn keep() -> Plan {
        Plan {
            files: vec![(Folder::Role("inbox".into()), Vec::new())],
            redirects: Vec::new(),
        }
    }
}

/// An id `duplicate` (RFC 7352) saw, and until when it counts.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Seen {
    until: i64,
}

/// One `fileinto` or `keep` as the script gave it.
#[derive(Debug, Clone)]
struct FileAct {
    /// None: the Inbox (keep).
    folder: Option<String>,
    mailbox_id: Option<String>,
    special_use: Option<String>,
    create: bool,
    flags: Vec<String>,
}

/// What a run asked, before it is carried out.
#[derive(Debug, Default)]
struct Run {
    files: Vec<FileAct>,
    redirects: Vec<(String, usize)>,
    created: HashMap<usize, Vec<u8>>,
    seen: Vec<(u64, i64)>,
}

/// The plan for delivering `raw` (envelope sender `from`) to `acct`.
pub async fn plan(core: &Core, acct: &Account, raw: &[u8], from: &str) -> Plan {
    let cfg = &core.config.sieve;
    if !cfg.enable {
        return Plan::keep();
    }
    match try_plan(core, acct, raw, from).await {
        Ok(Some(p)) => {
            metrics::counter!("petrel_sieve_runs_total", "result" => "ok").increment(1);
            p
        }
        Ok(None) => Plan::keep(),
        Err(e) => {
            metrics::counter!("petrel_sieve_runs_total", "result" => "error").increment(1);
            tracing::warn!(account = %acct.address, "Sieve script failed, message kept in the Inbox: {e}");
            Plan::keep()
        }
    }
}

async fn try_plan(
    core: &Core,
    acct: &Account,
    raw: &[u8],
    from: &str,
) -> Result<Option<Plan>, String> {
    let mail = &core.mail;
    let (all, active) = scripts::list(mail, acct.id)
        .await
        .map_err(|e| e.to_string())?;
    let Some(script) = active.and_then(|a| all.iter().find(|(n, _)| *n == a)) else {
        return Ok(None);
    };
    let name = script.1.name.clone();
    let compiled = super::compiler(&core.config.sieve)
        .compile(script.1.text.as_bytes())
        .map_err(|e| format!("script `{name}` does not compile: {e}"))?;
    let boxes = mail.mailboxes(acct.id).await.map_err(|e| e.to_string())?;
    let seen: HashMap<u64, i64> = mail
        .records::<Seen>(acct.id, Kind::SieveDuplicate)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|(k, s)| (k, s.until))
        .collect();
    let now = unix_now();
    let run = {
        let rt = super::runtime(&core.config.sieve, &core.config.hostname);
        let ctx = rt
            .filter(raw)
            .with_user_address(acct.address.as_str())
            .with_envelope(::sieve::Envelope::From, from)
            .with_envelope(::sieve::Envelope::To, acct.address.as_str());
        interpret(
            ctx,
            &name,
            compiled,
            &all,
            &boxes,
            &seen,
            now,
            &core.config.sieve,
        )
        .map_err(|e| format!("script `{name}`: {e}"))?
    };
    for (k, until) in &run.seen {
        mail.put_record(acct.id, Kind::SieveDuplicate, *k, &Seen { until: *until })
            .await
            .map_err(|e| e.to_string())?;
    }
    let mut plan = Plan {
        files: Vec::new(),
        redirects: Vec::new(),
    };
    for f in &run.files {
        let target = folder(core, acct, &boxes, f).await;
        if !plan.files.iter().any(|(t, _)| *t == target) {
            plan.files.push((target, f.flags.clone()));
        }
    }
    for (to, id) in &run.redirects {
        let msg = match run.created.get(id) {
            Some(m) => m.clone(),
            None => without_return_path(raw).to_vec(),
        };
        plan.redirects.push((to.clone(), msg));
    }
    tracing::info!(
        account = %acct.address,
        script = %name,
        files = plan.files.len(),
        redirects = plan.redirects.len(),
        "Sieve script ran"
    );
    Ok(Some(plan))
}

/// Runs the interpreter to the end, answering its questions from what
/// was read before.
#[allow(clippy::too_many_arguments)]
fn interpret(
    mut ctx: ::sieve::Context<'_>,
    name: &str,
    compiled: ::sieve::Sieve,
    all: &[(u64, Script)],
    boxes: &[Mailbox],
    seen: &HashMap<u64, i64>,
    now: i64,
    cfg: &crate::config::SieveConfig,
) -> Result<Run, String> {
    let mut run = Run::default();
    let mut input = Input::script(name.to_string(), compiled);
    while let Some(event) = ctx.run(input) {
        let event = event.map_err(|e| format!("{e:?}"))?;
        input = match event {
            Event::IncludeScript { name, optional } => {
                let wanted = match &name {
                    ::sieve::Script::Personal(n) => all.iter().find(|(_, s)| &s.name == n),
                    // No global scripts (RFC 6609 §3.2 :global) yet.
                    ::sieve::Script::Global(_) => None,
                };
                match wanted {
                    Some((_, s)) => {
                        let c = super::compiler(cfg)
                            .compile(s.text.as_bytes())
                            .map_err(|e| format!("included `{}` does not compile: {e}", s.name))?;
                        Input::script(name, c)
                    }
                    None if optional => Input::False,
                    None => return Err(format!("included script {name:?} does not exist")),
                }
            }
            Event::MailboxExists {
                mailboxes,
                special_use,
            } => {
                let exists = mailboxes.iter().all(|m| match m {
                    ::sieve::Mailbox::Name(n) => boxes.iter().any(|b| b.name == *n),
                    ::sieve::Mailbox::Id(i) => crate::jmap::id::parse_mailbox(i)
                        .is_some_and(|i| boxes.iter().any(|b| b.id == i)),
                }) && special_use.iter().all(|u| {
                    mailboxes.iter().all(|m| match m {
                        ::sieve::Mailbox::Name(n) => {
                            boxes.iter().any(|b| b.name == *n && has_role(b, u))
                        }
                        ::sieve::Mailbox::Id(_) => false,
                    })
                });
                exists.into()
            }
            Event::DuplicateId { id, expiry, last } => {
                let key = u64::from_be_bytes(
                    sha2::Sha256::digest(id.as_bytes())[..8]
                        .try_into()
                        .expect("8 bytes"),
                );
                let before = run
                    .seen
                    .iter()
                    .rev()
                    .find(|(k, _)| *k == key)
                    .map(|(_, u)| *u)
                    .or_else(|| seen.get(&key).copied());
                let dup = before.is_some_and(|u| u > now);
                if !dup || last {
                    run.seen.push((key, now + expiry as i64));
                }
                dup.into()
            }
            Event::Keep { flags, .. } => {
                run.files.push(FileAct {
                    folder: None,
                    mailbox_id: None,
                    special_use: None,
                    create: false,
                    flags,
                });
                Input::True
            }
            Event::FileInto {
                folder,
                flags,
                mailbox_id,
                special_use,
                create,
                ..
            } => {
                run.files.push(FileAct {
                    folder: Some(folder),
                    mailbox_id,
                    special_use,
                    create,
                    flags,
                });
                Input::True
            }
            Event::SendMessage {
                recipient,
                message_id,
                ..
            } => {
                match recipient {
                    Recipient::Address(a) => run.redirects.push((a, message_id)),
                    Recipient::Group(list) => {
                        run.redirects
                            .extend(list.into_iter().map(|a| (a, message_id)));
                    }
                    Recipient::List(_) => {}
                }
                Input::True
            }
            Event::CreatedMessage {
                message_id,
                message,
            } => {
                run.created.insert(message_id, message);
                Input::True
            }
            Event::Discard => Input::True,
            // Not offered, so not reached: answered as done.
            Event::Reject { .. } | Event::Notify { .. } | Event::SetEnvelope { .. } => Input::True,
            Event::ListContains { .. } | Event::Function { .. } => Input::False,
        };
    }
    Ok(run)
}

/// RFC 6154 role of a mailbox as Sieve's special-use names it
/// (`\Junk`).
fn has_role(b: &Mailbox, special_use: &str) -> bool {
    b.role.as_deref().is_some_and(|r| {
        r.trim_start_matches('\\')
            .eq_ignore_ascii_case(special_use.trim_start_matches('\\'))
    })
}

/// Where one `fileinto` goes: the mailbox its id names (RFC 9042), else
/// the one with its special use (RFC 8579), else its name — made when
/// `:create` asks (RFC 5490 §3.2) — else the Inbox.
async fn folder(core: &Core, acct: &Account, boxes: &[Mailbox], f: &FileAct) -> Folder {
    let Some(name) = &f.folder else {
        return Folder::Role("inbox".into());
    };
    if let Some(id) = f
        .mailbox_id
        .as_deref()
        .and_then(crate::jmap::id::parse_mailbox)
    {
        if boxes.iter().any(|b| b.id == id) {
            return Folder::Id(id);
        }
    }
    if let Some(b) = f
        .special_use
        .as_deref()
        .and_then(|u| boxes.iter().find(|b| has_role(b, u)))
    {
        return Folder::Id(b.id);
    }
    if let Some(b) = boxes
        .iter()
        .find(|b| b.name == *name || (name.eq_ignore_ascii_case("INBOX") && b.name == "INBOX"))
    {
        return Folder::Id(b.id);
    }
    if f.create {
        match core.mail.create_mailbox(acct.id, name).await {
            Ok(b) => {
                if let Some(u) = &f.special_use {
                    let role = u.trim_start_matches('\\').to_ascii_lowercase();
                    let _ = core.mail.set_mailbox_role(acct.id, b.id, Some(role)).await;
                }
                return Folder::Id(b.id);
            }
            Err(e) => {
                tracing::warn!(account = %acct.address, mailbox = %name, "Sieve fileinto :create failed, kept in the Inbox: {e}")
            }
        }
    } else {
        tracing::info!(account = %acct.address, mailbox = %name, "Sieve fileinto names no mailbox, kept in the Inbox");
    }
    Folder::Role("inbox".into())
}

/// The message without the Return-Path that final delivery put first
/// (a redirect is not a final delivery).
fn without_return_path(raw: &[u8]) -> &[u8] {
    if raw.len() >= 12 && raw[..12].eq_ignore_ascii_case(b"Return-Path:") {
        if let Some(p) = raw.windows(2).position(|w| w == b"\r\n") {
            return &raw[p + 2..];
        }
    }
    raw
}

/// The envelope sender final delivery recorded in the Return-Path
/// field it put first; "" for the null sender or none.
pub fn envelope_from(raw: &[u8]) -> String {
    if raw.len() < 12 || !raw[..12].eq_ignore_ascii_case(b"Return-Path:") {
        return String::new();
    }
    let end = raw
        .windows(2)
        .position(|w| w == b"\r\n")
        .unwrap_or(raw.len());
    let v = String::from_utf8_lossy(&raw[12..end]);
    v.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_path_is_read_and_removed() {
        let raw = b"Return-Path: <ann@example.org>\r\nSubject: x\r\n\r\nbody";
        assert_eq!(envelope_from(raw), "ann@example.org");
        assert_eq!(without_return_path(raw), b"Subject: x\r\n\r\nbody");
        assert_eq!(envelope_from(b"Return-Path: <>\r\n\r\n"), "");
        assert_eq!(envelope_from(b"Subject: x\r\n\r\n"), "");
        assert_eq!(without_return_path(b"Subject: x\r\n"), b"Subject: x\r\n");
    }
}
