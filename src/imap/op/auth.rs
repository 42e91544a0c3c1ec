//! STARTTLS (RFC 9051 §6.2.1), LOGIN (§6.2.3), AUTHENTICATE PLAIN (§6.2.2,
//! RFC 4959 SASL-IR).

use crate::directory::sasl::{
    authenticate, b64_encode, check_password, decode_response, Response, SaslIo, SaslOutcome,
};
use crate::directory::Account;
use crate::imap::proto::Token;
use crate::imap::session::{Reply, Session};

impl Session {
    pub(crate) async fn cmd_starttls(&mut self, tag: &str) -> Option<Reply> {
        let Some(acceptor) = self.core.tls.clone() else {
            return Some("BAD STARTTLS not available".into());
        };
        if self.conn.stream.is_tls() {
            return Some("BAD TLS is already active".into());
        }
        if self.account.is_some() {
            return Some("BAD Already authenticated".into());
        }
        let line = format!("{tag} OK Begin TLS negotiation now\r\n");
        if !self.send_now(line.as_bytes()).await {
            return None;
        }
        // Anything pipelined after STARTTLS is discarded (RFC 9051 §6.2.1).
        self.rx.clear();
        if self.conn.start_tls(&acceptor).await.is_err() {
            return None;
        }
        // The tagged reply was already sent.
        Some(SENT.into())
    }

    pub(crate) async fn cmd_login(&mut self, args: &[Token]) -> Reply {
        if !self.auth_allowed() {
            return "NO [PRIVACYREQUIRED] LOGIN is disabled without TLS: use STARTTLS".into();
        }
        let (Some(user), Some(pass)) = (
            args.first().and_then(|t| t.as_string()),
            args.get(1).and_then(|t| t.as_string()),
        ) else {
            return "BAD LOGIN needs a user name and a password".into();
        };
        if args.len() != 2 {
            return "BAD LOGIN takes two arguments".into();
        }
        self.login(&user, &pass).await
    }

    async fn login(&mut self, user: &str, pass: &str) -> Reply {
        let outcome = check_password(&self.core.directory, self.peer.ip(), user, pass).await;
        self.auth_outcome(outcome).await
    }

    /// The tagged answer to a finished LOGIN or AUTHENTICATE. A throttled
    /// attempt gets one answer whatever the password was.
    async fn auth_outcome(&mut self, outcome: SaslOutcome) -> Reply {
        match outcome {
            SaslOutcome::Success(acct) => self.logged_in(acct).await,
            SaslOutcome::Failed => "NO [AUTHENTICATIONFAILED] Invalid credentials".into(),
            // RFC 5530 §3: EXPIRED, "the user should get a new passphrase".
            SaslOutcome::Blocked => {
                "NO [EXPIRED] This password is a well-known one and is blocked: have it changed"
                    .into()
            }
            SaslOutcome::Throttled => {
                "NO [UNAVAILABLE] Too many failed logins, try again later".into()
            }
            SaslOutcome::Cancelled => "BAD Authentication cancelled".into(),
            SaslOutcome::Malformed(why) => format!("BAD {why}"),
            SaslOutcome::Unsupported => "NO Unsupported authentication mechanism".into(),
            SaslOutcome::Unavailable => {
                "NO [UNAVAILABLE] Directory unavailable, try again later".into()
            }
            // Callers handle a closed connection before.
            SaslOutcome::Closed => "BAD Connection closed".into(),
        }
    }

    async fn logged_in(&mut self, acct: Account) -> Reply {
        if let Err(e) = self.core.mail.init_account(acct.id).await {
            tracing::error!(session = %self.id, "cannot open account: {e}");
            return "NO [UNAVAILABLE] Mail store unavailable, try again later".into();
        }
        tracing::info!(session = %self.id, login = %acct.address, "IMAP login");
        self.account = Some(acct);
        self.rx.set_command_literal_limit(usize::MAX);
        format!("OK [CAPABILITY {}] Logged in", self.capabilities())
    }

    pub(crate) async fn cmd_authenticate(&mut self, _tag: &str, args: &[Token]) -> Option<Reply> {
        if !self.auth_allowed() {
            return Some(
                "NO [PRIVACYREQUIRED] Authentication is disabled without TLS: use STARTTLS".into(),
            );
        }
        let mech = args.first().and_then(|t| t.as_string()).unwrap_or_default();
        let initial = match args.get(1).and_then(|t| t.as_string()) {
            None => None,
            Some(ir) => match decode_response(ir.as_bytes()) {
                Response::Data(d) => Some(d),
                _ => return Some("BAD Invalid base64 initial response".into()),
            },
        };
        let ip = self.peer.ip();
        let core = self.core.clone();
        match authenticate(&core.directory, ip, &mut ImapSasl(self), &mech, initial).await {
            SaslOutcome::Closed => None,
            outcome => Some(self.auth_outcome(outcome).await),
        }
    }
}

/// IMAP continuation requests carry SASL challenges (RFC 9051 §6.2.2).
struct ImapSasl<'a>(&'a mut Session);

impl SaslIo for ImapSasl<'_> {
    async fn challenge(&mut self, data: &[u8]) -> Option<Response> {
        let line = format!("+ {}\r\n", b64_encode(data));
        if !self.0.send_now(line.as_bytes()).await {
            return None;
        }
        let line = self.0.read_client_line().await?;
        Some(decode_response(&line))
    }
}

/// Marker reply: the tagged response has already been written.
pub const SENT: &str = "\u{0}sent";
