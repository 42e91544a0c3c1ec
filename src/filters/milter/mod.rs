//! A milter client: one connection per message, opened when the message
//! is complete, that replays the transaction (connect, HELO, MAIL, RCPT,
//! headers, body) and reads the milter's verdict and changes.
//!
//! Why not a crate: miltr-client 0.1.3, the one async milter client on
//! crates.io, cannot read SMFIR_ACCEPT, SMFIR_PROGRESS or SMFIR_CHGFROM
//! (rspamd answers "accept" to clean mail), and panics on QUIT_NC; the
//! protocol is small, so `proto.rs` speaks it.

pub mod proto;

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use self::proto::{action, step, Command, Reply};
use super::{body_start, header_pairs, reply_decision, Changes, Decision, HeaderChange};
use super::{Outcome, Transaction};
use crate::config::MilterConfig;

/// The largest packet a milter may send: a body chunk or a header.
const MAX_PACKET: usize = 1 << 20;

/// Runs the message through the milter at `cfg.address`. An error is a
/// failure of the milter (unreachable, silent, or speaking nonsense).
pub async fn check(
    cfg: &MilterConfig,
    tx: &Transaction<'_>,
    max_size: usize,
) -> Result<Outcome, String> {
    let connect = Duration::from_secs(cfg.connect_timeout);
    if let Some(path) = cfg.address.strip_prefix("unix:") {
        let s = tokio::time::timeout(connect, tokio::net::UnixStream::connect(path))
            .await
            .map_err(|_| format!("connecting to {path} timed out"))?
            .map_err(|e| format!("connect {path}: {e}"))?;
        Session::new(s, cfg, max_size).run(tx).await
    } else {
        let s = tokio::time::timeout(connect, tokio::net::TcpStream::connect(&cfg.address))
            .await
            .map_err(|_| format!("connecting to {} timed out", cfg.address))?
            .map_err(|e| format!("connect {}: {e}", cfg.address))?;
        let _ = s.set_nodelay(true);
        Session::new(s, cfg, max_size).run(tx).await
    }
}

struct Session<S> {
    stream: S,
    buf: Vec<u8>,
    timeout: Duration,
    /// The steps the milter asked to skip or leave unanswered.
    steps: u32,
    actions: u32,
    max_size: usize,
}

/// What the milter said to one command.
enum Said {
    Continue,
    /// A verdict that ends the conversation.
    Final(Decision),
    /// No more body, please.
    Skip,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    fn new(stream: S, cfg: &MilterConfig, max_size: usize) -> Self {
        Session {
            stream,
            buf: Vec::new(),
            timeout: Duration::from_secs(cfg.timeout),
            steps: 0,
            actions: 0,
            max_size,
        }
    }

    async fn send(&mut self, cmd: &Command<'_>) -> Result<(), String> {
        let packet = proto::encode(cmd);
        tokio::time::timeout(self.timeout, self.stream.write_all(&packet))
            .await
            .map_err(|_| "writing to the milter timed out".to_string())?
            .map_err(|e| format!("write: {e}"))
    }

    /// The next packet; progress packets only restart the clock.
    async fn read(&mut self) -> Result<Reply, String> {
        loop {
            match proto::decode(&self.buf, MAX_PACKET).map_err(|e| e.to_string())? {
                Some((Reply::Progress, n)) => {
                    self.buf.drain(..n);
                }
                Some((reply, n)) => {
                    self.buf.drain(..n);
                    return Ok(reply);
                }
                None => {
                    let mut chunk = [0u8; 16 * 1024];
                    let n = tokio::time::timeout(self.timeout, self.stream.read(&mut chunk))
                        .await
                        .map_err(|_| "the milter did not answer in time".to_string())?
                        .map_err(|e| format!("read: {e}"))?;
                    if n == 0 {
                        return Err("the milter closed the connection".into());
                    }
                    self.buf.extend_from_slice(&chunk[..n]);
                }
            }
        }
    }

    /// Sends `cmd` (with its macros) unless the milter skips it, and
    /// reads the answer unless it leaves it unanswered.
    async fn step(
        &mut self,
        cmd: Command<'_>,
        macros: &[(&str, String)],
        skip: u32,
        no_reply: u32,
    ) -> Result<Said, String> {
        if self.steps & skip != 0 {
            return Ok(Said::Continue);
        }
        if !macros.is_empty() {
            self.send(&Command::Macro {
                stage: cmd.code(),
                pairs: macros,
            })
            .await?;
        }
        self.send(&cmd).await?;
        if self.steps & no_reply != 0 {
            return Ok(Said::Continue);
        }
        let reply = self.read().await?;
        verdict(reply).ok_or_else(|| format!("unexpected answer to '{}'", cmd.code() as char))
    }

    async fn run(mut self, tx: &Transaction<'_>) -> Result<Outcome, String> {
        let outcome = self.converse(tx).await;
        // Polite to the milter either way; it may be gone already.
        let _ = self.send(&Command::Quit).await;
        let _ = self.stream.shutdown().await;
        outcome
    }

    async fn converse(&mut self, tx: &Transaction<'_>) -> Result<Outcome, String> {
        self.send(&Command::OptNeg {
            version: proto::VERSION,
            actions: action::ALL,
            steps: step::OFFERED,
        })
        .await?;
        match self.read().await? {
            Reply::OptNeg {
                version,
                actions,
                steps,
            } if (2..=proto::VERSION).contains(&version) => {
                // What Petrel did not offer, it will not do.
                self.actions = actions & action::ALL;
                self.steps = steps & step::OFFERED;
            }
            Reply::OptNeg { version, .. } => {
                return Err(format!("milter protocol version {version} not supported"))
            }
            other => return Err(format!("expected option negotiation, got {other:?}")),
        }
        let done = |d: Decision| {
            Ok(Outcome {
                decision: d,
                changes: Changes::default(),
            })
        };
        let ip = tx.client_ip.to_string();
        let bracketed = format!("[{ip}]");
        let family = if tx.client_ip.is_ipv4() { b'4' } else { b'6' };
        let connect_macros = [
            ("j", tx.hostname.to_string()),
            ("{daemon_name}", "petrel".to_string()),
            ("_", format!("{bracketed} [{ip}]")),
            ("{client_addr}", ip.clone()),
            ("{client_port}", tx.client_port.to_string()),
            ("{client_name}", bracketed.clone()),
        ];
        let connect = Command::Connect {
            host: &bracketed,
            family,
            port: tx.client_port,
            address: &ip,
        };
        let said = self
            .step(connect, &connect_macros, step::NO_CONNECT, step::NR_CONNECT)
            .await?;
        if let Some(d) = final_of(said) {
            return done(d);
        }
        let said = self
            .step(Command::Helo(tx.helo), &[], step::NO_HELO, step::NR_HELO)
            .await?;
        if let Some(d) = final_of(said) {
            return done(d);
        }
        let mut mail_macros = vec![
            ("i", tx.queue_id.clone()),
            ("{mail_addr}", tx.from.to_string()),
        ];
        if let Some(login) = tx.login {
            mail_macros.push(("{auth_authen}", login.to_string()));
            mail_macros.push(("{auth_type}", "PLAIN".to_string()));
        }
        let from = [format!("<{}>", tx.from)];
        let said = self
            .step(
                Command::Mail(&from),
                &mail_macros,
                step::NO_MAIL,
                step::NR_MAIL,
            )
            .await?;
        if let Some(d) = final_of(said) {
            return done(d);
        }
        for rcpt in &tx.rcpts {
            let args = [format!("<{rcpt}>")];
            let macros = [("{rcpt_addr}", rcpt.to_string())];
            let said = self
                .step(Command::Rcpt(&args), &macros, step::NO_RCPT, step::NR_RCPT)
                .await?;
            // A refused recipient refuses the message: its sender hears
            // of it (the recipients were accepted before the milter ran).
            if let Some(d) = final_of(said) {
                return done(d);
            }
        }
        let id_macro = [("i", tx.queue_id.clone())];
        let said = self
            .step(Command::Data, &id_macro, step::NO_DATA, step::NR_DATA)
            .await?;
        if let Some(d) = final_of(said) {
            return done(d);
        }
        for (name, value) in header_pairs(tx.message) {
            let cmd = Command::Header {
                name: &name,
                value: &value,
            };
            let said = self
                .step(cmd, &[], step::NO_HEADERS, step::NR_HEADER)
                .await?;
            if let Some(d) = final_of(said) {
                return done(d);
            }
        }
        let said = self
            .step(Command::EndOfHeaders, &[], step::NO_EOH, step::NR_EOH)
            .await?;
        if let Some(d) = final_of(said) {
            return done(d);
        }
        let body = &tx.message[body_start(tx.message)..];
        for chunk in body.chunks(proto::CHUNK) {
            match self
                .step(Command::Body(chunk), &[], step::NO_BODY, step::NR_BODY)
                .await?
            {
                Said::Continue => {}
                Said::Skip => break,
                Said::Final(d) => return done(d),
            }
        }
        self.send(&Command::Macro {
            stage: b'E',
            pairs: &id_macro,
        })
        .await?;
        self.send(&Command::EndOfBody).await?;
        self.end_of_body().await
    }

    /// The changes the milter asks for, then its verdict.
    async fn end_of_body(&mut self) -> Result<Outcome, String> {
        let mut changes = Changes::default();
        let mut new_body: Option<Vec<u8>> = None;
        let may = |flag: u32, actions: u32| actions & flag != 0;
        loop {
            let reply = self.read().await?;
            let a = self.actions;
            match reply {
                Reply::AddHeader { name, value } if may(action::ADD_HEADERS, a) => {
                    changes.headers.push(HeaderChange::Add { name, value })
                }
                Reply::InsertHeader { index, name, value } if may(action::ADD_HEADERS, a) => {
                    changes.headers.push(HeaderChange::Insert {
                        index: index as usize,
                        name,
                        value,
                    })
                }
                Reply::ChangeHeader { index, name, value } if may(action::CHANGE_HEADERS, a) => {
                    changes.headers.push(HeaderChange::Change {
                        index: index as usize,
                        name,
                        value,
                    })
                }
                Reply::ReplaceBody(chunk) if may(action::CHANGE_BODY, a) => {
                    let body = new_body.get_or_insert_with(Vec::new);
                    if body.len() + chunk.len() > self.max_size {
                        return Err(
                            "the replaced body is larger than the message size limit".into()
                        );
                    }
                    body.extend_from_slice(&chunk);
                }
                Reply::Quarantine(reason) if may(action::QUARANTINE, a) => {
                    changes.quarantine = Some(reason)
                }
                Reply::AddRcpt(r) => changes.ignored.push(format!("add recipient {r}")),
                Reply::DelRcpt(r) => changes.ignored.push(format!("remove recipient {r}")),
                Reply::ChangeFrom(f) => changes.ignored.push(format!("change sender to {f}")),
                reply @ (Reply::AddHeader { .. }
                | Reply::InsertHeader { .. }
                | Reply::ChangeHeader { .. }
                | Reply::ReplaceBody(_)
                | Reply::Quarantine(_)) => {
                    return Err(format!("{reply:?} was not negotiated"));
                }
                other => {
                    let Some(said) = verdict(other.clone()) else {
                        return Err(format!("unexpected answer at end of body: {other:?}"));
                    };
                    changes.body = new_body;
                    let decision = match said {
                        Said::Continue | Said::Skip => Decision::Continue,
                        Said::Final(d) => d,
                    };
                    return Ok(Outcome { decision, changes });
                }
            }
        }
    }
}

/// A control reply as what it means; `None` for anything else.
fn verdict(reply: Reply) -> Option<Said> {
    Some(match reply {
        Reply::Continue => Said::Continue,
        Reply::Skip => Said::Skip,
        Reply::Accept => Said::Final(Decision::Accept),
        Reply::Discard => Said::Final(Decision::Discard),
        Reply::Reject => Said::Final(Decision::Reject("550 5.7.1 Command rejected".into())),
        Reply::TempFail => Said::Final(Decision::TempFail(
            "451 4.7.1 Service unavailable - try again later".into(),
        )),
        Reply::ReplyCode(text) => Said::Final(reply_decision(&text)?),
        _ => return None,
    })
}

fn final_of(said: Said) -> Option<Decision> {
    match said {
        Said::Final(d) => Some(d),
        Said::Continue | Said::Skip => None,
    }
}
