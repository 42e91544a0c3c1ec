//! `petrel dns check DOMAIN` against a real DNS server (dnsmasq): a zone
//! published as advised passes every check, including the MTA-STS policy
//! fetched over HTTPS from the server itself; a zone with wrong and
//! missing records is reported record by record with what to publish,
//! and the command exits 1.

mod common;

use common::dns::{Dns, Rec};
use common::port::free_port;
use common::*;

struct Setup {
    server: TestServer,
    dns_port: u16,
    dkim_txt: String,
    _pki_dir: tempfile::TempDir,
}

/// A server for `mail.test` named `mx.test`, with a DKIM key, an https
/// listener on a known port (the MTA-STS policy host), trusting the test
/// CA, asking a DNS server that is started later on `dns_port`.
fn setup() -> Setup {
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = common::pki::issue(pki_dir.path(), &["mx.test", "mta-sts.mail.test"]);
    let https = free_port();
    let dns_port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let cfg = test_config(&format!(
        "[tls]\ncertificate = \"{}\"\nprivate-key = \"{}\"\nextra-ca = \"{}\"\n[queue]\nmta-sts-port = {https}\n[resolver]\nnameservers = [\"127.0.0.1:{dns_port}\"]\ntimeout = 2\n",
        pki.chain.display(),
        pki.key.display(),
        pki.ca.display(),
    ))
    .replace(
        "http = [\"127.0.0.1:0\"]",
        &format!("http = [\"127.0.0.1:0\"]\nhttps = [\"127.0.0.1:{https}\"]"),
    );
    std::fs::write(dir.path().join("config.toml"), cfg).unwrap();
    let server = TestServer::start_in(dir);
    server.cli_ok(&["domain", "create", "mail.test"]);
    let (_, dkim_txt) = server.dkim_create("mail.test", "s1");
    Setup {
        server,
        dns_port,
        dkim_txt,
        _pki_dir: pki_dir,
    }
}

/// The SRV records for the server's bound client listeners.
fn srv_records(s: &TestServer, target: &str, port_shift: u16) -> Vec<Rec> {
    [
        ("_submissions._tcp", "submissions"),
        ("_submission._tcp", "submission"),
        ("_imaps._tcp", "imaps"),
        ("_imap._tcp", "imap"),
        ("_pop3s._tcp", "pop3s"),
        ("_pop3._tcp", "pop3"),
    ]
    .into_iter()
    .map(|(service, listener)| {
        Rec::Srv(
            format!("{service}.mail.test"),
            target.to_string(),
            s.addr(listener).port() + port_shift,
        )
    })
    .collect()
}

/// Every line of `dns check` output for one check and name.
fn block<'a>(out: &'a str, check: &str, name: &str) -> &'a str {
    let start = out
        .lines()
        .position(|l| l.contains(check) && l.trim_end().ends_with(name))
        .unwrap_or_else(|| panic!("no {check} {name} in\n{out}"));
    let lines: Vec<&str> = out.lines().collect();
    let first = lines[start];
    let begin = out.find(first).unwrap();
    let len: usize = lines[start..]
        .iter()
        .enumerate()
        .take_while(|(i, l)| *i == 0 || l.starts_with("        "))
        .map(|(_, l)| l.len() + 1)
        .sum();
    &out[begin..(begin + len).min(out.len())]
}

#[test]
fn a_zone_published_as_advised_passes() {
    let st = setup();
    let s = &st.server;
    let mut records = vec![
        Rec::Mx("mail.test", "mx.test", 10),
        Rec::A("mx.test", "192.0.2.10"),
        Rec::Ptr("10.2.0.192.in-addr.arpa".into(), "mx.test".into()),
        Rec::Txt("mail.test".into(), "v=spf1 mx -all".into()),
        Rec::Txt("s1._domainkey.mail.test".into(), st.dkim_txt.clone()),
        Rec::Txt("_dmarc.mail.test".into(), "v=DMARC1; p=reject".into()),
        Rec::Txt("_mta-sts.mail.test".into(), "v=STSv1; id=20261127".into()),
        Rec::A("mta-sts.mail.test", "127.0.0.1"),
        Rec::Txt(
            "_smtp._tls.mail.test".into(),
            "v=TLSRPTv1; rua=mailto:tls@mail.test".into(),
        ),
        Rec::Cname("autoconfig.mail.test".into(), "mx.test".into()),
        Rec::Cname("autodiscover.mail.test".into(), "mx.test".into()),
    ];
    records.extend(srv_records(s, "mx.test", 0));
    let _dns = Dns::start_at(&records, st.dns_port);
    let out = s.cli(&["dns", "check", "mail.test"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{text}{err}");
    for (check, name) in [
        ("A/AAAA", "mx.test"),
        ("PTR", "10.2.0.192.in-addr.arpa"),
        ("MX", "mail.test"),
        ("SPF", "mail.test"),
        ("DKIM", "s1._domainkey.mail.test"),
        ("DMARC", "_dmarc.mail.test"),
        ("MTA-STS", "_mta-sts.mail.test"),
        (
            "MTA-STS policy",
            "https://mta-sts.mail.test/.well-known/mta-sts.txt",
        ),
        ("TLS-RPT", "_smtp._tls.mail.test"),
        ("SRV", "_imaps._tcp.mail.test"),
        ("SRV", "_submission._tcp.mail.test"),
        ("client set-up", "autoconfig.mail.test"),
        ("client set-up", "autodiscover.mail.test"),
    ] {
        let b = block(&text, check, name);
        assert!(
            b.starts_with("OK"),
            "{check} {name} not OK:\n{b}\n---\n{text}"
        );
        assert!(!b.contains("publish:"), "{b}");
    }
    assert!(block(&text, "SPF", "mail.test").contains("mail from 192.0.2.10 passes"));
}

#[test]
fn wrong_and_missing_records_are_named_with_the_fix() {
    let st = setup();
    let s = &st.server;
    let mut records = vec![
        // MX elsewhere, PTR to another name, two SPF records, another
        // DKIM key, SRV on the wrong port; no DMARC, MTA-STS, TLS-RPT or
        // autoconfig names at all.
        Rec::Mx("mail.test", "other.test", 10),
        Rec::A("other.test", "192.0.2.99"),
        Rec::A("mx.test", "192.0.2.10"),
        Rec::Ptr("10.2.0.192.in-addr.arpa".into(), "someone-else.test".into()),
        Rec::Txt("mail.test".into(), "v=spf1 mx -all".into()),
        Rec::Txt("mail.test".into(), "v=spf1 a -all".into()),
        Rec::Txt(
            "s1._domainkey.mail.test".into(),
            "v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAwrong".into(),
        ),
    ];
    records.extend(srv_records(s, "mx.test", 1));
    let _dns = Dns::start_at(&records, st.dns_port);
    let out = s.cli(&["dns", "check", "mail.test"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{text}{err}");
    assert!(err.contains("wrong or missing"), "{err}");
    let expect = |check: &str, name: &str, status: &str, publish: &str| {
        let b = block(&text, check, name);
        assert!(b.starts_with(status), "{check} {name}: want {status}:\n{b}");
        assert!(
            b.contains(&format!("publish: {publish}")),
            "{check} {name}: no `publish: {publish}` in\n{b}"
        );
    };
    expect(
        "MX",
        "mail.test",
        "WRONG",
        "mail.test.\tIN\tMX\t10 mx.test.",
    );
    expect(
        "PTR",
        "10.2.0.192.in-addr.arpa",
        "WRONG",
        "10.2.0.192.in-addr.arpa.\tIN\tPTR\tmx.test.",
    );
    expect(
        "SPF",
        "mail.test",
        "WRONG",
        "mail.test.\tIN\tTXT\t\"v=spf1 mx -all\"",
    );
    assert!(block(&text, "SPF", "mail.test").contains("2 SPF records"));
    expect(
        "DKIM",
        "s1._domainkey.mail.test",
        "WRONG",
        "s1._domainkey.mail.test.\tIN\tTXT\t\"v=DKIM1; k=rsa; p=",
    );
    expect(
        "DMARC",
        "_dmarc.mail.test",
        "MISSING",
        "_dmarc.mail.test.\tIN\tTXT\t\"v=DMARC1;",
    );
    expect(
        "MTA-STS",
        "_mta-sts.mail.test",
        "MISSING",
        "_mta-sts.mail.test.\tIN\tTXT\t\"v=STSv1; id=",
    );
    expect(
        "MTA-STS policy",
        "https://mta-sts.mail.test/.well-known/mta-sts.txt",
        "MISSING",
        "mta-sts.mail.test.\tIN\tCNAME\tmx.test.",
    );
    expect(
        "TLS-RPT",
        "_smtp._tls.mail.test",
        "MISSING",
        "_smtp._tls.mail.test.\tIN\tTXT\t\"v=TLSRPTv1;",
    );
    expect(
        "SRV",
        "_imaps._tcp.mail.test",
        "WRONG",
        &format!(
            "_imaps._tcp.mail.test.\tIN\tSRV\t0 1 {} mx.test.",
            s.addr("imaps").port()
        ),
    );
    expect(
        "client set-up",
        "autoconfig.mail.test",
        "MISSING",
        "autoconfig.mail.test.\tIN\tCNAME\tmx.test.",
    );
    // The host's own address is fine: it says OK, nothing to publish.
    assert!(block(&text, "A/AAAA", "mx.test").starts_with("OK"));
}

/// `dns records` prints the whole advice, and a domain the server does
/// not host is refused with what to do.
#[test]
fn records_and_unknown_domains() {
    let st = setup();
    let s = &st.server;
    let out = s.cli_ok(&["dns", "records", "mail.test"]);
    for line in [
        "mail.test.\tIN\tMX\t10 mx.test.",
        "_smtp._tls.mail.test.\tIN\tTXT\t\"v=TLSRPTv1; rua=mailto:postmaster@mail.test\"",
        "autoconfig.mail.test.\tIN\tCNAME\tmx.test.",
        &format!(
            "_submissions._tcp.mail.test.\tIN\tSRV\t0 1 {} mx.test.",
            s.addr("submissions").port()
        ),
        // RFC 6186 §3.4: IMAP and POP3 both offered, IMAP preferred (lower
        // priority values), implicit TLS before STARTTLS.
        &format!(
            "_imap._tcp.mail.test.\tIN\tSRV\t5 1 {} mx.test.",
            s.addr("imap").port()
        ),
        &format!(
            "_pop3s._tcp.mail.test.\tIN\tSRV\t10 1 {} mx.test.",
            s.addr("pop3s").port()
        ),
        &format!(
            "_pop3._tcp.mail.test.\tIN\tSRV\t20 1 {} mx.test.",
            s.addr("pop3").port()
        ),
    ] {
        assert!(out.contains(line), "{line:?} missing in\n{out}");
    }
    assert!(out.contains("s1._domainkey.mail.test.\tIN\tTXT\t\"v=DKIM1; k=rsa; p="));
    let bad = s.cli(&["dns", "check", "nothere.test"]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("not a domain of this server") && err.contains("petrel domain create"),
        "{err}"
    );
}
