//! The text conditions of Email/query (RFC 8621 §4.4.1: text, from, to,
//! cc, bcc, subject, body, header), answered as IMAP SEARCH answers its
//! text keys: the full-text index first, the message's content where the
//! index cannot vouch (needles shorter than three characters, messages
//! not indexed yet or only partly, header conditions the index finds in
//! all header text). Both use `mail::fts`'s search text, so they agree.

use std::collections::{HashMap, HashSet};

use super::email_filter::{Field, TextCond};
use crate::mail::fts::{header_contains, Scope, SearchText, MIN_NEEDLE};
use crate::mail::MailStore;

/// The index's answers for one query's text conditions.
#[derive(Default)]
pub struct TextIndex {
    /// Hits per looked-up condition; a condition without an entry is not
    /// answered by the index.
    hits: HashMap<(Scope, String), HashSet<u64>>,
    /// Messages the index does not (fully) hold.
    unsure: HashSet<u64>,
}

fn lookup(t: &TextCond) -> Option<(Scope, String)> {
    let scope = match &t.field {
        Field::Any => Scope::Both,
        Field::Body => Scope::Body,
        Field::Subject => Scope::Subject,
        Field::Header(_) => Scope::Headers,
    };
    (t.needle.chars().count() >= MIN_NEEDLE).then(|| (scope, t.needle.clone()))
}

/// Whether an index hit is a match without reading the message: the
/// index's fields are exactly what [`check`] compares, except for one
/// header field, which the index finds among all headers.
fn exact(t: &TextCond) -> bool {
    match &t.field {
        Field::Any | Field::Body => true,
        Field::Subject => !t.needle.contains('\n'),
        Field::Header(_) => false,
    }
}

impl TextIndex {
    /// Looks `conds` up in the account's index. Without an index, or if
    /// it fails, nothing is answered and every message is read.
    pub async fn lookup(mail: &MailStore, acct: u32, conds: &[&TextCond]) -> TextIndex {
        let wanted: Vec<(Scope, String)> = conds
            .iter()
            .filter_map(|t| lookup(t))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        match mail.fts_lookup(acct, wanted.clone()).await {
            Some((hits, unsure)) => TextIndex {
                hits: wanted.into_iter().zip(hits).collect(),
                unsure,
            },
            None => TextIndex::default(),
        }
    }

    /// The index's verdict on `t` for `email`, if it has one.
    pub fn decide(&self, email: u64, t: &TextCond) -> Option<bool> {
        if self.unsure.contains(&email) {
            return None;
        }
        let hits = self.hits.get(&lookup(t)?)?;
        if !hits.contains(&email) {
            Some(false)
        } else if exact(t) {
            Some(true)
        } else {
            None
        }
    }
}

/// `t` decided on the message's content (`text` is its search text).
pub fn check(raw: &[u8], text: &SearchText, t: &TextCond) -> bool {
    let n = t.needle.as_str();
    match &t.field {
        Field::Any => text.headers.contains(n) || text.body.contains(n),
        Field::Body => text.body.contains(n),
        Field::Subject => text.subject.contains(n),
        Field::Header(name) => header_contains(raw, name, n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::fts::search_text;

    fn cond(field: Field, needle: &str) -> TextCond {
        TextCond {
            field,
            needle: needle.into(),
        }
    }

    #[test]
    fn content_checks() {
        let raw = b"From: =?utf-8?q?J=C3=B6rg?= <jorg@example.org>\r\nTo: b@example.net\r\nSubject: Quarterly report\r\nX-Tag: blue\r\n\r\nThe numbers are in.\r\n";
        let text = search_text(raw);
        assert!(check(raw, &text, &cond(Field::Any, "numbers")));
        assert!(check(raw, &text, &cond(Field::Any, "quarterly")));
        assert!(check(raw, &text, &cond(Field::Body, "numbers")));
        assert!(!check(raw, &text, &cond(Field::Body, "quarterly")));
        assert!(check(raw, &text, &cond(Field::Subject, "report")));
        assert!(check(
            raw,
            &text,
            &cond(Field::Header("from".into()), "jörg")
        ));
        assert!(!check(
            raw,
            &text,
            &cond(Field::Header("to".into()), "jörg")
        ));
        assert!(check(raw, &text, &cond(Field::Header("x-tag".into()), "")));
        assert!(!check(
            raw,
            &text,
            &cond(Field::Header("x-other".into()), "")
        ));
    }

    #[test]
    fn index_verdicts() {
        let t = cond(Field::Body, "numbers");
        let h = cond(Field::Header("from".into()), "jorg");
        let short = cond(Field::Body, "nu");
        let mut ix = TextIndex::default();
        ix.hits.insert(lookup(&t).unwrap(), HashSet::from([1, 2]));
        ix.hits.insert(lookup(&h).unwrap(), HashSet::from([1]));
        ix.unsure.insert(2);
        assert_eq!(ix.decide(1, &t), Some(true));
        assert_eq!(ix.decide(3, &t), Some(false));
        // Not (fully) indexed: read it.
        assert_eq!(ix.decide(2, &t), None);
        // A header hit may be in another field: read it; a miss is final.
        assert_eq!(ix.decide(1, &h), None);
        assert_eq!(ix.decide(3, &h), Some(false));
        assert_eq!(ix.decide(1, &short), None);
    }
}
