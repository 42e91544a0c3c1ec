//! One ManageSieve connection (RFC 5804): the capability greeting,
//! STARTTLS, AUTHENTICATE through the shared SASL mechanisms, and the
//! script commands over the account's scripts (`sieve::scripts`).

use std::net::SocketAddr;
use std::time::Duration;

use super::proto::{parse, string, Arg, Command, Parse};
use crate::core::{session_id, SharedCore};
use crate::directory::sasl::{authenticate, b64_decode, b64_encode, Response, SaslIo, SaslOutcome};
use crate::directory::Account;
use crate::net::{Conn, Shutdown};
use crate::sieve::scripts::{self, SieveError};

/// Literals this large are not even read: the connection ends.
const DRAIN_LIMIT: u64 = 64 << 20;

pub struct Session {
    core: SharedCore,
    conn: Conn,
    peer: SocketAddr,
    id: String,
    shutdown: Shutdown,
    user: Option<Account>,
    out: Vec<u8>,
    /// A literal was dropped: the CRLF after it is not a command.
    skip_crlf: bool,
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
            id: session_id(),
            shutdown,
            user: None,
            out: Vec::with_capacity(1024),
            skip_crlf: false,
        }
    }

    fn auth_allowed(&self) -> bool {
        self.conn.stream.is_tls() || self.core.config.managesieve.auth_without_tls
    }

    /// RFC 5804 §1.7: the capability response.
    fn capabilities(&mut self) {
        let mut lines = vec![
            "\"IMPLEMENTATION\" \"Petrel\"".to_string(),
            format!("\"SIEVE\" \"{}\"", crate::sieve::EXTENSIONS.join(" ")),
            format!(
                "\"MAXREDIRECTS\" \"{}\"",
                self.core.config.sieve.max_redirects
            ),
            "\"VERSION\" \"1.0\"".into(),
            "\"UNAUTHENTICATE\"".into(),
        ];
        match &self.user {
            Some(a) => lines.push(format!("\"OWNER\" {}", quoted(&a.address))),
            None => {
                if self.auth_allowed() {
                    lines.push(format!(
                        "\"SASL\" \"{}\"",
                        crate::directory::sasl::MECHANISMS.join(" ")
                    ));
                }
                if !self.conn.stream.is_tls() && self.core.tls.is_some() {
                    lines.push("\"STARTTLS\"".into());
                }
            }
        }
        for l in lines {
            self.out.extend_from_slice(l.as_bytes());
            self.out.extend_from_slice(b"\r\n");
        }
    }

    /// `OK`, `NO` or `BYE`, with a response code (`""` for none) and a
    /// human-readable text.
    fn reply(&mut self, kind: &str, code: &str, text: &str) {
        self.out.extend_from_slice(kind.as_bytes());
        if !code.is_empty() {
            self.out.extend_from_slice(format!(" ({code})").as_bytes());
        }
        if !text.is_empty() {
            self.out.push(b' ');
            self.out.extend_from_slice(&string(text.as_bytes()));
        }
        self.out.extend_from_slice(b"\r\n");
    }

    fn no_error(&mut self, e: SieveError) {
        let code = match &e {
            SieveError::NotFound(_) => "NONEXISTENT",
            SieveError::Exists(_) => "ALREADYEXISTS",
            SieveError::Active(_) => "ACTIVE",
            SieveError::Quota(m) if m.contains("max-scripts") => "QUOTA/MAXSCRIPTS",
            SieveError::Quota(_) => "QUOTA/MAXSIZE",
            SieveError::Store(_) => "TRYLATER",
            SieveError::Invalid(_) | SieveError::InUse(_) => "",
        };
        self.reply("NO", code, &e.to_string());
    }

    pub async fn run(mut self) {
        metrics::counter!("petrel_managesieve_sessions_total").increment(1);
        self.capabilities();
        self.reply("OK", "", "Petrel ManageSieve ready");
        if self.flush().await.is_ok() {
            self.serve().await;
        }
        let _ = self.flush().await;
        self.conn.close().await;
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        self.conn.write_out(&mut self.out).await
    }

    /// Reads until a whole command is buffered (or the client is gone).
    async fn next(&mut self) -> Option<Parse> {
        let cfg = &self.core.config;
        let (max_line, max_literal) = (
            cfg.managesieve.max_line_length,
            cfg.sieve.max_script_size as u64,
        );
        let idle = Duration::from_secs(cfg.managesieve.timeout_idle);
        loop {
            if self.skip_crlf && self.conn.buffered().len() >= 2 {
                if self.conn.buffered().starts_with(b"\r\n") {
                    self.conn.consume(2);
                }
                self.skip_crlf = false;
            }
            if !self.skip_crlf {
                match parse(self.conn.buffered(), max_line, max_literal) {
                    Parse::Incomplete => {}
                    p => return Some(p),
                }
                if self.conn.buffered().len() > max_line + max_literal as usize + 64 {
                    return None;
                }
            }
            let read = tokio::select! {
                r = tokio::time::timeout(idle, self.conn.fill()) => r,
                _ = self.shutdown.wait() => {
                    self.reply("BYE", "", "Server shutting down");
                    return None;
                }
            };
            match read {
                Ok(Ok(n)) if n > 0 => {}
                Ok(_) => return None,
                Err(_) => {
                    self.reply("BYE", "", "Idle for too long");
                    return None;
                }
            }
        }
    }

    async fn serve(&mut self) {
        loop {
            let Some(p) = self.next().await else { return };
            let flow = match p {
                Parse::Done(cmd, n) => {
                    self.conn.consume(n);
                    self.command(cmd).await
                }
                Parse::Bad(why, n) => {
                    self.conn.consume(n);
                    self.reply("NO", "", &format!("Not a command: {why}"));
                    Flow::Continue
                }
                Parse::TooBig { header, size } => {
                    self.conn.consume(header);
                    if size > DRAIN_LIMIT || !self.drain(size).await {
                        self.reply("BYE", "QUOTA/MAXSIZE", "The literal is far too large");
                        Flow::Close
                    } else {
                        self.skip_crlf = true;
                        self.reply(
                            "NO",
                            "QUOTA/MAXSIZE",
                            &format!(
                                "{size} octets is more than sieve.max-script-size ({})",
                                self.core.config.sieve.max_script_size
                            ),
                        );
                        Flow::Continue
                    }
                }
                Parse::Incomplete => return,
            };
            if self.flush().await.is_err() {
                return;
            }
            if let Flow::Close = flow {
                return;
            }
        }
    }

    /// Reads and drops `n` octets of a literal too large to keep.
    async fn drain(&mut self, mut n: u64) -> bool {
        loop {
            let take = (self.conn.buffered().len() as u64).min(n);
            self.conn.consume(take as usize);
            n -= take;
            if n == 0 {
                return true;
            }
            match tokio::time::timeout(Duration::from_secs(60), self.conn.fill()).await {
                Ok(Ok(k)) if k > 0 => {}
                _ => return false,
            }
        }
    }

    async fn command(&mut self, cmd: Command) -> Flow {
        let args = &cmd.args;
        let s = |i: usize| args.get(i).and_then(Arg::text);
        match (cmd.name.as_str(), self.user.is_some()) {
            ("CAPABILITY", _) if args.is_empty() => {
                self.capabilities();
                self.reply("OK", "", "Capability completed");
            }
            ("LOGOUT", _) => {
                self.reply("OK", "", "Logout completed");
                return Flow::Close;
            }
            // RFC 5804 §2.15: a tag string comes back.
            ("NOOP", _) => match s(0) {
                Some(tag) => self.reply("OK", &format!("TAG {}", quoted(&tag)), "Done"),
                None => self.reply("OK", "", "Done"),
            },
            ("STARTTLS", false) if args.is_empty() => return self.starttls().await,
            ("AUTHENTICATE", false) => match s(0) {
                Some(mech) => return self.authenticate(mech, args.get(1).cloned()).await,
                None => self.reply("NO", "", "AUTHENTICATE takes a mechanism name"),
            },
            ("STARTTLS" | "AUTHENTICATE", true) => self.reply("NO", "", "Already authenticated"),
            ("UNAUTHENTICATE", true) if args.is_empty() => {
                self.user = None;
                self.reply("OK", "", "Unauthenticate completed");
            }
            (_, true) => self.script_command(&cmd).await,
            (
                "HAVESPACE" | "PUTSCRIPT" | "LISTSCRIPTS" | "SETACTIVE" | "GETSCRIPT"
                | "DELETESCRIPT" | "RENAMESCRIPT" | "CHECKSCRIPT" | "UNAUTHENTICATE",
                false,
            ) => self.reply("NO", "", "Authenticate first"),
            _ => self.reply("NO", "", "Unknown command or wrong arguments"),
        }
        Flow::Continue
    }

    async fn script_command(&mut self, cmd: &Command) {
        let acct = self.user.as_ref().map_or(0, |a| a.id);
        let args = &cmd.args;
        let s = |i: usize| args.get(i).and_then(Arg::text);
        let core = self.core.clone();
        let (mail, cfg) = (&core.mail, &core.config.sieve);
        let r = match (cmd.name.as_str(), args.len(), s(0), s(1)) {
            ("HAVESPACE", 2, Some(name), _) => match args[1] {
                Arg::Number(size) => {
                    scripts::has_space(mail, cfg, acct, &name, size as usize).await
                }
                _ => Err(SieveError::Invalid(
                    "HAVESPACE takes a name and a size".into(),
                )),
            },
            ("PUTSCRIPT", 2, Some(name), Some(text)) => {
                let r = scripts::put(mail, cfg, acct, &name, &text)
                    .await
                    .map(|_| ());
                if r.is_ok() {
                    tracing::info!(session = %self.id, script = %name, "Sieve script stored");
                }
                r
            }
            ("CHECKSCRIPT", 1, Some(text), _) => scripts::check(cfg, &text).map(|_| ()),
            ("LISTSCRIPTS", 0, _, _) => match scripts::list(mail, acct).await {
                Ok((all, active)) => {
                    for (id, sc) in all {
                        self.out.extend_from_slice(&string(sc.name.as_bytes()));
                        if Some(id) == active {
                            self.out.extend_from_slice(b" ACTIVE");
                        }
                        self.out.extend_from_slice(b"\r\n");
                    }
                    Ok(())
                }
                Err(e) => Err(e),
            },
            // RFC 5804 §2.8: the empty name deactivates.
            ("SETACTIVE", 1, Some(name), _) => {
                let name = (!name.is_empty()).then_some(name);
                scripts::activate(mail, acct, name.as_deref()).await
            }
            ("GETSCRIPT", 1, Some(name), _) => match scripts::get(mail, acct, &name).await {
                Ok(sc) => {
                    let body = sc.text.as_bytes();
                    self.out
                        .extend_from_slice(format!("{{{}}}\r\n", body.len()).as_bytes());
                    self.out.extend_from_slice(body);
                    self.out.extend_from_slice(b"\r\n");
                    Ok(())
                }
                Err(e) => Err(e),
            },
            ("DELETESCRIPT", 1, Some(name), _) => scripts::delete(mail, acct, &name).await,
            ("RENAMESCRIPT", 2, Some(old), Some(new)) => {
                scripts::rename(mail, acct, &old, &new).await
            }
            _ => {
                self.reply("NO", "", "Unknown command or wrong arguments");
                return;
            }
        };
        match r {
            Ok(()) => self.reply("OK", "", "Completed"),
            Err(e) => self.no_error(e),
        }
    }

    async fn starttls(&mut self) -> Flow {
        let Some(acceptor) = self.core.tls.clone() else {
            self.reply("NO", "", "STARTTLS is not available");
            return Flow::Continue;
        };
        if self.conn.stream.is_tls() {
            self.reply("NO", "", "TLS is already active");
            return Flow::Continue;
        }
        self.reply("OK", "", "Begin TLS negotiation now");
        if self.flush().await.is_err() || self.conn.start_tls(&acceptor).await.is_err() {
            return Flow::Close;
        }
        // RFC 5804 §2.2: the capabilities again, as TLS shows them.
        self.capabilities();
        self.reply("OK", "", "TLS negotiation successful");
        Flow::Continue
    }

    async fn authenticate(&mut self, mech: String, initial: Option<Arg>) -> Flow {
        if !self.auth_allowed() {
            self.reply(
                "NO",
                "ENCRYPT-NEEDED",
                "Authentication needs TLS: STARTTLS first",
            );
            return Flow::Continue;
        }
        // RFC 5804 §2.1: LOGIN speaks first ("Username:"), so an initial
        // response with it is refused.
        if initial.is_some() && mech.eq_ignore_ascii_case("LOGIN") {
            self.reply("NO", "", "LOGIN takes no initial response");
            return Flow::Continue;
        }
        let initial = match initial {
            None => None,
            Some(Arg::String(s)) => match b64_decode(&String::from_utf8_lossy(&s)) {
                Some(d) => Some(d),
                None => {
                    self.reply("NO", "", "Invalid base64");
                    return Flow::Continue;
                }
            },
            Some(_) => {
                self.reply("NO", "", "The initial response is a string");
                return Flow::Continue;
            }
        };
        if self.flush().await.is_err() {
            return Flow::Close;
        }
        let core = self.core.clone();
        let ip = self.peer.ip();
        let outcome = authenticate(&core.directory, ip, &mut Io(self), &mech, initial).await;
        match outcome {
            SaslOutcome::Success(a) => {
                tracing::info!(session = %self.id, peer = %self.peer, account = %a.address, "ManageSieve login");
                self.user = Some(a);
                self.reply("OK", "", "Authenticated");
            }
            SaslOutcome::Failed => self.reply("NO", "", "Authentication failed"),
            SaslOutcome::Blocked => self.reply(
                "NO",
                "",
                "This password is a well-known one and is blocked: have it changed",
            ),
            SaslOutcome::Throttled => {
                self.reply("NO", "TRYLATER", "Too many failed logins, try again later")
            }
            SaslOutcome::Cancelled => self.reply("NO", "", "Authentication cancelled"),
            SaslOutcome::Malformed(why) => self.reply("NO", "", why),
            SaslOutcome::Unsupported => self.reply("NO", "", "Unsupported mechanism"),
            SaslOutcome::Unavailable => self.reply(
                "NO",
                "TRYLATER",
                "Authentication is unavailable, try again later",
            ),
            SaslOutcome::Closed => return Flow::Close,
        }
        Flow::Continue
    }
}

/// A quoted string for a response code or capability.
fn quoted(s: &str) -> String {
    String::from_utf8_lossy(&string(s.as_bytes())).into_owned()
}

/// The SASL exchange (RFC 5804 §2.1): challenges go out as strings; the
/// client answers with a string, or `"*"` to cancel.
struct Io<'a>(&'a mut Session);

impl SaslIo for Io<'_> {
    async fn challenge(&mut self, data: &[u8]) -> Option<Response> {
        let s = &mut *self.0;
        s.out
            .extend_from_slice(&string(b64_encode(data).as_bytes()));
        s.out.extend_from_slice(b"\r\n");
        s.flush().await.ok()?;
        loop {
            let buf = s.conn.buffered();
            let trimmed = buf
                .strip_prefix(b"\"*\"")
                .or_else(|| buf.strip_prefix(b"*"));
            if let Some(rest) = trimmed.filter(|r| r.starts_with(b"\r\n")) {
                let n = buf.len() - rest.len() + 2;
                s.conn.consume(n);
                return Some(Response::Cancel);
            }
            // The answer is a line of one string: parsed as the argument
            // of a command named R.
            let mut line = b"R ".to_vec();
            line.extend_from_slice(buf);
            match parse(&line, 16384, 16384) {
                Parse::Done(c, n) => {
                    s.conn.consume(n - 2);
                    return Some(match c.args.first() {
                        Some(Arg::String(v)) if c.args.len() == 1 => {
                            match b64_decode(&String::from_utf8_lossy(v)) {
                                Some(d) => Response::Data(d),
                                None if v.is_empty() => Response::Data(Vec::new()),
                                None => Response::BadEncoding,
                            }
                        }
                        _ => Response::BadEncoding,
                    });
                }
                Parse::Bad(_, n) => {
                    s.conn.consume(n.saturating_sub(2));
                    return Some(Response::BadEncoding);
                }
                Parse::TooBig { .. } => return None,
                Parse::Incomplete => {}
            }
            let t = Duration::from_secs(s.core.config.managesieve.timeout_idle);
            match tokio::time::timeout(t, s.conn.fill()).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return None,
            }
        }
    }
}
