//! Mail store tests on a real RocksDB store.

use std::sync::Arc;

use super::ingest::{Folder, IngestHook, IngestRequest, IngestTarget};
use super::mime::Meta;
use super::{FlagOp, MailError, MailStore};
use crate::store::{rocks::RocksBackend, BlobStore, KvBackend, Store};

fn mail_store(dir: &std::path::Path) -> MailStore {
    let b: Arc<dyn KvBackend> = Arc::new(RocksBackend::open(&dir.join("kv")).unwrap());
    MailStore::new(
        Store::new(b),
        BlobStore::new(&dir.join("blobs"), 1024).unwrap(),
    )
}

fn msg(subject: &str, extra: &str) -> Vec<u8> {
    format!("Subject: {subject}\r\n{extra}\r\nbody of {subject}\r\n").into_bytes()
}

fn req(raw: Vec<u8>, accounts: &[u32]) -> IngestRequest {
    IngestRequest {
        raw,
        targets: accounts.iter().map(|&a| IngestTarget::inbox(a)).collect(),
        received_at: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_to_several_accounts_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let m = mail_store(dir.path());
    let out = m.ingest(req(msg("hi", ""), &[1, 2])).await.unwrap();
    assert_eq!(out.len(), 2);
    for o in &out {
        let inbox = m
            .mailbox_by_name(o.account, "inbox")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(inbox.id, o.mailbox);
        assert_eq!(o.uid, 1);
        let uids = m.uids(o.account, inbox.id).await.unwrap();
        assert_eq!(uids.len(), 1);
        let meta = m
            .email_meta(o.account, uids[0].email)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(m.email_raw(&meta).await.unwrap(), msg("hi", ""));
        assert_eq!(m.account_usage(o.account).await.unwrap().messages, 1);
    }
    // Both accounts share one blob (content addressed).
    let a = m.email_meta(1, out[0].email).await.unwrap().unwrap();
    let b = m.email_meta(2, out[1].email).await.unwrap().unwrap();
    assert_eq!(a.blob, b.blob);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_failure_stores_nothing_for_anyone() {
    let dir = tempfile::tempdir().unwrap();
    let m = mail_store(dir.path());
    let mut r = req(msg("big", ""), &[1, 2]);
    r.targets[1].quota_bytes = 10;
    assert!(matches!(m.ingest(r).await, Err(MailError::OverQuota)));
    assert_eq!(
        m.account_usage(1).await.unwrap().messages,
        0,
        "atomic across recipients"
    );
    let mut r = req(msg("count", ""), &[1]);
    r.targets[0].quota_messages = 1;
    m.ingest(r).await.unwrap();
    let mut r = req(msg("count2", ""), &[1]);
    r.targets[0].quota_messages = 1;
    assert!(matches!(m.ingest(r).await, Err(MailError::OverQuota)));
}

struct ToJunk;

impl IngestHook for ToJunk {
    fn name(&self) -> &str {
        "to-junk"
    }
    fn on_ingest(&self, _raw: &[u8], meta: &Meta, t: &mut IngestTarget) -> Result<(), String> {
        if meta.subject.contains("SPAM") {
            t.folder = Folder::Role("junk".into());
            t.flags.push("$Junk".into());
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_can_refile_and_flag() {
    let dir = tempfile::tempdir().unwrap();
    let m = mail_store(dir.path()).with_hooks(vec![Arc::new(ToJunk)]);
    m.ingest(req(msg("SPAM offer", ""), &[7])).await.unwrap();
    m.ingest(req(msg("lunch", ""), &[7])).await.unwrap();
    let junk = m.mailbox_by_name(7, "Junk").await.unwrap().unwrap();
    let inbox = m.mailbox_by_name(7, "INBOX").await.unwrap().unwrap();
    let j = m.uids(7, junk.id).await.unwrap();
    assert_eq!(j.len(), 1);
    assert_eq!(j[0].flags, vec!["$Junk".to_string()]);
    assert_eq!(m.uids(7, inbox.id).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threads_follow_references_and_subject() {
    let dir = tempfile::tempdir().unwrap();
    let m = mail_store(dir.path());
    let first = m
        .ingest(req(msg("Plans", "Message-ID: <a@x>\r\n"), &[1]))
        .await
        .unwrap()[0]
        .email;
    let reply = m
        .ingest(req(
            msg("Re: Plans", "Message-ID: <b@x>\r\nIn-Reply-To: <a@x>\r\n"),
            &[1],
        ))
        .await
        .unwrap()[0]
        .email;
    let other = m
        .ingest(req(
            msg("Different", "Message-ID: <c@x>\r\nReferences: <a@x>\r\n"),
            &[1],
        ))
        .await
        .unwrap()[0]
        .email;
    let t = |e| {
        let m = m.clone();
        async move { m.email_meta(1, e).await.unwrap().unwrap().thread }
    };
    assert_eq!(t(first).await, t(reply).await);
    assert_ne!(
        t(first).await,
        t(other).await,
        "a reference with another subject starts a new thread"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_delivery_and_flag_changes_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let m = mail_store(dir.path());
    m.ingest(req(msg("seed", ""), &[1])).await.unwrap();
    let inbox = m.mailbox_by_name(1, "INBOX").await.unwrap().unwrap().id;
    let mut tasks = Vec::new();
    for i in 0..100 {
        let m1 = m.clone();
        tasks.push(tokio::spawn(async move {
            m1.ingest(req(msg(&format!("m{i}"), ""), &[1]))
                .await
                .unwrap();
        }));
        let m2 = m.clone();
        tasks.push(tokio::spawn(async move {
            m2.store_flags(1, inbox, vec![1], FlagOp::Add, vec![format!("$k{i}")], None)
                .await
                .unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let uids = m.uids(1, inbox).await.unwrap();
    assert_eq!(uids.len(), 101);
    let list: Vec<u32> = uids.iter().map(|u| u.uid).collect();
    assert_eq!(
        list,
        (1..=101).collect::<Vec<u32>>(),
        "unique, gapless here, ascending"
    );
    assert_eq!(uids[0].flags.len(), 100, "no flag change lost");
    let mb = m.mailbox(1, inbox).await.unwrap().unwrap();
    assert_eq!(mb.uidnext, 102);
    assert!(uids.iter().all(|u| u.modseq <= mb.highest_modseq));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expunge_releases_blobs_and_quota() {
    let dir = tempfile::tempdir().unwrap();
    let m = mail_store(dir.path());
    let big = format!("Subject: big\r\n\r\n{}", "x".repeat(5000)).into_bytes();
    let o = m.ingest(req(big, &[1])).await.unwrap().remove(0);
    let meta = m.email_meta(1, o.email).await.unwrap().unwrap();
    m.store_flags(
        1,
        o.mailbox,
        vec![o.uid],
        FlagOp::Add,
        vec!["\\Deleted".into()],
        None,
    )
    .await
    .unwrap();
    assert_eq!(m.expunge(1, o.mailbox, None).await.unwrap(), vec![o.uid]);
    assert_eq!(m.account_usage(1).await.unwrap().used_bytes, 0);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(
        m.email_raw(&meta).await.is_err(),
        "the blob went with its last reference"
    );
}

#[test]
fn uid_entries_with_and_without_save_dates() {
    let key = super::k_uid(1, 2, 7);
    let flags = vec!["\\Seen".to_string(), "$Work".to_string()];
    let new = super::encode_uid_entry(9, 4, &flags, Some(1_700_000_000));
    let e = super::decode_uid_entry(&key, &new).unwrap();
    assert_eq!((e.uid, e.email, e.modseq), (7, 9, 4));
    assert_eq!(e.flags, flags);
    assert_eq!(e.saved, Some(1_700_000_000));
    // Entries written before save dates were kept.
    let old = super::encode_uid_entry(9, 4, &flags, None);
    let e = super::decode_uid_entry(&key, &old).unwrap();
    assert_eq!(e.flags, flags);
    assert_eq!(e.saved, None);
    // No flags, a save date.
    let e = super::decode_uid_entry(&key, &super::encode_uid_entry(1, 1, &[], Some(-5))).unwrap();
    assert!(e.flags.is_empty());
    assert_eq!(e.saved, Some(-5));
}

#[tokio::test]
async fn grants_are_mirrored_and_cleaned_up() {
    use super::acl::{Rights, ANYONE};
    let dir = tempfile::tempdir().unwrap();
    let m = mail_store(dir.path());
    for a in [1, 2, 3] {
        m.init_account(a).await.unwrap();
    }
    let p = m.create_mailbox(1, "Projects").await.unwrap();
    let q = m.create_mailbox(1, "Other").await.unwrap();
    m.set_grant(1, p.id, 2, Rights::parse("lr"), 1)
        .await
        .unwrap();
    m.set_grant(1, q.id, ANYONE, Rights::parse("l"), 1)
        .await
        .unwrap();
    let mb = m.mailbox(1, p.id).await.unwrap().unwrap();
    assert_eq!(mb.rights_of(1, 2).as_str(), "lr");
    assert_eq!(mb.rights_of(1, 1).as_str(), "lrswipkxtea");
    assert_eq!(mb.rights_of(1, 3).as_str(), "");
    let seen: Vec<(u32, u32, String)> = m
        .shared_with(2)
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.owner, s.mailbox, s.rights.as_str().to_string()))
        .collect();
    assert_eq!(seen, vec![(1, p.id, "lr".into()), (1, q.id, "l".into())]);
    // Its owner does not see its own mailboxes as shared.
    assert!(m.shared_with(1).await.unwrap().is_empty());
    // Empty rights remove the grant.
    m.set_grant(1, p.id, 2, Rights::parse(""), 1).await.unwrap();
    assert_eq!(m.shared_with(2).await.unwrap().len(), 1);
    m.set_grant(1, p.id, 3, Rights::parse("lrs"), 1)
        .await
        .unwrap();
    // Deleting the mailbox deletes its grants' mirrors.
    m.delete_mailbox(1, "Projects").await.unwrap();
    assert_eq!(
        m.shared_with(3).await.unwrap().len(),
        1,
        "only the anyone grant"
    );
    // Deleting a grantee removes what was granted to it.
    m.set_grant(1, q.id, 3, Rights::parse("lr"), 1)
        .await
        .unwrap();
    m.delete_account(3).await.unwrap();
    let q = m.mailbox(1, q.id).await.unwrap().unwrap();
    assert!(q.acl.iter().all(|g| g.who != 3), "{:?}", q.acl);
    // Deleting the owner removes its grants' mirrors.
    m.delete_account(1).await.unwrap();
    assert!(m.shared_with(2).await.unwrap().is_empty());
}

#[tokio::test]
async fn private_annotations_follow_their_mailbox() {
    use super::acl::{Rights, ANYONE};
    let dir = tempfile::tempdir().unwrap();
    let m = mail_store(dir.path());
    for a in [1, 2, 3] {
        m.init_account(a).await.unwrap();
    }
    let a = m.create_mailbox(1, "A").await.unwrap();
    let b = m.create_mailbox(1, "B").await.unwrap();
    for mb in [a.id, b.id] {
        m.set_grant(1, mb, ANYONE, Rights::parse("lr"), 1)
            .await
            .unwrap();
    }
    let set = |who: u32, mb: u32, entry: &str, v: &str| {
        let m = &m;
        let e = vec![(entry.to_string(), Some(v.to_string()))];
        async move { m.set_annotations(who, 1, mb, e, 10).await.unwrap() }
    };
    set(1, a.id, "/private/c", "one").await;
    set(2, a.id, "/private/c", "two").await;
    set(2, a.id, "/shared/c", "common").await;
    set(2, b.id, "/private/c", "two-b").await;
    set(3, b.id, "/private/c", "three-b").await;
    let pairs = |v: Vec<(String, String)>| {
        v.into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        pairs(m.annotations(2, 1, a.id).await.unwrap()),
        ["/private/c=two", "/shared/c=common"]
    );
    assert_eq!(
        pairs(m.annotations(1, 1, a.id).await.unwrap()),
        ["/private/c=one", "/shared/c=common"]
    );
    assert_eq!(
        pairs(m.annotations(3, 1, a.id).await.unwrap()),
        ["/shared/c=common"]
    );
    let readers = |m: &super::MailStore| {
        let store = m.store.clone();
        async move { store.scan_prefix(b"P".to_vec()).await.unwrap().len() }
    };
    assert_eq!(readers(&m).await, 3);
    // The mailbox goes: so do the readers' entries on it.
    m.delete_mailbox(1, "A").await.unwrap();
    assert_eq!(readers(&m).await, 2);
    // A reader goes: its entries too.
    m.delete_account(3).await.unwrap();
    assert_eq!(readers(&m).await, 1);
    // The owner goes: the rest.
    m.delete_account(1).await.unwrap();
    assert_eq!(readers(&m).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_uploads_expire_in_batches() {
    let dir = tempfile::tempdir().unwrap();
    let m = mail_store(dir.path());
    // More than one read batch (64) of uploads.
    for i in 0..70 {
        m.put_upload(1, "text/plain", format!("upload {i}").into_bytes())
            .await
            .unwrap();
    }
    let now = crate::core::unix_now();
    // Nothing is older than a minute ago.
    assert_eq!(m.expire_uploads(1, now - 60).await.unwrap(), 0);
    assert!(m.upload(1, 1).await.unwrap().is_some());
    // Another account's uploads are not touched.
    m.put_upload(2, "text/plain", b"theirs".to_vec())
        .await
        .unwrap();
    assert_eq!(m.expire_uploads(1, now + 60).await.unwrap(), 70);
    assert!(m.upload(1, 1).await.unwrap().is_none());
    assert!(m.upload(1, 70).await.unwrap().is_none());
    assert!(m.upload(2, 1).await.unwrap().is_some());
    assert_eq!(m.expire_uploads(1, now + 60).await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_quota_deletes_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let m = mail_store(dir.path());
    let put = |size: usize, quota: u64| {
        let m = &m;
        async move {
            let (id, _, gone) = m
                .put_upload_in_quota(1, "text/plain", vec![b'x'; size], quota)
                .await
                .unwrap();
            (id, gone)
        }
    };
    for _ in 0..5 {
        put(10, 1000).await;
    }
    assert_eq!(m.upload_bytes(1).await.unwrap(), 50);
    // 25 more must fit in 40: the four oldest go, in the same write.
    assert_eq!(put(25, 40).await, (6, 4));
    assert_eq!(m.upload_bytes(1).await.unwrap(), 35);
    assert!(m.upload(1, 4).await.unwrap().is_none());
    assert!(m.upload(1, 5).await.unwrap().is_some());
    assert_eq!(put(5, 40).await, (7, 0));
    // Expiry goes on from where the quota stopped.
    let later = crate::core::unix_now() + 60;
    assert_eq!(m.expire_uploads(1, later).await.unwrap(), 3);
    assert_eq!(m.upload_bytes(1).await.unwrap(), 0);
    // A deletion out of order (not the oldest) keeps the counter right,
    // and the quota steps over its gap.
    put(7, 1000).await;
    put(3, 1000).await;
    put(4, 1000).await;
    assert!(m.delete_upload(1, 9).await.unwrap());
    assert_eq!(m.upload_bytes(1).await.unwrap(), 11);
    assert_eq!(put(10, 14).await, (11, 1));
    assert!(m.upload(1, 8).await.unwrap().is_none());
    assert!(m.upload(1, 10).await.unwrap().is_some());
    assert_eq!(m.upload_bytes(1).await.unwrap(), 14);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_facts_match_the_records_and_survive_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let m = mail_store(dir.path());
    let mut ids = Vec::new();
    for i in 0..5 {
        let out = m
            .ingest(req(
                msg(
                    &format!("m{i}"),
                    "Date: Sun, 22 Nov 2026 06:00:00 +0000\r\n",
                ),
                &[1],
            ))
            .await
            .unwrap();
        ids.push(out[0].email);
    }
    for limit in [1_000_000, 2, 0] {
        m.set_facts_limit(limit);
        // Twice: the second answer may come from memory.
        for _ in 0..2 {
            let facts = m.email_facts(1, &ids).await.unwrap();
            let metas = m.email_metas(1, &ids).await.unwrap();
            for (e, f) in ids.iter().zip(&facts) {
                let meta = &metas[e];
                let f = f.expect("a live message has facts");
                assert_eq!(f.received_at, meta.received_at);
                assert_eq!(f.size, meta.size);
                assert_eq!(f.thread, meta.thread);
                assert_eq!(f.sent_at, meta.meta.sent_at);
                assert!(f.sent_at.is_some());
            }
        }
    }
    // Remembered facts are not held past the limit.
    m.set_facts_limit(3);
    m.email_facts(1, &ids).await.unwrap();
    assert_eq!(m.facts_remembered(), 0);
    m.email_facts(1, &ids[..3]).await.unwrap();
    assert_eq!(m.facts_remembered(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_mailboxes_replaces_memberships_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let m = mail_store(dir.path());
    let out = m.ingest(req(msg("moving", ""), &[1])).await.unwrap();
    let (email, inbox) = (out[0].email, out[0].mailbox);
    m.store_flags(
        1,
        inbox,
        vec![out[0].uid],
        FlagOp::Add,
        vec!["$Work".into()],
        None,
    )
    .await
    .unwrap();
    let a = m.create_mailbox(1, "A").await.unwrap().id;
    let b = m.create_mailbox(1, "B").await.unwrap().id;
    let before = m.account_usage(1).await.unwrap().state;
    assert!(m.set_mailboxes(1, email, vec![a, b]).await.unwrap());
    let st = m.email_state(1, email).await.unwrap().unwrap();
    let mut boxes: Vec<u32> = st.mailboxes.iter().map(|(mb, _)| *mb).collect();
    boxes.sort_unstable();
    assert_eq!(boxes, [a, b]);
    // One change, keywords kept in the new memberships.
    assert_eq!(m.account_usage(1).await.unwrap().state, before + 1);
    for mb in [a, b] {
        let mbox = m.mailbox(1, mb).await.unwrap().unwrap();
        let view = m.view(1, &mbox).await.unwrap();
        assert_eq!(view.len(), 1);
        assert_eq!(view[0].flags, ["$Work"]);
    }
    let inbox_box = m.mailbox(1, inbox).await.unwrap().unwrap();
    assert!(m.view(1, &inbox_box).await.unwrap().is_empty());
    // A mailbox that does not exist changes nothing.
    assert!(matches!(
        m.set_mailboxes(1, email, vec![b, 999]).await,
        Err(MailError::NotFound(_))
    ));
    assert_eq!(
        m.email_state(1, email)
            .await
            .unwrap()
            .unwrap()
            .mailboxes
            .len(),
        2
    );
    assert!(m.set_mailboxes(1, email, vec![b]).await.unwrap());
    assert_eq!(
        m.email_state(1, email)
            .await
            .unwrap()
            .unwrap()
            .mailboxes
            .len(),
        1
    );
    // An email that is gone.
    assert!(!m.set_mailboxes(1, 4242, vec![a]).await.unwrap());
    assert!(m.set_mailboxes(1, email, vec![]).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_with_follows_grants_and_inherited_ones() {
    use super::acl::Rights;
    let dir = tempfile::tempdir().unwrap();
    let m = mail_store(dir.path());
    let team = m.create_mailbox(1, "Team").await.unwrap();
    assert!(m.shared_with(2).await.unwrap().is_empty());
    m.set_grant(1, team.id, 2, Rights::parse("lr"), 1)
        .await
        .unwrap();
    assert_eq!(m.shared_with(2).await.unwrap().len(), 1, "a new grant");
    // A child takes its parent's grants: seen at once, though the
    // answer before was kept.
    let sub = m.create_mailbox(1, "Team/Sub").await.unwrap();
    let shared = m.shared_with(2).await.unwrap();
    assert!(shared.iter().any(|s| s.mailbox == sub.id), "{shared:?}");
    m.set_grant(1, team.id, 2, None, 1).await.unwrap();
    assert_eq!(
        m.shared_with(2).await.unwrap().len(),
        1,
        "the child's stays"
    );
}

/// The identity and submission log (JMAP /changes): one entry per state,
/// in order; a clearing leaves a gap, so states before it cannot be
/// brought up to date; unlogged kinds log nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_log_follows_every_change() {
    use crate::mail::records::{Kind, Op};
    let dir = tempfile::tempdir().unwrap();
    let m = mail_store(dir.path());
    let a = m.create_record(1, Kind::Identity, &"a").await.unwrap();
    let b = m.create_record(1, Kind::Identity, &"b").await.unwrap();
    assert!(m.update_record(1, Kind::Identity, a, &"a2").await.unwrap());
    assert!(m.delete_record(1, Kind::Identity, b).await.unwrap());
    // Nothing to update or delete: no state, no entry.
    assert!(!m.delete_record(1, Kind::Identity, b).await.unwrap());
    let state = m.record_state(1, Kind::Identity).await.unwrap();
    assert_eq!(state, 4);
    let log = m.record_log(1, Kind::Identity, 0, state).await.unwrap();
    assert_eq!(
        log,
        Some(vec![
            (1, Op::Created, a),
            (2, Op::Created, b),
            (3, Op::Updated, a),
            (4, Op::Destroyed, b)
        ])
    );
    assert_eq!(
        m.record_log(1, Kind::Identity, 2, 3).await.unwrap(),
        Some(vec![(3, Op::Updated, a)])
    );
    assert_eq!(
        m.record_log(1, Kind::Identity, 4, 4).await.unwrap(),
        Some(vec![])
    );
    m.clear_records(1, Kind::Identity).await.unwrap();
    assert_eq!(m.record_log(1, Kind::Identity, 4, 5).await.unwrap(), None);
    assert_eq!(m.record_log(1, Kind::Identity, 0, 5).await.unwrap(), None);
    // Uploads are not logged.
    m.put_upload(1, "text/plain", b"x".to_vec()).await.unwrap();
    assert_eq!(m.record_log(1, Kind::Upload, 0, 1).await.unwrap(), None);
}
