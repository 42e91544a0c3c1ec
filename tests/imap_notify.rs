//! NOTIFY (RFC 5465) sentence by sentence: what `imap::notify_events`
//! and `imap::notify_follows_grants` leave out.

mod common;

use common::imap::{append, cmd, lines_until, login_as, ok, quiet};
use common::*;

async fn append_ok(c: &mut LineClient, mailbox: &str, m: &str) {
    let r = append(c, &format!("\"{mailbox}\""), m).await;
    assert!(ok(&r), "{r:?}");
}

/// §3.1, §5, §6, §8: the NOTIFY SET rules.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_set_rules() {
    let s = TestServer::start_with("[imap]\nauth-without-tls = true\n");
    s.account("joe@example.org");
    s.account("ann@example.org");
    let mut joe = login_as(&s, "joe@example.org").await;
    let mut ann = login_as(&s, "ann@example.org").await;
    assert!(ok(&cmd(&mut ann, "a", "CREATE Listed").await));
    assert!(ok(
        &cmd(&mut ann, "b", "SETACL Listed joe@example.org l").await
    ));
    // 5#3-5#6, 8#2, 8#3: FlagChange needs MessageNew and MessageExpunge,
    // which go together; otherwise BAD.
    for bad in [
        "NOTIFY SET (personal (FlagChange))",
        "NOTIFY SET (personal (MessageNew FlagChange))",
        "NOTIFY SET (personal (MessageExpunge))",
    ] {
        assert!(
            cmd(&mut joe, "c", bad).await[0].starts_with("c BAD"),
            "{bad}"
        );
    }
    // 3.1#11, 3.1#12: an unsupported event is NO with BADEVENT listing
    // every supported one.
    let r = cmd(&mut joe, "d", "NOTIFY SET (personal (AnnotationChange))").await;
    assert!(r[0].starts_with("d NO [BADEVENT ("), "{r:?}");
    for e in [
        "MessageNew",
        "MessageExpunge",
        "FlagChange",
        "MailboxName",
        "SubscriptionChange",
        "MailboxMetadataChange",
        "ServerMetadataChange",
    ] {
        assert!(r[0].contains(e), "{e}: {r:?}");
    }
    // 8#1: keywords in any case. 3.1#6, 3.1#7, 3.1#8: names of no mailbox,
    // or of one the user may not list, are ignored; 3.1#9: one it may list
    // but not read gets a LIST with \NoAccess; 3.1#10: OK since one
    // mailbox (INBOX) is accessible.
    let r = cmd(
        &mut joe,
        "e",
        "notify set status (mailboxes (INBOX Nowhere \"Shared/ann@example.org/Listed\" \"Shared/ann@example.org/Hidden\") (messagenew messageexpunge))",
    )
    .await;
    assert!(ok(&r), "{r:?}");
    assert!(
        r.iter().any(|l| l.starts_with("* STATUS \"INBOX\" (")),
        "{r:?}"
    );
    assert!(
        r.iter().any(|l| l.starts_with("* LIST (\\NoAccess")
            && l.ends_with("\"Shared/ann@example.org/Listed\"")),
        "{r:?}"
    );
    assert!(
        !r.iter()
            .any(|l| l.contains("Nowhere") || l.contains("Hidden")),
        "{r:?}"
    );
    // 3.1#2-3.1#4: STATUS before the OK with MESSAGES, UIDNEXT and
    // UIDVALIDITY; 3.1#5: with CONDSTORE also HIGHESTMODSEQ.
    let st = r
        .iter()
        .find(|l| l.starts_with("* STATUS \"INBOX\""))
        .unwrap();
    for item in ["MESSAGES", "UIDNEXT", "UIDVALIDITY"] {
        assert!(st.contains(item), "{st}");
    }
    assert!(ok(&cmd(&mut joe, "f", "ENABLE CONDSTORE").await));
    let r = cmd(
        &mut joe,
        "g",
        "NOTIFY SET STATUS (mailboxes INBOX (MessageNew MessageExpunge FlagChange))",
    )
    .await;
    let st = r
        .iter()
        .find(|l| l.starts_with("* STATUS \"INBOX\""))
        .unwrap();
    assert!(st.contains("HIGHESTMODSEQ"), "{st}");
    // 6.6#1: no wildcard expansion in a mailbox list.
    let r = cmd(
        &mut joe,
        "h",
        "NOTIFY SET STATUS (mailboxes (Arch*) (MessageNew MessageExpunge))",
    )
    .await;
    assert!(ok(&r) && !r.iter().any(|l| l.contains("Archive")), "{r:?}");
    // 3.1#1: NOTIFY SET reports what happened in the selected mailbox.
    assert!(ok(&cmd(&mut joe, "i", "SELECT INBOX").await));
    let mut other = login_as(&s, "joe@example.org").await;
    append_ok(&mut other, "INBOX", "Subject: while\r\n\r\nx\r\n").await;
    let r = cmd(
        &mut joe,
        "j",
        "NOTIFY SET (selected (MessageNew MessageExpunge))",
    )
    .await;
    assert!(r.iter().any(|l| l == "* 1 EXISTS"), "{r:?}");
}

/// §5.1-§5.3, §5.6, §5.7, §6.3, §6.4: events as they happen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_events_as_they_happen() {
    let s = TestServer::start_with("[imap]\nauth-without-tls = true\n");
    s.account("joe@example.org");
    let mut a = login_as(&s, "joe@example.org").await;
    let mut b = login_as(&s, "joe@example.org").await;
    append_ok(&mut b, "INBOX", "Subject: one\r\n\r\nx\r\n").await;
    assert!(ok(&cmd(&mut a, "a", "SELECT INBOX").await));
    // 6.3#1: "inboxes" is "personal" here; 5.6, 5.7: metadata events.
    let r = cmd(
        &mut a,
        "b",
        "NOTIFY SET (selected (MessageNew (UID) MessageExpunge FlagChange)) (inboxes (MessageNew MessageExpunge MailboxMetadataChange ServerMetadataChange))",
    )
    .await;
    assert!(ok(&r), "{r:?}");
    // 5.1#1: a flag change in the selected mailbox: FETCH with UID and
    // FLAGS.
    assert!(ok(&cmd(&mut b, "c", "SELECT INBOX").await));
    assert!(ok(&cmd(&mut b, "d", "STORE 1 +FLAGS (\\Flagged)").await));
    let got = lines_until(&mut a, |l| l.contains("FETCH")).await;
    let f = got.last().unwrap();
    assert!(f.contains("UID 1") && f.contains("FLAGS ("), "{got:?}");
    // "inboxes": a new message in Archive (a personal mailbox).
    append_ok(&mut b, "Archive", "Subject: filed\r\n\r\nx\r\n").await;
    let got = lines_until(&mut a, |l| l.starts_with("* STATUS")).await;
    assert!(
        got.last()
            .unwrap()
            .starts_with("* STATUS \"Archive\" (MESSAGES 1"),
        "{got:?}"
    );
    // 5.6#1, 5.6#2, 5.6#3: a mailbox annotation set, then removed: a
    // METADATA response naming the entry each time; 5.7#1-5.7#3: server
    // annotations likewise, named by "".
    for (set, said) in [
        (
            "Archive (/private/comment \"kept\")",
            "\"Archive\" /private/comment",
        ),
        (
            "Archive (/private/comment NIL)",
            "\"Archive\" /private/comment",
        ),
        ("\"\" (/private/vendor/x \"1\")", "\"\" /private/vendor/x"),
    ] {
        assert!(ok(&cmd(&mut b, "e", &format!("SETMETADATA {set}")).await));
        let got = lines_until(&mut a, |l| l.starts_with("* METADATA")).await;
        assert_eq!(
            got.last().unwrap(),
            &format!("* METADATA {said}"),
            "{got:?}"
        );
    }
    // 5.2#1, 5#1: this session's own APPEND to the selected mailbox: an
    // EXISTS but no FETCH of the new message; its own SETMETADATA: no
    // METADATA.
    append_ok(&mut a, "INBOX", "Subject: mine\r\n\r\nx\r\n").await;
    assert!(ok(&cmd(
        &mut a,
        "h",
        "SETMETADATA Archive (/private/comment \"own\")"
    )
    .await));
    let r = cmd(&mut a, "i", "NOOP").await;
    assert!(
        !r.iter()
            .any(|l| l.contains("FETCH") || l.starts_with("* METADATA")),
        "{r:?}"
    );
    quiet(&mut a).await;
}

/// §5#2, §6.4: MailboxName and SubscriptionChange; the session's own
/// CREATE is not reported to it, and "subscribed" follows subscriptions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_names_and_subscriptions() {
    let s = TestServer::start_with("[imap]\nauth-without-tls = true\n");
    s.account("joe@example.org");
    let mut a = login_as(&s, "joe@example.org").await;
    let mut b = login_as(&s, "joe@example.org").await;
    let r = cmd(
        &mut a,
        "a",
        "NOTIFY SET (personal (MailboxName SubscriptionChange)) (subscribed (MessageNew MessageExpunge))",
    )
    .await;
    assert!(ok(&r), "{r:?}");
    // 5#2: its own CREATE: no LIST.
    let r = cmd(&mut a, "b", "CREATE Mine").await;
    assert!(
        ok(&r) && !r.iter().any(|l| l.starts_with("* LIST")),
        "{r:?}"
    );
    let r = cmd(&mut a, "c", "NOOP").await;
    assert!(!r.iter().any(|l| l.starts_with("* LIST")), "{r:?}");
    // 6.4#1: another session creates (and so subscribes) a mailbox: it
    // joins "subscribed", and new mail there is reported.
    assert!(ok(&cmd(&mut b, "d", "CREATE Theirs").await));
    let got = lines_until(&mut a, |l| l.starts_with("* LIST")).await;
    assert!(got.last().unwrap().ends_with("\"Theirs\""), "{got:?}");
    append_ok(&mut b, "Theirs", "Subject: t\r\n\r\nx\r\n").await;
    let got = lines_until(&mut a, |l| l.starts_with("* STATUS")).await;
    assert!(
        got.last()
            .unwrap()
            .starts_with("* STATUS \"Theirs\" (MESSAGES 1"),
        "{got:?}"
    );
    // Unsubscribed: no longer watched for messages.
    assert!(ok(&cmd(&mut b, "e", "UNSUBSCRIBE Theirs").await));
    lines_until(&mut a, |l| l.starts_with("* LIST")).await;
    append_ok(&mut b, "Theirs", "Subject: u\r\n\r\nx\r\n").await;
    quiet(&mut a).await;
}
