//! What changed among the directory's accounts and groups, for JMAP
//! Principal/changes (RFC 9670 §2, RFC 8620 §5.2): every write that
//! makes, edits or removes one moves the principal state and logs the
//! change under it, in the same transaction as the write.

use super::{key, parse, Directory, Group, Result, GROUP};
use crate::store::changelog::{self, Op};
use crate::store::{StoreError, Txn};

const STATE_KEY: &[u8] = b"c/principal-state";

fn k_log(state: u64) -> Vec<u8> {
    let mut k = b"c/principal-log#".to_vec();
    k.extend_from_slice(&state.to_be_bytes());
    k
}

fn state_in(v: Option<Vec<u8>>) -> u64 {
    v.and_then(|v| v.try_into().ok().map(u64::from_be_bytes))
        .unwrap_or(0)
}

/// Inside a directory write: account or group `id` was made, changed or
/// removed.
pub(super) fn log(txn: &mut Txn<'_>, id: u32, op: Op) -> std::result::Result<(), StoreError> {
    let n = state_in(txn.get(STATE_KEY)?) + 1;
    txn.put(STATE_KEY.to_vec(), n.to_be_bytes().to_vec());
    txn.put(k_log(n), op.entry(u64::from(id)));
    Ok(())
}

impl Directory {
    /// The principal state: it moves with every account or group change.
    pub async fn principal_state(&self) -> Result<u64> {
        Ok(state_in(self.store.get(STATE_KEY.to_vec()).await?))
    }

    /// The changes after state `since` up to `until`: (state, what, id).
    /// `None` when they cannot be replayed.
    pub async fn principal_log(
        &self,
        since: u64,
        until: u64,
    ) -> Result<Option<Vec<(u64, Op, u64)>>> {
        Ok(changelog::read(&self.store, k_log, since, until).await?)
    }

    pub async fn group_by_id(&self, id: u32) -> Result<Option<Group>> {
        match self.store.get(key(GROUP, &id.to_be_bytes())).await? {
            Some(v) => Ok(Some(parse(&v)?)),
            None => Ok(None),
        }
    }
}
