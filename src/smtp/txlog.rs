//! What an operator reads of each SMTP transaction: one log line at its
//! end (client, HELO, login, envelope, size, reply, authentication
//! results) and the message counters (README: Logs and metrics).

use std::net::SocketAddr;

use super::session::Mode;

/// The listener kind as a metric label.
pub(super) fn listener(mode: Mode) -> &'static str {
    match mode {
        Mode::Mta => "smtp",
        Mode::Submission => "submission",
        Mode::Lmtp => "lmtp",
    }
}

/// What a transaction was, for its log line.
pub(super) struct Transaction<'a> {
    pub session: &'a str,
    pub mode: Mode,
    pub peer: SocketAddr,
    pub helo: &'a str,
    pub login: Option<&'a str>,
    pub from: &'a str,
    pub rcpts: Vec<&'a str>,
    pub size: usize,
    /// The reply to the end of data (the last one for LMTP).
    pub reply: &'a str,
    /// The Authentication-Results header added, if any.
    pub auth_results: &'a str,
    /// The connection, for its TLS version and cipher suite (RFC 8314 §4).
    pub stream: &'a crate::net::Stream,
}

pub(super) fn record(t: &Transaction<'_>) {
    let result = match t.reply.as_bytes().first() {
        Some(b'2') => "accepted",
        Some(b'4') => "tempfail",
        _ => "rejected",
    };
    let listener = listener(t.mode);
    metrics::counter!("petrel_smtp_messages_total", "listener" => listener, "result" => result)
        .increment(1);
    if result == "accepted" {
        metrics::histogram!("petrel_smtp_message_size_bytes").record(t.size as f64);
    }
    // Field values are only computed when the line is logged.
    tracing::info!(
        session = t.session,
        listener,
        client = %t.peer.ip(),
        helo = t.helo,
        login = t.login.unwrap_or(""),
        from = t.from,
        to = t.rcpts.join(",").as_str(),
        size = t.size,
        reply = t.reply,
        auth = summary(t.auth_results).as_str(),
        tls = t
            .stream
            .tls_info()
            .map(|(v, s)| format!("{v} {s}"))
            .unwrap_or_else(|| "none".into())
            .as_str(),
        "smtp transaction {result}"
    );
}

/// `spf=pass dkim=pass dmarc=pass` from an Authentication-Results header
/// (RFC 8601: `method=result` after each `;`).
pub(super) fn summary(header: &str) -> String {
    let mut out = String::new();
    for part in header.split(';').skip(1) {
        let Some(word) = part.split_whitespace().next() else {
            continue;
        };
        if word.contains('=') {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(word);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_keeps_method_and_result() {
        let h = "Authentication-Results: mx.example.org;\r\n\tspf=pass smtp.mailfrom=a@b.example;\r\n\tdkim=fail (bad signature) header.d=b.example;\r\n\tdmarc=none header.from=b.example\r\n";
        assert_eq!(summary(h), "spf=pass dkim=fail dmarc=none");
        assert_eq!(summary(""), "");
    }
}
