//! STARTTLS (RFC 9051 §6.2.1), LOGIN (§6.2.3), AUTHENTICATE PLAIN (§6.2.2,
//! RFC 4959 SASL-IR).

use crate::directory::sasl::{b64_decode, decode_plain};
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
        let ip = self.peer.ip();
        if self.core.limiter.is_blocked(ip, user) {
            return "NO [UNAVAILABLE] Too many failed logins, try again later".into();
        }
        match self.core.directory.authenticate(user, pass).await {
            Ok(Some(acct)) => {
                if let Err(e) = self.core.mail.init_account(acct.id).await {
                    tracing::error!(session = %self.id, "cannot open account: {e}");
                    return "NO [UNAVAILABLE] Mail store unavailable, try again later".into();
                }
                tracing::info!(session = %self.id, login = %acct.address, "IMAP login");
                self.account = Some(acct);
                format!("OK [CAPABILITY {}] Logged in", self.capabilities())
            }
            Ok(None) => {
                self.core.limiter.record_failure(ip, user);
                "NO [AUTHENTICATIONFAILED] Invalid credentials".into()
            }
            Err(e) => {
                tracing::error!(session = %self.id, "directory error: {e}");
                "NO [UNAVAILABLE] Directory unavailable, try again later".into()
            }
        }
    }

    pub(crate) async fn cmd_authenticate(&mut self, _tag: &str, args: &[Token]) -> Option<Reply> {
        if !self.auth_allowed() {
            return Some(
                "NO [PRIVACYREQUIRED] Authentication is disabled without TLS: use STARTTLS".into(),
            );
        }
        let mech = args.first().and_then(|t| t.as_string()).unwrap_or_default();
        if mech.eq_ignore_ascii_case("LOGIN") {
            return self.sasl_login().await;
        }
        if !mech.eq_ignore_ascii_case("PLAIN") {
            return Some("NO Unsupported authentication mechanism".into());
        }
        let response = match args.get(1).and_then(|t| t.as_string()) {
            // RFC 4959: "=" is an empty initial response.
            Some(ir) if ir == "=" => Vec::new(),
            Some(ir) => match b64_decode(&ir) {
                Some(b) => b,
                None => return Some("BAD Invalid base64".into()),
            },
            None => {
                if !self.send_now(b"+ \r\n").await {
                    return None;
                }
                let line = self.read_client_line().await?;
                if line == b"*" {
                    return Some("BAD Authentication cancelled".into());
                }
                match b64_decode(&String::from_utf8_lossy(&line)) {
                    Some(b) => b,
                    None => return Some("BAD Invalid base64".into()),
                }
            }
        };
        let Some((user, pass)) = decode_plain(&response) else {
            return Some("NO [AUTHENTICATIONFAILED] Invalid PLAIN response".into());
        };
        Some(self.login(&user, &pass).await)
    }
}

impl Session {
    /// SASL LOGIN (draft-murchison-sasl-login): user name and password in
    /// two base64 continuations.
    async fn sasl_login(&mut self) -> Option<Reply> {
        let mut answers = Vec::with_capacity(2);
        for prompt in ["VXNlcm5hbWU6", "UGFzc3dvcmQ6"] {
            let line = format!("+ {prompt}\r\n");
            if !self.send_now(line.as_bytes()).await {
                return None;
            }
            let resp = self.read_client_line().await?;
            if resp == b"*" {
                return Some("BAD Authentication cancelled".into());
            }
            match b64_decode(&String::from_utf8_lossy(&resp))
                .and_then(|b| String::from_utf8(b).ok())
            {
                Some(v) => answers.push(v),
                None => return Some("BAD Invalid base64".into()),
            }
        }
        Some(self.login(&answers[0], &answers[1]).await)
    }
}

/// Marker reply: the tagged response has already been written.
pub const SENT: &str = "\u{0}sent";
