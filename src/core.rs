//! The shared state every session works with.

use std::sync::Arc;

use tokio_rustls::TlsAcceptor;

use crate::config::Config;
use crate::directory::Directory;
use crate::mail::{IngestRequest, IngestTarget, MailError, MailStore};
use crate::queue::route::Resolver;
use crate::queue::Queue;
use crate::store::Store;

pub struct Core {
    pub config: Config,
    pub store: Store,
    pub mail: MailStore,
    pub directory: Directory,
    pub tls: Option<TlsAcceptor>,
    pub queue: Queue,
    pub resolver: Resolver,
    /// Connection limits per client address on the SMTP listeners.
    pub smtp_conns: std::sync::Arc<crate::net::limit::ConnLimiter>,
    /// The same on the IMAP and POP3 listeners.
    pub imap_conns: std::sync::Arc<crate::net::limit::ConnLimiter>,
    pub pop3_conns: std::sync::Arc<crate::net::limit::ConnLimiter>,
    /// Bytes of clients' data held in memory (`limits.memory-in-flight`).
    pub budget: crate::net::budget::MemoryBudget,
    /// When the server started (uptime in `petrel status` and /metrics).
    pub started: std::time::Instant,
    /// Open ACME HTTP-01 challenges (answered on the plain listeners).
    pub acme: crate::acme::Challenges,
    /// JMAP's checked credentials and requests in flight.
    pub jmap: crate::jmap::JmapState,
    /// The client TLS configuration that checks certificates (system
    /// roots plus tls.extra-ca), built at first use.
    pub checked_tls: std::sync::OnceLock<std::sync::Arc<rustls::ClientConfig>>,
    /// The listeners bound, set once they all are (`/readyz`, status).
    pub listeners: std::sync::OnceLock<Vec<(&'static str, std::net::SocketAddr)>>,
    /// Administrators' Sieve scripts, kept in memory.
    pub sieve: crate::sieve::SieveState,
    /// The spam filter (`[spam]`).
    pub spam: std::sync::Arc<crate::spam::Filter>,
}

fn conn_limiter(
    max_open: u32,
    per_minute: u32,
    exempt: &[String],
) -> std::sync::Arc<crate::net::limit::ConnLimiter> {
    crate::net::limit::ConnLimiter::new(
        max_open,
        per_minute,
        exempt.iter().filter_map(|c| c.parse().ok()).collect(),
    )
}

pub type SharedCore = Arc<Core>;

/// Where clients connect: the host name and the port of each service
/// that has a listener (None when it has none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoints {
    pub host: String,
    pub imaps: Option<u16>,
    pub imap: Option<u16>,
    pub pop3s: Option<u16>,
    pub pop3: Option<u16>,
    pub submissions: Option<u16>,
    pub submission: Option<u16>,
}

impl Endpoints {
    /// From the bound listeners of a running server.
    pub fn of(core: &Core) -> Endpoints {
        let bound = core.listeners.get().map(Vec::as_slice).unwrap_or(&[]);
        let port = |name: &str| {
            bound
                .iter()
                .find(|(p, _)| *p == name)
                .map(|(_, a)| a.port())
        };
        Endpoints {
            host: core.config.hostname.clone(),
            imaps: port("imaps"),
            imap: port("imap"),
            pop3s: port("pop3s"),
            pop3: port("pop3"),
            submissions: port("submissions"),
            submission: port("submission"),
        }
    }
}

impl Core {
    pub fn new(
        config: Config,
        store: Store,
        mail: MailStore,
        tls: Option<TlsAcceptor>,
    ) -> anyhow::Result<Self> {
        let spam = &config.spam;
        mail.set_junk_learning(spam.enable && spam.bayes.enable && spam.bayes.learn_from_users);
        let resolver = Resolver::new(&config.resolver)?;
        let dns = resolver.auth.0.clone();
        Ok(Core {
            directory: Directory::new(store.clone(), &config.auth, &config.passwords)
                .with_recipient_delimiter(&config.directory.recipient_delimiter),
            queue: Queue::new(
                store.clone(),
                mail.blobs.clone(),
                config.queue.expire,
                crate::queue::backoff(&config.queue.retry, 1),
            )
            .on_progress(crate::mail::records::submission_progressed),
            resolver,
            smtp_conns: conn_limiter(
                config.smtp.max_connections_per_ip,
                config.smtp.max_connection_rate_per_ip,
                &config.smtp.limit_exempt,
            ),
            imap_conns: conn_limiter(
                config.imap.max_connections_per_ip,
                config.imap.max_connection_rate_per_ip,
                &config.imap.limit_exempt,
            ),
            pop3_conns: conn_limiter(
                config.pop3.max_connections_per_ip,
                config.pop3.max_connection_rate_per_ip,
                &config.pop3.limit_exempt,
            ),
            budget: crate::net::budget::MemoryBudget::new(
                config.limits.memory_in_flight,
                config.limits.memory_wait,
            ),
            started: std::time::Instant::now(),
            listeners: std::sync::OnceLock::new(),
            acme: Default::default(),
            jmap: Default::default(),
            checked_tls: Default::default(),
            sieve: Default::default(),
            spam: std::sync::Arc::new(
                crate::spam::Filter::new(
                    config.spam.clone(),
                    crate::spam::db::TokenDb::new(store.clone()),
                )
                .with_resolver(dns),
            ),
            config,
            store,
            mail,
            tls,
        })
    }

    /// Stores a message in the Inbox of each account, atomically, with
    /// each account's quota applied. `rcpts` are the accounts with the
    /// address the mail was sent to (an alias, a group, a subaddress),
    /// which their Sieve scripts see as the envelope "to".
    pub async fn deliver_local(
        &self,
        raw: Vec<u8>,
        rcpts: &[(u32, &str)],
    ) -> Result<Delivered, MailError> {
        self.deliver_local_to(raw, rcpts, "inbox").await
    }

    /// As [`Core::deliver_local`], into the mailbox with special-use `role`.
    pub async fn deliver_local_to(
        &self,
        raw: Vec<u8>,
        rcpts: &[(u32, &str)],
        role: &str,
    ) -> Result<Delivered, MailError> {
        let mut targets: Vec<IngestTarget> = Vec::new();
        // Messages a Sieve script made: copies whose header it changed
        // (RFC 5293) and copies of what it sent (:fcc, RFC 8580), each
        // stored as a message of its own.
        let mut edited: Vec<(Vec<u8>, IngestTarget)> = Vec::new();
        let mut refused: Vec<crate::sieve::refusal::Refused> = Vec::new();
        let mut seen: Vec<u32> = Vec::new();
        let from = crate::sieve::deliver::envelope_from(&raw);
        let mut notices: Vec<(u32, String, String)> = Vec::new();
        for (id, to) in rcpts {
            if seen.contains(id) {
                continue;
            }
            seen.push(*id);
            let mut t = IngestTarget::inbox(*id);
            t.folder = crate::mail::Folder::Role(role.to_string());
            let account = self.directory.account_by_id(*id).await.ok().flatten();
            if let Some(a) = &account {
                t.quota_bytes = a.quota_bytes;
                t.quota_messages = a.quota_messages;
            }
            // Mail for the Inbox goes through the account's Sieve script
            // (which may file it elsewhere, flag it, discard it or
            // redirect it).
            // Mail the spam filter or a DMARC policy sent to Junk runs
            // through it too: there its keep is the Junk mailbox.
            match account.filter(|_| role == "inbox" || role == "junk") {
                Some(a) => {
                    let plan = crate::sieve::deliver::plan(self, &a, &raw, &from, to).await;
                    if let Some(e) = &plan.error {
                        notices.push((a.id, a.address.clone(), e.clone()));
                    }
                    if let Some((reason, extended)) = plan.reject {
                        refused.push(crate::sieve::refusal::Refused {
                            account: a.id,
                            address: a.address.clone(),
                            reason,
                            extended,
                        });
                    }
                    for (folder, flags, changed) in plan.files {
                        let mut t = t.clone();
                        t.folder = match folder {
                            crate::mail::Folder::Role(r) if r == "inbox" => {
                                crate::mail::Folder::Role(role.to_string())
                            }
                            f => f,
                        };
                        t.flags = flags;
                        match changed {
                            Some(m) => edited.push((m, t)),
                            None => targets.push(t),
                        }
                    }
                    self.sieve_redirects(&a, plan.redirects).await?;
                }
                None => targets.push(t),
            }
        }
        // The message, kept for the sender's notice when a script refused.
        let original = (!refused.is_empty()).then(|| raw.clone());
        if targets.is_empty() && edited.is_empty() {
            return Ok(Delivered {
                stored: 0,
                refused,
                original,
            });
        }
        let end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(raw.len(), |p| p + 4);
        // A delivery or read report, for the JMAP submission it answers.
        let report = crate::jmap::reports::is_report(&raw[..end]).then(|| raw.clone());
        let mut stored = Vec::new();
        for (m, t) in edited {
            let req = IngestRequest {
                raw: m,
                targets: vec![t],
                received_at: None,
            };
            stored.extend(self.mail.ingest(req).await?);
        }
        if !targets.is_empty() {
            let req = IngestRequest {
                raw,
                targets,
                received_at: None,
            };
            stored.extend(self.mail.ingest(req).await?);
        }
        for (id, address, e) in notices {
            let notice = crate::sieve::deliver::error_notice(&self.config.hostname, &address, &e);
            if let Err(e) = self
                .mail
                .ingest(IngestRequest {
                    raw: notice,
                    targets: vec![IngestTarget::inbox(id)],
                    received_at: None,
                })
                .await
            {
                tracing::warn!(account = %address, "Sieve failure notice not stored: {e}");
            }
        }
        if let Some(raw) = report {
            let emails: Vec<(u32, u64)> = stored.iter().map(|o| (o.account, o.email)).collect();
            crate::jmap::reports::after_delivery(self, &raw, &emails).await;
        }
        Ok(Delivered {
            stored: stored.len(),
            refused,
            original,
        })
    }

    /// Tells the sender of `d.original` about the refusals its scripts
    /// made that were not made in the protocol (RFC 5429): a DSN for
    /// `ereject`, an MDN for `reject`, nothing to the null sender.
    pub async fn report_refusals(
        &self,
        d: &Delivered,
        env_id: Option<String>,
    ) -> Result<(), MailError> {
        let Some(raw) = &d.original else {
            return Ok(());
        };
        let sender = crate::sieve::deliver::envelope_from(raw);
        for r in &d.refused {
            if sender.is_empty() {
                // RFC 5429 §2.1.2, §2.2.1: never to the null sender.
                tracing::info!(account = %r.address, "Sieve refusal not reported: the sender is null");
                metrics::counter!("petrel_sieve_refusals_total", "how" => "unreported")
                    .increment(1);
                continue;
            }
            if r.extended {
                let mut q = crate::queue::QueueRcpt::new(&r.address);
                q.status = crate::queue::RcptStatus::Failed {
                    reply: r.dsn_reply(),
                    host: self.config.hostname.clone(),
                };
                self.queue
                    .notify_local(
                        &self.config.hostname,
                        &sender,
                        env_id.clone(),
                        vec![q],
                        raw,
                        crate::queue::dsn::Action::Failed,
                    )
                    .await
                    .map_err(MailError::from)?;
                metrics::counter!("petrel_sieve_refusals_total", "how" => "dsn").increment(1);
                tracing::info!(account = %r.address, to = %sender, "Sieve ereject: DSN queued");
            } else {
                let mdn = crate::sieve::refusal::mdn(&self.config.hostname, r, &sender, raw);
                let mut rcpt = crate::queue::QueueRcpt::new(&sender);
                rcpt.notify = crate::queue::Notify::default();
                self.queue
                    .enqueue(crate::queue::NewMessage {
                        recipients: vec![rcpt],
                        smtputf8: !sender.is_ascii(),
                        raw: mdn,
                        ..Default::default()
                    })
                    .await
                    .map_err(MailError::from)?;
                metrics::counter!("petrel_sieve_refusals_total", "how" => "mdn").increment(1);
                tracing::info!(account = %r.address, to = %sender, "Sieve reject: MDN queued");
            }
        }
        Ok(())
    }
}

/// What a local delivery did: messages stored, and the accounts whose
/// Sieve script refused the message (RFC 5429), with the message kept
/// for the sender's notice.
#[derive(Debug, Default)]
pub struct Delivered {
    pub stored: usize,
    pub refused: Vec<crate::sieve::refusal::Refused>,
    pub original: Option<Vec<u8>>,
}

impl Delivered {
    /// Whether every one of `accounts` refused and nothing was stored.
    pub fn all_refused(&self, accounts: &[u32]) -> bool {
        !accounts.is_empty()
            && self.stored == 0
            && accounts
                .iter()
                .all(|a| self.refused.iter().any(|r| r.account == *a))
    }

    /// The reply that refuses in the protocol, when every one of
    /// `accounts` refused, nothing was stored, and the refusals may be
    /// made so (RFC 5429 §2.1.1, §2.2): the first one's.
    pub fn protocol_refusal(&self, accounts: &[u32]) -> Option<String> {
        if !self.all_refused(accounts) {
            return None;
        }
        let replies: Option<Vec<String>> =
            self.refused.iter().map(|r| r.protocol_reply()).collect();
        replies?.into_iter().next()
    }
}

impl Core {
    /// Queues what a Sieve script sends: redirects (RFC 5228 §4.2),
    /// vacation responses (RFC 5230) and notifications (RFC 5436), each from the envelope sender the
    /// plan names. A queue that fails fails the delivery (a temporary
    /// error: the sender retries, nothing is lost).
    async fn sieve_redirects(
        &self,
        account: &crate::directory::Account,
        sends: Vec<crate::sieve::deliver::Outgoing>,
    ) -> Result<(), MailError> {
        for crate::sieve::deliver::Outgoing {
            to,
            raw,
            from,
            kind,
        } in sends
        {
            use crate::sieve::deliver::Sent;
            let to = crate::smtp::proto::wire_mailbox(&to);
            let mut rcpt = crate::queue::QueueRcpt::new(&to);
            if kind != Sent::Redirect {
                // RFC 5230 §5.1, RFC 5436 §2.7: NOTIFY=NEVER.
                rcpt.notify = crate::queue::Notify::default();
            }
            let id = self
                .queue
                .enqueue(crate::queue::NewMessage {
                    from: from.to_string(),
                    recipients: vec![rcpt],
                    smtputf8: !to.is_ascii() || !from.is_ascii(),
                    raw,
                    ..Default::default()
                })
                .await
                .map_err(MailError::from)?;
            match kind {
                Sent::Vacation => {
                    metrics::counter!("petrel_sieve_vacation_responses_total").increment(1);
                    tracing::info!(account = %account.address, to = %to, queue_id = id, "Sieve vacation response queued");
                }
                Sent::Redirect => {
                    metrics::counter!("petrel_sieve_redirects_total").increment(1);
                    tracing::info!(account = %account.address, to = %to, queue_id = id, "Sieve redirect queued");
                }
                Sent::Notification => {
                    metrics::counter!("petrel_sieve_notifications_total").increment(1);
                    tracing::info!(account = %account.address, to = %to, queue_id = id, "Sieve notification queued");
                }
            }
        }
        Ok(())
    }
}

/// RFC 5322 date of a Unix time, in UTC.
pub fn rfc5322_date(ts: i64) -> String {
    mail_parser::DateTime::from_timestamp(ts).to_rfc822()
}

pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A short random id for log lines and Received headers.
pub fn session_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// A new Message-ID (without angle brackets) for a message this server
/// writes itself: vacation responses, JMAP creations, read receipts.
pub fn new_message_id(hostname: &str) -> String {
    format!("{}.{}@{hostname}", session_id(), unix_now())
}
