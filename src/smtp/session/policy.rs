//! The administrators' Sieve scripts at each SMTP stage (connect, EHLO,
//! MAIL, RCPT, DATA; `sieve.stages`, and greylisting at RCPT) asked from
//! the session: see [`crate::sieve::smtp`]. LMTP sessions run none (the
//! MTA in front of them has decided).

use super::{Flow, Mode, Session};
use crate::sieve::smtp::{self as stage_scripts, Facts, Stage, Verdict};

impl Session {
    /// The verdict of `stage`'s scripts; `Accept` at once when none runs.
    pub(super) async fn policy(
        &self,
        stage: Stage,
        from: Option<&str>,
        rcpts: Vec<&str>,
        message: &[u8],
    ) -> Verdict {
        if self.mode == Mode::Lmtp || !stage_scripts::active(&self.core, stage) {
            return Verdict::Accept;
        }
        let facts = Facts {
            remote_ip: self.peer.ip(),
            helo: self.helo.as_deref().unwrap_or(""),
            login: self.account.as_ref().map(|a| a.address.as_str()),
            listener: super::super::txlog::listener(self.mode),
            tls: self.conn.stream.is_tls(),
            from,
            rcpts,
            message,
        };
        let v = stage_scripts::run(&self.core, stage, &facts).await;
        if let Verdict::Reject(reply) = &v {
            tracing::info!(session = %self.id, stage = stage.name(), "refused by Sieve: {reply}");
        }
        v
    }

    /// Sends a script's refusal: a temporary one is not a client error
    /// (it does not count toward `smtp.max-errors`), a permanent one is.
    pub(super) async fn refuse(&mut self, reply: &str) -> std::io::Result<Flow> {
        if reply.starts_with('4') {
            self.reply(reply).await?;
            Ok(Flow::Continue)
        } else {
            self.error(reply).await
        }
    }
}
