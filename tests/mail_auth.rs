//! Inbound sender authentication against a real DNS server (dnsmasq):
//! SPF, DKIM (a message signed by dkimpy), DMARC policies, and the
//! Authentication-Results header (RFC 8601).

mod common;

use std::process::Command;

use common::dns::{Dns, Rec};
use common::*;

const OPEN: &str = "[imap]\nauth-without-tls = true\n";

fn rsa_key(dir: &std::path::Path) -> (std::path::PathBuf, String) {
    common::dkimpy::rsa_key(dir, 2048)
}

fn python_filter(script: &str, args: &[&std::ffi::OsStr], msg: &str) -> String {
    common::dkimpy::python_filter(script, args, msg)
}

/// Signs `msg` with dkimpy (selector s1, domain `domain`).
fn dkimpy_sign(key: &std::path::Path, domain: &str, msg: &str) -> String {
    let script = r#"
import sys, dkim
key = open(sys.argv[1], "rb").read()
msg = sys.stdin.buffer.read()
sig = dkim.sign(msg, b"s1", sys.argv[2].encode(), key, include_headers=[b"from", b"to", b"subject"])
sys.stdout.buffer.write(sig + msg)
"#;
    python_filter(script, &[key.as_os_str(), domain.as_ref()], msg)
}

#[tokio::test]
async fn dkimpy_signature_spf_and_dmarc_results() {
    let tmp = tempfile::tempdir().unwrap();
    let (key, public) = rsa_key(tmp.path());
    let dns = Dns::start(&[
        Rec::Txt(
            "s1._domainkey.signer.test".into(),
            format!("v=DKIM1; k=rsa; p={public}"),
        ),
        Rec::Txt("signer.test".into(), "v=spf1 ip4:127.0.0.1 -all".into()),
        Rec::Txt("_dmarc.signer.test".into(), "v=DMARC1; p=reject".into()),
        Rec::Txt("forged.test".into(), "v=spf1 ip4:192.0.2.1 -all".into()),
        Rec::Txt("_dmarc.forged.test".into(), "v=DMARC1; p=reject".into()),
        Rec::Txt("suspect.test".into(), "v=spf1 ip4:192.0.2.1 -all".into()),
        Rec::Mx("nullmx.test", ".", 0),
        Rec::Txt(
            "_dmarc.suspect.test".into(),
            "v=DMARC1; p=quarantine".into(),
        ),
    ]);
    let s = TestServer::start_with(&format!("{OPEN}{}", dns.resolver_toml()));
    s.account("joe@example.org");

    // 1. Signed by dkimpy, SPF pass, DMARC pass; a forged result is dropped.
    let signed = dkimpy_sign(
        &key,
        "signer.test",
        "From: ann@signer.test\r\nTo: joe@example.org\r\nSubject: signed by dkimpy\r\n\r\nHello.\r\n",
    );
    let body = format!("Authentication-Results: mx.test; dkim=pass header.d=evil.test\r\n{signed}");
    let r = smtp_send(
        s.addr("smtp"),
        "ann@signer.test",
        &["joe@example.org"],
        &body,
    )
    .await;
    assert!(r.starts_with("250"), "{r}");
    let got = wait_for_mail(s.addr("imap"), "joe@example.org", 1).await;
    let ar = auth_results(&got[0]);
    assert!(
        ar.contains("dkim=pass") && ar.contains("header.i=@signer.test"),
        "{ar}"
    );
    assert!(ar.contains("spf=pass"), "{ar}");
    assert!(ar.contains("dmarc=pass"), "{ar}");
    assert!(
        !String::from_utf8_lossy(&got[0]).contains("evil.test"),
        "forged result removed"
    );

    // 2. The same signature over a changed body fails DKIM.
    let tampered = signed.replace("Hello.", "Hello!");
    let r = smtp_send(
        s.addr("smtp"),
        "ann@signer.test",
        &["joe@example.org"],
        &tampered,
    )
    .await;
    assert!(
        r.starts_with("250"),
        "SPF still aligns, so DMARC passes: {r}"
    );
    let got = wait_for_mail(s.addr("imap"), "joe@example.org", 2).await;
    let ar = auth_results(&got[1]);
    // mail-auth reports a body hash mismatch as "neutral" (RFC 6376 §3.9
    // leaves the mapping open); what matters is that it does not pass.
    assert!(
        !ar.contains("dkim=pass") && (ar.contains("dkim=fail") || ar.contains("dkim=neutral")),
        "{ar}"
    );

    // 3. DMARC p=reject with SPF fail and no signature: refused.
    let r = smtp_send(
        s.addr("smtp"),
        "ceo@forged.test",
        &["joe@example.org"],
        "From: ceo@forged.test\r\nSubject: wire money\r\n\r\nnow\r\n",
    )
    .await;
    assert!(r.starts_with("550 5.7.1"), "{r}");

    // 4. DMARC p=quarantine: delivered to Junk, not the Inbox.
    let r = smtp_send(
        s.addr("smtp"),
        "x@suspect.test",
        &["joe@example.org"],
        "From: x@suspect.test\r\nSubject: maybe spam\r\n\r\nhm\r\n",
    )
    .await;
    assert!(r.starts_with("250"), "{r}");
    let junk = imap_fetch_mailbox(s.addr("imap"), "joe@example.org", "pw", "Junk").await;
    assert_eq!(junk.len(), 1);
    assert!(auth_results(&junk[0]).contains("dmarc=fail"));
    assert_eq!(
        imap_fetch_all(s.addr("imap"), "joe@example.org", "pw")
            .await
            .len(),
        2
    );
}

#[tokio::test]
async fn strict_spf_refuses_failures_and_checks_can_be_off() {
    let dns = Dns::start(&[
        Rec::Txt("good.test".into(), "v=spf1 ip4:127.0.0.1 -all".into()),
        Rec::Txt("bad.test".into(), "v=spf1 ip4:192.0.2.1 -all".into()),
    ]);
    let s = TestServer::start_with(&format!(
        "{OPEN}{}[mail-auth]\nspf = \"strict\"\ndmarc = \"off\"\n",
        dns.resolver_toml()
    ));
    s.account("joe@example.org");
    let r = smtp_send(
        s.addr("smtp"),
        "a@bad.test",
        &["joe@example.org"],
        "Subject: x\r\n\r\nx\r\n",
    )
    .await;
    assert!(r.starts_with("550 5.7.23"), "{r}");
    let r = smtp_send(
        s.addr("smtp"),
        "a@good.test",
        &["joe@example.org"],
        "Subject: y\r\n\r\ny\r\n",
    )
    .await;
    assert!(r.starts_with("250"), "{r}");
    let got = wait_for_mail(s.addr("imap"), "joe@example.org", 1).await;
    let ar = auth_results(&got[0]);
    assert!(ar.contains("spf=pass") && !ar.contains("dmarc="), "{ar}");

    let off = TestServer::start_with(&format!(
        "{OPEN}{}[mail-auth]\nspf = \"off\"\ndkim = \"off\"\narc = \"off\"\ndmarc = \"off\"\niprev = \"off\"\n",
        dns.resolver_toml()
    ));
    off.account("joe@example.org");
    let r = smtp_send(
        off.addr("smtp"),
        "a@bad.test",
        &["joe@example.org"],
        "Subject: z\r\n\r\nz\r\n",
    )
    .await;
    assert!(r.starts_with("250"), "{r}");
    let got = wait_for_mail(off.addr("imap"), "joe@example.org", 1).await;
    assert!(String::from_utf8_lossy(&got[0]).contains("Authentication-Results: mx.test; none"));
}

#[tokio::test]
async fn dns_failures_never_refuse_mail() {
    // A resolver address where nothing answers: every lookup times out.
    let dead = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = dead.local_addr().unwrap();
    let s = TestServer::start_with(&format!(
        "{OPEN}[resolver]\nnameservers = [\"{addr}\"]\ntimeout = 1\n"
    ));
    s.account("joe@example.org");
    let r = smtp_send(
        s.addr("smtp"),
        "a@somewhere.test",
        &["joe@example.org"],
        "From: a@somewhere.test\r\nSubject: t\r\n\r\nt\r\n",
    )
    .await;
    assert!(r.starts_with("250"), "DMARC/SPF temperror accepts: {r}");
    let got = wait_for_mail(s.addr("imap"), "joe@example.org", 1).await;
    let ar = auth_results(&got[0]);
    assert!(ar.contains("spf=temperror"), "{ar}");
    assert!(!ar.contains("dmarc=fail"), "{ar}");
    // With strict SPF a temperror defers (4xx), never 5xx (RFC 7208 §8.6).
    let strict = TestServer::start_with(&format!(
        "{OPEN}[resolver]\nnameservers = [\"{addr}\"]\ntimeout = 1\n[mail-auth]\nspf = \"strict\"\n"
    ));
    strict.account("joe@example.org");
    let r = smtp_send(
        strict.addr("smtp"),
        "a@somewhere.test",
        &["joe@example.org"],
        "Subject: t\r\n\r\nt\r\n",
    )
    .await;
    assert!(r.starts_with("451 4.7.24"), "{r}");
    drop(dead);
}

/// ARC-seals `msg` with dkimpy as the intermediary `forwarder.test`.
fn dkimpy_arc_seal(key: &std::path::Path, msg: &str) -> String {
    let script = r#"
import sys, dkim
key = open(sys.argv[1], "rb").read()
msg = sys.stdin.buffer.read()
lines = dkim.arc_sign(msg, b"arc1", b"forwarder.test", key, b"forwarder.test",
                      include_headers=[b"from", b"to", b"subject"])
sys.stdout.buffer.write(b"".join(lines) + msg)
"#;
    python_filter(script, &[key.as_os_str()], msg)
}

#[tokio::test]
async fn arc_chains_sealed_by_dkimpy_are_verified() {
    let tmp = tempfile::tempdir().unwrap();
    let (key, public) = rsa_key(tmp.path());
    let dns = Dns::start(&[Rec::Txt(
        "arc1._domainkey.forwarder.test".into(),
        format!("v=DKIM1; k=rsa; p={public}"),
    )]);
    let s = TestServer::start_with(&format!(
        "{OPEN}{}[mail-auth]\ndmarc = \"off\"\n",
        dns.resolver_toml()
    ));
    s.account("joe@example.org");
    // What the forwarder saw, recorded in its own Authentication-Results.
    let original = "Authentication-Results: forwarder.test; spf=pass smtp.mailfrom=list@origin.test\r\nFrom: ann@origin.test\r\nTo: joe@example.org\r\nSubject: forwarded\r\n\r\nHello via a list.\r\n";
    let sealed = dkimpy_arc_seal(&key, original);
    assert!(sealed.contains("ARC-Seal: i=1"), "{sealed}");
    for (i, (body, want)) in [
        (sealed.clone(), "arc=pass"),
        // A changed body: mail-auth says "neutral (body hash did not
        // verify)", as for DKIM; anything but pass will do.
        (
            sealed.replace("Hello via a list.", "Hello via a fist."),
            "arc=neutral",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let r = smtp_send(
            s.addr("smtp"),
            "list@forwarder.test",
            &["joe@example.org"],
            &body,
        )
        .await;
        assert!(r.starts_with("250"), "{r}");
        let got = wait_for_mail(s.addr("imap"), "joe@example.org", i + 1).await;
        let ar = auth_results(got.last().unwrap());
        assert!(ar.contains(want), "{want}: {ar}");
    }
}

/// A group with a member in another domain forwards inbound mail there,
/// ARC-sealed with the group domain's key (RFC 8617): the receiving
/// Petrel's ARC check and dkimpy both accept the seal, and the forwarded
/// copy carries what the forwarder saw (SPF pass for the origin).
#[tokio::test]
async fn groups_forward_to_other_domains_arc_sealed() {
    // A's DNS: the origin's SPF record. B's DNS comes up later, with the
    // key A generates, on a port B is configured with now.
    let dns_a = Dns::start(&[Rec::Txt(
        "origin.test".into(),
        "v=spf1 ip4:127.0.0.1 -all".into(),
    )]);
    let port_b = common::port::free_port();
    let b = TestServer::start_with(&format!(
        "{OPEN}[resolver]\nnameservers = [\"127.0.0.1:{port_b}\"]\ntimeout = 2\n[mail-auth]\ndmarc = \"off\"\n"
    ));
    b.account("friend@remote.test");
    let a = TestServer::start_with(&format!(
        "{OPEN}{}[queue]\nretry = [1]\nroutes = {{ \"remote.test\" = \"{}\" }}\n",
        dns_a.resolver_toml(),
        b.addr("smtp")
    ));
    a.account("joe@example.org");
    a.cli_ok(&["group", "create", "list@example.org"]);
    a.cli_ok(&["group", "add-member", "list@example.org", "joe@example.org"]);
    a.cli_ok(&[
        "group",
        "add-member",
        "list@example.org",
        "friend@remote.test",
    ]);
    let (_, txt) = a.dkim_create("example.org", "s1");
    let dns_b = Dns::start_at(&[Rec::Txt("s1._domainkey.example.org".into(), txt)], port_b);

    let r = smtp_send(
        a.addr("smtp"),
        "ann@origin.test",
        &["list@example.org"],
        "From: ann@origin.test\r\nTo: list@example.org\r\nSubject: to the list\r\n\r\nHello, list.\r\n",
    )
    .await;
    assert!(r.starts_with("250"), "{r}");

    // The local member gets it as usual, without an ARC set.
    let local = wait_for_mail(a.addr("imap"), "joe@example.org", 1).await;
    let local = String::from_utf8_lossy(&local[0]).into_owned();
    assert!(
        local.contains("Hello, list.") && !local.contains("ARC-Seal"),
        "{local}"
    );

    // The remote member gets the sealed copy through the queue.
    let got = wait_for_mail(b.addr("imap"), "friend@remote.test", 1).await;
    let text = String::from_utf8_lossy(&got[0]).into_owned();
    assert!(text.contains("ARC-Seal: i=1"), "{text}");
    assert!(
        text.contains("cv=none") && text.contains("d=example.org"),
        "{text}"
    );
    let aar = text
        .lines()
        .find(|l| l.starts_with("ARC-Authentication-Results: i=1; mx.test"))
        .unwrap_or_else(|| panic!("no AAR in {text}"));
    // The results A recorded travel with the message (folded lines).
    let aar_block: String = text[text.find(aar).unwrap()..]
        .split("\r\n")
        .take_while(|l| l.starts_with("ARC-Authentication-Results") || l.starts_with([' ', '\t']))
        .collect();
    assert!(aar_block.contains("spf=pass"), "{aar_block}");
    // B verified the chain with the key from its DNS.
    let ar = auth_results(&got[0]);
    assert!(ar.contains("arc=pass"), "B's results: {ar}\n{text}");
    // And so does dkimpy; a changed body breaks it.
    assert_eq!(common::dkimpy::arc_verify(&dns_b, &got[0]), "pass");
    let tampered = text.replace("Hello, list.", "Hello, lost.");
    assert_eq!(
        common::dkimpy::arc_verify(&dns_b, tampered.as_bytes()),
        "fail"
    );
}

/// `petrel dkim create` prints zone-file lines a real DNS server loads
/// (Knot): a 2048-bit RSA key's TXT record in strings of at most 255
/// bytes (RFC 1035 §3.3.14, RFC 6376 §3.6.2.2), MX data unquoted, no
/// unfilled placeholders; served, the key reads back whole.
#[test]
fn printed_dns_records_load_into_a_real_zone() {
    let s = TestServer::start();
    s.cli_ok(&["domain", "create", "mail.test"]);
    let out = s.cli_ok(&[
        "dkim",
        "create",
        "mail.test",
        "--selector",
        "s1",
        "--algorithm",
        "rsa",
    ]);
    assert!(!out.contains("{d}"), "{out}");
    let records: String = out
        .lines()
        .filter(|l| l.contains("\tIN\t"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(
        records.contains("mail.test.\tIN\tMX\t10 mx.test."),
        "{records}"
    );
    let line = records
        .lines()
        .find(|l| l.starts_with("s1._domainkey"))
        .unwrap();
    let parts: Vec<&str> = line.split('"').skip(1).step_by(2).collect();
    assert!(
        parts.len() > 1 && parts.iter().all(|p| p.len() <= 255),
        "{line}"
    );
    let knot = common::knot::Knot::start(&records);
    let dig = |kind: &str, name: &str| {
        let out = Command::new("kdig")
            .arg(format!("@{}", knot.addr.ip()))
            .args(["-p", &knot.addr.port().to_string(), "+short", kind, name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let txt = dig("TXT", "s1._domainkey.mail.test.");
    let joined: String = txt.split('"').skip(1).step_by(2).collect();
    assert!(
        joined.starts_with("v=DKIM1; k=rsa; p=MII") && joined.len() > 255,
        "{txt}"
    );
    assert_eq!(dig("MX", "mail.test."), "10 mx.test.");
    assert!(dig("TXT", "_mta-sts.mail.test.").starts_with("\"v=STSv1; id="));
}
