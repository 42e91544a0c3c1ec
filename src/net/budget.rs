//! The memory budget: bytes of clients' data that all sessions together
//! may hold in memory (`limits.memory-in-flight`). A session takes a
//! [`Charge`] before it holds data and keeps it while the data lives;
//! over the budget it waits (`limits.memory-wait`), then answers with a
//! temporary error.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub struct MemoryBudget {
    sem: Arc<Semaphore>,
    total: usize,
    wait: Duration,
}

/// Bytes held under the budget; given back when dropped.
#[derive(Default)]
pub struct Charge(Option<OwnedSemaphorePermit>);

impl Charge {
    pub fn bytes(&self) -> usize {
        self.0.as_ref().map_or(0, |p| p.num_permits())
    }

    fn add(&mut self, more: OwnedSemaphorePermit) {
        match self.0.as_mut() {
            Some(held) => held.merge(more),
            None => self.0 = Some(more),
        }
    }
}

impl MemoryBudget {
    pub fn new(total: usize, wait_secs: u64) -> Self {
        let total = total.clamp(1, Semaphore::MAX_PERMITS);
        MemoryBudget {
            sem: Arc::new(Semaphore::new(total)),
            total,
            wait: Duration::from_secs(wait_secs),
        }
    }

    /// What one request can take at most: a message larger than the whole
    /// budget takes all of it.
    fn clamp(&self, bytes: usize) -> u32 {
        bytes.min(self.total).min(u32::MAX as usize) as u32
    }

    /// Takes `bytes`, waiting up to `limits.memory-wait` for room; `None`
    /// when there was none.
    pub async fn take(&self, bytes: usize) -> Option<Charge> {
        let n = self.clamp(bytes);
        if n == 0 {
            return Some(Charge::default());
        }
        let sem = self.sem.clone();
        match tokio::time::timeout(self.wait, sem.acquire_many_owned(n)).await {
            Ok(Ok(p)) => Some(Charge(Some(p))),
            _ => {
                tracing::warn!(bytes, "memory budget (limits.memory-in-flight) exhausted");
                None
            }
        }
    }

    /// Grows `charge` to cover `bytes` without waiting; false when the
    /// budget has no room for it.
    pub fn grow(&self, charge: &mut Charge, bytes: usize) -> bool {
        let want = self.clamp(bytes) as usize;
        let have = charge.bytes();
        if want <= have {
            return true;
        }
        match self
            .sem
            .clone()
            .try_acquire_many_owned((want - have) as u32)
        {
            Ok(p) => {
                charge.add(p);
                true
            }
            Err(_) => false,
        }
    }

    /// Grows `charge` to cover `bytes`, waiting up to `limits.memory-wait`
    /// for room; false when there was none.
    pub async fn grow_wait(&self, charge: &mut Charge, bytes: usize) -> bool {
        if self.grow(charge, bytes) {
            return true;
        }
        let more = self.clamp(bytes) as usize - charge.bytes();
        match self.take(more).await {
            Some(Charge(Some(p))) => {
                charge.add(p);
                true
            }
            Some(Charge(None)) => true,
            None => false,
        }
    }

    /// Bytes free now.
    pub fn available(&self) -> usize {
        self.sem.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn charges_are_bounded_and_given_back() {
        let b = MemoryBudget::new(100, 0);
        let mut c = Charge::default();
        assert!(b.grow(&mut c, 60));
        assert_eq!(b.available(), 40);
        let mut other = Charge::default();
        assert!(!b.grow(&mut other, 50), "over the budget");
        assert!(b.take(50).await.is_none(), "no room, no wait");
        assert!(b.grow(&mut c, 90));
        assert_eq!((c.bytes(), b.available()), (90, 10));
        // A message larger than the budget takes all of it.
        drop(c);
        let all = b.take(1_000).await.unwrap();
        assert_eq!(all.bytes(), 100);
        drop(all);
        assert_eq!(b.available(), 100);
    }
}
