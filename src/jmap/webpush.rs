//! Encrypted pushes (RFC 8620 §7.2 `keys`): the push message is encrypted
//! for the client's P-256 key and authentication secret as Message
//! Encryption for Web Push says (RFC 8291), in the `aes128gcm` content
//! coding (RFC 8188), one record. The primitives (ECDH P-256, HKDF-SHA256,
//! AES-128-GCM, the random source) are ring's, the library rustls already
//! brings; this file only lays out RFC 8291's key schedule and RFC 8188's
//! header.

use base64::Engine;
use ring::{aead, agreement, hkdf, rand::SecureRandom};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The `keys` of a PushSubscription: the client's public key (an
/// uncompressed P-256 point) and its 16-octet authentication secret, both
/// base64url as the client gave them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushKeys {
    pub p256dh: String,
    pub auth: String,
}

/// RFC 8291 §4: the record size; a push fits in one record.
const RECORD_SIZE: usize = 4096;

fn b64(s: &str) -> Option<Vec<u8>> {
    // RFC 8620 §7.2 says URL-safe base64; padding is tolerated.
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .ok()
}

impl PushKeys {
    /// The `keys` object of a creation, checked: an uncompressed P-256
    /// point (65 octets, 0x04 first, on the curve) and a 16-octet secret.
    pub fn parse(v: &Value) -> Result<PushKeys, String> {
        let field = |name: &str| {
            v.get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| format!("keys needs `{name}` (base64url)"))
        };
        let keys = PushKeys {
            p256dh: field("p256dh")?.to_string(),
            auth: field("auth")?.to_string(),
        };
        let point = b64(&keys.p256dh).ok_or("p256dh is not base64url")?;
        if point.len() != 65 || point[0] != 4 {
            return Err("p256dh must be an uncompressed P-256 public key (65 octets)".into());
        }
        if b64(&keys.auth).map(|a| a.len()) != Some(16) {
            return Err("auth must be 16 octets, base64url".into());
        }
        // The point must be on the curve: a trial agreement says so.
        encrypt(&keys, b"").map_err(|_| "p256dh is not a point on P-256".to_string())?;
        Ok(keys)
    }
}

/// An HKDF output length for ring.
struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

fn hkdf(salt: &[u8], ikm: &[u8], info: &[&[u8]], len: usize) -> Result<Vec<u8>, String> {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(ikm);
    let mut out = vec![0; len];
    prk.expand(info, Len(len))
        .and_then(|okm| okm.fill(&mut out))
        .map_err(|_| "HKDF failed".to_string())?;
    Ok(out)
}

/// The body of an encrypted push: RFC 8188's header (salt, record size,
/// the sender's ephemeral public key as key id) and one record holding
/// `plaintext` with the last-record delimiter, sealed.
pub fn encrypt(keys: &PushKeys, plaintext: &[u8]) -> Result<Vec<u8>, String> {
    let ua_public = b64(&keys.p256dh).ok_or("p256dh is not base64url")?;
    let auth = b64(&keys.auth).ok_or("auth is not base64url")?;
    let rng = ring::rand::SystemRandom::new();
    let mine = agreement::EphemeralPrivateKey::generate(&agreement::ECDH_P256, &rng)
        .map_err(|_| "no ephemeral key")?;
    let as_public = mine.compute_public_key().map_err(|_| "no public key")?;
    let peer = agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, &ua_public);
    let ecdh = agreement::agree_ephemeral(mine, &peer, |s| s.to_vec())
        .map_err(|_| "the client's key is not on P-256")?;
    // RFC 8291 §3.3-3.4: IKM from the shared secret and the auth secret,
    // bound to both public keys.
    let ikm = hkdf(
        &auth,
        &ecdh,
        &[b"WebPush: info\0", &ua_public, as_public.as_ref()],
        32,
    )?;
    let mut salt = [0u8; 16];
    rng.fill(&mut salt).map_err(|_| "no random salt")?;
    // RFC 8188 §2.2-2.3.
    let cek = hkdf(&salt, &ikm, &[b"Content-Encoding: aes128gcm\0"], 16)?;
    let nonce = hkdf(&salt, &ikm, &[b"Content-Encoding: nonce\0"], 12)?;
    let key = aead::UnboundKey::new(&aead::AES_128_GCM, &cek).map_err(|_| "bad key")?;
    let nonce = aead::Nonce::try_assume_unique_for_key(&nonce).map_err(|_| "bad nonce")?;
    let mut record = plaintext.to_vec();
    // RFC 8188 §2: the delimiter of the last record, no padding.
    record.push(2);
    aead::LessSafeKey::new(key)
        .seal_in_place_append_tag(nonce, aead::Aad::empty(), &mut record)
        .map_err(|_| "sealing failed")?;
    // RFC 8291 §4: one record, with a record size larger than it.
    let rs = RECORD_SIZE.max(record.len() + 1) as u32;
    let mut out = Vec::with_capacity(86 + record.len());
    out.extend_from_slice(&salt);
    out.extend_from_slice(&rs.to_be_bytes());
    out.push(as_public.as_ref().len() as u8);
    out.extend_from_slice(as_public.as_ref());
    out.extend_from_slice(&record);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn client_keys() -> PushKeys {
        let rng = ring::rand::SystemRandom::new();
        let k = agreement::EphemeralPrivateKey::generate(&agreement::ECDH_P256, &rng).unwrap();
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        PushKeys {
            p256dh: e.encode(k.compute_public_key().unwrap().as_ref()),
            auth: e.encode([7u8; 16]),
        }
    }

    #[test]
    fn header_and_checks() {
        let keys = client_keys();
        let body = encrypt(&keys, b"{\"@type\":\"StateChange\"}").unwrap();
        // salt, rs = 4096, idlen 65, an uncompressed point, then the
        // record: plaintext + delimiter + 16-octet tag.
        assert_eq!(&body[16..20], &4096u32.to_be_bytes());
        assert_eq!(body[20], 65);
        assert_eq!(body[21], 4);
        assert_eq!(body.len(), 16 + 4 + 1 + 65 + 23 + 1 + 16);
        // Fresh salt and key each time.
        assert_ne!(encrypt(&keys, b"x").unwrap()[..16], body[..16]);
        let v = json!({"p256dh": keys.p256dh, "auth": keys.auth});
        assert_eq!(PushKeys::parse(&v).unwrap(), keys);
        let bad = |v: Value| PushKeys::parse(&v).unwrap_err();
        assert!(bad(json!({"p256dh": keys.p256dh})).contains("auth"));
        assert!(bad(json!({"p256dh": "AAAA", "auth": keys.auth})).contains("65 octets"));
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut off = vec![4u8];
        off.extend([1u8; 64]);
        assert!(bad(json!({"p256dh": e.encode(off), "auth": keys.auth})).contains("not a point"));
        assert!(bad(json!({"p256dh": keys.p256dh, "auth": e.encode([1u8; 15])})).contains("16"));
    }
}
