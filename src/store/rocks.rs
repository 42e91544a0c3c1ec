//! RocksDB backend: the embedded default.

use std::path::Path;

use rocksdb::{Direction, IteratorMode, Options, WriteBatch, WriteOptions, DB};

use super::{KvBackend, Result, StoreError};

pub struct RocksBackend {
    db: DB,
}

impl RocksBackend {
    pub fn open(path: &Path) -> Result<Self> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.set_max_open_files(256);
        // Keep the memory footprint of an idle server small.
        opts.set_write_buffer_size(8 << 20);
        opts.set_max_write_buffer_number(2);
        let db = DB::open(&opts, path).map_err(StoreError::backend)?;
        Ok(RocksBackend { db })
    }
}

impl KvBackend for RocksBackend {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.db.get(key).map_err(StoreError::backend)
    }

    fn scan(&self, from: &[u8], to: &[u8], limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut out = Vec::new();
        // The bound lets RocksDB stop at `to` instead of stepping over
        // the deleted keys that follow the range (queues and UID indexes
        // leave many).
        let mut ro = rocksdb::ReadOptions::default();
        ro.set_iterate_upper_bound(to.to_vec());
        for item in self
            .db
            .iterator_opt(IteratorMode::From(from, Direction::Forward), ro)
        {
            let (k, v) = item.map_err(StoreError::backend)?;
            if k.as_ref() >= to || out.len() >= limit {
                break;
            }
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }

    fn write(&self, ops: &[(Vec<u8>, Option<Vec<u8>>)]) -> Result<()> {
        let mut batch = WriteBatch::default();
        for (k, v) in ops {
            match v {
                Some(v) => batch.put(k, v),
                None => batch.delete(k),
            }
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.db.write_opt(batch, &wo).map_err(StoreError::backend)
    }

    fn name(&self) -> &'static str {
        "rocksdb"
    }

    fn close(&self) {
        // Memtables to disk, then wait for RocksDB's background threads:
        // exiting while they run can abort in its static destructors.
        let _ = self.db.flush();
        self.db.cancel_all_background_work(true);
    }
}
