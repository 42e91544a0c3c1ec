//! SQLite backend (sqlx). One table of ordered byte keys. The writer and each
//! reader own a connection on a thread of their own, so the blocking
//! [`KvBackend`] interface never blocks an async worker.

use std::path::Path;
use std::str::FromStr;
use std::sync::mpsc;
use std::sync::Mutex;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, Row, SqliteConnection};

use super::{KvBackend, Result, StoreError};

type Op = Box<dyn FnOnce(&mut SqliteConnection, &tokio::runtime::Runtime) + Send>;

struct Worker {
    tx: Mutex<mpsc::Sender<Op>>,
}

impl Worker {
    fn spawn(opts: SqliteConnectOptions, name: &str) -> Result<Self> {
        let (tx, rx) = mpsc::channel::<Op>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<()>>();
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(StoreError::backend(e)));
                        return;
                    }
                };
                let mut conn = match rt.block_on(opts.connect()) {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = ready_tx.send(Err(StoreError::backend(e)));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                while let Ok(op) = rx.recv() {
                    op(&mut conn, &rt);
                }
            })
            .map_err(StoreError::backend)?;
        ready_rx.recv().map_err(StoreError::backend)??;
        Ok(Worker { tx: Mutex::new(tx) })
    }

    fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut SqliteConnection, &tokio::runtime::Runtime) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        let (tx, rx) = mpsc::channel();
        let op: Op = Box::new(move |c, rt| {
            let _ = tx.send(f(c, rt));
        });
        self.tx
            .lock()
            .map_err(|_| StoreError::Closed)?
            .send(op)
            .map_err(|_| StoreError::Closed)?;
        rx.recv().map_err(|_| StoreError::Closed)?
    }
}

pub struct SqliteBackend {
    writer: Worker,
    readers: Vec<Worker>,
    next: std::sync::atomic::AtomicUsize,
}

impl SqliteBackend {
    pub fn open(path: &Path) -> Result<Self> {
        let url = format!("sqlite://{}", path.display());
        let opts = SqliteConnectOptions::from_str(&url)
            .map_err(StoreError::backend)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit is synced before it returns.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(std::time::Duration::from_secs(30));
        let writer = Worker::spawn(opts.clone(), "petrel-sqlite-w")?;
        writer.run(|c, rt| {
            rt.block_on(
                sqlx::query(
                    "CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY NOT NULL, v BLOB NOT NULL) WITHOUT ROWID",
                )
                .execute(&mut *c),
            )
            .map(|_| ())
            .map_err(StoreError::backend)
        })?;
        let readers = (0..2)
            .map(|i| Worker::spawn(opts.clone().read_only(true), &format!("petrel-sqlite-r{i}")))
            .collect::<Result<Vec<_>>>()?;
        Ok(SqliteBackend {
            writer,
            readers,
            next: Default::default(),
        })
    }

    fn reader(&self) -> &Worker {
        let i = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        &self.readers[i % self.readers.len()]
    }
}

impl KvBackend for SqliteBackend {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let key = key.to_vec();
        self.reader().run(move |c, rt| {
            rt.block_on(
                sqlx::query("SELECT v FROM kv WHERE k = ?")
                    .bind(key)
                    .fetch_optional(&mut *c),
            )
            .map(|row| row.map(|r| r.get::<Vec<u8>, _>(0)))
            .map_err(StoreError::backend)
        })
    }

    fn scan(&self, from: &[u8], to: &[u8], limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let (from, to) = (from.to_vec(), to.to_vec());
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.reader().run(move |c, rt| {
            rt.block_on(
                sqlx::query("SELECT k, v FROM kv WHERE k >= ? AND k < ? ORDER BY k LIMIT ?")
                    .bind(from)
                    .bind(to)
                    .bind(limit)
                    .fetch_all(&mut *c),
            )
            .map(|rows| {
                rows.into_iter()
                    .map(|r| (r.get::<Vec<u8>, _>(0), r.get::<Vec<u8>, _>(1)))
                    .collect()
            })
            .map_err(StoreError::backend)
        })
    }

    fn write(&self, ops: &[(Vec<u8>, Option<Vec<u8>>)]) -> Result<()> {
        let ops = ops.to_vec();
        self.writer.run(move |c, rt| {
            rt.block_on(async move {
                let mut tx = c.begin().await?;
                for (k, v) in ops {
                    match v {
                        Some(v) => {
                            sqlx::query("INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)")
                                .bind(k)
                                .bind(v)
                                .execute(&mut *tx)
                                .await?;
                        }
                        None => {
                            sqlx::query("DELETE FROM kv WHERE k = ?")
                                .bind(k)
                                .execute(&mut *tx)
                                .await?;
                        }
                    }
                }
                tx.commit().await
            })
            .map_err(StoreError::backend)
        })
    }

    fn name(&self) -> &'static str {
        "sqlite"
    }
}
