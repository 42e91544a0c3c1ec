//! MTA-STS (RFC 8461) end to end: Petrel B publishes a policy on its HTTPS
//! listener and presents a certificate from a test CA; Petrel A looks up
//! the TXT record in dnsmasq, fetches the policy with a checked
//! certificate, and delivers only to matching MX hosts over checked TLS.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::dns::{Dns, Rec};
use common::*;

const OPEN: &str = "[smtp]\nauth-without-tls = true\n[imap]\nauth-without-tls = true\n";

async fn submit_to(s: &TestServer, to: &str) {
    let body = format!("Subject: to {to}\r\n\r\nx");
    let r = submit(s, "joe@example.org", &[to], &body).await;
    assert!(r.starts_with("250"), "{r}");
}

#[tokio::test]
async fn policies_are_fetched_and_enforced() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = common::pki::issue(
        tmp.path(),
        &[
            "mx.remote.test",
            "mta-sts.remote.test",
            "mta-sts.strict.test",
            "mta-sts.badcert.test",
        ],
    );
    // B: the receiving MX, publishing an enforce policy.
    let b_dir = tempfile::tempdir().unwrap();
    let b_cfg = test_config(&format!(
        "{OPEN}[tls]\ncertificate = \"{}\"\nprivate-key = \"{}\"\n[mta-sts]\nmode = \"enforce\"\nmx = [\"mx.remote.test\", \"*.badcert.test\"]\nmax-age = 86400\n",
        pki.cert.display(),
        pki.key.display()
    ))
    .replace("http = [\"127.0.0.1:0\"]", "http = [\"127.0.0.1:0\"]\nhttps = [\"127.0.0.1:0\"]");
    std::fs::write(b_dir.path().join("config.toml"), b_cfg).unwrap();
    let b = TestServer::start_in(b_dir);
    b.account("bob@remote.test");
    let dns = Dns::start(&[
        Rec::Mx("remote.test", "mx.remote.test", 10),
        Rec::Mx("strict.test", "mx.strict.test", 10),
        Rec::Mx("badcert.test", "mx.badcert.test", 10),
        Rec::A("mx.remote.test", "127.0.0.1"),
        Rec::A("mx.strict.test", "127.0.0.1"),
        Rec::A("mx.badcert.test", "127.0.0.1"),
        Rec::A("mta-sts.remote.test", "127.0.0.1"),
        Rec::A("mta-sts.strict.test", "127.0.0.1"),
        Rec::A("mta-sts.badcert.test", "127.0.0.1"),
        Rec::Txt("_mta-sts.remote.test".into(), "v=STSv1; id=1".into()),
        Rec::Txt("_mta-sts.strict.test".into(), "v=STSv1; id=1".into()),
        Rec::Txt("_mta-sts.badcert.test".into(), "v=STSv1; id=1".into()),
    ]);
    let a = TestServer::start_with(&format!(
        "{OPEN}{}[tls]\nextra-ca = \"{}\"\n[queue]\nmx-port = {}\nmta-sts-port = {}\nretry = [1]\n",
        dns.resolver_toml(),
        pki.ca.display(),
        b.addr("smtp").port(),
        b.addr("https").port()
    ));
    a.account("joe@example.org");

    // The published policy, as any client sees it.
    let policy = http_get(&format!(
        "http://{}/.well-known/mta-sts.txt",
        b.addr("http")
    ));
    assert!(
        policy.contains("mode: enforce") && policy.contains("mx: mx.remote.test"),
        "{policy}"
    );

    // 1. Matching MX with a valid certificate: delivered over TLS.
    submit_to(&a, "bob@remote.test").await;
    let got = wait_for_mail(b.addr("imap"), "bob@remote.test", 1).await;
    let text = String::from_utf8_lossy(&got[0]);
    assert!(text.contains("with ESMTPS"), "{text}");

    // 2. The MX is not in the policy: not delivered.
    submit_to(&a, "bob@strict.test").await;
    // 3. The MX matches but its certificate does not name it: not delivered.
    submit_to(&a, "bob@badcert.test").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let errs = a.queued_errors();
        if errs.contains("4.7.5 No MX host of strict.test matches its MTA-STS policy")
            && errs.contains("(certificate checked)")
        {
            break;
        }
        assert!(Instant::now() < deadline, "{errs}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(
        imap_fetch_all(b.addr("imap"), "bob@remote.test", "pw")
            .await
            .len(),
        1
    );
}

fn http_get(url: &str) -> String {
    let out = std::process::Command::new("curl")
        .args(["-s", "-D", "-", url])
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A policy host for one test: HTTPS with the test CA's certificate,
/// answering each `Host` with the HTTP response the test sets (or the
/// default policy) and counting fetches per host.
struct PolicyHost {
    addr: std::net::SocketAddr,
    fetches: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    policy: std::sync::Arc<std::sync::Mutex<String>>,
    answers: std::sync::Arc<std::sync::Mutex<HashMap<String, String>>>,
    per_host: std::sync::Arc<std::sync::Mutex<HashMap<String, usize>>>,
}

impl PolicyHost {
    /// `mta-sts.DOMAIN` answers with this whole HTTP response.
    fn answer(&self, domain: &str, response: &str) {
        self.answers
            .lock()
            .unwrap()
            .insert(format!("mta-sts.{domain}"), response.to_string());
    }

    /// `mta-sts.DOMAIN` serves this policy as text/plain.
    fn serve(&self, domain: &str, policy: &str) {
        self.answer(domain, &ok_plain(policy));
    }

    fn fetches_of(&self, domain: &str) -> usize {
        let host = format!("mta-sts.{domain}");
        self.per_host
            .lock()
            .unwrap()
            .get(&host)
            .copied()
            .unwrap_or(0)
    }
}

fn ok_plain(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

async fn policy_host(pki: &common::pki::TestPki, policy: &str) -> PolicyHost {
    use std::sync::atomic::Ordering;
    use tokio::io::AsyncWriteExt;
    let acceptor = tokio_rustls::TlsAcceptor::from(pki.server_config());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = PolicyHost {
        addr: listener.local_addr().unwrap(),
        fetches: Default::default(),
        policy: std::sync::Arc::new(std::sync::Mutex::new(policy.to_string())),
        answers: Default::default(),
        per_host: Default::default(),
    };
    let (fetches, policy) = (host.fetches.clone(), host.policy.clone());
    let (answers, per_host) = (host.answers.clone(), host.per_host.clone());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let Ok(mut tls) = acceptor.accept(tcp).await else {
                continue;
            };
            let req = read_http_head(&mut tls).await;
            if !req.starts_with(b"GET /.well-known/mta-sts.txt ") {
                continue;
            }
            let head = String::from_utf8_lossy(&req).to_ascii_lowercase();
            let name = head
                .lines()
                .find_map(|l| l.strip_prefix("host:"))
                .map(|h| h.trim().to_string())
                .unwrap_or_default();
            fetches.fetch_add(1, Ordering::SeqCst);
            *per_host.lock().unwrap().entry(name.clone()).or_default() += 1;
            let answer = answers
                .lock()
                .unwrap()
                .get(&name)
                .cloned()
                .unwrap_or_else(|| ok_plain(&policy.lock().unwrap()));
            let _ = tls.write_all(answer.as_bytes()).await;
            let _ = tls.shutdown().await;
        }
    });
    host
}

/// RFC 8461 §5.1: a fetched policy is used from the cache while the TXT
/// record's id stays the same; a new id means fetching it again.
#[tokio::test]
async fn policies_are_cached_until_their_id_changes() {
    use std::sync::atomic::Ordering;
    let tmp = tempfile::tempdir().unwrap();
    let pki = common::pki::issue(tmp.path(), &["mx.remote.test", "mta-sts.remote.test"]);
    let b = TestServer::start_with_cert(OPEN, &pki);
    b.account("bob@remote.test");
    let host = policy_host(
        &pki,
        "version: STSv1\r\nmode: enforce\r\nmx: mx.remote.test\r\nmax_age: 86400\r\n",
    )
    .await;
    let zone = |id: u32| {
        vec![
            Rec::Mx("remote.test", "mx.remote.test", 10),
            Rec::A("mx.remote.test", "127.0.0.1"),
            Rec::A("mta-sts.remote.test", "127.0.0.1"),
            Rec::Txt("_mta-sts.remote.test".into(), format!("v=STSv1; id={id}")),
        ]
    };
    let port = common::port::free_port();
    let dns = Dns::start_at(&zone(1), port);
    let a = TestServer::start_with(&format!(
        "{OPEN}{}[tls]\nextra-ca = \"{}\"\n[queue]\nmx-port = {}\nmta-sts-port = {}\nretry = [1]\n",
        dns.resolver_toml(),
        pki.ca.display(),
        b.addr("smtp").port(),
        host.addr.port()
    ));
    a.account("joe@example.org");

    // Two messages, one fetch: the second uses the cached policy.
    for n in 1..=2 {
        submit_to(&a, "bob@remote.test").await;
        wait_for_mail(b.addr("imap"), "bob@remote.test", n).await;
    }
    assert_eq!(host.fetches.load(Ordering::SeqCst), 1);

    // A new policy that no longer lists the MX, announced by a new id:
    // fetched again and enforced.
    *host.policy.lock().unwrap() =
        "version: STSv1\r\nmode: enforce\r\nmx: other.remote.test\r\nmax_age: 86400\r\n".into();
    drop(dns);
    let dns = Dns::start_at(&zone(2), port);
    submit_to(&a, "bob@remote.test").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let errs = a.queued_errors();
        if errs.contains("4.7.5 No MX host of remote.test matches its MTA-STS policy") {
            break;
        }
        assert!(Instant::now() < deadline, "{errs}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(host.fetches.load(Ordering::SeqCst), 2);
    assert_eq!(
        imap_fetch_all(b.addr("imap"), "bob@remote.test", "pw")
            .await
            .len(),
        2
    );
    drop(dns);
}

/// A policy naming only an MX that does not exist: where it counts, mail
/// is held (4.7.5); where it does not, mail is delivered.
const BLOCK: &str = "version: STSv1\r\nmode: enforce\r\nmx: elsewhere.test\r\nmax_age: 86400\r\n";

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

async fn wait_held(a: &TestServer, needles: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let errs = a.queued_errors();
        if needles.iter().all(|n| errs.contains(n.as_str())) {
            return;
        }
        assert!(Instant::now() < deadline, "{needles:?} in\n{errs}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// RFC 8461 §3.1-§3.4 sentence by sentence: which TXT records and which
/// answers of the policy host make a policy, and which do not.
#[tokio::test]
async fn records_and_answers_that_do_and_do_not_make_a_policy() {
    // Held: the policy counts.
    let held = ["other.test", "split.test", "cname.test"];
    // Delivered: no policy counts.
    let delivered = [
        "two.test",
        "order.test",
        "ascii.test",
        "redirect.test",
        "html.test",
        "big.test",
        "missing.test",
        "dup.test",
        "sub.parent.test",
    ];
    let all: Vec<&str> = held.iter().chain(&delivered).copied().collect();
    let tmp = tempfile::tempdir().unwrap();
    let mut names = Vec::new();
    for d in all.iter().chain(&["parent.test"]) {
        names.push(format!("mx.{d}"));
        names.push(format!("mta-sts.{d}"));
    }
    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let pki = common::pki::issue(tmp.path(), &name_refs);
    let b = TestServer::start_with_cert(OPEN, &pki);
    for d in &all {
        b.account(&format!("bob@{d}"));
    }
    let host = policy_host(&pki, BLOCK).await;
    // §3.3: redirects are not followed (the target would serve BLOCK).
    host.answer(
        "redirect.test",
        "HTTP/1.1 301 Moved Permanently\r\nLocation: https://mta-sts.other.test/.well-known/mta-sts.txt\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    // §3.2: only text/plain.
    host.answer(
        "html.test",
        &ok_plain(BLOCK).replace("text/plain", "text/html"),
    );
    // §3.3: at most 64 KB.
    host.serve(
        "big.test",
        &format!("{BLOCK}padding: {}\r\n", "x".repeat(70_000)),
    );
    host.answer(
        "missing.test",
        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    // §3.2: of a repeated field the first counts (mode: testing).
    host.serve(
        "dup.test",
        "version: STSv1\r\nmode: testing\r\nmode: enforce\r\nmx: elsewhere.test\r\nmax_age: 86400\r\nmax_age: 1\r\n",
    );
    // §3.2: unknown fields are ignored.
    host.serve("cname.test", &format!("{BLOCK}future-field: ignored\r\n"));

    let mut recs = Vec::new();
    for d in all.iter().chain(&["parent.test"]) {
        recs.push(Rec::Mx(leak(d.to_string()), leak(format!("mx.{d}")), 10));
        recs.push(Rec::A(leak(format!("mx.{d}")), "127.0.0.1"));
        recs.push(Rec::A(leak(format!("mta-sts.{d}")), "127.0.0.1"));
    }
    let txt = |d: &str, v: &str| Rec::Txt(format!("_mta-sts.{d}"), v.to_string());
    recs.extend([
        // §3.1: records not beginning with v=STSv1 are set aside.
        txt("other.test", "v=spf1 -all"),
        txt("other.test", "v=STSv1; id=1"),
        // §3.1: the strings of one record are joined without spaces.
        Rec::TxtParts(
            "_mta-sts.split.test".into(),
            vec!["v=STSv1; ".into(), "id=1".into()],
        ),
        // §3.1: CNAMEs are followed; §3.2: unknown fields ignored.
        Rec::Cname("_mta-sts.cname.test".into(), "_mta-sts.target.test".into()),
        Rec::Txt(
            "_mta-sts.target.test".into(),
            "v=STSv1; id=1; ext=yes".into(),
        ),
        // §3.1: more than one v=STSv1 record means no policy.
        txt("two.test", "v=STSv1; id=1"),
        txt("two.test", "v=STSv1; id=2"),
        // §3.1: the record must begin with the version.
        txt("order.test", "id=1; v=STSv1"),
        // §3.1: US-ASCII only.
        txt("ascii.test", "v=STSv1; id=1; note=caf\u{e9}"),
        txt("redirect.test", "v=STSv1; id=1"),
        txt("html.test", "v=STSv1; id=1"),
        txt("big.test", "v=STSv1; id=1"),
        txt("missing.test", "v=STSv1; id=1"),
        txt("dup.test", "v=STSv1; id=1"),
        // §3.4: a parent zone's policy does not cover a subdomain.
        txt("parent.test", "v=STSv1; id=1"),
    ]);
    let dns = Dns::start(&recs);
    let a = TestServer::start_logging(&format!(
        "{OPEN}{}[tls]\nextra-ca = \"{}\"\n[queue]\nmx-port = {}\nmta-sts-port = {}\nretry = [1]\n",
        dns.resolver_toml(),
        pki.ca.display(),
        b.addr("smtp").port(),
        host.addr.port()
    ));
    a.account("joe@example.org");
    for d in &all {
        submit_to(&a, &format!("bob@{d}")).await;
    }
    for d in &delivered {
        wait_for_mail(b.addr("imap"), &format!("bob@{d}"), 1).await;
    }
    let needles: Vec<String> = held
        .iter()
        .map(|d| format!("4.7.5 No MX host of {d} matches its MTA-STS policy"))
        .collect();
    wait_held(&a, &needles).await;
    for d in &held {
        let got = imap_fetch_all(b.addr("imap"), &format!("bob@{d}"), "pw").await;
        assert!(got.is_empty(), "{d} got mail despite its policy");
    }
    assert_eq!(host.fetches_of("parent.test"), 0, "parent zone asked");
    assert_eq!(
        host.fetches_of("cname.test"),
        1,
        "the policy host of the alias"
    );
    // §3.3: a failed fetch is logged and not repeated for the same id
    // within five minutes.
    let log = a.log_until("mta-sts.missing.test");
    assert!(
        log.contains("MTA-STS policy fetch failed")
            && log.contains("missing.test")
            && log.contains("delivering as if the domain had no policy"),
        "{log}"
    );
    submit_to(&a, "bob@missing.test").await;
    wait_for_mail(b.addr("imap"), "bob@missing.test", 2).await;
    assert_eq!(host.fetches_of("missing.test"), 1);
    drop(dns);
}

/// RFC 8461 §3.3: a cached policy is refreshed before it expires even when
/// its id is unchanged; while the policy host fails, the cached policy
/// still applies (and the failure is logged); once it has expired and no
/// policy can be fetched, mail goes as if the domain had none.
#[tokio::test]
async fn cached_policies_outlive_failed_fetches_and_are_refreshed() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = common::pki::issue(tmp.path(), &["mx.remote.test", "mta-sts.remote.test"]);
    let b = TestServer::start_with_cert(OPEN, &pki);
    b.account("bob@remote.test");
    let host = policy_host(&pki, &BLOCK.replace("86400", "20")).await;
    let dns = Dns::start(&[
        Rec::Mx("remote.test", "mx.remote.test", 10),
        Rec::A("mx.remote.test", "127.0.0.1"),
        Rec::A("mta-sts.remote.test", "127.0.0.1"),
        Rec::Txt("_mta-sts.remote.test".into(), "v=STSv1; id=1".into()),
    ]);
    let a = TestServer::start_logging(&format!(
        "{OPEN}{}[tls]\nextra-ca = \"{}\"\n[queue]\nmx-port = {}\nmta-sts-port = {}\nretry = [1]\n",
        dns.resolver_toml(),
        pki.ca.display(),
        b.addr("smtp").port(),
        host.addr.port()
    ));
    a.account("joe@example.org");
    submit_to(&a, "bob@remote.test").await;
    wait_held(&a, &["4.7.5 No MX host of remote.test".to_string()]).await;
    let first = Instant::now();
    assert_eq!(host.fetches_of("remote.test"), 1);
    host.answer(
        "remote.test",
        "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    // Refreshed at half its max_age (10 s), the id unchanged.
    let deadline = Instant::now() + Duration::from_secs(20);
    while host.fetches_of("remote.test") < 2 {
        assert!(Instant::now() < deadline, "no refresh");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        first.elapsed() >= Duration::from_secs(8),
        "refreshed too early"
    );
    let log = a.log_until("using the cached policy");
    assert!(log.contains("using the cached policy"), "{log}");
    // The cached policy still holds the message; no new fetch for now.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(imap_fetch_all(b.addr("imap"), "bob@remote.test", "pw")
        .await
        .is_empty());
    assert_eq!(host.fetches_of("remote.test"), 2);
    // Expired (20 s after the fetch) with nothing fetched since: delivered.
    wait_for_mail(b.addr("imap"), "bob@remote.test", 1).await;
    assert!(first.elapsed() >= Duration::from_secs(18));
    drop(dns);
}

/// RFC 8461 §3.4: through a configured relay the relay host's own name is
/// the policy domain; §5: under an enforced policy, a host without
/// STARTTLS gets no mail.
#[tokio::test]
async fn relay_hosts_are_their_own_policy_domain() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = common::pki::issue(tmp.path(), &["mta-sts.mx.relayhost.test"]);
    let host = policy_host(
        &pki,
        "version: STSv1\r\nmode: enforce\r\nmx: other.test\r\nmax_age: 86400\r\n",
    )
    .await;
    let (relay_port, seen) = smtp_without_starttls().await;
    let mails = || {
        seen.lock()
            .unwrap()
            .iter()
            .filter(|c| c.starts_with("MAIL"))
            .count()
    };
    let zone = |id: u32| {
        vec![
            Rec::A("mx.relayhost.test", "127.0.0.1"),
            Rec::A("mta-sts.mx.relayhost.test", "127.0.0.1"),
            Rec::Txt(
                "_mta-sts.mx.relayhost.test".into(),
                format!("v=STSv1; id={id}"),
            ),
        ]
    };
    let port = common::port::free_port();
    let dns = Dns::start_at(&zone(1), port);
    let a = TestServer::start_with(&format!(
        "{OPEN}{}[tls]\nextra-ca = \"{}\"\n[queue]\nrelay = \"mx.relayhost.test:{relay_port}\"\nmta-sts-port = {}\nretry = [1]\n",
        dns.resolver_toml(),
        pki.ca.display(),
        host.addr.port()
    ));
    a.account("joe@example.org");
    // RFC 8461 §10.2: the policy Petrel publishes by default lasts a week.
    let own = http_get(&format!(
        "http://{}/.well-known/mta-sts.txt",
        a.addr("http")
    ));
    assert!(own.contains("max_age: 604800"), "{own}");
    submit_to(&a, "someone@far.test").await;
    wait_held(
        &a,
        &["4.7.5 Relay host mx.relayhost.test does not match its MTA-STS policy".to_string()],
    )
    .await;
    assert_eq!(mails(), 0);

    // The policy now names the relay: TLS is required and it has none.
    *host.policy.lock().unwrap() =
        "version: STSv1\r\nmode: enforce\r\nmx: mx.relayhost.test\r\nmax_age: 86400\r\n".into();
    drop(dns);
    let dns = Dns::start_at(&zone(2), port);
    wait_held(&a, &["does not offer STARTTLS".to_string()]).await;
    assert_eq!(host.fetches_of("mx.relayhost.test"), 2);
    assert_eq!(mails(), 0);
    drop(dns);
}
