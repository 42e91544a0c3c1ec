//! RFC 9051 (IMAP4rev2), sentence by sentence: one test per group of
//! sections, each assertion named by the sentence id it checks (the ids
//! of `../shared/tools/rfc-requirements 9051`). What other suites already
//! check is claimed from them in spec/rfc9051.toml.

mod common;

use common::imap::{append, cmd, ok};
use common::*;

async fn server() -> TestServer {
    let s = TestServer::start_with("[imap]\nauth-without-tls = true\n");
    s.account("joe@example.org");
    s
}

async fn connect(s: &TestServer) -> LineClient {
    let mut c = LineClient::connect(s.addr("imap")).await;
    c.line().await;
    c
}

async fn login(s: &TestServer) -> LineClient {
    let mut c = connect(s).await;
    assert!(ok(&cmd(&mut c, "L", "LOGIN joe@example.org pw").await));
    c
}

fn status_of(r: &[String]) -> &str {
    r.last().and_then(|l| l.split(' ').nth(1)).unwrap_or("")
}

/// §2.2, §3, §4.3, §6.1: tags, syntax, states, literals, LOGOUT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn states_syntax_and_logout() {
    let s = server().await;
    let mut c = connect(&s).await;
    // 6.1.1#4: AUTH=PLAIN (before login, where mechanisms are listed).
    let r = cmd(&mut c, "p", "CAPABILITY").await;
    assert!(r[0].contains(" AUTH=PLAIN"), "{r:?}");
    // 3.1#1: before authentication, mailbox commands are refused.
    assert_eq!(status_of(&cmd(&mut c, "a", "SELECT INBOX").await), "BAD");
    assert!(ok(&cmd(&mut c, "L", "LOGIN joe@example.org pw").await));
    // 2.2.1#1: a tag used twice is accepted both times.
    assert!(ok(&cmd(&mut c, "same", "NOOP").await));
    assert!(ok(&cmd(&mut c, "same", "NOOP").await));
    // 2.2.2#1, 2.2.2#2: syntax errors (extra or missing arguments,
    // doubled spaces) are BAD, and the session goes on.
    for bad in [
        "NOOP extra",
        "SELECT",
        "SELECT  INBOX",
        "STATUS INBOX",
        "CREATE",
    ] {
        assert_eq!(status_of(&cmd(&mut c, "b", bad).await), "BAD", "{bad}");
    }
    // 9#3: keywords in any case; 9#14: every case of INBOX is INBOX.
    assert!(ok(&cmd(&mut c, "n", "noop").await));
    let r = cmd(&mut c, "n2", "examine iNbOx").await;
    assert!(ok(&r), "{r:?}");
    assert!(ok(&cmd(&mut c, "n3", "unselect").await));
    // 3.2#1: message commands need a selected mailbox.
    assert_eq!(status_of(&cmd(&mut c, "c", "FETCH 1 FLAGS").await), "BAD");
    // 6.1.1#1, 6.1.1#2: one CAPABILITY response naming IMAP4rev2 before
    // the OK.
    let r = cmd(&mut c, "d", "CAPABILITY").await;
    assert_eq!(
        r.iter().filter(|l| l.starts_with("* CAPABILITY ")).count(),
        1,
        "{r:?}"
    );
    // RFC 3501 §6.1.1, §7.2.1: IMAP4rev1 is listed too.
    assert!(
        r[0].contains(" IMAP4rev2") && r[0].contains(" IMAP4rev1"),
        "{r:?}"
    );
    // 4.3.1#2: UTF-8 in a quoted string.
    append(
        &mut c,
        "INBOX",
        "Subject: =?utf-8?q?caf=C3=A9?=\r\n\r\nx\r\n",
    )
    .await;
    assert!(ok(&cmd(&mut c, "e", "SELECT INBOX").await));
    let r = cmd(&mut c, "f", "SEARCH CHARSET UTF-8 SUBJECT \"café\"").await;
    assert_eq!(r[0], "* SEARCH 1", "{r:?}");
    // RFC 3501 §6.4.4: US-ASCII, and NO [BADCHARSET] for a charset not
    // known (an IMAP4rev1 session).
    let r = cmd(&mut c, "f2", "SEARCH CHARSET US-ASCII SUBJECT CAF").await;
    assert_eq!(r[0], "* SEARCH 1", "{r:?}");
    let r = cmd(&mut c, "f3", "SEARCH CHARSET X-KLINGON ALL").await;
    assert!(r.last().unwrap().starts_with("f3 NO [BADCHARSET"), "{r:?}");
    // 4.3#2: literals the server sends are synchronizing ({n}, never {n+}).
    let r = cmd(&mut c, "g", "FETCH 1 BODY.PEEK[]").await;
    assert!(r[0].ends_with('}') && !r[0].ends_with("+}"), "{r:?}");
    // 3.4#1, 6.1.3#1, 6.1.3#2: LOGOUT: BYE, then the tagged OK, then the
    // connection closes.
    c.send("z LOGOUT\r\n").await;
    assert!(c.line().await.starts_with("* BYE"));
    assert!(c.line().await.starts_with("z OK"));
    assert_eq!(c.line_opt().await, None);
}

fn field(r: &[String], name: &str) -> Option<u64> {
    r.iter().find_map(|l| {
        let rest = l.split(&format!("{name} ")).nth(1)?;
        rest.split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    })
}

fn uids(r: &[String]) -> Vec<u64> {
    r.iter()
        .filter_map(|l| field(std::slice::from_ref(l), "UID"))
        .collect()
}

/// §2.3.1, §6.3.4-§6.3.6: UIDs and the life of mailboxes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uids_and_mailbox_lifecycle() {
    let s = server().await;
    let mut c = login(&s).await;
    assert!(ok(&cmd(&mut c, "a", "CREATE Box").await));
    let st = cmd(&mut c, "b", "STATUS Box (UIDNEXT UIDVALIDITY)").await;
    let (next0, validity) = (
        field(&st, "UIDNEXT").unwrap(),
        field(&st, "UIDVALIDITY").unwrap(),
    );
    // 2.3.1.1#5: UIDNEXT stays without new messages...
    assert!(ok(&cmd(&mut c, "c", "SELECT Box").await));
    assert_eq!(
        field(&cmd(&mut c, "d", "STATUS Box (UIDNEXT)").await, "UIDNEXT"),
        Some(next0)
    );
    for i in 0..3 {
        append(
            &mut c,
            "Box",
            &format!("Subject: {i}\r\nDate: Mon, 2 Jan 2023 10:00:00 +0000\r\n\r\nbody {i}\r\n"),
        )
        .await;
    }
    // ... and moves when they come (2.3.1.1#4, #5).
    let next1 = field(&cmd(&mut c, "e", "STATUS Box (UIDNEXT)").await, "UIDNEXT").unwrap();
    assert!(next1 >= next0 + 3);
    // 2.3.1.1#1, #8, 2.3.1.2#1: strictly ascending, numbered by UID.
    let r = cmd(&mut c, "f", "FETCH 1:* (UID)").await;
    let u = uids(&r);
    assert!(u.len() == 3 && u.windows(2).all(|w| w[0] < w[1]), "{r:?}");
    // 2.3.1.1#10: static items do not change when flags do.
    let items = "UID INTERNALDATE RFC822.SIZE ENVELOPE BODYSTRUCTURE BODY.PEEK[]";
    let before = cmd(&mut c, "g", &format!("FETCH 2 ({items})")).await;
    assert!(ok(&cmd(&mut c, "h", "STORE 2 +FLAGS (\\Seen $Work)").await));
    assert_eq!(
        before,
        cmd(&mut c, "g", &format!("FETCH 2 ({items})")).await
    );
    // 2.3.4#1: RFC822.SIZE is the size of BODY[].
    let r = cmd(&mut c, "i", "FETCH 1 (RFC822.SIZE BODY.PEEK[])").await;
    let size = field(&r, "RFC822.SIZE").unwrap();
    assert!(r[0].ends_with(&format!("BODY[] {{{size}}}")), "{r:?}");
    // 2.3.1.1#11: an expunged UID is not used again.
    assert!(ok(
        &cmd(&mut c, "j", "STORE 3 +FLAGS.SILENT (\\Deleted)").await
    ));
    assert!(ok(&cmd(&mut c, "k", "EXPUNGE").await));
    append(&mut c, "Box", "Subject: later\r\n\r\nx\r\n").await;
    let r = cmd(&mut c, "l", "FETCH 1:* (UID)").await;
    let after = uids(&r);
    assert!(
        !after.contains(&u[2]) && after.iter().all(|&x| x < u[2] || x >= next1),
        "{r:?}"
    );
    // 2.3.1.1#2, #3: the same UIDs and UIDVALIDITY in another session.
    let mut d = login(&s).await;
    let r = cmd(&mut d, "a", "SELECT Box").await;
    assert_eq!(field(&r, "UIDVALIDITY"), Some(validity));
    assert_eq!(uids(&cmd(&mut d, "b", "FETCH 1:* (UID)").await), after);
    assert!(ok(&cmd(&mut d, "c", "CLOSE").await));

    // 6.3.4#4: a trailing separator (a declaration some servers want)
    // is ignored.
    assert!(ok(&cmd(&mut c, "m0", "CREATE trail/").await));
    let r = cmd(&mut c, "m1", "LIST \"\" trail*").await;
    assert!(
        r.iter().any(|l| l.ends_with("\"trail\"")) && !r.iter().any(|l| l.ends_with("\"trail/\"")),
        "{r:?}"
    );
    // 6.3.4#5, #6, 5.1.1#1: CREATE makes the superior names; "/" is the
    // one separator.
    assert!(ok(&cmd(&mut c, "m", "CREATE foo/bar/zap").await));
    let r = cmd(&mut c, "n", "LIST \"\" foo*").await;
    for n in ["\"foo\"", "\"foo/bar\"", "\"foo/bar/zap\""] {
        assert!(r.iter().any(|l| l.ends_with(n)), "{n}: {r:?}");
    }
    // 6.3.5#1-#4: DELETE of a name with inferiors: NO [HASCHILDREN], and
    // the inferiors stay.
    let r = cmd(&mut c, "o", "DELETE foo/bar").await;
    assert!(r.last().unwrap().starts_with("o NO [HASCHILDREN]"), "{r:?}");
    assert!(cmd(&mut c, "p", "LIST \"\" foo/bar/zap").await[0].ends_with("\"foo/bar/zap\""));
    // 6.3.6#1-#3: RENAME takes the inferiors along and makes the new
    // superiors.
    assert!(ok(&cmd(&mut c, "q", "RENAME foo/bar baz/rag/zowie").await));
    let r = cmd(&mut c, "r", "LIST \"\" *").await;
    for n in [
        "\"baz\"",
        "\"baz/rag\"",
        "\"baz/rag/zowie\"",
        "\"baz/rag/zowie/zap\"",
    ] {
        assert!(r.iter().any(|l| l.ends_with(n)), "{n}: {r:?}");
    }
    assert!(
        !r.iter()
            .any(|l| l.ends_with("\"foo/bar\"") || l.ends_with("\"foo/bar/zap\"")),
        "{r:?}"
    );
    // 6.3.4#7, 6.3.5#5, 6.3.6#4: a mailbox made again under a name used
    // before never repeats a (UIDVALIDITY, UID) pair of the old one.
    let old = cmd(&mut c, "s", "STATUS Box (UIDVALIDITY UIDNEXT)").await;
    assert!(ok(&cmd(&mut c, "t", "RENAME Box Kept").await));
    assert!(ok(&cmd(&mut c, "u", "CREATE Box").await));
    let new = cmd(&mut c, "v", "STATUS Box (UIDVALIDITY UIDNEXT)").await;
    assert!(
        field(&new, "UIDVALIDITY") != field(&old, "UIDVALIDITY")
            || field(&new, "UIDNEXT") >= field(&old, "UIDNEXT"),
        "{old:?} {new:?}"
    );
    assert!(ok(&cmd(&mut c, "w", "DELETE Box").await));
    assert!(ok(&cmd(&mut c, "x", "CREATE Box").await));
    let again = cmd(&mut c, "y", "STATUS Box (UIDVALIDITY UIDNEXT)").await;
    assert!(
        field(&again, "UIDVALIDITY") != field(&new, "UIDVALIDITY")
            || field(&again, "UIDNEXT") >= field(&new, "UIDNEXT"),
        "{new:?} {again:?}"
    );
    // 5.1#2, 6.3.4#1: names that are not Net-Unicode are refused.
    assert!(ok(&cmd(&mut c, "z", "ENABLE UTF8=ACCEPT").await));
    for bad in ["\"Cafe\u{301}\"", "{4+}\r\na\u{7}bc"] {
        let r = cmd(&mut c, "z1", &format!("CREATE {bad}")).await;
        assert_eq!(status_of(&r), "NO", "{bad}: {r:?}");
    }
    assert!(ok(&cmd(&mut c, "z2", "CREATE \"Caf\u{e9}\"").await));
}

/// §5.2, §6.3.2, §6.3.3, §6.3.11, §6.3.12, §6.4.7, §6.4.8: SELECT,
/// EXAMINE, STATUS, APPEND, COPY and MOVE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn select_status_append_copy_move() {
    select_flow(true).await;
}

/// The same in an IMAP4rev1 session (RFC 3501 §6.3.1, §6.3.11, §6.4.7).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn select_status_append_copy_move_rev1() {
    select_flow(false).await;
}

async fn select_flow(rev2: bool) {
    let s = server().await;
    s.account("ann@example.org");
    let mut c = login(&s).await;
    if rev2 {
        assert!(ok(&cmd(&mut c, "a", "ENABLE IMAP4rev2").await));
    }
    // 6.3.12#3, #4, 2.3.3#2: flags and date as given.
    let r = append_with(
        &mut c,
        "INBOX (\\Flagged $Mine $Forwarded $Junk) \"02-Jan-2023 10:00:00 +0000\"",
        "Subject: a\r\n\r\nx\r\n",
    )
    .await;
    assert!(ok(&r), "{r:?}");
    // 7.1#4, #5: one message appended: APPENDUID names one UID, not a
    // range.
    let code = r.last().unwrap();
    assert!(
        code.contains("[APPENDUID ") && !code.contains(':'),
        "{code}"
    );
    // 6.3.2#1-#4, #7: FLAGS, EXISTS, LIST, PERMANENTFLAGS, UIDNEXT,
    // UIDVALIDITY, then OK [READ-WRITE].
    let r = cmd(&mut c, "b", "SELECT INBOX").await;
    for want in [
        "* FLAGS (",
        "* 1 EXISTS",
        "* OK [PERMANENTFLAGS (",
        "* OK [UIDNEXT ",
        "* OK [UIDVALIDITY ",
    ] {
        assert!(r.iter().any(|l| l.starts_with(want)), "{want}: {r:?}");
    }
    // The LIST line is IMAP4rev2's; IMAP4rev1 has RECENT instead.
    if rev2 {
        assert!(
            r.iter()
                .any(|l| l.starts_with("* LIST (") && l.ends_with("\"INBOX\"")),
            "{r:?}"
        );
    } else {
        assert!(r.iter().any(|l| l == "* 1 RECENT"), "{r:?}");
    }
    assert!(r.last().unwrap().starts_with("b OK [READ-WRITE]"), "{r:?}");
    let f = cmd(&mut c, "c", "FETCH 1 (FLAGS INTERNALDATE)").await;
    assert!(
        f[0].contains("\\Flagged")
            && f[0].contains("$Mine")
            && f[0].contains("\"02-Jan-2023 10:00:00 +0000\""),
        "{f:?}"
    );
    // 6.3.12#9, #10: APPEND to the selected mailbox: EXISTS at once.
    let r = append(&mut c, "INBOX", "Subject: b\r\n\r\nx\r\n").await;
    assert!(r.iter().any(|l| l == "* 2 EXISTS"), "{r:?}");
    // 5.2#1: another session's APPEND: EXISTS with the next command.
    let mut d = login(&s).await;
    append(&mut d, "INBOX", "Subject: c\r\n\r\nx\r\n").await;
    assert!(cmd(&mut c, "d", "NOOP")
        .await
        .iter()
        .any(|l| l == "* 3 EXISTS"));
    // 5.2#2, 6.4.6#2: a flag another session changed arrives unasked,
    // also after a .SILENT STORE.
    assert!(ok(&cmd(&mut d, "e", "SELECT INBOX").await));
    assert!(ok(&cmd(&mut d, "f", "STORE 3 +FLAGS (\\Answered)").await));
    let r = cmd(&mut c, "g", "STORE 2 +FLAGS.SILENT (\\Seen)").await;
    // 7.5.2#17, 6.3.13#1: with UID.
    assert!(
        r.iter().any(|l| l.starts_with("* 3 FETCH (")
            && l.contains("\\Answered")
            && (l.contains("UID 3") || !rev2)),
        "{r:?}"
    );
    // 6.4.6#1: .SILENT: no FETCH for the message stored.
    assert!(!r.iter().any(|l| l.starts_with("* 2 FETCH")), "{r:?}");
    // 6.3.11#1, #3, #5: STATUS on the selected mailbox; SIZE at least the
    // sum of RFC822.SIZE.
    let st = cmd(&mut c, "h", "STATUS INBOX (MESSAGES SIZE)").await;
    assert!(st[0].starts_with("* STATUS \"INBOX\" ("), "{st:?}");
    let sizes = cmd(&mut c, "i", "FETCH 1:* RFC822.SIZE").await;
    let sum: u64 = sizes
        .iter()
        .filter_map(|l| field(std::slice::from_ref(l), "RFC822.SIZE"))
        .sum();
    assert!(field(&st, "SIZE").unwrap() >= sum, "{st:?} {sizes:?}");
    // 6.3.12#6, #7, 6.4.7#2-#4, 6.4.8#6-#8: no such mailbox: NO
    // [TRYCREATE], and none is made.
    let r = append(&mut c, "Nowhere", "Subject: n\r\n\r\nx\r\n").await;
    assert!(r.last().unwrap().starts_with("A NO [TRYCREATE]"), "{r:?}");
    for (t, c2) in [("j", "COPY 1 Nowhere"), ("k", "MOVE 1 Nowhere")] {
        let r = cmd(&mut c, t, c2).await;
        assert!(
            r.last()
                .unwrap()
                .starts_with(&format!("{t} NO [TRYCREATE]")),
            "{r:?}"
        );
    }
    assert!(cmd(&mut c, "l", "LIST \"\" Nowhere").await.len() == 1);
    // 6.3.12#5: a failed APPEND leaves the mailbox as it was.
    let r = append_with(
        &mut c,
        "INBOX (\\Seen) \"99-Foo-2023 10:00:00 +0000\"",
        "Subject: bad\r\n\r\nx\r\n",
    )
    .await;
    assert!(!ok(&r), "{r:?}");
    assert_eq!(
        field(
            &cmd(&mut c, "m", "STATUS INBOX (MESSAGES)").await,
            "MESSAGES"
        ),
        Some(3)
    );
    // 6.4.7#1, 2.3.3#1: COPY keeps flags and internal date.
    assert!(ok(&cmd(&mut c, "n", "CREATE Copies").await));
    assert!(ok(&cmd(&mut c, "o", "COPY 1 Copies").await));
    assert!(ok(&cmd(&mut c, "p", "EXAMINE Copies").await));
    let g = cmd(&mut c, "q", "FETCH 1 (FLAGS INTERNALDATE)").await;
    assert!(
        g[0].contains("\\Flagged")
            && g[0].contains("$Mine")
            && g[0].contains("\"02-Jan-2023 10:00:00 +0000\""),
        "{g:?}"
    );
    // 2.3.2#1: the registered keywords are kept by APPEND and COPY and
    // found by SEARCH.
    assert!(
        g[0].contains("$Forwarded") && g[0].contains("$Junk"),
        "{g:?}"
    );
    // RFC 3501 §6.4.7: in an IMAP4rev1 session the copy is \Recent.
    assert!(rev2 || g[0].contains("\\Recent"), "{g:?}");
    let r = cmd(&mut c, "q2", "SEARCH KEYWORD $Forwarded").await;
    assert!(r[0].ends_with(" 1"), "{r:?}");
    // 6.3.3#1, #2, 6.3.2#6: EXAMINE answered READ-ONLY; the mailbox
    // selected before was CLOSED.
    let r = cmd(&mut c, "r", "EXAMINE INBOX").await;
    assert!(r.iter().any(|l| l.starts_with("* OK [CLOSED]")), "{r:?}");
    assert!(r.last().unwrap().starts_with("r OK [READ-ONLY]"), "{r:?}");
    // 6.4.8#1-#5, #9: MOVE: COPYUID in an untagged OK before the
    // expunge, no STORE response codes, flags and date kept, the
    // message in exactly one mailbox.
    assert!(ok(&cmd(&mut c, "s", "SELECT INBOX").await));
    let r = cmd(&mut c, "t", "MOVE 1 Copies").await;
    let ok_at = r
        .iter()
        .position(|l| l.starts_with("* OK [COPYUID "))
        .unwrap_or_else(|| panic!("{r:?}"));
    let gone_at = r
        .iter()
        .position(|l| l.contains("EXPUNGE") || l.starts_with("* VANISHED"))
        .unwrap();
    assert!(
        ok_at < gone_at && !r.iter().any(|l| l.contains("FETCH")),
        "{r:?}"
    );
    assert_eq!(
        field(
            &cmd(&mut c, "u", "STATUS Copies (MESSAGES)").await,
            "MESSAGES"
        ),
        Some(2)
    );
    assert_eq!(
        field(
            &cmd(&mut c, "v", "STATUS INBOX (MESSAGES)").await,
            "MESSAGES"
        ),
        Some(2)
    );
    // 6.3.12#8, 6.4.7#6: into a mailbox the user may add to but not
    // read: no APPENDUID or COPYUID.
    let mut ann = LineClient::connect(s.addr("imap")).await;
    ann.line().await;
    assert!(ok(&cmd(&mut ann, "L", "LOGIN ann@example.org pw").await));
    assert!(ok(&cmd(&mut ann, "a", "CREATE Drop").await));
    assert!(ok(
        &cmd(&mut ann, "b", "SETACL Drop joe@example.org li").await
    ));
    let r = append(
        &mut c,
        "\"Shared/ann@example.org/Drop\"",
        "Subject: drop\r\n\r\nx\r\n",
    )
    .await;
    assert!(ok(&r) && !r.last().unwrap().contains("APPENDUID"), "{r:?}");
    let r = cmd(&mut c, "w", "COPY 1 \"Shared/ann@example.org/Drop\"").await;
    assert!(ok(&r) && !r.last().unwrap().contains("COPYUID"), "{r:?}");
}

async fn append_with(c: &mut LineClient, head: &str, m: &str) -> Vec<String> {
    c.send(&format!("A APPEND {head} {{{}+}}\r\n{m}\r\n", m.len()))
        .await;
    c.imap_until("A").await
}

/// §6.3.1 ENABLE, §6.4.4 SEARCH, §6.4.5 FETCH, §6.4.9 UID.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enable_search_fetch() {
    let s = server().await;
    let mut c = login(&s).await;
    let caps = cmd(&mut c, "a", "CAPABILITY").await;
    // 6.3.1#1, #2: unknown, or known but not for ENABLE: ignored.
    let r = cmd(&mut c, "b", "ENABLE X-NOTHING IDLE").await;
    assert!(
        ok(&r)
            && !r
                .iter()
                .any(|l| l.starts_with("* ENABLED") && l.len() > "* ENABLED".len()),
        "{r:?}"
    );
    // 6.3.1#3, #4, #7: each ENABLED lists what that command enabled.
    let r = cmd(&mut c, "c", "ENABLE CONDSTORE").await;
    assert_eq!(r[0], "* ENABLED CONDSTORE", "{r:?}");
    let r = cmd(&mut c, "d", "ENABLE IMAP4rev2 CONDSTORE").await;
    assert_eq!(r[0], "* ENABLED IMAP4rev2", "{r:?}");
    // 6.3.1#8: CAPABILITY is the same after ENABLE.
    assert_eq!(caps, cmd(&mut c, "a", "CAPABILITY").await);

    for (i, subj) in ["Alpha", "beta", "Gamma"].iter().enumerate() {
        append(&mut c, "INBOX", &format!("Subject: {subj}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\npart one {i}\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\nContent-Type: multipart/alternative; boundary=c\r\n\r\n--c\r\nContent-Type: text/plain\r\n\r\ninner text\r\n--c--\r\n--b--\r\n")).await;
    }
    assert!(ok(&cmd(&mut c, "e", "SELECT INBOX").await));
    // 6.4.4#1: an unknown RETURN option is BAD.
    assert_eq!(
        status_of(&cmd(&mut c, "f", "SEARCH RETURN (FROB) ALL").await),
        "BAD"
    );
    // 6.4.4#10, #12, #15: US-ASCII, UTF-8 and no charset; ASCII case
    // does not matter.
    for q in [
        "SEARCH CHARSET US-ASCII SUBJECT ALPHA",
        "SEARCH CHARSET UTF-8 SUBJECT alpha",
        "SEARCH SUBJECT aLpHa",
    ] {
        let r = cmd(&mut c, "g", q).await;
        assert!(
            r[0].starts_with("* ESEARCH") && r[0].ends_with("ALL 1"),
            "{q}: {r:?}"
        );
    }
    // 6.4.4#13, #14: a charset we do not know: NO [BADCHARSET].
    let r = cmd(&mut c, "h", "SEARCH CHARSET X-KLINGON SUBJECT a").await;
    assert!(r.last().unwrap().starts_with("h NO [BADCHARSET"), "{r:?}");
    // 6.4.4.1#1: a SEARCH without SAVE leaves $ as it was.
    assert!(ok(
        &cmd(&mut c, "i", "SEARCH RETURN (SAVE) SUBJECT beta").await
    ));
    assert!(ok(&cmd(&mut c, "j", "SEARCH SUBJECT gamma").await));
    let r = cmd(&mut c, "k", "FETCH $ (UID)").await;
    assert_eq!(r.iter().filter(|l| l.starts_with("* ")).count(), 1, "{r:?}");
    assert!(r[0].starts_with("* 2 FETCH"), "{r:?}");
    // 6.4.4.2#1: SEARCH ... SAVE then FETCH $ sent together run in order.
    c.send("l1 SEARCH RETURN (SAVE) SUBJECT gamma\r\nl2 FETCH $ (UID)\r\n")
        .await;
    let r = c.imap_until("l2").await;
    assert!(r.iter().any(|l| l.starts_with("* 3 FETCH")), "{r:?}");
    // 6.4.5.1#1, #2: part numbers through a message/rfc822 part; MIME
    // only after a part number.
    let r = cmd(&mut c, "m", "FETCH 1 (BODY.PEEK[2.1] BODY.PEEK[1.MIME])").await;
    let all = r.join("\n");
    assert!(
        all.contains("inner text") && all.contains("Content-Type: text/plain"),
        "{r:?}"
    );
    assert_eq!(
        status_of(&cmd(&mut c, "n", "FETCH 1 BODY.PEEK[MIME]").await),
        "BAD"
    );
    // 6.4.5#2: a FETCH that sets \Seen shows the new flags.
    let r = cmd(&mut c, "o", "FETCH 1 BODY[1]").await;
    assert!(r.iter().any(|l| l.contains("\\Seen")), "{r:?}");
    // 6.4.9#1, #2: UID SEARCH answers ESEARCH with UID; UID FETCH
    // carries UID unasked.
    let r = cmd(&mut c, "p", "UID SEARCH ALL").await;
    assert!(r[0].starts_with("* ESEARCH (TAG \"p\") UID"), "{r:?}");
    let r = cmd(&mut c, "q", "UID FETCH 1:* FLAGS").await;
    assert!(
        r.iter()
            .filter(|l| l.contains("FETCH"))
            .all(|l| l.contains("UID ")),
        "{r:?}"
    );
    // 6.4.5#1: static items are the same each time.
    let a = cmd(&mut c, "r", "FETCH 2 (ENVELOPE BODYSTRUCTURE RFC822.SIZE)").await;
    assert_eq!(
        a,
        cmd(&mut c, "r", "FETCH 2 (ENVELOPE BODYSTRUCTURE RFC822.SIZE)").await
    );
}

/// §6.2.2 AUTHENTICATE, §6.2.3 LOGIN.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authenticate_rules() {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let s = server().await;
    let mut c = connect(&s).await;
    // 6.2.2#12: mechanisms listed in CAPABILITY.
    let caps = cmd(&mut c, "a", "CAPABILITY").await.join(" ");
    assert!(caps.contains("AUTH=PLAIN"), "{caps}");
    // 6.2.2#1: an unknown mechanism: NO.
    assert_eq!(
        status_of(&cmd(&mut c, "b", "AUTHENTICATE X-UNKNOWN").await),
        "NO"
    );
    // 6.2.2#2: a response that is not base64, or "*": BAD.
    c.send("c AUTHENTICATE PLAIN\r\n").await;
    assert!(c.line().await.starts_with('+'));
    c.send("not*base64!\r\n").await;
    assert_eq!(status_of(&c.imap_until("c").await), "BAD");
    c.send("d AUTHENTICATE PLAIN\r\n").await;
    assert!(c.line().await.starts_with('+'));
    c.send("*\r\n").await;
    assert_eq!(status_of(&c.imap_until("d").await), "BAD");
    // 6.2.2#6: a bad initial response: BAD.
    assert_eq!(
        status_of(&cmd(&mut c, "e", "AUTHENTICATE PLAIN %%%").await),
        "BAD"
    );
    // 6.2.2#5: "=" is an empty initial response, answered by a
    // continuation or a failure, not taken as credentials.
    c.send("f AUTHENTICATE PLAIN =\r\n").await;
    let l = c.line().await;
    if l.starts_with('+') {
        c.send("*\r\n").await;
        c.imap_until("f").await;
    } else {
        assert!(l.starts_with("f NO") || l.starts_with("f BAD"), "{l}");
    }
    // 6.2.2#13: without an initial response, after the continuation.
    c.send("g AUTHENTICATE PLAIN\r\n").await;
    assert!(c.line().await.starts_with('+'));
    c.send(&format!("{}\r\n", b64("\0joe@example.org\0pw")))
        .await;
    assert!(ok(&c.imap_until("g").await));
    // 6.2.2#3, #4: the initial response in base64, outside a string.
    let mut d = connect(&s).await;
    assert!(ok(&cmd(
        &mut d,
        "h",
        &format!("AUTHENTICATE PLAIN {}", b64("\0joe@example.org\0pw"))
    )
    .await));
}

/// §6.1.1, §6.2.1, §11.2: STARTTLS on the cleartext port and not on the
/// implicit TLS one; a command sent in the same write after STARTTLS is
/// not run; once TLS is on, STARTTLS is no longer advertised.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_rules() {
    let s = TestServer::start();
    s.account("joe@example.org");
    // 6.1.1#3, 11.2#3, 11.2#4: the cleartext port offers STARTTLS and
    // LOGINDISABLED (LOGIN needs TLS by default).
    let mut c = connect(&s).await;
    let r = cmd(&mut c, "a", "CAPABILITY").await;
    assert!(
        r[0].contains(" STARTTLS") && r[0].contains(" LOGINDISABLED"),
        "{r:?}"
    );
    // 6.2.1#3: "c NOOP" rides in the STARTTLS packet: discarded.
    c.send("b STARTTLS\r\nc NOOP\r\n").await;
    assert!(c.line().await.starts_with("b OK"));
    let mut t = c.upgrade(&s).await;
    t.send("d CAPABILITY\r\n").await;
    let r = t.imap_until("d").await;
    assert!(!r.iter().any(|l| l.starts_with("c ")), "{r:?}");
    // 6.2.1#5: no STARTTLS (nor LOGINDISABLED) over TLS.
    assert!(
        !r[0].contains("STARTTLS") && !r[0].contains("LOGINDISABLED"),
        "{r:?}"
    );
    t.send("e LOGIN joe@example.org pw\r\n").await;
    assert!(t.imap_until("e").await.last().unwrap().starts_with("e OK"));
    // 6.2.1#1, 11.2#2: the implicit TLS port works, and STARTTLS there is
    // BAD.
    let mut i = LineClient::connect_tls(&s, s.addr("imaps")).await;
    assert!(i.line().await.starts_with("* OK"));
    i.send("f STARTTLS\r\n").await;
    assert!(i.imap_until("f").await.last().unwrap().starts_with("f BAD"));
}

/// RFC 3501 §5.4: any command restarts the autologout timer (here the
/// one before login, set to 2 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_command_restarts_the_autologout_timer() {
    let s = TestServer::start_with("[imap]\ntimeout-idle = 2\n");
    let mut c = connect(&s).await;
    for _ in 0..4 {
        tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
        assert!(ok(&cmd(&mut c, "n", "NOOP").await));
    }
    // Silent longer than the timer: logged out.
    assert!(c.line().await.starts_with("* BYE"));
}
