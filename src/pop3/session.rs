//! The POP3 session (RFC 1939): AUTHORIZATION, TRANSACTION and UPDATE
//! states over the account's Inbox, with CAPA (RFC 2449), STLS (RFC 2595),
//! AUTH (RFC 5034) and response codes (RFC 2449 §8, RFC 3206).
//!
//! The session works on a snapshot of the Inbox taken when it enters the
//! TRANSACTION state, and holds the maildrop lock until it ends: a second
//! POP3 session for the account is refused with [IN-USE]. IMAP sessions
//! may change the Inbox meanwhile; a message they expunge reads as gone.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use super::proto::{multiline, parse, Command, ParseError};
use crate::core::{session_id, SharedCore};
use crate::directory::sasl::{
    authenticate, b64_encode, check_password, decode_response, Response, SaslIo, SaslOutcome,
};
use crate::directory::Account;
use crate::net::{Conn, Line, Shutdown};

/// One message of the snapshot.
struct Msg {
    uid: u32,
    email: u64,
    size: u64,
}

struct Maildrop {
    acct: u32,
    mailbox: u32,
    uidvalidity: u32,
    msgs: Vec<Msg>,
    deleted: HashSet<usize>,
    _lock: DropLock,
}

/// The maildrop lock of one account (RFC 1939 §4), released on drop.
struct DropLock(u32);

fn locks() -> &'static Mutex<HashSet<u32>> {
    static LOCKS: std::sync::OnceLock<Mutex<HashSet<u32>>> = std::sync::OnceLock::new();
    LOCKS.get_or_init(Default::default)
}

impl DropLock {
    fn take(acct: u32) -> Option<DropLock> {
        // `then`, not `then_some`: a DropLock made and dropped here would
        // take the mutex again while it is held.
        let fresh = locks().lock().expect("lock").insert(acct);
        fresh.then(|| DropLock(acct))
    }
}

impl Drop for DropLock {
    fn drop(&mut self) {
        locks().lock().expect("lock").remove(&self.0);
    }
}

pub struct Session {
    core: SharedCore,
    conn: Conn,
    peer: SocketAddr,
    id: String,
    shutdown: Shutdown,
    /// USER given, waiting for PASS.
    user: Option<String>,
    drop: Option<Maildrop>,
    out: Vec<u8>,
    /// Moves when an account is disabled or deleted.
    revocations: tokio::sync::watch::Receiver<u64>,
}

enum Flow {
    Continue,
    Close,
}

const REVOKED: &str = "[SYS/PERM] This account was disabled or removed";

impl Session {
    pub fn new(core: SharedCore, conn: Conn, peer: SocketAddr, shutdown: Shutdown) -> Self {
        Session {
            revocations: core.directory.revoked.watch(),
            core,
            conn,
            peer,
            id: session_id(),
            shutdown,
            user: None,
            drop: None,
            out: Vec::with_capacity(1024),
        }
    }

    fn ok(&mut self, text: &str) {
        self.out.extend_from_slice(b"+OK ");
        self.out.extend_from_slice(text.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    fn err(&mut self, text: &str) {
        self.out.extend_from_slice(b"-ERR ");
        self.out.extend_from_slice(text.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        self.conn.write_out(&mut self.out).await
    }

    fn auth_allowed(&self) -> bool {
        self.conn.stream.is_tls() || self.core.config.pop3.auth_without_tls
    }

    fn capabilities(&self) -> Vec<String> {
        let mut caps = vec![
            "TOP".to_string(),
            "UIDL".into(),
            "RESP-CODES".into(),
            "AUTH-RESP-CODE".into(),
            "PIPELINING".into(),
            "EXPIRE NEVER".into(),
            "IMPLEMENTATION Petrel".into(),
        ];
        if self.drop.is_none() {
            if !self.conn.stream.is_tls() && self.core.tls.is_some() {
                caps.push("STLS".into());
            }
            if self.auth_allowed() {
                caps.push("USER".into());
                caps.push("SASL SCRAM-SHA-256 PLAIN LOGIN".into());
            }
        }
        caps
    }

    pub async fn run(mut self) {
        self.serve().await;
        self.conn.close().await;
    }

    async fn serve(&mut self) {
        metrics::counter!("petrel_pop3_sessions_total").increment(1);
        self.ok("Petrel POP3 ready");
        if self.flush().await.is_err() {
            return;
        }
        let cfg = self.core.config.pop3.clone();
        let idle = Duration::from_secs(cfg.timeout_idle);
        loop {
            // Commands already buffered are answered together (PIPELINING).
            let me = self.drop.as_ref().map(|d| d.acct);
            let line = tokio::select! {
                l = self.conn.read_line_timeout(cfg.max_line_length, idle) => l,
                _ = self.shutdown.wait() => {
                    self.err("[SYS/TEMP] Server shutting down");
                    let _ = self.flush().await;
                    return;
                }
                // A disabled or deleted account ends the session, without
                // UPDATE.
                _ = crate::directory::until_revoked(&self.core.directory, &mut self.revocations, me) => {
                    self.err(REVOKED);
                    let _ = self.flush().await;
                    return;
                }
            };
            if me.is_some_and(|id| self.core.directory.revoked.is_revoked(id)) {
                self.err(REVOKED);
                let _ = self.flush().await;
                return;
            }
            let flow = match line {
                Ok(Line::Line(l)) => self.command(&l).await,
                Ok(Line::TooLong) => {
                    self.err("Command line too long");
                    Flow::Continue
                }
                // RFC 1939 §3: an idle client is logged out without UPDATE.
                Ok(Line::Eof) | Err(_) => return,
            };
            if self.conn.buffered().contains(&b'\n') && matches!(flow, Flow::Continue) {
                continue;
            }
            if self.flush().await.is_err() {
                return;
            }
            if let Flow::Close = flow {
                // TLS ends with close_notify, so the client sees a clean end.
                let _ = tokio::io::AsyncWriteExt::shutdown(&mut self.conn.stream).await;
                return;
            }
        }
    }

    async fn command(&mut self, line: &[u8]) -> Flow {
        let cmd = match parse(line) {
            Ok(c) => c,
            Err(ParseError::Unknown) => {
                self.err("Unknown command");
                return Flow::Continue;
            }
            Err(ParseError::Syntax(why)) => {
                self.err(why);
                return Flow::Continue;
            }
        };
        metrics::counter!("petrel_pop3_commands_total", "command" => cmd.name()).increment(1);
        match (&cmd, self.drop.is_some()) {
            (Command::Capa, _) => {
                let caps = self.capabilities();
                self.ok("Capability list follows");
                for c in caps {
                    self.out.extend_from_slice(c.as_bytes());
                    self.out.extend_from_slice(b"\r\n");
                }
                self.out.extend_from_slice(b".\r\n");
            }
            (Command::Quit, false) => {
                self.ok("Petrel POP3 signing off");
                return Flow::Close;
            }
            (Command::Quit, true) => return self.update().await,
            (Command::Noop, true) => self.ok(""),
            (Command::Stls, false) => return self.stls().await,
            (Command::User(name), false) => {
                if !self.auth_allowed() {
                    self.err("Plaintext login needs TLS: use STLS first");
                } else {
                    self.user = Some(name.clone());
                    self.ok("Send PASS");
                }
            }
            (Command::Pass(secret), false) => {
                let Some(user) = self.user.take() else {
                    self.err("USER first");
                    return Flow::Continue;
                };
                let secret = secret.clone();
                return self.login_password(&user, &secret).await;
            }
            (Command::Auth { mechanism, initial }, false) => {
                let (m, i) = (mechanism.clone(), initial.clone());
                return self.auth(m, i).await;
            }
            (_, false) => self.err("Not in the TRANSACTION state: log in first"),
            (Command::Stls | Command::User(_) | Command::Pass(_) | Command::Auth { .. }, true) => {
                self.err("Already logged in")
            }
            (_, true) => self.transaction(cmd).await,
        }
        Flow::Continue
    }

    async fn stls(&mut self) -> Flow {
        let Some(acceptor) = self.core.tls.clone() else {
            self.err("STLS is not available");
            return Flow::Continue;
        };
        if self.conn.stream.is_tls() {
            self.err("TLS is already active");
            return Flow::Continue;
        }
        self.ok("Begin TLS negotiation");
        if self.flush().await.is_err() {
            return Flow::Close;
        }
        // Whatever was pipelined after STLS is dropped (RFC 2595 §4).
        if self.conn.start_tls(&acceptor).await.is_err() {
            return Flow::Close;
        }
        self.user = None;
        Flow::Continue
    }

    async fn login_password(&mut self, user: &str, secret: &str) -> Flow {
        let outcome = check_password(&self.core.directory, self.peer.ip(), user, secret).await;
        self.auth_outcome(outcome).await
    }

    /// The answer to a finished USER/PASS or AUTH. A throttled attempt gets
    /// one answer whatever the password was.
    async fn auth_outcome(&mut self, outcome: SaslOutcome) -> Flow {
        match outcome {
            SaslOutcome::Success(acct) => return self.enter_transaction(acct).await,
            SaslOutcome::Failed => self.err("[AUTH] Authentication failed"),
            SaslOutcome::Blocked => {
                self.err("[AUTH] This password is a well-known one and is blocked: have it changed")
            }
            SaslOutcome::Throttled => {
                self.err("[SYS/TEMP] Too many failed logins, try again later")
            }
            SaslOutcome::Cancelled => self.err("Authentication cancelled"),
            SaslOutcome::Malformed(why) => self.err(why),
            SaslOutcome::Unsupported => self.err("Unsupported mechanism"),
            SaslOutcome::Unavailable => {
                self.err("[SYS/TEMP] Authentication is unavailable, try again later")
            }
            SaslOutcome::Closed => return Flow::Close,
        }
        Flow::Continue
    }

    async fn auth(&mut self, mechanism: Option<String>, initial: Option<String>) -> Flow {
        let Some(mechanism) = mechanism else {
            // RFC 5034 §4: a bare AUTH lists the mechanisms.
            self.ok("Mechanisms follow");
            self.out
                .extend_from_slice(b"SCRAM-SHA-256\r\nPLAIN\r\nLOGIN\r\n.\r\n");
            return Flow::Continue;
        };
        if !self.auth_allowed() {
            self.err("Authentication needs TLS: use STLS first");
            return Flow::Continue;
        }
        let ip = self.peer.ip();
        let initial = match initial.as_deref() {
            None => None,
            Some(ir) => match decode_response(ir.as_bytes()) {
                Response::Data(d) => Some(d),
                Response::Cancel => {
                    self.err("Authentication cancelled");
                    return Flow::Continue;
                }
                Response::BadEncoding => {
                    self.err("Invalid base64");
                    return Flow::Continue;
                }
            },
        };
        if self.flush().await.is_err() {
            return Flow::Close;
        }
        let core = self.core.clone();
        let outcome = authenticate(
            &core.directory,
            ip,
            &mut Pop3Sasl(self),
            &mechanism,
            initial,
        )
        .await;
        self.auth_outcome(outcome).await
    }

    /// Locks the maildrop and takes the snapshot (RFC 1939 §4).
    async fn enter_transaction(&mut self, acct: Account) -> Flow {
        let Some(lock) = DropLock::take(acct.id) else {
            self.err("[IN-USE] The maildrop is in use by another POP3 session");
            return Flow::Continue;
        };
        let mail = &self.core.mail;
        let snapshot = async {
            let inbox = mail
                .mailbox_by_name(acct.id, "INBOX")
                .await?
                .ok_or_else(|| crate::mail::MailError::Invalid("no Inbox".into()))?;
            let mut msgs = Vec::new();
            for e in mail.uids(acct.id, inbox.id).await? {
                if let Some(meta) = mail.email_meta(acct.id, e.email).await? {
                    msgs.push(Msg {
                        uid: e.uid,
                        email: e.email,
                        size: meta.size,
                    });
                }
            }
            Ok::<_, crate::mail::MailError>((inbox, msgs))
        };
        match snapshot.await {
            Ok((inbox, msgs)) => {
                tracing::info!(session = %self.id, login = %acct.address, messages = msgs.len(), "POP3 login");
                let n = msgs.len();
                let size: u64 = msgs.iter().map(|m| m.size).sum();
                self.drop = Some(Maildrop {
                    acct: acct.id,
                    mailbox: inbox.id,
                    uidvalidity: inbox.uidvalidity,
                    msgs,
                    deleted: HashSet::new(),
                    _lock: lock,
                });
                self.ok(&format!("{n} messages ({size} octets)"));
            }
            Err(e) => {
                tracing::warn!(session = %self.id, "POP3 maildrop: {e}");
                self.err("[SYS/TEMP] The maildrop cannot be opened, try again later");
            }
        }
        Flow::Continue
    }

    /// The message numbered `n` unless deleted: its index.
    fn message(&mut self, n: u32) -> Option<usize> {
        let d = self.drop.as_ref()?;
        let i = (n as usize).checked_sub(1)?;
        if i < d.msgs.len() && !d.deleted.contains(&i) {
            Some(i)
        } else {
            None
        }
    }

    async fn transaction(&mut self, cmd: Command) {
        let Some(d) = self.drop.as_ref() else { return };
        match cmd {
            Command::Stat => {
                let (n, size) = d
                    .msgs
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !d.deleted.contains(i))
                    .fold((0, 0), |(n, s), (_, m)| (n + 1, s + m.size));
                self.ok(&format!("{n} {size}"));
            }
            Command::List(None) | Command::Uidl(None) => {
                let uidl = matches!(cmd, Command::Uidl(_));
                let lines: Vec<String> = d
                    .msgs
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !d.deleted.contains(i))
                    .map(|(i, m)| {
                        if uidl {
                            format!("{} {}.{}", i + 1, d.uidvalidity, m.uid)
                        } else {
                            format!("{} {}", i + 1, m.size)
                        }
                    })
                    .collect();
                self.ok("Listing follows");
                for l in lines {
                    self.out.extend_from_slice(l.as_bytes());
                    self.out.extend_from_slice(b"\r\n");
                }
                self.out.extend_from_slice(b".\r\n");
            }
            Command::List(Some(n)) | Command::Uidl(Some(n)) => {
                let uidl = matches!(cmd, Command::Uidl(_));
                let uidvalidity = d.uidvalidity;
                match self.message(n) {
                    Some(i) => {
                        let m = &self.drop.as_ref().expect("drop").msgs[i];
                        let t = if uidl {
                            format!("{n} {uidvalidity}.{}", m.uid)
                        } else {
                            format!("{n} {}", m.size)
                        };
                        self.ok(&t);
                    }
                    None => self.err("No such message"),
                }
            }
            Command::Retr(n) => self.send_message(n, None).await,
            Command::Top(n, lines) => self.send_message(n, Some(lines)).await,
            Command::Dele(n) => match self.message(n) {
                Some(i) => {
                    self.drop.as_mut().expect("drop").deleted.insert(i);
                    self.ok(&format!("Message {n} deleted"));
                }
                None => self.err("No such message"),
            },
            Command::Rset => {
                let d = self.drop.as_mut().expect("drop");
                d.deleted.clear();
                let n = d.msgs.len();
                self.ok(&format!("{n} messages"));
            }
            _ => self.err("Not allowed now"),
        }
    }

    async fn send_message(&mut self, n: u32, top: Option<u32>) {
        let Some(i) = self.message(n) else {
            self.err("No such message");
            return;
        };
        let d = self.drop.as_ref().expect("drop");
        let (acct, email, size) = (d.acct, d.msgs[i].email, d.msgs[i].size);
        let mail = &self.core.mail;
        let raw = match mail.email_meta(acct, email).await {
            Ok(Some(meta)) => mail.email_raw(&meta).await,
            Ok(None) => {
                self.err("[SYS/PERM] The message was deleted by another session");
                return;
            }
            Err(e) => Err(e),
        };
        match raw {
            Ok(raw) => {
                self.ok(&format!("{size} octets"));
                let body = multiline(&raw, top);
                self.out.extend_from_slice(&body);
            }
            Err(e) => {
                tracing::warn!(session = %self.id, "POP3 RETR: {e}");
                self.err("[SYS/TEMP] The message cannot be read now, try again later");
            }
        }
    }

    /// QUIT in TRANSACTION: the UPDATE state removes the messages marked
    /// deleted (RFC 1939 §6), then the lock goes.
    async fn update(&mut self) -> Flow {
        let Some(d) = self.drop.take() else {
            return Flow::Close;
        };
        let uids: Vec<u32> = d.deleted.iter().map(|&i| d.msgs[i].uid).collect();
        let left = d.msgs.len() - uids.len();
        match self
            .core
            .mail
            .remove_messages(d.acct, d.mailbox, uids)
            .await
        {
            Ok(_) => self.ok(&format!("Petrel POP3 signing off ({left} messages left)")),
            Err(e) => {
                tracing::warn!(session = %self.id, "POP3 UPDATE: {e}");
                self.err("[SYS/TEMP] Some deleted messages were not removed");
            }
        }
        Flow::Close
    }
}

struct Pop3Sasl<'a>(&'a mut Session);

impl SaslIo for Pop3Sasl<'_> {
    async fn challenge(&mut self, data: &[u8]) -> Option<Response> {
        // RFC 5034 §4: "+ " and the base64 challenge.
        let line = format!("+ {}\r\n", b64_encode(data));
        self.0.conn.write(line.as_bytes()).await.ok()?;
        let cfg = &self.0.core.config.pop3;
        let (max, t) = (cfg.max_line_length, Duration::from_secs(cfg.timeout_idle));
        match self.0.conn.read_line_timeout(max, t).await {
            Ok(Line::Line(l)) => Some(decode_response(&l)),
            Ok(Line::TooLong) => Some(Response::BadEncoding),
            _ => None,
        }
    }
}
