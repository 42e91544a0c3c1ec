//! The classifier's token databases in the store: the server's (scope 0)
//! and one per account (scope = account id), each a count per token and
//! two message totals.
//!
//! Keys: `spam/t<scope><token>` → spam and ham counts (two u32, big
//! endian); `spam/n<scope>` → the totals; `spam/l<account><email>` → what
//! a stored message was learnt as (`s` or `h`), so that learning it again
//! changes nothing and learning the other way first forgets. Those marks
//! stay when the message is deleted (a key of 18 bytes each) until the
//! account is.
//!
//! Scoring reads a copy in memory, loaded per scope on first use. Each
//! learning transaction writes counts and, once durable, puts the same
//! absolute values into the loaded copies (the load itself runs as a
//! transaction), so the copy never drifts from the store whatever order
//! they run in. The totals of a scope not loaded (an account that has
//! learnt too little for its own database to count) are kept the same
//! way once read, so scoring asks the store for them once per scope.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use super::bayes::{Counts, Model};
use crate::store::{Store, StoreError, Txn};

const TOKEN: &[u8] = b"spam/t";
const TOTALS: &[u8] = b"spam/n";
const LEARNT: &[u8] = b"spam/l";

/// The server-wide database's scope.
pub const GLOBAL: u32 = 0;

fn k_token(scope: u32, token: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(18);
    k.extend_from_slice(TOKEN);
    k.extend_from_slice(&scope.to_be_bytes());
    k.extend_from_slice(&token.to_be_bytes());
    k
}

fn k_scope(prefix: &[u8], scope: u32) -> Vec<u8> {
    let mut k = prefix.to_vec();
    k.extend_from_slice(&scope.to_be_bytes());
    k
}

fn k_learnt(account: u32, email: u64) -> Vec<u8> {
    let mut k = k_scope(LEARNT, account);
    k.extend_from_slice(&email.to_be_bytes());
    k
}

fn pair(v: &[u8]) -> (u32, u32) {
    let a = v
        .get(0..4)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u32::from_be_bytes);
    let b = v
        .get(4..8)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u32::from_be_bytes);
    (a, b)
}

fn encode(a: u32, b: u32) -> Vec<u8> {
    let mut v = a.to_be_bytes().to_vec();
    v.extend_from_slice(&b.to_be_bytes());
    v
}

/// What a learning call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Learnt {
    /// Counted as asked.
    Done,
    /// The message had been learnt the other way: that was forgotten first.
    Relearnt,
    /// It had already been learnt this way: nothing changed.
    Already,
}

/// Absolute values written by one transaction, for the loaded copies.
#[derive(Default)]
struct Written {
    tokens: Vec<(u32, u64, Counts)>,
    totals: Vec<(u32, u32, u32)>,
}

type Models = Arc<Mutex<HashMap<u32, Arc<RwLock<Model>>>>>;
/// Spam and ham totals by scope, as read or last written.
type Totals = Arc<Mutex<HashMap<u32, (u32, u32)>>>;

#[derive(Clone)]
pub struct TokenDb {
    store: Store,
    models: Models,
    totals: Totals,
}

impl TokenDb {
    pub fn new(store: Store) -> Self {
        TokenDb {
            store,
            models: Arc::default(),
            totals: Arc::default(),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The database of `scope`, loaded from the store on first use.
    pub async fn model(&self, scope: u32) -> Result<Arc<RwLock<Model>>, StoreError> {
        if let Some(m) = self.models.lock().expect("spam models").get(&scope) {
            return Ok(m.clone());
        }
        let models = self.models.clone();
        self.store
            .transact(move |txn| {
                if let Some(m) = models.lock().expect("spam models").get(&scope) {
                    return Ok(m.clone());
                }
                let mut model = Model::default();
                if let Some(v) = txn.get(&k_scope(TOTALS, scope))? {
                    (model.spam_messages, model.ham_messages) = pair(&v);
                }
                for (k, v) in txn.scan_prefix(&k_scope(TOKEN, scope))? {
                    let token = k
                        .get(k.len() - 8..)
                        .and_then(|b| b.try_into().ok())
                        .map_or(0, u64::from_be_bytes);
                    let (spam, ham) = pair(&v);
                    model.tokens.insert(token, Counts { spam, ham });
                }
                let m = Arc::new(RwLock::new(model));
                models.lock().expect("spam models").insert(scope, m.clone());
                Ok(m)
            })
            .await
    }

    /// How many spam and ham messages `scope` has learnt.
    pub async fn totals(&self, scope: u32) -> Result<(u32, u32), StoreError> {
        // A loaded copy is exact (see the module's notes): no store read.
        if let Some(m) = self.models.lock().expect("spam models").get(&scope) {
            let m = m.read().expect("spam model");
            return Ok((m.spam_messages, m.ham_messages));
        }
        if let Some(t) = self.totals.lock().expect("spam totals").get(&scope) {
            return Ok(*t);
        }
        // Read and kept in one transaction, ordered with the learning
        // ones (whose totals replace it once they are durable).
        let totals = self.totals.clone();
        self.store
            .transact(move |txn| {
                let t = txn
                    .get(&k_scope(TOTALS, scope))?
                    .map_or((0, 0), |v| pair(&v));
                totals.lock().expect("spam totals").insert(scope, t);
                Ok(t)
            })
            .await
    }

    /// Learns a message's `tokens` as spam or ham into each of `scopes`.
    /// With `stored` (account, email), a message learnt before is not
    /// counted twice, and one learnt the other way is forgotten first.
    pub async fn learn(
        &self,
        scopes: Vec<u32>,
        stored: Option<(u32, u64)>,
        tokens: Vec<u64>,
        spam: bool,
    ) -> Result<Learnt, StoreError> {
        let (models, totals) = (self.models.clone(), self.totals.clone());
        self.store
            .transact(move |txn| {
                let mut outcome = Learnt::Done;
                let mut written = Written::default();
                if let Some((acct, email)) = stored {
                    let key = k_learnt(acct, email);
                    match txn.get(&key)?.as_deref() {
                        Some(b"s") if spam => return Ok(Learnt::Already),
                        Some(b"h") if !spam => return Ok(Learnt::Already),
                        Some(_) => {
                            for s in &scopes {
                                count(txn, *s, &tokens, !spam, -1, &mut written)?;
                            }
                            outcome = Learnt::Relearnt;
                        }
                        None => {}
                    }
                    txn.put(key, if spam { b"s".to_vec() } else { b"h".to_vec() });
                }
                for s in &scopes {
                    count(txn, *s, &tokens, spam, 1, &mut written)?;
                }
                txn.after_commit(move || apply(&models, &totals, written));
                Ok(outcome)
            })
            .await
    }

    /// Drops an account's database (the account is deleted).
    pub async fn drop_scope(&self, scope: u32) -> Result<(), StoreError> {
        let (models, totals) = (self.models.clone(), self.totals.clone());
        self.store
            .transact(move |txn| {
                for prefix in [TOKEN, TOTALS, LEARNT] {
                    for (k, _) in txn.scan_prefix(&k_scope(prefix, scope))? {
                        txn.delete(k);
                    }
                }
                txn.after_commit(move || {
                    models.lock().expect("spam models").remove(&scope);
                    totals.lock().expect("spam totals").remove(&scope);
                });
                Ok(())
            })
            .await
    }
}

/// Adds `delta` (1 or -1) to the counts of `tokens` and a message total.
fn count(
    txn: &mut Txn<'_>,
    scope: u32,
    tokens: &[u64],
    spam: bool,
    delta: i64,
    written: &mut Written,
) -> Result<(), StoreError> {
    let step = |v: u32| -> u32 {
        if delta > 0 {
            v.saturating_add(1)
        } else {
            v.saturating_sub(1)
        }
    };
    for t in tokens {
        let key = k_token(scope, *t);
        let (mut s, mut h) = txn.get(&key)?.map_or((0, 0), |v| pair(&v));
        if spam {
            s = step(s);
        } else {
            h = step(h);
        }
        if s == 0 && h == 0 {
            txn.delete(key);
        } else {
            txn.put(key, encode(s, h));
        }
        written.tokens.push((scope, *t, Counts { spam: s, ham: h }));
    }
    let key = k_scope(TOTALS, scope);
    let (mut s, mut h) = txn.get(&key)?.map_or((0, 0), |v| pair(&v));
    if spam {
        s = step(s);
    } else {
        h = step(h);
    }
    txn.put(key, encode(s, h));
    written.totals.retain(|(sc, _, _)| *sc != scope);
    written.totals.push((scope, s, h));
    Ok(())
}

fn apply(models: &Models, totals: &Totals, written: Written) {
    let models = models.lock().expect("spam models");
    let mut kept = totals.lock().expect("spam totals");
    for (scope, token, c) in written.tokens {
        if let Some(m) = models.get(&scope) {
            let mut m = m.write().expect("spam model");
            if c == Counts::default() {
                m.tokens.remove(&token);
            } else {
                m.tokens.insert(token, c);
            }
        }
    }
    for (scope, s, h) in written.totals {
        if let Some(t) = kept.get_mut(&scope) {
            *t = (s, h);
        }
        if let Some(m) = models.get(&scope) {
            let mut m = m.write().expect("spam model");
            m.spam_messages = s;
            m.ham_messages = h;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn db() -> (tempfile::TempDir, TokenDb) {
        let dir = tempfile::tempdir().unwrap();
        let b: Arc<dyn crate::store::KvBackend> =
            Arc::new(crate::store::sqlite::SqliteBackend::open(&dir.path().join("s.db")).unwrap());
        (dir, TokenDb::new(Store::new(b)))
    }

    #[tokio::test]
    async fn learning_is_stored_and_mirrored() {
        let (_d, db) = db().await;
        // Loaded before learning: kept up to date after each commit.
        let early = db.model(GLOBAL).await.unwrap();
        assert_eq!(
            db.learn(vec![GLOBAL, 7], Some((7, 1)), vec![1, 2], true)
                .await
                .unwrap(),
            Learnt::Done
        );
        assert_eq!(
            db.learn(vec![GLOBAL, 7], Some((7, 1)), vec![1, 2], true)
                .await
                .unwrap(),
            Learnt::Already
        );
        db.learn(vec![GLOBAL], None, vec![2, 3], false)
            .await
            .unwrap();
        {
            let m = early.read().unwrap();
            assert_eq!((m.spam_messages, m.ham_messages), (1, 1));
            assert_eq!(m.tokens[&2], Counts { spam: 1, ham: 1 });
        }
        // Loaded afterwards: the same from the store.
        let user = db.model(7).await.unwrap();
        assert_eq!(user.read().unwrap().tokens[&1], Counts { spam: 1, ham: 0 });
        assert_eq!(db.totals(7).await.unwrap(), (1, 0));
        // The user changes their mind: spam forgotten, ham learnt.
        assert_eq!(
            db.learn(vec![GLOBAL, 7], Some((7, 1)), vec![1, 2], false)
                .await
                .unwrap(),
            Learnt::Relearnt
        );
        assert_eq!(db.totals(7).await.unwrap(), (0, 1));
        assert_eq!(db.totals(GLOBAL).await.unwrap(), (0, 2));
        assert_eq!(early.read().unwrap().tokens[&2], Counts { spam: 0, ham: 2 });
        assert_eq!(user.read().unwrap().tokens[&1], Counts { spam: 0, ham: 1 });
        db.drop_scope(7).await.unwrap();
        assert_eq!(db.totals(7).await.unwrap(), (0, 0));
        assert!(db.model(7).await.unwrap().read().unwrap().tokens.is_empty());
    }

    #[tokio::test]
    async fn totals_of_a_scope_not_loaded_follow_learning() {
        let (_dir, db) = db().await;
        assert_eq!(db.totals(9).await.unwrap(), (0, 0));
        // Kept after that read, and replaced by what learning writes.
        db.learn(vec![9], None, vec![1], true).await.unwrap();
        assert_eq!(db.totals(9).await.unwrap(), (1, 0));
        db.learn(vec![9], None, vec![2], false).await.unwrap();
        assert_eq!(db.totals(9).await.unwrap(), (1, 1));
        // A second handle on the same store reads the same from it.
        let other = TokenDb::new(db.store().clone());
        assert_eq!(other.totals(9).await.unwrap(), (1, 1));
        db.drop_scope(9).await.unwrap();
        assert_eq!(db.totals(9).await.unwrap(), (0, 0));
    }
}
