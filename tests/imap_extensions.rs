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
        rest.split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
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
        append(
            &mut c,
            "INBOX",
            &format!("From: {from}\r\nSubject: {subj}\r\n\r\nx\r\n"),
        )
        .await;
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
    append(
        &mut login_as(&s, "joe@example.org").await,
        "INBOX",
        "Subject: n\r\n\r\nx\r\n",
    )
    .await;
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
    c.send(
        "a APPEND INBOX (\\Seen) \"01-Jan-2001 00:00:00 +0000\" {14+}\r\nSubject: a\r\n\r\n\r\n",
    )
    .await;
    let r = c.imap_until("a").await;
    let line = r.last().unwrap();
    let code = line.split('[').nth(1).unwrap().split(']').next().unwrap();
    let parts: Vec<&str> = code.split(' ').collect();
    assert_eq!(parts[0], "APPENDUID", "{line}");
    assert!(parts[2].bytes().all(|b| b.is_ascii_digit()), "{line}");
    for k in 0..3 {
        append(
            &mut c,
            "INBOX",
            &format!("Subject: m{k}\r\n\r\nbody {k}\r\n"),
        )
        .await;
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
    c.send(&format!("b APPEND INBOX {{{}}}\r\n", big.len()))
        .await;
    let r = c.line().await;
    assert!(r.starts_with("b NO [TOOBIG]"), "{r}");

    // RFC 5819 2#1: each LIST line is followed by its STATUS.
    let r = cmd(
        &mut c,
        "r",
        "LIST \"\" \"*\" RETURN (STATUS (MESSAGES APPENDLIMIT))",
    )
    .await;
    let lists: Vec<usize> = (0..r.len())
        .filter(|&i| r[i].starts_with("* LIST"))
        .collect();
    assert!(lists.len() >= 2, "{r:?}");
    for i in lists {
        let name = r[i].rsplit(' ').next().unwrap();
        assert!(
            r[i + 1].starts_with(&format!("* STATUS {name} ("))
                && r[i + 1].contains("APPENDLIMIT 2000"),
            "{r:?}"
        );
    }

    // RFC 8514 3#1: the save date is when the message came into the
    // mailbox (not its internal date, 2001 here); 3#2: it stays while
    // the message stays, whatever happens to its flags; a copy gets its
    // own.
    let r = cmd(&mut c, "d", "FETCH 1 (INTERNALDATE SAVEDATE)").await;
    assert!(r[0].contains("INTERNALDATE \"01-Jan-2001"), "{r:?}");
    let year = |l: &str| l.split("SAVEDATE \"").nth(1).unwrap()[7..11].to_string();
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

/// RFC 3502 (MULTIAPPEND, §6.3.11 as it restates APPEND) and RFC 5161
/// (ENABLE).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multiappend_and_enable() {
    use tokio::io::AsyncReadExt;
    let s = server().await;
    let mut c = login_as(&s, "joe@example.org").await;
    let mut watcher = login_as(&s, "joe@example.org").await;
    assert!(ok(&cmd(&mut watcher, "s", "SELECT INBOX").await));
    // 6.3.11#4, #5, #2: flags and date of each message set, 8-bit data
    // kept; #10, #11: the selected mailbox hears of them (EXISTS).
    let eight: &[u8] = b"Subject: 8\r\n\r\ncaf\xc3\xa9\r\n";
    let mut wire =
        b"a APPEND INBOX (\\Flagged) \"02-Feb-2002 02:02:02 +0000\" {12+}\r\nSubject: 1\r\n () {"
            .to_vec();
    wire.extend_from_slice(format!("{}+}}\r\n", eight.len()).as_bytes());
    wire.extend_from_slice(eight);
    wire.extend_from_slice(b"\r\n");
    c.send_bytes(&wire).await;
    let r = c.imap_until("a").await;
    assert!(ok(&r), "{r:?}");
    let r = cmd(&mut watcher, "n", "NOOP").await;
    assert!(r.iter().any(|l| l == "* 2 EXISTS"), "{r:?}");
    let r = cmd(&mut watcher, "f", "FETCH 1:2 (FLAGS INTERNALDATE)").await;
    assert!(
        r[0].contains("\\Flagged") && r[0].contains("02-Feb-2002 02:02:02 +0000"),
        "{r:?}"
    );
    assert!(
        !r[1].contains("\\Flagged") && !r[1].contains("2002"),
        "{r:?}"
    );
    watcher.send("g FETCH 2 BODY.PEEK[]\r\n").await;
    let mut raw = Vec::new();
    while !raw.ends_with(b"g OK FETCH completed\r\n") {
        let mut buf = [0u8; 1024];
        let n = watcher.r.read(&mut buf).await.unwrap();
        assert!(n > 0);
        raw.extend_from_slice(&buf[..n]);
    }
    assert!(raw.windows(eight.len()).any(|w| w == eight));
    // 6.3.11#6, #7: a zero-length message is NO, and the messages before
    // it in the same APPEND are not kept.
    let r = cmd(&mut c, "b", "APPEND INBOX {12+}\r\nSubject: 3\r\n {0+}\r\n").await;
    assert!(r.last().unwrap().starts_with("b NO"), "{r:?}");
    let r = cmd(&mut c, "t", "STATUS INBOX (MESSAGES)").await;
    assert!(r[0].ends_with("(MESSAGES 2)"), "{r:?}");
    // 6.3.11#8, #9: a mailbox that does not exist: NO [TRYCREATE], and it
    // is not created.
    let r = cmd(
        &mut c,
        "d",
        "APPEND Nowhere {12+}\r\nSubject: 4\r\n {12+}\r\nSubject: 5\r\n",
    )
    .await;
    assert!(r.last().unwrap().starts_with("d NO [TRYCREATE]"), "{r:?}");
    let r = cmd(&mut c, "l", "LIST \"\" Nowhere").await;
    assert_eq!(r.len(), 1, "{r:?}");

    // RFC 5161 3.1#1, #2: an unknown extension and one that is not
    // enabled by ENABLE are ignored: OK with an empty ENABLED; 4#1: in
    // any case.
    let caps = cmd(&mut c, "c", "CAPABILITY").await;
    let r = cmd(&mut c, "e", "enable X-UNKNOWN IDLE").await;
    assert_eq!(r, ["* ENABLED", "e OK ENABLE completed"], "{r:?}");
    // 3.1#3, #4: CONDSTORE is enabled and says so; it lasts for the
    // connection (MODSEQ in FETCH without asking).
    let r = cmd(&mut c, "e", "ENABLE condstore").await;
    assert_eq!(r[0], "* ENABLED CONDSTORE", "{r:?}");
    // 3.1#7: a second ENABLE lists only what it enabled.
    let r = cmd(&mut c, "e", "ENABLE CONDSTORE QRESYNC").await;
    assert_eq!(r[0], "* ENABLED QRESYNC", "{r:?}");
    // 3.1#8: CAPABILITY is unchanged.
    assert_eq!(cmd(&mut c, "c", "CAPABILITY").await, caps);
    assert!(ok(&cmd(&mut c, "s", "SELECT INBOX").await));
    let r = cmd(&mut c, "h", "STORE 1 +FLAGS (\\Seen)").await;
    assert!(r[0].contains("MODSEQ ("), "{r:?}");
}

/// RFC 6851 (MOVE) with UIDPLUS and QRESYNC, RFC 4959 (SASL-IR), RFC
/// 8437 (UNAUTHENTICATE) and RFC 3348 (CHILDREN).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn move_sasl_ir_unauthenticate_children() {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let s = server().await;
    s.account("ann@example.org");
    let mut c = login_as(&s, "joe@example.org").await;
    assert!(ok(&cmd(&mut c, "c", "CREATE Box").await));
    for k in 0..4 {
        append(&mut c, "INBOX", &format!("Subject: m{k}\r\n\r\nbody\r\n")).await;
    }
    assert!(ok(&cmd(&mut c, "e", "ENABLE QRESYNC").await));
    let r = cmd(&mut c, "s", "SELECT INBOX").await;
    let validity = number_after(&r, "UIDVALIDITY").unwrap();
    let before = number_after(&r, "HIGHESTMODSEQ").unwrap();
    let st = cmd(&mut c, "t", "STATUS Box (HIGHESTMODSEQ)").await;
    let box_before = number_after(&st, "HIGHESTMODSEQ").unwrap();
    // 3.3#1: MOVE gives COPYUID and the expunge, never a STORE's FETCH or
    // \Deleted; 4.3#1: UID MOVE sends COPYUID; 5#1: "move" in any case;
    // 4.4#1: with QRESYNC, VANISHED rather than EXPUNGE; 4.4#2, #4: the
    // new HIGHESTMODSEQ in an OK.
    let r = cmd(&mut c, "m", "uid move 1 Box").await;
    assert!(r.iter().any(|l| l.starts_with("* OK [COPYUID ")), "{r:?}");
    assert!(r.iter().any(|l| l == "* VANISHED 1"), "{r:?}");
    assert!(
        !r.iter()
            .any(|l| l.contains(" EXPUNGE") || l.contains("FETCH") || l.contains("\\Deleted")),
        "{r:?}"
    );
    let after = r
        .iter()
        .filter(|l| l.contains("HIGHESTMODSEQ"))
        .find_map(|l| number_after(std::slice::from_ref(l), "HIGHESTMODSEQ"))
        .unwrap_or_else(|| panic!("no HIGHESTMODSEQ: {r:?}"));
    assert!(after > before, "{after} <= {before}");
    // 4.4#3: the moved UID is remembered as expunged at that modseq.
    assert!(ok(&cmd(&mut c, "u", "UNSELECT").await));
    let r = cmd(
        &mut c,
        "q",
        &format!("SELECT INBOX (QRESYNC ({validity} {before}))"),
    )
    .await;
    assert!(r.iter().any(|l| l == "* VANISHED (EARLIER) 1"), "{r:?}");
    // 4.4#5: in the target the moved message has a mod-sequence above
    // what was there.
    assert!(ok(&cmd(&mut c, "s", "SELECT Box").await));
    let r = cmd(&mut c, "f", "FETCH 1 (MODSEQ)").await;
    let moved = r[0]
        .split("MODSEQ (")
        .nth(1)
        .unwrap()
        .trim_end_matches("))")
        .parse::<u64>()
        .unwrap();
    assert!(moved > box_before, "{moved} <= {box_before}: {r:?}");

    // 3.3#2, #3, #4: a MOVE that cannot complete (the target's owner has
    // no room) leaves every message where it was, none in both places.
    let mut ann = login_as(&s, "ann@example.org").await;
    assert!(ok(&cmd(&mut ann, "c", "CREATE Drop").await));
    assert!(ok(
        &cmd(&mut ann, "a", "SETACL Drop joe@example.org lri").await
    ));
    s.cli_ok(&["account", "update", "ann@example.org", "--quota", "40"]);
    assert!(ok(&cmd(&mut c, "s", "SELECT INBOX").await));
    let r = cmd(&mut c, "m", "MOVE 1:3 \"Shared/ann@example.org/Drop\"").await;
    assert!(r.last().unwrap().starts_with("m NO [OVERQUOTA]"), "{r:?}");
    let r = cmd(&mut c, "t", "STATUS INBOX (MESSAGES)").await;
    assert!(r[0].ends_with("(MESSAGES 3)"), "{r:?}");
    let r = cmd(&mut ann, "t", "STATUS Drop (MESSAGES)").await;
    assert!(r[0].ends_with("(MESSAGES 0)"), "{r:?}");

    // RFC 3348 3#1: CHILDREN advertised; 3#2, #3, 6#1, 6#2: a shared
    // parent whose children are not shared with the user has no children
    // for her.
    let caps = cmd(&mut c, "c", "CAPABILITY").await;
    assert!(caps[0].contains(" CHILDREN"), "{caps:?}");
    assert!(ok(&cmd(&mut ann, "c", "CREATE Drop/Private").await));
    // (A new child takes its parent's access list: take Joe off it.)
    assert!(ok(&cmd(
        &mut ann,
        "a",
        "DELETEACL Drop/Private joe@example.org"
    )
    .await));
    let r = cmd(&mut c, "l", "LIST \"\" \"Shared/ann@example.org/*\"").await;
    let drop = r
        .iter()
        .find(|l| l.ends_with("/Drop\""))
        .unwrap_or_else(|| panic!("{r:?}"));
    assert!(drop.contains("\\HasNoChildren"), "{r:?}");
    assert!(!r.iter().any(|l| l.contains("Private")), "{r:?}");
    assert!(ok(&cmd(
        &mut ann,
        "a",
        "SETACL Drop/Private joe@example.org lr"
    )
    .await));
    let r = cmd(&mut c, "l", "LIST \"\" \"Shared/ann@example.org/*\"").await;
    let drop = r.iter().find(|l| l.ends_with("/Drop\"")).unwrap();
    assert!(drop.contains("\\HasChildren"), "{r:?}");

    // RFC 8437 4.1#1, #3: after UNAUTHENTICATE, what ENABLE turned on is
    // off (no MODSEQ unasked); 4.1#2: the next user's rights are her own.
    assert!(ok(&cmd(&mut c, "e", "ENABLE CONDSTORE").await));
    assert!(ok(&cmd(&mut c, "x", "UNAUTHENTICATE").await));
    let r = cmd(&mut c, "L", "LOGIN ann@example.org pw").await;
    assert!(ok(&r), "{r:?}");
    assert!(ok(&cmd(&mut c, "s", "SELECT Drop").await));
    let r = cmd(&mut c, "r", "MYRIGHTS Drop").await;
    assert!(
        r[0].contains("lrswipkxtea") || r[0].contains("lrswipkxte"),
        "{r:?}"
    );
    append(&mut c, "Drop", "Subject: d\r\n\r\n\r\n").await;
    let r = cmd(&mut c, "h", "STORE 1 +FLAGS (\\Seen)").await;
    assert!(!r[0].contains("MODSEQ"), "{r:?}");
    // 8#1: it can be turned off.
    let off = TestServer::start_with("[imap]\nauth-without-tls = true\nunauthenticate = false\n");
    off.account("joe@example.org");
    let mut o = login_as(&off, "joe@example.org").await;
    let caps = cmd(&mut o, "c", "CAPABILITY").await;
    assert!(!caps[0].contains("UNAUTHENTICATE"), "{caps:?}");
    let r = cmd(&mut o, "x", "UNAUTHENTICATE").await;
    assert!(r[0].starts_with("x BAD"), "{r:?}");

    // RFC 4959 3#4: an initial response that is not base64 is BAD, as a
    // bad continuation would be; 3#6, 4#1, 6#1: without an initial
    // response the exchange is the RFC 3501 one; 6#2, 6#3: a large
    // initial response (a 6,000-character password) is read whole.
    let mut a = LineClient::connect(s.addr("imap")).await;
    a.line().await;
    let r = cmd(&mut a, "a", "AUTHENTICATE PLAIN !!!notbase64").await;
    assert!(r.last().unwrap().starts_with("a BAD"), "{r:?}");
    a.send("b AUTHENTICATE PLAIN\r\n").await;
    assert_eq!(a.line().await, "+ ");
    a.send(&format!("{}\r\n", b64("\0joe@example.org\0pw")))
        .await;
    let r = a.imap_until("b").await;
    assert!(ok(&r), "{r:?}");
    let mut a = LineClient::connect(s.addr("imap")).await;
    a.line().await;
    let long = format!("\0joe@example.org\0{}", "p".repeat(6000));
    let r = cmd(&mut a, "c", &format!("AUTHENTICATE PLAIN {}", b64(&long))).await;
    assert!(
        r.last().unwrap().starts_with("c NO [AUTHENTICATIONFAILED]"),
        "{r:?}"
    );
}

/// RFC 2342 (NAMESPACE), RFC 6855 (UTF8=ACCEPT), RFC 2971 (ID) and RFC
/// 6154 (SPECIAL-USE, CREATE-SPECIAL-USE, /private/specialuse).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_utf8_id_special_use() {
    let s = server().await;
    s.account("ann@example.org");
    s.account("bob@example.org");
    let mut ann = login_as(&s, "ann@example.org").await;
    assert!(ok(&cmd(&mut ann, "c", "CREATE Open").await));
    assert!(ok(
        &cmd(&mut ann, "a", "SETACL Open joe@example.org lr").await
    ));
    let mut bob = login_as(&s, "bob@example.org").await;
    assert!(ok(&cmd(&mut bob, "c", "CREATE Closed").await));
    let mut c = login_as(&s, "joe@example.org").await;
    let caps = cmd(&mut c, "c", "CAPABILITY").await;
    // RFC 2342 4#1; RFC 6154 2#1, 3#4; RFC 2971: the capabilities.
    for cap in [
        " NAMESPACE",
        " SPECIAL-USE",
        " CREATE-SPECIAL-USE",
        " ID",
        " UTF8=ACCEPT",
    ] {
        assert!(caps[0].contains(cap), "{cap}: {caps:?}");
    }
    // RFC 2342 2#1, 2#2, 2#4, 5#1, 6#1: one personal namespace ("", where
    // INBOX is), one other users' namespace, no shared one, no extension
    // data, ASCII prefixes.
    let r = cmd(&mut c, "n", "NAMESPACE").await;
    assert_eq!(
        r[0], "* NAMESPACE ((\"\" \"/\")) ((\"Shared/\" \"/\")) NIL",
        "{r:?}"
    );
    let r = cmd(&mut c, "l", "LIST \"\" INBOX").await;
    assert_eq!(r.len(), 2, "{r:?}");
    // 2#3, 5#4, 5#5, 7#1: under the other users' prefix come the users
    // who shared something with Joe, by login name, and no others.
    let r = cmd(&mut c, "l", "LIST \"Shared/\" \"%\"").await;
    assert!(
        r.iter().any(|l| l.ends_with("\"Shared/ann@example.org\"")),
        "{r:?}"
    );
    assert!(!r.iter().any(|l| l.contains("bob@")), "{r:?}");
    let r = cmd(&mut c, "x", "SELECT \"Shared/bob@example.org/Closed\"").await;
    assert!(r.last().unwrap().starts_with("x NO"), "{r:?}");

    // RFC 2971 3.2#1: a tagged answer; 3.3#1, #2, #3, #5: short fields
    // and values, at most 30 pairs, each field once; 3#8: true
    // information (the version is the build's); 3#1, #2, #4, #6: what a
    // client says of itself changes nothing.
    let before = cmd(&mut c, "c", "CAPABILITY").await;
    let r = cmd(
        &mut c,
        "i",
        "ID (\"name\" \"Outlook\" \"version\" \"16.0\")",
    )
    .await;
    assert!(r.last().unwrap().starts_with("i OK"), "{r:?}");
    let id = r[0].strip_prefix("* ID (").unwrap().trim_end_matches(')');
    let parts: Vec<&str> = id.split('"').filter(|p| !p.trim().is_empty()).collect();
    assert!(parts.len().is_multiple_of(2) && parts.len() <= 60, "{r:?}");
    let fields: Vec<&str> = parts.iter().step_by(2).copied().collect();
    let mut unique = fields.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), fields.len(), "{r:?}");
    assert!(fields.iter().all(|f| f.len() <= 30), "{r:?}");
    assert!(
        parts.iter().skip(1).step_by(2).all(|v| v.len() <= 1024),
        "{r:?}"
    );
    assert!(
        id.contains(&format!("\"version\" \"{}\"", env!("CARGO_PKG_VERSION"))),
        "{r:?}"
    );
    assert_eq!(cmd(&mut c, "c", "CAPABILITY").await, before);

    // RFC 6855 3#3: no UTF-8 in quoted strings before ENABLE: a mailbox
    // named in UTF-8 is listed in modified UTF-7; a UTF-8 subject comes
    // in a literal.
    assert!(ok(&cmd(&mut ann, "e", "ENABLE UTF8=ACCEPT").await));
    assert!(ok(&cmd(&mut ann, "c", "CREATE \"Café\"").await));
    assert!(ok(&cmd(
        &mut ann,
        "a",
        "SETACL \"Café\" joe@example.org lr"
    )
    .await));
    let r = cmd(&mut c, "l", "LIST \"\" \"Shared/ann@example.org/*\"").await;
    assert!(r.iter().any(|l| l.ends_with("/Caf&AOk-\"")), "{r:?}");
    assert!(!r.iter().any(|l| !l.is_ascii()), "{r:?}");
    // 4#2: without ENABLE, a message with 8-bit header fields is NO.
    let utf8_msg = "Subject: caf\u{e9}\r\n\r\nx\r\n";
    let r = cmd(
        &mut c,
        "a",
        &format!("APPEND INBOX {{{}+}}\r\n{utf8_msg}", utf8_msg.len()),
    )
    .await;
    assert!(r.last().unwrap().starts_with("a NO"), "{r:?}");
    // After ENABLE it is taken, and other clients see it without UTF-8
    // quoted strings.
    let mut u = login_as(&s, "joe@example.org").await;
    assert!(ok(&cmd(&mut u, "e", "ENABLE UTF8=ACCEPT").await));
    let r = cmd(
        &mut u,
        "a",
        &format!("APPEND INBOX {{{}+}}\r\n{utf8_msg}", utf8_msg.len()),
    )
    .await;
    assert!(ok(&r), "{r:?}");
    assert!(ok(&cmd(&mut c, "s", "SELECT INBOX").await));
    let r = cmd(&mut c, "f", "FETCH 1 ENVELOPE").await;
    assert!(!r[0].is_ascii() || r.len() > 2, "{r:?}");
    assert!(
        r.iter().all(|l| l.is_ascii() || !l.starts_with('*')),
        "{r:?}"
    );
    // 3#4: UTF-8 mailbox names after ENABLE; 3#5: Net-Unicode only (no
    // U+2028, no C1 controls); 3#2: bytes that are not UTF-8 are BAD.
    assert!(ok(&cmd(&mut u, "c", "CREATE \"Zürich\"").await));
    for bad in ["CREATE \"a\u{2028}b\"", "CREATE \"a\u{85}b\""] {
        let r = cmd(&mut u, "b", bad).await;
        assert!(!ok(&r), "{bad}: {r:?}");
    }
    u.send_bytes(b"b CREATE \"a\xff\xfeb\"\r\n").await;
    let r = u.imap_until("b").await;
    assert!(r.last().unwrap().starts_with("b BAD"), "{r:?}");
    // 3#7: SEARCH with a charset after ENABLE UTF8=ACCEPT is BAD.
    assert!(ok(&cmd(&mut u, "s", "SELECT INBOX").await));
    let r = cmd(&mut u, "q", "SEARCH CHARSET UTF-8 ALL").await;
    assert!(r.last().unwrap().starts_with("q BAD"), "{r:?}");

    // RFC 6154 2#2: LIST (SPECIAL-USE) lists only mailboxes with a
    // special use; 2#3: RETURN (SPECIAL-USE) shows them; 6#1: only
    // attributes of the RFCs.
    let r = cmd(&mut c, "l", "LIST (SPECIAL-USE) \"\" \"*\"").await;
    let lines: Vec<&String> = r.iter().filter(|l| l.starts_with("* LIST")).collect();
    assert!(!lines.is_empty());
    const KNOWN: &[&str] = &[
        "\\HasChildren",
        "\\HasNoChildren",
        "\\Noselect",
        "\\NonExistent",
        "\\Subscribed",
        "\\Remote",
        "\\Marked",
        "\\Unmarked",
        "\\Noinferiors",
        "\\All",
        "\\Archive",
        "\\Drafts",
        "\\Flagged",
        "\\Junk",
        "\\Sent",
        "\\Trash",
    ];
    for l in &lines {
        let attrs = l.split('(').nth(1).unwrap().split(')').next().unwrap();
        assert!(
            [
                "\\All",
                "\\Archive",
                "\\Drafts",
                "\\Flagged",
                "\\Junk",
                "\\Sent",
                "\\Trash"
            ]
            .iter()
            .any(|a| attrs.contains(a)),
            "{l}"
        );
        assert!(attrs.split(' ').all(|a| KNOWN.contains(&a)), "{l}");
    }
    let r = cmd(&mut c, "l", "LIST \"\" \"Sent\" RETURN (SPECIAL-USE)").await;
    assert!(r[0].contains("\\Sent"), "{r:?}");
    // 3#1, 3#2: CREATE with a special use Petrel does not know: NO
    // [USEATTR], and nothing is created.
    let r = cmd(&mut c, "c", "CREATE Odd (USE (\\Important))").await;
    assert!(r.last().unwrap().starts_with("c NO [USEATTR]"), "{r:?}");
    let r = cmd(&mut c, "l", "LIST \"\" Odd").await;
    assert_eq!(r.len(), 1, "{r:?}");
    // 4#1: the special use is the /private/specialuse entry; 4#2, 4#3:
    // setting it is checked as CREATE checks it.
    let r = cmd(&mut c, "g", "GETMETADATA Sent /private/specialuse").await;
    assert_eq!(
        r[0], "* METADATA \"Sent\" (/private/specialuse \"\\\\Sent\")",
        "{r:?}"
    );
    assert!(ok(&cmd(&mut c, "c", "CREATE Old").await));
    let r = cmd(
        &mut c,
        "m",
        "SETMETADATA Old (/private/specialuse \"\\\\Important\")",
    )
    .await;
    assert!(r.last().unwrap().starts_with("m NO [USEATTR]"), "{r:?}");
    let r = cmd(
        &mut c,
        "m",
        "SETMETADATA Old (/private/specialuse \"\\\\Sent\")",
    )
    .await;
    assert!(
        r.last().unwrap().starts_with("m NO [USEATTR]"),
        "in use by Sent: {r:?}"
    );
    assert!(ok(&cmd(
        &mut c,
        "m",
        "SETMETADATA Sent (/private/specialuse NIL)"
    )
    .await));
    assert!(ok(&cmd(
        &mut c,
        "m",
        "SETMETADATA Old (/private/specialuse \"\\\\Sent\")"
    )
    .await));
    let r = cmd(&mut c, "l", "LIST (SPECIAL-USE) \"\" \"*\"").await;
    assert!(
        r.iter()
            .any(|l| l.contains("\\Sent") && l.ends_with("\"Old\"")),
        "{r:?}"
    );
    assert!(!r.iter().any(|l| l.ends_with("\"Sent\"")), "{r:?}");
}

/// RFC 8970 (PREVIEW), RFC 5267 §3 (ESORT ranges) and RFC 7677 (SCRAM
/// iteration count).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_esort_scram() {
    use base64::Engine;
    let s = TestServer::start_logging("[imap]\nauth-without-tls = true\n");
    s.account("joe@example.org");
    let mut c = login_as(&s, "joe@example.org").await;
    let long = "word ".repeat(100);
    for m in [
        // base64 text: the preview is decoded (3.3#2).
        format!(
            "Subject: b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n",
            base64::engine::general_purpose::STANDARD.encode("Grüße aus Zürich")
        ),
        // HTML only: no markup in the preview (3.3#3).
        "Subject: h\r\nContent-Type: text/html\r\n\r\n<html><body><p>Hello <b>bold</b> world</p></body></html>\r\n".into(),
        // Long text: at most 200 characters (3.3#4, #5).
        format!("Subject: l\r\n\r\n{long}\r\n"),
        // No text at all: an empty string, never NIL (3.2#3, #5).
        "Subject: n\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC\r\n".into(),
    ] {
        assert!(ok(&append(&mut c, "INBOX", &m).await));
    }
    assert!(ok(&cmd(&mut c, "s", "SELECT INBOX").await));
    let r = cmd(&mut c, "p", "FETCH 1:4 (PREVIEW)").await;
    assert!(
        r[0].contains("Grüße aus Zürich") || r[1] == "Grüße aus Zürich)",
        "{r:?}"
    );
    let all = r.join("\n");
    assert!(
        all.contains("Hello bold world") && !all.contains('<'),
        "{r:?}"
    );
    let long_line = r.iter().position(|l| l.starts_with("* 3 FETCH")).unwrap();
    let text = if r[long_line].ends_with('}') {
        r[long_line + 1].trim_end_matches(')').to_string()
    } else {
        r[long_line]
            .split("PREVIEW \"")
            .nth(1)
            .unwrap()
            .trim_end_matches("\")")
            .to_string()
    };
    assert!(
        !text.is_empty() && text.chars().count() <= 200,
        "{}",
        text.len()
    );
    assert!(r.iter().any(|l| l == "* 4 FETCH (PREVIEW \"\")"), "{r:?}");
    // 3.2#1: the same string each time; 4.1#2: LAZY is understood (and,
    // previews being cheap here, answered with the preview, 4.1#1).
    assert_eq!(cmd(&mut c, "p", "FETCH 1:4 (PREVIEW)").await, r);
    let lazy = cmd(&mut c, "p", "FETCH 1:4 (PREVIEW (LAZY))").await;
    assert_eq!(lazy, r);
    // 8#1: who fetched previews is in the log.
    let log = s.log_until("FETCH PREVIEW");
    assert!(
        log.lines()
            .any(|l| l.contains("FETCH PREVIEW") && l.contains("joe@example.org")),
        "{log}"
    );

    // RFC 5267 3.2#1, #2: ESORT's ranges run from the lower number up,
    // whatever the sort order.
    let r = cmd(&mut c, "o", "SORT RETURN (ALL) (REVERSE SUBJECT) UTF-8 ALL").await;
    let set = r[0].rsplit(' ').next().unwrap();
    for range in set.split(',') {
        if let Some((a, b)) = range.split_once(':') {
            assert!(
                a.parse::<u32>().unwrap() < b.parse::<u32>().unwrap(),
                "{r:?}"
            );
        }
    }
    assert!(r[0].starts_with("* ESEARCH (TAG \"o\") ALL "), "{r:?}");

    // RFC 7677 3#1, 4#2: the iteration count offered is at least 4096.
    let mut a = LineClient::connect(s.addr("imap")).await;
    a.line().await;
    let first = "n,,n=joe@example.org,r=abcdefghijklmnop";
    a.send(&format!(
        "a AUTHENTICATE SCRAM-SHA-256 {}\r\n",
        base64::engine::general_purpose::STANDARD.encode(first)
    ))
    .await;
    let challenge = a.line().await;
    let server_first = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(challenge.trim_start_matches("+ "))
            .unwrap(),
    )
    .unwrap();
    let iterations: u32 = server_first
        .split(',')
        .find_map(|p| p.strip_prefix("i="))
        .unwrap()
        .parse()
        .unwrap();
    assert!(iterations >= 4096, "{server_first}");
}

/// RFC 8474 (OBJECTID) and RFC 9208 (QUOTA).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_ids_and_quota() {
    let s = server().await;
    s.cli_ok(&["account", "update", "joe@example.org", "--quota", "100000"]);
    let mut c = login_as(&s, "joe@example.org").await;
    let caps = cmd(&mut c, "c", "CAPABILITY").await;
    // RFC 8474 3#1; RFC 9208 1#2, 3.1.1#2, 3.1.2#5, 5#1, 5#2, 5.1#3,
    // 5.2#3: the resources handled are advertised; 1#3: no QUOTASET, as
    // SETQUOTA is refused (quotas are the administrator's).
    for cap in [
        " OBJECTID",
        " QUOTA ",
        " QUOTA=RES-STORAGE",
        " QUOTA=RES-MESSAGE",
    ] {
        assert!(caps[0].contains(cap), "{cap}: {caps:?}");
    }
    assert!(!caps[0].contains("QUOTASET"), "{caps:?}");
    let r = cmd(&mut c, "q", "SETQUOTA \"\" (STORAGE 10)").await;
    assert!(r.last().unwrap().starts_with("q NO"), "{r:?}");

    // RFC 8474 4.1#1: CREATE's OK has MAILBOXID.
    let id_in = |l: &str, code: &str| -> String {
        l.split(&format!("{code} ("))
            .nth(1)
            .unwrap()
            .split(')')
            .next()
            .unwrap()
            .to_string()
    };
    let r = cmd(&mut c, "c", "CREATE Box").await;
    let created = id_in(r.last().unwrap(), "MAILBOXID");
    // 4.2#1: SELECT and EXAMINE say it; 4.3#1: so does STATUS; 4#1: the
    // same each time; 7#1: in any case.
    let r = cmd(&mut c, "s", "SELECT Box").await;
    let l = r.iter().find(|l| l.contains("[MAILBOXID (")).unwrap();
    assert_eq!(id_in(l, "MAILBOXID"), created);
    let r = cmd(&mut c, "s", "EXAMINE Box").await;
    assert!(
        r.iter()
            .any(|l| l.contains(&format!("[MAILBOXID ({created})]"))),
        "{r:?}"
    );
    let r = cmd(&mut c, "t", "status Box (mailboxid)").await;
    assert_eq!(id_in(&r[0], "MAILBOXID"), created);
    // 4#2: never two mailboxes with one id.
    let r = cmd(&mut c, "l", "LIST \"\" \"*\" RETURN (STATUS (MAILBOXID))").await;
    let mut ids: Vec<String> = r
        .iter()
        .filter(|l| l.starts_with("* STATUS"))
        .map(|l| id_in(l, "MAILBOXID"))
        .collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert!(n >= 2 && ids.len() == n, "{r:?}");
    // 4#4: RENAME keeps it; 4#3: a new mailbox of an old name gets a new one.
    assert!(ok(&cmd(&mut c, "r", "RENAME Box Box2").await));
    let r = cmd(&mut c, "t", "STATUS Box2 (MAILBOXID)").await;
    assert_eq!(id_in(&r[0], "MAILBOXID"), created);
    assert!(ok(&cmd(&mut c, "r", "RENAME Box2 Box").await));
    assert!(ok(&cmd(&mut c, "d", "DELETE Box").await));
    let r = cmd(&mut c, "c", "CREATE Box").await;
    assert_ne!(id_in(r.last().unwrap(), "MAILBOXID"), created);

    // Messages: a thread of two, and one alone.
    for m in [
        "Message-ID: <a@x>\r\nSubject: first\r\n\r\nx\r\n",
        "Message-ID: <b@x>\r\nIn-Reply-To: <a@x>\r\nReferences: <a@x>\r\nSubject: Re: first\r\n\r\ny\r\n",
        "Message-ID: <c@x>\r\nSubject: other\r\n\r\nz\r\n",
    ] {
        assert!(ok(&append(&mut c, "INBOX", m).await));
    }
    assert!(ok(&cmd(&mut c, "s", "SELECT INBOX").await));
    let ids = |r: &[String]| -> Vec<(String, String)> {
        r.iter()
            .filter(|l| l.contains("EMAILID"))
            .map(|l| (id_in(l, "EMAILID"), id_in(l, "THREADID")))
            .collect()
    };
    let first = ids(&cmd(&mut c, "f", "fetch 1:3 (emailid threadid)").await);
    assert_eq!(first.len(), 3);
    // 5.2#2: related messages share a thread; 5.2#5: email and thread
    // ids never share a value.
    assert_eq!(first[0].1, first[1].1);
    assert_ne!(first[0].1, first[2].1);
    for (e, _) in &first {
        assert!(first.iter().all(|(_, t)| t != e), "{first:?}");
    }
    // 5.1#2, 5.2#1: a copy and a moved message keep EMAILID and THREADID
    // (COPYUID pairs them); 5.1#1, 5.2#3: they never change, even when a
    // later message joins two threads.
    let r = cmd(&mut c, "k", "COPY 1 Box").await;
    assert!(r.last().unwrap().contains("[COPYUID "), "{r:?}");
    assert!(ok(&cmd(&mut c, "m", "MOVE 3 Box").await));
    assert!(ok(&append(
        &mut c,
        "INBOX",
        "Message-ID: <d@x>\r\nReferences: <a@x> <c@x>\r\nSubject: both\r\n\r\nw\r\n"
    )
    .await));
    let again = ids(&cmd(&mut c, "f", "FETCH 1:2 (EMAILID THREADID)").await);
    assert_eq!(again, first[..2]);
    assert!(ok(&cmd(&mut c, "s", "SELECT Box").await));
    let in_box = ids(&cmd(&mut c, "f", "FETCH 1:2 (EMAILID THREADID)").await);
    assert_eq!(in_box, [first[0].clone(), first[2].clone()]);

    // RFC 9208 4.1.2#1: GETQUOTAROOT gives QUOTAROOT and QUOTA; 4.1.1#1:
    // GETQUOTA gives QUOTA; 3.1.2#2, #4: usage and limit are integers;
    // 5.2#1: MESSAGE is exact; 3.2#2: the account's limit is shown; 7#1:
    // in any case.
    let r = cmd(&mut c, "g", "getquotaroot INBOX").await;
    assert!(r[0].starts_with("* QUOTAROOT \"INBOX\" "), "{r:?}");
    let root = r[0].rsplit(' ').next().unwrap().to_string();
    let quota = r
        .iter()
        .find(|l| l.starts_with("* QUOTA "))
        .unwrap()
        .clone();
    assert_eq!(
        number_after(std::slice::from_ref(&quota), "MESSAGE"),
        None,
        "no message limit set: {quota}"
    );
    let storage: Vec<u64> = quota
        .split("STORAGE ")
        .nth(1)
        .unwrap()
        .trim_end_matches(')')
        .split(' ')
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(storage[1], 100000 / 1024, "{quota}");
    let r = cmd(&mut c, "g", &format!("GETQUOTA {root}")).await;
    assert_eq!(r[0], quota, "{r:?}");
    s.cli_ok(&[
        "account",
        "update",
        "joe@example.org",
        "--quota-messages",
        "4",
    ]);
    let r = cmd(&mut c, "g", "GETQUOTAROOT INBOX").await;
    let all = r.join(" ");
    // Four messages stored (the copy in Box is the same message).
    assert!(all.contains("MESSAGE 4 4"), "{r:?}");
    // 4.3.1#1: an APPEND over the limit is NO [OVERQUOTA]; 4.3.1#2: never
    // an untagged OVERQUOTA.
    let r = append(&mut c, "INBOX", "Subject: one too many\r\n\r\nx\r\n").await;
    assert!(r.last().unwrap().starts_with("A NO [OVERQUOTA]"), "{r:?}");
    assert!(
        !r.iter().any(|l| l.starts_with("* NO [OVERQUOTA]")),
        "{r:?}"
    );
    // 5.1#2, 5.2#2, 7#2-#4: STATUS DELETED and DELETED-STORAGE; 4.1.4#1:
    // exact: a message also kept in another mailbox frees nothing.
    assert!(ok(&cmd(&mut c, "s", "SELECT INBOX").await));
    let sizes = cmd(&mut c, "z", "FETCH 1:2 RFC822.SIZE").await;
    let size2 = number_after(std::slice::from_ref(&sizes[1]), "RFC822.SIZE").unwrap();
    assert!(ok(
        &cmd(&mut c, "e", "STORE 1:2 +FLAGS.SILENT (\\Deleted)").await
    ));
    let r = cmd(&mut c, "t", "status INBOX (deleted deleted-storage)").await;
    assert!(r[0].contains("DELETED 2 "), "{r:?}");
    assert_eq!(
        number_after(&r, "DELETED-STORAGE"),
        Some(size2),
        "message 1 is also in Box: {r:?}"
    );
}

/// RFC 5464 (METADATA).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_sentences() {
    // (No small literal limit here: one value is over 64 KiB.)
    let s = TestServer::start_with("[imap]\nauth-without-tls = true\n");
    s.account("joe@example.org");
    s.account("ann@example.org");
    let mut ann = login_as(&s, "ann@example.org").await;
    let mut c = login_as(&s, "joe@example.org").await;
    assert!(ok(&cmd(&mut ann, "c", "CREATE Team").await));
    assert!(ok(&cmd(&mut ann, "c", "CREATE Hidden").await));
    assert!(ok(
        &cmd(&mut ann, "a", "SETACL Team joe@example.org lr").await
    ));
    // 3.3#3: shared annotations: what Ann writes under /shared Joe reads;
    // 7#3: her /private ones stay hers.
    assert!(ok(&cmd(
        &mut ann,
        "m",
        "SETMETADATA Team (/shared/comment \"team box\" /private/comment \"mine\")"
    )
    .await));
    let r = cmd(
        &mut c,
        "g",
        "GETMETADATA \"Shared/ann@example.org/Team\" (/shared/comment /private/comment)",
    )
    .await;
    assert_eq!(
        r[0], "* METADATA \"Shared/ann@example.org/Team\" (/shared/comment \"team box\")",
        "{r:?}"
    );
    // 3.3#1: a mailbox Joe has no rights on: NO.
    let r = cmd(
        &mut c,
        "g",
        "GETMETADATA \"Shared/ann@example.org/Hidden\" /shared/comment",
    )
    .await;
    assert!(r.last().unwrap().starts_with("g NO"), "{r:?}");
    // 3.2#1, 3.2#3, 5#2, 6#1: entry names: no "//", no trailing "/", no
    // "*" or "%", ASCII only, under /shared or /private: else BAD.
    for bad in [
        "/shared//x",
        "/shared/x/",
        "/shared/a*",
        "/private/b%",
        "/shared/caf\u{e9}",
        "/other/x",
    ] {
        let r = cmd(&mut c, "b", &format!("SETMETADATA INBOX ({bad} \"v\")")).await;
        assert!(r.last().unwrap().starts_with("b BAD"), "{bad}: {r:?}");
    }
    // 4.1#5: ten entries of 1024 bytes are taken; 4.3#1: SETMETADATA
    // answers with no METADATA response; 5#1: names in any case.
    let v = "v".repeat(1024);
    let items: Vec<String> = (0..10).map(|i| format!("/private/e{i} \"{v}\"")).collect();
    let r = cmd(
        &mut c,
        "m",
        &format!("setmetadata INBOX ({})", items.join(" ")),
    )
    .await;
    assert_eq!(r.len(), 1, "{r:?}");
    assert!(ok(&r), "{r:?}");
    // 4.2.1#1: MAXSIZE leaves out longer values and says LONGENTRIES.
    let r = cmd(
        &mut c,
        "g",
        "getmetadata (maxsize 100) INBOX (/private/e0 /private/e1)",
    )
    .await;
    assert!(
        r.last()
            .unwrap()
            .starts_with("g OK [METADATA LONGENTRIES 1024]"),
        "{r:?}"
    );
    assert!(!r.iter().any(|l| l.starts_with("* METADATA")), "{r:?}");
    // 4.3#3, 7#1: a value over the limit: NO [METADATA MAXSIZE n]; 4.3#6:
    // the other entries of that command are not set.
    let big = "x".repeat(64 * 1024 + 1);
    let r = cmd(
        &mut c,
        "m",
        &format!(
            "SETMETADATA INBOX (/private/ok \"1\" /private/big {{{}+}}\r\n{big})",
            big.len()
        ),
    )
    .await;
    assert!(
        r.last().unwrap().starts_with("m NO [METADATA MAXSIZE "),
        "{r:?}"
    );
    let r = cmd(&mut c, "g", "GETMETADATA INBOX /private/ok").await;
    assert!(!r.iter().any(|l| l.starts_with("* METADATA")), "{r:?}");
    // 4.3#4, 7#1: too many entries: NO [METADATA TOOMANY], nothing set.
    let many: Vec<String> = (0..100).map(|i| format!("/private/n{i} \"x\"")).collect();
    let r = cmd(
        &mut c,
        "m",
        &format!("SETMETADATA INBOX ({})", many.join(" ")),
    )
    .await;
    assert!(
        r.last().unwrap().starts_with("m NO [METADATA TOOMANY]"),
        "{r:?}"
    );
    let r = cmd(&mut c, "g", "GETMETADATA INBOX /private/n0").await;
    assert!(!r.iter().any(|l| l.starts_with("* METADATA")), "{r:?}");
    // 4.1#1: annotations follow RENAME; 4.1#2: a deleted mailbox's go
    // with it.
    assert!(ok(&cmd(&mut c, "c", "CREATE Notes").await));
    assert!(ok(&cmd(
        &mut c,
        "m",
        "SETMETADATA Notes (/shared/comment \"n\")"
    )
    .await));
    assert!(ok(&cmd(&mut c, "r", "RENAME Notes Notes2").await));
    let r = cmd(&mut c, "g", "GETMETADATA Notes2 /shared/comment").await;
    assert_eq!(
        r[0], "* METADATA \"Notes2\" (/shared/comment \"n\")",
        "{r:?}"
    );
    assert!(ok(&cmd(&mut c, "d", "DELETE Notes2").await));
    assert!(ok(&cmd(&mut c, "c", "CREATE Notes2").await));
    let r = cmd(&mut c, "g", "GETMETADATA Notes2 /shared/comment").await;
    assert_eq!(r.len(), 1, "{r:?}");
}
