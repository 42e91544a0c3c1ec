//! IDLE (RFC 2177, RFC 9051 §6.3.13): changes are pushed as they happen.
//! The mail store's change notifications wake the session; it then
//! reports what changed in the selected mailbox.

use std::time::Duration;

use crate::imap::session::{Reply, Session, REVOKED_BYE};

impl Session {
    pub(crate) async fn cmd_idle(&mut self) -> Option<Reply> {
        self.account.as_ref()?;
        // Changes of the selected mailbox's owner (another account's when
        // it is shared).
        let acct = self.sel_owner();
        let mut changes = self.core.mail.subscribe();
        let mut shutdown = self.shutdown.clone();
        if !self.send_now(b"+ idling\r\n").await {
            return None;
        }
        let limit = Duration::from_secs(crate::imap::session::idle_limit(
            self.core.config.imap.timeout_idle,
            true,
        ));
        let deadline = tokio::time::Instant::now() + limit;
        let me = self.account.as_ref().map(|a| a.id);
        let core = self.core.clone();
        let mut revocations = self.revocations.clone();
        loop {
            tokio::select! {
                line = self.read_client_line() => {
                    let line = line?;
                    return if line.eq_ignore_ascii_case(b"DONE") {
                        // RFC 2177 §3: what is still due (a change whose
                        // wake-up raced with DONE) goes before the answer.
                        if self.notify.is_some() {
                            self.notify_changes(true).await;
                        } else {
                            self.sync(true).await;
                        }
                        Some("OK IDLE terminated".into())
                    } else {
                        Some("BAD Expected DONE".into())
                    };
                }
                msg = changes.recv() => {
                    let ours = match msg {
                        Ok(a) => a == acct || (self.notify.is_some() && self.notify_relevant(a)),
                        // Missed notifications: look anyway.
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => true,
                        Err(_) => return None,
                    };
                    if ours {
                        // RFC 5465 §4: IDLE reports what NOTIFY asked for.
                        if self.notify.is_some() {
                            self.notify_changes(true).await;
                        } else {
                            self.sync(true).await;
                        }
                        // Access to the mailbox taken away: BYE was written.
                        if !self.send_now(b"").await || self.logout {
                            return None;
                        }
                    }
                }
                _ = crate::directory::until_revoked(&core.directory, &mut revocations, me) => {
                    self.untagged(REVOKED_BYE);
                    let _ = self.send_now(b"").await;
                    return None;
                }
                _ = shutdown.wait() => {
                    self.untagged("BYE Server shutting down");
                    let _ = self.send_now(b"").await;
                    return None;
                }
                _ = tokio::time::sleep_until(deadline) => {
                    self.untagged("BYE Autologout; idle for too long");
                    let _ = self.send_now(b"").await;
                    return None;
                }
            }
        }
    }
}
