//! MTA-STS (RFC 8461) end to end: Petrel B publishes a policy on its HTTPS
//! listener and presents a certificate from a test CA; Petrel A looks up
//! the TXT record in dnsmasq, fetches the policy with a checked
//! certificate, and delivers only to matching MX hosts over checked TLS.

mod common;

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
/// serving whatever policy the test sets and counting fetches.
struct PolicyHost {
    addr: std::net::SocketAddr,
    fetches: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    policy: std::sync::Arc<std::sync::Mutex<String>>,
}

async fn policy_host(pki: &common::pki::TestPki, policy: &str) -> PolicyHost {
    use rustls::pki_types::pem::PemObject;
    use std::sync::atomic::Ordering;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let certs: Vec<_> = rustls::pki_types::CertificateDer::pem_file_iter(&pki.chain)
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_file(&pki.key).unwrap();
    let cfg = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = PolicyHost {
        addr: listener.local_addr().unwrap(),
        fetches: Default::default(),
        policy: std::sync::Arc::new(std::sync::Mutex::new(policy.to_string())),
    };
    let (fetches, policy) = (host.fetches.clone(), host.policy.clone());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let Ok(mut tls) = acceptor.accept(tcp).await else {
                continue;
            };
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match tls.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            if !req.starts_with(b"GET /.well-known/mta-sts.txt ") {
                continue;
            }
            fetches.fetch_add(1, Ordering::SeqCst);
            let body = policy.lock().unwrap().clone();
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
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
    let port = common::dns::free_port();
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
