//! What never changes about a message and what lists sort on: arrival
//! time, size, thread and sent date, kept in memory once read.
//!
//! A message's metadata record is written once, when the message is
//! created, and removed with it; ids are never reused (nor are account
//! ids), so a remembered fact can only become unused, never wrong. That
//! spares JMAP's Email/query and Thread/get decoding every record of a
//! large account on each call: the first call reads them, later calls
//! read only what arrived since.
//!
//! The memory is bounded by `jmap.facts-cache-messages` (messages over
//! all accounts); past it, whole accounts are forgotten, least recently
//! used first, and read again when asked for.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{EmailMeta, MailStore, Result};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EmailFacts {
    pub received_at: i64,
    pub size: u64,
    pub thread: u64,
    pub sent_at: Option<i64>,
}

impl From<&EmailMeta> for EmailFacts {
    fn from(m: &EmailMeta) -> Self {
        EmailFacts {
            received_at: m.received_at,
            size: m.size,
            thread: m.thread,
            sent_at: m.meta.sent_at,
        }
    }
}

type ByEmail = HashMap<u64, EmailFacts>;

#[derive(Default)]
pub(crate) struct FactsCache {
    /// Per account: when it was last asked for, and its facts.
    accounts: Mutex<HashMap<u32, (u64, ByEmail)>>,
    clock: std::sync::atomic::AtomicU64,
    limit: std::sync::atomic::AtomicUsize,
}

impl FactsCache {
    pub(crate) fn new(limit: usize) -> Self {
        FactsCache {
            limit: limit.into(),
            ..Default::default()
        }
    }

    /// A new limit; what was remembered is forgotten.
    pub(crate) fn set_limit(&self, limit: usize) {
        self.limit
            .store(limit, std::sync::atomic::Ordering::Relaxed);
        self.accounts.lock().expect("lock").clear();
    }

    /// The facts of `emails` that are remembered (`None` where not), in
    /// their order.
    fn known(&self, acct: u32, emails: &[u64]) -> Vec<Option<EmailFacts>> {
        let tick = self
            .clock
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut all = self.accounts.lock().expect("lock");
        match all.get_mut(&acct) {
            Some((used, m)) => {
                *used = tick;
                emails.iter().map(|e| m.get(e).copied()).collect()
            }
            None => vec![None; emails.len()],
        }
    }

    fn remember(&self, acct: u32, learnt: Vec<(u64, EmailFacts)>) {
        let limit = self.limit.load(std::sync::atomic::Ordering::Relaxed);
        if limit == 0 || learnt.is_empty() {
            return;
        }
        let tick = self
            .clock
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut all = self.accounts.lock().expect("lock");
        let entry = all.entry(acct).or_default();
        entry.0 = tick;
        entry.1.extend(learnt);
        // An account larger than the whole limit is not kept (the others
        // stay).
        if entry.1.len() > limit {
            all.remove(&acct);
            return;
        }
        // Over the limit: forget the least recently used other accounts.
        loop {
            let total: usize = all.values().map(|(_, m)| m.len()).sum();
            if total <= limit || all.len() <= 1 {
                break;
            }
            let oldest = all
                .iter()
                .filter(|(a, _)| **a != acct)
                .min_by_key(|(_, (used, _))| *used)
                .map(|(a, _)| *a);
            match oldest {
                Some(a) => {
                    all.remove(&a);
                }
                None => break,
            }
        }
    }

    /// Messages remembered over all accounts.
    fn len(&self) -> usize {
        let all = self.accounts.lock().expect("lock");
        all.values().map(|(_, m)| m.len()).sum()
    }
}

impl MailStore {
    /// The facts of `emails`, in their order. Callers ask for messages
    /// they found in a mailbox; one destroyed since may still have its
    /// (then unused) facts, or `None`.
    pub async fn email_facts(&self, acct: u32, emails: &[u64]) -> Result<Vec<Option<EmailFacts>>> {
        let mut out = self.facts.known(acct, emails);
        let missing: Vec<u64> = emails
            .iter()
            .zip(&out)
            .filter(|(_, f)| f.is_none())
            .map(|(e, _)| *e)
            .collect();
        if missing.is_empty() {
            return Ok(out);
        }
        let metas = self.email_metas(acct, &missing).await?;
        let learnt: Vec<(u64, EmailFacts)> = metas
            .iter()
            .map(|(e, m)| (*e, EmailFacts::from(m)))
            .collect();
        for (e, f) in emails.iter().zip(out.iter_mut()) {
            if f.is_none() {
                *f = metas.get(e).map(EmailFacts::from);
            }
        }
        self.facts.remember(acct, learnt);
        Ok(out)
    }

    /// How many messages' facts are in memory, over all accounts.
    pub fn facts_remembered(&self) -> usize {
        self.facts.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(n: i64) -> EmailFacts {
        EmailFacts {
            received_at: n,
            size: n as u64,
            thread: 1,
            sent_at: None,
        }
    }

    #[test]
    fn bounded_by_least_recently_used_account() {
        let c = FactsCache::new(4);
        c.remember(1, vec![(1, f(1)), (2, f(2))]);
        c.remember(2, vec![(1, f(10)), (2, f(20))]);
        assert_eq!(c.len(), 4);
        // Account 1 asked for again: account 2 is the older one now.
        assert_eq!(c.known(1, &[2, 3]), vec![Some(f(2)), None]);
        c.remember(3, vec![(7, f(7))]);
        assert_eq!(c.known(2, &[1]), vec![None]);
        assert_eq!(c.known(1, &[1]), vec![Some(f(1))]);
        assert_eq!(c.len(), 3);
        // One account bigger than the limit is not kept at all, and the
        // others stay.
        c.remember(4, (0..5).map(|i| (i, f(i as i64))).collect());
        assert_eq!(c.known(4, &[0]), vec![None]);
        assert_eq!(c.len(), 3);
        assert_eq!(c.known(3, &[7]), vec![Some(f(7))]);
        // A limit of 0 keeps nothing.
        let off = FactsCache::new(0);
        off.remember(1, vec![(1, f(1))]);
        assert_eq!(off.known(1, &[1]), vec![None]);
    }
}
