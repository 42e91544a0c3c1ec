//! The SMTP session (RFC 5321) in its three roles: the inbound MTA (port
//! 25), message submission (RFC 6409, ports 587/465, AUTH required) and
//! LMTP (RFC 2033). EHLO … DATA/BDAT → local delivery or the queue.

use std::net::SocketAddr;
use std::time::Duration;

use super::data::ChunkReceiver;
use super::proto::{parse_command, Command, Params};
use super::spool::Spool;
use super::verify::Verdict;
use crate::core::{rfc5322_date, session_id, unix_now, SharedCore};
use crate::directory::sasl::{
    authenticate, b64_encode, decode_response, Response, SaslIo, SaslOutcome, MECHANISMS,
};
use crate::directory::{Account, Recipient};
use crate::mail::MailError;
use crate::net::{Conn, Line, Shutdown};
use crate::queue::{Notify, QueueRcpt};
use crate::sieve::smtp::{Stage, Verdict as Policy};

mod filters;
mod handoff;
mod policy;
mod receive;
mod spam;

/// Which service a listener offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Port 25: mail for local recipients only, no AUTH.
    Mta,
    /// Ports 587/465: authenticated users send anywhere.
    Submission,
    /// LMTP: local recipients, one reply per recipient after the data.
    Lmtp,
}

struct Rcpt {
    address: String,
    /// Local accounts; empty for a remote recipient (queued).
    accounts: Vec<u32>,
    /// Addresses in other domains a group forwards to.
    forward: Vec<String>,
    notify: Option<Notify>,
    orcpt: Option<String>,
}

impl Envelope {
    /// Every address a group among the recipients forwards to, once.
    fn forward_targets(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .rcpts
            .iter()
            .flat_map(|r| r.forward.iter().cloned())
            .collect();
        all.sort();
        all.dedup();
        all
    }

    /// The domain of the first recipient that forwards: its key seals.
    fn forwarding_domain(&self) -> Option<String> {
        self.rcpts
            .iter()
            .find(|r| !r.forward.is_empty())
            .and_then(|r| r.address.rsplit_once('@'))
            .map(|(_, d)| d.to_ascii_lowercase())
    }
}

#[derive(Default)]
struct Envelope {
    from: Option<String>,
    rcpts: Vec<Rcpt>,
    ret_full: bool,
    env_id: Option<String>,
    requiretls: bool,
    smtputf8: bool,
    binary: bool,
    /// BDAT chunks received so far (RFC 3030), and where they wait.
    chunks: Option<(ChunkReceiver, Spool)>,
    /// Recipients a Sieve script accepted and dropped (`discard`), and
    /// spam traps (counted here too).
    discarded: usize,
    /// Recipients that are spam traps (`spam.traps`).
    trapped: usize,
}

pub struct Session {
    core: SharedCore,
    conn: Conn,
    peer: SocketAddr,
    mode: Mode,
    helo: Option<String>,
    esmtp: bool,
    env: Envelope,
    account: Option<Account>,
    errors: usize,
    messages: usize,
    id: String,
    shutdown: Shutdown,
    /// Moves when an account is disabled or deleted.
    revocations: tokio::sync::watch::Receiver<u64>,
    /// The last reply's first line (the transaction log reads it).
    last_reply: String,
    /// The Authentication-Results header of the message being finished.
    auth_results: String,
}

const REVOKED: &str = "421 4.7.0 This account was disabled or removed, closing connection";

enum Flow {
    Continue,
    Close,
}

/// RFC 5321 §4.1.4 and RFC 6531: a non-ASCII address needs SMTPUTF8.
fn is_ascii_addr(a: &str) -> bool {
    a.is_ascii()
}

impl Session {
    pub fn new(
        core: SharedCore,
        conn: Conn,
        peer: SocketAddr,
        shutdown: Shutdown,
        mode: Mode,
    ) -> Self {
        Session {
            revocations: core.directory.revoked.watch(),
            core,
            conn,
            peer,
            mode,
            helo: None,
            esmtp: false,
            env: Envelope::default(),
            account: None,
            errors: 0,
            messages: 0,
            id: session_id(),
            shutdown,
            last_reply: String::new(),
            auth_results: String::new(),
        }
    }

    async fn reply(&mut self, text: &str) -> std::io::Result<()> {
        self.last_reply.clear();
        self.last_reply
            .push_str(text.split("\r\n").next().unwrap_or(text));
        if matches!(text.as_bytes().first(), Some(b'4' | b'5')) {
            metrics::counter!("petrel_smtp_rejections_total", "status" => crate::observe::metrics::smtp_status(text)).increment(1);
        }
        let mut out = String::with_capacity(text.len() + 2);
        out.push_str(text);
        out.push_str("\r\n");
        self.conn.write(out.as_bytes()).await
    }

    pub async fn run(mut self) {
        self.serve().await;
        self.conn.close().await;
    }

    async fn serve(&mut self) {
        metrics::counter!("petrel_smtp_sessions_total", "listener" => super::txlog::listener(self.mode)).increment(1);
        let kind = if self.mode == Mode::Lmtp {
            "LMTP"
        } else {
            "ESMTP"
        };
        if let Policy::Reject(reply) = self.policy(Stage::Connect, None, Vec::new(), b"").await {
            // RFC 5321 §3.1: a refusal instead of the greeting.
            let _ = self.reply(&reply).await;
            return;
        }
        let greeting = format!("220 {} {kind} Petrel", self.core.config.hostname);
        if self.reply(&greeting).await.is_err() {
            return;
        }
        let cfg = self.core.config.smtp.clone();
        loop {
            if self.shutdown.is_shutting_down() && self.conn.buffered().is_empty() {
                let _ = self
                    .reply("421 4.3.2 Server shutting down, try again later")
                    .await;
                return;
            }
            let me = self.account.as_ref().map(|a| a.id);
            let line = tokio::select! {
                r = self.conn.read_line_timeout(cfg.max_line_length, Duration::from_secs(cfg.timeout_command)) => r,
                _ = self.shutdown.wait() => {
                    let _ = self.reply("421 4.3.2 Server shutting down, try again later").await;
                    return;
                }
                // A disabled or deleted account ends its sessions.
                _ = crate::directory::until_revoked(&self.core.directory, &mut self.revocations, me) => {
                    let _ = self.reply(REVOKED).await;
                    return;
                }
            };
            if me.is_some_and(|id| self.core.directory.revoked.is_revoked(id)) {
                let _ = self.reply(REVOKED).await;
                return;
            }
            let line = match line {
                Ok(Line::Line(l)) => l,
                Ok(Line::TooLong) => {
                    if self.error("500 5.5.2 Line too long").await.is_err() {
                        return;
                    }
                    continue;
                }
                Ok(Line::Eof) => return,
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    let _ = self
                        .reply("421 4.4.2 Timeout waiting for a command, closing")
                        .await;
                    return;
                }
                Err(_) => return,
            };
            match self.command(&line).await {
                Ok(Flow::Continue) => {}
                Ok(Flow::Close) | Err(_) => return,
            }
        }
    }

    /// Replies with an error and counts it; too many close the session.
    async fn error(&mut self, text: &str) -> std::io::Result<Flow> {
        self.errors += 1;
        if self.errors >= self.core.config.smtp.max_errors {
            self.reply("421 4.7.0 Too many errors, closing connection")
                .await?;
            return Ok(Flow::Close);
        }
        self.reply(text).await?;
        Ok(Flow::Continue)
    }

    fn auth_offered(&self) -> bool {
        self.mode == Mode::Submission
            && (self.conn.stream.is_tls() || self.core.config.smtp.auth_without_tls)
    }

    fn ehlo_lines(&self) -> Vec<String> {
        let cfg = &self.core.config;
        let mut lines = vec![
            format!("{} Hello {}", cfg.hostname, self.peer.ip()),
            "PIPELINING".to_string(),
            format!("SIZE {}", cfg.smtp.max_message_size),
            "8BITMIME".into(),
            "ENHANCEDSTATUSCODES".into(),
            "CHUNKING".into(),
            "BINARYMIME".into(),
            "SMTPUTF8".into(),
            "DSN".into(),
        ];
        if self.conn.stream.is_tls() {
            // RFC 8689 §4.1: offered only over TLS.
            lines.push("REQUIRETLS".into());
        } else if self.core.tls.is_some() {
            lines.push("STARTTLS".into());
        }
        if self.auth_offered() && self.account.is_none() {
            lines.push(format!("AUTH {}", MECHANISMS.join(" ")));
        }
        lines.push("HELP".into());
        lines
    }

    async fn command(&mut self, line: &[u8]) -> std::io::Result<Flow> {
        let cmd = match parse_command(line) {
            Ok(c) => c,
            Err(e) => return self.error(&e.reply()).await,
        };
        match cmd {
            Command::Ehlo(_) | Command::Helo(_) if self.mode == Mode::Lmtp => {
                return self.error("500 5.5.1 LMTP: use LHLO").await;
            }
            Command::Lhlo(_) if self.mode != Mode::Lmtp => {
                return self.error("500 5.5.1 Command not recognised").await;
            }
            Command::Ehlo(d) | Command::Lhlo(d) => {
                self.helo = Some(d);
                self.esmtp = true;
                self.env = Envelope::default();
                if let Policy::Reject(r) = self.policy(Stage::Ehlo, None, Vec::new(), b"").await {
                    self.helo = None;
                    return self.refuse(&r).await;
                }
                let lines = self.ehlo_lines();
                let n = lines.len();
                let text: Vec<String> = lines
                    .into_iter()
                    .enumerate()
                    .map(|(i, l)| format!("250{}{l}", if i + 1 == n { ' ' } else { '-' }))
                    .collect();
                self.reply(&text.join("\r\n")).await?;
            }
            Command::Helo(d) => {
                self.helo = Some(d);
                self.esmtp = false;
                self.env = Envelope::default();
                if let Policy::Reject(r) = self.policy(Stage::Ehlo, None, Vec::new(), b"").await {
                    self.helo = None;
                    return self.refuse(&r).await;
                }
                let t = format!("250 {}", self.core.config.hostname);
                self.reply(&t).await?;
            }
            Command::StartTls => {
                let Some(acceptor) = self.core.tls.clone() else {
                    return self.error("502 5.5.1 STARTTLS not available").await;
                };
                if self.conn.stream.is_tls() {
                    return self.error("503 5.5.1 TLS already active").await;
                }
                self.reply("220 2.0.0 Ready to start TLS").await?;
                // RFC 3207 §4.2: bytes pipelined after STARTTLS are dropped.
                let n = self.conn.buffered().len();
                self.conn.consume(n);
                if self.conn.start_tls(&acceptor).await.is_err() {
                    return Ok(Flow::Close);
                }
                // RFC 3207 §4.2: forget everything learned before TLS.
                self.helo = None;
                self.esmtp = false;
                self.env = Envelope::default();
                self.account = None;
            }
            Command::Auth { mechanism, initial } => return self.auth(&mechanism, initial).await,
            Command::Mail { from, params } => return self.mail(from, params).await,
            Command::Rcpt { to, params } => {
                if self.env.from.is_none() {
                    return self.error("503 5.5.1 Send MAIL first").await;
                }
                if self.env.rcpts.len() >= self.core.config.smtp.max_recipients {
                    return self.error("452 4.5.3 Too many recipients").await;
                }
                if !self.env.smtputf8 && !is_ascii_addr(&to) {
                    return self
                        .error("553 5.6.7 Non-ASCII address needs MAIL FROM with SMTPUTF8")
                        .await;
                }
                let mut notify = None;
                let mut orcpt = None;
                for (k, v) in &params {
                    match (k.as_str(), v.as_deref()) {
                        ("NOTIFY", Some(v)) if self.esmtp && notify.is_none() => {
                            match Notify::parse(v) {
                                Some(n) if !(v.to_ascii_uppercase().contains("NEVER") && v.contains(',')) => notify = Some(n),
                                _ => return self.error("501 5.5.4 Bad NOTIFY value").await,
                            }
                        }
                        ("ORCPT", Some(v)) if self.esmtp && orcpt.is_none() && v.contains(';') && v.len() <= 500 => {
                            orcpt = Some(v.to_string())
                        }
                        _ => return self.error("555 5.5.4 Unsupported RCPT parameter").await,
                    }
                }
                return self.rcpt(to, notify, orcpt).await;
            }
            Command::Data => {
                if self.env.from.is_none() {
                    return self.error("503 5.5.1 Send MAIL first").await;
                }
                if self.env.rcpts.is_empty() && self.env.discarded == 0 {
                    return self.error("554 5.5.1 No valid recipients").await;
                }
                if self.env.chunks.is_some() {
                    return self.error("503 5.5.1 DATA after BDAT is not allowed").await;
                }
                if self.env.binary {
                    // RFC 3030 §3: BINARYMIME content goes by BDAT only.
                    return self.error("503 5.5.1 BODY=BINARYMIME requires BDAT").await;
                }
                return self.data().await;
            }
            Command::Bdat { size, last } => return self.bdat(size, last).await,
            Command::Rset => {
                self.env = Envelope::default();
                self.reply("250 2.0.0 OK").await?;
            }
            Command::Noop => self.reply("250 2.0.0 OK").await?,
            Command::Quit => {
                self.reply("221 2.0.0 Bye").await?;
                return Ok(Flow::Close);
            }
            Command::Help => {
                self.reply(
                    "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT HELP STARTTLS AUTH",
                )
                .await?
            }
            // RFC 5321 §3.5.3: VRFY may be answered with 252 when verifying
            // is turned off; EXPN is off (§7.3).
            Command::Vrfy(_) => {
                self.reply(
                    "252 2.5.2 Cannot VRFY user, but will accept message and attempt delivery",
                )
                .await?
            }
            Command::Expn(_) => return self.error("502 5.5.1 EXPN is disabled").await,
        }
        Ok(Flow::Continue)
    }

    /// AUTH (RFC 4954 §4).
    async fn auth(&mut self, mechanism: &str, initial: Option<String>) -> std::io::Result<Flow> {
        if self.mode != Mode::Submission {
            return self
                .error("503 5.5.1 AUTH is not available on this listener")
                .await;
        }
        if self.helo.is_none() || !self.esmtp {
            return self.error("503 5.5.1 Send EHLO first").await;
        }
        if self.account.is_some() {
            return self.error("503 5.5.1 Already authenticated").await;
        }
        if self.env.from.is_some() {
            return self
                .error("503 5.5.1 AUTH is not allowed during a mail transaction")
                .await;
        }
        if !self.auth_offered() {
            return self
                .error("538 5.7.11 Encryption required for requested authentication mechanism")
                .await;
        }
        let ip = self.peer.ip();
        let initial = match initial {
            None => None,
            Some(ir) => match decode_response(ir.as_bytes()) {
                Response::Data(d) => Some(d),
                Response::Cancel => return self.error("501 5.0.0 Authentication cancelled").await,
                Response::BadEncoding => return self.error("501 5.5.2 Invalid base64").await,
            },
        };
        let core = self.core.clone();
        let outcome =
            authenticate(&core.directory, ip, &mut SmtpSasl(self), mechanism, initial).await;
        match outcome {
            SaslOutcome::Success(acct) => {
                tracing::info!(session = %self.id, login = %acct.address, "SMTP AUTH");
                self.account = Some(acct);
                self.reply("235 2.7.0 Authentication successful").await?;
            }
            // One answer whatever the password was (README: Security).
            SaslOutcome::Throttled => {
                return self
                    .error("454 4.7.0 Too many failed logins, try again later")
                    .await;
            }
            SaslOutcome::Failed => {
                return self
                    .error("535 5.7.8 Authentication credentials invalid")
                    .await;
            }
            SaslOutcome::Blocked => {
                return self
                    .error("535 5.7.8 This password is a well-known one and is blocked: have it changed")
                    .await;
            }
            SaslOutcome::Cancelled => {
                return self.error("501 5.0.0 Authentication cancelled").await
            }
            SaslOutcome::Malformed(why) => {
                return self.error(&format!("501 5.5.2 {why}")).await;
            }
            SaslOutcome::Unsupported => {
                return self
                    .error("504 5.5.4 Unrecognized authentication type")
                    .await;
            }
            SaslOutcome::Unavailable => {
                self.reply("454 4.7.0 Temporary authentication failure")
                    .await?;
            }
            SaslOutcome::Closed => return Ok(Flow::Close),
        }
        Ok(Flow::Continue)
    }

    /// Whether the client's address is in `smtp.require-tls-from`.
    fn tls_required(&self) -> bool {
        let ip = self.peer.ip();
        self.core
            .config
            .smtp
            .require_tls_from
            .iter()
            .filter_map(|c| c.parse::<crate::net::limit::Cidr>().ok())
            .any(|c| c.contains(ip))
    }

    async fn mail(&mut self, from: String, params: Params) -> std::io::Result<Flow> {
        if self.helo.is_none() {
            return self.error("503 5.5.1 Send EHLO or HELO first").await;
        }
        if self.env.from.is_some() {
            return self.error("503 5.5.1 Nested MAIL command").await;
        }
        if self.messages >= self.core.config.smtp.max_messages_per_connection {
            self.reply("421 4.7.0 Too many messages on one connection, closing")
                .await?;
            return Ok(Flow::Close);
        }
        if self.mode == Mode::Submission && self.account.is_none() {
            return self.error("530 5.7.0 Authentication required").await;
        }
        // RFC 3207 §4, §6: hosts configured to need TLS get 530 5.7.0.
        if !self.conn.stream.is_tls() && self.tls_required() {
            return self
                .error("530 5.7.0 Must issue a STARTTLS command first")
                .await;
        }
        let mut env = Envelope::default();
        for (k, v) in &params {
            if !self.esmtp {
                return self.error("555 5.5.4 MAIL parameters need EHLO").await;
            }
            match (k.as_str(), v.as_deref()) {
                ("SIZE", Some(v)) => match v.parse::<u64>() {
                    Ok(n) if n > self.core.config.smtp.max_message_size as u64 => {
                        return self
                            .error("552 5.3.4 Message size exceeds fixed maximum message size")
                            .await;
                    }
                    Ok(_) => {}
                    Err(_) => return self.error("501 5.5.4 Bad SIZE value").await,
                },
                ("BODY", Some(v))
                    if v.eq_ignore_ascii_case("7BIT") || v.eq_ignore_ascii_case("8BITMIME") => {}
                ("BODY", Some(v)) if v.eq_ignore_ascii_case("BINARYMIME") => env.binary = true,
                ("SMTPUTF8", None) => env.smtputf8 = true,
                ("RET", Some(v)) if v.eq_ignore_ascii_case("FULL") => env.ret_full = true,
                ("RET", Some(v)) if v.eq_ignore_ascii_case("HDRS") => env.ret_full = false,
                ("ENVID", Some(v)) if v.len() <= 100 && !v.is_empty() => {
                    env.env_id = Some(v.to_string())
                }
                ("REQUIRETLS", None) => {
                    if !self.conn.stream.is_tls() {
                        return self
                            .error("530 5.7.10 REQUIRETLS needs a TLS session")
                            .await;
                    }
                    env.requiretls = true;
                }
                // RFC 4954 §5: AUTH=<mailbox> is accepted and not trusted.
                ("AUTH", Some(_)) => {}
                _ => return self.error("555 5.5.4 Unsupported MAIL parameter").await,
            }
        }
        if !env.smtputf8 && !is_ascii_addr(&from) {
            return self
                .error("553 5.6.7 Non-ASCII address needs the SMTPUTF8 parameter")
                .await;
        }
        if self.mode == Mode::Mta {
            // RFC 7505 §4.2: a domain with a null MX sends no mail either.
            if let Some((_, domain)) = from.rsplit_once('@') {
                if let crate::queue::route::Lookup::Found(mx) = self.core.resolver.mx(domain).await
                {
                    if mx.len() == 1 && mx[0].1.is_empty() {
                        return self
                            .error("550 5.7.27 Sender address has null MX (RFC 7505)")
                            .await;
                    }
                }
            }
        }
        if let Some(acct) = &self.account {
            // RFC 6409 §6.1: the sender must be the user's own address.
            // The null path is allowed (§3.2: never a reason to refuse).
            let own = from.is_empty()
                || std::iter::once(&acct.address)
                    .chain(acct.aliases.iter())
                    .any(|a| a.eq_ignore_ascii_case(&from));
            if !own {
                return self
                    .error("550 5.7.1 Sender address is not owned by the authenticated user")
                    .await;
            }
        }
        if self.mode == Mode::Submission {
            // RFC 6409 §4.2: envelope domains are fully qualified.
            if let Some(why) = super::submission::envelope_problem(&from) {
                return self.error(&why).await;
            }
        }
        if let Policy::Reject(r) = self.policy(Stage::Mail, Some(&from), Vec::new(), b"").await {
            return self.refuse(&r).await;
        }
        env.from = Some(from);
        self.env = env;
        self.reply("250 2.1.0 Sender OK").await?;
        Ok(Flow::Continue)
    }

    async fn rcpt(
        &mut self,
        to: String,
        notify: Option<Notify>,
        orcpt: Option<String>,
    ) -> std::io::Result<Flow> {
        if self.mode == Mode::Submission {
            // RFC 6409 §4.2: envelope domains are fully qualified.
            if let Some(why) = super::submission::envelope_problem(&to) {
                return self.error(&why).await;
            }
        }
        if self.is_spam_trap(&to) {
            // Accepted like any address, never delivered: the message is
            // learnt as spam (src/smtp/session/spam.rs).
            tracing::info!(session = %self.id, trap = %to, "mail for a spam trap");
            metrics::counter!("petrel_spam_trap_hits_total").increment(1);
            self.env.trapped += 1;
            self.env.discarded += 1;
            self.reply("250 2.1.5 Recipient OK").await?;
            return Ok(Flow::Continue);
        }
        // RFC 5321 §4.5.1: "postmaster" without a domain is always accepted.
        let lookup = if to.eq_ignore_ascii_case("postmaster") {
            format!("postmaster@{}", self.core.config.hostname)
        } else {
            to.clone()
        };
        let resolved = match self.core.directory.resolve(&lookup).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(session = %self.id, "directory lookup failed: {e}");
                self.reply("451 4.3.0 Temporary lookup failure, try again later")
                    .await?;
                return Ok(Flow::Continue);
            }
        };
        // RFC 5321 §4.5.1: postmaster of our own domains and of this host;
        // postmaster of any other domain is someone else's (relaying).
        let is_postmaster = match lookup.rsplit_once('@') {
            Some((local, domain)) => {
                local.eq_ignore_ascii_case("postmaster")
                    && (matches!(resolved, Recipient::Unknown)
                        || domain.eq_ignore_ascii_case(&self.core.config.hostname))
            }
            None => false,
        };
        let (accounts, forward) = match resolved {
            // LMTP delivers to mailboxes only; forwarding is the MTA's job.
            Recipient::Local { accounts, .. } if self.mode == Mode::Lmtp && accounts.is_empty() => {
                return self
                    .error("550 5.1.1 No mailbox here for this address")
                    .await
            }
            Recipient::Local { accounts, .. } if self.mode == Mode::Lmtp => (accounts, Vec::new()),
            Recipient::Local { accounts, forward } => (accounts, forward),
            Recipient::Remote if self.account.is_some() => (Vec::new(), Vec::new()),
            Recipient::Unknown | Recipient::Remote if is_postmaster => {
                match self.postmaster_fallback().await {
                    Some(id) => (vec![id], Vec::new()),
                    None => return self.error("550 5.1.1 Mailbox unavailable").await,
                }
            }
            Recipient::Unknown => return self.error("550 5.1.1 No such user here").await,
            // Never an open relay: only authenticated users send elsewhere.
            Recipient::Remote => return self.error("554 5.7.1 Relay access denied").await,
        };
        // Refuse early when an account is already full (RFC 5321 §4.5.3.1.10).
        for id in &accounts {
            if let (Ok(Some(acct)), Ok(usage)) = (
                self.core.directory.account_by_id(*id).await,
                self.core.mail.account_usage(*id).await,
            ) {
                let full = (acct.quota_bytes > 0 && usage.used_bytes >= acct.quota_bytes)
                    || (acct.quota_messages > 0 && usage.messages >= acct.quota_messages);
                if full {
                    self.reply("452 4.2.2 Mailbox full").await?;
                    return Ok(Flow::Continue);
                }
            }
        }
        let from = self.env.from.clone();
        match self
            .policy(Stage::Rcpt, from.as_deref(), vec![&to], b"")
            .await
        {
            Policy::Accept => {}
            Policy::Reject(r) => return self.refuse(&r).await,
            Policy::Discard => {
                self.env.discarded += 1;
                self.reply("250 2.1.5 Recipient OK").await?;
                return Ok(Flow::Continue);
            }
        }
        let remote = accounts.is_empty() && forward.is_empty();
        self.env.rcpts.push(Rcpt {
            address: to,
            accounts,
            forward,
            notify,
            orcpt,
        });
        if remote {
            self.reply("250 2.1.5 Recipient OK, will be relayed")
                .await?;
        } else {
            self.reply("250 2.1.5 Recipient OK").await?;
        }
        Ok(Flow::Continue)
    }

    /// Mail for the postmaster goes to the first admin account when no
    /// postmaster address is configured.
    async fn postmaster_fallback(&self) -> Option<u32> {
        let accounts = self.core.directory.list_accounts().await.ok()?;
        accounts
            .into_iter()
            .find(|a| a.role == crate::directory::Role::Admin && a.enabled)
            .map(|a| a.id)
    }

    /// The message is complete: checks, headers, then local delivery or
    /// the queue. Replies 250 only once it is durable.
    async fn finish_message(&mut self, body: Vec<u8>) -> std::io::Result<Flow> {
        let size = body.len();
        let env = std::mem::take(&mut self.env);
        self.auth_results.clear();
        self.last_reply.clear();
        let flow = self.finish_checked(&env, body).await;
        super::txlog::record(&super::txlog::Transaction {
            session: &self.id,
            mode: self.mode,
            peer: self.peer,
            helo: self.helo.as_deref().unwrap_or(""),
            login: self.account.as_ref().map(|a| a.address.as_str()),
            from: env.from.as_deref().unwrap_or(""),
            rcpts: env.rcpts.iter().map(|r| r.address.as_str()).collect(),
            size,
            reply: &self.last_reply,
            auth_results: &self.auth_results,
            stream: &self.conn.stream,
        });
        flow
    }

    async fn finish_checked(&mut self, env: &Envelope, body: Vec<u8>) -> std::io::Result<Flow> {
        let cfg = self.core.config.smtp.clone();
        self.messages += 1;
        let hops = count_received(&body);
        if hops >= cfg.max_received_headers {
            return self
                .error("554 5.4.6 Mail loop detected (too many Received headers)")
                .await;
        }
        // RFC 6409 §4.2, §5.1: Petrel alters submitted messages (Date,
        // Message-ID, DKIM), so their address fields must be addresses
        // with fully qualified domains.
        if self.mode == Mode::Submission {
            if let Some(why) = super::submission::header_problem(&body) {
                tracing::info!(session = %self.id, "refused: {why}");
                return self.error(&why).await;
            }
        }
        // RFC 6409 §8.1: the author an authenticated user claims must be
        // the user (its address or an alias), not only the envelope.
        if let (Some(acct), true) = (&self.account, cfg.check_from_header) {
            if let Some(other) = super::submission::foreign_author(&body, acct) {
                tracing::info!(session = %self.id, login = %acct.address, from = %other, "refused: From header not the user's");
                return self
                    .error(&format!(
                        "550 5.7.1 The From: header address <{other}> is not yours: send as {} or one of your aliases",
                        acct.address
                    ))
                    .await;
            }
        }
        let mut folder = "inbox";
        let mut auth_results = String::new();
        let mut body = body;
        let forward = env.forward_targets();
        let mut arc_set = None;
        if self.mode == Mode::Mta {
            // RFC 8601 §5: results claiming to be ours come from elsewhere.
            body = strip_own_auth_results(body, &self.core.config.hostname);
            let helo = self.helo.clone().unwrap_or_default();
            let from = env.from.clone().unwrap_or_default();
            // Mail forwarded to other domains is ARC-sealed with the
            // forwarding domain's key (RFC 8617), when it has one.
            let seal_key = match env.forwarding_domain() {
                Some(d) if self.core.config.dkim.arc_seal => {
                    crate::dkim::get(&self.core.store, &d).await.ok().flatten()
                }
                _ => None,
            };
            let seal = seal_key.as_ref().map(|key| super::verify::Sealing {
                key,
                headers: &self.core.config.dkim.headers,
            });
            let checked =
                super::verify::check(&self.core, self.peer.ip(), &helo, &from, &body, seal).await;
            arc_set = checked.arc_set;
            match checked.verdict {
                Verdict::Accept => {}
                Verdict::Junk => folder = "junk",
                Verdict::Reject(reply) => {
                    tracing::info!(session = %self.id, "refused: {reply}");
                    self.reply(&reply).await?;
                    return Ok(Flow::Continue);
                }
                Verdict::TempFail(reply) => {
                    self.reply(&reply).await?;
                    return Ok(Flow::Continue);
                }
            }
            auth_results = checked.header;
            self.auth_results.clone_from(&auth_results);
        }
        match self.content_checks(env, body, &auth_results).await {
            spam::SpamStep::Deliver { body: b, junk } => {
                body = b;
                if junk {
                    folder = "junk";
                }
            }
            spam::SpamStep::Refuse(reply) => {
                tracing::info!(session = %self.id, "refused: {reply}");
                self.reply(&reply).await?;
                return Ok(Flow::Continue);
            }
            spam::SpamStep::Discard => {
                self.reply("250 2.0.0 OK").await?;
                return Ok(Flow::Continue);
            }
        }
        let mut msg = self.add_trace_headers(env, &auth_results, body);
        if self.mode == Mode::Submission {
            msg = self.complete_submission(env, msg).await;
        }
        let rcpts = env.rcpts.iter().map(|r| r.address.as_str()).collect();
        match self
            .policy(Stage::Data, env.from.as_deref(), rcpts, &msg)
            .await
        {
            Policy::Accept if !env.rcpts.is_empty() => {}
            Policy::Reject(r) => return self.refuse(&r).await,
            // Every recipient was discarded, or now the message is.
            Policy::Accept | Policy::Discard => {
                if env.trapped > 0 && env.trapped == env.discarded {
                    tracing::info!(session = %self.id, "message for spam traps only: learnt, not delivered");
                } else {
                    tracing::info!(session = %self.id, "message discarded by Sieve");
                }
                self.reply("250 2.0.0 OK").await?;
                return Ok(Flow::Continue);
            }
        }
        if self.mode == Mode::Lmtp {
            return self.lmtp_deliver(env, msg).await;
        }
        // The forwarded copy is queued first: a failure after it means a
        // retry by the client and one duplicate for the forward targets.
        let mut forwarded = None;
        if !forward.is_empty() {
            let mut copy = arc_set.unwrap_or_default().into_bytes();
            copy.extend_from_slice(&msg);
            let recipients = forward.iter().map(|a| QueueRcpt::new(a)).collect();
            match self.enqueue_copy(env, recipients, copy).await {
                Ok(id) => forwarded = Some(id),
                Err(e) => {
                    tracing::error!(session = %self.id, "forwarding failed: {e}");
                    self.reply("451 4.3.0 Local error in processing, try again later")
                        .await?;
                    return Ok(Flow::Continue);
                }
            }
        }
        let relayed = env
            .rcpts
            .iter()
            .any(|r| r.accounts.is_empty() && r.forward.is_empty());
        let res = if relayed {
            self.enqueue(env, msg).await
        } else if env.rcpts.iter().all(|r| r.accounts.is_empty()) {
            Ok(forwarded)
        } else {
            let local: Vec<(u32, &str)> = env
                .rcpts
                .iter()
                .flat_map(|r| r.accounts.iter().map(|a| (*a, r.address.as_str())))
                .collect();
            let ids: Vec<u32> = local.iter().map(|(a, _)| *a).collect();
            let success: Vec<QueueRcpt> = env
                .rcpts
                .iter()
                .filter(|r| r.notify.is_some_and(|n| n.success))
                .map(|r| {
                    let mut q = QueueRcpt::new(&r.address);
                    q.orcpt = r.orcpt.clone();
                    q.status = crate::queue::RcptStatus::Delivered {
                        reply: "250 2.0.0 Delivered to the mailbox".into(),
                        host: self.core.config.hostname.clone(),
                    };
                    q
                })
                .collect();
            let dsn_copy = (!success.is_empty()).then(|| msg.clone());
            // RFC 5321 §4.4: this is the final delivery, which records
            // the envelope sender (the MTA port added it with the trace
            // fields; submitted mail gets it here).
            let msg = if self.mode == Mode::Submission {
                let mut m = format!(
                    "Return-Path: <{}>\r\n",
                    env.from.as_deref().unwrap_or_default()
                )
                .into_bytes();
                m.extend_from_slice(&msg);
                m
            } else {
                msg
            };
            let delivered = match self.core.deliver_local_to(msg, &local, folder).await {
                Ok(d) => d,
                Err(e) => return self.delivery_failed(e).await,
            };
            // RFC 5429: every recipient's script refused: in the protocol
            // when allowed (nothing was stored); else the sender is told.
            if forwarded.is_none() {
                if let Some(reply) = delivered.protocol_refusal(&ids) {
                    tracing::info!(session = %self.id, "refused by the recipients' Sieve scripts: {reply}");
                    metrics::counter!("petrel_sieve_refusals_total", "how" => "smtp").increment(1);
                    return self.error(&reply).await;
                }
            }
            if let Err(e) = self
                .core
                .report_refusals(&delivered, env.env_id.clone())
                .await
            {
                tracing::warn!(session = %self.id, "Sieve refusal notice not queued: {e}");
            }
            let r: Result<Option<u64>, MailError> = Ok(None);
            if let (Ok(_), Some(copy)) = (&r, dsn_copy) {
                let from = env.from.clone().unwrap_or_default();
                if let Err(e) = self
                    .core
                    .queue
                    .notify_local(
                        &self.core.config.hostname,
                        &from,
                        env.env_id.clone(),
                        success,
                        &copy,
                        crate::queue::dsn::Action::Delivered,
                    )
                    .await
                {
                    tracing::warn!(session = %self.id, "success DSN not queued: {e}");
                }
            }
            r
        };
        match res {
            Ok(queued) => {
                let t = match queued {
                    Some(id) => format!("250 2.0.0 Message queued as {id}"),
                    None => format!("250 2.0.0 Message accepted for delivery ({})", self.id),
                };
                self.reply(&t).await?;
                Ok(Flow::Continue)
            }
            Err(e) => self.delivery_failed(e).await,
        }
    }

    /// RFC 6409 §8: a submission server may add a missing Date and
    /// Message-ID; then the DKIM signature of the sender's domain.
    async fn complete_submission(&self, env: &Envelope, msg: Vec<u8>) -> Vec<u8> {
        let host = &self.core.config.hostname;
        // RFC 6409 §8.3: an invalid Message-ID is replaced.
        let msg = super::submission::drop_invalid_message_id(msg);
        let mut extra = String::new();
        if !has_header(&msg, "date") {
            extra.push_str(&format!("Date: {}\r\n", rfc5322_date(unix_now())));
        }
        if !has_header(&msg, "message-id") {
            extra.push_str(&format!(
                "Message-ID: <{}.{}@{host}>\r\n",
                session_id(),
                unix_now()
            ));
        }
        let msg = if extra.is_empty() {
            msg
        } else {
            // After our trace fields, before the user's header.
            let at = end_of_trace(&msg);
            let mut m = Vec::with_capacity(msg.len() + extra.len());
            m.extend_from_slice(&msg[..at]);
            m.extend_from_slice(extra.as_bytes());
            m.extend_from_slice(&msg[at..]);
            m
        };
        let from = env.from.as_deref().unwrap_or_default();
        crate::dkim::sign_outgoing(&self.core.store, &self.core.config.dkim, from, msg).await
    }

    fn add_trace_headers(&self, env: &Envelope, auth_results: &str, body: Vec<u8>) -> Vec<u8> {
        let from = env.from.clone().unwrap_or_default();
        // RFC 3848: ESMTPS / ESMTPA / ESMTPSA, LMTP.
        let proto = match (
            self.mode,
            self.esmtp,
            self.conn.stream.is_tls(),
            self.account.is_some(),
        ) {
            (Mode::Lmtp, ..) => "LMTP",
            (_, true, true, true) => "ESMTPSA",
            (_, true, false, true) => "ESMTPA",
            (_, true, true, false) => "ESMTPS",
            (_, true, false, false) => "ESMTP",
            (_, false, ..) => "SMTP",
        };
        let for_clause = if env.rcpts.len() == 1 {
            format!("\r\n\tfor <{}>", env.rcpts[0].address)
        } else {
            String::new()
        };
        let helo = self.helo.clone().unwrap_or_default();
        let return_path = if self.mode == Mode::Submission {
            // The Return-Path is added at final delivery, not on submission.
            String::new()
        } else {
            format!("Return-Path: <{from}>\r\n")
        };
        // RFC 8314 §4.3: the cipher suite of a TLS session.
        let tls_clause = match self.conn.stream.tls_info() {
            Some((_, suite)) => format!("\r\n\ttls {suite}"),
            None => String::new(),
        };
        let out = format!(
            "{return_path}{auth_results}Received: from {helo} ([{}])\r\n\tby {} (Petrel) with {proto} id {}{for_clause}{tls_clause};\r\n\t{}\r\n",
            self.peer.ip(),
            self.core.config.hostname,
            self.id,
            rfc5322_date(unix_now())
        )
        .into_bytes();
        // In front of the message in place: a large one is not copied.
        let mut body = body;
        body.splice(0..0, out);
        body
    }
}

/// SMTP AUTH challenges: "334 base64" lines (RFC 4954 §4).
struct SmtpSasl<'a>(&'a mut Session);

impl SaslIo for SmtpSasl<'_> {
    async fn challenge(&mut self, data: &[u8]) -> Option<Response> {
        let line = format!("334 {}", b64_encode(data));
        self.0.reply(&line).await.ok()?;
        let cfg = &self.0.core.config.smtp;
        let (max, t) = (
            cfg.max_line_length,
            Duration::from_secs(cfg.timeout_command),
        );
        match self.0.conn.read_line_timeout(max, t).await {
            Ok(Line::Line(l)) => Some(decode_response(&l)),
            Ok(Line::TooLong) => Some(Response::BadEncoding),
            _ => None,
        }
    }
}

/// The header section of a message, up to and including the blank line's
/// first CRLF.
pub(super) fn header_end(msg: &[u8]) -> usize {
    msg.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 2)
        .unwrap_or(msg.len())
}

/// Whether the header section has a field called `name` (lower case).
pub fn has_header(msg: &[u8], name: &str) -> bool {
    header_lines(msg).any(|(line, continuation)| {
        !continuation
            && line.len() > name.len()
            && line[..name.len()].eq_ignore_ascii_case(name.as_bytes())
            && line[name.len()] == b':'
    })
}

/// The lines of the header section, each with its line ending, and whether
/// it continues the previous field (folding, RFC 5322 §2.2.3).
fn header_lines(msg: &[u8]) -> impl Iterator<Item = (&[u8], bool)> {
    let end = header_end(msg);
    let mut pos = 0;
    std::iter::from_fn(move || {
        if pos >= end {
            return None;
        }
        let line_end = msg[pos..end]
            .iter()
            .position(|&b| b == b'\n')
            .map(|p| pos + p + 1)
            .unwrap_or(end);
        let line = &msg[pos..line_end];
        pos = line_end;
        let continuation = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        Some((line, continuation))
    })
}

fn field_is(line: &[u8], name: &[u8]) -> bool {
    line.len() > name.len() && line[..name.len()].eq_ignore_ascii_case(name)
}

/// Removes Authentication-Results fields whose authserv-id is `hostname`
/// (with their continuation lines).
pub fn strip_own_auth_results(mut msg: Vec<u8>, hostname: &str) -> Vec<u8> {
    const NAME: &[u8] = b"authentication-results:";
    // Byte ranges of the fields to drop, found first; the message is then
    // shortened in place (no copy of a large message).
    let mut drop: Vec<(usize, usize)> = Vec::new();
    let mut dropping = false;
    let mut at = 0;
    for (line, continuation) in header_lines(&msg) {
        if !continuation {
            dropping = field_is(line, NAME) && {
                let value = String::from_utf8_lossy(&line[NAME.len()..]);
                let id = value
                    .trim_start()
                    .split(|c: char| c == ';' || c.is_whitespace())
                    .next()
                    .unwrap_or("");
                id.eq_ignore_ascii_case(hostname)
            };
        }
        if dropping {
            match drop.last_mut() {
                Some((_, end)) if *end == at => *end += line.len(),
                _ => drop.push((at, at + line.len())),
            }
        }
        at += line.len();
    }
    for (start, end) in drop.into_iter().rev() {
        msg.drain(start..end);
    }
    msg
}

/// Offset after the leading Return-Path/Received fields (with their
/// folded continuation lines).
fn end_of_trace(msg: &[u8]) -> usize {
    let mut pos = 0;
    let mut in_trace = false;
    for (line, continuation) in header_lines(msg) {
        let trace = field_is(line, b"received:") || field_is(line, b"return-path:");
        if !(trace || (continuation && in_trace)) {
            break;
        }
        in_trace = true;
        pos += line.len();
    }
    pos
}

/// Number of Received header fields in the header section.
pub fn count_received(msg: &[u8]) -> usize {
    let end = msg
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 2)
        .unwrap_or(msg.len());
    msg[..end]
        .split(|&b| b == b'\n')
        .filter(|l| l.len() >= 9 && l[..9].eq_ignore_ascii_case(b"received:"))
        .count()
}

#[cfg(test)]
mod tests {
    #[test]
    fn header_helpers() {
        let m = b"Received: a\r\n\tb\r\nSubject: x\r\nDate: y\r\n\r\nMessage-ID: body\r\n";
        assert!(super::has_header(m, "date"));
        assert!(super::has_header(m, "subject"));
        assert!(!super::has_header(m, "message-id"));
        assert_eq!(&m[super::end_of_trace(m)..][..8], b"Subject:");
    }

    #[test]
    fn own_auth_results_are_removed() {
        let m = b"Authentication-Results: mx.test;\r\n\tspf=pass\r\nAuthentication-Results: other.test; dkim=pass\r\nSubject: x\r\n\r\nAuthentication-Results: mx.test; body\r\n";
        let out = super::strip_own_auth_results(m.to_vec(), "mx.test");
        assert_eq!(
            out,
            b"Authentication-Results: other.test; dkim=pass\r\nSubject: x\r\n\r\nAuthentication-Results: mx.test; body\r\n"
        );
    }

    #[test]
    fn counts_received_in_header_only() {
        let m = b"Received: a\r\nreceived: b\r\nSubject: x\r\n\r\nReceived: body\r\n";
        assert_eq!(super::count_received(m), 2);
    }
}
