//! The inbound SMTP session (RFC 5321): EHLO … DATA → the ingest pipeline.

use std::net::SocketAddr;
use std::time::Duration;

use super::data::{DataOutcome, DataReceiver};
use super::proto::{parse_command, Command};
use crate::core::{rfc5322_date, session_id, unix_now, SharedCore};
use crate::directory::Recipient;
use crate::mail::{IngestRequest, IngestTarget, MailError};
use crate::net::{Conn, Line, Shutdown};

#[derive(Default)]
struct Envelope {
    from: Option<String>,
    /// (address as given, account ids)
    rcpts: Vec<(String, Vec<u32>)>,
}

pub struct Session {
    core: SharedCore,
    conn: Conn,
    peer: SocketAddr,
    helo: Option<String>,
    esmtp: bool,
    env: Envelope,
    errors: usize,
    messages: usize,
    id: String,
    shutdown: Shutdown,
}

enum Flow {
    Continue,
    Close,
}

impl Session {
    pub fn new(core: SharedCore, conn: Conn, peer: SocketAddr, shutdown: Shutdown) -> Self {
        Session {
            core,
            conn,
            peer,
            helo: None,
            esmtp: false,
            env: Envelope::default(),
            errors: 0,
            messages: 0,
            id: session_id(),
            shutdown,
        }
    }

    async fn reply(&mut self, text: &str) -> std::io::Result<()> {
        let mut out = String::with_capacity(text.len() + 2);
        out.push_str(text);
        out.push_str("\r\n");
        self.conn.write(out.as_bytes()).await
    }

    pub async fn run(mut self) {
        let greeting = format!("220 {} ESMTP Petrel", self.core.config.hostname);
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
            let line = tokio::select! {
                r = self.conn.read_line_timeout(cfg.max_line_length, Duration::from_secs(cfg.timeout_command)) => r,
                _ = self.shutdown.wait() => {
                    let _ = self.reply("421 4.3.2 Server shutting down, try again later").await;
                    return;
                }
            };
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

    async fn command(&mut self, line: &[u8]) -> std::io::Result<Flow> {
        let cmd = match parse_command(line) {
            Ok(c) => c,
            Err(e) => return self.error(&e.reply()).await,
        };
        match cmd {
            Command::Ehlo(d) => {
                self.helo = Some(d);
                self.esmtp = true;
                self.env = Envelope::default();
                let cfg = &self.core.config;
                let mut lines = vec![
                    format!("{} Hello {}", cfg.hostname, self.peer.ip()),
                    "PIPELINING".to_string(),
                    format!("SIZE {}", cfg.smtp.max_message_size),
                    "8BITMIME".into(),
                    "ENHANCEDSTATUSCODES".into(),
                ];
                if self.core.tls.is_some() && !self.conn.stream.is_tls() {
                    lines.push("STARTTLS".into());
                }
                lines.push("HELP".into());
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
                if self.conn.start_tls(&acceptor).await.is_err() {
                    return Ok(Flow::Close);
                }
                // RFC 3207 §4.2: forget everything learned before TLS.
                self.helo = None;
                self.esmtp = false;
                self.env = Envelope::default();
            }
            Command::Mail { from, params } => {
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
                for (k, v) in &params {
                    match (k.as_str(), v.as_deref()) {
                        ("SIZE", Some(v)) if self.esmtp => {
                            match v.parse::<u64>() {
                                Ok(n) if n > self.core.config.smtp.max_message_size as u64 => {
                                    return self.error("552 5.3.4 Message size exceeds fixed maximum message size").await;
                                }
                                Ok(_) => {}
                                Err(_) => return self.error("501 5.5.4 Bad SIZE value").await,
                            }
                        }
                        ("BODY", Some(v))
                            if self.esmtp
                                && (v.eq_ignore_ascii_case("7BIT")
                                    || v.eq_ignore_ascii_case("8BITMIME")) => {}
                        _ => return self.error("555 5.5.4 Unsupported MAIL parameter").await,
                    }
                }
                self.env.from = Some(from);
                self.reply("250 2.1.0 Sender OK").await?;
            }
            Command::Rcpt { to, params } => {
                if self.env.from.is_none() {
                    return self.error("503 5.5.1 Send MAIL first").await;
                }
                if !params.is_empty() {
                    return self.error("555 5.5.4 Unsupported RCPT parameter").await;
                }
                if self.env.rcpts.len() >= self.core.config.smtp.max_recipients {
                    return self.error("452 4.5.3 Too many recipients").await;
                }
                return self.rcpt(to).await;
            }
            Command::Data => {
                if self.env.from.is_none() {
                    return self.error("503 5.5.1 Send MAIL first").await;
                }
                if self.env.rcpts.is_empty() {
                    return self.error("554 5.5.1 No valid recipients").await;
                }
                return self.data().await;
            }
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
                    "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT HELP STARTTLS",
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
            Command::Auth { .. } => {
                return self
                    .error("503 5.5.1 AUTH is not available on this listener")
                    .await;
            }
        }
        Ok(Flow::Continue)
    }

    async fn rcpt(&mut self, to: String) -> std::io::Result<Flow> {
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
        let is_postmaster = lookup
            .split('@')
            .next()
            .is_some_and(|l| l.eq_ignore_ascii_case("postmaster"));
        let ids = match resolved {
            Recipient::Local(ids) => ids,
            Recipient::Unknown | Recipient::Remote if is_postmaster => {
                match self.postmaster_fallback().await {
                    Some(id) => vec![id],
                    None => return self.error("550 5.1.1 Mailbox unavailable").await,
                }
            }
            Recipient::Unknown => return self.error("550 5.1.1 No such user here").await,
            Recipient::Remote => return self.error("554 5.7.1 Relay access denied").await,
        };
        // Refuse early when an account is already full (RFC 5321 §4.5.3.1.10).
        for id in &ids {
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
        self.env.rcpts.push((to, ids));
        self.reply("250 2.1.5 Recipient OK").await?;
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

    async fn data(&mut self) -> std::io::Result<Flow> {
        self.reply("354 Start mail input; end with <CRLF>.<CRLF>")
            .await?;
        let cfg = self.core.config.smtp.clone();
        let mut rx = DataReceiver::new(cfg.max_message_size);
        // Bytes pipelined after DATA are already buffered.
        let mut pending = self.conn.buffered().to_vec();
        let n = pending.len();
        self.conn.consume(n);
        loop {
            if !pending.is_empty() {
                if let DataOutcome::Done { consumed } = rx.feed(&pending) {
                    // Whatever followed the terminator is the next command:
                    // put it back (it was taken from the buffer above).
                    let rest = pending[consumed..].to_vec();
                    self.conn_unread(rest);
                    break;
                }
                pending.clear();
            }
            let read =
                tokio::time::timeout(Duration::from_secs(cfg.timeout_data), self.conn.fill()).await;
            match read {
                Ok(Ok(0)) | Ok(Err(_)) => return Ok(Flow::Close), // client vanished: nothing stored
                Err(_) => {
                    self.reply("421 4.4.2 Timeout waiting for data, closing")
                        .await?;
                    return Ok(Flow::Close);
                }
                Ok(Ok(_)) => {
                    pending = self.conn.buffered().to_vec();
                    let n = pending.len();
                    self.conn.consume(n);
                }
            }
        }
        let env = std::mem::take(&mut self.env);
        if rx.too_big() {
            return self.error("552 5.3.4 Message too big").await;
        }
        let body = rx.into_message();
        let hops = count_received(&body);
        if hops >= cfg.max_received_headers {
            return self
                .error("554 5.4.6 Mail loop detected (too many Received headers)")
                .await;
        }
        let msg = self.add_trace_headers(&env, body);
        let mut targets: Vec<IngestTarget> = Vec::new();
        for (_, ids) in &env.rcpts {
            for id in ids {
                if targets.iter().any(|t| t.account == *id) {
                    continue;
                }
                let mut t = IngestTarget::inbox(*id);
                if let Ok(Some(a)) = self.core.directory.account_by_id(*id).await {
                    t.quota_bytes = a.quota_bytes;
                    t.quota_messages = a.quota_messages;
                }
                targets.push(t);
            }
        }
        let res = self
            .core
            .mail
            .ingest(IngestRequest {
                raw: msg,
                targets,
                received_at: None,
            })
            .await;
        self.messages += 1;
        match res {
            Ok(out) => {
                tracing::info!(session = %self.id, from = ?env.from, recipients = out.len(), "delivered");
                let t = format!("250 2.0.0 Message accepted for delivery ({})", self.id);
                self.reply(&t).await?;
            }
            Err(MailError::OverQuota) => self.reply("452 4.2.2 Mailbox full").await?,
            Err(e) => {
                tracing::error!(session = %self.id, "delivery failed: {e}");
                self.reply("451 4.3.0 Local error in processing, try again later")
                    .await?;
            }
        }
        Ok(Flow::Continue)
    }

    fn conn_unread(&mut self, rest: Vec<u8>) {
        self.conn.unread(rest);
    }

    fn add_trace_headers(&self, env: &Envelope, body: Vec<u8>) -> Vec<u8> {
        let from = env.from.clone().unwrap_or_default();
        let proto = match (self.esmtp, self.conn.stream.is_tls()) {
            (true, true) => "ESMTPS",
            (true, false) => "ESMTP",
            (false, _) => "SMTP",
        };
        let for_clause = if env.rcpts.len() == 1 {
            format!("\r\n\tfor <{}>", env.rcpts[0].0)
        } else {
            String::new()
        };
        let helo = self.helo.clone().unwrap_or_default();
        let mut out = format!(
            "Return-Path: <{from}>\r\nReceived: from {helo} ([{}])\r\n\tby {} (Petrel) with {proto} id {}{for_clause};\r\n\t{}\r\n",
            self.peer.ip(),
            self.core.config.hostname,
            self.id,
            rfc5322_date(unix_now())
        )
        .into_bytes();
        out.extend_from_slice(&body);
        out
    }
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
    fn counts_received_in_header_only() {
        let m = b"Received: a\r\nreceived: b\r\nSubject: x\r\n\r\nReceived: body\r\n";
        assert_eq!(super::count_received(m), 2);
    }
}
