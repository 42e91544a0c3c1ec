//! End to end through the real network stack: a `petrel serve` process,
//! the petrel CLI, an SMTP client library (lettre) and an IMAP client
//! library (async-imap) over STARTTLS and implicit TLS.

mod common;

use std::sync::Arc;

use common::*;
use futures::TryStreamExt;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;

/// A TLS connector that trusts exactly the server's own certificate.
fn connector(server: &TestServer) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(server.data_dir().join("tls/cert.pem")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
}

type TlsImap = async_imap::Session<tokio_rustls::client::TlsStream<TcpStream>>;

async fn imaps_login(server: &TestServer, user: &str, pass: &str) -> TlsImap {
    let tcp = TcpStream::connect(server.addr("imaps")).await.unwrap();
    let tls = connector(server)
        .connect(ServerName::try_from("mx.test").unwrap(), tcp)
        .await
        .unwrap();
    let mut client = async_imap::Client::new(tls);
    client.read_response().await.unwrap().expect("greeting");
    client.login(user, pass).await.map_err(|(e, _)| e).unwrap()
}

async fn starttls_login(server: &TestServer, user: &str, pass: &str) -> TlsImap {
    let tcp = TcpStream::connect(server.addr("imap")).await.unwrap();
    let mut client = async_imap::Client::new(tcp);
    client.read_response().await.unwrap().expect("greeting");
    client
        .run_command_and_check_ok("STARTTLS", None)
        .await
        .unwrap();
    let tcp = client.into_inner();
    let tls = connector(server)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let client = async_imap::Client::new(tls);
    client.login(user, pass).await.map_err(|(e, _)| e).unwrap()
}

async fn lettre_send(
    server: &TestServer,
    from: &str,
    to: &str,
    subject: &str,
    body: &str,
) -> Result<(), lettre::transport::smtp::Error> {
    let addr = server.addr("smtp");
    let mailer = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(addr.ip().to_string())
        .port(addr.port())
        .build();
    let msg = Message::builder()
        .from(from.parse().unwrap())
        .to(to.parse().unwrap())
        .subject(subject)
        .body(body.to_string())
        .unwrap();
    mailer.send(msg).await.map(|_| ())
}

#[test]
fn first_start_creates_data_dir_and_prints_next_steps() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("fresh");
    let mut child = std::process::Command::new(petrel_bin())
        .args(["serve", "--data-dir"])
        .arg(&data)
        .env_remove("PETREL_ADMIN_PASSWORD")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The default config binds fixed ports that may be busy here; what we
    // check is written before binding, and the output if it did start.
    let mut out = String::new();
    let stdout = child.stdout.take().unwrap();
    let reader = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    let start = std::time::Instant::now();
    for line in reader {
        let line = line.unwrap();
        out.push_str(&line);
        out.push('\n');
        if line.starts_with("petrel: ready") || start.elapsed().as_secs() > 30 {
            break;
        }
    }
    let _ = child.kill();
    let status = child.wait().unwrap();
    if !out.contains("petrel: ready") {
        // A default port is busy on this machine: the failed first start
        // left nothing behind (tested on its own below).
        assert!(!status.success());
        assert!(!data.exists(), "a failed first start left {data:?}");
        return;
    }
    let cfg = std::fs::read_to_string(data.join("config.toml")).unwrap();
    assert!(
        cfg.contains("max-message-size = 52428800"),
        "every default is written out"
    );
    assert!(data.join("tls/cert.pem").exists() && data.join("tls/key.pem").exists());
    // The made-up admin password is kept where only the owner reads it.
    let pw_file = data.join("admin-password");
    let meta = std::fs::metadata(&pw_file).expect("admin-password written");
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
        0o600
    );
    let kept = std::fs::read_to_string(&pw_file).unwrap();
    if out.contains("petrel: ready") {
        assert!(out.contains(&format!("\n    {}", kept.trim())), "{out}");
    }
    // The default hostname, localhost, is no name other servers can use.
    assert!(
        out.contains("hostname `localhost` is not a fully qualified domain name"),
        "{out}"
    );
    if out.contains("petrel: ready") {
        assert!(
            out.contains("petrel: listening smtp 127.0.0.1:2525"),
            "{out}"
        );
        assert!(
            out.contains("petrel: listening imap 127.0.0.1:2143"),
            "{out}"
        );
        assert!(
            out.contains("Created the administrator account `admin`"),
            "{out}"
        );
        assert!(out.contains("domain create example.org"), "{out}");
        assert!(data.join("store").exists());
    } else {
        assert!(!status.success());
    }
}

#[test]
fn config_error_names_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        "hostname = \"x\"\n[smtp]\nmax-recipients = \"lots\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(petrel_bin())
        .args(["serve", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("config.toml"), "{err}");
    assert!(err.contains("line 3"), "{err}");
    assert!(err.contains("max-recipients"), "{err}");
}

/// A first start that fails once the store exists (a port in use) takes
/// back what it made: the next start is a first start again and prints
/// the administrator's password. The operator's own config stays.
#[test]
fn failed_first_start_leaves_nothing_half_made() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(
        &cfg,
        test_config("").replace(
            "smtp = [\"127.0.0.1:0\"]",
            &format!("smtp = [\"{}\"]", busy.local_addr().unwrap()),
        ),
    )
    .unwrap();
    let run = || {
        std::process::Command::new(petrel_bin())
            .args(["serve", "--data-dir"])
            .arg(dir.path())
            .env_remove("PETREL_ADMIN_PASSWORD")
            .env("PETREL_LOG", "warn")
            .output()
            .unwrap()
    };
    let out = run();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot listen on") && err.contains("for smtp"),
        "{err}"
    );
    for made in ["store", "blobs", "fts", "tls", "admin-password"] {
        assert!(!dir.path().join(made).exists(), "{made} left behind: {err}");
    }
    assert!(cfg.exists(), "the operator's configuration is kept");
    // Port free again: a real first start, with a password to show.
    drop(busy);
    std::fs::write(&cfg, test_config("")).unwrap();
    let mut child = std::process::Command::new(petrel_bin())
        .args(["serve", "--data-dir"])
        .arg(dir.path())
        .env_remove("PETREL_ADMIN_PASSWORD")
        .env("PETREL_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = String::new();
    for line in std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap())) {
        let line = line.unwrap();
        out.push_str(&line);
        out.push('\n');
        if line.starts_with("petrel: ready") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let pw = std::fs::read_to_string(dir.path().join("admin-password")).unwrap();
    assert!(
        out.contains("Created the administrator account `admin`"),
        "{out}"
    );
    assert!(out.contains(&format!("\n    {}", pw.trim())), "{out}");
}

#[test]
fn init_writes_production_config() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(petrel_bin())
        .args(["init", "--hostname", "mail.example.org", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let cfg = std::fs::read_to_string(dir.path().join("config.toml")).unwrap();
    assert!(cfg.contains("hostname = \"mail.example.org\""));
    assert!(cfg.contains("[::]:25") && cfg.contains("[::]:993") && cfg.contains("[::]:443"));
    // The management API is not on plain HTTP on every interface: port 80
    // only redirects, plain HTTP stays on loopback for the CLI.
    assert!(cfg.contains("http = [\"127.0.0.1:8080\"]"), "{cfg}");
    assert!(cfg.contains("http-redirect = [\"[::]:80\"]"), "{cfg}");
    // The systemd unit: hardened, and systemd itself finds nothing wrong.
    let unit_path = std::fs::canonicalize(dir.path())
        .unwrap()
        .join("petrel.service");
    let unit = std::fs::read_to_string(&unit_path).unwrap();
    for line in [
        "ProtectSystem=strict",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "NoNewPrivileges=true",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ] {
        assert!(unit.contains(line), "{line} missing:\n{unit}");
    }
    assert!(unit.contains(&format!(
        "ExecStart={} serve --data-dir {}",
        std::fs::canonicalize(petrel_bin()).unwrap().display(),
        unit_path.parent().unwrap().display()
    )));
    let verify = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit_path)
        .output();
    match verify {
        Ok(v) => assert!(
            v.status.success() && !String::from_utf8_lossy(&v.stderr).contains("petrel.service:"),
            "systemd-analyze: {}",
            String::from_utf8_lossy(&v.stderr)
        ),
        Err(e) => panic!("systemd-analyze (Debian's systemd) is needed: {e}"),
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("systemctl enable --now petrel"), "{stdout}");
    // A second init refuses to overwrite.
    let again = std::process::Command::new(petrel_bin())
        .args(["init", "--hostname", "x.org", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!again.status.success());
}

/// `serve --help` lists what serve uses, and every command of every group
/// says what it does.
#[test]
fn help_text_everywhere() {
    let help = |args: &[&str]| {
        let out = std::process::Command::new(petrel_bin())
            .args(args)
            .arg("--help")
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let serve = help(&["serve"]);
    assert!(
        serve.contains("--data-dir") && serve.contains("--config"),
        "{serve}"
    );
    assert!(
        !serve.contains("--url") && !serve.contains("--credentials"),
        "serve does not use the API options:\n{serve}"
    );
    for group in [
        vec![],
        vec!["admin"],
        vec!["domain"],
        vec!["account"],
        vec!["group"],
        vec!["queue"],
        vec!["dkim"],
        vec!["search"],
        vec!["security"],
        vec!["dns"],
    ] {
        let text = help(&group);
        let commands = text
            .split("Commands:")
            .nth(1)
            .and_then(|t| t.split("\n\n").next())
            .unwrap_or_else(|| panic!("{group:?}: no commands in\n{text}"));
        for line in commands.lines().filter(|l| !l.trim().is_empty()) {
            let words: Vec<&str> = line.split_whitespace().collect();
            assert!(
                words.len() >= 2,
                "{group:?}: `{}` has no help text",
                line.trim()
            );
        }
    }
}

/// The `http-redirect` listener (port 80 in production) sends every
/// request to https, keeping path and query, and answers nothing itself
/// but ACME challenges (none pending).
#[test]
fn http_redirect_listener_sends_to_https() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = test_config("").replace(
        "http = [\"127.0.0.1:0\"]",
        "http = [\"127.0.0.1:0\"]\nhttps = [\"127.0.0.1:0\"]\nhttp-redirect = [\"127.0.0.1:0\"]",
    );
    std::fs::write(dir.path().join("config.toml"), cfg).unwrap();
    let s = TestServer::start_in(dir);
    let r = http_get(s.addr("http-redirect"), "/api/domains?x=1");
    assert!(r.starts_with("HTTP/1.1 308"), "{r}");
    let location = format!(
        "location: https://x:{}/api/domains?x=1",
        s.addr("https").port()
    );
    assert!(
        r.to_ascii_lowercase().contains(&location),
        "{location}: {r}"
    );
    // Nothing of the API answers in the clear there.
    assert!(!r.contains("\"error\""), "{r}");
    let r = http_get(s.addr("http-redirect"), "/.well-known/acme-challenge/abc");
    assert!(r.starts_with("HTTP/1.1 404"), "{r}");
}

#[test]
fn cli_manages_domains_accounts_aliases_and_groups() {
    let s = TestServer::start();
    assert!(s
        .cli_ok(&["domain", "create", "Example.ORG"])
        .contains("example.org"));
    assert!(s.cli_ok(&["domain", "list"]).contains("example.org"));
    s.cli_ok(&[
        "account",
        "create",
        "joe@example.org",
        "--secret",
        "pw",
        "--name",
        "Joe",
        "--alias",
        "j@example.org",
        "--quota",
        "1000000",
    ]);
    let shown = s.cli_ok(&["account", "show", "joe@example.org"]);
    assert!(
        shown.contains("\"quota_bytes\": 1000000") && shown.contains("j@example.org"),
        "{shown}"
    );
    assert!(s.cli_ok(&["account", "list"]).contains("joe@example.org"));
    s.cli_ok(&["group", "create", "team@example.org"]);
    s.cli_ok(&["group", "add-member", "team@example.org", "joe@example.org"]);
    assert!(s.cli_ok(&["group", "list"]).contains("joe@example.org"));

    // Errors are sentences with a non-zero exit code.
    let dup = s.cli(&["account", "create", "joe@example.org", "--secret", "x"]);
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("already in use"));
    let nodomain = s.cli(&["account", "create", "a@nowhere.org", "--secret", "x"]);
    assert!(String::from_utf8_lossy(&nodomain.stderr).contains("not a local domain"));
    let busy = s.cli(&["domain", "delete", "example.org"]);
    assert!(!busy.status.success());
    let badauth = std::process::Command::new(petrel_bin())
        .args([
            "--url",
            &s.api(),
            "--credentials",
            "admin:wrong",
            "domain",
            "list",
        ])
        .output()
        .unwrap();
    assert!(!badauth.status.success());
    assert!(String::from_utf8_lossy(&badauth.stderr).contains("401"));
    let nocreds = std::process::Command::new(petrel_bin())
        .args(["--url", &s.api(), "domain", "list"])
        .env_remove("PETREL_CREDENTIALS")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&nocreds.stderr).contains("PETREL_CREDENTIALS"));
    // A wrong --url gets a sentence about --url, not a library's words.
    let imap_url = format!("http://{}", s.addr("imap"));
    let tls_to_plain = format!("https://{}", s.addr("http"));
    for (url, says) in [
        ("127.0.0.1:8080", "is not the address of the management API"),
        (tls_to_plain.as_str(), "does not speak TLS"),
        ("http://127.0.0.1:1", "nothing answers at"),
        (imap_url.as_str(), "does not answer in HTTP"),
    ] {
        let out = std::process::Command::new(petrel_bin())
            .args(["--url", url, "domain", "list"])
            .env("PETREL_CREDENTIALS", format!("admin:{ADMIN_PASSWORD}"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(says), "{url}: {err}");
    }
    // A 401 says which scheme to use (RFC 9110 §11.6.1).
    let raw = http_get(s.addr("http"), "/api/domains").to_ascii_lowercase();
    assert!(raw.starts_with("http/1.1 401"), "{raw}");
    assert!(
        raw.contains("www-authenticate: basic realm=\"petrel\""),
        "{raw}"
    );
    // A mail account needs an address; a bare name is for administrators.
    let bare = s.cli(&[
        "account",
        "create",
        "notanaddress",
        "--secret",
        "plum vortex tangerine",
    ]);
    assert!(!bare.status.success());
    assert!(
        String::from_utf8_lossy(&bare.stderr).contains("is not an address (local@domain)"),
        "{bare:?}"
    );
    // The password from standard input, not the command line.
    let stdin = |args: &[&str], input: &str| {
        use std::io::Write;
        let mut child = std::process::Command::new(petrel_bin())
            .arg("--url")
            .arg(s.api())
            .args(args)
            .env("PETREL_CREDENTIALS", format!("admin:{ADMIN_PASSWORD}"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let made = stdin(
        &["account", "create", "in@example.org", "--secret-stdin"],
        "from stdin 42\n",
    );
    assert!(made.status.success(), "{made:?}");
    let empty = stdin(
        &["account", "update", "in@example.org", "--secret-stdin"],
        "\n",
    );
    assert!(
        String::from_utf8_lossy(&empty.stderr).contains("no password"),
        "{empty:?}"
    );
    s.cli_ok(&["account", "delete", "in@example.org"]);

    s.cli_ok(&["group", "delete", "team@example.org"]);
    s.cli_ok(&["account", "delete", "joe@example.org"]);
    s.cli_ok(&["domain", "delete", "example.org"]);
    assert!(!s.cli_ok(&["domain", "list"]).contains("example.org"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_to_imap_with_client_libraries() {
    let s = TestServer::start();
    s.account("joe@example.org");
    lettre_send(
        &s,
        "alice@remote.test",
        "joe@example.org",
        "Hello Joe",
        "First message body",
    )
    .await
    .unwrap();

    // STARTTLS on the IMAP port, certificate verified against the server's.
    let mut imap = starttls_login(&s, "joe@example.org", "pw").await;
    let mb = imap.select("INBOX").await.unwrap();
    assert_eq!(mb.exists, 1);
    let fetched: Vec<_> = imap
        .fetch("1", "(UID FLAGS ENVELOPE BODY.PEEK[] RFC822.SIZE)")
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(fetched.len(), 1);
    let body = String::from_utf8_lossy(fetched[0].body().unwrap()).into_owned();
    assert!(
        body.starts_with("Return-Path: <alice@remote.test>\r\nAuthentication-Results: mx.test;"),
        "{body}"
    );
    assert!(body.contains("\r\nReceived: from "), "{body}");
    assert!(body.contains("First message body"));
    let env = fetched[0].envelope().unwrap();
    assert_eq!(env.subject.as_deref(), Some(&b"Hello Joe"[..]));
    assert_eq!(fetched[0].size, Some(body.len() as u32));
    // PEEK does not set \Seen; the new message is \Recent in this
    // IMAP4rev1 session (RFC 3501 §2.3.2).
    let flags: Vec<_> = fetched[0].flags().collect();
    assert_eq!(flags, vec![async_imap::types::Flag::Recent], "{flags:?}");

    // Implicit TLS, a second session; flag changes and expunge.
    let mut other = imaps_login(&s, "joe@example.org", "pw").await;
    other.select("INBOX").await.unwrap();
    let _: Vec<_> = other
        .store("1", "+FLAGS (\\Flagged \\Deleted)")
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let f: Vec<_> = imap
        .fetch("1", "FLAGS")
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let flags: Vec<String> = f
        .iter()
        .flat_map(|m| m.flags().map(|f| format!("{f:?}")))
        .collect();
    assert!(flags.iter().any(|f| f.contains("Flagged")), "{flags:?}");
    let gone: Vec<_> = other.expunge().await.unwrap().try_collect().await.unwrap();
    assert_eq!(gone, vec![1]);
    other.logout().await.unwrap();
    let mb = imap.select("INBOX").await.unwrap();
    assert_eq!(mb.exists, 0);
    imap.logout().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aliases_groups_and_catch_all_deliver() {
    let s = TestServer::start();
    s.account("joe@example.org");
    s.account("ann@example.org");
    s.cli_ok(&[
        "account",
        "add-alias",
        "joe@example.org",
        "joseph@example.org",
    ]);
    s.cli_ok(&["group", "create", "all@example.org"]);
    s.cli_ok(&["group", "add-member", "all@example.org", "joe@example.org"]);
    s.cli_ok(&["group", "add-member", "all@example.org", "ann@example.org"]);
    let smtp = s.addr("smtp");
    assert!(smtp_send(
        smtp,
        "x@remote.test",
        &["joseph@example.org"],
        "Subject: alias\r\n\r\nvia alias"
    )
    .await
    .starts_with("250"));
    // Joe is reached twice (group and direct) but gets one copy.
    assert!(smtp_send(
        smtp,
        "x@remote.test",
        &["all@example.org", "joe@example.org"],
        "Subject: group\r\n\r\nto all"
    )
    .await
    .starts_with("250"));
    assert!(
        smtp_send(smtp, "x@remote.test", &["nobody@example.org"], "")
            .await
            .starts_with("550 5.1.1")
    );
    s.cli_ok(&["domain", "catch-all", "example.org", "ann@example.org"]);
    assert!(smtp_send(
        smtp,
        "x@remote.test",
        &["nobody@example.org"],
        "Subject: catch\r\n\r\ncaught"
    )
    .await
    .starts_with("250"));

    let mut joe = imaps_login(&s, "joe@example.org", "pw").await;
    assert_eq!(joe.select("INBOX").await.unwrap().exists, 2);
    let mut ann = imaps_login(&s, "ann@example.org", "pw").await;
    assert_eq!(ann.select("INBOX").await.unwrap().exists, 2);
    // A user sees only its own mail.
    let all: Vec<_> = ann
        .fetch("1:*", "BODY.PEEK[HEADER.FIELDS (SUBJECT)]")
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let subjects: Vec<String> = all
        .iter()
        .map(|m| {
            String::from_utf8_lossy(m.header().unwrap())
                .trim()
                .to_string()
        })
        .collect();
    assert_eq!(subjects, vec!["Subject: group", "Subject: catch"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_is_enforced_at_delivery() {
    let s = TestServer::start();
    s.account("joe@example.org");
    // A 1,000-octet body and the fields Petrel adds (trace, results,
    // spam verdict) fit once, not twice.
    s.cli_ok(&["account", "update", "joe@example.org", "--quota", "2200"]);
    let smtp = s.addr("smtp");
    let big = format!("Subject: big\r\n\r\n{}", "x".repeat(1000));
    assert!(smtp_send(smtp, "a@r.test", &["joe@example.org"], &big)
        .await
        .starts_with("250"));
    // The second would exceed 2200 bytes: refused at DATA, nothing stored.
    assert!(smtp_send(smtp, "a@r.test", &["joe@example.org"], &big)
        .await
        .starts_with("452 4.2.2"));
    let shown = s.cli_ok(&["account", "show", "joe@example.org"]);
    assert!(shown.contains("\"messages\": 1"), "{shown}");
}

/// The way back in when the administrator's password is lost: `petrel
/// admin reset-password` on the stopped server's data directory (it
/// refuses while the server runs); the account list marks disabled
/// accounts under a header; `account update --role`.
#[test]
fn admin_password_reset_offline_and_account_list() {
    let s = TestServer::start();
    s.account("joe@example.org");
    s.cli_ok(&["account", "update", "joe@example.org", "--disabled"]);
    let list = s.cli_ok(&["account", "list"]);
    assert!(list.starts_with("ADDRESS\tROLE\tSTATE"), "{list}");
    assert!(
        list.lines()
            .any(|l| l.starts_with("joe@example.org\tuser\tDISABLED")),
        "{list}"
    );
    s.cli_ok(&[
        "account",
        "update",
        "joe@example.org",
        "--enabled",
        "--role",
        "admin",
    ]);
    assert!(s
        .cli_ok(&["account", "list"])
        .contains("joe@example.org\tadmin\tenabled"));
    let reset = |dir: &std::path::Path, input: Option<&str>| {
        use std::io::Write;
        let mut c = std::process::Command::new(petrel_bin());
        c.args(["admin", "reset-password", "--data-dir"]).arg(dir);
        if input.is_some() {
            c.arg("--secret-stdin");
        }
        let mut child = c
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(i) = input {
            child.stdin.take().unwrap().write_all(i.as_bytes()).unwrap();
        }
        child.wait_with_output().unwrap()
    };
    // While the server runs, the store is in use: refused, saying why.
    let busy = reset(s.data_dir(), None);
    assert!(!busy.status.success());
    assert!(
        String::from_utf8_lossy(&busy.stderr).contains("stop it first"),
        "{busy:?}"
    );
    let dir = s.kill_keep_dir();
    let out = reset(dir.path(), None);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let pw = text
        .split("has a new password: ")
        .nth(1)
        .and_then(|r| r.lines().next())
        .unwrap_or_else(|| panic!("{text}"))
        .to_string();
    let out = reset(dir.path(), Some("a new admin passphrase here\n"));
    assert!(out.status.success(), "{out:?}");
    let s = TestServer::start_in(dir);
    let api = |creds: &str| {
        std::process::Command::new(petrel_bin())
            .args(["--url", &s.api(), "domain", "list"])
            .env("PETREL_CREDENTIALS", creds)
            .output()
            .unwrap()
            .status
            .success()
    };
    assert!(api("admin:a new admin passphrase here"));
    assert!(
        !api(&format!("admin:{pw}")),
        "the first reset's password was replaced"
    );
    assert!(!api(&format!("admin:{ADMIN_PASSWORD}")));
}

/// `/healthz` and `/readyz` answer without credentials: the process is
/// up, and the store takes a synced write.
#[test]
fn health_and_readiness_need_no_credentials() {
    let s = TestServer::start();
    let get = |path: &str| http_get(s.addr("http"), path);
    let h = get("/healthz");
    assert!(h.starts_with("HTTP/1.1 200"), "{h}");
    assert!(h.contains("{\"status\":\"ok\"}"), "{h}");
    let r = get("/readyz");
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert!(
        r.contains("\"status\":\"ready\"") && r.contains("\"store\":\"ok\""),
        "{r}"
    );
    // The API itself still wants credentials.
    assert!(get("/api/domains").starts_with("HTTP/1.1 401"));
}

/// The certificate the server presents on `addr` to a client asking for
/// `name` and trusting only the CA in `ca` (the handshake must succeed).
async fn presented_cert(addr: std::net::SocketAddr, ca: &std::path::Path, name: &str) -> Vec<u8> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let tls = connector_trusting(&std::fs::read(ca).unwrap())
        .connect(ServerName::try_from(name.to_string()).unwrap(), tcp)
        .await
        .unwrap_or_else(|e| panic!("TLS for {name} on {addr}: {e}"));
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

/// `[[tls.sni]]`: a client asking for a hosted domain's name gets that
/// domain's certificate (RFC 6186 §5: several domains on one address need
/// SNI), anyone else the default; a name the certificate does not cover
/// stops the start with a sentence saying so.
#[tokio::test]
async fn certificates_are_chosen_by_sni() {
    let dir = tempfile::tempdir().unwrap();
    let (main_dir, other_dir) = (dir.path().join("main"), dir.path().join("other"));
    std::fs::create_dir_all(&main_dir).unwrap();
    std::fs::create_dir_all(&other_dir).unwrap();
    let main = common::pki::issue(&main_dir, &["mx.test"]);
    let other = common::pki::issue(&other_dir, &["example.org", "mta-sts.example.org"]);
    let sni = |names: &str| {
        format!(
            "[tls]\ncertificate = \"{}\"\nprivate-key = \"{}\"\n[[tls.sni]]\nnames = [{names}]\ncertificate = \"{}\"\nprivate-key = \"{}\"\n",
            main.chain.display(),
            main.key.display(),
            other.chain.display(),
            other.key.display()
        )
    };
    let s = TestServer::start_with(&sni("\"example.org\", \"MTA-STS.example.org\""));
    assert_eq!(
        presented_cert(s.addr("imaps"), &other.ca, "example.org").await,
        other.cert_der
    );
    assert_eq!(
        presented_cert(s.addr("imaps"), &other.ca, "mta-sts.example.org").await,
        other.cert_der
    );
    assert_eq!(
        presented_cert(s.addr("imaps"), &main.ca, "mx.test").await,
        main.cert_der
    );
    // RFC 8461 §7.1: a client that sends no SNI at all still gets a
    // handshake, with the default certificate.
    let shown = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl s_client -connect {} -noservername </dev/null 2>/dev/null | openssl x509 -outform DER",
            s.addr("imaps")
        ))
        .output()
        .unwrap();
    assert_eq!(
        shown.stdout, main.cert_der,
        "no SNI: the default certificate"
    );
    drop(s);

    let data = tempfile::tempdir().unwrap();
    std::fs::write(
        data.path().join("config.toml"),
        test_config(&sni("\"nothere.org\"")),
    )
    .unwrap();
    let out = std::process::Command::new(petrel_bin())
        .args(["serve", "--data-dir"])
        .arg(data.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("tls.sni") && err.contains("nothere.org"),
        "{err}"
    );
}

/// RFC 6186 §6 (and RFC 8314): no SSL 2.0. An SSLv2-style ClientHello on
/// the implicit-TLS port gets no ServerHello, only an alert or the end of
/// the connection.
#[tokio::test]
async fn ssl2_hello_is_refused() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = TestServer::start();
    let mut tcp = TcpStream::connect(s.addr("imaps")).await.unwrap();
    // SSLv2 record: 2-byte length with the high bit, CLIENT-HELLO (1),
    // version 0.2, cipher-specs length 3, session-id 0, challenge 16.
    let mut hello = vec![
        0x80, 0x00, 0x01, 0x00, 0x02, 0x00, 0x03, 0x00, 0x00, 0x00, 0x10,
    ];
    hello.extend_from_slice(&[0x01, 0x00, 0x80]);
    hello.extend_from_slice(&[0x42; 16]);
    hello[1] = (hello.len() - 2) as u8;
    tcp.write_all(&hello).await.unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(std::time::Duration::from_secs(10), tcp.read(&mut buf))
        .await
        .expect("the server answers or closes")
        .unwrap_or(0);
    assert!(
        n == 0 || buf[0] == 0x15,
        "expected an alert or EOF, got {:02x?}",
        &buf[..n]
    );
}

/// SIGHUP reads the certificate files again: new handshakes on every
/// listener get the new certificate, without a restart; a broken file
/// leaves the old one in use and says so in the log.
#[tokio::test]
async fn sighup_reloads_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let (live, next) = (dir.path().join("live"), dir.path().join("next"));
    std::fs::create_dir_all(&live).unwrap();
    std::fs::create_dir_all(&next).unwrap();
    let first = common::pki::issue(&live, &["mx.test"]);
    let second = common::pki::issue(&next, &["mx.test"]);
    let s = TestServer::start_logging(&format!(
        "[tls]\ncertificate = \"{}\"\nprivate-key = \"{}\"\n",
        first.chain.display(),
        first.key.display()
    ));
    assert_eq!(
        presented_cert(s.addr("imaps"), &first.ca, "mx.test").await,
        first.cert_der
    );
    // Renewed files in place (as a certificate tool writes them), then
    // SIGHUP.
    std::fs::copy(&second.chain, &first.chain).unwrap();
    std::fs::copy(&second.key, &first.key).unwrap();
    let hup = |pid: u32| {
        assert!(std::process::Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .unwrap()
            .success())
    };
    hup(s.child.id());
    assert!(s
        .log_until("TLS certificates reloaded")
        .contains("TLS certificates reloaded"));
    for listener in ["imaps", "submissions", "pop3s"] {
        assert_eq!(
            presented_cert(s.addr(listener), &second.ca, "mx.test").await,
            second.cert_der,
            "{listener}"
        );
    }
    // A broken key: the certificate in use stays.
    std::fs::write(&first.key, "not a key").unwrap();
    hup(s.child.id());
    assert!(s
        .log_until("TLS certificates not reloaded")
        .contains("the old ones stay in use"));
    assert_eq!(
        presented_cert(s.addr("imaps"), &second.ca, "mx.test").await,
        second.cert_der
    );
}

/// The CLI administers a server over its https listener (the production
/// layout `petrel init` writes): the certificate is checked against
/// `--ca-file` (or the system's roots), and a certificate it cannot check
/// stops it with a sentence naming `--ca-file`.
#[test]
fn cli_speaks_https_with_a_checked_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = common::pki::issue(tmp.path(), &["127.0.0.1"]);
    let s = TestServer::start_https(&pki, "");
    let url = format!("https://127.0.0.1:{}", s.addr("https").port());
    let run = |ca: Option<&std::path::Path>, args: &[&str]| {
        let mut c = std::process::Command::new(petrel_bin());
        c.arg("--url").arg(&url);
        if let Some(ca) = ca {
            c.arg("--ca-file").arg(ca);
        }
        c.args(args)
            .env("PETREL_CREDENTIALS", format!("admin:{ADMIN_PASSWORD}"))
            .env_remove("PETREL_CA_FILE")
            .output()
            .unwrap()
    };
    let made = run(Some(&pki.ca), &["domain", "create", "over-https.test"]);
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    assert!(s.cli_ok(&["domain", "list"]).contains("over-https.test"));
    let refused = run(None, &["domain", "list"]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && err.contains("--ca-file"),
        "{err}"
    );
}
