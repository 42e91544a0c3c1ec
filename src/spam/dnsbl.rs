//! DNS blocklists (RFC 5782): the client's address under `check = "ip"`
//! zones, the envelope sender's and From's domains and the hosts of links
//! under `check = "domain"` zones. A listing is an A record in
//! 127.0.0.0/8; 127.255.255.0/24 are the zones' error codes (a refused or
//! rate-limited query) and never count. Lookups run at once, answers are
//! cached by the resolver for their TTL, and all of a message's lookups
//! share `spam.dnsbl-timeout`: a blocklist that is slow, down or failing
//! counts as not listed, so it never holds mail up.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use mail_auth::hickory_resolver::TokioResolver;

use crate::config::{DnsblCheck, DnsblZone, HashEncoding, HashKind};

/// The most domains of one message asked about.
const MAX_DOMAINS: usize = 20;

/// The rule id a zone's listings show as.
pub fn rule_id(z: &DnsblZone) -> String {
    if !z.id.is_empty() {
        return z.id.clone();
    }
    let prefix = match z.check {
        DnsblCheck::Ip => "RBL_",
        DnsblCheck::Domain => "DBL_",
        DnsblCheck::Email | DnsblCheck::Attachment => "HBL_",
    };
    format!("{prefix}{}", rule_name(z.zone.trim_end_matches('.')))
}

/// `name` as part of a rule id: letters and digits in capitals, the
/// rest `_`.
pub fn rule_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// The name to ask for `ip` under `zone` (RFC 5782 §2.1, §2.4).
pub fn ip_query(ip: IpAddr, zone: &str) -> String {
    let zone = zone.trim_end_matches('.');
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.{zone}.", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut s = String::with_capacity(64 + zone.len());
            for b in v6.octets().iter().rev() {
                s.push_str(&format!("{:x}.{:x}.", b & 0xf, b >> 4));
            }
            format!("{s}{zone}.")
        }
    }
}

/// The score of a zone's answers, if they mean a listing.
pub fn answer_score(z: &DnsblZone, answers: &[Ipv4Addr]) -> Option<f64> {
    answers
        .iter()
        .filter(|a| a.octets()[0] == 127 && !(a.octets()[1] == 255 && a.octets()[2] == 255))
        .filter_map(|a| {
            if z.answers.is_empty() {
                Some(z.score)
            } else {
                z.answers.get(&a.to_string()).copied()
            }
        })
        .max_by(|a, b| a.total_cmp(b))
}

/// A name worth asking a domain list about: not an address literal, two
/// labels or more, lower case without the final dot.
fn domain_name(d: &str) -> Option<String> {
    let d = d.trim().trim_end_matches('.').to_ascii_lowercase();
    let ok = d.contains('.')
        && d.parse::<IpAddr>().is_err()
        && !d.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && d.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    ok.then_some(d)
}

/// The domains of a message to ask domain lists about: each given host
/// and its last two labels, each once, at most [`MAX_DOMAINS`].
pub fn domains<'a>(hosts: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for h in hosts.filter_map(domain_name) {
        let labels: Vec<&str> = h.rsplitn(3, '.').collect();
        let base = format!("{}.{}", labels[1], labels[0]);
        for d in [h.clone(), base] {
            if out.len() < MAX_DOMAINS && !out.contains(&d) {
                out.push(d);
            }
        }
    }
    out
}

async fn lookup(resolver: &TokioResolver, name: String) -> Result<Vec<Ipv4Addr>, ()> {
    match resolver.ipv4_lookup(name.as_str()).await {
        Ok(l) => Ok(l
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                mail_auth::hickory_resolver::proto::rr::RData::A(a) => Some(a.0),
                _ => None,
            })
            .collect()),
        Err(e) if e.is_no_records_found() => Ok(Vec::new()),
        Err(_) => Err(()),
    }
}

/// The label a hash zone is asked for `data` under.
pub fn hash_label(z: &DnsblZone, data: &[u8]) -> String {
    use sha1::Digest as _;
    let digest: Vec<u8> = match z.hash {
        HashKind::Sha1 => sha1::Sha1::digest(data).to_vec(),
        HashKind::Sha256 => sha2::Sha256::digest(data).to_vec(),
    };
    match z.encoding {
        HashEncoding::Hex => hex::encode(digest),
        HashEncoding::Base32 => data_encoding::BASE32_NOPAD
            .encode(&digest)
            .to_ascii_lowercase(),
    }
}

/// Email addresses of a message worth asking a hash list about: the
/// given ones and those in `text`, lower case, each once, at most
/// [`MAX_DOMAINS`].
pub fn emails<'a>(given: impl Iterator<Item = &'a str>, text: &'a str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let words = text.split(|c: char| {
        c.is_whitespace() || matches!(c, '<' | '>' | '(' | ')' | '"' | ',' | ';' | ':' | '[' | ']')
    });
    for a in given.chain(words) {
        let a = a
            .trim_matches(|c: char| !c.is_alphanumeric())
            .to_lowercase();
        let ok = a.split_once('@').is_some_and(|(l, d)| {
            !l.is_empty() && !d.contains('@') && domain_name(d).as_deref() == Some(d)
        });
        if ok && out.len() < MAX_DOMAINS && !out.contains(&a) {
            out.push(a);
        }
    }
    out
}

/// What a message offers the blocklists.
#[derive(Default)]
pub struct Asked<'a> {
    pub client: Option<IpAddr>,
    pub domains: &'a [String],
    pub emails: &'a [String],
    /// (name, decoded content)
    pub attachments: &'a [(String, Vec<u8>)],
}

/// The listings of a message: (rule id, score, what was listed).
pub async fn check(
    resolver: &TokioResolver,
    zones: &[DnsblZone],
    asked: &Asked<'_>,
    timeout: Duration,
) -> Vec<(String, f64, String)> {
    let (client, domains) = (asked.client, asked.domains);
    let mut asks = Vec::new();
    for z in zones {
        match z.check {
            DnsblCheck::Ip => {
                if let Some(ip) = client {
                    asks.push((z, ip.to_string(), ip_query(ip, &z.zone)));
                }
            }
            DnsblCheck::Domain => {
                for d in domains {
                    let q = format!("{d}.{}.", z.zone.trim_end_matches('.'));
                    asks.push((z, d.clone(), q));
                }
            }
            DnsblCheck::Email => {
                for e in asked.emails {
                    let q = format!(
                        "{}.{}.",
                        hash_label(z, e.as_bytes()),
                        z.zone.trim_end_matches('.')
                    );
                    asks.push((z, e.clone(), q));
                }
            }
            DnsblCheck::Attachment => {
                for (name, data) in asked.attachments {
                    let q = format!("{}.{}.", hash_label(z, data), z.zone.trim_end_matches('.'));
                    asks.push((z, format!("attachment {name}"), q));
                }
            }
        }
    }
    let mut runs = tokio::task::JoinSet::new();
    for (z, what, q) in asks {
        let (z, resolver) = (z.clone(), resolver.clone());
        runs.spawn(async move {
            let r = lookup(&resolver, q).await;
            let result = match &r {
                Ok(a) if answer_score(&z, a).is_some() => "listed",
                Ok(_) => "clean",
                Err(()) => "error",
            };
            metrics::counter!("petrel_spam_dnsbl_lookups_total", "zone" => z.zone.clone(), "result" => result)
                .increment(1);
            r.ok()
                .and_then(|a| answer_score(&z, &a))
                .map(|s| (rule_id(&z), s, what))
        });
    }
    let mut found = Vec::new();
    let all = async {
        while let Some(r) = runs.join_next().await {
            found.extend(r.ok().flatten());
        }
    };
    if tokio::time::timeout(timeout, all).await.is_err() {
        tracing::warn!(
            "spam filter: DNS blocklists did not all answer within {} s; the rest count as not listed",
            timeout.as_secs()
        );
        runs.abort_all();
    }
    // One hit per rule: the highest.
    let mut hits: Vec<(String, f64, String)> = Vec::new();
    for (id, score, what) in found {
        match hits.iter_mut().find(|h| h.0 == id) {
            Some(h) if h.1 >= score => {}
            Some(h) => *h = (id, score, what),
            None => hits.push((id, score, what)),
        }
    }
    hits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(check: DnsblCheck) -> DnsblZone {
        DnsblZone {
            zone: "bl.example.".into(),
            check,
            score: 3.0,
            answers: Default::default(),
            id: String::new(),
            hash: HashKind::Sha1,
            encoding: HashEncoding::Hex,
        }
    }

    #[test]
    fn hash_labels_and_emails() {
        let mut z = zone(DnsblCheck::Email);
        // FIPS 180's test vectors for "abc".
        assert_eq!(
            hash_label(&z, b"abc"),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        z.hash = HashKind::Sha256;
        z.encoding = HashEncoding::Base32;
        let l = hash_label(&z, b"abc");
        assert_eq!(l.len(), 52);
        assert_eq!(l, "xj4bnp4pahh6uqkbidpf3lrceoyagyndsylxvhfucd7wd4qacwwq");
        assert_eq!(rule_id(&z), "HBL_BL_EXAMPLE");
        let found = emails(
            ["Ann@Example.org", "not-an-address"].into_iter(),
            "write to <Sales@shop.example.com>, or bob@localhost; x@1.2.3.4 mailto:eve@evil.test.",
        );
        assert_eq!(
            found,
            ["ann@example.org", "sales@shop.example.com", "eve@evil.test"]
        );
    }

    #[test]
    fn query_names() {
        // RFC 5782 §2.1 and §2.4's examples.
        assert_eq!(
            ip_query("192.0.2.99".parse().unwrap(), "bad.example.com"),
            "99.2.0.192.bad.example.com."
        );
        assert_eq!(
            ip_query(
                "2001:db8:1:2:3:4:567:89ab".parse().unwrap(),
                "ugly.example.com"
            ),
            "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.ugly.example.com."
        );
        // An IPv4 client seen through a dual-stack socket.
        assert_eq!(
            ip_query("::ffff:192.0.2.1".parse().unwrap(), "z"),
            "1.2.0.192.z."
        );
        assert_eq!(rule_id(&zone(DnsblCheck::Ip)), "RBL_BL_EXAMPLE");
        assert_eq!(rule_id(&zone(DnsblCheck::Domain)), "DBL_BL_EXAMPLE");
    }

    #[test]
    fn answers() {
        let mut z = zone(DnsblCheck::Ip);
        let a = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        assert_eq!(answer_score(&z, &[a("127.0.0.2")]), Some(3.0));
        assert_eq!(answer_score(&z, &[]), None);
        assert_eq!(
            answer_score(&z, &[a("127.255.255.254")]),
            None,
            "error code"
        );
        assert_eq!(answer_score(&z, &[a("10.0.0.1")]), None, "not a listing");
        z.answers.insert("127.0.0.4".into(), 4.5);
        z.answers.insert("127.0.0.2".into(), 1.0);
        assert_eq!(answer_score(&z, &[a("127.0.0.3")]), None);
        assert_eq!(
            answer_score(&z, &[a("127.0.0.2"), a("127.0.0.4")]),
            Some(4.5)
        );
    }

    #[test]
    fn domain_list() {
        let d = domains(
            [
                "Shop.Pharma.Example.",
                "pharma.example",
                "192.0.2.1",
                "x",
                "a_b.example",
                "bit.ly",
            ]
            .into_iter(),
        );
        assert_eq!(d, ["shop.pharma.example", "pharma.example", "bit.ly"]);
        let many: Vec<String> = (0..50).map(|i| format!("h{i}.example")).collect();
        assert_eq!(domains(many.iter().map(String::as_str)).len(), MAX_DOMAINS);
    }
}
