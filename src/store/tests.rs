//! The store's test suite, run against every backend.

use std::sync::Arc;

use super::rocks::RocksBackend;
use super::sqlite::SqliteBackend;
use super::{KvBackend, Store, StoreError};

fn backends(dir: &std::path::Path) -> Vec<Store> {
    let rocks: Arc<dyn KvBackend> = Arc::new(RocksBackend::open(&dir.join("rocks")).unwrap());
    let sqlite: Arc<dyn KvBackend> =
        Arc::new(SqliteBackend::open(&dir.join("kv.sqlite3")).unwrap());
    vec![Store::new(rocks), Store::new(sqlite)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_get_scan_delete() {
    let dir = tempfile::tempdir().unwrap();
    for s in backends(dir.path()) {
        let name = s.backend_name();
        s.transact(|t| {
            t.put(b"a/1".to_vec(), b"one".to_vec());
            t.put(b"a/2".to_vec(), b"two".to_vec());
            t.put(b"b/1".to_vec(), b"other".to_vec());
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(
            s.get(b"a/1".to_vec()).await.unwrap(),
            Some(b"one".to_vec()),
            "{name}"
        );
        assert_eq!(s.get(b"zz".to_vec()).await.unwrap(), None, "{name}");
        let rows = s.scan_prefix(b"a/".to_vec()).await.unwrap();
        assert_eq!(rows.len(), 2, "{name}");
        assert_eq!(rows[0].0, b"a/1", "{name}");
        let limited = s.scan(b"a".to_vec(), b"c".to_vec(), 2).await.unwrap();
        assert_eq!(limited.len(), 2, "{name}");
        s.transact(|t| {
            t.delete(b"a/1".to_vec());
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(s.get(b"a/1".to_vec()).await.unwrap(), None, "{name}");
        assert_eq!(
            s.scan_prefix(b"a/".to_vec()).await.unwrap().len(),
            1,
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_transaction_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for s in backends(dir.path()) {
        let r: Result<(), _> = s
            .transact(|t| {
                t.put(b"k".to_vec(), b"v".to_vec());
                Err(StoreError::Aborted("no".into()))
            })
            .await;
        assert!(r.is_err());
        assert_eq!(
            s.get(b"k".to_vec()).await.unwrap(),
            None,
            "{}",
            s.backend_name()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_and_set_and_concurrent_counters() {
    let dir = tempfile::tempdir().unwrap();
    for s in backends(dir.path()) {
        // 200 concurrent read-modify-write transactions on one counter: no
        // increment may be lost, and every caller sees a distinct value.
        let mut tasks = Vec::new();
        for _ in 0..200 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                s.transact(|t| {
                    let cur = t
                        .get(b"ctr")?
                        .map(|v| u64::from_be_bytes(v.try_into().unwrap()))
                        .unwrap_or(0);
                    t.put(b"ctr".to_vec(), (cur + 1).to_be_bytes().to_vec());
                    Ok(cur + 1)
                })
                .await
                .unwrap()
            }));
        }
        let mut seen = Vec::new();
        for t in tasks {
            seen.push(t.await.unwrap());
        }
        seen.sort();
        assert_eq!(
            seen,
            (1..=200).collect::<Vec<u64>>(),
            "{}",
            s.backend_name()
        );
        // Compare-and-set: a writer that expects a stale value fails.
        let r = s
            .transact(|t| {
                if t.get(b"ctr")? != Some(5u64.to_be_bytes().to_vec()) {
                    return Err(StoreError::Aborted("conflict".into()));
                }
                t.put(b"ctr".to_vec(), vec![0]);
                Ok(())
            })
            .await;
        assert!(matches!(r, Err(StoreError::Aborted(_))));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn txn_scan_sees_pending_writes() {
    let dir = tempfile::tempdir().unwrap();
    for s in backends(dir.path()) {
        s.transact(|t| {
            t.put(b"p/1".to_vec(), b"x".to_vec());
            Ok(())
        })
        .await
        .unwrap();
        let n = s
            .transact(|t| {
                t.put(b"p/2".to_vec(), b"y".to_vec());
                t.delete(b"p/1".to_vec());
                Ok(t.scan_prefix(b"p/")?.len())
            })
            .await
            .unwrap();
        assert_eq!(n, 1, "{}", s.backend_name());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        for s in backends(dir.path()) {
            s.transact(|t| {
                t.put(b"durable".to_vec(), b"yes".to_vec());
                Ok(())
            })
            .await
            .unwrap();
        }
    }
    // Give the committer threads of the dropped stores time to exit.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    for s in backends(dir.path()) {
        assert_eq!(
            s.get(b"durable".to_vec()).await.unwrap(),
            Some(b"yes".to_vec()),
            "{}",
            s.backend_name()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blob_refcounts_inline_and_files() {
    let dir = tempfile::tempdir().unwrap();
    for (i, s) in backends(dir.path()).into_iter().enumerate() {
        let blobs = super::BlobStore::new(&dir.path().join(format!("blobs{i}")), 16).unwrap();
        for data in [b"small".to_vec(), vec![7u8; 1000]] {
            let data = Arc::new(data);
            let id = blobs.prepare(data.clone()).await.unwrap();
            for _ in 0..2 {
                let (b, d, id) = (blobs.clone(), data.clone(), id.clone());
                s.transact(move |t| b.add_ref(t, &id, &d)).await.unwrap();
            }
            assert_eq!(
                blobs.get(&s, &id).await.unwrap().as_deref(),
                Some(&data[..])
            );
            assert_eq!(
                blobs.get_range(&s, &id, 1, 3).await.unwrap().unwrap(),
                data[1..3].to_vec()
            );
            let (b, i2) = (blobs.clone(), id.clone());
            s.transact(move |t| b.release(t, &i2)).await.unwrap();
            assert!(
                blobs.get(&s, &id).await.unwrap().is_some(),
                "one reference left"
            );
            let (b, i2) = (blobs.clone(), id.clone());
            s.transact(move |t| b.release(t, &i2)).await.unwrap();
            assert!(
                blobs.get(&s, &id).await.unwrap().is_none(),
                "gone with the last reference"
            );
        }
    }
}
