//! IMAP behaviour an independent compliance tester found wrong, one test
//! per class, each written from the RFC sentence it names (issue: "IMAP
//! correctness").

mod common;

use common::imap::{cmd, login_as, ok};
use common::*;

async fn server() -> TestServer {
    let s = TestServer::start_with("[imap]\nauth-without-tls = true\n");
    s.account("joe@example.org");
    s
}

async fn login(s: &TestServer) -> LineClient {
    login_as(s, "joe@example.org").await
}

/// APPENDs `m` to `mailbox` with LITERAL+.
async fn append(c: &mut LineClient, mailbox: &str, m: &str) {
    let r = common::imap::append(c, mailbox, m).await;
    assert!(ok(&r), "{r:?}");
}

/// RFC 9051 §9: `~` is an ATOM-CHAR; only `~{` starts a literal8 (RFC
/// 3516). `LIST "" ~foo` and `SELECT ~foo` are ordinary commands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn atoms_may_begin_with_a_tilde() {
    let s = server().await;
    let mut c = login(&s).await;
    let r = cmd(&mut c, "a", "LIST \"\" ~foo").await;
    assert_eq!(r, vec!["a OK LIST completed"], "{r:?}");
    let r = cmd(&mut c, "b", "SELECT ~foo").await;
    assert!(r.last().unwrap().starts_with("b NO [NONEXISTENT]"), "{r:?}");
    assert!(ok(&cmd(&mut c, "c", "CREATE ~foo").await));
    let r = cmd(&mut c, "d", "LIST \"\" ~foo").await;
    assert_eq!(r[0], "* LIST (\\HasNoChildren) \"/\" \"~foo\"", "{r:?}");
    assert!(ok(&cmd(&mut c, "e", "SELECT ~foo").await));
}

/// RFC 9051 §9 (seq-range, nz-number): 4294967295 is a number; only `*`
/// stands for the largest UID in use. A range above every UID matches
/// nothing, while `n:*` always includes the last message (§6.4.8).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_largest_uid_number_is_not_star() {
    let s = server().await;
    let mut c = login(&s).await;
    for n in 0..2 {
        append(&mut c, "INBOX", &format!("Subject: {n}\r\n\r\nbody")).await;
    }
    cmd(&mut c, "s", "SELECT INBOX").await;
    let r = cmd(&mut c, "a", "UID SEARCH UID 3:4294967295").await;
    assert_eq!(r[0], "* SEARCH", "{r:?}");
    let r = cmd(&mut c, "b", "UID FETCH 3:4294967295 FLAGS").await;
    assert_eq!(r.len(), 1, "{r:?}");
    let r = cmd(&mut c, "c", "UID SEARCH UID 3:*").await;
    assert_eq!(r[0], "* SEARCH 2", "{r:?}");
    let r = cmd(&mut c, "d", "UID SEARCH UID 4294967295").await;
    assert_eq!(r[0], "* SEARCH", "{r:?}");
}

/// RFC 9051 §7.5.1 (RFC 3501 §7.4.1): "An EXPUNGE response MUST NOT be
/// sent ... while responding to a FETCH, STORE, or SEARCH command."
/// Another session's expunge is reported at the next command that may
/// carry it (NOOP here), or by the UID forms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_expunge_while_answering_fetch_store_search() {
    let s = server().await;
    let mut a = login(&s).await;
    for n in 0..3 {
        append(&mut a, "INBOX", &format!("Subject: {n}\r\n\r\nbody")).await;
    }
    cmd(&mut a, "s", "SELECT INBOX").await;
    let mut b = login(&s).await;
    cmd(&mut b, "s", "SELECT INBOX").await;
    for (tag, command) in [
        ("f", "FETCH 1:* FLAGS"),
        ("t", "STORE 3 +FLAGS (\\Flagged)"),
        ("q", "SEARCH ALL"),
        ("o", "SORT (ARRIVAL) UTF-8 ALL"),
        ("h", "THREAD ORDEREDSUBJECT UTF-8 ALL"),
    ] {
        let r = cmd(&mut b, "x", "STORE 1 +FLAGS (\\Deleted)").await;
        assert!(ok(&r), "{r:?}");
        assert!(ok(&cmd(&mut b, "y", "EXPUNGE").await));
        let r = cmd(&mut a, tag, command).await;
        assert!(ok(&r), "{command}: {r:?}");
        assert!(
            !r.iter().any(|l| l.ends_with(" EXPUNGE")),
            "{command}: {r:?}"
        );
        let r = cmd(&mut a, "n", "NOOP").await;
        assert!(
            r.iter().any(|l| l == "* 1 EXPUNGE"),
            "{command}: then {r:?}"
        );
        append(&mut b, "INBOX", "Subject: more\r\n\r\nbody").await;
        cmd(&mut a, "n", "NOOP").await;
    }
}

/// RFC 9051 §7.5.2 (RFC 3501 §7.4.2) ENVELOPE: "[RFC-2822] group syntax
/// is indicated by a special form of address structure in which the host
/// name field is NIL. If the mailbox name field is also NIL, this is an
/// end of group marker ... If the mailbox name field is non-NIL, this is
/// a start of group marker, and the mailbox name field holds the group
/// name phrase."
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envelope_group_syntax() {
    let s = server().await;
    let mut c = login(&s).await;
    append(
        &mut c,
        "INBOX",
        "From: a@example.org\r\nTo: Friends: Ann <ann@example.org>, bob@example.org;, carl@example.org\r\nCc: undisclosed-recipients:;\r\nSubject: g\r\n\r\nbody",
    )
    .await;
    cmd(&mut c, "s", "SELECT INBOX").await;
    let r = cmd(&mut c, "f", "FETCH 1 ENVELOPE").await;
    let to = "((NIL NIL \"Friends\" NIL)(\"Ann\" NIL \"ann\" \"example.org\")(NIL NIL \"bob\" \"example.org\")(NIL NIL NIL NIL)(NIL NIL \"carl\" \"example.org\"))";
    let cc = "((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL))";
    assert!(r[0].contains(&format!(" {to} {cc} NIL ")), "{r:?}");
}

/// RFC 7162 §3.1: "A first CONDSTORE enabling command executed in the
/// session with a mailbox selected MUST cause the server to return
/// HIGHESTMODSEQ for the mailbox"; RFC 4731 §3.2: with a single MIN or
/// MAX the MODSEQ result is that message's, with MIN and MAX alone the
/// higher of the two, otherwise the highest of all returned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn condstore_enabling_and_esearch_modseq() {
    let s = server().await;
    let mut c = login(&s).await;
    for n in 0..3 {
        append(&mut c, "INBOX", &format!("Subject: {n}\r\n\r\nbody")).await;
    }
    cmd(&mut c, "s", "SELECT INBOX").await;
    // Message 2 is changed last, so it has the highest mod-sequence.
    cmd(&mut c, "t", "STORE 1 +FLAGS (\\Draft)").await;
    cmd(&mut c, "t", "STORE 3 +FLAGS (\\Draft)").await;
    cmd(&mut c, "t", "STORE 2 +FLAGS (\\Draft)").await;
    let r = cmd(&mut c, "f", "FETCH 1 (MODSEQ)").await;
    assert!(r[0].starts_with("* OK [HIGHESTMODSEQ "), "{r:?}");
    let highest: u64 = r[0]["* OK [HIGHESTMODSEQ ".len()..]
        .split(']')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // Not again.
    let r = cmd(&mut c, "g", "FETCH 1 (MODSEQ)").await;
    assert!(r[0].starts_with("* 1 FETCH"), "{r:?}");
    let modseq = |l: &str| -> u64 {
        l.rsplit("MODSEQ ")
            .next()
            .unwrap()
            .trim_matches(['(', ')', ' '])
            .parse()
            .unwrap()
    };
    let r = cmd(&mut c, "m", "FETCH 1:3 (MODSEQ)").await;
    let each: Vec<u64> = r[..3].iter().map(|l| modseq(l)).collect();
    assert_eq!(each.iter().max(), Some(&highest));
    assert_eq!(highest, each[1], "{r:?}");
    for (ret, want) in [
        ("MIN", each[0]),
        ("MAX", each[2]),
        ("MIN MAX", each[0].max(each[2])),
        ("MIN COUNT", highest),
        ("ALL", highest),
    ] {
        let r = cmd(&mut c, "e", &format!("SEARCH RETURN ({ret}) MODSEQ 1")).await;
        assert_eq!(modseq(&r[0]), want, "RETURN ({ret}): {r:?}");
    }
}

/// RFC 3501 §6.4.4 / RFC 9051 §6.4.4: SENTBEFORE, SENTON and SENTSINCE
/// compare the Date header "disregarding time and timezone": the date as
/// written, in its own zone, not converted to the server's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sent_dates_are_compared_as_written() {
    let s = server().await;
    let mut c = login(&s).await;
    // 23:30 on 1 January in New York is 2 January in UTC; 00:30 on 2
    // January in Helsinki is still 1 January in UTC.
    append(
        &mut c,
        "INBOX",
        "Date: Mon, 01 Jan 2024 23:30:00 -0500\r\nSubject: ny\r\n\r\nx",
    )
    .await;
    append(
        &mut c,
        "INBOX",
        "Date: Tue, 02 Jan 2024 00:30:00 +0200\r\nSubject: hel\r\n\r\nx",
    )
    .await;
    cmd(&mut c, "s", "SELECT INBOX").await;
    for (key, want) in [
        ("SENTON 1-Jan-2024", "* SEARCH 1"),
        ("SENTON 2-Jan-2024", "* SEARCH 2"),
        ("SENTBEFORE 2-Jan-2024", "* SEARCH 1"),
        ("SENTSINCE 2-Jan-2024", "* SEARCH 2"),
        ("SENTSINCE 1-Jan-2024", "* SEARCH 1 2"),
        ("SENTBEFORE 1-Jan-2024", "* SEARCH"),
    ] {
        let r = cmd(&mut c, "q", &format!("SEARCH {key}")).await;
        assert_eq!(r[0], want, "{key}");
    }
}

/// RFC 3501 §7.2.6 / RFC 9051 §7.3.5: FLAGS names the flags applicable
/// in the mailbox; a keyword that first appears (STORE by this or another
/// session, APPEND) is announced with FLAGS and PERMANENTFLAGS before any
/// FETCH shows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_keywords_are_announced_before_use() {
    let s = server().await;
    let mut a = login(&s).await;
    a.send("A APPEND INBOX (Old) {8+}\r\nSubject:\r\n").await;
    assert!(ok(&a.imap_until("A").await));
    let r = cmd(&mut a, "s", "SELECT INBOX").await;
    assert!(
        r.iter()
            .any(|l| l == "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft Old)"),
        "{r:?}"
    );
    assert!(r.iter().any(|l| l == "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft Old \\*)] Flags permitted"), "{r:?}");
    // Its own STORE: FLAGS, PERMANENTFLAGS, then the FETCH.
    let r = cmd(&mut a, "t", "STORE 1 +FLAGS (Mine)").await;
    assert_eq!(
        r[0], "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft Old Mine)",
        "{r:?}"
    );
    assert!(r[1].starts_with("* OK [PERMANENTFLAGS ("), "{r:?}");
    assert!(
        r[2].starts_with("* 1 FETCH (FLAGS (") && r[2].contains("Mine"),
        "{r:?}"
    );
    // Another session's keyword, then an APPEND with a new one.
    let mut b = login(&s).await;
    cmd(&mut b, "s", "SELECT INBOX").await;
    cmd(&mut b, "t", "STORE 1 +FLAGS (Theirs)").await;
    b.send("B APPEND INBOX (Fresh) {8+}\r\nSubject:\r\n").await;
    assert!(ok(&b.imap_until("B").await));
    let r = cmd(&mut a, "n", "NOOP").await;
    let flags = r
        .iter()
        .position(|l| l.starts_with("* FLAGS ("))
        .expect("FLAGS");
    assert!(
        r[flags].contains("Theirs") && r[flags].contains("Fresh"),
        "{r:?}"
    );
    let fetch = r.iter().position(|l| l.contains("FETCH")).expect("FETCH");
    assert!(flags < fetch, "{r:?}");
    // Nothing new: no FLAGS again.
    let r = cmd(&mut a, "f", "FETCH 1:* FLAGS").await;
    assert!(!r.iter().any(|l| l.starts_with("* FLAGS")), "{r:?}");
}

/// The literal of a FETCH BODY[...] answer line (`{n}` and the bytes).
async fn fetch_section(c: &mut LineClient, section: &str) -> String {
    c.send(&format!("b FETCH 1 BODY.PEEK[{section}]\r\n")).await;
    let mut out = String::new();
    let head = c.line().await;
    if let Some(n) = head.strip_suffix('}').and_then(|h| h.rsplit('{').next()) {
        let n: usize = n.parse().unwrap();
        let mut buf = vec![0u8; n];
        tokio::io::AsyncReadExt::read_exact(&mut c.r, &mut buf)
            .await
            .unwrap();
        out = String::from_utf8(buf).unwrap();
        c.imap_until("b").await;
    } else {
        let rest = c.imap_until("b").await;
        assert!(
            head.ends_with("\"\")") || head.ends_with("NIL)"),
            "{section}: {head} {rest:?}"
        );
    }
    out
}

/// RFC 3501 §6.4.5 / RFC 9051 §6.4.5: part numbers below a MESSAGE/RFC822
/// part address the parts of the enclosed message; `n.HEADER`, `n.TEXT`
/// and `n.HEADER.FIELDS` its header and text, `n.MIME` the part's own
/// MIME header; the same two levels deep.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sections_inside_enclosed_messages() {
    let s = server().await;
    let mut c = login(&s).await;
    let deepest = "Subject: deepest\r\n\r\ndeep body";
    let inner = format!("From: c@example.org\r\nSubject: inner\r\nContent-Type: multipart/mixed; boundary=\"i\"\r\n\r\n--i\r\nContent-Type: text/plain\r\n\r\ninner text\r\n--i\r\nContent-Type: message/rfc822\r\n\r\n{deepest}\r\n--i--");
    let outer = format!("From: a@example.org\r\nSubject: outer\r\nContent-Type: multipart/mixed; boundary=\"o\"\r\n\r\n--o\r\nContent-Type: text/plain\r\n\r\nhello\r\n--o\r\nContent-Type: message/rfc822\r\n\r\n{inner}\r\n--o--\r\n");
    append(&mut c, "INBOX", &outer).await;
    cmd(&mut c, "s", "SELECT INBOX").await;
    let inner_header = "From: c@example.org\r\nSubject: inner\r\nContent-Type: multipart/mixed; boundary=\"i\"\r\n\r\n";
    for (section, want) in [
        ("1", "hello".to_string()),
        ("2", inner.clone()),
        ("2.MIME", "Content-Type: message/rfc822\r\n\r\n".into()),
        ("2.HEADER", inner_header.into()),
        ("2.HEADER.FIELDS (SUBJECT)", "Subject: inner\r\n\r\n".into()),
        (
            "2.HEADER.FIELDS.NOT (SUBJECT CONTENT-TYPE)",
            "From: c@example.org\r\n\r\n".into(),
        ),
        ("2.TEXT", inner[inner_header.len()..].into()),
        ("2.1", "inner text".into()),
        ("2.2", deepest.into()),
        ("2.2.HEADER", "Subject: deepest\r\n\r\n".into()),
        ("2.2.TEXT", "deep body".into()),
        ("2.2.1", "deep body".into()),
    ] {
        assert_eq!(
            fetch_section(&mut c, section).await,
            want,
            "BODY[{section}]"
        );
    }
}

/// The same when the message itself is MESSAGE/RFC822: its part 1 is the
/// enclosed message, `1.HEADER`/`1.TEXT` address that message, `1.1` its
/// only part.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sections_of_a_message_that_is_an_enclosed_message() {
    let s = server().await;
    let mut c = login(&s).await;
    let inner = "Subject: inner\r\nContent-Type: text/plain\r\n\r\ninner body\r\n";
    let outer = format!(
        "From: a@example.org\r\nSubject: fwd\r\nContent-Type: message/rfc822\r\n\r\n{inner}"
    );
    append(&mut c, "INBOX", &outer).await;
    cmd(&mut c, "s", "SELECT INBOX").await;
    for (section, want) in [
        ("1", inner),
        (
            "1.HEADER",
            "Subject: inner\r\nContent-Type: text/plain\r\n\r\n",
        ),
        ("1.TEXT", "inner body\r\n"),
        ("1.1", "inner body\r\n"),
        ("TEXT", inner),
    ] {
        assert_eq!(
            fetch_section(&mut c, section).await,
            want,
            "BODY[{section}]"
        );
    }
}

/// RFC 3516 §4.2: BINARY[1] of an empty part is an empty string, as
/// BODY[1] is; not NIL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_of_an_empty_part_is_empty() {
    let s = server().await;
    let mut c = login(&s).await;
    append(
        &mut c,
        "INBOX",
        "Subject: e\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n\r\n--x--\r\n",
    )
    .await;
    cmd(&mut c, "s", "SELECT INBOX").await;
    let r = cmd(
        &mut c,
        "f",
        "FETCH 1 (BODY.PEEK[1] BINARY.PEEK[1] BINARY.SIZE[1])",
    )
    .await;
    let all = r.join("\n");
    let empty = |item: &str| {
        all.contains(&format!("{item} \"\"")) || all.contains(&format!("{item} {{0}}"))
    };
    assert!(empty("BODY[1]") && empty("BINARY[1]"), "{r:?}");
    assert!(all.contains("BINARY.SIZE[1] 0"), "{r:?}");
}

fn has(r: &[String], line: &str) -> bool {
    r.iter().any(|l| l == line)
}

/// RFC 3501 §2.3.2: a message is \Recent in exactly one session, the
/// first to be notified of it (SELECT, or a new message seen while
/// selected); EXAMINE shows it without taking it (§6.3.2); `n RECENT`
/// after SELECT/EXAMINE and when new messages arrive (§7.3.2); STATUS
/// RECENT (§6.3.10); SEARCH RECENT, NEW (RECENT UNSEEN) and OLD (NOT
/// RECENT) (§6.4.4). IMAP4rev2 sessions have no \Recent and take none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recent_is_in_exactly_one_session() {
    let s = server().await;
    deliver(&s, "one", "body").await;
    deliver(&s, "two", "body").await;
    let mut rev2 = login(&s).await;
    cmd(&mut rev2, "e", "ENABLE IMAP4rev2").await;
    let r = cmd(&mut rev2, "s", "SELECT INBOX").await;
    assert!(!r.iter().any(|l| l.ends_with("RECENT")), "{r:?}");
    let mut c = login(&s).await;
    let r = cmd(&mut c, "x", "EXAMINE INBOX").await;
    assert!(has(&r, "* 2 RECENT"), "EXAMINE shows, does not take: {r:?}");
    let mut a = login(&s).await;
    let r = cmd(&mut a, "s", "SELECT INBOX").await;
    assert!(has(&r, "* 2 RECENT"), "{r:?}");
    let r = cmd(&mut a, "f", "FETCH 1:* FLAGS").await;
    assert!(has(&r, "* 1 FETCH (FLAGS (\\Recent))"), "{r:?}");
    for (key, want) in [
        ("RECENT", "* SEARCH 1 2"),
        ("NEW", "* SEARCH 1 2"),
        ("OLD", "* SEARCH"),
    ] {
        assert_eq!(
            cmd(&mut a, "q", &format!("SEARCH {key}")).await[0],
            want,
            "{key}"
        );
    }
    let mut b = login(&s).await;
    let r = cmd(&mut b, "s", "SELECT INBOX").await;
    assert!(has(&r, "* 0 RECENT"), "taken by the first SELECT: {r:?}");
    let r = cmd(&mut b, "f", "FETCH 1 FLAGS").await;
    assert_eq!(r[0], "* 1 FETCH (FLAGS ())");
    assert_eq!(cmd(&mut b, "q", "SEARCH OLD").await[0], "* SEARCH 1 2");
    let r = cmd(&mut c, "t", "STATUS INBOX (RECENT)").await;
    assert_eq!(r[0], "* STATUS \"INBOX\" (RECENT 0)");
    // A new message: the first session to hear of it has it.
    deliver(&s, "three", "body").await;
    let r = cmd(&mut c, "t", "STATUS INBOX (RECENT)").await;
    assert_eq!(r[0], "* STATUS \"INBOX\" (RECENT 1)");
    let r = cmd(&mut a, "n", "NOOP").await;
    assert!(has(&r, "* 3 EXISTS") && has(&r, "* 3 RECENT"), "{r:?}");
    let r = cmd(&mut b, "n", "NOOP").await;
    assert!(has(&r, "* 3 EXISTS") && has(&r, "* 0 RECENT"), "{r:?}");
    // SEEN makes it OLD? No: NEW is RECENT and UNSEEN, OLD is NOT RECENT.
    cmd(&mut a, "t", "STORE 1 +FLAGS (\\Seen)").await;
    assert_eq!(cmd(&mut a, "q", "SEARCH NEW").await[0], "* SEARCH 2 3");
    assert_eq!(cmd(&mut a, "q", "SEARCH OLD").await[0], "* SEARCH");
    // STORE answers show \Recent too.
    let r = cmd(&mut a, "t", "STORE 2 +FLAGS (\\Flagged)").await;
    assert_eq!(r[0], "* 2 FETCH (FLAGS (\\Flagged \\Recent))");
}

/// RFC 9051 §6.3.7: a subscription outlives its mailbox; RFC 5258 §3.1,
/// §3.4: LIST (SUBSCRIBED) returns it with \NonExistent; §3.5 (table):
/// with RECURSIVEMATCH, CHILDINFO for every listed mailbox with a
/// subscribed descendant, whether or not it is subscribed itself; RFC
/// 3501 §6.3.9: LSUB returns a parent whose children alone are
/// subscribed as \Noselect when `%` stops at it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_lsub_and_recursivematch() {
    let s = server().await;
    let mut c = login(&s).await;
    for m in ["x", "x/y", "p", "p/q", "gone"] {
        assert!(ok(&cmd(&mut c, "c", &format!("CREATE {m}")).await));
    }
    for m in ["x/y", "p", "p/q", "gone"] {
        assert!(ok(&cmd(&mut c, "s", &format!("SUBSCRIBE {m}")).await));
    }
    // New mailboxes start subscribed here: x is not.
    assert!(ok(&cmd(&mut c, "s", "UNSUBSCRIBE x").await));
    assert!(ok(&cmd(&mut c, "d", "DELETE gone").await));
    let r = cmd(&mut c, "l", "LIST (SUBSCRIBED) \"\" *").await;
    assert!(
        has(&r, "* LIST (\\NonExistent \\Subscribed) \"/\" \"gone\""),
        "{r:?}"
    );
    assert!(!r.iter().any(|l| l.ends_with(" \"x\"")), "{r:?}");
    let r = cmd(&mut c, "l", "LIST (SUBSCRIBED RECURSIVEMATCH) \"\" %").await;
    assert!(
        has(
            &r,
            "* LIST (\\HasChildren) \"/\" \"x\" (\"CHILDINFO\" (\"SUBSCRIBED\"))"
        ),
        "{r:?}"
    );
    assert!(
        has(
            &r,
            "* LIST (\\HasChildren \\Subscribed) \"/\" \"p\" (\"CHILDINFO\" (\"SUBSCRIBED\"))"
        ),
        "{r:?}"
    );
    assert!(
        has(&r, "* LIST (\\NonExistent \\Subscribed) \"/\" \"gone\""),
        "{r:?}"
    );
    let r = cmd(&mut c, "u", "LSUB \"\" %").await;
    assert!(has(&r, "* LSUB (\\Noselect) \"/\" \"x\""), "{r:?}");
    assert!(has(&r, "* LSUB (\\HasChildren) \"/\" \"p\""), "{r:?}");
    assert!(has(&r, "* LSUB (\\Noselect) \"/\" \"gone\""), "{r:?}");
    let r = cmd(&mut c, "u", "LSUB \"\" x/%").await;
    assert!(has(&r, "* LSUB (\\HasNoChildren) \"/\" \"x/y\""), "{r:?}");
    // Re-created, the mailbox has its subscription back.
    assert!(ok(&cmd(&mut c, "c", "CREATE gone").await));
    let r = cmd(&mut c, "l", "LIST \"\" gone RETURN (SUBSCRIBED)").await;
    assert_eq!(r[0], "* LIST (\\HasNoChildren \\Subscribed) \"/\" \"gone\"");
    assert!(ok(&cmd(&mut c, "n", "UNSUBSCRIBE gone").await));
    let r = cmd(&mut c, "l", "LIST (SUBSCRIBED) \"\" gone").await;
    assert_eq!(r.len(), 1, "{r:?}");
}

/// RFC 5256 §2.1 base subjects (all leaders, blobs, "(fwd)" trailers,
/// "[fwd: ...]", repeated) with ties in mailbox order (§3); the CC key is
/// the first Cc address's addr-mailbox (§3); RFC 5957 §3-4: DISPLAYTO of
/// a group is its start marker's mailbox (the group name), of a message
/// without To the empty string.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sort_keys_follow_the_rfc() {
    let s = server().await;
    let mut c = login(&s).await;
    for (subject, cc, to) in [
        (
            "[list] Re: Fwd: delta",
            "Zed <a@x.org>",
            "Xavier <x@example.org>",
        ),
        ("Re[2]: alpha (fwd)", "b@x.org", "Friends: y@example.org;"),
        ("[Fwd: Re: charlie]", "", ""),
        ("bravo", "c@x.org", "undisclosed-recipients:;"),
        ("RE:   [blob] alpha", "", "\"\" <m@example.org>"),
    ] {
        let mut h = format!("From: a@example.org\r\nSubject: {subject}\r\n");
        if !cc.is_empty() {
            h.push_str(&format!("Cc: {cc}\r\n"));
        }
        if !to.is_empty() {
            h.push_str(&format!("To: {to}\r\n"));
        }
        append(&mut c, "INBOX", &format!("{h}\r\nbody")).await;
    }
    cmd(&mut c, "s", "SELECT INBOX").await;
    let sort = |r: Vec<String>| r[0].clone();
    assert_eq!(
        sort(cmd(&mut c, "a", "SORT (SUBJECT) UTF-8 ALL").await),
        "* SORT 2 5 4 3 1"
    );
    // No Cc sorts first (""); then a, b, c: Zed's address is a@.
    assert_eq!(
        sort(cmd(&mut c, "b", "SORT (CC) UTF-8 ALL").await),
        "* SORT 3 5 1 2 4"
    );
    // "" (none), "Friends", "m@example.org", "undisclosed-recipients",
    // "Xavier".
    assert_eq!(
        sort(cmd(&mut c, "d", "SORT (DISPLAYTO) UTF-8 ALL").await),
        "* SORT 3 2 5 4 1"
    );
}

/// RFC 4731 §4: result option names are accepted in any case; §3.1: with
/// no match, no MIN, MAX or ALL, but COUNT and still an ESEARCH answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn esearch_options_in_any_case() {
    let s = server().await;
    let mut c = login(&s).await;
    append(&mut c, "INBOX", "Subject: one\r\n\r\nx").await;
    cmd(&mut c, "s", "SELECT INBOX").await;
    let r = cmd(&mut c, "a", "search return (min Max cOuNt all) all").await;
    assert_eq!(
        r[0], "* ESEARCH (TAG \"a\") MIN 1 MAX 1 COUNT 1 ALL 1",
        "{r:?}"
    );
    let r = cmd(
        &mut c,
        "b",
        "uid search return (min max all count) subject nothing",
    )
    .await;
    assert_eq!(r[0], "* ESEARCH (TAG \"b\") UID COUNT 0", "{r:?}");
}

/// Reads the rest of a FETCH whose first line announced a literal or
/// literal8 of `n` bytes: the bytes, then the lines to the tagged reply.
async fn literal_then(c: &mut LineClient, n: usize, tag: &str) -> (Vec<u8>, Vec<String>) {
    use tokio::io::AsyncReadExt;
    let mut got = vec![0u8; n];
    c.r.read_exact(&mut got).await.unwrap();
    (got, c.imap_until(tag).await)
}

/// RFC 3516 §4.3, §5, §6: BINARY.SIZE of an encoding the server cannot
/// undo fails with UNKNOWN-CTE (4.3#4) and BINARY.SIZE is the size of
/// what BINARY sends (4.3#3); decoded text parts travel with CRLF line
/// ends (6#1); encoded words in headers are not converted (5#1); a part
/// appended in binary is described by BODYSTRUCTURE and sent by BODY in a
/// transfer encoding IMAP4rev1 clients read (6#2, 6#3), while BINARY
/// gives back the very bytes appended (4.4#1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_content_rules() {
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let s = server().await;
    let mut c = login(&s).await;
    let lf_text = b"line one\nline two\n";
    let m = format!(
        "Subject: =?utf-8?q?caf=C3=A9?=\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--b\r\nContent-Type: application/x-odd\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 f\r\n--b--\r\n",
        b64(lf_text)
    );
    append(&mut c, "INBOX", &m).await;
    assert!(ok(&cmd(&mut c, "s", "SELECT INBOX").await));
    let r = cmd(&mut c, "a", "FETCH 1 (BINARY.SIZE[2])").await;
    assert!(r.last().unwrap().starts_with("a NO [UNKNOWN-CTE]"), "{r:?}");
    let r = cmd(&mut c, "b", "FETCH 1 (BINARY.SIZE[1] BINARY.PEEK[1])").await;
    assert_eq!(r[0], "* 1 FETCH (BINARY.SIZE[1] 20 BINARY[1] {20}", "{r:?}");
    assert_eq!(r[1..3], ["line one", "line two"], "{r:?}");
    c.send("c FETCH 1 (BINARY.PEEK[])\r\n").await;
    let head = c.line().await;
    let n: usize = head
        .rsplit_once('{')
        .and_then(|(_, n)| n.trim_end_matches('}').parse().ok())
        .unwrap_or_else(|| panic!("{head}"));
    let (whole, rest) = literal_then(&mut c, n, "c").await;
    assert!(ok(&rest), "{rest:?}");
    assert!(
        whole.starts_with(b"Subject: =?utf-8?q?caf=C3=A9?=\r\n"),
        "{}",
        String::from_utf8_lossy(&whole)
    );

    // A binary part, appended with a literal8.
    let bytes = b"\x00\x01\x02abc\r\n";
    let mut msg = b"Subject: bin\r\nMIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n".to_vec();
    msg.extend_from_slice(bytes);
    c.send(&format!("d APPEND INBOX ~{{{}}}\r\n", msg.len()))
        .await;
    assert!(c.line().await.starts_with('+'));
    c.send_bytes(&msg).await;
    c.send("\r\n").await;
    assert!(ok(&c.imap_until("d").await));
    let r = cmd(&mut c, "e", "FETCH 2 (BODYSTRUCTURE BODY.PEEK[1])").await;
    let encoded = b64(bytes);
    assert_eq!(
        r[0].to_uppercase(),
        format!(
            "* 2 FETCH (BODYSTRUCTURE (\"APPLICATION\" \"OCTET-STREAM\" NIL NIL NIL \"BASE64\" {} NIL NIL NIL NIL) BODY[1] {{{}}}",
            encoded.len(),
            encoded.len()
        ),
        "{r:?}"
    );
    assert_eq!(r[1], format!("{encoded})"), "{r:?}");
    // No NUL anywhere in BODY[]: it is the message BODYSTRUCTURE describes.
    c.send("f FETCH 2 (BODY.PEEK[])\r\n").await;
    let head = c.line().await;
    let n: usize = head
        .rsplit_once('{')
        .and_then(|(_, n)| n.trim_end_matches('}').parse().ok())
        .unwrap_or_else(|| panic!("{head}"));
    let (whole, rest) = literal_then(&mut c, n, "f").await;
    assert!(ok(&rest), "{rest:?}");
    assert!(!whole.contains(&0), "{}", String::from_utf8_lossy(&whole));
    // BINARY undoes the encoding: the bytes appended.
    c.send("g FETCH 2 (BINARY.PEEK[1])\r\n").await;
    let head = c.line().await;
    assert!(
        head.ends_with(&format!("BINARY[1] ~{{{}}}", bytes.len())),
        "{head}"
    );
    let (got, rest) = literal_then(&mut c, bytes.len(), "g").await;
    assert_eq!(got, bytes);
    assert!(ok(&rest), "{rest:?}");
}

/// The LIST lines of an answer, as (attributes, name) with the extended
/// data after the name kept in the name.
fn lists(r: &[String]) -> Vec<(String, String)> {
    r.iter()
        .filter_map(|l| l.strip_prefix("* LIST ("))
        .filter_map(|l| {
            let (attrs, rest) = l.split_once(") ")?;
            let name = rest.split_once(' ')?.1;
            Some((attrs.to_string(), name.to_string()))
        })
        .collect()
}

/// RFC 5258 §3, §3.1, §3.2, §4, §8 sentence by sentence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_extended_sentences() {
    let s = server().await;
    s.account("bob@example.org");
    let mut c = login(&s).await;
    for m in ["Work", "Work/Reports", "Play", "Old"] {
        assert!(ok(&cmd(&mut c, "a", &format!("CREATE {m}")).await));
    }
    for m in ["Work", "Play", "Old"] {
        cmd(&mut c, "b", &format!("UNSUBSCRIBE {m}")).await;
    }
    assert!(ok(&cmd(&mut c, "b", "SUBSCRIBE Old").await));
    assert!(ok(&cmd(&mut c, "b", "DELETE Old").await));

    // 3#1: a name matched by two patterns is listed once.
    let r = cmd(&mut c, "c", "LIST \"\" (Work Wor% W%)").await;
    assert_eq!(lists(&r).len(), 1, "{r:?}");
    // 3#2, 3#3: in an extended LIST the empty pattern is not the
    // delimiter request; it matches nothing and the other patterns count.
    let r = cmd(&mut c, "d", "LIST \"\" (\"\" Play)").await;
    assert_eq!(
        lists(&r),
        vec![("\\HasNoChildren".into(), "\"Play\"".into())],
        "{r:?}"
    );
    let r = cmd(&mut c, "d2", "LIST (SUBSCRIBED) \"\" \"\"").await;
    assert!(lists(&r).is_empty() && ok(&r), "{r:?}");
    // 3#4: a pattern the server does not accept (a name it cannot hold)
    // is ignored, the others answered.
    let r = cmd(&mut c, "e", "LIST \"\" (\"Play\" \"&Jjo!\")").await;
    assert!(ok(&r) && lists(&r).len() == 1, "{r:?}");
    // 3#5: several selection options: only names that satisfy them all.
    let r = cmd(&mut c, "f", "LIST (SUBSCRIBED SPECIAL-USE) \"\" *").await;
    let got = lists(&r);
    assert!(
        got.iter().all(|(a, _)| a.contains("\\Subscribed")
            && a.split(' ')
                .any(|f| ["\\Sent", "\\Drafts", "\\Trash", "\\Junk", "\\Archive"].contains(&f))),
        "{r:?}"
    );
    assert!(!got.iter().any(|(_, n)| n == "\"Work/Reports\""), "{r:?}");
    // 3#6: return options add no names.
    let plain = lists(&cmd(&mut c, "g", "LIST \"\" *").await).len();
    let with = lists(
        &cmd(
            &mut c,
            "g",
            "LIST \"\" * RETURN (SUBSCRIBED CHILDREN SPECIAL-USE)",
        )
        .await,
    )
    .len();
    assert_eq!(plain, with);
    // 3#8: an option we do not know is BAD; 3#9: a repeated one counts once.
    assert!(cmd(&mut c, "h", "LIST (FROB) \"\" *").await[0].starts_with("h BAD"));
    assert!(cmd(&mut c, "h", "LIST \"\" * RETURN (FROB)").await[0].starts_with("h BAD"));
    let once = cmd(&mut c, "i", "LIST (SUBSCRIBED) \"\" * RETURN (CHILDREN)").await;
    let twice = cmd(
        &mut c,
        "i",
        "LIST (SUBSCRIBED SUBSCRIBED) \"\" * RETURN (CHILDREN CHILDREN)",
    )
    .await;
    assert_eq!(once, twice);
    // 3#12: no extended data items (CHILDINFO) for a plain LIST, even
    // where a child is subscribed.
    let r = cmd(&mut c, "j", "LIST \"\" W%").await;
    assert!(!r.iter().any(|l| l.contains("CHILDINFO")), "{r:?}");
    // 3.1#1, 3.1#3: LIST (SUBSCRIBED) lists exactly the subscribed names
    // that match, each with \Subscribed, a deleted one with \NonExistent
    // (3.5#2: not \Noselect).
    let r = cmd(&mut c, "k", "LIST (SUBSCRIBED) \"\" *").await;
    let got = lists(&r);
    let names: Vec<&str> = got.iter().map(|(_, n)| n.as_str()).collect();
    assert!(
        names.contains(&"\"Work/Reports\"") && names.contains(&"\"Old\""),
        "{r:?}"
    );
    assert!(
        !names.contains(&"\"Work\"") && !names.contains(&"\"Play\""),
        "{r:?}"
    );
    assert!(got.iter().all(|(a, _)| a.contains("\\Subscribed")), "{r:?}");
    let old = &got.iter().find(|(_, n)| n == "\"Old\"").unwrap().0;
    assert!(
        old.contains("\\NonExistent") && !old.contains("\\Noselect"),
        "{r:?}"
    );
    // 3.1#4: no mailbox is remote, so REMOTE adds none and marks none.
    let r = cmd(&mut c, "l", "LIST (REMOTE) \"\" *").await;
    assert!(ok(&r) && !r.iter().any(|l| l.contains("\\Remote")), "{r:?}");
    assert_eq!(lists(&r).len(), plain, "{r:?}");
    // 3.1#5, 3.1#6: RECURSIVEMATCH alone, or with only REMOTE, is BAD.
    assert!(cmd(&mut c, "m", "LIST (RECURSIVEMATCH) \"\" *").await[0].starts_with("m BAD"));
    assert!(cmd(&mut c, "m", "LIST (REMOTE RECURSIVEMATCH) \"\" *").await[0].starts_with("m BAD"));
    // 3.2#1, 3.2#2, 3.2#3: RETURN (SUBSCRIBED) marks exactly the
    // subscribed names and computes every other attribute as LIST does.
    let r = cmd(&mut c, "n", "LIST \"\" * RETURN (SUBSCRIBED)").await;
    for (a, n) in lists(&r) {
        let subscribed = n == "\"Work/Reports\""
            || n == "\"INBOX\""
            || n.starts_with("\"Sent")
            || n.starts_with("\"Drafts")
            || n.starts_with("\"Trash")
            || n.starts_with("\"Junk")
            || n.starts_with("\"Archive");
        assert_eq!(a.contains("\\Subscribed"), subscribed, "{n}: {a}");
        if n == "\"Work\"" {
            assert!(a.contains("\\HasChildren"), "{a}");
        }
    }
    // 4#1, 4#2: RETURN (CHILDREN) gives \HasChildren or \HasNoChildren
    // on every line.
    let r = cmd(&mut c, "o", "LIST \"\" * RETURN (CHILDREN)").await;
    for (a, n) in lists(&r) {
        let has = a.contains("\\HasChildren");
        assert!(has != a.contains("\\HasNoChildren"), "{n}: {a}");
        assert_eq!(has, n == "\"Work\"", "{n}: {a}");
    }
    // 4#3, 4#4, 8#1: children the user may not see do not make
    // \HasChildren.
    let mut b = LineClient::connect(s.addr("imap")).await;
    b.line().await;
    assert!(ok(&cmd(&mut b, "L", "LOGIN bob@example.org pw").await));
    assert!(ok(&cmd(&mut b, "a", "CREATE Proj/Secret").await));
    assert!(ok(&cmd(&mut b, "b", "SETACL Proj joe@example.org lr").await));
    let r = cmd(
        &mut c,
        "p",
        "LIST \"\" \"Shared/bob@example.org/*\" RETURN (CHILDREN)",
    )
    .await;
    let got = lists(&r);
    let proj = got
        .iter()
        .find(|(_, n)| n.ends_with("/Proj\""))
        .unwrap_or_else(|| panic!("{r:?}"));
    assert!(proj.0.contains("\\HasNoChildren"), "{r:?}");
    assert!(!got.iter().any(|(_, n)| n.contains("Secret")), "{r:?}");
}

/// The flags of message `n` of `mailbox` as its owner `c` sees them.
async fn flags_of(c: &mut LineClient, mailbox: &str, n: u32) -> String {
    assert!(ok(&cmd(c, "x1", &format!("EXAMINE {mailbox}")).await));
    let r = cmd(c, "x2", &format!("FETCH {n} FLAGS")).await;
    // \Recent is not what these tests look at.
    r[0].replace(" \\Recent", "").replace("\\Recent", "")
}

/// RFC 4314 §3, §4, §5.1.1, §7 sentence by sentence: identifiers go
/// through SASLprep (3#1, 3#2); COPY and APPEND set only the flags the
/// user may set and never fail for the others (4#8, 4#9); CLOSE without
/// `e` closes without expunging (4#10); FETCH without `s` does not set
/// \Seen (4#11); STORE changes the flags it may and fails only if none
/// (4#13); an ACL change applies to the commands after it, pipelined or
/// not (5.1.1#5); command names and "anyone" in any case (7#1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_rights_on_flags_and_identifiers() {
    let s = server().await;
    s.account("bob@example.org");
    let mut bob = LineClient::connect(s.addr("imap")).await;
    bob.line().await;
    assert!(ok(&cmd(&mut bob, "L", "LOGIN bob@example.org pw").await));
    assert!(ok(&cmd(&mut bob, "a", "CREATE Team").await));
    // 3#2: empty, or failing SASLprep (a control character), is BAD.
    assert!(cmd(&mut bob, "b", "SETACL Team \"\" lr").await[0].starts_with("b BAD"));
    bob.send("c SETACL Team {4}\r\n").await;
    assert!(bob.line().await.starts_with('+'));
    bob.send_bytes(b"\x07bob").await;
    bob.send(" lr\r\n").await;
    assert!(bob.imap_until("c").await[0].starts_with("c BAD"));
    assert!(cmd(&mut bob, "d", "LISTRIGHTS Team \"\"").await[0].starts_with("d BAD"));
    // 3#1: SASLprep maps a soft hyphen to nothing: this names joe.
    let id = "jo\u{00AD}e@example.org";
    assert!(ok(&cmd(
        &mut bob,
        "e",
        &format!("SETACL Team {{{}+}}\r\n{id} lri", id.len())
    )
    .await));
    let r = cmd(&mut bob, "f", "GETACL Team").await;
    assert!(r[0].contains("\"joe@example.org\" \"lri\""), "{r:?}");

    let team = "\"Shared/bob@example.org/Team\"";
    let mut joe = login(&s).await;
    // 4#8, 4#9: with i but none of s, t, w, APPEND and COPY succeed and
    // set no flag.
    let m = "Subject: one\r\n\r\nbody\r\n";
    joe.send(&format!(
        "A APPEND {team} (\\Seen \\Flagged $Label) {{{}+}}\r\n{m}\r\n",
        m.len()
    ))
    .await;
    assert!(ok(&joe.imap_until("A").await));
    append(&mut joe, "INBOX", m).await;
    assert!(ok(&cmd(&mut joe, "g", "SELECT INBOX").await));
    assert!(ok(
        &cmd(&mut joe, "h", "STORE 1 +FLAGS (\\Seen \\Deleted)").await
    ));
    assert!(ok(&cmd(&mut joe, "i", &format!("COPY 1 {team}")).await));
    assert_eq!(flags_of(&mut bob, "Team", 1).await, "* 1 FETCH (FLAGS ())");
    assert_eq!(
        flags_of(&mut bob, "Team", 2).await,
        "* 1 FETCH (FLAGS ())".replace("* 1", "* 2")
    );
    // With s as well: \Seen is kept, the others dropped.
    assert!(ok(
        &cmd(&mut bob, "j", "SETACL Team joe@example.org lris").await
    ));
    assert!(ok(&cmd(&mut joe, "k", &format!("COPY 1 {team}")).await));
    assert_eq!(
        flags_of(&mut bob, "Team", 3).await,
        "* 3 FETCH (FLAGS (\\Seen))"
    );

    // 4#11: FETCH of a body without s sets no \Seen.
    assert!(ok(
        &cmd(&mut bob, "l", "SETACL Team joe@example.org lri").await
    ));
    assert!(ok(&cmd(&mut joe, "m", &format!("SELECT {team}")).await));
    let r = cmd(&mut joe, "n", "FETCH 1 (BODY[TEXT])").await;
    assert!(ok(&r) && !r.iter().any(|l| l.contains("\\Seen")), "{r:?}");
    assert_eq!(flags_of(&mut bob, "Team", 1).await, "* 1 FETCH (FLAGS ())");

    // 5.1.1#5: SETACL pipelined with the STORE it allows.
    joe.send("o1 NOOP\r\n").await;
    joe.imap_until("o1").await;
    bob.send("o SETACL Team joe@example.org lris\r\np GETACL Team\r\n")
        .await;
    let r = bob.imap_until("p").await;
    assert!(r.iter().any(|l| l.contains("\"lrsi\"")), "{r:?}");
    // 4#13: +FLAGS with \Seen (allowed) and \Flagged (not): \Seen set.
    let r = cmd(&mut joe, "q", "STORE 1 +FLAGS (\\Seen \\Flagged)").await;
    assert!(ok(&r), "{r:?}");
    assert_eq!(
        flags_of(&mut bob, "Team", 1).await,
        "* 1 FETCH (FLAGS (\\Seen))"
    );
    // Only flags it may not change: NO.
    let r = cmd(&mut joe, "r", "STORE 1 +FLAGS (\\Flagged)").await;
    assert!(r.last().unwrap().starts_with("r NO [NOPERM]"), "{r:?}");
    // FLAGS (\Flagged): \Seen (which it may change) goes, \Flagged
    // (which it may not) is not set.
    assert!(ok(&cmd(&mut joe, "s", "STORE 1 FLAGS (\\Flagged)").await));
    assert_eq!(flags_of(&mut bob, "Team", 1).await, "* 1 FETCH (FLAGS ())");

    // 4#10: CLOSE without e: closed, OK, nothing expunged.
    assert!(ok(
        &cmd(&mut bob, "t", "SETACL Team joe@example.org lrist").await
    ));
    assert!(ok(&cmd(&mut joe, "u", &format!("SELECT {team}")).await));
    assert!(ok(&cmd(&mut joe, "v", "STORE 1 +FLAGS (\\Deleted)").await));
    let r = cmd(&mut joe, "w", "CLOSE").await;
    assert!(ok(&r), "{r:?}");
    assert!(
        cmd(&mut joe, "w2", "FETCH 1 FLAGS").await[0].starts_with("w2 BAD"),
        "closed"
    );
    let r = cmd(&mut bob, "y", "STATUS Team (MESSAGES)").await;
    assert_eq!(r[0], "* STATUS \"Team\" (MESSAGES 3)", "{r:?}");

    // 7#1: commands and "anyone" in any case.
    assert!(ok(&cmd(&mut bob, "z", "setacl Team AnYoNe lr").await));
    let r = cmd(&mut bob, "z2", "getacl Team").await;
    assert!(r[0].contains("\"anyone\" \"lr\""), "{r:?}");
    let r = cmd(&mut bob, "z3", "myrights Team").await;
    assert!(r[0].starts_with("* MYRIGHTS \"Team\""), "{r:?}");
    assert!(ok(&cmd(&mut bob, "z4", "deleteacl Team ANYONE").await));
    let r = cmd(&mut bob, "z5", "listrights Team ANYONE").await;
    assert!(ok(&r), "{r:?}");
}

/// RFC 5256 §1, §7 (strings collate by i;unicode-casemap), §2.2 (sent
/// dates with an invalid zone or time), §3 (msg-ids compared whatever
/// their quoting; US-ASCII and UTF-8 charsets).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sort_and_thread_collation_dates_and_ids() {
    let s = server().await;
    let mut c = login(&s).await;
    assert!(ok(&cmd(&mut c, "a", "CREATE Sorted").await));
    for subject in ["Zebra", "=?utf-8?q?=C3=A9lan?=", "apple"] {
        append(
            &mut c,
            "Sorted",
            &format!("Subject: {subject}\r\n\r\nx\r\n"),
        )
        .await;
    }
    assert!(ok(&cmd(&mut c, "b", "SELECT Sorted").await));
    // 1#1, 7#1: "élan" sorts among the E's, not after "Zebra".
    for charset in ["UTF-8", "US-ASCII"] {
        let r = cmd(&mut c, "c", &format!("SORT (SUBJECT) {charset} ALL")).await;
        assert_eq!(r[0], "* SORT 3 2 1", "{charset}: {r:?}");
    }

    assert!(ok(&cmd(&mut c, "d", "CREATE Dated").await));
    for date in [
        "Mon, 2 Jan 2023 10:30:00 +0000",
        // An invalid zone: read as UTC (2.2#1), so 10:00 UTC.
        "Mon, 2 Jan 2023 10:00:00 +9999",
        "Mon, 2 Jan 2023 09:30:00 +0000",
        // An invalid time: 00:00:00 that day (2.2#2).
        "Mon, 2 Jan 2023 99:99:99 +0000",
        // No valid date: the earliest date of all (2.2#3).
        "Tue, 31 Feb 2023 10:00:00 +0000",
    ] {
        append(
            &mut c,
            "Dated",
            &format!("Date: {date}\r\nSubject: d\r\n\r\nx\r\n"),
        )
        .await;
    }
    assert!(ok(&cmd(&mut c, "e", "SELECT Dated").await));
    let r = cmd(&mut c, "f", "SORT (DATE) UTF-8 ALL").await;
    assert_eq!(r[0], "* SORT 5 4 3 2 1", "{r:?}");

    // 3#4, 3#5: <"01KF8JCEOCBS0045PS"@xxx.yyy.com> is <01KF8JCEOCBS0045PS@xxx.yyy.com>.
    assert!(ok(&cmd(&mut c, "g", "CREATE Threads").await));
    append(
        &mut c,
        "Threads",
        "Message-ID: <\"01KF8JCEOCBS0045PS\"@xxx.yyy.com>\r\nSubject: first\r\nDate: Mon, 2 Jan 2023 09:00:00 +0000\r\n\r\nx\r\n",
    )
    .await;
    append(
        &mut c,
        "Threads",
        "Message-ID: <reply@xxx.yyy.com>\r\nIn-Reply-To: <01KF8JCEOCBS0045PS@xxx.yyy.com>\r\nSubject: other\r\nDate: Mon, 2 Jan 2023 10:00:00 +0000\r\n\r\nx\r\n",
    )
    .await;
    assert!(ok(&cmd(&mut c, "h", "SELECT Threads").await));
    let r = cmd(&mut c, "i", "THREAD REFERENCES UTF-8 ALL").await;
    assert_eq!(r[0], "* THREAD (1 2)", "{r:?}");
}

/// A `NAME value` number from lines like `* OK [HIGHESTMODSEQ 7]` or
/// `MODSEQ (7)`.
fn number_after(lines: &[String], name: &str) -> Option<u64> {
    lines.iter().find_map(|l| {
        let rest = l.split(name).nth(1)?;
        rest.trim_start_matches([' ', '('])
            .split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    })
}

async fn highest(c: &mut LineClient, mailbox: &str) -> u64 {
    let r = cmd(c, "hs", &format!("STATUS {mailbox} (HIGHESTMODSEQ)")).await;
    number_after(&r, "HIGHESTMODSEQ").unwrap_or_else(|| panic!("{r:?}"))
}

/// RFC 7162 §3.1 and §3.2, sentence by sentence (what
/// `imap::condstore_mod_sequences` and `imap::qresync_resynchronisation`
/// leave out).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn condstore_and_qresync_sentences() {
    let s = server().await;
    let mut c = login(&s).await;
    for i in 0..4 {
        append(&mut c, "INBOX", &format!("Subject: m{i}\r\n\r\nx\r\n")).await;
    }
    // 3.2.3#2, 7#1: ENABLE QRESYNC CONDSTORE, in lower case.
    let r = cmd(&mut c, "a", "enable qresync condstore").await;
    assert!(
        r[0].starts_with("* ENABLED") && r[0].contains("QRESYNC") && r[0].contains("CONDSTORE"),
        "{r:?}"
    );
    // 3.1.2#1, 3.1.2#2, 3.1.2.1#1: EXAMINE too carries HIGHESTMODSEQ.
    let r = cmd(&mut c, "b", "EXAMINE INBOX").await;
    assert!(number_after(&r, "[HIGHESTMODSEQ").is_some(), "{r:?}");
    // 7#3: no flag-extension flags in FLAGS.
    let flags = r.iter().find(|l| l.starts_with("* FLAGS")).unwrap();
    for f in flags.split(['(', ')', ' ']).filter(|f| f.starts_with('\\')) {
        assert!(
            ["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft"].contains(&f),
            "{flags}"
        );
    }
    let r = cmd(&mut c, "c", "SELECT INBOX").await;
    // 3.2.11#1: the EXAMINE'd mailbox was closed by this SELECT.
    assert!(r.iter().any(|l| l.starts_with("* OK [CLOSED]")), "{r:?}");
    let h0 = number_after(&r, "[HIGHESTMODSEQ").unwrap();

    // 3.1#2, 3.1#3, 3.1.3#2, 3.2.4#1: each STORE a higher mod-sequence,
    // a FETCH with UID and MODSEQ even with .SILENT.
    let r1 = cmd(&mut c, "d", "STORE 1 +FLAGS.SILENT (\\Flagged)").await;
    assert!(
        r1[0].starts_with("* 1 FETCH (") && r1[0].contains("UID 1") && r1[0].contains("MODSEQ ("),
        "{r1:?}"
    );
    let m1 = number_after(&r1, "MODSEQ").unwrap();
    let r2 = cmd(&mut c, "e", "STORE 2 +FLAGS (\\Flagged)").await;
    let m2 = number_after(&r2, "MODSEQ").unwrap();
    assert!(m1 > h0 && m2 > m1, "{r1:?} {r2:?}");
    assert!(r2[0].contains("UID 2"), "{r2:?}");
    // 3.1#5, 3.1.11#1: setting a flag already set changes nothing.
    let r = cmd(&mut c, "f", "STORE 1 +FLAGS (\\Flagged)").await;
    assert_eq!(number_after(&r, "MODSEQ"), Some(m1), "{r:?}");
    // 3.1.3#6: \Draft was never set, yet UNCHANGEDSINCE compares the
    // message's mod-sequence and the STORE goes ahead.
    let r = cmd(
        &mut c,
        "g",
        &format!("STORE 1 (UNCHANGEDSINCE {m1}) -FLAGS (\\Draft)"),
    )
    .await;
    assert!(
        r.last().unwrap().starts_with("g OK") && !r.last().unwrap().contains("MODIFIED"),
        "{r:?}"
    );
    // 3.1.3#12: a message named twice does not fail the second time.
    let r = cmd(
        &mut c,
        "h",
        &format!("STORE 3,3 (UNCHANGEDSINCE {m2}) +FLAGS (\\Answered)"),
    )
    .await;
    assert!(
        r.last().unwrap().starts_with("h OK") && !r.last().unwrap().contains("MODIFIED"),
        "{r:?}"
    );
    // 3.1.3#10: a message that failed UNCHANGEDSINCE gets a FETCH telling
    // what it is now.
    let r = cmd(
        &mut c,
        "i",
        &format!("STORE 2 (UNCHANGEDSINCE {h0}) FLAGS (\\Seen)"),
    )
    .await;
    assert!(r.last().unwrap().contains("[MODIFIED 2]"), "{r:?}");
    assert!(
        r.iter()
            .any(|l| l.starts_with("* 2 FETCH (") && l.contains("MODSEQ")),
        "{r:?}"
    );
    // 3.1.8#1: SELECT (CONDSTORE); 3.1.4.2#1, 3.1#6: another session's
    // change arrives with UID and MODSEQ.
    let mut o = login(&s).await;
    assert!(number_after(
        &cmd(&mut o, "a", "SELECT INBOX (CONDSTORE)").await,
        "[HIGHESTMODSEQ"
    )
    .is_some());
    assert!(ok(&cmd(&mut o, "b", "STORE 4 +FLAGS (\\Seen)").await));
    let r = cmd(&mut c, "j", "NOOP").await;
    assert!(
        r.iter()
            .any(|l| l.starts_with("* 4 FETCH (") && l.contains("UID 4") && l.contains("MODSEQ")),
        "{r:?}"
    );
    // 3.1.9#1: SORT with MODSEQ ends with the highest mod-sequence;
    // 3.1.10#2: so does ESORT's ESEARCH.
    let r = cmd(&mut c, "k", &format!("SORT (ARRIVAL) UTF-8 MODSEQ {m1}")).await;
    assert!(
        r[0].starts_with("* SORT ") && r[0].contains("(MODSEQ "),
        "{r:?}"
    );
    let r = cmd(
        &mut c,
        "l",
        &format!("SORT RETURN (ALL) (ARRIVAL) UTF-8 MODSEQ {m1}"),
    )
    .await;
    assert!(
        r[0].starts_with("* ESEARCH (TAG \"l\")") && r[0].contains(" MODSEQ "),
        "{r:?}"
    );

    // 3.1.3#8: another session sets \Seen on message 1; this session's
    // +FLAGS UNCHANGEDSINCE of another flag is not refused for that.
    let m_now = number_after(&cmd(&mut c, "q0", "FETCH 1 MODSEQ").await, "MODSEQ").unwrap();
    assert!(ok(&cmd(&mut o, "q1", "STORE 1 +FLAGS (\\Seen)").await));
    let r = cmd(
        &mut c,
        "q2",
        &format!("STORE 1 (UNCHANGEDSINCE {m_now}) +FLAGS ($Processed)"),
    )
    .await;
    assert!(
        r.last().unwrap().starts_with("q2 OK") && !r.last().unwrap().contains("MODIFIED"),
        "{r:?}"
    );
    // 3.2#4: while an expunge is held back (answering FETCH), the tagged
    // OK carries a HIGHESTMODSEQ below it.
    let known = highest(&mut o, "INBOX").await;
    assert!(ok(
        &cmd(&mut o, "q3", "STORE 2 +FLAGS.SILENT (\\Deleted)").await
    ));
    assert!(ok(&cmd(&mut o, "q4", "EXPUNGE").await));
    let r = cmd(&mut c, "q5", "FETCH 1 (FLAGS)").await;
    assert!(!r.iter().any(|l| l.contains("VANISHED")), "{r:?}");
    let said = number_after(&r, "[HIGHESTMODSEQ").unwrap_or_else(|| panic!("{r:?}"));
    assert!(said <= known, "{said} > {known}: {r:?}");
    let r = cmd(&mut c, "q6", "NOOP").await;
    assert!(r.iter().any(|l| l == "* VANISHED 2"), "{r:?}");
    // 3.2#1, 3.2.7#1, 3.2.7#3: EXPUNGE raises the mailbox's mod-sequence
    // and, with QRESYNC, the tagged OK says it.
    let before = highest(&mut o, "INBOX").await;
    assert!(ok(&cmd(
        &mut c,
        "m",
        "UID STORE 4 +FLAGS.SILENT (\\Deleted)"
    )
    .await));
    let r = cmd(&mut c, "n", "EXPUNGE").await;
    let after = highest(&mut o, "INBOX").await;
    assert!(after > before + 1, "{before} -> {after}");
    assert!(
        r.last()
            .unwrap()
            .starts_with(&format!("n OK [HIGHESTMODSEQ {after}]")),
        "{r:?}"
    );
    // 3.2.9#1, 3.2.9#3: UID EXPUNGE alike.
    assert!(ok(&cmd(
        &mut c,
        "o",
        "UID STORE 3 +FLAGS.SILENT (\\Deleted)"
    )
    .await));
    let r = cmd(&mut c, "p", "UID EXPUNGE 3").await;
    let after2 = highest(&mut o, "INBOX").await;
    assert!(after2 > after + 1, "{after} -> {after2}");
    assert!(
        r.last()
            .unwrap()
            .starts_with(&format!("p OK [HIGHESTMODSEQ {after2}]")),
        "{r:?}"
    );
    // 3.2.10.2#3, #4: a message this session never heard of is not in a
    // VANISHED; 3.2.10.2#5: none while answering FETCH, STORE or SEARCH.
    assert!(ok(&cmd(&mut c, "q", "NOOP").await));
    append(&mut o, "INBOX", "Subject: keep\r\n\r\nx\r\n").await;
    assert!(ok(&cmd(&mut c, "q7", "NOOP").await));
    append(&mut o, "INBOX", "Subject: brief\r\n\r\nx\r\n").await;
    assert!(ok(&cmd(
        &mut o,
        "r",
        "UID STORE 6 +FLAGS.SILENT (\\Deleted)"
    )
    .await));
    assert!(ok(&cmd(&mut o, "s", "EXPUNGE").await));
    assert!(ok(&cmd(
        &mut o,
        "s2",
        "UID STORE 1 +FLAGS.SILENT (\\Deleted)"
    )
    .await));
    assert!(ok(&cmd(&mut o, "s3", "EXPUNGE").await));
    for (t, command) in [
        ("t1", "FETCH 1 FLAGS"),
        ("t2", "STORE 1 +FLAGS (\\Seen)"),
        ("t3", "SEARCH ALL"),
        ("t4", "UID SEARCH 1:*"),
    ] {
        let r = cmd(&mut c, t, command).await;
        assert!(
            !r.iter().any(|l| l.contains("VANISHED")),
            "{command}: {r:?}"
        );
    }
    let r = cmd(&mut c, "u", "NOOP").await;
    let v: Vec<&String> = r.iter().filter(|l| l.starts_with("* VANISHED")).collect();
    assert_eq!(v, vec!["* VANISHED 1"], "only UID 1, which it knew: {r:?}");
    // 3.2#1, 3.2.8#1, 3.2.8#3: CLOSE raises it too but its OK does not
    // carry HIGHESTMODSEQ.
    assert!(ok(
        &cmd(&mut c, "w", "STORE 1 +FLAGS.SILENT (\\Deleted)").await
    ));
    let before = highest(&mut o, "INBOX").await;
    let r = cmd(&mut c, "x", "CLOSE").await;
    assert!(
        ok(&r) && !r.last().unwrap().contains("HIGHESTMODSEQ"),
        "{r:?}"
    );
    assert!(highest(&mut o, "INBOX").await > before);
    // 3.2#2: SETMETADATA on a mailbox raises its mod-sequence.
    let before = highest(&mut o, "INBOX").await;
    assert!(ok(&cmd(
        &mut c,
        "y",
        "SETMETADATA INBOX (/private/comment \"hi\")"
    )
    .await));
    assert!(highest(&mut o, "INBOX").await > before);
    // 3.2.6#2: VANISHED needs ENABLE QRESYNC.
    let mut n = login(&s).await;
    assert!(ok(&cmd(&mut n, "a", "SELECT INBOX").await));
    let r = cmd(
        &mut n,
        "b",
        "UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)",
    )
    .await;
    assert!(r.last().unwrap().starts_with("b BAD"), "{r:?}");
}
