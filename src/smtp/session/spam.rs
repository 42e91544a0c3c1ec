//! The spam filter's turn (src/spam/), on the MTA port only: mail from
//! logged-in users and LMTP (whose MTA decided) is not scored. The
//! session turns the verdict into a reply or a Junk filing and adds the
//! X-Spam-* fields; the filter never costs a message: when it cannot
//! decide (the store fails), the message goes on unscored.
//!
//! X-Spam-* fields a client sent are removed on the MTA and submission
//! ports whether the filter is on or not, so that what Sieve's spamtest
//! reads (RFC 5235 §4) comes from the filter, never from a sender.

use super::{Envelope, Mode, Session};
use crate::spam::filter::{headers, strip_headers_owned};
use crate::spam::rules::Context;
use crate::spam::Verdict;

pub(super) enum SpamStep {
    /// Deliver `body` (with the filter's fields), into Junk if `junk`.
    Deliver { body: Vec<u8>, junk: bool },
    /// Refuse with this reply.
    Refuse(String),
    /// Answer 250 and deliver nothing (an external filter's discard).
    Discard,
}

impl Session {
    /// Whether `to` is one of `spam.traps` (an address, or `*@domain`),
    /// for mail from outside on the MTA port.
    pub(super) fn is_spam_trap(&self, to: &str) -> bool {
        let cfg = self.core.spam.config();
        if !cfg.enable || self.mode != Mode::Mta || self.account.is_some() {
            return false;
        }
        cfg.traps.iter().any(|t| match t.strip_prefix("*@") {
            Some(domain) => to
                .rsplit_once('@')
                .is_some_and(|(_, d)| d.eq_ignore_ascii_case(domain)),
            None => t.eq_ignore_ascii_case(to),
        })
    }

    pub(super) async fn spam_check(
        &self,
        env: &Envelope,
        body: Vec<u8>,
        auth_results: &str,
    ) -> SpamStep {
        if self.mode == Mode::Lmtp {
            return SpamStep::Deliver { body, junk: false };
        }
        // Senders cannot bring their own verdict.
        let body = strip_headers_owned(body);
        let filter = &self.core.spam;
        if !filter.config().enable || self.mode != Mode::Mta || self.account.is_some() {
            return SpamStep::Deliver { body, junk: false };
        }
        // Like spamc's limit: big messages are rarely spam, and reading
        // them would cost memory the budget did not count.
        if body.len() > filter.config().max_size {
            tracing::info!(session = %self.id, size = body.len(), "spam filter skipped: larger than spam.max-size");
            metrics::counter!("petrel_spam_verdicts_total", "verdict" => "unscored").increment(1);
            return SpamStep::Deliver { body, junk: false };
        }
        // One account's database decides when one account gets it all.
        let mut accounts = env.rcpts.iter().flat_map(|r| r.accounts.iter());
        let first = accounts.next().copied();
        let account = first.filter(|a| accounts.all(|b| b == a));
        if env.trapped > 0 {
            // Whatever a trap gets is spam.
            if let Err(e) = filter.learn(&body, None, None, true).await {
                tracing::warn!(session = %self.id, "spam trap message not learnt: {e}");
            }
            let (f, raw) = (filter.clone(), body.clone());
            tokio::spawn(async move { f.report_pyzor(&raw).await });
        }
        let from_local = match from_domain(&body) {
            Some(d) => self
                .core
                .directory
                .is_local_domain(&d)
                .await
                .unwrap_or(false),
            None => false,
        };
        let ctx = Context {
            auth_results,
            now: crate::core::unix_now(),
            client_ip: Some(self.peer.ip()),
            mail_from: env.from.as_deref().unwrap_or(""),
            trapped: env.trapped > 0,
            from_local,
        };
        let report = match filter.classify(&body, &ctx, account).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(session = %self.id, "spam filter skipped (store): {e}");
                metrics::counter!("petrel_spam_verdicts_total", "verdict" => "unscored")
                    .increment(1);
                return SpamStep::Deliver { body, junk: false };
            }
        };
        // Trap mail was learnt above already.
        let learnt = (env.trapped == 0)
            .then(|| filter.auto_learn(&report, &body))
            .flatten();
        // Written off the reply's path: a reputation is no acknowledged data.
        filter.record(&report, ctx.now, env.trapped > 0);
        let verdict = match report.verdict {
            Verdict::Ham => "ham",
            Verdict::Junk => "junk",
            Verdict::Reject => "reject",
        };
        metrics::counter!("petrel_spam_verdicts_total", "verdict" => verdict).increment(1);
        let rules: Vec<&str> = report.hits.iter().map(|h| h.0.as_str()).collect();
        tracing::info!(
            session = %self.id,
            score = report.score,
            verdict,
            rules = %rules.join(","),
            bayes = ?report.bayes,
            listed = ?report.listed,
            auto_learnt = ?learnt,
            "spam filter"
        );
        if report.verdict == Verdict::Reject {
            return SpamStep::Refuse(format!(
                "550 5.7.1 Message refused as spam (score {:.1}, limit {:.1})",
                report.score,
                filter.config().reject_score
            ));
        }
        let mut out = headers(&report).into_bytes();
        out.extend_from_slice(&body);
        SpamStep::Deliver {
            body: out,
            junk: report.verdict == Verdict::Junk,
        }
    }
}

/// The domain of the (first) From header field's address.
fn from_domain(raw: &[u8]) -> Option<String> {
    let msg = mail_parser::MessageParser::new().parse_headers(raw)?;
    let addr = msg.from()?.first()?.address()?;
    addr.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase())
}
