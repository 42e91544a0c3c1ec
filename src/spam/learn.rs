//! Learning from users: drains the mail store's queue of junk changes
//! (src/mail/junk.rs), reads each message and learns it as spam or ham
//! into the server's and the account's databases. A message is learnt
//! once per verdict (a second move into Junk changes nothing; out of Junk
//! again forgets the spam and learns ham). A store failure leaves the
//! queue as it is and is retried.

use std::sync::Arc;
use std::time::Duration;

use super::filter::Filter;
use crate::mail::junk::JunkMark;
use crate::mail::MailStore;

/// Learns every queued change once; how many were learnt.
pub async fn drain(mail: &MailStore, filter: &Filter) -> Result<usize, String> {
    let mut n = 0;
    loop {
        let marks = mail.learn_queue(256).await.map_err(|e| e.to_string())?;
        if marks.is_empty() {
            return Ok(n);
        }
        for m in marks {
            learn_one(mail, filter, m).await?;
            n += 1;
        }
    }
}

async fn learn_one(mail: &MailStore, filter: &Filter, m: JunkMark) -> Result<(), String> {
    let meta = mail
        .email_meta(m.account, m.email)
        .await
        .map_err(|e| e.to_string())?;
    let raw = match meta {
        Some(meta) => match mail.email_raw_live(m.account, m.email, &meta).await {
            Ok(raw) => raw,
            // Its content is lost: nothing to learn, and retrying would
            // hold up every change queued after it.
            Err(crate::mail::MailError::NotFound(e)) => {
                tracing::warn!(
                    account = m.account,
                    email = m.email,
                    "spam filter cannot learn a message: {e}"
                );
                None
            }
            Err(e) => return Err(e.to_string()),
        },
        None => None,
    };
    if let Some(raw) = raw {
        let out = filter
            .learn(&raw, Some(m.account), Some((m.account, m.email)), m.spam)
            .await
            .map_err(|e| e.to_string())?;
        if m.spam && out != crate::spam::db::Learnt::Already {
            filter.report_pyzor(&raw).await;
        }
        tracing::info!(
            account = m.account,
            email = m.email,
            learnt = if m.spam { "spam" } else { "ham" },
            outcome = ?out,
            "spam filter learnt from a user's move"
        );
    }
    mail.learn_done(m).await.map_err(|e| e.to_string())
}

/// Runs [`drain`] whenever the mail store records a change.
pub fn spawn(mail: MailStore, filter: Arc<Filter>, mut shutdown: crate::net::Shutdown) {
    let wake = mail.learn_wake();
    tokio::spawn(async move {
        loop {
            match drain(&mail, &filter).await {
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!("spam learning paused, trying again in 10 s: {e}");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(10)) => continue,
                        _ = shutdown.wait() => return,
                    }
                }
            }
            tokio::select! {
                _ = wake.notified() => {}
                _ = shutdown.wait() => return,
            }
        }
    });
}
