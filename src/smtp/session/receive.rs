//! Receiving message data: DATA (RFC 5321 §4.1.1.4) and BDAT (RFC 3030
//! §2), spooled past `limits.spool-above` and taken into memory under the
//! memory budget (README: Security).

use std::time::Duration;

use super::super::data::{has_bare_newline, ChunkReceiver, DataOutcome, DataReceiver};
use super::super::spool::{Spool, SpoolError};
use super::{Envelope, Flow, Session};
use crate::config::BareNewlines;

impl Session {
    pub(super) async fn data(&mut self) -> std::io::Result<Flow> {
        self.reply("354 Start mail input; end with <CRLF>.<CRLF>")
            .await?;
        let cfg = self.core.config.smtp.clone();
        let core = self.core.clone();
        let mut rx = DataReceiver::new(cfg.max_message_size);
        let mut spool = Spool::default();
        // Bytes pipelined after DATA are already buffered.
        let mut pending = self.conn.buffered().to_vec();
        let n = pending.len();
        self.conn.consume(n);
        loop {
            if !pending.is_empty() {
                let outcome = rx.feed(&pending);
                spool.absorb(&core, &mut rx).await;
                if let DataOutcome::Done { consumed } = outcome {
                    // Whatever followed the terminator is the next command:
                    // put it back (it was taken from the buffer above).
                    let rest = pending[consumed..].to_vec();
                    self.conn.unread(rest);
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
        if rx.too_big() {
            self.env = Envelope::default();
            return self.error("552 5.3.4 Message too big").await;
        }
        if let Some(e) = spool.failure() {
            return self.spool_failed(e).await;
        }
        let Some((body, _charge)) = self.complete(spool, rx.into_message()).await? else {
            return Ok(Flow::Continue);
        };
        if self.core.config.smtp.bare_newlines == BareNewlines::Reject && has_bare_newline(&body) {
            self.env = Envelope::default();
            return self
                .error(
                    "554 5.6.11 Bare CR or LF in the message data is not allowed (RFC 5321 §2.3.8)",
                )
                .await;
        }
        self.finish_message(body).await
    }

    /// The whole message in memory under the memory budget, or a
    /// temporary refusal (already answered: `None`).
    async fn complete(
        &mut self,
        spool: Spool,
        rest: Vec<u8>,
    ) -> std::io::Result<Option<(Vec<u8>, crate::net::budget::Charge)>> {
        let core = self.core.clone();
        match spool.finish(&core, rest).await {
            Ok(v) => Ok(Some(v)),
            Err(e) => {
                self.env = Envelope::default();
                let reply = match e {
                    SpoolError::Busy => "452 4.3.1 Insufficient system resources, try again later",
                    SpoolError::Io(e) => {
                        tracing::error!(session = %self.id, "cannot read spooled message: {e}");
                        "451 4.3.0 Cannot store the message now, try again later"
                    }
                };
                tracing::warn!(session = %self.id, "message refused for now: {reply}");
                self.reply(reply).await?;
                Ok(None)
            }
        }
    }

    /// BDAT (RFC 3030 §2): read exactly `size` octets, whatever the state,
    /// so the session stays in step; then answer.
    pub(super) async fn bdat(&mut self, size: u64, last: bool) -> std::io::Result<Flow> {
        let cfg = self.core.config.smtp.clone();
        let core = self.core.clone();
        let ok_state =
            self.env.from.is_some() && (!self.env.rcpts.is_empty() || self.env.discarded > 0);
        let (mut rx, mut spool) = match self.env.chunks.take() {
            Some(c) => c,
            None => (ChunkReceiver::new(cfg.max_message_size), Spool::default()),
        };
        rx.start_chunk(size);
        while !rx.chunk_done() {
            if self.conn.buffered().is_empty() {
                let read =
                    tokio::time::timeout(Duration::from_secs(cfg.timeout_data), self.conn.fill())
                        .await;
                match read {
                    Ok(Ok(0)) | Ok(Err(_)) => return Ok(Flow::Close),
                    Err(_) => {
                        self.reply("421 4.4.2 Timeout waiting for data, closing")
                            .await?;
                        return Ok(Flow::Close);
                    }
                    Ok(Ok(_)) => {}
                }
            }
            let used = rx.feed(self.conn.buffered());
            self.conn.consume(used);
            spool.absorb(&core, &mut rx).await;
        }
        if !ok_state {
            self.env.chunks = None;
            return if self.env.from.is_none() {
                self.error("503 5.5.1 Send MAIL first").await
            } else {
                self.error("554 5.5.1 No valid recipients").await
            };
        }
        if rx.too_big() {
            // RFC 3030 §2: the transaction is over after a failed chunk.
            self.env = Envelope::default();
            return self.error("552 5.3.4 Message too big").await;
        }
        if let Some(e) = spool.failure() {
            return self.spool_failed(e).await;
        }
        if !last {
            self.env.chunks = Some((rx, spool));
            let t = format!("250 2.0.0 {size} octets received");
            self.reply(&t).await?;
            return Ok(Flow::Continue);
        }
        let Some((body, _charge)) = self.complete(spool, rx.into_message()).await? else {
            return Ok(Flow::Continue);
        };
        self.finish_message(body).await
    }

    /// The message could not be spooled: refused for now, the
    /// transaction is over, the session goes on.
    async fn spool_failed(&mut self, e: &std::io::Error) -> std::io::Result<Flow> {
        tracing::error!(session = %self.id, "cannot spool message data: {e}");
        self.env = Envelope::default();
        self.reply("451 4.3.0 Cannot store the message now, try again later")
            .await?;
        Ok(Flow::Continue)
    }
}
