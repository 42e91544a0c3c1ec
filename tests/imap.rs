//! IMAP exchanges on the wire (RFC 9051 / RFC 3501), against a running
//! server. Plain-text auth is allowed here so exchanges stay readable; the
//! TLS paths are covered in e2e.rs.

mod common;

use common::imap::{lines_until, login_as};
use common::*;

async fn server_with_mail() -> TestServer {
    let s = TestServer::start_with("[imap]\nauth-without-tls = true\n");
    s.account("joe@example.org");
    let msg = "From: Alice <alice@remote.test>\r\nTo: joe@example.org\r\nSubject: first\r\nMessage-ID: <m1@remote.test>\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\npart one\r\n--b1\r\nContent-Type: text/html\r\n\r\n<p>two</p>\r\n--b1--\r\n";
    assert!(smtp_send(
        s.addr("smtp"),
        "alice@remote.test",
        &["joe@example.org"],
        msg
    )
    .await
    .starts_with("250"));
    assert!(smtp_send(
        s.addr("smtp"),
        "bob@remote.test",
        &["joe@example.org"],
        "Subject: second\r\n\r\nsecond body"
    )
    .await
    .starts_with("250"));
    s
}

async fn logged_in(s: &TestServer) -> LineClient {
    let mut c = LineClient::connect(s.addr("imap")).await;
    let g = c.line().await;
    assert!(g.starts_with("* OK [CAPABILITY IMAP4rev1"), "{g}");
    c.send("L LOGIN joe@example.org pw\r\n").await;
    assert!(c.imap_until("L").await.last().unwrap().starts_with("L OK"));
    c
}

/// APPENDs `m` to INBOX with LITERAL+ and checks the OK.
async fn append(c: &mut LineClient, tag: &str, m: &str) {
    c.send(&format!("{tag} APPEND INBOX {{{}+}}\r\n{m}\r\n", m.len()))
        .await;
    let r = c.imap_until(tag).await;
    assert!(r.last().unwrap().starts_with(&format!("{tag} OK")), "{r:?}");
}

/// The first response line of a command.
async fn q(c: &mut LineClient, tag: &str, text: &str) -> String {
    cmd(c, tag, text).await.remove(0)
}

async fn cmd(c: &mut LineClient, tag: &str, text: &str) -> Vec<String> {
    c.send(&format!("{tag} {text}\r\n")).await;
    c.imap_until(tag).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capability_and_login_rules() {
    let s = TestServer::start();
    s.account("joe@example.org");
    let mut c = LineClient::connect(s.addr("imap")).await;
    c.line().await;
    let caps = cmd(&mut c, "a", "CAPABILITY").await;
    assert!(
        caps[0].contains("STARTTLS") && caps[0].contains("LOGINDISABLED"),
        "{caps:?}"
    );
    assert!(!caps[0].contains("AUTH=PLAIN"));
    let r = cmd(&mut c, "b", "SELECT INBOX").await;
    assert!(r[0].starts_with("b BAD"), "{r:?}");
    let r = cmd(&mut c, "c", "LOGIN joe@example.org pw").await;
    assert!(r[0].starts_with("c NO [PRIVACYREQUIRED]"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authenticate_plain_forms() {
    let s = TestServer::start_with("[imap]\nauth-without-tls = true\n");
    s.account("joe@example.org");
    let mut c = LineClient::connect(s.addr("imap")).await;
    c.line().await;
    // "\0joe@example.org\0pw" in base64, as an initial response (RFC 4959).
    let ir = "AGpvZUBleGFtcGxlLm9yZwBwdw==";
    let r = cmd(&mut c, "a", &format!("AUTHENTICATE PLAIN {ir}")).await;
    assert!(r.last().unwrap().starts_with("a OK"), "{r:?}");
    let mut c = LineClient::connect(s.addr("imap")).await;
    c.line().await;
    c.send("b AUTHENTICATE PLAIN\r\n").await;
    assert_eq!(c.line().await, "+ ");
    c.send(&format!("{ir}\r\n")).await;
    assert!(c.imap_until("b").await.last().unwrap().starts_with("b OK"));
    let mut c = LineClient::connect(s.addr("imap")).await;
    c.line().await;
    c.send("c AUTHENTICATE PLAIN\r\n").await;
    c.line().await;
    c.send("*\r\n").await;
    assert!(c.imap_until("c").await[0].starts_with("c BAD"));
    let r = cmd(&mut c, "d", "AUTHENTICATE CRAM-MD5").await;
    assert!(r[0].starts_with("d NO"));
    // SASL LOGIN: user name, then password, each base64.
    c.send("e AUTHENTICATE LOGIN\r\n").await;
    assert_eq!(c.line().await, "+ VXNlcm5hbWU6");
    c.send("am9lQGV4YW1wbGUub3Jn\r\n").await;
    assert_eq!(c.line().await, "+ UGFzc3dvcmQ6");
    c.send("cHc=\r\n").await;
    assert!(c.imap_until("e").await.last().unwrap().starts_with("e OK"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_are_rate_limited() {
    let s = TestServer::start_with(
        "[imap]\nauth-without-tls = true\n[auth]\nmax-failures-per-account = 2\n",
    );
    s.account("joe@example.org");
    let mut c = LineClient::connect(s.addr("imap")).await;
    c.line().await;
    for t in ["a", "b"] {
        assert!(cmd(&mut c, t, "LOGIN joe@example.org wrong").await[0]
            .starts_with(&format!("{t} NO [AUTHENTICATIONFAILED]")));
    }
    // Even the right password is refused while the account is blocked.
    assert!(cmd(&mut c, "c", "LOGIN joe@example.org pw").await[0].starts_with("c NO [UNAVAILABLE]"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_select_examine_status() {
    let s = server_with_mail().await;
    let mut c = logged_in(&s).await;
    let r = cmd(&mut c, "a", "LIST \"\" \"*\"").await;
    for want in [
        "* LIST (\\HasNoChildren) \"/\" \"INBOX\"",
        "* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent\"",
        "* LIST (\\HasNoChildren \\Junk) \"/\" \"Junk\"",
    ] {
        assert!(r.iter().any(|l| l == want), "{want} in {r:?}");
    }
    let r = cmd(&mut c, "b", "LIST \"\" \"\"").await;
    assert_eq!(r[0], "* LIST (\\Noselect) \"/\" \"\"");
    let r = cmd(&mut c, "c", "LIST \"\" inbox").await;
    assert_eq!(r.len(), 2, "{r:?}");
    let r = cmd(&mut c, "d", "STATUS INBOX (MESSAGES UNSEEN UIDNEXT)").await;
    assert_eq!(r[0], "* STATUS \"INBOX\" (MESSAGES 2 UNSEEN 2 UIDNEXT 3)");
    let r = cmd(&mut c, "e", "EXAMINE INBOX").await;
    assert!(r.iter().any(|l| l == "* 2 EXISTS"));
    assert!(r.last().unwrap().starts_with("e OK [READ-ONLY]"));
    let r = cmd(&mut c, "f", "STORE 1 +FLAGS (\\Seen)").await;
    assert!(r[0].starts_with("f NO [READ-ONLY]"));
    // The open mailbox is closed first (RFC 9051 §7.1 CLOSED), then the
    // new one is not found.
    let r = cmd(&mut c, "g", "SELECT Nope").await;
    assert_eq!(r[0], "* OK [CLOSED] Previous mailbox closed");
    assert!(r[1].starts_with("g NO [NONEXISTENT]"), "{r:?}");
    let r = cmd(&mut c, "h", "FETCH 1 FLAGS").await;
    assert!(r[0].starts_with("h BAD"), "failed SELECT deselects: {r:?}");
    let r = cmd(&mut c, "i", "SELECT INBOX").await;
    assert!(r.iter().any(|l| l.starts_with("* OK [UIDVALIDITY ")));
    assert!(r.iter().any(|l| l == "* OK [UIDNEXT 3] Predicted next UID"));
    assert!(r.last().unwrap().starts_with("i OK [READ-WRITE]"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_items_and_sections() {
    let s = server_with_mail().await;
    let mut c = logged_in(&s).await;
    cmd(&mut c, "a", "SELECT INBOX").await;
    let r = cmd(
        &mut c,
        "b",
        "FETCH 1 (UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE)",
    )
    .await;
    assert!(
        r[0].starts_with("* 1 FETCH (UID 1 FLAGS (\\Recent) RFC822.SIZE "),
        "{r:?}"
    );
    assert!(
        r[0].contains("ENVELOPE (NIL \"first\" ((\"Alice\" NIL \"alice\" \"remote.test\"))"),
        "{r:?}"
    );
    assert!(r[0].contains("\"<m1@remote.test>\")"), "{r:?}");
    let r = cmd(&mut c, "c", "FETCH 1 BODYSTRUCTURE").await;
    assert!(
        r[0].contains(
            "(\"text\" \"plain\" NIL NIL NIL \"7bit\" 8 1 NIL NIL NIL NIL)(\"text\" \"html\""
        ),
        "{r:?}"
    );
    assert!(r[0].contains("\"mixed\" (\"boundary\" \"b1\")"), "{r:?}");
    let r = cmd(&mut c, "d", "FETCH 1 (BODY.PEEK[1] BODY.PEEK[2]<0.3>)").await;
    assert_eq!(r[0], "* 1 FETCH (BODY[1] {8}");
    assert_eq!(r[1], "part one BODY[2]<0> {3}");
    assert_eq!(r[2], "<p>)");
    let r = cmd(&mut c, "e", "UID FETCH 2 (BODY[TEXT])").await;
    assert_eq!(r[0], "* 2 FETCH (UID 2 BODY[TEXT] {13}");
    assert_eq!(r[1], "second body");
    assert_eq!(
        r[2], " FLAGS (\\Seen \\Recent))",
        "non-PEEK fetch sets \\Seen"
    );
    let r = cmd(&mut c, "f", "FETCH 1:* FLAGS").await;
    assert_eq!(r[0], "* 1 FETCH (FLAGS (\\Recent))");
    assert_eq!(r[1], "* 2 FETCH (FLAGS (\\Seen \\Recent))");
    let r = cmd(&mut c, "g", "FETCH 1 BODY.PEEK[3]").await;
    assert_eq!(r[0], "* 1 FETCH (BODY[3] NIL)");
    let r = cmd(&mut c, "h", "FETCH 5 FLAGS").await;
    assert!(r[0].starts_with("h BAD"), "{r:?}");
    let r = cmd(&mut c, "i", "FETCH 0:x FLAGS").await;
    assert!(r[0].starts_with("i BAD"));
    let r = cmd(&mut c, "j", "FETCH 1 (FLAGS BOGUS)").await;
    assert!(r[0].starts_with("j BAD"));
    let r = cmd(&mut c, "k", "UID FETCH 9:* UID").await;
    assert_eq!(r[0], "* 2 FETCH (UID 2)", "n:* includes the largest UID");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_expunge_close() {
    let s = server_with_mail().await;
    let mut c = logged_in(&s).await;
    cmd(&mut c, "a", "SELECT INBOX").await;
    let r = cmd(&mut c, "b", "STORE 1:2 +FLAGS (\\Flagged $Work)").await;
    // A new keyword is announced first (RFC 3501 §7.2.6).
    assert_eq!(
        r[0],
        "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work)"
    );
    assert_eq!(r[2], "* 1 FETCH (FLAGS (\\Flagged $Work \\Recent))");
    let r = cmd(&mut c, "c", "UID STORE 1 -FLAGS.SILENT (\\Flagged)").await;
    assert_eq!(r.len(), 1);
    let r = cmd(&mut c, "d", "STORE 2 FLAGS (\\Deleted)").await;
    assert_eq!(r[0], "* 2 FETCH (FLAGS (\\Deleted \\Recent))");
    let r = cmd(&mut c, "e", "STORE 1 +FLAGS (\\Recent)").await;
    assert!(r[0].starts_with("e BAD"));
    let r = cmd(&mut c, "f", "EXPUNGE").await;
    assert_eq!(r[0], "* 2 EXPUNGE");
    let r = cmd(&mut c, "g", "FETCH 1:* (UID FLAGS)").await;
    assert_eq!(r[0], "* 1 FETCH (UID 1 FLAGS ($Work \\Recent))");
    cmd(&mut c, "h", "STORE 1 +FLAGS (\\Deleted)").await;
    let r = cmd(&mut c, "i", "CLOSE").await;
    assert!(r[0].starts_with("i OK"));
    let r = cmd(&mut c, "j", "STATUS INBOX (MESSAGES UIDNEXT)").await;
    assert_eq!(
        r[0], "* STATUS \"INBOX\" (MESSAGES 0 UIDNEXT 3)",
        "UIDs are never reused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_see_each_others_changes() {
    let s = server_with_mail().await;
    let mut a = logged_in(&s).await;
    let mut b = logged_in(&s).await;
    cmd(&mut a, "a1", "SELECT INBOX").await;
    cmd(&mut b, "b1", "SELECT INBOX").await;
    cmd(&mut b, "b2", "STORE 1 +FLAGS (\\Answered)").await;
    assert!(smtp_send(
        s.addr("smtp"),
        "c@remote.test",
        &["joe@example.org"],
        "Subject: third\r\n\r\n3"
    )
    .await
    .starts_with("250"));
    let r = cmd(&mut a, "a2", "NOOP").await;
    assert!(
        r.contains(&"* 1 FETCH (FLAGS (\\Answered \\Recent))".to_string()),
        "{r:?}"
    );
    assert!(r.contains(&"* 3 EXISTS".to_string()), "{r:?}");
    cmd(&mut b, "b3", "STORE 2 +FLAGS (\\Deleted)").await;
    cmd(&mut b, "b4", "EXPUNGE").await;
    let r = cmd(&mut a, "a3", "NOOP").await;
    assert!(r.contains(&"* 2 EXPUNGE".to_string()), "{r:?}");
    let r = cmd(&mut a, "a4", "FETCH 2 UID").await;
    assert_eq!(r[0], "* 2 FETCH (UID 3)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_logged_out() {
    let s = TestServer::start_with("[imap]\ntimeout-idle = 1\n");
    let mut c = LineClient::connect(s.addr("imap")).await;
    c.line().await;
    let t = std::time::Instant::now();
    assert!(c.line().await.starts_with("* BYE Autologout"));
    assert!(t.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(c.line_opt().await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_bad_and_session_goes_on() {
    let s = TestServer::start_with(
        "[imap]\nauth-without-tls = true\nmax-literal-size = 1000\nmax-line-length = 200\n",
    );
    s.account("joe@example.org");
    let mut c = logged_in(&s).await;
    c.send("a APPEND INBOX {99999999999}\r\n").await;
    assert_eq!(c.line().await, "a NO [TOOBIG] Literal too large");
    c.send(&format!("b NOOP {}\r\n", "x".repeat(500))).await;
    assert!(c.line().await.starts_with("b BAD [TOOBIG]"));
    c.send_bytes(b"\xff\xfe\r\n").await;
    assert!(c.line().await.contains("BAD"));
    let r = cmd(&mut c, "c", "FROBNICATE").await;
    assert!(r[0].starts_with("c BAD"));
    let r = cmd(
        &mut c,
        "d",
        "LIST (((((((((((((((((((((((((x))))))))))))))))))))))))) y",
    )
    .await;
    assert!(r[0].starts_with("d BAD"), "{r:?}");
    // A literal with a continuation, then a normal command.
    c.send("f STATUS {5}\r\n").await;
    assert!(c.line().await.starts_with("+ "));
    c.send("INBOX (MESSAGES)\r\n").await;
    let r = c.imap_until("f").await;
    assert_eq!(r[0], "* STATUS \"INBOX\" (MESSAGES 0)");
    let r = cmd(&mut c, "g", "LOGOUT").await;
    assert_eq!(r[0], "* BYE Logging out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_with_flags_date_and_appenduid() {
    let s = server_with_mail().await;
    let mut c = logged_in(&s).await;
    c.send("a APPEND Drafts (\\Draft \\Seen) \"17-Jul-1996 02:44:25 -0700\" {25}\r\n")
        .await;
    assert!(c.line().await.starts_with("+ "));
    c.send("Subject: draft\r\n\r\nhello\r\n\r\n").await;
    let r = c.imap_until("a").await;
    assert!(r.last().unwrap().starts_with("a OK [APPENDUID "), "{r:?}");
    assert!(r.last().unwrap().contains(" 1] APPEND completed"), "{r:?}");
    // LITERAL+ needs no continuation.
    let r = cmd(&mut c, "b", "APPEND INBOX {18+}\r\nSubject: plus\r\n\r\nx").await;
    assert!(r.last().unwrap().contains(" 3] APPEND completed"), "{r:?}");
    let r = cmd(&mut c, "c", "APPEND Nowhere {1+}\r\nx").await;
    assert!(r[0].starts_with("c NO [TRYCREATE]"));
    cmd(&mut c, "d", "SELECT Drafts").await;
    let r = cmd(&mut c, "e", "FETCH 1 (FLAGS INTERNALDATE RFC822.SIZE)").await;
    // The appended message is \\Recent in the first session to select
    // its mailbox (RFC 3501 §2.3.2).
    assert_eq!(r[0], "* 1 FETCH (FLAGS (\\Draft \\Seen \\Recent) INTERNALDATE \"17-Jul-1996 09:44:25 +0000\" RFC822.SIZE 25)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_rename_delete_subscribe() {
    let s = server_with_mail().await;
    let mut c = logged_in(&s).await;
    assert!(cmd(&mut c, "a", "CREATE Projects/Petrel").await[0].starts_with("a OK"));
    let r = cmd(&mut c, "b", "LIST \"\" \"Projects*\"").await;
    assert_eq!(r[0], "* LIST (\\HasChildren) \"/\" \"Projects\"");
    assert_eq!(r[1], "* LIST (\\HasNoChildren) \"/\" \"Projects/Petrel\"");
    assert!(cmd(&mut c, "c", "CREATE Projects").await[0].starts_with("c NO [ALREADYEXISTS]"));
    assert!(cmd(&mut c, "d", "CREATE INBOX").await[0].starts_with("d NO"));
    assert!(cmd(&mut c, "e", "DELETE Projects").await[0].starts_with("e NO [HASCHILDREN]"));
    assert!(cmd(&mut c, "f", "RENAME Projects Work").await[0].starts_with("f OK"));
    let r = cmd(&mut c, "g", "LIST \"\" \"Work/%\"").await;
    assert_eq!(r[0], "* LIST (\\HasNoChildren) \"/\" \"Work/Petrel\"");
    assert!(cmd(&mut c, "h", "UNSUBSCRIBE Work").await[0].starts_with("h OK"));
    let r = cmd(&mut c, "i", "LSUB \"\" \"Work*\"").await;
    assert_eq!(r[0], "* LSUB (\\HasNoChildren) \"/\" \"Work/Petrel\"");
    assert!(cmd(&mut c, "j", "DELETE Work/Petrel").await[0].starts_with("j OK"));
    assert!(cmd(&mut c, "k", "DELETE Nope").await[0].starts_with("k NO [NONEXISTENT]"));
    assert!(cmd(&mut c, "l", "DELETE INBOX").await[0].starts_with("l NO"));
    let r = cmd(&mut c, "m", "NAMESPACE").await;
    assert_eq!(r[0], "* NAMESPACE ((\"\" \"/\")) ((\"Shared/\" \"/\")) NIL");
    let r = cmd(&mut c, "n", "ID NIL").await;
    assert!(r[0].starts_with("* ID (\"name\" \"Petrel\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_and_move_with_copyuid() {
    let s = server_with_mail().await;
    let mut c = logged_in(&s).await;
    cmd(&mut c, "a", "SELECT INBOX").await;
    cmd(&mut c, "b", "STORE 1 +FLAGS (\\Flagged)").await;
    let r = cmd(&mut c, "c", "COPY 1:2 Archive").await;
    assert!(
        r[0].starts_with("c OK [COPYUID ") && r[0].contains(" 1,2 1,2] COPY completed"),
        "{r:?}"
    );
    let r = cmd(&mut c, "d", "UID MOVE 2 Trash").await;
    assert!(
        r[0].starts_with("* OK [COPYUID ") && r[0].ends_with(" 2 1] Moved"),
        "{r:?}"
    );
    assert_eq!(r[1], "* 2 EXPUNGE");
    assert_eq!(r[2], "d OK MOVE completed");
    let r = cmd(&mut c, "e", "MOVE 5 Trash").await;
    assert!(r[0].starts_with("e BAD"));
    let r = cmd(&mut c, "f", "COPY 1 Nope").await;
    assert!(r[0].starts_with("f NO [TRYCREATE]"));
    let r = cmd(&mut c, "g", "STATUS Archive (MESSAGES)").await;
    assert_eq!(r[0], "* STATUS \"Archive\" (MESSAGES 2)");
    cmd(&mut c, "h", "SELECT Archive").await;
    let r = cmd(&mut c, "i", "FETCH 1 FLAGS").await;
    // Flags travel with the copy, which is \Recent here (RFC 3501
    // §6.4.7).
    assert_eq!(
        r[0], "* 1 FETCH (FLAGS (\\Flagged \\Recent))",
        "flags travel with the copy"
    );
    // Copy into the mailbox the message is already in: a separate message.
    let r = cmd(&mut c, "j", "COPY 1 Archive").await;
    assert_eq!(
        r[0], "* 3 EXISTS",
        "the copy shows up in the selected mailbox"
    );
    // RECENT counts the mailbox's recent messages: the two copied in
    // before this session selected it, and this one.
    assert_eq!(r[1], "* 3 RECENT", "and is this session's \\Recent one");
    assert!(
        r[2].starts_with("j OK [COPYUID ") && r[2].contains(" 1 3] "),
        "{r:?}"
    );
    cmd(&mut c, "l", "STORE 3 +FLAGS (\\Seen)").await;
    let r = cmd(&mut c, "m", "FETCH 1 FLAGS").await;
    assert_eq!(
        r[0], "* 1 FETCH (FLAGS (\\Flagged \\Recent))",
        "the copy's flags are its own"
    );
    let shown = s.cli_ok(&["account", "show", "joe@example.org"]);
    assert!(shown.contains("\"messages\": 3"), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_reports_new_mail_within_a_second() {
    let s = server_with_mail().await;
    let mut c = logged_in(&s).await;
    cmd(&mut c, "a", "SELECT INBOX").await;
    c.send("b IDLE\r\n").await;
    assert_eq!(c.line().await, "+ idling");
    let smtp = s.addr("smtp");
    let sent = std::time::Instant::now();
    tokio::spawn(async move {
        smtp_send(
            smtp,
            "x@remote.test",
            &["joe@example.org"],
            "Subject: push\r\n\r\nnow",
        )
        .await
    });
    let l = tokio::time::timeout(std::time::Duration::from_secs(5), c.line())
        .await
        .unwrap();
    assert_eq!(l, "* 3 EXISTS");
    assert!(
        sent.elapsed() < std::time::Duration::from_secs(1),
        "{:?}",
        sent.elapsed()
    );
    assert_eq!(c.line().await, "* 3 RECENT");
    c.send("DONE\r\n").await;
    assert_eq!(c.line().await, "b OK IDLE terminated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_keys() {
    let s = server_with_mail().await;
    let mut c = logged_in(&s).await;
    cmd(&mut c, "a", "SELECT INBOX").await;
    cmd(&mut c, "b", "STORE 2 +FLAGS (\\Seen $Work)").await;
    assert_eq!(q(&mut c, "c", "SEARCH ALL").await, "* SEARCH 1 2");
    assert_eq!(q(&mut c, "d", "SEARCH UNSEEN").await, "* SEARCH 1");
    assert_eq!(q(&mut c, "e", "SEARCH KEYWORD $Work").await, "* SEARCH 2");
    assert_eq!(q(&mut c, "f", "SEARCH FROM alice").await, "* SEARCH 1");
    assert_eq!(q(&mut c, "g", "SEARCH SUBJECT SECOND").await, "* SEARCH 2");
    assert_eq!(
        q(&mut c, "h", "SEARCH BODY \"part one\"").await,
        "* SEARCH 1"
    );
    assert_eq!(
        q(&mut c, "i", "SEARCH OR SUBJECT first NOT SEEN").await,
        "* SEARCH 1"
    );
    assert_eq!(
        q(&mut c, "j", "UID SEARCH 2:* LARGER 10").await,
        "* SEARCH 2"
    );
    assert_eq!(
        q(
            &mut c,
            "k",
            "SEARCH SINCE 1-Jan-2000 HEADER Message-ID m1@remote"
        )
        .await,
        "* SEARCH 1"
    );
    assert_eq!(q(&mut c, "l", "SEARCH BEFORE 1-Jan-2000").await, "* SEARCH");
    assert_eq!(
        q(&mut c, "m", "SEARCH TEXT \"second body\"").await,
        "* SEARCH 2"
    );
    assert!(q(&mut c, "n", "SEARCH CHARSET KOI8-R ALL")
        .await
        .starts_with("n NO [BADCHARSET"));
    assert!(q(&mut c, "o", "SEARCH FROB").await.starts_with("o BAD"));
}

/// CONDSTORE (RFC 7162 §3.1) and ENABLE (RFC 5161): mod-sequences in
/// SELECT, FETCH, STORE, SEARCH and STATUS, CHANGEDSINCE, UNCHANGEDSINCE,
/// and another session's flag change reported with its MODSEQ.
#[tokio::test]
async fn condstore_mod_sequences() {
    let s = server_with_mail().await;
    let mut c = logged_in(&s).await;
    let caps = cmd(&mut c, "a", "CAPABILITY").await.join("\n");
    assert!(
        caps.contains("CONDSTORE") && caps.contains("ENABLE"),
        "{caps}"
    );
    let r = cmd(&mut c, "b", "ENABLE CONDSTORE X-UNKNOWN").await;
    assert_eq!(r[0], "* ENABLED CONDSTORE");
    assert!(r[1].starts_with("b OK"));
    let sel = cmd(&mut c, "c", "SELECT INBOX").await;
    let hms: u64 = sel
        .iter()
        .find_map(|l| l.strip_prefix("* OK [HIGHESTMODSEQ "))
        .and_then(|l| l.split(']').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{sel:?}"));
    assert!(hms >= 1);

    // FETCH MODSEQ: every message has one, none above HIGHESTMODSEQ.
    let f = cmd(&mut c, "d", "FETCH 1:* (UID MODSEQ)").await;
    let modseqs: Vec<u64> = f
        .iter()
        .filter_map(|l| l.split("MODSEQ (").nth(1))
        .map(|r| r.split(')').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(modseqs.len(), 2, "{f:?}");
    assert!(modseqs.iter().all(|&m| m >= 1 && m <= hms), "{f:?}");

    // STORE reports the new MODSEQ; CHANGEDSINCE finds only that message.
    let st = cmd(&mut c, "e", "STORE 2 +FLAGS (\\Flagged)").await;
    let m2: u64 = st[0]
        .split("MODSEQ (")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{st:?}"));
    assert!(m2 > hms, "{st:?}");
    let f = cmd(
        &mut c,
        "f",
        &format!("FETCH 1:* (FLAGS) (CHANGEDSINCE {hms})"),
    )
    .await;
    assert_eq!(f.len(), 2, "{f:?}");
    assert!(
        f[0].starts_with("* 2 FETCH (FLAGS (\\Flagged \\Recent) MODSEQ ("),
        "{f:?}"
    );

    // UNCHANGEDSINCE: message 1 is unchanged since hms and is stored;
    // message 2 changed after it and is reported in MODIFIED (FLAGS, as
    // +FLAGS of a flag the change did not touch goes ahead: RFC 7162
    // §3.1.12).
    let st = cmd(
        &mut c,
        "g",
        &format!("STORE 1:2 (UNCHANGEDSINCE {hms}) FLAGS (\\Seen)"),
    )
    .await;
    assert!(
        st[0].starts_with("* 1 FETCH (UID 1 FLAGS (\\Seen \\Recent) MODSEQ ("),
        "{st:?}"
    );
    assert!(
        st.last().unwrap().starts_with("g OK [MODIFIED 2]"),
        "{st:?}"
    );
    let f = cmd(&mut c, "h", "FETCH 2 (FLAGS)").await;
    assert!(!f[0].contains("\\Seen"), "message 2 untouched: {f:?}");
    let st = cmd(
        &mut c,
        "i",
        "UID STORE 1:* (UNCHANGEDSINCE 0) +FLAGS (\\Draft)",
    )
    .await;
    assert!(st.last().unwrap().contains("[MODIFIED "), "{st:?}");

    // SEARCH MODSEQ gives the highest mod-sequence of what it found.
    let r = cmd(&mut c, "j", &format!("SEARCH MODSEQ {m2}")).await;
    assert!(r[0].starts_with("* SEARCH 1 2 (MODSEQ "), "{r:?}");
    let r = cmd(&mut c, "k", "SEARCH MODSEQ \"/flags/\\\\draft\" all 999999").await;
    assert_eq!(r[0], "* SEARCH", "{r:?}");

    // Another session's change arrives with its MODSEQ; STATUS agrees.
    let mut other = logged_in(&s).await;
    cmd(&mut other, "a", "SELECT INBOX").await;
    cmd(&mut other, "b", "STORE 1 +FLAGS (\\Answered)").await;
    let n = cmd(&mut c, "l", "NOOP").await;
    let seen = n
        .iter()
        .find(|l| l.starts_with("* 1 FETCH ("))
        .unwrap_or_else(|| panic!("{n:?}"));
    assert!(
        seen.contains("\\Answered") && seen.contains("MODSEQ ("),
        "{seen}"
    );
    let latest: u64 = seen
        .split("MODSEQ (")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    let st = cmd(&mut c, "m", "STATUS INBOX (HIGHESTMODSEQ MESSAGES)").await;
    assert_eq!(
        st[0],
        format!("* STATUS \"INBOX\" (HIGHESTMODSEQ {latest} MESSAGES 2)")
    );

    // Bad modifiers: BAD, and the session goes on.
    for bad in [
        "FETCH 1 (FLAGS) (CHANGEDSINCE x)",
        "FETCH 1 (FLAGS) (FROB 1)",
        "STORE 1 (UNCHANGEDSINCE) +FLAGS (\\Seen)",
        "SELECT INBOX (FROB)",
    ] {
        let r = cmd(&mut c, "z", bad).await;
        assert!(r.last().unwrap().starts_with("z BAD"), "{bad}: {r:?}");
    }
}

/// QUOTA (RFC 9208): the account's limits and usage under the root "";
/// no limits means no root; SETQUOTA is refused; APPEND past the limit
/// gets [OVERQUOTA].
#[tokio::test]
async fn quota_roots_and_usage() {
    let s = server_with_mail().await;
    let mut c = logged_in(&s).await;
    let caps = cmd(&mut c, "a", "CAPABILITY").await.join("\n");
    assert!(
        caps.contains(" QUOTA ") && caps.contains("QUOTA=RES-STORAGE"),
        "{caps}"
    );
    let r = cmd(&mut c, "b", "GETQUOTAROOT INBOX").await;
    assert_eq!(r[0], "* QUOTAROOT \"INBOX\"", "{r:?}");
    assert!(r[1].starts_with("b OK"));

    let used: u64 = imap_fetch_all(s.addr("imap"), "joe@example.org", "pw")
        .await
        .iter()
        .map(|m| m.len() as u64)
        .sum();
    s.cli_ok(&[
        "account",
        "update",
        "joe@example.org",
        "--quota",
        &(used + 2048).to_string(),
    ]);
    let r = cmd(&mut c, "c", "GETQUOTAROOT INBOX").await;
    assert_eq!(r[0], "* QUOTAROOT \"INBOX\" \"\"", "{r:?}");
    let want = format!(
        "* QUOTA \"\" (STORAGE {} {})",
        used.div_ceil(1024),
        (used + 2048) / 1024
    );
    assert_eq!(r[1], want, "{r:?}");
    let r = cmd(&mut c, "d", "GETQUOTA \"\"").await;
    assert_eq!(r[0], want);
    assert!(cmd(&mut c, "e", "GETQUOTA \"other\"").await[0].starts_with("e NO"));
    assert!(cmd(&mut c, "f", "GETQUOTAROOT Nonexistent").await[0].starts_with("f NO [NONEXISTENT]"));
    let r = cmd(&mut c, "g", "SETQUOTA \"\" (STORAGE 10)").await;
    assert!(r[0].starts_with("g NO [NOPERM]"), "{r:?}");

    // 3 KB more does not fit in the 2 KB left.
    let big = format!("Subject: big\r\n\r\n{}\r\n", "x".repeat(3000));
    c.send(&format!("h APPEND INBOX {{{}+}}\r\n{big}\r\n", big.len()))
        .await;
    let r = c.imap_until("h").await;
    assert!(r.last().unwrap().starts_with("h NO [OVERQUOTA]"), "{r:?}");
}

/// OBJECTID (RFC 8474), STATUS=SIZE (RFC 8438), APPENDLIMIT (RFC 7889)
/// and UNAUTHENTICATE (RFC 8437).
#[tokio::test]
async fn object_ids_size_appendlimit_unauthenticate() {
    let s = server_with_mail().await;
    let mut c = logged_in(&s).await;
    let caps = cmd(&mut c, "a", "CAPABILITY").await.join("\n");
    for want in [
        "OBJECTID",
        "STATUS=SIZE",
        "UNAUTHENTICATE",
        "APPENDLIMIT=52428800",
    ] {
        assert!(caps.contains(want), "{want}: {caps}");
    }
    // A new mailbox's id comes with CREATE and stays the same in SELECT
    // and STATUS; another mailbox has another id.
    let r = cmd(&mut c, "b", "CREATE Projects").await;
    let id = r[0]
        .strip_prefix("b OK [MAILBOXID (")
        .and_then(|r| r.split(')').next())
        .unwrap_or_else(|| panic!("{r:?}"))
        .to_string();
    let sel = cmd(&mut c, "c", "EXAMINE Projects").await;
    assert!(
        sel.contains(&format!("* OK [MAILBOXID ({id})] Ok")),
        "{sel:?}"
    );
    let st = cmd(&mut c, "d", "STATUS Projects (MAILBOXID MESSAGES)").await;
    assert_eq!(
        st[0],
        format!("* STATUS \"Projects\" (MAILBOXID ({id}) MESSAGES 0)")
    );
    let st = cmd(&mut c, "e", "STATUS INBOX (MAILBOXID SIZE APPENDLIMIT)").await;
    assert!(!st[0].contains(&format!("({id})")), "{st:?}");
    let size: u64 = st[0]
        .split("SIZE ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{st:?}"));
    let total: u64 = imap_fetch_all(s.addr("imap"), "joe@example.org", "pw")
        .await
        .iter()
        .map(|m| m.len() as u64)
        .sum();
    assert_eq!(size, total);
    assert!(st[0].contains("APPENDLIMIT 52428800"), "{st:?}");

    // EMAILID and THREADID: a copy keeps its email id (one email, two
    // mailboxes); SEARCH finds by them.
    cmd(&mut c, "f", "SELECT INBOX").await;
    let f = cmd(&mut c, "g", "FETCH 1:2 (EMAILID THREADID)").await;
    let ids: Vec<(String, String)> = f[..2]
        .iter()
        .map(|l| {
            let e = l
                .split("EMAILID (")
                .nth(1)
                .unwrap()
                .split(')')
                .next()
                .unwrap();
            let t = l
                .split("THREADID (")
                .nth(1)
                .unwrap()
                .split(')')
                .next()
                .unwrap();
            (e.to_string(), t.to_string())
        })
        .collect();
    assert_ne!(ids[0].0, ids[1].0);
    let r = cmd(&mut c, "h", &format!("SEARCH EMAILID {}", ids[1].0)).await;
    assert_eq!(r[0], "* SEARCH 2");
    let r = cmd(&mut c, "i", &format!("SEARCH THREADID {}", ids[0].1)).await;
    assert!(r[0].starts_with("* SEARCH 1"), "{r:?}");
    assert_eq!(
        cmd(&mut c, "j", "SEARCH EMAILID Xnope").await[0],
        "* SEARCH"
    );
    cmd(&mut c, "k", "COPY 1 Projects").await;
    cmd(&mut c, "l", "SELECT Projects").await;
    let f = cmd(&mut c, "m", "FETCH 1 (EMAILID)").await;
    assert!(f[0].contains(&format!("EMAILID ({})", ids[0].0)), "{f:?}");

    // UNAUTHENTICATE: back to the greeting state; a new login works.
    assert!(cmd(&mut c, "n", "UNAUTHENTICATE").await[0].starts_with("n OK"));
    assert!(cmd(&mut c, "o", "SELECT INBOX").await[0].starts_with("o BAD"));
    let r = cmd(&mut c, "p", "LOGIN joe@example.org pw").await;
    assert!(r.last().unwrap().starts_with("p OK"), "{r:?}");
}

/// ESEARCH (RFC 4731): SEARCH RETURN (MIN MAX COUNT ALL), by sequence
/// number and UID, with and without matches.
#[tokio::test]
async fn esearch_returns() {
    let s = server_with_mail().await;
    let mut c = logged_in(&s).await;
    cmd(&mut c, "a", "SELECT INBOX").await;
    let r = cmd(&mut c, "b", "SEARCH RETURN (MIN MAX COUNT ALL) ALL").await;
    assert_eq!(r[0], "* ESEARCH (TAG \"b\") MIN 1 MAX 2 COUNT 2 ALL 1:2");
    let r = cmd(&mut c, "c", "UID SEARCH RETURN () SUBJECT second").await;
    assert_eq!(r[0], "* ESEARCH (TAG \"c\") UID ALL 2");
    let r = cmd(
        &mut c,
        "d",
        "SEARCH RETURN (MIN MAX COUNT) SUBJECT nothing-like-this",
    )
    .await;
    assert_eq!(r[0], "* ESEARCH (TAG \"d\") COUNT 0");
    let r = cmd(&mut c, "e", "SEARCH RETURN (COUNT) MODSEQ 1").await;
    // The first CONDSTORE-enabling command reports HIGHESTMODSEQ (RFC
    // 7162 §3.1).
    assert!(r[0].starts_with("* OK [HIGHESTMODSEQ "), "{r:?}");
    assert!(
        r[1].starts_with("* ESEARCH (TAG \"e\") COUNT 2 MODSEQ "),
        "{r:?}"
    );
    // Plain SEARCH is unchanged; a bad option is BAD.
    assert_eq!(cmd(&mut c, "f", "SEARCH ALL").await[0], "* SEARCH 1 2");
    let r = cmd(&mut c, "g", "SEARCH RETURN (FROB) ALL").await;
    assert!(r[0].starts_with("g BAD"), "{r:?}");
}

/// LIST-EXTENDED (RFC 5258) and LIST-STATUS (RFC 5819): selection and
/// return options, several patterns, CHILDINFO, STATUS with each mailbox.
#[tokio::test]
async fn list_extended_and_status() {
    let s = server_with_mail().await;
    let mut c = logged_in(&s).await;
    for m in ["Work", "Work/Reports", "Play"] {
        assert!(cmd(&mut c, "a", &format!("CREATE {m}")).await[0].starts_with("a OK"));
    }
    cmd(&mut c, "b", "UNSUBSCRIBE Work").await;
    cmd(&mut c, "c", "UNSUBSCRIBE Play").await;

    // Several patterns; RETURN (SUBSCRIBED) marks the subscribed ones.
    let r = cmd(&mut c, "d", "LIST \"\" (INBOX Work*) RETURN (SUBSCRIBED)").await;
    let names: Vec<&String> = r.iter().filter(|l| l.starts_with("* LIST")).collect();
    assert_eq!(names.len(), 3, "{r:?}");
    assert!(
        r.iter()
            .any(|l| l.starts_with("* LIST (\\HasNoChildren \\Subscribed) \"/\" \"INBOX\"")),
        "{r:?}"
    );
    assert!(
        r.iter()
            .any(|l| l == "* LIST (\\HasChildren) \"/\" \"Work\""),
        "{r:?}"
    );

    // (SUBSCRIBED RECURSIVEMATCH): Work is not subscribed but its child is.
    let r = cmd(&mut c, "e", "LIST (SUBSCRIBED RECURSIVEMATCH) \"\" \"W%\"").await;
    assert_eq!(
        r[0], "* LIST (\\HasChildren) \"/\" \"Work\" (\"CHILDINFO\" (\"SUBSCRIBED\"))",
        "{r:?}"
    );
    let r = cmd(&mut c, "f", "LIST (SUBSCRIBED) \"\" \"*\"").await;
    assert!(
        !r.iter()
            .any(|l| l.contains("\"Play\"") || l.ends_with("\"Work\"")),
        "{r:?}"
    );
    assert!(r.iter().any(|l| l.contains("\"Work/Reports\"")), "{r:?}");

    // SPECIAL-USE selection: only mailboxes with a role.
    let r = cmd(&mut c, "g", "LIST (SPECIAL-USE) \"\" \"*\"").await;
    assert!(r.iter().any(|l| l.contains("\\Junk")), "{r:?}");
    assert!(
        !r.iter()
            .any(|l| l.contains("\"Play\"") || l.contains("\"INBOX\"")),
        "{r:?}"
    );

    // RETURN (STATUS ...): a STATUS after each LIST line.
    let r = cmd(
        &mut c,
        "h",
        "LIST \"\" INBOX RETURN (STATUS (MESSAGES UNSEEN))",
    )
    .await;
    assert_eq!(r[1], "* STATUS \"INBOX\" (MESSAGES 2 UNSEEN 2)", "{r:?}");

    // Bad options: BAD, and the session goes on.
    for bad in [
        "LIST (RECURSIVEMATCH) \"\" *",
        "LIST (FROB) \"\" *",
        "LIST \"\" * RETURN (FROB)",
        "LIST \"\" * RETURN (STATUS MESSAGES)",
    ] {
        let r = cmd(&mut c, "z", bad).await;
        assert!(r.last().unwrap().starts_with("z BAD"), "{bad}: {r:?}");
    }
    assert!(cmd(&mut c, "y", "NOOP").await[0].starts_with("y OK"));
}

/// SEARCHRES (RFC 5182): SEARCH RETURN (SAVE) keeps the result as `$`
/// for FETCH, STORE, COPY, SEARCH and UID EXPUNGE; MIN/MAX narrow it; a
/// failed search or a new SELECT empties it.
#[tokio::test]
async fn searchres_saved_results() {
    let s = server_with_mail().await;
    let mut c = logged_in(&s).await;
    cmd(&mut c, "a", "SELECT INBOX").await;
    // SAVE alone: no untagged response.
    let r = cmd(&mut c, "b", "SEARCH RETURN (SAVE) SUBJECT second").await;
    assert_eq!(r.len(), 1, "{r:?}");
    assert!(r[0].starts_with("b OK"));
    let f = cmd(&mut c, "c", "FETCH $ (UID)").await;
    assert_eq!(f[0], "* 2 FETCH (UID 2)");
    let r = cmd(&mut c, "d", "SEARCH $").await;
    assert_eq!(r[0], "* SEARCH 2");
    let r = cmd(&mut c, "e", "SEARCH NOT $").await;
    assert_eq!(r[0], "* SEARCH 1");
    let st = cmd(&mut c, "f", "STORE $ +FLAGS (\\Flagged)").await;
    assert!(
        st[0].starts_with("* 2 FETCH (FLAGS (\\Flagged \\Recent)"),
        "{st:?}"
    );
    cmd(&mut c, "g", "CREATE Saved").await;
    let r = cmd(&mut c, "h", "UID COPY $ Saved").await;
    assert!(r[0].starts_with("h OK [COPYUID "), "{r:?}");

    // With MIN, only the first match is kept; other options answer.
    let r = cmd(&mut c, "i", "SEARCH RETURN (SAVE MIN) ALL").await;
    assert_eq!(r[0], "* ESEARCH (TAG \"i\") MIN 1");
    assert_eq!(cmd(&mut c, "j", "SEARCH $").await[0], "* SEARCH 1");

    // A failed SEARCH ... SAVE empties `$`.
    let r = cmd(&mut c, "k", "SEARCH RETURN (SAVE) FROB").await;
    assert!(r[0].starts_with("k BAD"), "{r:?}");
    assert_eq!(cmd(&mut c, "l", "FETCH $ (UID)").await.len(), 1);

    // UID EXPUNGE $ removes just the saved message.
    cmd(&mut c, "m", "SEARCH RETURN (SAVE) SUBJECT first").await;
    cmd(&mut c, "n", "STORE 1:* +FLAGS (\\Deleted)").await;
    let r = cmd(&mut c, "o", "UID EXPUNGE $").await;
    assert_eq!(r[0], "* 1 EXPUNGE", "{r:?}");
    assert_eq!(cmd(&mut c, "p", "SEARCH ALL").await[0], "* SEARCH 1");

    // A new SELECT starts with an empty `$`.
    cmd(&mut c, "q", "SEARCH RETURN (SAVE) ALL").await;
    cmd(&mut c, "r", "SELECT INBOX").await;
    assert_eq!(cmd(&mut c, "s", "SEARCH $").await[0], "* SEARCH");
}

/// BINARY (RFC 3516): parts with their transfer encoding undone, sizes,
/// partials, literal8 for data with NUL, UNKNOWN-CTE, and APPEND of a
/// literal8.
#[tokio::test]
async fn binary_fetch_and_append() {
    let s = TestServer::start_with("[imap]\nauth-without-tls = true\n");
    s.account("joe@example.org");
    use base64::Engine;
    let blob: Vec<u8> = vec![0x00, 0x01, 0xff, b'A', 0x00, b'B'];
    let b64 = base64::engine::general_purpose::STANDARD.encode(&blob);
    let msg = format!(
        "From: a@remote.test\r\nSubject: bin\r\nContent-Type: multipart/mixed; boundary=\"x\"\r\n\r\n--x\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9 =3D ok\r\n--x\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--x\r\nContent-Type: application/x-odd\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 f\r\n--x--\r\n"
    );
    assert!(
        smtp_send(s.addr("smtp"), "a@remote.test", &["joe@example.org"], &msg)
            .await
            .starts_with("250")
    );
    let mut c = logged_in(&s).await;
    let caps = cmd(&mut c, "a", "CAPABILITY").await.join(" ");
    assert!(caps.contains(" BINARY "), "{caps}");
    cmd(&mut c, "b", "SELECT INBOX").await;

    // Quoted-printable undone: "café = ok" (é is 2 bytes).
    let r = cmd(&mut c, "c", "FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[1])").await;
    assert_eq!(r[0], "* 1 FETCH (BINARY[1] {10}");
    assert_eq!(r[1], "café = ok BINARY.SIZE[1] 10)", "{r:?}");
    // Base64 undone; NUL bytes mean a literal8.
    c.send("d FETCH 1 (BINARY.PEEK[2])\r\n").await;
    let head = c.line().await;
    assert_eq!(head, format!("* 1 FETCH (BINARY[2] ~{{{}}}", blob.len()));
    let mut got = vec![0u8; blob.len()];
    use tokio::io::AsyncReadExt;
    c.r.read_exact(&mut got).await.unwrap();
    assert_eq!(got, blob);
    let rest = c.imap_until("d").await;
    assert!(rest.last().unwrap().starts_with("d OK"), "{rest:?}");
    let r = cmd(&mut c, "e", "FETCH 1 (BINARY.SIZE[2] BINARY.PEEK[2]<3.1>)").await;
    assert!(
        r[0].starts_with("* 1 FETCH (BINARY.SIZE[2] 6 BINARY[2]<3> {1}"),
        "{r:?}"
    );
    assert_eq!(r[1], "A)", "{r:?}");
    // An encoding we do not know fails the FETCH; no such part is NIL.
    let r = cmd(&mut c, "f", "FETCH 1 (BINARY.PEEK[3])").await;
    assert!(r.last().unwrap().starts_with("f NO [UNKNOWN-CTE]"), "{r:?}");
    let r = cmd(&mut c, "g", "FETCH 1 (BINARY.PEEK[9])").await;
    assert_eq!(r[0], "* 1 FETCH (BINARY[9] NIL)");
    assert!(cmd(&mut c, "h", "FETCH 1 (BINARY[1.x])").await[0].starts_with("h BAD"));
    // BINARY without PEEK sets \Seen.
    let r = cmd(&mut c, "i", "FETCH 1 (BINARY[1])").await;
    assert!(r.iter().any(|l| l.contains("\\Seen")), "{r:?}");

    // APPEND with a literal8 holding NUL.
    let body = b"Subject: raw\r\nContent-Transfer-Encoding: binary\r\n\r\nnul\x00here\r\n";
    c.send(&format!("j APPEND INBOX ~{{{}}}\r\n", body.len()))
        .await;
    assert!(c.line().await.starts_with('+'));
    c.send_bytes(body).await;
    c.send("\r\n").await;
    let r = c.imap_until("j").await;
    assert!(r.last().unwrap().starts_with("j OK [APPENDUID"), "{r:?}");
    let uid = r
        .last()
        .unwrap()
        .split(' ')
        .nth(4)
        .unwrap()
        .trim_end_matches(']')
        .to_string();
    // Stored with the binary body in base64 (RFC 3516 §6); BINARY gives
    // back the bytes appended.
    c.send(&format!("k UID FETCH {uid} (BINARY.PEEK[1])\r\n"))
        .await;
    let head = c.line().await;
    let content = &body[body.len() - 10..];
    assert_eq!(content, b"nul\x00here\r\n");
    assert!(
        head.ends_with(&format!("BINARY[1] ~{{{}}}", content.len())),
        "{head}"
    );
    let mut got = vec![0u8; content.len()];
    c.r.read_exact(&mut got).await.unwrap();
    assert_eq!(&got[..], content);
    let rest = c.imap_until("k").await;
    assert!(rest.last().unwrap().starts_with("k OK"), "{rest:?}");
}

/// ENABLE IMAP4rev2 (RFC 9051 §6.3.1, Appendix E): SEARCH answers with
/// ESEARCH, SELECT drops RECENT and UNSEEN; a rev1 session on the same
/// server keeps the rev1 forms.
#[tokio::test]
async fn enable_imap4rev2_switches_semantics() {
    let s = server_with_mail().await;
    let mut c = logged_in(&s).await;
    let caps = cmd(&mut c, "a", "CAPABILITY").await.join(" ");
    assert!(caps.contains("IMAP4rev1 IMAP4rev2"), "{caps}");
    assert_eq!(
        cmd(&mut c, "b", "ENABLE IMAP4rev2").await[0],
        "* ENABLED IMAP4rev2"
    );
    let sel = cmd(&mut c, "c", "SELECT INBOX").await;
    assert!(
        !sel.iter()
            .any(|l| l.contains("RECENT") || l.contains("[UNSEEN")),
        "{sel:?}"
    );
    assert!(sel.iter().any(|l| l == "* 2 EXISTS"), "{sel:?}");
    assert_eq!(
        cmd(&mut c, "d", "SEARCH ALL").await[0],
        "* ESEARCH (TAG \"d\") ALL 1:2"
    );
    assert_eq!(
        cmd(&mut c, "e", "UID SEARCH SUBJECT second").await[0],
        "* ESEARCH (TAG \"e\") UID ALL 2"
    );
    assert_eq!(
        cmd(&mut c, "f", "SEARCH SUBJECT nothing-like-this").await[0],
        "* ESEARCH (TAG \"f\")"
    );

    let mut old = logged_in(&s).await;
    let sel = cmd(&mut old, "a", "SELECT INBOX").await;
    // IMAP4rev2 sessions take no \\Recent: both are this one's.
    assert!(sel.iter().any(|l| l == "* 2 RECENT"), "{sel:?}");
    assert_eq!(cmd(&mut old, "b", "SEARCH ALL").await[0], "* SEARCH 1 2");
}

/// QRESYNC (RFC 7162 §3.2): VANISHED instead of EXPUNGE once enabled,
/// SELECT (QRESYNC ...) catching up on flags and expunges, UID FETCH
/// (CHANGEDSINCE n VANISHED).
#[tokio::test]
async fn qresync_resynchronisation() {
    let s = server_with_mail().await;
    assert!(smtp_send(
        s.addr("smtp"),
        "c@remote.test",
        &["joe@example.org"],
        "Subject: third\r\n\r\nthird"
    )
    .await
    .starts_with("250"));
    let mut a = logged_in(&s).await;
    // Not enabled: the QRESYNC forms are BAD.
    let r = cmd(&mut a, "a", "SELECT INBOX (QRESYNC (1 1))").await;
    assert!(r.last().unwrap().starts_with("a BAD"), "{r:?}");
    assert_eq!(
        cmd(&mut a, "b", "ENABLE QRESYNC").await[0],
        "* ENABLED QRESYNC"
    );
    let sel = cmd(&mut a, "c", "SELECT INBOX").await;
    let field = |lines: &[String], name: &str| -> String {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(&format!("* OK [{name} ")))
            .and_then(|l| l.split(']').next())
            .unwrap_or_else(|| panic!("{name} in {lines:?}"))
            .to_string()
    };
    let (v, h) = (field(&sel, "UIDVALIDITY"), field(&sel, "HIGHESTMODSEQ"));

    // Another session flags message 1 and expunges message 2.
    let mut b = logged_in(&s).await;
    cmd(&mut b, "a", "SELECT INBOX").await;
    cmd(&mut b, "b", "STORE 1 +FLAGS (\\Flagged)").await;
    cmd(&mut b, "c", "STORE 2 +FLAGS (\\Deleted)").await;
    cmd(&mut b, "d", "EXPUNGE").await;
    let n = cmd(&mut a, "d", "NOOP").await;
    assert_eq!(n[0], "* VANISHED 2", "{n:?}");
    assert!(
        n[1].starts_with("* 1 FETCH (UID 1 FLAGS (\\Flagged \\Recent) MODSEQ ("),
        "{n:?}"
    );
    assert!(!n.iter().any(|l| l.contains("EXPUNGE")), "{n:?}");

    // A client that was offline catches up in its SELECT.
    let mut c = logged_in(&s).await;
    cmd(&mut c, "a", "ENABLE QRESYNC").await;
    let r = cmd(
        &mut c,
        "b",
        &format!("SELECT INBOX (QRESYNC ({v} {h} 1:3))"),
    )
    .await;
    let i = r
        .iter()
        .position(|l| l == "* VANISHED (EARLIER) 2")
        .unwrap_or_else(|| panic!("{r:?}"));
    assert!(
        r[i + 1].starts_with("* 1 FETCH (UID 1 FLAGS (\\Flagged) MODSEQ ("),
        "{r:?}"
    );
    assert!(
        !r.iter().any(|l| l.contains("UID 3 ")),
        "message 3 did not change: {r:?}"
    );
    // Another UIDVALIDITY: nothing to catch up on.
    let r = cmd(&mut c, "c", &format!("EXAMINE INBOX (QRESYNC (1 {h}))")).await;
    assert!(
        !r.iter()
            .any(|l| l.contains("VANISHED") || l.contains("FETCH")),
        "{r:?}"
    );
    cmd(&mut c, "d", "SELECT INBOX").await;
    let r = cmd(
        &mut c,
        "e",
        &format!("UID FETCH 1:* (FLAGS) (CHANGEDSINCE {h} VANISHED)"),
    )
    .await;
    assert_eq!(r[0], "* VANISHED (EARLIER) 2", "{r:?}");
    assert!(
        r[1].starts_with("* 1 FETCH (UID 1 FLAGS (\\Flagged) MODSEQ ("),
        "{r:?}"
    );
    let r = cmd(&mut c, "f", "UID FETCH 1:* (FLAGS) (VANISHED)").await;
    assert!(r[0].starts_with("f BAD"), "{r:?}");
    let r = cmd(
        &mut c,
        "g",
        &format!("FETCH 1:* (FLAGS) (CHANGEDSINCE {h} VANISHED)"),
    )
    .await;
    assert!(
        r[0].starts_with("g BAD"),
        "VANISHED is for UID FETCH: {r:?}"
    );
    // This session's own EXPUNGE answers with VANISHED too.
    cmd(&mut c, "h", "STORE 2 +FLAGS (\\Deleted)").await;
    let r = cmd(&mut c, "i", "EXPUNGE").await;
    assert_eq!(r[0], "* VANISHED 3", "{r:?}");
}

/// MOVE into the selected mailbox itself gives the message a new UID and
/// expunges the old one: still one message (found by the IMAP stress
/// test, which saw such moves double messages).
#[tokio::test]
async fn move_into_the_same_mailbox_keeps_one_copy() {
    let s = server_with_mail().await;
    let mut c = logged_in(&s).await;
    cmd(&mut c, "a", "SELECT INBOX").await;
    let r = cmd(&mut c, "b", "MOVE 1 INBOX").await;
    assert!(r[0].starts_with("* OK [COPYUID "), "{r:?}");
    assert!(r.iter().any(|l| l == "* 1 EXPUNGE"), "{r:?}");
    assert!(r.last().unwrap().starts_with("b OK"), "{r:?}");
    let f = cmd(&mut c, "c", "UID FETCH 1:* (UID)").await;
    let uids: Vec<&String> = f.iter().filter(|l| l.starts_with("* ")).collect();
    assert_eq!(uids.len(), 2, "{f:?}");
    assert!(
        f.iter().any(|l| l.contains("UID 3)")),
        "the moved message has a new UID: {f:?}"
    );
    assert_eq!(
        imap_fetch_all(s.addr("imap"), "joe@example.org", "pw")
            .await
            .len(),
        2
    );
}

/// WITHIN (RFC 5032) and PREVIEW (RFC 8970).
#[tokio::test]
async fn within_and_preview() {
    let s = server_with_mail().await;
    let mut c = logged_in(&s).await;
    let caps = cmd(&mut c, "a", "CAPABILITY").await.join(" ");
    assert!(
        caps.contains(" WITHIN ") && caps.contains(" PREVIEW "),
        "{caps}"
    );
    // An old message, by its INTERNALDATE.
    let old = "Subject: old\r\n\r\nfrom long ago\r\n";
    c.send(&format!(
        "b APPEND INBOX \"01-Jan-2020 00:00:00 +0000\" {{{}+}}\r\n{old}\r\n",
        old.len()
    ))
    .await;
    assert!(c.imap_until("b").await.last().unwrap().starts_with("b OK"));
    cmd(&mut c, "c", "SELECT INBOX").await;
    assert_eq!(
        cmd(&mut c, "d", "SEARCH YOUNGER 3600").await[0],
        "* SEARCH 1 2"
    );
    assert_eq!(
        cmd(&mut c, "e", "SEARCH OLDER 86400").await[0],
        "* SEARCH 3"
    );
    assert!(cmd(&mut c, "f", "SEARCH OLDER 0").await[0].starts_with("f BAD"));
    assert!(cmd(&mut c, "g", "SEARCH YOUNGER x").await[0].starts_with("g BAD"));

    // PREVIEW: the text of the first text part; (LAZY) is accepted.
    let r = cmd(&mut c, "h", "FETCH 1:2 (PREVIEW)").await;
    assert_eq!(r[0], "* 1 FETCH (PREVIEW \"part one\")", "{r:?}");
    assert_eq!(r[1], "* 2 FETCH (PREVIEW \"second body\")", "{r:?}");
    let r = cmd(&mut c, "i", "FETCH 3 (UID PREVIEW (LAZY))").await;
    assert_eq!(r[0], "* 3 FETCH (UID 3 PREVIEW \"from long ago\")", "{r:?}");
    assert!(cmd(&mut c, "j", "FETCH 1 (PREVIEW (EAGER))").await[0].starts_with("j BAD"));
}

/// SORT (RFC 5256) and SORT=DISPLAY (RFC 5957).
#[tokio::test]
async fn sort_orders() {
    let s = TestServer::start_with("[imap]\nauth-without-tls = true\n");
    s.account("joe@example.org");
    let mut c = logged_in(&s).await;
    // Appended in this order; sizes grow with the filler.
    for (i, (from, subject, date)) in [
        (
            "\"Zed\" <amy@remote.test>",
            "Re: beta",
            "Mon, 02 Jan 2023 10:00:00 +0000",
        ),
        (
            "bob@remote.test",
            "alpha",
            "Sun, 01 Jan 2023 10:00:00 +0000",
        ),
        (
            "\"Adam\" <cyd@remote.test>",
            "Fwd: gamma",
            "Tue, 03 Jan 2023 10:00:00 +0000",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let m = format!(
            "From: {from}\r\nTo: joe@example.org\r\nSubject: {subject}\r\nDate: {date}\r\n\r\n{}\r\n",
            "x".repeat(100 * (i + 1))
        );
        // One internal date for all three: ARRIVAL ties (RFC 5256 §3).
        let tag = format!("a{i}");
        c.send(&format!(
            "{tag} APPEND INBOX \"01-Jan-2024 00:00:00 +0000\" {{{}+}}\r\n{m}\r\n",
            m.len()
        ))
        .await;
        let r = c.imap_until(&tag).await;
        assert!(r.last().unwrap().starts_with(&format!("{tag} OK")), "{r:?}");
    }
    cmd(&mut c, "b", "SELECT INBOX").await;
    let caps = cmd(&mut c, "c", "CAPABILITY").await.join(" ");
    assert!(caps.contains(" SORT SORT=DISPLAY "), "{caps}");
    let sort = |r: Vec<String>| r[0].clone();
    assert_eq!(
        sort(cmd(&mut c, "d", "SORT (SUBJECT) UTF-8 ALL").await),
        "* SORT 2 1 3"
    );
    assert_eq!(
        sort(cmd(&mut c, "e", "SORT (DATE) UTF-8 ALL").await),
        "* SORT 2 1 3"
    );
    assert_eq!(
        sort(cmd(&mut c, "f", "SORT (REVERSE SIZE) UTF-8 ALL").await),
        "* SORT 3 2 1"
    );
    assert_eq!(
        sort(cmd(&mut c, "g", "SORT (FROM) UTF-8 ALL").await),
        "* SORT 1 2 3"
    );
    assert_eq!(
        sort(cmd(&mut c, "h", "SORT (DISPLAYFROM) UTF-8 ALL").await),
        "* SORT 3 2 1"
    );
    assert_eq!(
        sort(cmd(&mut c, "i", "SORT (ARRIVAL) UTF-8 NOT SUBJECT alpha").await),
        "* SORT 1 3"
    );
    // Same arrival second: ties go by sequence number, not reversed.
    assert_eq!(
        sort(cmd(&mut c, "j", "UID SORT (REVERSE ARRIVAL) UTF-8 ALL").await),
        "* SORT 1 2 3"
    );
    assert_eq!(
        sort(cmd(&mut c, "j2", "UID SORT (REVERSE DATE) UTF-8 ALL").await),
        "* SORT 3 1 2"
    );
    assert!(cmd(&mut c, "k", "SORT (FROB) UTF-8 ALL").await[0].starts_with("k BAD"));
    assert!(cmd(&mut c, "l", "SORT (REVERSE) UTF-8 ALL").await[0].starts_with("l BAD"));
    assert!(cmd(&mut c, "m", "SORT (SIZE) KOI8-R ALL").await[0].starts_with("m NO [BADCHARSET"));
    // ESORT (RFC 5267 §3.2): ESEARCH answers; MIN and MAX are the first
    // and last in sort order, ALL keeps the order.
    assert!(caps.contains(" ESORT "), "{caps}");
    assert_eq!(
        sort(
            cmd(
                &mut c,
                "n",
                "SORT RETURN (MIN MAX COUNT ALL) (SUBJECT) UTF-8 ALL"
            )
            .await
        ),
        "* ESEARCH (TAG \"n\") MIN 2 MAX 3 COUNT 3 ALL 2,1,3"
    );
    assert_eq!(
        sort(cmd(&mut c, "o", "UID SORT RETURN () (REVERSE SIZE) UTF-8 ALL").await),
        "* ESEARCH (TAG \"o\") UID ALL 3,2,1"
    );
    assert_eq!(
        sort(cmd(&mut c, "p", "SORT RETURN (ALL) (SIZE) UTF-8 ALL").await),
        "* ESEARCH (TAG \"p\") ALL 1:3"
    );
    assert_eq!(
        sort(
            cmd(
                &mut c,
                "q",
                "SORT RETURN (COUNT MIN) (DATE) UTF-8 SUBJECT nothing"
            )
            .await
        ),
        "* ESEARCH (TAG \"q\") COUNT 0"
    );
    assert!(cmd(&mut c, "r", "SORT RETURN (SAVE) (DATE) UTF-8 ALL").await[0].starts_with("r BAD"));
    assert!(cmd(&mut c, "s", "SORT RETURN (FROB) (DATE) UTF-8 ALL").await[0].starts_with("s BAD"));
}

/// RFC 9051 §6.3.6: RENAME INBOX moves its messages into the new mailbox;
/// INBOX stays, empty, and takes new mail as before.
#[tokio::test]
async fn renaming_inbox_moves_its_messages() {
    let s = server_with_mail().await;
    let mut c = logged_in(&s).await;
    cmd(&mut c, "a", "SELECT INBOX").await;
    let r = cmd(&mut c, "b", "RENAME INBOX \"Old Mail\"").await;
    assert!(r.last().unwrap().starts_with("b OK"), "{r:?}");
    // The selected INBOX learns of the expunges (with the RENAME reply).
    let n = cmd(&mut c, "c", "NOOP").await;
    let expunges = r
        .iter()
        .chain(n.iter())
        .filter(|l| l.ends_with(" EXPUNGE"))
        .count();
    assert_eq!(expunges, 2, "{r:?} {n:?}");
    let st = cmd(&mut c, "d", "STATUS \"Old Mail\" (MESSAGES)").await;
    assert_eq!(st[0], "* STATUS \"Old Mail\" (MESSAGES 2)");
    let st = cmd(&mut c, "e", "STATUS INBOX (MESSAGES)").await;
    assert_eq!(st[0], "* STATUS \"INBOX\" (MESSAGES 0)");
    // An existing name is refused; INBOX still takes mail.
    assert!(cmd(&mut c, "f", "RENAME INBOX Sent").await[0].starts_with("f NO"));
    assert!(smtp_send(
        s.addr("smtp"),
        "x@remote.test",
        &["joe@example.org"],
        "Subject: new\r\n\r\nnew"
    )
    .await
    .starts_with("250"));
    assert_eq!(
        imap_fetch_all(s.addr("imap"), "joe@example.org", "pw")
            .await
            .len(),
        1
    );
}

/// A client side of COMPRESS=DEFLATE for the test: raw DEFLATE with sync
/// flushes (flate2), over the plain socket or TLS.
struct Deflated<S = tokio::net::TcpStream> {
    tcp: S,
    comp: flate2::Compress,
    decomp: flate2::Decompress,
    text: String,
}

impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin> Deflated<S> {
    async fn cmd(&mut self, tag: &str, line: &str) -> Vec<String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let data = format!("{tag} {line}\r\n");
        let mut out = Vec::with_capacity(data.len() + 64);
        self.comp
            .compress_vec(data.as_bytes(), &mut out, flate2::FlushCompress::Sync)
            .unwrap();
        self.tcp.write_all(&out).await.unwrap();
        loop {
            if let Some(end) = self
                .text
                .find(&format!("\r\n{tag} "))
                .map(|i| i + 2)
                .or_else(|| self.text.starts_with(&format!("{tag} ")).then_some(0))
            {
                if let Some(nl) = self.text[end..].find("\r\n") {
                    let all: String = self.text.drain(..end + nl + 2).collect();
                    return all.lines().map(String::from).collect();
                }
            }
            let mut buf = vec![0u8; 65536];
            let n =
                tokio::time::timeout(std::time::Duration::from_secs(10), self.tcp.read(&mut buf))
                    .await
                    .expect("answer in time")
                    .unwrap();
            assert!(n > 0, "closed; got {:?}", self.text);
            let mut plain = Vec::with_capacity(n * 8 + 1024);
            let mut input = &buf[..n];
            while !input.is_empty() {
                plain.reserve(65536);
                let before = self.decomp.total_in();
                self.decomp
                    .decompress_vec(input, &mut plain, flate2::FlushDecompress::Sync)
                    .unwrap();
                input = &input[(self.decomp.total_in() - before) as usize..];
            }
            self.text.push_str(&String::from_utf8_lossy(&plain));
        }
    }
}

/// COMPRESS=DEFLATE (RFC 4978): after the OK, commands and answers are
/// compressed (3#5); a refused COMPRESS leaves the session plain (3#6); a
/// second COMPRESS is NO [COMPRESSIONACTIVE] (3#4); the name in any case
/// (5#1); under TLS the data is compressed, then encrypted (3#7, 3#8).
#[tokio::test]
async fn compress_deflate() {
    let s = server_with_mail().await;
    let mut c = logged_in(&s).await;
    let caps = cmd(&mut c, "a", "CAPABILITY").await.join(" ");
    assert!(caps.contains("COMPRESS=DEFLATE"), "{caps}");
    assert!(cmd(&mut c, "b", "COMPRESS GZIP").await[0].starts_with("b BAD"));
    assert_eq!(
        cmd(&mut c, "c", "compress deflate").await[0],
        "c OK DEFLATE active"
    );
    let tcp = c.r.into_inner().unsplit(c.w);
    let mut z = Deflated {
        tcp,
        comp: flate2::Compress::new(flate2::Compression::default(), false),
        decomp: flate2::Decompress::new(false),
        text: String::new(),
    };
    let r = z.cmd("d", "SELECT INBOX").await;
    assert!(r.iter().any(|l| l == "* 2 EXISTS"), "{r:?}");
    assert!(r.last().unwrap().starts_with("d OK"), "{r:?}");
    let r = z.cmd("e", "FETCH 1 (BODY.PEEK[TEXT])").await;
    assert!(r.iter().any(|l| l.contains("part one")), "{r:?}");
    let r = z.cmd("f", "COMPRESS DEFLATE").await;
    assert!(r[0].starts_with("f NO [COMPRESSIONACTIVE]"), "{r:?}");
    let r = z.cmd("g", "NOOP").await;
    assert!(r.last().unwrap().starts_with("g OK"), "{r:?}");

    // Over implicit TLS: DEFLATE inside the TLS records.
    let mut t = LineClient::connect_tls(&s, s.addr("imaps")).await;
    t.line().await;
    t.send("a LOGIN joe@example.org pw\r\nb COMPRESS DEFLATE\r\n")
        .await;
    let r = t.imap_until("b").await;
    assert_eq!(r.last().unwrap(), "b OK DEFLATE active", "{r:?}");
    let mut z = Deflated {
        tcp: t.r.into_inner().unsplit(t.w),
        comp: flate2::Compress::new(flate2::Compression::default(), false),
        decomp: flate2::Decompress::new(false),
        text: String::new(),
    };
    let r = z.cmd("d", "SELECT INBOX").await;
    assert!(r.iter().any(|l| l == "* 2 EXISTS"), "{r:?}");
}

/// MULTIAPPEND (RFC 3502): several messages in one APPEND, all or none;
/// UTF8=ACCEPT (RFC 6855): ENABLE and the UTF8 (literal8) form, and
/// UTF-8 mailbox names.
#[tokio::test]
async fn multiappend_and_utf8() {
    let s = server_with_mail().await;
    let mut c = logged_in(&s).await;
    let caps = cmd(&mut c, "a", "CAPABILITY").await.join(" ");
    assert!(
        caps.contains(" MULTIAPPEND ") && caps.contains(" UTF8=ACCEPT "),
        "{caps}"
    );
    let (m1, m2) = ("Subject: one\r\n\r\n1\r\n", "Subject: two\r\n\r\n2\r\n");
    c.send(&format!(
        "b APPEND INBOX (\\Seen) {{{}+}}\r\n{m1} \"01-Jan-2024 10:00:00 +0000\" {{{}+}}\r\n{m2}\r\n",
        m1.len(),
        m2.len()
    ))
    .await;
    let r = c.imap_until("b").await;
    assert_eq!(
        r.last().unwrap(),
        &format!("b OK [APPENDUID {} 3:4] APPEND completed", {
            let st = cmd(&mut c, "x", "STATUS INBOX (UIDVALIDITY)").await;
            st[0]
                .split("UIDVALIDITY ")
                .nth(1)
                .unwrap()
                .trim_end_matches(')')
                .to_string()
        }),
        "{r:?}"
    );
    cmd(&mut c, "c", "SELECT INBOX").await;
    let f = cmd(&mut c, "d", "FETCH 3:4 (FLAGS INTERNALDATE)").await;
    assert!(f[0].contains("\\Seen"), "{f:?}");
    assert!(f[1].contains("01-Jan-2024 10:00:00 +0000"), "{f:?}");
    // One bad message: none is stored.
    c.send(&format!(
        "e APPEND INBOX {{{}+}}\r\n{m1} (\\Bogus\\) {{1+}}\r\nx\r\n",
        m1.len()
    ))
    .await;
    let r = c.imap_until("e").await;
    assert!(r.last().unwrap().starts_with("e BAD"), "{r:?}");
    assert_eq!(
        cmd(&mut c, "f", "STATUS INBOX (MESSAGES)").await[0],
        "* STATUS \"INBOX\" (MESSAGES 4)"
    );

    // UTF8=ACCEPT: enabled, the UTF8 form, a UTF-8 mailbox name.
    assert_eq!(
        cmd(&mut c, "g", "ENABLE UTF8=ACCEPT").await[0],
        "* ENABLED UTF8=ACCEPT"
    );
    assert!(cmd(&mut c, "h", "CREATE \"Grüße\"")
        .await
        .last()
        .unwrap()
        .starts_with("h OK"));
    let m = "Subject: =?utf-8?q?gr=C3=BC=C3=9Fe?=\r\n\r\nGrüße\r\n";
    c.send(&format!(
        "i APPEND \"Grüße\" UTF8 (~{{{}+}}\r\n{m})\r\n",
        m.len()
    ))
    .await;
    let r = c.imap_until("i").await;
    assert!(r.last().unwrap().starts_with("i OK [APPENDUID"), "{r:?}");
    // Names with 8-bit characters are sent as literals (valid for rev1
    // and rev2 clients alike).
    let l = cmd(&mut c, "j", "LIST \"\" \"Gr*\"").await;
    assert_eq!(l[0], "* LIST (\\HasNoChildren) \"/\" {7}", "{l:?}");
    assert_eq!(l[1], "Grüße");
    let st = cmd(&mut c, "k", "STATUS \"Grüße\" (MESSAGES)").await;
    assert_eq!(st[1], "Grüße (MESSAGES 1)", "{st:?}");
}

/// THREAD (RFC 5256): REFERENCES and ORDEREDSUBJECT over the wire.
#[tokio::test]
async fn thread_references_and_orderedsubject() {
    let s = TestServer::start_with("[imap]\nauth-without-tls = true\n");
    s.account("joe@example.org");
    let mut c = logged_in(&s).await;
    let msgs = [
        ("<1@t>", "", "A", 1),
        ("<2@t>", "References: <1@t>\r\n", "Re: A", 2),
        ("<3@t>", "In-Reply-To: <1@t>\r\n", "Re: A", 3),
        ("<4@t>", "References: <1@t> <2@t>\r\n", "Re: A", 4),
        ("<5@t>", "", "B", 5),
    ];
    for (i, (id, refs, subject, day)) in msgs.iter().enumerate() {
        let m = format!(
            "Message-ID: {id}\r\n{refs}Subject: {subject}\r\nDate: 0{day} Jan 2024 10:00:00 +0000\r\n\r\nx\r\n"
        );
        append(&mut c, &format!("a{i}"), &m).await;
    }
    cmd(&mut c, "b", "SELECT INBOX").await;
    assert_eq!(
        cmd(&mut c, "c", "THREAD REFERENCES UTF-8 ALL").await[0],
        "* THREAD (1 (2 4)(3))(5)"
    );
    assert_eq!(
        cmd(&mut c, "d", "THREAD ORDEREDSUBJECT UTF-8 ALL").await[0],
        "* THREAD (1 (2)(3)(4))(5)"
    );
    assert_eq!(
        cmd(&mut c, "e", "UID THREAD REFERENCES UTF-8 SUBJECT B").await[0],
        "* THREAD (5)"
    );
    assert_eq!(
        cmd(&mut c, "f", "THREAD REFERENCES UTF-8 SUBJECT nothing").await[0],
        "* THREAD"
    );
    assert!(cmd(&mut c, "g", "THREAD FROB UTF-8 ALL").await[0].starts_with("g BAD"));
}

/// METADATA (RFC 5464): mailbox and server entries, NIL removes, DEPTH,
/// MAXSIZE with LONGENTRIES, limits, and entries leave with their mailbox.
#[tokio::test]
async fn metadata_entries() {
    let s = server_with_mail().await;
    let mut c = logged_in(&s).await;
    assert!(cmd(&mut c, "a", "CAPABILITY")
        .await
        .join(" ")
        .contains(" METADATA "));
    let r = cmd(&mut c, "b", "SETMETADATA INBOX (/private/comment \"My comment\" /shared/vendor/x/a \"1\" /shared/vendor/x/b/c \"22\")").await;
    assert!(r[0].starts_with("b OK"), "{r:?}");
    let r = cmd(&mut c, "c", "GETMETADATA INBOX /private/comment").await;
    assert_eq!(
        r[0],
        "* METADATA \"INBOX\" (/private/comment \"My comment\")"
    );
    let r = cmd(
        &mut c,
        "d",
        "GETMETADATA (DEPTH 1) INBOX (/shared/vendor/x)",
    )
    .await;
    assert_eq!(
        r[0], "* METADATA \"INBOX\" (/shared/vendor/x/a \"1\")",
        "{r:?}"
    );
    let r = cmd(
        &mut c,
        "e",
        "GETMETADATA (DEPTH infinity MAXSIZE 1) INBOX (/shared/vendor/x)",
    )
    .await;
    assert_eq!(
        r[0], "* METADATA \"INBOX\" (/shared/vendor/x/a \"1\")",
        "{r:?}"
    );
    assert_eq!(r[1], "e OK [METADATA LONGENTRIES 2] GETMETADATA completed");
    // Server entries; NIL removes.
    assert!(cmd(
        &mut c,
        "f",
        "SETMETADATA \"\" (/private/vendor/petrel/x \"s\")"
    )
    .await[0]
        .starts_with("f OK"));
    assert_eq!(
        cmd(&mut c, "g", "GETMETADATA \"\" /private/vendor/petrel/x").await[0],
        "* METADATA \"\" (/private/vendor/petrel/x \"s\")"
    );
    cmd(&mut c, "h", "SETMETADATA INBOX (/private/comment NIL)").await;
    assert_eq!(
        cmd(&mut c, "i", "GETMETADATA INBOX /private/comment").await[0],
        "i OK GETMETADATA completed"
    );
    // Errors.
    assert!(cmd(&mut c, "j", "SETMETADATA INBOX (/comment \"x\")").await[0].starts_with("j BAD"));
    assert!(
        cmd(&mut c, "k", "GETMETADATA Nope /private/comment").await[0]
            .starts_with("k NO [NONEXISTENT]")
    );
    let big = "v".repeat(70 * 1024);
    c.send(&format!(
        "l SETMETADATA INBOX (/private/big {{{}+}}\r\n{big})\r\n",
        big.len()
    ))
    .await;
    let r = c.imap_until("l").await;
    assert!(
        r.last().unwrap().starts_with("l NO [METADATA MAXSIZE"),
        "{r:?}"
    );
    let many: Vec<String> = (0..101).map(|i| format!("/private/n{i} \"x\"")).collect();
    let r = cmd(
        &mut c,
        "m",
        &format!("SETMETADATA INBOX ({})", many.join(" ")),
    )
    .await;
    assert!(r[0].starts_with("m NO [METADATA TOOMANY]"), "{r:?}");
    // A deleted mailbox takes its entries along.
    cmd(&mut c, "n", "CREATE Notes").await;
    cmd(
        &mut c,
        "o",
        "SETMETADATA Notes (/private/comment \"gone soon\")",
    )
    .await;
    cmd(&mut c, "p", "DELETE Notes").await;
    cmd(&mut c, "q", "CREATE Notes").await;
    assert_eq!(
        cmd(&mut c, "r", "GETMETADATA Notes /private/comment").await[0],
        "r OK GETMETADATA completed"
    );
}

/// Messages for the full-text tests: RFC 2047 subjects, base64 and
/// quoted-printable bodies, an attachment, a nested message.
fn fts_messages() -> Vec<String> {
    let mut v = vec![
        "From: Alice <alice@remote.test>\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=\r\n\r\nplain body about rockets\r\n".to_string(),
        "From: Bob <bob@remote.test>\r\nSubject: encoded\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\nc2VjcmV0IGhheXN0YWNrIG5lZWRsZQ==\r\n".to_string(),
        "From: Carol <carol@remote.test>\r\nSubject: qp\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nma=C3=B1ana the NEEDLE=\r\nWORK continues\r\n".to_string(),
        "From: Dan <dan@remote.test>\r\nSubject: files\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"rockets.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b--\r\n".to_string(),
        "From: Eve <eve@remote.test>\r\nSubject: fwd\r\nContent-Type: message/rfc822\r\n\r\nFrom: inner@remote.test\r\nSubject: inner haystack\r\n\r\nforwarded needlework\r\n".to_string(),
    ];
    for i in 0..20 {
        v.push(format!(
            "From: list{i}@remote.test\r\nSubject: digest {i}\r\n\r\nitem {} of the digest\r\n",
            i * 7
        ));
    }
    v
}

const FTS_QUERIES: &[&str] = &[
    "SEARCH TEXT needle",
    "SEARCH BODY needlework",
    "SEARCH BODY \"haystack needle\"",
    "SEARCH SUBJECT grüße",
    "SEARCH CHARSET UTF-8 SUBJECT KÖLN",
    "SEARCH TEXT rockets",
    "SEARCH BODY rockets",
    "SEARCH FROM carol",
    "SEARCH HEADER Content-Transfer-Encoding base64",
    "SEARCH OR BODY mañana NOT TEXT digest",
    "SEARCH TEXT \"of the\" NOT BODY \"item 7 \"",
    "SEARCH BODY 14",
    "SEARCH TEXT zzzz",
];

async fn fts_answers(s: &TestServer) -> Vec<String> {
    let mut c = logged_in(s).await;
    cmd(&mut c, "s", "SELECT INBOX").await;
    let mut out = Vec::new();
    for (i, query) in FTS_QUERIES.iter().enumerate() {
        let r = cmd(&mut c, &format!("q{i}"), query).await;
        assert!(r.last().unwrap().contains("OK"), "{query}: {r:?}");
        out.push(r[0].clone());
    }
    out
}

/// The full-text index answers SEARCH exactly as reading every message
/// does (a second server with `search.index = false`), right after
/// delivery (while messages wait for the indexer), once indexed, after
/// SIGKILL, with the index turned off (its directory is removed) and on
/// again (rebuilt from the store).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_text_index_agrees_with_reading() {
    let extra = "[imap]\nauth-without-tls = true\n";
    let indexed = TestServer::start_with(extra);
    let scanned = TestServer::start_with(&format!("{extra}[search]\nindex = false\n"));
    for s in [&indexed, &scanned] {
        s.account("joe@example.org");
        let mut c = logged_in(s).await;
        for (i, m) in fts_messages().iter().enumerate() {
            append(&mut c, &format!("a{i}"), m).await;
        }
    }
    let expected = fts_answers(&scanned).await;
    assert_eq!(expected[0], "* SEARCH 2 3 5");
    // Quoted-printable soft line break: "NEEDLE=\r\nWORK" is "NEEDLEWORK".
    assert_eq!(expected[1], "* SEARCH 3 5");
    assert_eq!(expected[2], "* SEARCH 2");
    assert_eq!(expected[3], "* SEARCH 1");
    assert_eq!(expected[4], "* SEARCH 1");
    assert_eq!(
        expected[5], "* SEARCH 1 4",
        "the attachment's file name is a MIME header"
    );
    assert_eq!(expected[6], "* SEARCH 1");
    // HEADER looks at the message header, not at MIME part headers.
    assert_eq!(expected[8], "* SEARCH 2");
    assert_eq!(expected[12], "* SEARCH");
    // Straight after the APPENDs, and again once the indexer is done.
    assert_eq!(fts_answers(&indexed).await, expected);
    indexed.wait_indexed().await;
    assert!(indexed.dir.path().join("fts/meta.json").exists());
    assert_eq!(fts_answers(&indexed).await, expected);
    // SIGKILL, then off: the index directory goes.
    let dir = indexed.kill_keep_dir();
    std::fs::write(
        dir.path().join("config.toml"),
        test_config(&format!("{extra}[search]\nindex = false\n")),
    )
    .unwrap();
    let off = TestServer::start_in(dir);
    assert!(!off.dir.path().join("fts").exists());
    assert!(off.cli_ok(&["search", "status"]).contains("index: off"));
    assert_eq!(fts_answers(&off).await, expected);
    // On again: rebuilt from the store.
    let dir = off.kill_keep_dir();
    std::fs::write(dir.path().join("config.toml"), test_config(extra)).unwrap();
    let on = TestServer::start_in(dir);
    assert_eq!(fts_answers(&on).await, expected);
    on.wait_indexed().await;
    assert_eq!(fts_answers(&on).await, expected);
}

/// `search.defer-above`, `search.max-defer`: appends faster than the
/// threshold make the indexer wait (it says so, and the backlog stays),
/// SEARCH still answers from the messages themselves, and once the
/// appends stop the backlog is indexed with the same answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexing_waits_for_bulk_arrivals() {
    let s = TestServer::start_logging(
        "[imap]\nauth-without-tls = true\n[search]\ndefer-above = 5\nmax-defer = 60\n",
    );
    s.account("joe@example.org");
    let mut c = logged_in(&s).await;
    let start = std::time::Instant::now();
    let mut n = 0;
    while start.elapsed() < std::time::Duration::from_secs(3) {
        let m = format!("Subject: bulk {n}\r\n\r\nneedle{n}x body\r\n");
        append(&mut c, &format!("a{n}"), &m).await;
        n += 1;
    }
    assert!(n > 30, "only {n} appends in 3 s");
    let log = s.log_until("indexing waits");
    assert!(log.contains("search.defer-above 5"), "{log}");
    let waiting = |out: String| -> usize {
        out.lines()
            .find_map(|l| l.trim().strip_prefix("waiting: "))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("{out}"))
    };
    assert!(waiting(s.cli_ok(&["search", "status"])) > 0);
    cmd(&mut c, "s", "SELECT INBOX").await;
    let last = format!("SEARCH BODY needle{}x", n - 1);
    let want = format!("* SEARCH {n}");
    assert!(cmd(&mut c, "q", &last).await.contains(&want));
    // Quiet again: the backlog is indexed.
    let log = s.log_until("indexing what waited");
    assert!(log.contains("indexing what waited"), "{log}");
    s.wait_indexed().await;
    assert!(cmd(&mut c, "r", &last).await.contains(&want));
}

/// RFC 7888: LITERAL+ by default; `imap.literal-plus = false` offers
/// LITERAL- instead, and a larger non-synchronizing literal is read and
/// its command refused with BAD [TOOBIG] while the session goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn literal_minus_by_configuration() {
    let s = TestServer::start_with("[imap]\nauth-without-tls = true\nliteral-plus = false\n");
    s.account("joe@example.org");
    let mut c = logged_in(&s).await;
    let caps = cmd(&mut c, "a", "CAPABILITY").await.join("\n");
    assert!(
        caps.contains("LITERAL-") && !caps.contains("LITERAL+"),
        "{caps}"
    );
    let big = format!("Subject: big\r\n\r\n{}", "x".repeat(5000));
    c.send(&format!("b APPEND INBOX {{{}+}}\r\n{big}\r\n", big.len()))
        .await;
    let r = c.imap_until("b").await;
    assert!(r.last().unwrap().starts_with("b BAD [TOOBIG]"), "{r:?}");
    assert!(q(&mut c, "c", "NOOP").await.starts_with("c OK"));
    // Small non-synchronizing literals are still fine.
    append(&mut c, "d", "Subject: small\r\n\r\nhi").await;
    let st = q(&mut c, "e", "STATUS INBOX (MESSAGES)").await;
    assert_eq!(st, "* STATUS \"INBOX\" (MESSAGES 1)");
    // And the default is LITERAL+ alone.
    let plain = TestServer::start_with("[imap]\nauth-without-tls = true\n");
    plain.account("joe@example.org");
    let mut c = logged_in(&plain).await;
    let caps = cmd(&mut c, "a", "CAPABILITY").await.join("\n");
    assert!(
        caps.contains("LITERAL+") && !caps.contains("LITERAL-"),
        "{caps}"
    );
}

/// SAVEDATE (RFC 8514): the save date is when the message entered the
/// mailbox (not its internal date), is kept across flag changes, is new
/// for a copy, and the SAVED* search keys use it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn save_dates() {
    let s = TestServer::start_with("[imap]\nauth-without-tls = true\n");
    s.account("joe@example.org");
    let mut c = logged_in(&s).await;
    let caps = cmd(&mut c, "a", "CAPABILITY").await.join(" ");
    assert!(caps.contains(" SAVEDATE"), "{caps}");
    // An old internal date; the save date is today.
    c.send("b APPEND INBOX \"01-Jan-2001 10:00:00 +0000\" {14+}\r\nSubject: old\r\n\r\n\r\n")
        .await;
    assert!(c.imap_until("b").await.last().unwrap().starts_with("b OK"));
    cmd(&mut c, "c", "SELECT INBOX").await;
    let today = {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let r = cmd(&mut c, "d", "FETCH 1 (INTERNALDATE SAVEDATE)").await;
        assert!(
            r[0].contains("INTERNALDATE \"01-Jan-2001 10:00:00 +0000\""),
            "{r:?}"
        );
        let saved = r[0]
            .split("SAVEDATE \"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_string();
        // Same day as now (the test does not straddle midnight by more
        // than a few seconds).
        let day = saved.split(' ').next().unwrap().to_string();
        assert!(secs > 0 && !day.ends_with("2001"), "{saved}");
        day
    };
    let hit = cmd(&mut c, "e", &format!("SEARCH SAVEDON {today}")).await;
    assert_eq!(hit[0], "* SEARCH 1");
    assert_eq!(
        cmd(&mut c, "f", &format!("SEARCH SAVEDBEFORE {today}")).await[0],
        "* SEARCH"
    );
    assert_eq!(
        cmd(&mut c, "g", "SEARCH SAVEDSINCE 1-Jan-2001").await[0],
        "* SEARCH 1"
    );
    assert_eq!(
        cmd(&mut c, "h", "SEARCH SAVEDATESUPPORTED").await[0],
        "* SEARCH 1"
    );
    assert_eq!(
        cmd(&mut c, "i", "SEARCH ON 1-Jan-2001").await[0],
        "* SEARCH 1"
    );
    // A flag change keeps it; a copy gets its own.
    let before = cmd(&mut c, "j", "FETCH 1 SAVEDATE").await[0].clone();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    cmd(&mut c, "k", "STORE 1 +FLAGS (\\Seen)").await;
    let after = cmd(&mut c, "l", "FETCH 1 SAVEDATE").await[0].clone();
    assert_eq!(before, after);
    cmd(&mut c, "m", "COPY 1 Archive").await;
    cmd(&mut c, "n", "SELECT Archive").await;
    let copied = cmd(&mut c, "o", "FETCH 1 SAVEDATE").await[0].clone();
    assert!(copied.contains("SAVEDATE \""), "{copied}");
    assert_ne!(copied, before, "a copy is saved later");
    assert!(cmd(&mut c, "p", "SEARCH SAVEDON yesterday").await[0].starts_with("p BAD"));
}

/// Mailbox names: modified UTF-7 (RFC 3501 §5.1.3) for IMAP4rev1
/// sessions, UTF-8 once UTF8=ACCEPT (RFC 6855) or IMAP4rev2 is enabled;
/// both name the same mailbox, and a name that is not valid modified
/// UTF-7 gets BAD while the session goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailbox_names_in_modified_utf7() {
    let s = TestServer::start_with("[imap]\nauth-without-tls = true\n");
    s.account("joe@example.org");
    let mut old = logged_in(&s).await;
    assert!(q(&mut old, "a", "CREATE \"Entw&APw-rfe/&U,BTFw-\"")
        .await
        .starts_with("a OK"));
    assert!(q(&mut old, "b", "CREATE \"Tom &- Jerry\"")
        .await
        .starts_with("b OK"));
    let l = cmd(&mut old, "c", "LIST \"\" \"Entw&APw-rfe*\"").await;
    assert!(
        l.contains(&"* LIST (\\HasChildren) \"/\" \"Entw&APw-rfe\"".to_string()),
        "{l:?}"
    );
    assert!(
        l.contains(&"* LIST (\\HasNoChildren) \"/\" \"Entw&APw-rfe/&U,BTFw-\"".to_string()),
        "{l:?}"
    );
    let st = q(&mut old, "d", "STATUS \"Tom &- Jerry\" (MESSAGES)").await;
    assert_eq!(st, "* STATUS \"Tom &- Jerry\" (MESSAGES 0)");
    assert!(q(&mut old, "e", "SELECT \"Entw&APw-rfe\"")
        .await
        .starts_with("* "));
    assert!(q(&mut old, "f", "CREATE \"&Jjo\"")
        .await
        .starts_with("f BAD"));
    assert!(q(&mut old, "g", "CREATE \"&AGE-\"")
        .await
        .starts_with("g BAD"));
    assert!(q(&mut old, "h", "NOOP").await.starts_with("h OK"));
    // The same mailboxes in UTF-8.
    let mut new = logged_in(&s).await;
    assert_eq!(
        q(&mut new, "a", "ENABLE UTF8=ACCEPT").await,
        "* ENABLED UTF8=ACCEPT"
    );
    let l = cmd(&mut new, "b", "LIST \"\" *").await.join("\n");
    assert!(
        l.contains("\"Entwürfe/台北\"") || l.contains("Entwürfe/台北"),
        "{l}"
    );
    assert!(l.contains("\"Tom & Jerry\""), "{l}");
    assert!(!l.contains("&APw-"), "{l}");
    // "&" is an ordinary character in UTF-8 names.
    assert!(q(&mut new, "c", "CREATE \"R&D\"").await.starts_with("c OK"));
    let l = cmd(&mut old, "i", "LIST \"\" R*").await;
    assert_eq!(l[0], "* LIST (\\HasNoChildren) \"/\" \"R&-D\"");
}

/// ACL (RFC 4314) with mailboxes shared between accounts: the owner
/// grants rights, the grantee finds the mailbox under "Shared/<owner>/"
/// and may do exactly what the rights allow; others see nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_shared_mailboxes() {
    let s = TestServer::start_with("[imap]\nauth-without-tls = true\n");
    for a in ["joe@example.org", "ann@example.org", "carl@example.org"] {
        s.account(a);
    }
    let shared = "\"Shared/joe@example.org/Projects\"";
    let mut joe = login_as(&s, "joe@example.org").await;
    let caps = cmd(&mut joe, "a", "CAPABILITY").await.join(" ");
    assert!(
        caps.contains(" ACL ") && caps.contains(" RIGHTS=texk "),
        "{caps}"
    );
    assert!(q(&mut joe, "b", "CREATE Projects")
        .await
        .starts_with("b OK"));
    append_to(&mut joe, "c", "Projects", "Subject: plan\r\n\r\nthe plan").await;
    assert!(q(&mut joe, "d", "SETACL Projects ann@example.org lr")
        .await
        .starts_with("d OK"));
    assert_eq!(
        q(&mut joe, "e", "GETACL Projects").await,
        "* ACL \"Projects\" \"joe@example.org\" lrswipkxteacd \"ann@example.org\" \"lr\""
    );
    assert_eq!(
        q(&mut joe, "f", "MYRIGHTS Projects").await,
        "* MYRIGHTS \"Projects\" \"lrswipkxteacd\""
    );
    assert_eq!(
        q(&mut joe, "g", "LISTRIGHTS Projects ann@example.org").await,
        "* LISTRIGHTS \"Projects\" \"ann@example.org\" \"\" l r s w i p k x t e a c d"
    );
    // Bad requests.
    assert!(q(&mut joe, "h", "SETACL Projects ann@example.org lrz")
        .await
        .starts_with("h BAD"));
    assert!(q(&mut joe, "i", "SETACL Projects joe@example.org l")
        .await
        .starts_with("i NO"));
    assert!(q(&mut joe, "j", "SETACL Projects nobody@example.org l")
        .await
        .starts_with("j NO"));
    assert!(q(&mut joe, "k", "SETACL Projects -ann@example.org l")
        .await
        .starts_with("k NO [CANNOT]"));
    assert!(q(&mut joe, "l", "GETACL Nope")
        .await
        .starts_with("l NO [NONEXISTENT]"));

    // Ann reads, and only reads.
    let mut ann = login_as(&s, "ann@example.org").await;
    assert_eq!(
        q(&mut ann, "a", "NAMESPACE").await,
        "* NAMESPACE ((\"\" \"/\")) ((\"Shared/\" \"/\")) NIL"
    );
    let l = cmd(&mut ann, "b", "LIST \"\" \"Shared*\"").await;
    assert_eq!(
        l[..3],
        [
            "* LIST (\\Noselect \\HasChildren) \"/\" \"Shared\"".to_string(),
            "* LIST (\\Noselect \\HasChildren) \"/\" \"Shared/joe@example.org\"".to_string(),
            format!("* LIST (\\HasNoChildren) \"/\" {shared}"),
        ],
        "{l:?}"
    );
    let st = q(&mut ann, "c", &format!("STATUS {shared} (MESSAGES)")).await;
    assert_eq!(st, format!("* STATUS {shared} (MESSAGES 1)"));
    assert_eq!(
        q(&mut ann, "d", &format!("MYRIGHTS {shared}")).await,
        format!("* MYRIGHTS {shared} \"lr\"")
    );
    let r = cmd(&mut ann, "e", &format!("SELECT {shared}")).await;
    assert!(r.last().unwrap().starts_with("e OK [READ-ONLY]"), "{r:?}");
    let r = cmd(&mut ann, "f", "FETCH 1 (BODY[TEXT])").await.join("\n");
    assert!(r.contains("the plan"), "{r}");
    // Without `s`, reading does not mark it seen.
    let r = cmd(&mut ann, "g", "FETCH 1 FLAGS").await;
    assert!(!r[0].contains("\\Seen"), "{r:?}");
    assert!(q(&mut ann, "h", "STORE 1 +FLAGS (\\Flagged)")
        .await
        .starts_with("h NO"));
    let r = cmd(&mut ann, "i", &format!("APPEND {shared} {{5+}}\r\nhello")).await;
    assert!(r.last().unwrap().starts_with("i NO [NOPERM]"), "{r:?}");
    assert!(q(&mut ann, "j", &format!("GETACL {shared}"))
        .await
        .starts_with("j NO [NOPERM]"));
    assert!(q(&mut ann, "k", &format!("DELETE {shared}"))
        .await
        .starts_with("k NO [NOPERM]"));
    assert!(q(&mut ann, "l", "CREATE \"Shared/x\"")
        .await
        .starts_with("l NO [NOPERM]"));
    // A copy into her own Inbox is hers.
    let r = cmd(&mut ann, "m", "COPY 1 INBOX").await;
    assert!(r.last().unwrap().starts_with("m OK [COPYUID"), "{r:?}");
    assert_eq!(
        q(&mut ann, "n", "STATUS INBOX (MESSAGES)").await,
        "* STATUS \"INBOX\" (MESSAGES 1)"
    );

    // Carl sees nothing.
    let mut carl = login_as(&s, "carl@example.org").await;
    let l = cmd(&mut carl, "a", "LIST \"\" *").await.join("\n");
    assert!(!l.contains("Shared"), "{l}");
    assert!(q(&mut carl, "b", &format!("SELECT {shared}"))
        .await
        .starts_with("b NO [NONEXISTENT]"));

    // More rights: Ann writes flags and adds messages (to Joe's quota),
    // but may not delete without `t`.
    assert!(q(&mut joe, "m", "SETACL Projects ann@example.org +iws")
        .await
        .starts_with("m OK"));
    let r = cmd(&mut ann, "o", &format!("SELECT {shared}")).await;
    assert!(r.last().unwrap().starts_with("o OK [READ-WRITE]"), "{r:?}");
    assert!(
        r.iter()
            .any(|l| l.contains("PERMANENTFLAGS (\\Answered \\Flagged \\Seen \\Draft \\*)")),
        "{r:?}"
    );
    let r = cmd(&mut ann, "p", "STORE 1 +FLAGS (\\Flagged)").await;
    assert!(r.last().unwrap().starts_with("p OK"), "{r:?}");
    assert!(q(&mut ann, "q", "STORE 1 +FLAGS (\\Deleted)")
        .await
        .starts_with("q NO [NOPERM]"));
    assert!(q(&mut ann, "r", "EXPUNGE")
        .await
        .starts_with("r NO [NOPERM]"));
    // IDLE in the shared mailbox hears the owner's delivery.
    ann.send("s IDLE\r\n").await;
    assert!(ann.line().await.starts_with('+'));
    append_to(&mut joe, "n", "Projects", "Subject: second\r\n\r\nmore").await;
    let l = tokio::time::timeout(std::time::Duration::from_secs(5), ann.line())
        .await
        .unwrap();
    assert_eq!(l, "* 2 EXISTS");
    ann.send("DONE\r\n").await;
    ann.imap_until("s").await;
    append_to(
        &mut ann,
        "t",
        "Shared/joe@example.org/Projects",
        "Subject: from ann\r\n\r\nhi",
    )
    .await;
    assert_eq!(
        q(&mut joe, "o", "STATUS Projects (MESSAGES)").await,
        "* STATUS \"Projects\" (MESSAGES 3)"
    );
    let r = cmd(&mut joe, "p", "SELECT Projects").await;
    assert!(r.last().unwrap().starts_with("p OK"));
    let r = cmd(&mut joe, "q", "FETCH 1 FLAGS").await;
    assert!(r[0].contains("\\Flagged"), "{r:?}");
    // A subscription to a shared mailbox is Ann's own.
    assert!(q(&mut ann, "u", &format!("SUBSCRIBE {shared}"))
        .await
        .starts_with("u OK"));
    let l = cmd(&mut ann, "v", "LSUB \"\" *").await.join("\n");
    assert!(l.contains(&format!("\"/\" {shared}")), "{l}");
    let l = cmd(&mut joe, "r", "LSUB \"\" *").await.join("\n");
    assert!(!l.contains("Shared"), "{l}");

    // "anyone" reaches Carl; taking Ann's grant away hides it from her.
    assert!(q(&mut joe, "s", "SETACL Projects anyone lr")
        .await
        .starts_with("s OK"));
    assert!(q(&mut carl, "c", &format!("EXAMINE {shared}"))
        .await
        .starts_with("* "));
    assert!(q(&mut joe, "t", "DELETEACL Projects ann@example.org")
        .await
        .starts_with("t OK"));
    // Ann still has the mailbox selected: her narrower rights are
    // announced before the answer (RFC 4314 §4).
    let r = cmd(&mut ann, "w", &format!("MYRIGHTS {shared}")).await;
    assert_eq!(r[0], "* OK [PERMANENTFLAGS ()] Read-only mailbox", "{r:?}");
    assert_eq!(r[1], format!("* MYRIGHTS {shared} \"lr\""));
    // (Losing `r` with the mailbox selected ends the session: see
    // tests/security.rs.)
    assert!(q(&mut ann, "y", "UNSELECT").await.starts_with("y OK"));
    assert!(q(&mut joe, "u", "DELETEACL Projects anyone")
        .await
        .starts_with("u OK"));
    assert!(q(&mut ann, "x", &format!("STATUS {shared} (MESSAGES)"))
        .await
        .starts_with("x NO [NONEXISTENT]"));
    assert_eq!(
        q(&mut joe, "v", "GETACL Projects").await,
        "* ACL \"Projects\" \"joe@example.org\" lrswipkxteacd"
    );
}

/// RFC 4314 §4: CREATE needs `k` on the nearest existing parent and the
/// new mailbox inherits the parent's access list; DELETE needs `x`;
/// RENAME needs `x` on the mailbox and `k` on the new parent.
#[tokio::test]
async fn acl_create_delete_rename_in_shared() {
    let s = TestServer::start_with("[imap]\nauth-without-tls = true\n");
    for a in ["joe@example.org", "ann@example.org", "carl@example.org"] {
        s.account(a);
    }
    let base = "Shared/joe@example.org";
    let mut joe = login_as(&s, "joe@example.org").await;
    let mut ann = login_as(&s, "ann@example.org").await;
    for (t, c) in [
        ("a", "CREATE Team"),
        ("b", "CREATE Other"),
        ("c", "SETACL Team ann@example.org lr"),
        ("d", "SETACL Team carl@example.org lr"),
        ("e", "SETACL Other ann@example.org lrx"),
    ] {
        let r = q(&mut joe, t, c).await;
        assert!(r.starts_with(&format!("{t} OK")), "{c}: {r}");
    }
    // Without `k`, no children; no mailboxes at Joe's top level ever.
    assert!(q(&mut ann, "a", &format!("CREATE \"{base}/Team/Plans\""))
        .await
        .starts_with("a NO [NOPERM]"));
    assert!(q(&mut ann, "b", &format!("CREATE \"{base}/Mine\""))
        .await
        .starts_with("b NO [NOPERM]"));
    assert!(q(&mut joe, "f", "SETACL Team ann@example.org lrk")
        .await
        .starts_with("f OK"));
    // With `k` on Team: a child two levels down; both new levels are
    // Joe's and take Team's access list.
    let r = q(&mut ann, "c", &format!("CREATE \"{base}/Team/2027/Plans\"")).await;
    assert!(r.starts_with("c OK"), "{r}");
    assert!(
        q(&mut ann, "d", &format!("CREATE \"{base}/Team/2027/Plans\""))
            .await
            .starts_with("d NO [ALREADYEXISTS]")
    );
    assert!(q(
        &mut ann,
        "e",
        &format!("CREATE \"{base}/Team/x\" (USE (\\Drafts))")
    )
    .await
    .starts_with("e NO [NOPERM]"));
    let l = cmd(&mut joe, "g", "LIST \"\" \"Team*\"").await.join("\n");
    assert!(
        l.contains("\"Team/2027\"") && l.contains("\"Team/2027/Plans\""),
        "{l}"
    );
    assert_eq!(
        q(&mut joe, "h", "GETACL Team/2027/Plans").await,
        "* ACL \"Team/2027/Plans\" \"joe@example.org\" lrswipkxteacd \"ann@example.org\" \"lrkc\" \"carl@example.org\" \"lr\""
    );
    // Carl, who holds a grant on Team, sees the new mailboxes too.
    let mut carl = login_as(&s, "carl@example.org").await;
    let l = cmd(&mut carl, "a", "LIST \"\" \"Shared/*\"")
        .await
        .join("\n");
    assert!(l.contains(&format!("\"{base}/Team/2027/Plans\"")), "{l}");
    // Joe's own CREATE below a shared mailbox inherits as well.
    assert!(q(&mut joe, "i", "CREATE Team/Notes")
        .await
        .starts_with("i OK"));
    let r = q(&mut ann, "f", &format!("MYRIGHTS \"{base}/Team/Notes\"")).await;
    assert_eq!(r, format!("* MYRIGHTS \"{base}/Team/Notes\" \"lrkc\""));

    // DELETE needs `x`: Ann has it on Other, not on Team/Notes.
    assert!(q(&mut ann, "g", &format!("DELETE \"{base}/Team/Notes\""))
        .await
        .starts_with("g NO [NOPERM]"));
    append_to(&mut joe, "j", "Other", "Subject: old\r\n\r\nold").await;
    let r = q(&mut ann, "h", &format!("DELETE \"{base}/Other\"")).await;
    assert!(r.starts_with("h OK"), "{r}");
    assert!(q(&mut joe, "k", "STATUS Other (MESSAGES)")
        .await
        .starts_with("k NO [NONEXISTENT]"));
    assert!(q(&mut ann, "i", &format!("DELETE \"{base}/Other\""))
        .await
        .starts_with("i NO [NONEXISTENT]"));
    // The grants went with it: Joe's new mailbox of that name is not shared.
    assert!(q(&mut joe, "l", "CREATE Other").await.starts_with("l OK"));
    assert!(q(
        &mut ann,
        "j",
        &format!("STATUS \"{base}/Other\" (MESSAGES)")
    )
    .await
    .starts_with("j NO [NONEXISTENT]"));

    // RENAME: `x` on the mailbox and `k` on the new parent.
    let from = format!("\"{base}/Team/2027/Plans\"");
    assert!(q(
        &mut ann,
        "k",
        &format!("RENAME {from} \"{base}/Team/Ideas\"")
    )
    .await
    .starts_with("k NO [NOPERM]"));
    assert!(
        q(&mut joe, "m", "SETACL Team/2027/Plans ann@example.org +x")
            .await
            .starts_with("m OK")
    );
    // Out of Joe's account, or to his top level: refused.
    assert!(q(&mut ann, "l", &format!("RENAME {from} Mine"))
        .await
        .starts_with("l NO [CANNOT]"));
    assert!(q(&mut ann, "m", &format!("RENAME {from} \"{base}/Ideas\""))
        .await
        .starts_with("m NO [NOPERM]"));
    let r = q(
        &mut ann,
        "n",
        &format!("RENAME {from} \"{base}/Team/Ideas\""),
    )
    .await;
    assert!(r.starts_with("n OK"), "{r}");
    let l = cmd(&mut joe, "n", "LIST \"\" \"Team*\"").await.join("\n");
    assert!(
        l.contains("\"Team/Ideas\"") && !l.contains("Team/2027/Plans"),
        "{l}"
    );
    // The renamed mailbox kept its own list (§4: RENAME SHOULD NOT change it).
    assert_eq!(
        q(&mut ann, "o", &format!("MYRIGHTS \"{base}/Team/Ideas\"")).await,
        format!("* MYRIGHTS \"{base}/Team/Ideas\" \"lrkxc\"")
    );
    // Joe's INBOX is never removed by anyone else.
    assert!(q(&mut joe, "o", "SETACL INBOX ann@example.org lrx")
        .await
        .starts_with("o OK"));
    assert!(q(&mut ann, "p", &format!("DELETE \"{base}/INBOX\""))
        .await
        .starts_with("p NO"));
    assert!(q(&mut joe, "p", "STATUS INBOX (MESSAGES)")
        .await
        .starts_with("* STATUS"));
}

/// RFC 9208 with RFC 4314: a shared mailbox is in its owner's quota root,
/// `Shared/<owner>`, which users who see the owner's mailboxes can read.
#[tokio::test]
async fn quota_of_shared_mailboxes() {
    let s = TestServer::start_with("[imap]\nauth-without-tls = true\n");
    for a in ["joe@example.org", "ann@example.org", "carl@example.org"] {
        s.account(a);
    }
    s.cli_ok(&["account", "update", "joe@example.org", "--quota", "8192"]);
    let mut joe = login_as(&s, "joe@example.org").await;
    assert!(q(&mut joe, "a", "CREATE Projects")
        .await
        .starts_with("a OK"));
    let m = format!("Subject: plan\r\n\r\n{}", "p".repeat(1500));
    append_to(&mut joe, "b", "Projects", &m).await;
    assert!(q(&mut joe, "c", "SETACL Projects ann@example.org lri")
        .await
        .starts_with("c OK"));
    // Joe's own view of his root: "" with the same figures.
    let own = q(&mut joe, "d", "GETQUOTA \"\"").await;
    assert!(own.starts_with("* QUOTA \"\" (STORAGE 2 8)"), "{own}");

    let mut ann = login_as(&s, "ann@example.org").await;
    let name = "\"Shared/joe@example.org/Projects\"";
    let root = "\"Shared/joe@example.org\"";
    let r = cmd(&mut ann, "a", &format!("GETQUOTAROOT {name}")).await;
    assert_eq!(r[0], format!("* QUOTAROOT {name} {root}"), "{r:?}");
    let want = own.replace("\"\"", root);
    assert_eq!(r[1], want, "{r:?}");
    assert_eq!(q(&mut ann, "b", &format!("GETQUOTA {root}")).await, want);
    // Her own root is untouched by what she can see of Joe's.
    let r = cmd(&mut ann, "c", "GETQUOTAROOT INBOX").await;
    assert_eq!(r[0], "* QUOTAROOT \"INBOX\"", "{r:?}");
    // An APPEND there is measured against Joe's quota.
    let big = format!("Subject: big\r\n\r\n{}", "x".repeat(7000));
    ann.send(&format!("d APPEND {name} {{{}+}}\r\n{big}\r\n", big.len()))
        .await;
    let r = ann.imap_until("d").await;
    assert!(r.last().unwrap().starts_with("d NO [OVERQUOTA]"), "{r:?}");

    // Carl sees none of Joe's mailboxes, so neither the root.
    let mut carl = login_as(&s, "carl@example.org").await;
    assert!(q(&mut carl, "a", &format!("GETQUOTA {root}"))
        .await
        .starts_with("a NO [NONEXISTENT]"));
    assert!(q(&mut carl, "b", &format!("GETQUOTAROOT {name}"))
        .await
        .starts_with("b NO [NONEXISTENT]"));
    assert!(q(&mut ann, "e", "GETQUOTA \"Shared/ann@example.org\"")
        .await
        .starts_with("e NO [NONEXISTENT]"));
}

/// RFC 5464 §3.3 with RFC 4314: on a shared mailbox /shared entries are
/// common to everyone with access, /private ones each user's own; access
/// needs `l` and one of `r s w i p`; they go with the mailbox.
#[tokio::test]
async fn metadata_on_shared_mailboxes() {
    let s = TestServer::start_with("[imap]\nauth-without-tls = true\n");
    for a in ["joe@example.org", "ann@example.org", "carl@example.org"] {
        s.account(a);
    }
    let name = "\"Shared/joe@example.org/Projects\"";
    let mut joe = login_as(&s, "joe@example.org").await;
    for (t, c) in [
        ("a", "CREATE Projects"),
        ("b", "SETACL Projects ann@example.org lr"),
        ("c", "SETACL Projects carl@example.org l"),
        (
            "d",
            "SETMETADATA Projects (/shared/comment \"team plans\" /private/comment \"joe's\")",
        ),
    ] {
        let r = q(&mut joe, t, c).await;
        assert!(r.starts_with(&format!("{t} OK")), "{c}: {r}");
    }
    let mut ann = login_as(&s, "ann@example.org").await;
    let get = |tag: &str| format!("{tag} GETMETADATA {name} (/shared/comment /private/comment)");
    ann.send(&format!("{}\r\n", get("a"))).await;
    let r = ann.imap_until("a").await;
    assert_eq!(
        r[0],
        format!("* METADATA {name} (/shared/comment \"team plans\")"),
        "{r:?}"
    );
    // Her private comment is hers; a shared one she changes is everyone's.
    let r = q(
        &mut ann,
        "b",
        &format!("SETMETADATA {name} (/private/comment \"ann's\" /shared/comment \"new plans\")"),
    )
    .await;
    assert!(r.starts_with("b OK"), "{r}");
    ann.send(&format!("{}\r\n", get("c"))).await;
    let r = ann.imap_until("c").await;
    assert_eq!(
        r[0],
        format!("* METADATA {name} (/private/comment \"ann's\" /shared/comment \"new plans\")"),
        "{r:?}"
    );
    let r = cmd(
        &mut joe,
        "e",
        "GETMETADATA Projects (/shared/comment /private/comment)",
    )
    .await;
    assert_eq!(
        r[0], "* METADATA \"Projects\" (/private/comment \"joe's\" /shared/comment \"new plans\")",
        "{r:?}"
    );
    // Carl has `l` alone: no annotations for him.
    let mut carl = login_as(&s, "carl@example.org").await;
    carl.send(&format!("{}\r\n", get("a"))).await;
    let r = carl.imap_until("a").await;
    assert!(r[0].starts_with("a NO [NOPERM]"), "{r:?}");
    // Deleted with the mailbox: a new Projects, shared again, has none.
    assert!(q(&mut joe, "f", "DELETE Projects")
        .await
        .starts_with("f OK"));
    assert!(q(&mut joe, "g", "CREATE Projects")
        .await
        .starts_with("g OK"));
    assert!(q(&mut joe, "h", "SETACL Projects ann@example.org lr")
        .await
        .starts_with("h OK"));
    ann.send(&format!("{}\r\n", get("d"))).await;
    let r = ann.imap_until("d").await;
    assert_eq!(r.len(), 1, "{r:?}");
    assert!(r[0].starts_with("d OK"), "{r:?}");
}

/// APPENDs `m` to `mailbox` with LITERAL+ and checks the OK.
async fn append_to(c: &mut LineClient, tag: &str, mailbox: &str, m: &str) {
    c.send(&format!(
        "{tag} APPEND \"{mailbox}\" {{{}+}}\r\n{m}\r\n",
        m.len()
    ))
    .await;
    let r = c.imap_until(tag).await;
    assert!(r.last().unwrap().starts_with(&format!("{tag} OK")), "{r:?}");
}

/// NOTIFY (RFC 5465): events for the selected mailbox (EXISTS and the
/// asked FETCH), STATUS for other mailboxes, LIST for created, renamed
/// and deleted mailboxes and subscriptions, between commands and during
/// IDLE; the rules on event combinations; NOTIFY NONE stops it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_events() {
    let s = TestServer::start_with("[imap]\nauth-without-tls = true\n");
    s.account("joe@example.org");
    let mut a = logged_in(&s).await;
    let mut b = logged_in(&s).await;
    let caps = cmd(&mut a, "a", "CAPABILITY").await.join(" ");
    assert!(caps.contains(" NOTIFY "), "{caps}");
    // The rules.
    assert!(q(&mut a, "b", "NOTIFY SET (personal (MessageNew))")
        .await
        .starts_with("b BAD"));
    assert!(q(&mut a, "c", "NOTIFY SET (selected (MailboxName))")
        .await
        .starts_with("c BAD"));
    assert_eq!(
        q(&mut a, "d", "NOTIFY SET (personal (AnnotationChange))").await,
        "d NO [BADEVENT (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange MailboxMetadataChange ServerMetadataChange)] Unsupported event"
    );
    cmd(&mut a, "e", "SELECT INBOX").await;
    let r = cmd(
        &mut a,
        "f",
        "NOTIFY SET STATUS (selected (MessageNew (UID BODY.PEEK[HEADER.FIELDS (Subject)]) MessageExpunge)) (personal (MessageNew MessageExpunge MailboxName SubscriptionChange))",
    )
    .await;
    assert!(r.last().unwrap().starts_with("f OK"), "{r:?}");
    // STATUS for every personal mailbox but the selected one.
    assert!(
        r.iter()
            .any(|l| l.starts_with("* STATUS \"Archive\" (MESSAGES 0 UIDNEXT 1 UIDVALIDITY ")),
        "{r:?}"
    );
    assert_eq!(
        r.iter().filter(|l| l.starts_with("* STATUS")).count(),
        5,
        "{r:?}"
    );
    assert!(
        !r.iter().any(|l| l.starts_with("* STATUS \"INBOX\"")),
        "{r:?}"
    );

    // A delivery to the selected Inbox: EXISTS, then the asked FETCH.
    assert!(smtp_send(
        s.addr("smtp"),
        "x@remote.test",
        &["joe@example.org"],
        "Subject: ping\r\n\r\nbody"
    )
    .await
    .starts_with("250"));
    let got = lines_until(&mut a, |l| l == ")").await.join("\n");
    assert!(
        got.starts_with("* 1 EXISTS\n* 1 RECENT\n* 1 FETCH (UID 1 BODY[HEADER.FIELDS (SUBJECT)] {"),
        "{got}"
    );
    assert!(got.contains("Subject: ping"), "{got}");

    // Another mailbox: a STATUS.
    append_to(&mut b, "a", "Archive", "Subject: filed\r\n\r\nx").await;
    let got = lines_until(&mut a, |l| l.starts_with("* STATUS")).await;
    assert!(
        got.last()
            .unwrap()
            .starts_with("* STATUS \"Archive\" (MESSAGES 1 UIDNEXT 2"),
        "{got:?}"
    );
    // Expunged there: MESSAGES goes down though UIDNEXT stays.
    cmd(&mut b, "b", "SELECT Archive").await;
    cmd(&mut b, "c", "STORE 1 +FLAGS (\\Deleted)").await;
    cmd(&mut b, "d", "EXPUNGE").await;
    let got = lines_until(&mut a, |l| l.starts_with("* STATUS")).await;
    assert!(
        got.last()
            .unwrap()
            .starts_with("* STATUS \"Archive\" (MESSAGES 0 UIDNEXT 2"),
        "{got:?}"
    );

    // Mailbox names and subscriptions.
    cmd(&mut b, "e", "CREATE Plans").await;
    let got = lines_until(&mut a, |l| l.starts_with("* LIST")).await;
    assert_eq!(
        got.last().unwrap(),
        "* LIST (\\HasNoChildren \\Subscribed) \"/\" \"Plans\""
    );
    cmd(&mut b, "f", "RENAME Plans Ideas").await;
    let got = lines_until(&mut a, |l| l.starts_with("* LIST")).await;
    assert_eq!(
        got.last().unwrap(),
        "* LIST (\\HasNoChildren \\Subscribed) \"/\" \"Ideas\" (\"OLDNAME\" (\"Plans\"))"
    );
    cmd(&mut b, "g", "UNSUBSCRIBE Ideas").await;
    let got = lines_until(&mut a, |l| l.starts_with("* LIST")).await;
    assert_eq!(
        got.last().unwrap(),
        "* LIST (\\HasNoChildren) \"/\" \"Ideas\""
    );
    cmd(&mut b, "h", "DELETE Ideas").await;
    let got = lines_until(&mut a, |l| l.starts_with("* LIST")).await;
    assert_eq!(
        got.last().unwrap(),
        "* LIST (\\NonExistent) \"/\" \"Ideas\""
    );

    // During IDLE, the same events.
    a.send("i IDLE\r\n").await;
    assert!(a.line().await.starts_with('+'));
    append_to(&mut b, "i", "Drafts", "Subject: d\r\n\r\nx").await;
    let got = lines_until(&mut a, |l| l.starts_with("* STATUS")).await;
    assert!(
        got.last()
            .unwrap()
            .starts_with("* STATUS \"Drafts\" (MESSAGES 1 UIDNEXT 2"),
        "{got:?}"
    );
    a.send("DONE\r\n").await;
    a.imap_until("i").await;

    // FlagChange: FETCH in the selected mailbox; elsewhere STATUS with
    // HIGHESTMODSEQ (CONDSTORE enabled).
    cmd(&mut a, "k", "ENABLE CONDSTORE").await;
    let r = cmd(
        &mut a,
        "l",
        "NOTIFY SET (selected (MessageNew MessageExpunge FlagChange)) (personal (MessageNew MessageExpunge FlagChange))",
    )
    .await;
    assert!(r.last().unwrap().starts_with("l OK"), "{r:?}");
    cmd(&mut b, "k", "SELECT INBOX").await;
    cmd(&mut b, "l", "STORE 1 +FLAGS (\\Flagged)").await;
    let got = lines_until(&mut a, |l| l.contains("FETCH")).await;
    assert!(
        got.last()
            .unwrap()
            .starts_with("* 1 FETCH (UID 1 FLAGS (\\Flagged \\Recent) MODSEQ ("),
        "{got:?}"
    );
    cmd(&mut b, "m", "SELECT Drafts").await;
    cmd(&mut b, "n", "STORE 1 +FLAGS (\\Seen)").await;
    let got = lines_until(&mut a, |l| l.starts_with("* STATUS")).await;
    let st = got.last().unwrap();
    assert!(
        st.starts_with("* STATUS \"Drafts\" (UIDVALIDITY ") && st.contains(" HIGHESTMODSEQ "),
        "{got:?}"
    );

    // NOTIFY NONE: quiet again.
    assert!(q(&mut a, "j", "NOTIFY NONE").await.starts_with("j OK"));
    append_to(&mut b, "j", "Drafts", "Subject: e\r\n\r\nx").await;
    let quiet = tokio::time::timeout(std::time::Duration::from_millis(700), a.line()).await;
    assert!(quiet.is_err(), "{quiet:?}");
}

/// NOTIFY with ACL (RFC 5465 §5.4): granting `l` on a mailbox is its
/// creation for the grantee, revoking it its deletion; new mail in a
/// shared mailbox the grantee watches arrives as STATUS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_follows_grants() {
    let s = TestServer::start_with("[imap]\nauth-without-tls = true\n");
    s.account("joe@example.org");
    s.account("ann@example.org");
    let mut joe = login_as(&s, "joe@example.org").await;
    let mut ann = login_as(&s, "ann@example.org").await;
    cmd(&mut joe, "a", "CREATE Team").await;
    let r = cmd(
        &mut ann,
        "a",
        "NOTIFY SET (subscribed (MailboxName)) (personal (MailboxName)) (mailboxes \"Shared/joe@example.org/Team\" (MessageNew MessageExpunge MailboxName))",
    )
    .await;
    assert!(r.last().unwrap().starts_with("a OK"), "{r:?}");
    cmd(&mut joe, "b", "SETACL Team ann@example.org lr").await;
    let got = lines_until(&mut ann, |l| l.starts_with("* LIST")).await;
    assert_eq!(
        got.last().unwrap(),
        "* LIST () \"/\" \"Shared/joe@example.org/Team\""
    );
    append_to(&mut joe, "c", "Team", "Subject: t\r\n\r\nx").await;
    let got = lines_until(&mut ann, |l| l.starts_with("* STATUS")).await;
    assert!(
        got.last()
            .unwrap()
            .starts_with("* STATUS \"Shared/joe@example.org/Team\" (MESSAGES 1 UIDNEXT 2"),
        "{got:?}"
    );
    cmd(&mut joe, "d", "DELETEACL Team ann@example.org").await;
    let got = lines_until(&mut ann, |l| l.starts_with("* LIST")).await;
    assert_eq!(
        got.last().unwrap(),
        "* LIST (\\NonExistent) \"/\" \"Shared/joe@example.org/Team\""
    );
}

/// CREATE-SPECIAL-USE (RFC 6154 §3): CREATE with (USE (...)) gives the
/// new mailbox its special use, shown by LIST; a use another mailbox has,
/// two uses, or an unknown one get NO [USEATTR].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_special_use() {
    let s = TestServer::start_with("[imap]\nauth-without-tls = true\n");
    s.account("joe@example.org");
    let mut c = logged_in(&s).await;
    let caps = cmd(&mut c, "a", "CAPABILITY").await.join(" ");
    assert!(caps.contains(" CREATE-SPECIAL-USE "), "{caps}");
    let r = q(&mut c, "b", "CREATE Important (USE (\\Flagged))").await;
    assert!(r.starts_with("b OK [MAILBOXID"), "{r}");
    let l = cmd(&mut c, "c", "LIST \"\" Important").await;
    assert_eq!(
        l[0],
        "* LIST (\\HasNoChildren \\Flagged) \"/\" \"Important\""
    );
    let l = cmd(&mut c, "d", "LIST (SPECIAL-USE) \"\" *")
        .await
        .join("\n");
    assert!(l.contains("\"Important\""), "{l}");
    assert!(q(&mut c, "e", "CREATE Papers (USE (\\Drafts))")
        .await
        .starts_with("e NO [USEATTR]"));
    assert!(q(&mut c, "f", "CREATE Both (USE (\\All \\Junk))")
        .await
        .starts_with("f NO [USEATTR]"));
    assert!(q(&mut c, "g", "CREATE Odd (USE (\\Nonsense))")
        .await
        .starts_with("g NO [USEATTR]"));
    assert!(q(&mut c, "h", "CREATE Odd (FROB)")
        .await
        .starts_with("h BAD"));
    // Nothing was created by the refused ones.
    let l = cmd(&mut c, "i", "LIST \"\" *").await.join("\n");
    assert!(
        !l.contains("Papers") && !l.contains("Both") && !l.contains("Odd"),
        "{l}"
    );
    assert!(q(&mut c, "j", "CREATE Plain ()").await.starts_with("j BAD"));
}

/// Python's imaplib as a real client: STARTTLS, LOGIN, NAMESPACE, CREATE
/// with a non-ASCII name (imaplib sends what it is given, so the script
/// encodes modified UTF-7 itself, as rev1 clients do), SETACL/GETACL/
/// MYRIGHTS, APPEND, SEARCH (from the full-text index) and FETCH; a
/// second imaplib session reads the shared mailbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_imaplib_acl_and_search() {
    let s = TestServer::start();
    s.account("joe@example.org");
    s.account("ann@example.org");
    let script = r#"
import imaplib, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
ctx.check_hostname = False
def login(user):
    m = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]))
    m.starttls(ctx)
    m.login(user, "pw")
    return m
joe = login("joe@example.org")
print("namespace", joe.namespace()[1][0].decode())
name = "Entw&APw-rfe"
print("create", joe.create(name)[0])
print("setacl", joe.setacl(name, "ann@example.org", "lrs")[0])
print("getacl", joe.getacl(name)[1][0].decode())
print("append", joe.append(name, None, None, b"Subject: plan\r\n\r\nthe secret needle plan\r\n")[0])
joe.select(name)
print("search", joe.search(None, "BODY", "needle")[1][0].decode())
joe.logout()
ann = login("ann@example.org")
shared = '"Shared/joe@example.org/' + name + '"'
print("myrights", ann.myrights(shared)[1][0].decode())
typ, data = ann.select(shared)
print("select", typ, data[0].decode())
print("fetch", b"needle" in ann.fetch("1", "(BODY[TEXT])")[1][0][1])
print("list", [l.decode() for l in ann.list('""', "Shared/*")[1]])
ann.logout()
"#;
    let text = run_python(script, &s, "imap");
    assert!(
        text.contains("namespace ((\"\" \"/\")) ((\"Shared/\" \"/\")) NIL"),
        "{text}"
    );
    assert!(text.contains("create OK"), "{text}");
    assert!(text.contains("setacl OK"), "{text}");
    assert!(
        text.contains(
            "getacl \"Entw&APw-rfe\" \"joe@example.org\" lrswipkxteacd \"ann@example.org\" \"lrs\""
        ),
        "{text}"
    );
    assert!(text.contains("append OK"), "{text}");
    assert!(text.contains("search 1"), "{text}");
    assert!(
        text.contains("myrights \"Shared/joe@example.org/Entw&APw-rfe\" \"lrs\""),
        "{text}"
    );
    assert!(text.contains("select OK 1"), "{text}");
    assert!(text.contains("fetch True"), "{text}");
    assert!(
        text.contains("(\\\\HasNoChildren) \"/\" \"Shared/joe@example.org/Entw&APw-rfe\""),
        "{text}"
    );
}
