//! POP3 (RFC 1939, 2449, 2595, 5034) against a running server: exact
//! exchanges over raw sockets, and Python's poplib as a real client.

mod common;

use common::*;

const OPEN: &str = "[smtp]\nauth-without-tls = true\n[imap]\nauth-without-tls = true\n";

fn b64(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// A multi-line answer: the status line, then the lines up to ".".
async fn multi<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    c: &mut LineClient<S>,
) -> (String, Vec<String>) {
    let status = c.line().await;
    let mut lines = Vec::new();
    if status.starts_with("+OK") {
        loop {
            let l = c.line().await;
            if l == "." {
                break;
            }
            lines.push(l);
        }
    }
    (status, lines)
}

#[tokio::test]
async fn stls_login_retrieve_delete_and_update() {
    let s = TestServer::start_with(OPEN);
    s.account("joe@example.org");
    // smtp_send does not dot-stuff: this is stored as ".dotted line".
    deliver(&s, "one", "first\r\n..dotted line\r\n").await;
    deliver(&s, "two", "second\r\n").await;
    deliver(&s, "three", "third\r\n").await;

    // Before TLS: STLS offered, no plaintext login.
    let mut c = LineClient::connect(s.addr("pop3")).await;
    assert!(c.line().await.starts_with("+OK"));
    c.send("CAPA\r\n").await;
    let (st, caps) = multi(&mut c).await;
    assert!(st.starts_with("+OK"), "{st}");
    assert!(caps.contains(&"STLS".to_string()), "{caps:?}");
    assert!(!caps.contains(&"USER".to_string()), "{caps:?}");
    c.send("USER joe@example.org\r\n").await;
    assert!(c.line().await.starts_with("-ERR"));
    c.send("STAT\r\n").await;
    assert!(c.line().await.starts_with("-ERR"), "STAT needs a login");
    c.send("STLS\r\n").await;
    assert!(c.line().await.starts_with("+OK"));
    let mut c = c.upgrade(&s).await;
    c.send("CAPA\r\n").await;
    let (_, caps) = multi(&mut c).await;
    for want in [
        "USER",
        "TOP",
        "UIDL",
        "RESP-CODES",
        "PIPELINING",
        "SASL SCRAM-SHA-256 PLAIN LOGIN",
    ] {
        assert!(caps.iter().any(|c| c == want), "{want}: {caps:?}");
    }
    assert!(!caps.contains(&"STLS".to_string()));

    // A wrong password, then the right one.
    c.send("USER joe@example.org\r\nPASS nope\r\n").await;
    assert!(c.line().await.starts_with("+OK"));
    assert!(c.line().await.starts_with("-ERR [AUTH]"));
    c.send("PASS pw\r\n").await;
    assert!(c.line().await.starts_with("-ERR"), "PASS needs USER first");
    c.send("USER joe@example.org\r\nPASS pw\r\n").await;
    assert!(c.line().await.starts_with("+OK"));
    let r = c.line().await;
    assert!(r.starts_with("+OK 3 messages"), "{r}");

    // The maildrop is locked for a second POP3 session.
    let mut other = LineClient::connect_tls(&s, s.addr("pop3s")).await;
    assert!(other.line().await.starts_with("+OK"));
    other.send("USER joe@example.org\r\nPASS pw\r\n").await;
    assert!(other.line().await.starts_with("+OK"));
    let r = other.line().await;
    assert!(r.starts_with("-ERR [IN-USE]"), "{r}");

    // STAT, LIST and UIDL, pipelined.
    c.send("STAT\r\nLIST\r\nUIDL\r\n").await;
    let stat = c.line().await;
    let (_, list) = multi(&mut c).await;
    let (_, uidl) = multi(&mut c).await;
    let sizes: Vec<u64> = list
        .iter()
        .map(|l| l.split(' ').nth(1).unwrap().parse().unwrap())
        .collect();
    assert_eq!(list.len(), 3);
    assert_eq!(stat, format!("+OK 3 {}", sizes.iter().sum::<u64>()));
    assert_eq!(uidl.len(), 3);
    let ids: Vec<String> = uidl
        .iter()
        .map(|l| l.split(' ').nth(1).unwrap().to_string())
        .collect();
    assert!(ids.iter().all(|id| (1..=70).contains(&id.len())));
    assert_eq!(
        ids.len(),
        ids.iter().collect::<std::collections::HashSet<_>>().len()
    );

    // RETR: the whole message, dot-stuffed; TOP: headers and n lines.
    c.send("RETR 1\r\n").await;
    let (st, lines) = multi(&mut c).await;
    assert_eq!(st, format!("+OK {} octets", sizes[0]));
    assert!(lines.contains(&"Subject: one".to_string()), "{lines:?}");
    assert!(lines.contains(&"..dotted line".to_string()), "{lines:?}");
    c.send("TOP 2 0\r\n").await;
    let (_, lines) = multi(&mut c).await;
    assert!(lines.contains(&"Subject: two".to_string()));
    assert!(!lines.contains(&"second".to_string()), "{lines:?}");

    // Bad input: an error, and the session goes on.
    for bad in ["RETR x", "RETR 0", "RETR 9", "TOP 1", "BOGUS", "LIST 1 2"] {
        c.send(&format!("{bad}\r\n")).await;
        let r = c.line().await;
        assert!(r.starts_with("-ERR"), "{bad}: {r}");
    }

    // DELE marks; RSET unmarks; QUIT removes what is marked.
    c.send("DELE 1\r\n").await;
    assert!(c.line().await.starts_with("+OK"));
    c.send("RETR 1\r\nDELE 1\r\nSTAT\r\n").await;
    assert!(c.line().await.starts_with("-ERR"));
    assert!(c.line().await.starts_with("-ERR"));
    assert!(c.line().await.starts_with("+OK 2 "));
    c.send("RSET\r\nSTAT\r\n").await;
    assert!(c.line().await.starts_with("+OK"));
    assert!(c.line().await.starts_with("+OK 3 "));
    c.send("DELE 2\r\nQUIT\r\n").await;
    assert!(c.line().await.starts_with("+OK"));
    let r = c.line().await;
    assert!(r.starts_with("+OK"), "{r}");
    assert_eq!(c.line_opt().await, None, "closed after QUIT");

    // IMAP sees the result; a new POP3 session has the same ids.
    let left = imap_fetch_all(s.addr("imap"), "joe@example.org", "pw").await;
    assert_eq!(left.len(), 2);
    assert!(left
        .iter()
        .all(|m| !String::from_utf8_lossy(m).contains("Subject: two")));
    let mut c = LineClient::connect_tls(&s, s.addr("pop3s")).await;
    c.line().await;
    c.send("USER joe@example.org\r\nPASS pw\r\nUIDL\r\n").await;
    c.line().await;
    assert!(c.line().await.starts_with("+OK 2 messages"));
    let (_, uidl) = multi(&mut c).await;
    let again: Vec<String> = uidl
        .iter()
        .map(|l| l.split(' ').nth(1).unwrap().to_string())
        .collect();
    assert_eq!(again, vec![ids[0].clone(), ids[2].clone()]);
    // A session that ends without QUIT removes nothing (RFC 1939 §6).
    c.send("DELE 1\r\n").await;
    assert!(c.line().await.starts_with("+OK"));
    drop(c);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(
        imap_fetch_all(s.addr("imap"), "joe@example.org", "pw")
            .await
            .len(),
        2
    );
}

#[tokio::test]
async fn sasl_plain_and_login() {
    let s = TestServer::start_with(OPEN);
    s.account("joe@example.org");
    let mut c = LineClient::connect_tls(&s, s.addr("pop3s")).await;
    c.line().await;
    // A bare AUTH lists the mechanisms (RFC 5034 §4).
    c.send("AUTH\r\n").await;
    let (st, mechs) = multi(&mut c).await;
    assert!(st.starts_with("+OK"));
    assert_eq!(mechs, vec!["SCRAM-SHA-256", "PLAIN", "LOGIN"]);
    c.send(&format!(
        "AUTH PLAIN {}\r\n",
        b64(b"\0joe@example.org\0bad")
    ))
    .await;
    assert!(c.line().await.starts_with("-ERR [AUTH]"));
    c.send("AUTH CRAM-MD5\r\n").await;
    assert!(c.line().await.starts_with("-ERR"));
    // PLAIN without an initial response: an empty challenge first.
    c.send("AUTH PLAIN\r\n").await;
    assert_eq!(c.line().await, "+ ");
    c.send(&format!("{}\r\n", b64(b"\0joe@example.org\0pw")))
        .await;
    let r = c.line().await;
    assert!(r.starts_with("+OK"), "{r}");
    c.send("QUIT\r\n").await;
    assert!(c.line().await.starts_with("+OK"));

    // LOGIN: two prompts; "*" cancels.
    let mut c = LineClient::connect_tls(&s, s.addr("pop3s")).await;
    c.line().await;
    c.send("AUTH LOGIN\r\n").await;
    assert_eq!(c.line().await, format!("+ {}", b64(b"Username:")));
    c.send("*\r\n").await;
    assert!(c.line().await.starts_with("-ERR"));
    c.send("AUTH LOGIN\r\n").await;
    c.line().await;
    c.send(&format!("{}\r\n", b64(b"joe@example.org"))).await;
    assert_eq!(c.line().await, format!("+ {}", b64(b"Password:")));
    c.send(&format!("{}\r\n", b64(b"pw"))).await;
    assert!(c.line().await.starts_with("+OK"));
}

/// Python's poplib, a real POP3 client: STLS, USER/PASS, LIST, UIDL, TOP,
/// RETR, DELE, QUIT; while an IMAP session expunges a message the POP3
/// session still lists, which then reads as gone.
#[tokio::test]
async fn python_poplib_and_concurrent_imap() {
    let s = TestServer::start_with(OPEN);
    s.account("joe@example.org");
    for i in 1..=3 {
        deliver(&s, &format!("msg {i}"), &format!("body {i}\r\n")).await;
    }
    let script = r#"
import poplib, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
ctx.check_hostname = False
p = poplib.POP3("127.0.0.1", int(sys.argv[1]))
p.stls(ctx)
p.user("joe@example.org")
p.pass_("pw")
count, size = p.stat()
print("stat", count, size)
print("uidl", len(p.uidl()[1]))
print("top", b"Subject: msg 2" in b"\n".join(p.top(2, 0)[1]))
print("retr", b"body 1" in b"\n".join(p.retr(1)[1]))
p.dele(1)
print("quit", p.quit().decode())
"#;
    let text = run_python(script, &s, "pop3");
    assert!(text.contains("stat 3 "), "{text}");
    assert!(text.contains("uidl 3"), "{text}");
    assert!(text.contains("top True"), "{text}");
    assert!(text.contains("retr True"), "{text}");
    assert!(text.contains("quit +OK"), "{text}");
    assert_eq!(
        imap_fetch_all(s.addr("imap"), "joe@example.org", "pw")
            .await
            .len(),
        2
    );

    // POP3 holds its snapshot; IMAP expunges message 1 of it meanwhile.
    let mut p = LineClient::connect_tls(&s, s.addr("pop3s")).await;
    p.line().await;
    p.send("USER joe@example.org\r\nPASS pw\r\n").await;
    p.line().await;
    assert!(p.line().await.starts_with("+OK 2 messages"));
    let mut i = LineClient::connect(s.addr("imap")).await;
    i.line().await;
    i.send("a LOGIN joe@example.org pw\r\nb SELECT INBOX\r\nc STORE 1 +FLAGS (\\Deleted)\r\nd EXPUNGE\r\n")
        .await;
    let done = i.imap_until("d").await;
    assert!(done.last().unwrap().starts_with("d OK"), "{done:?}");
    p.send("RETR 1\r\nRETR 2\r\n").await;
    let r = p.line().await;
    assert!(r.starts_with("-ERR [SYS/PERM]"), "{r}");
    let (st, lines) = multi(&mut p).await;
    assert!(st.starts_with("+OK"), "{st}");
    assert!(lines.contains(&"Subject: msg 3".to_string()), "{lines:?}");
    // Deleting the gone message and quitting is not an error.
    p.send("DELE 1\r\nQUIT\r\n").await;
    assert!(p.line().await.starts_with("+OK"));
    assert!(p.line().await.starts_with("+OK"));
}

#[tokio::test]
async fn limits_plaintext_and_idle_timeout() {
    let s = TestServer::start_with(&format!(
        "{OPEN}[pop3]\nmax-line-length = 300\ntimeout-idle = 1\n"
    ));
    s.account("joe@example.org");
    let mut c = LineClient::connect(s.addr("pop3")).await;
    c.line().await;
    c.send(&format!("USER {}\r\n", "x".repeat(400))).await;
    assert!(c.line().await.starts_with("-ERR"), "line too long");
    c.send("NOOP\r\n").await;
    assert!(c.line().await.starts_with("-ERR"), "session goes on");
    // Silent past pop3.timeout-idle: the server closes.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(c.line_opt().await, None);

    // pop3.auth-without-tls lets a plaintext login through.
    let s = TestServer::start_with(&format!("{OPEN}[pop3]\nauth-without-tls = true\n"));
    s.account("joe@example.org");
    let mut c = LineClient::connect(s.addr("pop3")).await;
    c.line().await;
    c.send("USER joe@example.org\r\nPASS pw\r\n").await;
    assert!(c.line().await.starts_with("+OK"));
    assert!(c.line().await.starts_with("+OK 0 messages"));
}
