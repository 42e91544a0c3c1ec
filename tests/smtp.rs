//! SMTP exchanges on the wire (RFC 5321), against a running server.

mod common;

use common::*;

async fn greeted(s: &TestServer) -> LineClient {
    let mut c = LineClient::connect(s.addr("smtp")).await;
    assert!(c.smtp_reply().await.starts_with("220 mx.test"));
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ehlo_advertises_extensions() {
    let s = TestServer::start();
    let mut c = greeted(&s).await;
    c.send("EHLO me.test\r\n").await;
    let mut lines = Vec::new();
    loop {
        let l = c.line().await;
        let last = l.as_bytes().get(3) == Some(&b' ');
        lines.push(l);
        if last {
            break;
        }
    }
    let all = lines.join("\n");
    for ext in [
        "PIPELINING",
        "SIZE 52428800",
        "8BITMIME",
        "ENHANCEDSTATUSCODES",
        "STARTTLS",
    ] {
        assert!(all.contains(ext), "{all}");
    }
    c.send("HELO me.test\r\n").await;
    assert_eq!(c.smtp_reply().await, "250 mx.test");
    c.send("QUIT\r\n").await;
    assert!(c.smtp_reply().await.starts_with("221 2.0.0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequencing_and_syntax_errors_keep_the_session() {
    let s = TestServer::start_with("[smtp]\nmax-errors = 50\n");
    s.account("joe@example.org");
    let mut c = greeted(&s).await;
    c.send("MAIL FROM:<a@b.test>\r\n").await;
    assert!(c.smtp_reply().await.starts_with("503 5.5.1"));
    c.send("EHLO me.test\r\n").await;
    c.smtp_reply().await;
    c.send("RCPT TO:<joe@example.org>\r\n").await;
    assert!(c.smtp_reply().await.starts_with("503 5.5.1"));
    c.send("DATA\r\n").await;
    assert!(c.smtp_reply().await.starts_with("503 5.5.1"));
    c.send("FROB\r\n").await;
    assert!(c.smtp_reply().await.starts_with("500 5.5.1"));
    c.send("MAIL FROM:a@b.test\r\n").await;
    assert!(c.smtp_reply().await.starts_with("501 5.1.3"));
    c.send("MAIL FROM:<a@b.test> SIZE=999999999999\r\n").await;
    assert!(c.smtp_reply().await.starts_with("552 5.3.4"));
    c.send("MAIL FROM:<a@b.test> FOO=BAR\r\n").await;
    assert!(c.smtp_reply().await.starts_with("555 5.5.4"));
    c.send(&format!("NOOP {}\r\n", "x".repeat(5000))).await;
    assert!(c.smtp_reply().await.starts_with("500 5.5.2"));
    c.send_bytes(b"\x00\xff\xfe garbage\r\n").await;
    assert!(c.smtp_reply().await.starts_with("50"));
    // Still usable after all that.
    c.send("MAIL FROM:<a@b.test>\r\n").await;
    assert!(c.smtp_reply().await.starts_with("250 2.1.0"));
    c.send("MAIL FROM:<a@b.test>\r\n").await;
    assert!(c.smtp_reply().await.starts_with("503 5.5.1"), "nested MAIL");
    c.send("RCPT TO:<joe@example.org>\r\n").await;
    assert!(c.smtp_reply().await.starts_with("250 2.1.5"));
    c.send("RSET\r\n").await;
    assert!(c.smtp_reply().await.starts_with("250"));
    c.send("DATA\r\n").await;
    assert!(
        c.smtp_reply().await.starts_with("503"),
        "RSET cleared the transaction"
    );
    c.send("VRFY joe\r\n").await;
    assert!(c.smtp_reply().await.starts_with("252"));
    c.send("EXPN all\r\n").await;
    assert!(c.smtp_reply().await.starts_with("502"));
    c.send("HELP\r\n").await;
    assert!(c.smtp_reply().await.starts_with("214"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_an_open_relay() {
    let s = TestServer::start();
    s.account("joe@example.org");
    let mut c = greeted(&s).await;
    c.send("EHLO me.test\r\nMAIL FROM:<joe@example.org>\r\nRCPT TO:<victim@elsewhere.test>\r\n")
        .await;
    c.smtp_reply().await;
    c.smtp_reply().await;
    assert!(c.smtp_reply().await.starts_with("554 5.7.1"));
    c.send("RCPT TO:<nobody@example.org>\r\n").await;
    assert!(c.smtp_reply().await.starts_with("550 5.1.1"));
    // RFC 5321 §4.5.1: postmaster is always accepted.
    c.send("RCPT TO:<Postmaster>\r\n").await;
    assert!(c.smtp_reply().await.starts_with("250"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_errors_close_the_connection() {
    let s = TestServer::start_with("[smtp]\nmax-errors = 3\n");
    let mut c = greeted(&s).await;
    c.send("BAD1\r\nBAD2\r\nBAD3\r\n").await;
    assert!(c.smtp_reply().await.starts_with("500"));
    assert!(c.smtp_reply().await.starts_with("500"));
    assert!(c.smtp_reply().await.starts_with("421 4.7.0"));
    assert_eq!(c.line().await, "", "closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recipient_and_size_limits() {
    let s = TestServer::start_with("[smtp]\nmax-recipients = 2\nmax-message-size = 1000\n");
    s.account("joe@example.org");
    let mut c = greeted(&s).await;
    c.send("EHLO x.test\r\nMAIL FROM:<a@b.test>\r\n").await;
    c.smtp_reply().await;
    c.smtp_reply().await;
    for _ in 0..2 {
        c.send("RCPT TO:<joe@example.org>\r\n").await;
        assert!(c.smtp_reply().await.starts_with("250"));
    }
    c.send("RCPT TO:<joe@example.org>\r\n").await;
    assert!(c.smtp_reply().await.starts_with("452 4.5.3"));
    c.send("DATA\r\n").await;
    assert!(c.smtp_reply().await.starts_with("354"));
    c.send(&format!(
        "Subject: big\r\n\r\n{}\r\n.\r\n",
        "y".repeat(3000)
    ))
    .await;
    assert!(c.smtp_reply().await.starts_with("552 5.3.4"));
    let shown = s.cli_ok(&["account", "show", "joe@example.org"]);
    assert!(shown.contains("\"messages\": 0"), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_transaction_and_dot_stuffing() {
    let s = TestServer::start();
    s.account("joe@example.org");
    let mut c = greeted(&s).await;
    // RFC 2920: the whole transaction in one write.
    c.send("EHLO x.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<joe@example.org>\r\nDATA\r\n")
        .await;
    c.smtp_reply().await;
    c.smtp_reply().await;
    c.smtp_reply().await;
    assert!(c.smtp_reply().await.starts_with("354"));
    c.send("Subject: dots\r\n\r\n..leading dot\r\n.\r\nNOOP\r\n")
        .await;
    assert!(c.smtp_reply().await.starts_with("250 2.0.0"));
    assert!(
        c.smtp_reply().await.starts_with("250"),
        "NOOP after the data"
    );

    let mut i = LineClient::connect(s.addr("imap")).await;
    i.line().await;
    // Plain-text login is refused without TLS by default.
    i.send("a LOGIN joe@example.org pw\r\n").await;
    assert!(i
        .imap_until("a")
        .await
        .last()
        .unwrap()
        .starts_with("a NO [PRIVACYREQUIRED]"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bare_newlines_are_refused_by_default() {
    let s = TestServer::start_with("[imap]\nauth-without-tls = true\n");
    s.account("joe@example.org");
    let mut c = greeted(&s).await;
    c.send("EHLO x.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<joe@example.org>\r\nDATA\r\n")
        .await;
    for _ in 0..3 {
        c.smtp_reply().await;
    }
    assert!(c.smtp_reply().await.starts_with("354"));
    c.send("Subject: one\r\n\r\nbody\n.\nMAIL FROM:<evil@b.test>\r\n.\r\nNOOP\r\n")
        .await;
    let r = c.smtp_reply().await;
    assert!(r.starts_with("554 5.6.11"), "{r}");
    assert!(
        c.smtp_reply().await.starts_with("250"),
        "in step: NOOP answered"
    );
    c.send("MAIL FROM:<a@b.test>\r\nRCPT TO:<joe@example.org>\r\nDATA\r\n")
        .await;
    for _ in 0..2 {
        assert!(c.smtp_reply().await.starts_with("250"));
    }
    assert!(c.smtp_reply().await.starts_with("354"));
    c.send("Subject: a bare\rCR\r\n\r\nx\r\n.\r\n").await;
    assert!(c.smtp_reply().await.starts_with("554 5.6.11"));
    assert!(imap_fetch_all(s.addr("imap"), "joe@example.org", "pw")
        .await
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_per_ip_are_limited() {
    let s = TestServer::start_with(
        "[smtp]\nmax-connections-per-ip = 2\nmax-connection-rate-per-ip = 4\nlimit-exempt = []\n",
    );
    let mut a = greeted(&s).await;
    let _b = greeted(&s).await;
    let mut c = LineClient::connect(s.addr("smtp")).await;
    assert!(
        c.smtp_reply().await.starts_with("421 4.7.0"),
        "third at once"
    );
    assert!(c.line_opt().await.is_none(), "and closed");
    a.send("QUIT\r\n").await;
    a.smtp_reply().await;
    assert!(a.line_opt().await.is_none());
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let _d = greeted(&s).await; // a slot is free again: the fourth this minute
    let mut e = LineClient::connect(s.addr("smtp")).await;
    let r = e.smtp_reply().await;
    assert!(r.starts_with("421"), "fifth in a minute: {r}");
    // The loopback exemption (the default) lifts both limits.
    let open = TestServer::start_with("[smtp]\nmax-connections-per-ip = 1\n");
    let _x = greeted(&open).await;
    let _y = greeted(&open).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smuggled_end_of_data_is_not_honoured() {
    let s = TestServer::start_with(
        "[smtp]\nbare-newlines = \"accept\"\n[imap]\nauth-without-tls = true\n",
    );
    s.account("joe@example.org");
    let mut c = greeted(&s).await;
    c.send("EHLO x.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<joe@example.org>\r\nDATA\r\n")
        .await;
    for _ in 0..3 {
        c.smtp_reply().await;
    }
    assert!(c.smtp_reply().await.starts_with("354"));
    c.send("Subject: one\r\n\r\nbody\n.\nMAIL FROM:<evil@b.test>\r\nRCPT TO:<joe@example.org>\r\nDATA\r\nSubject: smuggled\r\n\r\n.\r\n").await;
    assert!(c.smtp_reply().await.starts_with("250"));
    // One message arrived, containing the would-be second one.
    let mut i = LineClient::connect(s.addr("imap")).await;
    i.line().await;
    i.send("a LOGIN joe@example.org pw\r\nb SELECT INBOX\r\n")
        .await;
    i.imap_until("a").await;
    let sel = i.imap_until("b").await;
    assert!(sel.iter().any(|l| l == "* 1 EXISTS"), "{sel:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_vanishing_mid_data_stores_nothing() {
    let s = TestServer::start();
    s.account("joe@example.org");
    {
        let mut c = greeted(&s).await;
        c.send("EHLO x.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<joe@example.org>\r\nDATA\r\n")
            .await;
        for _ in 0..4 {
            c.smtp_reply().await;
        }
        c.send("Subject: half\r\n\r\nhalf a mess").await;
    } // dropped: connection closed mid-DATA
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // The server still serves others, and nothing half-stored is visible.
    assert!(smtp_send(
        s.addr("smtp"),
        "a@b.test",
        &["joe@example.org"],
        "Subject: whole\r\n\r\nok"
    )
    .await
    .starts_with("250"));
    let shown = s.cli_ok(&["account", "show", "joe@example.org"]);
    assert!(shown.contains("\"messages\": 1"), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_loop_is_refused() {
    let s = TestServer::start_with("[smtp]\nmax-received-headers = 5\n");
    s.account("joe@example.org");
    let hops = "Received: from a by b; Mon, 1 Jan 2024 00:00:00 +0000\r\n".repeat(5);
    let r = smtp_send(
        s.addr("smtp"),
        "a@b.test",
        &["joe@example.org"],
        &format!("{hops}Subject: loop\r\n\r\nx"),
    )
    .await;
    assert!(r.starts_with("554 5.4.6"), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_runs_the_whole_server() {
    let s = TestServer::start_with("[store]\ntype = \"sqlite\"\n[imap]\nauth-without-tls = true\n");
    assert!(
        s.stdout.iter().any(|l| l.starts_with("Store: sqlite")),
        "{:?}",
        s.stdout
    );
    s.account("joe@example.org");
    assert!(smtp_send(
        s.addr("smtp"),
        "a@b.test",
        &["joe@example.org"],
        "Subject: on sqlite\r\n\r\nhello"
    )
    .await
    .starts_with("250"));
    let mut i = LineClient::connect(s.addr("imap")).await;
    i.line().await;
    i.send("a LOGIN joe@example.org pw\r\nb SELECT INBOX\r\nc FETCH 1 BODY[HEADER.FIELDS (SUBJECT)]\r\n").await;
    i.imap_until("a").await;
    i.imap_until("b").await;
    let f = i.imap_until("c").await;
    assert!(f.iter().any(|l| l == "Subject: on sqlite"), "{f:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_timeout_closes_with_421() {
    let s = TestServer::start_with("[smtp]\ntimeout-command = 1\n");
    let mut c = greeted(&s).await;
    let t = std::time::Instant::now();
    assert!(c.smtp_reply().await.starts_with("421 4.4.2"));
    assert!(t.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(c.line_opt().await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_per_connection_limit() {
    let s = TestServer::start_with("[smtp]\nmax-messages-per-connection = 1\n");
    s.account("joe@example.org");
    let mut c = greeted(&s).await;
    c.send("HELO x.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<joe@example.org>\r\nDATA\r\n")
        .await;
    for _ in 0..4 {
        c.smtp_reply().await;
    }
    c.send("Subject: one\r\n\r\n1\r\n.\r\n").await;
    assert!(c.smtp_reply().await.starts_with("250"));
    c.send("MAIL FROM:<a@b.test>\r\n").await;
    assert!(c.smtp_reply().await.starts_with("421 4.7.0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn line_length_limit_is_configurable() {
    let s = TestServer::start_with("[smtp]\nmax-line-length = 600\n");
    let mut c = greeted(&s).await;
    c.send(&format!("NOOP {}\r\n", "x".repeat(590))).await;
    assert!(c.smtp_reply().await.starts_with("250"));
    c.send(&format!("NOOP {}\r\n", "x".repeat(700))).await;
    assert!(c.smtp_reply().await.starts_with("500 5.5.2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_resets_the_session() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let s = TestServer::start();
    let mut c = greeted(&s).await;
    c.send("EHLO x.test\r\nMAIL FROM:<a@b.test>\r\n").await;
    c.smtp_reply().await;
    c.smtp_reply().await;
    c.send("STARTTLS\r\n").await;
    assert!(c.smtp_reply().await.starts_with("220 2.0.0"));
    let tcp = c.r.into_inner().unsplit(c.w);
    let tls = tls_connector(&s)
        .connect(
            rustls::pki_types::ServerName::try_from("mx.test").unwrap(),
            tcp,
        )
        .await
        .unwrap();
    let (r, mut w) = tokio::io::split(tls);
    let mut r = tokio::io::BufReader::new(r);
    let mut line = String::new();
    // RFC 3207 §4.2: the transaction and the EHLO from before TLS are gone.
    w.write_all(b"MAIL FROM:<a@b.test>\r\n").await.unwrap();
    r.read_line(&mut line).await.unwrap();
    assert!(line.starts_with("503 5.5.1"), "{line}");
    w.write_all(b"EHLO x.test\r\n").await.unwrap();
    let mut ehlo = String::new();
    loop {
        line.clear();
        r.read_line(&mut line).await.unwrap();
        ehlo.push_str(&line);
        if line.as_bytes()[3] == b' ' {
            break;
        }
    }
    assert!(!ehlo.contains("STARTTLS"), "not offered twice: {ehlo}");
}

/// RFC 3207 §4, §6: clients from `smtp.require-tls-from` get 530 5.7.0
/// until they STARTTLS; everyone else delivers without TLS (a public MX
/// must not require it, §4).
#[tokio::test]
async fn selected_hosts_must_use_tls() {
    let s = TestServer::start_with("[smtp]\nrequire-tls-from = [\"127.0.0.0/8\"]\n");
    s.account("joe@example.org");
    let mut c = greeted(&s).await;
    c.send("EHLO x.test\r\n").await;
    c.smtp_reply().await;
    c.send("MAIL FROM:<a@b.test>\r\n").await;
    let r = c.smtp_reply().await;
    assert!(
        r.starts_with("530 5.7.0 Must issue a STARTTLS command first"),
        "{r}"
    );
    c.send("STARTTLS\r\n").await;
    assert!(c.smtp_reply().await.starts_with("220 2.0.0"));
    let mut c = c.upgrade(&s).await;
    c.send("EHLO x.test\r\n").await;
    c.smtp_reply().await;
    c.send("MAIL FROM:<a@b.test>\r\n").await;
    let r = c.smtp_reply().await;
    assert!(r.starts_with("250"), "{r}");

    // Another address block: plain mail is accepted as always.
    let open = TestServer::start_with("[smtp]\nrequire-tls-from = [\"192.0.2.0/24\"]\n");
    let mut c = greeted(&open).await;
    c.send("EHLO x.test\r\nMAIL FROM:<a@b.test>\r\n").await;
    c.smtp_reply().await;
    let r = c.smtp_reply().await;
    assert!(r.starts_with("250"), "{r}");
}

#[test]
fn sigterm_stops_cleanly() {
    let mut s = TestServer::start();
    let status = s.sigterm();
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_protocol_gives_the_client_address() {
    let s = TestServer::start_with(
        "[imap]\nauth-without-tls = true\n[proxy]\nlisteners = [\"smtp\"]\ntrusted-networks = [\"127.0.0.0/8\"]\n[mail-auth]\niprev = \"off\"\n",
    );
    s.account("joe@example.org");
    // v1: the text header, then SMTP.
    let mut c = LineClient::connect(s.addr("smtp")).await;
    c.send("PROXY TCP4 203.0.113.7 192.0.2.1 51000 25\r\n")
        .await;
    assert!(c.smtp_reply().await.starts_with("220"));
    c.send("EHLO relay.test\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<joe@example.org>\r\nDATA\r\n")
        .await;
    for _ in 0..3 {
        c.smtp_reply().await;
    }
    assert!(c.smtp_reply().await.starts_with("354"));
    c.send("Subject: v1\r\n\r\nx\r\n.\r\n").await;
    assert!(c.smtp_reply().await.starts_with("250"));
    // v2: the binary header (IPv4, PROXY command).
    let mut c = LineClient::connect(s.addr("smtp")).await;
    let mut v2 = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    v2.extend([
        0x21, 0x11, 0, 12, 198, 51, 100, 9, 192, 0, 2, 1, 0x1f, 0x90, 0, 25,
    ]);
    c.send_bytes(&v2).await;
    assert!(c.smtp_reply().await.starts_with("220"));
    c.send("EHLO relay.test\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<joe@example.org>\r\nDATA\r\n")
        .await;
    for _ in 0..3 {
        c.smtp_reply().await;
    }
    c.smtp_reply().await;
    c.send("Subject: v2\r\n\r\nx\r\n.\r\n").await;
    assert!(c.smtp_reply().await.starts_with("250"));
    let got = wait_for_mail(s.addr("imap"), "joe@example.org", 2).await;
    let all: String = got
        .iter()
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .collect();
    assert!(all.contains("from relay.test ([203.0.113.7])"), "{all}");
    assert!(all.contains("from relay.test ([198.51.100.9])"), "{all}");
    // Without a header the connection is dropped before the greeting.
    let mut c = LineClient::connect(s.addr("smtp")).await;
    c.send("EHLO sneaky.test\r\n").await;
    let mut line = String::new();
    use tokio::io::AsyncBufReadExt;
    let r = tokio::time::timeout(std::time::Duration::from_secs(20), c.r.read_line(&mut line))
        .await
        .expect("closed in time");
    assert!(matches!(r, Ok(0) | Err(_)), "no greeting: {line}");
}
