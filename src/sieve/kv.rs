//! A small key-value store with expiry for administrators' Sieve
//! scripts (the greylisting triplets, counters a policy keeps). Scripts
//! reach it through four functions of sieve-rs's expression language
//! ([`super::smtp`] registers them):
//!
//! - `kv_get(ns, key)`: the value, `''` when absent or expired (a value
//!   written as a whole number reads back as a number);
//! - `kv_exists(ns, key)`: whether it is there;
//! - `kv_set(ns, key, value, ttl)`: stores it for `ttl` seconds;
//! - `kv_delete(ns, key)`.
//!
//! Keys: `kv/NS\0KEY` holds the expiry (unix seconds, big-endian) and
//! the value; `kx/EXPIRY NS\0KEY` indexes entries by expiry, so that
//! [`sweep`] removes the expired ones without reading the rest.

use crate::store::{Store, StoreError, Txn};

const ENTRY: &[u8] = b"kv/";
const BY_EXPIRY: &[u8] = b"kx/";

/// A write a script made, applied once its run is over.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    Set {
        ns: String,
        key: String,
        value: String,
        expires: i64,
    },
    Delete {
        ns: String,
        key: String,
    },
}

fn entry_key(ns: &str, key: &str) -> Vec<u8> {
    let mut k = ENTRY.to_vec();
    k.extend_from_slice(ns.as_bytes());
    k.push(0);
    k.extend_from_slice(key.as_bytes());
    k
}

fn index_key(expires: i64, name: &[u8]) -> Vec<u8> {
    let mut k = BY_EXPIRY.to_vec();
    k.extend_from_slice(&(expires.max(0) as u64).to_be_bytes());
    k.extend_from_slice(name);
    k
}

/// The two records of an entry: the entry and its expiry index (what
/// [`apply`] writes; public for tools that fill a store offline, as the
/// greylisting benchmark does).
pub fn encode(ns: &str, key: &str, value: &str, expires: i64) -> [(Vec<u8>, Vec<u8>); 2] {
    let name = entry_key(ns, key);
    let mut v = (expires.max(0) as u64).to_be_bytes().to_vec();
    v.extend_from_slice(value.as_bytes());
    [
        (index_key(expires, &name[ENTRY.len()..]), Vec::new()),
        (name, v),
    ]
}

/// An entry's expiry and value.
fn decode(v: &[u8]) -> Option<(i64, &[u8])> {
    let (exp, value) = v.split_first_chunk::<8>()?;
    Some((u64::from_be_bytes(*exp) as i64, value))
}

/// The value of `ns`/`key` unless it expired before `now`: a point read
/// answered on the calling thread (see [`Store::get_now`]).
pub fn get(store: &Store, ns: &str, key: &str, now: i64) -> Result<Option<String>, StoreError> {
    Ok(store.get_now(&entry_key(ns, key))?.and_then(|v| {
        let (exp, value) = decode(&v)?;
        (exp > now).then(|| String::from_utf8_lossy(value).into_owned())
    }))
}

/// Applies a run's writes in one transaction, durable when it returns.
pub async fn apply(store: &Store, writes: Vec<Write>) -> Result<(), StoreError> {
    if writes.is_empty() {
        return Ok(());
    }
    store
        .transact(move |txn| {
            for w in &writes {
                match w {
                    Write::Set {
                        ns,
                        key,
                        value,
                        expires,
                    } => {
                        unindex(txn, &entry_key(ns, key))?;
                        for (k, v) in encode(ns, key, value, *expires) {
                            txn.put(k, v);
                        }
                    }
                    Write::Delete { ns, key } => {
                        let name = entry_key(ns, key);
                        unindex(txn, &name)?;
                        txn.delete(name);
                    }
                }
            }
            Ok(())
        })
        .await
}

/// Removes the expiry index entry of the entry at `name`, if any.
fn unindex(txn: &mut Txn<'_>, name: &[u8]) -> Result<(), StoreError> {
    if let Some((exp, _)) = txn.get(name)?.as_deref().and_then(decode) {
        txn.delete(index_key(exp, &name[ENTRY.len()..]));
    }
    Ok(())
}

/// Deletes up to `limit` entries that expired before `now`; how many.
pub async fn sweep(store: &Store, now: i64, limit: usize) -> Result<usize, StoreError> {
    let due = store
        .scan(BY_EXPIRY.to_vec(), index_key(now, b""), limit)
        .await?;
    if due.is_empty() {
        return Ok(0);
    }
    let n = due.len();
    store
        .transact(move |txn| {
            for (ix, _) in due {
                let tail = &ix[BY_EXPIRY.len() + 8..];
                let mut name = ENTRY.to_vec();
                name.extend_from_slice(tail);
                // Set again since: its index entry is another one.
                if let Some((exp, _)) = txn.get(&name)?.as_deref().and_then(decode) {
                    if exp <= now {
                        txn.delete(name);
                    }
                }
                txn.delete(ix);
            }
            Ok(())
        })
        .await?;
    Ok(n)
}

/// Removes expired entries every `every` seconds while the server runs.
pub fn spawn_sweeper(store: Store, every: std::time::Duration, mut shutdown: crate::net::Shutdown) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.wait() => return,
            }
            let mut removed = 0;
            loop {
                match sweep(&store, crate::core::unix_now(), 10_000).await {
                    Ok(0) => break,
                    Ok(n) => removed += n,
                    Err(e) => {
                        tracing::warn!("Sieve key-value sweep failed, trying again later: {e}");
                        break;
                    }
                }
            }
            if removed > 0 {
                tracing::info!(removed, "expired Sieve key-value entries removed");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let b = crate::store::sqlite::SqliteBackend::open(&dir.path().join("s.db")).unwrap();
        (dir, Store::new(std::sync::Arc::new(b)))
    }

    fn set(ns: &str, key: &str, value: &str, expires: i64) -> Write {
        Write::Set {
            ns: ns.into(),
            key: key.into(),
            value: value.into(),
            expires,
        }
    }

    #[tokio::test]
    async fn values_expire_and_are_swept() {
        let (_d, s) = store();
        apply(&s, vec![set("g", "a", "1", 100), set("g", "b", "2", 200)])
            .await
            .unwrap();
        assert_eq!(get(&s, "g", "a", 99).unwrap().as_deref(), Some("1"));
        assert_eq!(get(&s, "g", "a", 100).unwrap(), None, "expired at 100");
        assert_eq!(get(&s, "other", "a", 0).unwrap(), None, "namespaces apart");
        // Set again later: the old index entry must not delete it.
        apply(&s, vec![set("g", "a", "3", 300)]).await.unwrap();
        assert_eq!(sweep(&s, 150, 100).await.unwrap(), 0);
        assert_eq!(get(&s, "g", "a", 150).unwrap().as_deref(), Some("3"));
        assert_eq!(sweep(&s, 250, 100).await.unwrap(), 1, "b only");
        assert_eq!(get(&s, "g", "b", 0).unwrap(), None, "b's entry is gone");
        apply(
            &s,
            vec![Write::Delete {
                ns: "g".into(),
                key: "a".into(),
            }],
        )
        .await
        .unwrap();
        assert_eq!(get(&s, "g", "a", 0).unwrap(), None);
        assert!(s.scan_prefix(b"kx/".to_vec()).await.unwrap().is_empty());
        assert!(s.scan_prefix(b"kv/".to_vec()).await.unwrap().is_empty());
    }
}
