//! Prometheus metrics (README: Logs and metrics). Code everywhere counts
//! through the `metrics` macros; `install` puts the exporter's recorder
//! behind them, and `/metrics` renders it. With `metrics.enable = false`
//! nothing is installed and the macros cost a branch.
//!
//! Labels take values from fixed sets only (command names we know, status
//! codes we send), so a client cannot grow the series without bound.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Seconds: 100 µs to 30 s.
const LATENCY: &[f64] = &[
    0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    30.0,
];
/// Bytes: 1 KiB to 64 MiB.
const SIZES: &[f64] = &[
    1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0, 16777216.0, 67108864.0,
];

/// Installs the process's recorder once; later calls return the same
/// handle (tests start several servers in one process).
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY)
            .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_bytes".into()), SIZES))
            .expect("bucket lists are not empty")
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("metrics: a recorder was installed already");
        }
        describe();
        handle
    })
}

/// The recorder when metrics are on.
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE.get()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        "petrel_smtp_sessions_total",
        "SMTP, submission and LMTP sessions opened"
    );
    describe_counter!(
        "petrel_smtp_messages_total",
        "Messages at the end of DATA, by listener and result (accepted, rejected, tempfail)"
    );
    describe_counter!(
        "petrel_smtp_rejections_total",
        "4xx and 5xx replies sent by the SMTP server, by enhanced status code"
    );
    describe_histogram!(
        "petrel_smtp_message_size_bytes",
        Unit::Bytes,
        "Size of messages accepted"
    );
    describe_counter!(
        "petrel_delivery_attempts_total",
        "Outbound delivery outcomes per recipient (delivered, deferred, bounced)"
    );
    describe_gauge!("petrel_queue_messages", "Messages in the outbound queue");
    describe_gauge!(
        "petrel_queue_oldest_seconds",
        Unit::Seconds,
        "Age of the oldest message in the outbound queue"
    );
    describe_counter!("petrel_imap_sessions_total", "IMAP sessions opened");
    describe_counter!("petrel_imap_commands_total", "IMAP commands by name");
    describe_counter!("petrel_pop3_sessions_total", "POP3 sessions opened");
    describe_counter!("petrel_pop3_commands_total", "POP3 commands by name");
    describe_counter!(
        "petrel_logins_total",
        "Password checks by result (ok, failed, throttled)"
    );
    describe_counter!(
        "petrel_connections_refused_total",
        "Connections refused by the per-address limits, by protocol"
    );
    describe_histogram!(
        "petrel_store_transaction_seconds",
        Unit::Seconds,
        "Time from a store transaction's submission to its synced commit"
    );
    describe_histogram!(
        "petrel_store_commit_seconds",
        Unit::Seconds,
        "Time of one synced group commit"
    );
    describe_gauge!(
        "petrel_fts_backlog",
        "Messages waiting for the full-text index (counted up to 100000)"
    );
    describe_gauge!("petrel_lockouts", "Login throttles in force");
    describe_gauge!(
        "petrel_uptime_seconds",
        Unit::Seconds,
        "Seconds since the server started"
    );
    describe_gauge!("petrel_build_info", "Always 1; the version is a label");
    describe_gauge!(
        "petrel_search_index_waiting",
        "1 while the search indexer waits for bulk arrivals to end (search.defer-above)"
    );
    describe_counter!(
        "petrel_acme_orders_total",
        "ACME certificate orders, by result"
    );
    describe_counter!("petrel_jmap_uploads_total", "JMAP uploads stored");
    describe_counter!(
        "petrel_jmap_uploads_evicted_total",
        "JMAP uploads deleted to keep an account within jmap.upload-quota"
    );
    describe_counter!(
        "petrel_managesieve_sessions_total",
        "ManageSieve connections accepted"
    );
    describe_counter!(
        "petrel_sieve_runs_total",
        "Sieve scripts run at delivery, by result (ok, error: the message was kept in the Inbox)"
    );
    describe_counter!(
        "petrel_sieve_stage_runs_total",
        "Administrators' Sieve scripts run at SMTP stages, by stage and result (accept, reject, discard, error: accepted)"
    );
    describe_counter!(
        "petrel_sieve_notifications_total",
        "Notifications Sieve scripts sent with notify mailto: (RFC 5436), queued"
    );
    describe_counter!(
        "petrel_sieve_refusals_total",
        "Messages users' Sieve scripts refused (RFC 5429), by how the sender was told (smtp: a 550 reply, dsn, mdn, unreported: null sender)"
    );
    describe_counter!(
        "petrel_spam_verdicts_total",
        "Messages the spam filter scored on the MTA port, by verdict (ham, junk, reject; unscored when the store failed and the message went on without a score)"
    );
    describe_counter!(
        "petrel_filter_results_total",
        "Messages the external filters ([[smtp.milter]], [[smtp.hook]]) answered, by filter and result (continue, accept, reject, tempfail, discard, quarantine; failure: unreachable, late or nonsense)"
    );
    describe_counter!(
        "petrel_spam_autolearn_total",
        "Messages the spam filter queued to learn from its own confident verdicts (as spam or ham), or dropped because the learner was behind"
    );
    describe_counter!(
        "petrel_spam_feed_fetches_total",
        "Downloads of the phishing feeds ([[spam.feed]]) by feed and result (ok, error: the last list stays)"
    );
    describe_gauge!("petrel_spam_feed_urls", "URLs each phishing feed lists now");
    describe_counter!(
        "petrel_spam_pyzor_checks_total",
        "Pyzor checks by server and result (listed: reported count-min times or more, clean, error: no answer in time or unreadable)"
    );
    describe_counter!(
        "petrel_spam_pyzor_reports_total",
        "Spam reported to Pyzor servers (spam-trap mail, mail moved into Junk) by server and result"
    );
    describe_counter!(
        "petrel_spam_trap_hits_total",
        "Recipients that were spam traps (`spam.traps`): accepted, learnt as spam, never delivered"
    );
    describe_counter!(
        "petrel_spam_dnsbl_lookups_total",
        "DNS blocklist lookups by zone and result (listed, clean, error: failed or unanswered)"
    );
    describe_counter!(
        "petrel_spam_learnt_total",
        "Messages the spam filter learnt, as spam or ham (from `petrel spam train` and from users moving mail into or out of Junk)"
    );
    describe_counter!(
        "petrel_greylist_checks_total",
        "Greylisting checks at RCPT, by result (deferred: 451 sent, passed)"
    );
    describe_counter!(
        "petrel_sieve_vacation_responses_total",
        "Vacation responses queued (users' Sieve scripts, RFC 5230, and the JMAP VacationResponse)"
    );
    describe_counter!(
        "petrel_sieve_redirects_total",
        "Messages a Sieve script redirected, queued"
    );
    describe_counter!(
        "petrel_mailbox_access_changes_total",
        "Changes of what an account may do in another's mailbox (IMAP SETACL/DELETEACL, JMAP shareWith)"
    );
    describe_counter!(
        "petrel_jmap_emails_copied_total",
        "Emails copied by JMAP Email/copy"
    );
    describe_counter!(
        "petrel_jmap_submissions_total",
        "JMAP EmailSubmissions created"
    );
    describe_counter!(
        "petrel_jmap_submission_reports_total",
        "Delivery and read reports matched to JMAP submissions, by kind"
    );
    describe_counter!(
        "petrel_jmap_mdns_total",
        "Read receipts sent by JMAP MDN/send"
    );
    describe_counter!(
        "petrel_jmap_pushes_total",
        "JMAP push messages accepted by push services"
    );
    describe_counter!(
        "petrel_jmap_websocket_connections_total",
        "JMAP WebSocket connections opened"
    );
}

/// A fixed label for an IMAP command name, "other" for anything else.
pub fn imap_command(name: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "APPEND",
        "AUTHENTICATE",
        "CAPABILITY",
        "CHECK",
        "CLOSE",
        "COMPRESS",
        "COPY",
        "CREATE",
        "DELETE",
        "DISABLE",
        "ENABLE",
        "EXAMINE",
        "EXPUNGE",
        "FETCH",
        "GETACL",
        "GETMETADATA",
        "GETQUOTA",
        "GETQUOTAROOT",
        "ID",
        "IDLE",
        "LIST",
        "LISTRIGHTS",
        "LOGIN",
        "LOGOUT",
        "LSUB",
        "MOVE",
        "MYRIGHTS",
        "NAMESPACE",
        "NOOP",
        "RENAME",
        "SEARCH",
        "SELECT",
        "SETACL",
        "SETMETADATA",
        "SETQUOTA",
        "SORT",
        "STARTTLS",
        "STATUS",
        "STORE",
        "SUBSCRIBE",
        "THREAD",
        "UID",
        "UNAUTHENTICATE",
        "UNSELECT",
        "UNSUBSCRIBE",
        "DELETEACL",
        "REPLACE",
    ];
    KNOWN
        .iter()
        .find(|k| k.eq_ignore_ascii_case(name))
        .copied()
        .unwrap_or("other")
}

/// The enhanced status code of an SMTP reply ("5.7.1"), or its basic code
/// when it has none; "other" for anything unexpected.
pub fn smtp_status(reply: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "4.2.2", "4.3.0", "4.3.1", "4.3.2", "4.4.5", "4.5.3", "4.7.0", "4.7.1", "4.7.25", "5.1.1",
        "5.1.3", "5.1.7", "5.1.8", "5.2.2", "5.2.3", "5.3.4", "5.4.6", "5.5.1", "5.5.2", "5.5.4",
        "5.5.6", "5.6.0", "5.6.7", "5.7.0", "5.7.1", "5.7.4", "5.7.8", "5.7.9", "5.7.10", "5.7.11",
        "5.7.13", "5.7.25", "5.7.26", "5.7.27", "5.7.30",
    ];
    let mut words = reply.split([' ', '-']);
    let basic = words.next().unwrap_or("");
    let enhanced = words.next().unwrap_or("");
    if let Some(k) = KNOWN.iter().find(|k| **k == enhanced) {
        return k;
    }
    match basic {
        "421" => "421",
        "450" => "450",
        "451" => "451",
        "452" => "452",
        "454" => "454",
        "500" => "500",
        "501" => "501",
        "502" => "502",
        "503" => "503",
        "504" => "504",
        "530" => "530",
        "535" => "535",
        "550" => "550",
        "552" => "552",
        "553" => "553",
        "554" => "554",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_come_from_fixed_sets() {
        assert_eq!(imap_command("fetch"), "FETCH");
        assert_eq!(imap_command("XYZZY"), "other");
        assert_eq!(smtp_status("550 5.7.1 Relay access denied"), "5.7.1");
        assert_eq!(smtp_status("550-5.1.1 no"), "5.1.1");
        assert_eq!(smtp_status("451 4.9.9 odd"), "451");
        assert_eq!(smtp_status("999 what"), "other");
    }
}
