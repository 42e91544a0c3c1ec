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
        Ok(Core {
            directory: Directory::new(store.clone(), &config.auth, &config.passwords),
            queue: Queue::new(
                store.clone(),
                mail.blobs.clone(),
                config.queue.expire,
                crate::queue::backoff(&config.queue.retry, 1),
            )
            .on_progress(crate::mail::records::submission_progressed),
            resolver: Resolver::new(&config.resolver)?,
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
            config,
            store,
            mail,
            tls,
        })
    }

    /// Stores a message in the Inbox of each account, atomically, with
    /// each account's quota applied.
    pub async fn deliver_local(&self, raw: Vec<u8>, accounts: &[u32]) -> Result<usize, MailError> {
        self.deliver_local_to(raw, accounts, "inbox").await
    }

    /// As [`Core::deliver_local`], into the mailbox with special-use `role`.
    pub async fn deliver_local_to(
        &self,
        raw: Vec<u8>,
        accounts: &[u32],
        role: &str,
    ) -> Result<usize, MailError> {
        let mut targets: Vec<IngestTarget> = Vec::new();
        let mut seen: Vec<u32> = Vec::new();
        let from = crate::sieve::deliver::envelope_from(&raw);
        let mut notices: Vec<(u32, String, String)> = Vec::new();
        for id in accounts {
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
            match account.filter(|_| role == "inbox") {
                Some(a) => {
                    let plan = crate::sieve::deliver::plan(self, &a, &raw, &from).await;
                    if let Some(e) = &plan.error {
                        notices.push((a.id, a.address.clone(), e.clone()));
                    }
                    for (folder, flags) in plan.files {
                        let mut t = t.clone();
                        t.folder = folder;
                        t.flags = flags;
                        targets.push(t);
                    }
                    self.sieve_redirects(&a, plan.redirects).await?;
                }
                None => targets.push(t),
            }
        }
        if targets.is_empty() {
            return Ok(0);
        }
        // The header section, for the vacation responses due after delivery.
        let end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(raw.len(), |p| p + 4);
        let head = (role == "inbox").then(|| raw[..end].to_vec());
        // A delivery or read report, for the JMAP submission it answers.
        let report = crate::jmap::reports::is_report(&raw[..end]).then(|| raw.clone());
        let mut accounts: Vec<u32> = targets.iter().map(|t| t.account).collect();
        accounts.dedup();
        let stored = self
            .mail
            .ingest(IngestRequest {
                raw,
                targets,
                received_at: None,
            })
            .await?;
        if let Some(head) = head {
            crate::vacation::after_delivery(self, &head, &accounts).await;
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
        Ok(stored.len())
    }
}

impl Core {
    /// Queues what a Sieve script sends: redirects (RFC 5228 §4.2) and
    /// vacation responses (RFC 5230), each from the envelope sender the
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
            response,
        } in sends
        {
            let mut rcpt = crate::queue::QueueRcpt::new(&to);
            if response {
                // RFC 5230 §5.1: NOTIFY=NEVER for the response.
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
            if response {
                metrics::counter!("petrel_sieve_vacation_responses_total").increment(1);
                tracing::info!(account = %account.address, to = %to, queue_id = id, "Sieve vacation response queued");
            } else {
                metrics::counter!("petrel_sieve_redirects_total").increment(1);
                tracing::info!(account = %account.address, to = %to, queue_id = id, "Sieve redirect queued");
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
