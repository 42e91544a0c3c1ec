//! The filter: rules and the classifier add up to a score, the score
//! gives a verdict, and headers say why. One per server, shared by the
//! SMTP sessions, the API and the learner.

use std::borrow::Cow;

use mail_auth::hickory_resolver::TokioResolver;
use mail_parser::MessageParser;

use super::db::{Learnt, TokenDb, GLOBAL};
use super::reputation::{Reputation, Sender};
use super::rules::{self, Context};
use crate::config::SpamConfig;
use crate::store::StoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Ham,
    /// File into the recipient's Junk mailbox.
    Junk,
    /// Refuse at DATA.
    Reject,
}

/// What the filter found in one message.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub score: f64,
    /// Rules that fired with their scores, highest first.
    pub hits: Vec<(String, f64)>,
    /// Rules scored from outside the message (blocklists, reputation)
    /// and whom they name (an address, a domain, an ASN).
    pub listed: Vec<(String, String)>,
    /// Whom the message's score counts for in the senders' reputations.
    pub senders: Vec<Sender>,
    /// The score without the reputation rules (what the senders'
    /// reputations learn, so that none feeds itself).
    pub own_score: f64,
    /// The classifier's spam probability, when a database had learnt enough.
    pub bayes: Option<f64>,
    /// Whose database: 0 the server's, else the account's.
    pub bayes_scope: Option<u32>,
    pub verdict: Verdict,
    pub required: f64,
}

pub struct Filter {
    cfg: SpamConfig,
    pub db: TokenDb,
    /// For the DNS blocklists and ASNs.
    resolver: Option<TokioResolver>,
    reputation: Reputation,
    /// Clients whose mail has no reputation (`spam.reputation.exempt`).
    exempt: Vec<crate::net::limit::Cidr>,
    /// Phishing feeds (`spam.feed`), fetched by `feeds::spawn`.
    pub feeds: super::feeds::Feeds,
    /// The auto-learner's queue, started on first use.
    auto: std::sync::OnceLock<tokio::sync::mpsc::Sender<(Vec<u8>, bool)>>,
}

/// Messages waiting for the auto-learner; more are not learnt.
const AUTO_QUEUE: usize = 64;

impl Filter {
    pub fn new(cfg: SpamConfig, db: TokenDb) -> Self {
        let reputation = Reputation::new(db.store().clone(), cfg.reputation.clone());
        let feeds = super::feeds::Feeds::new(db.store().clone(), cfg.feed.clone());
        let exempt = cfg
            .reputation
            .exempt
            .iter()
            .filter_map(|b| b.parse().ok())
            .collect();
        Filter {
            cfg,
            db,
            resolver: None,
            reputation,
            exempt,
            feeds,
            auto: Default::default(),
        }
    }

    /// Asks the blocklists through `resolver` (`resolver.*`).
    pub fn with_resolver(mut self, resolver: TokioResolver) -> Self {
        self.resolver = Some(resolver);
        self
    }

    pub fn config(&self) -> &SpamConfig {
        &self.cfg
    }

    /// A rule's score here: configured, else built in.
    pub fn score_of(&self, id: &str) -> f64 {
        score_of(&self.cfg, id)
    }

    /// The database whose opinion counts for `account` (its own once it
    /// has learnt enough, else the server's once that has), if any.
    async fn scope_for(&self, account: Option<u32>) -> Result<Option<u32>, StoreError> {
        let min = self.cfg.bayes.min_learns;
        let enough = |(s, h): (u32, u32)| s >= min && h >= min;
        if let Some(a) = account {
            if enough(self.db.totals(a).await?) {
                return Ok(Some(a));
            }
        }
        Ok(enough(self.db.totals(GLOBAL).await?).then_some(GLOBAL))
    }

    /// Scores `raw` (for `account`'s eyes when one recipient gets it).
    pub async fn classify(
        &self,
        raw: &[u8],
        ctx: &Context<'_>,
        account: Option<u32>,
    ) -> Result<Report, StoreError> {
        // Parsed once, its text read once, for every check.
        let parsed = MessageParser::default()
            .parse(raw)
            .map(|msg| (rules::Reading::of(&msg), msg));
        let mut fired: Vec<&'static str> = match &parsed {
            Some((read, msg)) => rules::check_read(msg, read, ctx),
            None => vec!["MISSING_FROM"],
        };
        let timeout = std::time::Duration::from_secs(self.cfg.dnsbl_timeout);
        let listed = self.blocklists(parsed.as_ref(), ctx, timeout);
        // The client's network, asked while the blocklists are.
        let rated = ctx.client_ip.filter(|ip| {
            self.cfg.reputation.enable && !self.exempt.iter().any(|b| b.contains(*ip))
        });
        let asn = async {
            match (rated, &self.resolver) {
                (Some(ip), Some(r)) => {
                    super::reputation::asn(r, &self.cfg.reputation, ip, timeout).await
                }
                _ => None,
            }
        };
        let pyzor = self.pyzor_hit(parsed.as_ref().map(|p| &p.1), raw, timeout);
        let (mut listed, asn, pyzor) = tokio::join!(listed, asn, pyzor);
        if let Some(digest) = pyzor {
            listed.push(("PYZOR".to_string(), self.score_of("PYZOR"), digest));
        }
        let senders = match rated {
            Some(ip) => {
                let spf_pass = rules::auth_results(ctx.auth_results)
                    .iter()
                    .any(|(m, r)| m == "spf" && r == "pass");
                super::reputation::senders(Some(ip), asn, ctx.mail_from, spf_pass)
            }
            None => Vec::new(),
        };
        if let Some((read, _)) = parsed
            .as_ref()
            .filter(|_| !self.feeds.configured().is_empty())
        {
            listed.extend(self.feeds.check(&read.link_urls()));
        }
        let reputation = self.reputation.check(&senders, ctx.now).await?;
        let rep_score: f64 = reputation.iter().map(|r| r.1).sum();
        listed.extend(reputation);
        let mut bayes = None;
        let mut bayes_scope = None;
        if self.cfg.bayes.enable {
            if let Some(scope) = self.scope_for(account).await? {
                let model = self.db.model(scope).await?;
                let tokens = match &parsed {
                    Some((read, msg)) => {
                        super::tokens::tokens_read(msg, read, &rules::content_only(&fired))
                    }
                    None => super::tokens(raw),
                };
                let p = model.read().expect("spam model").score(&tokens).probability;
                bayes = Some(p);
                bayes_scope = Some(scope);
                if let Some(band) = rules::bayes_band(p) {
                    fired.push(band);
                }
            }
        }
        let mut report = self.report(fired, listed, bayes, bayes_scope);
        report.own_score = ((report.score - rep_score) * 100.0).round() / 100.0;
        report.senders = senders;
        Ok(report)
    }

    /// The blocklists' listings of a message (`[[spam.dnsbl]]`): its
    /// client, domains, addresses and attachments, asked at once.
    async fn blocklists(
        &self,
        parsed: Option<&(rules::Reading, mail_parser::Message<'_>)>,
        ctx: &Context<'_>,
        timeout: std::time::Duration,
    ) -> Vec<(String, f64, String)> {
        let (Some(resolver), false) = (&self.resolver, self.cfg.dnsbl.is_empty()) else {
            return Vec::new();
        };
        let mut hosts: Vec<String> = Vec::new();
        if let Some((_, d)) = ctx.mail_from.rsplit_once('@') {
            hosts.push(d.to_string());
        }
        if let Some((read, msg)) = parsed {
            hosts.extend(rules::message_hosts(msg, read));
        }
        let domains = super::dnsbl::domains(hosts.iter().map(String::as_str));
        let wants = |c: crate::config::DnsblCheck| self.cfg.dnsbl.iter().any(|z| z.check == c);
        let (mut emails, mut attachments) = (Vec::new(), Vec::new());
        if let Some((read, msg)) = parsed {
            if wants(crate::config::DnsblCheck::Email) {
                let mut given = vec![ctx.mail_from.to_string()];
                for list in [msg.from(), msg.reply_to()].into_iter().flatten() {
                    given.extend(list.iter().filter_map(|a| a.address()).map(str::to_string));
                }
                emails = super::dnsbl::emails(given.iter().map(String::as_str), &read.text);
            }
            if wants(crate::config::DnsblCheck::Attachment) {
                attachments = msg
                    .attachments()
                    .take(10)
                    .enumerate()
                    .map(|(i, p)| {
                        let name = mail_parser::MimeHeaders::attachment_name(p)
                            .map_or_else(|| format!("#{}", i + 1), str::to_string);
                        (name, p.contents().to_vec())
                    })
                    .collect();
            }
        }
        let asked = super::dnsbl::Asked {
            client: ctx.client_ip,
            domains: &domains,
            emails: &emails,
            attachments: &attachments,
        };
        super::dnsbl::check(resolver, &self.cfg.dnsbl, &asked, timeout).await
    }

    /// The digest, when a Pyzor server counts it as spam.
    async fn pyzor_hit(
        &self,
        msg: Option<&mail_parser::Message<'_>>,
        raw: &[u8],
        timeout: std::time::Duration,
    ) -> Option<String> {
        let servers = &self.cfg.pyzor.servers;
        if servers.is_empty() {
            return None;
        }
        let digest = super::pyzor::digest_of(msg?, raw)?;
        let asks = servers
            .iter()
            .map(|s| super::pyzor::ask(s, "check", &digest, timeout));
        let answers = futures_util::future::join_all(asks).await;
        let mut hit = false;
        for (s, a) in servers.iter().zip(answers) {
            let result = match &a {
                Ok(a) if super::pyzor::is_hit(a, self.cfg.pyzor.count_min) => "listed",
                Ok(_) => "clean",
                Err(e) => {
                    tracing::debug!(server = %s, "pyzor: {e}");
                    "error"
                }
            };
            hit |= result == "listed";
            metrics::counter!("petrel_spam_pyzor_checks_total", "server" => s.clone(), "result" => result).increment(1);
        }
        hit.then_some(digest)
    }

    /// Reports `raw` as spam to the Pyzor servers (`spam.pyzor.report`);
    /// failures are logged, never fatal.
    pub async fn report_pyzor(&self, raw: &[u8]) {
        let cfg = &self.cfg.pyzor;
        if cfg.servers.is_empty() || !cfg.report {
            return;
        }
        let Some(digest) = super::pyzor::digest(&strip_headers(raw)) else {
            return;
        };
        let timeout = std::time::Duration::from_secs(self.cfg.dnsbl_timeout);
        for s in &cfg.servers {
            let result = match super::pyzor::ask(s, "report", &digest, timeout).await {
                Ok(a) if a.code == 200 => "ok",
                Ok(a) => {
                    tracing::warn!(server = %s, code = a.code, "pyzor report refused");
                    "error"
                }
                Err(e) => {
                    tracing::warn!(server = %s, "pyzor report failed: {e}");
                    "error"
                }
            };
            metrics::counter!("petrel_spam_pyzor_reports_total", "server" => s.clone(), "result" => result).increment(1);
        }
    }

    /// Counts a scored message in its senders' reputations; mail that
    /// went to a spam trap counts as `spam.reject-score` at least.
    /// (Written within a second, in the background.)
    pub fn record(&self, report: &Report, now: i64, trapped: bool) {
        let mut score = report.own_score;
        if trapped {
            score = score.max(self.cfg.reject_score.max(self.cfg.junk_score * 3.0));
        }
        self.reputation.record(report.senders.clone(), score, now)
    }

    /// Learns `raw` into the server's database when the verdict was
    /// confident (`spam.bayes.auto-learn*`, scored without the classifier
    /// and reputation; the whole verdict and the classifier agreeing)
    /// and the classifier was not already sure of it;
    /// in the background, dropped when the learner is behind. What it
    /// queued: Some(true) spam, Some(false) ham.
    pub fn auto_learn(self: &std::sync::Arc<Self>, report: &Report, raw: &[u8]) -> Option<bool> {
        let b = &self.cfg.bayes;
        if !self.cfg.enable || !b.enable || !b.auto_learn {
            return None;
        }
        let band: f64 = report
            .hits
            .iter()
            .filter(|h| h.0.starts_with("BAYES_"))
            .map(|h| h.1)
            .sum();
        let rules = report.own_score - band;
        let spam = if rules >= b.auto_learn_spam {
            true
        } else if rules <= b.auto_learn_ham {
            false
        } else {
            return None;
        };
        // What the classifier already gets right, surely, it need not
        // learn again (fewer writes, no drift to the common case); what it
        // disagrees with, or the whole verdict does, is no confident case.
        let skip = |p: f64| {
            if spam {
                !(0.5..0.99).contains(&p)
            } else {
                p <= 0.01 || p > 0.5
            }
        };
        if report.bayes.is_some_and(skip) || spam != (report.verdict != Verdict::Ham) {
            return None;
        }
        let tx = self.auto.get_or_init(|| {
            let (tx, mut rx) = tokio::sync::mpsc::channel::<(Vec<u8>, bool)>(AUTO_QUEUE);
            let filter = self.clone();
            tokio::spawn(async move {
                while let Some((raw, spam)) = rx.recv().await {
                    if let Err(e) = filter.learn(&raw, None, None, spam).await {
                        tracing::warn!("spam filter auto-learning failed: {e}");
                    }
                }
            });
            tx
        });
        let kind = if spam { "spam" } else { "ham" };
        match tx.try_send((raw.to_vec(), spam)) {
            Ok(()) => {
                metrics::counter!("petrel_spam_autolearn_total", "as" => kind).increment(1);
                Some(spam)
            }
            Err(_) => {
                metrics::counter!("petrel_spam_autolearn_total", "as" => "dropped").increment(1);
                None
            }
        }
    }

    /// The senders' reputations, worst first (`petrel spam reputation`).
    pub async fn reputations(
        &self,
        now: i64,
    ) -> Result<Vec<(String, super::reputation::Record)>, StoreError> {
        self.reputation.list(now).await
    }

    fn report(
        &self,
        fired: Vec<&'static str>,
        listed: Vec<(String, f64, String)>,
        bayes: Option<f64>,
        scope: Option<u32>,
    ) -> Report {
        let extra = listed.iter().map(|(id, s, _)| (id.clone(), *s)).collect();
        let (score, hits) = add_up(&self.cfg, fired, extra);
        let listed = listed.into_iter().map(|(id, _, what)| (id, what)).collect();
        let verdict = if self.cfg.reject_score > 0.0 && score >= self.cfg.reject_score {
            Verdict::Reject
        } else if score >= self.cfg.junk_score {
            Verdict::Junk
        } else {
            Verdict::Ham
        };
        Report {
            score,
            own_score: score,
            senders: Vec::new(),
            hits,
            listed,
            bayes,
            bayes_scope: scope,
            verdict,
            required: self.cfg.junk_score,
        }
    }

    /// Learns a message as spam or ham for the server and, when given,
    /// an account (`stored`: the account's message, learnt once).
    pub async fn learn(
        &self,
        raw: &[u8],
        account: Option<u32>,
        stored: Option<(u32, u64)>,
        spam: bool,
    ) -> Result<Learnt, StoreError> {
        let mut scopes = vec![GLOBAL];
        scopes.extend(account.filter(|a| *a != GLOBAL));
        let tokens = super::tokens(&strip_headers(raw));
        let out = self.db.learn(scopes, stored, tokens, spam).await?;
        metrics::counter!("petrel_spam_learnt_total", "as" => if spam { "spam" } else { "ham" })
            .increment(u64::from(out != Learnt::Already));
        Ok(out)
    }
}

/// A rule's score under `cfg`: configured, else built in.
pub fn score_of(cfg: &SpamConfig, id: &str) -> f64 {
    cfg.rules
        .get(id)
        .copied()
        .or_else(|| rules::find(id).map(|r| r.score))
        .unwrap_or(0.0)
}

/// The score of the rules that fired and each one's part, highest first
/// (rules scored 0 left out).
/// `extra` are rules scored elsewhere (the blocklists).
pub fn add_up(
    cfg: &SpamConfig,
    fired: Vec<&'static str>,
    extra: Vec<(String, f64)>,
) -> (f64, Vec<(String, f64)>) {
    let mut hits: Vec<(String, f64)> = fired
        .into_iter()
        .map(|id| (id.to_string(), score_of(cfg, id)))
        .chain(extra)
        .filter(|(_, s)| *s != 0.0)
        .collect();
    hits.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    // Rounded to what the headers show; `+ 0.0` makes an empty sum
    // (-0.0) read 0.
    let score = (hits.iter().map(|h| h.1).sum::<f64>() * 100.0).round() / 100.0 + 0.0;
    (score, hits)
}

/// The header fields the filter adds, each ending in CRLF.
pub fn headers(r: &Report) -> String {
    let yes = if r.verdict == Verdict::Ham {
        "No"
    } else {
        "Yes"
    };
    use std::fmt::Write;
    let mut out = String::with_capacity(96 + 32 * r.hits.len());
    let _ = write!(
        out,
        "X-Spam-Status: {yes}, score={:.2} required={:.2}\r\nX-Spam-Score: {:.2}\r\n",
        r.score, r.required, r.score
    );
    for (i, (id, s)) in r.hits.iter().enumerate() {
        let lead = if i == 0 { "X-Spam-Result: " } else { ",\r\n\t" };
        let _ = write!(out, "{lead}{id} ({s:.2})");
    }
    if !r.hits.is_empty() {
        out.push_str("\r\n");
    }
    out
}

/// `raw` without the `X-Spam-*` header fields (added by someone else
/// before it arrived, or by the filter when it is learnt from).
pub fn strip_headers(raw: &[u8]) -> Cow<'_, [u8]> {
    match crate::mail::mime::without_fields(raw, rules::is_own_header) {
        Some(v) => Cow::Owned(v),
        None => Cow::Borrowed(raw),
    }
}

/// The X-Spam-Score field's value, if the message has one.
pub fn score_field(raw: &[u8]) -> Option<String> {
    let end = crate::mail::mime::header_section_end(raw);
    String::from_utf8_lossy(&raw[..end]).lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case("X-Spam-Score")
            .then(|| v.trim().to_string())
    })
}

/// [`strip_headers`] of a message held: itself when nothing goes.
pub fn strip_headers_owned(raw: Vec<u8>) -> Vec<u8> {
    match strip_headers(&raw) {
        Cow::Owned(v) => v,
        Cow::Borrowed(_) => raw,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_only_its_own_fields() {
        let m = b"X-Spam-Status: No,\r\n\tscore=-5\r\nSubject: x\r\nx-spam-flag: NO\r\nX-Spamless: keep\r\n\r\nX-Spam-Status: body\r\n";
        assert_eq!(
            &*strip_headers(m),
            b"Subject: x\r\nX-Spamless: keep\r\n\r\nX-Spam-Status: body\r\n"
        );
        assert!(matches!(
            strip_headers(b"X-Spam: a\n\nb"),
            Cow::Borrowed(b"X-Spam: a\n\nb")
        ));
        assert_eq!(&*strip_headers(b""), b"");
    }

    #[test]
    fn header_lines() {
        let r = Report {
            score: 6.5,
            hits: vec![("BAYES_99".into(), 5.0), ("MISSING_DATE".into(), 1.5)],
            listed: vec![],
            senders: vec![],
            own_score: 6.5,
            bayes: Some(0.999),
            bayes_scope: Some(0),
            verdict: Verdict::Junk,
            required: 5.0,
        };
        assert_eq!(
            headers(&r),
            "X-Spam-Status: Yes, score=6.50 required=5.00\r\nX-Spam-Score: 6.50\r\nX-Spam-Result: BAYES_99 (5.00),\r\n\tMISSING_DATE (1.50)\r\n"
        );
    }
}
