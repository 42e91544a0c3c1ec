//! ManageSieve (RFC 5804) against a running Petrel: the wire protocol
//! sentence by sentence over a raw connection, then two independent
//! clients (Debian's sieve-connect and Python's managesieve) uploading
//! scripts that then filter real deliveries.

mod common;

use base64::Engine;
use common::*;

const JOE: &str = "joe@example.org";

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Reads a response: lines until one starting with OK, NO or BYE.
async fn response<S>(c: &mut LineClient<S>) -> Vec<String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut out = Vec::new();
    loop {
        let l = c.line().await;
        let done = l.starts_with("OK") || l.starts_with("NO") || l.starts_with("BYE");
        out.push(l);
        if done {
            return out;
        }
    }
}

/// RFC 5804 §1.7 greeting, §2.2 STARTTLS (capabilities again, SASL now
/// offered), §2.1 AUTHENTICATE (ENCRYPT-NEEDED before TLS), §2.5 HAVESPACE,
/// §2.6 PUTSCRIPT (a compile error is a NO naming the line; a literal over
/// the limit is NO (QUOTA/MAXSIZE) and the session goes on), §2.7
/// LISTSCRIPTS, §2.8 SETACTIVE, §2.9 GETSCRIPT, §2.10 DELETESCRIPT
/// (ACTIVE, NONEXISTENT), §2.11.1 RENAMESCRIPT, §2.12 CHECKSCRIPT, §2.15
/// NOOP with a tag, §2.14.1 UNAUTHENTICATE, §2.3 LOGOUT; bad lines are a
/// NO and nothing more.
#[tokio::test]
async fn the_wire_protocol() {
    let s = TestServer::start_with("[sieve]\nmax-script-size = 100\n");
    s.account(JOE);
    let mut c = LineClient::connect(s.addr("managesieve")).await;
    let greeting = response(&mut c).await;
    let g = greeting.join("\n");
    assert!(g.contains("\"IMPLEMENTATION\" \"Petrel\""), "{g}");
    assert!(g.contains("\"VERSION\" \"1.0\""), "{g}");
    assert!(g.contains("\"SIEVE\" \"fileinto envelope"), "{g}");
    assert!(g.contains("\"STARTTLS\""), "{g}");
    assert!(!g.contains("\"SASL\""), "no SASL before TLS: {g}");
    assert!(greeting.last().unwrap().starts_with("OK"));
    c.send(&format!(
        "AUTHENTICATE \"PLAIN\" \"{}\"\r\n",
        b64("\0joe@example.org\0pw")
    ))
    .await;
    let r = response(&mut c).await;
    assert!(r[0].starts_with("NO (ENCRYPT-NEEDED)"), "{r:?}");
    c.send("PUTSCRIPT \"x\" {5+}\r\nkeep;\r\n").await;
    assert!(
        response(&mut c).await[0].starts_with("NO"),
        "needs authentication"
    );
    c.send("STARTTLS\r\n").await;
    assert!(response(&mut c).await[0].starts_with("OK"));
    let mut c = c.upgrade(&s).await;
    let again = response(&mut c).await.join("\n");
    assert!(
        again.contains("\"SASL\" \"SCRAM-SHA-256 PLAIN LOGIN\""),
        "{again}"
    );
    assert!(!again.contains("STARTTLS"), "{again}");
    c.send(&format!(
        "AUTHENTICATE \"PLAIN\" \"{}\"\r\n",
        b64("\0joe@example.org\0wrong")
    ))
    .await;
    assert!(response(&mut c).await[0].starts_with("NO"));
    // No initial response: the challenge is an empty string.
    c.send("AUTHENTICATE \"PLAIN\"\r\n").await;
    assert_eq!(c.line().await, "\"\"");
    c.send(&format!(
        "{{{}+}}\r\n{}\r\n",
        b64("\0joe@example.org\0pw").len(),
        b64("\0joe@example.org\0pw")
    ))
    .await;
    assert!(response(&mut c).await[0].starts_with("OK"));
    let caps = {
        c.send("CAPABILITY\r\n").await;
        response(&mut c).await.join("\n")
    };
    assert!(caps.contains("\"OWNER\" \"joe@example.org\""), "{caps}");

    c.send("HAVESPACE \"rules\" 50\r\n").await;
    assert!(response(&mut c).await[0].starts_with("OK"));
    c.send("HAVESPACE \"rules\" 5000\r\n").await;
    assert!(response(&mut c).await[0].starts_with("NO (QUOTA/MAXSIZE)"));
    c.send("PUTSCRIPT \"bad\" {14+}\r\nkeep;\r\nif true\r\n")
        .await;
    let r = response(&mut c).await;
    assert!(r[0].starts_with("NO") && r[0].contains("line "), "{r:?}");
    let big = "#".repeat(150);
    c.send(&format!(
        "PUTSCRIPT \"big\" {{{}+}}\r\n{big}\r\n",
        big.len()
    ))
    .await;
    assert!(response(&mut c).await[0].starts_with("NO (QUOTA/MAXSIZE)"));
    let script = "require \"fileinto\";\r\nfileinto \"Archive\";\r\n";
    c.send(&format!(
        "PUTSCRIPT \"rules\" {{{}+}}\r\n{script}\r\n",
        script.len()
    ))
    .await;
    assert!(
        response(&mut c).await[0].starts_with("OK"),
        "session went on"
    );
    c.send("CHECKSCRIPT \"require \\\"convert\\\"; convert \\\"image/png\\\" \\\"image/jpeg\\\" [\\\"pix-x=10\\\"];\"\r\n")
        .await;
    let r = response(&mut c).await;
    assert!(r[0].starts_with("NO") && r[0].contains("convert"), "{r:?}");
    c.send("SETACTIVE \"rules\"\r\nLISTSCRIPTS\r\n").await;
    assert!(response(&mut c).await[0].starts_with("OK"));
    let list = response(&mut c).await;
    assert_eq!(list[0], "\"rules\" ACTIVE", "{list:?}");
    c.send("GETSCRIPT \"rules\"\r\n").await;
    assert_eq!(c.line().await, format!("{{{}}}", script.len()));
    assert_eq!(c.line().await, "require \"fileinto\";");
    assert_eq!(c.line().await, "fileinto \"Archive\";");
    assert_eq!(c.line().await, "");
    assert!(c.line().await.starts_with("OK"));
    c.send("DELETESCRIPT \"rules\"\r\n").await;
    assert!(response(&mut c).await[0].starts_with("NO (ACTIVE)"));
    c.send("DELETESCRIPT \"none\"\r\n").await;
    assert!(response(&mut c).await[0].starts_with("NO (NONEXISTENT)"));
    c.send("RENAMESCRIPT \"rules\" \"filing\"\r\nLISTSCRIPTS\r\n")
        .await;
    assert!(response(&mut c).await[0].starts_with("OK"));
    assert_eq!(response(&mut c).await[0], "\"filing\" ACTIVE");
    c.send("NOOP \"t1\"\r\n").await;
    assert!(response(&mut c).await[0].starts_with("OK (TAG \"t1\")"));
    c.send("\"nonsense\r\nFROB\r\n").await;
    assert!(response(&mut c).await[0].starts_with("NO"));
    assert!(response(&mut c).await[0].starts_with("NO"));

    // The active script files deliveries into Archive... which does not
    // exist: the Inbox keeps it (no :create).
    deliver(&s, "filtered", "body").await;
    c.send("UNAUTHENTICATE\r\nLISTSCRIPTS\r\nLOGOUT\r\n").await;
    assert!(response(&mut c).await[0].starts_with("OK"));
    assert!(
        response(&mut c).await[0].starts_with("NO"),
        "not authenticated"
    );
    assert!(response(&mut c).await[0].starts_with("OK"));
}

fn sieve_connect(s: &TestServer, args: &[&str]) -> std::process::Output {
    use std::io::Write;
    let mut child = std::process::Command::new("sieve-connect")
        .args([
            "--server",
            "127.0.0.1",
            "--port",
            &s.addr("managesieve").port().to_string(),
            "--user",
            JOE,
            "--authmech",
            "PLAIN",
            "--passwordfd",
            "0",
            "--notlsverify",
        ])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("sieve-connect (cargo xtask setup installs it)");
    child.stdin.take().unwrap().write_all(b"pw\n").unwrap();
    child.wait_with_output().unwrap()
}

/// Debian's sieve-connect (STARTTLS, PLAIN): uploads, lists, activates,
/// downloads and deletes; the script it uploaded files the next delivery.
#[tokio::test]
async fn sieve_connect_manages_scripts() {
    let s = TestServer::start_with("[imap]\nauth-without-tls = true\n");
    s.account(JOE);
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("up.sieve");
    std::fs::write(
        &f,
        "require [\"fileinto\", \"mailbox\"];\nfileinto :create \"Filed\";\n",
    )
    .unwrap();
    let f = f.to_str().unwrap();
    let ok = |o: std::process::Output| {
        assert!(
            o.status.success(),
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    ok(sieve_connect(
        &s,
        &["--upload", "--localsieve", f, "--remotesieve", "up"],
    ));
    ok(sieve_connect(&s, &["--activate", "--remotesieve", "up"]));
    let list = ok(sieve_connect(&s, &["--list"]));
    assert!(list.contains("up") && list.contains("ACTIVE"), "{list}");
    let back = dir.path().join("back.sieve");
    ok(sieve_connect(
        &s,
        &[
            "--download",
            "--remotesieve",
            "up",
            "--localsieve",
            back.to_str().unwrap(),
        ],
    ));
    assert_eq!(
        std::fs::read_to_string(&back).unwrap(),
        std::fs::read_to_string(f).unwrap()
    );
    deliver(&s, "to be filed", "body").await;
    let filed = imap_fetch_mailbox(s.addr("imap"), JOE, "pw", "Filed").await;
    assert_eq!(filed.len(), 1);
    ok(sieve_connect(&s, &["--deactivate"]));
    ok(sieve_connect(&s, &["--delete", "--remotesieve", "up"]));
    assert_eq!(s.cli_ok(&["sieve", "list", JOE]), "");
}

/// Python's managesieve module (STARTTLS, PLAIN) as a second client.
#[tokio::test]
async fn python_managesieve_manages_scripts() {
    let s = TestServer::start_with("[imap]\nauth-without-tls = true\n");
    s.account(JOE);
    let out = run_python(
        "import sys, managesieve\n\
         m = managesieve.MANAGESIEVE('127.0.0.1', int(sys.argv[1]), use_tls=True, tls_verify=False)\n\
         print('auth', m.authenticate('PLAIN', 'joe@example.org', 'pw'))\n\
         print('put', m.putscript('flag', 'require \"imap4flags\";\\naddflag \"\\\\\\\\Flagged\";\\n'))\n\
         print('bad', m.putscript('bad', 'if {'))\n\
         print('active', m.setactive('flag'))\n\
         print('list', m.listscripts())\n\
         print('get', m.getscript('flag'))\n\
         m.logout()\n",
        &s,
        "managesieve",
    );
    assert!(out.contains("auth OK"), "{out}");
    assert!(out.contains("put OK"), "{out}");
    assert!(out.contains("bad NO"), "{out}");
    assert!(out.contains("list ('OK', [('flag', True)])"), "{out}");
    deliver(&s, "flag me", "body").await;
    let mut c = LineClient::connect(s.addr("imap")).await;
    c.line().await;
    c.send("a LOGIN joe@example.org pw\r\nb EXAMINE INBOX\r\nc FETCH 1 FLAGS\r\n")
        .await;
    let lines = c.imap_until("c").await.join("\n");
    assert!(lines.contains("\\Flagged"), "{lines}");
}

/// The edges of RFC 5804 §2: a failed PUTSCRIPT keeps the old script and
/// stores nothing (§2.6), an empty script is refused, `ihave` of an
/// unknown extension passes validation (§2.6, §2.12), SETACTIVE ""
/// with none active is OK (§2.8), the missing and the taken names
/// (§2.8-§2.11), NOOP without a tag has no TAG (§2.13), UNAUTHENTICATE
/// in the wrong state is a NO (§2.14.1), LOGIN with an initial response
/// is refused (§2.1), names of 128 four-octet characters fit (§1.6),
/// and after LOGOUT nothing more is answered (§2.3).
#[tokio::test]
async fn the_wire_protocol_edges() {
    let s = TestServer::start_with("[managesieve]\nauth-without-tls = true\n");
    s.account(JOE);
    let mut c = LineClient::connect(s.addr("managesieve")).await;
    response(&mut c).await;
    c.send("UNAUTHENTICATE\r\n").await;
    assert!(response(&mut c).await[0].starts_with("NO"));
    c.send(&format!("AUTHENTICATE \"LOGIN\" \"{}\"\r\n", b64(JOE)))
        .await;
    assert!(
        response(&mut c).await[0].starts_with("NO"),
        "LOGIN with an initial response"
    );
    c.send(&format!(
        "authenticate \"plain\" \"{}\"\r\n",
        b64("\0joe@example.org\0pw")
    ))
    .await;
    assert!(
        response(&mut c).await[0].starts_with("OK"),
        "commands are case-insensitive"
    );
    c.send(&format!(
        "AUTHENTICATE \"PLAIN\" \"{}\"\r\n",
        b64("\0joe@example.org\0pw")
    ))
    .await;
    assert!(response(&mut c).await[0].starts_with("NO"), "once only");

    c.send("SETACTIVE \"\"\r\n").await;
    assert!(
        response(&mut c).await[0].starts_with("OK"),
        "nothing active is not an error"
    );
    c.send("PUTSCRIPT \"a\" \"keep;\"\r\nPUTSCRIPT \"a\" \"if {\"\r\nPUTSCRIPT \"e\" \"\"\r\n")
        .await;
    assert!(response(&mut c).await[0].starts_with("OK"));
    assert!(response(&mut c).await[0].starts_with("NO"));
    assert!(
        response(&mut c).await[0].starts_with("NO"),
        "an empty script"
    );
    c.send("GETSCRIPT \"a\"\r\n").await;
    assert_eq!(c.line().await, "{5}");
    assert_eq!(c.line().await, "keep;");
    assert!(
        response(&mut c).await[0].starts_with("OK"),
        "the old script stayed"
    );
    c.send(
        "PUTSCRIPT \"maybe\" \"require \\\"ihave\\\"; if ihave \\\"x-unknown\\\" { keep; }\"\r\n",
    )
    .await;
    let r = response(&mut c).await;
    assert!(r[0].starts_with("OK"), "{r:?}");
    let long = "\u{10348}".repeat(128);
    c.send(&format!(
        "PUTSCRIPT {{{}+}}\r\n{long} \"keep;\"\r\n",
        long.len()
    ))
    .await;
    assert!(response(&mut c).await[0].starts_with("OK"));
    c.send("LISTSCRIPTS\r\n").await;
    let list = response(&mut c).await;
    assert_eq!(list.len(), 4, "a, maybe, the long one: {list:?}");
    assert!(!list.iter().any(|l| l.contains("ACTIVE")), "{list:?}");
    for cmd in [
        "SETACTIVE \"none\"",
        "GETSCRIPT \"none\"",
        "RENAMESCRIPT \"none\" \"b\"",
    ] {
        c.send(&format!("{cmd}\r\n")).await;
        let r = response(&mut c).await;
        assert!(r[0].starts_with("NO (NONEXISTENT)"), "{cmd}: {r:?}");
    }
    c.send("RENAMESCRIPT \"a\" \"maybe\"\r\n").await;
    assert!(response(&mut c).await[0].starts_with("NO (ALREADYEXISTS)"));
    c.send("NOOP\r\n").await;
    let r = response(&mut c).await;
    assert!(r[0].starts_with("OK") && !r[0].contains("TAG"), "{r:?}");
    c.send("LOGOUT\r\nNOOP\r\n").await;
    assert!(response(&mut c).await[0].starts_with("OK"));
    assert_eq!(c.line_opt().await, None, "closed after LOGOUT");

    // RFC 5228 §10: another user sees none of joe's scripts.
    s.account("bob@example.org");
    let mut b = LineClient::connect(s.addr("managesieve")).await;
    response(&mut b).await;
    b.send(&format!(
        "AUTHENTICATE \"PLAIN\" \"{}\"\r\nLISTSCRIPTS\r\nGETSCRIPT \"a\"\r\n",
        b64("\0bob@example.org\0pw")
    ))
    .await;
    assert!(response(&mut b).await[0].starts_with("OK"));
    assert_eq!(response(&mut b).await, ["OK \"Completed\""]);
    assert!(response(&mut b).await[0].starts_with("NO (NONEXISTENT)"));
}
