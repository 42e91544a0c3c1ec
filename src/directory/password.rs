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

    #[test]
    fn argon2id_round_trip() {
        let h = hash_blocking("s3cret").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_blocking(&h, "s3cret"));
        assert!(!verify_blocking(&h, "s3cret "));
        assert!(!verify_blocking("not a hash", "s3cret"));
    }
}
