//! IMAP behaviour an independent compliance tester found wrong, one test
//! per class, each written from the RFC sentence it names (issue: "IMAP
//! correctness").

mod common;

use common::*;

async fn server() -> TestServer {
    let s = TestServer::start_with("[imap]\nauth-without-tls = true\n");
    s.account("joe@example.org");
    s
}

async fn login(s: &TestServer) -> LineClient {
    let mut c = LineClient::connect(s.addr("imap")).await;
    c.line().await;
    c.send("L LOGIN joe@example.org pw\r\n").await;
    assert!(c.imap_until("L").await.last().unwrap().starts_with("L OK"));
    c
}

async fn cmd(c: &mut LineClient, tag: &str, text: &str) -> Vec<String> {
    c.send(&format!("{tag} {text}\r\n")).await;
    c.imap_until(tag).await
}

fn ok(r: &[String]) -> bool {
    r.last().is_some_and(|l| l.split(' ').nth(1) == Some("OK"))
}

/// APPENDs `m` to `mailbox` with LITERAL+.
async fn append(c: &mut LineClient, mailbox: &str, m: &str) {
    c.send(&format!("A APPEND {mailbox} {{{}+}}\r\n{m}\r\n", m.len()))
        .await;
    let r = c.imap_until("A").await;
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
