//! Sender authentication of inbound mail through mail-auth: SPF (RFC 7208)
//! for HELO and MAIL FROM, DKIM (RFC 6376), ARC (RFC 8617), DMARC
//! (RFC 7489) and iprev, summed up in an Authentication-Results header
//! (RFC 8601) and a verdict.
//!
//! DNS trouble never turns into a refusal: a temporary error is recorded
//! as such and the message is accepted, except with `spf = "strict"`,
//! where it is deferred with a 4xx (RFC 7208 §8.6).

use std::net::IpAddr;

use mail_auth::common::headers::HeaderWriter;
use mail_auth::dmarc::Policy;
use mail_auth::{
    AuthenticatedMessage, AuthenticationResults, DkimResult, DmarcResult, MessageAuthenticator,
    SpfResult,
};

use crate::config::{CheckMode, MailAuthConfig};
use crate::core::Core;
use crate::spf;

/// Text from DNS made fit for an SMTP reply line: printable ASCII only,
/// at most 200 characters.
fn reply_text(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(200)
        .collect::<String>()
        .trim()
        .to_string()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    /// DMARC p=quarantine failed: deliver to Junk.
    Junk,
    /// Refuse with this reply.
    Reject(String),
    /// Defer with this reply.
    TempFail(String),
}

pub struct Checked {
    /// The Authentication-Results header field, with CRLF.
    pub header: String,
    pub verdict: Verdict,
    /// The ARC set to put on a forwarded copy, when sealing was asked for
    /// and possible.
    pub arc_set: Option<String>,
}

/// Asks `check` to ARC-seal the message as well (RFC 8617 §5.1), for a
/// copy forwarded to another domain.
pub struct Sealing<'a> {
    pub key: &'a crate::dkim::DkimKey,
    /// Header fields the ARC-Message-Signature covers.
    pub headers: &'a [String],
}

pub async fn check(
    core: &Core,
    ip: IpAddr,
    helo: &str,
    mail_from: &str,
    raw: &[u8],
    seal: Option<Sealing<'_>>,
) -> Checked {
    let sender = Sender {
        ip,
        helo,
        mail_from,
    };
    check_with(
        &core.config.mail_auth,
        &core.config.hostname,
        &core.resolver.auth,
        sender,
        raw,
        seal,
    )
    .await
}

/// What the SMTP client told us about itself.
#[derive(Debug, Clone, Copy)]
pub struct Sender<'a> {
    pub ip: IpAddr,
    pub helo: &'a str,
    /// The reverse-path; empty for the null sender.
    pub mail_from: &'a str,
}

/// The checks with their inputs spelled out; `check` is this with the
/// server's configuration and resolver.
pub async fn check_with(
    cfg: &MailAuthConfig,
    hostname: &str,
    auth: &MessageAuthenticator,
    sender: Sender<'_>,
    raw: &[u8],
    seal: Option<Sealing<'_>>,
) -> Checked {
    let Sender {
        ip,
        helo,
        mail_from,
    } = sender;
    // A client on IPv4 seen through a dual-stack socket is an IPv4 client.
    let ip = ip.to_canonical();
    let mut results = AuthenticationResults::new(hostname);
    let mut verdict = Verdict::Accept;

    // SPF: HELO first, then MAIL FROM (RFC 7208 §2.3, §2.4).
    let mut spf_mail = None;
    if cfg.spf != CheckMode::Off {
        let helo_out = spf::check_helo(auth.resolver(), hostname, ip, helo).await;
        results = results.with_spf_ehlo_result(&helo_out, ip, helo);
        let mail_out = if mail_from.is_empty() {
            // The null sender is checked as postmaster@HELO (§2.4).
            helo_out.clone()
        } else {
            spf::check_mail_from(auth.resolver(), hostname, ip, helo, mail_from).await
        };
        results = results.with_spf_mailfrom_result(&mail_out, ip, mail_from, helo);
        if cfg.spf == CheckMode::Strict {
            match mail_out.result() {
                SpfResult::Fail => {
                    let who = if mail_from.is_empty() {
                        helo
                    } else {
                        mail_from
                    };
                    // The domain's explanation (exp=, RFC 7208 §6.2) is
                    // passed on to the sender, made safe for a reply line.
                    let why = mail_out
                        .explanation()
                        .map(reply_text)
                        .filter(|t| !t.is_empty())
                        .map(|t| format!(": {t}"))
                        .unwrap_or_default();
                    verdict =
                        Verdict::Reject(format!("550 5.7.23 SPF validation failed for {who}{why}"))
                }
                SpfResult::TempError => {
                    verdict = Verdict::TempFail(
                        "451 4.7.24 SPF DNS lookup failed, try again later".into(),
                    )
                }
                _ => {}
            }
        }
        spf_mail = Some(mail_out);
    }

    let Some(msg) = AuthenticatedMessage::parse(raw) else {
        // Not parseable as a message: nothing more to check.
        return Checked {
            header: results.to_header(),
            verdict,
            arc_set: None,
        };
    };
    let header_from = msg.from().to_string();

    let judged = if cfg.dkim != CheckMode::Off || cfg.dmarc != CheckMode::Off {
        super::dkim_rules::judge(auth, &msg, auth.verify_dkim(&msg).await).await
    } else {
        super::dkim_rules::Judged {
            reported: Vec::new(),
            decisive: Vec::new(),
        }
    };
    if cfg.dkim != CheckMode::Off {
        results = results.with_dkim_results(&judged.reported, &header_from);
    }
    let dkim = judged.decisive;

    let arc = if cfg.arc != CheckMode::Off || seal.is_some() {
        Some(auth.verify_arc(&msg).await)
    } else {
        None
    };
    if let Some(arc) = arc.as_ref().filter(|_| cfg.arc != CheckMode::Off) {
        if !matches!(arc.result(), DkimResult::None) {
            results = results.with_arc_result(arc, ip);
        }
    }

    if cfg.dmarc != CheckMode::Off {
        let spf_for_dmarc = match &spf_mail {
            Some(s) => s.clone(),
            None => spf::check_mail_from(auth.resolver(), hostname, ip, helo, mail_from).await,
        };
        let mail_from_domain = mail_from.rsplit_once('@').map(|(_, d)| d).unwrap_or(helo);
        let dmarc = auth
            .verify_dmarc(mail_auth::dmarc::verify::DmarcParameters::new(
                &msg,
                &dkim,
                mail_from_domain,
                &spf_for_dmarc,
            ))
            .await;
        results = results.with_dmarc_result(&dmarc);
        // `result()` is Fail only when a record exists and neither SPF nor
        // DKIM passed aligned; a temporary error is never a failure.
        let failed = matches!(dmarc.result(), DmarcResult::Fail(_));
        if cfg.dmarc == CheckMode::Enforce && failed && verdict == Verdict::Accept {
            match dmarc.policy() {
                Policy::Reject => {
                    verdict = Verdict::Reject(format!(
                        "550 5.7.1 Rejected by the DMARC policy of {}",
                        dmarc.domain()
                    ))
                }
                Policy::Quarantine => verdict = Verdict::Junk,
                _ => {}
            }
        }
    }

    if cfg.iprev != CheckMode::Off {
        let iprev = auth.verify_iprev(ip).await;
        results = results.with_iprev_result(&iprev, ip);
    }

    // The seal records what we found and the state of the chain; a chain
    // that already failed is not extended (RFC 8617 §5.1.2).
    let arc_set = match (seal, &arc) {
        (Some(s), Some(arc)) if arc.can_be_sealed() => {
            match s.key.arc_seal(&msg, &results, arc, s.headers) {
                Ok(set) => Some(set),
                Err(e) => {
                    tracing::warn!("ARC sealing skipped: {e}");
                    None
                }
            }
        }
        _ => None,
    };
    Checked {
        header: results.to_header(),
        verdict,
        arc_set,
    }
}
