//! The smaller IMAP extensions, sentence by sentence (ids of
//! `../shared/tools/rfc-requirements N`): IDLE (RFC 2177), UNSELECT (RFC
//! 3691), UIDPLUS (RFC 4315), WITHIN (RFC 5032), SEARCHRES (RFC 5182),
//! LIST-STATUS (RFC 5819), SORT=DISPLAY (RFC 5957), APPENDLIMIT (RFC
//! 7889), STATUS=SIZE (RFC 8438) and SAVEDATE (RFC 8514). The matrices in
//! spec/ claim the ids each assertion names.

mod common;

use common::imap::{append, cmd, login_as, ok};
use common::*;

async fn server() -> TestServer {
    let s = TestServer::start_with("[imap]\nauth-without-tls = true\nmax-literal-size = 2000\n");
    s.account("joe@example.org");
    s
}

fn number_after(r: &[String], key: &str) -> Option<u64> {
    r.iter().find_map(|l| {
        let rest = l.split(&format!("{key} ")).nth(1)?;
        rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
    })
}

/// RFC 2177, 3691, 5032, 5182, 5957: IDLE ends at once, command and
/// capability names in any case, saved results, display sorting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_unselect_within_searchres_display() {
    let s = server().await;
    let mut c = login_as(&s, "joe@example.org").await;
    let caps = cmd(&mut c, "c", "CAPABILITY").await;
    // RFC 5032 2#1: WITHIN is advertised; RFC 5182 2.1#1, 2.4#1: so is
    // ESEARCH, beside SEARCHRES; RFC 8514 4.1#1: SAVEDATE.
    for cap in [" WITHIN", " ESEARCH", " SEARCHRES", " SAVEDATE", " UIDPLUS"] {
        assert!(caps[0].contains(cap), "{cap}: {caps:?}");
    }
    for (from, subj) in [
        ("\"Zoe Young\" <zoe@example.org>", "z"),
        ("=?utf-8?q?=C3=89mile?= <emile@example.org>", "e"),
        ("adam@example.org", "a"),
    ] {
        append(&mut c, "INBOX", &format!("From: {from}\r\nSubject: {subj}\r\n\r\nx\r\n")).await;
    }
    // RFC 3691 4#1: UNSELECT in any case.
    assert!(ok(&cmd(&mut c, "s", "select INBOX").await));
    assert!(ok(&cmd(&mut c, "u", "uNsElEcT").await));
    assert!(ok(&cmd(&mut c, "s", "SELECT INBOX").await));
    // RFC 5957 7#1: DISPLAYFROM sorts by the display name (or the
    // address) under i;unicode-casemap: adam, Émile (as "emile"), Zoe.
    let r = cmd(&mut c, "o", "SORT (DISPLAYFROM) UTF-8 ALL").await;
    assert_eq!(r[0], "* SORT 3 2 1", "{r:?}");
    // RFC 5182 3#1: RETURN (SAVE) and $ in any case; 2.1#2: a SEARCH
    // without SAVE leaves $ alone.
    assert!(ok(&cmd(&mut c, "a", "search return (save) subject e").await));
    assert!(ok(&cmd(&mut c, "b", "SEARCH SUBJECT z").await));
    let r = cmd(&mut c, "d", "FETCH $ (UID)").await;
    assert_eq!(r.len(), 2, "{r:?}");
    assert!(r[0].starts_with("* 2 FETCH"), "{r:?}");

    // RFC 2177 3#3: after DONE, the tagged answer comes at once, after
    // any untagged responses still due.
    c.send("i IDLE\r\n").await;
    assert!(c.line().await.starts_with('+'));
    append(&mut login_as(&s, "joe@example.org").await, "INBOX", "Subject: n\r\n\r\nx\r\n").await;
    let t = std::time::Instant::now();
    c.send("DONE\r\n").await;
    let r = c.imap_until("i").await;
    assert!(t.elapsed() < std::time::Duration::from_secs(5));
    assert!(r.last().unwrap().starts_with("i OK"), "{r:?}");
    let exists = r.iter().position(|l| l == "* 4 EXISTS");
    assert!(exists.is_some(), "the new message is reported: {r:?}");
}

/// RFC 4315 (UIDPLUS), RFC 7889 (APPENDLIMIT), RFC 8438 (STATUS=SIZE),
/// RFC 8514 (SAVEDATE) and RFC 5819 (LIST-STATUS).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uidplus_appendlimit_size_savedate_list_status() {
    let s = server().await;
    s.cli_ok(&["account", "update", "joe@example.org", "--quota", "1000000"]);
    let mut c = login_as(&s, "joe@example.org").await;
    assert!(ok(&cmd(&mut c, "c", "CREATE Box").await));
    // RFC 4315 1#1, 3#1: APPENDUID; 3#3: one message, one UID (no set).
    c.send("a APPEND INBOX (\\Seen) \"01-Jan-2001 00:00:00 +0000\" {14+}\r\nSubject: a\r\n\r\n\r\n")
        .await;
    let r = c.imap_until("a").await;
    let line = r.last().unwrap();
    let code = line.split('[').nth(1).unwrap().split(']').next().unwrap();
    let parts: Vec<&str> = code.split(' ').collect();
    assert_eq!(parts[0], "APPENDUID", "{line}");
    assert!(parts[2].bytes().all(|b| b.is_ascii_digit()), "{line}");
    for k in 0..3 {
        append(&mut c, "INBOX", &format!("Subject: m{k}\r\n\r\nbody {k}\r\n")).await;
    }
    assert!(ok(&cmd(&mut c, "s", "SELECT INBOX").await));
    // 3#4: COPYUID of one message names single UIDs, never "n:n".
    let r = cmd(&mut c, "p", "COPY 2 Box").await;
    let line = r.last().unwrap();
    assert!(line.contains("[COPYUID "), "{line}");
    assert!(!line.contains(':'), "{line}");
    assert!(ok(&cmd(&mut c, "q", "COPY 2:4 Box").await));

    // RFC 8438 3#1: SIZE is at least the sum of RFC822.SIZE; 3#2: with
    // QUOTA, it is what STORAGE counts (in KiB there).
    let sizes = cmd(&mut c, "f", "FETCH 1:* RFC822.SIZE").await;
    let total: u64 = sizes
        .iter()
        .filter_map(|l| number_after(std::slice::from_ref(l), "RFC822.SIZE"))
        .sum();
    let st = cmd(&mut c, "t", "STATUS Box (SIZE MESSAGES)").await;
    assert!(st[0].contains("MESSAGES 4"), "{st:?}");
    let st = cmd(&mut c, "t", "STATUS INBOX (SIZE)").await;
    let size = number_after(&st, "SIZE").unwrap();
    assert!(size >= total, "{size} < {total}");
    // Box holds copies of the same messages: the quota counts each
    // stored message once.
    let q = cmd(&mut c, "g", "GETQUOTAROOT INBOX").await;
    let storage = number_after(&q, "STORAGE").unwrap();
    assert_eq!(storage, size.div_ceil(1024), "{q:?} / {st:?}");

    // RFC 7889 3.2#1, 5#1: APPENDLIMIT in STATUS and in LIST-STATUS, in
    // any case; 4#1: a larger APPEND is refused with TOOBIG.
    let st = cmd(&mut c, "l", "status INBOX (appendlimit)").await;
    assert_eq!(number_after(&st, "APPENDLIMIT"), Some(2000), "{st:?}");
    let big = "x".repeat(2100);
    c.send(&format!("b APPEND INBOX {{{}}}\r\n", big.len())).await;
    let r = c.line().await;
    assert!(r.starts_with("b NO [TOOBIG]"), "{r}");

    // RFC 5819 2#1: each LIST line is followed by its STATUS.
    let r = cmd(&mut c, "r", "LIST \"\" \"*\" RETURN (STATUS (MESSAGES APPENDLIMIT))").await;
    let lists: Vec<usize> = (0..r.len()).filter(|&i| r[i].starts_with("* LIST")).collect();
    assert!(lists.len() >= 2, "{r:?}");
    for i in lists {
        let name = r[i].rsplit(' ').next().unwrap();
        assert!(
            r[i + 1].starts_with(&format!("* STATUS {name} (")) && r[i + 1].contains("APPENDLIMIT 2000"),
            "{r:?}"
        );
    }

    // RFC 8514 3#1: the save date is when the message came into the
    // mailbox (not its internal date, 2001 here); 3#2: it stays while
    // the message stays, whatever happens to its flags; a copy gets its
    // own.
    let r = cmd(&mut c, "d", "FETCH 1 (INTERNALDATE SAVEDATE)").await;
    assert!(r[0].contains("INTERNALDATE \"01-Jan-2001"), "{r:?}");
    let year = |l: &str| {
        l.split("SAVEDATE \"").nth(1).unwrap()[7..11].to_string()
    };
    assert_ne!(year(&r[0]), "2001", "{r:?}");
    let before = r[0].split("SAVEDATE ").nth(1).unwrap().to_string();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert!(ok(&cmd(&mut c, "e", "STORE 1 +FLAGS (\\Flagged)").await));
    let r = cmd(&mut c, "d", "FETCH 1 SAVEDATE").await;
    assert_eq!(r[0].split("SAVEDATE ").nth(1).unwrap(), before, "{r:?}");
    assert!(ok(&cmd(&mut c, "k", "COPY 1 Box").await));
    assert!(ok(&cmd(&mut c, "s", "SELECT Box").await));
    let r = cmd(&mut c, "d", "FETCH 5 SAVEDATE").await;
    assert_ne!(r[0].split("SAVEDATE ").nth(1).unwrap(), before, "{r:?}");
}
