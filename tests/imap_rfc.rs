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
