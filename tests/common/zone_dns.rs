//! An authoritative DNS server for tests that need records dnsmasq cannot
//! serve: TXT strings with arbitrary bytes (NUL, CR, 8-bit), several
//! strings per record, names with spaces or `/`, CNAME loops, and queries
//! that are never answered (to provoke resolver timeouts).
//!
//! Wire format through hickory-proto; a UDP socket on a loopback port. The
//! zone is a plain map from lower-cased name to an ordered list of entries.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use hickory_proto::op::{Edns, Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, PTR, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};

#[derive(Debug, Clone)]
pub enum Entry {
    /// Queries for a type not listed before this entry go unanswered.
    Timeout,
    A(IpAddr),
    Mx(u16, String),
    Ptr(String),
    Cname(String),
    /// One TXT record made of these strings.
    Txt(Vec<Vec<u8>>),
}

pub type Zone = HashMap<String, Vec<Entry>>;

pub struct ZoneDns {
    pub addr: SocketAddr,
    zone: Arc<Mutex<Zone>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ZoneDns {
    fn drop(&mut self) {
        self.task.abort();
    }
}

enum Answer {
    Timeout,
    NxDomain,
    Records(Vec<Record>),
}

/// A name from labels taken verbatim (DNS labels are bytes).
fn name_of(s: &str) -> Name {
    let s = s.strip_suffix('.').unwrap_or(s);
    let mut n = if s.is_empty() {
        Name::root()
    } else {
        Name::from_labels(s.split('.').map(|l| l.as_bytes())).expect("name")
    };
    n.set_fqdn(true);
    n
}

/// The lookup key of a query name: raw labels, lower-cased, dot-joined.
fn key_of(name: &Name) -> String {
    name.iter()
        .map(|l| String::from_utf8_lossy(l).to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(".")
}

fn record_type(e: &Entry) -> Option<RecordType> {
    Some(match e {
        Entry::Timeout => return None,
        Entry::A(IpAddr::V4(_)) => RecordType::A,
        Entry::A(IpAddr::V6(_)) => RecordType::AAAA,
        Entry::Mx(..) => RecordType::MX,
        Entry::Ptr(_) => RecordType::PTR,
        Entry::Cname(_) => RecordType::CNAME,
        Entry::Txt(_) => RecordType::TXT,
    })
}

fn rdata(e: &Entry) -> RData {
    match e {
        Entry::A(IpAddr::V4(ip)) => RData::A(A(*ip)),
        Entry::A(IpAddr::V6(ip)) => RData::AAAA(AAAA(*ip)),
        Entry::Mx(pref, host) => RData::MX(MX::new(*pref, name_of(host))),
        Entry::Ptr(host) => RData::PTR(PTR(name_of(host))),
        Entry::Cname(host) => RData::CNAME(CNAME(name_of(host))),
        Entry::Txt(strings) => RData::TXT(TXT::from_bytes(
            strings.iter().map(|s| s.as_slice()).collect(),
        )),
        Entry::Timeout => unreachable!(),
    }
}

fn answer(zone: &Zone, qname: &str, qtype: RecordType) -> Answer {
    let mut out = Vec::new();
    let mut name = qname.to_string();
    // Follow CNAMEs a few steps; a loop ends up as a chain the resolver
    // has to reject.
    for _ in 0..8 {
        let Some(entries) = zone.get(&name) else {
            return if out.is_empty() {
                Answer::NxDomain
            } else {
                Answer::Records(out)
            };
        };
        let mut seen = false;
        let mut next = None;
        for e in entries {
            match record_type(e) {
                None if !seen => return Answer::Timeout,
                None => {}
                Some(t) if t == qtype => {
                    seen = true;
                    out.push(Record::from_rdata(name_of(&name), 60, rdata(e)));
                }
                Some(RecordType::CNAME) => {
                    if let Entry::Cname(target) = e {
                        out.push(Record::from_rdata(name_of(&name), 60, rdata(e)));
                        next = Some(
                            target
                                .strip_suffix('.')
                                .unwrap_or(target)
                                .to_ascii_lowercase(),
                        );
                    }
                }
                Some(_) => {}
            }
        }
        match next {
            Some(n) if !seen => name = n,
            _ => break,
        }
    }
    Answer::Records(out)
}

impl ZoneDns {
    pub async fn start(zone: Zone) -> ZoneDns {
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = sock.local_addr().unwrap();
        let zone = Arc::new(Mutex::new(zone));
        let z = zone.clone();
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, peer)) = sock.recv_from(&mut buf).await else {
                    continue;
                };
                let Ok(req) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let Some(q) = req.queries.first().cloned() else {
                    continue;
                };
                let result = answer(&z.lock().unwrap(), &key_of(q.name()), q.query_type());
                let mut resp = Message::response(req.metadata.id, req.metadata.op_code);
                resp.metadata.message_type = MessageType::Response;
                resp.metadata.authoritative = true;
                resp.metadata.recursion_desired = req.metadata.recursion_desired;
                resp.metadata.recursion_available = true;
                resp.add_query(q);
                if req.edns.is_some() {
                    let mut edns = Edns::new();
                    edns.set_max_payload(4096);
                    resp.set_edns(edns);
                }
                match result {
                    Answer::Timeout => continue,
                    Answer::NxDomain => resp.metadata.response_code = ResponseCode::NXDomain,
                    Answer::Records(rs) => {
                        resp.add_answers(rs);
                    }
                }
                match resp.to_vec() {
                    Ok(bytes) => {
                        let _ = sock.send_to(&bytes, peer).await;
                    }
                    Err(e) => eprintln!("zone_dns: cannot encode the answer: {e}"),
                }
            }
        });
        ZoneDns { addr, zone, task }
    }

    /// Replaces the served zone.
    pub fn set_zone(&self, zone: Zone) {
        *self.zone.lock().unwrap() = zone;
    }
}
