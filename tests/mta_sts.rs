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
