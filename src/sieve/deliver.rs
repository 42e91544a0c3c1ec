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

use super::scripts::Script;
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
    /// What to send through the queue.
    pub redirects: Vec<Outgoing>,
    /// Why the script failed, for the notice the account gets (RFC 5228
    /// §2.10.6); at most one a day per script.
    pub error: Option<String>,
    /// `reject` or `ereject` (RFC 5429): the reason and whether it was
    /// `ereject`.
    pub reject: Option<(String, bool)>,
}

impl Plan {
    /// The implicit keep: the Inbox, no flags.
    pub fn keep() -> Plan {
        Plan {
            files: vec![(Folder::Role("inbox".into()), Vec::new())],
            redirects: Vec::new(),
            error: None,
            reject: None,
        }
    }
}

/// A message a run sends: a redirect keeps the original envelope
/// sender; a response the script wrote (vacation, RFC 5230 §5.1) goes
/// from the null sender.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub to: String,
    pub raw: Vec<u8>,
    pub from: String,
    pub kind: Sent,
}

/// What an [`Outgoing`] message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// RFC 5228 §4.2, from the original envelope sender.
    Redirect,
    /// RFC 5230, from the null sender.
    Vacation,
    /// RFC 5435/5436 `notify` with a mailto: URI.
    Notification,
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
    reject: Option<(String, bool)>,
    /// Notification messages (RFC 5436) sieve-rs wrote, by message id.
    notices: HashMap<usize, Vec<u8>>,
}

/// The plan for delivering `raw` (envelope sender `from`) to `acct`.
pub async fn plan(core: &Core, acct: &Account, raw: &[u8], from: &str, to: &str) -> Plan {
    let cfg = &core.config.sieve;
    if !cfg.enable {
        return Plan::keep();
    }
    match try_plan(core, acct, raw, from, to).await {
        Ok(Some(p)) => {
            metrics::counter!("petrel_sieve_runs_total", "result" => "ok").increment(1);
            p
        }
        Ok(None) => Plan::keep(),
        Err(e) => {
            metrics::counter!("petrel_sieve_runs_total", "result" => "error").increment(1);
            tracing::warn!(account = %acct.address, "Sieve script failed, message kept in the Inbox: {e}");
            let mut p = Plan::keep();
            if first_today(core, acct.id, &e).await {
                p.error = Some(e);
            }
            p
        }
    }
}

async fn try_plan(
    core: &Core,
    acct: &Account,
    raw: &[u8],
    from: &str,
    to: &str,
) -> Result<Option<Plan>, String> {
    let mail = &core.mail;
    let Some(cached) = super::account_scripts(core, acct.id)
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(None);
    };
    let (all, name) = (&cached.all, cached.name.clone());
    let compiled = match &cached.compiled {
        Ok(c) => c.clone(),
        Err(e) => return Err(format!("script `{name}` does not compile: {e}")),
    };
    // The mailboxes are read before the run only for scripts that ask
    // whether one exists; otherwise after it, if it names one.
    let asks = all.iter().any(|(_, s)| {
        let t = s.text.to_ascii_lowercase();
        t.contains("mailboxexists") || t.contains("specialuse_exists")
    });
    let mut boxes = if asks {
        mail.mailboxes(acct.id).await.map_err(|e| e.to_string())?
    } else {
        Vec::new()
    };
    // Only scripts that can ask "seen before?" (duplicate, vacation) need
    // the tracked ids read.
    let tracks = all
        .iter()
        .any(|(_, s)| s.text.contains("duplicate") || s.text.contains("vacation"));
    let seen: HashMap<u64, i64> = if tracks {
        mail.records::<Seen>(acct.id, Kind::SieveDuplicate)
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|(k, s)| (k, s.until))
            .collect()
    } else {
        HashMap::new()
    };
    // Only scripts that include a global one need those read.
    let globals = if all.iter().any(|(_, s)| s.text.contains(":global")) {
        super::global::all(core).await.map_err(|e| e.to_string())?
    } else {
        Default::default()
    };
    let now = unix_now();
    let run = {
        let rt = super::runtime(&core.config.sieve, &core.config.hostname);
        let ctx = rt
            .filter(raw)
            .with_user_address(acct.address.as_str())
            .with_envelope(::sieve::Envelope::From, from)
            .with_envelope(::sieve::Envelope::To, envelope_to(to, acct));
        interpret(
            ctx,
            &name,
            compiled,
            all,
            &globals,
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
    if !asks
        && run
            .files
            .iter()
            .any(|f| f.folder.is_some() || f.mailbox_id.is_some() || f.special_use.is_some())
    {
        boxes = mail.mailboxes(acct.id).await.map_err(|e| e.to_string())?;
    }
    let mut plan = Plan {
        files: Vec::new(),
        redirects: Vec::new(),
        error: None,
        reject: run.reject.clone(),
    };
    // RFC 5228 §2.10.3: one copy per mailbox, whatever the script asks
    // (the flags of every request for it together).
    for f in &run.files {
        let target = folder(core, acct, &boxes, f).await;
        match plan.files.iter_mut().find(|(t, _)| *t == target) {
            Some((_, flags)) => {
                for fl in &f.flags {
                    if !flags.contains(fl) {
                        flags.push(fl.clone());
                    }
                }
            }
            None => plan.files.push((target, f.flags.clone())),
        }
    }
    for (to, id) in &run.redirects {
        if let Some(m) = run.notices.get(id) {
            // RFC 5436 §2.7: one notification per address and run; from
            // the null sender when the message came from it, else from
            // the user.
            let again = plan
                .redirects
                .iter()
                .any(|o| o.kind == Sent::Notification && o.to.eq_ignore_ascii_case(to));
            if !again && !super::notify::auto_submitted(raw) {
                plan.redirects.push(Outgoing {
                    to: to.clone(),
                    raw: encoded_subject(&super::notify::finish(
                        m,
                        &acct.address,
                        &core.config.hostname,
                    )),
                    from: if from.is_empty() {
                        String::new()
                    } else {
                        acct.address.clone()
                    },
                    kind: Sent::Notification,
                });
            }
            continue;
        }
        let (msg, sender, kind) = match run.created.get(id) {
            // A response (vacation) also meets Petrel's own RFC 3834
            // rules, those of the JMAP VacationResponse: sieve-rs misses
            // an Auto-Submitted field, which mail-parser names itself.
            Some(m) => match crate::vacation::should_reply(raw, acct) {
                Ok(_) => (encoded_subject(m), String::new(), Sent::Vacation),
                Err(why) => {
                    tracing::info!(account = %acct.address, to = %to, "Sieve vacation response not sent: {why}");
                    continue;
                }
            },
            None => {
                // RFC 5228 §4.2: one Received field more than the message
                // came with (the loop count of RFC 5321 §6.3 sees it).
                let mut m = format!(
                    "Received: by {} (Petrel) with Sieve redirect for <{to}>; {}\r\n",
                    core.config.hostname,
                    crate::core::rfc5322_date(now)
                )
                .into_bytes();
                m.extend_from_slice(without_return_path(raw));
                (m, from.to_string(), Sent::Redirect)
            }
        };
        plan.redirects.push(Outgoing {
            to: to.clone(),
            raw: msg,
            from: sender,
            kind,
        });
    }
    // Tracked ids past their time go (RFC 5230 §4.2 needs 1,000 kept;
    // these are all the live ones).
    for (k, until) in &seen {
        if *until <= now && !run.seen.iter().any(|(s, _)| s == k) {
            let _ = mail.delete_record(acct.id, Kind::SieveDuplicate, *k).await;
        }
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
    compiled: std::sync::Arc<::sieve::Sieve>,
    all: &[(u64, Script)],
    globals: &[Script],
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
                    ::sieve::Script::Personal(n) => {
                        all.iter().find(|(_, s)| &s.name == n).map(|(_, s)| s)
                    }
                    // RFC 6609 §3.2: the administrator's scripts, which
                    // must compile as a user's to be included here.
                    ::sieve::Script::Global(n) => globals.iter().find(|s| &s.name == n),
                };
                match wanted {
                    Some(s) => {
                        let c = super::compile_cached(cfg, &s.text, super::Trust::User)
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
            // The only message a script writes here is its vacation
            // response; a second is an error (RFC 5230 §4.7).
            Event::CreatedMessage {
                message_id,
                message,
            } => {
                if super::notify::is_notification(&message) {
                    run.notices.insert(message_id, message);
                } else if !run.created.is_empty() {
                    return Err("a script may take one vacation action (RFC 5230 §4.7)".into());
                } else {
                    run.created.insert(message_id, message);
                }
                Input::True
            }
            Event::Discard => Input::True,
            // RFC 5429 §2.4: one reject per script, and none with a
            // vacation response.
            Event::Reject { extended, reason } => {
                if run.reject.is_some() {
                    return Err(
                        "a script may take one reject or ereject action (RFC 5429 §2.4)".into(),
                    );
                }
                run.reject = Some((reason, extended));
                Input::True
            }
            // RFC 5435 §3.2: a method not supported is a run-time error
            // (sieve-rs hands every method but mailto: over here).
            Event::Notify { method, .. } => {
                return Err(format!(
                    "the notification method of `{method}` is not supported (only mailto:)"
                ))
            }
            // Not offered, so not reached: answered as done.
            Event::SetEnvelope { .. } => Input::True,
            Event::ListContains { .. } | Event::Function { .. } => Input::False,
        };
    }
    if run.reject.is_some() && !run.created.is_empty() {
        return Err("reject cannot go with vacation (RFC 5429 §2.4)".into());
    }
    // RFC 5429 §2.4: a message is delivered or refused, not both.
    if run.reject.is_some() && (!run.files.is_empty() || !run.redirects.is_empty()) {
        return Err(
            "reject cannot go with keep, fileinto or redirect (RFC 5429 §2.4): the message was kept instead"
                .into(),
        );
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
    let inbox = || match boxes.iter().find(|b| b.name == "INBOX") {
        Some(b) => Folder::Id(b.id),
        None => Folder::Role("inbox".into()),
    };
    let Some(name) = &f.folder else {
        return inbox();
    };
    if name.eq_ignore_ascii_case("INBOX") {
        return inbox();
    }
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
    if let Some(b) = boxes.iter().find(|b| b.name == *name) {
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
    inbox()
}

/// Whether this failure is the first of its kind today for the account
/// (the notice is sent once a day, not for every message).
async fn first_today(core: &Core, acct: u32, error: &str) -> bool {
    let day = unix_now() / 86400;
    let key = u64::from_be_bytes(
        sha2::Sha256::digest(format!("sieve-error {day} {error}").as_bytes())[..8]
            .try_into()
            .expect("8 bytes"),
    );
    let mail = &core.mail;
    if matches!(
        mail.record::<Seen>(acct, Kind::SieveDuplicate, key).await,
        Ok(Some(_))
    ) {
        return false;
    }
    let until = (day + 1) * 86400;
    mail.put_record(acct, Kind::SieveDuplicate, key, &Seen { until })
        .await
        .is_ok()
}

/// The notice an account gets when its script failed (RFC 5228 §2.10.6:
/// the user learns that an error occurred and which actions were
/// taken: none but the implicit keep).
pub fn error_notice(hostname: &str, to: &str, error: &str) -> Vec<u8> {
    format!(
        "From: Mail Delivery <postmaster@{hostname}>\r\nTo: <{to}>\r\nSubject: Your Sieve script failed\r\n\
         Date: {}\r\nMessage-ID: <{}>\r\nAuto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n\
         Your Sieve script failed while a message was delivered to you:\r\n\r\n  {}\r\n\r\n\
         None of its actions were taken: the message was kept in your Inbox.\r\n\
         This notice comes at most once a day for the same error.\r\n",
        crate::core::rfc5322_date(unix_now()),
        crate::core::new_message_id(hostname),
        error.replace(['\r', '\n'], " ")
    )
    .into_bytes()
}

/// A response with its Subject as RFC 2047 encoded words when it is not
/// ASCII (RFC 5230 §4.3; sieve-rs writes it as UTF-8).
fn encoded_subject(msg: &[u8]) -> Vec<u8> {
    use base64::Engine;
    let head_end = msg
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(msg.len());
    let Some(start) = msg[..head_end]
        .split(|&b| b == b'\n')
        .scan(0, |pos, line| {
            let at = *pos;
            *pos += line.len() + 1;
            Some((at, line))
        })
        .find(|(_, l)| l.len() >= 8 && l[..8].eq_ignore_ascii_case(b"Subject:"))
        .map(|(at, _)| at)
    else {
        return msg.to_vec();
    };
    let end = msg[start..]
        .windows(2)
        .position(|w| w == b"\r\n")
        .map_or(head_end, |p| start + p);
    let value = String::from_utf8_lossy(&msg[start + 8..end])
        .trim()
        .to_string();
    if value.is_ascii() {
        return msg.to_vec();
    }
    // Encoded words of at most 64 characters (a line within 78): 39
    // octets of UTF-8 each,
    // never splitting a character.
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in value.chars() {
        if chunk.len() + c.len_utf8() > 39 {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    words.push(chunk);
    let b64 = base64::engine::general_purpose::STANDARD;
    let encoded: Vec<String> = words
        .iter()
        .map(|w| format!("=?utf-8?B?{}?=", b64.encode(w)))
        .collect();
    let mut out = msg[..start].to_vec();
    out.extend_from_slice(format!("Subject: {}", encoded.join("\r\n ")).as_bytes());
    out.extend_from_slice(&msg[end..]);
    out
}

/// The message without the Return-Path that final delivery put first
/// (a redirect is not a final delivery).
pub(crate) fn without_return_path(raw: &[u8]) -> &[u8] {
    match return_path_line(raw) {
        Some(l) if l.len() + 2 <= raw.len() => &raw[l.len() + 2..],
        _ => raw,
    }
}

/// The Return-Path field final delivery put first, if it did: its line
/// up to the CRLF (or the end).
fn return_path_line(raw: &[u8]) -> Option<&[u8]> {
    if raw.len() < 12 || !raw[..12].eq_ignore_ascii_case(b"Return-Path:") {
        return None;
    }
    let end = raw
        .windows(2)
        .position(|w| w == b"\r\n")
        .unwrap_or(raw.len());
    Some(&raw[..end])
}

/// The envelope "to" a script sees: the address the mail was sent to,
/// or the account's own when that is not an address (a bare
/// "postmaster").
fn envelope_to<'a>(to: &'a str, acct: &'a Account) -> &'a str {
    if to.contains('@') {
        to
    } else {
        acct.address.as_str()
    }
}

/// The envelope sender final delivery recorded in the Return-Path
/// field it put first; "" for the null sender or none.
pub fn envelope_from(raw: &[u8]) -> String {
    return_path_line(raw)
        .map(|l| {
            String::from_utf8_lossy(&l[12..])
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run of `script` for joe as deliveries run it (the extensions
    /// offered, no mailboxes), the envelope sender `from`.
    fn run_for(script: &str, from: &str, raw: &str) -> Result<Run, String> {
        let cfg = crate::config::SieveConfig::default();
        let compiled = super::super::compiler(&cfg)
            .compile(script.as_bytes())
            .map_err(|e| format!("compile: {e}"))?;
        let rt = super::super::runtime(&cfg, "mx.test");
        let ctx = rt
            .filter(raw.as_bytes())
            .with_user_address("joe@example.org")
            .with_envelope(::sieve::Envelope::From, from)
            .with_envelope(::sieve::Envelope::To, "joe@example.org");
        interpret(
            ctx,
            "t",
            compiled.into(),
            &[],
            &[],
            &[],
            &HashMap::new(),
            0,
            &cfg,
        )
    }

    /// What a script asks for a message (envelope from ann, with a source
    /// route).
    fn actions(script: &str, raw: &str) -> Result<Vec<String>, String> {
        let run = run_for(script, "<@relay.test:ann@remote.test>", raw)?;
        let mut out: Vec<String> = run
            .files
            .iter()
            .map(|f| {
                f.folder
                    .clone()
                    .map_or("keep".into(), |n| format!("fileinto {n}"))
            })
            .collect();
        out.extend(run.redirects.iter().map(|(to, _)| format!("redirect {to}")));
        Ok(out)
    }

    const MSG: &str =
        "From: Ann <ann@remote.test>\r\nTo: joe@example.org\r\nCc: cc@example.org\r\n\
        Bcc: bcc@example.org\r\nSender: s@remote.test\r\nResent-From: rf@remote.test\r\n\
        Resent-To: rt@example.org\r\nSubject: =?ISO-8859-1?Q?caf=E9?= ABC\r\n\r\nbody\r\n";

    fn files(script: &str) -> Vec<String> {
        actions(script, MSG).unwrap_or_else(|e| panic!("{e}: {script}"))
    }

    const F: &str = "require \"fileinto\";\n";

    /// The responses a script writes for a message from `from`.
    fn responses(script: &str, from: &str, raw: &str) -> Result<Vec<String>, String> {
        let run = run_for(script, from, raw)?;
        Ok(run
            .redirects
            .iter()
            .filter_map(|(_, id)| run.created.get(id))
            .map(|m| String::from_utf8_lossy(&encoded_subject(m)).into_owned())
            .collect())
    }

    /// RFC 5429 §2.4: a reject cancels the implicit keep; a second
    /// reject, a reject with vacation, and a reject with an action that
    /// delivers (keep, fileinto, redirect) are errors (the message is
    /// then kept).
    #[test]
    fn reject_goes_alone() {
        let run = run_for("require \"ereject\";\nereject \"no\";", "a@b.test", MSG).unwrap();
        assert_eq!(run.reject, Some(("no".to_string(), true)));
        assert!(run.files.is_empty(), "the implicit keep is cancelled");
        for script in [
            "require \"reject\";\nreject \"a\";\nreject \"b\";",
            "require [\"reject\", \"ereject\"];\nreject \"a\";\nereject \"b\";",
            "require [\"reject\", \"vacation\"];\nvacation \"away\";\nreject \"a\";",
            "require [\"reject\", \"fileinto\"];\nreject \"a\";\nfileinto \"x\";",
            "require \"reject\";\nreject \"a\";\nkeep;",
            "require \"reject\";\nreject \"a\";\nredirect \"c@d.test\";",
        ] {
            let r = run_for(
                script,
                "a@b.test",
                "From: a@b.test\r\nTo: joe@example.org\r\n\r\nx\r\n",
            );
            assert!(r.is_err(), "{script}");
        }
    }

    /// RFC 5435 §4, §5: valid_notify_method and notify_method_capability
    /// (mailto: only; an unknown method or item is false, not an error);
    /// §3.2: notify with another method is an error; §7: notify keeps
    /// the implicit keep; §3.4: importance 2 by default.
    #[test]
    fn notify_tests_and_methods() {
        let script = "require [\"enotify\", \"fileinto\"];\n\
            if valid_notify_method \"mailto:a@b.test\" { fileinto \"valid\"; }\n\
            if valid_notify_method \"xmpp:a@b.test\" { fileinto \"xmpp\"; }\n\
            if valid_notify_method \"mailto:\" { fileinto \"empty\"; }\n\
            if notify_method_capability \"xmpp:a@b.test\" \"online\" \"yes\" { fileinto \"x-online\"; }\n\
            if notify_method_capability \"mailto:a@b.test\" \"no-such-item\" \"yes\" { fileinto \"item\"; }\n\
            notify \"mailto:a@b.test\";\n";
        assert_eq!(files(script), ["fileinto valid", "redirect a@b.test"]);
        assert_eq!(
            files("require \"enotify\";\nnotify \"mailto:a@b.test\";\n"),
            ["keep", "redirect a@b.test"],
            "notify leaves the implicit keep"
        );
        let run = run_for(script, "ann@remote.test", MSG).unwrap();
        let note = String::from_utf8_lossy(run.notices.values().next().expect("a notification"));
        assert!(note.contains("Importance: Normal"), "{note}");
        // RFC 5436 §2.7: no :message, no subject header: the message's.
        assert!(note.contains("Subject: caf\u{e9} ABC"), "{note}");
        let other = "require \"enotify\";\nnotify \"xmpp:a@b.test\";\n";
        let e = run_for(other, "ann@remote.test", MSG).unwrap_err();
        assert!(e.contains("not supported"), "{e}");
    }

    /// RFC 5230 through Petrel's runtime: the response's header (default
    /// Subject "Auto: …", From the user, To the sender, In-Reply-To,
    /// References, Auto-Submitted, Date, a non-ASCII subject as an
    /// encoded word); none when the user is not a named recipient, for
    /// a list, or for a mailer-daemon; vacation beside fileinto is fine,
    /// two vacations are an error.
    #[test]
    fn vacation_responses() {
        let v = "require [\"vacation\", \"fileinto\"];\nvacation \"Away.\";\nfileinto \"x\";";
        let msg = "From: ann@remote.test\r\nTo: joe@example.org\r\nSubject: plans\r\nMessage-ID: <m1@remote.test>\r\n\r\nhi\r\n";
        let r = responses(v, "ann@remote.test", msg).unwrap();
        assert_eq!(r.len(), 1, "{r:?}");
        let h = &r[0];
        for want in [
            "Subject: Auto: plans",
            "From: joe@example.org",
            "To: ann@remote.test",
            "In-Reply-To: <m1@remote.test>",
            "References: <m1@remote.test>",
            "Auto-Submitted: auto-replied",
            "Date: ",
        ] {
            assert!(h.contains(want), "{want}: {h}");
        }
        let utf = "require \"vacation\";\nvacation :subject \"Café\" \"Away.\";";
        let r = responses(utf, "ann@remote.test", msg).unwrap();
        assert!(r[0].contains("Subject: =?utf-8?B?Q2Fmw6k=?="), "{}", r[0]);
        let long = "é".repeat(40);
        let enc = String::from_utf8(encoded_subject(
            format!("Subject: {long}\r\nTo: x\r\n\r\nb").as_bytes(),
        ))
        .unwrap();
        assert!(
            enc.contains("?=\r\n =?utf-8?B?") && enc.ends_with("\r\nTo: x\r\n\r\nb"),
            "{enc}"
        );
        assert!(enc.lines().all(|l| l.len() <= 78), "{enc}");
        let bare = msg.replace("Subject: plans\r\n", "");
        let r = responses(v, "ann@remote.test", &bare).unwrap();
        assert!(r[0].contains("Subject: Automated reply"), "{}", r[0]);
        let bcc = msg.replace("To: joe@example.org", "To: team@remote.test");
        assert!(responses(v, "ann@remote.test", &bcc).unwrap().is_empty());
        let list = msg.replace("Subject:", "List-Id: <l.remote.test>\r\nSubject:");
        assert!(responses(v, "ann@remote.test", &list).unwrap().is_empty());
        assert!(responses(v, "mailer-daemon@remote.test", msg)
            .unwrap()
            .is_empty());
        let twice = "require \"vacation\";\nvacation \"a\";\nvacation \"b\";";
        assert!(responses(twice, "ann@remote.test", msg).is_err());
    }

    /// RFC 5228 §5: address, allof, anyof, exists, false, header, not,
    /// size, true; §5.1 address on From, To, Cc, Bcc, Sender,
    /// Resent-From, Resent-To; §2.4.1 integers to 2^31-1; §2.7.3 the
    /// i;octet and i;ascii-casemap comparators; §2.7.2 encoded words in
    /// ISO-8859-1 compared as UTF-8; §5.4 envelope without the source
    /// route.
    #[test]
    fn base_tests_and_comparators() {
        for h in [
            "from",
            "to",
            "cc",
            "bcc",
            "sender",
            "resent-from",
            "resent-to",
        ] {
            let s = format!("{F}if address :domain :is \"{h}\" [\"remote.test\", \"example.org\"] {{ fileinto \"{h}\"; }}");
            assert_eq!(files(&s), [format!("fileinto {h}")], "{h}");
        }
        let s = format!(
            "{F}if allof (exists \"Subject\", not exists \"X-None\", true, not false,\n\
             anyof (false, size :under 2147483647), size :over 0,\n\
             header :contains \"Subject\" \"café\") {{ fileinto \"all\"; }}"
        );
        assert_eq!(files(&s), ["fileinto all"]);
        let s = format!("{F}if header :comparator \"i;octet\" :contains \"Subject\" \"abc\" {{ fileinto \"octet\"; }}\n\
            if header :comparator \"i;ascii-casemap\" :contains \"Subject\" \"abc\" {{ fileinto \"casemap\"; }}");
        assert_eq!(files(&s), ["fileinto casemap"]);
        let s = "require [\"fileinto\", \"envelope\"];\nif envelope :is \"from\" \"ann@remote.test\" { fileinto \"routed\"; }".to_string();
        assert_eq!(files(&s), ["fileinto routed"]);
    }

    /// §2.4.2 strings (escapes, multi-line with dot-stuffing), §2.4.2.4
    /// encoded-character (a malformed sequence stays as written), §2.10.7
    /// fifteen nested blocks and test lists (an invalid header name is
    /// refused when the script is stored),, §3.1 elsif only after if,
    /// §2.10.5 an extension not required is unknown (§3.2, require first:
    /// `scripts::tests::require_comes_first`).
    #[test]
    fn grammar() {
        let s = format!(
            "{F}if header :is \"X-Q\" \"a\\\"b\\\\c\" {{ fileinto text:\r\n..dot\r\n.\r\n; }}"
        );
        assert_eq!(
            actions(&s, "X-Q: a\"b\\c\r\n\r\n").unwrap(),
            ["fileinto .dot\r\n"]
        );
        // sieve-rs refuses an invalid header name when the script is
        // compiled (stored), so it never errs at delivery.
        let s = format!("{F}if header :is \"bad name:\" \"x\" {{ fileinto \"no\"; }}");
        assert!(actions(&s, MSG)
            .unwrap_err()
            .contains("Invalid header name"));
        let s = "require [\"fileinto\", \"encoded-character\"];\n\
            if header :contains \"Subject\" \"${hex:41 42}\" { fileinto \"${unicode: zz}\"; }";
        assert_eq!(files(s), ["fileinto ${unicode: zz}"]);
        let nested = format!(
            "{F}{}fileinto \"deep\";{}",
            "if true { ".repeat(15),
            " }".repeat(15)
        );
        assert_eq!(files(&nested), ["fileinto deep"]);
        let tests = format!(
            "{F}if {}true{} {{ fileinto \"deep\"; }}",
            "allof(".repeat(15),
            ")".repeat(15)
        );
        assert_eq!(files(&tests), ["fileinto deep"]);
        for bad in [
            "if true { keep; } else { keep; } elsif true { keep; }",
            "fileinto \"x\";",
        ] {
            assert!(actions(bad, MSG).is_err(), "{bad}");
        }
    }

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
