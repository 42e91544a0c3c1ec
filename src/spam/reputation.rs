//! Sender reputation: the mean score of earlier mail from the same
//! client address, network (ASN), sender domain and sender address, each
//! fading with a half-life, added to a message's score.
//!
//! What is kept per sender (key `spam/r<kind><name>`): the decayed sum of
//! its messages' scores, their decayed count, and when they were last
//! brought up to date (three big-endian numbers: f64, f64, i64). A
//! message's own score counts towards them without the reputation part
//! (so that a reputation never feeds itself); mail to a spam trap counts
//! as `spam.reject-score` at least. Domains and addresses only count when
//! SPF passed for them (a forged sender must not blacken the real one).
//!
//! The ASN is asked over DNS in the convention Team Cymru's
//! origin.asn.cymru.com serves: a TXT record at the reversed address
//! under the zone, "ASN | prefix | ..." (`spam.reputation.asn-zone`,
//! `asn-zone6`; empty: no ASN reputation).

use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use mail_auth::hickory_resolver::TokioResolver;

use crate::config::ReputationConfig;
use crate::store::{Store, StoreError};

const PREFIX: &[u8] = b"spam/r";

/// What a sender is known by, and its rule id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sender {
    /// IPv4 address, or an IPv6 /64.
    Ip(String),
    Asn(u32),
    Domain(String),
    Address(String),
}

impl Sender {
    pub fn rule_id(&self) -> &'static str {
        match self {
            Sender::Ip(_) => "REP_IP",
            Sender::Asn(_) => "REP_ASN",
            Sender::Domain(_) => "REP_DOMAIN",
            Sender::Address(_) => "REP_SENDER",
        }
    }

    fn key(&self) -> Vec<u8> {
        let (kind, name) = match self {
            Sender::Ip(a) => (b'i', a.clone()),
            Sender::Asn(n) => (b'a', n.to_string()),
            Sender::Domain(d) => (b'd', d.to_ascii_lowercase()),
            Sender::Address(a) => (b's', a.to_ascii_lowercase()),
        };
        let mut k = PREFIX.to_vec();
        k.push(kind);
        k.extend_from_slice(name.as_bytes());
        k
    }

    /// What the X-Spam-Result field and logs show.
    pub fn name(&self) -> String {
        match self {
            Sender::Ip(a) => a.clone(),
            Sender::Asn(n) => format!("AS{n}"),
            Sender::Domain(d) | Sender::Address(d) => d.clone(),
        }
    }
}

/// A sender's record, brought up to `now`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Record {
    pub sum: f64,
    pub count: f64,
    pub updated: i64,
}

impl Record {
    fn decode(v: &[u8]) -> Option<Record> {
        let f = |i: usize| v.get(i..i + 8).and_then(|b| b.try_into().ok());
        Some(Record {
            sum: f64::from_be_bytes(f(0)?),
            count: f64::from_be_bytes(f(8)?),
            updated: i64::from_be_bytes(f(16)?),
        })
    }

    fn encode(&self) -> Vec<u8> {
        let mut v = self.sum.to_be_bytes().to_vec();
        v.extend_from_slice(&self.count.to_be_bytes());
        v.extend_from_slice(&self.updated.to_be_bytes());
        v
    }

    /// The record as it stands at `now`: sum and count halved every
    /// `half_life` seconds since it was last brought up to date.
    pub fn at(&self, now: i64, half_life: u64) -> Record {
        let age = (now - self.updated).max(0) as f64;
        let k = 0.5f64.powf(age / half_life.max(1) as f64);
        Record {
            sum: self.sum * k,
            count: self.count * k,
            updated: now.max(self.updated),
        }
    }
}

/// The score a record adds: its mean times `weight`, within ±`max`, once
/// it holds `min` messages' worth.
pub fn contribution(r: &Record, cfg: &ReputationConfig) -> Option<f64> {
    // Compared as shown (two decimals): a sender that reached the
    // minimum a second ago has not fallen under it by a millionth.
    let count = (r.count * 100.0).round() / 100.0;
    if count < f64::from(cfg.min_messages) || r.count <= 0.0 {
        return None;
    }
    let s = (r.sum / r.count * cfg.weight).clamp(-cfg.max_score, cfg.max_score);
    let s = (s * 100.0).round() / 100.0 + 0.0;
    (s != 0.0).then_some(s)
}

/// The senders of a message: its client's address (or /64), its ASN,
/// and, when SPF passed for it, the envelope sender's domain and address.
pub fn senders(
    client: Option<IpAddr>,
    asn: Option<u32>,
    mail_from: &str,
    spf_pass: bool,
) -> Vec<Sender> {
    let mut out = Vec::new();
    if let Some(ip) = client {
        out.push(Sender::Ip(match ip.to_canonical() {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        }));
    }
    if let Some(n) = asn {
        out.push(Sender::Asn(n));
    }
    if spf_pass {
        if let Some((_, d)) = mail_from.rsplit_once('@') {
            out.push(Sender::Domain(d.to_string()));
            out.push(Sender::Address(mail_from.to_string()));
        }
    }
    out
}

/// The first ASN of an origin TXT record ("15169 | 8.8.8.0/24 | US | ...").
pub fn parse_asn(txt: &[u8]) -> Option<u32> {
    let text = String::from_utf8_lossy(txt);
    let first = text.split('|').next()?;
    first.split_whitespace().next()?.parse().ok()
}

/// The ASN of `ip` under the configured zones, within `timeout`.
pub async fn asn(
    resolver: &TokioResolver,
    cfg: &ReputationConfig,
    ip: IpAddr,
    timeout: Duration,
) -> Option<u32> {
    let zone = match ip.to_canonical() {
        IpAddr::V4(_) => &cfg.asn_zone,
        IpAddr::V6(_) => &cfg.asn_zone6,
    };
    if zone.is_empty() {
        return None;
    }
    let name = super::dnsbl::ip_query(ip.to_canonical(), zone);
    let lookup = tokio::time::timeout(timeout, resolver.txt_lookup(name))
        .await
        .ok()?
        .ok()?;
    lookup.answers().iter().find_map(|r| match &r.data {
        mail_auth::hickory_resolver::proto::rr::RData::TXT(t) => {
            let bytes: Vec<u8> = t.txt_data.iter().flat_map(|s| s.iter().copied()).collect();
            parse_asn(&bytes)
        }
        _ => None,
    })
}

/// The reputations in the store.
#[derive(Clone)]
pub struct Reputation {
    store: Store,
    cfg: ReputationConfig,
    /// Messages counted and not yet written: (senders, score, when).
    pending: Arc<Mutex<Vec<Pending>>>,
    /// The writer, started on the first message.
    writer: Arc<OnceLock<tokio::sync::Notify>>,
}

type Pending = (Vec<Sender>, f64, i64);

/// How often counted messages are written (one transaction for all).
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// Counted messages that are written at once, whatever the time.
const FLUSH_AT: usize = 512;

impl Reputation {
    pub fn new(store: Store, cfg: ReputationConfig) -> Self {
        Reputation {
            store,
            cfg,
            pending: Default::default(),
            writer: Default::default(),
        }
    }

    /// What each sender adds to a message's score now: (rule id, score,
    /// sender).
    pub async fn check(
        &self,
        senders: &[Sender],
        now: i64,
    ) -> Result<Vec<(String, f64, String)>, StoreError> {
        let mut out = Vec::new();
        for s in senders {
            let Some(r) = self.store.get(s.key()).await? else {
                continue;
            };
            let Some(r) = Record::decode(&r) else {
                continue;
            };
            if let Some(score) = contribution(&r.at(now, self.cfg.half_life), &self.cfg) {
                out.push((s.rule_id().to_string(), score, s.name()));
            }
        }
        Ok(out)
    }

    /// Counts a message scored `score` for each of its senders. The
    /// counts are written within a second, many messages in one
    /// transaction (a reputation is no acknowledged data: a crash loses
    /// that second's counts, never mail).
    pub fn record(&self, senders: Vec<Sender>, score: f64, now: i64) {
        if senders.is_empty() || !score.is_finite() {
            return;
        }
        let n = {
            let mut p = self.pending.lock().expect("reputation");
            p.push((senders, score, now));
            p.len()
        };
        let wake = self.writer.get_or_init(|| {
            let me = self.clone();
            tokio::spawn(async move { me.write_loop().await });
            tokio::sync::Notify::new()
        });
        if n >= FLUSH_AT {
            wake.notify_one();
        }
    }

    async fn write_loop(self) {
        loop {
            if let Some(wake) = self.writer.get() {
                let _ = tokio::time::timeout(FLUSH_EVERY, wake.notified()).await;
            } else {
                tokio::time::sleep(FLUSH_EVERY).await;
            }
            if let Err(e) = self.flush().await {
                tracing::warn!("spam reputation counts not written (dropped): {e}");
            }
        }
    }

    /// Writes every counted message now.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let batch = std::mem::take(&mut *self.pending.lock().expect("reputation"));
        if batch.is_empty() {
            return Ok(());
        }
        let half_life = self.cfg.half_life;
        self.store
            .transact(move |txn| {
                for (senders, score, now) in &batch {
                    for s in senders {
                        let key = s.key();
                        let old = txn.get(&key)?.as_deref().and_then(Record::decode);
                        let mut r = old.unwrap_or(Record {
                            updated: *now,
                            ..Default::default()
                        });
                        r = r.at(*now, half_life);
                        r.sum += score;
                        r.count += 1.0;
                        txn.put(key, r.encode());
                    }
                }
                Ok(())
            })
            .await
    }

    /// Every record, for `petrel spam reputation`: (sender key, record at
    /// `now`), worst mean first.
    pub async fn list(&self, now: i64) -> Result<Vec<(String, Record)>, StoreError> {
        let rows = self.store.scan_prefix(PREFIX.to_vec()).await?;
        let mut out: Vec<(String, Record)> = rows
            .into_iter()
            .filter_map(|(k, v)| {
                let r = Record::decode(&v)?.at(now, self.cfg.half_life);
                let kind = match k.get(PREFIX.len())? {
                    b'i' => "ip",
                    b'a' => "asn",
                    b'd' => "domain",
                    b's' => "sender",
                    _ => return None,
                };
                let name = String::from_utf8_lossy(&k[PREFIX.len() + 1..]);
                Some((format!("{kind} {name}"), r))
            })
            .collect();
        let mean = |r: &Record| r.sum / r.count.max(f64::MIN_POSITIVE);
        out.sort_by(|a, b| mean(&b.1).total_cmp(&mean(&a.1)));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ReputationConfig {
        ReputationConfig::default()
    }

    #[test]
    fn records_fade_by_half_lives() {
        let r = Record {
            sum: 40.0,
            count: 4.0,
            updated: 1000,
        };
        let later = r.at(1000 + 86_400, 86_400);
        assert!((later.sum - 20.0).abs() < 1e-9 && (later.count - 2.0).abs() < 1e-9);
        assert_eq!(later.updated, 1000 + 86_400);
        // The clock going back changes nothing.
        assert_eq!(r.at(10, 86_400).sum, 40.0);
        let bytes = r.encode();
        assert_eq!(Record::decode(&bytes), Some(r));
        assert_eq!(Record::decode(&bytes[..20]), None);
    }

    #[test]
    fn contribution_needs_enough_mail_and_is_capped() {
        let c = cfg();
        let r = |sum: f64, count: f64| Record {
            sum,
            count,
            updated: 0,
        };
        assert_eq!(contribution(&r(50.0, 1.0), &c), None);
        // Faded by a second, five messages are still five.
        let faded = r(50.0, 5.0).at(1, c.half_life);
        assert_eq!(contribution(&faded, &c), Some(c.max_score));
        assert_eq!(contribution(&r(50.0, 5.0), &c), Some(c.max_score));
        assert_eq!(contribution(&r(-50.0, 5.0), &c), Some(-c.max_score));
        assert_eq!(contribution(&r(2.0, 5.0), &c), Some(0.4 * c.weight));
        assert_eq!(contribution(&r(0.0, 5.0), &c), None);
    }

    #[test]
    fn senders_and_asn_records() {
        let ip: IpAddr = "2001:db8:1:2:3::4".parse().unwrap();
        let s = senders(Some(ip), Some(64500), "a@Example.org", false);
        assert_eq!(
            s,
            [Sender::Ip("2001:db8:1:2::/64".into()), Sender::Asn(64500)]
        );
        let s = senders(None, None, "a@example.org", true);
        assert_eq!(s[0], Sender::Domain("example.org".into()));
        assert_eq!(s[1].key(), b"spam/rsa@example.org");
        assert_eq!(
            parse_asn(b"15169 | 8.8.8.0/24 | US | arin | 1992-12-01"),
            Some(15169)
        );
        assert_eq!(parse_asn(b"23456 64500 | 192.0.2.0/24"), Some(23456));
        assert_eq!(parse_asn(b"NA | x"), None);
    }

    proptest::proptest! {
        #[test]
        fn any_txt_record_reads_as_an_asn_or_none(txt in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80)) {
            if let Some(n) = parse_asn(&txt) {
                let text = String::from_utf8_lossy(&txt);
                proptest::prop_assert!(text.contains(&n.to_string()));
            }
        }
    }
}
