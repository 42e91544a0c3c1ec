//! Per-object change logs kept beside small object sets (JMAP /changes,
//! RFC 8620 §5.2): every change moves a counter, the state, and writes
//! one entry under the state it made, holding what happened and to which
//! object. The mail store's records and the directory's principals use
//! it; the mail itself has its own log (`mail::Change`).

/// What a logged change did to its object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Created,
    Updated,
    Destroyed,
}

impl Op {
    /// The entry's value: the op and the object's id.
    pub fn entry(self, id: u64) -> Vec<u8> {
        let mut v = vec![match self {
            Op::Created => b'c',
            Op::Updated => b'u',
            Op::Destroyed => b'd',
        }];
        v.extend_from_slice(&id.to_be_bytes());
        v
    }

    fn from_byte(b: u8) -> Option<Op> {
        match b {
            b'c' => Some(Op::Created),
            b'u' => Some(Op::Updated),
            b'd' => Some(Op::Destroyed),
            _ => None,
        }
    }
}

/// Reads the entries after state `since` up to `until` of a log whose
/// entry keys `key(state)` makes: `None` when they cannot be replayed.
pub async fn read(
    store: &super::Store,
    key: impl Fn(u64) -> Vec<u8>,
    since: u64,
    until: u64,
) -> super::Result<Option<Vec<(u64, Op, u64)>>> {
    if since >= until {
        return Ok(Some(Vec::new()));
    }
    let rows = store
        .scan(key(since + 1), key(until + 1), (until - since) as usize)
        .await?;
    Ok(entries(rows, since, until))
}

/// The entries of a log scanned from state `since + 1` up to `until`
/// (keys ending in the state, big-endian): (state, op, id) in order.
/// `None` when a state in between left no entry (a change made before
/// the log existed, or a clearing): the range cannot be replayed.
pub fn entries(
    rows: Vec<(Vec<u8>, Vec<u8>)>,
    since: u64,
    until: u64,
) -> Option<Vec<(u64, Op, u64)>> {
    let mut out = Vec::with_capacity(rows.len());
    for (k, v) in rows {
        let state = k
            .get(k.len().checked_sub(8)?..)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes)?;
        let op = v.first().copied().and_then(Op::from_byte)?;
        let id = v
            .get(1..9)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes)?;
        // Contiguous: every state after `since` has its entry.
        if state != since + 1 + out.len() as u64 {
            return None;
        }
        out.push((state, op, id));
    }
    (out.len() as u64 == until.saturating_sub(since)).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(state: u64, op: Op, id: u64) -> (Vec<u8>, Vec<u8>) {
        let mut k = b"x#".to_vec();
        k.extend_from_slice(&state.to_be_bytes());
        (k, op.entry(id))
    }

    #[test]
    fn replays_only_contiguous_ranges() {
        let rows = vec![row(4, Op::Created, 9), row(5, Op::Destroyed, 9)];
        assert_eq!(
            entries(rows.clone(), 3, 5),
            Some(vec![(4, Op::Created, 9), (5, Op::Destroyed, 9)])
        );
        // State 4 is missing from the range 2..5.
        assert_eq!(entries(rows.clone(), 2, 5), None);
        // The log stops short of the state.
        assert_eq!(entries(rows[..1].to_vec(), 3, 5), None);
        assert_eq!(entries(vec![(b"x".to_vec(), b"c".to_vec())], 0, 1), None);
    }
}
