//! DANE for SMTP (RFC 7672) end to end: Knot DNS serves a DNSSEC-signed
//! `test.` zone with MX and TLSA records; Petrel A validates them (the
//! zone's keys as its trust anchors) and delivers to Petrel B, whose
//! certificate chain comes from a test CA, only when the certificate
//! matches the TLSA records.

mod common;

use std::time::{Duration, Instant};

use common::knot::Knot;
use common::*;
use sha2::Digest;

const OPEN: &str = "[smtp]\nauth-without-tls = true\n[imap]\nauth-without-tls = true\n";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn tlsa_records_authenticate_mx_hosts() {
    let tmp = tempfile::tempdir().unwrap();
    // B's certificate names every MX host below except mx.tabad.test.
    let pki = common::pki::issue(
        tmp.path(),
        &[
            "mx.secure.test",
            "mx.ta.test",
            "mx.wrong.test",
            "mx.plain.test",
            "mta-sts.wrong.test",
        ],
    );
    // TLSA 3 1 1: SHA-256 of the server's SubjectPublicKeyInfo; TLSA
    // 2 0 1: SHA-256 of the CA certificate, which the chain includes.
    let cert_der = rustls::pki_types::CertificateDer::from(pki.cert_der.clone());
    let spki = webpki::EndEntityCert::try_from(&cert_der)
        .unwrap()
        .subject_public_key_info();
    let ee = hex(&sha2::Sha256::digest(spki.as_ref()));
    let ta = hex(&sha2::Sha256::digest(&pki.ca_der));
    // B also publishes an MTA-STS policy that wrong.test uses: MX
    // mx.wrong.test, whose certificate passes MTA-STS's checks.
    let b_dir = tempfile::tempdir().unwrap();
    let b_cfg = test_config(&format!(
        "{OPEN}[tls]\ncertificate = \"{}\"\nprivate-key = \"{}\"\n[mta-sts]\nmode = \"enforce\"\nmx = [\"mx.wrong.test\"]\n",
        pki.chain.display(),
        pki.key.display()
    ))
    .replace("http = [\"127.0.0.1:0\"]", "http = [\"127.0.0.1:0\"]\nhttps = [\"127.0.0.1:0\"]");
    std::fs::write(b_dir.path().join("config.toml"), b_cfg).unwrap();
    let b = TestServer::start_in(b_dir);
    for d in ["secure", "ta", "wrong", "plain", "tabad", "pkix"] {
        b.account(&format!("bob@{d}.test"));
    }
    let zeros = "00".repeat(32);
    let knot = Knot::start(&format!(
        "secure MX 10 mx.secure\nmx.secure A 127.0.0.1\n_25._tcp.mx.secure TLSA 3 1 1 {ee}\n\
         ta MX 10 mx.ta\nmx.ta A 127.0.0.1\n_25._tcp.mx.ta TLSA 2 0 1 {ta}\n\
         tabad MX 10 mx.tabad\nmx.tabad A 127.0.0.1\n_25._tcp.mx.tabad TLSA 2 0 1 {ta}\n\
         wrong MX 10 mx.wrong\nmx.wrong A 127.0.0.1\n_25._tcp.mx.wrong TLSA 3 1 1 {zeros}\n\
         _mta-sts.wrong TXT \"v=STSv1; id=1\"\nmta-sts.wrong A 127.0.0.1\n\
         plain MX 10 mx.plain\nmx.plain A 127.0.0.1\n\
         pkix MX 10 mx.pkix\nmx.pkix A 127.0.0.1\n_25._tcp.mx.pkix TLSA 1 1 1 {zeros}\n",
    ));
    let a = TestServer::start_logging(&format!(
        "{OPEN}{}[tls]\nextra-ca = \"{}\"\n[queue]\nmx-port = {}\nmta-sts-port = {}\nretry = [1]\n",
        knot.resolver_toml(),
        pki.ca.display(),
        b.addr("smtp").port(),
        b.addr("https").port()
    ));
    a.account("joe@example.org");

    for d in ["secure", "ta", "wrong", "plain", "tabad", "pkix"] {
        let to = format!("bob@{d}.test");
        let r = submit(
            &a,
            "joe@example.org",
            &[&to],
            &format!("Subject: to {d}\r\n\r\nx"),
        )
        .await;
        assert!(r.starts_with("250"), "{r}");
    }

    // DANE-EE: the server's key matches; DANE-TA: the CA it sends matches
    // and the certificate names the MX host. Both over TLS.
    for d in ["secure", "ta"] {
        let got = wait_for_mail(b.addr("imap"), &format!("bob@{d}.test"), 1).await;
        let text = String::from_utf8_lossy(&got[0]);
        assert!(text.contains("with ESMTPS"), "{text}");
    }
    // No TLSA records for the host, or only PKIX ones, which SMTP cannot
    // use (§3.1.3): ordinary opportunistic TLS.
    for d in ["plain", "pkix"] {
        let got = wait_for_mail(b.addr("imap"), &format!("bob@{d}.test"), 1).await;
        assert!(String::from_utf8_lossy(&got[0]).contains("with ESMTPS"));
    }

    // A record that matches nothing, and a trust anchor whose chain does
    // not name the host: held in the queue with the reason.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let errs = a.queued_errors();
        let held = errs
            .matches("matches none of the server's TLSA records")
            .count();
        if held >= 2 && errs.contains("STARTTLS (DANE)") {
            assert!(
                errs.contains("bob@wrong.test") && errs.contains("bob@tabad.test"),
                "{errs}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "{errs}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // RFC 8461 §2: wrong.test's MTA-STS policy was fetched and its MX
    // passes MTA-STS's checks, yet the failing DANE check holds the mail.
    let log = a.log_until("MTA-STS policy fetched");
    assert!(
        log.contains("MTA-STS policy fetched") && log.contains("wrong.test"),
        "{log}"
    );
    for d in ["wrong", "tabad"] {
        let n = imap_fetch_all(b.addr("imap"), &format!("bob@{d}.test"), "pw")
            .await
            .len();
        assert_eq!(n, 0, "nothing delivered to {d}");
    }

    // The same zone without its keys trusted does not validate: the TLSA
    // records are ignored (§2.2.1) and the mail goes with opportunistic
    // TLS, even to the host whose record matches nothing.
    let untrusted = knot
        .resolver_toml()
        .replace(&knot.trust_anchors.display().to_string(), "");
    let a2 = TestServer::start_with(&format!(
        "{OPEN}{untrusted}[queue]\nmx-port = {}\nretry = [1]\n",
        b.addr("smtp").port()
    ));
    a2.account("joe@example.org");
    let r = submit(
        &a2,
        "joe@example.org",
        &["bob@wrong.test"],
        "Subject: insecure\r\n\r\nx",
    )
    .await;
    assert!(r.starts_with("250"), "{r}");
    let got = wait_for_mail(b.addr("imap"), "bob@wrong.test", 1).await;
    assert!(String::from_utf8_lossy(&got[0]).contains("Subject: insecure"));
    drop(knot);
}
