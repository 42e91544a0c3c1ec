//! Store write path: transactions of one 4 KB value, 64 in flight at once,
//! on each engine. Group commit makes the cost per transaction far below
//! one fsync.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use petrel::store::{rocks::RocksBackend, sqlite::SqliteBackend, KvBackend, Store};

const IN_FLIGHT: u64 = 64;

fn bench_engine(c: &mut Criterion, name: &str, store: Store) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("store_write");
    group.throughput(Throughput::Elements(IN_FLIGHT));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(8));
    let mut key = 0u64;
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let store = store.clone();
            let start_key = key;
            key += iters * IN_FLIGHT;
            rt.block_on(async move {
                let t = Instant::now();
                for i in 0..iters {
                    let mut tasks = Vec::with_capacity(IN_FLIGHT as usize);
                    for j in 0..IN_FLIGHT {
                        let s = store.clone();
                        let k = start_key + i * IN_FLIGHT + j;
                        tasks.push(tokio::spawn(async move {
                            s.transact(move |t| {
                                t.put(k.to_be_bytes().to_vec(), vec![7u8; 4096]);
                                Ok(())
                            })
                            .await
                            .unwrap()
                        }));
                    }
                    for t in tasks {
                        t.await.unwrap();
                    }
                }
                t.elapsed()
            })
        })
    });
    group.finish();
}

fn engines(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let rocks: Arc<dyn KvBackend> =
        Arc::new(RocksBackend::open(&dir.path().join("rocks")).unwrap());
    bench_engine(c, "rocksdb", Store::new(rocks));
    let sqlite: Arc<dyn KvBackend> =
        Arc::new(SqliteBackend::open(&dir.path().join("kv.sqlite3")).unwrap());
    bench_engine(c, "sqlite", Store::new(sqlite));
}

criterion_group!(benches, engines);
criterion_main!(benches);
