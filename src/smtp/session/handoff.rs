//! Handing the finished message on: the queue (remote recipients, or
//! all of them with one of them remote), LMTP's per-recipient local
//! delivery, and the reply when a delivery fails.

use super::{Envelope, Flow, Session};
use crate::mail::MailError;
use crate::queue::{NewMessage, QueueRcpt};

impl Session {
    /// The reply to a delivery that failed: a temporary error.
    pub(super) async fn delivery_failed(&mut self, e: MailError) -> std::io::Result<Flow> {
        match e {
            MailError::OverQuota => self.reply("452 4.2.2 Mailbox full").await?,
            e => {
                tracing::error!(session = %self.id, "delivery failed: {e}");
                self.reply("451 4.3.0 Local error in processing, try again later")
                    .await?;
            }
        }
        Ok(Flow::Continue)
    }

    /// Queues a message with all its recipients, local ones included, in
    /// one durable write.
    pub(super) async fn enqueue(
        &self,
        env: &Envelope,
        msg: Vec<u8>,
    ) -> Result<Option<u64>, MailError> {
        let recipients = env
            .rcpts
            .iter()
            // Addresses that only forward were queued as the forwarded copy.
            .filter(|r| !r.accounts.is_empty() || r.forward.is_empty())
            .map(|r| {
                let mut q = QueueRcpt::new(&r.address);
                if let Some(n) = r.notify {
                    q.notify = n;
                }
                q.orcpt = r.orcpt.clone();
                q
            })
            .collect();
        self.enqueue_copy(env, recipients, msg).await.map(Some)
    }

    /// Queues `raw` from the envelope's sender to `recipients`.
    pub(super) async fn enqueue_copy(
        &self,
        env: &Envelope,
        recipients: Vec<QueueRcpt>,
        raw: Vec<u8>,
    ) -> Result<u64, MailError> {
        self.core
            .queue
            .enqueue(NewMessage {
                from: env.from.clone().unwrap_or_default(),
                recipients,
                raw,
                env_id: env.env_id.clone(),
                ret_full: env.ret_full,
                requiretls: env.requiretls,
                smtputf8: env.smtputf8,
                ..Default::default()
            })
            .await
            .map_err(MailError::from)
    }

    /// RFC 2033 §4.2: one reply per accepted recipient, in RCPT order.
    pub(super) async fn lmtp_deliver(
        &mut self,
        env: &Envelope,
        msg: Vec<u8>,
    ) -> std::io::Result<Flow> {
        let mut replies = Vec::with_capacity(env.rcpts.len());
        for r in &env.rcpts {
            let local: Vec<(u32, &str)> = r
                .accounts
                .iter()
                .map(|a| (*a, r.address.as_str()))
                .collect();
            let t = match self.core.deliver_local(msg.clone(), &local).await {
                // RFC 5429 §2.1.1: LMTP refuses per recipient.
                Ok(d) => match d.protocol_refusal(&r.accounts) {
                    Some(reply) => {
                        metrics::counter!("petrel_sieve_refusals_total", "how" => "smtp")
                            .increment(1);
                        reply
                    }
                    None => {
                        if let Err(e) = self.core.report_refusals(&d, env.env_id.clone()).await {
                            tracing::warn!(session = %self.id, "Sieve refusal notice not queued: {e}");
                        }
                        format!("250 2.0.0 <{}> delivered", r.address)
                    }
                },
                Err(MailError::OverQuota) => format!("452 4.2.2 <{}> mailbox full", r.address),
                Err(e) => {
                    tracing::error!(session = %self.id, "LMTP delivery failed: {e}");
                    format!("451 4.3.0 <{}> local error, try again later", r.address)
                }
            };
            replies.push(t);
        }
        self.reply(&replies.join("\r\n")).await?;
        Ok(Flow::Continue)
    }
}
