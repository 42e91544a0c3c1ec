//! The external filters' turn (src/filters/): after Petrel's own spam
//! filter, each milter then each HTTP hook configured for this port
//! sees the message; their verdicts become replies, their changes are
//! made to the message, a quarantine files it in Junk. A filter that
//! fails answers 451 or lets the message by, as its `on-failure` says.

use super::spam::SpamStep;
use super::{Envelope, Mode, Session};
use crate::config::{FilterPort, OnFailure};
use crate::filters::{apply, Changes, Decision, HeaderChange, Outcome, Transaction};

const UNAVAILABLE: &str = "451 4.7.1 A mail filter is unavailable, try again later";

impl Session {
    /// The spam filter, then the external filters.
    pub(super) async fn content_checks(
        &self,
        env: &Envelope,
        body: Vec<u8>,
        auth_results: &str,
    ) -> SpamStep {
        match self.spam_check(env, body, auth_results).await {
            SpamStep::Deliver { body, junk } => self.external_filters(env, body, junk).await,
            other => other,
        }
    }

    async fn external_filters(
        &self,
        env: &Envelope,
        mut body: Vec<u8>,
        mut junk: bool,
    ) -> SpamStep {
        let port = match self.mode {
            Mode::Mta => FilterPort::Mta,
            Mode::Submission => FilterPort::Submission,
            Mode::Lmtp => return SpamStep::Deliver { body, junk },
        };
        let smtp = &self.core.config.smtp;
        let milters = smtp.milter.iter().filter(|m| m.ports.contains(&port));
        let hooks = smtp.hook.iter().filter(|h| h.ports.contains(&port));
        let wanted: Vec<Filter> = milters
            .map(Filter::Milter)
            .chain(hooks.map(Filter::Hook))
            .collect();
        for filter in wanted {
            let name = filter.name();
            let tx = Transaction {
                queue_id: format!("{}.{}", self.id, self.messages),
                hostname: &self.core.config.hostname,
                client_ip: self.peer.ip(),
                client_port: self.peer.port(),
                helo: self.helo.as_deref().unwrap_or(""),
                login: self.account.as_ref().map(|a| a.address.as_str()),
                from: env.from.as_deref().unwrap_or(""),
                rcpts: env.rcpts.iter().map(|r| r.address.as_str()).collect(),
                message: &body,
            };
            let answer = match filter {
                Filter::Milter(m) => {
                    crate::filters::milter::check(m, &tx, smtp.max_message_size).await
                }
                Filter::Hook(h) => crate::filters::http::check(&self.core, h, &tx).await,
            };
            let Outcome { decision, changes } = match answer {
                Ok(o) => o,
                Err(e) => {
                    count(name, "failure");
                    return match filter.on_failure() {
                        OnFailure::Tempfail => {
                            tracing::warn!(session = %self.id, filter = %name, "filter failed, message deferred: {e}");
                            SpamStep::Refuse(UNAVAILABLE.into())
                        }
                        OnFailure::Accept => {
                            tracing::warn!(session = %self.id, filter = %name, "filter failed, message let by: {e}");
                            continue;
                        }
                    };
                }
            };
            if !changes.ignored.is_empty() {
                tracing::warn!(session = %self.id, filter = %name, ignored = %changes.ignored.join("; "), "filter asked for changes Petrel does not make");
            }
            if !changes.is_empty() {
                body = apply(&body, &changes);
            }
            if filter.marks_junk(&changes) {
                tracing::info!(session = %self.id, filter = %name, "filter marked the message as spam: filed in Junk");
                junk = true;
            }
            if let Some(reason) = &changes.quarantine {
                tracing::info!(session = %self.id, filter = %name, reason = %reason, "filter quarantined the message: filed in Junk");
                count(name, "quarantine");
                junk = true;
            }
            let result = match &decision {
                Decision::Continue => "continue",
                Decision::Accept => "accept",
                Decision::Reject(_) => "reject",
                Decision::TempFail(_) => "tempfail",
                Decision::Discard => "discard",
            };
            count(name, result);
            tracing::info!(session = %self.id, filter = %name, result, headers = changes.headers.len(), body_replaced = changes.body.is_some(), "filter");
            match decision {
                // A milter's accept ends its own part (Postfix reads it
                // so too): the filters after it still see the message.
                Decision::Continue | Decision::Accept => {}
                Decision::Reject(r) | Decision::TempFail(r) => return SpamStep::Refuse(r),
                Decision::Discard => return SpamStep::Discard,
            }
        }
        SpamStep::Deliver { body, junk }
    }
}

#[derive(Clone, Copy)]
enum Filter<'a> {
    Milter(&'a crate::config::MilterConfig),
    Hook(&'a crate::config::HookConfig),
}

impl Filter<'_> {
    fn name(&self) -> &str {
        match self {
            Filter::Milter(m) if m.name.is_empty() => &m.address,
            Filter::Milter(m) => &m.name,
            Filter::Hook(h) if h.name.is_empty() => &h.url,
            Filter::Hook(h) => &h.name,
        }
    }

    /// Whether a milter's changes carry its `junk-header`.
    fn marks_junk(&self, changes: &Changes) -> bool {
        let Filter::Milter(m) = self else {
            return false;
        };
        let Some((want_name, want_value)) = m.junk_header.split_once(':') else {
            return false;
        };
        changes.headers.iter().any(|h| {
            let (name, value) = match h {
                HeaderChange::Add { name, value }
                | HeaderChange::Insert { name, value, .. }
                | HeaderChange::Change { name, value, .. } => (name, value),
            };
            name.trim().eq_ignore_ascii_case(want_name.trim())
                && value.trim().eq_ignore_ascii_case(want_value.trim())
        })
    }

    fn on_failure(&self) -> OnFailure {
        match self {
            Filter::Milter(m) => m.on_failure,
            Filter::Hook(h) => h.on_failure,
        }
    }
}

fn count(filter: &str, result: &'static str) {
    metrics::counter!("petrel_filter_results_total", "filter" => filter.to_string(), "result" => result)
        .increment(1);
}
