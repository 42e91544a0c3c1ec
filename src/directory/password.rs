//! Password hashing: argon2id (PHC strings) for everything Petrel writes.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use super::{DirError, Result};

/// Hashes on a blocking thread: argon2 is deliberately slow.
pub async fn hash(secret: &str) -> Result<String> {
    let _slot = argon2_slots().acquire().await;
    let secret = secret.to_string();
    tokio::task::spawn_blocking(move || hash_blocking(&secret))
        .await
        .map_err(|e| DirError::Invalid(e.to_string()))?
}

/// The argon2id hash and the SCRAM-SHA-256 secret of a new password.
pub async fn hash_with_scram(secret: &str) -> Result<(String, String)> {
    let _slot = argon2_slots().acquire().await;
    let secret = secret.to_string();
    tokio::task::spawn_blocking(move || {
        let h = hash_blocking(&secret)?;
        Ok((h, super::scram::ScramSecret::derive(&secret).encode()))
    })
    .await
    .map_err(|e| DirError::Invalid(e.to_string()))?
}

pub fn hash_blocking(secret: &str) -> Result<String> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| DirError::Invalid(format!("cannot hash password: {e}")))
}

pub fn verify_blocking(stored: &str, secret: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(h) => Argon2::default()
            .verify_password(secret.as_bytes(), &h)
            .is_ok(),
        Err(_) => false,
    }
}

/// argon2id takes 19 MiB per verification; unbounded, fifty concurrent
/// logins cost a gigabyte (and the allocator keeps it). Verifications run
/// at most one per core at a time; the rest wait their turn.
fn argon2_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| {
        let n = std::thread::available_parallelism().map_or(2, |n| n.get());
        tokio::sync::Semaphore::new(n)
    })
}

pub async fn verify(stored: &str, secret: &str) -> bool {
    let Ok(_slot) = argon2_slots().acquire().await else {
        return false;
    };
    let (stored, secret) = (stored.to_string(), secret.to_string());
    tokio::task::spawn_blocking(move || verify_blocking(&stored, &secret))
        .await
        .unwrap_or(false)
}

/// Recently verified passwords, so that a client that logs in again and
/// again (a submission client per message, a phone polling IMAP) costs
/// one argon2id run per `ttl` instead of one per login. Only successes
/// are kept, as an HMAC (with a key made at start) of the stored hash and
/// the password: a changed password has a new stored hash and misses.
pub struct VerifyCache {
    ttl: std::time::Duration,
    key: [u8; 32],
    hits: std::sync::Mutex<std::collections::HashMap<[u8; 32], std::time::Instant>>,
}

/// Entries kept at most; past it the oldest half is dropped.
const CACHE_MAX: usize = 10_000;

impl VerifyCache {
    /// `ttl_secs = 0` turns the cache off.
    pub fn new(ttl_secs: u64) -> VerifyCache {
        use rand::RngCore;
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        VerifyCache {
            ttl: std::time::Duration::from_secs(ttl_secs),
            key,
            hits: Default::default(),
        }
    }

    fn tag(&self, stored: &str, secret: &str) -> [u8; 32] {
        use hmac::Mac;
        let mut mac =
            hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(stored.as_bytes());
        mac.update(&[0]);
        mac.update(secret.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Verifies `secret` against `stored`, from the cache when it can.
    pub async fn verify(&self, stored: &str, secret: &str) -> bool {
        if self.ttl.is_zero() {
            return verify(stored, secret).await;
        }
        let tag = self.tag(stored, secret);
        let now = std::time::Instant::now();
        if let Some(at) = self.hits.lock().expect("lock").get(&tag) {
            if now.duration_since(*at) < self.ttl {
                return true;
            }
        }
        let ok = verify(stored, secret).await;
        if ok {
            let mut hits = self.hits.lock().expect("lock");
            if hits.len() >= CACHE_MAX {
                let ttl = self.ttl;
                hits.retain(|_, at| now.duration_since(*at) < ttl / 2);
            }
            hits.insert(tag, now);
        }
        ok
    }
}

/// Costs what a real verification costs, for unknown logins.
pub async fn verify_dummy(secret: &str) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let stored = DUMMY
        .get_or_init(|| hash_blocking("petrel-dummy").unwrap_or_default())
        .clone();
    let _ = verify(&stored, secret).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_cache_keeps_successes_only() {
        let stored = hash_blocking("right").unwrap();
        let cache = VerifyCache::new(300);
        assert!(!cache.verify(&stored, "wrong").await);
        assert!(
            cache.hits.lock().unwrap().is_empty(),
            "failures are not kept"
        );
        assert!(cache.verify(&stored, "right").await);
        assert_eq!(cache.hits.lock().unwrap().len(), 1);
        // A hit answers without argon2; a wrong password still misses,
        // and so does the right one against another stored hash.
        assert!(cache.verify(&stored, "right").await);
        assert!(!cache.verify(&stored, "wrong").await);
        let other = hash_blocking("other").unwrap();
        assert!(!cache.verify(&other, "right").await);
        // Off: nothing is kept.
        let off = VerifyCache::new(0);
        assert!(off.verify(&stored, "right").await);
        assert!(off.hits.lock().unwrap().is_empty());
    }

    #[test]
    fn argon2id_round_trip() {
        let h = hash_blocking("s3cret").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_blocking(&h, "s3cret"));
        assert!(!verify_blocking(&h, "s3cret "));
        assert!(!verify_blocking("not a hash", "s3cret"));
    }
}
