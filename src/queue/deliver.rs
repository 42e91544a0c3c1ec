//! The delivery worker: takes due entries from the queue, delivers them
//! (locally, or by SMTP to the routed hosts), records the outcome and sends
//! DSNs, all in one transaction per attempt.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::dane::Dane;
use super::dsn::{self, Action};
use super::route::{route, Hop};
use super::{backoff, NewMessage, QueueEntry, QueueRcpt, RcptStatus};
use crate::config::TlsMode;
use crate::core::{unix_now, SharedCore};
use crate::directory::Recipient;
use crate::mail::MailError;
use crate::net::Shutdown;
use crate::smtp::client::SmtpClient;
use crate::smtp::proto::Reply;

/// What one attempt did for one recipient.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// `dsn_relayed`: the next hop took the message with the DSN
    /// extension, so success notices are its job (RFC 3461 §5.2.2).
    Delivered {
        reply: String,
        host: String,
        dsn_relayed: bool,
    },
    Temp {
        reply: String,
    },
    Perm {
        reply: String,
        host: String,
    },
}

pub fn spawn(core: SharedCore, shutdown: Shutdown) {
    tokio::spawn(run(core, shutdown));
}

async fn run(core: SharedCore, mut shutdown: Shutdown) {
    let in_flight: Arc<Mutex<HashSet<u64>>> = Default::default();
    let slots = Arc::new(tokio::sync::Semaphore::new(core.config.queue.concurrency));
    let Some(mut fresh) = core.queue.take_fresh() else {
        tracing::error!("queue worker started twice");
        return;
    };
    // New entries: their first attempt is already recorded, so they go
    // straight to delivery.
    {
        let core = core.clone();
        let in_flight = in_flight.clone();
        let slots = slots.clone();
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            loop {
                let id = tokio::select! {
                    id = fresh.recv() => match id { Some(id) => id, None => return },
                    _ = shutdown.wait() => return,
                };
                if !in_flight.lock().expect("lock").insert(id) {
                    continue;
                }
                let permit = tokio::select! {
                    p = slots.clone().acquire_owned() => p.expect("semaphore open"),
                    _ = shutdown.wait() => return,
                };
                spawn_attempt(&core, &in_flight, &shutdown, id, false, permit);
            }
        });
    }
    loop {
        if shutdown.is_shutting_down() {
            return;
        }
        core.queue.beat();
        let now = unix_now();
        let (ids, next) = match core.queue.due(now, 1024).await {
            Ok(x) => x,
            Err(e) => {
                tracing::error!("queue scan failed: {e}");
                (Vec::new(), Some(now + 5))
            }
        };
        for id in ids {
            if !in_flight.lock().expect("lock").insert(id) {
                continue;
            }
            let permit = tokio::select! {
                p = slots.clone().acquire_owned() => p.expect("semaphore open"),
                _ = shutdown.wait() => return,
            };
            spawn_attempt(&core, &in_flight, &shutdown, id, true, permit);
        }
        let wait = next
            .map(|t| (t - unix_now()).clamp(1, 30) as u64)
            .unwrap_or(30);
        tokio::select! {
            _ = core.queue.woken() => {}
            _ = tokio::time::sleep(Duration::from_secs(wait)) => {}
            _ = shutdown.wait() => return,
        }
    }
}

fn spawn_attempt(
    core: &SharedCore,
    in_flight: &Arc<Mutex<HashSet<u64>>>,
    shutdown: &Shutdown,
    id: u64,
    record: bool,
    permit: tokio::sync::OwnedSemaphorePermit,
) {
    let core = core.clone();
    let in_flight = in_flight.clone();
    let guard = shutdown.clone();
    tokio::spawn(async move {
        let _guard = guard;
        if let Err(e) = attempt(&core, id, record).await {
            tracing::warn!(queue_id = id, "delivery attempt failed: {e}");
        }
        in_flight.lock().expect("lock").remove(&id);
        drop(permit);
        core.queue.wake();
    });
}

fn domain_of(addr: &str) -> String {
    addr.rsplit_once('@')
        .map(|(_, d)| d.to_ascii_lowercase())
        .unwrap_or_default()
}

/// One delivery attempt for queue entry `id`. With `record` the attempt
/// and the next retry are written first (a new entry came with its first
/// attempt recorded).
pub async fn attempt(core: &SharedCore, id: u64, record: bool) -> anyhow::Result<()> {
    let q = &core.queue;
    let schedule = core.config.queue.retry.clone();
    // Record the attempt before making it: if we crash now, the entry
    // comes back at its next scheduled time.
    let entry = if record {
        let qq = q.clone();
        q.store
            .transact(move |txn| {
                qq.update_in_txn(txn, id, |e| {
                    e.attempts += 1;
                    e.next_attempt = unix_now() + backoff(&schedule, e.attempts);
                    true
                })
            })
            .await?
    } else {
        q.get(id).await?
    };
    let Some(entry) = entry else {
        return Ok(());
    };
    let raw = q.message(&entry).await?;
    let outcomes = deliver(core, &entry, &raw).await;
    finish(core, entry, &raw, outcomes).await
}

/// Delivers the pending recipients of `entry`; returns an outcome for each.
async fn deliver(core: &SharedCore, entry: &QueueEntry, raw: &[u8]) -> HashMap<String, Outcome> {
    let mut out = HashMap::new();
    let mut local: Vec<(&QueueRcpt, Vec<u32>)> = Vec::new();
    let mut remote: BTreeMap<String, Vec<&QueueRcpt>> = BTreeMap::new();
    for r in entry.pending() {
        match core.directory.resolve(&r.address).await {
            // Forwarding was decided when the message was received (the
            // session queued the forwarded copy); here only local accounts.
            Ok(Recipient::Local { accounts, .. }) if !accounts.is_empty() => {
                local.push((r, accounts))
            }
            Ok(Recipient::Local { .. }) => {
                out.insert(
                    r.address.clone(),
                    Outcome::Delivered {
                        reply: "250 2.1.5 Forwarded when received".into(),
                        host: core.config.hostname.clone(),
                        dsn_relayed: true,
                    },
                );
            }
            Ok(Recipient::Unknown) => {
                out.insert(
                    r.address.clone(),
                    Outcome::Perm {
                        reply: "550 5.1.1 No such user here".into(),
                        host: core.config.hostname.clone(),
                    },
                );
            }
            Ok(Recipient::Remote) => remote.entry(domain_of(&r.address)).or_default().push(r),
            Err(e) => {
                out.insert(
                    r.address.clone(),
                    Outcome::Temp {
                        reply: format!("451 4.3.0 Directory unavailable: {e}"),
                    },
                );
            }
        }
    }
    // RFC 5321 §4.4: final delivery records the envelope sender.
    let mut with_path = format!("Return-Path: <{}>\r\n", entry.from).into_bytes();
    with_path.extend_from_slice(raw);
    for (r, ids) in local {
        let local: Vec<(u32, &str)> = ids.iter().map(|a| (*a, r.address.as_str())).collect();
        let o = match core.deliver_local(with_path.clone(), &local).await {
            // RFC 5429 §2.1.2: every account's script erejected it: the
            // queue's own bounce is the DSN.
            Ok(d) if d.all_refused(&ids) && d.refused.iter().all(|x| x.extended) => Outcome::Perm {
                reply: d.refused[0].dsn_reply(),
                host: core.config.hostname.clone(),
            },
            Ok(d) => {
                if let Err(e) = core.report_refusals(&d, entry.env_id.clone()).await {
                    tracing::warn!(queue_id = entry.id, "Sieve refusal notice not queued: {e}");
                }
                Outcome::Delivered {
                    reply: "250 2.0.0 Delivered to the local mailbox".into(),
                    host: core.config.hostname.clone(),
                    dsn_relayed: false,
                }
            }
            Err(MailError::OverQuota) => Outcome::Temp {
                reply: "452 4.2.2 Mailbox full".into(),
            },
            Err(e) => Outcome::Temp {
                reply: format!("451 4.3.0 Local delivery failed: {e}"),
            },
        };
        out.insert(r.address.clone(), o);
    }
    for (domain, rcpts) in remote {
        let hops = match route(core, &domain).await {
            Ok(h) => h,
            Err(e) => {
                for r in rcpts {
                    let o = if e.permanent {
                        Outcome::Perm {
                            reply: e.reply.clone(),
                            host: String::new(),
                        }
                    } else {
                        Outcome::Temp {
                            reply: e.reply.clone(),
                        }
                    };
                    out.insert(r.address.clone(), o);
                }
                continue;
            }
        };
        let results = deliver_remote(core, entry, &rcpts, raw, &hops).await;
        out.extend(results);
    }
    out
}

/// Tries each hop and address in turn until one gives an answer for the
/// recipients (success or refusal); connection problems move on.
async fn deliver_remote(
    core: &SharedCore,
    entry: &QueueEntry,
    rcpts: &[&QueueRcpt],
    raw: &[u8],
    hops: &[Hop],
) -> HashMap<String, Outcome> {
    let mut last = String::from("451 4.4.1 No answer from any mail server");
    for hop in hops {
        for addr in &hop.addrs {
            match smtp_transaction(core, entry, rcpts, raw, hop, *addr).await {
                Ok(results) => return results,
                Err(e) => {
                    tracing::info!(queue_id = entry.id, host = %hop.name, %addr, "delivery attempt: {e}");
                    last = format!("451 4.4.1 {} [{addr}]: {e}", hop.name);
                }
            }
        }
    }
    rcpts
        .iter()
        .map(|r| {
            (
                r.address.clone(),
                Outcome::Temp {
                    reply: last.clone(),
                },
            )
        })
        .collect()
}

fn reply_outcome(r: &Reply, host: &str, dsn: bool) -> Outcome {
    if r.is_positive() {
        Outcome::Delivered {
            reply: r.text(),
            host: host.to_string(),
            dsn_relayed: dsn,
        }
    } else if r.is_permanent() {
        Outcome::Perm {
            reply: r.text(),
            host: host.to_string(),
        }
    } else {
        Outcome::Temp {
            reply: format!("{} (from {host})", r.text()),
        }
    }
}

/// Connects to `addr` and gets a session ready for MAIL: greeting, EHLO,
/// STARTTLS (checked when `verify`), AUTH.
async fn open_session(
    core: &SharedCore,
    hop: &Hop,
    addr: SocketAddr,
    verify: bool,
    requiretls: bool,
) -> Result<SmtpClient, String> {
    let cfg = &core.config.queue;
    // DANE (RFC 7672 §2.2) authenticates by TLSA records; MTA-STS,
    // REQUIRETLS and relays we log in to by the certificate's name and chain.
    let checked = match &hop.dane {
        Dane::Tlsa(records) => Some(super::dane::client_config(records.clone())),
        _ if verify => {
            Some(super::mta_sts::verified_tls(core).map_err(|e| format!("TLS set-up: {e}"))?)
        }
        _ => None,
    };
    let implicit = (hop.tls == TlsMode::Implicit).then(|| (hop.name.as_str(), checked.clone()));
    let (mut c, greeting) = SmtpClient::connect(
        addr,
        Duration::from_secs(cfg.connect_timeout),
        Duration::from_secs(cfg.command_timeout),
        implicit,
    )
    .await
    .map_err(|e| format!("connect: {e}"))?;
    if greeting.code != 220 {
        return Err(format!("greeting: {}", greeting.text()));
    }
    let me = &core.config.hostname;
    let io = |e: std::io::Error| e.to_string();
    let hello = c.hello(me).await.map_err(io)?;
    if !hello.is_positive() {
        return Err(format!("EHLO: {}", hello.text()));
    }
    let want_tls = matches!(hop.tls, TlsMode::Opportunistic | TlsMode::Required);
    if checked.is_some() && !c.is_tls() && !c.offers("STARTTLS") {
        return Err(
            "TLS is required (DANE, MTA-STS or REQUIRETLS) but the server does not offer STARTTLS"
                .into(),
        );
    }
    if (want_tls || checked.is_some()) && !c.is_tls() && c.offers("STARTTLS") {
        let what = match (&hop.dane, verify) {
            (Dane::Tlsa(_), _) => "STARTTLS (DANE)",
            (_, true) => "STARTTLS (certificate checked)",
            _ => "STARTTLS",
        };
        let r = c
            .starttls(&hop.name, checked)
            .await
            .map_err(|e| format!("{what}: {e}"))?;
        if r.code == 220 {
            let hello = c.hello(me).await.map_err(io)?;
            if !hello.is_positive() {
                return Err(format!("EHLO after STARTTLS: {}", hello.text()));
            }
        }
    }
    if !c.is_tls() && (hop.tls == TlsMode::Required || requiretls) {
        return Err("TLS is required but the server does not offer it".into());
    }
    if let Some((user, secret)) = &hop.auth {
        // RFC 8314 §3.3: credentials go only over TLS with a checked
        // certificate (the route asks for both).
        if !c.is_tls() {
            return Err(format!(
                "the relay login for {} is sent only over TLS, and the server offers none",
                hop.name
            ));
        }
        let r = c.auth_plain(user, secret).await.map_err(io)?;
        if !r.is_positive() {
            return Err(format!("AUTH: {}", r.text()));
        }
    }
    Ok(c)
}

/// Idle sessions are reused for this long (servers keep them minutes).
const POOL_IDLE: Duration = Duration::from_secs(10);
const POOL_PER_KEY: usize = 16;

fn pool_key(hop: &Hop, addr: SocketAddr, verify: bool) -> String {
    let user = hop.auth.as_ref().map(|(u, _)| u.as_str()).unwrap_or("");
    let dane = matches!(hop.dane, Dane::Tlsa(_));
    format!("{addr}|{}|{verify}|{dane}|{:?}|{user}", hop.name, hop.tls)
}

/// A ready session for the key: an idle one that still answers RSET, or
/// a new one.
async fn take_session(
    core: &SharedCore,
    hop: &Hop,
    addr: SocketAddr,
    verify: bool,
    requiretls: bool,
) -> Result<SmtpClient, String> {
    let key = pool_key(hop, addr, verify);
    loop {
        let idle = {
            let mut pool = core.queue.pool.lock().expect("lock");
            pool.get_mut(&key).and_then(|v| v.pop())
        };
        let Some((mut c, since)) = idle else { break };
        if since.elapsed() > POOL_IDLE {
            c.quit().await;
            continue;
        }
        if let Ok(r) = c.command("RSET").await {
            if r.is_positive() {
                return Ok(c);
            }
        }
    }
    open_session(core, hop, addr, verify, requiretls).await
}

/// Keeps a session for the next message to the same place.
async fn put_session(core: &SharedCore, hop: &Hop, addr: SocketAddr, verify: bool, c: SmtpClient) {
    let key = pool_key(hop, addr, verify);
    let rejected = {
        let mut pool = core.queue.pool.lock().expect("lock");
        let list = pool.entry(key).or_default();
        list.retain(|(_, since)| since.elapsed() <= POOL_IDLE);
        if list.len() < POOL_PER_KEY {
            list.push((c, std::time::Instant::now()));
            None
        } else {
            Some(c)
        }
    };
    if let Some(c) = rejected {
        c.quit().await;
    }
}

/// xtext (RFC 3461 §4): "+" and "=" and non-printables as "+HH".
pub fn xtext(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (33..=126).contains(&b) && b != b'+' && b != b'=' {
            out.push(b as char);
        } else {
            out.push_str(&format!("+{b:02X}"));
        }
    }
    out
}

/// One SMTP session with one server. `Err` for problems that say nothing
/// about the recipients (connection, greeting, TLS, AUTH).
async fn smtp_transaction(
    core: &SharedCore,
    entry: &QueueEntry,
    rcpts: &[&QueueRcpt],
    raw: &[u8],
    hop: &Hop,
    addr: SocketAddr,
) -> Result<HashMap<String, Outcome>, String> {
    // MTA-STS enforce and REQUIRETLS (RFC 8689 §4.2.1) both need TLS with a
    // certificate valid for the host.
    let verify = hop.verify || entry.requiretls;
    if let Dane::Failed(why) = &hop.dane {
        return Err(why.clone());
    }
    let mut c = take_session(core, hop, addr, verify, entry.requiretls).await?;
    let io = |e: std::io::Error| e.to_string();
    let dsn = c.offers("DSN");
    let mut mail = format!("MAIL FROM:<{}>", entry.from);
    if c.offers("SIZE") {
        mail.push_str(&format!(" SIZE={}", raw.len()));
    }
    if c.offers("8BITMIME") {
        mail.push_str(" BODY=8BITMIME");
    }
    if dsn {
        mail.push_str(if entry.ret_full {
            " RET=FULL"
        } else {
            " RET=HDRS"
        });
        if let Some(envid) = &entry.env_id {
            mail.push_str(&format!(" ENVID={}", xtext(envid)));
        }
    }
    // RFC 6531 §3.2 (SMTPUTF8) and RFC 8689 §4.2.1 (REQUIRETLS): a message
    // that needs the extension is bounced, not downgraded, when the next hop
    // lacks it.
    let needs = [
        (
            entry.smtputf8,
            "SMTPUTF8",
            "553 5.6.7 The next hop does not accept internationalized mail (SMTPUTF8)",
        ),
        (
            entry.requiretls,
            "REQUIRETLS",
            "550 5.7.30 REQUIRETLS support required by the next hop",
        ),
    ];
    for (needed, ext, reply) in needs {
        if !needed {
            continue;
        }
        if !c.offers(ext) {
            let results = rcpts
                .iter()
                .map(|rc| {
                    let o = Outcome::Perm {
                        reply: reply.into(),
                        host: hop.name.clone(),
                    };
                    (rc.address.clone(), o)
                })
                .collect();
            put_session(core, hop, addr, verify, c).await;
            return Ok(results);
        }
        mail.push(' ');
        mail.push_str(ext);
    }
    let mut results = HashMap::new();
    let r = c.command(&mail).await.map_err(io)?;
    if !r.is_positive() {
        for rc in rcpts {
            results.insert(rc.address.clone(), reply_outcome(&r, &hop.name, dsn));
        }
        put_session(core, hop, addr, verify, c).await;
        return Ok(results);
    }
    let mut accepted = Vec::new();
    for rc in rcpts {
        let mut cmd = format!("RCPT TO:<{}>", rc.address);
        if dsn {
            let n = rc.notify;
            let list: Vec<&str> = [
                (n.success, "SUCCESS"),
                (n.failure, "FAILURE"),
                (n.delay, "DELAY"),
            ]
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, s)| *s)
            .collect();
            cmd.push_str(" NOTIFY=");
            cmd.push_str(&if list.is_empty() {
                "NEVER".to_string()
            } else {
                list.join(",")
            });
            if let Some(o) = &rc.orcpt {
                cmd.push_str(&format!(" ORCPT={o}"));
            }
        }
        let r = c.command(&cmd).await.map_err(io)?;
        if r.is_positive() {
            accepted.push(rc.address.clone());
        } else {
            results.insert(rc.address.clone(), reply_outcome(&r, &hop.name, dsn));
        }
    }
    if accepted.is_empty() {
        put_session(core, hop, addr, verify, c).await;
        return Ok(results);
    }
    let r = c.data(raw).await.map_err(|e| format!("DATA: {e}"))?;
    for a in accepted {
        results.insert(a, reply_outcome(&r, &hop.name, dsn));
    }
    put_session(core, hop, addr, verify, c).await;
    Ok(results)
}

/// Applies the outcomes, schedules or removes the entry and queues DSNs,
/// in one transaction.
/// One log line and one count per recipient this attempt settled or
/// deferred.
fn log_attempt(before: &QueueEntry, after: &QueueEntry, outcomes: &HashMap<String, Outcome>) {
    for (b, a) in before.recipients.iter().zip(after.recipients.iter()) {
        if b.status != RcptStatus::Pending {
            continue;
        }
        let (result, host, reply) = match (&a.status, outcomes.get(&a.address)) {
            (RcptStatus::Delivered { reply, host }, _) => {
                ("delivered", host.as_str(), reply.as_str())
            }
            (RcptStatus::Failed { reply, host }, _) => ("bounced", host.as_str(), reply.as_str()),
            (_, Some(Outcome::Temp { reply })) => ("deferred", "", reply.as_str()),
            _ => ("deferred", "", a.last_error.as_deref().unwrap_or("")),
        };
        metrics::counter!("petrel_delivery_attempts_total", "result" => result).increment(1);
        tracing::info!(
            queue_id = before.id,
            from = before.from.as_str(),
            to = a.address.as_str(),
            attempt = before.attempts,
            result,
            host,
            reply,
            "delivery"
        );
    }
}

async fn finish(
    core: &SharedCore,
    entry: QueueEntry,
    raw: &[u8],
    outcomes: HashMap<String, Outcome>,
) -> anyhow::Result<()> {
    let now = unix_now();
    let cfg = &core.config.queue;
    // The new state, computed here, applied below.
    let mut next = entry.clone();
    for r in next.recipients.iter_mut() {
        if r.status != RcptStatus::Pending {
            continue;
        }
        match outcomes.get(&r.address) {
            Some(Outcome::Delivered { reply, host, .. }) => {
                r.status = RcptStatus::Delivered {
                    reply: reply.clone(),
                    host: host.clone(),
                }
            }
            Some(Outcome::Perm { reply, host }) => {
                r.status = RcptStatus::Failed {
                    reply: reply.clone(),
                    host: host.clone(),
                }
            }
            Some(Outcome::Temp { reply }) => r.last_error = Some(reply.clone()),
            None => {}
        }
        if r.status == RcptStatus::Pending && now >= entry.expires {
            r.status = RcptStatus::Failed {
                reply: format!(
                    "550 5.4.7 Delivery time expired; last error: {}",
                    r.last_error.clone().unwrap_or_else(|| "none".into())
                ),
                host: String::new(),
            };
        }
    }
    log_attempt(&entry, &next, &outcomes);
    // Which recipients to report, and how.
    let mut report: Vec<(QueueRcpt, Action)> = Vec::new();
    let relayed_with_dsn = |addr: &str| {
        matches!(
            outcomes.get(addr),
            Some(Outcome::Delivered {
                dsn_relayed: true,
                ..
            })
        )
    };
    for (before, after) in entry.recipients.iter().zip(next.recipients.iter()) {
        if before.status != RcptStatus::Pending {
            continue;
        }
        match &after.status {
            RcptStatus::Failed { .. } if after.notify.failure => {
                report.push((after.clone(), Action::Failed))
            }
            RcptStatus::Delivered { host, .. } if after.notify.success => {
                if relayed_with_dsn(&after.address) {
                    // The next hop reports success itself.
                } else if host == &core.config.hostname {
                    report.push((after.clone(), Action::Delivered))
                } else {
                    // Handed to a server without DSN: "relayed" (RFC 3464 §2.3.3).
                    report.push((after.clone(), Action::Relayed))
                }
            }
            _ => {}
        }
    }
    let pending = next.pending().count();
    if pending > 0
        && cfg.delay_notify > 0
        && !next.delay_notified
        && now - next.created >= cfg.delay_notify as i64
    {
        let delayed: Vec<QueueRcpt> = next.pending().filter(|r| r.notify.delay).cloned().collect();
        if !delayed.is_empty() {
            next.delay_notified = true;
            report.extend(delayed.into_iter().map(|r| (r, Action::Delayed)));
        }
    }
    // No DSN about a DSN (null sender), RFC 3461 §6.2 / RFC 5321 §4.5.5.
    let bounce = if !report.is_empty() && !entry.from.is_empty() {
        let refs: Vec<(&QueueRcpt, Action)> = report.iter().map(|(r, a)| (r, *a)).collect();
        let body = dsn::build(
            &core.config.hostname,
            &entry,
            &refs,
            raw,
            Some(entry.expires),
        );
        let mut rc = QueueRcpt::new(&entry.from);
        rc.notify = super::Notify::default();
        Some(Arc::new(
            core.queue
                .prepare(NewMessage {
                    from: String::new(),
                    recipients: vec![rc],
                    raw: body,
                    env_id: None,
                    ret_full: false,
                    requiretls: false,
                    smtputf8: false,
                    ..Default::default()
                })
                .await?,
        ))
    } else {
        None
    };
    let q = core.queue.clone();
    let id = entry.id;
    let done = pending == 0;
    q.store
        .clone()
        .transact(move |txn| {
            let updated = q.update_in_txn(txn, id, |e| {
                // Apply per address, so a concurrent retry/cancel is kept.
                for r in e.recipients.iter_mut() {
                    if let Some(n) = next.recipients.iter().find(|n| n.address == r.address) {
                        r.status = n.status.clone();
                        r.last_error = n.last_error.clone();
                    }
                }
                e.delay_notified |= next.delay_notified;
                !done
            })?;
            if updated.is_some() {
                if let Some(b) = &bounce {
                    return Ok(Some(q.add_in_txn(txn, b)?));
                }
            }
            Ok(None)
        })
        .await?
        .inspect(|bounce_id| core.queue.announce(*bounce_id));
    if done {
        tracing::info!(queue_id = id, "queue entry finished");
    }
    core.queue.wake();
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn xtext_encoding() {
        assert_eq!(super::xtext("a+b=c d"), "a+2Bb+3Dc+20d");
    }
}
