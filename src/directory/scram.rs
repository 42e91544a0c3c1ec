//! SCRAM-SHA-256 (RFC 5802, RFC 7677), server side, sans I/O.
//!
//! The directory keeps, next to the argon2id hash, the SCRAM secret derived
//! from the same password: salt, iteration count, StoredKey and ServerKey
//! (RFC 5802 §3). The password itself is never stored.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::sasl::{b64_decode, b64_encode};

type HmacSha256 = Hmac<Sha256>;

/// RFC 7677 §4: at least 4096 iterations.
pub const ITERATIONS: u32 = 4096;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramSecret {
    pub iterations: u32,
    pub salt: Vec<u8>,
    pub stored_key: [u8; 32],
    pub server_key: [u8; 32],
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    m.update(data);
    m.finalize().into_bytes().into()
}

impl ScramSecret {
    /// Derives the secret of a password with a fresh random salt.
    pub fn derive(password: &str) -> ScramSecret {
        let salt: [u8; 16] = rand::random();
        Self::derive_with(password, &salt, ITERATIONS)
    }

    pub fn derive_with(password: &str, salt: &[u8], iterations: u32) -> ScramSecret {
        // RFC 5802 §2.2: Hi() is PBKDF2 with HMAC as the PRF. SASLprep of
        // the password is the identity for the ASCII passwords most people
        // use; non-ASCII passwords are taken as their UTF-8 bytes.
        let mut salted = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, iterations, &mut salted);
        let client_key = hmac(&salted, b"Client Key");
        let stored_key: [u8; 32] = Sha256::digest(client_key).into();
        let server_key = hmac(&salted, b"Server Key");
        ScramSecret {
            iterations,
            salt: salt.to_vec(),
            stored_key,
            server_key,
        }
    }

    /// `iterations$salt$storedkey$serverkey`, base64 parts.
    pub fn encode(&self) -> String {
        format!(
            "{}${}${}${}",
            self.iterations,
            b64_encode(&self.salt),
            b64_encode(&self.stored_key),
            b64_encode(&self.server_key)
        )
    }

    pub fn decode(s: &str) -> Option<ScramSecret> {
        let mut it = s.split('$');
        let iterations = it.next()?.parse().ok()?;
        let salt = b64_decode(it.next()?)?;
        let stored_key = b64_decode(it.next()?)?.try_into().ok()?;
        let server_key = b64_decode(it.next()?)?.try_into().ok()?;
        Some(ScramSecret {
            iterations,
            salt,
            stored_key,
            server_key,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScramError {
    /// The client's message does not follow RFC 5802 §7.
    Malformed(&'static str),
    /// Channel binding was asked for; we offer none (no -PLUS variant).
    ChannelBinding,
    /// Wrong proof: the password does not match.
    Failed,
}

/// One server-side exchange.
pub struct ScramServer {
    client_first_bare: String,
    gs2_header: String,
    nonce: String,
    server_first: String,
    secret: Option<ScramSecret>,
    user: String,
}

/// The salt offered for a login with no SCRAM secret: fixed per login for
/// the life of the process (an HMAC under a key made at start), so asking
/// twice does not tell a missing account from a real one, whose salt never
/// changes either.
fn decoy_salt(user: &str) -> Vec<u8> {
    static KEY: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
    let key = KEY.get_or_init(rand::random);
    hmac(key, user.to_lowercase().as_bytes())[..16].to_vec()
}

/// Decodes a SCRAM `saslname` (RFC 5802 §5.1: "=2C" is ",", "=3D" is "=").
fn decode_name(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        match rest.get(i..i + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return None,
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Some(out)
}

impl ScramServer {
    /// Parses client-first-message; returns the exchange and the user name
    /// whose secret the caller must look up.
    pub fn client_first(msg: &[u8]) -> Result<(ScramServer, String), ScramError> {
        let msg = std::str::from_utf8(msg).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        // gs2-header = gs2-cbind-flag "," [ authzid ] ","
        let mut parts = msg.splitn(3, ',');
        let cbind = parts.next().unwrap_or_default();
        let authzid = parts
            .next()
            .ok_or(ScramError::Malformed("missing GS2 header"))?;
        let bare = parts
            .next()
            .ok_or(ScramError::Malformed("missing client-first-message-bare"))?;
        match cbind {
            "n" | "y" => {}
            c if c.starts_with("p=") => return Err(ScramError::ChannelBinding),
            _ => return Err(ScramError::Malformed("bad GS2 channel binding flag")),
        }
        let mut user = None;
        let mut cnonce = None;
        for (i, attr) in bare.split(',').enumerate() {
            match (i, attr.split_at_checked(2)) {
                (0, Some(("m=", _))) => {
                    return Err(ScramError::Malformed(
                        "mandatory extensions are not supported",
                    ))
                }
                (0, Some(("n=", v))) => {
                    user = Some(
                        decode_name(v).ok_or(ScramError::Malformed("bad user name encoding"))?,
                    )
                }
                (1, Some(("r=", v)))
                    if !v.is_empty()
                        && v.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',') =>
                {
                    cnonce = Some(v.to_string())
                }
                (0, _) | (1, _) => return Err(ScramError::Malformed("expected n=user,r=nonce")),
                _ => {} // optional extensions are ignored
            }
        }
        let (Some(user), Some(cnonce)) = (user, cnonce) else {
            return Err(ScramError::Malformed("expected n=user,r=nonce"));
        };
        if let Some(z) = authzid.strip_prefix("a=") {
            if decode_name(z).as_deref() != Some(user.as_str()) {
                return Err(ScramError::Failed);
            }
        } else if !authzid.is_empty() {
            return Err(ScramError::Malformed("bad authzid"));
        }
        let snonce = b64_encode(&rand::random::<[u8; 18]>());
        Ok((
            ScramServer {
                client_first_bare: bare.to_string(),
                gs2_header: format!("{cbind},{authzid},"),
                nonce: format!("{cnonce}{snonce}"),
                server_first: String::new(),
                secret: None,
                user: user.clone(),
            },
            user,
        ))
    }

    /// server-first-message. With no secret (unknown user, or an account
    /// without SCRAM credentials) a decoy salt is offered and the exchange
    /// fails at the end, so the reply does not reveal which users exist.
    pub fn server_first(&mut self, secret: Option<ScramSecret>) -> String {
        let (salt, iterations) = match &secret {
            Some(s) => (s.salt.clone(), s.iterations),
            None => (decoy_salt(&self.user), ITERATIONS),
        };
        self.secret = secret;
        self.server_first = format!("r={},s={},i={iterations}", self.nonce, b64_encode(&salt));
        self.server_first.clone()
    }

    /// Checks client-final-message; on success returns server-final-message.
    pub fn client_final(&self, msg: &[u8]) -> Result<String, ScramError> {
        let msg = std::str::from_utf8(msg).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let (without_proof, proof) = msg
            .rsplit_once(",p=")
            .ok_or(ScramError::Malformed("missing proof"))?;
        let mut attrs = without_proof.split(',');
        let cbind = attrs
            .next()
            .and_then(|a| a.strip_prefix("c="))
            .ok_or(ScramError::Malformed("missing channel binding"))?;
        let nonce = attrs
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .ok_or(ScramError::Malformed("missing nonce"))?;
        if b64_decode(cbind).as_deref() != Some(self.gs2_header.as_bytes()) {
            return Err(ScramError::Malformed("channel binding does not match"));
        }
        if nonce != self.nonce {
            return Err(ScramError::Malformed("nonce does not match"));
        }
        let proof = b64_decode(proof).ok_or(ScramError::Malformed("bad proof encoding"))?;
        let secret = self.secret.as_ref().ok_or(ScramError::Failed)?;
        if proof.len() != 32 {
            return Err(ScramError::Failed);
        }
        let auth_message = format!(
            "{},{},{}",
            self.client_first_bare, self.server_first, without_proof
        );
        let client_signature = hmac(&secret.stored_key, auth_message.as_bytes());
        let client_key: Vec<u8> = proof
            .iter()
            .zip(client_signature.iter())
            .map(|(a, b)| a ^ b)
            .collect();
        let stored: [u8; 32] = Sha256::digest(&client_key).into();
        // Constant-time comparison through the MAC type.
        let mut check = HmacSha256::new_from_slice(b"scram-compare").expect("any key");
        check.update(&stored);
        let mut want = HmacSha256::new_from_slice(b"scram-compare").expect("any key");
        want.update(&secret.stored_key);
        if check.verify(&want.finalize().into_bytes()).is_err() {
            return Err(ScramError::Failed);
        }
        let server_signature = hmac(&secret.server_key, auth_message.as_bytes());
        Ok(format!("v={}", b64_encode(&server_signature)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 §3 test vector: user "user", password "pencil".
    #[test]
    fn rfc7677_example() {
        let salt = b64_decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let secret = ScramSecret::derive_with("pencil", &salt, 4096);
        let (mut srv, user) =
            ScramServer::client_first(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO").unwrap();
        assert_eq!(user, "user");
        // Use the RFC's server nonce so the proof matches.
        srv.nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0".into();
        let first = srv.server_first(Some(secret.clone()));
        assert_eq!(
            first,
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        );
        let fin = srv
            .client_final(b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
            .unwrap();
        assert_eq!(fin, "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
        // A changed proof fails.
        assert_eq!(
            srv.client_final(b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=eHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="),
            Err(ScramError::Failed)
        );
        assert_eq!(ScramSecret::decode(&secret.encode()), Some(secret));
    }

    #[test]
    fn rejects_bad_client_first() {
        for m in [
            &b"p=tls-unique,,n=user,r=abc"[..],
            b"x,,n=user,r=abc",
            b"n,,r=abc",
            b"n,,n=us=ZZer,r=abc",
            b"n,a=other,n=user,r=abc",
            b"n,,m=ext,n=user,r=abc",
            b"\xff",
        ] {
            assert!(ScramServer::client_first(m).is_err(), "{m:?}");
        }
        let (_, u) = ScramServer::client_first(b"n,,n=a=2Cb=3Dc,r=x").unwrap();
        assert_eq!(u, "a,b=c");
    }

    /// The client side of RFC 5802 §3, for the round-trip property below.
    fn client_final(password: &str, bare: &str, server_first: &str) -> String {
        let mut salt = Vec::new();
        let mut iterations = 0;
        let mut nonce = "";
        for a in server_first.split(',') {
            match a.split_at(2) {
                ("r=", v) => nonce = v,
                ("s=", v) => salt = b64_decode(v).unwrap(),
                ("i=", v) => iterations = v.parse().unwrap(),
                _ => {}
            }
        }
        let mut salted = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), &salt, iterations, &mut salted);
        let client_key = hmac(&salted, b"Client Key");
        let stored: [u8; 32] = Sha256::digest(client_key).into();
        let without = format!("c=biws,r={nonce}");
        let sig = hmac(
            &stored,
            format!("{bare},{server_first},{without}").as_bytes(),
        );
        let proof: Vec<u8> = client_key.iter().zip(sig).map(|(a, b)| a ^ b).collect();
        format!("{without},p={}", b64_encode(&proof))
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
        /// The right password always authenticates; any other never does.
        #[test]
        fn any_password_round_trips(pw in "[ -~]{1,24}", other in "[ -~]{1,24}", user in "[a-z]{1,8}") {
            let secret = ScramSecret::derive_with(&pw, b"0123456789abcdef", 64);
            for (attempt, ok) in [(&pw, true), (&other, other == pw)] {
                let bare = format!("n={user},r=clientnonce");
                let (mut srv, u) = ScramServer::client_first(format!("n,,{bare}").as_bytes()).unwrap();
                proptest::prop_assert_eq!(&u, &user);
                let first = srv.server_first(Some(secret.clone()));
                let fin = client_final(attempt, &bare, &first);
                proptest::prop_assert_eq!(srv.client_final(fin.as_bytes()).is_ok(), ok);
            }
        }
    }

    #[test]
    fn unknown_user_fails_at_the_end() {
        let (mut srv, _) = ScramServer::client_first(b"n,,n=ghost,r=abc").unwrap();
        let first = srv.server_first(None);
        let nonce = first.split(',').next().unwrap();
        let fin = format!("c=biws,{nonce},p={}", b64_encode(&[0u8; 32]));
        assert_eq!(srv.client_final(fin.as_bytes()), Err(ScramError::Failed));
    }
}
