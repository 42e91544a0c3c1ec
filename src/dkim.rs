//! DKIM keys per domain, signing of outgoing mail (RFC 6376 with
//! RSA-SHA256, RFC 8463 with Ed25519) and ARC sealing of forwarded mail
//! (RFC 8617), through mail-auth.
//!
//! Keys live in the store (`Xk<domain>`), created by `petrel dkim create`,
//! which also prints the DNS records to publish.

use mail_auth::arc::ArcSealer;
use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::DkimSigner;
use mail_auth::{ArcOutput, AuthenticatedMessage, AuthenticationResults};
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey};
use serde::{Deserialize, Serialize};

use crate::directory::sasl::{b64_decode, b64_encode};
use crate::store::{Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    Rsa,
    Ed25519,
}

impl std::str::FromStr for Algorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "rsa" | "rsa-sha256" => Ok(Algorithm::Rsa),
            "ed25519" | "ed25519-sha256" => Ok(Algorithm::Ed25519),
            _ => Err(format!("unknown DKIM algorithm `{s}` (rsa or ed25519)")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DkimKey {
    pub domain: String,
    pub selector: String,
    pub algorithm: Algorithm,
    /// PKCS#8 DER, base64.
    pub private_key: String,
    /// The `p=` value of the DNS record.
    pub public_key: String,
    pub created: i64,
}

/// The DNS records an operator publishes for a domain.
pub use crate::dns::advice::DnsRecord;

fn k_key(domain: &str) -> Vec<u8> {
    let mut k = b"Xk".to_vec();
    k.extend_from_slice(domain.as_bytes());
    k
}

impl DkimKey {
    /// Generates a new key pair (RSA-2048 or Ed25519).
    pub fn generate(domain: &str, selector: &str, algorithm: Algorithm) -> anyhow::Result<DkimKey> {
        let (private, public) = match algorithm {
            Algorithm::Rsa => {
                let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048)?;
                let der = key.to_pkcs8_der()?.as_bytes().to_vec();
                let spki = key.to_public_key().to_public_key_der()?.as_bytes().to_vec();
                (der, spki)
            }
            Algorithm::Ed25519 => {
                let der = Ed25519Key::generate_pkcs8()
                    .map_err(|e| anyhow::anyhow!("cannot generate an Ed25519 key: {e}"))?;
                let public = Ed25519Key::from_pkcs8_der(&der)
                    .map_err(|e| anyhow::anyhow!("{e}"))?
                    .public_key();
                (der, public)
            }
        };
        Ok(DkimKey {
            domain: domain.to_string(),
            selector: selector.to_string(),
            algorithm,
            private_key: b64_encode(&private),
            public_key: b64_encode(&public),
            created: crate::core::unix_now(),
        })
    }

    /// The domain as it goes into `d=`: internationalised names as
    /// A-labels (RFC 6376 §3.5).
    pub fn signing_domain(&self) -> String {
        idna::domain_to_ascii(&self.domain).unwrap_or_else(|_| self.domain.clone())
    }

    /// The TXT record value of the key (RFC 6376 §3.6.1).
    pub fn txt(&self) -> String {
        let k = match self.algorithm {
            Algorithm::Rsa => "rsa",
            Algorithm::Ed25519 => "ed25519",
        };
        // t=s (§3.6.1, recommended): Petrel's signatures never use an i=
        // in a subdomain.
        format!("v=DKIM1; k={k}; p={}; t=s", self.public_key)
    }

    /// Signs `raw`; returns the DKIM-Signature header field (with CRLF) to
    /// put in front of the message.
    fn load(&self) -> anyhow::Result<Key> {
        let der =
            b64_decode(&self.private_key).ok_or_else(|| anyhow::anyhow!("corrupt DKIM key"))?;
        Ok(match self.algorithm {
            Algorithm::Rsa => Key::Rsa(
                RsaKey::<Sha256>::from_key_der(rustls_pki_types::PrivateKeyDer::Pkcs8(der.into()))
                    .map_err(|e| anyhow::anyhow!("bad RSA key: {e}"))?,
            ),
            Algorithm::Ed25519 => Key::Ed25519(
                Ed25519Key::from_pkcs8_der(&der)
                    .map_err(|e| anyhow::anyhow!("bad Ed25519 key: {e}"))?,
            ),
        })
    }

    /// A DKIM-Signature header (with CRLF) for `raw`, covering `headers`,
    /// valid for `expire_after` seconds (0: no `x=`).
    pub fn sign(
        &self,
        raw: &[u8],
        headers: &[String],
        expire_after: u64,
    ) -> anyhow::Result<String> {
        let domain = self.signing_domain();
        let sig = match self.load()? {
            Key::Rsa(key) => DkimSigner::from_key(key)
                .domain(domain)
                .selector(self.selector.clone())
                .headers(headers.iter().cloned())
                .expiration(expire_after)
                .sign(raw),
            Key::Ed25519(key) => DkimSigner::from_key(key)
                .domain(domain)
                .selector(self.selector.clone())
                .headers(headers.iter().cloned())
                .expiration(expire_after)
                .sign(raw),
        }
        .map_err(|e| anyhow::anyhow!("DKIM signing failed: {e}"))?;
        Ok(sig.to_header())
    }

    /// The next ARC set (RFC 8617 §4: ARC-Seal, ARC-Message-Signature and
    /// ARC-Authentication-Results, with CRLFs) for a message we pass on,
    /// recording `results` and the validation of the chain it came with.
    pub fn arc_seal(
        &self,
        message: &AuthenticatedMessage<'_>,
        results: &AuthenticationResults,
        chain: &ArcOutput<'_>,
        headers: &[String],
    ) -> anyhow::Result<String> {
        let set = match self.load()? {
            Key::Rsa(key) => ArcSealer::from_key(key)
                .domain(self.domain.clone())
                .selector(self.selector.clone())
                .headers(headers.iter().cloned())
                .seal(message, results, chain)
                .map(|s| s.to_header()),
            Key::Ed25519(key) => ArcSealer::from_key(key)
                .domain(self.domain.clone())
                .selector(self.selector.clone())
                .headers(headers.iter().cloned())
                .seal(message, results, chain)
                .map(|s| s.to_header()),
        }
        .map_err(|e| anyhow::anyhow!("ARC sealing failed: {e}"))?;
        Ok(set)
    }
}

enum Key {
    Rsa(RsaKey<Sha256>),
    Ed25519(Ed25519Key),
}

pub async fn get(store: &Store, domain: &str) -> Result<Option<DkimKey>, StoreError> {
    match store.get(k_key(&domain.to_ascii_lowercase())).await? {
        Some(v) => serde_json::from_slice(&v)
            .map(Some)
            .map_err(|e| StoreError::Backend(format!("corrupt DKIM key: {e}"))),
        None => Ok(None),
    }
}

/// `msg` signed with the key of `mail_from`'s domain, when signing is on
/// and the domain has a key; as it is otherwise (a failure is logged,
/// the message still goes). Submission over SMTP and JMAP both sign here.
pub async fn sign_outgoing(
    store: &Store,
    cfg: &crate::config::DkimConfig,
    mail_from: &str,
    msg: Vec<u8>,
) -> Vec<u8> {
    let Some((_, domain)) = mail_from.rsplit_once('@') else {
        return msg;
    };
    if !cfg.sign {
        return msg;
    }
    match get(store, &domain.to_ascii_lowercase()).await {
        Ok(Some(key)) => match key.sign(&msg, &cfg.headers, cfg.expire_after) {
            Ok(h) => {
                let mut signed = h.into_bytes();
                signed.extend_from_slice(&msg);
                signed
            }
            Err(e) => {
                tracing::warn!("DKIM signing for {domain}: {e}");
                msg
            }
        },
        Ok(None) => msg,
        Err(e) => {
            tracing::warn!("DKIM key lookup for {domain}: {e}");
            msg
        }
    }
}

pub async fn put(store: &Store, key: DkimKey) -> Result<(), StoreError> {
    let k = k_key(&key.domain);
    let v = serde_json::to_vec(&key).expect("serialises");
    store
        .transact(move |txn| {
            txn.put(k, v);
            Ok(())
        })
        .await
}

pub async fn delete(store: &Store, domain: &str) -> Result<bool, StoreError> {
    let k = k_key(&domain.to_ascii_lowercase());
    store
        .transact(move |txn| {
            let found = txn.get(&k)?.is_some();
            txn.delete(k);
            Ok(found)
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ed25519_sign_produces_a_signature_header() {
        let key = DkimKey::generate("example.org", "s1", Algorithm::Ed25519).unwrap();
        assert!(key.txt().starts_with("v=DKIM1; k=ed25519; p="));
        let raw = b"From: joe@example.org\r\nSubject: hi\r\n\r\nbody\r\n";
        let h = key
            .sign(raw, &["From".into(), "Subject".into()], 0)
            .unwrap();
        assert!(h.starts_with("DKIM-Signature:"), "{h}");
        assert!(h.contains("d=example.org") && h.contains("s=s1"), "{h}");
        assert!(h.contains("a=ed25519-sha256"), "{h}");
    }

    #[test]
    fn rsa_key_round_trip() {
        let key = DkimKey::generate("example.org", "s2", Algorithm::Rsa).unwrap();
        let raw = b"From: joe@example.org\r\n\r\nbody\r\n";
        let h = key.sign(raw, &["From".into()], 0).unwrap();
        assert!(h.contains("a=rsa-sha256"), "{h}");
        // RFC 6376 §3.3.1, §3.3.3: 2048 bits, public exponent 65537.
        {
            use rsa::pkcs8::DecodePublicKey;
            use rsa::traits::PublicKeyParts;
            let spki = b64_decode(&key.public_key).unwrap();
            let public = rsa::RsaPublicKey::from_public_key_der(&spki).unwrap();
            assert_eq!(public.size() * 8, 2048);
            assert_eq!(public.e(), &rsa::BigUint::from(65537u32));
        }
        let e = crate::core::Endpoints {
            host: "mail.example.org".into(),
            ..Default::default()
        };
        let recs = crate::dns::advice::records("example.org", &e, Some(&key), 1);
        assert_eq!(recs[0].name, "s2._domainkey.example.org.");
        assert_eq!(recs[0].value, key.txt());
    }

    #[test]
    fn internationalised_domains_sign_as_a_labels() {
        let key = DkimKey::generate("bücher.example", "s1", Algorithm::Ed25519).unwrap();
        let raw = "From: a@bücher.example\r\nSubject: x\r\n\r\nbody\r\n".as_bytes();
        let h = key.sign(raw, &["From".into()], 0).unwrap();
        assert!(h.contains("d=xn--bcher-kva.example"), "{h}");
    }
}
