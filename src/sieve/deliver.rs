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

use ::sieve::compiler::grammar::actions::action_redirect::Notify;
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
    /// The mailboxes the message goes into, each with its flags and,
    /// where the script changed its header (editheader, RFC 5293), the
    /// message as changed; none when the script discarded it.
    pub files: Vec<(Folder, Vec<String>, Option<Vec<u8>>)>,
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
            files: vec![(Folder::Role("inbox".into()), Vec::new(), None)],
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
    /// The message's id in the run: 0 the original, else one the script
    /// changed (in `Run::modified`).
    message: usize,
}

/// What a run asked, before it is carried out.
#[derive(Debug, Default)]
pub(super) struct Run {
    files: Vec<FileAct>,
    redirects: Vec<(String, usize)>,
    /// The vacation response (RFC 5230), by message id.
    created: HashMap<usize, Vec<u8>>,
    /// The message as editheader (RFC 5293) left it at each action that
    /// used it, by message id.
    modified: HashMap<usize, Vec<u8>>,
    seen: Vec<(u64, i64)>,
    reject: Option<(String, bool)>,
    /// Notification messages (RFC 5436) sieve-rs wrote, by message id.
    notices: HashMap<usize, Vec<u8>>,
    /// Why a vacation action sent nothing (RFC 3834, Petrel's rules).
    not_responded: Option<&'static str>,
}

impl Run {
    /// The vacation response the run wrote, and whom it goes to.
    pub(super) fn vacation(&self) -> Option<(&str, &[u8])> {
        self.redirects
            .iter()
            .find_map(|(to, id)| self.created.get(id).map(|m| (to.as_str(), m.as_slice())))
    }

    /// The ids `duplicate` and `vacation` saw in the run.
    pub(super) fn seen(&self) -> &[(u64, i64)] {
        &self.seen
    }
}

/// The plan for delivering `raw` (envelope sender `from`) to `acct`:
/// the scripts' and then, where they sent no response and the message
/// is stored, the JMAP vacation response's ([`super::responder`]).
pub async fn plan(core: &Core, acct: &Account, raw: &[u8], from: &str, to: &str) -> Plan {
    let mut p = scripts_plan(core, acct, raw, from, to).await;
    if !p.files.is_empty() && !p.redirects.iter().any(|o| o.kind == Sent::Vacation) {
        match super::responder::respond(core, acct, raw, from, to).await {
            Ok(Some(o)) => p.redirects.push(o),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(account = %acct.address, "vacation response not sent: {e}")
            }
        }
    }
    p
}

/// RFC 5235 spamtest's view of the spam filter's score (the
/// X-Spam-Score field the MTA port writes after removing the sender's):
/// none is "not tested", 0 or less "definitely not spam", junk-score or
/// more "definitely spam", and in between the score's share of it.
pub fn spam_status(raw: &[u8], junk_score: f64) -> ::sieve::SpamStatus {
    let score = crate::spam::filter::score_field(raw).and_then(|v| v.parse::<f64>().ok());
    match score {
        None => ::sieve::SpamStatus::Unknown,
        Some(s) if s <= 0.0 => ::sieve::SpamStatus::Ham,
        Some(s) if s >= junk_score => ::sieve::SpamStatus::Spam,
        Some(s) => ::sieve::SpamStatus::MaybeSpam(s / junk_score),
    }
}

async fn scripts_plan(core: &Core, acct: &Account, raw: &[u8], from: &str, to: &str) -> Plan {
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
    let cfg = &core.config.sieve;
    let own = super::account_scripts(core, acct.id)
        .await
        .map_err(|e| e.to_string())?;
    let around = !cfg.delivery.before.is_empty() || !cfg.delivery.after.is_empty();
    if own.is_none() && !around {
        return Ok(None);
    }
    let none = Vec::new();
    let all = own.as_ref().map_or(&none, |c| &c.all);
    let own_compiled = match &own {
        Some(c) => Some(
            c.compiled
                .clone()
                .map_err(|e| format!("script `{}` does not compile: {e}", c.name))?,
        ),
        None => None,
    };
    // The global scripts, for `include :global` and those run around the
    // user's.
    let globals = if around || all.iter().any(|(_, s)| s.text.contains(":global")) {
        super::global::all(core).await.map_err(|e| e.to_string())?
    } else {
        Default::default()
    };
    let (name, compiled) = match (around, &own, own_compiled) {
        (false, Some(c), Some(compiled)) => (c.name.clone(), compiled),
        _ => {
            let text = around_text(
                &cfg.delivery,
                own.as_ref().map(|c| c.name.as_str()),
                &globals,
            );
            let compiled = super::compile_cached(cfg, &text, super::Trust::User)
                .map_err(|e| format!("the delivery scripts do not compile: {e}"))?;
            (AROUND.to_string(), compiled)
        }
    };
    // Every script the run may reach: the account's, and the global
    // ones when any may be included.
    let texts: Vec<&str> = all
        .iter()
        .map(|(_, s)| s.text.as_str())
        .chain(globals.iter().map(|g| g.text.as_str()))
        .collect();
    // The mailboxes are read before the run only for scripts that ask
    // whether one exists; otherwise after it, if it names one.
    // RFC 5490: so do scripts that read annotations (IMAP METADATA, RFC
    // 5464) of the account's mailboxes and its server entries, as the
    // account itself reads them; an error reading them fails the run as
    // one reading the script would (§5).
    let wants_metadata = texts.iter().any(|t| t.contains("metadata"));
    let asks = wants_metadata
        || texts.iter().any(|t| {
            let t = t.to_ascii_lowercase();
            t.contains("mailboxexists") || t.contains("specialuse_exists")
        });
    let mut boxes = if asks {
        mail.mailboxes(acct.id).await.map_err(|e| e.to_string())?
    } else {
        Vec::new()
    };
    let metadata = if wants_metadata {
        read_metadata(core, acct.id, &boxes).await?
    } else {
        Vec::new()
    };
    // Only scripts that can ask "seen before?" (duplicate, vacation) need
    // the tracked ids read; only vacation needs Petrel's RFC 3834 rules.
    let tracks = texts
        .iter()
        .any(|t| t.contains("duplicate") || t.contains("vacation"));
    let seen = if tracks {
        read_seen(core, acct.id).await?
    } else {
        HashMap::new()
    };
    let now = unix_now();
    let known = Known {
        all,
        globals: &globals,
        boxes: &boxes,
        seen: &seen,
        now,
        no_response: if texts.iter().any(|t| t.contains("vacation")) {
            crate::vacation::sender_allows_reply(raw).err()
        } else {
            None
        },
    };
    let run = {
        let mut rt = super::runtime(cfg, &core.config.hostname);
        if name == AROUND {
            // The script around the user's is one include more.
            rt.set_max_nested_includes(cfg.max_include_depth + 1);
        }
        let mut ctx = rt
            .filter(raw)
            .with_user_address(acct.address.as_str())
            .with_envelope(::sieve::Envelope::From, from)
            .with_envelope(::sieve::Envelope::To, envelope_to(to, acct))
            .with_spam_status(spam_status(raw, core.config.spam.junk_score));
        for (m, v) in metadata {
            ctx = ctx.with_metadata(m, v);
        }
        interpret(ctx, &name, compiled, &known, cfg).map_err(|e| format!("script `{name}`: {e}"))?
    };
    if let Some(why) = run.not_responded {
        tracing::info!(account = %acct.address, "Sieve vacation response not sent: {why}");
    }
    remember(core, acct.id, &run.seen).await?;
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
    // RFC 5228 §2.10.3: one copy per mailbox, whatever the script asks,
    // with the flags of the last request for it (RFC 5232 §3). RFC 5293
    // §7: a message changed by editheader is the same message, so the
    // mailbox still gets one copy: the first one asked.
    // The messages the run wrote (a vacation response, notifications),
    // as they are sent, by id: what `:fcc` (RFC 8580) files.
    let written: HashMap<usize, Vec<u8>> = run
        .created
        .iter()
        .map(|(id, m)| (*id, mime_complete(&encoded_subject(m))))
        .chain(run.notices.iter().map(|(id, m)| {
            let m = super::notify::finish(m, &acct.address, &core.config.hostname);
            (*id, mime_complete(&encoded_subject(&m)))
        }))
        .collect();
    // The message as editheader left it at each action, made fit once
    // for both filing and redirecting.
    let changed: HashMap<usize, Vec<u8>> = run
        .modified
        .iter()
        .map(|(id, m)| (*id, super::edited::finish(m, raw)))
        .collect();
    let mut sent_ids: Vec<usize> = Vec::new();
    for f in run
        .files
        .iter()
        .filter(|f| !written.contains_key(&f.message))
    {
        let target = folder(core, acct, &boxes, f).await;
        match plan.files.iter_mut().find(|(t, _, _)| *t == target) {
            Some((_, flags, _)) => flags.clone_from(&f.flags),
            None => plan
                .files
                .push((target, f.flags.clone(), changed.get(&f.message).cloned())),
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
                sent_ids.push(*id);
                plan.redirects.push(Outgoing {
                    to: to.clone(),
                    raw: written.get(id).cloned().unwrap_or_else(|| m.clone()),
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
            // Finished once, above, for :fcc too.
            Some(m) => {
                sent_ids.push(*id);
                let m = written.get(id).cloned().unwrap_or_else(|| m.clone());
                (m, String::new(), Sent::Vacation)
            }
            None => {
                // RFC 5228 §4.2: one Received field more than the message
                // came with (the loop count of RFC 5321 §6.3 sees it).
                let mut m = format!(
                    "Received: by {} (Petrel) with Sieve redirect for <{to}>; {}\r\n",
                    core.config.hostname,
                    crate::core::rfc5322_date(now)
                )
                .into_bytes();
                // RFC 5293 §7: with the header as the script left it.
                let msg = changed.get(id).map_or(raw, |m| m.as_slice());
                m.extend_from_slice(without_return_path(msg));
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
    // RFC 8580: a copy of each message the run sent, where :fcc asks, as
    // a message of its own (never merged with the delivered one).
    for f in &run.files {
        if let Some(m) = written
            .get(&f.message)
            .filter(|_| sent_ids.contains(&f.message))
        {
            let target = folder(core, acct, &boxes, f).await;
            plan.files.push((target, f.flags.clone(), Some(m.clone())));
        }
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

/// The ids `duplicate` and `vacation` (RFC 7352, 5230) saw for the
/// account, with until when they count.
pub(super) async fn read_seen(core: &Core, acct: u32) -> Result<HashMap<u64, i64>, String> {
    Ok(core
        .mail
        .records::<Seen>(acct, Kind::SieveDuplicate)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|(k, s)| (k, s.until))
        .collect())
}

/// The account's mailbox annotations and server entries as sieve-rs
/// takes them, read with the account's own rights (RFC 5490 §3.3, §4.1:
/// its `/private` entries and the shared ones).
async fn read_metadata(
    core: &Core,
    acct: u32,
    boxes: &[Mailbox],
) -> Result<Vec<(::sieve::Metadata<String>, String)>, String> {
    let mail = &core.mail;
    let mut out = Vec::new();
    for (annotation, value) in mail
        .annotations(acct, acct, 0)
        .await
        .map_err(|e| e.to_string())?
    {
        out.push((::sieve::Metadata::Server { annotation }, value));
    }
    for b in boxes {
        for (annotation, value) in mail
            .annotations(acct, acct, b.id)
            .await
            .map_err(|e| e.to_string())?
        {
            out.push((
                ::sieve::Metadata::Mailbox {
                    name: b.name.clone(),
                    annotation,
                },
                value,
            ));
        }
    }
    Ok(out)
}

/// Keeps the ids a run saw.
pub(super) async fn remember(core: &Core, acct: u32, seen: &[(u64, i64)]) -> Result<(), String> {
    for (k, until) in seen {
        core.mail
            .put_record(acct, Kind::SieveDuplicate, *k, &Seen { until: *until })
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// A vacation response `m` a run wrote to `to`, to send from the null
/// sender (a run writes one only where Petrel's own RFC 3834 rules,
/// [`crate::vacation::should_reply`], allow it: [`Known::no_response`];
/// sieve-rs misses an Auto-Submitted field, which mail-parser names).
pub(super) fn response(to: &str, m: &[u8]) -> Outgoing {
    Outgoing {
        to: to.to_string(),
        raw: mime_complete(&encoded_subject(m)),
        from: String::new(),
        kind: Sent::Vacation,
    }
}

/// The name of the script run when `sieve.delivery` names global
/// scripts: it includes them around the account's own.
const AROUND: &str = "petrel:delivery";

/// The script that runs the global `before`, the account's `own` and
/// the global `after` as one (RFC 6609 include: one implicit keep, and
/// a `stop` in one ends the run). A global script that is named but not
/// stored is left out, with a warning.
fn around_text(
    delivery: &crate::config::DeliveryScripts,
    own: Option<&str>,
    globals: &[Script],
) -> String {
    let quoted = |n: &str| n.replace('\\', "\\\\").replace('"', "\\\"");
    let mut text = String::from("require \"include\";\n");
    for (key, name, scope) in [
        ("sieve.delivery.before", delivery.before.as_str(), "global"),
        ("", own.unwrap_or_default(), "personal"),
        ("sieve.delivery.after", delivery.after.as_str(), "global"),
    ] {
        if name.is_empty() {
            continue;
        }
        if scope == "global" && !globals.iter().any(|g| g.name == name) {
            tracing::warn!(
                script = %name,
                "{key} names a global Sieve script that is not stored, so it does not run: store it with `petrel sieve global put {name} FILE`"
            );
            continue;
        }
        text.push_str(&format!("include :{scope} \"{}\";\n", quoted(name)));
    }
    text
}

/// What a run may ask, read before it.
#[derive(Clone, Copy)]
pub(super) struct Known<'a> {
    /// The account's scripts, for `include :personal`.
    pub all: &'a [(u64, Script)],
    /// The global scripts, for `include :global`.
    pub globals: &'a [Script],
    /// The account's mailboxes, for `mailboxexists`.
    pub boxes: &'a [Mailbox],
    /// The ids `duplicate` and `vacation` saw, with until when.
    pub seen: &'a HashMap<u64, i64>,
    pub now: i64,
    /// Why this message gets no vacation response under Petrel's RFC
    /// 3834 rules ([`crate::vacation::should_reply`]), if it gets none.
    pub no_response: Option<&'static str>,
}

/// Runs the interpreter to the end, answering its questions from what
/// was read before.
pub(super) fn interpret(
    mut ctx: ::sieve::Context<'_>,
    name: &str,
    compiled: std::sync::Arc<::sieve::Sieve>,
    known: &Known<'_>,
    cfg: &crate::config::SieveConfig,
) -> Result<Run, String> {
    let Known {
        all,
        globals,
        boxes,
        seen,
        now,
        ..
    } = *known;
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
            // A vacation (RFC 5230 §4.2: sieve-rs asks with "_v" ids) for
            // a message Petrel's RFC 3834 rules give no response is
            // answered "already sent": nothing is sent or remembered.
            Event::DuplicateId { id, .. }
                if id.starts_with("_v") && known.no_response.is_some() =>
            {
                run.not_responded = known.no_response;
                Input::True
            }
            // RFC 7352 §3.3 (and RFC 6131 for vacation): a period of 0
            // is never a duplicate, and nothing is tracked.
            Event::DuplicateId { expiry: 0, .. } => Input::False,
            Event::DuplicateId { id, expiry, last } => {
                // RFC 7352 §3.2, §6: tracked by a hash of the id, matched
                // case-sensitively, whatever it came from.
                let key = u64::from_be_bytes(
                    sha2::Sha256::digest(id.as_bytes())[..8]
                        .try_into()
                        .expect("8 bytes"),
                );
                // §3: only earlier runs count, so every test of one run
                // with the same id answers the same.
                let dup = seen.get(&key).is_some_and(|u| *u > now);
                // §3.3: past the site's limit, the limit, silently.
                let expiry = expiry.min(cfg.max_tracking);
                // §3.3: without :last a period runs from the entry's
                // first run; with :last, from the last run testing it.
                if !dup || last {
                    run.seen.push((key, now + expiry as i64));
                }
                dup.into()
            }
            Event::Keep { flags, message_id } => {
                run.files.push(FileAct {
                    folder: None,
                    mailbox_id: None,
                    special_use: None,
                    create: false,
                    flags: storable(flags),
                    message: message_id,
                });
                Input::True
            }
            Event::FileInto {
                folder,
                flags,
                mailbox_id,
                special_use,
                create,
                message_id,
            } => {
                run.files.push(FileAct {
                    folder: Some(folder),
                    mailbox_id,
                    special_use,
                    create,
                    flags: storable(flags),
                    message: message_id,
                });
                Input::True
            }
            Event::SendMessage {
                recipient,
                message_id,
                notify,
                ..
            } => {
                // A vacation response is sent with `:notify "NEVER"`; a
                // redirect cannot ask that, as redirect-dsn is not offered.
                if notify == Notify::Never {
                    if let Some(m) = run.modified.remove(&message_id) {
                        if !run.created.is_empty() {
                            return Err(
                                "a script may take one vacation action (RFC 5230 §4.7)".into()
                            );
                        }
                        run.created.insert(message_id, m);
                    }
                }
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
            // A message the script wrote: a notification, a vacation
            // response (known when it is sent, above), or the message as
            // editheader changed it, before the action that uses it.
            Event::CreatedMessage {
                message_id,
                message,
            } => {
                if super::notify::is_notification(&message) {
                    run.notices.insert(message_id, message);
                } else {
                    run.modified.insert(message_id, message);
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

/// RFC 5232 §2, §5: the flags a mailbox can keep — the IMAP system
/// flags but \Recent, and keywords that are IMAP atoms; others are
/// dropped, without an error.
fn storable(flags: Vec<String>) -> Vec<String> {
    const SYSTEM: &[&str] = &["\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"];
    flags
        .into_iter()
        .filter_map(|f| {
            if let Some(s) = SYSTEM.iter().find(|s| s.eq_ignore_ascii_case(&f)) {
                return Some(s.to_string());
            }
            let atom = !f.is_empty()
                && f.bytes()
                    .all(|b| b.is_ascii_graphic() && !b"(){%*\"\\]".contains(&b));
            atom.then_some(f)
        })
        .collect()
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
    let mut out = msg[..start].to_vec();
    out.extend_from_slice(format!("Subject: {}", encoded_words(&value)).as_bytes());
    out.extend_from_slice(&msg[end..]);
    out
}

/// A message sieve-rs wrote with MIME-Version and, for a body of 8-bit
/// text, `Content-Transfer-Encoding: 8bit` (RFC 2045 §4, §6; RFC 8580
/// §4), which it leaves out.
fn mime_complete(msg: &[u8]) -> Vec<u8> {
    let Some(end) = msg.windows(4).position(|w| w == b"\r\n\r\n") else {
        return msg.to_vec();
    };
    let head = String::from_utf8_lossy(&msg[..end + 2]).to_ascii_lowercase();
    let has = |f: &str| head.starts_with(f) || head.contains(&format!("\n{f}"));
    let mut extra = String::new();
    if !has("mime-version:") {
        extra.push_str("MIME-Version: 1.0\r\n");
    }
    let multipart = head.contains("content-type: multipart/");
    if !multipart && !has("content-transfer-encoding:") && !msg[end + 4..].is_ascii() {
        extra.push_str("Content-Transfer-Encoding: 8bit\r\n");
    }
    let mut out = msg[..end + 2].to_vec();
    out.extend_from_slice(extra.as_bytes());
    out.extend_from_slice(&msg[end + 2..]);
    out
}

/// `value` as RFC 2047 encoded words, folded: words of at most 64
/// characters (a line within 78), 39 octets of UTF-8 each, never
/// splitting a character.
pub(crate) fn encoded_words(value: &str) -> String {
    use base64::Engine;
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
    encoded.join("\r\n ")
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
pub(crate) fn return_path_line(raw: &[u8]) -> Option<&[u8]> {
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
pub(super) fn envelope_to<'a>(to: &'a str, acct: &'a Account) -> &'a str {
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
mod extensions;
#[cfg(test)]
mod tests;
