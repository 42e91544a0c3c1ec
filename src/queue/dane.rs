//! DANE for SMTP (RFC 7672): TLSA records of MX hosts, looked up through
//! a DNSSEC-validating resolver, authenticate the server's certificate.
//!
//! Only when the MX records themselves validate as secure are the MX
//! hosts' `_25._tcp` TLSA records consulted (§2.2.1). Usable records are
//! DANE-TA(2) and DANE-EE(3) (§3.1.3): with any, TLS is required and the
//! certificate must match one; a TLSA lookup that fails (bogus, timeout)
//! makes the host unusable (§2.1.1); no records means ordinary
//! opportunistic TLS.

use std::sync::Arc;

use mail_auth::hickory_resolver::net::{DnsError, NetError};
use mail_auth::hickory_resolver::proto::dnssec::Proof;
use mail_auth::hickory_resolver::proto::rr::{Name, RData, RecordType};
use mail_auth::hickory_resolver::TokioResolver;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use sha2::Digest;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tlsa {
    pub usage: u8,
    pub selector: u8,
    pub matching: u8,
    pub data: Vec<u8>,
}

/// What DANE says about one MX host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dane {
    /// No DANE: the MX set is not secure, or the host has no usable TLSA
    /// records.
    None,
    /// TLS is required and the certificate must match one of these.
    Tlsa(Vec<Tlsa>),
    /// The TLSA lookup failed: do not deliver to this host (§2.1.1).
    Failed(String),
}

fn secure(answers: &[mail_auth::hickory_resolver::proto::rr::Record]) -> bool {
    !answers.is_empty() && answers.iter().all(|r| r.proof == Proof::Secure)
}

/// Are the MX records of `domain` validated by DNSSEC?
pub async fn mx_secure(dnssec: &TokioResolver, domain: &str) -> bool {
    let Ok(name) = Name::from_ascii(format!("{}.", domain.trim_end_matches('.'))) else {
        return false;
    };
    match dnssec.lookup(name, RecordType::MX).await {
        Ok(found) => secure(found.answers()),
        Err(_) => false,
    }
}

/// The usable TLSA records of `host` port 25 (§3.1.3).
pub async fn lookup(dnssec: &TokioResolver, host: &str) -> Dane {
    let Ok(name) = Name::from_ascii(format!("_25._tcp.{}.", host.trim_end_matches('.'))) else {
        return Dane::None;
    };
    match dnssec.lookup(name, RecordType::TLSA).await {
        Ok(found) => {
            let answers: Vec<_> = found
                .answers()
                .iter()
                .filter(|r| r.record_type() == RecordType::TLSA)
                .cloned()
                .collect();
            if !secure(&answers) {
                // Insecure TLSA records are ignored (§2.2).
                return Dane::None;
            }
            let usable: Vec<Tlsa> = answers
                .iter()
                .filter_map(|r| match &r.data {
                    RData::TLSA(t) => Some(Tlsa {
                        usage: u8::from(t.cert_usage),
                        selector: u8::from(t.selector),
                        matching: u8::from(t.matching),
                        data: t.cert_data.clone(),
                    }),
                    _ => None,
                })
                .filter(|t| matches!(t.usage, 2 | 3) && t.selector <= 1 && t.matching <= 2)
                .collect();
            if usable.is_empty() {
                Dane::None
            } else {
                Dane::Tlsa(usable)
            }
        }
        Err(NetError::Dns(DnsError::NoRecordsFound(_))) => Dane::None,
        Err(e) => Dane::Failed(format!("TLSA lookup for {host} failed: {e}")),
    }
}

/// Does `cert` match the record's selector and matching type?
fn matches(t: &Tlsa, cert: &CertificateDer<'_>) -> bool {
    let selected: Vec<u8> = match t.selector {
        0 => cert.as_ref().to_vec(),
        _ => match webpki::EndEntityCert::try_from(cert) {
            Ok(c) => c.subject_public_key_info().as_ref().to_vec(),
            Err(_) => return false,
        },
    };
    let digest = match t.matching {
        0 => selected,
        1 => sha2::Sha256::digest(&selected).to_vec(),
        _ => sha2::Sha512::digest(&selected).to_vec(),
    };
    digest == t.data
}

/// A rustls configuration that authenticates the server by its TLSA
/// records.
pub fn client_config(records: Vec<Tlsa>) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    crate::smtp::client::config_checking_with(Box::new(
        move |end_entity, chain, name, ocsp, now| {
            check(&records, &provider, end_entity, chain, name, ocsp, now)
        },
    ))
}

fn check(
    records: &[Tlsa],
    provider: &Arc<rustls::crypto::CryptoProvider>,
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    server_name: &ServerName<'_>,
    ocsp: &[u8],
    now: UnixTime,
) -> Result<(), rustls::Error> {
    // DANE-EE: the server's own certificate or key; neither names nor
    // dates are checked (§3.1.1).
    if records
        .iter()
        .any(|t| t.usage == 3 && matches(t, end_entity))
    {
        return Ok(());
    }
    // DANE-TA: a certificate the server sends is the trust anchor; the
    // chain from it must be valid for the MX host name (§3.1.2).
    for t in records.iter().filter(|t| t.usage == 2) {
        for ta in intermediates.iter().filter(|c| matches(t, c)) {
            let mut roots = rustls::RootCertStore::empty();
            if roots.add(ta.clone()).is_err() {
                continue;
            }
            let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots),
                provider.clone(),
            )
            .build()
            .map_err(|e| rustls::Error::General(e.to_string()))?;
            if verifier
                .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
                .is_ok()
            {
                return Ok(());
            }
        }
    }
    Err(rustls::Error::General(
        "the certificate matches none of the server's TLSA records (DANE)".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert() -> CertificateDer<'static> {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["mx.example.test".into()]).unwrap();
        params.self_signed(&key).unwrap().der().clone()
    }

    #[test]
    fn selectors_and_matching_types() {
        let c = cert();
        let spki = webpki::EndEntityCert::try_from(&c)
            .unwrap()
            .subject_public_key_info()
            .as_ref()
            .to_vec();
        let rec = |selector, matching, data: Vec<u8>| Tlsa {
            usage: 3,
            selector,
            matching,
            data,
        };
        assert!(matches(&rec(0, 0, c.as_ref().to_vec()), &c));
        assert!(matches(&rec(1, 0, spki.clone()), &c));
        assert!(matches(
            &rec(1, 1, sha2::Sha256::digest(&spki).to_vec()),
            &c
        ));
        assert!(matches(
            &rec(0, 2, sha2::Sha512::digest(c.as_ref()).to_vec()),
            &c
        ));
        assert!(!matches(&rec(1, 1, vec![0; 32]), &c));
        // Another certificate does not match the first one's records.
        assert!(!matches(&rec(1, 0, spki), &cert()));
    }
}
